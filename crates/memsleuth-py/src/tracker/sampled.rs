//! In sampled mode, the addresses of sampled blocks still alive: a free is recorded only for
//! them, so the capture stays small and the hook cheap.

use std::sync::atomic::{AtomicU64, Ordering};

use super::table::Table;

static LIVE: Table = Table::new(1 << 20);

/// A one-bit-per-hash filter in front of the table: most frees are of blocks never sampled, and
/// a bit test in 16 KiB that stays in cache answers them without touching the 8 MiB table.
/// Bits are set on insert and cleared only between sessions, so a set bit means "maybe".
const FILTER_WORDS: usize = 2048;
static FILTER: [AtomicU64; FILTER_WORDS] = [const { AtomicU64::new(0) }; FILTER_WORDS];

#[inline]
fn bit(addr: u64) -> (usize, u64) {
    let h = (addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 47; // 17 bits
    ((h >> 6) as usize % FILTER_WORDS, 1u64 << (h & 63))
}

/// True when `addr` may be a live sampled block (false: certainly not).
#[inline]
pub fn maybe(addr: u64) -> bool {
    let (word, mask) = bit(addr);
    FILTER[word].load(Ordering::Relaxed) & mask != 0
}

pub fn ensure() -> bool {
    LIVE.ensure()
}

#[inline]
pub fn insert(addr: u64) -> bool {
    let (word, mask) = bit(addr);
    FILTER[word].fetch_or(mask, Ordering::Relaxed);
    LIVE.insert(addr).is_some()
}

#[inline]
pub fn remove(addr: u64) -> bool {
    maybe(addr) && LIVE.remove(addr)
}

/// Forgets every address (a new tracking session starts).
pub fn clear() {
    LIVE.drain(|_| {});
    for w in &FILTER {
        w.store(0, Ordering::Relaxed);
    }
}
