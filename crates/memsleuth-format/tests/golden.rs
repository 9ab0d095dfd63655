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
