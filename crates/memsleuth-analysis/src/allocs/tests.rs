//! Allocation analyses on synthetic captures.

use std::collections::VecDeque;

use super::testkit::{ms, temp_capture, Cap, Rng};
use super::*;
use crate::{AnalysisError, ProfileSubject, VerdictKind, VerdictReason};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn leaks(bytes: &[u8]) -> LeakReport {
    LeakReport::from_bytes(bytes, &LeakOptions::default()).expect("leak report")
}

fn site<'a>(r: &'a LeakReport, function: &str) -> Option<&'a SiteRow> {
    r.leaks
        .sites
        .iter()
        .find(|s| s.location.function == function)
}

#[test]
fn largest_leak_site_comes_first() {
    let mut c = Cap::new();
    let big = c.stack("main@app.py:1 > serve@app.py:20 > handle@app.py:27");
    let small = c.stack("main@app.py:1 > remember@app.py:40");
    let temp = c.stack("main@app.py:1 > scratch@app.py:50");
    let mut addr = 0x1000u64;
    for i in 0..1000u64 {
        let t = i as f64;
        c.alloc(t, addr, KIB, big);
        addr += 0x1000;
        if i % 100 == 0 {
            c.alloc(t, addr, 100, small);
            addr += 0x1000;
        }
        c.alloc(t, addr, 4 * KIB, temp).free(t + 0.5, addr);
        if i % 200 == 199 {
            c.flush();
        }
    }
    let r = leaks(&c.finish(1000.0));
    assert_eq!(r.leaks.sites.len(), 2, "{:#?}", r.leaks.sites);
    let first = &r.leaks.sites[0];
    assert_eq!(first.location.function, "handle");
    assert_eq!(first.location.file, "app.py");
    assert_eq!(first.location.line, 27);
    assert_eq!((first.bytes, first.blocks), (1000 * KIB, 1000));
    assert_eq!(
        (r.leaks.sites[1].bytes, r.leaks.sites[1].blocks),
        (1000, 10)
    );
    assert_eq!(r.leaks.bytes, 1000 * KIB + 1000);
    assert_eq!(r.leaks.blocks, 1010);
    assert!(site(&r, "scratch").is_none());
    // the full stack, outermost first
    let stack = &r.leaks.stacks[first.stacks[0]];
    let names: Vec<&str> = r
        .leaks
        .frames(stack)
        .iter()
        .map(|l| l.function.as_str())
        .collect();
    assert_eq!(names, ["main", "serve", "handle"]);
    assert_eq!(stack.site, 0);
    assert!(r.at_end);
    assert!(!r.capture.end.cut_short);
    assert!(!r.capture.sampled());
    assert_eq!(r.capture.allocs, 2010);
    assert_eq!(r.capture.frees, 1000);
}

#[test]
fn freed_blocks_are_not_reported() {
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > work@app.py:2");
    for i in 0..100u64 {
        c.alloc(i as f64, 0x10 * (i + 1), 64, s);
    }
    for i in 0..100u64 {
        c.free(100.0 + i as f64, 0x10 * (i + 1));
    }
    let r = leaks(&c.finish(300.0));
    assert!(r.leaks.sites.is_empty(), "{:#?}", r.leaks.sites);
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (0, 0));
    assert_eq!(r.heap.peak_bytes, 6400);
    assert_eq!(r.heap.end_bytes, 0);
    assert_eq!(r.growing, 0);
}

#[test]
fn a_free_of_an_unknown_address_is_ignored() {
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > keep@app.py:9");
    // blocks allocated before tracking began are freed while tracking
    c.free(0.0, 0xdead_0000).free(1.0, 0xbeef_0000);
    c.alloc(2.0, 0x1000, 500, s);
    c.free(3.0, 0x2000);
    let r = leaks(&c.finish(10.0));
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (500, 1));
    assert_eq!(r.capture.untracked_frees, 3);
    assert_eq!(r.heap.end_bytes, 500);
}

#[test]
fn realloc_moves_the_block_to_its_new_site() {
    let mut c = Cap::new();
    let first = c.stack("main@app.py:1 > make@app.py:5");
    let grow = c.stack("main@app.py:1 > extend@app.py:8");
    c.alloc(0.0, 0x1000, 100, first);
    // moved: free the old, allocate the new
    c.realloc(1.0, 0x1000, 0x9000, 400, grow);
    // in place: same address, new size
    c.alloc(2.0, 0x5000, 50, first);
    c.realloc(3.0, 0x5000, 0x5000, 300, grow);
    let r = leaks(&c.finish(5.0));
    assert_eq!(r.leaks.sites.len(), 1, "{:#?}", r.leaks.sites);
    let s = &r.leaks.sites[0];
    assert_eq!(s.location.function, "extend");
    assert_eq!((s.bytes, s.blocks), (700, 2));
    assert_eq!(r.capture.reused_live, 0);
}

#[test]
fn an_allocation_over_a_live_address_replaces_it() {
    // a lost free: the old block cannot still be alive
    let mut c = Cap::new();
    let s = c.stack("a@app.py:1");
    c.alloc(0.0, 0x1000, 100, s).alloc(1.0, 0x1000, 30, s);
    let r = leaks(&c.finish(2.0));
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (30, 1));
    assert_eq!(r.capture.reused_live, 1);
}

/// A 10 s run: a steady leak, a cache that fills in the first quarter and then only replaces
/// entries, start-up state allocated once, and churn.
fn leak_and_cache() -> Vec<u8> {
    let mut c = Cap::new();
    let leak = c.stack("main@app.py:1 > handle@app.py:27");
    let cache = c.stack("main@app.py:1 > remember@cache.py:12");
    let boot = c.stack("main@app.py:1 > setup@boot.py:3");
    let temp = c.stack("main@app.py:1 > parse@app.py:60");
    let mut addr = 0x10_0000u64;
    let mut next = || {
        addr += 0x40;
        addr
    };
    for k in 0..100 {
        c.alloc(0.0, next(), 10 * KIB, boot);
        let _ = k;
    }
    let mut entries: VecDeque<u64> = VecDeque::new();
    for step in 0..1000u64 {
        let t = step as f64 * 10.0;
        c.alloc(t, next(), 2 * KIB, leak);
        let a = next();
        c.alloc(t, a, 8 * KIB, cache);
        entries.push_back(a);
        if t >= 2500.0 {
            if let Some(old) = entries.pop_front() {
                c.free(t + 1.0, old);
            }
        }
        let tmp = next();
        c.alloc(t + 2.0, tmp, 16 * KIB, temp).free(t + 3.0, tmp);
        if step % 20 == 19 {
            c.sample(t, 50 * MIB + step * 2 * KIB);
            c.flush();
        }
    }
    c.finish(10_000.0)
}

#[test]
fn a_steady_leak_is_growing_and_a_filled_cache_is_not() {
    let r = leaks(&leak_and_cache());
    let leak = site(&r, "handle").expect("leak site");
    let v = leak.verdict.as_ref().expect("judged");
    assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
    let expected = 2.0 * KIB as f64 / 0.01;
    assert!(
        (v.rate - expected).abs() < 0.1 * expected,
        "rate {} vs {expected}",
        v.rate
    );
    let cache = site(&r, "remember").expect("cache site");
    let v = cache.verdict.as_ref().expect("judged");
    assert_eq!(v.kind, VerdictKind::Plateau, "{v:?}");
    let boot = site(&r, "setup").expect("start-up site");
    let v = boot.verdict.as_ref().expect("judged");
    assert_ne!(v.kind, VerdictKind::Growing, "{v:?}");
    assert!(site(&r, "parse").is_none());
    assert_eq!(r.growing, 1);
    assert_eq!(
        r.leaking_sites()
            .map(|s| s.location.function.as_str())
            .collect::<Vec<_>>(),
        ["handle"]
    );
    // 10 s in 100 to 200 windows (64 ms: 1 ms doubled until 200 of them cover the run), the
    // series of live bytes at each end after an empty start, the last at the end itself
    assert_eq!(leak.series.len(), 1 + 157);
    assert_eq!(leak.series[0], (0, 0));
    assert_eq!(leak.series[1].0, ms(64.0));
    assert_eq!(leak.series.last(), Some(&(ms(10_000.0), 1000 * 2 * KIB)));
    assert_eq!(cache.series.last().map(|p| p.1), Some(250 * 8 * KIB));
    // sizes: the cache holds 250 entries at the end
    assert_eq!(cache.bytes, 250 * 8 * KIB);
    assert_eq!(leak.bytes, 1000 * 2 * KIB);
    assert_eq!(boot.bytes, 1000 * KIB);
}

#[test]
fn no_windows_means_no_verdicts() {
    let opts = LeakOptions {
        windows: 0,
        ..LeakOptions::default()
    };
    let r = LeakReport::from_bytes(&leak_and_cache(), &opts).expect("report");
    assert!(r.leaks.sites.iter().all(|s| s.verdict.is_none()));
    assert!(r.leaks.sites.iter().all(|s| s.series.is_empty()));
    assert_eq!(r.growing, 0);
}

#[test]
fn a_site_allocated_in_its_last_moments_is_inconclusive() {
    let mut c = Cap::new();
    let s = c.stack("leak@app.py:1");
    for i in 0..30u64 {
        c.alloc(997.0 + i as f64 * 0.1, 0x100 * (i + 1), 100 * KIB, s);
    }
    let r = leaks(&c.finish(1000.0));
    let site = &r.leaks.sites[0];
    let v = site.verdict.as_ref().expect("judged");
    assert_eq!(v.kind, VerdictKind::Inconclusive, "{v:?}");
    // a 1 s run is cut into 8 ms windows: its last 3 ms are one point
    assert_eq!(site.series.len(), 2);
    assert_eq!(site.series[0], (ms(997.0), 0));
    // from its first allocation to the end of the run: 3 ms, in one 8 ms window
    assert_eq!(
        v.reason,
        VerdictReason::TooBrief {
            allocated_for_ns: ms(1000.0) - ms(997.0),
            windows: 1,
            window_ns: 8_000_000,
        },
        "{v:?}"
    );
}

#[test]
fn a_leak_that_starts_late_is_judged_over_its_own_life() {
    // 9 s of start-up with nothing leaking, then a leak over the last second
    let mut c = Cap::new();
    let boot = c.stack("main@app.py:1 > setup@boot.py:3");
    let leak = c.stack("main@app.py:1 > handle@app.py:27");
    let churn = c.stack("main@app.py:1 > work@app.py:40");
    for i in 0..100u64 {
        c.alloc(i as f64 * 0.5, 0x10 * (i + 1), 10 * KIB, boot);
    }
    for i in 0..9000u64 {
        let a = 0x200_0000 + 0x100 * i;
        c.alloc(50.0 + i as f64, a, 4 * KIB, churn)
            .free(50.5 + i as f64, a);
    }
    for i in 0..1000u64 {
        c.alloc(
            9050.0 + i as f64 * 0.9,
            0x100_0000 + 0x100 * i,
            2 * KIB,
            leak,
        );
    }
    let r = leaks(&c.finish(10_000.0));
    let v = site(&r, "handle")
        .and_then(|s| s.verdict.as_ref())
        .expect("judged");
    assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
    assert!((v.rate / (2048.0 / 0.0009) - 1.0).abs() < 0.1, "{v:?}");
    let boot = site(&r, "setup")
        .and_then(|s| s.verdict.as_ref())
        .expect("judged");
    assert_ne!(boot.kind, VerdictKind::Growing, "{boot:?}");
}

#[test]
fn leaks_at_a_chosen_time() {
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > hold@app.py:2");
    c.alloc(1000.0, 0x1000, 700, s);
    c.alloc(2500.0, 0x2000, 10, s);
    c.free(3000.0, 0x1000);
    let bytes = c.finish(4000.0);
    let at = |t: f64| {
        let opts = LeakOptions {
            at_ns: Some(ms(t)),
            ..LeakOptions::default()
        };
        LeakReport::from_bytes(&bytes, &opts).expect("report")
    };
    let r = at(2000.0);
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (700, 1));
    assert_eq!(r.at_ns, ms(2000.0));
    assert!(!r.at_end);
    let r = at(2800.0);
    assert_eq!(r.leaks.bytes, 710);
    let r = at(3500.0);
    assert_eq!(r.leaks.bytes, 10);
    // past the end: the end
    let r = at(9000.0);
    assert!(r.at_end);
    assert_eq!(r.at_ns, ms(4000.0));
    assert_eq!(r.leaks.bytes, 10);
    // the heap series stops at the chosen time
    let r = at(2000.0);
    assert!(r.heap.series.iter().all(|p| p.0 <= ms(2000.0)));
}

#[test]
fn peak_shows_what_was_alive_at_the_high_water_mark() {
    let mut c = Cap::new();
    let keep = c.stack("main@app.py:1 > keep@app.py:3");
    let build = c.stack("main@app.py:1 > build@app.py:5");
    let late = c.stack("main@app.py:1 > late@app.py:9");
    c.alloc(0.0, 0x10, MIB, keep);
    for i in 1..=10u64 {
        c.alloc(500.0 * i as f64, 0x1000 * i, MIB, build);
        c.flush();
    }
    for i in 1..=10u64 {
        c.free(5000.0 + 100.0 * i as f64, 0x1000 * i);
    }
    c.flush();
    c.alloc(7000.0, 0x20_0000, 5 * MIB, late);
    let bytes = c.finish(8000.0);
    let p = PeakReport::from_bytes(&bytes, &PeakOptions::default()).expect("peak");
    assert_eq!(p.peak_bytes, 11 * MIB);
    assert_eq!(p.peak_blocks, 11);
    assert_eq!(p.peak_at_ns, ms(5000.0));
    assert_eq!(p.alive.bytes, 11 * MIB);
    let names: Vec<(&str, u64)> = p
        .alive
        .sites
        .iter()
        .map(|s| (s.location.function.as_str(), s.bytes))
        .collect();
    assert_eq!(names, [("build", 10 * MIB), ("keep", MIB)]);
    // the leaks of the same capture are different
    let r = leaks(&bytes);
    assert_eq!(r.leaks.bytes, 6 * MIB);
    assert_eq!(r.heap.peak_bytes, 11 * MIB);
    assert_eq!(r.heap.peak_at_ns, ms(5000.0));
    // profile of the peak: bins say when the bytes were allocated
    let prof = p.to_profile();
    assert_eq!(prof.total_bytes(), 11 * MIB);
    let build_stack = prof
        .stacks
        .iter()
        .find(|s| prof.locations[*s.frames.last().expect("frame") as usize].function == "build")
        .expect("build stack");
    assert_eq!(build_stack.bins.len(), 10);
    assert_eq!(
        build_stack.bins.iter().map(|b| b.1).sum::<u64>(),
        build_stack.bytes
    );
}

/// Poisson sampling by bytes, as the recorder does it: each allocation of `s` bytes is recorded
/// with probability `1 - exp(-s/R)`; frees are all recorded (the recorder cannot tell which
/// blocks were sampled) and those of unrecorded blocks are ignored.
#[test]
fn sampled_estimates_are_unbiased() {
    const R: u64 = 32 * KIB;
    let mut rng = Rng::new(7);
    let mut c = Cap::with_sampling(R);
    let small = c.stack("main@app.py:1 > small@app.py:10");
    let mid = c.stack("main@app.py:1 > mid@app.py:20");
    let large = c.stack("main@app.py:1 > large@app.py:30");
    let (mut true_bytes, mut true_blocks) = (0u64, 0u64);
    let (mut leaked_bytes, mut leaked_blocks) = (0u64, 0u64);
    let mut small_leaked = 0u64;
    let n = 400_000u64;
    for i in 0..n {
        let pick = rng.unit();
        let (size, stack) = if pick < 0.80 {
            (16 + rng.next_u64() % 497, small)
        } else if pick < 0.99 {
            (512 + rng.next_u64() % 7681, mid)
        } else {
            (64 * KIB + rng.next_u64() % (960 * KIB), large)
        };
        true_bytes += size;
        true_blocks += 1;
        let t = i as f64 * 0.01;
        let addr = 0x1000 + i * 0x10;
        let p = 1.0 - (-(size as f64) / R as f64).exp();
        if rng.unit() < p {
            c.alloc(t, addr, size, stack);
        }
        // half the blocks are freed
        if rng.unit() < 0.5 {
            c.free(t + 0.005, addr);
        } else {
            leaked_bytes += size;
            leaked_blocks += 1;
            if stack == small {
                small_leaked += size;
            }
        }
        if i % 50_000 == 49_999 {
            c.flush();
        }
    }
    let bytes = c.finish(n as f64 * 0.01 + 1.0);
    let close = |est: u64, truth: u64, tol: f64| {
        let err = (est as f64 - truth as f64).abs() / truth as f64;
        assert!(
            err < tol,
            "estimate {est} vs truth {truth}: {:.2}% off",
            err * 100.0
        );
    };
    let t = AllocTable::from_bytes(&bytes, &TableOptions::default()).expect("table");
    assert!(t.capture.sampled());
    close(t.totals.allocated_bytes, true_bytes, 0.02);
    close(t.totals.allocated_blocks, true_blocks, 0.05);
    let r = leaks(&bytes);
    close(r.leaks.bytes, leaked_bytes, 0.03);
    close(r.leaks.blocks, leaked_blocks, 0.08);
    close(
        site(&r, "small").expect("small site").bytes,
        small_leaked,
        0.05,
    );
    assert!(r.to_profile().sampled);
}

#[test]
fn a_capture_cut_at_a_flush_says_so() {
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > leak@app.py:2");
    c.alloc(0.0, 0x10, 100, s).flush();
    c.alloc(1.0, 0x20, 100, s).flush();
    // never flushed: lost with the recorder
    c.alloc(2.0, 0x30, 100, s);
    let r = leaks(&c.cut());
    assert!(r.capture.end.cut_short);
    assert!(r.capture.end.damage.is_none());
    assert_eq!(r.capture.end.reason, None);
    assert_eq!(r.leaks.bytes, 200);
    assert_eq!(r.capture.duration_ns, ms(1.0));
}

#[test]
fn a_capture_cut_short_counts_the_flushes_and_samples_it_read() {
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > leak@app.py:2");
    c.sample(0.0, 1 << 20);
    c.alloc(0.0, 0x10, 100, s).flush();
    c.sample(1.0, 2 << 20);
    c.alloc(1.0, 0x20, 100, s).flush();
    let bytes = c.cut();
    // no trailer counts them: the chunks that reached the file are the flushes
    let read = memsleuth_format::Capture::from_reader(&bytes[..]).expect("capture");
    assert!(
        read.trailer.is_none() && read.chunks >= 3,
        "{}",
        read.chunks
    );
    let opts = TableOptions::default();
    for end in [
        leaks(&bytes).capture.end,
        PeakReport::from_bytes(&bytes, &PeakOptions::default())
            .expect("peak")
            .capture
            .end,
        AllocTable::from_bytes(&bytes, &opts)
            .expect("table")
            .capture
            .end,
    ] {
        assert_eq!((end.flushes, end.samples), (read.chunks, 2));
    }
}

#[test]
fn data_after_the_trailer_is_damage_at_its_byte() {
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > leak@app.py:2");
    c.alloc(0.0, 0x10, 100, s).flush();
    let full = c.finish(2.0);
    let mut appended = full.clone();
    appended.extend_from_slice(b"MSLC more");
    let r = leaks(&appended);
    let damage = r.capture.end.damage.as_deref().expect("damage");
    assert!(damage.contains("data after the end"), "{damage}");
    assert_eq!(r.capture.damage_offset, Some(full.len() as u64));
}

#[cfg(unix)]
#[test]
fn a_path_that_is_not_a_regular_file_is_refused_before_reading() {
    let dir = std::env::temp_dir().join(format!("memsleuth-analysis-{}-dir", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = dir.join("f.msl");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let mut paths = vec![(dir.clone(), "a directory")];
    if made.is_ok_and(|s| s.success()) {
        // opened as a plain file, a FIFO without a writer blocks the report forever
        paths.push((fifo.clone(), "a FIFO"));
    }
    for (path, kind) in &paths {
        let refused = |e: AnalysisError| matches!(e, AnalysisError::Format(memsleuth_format::FormatError::NotAFile { kind: k, .. }) if k == *kind);
        let e = LeakReport::from_path(path, &LeakOptions::default()).expect_err("leaks");
        assert!(refused(e), "{}", path.display());
        let e = PeakReport::from_path(path, &PeakOptions::default()).expect_err("peak");
        assert!(refused(e), "{}", path.display());
        let e = AllocTable::from_path(path, &TableOptions::default()).expect_err("table");
        assert!(refused(e), "{}", path.display());
    }
    let _ = std::fs::remove_file(&fifo);
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn a_truncated_capture_keeps_what_came_before_the_damage() {
    let build = |chunks: u64| {
        let mut c = Cap::new();
        let s = c.stack("main@app.py:1 > leak@app.py:2");
        for k in 0..chunks {
            for i in 0..100u64 {
                c.alloc((k * 100 + i) as f64, 0x10 * (k * 100 + i + 1), 64, s);
            }
            c.flush();
        }
        c.cut()
    };
    let two = build(2);
    let three = build(3);
    assert_eq!(&three[..two.len()], &two[..]);
    let cut = (two.len() + three.len()) / 2;
    let r = leaks(&three[..cut]);
    assert!(r.capture.end.cut_short);
    let damage = r.capture.end.damage.as_deref().expect("damage");
    assert!(damage.contains("truncated"), "{damage}");
    assert_eq!(r.capture.damage_offset, Some(cut as u64));
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (200 * 64, 200));
    assert_eq!(r.capture.last_event_ns, ms(199.0));
    // and a corrupt chunk: flip a byte of the last chunk's payload
    let mut bad = three.clone();
    let at = three.len() - 5;
    bad[at] ^= 0xff;
    let r = leaks(&bad);
    let damage = r.capture.end.damage.as_deref().expect("damage");
    assert!(damage.contains("corrupt"), "{damage}");
    assert_eq!(r.leaks.blocks, 200);
}

#[test]
fn frames_written_after_their_stacks_resolve() {
    let mut c = Cap::new().defer_frames();
    let s = c.stack("main@app.py:1 > handler@web.py:77");
    c.alloc(0.0, 0x10, 1000, s).flush();
    c.alloc(1.0, 0x20, 1000, s).flush();
    c.write_frames().flush();
    let r = leaks(&c.finish(3.0));
    let site = &r.leaks.sites[0];
    assert_eq!(site.location.function, "handler");
    assert_eq!(site.location.file, "web.py");
    assert_eq!(site.location.line, 77);
    assert_eq!(r.capture.unresolved_frames, 0);
}

#[test]
fn frames_never_written_are_named_unresolved() {
    let mut c = Cap::new().defer_frames();
    let s = c.stack("main@app.py:1 > handler@web.py:77");
    c.alloc(0.0, 0x10, 1000, s).flush();
    let r = leaks(&c.cut());
    let site = &r.leaks.sites[0];
    assert!(
        site.location.function.starts_with("<unresolved frame"),
        "{:?}",
        site.location
    );
    assert_eq!(r.capture.unresolved_frames, 2);
}

#[test]
fn allocations_without_a_python_frame_have_their_own_site() {
    let mut c = Cap::new();
    c.alloc(0.0, 0x10, 1000, 0);
    let r = leaks(&c.finish(1.0));
    assert_eq!(r.leaks.sites[0].location.function, "<no Python frame>");
    assert!(r.leaks.stacks[0].frames.is_empty());
    let p = r.to_profile();
    assert!(p.stacks[0].frames.is_empty());
}

#[test]
fn several_frame_ids_of_one_location_merge() {
    // the recorder interns code positions: two ids may name the same line
    let mut c = Cap::new();
    let a = c.stack("f@app.py:3");
    let b = c.stack("g@app.py:9 > f@app.py:3");
    c.alloc(0.0, 0x10, 10, a).alloc(0.0, 0x20, 20, b);
    let r = leaks(&c.finish(1.0));
    assert_eq!(r.leaks.sites.len(), 1);
    assert_eq!(r.leaks.sites[0].bytes, 30);
    assert_eq!(r.leaks.sites[0].stacks.len(), 2);
    assert_eq!(r.leaks.stacks.len(), 2);
}

#[test]
fn threads_are_merged_in_time_order() {
    // thread 1 allocates X, thread 2 frees it, thread 1 allocates X again; thread 1's batch is
    // written before thread 2's, as one flush of the recorder can do
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > work@app.py:2");
    c.on(1)
        .alloc(1.0, 0x1000, 100, s)
        .alloc(4.0, 0x1000, 300, s);
    c.on(2).free(3.0, 0x1000);
    c.flush();
    let r = leaks(&c.finish(10.0));
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (300, 1));
    assert_eq!(r.capture.reused_live, 0);
    assert_eq!(r.capture.untracked_frees, 0);
    assert_eq!(r.capture.threads, 2);
}

#[test]
fn a_late_batch_of_a_known_thread_is_merged_in_order() {
    // thread 2's events come a record later than thread 1's later ones
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > work@app.py:2");
    c.on(2).alloc(0.0, 0x9, 1, s);
    c.flush();
    c.on(1)
        .alloc(10.0, 0x1000, 100, s)
        .alloc(40.0, 0x1000, 300, s);
    c.flush_thread(1);
    c.on(2).free(30.0, 0x1000);
    c.flush();
    let r = leaks(&c.finish(100.0));
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (301, 2));
    assert_eq!(r.capture.reused_live, 0);
}

#[test]
fn equal_times_keep_each_threads_order_and_free_before_reuse() {
    // times are stored to the microsecond: ties are common
    let mut c = Cap::new();
    let s = c.stack("main@app.py:1 > work@app.py:2");
    c.on(1).alloc(0.0, 0x500, 8, s);
    c.flush();
    // thread 1 frees 0x500 and then allocates and frees a temporary, all within one
    // microsecond; thread 2 reuses 0x500 in that microsecond and its batch is written first
    c.on(2).alloc(1.0, 0x500, 64, s).alloc(1.0, 0x900, 16, s);
    c.on(1)
        .free(1.0, 0x500)
        .alloc(1.0, 0x700, 32, s)
        .free(1.0, 0x700);
    c.flush_thread(2).flush();
    let r = leaks(&c.finish(2.0));
    assert_eq!(r.capture.untracked_frees, 0);
    assert_eq!(r.capture.reused_live, 0);
    assert_eq!((r.leaks.bytes, r.leaks.blocks), (64 + 16, 2));
}

#[test]
fn a_capture_without_allocation_events_is_refused() {
    let header = memsleuth_format::Header {
        pid: 42,
        instruments: vec!["rss".into()],
        ..memsleuth_format::Header::default()
    };
    let mut c = Cap::with_header(header);
    c.sample(0.0, MIB).sample(10.0, MIB);
    let bytes = c.finish(20.0);
    let e = LeakReport::from_bytes(&bytes, &LeakOptions::default()).expect_err("no events");
    assert!(matches!(e, AnalysisError::NoAllocations), "{e}");
    assert!(e.to_string().contains("memsleuth run"), "{e}");
    assert!(PeakReport::from_bytes(&bytes, &PeakOptions::default()).is_err());
    assert!(AllocTable::from_bytes(&bytes, &TableOptions::default()).is_err());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bytes in [&b""[..], b"hello world", b"\x89MSL\r\n\x1a\n\x01\x00"] {
        assert!(LeakReport::from_bytes(bytes, &LeakOptions::default()).is_err());
        assert!(PeakReport::from_bytes(bytes, &PeakOptions::default()).is_err());
        assert!(AllocTable::from_bytes(bytes, &TableOptions::default()).is_err());
    }
    // every prefix of a real capture reads without panicking
    let full = leak_and_cache();
    let step = (full.len() / 97).max(1);
    for cut in (0..full.len()).step_by(step) {
        let opts = LeakOptions {
            windows: 10,
            ..LeakOptions::default()
        };
        let _ = LeakReport::from_bytes(&full[..cut], &opts);
        let _ = PeakReport::from_bytes(&full[..cut], &PeakOptions::default());
    }
}

#[test]
fn table_and_tree_count_every_allocation() {
    let mut c = Cap::new();
    let a = c.stack("main@app.py:1 > f@app.py:10 > a@lib.py:5");
    let b = c.stack("main@app.py:1 > g@app.py:20 > b@lib.py:9");
    for i in 0..20u64 {
        c.alloc(i as f64, 0x100 * (i + 1), 100, a);
        if i % 4 == 0 {
            c.free(i as f64 + 0.5, 0x100 * (i + 1));
        }
    }
    c.alloc(30.0, 0x9_0000, 1000, b).free(31.0, 0x9_0000);
    let t = AllocTable::from_bytes(&c.finish(40.0), &TableOptions { bins: 10 }).expect("table");
    assert_eq!(t.rows.len(), 2);
    let ra = &t.rows[0];
    assert_eq!(ra.location.function, "a");
    assert_eq!((ra.allocated_bytes, ra.allocated_blocks), (2000, 20));
    assert_eq!((ra.freed_bytes, ra.freed_blocks), (500, 5));
    assert_eq!((ra.alive_bytes, ra.alive_blocks), (1500, 15));
    let rb = &t.rows[1];
    assert_eq!(
        (rb.allocated_bytes, rb.freed_bytes, rb.alive_bytes),
        (1000, 1000, 0)
    );
    assert_eq!(t.totals.allocated_bytes, 3000);
    assert_eq!(t.totals.alive_bytes, 1500);
    // the tree: root > main > (f > a, g > b)
    let tree = &t.tree.nodes;
    assert_eq!(tree[0].allocated_bytes, 3000);
    assert_eq!(tree[0].children.len(), 1);
    let main = &tree[tree[0].children[0]];
    assert_eq!(
        t.locations[main.location.expect("loc") as usize].function,
        "main"
    );
    assert_eq!(main.allocated_bytes, 3000);
    assert_eq!(main.self_bytes, 0);
    let kids: Vec<(&str, u64, u64)> = main
        .children
        .iter()
        .map(|&k| {
            let n = &tree[k];
            (
                t.locations[n.location.expect("loc") as usize]
                    .function
                    .as_str(),
                n.allocated_bytes,
                n.alive_bytes,
            )
        })
        .collect();
    assert_eq!(kids, [("f", 2000, 1500), ("g", 1000, 0)]);
    // the profile of all allocations, binned by time
    let p = t.to_profile();
    assert_eq!(p.total_bytes(), 3000);
    assert_eq!(p.bins, 10);
    for s in &p.stacks {
        assert_eq!(s.bins.iter().map(|b| b.1).sum::<u64>(), s.bytes);
        assert_eq!(s.bins.iter().map(|b| b.2).sum::<u64>(), s.count);
    }
}

#[test]
fn leak_profile_carries_frames_bins_heap_and_rss() {
    let r = leaks(&leak_and_cache());
    let p = r.to_profile();
    assert_eq!(p.program.as_deref(), Some("app.py"));
    assert_eq!(p.subject, ProfileSubject::Leaks { at_ns: None });
    assert_eq!(p.total_bytes(), r.leaks.bytes);
    assert_eq!(p.total_count(), r.leaks.blocks);
    assert_eq!(p.bins, 100);
    assert_eq!(p.bin_ns, ms(100.0));
    for s in &p.stacks {
        assert_eq!(
            s.frames
                .first()
                .map(|&f| p.locations[f as usize].function.as_str()),
            Some("main")
        );
        assert_eq!(s.bins.iter().map(|b| b.1).sum::<u64>(), s.bytes);
        assert!(s.bins.windows(2).all(|w| w[0].0 < w[1].0));
    }
    // the leak is spread over the run, the start-up state in the first bin
    let leak = p
        .stacks
        .iter()
        .find(|s| p.locations[*s.frames.last().expect("f") as usize].function == "handle")
        .expect("leak");
    assert_eq!(leak.bins.len(), 100);
    let boot = p
        .stacks
        .iter()
        .find(|s| p.locations[*s.frames.last().expect("f") as usize].function == "setup")
        .expect("boot");
    assert_eq!(boot.bins, vec![(0, 1000 * KIB, 100)]);
    assert!(!p.heap.is_empty() && p.heap.len() <= 2001);
    assert!(p.heap.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(p.rss.len(), 50);
    assert_eq!(p.rss[0], (ms(190.0), 50 * MIB + 19 * 2 * KIB));
    // the heap's high-water mark is near the end: leak + full cache + start-up + one temp
    let end = 2000 * KIB + 2000 * KIB + 1000 * KIB;
    assert!(r.heap.peak_bytes >= end && r.heap.peak_bytes <= end + 26 * KIB);
}

#[test]
fn profile_from_a_file_for_each_kind() {
    let path = temp_capture("profile-kinds", &leak_and_cache());
    let (leaks, capture) = profile_from_path(&path, ProfileKind::Leaks, 50).expect("leaks");
    let (peak, _) = profile_from_path(&path, ProfileKind::Peak, 50).expect("peak");
    let (all, _) = profile_from_path(&path, ProfileKind::All, 50).expect("all");
    assert!(!capture.end.cut_short && capture.end.damage.is_none());
    assert!(leaks.total_bytes() < peak.total_bytes());
    assert!(peak.total_bytes() < all.total_bytes());
    assert_eq!(leaks.bins, 50);
    assert!(all.stacks.iter().all(|s| !s.bins.is_empty()));
    let _ = std::fs::remove_file(&path);
    let missing = LeakReport::from_path(&path, &LeakOptions::default()).expect_err("missing");
    assert!(matches!(
        missing,
        AnalysisError::Format(memsleuth_format::FormatError::Io(_))
    ));
}

#[test]
fn diff_finds_the_sites_that_grew() {
    let build = |x: u64, y: u64| {
        let mut c = Cap::new();
        let sx = c.stack("main@app.py:1 > x@app.py:10");
        let sy = c.stack("main@app.py:1 > y@app.py:20");
        let sz = c.stack("main@app.py:1 > z@app.py:30");
        for i in 0..x {
            c.alloc(i as f64, 0x1_0000 + i * 0x100, KIB, sx);
        }
        for i in 0..y {
            c.alloc(i as f64, 0x100_0000 + i * 0x100, KIB, sy);
        }
        c.alloc(0.0, 0x10, 5000, sz);
        c.finish(1000.0)
    };
    let a = LeakReport::from_bytes(&build(100, 0), &LeakOptions::default()).expect("a");
    let b = LeakReport::from_bytes(&build(300, 50), &LeakOptions::default()).expect("b");
    let d = DiffReport::from_reports(&a, &b);
    let grown: Vec<(&str, i64)> = d
        .grown()
        .map(|r| (r.location.function.as_str(), r.delta_bytes))
        .collect();
    assert_eq!(grown, [("x", 200 * 1024), ("y", 50 * 1024)]);
    assert_eq!(d.growth_bytes, 250 * 1024);
    assert_eq!(d.rows.len(), 3);
    assert_eq!(d.rows[2].delta_bytes, 0);
    let back = DiffReport::from_reports(&b, &a);
    assert_eq!(back.growth_bytes, -250 * 1024);
    assert_eq!(back.grown().count(), 0);
}

/// `cargo test --release -p memsleuth-analysis -- --ignored ten_million --nocapture`
#[test]
#[ignore = "slow in debug builds: a 10-million-event capture"]
fn ten_million_events_report_quickly() {
    use std::time::Instant;
    let start = Instant::now();
    let mut c = Cap::new();
    let mut rng = Rng::new(11);
    let stacks: Vec<u32> = (0..2000)
        .map(|i| {
            c.stack(&format!(
                "main@app.py:1 > layer{}@mod{}.py:{} > site{}@lib{}.py:{}",
                i % 50,
                i % 7,
                i % 50 + 1,
                i,
                i % 13,
                i + 1
            ))
        })
        .collect();
    // 6 M allocations, 4 M frees: 2 M blocks alive at the end, over 100 s on 4 threads
    let mut live: Vec<u64> = Vec::new();
    let mut next_addr = 0x7f00_0000_0000u64;
    let mut events = 0u64;
    let total = 10_000_000u64;
    let mut t_ns = 0u64;
    while events < total {
        for _ in 0..10_000 {
            t_ns += 10_000;
            let thread = 1 + (rng.next_u64() % 4) as u32;
            c.on(thread);
            if live.is_empty() || rng.unit() < 0.6 {
                let addr = next_addr;
                next_addr += 16 * (1 + rng.next_u64() % 8);
                let stack = stacks[(rng.next_u64() % stacks.len() as u64) as usize];
                c.alloc_ns(t_ns, addr, 16 + rng.next_u64() % 1000, stack);
                live.push(addr);
            } else {
                let i = (rng.next_u64() % live.len() as u64) as usize;
                let addr = live.swap_remove(i);
                c.free_ns(t_ns, addr);
            }
            events += 1;
        }
        if events.is_multiple_of(200_000) {
            c.flush();
        }
    }
    let bytes = c.finish(t_ns as f64 / 1e6 + 1.0);
    // MEMSLEUTH_BENCH_CAPTURE=path keeps the capture there (to profile the CLI on it)
    let keep = std::env::var_os("MEMSLEUTH_BENCH_CAPTURE").map(std::path::PathBuf::from);
    let path = match &keep {
        Some(p) => {
            std::fs::write(p, &bytes).expect("write capture");
            p.clone()
        }
        None => temp_capture("ten-million", &bytes),
    };
    eprintln!(
        "built {} events, {} MB, in {:.1} s",
        events,
        bytes.len() / 1_000_000,
        start.elapsed().as_secs_f64()
    );
    drop(bytes);
    let start = Instant::now();
    let r = LeakReport::from_path(&path, &LeakOptions::default()).expect("report");
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "report leaks: {:.2} s for {} events: {} blocks alive in {} sites",
        secs,
        r.capture.allocs + r.capture.frees,
        r.leaks.blocks,
        r.leaks.sites.len()
    );
    assert_eq!(r.capture.allocs + r.capture.frees, total);
    assert_eq!(r.leaks.blocks, live.len() as u64);
    let start = Instant::now();
    let p = PeakReport::from_path(&path, &PeakOptions::default()).expect("peak");
    eprintln!(
        "report peak: {:.2} s ({} alive at the peak)",
        start.elapsed().as_secs_f64(),
        p.alive.blocks
    );
    if keep.is_none() {
        let _ = std::fs::remove_file(&path);
    }
    if !cfg!(debug_assertions) {
        assert!(secs < 10.0, "took {secs:.1} s");
    }
}

#[test]
fn launcher_frames_of_memsleuth_run_are_trimmed() {
    let mut c = Cap::new();
    let launched = c.stack(
        // (the test notation splits on '>', so `<frozen runpy>` is spelt as a runpy.py path)
        "_run_module_as_main@/py/runpy.py:198 > main@/v/memsleuth/__main__.py:14 > \
         run_target@/v/memsleuth/_run.py:60 > _run_main@/v/memsleuth/_run.py:95 > \
         run_path@/py/runpy.py:291 > \
         _run_code@/py/runpy.py:88 > module@app.py:3 > handle@app.py:9",
    );
    // the runner's own allocations keep their frames
    let runner = c.stack("main@/v/memsleuth/__main__.py:14 > run_target@/v/memsleuth/_run.py:55");
    c.alloc(1.0, 0x1000, 4096, launched);
    c.alloc(1.0, 0x9000, 16, runner);
    let r = leaks(&c.finish(2.0));
    let first = &r.leaks.stacks[0];
    let names: Vec<&str> = r
        .leaks
        .frames(first)
        .iter()
        .map(|l| l.function.as_str())
        .collect();
    assert_eq!(names, ["module", "handle"]);
    let second = &r.leaks.stacks[1];
    assert_eq!(r.leaks.frames(second).len(), 2);
}

/// 200 blocks of 64 KiB kept at one site over 2 s, then a mark with `label`, all flushed: the
/// capture a tracker syncs at the end of the program's time. Returns the block addresses too.
fn grown_to_a_mark(label: &str) -> (Cap, Vec<u64>) {
    let mut c = Cap::new();
    let grow = c.stack("main@app.py:1 > remember@app.py:40");
    let addrs: Vec<u64> = (0..200u64).map(|i| 0x10_0000 + i * 0x1_0000).collect();
    for (i, &a) in addrs.iter().enumerate() {
        c.alloc(i as f64 * 10.0, a, 64 * KIB, grow);
    }
    c.record(memsleuth_format::Record::Mark(memsleuth_format::Mark {
        t_ns: ms(2000.0),
        label: label.into(),
    }));
    c.write_frames();
    c.flush();
    (c, addrs)
}

/// A holder record: the block at `addr` is kept by module `app` through one step.
fn holder_of(addr: u64, edge: &str, type_name: &str) -> memsleuth_format::Record {
    memsleuth_format::Record::Holder(memsleuth_format::Holder {
        stack: 0,
        addr,
        root_kind: 0,
        root: "module app".into(),
        steps: vec![memsleuth_format::HolderStep {
            edge: edge.into(),
            type_name: type_name.into(),
            ..memsleuth_format::HolderStep::default()
        }],
    })
}

/// `run` reads its capture once at exit in two steps: up to the end of the program's main code,
/// while the program still holds what grew (its holders are searched then), and the rest after
/// the shutdown freed it. The two steps make the report one pass over the whole file makes.
#[test]
fn a_pass_stopped_at_the_main_code_end_goes_on_to_the_report_of_the_whole_capture() {
    let (mut c, addrs) = grown_to_a_mark(memsleuth_format::PHASE_MAIN_END);
    let main_end = c.written();
    // what the tracker finds at the main code's end, then the shutdown (an atexit handler)
    // frees it all
    c.record(holder_of(addrs[150], "._registry", "dict"));
    for (i, &a) in addrs.iter().enumerate() {
        c.free(2100.0 + i as f64 * 0.1, a);
    }
    let path = temp_capture("resumed", &c.finish(2200.0));
    let opts = LeakOptions::default();

    let mut pass = LeakPass::open_upto(&path, &opts, main_end).expect("pass");
    let at_main_end = pass.report().expect("report at the main code's end");
    let row = site(&at_main_end, "remember").expect("the growing site");
    assert_eq!(row.bytes, 200 * 64 * KIB);
    assert_eq!(
        row.freed_at_shutdown, 0,
        "the shutdown has not been read yet"
    );
    assert!(row.growing(), "{row:#?}");
    let offered = &at_main_end.samples[0];
    assert!(
        !offered.is_empty() && offered.iter().all(|a| addrs.contains(a)),
        "its blocks are offered for a holder search: {offered:?}"
    );
    assert!(at_main_end.holders.is_empty());

    pass.read_to(u64::MAX);
    let resumed = pass.report().expect("report at the end");
    let whole = LeakReport::from_path(&path, &opts).expect("one pass");
    std::fs::remove_file(&path).ok();
    for r in [&resumed, &whole] {
        let row = site(r, "remember").expect("the growing site");
        assert_eq!(row.bytes, 200 * 64 * KIB, "alive when the main code ended");
        assert_eq!(row.freed_at_shutdown, 200 * 64 * KIB);
        assert!(row.growing(), "{row:#?}");
        // the holder names a block the shutdown freed: it still belongs to the site
        assert_eq!(r.holders.len(), 1, "{:#?}", r.holders);
        assert_eq!(r.holders[0].addr, addrs[150]);
        assert_eq!(
            r.leaks.sites[r.holders[0].site].location.function,
            "remember"
        );
    }
    assert_eq!(resumed.at_ns, whole.at_ns);
    assert_eq!(resumed.capture.end.reason, whole.capture.end.reason);
}

/// `attach`'s end: the attacher follows the capture the process writes, reads it to the length
/// the process synced at the recording's end to pick the blocks whose holders it looks up, then
/// to the end once it is finished. The recording-end mark ends the program's time as the main
/// code's end does, without saying the program ended; the followed pass makes the report one
/// read of the finished file makes.
#[test]
fn a_followed_pass_read_to_the_recording_end_then_on_is_the_finished_files_report() {
    let (mut c, addrs) = grown_to_a_mark(memsleuth_format::PHASE_RECORDING_END);
    let synced = c.written();
    // the end's work in the process: the holder of a block the attacher picked, and RSS read
    // while it waited (not the program's time)
    c.record(holder_of(addrs[150], ".KEPT", "list"));
    c.sample(5000.0, 900 * MIB);
    let path = temp_capture("followed", &c.finish(5000.0));
    let opts = LeakOptions::default();

    let mut followed = Followed::new(&path, opts.clone());
    followed
        .read_to(synced, &|| false)
        .expect("read to the sync");
    let at_end = followed.report().expect("report").expect("allocations");
    let picked = at_end.blocks_to_hold();
    assert!(
        !picked.is_empty()
            && picked
                .iter()
                .all(|(a, rank)| addrs.contains(a) && *rank == 0),
        "the growing site's blocks are picked: {picked:?}"
    );
    followed
        .read_to(u64::MAX, &|| false)
        .expect("read to the end");
    let followed = followed.report().expect("report").expect("allocations");
    let whole = LeakReport::from_path(&path, &opts).expect("one pass");
    std::fs::remove_file(&path).ok();
    for r in [&followed, &whole] {
        assert_eq!(
            r.at_ns,
            ms(2000.0),
            "the program's time ends with the recording"
        );
        let row = site(r, "remember").expect("the growing site");
        assert_eq!(row.bytes, 200 * 64 * KIB);
        assert!(row.growing(), "{row:#?}");
        assert_eq!(r.holders.len(), 1, "{:#?}", r.holders);
        assert_eq!(r.holders[0].addr, addrs[150]);
        assert_eq!(r.capture.phases.recording_end_ns, Some(ms(2000.0)));
        assert_eq!(r.capture.phases.main_end_ns, None);
    }
    assert_eq!(followed.capture.end.reason, whole.capture.end.reason);
    let verdict = crate::ProgramVerdict::from_leaks(followed);
    assert!(verdict.signals.end_marked, "{:?}", verdict.signals);
    assert!(
        !verdict.signals.phases,
        "the program went on: {:?}",
        verdict.signals
    );
}

/// A small-object leak whose RSS grows by more than its heap: memsleuth's own tables of the
/// live blocks grow beside it. With those bytes recorded the growth is not C's; without, the
/// same RSS would be a native leak.
fn small_leak_with_own_tables(own_recorded: bool) -> Vec<u8> {
    let mut c = Cap::new();
    let leak = c.stack("main@app.py:1 > keep@app.py:9");
    let mut addr = 0x10_0000u64;
    let mut heap = 0u64;
    for step in 0..400u64 {
        let t = step as f64 * 10.0;
        for _ in 0..500 {
            addr += 0x40;
            c.alloc(t, addr, 64, leak);
            heap += 64;
        }
        if step % 10 == 9 {
            // the tables take ~80 bytes per live block, more than a small object's own
            let own = 2 * MIB + heap / 64 * 80;
            let rss = 30 * MIB + heap + own;
            c.sample_of(t, rss, own_recorded.then_some(own));
        }
    }
    c.write_frames();
    c.finish(4000.0)
}

#[test]
fn memsleuths_own_bytes_are_not_a_native_leak() {
    use crate::{FindingKind, ProgramVerdict};
    let kinds = |own_recorded| {
        let v = ProgramVerdict::from_leaks(leaks(&small_leak_with_own_tables(own_recorded)));
        v.findings.iter().map(|f| f.kind).collect::<Vec<_>>()
    };
    let with = kinds(true);
    assert!(with.contains(&FindingKind::Python), "{with:?}");
    assert!(!with.contains(&FindingKind::Native), "{with:?}");
    // the control: the same RSS without the own bytes reads as C's growth
    assert!(kinds(false).contains(&FindingKind::Native));
}

/// `run` searches holders while the program runs too: a site whose blocks the program frees
/// as its main code ends (a pool shut down, its threads' state with it) keeps the holder found
/// then, by the block's site when the holder was read, even though the address is reused later.
#[test]
fn a_holder_found_while_the_program_ran_names_a_site_released_at_its_end() {
    use crate::ProgramVerdict;
    let mut c = Cap::new();
    let grow = c.stack("main@app.py:1 > parse@app.py:57");
    let other = c.stack("main@app.py:1 > other@app.py:70");
    let addrs: Vec<u64> = (0..181u64).map(|i| 0x10_0000 + i * 0x1_0000).collect();
    for (i, &a) in addrs.iter().enumerate() {
        c.alloc(i as f64 * 10.0, a, 64 * KIB, grow);
        if i == 100 {
            c.write_frames();
            c.flush();
            // the census thread's search, while the block is alive, names its stack
            c.record(memsleuth_format::Record::Holder(memsleuth_format::Holder {
                stack: grow,
                addr: addrs[10],
                root_kind: 0,
                root: "held from C (1 reference the gc cannot see)".into(),
                steps: vec![memsleuth_format::HolderStep {
                    edge: String::new(),
                    type_name: "dict".into(),
                    ..memsleuth_format::HolderStep::default()
                }],
            }));
        }
    }
    // the pool shuts down as the main code ends, all but a remainder of the line's blocks
    // with it; one address is reused by another line
    for (i, &a) in addrs.iter().enumerate().take(addrs.len() - 3) {
        c.free(1850.0 + i as f64 * 0.1, a);
    }
    c.alloc(1950.0, addrs[10], 64, other);
    c.write_frames();
    c.flush();
    // a search that came too late: the address offered is another line's block now
    c.record(memsleuth_format::Record::Holder(memsleuth_format::Holder {
        stack: grow,
        addr: addrs[10],
        root_kind: 0,
        root: "stale".into(),
        steps: Vec::new(),
    }));
    c.record(memsleuth_format::Record::Mark(memsleuth_format::Mark {
        t_ns: ms(2000.0),
        label: memsleuth_format::PHASE_MAIN_END.into(),
    }));
    c.write_frames();
    let r = leaks(&c.finish(2100.0));
    // the reused address is not the holder's block, and the line it was found for is one
    // released before the end: it stands for that one alone
    assert!(r.holders.is_empty(), "{:#?}", r.holders);
    let released = r
        .released
        .iter()
        .find(|s| s.location.function == "parse")
        .expect("the released site");
    let holder = released
        .holder
        .as_ref()
        .expect("the holder found while it ran");
    assert!(holder.root.starts_with("held from C"), "{holder:#?}");
    assert!(
        r.holders.iter().all(|h| h.path.root != "stale"),
        "{:#?}",
        r.holders
    );
    let v = ProgramVerdict::from_leaks(r);
    let of_line: Vec<_> = v
        .findings
        .iter()
        .filter(|f| f.location.as_ref().is_some_and(|l| l.function == "parse"))
        .collect();
    // the remainder does not make it a second finding
    assert_eq!(of_line.len(), 1, "{:#?}", v.findings);
    assert!(of_line[0].released_at_end > 0);
    assert!(of_line[0].holder.is_some(), "{:#?}", of_line[0]);
}

/// A holder found while the program ran stands only for a line released before the end: for a
/// line alive at the end, the end's search is the one (an object caught on the evaluation
/// stack then, not stored yet, looks held from C; a frame that held it may be gone).
#[test]
fn a_holder_found_while_the_program_ran_does_not_make_a_leak_held_from_c() {
    use crate::{FindingKind, ProgramVerdict};
    let mut c = Cap::new();
    let grow = c.stack("main@app.py:1 > keep@app.py:8");
    for i in 0..300u64 {
        c.alloc(i as f64 * 10.0, 0x10_0000 + i * 0x1_0000, 64 * KIB, grow);
        if i == 150 {
            c.write_frames();
            c.flush();
            c.record(memsleuth_format::Record::Holder(memsleuth_format::Holder {
                stack: grow,
                addr: 0x10_0000 + 100 * 0x1_0000,
                root_kind: 3,
                root: "held from C (1 reference the gc cannot see)".into(),
                steps: Vec::new(),
            }));
        }
    }
    c.record(memsleuth_format::Record::Mark(memsleuth_format::Mark {
        t_ns: ms(3000.0),
        label: memsleuth_format::PHASE_MAIN_END.into(),
    }));
    c.write_frames();
    let r = leaks(&c.finish(3100.0));
    assert!(r.holders.is_empty(), "{:#?}", r.holders);
    let v = ProgramVerdict::from_leaks(r);
    let f = &v.findings[0];
    assert_eq!(f.kind, FindingKind::Python, "{f:#?}");
}

/// The census thread's last search may begin while the program runs and reach the file after
/// the main code's end is marked (the main thread marks the end while the search waits for the
/// GIL). Its holders are still of the run: the script's globals are no root of it, and a leak
/// into them reads as held from C. Only the holders of a search begun at the end stand for the
/// sites alive then.
#[test]
fn a_search_begun_before_the_main_codes_end_is_of_the_run_even_when_recorded_after() {
    use crate::{FindingKind, ProgramVerdict};
    let holder = |stack, addr, root_kind, root: &str| {
        memsleuth_format::Record::Holder(memsleuth_format::Holder {
            stack,
            addr,
            root_kind,
            root: root.into(),
            steps: vec![memsleuth_format::HolderStep {
                edge: ".SEEN".into(),
                type_name: "dict".into(),
                ..memsleuth_format::HolderStep::default()
            }],
        })
    };
    let census = |t| {
        memsleuth_format::Record::Census(memsleuth_format::Census {
            t_ns: ms(t),
            ..memsleuth_format::Census::default()
        })
    };
    let mut c = Cap::new();
    let grow = c.stack("main@app.py:1 > keep@app.py:8");
    let addr = |i: u64| 0x10_0000 + i * 0x1_0000;
    for i in 0..300u64 {
        c.alloc(i as f64 * 10.0, addr(i), 64 * KIB, grow);
    }
    c.write_frames();
    c.flush();
    c.record(memsleuth_format::Record::Mark(memsleuth_format::Mark {
        t_ns: ms(3000.0),
        label: memsleuth_format::PHASE_MAIN_END.into(),
    }));
    // begun at 2990 ms, recorded after the mark
    c.record(census(2990.0));
    c.record(holder(
        grow,
        addr(100),
        3,
        "held from C (3 references the gc cannot see)",
    ));
    // the end's own search
    c.record(census(3010.0));
    c.record(holder(0, addr(200), 1, "module __main__ (app.py)"));
    c.write_frames();
    let r = leaks(&c.finish(3100.0));
    let roots: Vec<&str> = r.holders.iter().map(|h| h.path.root.as_str()).collect();
    assert_eq!(roots, ["module __main__ (app.py)"], "{:#?}", r.holders);
    let v = ProgramVerdict::from_leaks(r);
    assert_eq!(
        v.findings[0].kind,
        FindingKind::Python,
        "{:#?}",
        v.findings[0]
    );
}

/// `run`'s reader thread hands its pass over when the main code ends, in the middle of a read:
/// it stops at the end of the chunk it is in, and the end reads on from there to the same
/// report as one read of the whole capture.
#[test]
fn a_read_stopped_at_a_chunks_end_goes_on_to_the_same_report() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut c = Cap::new();
    let grow = c.stack("main@app.py:1 > remember@app.py:40");
    let churn = c.stack("main@app.py:1 > scratch@app.py:50");
    let mut first_chunk = 0;
    for i in 0..4000u64 {
        c.alloc(i as f64, 0x10_0000 + i * 0x100, 256, grow);
        c.alloc(i as f64 + 0.5, 0x900_0000, 64, churn);
        c.free(i as f64 + 0.7, 0x900_0000);
        if i % 100 == 99 {
            c.write_frames();
            c.flush();
            if first_chunk == 0 {
                first_chunk = c.written();
            }
        }
    }
    c.write_frames();
    let path = temp_capture("stopped", &c.finish(4100.0));
    let opts = LeakOptions::default();
    let whole = LeakReport::from_path(&path, &opts).expect("one pass");

    let stop = AtomicBool::new(true);
    let mut pass = LeakPass::open_upto(&path, &opts, first_chunk).expect("pass");
    let first = pass
        .report()
        .expect("report on the first chunk")
        .leaks
        .bytes;
    // told to stop: it reads no further than the end of the chunk it is in
    let all = pass.read_to_unless(u64::MAX, &|| stop.load(Ordering::Relaxed));
    assert!(!all);
    let early = pass.report().expect("report so far").leaks.bytes;
    assert_eq!(early, first);
    assert!(
        early < whole.leaks.bytes,
        "{early} of {}",
        whole.leaks.bytes
    );
    pass.read_to(u64::MAX);
    let resumed = pass.report().expect("report at the end");
    std::fs::remove_file(&path).ok();
    assert_eq!(resumed.leaks.bytes, whole.leaks.bytes);
    assert_eq!(resumed.leaks.blocks, whole.leaks.blocks);
    let row = site(&resumed, "remember").expect("the growing site");
    assert_eq!(row.bytes, 4000 * 256);
    assert!(row.growing(), "{row:#?}");
    assert_eq!(
        site(&resumed, "scratch").map(|r| r.bytes).unwrap_or(0),
        0,
        "every scratch block was freed"
    );
}

/// A bounded cache (50 blocks of 20 KB, each freed 50 allocations later) sampled every 512 KiB:
/// about 2 recorded blocks alive at a time, and, by chance, more and more of them recorded
/// towards the end, 6 alive then. The trend over the windows takes that for growth; 6 recorded
/// blocks are within their own noise, so the site is not called growing. A leak of the same
/// blocks, kept, is; so are a few kept blocks far larger than the sampling interval.
#[test]
fn a_sampled_site_is_growing_only_on_more_recorded_blocks_than_their_noise() {
    const R: u64 = 512 * KIB;
    const SIZE: u64 = 20_000;
    let n = 900u64;
    let every = |i: u64| i as f64 * 2.2; // ms
                                         // by chance, the recorded ones come closer and closer together
    let mut recorded: Vec<u64> = (0..450).step_by(40).collect();
    recorded.extend((450..700).step_by(20));
    recorded.extend((700..900).step_by(9));
    let mut c = Cap::with_sampling(R);
    let cache = c.stack("main@app.py:1 > lookup@app.py:8");
    for i in 0..n {
        if recorded.contains(&i) {
            c.alloc(every(i), 0x1000 + i * 0x10, SIZE, cache);
        }
        if i >= 50 {
            c.free(every(i) + 0.1, 0x1000 + (i - 50) * 0x10);
        }
    }
    let r = leaks(&c.finish(every(n) + 1.0));
    let row = site(&r, "lookup").expect("the cache's site");
    let verdict = row.verdict.as_ref().expect("judged");
    assert_ne!(verdict.kind, VerdictKind::Growing, "{verdict:?}");
    assert_eq!(r.growing, 0);

    // the same blocks kept: 35 recorded, all alive at the end
    let mut c = Cap::with_sampling(R);
    let kept = c.stack("main@app.py:1 > handle@app.py:5");
    for i in (0..n).step_by(26) {
        c.alloc(every(i), 0x1000 + i * 0x10, SIZE, kept);
    }
    let r = leaks(&c.finish(every(n) + 1.0));
    let row = site(&r, "handle").expect("the leak's site");
    assert_eq!(
        row.verdict.as_ref().map(|v| v.kind),
        Some(VerdictKind::Growing)
    );

    // blocks of 4 MiB are all but always recorded: 8 of them kept are a leak, not noise
    let mut c = Cap::with_sampling(R);
    let big = c.stack("main@app.py:1 > buffer@app.py:12");
    for i in 0..8u64 {
        c.alloc(
            i as f64 * 250.0,
            0x10_0000 + i * 0x100_0000,
            4 * 1024 * KIB,
            big,
        );
    }
    let r = leaks(&c.finish(2000.0));
    let row = site(&r, "buffer").expect("the big leak's site");
    assert_eq!(
        row.verdict.as_ref().map(|v| v.kind),
        Some(VerdictKind::Growing)
    );
}
