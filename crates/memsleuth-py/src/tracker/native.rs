//! The tracker's side of the native instrument: the [`NativeHooks`] table the preload library
//! (`memsleuth-preload`, loaded with `LD_PRELOAD`) calls for every C allocator call and mapping.
//! The events go to the same rings, with the same Python stack, as the allocator hooks' own,
//! under the `native` domain.
//!
//! Memory the Python allocators get from the C library is not recorded twice: while a Python
//! allocator hook runs, its thread is inside the hook, and so are memsleuth's own threads; the
//! table's functions then return at once. What remains is what code outside Python's allocators
//! asks of the C library: extension modules, numpy's buffers, ctypes calls, the libraries they
//! use.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use memsleuth_hook::native::{NativeHooks, ABI_VERSION, INSTALL_SYMBOL};

use super::hooks::{self, entered, on_alloc, on_free_at, worth_a_free, NATIVE};

static TABLE: NativeHooks = NativeHooks {
    alloc: native_alloc,
    free: native_free,
    before_move: native_before_move,
    moved: native_moved,
};

extern "C" fn native_alloc(ptr: *mut c_void, size: usize, _mapped: bool) {
    if !hooks::ENABLED.load(Ordering::Relaxed) {
        return;
    }
    entered(|t, me| on_alloc(t, NATIVE, ptr, size, me));
}

extern "C" fn native_free(ptr: *mut c_void) {
    if ptr.is_null() || !hooks::ENABLED.load(Ordering::Relaxed) || !worth_a_free(ptr) {
        return;
    }
    entered(|_, me| on_free_at(NATIVE, ptr, memsleuth_hook::event_ticks(me)));
}

extern "C" fn native_before_move(ptr: *mut c_void) -> u64 {
    if ptr.is_null() || !hooks::ENABLED.load(Ordering::Relaxed) || !worth_a_free(ptr) {
        return 0;
    }
    entered(|_, me| memsleuth_hook::event_ticks(me)).unwrap_or(0)
}

extern "C" fn native_moved(old: *mut c_void, t: u64, new: *mut c_void, size: usize, _mapped: bool) {
    if !hooks::ENABLED.load(Ordering::Relaxed) {
        return;
    }
    entered(|th, me| {
        on_free_at(NATIVE, old, t);
        if !new.is_null() {
            on_alloc(th, NATIVE, new, size, me);
        }
    });
}

type Install = extern "C" fn(*const NativeHooks) -> u32;

/// The preload loaded into a running process (`attach --native`, see [`super::got`]): not in
/// the global scope, so looked up through its handle.
static ATTACHED: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// The preload's install function as `handle` finds it (`RTLD_DEFAULT`: the global scope).
fn install_in(handle: *mut c_void) -> Option<Install> {
    // SAFETY: a NUL-terminated name; a handle from dlopen (never closed) or RTLD_DEFAULT.
    let f = unsafe { libc::dlsym(handle, INSTALL_SYMBOL.as_ptr().cast()) };
    // SAFETY: the preload exports this symbol with exactly this type.
    (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, Install>(f) })
}

/// The install function of a preload loaded at start (`LD_PRELOAD`), in the global scope.
fn global_install() -> Option<Install> {
    install_in(libc::RTLD_DEFAULT)
}

/// The preload's install function: loaded at start, or patched in by [`attach`] (and not put
/// back since).
fn preload_install() -> Option<Install> {
    global_install().or_else(|| {
        let attached = ATTACHED.load(Ordering::Acquire);
        (!attached.is_null())
            .then(|| install_in(attached))
            .flatten()
    })
}

/// Brings the native instrument into a process that started without the preload: loads the
/// preload at `library` and patches the loaded objects' allocator entries to it. Each attach
/// patches anew: the last one's detach put every entry back.
pub fn attach(library: &str) -> Result<(), String> {
    if global_install().is_some() {
        // started with it: every call reaches it already
        return Ok(());
    }
    let handle = super::got::patch(library).map_err(|e| e.0)?;
    ATTACHED.store(handle, Ordering::Release);
    Ok(())
}

/// Puts the allocator entries [`attach`] patched back as they were. The preload stays loaded,
/// with no table, forwarding only: a thread may be inside it.
pub fn detach() {
    if ATTACHED
        .swap(std::ptr::null_mut(), Ordering::AcqRel)
        .is_null()
    {
        return;
    }
    super::got::restore();
}

/// An address inside the preload library, so its frames can be told from the program's.
pub fn preload_address() -> Option<u64> {
    preload_install().map(|f| f as usize as u64)
}

/// Whether the preload library was loaded into this process at start (`LD_PRELOAD`).
pub fn preloaded() -> bool {
    global_install().is_some()
}

/// Why the native instrument cannot start here, as a reason to put in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The process did not start with the preload library.
    NotPreloaded,
    /// The preload library is of another memsleuth release.
    OtherVersion(u32),
}

/// Whether [`install`] would succeed, without installing anything.
pub fn check() -> Result<(), Unavailable> {
    let f = preload_install().ok_or(Unavailable::NotPreloaded)?;
    // installing "nothing" returns the version and leaves no table behind
    match f(std::ptr::null()) {
        ABI_VERSION => Ok(()),
        v => Err(Unavailable::OtherVersion(v)),
    }
}

/// Points the preload at the table: from now on, while recording is enabled, C allocator calls
/// are recorded.
pub fn install() -> Result<(), Unavailable> {
    let f = preload_install().ok_or(Unavailable::NotPreloaded)?;
    super::unwind::want(true);
    let version = f(&TABLE);
    if version != ABI_VERSION {
        f(std::ptr::null());
        super::unwind::want(false);
        return Err(Unavailable::OtherVersion(version));
    }
    Ok(())
}

/// Takes the table away from the preload (a no-op when it is not loaded).
pub fn uninstall() {
    if let Some(f) = preload_install() {
        f(std::ptr::null());
    }
    super::unwind::want(false);
}
