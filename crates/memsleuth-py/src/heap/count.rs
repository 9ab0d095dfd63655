//! The census without the graph: count and measure every live object by type, remembering only
//! which untracked objects were already counted. What a census without retained sizes needs,
//! at a fraction of the graph's time and memory: tracked objects come once each from the gc's
//! own list, so only the objects the gc does not track (str, int, float, untracked tuples and
//! dicts) need a visited set.

use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rustc_hash::FxHashMap;

use super::types::{basic_size, PySizeof, Types};
use super::walk::{pause_gc, resume_gc};

/// Instances remembered per type, as allocation-block addresses.
const SAMPLES: usize = 5;

/// A set of object addresses as bits, one per 16 bytes, in 64 KiB regions: no two objects
/// start within 16 bytes of each other, and a heap's objects cluster in a few thousand regions,
/// so the set stays small and in cache where a hash set of a million addresses would not.
#[derive(Debug, Default)]
pub(crate) struct Visited {
    regions: FxHashMap<usize, Box<[u64; 64]>>,
    last_key: usize,
    last: Option<std::ptr::NonNull<[u64; 64]>>,
}

impl Visited {
    /// Adds `addr`; true when it was not there yet.
    #[inline]
    pub fn insert(&mut self, addr: usize) -> bool {
        let key = addr >> 16;
        let bits = match self.last {
            Some(p) if self.last_key == key => p,
            _ => {
                let region = self
                    .regions
                    .entry(key)
                    .or_insert_with(|| Box::new([0u64; 64]));
                // a boxed region never moves, even when the map grows
                let p = std::ptr::NonNull::from(&mut **region);
                self.last_key = key;
                self.last = Some(p);
                p
            }
        };
        let slot = (addr >> 4) & 4095;
        let (word, bit) = (slot >> 6, 1u64 << (slot & 63));
        // SAFETY: `bits` points into a region owned by `self.regions`, borrowed mutably here
        let w = unsafe { &mut (*bits.as_ptr())[word] };
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }
}

/// Object address → node id, laid out like [`Visited`]: one `u32` per 16 bytes, in 64 KiB
/// regions. Faster than a hash map of a million addresses (the region table stays in cache),
/// and no larger for a dense heap.
#[derive(Debug, Default)]
pub(crate) struct IdMap {
    regions: FxHashMap<usize, Box<[u32; 4096]>>,
    last_key: usize,
    last: Option<std::ptr::NonNull<[u32; 4096]>>,
}

impl IdMap {
    const NONE: u32 = u32::MAX;

    #[inline]
    fn slot(&mut self, addr: usize) -> &mut u32 {
        let key = addr >> 16;
        let ids = match self.last {
            Some(p) if self.last_key == key => p,
            _ => {
                let region = self
                    .regions
                    .entry(key)
                    .or_insert_with(|| Box::new([Self::NONE; 4096]));
                // a boxed region never moves, even when the map grows
                let p = std::ptr::NonNull::from(&mut **region);
                self.last_key = key;
                self.last = Some(p);
                p
            }
        };
        // SAFETY: `ids` points into a region owned by `self.regions`, borrowed mutably here
        unsafe { &mut (*ids.as_ptr())[(addr >> 4) & 4095] }
    }

    /// The id of `addr`, or None.
    #[inline]
    pub fn get(&mut self, addr: usize) -> Option<u32> {
        let id = *self.slot(addr);
        (id != Self::NONE).then_some(id)
    }

    #[inline]
    pub fn insert(&mut self, addr: usize, id: u32) {
        *self.slot(addr) = id;
    }
}

/// Live objects by type id.
#[derive(Debug)]
pub(crate) struct Counted {
    pub types: Types,
    pub count: Vec<u64>,
    pub bytes: Vec<u64>,
    /// Allocation-block addresses of the first instances met (the gc lists the youngest
    /// generation first).
    pub samples: Vec<Vec<u64>>,
    pub objects: u64,
    pub total_bytes: u64,
    pub sizes_estimated: u64,
    pub duration: Duration,
    pub gc_was_enabled: bool,
}

struct Counter {
    types: Types,
    count: Vec<u64>,
    bytes: Vec<u64>,
    samples: Vec<Vec<u64>>,
    /// Untracked objects already counted.
    seen: Visited,
    /// Untracked containers still to traverse.
    stack: Vec<*mut ffi::PyObject>,
    /// Objects whose `__sizeof__` is written in Python, held until it has run.
    py_sizeof: Vec<(*mut ffi::PyObject, u32)>,
    ignore: usize,
}

impl Counter {
    /// Counts one object (once: the caller makes sure of that).
    unsafe fn account(&mut self, obj: *mut ffi::PyObject) {
        // SAFETY (whole fn): GIL held, `obj` alive and no Python code runs during the walk
        let t = unsafe { self.types.id(ffi::Py_TYPE(obj)) };
        let i = t as usize;
        if i >= self.count.len() {
            self.count.resize(i + 1, 0);
            self.bytes.resize(i + 1, 0);
            self.samples.resize_with(i + 1, Vec::new);
        }
        self.count[i] += 1;
        let size = match unsafe { self.types.size(obj, t) } {
            Some(s) => s,
            None => {
                unsafe { ffi::Py_INCREF(obj) };
                self.py_sizeof.push((obj, t));
                (unsafe { basic_size(obj) }) + self.types.extra_of(t)
            }
        };
        self.bytes[i] += size;
        if self.samples[i].len() < SAMPLES {
            let block = (obj as u64).saturating_sub(self.types.preheader_of(t));
            self.samples[i].push(block);
        }
    }

    /// An object reached from a counted one.
    unsafe fn reach(&mut self, obj: *mut ffi::PyObject) {
        // SAFETY (whole fn): as in `account`
        // tracked objects are all in the gc's list: counted from there
        if unsafe { ffi::PyObject_GC_IsTracked(obj) } != 0
            || obj as usize == self.ignore
            || !self.seen.insert(obj as usize)
        {
            return;
        }
        unsafe { self.account(obj) };
        if unsafe { ffi::PyObject_IS_GC(obj) } != 0 {
            self.stack.push(obj);
        }
    }

    unsafe fn traverse(&mut self, obj: *mut ffi::PyObject) {
        // SAFETY (whole fn): as in `account`
        if unsafe { ffi::PyObject_IS_GC(obj) } == 0 {
            return;
        }
        if let Some(traverse) = unsafe { (*ffi::Py_TYPE(obj)).tp_traverse } {
            let arg = (self as *mut Counter).cast::<c_void>();
            unsafe { traverse(obj, visit, arg) };
        }
        if unsafe { ffi::PyDict_Check(obj) } != 0 {
            unsafe { super::walk::for_str_keys(obj, |k| self.reach(k)) };
        }
    }
}

unsafe extern "C" fn visit(obj: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the counter passed to tp_traverse, alive for the call
    let c = unsafe { &mut *(arg as *mut Counter) };
    unsafe { c.reach(obj) };
    0
}

/// Counts every live object by type; `untracked` also counts what the gc does not track.
pub(crate) fn count(py: Python<'_>, minor: u8, untracked: bool) -> PyResult<Counted> {
    let started = Instant::now();
    let gc_was_enabled = pause_gc(py)?;
    let result = count_paused(py, minor, untracked);
    resume_gc(py, gc_was_enabled);
    let mut counted = result?;
    counted.duration = started.elapsed();
    counted.gc_was_enabled = gc_was_enabled;
    Ok(counted)
}

fn count_paused(py: Python<'_>, minor: u8, untracked: bool) -> PyResult<Counted> {
    let tracked = py.import("gc")?.call_method0("get_objects")?;
    let tracked = tracked.cast_into::<PyList>().map_err(PyErr::from)?;
    // the visited bitmap, the walk's stack and the per-type tables
    super::ensure_headroom(tracked.len(), 32)?;
    let mut c = Counter {
        types: Types::new(minor),
        count: Vec::new(),
        bytes: Vec::new(),
        samples: Vec::new(),
        seen: Visited::default(),
        stack: Vec::new(),
        py_sizeof: Vec::new(),
        ignore: tracked.as_ptr() as usize,
    };
    // SAFETY (the walk): GIL held and no Python code runs until it ends; the list keeps every
    // tracked object alive, and they keep what they reach alive
    for i in 0..tracked.len() {
        let obj = unsafe { ffi::PyList_GET_ITEM(tracked.as_ptr(), i as ffi::Py_ssize_t) };
        unsafe { c.account(obj) };
        if untracked {
            unsafe { c.traverse(obj) };
            while let Some(o) = c.stack.pop() {
                unsafe { c.traverse(o) };
            }
        }
    }
    drop(tracked);
    let mut sizes = PySizeof::new();
    for (obj, t) in std::mem::take(&mut c.py_sizeof) {
        // SAFETY: GIL held; `obj` is held by the reference taken in `account`
        if let Some(s) = unsafe { sizes.measure(obj) } {
            let basic = unsafe { basic_size(obj) };
            let i = t as usize;
            c.bytes[i] = c.bytes[i] - basic + s;
        }
        // SAFETY: the reference taken in `account`
        unsafe { ffi::Py_DECREF(obj) };
    }
    Ok(Counted {
        objects: c.count.iter().sum(),
        total_bytes: c.bytes.iter().sum(),
        types: c.types,
        count: c.count,
        bytes: c.bytes,
        samples: c.samples,
        sizes_estimated: sizes.estimated,
        duration: Duration::ZERO,
        gc_was_enabled: true,
    })
}
