//! What the heap walk needs to know about each type, looked up once per type: its qualified
//! name, how to measure an instance, and the bytes CPython keeps in front of an instance (so an
//! object can be matched with the allocation block that holds it).

use std::ffi::{c_int, CStr};

use pyo3::ffi;
use rustc_hash::FxHashMap;

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
    pub id: u32,
    pub sizeof: SizeOf,
    /// What `sys.getsizeof` adds to `__sizeof__` for an instance (the gc header and, from 3.12,
    /// the managed dict/weakref slots).
    pub getsizeof_extra: u64,
    /// Bytes between the start of the allocation block and the object.
    pub preheader: u64,
}

/// Types seen by one walk, with dense ids.
#[derive(Debug, Default)]
pub(crate) struct Types {
    by_ptr: FxHashMap<usize, TypeInfo>,
    pub names: Vec<String>,
    /// `getsizeof_extra` by type id.
    pub extras: Vec<u64>,
    /// `preheader` by type id.
    preheaders: Vec<u64>,
    minor: u8,
}

impl Types {
    pub fn new(minor: u8) -> Self {
        Types {
            minor,
            ..Types::default()
        }
    }

    /// The info of `tp`, computed on first sight.
    ///
    /// # Safety
    /// GIL held; `tp` a live type object.
    pub unsafe fn of(&mut self, tp: *mut ffi::PyTypeObject) -> &TypeInfo {
        let minor = self.minor;
        let next = self.names.len() as u32;
        let (names, extras, pre) = (&mut self.names, &mut self.extras, &mut self.preheaders);
        self.by_ptr.entry(tp as usize).or_insert_with(|| {
            names.push(unsafe { qualified_name(tp) });
            let info = unsafe { describe(tp, next, minor) };
            extras.push(info.getsizeof_extra);
            pre.push(info.preheader);
            info
        })
    }

    /// Bytes between an instance's allocation block and the instance, by type id.
    pub fn preheader_of(&self, type_id: u32) -> u64 {
        self.preheaders.get(type_id as usize).copied().unwrap_or(0)
    }
}

unsafe fn describe(tp: *mut ffi::PyTypeObject, id: u32, minor: u8) -> TypeInfo {
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
        id,
        sizeof: unsafe { sizeof_of(tp) },
        // sys.getsizeof adds the whole pre-header: the gc header and, from 3.11, the managed
        // dict (and from 3.12 weakref) slots
        getsizeof_extra: gc + managed,
        preheader: gc + managed,
    }
}

unsafe fn sizeof_of(tp: *mut ffi::PyTypeObject) -> SizeOf {
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
            return SizeOf::Native(unsafe { (*def).ml_meth.PyCFunction });
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
