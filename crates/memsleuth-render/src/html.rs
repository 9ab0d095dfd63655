//! The timeline as one self-contained HTML page: the verdict in words, the plot inlined as SVG,
//! per-process verdicts and the facts of the capture. No scripts, no network, no external assets.

use std::fmt::Write as _;

use memsleuth_analysis::{TimelineReport, VerdictKind};

use crate::plot::{self, RenderError};
use crate::units;

/// Renders the whole page.
pub fn timeline_html(report: &TimelineReport) -> Result<String, RenderError> {
    let svg = plot::timeline_svg(report)?;
    let tl = &report.timeline;
    let command = plot::command_line(&tl.argv);
    let command = if command.is_empty() {
        format!("pid {}", tl.pid)
    } else {
        command
    };
    let metric = crate::labels::verdict_scope(report);

    let mut page = String::with_capacity(svg.len() + 8192);
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>memsleuth · {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&plot::truncate(&command, 80))
    );
    let _ = writeln!(
        page,
        "<header>\n<p class=\"tool\">memsleuth timeline</p>\n<h1><code>{}</code></h1>\n</header>",
        esc(&command)
    );

    // The verdict, in words, then the sentence behind it.
    let v = &report.verdict;
    let _ = writeln!(
        page,
        "<section class=\"verdict {}\">\n<p class=\"headline\">{} <span class=\"on\">in {}</span></p>",
        v.kind.as_str(),
        esc(&plot::verdict_headline(v)),
        esc(&metric)
    );
    let _ = writeln!(
        page,
        "<p class=\"explanation\">{}</p>",
        esc(&plot::clean_text(&crate::trend_words::report_sentence(
            report
        )))
    );
    let _ = writeln!(page, "</section>");
    page.push_str(&crate::ending::html_banner(&tl.end));

    let _ = writeln!(page, "<figure>\n{svg}\n</figure>");

    // Per-process verdicts.
    let _ = writeln!(page, "<h2>Processes</h2>");
    if report.processes.is_empty() {
        let _ = writeln!(page, "<p class=\"muted\">No process was sampled.</p>");
    } else {
        let _ = writeln!(
            page,
            "<table class=\"processes\">\n<thead><tr><th class=\"num\">pid</th><th>command</th>\
             <th class=\"num\">last</th><th class=\"num\">max</th><th>verdict</th>\
             <th class=\"num\">rate</th></tr></thead>\n<tbody>"
        );
        for pv in &report.processes {
            let series = tl.processes.iter().find(|p| p.pid == pv.pid);
            let cmd = series
                .map(|p| plot::command_line(&p.argv))
                .unwrap_or_default();
            let mut notes = Vec::new();
            if series.is_some_and(|p| p.root) {
                notes.push("root".to_string());
            }
            if let Some(exit) = series.and_then(|p| crate::ending::exit_words(p.exit)) {
                notes.push(exit);
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"muted\">({})</span>", esc(&notes.join(", ")))
            };
            let m = esc(&pv.metric.to_uppercase());
            let rate =
                if pv.verdict.kind == VerdictKind::Inconclusive || !pv.verdict.rate.is_finite() {
                    "—".to_string()
                } else {
                    units::rate(pv.verdict.rate)
                };
            let _ = writeln!(
                page,
                "<tr><td class=\"num\">{}</td><td class=\"cmd\"><code>{}</code>{notes}</td>\
                 <td class=\"num\">{} <span class=\"muted\">{m}</span></td>\
                 <td class=\"num\">{} <span class=\"muted\">{m}</span></td>\
                 <td><span class=\"badge {}\">{}</span></td><td class=\"num\">{}</td></tr>",
                pv.pid,
                esc(&plot::truncate(&cmd, 120)),
                esc(&units::bytes(pv.last as f64)),
                esc(&units::bytes(pv.max as f64)),
                pv.verdict.kind.as_str(),
                pv.verdict.kind.as_str(),
                esc(&rate)
            );
        }
        let _ = writeln!(page, "</tbody>\n</table>");
    }

    // Facts of the capture.
    let end = &tl.end;
    let mut facts: Vec<(&str, String)> = Vec::new();
    facts.push(("command", format!("<code>{}</code>", esc(&command))));
    facts.push(("root pid", tl.pid.to_string()));
    if tl.start_unix_ns > 0 {
        facts.push(("started", esc(&utc_time(tl.start_unix_ns))));
    }
    facts.push(("duration", esc(&units::seconds(end.duration.max(0.0)))));
    let mut samples = end.samples.to_string();
    if end.dropped > 0 {
        let _ = write!(samples, " ({} dropped)", end.dropped);
    }
    facts.push(("samples", samples));
    if tl.interval.is_finite() && tl.interval > 0.0 {
        facts.push(("interval", esc(&units::seconds(tl.interval))));
    }
    facts.push(("processes seen", tl.processes.len().to_string()));
    let mut ended = esc(crate::ending::reason_words(end));
    if let Some(exit) = crate::ending::exit_words(end.target_exit) {
        let _ = write!(ended, " (target: {})", esc(&exit));
    }
    facts.push(("ended", ended));
    facts.push((
        "capture",
        match crate::ending::Ending::of(end) {
            crate::ending::Ending::Complete => "complete".to_string(),
            e => format!("<strong class=\"bad\">{}</strong>", e.word()),
        },
    ));
    facts.push((
        "peak",
        format!(
            "{} {} at {}",
            esc(&units::bytes(report.peak as f64)),
            esc(&metric),
            esc(&units::seconds(report.peak_at.max(0.0)))
        ),
    ));
    if report.peak_rss_hwm > 0 {
        facts.push((
            "largest RSS high-water mark",
            esc(&units::bytes(report.peak_rss_hwm as f64)),
        ));
    }
    if !tl.marks.is_empty() {
        facts.push(("marks", tl.marks.len().to_string()));
    }
    if let Some(per) = report.per_mark.filter(|p| p.is_finite()) {
        facts.push((
            "growth per mark",
            esc(&format!("{} per iteration", units::signed_bytes(per))),
        ));
    }
    if !tl.python_version.is_empty() {
        facts.push(("Python", esc(&plot::clean_text(&tl.python_version))));
    }
    if !tl.hostname.is_empty() {
        facts.push(("host", esc(&plot::clean_text(&tl.hostname))));
    }
    let _ = writeln!(page, "<h2>Capture</h2>\n<table class=\"facts\">\n<tbody>");
    for (k, v) in facts {
        let _ = writeln!(page, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    let _ = writeln!(page, "</tbody>\n</table>");

    let _ = writeln!(page, "</main>\n</body>\n</html>");
    Ok(page)
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // control characters spelled out (`\x1b`) rather than passed on, where a page would hide
    // them and a terminal showing its source would obey them
    for c in crate::escape::printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2023-11-14 22:13:20 UTC` from nanoseconds since the Unix epoch.
fn utc_time(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Gregorian (year, month, day) of a count of days since 1970-01-01, by counting 400-year eras
/// that start on 1 March (so the leap day is the last day of the shifted year).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March-based month, 0..11
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d2330;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 48px; }
header .tool { margin: 0; color: #6b7280; font-size: 13px; text-transform: uppercase;
  letter-spacing: .06em; }
h1 { margin: 2px 0 16px; font-size: 22px; font-weight: 600; word-break: break-all; }
h1 code { font-size: inherit; }
h2 { margin: 28px 0 8px; font-size: 17px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13.5px; }
.verdict { background: #fff; border-left: 6px solid #737373; border-radius: 4px;
  padding: 10px 16px; margin: 0 0 12px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.verdict .headline { margin: 0; font-size: 19px; font-weight: 700; }
.verdict .on { font-weight: 400; color: #4b5563; font-size: 15px; }
.verdict .explanation { margin: 4px 0 0; color: #374151; }
.verdict.growing { border-color: #c81e1e; } .verdict.growing .headline { color: #c81e1e; }
.verdict.plateau, .verdict.sawtooth { border-color: #c87d00; }
.verdict.plateau .headline, .verdict.sawtooth .headline { color: #a86400; }
.verdict.stable { border-color: #1e873c; } .verdict.stable .headline { color: #1e873c; }
.verdict.inconclusive .headline { color: #737373; }
.warning { background: #fff7e6; border: 1px solid #f0c36d; border-radius: 4px; padding: 8px 14px;
  margin: 0 0 12px; }
figure { margin: 12px 0 0; background: #fff; border: 1px solid #e3e5e8; border-radius: 4px;
  padding: 4px; }
figure svg { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; background: #fff; border: 1px solid #e3e5e8; }
table.processes { width: 100%; }
th, td { padding: 6px 12px; border-bottom: 1px solid #eceef1; text-align: left; vertical-align: top; }
thead th { background: #f0f2f5; font-weight: 600; font-size: 13.5px; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.cmd { word-break: break-all; }
table.facts th { font-weight: 600; color: #4b5563; white-space: nowrap; }
.muted { color: #6b7280; font-size: 13px; }
.bad { color: #c81e1e; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12.5px;
  font-weight: 600; text-transform: uppercase; letter-spacing: .03em; background: #e5e7eb;
  color: #4b5563; }
.badge.growing { background: #fde2e2; color: #b91c1c; }
.badge.plateau, .badge.sawtooth { background: #fdf0d5; color: #965a00; }
.badge.stable { background: #dcf3e3; color: #17692f; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_models::*;

    fn without_svg_namespace(html: &str) -> String {
        html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut report = tree();
        report.timeline.argv = vec!["python".into(), "<script>alert(1)</script>".into()];
        let html = timeline_html(&report).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg"));
        assert!(html.contains("</svg>"));
        assert!(!html.contains("<script"), "commands are escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // A child's command holds `<script>` too; it is escaped in the table.
        assert!(html.contains("--queue=&lt;script&gt;x&lt;/script&gt;"));
        let rest = without_svg_namespace(&html);
        assert!(!rest.contains("http://") && !rest.contains("https://"));
        assert!(!rest.contains("src=") && !rest.contains("<link"));
    }

    #[test]
    fn page_shows_verdicts_and_capture_facts() {
        let html = timeline_html(&tree()).unwrap();
        assert!(html.contains("GROWING +635 KiB/s (95% CI 584–686)"));
        assert!(html.contains("in total PSS"));
        assert!(
            html.contains(
                "<p class=\"explanation\">grows 634.9 KiB/s (95% CI 584.1–685.7 KiB/s) after a \
                 12.0 s warm-up, p &lt; 0.001</p>"
            ),
            "the verdict's sentence is shown"
        );
        // One row per process, with human units and the verdict of each.
        assert_eq!(html.matches("<tr><td class=\"num\">").count(), 3);
        assert!(html.contains("<span class=\"badge plateau\">plateau</span>"));
        assert!(html.contains("<span class=\"badge stable\">stable</span>"));
        assert!(html.contains("+819 KiB/s") || html.contains("+819.2 KiB/s"));
        assert!(html.contains("MiB <span class=\"muted\">RSS</span>"));
        assert!(html.contains("<th>duration</th><td>60.0 s</td>"));
        assert!(html.contains("<th>samples</th><td>601</td>"));
        assert!(html.contains("<th>interval</th><td>100 ms</td>"));
        assert!(html.contains("<th>capture</th><td>complete</td>"));
        assert!(html.contains("<th>started</th><td>2023-11-14 22:13:20 UTC</td>"));
    }

    #[test]
    fn cut_short_and_empty_captures_are_described() {
        let html = timeline_html(&cut_short()).unwrap();
        assert!(html.contains("<strong>Capture damaged</strong>: truncated chunk at byte 81920"));
        assert!(html.contains("<th>capture</th><td><strong class=\"bad\">damaged</strong>"));
        let mut killed = cut_short();
        killed.timeline.end.damage = None;
        let html = timeline_html(&killed).unwrap();
        assert!(html.contains("<strong>Capture cut short</strong>: cut short (no trailer)"));
        assert!(html.contains("<th>capture</th><td><strong class=\"bad\">cut short</strong>"));

        let html = timeline_html(&empty()).unwrap();
        assert!(html.contains("INCONCLUSIVE"));
        assert!(html.contains("No process was sampled."));
        assert!(html.contains("no samples"));
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    #[ignore = "writes a page to /tmp for a person to look at"]
    fn write_page_for_review() {
        std::fs::write("/tmp/timeline-tree.html", timeline_html(&tree()).unwrap()).unwrap();
        std::fs::write(
            "/tmp/timeline-growing.html",
            timeline_html(&growing()).unwrap(),
        )
        .unwrap();
    }
}
