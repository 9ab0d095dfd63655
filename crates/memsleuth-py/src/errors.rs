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

/// Converts an error about `path` (a capture) or a process into the matching exception.
pub fn to_py(e: Error, path: &Path) -> PyErr {
    let at = path.display();
    match e {
        Error::Platform(p) => ProcessError::new_err(p.to_string()),
        Error::Recorder(r) => CaptureError::new_err(format!("{at}: {r}")),
        Error::Format(memsleuth_format::FormatError::Io(io)) | Error::Io(io) => {
            CaptureError::new_err(format!("{at}: {io}"))
        }
        Error::Format(f) => CaptureError::new_err(format!("{at}: {f}")),
        Error::Analysis(a) => CaptureError::new_err(format!("{at}: {a}")),
    }
}
