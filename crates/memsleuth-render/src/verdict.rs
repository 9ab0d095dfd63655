//! The one verdict in words: the exit summary of `run`, the head of `report leaks`, and
//! `report verdict` (text and JSON, schema documented in docs/verdict.md).

use std::path::Path;

use memsleuth_analysis::verdict::{Dismissal, Finding, FindingKind, ProgramVerdict, State, Unit};
use serde::Serialize;

use crate::allocs::{holder_line, location_label, path_line};
use crate::escape::printable;
use crate::units::{bytes, count, rate, seconds};

/// Findings listed in full; the rest are counted.
const SHOWN: usize = 5;

/// "leaking", "no leak", "inconclusive": the words of [`State`], also the JSON's.
pub fn state_word(s: State) -> &'static str {
    match s {
        State::Leaking => "leaking",
        State::NoLeak => "no leak",
        State::Inconclusive => "inconclusive",
    }
}

fn kind_word(k: FindingKind) -> &'static str {
    match k {
        FindingKind::Python => "python",
        FindingKind::Types => "types",
        FindingKind::GcCycles => "gc-cycles",
        FindingKind::HeldFromC => "held-from-c",
        FindingKind::Native => "native",
        FindingKind::Fds => "fds",
        FindingKind::Threads => "threads",
    }
}

fn unit_word(u: Unit) -> &'static str {
    match u {
        Unit::Bytes => "B",
        Unit::Objects => "objects",
        Unit::Fds => "fds",
        Unit::Threads => "threads",
    }
}

/// A rate in the finding's unit: "+3.0 MiB/s", "+1,204 objects/s", "+12.5 fds/s".
fn finding_rate(f: &Finding) -> String {
    match f.unit {
        Unit::Bytes => rate(f.rate),
        _ => format!("+{} {}/s", small(f.rate), unit_word(f.unit)),
    }
}

/// A count that may be fractional per second: one decimal below 100.
fn small(v: f64) -> String {
    if v.abs() < 100.0 {
        format!("{v:.1}")
    } else {
        count(v.round().max(0.0) as u64)
    }
}

fn amount(f: &Finding, v: f64) -> String {
    match f.unit {
        Unit::Bytes => bytes(v),
        _ => format!("{} {}", count(v.round().max(0.0) as u64), unit_word(f.unit)),
    }
}

/// The program's time as the verdict used it.
fn program_time(v: &ProgramVerdict) -> String {
    if v.signals.phases {
        format!("the program's {}", seconds(v.program_seconds))
    } else {
        format!("the run's {}", seconds(v.program_seconds))
    }
}

/// The headline and one block per finding: what grows, how fast, its line, its holder, and
/// the command that shows more. `capture`: the capture's path as the user knows it.
pub fn verdict_lines(v: &ProgramVerdict, capture: &Path, base: Option<&Path>) -> String {
    let mut out = String::new();
    match v.state {
        State::Leaking => {
            out.push_str(&format!(
                "Verdict: leaking — {} over {}\n",
                plural_findings(v.findings.len()),
                program_time(v)
            ));
        }
        State::NoLeak => {
            out.push_str(&format!(
                "Verdict: no leak — nothing kept growing over {} ({})\n",
                program_time(v),
                signals_words(v)
            ));
        }
        State::Inconclusive => {
            let needs = v.needs_seconds.unwrap_or(2.0);
            out.push_str(&format!(
                "Verdict: inconclusive — {} is too short to tell a leak from a cache; a run of \
                 at least {} would decide\n",
                program_time(v),
                seconds(needs)
            ));
        }
    }
    for (i, f) in v.findings.iter().enumerate().take(SHOWN) {
        finding_block(f, i + 1, v, capture, base, &mut out);
    }
    if v.findings.len() > SHOWN {
        out.push_str(&format!(
            "  … and {} more findings (memsleuth report verdict {})\n",
            v.findings.len() - SHOWN,
            capture.display()
        ));
    }
    out
}

fn plural_findings(n: usize) -> String {
    if n == 1 {
        "1 finding".into()
    } else {
        format!("{n} findings")
    }
}

/// The signals the verdict weighed, for the "no leak" line: the reader should know what was
/// looked at before trusting a negative.
fn signals_words(v: &ProgramVerdict) -> String {
    let s = &v.signals;
    let mut words = Vec::new();
    if s.sites && s.native {
        words.push("allocation sites (Python's allocators and the C allocator)");
    } else if s.sites {
        words.push("allocation sites");
    }
    if s.rss {
        words.push("RSS");
    }
    if s.censuses {
        words.push("object censuses");
    }
    if s.fds {
        words.push("file descriptors");
    }
    if s.threads {
        words.push("threads");
    }
    if words.is_empty() {
        return "no signal to weigh".into();
    }
    format!("weighed: {}", words.join(", "))
}

/// `v`: the verdict `f` is part of, for what was recorded (the C allocator too, whether the
/// capture ends with the program or only with the recording).
fn finding_block(
    f: &Finding,
    n: usize,
    v: &ProgramVerdict,
    capture: &Path,
    base: Option<&Path>,
    out: &mut String,
) {
    let native = v.signals.native;
    // a capture with the program's phases is `memsleuth run`'s, which ends with the program;
    // others (a Tracker block, `attach`) end when the recording does, the program going on
    let ended = if v.signals.phases {
        "when the program ended"
    } else {
        "when the recording ended"
    };
    let shown = capture.display();
    // a rate from two points (no trend: p is NaN) has no interval to show
    let ci = if f.p_value.is_nan() {
        "first to last point, too few for an interval".to_string()
    } else {
        format!(
            "95% CI {}–{}/s",
            finding_rate_value(f, f.rate_low),
            finding_rate_value(f, f.rate_high)
        )
    };
    let (head, more) = match f.kind {
        FindingKind::Python | FindingKind::HeldFromC => {
            let at = f
                .location
                .as_ref()
                .map_or_else(|| "an unknown line".into(), |l| location_label(l, base));
            let what = if f.kind == FindingKind::HeldFromC {
                "Python objects held only from C (a reference never released: a missing Py_DECREF?)"
            } else if f.location.as_ref().is_some_and(|l| !l.library.is_empty()) {
                "memory from the C allocator"
            } else if native {
                "memory (from Python's allocators and the C allocator)"
            } else {
                "Python memory"
            };
            let held = if f.released_at_end > 0 {
                "held before its release".to_string()
            } else {
                format!("alive {ended}")
            };
            (
                format!(
                    "{at} keeps {} of {what} ({ci}), {} {held}",
                    finding_rate(f),
                    amount(f, f.alive)
                ),
                format!("memsleuth report leaks {shown}"),
            )
        }
        FindingKind::Types => (
            format!(
                "{} instances keep growing {} ({ci}), {} alive {ended}",
                printable(f.type_name.as_deref().unwrap_or("?")),
                finding_rate(f),
                count(f.alive as u64)
            ),
            format!("memsleuth report growth {shown}"),
        ),
        FindingKind::GcCycles => (
            format!(
                "the gc is disabled and unreachable cycles pile up {} ({ci}), {} waiting",
                finding_rate(f),
                amount(f, f.alive)
            ),
            format!("memsleuth report gc {shown}"),
        ),
        FindingKind::Native if native => (
            format!(
                "RSS grows {} beyond the tracked heap ({ci}): memory neither Python's \
                 allocators nor the C allocator handed out (direct system calls, thread stacks, \
                 a custom allocator)",
                finding_rate(f)
            ),
            format!("memsleuth report timeline {shown}"),
        ),
        FindingKind::Native => (
            format!(
                "RSS grows {} beyond the tracked heap ({ci}): memory allocated outside Python's \
                 allocator (C malloc); `memsleuth run --native` records it at the Python line \
                 that asks for it",
                finding_rate(f)
            ),
            format!("memsleuth report timeline {shown}"),
        ),
        FindingKind::Fds => (
            format!(
                "open file descriptors grow {} ({ci}), {} open {ended}",
                finding_rate(f),
                count(f.alive as u64)
            ),
            format!("memsleuth report timeline {shown}"),
        ),
        FindingKind::Threads => (
            format!(
                "threads grow {} ({ci}), {} running {ended}",
                finding_rate(f),
                count(f.alive as u64)
            ),
            format!("memsleuth report timeline {shown}"),
        ),
    };
    out.push_str(&format!("  {n}. {head}\n"));
    if f.freed_at_shutdown > 0 {
        out.push_str(&format!(
            "     {} of it freed only at shutdown (threads joined, atexit): a leak while the \
             program runs\n",
            bytes(f.freed_at_shutdown as f64)
        ));
    }
    if f.released_at_end > 0 {
        out.push_str(&format!(
            "     {} of it released only as the program's main code ended (a pool shut down, \
             its threads' state with it?): a leak while the program runs\n",
            bytes(f.released_at_end as f64)
        ));
    }
    if let Some(share) = f.share.filter(|s| *s >= 0.01) {
        out.push_str(&format!(
            "     {:.0}% of the tracked heap's growth\n",
            share * 100.0
        ));
    }
    if let Some(h) = &f.holder {
        out.push_str(&format!("     {}\n", holder_line(h, base)));
    }
    out.push_str(&format!("     more: {more}\n"));
}

fn finding_rate_value(f: &Finding, v: f64) -> String {
    match f.unit {
        Unit::Bytes => bytes(v.max(0.0)),
        _ => small(v.max(0.0)),
    }
}

/// `report verdict` for people: the verdict, then why sites that grew were not counted.
pub fn verdict_text(v: &ProgramVerdict, capture: &Path) -> String {
    let base = std::env::current_dir().ok();
    let base = base.as_deref();
    let mut out = verdict_lines(v, capture, base);
    if !v.dismissed.is_empty() {
        out.push_str("\n  not counted (growing, but not enough to matter):\n");
        for d in v.dismissed.iter().take(SHOWN) {
            let why = match d.reason {
                Dismissal::TooSmall => "grew less than 64 KiB over the run".to_string(),
                Dismissal::TooBrief => "allocated over less than 0.4 s: too brief to judge".into(),
                Dismissal::Immaterial => match v.heap_rate.filter(|h| *h > 0.0) {
                    Some(h) => format!(
                        "slower than 256 KiB/s and {:.0}% of the heap's growth",
                        (d.rate / h * 100.0).min(100.0)
                    ),
                    None => "slower than 256 KiB/s, and the heap as a whole did not grow".into(),
                },
            };
            out.push_str(&format!(
                "    {} {} ({why})\n",
                location_label(&d.location, base),
                rate(d.rate)
            ));
        }
    }
    // a "no leak" headline already names what it weighed
    if v.state != State::NoLeak {
        out.push_str(&format!("\n  {}\n", signals_words(v)));
    }
    if !v.signals.end_marked && v.signals.sites {
        out.push_str(
            "  note: this capture does not mark where the program's main code ended (an older \
             memsleuth, or the Python API): trends run to the end of the capture\n",
        );
    }
    out
}

#[derive(Serialize)]
struct VerdictJson<'a> {
    schema: u32,
    verdict: &'static str,
    program_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    needs_seconds: Option<f64>,
    findings: Vec<FindingJson<'a>>,
    dismissed: Vec<DismissedJson<'a>>,
    signals: &'a memsleuth_analysis::verdict::Signals,
}

#[derive(Serialize)]
struct LocationJson<'a> {
    file: &'a str,
    line: u32,
    function: &'a str,
    /// A native frame's object file name (absent for Python frames).
    #[serde(skip_serializing_if = "str::is_empty")]
    library: &'a str,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    kind: &'static str,
    unit: &'static str,
    rate: f64,
    rate_low: f64,
    rate_high: f64,
    p_value: f64,
    growth: f64,
    alive: f64,
    location: Option<LocationJson<'a>>,
    stack: Vec<LocationJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_name: Option<&'a str>,
    holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_root: Option<&'static str>,
    freed_at_shutdown: bool,
    freed_at_shutdown_bytes: u64,
    released_at_end_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    share: Option<f64>,
}

#[derive(Serialize)]
struct DismissedJson<'a> {
    location: LocationJson<'a>,
    rate: f64,
    growth: f64,
    reason: &'static str,
}

fn loc_json(l: &memsleuth_analysis::Location) -> LocationJson<'_> {
    LocationJson {
        file: &l.file,
        line: l.line,
        function: &l.function,
        library: &l.library,
    }
}

/// The word for why a growth was dismissed: in the JSON, and in the leak table's rows.
pub(crate) fn dismissal_word(d: Dismissal) -> &'static str {
    match d {
        Dismissal::TooSmall => "too-small",
        Dismissal::TooBrief => "too-brief",
        Dismissal::Immaterial => "immaterial",
    }
}

/// `report verdict --json`: schema 1 (docs/verdict.md).
pub fn verdict_json(v: &ProgramVerdict) -> String {
    let mut s = serde_json::to_string_pretty(&verdict_value(v)).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// The verdict's JSON model as a value, for documents that carry it (`report summary --json`).
pub fn verdict_value(v: &ProgramVerdict) -> serde_json::Value {
    let model = VerdictJson {
        schema: 1,
        verdict: state_word(v.state),
        program_seconds: v.program_seconds,
        needs_seconds: v.needs_seconds,
        findings: v
            .findings
            .iter()
            .map(|f| FindingJson {
                kind: kind_word(f.kind),
                unit: unit_word(f.unit),
                rate: f.rate,
                rate_low: f.rate_low,
                rate_high: f.rate_high,
                p_value: f.p_value,
                growth: f.growth,
                alive: f.alive,
                location: f.location.as_ref().map(loc_json),
                stack: f.stack.iter().map(loc_json).collect(),
                type_name: f.type_name.as_deref(),
                holder: f.holder.as_ref().map(|h| path_line(h, None)),
                holder_root: f.holder.as_ref().map(|h| h.root_kind.as_str()),
                freed_at_shutdown: f.freed_at_shutdown > 0,
                freed_at_shutdown_bytes: f.freed_at_shutdown,
                released_at_end_bytes: f.released_at_end,
                share: f.share,
            })
            .collect(),
        dismissed: v
            .dismissed
            .iter()
            .map(|d| DismissedJson {
                location: loc_json(&d.location),
                rate: d.rate,
                growth: d.growth,
                reason: dismissal_word(d.reason),
            })
            .collect(),
        signals: &v.signals,
    };
    serde_json::to_value(&model).unwrap_or_default()
}

/// One finding in a few words, for a table cell (`memsleuth instruments -- script.py`): what
/// grows, where, how fast, and the finding's kind.
pub fn finding_short(f: &Finding, base: Option<&Path>) -> String {
    let kind = kind_word(f.kind);
    match f.kind {
        FindingKind::Python | FindingKind::HeldFromC => {
            let at = f
                .location
                .as_ref()
                .map_or_else(|| "an unknown line".into(), |l| location_label(l, base));
            format!("{at} keeps {} ({kind})", finding_rate(f))
        }
        FindingKind::Types => format!(
            "{} instances grow {} ({kind})",
            printable(f.type_name.as_deref().unwrap_or("?")),
            finding_rate(f)
        ),
        FindingKind::GcCycles => format!(
            "unreachable cycles pile up {}, the gc disabled ({kind})",
            finding_rate(f)
        ),
        FindingKind::Native => format!(
            "RSS grows {} beyond the tracked heap ({kind})",
            finding_rate(f)
        ),
        FindingKind::Fds => format!("open file descriptors grow {}", finding_rate(f)),
        FindingKind::Threads => format!("threads grow {}", finding_rate(f)),
    }
}
