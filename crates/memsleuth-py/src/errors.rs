//! The one place Rust errors become Python exceptions.
//!
//! MemsleuthError
//! ├── ProcessError   a PID that does not exist, has exited, or may not be read
//! └── CaptureError   a capture that cannot be written or read (truncated, corrupt, foreign)

use std::path::Path;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    memsleuth,
    MemsleuthError,
    PyException,
    "Base of every memsleuth error."
);
create_exception!(
    memsleuth,
    ProcessError,
    MemsleuthError,
    "A process that does not exist, has exited, or may not be read."
);
create_exception!(
    memsleuth,
    CaptureError,
    MemsleuthError,
    "A capture that cannot be written or read."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MemsleuthError", py.get_type::<MemsleuthError>())?;
    m.add("ProcessError", py.get_type::<ProcessError>())?;
    m.add("CaptureError", py.get_type::<CaptureError>())?;
    Ok(())
}

/// Everything the native layer can fail with.
#[derive(Debug)]
pub enum Error {
    Platform(memsleuth_platform::PlatformError),
    Recorder(memsleuth_recorder::RecorderError),
    Format(memsleuth_format::FormatError),
    Analysis(memsleuth_analysis::AnalysisError),
    Io(std::io::Error),
    /// A sentence already made about a capture (its path is added).
    Said(String),
}

impl From<memsleuth_platform::PlatformError> for Error {
    fn from(e: memsleuth_platform::PlatformError) -> Self {
        Error::Platform(e)
    }
}
impl From<memsleuth_recorder::RecorderError> for Error {
    fn from(e: memsleuth_recorder::RecorderError) -> Self {
        match e {
            memsleuth_recorder::RecorderError::Platform(p) => Error::Platform(p),
            other => Error::Recorder(other),
        }
    }
}
impl From<memsleuth_format::FormatError> for Error {
    fn from(e: memsleuth_format::FormatError) -> Self {
        Error::Format(e)
    }
}
impl From<memsleuth_analysis::AnalysisError> for Error {
    fn from(e: memsleuth_analysis::AnalysisError) -> Self {
        Error::Analysis(e)
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Converts an error about `path` (a capture) or a process into the matching exception. The
/// message names the path once: prefixed here, unless the error names it itself.
pub fn to_py(e: Error, path: &Path) -> PyErr {
    use memsleuth_analysis::AnalysisError;
    use memsleuth_format::FormatError;

    let at = path.display();
    let said = match e {
        Error::Platform(p) => return ProcessError::new_err(p.to_string()),
        // names the path itself
        Error::Format(f @ FormatError::NotAFile { .. })
        | Error::Analysis(AnalysisError::Format(f @ FormatError::NotAFile { .. })) => f.to_string(),
        Error::Recorder(r) => format!("{at}: {r}"),
        Error::Format(f) => format!("{at}: {f}"),
        Error::Analysis(a) => format!("{at}: {a}"),
        Error::Io(io) => format!("{at}: {io}"),
        Error::Said(said) => format!("{at}: {said}"),
    };
    // "(os error 2)" is noise to a reader: the command line's messages leave it out too
    CaptureError::new_err(memsleuth_cli::without_os_error(&said))
}
