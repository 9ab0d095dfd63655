//! Turns a code position into (function, file, line) by reading the code object straight from
//! memory, without the GIL.
//!
//! The resolver runs on the recorder's thread. Taking the GIL from such a thread means
//! `PyGILState_Ensure`, which creates a thread state through the RAW allocator *before* it holds
//! the GIL; a program that swaps the allocator meanwhile (`tracemalloc.stop()`, a profiler, a
//! C extension's `PyMem_SetAllocator`) makes that allocation run through hooks that are being
//! torn down, and the program dies (seen: SIGSEGV in tracemalloc's `traceback_new`). Reading
//! instead needs no interpreter state at all: the code object is kept alive by `codes::hold`,
//! its name, qualified name and file name are immutable `str` objects, and the line table is
//! immutable bytes (`PyCode_Addr2Line` only decodes it). Nor can the recorder wait for the GIL:
//! a thread holding it may be waiting in a hook for the recorder to make room in its ring.
//!
//! `PyCodeObject`'s layout differs between versions and is opaque in PyO3, so where the three
//! names sit is found at start, on the running interpreter: the fields of a probe code object
//! that point at its own `co_name`, `co_qualname` and `co_filename`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::codes;

/// Where the names sit in a code object of this interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeFields {
    name: usize,
    /// 3.11+: `co_qualname`; older versions have only `co_name`.
    qualname: Option<usize>,
    filename: usize,
}

const PROBE: &std::ffi::CStr =
    c"class MemsleuthProbe:\n    def probe_method(self):\n        pass\n";

impl CodeFields {
    /// Finds the offsets on the running interpreter; `None` when they cannot be found
    /// unambiguously (an interpreter we do not know: tracking is refused).
    pub fn probe(py: Python<'_>) -> Option<CodeFields> {
        let ns = PyDict::new(py);
        py.run(PROBE, Some(&ns), None).ok()?;
        let code = ns
            .get_item("MemsleuthProbe")
            .ok()??
            .getattr("probe_method")
            .ok()?
            .getattr("__code__")
            .ok()?;
        let field = |attr: &str| -> Option<usize> {
            let target = code.getattr(attr).ok()?;
            // SAFETY: `code` is a live code object (we hold it), so reading its first
            // `tp_basicsize` bytes stays inside the object; the GIL is held.
            unsafe { offset_of_pointer(code.as_ptr(), target.as_ptr()) }
        };
        let fields = CodeFields {
            name: field("co_name")?,
            qualname: if py.version_info() >= (3, 11) {
                Some(field("co_qualname")?)
            } else {
                None
            },
            filename: field("co_filename")?,
        };
        // the reading path must give what the attributes give
        let (function, file, _) = fields.read(code.as_ptr() as u64, u32::MAX);
        let expected = if fields.qualname.is_some() {
            "MemsleuthProbe.probe_method"
        } else {
            "probe_method"
        };
        (function == expected && file == "<string>").then_some(fields)
    }

    /// (function, file, line) of a code position. Without the GIL, on any thread.
    pub fn resolve(&self, code: u64, instr: u32) -> (String, String, u32) {
        if !codes::is_held(code) {
            return ("<unknown>".into(), String::new(), 0);
        }
        self.read(code, instr)
    }

    fn read(&self, code: u64, instr: u32) -> (String, String, u32) {
        let obj = code as *mut ffi::PyObject;
        // SAFETY: `code` is a live code object: we hold a reference (`codes::hold`, or the
        // probe's own) until the recorder has finished. The offsets were found on this
        // interpreter; the fields are immutable after creation.
        let (function, file) = unsafe {
            let name = |at: usize| read_str(*obj.cast::<u8>().add(at).cast::<*mut ffi::PyObject>());
            let function = self
                .qualname
                .and_then(name)
                .or_else(|| name(self.name))
                .unwrap_or_else(|| "?".into());
            (function, name(self.filename).unwrap_or_default())
        };
        let offset = if instr == u32::MAX {
            -1
        } else {
            i32::try_from(instr).unwrap_or(-1)
        };
        // SAFETY: a live code object (above). `PyCode_Addr2Line` only decodes the code's
        // immutable line table (3.11's lazily built line array is written once, before use by
        // the evaluation loop, and freed only with the code object, which we hold).
        let line = unsafe { ffi::PyCode_Addr2Line(obj.cast(), offset) };
        (function, file, u32::try_from(line).unwrap_or(0))
    }
}

/// The offset of the only pointer-sized field of `obj` equal to `target`.
///
/// # Safety
/// `obj` is a live object whose first `tp_basicsize` bytes may be read.
unsafe fn offset_of_pointer(obj: *mut ffi::PyObject, target: *mut ffi::PyObject) -> Option<usize> {
    let word = std::mem::size_of::<usize>();
    // SAFETY: the caller's promise; every read is inside the object's fixed part.
    unsafe {
        let size = usize::try_from((*ffi::Py_TYPE(obj)).tp_basicsize).ok()?;
        let mut found = None;
        for at in (2 * word..size.saturating_sub(word - 1)).step_by(word) {
            if *obj.cast::<u8>().add(at).cast::<*mut ffi::PyObject>() == target {
                if found.is_some() {
                    return None;
                }
                found = Some(at);
            }
        }
        found
    }
}

/// The text of a `str` object, read without the GIL. `None` for anything but a ready `str`.
///
/// # Safety
/// `s` is null or a live object that stays alive and unchanged during the call.
unsafe fn read_str(s: *mut ffi::PyObject) -> Option<String> {
    // SAFETY: the caller's promise; the macros only read the object's header and data.
    unsafe {
        if s.is_null() || !std::ptr::eq(ffi::Py_TYPE(s), std::ptr::addr_of!(ffi::PyUnicode_Type)) {
            return None;
        }
        // kind 0 is a legacy string not yet made ready (3.9–3.11): no canonical data to read
        let kind = ffi::PyUnicode_KIND(s);
        if !matches!(kind, 1 | 2 | 4) {
            return None;
        }
        let len = usize::try_from(ffi::PyUnicode_GET_LENGTH(s)).ok()?;
        let data = ffi::PyUnicode_DATA(s);
        let text = match kind {
            1 => std::slice::from_raw_parts(data.cast::<u8>(), len)
                .iter()
                .map(|&c| char::from(c))
                .collect(),
            2 => std::slice::from_raw_parts(data.cast::<u16>(), len)
                .iter()
                .map(|&c| char::from_u32(u32::from(c)).unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
            4 => std::slice::from_raw_parts(data.cast::<u32>(), len)
                .iter()
                .map(|&c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
            _ => return None,
        };
        Some(text)
    }
}
