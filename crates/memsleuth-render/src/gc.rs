//! Text and JSON for the gc report: collections and pauses per generation, the collector's state
//! seen by censuses, and findings in plain words.

use memsleuth_analysis::gcstats::{GcNote, GcReport, GcState, Generation, Pauses};
use memsleuth_analysis::VerdictKind;
use serde::Serialize;

use crate::escape::printable;
use crate::pymalloc::{end_caveat, wrap_paragraph};
use crate::trend_words::count_sentence;
use crate::units::{bytes, count, fine_seconds, seconds};

fn at(ns: u64) -> String {
    seconds(ns as f64 / 1e9)
}

fn pause(ns: u64) -> String {
    fine_seconds(ns as f64 / 1e9)
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.01 {
        "<0.01%".into()
    } else if p < 10.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.0}%")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A finding in plain words: what was seen, what it means, what to do.
pub fn note_text(note: &GcNote, r: &GcReport) -> String {
    match note {
        GcNote::GcDisabled {
            spans,
            inferred: false,
            threshold,
            max_count,
        } => {
            let when: Vec<String> = spans
                .iter()
                .map(|s| match s.until_ns {
                    Some(u) => format!("from {} to {}", at(s.from_ns), at(u)),
                    None => format!("from {} to the end of the capture", at(s.from_ns)),
                })
                .collect();
            format!(
                "automatic gc was disabled {} (as seen by censuses; it may have been off \
                 earlier): gc.disable() was called, so reference cycles are freed only by an \
                 explicit gc.collect(). The generation-0 count reached {} (collections start at \
                 {}). Re-enable it with gc.enable() once the critical section is over.",
                when.join(", "),
                count(*max_count),
                count(*threshold)
            )
        }
        GcNote::GcDisabled {
            inferred: true,
            threshold,
            max_count,
            ..
        } => format!(
            "automatic gc was disabled (inferred): no collection ran in {} while the \
             generation-0 count climbed to {}, past the {} at which an enabled collector starts \
             one. Look for gc.disable() or gc.set_threshold(0): reference cycles are never freed \
             this way.",
            seconds(r.duration_ns as f64 / 1e9),
            count(*max_count),
            count(*threshold)
        ),
        GcNote::UnreachablePilingUp {
            from,
            to,
            to_bytes,
            rate,
        } => format!(
            "unreachable cycles are piling up: from {} to {} objects ({}) that nothing \
             reachable holds, about {} more per second. They are reference cycles waiting for \
             the collector; {}",
            count(*from),
            count(*to),
            bytes(*to_bytes as f64),
            count(rate.max(0.0).round() as u64),
            if r.gc_disabled() {
                "with automatic gc off they are never freed: enable it, or call gc.collect() \
                 periodically."
            } else {
                "they are made faster than collections free them. Break the cycles (weakref, \
                 or clearing the back reference when done) so reference counting frees them \
                 at once."
            }
        ),
        GcNote::Uncollectable {
            garbage,
            uncollectable,
            first_ns,
            types,
        } => {
            let what = match (*garbage > 0, *uncollectable > 0) {
                (true, true) => format!(
                    "{} in gc.garbage, {} reported by collections",
                    count(*garbage),
                    plural(*uncollectable, "object", "objects")
                ),
                (true, false) => plural(*garbage, "object", "objects") + " in gc.garbage",
                _ => plural(*uncollectable, "object", "objects") + " reported by collections",
            };
            let held = if types.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = types
                    .iter()
                    .take(5)
                    .map(|(name, n)| format!("{} {}", count(*n), printable(name)))
                    .collect();
                format!(" It holds {}.", list.join(", "))
            };
            format!(
                "uncollectable objects in gc.garbage: {what}, first seen at {}.{held} The \
                 collector found them unreachable but may not free them, so they stay until the \
                 program empties gc.garbage. gc.set_debug(gc.DEBUG_SAVEALL) puts every collected \
                 object there; otherwise they are cycles through objects with a legacy tp_del (C \
                 extensions).",
                at(*first_ns)
            )
        }
        GcNote::LongPauses {
            count: n,
            threshold_ns,
            max_ns,
            max_generation,
            max_at_ns,
        } => format!(
            "long gc pauses: {} over {}, the longest {} (generation {max_generation}, at {}). \
             A full collection walks every tracked object; gc.freeze() after start-up moves \
             long-lived objects out of its reach, and fewer, larger containers mean fewer \
             objects to walk.",
            plural(*n, "collection", "collections"),
            pause(*threshold_ns),
            pause(*max_ns),
            at(*max_at_ns)
        ),
    }
}

fn title(r: &GcReport) -> String {
    let mut s = "memsleuth gc".to_string();
    if !r.argv.is_empty() || r.pid != 0 {
        s.push_str(&format!(
            " · {} (pid {})",
            crate::summary::command(&r.argv, 60),
            r.pid
        ));
    }
    if r.duration_ns > 0 {
        s.push_str(&format!(" · {}", at(r.duration_ns)));
    }
    if let Some(v) = r.python_version.split_whitespace().next() {
        s.push_str(&format!(" · Python {}", printable(v)));
    }
    s
}

fn pauses_line(p: &Pauses) -> String {
    format!(
        "{} in all ({} of the run); p50 {}, p99 {}, longest {}",
        pause(p.total_ns),
        percent(p.share),
        pause(p.p50_ns),
        pause(p.p99_ns),
        pause(p.max_ns)
    )
}

fn generation_table(gens: &[Generation], out: &mut String) {
    out.push_str(&format!(
        "  {:>10} {:>12} {:>10} {:>14} {:>9} {:>7} {:>8} {:>8} {:>8}\n",
        "generation",
        "collections",
        "collected",
        "uncollectable",
        "paused",
        "share",
        "p50",
        "p99",
        "longest"
    ));
    for g in gens {
        out.push_str(&format!(
            "  {:>10} {:>12} {:>10} {:>14} {:>9} {:>7} {:>8} {:>8} {:>8}\n",
            g.generation,
            count(g.collections),
            count(g.collected),
            count(g.uncollectable),
            pause(g.pauses.total_ns),
            percent(g.pauses.share),
            pause(g.pauses.p50_ns),
            pause(g.pauses.p99_ns),
            pause(g.pauses.max_ns)
        ));
    }
}

fn census_line(s: &GcState) -> String {
    let counts: Vec<String> = s.gc_counts.iter().map(|&c| count(c)).collect();
    format!(
        "automatic gc {}; counts {}; {} unreachable objects ({}); {} in gc.garbage",
        if s.gc_enabled { "on" } else { "OFF" },
        if counts.is_empty() {
            "unknown".to_string()
        } else {
            counts.join(" / ")
        },
        count(s.unreachable),
        bytes(s.unreachable_bytes as f64),
        count(s.garbage)
    )
}

/// The gc report for people.
pub fn gc_text(r: &GcReport) -> String {
    let mut out = title(r);
    out.push_str("\n\n");
    if r.collections == 0 {
        out.push_str("no collection was recorded\n");
    } else {
        out.push_str(&format!(
            "{} freed {}; {} uncollectable\n",
            plural(r.collections, "collection", "collections"),
            plural(r.collected, "object", "objects"),
            count(r.uncollectable)
        ));
        out.push_str(&format!("pauses: {}\n\n", pauses_line(&r.pauses)));
        generation_table(&r.generations, &mut out);
    }
    if let Some(last) = r.censuses.last() {
        out.push_str(&format!(
            "\n{}, the latest at {}\n",
            plural(r.censuses.len() as u64, "census", "censuses"),
            at(last.t_ns)
        ));
        wrap_paragraph(&census_line(last), "  ", &mut out);
        if let Some(u) = &r.unreachable {
            let trend_says = u
                .trend
                .as_ref()
                .filter(|v| v.kind != VerdictKind::Inconclusive || !u.growing);
            let line = match trend_says {
                Some(v) => count_sentence(v, "objects", "censuses"),
                None if u.growing => format!(
                    "rose from {} to {} with automatic collection off in every census; too few \
                     censuses for a trend, but nothing else frees them",
                    count(u.from),
                    count(u.to)
                ),
                None => "too few censuses to judge".to_string(),
            };
            wrap_paragraph(&format!("unreachable objects: {line}"), "  ", &mut out);
        }
    }
    if r.notes.is_empty() {
        out.push_str("\nno findings: gc ran, freed what it found, and did not pause for long\n");
    } else {
        out.push_str("\nfindings\n");
        for n in &r.notes {
            let text = note_text(n, r);
            let mut para = String::new();
            wrap_paragraph(&text, "    ", &mut para);
            // first line marked, the rest indented under it
            out.push_str("  ! ");
            out.push_str(para.trim_start());
        }
    }
    if let Some(c) = end_caveat(&r.end) {
        out.push('\n');
        wrap_paragraph(&c, "  ", &mut out);
    }
    out
}

#[derive(Serialize)]
struct NoteJson<'a> {
    #[serde(flatten)]
    note: &'a GcNote,
    message: String,
}

#[derive(Serialize)]
struct GcJson<'a> {
    #[serde(flatten)]
    report: &'a GcReport,
    /// The notes again, each with its message in words.
    findings: Vec<NoteJson<'a>>,
}

/// The gc report as JSON: exact figures (ns, counts), and each finding with its message.
pub fn gc_json(r: &GcReport) -> String {
    let model = GcJson {
        report: r,
        findings: r
            .notes
            .iter()
            .map(|n| NoteJson {
                note: n,
                message: note_text(n, r),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use memsleuth_analysis::gcstats::{DisabledSpan, Unreachable};
    use memsleuth_analysis::{EndInfo, Verdict, VerdictReason};

    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn pauses(total: u64, p50: u64, p99: u64, max: u64, max_at: u64) -> Pauses {
        Pauses {
            total_ns: total,
            max_ns: max,
            max_at_ns: max_at,
            p50_ns: p50,
            p99_ns: p99,
            share: total as f64 / (20 * S) as f64,
        }
    }

    fn report(notes: Vec<GcNote>) -> GcReport {
        GcReport {
            pid: 9,
            argv: vec!["python".into(), "worker.py".into()],
            python_version: "3.12.1".into(),
            end: EndInfo {
                duration: 20.0,
                ..EndInfo::default()
            },
            duration_ns: 20 * S,
            collections: 103,
            collected: 35_000,
            uncollectable: 0,
            pauses: pauses(305 * MS, 50_000, 30 * MS, 250 * MS, 3 * S),
            generations: vec![
                Generation {
                    generation: 0,
                    collections: 100,
                    collected: 1000,
                    uncollectable: 0,
                    pauses: pauses(5_050_000, 50_000, 99_000, 100_000, S),
                },
                Generation {
                    generation: 2,
                    collections: 3,
                    collected: 34_000,
                    uncollectable: 0,
                    pauses: pauses(300 * MS, 30 * MS, 250 * MS, 250 * MS, 3 * S),
                },
            ],
            censuses: vec![GcState {
                t_ns: 19 * S,
                gc_enabled: false,
                gc_counts: vec![18_100, 3, 1],
                unreachable: 16_000,
                unreachable_bytes: 3_200_000,
                garbage: 0,
                garbage_types: Vec::new(),
            }],
            unreachable: Some(Unreachable {
                from: 50,
                to: 16_000,
                to_bytes: 3_200_000,
                from_ns: 4 * S,
                to_ns: 19 * S,
                rate: 1000.0,
                growing: true,
                trend: Some(Verdict {
                    kind: VerdictKind::Growing,
                    rate: 1000.0,
                    rate_low: 990.0,
                    rate_high: 1010.0,
                    p_value: 1e-6,
                    warmup: 4.0,
                    window_start: 4.0,
                    window_end: 20.0,
                    intercept: 0.0,
                    net_change: 15_950.0,
                    releases: 0,
                    points: 16,
                    reason: VerdictReason::Growing,
                }),
            }),
            notes,
        }
    }

    fn disabled() -> GcNote {
        GcNote::GcDisabled {
            spans: vec![DisabledSpan {
                from_ns: 5 * S,
                until_ns: None,
            }],
            inferred: false,
            threshold: 700,
            max_count: 18_100,
        }
    }

    fn piling() -> GcNote {
        GcNote::UnreachablePilingUp {
            from: 50,
            to: 16_000,
            to_bytes: 3_200_000,
            rate: 1000.0,
        }
    }

    #[test]
    fn disabled_gc_and_piling_cycles_are_both_said() {
        let r = report(vec![disabled(), piling()]);
        let text = gc_text(&r);
        assert!(
            text.starts_with("memsleuth gc · python worker.py (pid 9) · 20.0 s · Python 3.12.1\n"),
            "{text}"
        );
        assert!(
            text.contains("103 collections freed 35,000 objects; 0 uncollectable\n"),
            "{text}"
        );
        assert!(
            text.contains("pauses: 305 ms in all (1.52% of the run); p50 50 µs, p99 30.0 ms, longest 250 ms\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n1 census, the latest at 19.0 s\n  automatic gc OFF; counts 18,100 / 3 / 1; \
                 16,000 unreachable objects (3.1 MiB); 0 in gc.garbage\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  ! automatic gc was disabled from 5.0 s to the end of the capture"),
            "{text}"
        );
        assert!(
            text.contains(
                "  ! unreachable cycles are piling up: from 50 to 16,000 objects (3.1 MiB)"
            ),
            "{text}"
        );
        assert!(
            text.contains("they are never freed: enable it, or call gc.collect() periodically"),
            "{text}"
        );
        assert!(
            text.contains(
                "  unreachable objects: growing: 1,000 more objects per second (95% CI \
                 990–1,010), p < 0.001\n"
            ),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    }

    #[test]
    fn the_generation_table_lines_up() {
        let text = gc_text(&report(Vec::new()));
        let header = text
            .lines()
            .find(|l| l.contains("generation  collections"))
            .expect("header");
        let row2 = text
            .lines()
            .find(|l| l.trim_start().starts_with("2 "))
            .expect("generation 2");
        assert_eq!(header.len(), row2.chars().count(), "{text}");
        assert!(row2.ends_with("30.0 ms   250 ms   250 ms"), "{text}");
        assert!(text.contains("no findings"), "{text}");
    }

    #[test]
    fn every_note_reads_in_words() {
        let r = report(Vec::new());
        let inferred = GcNote::GcDisabled {
            spans: Vec::new(),
            inferred: true,
            threshold: 700,
            max_count: 55_800,
        };
        let t = note_text(&inferred, &r);
        assert!(t.starts_with("automatic gc was disabled (inferred): no collection ran in 20.0 s while the generation-0 count climbed to 55,800, past the 700"), "{t}");
        let t = note_text(
            &GcNote::Uncollectable {
                garbage: 4,
                uncollectable: 0,
                first_ns: 1500 * MS,
                types: vec![("app.Node".into(), 4)],
            },
            &r,
        );
        assert!(t.starts_with("uncollectable objects in gc.garbage: 4 objects in gc.garbage, first seen at 1.5 s. It holds 4 app.Node."), "{t}");
        let t = note_text(
            &GcNote::LongPauses {
                count: 1,
                threshold_ns: 100 * MS,
                max_ns: 250 * MS,
                max_generation: 2,
                max_at_ns: 3 * S,
            },
            &r,
        );
        assert!(t.starts_with("long gc pauses: 1 collection over 100 ms, the longest 250 ms (generation 2, at 3.0 s)."), "{t}");
        assert!(t.contains("gc.freeze()"), "{t}");
        let t = note_text(&piling(), &r);
        assert!(t.contains("Break the cycles"), "{t}");
    }

    #[test]
    fn json_keeps_notes_with_their_messages() {
        let r = report(vec![disabled(), piling()]);
        let json: serde_json::Value = serde_json::from_str(&gc_json(&r)).expect("json");
        assert_eq!(json["collections"], 103);
        assert_eq!(json["pauses"]["max_ns"], 250 * MS);
        assert_eq!(json["generations"][1]["generation"], 2);
        assert_eq!(json["notes"][0]["kind"], "gc_disabled");
        assert_eq!(json["notes"][0]["spans"][0]["from_ns"], 5 * S);
        assert_eq!(json["findings"][1]["kind"], "unreachable_piling_up");
        assert!(json["findings"][1]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unreachable cycles are piling up")));
        assert_eq!(json["unreachable"]["trend"]["kind"], "growing");
    }
}
