//! The one verdict: every signal a capture holds, weighed over the program's own time, as
//! findings ranked by evidence. The exit summary of `run`, `report leaks`, `report verdict` and
//! `run --check` all show this one result; no other module decides whether a program leaks.
//!
//! Signals, each judged with the robust trend of [`crate::trend`]:
//! - allocation sites whose live bytes keep growing ([`LeakReport`]), kept only when the growth
//!   is material: large enough in bytes, and either fast or a real share of the program's growth;
//! - what keeps a growing site alive: a holder rooted in C (a missing `Py_DECREF`) or in an
//!   unreachable cycle changes the finding's kind;
//! - gc state from the censuses: the collector off while unreachable cycles pile up;
//! - types whose instance counts keep growing, when no allocation site explains them;
//! - RSS growing beyond the tracked heap: memory Python's allocator never saw (C `malloc`);
//! - open file descriptors and threads, when the samples hold them.
//!
//! Trends use the program's own time: up to the end of its main code when the capture marks it
//! (format 1.3), so neither its shutdown nor memsleuth's exit work flattens a leak's tail.

use std::path::Path;

use serde::Serialize;

use crate::allocs::{LeakOptions, LeakReport, SiteRow};
use crate::growth::{GrowthOptions, GrowthReport};
use crate::heap::{RetentionPath, RootKind};
use crate::profile::Location;
use crate::trend::{classify, VerdictKind, VerdictOptions};
use crate::AnalysisError;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Python objects allocated at one line keep accumulating.
    Python,
    /// Instances of a type keep accumulating (no allocation site to name).
    Types,
    /// The gc is off and unreachable cycles pile up.
    GcCycles,
    /// Objects that nothing in Python refers to, kept alive by references from C.
    HeldFromC,
    /// RSS grows beyond what Python's allocator holds: memory allocated in C.
    Native,
    /// Open file descriptors keep growing.
    Fds,
    /// Threads keep growing.
    Threads,
}

/// What a finding's rate and growth count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Objects,
    Fds,
    Threads,
}

/// The program as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Leaking,
    NoLeak,
    /// The run was too short, or its largest sites too young, to tell.
    Inconclusive,
}

/// One thing that grows, with the evidence for it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub unit: Unit,
    /// Theil–Sen slope over the analysed window, per second, and its 95% interval.
    pub rate: f64,
    pub rate_low: f64,
    pub rate_high: f64,
    /// Mann–Kendall p-value of the trend.
    pub p_value: f64,
    /// Growth over the analysed window (rate × its length).
    pub growth: f64,
    /// Analysed window, seconds since the capture start.
    pub window_start: f64,
    pub window_end: f64,
    /// Python site findings: the share of the tracked heap's growth over the same window this
    /// site accounts for, when the heap grew.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Index of the site in the leak report's sites.
    #[serde(skip)]
    pub site: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Outermost caller first, the site last (a few frames).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// What keeps a surviving instance alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<RetentionPath>,
    /// Alive when the program's time ended, in `unit`.
    pub alive: f64,
    /// Of `alive`, what the program's shutdown freed (bytes): a leak while the program runs.
    pub freed_at_shutdown: u64,
    /// Python site findings: what the program released only as its main code ended (bytes),
    /// after growing through its time; `alive` is then what it held before the release.
    pub released_at_end: u64,
}

impl Finding {
    /// A finding from a series' trend; the caller fills in what names its cause.
    fn of_trend(kind: FindingKind, unit: Unit, v: &crate::trend::Verdict, alive: f64) -> Finding {
        Finding {
            kind,
            unit,
            rate: v.rate,
            rate_low: v.rate_low,
            rate_high: v.rate_high,
            p_value: v.p_value,
            growth: v.rate * (v.window_end - v.window_start).max(0.0),
            window_start: v.window_start,
            window_end: v.window_end,
            share: None,
            site: None,
            location: None,
            stack: Vec::new(),
            type_name: None,
            holder: None,
            alive,
            freed_at_shutdown: 0,
            released_at_end: 0,
        }
    }
}

/// Why a growing series was not called a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dismissal {
    /// Grew by less than the byte floor over the window.
    TooSmall,
    /// Slow, and a small share of the program's growth.
    Immaterial,
    /// Grew over too short a window for a trend to mean anything.
    TooBrief,
}

/// A growing site that is not a finding, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Dismissed {
    /// Index of the site in the leak report's sites (none for a site released at the end).
    #[serde(skip)]
    pub site: Option<usize>,
    pub location: Location,
    pub rate: f64,
    pub growth: f64,
    pub reason: Dismissal,
}

/// Open descriptors and threads of the program's process at one sample.
#[derive(Debug, Clone, Copy)]
pub struct CountSample {
    pub t_ns: u64,
    pub fds: Option<u64>,
    pub threads: Option<u64>,
}

/// Which signals the capture held.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Signals {
    pub sites: bool,
    pub censuses: bool,
    pub rss: bool,
    pub fds: bool,
    pub threads: bool,
    /// The capture marks the end of the program's main code.
    pub phases: bool,
    /// The capture marks where the program's time ends for the analyses: its main code's end,
    /// or `attach`'s recording end.
    pub end_marked: bool,
    /// The C allocator was tracked too (the `native` instrument): site findings count the
    /// memory extensions took from malloc and mmap, not only Python's allocators'.
    pub native: bool,
}

/// The verdict on a capture.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramVerdict {
    pub state: State,
    /// Most evident first.
    pub findings: Vec<Finding>,
    pub dismissed: Vec<Dismissed>,
    pub signals: Signals,
    /// The program's own time, seconds from the capture start to the end of its main code (or
    /// of the capture).
    pub program_seconds: f64,
    /// Inconclusive runs: how long a run would decide, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_seconds: Option<f64>,
    /// The tracked heap's trend over the program's time, bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_rate: Option<f64>,
    /// The leak report the site findings come from (absent without allocation tracking).
    #[serde(skip)]
    pub leaks: Option<LeakReport>,
    /// The census report the type and gc findings come from (absent without censuses).
    #[serde(skip)]
    pub growth: Option<GrowthReport>,
}

// ---------------------------------------------------------------------------------------------
// Materiality. Each threshold is a judgement call; the reasoning is next to it.
// ---------------------------------------------------------------------------------------------

/// A site must grow by at least this much over the program's time: below it, what grows is the
/// size of a few dict resizes or a warm-up table, never worth a developer's afternoon.
const SITE_MIN_GROWTH: f64 = 64.0 * 1024.0;
/// ...and either grow at least this fast, a rate that costs a long-running service gigabytes a
/// day...
const SITE_RATE_FLOOR: f64 = 256.0 * 1024.0;
/// ...or account for at least this share of the tracked heap's own growth: a slow leak is what
/// the program's growth is made of, while a line that churns inside a structure at capacity is
/// a sliver of a heap that does not grow.
const SITE_MIN_SHARE: f64 = 0.25;
/// RSS beyond the tracked heap must grow at least this fast and by this much: pymalloc arenas,
/// fragmentation, memsleuth's own tables and imports (3.13's lazy imports: up to 1.1 MiB/s
/// on the corpus's look-alikes) move RSS by a few MiB without any C leak; the C leaks of the
/// corpus and the tests grow 12-25 MiB/s. A slower native leak counts once it has grown by
/// [`NATIVE_LARGE_GROWTH`].
const NATIVE_RATE_FLOOR: f64 = 2.0 * 1024.0 * 1024.0;
const NATIVE_LARGE_GROWTH: f64 = 64.0 * 1024.0 * 1024.0;
const NATIVE_MIN_GROWTH: f64 = 4.0 * 1024.0 * 1024.0;
/// RSS grows with the tracked heap by more than the bytes asked for (pymalloc's partly used
/// pools, malloc's headers and rounding, arenas kept after a release): up to a few tenths of the
/// heap's own growth on the corpus. Growth beyond the heap counts as native only when it is at
/// least half the heap's rate, so a Python leak does not bring a native one with it.
const NATIVE_SHARE_OF_HEAP: f64 = 0.5;
/// Descriptors and threads are counted one by one: growth by this many over the run is a leak
/// when the trend is significant (a pool grows to its size once and stays).
const FD_MIN_GROWTH: f64 = 8.0;
const THREAD_MIN_GROWTH: f64 = 4.0;
/// Types: instance growth worth a finding when no site explains it.
const TYPE_MIN_GROWTH: f64 = 1000.0;
/// Below this much program time nothing can be told from a trend.
const MIN_PROGRAM_SECONDS: f64 = 0.5;
/// A site's analysed window must be at least this long: a list built in 20 ms climbs as
/// steadily as any leak.
const MIN_WINDOW_SECONDS: f64 = 0.4;
/// Sites judged (largest first) and findings of one kind kept.
const MAX_SITE_FINDINGS: usize = 5;

/// Trend tuning for whole-process series (RSS beyond the heap, descriptor and thread counts),
/// sampled every 10 ms or so.
fn process_options(min_growth: f64) -> VerdictOptions {
    VerdictOptions {
        warmup_fraction: 0.2,
        alpha: 0.01,
        min_growth_bytes: min_growth,
        min_growth_fraction: 0.02,
        min_points: 8,
    }
}

impl ProgramVerdict {
    /// The verdict on a capture file: one leak report, one census report when there are
    /// censuses.
    pub fn from_path(path: &Path) -> Result<ProgramVerdict, AnalysisError> {
        Self::from_path_with(path, &LeakOptions::default())
    }

    /// [`ProgramVerdict::from_path`] with the leak report made as `report leaks` was asked to.
    pub fn from_path_with(
        path: &Path,
        opts: &LeakOptions,
    ) -> Result<ProgramVerdict, AnalysisError> {
        match LeakReport::from_path(path, opts) {
            Ok(r) => Ok(Self::from_leaks(r)),
            // no allocation tracking: the censuses are all there is to weigh
            Err(AnalysisError::NoAllocations) => {
                let growth = match GrowthReport::from_path(path, &GrowthOptions::default()) {
                    Ok(r) => Some(r),
                    Err(AnalysisError::NoCensus) => None,
                    Err(e) => return Err(e),
                };
                Ok(Self::from_reports(None, growth))
            }
            Err(e) => Err(e),
        }
    }

    /// The verdict on a leak report and the censuses its pass read with it: the capture is
    /// read once. Growing types are not mapped to their allocation sites here (that takes
    /// another replay); the verdict reports types only when no site explains the growth.
    pub fn from_leaks(mut leaks: LeakReport) -> ProgramVerdict {
        let read = std::mem::take(&mut leaks.censuses);
        let growth = GrowthReport::from_read(
            read,
            &GrowthOptions::default(),
            None::<crate::allocs::Open<'_, std::io::Empty>>,
        )
        .ok();
        Self::from_reports(Some(leaks), growth)
    }

    /// Weighs the reports' signals (descriptor and thread counts come with the leak report).
    pub fn from_reports(
        mut leaks: Option<LeakReport>,
        growth: Option<GrowthReport>,
    ) -> ProgramVerdict {
        let mut findings = Vec::new();
        let mut dismissed = Vec::new();
        let mut signals = Signals::default();
        let mut heap_rate = None;
        let mut program_ns = 0;
        if let Some(r) = &leaks {
            signals.sites = true;
            signals.rss = !r.rss.is_empty();
            let phases = r.capture.phases;
            signals.phases = phases.main_end_ns.is_some();
            signals.end_marked = phases.main_end_ns.or(phases.recording_end_ns).is_some();
            signals.native = r.capture.instruments.iter().any(|i| i == "native");
            program_ns = r.at_ns;
            heap_rate = heap_trend(r);
            site_findings(r, heap_rate, &mut findings, &mut dismissed);
            if let Some(f) = native_finding(r, heap_rate) {
                findings.push(f);
            }
        }
        if let Some(g) = &growth {
            signals.censuses = true;
            if program_ns == 0 {
                program_ns = g.capture.duration_ns;
            }
            if let Some(f) = gc_finding(g) {
                findings.push(f);
            }
            if !findings.iter().any(|f| f.kind == FindingKind::Python) {
                findings.extend(type_findings(g));
            }
        }
        if let Some(samples) = leaks.as_ref().map(|r| r.counts.as_slice()) {
            let fds: Vec<(u64, f64)> = samples
                .iter()
                .filter_map(|s| s.fds.map(|v| (s.t_ns, v as f64)))
                .collect();
            let threads: Vec<(u64, f64)> = samples
                .iter()
                .filter_map(|s| s.threads.map(|v| (s.t_ns, v as f64)))
                .collect();
            signals.fds = !fds.is_empty();
            signals.threads = !threads.is_empty();
            findings.extend(count_finding(
                &fds,
                FindingKind::Fds,
                Unit::Fds,
                FD_MIN_GROWTH,
            ));
            findings.extend(count_finding(
                &threads,
                FindingKind::Threads,
                Unit::Threads,
                THREAD_MIN_GROWTH,
            ));
        }
        findings.sort_by_key(|f| rank(f.kind));
        // the leak table's rows say what the verdict says of their growth
        if let Some(r) = leaks.as_mut() {
            for d in &dismissed {
                if let Some(row) = d.site.and_then(|i| r.leaks.sites.get_mut(i)) {
                    row.dismissed = Some(d.reason);
                }
            }
        }
        let program_seconds = program_ns as f64 / 1e9;
        let (state, needs_seconds) = if !findings.is_empty() {
            (State::Leaking, None)
        } else if program_seconds < MIN_PROGRAM_SECONDS
            || top_site_undecided(leaks.as_ref())
            || dismissed.iter().any(|d| d.reason == Dismissal::TooBrief)
        {
            let needed = (program_seconds * 3.0).max(2.0);
            (State::Inconclusive, Some(needed))
        } else {
            (State::NoLeak, None)
        };
        ProgramVerdict {
            state,
            findings,
            dismissed,
            signals,
            program_seconds,
            needs_seconds,
            heap_rate,
            leaks,
            growth,
        }
    }

    /// True when the program leaks: what `run --check` fails on.
    pub fn leaking(&self) -> bool {
        self.state == State::Leaking
    }
}

/// Kinds in the order they lead the summary: the ones that name their cause outright first;
/// then threads and descriptors, whose leaks bring Python and native growth with them (each
/// leaked thread keeps its frame's objects, a lock, a condition, and a stack outside Python's
/// allocator), so the lines they hold are consequences, not the cause; then the lines; then
/// what the native instrument or a census must explain.
fn rank(kind: FindingKind) -> u8 {
    match kind {
        FindingKind::GcCycles => 0,
        FindingKind::HeldFromC => 1,
        FindingKind::Threads => 2,
        FindingKind::Fds => 3,
        FindingKind::Python => 4,
        FindingKind::Native => 5,
        FindingKind::Types => 6,
    }
}

/// The tracked heap's rate over the program's time, bytes per second.
fn heap_trend(r: &LeakReport) -> Option<f64> {
    let (t, y): (Vec<f64>, Vec<f64>) = r
        .heap
        .series
        .iter()
        .map(|&(t, v)| (t as f64 / 1e9, v as f64))
        .unzip();
    if t.len() < 3 {
        return None;
    }
    let v = classify(&t, &y, &crate::allocs::site_verdict_options());
    Some(v.rate)
}

fn site_findings(
    r: &LeakReport,
    heap_rate: Option<f64>,
    findings: &mut Vec<Finding>,
    dismissed: &mut Vec<Dismissed>,
) {
    let heap_rate = heap_rate.unwrap_or(0.0);
    let mut kept = 0;
    for (i, site) in r.leaks.sites.iter().enumerate() {
        let Some(v) = site
            .verdict
            .as_ref()
            .filter(|v| v.kind == VerdictKind::Growing)
        else {
            continue;
        };
        // a line released as the program ended, but for a remainder: one finding, the
        // released one, which says what it held before its release
        if r.released.iter().any(|s| s.location == site.location) {
            continue;
        }
        let Some(share) = material(v, heap_rate, &site.location, Some(i), dismissed) else {
            continue;
        };
        if kept == MAX_SITE_FINDINGS {
            continue;
        }
        kept += 1;
        let holder = r
            .holders
            .iter()
            .find(|h| h.site == i)
            .map(|h| h.path.clone());
        let kind = match holder.as_ref().map(|h| h.root_kind) {
            Some(RootKind::HeldFromC) => FindingKind::HeldFromC,
            _ => FindingKind::Python,
        };
        let mut f = Finding::of_trend(kind, Unit::Bytes, v, site.bytes as f64);
        f.share = share;
        f.site = Some(i);
        f.location = Some(site.location.clone());
        f.stack = top_stack(r, site);
        f.holder = holder;
        f.freed_at_shutdown = site.freed_at_shutdown;
        findings.push(f);
    }
    // grew through the program's time, released only as it ended: no holder is left to find
    // then, only one `run` found while the program ran
    for site in &r.released {
        // a brief rise before a release is no evidence either way: it must not make the
        // verdict inconclusive as a brief surviving site does
        if site.verdict.window_end - site.verdict.window_start < MIN_WINDOW_SECONDS {
            continue;
        }
        let Some(share) = material(&site.verdict, heap_rate, &site.location, None, dismissed)
        else {
            continue;
        };
        if kept == MAX_SITE_FINDINGS {
            break;
        }
        kept += 1;
        let mut f = Finding::of_trend(
            FindingKind::Python,
            Unit::Bytes,
            &site.verdict,
            site.bytes_late as f64,
        );
        f.share = share;
        f.location = Some(site.location.clone());
        let skip = site.stack.len().saturating_sub(4);
        f.stack = site.stack[skip..].to_vec();
        f.released_at_end = site.bytes_late.saturating_sub(site.bytes_end);
        f.holder = site.holder.clone();
        findings.push(f);
    }
}

/// Whether a growing site's growth matters: `Some(share of the heap's growth)` when it does;
/// otherwise it is listed in `dismissed` with the reason.
fn material(
    v: &crate::trend::Verdict,
    heap_rate: f64,
    location: &Location,
    site: Option<usize>,
    dismissed: &mut Vec<Dismissed>,
) -> Option<Option<f64>> {
    let window = (v.window_end - v.window_start).max(0.0);
    let growth = v.rate * window;
    let share = (heap_rate > 0.0).then(|| (v.rate / heap_rate).min(1.0));
    let reason = if window < MIN_WINDOW_SECONDS {
        Some(Dismissal::TooBrief)
    } else if growth < SITE_MIN_GROWTH {
        Some(Dismissal::TooSmall)
    } else if v.rate < SITE_RATE_FLOOR && share.unwrap_or(0.0) < SITE_MIN_SHARE {
        Some(Dismissal::Immaterial)
    } else {
        None
    };
    match reason {
        Some(reason) => {
            dismissed.push(Dismissed {
                site,
                location: location.clone(),
                rate: v.rate,
                growth,
                reason,
            });
            None
        }
        None => Some(share),
    }
}

/// The site's largest stack, outermost first, at most a few frames.
fn top_stack(r: &LeakReport, site: &SiteRow) -> Vec<Location> {
    let Some(stack) = site.stacks.first().and_then(|&k| r.leaks.stacks.get(k)) else {
        return Vec::new();
    };
    let frames = r.leaks.frames(stack);
    let skip = frames.len().saturating_sub(4);
    frames.into_iter().skip(skip).cloned().collect()
}

/// RSS beyond the tracked heap, over the program's time: what C allocated.
fn native_finding(r: &LeakReport, heap_rate: Option<f64>) -> Option<Finding> {
    let heap = &r.heap.series;
    if r.rss.len() < 8 || heap.is_empty() {
        return None;
    }
    let mut t = Vec::with_capacity(r.rss.len());
    let mut y = Vec::with_capacity(r.rss.len());
    let mut h = 0;
    // the allocators keep what they once needed (pymalloc's arenas, malloc's heap): RSS follows
    // the tracked heap's high-water mark, not its level, so a structure replaced wholesale
    // leaves RSS up without any leak. What grows beyond that mark is what C allocated.
    let mut high_water = 0;
    // memsleuth's own bytes in the process (its recorder, the leak tables it keeps while the
    // program runs) are in its RSS too, and grow with the heap it tracks: none are the program's
    let (mut o, mut own) = (0, 0);
    for &(ts, rss) in r.rss.iter().filter(|p| p.0 <= r.at_ns) {
        // the heap series keeps the largest value per interval
        while h < heap.len() && heap[h].0 <= ts {
            high_water = high_water.max(heap[h].1);
            h += 1;
        }
        while o < r.own.len() && r.own[o].0 <= ts {
            own = r.own[o].1;
            o += 1;
        }
        t.push(ts as f64 / 1e9);
        y.push(rss as f64 - high_water as f64 - own as f64);
    }
    let v = classify(&t, &y, &process_options(NATIVE_MIN_GROWTH));
    let window = (v.window_end - v.window_start).max(0.0);
    let growth = v.rate * window;
    let material = v.kind == VerdictKind::Growing
        && (v.rate >= NATIVE_RATE_FLOOR || growth >= NATIVE_LARGE_GROWTH)
        && growth >= NATIVE_MIN_GROWTH
        && v.rate >= NATIVE_SHARE_OF_HEAP * heap_rate.unwrap_or(0.0).max(0.0);
    let alive = y.last().copied().unwrap_or(0.0).max(0.0);
    material.then(|| Finding::of_trend(FindingKind::Native, Unit::Bytes, &v, alive))
}

/// The gc off while unreachable cycles pile up, as [`crate::gcstats::unreachable`] judges them (a
/// trend over the censuses, or their difference when there are too few for one).
fn gc_finding(g: &GrowthReport) -> Option<Finding> {
    let u = g.gc.unreachable.as_ref().filter(|u| u.growing)?;
    if g.gc.disabled == 0 {
        return None;
    }
    let (start, end) = (u.from_ns as f64 / 1e9, u.to_ns as f64 / 1e9);
    let (low, high, p) = match u.trend.as_ref().filter(|v| v.kind == VerdictKind::Growing) {
        Some(v) => (v.rate_low, v.rate_high, v.p_value),
        None => (u.rate, u.rate, f64::NAN),
    };
    let rate = u.rate;
    Some(Finding {
        kind: FindingKind::GcCycles,
        unit: Unit::Objects,
        rate,
        rate_low: low,
        rate_high: high,
        p_value: p,
        growth: rate * (end - start).max(0.0),
        window_start: start,
        window_end: end,
        share: None,
        site: None,
        location: None,
        stack: Vec::new(),
        type_name: None,
        holder: None,
        alive: u.to as f64,
        freed_at_shutdown: 0,
        released_at_end: 0,
    })
}

/// Growing types, when no allocation site explains the growth (no events, or sampled away).
fn type_findings(g: &GrowthReport) -> Vec<Finding> {
    g.growing_types()
        .filter(|t| t.delta_count as f64 >= TYPE_MIN_GROWTH)
        .filter_map(|t| {
            let v = t.verdict.as_ref()?;
            let holder = t.holders.first().cloned();
            let kind = match holder.as_ref().map(|h| h.root_kind) {
                Some(RootKind::HeldFromC) => FindingKind::HeldFromC,
                _ => FindingKind::Types,
            };
            let mut f = Finding::of_trend(kind, Unit::Objects, v, t.to_count as f64);
            f.growth = t.delta_count as f64;
            f.location = t.sites.first().map(|s| s.location.clone());
            f.type_name = Some(t.name.clone());
            f.holder = holder;
            Some(f)
        })
        .take(MAX_SITE_FINDINGS)
        .collect()
}

/// A count (descriptors, threads) that keeps growing.
fn count_finding(
    series: &[(u64, f64)],
    kind: FindingKind,
    unit: Unit,
    min_growth: f64,
) -> Option<Finding> {
    if series.len() < 8 {
        return None;
    }
    let (t, y): (Vec<f64>, Vec<f64>) = series.iter().map(|&(t, v)| (t as f64 / 1e9, v)).unzip();
    let v = classify(&t, &y, &process_options(min_growth));
    let alive = y.last().copied().unwrap_or(0.0);
    (v.kind == VerdictKind::Growing).then(|| Finding::of_trend(kind, unit, &v, alive))
}

/// True when the largest surviving site could not be judged (allocated too briefly).
fn top_site_undecided(leaks: Option<&LeakReport>) -> bool {
    leaks
        .and_then(|r| r.leaks.sites.first())
        .and_then(|s| s.verdict.as_ref())
        .is_some_and(|v| v.kind == VerdictKind::Inconclusive && v.net_change >= SITE_MIN_GROWTH)
}
