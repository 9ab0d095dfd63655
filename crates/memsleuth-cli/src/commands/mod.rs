pub mod attach;
mod attach_pass;
pub mod hunt;
pub mod instruments;
pub mod live;
pub mod program_seen;
pub mod report;
pub mod run;
pub mod watch;

use std::path::Path;

use anyhow::Context;
use memsleuth_analysis::{TimelineReport, VerdictOptions};
use memsleuth_format::FormatError;

/// A command line shortened for messages.
pub fn short_command(argv: &[String]) -> String {
    memsleuth_render::summary::command(argv, 60)
}

/// A reading error in words that name the capture once.
pub fn read_error(path: &Path, e: FormatError) -> anyhow::Error {
    match e {
        FormatError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("capture {} does not exist", path.display())
        }
        FormatError::Io(io) => {
            anyhow::anyhow!("cannot read {}: {}", path.display(), crate::io_reason(&io))
        }
        // names the path itself
        e @ FormatError::NotAFile { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(other).context(format!("cannot read {}", path.display())),
    }
}

/// Reads and analyses a capture, warning (not failing) when it was cut short or damaged.
pub fn load_report(path: &Path) -> anyhow::Result<TimelineReport> {
    let capture = memsleuth_format::read_capture_series(path).map_err(|e| read_error(path, e))?;
    TimelineReport::from_capture(&capture, &VerdictOptions::default())
        .with_context(|| format!("cannot analyse {}", path.display()))
}

/// `--native-frames`: which native frames of the C allocator's allocations (`run --native`) the
/// reports show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NativeFramesArg {
    /// No native frame: the Python line is the site
    None,
    /// The innermost frame of the program's own native code (an extension, a library), not the
    /// interpreter's or the C runtime's
    Boundary,
    /// Every native frame between the allocator and the Python frame
    All,
}

impl NativeFramesArg {
    /// Makes every report of this process show these frames.
    pub(crate) fn apply(self) {
        use memsleuth_analysis::allocs::{set_native_frames, NativeFrames};
        set_native_frames(match self {
            NativeFramesArg::None => NativeFrames::None,
            NativeFramesArg::Boundary => NativeFrames::Boundary,
            NativeFramesArg::All => NativeFrames::All,
        });
    }
}
