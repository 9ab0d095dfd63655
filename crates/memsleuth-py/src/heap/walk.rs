//! The walk: every object the gc tracks, and every object they reach through `tp_traverse`
//! (str, int, bytes, untracked dicts and tuples...), as one graph. The walk runs no Python code
//! between taking `gc.get_objects()` and finishing the graph, so the heap cannot change under
//! it; the collector stays paused until the snapshot is released, so no object of the graph can
//! be freed by a collection while we hold its address. Only when the program's own
//! `__sizeof__` must run (which could free anything) are the nodes held by strong references.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use memsleuth_analysis::heap::{GraphBuilder, HeapGraph};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rustc_hash::{FxHashMap, FxHashSet};

use super::count::IdMap;
use super::roots::Roots;
use super::storage;
use super::types::{basic_size, PySizeof, Types};

/// One snapshot of the heap.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub graph: HeapGraph,
    pub types: Types,
    /// The object of each node. Each is held (a strong reference) until [`Snapshot::release`].
    pub ptrs: Vec<usize>,
    /// References to each node that the graph does not show: from C, from a non-gc container,
    /// from a running frame's evaluation stack.
    pub hidden_refs: Vec<u32>,
    pub roots: Roots,
    /// Node ids of the roots (by kind: see [`Roots`]).
    pub root_nodes: FxHashMap<u32, usize>,
    pub duration: Duration,
    /// Objects whose `__sizeof__` raised, returned nonsense or ran out of the time budget.
    pub sizes_estimated: u64,
    /// Every object (nodes and the leaves they absorbed) and its shallow bytes, by type id.
    pub type_count: Vec<u64>,
    pub type_bytes: Vec<u64>,
    /// Leaves absorbed into each node (their bytes are in the node's graph size).
    pub absorbed: Vec<u16>,
    /// The owner (node) of each block of `keep` that is not an object but an object's storage:
    /// a list's item array, a dict's keys table... (see [`super::storage`]).
    pub storage: FxHashMap<u64, u32>,
    /// The nodes are held by strong references (see the module doc).
    held: bool,
    /// The collector was on before the walk: turn it back on at release.
    pub gc_was_enabled: bool,
    released: bool,
}

struct Walker<'a> {
    ids: IdMap,
    ptrs: Vec<usize>,
    refcnt: Vec<u32>,
    /// Shallow size of each node (its graph size also counts the leaves it absorbed).
    shallow: Vec<u64>,
    /// Leaves absorbed by each node (saturating).
    absorbed: Vec<u16>,
    builder: GraphBuilder,
    types: &'a mut Types,
    /// Objects and shallow bytes by type id: every object, nodes and absorbed leaves.
    count: Vec<u64>,
    bytes: Vec<u64>,
    ignore: &'a [usize],
    /// Allocation blocks that must stay nodes of their own (objects asked about), or whose
    /// owner is wanted (storage asked about).
    keep: &'a FxHashSet<u64>,
    /// The owner of each block of `keep` that is an object's storage.
    storage: FxHashMap<u64, u32>,
    /// Leaves absorbed by the node being traversed, and their bytes.
    cur_objs: u32,
    cur_bytes: u64,
    /// Nodes whose size needs a `__sizeof__` written in Python (called after the walk).
    py_sizeof: Vec<u32>,
}

impl Walker<'_> {
    /// The node of `obj`, created (and held) on first sight.
    unsafe fn intern(&mut self, obj: *mut ffi::PyObject) -> Option<u32> {
        let key = obj as usize;
        if let Some(id) = self.ids.get(key) {
            return Some(id);
        }
        if self.ignore.contains(&key) {
            return None;
        }
        // SAFETY (rest): GIL held; `obj` was reached from a live object through tp_traverse or
        // the gc's own list, and no Python code has run since
        let type_id = unsafe { self.types.id(ffi::Py_TYPE(obj)) };
        let size = unsafe { self.types.size(obj, type_id) };
        let shallow =
            size.unwrap_or_else(|| unsafe { basic_size(obj) } + self.types.extra_of(type_id));
        self.account(type_id, shallow);
        let id = self.builder.add_node(type_id, shallow);
        if size.is_none() {
            self.py_sizeof.push(id);
        }
        self.ids.insert(key, id);
        self.ptrs.push(key);
        self.shallow.push(shallow);
        self.absorbed.push(0);
        self.refcnt
            .push(u32::try_from(unsafe { ffi::Py_REFCNT(obj) }).unwrap_or(u32::MAX));
        Some(id)
    }

    fn account(&mut self, type_id: u32, bytes: u64) {
        let t = type_id as usize;
        if t >= self.count.len() {
            self.count.resize(t + 1, 0);
            self.bytes.resize(t + 1, 0);
        }
        self.count[t] += 1;
        self.bytes[t] += bytes;
    }

    /// A referent of the node being traversed: an edge, or, for a leaf only this node refers
    /// to (a str, int or float with one reference), its bytes added to the node's. Such a leaf
    /// is dominated by the node and can be on no other path, so the graph need not hold it:
    /// most of a heap's objects are such leaves.
    unsafe fn reach(&mut self, obj: *mut ffi::PyObject) {
        // SAFETY (whole fn): as in `intern`
        if let Some(id) = self.ids.get(obj as usize) {
            self.builder.edge(id);
            return;
        }
        if unsafe { ffi::Py_REFCNT(obj) } == 1 && unsafe { ffi::PyObject_IS_GC(obj) } == 0 {
            let type_id = unsafe { self.types.id(ffi::Py_TYPE(obj)) };
            let block = (obj as u64).saturating_sub(self.types.preheader_of(type_id));
            if !self.keep.contains(&block) && !unsafe { self.owns_kept(obj, type_id) } {
                if let Some(size) = unsafe { self.types.size(obj, type_id) } {
                    self.account(type_id, size);
                    self.cur_objs = self.cur_objs.saturating_add(1);
                    self.cur_bytes += size;
                    return;
                }
            }
        }
        if let Some(id) = unsafe { self.intern(obj) } {
            self.builder.edge(id);
        }
    }

    /// Whether `obj` owns a block of `keep` (a bytearray's buffer...): it must stay a node
    /// then, even as a leaf, to be the block's holder.
    ///
    /// # Safety
    /// GIL held; `obj` alive and of the type `type_id` names.
    unsafe fn owns_kept(&self, obj: *mut ffi::PyObject, type_id: u32) -> bool {
        let s = self.types.storage_of(type_id);
        if self.keep.is_empty() || s.is_none() {
            return false;
        }
        let mut owns = false;
        // SAFETY: the caller's guarantee
        unsafe { storage::blocks(obj, s, |b| owns |= self.keep.contains(&b)) };
        owns
    }

    /// Notes node `n` as the owner of its storage blocks that `keep` holds.
    ///
    /// # Safety
    /// GIL held; `obj` alive and node `n`'s object.
    unsafe fn note_storage(&mut self, obj: *mut ffi::PyObject, n: u32) {
        if self.keep.is_empty() {
            return;
        }
        // SAFETY: the caller's guarantee
        let type_id = unsafe { self.types.id(ffi::Py_TYPE(obj)) };
        let s = self.types.storage_of(type_id);
        if s.is_none() {
            return;
        }
        let (keep, owners) = (self.keep, &mut self.storage);
        // SAFETY: the caller's guarantee
        unsafe {
            storage::blocks(obj, s, |b| {
                if keep.contains(&b) {
                    owners.entry(b).or_insert(n);
                }
            })
        };
    }
}

unsafe extern "C" fn visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the walker passed to tp_traverse just below, alive for the call
    let w = unsafe { &mut *(arg as *mut Walker<'_>) };
    unsafe { w.reach(obj) };
    0
}

/// A dict whose keys are all `str` uses CPython's string-keyed table, and its tp_traverse
/// skips the keys (a string cannot be part of a cycle); they are objects all the same, kept
/// alive by the dict: `f` gets them. A dict with any other key visited all of its keys already.
///
/// # Safety
/// GIL held; `dict` a live dict. `f` must not run Python code.
pub(crate) unsafe fn for_str_keys(dict: *mut ffi::PyObject, mut f: impl FnMut(*mut ffi::PyObject)) {
    let (mut pos, mut key, mut value) = (0, std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY (whole fn): the caller's guarantee; PyDict_Next runs no Python code
    while unsafe { ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) } != 0 {
        if unsafe { ffi::PyUnicode_CheckExact(key) } == 0 {
            return;
        }
    }
    pos = 0;
    while unsafe { ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) } != 0 {
        f(key);
    }
}

/// Pauses the collector; returns whether it was on.
pub(crate) fn pause_gc(py: Python<'_>) -> PyResult<bool> {
    let gc = py.import("gc")?;
    let was_enabled: bool = gc.call_method0("isenabled")?.extract()?;
    gc.call_method0("disable")?;
    Ok(was_enabled)
}

pub(crate) fn resume_gc(py: Python<'_>, was_enabled: bool) {
    if was_enabled {
        if let Ok(gc) = py.import("gc") {
            let _ = gc.call_method0("enable");
        }
    }
}

/// Takes a snapshot of the heap; the collector stays paused until [`Snapshot::release`].
pub(crate) fn take(
    py: Python<'_>,
    minor: u8,
    extra_roots: &[(Bound<'_, PyAny>, String)],
    keep: &FxHashSet<u64>,
) -> PyResult<Snapshot> {
    let started = Instant::now();
    let was_enabled = pause_gc(py)?;
    let result = snapshot(py, minor, extra_roots, keep, started, was_enabled);
    if result.is_err() {
        resume_gc(py, was_enabled);
    }
    result
}

fn snapshot(
    py: Python<'_>,
    minor: u8,
    extra_roots: &[(Bound<'_, PyAny>, String)],
    keep: &FxHashSet<u64>,
    started: Instant,
    gc_was_enabled: bool,
) -> PyResult<Snapshot> {
    let roots = Roots::gather(py, extra_roots);
    let tracked = py.import("gc")?.call_method0("get_objects")?;
    let tracked = tracked.cast_into::<PyList>().map_err(PyErr::from)?;
    let ignore = [tracked.as_ptr() as usize];
    let mut types = Types::new(minor);
    let n_tracked = tracked.len();
    // two nodes per tracked object, each in five per-node vectors, the id map and the edges
    super::ensure_headroom(n_tracked, 2 * 96)?;
    let mut w = Walker {
        ids: IdMap::default(),
        ptrs: Vec::with_capacity(n_tracked * 2),
        refcnt: Vec::with_capacity(n_tracked * 2),
        shallow: Vec::with_capacity(n_tracked * 2),
        absorbed: Vec::with_capacity(n_tracked * 2),
        builder: GraphBuilder::new(),
        types: &mut types,
        count: Vec::new(),
        bytes: Vec::new(),
        ignore: &ignore,
        keep,
        storage: FxHashMap::default(),
        cur_objs: 0,
        cur_bytes: 0,
        py_sizeof: Vec::new(),
    };
    // SAFETY (the walk): GIL held throughout and no Python code runs until it ends, so every
    // pointer stays valid; each node is also held by a strong reference from `intern` on
    for i in 0..n_tracked {
        // SAFETY: index in bounds; a borrowed reference the list keeps alive
        let obj = unsafe { ffi::PyList_GET_ITEM(tracked.as_ptr(), i as ffi::Py_ssize_t) };
        unsafe { w.intern(obj) };
    }
    // roots the gc does not track (a materialised frame may not be) are nodes all the same
    for &p in roots.by_ptr.keys() {
        unsafe { w.intern(p as *mut ffi::PyObject) };
    }
    let mut n = 0usize;
    while n < w.ptrs.len() {
        let obj = w.ptrs[n] as *mut ffi::PyObject;
        w.builder.begin(n as u32);
        unsafe { w.note_storage(obj, n as u32) };
        if unsafe { ffi::PyObject_IS_GC(obj) } != 0 {
            let tp = unsafe { ffi::Py_TYPE(obj) };
            if let Some(traverse) = unsafe { (*tp).tp_traverse } {
                let arg = std::ptr::addr_of_mut!(w).cast::<c_void>();
                unsafe { traverse(obj, visit, arg) };
            }
            if unsafe { ffi::PyDict_Check(obj) } != 0 {
                unsafe { for_str_keys(obj, |k| w.reach(k)) };
            }
        }
        // 3.11+: a running frame's locals are invisible to tp_traverse; add them
        if minor >= 11 {
            if let Some(f) = roots.frames.get(&(obj as usize)) {
                for &(_, v) in &f.locals {
                    if let Some(id) = unsafe { w.intern(v) } {
                        w.builder.edge(id);
                    }
                }
            }
        }
        if w.cur_objs > 0 {
            w.builder.set_size(n as u32, w.shallow[n] + w.cur_bytes);
            w.absorbed[n] = u16::try_from(w.cur_objs).unwrap_or(u16::MAX);
            w.cur_objs = 0;
            w.cur_bytes = 0;
        }
        n += 1;
    }
    drop(tracked);
    let Walker {
        ptrs,
        refcnt,
        builder,
        py_sizeof,
        count,
        bytes,
        absorbed,
        storage,
        ..
    } = w;
    let mut type_bytes = bytes;
    let mut graph = builder.finish();
    // sizes that need the program's own __sizeof__: hold every node first, so whatever that
    // code does, no pointer of ours dangles
    let held = !py_sizeof.is_empty();
    if held {
        for p in &ptrs {
            // SAFETY: GIL held; no Python code has run since the walk, every node is alive
            unsafe { ffi::Py_INCREF(*p as *mut ffi::PyObject) };
        }
    }
    let mut sizes = PySizeof::new();
    for id in py_sizeof {
        let obj = ptrs[id as usize] as *mut ffi::PyObject;
        // SAFETY: GIL held; every node is held (above)
        if let Some(s) = unsafe { sizes.measure(obj) } {
            let t = graph.node_type[id as usize];
            // the node was counted at its basic size: swap that for what __sizeof__ says
            let basic = unsafe { basic_size(obj) };
            let i = id as usize;
            graph.node_size[i] = graph.node_size[i] - basic + s;
            type_bytes[t as usize] = type_bytes[t as usize] - basic + s;
        }
    }
    let sizes_estimated = sizes.estimated;
    graph.type_names = types.names.clone();
    let hidden_refs = hidden(&graph, &ptrs, &refcnt, &roots);
    let mut root_nodes = FxHashMap::default();
    for (i, p) in ptrs.iter().enumerate() {
        if roots.by_ptr.contains_key(p) {
            root_nodes.insert(i as u32, *p);
        }
    }
    Ok(Snapshot {
        graph,
        types,
        ptrs,
        hidden_refs,
        roots,
        root_nodes,
        duration: started.elapsed(),
        sizes_estimated,
        type_count: count,
        type_bytes,
        absorbed,
        storage,
        held,
        gc_was_enabled,
        released: false,
    })
}

/// References the graph does not show, per node: its reference count (taken during the walk)
/// less its referrers in the graph, the gc list's reference (tracked objects) and our own.
fn hidden(graph: &HeapGraph, ptrs: &[usize], refcnt: &[u32], roots: &Roots) -> Vec<u32> {
    let mut seen = vec![0u32; ptrs.len()];
    for &to in &graph.edges {
        seen[to as usize] = seen[to as usize].saturating_add(1);
    }
    ptrs.iter()
        .enumerate()
        .map(|(i, p)| {
            let own = roots.own_refs.get(p).copied().unwrap_or(0);
            // SAFETY: GIL held; the object is alive (collector paused, see the module doc)
            let tracked =
                u32::from(unsafe { ffi::PyObject_GC_IsTracked(*p as *mut ffi::PyObject) } != 0);
            refcnt[i].saturating_sub(seen[i] + own + tracked)
        })
        .collect()
}

impl Snapshot {
    /// The node of an object, if the walk saw it.
    pub fn node_of(&self, obj: *mut ffi::PyObject) -> Option<u32> {
        // a linear scan would be too slow for repeated queries; callers ask for few objects
        self.ptrs
            .iter()
            .position(|p| *p == obj as usize)
            .map(|i| i as u32)
    }

    /// Drops the references the snapshot holds and resumes the collector. Must run with the
    /// GIL.
    pub fn release(&mut self, py: Python<'_>) {
        if self.released {
            return;
        }
        self.released = true;
        if self.held {
            for p in &self.ptrs {
                // SAFETY: GIL held (token); each node holds the reference taken after the walk
                unsafe { ffi::Py_DECREF(*p as *mut ffi::PyObject) };
            }
        }
        self.roots.release();
        resume_gc(py, self.gc_was_enabled);
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if !self.released {
            Python::attach(|py| self.release(py));
        }
    }
}
