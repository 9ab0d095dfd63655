//! In sampled mode, the addresses of sampled blocks still alive: a free is recorded only for
//! them, so the capture stays small and the hook cheap.

use std::sync::atomic::{AtomicU8, Ordering};

use super::table::Table;

static LIVE: Table = Table::new(1 << 20);

pub fn ensure() -> bool {
    LIVE.ensure()
}

/// A counting filter in front of the table: most frees are of blocks never sampled, and one
/// byte in 64 KiB that stays in cache answers them without touching the 8 MiB table. A bucket
/// counts the live sampled blocks hashed to it, so it empties again when they are freed (a
/// plain bit would stay set, and pymalloc reuses the same addresses all the time); a bucket
/// that reached 255 stays "maybe" for the session.
const BUCKETS: usize = 1 << 16;
const STUCK: u8 = u8::MAX;
static FILTER: [AtomicU8; BUCKETS] = [const { AtomicU8::new(0) }; BUCKETS];

#[inline(always)]
fn bucket(addr: u64) -> &'static AtomicU8 {
    let h = (addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48;
    &FILTER[h as usize % BUCKETS]
}

/// True when `addr` may be a live sampled block (false: certainly not).
#[inline(always)]
pub fn maybe(addr: u64) -> bool {
    bucket(addr).load(Ordering::Relaxed) != 0
}

#[inline]
pub fn insert(addr: u64) -> bool {
    let added = LIVE.insert(addr);
    if added == Some(true) {
        let b = bucket(addr);
        let _ = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            (c != STUCK).then_some(c + 1)
        });
    }
    added.is_some()
}

#[inline]
pub fn remove(addr: u64) -> bool {
    if !maybe(addr) || !LIVE.remove(addr) {
        return false;
    }
    let b = bucket(addr);
    let _ = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
        (c != STUCK && c != 0).then(|| c - 1)
    });
    true
}

/// Forgets every address (a new tracking session starts).
pub fn clear() {
    LIVE.drain(|_| {});
    for b in &FILTER {
        b.store(0, Ordering::Relaxed);
    }
}
