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
            fds: Some(12 + i),
            threads: None,
            own: Some(3 << 20),
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
    // the refusal names the file's version: major 2, this writer's minor
    let named = format!("format 2.{VERSION_MINOR}");
    assert!(err.to_string().contains(&named), "{err}");
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

/// One of each 1.2 record, with values that exercise multi-byte varints, zigzag, options and lists.
fn objects_records() -> Vec<Record> {
    vec![
        Record::Census(Census {
            t_ns: 1_500_000_000,
            duration_ns: 3_250_000,
            objects: 48_211,
            bytes: 5 << 20,
            gc_enabled: false,
            gc_counts: vec![512, 3, 1],
            unreachable: 40,
            unreachable_bytes: 9_000,
            garbage: 2,
            garbage_types: vec![("myapp.Leaky".into(), 2)],
            types: vec![
                CensusType {
                    name: "myapp.Session".into(),
                    count: 1200,
                    bytes: 67_200,
                    retained: Some(0),
                    samples: vec![0x7f00_0000_1000, 0x7f00_0000_2040],
                },
                CensusType {
                    name: "(other)".into(),
                    count: 7,
                    bytes: 448,
                    retained: None,
                    samples: vec![],
                },
            ],
        }),
        Record::Gc(GcCollection {
            t_ns: 1_600_000_000,
            duration_ns: 812_000,
            generation: 2,
            collected: 300,
            uncollectable: 1,
        }),
        Record::Pymalloc(Pymalloc {
            t_ns: 1_700_000_000,
            allocated_blocks: 70_000,
            total_refcount: Some(-5),
            arena_size: 1 << 20,
            pool_size: 16 << 10,
            arenas_allocated_total: 12,
            arenas_reclaimed: 3,
            arenas_highwater: 9,
            arenas_now: 9,
            bytes_in_use: 4_000_000,
            bytes_free_blocks: 100_000,
            unused_pools: 4,
            bytes_pool_headers: 48 * 500,
            bytes_quantization: 1234,
            bytes_arena_alignment: 0,
            classes: vec![SizeClass {
                size: 32,
                pools: 20,
                blocks_in_use: 9_000,
                blocks_free: 120,
            }],
        }),
        Record::Holder(Holder {
            stack: 7,
            addr: 0x7f00_0000_1000,
            root_kind: 0,
            root: "module myapp.cache".into(),
            steps: vec![
                HolderStep {
                    edge: ".sessions".into(),
                    type_name: "dict".into(),
                    repr: "dict of 1200 items".into(),
                    addr: 0x7f00_0000_0100,
                    size: 36_960,
                },
                HolderStep {
                    edge: "['abc']".into(),
                    type_name: "myapp.Session".into(),
                    repr: "<myapp.Session>".into(),
                    addr: 0x7f00_0000_1000,
                    size: 56,
                },
            ],
        }),
    ]
}

/// A stored (uncompressed) capture holding one record per chunk, finished.
fn one_per_chunk(records: &[Record]) -> Vec<u8> {
    let mut w = CaptureWriter::new(Vec::new(), &header()).unwrap();
    for r in records {
        w.push(r);
        w.flush().unwrap();
    }
    w.finish(Trailer::default()).unwrap()
}

/// Byte offsets of every chunk header of a capture, walked by their lengths.
fn chunk_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = PREAMBLE_LEN;
    while at + CHUNK_HEADER_LEN <= bytes.len() {
        out.push(at);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += CHUNK_HEADER_LEN + len;
    }
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

/// Rewrites the single record of stored chunk `chunk` with `edit` applied to its body, with
/// lengths and checksum made consistent again: damage the checksum cannot see, as a buggy
/// writer (not a bad disk) would leave it.
fn edit_body(bytes: &[u8], chunk: usize, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let at = chunk_offsets(bytes)[chunk];
    let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    assert_eq!(bytes[at + 12], CODEC_STORED);
    let payload = &bytes[at + CHUNK_HEADER_LEN..at + CHUNK_HEADER_LEN + len];
    let mut pos = 0;
    let tag = read_varint(payload, &mut pos);
    let body_len = read_varint(payload, &mut pos) as usize;
    assert_eq!(pos + body_len, payload.len(), "one record per chunk");
    let mut body = payload[pos..].to_vec();
    edit(&mut body);
    let mut new_payload = Vec::new();
    varint(tag, &mut new_payload);
    varint(body.len() as u64, &mut new_payload);
    new_payload.extend_from_slice(&body);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&CHUNK_MARKER);
    out.extend_from_slice(&(new_payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&new_payload).to_le_bytes());
    out.push(CODEC_STORED);
    out.extend_from_slice(&new_payload);
    out.extend_from_slice(&bytes[at + CHUNK_HEADER_LEN + len..]);
    out
}

/// Two readings of one sample: the first with fds and threads (1.3), the second without.
fn fds_threads_sample() -> Record {
    Record::Sample(Sample {
        t_ns: 2_500_000_000,
        readings: vec![
            ProcessReading {
                pid: 700,
                rss: Some(300 << 20),
                peak: Some(310 << 20),
                fds: Some(1_234),
                threads: Some(0),
                ..ProcessReading::default()
            },
            ProcessReading {
                pid: 701,
                rss: Some(5 << 20),
                ..ProcessReading::default()
            },
        ],
    })
}

#[test]
fn fds_and_threads_round_trip_with_their_mask_bits() {
    let record = fds_threads_sample();
    let bytes = one_per_chunk(std::slice::from_ref(&record));
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.records, [record]);
    let mut body = Vec::new();
    edit_body(&bytes, 1, |b| body = b.clone());
    let mut pos = 0;
    assert_eq!(read_varint(&body, &mut pos), 2_500_000_000);
    assert_eq!(read_varint(&body, &mut pos), 2);
    assert_eq!(read_varint(&body, &mut pos), 700);
    // rss, peak, fds, threads: bits 0, 5, 6, 7
    assert_eq!(read_varint(&body, &mut pos), 0b1110_0001);
}

#[test]
fn a_1_2_reader_skips_fds_and_threads_as_unknown_bits() {
    // 1.2's rule, spelled out: six known fields, then one value per higher bit to skip
    let record = fds_threads_sample();
    let bytes = one_per_chunk(std::slice::from_ref(&record));
    let mut body = Vec::new();
    edit_body(&bytes, 1, |b| body = b.clone());
    let mut pos = 0;
    let _t = read_varint(&body, &mut pos);
    let mut seen = Vec::new();
    for _ in 0..read_varint(&body, &mut pos) {
        let pid = read_varint(&body, &mut pos);
        let mask = read_varint(&body, &mut pos);
        let mut known = Vec::new();
        for bit in 0..6 {
            if mask & 1 << bit != 0 {
                known.push(read_varint(&body, &mut pos));
            }
        }
        for _ in 0..(mask >> 6).count_ones() {
            read_varint(&body, &mut pos);
        }
        seen.push((pid, known));
    }
    assert_eq!(pos, body.len());
    assert_eq!(
        seen,
        [(700, vec![300 << 20, 310 << 20]), (701, vec![5 << 20])]
    );
}

#[test]
fn own_bytes_round_trip_as_bit_8_and_a_1_3_reader_skips_them() {
    let record = Record::Sample(Sample {
        t_ns: 9,
        readings: vec![ProcessReading {
            pid: 800,
            rss: Some(64 << 20),
            threads: Some(4),
            own: Some(3 << 20),
            ..ProcessReading::default()
        }],
    });
    let bytes = one_per_chunk(std::slice::from_ref(&record));
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.records, [record]);
    let mut body = Vec::new();
    edit_body(&bytes, 1, |b| body = b.clone());
    let mut pos = 0;
    let _t = read_varint(&body, &mut pos);
    assert_eq!(read_varint(&body, &mut pos), 1);
    assert_eq!(read_varint(&body, &mut pos), 800);
    let mask = read_varint(&body, &mut pos);
    assert_eq!(mask, 1 | 1 << 7 | 1 << 8);
    // 1.3's rule: eight known fields, then one value per higher bit to skip
    let mut known = Vec::new();
    for bit in 0..8 {
        if mask & 1 << bit != 0 {
            known.push(read_varint(&body, &mut pos));
        }
    }
    for _ in 0..(mask >> 8).count_ones() {
        read_varint(&body, &mut pos);
    }
    assert_eq!(pos, body.len());
    assert_eq!(known, [64 << 20, 4]);
}

#[test]
fn sample_bits_past_threads_are_skipped() {
    // what a 1.2 reader did with bits 6 and 7, this reader does with bits a later minor adds
    let bytes = one_per_chunk(&[fds_threads_sample()]);
    let bad = edit_body(&bytes, 1, |b| {
        let mut body = Vec::new();
        varint(7, &mut body); // t_ns
        varint(2, &mut body);
        varint(42, &mut body);
        varint(1 | 1 << 6 | 1 << 7 | 1 << 9 | 1 << 40, &mut body);
        for v in [100, 6, 3, u64::MAX, 5] {
            varint(v, &mut body);
        }
        varint(43, &mut body);
        varint(1 << 7, &mut body);
        varint(9, &mut body);
        *b = body;
    });
    let cap = Capture::from_reader(&bad[..]).unwrap();
    assert!(cap.damage.is_none(), "{:?}", cap.damage);
    assert_eq!(
        cap.records,
        [Record::Sample(Sample {
            t_ns: 7,
            readings: vec![
                ProcessReading {
                    pid: 42,
                    rss: Some(100),
                    fds: Some(6),
                    threads: Some(3),
                    ..ProcessReading::default()
                },
                ProcessReading {
                    pid: 43,
                    threads: Some(9),
                    ..ProcessReading::default()
                },
            ],
        })]
    );
}

#[test]
fn objects_records_truncate_and_corrupt_like_the_others() {
    let records = objects_records();
    let bytes = one_per_chunk(&records);
    let whole = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(whole.records, records);
    assert!(whole.damage.is_none());
    for cut in PREAMBLE_LEN..bytes.len() {
        match Capture::from_reader(&bytes[..cut]) {
            Ok(cap) => {
                assert!(cap.cut_short(), "cut at {cut} still has a trailer");
                assert_eq!(&records[..cap.records.len()], &cap.records[..]);
                if let Some(d) = &cap.damage {
                    assert!(d.is_truncation(), "cut at {cut}: {d}");
                }
            }
            Err(e) => assert!(e.is_truncation(), "cut at {cut}: {e}"),
        }
    }
    // a flipped bit in each record's chunk: the checksum names that chunk, the records before
    // it survive
    let chunks = chunk_offsets(&bytes);
    for (i, &at) in chunks.iter().enumerate().skip(1).take(records.len()) {
        let mut bad = bytes.clone();
        bad[at + CHUNK_HEADER_LEN + 3] ^= 0x10;
        let cap = Capture::from_reader(&bad[..]).unwrap();
        assert_eq!(cap.records, records[..i - 1], "chunk {i}");
        let damage = cap.damage.unwrap();
        assert!(
            matches!(damage, FormatError::Corrupt { offset, .. } if offset == at as u64),
            "chunk {i}: {damage}"
        );
    }
}

#[test]
fn a_cut_body_of_an_objects_record_is_corrupt_never_misread() {
    let records = objects_records();
    let bytes = one_per_chunk(&records);
    for (i, record) in records.iter().enumerate() {
        let chunk = i + 1; // chunk 0 is the header
        let at = chunk_offsets(&bytes)[chunk] + CHUNK_HEADER_LEN;
        let full = {
            let mut n = 0;
            edit_body(&bytes, chunk, |b| n = b.len());
            n
        };
        for keep in 0..full {
            let bad = edit_body(&bytes, chunk, |b| b.truncate(keep));
            let cap = Capture::from_reader(&bad[..]).unwrap();
            assert_eq!(cap.records, records[..i], "{record:?} cut to {keep}");
            let damage = cap.damage.expect("a cut body is damage");
            let text = damage.to_string();
            assert!(
                matches!(damage, FormatError::Corrupt { offset, .. } if offset == at as u64),
                "{text}"
            );
            assert!(text.contains("record with tag 1"), "{text}");
        }
    }
}

#[test]
fn fields_appended_to_objects_records_are_ignored() {
    // a later minor version may append fields to these bodies; this reader must skip them
    let records = objects_records();
    let bytes = one_per_chunk(&records);
    for i in 0..records.len() {
        let longer = edit_body(&bytes, i + 1, |b| b.extend_from_slice(&[0x81, 0x01, 7, 0]));
        let cap = Capture::from_reader(&longer[..]).unwrap();
        assert!(cap.damage.is_none(), "{:?}", cap.damage);
        assert_eq!(cap.records, records);
    }
}

#[test]
fn unknown_tags_still_read_as_unknown_next_to_objects_records() {
    // what a 1.1 reader did with a tag it did not know, this reader still does with tags past 16
    let mut records = objects_records();
    records.insert(
        1,
        Record::Unknown(UnknownRecord {
            tag: 99,
            body: vec![11, 12, 13, 14],
        }),
    );
    records.push(Record::Unknown(UnknownRecord {
        tag: 17,
        body: vec![],
    }));
    let mut bytes = one_per_chunk(&records);
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.minor_version, VERSION_MINOR);
    assert_eq!(cap.records, records);
    assert!(
        matches!(&cap.records[1], Record::Unknown(u) if u.tag == 99 && u.body == [11, 12, 13, 14])
    );
    // the same file marked 1.1 (as a 1.1 writer would have): read the same way
    bytes[10..12].copy_from_slice(&1u16.to_le_bytes());
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    assert_eq!(cap.minor_version, 1);
    assert_eq!(cap.records, records);
}

fn reading() -> impl Strategy<Value = ProcessReading> {
    (
        any::<u32>(),
        proptest::array::uniform9(proptest::option::of(any::<u64>())),
    )
        .prop_map(|(pid, v)| ProcessReading {
            pid,
            rss: v[0],
            vms: v[1],
            uss: v[2],
            pss: v[3],
            swap: v[4],
            peak: v[5],
            fds: v[6],
            threads: v[7],
            own: v[8],
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

// 1.2 records. An optional value is stored as value + 1, so `u64::MAX` itself saturates and is
// not representable: the strategies stay below it.
fn census_type() -> impl Strategy<Value = CensusType> {
    (
        ".*",
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(0..u64::MAX),
        proptest::collection::vec(any::<u64>(), 0..5),
    )
        .prop_map(|(name, count, bytes, retained, samples)| CensusType {
            name,
            count,
            bytes,
            retained,
            samples,
        })
}

fn census() -> impl Strategy<Value = Census> {
    (
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        any::<bool>(),
        proptest::collection::vec(any::<u64>(), 0..4),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        proptest::collection::vec(census_type(), 0..6),
    )
        .prop_map(
            |((t_ns, duration_ns, objects, bytes), gc_enabled, gc_counts, unreach, types)| Census {
                t_ns,
                duration_ns,
                objects,
                bytes,
                gc_enabled,
                gc_counts,
                unreachable: unreach.0,
                unreachable_bytes: unreach.1,
                garbage: unreach.2,
                garbage_types: types
                    .iter()
                    .take(2)
                    .map(|t| (t.name.clone(), t.count))
                    .collect(),
                types,
            },
        )
}

fn gc_collection() -> impl Strategy<Value = GcCollection> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u8>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(t_ns, duration_ns, generation, collected, uncollectable)| GcCollection {
                t_ns,
                duration_ns,
                generation,
                collected,
                uncollectable,
            },
        )
}

fn pymalloc() -> impl Strategy<Value = Pymalloc> {
    let class = (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(size, pools, blocks_in_use, blocks_free)| SizeClass {
            size,
            pools,
            blocks_in_use,
            blocks_free,
        },
    );
    (
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(any::<i64>()),
        proptest::array::uniform12(any::<u64>()),
        proptest::collection::vec(class, 0..8),
    )
        .prop_map(
            |(t_ns, allocated_blocks, total_refcount, v, classes)| Pymalloc {
                t_ns,
                allocated_blocks,
                total_refcount,
                arena_size: v[0],
                pool_size: v[1],
                arenas_allocated_total: v[2],
                arenas_reclaimed: v[3],
                arenas_highwater: v[4],
                arenas_now: v[5],
                bytes_in_use: v[6],
                bytes_free_blocks: v[7],
                unused_pools: v[8],
                bytes_pool_headers: v[9],
                bytes_quantization: v[10],
                bytes_arena_alignment: v[11],
                classes,
            },
        )
}

fn holder() -> impl Strategy<Value = Holder> {
    let step = (".*", ".*", ".*", any::<u64>(), any::<u64>()).prop_map(
        |(edge, type_name, repr, addr, size)| HolderStep {
            edge,
            type_name,
            repr,
            addr,
            size,
        },
    );
    (
        any::<u32>(),
        any::<u64>(),
        any::<u8>(),
        ".*",
        proptest::collection::vec(step, 0..6),
    )
        .prop_map(|(stack, addr, root_kind, root, steps)| Holder {
            stack,
            addr,
            root_kind,
            root,
            steps,
        })
}

fn mapping() -> impl Strategy<Value = Mapping> {
    (
        any::<u32>(),
        ".*",
        "[0-9a-f]{0,40}",
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(id, path, build_id, start, end, bias, unwind)| Mapping {
            id,
            path,
            build_id,
            start,
            end,
            bias,
            unwind,
        })
}

fn native_frame() -> impl Strategy<Value = NativeFrame> {
    (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(id, mapping, address)| NativeFrame {
        id,
        mapping,
        address,
    })
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        mapping().prop_map(Record::Mapping),
        native_frame().prop_map(Record::NativeFrame),
        census().prop_map(Record::Census),
        gc_collection().prop_map(Record::Gc),
        pymalloc().prop_map(Record::Pymalloc),
        holder().prop_map(Record::Holder),
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
    fn any_objects_record_cut_short_is_an_error(
        record in prop_oneof![
            census().prop_map(Record::Census),
            gc_collection().prop_map(Record::Gc),
            pymalloc().prop_map(Record::Pymalloc),
            holder().prop_map(Record::Holder),
            mapping().prop_map(Record::Mapping),
            native_frame().prop_map(Record::NativeFrame),
        ],
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = one_per_chunk(std::slice::from_ref(&record));
        let mut full = 0;
        edit_body(&bytes, 1, |b| full = b.len());
        let keep = cut.index(full);
        let bad = edit_body(&bytes, 1, |b| b.truncate(keep));
        let cap = Capture::from_reader(&bad[..]).unwrap();
        prop_assert!(cap.records.is_empty());
        prop_assert!(
            matches!(cap.damage, Some(FormatError::Corrupt { .. })),
            "{:?}",
            cap.damage
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = capture(2, 1, false);
        bytes.truncate(PREAMBLE_LEN);
        bytes.extend_from_slice(&tail);
        let _ = Capture::from_reader(&bytes[..]).map(|c| c.records.len());
    }
}
