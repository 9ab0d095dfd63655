//! The `objects` and `gc` instruments inside a tracking session: a census every few seconds on
//! a thread of its own, gc collections from `gc.callbacks`, and, when the program's main code
//! ends (or tracking stops, whichever comes first), a last census plus the holders of the
//! largest surviving allocations and of the growing types.

use std::fs::File;
use std::io::{BufReader, Take};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memsleuth_analysis::heap::referrers;
use memsleuth_analysis::{LeakOptions, LeakPass, LeakReport};
use memsleuth_format::{Census, GcCollection, Record};
use memsleuth_recorder::RecordSink;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::heap;

/// A census may take at most this share of the program's time: the next one waits at least
/// this many times as long as the last one took.
const CENSUS_PAUSE_FACTOR: u32 = 20;
/// Growing types whose instances get a retention path at the end, and instances per type.
const GROWING_TYPES: usize = 3;
const PATHS_PER_TYPE: usize = 2;
/// How long starting and stopping the census thread wait for it to run and to end.
const THREAD_WAIT: Duration = Duration::from_secs(5);
/// Largest sites whose surviving blocks get a holder.
const HOLDER_SITES: usize = 5;
/// The next largest sites (of those the leak report samples) get one too while the searches
/// so far took less than this: a line that only grows a container's storage (an item array,
/// a keys table) is often smaller than the lines that make its items, yet it is the leak's
/// one line that names the container.
const MORE_HOLDER_SITES_BUDGET: Duration = Duration::from_secs(1);

/// The periodic census thread.
///
/// It is started by `_thread.start_new_thread`, not as a plain OS thread: a census needs the
/// GIL, and a thread without a Python thread state can only get one through
/// `PyGILState_Ensure`, which allocates it through the RAW allocator before holding the GIL,
/// racing with any program that swaps allocators meanwhile (`tracemalloc.stop()`). CPython
/// creates the state of the threads it starts while the parent holds the GIL.
#[derive(Debug)]
pub(crate) struct CensusThread {
    stop: Sender<()>,
    /// The first census taken, once its loop ends.
    done: Receiver<Option<Census>>,
    /// The thread's id, once it started.
    tid: Option<u64>,
}

/// What the census thread runs; taken once by the thread.
struct CensusJob {
    sink: RecordSink,
    interval: Duration,
    /// Blocks to find holders of at the next census, when `run`'s reader offers some.
    wanted: Option<super::reader::Wanted>,
    stopped: Receiver<()>,
    /// The thread's id, sent once it runs the loop, holding the GIL.
    started: Sender<Option<u64>>,
    done: Sender<Option<Census>>,
}

/// The census loop as a Python callable, for `_thread.start_new_thread`.
#[pyclass(frozen)]
struct CensusRun {
    job: Mutex<Option<CensusJob>>,
}

#[pymethods]
impl CensusRun {
    fn __call__(&self, py: Python<'_>) {
        let Some(job) = self.job.lock().ok().and_then(|mut j| j.take()) else {
            return;
        };
        // the walk's own Python objects must not be recorded as the program's
        super::hooks::ignore_this_thread();
        let CensusJob {
            sink,
            interval,
            wanted,
            mut stopped,
            started,
            done,
        } = job;
        let _ = started.send(memsleuth_platform::this_thread());
        let mut wait = interval;
        let mut first = None;
        loop {
            // `detach` needs what it runs to be Send, and a receiver is Send only by value: it
            // moves in and back out
            let got;
            (stopped, got) = py.detach(move || {
                let got = stopped.recv_timeout(wait);
                (stopped, got)
            });
            if !matches!(got, Err(RecvTimeoutError::Timeout)) {
                break;
            }
            // asked to stop while this thread waited for the GIL: the main code's end is
            // being marked, and a census stamped after the mark would read as the end's
            // (see `CensusThread::ask_stop`); holding the GIL now, the ask cannot race this
            if !matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
                break;
            }
            let started = Instant::now();
            let offered = wanted
                .as_ref()
                .filter(|_| first.is_some())
                .and_then(|w| w.lock().ok().and_then(|mut w| w.take()));
            match offered {
                // the census comes from the graph the holder search walks anyway
                Some(blocks) => {
                    hold(py, &sink, sink.now_ns(), &blocks, &[], None, false);
                    // the graph's memory goes back to the OS, or RSS would keep it as if the
                    // program had grown
                    memsleuth_platform::release_free_memory();
                }
                // with the collector off, cycles pile up unseen: only the whole graph tells
                // garbage from live objects, so take the full census then
                None => census_into(py, &sink, !gc_enabled(py), &mut first),
            }
            wait = interval.max(started.elapsed().saturating_mul(CENSUS_PAUSE_FACTOR));
        }
        let _ = done.send(first);
    }
}

impl CensusThread {
    pub fn spawn(
        py: Python<'_>,
        sink: RecordSink,
        interval: Duration,
        wanted: Option<super::reader::Wanted>,
    ) -> Option<CensusThread> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let run = CensusRun {
            job: Mutex::new(Some(CensusJob {
                sink,
                interval,
                wanted,
                stopped,
                started: started_tx,
                done: done_tx,
            })),
        };
        py.import("_thread")
            .and_then(|t| t.call_method1("start_new_thread", (run, PyTuple::empty(py))))
            .ok()?;
        // the new thread's first step frees its start-up record through the RAW allocator
        // without the GIL (CPython's `pythread_wrapper`): the program must not go on to start or
        // stop tracemalloc meanwhile, whose hook would see it half set up or torn down (a debug
        // build aborts on `tracemalloc_remove_trace`'s assertion; seen in 4 of 12 runs of 50
        // sessions under load). The thread says when it holds the GIL, past that step.
        let tid = py
            .detach(move || started.recv_timeout(THREAD_WAIT))
            .ok()
            .flatten();
        Some(CensusThread { stop, done, tid })
    }

    /// Asks the thread to take no further census, without waiting. Called with the GIL held
    /// before the main code's end is marked: the thread checks for the ask while it holds the
    /// GIL, before it stamps a census, so every census it takes is stamped before the mark.
    pub fn ask_stop(&self) {
        let _ = self.stop.send(());
    }

    /// Stops the thread and waits until it has ended; returns the first census it took. Call
    /// without the GIL (the thread may be waiting for it). Returns at once if the thread never
    /// ran: its job, and the sender of `done` with it, is dropped with the callable.
    ///
    /// Its end is waited for, not only its last census: after the loop, CPython frees the
    /// thread's state through the RAW allocator without the GIL (`_PyThreadState_DeleteCurrent`),
    /// the same hazard as at its start (see `spawn`).
    pub fn stop(self) -> Option<Census> {
        let _ = self.stop.send(());
        let first = self.done.recv().ok()?;
        if let Some(tid) = self.tid {
            // bounded: a thread that cannot end must not hang the program's exit
            memsleuth_platform::wait_thread_gone(tid, THREAD_WAIT);
        }
        first
    }
}

fn gc_enabled(py: Python<'_>) -> bool {
    py.import("gc")
        .and_then(|gc| gc.call_method0("isenabled"))
        .and_then(|v| v.extract())
        .unwrap_or(true)
}

/// Takes a census (and a pymalloc snapshot) into the capture; keeps a copy in `first` when it
/// is the first.
fn census_into(py: Python<'_>, sink: &RecordSink, retained: bool, first: &mut Option<Census>) {
    let t_ns = sink.now_ns();
    let census = if retained {
        heap::snapshot(py, &[], &FxHashSet::default()).map(|mut snap| {
            let c = heap::census_of(py, &snap, heap::CENSUS_ROWS);
            snap.release(py);
            drop(snap);
            memsleuth_platform::release_free_memory();
            c
        })
    } else {
        heap::quick_census(py, heap::CENSUS_ROWS).map(|(c, _)| c)
    };
    if let Ok(mut c) = census {
        c.t_ns = t_ns;
        if first.is_none() {
            *first = Some(c.clone());
        }
        sink.push(Record::Census(c));
    }
    pymalloc_into(py, sink);
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

/// The leak report's pass stopped at the end of the program's main code, to be read on after
/// its shutdown (`None` when the report was only made to pick the blocks to hold).
#[derive(Debug)]
pub(crate) struct MainEnd {
    pass: Option<LeakPass<Take<BufReader<File>>>>,
}

/// At the end of the program's main code, before its shutdown (threads joined, `atexit`
/// handlers) frees what it kept: a last census with retained sizes, then retention paths for
/// the surviving blocks of the largest sites and for instances of the types that grew, all into
/// the capture. Runs with the recorder open; `sync` makes the capture readable so far and
/// returns its length. Tracking may go on after it (the program's shutdown is tracked too).
///
/// The leak report that picks the blocks to hold is made as `report` asks: with `Some`, the
/// whole report (verdicts per site), whose pass [`after_main_end`] reads on to the end, going
/// on from the pass read while the program ran when there is one; with `None`, only what
/// picking the blocks needs.
pub(crate) fn at_main_end(
    py: Python<'_>,
    sink: &RecordSink,
    path: &std::path::Path,
    sync: impl FnOnce() -> Option<u64> + Send,
    extra_roots: &[(Bound<'_, PyAny>, String)],
    first_census: Option<&Census>,
    report: Option<(LeakOptions, Option<super::reader::Pass>)>,
) -> Option<MainEnd> {
    let t_ns = sink.now_ns();
    // a program that ran into its memory limit leaves no room for this work, and a refused
    // Rust allocation would abort it: the last census and the holders are skipped then
    if !memsleuth_platform::can_map(memsleuth_analysis::allocs::memory_needed(path)) {
        return None;
    }
    let whole = report.is_some();
    let (opts, read_so_far) = report.unwrap_or((
        LeakOptions {
            windows: 0,
            ..LeakOptions::default()
        },
        None,
    ));
    // first the capture's own answer to "what survives at the largest sites", with the GIL
    // released (other threads' hooks may be waiting for the recorder); no pointer into the
    // heap is held across that
    let (pass, leaks) = py.detach(move || {
        let upto = sync()?;
        let pass = match read_so_far {
            Some(mut pass) => {
                pass.read_to(upto);
                pass
            }
            None => LeakPass::open_upto(path, &opts, upto).ok()?,
        };
        let leaks = pass.report().ok()?;
        Some((pass, leaks))
    })?;
    let wanted = leaks.blocks_to_hold();
    drop(leaks);
    hold_at_end(py, sink, t_ns, &wanted, extra_roots, first_census);
    Some(MainEnd {
        pass: whole.then_some(pass),
    })
}

/// [`at_main_end`]'s census and holder searches, for blocks picked elsewhere: by the attacher
/// of `memsleuth attach`, which keeps the leak report's pass on the capture in its own
/// process, so the program pays neither the pass' time nor its tables. `t_ns`: when the end
/// began, on the capture's clock.
pub(crate) fn hold_at_end(
    py: Python<'_>,
    sink: &RecordSink,
    t_ns: u64,
    blocks: &[(u64, usize)],
    extra_roots: &[(Bound<'_, PyAny>, String)],
    first_census: Option<&Census>,
) {
    // stack 0: found at the end, these also serve as instances of their types (`report growth`)
    let wanted: Vec<(u64, usize, u32)> = blocks.iter().map(|&(a, rank)| (a, rank, 0)).collect();
    hold(py, sink, t_ns, &wanted, extra_roots, first_census, true);
}

impl MainEnd {
    /// The end's work was done with no report to read on (see [`hold_at_end`]).
    pub(crate) fn without_report() -> MainEnd {
        MainEnd { pass: None }
    }
}

/// The leak report on the whole capture: the pass stopped at the main code's end reads what
/// came after (the shutdown, and the census and holders [`at_main_end`] recorded).
pub(crate) fn after_main_end(
    py: Python<'_>,
    main_end: MainEnd,
    sync: impl FnOnce() -> Option<u64> + Send,
) -> Option<LeakReport> {
    let mut pass = main_end.pass?;
    py.detach(move || {
        let upto = sync()?;
        pass.read_to(upto);
        pass.report().ok()
    })
}

/// The census and the holder searches of [`at_main_end`], and of a census while the program
/// runs: `wanted` are the blocks to hold, with the rank of their site (the largest first) and
/// the stack that allocated them (0 when not told).
/// `more_sites`: past [`HOLDER_SITES`], more sites while the searches are quick (at the end;
/// while the program runs, its pause is kept short).
fn hold(
    py: Python<'_>,
    sink: &RecordSink,
    t_ns: u64,
    wanted: &[(u64, usize, u32)],
    extra_roots: &[(Bound<'_, PyAny>, String)],
    first_census: Option<&Census>,
    more_sites: bool,
) {
    let wanted_set: FxHashSet<u64> = wanted.iter().map(|w| w.0).collect();
    let Ok(mut snap) = heap::snapshot(py, extra_roots, &wanted_set) else {
        return;
    };
    let mut census = heap::census_of(py, &snap, heap::CENSUS_ROWS);
    census.t_ns = t_ns;
    let growing = first_census
        .map(|first| growing_types(first, &census))
        .unwrap_or_default();
    sink.push(Record::Census(census));
    pymalloc_into(py, sink);
    let growing: FxHashSet<u32> = snap
        .graph
        .type_names
        .iter()
        .enumerate()
        .filter(|(_, n)| growing.contains(n.as_str()))
        .map(|(i, _)| i as u32)
        .collect();
    let by_block = snap.nodes_of(&wanted_set);
    let mut type_samples: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for n in 0..snap.graph.len() as u32 {
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
    let searching = Instant::now();
    for &(addr, rank, stack) in wanted {
        if rank >= HOLDER_SITES && (!more_sites || searching.elapsed() > MORE_HOLDER_SITES_BUDGET) {
            break;
        }
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

/// Types whose instance count grew from the first census of the session to `last`, largest
/// growth first.
fn growing_types(first: &Census, last: &Census) -> FxHashSet<String> {
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
