//! The memory blocks an object owns besides the block it lives in: a list's item array, a
//! dict's keys table and values array, a set's hash table, a bytearray's buffer, an
//! `array.array`'s items, a deque's blocks, a heap type's shared-keys table, and (3.11, 3.12) an
//! instance's attribute values. A leaking line that grows such a block (`items.append(x)`,
//! `cache[k] = v`) allocates no object of its own, so its surviving block matches no node of
//! the heap graph; matched against these, it is held by the object that owns it.
//!
//! Everything here reads the object's C struct, never calls its type's code, and only for
//! the types recognised once per type in [`kind_of`]. The pointers read are only compared with
//! the blocks asked about, except a deque's, whose chain of blocks is followed (see
//! [`Kind::Deque`]).

use std::ffi::CStr;
use std::mem::{offset_of, size_of};

use pyo3::ffi;

use super::types::str_of;

/// 3.11+: the instance dict (3.11: and values) pointer lives in front of the object.
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;

/// Where an instance's dict values array starts relative to the pointer CPython keeps to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// 3.9, 3.10: the pointer is the block's start (`PyMem_NEW(PyObject *, n)`).
    Direct,
    /// 3.11, 3.12: the values follow a prefix of insertion-order bytes whose size is the byte
    /// just before them (`new_values`: `mem[prefix_size - 1] = prefix_size`, and
    /// `free_values` frees `values - prefix_size`).
    Prefixed,
    /// 3.13+: the pointer is the block's start (a `PyDictValues` header), unless the values
    /// are embedded in their object (its `embedded` byte), which are part of the object's own
    /// block and so need no owner.
    Header,
}

/// 3.11, 3.12: where an instance with a managed dict keeps its values array while it has no
/// dict object (3.13 keeps them inside the object itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Managed {
    None,
    /// 3.11: `_PyObject_ValuesPointer`, the fourth word in front of the object.
    ValuesPointer,
    /// 3.12: `_PyObject_DictOrValuesPointer`, the third word in front of the object; values
    /// are tagged by storing `values - 1` (its lowest bit set).
    DictOrValues,
}

/// The storage an instance of a type owns, decided once per type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    None,
    /// `list` and subclasses: `ob_item` (NULL while the list never held an item).
    List,
    /// `dict` and subclasses: `ma_keys` of a combined table; for a split table (instance
    /// dicts sharing their class's keys) the keys belong to the class (see `HeapType`) and
    /// only the values array is the dict's.
    Dict(Values),
    /// `set`, `frozenset` and subclasses: `table` once it outgrew the inline `smalltable`.
    Set,
    /// `bytearray` and subclasses: `ob_bytes` (NULL while empty).
    ByteArray,
    /// `array.array` and subclasses: `ob_item`. The module's struct is private but has not
    /// changed from 3.9 to 3.13: `PyObject_VAR_HEAD; char *ob_item; Py_ssize_t allocated;
    /// const struct arraydescr *ob_descr; PyObject *weakreflist; Py_ssize_t ob_exports`.
    Array,
    /// `collections.deque` and subclasses: its chain of 64-item blocks. Private as well, and
    /// also unchanged from 3.9 to 3.13 where it is read: `PyObject_VAR_HEAD; block *leftblock;
    /// block *rightblock; ...` with `block { block *leftlink; PyObject *data[64]; block
    /// *rightlink; }`. The chain is followed from `leftblock` to `rightblock`, at most as many
    /// blocks as the deque's length needs.
    Deque,
    /// `type` and subclasses: a heap type's `ht_cached_keys`, the keys its instances' dicts
    /// share.
    Type,
}

/// What an instance of `tp` owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Storage {
    pub kind: Kind,
    pub managed: Managed,
}

impl Storage {
    pub const NONE: Storage = Storage {
        kind: Kind::None,
        managed: Managed::None,
    };

    pub fn is_none(&self) -> bool {
        *self == Storage::NONE
    }
}

/// The words in front of a `PyVarObject`'s own fields.
const VAR_HEAD: usize = size_of::<ffi::PyVarObject>();
/// `array.array`'s struct size (see [`Kind::Array`]).
const ARRAY_SIZE: usize = VAR_HEAD + 5 * size_of::<usize>();
/// Items per deque block, and where a block's `rightlink` is.
const DEQUE_BLOCKLEN: usize = 64;
const DEQUE_RIGHTLINK: usize = (1 + DEQUE_BLOCKLEN) * size_of::<usize>();
/// The deque's fields read: `leftblock` and `rightblock`; every version's struct is larger.
const DEQUE_MIN_SIZE: usize = VAR_HEAD + 2 * size_of::<usize>();

/// What the instances of `tp` own, from its flags and bases.
///
/// # Safety
/// GIL held; `tp` a live type object.
pub(crate) unsafe fn kind_of(tp: *mut ffi::PyTypeObject, minor: u8) -> Storage {
    // SAFETY (whole fn): the caller's guarantee; PyType_IsSubtype runs no Python code
    let flags = unsafe { (*tp).tp_flags };
    let managed = match minor {
        11 if flags & TPFLAGS_MANAGED_DICT != 0 => Managed::ValuesPointer,
        12 if flags & TPFLAGS_MANAGED_DICT != 0 => Managed::DictOrValues,
        _ => Managed::None,
    };
    let subtype = |base: *mut ffi::PyTypeObject| unsafe { ffi::PyType_IsSubtype(tp, base) != 0 };
    let kind = if flags & ffi::Py_TPFLAGS_LIST_SUBCLASS != 0 {
        Kind::List
    } else if flags & ffi::Py_TPFLAGS_DICT_SUBCLASS != 0 {
        Kind::Dict(match minor {
            ..=10 => Values::Direct,
            11 | 12 => Values::Prefixed,
            _ => Values::Header,
        })
    } else if flags & ffi::Py_TPFLAGS_TYPE_SUBCLASS != 0 {
        Kind::Type
    } else if subtype(std::ptr::addr_of_mut!(ffi::PySet_Type))
        || subtype(std::ptr::addr_of_mut!(ffi::PyFrozenSet_Type))
    {
        Kind::Set
    } else if subtype(std::ptr::addr_of_mut!(ffi::PyByteArray_Type)) {
        Kind::ByteArray
    } else if unsafe { has_c_base(tp, c"array.array", ARRAY_SIZE, true) } {
        Kind::Array
    } else if unsafe { has_c_base(tp, c"collections.deque", DEQUE_MIN_SIZE, false) } {
        Kind::Deque
    } else {
        Kind::None
    };
    Storage { kind, managed }
}

/// Whether `tp` is, or derives from, the C type named `name` (its `tp_name`, module
/// included), whose instances are `size` bytes (`exact`) or at least that. A class written in
/// Python may be given any name, even a dotted one, but its `__name__` (`ht_name`) is then
/// the whole of `tp_name`; a C type made from a spec has only the part after the last dot
/// there, and a static C type is no heap type at all.
///
/// # Safety
/// GIL held; `tp` a live type object.
unsafe fn has_c_base(tp: *mut ffi::PyTypeObject, name: &CStr, size: usize, exact: bool) -> bool {
    let mut t = tp;
    // SAFETY (loop): the caller's guarantee; a type keeps its bases alive
    while !t.is_null() {
        let tp_name = unsafe { (*t).tp_name };
        if !tp_name.is_null() && unsafe { CStr::from_ptr(tp_name) } == name {
            let basic = unsafe { (*t).tp_basicsize }.max(0) as usize;
            let sized = if exact { basic == size } else { basic >= size };
            let from_c = unsafe { (*t).tp_flags } & ffi::Py_TPFLAGS_HEAPTYPE == 0
                || unsafe { str_of((*(t as *mut ffi::PyHeapTypeObject)).ht_name) }
                    .is_some_and(|n| n.as_bytes() != name.to_bytes());
            if from_c {
                return sized && unsafe { (*t).tp_itemsize } == 0;
            }
            // a Python class that took the name: its bases may still hold the real one
        }
        t = unsafe { (*t).tp_base };
    }
    false
}

/// Calls `f` with the address of each memory block `obj` owns (see [`Kind`]).
///
/// # Safety
/// GIL held; `obj` alive and an instance of a type whose storage is `s`.
pub(crate) unsafe fn blocks(obj: *mut ffi::PyObject, s: Storage, mut f: impl FnMut(u64)) {
    let mut give = |p: *const u8| {
        if !p.is_null() {
            f(p as u64);
        }
    };
    // SAFETY (whole fn): the caller's guarantee; each read is of a field the type's struct has
    // (kind_of checked the struct's size for the private ones), and what is read is only
    // compared with addresses, except the deque's own links
    unsafe {
        match s.kind {
            Kind::None => {}
            Kind::List => give((*obj.cast::<ffi::PyListObject>()).ob_item.cast()),
            Kind::Dict(values) => dict_blocks(obj.cast(), values, &mut give),
            Kind::Set => {
                let set = obj.cast::<ffi::PySetObject>();
                let table = (*set).table;
                // the inline table is part of the object's own block
                if table != std::ptr::addr_of_mut!((*set).smalltable).cast() {
                    give(table.cast());
                }
            }
            Kind::ByteArray => give((*obj.cast::<ffi::PyByteArrayObject>()).ob_bytes.cast()),
            Kind::Array => give(*obj.cast::<u8>().add(VAR_HEAD).cast::<*const u8>()),
            Kind::Deque => {
                let head = obj.cast::<u8>().add(VAR_HEAD).cast::<*const u8>();
                let (left, right) = (*head, *head.add(1));
                // a deque of n items spans at most n/64 + 2 blocks, and always has one
                let len = (*obj.cast::<ffi::PyVarObject>()).ob_size.max(0) as usize;
                let mut b = left;
                for _ in 0..len / DEQUE_BLOCKLEN + 2 {
                    if b.is_null() {
                        break;
                    }
                    give(b);
                    if b == right {
                        break;
                    }
                    b = *b.add(DEQUE_RIGHTLINK).cast::<*const u8>();
                }
            }
            Kind::Type => {
                // a static type has no cached keys (nor the heap type's fields)
                if (*obj.cast::<ffi::PyTypeObject>()).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE != 0 {
                    give((*obj.cast::<ffi::PyHeapTypeObject>()).ht_cached_keys.cast());
                }
            }
        }
        match s.managed {
            Managed::None => {}
            Managed::ValuesPointer => {
                let values = *obj.cast::<*const u8>().sub(4);
                give(prefixed_start(values));
            }
            Managed::DictOrValues => {
                let tagged = *obj.cast::<usize>().sub(3);
                if tagged & 1 != 0 {
                    give(prefixed_start((tagged + 1) as *const u8));
                }
            }
        }
    }
}

/// A dict's keys table (when not shared) and values array.
///
/// # Safety
/// As [`blocks`], `dict` a dict.
unsafe fn dict_blocks(
    dict: *mut ffi::PyDictObject,
    values: Values,
    give: &mut impl FnMut(*const u8),
) {
    // SAFETY (whole fn): the caller's guarantee
    unsafe {
        let keys: *const u8 = (*dict).ma_keys.cast();
        // its type differs between versions (`PyObject **`, `PyDictValues *`): only the address
        // is used
        let vals: *const u8 = (*dict).ma_values.cast();
        if vals.is_null() {
            // a combined table: the keys (and the values with them) are this dict's alone
            give(keys);
            return;
        }
        // a split table: the keys are its class's (a node of the type's own, `Kind::Type`)
        match values {
            Values::Direct => give(vals),
            Values::Prefixed => give(prefixed_start(vals)),
            Values::Header => {
                // `PyDictValues { uint8_t capacity, size, embedded, valid; ... }`
                let embedded = *vals.add(offset_of!(DictValues313, embedded));
                if embedded == 0 {
                    give(vals);
                }
            }
        }
    }
}

/// The head of 3.13's `PyDictValues` (pycore_dict.h).
#[repr(C)]
struct DictValues313 {
    _capacity: u8,
    _size: u8,
    embedded: u8,
    _valid: u8,
}

/// 3.11, 3.12: the block a values array lives in starts `values[-1]` bytes before it (see
/// [`Values::Prefixed`]); NULL when there are none or the prefix makes no sense.
///
/// # Safety
/// GIL held; `values` NULL or a live values array of these versions.
unsafe fn prefixed_start(values: *const u8) -> *const u8 {
    if values.is_null() {
        return values;
    }
    // SAFETY: the caller's guarantee: the prefix's last byte is in the same block
    let prefix = usize::from(unsafe { *values.sub(1) });
    // `_Py_SIZE_ROUND_UP(size + 2, sizeof(PyObject *))`: a whole number of words, at least one
    if prefix == 0 || prefix % size_of::<usize>() != 0 {
        return std::ptr::null();
    }
    values.wrapping_sub(prefix)
}
