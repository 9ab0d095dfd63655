//! A fixed-size, lock-free set of non-zero u64 keys in memory mapped from the OS: usable from an
//! allocator hook (no allocation, no lock). Open addressing with linear probing; a removed key
//! leaves a tombstone so probes for other keys still find them.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

const TOMBSTONE: u64 = u64::MAX;
/// Probes before giving up: bounds the worst case on the hot path.
const MAX_PROBE: usize = 64;

#[derive(Debug)]
pub struct Table {
    slots: AtomicPtr<AtomicU64>,
    /// Power of two.
    capacity: usize,
}

impl Table {
    pub const fn new(capacity: usize) -> Self {
        Table {
            slots: AtomicPtr::new(std::ptr::null_mut()),
            capacity,
        }
    }

    /// Maps the slots on first use; false when the OS refuses. Call with the GIL held (one
    /// caller at a time) before any hook can use the table.
    pub fn ensure(&self) -> bool {
        if !self.slots.load(Ordering::Acquire).is_null() {
            return true;
        }
        // zeroed pages are empty slots
        let p = memsleuth_hook::map_zeroed(self.capacity * std::mem::size_of::<AtomicU64>());
        if p.is_null() {
            return false;
        }
        self.slots.store(p.cast(), Ordering::Release);
        true
    }

    #[inline]
    fn slots(&self) -> Option<&[AtomicU64]> {
        let p = self.slots.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: mapped with `capacity` slots in `ensure`, never unmapped.
        Some(unsafe { std::slice::from_raw_parts(p, self.capacity) })
    }

    #[inline]
    fn start(&self, key: u64) -> usize {
        // Fibonacci hashing: addresses are aligned, so mix the high bits down
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize & (self.capacity - 1)
    }

    /// Adds `key`. `Some(true)` when it was added now, `Some(false)` when already present,
    /// `None` when the table is full around it (or not mapped).
    #[inline]
    pub fn insert(&self, key: u64) -> Option<bool> {
        let slots = self.slots()?;
        let mut i = self.start(key);
        for _ in 0..MAX_PROBE {
            let slot = &slots[i];
            let cur = slot.load(Ordering::Acquire);
            if cur == key {
                return Some(false);
            }
            if cur == 0 || cur == TOMBSTONE {
                match slot.compare_exchange(cur, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(true),
                    Err(now) if now == key => return Some(false),
                    Err(_) => {}
                }
            }
            i = (i + 1) & (self.capacity - 1);
        }
        None
    }

    /// True when `key` is present.
    pub fn contains(&self, key: u64) -> bool {
        let Some(slots) = self.slots() else {
            return false;
        };
        let mut i = self.start(key);
        for _ in 0..MAX_PROBE {
            match slots[i].load(Ordering::Acquire) {
                k if k == key => return true,
                0 => return false,
                _ => i = (i + 1) & (self.capacity - 1),
            }
        }
        false
    }

    /// Removes `key`; true when it was present.
    #[inline]
    pub fn remove(&self, key: u64) -> bool {
        let Some(slots) = self.slots() else {
            return false;
        };
        let mut i = self.start(key);
        for _ in 0..MAX_PROBE {
            let slot = &slots[i];
            let cur = slot.load(Ordering::Acquire);
            if cur == key {
                return slot
                    .compare_exchange(key, TOMBSTONE, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok();
            }
            if cur == 0 {
                return false;
            }
            i = (i + 1) & (self.capacity - 1);
        }
        false
    }

    /// Empties the table, handing every key to `f`. Only when no hook is using it.
    pub fn drain(&self, mut f: impl FnMut(u64)) {
        let Some(slots) = self.slots() else {
            return;
        };
        for slot in slots {
            // read before writing: pages never used stay unbacked (a write to every slot would
            // make the whole table resident)
            if slot.load(Ordering::Acquire) == 0 {
                continue;
            }
            let key = slot.swap(0, Ordering::AcqRel);
            if key != 0 && key != TOMBSTONE {
                f(key);
            }
        }
    }
}
