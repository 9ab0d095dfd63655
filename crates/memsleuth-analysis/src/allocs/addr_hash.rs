//! The hash of the live-block table's keys (block addresses). The replay inserts and removes
//! one entry per event, tens of millions on a busy capture; with a hash that scatters
//! neighbouring addresses (as Fx does), each is a cache miss in a table of millions. The
//! allocator hands out neighbours together (pymalloc carves a pool's blocks in order and
//! reuses a freed one first), so this hash keeps the blocks of one 4 KiB page in neighbouring
//! buckets: the page number is mixed, the offset within it is added. Its top bits, which
//! hashbrown compares first, still differ between the blocks of a page.

use std::hash::{BuildHasherDefault, Hasher};

/// The live-block table: address to block.
pub(crate) type AddrMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<AddrHasher>>;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    #[inline]
    fn write_u64(&mut self, addr: u64) {
        // blocks are at least 16-byte aligned apart from the odd one: 256 offsets per page
        let offset = (addr >> 4) & 0xff;
        // a folded multiply: pages far apart (arenas a power of two apart) still spread
        let m = u128::from(addr >> 12) * 0x9e37_79b9_7f4a_7c15u128;
        let page = (m as u64) ^ ((m >> 64) as u64);
        self.0 = page.wrapping_add(offset) ^ (offset << 57);
    }

    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys use this hasher; anything else still hashes, the slow way
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(addr: u64) -> u64 {
        BuildHasherDefault::<AddrHasher>::default().hash_one(addr)
    }

    #[test]
    fn blocks_of_one_page_land_in_neighbouring_buckets_with_different_tags() {
        let base = 0x7f12_3456_7000u64;
        let a = hash(base);
        let b = hash(base + 32);
        // bucket index: the low bits, two apart
        assert_eq!(b.wrapping_sub(a) & 0xffff, 2);
        // tag: the top seven bits, not all alike within the page
        let tags: std::collections::HashSet<u64> =
            (0..64).map(|i| hash(base + i * 16) >> 57).collect();
        assert!(tags.len() > 32, "{}", tags.len());
    }

    #[test]
    fn pages_spread_over_the_table() {
        let near: std::collections::HashSet<u64> =
            (0..1024u64).map(|p| hash(p << 12) & 0xfffff).collect();
        assert!(near.len() > 1000, "{}", near.len());
        // arenas 16 GiB apart
        let far: std::collections::HashSet<u64> =
            (0..1024u64).map(|p| hash(p << 34) & 0xfffff).collect();
        assert!(far.len() > 1000, "{}", far.len());
    }
}
