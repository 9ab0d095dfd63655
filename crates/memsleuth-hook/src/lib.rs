//! The hot path. Everything an allocator hook does between "an allocation happened" and
//! "return to the caller" lives here, under four rules:
//!
//! 1. **No heap allocation.** Buffers come from `mmap`, never from an allocator a hook may be
//!    wrapping. Thread-local state is `const`-initialised plain data, so touching it registers no
//!    destructor.
//! 2. **No lock.** Each thread owns a single-producer/single-consumer ring; the one consumer is
//!    the recorder thread. Producers never wait on each other.
//! 3. **No panic, no Python.** Nothing here can unwind into a C allocator caller.
//! 4. **Nothing silently lost.** A full ring counts the event as dropped (or, by policy, waits
//!    for the recorder); the counts reach the capture.
//!
//! Threads come and go: a ring whose thread has exited is drained one last time and then handed
//! to the next new thread, so thread churn never grows memory. See `docs/how-it-works.md`.

mod clock;
mod guard;
pub mod native;
mod registry;
mod ring;

pub use clock::{
    event_ticks, init_ticks, now_ns, stamp_next_event_exactly, tick_coarse, ticks, TickConverter,
};
pub use guard::{enter, Reentry};
pub use registry::{
    drain, drain_and_retire, dropped_total, record, record_dropped, set_policy, thread_aux,
    thread_rings, DrainStats, Policy,
};

/// Maps `len` bytes of zeroed memory straight from the OS, never through an allocator a hook
/// may be wrapping; pages become resident only when written. Null when the OS refuses. The
/// mapping is never unmapped by this crate.
pub fn map_zeroed(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint; checked for MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// What happened to a block of memory.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Alloc = 0,
    Free = 1,
    /// The thread's stack changed: `stack` is its new depth n, and, when n > 0, frame n-1
    /// (counted from the outermost) is now the code object at `addr` executing the instruction
    /// at byte offset `size`. Frames below n-1 are as sent before. Sending only what changed
    /// since the thread's last event keeps the common case to one extra event per allocation.
    Frame = 2,
    /// The thread's native stack for the next allocation changed: `stack` is its new depth n
    /// and, when n > 0, native frame n-1 (counted from the outermost recorded one, nearest the
    /// Python frames) now returns to `addr`. Sent like [`Kind::Frame`]: only what changed.
    NativeFrame = 3,
}

/// One allocator event: a plain, fixed-size value copied into a ring. 32 bytes, two per cache
/// line. A `realloc` is recorded as the free of the old block and the allocation of the new one.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Event {
    /// When it happened, in [`ticks`] (convert with a [`TickConverter`]); taken after an
    /// allocation returns and before a free
    /// is passed on, so a freed address reused by another thread is always seen freed first.
    pub time_ns: u64,
    pub addr: u64,
    /// Bytes requested (0 for a free).
    pub size: u64,
    /// Interned stack the event happened under (the recorder resolves it); 0 = unknown.
    pub stack: u32,
    pub kind: Kind,
    /// Which allocator domain (raw, mem, obj, native ...), defined by the caller.
    pub domain: u8,
    pub _reserved: u16,
}

const _: () = assert!(std::mem::size_of::<Event>() == 32);
