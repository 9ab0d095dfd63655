//! The timeline report: a capture's series plus verdicts for the tree and each process.

use memsleuth_format::Capture;
use serde::Serialize;

use crate::timeline::Timeline;
use crate::trend::{classify, Verdict, VerdictKind, VerdictOptions};
use crate::AnalysisError;

/// The verdict on one process of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessVerdict {
    pub pid: u32,
    /// Which series the verdict was computed on ("rss", "uss").
    pub metric: &'static str,
    pub verdict: Verdict,
    /// Largest value of the metric seen, bytes.
    pub max: u64,
    /// Last value of the metric seen, bytes.
    pub last: u64,
}

/// Model behind `memsleuth watch`'s summary, `report summary` and `report timeline`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineReport {
    pub timeline: Timeline,
    /// Which total series the tree verdict was computed on ("rss" for one process, "pss" for a
    /// tree where PSS is readable, so shared pages are not counted twice).
    pub metric: &'static str,
    /// Which total series `peak` and the tree's own verdict were computed on.
    pub total_metric: &'static str,
    /// The headline verdict: the whole tree's, unless the tree's total is not growing while one
    /// of its processes is (a leaking worker hidden by others coming and going); then that
    /// process' verdict, and `verdict_pid` names it.
    pub verdict: Verdict,
    /// The process the headline verdict is about; `None` for the whole tree.
    pub verdict_pid: Option<u32>,
    /// Per-process verdicts, root first, then by pid.
    pub processes: Vec<ProcessVerdict>,
    /// Largest total of the metric, and the time it was seen.
    pub peak: u64,
    pub peak_at: f64,
    /// Largest RSS high-water mark reported by any process (VmHWM).
    pub peak_rss_hwm: u64,
    /// Bytes per iteration, when the capture carries at least three marks.
    pub per_mark: Option<f64>,
}

impl TimelineReport {
    /// Analyses a capture: series, verdicts for the tree and for each process.
    pub fn from_capture(capture: &Capture, opts: &VerdictOptions) -> Result<Self, AnalysisError> {
        let timeline = Timeline::from_capture(capture);
        if timeline.total.is_empty() {
            return Err(AnalysisError::NoSamples);
        }
        // in a tree, shared pages would count once per process in RSS; PSS shares them out
        let tree = timeline.total.iter().any(|p| p.processes > 1);
        let has_pss = timeline.total.iter().all(|p| p.pss > 0);
        let metric = if tree && has_pss { "pss" } else { "rss" };
        // a `memsleuth run` capture marks where the program's main code ended: what follows is
        // its shutdown and memsleuth's own exit work (an analysis that may take seconds and
        // memory of its own), which must not shape the program's trend or peak
        let program_end = timeline
            .marks
            .iter()
            .find(|m| memsleuth_format::ends_program_time(&m.1))
            .map_or(f64::INFINITY, |m| m.0);
        let program = || timeline.total.iter().filter(|p| p.t <= program_end);
        let t: Vec<f64> = program().map(|p| p.t).collect();
        let y: Vec<f64> = program().map(|p| p.get(metric) as f64).collect();
        let verdict = classify(&t, &y, opts);
        let (peak_at, peak) =
            program()
                .map(|p| (p.t, p.get(metric)))
                .fold(
                    (0.0, 0),
                    |best, cur| if cur.1 > best.1 { cur } else { best },
                );
        let peak_rss_hwm = timeline
            .processes
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.peak))
            .max()
            .unwrap_or(0);

        let processes: Vec<ProcessVerdict> = timeline
            .processes
            .iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| {
                let points = || s.points.iter().filter(|p| p.t <= program_end);
                let t: Vec<f64> = points().map(|p| p.t).collect();
                let y: Vec<f64> = points().map(|p| p.rss.unwrap_or(0) as f64).collect();
                ProcessVerdict {
                    pid: s.pid,
                    metric: "rss",
                    verdict: classify(&t, &y, opts),
                    max: s.points.iter().filter_map(|p| p.rss).max().unwrap_or(0),
                    last: s.points.last().and_then(|p| p.rss).unwrap_or(0),
                }
            })
            .collect();

        // bytes per iteration: the rate times the typical time between marks
        let user_marks: Vec<f64> = timeline
            .marks
            .iter()
            .filter(|m| !m.1.starts_with("memsleuth:"))
            .map(|m| m.0)
            .collect();
        let per_mark = (user_marks.len() >= 3).then(|| {
            let mut gaps: Vec<f64> = user_marks.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_by(f64::total_cmp);
            verdict.rate * gaps[gaps.len() / 2]
        });

        let tree = timeline.processes.len() > 1;
        let worst = processes
            .iter()
            .filter(|p| p.verdict.kind == VerdictKind::Growing)
            .max_by(|a, b| a.verdict.rate.total_cmp(&b.verdict.rate));
        let total_metric = metric;
        let (metric, verdict, verdict_pid) = match worst {
            Some(p) if tree && verdict.kind != VerdictKind::Growing => {
                (p.metric, p.verdict.clone(), Some(p.pid))
            }
            _ => (metric, verdict, None),
        };

        Ok(TimelineReport {
            timeline,
            total_metric,
            metric,
            verdict,
            verdict_pid,
            processes,
            peak,
            peak_at,
            peak_rss_hwm,
            per_mark,
        })
    }

    /// Processes whose own series grows, with the tree's verdict aside: who to blame.
    pub fn growing_processes(&self) -> impl Iterator<Item = &ProcessVerdict> {
        self.processes
            .iter()
            .filter(|p| p.verdict.kind == VerdictKind::Growing)
    }
}
