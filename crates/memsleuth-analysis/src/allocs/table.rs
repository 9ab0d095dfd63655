//! Every allocation made while tracking: per site (allocated, freed, still alive) and as a call
//! tree.

use std::io::{Cursor, Read};
use std::path::Path;

use memsleuth_format::AllocEvent;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::heap::{capture_info, LiveHeap};
use super::leaks::{open_path, reopen, rss_until, Open};
use super::names::{Binning, Names};
use super::replay::{first_pass, next_pass, to_u64, Limits, Visitor, Weights};
use super::{program_name, CaptureInfo, HeapInfo};
use crate::profile::{Location, Profile, ProfileStack, ProfileSubject};
use crate::AnalysisError;

/// How the allocation table is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    /// Time bins of the profile (when the bytes were allocated); 0 (the default) leaves them
    /// out and spares the second pass over the capture they need.
    pub bins: u32,
}

/// Allocations of one site (or of everything, for the totals).
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    pub location: Location,
    pub allocated_bytes: u64,
    pub allocated_blocks: u64,
    pub freed_bytes: u64,
    pub freed_blocks: u64,
    /// Still alive at the end of the capture.
    pub alive_bytes: u64,
    pub alive_blocks: u64,
    /// Distinct stacks reaching this site.
    pub stacks: usize,
}

/// Allocations of one distinct stack.
#[derive(Debug, Clone, Serialize)]
pub struct TableStack {
    /// Indexes into [`AllocTable::locations`], outermost first.
    pub frames: Vec<u32>,
    pub allocated_bytes: u64,
    pub allocated_blocks: u64,
    pub alive_bytes: u64,
    pub alive_blocks: u64,
    /// `(time bin, bytes, blocks)` allocated in each bin, when bins were asked for.
    pub bins: Vec<(u32, u64, u64)>,
}

/// A node of the call tree: everything allocated under this call path.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    /// Index into [`AllocTable::locations`]; `None` for the root (the whole run).
    pub location: Option<u32>,
    pub parent: Option<usize>,
    pub depth: u32,
    /// Largest first.
    pub children: Vec<usize>,
    /// Allocated under this path, this frame's callees included.
    pub allocated_bytes: u64,
    pub allocated_blocks: u64,
    /// Of that, still alive at the end.
    pub alive_bytes: u64,
    pub alive_blocks: u64,
    /// Allocated by this frame itself (it is the allocation site).
    pub self_bytes: u64,
}

/// The call tree of all allocations; `nodes[0]` is the root.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallTree {
    pub nodes: Vec<TreeNode>,
}

/// Every allocation made while tracking.
#[derive(Debug, Clone, Serialize)]
pub struct AllocTable {
    pub capture: CaptureInfo,
    /// The whole run (location `<all>`).
    pub totals: TableRow,
    /// Per site, most allocated bytes first.
    pub rows: Vec<TableRow>,
    pub locations: Vec<Location>,
    /// Per stack, most allocated bytes first.
    pub stacks: Vec<TableStack>,
    pub tree: CallTree,
    pub heap: HeapInfo,
    pub rss: Vec<(u64, u64)>,
    /// Width and number of the time bins of [`TableStack::bins`] (0 when not asked for).
    pub bin_ns: u64,
    pub bins: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    alloc_bytes: f64,
    alloc_blocks: f64,
    freed_bytes: f64,
    freed_blocks: f64,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.alloc_bytes += o.alloc_bytes;
        self.alloc_blocks += o.alloc_blocks;
        self.freed_bytes += o.freed_bytes;
        self.freed_blocks += o.freed_blocks;
    }

    fn alive(&self) -> (u64, u64) {
        (
            to_u64(self.alloc_bytes - self.freed_bytes),
            to_u64(self.alloc_blocks - self.freed_blocks),
        )
    }
}

/// Allocated bytes per slot and time bin (the optional second pass).
struct AllocBins {
    weights: Weights,
    binning: Binning,
    bins: FxHashMap<(u32, u32), (f64, f64)>,
}

impl Visitor for AllocBins {
    fn alloc(&mut self, ev: &AllocEvent, slot: u32) {
        let (w, c) = self.weights.of(ev.size);
        let e = self
            .bins
            .entry((slot, self.binning.of(ev.t_ns)))
            .or_default();
        e.0 += w;
        e.1 += c;
    }

    fn free(&mut self, _: &AllocEvent) {}
}

impl AllocTable {
    /// Analyses a capture file.
    pub fn from_path(path: &Path, opts: &TableOptions) -> Result<AllocTable, AnalysisError> {
        Self::from_source(&open_path(path), opts)
    }

    /// Analyses a capture held in memory.
    pub fn from_bytes(bytes: &[u8], opts: &TableOptions) -> Result<AllocTable, AnalysisError> {
        Self::from_source(&|| Ok(Cursor::new(bytes)), opts)
    }

    pub(crate) fn from_source<R: Read>(
        open: Open<'_, R>,
        opts: &TableOptions,
    ) -> Result<AllocTable, AnalysisError> {
        let (mut tables, heap) = first_pass(reopen(open)?, Limits::default(), |h| {
            LiveHeap::new(Weights::new(h.sample_bytes), true)
        })?;
        if !tables.has_allocations() {
            return Err(AnalysisError::NoAllocations);
        }
        let end = tables.end_ns();
        let binning = Binning::new(end, opts.bins);
        let mut slot_bins = FxHashMap::default();
        if opts.bins > 0 {
            let mut pass = AllocBins {
                weights: heap.weights,
                binning,
                bins: FxHashMap::default(),
            };
            let limits = Limits {
                max_events: heap.index,
                ..Limits::default()
            };
            next_pass(reopen(open)?, &mut tables, limits, &mut pass)?;
            slot_bins = pass.bins;
        }

        let mut names = Names::new(&tables);
        // stacks: slots merged by their location chains
        let mut stack_index: FxHashMap<Vec<u32>, usize> = FxHashMap::default();
        let mut stacks: Vec<(Vec<u32>, Acc)> = Vec::new();
        let mut slot_stack: FxHashMap<u32, usize> = FxHashMap::default();
        for (slot, s) in heap.slots.iter().enumerate() {
            if s.alloc_blocks <= 0.0 && s.freed_blocks <= 0.0 {
                continue;
            }
            let acc = Acc {
                alloc_bytes: s.alloc_bytes,
                alloc_blocks: s.alloc_blocks,
                freed_bytes: s.freed_bytes,
                freed_blocks: s.freed_blocks,
            };
            let frames = names.stack(slot as u32);
            let i = match stack_index.get(&frames) {
                Some(&i) => {
                    stacks[i].1.add(&acc);
                    i
                }
                None => {
                    stack_index.insert(frames.clone(), stacks.len());
                    stacks.push((frames, acc));
                    stacks.len() - 1
                }
            };
            slot_stack.insert(slot as u32, i);
        }
        let mut bins_of: Vec<Vec<(u32, f64, f64)>> = vec![Vec::new(); stacks.len()];
        for ((slot, bin), (w, c)) in slot_bins {
            if let Some(&i) = slot_stack.get(&slot) {
                bins_of[i].push((bin, w, c));
            }
        }

        // sites: by the innermost location
        let mut site_index: FxHashMap<u32, usize> = FxHashMap::default();
        let mut sites: Vec<(u32, Acc, usize)> = Vec::new();
        let mut all = Acc::default();
        for (frames, acc) in &stacks {
            let loc = names.site_of(frames);
            let k = *site_index.entry(loc).or_insert_with(|| {
                sites.push((loc, Acc::default(), 0));
                sites.len() - 1
            });
            sites[k].1.add(acc);
            sites[k].2 += 1;
            all.add(acc);
        }
        let locations = names.locations.clone();
        let row = |location: Location, acc: &Acc, stacks: usize| {
            let (alive_bytes, alive_blocks) = acc.alive();
            TableRow {
                location,
                allocated_bytes: to_u64(acc.alloc_bytes),
                allocated_blocks: to_u64(acc.alloc_blocks),
                freed_bytes: to_u64(acc.freed_bytes),
                freed_blocks: to_u64(acc.freed_blocks),
                alive_bytes,
                alive_blocks,
                stacks,
            }
        };
        let mut rows: Vec<TableRow> = sites
            .iter()
            .map(|(loc, acc, n)| row(locations[*loc as usize].clone(), acc, *n))
            .collect();
        rows.sort_by(|a, b| {
            b.allocated_bytes
                .cmp(&a.allocated_bytes)
                .then(b.allocated_blocks.cmp(&a.allocated_blocks))
                .then_with(|| a.location.cmp(&b.location))
        });
        let totals = row(
            Location {
                function: "<all>".into(),
                file: String::new(),
                line: 0,
                library: String::new(),
            },
            &all,
            stacks.len(),
        );
        let tree = call_tree(&stacks);
        let mut table_stacks: Vec<TableStack> = stacks
            .into_iter()
            .zip(bins_of)
            .map(|((frames, acc), mut bins)| {
                bins.sort_unstable_by_key(|b| b.0);
                let (alive_bytes, alive_blocks) = acc.alive();
                TableStack {
                    frames,
                    allocated_bytes: to_u64(acc.alloc_bytes),
                    allocated_blocks: to_u64(acc.alloc_blocks),
                    alive_bytes,
                    alive_blocks,
                    bins: bins
                        .into_iter()
                        .map(|(b, w, c)| (b, to_u64(w), to_u64(c)))
                        .filter(|b| b.1 > 0 || b.2 > 0)
                        .collect(),
                }
            })
            .collect();
        table_stacks.sort_by(|a, b| {
            b.allocated_bytes
                .cmp(&a.allocated_bytes)
                .then(b.allocated_blocks.cmp(&a.allocated_blocks))
                .then_with(|| a.frames.cmp(&b.frames))
        });
        let unresolved = names.unresolved;
        Ok(AllocTable {
            capture: capture_info(&tables, &heap, unresolved),
            totals,
            rows,
            locations,
            stacks: table_stacks,
            tree,
            heap: heap.info(end),
            rss: rss_until(&tables, end),
            bin_ns: binning.bin_ns,
            bins: binning.bins,
        })
    }

    /// Every allocation as a stack profile (bytes allocated, not bytes kept).
    pub fn to_profile(&self) -> Profile {
        Profile {
            program: program_name(&self.capture.argv),
            subject: ProfileSubject::Allocations,
            locations: self.locations.clone(),
            stacks: self
                .stacks
                .iter()
                .filter(|s| s.allocated_bytes > 0 || s.allocated_blocks > 0)
                .map(|s| ProfileStack {
                    frames: s.frames.clone(),
                    bytes: s.allocated_bytes,
                    count: s.allocated_blocks,
                    bins: s.bins.clone(),
                })
                .collect(),
            bin_ns: self.bin_ns,
            bins: self.bins,
            heap: self.heap.series.clone(),
            rss: self.rss.clone(),
            sampled: self.capture.sampled(),
        }
    }
}

fn call_tree(stacks: &[(Vec<u32>, Acc)]) -> CallTree {
    struct Tmp {
        location: Option<u32>,
        parent: Option<usize>,
        depth: u32,
        children: Vec<usize>,
        acc: Acc,
        self_bytes: f64,
    }
    let mut nodes = vec![Tmp {
        location: None,
        parent: None,
        depth: 0,
        children: Vec::new(),
        acc: Acc::default(),
        self_bytes: 0.0,
    }];
    let mut child: FxHashMap<(usize, u32), usize> = FxHashMap::default();
    for (frames, acc) in stacks {
        let mut at = 0usize;
        nodes[0].acc.add(acc);
        for &loc in frames {
            let next = match child.get(&(at, loc)) {
                Some(&n) => n,
                None => {
                    let n = nodes.len();
                    let depth = nodes[at].depth + 1;
                    nodes.push(Tmp {
                        location: Some(loc),
                        parent: Some(at),
                        depth,
                        children: Vec::new(),
                        acc: Acc::default(),
                        self_bytes: 0.0,
                    });
                    nodes[at].children.push(n);
                    child.insert((at, loc), n);
                    n
                }
            };
            nodes[next].acc.add(acc);
            at = next;
        }
        nodes[at].self_bytes += acc.alloc_bytes;
    }
    let mut out: Vec<TreeNode> = nodes
        .into_iter()
        .map(|n| {
            let (alive_bytes, alive_blocks) = n.acc.alive();
            TreeNode {
                location: n.location,
                parent: n.parent,
                depth: n.depth,
                children: n.children,
                allocated_bytes: to_u64(n.acc.alloc_bytes),
                allocated_blocks: to_u64(n.acc.alloc_blocks),
                alive_bytes,
                alive_blocks,
                self_bytes: to_u64(n.self_bytes),
            }
        })
        .collect();
    let sizes: Vec<(u64, u64)> = out
        .iter()
        .map(|n| (n.allocated_bytes, n.allocated_blocks))
        .collect();
    for n in &mut out {
        n.children
            .sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    }
    CallTree { nodes: out }
}
