//! Round trips, truncation and corruption of whole captures.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use memsleuth_format::*;
use proptest::prelude::*;

fn header() -> Header {
    Header {
        tool_version: "0.1.0".into(),
        pid: 4242,
        argv: vec!["python".into(), "leak.py".into()],
        start_unix_ns: 1_700_000_000_000_000_000,
        python_version: "3.11.7".into(),
        instruments: vec!["rss".into()],
        sample_interval_ns: 100_000_000,
        sample_bytes: 0,
        hostname: "box".into(),
    }
}

fn sample(i: u64) -> Record {
    Record::Sample(Sample {
        t_ns: i * 100_000_000,
        readings: vec![ProcessReading {
            pid: 4242,
            rss: Some(10 << 20 | i),
            vms: Some(100 << 20),
            uss: None,
            pss: Some(9 << 20),
            swap: Some(0),
            peak: Some(11 << 20),
        }],
    })
}

/// A capture with `n` samples, flushed every `per_chunk` records, optionally finished.
fn capture(n: u64, per_chunk: u64, finish: bool) -> Vec<u8> {
    let mut w = CaptureWriter::new(Vec::new(), &header()).unwrap();
    for i in 0..n {
        w.push(&sample(i));
        if (i + 1) % per_chunk == 0 {
            w.flush().unwrap();
        }
    }
    if finish {
        w.finish(Trailer {
            end_ns: n * 100_000_000,
            reason: EndReason::TargetExited,
            target_status: ExitStatus::Code(0),
            samples: n,
            ..Trailer::default()
        })
        .unwrap()
    } else {
        w.flush().unwrap();
        w.abandon()
    }
}

#[test]
fn compressed_chunks_truncate_and_corrupt_like_stored_ones() {
    let mut w = CaptureWriter::new(Vec::new(), &header()).unwrap();
    w.set_compression(true);
    for i in 0..40 {
        w.push(&sample(i));
        if i % 10 == 9 {
            w.flush().unwrap();
        }
    }
    let bytes = w.finish(Trailer::default()).unwrap();
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.records.len(), 40);
    assert!(cap.trailer.is_some());
    // cut inside the third compressed chunk: the first two survive, the capture says it is short
    let chunk_starts: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == CHUNK_MARKER)
        .map(|(i, _)| i)
        .collect();
    let cut = &bytes[..chunk_starts[3] + 20];
    let cap = Capture::from_reader(cut).unwrap();
    assert_eq!(cap.records.len(), 20);
    assert!(cap.damage.as_ref().unwrap().is_truncation());
    // a flipped bit inside a compressed payload is caught by the checksum, never decompressed
    let mut bad = bytes.clone();
    bad[chunk_starts[2] + CHUNK_HEADER_LEN + 6] ^= 0x40;
    let cap = Capture::from_reader(&bad[..]).unwrap();
    assert_eq!(cap.records.len(), 10);
    assert!(!cap.damage.unwrap().is_truncation());
}

#[test]
fn finished_capture_reads_back_whole() {
    let bytes = capture(25, 10, true);
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.header, header());
    assert_eq!(cap.records.len(), 25);
    assert_eq!(cap.records[3], sample(3));
    let t = cap.trailer.unwrap();
    assert_eq!(t.samples, 25);
    assert_eq!(
        t.flushes,
        1 + 3 + 1,
        "header chunk, 3 sample chunks, trailer chunk"
    );
    assert!(cap.damage.is_none());
    assert!(!cap.cut_short());
}

#[test]
fn truncation_anywhere_keeps_every_whole_chunk_before_it() {
    let bytes = capture(30, 10, true);
    let whole = Capture::from_reader(&bytes[..]).unwrap();
    for cut in PREAMBLE_LEN..bytes.len() {
        match Capture::from_reader(&bytes[..cut]) {
            Ok(cap) => {
                assert!(cap.cut_short(), "cut at {cut} still has a trailer");
                assert!(cap.records.len() <= whole.records.len());
                assert_eq!(&whole.records[..cap.records.len()], &cap.records[..]);
                if let Some(d) = &cap.damage {
                    assert!(d.is_truncation(), "cut at {cut}: {d}");
                    assert!(d.to_string().contains("truncated at byte"));
                }
            }
            // before the header chunk is complete nothing can be read
            Err(e) => assert!(e.is_truncation(), "cut at {cut}: {e}"),
        }
    }
}

#[test]
fn flipped_byte_is_reported_as_corruption_with_offset() {
    let bytes = capture(30, 10, true);
    let first_chunk_end = {
        let len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
        PREAMBLE_LEN + CHUNK_HEADER_LEN + len
    };
    let mut bad = bytes.clone();
    let at = first_chunk_end + CHUNK_HEADER_LEN + 5; // inside the first sample chunk
    bad[at] ^= 0x40;
    let cap = Capture::from_reader(&bad[..]).unwrap();
    assert!(cap.records.is_empty());
    let damage = cap.damage.unwrap();
    assert!(
        matches!(damage, FormatError::Corrupt { offset, .. } if offset == first_chunk_end as u64)
    );
    assert!(damage.to_string().contains("checksum"));
}

#[test]
fn foreign_and_future_files_are_refused() {
    assert!(matches!(
        Capture::from_reader(&b""[..]),
        Err(FormatError::Empty)
    ));
    assert!(matches!(
        Capture::from_reader(&b"GIF89a this is not a capture"[..]),
        Err(FormatError::BadMagic)
    ));
    let mut future = capture(3, 10, true);
    future[8] = 2;
    let err = Capture::from_reader(&future[..]).unwrap_err();
    assert!(err.to_string().contains("format 2.1"), "{err}");
    // a newer minor version is read
    let mut newer = capture(3, 10, true);
    newer[10] = 7;
    let cap = Capture::from_reader(&newer[..]).unwrap();
    assert_eq!(cap.minor_version, 7);
    assert_eq!(cap.records.len(), 3);
}

#[test]
fn unknown_tags_and_appended_fields_are_skipped() {
    let mut w = CaptureWriter::new(Vec::new(), &header()).unwrap();
    w.push(&Record::Unknown(UnknownRecord {
        tag: 999,
        body: vec![1, 2, 3],
    }));
    w.push(&sample(1));
    let bytes = w.finish(Trailer::default()).unwrap();
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.records.len(), 2);
    assert!(matches!(&cap.records[0], Record::Unknown(u) if u.tag == 999));
    assert_eq!(cap.records[1], sample(1));
}

#[test]
fn unflushed_capture_is_cut_short_but_readable() {
    let bytes = capture(12, 5, false);
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert!(cap.cut_short());
    assert_eq!(cap.records.len(), 12);
}

fn reading() -> impl Strategy<Value = ProcessReading> {
    (
        any::<u32>(),
        proptest::array::uniform6(proptest::option::of(any::<u64>())),
    )
        .prop_map(|(pid, v)| ProcessReading {
            pid,
            rss: v[0],
            vms: v[1],
            uss: v[2],
            pss: v[3],
            swap: v[4],
            peak: v[5],
        })
}

fn status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        Just(ExitStatus::Unknown),
        any::<i32>().prop_map(ExitStatus::Code),
        any::<i32>().prop_map(ExitStatus::Signal),
    ]
}

fn alloc_event() -> impl Strategy<Value = AllocEvent> {
    (
        any::<bool>(),
        0u8..4,
        0u64..(1 << 50),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(|(free, domain, t_us, addr, size, stack)| {
            // event times are stored to the microsecond
            let t_ns = t_us * 1000;
            if free {
                AllocEvent {
                    kind: EventKind::Free,
                    domain: Domain::from_code(domain),
                    t_ns,
                    addr,
                    size: 0,
                    stack: 0,
                }
            } else {
                AllocEvent {
                    kind: EventKind::Alloc,
                    domain: Domain::from_code(domain),
                    t_ns,
                    addr,
                    size,
                    stack,
                }
            }
        })
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (any::<u64>(), proptest::collection::vec(reading(), 0..6))
            .prop_map(|(t_ns, readings)| Record::Sample(Sample { t_ns, readings })),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            proptest::collection::vec(".*", 0..4)
        )
            .prop_map(|(pid, ppid, seen_ns, argv)| Record::Process(ProcessInfo {
                pid,
                ppid,
                seen_ns,
                argv
            })),
        (any::<u32>(), any::<u64>(), status())
            .prop_map(|(pid, t_ns, status)| Record::ProcessExit(ProcessExit { pid, t_ns, status })),
        (any::<u64>(), ".*").prop_map(|(t_ns, label)| Record::Mark(Mark { t_ns, label })),
        (any::<u32>(), ".*", ".*", any::<u32>()).prop_map(|(id, function, file, line)| {
            Record::Frame(Frame {
                id,
                function,
                file,
                line,
            })
        }),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(id, parent, frame)| Record::Stack(StackNode { id, parent, frame })),
        (any::<u32>(), any::<u64>(), ".*").prop_map(|(id, native_id, name)| Record::Thread(
            ThreadInfo {
                id,
                native_id,
                name
            }
        )),
        (
            any::<u32>(),
            proptest::collection::vec(alloc_event(), 0..30)
        )
            .prop_map(|(thread, mut events)| {
                // times within a batch never go backwards (one thread's events, in order)
                events.sort_by_key(|e| e.t_ns);
                Record::Events(Events { thread, events })
            }),
        (
            1000u64..u64::MAX,
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(tag, body)| Record::Unknown(UnknownRecord { tag, body })),
    ]
}

proptest! {
    #[test]
    fn any_record_sequence_round_trips(
        records in proptest::collection::vec(record(), 0..40),
        flush_every in 1usize..8,
        pid in any::<u32>(),
        argv in proptest::collection::vec(".*", 0..4),
        compress in any::<bool>(),
    ) {
        let h = Header { pid, argv, ..header() };
        let mut w = CaptureWriter::new(Vec::new(), &h).unwrap();
        w.set_compression(compress);
        for (i, r) in records.iter().enumerate() {
            w.push(r);
            if i % flush_every == 0 {
                w.flush().unwrap();
            }
        }
        let bytes = w.finish(Trailer { samples: records.len() as u64, ..Trailer::default() }).unwrap();
        let cap = Capture::from_reader(&bytes[..]).unwrap();
        prop_assert_eq!(cap.header, h);
        prop_assert_eq!(cap.records, records.clone());
        prop_assert_eq!(cap.trailer.map(|t| t.samples), Some(records.len() as u64));
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = capture(2, 1, false);
        bytes.truncate(PREAMBLE_LEN);
        bytes.extend_from_slice(&tail);
        let _ = Capture::from_reader(&bytes[..]).map(|c| c.records.len());
    }
}
