//! The way into a running process for `memsleuth attach`. The attacher has the debugger load
//! this extension into the target with `dlopen` and call [`memsleuth_agent_start`] once, from a
//! thread stopped at a safe point. That call only copies its argument and starts a thread: the
//! thread waits for the GIL like any other, then imports `memsleuth._attach_agent` from the
//! directory this library lies in and hands it the request. Everything else (the tracker, the
//! end, the clean-up) is that module's work, in Python, with the GIL.
//!
//! Nothing here runs while the debugger has the target stopped but the copy and the thread
//! start: the target's own threads run on while the new one waits for the GIL, whichever of
//! them holds it now (busy in Python, blocked in `read()`, asleep).

use std::ffi::{c_char, c_int, CStr};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Run by the agent thread with the GIL: imports the agent module from the package this library
/// belongs to (put first on `sys.path` only for that import) and starts the session. It runs in
/// a fresh namespace, so the program's `__main__` gains no names.
///
/// An attacher that gave up waiting for the GIL has removed the request: then nothing is
/// imported and nothing recorded.
const BOOTSTRAP: &str = r#"
import os, sys
if os.path.exists(request):
    before = set(sys.modules)
    path = list(sys.path)
    sys.path.insert(0, root)
    try:
        import memsleuth._attach_agent as agent
    finally:
        sys.path[:] = path
    agent.begin(request, before)
"#;

/// Starts the attach agent in this process: `request` is the path of the attacher's request
/// file (NUL-terminated). Returns 0 when the agent thread started, -1 otherwise. Called by the
/// debugger, once per attach.
///
/// # Safety
/// `request` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn memsleuth_agent_start(request: *const c_char) -> c_int {
    if request.is_null() {
        return -1;
    }
    // SAFETY: the caller passes a NUL-terminated string, valid for this call.
    let request = unsafe { CStr::from_ptr(request) }
        .to_string_lossy()
        .into_owned();
    let Some(root) = package_root() else {
        return -1;
    };
    let started = std::thread::Builder::new()
        .name("memsleuth-attach".into())
        .spawn(move || {
            // a finalizing interpreter must not be entered: a thread that asks it for the GIL
            // is ended inside the call, Rust frames and all
            if shutting_down() {
                stage(&request, "error the interpreter is shutting down");
                return;
            }
            stage(&request, "thread");
            run_bootstrap(&request, &root);
        });
    if started.is_ok() {
        0
    } else {
        -1
    }
}

/// Whether the interpreter is not running, or finalizing (`Py_IsFinalizing` from 3.13,
/// `_Py_IsFinalizing` before: looked up, as the name depends on the version).
fn shutting_down() -> bool {
    // SAFETY: no preconditions.
    if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
        return true;
    }
    for name in [c"Py_IsFinalizing", c"_Py_IsFinalizing"] {
        // SAFETY: a NUL-terminated name looked up in the global scope.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if !f.is_null() {
            // SAFETY: both take nothing and return an int; either may be called without the GIL.
            let f =
                unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> c_int>(f) };
            return f() != 0;
        }
    }
    false
}

/// The agent thread's work: take the GIL and run [`BOOTSTRAP`]. A failure is said in the
/// request's status file, for the attacher.
fn run_bootstrap(request: &str, root: &std::path::Path) {
    Python::attach(|py| {
        stage(request, "gil");
        let globals = PyDict::new(py);
        let ran = globals
            .set_item("request", request)
            .and_then(|()| globals.set_item("root", root.display().to_string()))
            .and_then(|()| {
                let code = std::ffi::CString::new(BOOTSTRAP).unwrap_or_default();
                py.run(&code, Some(&globals), None)
            });
        if let Err(e) = ran {
            stage(request, &format!("error {}", e.value(py)));
        }
    });
}

/// Appends a line to the request's status file, which the attacher reads: how far the agent
/// got (`thread`, `gil`), so that an attach that times out can say where it waited, or why it
/// failed (`error ...`). An attacher that is gone took the directory with it: nothing is said.
fn stage(request: &str, line: &str) {
    use std::io::Write;
    let status = format!("{request}.status");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(status);
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{}", line.replace('\n', " "));
    }
}

/// The directory holding the `memsleuth` package this library belongs to.
fn package_root() -> Option<PathBuf> {
    library_path()?.parent()?.parent().map(PathBuf::from)
}

/// This library's own path (resolved), for the attacher to load into the target.
fn library_path() -> Option<PathBuf> {
    // SAFETY: a zeroed Dl_info is what dladdr fills.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr fills `info` for an address of this library.
    let found = unsafe { libc::dladdr(memsleuth_agent_start as *const () as *const _, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr gave a NUL-terminated path.
    let file = unsafe { CStr::from_ptr(info.dli_fname) };
    std::fs::canonicalize(file.to_string_lossy().as_ref()).ok()
}

/// What `memsleuth attach` needs to know of this extension: its file and its interpreter.
pub fn describe(py: Python<'_>) -> Option<memsleuth_cli::Agent> {
    let v = py.version_info();
    let debug = py
        .import("sys")
        .and_then(|s| s.getattr("abiflags"))
        .and_then(|f| f.extract::<String>())
        .is_ok_and(|f| f.contains('d'));
    let executable = py
        .import("sys")
        .and_then(|s| s.getattr("executable"))
        .and_then(|e| e.extract::<String>())
        .ok()?;
    Some(memsleuth_cli::Agent {
        library: library_path()?,
        python: (v.major, v.minor),
        debug,
        executable: PathBuf::from(executable),
    })
}
