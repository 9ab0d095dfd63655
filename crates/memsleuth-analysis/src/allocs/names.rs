//! Stacks and frames resolved to source locations, and memory grouped by site and by stack.

use rustc_hash::FxHashMap;

use super::heap::Block;
use super::replay::{to_u64, Tables, Weights, MAX_DEPTH};
use super::symbols::NativeFrames;
use super::{Breakdown, SiteRow, StackRow};
use crate::profile::Location;

/// Site of allocations made with no Python frame (interpreter start-up, C threads).
pub(crate) const NO_FRAME: &str = "<no Python frame>";

/// Resolves stack slots to location indexes. Several frame ids may name one location (the
/// recorder interns code positions, not lines); they are merged by value here.
#[derive(Debug)]
pub(crate) struct Names<'t> {
    tables: &'t Tables,
    pub locations: Vec<Location>,
    index: FxHashMap<Location, u32>,
    frame_loc: FxHashMap<u32, u32>,
    /// Locations of native frames, and whether each is the interpreter's or the C runtime's.
    native: FxHashMap<u32, bool>,
    mode: NativeFrames,
    pub unresolved: u64,
}

impl<'t> Names<'t> {
    pub fn new(tables: &'t Tables) -> Self {
        Names {
            tables,
            locations: Vec::new(),
            index: FxHashMap::default(),
            frame_loc: FxHashMap::default(),
            native: FxHashMap::default(),
            mode: super::symbols::native_frames(),
            unresolved: 0,
        }
    }

    fn intern(&mut self, loc: Location) -> u32 {
        if let Some(&i) = self.index.get(&loc) {
            return i;
        }
        let i = u32::try_from(self.locations.len()).unwrap_or(u32::MAX);
        self.locations.push(loc.clone());
        self.index.insert(loc, i);
        i
    }

    fn pseudo(&mut self, function: String) -> u32 {
        self.intern(Location {
            function,
            file: String::new(),
            line: 0,
            library: String::new(),
        })
    }

    /// Number of stack slots (the empty stack included).
    pub fn slots(&self) -> usize {
        self.tables.stacks.len()
    }

    /// Location index of a frame id.
    pub fn frame(&mut self, id: u32) -> u32 {
        if let Some(&i) = self.frame_loc.get(&id) {
            return i;
        }
        let i = match self.tables.frames.get(&id) {
            Some(f) => self.intern(Location {
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                library: String::new(),
            }),
            None if self.tables.native_frames.contains_key(&id) => {
                let path = self
                    .tables
                    .native_frames
                    .get(&id)
                    .and_then(|f| self.tables.mappings.get(&f.mapping))
                    .map_or("", |m| m.path.as_str());
                let library = super::symbols::file_name(path);
                let runtime = super::symbols::is_runtime(&library, path);
                // a frame the report drops is not named: naming reads the object's debug
                // information, tens of megabytes for the interpreter's own
                let shown = match self.mode {
                    NativeFrames::All => true,
                    NativeFrames::Boundary => !runtime,
                    NativeFrames::None => false,
                };
                let loc = if shown {
                    self.tables.native_location(id)
                } else {
                    Location {
                        function: format!("<native frame {id}>"),
                        library,
                        ..Location::default()
                    }
                };
                let i = self.intern(loc);
                self.native.insert(i, runtime);
                i
            }
            None => {
                self.unresolved += 1;
                self.pseudo(format!("<unresolved frame {id}>"))
            }
        };
        self.frame_loc.insert(id, i);
        i
    }

    /// Location index of the innermost frame of a slot: its allocation site.
    pub fn site_of_slot(&mut self, slot: u32) -> u32 {
        match self.tables.stacks.nodes.get(slot as usize) {
            Some(n) if slot == 0 || n.id == 0 => self.pseudo(NO_FRAME.into()),
            Some(n) if n.known && self.tables.native_frames.contains_key(&n.frame) => {
                // which native frame (if any) is the site depends on the whole stack
                match self.stack(slot).last() {
                    Some(&i) => i,
                    None => self.pseudo(NO_FRAME.into()),
                }
            }
            Some(n) if n.known => self.frame(n.frame),
            Some(n) => self.pseudo(format!("<unknown stack {}>", n.id)),
            None => self.pseudo(NO_FRAME.into()),
        }
    }

    /// Location indexes of a slot's stack, outermost first; empty for the empty stack.
    pub fn stack(&mut self, slot: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut current = Some(slot);
        while let Some(s) = current {
            let Some(node) = self.tables.stacks.nodes.get(s as usize).copied() else {
                break;
            };
            if s == 0 || node.id == 0 {
                break;
            }
            if out.len() >= MAX_DEPTH {
                out.push(self.pseudo("<deeper frames cut>".into()));
                break;
            }
            if !node.known {
                out.push(self.pseudo(format!("<unknown stack {}>", node.id)));
                break;
            }
            out.push(self.frame(node.frame));
            current = if node.parent == 0 {
                None
            } else {
                match self.tables.stacks.get(node.parent) {
                    Some(p) => Some(p),
                    None => {
                        out.push(self.pseudo(format!("<unknown stack {}>", node.parent)));
                        None
                    }
                }
            };
        }
        out.reverse();
        self.trim_launcher(&mut out);
        self.choose_native(&mut out);
        out
    }

    /// Keeps the native frames (the innermost part of a stack) the report's mode asks for.
    fn choose_native(&self, frames: &mut Vec<u32>) {
        let first_native = frames
            .iter()
            .position(|i| self.native.contains_key(i))
            .unwrap_or(frames.len());
        match self.mode {
            NativeFrames::All => {}
            NativeFrames::None => frames.truncate(first_native),
            NativeFrames::Boundary => {
                let keep = frames[first_native..]
                    .iter()
                    .rev()
                    .find(|i| self.native.get(i) == Some(&false))
                    .copied();
                frames.truncate(first_native);
                frames.extend(keep);
            }
        }
    }

    /// `memsleuth run` executes the program through its own runner and `runpy`; those frames
    /// sit under every stack of the program and say nothing about it. Drops them, so stacks
    /// start at the program's `<module>`, as they would under plain `python`.
    fn trim_launcher(&self, frames: &mut Vec<u32>) {
        let is_runner = |l: &Location| l.file.ends_with("memsleuth/_run.py");
        let is_runpy = |l: &Location| l.file == "<frozen runpy>" || l.file.ends_with("/runpy.py");
        let Some(runner) = frames
            .iter()
            .position(|&i| is_runner(&self.locations[i as usize]))
        else {
            return;
        };
        let mut cut = runner + 1;
        while frames.get(cut).is_some_and(|&i| {
            let l = &self.locations[i as usize];
            is_runner(l) || is_runpy(l)
        }) {
            cut += 1;
        }
        // allocations of the runner itself keep their frames
        if cut < frames.len() {
            frames.drain(..cut);
        }
    }

    /// Site location index of a resolved stack.
    pub fn site_of(&mut self, frames: &[u32]) -> u32 {
        match frames.last() {
            Some(&l) => l,
            None => self.pseudo(NO_FRAME.into()),
        }
    }
}

/// Weighted totals of one slot, optionally split by time bin.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotAcc {
    pub bytes: f64,
    pub blocks: f64,
    /// `(bin, bytes, blocks)`, any order, bins may repeat.
    pub bins: Vec<(u32, f64, f64)>,
}

/// Time bins: `bins` of `bin_ns` covering `[0, span_ns]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binning {
    pub bin_ns: u64,
    pub bins: u32,
}

impl Binning {
    pub fn new(span_ns: u64, bins: u32) -> Self {
        if bins == 0 {
            return Binning { bin_ns: 0, bins: 0 };
        }
        let bin_ns = span_ns.div_ceil(u64::from(bins)).max(1);
        let count = (span_ns / bin_ns + 1).min(u64::from(bins));
        Binning {
            bin_ns,
            bins: u32::try_from(count).unwrap_or(bins),
        }
    }

    #[inline]
    pub fn of(&self, t: u64) -> u32 {
        if self.bins == 0 {
            return 0;
        }
        u32::try_from(t / self.bin_ns)
            .unwrap_or(u32::MAX)
            .min(self.bins - 1)
    }
}

/// Per-slot totals (and bins) of a set of live blocks.
pub(crate) fn live_by_slot<'a>(
    blocks: impl Iterator<Item = &'a Block>,
    weights: Weights,
    binning: Binning,
) -> Vec<(u32, SlotAcc)> {
    let mut by_slot: FxHashMap<u32, (f64, f64)> = FxHashMap::default();
    let mut by_bin: FxHashMap<(u32, u32), (f64, f64)> = FxHashMap::default();
    for b in blocks {
        let (w, c) = weights.of(b.size);
        let e = by_slot.entry(b.slot).or_default();
        e.0 += w;
        e.1 += c;
        if binning.bins > 0 {
            let e = by_bin.entry((b.slot, binning.of(b.t))).or_default();
            e.0 += w;
            e.1 += c;
        }
    }
    let mut out: FxHashMap<u32, SlotAcc> = by_slot
        .into_iter()
        .map(|(slot, (bytes, blocks))| {
            (
                slot,
                SlotAcc {
                    bytes,
                    blocks,
                    bins: Vec::new(),
                },
            )
        })
        .collect();
    for ((slot, bin), (w, c)) in by_bin {
        if let Some(acc) = out.get_mut(&slot) {
            acc.bins.push((bin, w, c));
        }
    }
    let mut v: Vec<(u32, SlotAcc)> = out.into_iter().collect();
    v.sort_unstable_by_key(|(s, _)| *s);
    v
}

/// Groups per-slot totals by stack (slots with identical location chains merge) and by site.
pub(crate) fn breakdown(
    names: &mut Names<'_>,
    slots: Vec<(u32, SlotAcc)>,
    binning: Binning,
) -> Breakdown {
    struct StackTmp {
        frames: Vec<u32>,
        bytes: f64,
        blocks: f64,
        bins: Vec<(u32, f64, f64)>,
    }
    let mut stack_index: FxHashMap<Vec<u32>, usize> = FxHashMap::default();
    let mut tmp: Vec<StackTmp> = Vec::new();
    for (slot, acc) in slots {
        if acc.blocks <= 0.0 && acc.bytes <= 0.0 {
            continue;
        }
        let frames = names.stack(slot);
        match stack_index.get(&frames) {
            Some(&i) => {
                let t = &mut tmp[i];
                t.bytes += acc.bytes;
                t.blocks += acc.blocks;
                t.bins.extend(acc.bins);
            }
            None => {
                stack_index.insert(frames.clone(), tmp.len());
                tmp.push(StackTmp {
                    frames,
                    bytes: acc.bytes,
                    blocks: acc.blocks,
                    bins: acc.bins,
                });
            }
        }
    }
    let mut stacks: Vec<StackRow> = tmp
        .into_iter()
        .map(|mut t| {
            t.bins.sort_unstable_by_key(|b| b.0);
            let mut bins: Vec<(u32, u64, u64)> = Vec::new();
            let mut run: Option<(u32, f64, f64)> = None;
            for (bin, w, c) in t.bins {
                run = match run {
                    Some((rb, rw, rc)) if rb == bin => Some((rb, rw + w, rc + c)),
                    Some((rb, rw, rc)) => {
                        bins.push((rb, to_u64(rw), to_u64(rc)));
                        Some((bin, w, c))
                    }
                    None => Some((bin, w, c)),
                };
            }
            if let Some((rb, rw, rc)) = run {
                bins.push((rb, to_u64(rw), to_u64(rc)));
            }
            bins.retain(|b| b.1 > 0 || b.2 > 0);
            StackRow {
                frames: t.frames,
                site: 0,
                bytes: to_u64(t.bytes),
                blocks: to_u64(t.blocks),
                bins,
            }
        })
        .filter(|s| s.bytes > 0 || s.blocks > 0)
        .collect();
    stacks.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.blocks.cmp(&a.blocks))
            .then_with(|| a.frames.cmp(&b.frames))
    });

    let mut site_index: FxHashMap<u32, usize> = FxHashMap::default();
    let mut sites: Vec<(u32, SiteRow)> = Vec::new();
    for (i, s) in stacks.iter().enumerate() {
        let loc = names.site_of(&s.frames);
        let k = *site_index.entry(loc).or_insert_with(|| {
            sites.push((
                loc,
                SiteRow {
                    location: names.locations[loc as usize].clone(),
                    bytes: 0,
                    blocks: 0,
                    stacks: Vec::new(),
                    verdict: None,
                    series: Vec::new(),
                    freed_at_shutdown: 0,
                    dismissed: None,
                },
            ));
            sites.len() - 1
        });
        let site = &mut sites[k].1;
        // saturating: a damaged capture can claim blocks of any size
        site.bytes = site.bytes.saturating_add(s.bytes);
        site.blocks = site.blocks.saturating_add(s.blocks);
        site.stacks.push(i);
    }
    sites.sort_by(|a, b| {
        b.1.bytes
            .cmp(&a.1.bytes)
            .then(b.1.blocks.cmp(&a.1.blocks))
            .then_with(|| a.1.location.cmp(&b.1.location))
    });
    for (k, (_, site)) in sites.iter().enumerate() {
        for &i in &site.stacks {
            stacks[i].site = k;
        }
    }
    let sites: Vec<SiteRow> = sites.into_iter().map(|(_, s)| s).collect();
    Breakdown {
        bytes: sites.iter().fold(0, |t, s| t.saturating_add(s.bytes)),
        blocks: sites.iter().fold(0, |t, s| t.saturating_add(s.blocks)),
        locations: names.locations.clone(),
        sites,
        stacks,
        bin_ns: binning.bin_ns,
        bins: binning.bins,
    }
}
