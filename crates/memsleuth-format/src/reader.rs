use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::codec::Dec;
use crate::records::{Header, Record, Trailer};
use crate::{
    FormatError, CHUNK_HEADER_LEN, CHUNK_MARKER, CODEC_LZ4, CODEC_STORED, MAGIC, MAX_CHUNK_PAYLOAD,
    PREAMBLE_LEN, VERSION_MAJOR,
};

/// Streams the records of a capture, validating as it goes. After the first error the stream
/// ends: every record yielded before it is sound.
#[derive(Debug)]
pub struct Reader<R: Read> {
    input: R,
    offset: u64,
    minor: u16,
    payload: Vec<u8>,
    pos: usize,
    payload_start: u64,
    done: bool,
    /// Chunks read so far, the header's included: what was flushed, when no trailer says so.
    chunks: u64,
    /// The trailer has been read: anything after it is damage.
    ended: bool,
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Decompresses an LZ4 chunk, refusing sizes beyond the format's limit before allocating.
fn decompress(raw: &[u8]) -> Option<Vec<u8>> {
    let size: [u8; 4] = raw.get(..4)?.try_into().ok()?;
    if u32::from_le_bytes(size) > MAX_CHUNK_PAYLOAD {
        return None;
    }
    lz4_flex::decompress_size_prepended(raw).ok()
}

impl<R: Read> Reader<R> {
    /// Checks the preamble. Fails on a foreign file or a major version this reader cannot read.
    pub fn new(mut input: R) -> Result<Self, FormatError> {
        let mut pre = [0u8; PREAMBLE_LEN];
        let got = fill(&mut input, &mut pre)?;
        if got == 0 {
            return Err(FormatError::Empty);
        }
        if got < MAGIC.len() || pre[..MAGIC.len()] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        if got < PREAMBLE_LEN {
            return Err(FormatError::Truncated {
                offset: got as u64,
                what: "the preamble is incomplete",
            });
        }
        let major = u16::from_le_bytes([pre[8], pre[9]]);
        let minor = u16::from_le_bytes([pre[10], pre[11]]);
        if major != VERSION_MAJOR {
            return Err(FormatError::UnsupportedVersion {
                found_major: major,
                found_minor: minor,
                supported: VERSION_MAJOR,
            });
        }
        Ok(Reader {
            input,
            offset: PREAMBLE_LEN as u64,
            minor,
            payload: Vec::new(),
            pos: 0,
            payload_start: 0,
            done: false,
            chunks: 0,
            ended: false,
        })
    }

    /// Minor version of the capture being read.
    pub fn minor_version(&self) -> u16 {
        self.minor
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The input, to let it grow: a capture still being written is read as far as it is
    /// complete, and again later from where the last read stopped.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// True when every record of the chunks loaded so far has been read: stopping here loses
    /// nothing, and the next record opens the next chunk.
    pub fn at_chunk_end(&self) -> bool {
        self.pos >= self.payload.len()
    }

    /// Chunks read so far (each is one flush of the writer).
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Loads the next chunk. `Ok(false)` at a clean end of file.
    fn next_chunk(&mut self) -> Result<bool, FormatError> {
        let start = self.offset;
        let mut head = [0u8; CHUNK_HEADER_LEN];
        let got = fill(&mut self.input, &mut head)?;
        if got == 0 {
            return Ok(false);
        }
        if got < CHUNK_HEADER_LEN {
            return Err(FormatError::Truncated {
                offset: start + got as u64,
                what: "a chunk header is incomplete",
            });
        }
        if head[0..4] != CHUNK_MARKER {
            return Err(FormatError::Corrupt {
                offset: start,
                what: "expected a chunk marker".into(),
            });
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if len > MAX_CHUNK_PAYLOAD {
            return Err(FormatError::Corrupt {
                offset: start + 4,
                what: format!("chunk length {len} exceeds the format's limit"),
            });
        }
        let codec = head[12];
        if codec != CODEC_STORED && codec != CODEC_LZ4 {
            return Err(FormatError::Corrupt {
                offset: start + 12,
                what: format!("chunk codec {codec} is unknown to this version"),
            });
        }
        self.payload.resize(len as usize, 0);
        let got = fill(&mut self.input, &mut self.payload)?;
        let payload_start = start + CHUNK_HEADER_LEN as u64;
        if got < len as usize {
            return Err(FormatError::Truncated {
                offset: payload_start + got as u64,
                what: "the last chunk is incomplete",
            });
        }
        if crc32fast::hash(&self.payload) != crc {
            return Err(FormatError::Corrupt {
                offset: start,
                what: "chunk checksum does not match its contents".into(),
            });
        }
        if codec == CODEC_LZ4 {
            self.payload = decompress(&self.payload).ok_or_else(|| FormatError::Corrupt {
                offset: payload_start,
                what: "compressed chunk does not decompress".into(),
            })?;
        }
        self.offset = payload_start + u64::from(len);
        self.payload_start = payload_start;
        self.pos = 0;
        self.chunks += 1;
        Ok(true)
    }

    /// After the trailer only the end of the file may come; a byte more is damage, reported
    /// where it starts.
    fn expect_end(&mut self) -> Result<Option<Record>, FormatError> {
        if self.pos < self.payload.len() {
            return Err(FormatError::AfterEnd {
                offset: self.payload_start + self.pos as u64,
            });
        }
        let mut byte = [0u8; 1];
        if fill(&mut self.input, &mut byte)? == 0 {
            return Ok(None);
        }
        Err(FormatError::AfterEnd {
            offset: self.offset,
        })
    }

    /// The next record, `Ok(None)` at a clean end of the capture.
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.ended {
            return self.expect_end();
        }
        while self.pos >= self.payload.len() {
            if !self.next_chunk()? {
                return Ok(None);
            }
        }
        let at = self.payload_start + self.pos as u64;
        let corrupt = |what: &str| FormatError::Corrupt {
            offset: at,
            what: what.to_string(),
        };
        let mut d = Dec::new(&self.payload[self.pos..]);
        let tag = d.u64().map_err(|e| corrupt(e.0))?;
        let len = d
            .count()
            .map_err(|_| corrupt("record length exceeds its chunk"))?;
        let body = d.bytes(len).map_err(|e| corrupt(e.0))?;
        let record = Record::decode(tag, body)
            .map_err(|e| corrupt(&format!("record with tag {tag}: {}", e.0)))?;
        self.pos += (self.payload.len() - self.pos) - (d.remaining());
        self.ended = matches!(record, Record::Trailer(_));
        Ok(Some(record))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Record, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A whole capture in memory, read leniently: `damage` holds the error that ended reading early,
/// with every record before it kept.
#[derive(Debug)]
pub struct Capture {
    pub header: Header,
    pub minor_version: u16,
    /// Every record after the header, trailer excluded.
    pub records: Vec<Record>,
    /// Present when the capture was finished properly.
    pub trailer: Option<Trailer>,
    /// Why reading stopped before the end, if it did.
    pub damage: Option<FormatError>,
    /// Chunks read, the header's and the trailer's included: the flushes that reached the file.
    pub chunks: u64,
}

impl Capture {
    /// True when the capture ended without its trailer (target killed, crash, or damage).
    pub fn cut_short(&self) -> bool {
        self.trailer.is_none()
    }

    /// Reads a capture from any byte source.
    pub fn from_reader(input: impl Read) -> Result<Capture, FormatError> {
        Self::from_reader_keeping(input, |_| true)
    }

    /// Reads a capture, keeping in `records` only those `keep` accepts. Every record is still
    /// decoded and validated; reports that need only the memory series use this to leave
    /// millions of allocation events out of memory.
    pub fn from_reader_keeping(
        input: impl Read,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<Capture, FormatError> {
        let mut reader = Reader::new(input)?;
        let header = match reader.next_record() {
            Ok(Some(Record::Header(h))) => h,
            Ok(Some(_)) => return Err(FormatError::MissingHeader),
            Ok(None) => {
                return Err(FormatError::Truncated {
                    offset: reader.offset(),
                    what: "the capture ends before its header",
                })
            }
            Err(e) => return Err(e),
        };
        let mut capture = Capture {
            header,
            minor_version: reader.minor_version(),
            records: Vec::new(),
            trailer: None,
            damage: None,
            chunks: 0,
        };
        loop {
            match reader.next_record() {
                Ok(Some(Record::Trailer(t))) => capture.trailer = Some(t),
                Ok(Some(r)) if keep(&r) => capture.records.push(r),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    capture.damage = Some(e);
                    break;
                }
            }
        }
        capture.chunks = reader.chunks();
        Ok(capture)
    }
}

/// What a file that is not a regular one is, in words: `a FIFO`, `a directory`...
fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Refuses anything but a regular file (symbolic links are followed).
fn regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), FormatError> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(FormatError::NotAFile {
            path: path.to_path_buf(),
            kind: file_kind(meta.file_type()),
        })
    }
}

/// Opens a capture file for reading: every report and the Python API read captures through
/// this. A FIFO would block the open (or the first read) until something writes to it, a
/// device such as `/dev/zero` never ends, and a directory fails with an obscure error, so
/// anything but a regular file is refused with one sentence. The type is checked before the
/// open, and again on the opened file (opened non-blocking, so a FIFO swapped in between
/// cannot hang it).
pub fn open_capture(path: &Path) -> Result<File, FormatError> {
    regular(path, &std::fs::metadata(path)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // no effect on a regular file's reads; stops an open of a FIFO from waiting
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    regular(path, &file.metadata()?)?;
    Ok(file)
}

/// Reads a capture file leniently (see [`Capture`]). Fails only when not even the header can be
/// read.
pub fn read_capture(path: &Path) -> Result<Capture, FormatError> {
    let file = open_capture(path)?;
    Capture::from_reader(BufReader::with_capacity(256 << 10, file))
}

/// Reads a capture file leniently, leaving out allocation events, frames and stacks: what the
/// memory-over-time reports need.
pub fn read_capture_series(path: &Path) -> Result<Capture, FormatError> {
    let file = open_capture(path)?;
    Capture::from_reader_keeping(BufReader::with_capacity(256 << 10, file), |r| {
        !matches!(
            r,
            Record::Events(_) | Record::Stack(_) | Record::Frame(_) | Record::Thread(_)
        )
    })
}
