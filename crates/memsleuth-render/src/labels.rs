//! Labels of things the analyses return as data: a frame in a profile, the series a memory
//! verdict is about.

use memsleuth_analysis::{Location, TimelineReport};

/// A frame as the profile renderers label it: `function (file:line)`; `function (file)` when
/// the line is unknown, `function` alone when the file is, and `[unknown]` for a nameless
/// function.
pub fn frame(loc: &Location) -> String {
    let function = if loc.function.is_empty() {
        "[unknown]"
    } else {
        loc.function.as_str()
    };
    match (loc.file.is_empty(), loc.line) {
        (true, _) => function.to_string(),
        (false, 0) => format!("{function} ({})", loc.file),
        (false, line) => format!("{function} ({}:{line})", loc.file),
    }
}

/// What a memory verdict was computed on: "RSS", "total PSS", "RSS of pid 42".
pub fn verdict_scope(report: &TimelineReport) -> String {
    let metric = report.metric.to_uppercase();
    match report.verdict_pid {
        Some(pid) => format!("{metric} of pid {pid}"),
        None if report.timeline.processes.len() > 1 => format!("total {metric}"),
        None => metric,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_name_function_file_and_line() {
        let loc = |function: &str, file: &str, line| Location {
            function: function.into(),
            file: file.into(),
            line,
        };
        assert_eq!(frame(&loc("f", "a.py", 3)), "f (a.py:3)");
        assert_eq!(frame(&loc("f", "a.py", 0)), "f (a.py)");
        assert_eq!(frame(&loc("f", "", 7)), "f");
        assert_eq!(frame(&loc("", "a.py", 1)), "[unknown] (a.py:1)");
    }

    #[test]
    fn the_scope_names_the_metric_and_the_process() {
        let mut r = crate::plot::test_models::growing();
        r.metric = "rss";
        r.verdict_pid = None;
        assert_eq!(verdict_scope(&r), "RSS");
        r.verdict_pid = Some(42);
        assert_eq!(verdict_scope(&r), "RSS of pid 42");
        let mut t = crate::plot::test_models::tree();
        t.verdict_pid = None;
        t.metric = "pss";
        assert_eq!(verdict_scope(&t), "total PSS");
    }
}
