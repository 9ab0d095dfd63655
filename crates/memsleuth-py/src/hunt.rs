//! The `hunt` instrument's readings in the live interpreter. `memsleuth._hunt` calls the
//! function and clears the interpreter's caches; this reads every signal after each run and
//! keeps the readings in Rust memory, where the measured Python heap cannot see them grow.

use std::path::PathBuf;

use memsleuth_analysis::hunt::{leaking_sites, HuntReport, Readings, Signal, SiteVerdict};
use memsleuth_platform::Detail;
use pyo3::prelude::*;
use rustc_hash::FxHashSet;

use crate::errors::MemsleuthError;

/// Type rows read per census: every type, in practice.
const ALL_TYPES: usize = 1 << 20;
/// Leaking lines whose newest blocks get a holder search.
const HOLDER_SITES: usize = 3;

/// One hunt: its readings so far and how it is bounded.
#[pyclass(module = "memsleuth._native")]
#[derive(Debug)]
pub struct HuntSession {
    target: String,
    warmup: usize,
    max_runs: usize,
    ignore: Vec<String>,
    readings: Readings,
    /// Runs made with every allocation tracked, to name the lines (see `explain`).
    tracked_runs: usize,
    sites: Vec<SiteVerdict>,
}

#[pymethods]
impl HuntSession {
    /// `ignore`: directories whose lines are never named as leaking (a test runner's own).
    #[new]
    #[pyo3(signature = (target, warmup, max_runs, ignore=Vec::new()))]
    fn new(target: String, warmup: usize, max_runs: usize, ignore: Vec<String>) -> Self {
        HuntSession {
            target,
            warmup,
            max_runs,
            ignore,
            readings: Readings::default(),
            tracked_runs: 0,
            sites: Vec::new(),
        }
    }

    /// Marks the capture being recorded: before the first tracked run, and after each.
    fn mark_run(&mut self) -> PyResult<()> {
        crate::tracker::track_mark(memsleuth_format::HUNT_RUN)
    }

    /// Names the lines that leak from the capture of the tracked runs (finished), and searches
    /// what holds their newest blocks, which the function's leak keeps alive still.
    fn explain(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let read = py.detach(|| {
            memsleuth_analysis::allocs::live_by_site_at_marks(&path, memsleuth_format::HUNT_RUN)
        });
        let mut sites = read.map_err(|e| MemsleuthError::new_err(e.to_string()))?;
        self.tracked_runs = sites.first().map_or(0, |s| s.bytes.len().saturating_sub(1));
        sites.retain(|s| {
            !self
                .ignore
                .iter()
                .any(|dir| s.location.file.starts_with(dir))
        });
        let found = leaking_sites(&sites, self.max_runs);
        let blocks: Vec<u64> = found
            .iter()
            .take(HOLDER_SITES)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let wanted: FxHashSet<u64> = blocks.iter().copied().collect();
        let mut holders = Vec::new();
        if !blocks.is_empty() {
            let mut snap = crate::heap::snapshot(py, &[], &wanted)?;
            holders = snap.holders_of(py, &blocks);
            snap.release(py);
        }
        self.sites = found
            .into_iter()
            .map(|(mut site, samples)| {
                site.holder = holders
                    .iter()
                    .find(|(addr, _)| samples.contains(addr))
                    .map(|(_, path)| path.clone());
                site
            })
            .collect();
        Ok(())
    }

    /// Reads every signal once: after the warm-up (the baseline), then after each run.
    fn measure(&mut self, py: Python<'_>) -> PyResult<()> {
        // the C heap first, before this reading's own tables exist: memsleuth's allocations
        // (these readings, which grow run by run) are the C heap's too, and are taken out
        let native = memsleuth_platform::c_heap_in_use()
            .map(|heap| heap.saturating_sub(crate::own_memory::bytes()) as f64);
        let sys = py.import("sys")?;
        let interned = interned_strings(py, &sys);
        let blocks: i64 = sys.call_method0("getallocatedblocks")?.extract()?;
        let refs = if sys.hasattr("gettotalrefcount")? {
            let total: i64 = sys.call_method0("gettotalrefcount")?.extract()?;
            // 3.12 counts two references per interned string, which a run may add for good
            // (the refleak hunter takes them out the same way)
            let minor = py.version_info().minor;
            Some(total - if minor == 12 { 2 * interned } else { 0 })
        } else {
            None
        };
        let (census, _) = crate::heap::quick_census(py, ALL_TYPES)?;
        let me = memsleuth_platform::memory(std::process::id(), Detail::Basic).ok();
        let values = [
            (Signal::Refs, refs.map(|v| v as f64)),
            (Signal::Blocks, Some((blocks - interned) as f64)),
            (Signal::Objects, Some(census.objects as f64)),
            (Signal::NativeHeap, native),
            (Signal::Rss, me.and_then(|m| m.rss).map(|v| v as f64)),
            (Signal::Fds, me.and_then(|m| m.fds).map(|v| v as f64)),
            (
                Signal::Threads,
                me.and_then(|m| m.threads).map(|v| v as f64),
            ),
        ];
        let types: Vec<(String, u64)> = census
            .types
            .into_iter()
            .filter(|t| t.name != "(other)")
            .map(|t| (t.name, t.count))
            .collect();
        self.readings.push(&values, &types);
        Ok(())
    }

    /// Measured runs so far.
    fn runs(&self) -> usize {
        self.readings.runs()
    }

    /// True once more runs would not change the answer (or the bound is reached).
    fn settled(&self) -> bool {
        self.readings.settled(self.max_runs)
    }

    /// The answer as JSON (`memsleuth hunt --json`'s document).
    fn report_json(&self, py: Python<'_>) -> String {
        memsleuth_render::hunt::hunt_json(&self.report(py))
    }

    /// The answer in words.
    fn report_text(&self, py: Python<'_>) -> String {
        let here = std::env::current_dir().ok();
        memsleuth_render::hunt::hunt_text(&self.report(py), here.as_deref())
    }

    fn leaks(&self, py: Python<'_>) -> bool {
        self.report(py).leaks()
    }
}

impl HuntSession {
    fn report(&self, py: Python<'_>) -> HuntReport {
        let debug = py
            .import("sys")
            .and_then(|s| s.hasattr("gettotalrefcount"))
            .unwrap_or(false);
        let mut report = HuntReport::new(
            self.target.clone(),
            self.warmup,
            self.max_runs,
            debug,
            &self.readings,
        );
        report.tracked_runs = self.tracked_runs;
        report.sites = self.sites.clone();
        report
    }
}

/// Interned strings a run may add for good (they live until shutdown), which the block count
/// leaves out: 3.12 counts them all, 3.13 the immortal ones, as the refleak hunter does.
/// 0 before 3.12, which cannot say.
fn interned_strings(py: Python<'_>, sys: &Bound<'_, PyModule>) -> i64 {
    let Ok(size) = sys.getattr("getunicodeinternedsize") else {
        return 0;
    };
    let immortal = if py.version_info().minor >= 13 {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs
            .set_item("_only_immortal", true)
            .ok()
            .and_then(|_| size.call((), Some(&kwargs)).ok())
    } else {
        None
    };
    immortal
        .or_else(|| size.call0().ok())
        .and_then(|v| v.extract().ok())
        .unwrap_or(0)
}

/// What a test's tracked body used, from its capture: the peak of the tracked heap, the bytes
/// still alive when it returned, and the peak's largest lines in words (`top` of them), for
/// the pytest plugin's `limit_memory` and its per-test table.
#[pyfunction]
#[pyo3(signature = (path, top=5))]
pub fn capture_memory(py: Python<'_>, path: PathBuf, top: usize) -> PyResult<(u64, u64, String)> {
    use memsleuth_analysis::{AnalysisError, LeakOptions, LeakReport, PeakReport};
    let made = py.detach(|| {
        let peak =
            PeakReport::from_path(&path, &memsleuth_analysis::allocs::PeakOptions::default());
        let peak = match peak {
            Ok(p) => p,
            // a body that allocated nothing tracked
            Err(AnalysisError::NoAllocations) => return Ok((0, 0, String::new())),
            Err(e) => return Err(e),
        };
        let opts = LeakOptions {
            windows: 0,
            ..LeakOptions::default()
        };
        let alive = LeakReport::from_path(&path, &opts)?;
        let text = memsleuth_render::allocs::peak_text(&peak, top);
        Ok((peak.peak_bytes, alive.leaks.bytes, text))
    });
    made.map_err(|e| MemsleuthError::new_err(e.to_string()))
}
