//! `memsleuth instruments`: the design map's table of instruments (availability, memory and
//! execution granularity, memory, execution and developer cost), with the costs the command
//! measured on this machine and this Python.

use serde::Serialize;

use crate::units::{bytes, signed_bytes};

/// The instruments, in the order a leak hunt reaches for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    Rss,
    Pymalloc,
    Objects,
    Python,
    PythonSampled,
    Native,
    Hunt,
    Attach,
}

impl Instrument {
    pub const ALL: [Instrument; 8] = [
        Instrument::Rss,
        Instrument::Pymalloc,
        Instrument::Objects,
        Instrument::Python,
        Instrument::PythonSampled,
        Instrument::Native,
        Instrument::Hunt,
        Instrument::Attach,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Instrument::Rss => "rss",
            Instrument::Pymalloc => "pymalloc",
            Instrument::Objects => "objects",
            Instrument::Python => "python",
            Instrument::PythonSampled => "python, sampled",
            Instrument::Native => "native",
            Instrument::Hunt => "hunt",
            Instrument::Attach => "attach",
        }
    }

    /// Memory granularity: what it sees.
    fn sees(self) -> &'static str {
        match self {
            Instrument::Rss => "RSS, USS/PSS, swap of a process tree",
            Instrument::Pymalloc => "pymalloc arenas, pools, blocks per size class",
            Instrument::Objects => "live objects by type; who holds them",
            Instrument::Python => "every Python allocation, with its stack",
            Instrument::PythonSampled => "a sample by bytes of Python allocations",
            Instrument::Native => "malloc/mmap of C code, with C and Python stacks",
            Instrument::Hunt => "growth per call of one function (refs, blocks, RSS)",
            Instrument::Attach => "python, objects (and native) in a running process",
        }
    }

    /// Execution granularity: when it looks.
    fn when(self) -> &'static str {
        match self {
            Instrument::Rss => "every 100 ms (--interval)",
            Instrument::Pymalloc => "a snapshot per call",
            Instrument::Objects => "a census every second (--census)",
            Instrument::Python | Instrument::Native => "every allocation and free",
            Instrument::PythonSampled => "one per 512 KiB on average",
            Instrument::Hunt => "around each call",
            Instrument::Attach => "from attach to detach",
        }
    }

    /// Developer cost: what to type.
    fn how(self) -> &'static str {
        match self {
            Instrument::Rss => "memsleuth watch -- python app.py",
            Instrument::Pymalloc => "memsleuth.pymalloc()",
            Instrument::Objects => "memsleuth run app.py (on by default)",
            Instrument::Python => "memsleuth run --census 0 app.py",
            Instrument::PythonSampled => "memsleuth run --sample 512KiB app.py",
            Instrument::Native => "memsleuth run --native app.py",
            Instrument::Hunt => "memsleuth hunt app.py::handle",
            Instrument::Attach => "memsleuth attach PID",
        }
    }
}

/// Whether an instrument works here, and if not, why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "why")]
pub enum Availability {
    Yes,
    /// Works, with a condition the user must meet.
    With(String),
    No(String),
}

/// One instrument's row: what it costs on a standard workload, when measured.
#[derive(Debug, Clone, Serialize)]
pub struct InstrumentCost {
    pub instrument: Instrument,
    pub available: Availability,
    /// The workload's own time under the instrument / untracked.
    pub time_ratio: Option<f64>,
    /// Peak memory of the workload's process over untracked, bytes (negative: noise).
    pub extra_bytes: Option<i64>,
}

/// What was measured, and how.
#[derive(Debug, Clone, Serialize)]
pub struct InstrumentsTable {
    pub python: String,
    /// The workload's own time untracked, seconds, and its peak memory, bytes.
    pub untracked_seconds: f64,
    pub untracked_peak: u64,
    pub reps: usize,
    pub rows: Vec<InstrumentCost>,
}

pub fn instruments_text(t: &InstrumentsTable) -> String {
    let mut out = format!(
        "memsleuth instruments · Python {} · costs measured here on a standard workload \
         ({:.2} s and {} untracked; median of {} runs)\n\n",
        t.python,
        t.untracked_seconds,
        bytes(t.untracked_peak as f64),
        t.reps
    );
    let rows: Vec<[String; 7]> = t
        .rows
        .iter()
        .map(|r| {
            [
                r.instrument.name().to_string(),
                match &r.available {
                    Availability::Yes => "yes".into(),
                    Availability::With(why) => format!("yes, {why}"),
                    Availability::No(why) => format!("no: {why}"),
                },
                r.instrument.sees().to_string(),
                r.instrument.when().to_string(),
                r.extra_bytes
                    .map_or_else(|| "not measured".into(), |b| signed_bytes(b as f64)),
                r.time_ratio
                    .map_or_else(|| "not measured".into(), |x| format!("{x:.2}x")),
                r.instrument.how().to_string(),
            ]
        })
        .collect();
    let header = [
        "instrument",
        "available here",
        "sees (memory granularity)",
        "when (execution granularity)",
        "memory cost",
        "time cost",
        "how (developer cost)",
    ];
    let header = header.map(String::from);
    out.push_str(&columns(std::iter::once(&header).chain(&rows)));
    out.push_str(
        "\n  memory cost: the workload's peak memory over its peak untracked (rss samples from\n  \
         another process: the program's own memory is unchanged).\n  \
         time cost: the workload's own time over its time untracked.\n  \
         pymalloc and hunt cost per call, and attach costs what python and objects cost once\n  \
         it is in: they are not measured here.\n",
    );
    out
}

/// Rows of cells as left-aligned columns, a space apart, each line indented by two.
pub(crate) fn columns<'a, const N: usize>(
    rows: impl Iterator<Item = &'a [String; N]> + Clone,
) -> String {
    let mut widths = [0usize; N];
    for r in rows.clone() {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::from(" ");
        for (cell, w) in r.iter().zip(widths) {
            line.push(' ');
            line.push_str(cell);
            line.push_str(&" ".repeat(w - cell.chars().count() + 1));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The interpreter as the tables name it: "3.11", "3.11 (debug build)".
pub fn python_label(major: u8, minor: u8, debug: bool) -> String {
    format!(
        "{major}.{minor}{}",
        if debug { " (debug build)" } else { "" }
    )
}

pub fn instruments_json(t: &InstrumentsTable) -> String {
    serde_json::to_string_pretty(t).unwrap_or_default()
}
