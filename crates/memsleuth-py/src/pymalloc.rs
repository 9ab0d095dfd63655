//! The `pymalloc` instrument in the live interpreter: `_PyObject_DebugMallocStats` written into
//! memory and parsed, plus the block and reference counts `sys` keeps.
//!
//! `_PyObject_DebugMallocStats` prints nothing (and returns 0) when pymalloc is not the object
//! allocator: under `PYTHONMALLOC=malloc`, and also as soon as anything wraps the object allocator
//! with `PyMem_SetAllocator` (tracemalloc, memsleuth's own allocation hooks), because it checks
//! that the installed function *is* pymalloc's. Wrappers still serve every block from pymalloc, so
//! in that case the allocator seen when this module was loaded is put back for the length of the
//! call. Under mimalloc (3.13) it prints mimalloc's statistics instead; those are not pymalloc's
//! and count as "not in use".

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use memsleuth_analysis::pymalloc::{parse_debugmallocstats, StatsError};
use memsleuth_format::Pymalloc;
use pyo3::ffi::{self, PyMemAllocatorDomain, PyMemAllocatorEx};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::MemsleuthError;

type DebugMallocStats = unsafe extern "C" fn(out: *mut libc::FILE) -> c_int;

/// `_PyObject_DebugMallocStats`, looked up when first needed rather than linked: an interpreter
/// built `--without-pymalloc` lacks the symbol, and an unresolved link-time reference would stop
/// the whole extension from importing there.
fn debug_malloc_stats() -> Option<DebugMallocStats> {
    static SYMBOL: OnceLock<usize> = OnceLock::new();
    let addr = *SYMBOL.get_or_init(|| {
        // SAFETY: dlsym with a NUL-terminated name only reads the loaded objects' tables.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_PyObject_DebugMallocStats".as_ptr()) as usize }
    });
    if addr == 0 {
        return None;
    }
    // SAFETY: the symbol is CPython's `int _PyObject_DebugMallocStats(FILE *out)` (declared in
    // cpython/objimpl.h up to 3.10, internal/pycore_*.h from 3.11, exported in all).
    Some(unsafe { std::mem::transmute::<*mut c_void, DebugMallocStats>(addr as *mut c_void) })
}

/// The object allocator installed when this module was loaded, before memsleuth's hooks.
#[derive(Clone, Copy)]
struct Allocator(PyMemAllocatorEx);

// SAFETY: the struct is a table of C function pointers and their context; it is only ever handed
// back to PyMem_SetAllocator with the GIL held.
unsafe impl Send for Allocator {}
unsafe impl Sync for Allocator {}

static LOADED_WITH: OnceLock<Allocator> = OnceLock::new();

fn object_allocator() -> PyMemAllocatorEx {
    let mut a = PyMemAllocatorEx {
        ctx: std::ptr::null_mut(),
        malloc: None,
        calloc: None,
        realloc: None,
        free: None,
    };
    // SAFETY: fills `a`; callers hold the GIL.
    unsafe { ffi::PyMem_GetAllocator(PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ, &mut a) };
    a
}

/// Remembers the object allocator as it is now. Called when the module is initialised, which
/// comes before anything in it can install allocation hooks.
pub(crate) fn remember_allocator(_py: Python<'_>) {
    let _ = LOADED_WITH.get_or_init(|| Allocator(object_allocator()));
}

/// Bytes written to a memory stream, freed on drop (also when the C side fails).
struct MemStream {
    buf: *mut c_char,
    len: usize,
}

impl Drop for MemStream {
    fn drop(&mut self) {
        // SAFETY: `buf` is null or was allocated by open_memstream with malloc.
        unsafe { libc::free(self.buf.cast()) };
    }
}

/// Runs `_PyObject_DebugMallocStats` into memory: `Some(text)` when it printed, `None` when it
/// said pymalloc is not in use.
fn print_stats(_py: Python<'_>, stats: DebugMallocStats) -> PyResult<Option<String>> {
    let mut out = MemStream {
        buf: std::ptr::null_mut(),
        len: 0,
    };
    // SAFETY: both pointers outlive the stream, which is closed below.
    let file = unsafe { libc::open_memstream(&mut out.buf, &mut out.len) };
    if file.is_null() {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: GIL held (the token), `file` is an open stream; the function only reads pymalloc's
    // state and writes to `file`.
    let printed = unsafe { stats(file) };
    // SAFETY: closes the stream once; this also makes `buf`/`len` final.
    if unsafe { libc::fclose(file) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if printed == 0 {
        return Ok(None);
    }
    let bytes: &[u8] = if out.buf.is_null() {
        &[]
    } else {
        // SAFETY: after fclose, `buf` holds `len` bytes (plus a NUL).
        unsafe { std::slice::from_raw_parts(out.buf.cast::<u8>(), out.len) }
    };
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// As [`print_stats`], with the allocator seen at load time put back for the call when another
/// one is installed now. With the GIL held nothing allocates Python objects meanwhile, and the
/// statistics themselves allocate none, so no block can cross between the two.
fn print_stats_unwrapped(py: Python<'_>, stats: DebugMallocStats) -> PyResult<Option<String>> {
    let Some(&Allocator(loaded)) = LOADED_WITH.get() else {
        return Ok(None);
    };
    let mut now = object_allocator();
    let same = now.malloc.map(|f| f as usize) == loaded.malloc.map(|f| f as usize)
        && now.ctx == loaded.ctx;
    if same {
        return Ok(None);
    }
    let mut original = loaded;
    // SAFETY: GIL held; `original` is an allocator this interpreter used before and still owns
    // every block of, and `now` is put back right after, whatever happened.
    unsafe { ffi::PyMem_SetAllocator(PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ, &mut original) };
    let text = print_stats(py, stats);
    // SAFETY: as above.
    unsafe { ffi::PyMem_SetAllocator(PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ, &mut now) };
    text
}

/// A snapshot of pymalloc in this interpreter. `t_ns` is 0: callers set it. When pymalloc is not
/// in use (`PYTHONMALLOC=malloc`, mimalloc, a build without it) every pymalloc field is 0 and
/// `arena_size == 0` tells so; `allocated_blocks` is still what `sys.getallocatedblocks()` says
/// (0 under plain malloc, which it does not count).
pub(crate) fn snapshot(py: Python<'_>) -> PyResult<Pymalloc> {
    let text = match debug_malloc_stats() {
        Some(stats) => match print_stats(py, stats)? {
            Some(text) => Some(text),
            None => print_stats_unwrapped(py, stats)?,
        },
        None => None,
    };
    let mut snap = match text.as_deref().map(parse_debugmallocstats) {
        None => Pymalloc::default(),
        Some(Ok(p)) => p,
        Some(Err(StatsError::Empty | StatsError::NotInUse | StatsError::Mimalloc)) => {
            Pymalloc::default()
        }
        Some(Err(e)) => {
            return Err(MemsleuthError::new_err(format!(
                "cannot read this interpreter's pymalloc statistics: {e}"
            )))
        }
    };
    let sys = py.import("sys")?;
    snap.allocated_blocks = sys.call_method0("getallocatedblocks")?.extract()?;
    // debug builds only
    if sys.hasattr("gettotalrefcount")? {
        snap.total_refcount = Some(sys.call_method0("gettotalrefcount")?.extract()?);
    }
    snap.t_ns = 0;
    Ok(snap)
}

/// The state of pymalloc, CPython's allocator of objects up to 512 bytes, as a dict: arenas,
/// pools and bytes (in use, free, lost), `allocated_blocks` (`sys.getallocatedblocks()`),
/// `total_refcount` (debug builds, else None), `active` (False when pymalloc is not in use and
/// the pymalloc figures are all 0), and `classes`: one dict per size class that owns a pool.
#[pyfunction]
pub fn pymalloc_stats(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let s = snapshot(py)?;
    let d = PyDict::new(py);
    d.set_item("active", s.arena_size > 0)?;
    d.set_item("allocated_blocks", s.allocated_blocks)?;
    d.set_item("total_refcount", s.total_refcount)?;
    d.set_item("arena_size", s.arena_size)?;
    d.set_item("pool_size", s.pool_size)?;
    d.set_item("arenas_allocated_total", s.arenas_allocated_total)?;
    d.set_item("arenas_reclaimed", s.arenas_reclaimed)?;
    d.set_item("arenas_highwater", s.arenas_highwater)?;
    d.set_item("arenas_now", s.arenas_now)?;
    d.set_item("bytes_in_use", s.bytes_in_use)?;
    d.set_item("bytes_free_blocks", s.bytes_free_blocks)?;
    d.set_item("unused_pools", s.unused_pools)?;
    d.set_item("bytes_pool_headers", s.bytes_pool_headers)?;
    d.set_item("bytes_quantization", s.bytes_quantization)?;
    d.set_item("bytes_arena_alignment", s.bytes_arena_alignment)?;
    let classes = PyList::empty(py);
    for c in &s.classes {
        let row = PyDict::new(py);
        row.set_item("size", c.size)?;
        row.set_item("pools", c.pools)?;
        row.set_item("blocks_in_use", c.blocks_in_use)?;
        row.set_item("blocks_free", c.blocks_free)?;
        classes.append(row)?;
    }
    d.set_item("classes", classes)?;
    Ok(d.unbind())
}
