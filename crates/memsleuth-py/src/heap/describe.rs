//! Words for objects and for the references between them, made without running any of the
//! program's code: no `__repr__`, `__eq__`, `__hash__` or `__getattr__` is ever called, so an
//! object that raises, hangs or lies in those cannot hurt the report or the program.

use std::ffi::CStr;

use pyo3::ffi;

use super::roots::Roots;
use super::types::{str_of, str_prefix};

extern "C" {
    static mut PyMethod_Type: ffi::PyTypeObject;
    fn PyMethod_Function(m: *mut ffi::PyObject) -> *mut ffi::PyObject;
    fn PyMethod_Self(m: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

const T_OBJECT: i32 = 6;
const T_OBJECT_EX: i32 = 16;
/// Longest text kept from a string or a repr.
const REPR_CHARS: usize = 60;

fn is_method(o: *mut ffi::PyObject) -> bool {
    // SAFETY: comparing a type pointer with a static type's address
    unsafe { ffi::Py_TYPE(o) == std::ptr::addr_of_mut!(PyMethod_Type) }
}

/// A short, safe description of `obj`: "dict (3 items)", "'abc'", "<Session object at 0x..>".
///
/// # Safety
/// GIL held; `obj` alive.
pub(crate) unsafe fn short_repr(obj: *mut ffi::PyObject, type_name: &str) -> String {
    // SAFETY: the caller's guarantee
    unsafe { known_repr(obj, type_name) }
        .unwrap_or_else(|| format!("<{type_name} object at {obj:p}>"))
}

/// [`short_repr`] for the types it knows something to say about; `None` for the rest.
///
/// # Safety
/// GIL held; `obj` alive.
unsafe fn known_repr(obj: *mut ffi::PyObject, type_name: &str) -> Option<String> {
    // SAFETY (whole fn): the caller's guarantee; only C-level reads and C functions that run no
    // Python code are used
    unsafe {
        if obj == ffi::Py_None() {
            return Some("None".into());
        }
        if obj == ffi::Py_True() {
            return Some("True".into());
        }
        if obj == ffi::Py_False() {
            return Some("False".into());
        }
        if let Some((s, len)) = str_prefix(obj, REPR_CHARS) {
            return Some(quote(&s, len));
        }
        if ffi::PyLong_Check(obj) != 0 {
            let mut overflow = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
            if overflow == 0 && (v != -1 || ffi::PyErr_Occurred().is_null()) {
                return Some(v.to_string());
            }
            ffi::PyErr_Clear();
            return Some("<int too large to show>".into());
        }
        if ffi::PyFloat_Check(obj) != 0 {
            return Some(format!("{:?}", ffi::PyFloat_AsDouble(obj)));
        }
        if ffi::PyBytes_Check(obj) != 0 {
            // the length first: a binary payload's first bytes say little
            let n = ffi::PyBytes_Size(obj).max(0) as usize;
            let p = ffi::PyBytes_AsString(obj) as *const u8;
            let bytes = std::slice::from_raw_parts(p, n.min(16));
            // whole escapes only, and few enough that a report's line never cuts one in two
            let mut text = String::new();
            let mut shown = 0;
            for b in bytes {
                let one = b.escape_ascii().to_string();
                if text.len() + one.len() > 24 {
                    break;
                }
                text.push_str(&one);
                shown += 1;
            }
            let more = if n > shown { "…" } else { "" };
            return Some(format!(
                "{} bytes b'{text}{more}'",
                memsleuth_render::units::count(n as u64)
            ));
        }
        if ffi::PyDict_Check(obj) != 0 {
            return Some(format!("{type_name} ({})", items(ffi::PyDict_Size(obj))));
        }
        if ffi::PyList_Check(obj) != 0 {
            return Some(format!(
                "{type_name} ({})",
                items(ffi::PyList_GET_SIZE(obj))
            ));
        }
        if ffi::PyTuple_Check(obj) != 0 {
            return Some(format!(
                "{type_name} ({})",
                items(ffi::PyTuple_GET_SIZE(obj))
            ));
        }
        if ffi::PyAnySet_Check(obj) != 0 {
            return Some(format!("{type_name} ({})", items(ffi::PySet_Size(obj))));
        }
        if ffi::PyModule_Check(obj) != 0 {
            let name = ffi::PyModule_GetNameObject(obj);
            let text = str_of(name).unwrap_or_else(|| "?".into());
            if name.is_null() {
                ffi::PyErr_Clear();
            } else {
                ffi::Py_DECREF(name);
            }
            return Some(format!("<module {text}>"));
        }
        if ffi::PyType_Check(obj) != 0 {
            return Some(format!(
                "<class {}>",
                class_name(obj as *mut ffi::PyTypeObject)
            ));
        }
        if ffi::PyFunction_Check(obj) != 0 {
            return Some(format!("<function {}>", function_name(obj)));
        }
        if is_method(obj) {
            let f = PyMethod_Function(obj);
            let s = PyMethod_Self(obj);
            let fname = if !f.is_null() && ffi::PyFunction_Check(f) != 0 {
                function_name(f)
            } else {
                "?".into()
            };
            let owner = if s.is_null() {
                "?".into()
            } else {
                class_name(ffi::Py_TYPE(s))
            };
            return Some(format!(
                "<bound method {fname} of <{owner} object at {s:p}>>"
            ));
        }
        if ffi::PyCode_Check(obj) != 0 {
            let code = obj as *mut ffi::PyCodeObject;
            let _ = code;
            return Some("<code object>".into());
        }
        if ffi::PyWeakref_CheckRef(obj) != 0 {
            // what it points at, not where the weakref lives (a thread-local's per-thread
            // attributes are keyed by one): the address says nothing to a reader
            #[allow(deprecated)]
            let target = ffi::PyWeakref_GetObject(obj);
            if target.is_null() {
                ffi::PyErr_Clear();
            }
            if target.is_null() || target == ffi::Py_None() {
                return Some("<dead weakref>".into());
            }
            return Some(format!("<weakref to {}>", class_name(ffi::Py_TYPE(target))));
        }
        None
    }
}

fn items(n: ffi::Py_ssize_t) -> String {
    match n {
        1 => "1 item".into(),
        n => format!("{} items", memsleuth_render::units::count(n.max(0) as u64)),
    }
}

fn quote(s: &str, len: usize) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('\'');
    if len > s.chars().count() {
        out.pop();
        out.push_str(&format!(
            "…' ({} chars)",
            memsleuth_render::units::count(len as u64)
        ));
    }
    out
}

/// A type's name as its `tp_name` spells it.
unsafe fn class_name(tp: *mut ffi::PyTypeObject) -> String {
    // SAFETY: GIL held, `tp` alive (caller)
    let name = unsafe { (*tp).tp_name };
    if name.is_null() {
        return "?".into();
    }
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

unsafe fn function_name(f: *mut ffi::PyObject) -> String {
    // SAFETY: GIL held, `f` a live function (caller)
    let func = f as *mut ffi::PyFunctionObject;
    unsafe { str_of((*func).func_qualname) }.unwrap_or_else(|| "?".into())
}

/// How `parent` refers to `child`, in the words a Python programmer would write: `.attr`,
/// `['key']`, `[3]`, `local 'x'`... `None` when no specific words were found.
///
/// # Safety
/// GIL held; both alive.
pub(crate) unsafe fn edge_label(
    parent: *mut ffi::PyObject,
    child: *mut ffi::PyObject,
    roots: &Roots,
) -> Option<String> {
    // SAFETY (whole fn): the caller's guarantee; C-level reads only
    unsafe {
        if let Some(f) = roots.frames.get(&(parent as usize)) {
            if let Some((name, _)) = f.locals.iter().find(|(_, v)| *v == child) {
                return Some(format!("local '{name}'"));
            }
        }
        if ffi::PyDict_Check(parent) != 0 {
            return dict_label(parent, child);
        }
        if ffi::PyList_Check(parent) != 0 {
            let n = ffi::PyList_GET_SIZE(parent);
            return (0..n)
                .find(|&i| ffi::PyList_GET_ITEM(parent, i) == child)
                .map(|i| format!("[{i}]"));
        }
        if ffi::PyTuple_Check(parent) != 0 {
            let n = ffi::PyTuple_GET_SIZE(parent);
            return (0..n)
                .find(|&i| ffi::PyTuple_GET_ITEM(parent, i) == child)
                .map(|i| format!("[{i}]"));
        }
        if ffi::PyAnySet_Check(parent) != 0 {
            return Some("{member}".into());
        }
        if ffi::PyModule_Check(parent) != 0 && ffi::PyModule_GetDict(parent) == child {
            return Some(".__dict__".into());
        }
        if ffi::PyType_Check(parent) != 0 {
            let tp = parent as *mut ffi::PyTypeObject;
            if (*tp).tp_dict == child {
                return Some(".__dict__".into());
            }
            if (*tp).tp_mro == child {
                return Some(".__mro__".into());
            }
            if (*tp).tp_bases == child {
                return Some(".__bases__".into());
            }
        }
        if ffi::PyCell_Check(parent) != 0 {
            return Some(".cell_contents".into());
        }
        if ffi::PyFunction_Check(parent) != 0 {
            let pairs = [
                (ffi::PyFunction_GetGlobals(parent), ".__globals__"),
                (ffi::PyFunction_GetDefaults(parent), ".__defaults__"),
                (ffi::PyFunction_GetKwDefaults(parent), ".__kwdefaults__"),
                (ffi::PyFunction_GetClosure(parent), ".__closure__"),
                (ffi::PyFunction_GetCode(parent), ".__code__"),
            ];
            if let Some((_, l)) = pairs.iter().find(|(p, _)| *p == child) {
                return Some((*l).into());
            }
        }
        if is_method(parent) {
            if PyMethod_Self(parent) == child {
                return Some(".__self__".into());
            }
            if PyMethod_Function(parent) == child {
                return Some(".__func__".into());
            }
        }
        let tp = ffi::Py_TYPE(parent);
        if class_name(tp).ends_with("_lru_cache_wrapper") && ffi::PyDict_Check(child) != 0 {
            return Some(" lru_cache ".into());
        }
        if let Some(l) = slot_label(parent, child) {
            return Some(l);
        }
        instance_dict_label(parent, child)
    }
}

unsafe fn dict_label(dict: *mut ffi::PyObject, child: *mut ffi::PyObject) -> Option<String> {
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: GIL held, a live dict; PyDict_Next runs no Python code
    while unsafe { ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) } != 0 {
        if value == child {
            // SAFETY: a live key of the dict
            return Some(format!("[{}]", unsafe { key_repr(key) }));
        }
        if key == child {
            return Some("(key)".into());
        }
    }
    None
}

/// A dict key in words. A key with nothing to show but its address (3.13's thread-locals key
/// each thread's attributes by a `_thread._localdummy`) is named by its type alone: the
/// address says nothing to a reader.
unsafe fn key_repr(key: *mut ffi::PyObject) -> String {
    // SAFETY: GIL held, `key` alive (caller)
    let tp = unsafe { class_name(ffi::Py_TYPE(key)) };
    unsafe { known_repr(key, &tp) }.unwrap_or_else(|| format!("<{tp} object>"))
}

/// `__slots__` and other C members holding objects.
unsafe fn slot_label(obj: *mut ffi::PyObject, child: *mut ffi::PyObject) -> Option<String> {
    // SAFETY (whole fn): GIL held, `obj` alive; member offsets come from the type itself
    unsafe {
        let mro = (*ffi::Py_TYPE(obj)).tp_mro;
        if mro.is_null() || ffi::PyTuple_Check(mro) == 0 {
            return None;
        }
        for i in 0..ffi::PyTuple_GET_SIZE(mro) {
            let t = ffi::PyTuple_GET_ITEM(mro, i) as *mut ffi::PyTypeObject;
            let mut m = (*t).tp_members;
            while !m.is_null() && !(*m).name.is_null() {
                let def = &*m;
                if def.type_code == T_OBJECT || def.type_code == T_OBJECT_EX {
                    let slot = (obj as *mut u8).offset(def.offset) as *mut *mut ffi::PyObject;
                    if *slot == child {
                        return Some(format!(".{}", CStr::from_ptr(def.name).to_string_lossy()));
                    }
                }
                m = m.add(1);
            }
        }
        None
    }
}

/// An attribute in the instance's `__dict__`. On 3.11+ attributes may live inline, without a
/// dict object: naming them makes CPython build the dict, as reading `obj.__dict__` does.
unsafe fn instance_dict_label(
    obj: *mut ffi::PyObject,
    child: *mut ffi::PyObject,
) -> Option<String> {
    // SAFETY (whole fn): GIL held, `obj` alive
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        if (*tp).tp_dictoffset == 0 {
            return None;
        }
        let dict = ffi::PyObject_GenericGetDict(obj, std::ptr::null_mut());
        if dict.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let label = if dict == child {
            Some(".__dict__".into())
        } else {
            dict_label(dict, child).map(|l| match l.strip_prefix("['") {
                Some(rest) => format!(".{}", rest.trim_end_matches("']")),
                None => l,
            })
        };
        ffi::Py_DECREF(dict);
        label
    }
}

/// When `func` is a function, `tuple` its `__closure__` and `cell` one of its cells, the name
/// of the free variable that cell holds.
///
/// # Safety
/// GIL held; all three alive.
pub(crate) unsafe fn closure_name(
    func: *mut ffi::PyObject,
    tuple: *mut ffi::PyObject,
    cell: *mut ffi::PyObject,
) -> Option<String> {
    // SAFETY (whole fn): the caller's guarantee; C-level reads, and getting `co_freevars` of a
    // code object runs no Python code
    unsafe {
        if ffi::PyFunction_Check(func) == 0 || ffi::PyFunction_GetClosure(func) != tuple {
            return None;
        }
        let n = ffi::PyTuple_GET_SIZE(tuple);
        let i = (0..n).find(|&i| ffi::PyTuple_GET_ITEM(tuple, i) == cell)?;
        let code = ffi::PyFunction_GetCode(func);
        let names = ffi::PyObject_GetAttrString(code, c"co_freevars".as_ptr());
        if names.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let name = if ffi::PyTuple_Check(names) != 0 && i < ffi::PyTuple_GET_SIZE(names) {
            str_of(ffi::PyTuple_GET_ITEM(names, i))
        } else {
            None
        };
        ffi::Py_DECREF(names);
        name
    }
}

/// The dict that holds `parent`'s attributes, when `dict` is it (a module's, a class's or an
/// instance's `__dict__`): the path then reads `.name` instead of `.__dict__ ['name']`.
///
/// # Safety
/// GIL held; both alive.
pub(crate) unsafe fn is_attribute_dict(
    parent: *mut ffi::PyObject,
    dict: *mut ffi::PyObject,
) -> bool {
    // SAFETY (whole fn): the caller's guarantee
    unsafe {
        if ffi::PyDict_Check(dict) == 0 {
            return false;
        }
        if ffi::PyModule_Check(parent) != 0 {
            return ffi::PyModule_GetDict(parent) == dict;
        }
        if ffi::PyType_Check(parent) != 0 {
            return (*(parent as *mut ffi::PyTypeObject)).tp_dict == dict;
        }
        let tp = ffi::Py_TYPE(parent);
        if (*tp).tp_dictoffset == 0 || ffi::PyDict_Check(parent) != 0 {
            return false;
        }
        let d = ffi::PyObject_GenericGetDict(parent, std::ptr::null_mut());
        if d.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        ffi::Py_DECREF(d);
        d == dict
    }
}
