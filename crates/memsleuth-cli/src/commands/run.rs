//! `memsleuth run`: runs a Python script or module under the `python` instrument, then says what
//! leaked. The program runs inside this very interpreter (the CLI is reached through
//! `python -m memsleuth`), so the extension hands us a [`Runner`] that starts the tracker and
//! executes the target as `python script.py` would.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

/// What the runner must execute.
#[derive(Debug, Clone, PartialEq)]
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
}

/// Runs a [`RunRequest`] in a Python interpreter and returns its exit code, or one line saying
/// why it could not start.
pub type Runner<'a> = &'a dyn Fn(&RunRequest) -> Result<i32, String>;

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
        memsleuth run --sample 512KiB app.py       sampled, for long or production runs\n  \
        memsleuth run --census 10 app.py           fewer censuses of live objects\n  \
        memsleuth report leaks leak.msl            the leak report again, from the capture\n  \
        memsleuth report growth leak.msl           the types that grow, and what holds them",
    trailing_var_arg = true
)]
pub struct RunArgs {
    /// Capture file to write [default: memsleuth-<script>-<pid>.msl]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Record a Poisson sample, one per BYTES allocated on average (e.g. 512KiB, 1MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_sample)]
    sample: Option<u64>,
    /// Python frames kept per stack (innermost first)
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=256))]
    stack_depth: u16,
    /// Seconds between censuses of live objects (0: none, not even at exit)
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = parse_census)]
    census: f64,
    /// Do not print the leak summary or write the HTML report at exit
    #[arg(long)]
    no_report: bool,
    /// Run a library module as a script (like `python -m`)
    #[arg(short, long, value_name = "MODULE")]
    module: Option<String>,
    /// The script to run, followed by its arguments
    #[arg(value_name = "SCRIPT", required_unless_present = "module")]
    script: Option<String>,
    /// Arguments passed to the script or module
    #[arg(value_name = "ARGS", allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `--census`: seconds, finite and not negative.
fn parse_census(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{text:?} is not a number of seconds (e.g. 1, 0.5, 10s; 0 turns censuses off)"
        )),
    }
}

/// `--sample`: a size as `report` parses them (`512KiB`, `1M`, `4096`), and not zero.
fn parse_sample(text: &str) -> Result<u64, String> {
    match super::report::parse_bytes(text)? {
        0 => Err(format!("{text:?} must be a positive size (e.g. 512KiB)")),
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

pub fn run(args: RunArgs, runner: Option<Runner<'_>>) -> anyhow::Result<i32> {
    let Some(runner) = runner else {
        bail!("`memsleuth run` runs inside Python: use `python -m memsleuth run ...` or the `memsleuth` command installed by pip");
    };
    let mut program_args = args.args;
    let (target, module) = match (args.module, args.script) {
        (Some(m), first) => {
            // with -m, what looked like a script is the module's first argument
            if let Some(first) = first {
                program_args.insert(0, first);
            }
            (m, true)
        }
        (None, Some(s)) => (s, false),
        (None, None) => bail!("nothing to run: give a script or -m MODULE"),
    };
    if !module {
        let path = Path::new(&target);
        if !path.exists() {
            bail!("script {target} does not exist");
        }
        if path.is_dir() && !path.join("__main__.py").exists() {
            bail!("{target} is a directory without a __main__.py; give a script or -m MODULE");
        }
    }
    let output = args.output.unwrap_or_else(|| default_output(&target));
    let request = RunRequest {
        output: output.clone(),
        target,
        module,
        args: program_args,
        sample_bytes: args.sample.unwrap_or(0),
        stack_depth: usize::from(args.stack_depth),
        census: args.census,
    };
    let code = runner(&request).map_err(anyhow::Error::msg)?;
    if !args.no_report {
        report(&output).with_context(|| format!("cannot report on {}", output.display()))?;
    }
    Ok(code)
}

/// The leak summary at exit, on stderr so the program's own output stays as it was, and the
/// flame graph of the leaks next to the capture.
fn report(capture: &Path) -> anyhow::Result<()> {
    use memsleuth_analysis::allocs::{LeakOptions, LeakReport};

    let leaks = match LeakReport::from_path(capture, &LeakOptions::default()) {
        Ok(r) => r,
        Err(memsleuth_analysis::AnalysisError::NoAllocations) => {
            crate::err(&format!(
                "memsleuth: no allocation was recorded; capture: {}\n",
                capture.display()
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let html = super::report::sibling(capture, "-leaks.html");
    super::report::write_flamegraph(capture, super::report::Of::Leaks, &html)?;
    let mut text = String::from("\nmemsleuth: ");
    text.push_str(&memsleuth_render::allocs::leaks_brief(&leaks, 5));
    text.push_str(&format!(
        "\n  capture:     {}\n  flame graph: {}\n  more:        memsleuth report leaks {}\n",
        capture.display(),
        html.display(),
        capture.display()
    ));
    crate::err(&text);
    Ok(())
}
