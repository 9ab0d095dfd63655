//! Allocation analyses: what the `python` (and `native`) instruments recorded, replayed.
//!
//! Every analysis streams the capture ([`replay`]): a map of live blocks by address with
//! per-stack aggregates in vectors indexed by stack slot, so a capture of tens of millions of
//! events is read in seconds with memory bounded by what is alive, never by what was recorded.
//!
//! - [`LeakReport`]: blocks allocated while tracking and still alive at the end (or at a chosen
//!   time), by allocation site and by stack, with a per-site verdict from how each site's live
//!   bytes evolved over the run (a steady leak is `growing`, a cache that filled is not).
//! - [`PeakReport`]: what was alive at the high-water mark of the tracked heap.
//! - [`AllocTable`]: every allocation made while tracking, per site and as a call tree.
//! - [`DiffReport`]: sites whose leaked bytes grew between two captures.
//!
//! Each converts to the stack [`Profile`](crate::Profile) the flamegraph, pprof and collapsed
//! renderers take. In a capture sampled by bytes, every figure is an unbiased estimate (each
//! recorded block weighs `s / (1 - exp(-s/R))` bytes).

mod addr_hash;
mod diff;
mod follow;
mod heap;
mod leaks;
mod names;
mod peak;
mod replay;
mod runs;
mod slot_series;
mod symbols;
mod table;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use diff::{DiffOptions, DiffReport, DiffRow};
pub use follow::Followed;
pub use leaks::{
    site_verdict_options, LeakOptions, LeakPass, LeakReport, ReleasedSite, SiteHolder,
    DEFAULT_WINDOWS,
};
pub use peak::{PeakOptions, PeakReport};
pub use runs::{live_by_site_at_marks, SiteAtMarks};
pub use symbols::{set_native_frames, NativeFrames};
pub use table::{AllocTable, CallTree, TableOptions, TableRow, TableStack, TreeNode};

// the growth report maps census samples to allocation sites with this replay and resolver
pub(crate) use leaks::{open_path, reopen, Open};
pub(crate) use names::Names;
pub(crate) use replay::{first_pass, Limits, Tables, Visitor};

use crate::profile::{Location, Profile, ProfileStack};
use crate::timeline::EndInfo;

/// A generous bound on the memory an analysis of the capture at `path` needs: its tables grow
/// with the blocks alive and the stacks seen, which a compressed capture never outnumbers many
/// times over. For asking, before starting, whether the process has that much room left.
pub fn memory_needed(path: &std::path::Path) -> usize {
    let file = std::fs::metadata(path).map_or(0, |m| m.len());
    let bytes = (64u64 << 20)
        .saturating_add(file.saturating_mul(8))
        .min(2 << 30);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Which allocation profile to build (see [`profile_from_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// Allocated while tracking and still alive at the end.
    Leaks,
    /// Alive at the high-water mark of the tracked heap.
    Peak,
    /// Every allocation made while tracking.
    All,
}

/// Builds the stack profile of one kind from a capture file, for the stack-shaped renderers
/// (flamegraph, pprof, collapsed), with what was captured (how the capture ended, for the
/// report to say). `bins` time bins (100 is a good choice) split each stack's bytes by when
/// they were allocated.
pub fn profile_from_path(
    path: &std::path::Path,
    kind: ProfileKind,
    bins: u32,
) -> Result<(Profile, CaptureInfo), crate::AnalysisError> {
    Ok(match kind {
        ProfileKind::Leaks => {
            // no verdicts: a stack picture has no place for them
            let opts = LeakOptions {
                windows: 0,
                bins,
                ..LeakOptions::default()
            };
            let r = LeakReport::from_path(path, &opts)?;
            (r.to_profile(), r.capture)
        }
        ProfileKind::Peak => {
            let r = PeakReport::from_path(path, &PeakOptions { bins })?;
            (r.to_profile(), r.capture)
        }
        ProfileKind::All => {
            let r = AllocTable::from_path(path, &TableOptions { bins })?;
            (r.to_profile(), r.capture)
        }
    })
}

/// What was captured and how it ended, as the allocation reports need it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureInfo {
    pub pid: u32,
    pub argv: Vec<String>,
    pub python_version: String,
    pub tool_version: String,
    pub start_unix_ns: u64,
    pub instruments: Vec<String>,
    /// Mean bytes between recorded allocations; 0 when every allocation was recorded. When not
    /// 0, sizes and counts in the reports are estimates.
    pub sample_bytes: u64,
    /// How the capture ended: cut short (no trailer), damage, dropped events.
    pub end: EndInfo,
    /// End of the capture, nanoseconds since its start (the last record read when cut short).
    pub duration_ns: u64,
    /// Byte offset where a damaged capture stops being readable.
    pub damage_offset: Option<u64>,
    /// Time of the last allocation event read, ns: where the data stops in a damaged capture.
    pub last_event_ns: u64,
    /// Allocation and free events recorded.
    pub allocs: u64,
    pub frees: u64,
    /// Frees of blocks allocated before tracking began (ignored).
    pub untracked_frees: u64,
    /// Allocations at an address still alive (a free was not recorded); the old block is
    /// counted as freed.
    pub reused_live: u64,
    pub threads: u32,
    /// Distinct stacks and source locations seen.
    pub stacks: u64,
    pub frames: u64,
    /// Frames named by a stack but never described (the capture was cut before they were
    /// written); shown as `<unresolved frame N>`.
    pub unresolved_frames: u64,
    /// Phases of a program run under `memsleuth run` (format 1.3): ns since the start.
    pub phases: Phases,
    /// Objects with native frames but no unwind tables (format 1.5), by file name: native
    /// stacks stop in them, so their callers are missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub without_unwind: Vec<String>,
}

/// When the program's main code and its shutdown ended, or `attach`'s recording; `None` in
/// captures without phase marks (older ones, the API's sessions).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    pub main_end_ns: Option<u64>,
    pub shutdown_end_ns: Option<u64>,
    pub recording_end_ns: Option<u64>,
}

impl Phases {
    pub(crate) fn from_marks(marks: &[(u64, String)]) -> Phases {
        let find = |label: &str| marks.iter().find(|m| m.1 == label).map(|m| m.0);
        Phases {
            main_end_ns: find(memsleuth_format::PHASE_MAIN_END),
            shutdown_end_ns: find(memsleuth_format::PHASE_SHUTDOWN_END),
            recording_end_ns: find(memsleuth_format::PHASE_RECORDING_END),
        }
    }
}

impl CaptureInfo {
    /// True when allocations were sampled by bytes: values are estimates.
    pub fn sampled(&self) -> bool {
        self.sample_bytes > 0
    }

    /// Duration in seconds.
    pub fn duration(&self) -> f64 {
        self.duration_ns as f64 / 1e9
    }
}

/// The tracked heap over the run: bytes alive in the allocator hooks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeapInfo {
    /// High-water mark and when it was reached (ns since the capture start).
    pub peak_bytes: u64,
    pub peak_blocks: u64,
    pub peak_at_ns: u64,
    /// Alive at the end of the analysed span.
    pub end_bytes: u64,
    pub end_blocks: u64,
    /// `(t_ns, bytes)`, at most 2000 points: the largest value in each interval.
    pub series: Vec<(u64, u64)>,
}

/// Memory attributed to one allocation site: the innermost frame's location.
#[derive(Debug, Clone, Serialize)]
pub struct SiteRow {
    pub location: Location,
    pub bytes: u64,
    pub blocks: u64,
    /// Indexes into the report's stacks, largest first.
    pub stacks: Vec<usize>,
    /// Leak reports: how this site's live bytes evolved (computed for the top sites).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::Verdict>,
    /// Leak reports: `(t_ns, live bytes)` of this site from just before its first allocation
    /// (0 bytes) to the end of each window its life was cut into; empty when not judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<(u64, u64)>,
    /// Leak reports: of `bytes`, what the program's shutdown freed (threads joined, `atexit`
    /// handlers): alive when its main code ended, gone by the end of the capture.
    #[serde(skip_serializing_if = "is_zero")]
    pub freed_at_shutdown: u64,
    /// Leak reports the verdict weighed: why this site's growth is not called a leak (too
    /// small, immaterial, too brief), so its row says what the verdict says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dismissed: Option<crate::verdict::Dismissal>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl SiteRow {
    /// True when the site's live bytes kept growing over the run: the shape of a leak.
    pub fn growing(&self) -> bool {
        self.verdict
            .as_ref()
            .is_some_and(|v| v.kind == crate::VerdictKind::Growing)
    }
}

/// Memory attributed to one distinct stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackRow {
    /// Indexes into the report's locations, outermost call first, allocation site last. Empty
    /// for allocations made with no Python frame.
    pub frames: Vec<u32>,
    /// Index of its site in the report's sites.
    pub site: usize,
    pub bytes: u64,
    pub blocks: u64,
    /// `(time bin, bytes, blocks)`: the same split by when it was allocated, ascending, zero
    /// bins omitted.
    pub bins: Vec<(u32, u64, u64)>,
}

/// Memory grouped by site and by stack.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    pub bytes: u64,
    pub blocks: u64,
    /// Source locations stacks refer to.
    pub locations: Vec<Location>,
    /// Largest first.
    pub sites: Vec<SiteRow>,
    /// Largest first.
    pub stacks: Vec<StackRow>,
    /// Width of a time bin of [`StackRow::bins`], ns, and how many cover the span.
    pub bin_ns: u64,
    pub bins: u32,
}

impl Breakdown {
    /// Frames of a stack as locations, outermost first.
    pub fn frames(&self, stack: &StackRow) -> Vec<&Location> {
        stack
            .frames
            .iter()
            .filter_map(|&i| self.locations.get(i as usize))
            .collect()
    }

    /// The stack profile of this breakdown; the caller fills in the title, heap and RSS.
    pub(crate) fn profile(&self, sampled: bool) -> Profile {
        Profile {
            locations: self.locations.clone(),
            stacks: self
                .stacks
                .iter()
                .map(|s| ProfileStack {
                    frames: s.frames.clone(),
                    bytes: s.bytes,
                    count: s.blocks,
                    bins: s.bins.clone(),
                })
                .collect(),
            bin_ns: self.bin_ns,
            bins: self.bins,
            sampled,
            ..Profile::default()
        }
    }
}

/// The script a command line runs, for titles: `app.py` of `python -m x app.py`; `None` for an
/// empty command line.
pub(crate) fn program_name(argv: &[String]) -> Option<String> {
    let script = argv
        .iter()
        .skip(1)
        .find(|a| a.ends_with(".py"))
        .or_else(|| argv.first())?;
    Some(
        std::path::Path::new(script)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| script.clone()),
    )
}
