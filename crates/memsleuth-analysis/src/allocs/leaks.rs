//! The leak report: what was allocated while tracking and is still alive at the end, by site
//! and by stack, with a verdict per site from how its live bytes evolved over the run.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Take};
use std::path::Path;

use memsleuth_format::{open_capture, FormatError};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::heap::{capture_info, Block, LiveHeap};
use super::names::{breakdown, live_by_slot, Binning, Names};
use super::replay::{to_u64, Limits, Replay, Tables, Weights};
use super::slot_series::SlotSeries;
use super::{program_name, Breakdown, CaptureInfo, HeapInfo, SiteRow};
use crate::profile::{Profile, ProfileSubject};
use crate::trend::{classify, VerdictKind, VerdictOptions, VerdictReason};
use crate::AnalysisError;

/// Windows the run is cut into at least for the sites' series by default (up to twice as many,
/// as its length allows): a 2-second run still gives a site that lives through it 100 points
/// or more, enough for a confident trend; 10 windows, as before, left a clear rise over 2 s
/// "stable" (Mann–Kendall cannot reach p < 0.01 on 9 points after the warm-up unless every
/// step rises). The series of every slot is followed in the replay's one pass.
pub const DEFAULT_WINDOWS: u32 = 100;

/// How the leak report is made.
#[derive(Debug, Clone)]
pub struct LeakOptions {
    /// Take the leaks at this time (ns since the capture start) instead of at the end: blocks
    /// allocated up to then and not freed by then.
    pub at_ns: Option<u64>,
    /// Windows the run (up to the leaks' time) is cut into for the judged sites' series, at
    /// least this many and up to twice as many; a site gets those of its own life, from its
    /// first allocation. 0 skips the verdicts (and the following of every slot they need).
    pub windows: u32,
    /// How many of the largest sites get a verdict.
    pub judge: usize,
    /// Tuning of the per-site verdict; see [`site_verdict_options`].
    pub verdict: VerdictOptions,
    /// Time bins of the profile (when each leaked byte was allocated).
    pub bins: u32,
}

impl Default for LeakOptions {
    fn default() -> Self {
        LeakOptions {
            at_ns: None,
            windows: DEFAULT_WINDOWS,
            judge: 25,
            verdict: site_verdict_options(),
            bins: 100,
        }
    }
}

/// Verdict tuning for one site's live bytes sampled at a few window ends: a fifth of the run as
/// warm-up, at least 7 points after it (10 windows leave 9), and growth counted from 64 KiB,
/// since one site's leak is smaller than a process' RSS swings.
pub fn site_verdict_options() -> VerdictOptions {
    VerdictOptions {
        warmup_fraction: 0.2,
        alpha: 0.01,
        min_growth_bytes: 64.0 * 1024.0,
        min_growth_fraction: 0.02,
        min_points: 7,
    }
}

/// Blocks allocated while tracking and still alive at the end (or at [`LeakOptions::at_ns`]).
#[derive(Debug, Clone, Serialize)]
pub struct LeakReport {
    pub capture: CaptureInfo,
    /// When the leaks are taken, ns since the capture start.
    pub at_ns: u64,
    /// True when that is the end of the capture (no `at_ns`, or one past the end).
    pub at_end: bool,
    /// The leaks, by site (with verdicts for the largest) and by stack.
    pub leaks: Breakdown,
    /// Windows asked for per judged site (see [`SiteRow::series`] for those used).
    pub windows: u32,
    /// Sites judged `growing`.
    pub growing: usize,
    /// Tracked heap up to `at_ns`.
    pub heap: HeapInfo,
    /// RSS of the root process, `(t_ns, bytes)`, when the capture has it.
    pub rss: Vec<(u64, u64)>,
    /// The part of that RSS memsleuth itself held, `(t_ns, bytes)`, when the capture says
    /// (format 1.4: `run` and the Python API record it).
    #[serde(skip)]
    pub own: Vec<(u64, u64)>,
    /// Open descriptors and threads of the root process up to `at_ns` (format 1.3).
    #[serde(skip)]
    pub counts: Vec<crate::verdict::CountSample>,
    /// What keeps the top sites' blocks alive, when the capture recorded it (format 1.2,
    /// `objects` instrument on when tracking stopped).
    pub holders: Vec<SiteHolder>,
    /// A few blocks still alive for each of the largest sites (addresses), to look their
    /// holders up.
    #[serde(skip)]
    pub samples: Vec<Vec<u64>>,
    /// Sites that grew through the program's time and were released only at its end.
    pub released: Vec<ReleasedSite>,
    /// The censuses and collections the first pass read, for the verdict to weigh without a
    /// pass of its own.
    #[serde(skip)]
    pub censuses: crate::growth::CensusRead,
}

/// A site that grew through the program's time and was released only at its very end (a pool's
/// threads joined as `main()` returns, and their thread-locals with them; a registry cleared on
/// the way out): a leak while the program runs, no longer alive when its main code ends.
#[derive(Debug, Clone, Serialize)]
pub struct ReleasedSite {
    pub location: crate::Location,
    /// Its largest stack when last seen growing, outermost first.
    pub stack: Vec<crate::Location>,
    /// When it was last seen growing (ns since the capture start), its live bytes then, and at
    /// the leaks' time.
    pub late_ns: u64,
    pub bytes_late: u64,
    pub bytes_end: u64,
    /// The trend of its live bytes up to `late_ns`, and the series it was judged on.
    pub verdict: crate::Verdict,
    pub series: Vec<(u64, u64)>,
    /// What held one of its blocks while the program ran, when `run` looked then.
    pub holder: Option<crate::heap::RetentionPath>,
}

/// Where a site is last looked at for growth before its release: the last tenth of the
/// program's time is where a pool shuts down and `main()` returns.
const LATE_FRACTION: f64 = 0.9;
/// Live bytes a released site must have held then, and the sites looked at.
const RELEASED_MIN_BYTES: f64 = 256.0 * 1024.0;
const RELEASED_SITES: usize = 5;

/// Sites that held at least [`RELEASED_MIN_BYTES`] late in the program's time, less than half
/// of that at `at_ns`, and grew steadily up to then; each with the newest of `held` (holders
/// found while the program ran, by the slot of their block) that names one of its blocks.
fn released_sites(
    names: &mut Names<'_>,
    heap: &LiveHeap,
    by_slot: &SlotSeries,
    at_ns: u64,
    opts: &VerdictOptions,
    held: &[(u32, &memsleuth_format::Holder)],
) -> Vec<ReleasedSite> {
    let late = (at_ns as f64 * LATE_FRACTION) as u64;
    let mut by_site: FxHashMap<u32, (Vec<u32>, f64, f64)> = FxHashMap::default();
    for slot in 0..by_slot.slots() as u32 {
        let then = by_slot.value_at(slot, late);
        let now = by_slot.value_at(slot, at_ns);
        let entry = by_site.entry(names.site_of_slot(slot)).or_default();
        entry.0.push(slot);
        entry.1 += then;
        entry.2 += now;
    }
    let mut candidates: Vec<(u32, Vec<u32>, f64, f64)> = by_site
        .into_iter()
        .filter(|(_, (_, then, now))| *then >= RELEASED_MIN_BYTES && *now * 2.0 < *then)
        .map(|(loc, (slots, then, now))| (loc, slots, then, now))
        .collect();
    candidates.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    candidates.truncate(RELEASED_SITES);
    let mut out = Vec::new();
    for (loc, slots, then, now) in candidates {
        let start = slots
            .iter()
            .filter_map(|&s| heap.slots.get(s as usize))
            .map(|s| s.first_t)
            .min()
            .unwrap_or(late)
            .min(late);
        let (series, verdict, _) = site_trend(by_slot, &slots, start, late, opts);
        if verdict.kind != VerdictKind::Growing {
            continue;
        }
        let biggest = slots
            .iter()
            .copied()
            .max_by(|&a, &b| {
                by_slot
                    .value_at(a, late)
                    .total_cmp(&by_slot.value_at(b, late))
            })
            .unwrap_or(0);
        let stack = names
            .stack(biggest)
            .into_iter()
            .map(|i| names.locations[i as usize].clone())
            .collect();
        let holder = held
            .iter()
            .find(|&&(slot, _)| names.site_of_slot(slot) == loc)
            .map(|&(_, h)| crate::heap::RetentionPath::from_holder(h));
        out.push(ReleasedSite {
            holder,
            location: names.locations[loc as usize].clone(),
            stack,
            late_ns: late,
            bytes_late: to_u64(then),
            bytes_end: to_u64(now),
            verdict,
            series,
        });
    }
    out
}

/// A surviving block of a site that is a Python object, or the storage of one (a list's item
/// array, a dict's keys table...), and the chain that keeps it (or its owner) alive.
#[derive(Debug, Clone, Serialize)]
pub struct SiteHolder {
    /// Index into the report's sites.
    pub site: usize,
    pub addr: u64,
    pub path: crate::heap::RetentionPath,
}

/// Blocks sampled per site for [`LeakReport::samples`], and sites sampled.
const SAMPLES_PER_SITE: usize = 3;
const SAMPLED_SITES: usize = 10;

/// Opens a capture source again for a later pass.
pub(crate) type Open<'a, R> = &'a dyn Fn() -> Result<R, FormatError>;

/// Opens a capture file for each pass through the reader's one opener, which refuses FIFOs,
/// directories and devices (a FIFO would block the report, `/dev/zero` never ends).
pub(crate) fn open_path(path: &Path) -> impl Fn() -> Result<BufReader<File>, FormatError> + '_ {
    move || Ok(BufReader::with_capacity(256 << 10, open_capture(path)?))
}

/// Reads an input or says why not.
pub(crate) fn reopen<R: Read>(open: Open<'_, R>) -> Result<R, AnalysisError> {
    open().map_err(AnalysisError::Format)
}

/// The leak report's one pass over a capture, which can wait at the end of what the capture
/// holds so far and go on once it holds more (see [`LeakPass::read_to`]): `run` makes a
/// report at the end of the program's main code, to find the holders of what grew before the
/// program's shutdown frees it, and the final one after the shutdown from the rest alone.
pub struct LeakPass<R: Read> {
    replay: Replay<R>,
    tables: Tables,
    heap: LiveHeap,
    opts: LeakOptions,
}

impl<R: Read> std::fmt::Debug for LeakPass<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakPass")
            .field("read", &self.replay.offset())
            .field("live_blocks", &self.heap.live.len())
            .finish_non_exhaustive()
    }
}

impl LeakPass<Take<BufReader<File>>> {
    /// Reads a capture still being written up to `upto` bytes, the end of its last complete
    /// chunk (what the recorder's sync returns).
    pub fn open_upto(
        path: &Path,
        opts: &LeakOptions,
        upto: u64,
    ) -> Result<LeakPass<Take<BufReader<File>>>, AnalysisError> {
        let mut pass = LeakPass::open_unread(path, opts, upto)?;
        pass.read_on(None);
        Ok(pass)
    }

    /// [`LeakPass::open_upto`] having read only the capture's first chunk (its header's): the
    /// rest is read with [`LeakPass::read_to_unless`], which can stop at any chunk's end.
    pub fn open_unread(
        path: &Path,
        opts: &LeakOptions,
        upto: u64,
    ) -> Result<LeakPass<Take<BufReader<File>>>, AnalysisError> {
        let input = open_path(path)()?.take(upto);
        LeakPass::open(input, opts)
    }

    /// Reads on up to `upto` bytes of the capture (a later sync's length, or `u64::MAX` for
    /// all of it once it is finished).
    pub fn read_to(&mut self, upto: u64) {
        self.read_to_unless(upto, &|| false);
    }

    /// [`LeakPass::read_to`], stopping early at the end of a chunk once `stop` says so (another
    /// thread wants the pass now, or the reader has other work due); a later read goes on from
    /// there. True when it read all of it.
    pub fn read_to_unless(&mut self, upto: u64, stop: &dyn Fn() -> bool) -> bool {
        let read = self.replay.offset();
        self.replay.input_mut().set_limit(upto.saturating_sub(read));
        self.read_on(Some(stop));
        self.replay.offset() >= upto
    }
}

impl<R: Read> LeakPass<R> {
    fn start(input: R, opts: &LeakOptions) -> Result<LeakPass<R>, AnalysisError> {
        let mut pass = LeakPass::open(input, opts)?;
        pass.read_on(None);
        Ok(pass)
    }

    /// A pass that has read the capture's header (and the rest of its chunk), nothing more.
    fn open(input: R, opts: &LeakOptions) -> Result<LeakPass<R>, AnalysisError> {
        let (replay, header) = Replay::open(input)?;
        let mut heap = LiveHeap::new(Weights::new(header.sample_bytes), true);
        if opts.windows > 0 {
            // between `windows` and twice as many over the run, as its length allows
            let until = opts.at_ns.unwrap_or(u64::MAX);
            heap = heap.with_slot_series(opts.windows.saturating_mul(2), until);
        }
        let pass = LeakPass {
            replay,
            tables: Tables::new(header),
            heap,
            opts: opts.clone(),
        };
        Ok(pass)
    }

    /// Reads as far as the input goes now.
    fn read_on(&mut self, stop: Option<&dyn Fn() -> bool>) {
        let limits = Limits {
            at_ns: self.opts.at_ns,
            stop,
            ..Limits::default()
        };
        self.replay
            .advance(&mut self.tables, true, limits, &mut self.heap);
    }

    /// The stack that allocated the live block at `addr`, as the capture numbers its stacks.
    pub fn stack_of(&self, addr: u64) -> Option<u32> {
        let block = self.heap.live.get(&addr)?;
        self.tables
            .stacks
            .nodes
            .get(block.slot as usize)
            .map(|n| n.id)
    }

    /// The report on what the pass has read so far.
    pub fn report(&self) -> Result<LeakReport, AnalysisError> {
        let LeakPass {
            tables, heap, opts, ..
        } = self;
        let weights = heap.weights;
        if !tables.has_allocations() {
            return Err(AnalysisError::NoAllocations);
        }
        let end = tables.end_ns();
        // the program's own time ends with its main code when the capture marks it: what
        // follows is its shutdown and memsleuth's exit work, and what the shutdown freed was
        // still alive when the program's time ended
        let main_end = heap.main_end.filter(|&t| opts.at_ns.is_none() && t < end);
        let (at_ns, at_end) = match (opts.at_ns, main_end) {
            (Some(at), _) if at < end => (at, false),
            (None, Some(m)) => (m, true),
            _ => (end, true),
        };
        let late: &[(u64, Block)] = if main_end.is_some() {
            &heap.freed_late
        } else {
            &[]
        };
        let binning = Binning::new(at_ns, opts.bins);
        let alive = heap
            .live
            .values()
            .filter(|b| b.t <= at_ns)
            .chain(late.iter().map(|(_, b)| b));
        let per_slot = live_by_slot(alive, weights, binning);
        let mut names = Names::new(tables);
        let mut leaks = breakdown(&mut names, per_slot, binning);
        let judged = if opts.windows > 0 {
            opts.judge.min(leaks.sites.len())
        } else {
            0
        };
        let site_of_slot = site_of_each_slot(&mut names, &leaks.sites[..judged]);
        let all_sites = site_of_each_slot(&mut names, &leaks.sites);
        for (_, block) in late {
            let site = all_sites.get(block.slot as usize).copied();
            if let Some(row) = site.and_then(|s| leaks.sites.get_mut(s as usize)) {
                row.freed_at_shutdown += to_u64(weights.of(block.size).0);
            }
        }
        let mut samples = vec![Vec::new(); leaks.sites.len().min(SAMPLED_SITES)];
        for (&addr, block) in heap.live.iter().filter(|(_, b)| b.t <= at_ns) {
            let site = all_sites
                .get(block.slot as usize)
                .copied()
                .unwrap_or(u32::MAX);
            if let Some(list) = samples.get_mut(site as usize) {
                if list.len() < SAMPLES_PER_SITE {
                    list.push(addr);
                }
            }
        }
        // `run` also looks for holders while the program runs (before its main code's end
        // is marked): a block it held then may be gone by the end (a pool's thread-locals
        // freed as the pool shuts down), and its address reused, so those are placed by the
        // stack that allocated their block (see `Tables::holder_reads`), newest first, after
        // the holders found at the end
        let in_run =
            |i: usize| heap.main_end.is_some() && !tables.holder_reads.get(i).is_some_and(|r| r.1);
        let run_held: Vec<(u32, &memsleuth_format::Holder)> = tables
            .holders
            .iter()
            .enumerate()
            .rev()
            .filter(|&(i, _)| in_run(i))
            .filter_map(|(i, h)| Some((tables.holder_reads.get(i)?.0?, h)))
            .collect();
        // a holder found at the main code's end may be of a block its shutdown freed
        let held: FxHashSet<u64> = tables.holders.iter().map(|h| h.addr).collect();
        let late_held: FxHashMap<u64, &Block> = late
            .iter()
            .filter(|(a, _)| held.contains(a))
            .map(|(a, b)| (*a, b))
            .collect();
        let end_holders = tables
            .holders
            .iter()
            .enumerate()
            .filter(|&(i, _)| !in_run(i))
            .filter_map(|(_, h)| {
                let block = match heap.live.get(&h.addr).filter(|b| b.t <= at_ns) {
                    Some(b) => b,
                    None => late_held.get(&h.addr).copied()?,
                };
                let site = *all_sites.get(block.slot as usize)?;
                (site != u32::MAX).then(|| SiteHolder {
                    site: site as usize,
                    addr: h.addr,
                    path: crate::heap::RetentionPath::from_holder(h),
                })
            });
        // the end's holders stand for the sites alive then; those found while the program
        // ran only for the sites it released before (a frame that held a site's block then
        // may be gone by the end, and the root found at the end is the one to show)
        let holders: Vec<SiteHolder> = end_holders.collect();
        let mut released = Vec::new();
        if let Some(by_slot) = heap.by_slot.as_ref().filter(|_| judged > 0) {
            let sites = &mut leaks.sites[..judged];
            judge(sites, &site_of_slot, heap, by_slot, at_ns, &opts.verdict);
            released = released_sites(&mut names, heap, by_slot, at_ns, &opts.verdict, &run_held);
        }
        let unresolved = names.unresolved;
        let growing = leaks.sites.iter().filter(|s| s.growing()).count();
        let capture = capture_info(tables, heap, unresolved);
        let censuses = crate::growth::CensusRead::from_tables(tables, &capture);
        let mut heap_info = heap.info(at_ns);
        if main_end.is_some() {
            // the heap when the program's time ended, not after its shutdown
            heap_info.series.retain(|p| p.0 <= at_ns);
            heap_info.end_bytes = leaks.bytes;
            heap_info.end_blocks = leaks.blocks;
        }
        Ok(LeakReport {
            heap: heap_info,
            rss: rss_until(tables, at_ns),
            own: {
                let mut own = tables.own.points(false);
                own.retain(|p| p.0 <= at_ns);
                own
            },
            counts: tables
                .counts
                .iter()
                .filter(|c| c.t_ns <= at_ns)
                .copied()
                .collect(),
            capture,
            at_ns,
            at_end,
            leaks,
            windows: opts.windows,
            growing,
            holders,
            samples,
            released,
            censuses,
        })
    }
}

impl LeakReport {
    /// The blocks whose holders the tracker's end looks up in the process, each with its
    /// site's rank (the largest site first): [`LeakReport::samples`], flattened.
    pub fn blocks_to_hold(&self) -> Vec<(u64, usize)> {
        self.samples
            .iter()
            .enumerate()
            .flat_map(|(rank, site)| site.iter().map(move |&a| (a, rank)))
            .collect()
    }

    /// Analyses a capture file.
    pub fn from_path(path: &Path, opts: &LeakOptions) -> Result<LeakReport, AnalysisError> {
        Self::from_source(&open_path(path), opts)
    }

    /// Analyses a capture held in memory.
    pub fn from_bytes(bytes: &[u8], opts: &LeakOptions) -> Result<LeakReport, AnalysisError> {
        Self::from_source(&|| Ok(Cursor::new(bytes)), opts)
    }

    pub(crate) fn from_source<R: Read>(
        open: Open<'_, R>,
        opts: &LeakOptions,
    ) -> Result<LeakReport, AnalysisError> {
        LeakPass::start(reopen(open)?, opts)?.report()
    }

    /// The capture ended after this report was made (the tracker makes it before writing the
    /// trailer): how it ended, now known.
    pub fn set_end(&mut self, end: crate::timeline::EndInfo) {
        self.capture.end = end;
    }

    /// Sites whose live bytes kept growing: the leaks.
    pub fn leaking_sites(&self) -> impl Iterator<Item = &SiteRow> {
        self.leaks.sites.iter().filter(|s| s.growing())
    }

    /// The leaks as a stack profile for the flamegraph, pprof and collapsed renderers.
    pub fn to_profile(&self) -> Profile {
        let mut p = self.leaks.profile(self.capture.sampled());
        p.program = program_name(&self.capture.argv);
        p.subject = ProfileSubject::Leaks {
            at_ns: (!self.at_end).then_some(self.at_ns),
        };
        p.heap = self.heap.series.clone();
        p.rss = self.rss.clone();
        p
    }
}

/// The judged site (index) each stack slot's allocations count for; `u32::MAX` for others.
/// Every slot counts, not only those with leaks: a site's live bytes over time include blocks
/// it allocated under stacks that freed everything.
fn site_of_each_slot(names: &mut Names<'_>, judged: &[SiteRow]) -> Vec<u32> {
    if judged.is_empty() {
        return Vec::new();
    }
    let by_loc: FxHashMap<crate::Location, u32> = judged
        .iter()
        .enumerate()
        .map(|(i, s)| (s.location.clone(), i as u32))
        .collect();
    (0..names.slots())
        .map(|slot| {
            let loc = names.site_of_slot(slot as u32);
            names
                .locations
                .get(loc as usize)
                .and_then(|l| by_loc.get(l).copied())
                .unwrap_or(u32::MAX)
        })
        .collect()
}

/// RSS of the root process up to a time.
pub(crate) fn rss_until(tables: &Tables, until_ns: u64) -> Vec<(u64, u64)> {
    let mut v = tables.rss.points(false);
    v.retain(|p| p.0 <= until_ns);
    v
}

/// The summed live bytes of `slots` from just before `start` (empty) to `end`, as a site's
/// series, the trend of it, and the number of window ends in it.
fn site_trend(
    by_slot: &SlotSeries,
    slots: &[u32],
    start: u64,
    end: u64,
    opts: &VerdictOptions,
) -> (Vec<(u64, u64)>, crate::Verdict, usize) {
    let points = by_slot.sum_of(slots, start, end);
    let mut t = vec![start as f64 / 1e9];
    let mut y = vec![0.0];
    for &(at, v) in &points {
        t.push(at as f64 / 1e9);
        y.push(v.max(0.0));
    }
    let series = std::iter::once((start, 0))
        .chain(points.iter().map(|&(at, v)| (at, to_u64(v))))
        .collect();
    (series, classify(&t, &y, opts), points.len())
}

/// How many times the noise of its count a sampled site's recorded blocks alive at the end
/// must be: in a sampled capture each recorded block stands for about `--sample` bytes, and a
/// bounded cache of 2 recorded blocks on average ends now and then with 5 or 6 alive, which
/// the trend over the windows can take for growth (CI saw `leaking` at 1.3 MB/s for a 1 MB
/// cache of 20 KB blocks sampled every 512 KiB).
const SAMPLED_GROWTH_NOISES: f64 = 3.0;

/// Whether a site judged growing in a sampled capture rests on enough recorded blocks: those
/// alive at the end (all of them grown since the site's first allocation) are at least
/// [`SAMPLED_GROWTH_NOISES`] times the noise of their count. Each was recorded with probability
/// `p` (its size against `--sample`), so the count varies by `sqrt(recorded * (1 - p))`: about
/// its square root for small blocks (9 of them at least), nothing for blocks far larger than
/// `--sample`, which are all recorded. Always true for a capture of every allocation.
///
/// Not the growth the trend fitted over its window: on a few recorded blocks the fitted slope
/// runs low, and that made the README's example, sampled, `inconclusive` in 2 runs of 8.
fn enough_samples(site: &SiteRow, weights: Weights) -> bool {
    if site.blocks == 0 || site.bytes == 0 {
        return true;
    }
    // each block recorded stands for `per_recorded` of the blocks estimated
    let (_, per_recorded) = weights.of(site.bytes / site.blocks);
    if per_recorded <= 1.0 {
        return true;
    }
    let recorded = site.blocks as f64 / per_recorded;
    let noise = (recorded * (1.0 - 1.0 / per_recorded)).sqrt();
    recorded >= SAMPLED_GROWTH_NOISES * noise
}

/// Gives each judged site its series of live bytes, from just before its first allocation to
/// the leaks' time, and the verdict on it. `site_of_slot`: the judged site of each slot.
fn judge(
    sites: &mut [SiteRow],
    site_of_slot: &[u32],
    heap: &LiveHeap,
    by_slot: &SlotSeries,
    at_ns: u64,
    opts: &VerdictOptions,
) {
    let mut slots: Vec<Vec<u32>> = vec![Vec::new(); sites.len()];
    let mut starts = vec![u64::MAX; sites.len()];
    for (slot, &site) in site_of_slot.iter().enumerate() {
        if let Some(of_site) = slots.get_mut(site as usize) {
            of_site.push(slot as u32);
            if let Some(stats) = heap.slots.get(slot) {
                starts[site as usize] = starts[site as usize].min(stats.first_t);
            }
        }
    }
    for (i, site) in sites.iter_mut().enumerate() {
        let start = starts[i].min(at_ns);
        let (series, mut verdict, points) = site_trend(by_slot, &slots[i], start, at_ns, opts);
        site.series = series;
        if verdict.kind == VerdictKind::Growing && !enough_samples(site, heap.weights) {
            verdict.kind = VerdictKind::Inconclusive;
            verdict.reason = VerdictReason::NoSignificantTrend;
        }
        if verdict.kind == VerdictKind::Inconclusive && points < 7 {
            verdict.reason = VerdictReason::TooBrief {
                allocated_for_ns: site.series.last().map_or(0, |p| p.0).saturating_sub(start),
                windows: points,
                window_ns: by_slot.width(),
            };
        }
        site.verdict = Some(verdict);
    }
}
