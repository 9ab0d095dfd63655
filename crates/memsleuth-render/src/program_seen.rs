//! `memsleuth instruments -- script.py`: what each instrument saw of one program, and what each
//! run cost it, as the user would type the commands.

use std::path::Path;

use memsleuth_analysis::trend::Verdict;
use memsleuth_analysis::verdict::{Finding, State};
use serde::Serialize;

use crate::allocs::holder_line;
use crate::escape::printable;
use crate::instruments::{columns, Instrument};
use crate::trend_words::{count_sentence, verdict_sentence};
use crate::units::{bytes, count, seconds, signed_bytes};
use crate::verdict::{finding_short, state_word};

/// One run of the program.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramRun {
    /// What the run measures: "untracked", or the instruments it runs.
    pub label: String,
    /// The command as the user would type it.
    pub command: Vec<String>,
    pub seconds: f64,
    /// The program's own peak memory (its process' high-water mark), bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_bytes: Option<u64>,
    /// How the run ended: its exit code, or the signal that ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// `--duration` ended it (interrupted as Ctrl-C would): its time is the duration's.
    pub stopped: bool,
}

/// One growing type, from the censuses.
#[derive(Debug, Clone, Serialize)]
pub struct TypeSeen {
    pub name: String,
    pub delta_count: i64,
}

/// What one instrument saw: numbers and kinds; the words are [`program_text`]'s.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Seen {
    /// The RSS trend of the program's process.
    Rss {
        verdict: Verdict,
        /// RSS at the last sample, and the largest seen, bytes.
        last: u64,
        peak: u64,
    },
    /// pymalloc's allocated blocks and arenas, first snapshot to last.
    Pymalloc {
        #[serde(skip_serializing_if = "Option::is_none")]
        trend: Option<Verdict>,
        blocks_from: u64,
        blocks_to: u64,
        arenas_from: u64,
        arenas_to: u64,
        snapshots: usize,
    },
    /// Types whose instance counts keep growing across the censuses, fastest first.
    Objects {
        growing: Vec<TypeSeen>,
        censuses: usize,
    },
    /// The one verdict on the run's capture: in JSON, as `report verdict --json` gives it
    /// (docs/verdict.md).
    Verdict {
        #[serde(skip)]
        state: State,
        #[serde(skip)]
        findings: usize,
        #[serde(skip)]
        first: Option<Box<Finding>>,
        #[serde(skip)]
        needs_seconds: Option<f64>,
        report: serde_json::Value,
    },
    /// The instrument's run did not give an answer: the reason, in memsleuth's words.
    Failed { why: String },
    /// Not run for this program: why, and what to type instead.
    NotRun { why: String, how: String },
}

/// One instrument's row: the run it was seen in (an index into `runs`), and what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct SeenRow {
    pub instrument: Instrument,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    pub seen: Seen,
}

/// Everything `memsleuth instruments -- script.py` measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramSeen {
    pub python: String,
    /// The program as given: script (or `-m module`) and its arguments.
    pub program: Vec<String>,
    /// Runs of the program; the first is untracked.
    pub runs: Vec<ProgramRun>,
    pub rows: Vec<SeenRow>,
    /// The directory the captures were kept in, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// Types listed for the objects instrument.
const TYPES_SHOWN: usize = 3;

pub fn program_text(p: &ProgramSeen, base: Option<&Path>) -> String {
    let mut out = format!(
        "memsleuth instruments · what each instrument sees of `{}` · Python {}\n\n",
        printable(&p.program.join(" ")),
        p.python
    );
    out.push_str("Runs, as typed (the program's own output is not shown):\n");
    let untracked = p.runs.first();
    let rows: Vec<[String; 4]> = p
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let time = match untracked {
                _ if r.stopped => format!("stopped after {}", seconds(r.seconds)),
                Some(u) if i > 0 && u.seconds > 0.0 => {
                    format!("{:.2}x ({})", r.seconds / u.seconds, seconds(r.seconds))
                }
                _ => seconds(r.seconds),
            };
            let memory = match (r.peak_bytes, untracked.and_then(|u| u.peak_bytes)) {
                (Some(b), _) if i == 0 => format!("peak {}", bytes(b as f64)),
                (Some(b), Some(u)) => signed_bytes(b as f64 - u as f64),
                _ => "not measured".into(),
            };
            let label = match (r.exit_code, r.signal) {
                (Some(c), _) if c != 0 && !r.stopped => format!("{} (exit status {c})", r.label),
                (_, Some(s)) if !r.stopped => format!("{} (killed by signal {s})", r.label),
                _ => r.label.clone(),
            };
            [
                label,
                printable(&r.command.join(" ")).into_owned(),
                time,
                memory,
            ]
        })
        .collect();
    out.push_str(&columns(rows.iter()));
    out.push_str("\nWhat each instrument saw:\n");
    let name_width = p
        .rows
        .iter()
        .map(|r| r.instrument.name().chars().count())
        .max()
        .unwrap_or(0);
    for row in &p.rows {
        let lines = seen_lines(&row.seen, base);
        let pad = " ".repeat(name_width - row.instrument.name().chars().count());
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("  {}{pad}  {line}\n", row.instrument.name()));
            } else {
                out.push_str(&format!("  {}  {line}\n", " ".repeat(name_width)));
            }
        }
    }
    out.push_str(
        "\n  time: each run's whole command over the untracked run's, start to exit (memsleuth's\n  \
         report at exit included); memory: the program's peak over its peak untracked.\n",
    );
    if p.runs.iter().any(|r| r.stopped) {
        out.push_str(
            "  --duration stopped the runs: their times are the duration's, not the program's.\n",
        );
    }
    match &p.kept {
        Some(dir) => out.push_str(&format!(
            "  the captures are in {}: `memsleuth report verdict FILE` shows each in full.\n",
            printable(dir)
        )),
        None => out.push_str(
            "  `memsleuth run` shows the verdict in full (--keep DIR keeps these runs' captures).\n",
        ),
    }
    out
}

pub fn program_json(p: &ProgramSeen) -> String {
    serde_json::to_string_pretty(p).unwrap_or_default()
}

/// What one instrument saw, in one line or a few.
fn seen_lines(seen: &Seen, base: Option<&Path>) -> Vec<String> {
    match seen {
        Seen::Rss {
            verdict,
            last,
            peak,
        } => {
            let most = if peak > last {
                format!(", {} at most", bytes(*peak as f64))
            } else {
                String::new()
            };
            vec![format!(
                "RSS {}: {}; {} at the end{most}",
                verdict.kind.as_str(),
                verdict_sentence(verdict),
                bytes(*last as f64),
            )]
        }
        Seen::Pymalloc {
            trend,
            blocks_from,
            blocks_to,
            arenas_from,
            arenas_to,
            snapshots,
        } => {
            let shape = match trend {
                Some(v) => count_sentence(v, "blocks", "snapshots"),
                None if *snapshots == 1 => "(1 snapshot, too few for a trend)".to_string(),
                None => format!("({snapshots} snapshots, too few for a trend)"),
            };
            vec![format!(
                "allocated blocks {shape}; {} → {} blocks, {} → {} arenas",
                count(*blocks_from),
                count(*blocks_to),
                count(*arenas_from),
                count(*arenas_to)
            )]
        }
        Seen::Objects { growing, censuses } => {
            if growing.is_empty() {
                return vec![format!(
                    "no type keeps growing over {}",
                    censuses_word(*censuses)
                )];
            }
            let shown: Vec<String> = growing
                .iter()
                .take(TYPES_SHOWN)
                .map(|t| format!("{} {:+}", printable(&t.name), t.delta_count))
                .collect();
            let more = growing.len().saturating_sub(TYPES_SHOWN);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            vec![format!(
                "{} growing over {}: {}{tail}",
                if growing.len() == 1 {
                    "1 type".to_string()
                } else {
                    format!("{} types", growing.len())
                },
                censuses_word(*censuses),
                shown.join(", ")
            )]
        }
        Seen::Verdict {
            state,
            findings,
            first,
            needs_seconds,
            ..
        } => {
            let mut lines = Vec::new();
            match (state, first) {
                (State::Leaking, Some(f)) => {
                    let others = if *findings > 1 {
                        format!(" (+{} more findings)", findings - 1)
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "{}: {}{others}",
                        state_word(*state),
                        finding_short(f, base)
                    ));
                    if let Some(h) = &f.holder {
                        lines.push(holder_line(h, base));
                    }
                }
                (State::Inconclusive, _) => lines.push(format!(
                    "inconclusive: too short to tell; a run of at least {} would decide",
                    seconds(needs_seconds.unwrap_or(2.0))
                )),
                _ => lines.push(state_word(*state).to_string()),
            }
            lines
        }
        Seen::Failed { why } => vec![format!("no answer: {}", printable(why))],
        Seen::NotRun { why, how } => vec![format!("not run ({why}): {how}")],
    }
}

fn censuses_word(n: usize) -> String {
    if n == 1 {
        "1 census".into()
    } else {
        format!("{n} censuses")
    }
}
