use std::io::Write;

use crate::codec::Enc;
use crate::records::{Header, Record, Trailer};
use crate::{FormatError, CHUNK_MARKER, MAGIC, VERSION_MAJOR, VERSION_MINOR};

/// Writes a capture: records accumulate in the current chunk until [`CaptureWriter::flush`]
/// frames, checksums and writes it. The owner decides the flush policy (the recorder flushes at
/// least once a second), which bounds what a crash can lose.
#[derive(Debug)]
pub struct CaptureWriter<W: Write> {
    out: W,
    chunk: Vec<u8>,
    body: Vec<u8>,
    flushes: u64,
    compress: bool,
    /// Bytes handed to `out`: the capture's length on disk once `out` is flushed.
    written: u64,
}

impl<W: Write> CaptureWriter<W> {
    /// Writes the preamble and the header, and flushes them at once so that even a capture whose
    /// target dies immediately is a valid, readable file.
    pub fn new(mut out: W, header: &Header) -> Result<Self, FormatError> {
        let mut preamble = Vec::with_capacity(crate::PREAMBLE_LEN);
        preamble.extend_from_slice(&MAGIC);
        preamble.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
        preamble.extend_from_slice(&VERSION_MINOR.to_le_bytes());
        preamble.extend_from_slice(&[0u8; 4]);
        out.write_all(&preamble)?;
        let mut w = CaptureWriter {
            out,
            chunk: Vec::with_capacity(64 << 10),
            body: Vec::with_capacity(1 << 10),
            flushes: 0,
            compress: false,
            written: crate::PREAMBLE_LEN as u64,
        };
        w.push(&Record::Header(header.clone()));
        w.flush()?;
        Ok(w)
    }

    /// Compresses every later chunk with LZ4 (codec 1, format 1.1). Worth it for allocation
    /// events, which shrink several-fold; the header chunk always stays stored so any reader can
    /// identify the capture.
    pub fn set_compression(&mut self, on: bool) {
        self.compress = on;
    }

    /// Adds a record to the current chunk. Nothing reaches the file until the next flush.
    pub fn push(&mut self, record: &Record) {
        self.body.clear();
        record.encode_body(&mut self.body);
        let mut e = Enc(&mut self.chunk);
        e.u64(record.tag());
        e.u64(self.body.len() as u64);
        self.chunk.extend_from_slice(&self.body);
    }

    /// Bytes waiting in the current chunk.
    pub fn pending(&self) -> usize {
        self.chunk.len()
    }

    /// Chunks written so far.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// The capture's length so far, up to its last complete chunk: a reader that stops there
    /// never meets a chunk still being written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Frames the pending records as one chunk and hands it to the OS. A no-op when nothing is
    /// pending.
    pub fn flush(&mut self) -> Result<(), FormatError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        if self.chunk.len() > crate::MAX_CHUNK_PAYLOAD as usize {
            return Err(std::io::Error::other("chunk larger than the format allows").into());
        }
        let compressed;
        let (codec, payload) = if self.compress {
            compressed = lz4_flex::compress_prepend_size(&self.chunk);
            (crate::CODEC_LZ4, &compressed)
        } else {
            (crate::CODEC_STORED, &self.chunk)
        };
        let len = u32::try_from(payload.len())
            .map_err(|_| std::io::Error::other("chunk larger than the format allows"))?;
        let mut head = [0u8; crate::CHUNK_HEADER_LEN];
        head[0..4].copy_from_slice(&CHUNK_MARKER);
        head[4..8].copy_from_slice(&len.to_le_bytes());
        head[8..12].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        head[12] = codec;
        self.out.write_all(&head)?;
        self.out.write_all(payload)?;
        self.out.flush()?;
        self.written += (crate::CHUNK_HEADER_LEN + payload.len()) as u64;
        self.chunk.clear();
        self.flushes += 1;
        Ok(())
    }

    /// Gives the sink back without a trailer, leaving what a killed recorder leaves: a capture
    /// that reads up to its last flush and says it was cut short.
    pub fn abandon(self) -> W {
        self.out
    }

    /// Writes the trailer in a chunk of its own and returns the sink. `trailer.flushes` is filled
    /// in here so it counts the trailer's chunk too.
    pub fn finish(mut self, mut trailer: Trailer) -> Result<W, FormatError> {
        self.flush()?;
        trailer.flushes = self.flushes + 1;
        self.push(&Record::Trailer(trailer));
        self.flush()?;
        Ok(self.out)
    }
}
