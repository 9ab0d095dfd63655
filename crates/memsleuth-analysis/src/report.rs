//! The timeline report: a capture's series plus verdicts for the tree and each process.

use serde::Serialize;

use crate::timeline::Timeline;
use crate::trend::Verdict;

/// The verdict on one process of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessVerdict {
    pub pid: u32,
    /// Which series the verdict was computed on ("rss", "uss").
    pub metric: &'static str,
    pub verdict: Verdict,
    /// Largest value of the metric seen, bytes.
    pub max: u64,
    /// Last value of the metric seen, bytes.
    pub last: u64,
}

/// Model behind `memsleuth watch`'s summary, `report summary` and `report timeline`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineReport {
    pub timeline: Timeline,
    /// Which total series the tree verdict was computed on ("rss" for one process, "pss" for a
    /// tree where PSS is readable, so shared pages are not counted twice).
    pub metric: &'static str,
    pub verdict: Verdict,
    /// Per-process verdicts, root first, then by pid.
    pub processes: Vec<ProcessVerdict>,
    /// Largest total of the metric, and the time it was seen.
    pub peak: u64,
    pub peak_at: f64,
    /// Largest RSS high-water mark reported by any process (VmHWM).
    pub peak_rss_hwm: u64,
    /// Bytes per iteration, when the capture carries at least three marks.
    pub per_mark: Option<f64>,
}
