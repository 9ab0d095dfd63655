//! Golden captures: every format version ever released must stay readable. A capture written by
//! memsleuth 0.1 (format 1.0) is committed under tests/fixtures/v1.0.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::PathBuf;

use memsleuth_format::{read_capture, EndReason, ExitStatus, Record};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

#[test]
fn v1_0_watch_capture_reads_exactly() {
    let cap = read_capture(&fixture("v1.0/leak.msl")).unwrap();
    assert_eq!(cap.minor_version, 0);
    assert!(cap.damage.is_none());
    let h = &cap.header;
    assert_eq!(h.tool_version, "0.1.0");
    assert_eq!(h.pid, 30205);
    assert_eq!(h.argv[0], "python");
    assert_eq!(h.argv[2..], ["leak", "3"]);
    assert_eq!(h.instruments, ["rss"]);
    assert_eq!(h.sample_interval_ns, 100_000_000);
    let t = cap.trailer.unwrap();
    assert_eq!(t.reason, EndReason::TargetExited);
    assert_eq!(t.target_status, ExitStatus::Code(0));
    assert_eq!(t.samples, 31);
    assert_eq!(t.flushes, 7);
    let samples: Vec<_> = cap
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(samples.len(), 31);
    // a leaking program: every reading has all six fields and RSS ends far above where it began
    assert!(samples.iter().all(|s| s
        .readings
        .iter()
        .all(|r| r.rss.is_some() && r.pss.is_some())));
    let first = samples[2].readings[0].rss.unwrap();
    let last = samples[30].readings[0].rss.unwrap();
    assert!(last > first + (20 << 20), "{first} -> {last}");
    assert!(cap.records.iter().any(
        |r| matches!(r, Record::ProcessExit(x) if x.pid == 30205 && x.status == ExitStatus::Code(0))
    ));
}

#[test]
fn v1_1_run_capture_reads_exactly() {
    use std::collections::HashMap;

    use memsleuth_format::EventKind;

    // `memsleuth run --no-report -o leak-run.msl golden_allocs.py leak 300` on CPython 3.11.7:
    // tests/programs/allocs.py keeping 300 bytearrays of 1 KiB alive
    let cap = read_capture(&fixture("v1.1/leak-run.msl")).unwrap();
    assert_eq!(cap.minor_version, 1);
    assert!(cap.damage.is_none());
    assert_eq!(cap.header.instruments, ["python", "rss"]);
    assert_eq!(cap.header.sample_bytes, 0);
    assert!(cap.header.python_version.starts_with("3.11.7"));
    let t = cap.trailer.unwrap();
    assert_eq!(t.reason, EndReason::TargetExited);
    assert_eq!(t.target_status, ExitStatus::Code(0));
    assert_eq!(t.dropped, 0);
    assert_eq!(t.flushes, 3);

    let mut frames = HashMap::new();
    let mut nodes = HashMap::new();
    let mut live: HashMap<u64, (u64, u32)> = HashMap::new();
    let (mut allocs, mut frees, mut last_t) = (0u64, 0u64, 0u64);
    for r in &cap.records {
        match r {
            Record::Frame(f) => {
                frames.insert(f.id, f.clone());
            }
            Record::Stack(n) => {
                // nodes come before anything that names them
                assert!(n.parent == 0 || nodes.contains_key(&n.parent));
                nodes.insert(n.id, *n);
            }
            Record::Events(b) => {
                for e in &b.events {
                    assert!(
                        e.t_ns >= last_t || b.thread != 1,
                        "one thread's events go forward"
                    );
                    last_t = e.t_ns;
                    match e.kind {
                        EventKind::Alloc => {
                            assert!(e.stack == 0 || nodes.contains_key(&e.stack));
                            allocs += 1;
                            live.insert(e.addr, (e.size, e.stack));
                        }
                        EventKind::Free => {
                            frees += 1;
                            live.remove(&e.addr);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!((allocs, frees), (19668, 17507));
    assert_eq!(frames.len(), 572); // 571 resolved + the "unknown" frame
    assert_eq!(nodes.len(), 1045);
    // the biggest surviving site is the leaking line
    let mut by_site: HashMap<(String, u32), (u64, u64)> = HashMap::new();
    for (size, stack) in live.values() {
        let Some(node) = nodes.get(stack) else {
            continue;
        };
        let f = &frames[&node.frame];
        let e = by_site.entry((f.file.clone(), f.line)).or_default();
        e.0 += size;
        e.1 += 1;
    }
    let (site, (bytes, blocks)) = by_site.into_iter().max_by_key(|(_, v)| v.0).unwrap();
    assert!(site.0.ends_with("golden_allocs.py"), "{site:?}");
    assert_eq!(site.1, 34);
    assert_eq!((bytes, blocks), (326_764, 601));
}
