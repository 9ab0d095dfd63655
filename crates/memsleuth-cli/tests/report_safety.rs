//! Reports facing hostile input, through the real binary: outputs that would overwrite the
//! capture, damaged / cut-short / complete captures told apart by every report, names carrying
//! terminal escape sequences, and paths that are not regular files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use memsleuth_format::{
    AllocEvent, CaptureWriter, Census, CensusType, Domain, EndReason, EventKind, Events,
    ExitStatus, Frame, GcCollection, Header, Holder, HolderStep, Mark, ProcessInfo, ProcessReading,
    Pymalloc, Record, Sample, SizeClass, StackNode, ThreadInfo, Trailer,
};

mod common;
use common::{dir as scratch, memsleuth, stderr, stdout};

fn dir() -> common::TempDir {
    scratch("safety")
}

const S: u64 = 1_000_000_000;

/// Names a program can give itself (`compile(src, name, "exec")`, `co_name=...`): a title
/// change, a screen clear, NUL, backspace.
const FILE: &str = "\x1b]0;pwned\x07evil.py";
const FUNCTION: &str = "grow\x1b[2J\x08";
const TYPE: &str = "app.\x1b[31mSession\x00";

/// Every control character a test name carries; none may reach a terminal raw.
fn raw_controls(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|&b| matches!(b, 0x1b | 0x00 | 0x08 | 0x07))
        .collect()
}

fn header(argv: &[&str]) -> Header {
    Header {
        tool_version: "test".into(),
        pid: 88,
        argv: argv.iter().map(|s| s.to_string()).collect(),
        start_unix_ns: 1_700_000_000_000_000_000,
        python_version: "3.11.7\x1b[0m (main)".into(),
        instruments: ["rss", "python", "objects", "gc", "pymalloc"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        sample_interval_ns: S / 2,
        sample_bytes: 0,
        hostname: "box\x1b".into(),
    }
}

fn pymalloc(t_ns: u64, used: u64) -> Record {
    Record::Pymalloc(Pymalloc {
        t_ns,
        allocated_blocks: used,
        arena_size: 1 << 20,
        pool_size: 16 << 10,
        arenas_allocated_total: 4,
        arenas_highwater: 4,
        arenas_now: 4,
        bytes_in_use: used * 64,
        bytes_free_blocks: 640,
        unused_pools: 10,
        bytes_pool_headers: 480,
        classes: vec![SizeClass {
            size: 64,
            pools: 10,
            blocks_in_use: used,
            blocks_free: 10,
        }],
        ..Pymalloc::default()
    })
}

/// A run of `app` whose names are hostile: a site in a file named with an OSC title sequence
/// grows 50 blocks a second, a census type with a colour sequence and a NUL grows with it, a
/// holder keeps both, gc.garbage holds a hostile type, and a child process has a hostile
/// command line. Ten chunks of data after the header, then the trailer (when `finish`).
fn hostile_run(argv: &[&str], finish: bool) -> Vec<u8> {
    hostile_steps(argv, finish, 10)
}

/// [`hostile_run`] with `steps` chunks of data.
fn hostile_steps(argv: &[&str], finish: bool, steps: u64) -> Vec<u8> {
    let mut w = CaptureWriter::new(Vec::new(), &header(argv)).expect("header");
    for (id, function, file, line) in [
        (1, "<module>", FILE, 1),
        (2, FUNCTION, FILE, 10),
        (3, "cache\x1b[K", "lib\x08.py", 5),
    ] {
        w.push(&Record::Frame(Frame {
            id,
            function: function.into(),
            file: file.into(),
            line,
        }));
    }
    for (id, parent, frame) in [(1, 0, 1), (2, 1, 2), (3, 1, 3)] {
        w.push(&Record::Stack(StackNode { id, parent, frame }));
    }
    w.push(&Record::Thread(ThreadInfo {
        id: 1,
        native_id: 1,
        name: "Main\x1bThread".into(),
    }));
    for (pid, ppid, argv) in [
        (88, 1, argv.to_vec()),
        (89, 88, vec!["worker\x1b[5m", "-x"]),
    ] {
        w.push(&Record::Process(ProcessInfo {
            pid,
            ppid,
            seen_ns: 0,
            argv: argv.iter().map(|s| s.to_string()).collect(),
        }));
    }
    let mut addr = 0x10_0000u64;
    let mut kept = Vec::new();
    for i in 0..steps {
        let t = S / 2 * (i + 1);
        let mut events = Vec::new();
        for k in 0..25u64 {
            addr += 0x400;
            events.push(AllocEvent {
                kind: EventKind::Alloc,
                domain: Domain::Obj,
                t_ns: t - S / 2 + k * (S / 50),
                addr,
                size: 1000,
                stack: 2,
            });
            if k == 0 {
                kept.push(addr);
            }
        }
        if i == 0 {
            events.push(AllocEvent {
                kind: EventKind::Alloc,
                domain: Domain::Mem,
                t_ns: t - S / 4,
                addr: 0x9000_0000,
                size: 4096,
                stack: 3,
            });
        }
        w.push(&Record::Events(Events { thread: 1, events }));
        w.push(&Record::Sample(Sample {
            t_ns: t,
            readings: vec![
                ProcessReading {
                    pid: 88,
                    rss: Some((40 << 20) + i * (1 << 20)),
                    ..ProcessReading::default()
                },
                ProcessReading {
                    pid: 89,
                    rss: Some(10 << 20),
                    ..ProcessReading::default()
                },
            ],
        }));
        let types = vec![
            CensusType {
                name: TYPE.into(),
                count: 100 + 25 * i,
                bytes: 56 * (100 + 25 * i),
                retained: None,
                samples: kept.iter().rev().take(3).copied().collect(),
            },
            CensusType {
                name: "dict".into(),
                count: 500,
                bytes: 500 * 232,
                retained: None,
                samples: Vec::new(),
            },
        ];
        w.push(&Record::Census(Census {
            t_ns: t,
            duration_ns: S / 1000,
            objects: types.iter().map(|r| r.count).sum(),
            bytes: types.iter().map(|r| r.bytes).sum(),
            gc_enabled: true,
            gc_counts: vec![10, 1, 0],
            unreachable: 0,
            unreachable_bytes: 0,
            garbage: 3,
            types,
            garbage_types: vec![("\x1b]0;g\x07Garbage".into(), 3)],
        }));
        w.push(&Record::Gc(GcCollection {
            t_ns: t,
            duration_ns: 200_000,
            generation: 0,
            collected: 10,
            uncollectable: 1,
        }));
        w.push(&pymalloc(t, 1000 + 100 * i));
        w.push(&Record::Mark(Mark {
            t_ns: t,
            label: format!("step\x1b[1m{i}"),
        }));
        w.flush().expect("flush");
    }
    let steps = |last: &str| -> Vec<HolderStep> {
        [
            ("", "module", "<module '\x1b]0;m\x07'>"),
            (".CACHE\x1b", "list", "list (10 items)"),
            ("[0]", last, "<\x1b[2J object>"),
        ]
        .iter()
        .map(|&(edge, type_name, repr)| HolderStep {
            edge: edge.into(),
            type_name: type_name.into(),
            repr: repr.into(),
            addr: 0,
            size: 56,
        })
        .collect()
    };
    // who keeps a leaked block of the site, and an instance of the growing type
    w.push(&Record::Holder(Holder {
        stack: 2,
        addr: kept[kept.len() - 1],
        root_kind: 0,
        root: "module \x1b[1mapp".into(),
        steps: steps("bytes"),
    }));
    w.push(&Record::Holder(Holder {
        stack: 0,
        addr: kept[kept.len() - 2],
        root_kind: 0,
        root: "module \x1b[1mapp".into(),
        steps: steps(TYPE),
    }));
    if !finish {
        w.flush().expect("flush");
        return w.abandon();
    }
    w.finish(Trailer {
        end_ns: 5 * S + S / 10,
        reason: EndReason::TargetExited,
        target_status: ExitStatus::Code(0),
        samples: 10,
        ..Trailer::default()
    })
    .expect("finish")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write capture");
    p
}

/// Where each chunk starts.
fn chunks(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"MSLC")
        .map(|(i, _)| i)
        .collect()
}

/// Every report that prints text, as arguments after the capture's name.
const TEXT_REPORTS: &[&[&str]] = &[
    &["summary"],
    &["leaks"],
    &["leaks", "--top", "0"],
    &["peak"],
    &["table"],
    &["tree"],
    &["growth"],
    &["gc"],
    &["pymalloc"],
    &["export", "--format", "collapsed"],
];

fn report(d: &Path, kind: &[&str], file: &str) -> Output {
    let mut args = vec!["report", kind[0]];
    if kind[0] == "diff" {
        // diff A B: the capture under test is B
        args.extend_from_slice(&kind[1..]);
        args.push(file);
    } else {
        args.push(file);
        args.extend_from_slice(&kind[1..]);
    }
    memsleuth(d, &args)
}

fn one_line(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end().to_string()
}

/// The one line a report says on stderr, besides the `wrote FILE` of those that write one.
fn end_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("wrote ")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

// --- C: names with control characters -------------------------------------------------------

#[test]
fn no_report_prints_a_control_character_a_program_put_in_a_name() {
    let d = dir();
    write(
        &d,
        "x.msl",
        &hostile_run(&["python", "\x1b[31mapp.py"], true),
    );
    // fewer leaks in A than in x.msl, so the diff lists the site
    write(
        &d,
        "a.msl",
        &hostile_steps(&["python", "\x1b[31mapp.py"], true, 4),
    );
    let mut kinds: Vec<Vec<&str>> = TEXT_REPORTS.iter().map(|k| k.to_vec()).collect();
    kinds.push(vec!["diff", "a.msl"]);
    for kind in &kinds {
        let o = report(&d, kind, "x.msl");
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {out}{}", stderr(&o));
        assert!(
            raw_controls(&o.stdout).is_empty() && raw_controls(&o.stderr).is_empty(),
            "{kind:?} printed raw control characters:\n{out}{}",
            stderr(&o)
        );
        assert!(
            out.contains("\\x1b"),
            "{kind:?} shows the escape spelled out:\n{out}"
        );
    }
    // the names are shown, spelled out, where each report shows them
    let leaks = stdout(&report(&d, &["leaks"], "x.msl"));
    assert!(
        leaks.contains("\\x1b]0;pwned\\x07evil.py:10 grow\\x1b[2J\\x08()"),
        "{leaks}"
    );
    assert!(leaks.contains("held by module \\x1b[1mapp"), "{leaks}");
    let growth = stdout(&report(&d, &["growth"], "x.msl"));
    assert!(growth.contains("app.\\x1b[31mSession\\x00"), "{growth}");
    let gc = stdout(&report(&d, &["gc"], "x.msl"));
    assert!(gc.contains("\\x1b]0;g\\x07Garbage"), "{gc}");
    let summary = stdout(&report(&d, &["summary"], "x.msl"));
    assert!(summary.contains("worker\\x1b[5m -x"), "{summary}");
    // JSON keeps the exact names (its own escaping makes them safe)
    let o = report(&d, &["leaks", "--json"], "x.msl");
    assert!(raw_controls(&o.stdout).is_empty());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["sites"][0]["function"], FUNCTION);
    assert_eq!(v["sites"][0]["file"], FILE);
    // pictures and pages spell them out too
    for (args, file) in [
        (vec!["flamegraph", "x.msl"], "x-leaks.html"),
        (vec!["timeline", "x.msl", "--html"], "x-timeline.html"),
        (vec!["timeline", "x.msl"], "x-timeline.svg"),
    ] {
        let mut all = vec!["report"];
        all.extend(args);
        let o = memsleuth(&d, &all);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let page = std::fs::read(d.join(file)).expect("written");
        assert!(
            raw_controls(&page).is_empty(),
            "{file} has raw control characters"
        );
        assert!(String::from_utf8_lossy(&page).contains("\\x1b"), "{file}");
    }
}

// --- B: damaged, cut short, complete --------------------------------------------------------

/// The reports and, for those that write a file, what they write.
fn every_report() -> Vec<(Vec<&'static str>, Option<&'static str>)> {
    let mut all: Vec<(Vec<&str>, Option<&str>)> =
        TEXT_REPORTS.iter().map(|k| (k.to_vec(), None)).collect();
    all.extend([
        (vec!["summary", "--json"], None),
        (vec!["leaks", "--json"], None),
        (vec!["growth", "--json"], None),
        (vec!["timeline", "--json"], None),
        (vec!["export", "--format", "json"], None),
        (
            vec!["export", "--format", "pprof", "-o", "out.pb.gz"],
            Some("out.pb.gz"),
        ),
        (vec!["flamegraph", "-o", "fg.html"], Some("fg.html")),
        (vec!["timeline", "-o", "tl.html"], Some("tl.html")),
        (vec!["timeline", "-o", "tl.svg"], Some("tl.svg")),
    ]);
    all
}

#[test]
fn every_report_fails_on_a_damaged_capture_and_says_where() {
    let d = dir();
    let full = hostile_run(&["python", "app.py"], true);
    let at = chunks(&full);
    // inside the 8th chunk, a flipped byte in the 6th, a chunk after the trailer
    let truncated = full[..at[8] + 30].to_vec();
    let mut corrupt = full.clone();
    corrupt[at[6] + 40] ^= 0xff;
    let mut appended = full.clone();
    appended.extend_from_slice(&full[at[3]..at[4]]);
    for (name, bytes, says) in [
        ("truncated.msl", &truncated, "truncated at byte"),
        ("corrupt.msl", &corrupt, "corrupt at byte"),
        (
            "appended.msl",
            &appended,
            &*format!("data after the end of the capture at byte {}", full.len()),
        ),
    ] {
        write(&d, name, bytes);
        for (kind, file) in every_report() {
            let o = report(&d, &kind, name);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{name} {kind:?} must fail: {}{}",
                stdout(&o),
                stderr(&o)
            );
            let line = end_line(&o);
            assert!(
                line.starts_with(&format!("memsleuth: error: {name} is damaged: ")),
                "{name} {kind:?}: {line}"
            );
            assert!(line.contains(says), "{name} {kind:?}: {line}");
            if kind
                .iter()
                .any(|k| *k == "json" || *k == "--json" || *k == "pprof")
            {
                continue;
            }
            // the report itself says it too, where people read it
            let shown = match file {
                Some(f) => String::from_utf8_lossy(&std::fs::read(d.join(f)).unwrap()).into_owned(),
                None => stdout(&o),
            };
            if kind[0] == "export" {
                continue; // folded stacks have no place for words
            }
            assert!(
                shown.contains("damaged"),
                "{name} {kind:?} does not say it is damaged:\n{shown}"
            );
        }
    }
}

#[test]
fn every_report_warns_on_a_capture_cut_short_and_succeeds() {
    let d = dir();
    write(&d, "cut.msl", &hostile_run(&["python", "app.py"], false));
    for (kind, file) in every_report() {
        let o = report(&d, &kind, "cut.msl");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{kind:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let line = end_line(&o);
        assert!(
            line.starts_with("memsleuth: warning: cut.msl was cut short (no trailer): its recorder was killed or crashed"),
            "{kind:?}: {line}"
        );
        if kind
            .iter()
            .any(|k| *k == "--json" || *k == "json" || *k == "pprof")
            || kind[0] == "export"
        {
            continue;
        }
        let shown = match file {
            Some(f) => String::from_utf8_lossy(&std::fs::read(d.join(f)).unwrap()).into_owned(),
            None => stdout(&o),
        };
        assert!(shown.contains("cut short"), "{kind:?}:\n{shown}");
        assert!(!shown.contains("damaged"), "{kind:?}:\n{shown}");
    }
    // the HTML pages say it where it is seen, not only in a table
    let page = std::fs::read_to_string(d.join("fg.html")).unwrap();
    assert!(page.contains("<strong>Capture cut short</strong>"));
    let page = std::fs::read_to_string(d.join("tl.html")).unwrap();
    assert!(page.contains("<strong>Capture cut short</strong>"));
}

#[test]
fn a_complete_capture_says_nothing_about_its_end() {
    let d = dir();
    let bytes = hostile_run(&["python", "app.py"], true);
    let flushes = chunks(&bytes).len();
    write(&d, "ok.msl", &bytes);
    for (kind, _) in every_report() {
        let o = report(&d, &kind, "ok.msl");
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            !err.contains("cut short") && !err.contains("damaged"),
            "{kind:?}: {err}"
        );
    }
    let summary = stdout(&report(&d, &["summary"], "ok.msl"));
    assert!(
        summary.contains(&format!("(complete, {flushes} flushes, 0 dropped)")),
        "{summary}"
    );
}

#[test]
fn a_summary_cut_short_counts_the_flushes_it_read() {
    let d = dir();
    let bytes = hostile_run(&["python", "app.py"], false);
    let flushes = chunks(&bytes).len();
    write(&d, "cut.msl", &bytes);
    let summary = stdout(&report(&d, &["summary"], "cut.msl"));
    assert!(
        summary.contains(&format!("(cut short, {flushes} flushes, 0 dropped)")),
        "{summary}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&report(&d, &["summary", "--json"], "cut.msl"))).unwrap();
    assert_eq!(v["end"]["flushes"], flushes as u64);
}

#[test]
fn nothing_found_in_a_damaged_capture_is_blamed_on_the_damage() {
    let d = dir();
    let full = hostile_run(&["python", "app.py"], true);
    // the header's chunk whole, the first data chunk cut: nothing of any kind was read
    let at = chunks(&full);
    write(&d, "early.msl", &full[..at[1] + 20]);
    for (kind, what) in [
        ("growth", "object censuses"),
        ("timeline", "memory samples"),
        ("leaks", "allocation events"),
        ("peak", "allocation events"),
        ("flamegraph", "allocation events"),
        ("pymalloc", "pymalloc snapshots"),
        ("gc", "gc collections or censuses"),
    ] {
        let o = report(&d, &[kind], "early.msl");
        assert_eq!(o.status.code(), Some(1), "{kind}");
        let line = end_line(&o);
        let blamed = format!(
            "early.msl: the capture is damaged before any {what} could be read: capture is \
             truncated at byte"
        );
        // the allocation reports know from the header that allocations were tracked: they
        // report the nothing they read, then fail on the damage
        let reported = "early.msl is damaged: capture is truncated at byte";
        assert!(
            line.contains(&blamed) || (what == "allocation events" && line.contains(reported)),
            "{kind}: {line}"
        );
        for wrong in ["recorded without", "memsleuth watch", "record them"] {
            assert!(!line.contains(wrong), "{kind}: {line}");
        }
    }
}

// --- A: outputs that are inputs -------------------------------------------------------------

#[test]
fn no_report_writes_over_the_capture_it_reads() {
    let d = dir();
    let bytes = hostile_run(&["python", "app.py"], true);
    write(&d, "x.msl", &bytes);
    let abs = d.join("x.msl").to_string_lossy().into_owned();
    let outputs: Vec<Vec<&str>> = vec![
        vec!["flamegraph", "x.msl", "-o", "x.msl"],
        vec!["flamegraph", "x.msl", "-o", "./x.msl"],
        vec!["flamegraph", "x.msl", "--of", "all", "-o", &abs],
        vec!["export", "x.msl", "--format", "json", "-o", "x.msl"],
        vec!["export", "x.msl", "--format", "collapsed", "-o", "x.msl"],
        vec!["export", "x.msl", "--format", "pprof", "-o", "x.msl"],
        vec!["timeline", "x.msl", "--html", "-o", "x.msl"],
        vec!["timeline", "./x.msl", "-o", &abs],
    ];
    for args in outputs {
        let mut all = vec!["report"];
        all.extend(&args);
        let o = memsleuth(&d, &all);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        one_line(&o);
        assert_eq!(std::fs::read(d.join("x.msl")).unwrap(), bytes, "{args:?}");
    }
    // a default output name that is a link to the capture, symbolic or hard
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(d.join("x.msl"), d.join("x-leaks.html")).unwrap();
        std::fs::hard_link(d.join("x.msl"), d.join("x-timeline.svg")).unwrap();
        std::os::unix::fs::symlink("x.msl", d.join("x-timeline.html")).unwrap();
        for args in [
            vec!["report", "flamegraph", "x.msl"],
            vec!["report", "timeline", "x.msl"],
            vec!["report", "timeline", "x.msl", "--html"],
        ] {
            let o = memsleuth(&d, &args);
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            let line = one_line(&o);
            assert!(
                line.contains("the capture this report reads"),
                "{args:?}: {line}"
            );
            assert_eq!(std::fs::read(d.join("x.msl")).unwrap(), bytes, "{args:?}");
        }
    }
    // another name is written as before
    let o = memsleuth(&d, &["report", "flamegraph", "x.msl", "-o", "other.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.join("other.html").is_file());
}

// --- D: paths that are not regular files ----------------------------------------------------

/// Runs the binary, killing it (and failing) if it has not ended within 20 seconds.
fn memsleuth_within(cwd: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memsleuth"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run memsleuth");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("memsleuth {args:?} did not return");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[cfg(unix)]
#[test]
fn fifos_directories_and_devices_are_refused_by_every_report() {
    let d = dir();
    let made = Command::new("mkfifo")
        .arg(d.join("f.msl"))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir(d.join("dir.msl")).unwrap();
    write(&d, "ok.msl", &hostile_run(&["python", "app.py"], true));
    for (path, what) in [
        ("f.msl", "a FIFO"),
        ("dir.msl", "a directory"),
        ("/dev/zero", "a character device"),
    ] {
        let mut kinds: Vec<Vec<&str>> = every_report().into_iter().map(|(k, _)| k).collect();
        kinds.push(vec!["diff", "ok.msl"]);
        for kind in kinds {
            let mut args = vec!["report", kind[0], path];
            args.extend_from_slice(&kind[1..]);
            let o = memsleuth_within(&d, &args);
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            let line = one_line(&o);
            assert!(
                line.starts_with(&format!(
                    "memsleuth: error: {path} is not a regular file ({what}); "
                )),
                "{args:?}: {line}"
            );
        }
    }
    // the second capture of a diff too
    let o = memsleuth_within(&d, &["report", "diff", "ok.msl", "f.msl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line(&o).contains("f.msl is not a regular file (a FIFO)"));
}

// --- E: exit codes on the committed corpus --------------------------------------------------

/// `tests/fixtures/hostile/`, by what a report makes of each file.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hostile")
}

/// Files no report can read: the error names the file and why.
const UNREADABLE: &[(&str, &str)] = &[
    ("empty.msl", "empty file"),
    ("foreign.msl", "not a memsleuth capture"),
    (
        "future-major-version.msl",
        "capture format 2.2 is not readable",
    ),
    ("preamble-only.msl", "truncated at byte 16"),
];

/// Files damaged after their header: reported up to the damage, which is named with its byte.
const DAMAGED: &[(&str, &str)] = &[
    ("bad-checksum.msl", "corrupt at byte 153"),
    (
        "chunk-after-trailer.msl",
        "data after the end of the capture at byte 686",
    ),
    ("garbage-chunk-marker.msl", "corrupt at byte 153"),
    ("record-length-huge.msl", "corrupt at byte 166"),
    ("truncated-mid-chunk.msl", "truncated at byte 137995"),
];

/// Every report on a capture of the corpus, with the files it writes going to `out`.
fn corpus_reports(capture: &str, out: &Path) -> Vec<Vec<String>> {
    let o = |name: &str| out.join(name).display().to_string();
    let other = corpus().join("../v1.1/leak-run.msl").display().to_string();
    let mut all: Vec<Vec<String>> = vec![
        vec!["summary".into(), capture.into()],
        vec!["summary".into(), capture.into(), "--json".into()],
        vec!["timeline".into(), capture.into(), "-o".into(), o("t.svg")],
        vec!["timeline".into(), capture.into(), "--json".into()],
        vec!["leaks".into(), capture.into()],
        vec!["leaks".into(), capture.into(), "--at".into(), "1000".into()],
        vec!["peak".into(), capture.into()],
        vec!["table".into(), capture.into()],
        vec!["tree".into(), capture.into()],
        vec![
            "flamegraph".into(),
            capture.into(),
            "-o".into(),
            o("f.html"),
        ],
        vec!["growth".into(), capture.into()],
        vec!["growth".into(), capture.into(), "--from=#50".into()],
        vec!["pymalloc".into(), capture.into()],
        vec!["gc".into(), capture.into()],
        vec!["diff".into(), other.clone(), capture.into()],
        vec!["diff".into(), capture.into(), other],
    ];
    for format in ["json", "collapsed", "pprof"] {
        let mut v = vec![
            "export".into(),
            capture.into(),
            "--format".into(),
            format.into(),
        ];
        v.extend(["-o".into(), o("e.out")]);
        all.push(v);
    }
    all
}

/// A capture that cannot be read, or is damaged, fails every report with exit code 1 (the work
/// failed), never 2 (what was asked is wrong), in one line that names the damage.
#[test]
fn every_report_exits_1_on_an_unreadable_or_damaged_capture() {
    let d = dir();
    for &(name, says) in UNREADABLE.iter().chain(DAMAGED) {
        let path = corpus().join(name).display().to_string();
        for args in corpus_reports(&path, &d) {
            let mut all: Vec<&str> = vec!["report"];
            all.extend(args.iter().map(String::as_str));
            let o = memsleuth(&d, &all);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{args:?}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            let line = end_line(&o);
            assert!(line.starts_with("memsleuth: error: "), "{args:?}: {line}");
            assert!(line.contains(says), "{args:?}: {line}");
        }
    }
}

/// The readable files of the corpus (cut short, a header alone, unknown tags, empty chunks)
/// are no usage error either: a report succeeds, or finds nothing and fails with 1.
#[test]
fn no_report_calls_a_readable_hostile_capture_a_usage_error() {
    let d = dir();
    for name in [
        "cut-short-no-trailer.msl",
        "header-only.msl",
        "unknown-tag.msl",
        "zero-length-chunks.msl",
    ] {
        let path = corpus().join(name).display().to_string();
        for args in corpus_reports(&path, &d) {
            // a time past the end of a sound capture is the one usage error here
            if args.iter().any(|a| a == "--at") {
                continue;
            }
            let mut all: Vec<&str> = vec!["report"];
            all.extend(args.iter().map(String::as_str));
            let o = memsleuth(&d, &all);
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "{args:?}: {:?} {}",
                o.status.code(),
                stderr(&o)
            );
            assert!(!stderr(&o).contains("panicked"), "{args:?}");
        }
    }
}
