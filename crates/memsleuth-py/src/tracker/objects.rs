//! The `objects` and `gc` instruments inside a tracking session: a census every few seconds on
//! a thread of its own, gc collections from `gc.callbacks`, and, when tracking stops, a last
//! census plus the holders of the largest surviving allocations and of the growing types.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memsleuth_analysis::heap::referrers;
use memsleuth_analysis::{LeakOptions, LeakReport};
use memsleuth_format::{GcCollection, Record};
use memsleuth_recorder::RecordSink;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::heap;

/// A census may take at most this share of the program's time: the next one waits at least
/// this many times as long as the last one took.
const CENSUS_PAUSE_FACTOR: u32 = 20;
/// Growing types whose instances get a retention path at the end, and instances per type.
const GROWING_TYPES: usize = 3;
const PATHS_PER_TYPE: usize = 2;
/// Largest sites whose surviving blocks get a holder.
const HOLDER_SITES: usize = 5;

/// The periodic census thread.
#[derive(Debug)]
pub(crate) struct CensusThread {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl CensusThread {
    pub fn spawn(sink: RecordSink, interval: Duration) -> Option<CensusThread> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("memsleuth-census".into())
            .spawn(move || {
                let mut wait = interval;
                loop {
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let took = Python::attach(|py| {
                        // the walk's own Python objects must not be recorded as the program's
                        super::hooks::ignore_this_thread();
                        // with the collector off, cycles pile up unseen: only the whole graph
                        // tells garbage from live objects, so take the full census then
                        census_into(py, &sink, !gc_enabled(py))
                    });
                    wait = interval.max(took * CENSUS_PAUSE_FACTOR);
                }
            })
            .ok()?;
        Some(CensusThread { stop, thread })
    }

    /// Stops the thread; call without the GIL (it may be waiting for it).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn gc_enabled(py: Python<'_>) -> bool {
    py.import("gc")
        .and_then(|gc| gc.call_method0("isenabled"))
        .and_then(|v| v.extract())
        .unwrap_or(true)
}

/// Takes a census (and a pymalloc snapshot) into the capture; returns how long it took.
fn census_into(py: Python<'_>, sink: &RecordSink, retained: bool) -> Duration {
    let started = Instant::now();
    let t_ns = sink.now_ns();
    let census = if retained {
        heap::snapshot(py, &[], &FxHashSet::default()).map(|mut snap| {
            let c = heap::census_of(py, &snap, heap::CENSUS_ROWS);
            snap.release(py);
            c
        })
    } else {
        heap::quick_census(py, heap::CENSUS_ROWS).map(|(c, _)| c)
    };
    if let Ok(mut census) = census {
        census.t_ns = t_ns;
        sink.push(Record::Census(census));
    }
    pymalloc_into(py, sink);
    started.elapsed()
}

/// A snapshot of the small-object allocator, when pymalloc is in use.
fn pymalloc_into(py: Python<'_>, sink: &RecordSink) {
    if let Ok(mut p) = crate::pymalloc::snapshot(py) {
        p.t_ns = sink.now_ns();
        sink.push(Record::Pymalloc(p));
    }
}

/// Where gc events go, the process that set it (a forked child has no recorder: its events
/// would only pile up in the channel), and when the running collection started.
static GC_SINK: Mutex<Option<(RecordSink, u32, u64)>> = Mutex::new(None);

pub(crate) fn set_gc_sink(sink: Option<RecordSink>) {
    if let Ok(mut g) = GC_SINK.lock() {
        *g = sink.map(|s| (s, std::process::id(), 0));
    }
}

/// `gc.callbacks` entry: records each collection with its pause.
#[pyfunction]
pub fn gc_callback(phase: &str, info: &Bound<'_, PyDict>) {
    let Ok(mut guard) = GC_SINK.lock() else {
        return;
    };
    let Some((sink, owner, started)) = guard.as_mut() else {
        return;
    };
    if *owner != std::process::id() {
        return;
    }
    let now = sink.now_ns();
    if phase == "start" {
        *started = now;
        return;
    }
    let get = |k: &str| -> u64 {
        info.get_item(k)
            .ok()
            .flatten()
            .and_then(|v| v.extract().ok())
            .unwrap_or(0)
    };
    let t_ns = if *started > 0 { *started } else { now };
    sink.push(Record::Gc(GcCollection {
        t_ns,
        duration_ns: now.saturating_sub(t_ns),
        generation: get("generation") as u8,
        collected: get("collected"),
        uncollectable: get("uncollectable"),
    }));
    *started = 0;
}

/// The end of a session: a last census with retained sizes, then retention paths for the
/// surviving blocks of the largest sites and for instances of the types that grew. Runs with
/// the hooks off and the recorder still open; `sync` makes the capture readable so far.
pub(crate) fn finish(
    py: Python<'_>,
    sink: &RecordSink,
    path: &std::path::Path,
    sync: impl FnOnce() -> bool + Send,
    extra_roots: &[(Bound<'_, PyAny>, String)],
) {
    let t_ns = sink.now_ns();
    // first the capture's own answer to "what survives at the largest sites", with the GIL
    // released (the resolver needs it); no pointer into the heap is held across that
    if !py.detach(sync) {
        return;
    }
    let mut wanted: Vec<(u64, u32)> = Vec::new(); // (block address, stack)
    let opts = LeakOptions {
        windows: 0,
        ..LeakOptions::default()
    };
    if let Ok(report) = py.detach(|| LeakReport::from_path(path, &opts)) {
        for site in report.samples.iter().take(HOLDER_SITES) {
            wanted.extend(site.iter().map(|&a| (a, 0)));
        }
    }
    let wanted_set: FxHashSet<u64> = wanted.iter().map(|w| w.0).collect();
    let Ok(mut snap) = heap::snapshot(py, extra_roots, &wanted_set) else {
        return;
    };
    let mut census = heap::census_of(py, &snap, heap::CENSUS_ROWS);
    census.t_ns = t_ns;
    let last_census = census.clone();
    sink.push(Record::Census(census));
    pymalloc_into(py, sink);
    let growing = growing_types(path, &last_census);
    let growing: FxHashSet<u32> = snap
        .graph
        .type_names
        .iter()
        .enumerate()
        .filter(|(_, n)| growing.contains(n.as_str()))
        .map(|(i, _)| i as u32)
        .collect();
    let mut by_block: FxHashMap<u64, u32> = FxHashMap::default();
    let mut type_samples: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for n in 0..snap.graph.len() as u32 {
        let b = snap.block_of(n);
        if wanted_set.contains(&b) {
            by_block.insert(b, n);
        }
        let t = snap.graph.node_type[n as usize];
        if growing.contains(&t) {
            // the newest instances are the likeliest leaks: keep the last ones seen
            let list = type_samples.entry(t).or_default();
            list.push(n);
            if list.len() > PATHS_PER_TYPE {
                list.remove(0);
            }
        }
    }
    let refs = referrers(&snap.graph);
    for (addr, stack) in wanted {
        if let Some(&n) = by_block.get(&addr) {
            for p in snap.paths(py, &refs, n, 1, 0) {
                sink.push(Record::Holder(p.to_holder(stack, addr)));
            }
        }
    }
    for nodes in type_samples.values() {
        for &n in nodes {
            let addr = snap.block_of(n);
            for p in snap.paths(py, &refs, n, 1, 0) {
                sink.push(Record::Holder(p.to_holder(0, addr)));
            }
        }
    }
    snap.release(py);
}

/// Types whose instance count grew from the first census of the capture to `last`, largest
/// growth first.
fn growing_types(path: &std::path::Path, last: &memsleuth_format::Census) -> FxHashSet<String> {
    let Ok(capture) = memsleuth_format::read_capture_series(path) else {
        return FxHashSet::default();
    };
    let Some(first) = capture.records.iter().find_map(|r| match r {
        Record::Census(c) => Some(c),
        _ => None,
    }) else {
        return FxHashSet::default();
    };
    let before: FxHashMap<&str, u64> = first
        .types
        .iter()
        .map(|t| (t.name.as_str(), t.count))
        .collect();
    let mut grew: Vec<(u64, &str)> = last
        .types
        .iter()
        .filter(|t| t.name != "(other)")
        .filter_map(|t| {
            let was = before.get(t.name.as_str()).copied().unwrap_or(0);
            (t.count > was).then(|| (t.count - was, t.name.as_str()))
        })
        .collect();
    grew.sort_by(|a, b| b.cmp(a));
    grew.iter()
        .take(GROWING_TYPES)
        .map(|(_, n)| n.to_string())
        .collect()
}
