//! Text and JSON for the allocation reports: leaks, peak, table, tree and diff.
//!
//! Text is for people: human units, the innermost frame as `file:line function()` with paths
//! shown relative to the current directory when under it, and the top stack of the largest
//! sites. JSON is for machines: exact numbers, full paths, every stack frame.

use std::path::{Path, PathBuf};

use memsleuth_analysis::allocs::{
    AllocTable, Breakdown, CaptureInfo, DiffReport, LeakReport, PeakReport, SiteHolder, SiteRow,
    StackRow,
};
use memsleuth_analysis::heap::RetentionPath;
use memsleuth_analysis::verdict::Dismissal;
use memsleuth_analysis::{Location, Verdict, VerdictKind};
use serde::Serialize;

use crate::escape::printable;
use crate::units::{bytes, count, rate, seconds, signed_bytes};

/// Longest site label in a table before its path is shortened from the left.
const SITE_WIDTH: usize = 60;
/// Sites of a leak or peak table whose top stack is shown under them.
const STACKS_SHOWN: usize = 5;
/// Callers shown under a site (the rest are counted).
const CALLERS_SHOWN: usize = 4;
/// Tree nodes smaller than this share of the total are folded into one line.
const TREE_MIN_SHARE: f64 = 0.005;

fn cwd() -> Option<PathBuf> {
    std::env::current_dir().ok()
}

/// A source path for display: relative to `base` when under it, else as recorded; control
/// characters spelled out (the program chose the name).
pub fn display_path(file: &str, base: Option<&Path>) -> String {
    if let Some(base) = base {
        if let Ok(rel) = Path::new(file).strip_prefix(base) {
            if !rel.as_os_str().is_empty() {
                return printable(&rel.to_string_lossy()).into_owned();
            }
        }
    }
    printable(file).into_owned()
}

/// `function()`, or a pseudo-location (`<module>`, `<no Python frame>`) as it is; control
/// characters spelled out.
fn function_label(function: &str) -> String {
    let function = printable(function);
    if function.starts_with('<') {
        function.into_owned()
    } else {
        format!("{function}()")
    }
}

/// `file:line function()`; pseudo-locations (`<no Python frame>`) as they are. A native frame
/// ends with its library: `cmem.c:42 leak() [cmem.cpython-311-x86_64-linux-gnu.so]`.
pub fn location_label(loc: &Location, base: Option<&Path>) -> String {
    let function = function_label(&loc.function);
    let label = if loc.file.is_empty() {
        function
    } else {
        let file = display_path(&loc.file, base);
        if loc.line == 0 {
            format!("{file} {function}")
        } else {
            format!("{file}:{} {function}", loc.line)
        }
    };
    with_library(label, loc)
}

/// A native frame's label followed by its library in brackets; a Python frame's as it is.
fn with_library(label: String, loc: &Location) -> String {
    if loc.library.is_empty() {
        label
    } else {
        format!("{label} [{}]", loc.library)
    }
}

/// `function()  file:line`, the caller form used under a site.
fn caller_label(loc: &Location, base: Option<&Path>) -> String {
    let function = function_label(&loc.function);
    let label = if loc.file.is_empty() {
        function
    } else {
        let file = display_path(&loc.file, base);
        if loc.line == 0 {
            format!("{function}  {file}")
        } else {
            format!("{function}  {file}:{}", loc.line)
        }
    };
    with_library(label, loc)
}

/// A site label of at most `max` characters where possible: leading directories of the path
/// give way to `…/` first (`…/python3.11/enum.py:922 EnumType._convert_()`); the file name,
/// line and function are never cut.
pub fn site_label(loc: &Location, base: Option<&Path>, max: usize) -> String {
    let full = location_label(loc, base);
    if full.chars().count() <= max {
        return full;
    }
    let file = display_path(&loc.file, base);
    let parts: Vec<&str> = file.split('/').filter(|p| !p.is_empty()).collect();
    let mut best = full;
    for keep in (1..parts.len()).rev() {
        let short = format!("…/{}", parts[parts.len() - keep..].join("/"));
        let label = location_label(
            &Location {
                function: loc.function.clone(),
                file: short,
                line: loc.line,
                library: String::new(),
            },
            None,
        );
        let fits = label.chars().count() <= max;
        best = label;
        if fits {
            break;
        }
    }
    best
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

/// A site's verdict in the table; a growth the program's verdict dismissed says why, so the
/// table never calls "growing" what the verdict does not call a leak.
pub(crate) fn verdict_cell(v: Option<&Verdict>, dismissed: Option<Dismissal>) -> String {
    match v {
        None => String::new(),
        Some(v) => match (v.kind, dismissed) {
            (VerdictKind::Growing, Some(why)) => format!(
                "grows {} ({})",
                rate(v.rate),
                crate::verdict::dismissal_word(why)
            ),
            (VerdictKind::Growing, None) => format!("growing {}", rate(v.rate)),
            (other, _) => other.as_str().to_string(),
        },
    }
}

fn command(argv: &[String]) -> String {
    crate::summary::command(argv, 60)
}

/// The first line of every allocation report: what ran, for how long, how it was recorded.
fn title(what: &str, c: &CaptureInfo) -> String {
    let mut s = format!("memsleuth {what} · {} (pid {})", command(&c.argv), c.pid);
    s.push_str(&format!(" · {}", seconds(c.duration())));
    if !c.python_version.is_empty() {
        let short = c
            .python_version
            .split_whitespace()
            .next()
            .unwrap_or_default();
        s.push_str(&format!(" · Python {}", printable(short)));
    }
    s
}

/// Warnings about how far the figures can be trusted; empty when there is nothing to say.
fn caveats(c: &CaptureInfo) -> Vec<String> {
    let mut out = Vec::new();
    if c.sampled() {
        out.push(format!(
            "note: allocations were sampled (one per {} allocated, on average): sizes and counts \
             are estimates",
            bytes(c.sample_bytes as f64)
        ));
    }
    if let Some(warning) = crate::ending::warning(&c.end) {
        // where the data stops: the last event read before damage, the last record flushed
        let up_to = if c.end.damage.is_some() {
            c.last_event_ns as f64 / 1e9
        } else {
            c.duration()
        };
        out.push(format!("{warning} (its data ends at {})", seconds(up_to)));
    }
    if c.end.dropped > 0 {
        out.push(format!(
            "warning: {} events could not be recorded (buffers full): figures are approximate",
            count(c.end.dropped)
        ));
    }
    if c.unresolved_frames > 0 {
        out.push(format!(
            "note: {} frames were never named (the capture ended before they were resolved)",
            count(c.unresolved_frames)
        ));
    }
    if !c.without_unwind.is_empty() {
        out.push(format!(
            "note: {} {} no unwind tables: native stacks stop there, and the C callers above \
             {} are missing (the Python lines are not)",
            c.without_unwind.join(", "),
            if c.without_unwind.len() == 1 {
                "has"
            } else {
                "have"
            },
            if c.without_unwind.len() == 1 {
                "it"
            } else {
                "them"
            },
        ));
    }
    out
}

/// "at exit" or "at 2.0 s"; a recording stopped while the program went on (`attach`, the
/// API's `Tracker.stop()`) ends "when the recording ended".
fn when(r: &LeakReport) -> String {
    if r.at_end {
        if r.capture.end.cut_short {
            "at the end of the capture".into()
        } else if r.capture.end.reason == Some(memsleuth_analysis::EndCause::Stopped) {
            "when the recording ended".into()
        } else {
            "at exit".into()
        }
    } else {
        format!("at {}", seconds(r.at_ns as f64 / 1e9))
    }
}

/// `"1 block"`, `"48,211 blocks"`.
fn blocks(n: u64) -> String {
    if n == 1 {
        "1 block".into()
    } else {
        format!("{} blocks", count(n))
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{} {many}", count(n as u64))
    }
}

/// The headline of a leak report: one line with the totals, and one line per leaking site (or
/// one saying none grew). Used by `report leaks`, `report summary` and `run`.
pub fn leaks_headline(r: &LeakReport) -> String {
    leaks_headline_in(r, cwd().as_deref(), None)
}

/// The totals line under the verdict's lines (`report summary`).
pub fn leaks_headline_with(r: &LeakReport, verdict: &str) -> String {
    leaks_headline_in(r, cwd().as_deref(), Some(verdict))
}

/// The totals line, then the verdict's lines when given (they replace the per-site ones: one
/// verdict, one wording).
fn leaks_headline_in(r: &LeakReport, base: Option<&Path>, verdict: Option<&str>) -> String {
    let l = &r.leaks;
    if l.sites.is_empty() {
        return format!(
            "Leaks: nothing allocated while tracking is still alive {}\n",
            when(r)
        );
    }
    let judged = judged(r);
    let mut out = verdict.unwrap_or_default().to_string();
    out.push_str(&format!(
        "{}Leaks: {} in {} still alive {}, allocated at {}",
        if verdict.is_some() { "  " } else { "" },
        bytes(l.bytes as f64),
        blocks(l.blocks),
        when(r),
        plural(l.sites.len(), "site", "sites"),
    ));
    if judged && verdict.is_none() {
        out.push_str(&format!(" (growing: {})", r.growing));
    }
    out.push('\n');
    if verdict.is_some() {
        return out;
    }
    if !judged && l.sites.iter().any(|s| s.verdict.is_some()) {
        out.push_str(
            "  the sites were allocated over too short a time to tell leaks from caches; a longer \
             run gives each a verdict\n",
        );
    }
    let leaking: Vec<&SiteRow> = r.leaking_sites().collect();
    if !leaking.is_empty() {
        for s in leaking.iter().take(3) {
            let v = s.verdict.as_ref().map_or(0.0, |v| v.rate);
            out.push_str(&format!(
                "  leaking: {} grows {}, {} alive {}\n",
                location_label(&s.location, base),
                rate(v),
                bytes(s.bytes as f64),
                when(r)
            ));
        }
        if leaking.len() > 3 {
            out.push_str(&format!("  and {} more growing sites\n", leaking.len() - 3));
        }
    } else if judged {
        let brief = l
            .sites
            .iter()
            .filter(|s| {
                s.verdict
                    .as_ref()
                    .is_some_and(|v| v.kind == VerdictKind::Inconclusive)
            })
            .count();
        if brief == 0 {
            out.push_str(
                "  no site grew steadily over the run: what is left looks like caches and state \
                 kept on purpose (see each site's verdict)\n",
            );
        } else {
            out.push_str(&format!(
                "  no site was seen growing steadily; {} of the largest {} allocated too briefly \
                 to judge (see each site's verdict)\n",
                count(brief as u64),
                if brief == 1 { "was" } else { "were" }
            ));
        }
    }
    out
}

/// True when some site has a verdict that says something (not all inconclusive).
fn judged(r: &LeakReport) -> bool {
    r.leaks.sites.iter().any(|s| {
        s.verdict
            .as_ref()
            .is_some_and(|v| v.kind != VerdictKind::Inconclusive)
    })
}

/// The callers of a stack under its site: innermost first, a few, then a count.
fn stack_lines(
    b: &Breakdown,
    stack: &StackRow,
    base: Option<&Path>,
    indent: &str,
    shown: usize,
) -> Vec<String> {
    let frames = b.frames(stack);
    // the last frame is the site itself, already on the site's line
    let callers: Vec<&&Location> = frames.iter().rev().skip(1).collect();
    let mut out: Vec<String> = callers
        .iter()
        .take(shown)
        .map(|l| format!("{indent}← {}", caller_label(l, base)))
        .collect();
    if callers.len() > shown {
        out.push(format!(
            "{indent}← … {}",
            plural(callers.len() - shown, "more frame", "more frames")
        ));
    }
    out
}

/// A site table (leaks or peak): bytes, blocks, site, verdict, with the top stacks.
fn site_table(
    b: &Breakdown,
    top: usize,
    base: Option<&Path>,
    with_verdict: bool,
    callers: usize,
    out: &mut String,
) {
    let shown: Vec<&SiteRow> = b.sites.iter().take(top).collect();
    let labels: Vec<String> = shown
        .iter()
        .map(|s| site_label(&s.location, base, SITE_WIDTH))
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let header = format!(
        "  {:<10} {:>9}  {}",
        "bytes",
        "blocks",
        if with_verdict {
            format!("{}  verdict", pad("site", width))
        } else {
            "site".to_string()
        }
    );
    out.push_str(header.trim_end());
    out.push('\n');
    let indent = " ".repeat(2 + 10 + 1 + 9 + 2);
    for (i, (s, label)) in shown.iter().zip(&labels).enumerate() {
        let mut line = format!(
            "  {:<10} {:>9}  {}",
            bytes(s.bytes as f64),
            count(s.blocks),
            if with_verdict {
                format!(
                    "{}  {}",
                    pad(label, width),
                    verdict_cell(s.verdict.as_ref(), s.dismissed)
                )
            } else {
                label.clone()
            }
        );
        line.truncate(line.trim_end().len());
        out.push_str(&line);
        out.push('\n');
        if i < STACKS_SHOWN {
            if let Some(stack) = s.stacks.first().and_then(|&k| b.stacks.get(k)) {
                let mut lines = stack_lines(b, stack, base, &indent, callers);
                if s.stacks.len() > 1 && !lines.is_empty() {
                    let share = 100.0 * stack.bytes as f64 / (s.bytes.max(1)) as f64;
                    lines[0].push_str(&format!(
                        "   (top stack of {}, {share:.0}%)",
                        s.stacks.len()
                    ));
                }
                for l in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
    }
    if b.sites.len() > shown.len() {
        let rest = &b.sites[shown.len()..];
        let rest_bytes = crate::units::total(rest.iter().map(|s| s.bytes));
        let rest_blocks = crate::units::total(rest.iter().map(|s| s.blocks));
        out.push_str(&format!(
            "  … {} more {} hold {} in {} (--top {} shows them all)\n",
            count(rest.len() as u64),
            if rest.len() == 1 { "site" } else { "sites" },
            bytes(rest_bytes as f64),
            blocks(rest_blocks),
            b.sites.len()
        ));
    }
}

/// A path line with subscripts blanked: `list [109] → bytes` → `list […] → bytes`.
fn shape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("[…");
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(']');
                }
            }
            _ if depth > 0 => {}
            c => out.push(c),
        }
    }
    out
}

/// A retention path on one line: `module app .CACHE → dict ['k'] → Session`.
pub fn path_line(p: &RetentionPath, base: Option<&Path>) -> String {
    let mut out = printable(&shorten_words(&p.root, base)).into_owned();
    for (i, s) in p.steps.iter().enumerate() {
        if i == 0 {
            // the root object itself is named by the root's words
            continue;
        }
        if !s.edge.is_empty() && s.edge != "->" {
            out.push(' ');
            out.push_str(&printable(s.edge.trim()));
        }
        out.push_str(" → ");
        out.push_str(&printable(&s.type_name));
    }
    out
}

/// "held by …" and the chain; a chain rooted in C already says "held from C".
pub fn holder_line(p: &RetentionPath, base: Option<&Path>) -> String {
    let chain = path_line(p, base);
    if p.root_kind == memsleuth_analysis::heap::RootKind::HeldFromC {
        chain
    } else {
        format!("held by {chain}")
    }
}

fn shorten_words(words: &str, base: Option<&Path>) -> String {
    match base {
        Some(b) => {
            let prefix = format!("{}/", b.display());
            words.replace(&prefix, "")
        }
        None => words.to_string(),
    }
}

/// Under the site table: for the listed sites whose surviving blocks are Python objects, what
/// the object is and the chain of references that keeps it alive.
fn holders_section(
    r: &LeakReport,
    top: usize,
    base: Option<&Path>,
    growing_only: bool,
    out: &mut String,
) {
    let mut shown = 0;
    for (i, site) in r.leaks.sites.iter().enumerate().take(top) {
        if growing_only && !site.growing() {
            continue;
        }
        let held: Vec<&SiteHolder> = r.holders.iter().filter(|h| h.site == i).collect();
        let Some(first) = held.first() else {
            continue;
        };
        if shown == 0 {
            out.push_str(
                "\n  who holds them (a surviving object of the site, and what keeps it alive):\n",
            );
        }
        shown += 1;
        let target = first.path.steps.last();
        let what = target.map_or_else(String::new, |t| {
            let repr = crate::plot::truncate(&printable(&t.repr), 60);
            let type_name = printable(&t.type_name);
            // "dict (3 items)", "<Session object at …>" name their type already
            let short = type_name.rsplit('.').next().unwrap_or(&type_name);
            if repr.contains(short) {
                repr
            } else {
                format!("{type_name} {repr}")
            }
        });
        out.push_str(&format!(
            "  {}  {}\n",
            location_label(&site.location, base),
            what
        ));
        out.push_str(&format!("      {}\n", holder_line(&first.path, base)));
        // blocks held by the same route differ only in their index or key
        let route = |h: &SiteHolder| shape(&path_line(&h.path, base));
        let first_route = route(first);
        let same = held[1..].iter().filter(|h| route(h) == first_route).count();
        let mut others: Vec<String> = Vec::new();
        for h in &held[1..] {
            if route(h) != first_route && !others.iter().any(|o| shape(o) == route(h)) {
                others.push(path_line(&h.path, base));
            }
        }
        if same > 0 {
            out.push_str(&format!(
                "      ({} more sampled {} held the same way)\n",
                same,
                if same == 1 { "block" } else { "blocks" }
            ));
        }
        for o in others.iter().take(2) {
            out.push_str(&format!("      held by {o}\n"));
        }
    }
}

/// The short leak summary `memsleuth run` prints at exit: the headline and the top sites,
/// each with two callers.
pub fn leaks_brief(r: &LeakReport, top: usize) -> String {
    leaks_brief_in(r, top, None)
}

/// [`leaks_brief`] under the one verdict's lines (see [`crate::verdict::verdict_lines`]).
pub fn leaks_brief_with(r: &LeakReport, top: usize, verdict: &str) -> String {
    leaks_brief_in(r, top, Some(verdict))
}

fn leaks_brief_in(r: &LeakReport, top: usize, verdict: Option<&str>) -> String {
    let base = cwd();
    let base = base.as_deref();
    let mut out = leaks_headline_in(r, base, verdict);
    if !r.leaks.sites.is_empty() {
        out.push('\n');
        site_table(&r.leaks, top.max(1), base, judged(r), 2, &mut out);
        if verdict.is_none() {
            holders_section(r, top.max(1), base, true, &mut out);
        }
    }
    for c in caveats(&r.capture) {
        out.push_str(&format!("  {c}\n"));
    }
    out
}

/// The leak report for people. `top` sites are listed (0: all).
pub fn leaks_text(r: &LeakReport, top: usize) -> String {
    leaks_text_in(r, top, cwd().as_deref(), None)
}

/// [`leaks_text`] with the one verdict's lines at its head.
pub fn leaks_text_with(r: &LeakReport, top: usize, verdict: &str) -> String {
    leaks_text_in(r, top, cwd().as_deref(), Some(verdict))
}

fn leaks_text_in(r: &LeakReport, top: usize, base: Option<&Path>, verdict: Option<&str>) -> String {
    let top = if top == 0 { usize::MAX } else { top };
    let mut out = title("leaks", &r.capture);
    out.push('\n');
    out.push_str(&leaks_headline_in(r, base, verdict));
    if !r.leaks.sites.is_empty() {
        out.push('\n');
        site_table(&r.leaks, top, base, judged(r), CALLERS_SHOWN, &mut out);
        holders_section(r, top, base, false, &mut out);
    }
    out.push('\n');
    out.push_str(&format!(
        "  tracked heap: peak {} at {}, {} {}\n",
        bytes(r.heap.peak_bytes as f64),
        seconds(r.heap.peak_at_ns as f64 / 1e9),
        bytes(r.heap.end_bytes as f64),
        when(r)
    ));
    if judged(r) {
        out.push_str(&format!(
            "  verdicts: each site's live bytes followed from its first allocation to the end, in \
             {} windows\n",
            r.windows
        ));
    }
    for c in caveats(&r.capture) {
        out.push_str(&format!("  {c}\n"));
    }
    out
}

#[derive(Serialize)]
struct FrameJson<'a> {
    function: &'a str,
    file: &'a str,
    line: u32,
    /// A native frame's object file name (absent for Python frames).
    #[serde(skip_serializing_if = "str::is_empty")]
    library: &'a str,
}

impl<'a> From<&'a Location> for FrameJson<'a> {
    fn from(l: &'a Location) -> Self {
        FrameJson {
            function: &l.function,
            file: &l.file,
            line: l.line,
            library: &l.library,
        }
    }
}

#[derive(Serialize)]
struct StackJson<'a> {
    bytes: u64,
    blocks: u64,
    /// Outermost first, the allocation site last.
    frames: Vec<FrameJson<'a>>,
}

#[derive(Serialize)]
struct SiteJson<'a> {
    function: &'a str,
    file: &'a str,
    line: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    library: &'a str,
    bytes: u64,
    blocks: u64,
    stacks: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'a Verdict>,
    /// `(t_ns, live bytes)` from the site's first allocation to the end.
    #[serde(skip_serializing_if = "<[(u64, u64)]>::is_empty")]
    series: &'a [(u64, u64)],
    /// The largest stacks (at most 3).
    top_stacks: Vec<StackJson<'a>>,
}

fn sites_json<'a>(b: &'a Breakdown, top: usize) -> Vec<SiteJson<'a>> {
    let top = if top == 0 { usize::MAX } else { top };
    b.sites
        .iter()
        .take(top)
        .map(|s| SiteJson {
            function: &s.location.function,
            file: &s.location.file,
            line: s.location.line,
            library: &s.location.library,
            bytes: s.bytes,
            blocks: s.blocks,
            stacks: s.stacks.len(),
            verdict: s.verdict.as_ref(),
            series: &s.series,
            top_stacks: s
                .stacks
                .iter()
                .take(3)
                .filter_map(|&k| b.stacks.get(k))
                .map(|st| StackJson {
                    bytes: st.bytes,
                    blocks: st.blocks,
                    frames: b.frames(st).into_iter().map(FrameJson::from).collect(),
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
struct HeapJson {
    peak_bytes: u64,
    peak_blocks: u64,
    /// Seconds since the capture start.
    peak_at: f64,
    end_bytes: u64,
    end_blocks: u64,
}

impl From<&memsleuth_analysis::allocs::HeapInfo> for HeapJson {
    fn from(h: &memsleuth_analysis::allocs::HeapInfo) -> Self {
        HeapJson {
            peak_bytes: h.peak_bytes,
            peak_blocks: h.peak_blocks,
            peak_at: h.peak_at_ns as f64 / 1e9,
            end_bytes: h.end_bytes,
            end_blocks: h.end_blocks,
        }
    }
}

#[derive(Serialize)]
struct LeaksJson<'a> {
    capture: &'a CaptureInfo,
    sampled: bool,
    /// Seconds since the capture start at which the leaks are taken.
    at: f64,
    at_end: bool,
    bytes: u64,
    blocks: u64,
    /// Number of sites holding leaked memory (all of them, not only those listed).
    site_count: usize,
    growing: usize,
    headline: String,
    /// Windows each judged site's life was cut into.
    windows: u32,
    heap: HeapJson,
    sites: Vec<SiteJson<'a>>,
    /// Surviving objects of the top sites (`site` indexes `sites`) and what keeps them alive.
    holders: &'a [SiteHolder],
}

fn to_json<T: Serialize>(model: &T) -> String {
    serde_json::to_string_pretty(model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The leak report as JSON: `top` sites (0: all), each with its verdict, series and top stacks.
pub fn leaks_json(r: &LeakReport, top: usize) -> String {
    to_json(&leaks_model(r, top))
}

fn leaks_model(r: &LeakReport, top: usize) -> LeaksJson<'_> {
    LeaksJson {
        capture: &r.capture,
        sampled: r.capture.sampled(),
        at: r.at_ns as f64 / 1e9,
        at_end: r.at_end,
        bytes: r.leaks.bytes,
        blocks: r.leaks.blocks,
        site_count: r.leaks.sites.len(),
        growing: r.growing,
        headline: leaks_headline_in(r, None, None).trim_end().to_string(),
        windows: r.windows,
        heap: HeapJson::from(&r.heap),
        sites: sites_json(&r.leaks, top),
        holders: &r.holders,
    }
}

#[derive(Serialize)]
struct LeakingJson<'a> {
    function: &'a str,
    file: &'a str,
    line: u32,
    bytes: u64,
    /// Bytes per second.
    rate: f64,
}

#[derive(Serialize)]
struct LeaksSummaryJson<'a> {
    bytes: u64,
    blocks: u64,
    sites: usize,
    growing: usize,
    sampled: bool,
    headline: String,
    leaking: Vec<LeakingJson<'a>>,
}

/// The `leaks` part of `report summary --json`: totals and the growing sites.
pub fn leaks_summary_value(r: &LeakReport) -> serde_json::Value {
    let model = LeaksSummaryJson {
        bytes: r.leaks.bytes,
        blocks: r.leaks.blocks,
        sites: r.leaks.sites.len(),
        growing: r.growing,
        sampled: r.capture.sampled(),
        headline: leaks_headline_in(r, None, None).trim_end().to_string(),
        leaking: r
            .leaking_sites()
            .map(|s| LeakingJson {
                function: &s.location.function,
                file: &s.location.file,
                line: s.location.line,
                bytes: s.bytes,
                rate: s.verdict.as_ref().map_or(0.0, |v| v.rate),
            })
            .collect(),
    };
    serde_json::to_value(&model).unwrap_or(serde_json::Value::Null)
}

/// The peak report for people.
pub fn peak_text(r: &PeakReport, top: usize) -> String {
    peak_text_in(r, top, cwd().as_deref())
}

fn peak_text_in(r: &PeakReport, top: usize, base: Option<&Path>) -> String {
    let top = if top == 0 { usize::MAX } else { top };
    let mut out = title("peak", &r.capture);
    out.push('\n');
    if r.alive.sites.is_empty() {
        out.push_str("Peak: nothing was allocated while tracking\n");
    } else {
        out.push_str(&format!(
            "Peak: {} in {} alive at {} (tracked heap's high-water mark), allocated at {}\n\n",
            bytes(r.peak_bytes as f64),
            blocks(r.peak_blocks),
            seconds(r.peak_at_ns as f64 / 1e9),
            plural(r.alive.sites.len(), "site", "sites"),
        ));
        site_table(&r.alive, top, base, false, CALLERS_SHOWN, &mut out);
    }
    out.push('\n');
    out.push_str(&format!(
        "  tracked heap: {} at the end ({})\n",
        bytes(r.heap.end_bytes as f64),
        blocks(r.heap.end_blocks)
    ));
    for c in caveats(&r.capture) {
        out.push_str(&format!("  {c}\n"));
    }
    out
}

#[derive(Serialize)]
struct PeakJson<'a> {
    capture: &'a CaptureInfo,
    sampled: bool,
    peak_bytes: u64,
    peak_blocks: u64,
    /// Seconds since the capture start.
    peak_at: f64,
    site_count: usize,
    heap: HeapJson,
    sites: Vec<SiteJson<'a>>,
}

/// The peak report as JSON.
pub fn peak_json(r: &PeakReport, top: usize) -> String {
    to_json(&PeakJson {
        capture: &r.capture,
        sampled: r.capture.sampled(),
        peak_bytes: r.peak_bytes,
        peak_blocks: r.peak_blocks,
        peak_at: r.peak_at_ns as f64 / 1e9,
        site_count: r.alive.sites.len(),
        heap: HeapJson::from(&r.heap),
        sites: sites_json(&r.alive, top),
    })
}

/// Every allocation per site, for people.
pub fn table_text(t: &AllocTable, top: usize) -> String {
    table_text_in(t, top, cwd().as_deref())
}

fn table_text_in(t: &AllocTable, top: usize, base: Option<&Path>) -> String {
    let top = if top == 0 { usize::MAX } else { top };
    let mut out = title("table", &t.capture);
    out.push('\n');
    let all = &t.totals;
    out.push_str(&format!(
        "Allocated while tracking: {} in {} at {}; {} in {} still alive at the end\n\n",
        bytes(all.allocated_bytes as f64),
        blocks(all.allocated_blocks),
        plural(t.rows.len(), "site", "sites"),
        bytes(all.alive_bytes as f64),
        blocks(all.alive_blocks),
    ));
    if !t.rows.is_empty() {
        out.push_str(&format!(
            "  {:>10} {:>11}  {:>10}  {:>10} {:>9}  site\n",
            "allocated", "blocks", "freed", "alive", "blocks"
        ));
        for r in t.rows.iter().take(top) {
            let line = format!(
                "  {:>10} {:>11}  {:>10}  {:>10} {:>9}  {}",
                bytes(r.allocated_bytes as f64),
                count(r.allocated_blocks),
                bytes(r.freed_bytes as f64),
                bytes(r.alive_bytes as f64),
                count(r.alive_blocks),
                site_label(&r.location, base, SITE_WIDTH + 20)
            );
            out.push_str(&line);
            out.push('\n');
        }
        if t.rows.len() > top {
            let rest = &t.rows[top..];
            out.push_str(&format!(
                "  … {} more {} allocated {} (--top {} shows them all)\n",
                count(rest.len() as u64),
                if rest.len() == 1 { "site" } else { "sites" },
                bytes(rest.iter().map(|r| r.allocated_bytes).sum::<u64>() as f64),
                t.rows.len()
            ));
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "  tracked heap: peak {} at {}\n",
        bytes(t.heap.peak_bytes as f64),
        seconds(t.heap.peak_at_ns as f64 / 1e9)
    ));
    for c in caveats(&t.capture) {
        out.push_str(&format!("  {c}\n"));
    }
    out
}

#[derive(Serialize)]
struct TableJson<'a> {
    capture: &'a CaptureInfo,
    sampled: bool,
    totals: &'a memsleuth_analysis::allocs::TableRow,
    site_count: usize,
    heap: HeapJson,
    sites: &'a [memsleuth_analysis::allocs::TableRow],
}

/// Every allocation per site, as JSON.
pub fn table_json(t: &AllocTable, top: usize) -> String {
    let n = if top == 0 {
        t.rows.len()
    } else {
        top.min(t.rows.len())
    };
    to_json(&TableJson {
        capture: &t.capture,
        sampled: t.capture.sampled(),
        totals: &t.totals,
        site_count: t.rows.len(),
        heap: HeapJson::from(&t.heap),
        sites: &t.rows[..n],
    })
}

/// The call tree of all allocations, for people: `depth` levels below the root (0: all).
pub fn tree_text(t: &AllocTable, depth: usize) -> String {
    tree_text_in(t, depth, cwd().as_deref())
}

enum TreeItem {
    /// A node, the guide prefix of its children's lines, and whether it is its parent's last.
    Node(usize, String, bool),
    /// A line already rendered (folded small calls).
    Line(String),
}

fn tree_text_in(t: &AllocTable, depth: usize, base: Option<&Path>) -> String {
    let depth = if depth == 0 { usize::MAX } else { depth };
    let mut out = title("tree", &t.capture);
    out.push('\n');
    let nodes = &t.tree.nodes;
    let Some(root) = nodes.first() else {
        return out;
    };
    let total = root.allocated_bytes.max(1) as f64;
    out.push_str(&format!(
        "Allocated while tracking: {} in {}; {} still alive at the end\n\n",
        bytes(root.allocated_bytes as f64),
        blocks(root.allocated_blocks),
        bytes(root.alive_bytes as f64)
    ));
    out.push_str(&format!(
        "  {:>6}  {:>10}  {:>10}  call path\n",
        "share", "allocated", "alive"
    ));
    let row = |share: f64, allocated: u64, alive: u64, text: &str| {
        format!(
            "  {:>5.1}%  {:>10}  {:>10}  {text}\n",
            share * 100.0,
            bytes(allocated as f64),
            bytes(alive as f64),
        )
    };
    let label = |i: usize| {
        nodes
            .get(i)
            .and_then(|n| n.location)
            .and_then(|l| t.locations.get(l as usize))
            .map(|l| caller_label(l, base))
            .unwrap_or_default()
    };
    // the trunk: calls everything goes through (the interpreter's and launcher's frames), shown
    // as one line; the tree branches below it
    let mut trunk: Vec<usize> = Vec::new();
    let mut head = 0usize;
    while let Some(n) = nodes.get(head) {
        let Some(&c) = n.children.first() else { break };
        let Some(child) = nodes.get(c) else { break };
        if (child.allocated_bytes as f64) < 0.995 * n.allocated_bytes as f64 {
            break;
        }
        trunk.push(c);
        head = c;
    }
    let head_text = match trunk.as_slice() {
        [] => "(all calls)".to_string(),
        [one] => label(*one),
        [first, .., last] => format!(
            "{} → {}{}",
            label(*first),
            if trunk.len() > 2 {
                format!("… {} → ", plural(trunk.len() - 2, "call", "calls"))
            } else {
                String::new()
            },
            label(*last)
        ),
    };
    let Some(head_node) = nodes.get(head) else {
        return out;
    };
    out.push_str(&row(
        head_node.allocated_bytes as f64 / total,
        head_node.allocated_bytes,
        head_node.alive_bytes,
        &head_text,
    ));
    let head_depth = head_node.depth as usize;
    // children of a node, largest first, with the small ones folded into one line
    let children = |n: &memsleuth_analysis::allocs::TreeNode, prefix: &str| -> Vec<TreeItem> {
        let (shown, small): (Vec<usize>, Vec<usize>) = n.children.iter().partition(|&&c| {
            nodes
                .get(c)
                .is_some_and(|c| c.allocated_bytes as f64 / total >= TREE_MIN_SHARE)
        });
        let mut items: Vec<TreeItem> = shown
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                TreeItem::Node(
                    c,
                    prefix.to_string(),
                    k + 1 == shown.len() && small.is_empty(),
                )
            })
            .collect();
        if !small.is_empty() {
            let small: Vec<_> = small.iter().filter_map(|&c| nodes.get(c)).collect();
            let allocated = crate::units::total(small.iter().map(|c| c.allocated_bytes));
            let alive = crate::units::total(small.iter().map(|c| c.alive_bytes));
            let text = format!(
                "{prefix}└─ … {} under {:.1}% each",
                plural(small.len(), "smaller call", "smaller calls"),
                TREE_MIN_SHARE * 100.0
            );
            items.push(TreeItem::Line(row(
                allocated as f64 / total,
                allocated,
                alive,
                &text,
            )));
        }
        items
    };
    let mut work: Vec<TreeItem> = children(head_node, "");
    work.reverse();
    while let Some(item) = work.pop() {
        let (i, prefix, last) = match item {
            TreeItem::Line(line) => {
                out.push_str(&line);
                continue;
            }
            TreeItem::Node(i, prefix, last) => (i, prefix, last),
        };
        let Some(n) = nodes.get(i) else { continue };
        let (guide, child_prefix) = if last {
            (format!("{prefix}└─ "), format!("{prefix}   "))
        } else {
            (format!("{prefix}├─ "), format!("{prefix}│  "))
        };
        out.push_str(&row(
            n.allocated_bytes as f64 / total,
            n.allocated_bytes,
            n.alive_bytes,
            &format!("{guide}{}", label(i)),
        ));
        if (n.depth as usize).saturating_sub(head_depth) < depth {
            let mut items = children(n, &child_prefix);
            items.reverse();
            work.extend(items);
        }
    }
    for c in caveats(&t.capture) {
        out.push_str(&format!("  {c}\n"));
    }
    out
}

#[derive(Serialize)]
struct TreeJson<'a> {
    location: Option<FrameJson<'a>>,
    allocated_bytes: u64,
    allocated_blocks: u64,
    alive_bytes: u64,
    alive_blocks: u64,
    self_bytes: u64,
    children: Vec<TreeJson<'a>>,
}

fn tree_model(t: &AllocTable, i: usize, depth: usize) -> Option<TreeJson<'_>> {
    let n = t.tree.nodes.get(i)?;
    let children = if (n.depth as usize) < depth {
        n.children
            .iter()
            .filter_map(|&c| tree_model(t, c, depth))
            .collect()
    } else {
        Vec::new()
    };
    Some(TreeJson {
        location: n
            .location
            .and_then(|l| t.locations.get(l as usize))
            .map(FrameJson::from),
        allocated_bytes: n.allocated_bytes,
        allocated_blocks: n.allocated_blocks,
        alive_bytes: n.alive_bytes,
        alive_blocks: n.alive_blocks,
        self_bytes: n.self_bytes,
        children,
    })
}

#[derive(Serialize)]
struct TreeDocJson<'a> {
    capture: &'a CaptureInfo,
    sampled: bool,
    tree: Option<TreeJson<'a>>,
}

/// The call tree as nested JSON, `depth` levels below the root (0: all).
pub fn tree_json(t: &AllocTable, depth: usize) -> String {
    let depth = if depth == 0 { usize::MAX } else { depth };
    to_json(&TreeDocJson {
        capture: &t.capture,
        sampled: t.capture.sampled(),
        tree: tree_model(t, 0, depth),
    })
}

/// Leak growth between two captures, for people. `a` and `b` name the captures.
pub fn diff_text(d: &DiffReport, top: usize, a: &str, b: &str) -> String {
    diff_text_in(d, top, a, b, cwd().as_deref())
}

fn diff_text_in(d: &DiffReport, top: usize, a: &str, b: &str, base: Option<&Path>) -> String {
    let top = if top == 0 { usize::MAX } else { top };
    let mut out = format!("memsleuth diff · A = {a} · B = {b}\n");
    out.push_str(&format!(
        "Leaked at the end: {} in A, {} in B ({})\n",
        bytes(d.bytes_a as f64),
        bytes(d.bytes_b as f64),
        signed_bytes(d.growth_bytes as f64)
    ));
    let grown: Vec<_> = d.grown().collect();
    if grown.is_empty() {
        out.push_str("  no site leaks more in B than in A\n");
    } else {
        out.push_str(&format!(
            "  {} leak{} more in B\n\n",
            plural(grown.len(), "site", "sites"),
            if grown.len() == 1 { "s" } else { "" }
        ));
        out.push_str(&format!(
            "  {:>11}  {:>10}  {:>10}  site\n",
            "growth", "A", "B"
        ));
        for r in grown.iter().take(top) {
            out.push_str(&format!(
                "  {:>11}  {:>10}  {:>10}  {}\n",
                signed_bytes(r.delta_bytes as f64),
                bytes(r.bytes_a as f64),
                bytes(r.bytes_b as f64),
                site_label(&r.location, base, SITE_WIDTH + 10)
            ));
        }
        if grown.len() > top {
            out.push_str(&format!(
                "  … {} more {} grew (--top {} shows them all)\n",
                count((grown.len() - top) as u64),
                if grown.len() - top == 1 {
                    "site"
                } else {
                    "sites"
                },
                grown.len()
            ));
        }
    }
    let shrunk = d.rows.iter().filter(|r| r.delta_bytes < 0).count();
    if shrunk > 0 {
        let freed: i64 = d
            .rows
            .iter()
            .filter(|r| r.delta_bytes < 0)
            .fold(0i64, |t, r| t.saturating_add(r.delta_bytes));
        out.push_str(&format!(
            "  {} leak{} less in B ({})\n",
            plural(shrunk, "site", "sites"),
            if shrunk == 1 { "s" } else { "" },
            signed_bytes(freed as f64)
        ));
    }
    for (name, c) in [("A", &d.a), ("B", &d.b)] {
        for line in caveats(c) {
            out.push_str(&format!("  {name}: {line}\n"));
        }
    }
    out
}

#[derive(Serialize)]
struct DiffJson<'a> {
    a: &'a str,
    b: &'a str,
    bytes_a: u64,
    blocks_a: u64,
    bytes_b: u64,
    blocks_b: u64,
    growth_bytes: i64,
    sampled: bool,
    /// Sites leaking more in B, largest growth first (at most `top`), then the rest.
    sites: &'a [memsleuth_analysis::allocs::DiffRow],
}

/// Leak growth between two captures as JSON (`top` rows, 0: all).
pub fn diff_json(d: &DiffReport, top: usize, a: &str, b: &str) -> String {
    let n = if top == 0 {
        d.rows.len()
    } else {
        top.min(d.rows.len())
    };
    to_json(&DiffJson {
        a,
        b,
        bytes_a: d.bytes_a,
        blocks_a: d.blocks_a,
        bytes_b: d.bytes_b,
        blocks_b: d.blocks_b,
        growth_bytes: d.growth_bytes,
        sampled: d.a.sampled() || d.b.sampled(),
        sites: &d.rows[..n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use memsleuth_analysis::allocs::{DiffRow, HeapInfo, TableRow, TreeNode};
    use memsleuth_analysis::timeline::EndInfo;

    const MIB: u64 = 1 << 20;
    const BASE: &str = "/home/u/proj";

    fn loc(function: &str, file: &str, line: u32) -> Location {
        Location {
            function: function.into(),
            file: file.into(),
            line,
            library: String::new(),
        }
    }

    fn verdict(kind: VerdictKind, rate: f64) -> Verdict {
        Verdict {
            kind,
            rate,
            rate_low: rate * 0.9,
            rate_high: rate * 1.1,
            p_value: 0.0001,
            warmup: 1.0,
            window_start: 1.0,
            window_end: 10.0,
            intercept: 0.0,
            net_change: rate * 10.0,
            releases: 0,
            points: 9,
            reason: crate::plot::test_models::reason_of(kind),
        }
    }

    fn capture() -> CaptureInfo {
        CaptureInfo {
            pid: 4242,
            argv: vec!["python".into(), "examples/leaky_server.py".into()],
            python_version: "3.12.1 (main, Jan 1 2024)".into(),
            duration_ns: 12_000_000_000,
            end: EndInfo {
                reason: Some(memsleuth_analysis::EndCause::TargetExited),
                duration: 12.0,
                ..EndInfo::default()
            },
            ..CaptureInfo::default()
        }
    }

    /// Two leaking-looking sites: a growing handler and a plateaued cache, plus a small third.
    fn report() -> LeakReport {
        let locations = vec![
            loc("main", "/home/u/proj/examples/leaky_server.py", 52),
            loc("serve", "/home/u/proj/examples/leaky_server.py", 40),
            loc("handle", "/home/u/proj/examples/leaky_server.py", 27),
            loc("get", "/usr/lib/python3.12/functools.py", 10),
            loc("<no Python frame>", "", 0),
        ];
        let stacks = vec![
            StackRow {
                frames: vec![0, 1, 2],
                site: 0,
                bytes: 11 * MIB,
                blocks: 40_000,
                bins: vec![(0, 5 * MIB, 20_000), (1, 6 * MIB, 20_000)],
            },
            StackRow {
                frames: vec![0, 3],
                site: 1,
                bytes: MIB / 2,
                blocks: 8_000,
                bins: vec![(0, MIB / 2, 8_000)],
            },
            StackRow {
                frames: vec![],
                site: 2,
                bytes: 1000,
                blocks: 3,
                bins: vec![(0, 1000, 3)],
            },
        ];
        let sites = vec![
            SiteRow {
                location: locations[2].clone(),
                bytes: 11 * MIB,
                blocks: 40_000,
                stacks: vec![0],
                verdict: Some(verdict(VerdictKind::Growing, 2.1 * MIB as f64)),
                series: vec![(0, 0), (12_000_000_000, 11 * MIB)],
                freed_at_shutdown: 0,
                dismissed: None,
            },
            SiteRow {
                location: locations[3].clone(),
                bytes: MIB / 2,
                blocks: 8_000,
                stacks: vec![1],
                verdict: Some(verdict(VerdictKind::Plateau, 0.0)),
                series: vec![(0, 0), (12_000_000_000, MIB / 2)],
                freed_at_shutdown: 0,
                dismissed: None,
            },
            SiteRow {
                location: locations[4].clone(),
                bytes: 1000,
                blocks: 3,
                stacks: vec![2],
                verdict: Some(verdict(VerdictKind::Stable, 0.0)),
                series: vec![],
                freed_at_shutdown: 0,
                dismissed: None,
            },
        ];
        LeakReport {
            capture: capture(),
            at_ns: 12_000_000_000,
            at_end: true,
            leaks: Breakdown {
                bytes: 11 * MIB + MIB / 2 + 1000,
                blocks: 48_003,
                locations,
                sites,
                stacks,
                bin_ns: 120_000_000,
                bins: 100,
            },
            windows: 10,
            growing: 1,
            heap: HeapInfo {
                peak_bytes: 14 * MIB,
                peak_blocks: 50_000,
                peak_at_ns: 9_800_000_000,
                end_bytes: 12 * MIB,
                end_blocks: 48_003,
                series: vec![],
            },
            rss: vec![],
            own: vec![],
            counts: Vec::new(),
            holders: vec![],
            samples: vec![],
            released: vec![],
            censuses: Default::default(),
        }
    }

    fn base() -> Option<&'static Path> {
        Some(Path::new(BASE))
    }

    #[test]
    fn leaks_table_reads_like_the_design() {
        let text = leaks_text_in(&report(), 10, base(), None);
        let expected = "\
memsleuth leaks · python examples/leaky_server.py (pid 4242) · 12.0 s · Python 3.12.1
Leaks: 11.5 MiB in 48,003 blocks still alive at exit, allocated at 3 sites (growing: 1)
  leaking: examples/leaky_server.py:27 handle() grows +2.1 MiB/s, 11.0 MiB alive at exit

  bytes         blocks  site                                       verdict
  11.0 MiB      40,000  examples/leaky_server.py:27 handle()       growing +2.1 MiB/s
                        ← serve()  examples/leaky_server.py:40
                        ← main()  examples/leaky_server.py:52
  512 KiB        8,000  /usr/lib/python3.12/functools.py:10 get()  plateau
                        ← main()  examples/leaky_server.py:52
  1000 B             3  <no Python frame>                          stable

  tracked heap: peak 14.0 MiB at 9.8 s, 12.0 MiB at exit
  verdicts: each site's live bytes followed from its first allocation to the end, in 10 windows
";
        assert_eq!(text, expected, "{text}");
    }

    #[test]
    fn leaks_table_folds_the_sites_past_top() {
        let text = leaks_text_in(&report(), 1, base(), None);
        assert!(
            text.contains("  … 2 more sites hold 513 KiB in 8,003 blocks (--top 3 shows them all)"),
            "{text}"
        );
        assert!(!text.contains("get()"), "{text}");
    }

    #[test]
    fn nothing_left_is_said_plainly() {
        let mut r = report();
        r.leaks = Breakdown::default();
        r.growing = 0;
        let text = leaks_text_in(&r, 10, base(), None);
        assert!(text.contains("Leaks: nothing allocated while tracking is still alive at exit"));
        assert!(!text.contains("bytes         blocks"), "{text}");
    }

    #[test]
    fn no_growing_site_is_said_plainly() {
        let mut r = report();
        r.leaks.sites[0].verdict = Some(verdict(VerdictKind::Plateau, 0.0));
        r.growing = 0;
        let text = leaks_headline_in(&r, base(), None);
        assert!(text.contains("(growing: 0)"), "{text}");
        assert!(text.contains("no site grew steadily"), "{text}");
        // when every verdict is inconclusive the column goes away
        for s in &mut r.leaks.sites {
            s.verdict = Some(verdict(VerdictKind::Inconclusive, 0.0));
        }
        let text = leaks_text_in(&r, 10, base(), None);
        assert!(text.contains("\n  bytes         blocks  site\n"), "{text}");
        assert!(!text.contains("stable"), "{text}");
        assert!(
            text.contains("too short a time to tell leaks from caches"),
            "{text}"
        );
    }

    #[test]
    fn caveats_say_how_far_to_trust_the_figures() {
        let mut r = report();
        r.capture.sample_bytes = 512 * 1024;
        r.capture.end.cut_short = true;
        r.capture.end.dropped = 1234;
        let text = leaks_text_in(&r, 10, base(), None);
        assert!(
            text.contains("allocations were sampled (one per 512 KiB"),
            "{text}"
        );
        assert!(
            text.contains("the capture was cut short (no trailer)"),
            "{text}"
        );
        assert!(
            text.contains("1,234 events could not be recorded"),
            "{text}"
        );
        assert!(
            text.contains("still alive at the end of the capture"),
            "{text}"
        );
        r.capture.end.damage = Some("capture is truncated at byte 999: x".into());
        r.capture.last_event_ns = 3_500_000_000;
        let text = leaks_text_in(&r, 10, base(), None);
        assert!(
            text.contains(
                "warning: the capture is damaged: capture is truncated at byte 999: x; the report \
                 covers what was read before it (its data ends at 3.5 s)"
            ),
            "{text}"
        );
        r.at_end = false;
        r.at_ns = 2_000_000_000;
        assert!(leaks_headline_in(&r, base(), None).contains("still alive at 2.0 s"));
    }

    #[test]
    fn leaks_json_has_sites_verdicts_and_stacks() {
        let json: serde_json::Value =
            serde_json::from_str(&leaks_json(&report(), 2)).expect("valid JSON");
        assert_eq!(json["bytes"], 11 * MIB + MIB / 2 + 1000);
        assert_eq!(json["site_count"], 3);
        assert_eq!(json["growing"], 1);
        assert_eq!(json["sampled"], false);
        let sites = json["sites"].as_array().expect("sites");
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0]["function"], "handle");
        assert_eq!(sites[0]["file"], "/home/u/proj/examples/leaky_server.py");
        assert_eq!(sites[0]["verdict"]["kind"], "growing");
        let frames = sites[0]["top_stacks"][0]["frames"]
            .as_array()
            .expect("frames");
        let names: Vec<&str> = frames
            .iter()
            .map(|f| f["function"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["main", "serve", "handle"]);
        assert_eq!(sites[0]["series"][1][1], 11 * MIB);
        assert!(json["headline"]
            .as_str()
            .expect("headline")
            .starts_with("Leaks: 11.5 MiB"));
        let all: serde_json::Value =
            serde_json::from_str(&leaks_json(&report(), 0)).expect("valid JSON");
        assert_eq!(all["sites"].as_array().map(Vec::len), Some(3));
        let summary = leaks_summary_value(&report());
        assert_eq!(summary["leaking"][0]["function"], "handle");
        assert_eq!(summary["growing"], 1);
    }

    #[test]
    fn long_paths_lose_directories_not_names() {
        let l = loc(
            "EnumType._convert_",
            "/root/.pyenv/versions/3.11.7/lib/python3.11/enum.py",
            922,
        );
        assert_eq!(
            site_label(&l, None, 45),
            "…/python3.11/enum.py:922 EnumType._convert_()"
        );
        assert_eq!(
            site_label(&l, None, 10),
            "…/enum.py:922 EnumType._convert_()"
        );
        assert_eq!(
            site_label(&l, None, 200),
            "/root/.pyenv/versions/3.11.7/lib/python3.11/enum.py:922 EnumType._convert_()"
        );
        let frozen = loc(
            "_compile_bytecode",
            "<frozen importlib._bootstrap_external>",
            729,
        );
        assert_eq!(
            site_label(&frozen, None, 10),
            "<frozen importlib._bootstrap_external>:729 _compile_bytecode()"
        );
        assert_eq!(
            location_label(&loc("<module>", "app.py", 0), None),
            "app.py <module>"
        );
        assert_eq!(display_path("/home/u/proj/a/b.py", base()), "a/b.py");
        assert_eq!(
            display_path("/home/u/projx/b.py", base()),
            "/home/u/projx/b.py"
        );
        assert_eq!(display_path("/home/u/proj", base()), "/home/u/proj");
    }

    fn table() -> AllocTable {
        let locations = vec![
            loc("_run_module_as_main", "<frozen runpy>", 198),
            loc("_run_code", "<frozen runpy>", 88),
            loc("main", "/home/u/proj/app.py", 10),
            loc("f", "/home/u/proj/app.py", 20),
            loc("g", "/home/u/proj/app.py", 30),
            loc("tiny", "/home/u/proj/app.py", 40),
        ];
        let node = |location: Option<u32>,
                    parent: Option<usize>,
                    depth: u32,
                    children: Vec<usize>,
                    b: u64,
                    alive: u64| TreeNode {
            location,
            parent,
            depth,
            children,
            allocated_bytes: b,
            allocated_blocks: b / 100,
            alive_bytes: alive,
            alive_blocks: alive / 100,
            self_bytes: 0,
        };
        let nodes = vec![
            node(None, None, 0, vec![1], 100_000, 30_000),
            node(Some(0), Some(0), 1, vec![2], 100_000, 30_000),
            node(Some(1), Some(1), 2, vec![3], 100_000, 30_000),
            node(Some(2), Some(2), 3, vec![4, 5, 6], 100_000, 30_000),
            node(Some(3), Some(3), 4, vec![], 70_000, 30_000),
            node(Some(4), Some(3), 4, vec![], 29_900, 0),
            node(Some(5), Some(3), 4, vec![], 100, 0),
        ];
        let row = |l: &Location, a: u64, f: u64| TableRow {
            location: l.clone(),
            allocated_bytes: a,
            allocated_blocks: a / 100,
            freed_bytes: f,
            freed_blocks: f / 100,
            alive_bytes: a - f,
            alive_blocks: (a - f) / 100,
            stacks: 1,
        };
        AllocTable {
            capture: capture(),
            totals: row(&loc("<all>", "", 0), 100_000, 70_000),
            rows: vec![
                row(&locations[3], 70_000, 40_000),
                row(&locations[4], 29_900, 29_900),
                row(&locations[5], 100, 100),
            ],
            locations,
            stacks: vec![],
            tree: memsleuth_analysis::allocs::CallTree { nodes },
            heap: HeapInfo::default(),
            rss: vec![],
            bin_ns: 0,
            bins: 0,
        }
    }

    #[test]
    fn tree_folds_the_trunk_and_small_calls() {
        let text = tree_text_in(&table(), 0, base());
        let body: Vec<&str> = text.lines().skip(4).collect();
        assert_eq!(
            body,
            [
                "  100.0%    97.7 KiB    29.3 KiB  _run_module_as_main()  <frozen runpy>:198 → … 1 call → main()  app.py:10",
                "   70.0%    68.4 KiB    29.3 KiB  ├─ f()  app.py:20",
                "   29.9%    29.2 KiB         0 B  ├─ g()  app.py:30",
                "    0.1%       100 B         0 B  └─ … 1 smaller call under 0.5% each",
            ],
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&tree_json(&table(), 2)).expect("valid JSON");
        assert_eq!(json["tree"]["allocated_bytes"], 100_000);
        let child = &json["tree"]["children"][0];
        assert_eq!(child["location"]["function"], "_run_module_as_main");
        assert_eq!(
            child["children"][0]["children"].as_array().map(Vec::len),
            Some(0)
        );
    }

    #[test]
    fn table_lists_allocated_freed_and_alive() {
        let text = table_text_in(&table(), 2, base());
        assert!(text.contains(
            "Allocated while tracking: 97.7 KiB in 1,000 blocks at 3 sites; 29.3 KiB in 300 blocks still alive at the end"
        ), "{text}");
        assert!(
            text.contains(
                "    68.4 KiB         700    39.1 KiB    29.3 KiB       300  app.py:20 f()"
            ),
            "{text}"
        );
        assert!(
            text.contains("… 1 more site allocated 100 B (--top 3 shows them all)"),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&table_json(&table(), 1)).expect("valid JSON");
        assert_eq!(json["sites"].as_array().map(Vec::len), Some(1));
        assert_eq!(json["totals"]["alive_bytes"], 30_000);
    }

    #[test]
    fn diff_lists_growth_first() {
        let row = |f: &str, a: u64, b: u64| DiffRow {
            location: loc(f, "/home/u/proj/app.py", 1),
            bytes_a: a,
            blocks_a: a / 10,
            bytes_b: b,
            blocks_b: b / 10,
            delta_bytes: b as i64 - a as i64,
            delta_blocks: (b / 10) as i64 - (a / 10) as i64,
        };
        let d = DiffReport {
            a: capture(),
            b: capture(),
            bytes_a: 3 * MIB,
            blocks_a: 10,
            bytes_b: 5 * MIB,
            blocks_b: 20,
            growth_bytes: 2 * MIB as i64,
            rows: vec![
                row("x", MIB, 3 * MIB),
                row("y", 0, MIB),
                row("z", 2 * MIB, MIB),
            ],
        };
        let text = diff_text_in(&d, 10, "a.msl", "b.msl", base());
        assert!(
            text.starts_with("memsleuth diff · A = a.msl · B = b.msl\n"),
            "{text}"
        );
        assert!(
            text.contains("Leaked at the end: 3.0 MiB in A, 5.0 MiB in B (+2.0 MiB)"),
            "{text}"
        );
        assert!(text.contains("  2 sites leak more in B"), "{text}");
        assert!(
            text.contains("     +2.0 MiB     1.0 MiB     3.0 MiB  app.py:1 x()"),
            "{text}"
        );
        assert!(
            text.contains("  1 site leaks less in B (-1.0 MiB)"),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&diff_json(&d, 0, "a.msl", "b.msl")).expect("valid JSON");
        assert_eq!(json["growth_bytes"], 2 * MIB);
        assert_eq!(json["sites"][0]["location"]["function"], "x");
    }

    #[test]
    fn peak_text_names_the_moment() {
        let r = report();
        let p = PeakReport {
            capture: capture(),
            peak_bytes: 14 * MIB,
            peak_blocks: 50_000,
            peak_at_ns: 9_800_000_000,
            alive: r.leaks.clone(),
            heap: r.heap.clone(),
            rss: vec![],
        };
        let text = peak_text_in(&p, 10, base());
        assert!(text.contains(
            "Peak: 14.0 MiB in 50,000 blocks alive at 9.8 s (tracked heap's high-water mark), allocated at 3 sites"
        ), "{text}");
        assert!(
            text.contains("  11.0 MiB      40,000  examples/leaky_server.py:27 handle()\n"),
            "{text}"
        );
        assert!(!text.contains("verdict"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&peak_json(&p, 10)).expect("valid JSON");
        assert_eq!(json["peak_bytes"], 14 * MIB);
        assert!((json["peak_at"].as_f64().expect("t") - 9.8).abs() < 1e-9);
    }
}
