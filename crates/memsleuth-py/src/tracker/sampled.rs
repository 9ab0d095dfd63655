//! In sampled mode, the addresses of sampled blocks still alive: a free is recorded only for
//! them, so the capture stays small and the hook cheap.

use super::table::Table;

static LIVE: Table = Table::new(1 << 20);

pub fn ensure() -> bool {
    LIVE.ensure()
}

#[inline]
pub fn insert(addr: u64) -> bool {
    LIVE.insert(addr).is_some()
}

#[inline]
pub fn remove(addr: u64) -> bool {
    LIVE.remove(addr)
}

/// Forgets every address (a new tracking session starts).
pub fn clear() {
    LIVE.drain(|_| {});
}
