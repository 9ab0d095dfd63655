//! `memsleuth watch`: the platform instrument. Samples the memory of a process tree over time,
//! writes a capture, and ends with a verdict.

use std::fs::File;
use std::io::BufWriter;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
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
    #[arg(short, long, default_value = "100ms", value_parser = parse_duration)]
    interval: Duration,
    /// Stop after this long (e.g. 30s, 10m); the program keeps running
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Watch a running process (and its descendants) instead of starting one
    #[arg(short, long, value_name = "PID", conflicts_with = "command")]
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

/// Accepts humantime durations ("100ms", "1m30s") and plain seconds ("0.5").
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("`{s}` is not a duration")),
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("`{s}` is not a duration ({e}); try 100ms, 2s or 5m"))?,
    };
    if d < Duration::from_millis(1) {
        return Err(format!("`{s}` is too short; use at least 1ms"));
    }
    Ok(d)
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

/// Creates the capture file before anything starts, so a bad path fails before the program runs.
fn create_output(path: &PathBuf) -> anyhow::Result<File> {
    File::create(path).map_err(|e| {
        // "No such file or directory", without the "(os error 2)" noise
        let why = e.to_string();
        let why = why.split(" (os error").next().unwrap_or(&why).to_string();
        anyhow::anyhow!(
            "cannot write capture {}: {why}; choose another path with -o",
            path.display()
        )
    })
}

pub fn run(args: WatchArgs) -> anyhow::Result<i32> {
    if args.pid.is_none() && args.command.is_empty() {
        bail!("nothing to watch: give a PID with -p, or a command after `--` (see `memsleuth watch --help`)");
    }
    let detail = if args.basic {
        Detail::Basic
    } else {
        Detail::Full
    };
    // check the PID before creating any file
    if let Some(pid) = args.pid {
        Current::open(pid, detail)?;
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
        Err(memsleuth_recorder::RecorderError::Platform(PlatformError::NoSuchProcess(_)))
            if child.is_some() =>
        {
            let status = child.as_mut().map(|c| c.wait()).transpose()?;
            let _ = std::fs::remove_file(&output);
            bail!(
                "`{}` exited ({}) before its memory could be sampled; nothing to report",
                args.command.join(" "),
                status.map_or("unknown status".into(), |s| s.to_string())
            );
        }
        Err(e) => return Err(e.into()),
    };

    let mut status_line = StatusLine::new(args.quiet || args.json);
    let started = Instant::now();
    let mut next = Instant::now();
    // the one place the child is reaped: Some(status) once it has exited
    let poll = |child: &mut Option<Child>| -> anyhow::Result<Option<ExitStatus>> {
        match child.as_mut() {
            Some(c) => Ok(c.try_wait()?.map(exit_status)),
            None => Ok(None),
        }
    };
    let mut exited: Option<ExitStatus> = None;
    let reason = loop {
        let tick = sampler.tick()?;
        status_line.update(tick.t, tick.total_rss, tick.processes);
        if exited.is_none() {
            exited = poll(&mut child)?;
        }
        if let Some(status) = exited {
            sampler.root_exited(status);
            break EndReason::TargetExited;
        }
        if child.is_none() && !tick.root_alive {
            break EndReason::TargetExited;
        }
        if signals.requested() {
            break EndReason::Interrupted;
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break EndReason::Duration;
        }
        next += args.interval;
        let now = Instant::now();
        if next < now {
            next = now + args.interval;
        }
        // sleep in short slices so Ctrl-C and a child's exit are noticed promptly; the tick
        // after an exit still records the descendants that outlive the root
        while Instant::now() < next && !signals.requested() && exited.is_none() {
            let left = next.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(20)));
            exited = poll(&mut child)?;
        }
    };
    let root_status = exited.unwrap_or_default();
    status_line.clear();
    sampler
        .finish(reason, root_status)?
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write capture {}", output.display()))?;
    drop(signals);
    if let Some(c) = child.as_mut() {
        if c.try_wait()?.is_none() {
            crate::err(&format!(
                "memsleuth: note: `{}` (pid {}) is still running; memsleuth stopped watching it\n",
                crate::commands::short_command(&args.command),
                c.id()
            ));
        }
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
    Ok(match (reason, root_status) {
        (_, ExitStatus::Code(c)) => c,
        (_, ExitStatus::Signal(s)) => 128 + s,
        (EndReason::Interrupted, _) => 130,
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
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("0").unwrap_err().contains("too short"));
        assert!(parse_duration("-1").is_err());
    }
}
