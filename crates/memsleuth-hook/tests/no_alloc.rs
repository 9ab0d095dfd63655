//! The hot path never allocates: every heap allocation in this test binary is counted per
//! thread, and recording (first use included, which claims and maps a ring) must count none.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use memsleuth_hook::{drain, enter, record, Event};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator; the counter is const-initialised TLS.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn recording_never_allocates() {
    let counts = std::thread::spawn(|| {
        let before = allocations();
        // first use: claims a ring (mmap) and registers the exit key
        {
            let _g = enter().unwrap();
            record(Event::default());
        }
        let after_first = allocations();
        for i in 0..200_000u64 {
            let _g = enter().unwrap();
            record(Event {
                addr: i,
                time_ns: memsleuth_hook::now_ns(),
                ..Event::default()
            });
        }
        (after_first - before, allocations() - after_first)
    })
    .join()
    .unwrap();
    assert_eq!(counts, (0, 0), "(first record, 200k records) allocations");
    drain(|_, _| {});
}
