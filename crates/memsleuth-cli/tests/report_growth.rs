//! `memsleuth report growth` on synthetic captures, through the real binary: the growing type and
//! where it was allocated, JSON, census choice, and one-line errors.

use std::path::{Path, PathBuf};
use std::process::Output;

use memsleuth_format::{
    AllocEvent, CaptureWriter, Census, CensusType, Domain, EndReason, EventKind, Events,
    ExitStatus, Frame, Header, ProcessReading, Record, Sample, StackNode, ThreadInfo, Trailer,
};

mod common;
use common::{dir as scratch, memsleuth, stderr, stdout};

fn dir() -> common::TempDir {
    scratch("growth")
}

fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("memsleuth: error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

fn s(t: f64) -> u64 {
    (t * 1e9).round() as u64
}

fn writer(instruments: &[&str]) -> CaptureWriter<Vec<u8>> {
    let header = Header {
        tool_version: "test".into(),
        pid: 88,
        argv: vec!["python".into(), "server.py".into()],
        start_unix_ns: 1_700_000_000_000_000_000,
        python_version: "3.12.0".into(),
        instruments: instruments.iter().map(|s| s.to_string()).collect(),
        sample_interval_ns: 100_000_000,
        hostname: "test".into(),
        ..Header::default()
    };
    CaptureWriter::new(Vec::new(), &header).expect("header")
}

fn finish(w: CaptureWriter<Vec<u8>>, end: f64) -> Vec<u8> {
    w.finish(Trailer {
        end_ns: s(end),
        reason: EndReason::TargetExited,
        target_status: ExitStatus::Code(0),
        ..Trailer::default()
    })
    .expect("finish")
}

fn census(t: f64, rows: &[(&str, u64, Vec<u64>)]) -> Record {
    let types: Vec<CensusType> = rows
        .iter()
        .map(|(name, count, samples)| CensusType {
            name: name.to_string(),
            count: *count,
            bytes: 56 * count,
            retained: None,
            samples: samples.clone(),
        })
        .collect();
    census_of(t, types)
}

fn census_of(t: f64, types: Vec<CensusType>) -> Record {
    Record::Census(Census {
        t_ns: s(t),
        duration_ns: 2_000_000,
        objects: types.iter().map(|r| r.count).sum(),
        bytes: types.iter().map(|r| r.bytes).sum(),
        gc_enabled: true,
        gc_counts: vec![100, 2, 0],
        unreachable: 0,
        unreachable_bytes: 0,
        garbage: 0,
        types,
        garbage_types: Vec::new(),
    })
}

fn alloc(t: f64, addr: u64, stack: u32) -> AllocEvent {
    AllocEvent {
        kind: EventKind::Alloc,
        domain: Domain::Obj,
        t_ns: s(t),
        addr,
        size: 56,
        stack,
    }
}

/// `memsleuth run` of a server in `cwd`: ten censuses, one every 0.5 s from 0.5 s. Sessions grow
/// by 5 a census (10 a second), the dict population stays put, lists jump once at start-up. The
/// last census keeps four session addresses: three allocated by `handle()`, one by `restore()`.
fn server_run(cwd: &Path) -> Vec<u8> {
    let mut w = writer(&["objects", "python", "rss"]);
    let file = |name: &str| cwd.join(name).to_string_lossy().into_owned();
    for (id, function, file, line) in [
        (1, "<module>", file("server.py"), 90),
        (2, "handle", file("server.py"), 27),
        (3, "restore", file("sessions.py"), 12),
    ] {
        w.push(&Record::Frame(Frame {
            id,
            function: function.into(),
            file,
            line,
        }));
    }
    for (id, parent, frame) in [(1, 0, 1), (2, 1, 2), (3, 1, 3)] {
        w.push(&Record::Stack(StackNode { id, parent, frame }));
    }
    w.push(&Record::Thread(ThreadInfo {
        id: 1,
        native_id: 4242,
        name: "MainThread".into(),
    }));
    let kept = [0x7000u64, 0x7100, 0x7200, 0x7300];
    let mut addr = 0x10_0000u64;
    for i in 0..10u64 {
        let t = 0.5 + 0.5 * i as f64;
        let mut events = Vec::new();
        for k in 0..5u64 {
            addr += 0x40;
            events.push(alloc(t - 0.4 + 0.05 * k as f64, addr, 2));
        }
        if i == 4 {
            events.push(alloc(t - 0.1, kept[0], 2));
            events.push(alloc(t - 0.09, kept[1], 2));
            events.push(alloc(t - 0.08, kept[2], 2));
            events.push(alloc(t - 0.07, kept[3], 3));
        }
        w.push(&Record::Events(Events { thread: 1, events }));
        w.push(&Record::Sample(Sample {
            t_ns: s(t),
            readings: vec![ProcessReading {
                pid: 88,
                rss: Some((40 << 20) + i * (1 << 16)),
                ..ProcessReading::default()
            }],
        }));
        let samples = if i == 9 { kept.to_vec() } else { Vec::new() };
        w.push(&census(
            t,
            &[
                ("myapp.Session", 100 + 5 * i, samples),
                ("dict", 4_000 + (i % 3), vec![]),
                ("list", if i == 0 { 50 } else { 900 }, vec![]),
            ],
        ));
        w.flush().expect("flush");
    }
    finish(w, 5.2)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write capture");
    p
}

#[test]
fn text_names_the_growing_type_and_where_it_was_allocated() {
    let d = dir();
    write(&d, "run.msl", &server_run(&d));
    let o = memsleuth(&d, &["report", "growth", "run.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("memsleuth growth · python server.py (pid 88)"),
        "{out}"
    );
    assert_eq!(lines[1], "1 type growing: myapp.Session +10/s", "{out}");
    let session = lines
        .iter()
        .position(|l| l.trim_start().starts_with("myapp.Session"))
        .expect("a session row");
    assert!(
        lines[session].contains("100 → 145") && lines[session].ends_with("growing +10/s"),
        "{out}"
    );
    assert_eq!(
        lines[session + 1].trim(),
        "allocated at server.py:27 handle() (3 of 4 samples)",
        "{out}"
    );
    assert_eq!(
        lines[session + 2].trim(),
        "← <module>  server.py:90",
        "{out}"
    );
    assert_eq!(
        lines[session + 3].trim(),
        "allocated at sessions.py:12 restore() (1 of 4 samples)",
        "{out}"
    );
    let list = lines
        .iter()
        .find(|l| l.trim_start().starts_with("list"))
        .expect("a list row");
    assert!(list.ends_with("warm-up only"), "{out}");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn json_parses_and_carries_sites_and_censuses() {
    let d = dir();
    write(&d, "run.msl", &server_run(&d));
    let o = memsleuth(&d, &["report", "growth", "run.msl", "--json", "--top", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["basis"], "trend");
    assert_eq!(v["growing"], 1);
    assert_eq!(v["type_count"], 3);
    assert_eq!(v["types"].as_array().map(Vec::len), Some(2));
    let session = &v["types"][0];
    assert_eq!(session["name"], "myapp.Session");
    assert_eq!(session["verdict"]["kind"], "growing");
    assert!((session["verdict"]["rate"].as_f64().unwrap() - 10.0).abs() < 1e-6);
    assert_eq!(session["sites"][0]["location"]["function"], "handle");
    assert_eq!(session["sites"][0]["samples"], 3);
    assert_eq!(session["samples"], 4);
    assert_eq!(v["censuses"].as_array().map(Vec::len), Some(10));
    assert_eq!(v["sites_at"], 9);
    assert!(v["headline"]
        .as_str()
        .unwrap()
        .starts_with("1 type growing: myapp.Session"));
}

#[test]
fn from_and_to_choose_censuses_and_few_make_a_diff() {
    let d = dir();
    write(&d, "run.msl", &server_run(&d));
    // censuses #3 (1.5 s) and the one nearest 2.6 s (#5 at 2.5 s): three, so a difference
    let o = memsleuth(
        &d,
        &["report", "growth", "run.msl", "--from=#3", "--to", "2.6"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("1 type grew from census #3 (1.5 s) to #5 (2.5 s): myapp.Session +10"),
        "{out}"
    );
    assert!(out.contains("only 3 censuses: a plain difference"), "{out}");
    // a census the capture does not have
    let o = memsleuth(&d, &["report", "growth", "run.msl", "--to", "#11"]);
    assert_eq!(o.status.code(), Some(1));
    let line = one_error_line(&o);
    assert!(
        line.contains("there is no census #11: the capture has 10 (#1 to #10)"),
        "{line}"
    );
    let o = memsleuth(&d, &["report", "growth", "run.msl", "--from=#0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(one_error_line(&o).contains("numbered from #1"));
}

#[test]
fn two_censuses_without_events_are_a_plain_difference() {
    let d = dir();
    let mut w = writer(&["objects"]);
    w.push(&census(
        1.0,
        &[("app.Job", 10, vec![0x10]), ("set", 3, vec![])],
    ));
    w.push(&census(
        4.0,
        &[("app.Job", 70, vec![0x10]), ("set", 3, vec![])],
    ));
    write(&d, "two.msl", &finish(w, 5.0));
    let o = memsleuth(&d, &["report", "growth", "two.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("1 type grew from census #1 (1.0 s) to #2 (4.0 s): app.Job +60"),
        "{out}"
    );
    assert!(out.contains("only 2 censuses: a plain difference"), "{out}");
    assert!(out.contains("no allocation events"), "{out}");
    let o = memsleuth(&d, &["report", "growth", "two.msl", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["basis"], "diff");
    assert_eq!(v["types"][0]["delta_count"], 60);
}

#[test]
fn a_capture_without_census_says_how_to_take_one() {
    let d = dir();
    let mut w = writer(&["rss"]);
    w.push(&Record::Sample(Sample {
        t_ns: 0,
        readings: vec![ProcessReading {
            pid: 88,
            rss: Some(1 << 20),
            ..ProcessReading::default()
        }],
    }));
    write(&d, "watch.msl", &finish(w, 1.0));
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["report", "growth", "watch.msl"];
        args.extend_from_slice(extra);
        let o = memsleuth(&d, &args);
        assert_eq!(o.status.code(), Some(1));
        let line = one_error_line(&o);
        assert!(line.contains("watch.msl"), "{line}");
        assert!(line.contains("no object census"), "{line}");
        assert!(line.contains("memsleuth run"), "{line}");
        assert!(
            line.contains("memsleuth.Tracker(path, census=1.0)"),
            "{line}"
        );
        assert!(stdout(&o).is_empty());
    }
    let o = memsleuth(&d, &["report", "growth", "missing.msl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_error_line(&o).contains("does not exist"));
}

#[test]
fn help_teaches_the_growth_report() {
    let d = dir();
    let o = memsleuth(&d, &["report", "growth", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for w in [
        "census",
        "growing",
        "warm-up only",
        "objgraph",
        "--from",
        "--to",
        "--top",
        "--json",
        "Examples:",
        "memsleuth report growth out.msl",
        "--from=#3",
        "memsleuth run",
        "memsleuth.census()",
    ] {
        assert!(out.contains(w), "growth --help lacks {w}: {out}");
    }
    let o = memsleuth(&d, &["report", "--help"]);
    assert!(stdout(&o).contains("growth"));
}

#[test]
fn a_damaged_capture_is_reported_up_to_the_damage_then_fails() {
    let d = dir();
    let bytes = server_run(&d);
    // chunk 0 is the header and chunk k holds census #k: a cut inside chunk 7 keeps six
    let chunks: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"MSLC")
        .map(|(i, _)| i)
        .collect();
    let cut = chunks[7] + 20;
    write(&d, "cut.msl", &bytes[..cut]);
    let o = memsleuth(&d, &["report", "growth", "cut.msl"]);
    assert_eq!(o.status.code(), Some(1));
    let line = one_error_line(&o);
    assert!(line.contains("truncated at byte"), "{line}");
    let out = stdout(&o);
    assert!(out.contains("1 type growing: myapp.Session +10/s"), "{out}");
    assert!(out.contains("6 censuses"), "{out}");
}

/// A census of `rows` types at each of five times; every other type grows by 20 instances a
/// census and keeps one sample address, allocated at `handle()`. Large enough that a step
/// quadratic in the number of types takes many seconds.
fn many_types(cwd: &Path, rows: u64) -> Vec<u8> {
    let mut w = writer(&["objects", "python"]);
    w.push(&Record::Frame(Frame {
        id: 1,
        function: "handle".into(),
        file: cwd.join("server.py").to_string_lossy().into_owned(),
        line: 27,
    }));
    w.push(&Record::Stack(StackNode {
        id: 1,
        parent: 0,
        frame: 1,
    }));
    w.push(&Record::Thread(ThreadInfo {
        id: 1,
        native_id: 4242,
        name: "MainThread".into(),
    }));
    let sample = |k: u64| 0x100_0000 + 0x40 * k;
    let events = (0..rows)
        .step_by(2)
        .map(|k| alloc(0.1, sample(k), 1))
        .collect();
    w.push(&Record::Events(Events { thread: 1, events }));
    w.flush().expect("flush");
    for i in 0..5u64 {
        let types: Vec<CensusType> = (0..rows)
            .map(|k| {
                let count = if k % 2 == 0 { 100 + 20 * i } else { 100 };
                CensusType {
                    name: format!("pkg.T{k:06}"),
                    count,
                    bytes: 56 * count,
                    retained: None,
                    samples: if k % 2 == 0 { vec![sample(k)] } else { vec![] },
                }
            })
            .collect();
        w.push(&census_of(1.0 + i as f64, types));
        w.flush().expect("flush");
    }
    finish(w, 6.0)
}

#[test]
fn a_census_of_a_hundred_thousand_types_is_reported_whole() {
    let d = dir();
    write(&d, "many.msl", &many_types(&d, 120_000));
    let o = memsleuth(
        &d,
        &["report", "growth", "many.msl", "--json", "--top", "3"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["basis"], "trend");
    assert_eq!(v["type_count"], 120_000);
    assert_eq!(v["growing"], 60_000);
    // equal rates: by name
    let first = &v["types"][0];
    assert_eq!(first["name"], "pkg.T000000");
    assert_eq!(first["to_count"], 180);
    assert_eq!(first["samples"], 1);
    assert_eq!(first["sites"][0]["location"]["function"], "handle");
    assert_eq!(v["types"][1]["name"], "pkg.T000002");
    let o = memsleuth(&d, &["report", "growth", "many.msl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("60,000 types growing: pkg.T000000 +20/s"),
        "{}",
        stdout(&o)
    );
}
