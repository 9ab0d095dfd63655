//! The roots a retention path can end at: modules, the frames of running threads, `gc.garbage`,
//! and roots a caller names (the script's globals under `memsleuth run`). Gathered before the
//! walk, with every Python call done up front, so the walk itself runs no Python code.

use memsleuth_analysis::heap::RootKind;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustc_hash::FxHashMap;

use super::types::str_of;

/// What a root is, in words, and how strongly a path should prefer it.
#[derive(Debug, Clone)]
pub(crate) struct RootInfo {
    pub kind: RootKind,
    pub words: String,
    /// The frame that called the census: the last resort before "held from C", since whoever
    /// asks `why(x)` holds `x` in a local.
    pub caller: bool,
}

/// A running frame and its local variables (names and values).
#[derive(Debug)]
pub(crate) struct FrameLocals {
    pub locals: Vec<(String, *mut ffi::PyObject)>,
}

#[derive(Debug, Default)]
pub(crate) struct Roots {
    pub by_ptr: FxHashMap<usize, RootInfo>,
    /// Running frames by address, with their locals: on 3.11+ the gc cannot see a running
    /// frame's locals, so the walk adds those references itself.
    pub frames: FxHashMap<usize, FrameLocals>,
    /// Strong references we hold for the walk's duration (frames we materialised, local
    /// values), and how many per object, so they are not mistaken for references from C.
    pub held: Vec<*mut ffi::PyObject>,
    pub own_refs: FxHashMap<usize, u32>,
}

impl RootInfo {
    /// A root that outlives the code running now (a module, `gc.garbage`, named globals), as
    /// opposed to a running frame: the holder to show when both reach an object.
    pub fn lasting(&self) -> bool {
        self.kind != RootKind::ThreadFrame
    }
}

impl Roots {
    fn hold(&mut self, o: *mut ffi::PyObject) {
        // SAFETY: GIL held (all callers); `o` is alive
        unsafe { ffi::Py_INCREF(o) };
        self.adopt(o);
    }

    /// Takes over a new reference.
    fn adopt(&mut self, o: *mut ffi::PyObject) {
        self.held.push(o);
        *self.own_refs.entry(o as usize).or_default() += 1;
    }

    /// Gathers the roots of this interpreter. `extra` names more roots (object, words).
    pub fn gather(py: Python<'_>, extra: &[(Bound<'_, PyAny>, String)]) -> Roots {
        let mut roots = Roots::default();
        roots.modules(py);
        roots.threads(py);
        if let Ok(garbage) = py.import("gc").and_then(|gc| gc.getattr("garbage")) {
            roots.by_ptr.insert(
                garbage.as_ptr() as usize,
                RootInfo {
                    kind: RootKind::GcGarbage,
                    words: "gc.garbage".into(),
                    caller: false,
                },
            );
        }
        for (obj, words) in extra {
            roots.by_ptr.insert(
                obj.as_ptr() as usize,
                RootInfo {
                    kind: RootKind::Module,
                    words: words.clone(),
                    caller: false,
                },
            );
        }
        roots
    }

    fn modules(&mut self, py: Python<'_>) {
        let Ok(modules) = py.import("sys").and_then(|s| s.getattr("modules")) else {
            return;
        };
        let Ok(modules) = modules.cast_into::<PyDict>() else {
            return;
        };
        for (name, module) in modules.iter() {
            // SAFETY: GIL held; `name` alive
            let name = unsafe { str_of(name.as_ptr()) }.unwrap_or_else(|| "?".into());
            self.by_ptr.insert(
                module.as_ptr() as usize,
                RootInfo {
                    kind: RootKind::Module,
                    words: format!("module {name}"),
                    caller: false,
                },
            );
        }
    }

    fn threads(&mut self, py: Python<'_>) {
        let Ok(current) = py
            .import("sys")
            .and_then(|s| s.call_method0("_current_frames"))
        else {
            return;
        };
        let Ok(current) = current.cast_into::<PyDict>() else {
            return;
        };
        let me = py
            .import("_thread")
            .and_then(|t| t.call_method0("get_ident"))
            .and_then(|i| i.extract::<u64>())
            .unwrap_or(0);
        let names = thread_names(py);
        let own_dir = py
            .import("memsleuth")
            .and_then(|m| m.getattr("__file__"))
            .and_then(|f| f.extract::<String>())
            .ok()
            .and_then(|f| {
                std::path::Path::new(&f)
                    .parent()
                    .map(|d| format!("{}{}", d.display(), std::path::MAIN_SEPARATOR))
            })
            .unwrap_or_default();
        for (ident, frame) in current.iter() {
            let ident: u64 = ident.extract().unwrap_or(0);
            let thread = names
                .get(&ident)
                .cloned()
                .unwrap_or_else(|| format!("thread {ident}"));
            let mut f = frame.as_ptr();
            self.hold(f);
            let mut innermost = true;
            while !f.is_null() {
                let (words, file) = frame_words(py, f, &thread);
                // memsleuth's own frames (the `why` wrapper...) hold what they were asked
                // about: they are neither roots nor holders
                let own = !own_dir.is_empty() && file.starts_with(&own_dir);
                if !own {
                    let caller = ident == me && innermost;
                    innermost = false;
                    let locals = frame_locals(py, f);
                    for (_, v) in &locals {
                        self.hold(*v);
                    }
                    self.by_ptr.insert(
                        f as usize,
                        RootInfo {
                            kind: RootKind::ThreadFrame,
                            words,
                            caller,
                        },
                    );
                    self.frames.insert(f as usize, FrameLocals { locals });
                }
                // SAFETY: GIL held; a new reference, or NULL at the outermost frame
                f = unsafe { ffi::PyFrame_GetBack(f as *mut ffi::PyFrameObject) }.cast();
                if !f.is_null() {
                    self.adopt(f);
                }
            }
        }
    }

    /// Releases every reference the walk held.
    pub fn release(&mut self) {
        for o in self.held.drain(..) {
            // SAFETY: GIL held by the caller; each entry is a reference we took
            unsafe { ffi::Py_DECREF(o) };
        }
        self.own_refs.clear();
    }
}

fn thread_names(py: Python<'_>) -> FxHashMap<u64, String> {
    let mut names = FxHashMap::default();
    // only when the program uses threading: importing it here would change what we measure
    let Some(threading) = py
        .import("sys")
        .and_then(|s| s.getattr("modules"))
        .ok()
        .and_then(|m| m.cast_into::<PyDict>().ok())
        .and_then(|m| m.get_item("threading").ok().flatten())
    else {
        return names;
    };
    if let Ok(active) = threading
        .getattr("_active")
        .and_then(|a| a.cast_into::<PyDict>().map_err(PyErr::from))
    {
        for (ident, t) in active.iter() {
            if let (Ok(ident), Ok(name)) = (
                ident.extract::<u64>(),
                t.getattr("name").and_then(|n| n.extract::<String>()),
            ) {
                names.insert(ident, format!("thread {name}"));
            }
        }
    }
    names
}

/// The frame in words, and its file.
fn frame_words(py: Python<'_>, f: *mut ffi::PyObject, thread: &str) -> (String, String) {
    // SAFETY: GIL held; `f` is a live frame we hold
    let frame = unsafe { Bound::from_borrowed_ptr(py, f) };
    let code = frame.getattr("f_code").ok();
    let name = code
        .as_ref()
        .and_then(|c| c.getattr("co_name").ok())
        .and_then(|n| n.extract::<String>().ok())
        .unwrap_or_else(|| "?".into());
    let file = code
        .as_ref()
        .and_then(|c| c.getattr("co_filename").ok())
        .and_then(|n| n.extract::<String>().ok())
        .unwrap_or_default();
    // SAFETY: as above
    let line = unsafe { ffi::PyFrame_GetLineNumber(f as *mut ffi::PyFrameObject) };
    (format!("{thread}, frame {name} ({file}:{line})"), file)
}

/// A running frame's local variables (values borrowed: the caller takes references).
///
/// Read straight from the frame's fast-locals array: `frame.f_locals` would do, but up to 3.12
/// it leaves a dict on the frame that holds every local — a lasting reference the census must
/// not create. The array's offset per version was taken from each version's headers
/// (`frameobject.h` 3.9/3.10: `f_localsplus`; `pycore_frame.h` 3.11+: `localsplus` of the
/// interpreter frame, reached through the frame object's `f_frame`); names come from the code
/// object in the same order CPython lays the array out.
fn frame_locals(py: Python<'_>, f: *mut ffi::PyObject) -> Vec<(String, *mut ffi::PyObject)> {
    let minor = py.version_info().minor;
    // SAFETY: GIL held; `f` is a live frame we hold
    let frame = unsafe { Bound::from_borrowed_ptr(py, f) };
    let Ok(code) = frame.getattr("f_code") else {
        return Vec::new();
    };
    let names = |attr: &str| -> Vec<String> {
        code.getattr(attr)
            .and_then(|t| t.extract::<Vec<String>>())
            .unwrap_or_default()
    };
    let (varnames, cellvars, freevars) = (
        names("co_varnames"),
        names("co_cellvars"),
        names("co_freevars"),
    );
    let mut all = varnames.clone();
    if minor >= 11 {
        // a cell variable that is also an argument shares the argument's slot
        all.extend(cellvars.into_iter().filter(|c| !varnames.contains(c)));
    } else {
        all.extend(cellvars);
    }
    all.extend(freevars);
    // SAFETY: offsets for the versions we know (checked below); the frame is alive and its
    // array holds at least as many slots as the code object names
    let base: *const *mut ffi::PyObject = unsafe {
        match minor {
            9 => (f as *const u8).add(360).cast(),
            10 => (f as *const u8).add(352).cast(),
            11..=13 => {
                let iframe = *((f as *const u8).add(24) as *const *const u8);
                if iframe.is_null() {
                    return Vec::new();
                }
                iframe.add(72).cast()
            }
            _ => return Vec::new(),
        }
    };
    all.into_iter()
        .enumerate()
        // SAFETY: as above
        .map(|(i, name)| (name, unsafe { *base.add(i) }))
        .filter(|(_, v)| !v.is_null())
        .collect()
}
