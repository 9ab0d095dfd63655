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
    /// Large, quick drops seen in the analysed window (releases), used for sawtooth.
    pub releases: u32,
    /// Points in the analysed window.
    pub points: usize,
    /// Why the verdict is what it is, for the words `memsleuth-render` puts on it.
    pub reason: VerdictReason,
}

/// Which case of the verdict applies, with the figures its words need beyond the verdict's own
/// (rate, interval, p-value, warm-up, points and releases are on the [`Verdict`]). Amounts are
/// in the series' unit: bytes for memory, a count for objects or blocks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "case", rename_all = "snake_case")]
pub enum VerdictReason {
    /// Not one point had a finite time and value.
    NoSamples,
    /// Fewer usable points (the verdict's `points`) than any trend needs.
    TooFewSamples { need: usize },
    /// Every usable point has the same time.
    AllAtOnce,
    /// Too few points after the warm-up (the verdict's `points`), or none spread over time.
    TooFewAfterWarmup { need: usize },
    /// An allocation site whose memory was all allocated in the last few of the leak
    /// analysis' windows: over `allocated_for_ns`, in `windows` windows of `window_ns`.
    TooBrief {
        allocated_for_ns: u64,
        windows: usize,
        window_ns: u64,
    },
    /// Keeps growing after the warm-up, released or not (the verdict's `releases`).
    Growing,
    /// Released again and again with no growth between cycles; swings span `range`.
    Sawtooth { range: f64 },
    /// Grew by `filled`, then stayed at `level`.
    Plateau { filled: f64, level: f64 },
    /// Declines materially and significantly.
    Shrinking,
    /// A slope that would be material, without the evidence to hold it.
    NoSignificantTrend,
    /// Released now and then, too seldom or too little for a sawtooth, and not growing.
    ReleasedNoTrend,
    /// Moves no more than `spread` either way.
    NoMaterialChange { spread: f64 },
}

// ---------------------------------------------------------------------------------------------
// Tuning constants. Each is a judgement call; the reasoning is next to it.
// ---------------------------------------------------------------------------------------------

/// Upper 2.5% point of the standard normal distribution, for the 95% interval of the slope.
const Z_975: f64 = 1.959_963_984_540_054;

/// Windows longer than this are reduced before the O(n²) pairwise statistics. 1500 points means
/// about 1.1 million pairs, which is still a few milliseconds; beyond it the cost grows fast.
const REDUCE_ABOVE: usize = 1500;

/// Number of bins a long window is reduced to (median value and mean time of each bin). 1000
/// points keep the shape of any series worth judging, cost about half a million pairs, and,
/// because neighbouring samples of process memory are strongly autocorrelated, a bin median is
/// closer to one independent observation than a raw sample, which keeps the test more honest.
const REDUCED_POINTS: usize = 1000;

/// Share of the series used for the robust levels at its start and end (net change, plateau
/// baseline), with at least `EDGE_MIN_POINTS` points: enough that one outlier cannot move the
/// median, short enough that the level is still the level "at the start".
const EDGE_FRACTION: f64 = 0.05;
const EDGE_MIN_POINTS: usize = 3;

/// A release is a fall of more than this share of the window's range...
/// Growth must go on in the later half of the window at at least this fraction of the whole
/// window's rate to count as a leak (a decelerating leak still does; a filled cache does not).
const LATE_RATE_FRACTION: f64 = 0.25;
const RELEASE_RANGE_FRACTION: f64 = 0.25;
/// ...and more than this share of `min_growth_bytes`: noise smaller than half of what counts as
/// material growth must never look like a release, whatever the range.
const RELEASE_MIN_GROWTH_FRACTION: f64 = 0.5;
/// The fall must happen within this share of the window's points (at least
/// `RELEASE_RUN_MIN` samples): releases (a collection, a cache flush, a pool trimmed) are fast
/// compared with the climb before them, while a slow decline over much of the window is not a
/// release.
const RELEASE_RUN_FRACTION: f64 = 0.02;
/// ...and more than this multiple of the typical step between neighbouring samples (median
/// absolute difference). A real release stands far above the sample-to-sample jitter: a
/// sawtooth climbs in small steps and falls in one, while in plain noise the "drops" are the
/// same size as every other step. For Gaussian noise the median step is about 0.95 σ, so a fall
/// of 6 steps from the highest of the last few samples happens by chance less than once per
/// thousand points; a sawtooth keeps its releases as long as a cycle spans more than about six
/// samples.
const RELEASE_NOISE_STEPS: f64 = 6.0;
const RELEASE_RUN_MIN: usize = 3;

/// Fewest usable points for any verdict but inconclusive, whatever `min_points` asks.
const MIN_SAMPLES: usize = 3;

// ---------------------------------------------------------------------------------------------
// The verdict.
// ---------------------------------------------------------------------------------------------

/// Classifies a series of (time in seconds, bytes). `t` should be non-decreasing and as long as
/// `y`; when it is not, the shorter length is used, points with a non-finite time or value are
/// dropped and the rest is put in time order. Never panics.
///
/// The analysed window is the part after the first `warmup_fraction` of the duration. On it:
/// a Theil–Sen slope with Sen's 95% interval and a Mann–Kendall test (on bin medians when the
/// window is long). When the series is released (large, quick drops) the pairwise statistics
/// only compare points from different release cycles: the climb inside one cycle is given back
/// and is no evidence of a leak, while a rise from cycle to cycle is.
pub fn classify(t: &[f64], y: &[f64], opts: &VerdictOptions) -> Verdict {
    let (ts, ys) = clean(t, y);
    let n = ts.len();
    let net_change = net_change_of(&ys);

    let (Some(&t_first), Some(&t_last)) = (ts.first(), ts.last()) else {
        return inconclusive(0.0, 0.0, 0.0, 0, net_change, 0.0, VerdictReason::NoSamples);
    };
    let duration = t_last - t_first;
    let spread_in_time = duration > 0.0 && duration.is_finite();
    if n < MIN_SAMPLES || !spread_in_time {
        let why = if n < MIN_SAMPLES {
            VerdictReason::TooFewSamples { need: MIN_SAMPLES }
        } else {
            VerdictReason::AllAtOnce
        };
        let level = median_of(&ys).unwrap_or(0.0);
        return inconclusive(0.0, t_first, t_last, n, net_change, level, why);
    }

    let warmup_fraction = if opts.warmup_fraction.is_finite() {
        opts.warmup_fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let warmup = duration * warmup_fraction;
    let window_start = t_first + warmup;
    let first = ts.partition_point(|&x| x < window_start);
    let wt = ts.get(first..).unwrap_or_default();
    let wy = ys.get(first..).unwrap_or_default();
    let points = wt.len();
    let window_span = wt.last().zip(wt.first()).map_or(0.0, |(b, a)| b - a);
    let need = opts.min_points.max(MIN_SAMPLES);
    let window_spread = window_span > 0.0;
    if points < need || !window_spread {
        let level = median_of(wy).unwrap_or(0.0);
        let why = VerdictReason::TooFewAfterWarmup { need };
        return inconclusive(warmup, window_start, t_last, points, net_change, level, why);
    }
    let window_len = t_last - window_start;

    // series level, for the relative materiality threshold
    let level = median_of(&ys).unwrap_or(0.0).max(0.0);
    let material =
        |bytes: f64| bytes > opts.min_growth_bytes && bytes > opts.min_growth_fraction * level;

    let (rt, ry) = reduce(wt, wy);
    let (lo, hi) = min_max(&ry);
    let range = hi - lo;

    let threshold = (RELEASE_RANGE_FRACTION * range)
        .max(RELEASE_MIN_GROWTH_FRACTION * opts.min_growth_bytes)
        .max(RELEASE_NOISE_STEPS * typical_step(&ry));
    let run = ((ry.len() as f64 * RELEASE_RUN_FRACTION).ceil() as usize).max(RELEASE_RUN_MIN);
    let mut release_at = find_releases(&ry, threshold, run);
    // A process frees much of its memory while it tears down at exit. On a busy machine the
    // sampler catches that last drop; it says nothing about the run, and read as a release it
    // would split the series into a "cycle" of a few points and turn a leak (or a plateau) into
    // a steep decline. A drop in the final tenth of the window with nothing after it to show a
    // new cycle is cut off instead.
    let (mut rt, mut ry) = (rt, ry);
    if let Some(&last) = release_at.last() {
        let tail = ry.len() - last;
        if tail <= (ry.len() / 10).max(3) && last >= need {
            rt.truncate(last);
            ry.truncate(last);
            release_at.pop();
        }
    }
    let releases = u32::try_from(release_at.len()).unwrap_or(u32::MAX);
    let blocks = (!release_at.is_empty()).then(|| cycle_labels(ry.len(), &release_at));

    let fit = trend_fit(&rt, &ry, blocks.as_deref());
    let intercept = {
        let mut residuals: Vec<f64> = wt
            .iter()
            .zip(wy)
            .map(|(&ti, &yi)| yi - fit.rate * (ti - window_start))
            .collect();
        median_in_place(&mut residuals).unwrap_or(0.0)
    };

    let growth = fit.rate * window_len;
    let significant = fit.p_value < opts.alpha;
    let rising = significant && fit.rate > 0.0 && material(growth) && fit.rate_low > 0.0;
    // A leak keeps growing to the end; a cache that is still filling when the warm-up ends
    // rises across the window too, but its late part is flat. So growth must persist in the
    // later half of the window: significant there, at a fair fraction of the window's rate.
    let half = ry.len() / 2;
    let late = (ry.len() - half >= need).then(|| {
        let late_blocks = blocks.as_deref().map(|b| &b[half..]);
        trend_fit(&rt[half..], &ry[half..], late_blocks)
    });
    // Too few points for a test of the later half (a handful of censuses): it must still rise
    // at a fair fraction of the window's rate, or the growth stopped inside the window
    // (imports done, a table full).
    let late_span = rt.last().zip(rt.get(half)).map_or(0.0, |(b, a)| b - a);
    let late_rise = ry.last().zip(ry.get(half)).map_or(0.0, |(b, a)| b - a);
    let late_still = late.is_some() || late_rise > LATE_RATE_FRACTION * fit.rate * late_span;
    let persists = late_still
        && late
            .as_ref()
            .is_none_or(|l| l.p_value < opts.alpha && l.rate > LATE_RATE_FRACTION * fit.rate);
    let growing = rising && persists;
    let sawtooth = !growing && releases >= 2 && range > opts.min_growth_bytes;
    let start_level = {
        let k = edge_len(ys.len());
        median_of(ys.get(..k).unwrap_or_default()).unwrap_or(0.0)
    };
    let late_level = median_of(ry.get(half..).unwrap_or_default()).unwrap_or(0.0);
    let window_level = median_of(wy).unwrap_or(0.0).max(late_level);
    let filled = window_level - start_level;
    // "levelled off" means the window itself no longer moves materially, whatever the test says:
    // a noisy series still climbing (but not significantly) is not a plateau
    // ... or its later half is flat (a fill that ends inside the window leaves the window's
    // slope small but not nothing; the late half shows the level it settled at)
    let late_flat = match &late {
        Some(l) => !material((l.rate * late_span).abs()),
        None => !material(late_rise.abs()),
    };
    let levelled = !material(growth.abs()) || (rising && !persists) || late_flat;
    // and the start level must lie below the band the window moves in (its 5th–95th
    // percentile half-width), or the "fill" is just the noise of a short median at the start
    let spread = spread_of(wy);
    let plateau = !growing && !sawtooth && levelled && material(filled) && filled > spread;

    let (kind, reason) = if growing {
        (VerdictKind::Growing, VerdictReason::Growing)
    } else if sawtooth {
        (VerdictKind::Sawtooth, VerdictReason::Sawtooth { range })
    } else if plateau {
        let reason = VerdictReason::Plateau {
            filled,
            level: window_level,
        };
        (VerdictKind::Plateau, reason)
    } else {
        let reason = if significant && fit.rate < 0.0 && fit.rate_high < 0.0 && material(-growth) {
            VerdictReason::Shrinking
        } else if !levelled {
            VerdictReason::NoSignificantTrend
        } else if releases > 0 && range > opts.min_growth_bytes {
            VerdictReason::ReleasedNoTrend
        } else {
            VerdictReason::NoMaterialChange { spread }
        };
        (VerdictKind::Stable, reason)
    };

    Verdict {
        kind,
        rate: fit.rate,
        rate_low: fit.rate_low,
        rate_high: fit.rate_high,
        p_value: fit.p_value,
        warmup,
        window_start,
        window_end: t_last,
        intercept,
        net_change,
        releases,
        points,
        reason,
    }
}

/// An inconclusive verdict: no slope, p = 1.
fn inconclusive(
    warmup: f64,
    window_start: f64,
    window_end: f64,
    points: usize,
    net_change: f64,
    intercept: f64,
    reason: VerdictReason,
) -> Verdict {
    Verdict {
        kind: VerdictKind::Inconclusive,
        rate: 0.0,
        rate_low: 0.0,
        rate_high: 0.0,
        p_value: 1.0,
        warmup,
        window_start,
        window_end,
        intercept,
        net_change,
        releases: 0,
        points,
        reason,
    }
}

// ---------------------------------------------------------------------------------------------
// Preparing the series.
// ---------------------------------------------------------------------------------------------

/// Pairs up to the shorter length, drops non-finite points, sorts by time (stable, so samples
/// at the same time keep their order).
fn clean(t: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut pts: Vec<(f64, f64)> = t
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .collect();
    if !pts.windows(2).all(|w| w[0].0 <= w[1].0) {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    pts.into_iter().unzip()
}

/// Reduces a long window to `REDUCED_POINTS` consecutive bins of (almost) equal size: the mean
/// time and the median value of each. Short windows are returned as they are.
fn reduce(t: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = t.len().min(y.len());
    let (t, y) = (&t[..n], &y[..n]);
    if n <= REDUCE_ABOVE {
        return (t.to_vec(), y.to_vec());
    }
    let bins = REDUCED_POINTS;
    let mut rt = Vec::with_capacity(bins);
    let mut ry = Vec::with_capacity(bins);
    let mut scratch = Vec::with_capacity(n / bins + 1);
    for b in 0..bins {
        let (lo, hi) = (b * n / bins, (b + 1) * n / bins);
        let (Some(bt), Some(by)) = (t.get(lo..hi), y.get(lo..hi)) else {
            continue;
        };
        let Some(&t0) = bt.first() else { continue };
        // mean of offsets from the bin's first time, so large absolute times lose no precision
        let mean_t = t0 + bt.iter().map(|&x| x - t0).sum::<f64>() / bt.len() as f64;
        scratch.clear();
        scratch.extend_from_slice(by);
        if let Some(m) = median_in_place(&mut scratch) {
            rt.push(mean_t);
            ry.push(m);
        }
    }
    (rt, ry)
}

/// Points at each edge of a series of `n` points used for its start and end levels.
fn edge_len(n: usize) -> usize {
    ((n as f64 * EDGE_FRACTION).ceil() as usize)
        .max(EDGE_MIN_POINTS)
        .min(n)
}

/// Median of the last few points minus median of the first few.
fn net_change_of(y: &[f64]) -> f64 {
    let k = edge_len(y.len());
    let head = median_of(y.get(..k).unwrap_or_default());
    let tail = median_of(y.get(y.len() - k..).unwrap_or_default());
    match (head, tail) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    }
}

/// Half the distance between the 5th and 95th percentiles: the usual swing around the level,
/// ignoring the odd spike.
fn spread_of(y: &[f64]) -> f64 {
    let mut v = y.to_vec();
    let n = v.len() as f64;
    match order_stats(&mut v, &[1.0 + 0.05 * (n - 1.0), 1.0 + 0.95 * (n - 1.0)])[..] {
        [a, b] if !v.is_empty() => 0.5 * (b - a),
        _ => 0.0,
    }
}

/// Median absolute difference between neighbouring samples: the jitter of the series.
fn typical_step(y: &[f64]) -> f64 {
    let mut steps: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    median_in_place(&mut steps).unwrap_or(0.0)
}

fn min_max(y: &[f64]) -> (f64, f64) {
    if y.is_empty() {
        return (0.0, 0.0);
    }
    y.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

// ---------------------------------------------------------------------------------------------
// Releases.
// ---------------------------------------------------------------------------------------------

/// Indices at which a release is first seen: the value is more than `threshold` below the
/// highest of the previous `run` samples. After a release the detector waits until the series
/// has climbed more than `threshold` above the trough before it looks for the next one, so a
/// drop spread over several samples, or noise at the bottom, is counted once.
fn find_releases(y: &[f64], threshold: f64, run: usize) -> Vec<usize> {
    let mut found = Vec::new();
    if !threshold.is_finite() {
        return found;
    }
    let mut armed = true;
    let mut armed_at = 0;
    let mut trough = f64::INFINITY;
    for (i, &v) in y.iter().enumerate() {
        if armed {
            let from = armed_at.max(i.saturating_sub(run));
            let high = y
                .get(from..i)
                .unwrap_or_default()
                .iter()
                .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            if high - v > threshold {
                found.push(i);
                armed = false;
                trough = v;
            }
        } else {
            trough = trough.min(v);
            if v - trough > threshold {
                armed = true;
                armed_at = i;
            }
        }
    }
    found
}

/// Release cycle of each of `n` points: 0 before the first release, 1 from it to the next, ...
fn cycle_labels(n: usize, release_at: &[usize]) -> Vec<usize> {
    let mut labels = Vec::with_capacity(n);
    let mut cycle = 0;
    let mut next = release_at.iter().peekable();
    for i in 0..n {
        while next.next_if(|&&r| r <= i).is_some() {
            cycle += 1;
        }
        labels.push(cycle);
    }
    labels
}

// ---------------------------------------------------------------------------------------------
// Theil–Sen slope, Sen's interval, Mann–Kendall test.
// ---------------------------------------------------------------------------------------------

/// Slope, its interval, and the trend test over one set of pairs.
#[derive(Debug, Clone, Copy)]
struct TrendFit {
    /// Theil–Sen slope: median of the pairwise slopes.
    rate: f64,
    /// Sen's 95% interval of the slope.
    rate_low: f64,
    rate_high: f64,
    /// Two-sided Mann–Kendall p-value, continuity-corrected normal approximation.
    p_value: f64,
}

impl TrendFit {
    const NONE: TrendFit = TrendFit {
        rate: 0.0,
        rate_low: 0.0,
        rate_high: 0.0,
        p_value: 1.0,
    };
}

/// What the pairwise statistics are made of.
#[derive(Debug, Clone, Default)]
struct Pairs {
    /// Slope of each counted pair.
    slopes: Vec<f64>,
    /// Mann–Kendall S: Σ sign(later value − earlier value) over the counted pairs.
    s: i64,
    /// Per point: counted pairs in which it is the earlier point minus those in which it is the
    /// later one.
    excess: Vec<i64>,
}

/// All pairs of points with distinct times; with `cycles`, only pairs from different cycles.
/// O(n²) in time and memory: callers reduce long series first.
fn pairs_of(t: &[f64], y: &[f64], cycles: Option<&[usize]>) -> Pairs {
    let n = t.len().min(y.len());
    let (t, y) = (&t[..n], &y[..n]);
    let mut slopes = Vec::with_capacity(n.saturating_mul(n - 1) / 2);
    // per point: pairs where it is the earlier point minus pairs where it is the later one
    let mut excess = vec![0i64; n];
    let mut s: i64 = 0;
    for (i, (&ti, &yi)) in t.iter().zip(y).enumerate() {
        for (j, (&tj, &yj)) in t.iter().zip(y).enumerate().skip(i + 1) {
            if let Some(c) = cycles {
                if c.get(i) == c.get(j) {
                    continue;
                }
            }
            let dt = tj - ti;
            if dt == 0.0 || !dt.is_finite() {
                continue;
            }
            let dy = yj - yi;
            slopes.push(dy / dt);
            let (early, late) = if dt > 0.0 { (i, j) } else { (j, i) };
            s += sign(dy) * sign(dt);
            excess[early] += 1;
            excess[late] -= 1;
        }
    }
    Pairs { slopes, s, excess }
}

/// Theil–Sen slope, Sen's rank-based 95% interval and the Mann–Kendall test over the pairs of
/// [`pairs_of`].
fn trend_fit(t: &[f64], y: &[f64], cycles: Option<&[usize]>) -> TrendFit {
    let n = t.len().min(y.len());
    let Pairs {
        mut slopes,
        s,
        excess,
    } = pairs_of(t, y, cycles);
    let pairs = slopes.len();
    if pairs == 0 {
        return TrendFit::NONE;
    }
    let var_s = kendall_variance(&y[..n], pairs, &excess);
    let s = s as f64;
    let p_value = mann_kendall_p(s, var_s);

    // Sen (1968): C = z·sd(S); the interval runs from the M1-th to the (M2 + 1)-th ordered
    // slope, M1 = (N − C)/2, M2 = (N + C)/2, interpolating between neighbours.
    let nf = pairs as f64;
    let c = Z_975 * var_s.sqrt();
    let m1 = (nf - c) / 2.0;
    let m2 = (nf + c) / 2.0;
    let stats = order_stats(&mut slopes, &[(nf + 1.0) / 2.0, m1, m2 + 1.0]);
    let [rate, rate_low, rate_high] = stats[..] else {
        return TrendFit::NONE;
    };
    TrendFit {
        rate,
        rate_low,
        rate_high,
        p_value,
    }
}

fn sign(x: f64) -> i64 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// Variance of S = Σ sign(y_late − y_early) over a chosen set of `pairs`, under no trend (the
/// values in random order), with ties in the values accounted for exactly.
///
/// Pairs sharing no point are uncorrelated (swapping the two values of one pair flips its sign
/// and leaves the other alone). A pair with itself contributes q = P(the two values differ);
/// two pairs sharing a point contribute ±r, with r = E[sign(y_b − y_a)·sign(y_c − y_a)], + when
/// the shared point is the earlier (or the later) point of both, − otherwise. Summing,
/// Var(S) = q·N + r·(Σ_i e_i² − 2N), where e_i is the number of pairs in which point i is the
/// earlier point minus those in which it is the later one. Over all pairs this is exactly the
/// textbook tie-corrected [n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18; over a subset (pairs across
/// release cycles) it stays exact.
fn kendall_variance(y: &[f64], pairs: usize, excess: &[i64]) -> f64 {
    let n = y.len();
    if n < 3 || pairs == 0 {
        return 0.0;
    }
    let mut v = y.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let nf = n as f64;
    let mut tied_pairs = 0.0; // Σ t(t − 1) over groups of equal values
    let mut r_sum = 0.0; // Σ over points of (hi − lo)² − hi − lo
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && v[end] == v[start] {
            end += 1;
        }
        let g = (end - start) as f64;
        let lo = start as f64; // values below this group
        let hi = (n - end) as f64; // values above it
        tied_pairs += g * (g - 1.0);
        r_sum += g * ((hi - lo).powi(2) - hi - lo);
        start = end;
    }
    let q = 1.0 - tied_pairs / (nf * (nf - 1.0));
    let r = r_sum / (nf * (nf - 1.0) * (nf - 2.0));
    let m = pairs as f64;
    let e2: f64 = excess.iter().map(|&e| (e as f64).powi(2)).sum();
    (q * m + r * (e2 - 2.0 * m)).max(0.0)
}

/// Two-sided p-value of a Mann–Kendall S with variance `var_s`, continuity-corrected.
fn mann_kendall_p(s: f64, var_s: f64) -> f64 {
    let usable = var_s > 0.0 && s.is_finite();
    if !usable {
        return 1.0;
    }
    let z = ((s.abs() - 1.0).max(0.0)) / var_s.sqrt();
    erfc(z / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// Values at 1-based, possibly fractional `ranks` of `v` (interpolating between neighbours;
/// ranks are clamped to 1..=len). Reorders `v`. Linear time per distinct rank.
fn order_stats(v: &mut [f64], ranks: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n == 0 {
        return vec![0.0; ranks.len()];
    }
    let clamp = |r: f64| {
        if r.is_nan() {
            1.0
        } else {
            r.clamp(1.0, n as f64)
        }
    };
    let mut wanted: Vec<usize> = ranks
        .iter()
        .flat_map(|&r| {
            let r = clamp(r);
            [r.floor() as usize - 1, r.ceil() as usize - 1]
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    // after selecting k, everything after it is ≥ v[k]: later ranks are found there
    let mut base = 0;
    for &k in &wanted {
        if let Some(rest) = v.get_mut(base..) {
            if k >= base && k - base < rest.len() {
                rest.select_nth_unstable_by(k - base, f64::total_cmp);
            }
        }
        base = k + 1;
    }
    ranks
        .iter()
        .map(|&r| {
            let r = clamp(r);
            let a = v[r.floor() as usize - 1];
            let b = v[r.ceil() as usize - 1];
            let f = r - r.floor();
            if f == 0.0 {
                a
            } else {
                a * (1.0 - f) + b * f
            }
        })
        .collect()
}

/// Median, reordering `v`; `None` when empty.
pub(crate) fn median_in_place(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mid = (v.len() as f64 + 1.0) / 2.0;
    order_stats(v, &[mid]).first().copied()
}

fn median_of(v: &[f64]) -> Option<f64> {
    median_in_place(&mut v.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Normal distribution.
// ---------------------------------------------------------------------------------------------

/// Complementary error function, absolute error below 1.5e-7 for every x (the rational
/// approximation 7.1.26 of Abramowitz and Stegun, extended to negative x by
/// erfc(−x) = 2 − erfc(x)).
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
    let z = x.abs();
    let k = 1.0 / (1.0 + P * z);
    let poly = A.iter().rev().fold(0.0, |acc, &a| acc * k + a) * k;
    let tail = poly * (-z * z).exp();
    if x >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

/// Standard normal cumulative distribution function Φ(x), absolute error below 1e-7.
pub fn normal_cdf(x: f64) -> f64 {
    (0.5 * erfc(-x / std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;

    /// xorshift64: deterministic noise without a crate.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(seed.max(1))
        }
        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        /// Uniform in [-1, 1).
        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    /// Times 0, dt, 2·dt, ... up to and including `duration`.
    fn times(duration: f64, dt: f64) -> Vec<f64> {
        let n = (duration / dt).round() as usize;
        (0..=n).map(|i| i as f64 * dt).collect()
    }

    fn run(t: &[f64], y: &[f64]) -> Verdict {
        classify(t, y, &VerdictOptions::default())
    }

    /// Whether the reason is one the verdict's kind can have: the words render puts on a
    /// reason must never contradict the kind shown next to them.
    fn reason_fits_kind(v: &Verdict) -> bool {
        use VerdictReason as R;
        match v.reason {
            R::NoSamples | R::TooFewSamples { .. } | R::AllAtOnce | R::TooFewAfterWarmup { .. } => {
                v.kind == VerdictKind::Inconclusive
            }
            R::TooBrief { .. } => false,
            R::Growing => v.kind == VerdictKind::Growing,
            R::Sawtooth { .. } => v.kind == VerdictKind::Sawtooth,
            R::Plateau { .. } => v.kind == VerdictKind::Plateau,
            R::Shrinking
            | R::NoSignificantTrend
            | R::ReleasedNoTrend
            | R::NoMaterialChange { .. } => v.kind == VerdictKind::Stable,
        }
    }

    #[test]
    fn linear_leak_is_growing_with_rate_and_interval() {
        let mut rng = Rng::new(1);
        let t = times(10.0, 0.05);
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 30.0 * MIB + 2.0 * MIB * t + 200.0 * KIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert!((v.rate / (2.0 * MIB) - 1.0).abs() < 0.05, "{v:?}");
        assert!(v.rate_low <= 2.0 * MIB && 2.0 * MIB <= v.rate_high, "{v:?}");
        assert!(v.rate_low < v.rate && v.rate < v.rate_high, "{v:?}");
        assert!(v.p_value < 0.001);
        assert!((v.warmup - 2.0).abs() < 1e-9 && (v.window_start - 2.0).abs() < 1e-9);
        assert_eq!(v.window_end, 10.0);
        assert_eq!(v.points, 161);
        assert_eq!(v.releases, 0);
        // the line passes through the middle of the data: value at 2 s is about 34 MiB
        assert!((v.intercept - 34.0 * MIB).abs() < 200.0 * KIB, "{v:?}");
        assert!((v.net_change - 20.0 * MIB).abs() < 1.5 * MIB, "{v:?}");
        assert_eq!(v.reason, VerdictReason::Growing);
    }

    #[test]
    fn slow_leak_is_growing() {
        let mut rng = Rng::new(2);
        let t = times(60.0, 0.1);
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 20.0 * MIB + 100.0 * KIB * t + 50.0 * KIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert!((v.rate / (100.0 * KIB) - 1.0).abs() < 0.05, "{v:?}");
        assert_eq!(v.reason, VerdictReason::Growing);
    }

    #[test]
    fn cache_still_filling_after_warmup_is_plateau_not_growing() {
        // fills over the first half of the run, well past the 20% warm-up, then stays full
        let t = times(5.0, 0.05);
        let y: Vec<f64> = t
            .iter()
            .map(|&x| 20.0 * MIB + 30.0 * MIB * (x / 2.5).min(1.0))
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Plateau, "{v:?}");
        assert!(matches!(v.reason, VerdictReason::Plateau { .. }), "{v:?}");
    }

    #[test]
    fn teardown_drop_at_exit_does_not_hide_a_leak_or_a_plateau() {
        let t = times(6.0, 0.05);
        let n = t.len();
        // the last three samples catch the process freeing everything at exit
        let exit = |i: usize, v: f64| if i >= n - 3 { 12.0 * MIB } else { v };
        let leak: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &x)| exit(i, 20.0 * MIB + 6.0 * MIB * x))
            .collect();
        let v = run(&t, &leak);
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert!((v.rate / MIB - 6.0).abs() < 0.3, "{v:?}");
        let plateau: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &x)| exit(i, 12.0 * MIB + 28.0 * MIB * (x / 2.6).min(1.0)))
            .collect();
        let v = run(&t, &plateau);
        assert_eq!(v.kind, VerdictKind::Plateau, "{v:?}");
    }

    #[test]
    fn fill_then_flat_is_plateau() {
        let mut rng = Rng::new(3);
        let t = times(10.0, 0.05);
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 50.0 * MIB * (t / 1.5).min(1.0) + 200.0 * KIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Plateau, "{v:?}");
        // filled from the level of the first 5% of the run (still climbing) to the top
        let VerdictReason::Plateau { filled, level } = v.reason else {
            panic!("{v:?}");
        };
        assert!((level / MIB - 50.0).abs() < 0.5, "{v:?}");
        assert!(filled > 35.0 * MIB && filled < level, "{v:?}");
    }

    /// Climbs `swing` over each `period`, then drops back to the trough, which rises at
    /// `trough_rate`.
    fn sawtooth(
        t: &[f64],
        period: f64,
        phase: f64,
        swing: f64,
        trough_rate: f64,
        seed: u64,
    ) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        t.iter()
            .map(|&t| {
                let x = (t / period + phase).fract();
                40.0 * MIB + trough_rate * t + swing * x + 100.0 * KIB * rng.unit()
            })
            .collect()
    }

    #[test]
    fn sawtooth_without_trend_is_sawtooth() {
        let t = times(10.0, 0.05);
        // aligned with the window and at other phases, with different noise: never growing
        for (k, phase) in [0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9]
            .into_iter()
            .enumerate()
        {
            let y = sawtooth(&t, 2.0, phase, 20.0 * MIB, 0.0, 10 + k as u64);
            let v = run(&t, &y);
            assert_eq!(v.kind, VerdictKind::Sawtooth, "phase {phase}: {v:?}");
            assert!(v.releases >= 3, "phase {phase}: {v:?}");
            let VerdictReason::Sawtooth { range } = v.reason else {
                panic!("phase {phase}: {v:?}");
            };
            assert!((range / MIB - 20.0).abs() < 1.0, "phase {phase}: {v:?}");
        }
    }

    #[test]
    fn sawtooth_with_rising_troughs_is_growing() {
        let t = times(30.0, 0.05);
        let y = sawtooth(&t, 3.0, 0.0, 20.0 * MIB, 1.0 * MIB, 20);
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert!(v.releases >= 7, "{v:?}");
        assert!((v.rate / MIB - 1.0).abs() < 0.3, "{v:?}");
        assert_eq!(v.reason, VerdictReason::Growing);
    }

    #[test]
    fn flat_noise_is_stable() {
        let mut rng = Rng::new(4);
        let t = times(10.0, 0.05);
        let y: Vec<f64> = t
            .iter()
            .map(|_| 30.0 * MIB + 200.0 * KIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Stable, "{v:?}");
        assert_eq!(v.releases, 0);
        // the 5th–95th percentile half-width of ±200 KiB uniform noise
        let VerdictReason::NoMaterialChange { spread } = v.reason else {
            panic!("{v:?}");
        };
        assert!((spread / KIB - 180.0).abs() < 15.0, "{v:?}");
    }

    #[test]
    fn one_time_spike_is_not_growing() {
        let t = times(10.0, 0.05);
        for (k, at) in [3.0, 5.0, 9.0, 9.95].into_iter().enumerate() {
            let mut rng = Rng::new(30 + k as u64);
            let y: Vec<f64> = t
                .iter()
                .map(|&t| {
                    let spike = if (t - at).abs() < 0.12 {
                        40.0 * MIB
                    } else {
                        0.0
                    };
                    30.0 * MIB + spike + 200.0 * KIB * rng.unit()
                })
                .collect();
            let v = run(&t, &y);
            assert_ne!(v.kind, VerdictKind::Growing, "spike at {at}: {v:?}");
            assert_ne!(v.kind, VerdictKind::Sawtooth, "spike at {at}: {v:?}");
        }
    }

    #[test]
    fn loud_white_noise_is_not_sawtooth() {
        // ±8 MiB of jitter: every step is as large as any "drop", so none is a release
        let t = times(10.0, 0.05);
        for seed in 40..48 {
            let mut rng = Rng::new(seed);
            let y: Vec<f64> = t
                .iter()
                .map(|_| 30.0 * MIB + 8.0 * MIB * rng.unit())
                .collect();
            let v = run(&t, &y);
            assert_eq!(v.releases, 0, "seed {seed}: {v:?}");
            assert_eq!(v.kind, VerdictKind::Stable, "seed {seed}: {v:?}");
        }
    }

    #[test]
    fn noisy_climb_without_evidence_is_not_plateau() {
        let mut rng = Rng::new(1);
        let t = times(10.0, 0.05);
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 30.0 * MIB + 0.3 * MIB * t + 8.0 * MIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Stable, "{v:?}");
        assert_eq!(v.reason, VerdictReason::NoSignificantTrend);
    }

    #[test]
    fn steady_decline_is_stable_and_says_so() {
        let mut rng = Rng::new(5);
        let t = times(10.0, 0.05);
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 80.0 * MIB - 3.0 * MIB * t + 100.0 * KIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Stable, "{v:?}");
        assert!(v.rate < 0.0);
        assert_eq!(v.reason, VerdictReason::Shrinking);
        assert!((v.rate / MIB + 3.0).abs() < 0.05, "{v:?}");
    }

    #[test]
    fn five_points_are_inconclusive() {
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [1.0 * MIB, 2.0 * MIB, 3.0 * MIB, 4.0 * MIB, 5.0 * MIB];
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Inconclusive);
        assert_eq!((v.rate, v.p_value), (0.0, 1.0));
        assert_eq!(v.points, 4);
        assert_eq!(v.reason, VerdictReason::TooFewAfterWarmup { need: 8 });
        assert!((v.warmup - 0.8).abs() < 1e-9, "{v:?}");
        let v = run(&t[..2], &y[..2]);
        assert_eq!(v.kind, VerdictKind::Inconclusive);
        assert_eq!(v.reason, VerdictReason::TooFewSamples { need: 3 });
        assert_eq!(v.points, 2);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let opts = VerdictOptions::default();
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let ramp: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
            (vec![], vec![]),
            (vec![0.0], vec![1.0]),
            (ramp.clone(), vec![]),
            (ramp.clone(), ramp[..10].to_vec()),
            (ramp[..10].to_vec(), ramp.clone()),
            (vec![nan; 50], ramp.clone()),
            (ramp.clone(), vec![nan; 50]),
            (
                ramp.iter()
                    .map(|&x| {
                        if (x as usize).is_multiple_of(3) {
                            nan
                        } else {
                            x
                        }
                    })
                    .collect(),
                ramp.clone(),
            ),
            (
                ramp.clone(),
                ramp.iter()
                    .map(|&x| {
                        if (x as usize).is_multiple_of(2) {
                            inf
                        } else {
                            -x
                        }
                    })
                    .collect(),
            ),
            (vec![5.0; 50], ramp.clone()),
            (ramp.clone(), vec![7.0 * MIB; 50]),
            (
                ramp.iter().map(|&x| (x / 5.0).floor()).collect(),
                ramp.clone(),
            ),
            (ramp.iter().rev().copied().collect(), ramp.clone()),
            (
                ramp.clone(),
                ramp.iter()
                    .map(|&x| {
                        if (x as usize).is_multiple_of(2) {
                            f64::MAX
                        } else {
                            -f64::MAX
                        }
                    })
                    .collect(),
            ),
            (ramp.iter().map(|&x| x * 1e-300).collect(), ramp.clone()),
            (ramp.iter().map(|&x| 1e15 + x).collect(), ramp.clone()),
            (
                vec![-inf, 0.0, 1.0, 2.0, inf],
                vec![1.0, 2.0, 3.0, 4.0, 5.0],
            ),
        ];
        for (t, y) in &cases {
            let v = classify(t, y, &opts);
            assert!(reason_fits_kind(&v), "{v:?}");
            assert!(
                v.p_value.is_nan() || (0.0..=1.0).contains(&v.p_value),
                "{v:?}"
            );
        }
        // all-equal values: stable, flat slope
        let v = classify(&ramp, &vec![7.0 * MIB; 50], &opts);
        assert_eq!(v.kind, VerdictKind::Stable);
        assert_eq!((v.rate, v.p_value, v.net_change), (0.0, 1.0, 0.0));
        assert_eq!(v.reason, VerdictReason::NoMaterialChange { spread: 0.0 });
        // zero duration
        let v = classify(&[5.0; 50], &ramp, &opts);
        assert_eq!(v.kind, VerdictKind::Inconclusive);
        assert_eq!((v.reason, v.points), (VerdictReason::AllAtOnce, 50));
        // nothing usable
        let v = classify(&[nan; 5], &ramp, &opts);
        assert_eq!((v.reason, v.points), (VerdictReason::NoSamples, 0));
        // odd options
        let odd = [
            VerdictOptions {
                warmup_fraction: nan,
                alpha: nan,
                min_growth_bytes: nan,
                min_growth_fraction: nan,
                min_points: 0,
            },
            VerdictOptions {
                warmup_fraction: 1.0,
                ..opts
            },
            VerdictOptions {
                warmup_fraction: -3.0,
                min_growth_bytes: -1.0,
                ..opts
            },
            VerdictOptions {
                warmup_fraction: inf,
                min_points: usize::MAX,
                ..opts
            },
        ];
        for o in &odd {
            for (t, y) in &cases {
                let _ = classify(t, y, o);
            }
        }
    }

    #[test]
    fn random_inputs_do_not_panic() {
        let mut rng = Rng::new(99);
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1e308,
            -1e308,
        ];
        for _ in 0..300 {
            let n = (rng.next_u64() % 60) as usize;
            let m = n.saturating_sub((rng.next_u64() % 3) as usize);
            let mut pick = |scale: f64| {
                if rng.next_u64().is_multiple_of(10) {
                    specials[(rng.next_u64() % specials.len() as u64) as usize]
                } else {
                    (rng.unit() * scale).round()
                }
            };
            let t: Vec<f64> = (0..n).map(|_| pick(20.0)).collect();
            let y: Vec<f64> = (0..m).map(|_| pick(4.0 * MIB)).collect();
            let v = classify(&t, &y, &VerdictOptions::default());
            assert!(reason_fits_kind(&v), "{v:?}");
        }
    }

    #[test]
    fn hundred_thousand_points_classify() {
        let mut rng = Rng::new(6);
        let t = times(1000.0, 0.01);
        assert!(t.len() > 100_000);
        let y: Vec<f64> = t
            .iter()
            .map(|&t| 100.0 * MIB + 10.0 * KIB * t + 1.0 * MIB * rng.unit())
            .collect();
        let v = run(&t, &y);
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert_eq!(v.points, 80_001);
    }

    #[test]
    fn normal_cdf_spot_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975_002_104_851_780).abs() < 2e-7);
        assert!((normal_cdf(-1.96) - 0.024_997_895_148_220).abs() < 2e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746_068_543).abs() < 2e-7);
        assert!((normal_cdf(-3.0) - 0.001_349_898_031_630).abs() < 2e-7);
        assert_eq!(normal_cdf(40.0), 1.0);
        assert_eq!(normal_cdf(-40.0), 0.0);
        assert!((erfc(0.5) - 0.479_500_122_186_953).abs() < 2e-7);
    }

    #[test]
    fn mann_kendall_small_example() {
        // strictly increasing, n = 5: S = 10, Var = 5·4·15/18, z = 9/sqrt(Var)
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [1.0, 2.0, 3.0, 4.0, 5.0];
        let pairs = pairs_of(&t, &y, None);
        assert_eq!(pairs.s, 10);
        let var = kendall_variance(&y, pairs.slopes.len(), &pairs.excess);
        assert!((var - 50.0 / 3.0).abs() < 1e-9);
        let fit = trend_fit(&t, &y, None);
        let z = 9.0 / (50.0f64 / 3.0).sqrt();
        assert!((fit.p_value - 2.0 * (1.0 - normal_cdf(z))).abs() < 1e-9);
        assert!((fit.p_value - 0.027_486).abs() < 1e-5);
        assert_eq!((fit.rate, fit.rate_low, fit.rate_high), (1.0, 1.0, 1.0));
    }

    #[test]
    fn variance_matches_textbook_tie_correction() {
        let y = [3.0, 1.0, 3.0, 2.0, 2.0, 2.0, 5.0, 3.0, 1.0, 4.0, 4.0, 2.0];
        let t: Vec<f64> = (0..y.len()).map(|i| i as f64).collect();
        let pairs = pairs_of(&t, &y, None);
        let var = kendall_variance(&y, pairs.slopes.len(), &pairs.excess);
        let n = y.len() as f64;
        // groups: 1×2, 2×4, 3×3, 4×2, 5×1
        let ties: f64 = [2.0f64, 4.0, 3.0, 2.0, 1.0]
            .iter()
            .map(|g| g * (g - 1.0) * (2.0 * g + 5.0))
            .sum();
        let textbook = (n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0;
        assert!((var - textbook).abs() < 1e-9, "{var} vs {textbook}");
    }

    #[test]
    fn cross_cycle_pairs_only() {
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [0.0, 1.0, 0.0, 1.0, 2.0];
        let labels = cycle_labels(5, &[2]);
        assert_eq!(labels, vec![0, 0, 1, 1, 1]);
        let pairs = pairs_of(&t, &y, Some(&labels));
        assert_eq!(pairs.slopes.len(), 6);
        assert_eq!(pairs.excess, vec![3, 3, -2, -2, -2]);
        // (0,2) 0, (0,3) +, (0,4) +, (1,2) −, (1,3) 0, (1,4) +
        assert_eq!(pairs.s, 2);
    }

    #[test]
    fn releases_are_counted_once() {
        // a drop spread over three samples, noise at the bottom, then a second drop
        let y = [
            0.0, 5.0, 10.0, 10.0, 7.0, 4.0, 1.0, 1.5, 1.0, 6.0, 11.0, 0.0, 0.5,
        ];
        // first seen at 7 (3 below the high of 10), not again at 4 or 1
        assert_eq!(find_releases(&y, 2.5, 3), vec![4, 11]);
        assert!(find_releases(&[1.0, 2.0, 3.0], f64::NAN, 3).is_empty());
        assert!(find_releases(&[], 1.0, 3).is_empty());
    }

    #[test]
    fn reduction_keeps_shape() {
        let t: Vec<f64> = (0..5000).map(|i| i as f64).collect();
        let y: Vec<f64> = t.iter().map(|&x| 2.0 * x).collect();
        let (rt, ry) = reduce(&t, &y);
        assert_eq!(rt.len(), REDUCED_POINTS);
        assert_eq!(ry.len(), REDUCED_POINTS);
        assert_eq!((rt[0], ry[0]), (2.0, 4.0));
        let (short_t, _) = reduce(&t[..100], &y[..100]);
        assert_eq!(short_t.len(), 100);
    }

    #[test]
    fn order_stats_and_medians() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0, 6.0];
        assert_eq!(
            order_stats(&mut v, &[1.0, 3.5, 6.0, 0.0, 99.0, f64::NAN]),
            vec![1.0, 3.5, 6.0, 1.0, 6.0, 1.0]
        );
        assert_eq!(median_of(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_of(&[]), None);
        assert_eq!(net_change_of(&[1.0, 1.0, 1.0, 9.0, 5.0, 5.0, 5.0]), 4.0);
        assert_eq!(net_change_of(&[]), 0.0);
    }
}
