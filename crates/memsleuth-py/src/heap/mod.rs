//! The `objects` instrument: a census of live objects by type, with retained sizes, and the
//! reference chains that keep an object alive — from one walk of the heap through
//! `tp_traverse`, in Rust.

mod bfs;
mod count;
mod describe;
mod roots;
mod storage;
mod types;
mod walk;

use memsleuth_analysis::heap::{
    dominators_with, fill_retained, nearest, path_to_root, referrers, PathStep, Referrers,
    RetentionPath, RootKind, TypeRow,
};
use memsleuth_format::{Census, CensusType};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustc_hash::{FxHashMap, FxHashSet};

pub(crate) use walk::Snapshot;

/// Types whose retained size is computed (the largest by shallow bytes).
const RETAINED_TYPES: usize = 64;
/// Rows kept in a census record; the rest are folded into `(other)`.
pub(crate) const CENSUS_ROWS: usize = 300;
/// Sample instances kept per type, to find where they were allocated.
const SAMPLES: usize = 5;
/// Direct referrers of a target whose chains are searched.
const MAX_HOLDERS_SEARCHED: usize = 16;
/// Nodes a path search may visit before giving up.
const PATH_SEARCH_NODES: usize = 5_000_000;

fn minor(py: Python<'_>) -> u8 {
    py.version_info().minor
}

/// Refuses a walk of `objects` gc-tracked objects, at `per_object` bytes each, when this
/// process cannot map that much more memory now (see [`memsleuth_platform::can_map`]).
fn ensure_headroom(objects: usize, per_object: usize) -> PyResult<()> {
    const BASE: usize = 32 << 20;
    let bytes = objects.saturating_mul(per_object).saturating_add(BASE);
    if memsleuth_platform::can_map(bytes) {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyMemoryError::new_err(format!(
            "not enough memory left to walk the heap (about {} MiB needed); the census is skipped",
            bytes >> 20
        )))
    }
}

/// Takes a snapshot of this interpreter's heap (GIL held).
/// `keep`: allocation blocks that must stay nodes of their own, for their paths to be found
/// (small leaves with one reference are otherwise folded into the object that holds them).
pub(crate) fn snapshot(
    py: Python<'_>,
    extra_roots: &[(Bound<'_, PyAny>, String)],
    keep: &FxHashSet<u64>,
) -> PyResult<Snapshot> {
    walk::take(py, minor(py), extra_roots, keep)
}

/// A census without retained sizes, from a count of the heap (no graph): what the periodic
/// censuses of `run` take. t_ns is left 0.
pub(crate) fn quick_census(py: Python<'_>, max_rows: usize) -> PyResult<(Census, u64)> {
    let c = count::count(py, minor(py), true)?;
    let rows = type_rows(&c.count, &c.bytes);
    let census = census_record(
        py,
        &c.types.names,
        &rows,
        |t| c.samples[t as usize].clone(),
        max_rows,
        Totals {
            objects: c.objects,
            bytes: c.total_bytes,
            unreachable: (0, 0),
            duration: c.duration,
            gc_enabled: c.gc_was_enabled,
        },
    );
    Ok((census, c.sizes_estimated))
}

/// One row per type present, largest shallow bytes first (then most instances).
fn type_rows(count: &[u64], bytes: &[u64]) -> Vec<TypeRow> {
    let mut rows: Vec<TypeRow> = (0..count.len())
        .filter(|&t| count[t] > 0)
        .map(|t| TypeRow {
            type_id: t as u32,
            count: count[t],
            bytes: bytes[t],
            retained: None,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.count.cmp(&a.count))
            .then(a.type_id.cmp(&b.type_id))
    });
    rows
}

struct Totals {
    objects: u64,
    bytes: u64,
    unreachable: (u64, u64),
    duration: std::time::Duration,
    gc_enabled: bool,
}

fn census_record(
    py: Python<'_>,
    names: &[String],
    rows: &[TypeRow],
    samples: impl Fn(u32) -> Vec<u64>,
    max_rows: usize,
    totals: Totals,
) -> Census {
    let mut types: Vec<CensusType> = Vec::new();
    let mut other = CensusType {
        name: "(other)".into(),
        ..CensusType::default()
    };
    for (i, r) in rows.iter().enumerate() {
        if i < max_rows {
            types.push(CensusType {
                name: names[r.type_id as usize].clone(),
                count: r.count,
                bytes: r.bytes,
                retained: r.retained,
                samples: samples(r.type_id),
            });
        } else {
            other.count += r.count;
            other.bytes += r.bytes;
        }
    }
    if other.count > 0 {
        types.push(other);
    }
    let gc = py.import("gc").ok();
    let gc_counts: Vec<u64> = gc
        .as_ref()
        .and_then(|gc| gc.call_method0("get_count").ok()?.extract().ok())
        .unwrap_or_default();
    let garbage_list = gc.as_ref().and_then(|gc| gc.getattr("garbage").ok());
    let garbage = garbage_list
        .as_ref()
        .and_then(|g| g.len().ok())
        .unwrap_or(0) as u64;
    let garbage_types = garbage_list
        .map(|g| garbage_types(py, &g))
        .unwrap_or_default();
    Census {
        t_ns: 0,
        duration_ns: totals.duration.as_nanos() as u64,
        objects: totals.objects,
        bytes: totals.bytes,
        gc_enabled: totals.gc_enabled,
        gc_counts,
        unreachable: totals.unreachable.0,
        unreachable_bytes: totals.unreachable.1,
        garbage,
        types,
        garbage_types,
    }
}

/// What `gc.garbage` holds, by type, most first (the list's items, read without running
/// their code).
fn garbage_types(py: Python<'_>, garbage: &Bound<'_, PyAny>) -> Vec<(String, u64)> {
    let Ok(list) = garbage.cast::<pyo3::types::PyList>() else {
        return Vec::new();
    };
    let mut types = types::Types::new(minor(py));
    let mut counts: FxHashMap<u32, u64> = FxHashMap::default();
    for item in list.iter() {
        // SAFETY: GIL held; a live item of the list
        let t = unsafe { types.id(ffi::Py_TYPE(item.as_ptr())) };
        *counts.entry(t).or_default() += 1;
    }
    let mut out: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(t, n)| (types.names[t as usize].clone(), n))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The census of a snapshot, with retained sizes for the largest types and the objects no
/// root reaches, as a capture record (t_ns left 0).
pub(crate) fn census_of(py: Python<'_>, snap: &Snapshot, max_rows: usize) -> Census {
    let g = &snap.graph;
    let refs = referrers(g);
    let mut rows = type_rows(&snap.type_count, &snap.type_bytes);
    let mut unreachable = (0u64, 0u64);
    let d = dominators_with(g, &refs, &root_set(snap));
    drop(refs);
    let k = rows.len().min(RETAINED_TYPES);
    fill_retained(g, &d, &mut rows[..k]);
    for (n, un) in d.unrooted.iter().enumerate() {
        if *un {
            unreachable.0 += 1 + u64::from(snap.absorbed[n]);
            unreachable.1 += g.node_size[n];
        }
    }
    let samples = samples(snap, &rows[..rows.len().min(max_rows)]);
    census_record(
        py,
        &g.type_names,
        &rows,
        |t| samples.get(&t).cloned().unwrap_or_default(),
        max_rows,
        Totals {
            objects: snap.type_count.iter().sum(),
            bytes: snap.type_bytes.iter().sum(),
            unreachable,
            duration: snap.duration,
            gc_enabled: snap.gc_was_enabled,
        },
    )
}

/// Bytes CPython keeps in front of `obj`.
fn preheader(obj: &Bound<'_, PyAny>) -> u64 {
    let mut types = types::Types::new(minor(obj.py()));
    // SAFETY: GIL held (the bound object's token); a live object's type
    let t = unsafe { types.id(ffi::Py_TYPE(obj.as_ptr())) };
    types.preheader_of(t)
}

/// A few instances of each of the top types, as allocation-block addresses, spread over the
/// walk's order.
fn samples(snap: &Snapshot, rows: &[TypeRow]) -> FxHashMap<u32, Vec<u64>> {
    let g = &snap.graph;
    let mut want: FxHashMap<u32, (u64, u64)> = FxHashMap::default();
    for r in rows {
        // every step-th instance, so the samples span old and young objects
        want.insert(r.type_id, ((r.count / SAMPLES as u64).max(1), 0));
    }
    let mut out: FxHashMap<u32, Vec<u64>> = FxHashMap::default();
    for (n, &t) in g.node_type.iter().enumerate() {
        let Some((step, seen)) = want.get_mut(&t) else {
            continue;
        };
        *seen += 1;
        if (*seen - 1) % *step != 0 {
            continue;
        }
        let list = out.entry(t).or_default();
        if list.len() < SAMPLES {
            list.push(snap.block_of(n as u32));
        }
    }
    out
}

/// Everything a retention path may start at: the named roots and whatever C holds.
fn root_set(snap: &Snapshot) -> Vec<u32> {
    let mut roots: Vec<u32> = snap.root_nodes.keys().copied().collect();
    roots.extend(
        snap.hidden_refs
            .iter()
            .enumerate()
            .filter(|(_, h)| **h > 0)
            .map(|(n, _)| n as u32),
    );
    roots.sort_unstable();
    roots.dedup();
    roots
}

impl Snapshot {
    /// The allocation block of a node's object.
    pub fn block_of(&self, n: u32) -> u64 {
        let t = self.graph.node_type[n as usize];
        (self.ptrs[n as usize] as u64).saturating_sub(self.types.preheader_of(t))
    }

    /// The node whose object each of `blocks` is, or whose storage it is (a list's item
    /// array, a dict's keys table...: the path to that owner is what keeps the block).
    pub fn nodes_of(&self, blocks: &FxHashSet<u64>) -> FxHashMap<u64, u32> {
        let mut found: FxHashMap<u64, u32> = FxHashMap::default();
        for n in 0..self.graph.len() as u32 {
            let b = self.block_of(n);
            if blocks.contains(&b) {
                found.insert(b, n);
            }
        }
        for b in blocks {
            if let Some(&n) = self.storage.get(b) {
                found.entry(*b).or_insert(n);
            }
        }
        found
    }

    /// One retention path of each of `blocks` the walk found, in their order.
    pub fn holders_of(&self, py: Python<'_>, blocks: &[u64]) -> Vec<(u64, RetentionPath)> {
        let wanted: FxHashSet<u64> = blocks.iter().copied().collect();
        let nodes = self.nodes_of(&wanted);
        let refs = referrers(&self.graph);
        blocks
            .iter()
            .filter_map(|b| Some((*b, *nodes.get(b)?)))
            .filter_map(|(b, n)| Some((b, self.paths(py, &refs, n, 1, 0).pop()?)))
            .collect()
    }

    /// The shortest paths that keep `target` alive, up to `max_paths`, one per direct referrer
    /// (so several holders show), shortest first. `hidden_own` is the number of references to
    /// the target the caller itself holds invisibly (an argument).
    pub fn paths(
        &self,
        py: Python<'_>,
        refs: &Referrers,
        target: u32,
        max_paths: usize,
        hidden_own: u32,
    ) -> Vec<RetentionPath> {
        let root = |n: u32| {
            self.root_nodes
                .get(&n)
                .and_then(|p| self.roots.by_ptr.get(p))
        };
        // a module's global outlives the frame that happens to hold the same object in a
        // local (a worker's `local = state()` of a module's thread-local): it is the holder
        let lasting = |n: u32| root(n).is_some_and(|r| r.lasting());
        let named = |n: u32| root(n).is_some_and(|r| !r.caller);
        let any_named = |n: u32| self.root_nodes.contains_key(&n);
        let hidden = |n: u32| {
            let h = self.hidden_refs[n as usize];
            if n == target {
                h.saturating_sub(hidden_own) > 0
            } else {
                h > 0
            }
        };
        let search = |start: u32| -> Option<(u8, Vec<u32>)> {
            path_to_root(refs, start, lasting, PATH_SEARCH_NODES)
                .map(|p| (0, p))
                .or_else(|| path_to_root(refs, start, named, PATH_SEARCH_NODES).map(|p| (1, p)))
                .or_else(|| path_to_root(refs, start, any_named, PATH_SEARCH_NODES).map(|p| (2, p)))
                .or_else(|| nearest(refs, start, hidden, PATH_SEARCH_NODES).map(|p| (3, p)))
        };
        // (tier, nodes): a lasting root beats a running frame, which beats the caller's own
        // frame, which beats "held from C"
        let mut found: Vec<(u8, Vec<u32>)> = Vec::new();
        if lasting(target) {
            found.push((0, vec![target]));
        } else if named(target) {
            found.push((1, vec![target]));
        }
        let mut holders: Vec<u32> = refs.of(target).to_vec();
        holders.sort_unstable();
        holders.dedup();
        for r in holders.into_iter().take(MAX_HOLDERS_SEARCHED) {
            if let Some((tier, mut p)) = search(r) {
                p.push(target);
                found.push((tier, p));
            }
        }
        if found.is_empty() {
            // nothing in the graph leads to it: C holds it, or nothing does
            found.push((if hidden(target) { 3 } else { 4 }, vec![target]));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.len().cmp(&b.1.len())));
        // each path ends through a different direct holder: the ways the object is kept
        found.dedup_by(|a, b| a.1 == b.1);
        found.truncate(max_paths.max(1));
        found
            .iter()
            .map(|(_, p)| self.describe_path(py, p, target, hidden_own))
            .collect()
    }

    fn describe_path(
        &self,
        py: Python<'_>,
        nodes: &[u32],
        target: u32,
        hidden_own: u32,
    ) -> RetentionPath {
        let _ = py;
        let first = nodes[0];
        let ptr = |n: u32| self.ptrs[n as usize] as *mut ffi::PyObject;
        let (kind, words) = match self
            .root_nodes
            .get(&first)
            .and_then(|p| self.roots.by_ptr.get(p))
        {
            Some(r) => (r.kind, r.words.clone()),
            None => {
                let mut h = self.hidden_refs[first as usize];
                if first == target {
                    h = h.saturating_sub(hidden_own);
                }
                if h > 0 {
                    let refs = if h == 1 { "reference" } else { "references" };
                    (
                        RootKind::HeldFromC,
                        format!("held from C ({h} {refs} the gc cannot see)"),
                    )
                } else {
                    (
                        RootKind::Unreachable,
                        "unreachable cycle (garbage the gc has not collected)".into(),
                    )
                }
            }
        };
        let objs: Vec<(*mut ffi::PyObject, String, u64)> = nodes
            .iter()
            .map(|&n| {
                let t = self.graph.node_type[n as usize] as usize;
                (
                    ptr(n),
                    self.graph.type_names[t].clone(),
                    self.graph.node_size[n as usize],
                )
            })
            .collect();
        // SAFETY: GIL held (token); every node is alive while the snapshot is
        unsafe { describe_objects(&objs, &self.roots, kind, words) }
    }
}

/// A retention path from the objects on it (root first), each with its type name and size.
///
/// # Safety
/// GIL held; every object alive.
unsafe fn describe_objects(
    objs: &[(*mut ffi::PyObject, String, u64)],
    roots: &roots::Roots,
    kind: RootKind,
    words: String,
) -> RetentionPath {
    let mut steps: Vec<PathStep> = Vec::with_capacity(objs.len());
    let mut skip_next_dict = false;
    // `function .__closure__ → tuple [0] → cell .cell_contents → x` reads better as
    // `function closure 'name' → x`: the tuple and cell steps are dropped
    let mut closure: Option<(usize, String)> = None;
    for (i, (obj, type_name, size)) in objs.iter().enumerate() {
        let obj = *obj;
        if let Some((end, _)) = &closure {
            if i + 3 > *end && i < *end {
                continue;
            }
        }
        if closure.is_none() && i + 3 < objs.len() {
            // SAFETY: the caller's guarantee
            closure = unsafe { describe::closure_name(obj, objs[i + 1].0, objs[i + 2].0) }
                .map(|name| (i + 3, name));
        }
        // SAFETY (loop): the caller's guarantee
        let repr = unsafe { describe::short_repr(obj, type_name) };
        let mut edge = String::new();
        if let Some((end, name)) = &closure {
            if i == *end {
                edge = format!("closure '{name}'");
                closure = None;
                steps.push(PathStep {
                    edge,
                    type_name: type_name.clone(),
                    repr,
                    addr: obj as u64,
                    size: *size,
                });
                continue;
            }
        }
        if i > 0 {
            let parent = objs[i - 1].0;
            edge =
                unsafe { describe::edge_label(parent, obj, roots) }.unwrap_or_else(|| "->".into());
            // a named root that is itself a globals dict (`__main__` under `run`)
            let globals_root = i == 1 && kind == RootKind::Module;
            if skip_next_dict || globals_root {
                edge = attribute(&edge);
                skip_next_dict = false;
            }
            // `obj.__dict__ ['x']` reads better as `obj.x`: drop the dict step
            if i + 1 < objs.len() && unsafe { describe::is_attribute_dict(parent, obj) } {
                skip_next_dict = true;
                continue;
            }
        }
        steps.push(PathStep {
            edge,
            type_name: type_name.clone(),
            repr,
            addr: obj as u64,
            size: *size,
        });
    }
    RetentionPath {
        root_kind: kind,
        root: words,
        steps,
    }
}

/// `['name']` → `.name` for identifier keys.
fn attribute(label: &str) -> String {
    match label.strip_prefix("['").and_then(|s| s.strip_suffix("']")) {
        Some(k) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
            format!(".{k}")
        }
        _ => label.to_string(),
    }
}

/// `memsleuth.census()`: live objects by type. Returns `(json, text)`; the Python layer wraps
/// them.
#[pyfunction]
#[pyo3(signature = (retained=true, top=25))]
pub fn census(py: Python<'_>, retained: bool, top: usize) -> PyResult<(String, String)> {
    let (c, estimated) = if retained {
        let mut snap = snapshot(py, &[], &FxHashSet::default())?;
        let c = census_of(py, &snap, usize::MAX);
        snap.release(py);
        (c, snap.sizes_estimated)
    } else {
        quick_census(py, usize::MAX)?
    };
    let model = memsleuth_analysis::census::CensusModel::from_record(&c, estimated);
    Ok((
        memsleuth_render::objects::census_json(&model),
        memsleuth_render::objects::census_text(&model, top),
    ))
}

/// `memsleuth.why(obj)`: the reference chains that keep `obj` alive. Returns a dict with
/// `text`, `json`, `dot` and `svg` renderings.
#[pyfunction]
#[pyo3(signature = (obj, max_paths=3))]
pub fn why(py: Python<'_>, obj: &Bound<'_, PyAny>, max_paths: usize) -> PyResult<Py<PyDict>> {
    let out = PyDict::new(py);
    // a search from the roots finds most holders without building the heap's graph
    let mut paths = bfs::search(py, obj, max_paths)?;
    let mut found = !paths.is_empty();
    if paths.is_empty() {
        // the caller's own frame, C, or nothing: that takes the whole graph to tell
        // the object itself must stay a node even when it is a leaf
        let block = obj.as_ptr() as u64 - preheader(obj);
        let mut snap = snapshot(py, &[], &FxHashSet::from_iter([block]))?;
        let target = snap.node_of(obj.as_ptr());
        found = target.is_some();
        if let Some(t) = target {
            let refs = referrers(&snap.graph);
            // the argument itself is a reference the graph does not show
            paths = snap.paths(py, &refs, t, max_paths, 1);
        }
        snap.release(py);
    }
    let target = found.then_some(());
    out.set_item("text", memsleuth_render::retention::paths_text(&paths))?;
    out.set_item("json", memsleuth_render::retention::paths_json(&paths))?;
    out.set_item("dot", memsleuth_render::retention::paths_dot(&paths))?;
    out.set_item("svg", memsleuth_render::retention::paths_svg(&paths))?;
    out.set_item("found", target.is_some())?;
    Ok(out.unbind())
}
