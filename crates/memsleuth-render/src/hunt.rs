//! The words of `hunt`: does calling this function leak, signal by signal.

use memsleuth_analysis::hunt::{HuntKind, HuntReason, HuntReport, RunVerdict, Signal};

use crate::allocs::{holder_line, location_label};
use crate::units;

/// The JSON document's version.
const SCHEMA: u32 = 1;
/// Growing types shown in the text.
const TYPES_SHOWN: usize = 8;
/// Leaking lines shown in the text.
const SITES_SHOWN: usize = 5;
/// Deltas shown per signal; more are summarised.
const DELTAS_SHOWN: usize = 8;

pub fn kind_word(k: HuntKind) -> &'static str {
    match k {
        HuntKind::Leaks => "leaks",
        HuntKind::NoLeak => "no leak",
        HuntKind::Inconclusive => "inconclusive",
    }
}

pub fn signal_label(s: Signal) -> &'static str {
    match s {
        Signal::Refs => "reference count",
        Signal::Blocks => "Python blocks",
        Signal::Objects => "live objects",
        Signal::NativeHeap => "C heap in use",
        Signal::Rss => "RSS",
        Signal::Fds => "open files",
        Signal::Threads => "threads",
    }
}

/// A per-run amount: bytes in human units, or a count.
fn amount(bytes: bool, v: f64) -> String {
    if bytes {
        units::signed_bytes(v)
    } else if v > 0.0 {
        format!("+{}", trim(v))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn deltas(bytes: bool, v: &RunVerdict) -> String {
    let shown: Vec<String> = v
        .deltas
        .iter()
        .take(DELTAS_SHOWN)
        .map(|&d| amount(bytes, d))
        .collect();
    let more = v.deltas.len().saturating_sub(DELTAS_SHOWN);
    if more > 0 {
        format!("{} … {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Why, in a few words.
fn why(bytes: bool, v: &RunVerdict) -> String {
    let n = v.deltas.len();
    let per_run = amount(bytes, v.per_run);
    match v.reason {
        HuntReason::SameRiseEveryRun => format!("{per_run} in each of {n} runs"),
        HuntReason::RoseEveryRun => format!("{per_run} per run (median), a rise in all {n} runs"),
        HuntReason::RoseInMost { rose } => format!(
            "{per_run} per run (median), a rise in {rose} of {n} runs (chance {:.1}%)",
            v.chance * 100.0
        ),
        HuntReason::RoseInFew { rose: 0 } => "no rise".to_string(),
        HuntReason::RoseInFew { rose } => format!("a rise in {rose} of {n} runs only"),
        HuntReason::TooFewRuns => format!(
            "a rise in all {n} runs so far; {} more would decide",
            v.more_runs
        ),
        HuntReason::Mixed { rose } => format!(
            "a rise in {rose} of {n} runs; about {} more runs would decide",
            v.more_runs
        ),
        HuntReason::NotRead => "not read".to_string(),
    }
}

/// The hunt as text: the answer first, then each signal with its runs. Paths under `base`
/// (the current directory) are shown relative to it.
pub fn hunt_text(r: &HuntReport, base: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let answer = match r.kind {
        HuntKind::Leaks => "LEAKS".to_string(),
        HuntKind::NoLeak => "no leak".to_string(),
        HuntKind::Inconclusive => "inconclusive".to_string(),
    };
    out.push_str(&format!(
        "memsleuth hunt: {} — {answer} (after {} warm-up run{} and {} measured run{})\n",
        r.target,
        r.warmup,
        plural(r.warmup),
        r.runs,
        plural(r.runs)
    ));
    let width = r
        .signals
        .iter()
        .map(|s| signal_label(s.signal).len())
        .max()
        .unwrap_or(0);
    for s in &r.signals {
        let label = signal_label(s.signal);
        if s.verdict.reason == HuntReason::NotRead {
            let note = match s.signal {
                Signal::Refs => "not read: a debug build of Python has it (python3.X-dbg)",
                _ => "not read on this platform",
            };
            out.push_str(&format!("  {label:<width$}  {note}\n"));
            continue;
        }
        out.push_str(&format!(
            "  {label:<width$}  {:<12}  {}  [{}]\n",
            kind_word(s.verdict.kind),
            why(s.signal.is_bytes(), &s.verdict),
            deltas(s.signal.is_bytes(), &s.verdict),
        ));
    }
    if !r.types.is_empty() {
        out.push_str("  types that leak:\n");
        for t in r.types.iter().take(TYPES_SHOWN) {
            out.push_str(&format!(
                "    {}  {}, {} alive\n",
                t.name,
                why(false, &t.verdict),
                units::count(t.count)
            ));
        }
        let more = r.types.len().saturating_sub(TYPES_SHOWN);
        if more > 0 {
            out.push_str(&format!("    … {more} more (--json lists them all)\n"));
        }
    }
    if !r.sites.is_empty() {
        out.push_str(&format!(
            "  lines that leak ({} more run{} with every allocation tracked):\n",
            r.tracked_runs,
            plural(r.tracked_runs)
        ));
        for site in r.sites.iter().take(SITES_SHOWN) {
            out.push_str(&format!(
                "    {}  {}, {} alive\n",
                location_label(&site.location, base),
                why(true, &site.verdict),
                units::bytes(site.bytes as f64)
            ));
            if let Some(h) = &site.holder {
                out.push_str(&format!("      {}\n", holder_line(h, base)));
            }
        }
        let more = r.sites.len().saturating_sub(SITES_SHOWN);
        if more > 0 {
            out.push_str(&format!("    … {more} more (--json lists them all)\n"));
        }
    } else if r.kind == HuntKind::Leaks && r.tracked_runs == 0 {
        out.push_str("  (no lines named: allocations were already being tracked)\n");
    }
    if r.kind == HuntKind::Inconclusive {
        let more = r
            .signals
            .iter()
            .filter(|s| s.verdict.kind == HuntKind::Inconclusive)
            .map(|s| s.verdict.more_runs)
            .max()
            .unwrap_or(0);
        if more > 0 {
            out.push_str(&format!(
                "  more runs may decide: --runs {}\n",
                r.runs + more
            ));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The hunt as JSON, for scripts and the pytest plugin.
pub fn hunt_json(r: &HuntReport) -> String {
    let mut value = serde_json::to_value(r).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("schema".into(), SCHEMA.into());
        map.insert("leaks".into(), r.leaks().into());
        map.insert("bytes_per_run".into(), r.bytes_per_run().into());
    }
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use memsleuth_analysis::hunt::{Readings, Signal};

    fn report(blocks: &[f64], order: &[u64]) -> HuntReport {
        let mut r = Readings::default();
        for (b, n) in blocks.iter().zip(order) {
            r.push(
                &[
                    (Signal::Blocks, Some(*b)),
                    (Signal::Rss, Some(50e6)),
                    (Signal::Refs, None),
                ],
                &[("app.Order".to_string(), *n)],
            );
        }
        HuntReport::new("app.py::handle".into(), 3, 12, false, &r)
    }

    #[test]
    fn a_leak_names_the_signal_the_rise_per_run_and_the_type() {
        let text = hunt_text(&report(&[10.0, 13.0, 16.0, 19.0], &[0, 1, 2, 3]), None);
        assert!(
            text.starts_with("memsleuth hunt: app.py::handle — LEAKS"),
            "{text}"
        );
        assert!(text.contains("+3 in each of 3 runs"), "{text}");
        assert!(
            text.contains("app.Order  +1 in each of 3 runs, 3 alive"),
            "{text}"
        );
        assert!(text.contains("debug build"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&hunt_json(&report(
            &[10.0, 13.0, 16.0, 19.0],
            &[0, 1, 2, 3],
        )))
        .unwrap();
        assert_eq!(json["leaks"], true);
        assert_eq!(json["kind"], "leaks");
        assert_eq!(json["signals"][0]["signal"], "blocks");
        assert_eq!(json["types"][0]["name"], "app.Order");
    }

    #[test]
    fn the_lines_that_leak_come_with_their_holder() {
        use memsleuth_analysis::heap::{PathStep, RetentionPath, RootKind};
        use memsleuth_analysis::hunt::{leaking_sites, SiteVerdict};
        use memsleuth_analysis::{allocs::SiteAtMarks, Location};

        let mut r = report(&[10.0, 13.0, 16.0, 19.0], &[0, 1, 2, 3]);
        let at = Location {
            function: "handle".into(),
            file: "app.py".into(),
            line: 9,
            library: String::new(),
        };
        let step = |edge: &str, type_name: &str| PathStep {
            edge: edge.into(),
            type_name: type_name.into(),
            repr: String::new(),
            addr: 0,
            size: 0,
        };
        let marks = [SiteAtMarks {
            location: at,
            bytes: vec![0, 56, 112, 168],
            samples: vec![7],
        }];
        r.sites = leaking_sites(&marks, 12)
            .into_iter()
            .map(|(site, _)| SiteVerdict {
                holder: Some(RetentionPath {
                    root_kind: RootKind::Module,
                    root: "module app".into(),
                    steps: vec![
                        step("", "dict"),
                        step(".SEEN", "list"),
                        step("[2]", "Order"),
                    ],
                }),
                ..site
            })
            .collect();
        r.tracked_runs = 3;
        let text = hunt_text(&r, None);
        assert!(
            text.contains("lines that leak (3 more runs with every allocation tracked):"),
            "{text}"
        );
        assert!(
            text.contains("app.py:9 handle()  +56 B in each of 3 runs, 168 B alive"),
            "{text}"
        );
        assert!(
            text.contains("held by module app .SEEN → list [2] → Order"),
            "{text}"
        );
    }

    #[test]
    fn no_leak_says_so_for_every_signal() {
        let text = hunt_text(&report(&[10.0, 10.0, 11.0, 10.0], &[2, 2, 2, 2]), None);
        assert!(text.contains("— no leak"), "{text}");
        assert!(text.contains("a rise in 1 of 3 runs only"), "{text}");
        assert!(!text.contains("types that leak"), "{text}");
    }

    #[test]
    fn an_undecided_hunt_says_how_many_runs_would_decide() {
        let text = hunt_text(&report(&[10.0, 12.0, 15.0, 16.0], &[0, 0, 0, 0]), None);
        assert!(text.contains("inconclusive"), "{text}");
        assert!(text.contains("--runs 5"), "{text}");
    }
}
