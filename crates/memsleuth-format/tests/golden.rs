//! Golden captures: every format version ever released must stay readable. A capture written by
//! memsleuth 0.1 (format 1.0) is committed under tests/fixtures/v1.0.
//!
//! `tests/fixtures/v1.2/objects.msl` holds one of each 1.2 record with fixed values, written once
//! by [`write_v1_2_objects_golden`] (ignored; run it by name only when a new golden is wanted).
//! Its test reads the committed file and spells every expected field out literally, so a change
//! to the encoder cannot pass by rewriting both sides. `tests/fixtures/v1.3/fds-threads.msl` does
//! the same for 1.3's sample fields (open descriptors and threads), by [`write_v1_3_golden`], and
//! `tests/fixtures/v1.4/own.msl` for 1.4's `own` bytes, by [`write_v1_4_golden`].

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
    // 1.0 knew no descriptor or thread counts: they read as unknown, not as zero
    assert!(samples
        .iter()
        .flat_map(|s| &s.readings)
        .all(|r| r.fds.is_none() && r.threads.is_none()));
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
            Record::Sample(s) => {
                assert!(s
                    .readings
                    .iter()
                    .all(|r| r.rss.is_some() && r.fds.is_none() && r.threads.is_none()));
            }
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

/// The fixed content of `v1.2/objects.msl`. Only the generator uses it; the reading test states
/// its expectations independently.
fn objects_golden_records() -> (memsleuth_format::Header, Vec<Record>) {
    use memsleuth_format::{
        Census, CensusType, Frame, GcCollection, Header, Holder, HolderStep, Pymalloc, SizeClass,
        StackNode,
    };
    let header = Header {
        tool_version: "0.2.0".into(),
        pid: 4321,
        argv: vec!["python".into(), "server.py".into()],
        start_unix_ns: 1_700_000_000_123_456_789,
        python_version: "3.12.1 (main, Jan  1 2024, 00:00:00) [GCC 12.2.0]".into(),
        instruments: vec![
            "objects".into(),
            "gc".into(),
            "pymalloc".into(),
            "python".into(),
        ],
        sample_interval_ns: 0,
        sample_bytes: 0,
        hostname: "golden".into(),
    };
    let census = |t_ns: u64, sessions: u64, gc_enabled: bool| {
        Record::Census(Census {
            t_ns,
            duration_ns: 2_500_000 + sessions,
            objects: 50_000 + sessions,
            bytes: 6_000_000 + 56 * sessions,
            gc_enabled,
            gc_counts: vec![612, 4, 1],
            unreachable: sessions / 100,
            unreachable_bytes: 72 * (sessions / 100),
            garbage: u64::from(!gc_enabled),
            garbage_types: if gc_enabled {
                vec![]
            } else {
                vec![("myapp.Leaky".into(), 1)]
            },
            types: vec![
                CensusType {
                    name: "dict".into(),
                    count: 9_000,
                    bytes: 2_400_000,
                    retained: None,
                    samples: vec![],
                },
                CensusType {
                    name: "myapp.Session".into(),
                    count: sessions,
                    bytes: 56 * sessions,
                    retained: Some(312 * sessions),
                    samples: vec![0x7f3a_0000_1000, 0x7f3a_0000_1040, 0x7f3a_0010_0000],
                },
                CensusType {
                    name: "(other)".into(),
                    count: 0,
                    bytes: 0,
                    retained: Some(0),
                    samples: vec![u64::MAX],
                },
            ],
        })
    };
    let records = vec![
        Record::Frame(Frame {
            id: 1,
            function: "Cache.add".into(),
            file: "/srv/myapp/cache.py".into(),
            line: 42,
        }),
        Record::Stack(StackNode {
            id: 1,
            parent: 0,
            frame: 1,
        }),
        census(1_000_000_000, 100, true),
        Record::Gc(GcCollection {
            t_ns: 1_500_000_000,
            duration_ns: 830_000,
            generation: 2,
            collected: 1_234,
            uncollectable: 3,
        }),
        Record::Pymalloc(Pymalloc {
            t_ns: 1_600_000_000,
            allocated_blocks: 71_234,
            total_refcount: Some(-7),
            arena_size: 1 << 20,
            pool_size: 16 << 10,
            arenas_allocated_total: 12,
            arenas_reclaimed: 3,
            arenas_highwater: 10,
            arenas_now: 9,
            bytes_in_use: 4_123_456,
            bytes_free_blocks: 98_765,
            unused_pools: 5,
            bytes_pool_headers: 27_648,
            bytes_quantization: 1_234,
            bytes_arena_alignment: 0,
            classes: vec![
                SizeClass {
                    size: 16,
                    pools: 3,
                    blocks_in_use: 2_900,
                    blocks_free: 120,
                },
                SizeClass {
                    size: 512,
                    pools: 40,
                    blocks_in_use: 1_200,
                    blocks_free: 0,
                },
            ],
        }),
        Record::Pymalloc(Pymalloc {
            t_ns: 2_600_000_000,
            total_refcount: None,
            classes: vec![],
            ..Pymalloc::default()
        }),
        census(3_000_000_000, 2_500, false),
        Record::Holder(Holder {
            stack: 1,
            addr: 0x7f3a_0000_1040,
            root_kind: 0,
            root: "module myapp.cache".into(),
            steps: vec![
                HolderStep {
                    edge: ".SESSIONS".into(),
                    type_name: "dict".into(),
                    repr: "dict of 2500 items".into(),
                    addr: 0x7f3a_0020_0000,
                    size: 73_816,
                },
                HolderStep {
                    edge: "['u-17']".into(),
                    type_name: "myapp.Session".into(),
                    repr: "<myapp.Session at 0x7f3a00001040>".into(),
                    addr: 0x7f3a_0000_1040,
                    size: 56,
                },
            ],
        }),
        Record::Holder(Holder {
            stack: 0,
            addr: 0x10,
            root_kind: 4,
            root: "unreachable cycle".into(),
            steps: vec![],
        }),
    ];
    (header, records)
}

/// Writes `tests/fixtures/v1.2/objects.msl`. Run once, by name, when the golden is created:
/// `cargo test -p memsleuth-format --test golden -- --ignored write_v1_2_objects_golden`.
#[test]
#[ignore = "writes the committed golden capture; run by name only"]
fn write_v1_2_objects_golden() {
    use memsleuth_format::{CaptureWriter, Trailer};
    let (header, records) = objects_golden_records();
    let mut w = CaptureWriter::new(Vec::new(), &header).unwrap();
    // first census chunk stored, the rest LZ4: the golden covers both codecs
    for r in &records[..3] {
        w.push(r);
    }
    w.flush().unwrap();
    w.set_compression(true);
    for r in &records[3..] {
        w.push(r);
    }
    w.flush().unwrap();
    let bytes = w
        .finish(Trailer {
            end_ns: 3_200_000_000,
            reason: EndReason::Stopped,
            target_status: ExitStatus::Unknown,
            samples: 0,
            dropped: 0,
            flushes: 0,
        })
        .unwrap();
    let path = fixture("v1.2/objects.msl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn v1_2_objects_capture_reads_exactly() {
    use memsleuth_format::{Census, CensusType, HolderStep, SizeClass};

    let cap = read_capture(&fixture("v1.2/objects.msl")).unwrap();
    assert_eq!(cap.minor_version, 2);
    assert!(cap.damage.is_none());
    let h = &cap.header;
    assert_eq!(h.tool_version, "0.2.0");
    assert_eq!(h.pid, 4321);
    assert_eq!(h.argv, ["python", "server.py"]);
    assert_eq!(h.start_unix_ns, 1_700_000_000_123_456_789);
    assert_eq!(
        h.python_version,
        "3.12.1 (main, Jan  1 2024, 00:00:00) [GCC 12.2.0]"
    );
    assert_eq!(h.instruments, ["objects", "gc", "pymalloc", "python"]);
    assert_eq!((h.sample_interval_ns, h.sample_bytes), (0, 0));
    assert_eq!(h.hostname, "golden");
    let t = cap.trailer.unwrap();
    assert_eq!(t.end_ns, 3_200_000_000);
    assert_eq!(t.reason, EndReason::Stopped);
    assert_eq!(t.target_status, ExitStatus::Unknown);
    assert_eq!((t.samples, t.dropped, t.flushes), (0, 0, 4));

    assert_eq!(cap.records.len(), 9);
    let Record::Frame(f) = &cap.records[0] else {
        panic!("{:?}", cap.records[0])
    };
    assert_eq!(
        (f.id, f.function.as_str(), f.file.as_str(), f.line),
        (1, "Cache.add", "/srv/myapp/cache.py", 42)
    );
    let Record::Stack(n) = &cap.records[1] else {
        panic!("{:?}", cap.records[1])
    };
    assert_eq!((n.id, n.parent, n.frame), (1, 0, 1));

    let check_census = |r: &Record, t_ns, duration_ns, objects, bytes, gc_enabled, sessions| {
        let Record::Census(c) = r else {
            panic!("{r:?}")
        };
        let Census {
            t_ns: ct,
            duration_ns: cd,
            objects: co,
            bytes: cb,
            gc_enabled: ce,
            gc_counts,
            unreachable,
            unreachable_bytes,
            garbage,
            types,
            garbage_types,
        } = c;
        if *ce {
            assert!(garbage_types.is_empty(), "{garbage_types:?}");
        } else {
            assert_eq!(garbage_types, &[("myapp.Leaky".to_string(), 1)]);
        }
        assert_eq!(
            (*ct, *cd, *co, *cb, *ce),
            (t_ns, duration_ns, objects, bytes, gc_enabled)
        );
        assert_eq!(gc_counts, &[612, 4, 1]);
        assert_eq!(
            (*unreachable, *unreachable_bytes, *garbage),
            (
                sessions / 100,
                72 * (sessions / 100),
                u64::from(!gc_enabled)
            )
        );
        assert_eq!(
            types,
            &[
                CensusType {
                    name: "dict".into(),
                    count: 9_000,
                    bytes: 2_400_000,
                    retained: None,
                    samples: vec![],
                },
                CensusType {
                    name: "myapp.Session".into(),
                    count: sessions,
                    bytes: 56 * sessions,
                    retained: Some(312 * sessions),
                    samples: vec![0x7f3a_0000_1000, 0x7f3a_0000_1040, 0x7f3a_0010_0000],
                },
                CensusType {
                    name: "(other)".into(),
                    count: 0,
                    bytes: 0,
                    retained: Some(0),
                    samples: vec![u64::MAX],
                },
            ]
        );
    };
    check_census(
        &cap.records[2],
        1_000_000_000,
        2_500_100,
        50_100,
        6_005_600,
        true,
        100,
    );

    let Record::Gc(g) = &cap.records[3] else {
        panic!("{:?}", cap.records[3])
    };
    assert_eq!(
        (
            g.t_ns,
            g.duration_ns,
            g.generation,
            g.collected,
            g.uncollectable
        ),
        (1_500_000_000, 830_000, 2, 1_234, 3)
    );

    let Record::Pymalloc(p) = &cap.records[4] else {
        panic!("{:?}", cap.records[4])
    };
    assert_eq!(
        (p.t_ns, p.allocated_blocks, p.total_refcount),
        (1_600_000_000, 71_234, Some(-7))
    );
    assert_eq!(
        [
            p.arena_size,
            p.pool_size,
            p.arenas_allocated_total,
            p.arenas_reclaimed,
            p.arenas_highwater,
            p.arenas_now,
            p.bytes_in_use,
            p.bytes_free_blocks,
            p.unused_pools,
            p.bytes_pool_headers,
            p.bytes_quantization,
            p.bytes_arena_alignment,
        ],
        [
            1 << 20,
            16 << 10,
            12,
            3,
            10,
            9,
            4_123_456,
            98_765,
            5,
            27_648,
            1_234,
            0
        ]
    );
    assert_eq!(
        p.classes,
        [
            SizeClass {
                size: 16,
                pools: 3,
                blocks_in_use: 2_900,
                blocks_free: 120,
            },
            SizeClass {
                size: 512,
                pools: 40,
                blocks_in_use: 1_200,
                blocks_free: 0,
            },
        ]
    );
    let Record::Pymalloc(p) = &cap.records[5] else {
        panic!("{:?}", cap.records[5])
    };
    assert_eq!(
        (p.t_ns, p.allocated_blocks, p.total_refcount),
        (2_600_000_000, 0, None)
    );
    assert_eq!(
        *p,
        memsleuth_format::Pymalloc {
            t_ns: 2_600_000_000,
            ..Default::default()
        }
    );

    check_census(
        &cap.records[6],
        3_000_000_000,
        2_502_500,
        52_500,
        6_140_000,
        false,
        2_500,
    );

    let Record::Holder(h) = &cap.records[7] else {
        panic!("{:?}", cap.records[7])
    };
    assert_eq!(
        (h.stack, h.addr, h.root_kind, h.root.as_str()),
        (1, 0x7f3a_0000_1040, 0, "module myapp.cache")
    );
    assert_eq!(
        h.steps,
        [
            HolderStep {
                edge: ".SESSIONS".into(),
                type_name: "dict".into(),
                repr: "dict of 2500 items".into(),
                addr: 0x7f3a_0020_0000,
                size: 73_816,
            },
            HolderStep {
                edge: "['u-17']".into(),
                type_name: "myapp.Session".into(),
                repr: "<myapp.Session at 0x7f3a00001040>".into(),
                addr: 0x7f3a_0000_1040,
                size: 56,
            },
        ]
    );
    let Record::Holder(h) = &cap.records[8] else {
        panic!("{:?}", cap.records[8])
    };
    assert_eq!(
        (h.stack, h.addr, h.root_kind, h.root.as_str(), h.steps.len()),
        (0, 0x10, 4, "unreachable cycle", 0)
    );
}

/// The fixed content of `v1.3/fds-threads.msl`: a `watch` of a server and one worker whose open
/// descriptors and threads climb, the worker another user's (no descriptor count). Only the
/// generator uses it; the reading test states its expectations independently.
fn fds_threads_golden_records() -> (memsleuth_format::Header, Vec<Record>) {
    use memsleuth_format::{Header, Mark, ProcessExit, ProcessInfo, ProcessReading, Sample};
    let header = Header {
        tool_version: "0.3.0".into(),
        pid: 5000,
        argv: vec!["python".into(), "pool.py".into()],
        start_unix_ns: 1_710_000_000_987_654_321,
        python_version: String::new(),
        instruments: vec!["rss".into()],
        sample_interval_ns: 100_000_000,
        sample_bytes: 0,
        hostname: "golden".into(),
    };
    let sample = |i: u64| {
        let mut readings = vec![ProcessReading {
            pid: 5000,
            rss: Some((40 << 20) + (i << 20)),
            vms: Some(400 << 20),
            uss: Some(30 << 20),
            pss: Some(32 << 20),
            swap: Some(0),
            peak: Some((41 << 20) + (i << 20)),
            fds: Some(7 + 100 * i),
            threads: Some(1 + 10 * i),
            own: None,
        }];
        if i < 3 {
            readings.push(ProcessReading {
                pid: 5001,
                rss: Some(9 << 20),
                vms: Some(90 << 20),
                peak: Some(9 << 20),
                swap: Some(0),
                threads: Some(2),
                ..ProcessReading::default()
            });
        }
        Record::Sample(Sample {
            t_ns: 100_000_000 * i,
            readings,
        })
    };
    let mut records = vec![
        Record::Process(ProcessInfo {
            pid: 5000,
            ppid: 1,
            seen_ns: 0,
            argv: vec!["python".into(), "pool.py".into()],
        }),
        Record::Process(ProcessInfo {
            pid: 5001,
            ppid: 5000,
            seen_ns: 1_000,
            argv: vec!["helper".into()],
        }),
    ];
    records.extend((0..3).map(sample));
    records.push(Record::ProcessExit(ProcessExit {
        pid: 5001,
        t_ns: 250_000_000,
        status: ExitStatus::Code(0),
    }));
    records.push(Record::Mark(Mark {
        t_ns: 260_000_000,
        label: "phase 2".into(),
    }));
    records.extend((3..5).map(sample));
    (header, records)
}

/// Writes `tests/fixtures/v1.3/fds-threads.msl`. Run once, by name, when the golden is created:
/// `cargo test -p memsleuth-format --test golden -- --ignored write_v1_3_golden`.
#[test]
#[ignore = "writes the committed golden capture; run by name only"]
fn write_v1_3_golden() {
    use memsleuth_format::{CaptureWriter, Trailer};
    let (header, records) = fds_threads_golden_records();
    let mut w = CaptureWriter::new(Vec::new(), &header).unwrap();
    // the first samples stored, the rest LZ4, as a `watch` writes them
    for r in &records[..4] {
        w.push(r);
    }
    w.flush().unwrap();
    w.set_compression(true);
    for r in &records[4..] {
        w.push(r);
    }
    w.flush().unwrap();
    let bytes = w
        .finish(Trailer {
            end_ns: 480_000_000,
            reason: EndReason::Interrupted,
            target_status: ExitStatus::Unknown,
            samples: 5,
            dropped: 0,
            flushes: 0,
        })
        .unwrap();
    let path = fixture("v1.3/fds-threads.msl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn v1_3_fds_threads_capture_reads_exactly() {
    use memsleuth_format::ProcessReading;

    let cap = read_capture(&fixture("v1.3/fds-threads.msl")).unwrap();
    assert_eq!(cap.minor_version, 3);
    assert!(cap.damage.is_none());
    let h = &cap.header;
    assert_eq!(h.tool_version, "0.3.0");
    assert_eq!(h.pid, 5000);
    assert_eq!(h.argv, ["python", "pool.py"]);
    assert_eq!(h.start_unix_ns, 1_710_000_000_987_654_321);
    assert_eq!(h.python_version, "");
    assert_eq!(h.instruments, ["rss"]);
    assert_eq!((h.sample_interval_ns, h.sample_bytes), (100_000_000, 0));
    assert_eq!(h.hostname, "golden");
    let t = cap.trailer.unwrap();
    assert_eq!(t.end_ns, 480_000_000);
    assert_eq!(t.reason, EndReason::Interrupted);
    assert_eq!(t.target_status, ExitStatus::Unknown);
    assert_eq!((t.samples, t.dropped, t.flushes), (5, 0, 4));
    assert_eq!(cap.records.len(), 9);

    let Record::Process(p) = &cap.records[0] else {
        panic!("{:?}", cap.records[0])
    };
    assert_eq!((p.pid, p.ppid, p.seen_ns), (5000, 1, 0));
    assert_eq!(p.argv, ["python", "pool.py"]);
    let Record::Process(p) = &cap.records[1] else {
        panic!("{:?}", cap.records[1])
    };
    assert_eq!((p.pid, p.ppid, p.seen_ns), (5001, 5000, 1_000));
    assert_eq!(p.argv, ["helper"]);
    let Record::ProcessExit(x) = &cap.records[5] else {
        panic!("{:?}", cap.records[5])
    };
    assert_eq!(
        (x.pid, x.t_ns, x.status),
        (5001, 250_000_000, ExitStatus::Code(0))
    );
    let Record::Mark(m) = &cap.records[6] else {
        panic!("{:?}", cap.records[6])
    };
    assert_eq!((m.t_ns, m.label.as_str()), (260_000_000, "phase 2"));

    const MIB: u64 = 1 << 20;
    let server = [
        (0, 40 * MIB, 41 * MIB, 7, 1),
        (100_000_000, 41 * MIB, 42 * MIB, 107, 11),
        (200_000_000, 42 * MIB, 43 * MIB, 207, 21),
        (300_000_000, 43 * MIB, 44 * MIB, 307, 31),
        (400_000_000, 44 * MIB, 45 * MIB, 407, 41),
    ];
    let at = [2, 3, 4, 7, 8];
    for (i, (&index, &(t_ns, rss, peak, fds, threads))) in at.iter().zip(&server).enumerate() {
        let Record::Sample(s) = &cap.records[index] else {
            panic!("{:?}", cap.records[index])
        };
        assert_eq!(s.t_ns, t_ns);
        assert_eq!(s.readings.len(), if i < 3 { 2 } else { 1 });
        assert_eq!(
            s.readings[0],
            ProcessReading {
                pid: 5000,
                rss: Some(rss),
                vms: Some(400 * MIB),
                uss: Some(30 * MIB),
                pss: Some(32 * MIB),
                swap: Some(0),
                peak: Some(peak),
                fds: Some(fds),
                threads: Some(threads),
                own: None,
            }
        );
        if i < 3 {
            // another user's worker: threads from its status, no descriptor count
            assert_eq!(
                s.readings[1],
                ProcessReading {
                    pid: 5001,
                    rss: Some(9 * MIB),
                    vms: Some(90 * MIB),
                    uss: None,
                    pss: None,
                    swap: Some(0),
                    peak: Some(9 * MIB),
                    fds: None,
                    threads: Some(2),
                    own: None,
                }
            );
        }
    }
}

/// The fixed samples of `v1.4/own.msl`: a `run` whose own tables grow beside the program.
fn own_golden_records() -> (memsleuth_format::Header, Vec<Record>) {
    use memsleuth_format::{Header, ProcessReading, Sample};
    let header = Header {
        tool_version: "0.4.0".into(),
        pid: 6000,
        argv: vec!["python".into(), "app.py".into()],
        start_unix_ns: 1_720_000_000_000_000_000,
        python_version: "3.12.1".into(),
        instruments: vec!["python".into(), "rss".into()],
        sample_interval_ns: 10_000_000,
        sample_bytes: 0,
        hostname: "golden".into(),
    };
    let records = (0..3u64)
        .map(|i| {
            Record::Sample(Sample {
                t_ns: 10_000_000 * i,
                readings: vec![ProcessReading {
                    pid: 6000,
                    rss: Some((20 << 20) + (i << 20)),
                    peak: Some((21 << 20) + (i << 20)),
                    fds: Some(5),
                    threads: Some(3),
                    own: Some((1 << 20) + (i << 19)),
                    ..ProcessReading::default()
                }],
            })
        })
        .collect();
    (header, records)
}

/// Writes `tests/fixtures/v1.4/own.msl`. Run once, by name, when the golden is created:
/// `cargo test -p memsleuth-format --test golden -- --ignored write_v1_4_golden`.
#[test]
#[ignore = "writes the committed golden capture; run by name only"]
fn write_v1_4_golden() {
    use memsleuth_format::{CaptureWriter, Trailer};
    let (header, records) = own_golden_records();
    let mut w = CaptureWriter::new(Vec::new(), &header).unwrap();
    w.set_compression(true);
    for r in &records {
        w.push(r);
    }
    w.flush().unwrap();
    let bytes = w
        .finish(Trailer {
            end_ns: 30_000_000,
            reason: EndReason::TargetExited,
            target_status: ExitStatus::Code(0),
            samples: 3,
            dropped: 0,
            flushes: 0,
        })
        .unwrap();
    let path = fixture("v1.4/own.msl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn v1_4_own_capture_reads_exactly() {
    use memsleuth_format::ProcessReading;

    let cap = read_capture(&fixture("v1.4/own.msl")).unwrap();
    assert_eq!(cap.minor_version, 4);
    assert!(cap.damage.is_none());
    assert_eq!(cap.header.pid, 6000);
    assert_eq!(cap.header.instruments, ["python", "rss"]);
    let t = cap.trailer.unwrap();
    assert_eq!((t.end_ns, t.reason), (30_000_000, EndReason::TargetExited));
    assert_eq!(t.target_status, ExitStatus::Code(0));
    assert_eq!(cap.records.len(), 3);
    const MIB: u64 = 1 << 20;
    let expected = [
        (0, 20 * MIB, 21 * MIB, MIB),
        (10_000_000, 21 * MIB, 22 * MIB, MIB + MIB / 2),
        (20_000_000, 22 * MIB, 23 * MIB, 2 * MIB),
    ];
    for (r, &(t_ns, rss, peak, own)) in cap.records.iter().zip(&expected) {
        let Record::Sample(s) = r else {
            panic!("{r:?}")
        };
        assert_eq!(s.t_ns, t_ns);
        assert_eq!(
            s.readings,
            [ProcessReading {
                pid: 6000,
                rss: Some(rss),
                vms: None,
                uss: None,
                pss: None,
                swap: None,
                peak: Some(peak),
                fds: Some(5),
                threads: Some(3),
                own: Some(own),
            }]
        );
    }
}

/// The records of `v1.5/native.msl`: a `run --native` capture with one allocation made by C
/// code under a Python frame, its two native frames (one in a known object, one in none) and the
/// object's mapping.
fn native_golden_records() -> (memsleuth_format::Header, Vec<Record>) {
    use memsleuth_format::{
        AllocEvent, Domain, EventKind, Events, Frame, Header, Mapping, NativeFrame, StackNode,
    };
    let header = Header {
        tool_version: "0.5.0".into(),
        pid: 7000,
        argv: vec!["python".into(), "service.py".into()],
        start_unix_ns: 1_730_000_000_000_000_000,
        python_version: "3.11.7".into(),
        instruments: vec!["python".into(), "rss".into(), "native".into()],
        sample_interval_ns: 10_000_000,
        sample_bytes: 0,
        hostname: "golden".into(),
    };
    let records = vec![
        Record::Mapping(Mapping {
            id: 1,
            path: "/tmp/ext/cmem.cpython-311-x86_64-linux-gnu.so".into(),
            build_id: "8f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c".into(),
            start: 0x7f00_0000_0000,
            end: 0x7f00_0000_5000,
            bias: 0x7f00_0000_0000,
            unwind: true,
        }),
        Record::Frame(Frame {
            id: 1,
            function: "handle".into(),
            file: "service.py".into(),
            line: 6,
        }),
        Record::NativeFrame(NativeFrame {
            id: 2,
            mapping: 1,
            address: 0x1234,
        }),
        Record::NativeFrame(NativeFrame {
            id: 3,
            mapping: 0,
            address: 0x5555_0000_0042,
        }),
        Record::Stack(StackNode {
            id: 1,
            parent: 0,
            frame: 1,
        }),
        Record::Stack(StackNode {
            id: 2,
            parent: 1,
            frame: 2,
        }),
        Record::Stack(StackNode {
            id: 3,
            parent: 2,
            frame: 3,
        }),
        Record::Events(Events {
            thread: 1,
            events: vec![AllocEvent {
                kind: EventKind::Alloc,
                domain: Domain::Native,
                t_ns: 5_000_000,
                addr: 0x5600_0000_1000,
                size: 65536,
                stack: 3,
            }],
        }),
    ];
    (header, records)
}

/// Writes `tests/fixtures/v1.5/native.msl`. Run once, by name, when the golden is created:
/// `cargo test -p memsleuth-format --test golden -- --ignored write_v1_5_golden`.
#[test]
#[ignore = "writes the committed golden capture; run by name only"]
fn write_v1_5_golden() {
    use memsleuth_format::{CaptureWriter, Trailer};
    let (header, records) = native_golden_records();
    let mut w = CaptureWriter::new(Vec::new(), &header).unwrap();
    w.set_compression(true);
    for r in &records {
        w.push(r);
    }
    w.flush().unwrap();
    let bytes = w
        .finish(Trailer {
            end_ns: 10_000_000,
            reason: EndReason::TargetExited,
            target_status: ExitStatus::Code(0),
            samples: 0,
            dropped: 0,
            flushes: 0,
        })
        .unwrap();
    let path = fixture("v1.5/native.msl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn v1_5_native_capture_reads_exactly() {
    let cap = read_capture(&fixture("v1.5/native.msl")).unwrap();
    assert_eq!(cap.minor_version, 5);
    assert!(cap.damage.is_none());
    assert_eq!(cap.header.instruments, ["python", "rss", "native"]);
    let (_, expected) = native_golden_records();
    assert_eq!(cap.records, expected);
}
