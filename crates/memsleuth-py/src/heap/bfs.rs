//! `why(obj)` the quick way: a breadth-first search from the roots (modules, other threads'
//! frames, `gc.garbage`) through `tp_traverse` until it meets the object, with no graph of the
//! heap built. Only containers are followed (a str or an int refers to nothing), and the only
//! memory it needs is a visited bitmap and the frontier. When no root leads to the object, the
//! caller falls back to the whole-heap snapshot, which can tell "held from C" from garbage.

use std::ffi::{c_int, c_void};

use memsleuth_analysis::heap::{RetentionPath, RootKind};
use pyo3::ffi;
use pyo3::prelude::*;

use super::count::Visited;
use super::roots::Roots;
use super::types::{basic_size, Types};
use super::walk::{for_str_keys, pause_gc, resume_gc};

/// Levels searched after the one where the object was first met, for other holders.
const EXTRA_LEVELS: usize = 1;

struct Search {
    target: *mut ffi::PyObject,
    visited: Visited,
    /// (object, index of its parent in the previous level)
    next: Vec<(*mut ffi::PyObject, u32)>,
    parent: u32,
    /// Holders met: (level, index in that level).
    hits: Vec<(usize, u32)>,
    level: usize,
}

impl Search {
    #[inline]
    unsafe fn reach(&mut self, obj: *mut ffi::PyObject) {
        if obj == self.target {
            let hit = (self.level, self.parent);
            if !self.hits.contains(&hit) {
                self.hits.push(hit);
            }
            return;
        }
        // SAFETY: GIL held, `obj` alive (reached from a live object, no Python code running)
        if unsafe { ffi::PyObject_IS_GC(obj) } != 0 && self.visited.insert(obj as usize) {
            self.next.push((obj, self.parent));
        }
    }
}

unsafe extern "C" fn visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the search passed to tp_traverse, alive for the call
    let s = unsafe { &mut *(arg as *mut Search) };
    unsafe { s.reach(obj) };
    0
}

/// Up to `max_paths` shortest paths from a named root to `target`, or nothing when no named
/// root reaches it.
pub(crate) fn search(
    py: Python<'_>,
    target: &Bound<'_, PyAny>,
    max_paths: usize,
) -> PyResult<Vec<RetentionPath>> {
    let was = pause_gc(py)?;
    let mut roots = Roots::gather(py, &[]);
    // a lasting root (a module, gc.garbage) first, as the graph's paths do: a worker's frame
    // holding a module's thread-local in a local is a shorter path, not the holder
    let mut found = search_paused(py, &roots, target.as_ptr(), max_paths, true);
    if found.is_empty() {
        found = search_paused(py, &roots, target.as_ptr(), max_paths, false);
    }
    roots.release();
    resume_gc(py, was);
    Ok(found)
}

fn search_paused(
    py: Python<'_>,
    roots: &Roots,
    target: *mut ffi::PyObject,
    max_paths: usize,
    lasting_only: bool,
) -> Vec<RetentionPath> {
    let minor = py.version_info().minor;
    // SAFETY: GIL held; `target` is alive (the caller holds it)
    let str_target = unsafe { ffi::PyUnicode_CheckExact(target) } != 0;
    let mut s = Search {
        target,
        visited: Visited::default(),
        next: Vec::new(),
        parent: 0,
        hits: Vec::new(),
        level: 0,
    };
    // level 0: the roots (the calling frame last-resort only: left to the fallback)
    let mut levels: Vec<Vec<(*mut ffi::PyObject, u32)>> = vec![roots
        .by_ptr
        .iter()
        .filter(|(_, r)| !r.caller)
        .filter(|(_, r)| !lasting_only || r.lasting())
        .map(|(&p, _)| (p as *mut ffi::PyObject, 0))
        .collect()];
    for &(p, _) in &levels[0] {
        s.visited.insert(p as usize);
    }
    if levels[0].iter().any(|(p, _)| *p == target) {
        return Vec::new();
    }
    let mut last_level = usize::MAX;
    while let Some(current) = levels.last() {
        if current.is_empty() || s.level > last_level {
            break;
        }
        s.level = levels.len() - 1;
        s.next = Vec::new();
        for (i, &(obj, _)) in current.iter().enumerate() {
            s.parent = i as u32;
            // SAFETY (the walk): GIL held, collector paused, no Python code runs; every object
            // was reached from a root through live references
            unsafe {
                if ffi::PyObject_IS_GC(obj) != 0 {
                    if let Some(traverse) = (*ffi::Py_TYPE(obj)).tp_traverse {
                        traverse(obj, visit, (&mut s as *mut Search).cast());
                    }
                    if str_target && ffi::PyDict_Check(obj) != 0 {
                        for_str_keys(obj, |k| s.reach(k));
                    }
                }
                if minor >= 11 {
                    if let Some(f) = roots.frames.get(&(obj as usize)) {
                        for &(_, v) in &f.locals {
                            s.reach(v);
                        }
                    }
                }
            }
        }
        if !s.hits.is_empty() && last_level == usize::MAX {
            last_level = s.level + EXTRA_LEVELS;
        }
        if s.hits.len() >= max_paths {
            break;
        }
        let next = std::mem::take(&mut s.next);
        levels.push(next);
    }
    let mut types = Types::new(minor);
    s.hits
        .iter()
        .take(max_paths.max(1))
        .map(|&(level, index)| {
            // walk the parents back to the root
            let mut chain = vec![target];
            let (mut l, mut i) = (level, index);
            loop {
                let (obj, parent) = levels[l][i as usize];
                chain.push(obj);
                if l == 0 {
                    break;
                }
                l -= 1;
                i = parent;
            }
            chain.reverse();
            let root = roots.by_ptr.get(&(chain[0] as usize));
            let (kind, words) = root.map_or((RootKind::Module, String::new()), |r| {
                (r.kind, r.words.clone())
            });
            let objs: Vec<(*mut ffi::PyObject, String, u64)> = chain
                .iter()
                .map(|&o| {
                    // SAFETY: GIL held; every object on the chain is alive
                    let t = unsafe { types.id(ffi::Py_TYPE(o)) };
                    let size = unsafe { types.size(o, t) }
                        .unwrap_or_else(|| unsafe { basic_size(o) } + types.extra_of(t));
                    (o, types.names[t as usize].clone(), size)
                })
                .collect();
            // SAFETY: as above
            unsafe { super::describe_objects(&objs, roots, kind, words) }
        })
        .collect()
}
