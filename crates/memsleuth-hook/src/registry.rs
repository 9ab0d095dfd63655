//! Which ring belongs to which thread, and the consumer's view of all of them.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Once;

use crate::ring::{Ring, ACTIVE, CLAIMED, FREE, ORPHANED};
use crate::Event;

/// Most threads that can record at the same time; beyond this, events are counted as dropped.
const MAX_RINGS: usize = 1024;

static RINGS: [AtomicPtr<Ring>; MAX_RINGS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_RINGS];
/// Events lost because a thread could not get a ring at all.
static UNRINGED: AtomicU64 = AtomicU64::new(0);
static POLICY: AtomicU8 = AtomicU8::new(Policy::Drop as u8);

/// What a producer does when its ring is full.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Count the event as dropped and return at once (the default: never slow the target).
    Drop = 0,
    /// Yield until the recorder makes room (exact captures, at the target's expense).
    Wait = 1,
}

pub fn set_policy(p: Policy) {
    POLICY.store(p as u8, Ordering::Relaxed);
}

thread_local! {
    // plain pointer, const-initialised: no destructor registered through the allocator
    static MINE: Cell<*mut Ring> = const { Cell::new(std::ptr::null_mut()) };
}

/// Marks a thread whose ring was already handed back at its exit: anything it records after
/// that (from other exit handlers) is counted as dropped, never pushed into a ring that may
/// have a new owner.
const RETIRED: *mut Ring = std::ptr::dangling_mut::<Ring>();

static KEY_ONCE: Once = Once::new();
static mut EXIT_KEY: libc::pthread_key_t = 0;

/// Runs when a thread that owns a ring exits: the recorder drains it one last time and frees
/// it for reuse.
extern "C" fn on_thread_exit(ring: *mut libc::c_void) {
    if !ring.is_null() {
        // SAFETY: the value stored under EXIT_KEY is always a live, never-unmapped Ring.
        let ring = unsafe { &*ring.cast::<Ring>() };
        let _ = MINE.try_with(|m| m.set(RETIRED));
        ring.state.store(ORPHANED, Ordering::Release);
    }
}

fn exit_key() -> libc::pthread_key_t {
    KEY_ONCE.call_once(|| {
        // SAFETY: creating a key with a valid destructor; written once, before any read.
        unsafe {
            let mut key: libc::pthread_key_t = 0;
            if libc::pthread_key_create(&mut key, Some(on_thread_exit)) == 0 {
                EXIT_KEY = key;
            }
        }
    });
    // SAFETY: initialised by call_once above, never written again.
    unsafe { EXIT_KEY }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Finds this thread a ring: a free one first (thread churn reuses memory), else a new mapping.
fn claim() -> *mut Ring {
    let tid = gettid();
    for slot in &RINGS {
        let ring = slot.load(Ordering::Acquire);
        if ring.is_null() {
            break;
        }
        // SAFETY: rings in the registry are never unmapped.
        let r = unsafe { &*ring };
        if r.state
            .compare_exchange(FREE, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            r.reset(tid);
            r.state.store(ACTIVE, Ordering::Release);
            return ring;
        }
    }
    let ring = Ring::map();
    if ring.is_null() {
        return ring;
    }
    // SAFETY: freshly mapped, owned by this thread until published.
    let r = unsafe { &*ring };
    r.reset(tid);
    r.state.store(ACTIVE, Ordering::Release);
    for slot in &RINGS {
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                ring,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return ring;
        }
    }
    // registry full: give the mapping back, this thread records nothing
    // SAFETY: the ring was never published, so nobody else can see it.
    unsafe { libc::munmap(ring.cast(), std::mem::size_of::<Ring>()) };
    std::ptr::null_mut()
}

/// This thread's ring, claiming one on first use. Null when none can be had.
#[inline]
fn my_ring() -> *mut Ring {
    let Ok(ring) = MINE.try_with(Cell::get) else {
        return std::ptr::null_mut(); // thread is being torn down
    };
    if ring == RETIRED {
        return std::ptr::null_mut();
    }
    if !ring.is_null() {
        return ring;
    }
    let ring = claim();
    if !ring.is_null() {
        let _ = MINE.try_with(|m| m.set(ring));
        // SAFETY: a valid key; glibc stores the first keys' values in the thread descriptor.
        unsafe { libc::pthread_setspecific(exit_key(), ring.cast()) };
    }
    ring
}

/// This thread's word of hook state (see `Ring::aux`), claiming a ring on first use; null when
/// the thread has none. What a previous owner of the ring left there is handed on as it is.
#[inline]
pub fn thread_aux() -> *const std::sync::atomic::AtomicUsize {
    let ring = my_ring();
    if ring.is_null() {
        return std::ptr::null();
    }
    // SAFETY: rings are never unmapped.
    unsafe { std::ptr::addr_of!((*ring).aux) }
}

/// Records an event on this thread's ring. Returns false when it was dropped (and counted).
/// Call it inside [`crate::enter`].
#[inline]
pub fn record(ev: Event) -> bool {
    let ring = my_ring();
    if ring.is_null() {
        UNRINGED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    // SAFETY: rings are never unmapped; this thread owns the producer side.
    let r = unsafe { &*ring };
    if r.push(ev) {
        return true;
    }
    if POLICY.load(Ordering::Relaxed) == Policy::Wait as u8 {
        for _ in 0..100_000 {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
            if r.push(ev) {
                return true;
            }
        }
    }
    r.dropped.fetch_add(1, Ordering::Relaxed);
    false
}

/// Counts an event the caller could not record for its own reasons (a full table).
pub fn record_dropped() {
    UNRINGED.fetch_add(1, Ordering::Relaxed);
}

/// What one [`drain`] pass saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    pub events: u64,
    /// Rings of exited threads drained for the last time and freed for reuse.
    pub retired: u32,
}

/// Consumer side (the recorder thread only): hands every published event to `f` as
/// `(thread id, events)` slices, oldest first within each thread.
pub fn drain(f: impl FnMut(u32, &[Event])) -> DrainStats {
    drain_and_retire(f, |_| {})
}

/// [`drain`], also telling `exited` the thread id of each ring whose thread has exited, after
/// its last events were handed to `f`: what the consumer keeps for that thread can go (a later
/// thread may get the same id).
pub fn drain_and_retire(
    mut f: impl FnMut(u32, &[Event]),
    mut exited: impl FnMut(u32),
) -> DrainStats {
    let mut stats = DrainStats::default();
    for slot in &RINGS {
        let ring = slot.load(Ordering::Acquire);
        if ring.is_null() {
            break;
        }
        // SAFETY: rings in the registry are never unmapped.
        let r = unsafe { &*ring };
        match r.state.load(Ordering::Acquire) {
            ACTIVE => stats.events += r.drain(&mut f),
            ORPHANED => {
                stats.events += r.drain(&mut f);
                exited(r.tid.load(Ordering::Relaxed));
                r.state.store(FREE, Ordering::Release);
                stats.retired += 1;
            }
            _ => {}
        }
    }
    stats
}

/// Events dropped so far, over all rings and threads without one.
pub fn dropped_total() -> u64 {
    let mut total = UNRINGED.load(Ordering::Relaxed);
    for slot in &RINGS {
        let ring = slot.load(Ordering::Acquire);
        if ring.is_null() {
            break;
        }
        // SAFETY: rings in the registry are never unmapped.
        total += unsafe { &*ring }.dropped.load(Ordering::Relaxed);
    }
    total
}

/// Rings mapped so far (each serves one live thread at a time).
pub fn thread_rings() -> usize {
    RINGS
        .iter()
        .take_while(|s| !s.load(Ordering::Acquire).is_null())
        .count()
}
