//! The rings under real threads. One test function: the registry is process-wide, so scenarios
//! run in sequence rather than as parallel tests that would drain each other's events.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memsleuth_hook::{drain, dropped_total, enter, record, thread_rings, Event, Kind};

fn ev(seq: u64, stack: u32) -> Event {
    Event {
        time_ns: memsleuth_hook::now_ns(),
        addr: seq,
        size: 64,
        stack,
        kind: Kind::Alloc,
        ..Event::default()
    }
}

fn collect() -> HashMap<u32, Vec<Event>> {
    let mut out: HashMap<u32, Vec<Event>> = HashMap::new();
    drain(|tid, evs| out.entry(tid).or_default().extend_from_slice(evs));
    out
}

fn tid() -> u32 {
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

#[test]
fn rings_under_real_threads() {
    same_thread_order_and_content();
    full_ring_counts_drops_and_recovers();
    concurrent_producers_lose_nothing_uncounted();
    thread_churn_reuses_rings();
    reentrancy_guard_nests_once();
}

fn same_thread_order_and_content() {
    collect();
    for i in 0..1000 {
        assert!(record(ev(i, 7)));
    }
    let got = collect();
    let mine = &got[&tid()];
    assert_eq!(mine.len(), 1000);
    assert!(mine
        .iter()
        .enumerate()
        .all(|(i, e)| e.addr == i as u64 && e.stack == 7));
    assert!(mine.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
}

fn full_ring_counts_drops_and_recovers() {
    collect();
    let before = dropped_total();
    let cap = 1u64 << 16;
    let mut accepted = 0;
    for i in 0..cap + 500 {
        accepted += u64::from(record(ev(i, 1)));
    }
    assert_eq!(accepted, cap);
    assert_eq!(dropped_total() - before, 500);
    let got = collect();
    assert_eq!(got[&tid()].len() as u64, cap);
    assert!(record(ev(0, 1)), "room again after a drain");
    collect();
}

fn concurrent_producers_lose_nothing_uncounted() {
    collect();
    let dropped_before = dropped_total();
    let per_thread = 300_000u64;
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut got: HashMap<u32, Vec<u64>> = HashMap::new();
            loop {
                let done = stop.load(Ordering::Acquire);
                drain(|tid, evs| {
                    got.entry(tid)
                        .or_default()
                        .extend(evs.iter().map(|e| e.addr))
                });
                if done {
                    return got;
                }
            }
        })
    };
    let producers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut ok = 0u64;
                for i in 0..per_thread {
                    ok += u64::from(record(ev(i, 2)));
                }
                (tid(), ok)
            })
        })
        .collect();
    let results: Vec<(u32, u64)> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    stop.store(true, Ordering::Release);
    let got = consumer.join().unwrap();
    let mut accepted_total = 0;
    for (tid, accepted) in &results {
        let seqs = &got[tid];
        assert_eq!(
            seqs.len() as u64,
            *accepted,
            "thread {tid}: every accepted event arrives"
        );
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "thread {tid}: in order"
        );
        accepted_total += accepted;
    }
    let dropped = dropped_total() - dropped_before;
    assert_eq!(
        accepted_total + dropped,
        4 * per_thread,
        "accepted + dropped = produced"
    );
}

fn thread_churn_reuses_rings() {
    collect();
    let rings_before = thread_rings();
    for round in 0..300 {
        let t = std::thread::spawn(move || {
            for i in 0..10 {
                record(ev(i, round));
            }
        });
        t.join().unwrap();
        let stats = drain(|_, _| {});
        assert_eq!(stats.retired, 1, "the exited thread's ring is retired");
    }
    assert!(
        thread_rings() <= rings_before + 1,
        "300 short-lived threads must reuse rings: {rings_before} -> {}",
        thread_rings()
    );
}

fn reentrancy_guard_nests_once() {
    let outer = enter().unwrap();
    assert!(enter().is_none(), "a hook inside a hook must pass through");
    drop(outer);
    let again = enter();
    assert!(again.is_some());
    let other = std::thread::spawn(|| enter().is_some()).join().unwrap();
    assert!(other, "the guard is per thread");
}

#[test]
fn tick_converter_tracks_the_monotonic_clock() {
    memsleuth_hook::init_ticks();
    let mut c = memsleuth_hook::TickConverter::new();
    std::thread::sleep(std::time::Duration::from_millis(30));
    c.calibrate();
    let (t, n) = (memsleuth_hook::ticks(), memsleuth_hook::now_ns());
    let err = c.to_ns(t) as i64 - n as i64;
    assert!(
        err.abs() < 1_000_000,
        "ticks convert {err} ns away from CLOCK_MONOTONIC"
    );
}

#[test]
fn event_times_are_exact_at_a_change_of_thread() {
    memsleuth_hook::init_ticks();
    memsleuth_hook::tick_coarse();
    let a = memsleuth_hook::event_ticks(1);
    std::thread::sleep(std::time::Duration::from_millis(2));
    // same thread, coarse clock not refreshed: the old coarse reading, never ahead of now
    let a2 = memsleuth_hook::event_ticks(1);
    assert!(a2 <= memsleuth_hook::ticks());
    // another thread: an exact reading, after everything stamped before
    let b = memsleuth_hook::event_ticks(2);
    assert!(b > a && b > a2);
}

#[test]
fn after_a_mark_the_next_event_is_stamped_exactly() {
    memsleuth_hook::init_ticks();
    memsleuth_hook::tick_coarse();
    let before = memsleuth_hook::event_ticks(7);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let mark = memsleuth_hook::ticks();
    memsleuth_hook::stamp_next_event_exactly();
    // same thread, coarse clock 2 ms old: exact all the same, after the mark
    let after = memsleuth_hook::event_ticks(7);
    assert!(after >= mark && after > before, "{before} {mark} {after}");
}
