//! `memsleuth run`: runs a Python script or module under the `python` instrument, then says what
//! leaked. The program runs inside this very interpreter (the CLI is reached through
//! `python -m memsleuth`), so the extension hands us a [`Runner`] that starts the tracker and
//! executes the target as `python script.py` would.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

/// What the runner must execute.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub output: PathBuf,
    /// Script path, or module name when `module`.
    pub target: String,
    pub module: bool,
    pub args: Vec<String>,
    /// Mean bytes between sampled allocations; 0 = every allocation.
    pub sample_bytes: u64,
    pub stack_depth: usize,
    /// Seconds between censuses of live objects; 0 = none.
    pub census: f64,
    /// Record the C allocator and mappings too (the `native` instrument).
    pub native: bool,
    /// How the verdict's leak report is to be made at exit, when `run` reports: the tracker
    /// makes it in the target's process, from the pass that also picks the blocks whose
    /// holders it looks up, so the capture is read once at exit.
    pub exit_report: Option<memsleuth_analysis::LeakOptions>,
}

/// What a run left: the program's exit code and, when the tracker could make it, the verdict
/// asked for with [`RunRequest::exit_report`].
#[derive(Debug)]
pub struct RunOutcome {
    pub code: i32,
    pub verdict: Option<Box<memsleuth_analysis::ProgramVerdict>>,
}

/// Runs a [`RunRequest`] in a Python interpreter and returns what it left, or one line saying
/// why it could not start.
pub type Runner<'a> = &'a dyn Fn(&RunRequest) -> Result<RunOutcome, String>;

#[derive(Debug, Args)]
#[command(
    about = "Run a Python program and record every allocation with its stack",
    long_about = "Run a Python script (or `-m module`) exactly as `python` would — same sys.argv, \
        __main__, stdin/stdout and exit code — while recording every Python allocation and free \
        with its Python stack. At exit it prints the allocation sites whose memory is still \
        alive, biggest first, and writes an HTML report next to the capture.\n\n\
        Full mode records every event (exact, like tracemalloc). `--sample 512KiB` records a \
        Poisson sample by bytes (as Go's and tcmalloc's heap profilers do): each sampled block \
        stands for its expected share, so sizes stay unbiased, at a cost low enough for \
        production.\n\n\
        Every --census seconds (and at exit) it also takes a census of live objects by type \
        and records gc collections. At exit it writes who holds the largest surviving \
        allocations and the growing types: `report leaks` shows the holder of each leaking \
        line, and `report growth` the types that grow. A census pauses the program while it \
        walks the heap; memsleuth waits at least 20 times as long as the last census took \
        before the next, so censuses stay under 5% of the run.",
    after_help = "Examples:\n  \
        memsleuth run app.py --port 8000           track a script with its arguments\n  \
        memsleuth run -o leak.msl -m mypkg.server  track a module\n  \
        memsleuth run -m pytest -x tests/          options after the module are its own\n  \
        memsleuth run --sample 512KiB app.py       sampled, for long or production runs\n  \
        memsleuth run --census 10 app.py           fewer censuses of live objects\n  \
        memsleuth run --native app.py              C extensions' malloc and mmap too\n  \
        memsleuth run --check app.py               exit 3 when it leaks (for CI)\n  \
        memsleuth report leaks leak.msl            the leak report again, from the capture\n  \
        memsleuth report growth leak.msl           the types that grow, and what holds them"
)]
pub struct RunArgs {
    /// Capture file to write [default: memsleuth-<script>-<pid>.msl]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Record a Poisson sample, one per BYTES allocated on average (e.g. 512KiB, 1MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_sample)]
    sample: Option<u64>,
    /// Python frames kept per stack (innermost first), 1 to 256
    #[arg(long, value_name = "N", default_value_t = DEFAULT_STACK_DEPTH, value_parser = parse_stack_depth)]
    stack_depth: u16,
    /// Seconds between censuses of live objects (0: none, not even at exit)
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = parse_census, allow_hyphen_values = true)]
    census: f64,
    /// Also record the C allocator (malloc, calloc, realloc, free, the aligned allocators) and
    /// mmap/munmap/mremap of extension modules and libraries, at the Python line that called
    /// them: Python starts again with memsleuth's preload library in LD_PRELOAD (Linux)
    #[arg(long)]
    native: bool,
    /// With --native: the native frames the summary at exit shows (`boundary`: the program's
    /// own C line below the Python line that called it; `none`; `all`)
    #[arg(long, value_enum, value_name = "WHICH", default_value = "boundary")]
    native_frames: super::NativeFramesArg,
    /// Do not print the leak summary or write the HTML report at exit
    #[arg(long)]
    no_report: bool,
    /// Watch the run in the terminal as it goes (`memsleuth live`). The program runs in a child
    /// with its output in FILE-output.log and no input; leaving the view (q) interrupts it as
    /// Ctrl-C would
    #[arg(long)]
    live: bool,
    /// Exit with status 3 when the verdict is "leaking" (for CI; the program's own failure
    /// exit status wins)
    #[arg(long)]
    check: bool,
    /// Run a library module as a script (like `python -m`)
    #[arg(short, long, value_name = "MODULE")]
    module: Option<String>,
    /// The script to run. memsleuth's options go before it; everything after it (or after
    /// -m MODULE) is the program's
    #[arg(value_name = "SCRIPT")]
    script: Option<String>,
    /// Arguments passed to the script or module, options included
    // only for the help: `split_program_args` takes these before clap sees them
    #[arg(value_name = "ARGS")]
    args: Vec<String>,
}

/// Frames kept per stack unless `--stack-depth` says otherwise, and the most it accepts.
const DEFAULT_STACK_DEPTH: u16 = 128;
const MAX_STACK_DEPTH: u16 = 256;

/// `--stack-depth`: frames kept per stack, 1 to [`MAX_STACK_DEPTH`]. The message names the range
/// and the default, which a bare range check would not.
fn parse_stack_depth(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(n) if (1..=MAX_STACK_DEPTH).contains(&n) => Ok(n),
        _ => Err(format!(
            "not a number of frames from 1 to {MAX_STACK_DEPTH}; give e.g. --stack-depth 64 \
             (the default is {DEFAULT_STACK_DEPTH})"
        )),
    }
}

/// `--census`: seconds, from 0 (no censuses) to a year.
pub(crate) fn parse_census(text: &str) -> Result<f64, String> {
    let max = crate::MAX_SECONDS;
    match text.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v.is_nan() => Err(
            "not a number; give seconds between censuses (e.g. 1, 0.5, 10s; 0 turns them off)"
                .into(),
        ),
        Ok(v) if v < 0.0 => {
            Err("must not be negative; give seconds between censuses (0 turns them off)".into())
        }
        Ok(v) if v > max as f64 => Err(format!(
            "more than a year; give at most {max} seconds, or 0 to turn censuses off"
        )),
        Ok(v) => Ok(v),
        Err(_) => {
            Err("not a number of seconds; give e.g. 1, 0.5 or 10s (0 turns censuses off)".into())
        }
    }
}

/// `--sample`: a size as `report` parses them (`512KiB`, `1M`, `4096`), and not zero.
pub(crate) fn parse_sample(text: &str) -> Result<u64, String> {
    match super::report::parse_bytes(text)? {
        0 => Err("must be a positive size; give e.g. 512KiB or 1MiB".into()),
        n => Ok(n),
    }
}

fn default_output(target: &str) -> PathBuf {
    let stem = Path::new(target)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let stem = stem.rsplit('.').next().unwrap_or("run").to_string();
    PathBuf::from(format!("memsleuth-{stem}-{}.msl", std::process::id()))
}

/// Splits `memsleuth run [OPTIONS] (SCRIPT | -m MODULE) ARGS...` into memsleuth's part, up to
/// and including the script or module, and the program's arguments after it. As with `python`,
/// whatever follows the script or module belongs to the program, even `--help` or `-x`; clap
/// alone would take those for memsleuth's options.
pub fn split_program_args(args: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let cmd = RunArgs::augment_args(clap::Command::new("run"));
    // (takes a value, is -m) for memsleuth's option `name`, short (`o`) or long (`output`)
    let option = |short: Option<char>, long: Option<&str>| {
        cmd.get_arguments()
            .find(|a| {
                !a.is_positional()
                    && (short.is_some() && a.get_short() == short
                        || long.is_some() && a.get_long() == long)
            })
            .map(|a| (a.get_action().takes_values(), a.get_id() == "module"))
    };
    let mut head = Vec::new();
    let mut rest = args.into_iter();
    // program name and `run`
    head.extend(rest.by_ref().take(2));
    while let Some(arg) = rest.next() {
        let text = arg.to_str().unwrap_or_default().to_string();
        head.push(arg);
        if text == "--" {
            // `run -- app.py ...`: the script follows
            head.extend(rest.next());
            break;
        }
        let (takes, module, attached) = if let Some(long) = text.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            match option(None, Some(name)) {
                Some((takes, module)) => (takes, module, value),
                None => (false, false, false),
            }
        } else if let Some(shorts) = text.strip_prefix('-').filter(|s| !s.is_empty()) {
            // a cluster of short flags ending in at most one option with a value: `-o x.msl`,
            // `-ox.msl`, `-m json.tool`
            let mut found = (false, false, false);
            for (i, c) in shorts.char_indices() {
                if let Some((true, module)) = option(Some(c), None) {
                    found = (true, module, i + c.len_utf8() < shorts.len());
                    break;
                }
            }
            found
        } else {
            // the script: what follows is the program's
            break;
        };
        if takes && !attached {
            head.extend(rest.next());
        }
        if module {
            break;
        }
    }
    let program = rest.map(|a| a.to_string_lossy().into_owned()).collect();
    (head, program)
}

/// A name that is a Python interpreter (`python`, `python3`, `/usr/bin/python3.11`), given where
/// `memsleuth run` wants the script.
fn is_python(target: &str) -> Option<String> {
    let name = Path::new(target).file_name()?.to_str()?;
    let version = name.strip_prefix("python")?;
    version
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.')
        .then(|| name.to_string())
}

pub fn run(
    mut args: RunArgs,
    program_args: Vec<String>,
    runner: Option<Runner<'_>>,
    python: Option<&Path>,
) -> anyhow::Result<i32> {
    let Some(runner) = runner else {
        bail!("`memsleuth run` runs inside Python: use `python -m memsleuth run ...` or the `memsleuth` command installed by pip");
    };
    let mut program_args: Vec<String> = std::mem::take(&mut args.args)
        .into_iter()
        .chain(program_args)
        .collect();
    let (target, module) = match (args.module.take(), args.script.take()) {
        (Some(m), first) => {
            // with -m, what looked like a script is the module's first argument
            if let Some(first) = first {
                program_args.insert(0, first);
            }
            (m, true)
        }
        (None, Some(s)) => (s, false),
        (None, None) => {
            return Err(crate::usage(
                "nothing to run; give a script or -m MODULE (e.g. `memsleuth run app.py`)",
            ))
        }
    };
    if !module {
        if let Some(python) = is_python(&target) {
            let rest = if program_args.is_empty() {
                "app.py".to_string()
            } else {
                crate::commands::short_command(&program_args)
            };
            return Err(crate::usage(format!(
                "drop `{python}`: `memsleuth run` runs the program in the Python it is installed \
                 in; use `memsleuth run {rest}` (or `{python} -m memsleuth run {rest}` for that \
                 interpreter)"
            )));
        }
        let path = Path::new(&target);
        if !path.exists() {
            bail!("script {target} does not exist; give the path of a Python script, or -m MODULE");
        }
        if path.is_dir() && !path.join("__main__.py").exists() {
            bail!("{target} is a directory without a __main__.py; give a script or -m MODULE");
        }
    }
    // the program may change directory (os.chdir): a relative capture path means the directory
    // `run` started in, so it is made absolute before the program starts; the user is shown the
    // path as given, which their shell, still in that directory, understands
    let given = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&target));
    let output = std::path::absolute(&given).with_context(|| {
        format!(
            "cannot tell where {} is (the current directory is gone?); give an absolute path with -o",
            given.display()
        )
    })?;
    if args.live {
        let Some(python) = python else {
            bail!("`memsleuth run --live` runs the program under this Python in a child: use the `memsleuth` command installed by pip");
        };
        return run_live(
            &args,
            &target,
            module,
            &program_args,
            python,
            &output,
            &given,
        );
    }
    let request = RunRequest {
        output: output.clone(),
        target,
        module,
        args: program_args,
        sample_bytes: args.sample.unwrap_or(0),
        stack_depth: usize::from(args.stack_depth),
        census: args.census,
        native: args.native,
        exit_report: (!args.no_report || args.check).then(verdict_options),
    };
    // the verdict at exit is made in this process: its reports follow this choice
    args.native_frames.apply();
    let RunOutcome { code, verdict } = runner(&request).map_err(anyhow::Error::msg)?;
    exit_verdict(&args, code, &output, &given, verdict)
}

/// After the program: the verdict, unless `--no-report` without `--check`, and `run`'s exit
/// status: the program's, or [`crate::EXIT_GROWING`] under `--check` when it leaks.
fn exit_verdict(
    args: &RunArgs,
    code: i32,
    output: &Path,
    given: &Path,
    made: Option<Box<memsleuth_analysis::ProgramVerdict>>,
) -> anyhow::Result<i32> {
    if args.no_report && !args.check {
        return Ok(code);
    }
    let leaking = report(output, given, !args.no_report, made)
        .with_context(|| format!("cannot report on {}", given.display()))?;
    Ok(if code == 0 && args.check && leaking {
        crate::EXIT_GROWING
    } else {
        code
    })
}

/// `run --live`: the same run in a child (`python -m memsleuth run --no-report`), its output in
/// a file beside the capture, and the live view on the capture in this terminal. Leaving the
/// view interrupts the program as Ctrl-C would; the verdict follows as after `run`.
fn run_live(
    args: &RunArgs,
    target: &str,
    module: bool,
    program_args: &[String],
    python: &Path,
    output: &Path,
    given: &Path,
) -> anyhow::Result<i32> {
    super::live::need_terminal(given)?;
    args.native_frames.apply();
    let log = super::report::sibling(output, "-output.log");
    let log_file = std::fs::File::create(&log)
        .with_context(|| format!("cannot write the program's output to {}", log.display()))?;
    let mut cmd = std::process::Command::new(python);
    cmd.args(["-m", "memsleuth", "run", "--no-report", "-o"])
        .arg(output)
        .args(["--census", &args.census.to_string()])
        .args(["--stack-depth", &args.stack_depth.to_string()]);
    if let Some(sample) = args.sample {
        cmd.args(["--sample", &sample.to_string()]);
    }
    if args.native {
        cmd.arg("--native");
    }
    if module {
        cmd.arg("-m");
    }
    cmd.arg(target)
        .args(program_args)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", python.display()))?;
    // the view waits a little for the capture the child makes
    let watched = super::live::check_capture(output).and_then(|()| {
        super::live::follow(
            &super::live::own_pass(output),
            output,
            std::time::Duration::from_secs(1),
        )
    });
    if child.try_wait()?.is_none() {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    }
    let status = child.wait()?;
    watched?;
    let shown_log = super::report::sibling(given, "-output.log");
    crate::err(&format!(
        "memsleuth: the program's output is in {}\n",
        shown_log.display()
    ));
    exit_verdict(args, status.code().unwrap_or(130), output, given, None)
}

/// The verdict at exit, on stderr so the program's own output stays as it was, and the flame
/// graph of the leaks next to the capture (when `show`). `shown` is the capture's path as the
/// user gave it; `made` the verdict the tracker made at exit, when it could (otherwise it is
/// made here, from the capture). Returns whether the program leaks.
pub(crate) fn report(
    capture: &Path,
    shown: &Path,
    show: bool,
    made: Option<Box<memsleuth_analysis::ProgramVerdict>>,
) -> anyhow::Result<bool> {
    let verdict = match made {
        Some(v) => *v,
        None => match verdict_from_capture(capture, shown)? {
            Some(v) => v,
            None => return Ok(false),
        },
    };
    let Some(leaks) = verdict.leaks.as_ref() else {
        if show {
            crate::err(&format!(
                "memsleuth: no allocation was recorded; capture: {}\n",
                shown.display()
            ));
        }
        return Ok(false);
    };
    if !show {
        return Ok(verdict.leaking());
    }
    let html = super::report::sibling(capture, "-leaks.html");
    super::report::write_flamegraph_of(&leaks.to_profile(), &leaks.capture, capture, &html)?;
    let base = std::env::current_dir().ok();
    let lines = memsleuth_render::verdict::verdict_lines(&verdict, shown, base.as_deref());
    let mut text = String::from("\nmemsleuth: ");
    text.push_str(&memsleuth_render::allocs::leaks_brief_with(
        leaks, 5, &lines,
    ));
    text.push_str(&format!(
        "\n  capture:     {}\n  flame graph: {}\n  more:        memsleuth report verdict {}\n",
        shown.display(),
        super::report::sibling(shown, "-leaks.html").display(),
        shown.display()
    ));
    crate::err(&text);
    Ok(verdict.leaking())
}

/// How the verdict after a recording reads the capture: with the bins of its flame graph.
pub(crate) fn verdict_options() -> memsleuth_analysis::LeakOptions {
    memsleuth_analysis::LeakOptions {
        bins: super::report::FLAME_BINS,
        ..memsleuth_analysis::LeakOptions::default()
    }
}

/// The verdict read from the capture, when the tracker did not make it (no censuses, or no
/// room); `None` when there is no room for it either, said to the user.
fn verdict_from_capture(
    capture: &Path,
    shown: &Path,
) -> anyhow::Result<Option<memsleuth_analysis::ProgramVerdict>> {
    use memsleuth_analysis::ProgramVerdict;

    let opts = verdict_options();

    // a program that ran into its memory limit (`ulimit -v`) leaves no room for the analysis,
    // and a Rust allocation the OS refuses aborts the process: say so instead
    if !memsleuth_platform::can_map(memsleuth_analysis::allocs::memory_needed(capture)) {
        crate::err(&format!(
            "memsleuth: not enough memory left in this process to analyse the capture now; \
             run `memsleuth report verdict {}` later\n",
            shown.display()
        ));
        return Ok(None);
    }
    Ok(Some(ProgramVerdict::from_path_with(capture, &opts)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let args = args.iter().map(OsString::from).collect();
        let (head, program) = split_program_args(args);
        let head = head
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (head, program)
    }

    #[test]
    fn the_program_owns_everything_after_its_script_or_module() {
        let cases: [(&[&str], &[&str], &[&str]); 8] = [
            (
                &["m", "run", "-o", "x.msl", "app.py", "-o", "y", "--help"],
                &["m", "run", "-o", "x.msl", "app.py"],
                &["-o", "y", "--help"],
            ),
            (
                &["m", "run", "-m", "pytest", "-x", "tests/"],
                &["m", "run", "-m", "pytest"],
                &["-x", "tests/"],
            ),
            (
                &["m", "run", "-mjson.tool", "--help"],
                &["m", "run", "-mjson.tool"],
                &["--help"],
            ),
            (
                &["m", "run", "--module=celery", "worker", "-l", "info"],
                &["m", "run", "--module=celery"],
                &["worker", "-l", "info"],
            ),
            (
                &["m", "run", "--census", "-1", "--", "app.py", "--", "-x"],
                &["m", "run", "--census", "-1", "--", "app.py"],
                &["--", "-x"],
            ),
            (
                &["m", "run", "-ox.msl", "--no-report", "app.py", "a"],
                &["m", "run", "-ox.msl", "--no-report", "app.py"],
                &["a"],
            ),
            (&["m", "run", "--help"], &["m", "run", "--help"], &[]),
            (&["m", "run"], &["m", "run"], &[]),
        ];
        for (args, head, program) in cases {
            assert_eq!(split(args), (strings(head), strings(program)), "{args:?}");
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_python_interpreter_is_not_a_script() {
        for name in ["python", "python3", "python3.11", "/usr/bin/python3.12"] {
            assert_eq!(
                is_python(name).as_deref(),
                Path::new(name).file_name().and_then(|n| n.to_str())
            );
        }
        for name in ["app.py", "python_app.py", "pythonic", "./python-tools"] {
            assert_eq!(is_python(name), None, "{name}");
        }
    }
}
