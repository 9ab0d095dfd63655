//! The memsleuth capture format, version 1 (see `docs/format.md`, which this crate implements).
//!
//! A capture is a 16-byte preamble followed by framed, checksummed chunks; each chunk holds
//! length-prefixed records with append-only tags. The writer never needs to seek, so a capture
//! cut short by a crash is valid up to its last complete chunk; the reader never trusts its input
//! and reports where a damaged file breaks while still yielding everything before that point.

mod codec;
mod error;
mod follow;
mod reader;
mod records;
mod writer;

pub use error::FormatError;
pub use follow::Follow;
pub use reader::{open_capture, read_capture, read_capture_series, Capture, Reader};
pub use records::{
    AllocEvent, Census, CensusType, Domain, EndReason, EventKind, Events, ExitStatus, Field, Frame,
    GcCollection, Header, Holder, HolderStep, Mapping, Mark, NativeFrame, ProcessExit, ProcessInfo,
    ProcessReading, Pymalloc, Record, Sample, SizeClass, StackNode, ThreadInfo, Trailer,
    UnknownRecord,
};
pub use writer::CaptureWriter;

/// First eight bytes of every capture. The high byte and CR LF / SUB catch files mangled by
/// text-mode transfers, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89MSL\r\n\x1a\n";
/// Major version: readers refuse captures with a different major version.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version: readers accept any minor version of their major and skip what they do not know.
pub const VERSION_MINOR: u16 = 5;
/// Marker at the start of every chunk; lets a reader name the exact offset where framing breaks.
pub const CHUNK_MARKER: [u8; 4] = *b"MSLC";
/// Size of the preamble: magic, major, minor, 4 reserved bytes.
pub const PREAMBLE_LEN: usize = 16;
/// Size of a chunk header: marker, payload length, CRC-32 of the payload, codec byte.
pub const CHUNK_HEADER_LEN: usize = 13;
/// Largest payload a reader accepts; anything larger is treated as corruption, not allocated.
pub const MAX_CHUNK_PAYLOAD: u32 = 64 << 20;
/// Chunk codec 0: the payload is stored as is.
pub const CODEC_STORED: u8 = 0;
/// Chunk codec 1 (format 1.1): LZ4 block with its decompressed size as a 4-byte little-endian
/// prefix. The checksum covers the bytes on disk.
pub const CODEC_LZ4: u8 = 1;
/// Mark labels (1.3) of the phases of a program run under `memsleuth run`: its main code
/// returned or raised, then its shutdown (threads joined, `atexit` handlers) ended. What
/// follows the last is memsleuth's own exit work. Each mark precedes in the file every event
/// stamped after it.
pub const PHASE_MAIN_END: &str = "memsleuth:main-end";
pub const PHASE_SHUTDOWN_END: &str = "memsleuth:shutdown-end";
/// Mark label of `memsleuth attach`'s recording end: the hooks stopped recording, and what
/// follows is memsleuth's own end work (the last census, the holders) while the program goes
/// on. Like [`PHASE_MAIN_END`], it ends the program's time for the analyses.
pub const PHASE_RECORDING_END: &str = "memsleuth:recording-end";

/// Whether a mark ends the program's time for the analyses: what follows it is not the
/// program's to be judged on.
pub fn ends_program_time(label: &str) -> bool {
    label == PHASE_MAIN_END || label == PHASE_RECORDING_END
}

/// Mark label of `hunt`'s tracked runs: one before the first, one after each (the caches
/// cleared and the gc run), so what each run left alive can be read at its mark.
pub const HUNT_RUN: &str = "memsleuth:hunt-run";
/// Conventional file extension.
pub const EXTENSION: &str = "msl";
