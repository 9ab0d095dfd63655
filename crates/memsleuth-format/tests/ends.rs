//! How a capture ends: the chunks read when it was cut short, data after its trailer, and files
//! that are not captures at all (FIFOs, directories, devices, sockets) refused before reading.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use memsleuth_format::*;

fn header() -> Header {
    Header {
        tool_version: "0.1.0".into(),
        pid: 4242,
        argv: vec!["python".into(), "leak.py".into()],
        python_version: "3.11.7".into(),
        instruments: vec!["rss".into()],
        sample_interval_ns: 100_000_000,
        ..Header::default()
    }
}

fn sample(i: u64) -> Record {
    Record::Sample(Sample {
        t_ns: i * 100_000_000,
        readings: vec![ProcessReading {
            pid: 4242,
            rss: Some(10 << 20 | i),
            ..ProcessReading::default()
        }],
    })
}

fn trailer(samples: u64) -> Trailer {
    Trailer {
        end_ns: samples * 100_000_000,
        reason: EndReason::TargetExited,
        target_status: ExitStatus::Code(0),
        samples,
        ..Trailer::default()
    }
}

/// `n` samples, one chunk each.
fn writer(n: u64) -> CaptureWriter<Vec<u8>> {
    let mut w = CaptureWriter::new(Vec::new(), &header()).unwrap();
    for i in 0..n {
        w.push(&sample(i));
        w.flush().unwrap();
    }
    w
}

fn read(bytes: &[u8]) -> Capture {
    Capture::from_reader(bytes).unwrap()
}

#[test]
fn a_capture_cut_short_counts_the_chunks_it_has() {
    let c = read(&writer(4).abandon());
    assert!(c.cut_short() && c.damage.is_none());
    // the header's chunk and one per sample
    assert_eq!(c.chunks, 5);
    let finished = read(&writer(4).finish(trailer(4)).unwrap());
    assert_eq!(
        finished.chunks,
        finished.trailer.unwrap().flushes,
        "a finished capture's chunks are its trailer's flushes"
    );
}

#[test]
fn a_valid_chunk_after_the_trailer_is_damage() {
    let whole = writer(3).finish(trailer(3)).unwrap();
    // one more well-formed chunk, as a second writer appending to the file would leave
    let mut more = CaptureWriter::new(Vec::new(), &header()).unwrap().abandon();
    let header_len = more.len();
    let mut w = CaptureWriter::new(std::mem::take(&mut more), &header()).unwrap();
    w.push(&sample(9));
    w.flush().unwrap();
    let extra = w.abandon()[header_len..].to_vec();
    let mut bytes = whole.clone();
    bytes.extend_from_slice(&extra);
    let c = read(&bytes);
    assert!(c.trailer.is_some(), "the trailer is still read");
    assert_eq!(c.records.len(), 3, "the appended sample is not taken");
    let damage = c.damage.expect("damage after the trailer");
    assert_eq!(damage.offset(), Some(whole.len() as u64));
    assert_eq!(
        damage.to_string(),
        format!("data after the end of the capture at byte {}", whole.len())
    );
}

#[test]
fn a_second_trailer_or_stray_bytes_after_the_end_are_damage() {
    let whole = writer(2).finish(trailer(2)).unwrap();
    let mut twice = whole.clone();
    twice.extend_from_slice(&whole[16..]);
    let mut stray = whole.clone();
    stray.push(b'\n');
    for bytes in [twice, stray] {
        let damage = read(&bytes).damage.expect("damage after the trailer");
        assert!(
            matches!(damage, FormatError::AfterEnd { offset } if offset == whole.len() as u64),
            "{damage}"
        );
    }
    assert!(read(&whole).damage.is_none());
}

#[test]
fn a_record_after_the_trailer_in_its_own_chunk_is_damage() {
    let mut w = writer(1);
    w.push(&Record::Trailer(trailer(1)));
    w.push(&sample(5));
    w.flush().unwrap();
    let c = read(&w.abandon());
    assert!(c.trailer.is_some());
    assert!(matches!(c.damage, Some(FormatError::AfterEnd { .. })));
}

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("memsleuth-ends-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads `path` on another thread, so that a read that blocks fails the test instead of
/// hanging it.
fn read_with_timeout(path: &Path) -> Result<Capture, FormatError> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(read_capture(&p));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("reading {} did not return", path.display()))
}

fn refused(path: &Path, kind: &str) {
    let e = read_with_timeout(path).expect_err("refused");
    assert!(
        matches!(&e, FormatError::NotAFile { kind: k, .. } if *k == kind),
        "{}: {e}",
        path.display()
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "{} is not a regular file ({kind}); ",
            path.display()
        )),
        "{text}"
    );
    let series = memsleuth_format::read_capture_series(path).expect_err("refused");
    assert!(matches!(series, FormatError::NotAFile { .. }), "{series}");
}

#[cfg(unix)]
#[test]
fn fifos_directories_devices_and_sockets_are_refused_without_blocking() {
    let d = Scratch::new("special");
    let fifo = d.0.join("f.msl");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    refused(&fifo, "a FIFO");
    // through a symbolic link too
    let link = d.0.join("link.msl");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    refused(&link, "a FIFO");
    refused(&d.0, "a directory");
    refused(Path::new("/dev/zero"), "a character device");
    let socket = d.0.join("s.msl");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    refused(&socket, "a socket");
    // a regular file behind a link still reads
    let file = d.0.join("real.msl");
    std::fs::write(&file, writer(1).finish(trailer(1)).unwrap()).unwrap();
    let to_file = d.0.join("to-real.msl");
    std::os::unix::fs::symlink(&file, &to_file).unwrap();
    assert!(read_with_timeout(&to_file).unwrap().trailer.is_some());
    // and a missing file is still an I/O error that says so
    assert!(matches!(
        read_capture(&d.0.join("missing.msl")),
        Err(FormatError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
}

/// A source that gives `good` bytes, then fails as a failing disk would.
struct FailsAfter<'a> {
    good: &'a [u8],
}

impl std::io::Read for FailsAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good.is_empty() {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        let n = buf.len().min(self.good.len());
        buf[..n].copy_from_slice(&self.good[..n]);
        self.good = &self.good[n..];
        Ok(n)
    }
}

#[test]
fn a_read_error_is_said_as_the_system_says_it() {
    // the reports put it after "x.msl is damaged: " or "cannot read x.msl: ": a plain reason,
    // no "I/O error:" in the middle of their sentence
    let whole = writer(3).finish(trailer(3)).unwrap();
    let c = Capture::from_reader(FailsAfter {
        good: &whole[..whole.len() / 2],
    })
    .unwrap();
    let damage = c.damage.expect("the failed read ends reading");
    assert!(matches!(damage, FormatError::Io(_)), "{damage}");
    let text = damage.to_string();
    assert!(text.starts_with("Input/output error"), "{text}");
    assert!(!text.contains("I/O error"), "{text}");
    let missing = read_capture(Path::new("/nonexistent/x.msl")).expect_err("missing");
    assert!(
        missing.to_string().starts_with("No such file or directory"),
        "{missing}"
    );
}

/// The reading rules of docs/format.md name the errors in the words the reader uses.
#[test]
fn the_spec_says_what_the_reader_says() {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/format.md"))
            .unwrap();
    let spec = spec.split_whitespace().collect::<Vec<_>>().join(" ");
    let said = [
        FormatError::Empty.to_string(),
        "not a memsleuth capture".to_string(),
        FormatError::AfterEnd { offset: 0 }
            .to_string()
            .replace(" 0", " N"),
        "truncated at byte N".to_string(),
        "corrupt at byte N".to_string(),
        FormatError::NotAFile {
            path: "x.msl".into(),
            kind: "a FIFO",
        }
        .to_string()
        .split("; ")
        .next()
        .unwrap()
        .to_string(),
    ];
    for words in said {
        assert!(
            spec.contains(&words),
            "docs/format.md does not say: {words}"
        );
    }
}

/// A capture still being written is read up to the length the writer reports after a flush,
/// and again later from where that read stopped: the reader meets whole chunks only, and its
/// records come out once each, in order.
#[test]
fn a_growing_capture_reads_in_steps_at_the_lengths_the_writer_reports() {
    let mut w = CaptureWriter::new(Vec::new(), &header()).unwrap();
    let mut lengths = Vec::new();
    for i in 0..6 {
        w.push(&sample(i));
        w.flush().unwrap();
        lengths.push(w.written());
    }
    w.push(&sample(6)); // not flushed: beyond the last length reported
    let bytes = w.abandon();
    assert_eq!(
        *lengths.last().unwrap() as usize,
        bytes.len(),
        "what is pending is not counted"
    );
    let mut reader = Reader::new(std::io::Read::take(&bytes[..], lengths[0])).unwrap();
    let mut seen = Vec::new();
    for &upto in &lengths {
        let read = reader.offset();
        reader.get_mut().set_limit(upto - read);
        while let Some(r) = reader.next_record().unwrap() {
            seen.push(r);
        }
        assert_eq!(reader.offset(), upto);
    }
    let times: Vec<u64> = seen
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s.t_ns),
            _ => None,
        })
        .collect();
    assert_eq!(times, (0..6).map(|i| i * 100_000_000).collect::<Vec<_>>());
}
