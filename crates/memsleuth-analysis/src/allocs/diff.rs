//! Sites whose leaked bytes grew between two captures (a baseline A and a candidate B): the
//! check a CI job runs to catch a new leak before it ships.

use std::path::Path;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{CaptureInfo, LeakOptions, LeakReport};
use crate::profile::Location;
use crate::AnalysisError;

/// How the two captures are compared.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// How each capture's leaks are taken. Verdicts are not needed (windows 0 by default).
    pub leaks: LeakOptions,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            leaks: LeakOptions {
                windows: 0,
                bins: 0,
                ..LeakOptions::default()
            },
        }
    }
}

/// One site, matched between the captures by function, file and line.
#[derive(Debug, Clone, Serialize)]
pub struct DiffRow {
    pub location: Location,
    pub bytes_a: u64,
    pub blocks_a: u64,
    pub bytes_b: u64,
    pub blocks_b: u64,
    /// `B - A`: positive is growth.
    pub delta_bytes: i64,
    pub delta_blocks: i64,
}

/// Leaked bytes per site in B minus A, largest growth first.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub a: CaptureInfo,
    pub b: CaptureInfo,
    pub bytes_a: u64,
    pub blocks_a: u64,
    pub bytes_b: u64,
    pub blocks_b: u64,
    /// Total leaked bytes of B minus those of A.
    pub growth_bytes: i64,
    /// Every site leaking in either capture: largest growth first, shrinking ones last.
    pub rows: Vec<DiffRow>,
}

fn signed(b: u64, a: u64) -> i64 {
    if b >= a {
        i64::try_from(b - a).unwrap_or(i64::MAX)
    } else {
        i64::try_from(a - b).map_or(i64::MIN, |d| -d)
    }
}

impl DiffReport {
    /// Compares the leaks of two capture files.
    pub fn from_paths(a: &Path, b: &Path, opts: &DiffOptions) -> Result<DiffReport, AnalysisError> {
        let ra = LeakReport::from_path(a, &opts.leaks)?;
        let rb = LeakReport::from_path(b, &opts.leaks)?;
        Ok(Self::from_reports(&ra, &rb))
    }

    /// Compares two leak reports.
    pub fn from_reports(a: &LeakReport, b: &LeakReport) -> DiffReport {
        let mut by_loc: FxHashMap<&Location, (u64, u64, u64, u64)> = FxHashMap::default();
        for s in &a.leaks.sites {
            let e = by_loc.entry(&s.location).or_default();
            // saturating: a damaged capture can claim blocks of any size
            e.0 = e.0.saturating_add(s.bytes);
            e.1 = e.1.saturating_add(s.blocks);
        }
        for s in &b.leaks.sites {
            let e = by_loc.entry(&s.location).or_default();
            e.2 = e.2.saturating_add(s.bytes);
            e.3 = e.3.saturating_add(s.blocks);
        }
        let mut rows: Vec<DiffRow> = by_loc
            .into_iter()
            .map(|(loc, (ba, ca, bb, cb))| DiffRow {
                location: loc.clone(),
                bytes_a: ba,
                blocks_a: ca,
                bytes_b: bb,
                blocks_b: cb,
                delta_bytes: signed(bb, ba),
                delta_blocks: signed(cb, ca),
            })
            .collect();
        rows.sort_by(|x, y| {
            y.delta_bytes
                .cmp(&x.delta_bytes)
                .then(y.delta_blocks.cmp(&x.delta_blocks))
                .then_with(|| x.location.cmp(&y.location))
        });
        DiffReport {
            a: a.capture.clone(),
            b: b.capture.clone(),
            bytes_a: a.leaks.bytes,
            blocks_a: a.leaks.blocks,
            bytes_b: b.leaks.bytes,
            blocks_b: b.leaks.blocks,
            growth_bytes: signed(b.leaks.bytes, a.leaks.bytes),
            rows,
        }
    }

    /// Sites that leak more in B than in A, largest growth first.
    pub fn grown(&self) -> impl Iterator<Item = &DiffRow> {
        self.rows.iter().filter(|r| r.delta_bytes > 0)
    }
}
