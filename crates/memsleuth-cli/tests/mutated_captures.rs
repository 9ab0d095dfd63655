//! The reader and every report against hostile captures: the committed corpus of reproducers
//! (`tests/fixtures/hostile/`), then real captures mutated at random for a bounded time.
//!
//! A random byte flip almost always fails a chunk checksum, which would only test the
//! checksum. So mutations are made on the decoded records (or the decompressed chunk payloads)
//! and the chunks framed again with valid lengths and checksums: every byte past the framing
//! reaches the record decoder and the analyses. Every report must end with an exit code, never
//! a panic, a hang or an abort; a case that breaks one is left in `target/fuzz-failures/` with
//! the command that broke it.
//!
//! Time budget: `MEMSLEUTH_FUZZ_SECONDS` (default 20), at least 40 cases. Seed:
//! `MEMSLEUTH_FUZZ_SEED` (default 1; `random` for a new one each run).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memsleuth_format::{CHUNK_HEADER_LEN, CHUNK_MARKER, CODEC_LZ4, CODEC_STORED, PREAMBLE_LEN};

mod common;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Real captures of every format version.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let fixtures = repo().join("tests/fixtures");
    let mut out = Vec::new();
    for version in ["v1.0", "v1.1", "v1.2", "v1.3"] {
        let dir = fixtures.join(version);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "msl"))
            .collect();
        names.sort();
        for p in names {
            out.push((
                p.display().to_string(),
                std::fs::read(&p).expect("read fixture"),
            ));
        }
    }
    assert!(out.len() >= 4, "golden captures missing");
    out
}

/// One chunk of a capture: its codec and decompressed payload.
struct Chunk {
    codec: u8,
    payload: Vec<u8>,
}

/// Splits a well-formed capture into its preamble and chunks.
fn split(bytes: &[u8]) -> (Vec<u8>, Vec<Chunk>) {
    let mut chunks = Vec::new();
    let mut at = PREAMBLE_LEN;
    while at + CHUNK_HEADER_LEN <= bytes.len() {
        let head = &bytes[at..at + CHUNK_HEADER_LEN];
        assert_eq!(head[0..4], CHUNK_MARKER, "seed captures are well formed");
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let codec = head[12];
        let raw = &bytes[at + CHUNK_HEADER_LEN..at + CHUNK_HEADER_LEN + len];
        let payload = if codec == CODEC_LZ4 {
            lz4_flex::decompress_size_prepended(raw).expect("seed chunk decompresses")
        } else {
            raw.to_vec()
        };
        chunks.push(Chunk { codec, payload });
        at += CHUNK_HEADER_LEN + len;
    }
    (bytes[..PREAMBLE_LEN].to_vec(), chunks)
}

/// Frames chunks again, with valid lengths and checksums.
fn join(preamble: &[u8], chunks: &[Chunk]) -> Vec<u8> {
    let mut out = preamble.to_vec();
    for c in chunks {
        let body = if c.codec == CODEC_LZ4 {
            lz4_flex::compress_prepend_size(&c.payload)
        } else {
            c.payload.clone()
        };
        out.extend_from_slice(&CHUNK_MARKER);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.push(c.codec);
        out.extend_from_slice(&body);
    }
    out
}

/// SplitMix64: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that break naive decoders: varint-ish extremes and boundaries.
const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0xffff_ffff,
    u64::MAX,
    1 << 40,
    (1 << 31) - 1,
];

/// Mutates one seed. Most mutations keep the framing valid so that the payload is what is tested.
fn mutate(rng: &mut Rng, seed: &[u8]) -> (Vec<u8>, String) {
    let (preamble, mut chunks) = split(seed);
    let rounds = 1 + rng.below(4);
    let mut what = Vec::new();
    for _ in 0..rounds {
        // never the header chunk alone: a damaged header is one error, tested by the corpus
        let c = if chunks.len() > 1 {
            1 + rng.below(chunks.len() - 1)
        } else {
            0
        };
        let payload = &mut chunks[c].payload;
        let n = payload.len().max(1);
        match rng.below(9) {
            0 if !payload.is_empty() => {
                let at = rng.below(n);
                payload[at] ^= 1 << rng.below(8);
                what.push(format!("bit flip in chunk {c} at {at}"));
            }
            1 if !payload.is_empty() => {
                let at = rng.below(n);
                payload[at] = rng.next() as u8;
                what.push(format!("byte set in chunk {c} at {at}"));
            }
            2 => {
                let at = rng.below(n);
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let mut enc = Vec::new();
                let mut x = v;
                loop {
                    let b = (x & 0x7f) as u8;
                    x >>= 7;
                    if x == 0 {
                        enc.push(b);
                        break;
                    }
                    enc.push(b | 0x80);
                }
                let end = (at + enc.len()).min(payload.len());
                payload.splice(at.min(payload.len())..end, enc);
                what.push(format!("varint {v} written in chunk {c} at {at}"));
            }
            3 if payload.len() > 1 => {
                let at = rng.below(n);
                let len = 1 + rng.below((n - at).min(64));
                payload.drain(at..(at + len).min(payload.len()));
                what.push(format!("{len} bytes cut from chunk {c} at {at}"));
            }
            4 => {
                let at = rng.below(n);
                let len = 1 + rng.below(64);
                let from = rng.below(n);
                let copy: Vec<u8> = payload
                    .iter()
                    .cycle()
                    .skip(from)
                    .take(len)
                    .copied()
                    .collect();
                let at = at.min(payload.len());
                payload.splice(at..at, copy);
                what.push(format!("{len} bytes duplicated into chunk {c} at {at}"));
            }
            5 if chunks.len() > 2 => {
                let from = 1 + rng.below(chunks.len() - 1);
                let copy = Chunk {
                    codec: chunks[from].codec,
                    payload: chunks[from].payload.clone(),
                };
                let to = 1 + rng.below(chunks.len() - 1);
                chunks.insert(to, copy);
                what.push(format!("chunk {from} repeated before chunk {to}"));
            }
            6 if chunks.len() > 2 => {
                let (a, b) = (
                    1 + rng.below(chunks.len() - 1),
                    1 + rng.below(chunks.len() - 1),
                );
                chunks.swap(a, b);
                what.push(format!("chunks {a} and {b} swapped"));
            }
            7 if chunks.len() > 2 => {
                let gone = 1 + rng.below(chunks.len() - 1);
                chunks.remove(gone);
                what.push(format!("chunk {gone} removed"));
            }
            _ => {
                // a stored chunk where the writer compressed, or the other way round
                chunks[c].codec = if chunks[c].codec == CODEC_LZ4 {
                    CODEC_STORED
                } else {
                    CODEC_LZ4
                };
                what.push(format!("chunk {c} recoded"));
            }
        }
    }
    let mut bytes = join(&preamble, &chunks);
    if rng.below(6) == 0 {
        // and sometimes the raw file is cut too, as a kill or a full disk leaves it
        let keep = rng.below(bytes.len());
        bytes.truncate(keep.max(PREAMBLE_LEN));
        what.push(format!("file cut at byte {}", bytes.len()));
    }
    (bytes, what.join(", "))
}

/// Every report, on `capture`, writing any files into `out`.
fn reports(capture: &str, other: &str, out: &Path) -> Vec<Vec<String>> {
    let o = |name: &str| out.join(name).display().to_string();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["summary"],
        vec!["summary", "--json"],
        vec!["timeline", "--json"],
        vec!["leaks"],
        vec!["leaks", "--json", "--at", "0.05"],
        vec!["peak"],
        vec!["table"],
        vec!["tree"],
        vec!["growth"],
        vec!["gc"],
        vec!["pymalloc"],
    ];
    let mut all: Vec<Vec<String>> = cmds
        .into_iter()
        .map(|c| {
            let mut v = vec!["memsleuth".to_string(), "report".into(), c[0].into()];
            v.push(capture.into());
            v.extend(c[1..].iter().map(|s| s.to_string()));
            v
        })
        .collect();
    let with_output: [(&str, &[&str], &str); 6] = [
        ("timeline", &[], "t.svg"),
        ("timeline", &["--html"], "t.html"),
        ("flamegraph", &[], "f.html"),
        ("export", &["--format", "json"], "e.json"),
        ("export", &["--format", "collapsed"], "e.txt"),
        ("export", &["--format", "pprof"], "e.pb.gz"),
    ];
    for (cmd, flags, file) in with_output {
        let mut v = vec!["memsleuth".to_string(), "report".into(), cmd.into()];
        v.push(capture.into());
        v.extend(flags.iter().map(|s| s.to_string()));
        v.extend(["-o".to_string(), o(file)]);
        all.push(v);
    }
    all.push(vec![
        "memsleuth".into(),
        "report".into(),
        "diff".into(),
        other.into(),
        capture.into(),
    ]);
    all
}

/// Points file descriptors 1 and 2 at /dev/null while alive: the reports print, and thousands
/// of them would drown the test's own output.
struct Quiet {
    saved: [i32; 2],
}

impl Quiet {
    fn new() -> Quiet {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: plain descriptor calls on descriptors this process owns.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            let saved = [libc::dup(1), libc::dup(2)];
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            libc::close(null);
            Quiet { saved }
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: restores the descriptors saved in `new`.
        unsafe {
            libc::dup2(self.saved[0], 1);
            libc::dup2(self.saved[1], 2);
            libc::close(self.saved[0]);
            libc::close(self.saved[1]);
        }
    }
}

/// Runs every report on `bytes`; returns the failures (a panic or an exit code outside 0–3).
fn check(bytes: &[u8], other: &str, scratch: &Path) -> Vec<String> {
    // the tests run on threads of one process, and `Quiet` redirects the whole process
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let capture = scratch.join("case.msl");
    std::fs::write(&capture, bytes).expect("write case");
    // left behind if the process dies (an abort cannot be caught): the reproducer of a crash
    let _ = std::fs::write(failures().join("last-case.msl"), bytes);
    let mut bad = Vec::new();
    let quiet = Quiet::new();
    for args in reports(&capture.display().to_string(), other, scratch) {
        let shown = args[1..].join(" ");
        let argv: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        match std::panic::catch_unwind(|| memsleuth_cli::main_with_args(argv)) {
            Ok(code) if (0..=3).contains(&code) => {}
            Ok(code) => bad.push(format!("`{shown}` exited with {code}")),
            Err(_) => bad.push(format!("`{shown}` panicked")),
        }
    }
    drop(quiet);
    bad
}

fn failures() -> PathBuf {
    let d = repo().join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&d);
    d
}

#[test]
fn the_committed_corpus_of_hostile_captures() {
    let dir = repo().join("tests/fixtures/hostile");
    let scratch = common::dir("corpus");
    let other = repo().join("tests/fixtures/v1.1/leak-run.msl");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/hostile")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "msl"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "corpus missing: {}", dir.display());
    let mut bad = Vec::new();
    for p in &names {
        let bytes = std::fs::read(p).expect("read corpus file");
        for b in check(&bytes, &other.display().to_string(), &scratch) {
            bad.push(format!("{}: {b}", p.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn mutated_real_captures_never_break_a_report() {
    let budget = std::env::var("MEMSLEUTH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    // a fixed seed by default, so a CI run repeats the last one's cases before going further;
    // MEMSLEUTH_FUZZ_SEED=random explores
    let seed: u64 = match std::env::var("MEMSLEUTH_FUZZ_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        Some(s) => s.parse().unwrap_or(1),
        None => 1,
    };
    let seeds = seeds();
    let scratch = common::dir("fuzz");
    let other = &seeds[0].0;
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut cases = 0u64;
    let mut bad = Vec::new();
    while cases < 40 || started.elapsed() < Duration::from_secs(budget) {
        let (name, bytes) = &seeds[rng.below(seeds.len())];
        let (mutated, what) = mutate(&mut rng, bytes);
        let broke = check(&mutated, other, &scratch);
        if !broke.is_empty() {
            let keep = failures().join(format!("case-{seed}-{cases}.msl"));
            let _ = std::fs::write(&keep, &mutated);
            bad.push(format!(
                "{} ({name}: {what}): {}",
                keep.display(),
                broke.join("; ")
            ));
        }
        cases += 1;
    }
    println!("{cases} mutated captures, seed {seed} (MEMSLEUTH_FUZZ_SEED={seed} repeats them)");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
