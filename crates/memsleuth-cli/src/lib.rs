//! The `memsleuth` command. Each subcommand is `args + run`; this file parses, dispatches and
//! turns every failure into one `memsleuth: error: ...` line and an exit code.
//!
//! The same entry point serves the standalone binary and `python -m memsleuth` (through the
//! extension), so both behave identically.

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

mod commands;
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
        memsleuth report summary out.msl --json     the verdict, for scripts",
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
    Report(commands::report::ReportArgs),
}

/// Writes to stdout, ignoring a closed pipe (`memsleuth ... | head` must not fail).
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes to stderr, ignoring failures.
pub(crate) fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

pub use commands::run::{RunRequest, Runner};

/// Runs the command line `args` (program name first) and returns the process exit code.
/// `memsleuth run` is not available this way (it needs a Python interpreter to run in); see
/// [`main_with_runner`].
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    main_with_runner(args, None)
}

/// Like [`main_with_args`], with a way to run Python programs for `memsleuth run`.
pub fn main_with_runner(args: Vec<OsString>, runner: Option<Runner<'_>>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Watch(args) => commands::watch::run(args),
        Command::Run(args) => commands::run::run(args, runner),
        Command::Report(args) => commands::report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            err(&format!("memsleuth: error: {}\n", chain.join(": ")));
            EXIT_ERROR
        }
    }
}

/// Help and version go out whole; real usage errors become one line plus a pointer to `--help`.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            out(&e.render().to_string());
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            err(&e.render().to_string());
            EXIT_USAGE
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let tip = rendered
                .lines()
                .find_map(|l| l.trim().strip_prefix("tip: "))
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            err(&format!(
                "memsleuth: error: {first}{tip}; see `memsleuth --help`\n"
            ));
            EXIT_USAGE
        }
    }
}
