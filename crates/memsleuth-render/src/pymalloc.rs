//! Text and JSON for the pymalloc report: the small-object allocator's arenas, pools and size
//! classes, what changed, and whether memory it holds is fragmentation or growth.

use memsleuth_analysis::pymalloc::{
    ClassRow, Fragmentation, PymallocDiff, PymallocReport, PymallocSnapshot,
};
use memsleuth_analysis::{EndInfo, VerdictKind};
use serde::Serialize;

use crate::trend_words::count_sentence;
use crate::units::{bytes, count, seconds, signed_bytes};

/// Size classes shown hold at least this share of the bytes in use...
const CLASS_MIN_SHARE: f64 = 0.01;
/// ...and at most this many, largest first: a full table is 32 rows of mostly nothing.
const CLASSES_SHOWN: usize = 12;

fn title(what: &str, pid: u32, argv: &[String], python: &str, end: &EndInfo) -> String {
    let mut s = format!("memsleuth {what}");
    if !argv.is_empty() || pid != 0 {
        s.push_str(&format!(
            " · {} (pid {pid})",
            crate::summary::command(argv, 60)
        ));
    }
    if end.duration > 0.0 {
        s.push_str(&format!(" · {}", seconds(end.duration)));
    }
    if let Some(v) = python.split_whitespace().next() {
        s.push_str(&format!(" · Python {}", crate::escape::printable(v)));
    }
    s
}

/// How the capture ended, when it is worth a word.
pub(crate) fn end_caveat(end: &EndInfo) -> Option<String> {
    crate::ending::warning(end)
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p > 0.0 && p < 1.0 {
        "<1%".into()
    } else {
        format!("{p:.0}%")
    }
}

fn signed_count(n: i64) -> String {
    let magnitude = count(n.unsigned_abs());
    match n.signum() {
        1 => format!("+{magnitude}"),
        -1 => format!("-{magnitude}"),
        _ => magnitude,
    }
}

/// The report's conclusion in one line.
pub fn pymalloc_headline(r: &PymallocReport) -> String {
    let s = &r.latest;
    if !s.active {
        return "pymalloc is not in use (PYTHONMALLOC=malloc or mimalloc): no arenas to report"
            .to_string();
    }
    if r.blocks_growing() {
        let rate = r.blocks_trend.as_ref().map_or(0.0, |v| v.rate);
        return format!(
            "small objects keep accumulating: {} more allocated blocks every second",
            count(rate.max(0.0).round() as u64)
        );
    }
    if r.fragmentation.fragmented {
        return format!(
            "fragmentation, not a leak: {} of pymalloc's {} is free space it cannot return",
            bytes(r.fragmentation.idle_bytes as f64),
            bytes(r.fragmentation.arena_bytes as f64)
        );
    }
    format!(
        "no sign of small-object growth or fragmentation: {} in use of {} in arenas",
        bytes(s.bytes_in_use as f64),
        bytes(s.arena_bytes as f64)
    )
}

/// Fragmentation in plain words: what holds the memory, that it is not a leak, and what helps.
/// `None` when the arenas are reasonably full.
pub fn fragmentation_note(f: &Fragmentation) -> Option<String> {
    if !f.fragmented {
        return None;
    }
    Some(format!(
        "pymalloc holds {held} in {arenas} arenas, but only {used} ({pct}) of it is in live \
         blocks. The other {idle} is free space inside arenas that each still hold at least one \
         live block, so pymalloc cannot return them to the operating system. This is \
         fragmentation, not a leak: the space is reused for new small objects, and it shrinks \
         only when every block of an arena is freed and the whole arena goes back. What helps: \
         create long-lived objects before bursts of short-lived ones rather than during them, \
         free a batch of objects together rather than keeping a few survivors of each, or run \
         bursts of temporary objects in a worker process that exits.",
        held = bytes(f.arena_bytes as f64),
        arenas = count(f.arenas_now),
        used = bytes(f.bytes_in_use as f64),
        pct = share(f.bytes_in_use, f.arena_bytes),
        idle = bytes(f.idle_bytes as f64),
    ))
}

/// Size classes worth a row, largest bytes in use first, and how many were left out.
fn classes_that_matter(s: &PymallocSnapshot) -> (Vec<&ClassRow>, usize) {
    let mut rows: Vec<&ClassRow> = s.classes.iter().collect();
    rows.sort_by(|a, b| {
        b.bytes_in_use
            .cmp(&a.bytes_in_use)
            .then(a.size.cmp(&b.size))
    });
    let floor = (s.bytes_in_use as f64 * CLASS_MIN_SHARE) as u64;
    let shown: Vec<&ClassRow> = rows
        .iter()
        .copied()
        .filter(|c| c.bytes_in_use > 0 && c.bytes_in_use >= floor)
        .take(CLASSES_SHOWN)
        .collect();
    let left = rows.len() - shown.len();
    (shown, left)
}

fn snapshot_text(s: &PymallocSnapshot, out: &mut String) {
    out.push_str(&format!(
        "  arenas    {} × {} = {} held from the OS (high-water {}; {} returned so far)\n",
        count(s.arenas_now),
        bytes(s.arena_size as f64),
        bytes(s.arena_bytes as f64),
        count(s.arenas_highwater),
        count(s.arenas_reclaimed)
    ));
    out.push_str(&format!(
        "  in use    {} in allocated blocks ({} of the arenas)\n",
        bytes(s.bytes_in_use as f64),
        share(s.bytes_in_use, s.arena_bytes)
    ));
    out.push_str(&format!(
        "  free      {} in free blocks of used pools, {} in {} unused pools of {}\n",
        bytes(s.bytes_free_blocks as f64),
        bytes(s.bytes_unused_pools as f64),
        count(s.unused_pools),
        bytes(s.pool_size as f64)
    ));
    out.push_str(&format!(
        "  lost      {} to pool headers, {} to quantization, {} to arena alignment\n",
        bytes(s.bytes_pool_headers as f64),
        bytes(s.bytes_quantization as f64),
        bytes(s.bytes_arena_alignment as f64)
    ));
}

fn blocks_lines(s: &PymallocSnapshot, out: &mut String) {
    out.push_str(&format!(
        "  blocks    {} allocated (sys.getallocatedblocks())\n",
        count(s.allocated_blocks)
    ));
    if let Some(rc) = s.total_refcount {
        let rc = if rc < 0 {
            signed_count(rc)
        } else {
            count(rc.unsigned_abs())
        };
        out.push_str(&format!(
            "  refcount  {rc} in all (sys.gettotalrefcount(), debug build)\n"
        ));
    }
}

fn class_table(s: &PymallocSnapshot, out: &mut String) {
    let (shown, left) = classes_that_matter(s);
    if shown.is_empty() {
        return;
    }
    out.push_str(&format!(
        "\nsize classes: {} of {} shown, largest first{}\n",
        shown.len(),
        s.classes.len(),
        if left > 0 {
            " (the rest hold under 1% of the bytes in use each)"
        } else {
            ""
        }
    ));
    out.push_str("     block     pools   blocks in use   free blocks   bytes in use  share\n");
    for c in shown {
        out.push_str(&format!(
            "  {:>8} {:>9} {:>15} {:>13} {:>14} {:>6}\n",
            bytes(f64::from(c.size)),
            count(c.pools),
            count(c.blocks_in_use),
            count(c.blocks_free),
            bytes(c.bytes_in_use as f64),
            share(c.bytes_in_use, s.bytes_in_use)
        ));
    }
}

fn diff_text(d: &PymallocDiff, out: &mut String) {
    out.push_str(&format!(
        "\nfrom the first snapshot ({}) to the latest ({})\n",
        seconds(d.from_t_ns as f64 / 1e9),
        seconds(d.to_t_ns as f64 / 1e9)
    ));
    out.push_str(&format!(
        "  arenas {} ({}), bytes in use {}, allocated blocks {}\n",
        signed_count(d.arenas),
        signed_bytes(d.arena_bytes as f64),
        signed_bytes(d.bytes_in_use as f64),
        signed_count(d.allocated_blocks)
    ));
    if d.classes.is_empty() {
        out.push_str(&format!(
            "  no size class changed by more than {} and {:.0}%\n",
            bytes(d.min_bytes as f64),
            d.min_fraction * 100.0
        ));
        return;
    }
    out.push_str("     block   bytes in use                           blocks in use\n");
    for c in &d.classes {
        let change = format!(
            "{} ({} → {})",
            signed_bytes(c.delta_bytes() as f64),
            bytes(c.bytes_before as f64),
            bytes(c.bytes_after as f64)
        );
        out.push_str(&format!(
            "  {:>8}   {:<38} {}\n",
            bytes(f64::from(c.size)),
            change,
            signed_count(c.delta_blocks())
        ));
    }
    if d.minor_changes > 0 {
        out.push_str(&format!(
            "  {} other size class{} changed by less than {} or {:.0}%\n",
            d.minor_changes,
            if d.minor_changes == 1 { "" } else { "es" },
            bytes(d.min_bytes as f64),
            d.min_fraction * 100.0
        ));
    }
}

/// Breaks a paragraph into lines of at most `width` characters, each after `indent`.
fn wrap(text: &str, indent: &str, width: usize, out: &mut String) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&format!("{indent}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}{line}\n"));
    }
}

pub(crate) fn wrap_paragraph(text: &str, indent: &str, out: &mut String) {
    wrap(text, indent, 96, out);
}

/// The pymalloc report for people.
pub fn pymalloc_text(r: &PymallocReport) -> String {
    let s = &r.latest;
    let mut out = title("pymalloc", r.pid, &r.argv, &r.python_version, &r.end);
    out.push('\n');
    out.push_str(&format!("{}\n\n", pymalloc_headline(r)));
    out.push_str(&format!(
        "{} at {}{}\n",
        if r.snapshots == 1 {
            "one snapshot".to_string()
        } else {
            format!("latest of {} snapshots", r.snapshots)
        },
        seconds(s.t_ns as f64 / 1e9),
        if s.active {
            ""
        } else {
            ", pymalloc not in use"
        }
    ));
    if s.active {
        snapshot_text(s, &mut out);
    }
    blocks_lines(s, &mut out);
    if s.active {
        class_table(s, &mut out);
    }
    if let Some(d) = &r.diff {
        if r.first.active && s.active {
            diff_text(d, &mut out);
        } else {
            out.push_str(&format!(
                "\nfrom the first snapshot to the latest: allocated blocks {}\n",
                signed_count(d.allocated_blocks)
            ));
        }
    }
    if let Some(v) = &r.blocks_trend {
        out.push_str(&format!(
            "\nallocated blocks over {} snapshots\n",
            r.snapshots
        ));
        wrap_paragraph(&count_sentence(v, "blocks", "snapshots"), "  ", &mut out);
        if v.kind == VerdictKind::Growing {
            wrap_paragraph(
                "Blocks handed out by the interpreter keep growing: live Python objects \
                 accumulate. `memsleuth report growth` names the types that grow; \
                 `memsleuth report leaks` the lines that allocate them.",
                "  ",
                &mut out,
            );
        }
    }
    if let Some(note) = fragmentation_note(&r.fragmentation) {
        out.push_str("\nfragmentation\n");
        wrap_paragraph(&note, "  ", &mut out);
    }
    if let Some(c) = end_caveat(&r.end) {
        out.push('\n');
        wrap_paragraph(&c, "  ", &mut out);
    }
    out
}

#[derive(Serialize)]
struct PymallocJson<'a> {
    headline: String,
    fragmentation_note: Option<String>,
    #[serde(flatten)]
    report: &'a PymallocReport,
}

/// The pymalloc report as JSON: every snapshot figure exact, in bytes and counts; times in ns
/// since the capture start.
pub fn pymalloc_json(r: &PymallocReport) -> String {
    let model = PymallocJson {
        headline: pymalloc_headline(r),
        fragmentation_note: fragmentation_note(&r.fragmentation),
        report: r,
    };
    serde_json::to_string_pretty(&model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use memsleuth_analysis::pymalloc::PymallocOptions;

    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// A snapshot of `arenas` 1 MiB arenas with `classes` as `(size, blocks in use)`.
    fn snap(t_s: u64, arenas: u64, classes: &[(u32, u64)], blocks: u64) -> PymallocSnapshot {
        let classes: Vec<ClassRow> = classes
            .iter()
            .map(|&(size, used)| ClassRow {
                size,
                pools: (used * u64::from(size)).div_ceil(16 << 10),
                blocks_in_use: used,
                blocks_free: 10,
                bytes_in_use: used * u64::from(size),
                bytes_free: 10 * u64::from(size),
            })
            .collect();
        let in_use = classes.iter().map(|c| c.bytes_in_use).sum();
        let free = classes.iter().map(|c| c.bytes_free).sum();
        let pools: u64 = classes.iter().map(|c| c.pools).sum();
        PymallocSnapshot {
            t_ns: t_s * 1_000_000_000,
            active: true,
            allocated_blocks: blocks,
            total_refcount: None,
            arena_size: MIB,
            pool_size: 16 << 10,
            arenas_allocated_total: arenas + 2,
            arenas_reclaimed: 2,
            arenas_highwater: arenas + 1,
            arenas_now: arenas,
            arena_bytes: arenas * MIB,
            bytes_in_use: in_use,
            bytes_free_blocks: free,
            unused_pools: (arenas * 64).saturating_sub(pools),
            bytes_unused_pools: (arenas * 64).saturating_sub(pools) * (16 << 10),
            bytes_pool_headers: pools * 48,
            bytes_quantization: 0,
            bytes_arena_alignment: 16 << 10,
            classes,
        }
    }

    fn report(snaps: Vec<PymallocSnapshot>) -> PymallocReport {
        let mut r =
            PymallocReport::from_snapshots(snaps, &PymallocOptions::default()).expect("report");
        r.pid = 42;
        r.argv = vec!["python".into(), "app.py".into()];
        r.python_version = "3.12.1 (main)".into();
        r.end.duration = 30.0;
        r
    }

    #[test]
    fn fragmentation_is_explained_not_called_a_leak() {
        let r = report(vec![
            snap(0, 150, &[(48, 3_000_000), (64, 20_000)], 3_100_000),
            snap(30, 150, &[(48, 40_000), (64, 20_000)], 120_000),
        ]);
        let text = pymalloc_text(&r);
        assert!(
            text.starts_with(
                "memsleuth pymalloc · python app.py (pid 42) · 30.0 s · Python 3.12.1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("fragmentation, not a leak: 147 MiB of pymalloc's 150 MiB"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nfragmentation\n  pymalloc holds 150 MiB in 150 arenas, but only 3.1 MiB (2%)"
            ),
            "{text}"
        );
        assert!(
            text.contains("cannot return them to the operating system"),
            "{text}"
        );
        assert!(
            text.contains("shrinks only when every block of an arena is freed"),
            "{text}"
        );
        assert!(text.contains("  arenas    150 × 1.0 MiB = 150 MiB held from the OS (high-water 151; 2 returned so far)\n"), "{text}");
        assert!(
            text.contains("  in use    3.1 MiB in allocated blocks (2% of the arenas)\n"),
            "{text}"
        );
        // the 48-byte class shrank by 135 MiB; the 64-byte one did not move
        assert!(
            text.contains("      48 B   -135 MiB (137 MiB → 1.8 MiB)"),
            "{text}"
        );
        assert!(text.contains("-2,960,000\n"), "{text}");
        assert!(text.contains("allocated blocks -2,980,000\n"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    }

    #[test]
    fn growth_is_not_called_fragmentation() {
        let snaps: Vec<PymallocSnapshot> = (0..30)
            .map(|i| {
                let n = 100_000 + 50_000 * i;
                snap(i, (n * 32).div_ceil(MIB) + 1, &[(32, n)], n)
            })
            .collect();
        let r = report(snaps);
        let text = pymalloc_text(&r);
        assert!(!text.contains("fragmentation"), "{text}");
        assert!(
            text.contains(
                "small objects keep accumulating: 50,000 more allocated blocks every second"
            ),
            "{text}"
        );
        assert!(
            text.contains("allocated blocks over 30 snapshots\n  growing: 50,000 more blocks per second (95% CI"),
            "{text}"
        );
        assert!(
            text.contains("report growth` names the types that grow"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&pymalloc_json(&r)).expect("json");
        assert_eq!(json["fragmentation"]["fragmented"], false);
        assert_eq!(json["fragmentation_note"], serde_json::Value::Null);
        assert_eq!(json["blocks_trend"]["kind"], "growing");
        assert_eq!(json["snapshots"], 30);
        assert_eq!(json["latest"]["allocated_blocks"], 1_550_000);
        assert_eq!(json["latest"]["classes"][0]["size"], 32);
        assert_eq!(json["diff"]["classes"][0]["size"], 32);
    }

    #[test]
    fn the_class_table_shows_the_classes_that_matter() {
        let mut classes: Vec<(u32, u64)> = (1..=32).map(|i| (i * 16, 10)).collect();
        classes[3].1 = 500_000; // 64 B: 30.5 MiB
        classes[0].1 = 200_000; // 16 B: 3.1 MiB
        let r = report(vec![snap(1, 40, &classes, 700_000)]);
        let text = pymalloc_text(&r);
        assert!(text.contains("one snapshot at 1.0 s\n"), "{text}");
        assert!(text.contains("size classes: 2 of 32 shown, largest first (the rest hold under 1% of the bytes in use each)\n"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("blocks in use   free blocks"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(rows[0].trim_start().starts_with("64 B"), "{text}");
        assert!(rows[0].ends_with("30.5 MiB    91%"), "{text}");
        assert!(rows[1].trim_start().starts_with("16 B"), "{text}");
        assert!(!text.contains("from the first snapshot"), "{text}");
    }

    #[test]
    fn pymalloc_off_says_so() {
        let off = PymallocSnapshot {
            allocated_blocks: 4321,
            total_refcount: Some(98_765),
            ..PymallocSnapshot::default()
        };
        let r = report(vec![off]);
        let text = pymalloc_text(&r);
        assert!(
            text.contains("pymalloc is not in use (PYTHONMALLOC=malloc or mimalloc)"),
            "{text}"
        );
        assert!(text.contains("  blocks    4,321 allocated"), "{text}");
        assert!(
            text.contains("  refcount  98,765 in all (sys.gettotalrefcount(), debug build)"),
            "{text}"
        );
        assert!(!text.contains("  arenas "), "{text}");
    }

    #[test]
    fn json_has_the_exact_figures_and_the_words() {
        let r = report(vec![
            snap(0, 150, &[(48, 3_000_000)], 3_000_000),
            snap(30, 150, &[(48, 40_000)], 40_000),
        ]);
        let json: serde_json::Value = serde_json::from_str(&pymalloc_json(&r)).expect("json");
        assert_eq!(json["pid"], 42);
        assert_eq!(json["latest"]["arena_bytes"], 150 * MIB);
        assert_eq!(json["latest"]["bytes_in_use"], 40_000 * 48);
        assert_eq!(json["fragmentation"]["fragmented"], true);
        assert!(json["fragmentation_note"]
            .as_str()
            .is_some_and(|s| s.contains("not a leak")));
        assert!(json["headline"]
            .as_str()
            .is_some_and(|s| s.starts_with("fragmentation, not a leak")));
        assert_eq!(json["diff"]["bytes_in_use"], -(2_960_000i64 * 48));
        assert_eq!(
            json["diff"]["classes"][0]["bytes_before"],
            3_000_000u64 * 48
        );
    }
}
