//! The streaming replay of a capture's allocation events.
//!
//! A capture is read record by record (never whole): frames and stack nodes go into tables,
//! event batches into a merger that hands events to a [`Visitor`] in global time order. Each
//! analysis is a visitor; the ones that need to know how the run ended before they start (the
//! per-window series, the snapshot at the high-water mark) replay the file a second time with the
//! tables of the first pass.
//!
//! Ordering. Events of one thread arrive in order, but threads interleave only through their
//! times, and a later record of one thread may hold events earlier than another thread's earlier
//! record (the recorder flushes every thread's batch together, at least once a second). The
//! merger holds batches and releases their events up to a watermark, merged by time: the latest
//! time every known thread has reached, or, when some thread is idle, what the chunks prove. A
//! thread is known from its `Thread` record, which the recorder writes before the first batch
//! that names it, so a thread appearing in the middle of a flush cannot be overtaken. A
//! single-threaded capture is released batch by batch.
//!
//! What the chunks prove: the recorder ends a chunk only after a pass that drained every
//! thread's ring and wrote every thread's pending batch. An event in a later chunk was not in
//! its ring when that pass began, so it was stamped after the previous chunk was written, hence
//! after every event of the chunks before it, give or take [`CHUNK_SLACK_NS`]. So once chunk `k`
//! is complete, every event up to the latest time of chunks `..k-1` (less the slack) can go,
//! whatever idle threads there are; without this, one idle thread (the census thread is one)
//! held back every event of the last [`REORDER_LAG_NS`], hundreds of megabytes at high rates.

use std::io::Read;

use memsleuth_format::{
    AllocEvent, EventKind, ExitStatus, FormatError, Frame, Header, Reader, Record, StackNode,
    Trailer,
};
use rustc_hash::FxHashMap;

use crate::AnalysisError;

/// How long an event may be held back waiting for other threads' earlier events when some
/// thread is idle: twice the recorder's longest flush interval (one second), so a batch flushed
/// late is still merged in time order.
pub(crate) const REORDER_LAG_NS: u64 = 2_000_000_000;

/// How much earlier than the chunks before it an event of a later chunk may be stamped: the
/// hooks' coarse clock lags by at most one recorder pass (a few milliseconds), a thread can be
/// descheduled between stamping an event and publishing it, and the tick-to-nanosecond rate is
/// refined as a recording goes on. Generous against those, small against a flush interval.
pub(crate) const CHUNK_SLACK_NS: u64 = 25_000_000;

/// Stack ids below this are looked up in a plain vector; larger ones (never written by the
/// recorder, which numbers stacks from 1) in a hash map, so a hostile id cannot make the replay
/// allocate gigabytes.
const DENSE_STACK_IDS: u32 = 1 << 22;

/// Longest parent chain followed when resolving a stack; deeper chains (or cycles in a damaged
/// capture) are cut there.
pub(crate) const MAX_DEPTH: usize = 4096;

/// A node of the stack prefix tree, by slot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Node {
    pub id: u32,
    pub parent: u32,
    pub frame: u32,
    /// False for a stack id used by an event but never defined by a `Stack` record.
    pub known: bool,
}

/// Stack ids mapped to dense slots; slot 0 is the empty stack (id 0).
#[derive(Debug, Clone)]
pub(crate) struct Stacks {
    dense: Vec<u32>,
    sparse: FxHashMap<u32, u32>,
    pub nodes: Vec<Node>,
    cache: (u32, u32),
}

impl Default for Stacks {
    fn default() -> Self {
        Stacks {
            dense: vec![1],
            sparse: FxHashMap::default(),
            nodes: vec![Node {
                known: true,
                ..Node::default()
            }],
            cache: (0, 0),
        }
    }
}

impl Stacks {
    /// Slot of a stack id, if it was seen.
    pub fn get(&self, id: u32) -> Option<u32> {
        if id < DENSE_STACK_IDS {
            match self.dense.get(id as usize) {
                Some(&s) if s > 0 => Some(s - 1),
                _ => None,
            }
        } else {
            self.sparse.get(&id).copied()
        }
    }

    /// Slot of a stack id, created (as an unknown node) on first sight.
    #[inline]
    pub fn slot(&mut self, id: u32) -> u32 {
        if self.cache.0 == id {
            return self.cache.1;
        }
        let slot = match self.get(id) {
            Some(s) => s,
            None => self.insert(id),
        };
        self.cache = (id, slot);
        slot
    }

    fn insert(&mut self, id: u32) -> u32 {
        let slot = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes.push(Node {
            id,
            ..Node::default()
        });
        if id < DENSE_STACK_IDS {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, 0);
            }
            self.dense[i] = slot.saturating_add(1);
        } else {
            self.sparse.insert(id, slot);
        }
        slot
    }

    /// Records a node of the prefix tree. Idempotent, so a second pass may feed them again.
    pub fn define(&mut self, n: StackNode) {
        if n.id == 0 {
            return;
        }
        let slot = self.slot(n.id);
        if let Some(node) = self.nodes.get_mut(slot as usize) {
            *node = Node {
                id: n.id,
                parent: n.parent,
                frame: n.frame,
                known: true,
            };
        }
    }

    /// Number of slots (the empty stack included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// Allocation weights: in a capture sampled by bytes (Poisson, mean `rate` bytes between
/// samples) a recorded block of `s` bytes was kept with probability `1 - exp(-s/rate)`, so it
/// stands for `s / p` bytes and `1 / p` blocks; the estimates are unbiased.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Weights {
    rate: f64,
}

impl Weights {
    pub fn new(sample_bytes: u64) -> Self {
        Weights {
            rate: sample_bytes as f64,
        }
    }

    /// Estimated (bytes, blocks) one recorded allocation of `size` bytes stands for.
    #[inline]
    pub fn of(self, size: u64) -> (f64, f64) {
        let s = size as f64;
        if self.rate <= 0.0 {
            (s, 1.0)
        } else if size == 0 {
            (0.0, 1.0)
        } else {
            let p = -(-s / self.rate).exp_m1();
            if p > 0.0 {
                (s / p, 1.0 / p)
            } else {
                (s, 1.0)
            }
        }
    }
}

/// A series over time with a bounded number of points: time is cut into at most `cap` buckets
/// of equal width, the width doubling whenever the run outgrows them. Each bucket keeps its
/// largest value (and when it was seen) and its last value.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    width: u64,
    cap: usize,
    buckets: Vec<Option<Bucket>>,
    current: usize,
    current_end: u64,
    current_start: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    t_max: u64,
    max: f64,
    last: f64,
}

impl Series {
    pub fn new(cap: usize) -> Self {
        Series {
            width: 1_000_000,
            cap: cap.max(2),
            buckets: Vec::new(),
            current: usize::MAX,
            current_end: 0,
            current_start: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, t: u64, v: f64) {
        if self.current != usize::MAX && t >= self.current_start && t < self.current_end {
            if let Some(Some(b)) = self.buckets.get_mut(self.current) {
                if v > b.max {
                    b.max = v;
                    b.t_max = t;
                }
                b.last = v;
                return;
            }
        }
        self.push_slow(t, v);
    }

    fn push_slow(&mut self, t: u64, v: f64) {
        let mut i = (t / self.width) as usize;
        while i >= self.cap {
            self.halve();
            i = (t / self.width) as usize;
        }
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, None);
        }
        match &mut self.buckets[i] {
            Some(b) => {
                if v > b.max {
                    b.max = v;
                    b.t_max = t;
                }
                b.last = v;
            }
            empty => {
                *empty = Some(Bucket {
                    t_max: t,
                    max: v,
                    last: v,
                })
            }
        }
        self.current = i;
        self.current_start = i as u64 * self.width;
        self.current_end = self.current_start.saturating_add(self.width);
    }

    fn halve(&mut self) {
        let merged: Vec<Option<Bucket>> = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut out: Option<Bucket> = None;
                for b in pair.iter().flatten() {
                    out = Some(match out {
                        None => *b,
                        Some(o) => Bucket {
                            t_max: if b.max > o.max { b.t_max } else { o.t_max },
                            max: o.max.max(b.max),
                            last: b.last,
                        },
                    });
                }
                out
            })
            .collect();
        self.buckets = merged;
        self.width = self.width.saturating_mul(2);
        self.current = usize::MAX;
    }

    /// The points: the largest value of each bucket at the time it was seen. With `carry`, a
    /// bucket without values repeats the last value before it (a level that did not change);
    /// without, it is left out (nothing was measured).
    pub fn points(&self, carry: bool) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity(self.buckets.len());
        let mut last: Option<f64> = None;
        for (i, b) in self.buckets.iter().enumerate() {
            match b {
                Some(b) => {
                    out.push((b.t_max, to_u64(b.max)));
                    last = Some(b.last);
                }
                None if carry => {
                    if let Some(v) = last {
                        out.push((i as u64 * self.width, to_u64(v)));
                    }
                }
                None => {}
            }
        }
        out
    }
}

/// Rounds a non-negative estimate to whole units; negative drift and NaN become 0.
#[inline]
pub(crate) fn to_u64(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// What a replay learns about a capture besides its events.
#[derive(Debug)]
pub(crate) struct Tables {
    pub header: Header,
    pub trailer: Option<Trailer>,
    pub damage: Option<FormatError>,
    pub stacks: Stacks,
    pub frames: FxHashMap<u32, Frame>,
    /// 1.5: native frames and the objects they lie in, named on demand by `symbols`.
    pub native_frames: FxHashMap<u32, memsleuth_format::NativeFrame>,
    pub mappings: FxHashMap<u32, memsleuth_format::Mapping>,
    pub symbols: std::sync::Mutex<super::symbols::Symbolizer>,
    /// RSS of the root process over time.
    pub rss: Series,
    /// The bytes memsleuth held in the root process over time (format 1.4), when it ran there.
    pub own: Series,
    /// Open descriptors and threads of the root process at each sample (format 1.3).
    pub counts: Vec<crate::verdict::CountSample>,
    pub marks: Vec<(u64, String)>,
    pub root_exit: ExitStatus,
    /// Latest time of any record.
    pub last_t: u64,
    /// Latest event time.
    pub last_event_t: u64,
    pub event_records: u64,
    pub allocs: u64,
    pub frees: u64,
    pub threads: u32,
    /// 1.2: who held surviving blocks when tracking stopped (or the main code ended), and,
    /// from `run`, who held the largest sites' blocks while the program ran.
    pub holders: Vec<memsleuth_format::Holder>,
    /// For each holder, in order: the slot of its block (of the stack it names, or of the block
    /// alive at its address when the holder was read), and whether its search began at or
    /// after the main code's end (the time of the census it follows).
    pub holder_reads: Vec<(Option<u32>, bool)>,
    /// Object censuses and gc collections (the `objects` instrument), kept whole: they are
    /// small, and the verdict weighs them with the leaks without a pass of its own.
    pub censuses: Vec<memsleuth_format::Census>,
    pub collections: Vec<memsleuth_format::GcCollection>,
    /// Most events the merger held back at once (the replay's memory, beyond its tables).
    pub peak_held: usize,
    /// Memory samples read: the count when no trailer gives it.
    pub samples: u64,
    /// Chunks the reader read (the header's included): the flushes that reached the file, when
    /// no trailer counts them.
    pub chunks: u64,
}

impl Tables {
    pub(crate) fn new(header: Header) -> Self {
        Tables {
            header,
            trailer: None,
            damage: None,
            stacks: Stacks::default(),
            frames: FxHashMap::default(),
            native_frames: FxHashMap::default(),
            mappings: FxHashMap::default(),
            symbols: std::sync::Mutex::default(),
            rss: Series::new(2000),
            own: Series::new(2000),
            counts: Vec::new(),
            marks: Vec::new(),
            root_exit: ExitStatus::Unknown,
            last_t: 0,
            last_event_t: 0,
            event_records: 0,
            allocs: 0,
            frees: 0,
            threads: 0,
            holders: Vec::new(),
            holder_reads: Vec::new(),
            censuses: Vec::new(),
            collections: Vec::new(),
            peak_held: 0,
            samples: 0,
            chunks: 0,
        }
    }

    /// Where native frame `id` is, named from its object's file (the unnamed address when the
    /// file cannot be read).
    pub fn native_location(&self, id: u32) -> crate::profile::Location {
        let Some(frame) = self.native_frames.get(&id) else {
            return crate::profile::Location::default();
        };
        let mapping = self.mappings.get(&frame.mapping);
        match self.symbols.lock() {
            Ok(mut s) => s.locate(frame, mapping),
            Err(poisoned) => poisoned.into_inner().locate(frame, mapping),
        }
    }

    /// True when the capture holds allocation tracking: events, or an allocation instrument
    /// that was on (a program that allocated nothing while tracked).
    pub fn has_allocations(&self) -> bool {
        self.event_records > 0
            || self
                .header
                .instruments
                .iter()
                .any(|i| i == "python" || i == "native")
    }

    /// End of the capture, ns since start: the trailer's, or the last thing seen.
    pub fn end_ns(&self) -> u64 {
        match self.trailer {
            Some(t) => t.end_ns.max(self.last_event_t),
            None => self.last_t,
        }
    }
}

/// An analysis fed by the replay, one event at a time, in time order.
pub(crate) trait Visitor {
    /// An allocation; `slot` is its stack's slot in [`Tables::stacks`].
    fn alloc(&mut self, ev: &AllocEvent, slot: u32);
    /// A free (maybe of an address never seen allocated).
    fn free(&mut self, ev: &AllocEvent);
    /// A mark, on the first pass, before any event stamped after it (phase marks keep that
    /// promise; see `memsleuth_format::PHASE_MAIN_END`).
    fn mark(&mut self, _t_ns: u64, _label: &str) {}
    /// The slot of the block alive at `addr` now, if the visitor follows live blocks: a holder
    /// record names its block by address, which the program may reuse once the block is freed.
    fn live_slot(&self, _addr: u64) -> Option<u32> {
        None
    }
    /// When the program's main code ended, once its mark has been read.
    fn main_end(&self) -> Option<u64> {
        None
    }
}

/// Where a replay stops.
#[derive(Clone, Copy)]
pub(crate) struct Limits<'a> {
    /// Events after this time are left out.
    pub at_ns: Option<u64>,
    /// Stop after this many events (the second pass stops where the first did, or earlier).
    pub max_events: u64,
    /// Asked at the end of each chunk: once it says so, stop there (a pass read by another
    /// thread is wanted now, or its reader has other work due), to go on from that chunk's end
    /// later (see `LeakPass::read_to_unless`).
    pub stop: Option<&'a dyn Fn() -> bool>,
}

impl Default for Limits<'_> {
    fn default() -> Self {
        Limits {
            at_ns: None,
            max_events: u64::MAX,
            stop: None,
        }
    }
}

/// Events of one record not handed on yet.
struct Batch {
    events: Vec<AllocEvent>,
    pos: usize,
}

/// Merge order of an event against the heads of other batches: time, then frees before
/// allocations (the hook stamps a free before passing it on and an allocation after it returns,
/// so at equal times a reused address was freed first). Within a batch the recorded order is
/// kept whatever the keys say.
#[inline]
fn key(e: &AllocEvent) -> (u64, u8) {
    (e.t_ns, u8::from(e.kind == EventKind::Alloc))
}

/// K-way merge of per-thread batches by time (see the module documentation). Held batches are
/// kept in arrival order; a release merges the parts of them up to the watermark by their head
/// events, taking runs from one batch while it stays ahead of the others (one or two threads
/// are the common case, so a scan of the heads beats a heap).
#[derive(Default)]
struct Merger {
    held: Vec<Batch>,
    /// Events in `held` not handed on yet, and the most there ever were.
    held_events: usize,
    peak_held: usize,
    last_t: FxHashMap<u32, u64>,
    max_t: u64,
    /// Every event up to here has been read (see the module documentation on chunks).
    complete_to: u64,
    /// The latest event time when the current chunk began.
    max_t_at_chunk: u64,
    /// `(batch, position, end)` of the batches taking part in a release.
    cursors: Vec<(usize, usize, usize)>,
}

impl Merger {
    fn know_thread(&mut self, thread: u32) {
        self.last_t.entry(thread).or_insert(0);
    }

    fn push(&mut self, thread: u32, last: u64, events: Vec<AllocEvent>) {
        let seen = self.last_t.entry(thread).or_insert(0);
        *seen = (*seen).max(last);
        self.max_t = self.max_t.max(last);
        if !events.is_empty() {
            self.held_events += events.len();
            self.peak_held = self.peak_held.max(self.held_events);
            self.held.push(Batch { events, pos: 0 });
        }
    }

    /// A new chunk begins: the one before it is complete.
    fn chunk_ended(&mut self) {
        self.complete_to = self.max_t_at_chunk.saturating_sub(CHUNK_SLACK_NS);
        self.max_t_at_chunk = self.max_t;
    }

    fn watermark(&self) -> u64 {
        let all_reached = self.last_t.values().copied().min().unwrap_or(0);
        all_reached
            .max(self.max_t.saturating_sub(REORDER_LAG_NS))
            .max(self.complete_to)
    }

    /// Hands every held event up to `watermark` to `sink`, in order. False when the sink wants
    /// no more.
    fn release<V: Visitor>(&mut self, watermark: u64, sink: &mut Sink<'_, V>) -> bool {
        // one batch wholly below the watermark (the single-threaded case)
        if let [only] = self.held.as_slice() {
            if only.events.last().is_some_and(|e| e.t_ns <= watermark) {
                let Some(batch) = self.held.pop() else {
                    return true;
                };
                self.held_events = 0;
                return batch.events[batch.pos..].iter().all(|ev| sink.event(ev));
            }
        }
        self.cursors.clear();
        for (i, b) in self.held.iter().enumerate() {
            let n = b.events[b.pos..].partition_point(|e| e.t_ns <= watermark);
            if n > 0 {
                self.cursors.push((i, b.pos, b.pos + n));
            }
        }
        let mut going = true;
        'merge: loop {
            // the batch with the earliest head (first in arrival order on ties), and the
            // runner-up's head
            let mut best = usize::MAX;
            let mut best_key = (u64::MAX, u8::MAX);
            let mut second = (u64::MAX, u8::MAX);
            for (ci, &(b, pos, end)) in self.cursors.iter().enumerate() {
                if pos >= end {
                    continue;
                }
                let k = key(&self.held[b].events[pos]);
                if k < best_key {
                    second = best_key;
                    best_key = k;
                    best = ci;
                } else if k < second {
                    second = k;
                }
            }
            let Some(cursor) = self.cursors.get_mut(best) else {
                break;
            };
            let events = &self.held[cursor.0].events;
            loop {
                if !sink.event(&events[cursor.1]) {
                    going = false;
                    break 'merge;
                }
                cursor.1 += 1;
                if cursor.1 >= cursor.2 || key(&events[cursor.1]) >= second {
                    break;
                }
            }
        }
        for &(b, pos, _) in &self.cursors {
            self.held_events -= pos - self.held[b].pos;
            self.held[b].pos = pos;
        }
        self.held.retain(|b| b.pos < b.events.len());
        going
    }
}

/// Opens a capture and reads its header.
pub(crate) fn open<R: Read>(input: R) -> Result<(Reader<R>, Header), AnalysisError> {
    let mut reader = Reader::new(input)?;
    match reader.next_record() {
        Ok(Some(Record::Header(h))) => Ok((reader, h)),
        Ok(Some(_)) => Err(FormatError::MissingHeader.into()),
        Ok(None) => Err(FormatError::Truncated {
            offset: reader.offset(),
            what: "the capture ends before its header",
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// First pass: builds the tables while feeding `visitor`. Damage ends the replay early and is
/// kept in the tables; only an unreadable header is an error.
pub(crate) fn first_pass<R: Read, V: Visitor>(
    input: R,
    limits: Limits,
    make: impl FnOnce(&Header) -> V,
) -> Result<(Tables, V), AnalysisError> {
    let (mut replay, header) = Replay::open(input)?;
    let mut visitor = make(&header);
    let mut tables = Tables::new(header);
    replay.advance(&mut tables, true, limits, &mut visitor);
    Ok((tables, visitor))
}

/// A later pass over the same capture with the first pass' tables: stacks and frames are known,
/// series and counts are not collected again. Returns the number of events handed on.
pub(crate) fn next_pass<R: Read, V: Visitor>(
    input: R,
    tables: &mut Tables,
    limits: Limits,
    visitor: &mut V,
) -> Result<u64, AnalysisError> {
    let (mut replay, _) = Replay::open(input)?;
    Ok(replay.advance(tables, false, limits, visitor))
}

/// Hands events to a visitor, resolving stack slots and counting.
struct Sink<'a, V> {
    stacks: &'a mut Stacks,
    visitor: &'a mut V,
    handed: u64,
    max: u64,
}

impl<V: Visitor> Sink<'_, V> {
    #[inline]
    fn event(&mut self, ev: &AllocEvent) -> bool {
        if self.handed >= self.max {
            return false;
        }
        self.handed += 1;
        match ev.kind {
            EventKind::Alloc => {
                let slot = self.stacks.slot(ev.stack);
                self.visitor.alloc(ev, slot);
            }
            EventKind::Free => self.visitor.free(ev),
        }
        true
    }
}

/// A replay that can stop at the end of what a capture holds so far and go on from there once
/// it holds more: `run` analyses its capture at the end of the program's main code, while the
/// program still has its shutdown to run, and reads only what came after at the very end.
pub(crate) struct Replay<R: Read> {
    reader: Reader<R>,
    merger: Merger,
    chunk_end: u64,
}

impl<R: Read> Replay<R> {
    /// Opens a capture and reads its header.
    pub(crate) fn open(input: R) -> Result<(Replay<R>, Header), AnalysisError> {
        let (reader, header) = open(input)?;
        let chunk_end = reader.offset();
        let replay = Replay {
            reader,
            merger: Merger::default(),
            chunk_end,
        };
        Ok((replay, header))
    }

    /// The capture's input, to let it grow between two calls of [`Replay::advance`].
    pub(crate) fn input_mut(&mut self) -> &mut R {
        self.reader.get_mut()
    }

    /// Bytes of the capture read so far.
    pub(crate) fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// Reads on to the end of the input (or to damage, or to `limits.max_events`), handing
    /// events to `visitor` in time order; every event read is handed on by the time it
    /// returns. Returns the number of events handed on.
    pub(crate) fn advance<V: Visitor>(
        &mut self,
        tables: &mut Tables,
        first: bool,
        limits: Limits,
        visitor: &mut V,
    ) -> u64 {
        run(self, tables, first, limits, visitor)
    }
}

fn run<R: Read, V: Visitor>(
    replay: &mut Replay<R>,
    tables: &mut Tables,
    first: bool,
    limits: Limits,
    visitor: &mut V,
) -> u64 {
    let Replay {
        reader,
        merger,
        chunk_end,
    } = replay;
    let at = limits.at_ns.unwrap_or(u64::MAX);
    let root = tables.header.pid;
    let mut sink = Sink {
        stacks: &mut tables.stacks,
        visitor,
        handed: 0,
        max: limits.max_events,
    };
    let mut going = true;
    while going {
        if reader.at_chunk_end() && limits.stop.is_some_and(|stop| stop()) {
            break;
        }
        let record = match reader.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                if first {
                    tables.damage = Some(e);
                }
                break;
            }
        };
        if reader.offset() != *chunk_end {
            // the record opened a new chunk (the offset moves only when one is loaded)
            *chunk_end = reader.offset();
            merger.chunk_ended();
            going = merger.release(merger.watermark(), &mut sink);
        }
        match record {
            Record::Events(batch) => {
                let last = batch.events.last().map_or(0, |e| e.t_ns);
                if first {
                    tables.event_records += 1;
                    tables.last_event_t = tables.last_event_t.max(last);
                    tables.last_t = tables.last_t.max(last);
                    let frees = batch
                        .events
                        .iter()
                        .filter(|e| e.kind == EventKind::Free)
                        .count() as u64;
                    tables.frees += frees;
                    tables.allocs += batch.events.len() as u64 - frees;
                }
                let mut events = batch.events;
                if at != u64::MAX {
                    // times within a batch never decrease
                    let keep = events.partition_point(|e| e.t_ns <= at);
                    events.truncate(keep);
                }
                merger.push(batch.thread, last, events);
                let mark = merger.watermark();
                going = merger.release(mark, &mut sink);
            }
            Record::Stack(n) => sink.stacks.define(n),
            Record::Frame(f) if first || !tables.frames.contains_key(&f.id) => {
                tables.frames.insert(f.id, f);
            }
            Record::NativeFrame(f) => {
                tables.native_frames.insert(f.id, f);
            }
            Record::Mapping(m) => {
                tables.mappings.insert(m.id, m);
            }
            Record::Thread(t) => {
                merger.know_thread(t.id);
                if first {
                    tables.threads += 1;
                }
            }
            Record::Sample(s) if first => {
                tables.samples += 1;
                tables.last_t = tables.last_t.max(s.t_ns);
                let reading = s.readings.iter().find(|r| r.pid == root);
                if let Some(rss) = reading.and_then(|r| r.rss) {
                    tables.rss.push(s.t_ns, rss as f64);
                }
                if let Some(own) = reading.and_then(|r| r.own) {
                    tables.own.push(s.t_ns, own as f64);
                }
                if let Some(r) = reading.filter(|r| r.fds.is_some() || r.threads.is_some()) {
                    tables.counts.push(crate::verdict::CountSample {
                        t_ns: s.t_ns,
                        fds: r.fds,
                        threads: r.threads,
                    });
                }
            }
            Record::Mark(m) if first => {
                tables.last_t = tables.last_t.max(m.t_ns);
                sink.visitor.mark(m.t_ns, &m.label);
                tables.marks.push((m.t_ns, m.label));
            }
            Record::ProcessExit(x) if first => {
                tables.last_t = tables.last_t.max(x.t_ns);
                if x.pid == root && x.status != ExitStatus::Unknown {
                    tables.root_exit = x.status;
                }
            }
            Record::Trailer(t) if first => tables.trailer = Some(t),
            Record::Holder(h) if first => {
                // a holder searched for a site's block names the stack that allocated it;
                // one of an instance names none, and its block is looked up
                let alive = sink.visitor.live_slot(h.addr);
                let slot = match h.stack {
                    0 => alive,
                    // the block offered may have been freed and its address reused before
                    // the search found an object there: only the same stack's block counts
                    stack => sink.stacks.get(stack).filter(|&s| alive == Some(s)),
                };
                // holders follow the census of their search: one the census thread began
                // while the program ran may reach the file after the main code's end is
                // marked, and it is still a search made while the program ran (no script
                // globals among its roots, the main frame maybe gone: "held from C")
                // (a holder with no census before it is the end's: older captures)
                let searched_at = tables.censuses.last().map(|c| c.t_ns);
                let after = sink
                    .visitor
                    .main_end()
                    .is_some_and(|end| searched_at.is_none_or(|t| t >= end));
                tables.holder_reads.push((slot, after));
                tables.holders.push(h);
            }
            Record::Census(c) if first => tables.censuses.push(c),
            Record::Gc(g) if first => tables.collections.push(g),
            _ => {}
        }
    }
    if going {
        merger.release(u64::MAX, &mut sink);
    }
    if first {
        tables.peak_held = merger.peak_held;
        // the first pass reads to the end or the damage: every chunk that reached the file
        tables.chunks = reader.chunks();
    }
    sink.handed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocs::testkit::{ms, Cap};

    /// Event times in the order handed on.
    #[derive(Default)]
    struct Times(Vec<(u64, bool)>);

    impl Visitor for Times {
        fn alloc(&mut self, ev: &AllocEvent, _slot: u32) {
            self.0.push((ev.t_ns, true));
        }
        fn free(&mut self, ev: &AllocEvent) {
            self.0.push((ev.t_ns, false));
        }
    }

    #[test]
    fn an_idle_thread_does_not_hold_back_the_busy_one() {
        // thread 2 (a census thread, say) allocates once and then sleeps; thread 1 allocates and
        // frees 1,000 blocks per 100 ms chunk for 10 s
        let mut c = Cap::new();
        let s = c.stack("main@app.py:1 > work@app.py:2");
        c.on(2).alloc(0.0, 0x10, 8, s);
        c.flush();
        for chunk in 0..100u64 {
            for i in 0..500u64 {
                let t = chunk as f64 * 100.0 + i as f64 * 0.2;
                let addr = 0x1000 + i * 16;
                c.on(1).alloc(t, addr, 16, s).free(t + 0.1, addr);
            }
            c.flush();
        }
        // thread 2 wakes up: a free stamped 30 ms before the last event of the chunk before
        c.on(2).free(9_969.9, 0x10);
        c.flush();
        let bytes = c.finish(10_000.0);
        let (tables, times) =
            first_pass(&bytes[..], Limits::default(), |_| Times::default()).expect("replay");
        // at most the last two chunks and the slack are held (2 s of them were, before)
        assert!(tables.peak_held <= 3 * 1000, "{}", tables.peak_held);
        assert_eq!(times.0.len(), 100 * 1000 + 2);
        assert!(times.0.windows(2).all(|w| w[0].0 <= w[1].0), "out of order");
        assert!(times.0.contains(&(ms(9_969.9), false)));
    }

    #[test]
    fn weights_are_identity_without_sampling() {
        let w = Weights::new(0);
        assert_eq!(w.of(100), (100.0, 1.0));
        let w = Weights::new(1000);
        let (b, c) = w.of(1000);
        let p = 1.0 - (-1.0f64).exp();
        assert!((b - 1000.0 / p).abs() < 1e-9);
        assert!((c - 1.0 / p).abs() < 1e-12);
        // huge blocks are always sampled: weight 1
        assert_eq!(w.of(1 << 40), ((1u64 << 40) as f64, 1.0));
        assert_eq!(w.of(0), (0.0, 1.0));
    }

    #[test]
    fn series_stays_bounded_and_keeps_the_peak() {
        let mut s = Series::new(100);
        for i in 0..100_000u64 {
            let v = if i == 51_234 { 1e9 } else { i as f64 };
            s.push(i * 1_000_000, v);
        }
        let pts = s.points(true);
        assert!(pts.len() <= 100, "{}", pts.len());
        assert!(pts.len() >= 50, "{}", pts.len());
        assert!(pts.contains(&(51_234_000_000, 1_000_000_000)));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn series_carries_levels_over_quiet_buckets() {
        let mut s = Series::new(2000);
        s.push(0, 5.0);
        s.push(10_000_000, 7.0);
        let carried = s.points(true);
        assert_eq!(carried.first(), Some(&(0, 5)));
        assert_eq!(carried.last(), Some(&(10_000_000, 7)));
        assert_eq!(carried.len(), 11);
        assert_eq!(s.points(false).len(), 2);
    }

    #[test]
    fn stacks_map_ids_to_slots() {
        let mut s = Stacks::default();
        assert_eq!(s.slot(0), 0);
        s.define(StackNode {
            id: 5,
            parent: 0,
            frame: 9,
        });
        let five = s.slot(5);
        assert_eq!(s.get(5), Some(five));
        let big = s.slot(u32::MAX);
        assert_ne!(big, five);
        assert_eq!(s.get(u32::MAX), Some(big));
        assert!(!s.nodes[big as usize].known);
        assert!(s.nodes[five as usize].known);
        // defining again keeps the slot
        s.define(StackNode {
            id: 5,
            parent: 0,
            frame: 9,
        });
        assert_eq!(s.slot(5), five);
        assert_eq!(s.len(), 3);
    }
}
