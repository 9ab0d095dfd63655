//! Reading the current thread's Python stack from inside an allocator hook.
//!
//! The public frame API is too slow for the hot path: on 3.11+ `PyEval_GetFrame` and
//! `PyFrame_GetBack` materialise frame objects (allocating, 7–9x slowdown at depth 40 in our
//! measurements) and `PyFrame_GetLineNumber` decodes the line table per frame (up to 48x). So we
//! read the interpreter's own frame structures directly — a few pointer loads per frame — and
//! record (code object, instruction offset) pairs; lines are resolved later, once per distinct
//! pair, off the hot path.
//!
//! The structure offsets differ per minor version. They were taken with `offsetof` from each
//! version's headers (`Include/internal/pycore_frame.h`, `cpython/pystate.h`), and
//! [`Layout::verify`] checks them against the public API on the running interpreter before any
//! hook is installed, so a build we do not know is refused instead of misread.

use std::ffi::c_void;

use pyo3::ffi;

/// Where things are in one CPython minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub minor: u8,
    /// 3.9/3.10: `tstate->frame`; 3.11/3.12: `tstate->cframe`; 3.13: `tstate->current_frame`.
    tstate_frame: usize,
    /// 3.11/3.12: `cframe->current_frame`.
    cframe_current: Option<usize>,
    /// Offset of the code object (`f_code` / `f_executable`) in a frame.
    code: usize,
    /// Offset of the caller link (`f_back` / `previous`).
    back: usize,
    /// 3.9/3.10: `f_lasti` (int). 3.11+: `prev_instr` / `instr_ptr` (pointer).
    instr: usize,
    /// 3.11+: `owner` (char).
    owner: Option<usize>,
    /// 3.11+: `co_code_adaptive`, the start of the bytecode inside the code object.
    code_start: usize,
    /// 3.11+: `_co_firsttraceable` (int): frames before it are still being set up.
    first_traceable: usize,
}

const FRAME_OWNED_BY_GENERATOR: u8 = 1;
const FRAME_OWNED_BY_CSTACK: u8 = 3;

impl Layout {
    /// The layout for a CPython minor version, when we know it.
    pub fn for_version(minor: u8) -> Option<Layout> {
        let l = match minor {
            9 => Layout {
                minor,
                tstate_frame: 24,
                cframe_current: None,
                code: 32,
                back: 24,
                instr: 104,
                owner: None,
                code_start: 0,
                first_traceable: 0,
            },
            10 => Layout {
                minor,
                tstate_frame: 24,
                cframe_current: None,
                code: 32,
                back: 24,
                instr: 96,
                owner: None,
                code_start: 0,
                first_traceable: 0,
            },
            11 => Layout {
                minor,
                tstate_frame: 56,
                cframe_current: Some(8),
                code: 32,
                back: 48,
                instr: 56,
                owner: Some(69),
                code_start: 184,
                first_traceable: 168,
            },
            12 => Layout {
                minor,
                tstate_frame: 56,
                cframe_current: Some(0),
                code: 0,
                back: 8,
                instr: 56,
                owner: Some(70),
                code_start: 192,
                first_traceable: 176,
            },
            13 => Layout {
                minor,
                tstate_frame: 72,
                cframe_current: None,
                code: 0,
                back: 8,
                instr: 56,
                owner: Some(70),
                code_start: 200,
                first_traceable: 184,
            },
            _ => return None,
        };
        Some(l)
    }

    /// Walks the stack of `tstate`, innermost frame first, writing (code object, instruction
    /// byte offset) pairs into `out`; returns how many were written. `u32::MAX` as the offset
    /// means "before the first instruction".
    ///
    /// # Safety
    /// `tstate` must be the calling thread's state and the thread must hold the GIL (or be the
    /// only one that can change its frames), so that no frame changes during the walk.
    #[inline]
    pub unsafe fn walk(&self, tstate: *mut c_void, out: &mut [(u64, u32)]) -> usize {
        // SAFETY (whole body): pointers read are fields of live interpreter structures of this
        // thread, at offsets verified against this interpreter by `verify`.
        unsafe {
            let mut frame = read_ptr(tstate, self.tstate_frame);
            if let Some(cur) = self.cframe_current {
                if frame.is_null() {
                    return 0;
                }
                frame = read_ptr(frame, cur);
            }
            let mut n = 0;
            while !frame.is_null() && n < out.len() {
                let code = read_ptr(frame, self.code);
                match self.owner {
                    None => {
                        let lasti = *(frame.cast::<u8>().add(self.instr).cast::<i32>());
                        let offset = match (lasti, self.minor) {
                            (l, _) if l < 0 => u32::MAX,
                            (l, 9) => l as u32,
                            (l, _) => (l as u32).wrapping_mul(2),
                        };
                        out[n] = (code as u64, offset);
                        n += 1;
                    }
                    Some(owner_at) => {
                        let owner = *frame.cast::<u8>().add(owner_at);
                        // 3.13's f_executable may be something other than a code object;
                        // 3.11/3.12's f_code never is
                        let usable = owner != FRAME_OWNED_BY_CSTACK
                            && !code.is_null()
                            && (self.minor < 13
                                || std::ptr::eq(
                                    (*code.cast::<ffi::PyObject>()).ob_type,
                                    std::ptr::addr_of!(ffi::PyCode_Type),
                                ));
                        if usable {
                            let instr = read_ptr(frame, self.instr) as usize;
                            let start = code as usize + self.code_start;
                            let first =
                                *(code.cast::<u8>().add(self.first_traceable).cast::<i32>());
                            let incomplete = owner != FRAME_OWNED_BY_GENERATOR
                                && instr < start + 2 * first.max(0) as usize;
                            if !incomplete {
                                let offset =
                                    instr.checked_sub(start).map_or(u32::MAX, |o| o as u32);
                                out[n] = (code as u64, offset);
                                n += 1;
                            }
                        }
                    }
                }
                frame = read_ptr(frame, self.back);
            }
            n
        }
    }

    /// Checks this layout against the public frame API on the calling thread: the code objects
    /// our walk finds must be exactly those `PyEval_GetFrame`/`PyFrame_GetBack` report.
    pub fn verify(&self, _py: pyo3::Python<'_>) -> bool {
        let mut ours = [(0u64, 0u32); 64];
        // SAFETY: we hold the GIL (the `Python` token), so this thread's state and frames are
        // stable; the public calls below return new references that we release.
        unsafe {
            let tstate = ffi::PyThreadState_Get().cast::<c_void>();
            let n = self.walk(tstate, &mut ours);
            let mut theirs = Vec::new();
            let mut frame = ffi::PyEval_GetFrame();
            if !frame.is_null() {
                ffi::Py_INCREF(frame.cast());
            }
            while !frame.is_null() && theirs.len() < ours.len() {
                let code = ffi::PyFrame_GetCode(frame);
                theirs.push(code as u64);
                ffi::Py_DECREF(code.cast());
                let back = ffi::PyFrame_GetBack(frame);
                ffi::Py_DECREF(frame.cast());
                frame = back;
            }
            if !frame.is_null() {
                ffi::Py_DECREF(frame.cast());
            }
            n > 0 && n == theirs.len() && ours[..n].iter().map(|p| p.0).eq(theirs)
        }
    }
}

#[inline]
unsafe fn read_ptr(base: *mut c_void, offset: usize) -> *mut c_void {
    // SAFETY: the caller guarantees `base + offset` is a pointer-sized field of a live struct.
    unsafe { *(base.cast::<u8>().add(offset).cast::<*mut c_void>()) }
}
