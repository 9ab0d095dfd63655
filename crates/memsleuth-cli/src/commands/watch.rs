//! `memsleuth watch`: the platform instrument. Samples the memory of a process tree over time,
//! writes a capture, and ends with a verdict.

use std::fs::File;
use std::io::BufWriter;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use memsleuth_format::{EndReason, ExitStatus, Header};
use memsleuth_platform::{Current, Detail, Os, PlatformError};
use memsleuth_recorder::{RssConfig, RssSampler};

use crate::signals::StopOnSignal;
use crate::status::StatusLine;

/// Record a program's memory over time and say whether it leaks.
#[derive(Debug, Args)]
#[command(
    long_about = "Record a program's memory over time and say whether it leaks.\n\n\
        Samples RSS, VMS, USS, PSS, swap and peak RSS of the process and all its descendants \
        from /proc, writes them to a capture file, and at the end prints a verdict: growing \
        (with a rate and confidence interval), plateau, sawtooth or stable. Stops when the \
        program exits, on Ctrl-C, or after --duration; the capture is complete in every case.",
    after_help = "Examples:\n  \
        memsleuth watch -- python app.py --port 8000\n  \
        memsleuth watch -p 1234 --duration 10m --interval 1s -o server.msl\n  \
        memsleuth watch --check -- python -m pytest tests/test_soak.py   # exit 3 if growing"
)]
pub struct WatchArgs {
    /// Capture file to write [default: memsleuth-watch-<pid>.msl]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Time between samples (e.g. 10ms, 0.5s, 2s)
    #[arg(short, long, default_value = "100ms", value_parser = parse_duration, allow_hyphen_values = true)]
    interval: Duration,
    /// Stop after this long (e.g. 30s, 10m); the program keeps running
    #[arg(short, long, value_parser = parse_duration, allow_hyphen_values = true)]
    duration: Option<Duration>,
    /// Watch a running process (and its descendants) instead of starting one
    #[arg(
        short,
        long,
        value_name = "PID",
        conflicts_with = "command",
        value_parser = parse_pid,
        allow_hyphen_values = true
    )]
    pid: Option<u32>,
    /// Do not follow child processes
    #[arg(long)]
    no_children: bool,
    /// Read only RSS, VMS, swap and peak (no USS/PSS, which cost a page-table walk)
    #[arg(long)]
    basic: bool,
    /// Exit with code 3 when the verdict is `growing` (for CI)
    #[arg(long)]
    check: bool,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
    /// No live status line
    #[arg(short, long)]
    quiet: bool,
    /// The program to run, after `--`
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Accepts humantime durations ("100ms", "1m30s") and plain seconds ("0.5"), from 1 ms to a
/// year.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let max = Duration::from_secs(crate::MAX_SECONDS);
    let too_long = || "longer than a year; give at most 1y (365.25 days)".to_string();
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_nan() => return Err("not a duration; try 100ms, 2s or 5m".into()),
        Ok(secs) if secs < 0.0 => return Err("must be positive; try 100ms, 2s or 5m".into()),
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(|_| too_long())?,
        Err(_) if s.trim().starts_with('-') => {
            return Err("must be positive; try 100ms, 2s or 5m".into())
        }
        Err(_) => humantime::parse_duration(s).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            e => format!("`{s}` is not a duration ({e}); try 100ms, 2s or 5m"),
        })?,
    };
    if d > max {
        return Err(too_long());
    }
    if d < Duration::from_millis(1) {
        return Err("too short; use at least 1ms".into());
    }
    Ok(d)
}

/// `--pid`: a process ID, a positive whole number.
pub(crate) fn parse_pid(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("not a process ID; PIDs start at 1".into()),
        Ok(pid) => Ok(pid),
        Err(_) => Err("not a process ID; give a positive whole number (see `ps`)".into()),
    }
}

fn spawn(command: &[String]) -> anyhow::Result<Child> {
    let (program, args) = command
        .split_first()
        .context("no command given after `--`")?;
    Command::new(program).args(args).spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("command not found: `{program}` (is it installed and on PATH?)")
        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow::anyhow!("cannot execute `{program}`: permission denied")
        } else {
            anyhow::Error::new(e).context(format!("cannot start `{program}`"))
        }
    })
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        _ => ExitStatus::Unknown,
    }
}

/// The exit code `watch` returns for a program that ended with `status`, as a shell would.
fn shell_code(status: ExitStatus) -> Option<i32> {
    match status {
        ExitStatus::Code(c) => Some(c),
        ExitStatus::Signal(s) => Some(128 + s),
        _ => None,
    }
}

/// Creates the capture file before anything starts, so a bad path fails before the program runs.
fn create_output(path: &PathBuf) -> anyhow::Result<File> {
    File::create(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot write capture {}: {}; choose another path with -o",
            path.display(),
            crate::io_reason(&e)
        )
    })
}

/// A recorder error while sampling into `output`, in words that name the file.
fn capture_error(output: &Path, e: memsleuth_recorder::RecorderError) -> anyhow::Error {
    match e {
        memsleuth_recorder::RecorderError::Format(memsleuth_format::FormatError::Io(io)) => {
            anyhow::anyhow!(
                "cannot write capture {}: {}; choose another path with -o",
                output.display(),
                crate::io_reason(&io)
            )
        }
        other => other.into(),
    }
}

/// Opens `pid` once, so a process that cannot be watched fails before any file is created.
fn check_pid(pid: u32, detail: Detail) -> anyhow::Result<()> {
    match Current::open(pid, detail) {
        Ok(_) => Ok(()),
        // USS and PSS need the right to inspect the process (the kernel's ptrace rules); RSS,
        // VMS, swap and peak do not
        Err(PlatformError::PermissionDenied { owner, foreign, .. })
            if detail == Detail::Full && Current::open(pid, Detail::Basic).is_ok() =>
        {
            bail!(
                "no permission to read the USS and PSS of PID {pid} (owned by uid {owner}); \
                 --basic watches its RSS, VMS, swap and peak, which need no special permission{}",
                if foreign {
                    ", or run memsleuth as that user or as root"
                } else {
                    ""
                }
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// A program that ended before its first sample: there is no series to judge, so no capture.
/// Says so (a program's memory cannot be read once it has exited) and returns its exit code.
fn ended_unsampled(
    args: &WatchArgs,
    output: &PathBuf,
    status: Option<std::process::ExitStatus>,
) -> i32 {
    // only a file this watch wrote: `-o /dev/null` names a device, which root could unlink
    if std::fs::symlink_metadata(output).is_ok_and(|m| m.is_file() || m.is_symlink()) {
        let _ = std::fs::remove_file(output);
    }
    crate::err(&format!(
        "memsleuth: note: `{}` exited ({}) before its first sample, due {} after its start; \
         no capture written (a shorter --interval samples shorter programs)\n",
        crate::commands::short_command(&args.command),
        status.map_or("unknown status".into(), |s| s.to_string()),
        humantime::format_duration(args.interval),
    ));
    status
        .and_then(|s| shell_code(exit_status(s)))
        .unwrap_or(crate::EXIT_ERROR)
}

pub fn run(args: WatchArgs) -> anyhow::Result<i32> {
    if args.pid.is_none() && args.command.is_empty() {
        return Err(crate::usage(
            "nothing to watch; give a PID with -p, or a command after `--` \
             (e.g. `memsleuth watch -- python app.py`)",
        ));
    }
    let detail = if args.basic {
        Detail::Basic
    } else {
        Detail::Full
    };
    // check the PID before creating any file
    if let Some(pid) = args.pid {
        check_pid(pid, detail)?;
    }
    let default_name = |pid: u32| PathBuf::from(format!("memsleuth-watch-{pid}.msl"));
    let (output, file) = match &args.output {
        Some(p) => (p.clone(), Some(create_output(p)?)),
        None => match args.pid {
            Some(pid) => (default_name(pid), Some(create_output(&default_name(pid))?)),
            None => (PathBuf::new(), None),
        },
    };

    let signals = StopOnSignal::install();
    let mut child = match args.pid {
        Some(_) => None,
        None => Some(spawn(&args.command)?),
    };
    let started = Instant::now();
    let root = args.pid.or(child.as_ref().map(Child::id)).unwrap_or(0);
    let (output, file) = match file {
        Some(f) => (output, f),
        None => {
            let path = default_name(root);
            let f = create_output(&path)?;
            (path, f)
        }
    };

    let mut cfg = RssConfig::new(root, args.interval);
    cfg.detail = detail;
    cfg.children = !args.no_children;
    let header = Header {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        argv: if args.command.is_empty() {
            Current::command_line(root)
        } else {
            args.command.clone()
        },
        hostname: memsleuth_recorder::hostname(),
        ..Header::default()
    };
    let mut sampler = match RssSampler::new(BufWriter::new(file), header, cfg) {
        Ok(s) => s,
        // a program that ends at once can be gone before it is opened
        Err(memsleuth_recorder::RecorderError::Platform(PlatformError::NoSuchProcess(_)))
            if child.is_some() =>
        {
            let status = child.as_mut().map(Child::wait).transpose()?;
            return Ok(ended_unsampled(&args, &output, status));
        }
        Err(e) => return Err(e.into()),
    };

    let mut status_line = StatusLine::new(args.quiet || args.json);
    // The first reading of a program memsleuth starts comes one interval in: just after exec,
    // before its dynamic loader has run, a program holds a page or two, which is no measure of
    // it at start. A running process is read at once.
    let mut next = match child {
        Some(_) => started + args.interval,
        None => started,
    };
    // the one place the child is reaped: Some(status) once it has exited
    let mut exited: Option<std::process::ExitStatus> = None;
    let mut poll = |exited: &mut Option<std::process::ExitStatus>| -> anyhow::Result<()> {
        if let (None, Some(c)) = (&exited, child.as_mut()) {
            *exited = c.try_wait()?;
        }
        Ok(())
    };
    let reason = loop {
        // sleep in short slices so Ctrl-C and a child's exit are noticed promptly; the tick
        // after an exit still records the descendants that outlive the root
        while Instant::now() < next && !signals.requested() && exited.is_none() {
            let left = next.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(20)));
            poll(&mut exited)?;
        }
        let tick = sampler.tick().map_err(|e| capture_error(&output, e))?;
        status_line.update(tick.t, tick.total_rss, tick.processes);
        poll(&mut exited)?;
        if let Some(status) = exited {
            sampler.root_exited(exit_status(status));
            break EndReason::TargetExited;
        }
        if args.pid.is_some() && !tick.root_alive {
            break EndReason::TargetExited;
        }
        if signals.requested() {
            break EndReason::Interrupted;
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break EndReason::Duration;
        }
        // after a stall (a stopped process, a suspended laptop) resume the rhythm instead of
        // firing a burst of catch-up ticks; intervals are at most a year, so this cannot overflow
        let now = Instant::now();
        next += args.interval;
        if next < now {
            next = now + args.interval;
        }
    };
    let root_status = exited.map_or(ExitStatus::default(), exit_status);
    let samples = sampler.samples();
    status_line.clear();
    sampler
        .finish(reason, root_status)
        .map_err(|e| capture_error(&output, e))?
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write capture {}", output.display()))?;
    drop(signals);
    if samples == 0 && exited.is_some() {
        return Ok(ended_unsampled(&args, &output, exited));
    }
    poll(&mut exited)?;
    if args.pid.is_none() && exited.is_none() {
        crate::err(&format!(
            "memsleuth: note: `{}` (pid {root}) is still running; memsleuth stopped watching it\n",
            crate::commands::short_command(&args.command),
        ));
    }

    let report = super::load_report(&output)?;
    let shown = output.display().to_string();
    if args.json {
        crate::out(&format!(
            "{}\n",
            memsleuth_render::summary::summary_json(&report, Some(&shown))
        ));
    } else {
        crate::err(&format!(
            "\n{}",
            memsleuth_render::summary::summary_text(&report, Some(&shown))
        ));
    }
    if args.check && report.verdict.kind == memsleuth_analysis::VerdictKind::Growing {
        return Ok(crate::EXIT_GROWING);
    }
    Ok(match (reason, shell_code(root_status)) {
        (_, Some(code)) => code,
        (EndReason::Interrupted, None) => 130,
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_people_type_them() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1y"), Ok(Duration::from_secs(31_557_600)));
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("0").unwrap_err().contains("too short"));
        assert!(parse_duration("-1")
            .unwrap_err()
            .contains("must be positive"));
    }

    #[test]
    fn absurd_durations_are_refused_not_panicked_on() {
        for absurd in [
            "1e99",
            "1e20",
            "1e300",
            "inf",
            "18446744073709551615s",
            "400days",
            "2y",
        ] {
            let why = parse_duration(absurd).unwrap_err();
            assert!(why.contains("longer than a year"), "{absurd}: {why}");
        }
        assert!(parse_duration("NaN")
            .unwrap_err()
            .contains("not a duration"));
    }
}
