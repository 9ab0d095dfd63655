//! `memsleuth._native`: the thin PyO3 layer over the Rust crates. Python-facing names and the
//! mapping of Rust errors to Python exceptions live here and nowhere else.

use pyo3::prelude::*;

mod agent;
mod errors;
mod heap;
mod hunt;
mod memory;
mod own_memory;
mod preload;
mod pymalloc;
mod seconds;
mod tracker;
mod watch;

/// Runs the `memsleuth` command line (`argv[0]` is the program name); returns its exit code.
/// The GIL is released: the command may run for a long time and spawn threads.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = argv.into_iter().map(Into::into).collect();
    let agent = agent::describe(py);
    py.detach(|| {
        let runners = memsleuth_cli::Runners {
            run: &run_in_python,
            hunt: &hunt_in_python,
            agent,
        };
        memsleuth_cli::main_with_runner(args, Some(&runners))
    })
}

/// `memsleuth hunt`'s runner: loads the file and hunts the function through
/// `memsleuth._hunt.hunt_target`. A Python error (no such function, the file fails to import,
/// the function raises) becomes one line.
fn hunt_in_python(req: &memsleuth_cli::HuntRequest) -> Result<memsleuth_cli::HuntOutcome, String> {
    Python::attach(|py| {
        let hunt = py
            .import("memsleuth._hunt")
            .and_then(|m| m.getattr("hunt_target"))
            .map_err(|e| e.to_string())?;
        let (text, json, leaks) = hunt
            .call1((
                req.file.display().to_string(),
                req.function.as_str(),
                req.warmup,
                req.runs,
                req.max_runs,
            ))
            .and_then(|r| r.extract::<(String, String, bool)>())
            .map_err(|e| error_line(py, &e))?;
        Ok(memsleuth_cli::HuntOutcome { text, json, leaks })
    })
}

/// A Python error before the runner's target starts, as one line: its message alone, or its
/// type and message when it has none.
fn error_line(py: Python<'_>, e: &PyErr) -> String {
    let text = e.value(py).to_string();
    if text.is_empty() {
        e.to_string()
    } else {
        text
    }
}

/// `memsleuth run`'s runner: executes the target in this interpreter through
/// `memsleuth._run.run_target`. A Python error before the target starts (module not found,
/// unwritable capture) becomes one line; the target's own exceptions are its business and were
/// already printed as python prints them.
fn run_in_python(req: &memsleuth_cli::RunRequest) -> Result<memsleuth_cli::RunOutcome, String> {
    tracker::want_exit_verdict(req.exit_report.clone());
    let code = Python::attach(|py| {
        let run = py
            .import("memsleuth._run")
            .and_then(|m| m.getattr("run_target"))
            .map_err(|e| e.to_string())?;
        run.call1((
            req.output.display().to_string(),
            req.target.as_str(),
            req.args.clone(),
            req.module,
            req.sample_bytes,
            req.stack_depth,
            req.census,
            req.native,
        ))
        .and_then(|code| code.extract::<i32>())
        .map_err(|e| error_line(py, &e))
    });
    let verdict = tracker::take_exit_verdict().map(Box::new);
    tracker::want_exit_verdict(None);
    Ok(memsleuth_cli::RunOutcome {
        code: code?,
        verdict,
    })
}

/// Analyses a capture and returns the summary as a JSON document.
#[pyfunction]
fn summary_json(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    use memsleuth_analysis::{AnalysisError, EndInfo, TimelineReport, VerdictOptions};
    use memsleuth_render::ending::{nothing_read, Missing};

    let report = py.detach(|| {
        let capture = memsleuth_format::read_capture_series(&path)?;
        match TimelineReport::from_capture(&capture, &VerdictOptions::default()) {
            Ok(report) => Ok(report),
            // no samples in a damaged capture: the damage lost them, so it is the reason, in
            // the words `memsleuth report summary` uses
            Err(AnalysisError::NoSamples) => {
                let end = EndInfo::new(
                    capture.trailer,
                    capture.damage.as_ref(),
                    memsleuth_format::ExitStatus::Unknown,
                    0,
                );
                let original = AnalysisError::NoSamples.to_string();
                Err(errors::Error::Said(
                    nothing_read(Missing::Samples, &end, &original).unwrap_or(original),
                ))
            }
            Err(e) => Err(e.into()),
        }
    });
    let report = report.map_err(|e| errors::to_py(e, &path))?;
    let shown = path.display().to_string();
    Ok(memsleuth_render::summary::summary_json(
        &report,
        Some(&shown),
    ))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<memory::Memory>()?;
    m.add_class::<watch::Sampler>()?;
    m.add_class::<hunt::HuntSession>()?;
    m.add_function(wrap_pyfunction!(hunt::capture_memory, m)?)?;
    m.add_function(wrap_pyfunction!(memory::memory, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(summary_json, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_start, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_stop, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_mark, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_phase, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_main_end, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_end_sync, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_end_hold, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::tracking, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::track_uninstall, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::native_attach, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::ignore_this_thread, m)?)?;
    m.add_function(wrap_pyfunction!(preload::native_library, m)?)?;
    m.add_function(wrap_pyfunction!(preload::native_preloaded, m)?)?;
    m.add_function(wrap_pyfunction!(heap::census, m)?)?;
    m.add_function(wrap_pyfunction!(heap::why, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::gc_callback, m)?)?;
    m.add_function(wrap_pyfunction!(pymalloc::pymalloc_stats, m)?)?;
    // before any allocation hook of this module can be installed
    pymalloc::remember_allocator(m.py());
    errors::register(m)?;
    Ok(())
}
