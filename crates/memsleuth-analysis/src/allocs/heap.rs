//! The live heap: every block allocated while tracking and not yet freed, replayed event by
//! event, with per-stack totals and the tracked heap over time.

use memsleuth_format::{AllocEvent, FormatError};

use super::addr_hash::AddrMap;
use super::replay::{to_u64, Series, Tables, Visitor, Weights};
use super::slot_series::SlotSeries;
use super::{CaptureInfo, HeapInfo};
use crate::timeline::EndInfo;

/// A live block. 24 bytes; with its address as the key, 32 per entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    pub size: u64,
    pub t: u64,
    pub slot: u32,
}

/// Totals of one stack slot, weighted (estimates when sampled).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotStats {
    pub alloc_bytes: f64,
    pub alloc_blocks: f64,
    pub freed_bytes: f64,
    pub freed_blocks: f64,
    /// Time of the slot's first allocation (`u64::MAX` before it).
    pub first_t: u64,
}

impl Default for SlotStats {
    fn default() -> Self {
        SlotStats {
            alloc_bytes: 0.0,
            alloc_blocks: 0.0,
            freed_bytes: 0.0,
            freed_blocks: 0.0,
            first_t: u64::MAX,
        }
    }
}

/// The replay's main visitor.
#[derive(Debug)]
pub(crate) struct LiveHeap {
    pub weights: Weights,
    pub live: AddrMap<Block>,
    pub slots: Vec<SlotStats>,
    pub bytes: f64,
    pub blocks: f64,
    pub peak_bytes: f64,
    pub peak_blocks: f64,
    pub peak_t: u64,
    /// Events handled when the peak was reached (a second pass stops there to see it).
    pub peak_index: u64,
    pub index: u64,
    pub series: Series,
    pub untracked_frees: u64,
    pub reused_live: u64,
    /// End of the program's main code (its phase mark), once the replay has read it.
    pub main_end: Option<u64>,
    /// Blocks allocated by the end of the main code and freed after it (by the program's
    /// shutdown): still alive when the program's own time ended. With their addresses: the
    /// holders found for them at the main code's end name them by address.
    pub freed_late: Vec<(u64, Block)>,
    /// Keep the series and per-slot totals (off for a snapshot pass).
    full: bool,
    /// Every slot's live bytes over time (the leak report's site series), when asked for.
    pub by_slot: Option<SlotSeries>,
    /// Changes after this time (the leaks' time, when chosen) stay out of `by_slot`, as do
    /// those after the main code's end.
    pub until: u64,
}

impl LiveHeap {
    pub fn new(weights: Weights, full: bool) -> Self {
        LiveHeap {
            weights,
            live: AddrMap::default(),
            slots: Vec::new(),
            bytes: 0.0,
            blocks: 0.0,
            peak_bytes: 0.0,
            peak_blocks: 0.0,
            peak_t: 0,
            peak_index: 0,
            index: 0,
            series: Series::new(2000),
            untracked_frees: 0,
            reused_live: 0,
            main_end: None,
            freed_late: Vec::new(),
            full,
            by_slot: None,
            until: u64::MAX,
        }
    }

    /// Also follows every slot's live bytes, in at most `windows` windows over the run, up to
    /// `until` (see [`SlotSeries`]).
    pub fn with_slot_series(mut self, windows: u32, until: u64) -> Self {
        self.by_slot = Some(SlotSeries::new(windows));
        self.until = until;
        self
    }

    /// Adds to a slot's series, unless the change comes after the leaks' time.
    #[inline]
    fn follow(&mut self, slot: u32, t: u64, delta: f64) {
        if let Some(series) = self.by_slot.as_mut() {
            if t <= self.until && self.main_end.is_none_or(|end| t <= end) {
                series.add(slot, t, delta);
            }
        }
    }

    #[inline]
    fn slot_mut(&mut self, slot: u32) -> &mut SlotStats {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, SlotStats::default());
        }
        &mut self.slots[i]
    }

    #[inline]
    fn release(&mut self, addr: u64, old: Block, t: u64) {
        if let Some(end) = self.main_end {
            if t > end && old.t <= end {
                self.freed_late.push((addr, old));
            }
        }
        let (b, c) = self.weights.of(old.size);
        self.bytes -= b;
        self.blocks -= c;
        self.follow(old.slot, t, -b);
        if self.full {
            let s = self.slot_mut(old.slot);
            s.freed_bytes += b;
            s.freed_blocks += c;
        }
    }

    /// The tracked heap over the run and its high-water mark.
    pub fn info(&self, end_ns: u64) -> HeapInfo {
        let mut series = self.series.points(true);
        if let Some(&(t, _)) = series.last() {
            if t < end_ns {
                series.push((end_ns, to_u64(self.bytes)));
            }
        }
        HeapInfo {
            peak_bytes: to_u64(self.peak_bytes),
            peak_blocks: to_u64(self.peak_blocks),
            peak_at_ns: self.peak_t,
            end_bytes: to_u64(self.bytes),
            end_blocks: to_u64(self.blocks),
            series,
        }
    }
}

impl Visitor for LiveHeap {
    #[inline]
    fn alloc(&mut self, ev: &AllocEvent, slot: u32) {
        self.index += 1;
        let block = Block {
            size: ev.size,
            t: ev.t_ns,
            slot,
        };
        if let Some(old) = self.live.insert(ev.addr, block) {
            self.reused_live += 1;
            self.release(ev.addr, old, ev.t_ns);
        }
        let (b, c) = self.weights.of(ev.size);
        self.bytes += b;
        self.blocks += c;
        self.follow(slot, ev.t_ns, b);
        if self.bytes > self.peak_bytes {
            self.peak_bytes = self.bytes;
            self.peak_blocks = self.blocks;
            self.peak_t = ev.t_ns;
            self.peak_index = self.index;
        }
        if self.full {
            let s = self.slot_mut(slot);
            s.alloc_bytes += b;
            s.alloc_blocks += c;
            s.first_t = s.first_t.min(ev.t_ns);
            self.series.push(ev.t_ns, self.bytes);
        }
    }

    #[inline]
    fn free(&mut self, ev: &AllocEvent) {
        self.index += 1;
        match self.live.remove(&ev.addr) {
            Some(old) => {
                self.release(ev.addr, old, ev.t_ns);
                if self.full {
                    self.series.push(ev.t_ns, self.bytes);
                }
            }
            // allocated before tracking began: not ours to count
            None => self.untracked_frees += 1,
        }
    }

    fn mark(&mut self, t_ns: u64, label: &str) {
        if memsleuth_format::ends_program_time(label) && self.main_end.is_none() {
            self.main_end = Some(t_ns);
        }
    }

    fn live_slot(&self, addr: u64) -> Option<u32> {
        self.live.get(&addr).map(|b| b.slot)
    }

    fn main_end(&self) -> Option<u64> {
        self.main_end
    }
}

/// What the reports say about the capture itself.
pub(crate) fn capture_info(
    tables: &Tables,
    heap: &LiveHeap,
    frames_unresolved: u64,
) -> CaptureInfo {
    let h = &tables.header;
    let trailer = tables.trailer;
    let duration_ns = tables.end_ns();
    let mut end = EndInfo::new(
        trailer,
        tables.damage.as_ref(),
        tables.root_exit,
        duration_ns,
    );
    if trailer.is_none() {
        // no trailer to count them: what was read is the count, as the summary's
        end.samples = tables.samples;
        end.flushes = tables.chunks;
    }
    CaptureInfo {
        pid: h.pid,
        argv: h.argv.clone(),
        python_version: h.python_version.clone(),
        tool_version: h.tool_version.clone(),
        start_unix_ns: h.start_unix_ns,
        instruments: h.instruments.clone(),
        sample_bytes: h.sample_bytes,
        end,
        duration_ns,
        damage_offset: tables.damage.as_ref().and_then(FormatError::offset),
        last_event_ns: tables.last_event_t,
        allocs: tables.allocs,
        frees: tables.frees,
        untracked_frees: heap.untracked_frees,
        reused_live: heap.reused_live,
        threads: tables.threads,
        stacks: tables.stacks.len().saturating_sub(1) as u64,
        frames: tables.frames.len() as u64,
        unresolved_frames: frames_unresolved,
        phases: super::Phases::from_marks(&tables.marks),
        without_unwind: without_unwind(tables),
    }
}

/// The objects native frames lie in that have no unwind tables, by file name, sorted.
fn without_unwind(tables: &Tables) -> Vec<String> {
    let mut names: Vec<String> = tables
        .native_frames
        .values()
        .filter_map(|f| tables.mappings.get(&f.mapping))
        .filter(|m| !m.unwind)
        .map(|m| super::symbols::file_name(&m.path))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
