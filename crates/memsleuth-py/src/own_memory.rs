//! memsleuth's own heap in the process. Every Rust allocation of this extension (the recorder's
//! buffers and rings, the tables of the leak analysis `run` keeps while the program runs, a
//! census' graph) goes through this counting allocator, so each memory sample can say how much
//! of the process' RSS is memsleuth's (format 1.4's `own`) and the verdict does not take it for
//! a C leak.
//!
//! Large blocks are mapped from the OS directly and unmapped when freed. Through malloc, a
//! freed table or chunk buffer would stay in the process (glibc raises its mmap threshold
//! after the first large free, and keeps the memory it frees below it): RSS would stay up
//! while `own` goes down, and the difference would read as the program's C memory growing.
//!
//! A counter of our own rather than a crate: it is one relaxed atomic add per allocation over
//! the system allocator, and the hot path of the hooks allocates nothing, so it never runs there.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes this extension has allocated and not yet freed.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Blocks at least this large are mapped directly (see the module documentation).
const DIRECT: usize = 256 << 10;
/// Pages are at least this aligned; a block asking for more goes to malloc.
const PAGE: usize = 4096;

struct Counting;

fn direct(layout: &Layout) -> bool {
    cfg!(target_os = "linux") && layout.size() >= DIRECT && layout.align() <= PAGE
}

/// A mapping moved to a new size by the kernel, without copying its pages.
#[cfg(target_os = "linux")]
unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
    // SAFETY: `ptr` and `old` are those of a mapping made by `memsleuth_hook::map_zeroed` or `remap`
    let p = unsafe { libc::mremap(ptr.cast(), old, new, libc::MREMAP_MAYMOVE) };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

#[cfg(not(target_os = "linux"))]
unsafe fn remap(_ptr: *mut u8, _old: usize, _new: usize) -> *mut u8 {
    std::ptr::null_mut()
}

#[cfg(target_os = "linux")]
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: `ptr` and `size` are those of a mapping made by `memsleuth_hook::map_zeroed` or `remap`
    unsafe { libc::munmap(ptr.cast(), size) };
}

#[cfg(not(target_os = "linux"))]
unsafe fn unmap(_ptr: *mut u8, _size: usize) {}

// SAFETY: blocks are the system allocator's or whole private mappings, each freed the way it
// was made (a layout's size tells which: it is the same at allocation and at free); the
// counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if direct(&layout) {
            memsleuth_hook::map_zeroed(layout.size())
        } else {
            // SAFETY: the caller's contract is the system allocator's
            unsafe { System.alloc(layout) }
        };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if direct(&layout) {
            // a fresh anonymous mapping is zeroed
            memsleuth_hook::map_zeroed(layout.size())
        } else {
            // SAFETY: as for `alloc`
            unsafe { System.alloc_zeroed(layout) }
        };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if direct(&layout) {
            // SAFETY: made by `memsleuth_hook::map_zeroed` with this size (the layout is the one it was made with)
            unsafe { unmap(ptr, layout.size()) };
        } else {
            // SAFETY: `ptr` came from the system allocator with this layout
            unsafe { System.dealloc(ptr, layout) };
        }
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `new_size` is nonzero and does not overflow when rounded to the alignment:
        // the caller's contract
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !direct(&layout) && !direct(&new) {
            // SAFETY: the caller's contract is the system allocator's
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                IN_USE.fetch_add(new_size, Ordering::Relaxed);
                IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            }
            return p;
        }
        if direct(&layout) && direct(&new) {
            // SAFETY: a mapping made with `layout.size()` bytes
            let p = unsafe { remap(ptr, layout.size(), new_size) };
            if !p.is_null() {
                IN_USE.fetch_add(new_size, Ordering::Relaxed);
                IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            }
            return p;
        }
        // one side is a mapping: a new block, the contents copied, the old one freed
        // SAFETY: `new` is a valid layout (above)
        let p = unsafe { self.alloc(new) };
        if !p.is_null() {
            // SAFETY: both blocks hold at least the smaller size, and are distinct
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        p
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes memsleuth's own code holds in this process now.
pub(crate) fn bytes() -> u64 {
    IN_USE.load(Ordering::Relaxed) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident bytes of this process (statm's second field, in pages).
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4096
    }

    #[test]
    fn a_large_buffer_is_counted_while_it_lives_and_leaves_rss_when_freed() {
        let before = bytes();
        let mut v: Vec<u8> = vec![1; 64 << 20];
        assert!(bytes() >= before + (64 << 20));
        let with = rss();
        // grown in place and shrunk again: the copy keeps the contents
        v.resize(96 << 20, 2);
        assert_eq!((v[0], v[(64 << 20) - 1], v[(96 << 20) - 1]), (1, 1, 2));
        v.truncate(1000);
        v.shrink_to_fit();
        assert_eq!(v[999], 1);
        drop(v);
        assert!(bytes() < before + (1 << 20));
        // the pages went back to the OS, not to a free list
        assert!(rss() + (48 << 20) < with, "{} then {}", with, rss());
    }

    #[test]
    fn small_and_over_aligned_blocks_use_the_system_allocator() {
        let small = Layout::from_size_align(100, 8).unwrap();
        let aligned = Layout::from_size_align(1 << 20, 1 << 16).unwrap();
        assert!(!direct(&small));
        assert!(!direct(&aligned));
        // SAFETY: valid layouts, freed with the layout they were made with
        unsafe {
            let p = COUNTING.alloc(aligned);
            assert!(!p.is_null());
            assert_eq!(p as usize % (1 << 16), 0);
            COUNTING.dealloc(p, aligned);
        }
    }
}
