//! How a capture ended, in the words every report uses. A capture is one of three things:
//!
//! - complete: it has its trailer and read without error;
//! - cut short: it ends cleanly after a chunk but has no trailer, because its recorder was
//!   killed or crashed (a `kill -9`, an OOM kill); everything flushed is sound, so reports only
//!   warn;
//! - damaged: reading broke at a byte (truncated inside a chunk, corrupt, or data after its
//!   end); reports show what was read before it, say where it broke, and fail.
//!
//! Text, HTML, SVG and the command's own warning and error lines all take their phrases from
//! here, so a capture is described the same way whichever report reads it.

use memsleuth_analysis::{EndCause, EndInfo, Exit};

use crate::html::esc;

/// How a capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    Complete,
    CutShort,
    /// The reader's description of the damage, which names the byte.
    Damaged(&'a str),
}

/// What a report looked for and did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Samples,
    Allocations,
    Census,
    Pymalloc,
    Gc,
}

impl Missing {
    fn noun(self) -> &'static str {
        match self {
            Missing::Samples => "memory samples",
            Missing::Allocations => "allocation events",
            Missing::Census => "object censuses",
            Missing::Pymalloc => "pymalloc snapshots",
            Missing::Gc => "gc collections or censuses",
        }
    }
}

/// After the damage's own words, which say where it is.
const DAMAGED_COVERS: &str = "the report covers what was read before it";
const CUT_SHORT: &str = "cut short (no trailer): its recorder was killed or crashed before \
                         finishing";
const CUT_SHORT_COVERS: &str = "the report covers everything up to its last flush";

impl<'a> Ending<'a> {
    pub fn of(end: &'a EndInfo) -> Ending<'a> {
        match &end.damage {
            Some(d) => Ending::Damaged(d),
            None if end.cut_short => Ending::CutShort,
            None => Ending::Complete,
        }
    }

    /// One word for tables and the capture line: `complete`, `cut short`, `damaged`.
    pub fn word(self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::CutShort => "cut short",
            Ending::Damaged(_) => "damaged",
        }
    }

    /// True when a command should fail after its report.
    pub fn failed(self) -> bool {
        matches!(self, Ending::Damaged(_))
    }

    /// The sentence under a report's figures; `None` for a complete capture.
    pub fn sentence(self) -> Option<String> {
        match self {
            Ending::Complete => None,
            Ending::CutShort => Some(format!("the capture was {CUT_SHORT}; {CUT_SHORT_COVERS}")),
            Ending::Damaged(d) => Some(format!("the capture is damaged: {d}; {DAMAGED_COVERS}")),
        }
    }

    /// The sentence as a caveat line of a text report: `warning: the capture was cut short...`.
    pub fn warning(self) -> Option<String> {
        self.sentence().map(|s| format!("warning: {s}"))
    }
}

/// The caveat line of a text report about how its capture ended; `None` when complete.
pub fn warning(end: &EndInfo) -> Option<String> {
    Ending::of(end).warning()
}

/// What a command prints on stderr after its report: a warning for a capture cut short, an
/// error for a damaged one (and the command then fails: see [`Ending::failed`]). `path` names
/// the capture as the user gave it.
pub fn stderr_line(path: &str, end: &EndInfo) -> Option<String> {
    match Ending::of(end) {
        Ending::Complete => None,
        Ending::CutShort => Some(format!(
            "memsleuth: warning: {path} was {CUT_SHORT}; {CUT_SHORT_COVERS}\n"
        )),
        Ending::Damaged(d) => Some(format!(
            "memsleuth: error: {path} is damaged: {d}; {DAMAGED_COVERS}\n"
        )),
    }
}

/// Why a report found nothing to report, when the capture did not end properly: a damaged
/// capture lost whatever came after the damage, so the damage is the reason, not how it was
/// recorded (`original`, the analysis' own reason, is then left out). A capture cut short may
/// have been killed before anything reached the file, or recorded without the instrument, so
/// both are said. `None` for a complete capture: `original` stands.
pub fn nothing_read(what: Missing, end: &EndInfo, original: &str) -> Option<String> {
    let noun = what.noun();
    match Ending::of(end) {
        Ending::Complete => None,
        Ending::Damaged(d) => Some(format!(
            "the capture is damaged before any {noun} could be read: {d}"
        )),
        Ending::CutShort => Some(format!(
            "{original}; the capture was {CUT_SHORT}, so any {noun} may not have reached the file"
        )),
    }
}

/// A warning paragraph for the top of an HTML page; empty for a complete capture.
pub fn html_banner(end: &EndInfo) -> String {
    let (title, text) = match Ending::of(end) {
        Ending::Complete => return String::new(),
        Ending::CutShort => (
            "Capture cut short",
            format!("{CUT_SHORT}; {CUT_SHORT_COVERS}."),
        ),
        Ending::Damaged(d) => ("Capture damaged", format!("{d}; {DAMAGED_COVERS}.")),
    };
    format!(
        "<p class=\"warning\" role=\"alert\"><strong>{title}</strong>: {}</p>\n",
        esc(&text)
    )
}

/// Why the capture ended, in a few words: `target exited`, `interrupted`, `cut short`.
pub fn reason_words(end: &EndInfo) -> &'static str {
    match end.reason {
        None => "cut short",
        Some(EndCause::TargetExited) => "target exited",
        Some(EndCause::Interrupted) => "interrupted",
        Some(EndCause::Duration) => "duration reached",
        Some(EndCause::Stopped) => "stopped",
        Some(EndCause::Unknown) => "unknown",
    }
}

/// How a process exited: `exit code 1`, `killed by signal 9 (SIGKILL)`; `None` when unknown.
pub fn exit_words(status: Exit) -> Option<String> {
    match status {
        Exit::Unknown => None,
        Exit::Code(c) => Some(format!("exit code {c}")),
        Exit::Signal(s) => {
            let name = match s {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            Some(format!("killed by signal {s}{name}"))
        }
    }
}

/// How the capture ended with how its target exited: `target exited (exit code 0)`.
pub fn ended(end: &EndInfo) -> String {
    match exit_words(end.target_exit) {
        Some(exit) => format!("{} ({exit})", reason_words(end)),
        None => reason_words(end).to_string(),
    }
}

/// A few words for a picture's subtitle (`capture cut short`); `None` when complete.
pub fn short(end: &EndInfo) -> Option<String> {
    match Ending::of(end) {
        Ending::Complete => None,
        e => Some(format!("capture {}", e.word())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(cut_short: bool, damage: Option<&str>) -> EndInfo {
        EndInfo {
            cut_short,
            damage: damage.map(str::to_string),
            ..EndInfo::default()
        }
    }

    #[test]
    fn three_endings_three_words() {
        let complete = end(false, None);
        let cut = end(true, None);
        let damaged = end(true, Some("capture is truncated at byte 99: x"));
        assert_eq!(Ending::of(&complete).word(), "complete");
        assert_eq!(Ending::of(&cut).word(), "cut short");
        assert_eq!(Ending::of(&damaged).word(), "damaged");
        assert!(warning(&complete).is_none() && html_banner(&complete).is_empty());
        assert!(stderr_line("a.msl", &complete).is_none());
        assert!(warning(&cut)
            .unwrap()
            .starts_with("warning: the capture was cut short"));
        assert!(warning(&damaged)
            .unwrap()
            .starts_with("warning: the capture is damaged: capture is truncated at byte 99"));
        assert!(stderr_line("a.msl", &cut)
            .unwrap()
            .starts_with("memsleuth: warning: a.msl was cut short (no trailer)"));
        let line = stderr_line("a.msl", &damaged).unwrap();
        assert!(
            line.starts_with("memsleuth: error: a.msl is damaged: capture is truncated at byte 99")
        );
        assert_eq!(line.lines().count(), 1);
        assert!(html_banner(&cut).contains("<strong>Capture cut short</strong>"));
        assert!(html_banner(&damaged).contains("<strong>Capture damaged</strong>"));
        assert!(Ending::of(&damaged).failed() && !Ending::of(&cut).failed());
    }

    #[test]
    fn nothing_read_blames_the_damage_not_the_recording() {
        let original = "capture holds no object census (recorded without the objects instrument)";
        let damaged = end(true, Some("capture is truncated at byte 70: x"));
        let said = nothing_read(Missing::Census, &damaged, original).unwrap();
        assert!(
            said.contains("damaged") && said.contains("byte 70"),
            "{said}"
        );
        assert!(!said.contains("without the objects instrument"), "{said}");
        let cut = nothing_read(Missing::Census, &end(true, None), original).unwrap();
        assert!(
            cut.starts_with(original) && cut.contains("cut short"),
            "{cut}"
        );
        assert!(nothing_read(Missing::Census, &end(false, None), original).is_none());
    }

    #[test]
    fn endings_and_exits_in_words_and_json_kinds() {
        let exited = EndInfo {
            reason: Some(EndCause::TargetExited),
            target_exit: Exit::Code(0),
            ..EndInfo::default()
        };
        assert_eq!(ended(&exited), "target exited (exit code 0)");
        let killed = EndInfo {
            reason: None,
            cut_short: true,
            target_exit: Exit::Signal(9),
            ..EndInfo::default()
        };
        assert_eq!(ended(&killed), "cut short (killed by signal 9 (SIGKILL))");
        let stopped = EndInfo {
            reason: Some(EndCause::Stopped),
            ..EndInfo::default()
        };
        assert_eq!(ended(&stopped), "stopped");
        assert_eq!(exit_words(Exit::Signal(42)).unwrap(), "killed by signal 42");
        // the JSON carries kinds, not these words
        let json = serde_json::to_value(&killed).unwrap();
        assert_eq!(json["reason"], "cut_short");
        assert_eq!(json["target_exit"], serde_json::json!({"signal": 9}));
        let json = serde_json::to_value(&stopped).unwrap();
        assert_eq!(json["reason"], "stopped");
        assert!(json["target_exit"].is_null());
    }
}
