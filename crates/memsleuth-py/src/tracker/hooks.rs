//! The allocator hooks: `PyMem_SetAllocator` wrappers around the previous allocators of the
//! RAW, MEM and OBJ domains. Each wrapper forwards the call, then turns it into plain events on
//! this thread's ring (`memsleuth-hook`): no heap allocation, no lock, no Python call, no panic.
//!
//! Because the wrappers only forward, removing them (or leaving them installed but disabled) is
//! always safe: every block they handed out belongs to the allocator underneath.

use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use memsleuth_hook::{Event, Kind};
use pyo3::ffi;
use pyo3::ffi::{PyMemAllocatorDomain, PyMemAllocatorEx};

use super::c_lines;
use super::frames::Layout;

/// Deepest stack recorded; deeper stacks keep their innermost frames.
pub const MAX_DEPTH: usize = 256;

/// The wrapped allocator of one domain, handed to our wrappers as their `ctx`.
#[repr(C)]
pub struct Wrapped {
    prev: UnsafeCell<PyMemAllocatorEx>,
    domain: u8,
    /// Whether this wrapper is in the domain's chain (put there by `enable`, taken out by
    /// `uninstall`).
    installed: AtomicBool,
}

// SAFETY: `prev` is written only by `install`, with the GIL held and before the wrapper that
// reads it is published through PyMem_SetAllocator; afterwards it is only read.
unsafe impl Sync for Wrapped {}

const EMPTY: PyMemAllocatorEx = PyMemAllocatorEx {
    ctx: std::ptr::null_mut(),
    malloc: None,
    calloc: None,
    realloc: None,
    free: None,
};

static RAW: Wrapped = Wrapped {
    prev: UnsafeCell::new(EMPTY),
    domain: 0,
    installed: AtomicBool::new(false),
};
static MEM: Wrapped = Wrapped {
    prev: UnsafeCell::new(EMPTY),
    domain: 1,
    installed: AtomicBool::new(false),
};
static OBJ: Wrapped = Wrapped {
    prev: UnsafeCell::new(EMPTY),
    domain: 2,
    installed: AtomicBool::new(false),
};

/// Hooks record only while this is set; cleared at stop and in a forked child.
pub(super) static ENABLED: AtomicBool = AtomicBool::new(false);
static FORK_HANDLER: AtomicBool = AtomicBool::new(false);
static LAYOUT: AtomicPtr<Layout> = AtomicPtr::new(std::ptr::null_mut());
static DEPTH: AtomicUsize = AtomicUsize::new(128);
/// Bumped by every `enable`: a thread whose stack was sent in an earlier session must send it
/// whole again to the new recorder.
static SESSION: AtomicU64 = AtomicU64::new(0);
/// Mean bytes between samples; 0 records every allocation.
static SAMPLE_BYTES: AtomicU64 = AtomicU64::new(0);

struct ThreadStack {
    /// What the recorder knows of this thread's stack, outermost first.
    sent: [(u64, u32); MAX_DEPTH],
    /// `u32::MAX`: unknown (a new thread, or frame events were dropped): send all.
    sent_len: u32,
    session: u64,
    /// Scratch for the walk, innermost first.
    walk: [(u64, u32); MAX_DEPTH],
    /// What the recorder knows of this thread's native stack, outermost (nearest Python) first.
    native_sent: [u64; super::unwind::MAX_NATIVE],
    /// `u32::MAX`: unknown, send all.
    native_len: u32,
    /// Scratch for the native walk, innermost first.
    native_walk: [u64; super::unwind::MAX_NATIVE],
    /// Python allocations so far, for [`c_lines::LEARN_EVERY`].
    python_allocs: u32,
    /// Bytes left until the next sampled allocation (sampled mode).
    countdown: i64,
    rng: u64,
}

/// Everything a hook keeps per thread, in one thread-local so a hook call looks up thread-local
/// storage once (in a shared library each lookup is a call into the dynamic loader).
pub(super) struct PerThread {
    /// Set while this thread is inside a hook, and for good on memsleuth's own threads: calls
    /// made meanwhile (pymalloc serving an OBJ block from RAW, a census' Python calls) pass
    /// through unrecorded.
    inside: Cell<bool>,
    stack: UnsafeCell<ThreadStack>,
}

thread_local! {
    // const-initialised, no Drop: touching it registers no destructor and never allocates
    // through an allocator we wrap
    static TLS: PerThread = const {
        PerThread {
            inside: Cell::new(false),
            stack: UnsafeCell::new(ThreadStack {
                sent: [(0, 0); MAX_DEPTH],
                sent_len: u32::MAX,
                session: 0,
                walk: [(0, 0); MAX_DEPTH],
                native_sent: [0; super::unwind::MAX_NATIVE],
                native_len: u32::MAX,
                native_walk: [0; super::unwind::MAX_NATIVE],
                python_allocs: 0,
                countdown: i64::MIN,
                rng: 0,
            }),
        }
    };
}

/// Marks the calling thread as memsleuth's own: nothing it allocates is recorded.
pub fn ignore_this_thread() {
    let _ = TLS.try_with(|t| t.inside.set(true));
}

/// Runs `f` with this thread's allocations left out of the capture (memsleuth's own work on a
/// thread of the program), then puts the thread back as it was.
pub fn ignoring_this_thread<R>(f: impl FnOnce() -> R) -> R {
    let was = TLS.try_with(|t| t.inside.replace(true)).unwrap_or(true);
    let r = f();
    let _ = TLS.try_with(|t| t.inside.set(was));
    r
}

/// Runs `f` inside the hook on this thread (with a token unique to the thread), or returns
/// `None` without running it when the thread is already inside one.
#[inline]
pub(super) fn entered<R>(f: impl FnOnce(&PerThread, usize) -> R) -> Option<R> {
    TLS.try_with(|t| {
        if t.inside.replace(true) {
            return None;
        }
        let r = f(t, std::ptr::from_ref(t) as usize);
        t.inside.set(false);
        Some(r)
    })
    .ok()
    .flatten()
}

/// Turns recording on with these settings; installs the wrappers the first time. Needs the GIL.
///
/// # Safety
/// The caller holds the GIL, and `layout` was verified on this interpreter.
pub unsafe fn enable(layout: Layout, depth: usize, sample_bytes: u64) {
    // one interpreter, one layout: set once and kept for the life of the process, since a hook
    // on another thread may read it at any time
    if LAYOUT.load(Ordering::Acquire).is_null() {
        LAYOUT.store(Box::into_raw(Box::new(layout)), Ordering::Release);
    }
    DEPTH.store(depth.clamp(1, MAX_DEPTH), Ordering::Relaxed);
    SAMPLE_BYTES.store(sample_bytes, Ordering::Relaxed);
    super::sampled::clear();
    SESSION.fetch_add(1, Ordering::AcqRel);
    for (domain, w) in domains() {
        if !w.installed.swap(true, Ordering::AcqRel) {
            // SAFETY: GIL held (caller); `prev` is written before its wrapper is installed.
            unsafe { install(domain, w) };
        }
    }
    if !FORK_HANDLER.swap(true, Ordering::AcqRel) {
        register_fork_handler();
    }
    ENABLED.store(true, Ordering::Release);
}

/// Stops recording. The wrappers stay installed as plain pass-throughs: removing them could
/// unhook an allocator someone installed over ours since (tracemalloc, a debugger).
pub fn disable() {
    ENABLED.store(false, Ordering::Release);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Takes the wrappers out again, giving each domain back the allocator they wrapped, where they
/// are still the installed allocator (someone who installed theirs over ours since keeps it,
/// and ours stay as pass-throughs under it). For `memsleuth attach`: a process it leaves must
/// be as it was. Blocks handed out while the wrappers were in belong to the allocator under
/// them, so they are freed correctly after. Returns whether every domain was restored.
///
/// # Safety
/// The caller holds the GIL, and recording is off.
pub unsafe fn uninstall() -> bool {
    let mut all = true;
    for (domain, w) in domains() {
        if !w.installed.load(Ordering::Acquire) {
            continue;
        }
        let mut now = EMPTY;
        // SAFETY: GIL held (caller); `w.prev` was written at install and is read-only since.
        unsafe {
            ffi::PyMem_GetAllocator(domain, &mut now);
            if now.ctx == std::ptr::from_ref(w).cast_mut().cast() {
                let mut prev = *w.prev.get();
                ffi::PyMem_SetAllocator(domain, &mut prev);
                // installed again by the next `enable`, over whatever is there then
                w.installed.store(false, Ordering::Release);
            } else {
                all = false;
            }
        }
    }
    all
}

fn domains() -> [(PyMemAllocatorDomain, &'static Wrapped); 3] {
    [
        (PyMemAllocatorDomain::PYMEM_DOMAIN_RAW, &RAW),
        (PyMemAllocatorDomain::PYMEM_DOMAIN_MEM, &MEM),
        (PyMemAllocatorDomain::PYMEM_DOMAIN_OBJ, &OBJ),
    ]
}

unsafe fn install(domain: PyMemAllocatorDomain, w: &'static Wrapped) {
    // SAFETY: GIL held by the caller; `w.prev` is not read by anyone until the new allocator
    // is published below.
    unsafe {
        ffi::PyMem_GetAllocator(domain, w.prev.get());
        let mut ours = PyMemAllocatorEx {
            ctx: std::ptr::from_ref(w).cast_mut().cast(),
            malloc: Some(hook_malloc),
            calloc: Some(hook_calloc),
            realloc: Some(hook_realloc),
            free: Some(hook_free),
        };
        ffi::PyMem_SetAllocator(domain, &mut ours);
    }
}

extern "C" fn on_fork_child() {
    // the recorder thread does not exist in the child: recording there would fill rings nobody
    // drains (and, with the wait policy, block forever)
    ENABLED.store(false, Ordering::Release);
}

fn register_fork_handler() {
    // SAFETY: registering a handler that only stores an atomic.
    unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
}

#[inline]
fn wrapped(ctx: *mut c_void) -> (&'static PyMemAllocatorEx, u8) {
    // SAFETY: ctx is always one of our three statics (set in `install`).
    let w = unsafe { &*ctx.cast::<Wrapped>() };
    // SAFETY: written once before the wrapper was installed, read-only since.
    (unsafe { &*w.prev.get() }, w.domain)
}

extern "C" fn hook_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    let (prev, domain) = wrapped(ctx);
    let Some(malloc) = prev.malloc else {
        return std::ptr::null_mut();
    };
    if !ENABLED.load(Ordering::Relaxed) {
        return malloc(prev.ctx, size);
    }
    entered(|t, me| {
        let p = malloc(prev.ctx, size);
        if !p.is_null() {
            on_alloc(t, domain, p, size, me);
        }
        p
    })
    .unwrap_or_else(|| malloc(prev.ctx, size))
}

extern "C" fn hook_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    let (prev, domain) = wrapped(ctx);
    let Some(calloc) = prev.calloc else {
        return std::ptr::null_mut();
    };
    if !ENABLED.load(Ordering::Relaxed) {
        return calloc(prev.ctx, nelem, elsize);
    }
    entered(|t, me| {
        let p = calloc(prev.ctx, nelem, elsize);
        if !p.is_null() {
            on_alloc(t, domain, p, nelem.saturating_mul(elsize), me);
        }
        p
    })
    .unwrap_or_else(|| calloc(prev.ctx, nelem, elsize))
}

extern "C" fn hook_realloc(ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    let (prev, domain) = wrapped(ctx);
    let Some(realloc) = prev.realloc else {
        return std::ptr::null_mut();
    };
    if !ENABLED.load(Ordering::Relaxed) {
        return realloc(prev.ctx, ptr, size);
    }
    entered(|t, me| {
        // the old block is freed inside realloc: stamp its free before, so another thread
        // reusing the address is always seen after it
        let t_free = if ptr.is_null() || !worth_a_free(ptr) {
            0
        } else {
            memsleuth_hook::event_ticks(me)
        };
        let p = realloc(prev.ctx, ptr, size);
        if !p.is_null() {
            if !ptr.is_null() {
                on_free_at(domain, ptr, t_free);
            }
            on_alloc(t, domain, p, size, me);
        }
        p
    })
    .unwrap_or_else(|| realloc(prev.ctx, ptr, size))
}

extern "C" fn hook_free(ctx: *mut c_void, ptr: *mut c_void) {
    let (prev, domain) = wrapped(ctx);
    let Some(free) = prev.free else {
        return;
    };
    // in sampled mode most frees are of blocks never sampled: one bit test, no thread-local
    if ptr.is_null() || !ENABLED.load(Ordering::Relaxed) || !worth_a_free(ptr) {
        return free(prev.ctx, ptr);
    }
    let recorded = entered(|_, me| {
        // recorded before the block is released, for the same reason as in realloc
        on_free_at(domain, ptr, memsleuth_hook::event_ticks(me));
        free(prev.ctx, ptr);
    });
    if recorded.is_none() {
        free(prev.ctx, ptr);
    }
}

/// In sampled mode only frees of (maybe) sampled blocks are recorded; this cheap test spares
/// the others the clock read.
#[inline(always)]
pub(super) fn worth_a_free(ptr: *mut c_void) -> bool {
    SAMPLE_BYTES.load(Ordering::Relaxed) == 0 || super::sampled::maybe(ptr as u64)
}

#[inline]
pub(super) fn on_free_at(domain: u8, ptr: *mut c_void, t: u64) {
    if t == 0 {
        return;
    }
    if SAMPLE_BYTES.load(Ordering::Relaxed) != 0 && !super::sampled::remove(ptr as u64) {
        return;
    }
    memsleuth_hook::record(Event {
        time_ns: t,
        addr: ptr as u64,
        kind: Kind::Free,
        domain,
        ..Event::default()
    });
}

#[inline(always)]
pub(super) fn on_alloc(t: &PerThread, domain: u8, ptr: *mut c_void, size: usize, me: usize) {
    // SAFETY: this thread is inside the hook (`entered`), so nothing else on it touches its
    // stack state until we return
    let st = unsafe { &mut *t.stack.get() };
    let sample = SAMPLE_BYTES.load(Ordering::Relaxed);
    if sample != 0 {
        if !take_sample(st, size as u64, sample) {
            return;
        }
        if !super::sampled::insert(ptr as u64) {
            memsleuth_hook::record_dropped();
            return;
        }
    }
    // the native walk first: it may find the allocation is the dynamic linker's own
    let native = if domain == NATIVE {
        match super::unwind::capture(&mut st.native_walk) {
            Some(n) => n,
            None => {
                if sample != 0 {
                    super::sampled::remove(ptr as u64);
                }
                return;
            }
        }
    } else {
        0
    };
    let innermost = send_stack(st, domain);
    if domain == NATIVE {
        send_native_stack(st, native);
    } else if super::unwind::wanted() {
        let n = python_native_frames(st, innermost);
        send_native_stack(st, n);
    }
    let ok = memsleuth_hook::record(Event {
        time_ns: memsleuth_hook::event_ticks(me),
        addr: ptr as u64,
        size: size as u64,
        kind: Kind::Alloc,
        domain,
        ..Event::default()
    });
    if !ok && sample != 0 {
        super::sampled::remove(ptr as u64);
    }
}

/// Poisson sampling by bytes: every byte has the same chance 1/mean of being the sample point,
/// so a block of `size` bytes is sampled with probability 1 - exp(-size/mean) and readers
/// weight it by the inverse.
#[inline(always)]
fn take_sample(st: &mut ThreadStack, size: u64, mean: u64) -> bool {
    if st.countdown == i64::MIN {
        st.rng = seed();
        st.countdown = next_gap(&mut st.rng, mean);
    }
    st.countdown -= size.min(i64::MAX as u64) as i64;
    if st.countdown > 0 {
        return false;
    }
    st.countdown = next_gap(&mut st.rng, mean);
    true
}

fn seed() -> u64 {
    let t = memsleuth_hook::now_ns();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
    (t ^ tid.rotate_left(32)) | 1
}

/// An exponentially distributed gap with the given mean (xorshift64* uniform, inverse CDF).
fn next_gap(rng: &mut u64, mean: u64) -> i64 {
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    let bits = rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
    // uniform in (0, 1]
    let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
    let gap = -u.ln() * mean as f64;
    gap.min(i64::MAX as f64 / 2.0) as i64 + 1
}

/// For an allocation through Python's allocators with the native instrument on: the native
/// frames to record (walked into `native_walk`), when the innermost Python line, `innermost`,
/// is known to call C code outside the interpreter, or this allocation is one to learn from.
#[inline(always)]
fn python_native_frames(st: &mut ThreadStack, innermost: (u64, u32)) -> usize {
    let (code, instr) = innermost;
    st.python_allocs = st.python_allocs.wrapping_add(1);
    let known = c_lines::contains(code, instr);
    if !known && !st.python_allocs.is_multiple_of(c_lines::LEARN_EVERY) {
        return 0;
    }
    let n = super::unwind::capture_python(&mut st.native_walk);
    if n > 0 && !known {
        c_lines::insert(code, instr);
    }
    n
}

/// Brings the recorder's idea of this thread's stack up to date: walks the stack and sends a
/// frame event for each level that changed since the last event of this thread. Returns the
/// innermost frame, (code object, instruction), or zeros when there is none.
#[inline]
fn send_stack(st: &mut ThreadStack, domain: u8) -> (u64, u32) {
    let layout = LAYOUT.load(Ordering::Acquire);
    // SAFETY: set before ENABLED, never freed.
    let Some(layout) = (unsafe { layout.as_ref() }) else {
        return (0, 0);
    };
    let (n, gil) = match this_thread_state(domain) {
        Some((ts, gil)) => {
            let depth = DEPTH.load(Ordering::Relaxed);
            // SAFETY: `ts` is this thread's state; its frames only change when it runs Python
            // code, which it is not doing while inside this call (this_thread_state).
            (unsafe { layout.walk(ts, &mut st.walk[..depth]) }, gil)
        }
        None => (0, false),
    };
    let innermost = if n == 0 { (0, 0) } else { st.walk[0] };
    let session = SESSION.load(Ordering::Relaxed);
    if st.session != session {
        st.session = session;
        st.sent_len = u32::MAX;
        st.native_len = u32::MAX;
    }
    let known = st.sent_len as usize;
    let mut same = 0;
    if known != u32::MAX as usize {
        let limit = known.min(n);
        while same < limit && st.sent[same] == st.walk[n - 1 - same] {
            same += 1;
        }
        if same == n && n == known {
            return innermost;
        }
    }
    let mut ok = true;
    if same == n {
        // only shorter: re-send the new top (or the empty stack) to truncate
        let (code, instr) = if n == 0 { (0, 0) } else { st.sent[n - 1] };
        ok &= frame_event(n, code, instr);
    } else {
        for depth in same..n {
            let (code, instr) = st.walk[n - 1 - depth];
            // without the GIL a code object cannot be held (a reference count is not atomic):
            // one held before is named, another is sent as unknown, and remembered so, so that
            // it is sent again, named, once the thread holds the GIL
            let held = if gil {
                super::codes::hold(code)
            } else {
                super::codes::is_held(code)
            };
            let code = if held { code } else { 0 };
            st.sent[depth] = (
                if held || gil {
                    st.walk[n - 1 - depth].0
                } else {
                    0
                },
                instr,
            );
            ok &= frame_event(depth + 1, code, instr);
        }
    }
    st.sent_len = if ok { n as u32 } else { u32::MAX };
    innermost
}

/// The native counterpart of [`send_stack`], for an allocation of the C allocator: sends what
/// changed in the `n` native frames just walked (`native_walk`) since this thread's last.
#[inline]
fn send_native_stack(st: &mut ThreadStack, n: usize) {
    let known = st.native_len as usize;
    let mut same = 0;
    if known != u32::MAX as usize {
        let limit = known.min(n);
        while same < limit && st.native_sent[same] == st.native_walk[n - 1 - same] {
            same += 1;
        }
        if same == n && n == known {
            return;
        }
    }
    let mut ok = true;
    if same == n {
        let addr = if n == 0 { 0 } else { st.native_sent[n - 1] };
        ok &= native_frame_event(n, addr);
    } else {
        for depth in same..n {
            let addr = st.native_walk[n - 1 - depth];
            st.native_sent[depth] = addr;
            ok &= native_frame_event(depth + 1, addr);
        }
    }
    st.native_len = if ok { n as u32 } else { u32::MAX };
}

#[inline]
fn native_frame_event(new_len: usize, addr: u64) -> bool {
    memsleuth_hook::record(Event {
        addr,
        stack: new_len as u32,
        kind: Kind::NativeFrame,
        ..Event::default()
    })
}

#[inline]
fn frame_event(new_len: usize, code: u64, instr: u32) -> bool {
    memsleuth_hook::record(Event {
        addr: code,
        size: u64::from(instr),
        stack: new_len as u32,
        kind: Kind::Frame,
        ..Event::default()
    })
}

/// Domain code of the native instrument's events (the C allocator and mappings).
pub(super) const NATIVE: u8 = 3;

/// This thread's state, and whether the thread holds the GIL. MEM and OBJ calls always hold it.
/// RAW and native calls may come from a thread that released it (a ctypes call, I/O): its
/// frames cannot change until it takes the GIL back, which it cannot do inside this call, so they
/// can still be read, but its code objects may not be held (`send_stack`).
#[inline]
fn this_thread_state(domain: u8) -> Option<(*mut c_void, bool)> {
    // SAFETY: both calls read thread-local or atomic interpreter state and never allocate.
    unsafe {
        let current = ffi::compat::PyThreadState_GetUnchecked();
        if domain != 0 && domain != NATIVE {
            return (!current.is_null()).then_some((current.cast(), true));
        }
        // up to 3.11 `current` is the GIL holder's, from 3.12 this thread's while it holds the
        // GIL and null otherwise; this thread's own state is always found by its TSS key
        let mine = ffi::PyGILState_GetThisThreadState();
        if mine.is_null() {
            return None;
        }
        Some((mine.cast(), mine == current))
    }
}
