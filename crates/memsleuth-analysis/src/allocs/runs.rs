//! Live bytes by allocation site at each of a capture's marks of one label: what `hunt` reads
//! of its tracked runs (a mark after each), one leak report per mark.

use std::path::Path;

use memsleuth_format::AllocEvent;

use super::leaks::{open_path, reopen};
use super::replay::{first_pass, Limits, Visitor};
use super::{LeakOptions, LeakReport};
use crate::profile::Location;
use crate::AnalysisError;

/// One site's live bytes at each mark, and a few of its blocks alive at the last.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteAtMarks {
    pub location: Location,
    /// Bytes alive at each mark (0 before the site's first allocation).
    pub bytes: Vec<u64>,
    /// Blocks alive at the last mark, to look their holders up (the largest sites only).
    pub samples: Vec<u64>,
}

/// Reads only the tables (the marks): no event is followed.
struct Nothing;

impl Visitor for Nothing {
    fn alloc(&mut self, _ev: &AllocEvent, _slot: u32) {}
    fn free(&mut self, _ev: &AllocEvent) {}
}

/// Every site alive at any mark labelled `label`, with its live bytes at each; the largest at
/// the last mark first.
pub fn live_by_site_at_marks(path: &Path, label: &str) -> Result<Vec<SiteAtMarks>, AnalysisError> {
    let open = open_path(path);
    let (tables, _) = first_pass(reopen(&open)?, Limits::default(), |_| Nothing)?;
    let marks: Vec<u64> = tables
        .marks
        .iter()
        .filter(|m| m.1 == label)
        .map(|m| m.0)
        .collect();
    let mut sites: Vec<SiteAtMarks> = Vec::new();
    let mut index: std::collections::HashMap<Location, usize> = std::collections::HashMap::new();
    for (i, &t) in marks.iter().enumerate() {
        let opts = LeakOptions {
            at_ns: Some(t),
            windows: 0,
            bins: 1,
            ..LeakOptions::default()
        };
        let report = match LeakReport::from_source(&open, &opts) {
            Ok(r) => r,
            // nothing allocated yet by the first mark
            Err(AnalysisError::NoAllocations) => continue,
            Err(e) => return Err(e),
        };
        for (s, row) in report.leaks.sites.iter().enumerate() {
            let at = *index.entry(row.location.clone()).or_insert_with(|| {
                sites.push(SiteAtMarks {
                    location: row.location.clone(),
                    bytes: vec![0; marks.len()],
                    samples: Vec::new(),
                });
                sites.len() - 1
            });
            sites[at].bytes[i] = row.bytes;
            if i + 1 == marks.len() {
                sites[at].samples = report.samples.get(s).cloned().unwrap_or_default();
            }
        }
    }
    sites.sort_by_key(|s| std::cmp::Reverse(s.bytes.last().copied().unwrap_or(0)));
    Ok(sites)
}
