//! `memsleuth instruments`: every instrument, what it sees and when, whether it works here, and
//! what it costs, measured in a few seconds on a standard workload with this Python.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::Args;
use memsleuth_render::instruments::{
    instruments_json, instruments_text, Availability, Instrument, InstrumentCost, InstrumentsTable,
};

use crate::Agent;

#[derive(Debug, Args)]
#[command(
    about = "What each instrument sees, whether it works here, and what it costs here (measured)",
    long_about = "Print memsleuth's instruments (rss, pymalloc, objects, python, python \
        sampled, native, hunt, attach) with what each sees (memory granularity), when it looks \
        (execution granularity), whether it is available on this machine, and its memory and \
        time cost, measured now on a standard workload (objects made and dropped, a few kept) \
        run with this Python untracked and under each instrument. It takes a few seconds.\n\n\
        Given a program (after --), runs it untracked and under each instrument as you would \
        type them (watch, run, run --sample, run --native), and shows what each cost that \
        program and what each saw of it: the RSS trend, pymalloc's blocks, the growing types, \
        and the verdict with its line and holder.",
    after_help = "Examples:\n  \
        memsleuth instruments                       the table\n  \
        memsleuth instruments --json                the same, for scripts\n  \
        memsleuth instruments --reps 5              steadier figures on a noisy machine\n  \
        memsleuth instruments -- app.py --port 0    what each instrument sees of app.py\n  \
        memsleuth instruments --duration 30s -- -m myservice\n                                              \
        a program that does not end: each run is interrupted after 30 s"
)]
pub struct InstrumentsArgs {
    /// Runs per measured configuration (the median is shown) [default: 3 for the standard
    /// workload, 1 for a program]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=50))]
    reps: Option<u16>,
    /// Print JSON instead of the table
    #[arg(long)]
    json: bool,
    /// With a program: interrupt each run after this long, as Ctrl-C would (for programs that
    /// do not end on their own), e.g. 30s, 2m
    #[arg(long, value_name = "DURATION", value_parser = super::watch::parse_duration)]
    duration: Option<std::time::Duration>,
    /// With a program: instruments not to run (comma-separated): rss, sampled, native
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    skip: Vec<super::program_seen::Skip>,
    /// With a program: keep the runs' captures in DIR (made if missing)
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
    /// The program to look at: a script and its arguments, or -m MODULE and its arguments
    #[arg(last = true, value_name = "PROGRAM")]
    program: Vec<String>,
}

impl InstrumentsArgs {
    pub(crate) fn json(&self) -> bool {
        self.json
    }
    pub(crate) fn reps(&self) -> u16 {
        self.reps.unwrap_or(1)
    }
    pub(crate) fn duration(&self) -> Option<std::time::Duration> {
        self.duration
    }
    pub(crate) fn skip(&self) -> &[super::program_seen::Skip] {
        &self.skip
    }
    pub(crate) fn keep(&self) -> Option<&Path> {
        self.keep.as_deref()
    }
    pub(crate) fn program(&self) -> &[String] {
        &self.program
    }
}

/// A fixed amount of work, about 0.4 s untracked: dicts, strings and lists made and
/// dropped, one in fifty kept. It prints its own time and its peak memory (VmHWM).
const WORKLOAD: &str = r#"
import time

def peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0

start = time.perf_counter()
kept = []
for i in range(250000):
    d = {"id": i, "name": str(i) * 3, "tags": [i, i + 1, i + 2]}
    if i % 50 == 0:
        kept.append(d)
    s = "-".join(d["name"] for _ in range(3))
print("MEMSLEUTH-WORKLOAD", time.perf_counter() - start, peak())
"#;

/// How one measured configuration runs the workload.
fn configuration(which: Option<Instrument>, python: &Path, script: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(python);
    let run = |cmd: &mut Command, extra: &[&str]| {
        cmd.args(["-m", "memsleuth", "run", "--no-report", "-o"])
            .arg(out)
            .args(extra)
            .arg(script);
    };
    match which {
        None => {
            cmd.arg(script);
        }
        Some(Instrument::Rss) => {
            cmd.args(["-m", "memsleuth", "watch", "-o"])
                .arg(out)
                .arg("--")
                .arg(python)
                .arg(script);
        }
        Some(Instrument::Python) => run(&mut cmd, &["--census", "0"]),
        Some(Instrument::PythonSampled) => run(&mut cmd, &["--census", "0", "--sample", "512KiB"]),
        Some(Instrument::Objects) => run(&mut cmd, &[]),
        Some(Instrument::Native) => run(&mut cmd, &["--census", "0", "--native"]),
        Some(_) => {}
    }
    cmd
}

/// The workload's (seconds, peak bytes) under a configuration, median of `reps` runs; or the
/// first line of what went wrong.
fn measure(
    which: Option<Instrument>,
    python: &Path,
    dir: &Path,
    reps: u16,
) -> Result<(f64, u64), String> {
    let script = dir.join("workload.py");
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    for n in 0..reps {
        let out = dir.join(format!("run-{n}.msl"));
        let done = configuration(which, python, &script, &out)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let stdout = String::from_utf8_lossy(&done.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("MEMSLEUTH-WORKLOAD "));
        let Some((t, peak)) = line.and_then(|l| l.split_once(' ')) else {
            let err = String::from_utf8_lossy(&done.stderr);
            let why = err
                .lines()
                .find(|l| l.contains("error"))
                .or_else(|| err.lines().next())
                .unwrap_or("the workload printed nothing");
            return Err(why.trim_start_matches("memsleuth: error: ").to_string());
        };
        times.push(t.parse::<f64>().map_err(|e| e.to_string())?);
        peaks.push(peak.trim().parse::<u64>().map_err(|e| e.to_string())?);
        let _ = std::fs::remove_file(&out);
    }
    times.sort_by(f64::total_cmp);
    peaks.sort_unstable();
    Ok((times[times.len() / 2], peaks[peaks.len() / 2]))
}

pub fn run(args: InstrumentsArgs, agent: Option<&Agent>) -> anyhow::Result<i32> {
    let Some(agent) = agent else {
        bail!("`memsleuth instruments` runs a workload under this Python: use the `memsleuth` command installed by pip, or `python -m memsleuth instruments`");
    };
    if !args.program.is_empty() {
        return super::program_seen::run(&args, agent);
    }
    if args.duration.is_some() || !args.skip.is_empty() || args.keep.is_some() {
        bail!("--duration, --skip and --keep are for a program: `memsleuth instruments [OPTIONS] -- script.py [ARGS]`");
    }
    let dir = std::env::temp_dir().join(format!("memsleuth-instruments-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "cannot make {}; set TMPDIR to a writable directory",
            dir.display()
        )
    })?;
    let result = table(&args, agent, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let table = result?;
    if args.json {
        crate::out(&format!("{}\n", instruments_json(&table)));
    } else {
        crate::out(&instruments_text(&table));
    }
    Ok(0)
}

fn table(args: &InstrumentsArgs, agent: &Agent, dir: &Path) -> anyhow::Result<InstrumentsTable> {
    std::fs::write(dir.join("workload.py"), WORKLOAD).context("cannot write the workload")?;
    let python = &agent.executable;
    crate::err("memsleuth: measuring each instrument on a standard workload ...\n");
    let reps = args.reps.unwrap_or(3);
    let (base_t, base_peak) = measure(None, python, dir, reps)
        .map_err(|e| anyhow::anyhow!("the workload does not run untracked: {e}"))?;
    let mut rows = Vec::new();
    for instrument in Instrument::ALL {
        let mut available = availability(instrument);
        let measured = matches!(
            instrument,
            Instrument::Rss
                | Instrument::Python
                | Instrument::PythonSampled
                | Instrument::Objects
                | Instrument::Native
        ) && !matches!(available, Availability::No(_));
        let (mut time_ratio, mut extra_bytes) = (None, None);
        if measured {
            match measure(Some(instrument), python, dir, reps) {
                Ok((t, peak)) => {
                    time_ratio = Some(t / base_t.max(1e-9));
                    extra_bytes = Some(peak as i64 - base_peak as i64);
                }
                Err(why) => available = Availability::No(why),
            }
        }
        rows.push(InstrumentCost {
            instrument,
            available,
            time_ratio,
            extra_bytes,
        });
    }
    Ok(InstrumentsTable {
        python: memsleuth_render::instruments::python_label(
            agent.python.0,
            agent.python.1,
            agent.debug,
        ),
        untracked_seconds: base_t,
        untracked_peak: base_peak,
        reps: usize::from(reps),
        rows,
    })
}

/// Whether the instrument works on this machine, before anything is run.
pub(crate) fn availability(instrument: Instrument) -> Availability {
    let linux = cfg!(target_os = "linux");
    match instrument {
        Instrument::Rss if !linux => Availability::No("reads /proc, Linux only".into()),
        Instrument::Native if !linux => Availability::No("LD_PRELOAD, Linux only".into()),
        Instrument::Native if !cfg!(target_arch = "x86_64") => Availability::With(
            "C allocations at their Python line only (no native stacks off x86_64)".into(),
        ),
        Instrument::Native => Availability::With("re-executes Python with LD_PRELOAD".into()),
        Instrument::Attach => attach_availability(),
        _ => Availability::Yes,
    }
}

fn attach_availability() -> Availability {
    if crate::inject::have_gdb().is_err() {
        return Availability::No("gdb is not installed".into());
    }
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match crate::inject::ptrace_scope() {
        Some(3) => Availability::No("kernel.yama.ptrace_scope is 3".into()),
        Some(n @ (1 | 2)) if !root => {
            Availability::With(format!("as root (kernel.yama.ptrace_scope is {n})"))
        }
        _ => Availability::With("with gdb, your own processes".into()),
    }
}
