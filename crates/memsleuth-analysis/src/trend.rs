//! Trend statistics and the leak verdict for one memory series.
//!
//! Robust by design: Theil–Sen slope (median of pairwise slopes) with its rank-based confidence
//! interval, and a Mann–Kendall test, on the part of the series after a warm-up. Never a
//! first-vs-last comparison.

use serde::Serialize;

/// The shape of a memory series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// Keeps growing after the warm-up: the shape of a leak.
    Growing,
    /// Grew, then levelled off (a cache that filled).
    Plateau,
    /// Grows and is released periodically, with no growth trend.
    Sawtooth,
    /// No material change.
    Stable,
    /// Too few samples to say.
    Inconclusive,
}

impl VerdictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Growing => "growing",
            VerdictKind::Plateau => "plateau",
            VerdictKind::Sawtooth => "sawtooth",
            VerdictKind::Stable => "stable",
            VerdictKind::Inconclusive => "inconclusive",
        }
    }
}

/// Tuning of [`classify`]. The defaults suit process memory sampled every 10 ms to 1 s.
#[derive(Debug, Clone, Copy)]
pub struct VerdictOptions {
    /// Fraction of the series' duration ignored at the start as warm-up.
    pub warmup_fraction: f64,
    /// Significance level of the Mann–Kendall test.
    pub alpha: f64,
    /// Smallest growth over the analysed window, in bytes, that counts as material.
    pub min_growth_bytes: f64,
    /// Smallest growth over the analysed window, as a fraction of the series' median level,
    /// that counts as material (both this and `min_growth_bytes` must be exceeded).
    pub min_growth_fraction: f64,
    /// Fewest points in the analysed window for any verdict other than inconclusive.
    pub min_points: usize,
}

impl Default for VerdictOptions {
    fn default() -> Self {
        VerdictOptions {
            warmup_fraction: 0.2,
            alpha: 0.01,
            min_growth_bytes: 1024.0 * 1024.0,
            min_growth_fraction: 0.02,
            min_points: 8,
        }
    }
}

/// The verdict on one series, with the evidence behind it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    /// Theil–Sen slope over the analysed window, bytes per second.
    pub rate: f64,
    /// 95% confidence interval of that slope, bytes per second.
    pub rate_low: f64,
    pub rate_high: f64,
    /// Two-sided Mann–Kendall p-value over the analysed window.
    pub p_value: f64,
    /// Seconds skipped at the start as warm-up.
    pub warmup: f64,
    /// Analysed window, seconds since capture start (inclusive).
    pub window_start: f64,
    pub window_end: f64,
    /// Fitted line: value(t) = intercept + rate * (t - window_start), bytes.
    pub intercept: f64,
    /// Robust net change over the whole series (median of the last few points minus median of
    /// the first few), bytes.
    pub net_change: f64,
    /// Large drops seen in the series (releases), used for sawtooth.
    pub releases: u32,
    /// Points in the analysed window.
    pub points: usize,
    /// One plain-words sentence, e.g. "grows 1.2 MiB/s after a 2.0 s warm-up (p < 0.001)".
    pub explanation: String,
}

/// Classifies a series of (time in seconds, bytes). `t` must be non-decreasing and as long as
/// `y`.
pub fn classify(t: &[f64], y: &[f64], opts: &VerdictOptions) -> Verdict {
    let _ = (t, y, opts);
    unimplemented!("implemented by the trend statistics work")
}
