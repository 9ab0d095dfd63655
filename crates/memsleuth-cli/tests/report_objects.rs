//! `memsleuth report pymalloc|gc` on synthetic captures, through the real binary: what it
//! prints, its exit codes, and one-line errors.

use std::path::Path;

use memsleuth_format::{
    CaptureWriter, Census, EndReason, GcCollection, Header, Pymalloc, Record, SizeClass, Trailer,
};

const MIB: u64 = 1024 * 1024;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

mod common;
use common::{dir as scratch, memsleuth, stderr, stdout};

fn dir() -> common::TempDir {
    scratch("objects")
}

/// Writes a capture of `records`; `end_ns: None` leaves it without a trailer (cut short).
fn write(path: &Path, version: &str, records: &[Record], end_ns: Option<u64>) {
    let header = Header {
        tool_version: "test".into(),
        pid: 77,
        argv: vec!["python".into(), "server.py".into()],
        start_unix_ns: 1_700_000_000_000_000_000,
        python_version: version.into(),
        instruments: vec!["objects".into(), "gc".into(), "pymalloc".into()],
        sample_interval_ns: 0,
        sample_bytes: 0,
        hostname: "test".into(),
    };
    let mut w = CaptureWriter::new(Vec::new(), &header).expect("header");
    for r in records {
        w.push(r);
        w.flush().expect("flush");
    }
    let bytes = match end_ns {
        Some(end_ns) => w
            .finish(Trailer {
                end_ns,
                reason: EndReason::TargetExited,
                ..Trailer::default()
            })
            .expect("finish"),
        None => w.abandon(),
    };
    std::fs::write(path, bytes).expect("write capture");
}

/// pymalloc with 1 MiB arenas and 16 KiB pools holding `used` blocks of `size` bytes.
fn pymalloc(t_ns: u64, arenas: u64, size: u32, used: u64, blocks: u64) -> Record {
    let per_pool = (16 << 10) / u64::from(size);
    let pools = used.div_ceil(per_pool);
    let free = pools * per_pool - used;
    Record::Pymalloc(Pymalloc {
        t_ns,
        allocated_blocks: blocks,
        total_refcount: None,
        arena_size: MIB,
        pool_size: 16 << 10,
        arenas_allocated_total: arenas + 10,
        arenas_reclaimed: 10,
        arenas_highwater: arenas + 5,
        arenas_now: arenas,
        bytes_in_use: used * u64::from(size),
        bytes_free_blocks: free * u64::from(size),
        unused_pools: (arenas * 64).saturating_sub(pools),
        bytes_pool_headers: pools * 48,
        bytes_quantization: 0,
        bytes_arena_alignment: 0,
        classes: vec![SizeClass {
            size,
            pools,
            blocks_in_use: used,
            blocks_free: free,
        }],
    })
}

fn census(t_ns: u64, enabled: bool, count0: u64, unreachable: u64) -> Record {
    Record::Census(Census {
        t_ns,
        duration_ns: 2 * MS,
        objects: 50_000,
        bytes: 8 * MIB,
        gc_enabled: enabled,
        gc_counts: vec![count0, 2, 1],
        unreachable,
        unreachable_bytes: unreachable * 100,
        garbage: 0,
        types: Vec::new(),
        garbage_types: Vec::new(),
    })
}

fn gc_run(t_ns: u64, generation: u8, duration_ns: u64) -> Record {
    Record::Gc(GcCollection {
        t_ns,
        duration_ns,
        generation,
        collected: 100,
        uncollectable: 0,
    })
}

/// A burst of 3 million 48-byte objects, then all but 40,000 freed, scattered over 150 arenas.
fn fragmented(path: &Path) {
    write(
        path,
        "3.12.1",
        &[
            pymalloc(S, 150, 48, 3_000_000, 3_100_000),
            pymalloc(10 * S, 150, 48, 40_000, 140_000),
        ],
        Some(11 * S),
    );
}

/// gc turned off at 5 s, then cycles piling up, 1000 a second.
fn gc_off(path: &Path) {
    let mut records: Vec<Record> = (0..50).map(|i| gc_run(i * 100 * MS, 0, MS)).collect();
    records.push(gc_run(2 * S, 2, 180 * MS));
    for i in 0..=20 {
        let on = i < 5;
        records.push(census(
            i * S,
            on,
            100 + 900 * i,
            if on { 30 } else { 1000 * (i - 4) },
        ));
    }
    write(path, "3.12.1", &records, Some(21 * S));
}

#[test]
fn pymalloc_report_calls_fragmentation_by_its_name() {
    let d = dir();
    let cap = d.join("frag.msl");
    fragmented(&cap);
    let o = memsleuth(&d, &["report", "pymalloc", "frag.msl"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert!(
        text.starts_with("memsleuth pymalloc · python server.py (pid 77) · 11.0 s · Python 3.12.1"),
        "{text}"
    );
    assert!(
        text.contains("fragmentation, not a leak: 148 MiB of pymalloc's 150 MiB"),
        "{text}"
    );
    assert!(
        text.contains("cannot return them to the operating"),
        "{text}"
    );
    assert!(text.contains("latest of 2 snapshots at 10.0 s"), "{text}");
    assert!(
        text.contains("      48 B   -135 MiB (137 MiB → 1.8 MiB)"),
        "{text}"
    );
}

#[test]
fn pymalloc_json_has_exact_figures() {
    let d = dir();
    fragmented(&d.join("frag.msl"));
    let o = memsleuth(&d, &["report", "pymalloc", "frag.msl", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["snapshots"], 2);
    assert_eq!(v["latest"]["arena_bytes"], 150 * MIB);
    assert_eq!(v["latest"]["bytes_in_use"], 40_000 * 48);
    assert_eq!(v["latest"]["allocated_blocks"], 140_000);
    assert_eq!(v["fragmentation"]["fragmented"], true);
    assert_eq!(v["diff"]["allocated_blocks"], -2_960_000);
    assert_eq!(v["diff"]["classes"][0]["size"], 48);
    assert!(v["fragmentation_note"]
        .as_str()
        .is_some_and(|s| s.contains("not a leak")));
}

#[test]
fn growing_blocks_are_not_fragmentation() {
    let d = dir();
    let records: Vec<Record> = (0..30)
        .map(|i| {
            let n = 200_000 + 40_000 * i;
            pymalloc(i * S, (n * 64).div_ceil(MIB) + 1, 64, n, n + 10_000)
        })
        .collect();
    write(&d.join("grow.msl"), "3.11.7", &records, Some(30 * S));
    let o = memsleuth(&d, &["report", "pymalloc", "grow.msl"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}{}", stderr(&o));
    assert!(
        text.contains("small objects keep accumulating: 40,000 more allocated blocks every second"),
        "{text}"
    );
    assert!(!text.contains("fragmentation"), "{text}");
}

#[test]
fn no_pymalloc_snapshots_is_one_clear_error() {
    let d = dir();
    write(
        &d.join("gc.msl"),
        "3.12.1",
        &[gc_run(S, 0, MS)],
        Some(2 * S),
    );
    let o = memsleuth(&d, &["report", "pymalloc", "gc.msl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        "memsleuth: error: gc.msl: the capture holds no pymalloc snapshots; `memsleuth run` \
         records them, as does `memsleuth.Tracker(path, census=1.0)` from Python\n"
    );
}

#[test]
fn gc_report_says_disabled_and_piling_up() {
    let d = dir();
    gc_off(&d.join("off.msl"));
    let o = memsleuth(&d, &["report", "gc", "off.msl"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}{}", stderr(&o));
    assert!(
        text.starts_with("memsleuth gc · python server.py (pid 77) · 21.0 s · Python 3.12.1\n"),
        "{text}"
    );
    assert!(
        text.contains("51 collections freed 5,100 objects; 0 uncollectable"),
        "{text}"
    );
    assert!(
        text.contains("  ! automatic gc was disabled from 5.0 s to the end of the capture"),
        "{text}"
    );
    assert!(
        text.contains("  ! unreachable cycles are piling up: from 30 to 16,000 objects"),
        "{text}"
    );
    // 180 ms is over the 100 ms that counts as a long pause
    assert!(
        text.contains("  ! long gc pauses: 1 collection over 100 ms, the longest 180 ms (generation 2, at 2.0 s)"),
        "{text}"
    );
}

#[test]
fn gc_json_keeps_the_evidence() {
    let d = dir();
    gc_off(&d.join("off.msl"));
    let o = memsleuth(&d, &["report", "gc", "off.msl", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["collections"], 51);
    assert_eq!(v["generations"][0]["collections"], 50);
    assert_eq!(v["generations"][1]["pauses"]["max_ns"], 180 * MS);
    let kinds: Vec<&str> = v["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["gc_disabled", "unreachable_piling_up", "long_pauses"]
    );
    assert!(v["findings"][0]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("automatic gc was disabled from 5.0 s")));
}

#[test]
fn gc_without_records_is_one_clear_error() {
    let d = dir();
    write(
        &d.join("pm.msl"),
        "3.12.1",
        &[pymalloc(S, 2, 32, 1000, 1000)],
        Some(2 * S),
    );
    let o = memsleuth(&d, &["report", "gc", "pm.msl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "memsleuth: error: pm.msl: the capture holds no gc collections and no censuses"
        ),
        "{err}"
    );
    assert!(err.contains("memsleuth run"), "{err}");
}

#[test]
fn a_missing_or_foreign_file_is_one_line() {
    let d = dir();
    for kind in ["pymalloc", "gc"] {
        let o = memsleuth(&d, &["report", kind, "nope.msl"]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(&o),
            "memsleuth: error: capture nope.msl does not exist\n"
        );
    }
    std::fs::write(d.join("text.msl"), "not a capture").expect("write");
    let o = memsleuth(&d, &["report", "gc", "text.msl"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("memsleuth: error: cannot read text.msl"),
        "{err}"
    );
}

#[test]
fn a_capture_cut_short_warns_and_reports() {
    let d = dir();
    write(
        &d.join("cut.msl"),
        "3.12.1",
        &[gc_run(S, 0, MS), gc_run(2 * S, 1, 2 * MS)],
        None,
    );
    let o = memsleuth(&d, &["report", "gc", "cut.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 collections freed 200 objects"));
    assert!(
        stderr(&o).starts_with("memsleuth: warning: cut.msl was cut short (no trailer)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_teaches() {
    let d = dir();
    let o = memsleuth(&d, &["report", "pymalloc", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    assert!(help.contains("fragmentation, not a leak"), "{help}");
    assert!(help.contains("memsleuth.pymalloc()"), "{help}");
    assert!(
        help.contains("memsleuth report pymalloc out.msl --json"),
        "{help}"
    );
    let o = memsleuth(&d, &["report", "gc", "--help"]);
    let help = stdout(&o);
    assert!(help.contains("p50, p99 and longest"), "{help}");
    assert!(help.contains("gc.garbage"), "{help}");
    let o = memsleuth(&d, &["report", "--help"]);
    let help = stdout(&o);
    assert!(help.contains("pymalloc "), "{help}");
    assert!(help.contains("gc "), "{help}");
}
