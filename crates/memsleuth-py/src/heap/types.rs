//! What the heap walk needs to know about each type, looked up once per type: its qualified
//! name, how to measure an instance, the bytes CPython keeps in front of an instance (so an
//! object can be matched with the allocation block that holds it), and the other blocks an
//! instance owns (its item array, hash table...).

use std::ffi::{c_int, CStr};

use pyo3::ffi;
use rustc_hash::FxHashMap;

use super::storage::Storage;

extern "C" {
    // exported by every CPython 3.9–3.13 (cpython/object.h); looks a name up along the MRO
    // without running any Python code, unlike getattr
    fn _PyType_Lookup(tp: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

const METH_NOARGS: c_int = 0x0004;
/// 3.11+: the instance dict pointer lives in front of the object.
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
/// 3.12+: so does the weak reference list.
const TPFLAGS_MANAGED_WEAKREF: u64 = 1 << 3;
const GC_HEAD: u64 = 16;

/// How an instance's shallow size is measured.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SizeOf {
    /// `object.__sizeof__` on a type without items: the same for every instance, measured on
    /// the first one seen.
    Fixed(Option<u64>),
    /// A `__sizeof__` written in C taking no arguments: called directly, it runs no Python code.
    Native(ffi::PyCFunction),
    /// A `__sizeof__` written in Python (or an unusual C one): it runs the program's own code,
    /// so it is called only after the walk, on objects we hold, within a time budget.
    Python,
    /// No usable `__sizeof__`: the type's basic size and item size.
    Basic,
}

#[derive(Debug)]
pub(crate) struct TypeInfo {
    pub sizeof: SizeOf,
    /// What `sys.getsizeof` adds to `__sizeof__` for an instance (the gc header and, from 3.11,
    /// the managed dict/weakref slots).
    pub getsizeof_extra: u64,
    /// Bytes between the start of the allocation block and the object.
    pub preheader: u64,
    /// The memory blocks an instance owns besides its own (see [`super::storage`]).
    pub storage: Storage,
}

/// Slots of the direct-mapped cache in front of the type table: a walk meets the same few
/// dozen types over and over.
const CACHE_SLOTS: usize = 256;

/// Types seen by one walk, with dense ids.
#[derive(Debug)]
pub(crate) struct Types {
    by_ptr: FxHashMap<usize, u32>,
    cache: Box<[(usize, u32); CACHE_SLOTS]>,
    pub infos: Vec<TypeInfo>,
    pub names: Vec<String>,
    object_sizeof: Option<ffi::PyCFunction>,
    minor: u8,
}

impl Types {
    pub fn new(minor: u8) -> Self {
        // SAFETY: GIL held by every caller of a walk; `object` is a static type
        let object_sizeof =
            match unsafe { sizeof_of(std::ptr::addr_of_mut!(ffi::PyBaseObject_Type), None) } {
                SizeOf::Native(f) => Some(f),
                _ => None,
            };
        Types {
            by_ptr: FxHashMap::default(),
            cache: Box::new([(0, 0); CACHE_SLOTS]),
            infos: Vec::new(),
            names: Vec::new(),
            object_sizeof,
            minor,
        }
    }

    /// The type id of `tp`, its info computed on first sight.
    ///
    /// # Safety
    /// GIL held; `tp` a live type object.
    #[inline]
    pub unsafe fn id(&mut self, tp: *mut ffi::PyTypeObject) -> u32 {
        let key = tp as usize;
        let slot = (key >> 4) % CACHE_SLOTS;
        let (cached, id) = self.cache[slot];
        if cached == key {
            return id;
        }
        let id = match self.by_ptr.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.infos.len() as u32;
                self.names.push(unsafe { qualified_name(tp) });
                self.infos
                    .push(unsafe { describe(tp, self.minor, self.object_sizeof) });
                self.by_ptr.insert(key, id);
                id
            }
        };
        self.cache[slot] = (key, id);
        id
    }

    /// `sys.getsizeof(obj)` without running Python code: `None` when the type's `__sizeof__`
    /// is written in Python (the caller decides whether to run it).
    ///
    /// # Safety
    /// GIL held; `obj` alive and of the type `id` names.
    #[inline]
    pub unsafe fn size(&mut self, obj: *mut ffi::PyObject, id: u32) -> Option<u64> {
        let info = &mut self.infos[id as usize];
        let shallow = match info.sizeof {
            SizeOf::Fixed(Some(n)) => n,
            SizeOf::Fixed(None) => {
                let n = self
                    .object_sizeof
                    .and_then(|f| unsafe { native_sizeof(f, obj) })
                    .unwrap_or_else(|| unsafe { basic_size(obj) });
                info.sizeof = SizeOf::Fixed(Some(n));
                n
            }
            SizeOf::Native(f) => {
                unsafe { native_sizeof(f, obj) }.unwrap_or_else(|| unsafe { basic_size(obj) })
            }
            SizeOf::Basic => unsafe { basic_size(obj) },
            SizeOf::Python => return None,
        };
        Some(shallow + info.getsizeof_extra)
    }

    /// Bytes between an instance's allocation block and the instance, by type id.
    pub fn preheader_of(&self, type_id: u32) -> u64 {
        self.infos.get(type_id as usize).map_or(0, |i| i.preheader)
    }

    /// The memory blocks an instance owns besides its own, by type id.
    pub fn storage_of(&self, type_id: u32) -> Storage {
        self.infos
            .get(type_id as usize)
            .map_or(Storage::NONE, |i| i.storage)
    }

    /// What `sys.getsizeof` adds to `__sizeof__`, by type id.
    pub fn extra_of(&self, type_id: u32) -> u64 {
        self.infos
            .get(type_id as usize)
            .map_or(0, |i| i.getsizeof_extra)
    }
}

unsafe fn describe(
    tp: *mut ffi::PyTypeObject,
    minor: u8,
    object_sizeof: Option<ffi::PyCFunction>,
) -> TypeInfo {
    let flags = unsafe { (*tp).tp_flags };
    let is_gc = flags & ffi::Py_TPFLAGS_HAVE_GC != 0;
    let managed_dict = minor >= 11 && flags & TPFLAGS_MANAGED_DICT != 0;
    let managed_weakref = minor >= 12 && flags & TPFLAGS_MANAGED_WEAKREF != 0;
    let managed = if managed_dict || managed_weakref {
        16
    } else {
        0
    };
    let gc = if is_gc { GC_HEAD } else { 0 };
    TypeInfo {
        sizeof: unsafe { sizeof_of(tp, object_sizeof) },
        // sys.getsizeof adds the whole pre-header: the gc header and, from 3.11, the managed
        // dict (and from 3.12 weakref) slots
        getsizeof_extra: gc + managed,
        preheader: gc + managed,
        storage: unsafe { super::storage::kind_of(tp, minor) },
    }
}

unsafe fn sizeof_of(tp: *mut ffi::PyTypeObject, object_sizeof: Option<ffi::PyCFunction>) -> SizeOf {
    let name = c"__sizeof__";
    // SAFETY (whole fn): GIL held by the caller; the objects read are alive while the type is
    let key = unsafe { ffi::PyUnicode_InternFromString(name.as_ptr()) };
    if key.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return SizeOf::Basic;
    }
    let descr = unsafe { _PyType_Lookup(tp, key) };
    unsafe { ffi::Py_DECREF(key) };
    if descr.is_null() {
        return SizeOf::Basic;
    }
    let descr_type = unsafe { ffi::Py_TYPE(descr) };
    if descr_type == std::ptr::addr_of_mut!(ffi::PyMethodDescr_Type) {
        let def = unsafe { (*(descr as *mut ffi::PyMethodDescrObject)).d_method };
        if !def.is_null() && unsafe { (*def).ml_flags } & METH_NOARGS != 0 {
            let f = unsafe { (*def).ml_meth.PyCFunction };
            let fixed = unsafe { (*tp).tp_itemsize } == 0
                && object_sizeof.is_some_and(|o| o as usize == f as usize);
            return if fixed {
                SizeOf::Fixed(None)
            } else {
                SizeOf::Native(f)
            };
        }
    }
    SizeOf::Python
}

/// `module.QualName`, bare for builtins, read without running Python code where possible.
unsafe fn qualified_name(tp: *mut ffi::PyTypeObject) -> String {
    // SAFETY (whole fn): GIL held, `tp` alive
    let tp_name = unsafe { (*tp).tp_name };
    let raw = if tp_name.is_null() {
        "?".to_string()
    } else {
        unsafe { CStr::from_ptr(tp_name) }
            .to_string_lossy()
            .into_owned()
    };
    let flags = unsafe { (*tp).tp_flags };
    if flags & ffi::Py_TPFLAGS_HEAPTYPE == 0 {
        // static types spell their module in tp_name ("collections.deque") when not builtin
        return raw;
    }
    let heap = tp as *mut ffi::PyHeapTypeObject;
    let qual = unsafe { text(&*heap).unwrap_or(raw) };
    let dict = unsafe { (*tp).tp_dict };
    let module = if dict.is_null() {
        None
    } else {
        let m = unsafe { ffi::PyDict_GetItemString(dict, c"__module__".as_ptr()) };
        unsafe { str_of(m) }
    };
    match module {
        Some(m) if m != "builtins" => format!("{m}.{qual}"),
        _ => qual,
    }
}

unsafe fn text(heap: &ffi::PyHeapTypeObject) -> Option<String> {
    unsafe { str_of(heap.ht_qualname) }
}

/// A `str` object's text, or None for anything else. Reads the characters one by one, so it
/// never gives the string a cached UTF-8 copy.
pub(crate) unsafe fn str_of(o: *mut ffi::PyObject) -> Option<String> {
    unsafe { str_prefix(o, usize::MAX) }.map(|(s, _)| s)
}

/// Up to `max` characters of a `str` object, and its full length.
pub(crate) unsafe fn str_prefix(o: *mut ffi::PyObject, max: usize) -> Option<(String, usize)> {
    // SAFETY: GIL held by the caller; only exact/sub str objects are read
    if o.is_null() || unsafe { ffi::PyUnicode_Check(o) } == 0 {
        return None;
    }
    let len = unsafe { ffi::PyUnicode_GetLength(o) };
    if len < 0 {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let len = len as usize;
    let mut s = String::with_capacity(len.min(max));
    for i in 0..len.min(max) {
        let c = unsafe { ffi::PyUnicode_ReadChar(o, i as ffi::Py_ssize_t) };
        s.push(char::from_u32(c).unwrap_or('\u{fffd}'));
    }
    Some((s, len))
}

/// The shallow size of `obj` from its type's basic and item sizes.
///
/// # Safety
/// GIL held; `obj` alive.
pub(crate) unsafe fn basic_size(obj: *mut ffi::PyObject) -> u64 {
    let tp = unsafe { ffi::Py_TYPE(obj) };
    let basic = unsafe { (*tp).tp_basicsize }.max(0) as u64;
    let item = unsafe { (*tp).tp_itemsize };
    if item == 0 {
        return basic;
    }
    let n = unsafe { (*(obj as *mut ffi::PyVarObject)).ob_size }.unsigned_abs() as u64;
    basic + n * item.unsigned_abs() as u64
}

/// `obj.__sizeof__()` through a C method, or None when it failed.
///
/// # Safety
/// GIL held; `obj` alive; `f` the type's no-argument C `__sizeof__`.
pub(crate) unsafe fn native_sizeof(f: ffi::PyCFunction, obj: *mut ffi::PyObject) -> Option<u64> {
    let r = unsafe { f(obj, std::ptr::null_mut()) };
    unsafe { int_result(r) }
}

/// Consumes a new reference to what should be a non-negative int, of a sane size.
pub(crate) unsafe fn int_result(r: *mut ffi::PyObject) -> Option<u64> {
    if r.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let v = if unsafe { ffi::PyLong_Check(r) } != 0 {
        unsafe { ffi::PyLong_AsSsize_t(r) }
    } else {
        -1
    };
    unsafe { ffi::Py_DECREF(r) };
    if v < 0 {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    // a claim of more than a TiB for one object is a bug in its __sizeof__, not a measurement
    (v as u64).checked_sub(0).filter(|v| *v < 1 << 40)
}

/// Longest total time spent in `__sizeof__` methods written in Python, per census: a slow one
/// must not stall the program; past it, sizes come from the type's basic size.
pub(crate) const PY_SIZEOF_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// Calls `__sizeof__` methods written in Python within [`PY_SIZEOF_BUDGET`], and counts the
/// sizes it had to estimate instead (raised, nonsense, or out of time).
#[derive(Debug)]
pub(crate) struct PySizeof {
    end: std::time::Instant,
    pub estimated: u64,
}

impl PySizeof {
    pub fn new() -> Self {
        PySizeof {
            end: std::time::Instant::now() + PY_SIZEOF_BUDGET,
            estimated: 0,
        }
    }

    /// `obj.__sizeof__()`, or None (counted) when it failed or the budget is spent.
    ///
    /// # Safety
    /// GIL held; `obj` held by the caller, since the method may run any code.
    pub unsafe fn measure(&mut self, obj: *mut ffi::PyObject) -> Option<u64> {
        let measured = if std::time::Instant::now() < self.end {
            // SAFETY: the caller's guarantee
            unsafe {
                int_result(ffi::PyObject_CallMethod(
                    obj,
                    c"__sizeof__".as_ptr(),
                    std::ptr::null(),
                ))
            }
        } else {
            None
        };
        if measured.is_none() {
            self.estimated += 1;
        }
        measured
    }
}
