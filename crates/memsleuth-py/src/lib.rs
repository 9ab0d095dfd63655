//! `memsleuth._native`: the thin PyO3 layer over the Rust crates. Python-facing names and the
//! mapping of Rust errors to Python exceptions live here and nowhere else.

use pyo3::prelude::*;

mod errors;
mod memory;
mod watch;

/// Runs the `memsleuth` command line (`argv[0]` is the program name); returns its exit code.
/// The GIL is released: the command may run for a long time and spawn threads.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = argv.into_iter().map(Into::into).collect();
    py.detach(|| memsleuth_cli::main_with_args(args))
}

/// Analyses a capture and returns the summary as a JSON document.
#[pyfunction]
fn summary_json(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    let report = py.detach(|| {
        let capture = memsleuth_format::read_capture_series(&path)?;
        memsleuth_analysis::TimelineReport::from_capture(
            &capture,
            &memsleuth_analysis::VerdictOptions::default(),
        )
        .map_err(errors::Error::from)
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
    m.add_function(wrap_pyfunction!(memory::memory, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(summary_json, m)?)?;
    errors::register(m)?;
    Ok(())
}
