//! `hunt`: does calling this function leak? Each signal is read after a warm-up and after every
//! measured run (the interpreter's caches cleared and the gc run between runs, as CPython's
//! refleak hunter does); the verdict is on the per-run deltas.
//!
//! The rule is the refleak hunter's, made adaptive: a signal leaks when it rose by at least its
//! step in **every** measured run. A rise that is the same in every run is a leak after
//! [`CONSTANT_RUNS`] runs (chance and caches do not repeat to the byte); a rise that varies
//! needs [`VARYING_RUNS`] runs, where all of them rising by chance (a coin each run) is below
//! 1 in 30. No rise in [`NO_RISE_RUNS`] runs, or a rise in half of the runs or fewer (from
//! [`MIN_RUNS`]), is no leak. In between, more runs decide, up to the bound; at the bound a sign
//! test says leaks (at [`ALPHA`]) or inconclusive.

use serde::Serialize;

use crate::allocs::SiteAtMarks;
use crate::heap::RetentionPath;
use crate::profile::Location;

/// Runs of one same rise that make a leak.
pub const CONSTANT_RUNS: usize = 3;
/// Runs of varying rises that make a leak: 2^-5, about 3%, for rises by chance.
pub const VARYING_RUNS: usize = 5;
/// Fewest measured runs for any verdict but "no rise at all".
pub const MIN_RUNS: usize = 3;
/// Runs with no rise at all that make no leak: a leak rises in every run, and two runs without
/// one already rule that out (the other verdicts need [`MIN_RUNS`]).
pub const NO_RISE_RUNS: usize = 2;
/// A mixed series at the bound leaks when as many rises come by chance less often than this.
pub const ALPHA: f64 = 0.01;

/// What is read after every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The interpreter's total reference count (debug builds only).
    Refs,
    /// Blocks allocated by Python's allocator (`sys.getallocatedblocks`), less interned strings.
    Blocks,
    /// Live Python objects (gc-tracked and what they reach).
    Objects,
    /// Bytes in use in the C allocator (glibc `mallinfo2`): C extensions, large Python objects.
    NativeHeap,
    /// Resident memory of the process.
    Rss,
    /// Open file descriptors.
    Fds,
    /// Threads of the process.
    Threads,
}

impl Signal {
    /// The smallest rise per run that counts. Counts are exact: one. glibc counts the blocks
    /// parked in its per-thread cache (tcache: up to 7 freed blocks per size up to 1 KiB) as in
    /// use, and that cache fills over many calls, a few KiB at a time, up to some 200 KiB: a C
    /// leak counts from 64 KiB per run (memory C leaks through Python objects shows in the
    /// other signals). RSS moves by pages and by the allocator's whims.
    pub fn step(self) -> f64 {
        match self {
            Signal::NativeHeap => 64.0 * 1024.0,
            Signal::Rss => 256.0 * 1024.0,
            _ => 1.0,
        }
    }

    pub fn is_bytes(self) -> bool {
        matches!(self, Signal::NativeHeap | Signal::Rss)
    }
}

/// A verdict on one series of per-run deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HuntKind {
    Leaks,
    NoLeak,
    Inconclusive,
}

/// Why a verdict is what it is, for the words the renderer puts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "case", rename_all = "snake_case")]
pub enum HuntReason {
    /// The same rise in every run.
    SameRiseEveryRun,
    /// A rise in every run.
    RoseEveryRun,
    /// Rose in most runs: `rose` of the runs, less likely than [`ALPHA`] by chance.
    RoseInMost { rose: usize },
    /// Rose in half the runs or fewer.
    RoseInFew { rose: usize },
    /// Fewer runs so far than a verdict needs.
    TooFewRuns,
    /// Rose in more than half of the runs, not in enough to call it a leak.
    Mixed { rose: usize },
    /// Not read on this interpreter or platform.
    NotRead,
}

/// The verdict on one signal's (or one type's) per-run deltas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunVerdict {
    pub kind: HuntKind,
    pub reason: HuntReason,
    /// Median rise per run.
    pub per_run: f64,
    /// The measured runs' deltas, in order.
    pub deltas: Vec<f64>,
    /// The chance of as many rises without a leak (each run a coin toss).
    pub chance: f64,
    /// Runs that may still decide it, while it is not decided.
    pub more_runs: usize,
}

/// Judges one series of readings: the first after the warm-up, then one after each measured
/// run. `max_runs`: the bound on measured runs (at it, a mixed series gets the sign test).
pub fn judge(readings: &[f64], step: f64, max_runs: usize) -> RunVerdict {
    let deltas: Vec<f64> = readings.windows(2).map(|w| w[1] - w[0]).collect();
    let n = deltas.len();
    let rose = deltas.iter().filter(|&&d| d >= step).count();
    let per_run = crate::trend::median_in_place(&mut deltas.clone()).unwrap_or(0.0);
    let chance = sign_test(rose, n);
    let verdict = |kind, reason, more_runs| RunVerdict {
        kind,
        reason,
        per_run,
        deltas: deltas.clone(),
        chance,
        more_runs,
    };
    if rose == 0 && n >= NO_RISE_RUNS {
        return verdict(HuntKind::NoLeak, HuntReason::RoseInFew { rose }, 0);
    }
    if n < MIN_RUNS {
        return verdict(HuntKind::Inconclusive, HuntReason::TooFewRuns, MIN_RUNS - n);
    }
    if rose == n {
        let same = deltas.iter().all(|&d| d == deltas[0]);
        if same && n >= CONSTANT_RUNS {
            return verdict(HuntKind::Leaks, HuntReason::SameRiseEveryRun, 0);
        }
        if n >= VARYING_RUNS {
            return verdict(HuntKind::Leaks, HuntReason::RoseEveryRun, 0);
        }
        // short of VARYING_RUNS (a bound below it leaves these runs untaken)
        return verdict(
            HuntKind::Inconclusive,
            HuntReason::TooFewRuns,
            VARYING_RUNS - n,
        );
    }
    if 2 * rose <= n {
        return verdict(HuntKind::NoLeak, HuntReason::RoseInFew { rose }, 0);
    }
    if n < max_runs {
        return verdict(
            HuntKind::Inconclusive,
            HuntReason::Mixed { rose },
            max_runs - n,
        );
    }
    if chance < ALPHA {
        return verdict(HuntKind::Leaks, HuntReason::RoseInMost { rose }, 0);
    }
    verdict(
        HuntKind::Inconclusive,
        HuntReason::Mixed { rose },
        runs_to_decide(rose, n),
    )
}

/// A signal this interpreter or platform cannot read.
pub fn not_read() -> RunVerdict {
    RunVerdict {
        kind: HuntKind::Inconclusive,
        reason: HuntReason::NotRead,
        per_run: 0.0,
        deltas: Vec::new(),
        chance: 1.0,
        more_runs: 0,
    }
}

/// Runs more, all rising, after which `rose` of `n` becomes a leak at [`ALPHA`].
fn runs_to_decide(rose: usize, n: usize) -> usize {
    (1..=10 * n.max(1))
        .find(|&k| sign_test(rose + k, n + k) < ALPHA)
        .unwrap_or(0)
}

/// One-sided sign test: the chance of `rose` or more rises in `n` runs, each a fair coin.
fn sign_test(rose: usize, n: usize) -> f64 {
    let mut total = 0.0;
    for k in rose..=n {
        total += binomial(n, k);
    }
    total / 2f64.powi(n as i32)
}

fn binomial(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// A signal's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalVerdict {
    pub signal: Signal,
    pub verdict: RunVerdict,
}

/// A type whose live instances leak.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeVerdict {
    pub name: String,
    /// Instances after the last run.
    pub count: u64,
    pub verdict: RunVerdict,
}

/// A line whose live bytes rose run after run while the hunt tracked its allocations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteVerdict {
    pub location: Location,
    /// Bytes alive after the last tracked run, allocated during the tracked runs.
    pub bytes: u64,
    pub verdict: RunVerdict,
    /// What keeps its newest blocks alive, when a search found it.
    pub holder: Option<RetentionPath>,
}

/// The lines that leak, most per run first, from their live bytes after each tracked run
/// (`SiteAtMarks`: a mark before the first run, one after each), judged as every signal is.
/// Each comes with the blocks whose holders to search (see [`SiteVerdict::holder`]).
pub fn leaking_sites(sites: &[SiteAtMarks], max_runs: usize) -> Vec<(SiteVerdict, Vec<u64>)> {
    let mut found: Vec<(SiteVerdict, Vec<u64>)> = sites
        .iter()
        .filter_map(|s| {
            let readings: Vec<f64> = s.bytes.iter().map(|&b| b as f64).collect();
            let verdict = judge(&readings, 1.0, max_runs);
            (verdict.kind == HuntKind::Leaks).then(|| {
                let site = SiteVerdict {
                    location: s.location.clone(),
                    bytes: s.bytes.last().copied().unwrap_or(0),
                    verdict,
                    holder: None,
                };
                (site, s.samples.clone())
            })
        })
        .collect();
    found.sort_by(|a, b| b.0.verdict.per_run.total_cmp(&a.0.verdict.per_run));
    found
}

/// One hunt's readings, kept where the measured function's allocations cannot see them (a
/// list growing in the Python heap between readings would be read as a leak).
#[derive(Debug, Clone, Default)]
pub struct Readings {
    /// Per signal: one value per reading, `None` where it was not read.
    signals: Vec<(Signal, Vec<Option<f64>>)>,
    /// Per type name: instance counts per reading (0 where absent).
    types: Vec<(String, Vec<u64>)>,
    taken: usize,
}

impl Readings {
    /// Adds one reading of every signal (and of every type's instance count).
    pub fn push(&mut self, values: &[(Signal, Option<f64>)], types: &[(String, u64)]) {
        for &(signal, value) in values {
            match self.signals.iter_mut().find(|(s, _)| *s == signal) {
                Some((_, series)) => series.push(value),
                None => {
                    let mut series = vec![None; self.taken];
                    series.push(value);
                    self.signals.push((signal, series));
                }
            }
        }
        for (_, series) in &mut self.signals {
            series.resize(self.taken + 1, None);
        }
        let index: std::collections::HashMap<&str, u64> =
            types.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        for (name, series) in &mut self.types {
            series.push(index.get(name.as_str()).copied().unwrap_or(0));
        }
        for (name, count) in types {
            if !self.types.iter().any(|(n, _)| n == name) {
                let mut series = vec![0; self.taken];
                series.push(*count);
                self.types.push((name.clone(), series));
            }
        }
        self.taken += 1;
    }

    /// Measured runs so far (the first reading is the baseline).
    pub fn runs(&self) -> usize {
        self.taken.saturating_sub(1)
    }

    /// Every signal's verdict, and the types that leak.
    pub fn judge(&self, max_runs: usize) -> (Vec<SignalVerdict>, Vec<TypeVerdict>) {
        let mut types: Vec<TypeVerdict> = self
            .type_verdicts(max_runs)
            .filter(|t| t.verdict.kind == HuntKind::Leaks)
            .collect();
        types.sort_by(|a, b| b.verdict.per_run.total_cmp(&a.verdict.per_run));
        (self.signal_verdicts(max_runs), types)
    }

    fn signal_verdicts(&self, max_runs: usize) -> Vec<SignalVerdict> {
        self.signals
            .iter()
            .map(|(signal, series)| {
                let values: Option<Vec<f64>> = series.iter().copied().collect();
                SignalVerdict {
                    signal: *signal,
                    verdict: values
                        .map(|v| judge(&v, signal.step(), max_runs))
                        .unwrap_or_else(not_read),
                }
            })
            .collect()
    }

    /// Every type's verdict, leaking or not.
    fn type_verdicts(&self, max_runs: usize) -> impl Iterator<Item = TypeVerdict> + '_ {
        self.types.iter().map(move |(name, series)| {
            let values: Vec<f64> = series.iter().map(|&c| c as f64).collect();
            TypeVerdict {
                name: name.clone(),
                count: series.last().copied().unwrap_or(0),
                verdict: judge(&values, 1.0, max_runs),
            }
        })
    }

    /// True once more runs cannot change the answer: every signal is decided, or one leaks
    /// (the rest then only add detail), or the bound is reached.
    pub fn settled(&self, max_runs: usize) -> bool {
        if self.runs() >= max_runs {
            return true;
        }
        let signals = self.signal_verdicts(max_runs);
        let read: Vec<&SignalVerdict> = signals
            .iter()
            .filter(|s| s.verdict.reason != HuntReason::NotRead)
            .collect();
        if read.iter().any(|s| s.verdict.kind == HuntKind::Leaks) {
            return true;
        }
        // one pass over the types: one that leaks settles it; one that rose in every run so
        // far (too few runs yet) may leak while the totals stay flat
        let mut type_rising = false;
        for t in self.type_verdicts(max_runs) {
            if t.verdict.kind == HuntKind::Leaks {
                return true;
            }
            type_rising |= t.verdict.reason == HuntReason::TooFewRuns
                && t.verdict.deltas.iter().all(|&d| d >= 1.0);
        }
        !type_rising && read.iter().all(|s| s.verdict.kind == HuntKind::NoLeak)
    }
}

/// The answer to "does this function leak?".
#[derive(Debug, Clone, Serialize)]
pub struct HuntReport {
    /// What was called (`file.py::function`, or the function's qualified name).
    pub target: String,
    pub warmup: usize,
    /// Measured runs.
    pub runs: usize,
    pub max_runs: usize,
    /// A debug build (the refcount total is read).
    pub debug_build: bool,
    /// Leaks when any signal leaks; no leak when every signal read says so; else inconclusive.
    pub kind: HuntKind,
    pub signals: Vec<SignalVerdict>,
    /// Types whose instances leak, most per run first.
    pub types: Vec<TypeVerdict>,
    /// Runs made again with every allocation tracked, after a leak was found, to name its
    /// lines (0 when none were).
    pub tracked_runs: usize,
    /// The lines that leak in those runs, most per run first.
    pub sites: Vec<SiteVerdict>,
}

impl HuntReport {
    pub fn new(
        target: String,
        warmup: usize,
        max_runs: usize,
        debug_build: bool,
        readings: &Readings,
    ) -> HuntReport {
        let (signals, types) = readings.judge(max_runs);
        let read = || {
            signals
                .iter()
                .filter(|s| s.verdict.reason != HuntReason::NotRead)
        };
        let kind = if read().any(|s| s.verdict.kind == HuntKind::Leaks) || !types.is_empty() {
            HuntKind::Leaks
        } else if read().all(|s| s.verdict.kind == HuntKind::NoLeak) {
            HuntKind::NoLeak
        } else {
            HuntKind::Inconclusive
        };
        HuntReport {
            target,
            warmup,
            runs: readings.runs(),
            max_runs,
            debug_build,
            kind,
            signals,
            types,
            tracked_runs: 0,
            sites: Vec::new(),
        }
    }

    pub fn leaks(&self) -> bool {
        self.kind == HuntKind::Leaks
    }

    /// Bytes each run leaves alive: the leaking lines' rises (Python's allocator, from the
    /// tracked runs) and the C heap's when it leaks. 0 when nothing leaks.
    pub fn bytes_per_run(&self) -> f64 {
        let python: f64 = self.sites.iter().map(|s| s.verdict.per_run.max(0.0)).sum();
        let native = self
            .signals
            .iter()
            .filter(|s| s.signal == Signal::NativeHeap && s.verdict.kind == HuntKind::Leaks)
            .map(|s| s.verdict.per_run.max(0.0))
            .sum::<f64>();
        python + native
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(deltas: &[f64]) -> Vec<f64> {
        let mut v = vec![100.0];
        for d in deltas {
            v.push(v.last().unwrap() + d);
        }
        v
    }

    #[test]
    fn the_same_rise_in_three_runs_is_a_leak() {
        let v = judge(&series(&[3.0, 3.0, 3.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Leaks);
        assert_eq!(v.reason, HuntReason::SameRiseEveryRun);
        assert_eq!(v.per_run, 3.0);
    }

    #[test]
    fn varying_rises_need_five_runs() {
        let v = judge(&series(&[3.0, 5.0, 4.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
        assert_eq!(v.more_runs, 2);
        let v = judge(&series(&[3.0, 5.0, 4.0, 1.0, 2.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Leaks);
        assert_eq!(v.reason, HuntReason::RoseEveryRun);
    }

    #[test]
    fn rises_below_the_step_are_not_rises() {
        // the refleak hunter's false positives: [3, 0, 0], [0, 1, 0], [8, -8, 1]
        for d in [[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]] {
            let v = judge(&series(&d), 1.0, 12);
            assert_eq!(v.kind, HuntKind::NoLeak, "{d:?}");
        }
        // two rises of three is no verdict yet; runs without one decide it
        let v = judge(&series(&[8.0, -8.0, 1.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
        let v = judge(&series(&[8.0, -8.0, 1.0, 0.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::NoLeak);
        let v = judge(&series(&[4096.0, 4096.0, 4096.0]), 256.0 * 1024.0, 12);
        assert_eq!(v.kind, HuntKind::NoLeak);
    }

    #[test]
    fn a_mixed_series_goes_on_to_the_bound_then_takes_the_sign_test() {
        let v = judge(&series(&[2.0, 0.0, 2.0, 2.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
        assert_eq!(v.more_runs, 8);
        // 11 of 12: chance 13/4096
        let mut d = vec![2.0; 12];
        d[3] = 0.0;
        let v = judge(&series(&d), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Leaks);
        assert!(v.chance < ALPHA);
        // 9 of 12: chance 0.07, and three more rises would decide it
        let mut d = vec![2.0; 12];
        d[1] = 0.0;
        d[5] = 0.0;
        d[9] = 0.0;
        let v = judge(&series(&d), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
        assert!(v.more_runs > 0);
        assert!(sign_test(9 + v.more_runs, 12 + v.more_runs) < ALPHA);
    }

    #[test]
    fn fewer_than_three_runs_decide_nothing_but_no_rise_at_all() {
        let v = judge(&series(&[5.0, 5.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
        assert_eq!(v.reason, HuntReason::TooFewRuns);
        // one rise of two is no verdict yet
        let v = judge(&series(&[5.0, 0.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
        let v = judge(&series(&[0.0, -3.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::NoLeak);
        let v = judge(&series(&[0.0]), 1.0, 12);
        assert_eq!(v.kind, HuntKind::Inconclusive);
    }

    #[test]
    fn the_sign_test_counts_the_tail() {
        assert!((sign_test(4, 4) - 1.0 / 16.0).abs() < 1e-12);
        assert!((sign_test(11, 12) - 13.0 / 4096.0).abs() < 1e-12);
        assert!((sign_test(0, 5) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn readings_settle_once_every_signal_is_decided_or_one_leaks() {
        let mut r = Readings::default();
        let types = |n: u64| vec![("list".to_string(), 10), ("Order".to_string(), n)];
        for i in 0..4u64 {
            r.push(
                &[
                    (Signal::Blocks, Some(500.0)),
                    (Signal::Fds, Some(4.0)),
                    (Signal::Refs, None),
                ],
                &types(i * 2),
            );
            assert_eq!(r.settled(12), i == 3, "after {} runs", r.runs());
        }
        let report = HuntReport::new("t".into(), 3, 12, false, &r);
        // the blocks and fds say no leak, the Order instances leak: a leak
        assert_eq!(report.kind, HuntKind::Leaks);
        assert_eq!(report.types.len(), 1);
        assert_eq!(report.types[0].name, "Order");
        assert_eq!(report.types[0].verdict.per_run, 2.0);
        let refs = report.signals.iter().find(|s| s.signal == Signal::Refs);
        assert_eq!(refs.unwrap().verdict.reason, HuntReason::NotRead);
    }

    #[test]
    fn a_line_whose_bytes_rise_every_run_leaks_and_one_that_filled_does_not() {
        let at = |line| Location {
            function: "f".into(),
            file: "app.py".into(),
            line,
            library: String::new(),
        };
        let sites = vec![
            SiteAtMarks {
                location: at(3),
                bytes: vec![0, 4096, 4096, 4096],
                samples: vec![1],
            },
            SiteAtMarks {
                location: at(7),
                bytes: vec![0, 120, 240, 360],
                samples: vec![2, 3],
            },
        ];
        let found = leaking_sites(&sites, 12);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.location.line, 7);
        assert_eq!(found[0].0.verdict.per_run, 120.0);
        assert_eq!(found[0].1, vec![2, 3]);
    }

    #[test]
    fn a_type_that_appears_later_counts_from_zero() {
        let mut r = Readings::default();
        r.push(&[], &[]);
        for n in 1..=3u64 {
            r.push(&[], &[("Job".to_string(), n)]);
        }
        let (_, types) = r.judge(12);
        assert_eq!(types[0].name, "Job");
        assert_eq!(types[0].verdict.deltas, vec![1.0, 1.0, 1.0]);
    }
}
