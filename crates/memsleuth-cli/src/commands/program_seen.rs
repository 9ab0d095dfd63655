//! `memsleuth instruments -- script.py`: runs one program untracked and under each instrument
//! as the user would type them, and shows what each cost it and what each saw of it. Each
//! instrument's answer is the analysis its own report uses (the watch summary's trend, the one
//! verdict, the census and pymalloc reports); nothing here judges a leak.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use memsleuth_analysis::pymalloc::{PymallocOptions, PymallocReport};
use memsleuth_analysis::verdict::ProgramVerdict;
use memsleuth_render::instruments::{Availability, Instrument};
use memsleuth_render::program_seen::{
    program_json, program_text, ProgramRun, ProgramSeen, Seen, SeenRow, TypeSeen,
};

use super::instruments::{availability, InstrumentsArgs};
use crate::signals::StopOnSignal;
use crate::Agent;

/// Instruments `--skip` can leave out (the others share `memsleuth run`'s one run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Skip {
    /// `memsleuth watch`
    Rss,
    /// `memsleuth run --sample 512KiB`
    Sampled,
    /// `memsleuth run --native`
    Native,
}

/// The runs, in order: each with the instruments it answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Untracked,
    Watch,
    /// `memsleuth run` as typed: python, objects (censuses) and pymalloc snapshots.
    Run,
    Sampled,
    Native,
}

impl Config {
    fn label(self) -> &'static str {
        match self {
            Config::Untracked => "untracked",
            Config::Watch => "rss",
            Config::Run => "python, objects, pymalloc",
            Config::Sampled => "python, sampled",
            Config::Native => "native (and python, objects)",
        }
    }

    /// memsleuth's arguments before the program, as typed (`None`: the program alone).
    fn memsleuth_args(self) -> Option<&'static [&'static str]> {
        match self {
            Config::Untracked => None,
            Config::Watch => Some(&["watch"]),
            Config::Run => Some(&["run"]),
            Config::Sampled => Some(&["run", "--sample", "512KiB"]),
            Config::Native => Some(&["run", "--native"]),
        }
    }
}

/// How one run ended and what it cost.
struct Measured {
    seconds: f64,
    /// The process' high-water mark, bytes (wait4's ru_maxrss).
    maxrss: u64,
    exit_code: Option<i32>,
    signal: Option<i32>,
    stopped: bool,
}

/// The user pressed Ctrl-C: nothing more is run.
struct Interrupted;

pub fn run(args: &InstrumentsArgs, agent: &Agent) -> anyhow::Result<i32> {
    let program = args.program();
    check_program(program)?;
    let dir = match args.keep() {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| {
                format!("cannot make {}; choose a writable --keep", d.display())
            })?;
            d.to_path_buf()
        }
        None => {
            let d =
                std::env::temp_dir().join(format!("memsleuth-instruments-{}", std::process::id()));
            std::fs::create_dir_all(&d).with_context(|| {
                format!(
                    "cannot make {}; set TMPDIR to a writable directory",
                    d.display()
                )
            })?;
            d
        }
    };
    let result = measure_all(args, agent, program, &dir);
    if args.keep().is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let Some(mut seen) = result? else {
        crate::err("memsleuth: interrupted; nothing to show\n");
        return Ok(130);
    };
    seen.kept = args.keep().map(|d| d.display().to_string());
    if args.json() {
        crate::out(&format!("{}\n", program_json(&seen)));
    } else {
        let base = std::env::current_dir().ok();
        crate::out(&program_text(&seen, base.as_deref()));
    }
    Ok(0)
}

/// A missing script is one line, before anything runs.
fn check_program(program: &[String]) -> anyhow::Result<()> {
    match program.first().map(String::as_str) {
        Some("-m") if program.len() < 2 => {
            bail!("-m needs a module name: `memsleuth instruments -- -m MODULE [ARGS]`")
        }
        Some("-m") => Ok(()),
        Some(script) if !Path::new(script).is_file() => bail!(
            "no script {script}: give the program after --, as `memsleuth instruments -- script.py [ARGS]` or `-- -m MODULE [ARGS]`"
        ),
        _ => Ok(()),
    }
}

/// Every run, then what each instrument saw; `None` when interrupted.
fn measure_all(
    args: &InstrumentsArgs,
    agent: &Agent,
    program: &[String],
    dir: &Path,
) -> anyhow::Result<Option<ProgramSeen>> {
    let skipped = |s: Skip| args.skip().contains(&s);
    let native_here = !matches!(availability(Instrument::Native), Availability::No(_));
    let mut configs = vec![Config::Untracked];
    if !skipped(Skip::Rss) {
        configs.push(Config::Watch);
    }
    configs.push(Config::Run);
    if !skipped(Skip::Sampled) {
        configs.push(Config::Sampled);
    }
    if !skipped(Skip::Native) && native_here {
        configs.push(Config::Native);
    }
    let stop = StopOnSignal::install();
    let mut runs = Vec::new();
    let mut outputs = Vec::new();
    for (n, &config) in configs.iter().enumerate() {
        crate::err(&format!(
            "memsleuth: [{}/{}] {}: {} ... ",
            n + 1,
            configs.len(),
            config.label(),
            typed(config, program).join(" ")
        ));
        let capture = dir.join(format!("{}.msl", file_stem(config)));
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..args.reps() {
            let cmd = command(config, agent, program, &capture, dir)?;
            match measure(cmd, args.duration(), &stop)? {
                Ok(m) => {
                    times.push((m.seconds, m.maxrss));
                    last = Some(m);
                }
                Err(Interrupted) => {
                    crate::err("\n");
                    return Ok(None);
                }
            }
        }
        let Some(m) = last else { continue };
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, _) = times[times.len() / 2];
        let mut peaks: Vec<u64> = times.iter().map(|t| t.1).collect();
        peaks.sort_unstable();
        let mut peak = Some(peaks[peaks.len() / 2]);
        if config == Config::Watch {
            // the direct child is the watcher; the program's own peak is in its capture
            peak = super::load_report(&capture)
                .ok()
                .map(|r| r.peak_rss_hwm)
                .filter(|p| *p > 0);
        }
        crate::err(&format!("{}\n", memsleuth_render::units::seconds(seconds)));
        runs.push(ProgramRun {
            label: config.label().to_string(),
            command: typed(config, program),
            seconds,
            peak_bytes: peak,
            exit_code: m.exit_code,
            signal: m.signal,
            stopped: m.stopped,
        });
        outputs.push((config, runs.len() - 1, capture));
    }
    drop(stop);
    let rows = seen_rows(program, native_here, &outputs, dir);
    Ok(Some(ProgramSeen {
        python: memsleuth_render::instruments::python_label(
            agent.python.0,
            agent.python.1,
            agent.debug,
        ),
        program: program.to_vec(),
        runs,
        rows,
        kept: None,
    }))
}

fn file_stem(config: Config) -> &'static str {
    match config {
        Config::Untracked => "untracked",
        Config::Watch => "watch",
        Config::Run => "run",
        Config::Sampled => "run-sampled",
        Config::Native => "run-native",
    }
}

/// The command as the user would type it (without the capture's path).
fn typed(config: Config, program: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    match config.memsleuth_args() {
        None => out.push("python".to_string()),
        Some(args) => {
            out.push("memsleuth".to_string());
            out.extend(args.iter().map(|a| a.to_string()));
            if config == Config::Watch {
                out.extend(["--".to_string(), "python".to_string()]);
            }
        }
    }
    out.extend(program.iter().cloned());
    out
}

/// The command that runs: this interpreter, memsleuth as its module, the capture in `dir`,
/// the program's output in files there.
fn command(
    config: Config,
    agent: &Agent,
    program: &[String],
    capture: &Path,
    dir: &Path,
) -> anyhow::Result<Command> {
    let python = &agent.executable;
    let mut cmd = Command::new(python);
    if let Some(args) = config.memsleuth_args() {
        cmd.args(["-m", "memsleuth"])
            .arg(args[0])
            .arg("-o")
            .arg(capture);
        cmd.args(&args[1..]);
        if config == Config::Watch {
            cmd.arg("--").arg(python);
        }
    }
    cmd.args(program);
    let stem = file_stem(config);
    let file = |what: &str| -> anyhow::Result<std::fs::File> {
        let path = dir.join(format!("{stem}-{what}.log"));
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))
    };
    cmd.stdin(Stdio::null())
        .stdout(file("stdout")?)
        .stderr(file("stderr")?);
    // its own process group: --duration and Ctrl-C reach the program and a watcher's child
    // together, and a terminal's Ctrl-C reaches memsleuth first
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok(cmd)
}

/// Runs `cmd` to its end (or `duration`'s, by SIGINT to its group); on Ctrl-C, interrupts it
/// and says so.
fn measure(
    mut cmd: Command,
    duration: Option<Duration>,
    stop: &StopOnSignal,
) -> anyhow::Result<Result<Measured, Interrupted>> {
    let started = Instant::now();
    let child = cmd.spawn().context("cannot start the program")?;
    let pid = child.id() as libc::pid_t;
    let mut interrupted_at: Option<Instant> = None;
    let mut stopped = false;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: a zeroed rusage is what wait4 fills.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, without blocking; both outputs are ours.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            let seconds = started.elapsed().as_secs_f64();
            if stop.requested() {
                return Ok(Err(Interrupted));
            }
            let exited = libc::WIFEXITED(status);
            return Ok(Ok(Measured {
                seconds,
                maxrss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
                exit_code: exited.then(|| libc::WEXITSTATUS(status)),
                signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
                stopped,
            }));
        }
        if got < 0 {
            bail!(
                "lost the program's process: {}",
                std::io::Error::last_os_error()
            );
        }
        let due = duration.is_some_and(|d| started.elapsed() >= d);
        if (stop.requested() || due) && interrupted_at.is_none() {
            stopped = due && !stop.requested();
            interrupted_at = Some(Instant::now());
            // SAFETY: a signal to the run's own process group.
            unsafe { libc::kill(-pid, libc::SIGINT) };
        }
        if interrupted_at.is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            // SAFETY: as above; a program that ignores SIGINT is not waited for forever.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What each instrument saw, from the captures of the runs that were made.
fn seen_rows(
    program: &[String],
    native_here: bool,
    outputs: &[(Config, usize, PathBuf)],
    dir: &Path,
) -> Vec<SeenRow> {
    let of = |c: Config| outputs.iter().find(|o| o.0 == c);
    let script = match program.first().map(String::as_str) {
        Some("-m") => format!("-m {}", program.get(1).map_or("", String::as_str)),
        Some(s) => s.to_string(),
        None => String::new(),
    };
    // hunt takes a file and a function
    let hunt_file = if script.starts_with("-m ") {
        "FILE.py".to_string()
    } else {
        script.clone()
    };
    let run_verdict = of(Config::Run).map(|(_, i, path)| (*i, verdict_of(path, dir, Config::Run)));
    let mut rows = Vec::new();
    for instrument in Instrument::ALL {
        let (run, seen) = match instrument {
            Instrument::Rss => match of(Config::Watch) {
                Some((_, i, path)) => (Some(*i), rss_seen(path, dir)),
                None => (
                    None,
                    skipped("--skip rss", &format!("memsleuth watch -- python {script}")),
                ),
            },
            Instrument::Pymalloc => match of(Config::Run) {
                Some((_, i, path)) => (Some(*i), pymalloc_seen(path)),
                None => (None, failed("memsleuth run did not run")),
            },
            Instrument::Objects => match &run_verdict {
                Some((i, Ok(v))) => (Some(*i), objects_seen(v)),
                Some((i, Err(why))) => (Some(*i), failed(why)),
                None => (None, failed("memsleuth run did not run")),
            },
            Instrument::Python => match &run_verdict {
                Some((i, Ok(v))) => (Some(*i), verdict_seen(v)),
                Some((i, Err(why))) => (Some(*i), failed(why)),
                None => (None, failed("memsleuth run did not run")),
            },
            Instrument::PythonSampled => match of(Config::Sampled) {
                Some((_, i, path)) => (Some(*i), seen_of_verdict(path, dir, Config::Sampled)),
                None => (
                    None,
                    skipped(
                        "--skip sampled",
                        &format!("memsleuth run --sample 512KiB {script}"),
                    ),
                ),
            },
            Instrument::Native => match of(Config::Native) {
                Some((_, i, path)) => (Some(*i), seen_of_verdict(path, dir, Config::Native)),
                None if !native_here => (
                    None,
                    Seen::NotRun {
                        why: match availability(Instrument::Native) {
                            Availability::No(why) => why,
                            _ => "not available here".into(),
                        },
                        how: format!("memsleuth run --native {script}"),
                    },
                ),
                None => (
                    None,
                    skipped("--skip native", &format!("memsleuth run --native {script}")),
                ),
            },
            Instrument::Hunt => (
                None,
                Seen::NotRun {
                    why: "it measures one function called again and again".into(),
                    how: format!("memsleuth hunt {hunt_file}::FUNCTION"),
                },
            ),
            Instrument::Attach => (
                None,
                Seen::NotRun {
                    why: "it sees what python, objects and native see, in a process already running, \
                          from when it attaches"
                        .into(),
                    how: "memsleuth attach PID".into(),
                },
            ),
        };
        rows.push(SeenRow {
            instrument,
            run,
            seen,
        });
    }
    rows
}

fn skipped(option: &str, how: &str) -> Seen {
    Seen::NotRun {
        why: option.to_string(),
        how: how.to_string(),
    }
}

fn failed(why: &str) -> Seen {
    Seen::Failed {
        why: why.to_string(),
    }
}

/// What memsleuth said of a run that wrote no capture: its error, or its note (a program that
/// ended before `watch`'s first sample), from the run's stderr.
fn error_line(dir: &Path, config: Config) -> Option<String> {
    let text =
        std::fs::read_to_string(dir.join(format!("{}-stderr.log", file_stem(config)))).ok()?;
    let said = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    said("memsleuth: error: ").or_else(|| said("memsleuth: note: "))
}

fn verdict_of(capture: &Path, dir: &Path, config: Config) -> Result<ProgramVerdict, String> {
    if !capture.exists() {
        return Err(error_line(dir, config).unwrap_or_else(|| "it wrote no capture".into()));
    }
    ProgramVerdict::from_path(capture).map_err(|e| e.to_string())
}

fn seen_of_verdict(capture: &Path, dir: &Path, config: Config) -> Seen {
    match verdict_of(capture, dir, config) {
        Ok(v) => verdict_seen(&v),
        Err(why) => failed(&why),
    }
}

fn verdict_seen(v: &ProgramVerdict) -> Seen {
    Seen::Verdict {
        state: v.state,
        findings: v.findings.len(),
        first: v.findings.first().cloned().map(Box::new),
        needs_seconds: v.needs_seconds,
        report: memsleuth_render::verdict::verdict_value(v),
    }
}

fn objects_seen(v: &ProgramVerdict) -> Seen {
    let Some(g) = &v.growth else {
        return failed("the run took no census");
    };
    Seen::Objects {
        growing: g
            .types
            .iter()
            .filter(|t| t.growing)
            .map(|t| TypeSeen {
                name: t.name.clone(),
                delta_count: t.delta_count,
            })
            .collect(),
        censuses: g.censuses.len(),
    }
}

fn rss_seen(capture: &Path, dir: &Path) -> Seen {
    if !capture.exists() {
        return failed(
            &error_line(dir, Config::Watch).unwrap_or_else(|| "it wrote no capture".into()),
        );
    }
    match super::load_report(capture) {
        Ok(r) => match r.processes.first() {
            Some(p) => Seen::Rss {
                verdict: p.verdict.clone(),
                last: p.last,
                peak: p.max,
            },
            None => failed("no sample of the program's process"),
        },
        Err(e) => failed(&format!("{e:#}")),
    }
}

fn pymalloc_seen(capture: &Path) -> Seen {
    let report = memsleuth_format::read_capture_series(capture)
        .ok()
        .and_then(|c| PymallocReport::from_capture(&c, &PymallocOptions::default()));
    match report {
        Some(r) => Seen::Pymalloc {
            trend: r.blocks_trend.clone(),
            blocks_from: r.first.allocated_blocks,
            blocks_to: r.latest.allocated_blocks,
            arenas_from: r.first.arenas_now,
            arenas_to: r.latest.arenas_now,
            snapshots: r.snapshots,
        },
        None => failed("no pymalloc snapshot (an interpreter without pymalloc?)"),
    }
}
