//! The memory timeline: per-process and whole-tree series built from `Sample` records.

use serde::Serialize;

/// One reading of one process, times in seconds since capture start, sizes in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Point {
    pub t: f64,
    pub rss: Option<u64>,
    pub vms: Option<u64>,
    pub uss: Option<u64>,
    pub pss: Option<u64>,
    pub swap: Option<u64>,
    pub peak: Option<u64>,
}

/// The series of one process of the observed tree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessSeries {
    pub pid: u32,
    pub ppid: u32,
    pub argv: Vec<String>,
    /// True for the root of the observed tree.
    pub root: bool,
    pub points: Vec<Point>,
    /// Seconds since start when it was seen to exit.
    pub exited_at: Option<f64>,
    /// Exit description ("exit code 0", "killed by signal 9"), when known.
    pub exit: Option<String>,
}

/// The whole tree at one sampler tick: sums over the live processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TotalPoint {
    pub t: f64,
    pub rss: u64,
    /// Sum of USS where readable (0 when no process' USS could be read).
    pub uss: u64,
    pub pss: u64,
    pub swap: u64,
    pub processes: u32,
}

/// How the capture ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EndInfo {
    /// "target exited", "interrupted", "duration reached", "stopped", or "cut short".
    pub reason: String,
    /// True when the trailer is missing: the recorder died before finishing.
    pub cut_short: bool,
    /// Reader's description of damage that stopped reading early, if any.
    pub damage: Option<String>,
    /// Exit description of the root process, when known.
    pub target_exit: Option<String>,
    pub samples: u64,
    pub dropped: u64,
    pub flushes: u64,
    /// Seconds from start to the end of the capture (or the last record when cut short).
    pub duration: f64,
}

/// Everything the timeline reports and plots need.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub pid: u32,
    pub argv: Vec<String>,
    pub python_version: String,
    pub hostname: String,
    pub start_unix_ns: u64,
    pub interval: f64,
    pub processes: Vec<ProcessSeries>,
    pub total: Vec<TotalPoint>,
    /// User marks: (seconds since start, label).
    pub marks: Vec<(f64, String)>,
    pub end: EndInfo,
}
