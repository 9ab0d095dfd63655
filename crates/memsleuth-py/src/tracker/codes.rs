//! Code objects named by recorded frames are kept alive until tracking stops, so that the
//! recorder can always read them and an address is never reused by another code object while
//! the recorder still refers to it. Bounded by the number of distinct code objects executed.

use pyo3::ffi;

use super::table::Table;

static HELD: Table = Table::new(1 << 18);

/// Maps the table; with the GIL held, before the hooks are enabled.
pub fn ensure() -> bool {
    HELD.ensure()
}

/// Takes a reference to the code object at `code` the first time it is seen. False when it
/// cannot be held (table full): the frame is then recorded as unknown.
///
/// Called from the allocator hook of a thread that holds the GIL.
#[inline]
pub fn hold(code: u64) -> bool {
    if code == 0 {
        return false;
    }
    match HELD.insert(code) {
        Some(true) => {
            // SAFETY: `code` is the live code object of a frame of this thread, which holds the
            // GIL; a plain incref does not allocate.
            unsafe { ffi::Py_INCREF(code as *mut ffi::PyObject) };
            true
        }
        Some(false) => true,
        None => false,
    }
}

/// True while `code` is held (so it may be read).
pub fn is_held(code: u64) -> bool {
    code != 0 && HELD.contains(code)
}

/// Releases every held code object. With the GIL held, after the recorder finished.
pub fn release_all(_py: pyo3::Python<'_>) -> usize {
    let mut n = 0;
    HELD.drain(|code| {
        // SAFETY: we took this reference in `hold`; the GIL is held (the token).
        unsafe { ffi::Py_DECREF(code as *mut ffi::PyObject) };
        n += 1;
    });
    n
}
