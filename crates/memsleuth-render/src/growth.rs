//! Text and JSON for the object growth report (`memsleuth report growth`).
//!
//! Text leads with the growing types and their rates, then a table of types with their counts and
//! bytes at the two censuses compared, the verdict, and under each growing type where its sampled
//! instances were allocated. Notes on the collector follow: disabled collection and unreachable
//! cycles piling up are the two gc-side reasons objects stay alive.

use std::path::Path;

use memsleuth_analysis::growth::{Basis, GrowthReport, TypeGrowth, TypeSite};
use serde::Serialize;

use crate::allocs::{display_path, site_label};
use crate::escape::printable;
use crate::units::{bytes, count, seconds};

/// Growing types named in the headline.
const HEADLINE_TYPES: usize = 3;
/// Allocation sites shown under a growing type (the rest are counted).
const SITES_SHOWN: usize = 3;
/// Longest type name before it is cut in the table.
const TYPE_WIDTH: usize = 40;
/// Longest site label under a type.
const SITE_WIDTH: usize = 70;

/// `+2,160`, `-50`, `0`.
fn signed_count(n: i64) -> String {
    let sign = match n.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    format!("{sign}{}", count(n.unsigned_abs()))
}

/// Objects per second: `+120/s`, `+0.5/s`, `+1,235/s`.
pub(crate) fn count_rate(r: f64) -> String {
    let sign = if r > 0.0 {
        "+"
    } else if r < 0.0 {
        "-"
    } else {
        ""
    };
    let a = r.abs();
    if a >= 10.0 || a == 0.0 {
        format!("{sign}{}/s", count(a.round() as u64))
    } else {
        format!("{sign}{a:.1}/s")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", count(n as u64))
    }
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let kept: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// `#3 (4.0 s)`: census numbers are 1-based, as `--from #3` takes them.
fn census_label(r: &GrowthReport, i: usize) -> String {
    let t = r.censuses.get(i).map_or(0, |c| c.t_ns) as f64 / 1e9;
    format!("#{} ({})", i + 1, seconds(t))
}

/// What a type's row says in its verdict column.
fn verdict_cell(r: &GrowthReport, t: &TypeGrowth) -> String {
    match (r.basis, &t.verdict) {
        (Basis::Trend, Some(v)) if t.growing => format!("growing {}", count_rate(v.rate)),
        (Basis::Trend, _) if t.warmup_only => "warm-up only".into(),
        (Basis::Trend, Some(v)) => v.kind.as_str().into(),
        _ => match t.delta_count.signum() {
            1 => "grew".into(),
            -1 => "shrank".into(),
            _ => "unchanged".into(),
        },
    }
}

/// A growing type in the headline: `myapp.Session +120/s` (trend) or `app.Job +50` (diff).
fn headline_item(r: &GrowthReport, t: &TypeGrowth) -> String {
    match (&t.verdict, r.basis) {
        (Some(v), Basis::Trend) => format!("{} {}", printable(&t.name), count_rate(v.rate)),
        _ => format!("{} {}", printable(&t.name), signed_count(t.delta_count)),
    }
}

/// One or two lines: how many types grow and the fastest, and what was compared.
pub fn growth_headline(r: &GrowthReport) -> String {
    let growing: Vec<&TypeGrowth> = r.growing_types().collect();
    let span = format!("{} to {}", census_label(r, r.from), census_label(r, r.to));
    let censuses = r.to - r.from + 1;
    let mut out = if growing.is_empty() {
        match r.basis {
            Basis::Trend => format!(
                "No type is growing over {}, {span}: what grew did so once (warm-up) or not \
                 steadily\n",
                plural(censuses, "census", "censuses")
            ),
            Basis::Diff if censuses == 1 => format!(
                "Only one census ({}): nothing to compare it with\n",
                census_label(r, r.from)
            ),
            Basis::Diff => format!("No type grew from census {span}\n"),
        }
    } else {
        let names: Vec<String> = growing
            .iter()
            .take(HEADLINE_TYPES)
            .map(|t| headline_item(r, t))
            .collect();
        let more = if growing.len() > HEADLINE_TYPES {
            format!(" and {} more", growing.len() - HEADLINE_TYPES)
        } else {
            String::new()
        };
        match r.basis {
            Basis::Trend => format!(
                "{} growing: {}{more}\n  trend over {}, {span}; one-off growth (warm-up) is not \
                 counted\n",
                plural(growing.len(), "type", "types"),
                names.join(", "),
                plural(censuses, "census", "censuses"),
            ),
            Basis::Diff => format!(
                "{} grew from census {span}: {}{more}\n",
                plural(growing.len(), "type", "types"),
                names.join(", "),
            ),
        }
    };
    if r.basis == Basis::Diff && censuses > 1 {
        out.push_str(&format!(
            "  only {censuses} censuses: a plain difference (as objgraph's show_growth), not a \
             trend; take {} or more for verdicts\n",
            memsleuth_analysis::growth::MIN_TREND_CENSUSES
        ));
    }
    out
}

/// Lines under a growing type: where its sampled instances were allocated.
fn site_lines(r: &GrowthReport, t: &TypeGrowth, base: Option<&Path>, indent: &str) -> Vec<String> {
    let mut out = Vec::new();
    if r.sites_at.is_none() {
        return out;
    }
    if t.samples == 0 {
        out.push(format!(
            "{indent}(the census kept no sample instances of this type to locate)"
        ));
        return out;
    }
    let n = t.samples;
    for s in t.sites.iter().take(SITES_SHOWN) {
        out.push(format!(
            "{indent}allocated at {} ({} of {n} samples)",
            site_label(&s.location, base, SITE_WIDTH),
            count(u64::from(s.samples))
        ));
        out.extend(
            callers(s)
                .iter()
                .map(|c| format!("{indent}  ← {}", caller(c, base))),
        );
    }
    if t.sites.len() > SITES_SHOWN {
        let rest: u32 = t.sites[SITES_SHOWN..].iter().map(|s| s.samples).sum();
        out.push(format!(
            "{indent}… {} more {} ({} of {n} samples)",
            t.sites.len() - SITES_SHOWN,
            if t.sites.len() - SITES_SHOWN == 1 {
                "site"
            } else {
                "sites"
            },
            count(u64::from(rest))
        ));
    }
    if t.unmatched > 0 {
        // in a capture sampled by bytes most instances' allocations were never recorded
        let why = if r.capture.sampled() {
            "not among the sampled allocations"
        } else {
            "allocated before tracking began (or outside Python's allocators)"
        };
        out.push(format!(
            "{indent}{} of {n} samples {why}",
            count(u64::from(t.unmatched))
        ));
    }
    out
}

/// Lines under a growing type: what keeps sample instances alive.
fn holder_lines(t: &TypeGrowth, base: Option<&Path>, indent: &str) -> Vec<String> {
    t.holders
        .iter()
        .map(|p| format!("{indent}{}", crate::allocs::holder_line(p, base)))
        .collect()
}

/// The callers in a site's chain, innermost first (the site itself is on its own line).
fn callers(s: &TypeSite) -> Vec<&memsleuth_analysis::Location> {
    s.chain.iter().rev().skip(1).collect()
}

/// `function()  file:line`: the caller form of the leak report, function first.
fn caller(l: &memsleuth_analysis::Location, base: Option<&Path>) -> String {
    let name = printable(&l.function);
    let function = if name.starts_with('<') {
        name.into_owned()
    } else {
        format!("{name}()")
    };
    match (l.file.is_empty(), l.line) {
        (true, _) => function,
        (false, 0) => format!("{function}  {}", display_path(&l.file, base)),
        (false, line) => format!("{function}  {}:{line}", display_path(&l.file, base)),
    }
}

fn gc_notes(r: &GrowthReport) -> Vec<String> {
    let g = &r.gc;
    let censuses = r.to - r.from + 1;
    let mut out = Vec::new();
    if g.disabled > 0 {
        let when = if g.disabled == censuses {
            "at every census".to_string()
        } else if g.disabled_at_end {
            format!(
                "at {} of {censuses} censuses, the last included",
                count(g.disabled as u64)
            )
        } else {
            format!(
                "at {} of {censuses} censuses (enabled again by the last)",
                count(g.disabled as u64)
            )
        };
        out.push(format!(
            "gc disabled: automatic collection was off (gc.disable()) {when}; reference cycles \
             are only freed by an explicit gc.collect()"
        ));
    }
    if let Some(u) = g.unreachable.as_ref().filter(|u| u.growing) {
        out.push(format!(
            "unreachable cycles piling up: {} → {} objects, {} ({} at the last census), waiting \
             for a collection that does not come often enough",
            count(u.from),
            count(u.to),
            count_rate(u.rate),
            bytes(u.to_bytes as f64)
        ));
    }
    if g.garbage_to > 0 {
        out.push(format!(
            "gc.garbage holds {} uncollectable objects (it held {} at the first census)",
            count(g.garbage_to),
            count(g.garbage_from)
        ));
    }
    if g.collections > 0 {
        out.push(format!(
            "gc: {} in the range freed {} objects{}",
            plural(g.collections as usize, "collection", "collections"),
            count(g.collected),
            if g.uncollectable > 0 {
                format!(", {} uncollectable", count(g.uncollectable))
            } else {
                String::new()
            }
        ));
    }
    out
}

fn caveats(r: &GrowthReport) -> Vec<String> {
    let c = &r.capture;
    let mut out = Vec::new();
    if let Some(warning) = crate::ending::warning(&c.end) {
        out.push(warning);
    }
    if r.growing > 0 && !r.has_events {
        out.push(
            "note: the capture has no allocation events, so where the growing types were \
             allocated is unknown; `memsleuth run` records allocations and censuses together"
                .into(),
        );
    }
    if c.unresolved_frames > 0 {
        out.push(format!(
            "note: {} frames were never named (the capture ended before they were resolved)",
            count(c.unresolved_frames)
        ));
    }
    out
}

fn title(r: &GrowthReport) -> String {
    let c = &r.capture;
    let mut s = format!(
        "memsleuth growth · {} (pid {}) · {}",
        crate::summary::command(&c.argv, 60),
        c.pid,
        seconds(c.duration())
    );
    if let Some(v) = c.python_version.split_whitespace().next() {
        s.push_str(&format!(" · Python {}", printable(v)));
    }
    s
}

/// The growth report for people: `top` types (0: all), growing ones first.
pub fn growth_text(r: &GrowthReport, top: usize) -> String {
    growth_text_in(r, top, std::env::current_dir().ok().as_deref())
}

fn growth_text_in(r: &GrowthReport, top: usize, base: Option<&Path>) -> String {
    let top = if top == 0 { usize::MAX } else { top };
    let mut out = title(r);
    out.push('\n');
    out.push_str(&growth_headline(r));
    let shown: Vec<&TypeGrowth> = r.types.iter().take(top).collect();
    if !shown.is_empty() {
        out.push('\n');
        let names: Vec<String> = shown
            .iter()
            .map(|t| cut(&printable(&t.name), TYPE_WIDTH))
            .collect();
        let counts: Vec<String> = shown
            .iter()
            .map(|t| format!("{} → {}", count(t.from_count), count(t.to_count)))
            .collect();
        let deltas: Vec<String> = shown.iter().map(|t| signed_count(t.delta_count)).collect();
        let sizes: Vec<String> = shown
            .iter()
            .map(|t| {
                format!(
                    "{} → {}",
                    bytes(t.from_bytes as f64),
                    bytes(t.to_bytes as f64)
                )
            })
            .collect();
        let width = |v: &[String], head: &str| {
            v.iter()
                .map(|s| s.chars().count())
                .chain([head.chars().count()])
                .max()
                .unwrap_or(0)
        };
        let (wn, wc, wd, wb) = (
            width(&names, "type"),
            width(&counts, "count"),
            width(&deltas, "Δ"),
            width(&sizes, "bytes"),
        );
        let head = format!(
            "  {}  {}  {}  {}  verdict",
            pad("type", wn),
            pad("count", wc),
            pad("Δ", wd),
            pad("bytes", wb)
        );
        out.push_str(&head);
        out.push('\n');
        let indent = " ".repeat(4);
        for (i, t) in shown.iter().enumerate() {
            let line = format!(
                "  {}  {}  {}{}  {}  {}",
                pad(&names[i], wn),
                pad(&counts[i], wc),
                " ".repeat(wd - deltas[i].chars().count()),
                deltas[i],
                pad(&sizes[i], wb),
                verdict_cell(r, t)
            );
            out.push_str(line.trim_end());
            out.push('\n');
            if t.growing {
                for l in site_lines(r, t, base, &indent)
                    .into_iter()
                    .chain(holder_lines(t, base, &indent))
                {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        if r.types.len() > shown.len() {
            let rest = r.types.len() - shown.len();
            out.push_str(&format!(
                "  … {} more {} (--top 0 shows them all)\n",
                count(rest as u64),
                if rest == 1 { "type" } else { "types" }
            ));
        }
    }
    let notes = gc_notes(r);
    let caveats = caveats(r);
    if !notes.is_empty() || !caveats.is_empty() {
        out.push('\n');
    }
    for n in notes.iter().chain(&caveats) {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

#[derive(Serialize)]
struct CensusRefJson {
    /// 0-based index into `censuses`.
    index: usize,
    /// Seconds since the capture start.
    t: f64,
}

#[derive(Serialize)]
struct GrowthJson<'a> {
    headline: String,
    basis: Basis,
    from: CensusRefJson,
    to: CensusRefJson,
    /// Seconds between the two.
    span: f64,
    growing: usize,
    /// Types in the range (all of them, not only those listed).
    type_count: usize,
    has_events: bool,
    /// Census whose samples were mapped to allocation sites.
    sites_at: Option<usize>,
    capture: &'a memsleuth_analysis::allocs::CaptureInfo,
    gc: &'a memsleuth_analysis::growth::GcSummary,
    censuses: &'a [memsleuth_analysis::growth::CensusPoint],
    types: &'a [TypeGrowth],
}

/// The growth report as JSON: `top` types (0: all) with their series, verdicts and sites.
pub fn growth_json(r: &GrowthReport, top: usize) -> String {
    let top = if top == 0 {
        r.types.len()
    } else {
        top.min(r.types.len())
    };
    let at = |i: usize| CensusRefJson {
        index: i,
        t: r.censuses.get(i).map_or(0, |c| c.t_ns) as f64 / 1e9,
    };
    let model = GrowthJson {
        headline: growth_headline(r).trim_end().to_string(),
        basis: r.basis,
        from: at(r.from),
        to: at(r.to),
        span: r.span(),
        growing: r.growing,
        type_count: r.types.len(),
        has_events: r.has_events,
        sites_at: r.sites_at,
        capture: &r.capture,
        gc: &r.gc,
        censuses: &r.censuses,
        types: &r.types[..top],
    };
    serde_json::to_string_pretty(&model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use memsleuth_analysis::allocs::CaptureInfo;
    use memsleuth_analysis::gcstats::Unreachable;
    use memsleuth_analysis::growth::{CensusPoint, GcSummary};
    use memsleuth_analysis::{Location, Verdict, VerdictKind};

    use super::*;

    fn verdict(kind: VerdictKind, rate: f64) -> Verdict {
        Verdict {
            kind,
            rate,
            rate_low: rate * 0.9,
            rate_high: rate * 1.1,
            p_value: 0.0001,
            warmup: 0.0,
            window_start: 0.0,
            window_end: 18.0,
            intercept: 0.0,
            net_change: 0.0,
            releases: 0,
            points: 10,
            reason: crate::plot::test_models::reason_of(kind),
        }
    }

    fn loc(function: &str, file: &str, line: u32) -> Location {
        Location {
            function: function.into(),
            file: file.into(),
            line,
            library: String::new(),
        }
    }

    fn row(name: &str, from: u64, to: u64, v: Option<Verdict>) -> TypeGrowth {
        let growing = v.as_ref().is_some_and(|v| v.kind == VerdictKind::Growing);
        TypeGrowth {
            name: name.into(),
            counts: vec![from, to],
            bytes: vec![56 * from, 56 * to],
            from_count: from,
            to_count: to,
            delta_count: to as i64 - from as i64,
            from_bytes: 56 * from,
            to_bytes: 56 * to,
            delta_bytes: 56 * (to as i64 - from as i64),
            retained: None,
            bytes_rate: v.as_ref().map(|v| v.rate * 56.0),
            warmup_only: false,
            growing,
            verdict: v,
            samples: 0,
            unmatched: 0,
            sites: Vec::new(),
            holders: Vec::new(),
        }
    }

    fn model() -> GrowthReport {
        let mut session = row(
            "myapp.Session",
            1_000,
            3_160,
            Some(verdict(VerdictKind::Growing, 120.0)),
        );
        session.samples = 6;
        session.unmatched = 1;
        session.sites = vec![
            TypeSite {
                location: loc("make_session", "/srv/app/app.py", 10),
                chain: vec![
                    loc("<module>", "/srv/app/app.py", 1),
                    loc("serve", "/srv/app/app.py", 5),
                    loc("make_session", "/srv/app/app.py", 10),
                ],
                samples: 4,
            },
            TypeSite {
                location: loc("other", "/srv/app/app.py", 20),
                chain: vec![loc("other", "/srv/app/app.py", 20)],
                samples: 1,
            },
        ];
        let mut list = row("list", 100, 3_000, Some(verdict(VerdictKind::Plateau, 3.0)));
        list.warmup_only = true;
        let dict = row(
            "dict",
            5_000,
            5_003,
            Some(verdict(VerdictKind::Stable, 0.1)),
        );
        let censuses = (0..10u64)
            .map(|i| CensusPoint {
                t_ns: 2_000_000_000 * i,
                objects: 10_000,
                bytes: 1 << 20,
                gc_enabled: i < 6,
                unreachable: 50 * i,
                unreachable_bytes: 3_200 * i,
                ..CensusPoint::default()
            })
            .collect();
        GrowthReport {
            capture: CaptureInfo {
                pid: 7,
                argv: vec!["python".into(), "app.py".into()],
                python_version: "3.12.0 (main)".into(),
                duration_ns: 19_000_000_000,
                ..CaptureInfo::default()
            },
            censuses,
            from: 0,
            to: 9,
            basis: Basis::Trend,
            types: vec![session, list, dict],
            growing: 1,
            gc: GcSummary {
                disabled: 4,
                disabled_at_end: true,
                unreachable: Some(Unreachable {
                    from: 0,
                    to: 450,
                    to_bytes: 450 * 64,
                    from_ns: 0,
                    to_ns: 18_000_000_000,
                    trend: Some(verdict(VerdictKind::Growing, 25.0)),
                    rate: 25.0,
                    growing: true,
                }),
                ..GcSummary::default()
            },
            has_events: true,
            sites_at: Some(9),
        }
    }

    #[test]
    fn text_leads_with_growing_types_and_their_sites() {
        let text = growth_text_in(&model(), 10, Some(Path::new("/srv/app")));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "memsleuth growth · python app.py (pid 7) · 19.0 s · Python 3.12.0"
        );
        assert_eq!(lines[1], "1 type growing: myapp.Session +120/s");
        assert_eq!(
            lines[2],
            "  trend over 10 censuses, #1 (0 ms) to #10 (18.0 s); one-off growth (warm-up) is not \
             counted"
        );
        let session = lines
            .iter()
            .position(|l| l.trim_start().starts_with("myapp.Session"))
            .unwrap();
        assert!(
            lines[session].contains("1,000 → 3,160")
                && lines[session].contains("+2,160")
                && lines[session].contains("54.7 KiB → 173 KiB")
                && lines[session].ends_with("growing +120/s"),
            "{}",
            lines[session]
        );
        assert_eq!(
            lines[session + 1],
            "    allocated at app.py:10 make_session() (4 of 6 samples)"
        );
        assert_eq!(lines[session + 2], "      ← serve()  app.py:5");
        assert_eq!(lines[session + 3], "      ← <module>  app.py:1");
        assert_eq!(
            lines[session + 4],
            "    allocated at app.py:20 other() (1 of 6 samples)"
        );
        assert!(lines[session + 5].contains("1 of 6 samples allocated before tracking"));
        assert!(text.contains("warm-up only"), "{text}");
        assert!(lines
            .iter()
            .any(|l| l.trim_start().starts_with("dict") && l.ends_with("stable")));
        assert!(
            text.contains("gc disabled: automatic collection was off (gc.disable()) at 4 of 10 censuses, the last included"),
            "{text}"
        );
        assert!(
            text.contains("unreachable cycles piling up: 0 → 450 objects, +25/s"),
            "{text}"
        );
        // columns line up: every row's count column starts where the header's does
        let header = lines.iter().find(|l| l.contains("verdict")).unwrap();
        let col = header.find("count").unwrap();
        assert_eq!(lines[session].find("1,000").unwrap(), col);
    }

    #[test]
    fn top_cuts_the_table_and_counts_the_rest() {
        let text = growth_text_in(&model(), 1, None);
        assert!(
            text.contains("… 2 more types (--top 0 shows them all)"),
            "{text}"
        );
        assert!(!text.contains("warm-up only"));
        let all = growth_text_in(&model(), 0, None);
        assert!(all.contains("warm-up only"));
    }

    #[test]
    fn a_diff_says_it_is_not_a_trend() {
        let mut r = model();
        r.basis = Basis::Diff;
        r.from = 0;
        r.to = 1;
        for t in &mut r.types {
            t.verdict = None;
            t.warmup_only = false;
            t.growing = t.delta_count > 0;
        }
        r.growing = 3;
        r.gc = GcSummary::default();
        let text = growth_text_in(&r, 10, None);
        assert!(
            text.contains(
                "3 types grew from census #1 (0 ms) to #2 (2.0 s): myapp.Session +2,160, list \
                 +2,900, dict +3"
            ),
            "{text}"
        );
        assert!(
            text.contains("only 2 censuses: a plain difference"),
            "{text}"
        );
        assert!(text.contains("  grew\n"), "{text}");
        assert!(!text.contains("gc disabled"));
    }

    #[test]
    fn nothing_growing_and_no_events_are_said_plainly() {
        let mut r = model();
        r.types.remove(0);
        r.growing = 0;
        let text = growth_text_in(&r, 10, None);
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("No type is growing over 10 censuses"));
        let mut r = model();
        r.has_events = false;
        r.sites_at = None;
        let text = growth_text_in(&r, 10, None);
        assert!(!text.contains("allocated at"));
        assert!(
            text.contains("note: the capture has no allocation events"),
            "{text}"
        );
    }

    #[test]
    fn json_has_the_model_and_the_headline() {
        let v: serde_json::Value = serde_json::from_str(&growth_json(&model(), 2)).unwrap();
        assert_eq!(v["basis"], "trend");
        assert_eq!(v["growing"], 1);
        assert_eq!(v["type_count"], 3);
        assert_eq!(v["types"].as_array().unwrap().len(), 2);
        assert_eq!(v["types"][0]["name"], "myapp.Session");
        assert_eq!(v["types"][0]["verdict"]["kind"], "growing");
        assert_eq!(v["types"][0]["sites"][0]["location"]["line"], 10);
        assert_eq!(v["types"][0]["sites"][0]["samples"], 4);
        assert_eq!(v["to"]["index"], 9);
        assert_eq!(v["to"]["t"], 18.0);
        assert_eq!(v["censuses"].as_array().unwrap().len(), 10);
        assert_eq!(v["censuses"][9]["gc_enabled"], false);
        assert_eq!(v["gc"]["unreachable"]["growing"], true);
        assert_eq!(v["headline"].as_str().unwrap().lines().count(), 2);
    }

    #[test]
    fn counts_and_rates_read_like_numbers() {
        assert_eq!(signed_count(2_160), "+2,160");
        assert_eq!(signed_count(-50), "-50");
        assert_eq!(signed_count(0), "0");
        assert_eq!(count_rate(120.0), "+120/s");
        assert_eq!(count_rate(0.46), "+0.5/s");
        assert_eq!(count_rate(1_234.6), "+1,235/s");
        assert_eq!(count_rate(-3.0), "-3.0/s");
        assert_eq!(count_rate(0.0), "0/s");
    }
}
