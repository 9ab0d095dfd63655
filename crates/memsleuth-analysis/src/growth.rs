//! Object growth: which types of live Python objects keep growing, from the `Census` records of
//! the `objects` instrument, and where the instances of a growing type were allocated.
//!
//! Each type's count over the censuses is judged with the same robust trend as process memory
//! ([`classify`]): a type that keeps growing census after census is `growing`, with a rate in
//! objects per second; one that jumped once (start-up, a cache that filled) is not. With too few
//! censuses for a trend the report falls back to a plain difference between two censuses, as
//! objgraph's `show_growth` does, and says so ([`Basis::Diff`]).
//!
//! When the capture also holds allocation events (the `python` instrument), the sample addresses
//! a census keeps for each type are followed through the events up to that census: the stack of
//! the live allocation at each address is the instance's allocation site.

use std::cell::Cell;
use std::io::{Cursor, Read};
use std::path::Path;

use memsleuth_format::{AllocEvent, Capture, Census, CensusType, ExitStatus, FormatError, Record};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::allocs::{
    first_pass, open_path, reopen, CaptureInfo, Limits, Names, Open, Tables, Visitor,
};
use crate::profile::Location;
use crate::timeline::EndInfo;
use crate::trend::{classify, Verdict, VerdictKind, VerdictOptions};
use crate::AnalysisError;

/// Fewest censuses in the analysed range for a trend. Below it the report is a plain difference:
/// with 3 points even a perfectly steady rise has a Mann–Kendall p of 0.3, so a trend could only
/// ever say "inconclusive".
pub const MIN_TREND_CENSUSES: usize = 4;

/// Frames kept of the call chain that allocated an instance (the site included).
const CHAIN_FRAMES: usize = 4;

/// The row a census folds its smallest types into: not a type, and its membership changes from
/// census to census, so its "growth" means nothing.
const OTHER_ROW: &str = "(other)";

/// A census chosen by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CensusPick {
    /// By position in time order, 0-based.
    Index(usize),
    /// The census taken closest to this time, ns since the capture start (the earlier on a tie).
    At(u64),
}

/// How the growth report is made.
#[derive(Debug, Clone)]
pub struct GrowthOptions {
    /// First census of the analysed range; the first of the capture when `None`.
    pub from: Option<CensusPick>,
    /// Last census of the analysed range; the last of the capture when `None`. Its sample
    /// addresses are the ones mapped to allocation sites.
    pub to: Option<CensusPick>,
    /// Tuning of the per-type verdict, in objects; see [`census_verdict_options`].
    pub verdict: VerdictOptions,
}

impl Default for GrowthOptions {
    fn default() -> Self {
        GrowthOptions {
            from: None,
            to: None,
            verdict: census_verdict_options(),
        }
    }
}

/// Verdict tuning for a type's instance count over censuses, which are few (one every few
/// seconds at most) where process memory has hundreds of samples:
///
/// - no warm-up cut: Theil–Sen's rank interval already ignores a one-off jump (its lower bound
///   reaches zero once about a third of the pairwise slopes are flat), and a fifth of six
///   censuses is a census the test cannot spare;
/// - `alpha` 0.1: four censuses rising steadily give a two-sided Mann–Kendall p of 0.089, the
///   best four points can give. False alarms stay rare because growth also needs Sen's 95%
///   interval above zero, which with four points means every pairwise slope positive;
/// - growth counts from 10 objects and 1% of the type's median count over the range.
pub fn census_verdict_options() -> VerdictOptions {
    VerdictOptions {
        warmup_fraction: 0.0,
        alpha: 0.1,
        min_growth_bytes: 10.0,
        min_growth_fraction: 0.01,
        min_points: MIN_TREND_CENSUSES,
    }
}

/// What a type's growth is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Two censuses compared, as objgraph's `show_growth` does: fewer than
    /// [`MIN_TREND_CENSUSES`] in the range, so no trend could be told from noise.
    Diff,
    /// A trend over every census of the range.
    Trend,
}

/// One census, as the report needs it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CensusPoint {
    /// ns since the capture start.
    pub t_ns: u64,
    /// How long the walk held the interpreter, ns.
    pub duration_ns: u64,
    pub objects: u64,
    pub bytes: u64,
    pub gc_enabled: bool,
    /// Objects (and bytes) that nothing reachable holds: cycles waiting for the collector.
    pub unreachable: u64,
    pub unreachable_bytes: u64,
    /// Objects in `gc.garbage`.
    pub garbage: u64,
}

/// Where sampled instances of a type were allocated.
#[derive(Debug, Clone, Serialize)]
pub struct TypeSite {
    /// The innermost frame of the allocating stack.
    pub location: Location,
    /// The last few frames of the most common stack at this site, outermost first, the site
    /// last; runner frames of `memsleuth run` are left out.
    pub chain: Vec<Location>,
    /// Sampled instances allocated here.
    pub samples: u32,
}

/// One type over the censuses.
#[derive(Debug, Clone, Serialize)]
pub struct TypeGrowth {
    /// `module.QualName`, bare for builtins.
    pub name: String,
    /// Instances and shallow bytes at each census of [`GrowthReport::censuses`]; 0 where the type
    /// is not among that census' rows (none alive, or folded into `(other)`).
    pub counts: Vec<u64>,
    pub bytes: Vec<u64>,
    /// At the `from` and `to` censuses, and the change between them.
    pub from_count: u64,
    pub to_count: u64,
    pub delta_count: i64,
    pub from_bytes: u64,
    pub to_bytes: u64,
    pub delta_bytes: i64,
    /// Bytes reachable only through instances, at the `to` census, when computed.
    pub retained: Option<u64>,
    /// Trend basis: the verdict on the count over the range (rate in objects per second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Trend basis: Theil–Sen slope of the shallow bytes over the range, bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_rate: Option<f64>,
    /// Growing: a `growing` verdict (trend basis), or more instances at `to` than at `from`
    /// (diff basis).
    pub growing: bool,
    /// Trend basis: grew materially between `from` and `to`, but not steadily (a jump at
    /// start-up, a cache that filled): warm-up, not a leak.
    pub warmup_only: bool,
    /// Sample addresses the `to` census kept for this type (mapped for growing types only).
    pub samples: u32,
    /// Of those, addresses with no allocation alive there in the events (allocated before
    /// tracking began, or by an allocator the events do not see).
    pub unmatched: u32,
    /// Allocation sites of the sampled instances, most samples first.
    pub sites: Vec<TypeSite>,
    /// What keeps sample instances alive, when tracking stopped (holder records the `objects`
    /// instrument wrote for the types that grew).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<crate::heap::RetentionPath>,
}

/// The garbage collector over the analysed range.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcSummary {
    /// Censuses taken while automatic collection was disabled (`gc.disable()`).
    pub disabled: usize,
    /// Whether it was disabled at the `to` census.
    pub disabled_at_end: bool,
    /// Unreachable objects over the range, judged as `report gc` judges them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<crate::gcstats::Unreachable>,
    /// Objects in `gc.garbage` at `from` and `to`.
    pub garbage_from: u64,
    pub garbage_to: u64,
    /// Collections recorded between `from` and `to`, what they freed and what they could not.
    pub collections: u64,
    pub collected: u64,
    pub uncollectable: u64,
}

/// Growth of live objects by type between censuses.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthReport {
    /// What was captured. Allocation counts are filled only when events were replayed.
    pub capture: CaptureInfo,
    /// Every census of the capture, in time order.
    pub censuses: Vec<CensusPoint>,
    /// The analysed range: indexes into `censuses`, `from <= to`.
    pub from: usize,
    pub to: usize,
    pub basis: Basis,
    /// Types seen in the range, growing ones first (fastest first), then by change in count.
    pub types: Vec<TypeGrowth>,
    /// Types marked `growing`.
    pub growing: usize,
    pub gc: GcSummary,
    /// True when the capture holds allocation events: sites could be looked for.
    pub has_events: bool,
    /// Census whose sample addresses were mapped to allocation sites (`to`), when events were
    /// replayed.
    pub sites_at: Option<usize>,
}

impl GrowthReport {
    /// Analyses a capture file.
    pub fn from_path(path: &Path, opts: &GrowthOptions) -> Result<GrowthReport, AnalysisError> {
        Self::from_source(&open_path(path), opts)
    }

    /// Analyses a capture held in memory.
    pub fn from_bytes(bytes: &[u8], opts: &GrowthOptions) -> Result<GrowthReport, AnalysisError> {
        Self::from_source(&|| Ok(Cursor::new(bytes)), opts)
    }

    fn from_source<R: Read>(
        open: Open<'_, R>,
        opts: &GrowthOptions,
    ) -> Result<GrowthReport, AnalysisError> {
        let read = read_censuses(reopen(open)?)?;
        Self::from_read(read, opts, Some(open))
    }

    /// The report from censuses already read (by the leak report's first pass, for the
    /// verdict); `open`, when given, lets the growing types be mapped to allocation sites with
    /// a replay of the events.
    pub(crate) fn from_read<R: Read>(
        read: CensusRead,
        opts: &GrowthOptions,
        open: Option<Open<'_, R>>,
    ) -> Result<GrowthReport, AnalysisError> {
        if read.censuses.is_empty() {
            return Err(AnalysisError::NoCensus);
        }
        let n = read.censuses.len();
        let from = pick(&read.censuses, opts.from, 0)?;
        let to = pick(&read.censuses, opts.to, n - 1)?;
        if from > to {
            return Err(AnalysisError::CensusChoice(format!(
                "the first census chosen ({}) comes after the second ({})",
                census_name(&read.censuses, from),
                census_name(&read.censuses, to)
            )));
        }
        let basis = if to - from + 1 >= MIN_TREND_CENSUSES {
            Basis::Trend
        } else {
            Basis::Diff
        };
        let mut types = type_rows(&read.censuses, from, to, basis, &opts.verdict);
        let gc = gc_summary(&read, from, to);
        let mut capture = read.info;
        let mut sites_at = None;
        if let Some(open) = open.filter(|_| read.has_events && types.iter().any(|t| t.growing)) {
            let census = &read.censuses[to];
            let replay = map_sites(open, census, &mut types)?;
            capture.allocs = replay.allocs;
            capture.frees = replay.frees;
            capture.threads = replay.threads;
            // slot 0 is the empty stack, not a recorded one
            capture.stacks = replay.stacks.saturating_sub(1) as u64;
            capture.frames = replay.frames as u64;
            capture.last_event_ns = replay.last_event_t;
            capture.unresolved_frames = replay.unresolved;
            sites_at = Some(to);
        }
        // grouped once by the type held: a filter over every holder per growing type would be
        // quadratic, and the objects instrument writes holders for every type that grew
        let mut held: FxHashMap<&str, Vec<&memsleuth_format::Holder>> = FxHashMap::default();
        for h in &read.holders {
            if let Some(last) = h.steps.last() {
                let of_type = held.entry(last.type_name.as_str()).or_default();
                if of_type.len() < HOLDERS_PER_TYPE {
                    of_type.push(h);
                }
            }
        }
        for t in types.iter_mut().filter(|t| t.growing) {
            if let Some(of_type) = held.get(t.name.as_str()) {
                t.holders = of_type
                    .iter()
                    .map(|h| crate::heap::RetentionPath::from_holder(h))
                    .collect();
            }
        }
        let growing = types.iter().filter(|t| t.growing).count();
        Ok(GrowthReport {
            capture,
            censuses: read.censuses.iter().map(point).collect(),
            from,
            to,
            basis,
            types,
            growing,
            gc,
            has_events: read.has_events,
            sites_at,
        })
    }

    /// Types marked growing, fastest first.
    pub fn growing_types(&self) -> impl Iterator<Item = &TypeGrowth> {
        self.types.iter().filter(|t| t.growing)
    }

    /// Seconds between the `from` and `to` censuses.
    pub fn span(&self) -> f64 {
        let t = |i: usize| self.censuses.get(i).map_or(0, |c| c.t_ns);
        t(self.to).saturating_sub(t(self.from)) as f64 / 1e9
    }
}

/// Retention paths kept per growing type.
const HOLDERS_PER_TYPE: usize = 2;

/// `#3 at 4.0 s`, 1-based as people count and as the command line takes it.
fn census_name(censuses: &[Census], i: usize) -> String {
    let t = censuses.get(i).map_or(0, |c| c.t_ns) as f64 / 1e9;
    format!("#{} at {t:.1} s", i + 1)
}

fn pick(
    censuses: &[Census],
    choice: Option<CensusPick>,
    default: usize,
) -> Result<usize, AnalysisError> {
    match choice {
        None => Ok(default),
        Some(CensusPick::Index(i)) if i < censuses.len() => Ok(i),
        Some(CensusPick::Index(i)) => Err(AnalysisError::CensusChoice(format!(
            "there is no census #{}: the capture has {} (#1 to #{})",
            i + 1,
            censuses.len(),
            censuses.len()
        ))),
        Some(CensusPick::At(t)) => Ok(censuses
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.t_ns.abs_diff(t))
            .map_or(default, |(i, _)| i)),
    }
}

fn point(c: &Census) -> CensusPoint {
    CensusPoint {
        t_ns: c.t_ns,
        duration_ns: c.duration_ns,
        objects: c.objects,
        bytes: c.bytes,
        gc_enabled: c.gc_enabled,
        unreachable: c.unreachable,
        unreachable_bytes: c.unreachable_bytes,
        garbage: c.garbage,
    }
}

/// One collection of the cyclic collector, as far as the report needs it.
#[derive(Debug, Clone, Copy, Default)]
struct Collection {
    t_ns: u64,
    collected: u64,
    uncollectable: u64,
}

/// What the first pass keeps: censuses and collections, and how the capture ended. Opaque
/// outside this crate: a leak report carries one for the verdict.
#[derive(Debug, Clone, Default)]
pub struct CensusRead {
    censuses: Vec<Census>,
    /// Holders of instances (not of allocation sites: stack 0).
    holders: Vec<memsleuth_format::Holder>,
    collections: Vec<Collection>,
    has_events: bool,
    info: CaptureInfo,
}

impl CensusRead {
    /// What the leak report's first pass read of the censuses (its tables keep them).
    pub(crate) fn from_tables(tables: &Tables, info: &CaptureInfo) -> CensusRead {
        let mut censuses = tables.censuses.clone();
        censuses.sort_by_key(|c| c.t_ns);
        CensusRead {
            censuses,
            holders: tables
                .holders
                .iter()
                .filter(|h| h.stack == 0)
                .cloned()
                .collect(),
            collections: tables
                .collections
                .iter()
                .map(|g| Collection {
                    t_ns: g.t_ns,
                    collected: g.collected,
                    uncollectable: g.uncollectable,
                })
                .collect(),
            has_events: tables.event_records > 0,
            info: info.clone(),
        }
    }
}

/// Reads the censuses (small, kept whole) and collections; events are decoded, checked and
/// dropped, only noted as present.
fn read_censuses<R: Read>(input: R) -> Result<CensusRead, AnalysisError> {
    let last_t = Cell::new(0u64);
    let events = Cell::new(false);
    let seen = |t: u64| last_t.set(last_t.get().max(t));
    let cap = Capture::from_reader_keeping(input, |r| match r {
        Record::Census(c) => {
            seen(c.t_ns);
            true
        }
        Record::Gc(g) => {
            seen(g.t_ns);
            true
        }
        Record::Events(b) => {
            events.set(true);
            seen(b.events.last().map_or(0, |e| e.t_ns));
            false
        }
        Record::Sample(s) => {
            seen(s.t_ns);
            false
        }
        Record::Mark(m) => {
            seen(m.t_ns);
            false
        }
        Record::Pymalloc(p) => {
            seen(p.t_ns);
            false
        }
        Record::ProcessExit(x) => {
            seen(x.t_ns);
            true
        }
        Record::Holder(h) => h.stack == 0,
        _ => false,
    })?;
    let mut censuses = Vec::new();
    let mut holders = Vec::new();
    let mut collections = Vec::new();
    // the root's exit, for when the trailer does not have it
    let mut root_exit = ExitStatus::Unknown;
    for r in cap.records {
        match r {
            Record::ProcessExit(x)
                if x.pid == cap.header.pid && x.status != ExitStatus::Unknown =>
            {
                root_exit = x.status;
            }
            Record::Census(c) => censuses.push(c),
            Record::Holder(h) => holders.push(h),
            Record::Gc(g) => collections.push(Collection {
                t_ns: g.t_ns,
                collected: g.collected,
                uncollectable: g.uncollectable,
            }),
            _ => {}
        }
    }
    // stable: censuses at the same time keep the order they were written in
    censuses.sort_by_key(|c| c.t_ns);
    let trailer = cap.trailer;
    let duration_ns = match trailer {
        Some(t) => t.end_ns.max(last_t.get()),
        None => last_t.get(),
    };
    let mut end = EndInfo::new(trailer, cap.damage.as_ref(), root_exit, duration_ns);
    if trailer.is_none() {
        // the chunks read are the flushes that reached the file
        end.flushes = cap.chunks;
    }
    let h = cap.header;
    let info = CaptureInfo {
        pid: h.pid,
        argv: h.argv,
        python_version: h.python_version,
        tool_version: h.tool_version,
        start_unix_ns: h.start_unix_ns,
        instruments: h.instruments,
        sample_bytes: h.sample_bytes,
        end,
        duration_ns,
        damage_offset: cap.damage.as_ref().and_then(FormatError::offset),
        ..CaptureInfo::default()
    };
    Ok(CensusRead {
        censuses,
        holders,
        collections,
        has_events: events.get(),
        info,
    })
}

/// Growth is material when it exceeds both the absolute and the relative threshold of `opts`
/// (in objects), as [`classify`] counts it.
fn material(growth: f64, level: f64, opts: &VerdictOptions) -> bool {
    growth > opts.min_growth_bytes && growth > opts.min_growth_fraction * level.max(0.0)
}

fn median(values: &[u64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0,
    }
}

/// A census' rows by type name; the first row wins when a type is listed twice.
fn rows_by_name(census: &Census) -> FxHashMap<&str, &CensusType> {
    let mut rows: FxHashMap<&str, &CensusType> = FxHashMap::default();
    rows.reserve(census.types.len());
    for row in &census.types {
        rows.entry(row.name.as_str()).or_insert(row);
    }
    rows
}

/// Every type seen in the range, with its series over all censuses and its verdict.
fn type_rows(
    censuses: &[Census],
    from: usize,
    to: usize,
    basis: Basis,
    opts: &VerdictOptions,
) -> Vec<TypeGrowth> {
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut names: Vec<&str> = Vec::new();
    for c in &censuses[from..=to] {
        for row in &c.types {
            if row.name != OTHER_ROW && !index.contains_key(row.name.as_str()) {
                index.insert(&row.name, names.len());
                names.push(&row.name);
            }
        }
    }
    let n = censuses.len();
    let mut counts = vec![vec![0u64; n]; names.len()];
    let mut bytes = vec![vec![0u64; n]; names.len()];
    for (i, c) in censuses.iter().enumerate() {
        for row in &c.types {
            if let Some(&k) = index.get(row.name.as_str()) {
                // a type listed twice in one census (should not happen) counts once per row
                counts[k][i] += row.count;
                bytes[k][i] += row.bytes;
            }
        }
    }
    let t: Vec<f64> = censuses[from..=to]
        .iter()
        .map(|c| c.t_ns as f64 / 1e9)
        .collect();
    // the `to` census' own row of each type (the first, if listed twice), looked up by name
    // once: a search of its rows per type would be quadratic in the number of types
    let last = rows_by_name(&censuses[to]);
    let mut rows: Vec<TypeGrowth> = names
        .iter()
        .zip(counts.into_iter().zip(bytes))
        .map(|(&name, (counts, bytes))| {
            let delta = |v: &[u64]| v[to] as i64 - v[from] as i64;
            let range = &counts[from..=to];
            let (verdict, bytes_rate) = match basis {
                Basis::Trend => {
                    let y: Vec<f64> = range.iter().map(|&c| c as f64).collect();
                    let v = classify(&t, &y, opts);
                    let yb: Vec<f64> = bytes[from..=to].iter().map(|&b| b as f64).collect();
                    let rate = classify(&t, &yb, opts).rate;
                    (Some(v), Some(rate))
                }
                Basis::Diff => (None, None),
            };
            let delta_count = delta(&counts);
            let growing = match &verdict {
                Some(v) => v.kind == VerdictKind::Growing,
                None => delta_count > 0,
            };
            let warmup_only =
                verdict.is_some() && !growing && material(delta_count as f64, median(range), opts);
            let row = last.get(name).copied();
            TypeGrowth {
                name: name.to_string(),
                from_count: counts[from],
                to_count: counts[to],
                delta_count,
                from_bytes: bytes[from],
                to_bytes: bytes[to],
                delta_bytes: delta(&bytes),
                retained: row.and_then(|r| r.retained),
                verdict,
                bytes_rate,
                growing,
                warmup_only,
                samples: row.map_or(0, |r| u32::try_from(r.samples.len()).unwrap_or(u32::MAX)),
                unmatched: 0,
                sites: Vec::new(),
                holders: Vec::new(),
                counts,
                bytes,
            }
        })
        .collect();
    let rate = |t: &TypeGrowth| t.verdict.as_ref().map_or(0.0, |v| v.rate);
    rows.sort_by(|a, b| {
        b.growing
            .cmp(&a.growing)
            .then_with(|| rate(b).total_cmp(&rate(a)))
            .then_with(|| b.delta_count.cmp(&a.delta_count))
            .then_with(|| b.to_count.cmp(&a.to_count))
            .then_with(|| a.name.cmp(&b.name))
    });
    rows
}

fn gc_summary(read: &CensusRead, from: usize, to: usize) -> GcSummary {
    let range = &read.censuses[from..=to];
    let (a, b) = (&read.censuses[from], &read.censuses[to]);
    let states: Vec<crate::gcstats::GcState> =
        range.iter().map(crate::gcstats::GcState::from).collect();
    let unreachable = crate::gcstats::unreachable(
        &states,
        &crate::gcstats::GcOptions::default().unreachable_trend,
    );
    let in_range = read
        .collections
        .iter()
        .filter(|g| g.t_ns >= a.t_ns && g.t_ns <= b.t_ns);
    let (mut collections, mut collected, mut uncollectable) = (0, 0, 0);
    for g in in_range {
        collections += 1;
        collected += g.collected;
        uncollectable += g.uncollectable;
    }
    GcSummary {
        disabled: range.iter().filter(|c| !c.gc_enabled).count(),
        disabled_at_end: !b.gc_enabled,
        unreachable,
        garbage_from: a.garbage,
        garbage_to: b.garbage,
        collections,
        collected,
        uncollectable,
    }
}

/// Follows the watched addresses through the allocation events: each holds the stack slot of the
/// allocation alive there, if any. Only the few sampled addresses are tracked, so the replay
/// costs one hash lookup per event and no memory per live block.
struct SampleTracker {
    live: FxHashMap<u64, Option<u32>>,
}

impl Visitor for SampleTracker {
    #[inline]
    fn alloc(&mut self, ev: &AllocEvent, slot: u32) {
        if let Some(at) = self.live.get_mut(&ev.addr) {
            *at = Some(slot);
        }
    }

    #[inline]
    fn free(&mut self, ev: &AllocEvent) {
        if let Some(at) = self.live.get_mut(&ev.addr) {
            *at = None;
        }
    }
}

/// What the event replay adds to the capture description.
struct ReplayCounts {
    allocs: u64,
    frees: u64,
    threads: u32,
    stacks: usize,
    frames: usize,
    last_event_t: u64,
    unresolved: u64,
}

/// Replays the events up to `census` and attributes the sample addresses of its growing types
/// to allocation sites.
fn map_sites<R: Read>(
    open: Open<'_, R>,
    census: &Census,
    types: &mut [TypeGrowth],
) -> Result<ReplayCounts, AnalysisError> {
    let rows = rows_by_name(census);
    let mut live: FxHashMap<u64, Option<u32>> = FxHashMap::default();
    for t in types.iter().filter(|t| t.growing) {
        if let Some(row) = rows.get(t.name.as_str()) {
            live.extend(row.samples.iter().map(|&a| (a, None)));
        }
    }
    let limits = Limits {
        at_ns: Some(census.t_ns),
        ..Limits::default()
    };
    let (tables, tracker) = first_pass(reopen(open)?, limits, |_| SampleTracker { live })?;
    let mut names = Names::new(&tables);
    let mut stacks: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for t in types.iter_mut().filter(|t| t.growing) {
        let Some(row) = rows.get(t.name.as_str()) else {
            continue;
        };
        // per site: samples, and per stack how many of them
        let mut by_site: Vec<(u32, u32, FxHashMap<Vec<u32>, u32>)> = Vec::new();
        for addr in &row.samples {
            let Some(&Some(slot)) = tracker.live.get(addr) else {
                t.unmatched += 1;
                continue;
            };
            let frames = stacks
                .entry(slot)
                .or_insert_with(|| names.stack(slot))
                .clone();
            let site = names.site_of(&frames);
            let k = match by_site.iter().position(|s| s.0 == site) {
                Some(k) => k,
                None => {
                    by_site.push((site, 0, FxHashMap::default()));
                    by_site.len() - 1
                }
            };
            by_site[k].1 += 1;
            *by_site[k].2.entry(frames).or_default() += 1;
        }
        let mut sites: Vec<TypeSite> = by_site
            .into_iter()
            .map(|(site, samples, chains)| {
                let chain = chains
                    .into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                    .map(|(frames, _)| frames)
                    .unwrap_or_default();
                let tail = &chain[chain.len().saturating_sub(CHAIN_FRAMES)..];
                TypeSite {
                    location: names.locations[site as usize].clone(),
                    chain: tail
                        .iter()
                        .map(|&i| names.locations[i as usize].clone())
                        .collect(),
                    samples,
                }
            })
            .collect();
        sites.sort_by(|a, b| {
            b.samples
                .cmp(&a.samples)
                .then_with(|| a.location.cmp(&b.location))
        });
        t.sites = sites;
    }
    Ok(ReplayCounts {
        allocs: tables.allocs,
        frees: tables.frees,
        threads: tables.threads,
        stacks: tables.stacks.len(),
        frames: tables.frames.len(),
        last_event_t: tables.last_event_t,
        unresolved: names.unresolved,
    })
}

#[cfg(test)]
mod tests {
    use memsleuth_format::{
        AllocEvent, CaptureWriter, CensusType, Domain, EndReason, EventKind, Events, Frame,
        GcCollection, Header, StackNode, ThreadInfo, Trailer,
    };

    use super::*;

    fn s(t: f64) -> u64 {
        (t * 1e9).round() as u64
    }

    /// A capture written with the real writer: censuses, collections and allocation events.
    struct Cap {
        w: CaptureWriter<Vec<u8>>,
        frames: Vec<(String, String, u32)>,
        nodes: Vec<(u32, u32)>,
        thread_written: bool,
    }

    impl Cap {
        fn new() -> Self {
            let header = Header {
                tool_version: "test".into(),
                pid: 7,
                argv: vec!["python".into(), "app.py".into()],
                start_unix_ns: 1_700_000_000_000_000_000,
                python_version: "3.12.0".into(),
                instruments: vec!["objects".into(), "python".into()],
                ..Header::default()
            };
            Cap {
                w: CaptureWriter::new(Vec::new(), &header).expect("header"),
                frames: Vec::new(),
                nodes: Vec::new(),
                thread_written: false,
            }
        }

        /// `"main@app.py:1 > leaf@app.py:10"`, outermost first; returns the stack id.
        fn stack(&mut self, spec: &str) -> u32 {
            let mut parent = 0;
            for part in spec.split(" > ") {
                let (function, place) = part.trim().split_once('@').expect("function@file:line");
                let (file, line) = place.rsplit_once(':').expect("file:line");
                let key = (
                    function.to_string(),
                    file.to_string(),
                    line.parse().expect("line"),
                );
                let frame = match self.frames.iter().position(|f| *f == key) {
                    Some(i) => i as u32 + 1,
                    None => {
                        self.frames.push(key.clone());
                        let id = self.frames.len() as u32;
                        self.w.push(&Record::Frame(Frame {
                            id,
                            function: key.0,
                            file: key.1,
                            line: key.2,
                        }));
                        id
                    }
                };
                parent = match self.nodes.iter().position(|n| *n == (parent, frame)) {
                    Some(i) => i as u32 + 1,
                    None => {
                        self.nodes.push((parent, frame));
                        let id = self.nodes.len() as u32;
                        self.w.push(&Record::Stack(StackNode { id, parent, frame }));
                        id
                    }
                };
            }
            parent
        }

        /// One census: `(type, count, sample addresses)`; 56 bytes per object.
        fn census(&mut self, t: f64, rows: &[(&str, u64, &[u64])]) -> &mut Self {
            self.census_gc(t, rows, true, 0)
        }

        fn census_gc(
            &mut self,
            t: f64,
            rows: &[(&str, u64, &[u64])],
            gc_enabled: bool,
            unreachable: u64,
        ) -> &mut Self {
            let types: Vec<CensusType> = rows
                .iter()
                .map(|&(name, count, samples)| CensusType {
                    name: name.into(),
                    count,
                    bytes: 56 * count,
                    retained: None,
                    samples: samples.to_vec(),
                })
                .collect();
            self.w.push(&Record::Census(Census {
                t_ns: s(t),
                duration_ns: 1_000_000,
                objects: types.iter().map(|r| r.count).sum(),
                bytes: types.iter().map(|r| r.bytes).sum(),
                gc_enabled,
                gc_counts: vec![10, 1, 0],
                unreachable,
                unreachable_bytes: 64 * unreachable,
                garbage: 0,
                types,
                garbage_types: Vec::new(),
            }));
            self
        }

        /// Allocation events of thread 1, in order: `(t, addr, Some(stack))` allocates,
        /// `(t, addr, None)` frees.
        fn events(&mut self, events: &[(f64, u64, Option<u32>)]) -> &mut Self {
            if !self.thread_written {
                self.w.push(&Record::Thread(ThreadInfo {
                    id: 1,
                    native_id: 100,
                    name: "MainThread".into(),
                }));
                self.thread_written = true;
            }
            let events = events
                .iter()
                .map(|&(t, addr, stack)| AllocEvent {
                    kind: if stack.is_some() {
                        EventKind::Alloc
                    } else {
                        EventKind::Free
                    },
                    domain: Domain::Obj,
                    t_ns: s(t),
                    addr,
                    size: if stack.is_some() { 56 } else { 0 },
                    stack: stack.unwrap_or(0),
                })
                .collect();
            self.w.push(&Record::Events(Events { thread: 1, events }));
            self.w.flush().expect("flush");
            self
        }

        fn record(&mut self, r: Record) -> &mut Self {
            self.w.push(&r);
            self
        }

        fn finish(self, end: f64) -> Vec<u8> {
            self.w
                .finish(Trailer {
                    end_ns: s(end),
                    reason: EndReason::TargetExited,
                    target_status: ExitStatus::Code(0),
                    ..Trailer::default()
                })
                .expect("finish")
        }
    }

    fn report(bytes: &[u8]) -> GrowthReport {
        GrowthReport::from_bytes(bytes, &GrowthOptions::default()).expect("growth report")
    }

    fn row<'a>(r: &'a GrowthReport, name: &str) -> &'a TypeGrowth {
        r.types
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:#?}", r.types))
    }

    fn kind(t: &TypeGrowth) -> VerdictKind {
        t.verdict.as_ref().expect("a verdict").kind
    }

    #[test]
    fn steady_growth_is_growing_at_its_rate() {
        let mut c = Cap::new();
        for i in 0..10u64 {
            let t = 2.0 * i as f64;
            // a leak of 120 sessions a second, a flat dict population with jitter, and lists
            // that jump once at start-up then stay put
            let jitter = [0, 3, 1, 4, 1, 5, 2, 6, 0, 3][i as usize];
            let lists = if i == 0 { 100 } else { 3_000 };
            c.census(
                t,
                &[
                    ("myapp.Session", 1_000 + 240 * i, &[]),
                    ("dict", 5_000 + jitter, &[]),
                    ("list", lists, &[]),
                    ("(other)", 10 * i * i, &[]),
                ],
            );
        }
        let r = report(&c.finish(19.0));
        assert_eq!(r.basis, Basis::Trend);
        assert_eq!((r.from, r.to), (0, 9));
        assert_eq!(r.censuses.len(), 10);
        assert_eq!(r.growing, 1, "{:#?}", r.types);
        let session = &r.types[0];
        assert_eq!(session.name, "myapp.Session");
        assert!(session.growing);
        let v = session.verdict.as_ref().unwrap();
        assert_eq!(v.kind, VerdictKind::Growing);
        assert!((v.rate - 120.0).abs() < 1e-6, "{v:?}");
        assert_eq!(v.reason, crate::VerdictReason::Growing);
        assert!((session.bytes_rate.unwrap() - 56.0 * 120.0).abs() < 1e-6);
        assert_eq!((session.from_count, session.to_count), (1_000, 3_160));
        assert_eq!(session.delta_count, 2_160);
        assert_eq!(session.delta_bytes, 56 * 2_160);
        assert_eq!(session.counts.len(), 10);
        let list = row(&r, "list");
        assert!(!list.growing);
        assert!(list.warmup_only, "{list:#?}");
        assert!(matches!(
            kind(list),
            VerdictKind::Plateau | VerdictKind::Stable
        ));
        let dict = row(&r, "dict");
        assert!(!dict.growing && !dict.warmup_only, "{dict:#?}");
        // the fold-up row is not a type
        assert!(r.types.iter().all(|t| t.name != "(other)"));
        assert!(!r.has_events);
        assert_eq!(r.sites_at, None);
        assert!(!r.capture.end.cut_short);
        assert_eq!(r.capture.pid, 7);
        assert!((r.span() - 18.0).abs() < 1e-9);
    }

    #[test]
    fn four_censuses_rising_steadily_are_growing() {
        let mut c = Cap::new();
        for (i, n) in [100u64, 200, 300, 400].into_iter().enumerate() {
            c.census(2.0 * i as f64, &[("app.Node", n, &[])]);
        }
        let r = report(&c.finish(7.0));
        assert_eq!(r.basis, Basis::Trend);
        let node = row(&r, "app.Node");
        assert_eq!(kind(node), VerdictKind::Growing, "{node:#?}");
        assert!((node.verdict.as_ref().unwrap().rate - 50.0).abs() < 1e-9);
        // one step back anywhere and four points are no longer evidence
        let mut c = Cap::new();
        for (i, n) in [100u64, 300, 200, 400].into_iter().enumerate() {
            c.census(2.0 * i as f64, &[("app.Node", n, &[])]);
        }
        let r = report(&c.finish(7.0));
        assert!(!row(&r, "app.Node").growing);
    }

    #[test]
    fn a_warm_up_jump_then_flat_is_not_growing() {
        let shapes: [&[u64]; 7] = [
            &[0, 5_000, 5_000, 5_000, 5_000, 5_000],
            // 3.13's tuples while a service imports its formats' modules on first use: the
            // later half too short for a test of its own, but flat
            &[3_017, 6_569, 8_970, 8_971, 8_970, 8_972],
            &[100, 100, 100, 5_000, 5_000, 5_000],
            &[0, 2_000, 4_000, 5_000, 5_000, 5_000],
            &[
                0, 2_000, 4_000, 5_000, 5_000, 5_000, 5_000, 5_000, 5_000, 5_000,
            ],
            &[
                100, 100, 100, 100, 100, 100, 9_000, 9_000, 9_000, 9_000, 9_000, 9_000,
            ],
            &[0, 4_000, 4_010, 3_990, 4_005, 4_000, 3_995, 4_002],
        ];
        for shape in shapes {
            let mut c = Cap::new();
            for (i, &n) in shape.iter().enumerate() {
                c.census(i as f64, &[("app.Cache", n, &[])]);
            }
            let r = report(&c.finish(shape.len() as f64));
            let cache = row(&r, "app.Cache");
            assert!(!cache.growing, "{shape:?}: {cache:#?}");
            assert!(
                matches!(kind(cache), VerdictKind::Plateau | VerdictKind::Stable),
                "{shape:?}: {cache:#?}"
            );
            assert!(cache.warmup_only, "{shape:?}: {cache:#?}");
            assert_eq!(r.growing, 0);
        }
    }

    #[test]
    fn two_censuses_fall_back_to_a_diff() {
        let mut c = Cap::new();
        c.census(
            1.0,
            &[("app.Job", 10, &[]), ("tuple", 900, &[]), ("set", 5, &[])],
        );
        c.census(
            3.0,
            &[("app.Job", 60, &[]), ("tuple", 850, &[]), ("set", 5, &[])],
        );
        let r = report(&c.finish(4.0));
        assert_eq!(r.basis, Basis::Diff);
        assert_eq!(r.growing, 1);
        let job = &r.types[0];
        assert_eq!(job.name, "app.Job");
        assert!(job.growing && job.verdict.is_none() && job.bytes_rate.is_none());
        assert_eq!(
            (job.from_count, job.to_count, job.delta_count),
            (10, 60, 50)
        );
        let tuple = row(&r, "tuple");
        assert!(!tuple.growing && !tuple.warmup_only);
        assert_eq!(tuple.delta_count, -50);
        assert!(!row(&r, "set").growing);
        // three censuses cannot make a trend either
        let mut c = Cap::new();
        for (i, n) in [10u64, 20, 30].into_iter().enumerate() {
            c.census(i as f64, &[("app.Job", n, &[])]);
        }
        assert_eq!(report(&c.finish(3.0)).basis, Basis::Diff);
    }

    #[test]
    fn from_and_to_choose_the_censuses() {
        let mut c = Cap::new();
        // written out of order: the report puts them in time order
        for &(t, n) in &[
            (0.0, 10u64),
            (2.0, 30),
            (1.0, 20),
            (3.0, 40),
            (4.0, 50),
            (5.0, 60),
        ] {
            c.census(t, &[("app.Item", n, &[])]);
        }
        let bytes = c.finish(6.0);
        let with = |from, to| {
            GrowthReport::from_bytes(
                &bytes,
                &GrowthOptions {
                    from,
                    to,
                    ..GrowthOptions::default()
                },
            )
        };
        let r = with(Some(CensusPick::Index(1)), Some(CensusPick::At(s(3.2)))).unwrap();
        assert_eq!((r.from, r.to), (1, 3));
        assert_eq!(r.basis, Basis::Diff);
        let item = row(&r, "app.Item");
        assert_eq!((item.from_count, item.to_count), (20, 40));
        assert_eq!(item.counts, [10, 20, 30, 40, 50, 60]);
        let r = with(Some(CensusPick::At(s(1.5))), None).unwrap();
        assert_eq!((r.from, r.to), (1, 5), "a tie goes to the earlier census");
        assert_eq!(r.basis, Basis::Trend);
        let e = with(Some(CensusPick::Index(6)), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no census #7: the capture has 6 (#1 to #6)"
        );
        let e = with(Some(CensusPick::Index(4)), Some(CensusPick::Index(2))).unwrap_err();
        assert!(e.to_string().contains("(#5 at 4.0 s) comes after"), "{e}");
        let r = with(Some(CensusPick::Index(2)), Some(CensusPick::Index(2))).unwrap();
        assert_eq!(r.growing, 0);
    }

    #[test]
    fn a_capture_without_census_says_so() {
        let mut c = Cap::new();
        let st = c.stack("<module>@app.py:1");
        c.events(&[(0.1, 0x10, Some(st))]);
        let e = GrowthReport::from_bytes(&c.finish(1.0), &GrowthOptions::default()).unwrap_err();
        assert!(matches!(e, AnalysisError::NoCensus));
        let text = e.to_string();
        assert!(text.contains("no object census"), "{text}");
        assert!(text.contains("memsleuth run") && text.contains("census=1.0"));
    }

    #[test]
    fn gc_notes_follow_disabled_collection_and_piling_cycles() {
        let mut c = Cap::new();
        for i in 0..6u64 {
            c.census_gc(i as f64, &[("app.Node", 100, &[])], i < 2, 500 * i);
        }
        c.record(Record::Gc(GcCollection {
            t_ns: s(0.5),
            duration_ns: 1_000,
            generation: 2,
            collected: 40,
            uncollectable: 1,
        }));
        c.record(Record::Gc(GcCollection {
            t_ns: s(9.0),
            ..GcCollection::default()
        }));
        let r = report(&c.finish(10.0));
        assert_eq!(r.gc.disabled, 4);
        assert!(r.gc.disabled_at_end);
        let u = r.gc.unreachable.as_ref().expect("unreachable");
        assert_eq!((u.from, u.to), (0, 2500));
        // six censuses are too few for the gc's trend, but the four taken with collection off
        // rose by 1,500 objects in 3 s, and nothing else frees them
        assert!(u.growing, "{:#?}", r.gc);
        assert_eq!(
            u.trend.as_ref().map(|v| v.kind),
            Some(VerdictKind::Inconclusive)
        );
        assert!((u.rate - 500.0).abs() < 1e-9, "{}", u.rate);
        // the collection after the last census is outside the range
        assert_eq!(
            (r.gc.collections, r.gc.collected, r.gc.uncollectable),
            (1, 40, 1)
        );
        assert!(!r.censuses[5].gc_enabled && r.censuses[0].gc_enabled);
        assert_eq!(r.censuses[5].unreachable_bytes, 64 * 2500);
    }

    #[test]
    fn sample_addresses_map_to_the_allocation_alive_at_the_census() {
        let mut c = Cap::new();
        let make = c.stack("<module>@app.py:1 > serve@app.py:5 > make_session@app.py:10");
        let other = c.stack("<module>@app.py:1 > other@app.py:20");
        let cached = c.stack(
            "<module>@/opt/py/memsleuth/_run.py:40 > _run_code@<frozen runpy>:88 > \
             <module>@app.py:30 > main@app.py:31 > handle@app.py:32 > Cache.add@app.py:12",
        );
        c.events(&[
            // freed, then the address is reused by the leak: the leak counts
            (0.10, 0x1000, Some(other)),
            (0.20, 0x1000, None),
            (0.30, 0x1000, Some(make)),
            // a realloc at the same address: the new allocation's stack counts
            (0.40, 0x2000, Some(make)),
            (0.50, 0x2000, None),
            (0.50, 0x2000, Some(other)),
            // freed and never allocated again: not an allocation seen alive
            (0.60, 0x3000, Some(make)),
            (0.70, 0x3000, None),
            (0.80, 0x6000, Some(cached)),
        ]);
        for i in 0..5u64 {
            let t = 1.0 + i as f64;
            let samples: &[u64] = if i == 4 {
                &[0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000]
            } else {
                &[]
            };
            c.census(
                t,
                &[
                    ("myapp.Session", 10 + 10 * i, samples),
                    ("dict", 400, &[0x1000]),
                ],
            );
            if i == 1 {
                c.events(&[(2.5, 0x4000, Some(other)), (2.6, 0x5000, Some(make))]);
            }
        }
        // after the last census: must not change what the census saw
        c.events(&[
            (5.5, 0x4000, None),
            (5.5, 0x4000, Some(make)),
            (5.6, 0x5000, None),
        ]);
        let r = report(&c.finish(6.0));
        assert!(r.has_events);
        assert_eq!(r.sites_at, Some(4));
        assert_eq!(r.capture.allocs, 9);
        assert_eq!(r.capture.frees, 5);
        let session = row(&r, "myapp.Session");
        assert!(session.growing, "{session:#?}");
        assert_eq!((session.samples, session.unmatched), (6, 1));
        let sites: Vec<(&str, u32, u32)> = session
            .sites
            .iter()
            .map(|s| (s.location.function.as_str(), s.location.line, s.samples))
            .collect();
        assert_eq!(
            sites,
            [
                ("make_session", 10, 2),
                ("other", 20, 2),
                ("Cache.add", 12, 1)
            ]
        );
        let chain = |i: usize| -> Vec<String> {
            session.sites[i]
                .chain
                .iter()
                .map(|l| format!("{}:{}", l.function, l.line))
                .collect()
        };
        assert_eq!(chain(0), ["<module>:1", "serve:5", "make_session:10"]);
        // runner frames trimmed, then the last four frames kept
        assert_eq!(
            chain(2),
            ["<module>:30", "main:31", "handle:32", "Cache.add:12"]
        );
        assert_eq!(session.sites[0].location.file, "app.py");
        // types not growing are not looked up
        let dict = row(&r, "dict");
        assert!(!dict.growing && dict.sites.is_empty() && dict.unmatched == 0);
    }

    #[test]
    fn growing_types_get_the_first_two_holders_of_their_instances() {
        let holder = |stack: u32, root: &str, held: &str| {
            Record::Holder(memsleuth_format::Holder {
                stack,
                addr: 0x10,
                root_kind: 0,
                root: root.into(),
                steps: [("", "dict"), ("['k']", held)]
                    .iter()
                    .map(|&(edge, type_name)| memsleuth_format::HolderStep {
                        edge: edge.into(),
                        type_name: type_name.into(),
                        ..memsleuth_format::HolderStep::default()
                    })
                    .collect(),
            })
        };
        let mut c = Cap::new();
        for i in 0..6u64 {
            c.census(
                i as f64,
                &[
                    ("app.Session", 100 + 50 * i, &[]),
                    ("app.Job", 100 + 50 * i, &[]),
                ],
            );
        }
        // three holders of sessions (two kept), one of a stable type, one of an allocation
        // site (stack 1: not an instance holder)
        c.record(holder(0, "module app .A", "app.Session"))
            .record(holder(1, "module app .SITE", "app.Session"))
            .record(holder(0, "module app .B", "app.Session"))
            .record(holder(0, "module app .C", "app.Session"))
            .record(holder(0, "module app .J", "app.Job"))
            .record(holder(0, "module app .D", "dict"));
        let r = report(&c.finish(6.0));
        let roots = |name: &str| -> Vec<String> {
            row(&r, name)
                .holders
                .iter()
                .map(|p| p.root.clone())
                .collect()
        };
        assert_eq!(roots("app.Session"), ["module app .A", "module app .B"]);
        assert_eq!(roots("app.Job"), ["module app .J"]);
    }
}
