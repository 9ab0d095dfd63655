//! The end-of-run summary: plain text for people, JSON for machines.

use memsleuth_analysis::{TimelineReport, Verdict, VerdictKind};
use serde::Serialize;

use crate::units::{bytes, rate, seconds};

/// Command line for display, shortened to `max` characters, control characters spelled out.
pub fn command(argv: &[String], max: usize) -> String {
    let full = crate::escape::printable(&argv.join(" ")).into_owned();
    if full.chars().count() <= max {
        return full;
    }
    let cut: String = full.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Open descriptors and threads at start and at end, when the capture counted them (format
/// 1.3), so a leak of either shows beside memory: "open fds 7 at start → 407 at end; threads 1 at
/// start → 41 at end".
fn counts_line(report: &TimelineReport) -> Option<String> {
    let tl = &report.timeline;
    let (first, last) = (tl.total.first()?, tl.total.last()?);
    let counted = |metric: &str| {
        tl.processes
            .iter()
            .any(|s| s.points.iter().any(|p| p.get(metric).is_some()))
    };
    let parts: Vec<String> = [("fds", "open fds"), ("threads", "threads")]
        .into_iter()
        .filter(|(metric, _)| counted(metric))
        .map(|(metric, label)| {
            format!(
                "{label} {} at start → {} at end",
                first.get(metric),
                last.get(metric)
            )
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let tree = if tl.processes.len() > 1 {
        " (whole tree)"
    } else {
        ""
    };
    Some(format!("  {}{tree}", parts.join("; ")))
}

fn verdict_line(v: &Verdict) -> String {
    match v.kind {
        VerdictKind::Growing => format!("GROWING {}", rate(v.rate)),
        other => other.as_str().to_uppercase(),
    }
}

/// The human summary. `capture_path` is named so the reader knows what to open next.
pub fn summary_text(report: &TimelineReport, capture_path: Option<&str>) -> String {
    let tl = &report.timeline;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let first = tl.total.first().copied().unwrap_or_default();
    let last = tl.total.last().copied().unwrap_or_default();
    line(format!(
        "memsleuth · {} (pid {})",
        command(&tl.argv, 60),
        tl.pid
    ));
    line(format!(
        "  watched {}, {} samples every {}; ended: {}",
        seconds(tl.end.duration),
        tl.total.len(),
        seconds(tl.interval),
        crate::ending::ended(&tl.end)
    ));
    if let Some(warning) = crate::ending::warning(&tl.end) {
        line(format!("  {warning}"));
    }
    line(String::new());
    // the sampler can miss a short spike; the kernel's high-water mark cannot
    let hwm = if report.peak_rss_hwm as f64 > report.peak as f64 * 1.05 {
        format!(
            " (largest RSS high-water mark {})",
            bytes(report.peak_rss_hwm as f64)
        )
    } else {
        String::new()
    };
    line(format!(
        "  memory ({}{})  {} at start → {} at end, peak {} at {}{hwm}",
        report.total_metric,
        if tl.processes.len() > 1 {
            ", whole tree"
        } else {
            ""
        },
        bytes(first.get(report.total_metric) as f64),
        bytes(last.get(report.total_metric) as f64),
        bytes(report.peak as f64),
        seconds(report.peak_at),
    ));
    if let Some(counts) = counts_line(report) {
        line(counts);
    }
    let v = &report.verdict;
    line(format!(
        "  verdict: {} in {}",
        verdict_line(v),
        crate::labels::verdict_scope(report)
    ));
    line(format!(
        "           {}",
        crate::trend_words::report_sentence(report)
    ));
    if let Some(per) = report.per_mark {
        line(format!(
            "           {} per iteration ({} marks)",
            crate::units::signed_bytes(per),
            tl.marks.len()
        ));
    }
    if report.processes.len() > 1 {
        line(String::new());
        line(format!(
            "  {:<8} {:<36} {:>10} {:>10}  verdict (rss)",
            "pid", "command", "last", "max"
        ));
        for p in &report.processes {
            let argv = tl
                .processes
                .iter()
                .find(|s| s.pid == p.pid)
                .map(|s| command(&s.argv, 36))
                .unwrap_or_default();
            let kind = match p.verdict.kind {
                VerdictKind::Growing => format!("growing {}", rate(p.verdict.rate)),
                other => other.as_str().to_string(),
            };
            line(format!(
                "  {:<8} {:<36} {:>10} {:>10}  {}",
                p.pid,
                argv,
                bytes(p.last as f64),
                bytes(p.max as f64),
                kind
            ));
        }
        let growing: Vec<String> = report
            .growing_processes()
            .map(|p| format!("pid {}", p.pid))
            .collect();
        if !growing.is_empty() {
            line(format!("  growth comes from: {}", growing.join(", ")));
        }
    }
    if let Some(path) = capture_path {
        line(String::new());
        line(format!(
            "  capture: {path} ({}, {} flushes, {} dropped)",
            crate::ending::Ending::of(&tl.end).word(),
            tl.end.flushes,
            tl.end.dropped
        ));
        line(format!(
            "  picture: memsleuth report timeline {path} -o timeline.png"
        ));
    }
    out
}

#[derive(Serialize)]
struct ProcessJson<'a> {
    pid: u32,
    ppid: u32,
    command: &'a [String],
    root: bool,
    #[serde(serialize_with = "memsleuth_analysis::timeline::exit_json")]
    exit: memsleuth_analysis::Exit,
    metric: &'static str,
    last: u64,
    max: u64,
    verdict: &'a Verdict,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    capture: Option<&'a str>,
    pid: u32,
    command: &'a [String],
    python_version: &'a str,
    start_unix_ns: u64,
    interval: f64,
    end: &'a memsleuth_analysis::EndInfo,
    metric: &'static str,
    total_metric: &'static str,
    /// The process the verdict is about; null for the whole tree.
    verdict_pid: Option<u32>,
    verdict_scope: String,
    first: u64,
    last: u64,
    peak: u64,
    peak_at: f64,
    peak_rss_hwm: u64,
    per_iteration: Option<f64>,
    marks: usize,
    verdict: &'a Verdict,
    processes: Vec<ProcessJson<'a>>,
    /// Allocation leaks, when the capture has allocation events.
    #[serde(skip_serializing_if = "Option::is_none")]
    leaks: Option<serde_json::Value>,
    /// The one verdict on the program (`report verdict --json`'s model), when the capture has
    /// allocation events; `verdict` above is the memory trend's.
    #[serde(skip_serializing_if = "Option::is_none")]
    program_verdict: Option<serde_json::Value>,
}

/// The summary as JSON (no raw series: `memsleuth report timeline --json` has those).
pub fn summary_json(report: &TimelineReport, capture_path: Option<&str>) -> String {
    summary_json_with_leaks(report, capture_path, None, None)
}

/// The summary as JSON with a `leaks` key (see `allocs::leaks_summary_value`) and a
/// `program_verdict` key (see `verdict::verdict_value`) when the capture has allocation events.
pub fn summary_json_with_leaks(
    report: &TimelineReport,
    capture_path: Option<&str>,
    leaks: Option<serde_json::Value>,
    program_verdict: Option<serde_json::Value>,
) -> String {
    let tl = &report.timeline;
    let pick =
        |p: Option<&memsleuth_analysis::TotalPoint>| p.map_or(0, |p| p.get(report.total_metric));
    let processes = report
        .processes
        .iter()
        .filter_map(|p| {
            let s = tl.processes.iter().find(|s| s.pid == p.pid)?;
            Some(ProcessJson {
                pid: p.pid,
                ppid: s.ppid,
                command: &s.argv,
                root: s.root,
                exit: s.exit,
                metric: p.metric,
                last: p.last,
                max: p.max,
                verdict: &p.verdict,
            })
        })
        .collect();
    let model = SummaryJson {
        capture: capture_path,
        pid: tl.pid,
        command: &tl.argv,
        python_version: &tl.python_version,
        start_unix_ns: tl.start_unix_ns,
        interval: tl.interval,
        end: &tl.end,
        metric: report.metric,
        total_metric: report.total_metric,
        verdict_pid: report.verdict_pid,
        verdict_scope: crate::labels::verdict_scope(report),
        first: pick(tl.total.first()),
        last: pick(tl.total.last()),
        peak: report.peak,
        peak_at: report.peak_at,
        peak_rss_hwm: report.peak_rss_hwm,
        per_iteration: report.per_mark,
        marks: tl.marks.len(),
        verdict: &report.verdict,
        processes,
        leaks,
        program_verdict,
    };
    serde_json::to_string_pretty(&model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_models::{growing, tree};

    #[test]
    fn descriptors_and_threads_show_beside_memory_when_counted() {
        let mut r = growing();
        let text = summary_text(&r, None);
        assert!(!text.contains("open fds"), "{text}");
        assert!(!text.contains("threads"), "{text}");

        let n = r.timeline.processes[0].points.len() as u64;
        for (i, p) in r.timeline.processes[0].points.iter_mut().enumerate() {
            p.fds = Some(7 + 2 * i as u64);
            p.threads = Some(3);
        }
        for (i, t) in r.timeline.total.iter_mut().enumerate() {
            t.fds = 7 + 2 * i as u64;
            t.threads = 3;
        }
        let text = summary_text(&r, None);
        let expected = format!(
            "\n  open fds 7 at start → {} at end; threads 3 at start → 3 at end\n",
            7 + 2 * (n - 1)
        );
        assert!(text.contains(&expected), "{text}");
        // right under the memory line
        let memory = text.find("  memory (").expect("memory line");
        assert!(text[memory..]
            .lines()
            .nth(1)
            .unwrap_or("")
            .starts_with("  open fds"));
    }

    #[test]
    fn a_tree_says_its_counts_are_the_whole_trees() {
        // threads counted, descriptors not (another user's processes)
        let mut r = tree();
        for p in r
            .timeline
            .processes
            .iter_mut()
            .flat_map(|s| s.points.iter_mut())
        {
            p.threads = Some(2);
        }
        for t in &mut r.timeline.total {
            t.threads = 6;
        }
        let text = summary_text(&r, None);
        assert!(
            text.contains("\n  threads 6 at start → 6 at end (whole tree)\n"),
            "{text}"
        );
        assert!(!text.contains("open fds"), "{text}");
    }
}
