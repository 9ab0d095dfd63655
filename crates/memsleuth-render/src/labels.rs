//! Labels of things the analyses return as data: a frame in a profile, what a profile shows,
//! the series a memory verdict is about.

use memsleuth_analysis::{Location, Profile, ProfileSubject, TimelineReport};

/// A frame as the profile renderers label it: `function (file:line)`; `function (file)` when
/// the line is unknown, `function` alone when the file is, and `[unknown]` for a nameless
/// function.
pub fn frame(loc: &Location) -> String {
    let function = if loc.function.is_empty() {
        "[unknown]"
    } else {
        loc.function.as_str()
    };
    let label = match (loc.file.is_empty(), loc.line) {
        (true, _) => function.to_string(),
        (false, 0) => format!("{function} ({})", loc.file),
        (false, line) => format!("{function} ({}:{line})", loc.file),
    };
    // a native frame names its library too
    if loc.library.is_empty() {
        label
    } else {
        format!("{label} [{}]", loc.library)
    }
}

/// A profile's title: `leaks in app.py`, `peak of app.py`, `allocations of app.py`.
pub fn profile_title(p: &Profile) -> String {
    let program = p.program.as_deref().unwrap_or("the program");
    match p.subject {
        ProfileSubject::Leaks { .. } => format!("leaks in {program}"),
        ProfileSubject::Peak { .. } => format!("peak of {program}"),
        ProfileSubject::Allocations => format!("allocations of {program}"),
    }
}

/// What a profile's values mean, under its title.
pub fn profile_what(p: &Profile) -> String {
    match p.subject {
        ProfileSubject::Leaks { at_ns: None } => {
            "allocated while tracking and still alive at the end".into()
        }
        ProfileSubject::Leaks { at_ns: Some(t) } => format!(
            "allocated while tracking and still alive at {:.1} s",
            t as f64 / 1e9
        ),
        ProfileSubject::Peak { at_ns } => format!(
            "alive at the tracked heap's high-water mark, {:.2} s into the run",
            at_ns as f64 / 1e9
        ),
        ProfileSubject::Allocations => "allocated while tracking (freed or not)".into(),
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
            library: String::new(),
        };
        assert_eq!(frame(&loc("f", "a.py", 3)), "f (a.py:3)");
        let native = Location {
            library: "cmem.so".into(),
            ..loc("leak", "cmem.c", 42)
        };
        assert_eq!(frame(&native), "leak (cmem.c:42) [cmem.so]");
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

    #[test]
    fn profiles_say_what_they_show_of_which_program() {
        let mut p = Profile {
            program: Some("app.py".into()),
            subject: ProfileSubject::Leaks { at_ns: None },
            ..Profile::default()
        };
        assert_eq!(profile_title(&p), "leaks in app.py");
        assert_eq!(
            profile_what(&p),
            "allocated while tracking and still alive at the end"
        );
        p.subject = ProfileSubject::Leaks {
            at_ns: Some(2_500_000_000),
        };
        assert_eq!(
            profile_what(&p),
            "allocated while tracking and still alive at 2.5 s"
        );
        p.subject = ProfileSubject::Peak {
            at_ns: 1_234_000_000,
        };
        assert_eq!(profile_title(&p), "peak of app.py");
        assert!(profile_what(&p).ends_with("1.23 s into the run"));
        p.program = None;
        p.subject = ProfileSubject::Allocations;
        assert_eq!(profile_title(&p), "allocations of the program");
    }
}
