//! The `memsleuth` command. Each subcommand is `args + run`; this file parses, dispatches and
//! turns every failure into one `memsleuth: error: ...` line and an exit code.
//!
//! The same entry point serves the standalone binary and `python -m memsleuth` (through the
//! extension), so both behave identically.

use std::ffi::OsString;
use std::io::{ErrorKind, Write};
use std::sync::{Mutex, PoisonError};

use clap::{CommandFactory, Parser, Subcommand};

mod commands;
mod inject;
mod signals;
mod status;

/// Exit code for errors in what the user asked (unknown option, missing argument).
pub const EXIT_USAGE: i32 = 2;
/// Exit code for errors while doing the work (missing file, dead PID, unreadable capture).
pub const EXIT_ERROR: i32 = 1;
/// Exit code of `watch --check` when the verdict is `growing`.
pub const EXIT_GROWING: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "memsleuth",
    version,
    about = "Find memory leaks in Python programs.",
    long_about = "Find memory leaks in Python programs.\n\n\
        Start with `memsleuth watch -- python app.py`: it records the memory of the program and \
        its children over time and says whether it is growing, how fast, and in which process.",
    after_help = "Examples:\n  \
        memsleuth watch -- python app.py            watch a program until it exits\n  \
        memsleuth watch -p 1234 --duration 5m       watch a running process for 5 minutes\n  \
        memsleuth report timeline out.msl -o t.png  plot a capture\n  \
        memsleuth report summary out.msl --json     the verdict, for scripts\n  \
        memsleuth run app.py                        every allocation, then the leak verdict\n  \
        memsleuth attach 1234 --duration 60s        the same, in a running process\n  \
        memsleuth live app.msl                      follow a capture as it is written\n  \
        memsleuth instruments                       what each instrument sees and costs here\n  \
        memsleuth hunt app.py::handle               does calling handle() leak?",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Watch(commands::watch::WatchArgs),
    Run(commands::run::RunArgs),
    Attach(commands::attach::AttachArgs),
    Live(commands::live::LiveArgs),
    Instruments(commands::instruments::InstrumentsArgs),
    Hunt(commands::hunt::HuntArgs),
    Report(commands::report::ReportArgs),
}

/// The first failure to write to stdout (other than a closed pipe) during this command; the
/// command then fails, because a report that did not reach its reader is not a success.
static STDOUT_FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes to stdout. A closed pipe is ignored (`memsleuth ... | head` must not fail); any other
/// failure (a full disk, `> /dev/full`) is remembered and fails the command at its end.
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() != ErrorKind::BrokenPipe {
            let mut failed = STDOUT_FAILED.lock().unwrap_or_else(PoisonError::into_inner);
            failed.get_or_insert(e);
        }
    }
}

/// Writes to stderr, ignoring failures (there is nowhere left to report them).
pub(crate) fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// An I/O error's reason without the "(os error 2)" suffix, for messages people read.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    without_os_error(&e.to_string())
}

/// The longest time any option or Python API interval accepts: one year, as humantime counts it
/// (`1y`, 365.25 days).
/// Longer values are typos, and past this `Instant + Duration` can overflow.
pub const MAX_SECONDS: u64 = 31_557_600;

/// A mistake in what the user asked that only the command itself can see (nothing to run, a
/// contradiction between options). It exits with [`EXIT_USAGE`], like clap's own errors.
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `bail!` for a [`UsageError`].
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

pub use commands::hunt::{HuntOutcome, HuntRequest, HuntRunner};
pub use commands::run::{RunOutcome, RunRequest, Runner};

/// The ways to run Python code that `run` and `hunt` need, and what `attach` loads into a
/// process; the extension provides them.
pub struct Runners<'a> {
    pub run: Runner<'a>,
    pub hunt: HuntRunner<'a>,
    pub agent: Option<Agent>,
}

/// What `memsleuth attach` loads into a process: the extension's file, and the interpreter it
/// was built for (a process running another cannot load it).
#[derive(Debug, Clone)]
pub struct Agent {
    pub library: std::path::PathBuf,
    /// (major, minor)
    pub python: (u8, u8),
    /// Built for a debug interpreter (`sys.abiflags` has `d`).
    pub debug: bool,
    /// This interpreter (`sys.executable`): `run --live` runs the program under it, in a child.
    pub executable: std::path::PathBuf,
}

impl std::fmt::Debug for Runners<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runners").finish_non_exhaustive()
    }
}

/// Runs the command line `args` (program name first) and returns the process exit code.
/// `memsleuth run` and `hunt` are not available this way (they need a Python interpreter to run
/// in); see
/// [`main_with_runner`].
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    main_with_runner(args, None)
}

/// Like [`main_with_args`], with ways to run Python code for `memsleuth run` and `hunt`.
pub fn main_with_runner(args: Vec<OsString>, runners: Option<&Runners<'_>>) -> i32 {
    STDOUT_FAILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    // everything after `run`'s script or `-m MODULE` belongs to the program, options included;
    // clap cannot stop at a positional, so those arguments are set aside before it parses
    let is_run = args.get(1).is_some_and(|a| a == "run");
    let (args, program_args) = if is_run {
        commands::run::split_program_args(args)
    } else {
        (args, Vec::new())
    };
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, &args),
    };
    let result = match cli.command {
        Command::Watch(a) => commands::watch::run(a),
        Command::Run(a) => commands::run::run(
            a,
            program_args,
            runners.map(|r| r.run),
            runners
                .and_then(|r| r.agent.as_ref())
                .map(|a| a.executable.as_path()),
        ),
        Command::Attach(a) => commands::attach::run(a, runners.and_then(|r| r.agent.as_ref())),
        Command::Live(a) => commands::live::run(a),
        Command::Instruments(a) => {
            commands::instruments::run(a, runners.and_then(|r| r.agent.as_ref()))
        }
        Command::Hunt(a) => commands::hunt::run(a, runners.map(|r| r.hunt)),
        Command::Report(a) => commands::report::run(a),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            err(&format!("memsleuth: error: {}\n", error_line(&e)));
            if e.downcast_ref::<UsageError>().is_some() {
                EXIT_USAGE
            } else {
                EXIT_ERROR
            }
        }
    };
    let failed = STDOUT_FAILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match failed {
        Some(e) => {
            err(&format!(
                "memsleuth: error: cannot write to standard output: {}; send it somewhere \
                 writable\n",
                io_reason(&e)
            ));
            if code == 0 {
                EXIT_ERROR
            } else {
                code
            }
        }
        None => code,
    }
}

/// An error and its causes as one line, `<problem>: <cause>: ...; <fix>`. A cause whose words
/// the line already holds is left out (a message that quotes its source must not say it twice),
/// a fix given with an outer message goes after the causes it needs, and "(os error N)" goes.
fn error_line(e: &anyhow::Error) -> String {
    let mut problem = String::new();
    let mut fixes: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = without_os_error(&cause.to_string());
        let (what, fix) = match text.split_once("; ") {
            Some((what, fix)) => (what.to_string(), Some(fix.to_string())),
            None => (text, None),
        };
        if !problem.contains(&what) {
            if !problem.is_empty() {
                problem.push_str(": ");
            }
            problem.push_str(&what);
        }
        fixes.extend(fix.filter(|f| !fixes.contains(f)));
    }
    for fix in fixes {
        problem.push_str("; ");
        problem.push_str(&fix);
    }
    problem
}

/// `text` without the " (os error 2)" std appends to I/O errors: noise to a reader. Public for
/// the Python API's exceptions, which say errors as the command line does.
pub fn without_os_error(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(at) = out.find(" (os error ") {
        match out[at..].find(')') {
            Some(len) => out.replace_range(at..=at + len, ""),
            None => break,
        }
    }
    out
}

/// The subcommand `args` name (`memsleuth report leaks`), for pointers to its `--help`.
fn command_path(args: &[OsString]) -> (String, clap::Command) {
    let mut cmd = Cli::command();
    let mut path = String::from("memsleuth");
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { break };
        if arg == "--" {
            break;
        }
        let Some(sub) = cmd.find_subcommand(arg).cloned() else {
            continue;
        };
        path.push(' ');
        path.push_str(sub.get_name());
        cmd = sub;
    }
    (path, cmd)
}

/// A `ContextValue` as plain text.
fn context_text(e: &clap::Error, kind: clap::error::ContextKind) -> Option<String> {
    use clap::error::ContextValue;
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(v) => Some(
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// The option of `cmd` that `arg` names when it takes a value and the value is not attached
/// (`-i`, `--interval`, `-qi`; not `-i5s`, `--interval=5s`).
fn option_without_value<'a>(cmd: &'a clap::Command, arg: &str) -> Option<&'a clap::Arg> {
    let named = |a: &&clap::Arg| !a.is_positional() && a.get_action().takes_values();
    if let Some(long) = arg.strip_prefix("--") {
        if long.is_empty() || long.contains('=') {
            return None;
        }
        return cmd
            .get_arguments()
            .filter(named)
            .find(|a| a.get_long() == Some(long));
    }
    // a cluster of short flags: the first that takes a value takes the rest as its value
    let shorts = arg.strip_prefix('-')?;
    let mut chars = shorts.chars();
    while let Some(c) = chars.next() {
        if let Some(a) = cmd
            .get_arguments()
            .filter(named)
            .find(|a| a.get_short() == Some(c))
        {
            return chars.as_str().is_empty().then_some(a);
        }
    }
    None
}

/// A value to show after an option that was given none: its default, its first choice, or a
/// typical one.
fn example_value(cmd: &clap::Command, arg: &clap::Arg) -> String {
    if let Some(default) = arg.get_default_values().first() {
        return default.to_string_lossy().into_owned();
    }
    if let Some(choice) = arg.get_possible_values().first() {
        return choice.get_name().to_string();
    }
    let typical = match (cmd.get_name(), arg.get_long().unwrap_or_default()) {
        ("timeline", "output") => "mem.svg",
        ("flamegraph", "output") => "leaks.html",
        ("export", "output") => "leaks.pb.gz",
        (_, "output") => "out.msl",
        (_, "duration") => "30s",
        (_, "pid") => "1234",
        (_, "module") => "json.tool",
        (_, "sample") => "512KiB",
        (_, "at") => "12.5",
        (_, "from") => "#1",
        (_, "to") => "#2",
        (_, "fail-over") => "1MiB",
        _ => "",
    };
    if typical.is_empty() {
        let name = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or("VALUE".to_string(), ToString::to_string);
        format!("<{name}>")
    } else {
        typical.to_string()
    }
}

/// `-i -- true`, `-o` last: an option that takes a value, given none. clap's own words for this
/// differ by option (`unexpected argument 'true'` when the option accepts values starting with
/// `-`, as `-i` does for its negative-value message), so the line is made here, the same for
/// every option: `-i/--interval needs a value (e.g. -i 100ms)`.
fn missing_value(args: &[OsString], cmd: &clap::Command) -> Option<String> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str().unwrap_or(""))
        .collect();
    // after `--` come the watched command's own arguments
    let ours = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let at = (0..ours).find(|&i| {
        let next = args.get(i + 1).copied();
        matches!(next, None | Some("--")) && option_without_value(cmd, args[i]).is_some()
    })?;
    let typed = args[at];
    let arg = option_without_value(cmd, typed)?;
    let name = match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => return None,
    };
    // the way it was typed: `-i` or `--interval` (a cluster `-qi` shows as `-i`)
    let shown = if typed.starts_with("--") {
        format!("--{}", arg.get_long().unwrap_or_default())
    } else {
        format!("-{}", arg.get_short().unwrap_or_default())
    };
    let value = example_value(cmd, arg);
    // `#3` after a space starts a shell comment: census numbers are attached with `=`
    let example = if value.starts_with('#') {
        format!("{shown}={value}")
    } else {
        format!("{shown} {value}")
    };
    Some(format!("{name} needs a value (e.g. {example})"))
}

/// Help and version go out whole; real usage errors become one line that names the problem and
/// a way out.
fn usage_error(e: &clap::Error, args: &[OsString]) -> i32 {
    use clap::error::{ContextKind, ErrorKind};
    let (path, cmd) = command_path(args);
    let see = format!("see `{path} --help`");
    if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        if let Some(line) = missing_value(args, &cmd) {
            err(&format!("memsleuth: error: {line}; {see}\n"));
            return EXIT_USAGE;
        }
    }
    let line = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            out(&e.render().to_string());
            return 0;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
            if path == "memsleuth" =>
        {
            // `memsleuth` alone: the whole help is the best answer
            err(&e.render().to_string());
            return EXIT_USAGE;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            format!("`{path}` needs one of: {}; {see}", names.join(", "))
        }
        ErrorKind::MissingRequiredArgument => {
            let missing =
                context_text(e, ContextKind::InvalidArg).unwrap_or_else(|| "an argument".into());
            format!("`{path}` needs {missing}; {see}")
        }
        ErrorKind::InvalidValue
            if context_text(e, ContextKind::ValidValue).is_some_and(|v| !v.is_empty()) =>
        {
            let option = context_text(e, ContextKind::InvalidArg).unwrap_or_default();
            let option = option.split(' ').next().unwrap_or_default().to_string();
            let value = context_text(e, ContextKind::InvalidValue).unwrap_or_default();
            let valid = context_text(e, ContextKind::ValidValue).unwrap_or_default();
            format!("{option} {value:?} is not a choice; give one of {valid}")
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            // "--census <SECONDS>" → "--census"; the parser's own words say what to give
            let option = context_text(e, ContextKind::InvalidArg).unwrap_or_default();
            let option = option.split(' ').next().unwrap_or_default().to_string();
            let value = context_text(e, ContextKind::InvalidValue).unwrap_or_default();
            match std::error::Error::source(e).map(ToString::to_string) {
                // a parser that quotes the value already says which it was
                Some(why) if why.contains(&value) => format!("{option}: {why}"),
                Some(why) => format!("{option} {value}: {why}"),
                None => first_line(e, &see),
            }
        }
        ErrorKind::UnknownArgument => {
            // `--census -1`: clap takes "-1" for an option and tips `-- -1`; it is a negative
            // number given to an option
            let value = context_text(e, ContextKind::InvalidArg).unwrap_or_default();
            // clap names the part it choked on: `-1` of `-1s`
            let at = args
                .iter()
                .position(|a| a.to_str().is_some_and(|a| a.starts_with(&value)));
            let option = at
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| args[i].to_str());
            let value = at.and_then(|i| args[i].to_str()).unwrap_or(&value);
            let negative = value
                .strip_prefix('-')
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
            match option {
                Some(option) if negative && option_without_value(&cmd, option).is_some() => {
                    format!("{option} {value}: must not be negative; {see}")
                }
                _ => first_line(e, &see),
            }
        }
        _ => first_line(e, &see),
    };
    err(&format!("memsleuth: error: {line}\n"));
    EXIT_USAGE
}

/// clap's message as one line: its first line and its tip, if any.
fn first_line(e: &clap::Error, see: &str) -> String {
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .trim_end_matches(':');
    // "to pass '-x' as a value, use '-- -x'" would make `watch` run `-x` as the command
    let tip = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: "))
        .filter(|t| !t.starts_with("to pass"))
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    format!("{first}{tip}; {see}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Io;
    impl std::fmt::Display for Io {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("No space left on device (os error 28)")
        }
    }
    impl std::error::Error for Io {}

    #[test]
    fn an_error_line_says_each_cause_once_and_ends_with_the_fix() {
        // a message that quotes its source, as `#[error("...: {0}")] X(#[from] E)` does
        let e = anyhow::Error::new(Io)
            .context("I/O error: No space left on device (os error 28)")
            .context("cannot write x.svg; choose another path with -o");
        assert_eq!(
            error_line(&e),
            "cannot write x.svg: I/O error: No space left on device; choose another path with -o"
        );
    }

    /// What `missing_value` makes of a `watch` command line.
    fn watch_missing(args: &[&str]) -> Option<String> {
        let args: Vec<OsString> = ["memsleuth", "watch"]
            .iter()
            .chain(args)
            .map(Into::into)
            .collect();
        let (_, cmd) = command_path(&args);
        missing_value(&args, &cmd)
    }

    #[test]
    fn an_option_without_its_value_is_found_only_among_memsleuths_own() {
        let said = Some("-i/--interval needs a value (e.g. -i 100ms)".to_string());
        assert_eq!(watch_missing(&["-i", "--", "true"]), said);
        assert_eq!(watch_missing(&["-q", "-i"]), said);
        assert_eq!(watch_missing(&["-qi", "--", "true"]), said);
        // values attached or given, flags that take none
        assert_eq!(watch_missing(&["-i5s", "--", "true"]), None);
        assert_eq!(watch_missing(&["--interval=5s", "--", "true"]), None);
        assert_eq!(watch_missing(&["-i", "5s", "--", "true"]), None);
        assert_eq!(watch_missing(&["-q", "--", "true"]), None);
        // the watched command's own options are its business
        assert_eq!(watch_missing(&["--", "python", "-i"]), None);
        assert_eq!(watch_missing(&["--", "python", "-o", "--"]), None);
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(
            without_os_error("Is a directory (os error 21): x (os error 2)"),
            "Is a directory: x"
        );
    }
}
