//! `memsleuth hunt FILE.py::FUNCTION`: does calling this function leak? The function runs in
//! this interpreter (the CLI is reached through `python -m memsleuth`), through the
//! [`HuntRunner`] the extension hands over; the answer comes back as text and JSON.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;

/// What the hunt runner must call.
#[derive(Debug, Clone)]
pub struct HuntRequest {
    pub file: PathBuf,
    /// A function of the file's module, or `Class.method` of a class there (called with no
    /// arguments).
    pub function: String,
    pub warmup: usize,
    /// Exactly this many measured runs; `None`: until the evidence decides.
    pub runs: Option<usize>,
    pub max_runs: usize,
}

/// The hunt's answer, in words and as JSON.
#[derive(Debug)]
pub struct HuntOutcome {
    pub text: String,
    pub json: String,
    pub leaks: bool,
}

/// Runs a [`HuntRequest`] in a Python interpreter, or says in one line why it could not.
pub type HuntRunner<'a> = &'a dyn Fn(&HuntRequest) -> Result<HuntOutcome, String>;

#[derive(Debug, Args)]
#[command(
    about = "Call a function again and again: does it leak? (yes or no, with evidence)",
    long_about = "Call a function of a Python file again and again and say whether each call \
        leaves memory behind. After a few warm-up calls (caches fill, modules import), every \
        signal is read after each call: Python's allocated blocks, live objects by type, the C \
        heap in use, RSS, open files, threads, and on a debug build of Python the total \
        reference count. Between calls the interpreter's own caches are cleared, as CPython's \
        refleak hunter does, so a cache is not read as a leak.\n\n\
        The calls stop as soon as the evidence decides: the same rise in each of 3 calls, or a \
        rise in each of 5, is a leak; no rise in 2 calls, or a rise in half of the calls or \
        fewer, is none. Otherwise more calls, up to --max-runs. Once a leak is found, 5 more \
        calls with every allocation tracked name the lines that leak and what holds them.\n\n\
        Exit status: 3 when it leaks, 0 when it does not or the hunt is inconclusive.",
    after_help = "Examples:\n  \
        memsleuth hunt app.py::handle_request          until the evidence decides\n  \
        memsleuth hunt app.py::Cache.refresh --runs 8  a method, called on the class, 8 runs\n  \
        memsleuth hunt tests/test_api.py::test_upload --json\n\n\
        From Python: memsleuth.hunt(fn, *args, **kwargs) takes arguments too."
)]
pub struct HuntArgs {
    /// FILE.py::FUNCTION: the function to call, with no arguments
    #[arg(value_name = "FILE::FUNCTION")]
    target: String,
    /// Calls before the measured ones, to fill caches (at least 1)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    warmup: u16,
    /// Exactly this many measured calls, instead of stopping once the evidence decides
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(3..=10000))]
    runs: Option<u16>,
    /// Measured calls at most, when --runs is not given
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u16).range(3..=10000))]
    max_runs: u16,
    /// Print the answer as JSON (every signal's per-run deltas and verdict)
    #[arg(long)]
    json: bool,
}

/// Splits `FILE.py::FUNCTION`, checking what can be checked before Python runs.
fn parse_target(target: &str) -> anyhow::Result<(PathBuf, String)> {
    let Some((file, function)) = target.split_once("::") else {
        return Err(crate::usage(format!(
            "{target:?} names no function; give FILE.py::FUNCTION (e.g. `memsleuth hunt \
             app.py::handle`)"
        )));
    };
    if function.is_empty() || function.split('.').any(|p| p.is_empty()) {
        return Err(crate::usage(format!(
            "{target:?} names no function after `::`; give FILE.py::FUNCTION"
        )));
    }
    let path = Path::new(file);
    if !path.is_file() {
        bail!("{file} does not exist or is not a file; give the path of a Python file, then ::FUNCTION");
    }
    Ok((path.to_path_buf(), function.to_string()))
}

pub fn run(args: HuntArgs, runner: Option<HuntRunner<'_>>) -> anyhow::Result<i32> {
    let Some(runner) = runner else {
        bail!("`memsleuth hunt` runs inside Python: use `python -m memsleuth hunt ...` or the `memsleuth` command installed by pip");
    };
    let (file, function) = parse_target(&args.target)?;
    let request = HuntRequest {
        file,
        function,
        warmup: usize::from(args.warmup),
        runs: args.runs.map(usize::from),
        max_runs: usize::from(args.runs.unwrap_or(args.max_runs)),
    };
    let outcome = runner(&request).map_err(anyhow::Error::msg)?;
    crate::out(if args.json {
        &outcome.json
    } else {
        &outcome.text
    });
    Ok(if outcome.leaks {
        crate::EXIT_GROWING
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_needs_a_function_after_two_colons() {
        let e = parse_target("app.py").unwrap_err();
        assert!(e.to_string().contains("FILE.py::FUNCTION"), "{e}");
        let e = parse_target("app.py::").unwrap_err();
        assert!(e.to_string().contains("names no function"), "{e}");
        let e = parse_target("app.py::Cache.").unwrap_err();
        assert!(e.to_string().contains("names no function"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = parse_target("no/such/file.py::f").unwrap_err();
        assert!(
            e.to_string().starts_with("no/such/file.py does not exist"),
            "{e}"
        );
    }
}
