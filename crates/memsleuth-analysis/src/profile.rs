//! The stack profile: the model every stack-shaped renderer (flamegraph HTML, collapsed stacks,
//! pprof, tree) takes. An allocation analysis (leaks, peak, all allocations) produces one; the
//! renderers never see captures.

use serde::Serialize;

/// A source location a stack passes through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub function: String,
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    /// A native frame's object (executable, library, extension module) file name; empty for a
    /// Python frame.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub library: String,
}

/// One distinct stack and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileStack {
    /// Indexes into [`Profile::locations`], outermost call first, allocation site last. May be
    /// empty (allocations made with no Python frame, e.g. at interpreter start-up).
    pub frames: Vec<u32>,
    /// Bytes attributed to this stack (estimated when the capture was sampled).
    pub bytes: u64,
    /// Blocks attributed to this stack (estimated when sampled).
    pub count: u64,
    /// The same bytes and blocks split by the time bin in which they were allocated:
    /// `(bin index, bytes, count)`, ascending by bin, zero bins omitted. Lets a viewer show
    /// only what was allocated in a chosen time window.
    pub bins: Vec<(u32, u64, u64)>,
}

/// What a profile's values are; render words it ("leaks in app.py", "alive at the end").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProfileSubject {
    /// Allocated while tracking and alive at `at_ns`, or at the end when `None`: the leaks.
    Leaks { at_ns: Option<u64> },
    /// Alive at the tracked heap's high-water mark, `at_ns` into the run.
    Peak { at_ns: u64 },
    /// Everything allocated while tracking, freed or not.
    #[default]
    Allocations,
}

/// A stack profile over one capture.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Profile {
    /// The script the capture ran (`app.py` of `python -m x app.py`), when its command line
    /// names one.
    pub program: Option<String>,
    pub subject: ProfileSubject,
    pub locations: Vec<Location>,
    /// Largest first.
    pub stacks: Vec<ProfileStack>,
    /// Width of a time bin of [`ProfileStack::bins`], nanoseconds since the capture start.
    pub bin_ns: u64,
    /// Number of time bins covering the capture.
    pub bins: u32,
    /// Tracked heap (bytes alive in the allocator hooks) over time: `(t_ns, bytes)`.
    pub heap: Vec<(u64, u64)>,
    /// Resident memory of the process over time, when the capture has it: `(t_ns, bytes)`.
    pub rss: Vec<(u64, u64)>,
    /// True when the capture sampled allocations by bytes; values are then estimates.
    pub sampled: bool,
}

impl Profile {
    /// Sum of all stacks' bytes (saturating: a damaged capture can claim any size).
    pub fn total_bytes(&self) -> u64 {
        self.stacks.iter().fold(0, |t, s| t.saturating_add(s.bytes))
    }

    /// Sum of all stacks' blocks.
    pub fn total_count(&self) -> u64 {
        self.stacks.iter().fold(0, |t, s| t.saturating_add(s.count))
    }
}
