//! A single-producer/single-consumer ring of [`Event`]s in memory mapped straight from the OS.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::Event;

/// Events per ring: 64 Ki events, 2 MiB of address space, of which only the pages the thread
/// has reached are resident.
pub(crate) const CAPACITY: usize = 1 << 16;
const MASK: u64 = CAPACITY as u64 - 1;

pub(crate) const FREE: u8 = 0;
pub(crate) const CLAIMED: u8 = 1;
pub(crate) const ACTIVE: u8 = 2;
pub(crate) const ORPHANED: u8 = 3;

/// Keeps producer and consumer indices on separate cache lines.
#[repr(C, align(64))]
pub(crate) struct Padded<T>(pub(crate) T);

#[repr(C)]
pub(crate) struct Ring {
    /// Next slot the producer writes (only the owning thread stores it).
    pub(crate) head: Padded<AtomicU64>,
    /// Next slot the consumer reads (only the recorder stores it).
    pub(crate) tail: Padded<AtomicU64>,
    pub(crate) dropped: AtomicU64,
    pub(crate) state: AtomicU8,
    /// Kernel thread id of the owner.
    pub(crate) tid: AtomicU32,
    /// A word the owning thread's hooks may use for state that outlives one call (an unwinder
    /// cache): it passes with the ring to the next owner, so thread churn reuses it.
    pub(crate) aux: AtomicUsize,
    events: [Event; CAPACITY],
}

impl Ring {
    /// Maps a fresh ring (zeroed pages: FREE, empty). Returns null when the OS refuses.
    pub(crate) fn map() -> *mut Ring {
        // zero pages are a valid Ring: atomics at 0, state FREE, events all default
        crate::map_zeroed(std::mem::size_of::<Ring>()).cast::<Ring>()
    }

    /// Producer side: copies `ev` in, or returns false when the ring is full.
    #[inline]
    pub(crate) fn push(&self, ev: Event) -> bool {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        if head.wrapping_sub(tail) >= CAPACITY as u64 {
            return false;
        }
        let slot = std::ptr::addr_of!(self.events[(head & MASK) as usize]).cast_mut();
        // SAFETY: the slot is inside the mapping; the consumer does not read it until the
        // Release store of `head` below publishes it, and only this thread writes slots.
        unsafe { slot.write(ev) };
        self.head.0.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer side: hands the published events to `f` as at most two contiguous slices and
    /// frees their slots. Returns how many events were drained.
    pub(crate) fn drain(&self, f: &mut impl FnMut(u32, &[Event])) -> u64 {
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Acquire);
        let n = head.wrapping_sub(tail);
        if n == 0 {
            return 0;
        }
        let start = (tail & MASK) as usize;
        let first = (n as usize).min(CAPACITY - start);
        let tid = self.tid.load(Ordering::Relaxed);
        f(tid, &self.events[start..start + first]);
        if first < n as usize {
            f(tid, &self.events[..n as usize - first]);
        }
        self.tail.0.store(head, Ordering::Release);
        n
    }

    /// Prepares a claimed ring for a new owner. Only the thread that won the claim calls it.
    pub(crate) fn reset(&self, tid: u32) {
        self.head.0.store(0, Ordering::Relaxed);
        self.tail.0.store(0, Ordering::Relaxed);
        self.tid.store(tid, Ordering::Relaxed);
    }
}
