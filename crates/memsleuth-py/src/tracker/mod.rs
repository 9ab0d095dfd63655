//! The `python` instrument: allocator hooks, the stack walk, and the Python-facing start/stop.
//! One tracking session at a time per process (the allocator hooks are process-wide).

mod c_lines;
mod code_names;
mod codes;
mod frames;
mod got;
mod hooks;
mod native;
mod objects;
mod reader;
mod sampled;
mod table;
mod unwind;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Mutex;

use memsleuth_format::{EndReason, ExitStatus, Header};
use memsleuth_recorder::{AllocConfig, AllocRecorder, AllocStats};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{to_py, CaptureError, Error, MemsleuthError};
use crate::seconds;

pub use objects::gc_callback;

struct Active {
    recorder: AllocRecorder,
    /// The `objects` instrument: periodic censuses (None when off).
    census: Option<objects::CensusThread>,
    objects: bool,
    /// The process that started the session: a forked child has no recorder thread.
    owner: u32,
    path: PathBuf,
    /// What the end of the program's main code found, once it has come (`run` marks it).
    main_end: Option<objects::MainEnd>,
    /// The exit report's pass, read while the program runs (`run` with its exit report and
    /// the `objects` instrument, whose main-code end makes that report).
    reader: Option<reader::PassReader>,
    /// Between `attach`'s two end steps: what the second needs of the first.
    holding: Option<Holding>,
}

struct Holding {
    /// The census thread's first census, to tell the growing types.
    first_census: Option<memsleuth_format::Census>,
    /// When the end began, on the capture's clock.
    t_ns: u64,
}

static ACTIVE: Mutex<Option<Active>> = Mutex::new(None);

/// `memsleuth run` sets how it wants its exit verdict's leak report made, and the session's end
/// makes it in this process, from the same pass over the capture that picks the blocks to hold
/// (see `objects::finish`), then leaves the verdict here for `run` to take: one read of the
/// capture at exit instead of one per report. The API's `Tracker.stop()` leaves this unset.
static EXIT_REPORT: Mutex<Option<memsleuth_analysis::LeakOptions>> = Mutex::new(None);
static EXIT_VERDICT: Mutex<Option<memsleuth_analysis::ProgramVerdict>> = Mutex::new(None);

/// Asks the next session's end for the verdict (`None`: do not), and drops any left over.
pub(crate) fn want_exit_verdict(opts: Option<memsleuth_analysis::LeakOptions>) {
    if let Ok(mut w) = EXIT_REPORT.lock() {
        *w = opts;
    }
    take_exit_verdict();
}

/// The verdict the last session's end made, if it was asked for one and could make it.
pub(crate) fn take_exit_verdict() -> Option<memsleuth_analysis::ProgramVerdict> {
    EXIT_VERDICT.lock().ok().and_then(|mut v| v.take())
}

/// The header's list of instruments that are on.
fn instruments(native: bool, objects: bool) -> Vec<String> {
    let mut on = vec!["python", "rss"];
    if native {
        on.push("native");
    }
    if objects {
        on.extend(["objects", "gc"]);
    }
    on.into_iter().map(String::from).collect()
}

/// Whether this process started with the native instrument's preload library.
pub(crate) fn native_preloaded() -> bool {
    native::preloaded()
}

/// Why `native=True` cannot be had here, and what to do instead.
fn native_unavailable(why: native::Unavailable) -> String {
    match why {
        native::Unavailable::NotPreloaded => "native tracking needs memsleuth's preload library \
            loaded when Python starts: use `memsleuth run --native script.py`, or start Python \
            with LD_PRELOAD set to the path `memsleuth.native_library()` returns"
            .to_string(),
        native::Unavailable::OtherVersion(v) => format!(
            "the preload library in this process is of another memsleuth release (interface \
             {v}, this one needs {}): start Python again with the path \
             `memsleuth.native_library()` returns in LD_PRELOAD",
            memsleuth_hook::native::ABI_VERSION
        ),
    }
}

fn python_minor(py: Python<'_>) -> u8 {
    py.version_info().minor
}

/// Starts tracking every allocation of this process into the capture at `path`.
#[pyfunction]
#[pyo3(signature = (path, sample_bytes=0, stack_depth=128, argv=vec![], rss_interval=0.01, census_interval=0.0, native=false))]
#[allow(clippy::too_many_arguments)] // the Python signature: keyword arguments with defaults
pub fn track_start(
    py: Python<'_>,
    path: PathBuf,
    sample_bytes: u64,
    stack_depth: usize,
    argv: Vec<String>,
    rss_interval: f64,
    census_interval: f64,
    native: bool,
) -> PyResult<()> {
    let census_every = seconds::checked_or_off("census", census_interval, 0.001)?;
    let rss_every = seconds::checked_or_off("rss_interval", rss_interval, 0.001)?;
    if !(1..=hooks::MAX_DEPTH).contains(&stack_depth) {
        return Err(PyValueError::new_err(format!(
            "stack_depth must be between 1 and {}, got {stack_depth}",
            hooks::MAX_DEPTH
        )));
    }
    let mut active = ACTIVE
        .lock()
        .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
    if let Some(a) = active.take() {
        if a.owner == std::process::id() {
            let path = a.path.display().to_string();
            *active = Some(a);
            return Err(MemsleuthError::new_err(format!(
                "already tracking into {path}; one Tracker at a time per process"
            )));
        }
        // inherited through fork: the recorder thread exists only in the parent
        std::mem::forget(a);
    }
    if native {
        // checked before anything starts: without the preload there is nothing to record
        native::check().map_err(|why| MemsleuthError::new_err(native_unavailable(why)))?;
    }
    let minor = python_minor(py);
    let layout = frames::Layout::for_version(minor)
        .filter(|l| l.verify(py))
        .ok_or_else(|| {
            MemsleuthError::new_err(format!(
                "this Python ({}) is not supported for allocation tracking: memsleuth knows \
                 the frame layout of CPython 3.9 to 3.13",
                Python::version_str().lines().next().unwrap_or("?")
            ))
        })?;
    let names = code_names::CodeFields::probe(py).ok_or_else(|| {
        MemsleuthError::new_err(format!(
            "this Python ({}) is not supported for allocation tracking: memsleuth cannot find \
             the names in its code objects",
            Python::version_str().lines().next().unwrap_or("?")
        ))
    })?;
    if !(codes::ensure() && sampled::ensure()) {
        return Err(MemsleuthError::new_err(
            "cannot map memory for the tracker's tables",
        ));
    }
    // exact captures by default; sampled mode is meant for production and must never wait
    memsleuth_hook::set_policy(if sample_bytes == 0 {
        memsleuth_hook::Policy::Wait
    } else {
        memsleuth_hook::Policy::Drop
    });
    memsleuth_hook::init_ticks();
    // events left by an earlier session name code objects we no longer hold
    memsleuth_hook::drain(|_, _| {});
    let header = Header {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        argv,
        start_unix_ns: memsleuth_recorder::unix_now_ns(),
        python_version: Python::version_str().to_string(),
        instruments: instruments(native, census_interval > 0.0),
        sample_interval_ns: (rss_interval * 1e9) as u64,
        sample_bytes,
        hostname: memsleuth_recorder::hostname(),
    };
    let cfg = AllocConfig {
        start_mono_ns: memsleuth_hook::now_ns(),
        rss_interval: rss_every,
        own_bytes: Some(crate::own_memory::bytes),
        thread_start: Some(hooks::ignore_this_thread),
        on_pass: Some(unwind::refresh_if_stale),
        ..AllocConfig::default()
    };
    let file = File::create(&path).map_err(|e| {
        CaptureError::new_err(format!(
            "cannot create the capture {}: {e}; choose a writable path",
            path.display()
        ))
    })?;
    let recorder = py
        .detach(|| -> Result<AllocRecorder, Error> {
            let file = BufWriter::with_capacity(1 << 20, file);
            let resolve = move |keys: &[(u64, u32)]| {
                keys.iter()
                    .map(|&(code, instr)| names.resolve(code, instr))
                    .collect()
            };
            Ok(AllocRecorder::spawn(file, header, cfg, Box::new(resolve))?)
        })
        .map_err(|e| to_py(e, &path))?;
    let objects = census_interval > 0.0;
    // `run` with its exit report: the pass is read while the program runs, and offers the
    // largest sites' blocks to the census thread for holders
    let exit_report = EXIT_REPORT
        .lock()
        .ok()
        .and_then(|w| w.clone())
        .filter(|_| objects);
    let wanted: Option<reader::Wanted> = exit_report.as_ref().map(|_| reader::Wanted::default());
    let census = if objects {
        objects::set_gc_sink(Some(recorder.sink()));
        objects::CensusThread::spawn(py, recorder.sink(), census_every, wanted.clone())
    } else {
        None
    };
    let reader = exit_report
        .and_then(|opts| reader::PassReader::spawn(path.clone(), opts, recorder.flushed(), wanted));
    // SAFETY: GIL held; the layout was verified on this interpreter just above.
    unsafe { hooks::enable(layout, stack_depth, sample_bytes) };
    if native && native::install().is_err() {
        // checked above; only a preload swapped since could fail here
        native::uninstall();
    }
    *active = Some(Active {
        recorder,
        census,
        objects,
        owner: std::process::id(),
        path,
        main_end: None,
        reader,
        holding: None,
    });
    Ok(())
}

/// Stops tracking, finishes the capture and returns what was recorded. `exit_code` is the
/// target's status when the session ends with the program.
#[pyfunction]
#[pyo3(signature = (exit_code=None, main_globals=None, main_name=String::new()))]
pub fn track_stop(
    py: Python<'_>,
    exit_code: Option<i32>,
    main_globals: Option<Bound<'_, PyAny>>,
    main_name: String,
) -> PyResult<Option<Py<PyDict>>> {
    let taken = ACTIVE
        .lock()
        .map_err(|_| MemsleuthError::new_err("tracker state lost"))?
        .take();
    let Some(mut a) = taken else {
        hooks::disable();
        native::uninstall();
        return Ok(None);
    };
    if a.owner != std::process::id() {
        // a forked child: the parent's recorder is not ours to stop, and its capture not ours
        // to write
        hooks::disable();
        native::uninstall();
        std::mem::forget(a);
        return Ok(None);
    }
    let main_end = match a.main_end.take() {
        Some(m) => Some(m),
        // no main code's end was marked (the API's `Tracker.stop()`, `attach`): now is the
        // end, and the program goes on. The last census is taken while recording goes on, so
        // that what the program's other threads allocate meanwhile is in the capture, up to
        // its end: a leak that goes on must not look as if it stopped for the census' time
        None if a.objects => {
            let extra = extra_roots(main_globals, &main_name);
            main_end_work(py, &mut a, &extra)
        }
        None => None,
    };
    hooks::disable();
    native::uninstall();
    objects::set_gc_sink(None);
    let recorder = &a.recorder;
    let leaks = main_end.and_then(|m| objects::after_main_end(py, m, || recorder.sync().ok()));
    let (reason, status) = match exit_code {
        Some(c) => (EndReason::TargetExited, ExitStatus::Code(c)),
        None => (EndReason::Stopped, ExitStatus::Unknown),
    };
    let end_ns = a.recorder.sink().now_ns();
    let stopped = py.detach(|| a.recorder.stop(reason, status));
    if let (Some(mut r), Ok(stats)) = (leaks, stopped.as_ref()) {
        // the report was made before the trailer was written: how the capture ended is
        // known only now, as the trailer says it
        let trailer = memsleuth_format::Trailer {
            end_ns,
            reason,
            target_status: status,
            samples: stats.samples,
            dropped: stats.dropped,
            flushes: stats.flushes,
        };
        let duration = end_ns.max(r.capture.duration_ns);
        r.set_end(memsleuth_analysis::EndInfo::new(
            Some(trailer),
            None,
            status,
            duration,
        ));
        let verdict = py.detach(|| memsleuth_analysis::ProgramVerdict::from_leaks(r));
        if let Ok(mut v) = EXIT_VERDICT.lock() {
            *v = Some(verdict);
        }
    }
    let held = codes::release_all(py);
    let stats: AllocStats = stopped.map_err(|e| to_py(Error::from(e), &a.path))?;
    let d = PyDict::new(py);
    d.set_item("path", a.path.display().to_string())?;
    d.set_item("allocs", stats.allocs)?;
    d.set_item("frees", stats.frees)?;
    d.set_item("dropped", stats.dropped)?;
    d.set_item("frames", stats.frames)?;
    d.set_item("stacks", stats.stacks)?;
    d.set_item("code_objects_held", held)?;
    Ok(Some(d.unbind()))
}

/// The program's module globals as a root for the holder searches, named as `run` ran it.
fn extra_roots<'py>(
    main_globals: Option<Bound<'py, PyAny>>,
    main_name: &str,
) -> Vec<(Bound<'py, PyAny>, String)> {
    main_globals
        .into_iter()
        .map(|g| (g, format!("module __main__ ({main_name})")))
        .collect()
}

/// Stops the periodic censuses, then takes the last census and searches the holders (see
/// `objects::at_main_end`), with this thread's own allocations left out of the capture.
fn main_end_work(
    py: Python<'_>,
    a: &mut Active,
    extra: &[(Bound<'_, PyAny>, String)],
) -> Option<objects::MainEnd> {
    let first_census = a.census.take().and_then(|c| py.detach(|| c.stop()));
    let exit_report = EXIT_REPORT.lock().ok().and_then(|mut w| w.take());
    let read_so_far = a.reader.take().and_then(|r| py.detach(|| r.stop()));
    let sink = a.recorder.sink();
    let recorder = &a.recorder;
    hooks::ignoring_this_thread(|| {
        objects::at_main_end(
            py,
            &sink,
            &a.path,
            || recorder.sync().ok(),
            extra,
            first_census.as_ref(),
            exit_report.map(|opts| (opts, read_so_far)),
        )
    })
}

/// Marks the end of the program's main code (`run` calls it when the script returns or raises,
/// before the shutdown: threads joined, `atexit` handlers) and, with the `objects` instrument,
/// takes the last census and searches the holders of what grew now, while the program still
/// holds it: an `atexit` handler that clears a registry would leave no holder to find at the
/// end. Tracking goes on through the shutdown.
#[pyfunction]
#[pyo3(signature = (main_globals=None, main_name=String::new()))]
pub fn track_main_end(
    py: Python<'_>,
    main_globals: Option<Bound<'_, PyAny>>,
    main_name: String,
) -> PyResult<()> {
    // the census thread takes no census from here on: the mark's `detach` below lets it have
    // the GIL, and a census it stamped after the mark would be read as the end's, searched
    // without the script's globals among its roots (only `run`'s own frame holds them now)
    if let Ok(active) = ACTIVE.lock() {
        let ours = active.as_ref().filter(|a| a.owner == std::process::id());
        if let Some(census) = ours.and_then(|a| a.census.as_ref()) {
            census.ask_stop();
        }
    }
    track_phase(py, "main-end")?;
    // the session is taken out for the work, as `track_stop` does: the lock is not held while
    // the GIL is released, so no other thread can wait for it holding the GIL
    let taken = {
        let mut active = ACTIVE
            .lock()
            .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
        let ours = active
            .as_ref()
            .is_some_and(|a| a.owner == std::process::id() && a.objects && a.main_end.is_none());
        if ours {
            active.take()
        } else {
            None
        }
    };
    let Some(mut a) = taken else {
        return Ok(());
    };
    let extra = extra_roots(main_globals, &main_name);
    a.main_end = main_end_work(py, &mut a, &extra);
    let mut active = ACTIVE
        .lock()
        .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
    *active = Some(a);
    Ok(())
}

/// `attach`'s end, first step: the recording ends for the analyses, and the capture is made
/// whole so far for the attacher to pick the blocks to hold (see [`track_end_hold`]). The
/// census thread stops; a recording-end mark ends the program's time in the capture; the hooks
/// stop recording, so the program runs untracked while the attacher reads; the capture is
/// synced. Returns its length then, or `None` without the `objects` instrument or once the
/// end's work is done. The program never reads its own capture: it pays neither the pass' time
/// nor its tables, which `track_stop`'s own end work would build in it.
#[pyfunction]
pub fn track_end_sync(py: Python<'_>) -> PyResult<Option<u64>> {
    let taken = {
        let mut active = ACTIVE
            .lock()
            .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
        match active.as_mut() {
            Some(a) if a.owner == std::process::id() && a.objects && a.main_end.is_none() => {
                // a `track_stop` meanwhile (the program exiting) finds the end's work done
                a.main_end = Some(objects::MainEnd::without_report());
                if let Some(c) = a.census.as_ref() {
                    // no census stamped after the mark below (see `track_main_end`)
                    c.ask_stop();
                }
                Some((a.census.take(), a.recorder.sink()))
            }
            _ => None,
        }
    };
    let Some((census, sink)) = taken else {
        return Ok(None);
    };
    let marked = py.detach(|| sink.phase(memsleuth_format::PHASE_RECORDING_END));
    hooks::disable();
    native::uninstall();
    // joined whatever happened to the recorder: the census thread is out of the session now
    let first_census = census.and_then(|c| py.detach(|| c.stop()));
    let t_ns = sink.now_ns();
    let upto = marked
        .and_then(|_| py.detach(|| sink.sync()))
        .map_err(|_| MemsleuthError::new_err("the recorder thread is gone"))?;
    let mut active = ACTIVE
        .lock()
        .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
    let Some(a) = active.as_mut().filter(|a| a.owner == std::process::id()) else {
        return Ok(None);
    };
    a.holding = Some(Holding { first_census, t_ns });
    Ok(Some(upto))
}

/// `attach`'s end, second step: the last census and the holder searches, for the blocks of
/// the largest sites the attacher picked (`[(address, rank)]`; none when it did not answer:
/// instances of the growing types only). Then [`track_stop`] ends the session.
#[pyfunction]
pub fn track_end_hold(py: Python<'_>, blocks: Vec<(u64, usize)>) -> PyResult<()> {
    let taken = {
        let mut active = ACTIVE
            .lock()
            .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
        active
            .as_mut()
            .filter(|a| a.owner == std::process::id())
            .and_then(|a| Some((a.holding.take()?, a.recorder.sink(), a.path.clone())))
    };
    let Some((holding, sink, path)) = taken else {
        return Ok(());
    };
    // the heap walk's tables, in a program near its memory limit: as `objects::at_main_end`
    if !memsleuth_platform::can_map(memsleuth_analysis::allocs::memory_needed(&path)) {
        return Ok(());
    }
    hooks::ignoring_this_thread(|| {
        let first = holding.first_census.as_ref();
        objects::hold_at_end(py, &sink, holding.t_ns, &blocks, &[], first)
    });
    Ok(())
}

/// Marks a phase of the program (its main code ended, its shutdown ended) and waits until the
/// mark is in the capture, so analyses can tell the program's own time from what follows.
#[pyfunction]
pub fn track_phase(py: Python<'_>, phase: &str) -> PyResult<()> {
    let label = match phase {
        "main-end" => memsleuth_format::PHASE_MAIN_END,
        "shutdown-end" => memsleuth_format::PHASE_SHUTDOWN_END,
        _ => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown phase {phase:?}; give \"main-end\" or \"shutdown-end\""
            )))
        }
    };
    let sink = {
        let active = ACTIVE
            .lock()
            .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
        match active.as_ref() {
            Some(a) if a.owner == std::process::id() => a.recorder.sink(),
            _ => return Err(MemsleuthError::new_err("no tracking session is running")),
        }
    };
    // other threads' hooks may wait for the recorder while it takes the mark
    py.detach(|| sink.phase(label))
        .map(|_| ())
        .map_err(|_| MemsleuthError::new_err("the recorder thread is gone"))
}

/// True while this process is tracking.
#[pyfunction]
pub fn tracking() -> bool {
    hooks::enabled()
}

/// Leaves the calling thread's allocations out of every capture from now on: for memsleuth's
/// own Python threads (the `attach` session's), whose work is not the program's.
#[pyfunction]
pub fn ignore_this_thread() {
    hooks::ignore_this_thread();
}

/// Takes memsleuth's allocator wrappers out of the interpreter (see `hooks::uninstall`), for a
/// process `memsleuth attach` leaves. Returns whether every domain got its allocator back (one
/// someone installed over ours since stays, with ours as a pass-through under it).
#[pyfunction]
pub fn track_uninstall(_py: Python<'_>) -> PyResult<bool> {
    // the C allocator's entries `native_attach` patched, first, whatever else runs: an attach
    // whose tracker could not start (the program runs one of its own) must not leave them
    native::detach();
    let active = ACTIVE
        .lock()
        .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
    if active.is_some() {
        return Err(MemsleuthError::new_err(
            "a tracker is running: stop it before taking the hooks out",
        ));
    }
    // SAFETY: the GIL is held (`_py`), and no tracker records.
    Ok(unsafe { hooks::uninstall() })
}

/// Makes the native instrument available in this process, which did not start with the
/// preload library (`memsleuth attach --native`): loads it and points the loaded objects' calls
/// of the C allocator at it (see `got`). `track_uninstall` puts them back.
#[pyfunction]
pub fn native_attach() -> PyResult<()> {
    let library = crate::preload::native_library()?;
    native::attach(&library).map_err(|e| {
        MemsleuthError::new_err(format!(
            "the native instrument cannot start in this process: {e}"
        ))
    })
}

/// Places a mark in the running capture.
#[pyfunction]
pub fn track_mark(label: &str) -> PyResult<()> {
    let active = ACTIVE
        .lock()
        .map_err(|_| MemsleuthError::new_err("tracker state lost"))?;
    match active.as_ref() {
        Some(a) if a.owner == std::process::id() => {
            a.recorder.mark(label);
            // what follows the mark must be stamped after it
            memsleuth_hook::stamp_next_event_exactly();
            Ok(())
        }
        _ => Err(MemsleuthError::new_err("no tracking session is running")),
    }
}
