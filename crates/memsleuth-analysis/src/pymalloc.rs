//! The `pymalloc` instrument: CPython's small-object allocator, read from the text of
//! `_PyObject_DebugMallocStats` (what `sys._debugmallocstats()` prints), and the report made from
//! a capture's snapshots of it.
//!
//! pymalloc serves every request of up to 512 bytes from size classes of 16-byte steps. Blocks of
//! one class live in pools (4 KiB up to 3.9, 16 KiB from 3.10), pools in arenas (256 KiB up to
//! 3.9, 1 MiB from 3.10). An arena goes back to the OS only when every block in it is free, so a
//! few long-lived objects scattered across many arenas keep all of them: memory that looks leaked
//! from outside (RSS) but is free for pymalloc to reuse. This report tells the two apart.

use memsleuth_format::{Capture, Pymalloc, Record, SizeClass};
use serde::Serialize;
use thiserror::Error;

use crate::timeline::EndInfo;
use crate::trend::{classify, Verdict, VerdictKind, VerdictOptions};

// ---------------------------------------------------------------------------------------------
// Parsing `_PyObject_DebugMallocStats`.
// ---------------------------------------------------------------------------------------------

/// Why a text could not be read as pymalloc statistics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatsError {
    /// Nothing but blank lines: what `_PyObject_DebugMallocStats` writes when pymalloc is off.
    #[error("the allocator statistics are empty: pymalloc is not in use (PYTHONMALLOC=malloc?)")]
    Empty,
    /// Only the free-list part of `sys._debugmallocstats()`: pymalloc is off.
    #[error(
        "the allocator statistics have no pymalloc section: pymalloc is not in use \
         (PYTHONMALLOC=malloc?)"
    )]
    NotInUse,
    /// 3.13's mimalloc (`PYTHONMALLOC=mimalloc`, or the free-threaded build) prints its own
    /// statistics in place of pymalloc's.
    #[error(
        "the allocator statistics are mimalloc's, not pymalloc's (PYTHONMALLOC=mimalloc or a \
         free-threaded build)"
    )]
    Mimalloc,
    /// A line that does not read as what belongs there.
    #[error("line {line} of the allocator statistics: {what}")]
    Malformed { line: usize, what: String },
    /// The text stops before the statistics are complete.
    #[error("the allocator statistics end early, at line {line}: {what}")]
    Truncated { line: usize, what: String },
    /// Every line read, but the totals do not agree with each other (CPython guarantees they
    /// do), so some number was misread.
    #[error("the allocator statistics do not add up: {0}")]
    Inconsistent(String),
}

const FIRST_LINE: &str = "Small block threshold = ";
const TABLE_HEADER: &str = "class   size   num pools";

/// Summary lines by their label, in the order CPython prints them.
const ARENAS_TOTAL: &str = "# arenas allocated total";
const ARENAS_RECLAIMED: &str = "# arenas reclaimed";
const ARENAS_HIGHWATER: &str = "# arenas highwater mark";
const ARENAS_NOW: &str = "# arenas allocated current";
const ARENA_SIZE: &str = "N arenas * S bytes/arena";
const IN_USE: &str = "# bytes in allocated blocks";
const FREE_BLOCKS: &str = "# bytes in available blocks";
const UNUSED_POOLS: &str = "N unused pools * S bytes";
const POOL_HEADERS: &str = "# bytes lost to pool headers";
const QUANTIZATION: &str = "# bytes lost to quantization";
const ALIGNMENT: &str = "# bytes lost to arena alignment";
const TOTAL: &str = "Total";

/// A number as CPython's `printone` writes it: digits grouped by commas.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return None;
    }
    let digits: String = s.chars().filter(|&c| c != ',').collect();
    digits.parse().ok()
}

/// `"12 arenas * 1048576 bytes/arena"` → `(12, 1048576)`: a count, then `middle`, a size, then
/// `tail`. These two lines carry the arena and pool sizes that changed in 3.10.
fn product(label: &str, middle: &str, tail: &str) -> Option<(u64, u64)> {
    let (count, rest) = label.trim().split_once(' ')?;
    let rest = rest.trim_start().strip_prefix(middle)?;
    let size = rest.trim().strip_suffix(tail)?;
    Some((number(count)?, number(size)?))
}

/// Partial statistics while reading: `None` until their line is seen.
#[derive(Default)]
struct Seen {
    arenas_total: Option<u64>,
    arenas_reclaimed: Option<u64>,
    arenas_highwater: Option<u64>,
    arenas_now: Option<u64>,
    arena_line: Option<(u64, u64)>,
    in_use: Option<u64>,
    free_blocks: Option<u64>,
    unused_pools: Option<(u64, u64)>,
    pool_headers: Option<u64>,
    quantization: Option<u64>,
    alignment: Option<u64>,
    total: Option<u64>,
}

/// Reads the text of `_PyObject_DebugMallocStats` (or all of `sys._debugmallocstats()`: the
/// free-list part after the totals is ignored) into a [`Pymalloc`] record. Every field is filled
/// except `t_ns`, `allocated_blocks` and `total_refcount`, which the text does not hold.
///
/// Reads the outputs of CPython 3.9 to 3.13, which differ in arena and pool sizes and in what
/// follows the totals (3.10 added the arena map of its radix tree). `classes` holds the size
/// classes CPython prints: those that own at least one pool. Lines starting with `#` that this
/// parser does not know (debug builds add one) are skipped.
///
/// Never panics. Fails with [`StatsError::Empty`] or [`StatsError::NotInUse`] when pymalloc is
/// not in use, [`StatsError::Mimalloc`] for mimalloc's statistics, and with a line number when
/// the text is something else, cut short, or does not add up.
pub fn parse_debugmallocstats(text: &str) -> Result<Pymalloc, StatsError> {
    let lines: Vec<&str> = text.lines().collect();
    let last_line = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    // a bad line that is also the last one is where the text was cut, not garbage
    let bad = |line: usize, what: String| {
        if line >= last_line {
            StatsError::Truncated { line, what }
        } else {
            StatsError::Malformed { line, what }
        }
    };
    let mut it = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .skip_while(|(_, l)| l.is_empty())
        .peekable();

    let Some((first_no, first)) = it.next() else {
        return Err(StatsError::Empty);
    };
    let Some(rest) = first.strip_prefix(FIRST_LINE) else {
        if lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.contains(" free ") && l.contains('='))
        {
            return Err(StatsError::NotInUse);
        }
        return Err(StatsError::Malformed {
            line: first_no,
            what: format!(
                "expected `{}...`, found `{}`",
                FIRST_LINE.trim(),
                clip(first)
            ),
        });
    };
    let (threshold, classes_declared) = rest
        .split_once(", in ")
        .and_then(|(t, c)| Some((number(t)?, number(c.strip_suffix(" size classes.")?)?)))
        .ok_or_else(|| {
            bad(
                first_no,
                format!(
                    "cannot read the threshold and class count in `{}`",
                    clip(first)
                ),
            )
        })?;

    // the table's header, after blank lines; mimalloc goes on with its own lines instead
    let header = it.by_ref().find(|(_, l)| !l.is_empty());
    match header {
        Some((_, l)) if l.starts_with(TABLE_HEADER) => {}
        Some((_, l)) if l.starts_with("Medium block threshold") => {
            return Err(StatsError::Mimalloc)
        }
        Some((no, l)) => {
            return Err(bad(
                no,
                format!("expected the size-class table, found `{}`", clip(l)),
            ))
        }
        None => {
            return Err(StatsError::Truncated {
                line: first_no,
                what: "no size-class table".into(),
            })
        }
    }
    match it.next() {
        Some((_, l)) if l.trim_start().starts_with("-----") => {}
        Some((no, l)) => {
            return Err(bad(
                no,
                format!("expected the table's rule, found `{}`", clip(l)),
            ))
        }
        None => {
            return Err(StatsError::Truncated {
                line: last_line,
                what: "the size-class table is missing".into(),
            })
        }
    }

    let mut classes: Vec<SizeClass> = Vec::new();
    let mut last_index: Option<u64> = None;
    for (no, l) in it.by_ref() {
        if l.trim().is_empty() {
            break;
        }
        let cols: Option<Vec<u64>> = l.split_whitespace().map(number).collect();
        let Some(&[index, size, pools, used, free]) = cols.as_deref() else {
            return Err(bad(
                no,
                format!("a size-class row has five numbers, found `{}`", clip(l)),
            ));
        };
        if index >= classes_declared || last_index.is_some_and(|p| index <= p) {
            return Err(bad(no, format!("size class {index} is out of order")));
        }
        if size == 0 || size > threshold {
            return Err(bad(
                no,
                format!("block size {size} is outside 1..={threshold}"),
            ));
        }
        last_index = Some(index);
        classes.push(SizeClass {
            size: u32::try_from(size).unwrap_or(u32::MAX),
            pools,
            blocks_in_use: used,
            blocks_free: free,
        });
    }

    let mut seen = Seen::default();
    for (no, l) in it.by_ref() {
        if l.trim().is_empty() {
            continue;
        }
        let Some((label, value)) = l.rsplit_once('=') else {
            return Err(bad(
                no,
                format!("expected `label = number`, found `{}`", clip(l)),
            ));
        };
        let label = label.trim();
        let Some(value) = number(value) else {
            return Err(bad(no, format!("`{}` is not a number", clip(value.trim()))));
        };
        let slot = match label {
            ARENAS_TOTAL => &mut seen.arenas_total,
            ARENAS_RECLAIMED => &mut seen.arenas_reclaimed,
            ARENAS_HIGHWATER => &mut seen.arenas_highwater,
            ARENAS_NOW => &mut seen.arenas_now,
            IN_USE => &mut seen.in_use,
            FREE_BLOCKS => &mut seen.free_blocks,
            POOL_HEADERS => &mut seen.pool_headers,
            QUANTIZATION => &mut seen.quantization,
            ALIGNMENT => &mut seen.alignment,
            TOTAL => {
                seen.total = Some(value);
                // the arena map and free lists follow: not pymalloc's own figures
                break;
            }
            _ => {
                if let Some(p) = product(label, "arenas *", "bytes/arena") {
                    seen.arena_line = Some(p);
                } else if let Some(p) = product(label, "unused pools *", "bytes") {
                    seen.unused_pools = Some(p);
                } else if !label.starts_with('#') {
                    return Err(bad(no, format!("unknown line `{}`", clip(l))));
                }
                continue;
            }
        };
        *slot = Some(value);
    }

    let need = |v: Option<u64>, name: &str| {
        v.ok_or_else(|| StatsError::Truncated {
            line: last_line,
            what: format!("no `{name}` line"),
        })
    };
    let need2 = |v: Option<(u64, u64)>, name: &str| {
        v.ok_or_else(|| StatsError::Truncated {
            line: last_line,
            what: format!("no `{name}` line"),
        })
    };
    let arenas_allocated_total = need(seen.arenas_total, ARENAS_TOTAL)?;
    let arenas_reclaimed = need(seen.arenas_reclaimed, ARENAS_RECLAIMED)?;
    let arenas_highwater = need(seen.arenas_highwater, ARENAS_HIGHWATER)?;
    let arenas_now = need(seen.arenas_now, ARENAS_NOW)?;
    let (arenas_again, arena_size) = need2(seen.arena_line, ARENA_SIZE)?;
    let bytes_in_use = need(seen.in_use, IN_USE)?;
    let bytes_free_blocks = need(seen.free_blocks, FREE_BLOCKS)?;
    let (unused_pools, pool_size) = need2(seen.unused_pools, UNUSED_POOLS)?;
    let bytes_pool_headers = need(seen.pool_headers, POOL_HEADERS)?;
    let bytes_quantization = need(seen.quantization, QUANTIZATION)?;
    let bytes_arena_alignment = need(seen.alignment, ALIGNMENT)?;
    let total = need(seen.total, TOTAL)?;

    // CPython asserts these; a mismatch means a number was misread (or the text was edited)
    let inconsistent = |what: String| Err(StatsError::Inconsistent(what));
    if arenas_again != arenas_now {
        return inconsistent(format!(
            "{arenas_now} arenas allocated now, but {arenas_again} counted in arena bytes"
        ));
    }
    if arenas_now.checked_mul(arena_size) != Some(total) {
        return inconsistent(format!(
            "{arenas_now} arenas of {arena_size} bytes do not make the total of {total} bytes"
        ));
    }
    let sum = |f: fn(&SizeClass) -> u64| {
        classes.iter().try_fold(0u64, |acc, c| {
            acc.checked_add(f(c).checked_mul(u64::from(c.size))?)
        })
    };
    if sum(|c| c.blocks_in_use) != Some(bytes_in_use) {
        return inconsistent(format!(
            "the size classes' blocks in use do not make the {bytes_in_use} bytes in allocated \
             blocks"
        ));
    }
    if sum(|c| c.blocks_free) != Some(bytes_free_blocks) {
        return inconsistent(format!(
            "the size classes' available blocks do not make the {bytes_free_blocks} bytes in \
             available blocks"
        ));
    }

    Ok(Pymalloc {
        t_ns: 0,
        allocated_blocks: 0,
        total_refcount: None,
        arena_size,
        pool_size,
        arenas_allocated_total,
        arenas_reclaimed,
        arenas_highwater,
        arenas_now,
        bytes_in_use,
        bytes_free_blocks,
        unused_pools,
        bytes_pool_headers,
        bytes_quantization,
        bytes_arena_alignment,
        classes,
    })
}

/// A line shortened for an error message.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    let s = s.trim();
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The report.
// ---------------------------------------------------------------------------------------------

/// Tuning of [`PymallocReport`]. Each default is a judgement call, explained next to it.
#[derive(Debug, Clone, Copy)]
pub struct PymallocOptions {
    /// A size class is listed in the diff only when its bytes in use changed by more than this...
    /// 64 KiB is four 16 KiB pools: smaller moves are the ordinary churn of free lists and
    /// caches between two moments.
    pub diff_min_bytes: u64,
    /// ...and by more than this share of its bytes in use in the earlier snapshot (a class that
    /// appears from nothing always passes). 5% keeps a 2 MiB class from being listed for a
    /// 70 KiB wobble.
    pub diff_min_fraction: f64,
    /// Fragmentation is diagnosed when blocks in use fill less than this share of the arenas...
    /// At half, pymalloc holds at least as much idle memory as live memory: worth explaining.
    pub fragmentation_max_usage: f64,
    /// ...and the idle part exceeds this. Below a few MiB the gap is the normal slack of a
    /// handful of 1 MiB arenas and nobody should be sent chasing it.
    pub fragmentation_min_bytes: u64,
    /// Options of the trend of `allocated_blocks`, a count of blocks, not bytes: "growth" in
    /// `min_growth_bytes` is in blocks.
    pub blocks_trend: VerdictOptions,
}

impl Default for PymallocOptions {
    fn default() -> Self {
        PymallocOptions {
            diff_min_bytes: 64 << 10,
            diff_min_fraction: 0.05,
            fragmentation_max_usage: 0.5,
            fragmentation_min_bytes: 4 << 20,
            blocks_trend: VerdictOptions {
                // 10,000 blocks is about half a MiB of typical 32-64 byte objects: the same
                // order as the 1 MiB that counts as material for a byte series
                min_growth_bytes: 10_000.0,
                ..VerdictOptions::default()
            },
        }
    }
}

/// One size class in a snapshot, with its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClassRow {
    /// Block size in bytes.
    pub size: u32,
    pub pools: u64,
    pub blocks_in_use: u64,
    pub blocks_free: u64,
    /// `size * blocks_in_use` and `size * blocks_free`.
    pub bytes_in_use: u64,
    pub bytes_free: u64,
}

/// One snapshot of pymalloc, with the derived figures a reader needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PymallocSnapshot {
    /// Nanoseconds since the capture start.
    pub t_ns: u64,
    /// False when pymalloc was not in use (`PYTHONMALLOC=malloc`, mimalloc): then only
    /// `allocated_blocks` and `total_refcount` mean anything.
    pub active: bool,
    /// `sys.getallocatedblocks()`: blocks handed out by the interpreter's allocators.
    pub allocated_blocks: u64,
    /// `sys.gettotalrefcount()`, on debug builds only.
    pub total_refcount: Option<i64>,
    pub arena_size: u64,
    pub pool_size: u64,
    pub arenas_allocated_total: u64,
    /// Arenas given back to the OS so far.
    pub arenas_reclaimed: u64,
    pub arenas_highwater: u64,
    pub arenas_now: u64,
    /// `arenas_now * arena_size`: what pymalloc holds from the OS.
    pub arena_bytes: u64,
    /// Bytes in blocks handed out.
    pub bytes_in_use: u64,
    /// Bytes in free blocks of pools that hold live blocks.
    pub bytes_free_blocks: u64,
    /// Pools in arenas that hold no block, and their bytes.
    pub unused_pools: u64,
    pub bytes_unused_pools: u64,
    pub bytes_pool_headers: u64,
    pub bytes_quantization: u64,
    pub bytes_arena_alignment: u64,
    /// Size classes that own at least one pool, by block size.
    pub classes: Vec<ClassRow>,
}

impl From<&Pymalloc> for PymallocSnapshot {
    fn from(p: &Pymalloc) -> Self {
        let mut classes: Vec<ClassRow> = p
            .classes
            .iter()
            .map(|c| ClassRow {
                size: c.size,
                pools: c.pools,
                blocks_in_use: c.blocks_in_use,
                blocks_free: c.blocks_free,
                bytes_in_use: c.blocks_in_use.saturating_mul(u64::from(c.size)),
                bytes_free: c.blocks_free.saturating_mul(u64::from(c.size)),
            })
            .collect();
        classes.sort_by_key(|c| c.size);
        PymallocSnapshot {
            t_ns: p.t_ns,
            active: p.arena_size > 0,
            allocated_blocks: p.allocated_blocks,
            total_refcount: p.total_refcount,
            arena_size: p.arena_size,
            pool_size: p.pool_size,
            arenas_allocated_total: p.arenas_allocated_total,
            arenas_reclaimed: p.arenas_reclaimed,
            arenas_highwater: p.arenas_highwater,
            arenas_now: p.arenas_now,
            arena_bytes: p.arenas_now.saturating_mul(p.arena_size),
            bytes_in_use: p.bytes_in_use,
            bytes_free_blocks: p.bytes_free_blocks,
            unused_pools: p.unused_pools,
            bytes_unused_pools: p.unused_pools.saturating_mul(p.pool_size),
            bytes_pool_headers: p.bytes_pool_headers,
            bytes_quantization: p.bytes_quantization,
            bytes_arena_alignment: p.bytes_arena_alignment,
            classes,
        }
    }
}

impl PymallocSnapshot {
    /// The row of the class of `size`-byte blocks, when it owns a pool.
    pub fn class(&self, size: u32) -> Option<&ClassRow> {
        self.classes.iter().find(|c| c.size == size)
    }
}

/// How one size class changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassChange {
    pub size: u32,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub blocks_before: u64,
    pub blocks_after: u64,
    pub pools_before: u64,
    pub pools_after: u64,
}

impl ClassChange {
    pub fn delta_bytes(&self) -> i64 {
        signed_delta(self.bytes_before, self.bytes_after)
    }

    pub fn delta_blocks(&self) -> i64 {
        signed_delta(self.blocks_before, self.blocks_after)
    }
}

fn signed_delta(before: u64, after: u64) -> i64 {
    let d = i128::from(after) - i128::from(before);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

/// What changed between two snapshots: the totals always, the size classes only where the
/// change is significant (see [`PymallocOptions`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PymallocDiff {
    pub from_t_ns: u64,
    pub to_t_ns: u64,
    pub arenas: i64,
    pub arena_bytes: i64,
    pub bytes_in_use: i64,
    pub bytes_free_blocks: i64,
    pub unused_pools: i64,
    pub allocated_blocks: i64,
    /// Significant changes, largest change of bytes in use first.
    pub classes: Vec<ClassChange>,
    /// Classes whose bytes in use moved, but less than the thresholds.
    pub minor_changes: usize,
    /// The thresholds used.
    pub min_bytes: u64,
    pub min_fraction: f64,
}

impl PymallocDiff {
    /// The changes from `a` to `b`.
    pub fn between(a: &PymallocSnapshot, b: &PymallocSnapshot, opts: &PymallocOptions) -> Self {
        let mut sizes: Vec<u32> = a.classes.iter().chain(&b.classes).map(|c| c.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let empty = ClassRow::default();
        let mut classes = Vec::new();
        let mut minor_changes = 0;
        for size in sizes {
            let before = a.class(size).unwrap_or(&empty);
            let after = b.class(size).unwrap_or(&empty);
            let change = ClassChange {
                size,
                bytes_before: before.bytes_in_use,
                bytes_after: after.bytes_in_use,
                blocks_before: before.blocks_in_use,
                blocks_after: after.blocks_in_use,
                pools_before: before.pools,
                pools_after: after.pools,
            };
            let moved = change.delta_bytes().unsigned_abs();
            if moved == 0 {
                continue;
            }
            let relative = moved as f64 > opts.diff_min_fraction * before.bytes_in_use as f64;
            if moved > opts.diff_min_bytes && relative {
                classes.push(change);
            } else {
                minor_changes += 1;
            }
        }
        classes.sort_by(|x, y| {
            y.delta_bytes()
                .unsigned_abs()
                .cmp(&x.delta_bytes().unsigned_abs())
                .then(x.size.cmp(&y.size))
        });
        PymallocDiff {
            from_t_ns: a.t_ns,
            to_t_ns: b.t_ns,
            arenas: signed_delta(a.arenas_now, b.arenas_now),
            arena_bytes: signed_delta(a.arena_bytes, b.arena_bytes),
            bytes_in_use: signed_delta(a.bytes_in_use, b.bytes_in_use),
            bytes_free_blocks: signed_delta(a.bytes_free_blocks, b.bytes_free_blocks),
            unused_pools: signed_delta(a.unused_pools, b.unused_pools),
            allocated_blocks: signed_delta(a.allocated_blocks, b.allocated_blocks),
            classes,
            minor_changes,
            min_bytes: opts.diff_min_bytes,
            min_fraction: opts.diff_min_fraction,
        }
    }
}

/// How much of what pymalloc holds from the OS is in live blocks, and whether the rest is
/// fragmentation worth explaining.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fragmentation {
    /// True when blocks in use fill less than the set share of the arenas and the idle part is
    /// large: memory held because each arena still has a live block. Not a leak.
    pub fragmented: bool,
    /// What the arenas hold from the OS.
    pub arena_bytes: u64,
    pub bytes_in_use: u64,
    /// `arena_bytes - bytes_in_use`: free blocks, unused pools and overhead, all kept.
    pub idle_bytes: u64,
    /// `bytes_in_use / arena_bytes` (0 when there are no arenas).
    pub usage: f64,
    /// Of the idle bytes: in free blocks of used pools, in unused pools, and lost to headers,
    /// quantization and alignment.
    pub free_block_bytes: u64,
    pub unused_pool_bytes: u64,
    pub overhead_bytes: u64,
    pub arenas_now: u64,
    pub arenas_highwater: u64,
}

impl Fragmentation {
    fn of(s: &PymallocSnapshot, opts: &PymallocOptions) -> Self {
        let idle = s.arena_bytes.saturating_sub(s.bytes_in_use);
        let usage = if s.arena_bytes == 0 {
            0.0
        } else {
            s.bytes_in_use as f64 / s.arena_bytes as f64
        };
        Fragmentation {
            fragmented: s.active
                && s.arena_bytes > 0
                && usage < opts.fragmentation_max_usage
                && idle > opts.fragmentation_min_bytes,
            arena_bytes: s.arena_bytes,
            bytes_in_use: s.bytes_in_use,
            idle_bytes: idle,
            usage,
            free_block_bytes: s.bytes_free_blocks,
            unused_pool_bytes: s.bytes_unused_pools,
            overhead_bytes: s
                .bytes_pool_headers
                .saturating_add(s.bytes_quantization)
                .saturating_add(s.bytes_arena_alignment),
            arenas_now: s.arenas_now,
            arenas_highwater: s.arenas_highwater,
        }
    }
}

/// Model behind `memsleuth report pymalloc`.
#[derive(Debug, Clone, Serialize)]
pub struct PymallocReport {
    pub pid: u32,
    pub argv: Vec<String>,
    pub python_version: String,
    pub end: EndInfo,
    /// Snapshots read, in time order.
    pub snapshots: usize,
    pub first: PymallocSnapshot,
    pub latest: PymallocSnapshot,
    /// From the first snapshot to the latest; `None` with a single snapshot.
    pub diff: Option<PymallocDiff>,
    /// Of the latest snapshot.
    pub fragmentation: Fragmentation,
    /// The shape of `allocated_blocks` over the snapshots; `None` with fewer than three
    /// snapshots.
    pub blocks_trend: Option<Verdict>,
    /// `(t_ns, allocated_blocks, bytes_in_use, arena_bytes)` of every snapshot.
    pub series: Vec<(u64, u64, u64, u64)>,
}

impl PymallocReport {
    /// The report of a capture's `Pymalloc` records; `None` when it has none.
    pub fn from_capture(capture: &Capture, opts: &PymallocOptions) -> Option<Self> {
        let records: Vec<Pymalloc> = capture
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Pymalloc(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        let mut report = Self::from_records(&records, opts)?;
        report.pid = capture.header.pid;
        report.argv = capture.header.argv.clone();
        report.python_version = capture.header.python_version.clone();
        report.end = end_info(capture);
        Some(report)
    }

    /// The report of snapshots alone (any order); `None` when there are none. The capture's
    /// description (`pid`, `end`...) is left empty.
    pub fn from_records(records: &[Pymalloc], opts: &PymallocOptions) -> Option<Self> {
        Self::from_snapshots(records.iter().map(PymallocSnapshot::from).collect(), opts)
    }

    /// The report of snapshots already converted (any order); `None` when there are none.
    pub fn from_snapshots(
        mut snaps: Vec<PymallocSnapshot>,
        opts: &PymallocOptions,
    ) -> Option<Self> {
        snaps.sort_by_key(|s| s.t_ns);
        let first = snaps.first()?.clone();
        let latest = snaps.last()?.clone();
        let diff = (snaps.len() > 1).then(|| PymallocDiff::between(&first, &latest, opts));
        let blocks_trend = (snaps.len() >= 3).then(|| {
            let t: Vec<f64> = snaps.iter().map(|s| s.t_ns as f64 / 1e9).collect();
            let y: Vec<f64> = snaps.iter().map(|s| s.allocated_blocks as f64).collect();
            classify(&t, &y, &opts.blocks_trend)
        });
        Some(PymallocReport {
            pid: 0,
            argv: Vec::new(),
            python_version: String::new(),
            end: EndInfo::default(),
            snapshots: snaps.len(),
            fragmentation: Fragmentation::of(&latest, opts),
            series: snaps
                .iter()
                .map(|s| (s.t_ns, s.allocated_blocks, s.bytes_in_use, s.arena_bytes))
                .collect(),
            first,
            latest,
            diff,
            blocks_trend,
        })
    }

    /// True when the allocated blocks kept growing over the snapshots.
    pub fn blocks_growing(&self) -> bool {
        self.blocks_trend
            .as_ref()
            .is_some_and(|v| v.kind == VerdictKind::Growing)
    }
}

/// How a capture ended, for reports that read only its records.
pub(crate) fn end_info(capture: &Capture) -> EndInfo {
    let trailer = capture.trailer;
    let last_ns = capture
        .records
        .iter()
        .map(|r| match r {
            Record::Sample(s) => s.t_ns,
            Record::Mark(m) => m.t_ns,
            Record::ProcessExit(e) => e.t_ns,
            Record::Census(c) => c.t_ns.saturating_add(c.duration_ns),
            Record::Gc(g) => g.t_ns.saturating_add(g.duration_ns),
            Record::Pymalloc(p) => p.t_ns,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let end_ns = trailer.map_or(last_ns, |t| t.end_ns.max(last_ns));
    let root_exit = capture.records.iter().find_map(|r| match r {
        Record::ProcessExit(e) if e.pid == capture.header.pid => Some(e.status),
        _ => None,
    });
    EndInfo::new(
        trailer,
        capture.damage.as_ref(),
        root_exit.unwrap_or_default(),
        end_ns,
    )
}

#[cfg(test)]
mod tests {
    use memsleuth_format::{CaptureWriter, EndReason, Header, Trailer};

    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    /// A snapshot of 1 MiB arenas holding `classes` as `(size, blocks in use)`, 90% full pools,
    /// with `arenas` arenas (at least enough for the blocks).
    fn snapshot(t_ms: u64, arenas: u64, classes: &[(u32, u64)], blocks: u64) -> Pymalloc {
        let pool = 16 * KIB;
        let classes: Vec<SizeClass> = classes
            .iter()
            .map(|&(size, used)| {
                let per_pool = pool / u64::from(size);
                let pools = (used * 10 / 9).div_ceil(per_pool).max(1);
                SizeClass {
                    size,
                    pools,
                    blocks_in_use: used,
                    blocks_free: pools * per_pool - used,
                }
            })
            .collect();
        let in_use = classes
            .iter()
            .map(|c| c.blocks_in_use * u64::from(c.size))
            .sum::<u64>();
        let free = classes
            .iter()
            .map(|c| c.blocks_free * u64::from(c.size))
            .sum::<u64>();
        let pools: u64 = classes.iter().map(|c| c.pools).sum();
        let arenas = arenas.max((pools * pool).div_ceil(MIB));
        Pymalloc {
            t_ns: t_ms * 1_000_000,
            allocated_blocks: blocks,
            total_refcount: None,
            arena_size: MIB,
            pool_size: pool,
            arenas_allocated_total: arenas + 3,
            arenas_reclaimed: 3,
            arenas_highwater: arenas + 1,
            arenas_now: arenas,
            bytes_in_use: in_use,
            bytes_free_blocks: free,
            unused_pools: (arenas * MIB / pool).saturating_sub(pools),
            bytes_pool_headers: pools * 48,
            bytes_quantization: 0,
            bytes_arena_alignment: 0,
            classes,
        }
    }

    fn capture(snaps: &[Pymalloc]) -> Capture {
        let header = Header {
            tool_version: "test".into(),
            pid: 7,
            argv: vec!["python".into(), "app.py".into()],
            python_version: "3.12.1".into(),
            instruments: vec!["pymalloc".into()],
            ..Header::default()
        };
        let mut w = CaptureWriter::new(Vec::new(), &header).expect("header");
        for s in snaps {
            w.push(&Record::Pymalloc(s.clone()));
            w.flush().expect("flush");
        }
        let end_ns = snaps.last().map_or(0, |s| s.t_ns) + 1_000_000;
        let bytes = w
            .finish(Trailer {
                end_ns,
                reason: EndReason::TargetExited,
                ..Trailer::default()
            })
            .expect("finish");
        Capture::from_reader(bytes.as_slice()).expect("read")
    }

    fn report(snaps: &[Pymalloc]) -> PymallocReport {
        PymallocReport::from_capture(&capture(snaps), &PymallocOptions::default()).expect("report")
    }

    #[test]
    fn memory_held_by_half_empty_arenas_is_fragmentation() {
        // a burst of 3 million 48-byte objects filled 140 arenas; all but a few survivors per
        // arena were freed, so the arenas stay
        let burst = snapshot(0, 0, &[(48, 3_000_000), (64, 20_000)], 3_100_000);
        let after = snapshot(1000, 140, &[(48, 40_000), (64, 20_000)], 150_000);
        let r = report(&[burst, after]);
        let f = &r.fragmentation;
        assert!(f.fragmented, "{f:?}");
        assert_eq!(f.arena_bytes, 140 * MIB);
        assert_eq!(f.bytes_in_use, 40_000 * 48 + 20_000 * 64);
        assert_eq!(f.idle_bytes, 140 * MIB - f.bytes_in_use);
        assert!(f.usage < 0.05, "{}", f.usage);
        assert!(!r.blocks_growing());
        let d = r.diff.as_ref().expect("two snapshots");
        assert_eq!(d.allocated_blocks, -2_950_000);
        assert_eq!(d.classes.len(), 1, "{d:?}");
        assert_eq!(d.classes[0].size, 48);
        assert_eq!(d.classes[0].delta_blocks(), -2_960_000);
        assert_eq!(r.pid, 7);
        assert!(!r.end.cut_short);
        assert!((r.end.duration - 1.001).abs() < 1e-9);
    }

    #[test]
    fn genuine_growth_is_not_fragmentation() {
        // 50,000 blocks more every second, in well-filled arenas
        let snaps: Vec<Pymalloc> = (0..30)
            .map(|i| {
                let n = 100_000 + 50_000 * i;
                snapshot(i * 1000, 0, &[(32, n), (64, 10_000)], n + 60_000)
            })
            .collect();
        let r = report(&snaps);
        assert!(!r.fragmentation.fragmented, "{:?}", r.fragmentation);
        assert!(r.fragmentation.usage > 0.8, "{}", r.fragmentation.usage);
        assert_eq!(r.snapshots, 30);
        let v = r.blocks_trend.as_ref().expect("trend");
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert_eq!(v.reason, crate::VerdictReason::Growing);
        assert!((v.rate - 50_000.0).abs() < 1e-6, "{v:?}");
        assert!(r.blocks_growing());
        let d = r.diff.as_ref().expect("diff");
        assert_eq!(d.classes.len(), 1);
        assert_eq!(d.classes[0].size, 32);
        assert_eq!(d.classes[0].delta_bytes(), 29 * 50_000 * 32);
        assert_eq!(d.minor_changes, 0);
        assert_eq!(r.series.len(), 30);
    }

    #[test]
    fn the_diff_lists_only_significant_classes() {
        let a = snapshot(
            0,
            0,
            &[(16, 100), (32, 1_000), (64, 200_000), (128, 1_000)],
            0,
        );
        // 16: +4 KiB (small); 64: +1% of 12.2 MiB = 128 KiB (large but relatively small);
        // 128: +256 KiB (+2000%); 256: new, 100 KiB
        let b = snapshot(
            5000,
            0,
            &[
                (16, 356),
                (32, 1_000),
                (64, 202_000),
                (128, 3_048),
                (256, 400),
            ],
            0,
        );
        let d = PymallocDiff::between(
            &PymallocSnapshot::from(&a),
            &PymallocSnapshot::from(&b),
            &PymallocOptions::default(),
        );
        let sizes: Vec<u32> = d.classes.iter().map(|c| c.size).collect();
        assert_eq!(sizes, [128, 256]);
        assert_eq!(d.classes[0].delta_bytes(), 2_048 * 128);
        assert_eq!(d.classes[1].bytes_before, 0);
        assert_eq!(d.classes[1].bytes_after, 400 * 256);
        assert_eq!(d.minor_changes, 2);
        assert_eq!((d.from_t_ns, d.to_t_ns), (0, 5_000_000_000));
    }

    #[test]
    fn a_single_snapshot_has_no_diff_and_no_trend() {
        let r = report(&[snapshot(0, 0, &[(32, 1000)], 5000)]);
        assert_eq!(r.snapshots, 1);
        assert!(r.diff.is_none());
        assert!(r.blocks_trend.is_none());
        assert!(!r.fragmentation.fragmented);
        assert_eq!(r.first, r.latest);
        assert_eq!(r.latest.class(32).map(|c| c.bytes_in_use), Some(32_000));
    }

    #[test]
    fn small_slack_is_not_called_fragmentation() {
        // 2 arenas a tenth used: under half, but the gap is under 4 MiB
        let r = report(&[snapshot(0, 2, &[(64, 3_000)], 4_000)]);
        assert!(r.fragmentation.usage < 0.5);
        assert!(!r.fragmentation.fragmented);
    }

    #[test]
    fn pymalloc_off_is_inactive_not_fragmented() {
        let off = Pymalloc {
            allocated_blocks: 12_345,
            ..Pymalloc::default()
        };
        let r = report(&[off]);
        assert!(!r.latest.active);
        assert_eq!(r.latest.allocated_blocks, 12_345);
        assert!(!r.fragmentation.fragmented);
    }

    #[test]
    fn no_snapshots_no_report() {
        assert!(PymallocReport::from_capture(&capture(&[]), &PymallocOptions::default()).is_none());
        assert!(PymallocReport::from_records(&[], &PymallocOptions::default()).is_none());
    }

    #[test]
    fn snapshots_are_put_in_time_order() {
        let late = snapshot(2000, 0, &[(32, 9_000)], 9_000);
        let early = snapshot(1000, 0, &[(32, 1_000)], 1_000);
        let r = PymallocReport::from_records(&[late, early], &PymallocOptions::default())
            .expect("report");
        assert_eq!(r.first.t_ns, 1_000_000_000);
        assert_eq!(r.latest.allocated_blocks, 9_000);
    }
}
