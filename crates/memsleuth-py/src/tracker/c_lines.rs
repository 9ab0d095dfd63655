//! With the native instrument: the Python lines seen calling C code outside the interpreter (an
//! extension function, a library) that allocated through Python's allocators.
//!
//! Unwinding every Python allocation would name the C function behind each object, but it
//! doubles the cost of the busiest hook. Instead, one Python allocation in [`LEARN_EVERY`] per
//! thread is unwound; when C code outside the interpreter made it, its Python line is learned,
//! and from then on every allocation at that line is unwound. A line whose C code keeps
//! allocating (the case that matters for a leak) is learned within its first allocations; the
//! interpreter's own allocations for plain Python code, nearly all of them, are not unwound.
//!
//! A fixed table of hashed (code object, instruction) keys, never freed and lock-free. Two lines
//! sharing a key, or a code object's address reused, only cost extra walks: the walk itself
//! decides what is recorded.

use std::sync::atomic::{AtomicU64, Ordering};

/// One Python allocation in this many, per thread, is unwound to learn new lines.
pub const LEARN_EVERY: u32 = 64;

const SLOTS: usize = 1 << 12;
/// Slots tried from a key's home before giving up (a full neighbourhood learns no more).
const PROBES: usize = 8;
static LINES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// A line's key: never 0, the empty slot.
#[inline(always)]
fn key(code: u64, instr: u32) -> u64 {
    (code ^ u64::from(instr).rotate_left(40)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

#[inline(always)]
fn home(key: u64) -> usize {
    (key >> 52) as usize % SLOTS
}

/// Whether the line (the innermost Python frame) was learned.
#[inline(always)]
pub fn contains(code: u64, instr: u32) -> bool {
    let k = key(code, instr);
    let h = home(k);
    for i in 0..PROBES {
        match LINES[(h + i) % SLOTS].load(Ordering::Relaxed) {
            0 => return false,
            v if v == k => return true,
            _ => {}
        }
    }
    false
}

/// Learns the line.
pub fn insert(code: u64, instr: u32) {
    let k = key(code, instr);
    let h = home(k);
    for i in 0..PROBES {
        let slot = &LINES[(h + i) % SLOTS];
        match slot.compare_exchange(0, k, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(v) if v == k => return,
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_line_is_known_and_others_are_not() {
        assert!(!contains(0x7f00_1234_5678, 42));
        insert(0x7f00_1234_5678, 42);
        assert!(contains(0x7f00_1234_5678, 42));
        assert!(!contains(0x7f00_1234_5678, 44));
        assert!(!contains(0x7f00_1234_5680, 42));
        // learning again changes nothing
        insert(0x7f00_1234_5678, 42);
        assert!(contains(0x7f00_1234_5678, 42));
    }
}
