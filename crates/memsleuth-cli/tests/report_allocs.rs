//! `memsleuth report leaks|peak|table|tree|diff|summary` on synthetic captures, through the
//! real binary: what it prints, its exit codes, and one-line errors.

use std::path::{Path, PathBuf};
use std::process::Output;

use memsleuth_format::{
    AllocEvent, CaptureWriter, Domain, EndReason, EventKind, Events, ExitStatus, Frame, Header,
    ProcessReading, Record, Sample, StackNode, ThreadInfo, Trailer,
};

const KIB: u64 = 1024;

mod common;
use common::{dir as scratch, memsleuth, stderr, stdout};

fn dir() -> common::TempDir {
    scratch("allocs")
}

/// A capture as `memsleuth run` writes it, for a program in `cwd`: a steady leak in
/// `handle()`, a cache that fills in the first quarter, churn, and RSS samples.
struct Run {
    w: CaptureWriter<Vec<u8>>,
}

impl Run {
    fn new(cwd: &Path, instruments: &[&str]) -> Self {
        let header = Header {
            tool_version: "test".into(),
            pid: 77,
            argv: vec!["python".into(), "server.py".into()],
            start_unix_ns: 1_700_000_000_000_000_000,
            python_version: "3.12.0".into(),
            instruments: instruments.iter().map(|s| s.to_string()).collect(),
            sample_interval_ns: 100_000_000,
            sample_bytes: 0,
            hostname: "test".into(),
        };
        let mut w = CaptureWriter::new(Vec::new(), &header).expect("header");
        let file = |name: &str| cwd.join(name).to_string_lossy().into_owned();
        let frames = [
            (1, "main", file("server.py"), 90),
            (2, "handle", file("server.py"), 27),
            (3, "remember", file("cache.py"), 12),
            (4, "parse", file("server.py"), 60),
        ];
        for (id, function, file, line) in frames {
            w.push(&Record::Frame(Frame {
                id,
                function: function.into(),
                file,
                line,
            }));
        }
        for (id, parent, frame) in [(1, 0, 1), (2, 1, 2), (3, 1, 3), (4, 1, 4)] {
            w.push(&Record::Stack(StackNode { id, parent, frame }));
        }
        w.push(&Record::Thread(ThreadInfo {
            id: 1,
            native_id: 1234,
            name: "MainThread".into(),
        }));
        Run { w }
    }

    fn events(&mut self, events: Vec<AllocEvent>) {
        self.w.push(&Record::Events(Events { thread: 1, events }));
        self.w.flush().expect("flush");
    }

    fn sample(&mut self, t_ns: u64, rss: u64) {
        self.w.push(&Record::Sample(Sample {
            t_ns,
            readings: vec![ProcessReading {
                pid: 77,
                rss: Some(rss),
                ..ProcessReading::default()
            }],
        }));
    }

    fn finish(self, end_ns: u64) -> Vec<u8> {
        self.w
            .finish(Trailer {
                end_ns,
                reason: EndReason::TargetExited,
                target_status: ExitStatus::Code(0),
                ..Trailer::default()
            })
            .expect("finish")
    }
}

fn alloc(t_ns: u64, addr: u64, size: u64, stack: u32) -> AllocEvent {
    AllocEvent {
        kind: EventKind::Alloc,
        domain: Domain::Obj,
        t_ns,
        addr,
        size,
        stack,
    }
}

fn free(t_ns: u64, addr: u64) -> AllocEvent {
    AllocEvent {
        kind: EventKind::Free,
        domain: Domain::Obj,
        t_ns,
        addr,
        size: 0,
        stack: 0,
    }
}

/// 10 s: `handle()` leaks `leak` bytes every 10 ms, `remember()` fills a 250-entry cache.
fn leaky_run(cwd: &Path, leak: u64) -> Run {
    let mut run = Run::new(cwd, &["python", "rss"]);
    let mut entries = std::collections::VecDeque::new();
    let mut addr = 0x10_0000u64;
    for flush in 0..50u64 {
        let mut batch = Vec::new();
        for step in 0..20u64 {
            let t = (flush * 20 + step) * 10_000_000;
            addr += 0x100;
            batch.push(alloc(t, addr, leak, 2));
            addr += 0x100;
            batch.push(alloc(t, addr, 8 * KIB, 3));
            entries.push_back(addr);
            if t >= 2_500_000_000 {
                if let Some(old) = entries.pop_front() {
                    batch.push(free(t + 1000, old));
                }
            }
            addr += 0x100;
            batch.push(alloc(t + 2000, addr, 16 * KIB, 4));
            batch.push(free(t + 3000, addr));
        }
        run.sample(flush * 200_000_000, (50 << 20) + flush * (64 << 10));
        run.events(batch);
    }
    run
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write capture");
    p
}

fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("memsleuth: error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

#[test]
fn leaks_names_the_growing_site_first_with_its_stack() {
    let d = dir();
    write(
        &d,
        "run.msl",
        &leaky_run(&d, 2 * KIB).finish(10_000_000_000),
    );
    let o = memsleuth(&d, &["report", "leaks", "run.msl"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "memsleuth leaks · python server.py (pid 77) · 10.0 s · Python 3.12.0"
    );
    // the one verdict first, then the totals
    assert_eq!(
        lines[1],
        "Verdict: leaking — 1 finding over the run's 10.0 s"
    );
    assert!(
        lines[2].starts_with("  1. server.py:27 handle() keeps +200"),
        "{out}"
    );
    assert!(
        out.contains(
            "  Leaks: 3.9 MiB in 1,250 blocks still alive at exit, allocated at 2 sites\n"
        ),
        "{out}"
    );
    // paths relative to the current directory, the leak first, its caller below it
    assert!(
        out.contains("  2.0 MiB        1,000  server.py:27 handle()"),
        "{out}"
    );
    assert!(out.contains("← main()  server.py:90"), "{out}");
    assert!(out.contains("cache.py:12 remember()"), "{out}");
    assert!(out.contains("plateau"), "{out}");
    assert!(!out.contains("parse()"), "{out}");
}

#[test]
fn leaks_json_top_at_and_windows() {
    let d = dir();
    write(
        &d,
        "run.msl",
        &leaky_run(&d, 2 * KIB).finish(10_000_000_000),
    );
    let o = memsleuth(&d, &["report", "leaks", "run.msl", "--json", "--top", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(json["site_count"], 2);
    assert_eq!(json["sites"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["sites"][0]["function"], "handle");
    assert_eq!(json["sites"][0]["verdict"]["kind"], "growing");
    assert_eq!(json["growing"], 1);
    // half-way through: half the leak, the cache full
    let o = memsleuth(&d, &["report", "leaks", "run.msl", "--json", "--at", "5"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(json["at"], 5.0);
    assert_eq!(json["at_end"], false);
    assert_eq!(json["sites"][1]["bytes"], 501 * 2 * KIB);
    // past the end is a mistake, not "at exit"
    let o = memsleuth(&d, &["report", "leaks", "run.msl", "--at", "1m30s"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--at 90.0 s is past the end of the capture (length 10.0 s)"),
        "{}",
        stderr(&o)
    );
    // no windows: no verdicts
    let o = memsleuth(&d, &["report", "leaks", "run.msl", "--windows", "0"]);
    let out = stdout(&o);
    assert!(!out.contains("growing"), "{out}");
    assert!(!out.contains("plateau"), "{out}");
}

#[test]
fn peak_table_and_tree_read_the_same_capture() {
    let d = dir();
    write(
        &d,
        "run.msl",
        &leaky_run(&d, 2 * KIB).finish(10_000_000_000),
    );
    let o = memsleuth(&d, &["report", "peak", "run.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Peak: 3.9 MiB in 1,251 blocks alive at 10.0 s"),
        "{out}"
    );
    let o = memsleuth(&d, &["report", "table", "run.msl"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.contains("Allocated while tracking: 25.4 MiB in 3,000 blocks at 3 sites"),
        "{out}"
    );
    assert!(
        out.contains(
            "    15.6 MiB       1,000    15.6 MiB         0 B         0  server.py:60 parse()"
        ),
        "{out}"
    );
    let o = memsleuth(&d, &["report", "tree", "run.msl", "--depth", "1"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.contains("  100.0%    25.4 MiB     3.9 MiB  main()  server.py:90"),
        "{out}"
    );
    assert!(
        out.contains("   61.5%    15.6 MiB         0 B  ├─ parse()  server.py:60"),
        "{out}"
    );
    for kind in ["peak", "table", "tree"] {
        let o = memsleuth(&d, &["report", kind, "run.msl", "--json"]);
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", stderr(&o));
        let _: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    }
}

#[test]
fn diff_fails_over_the_threshold_for_ci() {
    let d = dir();
    write(&d, "a.msl", &leaky_run(&d, KIB).finish(10_000_000_000));
    write(&d, "b.msl", &leaky_run(&d, 3 * KIB).finish(10_000_000_000));
    let o = memsleuth(&d, &["report", "diff", "a.msl", "b.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Leaked at the end: 2.9 MiB in A, 4.9 MiB in B (+2.0 MiB)"),
        "{out}"
    );
    assert!(
        out.contains("     +2.0 MiB    1000 KiB     2.9 MiB  server.py:27 handle()"),
        "{out}"
    );
    let o = memsleuth(
        &d,
        &["report", "diff", "a.msl", "b.msl", "--fail-over", "1MiB"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "memsleuth: check failed: b.msl leaks 2.0 MiB more than a.msl (allowed: 1.0 MiB)"
        ),
        "{err}"
    );
    let o = memsleuth(
        &d,
        &["report", "diff", "a.msl", "b.msl", "--fail-over", "3M"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = memsleuth(
        &d,
        &["report", "diff", "b.msl", "a.msl", "--fail-over", "0"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = memsleuth(&d, &["report", "diff", "a.msl", "b.msl", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(json["growth_bytes"], 2000 * KIB);
    let o = memsleuth(
        &d,
        &["report", "diff", "a.msl", "b.msl", "--fail-over", "lots"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(one_error_line(&o).contains("not a size"));
}

#[test]
fn a_capture_without_allocations_says_how_to_record_them() {
    let d = dir();
    let mut run = Run::new(&d, &["rss"]);
    run.sample(0, 1 << 20);
    write(&d, "watch.msl", &run.finish(1_000_000_000));
    for kind in ["leaks", "peak", "table", "tree"] {
        let o = memsleuth(&d, &["report", kind, "watch.msl"]);
        assert_eq!(o.status.code(), Some(1), "{kind}");
        let line = one_error_line(&o);
        assert!(line.contains("watch.msl"), "{line}");
        assert!(line.contains("no allocation events"), "{line}");
        assert!(line.contains("memsleuth run"), "{line}");
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn unreadable_captures_are_one_line_errors() {
    let d = dir();
    let o = memsleuth(&d, &["report", "leaks", "missing.msl"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        one_error_line(&o),
        "memsleuth: error: capture missing.msl does not exist"
    );
    write(&d, "junk.msl", b"this is not a capture at all");
    for kind in ["leaks", "peak", "table", "tree"] {
        let o = memsleuth(&d, &["report", kind, "junk.msl"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(one_error_line(&o).contains("not a memsleuth capture"));
    }
    let o = memsleuth(&d, &["report", "diff", "junk.msl", "missing.msl"]);
    assert_eq!(o.status.code(), Some(1));
    one_error_line(&o);
    let o = memsleuth(&d, &["report", "leaks", "junk.msl", "--at", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_error_line(&o).contains("not a time"));
}

#[test]
fn a_damaged_capture_is_reported_then_fails() {
    let d = dir();
    let full = leaky_run(&d, 2 * KIB).finish(10_000_000_000);
    write(&d, "cut.msl", &full[..full.len() * 2 / 3]);
    let o = memsleuth(&d, &["report", "leaks", "cut.msl"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.starts_with("memsleuth leaks"), "{out}");
    assert!(
        out.contains("warning: the capture is damaged: capture is truncated at byte"),
        "{out}"
    );
    let line = one_error_line(&o);
    assert!(line.contains("cut.msl"), "{line}");
    assert!(
        line.contains("the report covers what was read before it"),
        "{line}"
    );
}

#[test]
fn a_capture_cut_at_a_flush_only_warns() {
    let d = dir();
    let mut run = Run::new(&d, &["python"]);
    run.events(vec![alloc(0, 0x10, 100, 2), alloc(1_000_000, 0x20, 100, 2)]);
    write(&d, "killed.msl", &run.w.abandon());
    let o = memsleuth(&d, &["report", "leaks", "killed.msl"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("Leaks: 200 B in 2 blocks still alive at the end of the capture"),
        "{out}"
    );
    assert!(
        out.contains("the capture was cut short (no trailer)"),
        "{out}"
    );
    let err = stderr(&o);
    assert!(
        err.starts_with("memsleuth: warning: killed.msl was cut short"),
        "{err}"
    );
}

#[test]
fn summary_adds_the_leak_headline_when_there_are_allocations() {
    let d = dir();
    write(
        &d,
        "run.msl",
        &leaky_run(&d, 2 * KIB).finish(10_000_000_000),
    );
    let o = memsleuth(&d, &["report", "summary", "run.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("memsleuth · python server.py (pid 77)"),
        "{out}"
    );
    assert!(out.contains("  verdict: "), "{out}");
    // the one verdict, worded as `run` and `report leaks` word it
    assert!(
        out.contains("  Verdict: leaking — 1 finding over the run's 10.0 s"),
        "{out}"
    );
    assert!(
        out.contains("    1. server.py:27 handle() keeps +200 KiB/s of Python memory"),
        "{out}"
    );
    assert!(
        out.contains(
            "    Leaks: 3.9 MiB in 1,250 blocks still alive at exit, allocated at 2 sites\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  details: memsleuth report verdict run.msl"),
        "{out}"
    );
    let o = memsleuth(&d, &["report", "summary", "run.msl", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(json["leaks"]["growing"], 1);
    assert_eq!(json["leaks"]["leaking"][0]["function"], "handle");
    assert!(json["verdict"]["kind"].is_string());

    // a capture without allocation events: as before, no `leaks`
    let mut run = Run::new(&d, &["rss"]);
    for i in 0..20 {
        run.sample(i * 100_000_000, 10 << 20);
    }
    write(&d, "watch.msl", &run.finish(2_000_000_000));
    let o = memsleuth(&d, &["report", "summary", "watch.msl", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert!(json.get("leaks").is_none());
    let o = memsleuth(&d, &["report", "summary", "watch.msl"]);
    assert!(!stdout(&o).contains("Leaks:"));

    // allocations but no memory samples: the leak summary alone
    let mut run = Run::new(&d, &["python"]);
    run.events(vec![alloc(0, 0x10, 100, 2)]);
    write(&d, "bare.msl", &run.finish(1_000_000));
    let o = memsleuth(&d, &["report", "summary", "bare.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Leaks: 100 B in 1 block still alive at exit"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn help_teaches_each_report() {
    let d = dir();
    for (kind, words) in [
        (
            "leaks",
            &[
                "--at",
                "--top",
                "--windows",
                "growing",
                "plateau",
                "memsleuth run",
            ][..],
        ),
        ("peak", &["high-water", "--top"][..]),
        ("table", &["allocated", "freed", "--top"][..]),
        ("tree", &["--depth", "call tree"][..]),
        ("diff", &["--fail-over", "exit", "CI"][..]),
    ] {
        let o = memsleuth(&d, &["report", kind, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        let out = stdout(&o);
        for w in words {
            assert!(out.contains(w), "{kind} --help lacks {w}: {out}");
        }
        assert!(out.contains("Examples:"), "{out}");
    }
    let o = memsleuth(&d, &["report", "--help"]);
    let out = stdout(&o);
    for kind in [
        "leaks", "peak", "table", "tree", "diff", "summary", "timeline",
    ] {
        assert!(out.contains(kind), "{out}");
    }
}
