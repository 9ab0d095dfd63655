//! The peak report: what was alive at the high-water mark of the tracked heap.
//!
//! The first pass finds when the heap was largest (as the number of events replayed by then); a
//! second pass replays exactly that many events and stops, and what is alive then is grouped by
//! site and by stack.

use std::io::{Cursor, Read};
use std::path::Path;

use serde::Serialize;

use super::heap::{capture_info, LiveHeap};
use super::leaks::{open_path, reopen, rss_until, Open};
use super::names::{breakdown, live_by_slot, Binning, Names};
use super::replay::{first_pass, next_pass, Limits, Weights};
use super::{program_name, Breakdown, CaptureInfo, HeapInfo};
use crate::profile::{Profile, ProfileSubject};
use crate::AnalysisError;

/// How the peak report is made.
#[derive(Debug, Clone, Copy)]
pub struct PeakOptions {
    /// Time bins of the profile (when each byte alive at the peak was allocated).
    pub bins: u32,
}

impl Default for PeakOptions {
    fn default() -> Self {
        PeakOptions { bins: 100 }
    }
}

/// What was alive when the tracked heap was largest.
#[derive(Debug, Clone, Serialize)]
pub struct PeakReport {
    pub capture: CaptureInfo,
    /// The high-water mark and when it was reached, ns since the capture start.
    pub peak_bytes: u64,
    pub peak_blocks: u64,
    pub peak_at_ns: u64,
    /// What was alive then, by site and by stack.
    pub alive: Breakdown,
    pub heap: HeapInfo,
    /// RSS of the root process, `(t_ns, bytes)`, when the capture has it.
    pub rss: Vec<(u64, u64)>,
}

impl PeakReport {
    /// Analyses a capture file (two passes).
    pub fn from_path(path: &Path, opts: &PeakOptions) -> Result<PeakReport, AnalysisError> {
        Self::from_source(&open_path(path), opts)
    }

    /// Analyses a capture held in memory.
    pub fn from_bytes(bytes: &[u8], opts: &PeakOptions) -> Result<PeakReport, AnalysisError> {
        Self::from_source(&|| Ok(Cursor::new(bytes)), opts)
    }

    pub(crate) fn from_source<R: Read>(
        open: Open<'_, R>,
        opts: &PeakOptions,
    ) -> Result<PeakReport, AnalysisError> {
        let (mut tables, heap) = first_pass(reopen(open)?, Limits::default(), |h| {
            LiveHeap::new(Weights::new(h.sample_bytes), true)
        })?;
        if !tables.has_allocations() {
            return Err(AnalysisError::NoAllocations);
        }
        let weights = heap.weights;
        let end = tables.end_ns();
        let mut snapshot = LiveHeap::new(weights, false);
        if heap.peak_index > 0 {
            let limits = Limits {
                max_events: heap.peak_index,
                ..Limits::default()
            };
            next_pass(reopen(open)?, &mut tables, limits, &mut snapshot)?;
        }
        let binning = Binning::new(end, opts.bins);
        let per_slot = live_by_slot(snapshot.live.values(), weights, binning);
        let mut names = Names::new(&tables);
        let alive = breakdown(&mut names, per_slot, binning);
        let unresolved = names.unresolved;
        let capture = capture_info(&tables, &heap, unresolved);
        let info = heap.info(end);
        Ok(PeakReport {
            peak_bytes: info.peak_bytes,
            peak_blocks: info.peak_blocks,
            peak_at_ns: info.peak_at_ns,
            rss: rss_until(&tables, end),
            heap: info,
            capture,
            alive,
        })
    }

    /// What was alive at the peak as a stack profile.
    pub fn to_profile(&self) -> Profile {
        let mut p = self.alive.profile(self.capture.sampled());
        p.program = program_name(&self.capture.argv);
        p.subject = ProfileSubject::Peak {
            at_ns: self.peak_at_ns,
        };
        p.heap = self.heap.series.clone();
        p.rss = self.rss.clone();
        p
    }
}
