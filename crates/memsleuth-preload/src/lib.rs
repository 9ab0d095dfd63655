//! The native instrument's interposer, loaded with `LD_PRELOAD` before anything else so that its
//! `malloc`, `calloc`, `realloc`, `free`, the aligned allocators and `mmap`/`munmap`/`mremap`
//! are the ones every library in the process calls: libraries loaded at start, extension modules
//! imported later, and pointers taken with `dlsym` (ctypes' `CDLL(None).malloc`), since the
//! dynamic linker finds a preloaded symbol first.
//!
//! Each entry point forwards to the next definition (the C library's, found with
//! `dlsym(RTLD_NEXT)`), then, while the tracker has installed its [`NativeHooks`] table, tells it
//! what happened. Until then (and in programs that never start a tracker) it costs one atomic
//! load. The rules of the hot path hold here: nothing allocates, locks, calls Python or panics;
//! a thread-local flag keeps an allocation made while reporting one from being reported.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use memsleuth_hook::native::{NativeHooks, ABI_VERSION};

static HOOKS: AtomicPtr<NativeHooks> = AtomicPtr::new(std::ptr::null_mut());

/// Installs the tracker's table (null removes it); returns the ABI version so the tracker can
/// refuse a preload built from another release. The table must live as long as the process.
#[no_mangle]
pub extern "C" fn memsleuth_preload_install(hooks: *const NativeHooks) -> u32 {
    if !hooks.is_null() {
        find_loader();
    }
    HOOKS.store(hooks.cast_mut(), Ordering::Release);
    ABI_VERSION
}

/// The dynamic linker's address range, 0..0 until found.
static LOADER_LO: AtomicUsize = AtomicUsize::new(0);
static LOADER_HI: AtomicUsize = AtomicUsize::new(0);

/// Finds the dynamic linker among the loaded objects. Its own allocations are never reported:
/// the one that matters is a thread's block of thread-local storage for a library loaded with
/// `dlopen` (the tracker's extension among them), made by `__tls_get_addr` on the thread's
/// first use of it. Reporting it would make the tracker touch that very storage while the
/// linker is still making it, and the linker would make it twice and lose one.
fn find_loader() {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        _data: *mut c_void,
    ) -> c_int {
        // SAFETY: the linker hands valid structures for the call's length.
        unsafe {
            let info = &*info;
            if info.dlpi_name.is_null() {
                return 0;
            }
            let name = std::ffi::CStr::from_ptr(info.dlpi_name).to_bytes();
            let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
            if !memsleuth_hook::native::is_dynamic_linker(base) {
                return 0;
            }
            let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
            let (mut lo, mut hi) = (u64::MAX, 0u64);
            for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD) {
                lo = lo.min(h.p_vaddr);
                hi = hi.max(h.p_vaddr + h.p_memsz);
            }
            if lo < hi {
                LOADER_LO.store((info.dlpi_addr + lo) as usize, Ordering::Relaxed);
                LOADER_HI.store((info.dlpi_addr + hi) as usize, Ordering::Relaxed);
            }
            1
        }
    }
    if LOADER_HI.load(Ordering::Relaxed) == 0 {
        // SAFETY: the callback only reads what it is handed.
        unsafe { libc::dl_iterate_phdr(Some(visit), std::ptr::null_mut()) };
    }
}

/// Whether a call returning to `caller` was made by the dynamic linker.
#[inline(always)]
fn from_loader(caller: usize) -> bool {
    caller >= LOADER_LO.load(Ordering::Relaxed) && caller < LOADER_HI.load(Ordering::Relaxed)
}

thread_local! {
    // const-initialised plain data: in a library loaded at start it lives in the static TLS
    // block, so reaching it never allocates
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the installed table, unless none is installed or this thread is already
/// reporting (an allocation made by the tracker while it records one): then `None`.
#[inline(always)]
fn report<R>(f: impl FnOnce(&NativeHooks) -> R) -> Option<R> {
    let hooks = HOOKS.load(Ordering::Acquire);
    if hooks.is_null() {
        return None;
    }
    REPORTING
        .try_with(|r| {
            if r.replace(true) {
                return None;
            }
            // SAFETY: an installed table is a static of the tracker, never freed.
            let out = f(unsafe { &*hooks });
            r.set(false);
            Some(out)
        })
        .ok()
        .flatten()
}

// ---- the real functions -------------------------------------------------------------------

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const RESOLVED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

/// Addresses of the next definitions, 0 until resolved (or when the C library has none).
struct Real {
    malloc: AtomicUsize,
    calloc: AtomicUsize,
    realloc: AtomicUsize,
    free: AtomicUsize,
    posix_memalign: AtomicUsize,
    aligned_alloc: AtomicUsize,
    memalign: AtomicUsize,
    valloc: AtomicUsize,
    pvalloc: AtomicUsize,
    reallocarray: AtomicUsize,
    mmap: AtomicUsize,
    mmap64: AtomicUsize,
    munmap: AtomicUsize,
    mremap: AtomicUsize,
}

static REAL: Real = Real {
    malloc: AtomicUsize::new(0),
    calloc: AtomicUsize::new(0),
    realloc: AtomicUsize::new(0),
    free: AtomicUsize::new(0),
    posix_memalign: AtomicUsize::new(0),
    aligned_alloc: AtomicUsize::new(0),
    memalign: AtomicUsize::new(0),
    valloc: AtomicUsize::new(0),
    pvalloc: AtomicUsize::new(0),
    reallocarray: AtomicUsize::new(0),
    mmap: AtomicUsize::new(0),
    mmap64: AtomicUsize::new(0),
    munmap: AtomicUsize::new(0),
    mremap: AtomicUsize::new(0),
};

fn next(name: &[u8]) -> usize {
    // SAFETY: a NUL-terminated name; RTLD_NEXT searches the objects loaded after this one.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast::<c_char>()) as usize }
}

/// Finds the real functions once. `dlsym` may itself allocate; those calls (and any made by
/// another thread meanwhile) are served from [`bootstrap`] memory.
#[cold]
fn resolve() -> bool {
    match STATE.compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(state) => return state == RESOLVED,
    }
    let r = &REAL;
    r.malloc.store(next(b"malloc\0"), Ordering::Relaxed);
    r.calloc.store(next(b"calloc\0"), Ordering::Relaxed);
    r.realloc.store(next(b"realloc\0"), Ordering::Relaxed);
    r.free.store(next(b"free\0"), Ordering::Relaxed);
    r.posix_memalign
        .store(next(b"posix_memalign\0"), Ordering::Relaxed);
    r.aligned_alloc
        .store(next(b"aligned_alloc\0"), Ordering::Relaxed);
    r.memalign.store(next(b"memalign\0"), Ordering::Relaxed);
    r.valloc.store(next(b"valloc\0"), Ordering::Relaxed);
    r.pvalloc.store(next(b"pvalloc\0"), Ordering::Relaxed);
    r.reallocarray
        .store(next(b"reallocarray\0"), Ordering::Relaxed);
    r.mmap.store(next(b"mmap\0"), Ordering::Relaxed);
    r.mmap64.store(next(b"mmap64\0"), Ordering::Relaxed);
    r.munmap.store(next(b"munmap\0"), Ordering::Relaxed);
    r.mremap.store(next(b"mremap\0"), Ordering::Relaxed);
    STATE.store(RESOLVED, Ordering::Release);
    true
}

/// The real function in `slot`, resolving on first use; `None` while resolving or when the C
/// library lacks it.
#[inline(always)]
fn real(slot: &AtomicUsize) -> Option<usize> {
    if STATE.load(Ordering::Acquire) != RESOLVED && !resolve() {
        return None;
    }
    match slot.load(Ordering::Relaxed) {
        0 => None,
        f => Some(f),
    }
}

// ---- memory for the dynamic linker while the real functions are being found ----------------

const BOOTSTRAP_LEN: usize = 256 << 10;

#[repr(C, align(64))]
struct Bootstrap([u8; BOOTSTRAP_LEN]);

// in .bss: no page of it becomes resident unless `dlsym` asks for memory
static mut BOOTSTRAP: Bootstrap = Bootstrap([0; BOOTSTRAP_LEN]);
static BOOTSTRAP_USED: AtomicUsize = AtomicUsize::new(0);

fn bootstrap_base() -> usize {
    std::ptr::addr_of!(BOOTSTRAP) as usize
}

/// Zeroed memory from a static bump arena, never given back (it is only used before the real
/// allocator is known). Null when exhausted.
fn bootstrap(size: usize, align: usize) -> *mut c_void {
    let align = align.max(16);
    let mut used = BOOTSTRAP_USED.load(Ordering::Relaxed);
    loop {
        let start = (bootstrap_base() + used).next_multiple_of(align) - bootstrap_base();
        let Some(end) = start.checked_add(size.max(1)) else {
            return std::ptr::null_mut();
        };
        if end > BOOTSTRAP_LEN {
            return std::ptr::null_mut();
        }
        match BOOTSTRAP_USED.compare_exchange_weak(used, end, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return (bootstrap_base() + start) as *mut c_void,
            Err(now) => used = now,
        }
    }
}

#[inline(always)]
fn from_bootstrap(ptr: *mut c_void) -> bool {
    let p = ptr as usize;
    p >= bootstrap_base() && p < bootstrap_base() + BOOTSTRAP_LEN
}

// ---- the C allocator ------------------------------------------------------------------------

type Malloc = unsafe extern "C" fn(usize) -> *mut c_void;
type Calloc = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type Realloc = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type PosixMemalign = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int;
type Aligned = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type Reallocarray = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
type Mmap =
    unsafe extern "C" fn(*mut c_void, usize, c_int, c_int, c_int, libc::off_t) -> *mut c_void;
type Munmap = unsafe extern "C" fn(*mut c_void, usize) -> c_int;
type Mremap = unsafe extern "C" fn(*mut c_void, usize, usize, c_int, *mut c_void) -> *mut c_void;

/// Reports a new block when the call succeeded.
#[inline(always)]
fn allocated(p: *mut c_void, size: usize) -> *mut c_void {
    if !p.is_null() {
        report(|h| (h.alloc)(p, size, false));
    }
    p
}

macro_rules! call {
    ($slot:ident as $ty:ty) => {
        real(&REAL.$slot).map(|f| {
            // SAFETY: the address dlsym gave for this very symbol, whose C type is $ty.
            unsafe { std::mem::transmute::<usize, $ty>(f) }
        })
    };
}

/// `malloc`, with the caller's return address as a second argument: the linker's own
/// allocations are told apart by it (see [`find_loader`]).
///
/// # Safety
/// The C contract of `malloc`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // the return address is at [rsp] on entry; a jump keeps the stack as a call left it
    std::arch::naked_asm!("mov rsi, [rsp]", "jmp {body}", body = sym malloc_from)
}

/// # Safety
/// The C contract of `malloc`.
#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: the same contract; no caller to tell apart here
    unsafe { malloc_from(size, 0) }
}

/// # Safety
/// The C contract of `malloc`; `caller` is where the call returns to.
unsafe extern "C" fn malloc_from(size: usize, caller: usize) -> *mut c_void {
    match call!(malloc as Malloc) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) if from_loader(caller) => unsafe { f(size) },
        // SAFETY: forwarding the caller's arguments.
        Some(f) => allocated(unsafe { f(size) }, size),
        None => bootstrap(size, 16),
    }
}

/// # Safety
/// The C contract of `calloc`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    match call!(calloc as Calloc) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => allocated(unsafe { f(n, size) }, n.saturating_mul(size)),
        None => match n.checked_mul(size) {
            Some(total) => bootstrap(total, 16),
            None => std::ptr::null_mut(),
        },
    }
}

/// `realloc` and `reallocarray`: the old block's free is stamped before the call, so another
/// thread that gets its address next is seen after it.
#[inline(always)]
fn moved_block(ptr: *mut c_void, size: usize, call: impl Fn() -> *mut c_void) -> *mut c_void {
    report(|h| {
        let t = if ptr.is_null() {
            0
        } else {
            (h.before_move)(ptr)
        };
        let p = call();
        if !p.is_null() {
            if ptr.is_null() {
                (h.alloc)(p, size, false);
            } else {
                (h.moved)(ptr, t, p, size, false);
            }
        } else if size == 0 && !ptr.is_null() {
            // glibc frees the block and returns null
            (h.moved)(ptr, t, std::ptr::null_mut(), 0, false);
        }
        p
    })
    .unwrap_or_else(call)
}

/// `realloc`, with the caller's return address as a third argument (see [`malloc`]).
///
/// # Safety
/// The C contract of `realloc`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    std::arch::naked_asm!("mov rdx, [rsp]", "jmp {body}", body = sym realloc_from)
}

/// # Safety
/// The C contract of `realloc`.
#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the same contract; no caller to tell apart here
    unsafe { realloc_from(ptr, size, 0) }
}

/// # Safety
/// The C contract of `realloc`; `caller` is where the call returns to.
unsafe extern "C" fn realloc_from(ptr: *mut c_void, size: usize, caller: usize) -> *mut c_void {
    let Some(f) = call!(realloc as Realloc) else {
        return bootstrap(size, 16);
    };
    if from_loader(caller) && !from_bootstrap(ptr) {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { f(ptr, size) };
    }
    if from_bootstrap(ptr) {
        // SAFETY: the C contract of malloc.
        let p = unsafe { malloc(size) };
        if !p.is_null() {
            let room = bootstrap_base() + BOOTSTRAP_LEN - ptr as usize;
            // SAFETY: both ranges are valid for the bytes copied; they cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), p.cast(), size.min(room)) };
        }
        return p;
    }
    // SAFETY: forwarding the caller's arguments.
    moved_block(ptr, size, || unsafe { f(ptr, size) })
}

/// # Safety
/// The C contract of `reallocarray`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match (call!(reallocarray as Reallocarray), n.checked_mul(size)) {
        // SAFETY: forwarding the caller's arguments.
        (Some(f), Some(total)) if !from_bootstrap(ptr) => {
            moved_block(ptr, total, || unsafe { f(ptr, n, size) })
        }
        // SAFETY: the C contract of realloc, with the product checked.
        (_, Some(total)) => unsafe { realloc(ptr, total) },
        (_, None) => {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = libc::ENOMEM };
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// The C contract of `free`.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() || from_bootstrap(ptr) {
        return;
    }
    if let Some(f) = call!(free as Free) {
        report(|h| (h.free)(ptr));
        // SAFETY: forwarding the caller's argument.
        unsafe { f(ptr) }
    }
}

/// # Safety
/// The C contract of `posix_memalign`.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    let Some(f) = call!(posix_memalign as PosixMemalign) else {
        let p = bootstrap(size, align);
        if p.is_null() {
            return libc::ENOMEM;
        }
        // SAFETY: the caller passes a valid out pointer.
        unsafe { *out = p };
        return 0;
    };
    // SAFETY: forwarding the caller's arguments.
    let r = unsafe { f(out, align, size) };
    if r == 0 {
        // SAFETY: set by the successful call.
        allocated(unsafe { *out }, size);
    }
    r
}

macro_rules! aligned {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        /// # Safety
        /// The C contract of the function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name(align: usize, size: usize) -> *mut c_void {
            match call!($name as Aligned) {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => allocated(unsafe { f(align, size) }, size),
                None => bootstrap(size, align),
            }
        }
    };
}

aligned!(aligned_alloc);
aligned!(memalign);

macro_rules! paged {
    ($name:ident) => {
        /// # Safety
        /// The C contract of the function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name(size: usize) -> *mut c_void {
            match call!($name as Malloc) {
                // SAFETY: forwarding the caller's argument.
                Some(f) => allocated(unsafe { f(size) }, size),
                None => bootstrap(size, 4096),
            }
        }
    };
}

paged!(valloc);
paged!(pvalloc);

// ---- mappings ---------------------------------------------------------------------------------

fn mapped(p: *mut c_void, len: usize) -> *mut c_void {
    if p != libc::MAP_FAILED {
        report(|h| (h.alloc)(p, len, true));
    }
    p
}

/// # Safety
/// The C contract of `mmap`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    let p = match call!(mmap as Mmap) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(addr, len, prot, flags, fd, off) },
        // SAFETY: the system call takes the same arguments.
        None => unsafe {
            libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) as *mut c_void
        },
    };
    mapped(p, len)
}

/// # Safety
/// The C contract of `mmap64` (the same function as `mmap` on 64-bit Linux, under its own name).
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    let p = match call!(mmap64 as Mmap) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(addr, len, prot, flags, fd, off) },
        // SAFETY: the C contract of mmap, which takes the same arguments here.
        None => return unsafe { mmap(addr, len, prot, flags, fd, off) },
    };
    mapped(p, len)
}

/// # Safety
/// The C contract of `munmap`. A mapping is reported freed when it is unmapped from its start;
/// unmapping part of one from the middle is not followed.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    report(|h| (h.free)(addr));
    match call!(munmap as Munmap) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(addr, len) },
        // SAFETY: the system call takes the same arguments.
        None => unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int },
    }
}

/// # Safety
/// The C contract of `mremap`. It is variadic in C; on the Linux calling conventions memsleuth
/// supports the optional fifth argument arrives where a fixed one would, and it is only read
/// (by the C library) when `MREMAP_FIXED` is set.
#[no_mangle]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: usize,
    len: usize,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    let call = || match call!(mremap as Mremap) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(old, old_len, len, flags, new_addr) },
        // SAFETY: the system call takes the same arguments.
        None => unsafe {
            libc::syscall(libc::SYS_mremap, old, old_len, len, flags, new_addr) as *mut c_void
        },
    };
    report(|h| {
        let t = (h.before_move)(old);
        let p = call();
        if p != libc::MAP_FAILED {
            (h.moved)(old, t, p, len, true);
        }
        p
    })
    .unwrap_or_else(call)
}
