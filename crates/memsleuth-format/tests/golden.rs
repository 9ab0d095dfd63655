//! Golden captures: every format version ever released must stay readable. A capture written by
//! memsleuth 0.1 (format 1.0) is committed under tests/fixtures/v1.0.
//!
//! `tests/fixtures/v1.2/objects.msl` holds one of each 1.2 record with fixed values, written once
//! by [`write_v1_2_objects_golden`] (ignored; run it by name only when a new golden is wanted).
//! Its test reads the committed file and spells every expected field out literally, so a change
//! to the encoder cannot pass by rewriting both sides.

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
