use thiserror::Error;

/// Everything that can go wrong reading or writing a capture. Offsets are byte offsets in the
/// file, so a user (or a bug report) can point at the damage.
#[derive(Debug, Error)]
pub enum FormatError {
    /// Said as the system says it ("Permission denied"): whoever shows it names the file, and
    /// an "I/O error:" prefix would only stand in the way of a plain sentence.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a memsleuth capture (bad magic bytes at offset 0)")]
    BadMagic,
    #[error("empty file: not a memsleuth capture")]
    Empty,
    #[error(
        "capture format {found_major}.{found_minor} is not readable by this memsleuth \
         (reads {supported}.x); use a memsleuth release that writes format {found_major}"
    )]
    UnsupportedVersion {
        found_major: u16,
        found_minor: u16,
        supported: u16,
    },
    /// The file ends inside the preamble or a chunk. Reports call the capture damaged (and say
    /// "cut short" only of one that ends cleanly after a chunk, without its trailer).
    #[error("capture is truncated at byte {offset}: {what}")]
    Truncated { offset: u64, what: &'static str },
    #[error("capture is corrupt at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("capture has no header record")]
    MissingHeader,
    /// Records or bytes after the trailer: the trailer ends a capture, so whatever follows was
    /// appended by something else, or the file was spliced.
    #[error("data after the end of the capture at byte {offset}")]
    AfterEnd { offset: u64 },
    /// The path names a FIFO, a directory, a device or a socket: reading one could block
    /// forever or never end, so it is refused before it is opened.
    #[error(
        "{} is not a regular file ({kind}); a capture is a file written by `memsleuth run`, \
         `memsleuth watch` or `memsleuth.Tracker`",
        path.display()
    )]
    NotAFile {
        path: std::path::PathBuf,
        /// `a FIFO`, `a directory`...
        kind: &'static str,
    },
}

impl FormatError {
    /// True when the file simply ends early: the target died or was killed before the last flush.
    pub fn is_truncation(&self) -> bool {
        matches!(self, FormatError::Truncated { .. })
    }

    /// The byte offset in the file where reading broke, when the error names one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            FormatError::Truncated { offset, .. }
            | FormatError::Corrupt { offset, .. }
            | FormatError::AfterEnd { offset } => Some(*offset),
            _ => None,
        }
    }
}
