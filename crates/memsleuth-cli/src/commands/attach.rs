//! `memsleuth attach PID`: record a running Python process's allocations for a while, then
//! leave it as it was, and give the verdict on what was recorded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use super::attach_pass;
use crate::inject::{self, Failure};
use crate::signals::StopOnSignal;
use crate::Agent;

#[derive(Debug, Args)]
#[command(
    about = "Record a running Python process's allocations for a while, then leave it as it was",
    long_about = "Enter a running CPython 3.9-3.13 process (with gdb, at a safe point), record \
        every allocation with its Python stack and a census of live objects every --census \
        seconds, for --duration or until Ctrl-C, then stop, take memsleuth's hooks, threads and \
        modules out of it and leave. The process goes on as before. The leak verdict on what was \
        recorded follows, as after `memsleuth run`.\n\n\
        The process must run the same Python version as this memsleuth and belong to you (or \
        you are root). It loads memsleuth from this installation.",
    after_help = "Examples:\n  \
        memsleuth attach 1234                           until Ctrl-C\n  \
        memsleuth attach 1234 --duration 60s -o app.msl one minute\n  \
        memsleuth attach 1234 --sample 512KiB           a sample by bytes, for busy services\n  \
        memsleuth attach 1234 --native                  C allocations of its extensions too\n  \
        memsleuth attach 1234 --live                    watch it live; q stops and detaches\n  \
        memsleuth attach 1234 --why 'app.cache'         who keeps that object alive\n  \
        memsleuth attach 1234 --census                  live objects by type, now"
)]
pub struct AttachArgs {
    /// The process to attach to
    #[arg(value_name = "PID", value_parser = super::watch::parse_pid)]
    pid: u32,
    /// How long to record (e.g. 30s, 5m); until Ctrl-C without it
    #[arg(short, long, value_parser = super::watch::parse_duration, allow_hyphen_values = true)]
    duration: Option<Duration>,
    /// Record a Poisson sample, one per BYTES allocated on average (e.g. 512KiB, 1MiB)
    #[arg(long, value_name = "BYTES", value_parser = super::run::parse_sample)]
    sample: Option<u64>,
    /// Seconds between censuses of live objects while recording (0: none). Alone, without a
    /// value: take one census of the process now, print it and leave, recording nothing
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "now", value_parser = parse_census_arg, allow_hyphen_values = true)]
    census: Option<CensusArg>,
    /// Evaluate EXPR in the process' __main__ (e.g. `app.cache`, `SESSIONS[0]`), print why
    /// that object is still alive (its reference chains from a root) and leave, recording
    /// nothing
    #[arg(long, value_name = "EXPR", conflicts_with_all = ["duration", "sample", "live"])]
    why: Option<String>,
    /// Also record the C allocator (malloc, calloc, realloc, free, the aligned allocators,
    /// mmap/munmap/mremap) of the process' libraries and extension modules, those it loads
    /// while attached included: their calls are redirected to memsleuth's while attached, and
    /// put back at detach (Linux). Calls through a pointer taken earlier or with dlsym (ctypes'
    /// CDLL(None).malloc) are not seen, as they are with `run --native`
    #[arg(long, conflicts_with = "why")]
    native: bool,
    /// Where to write the capture [default: memsleuth-PID.msl]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// How long to wait for the process to reach a safe point, and then for memsleuth's thread
    /// there to get the GIL (gdb's own start is not counted)
    #[arg(long, default_value = "30s", value_parser = super::watch::parse_duration)]
    timeout: Duration,
    /// Do not print the verdict at the end
    #[arg(long)]
    no_report: bool,
    /// Watch the recording in the terminal as it goes (`memsleuth live`); leaving the view
    /// stops the recording and detaches
    #[arg(long)]
    live: bool,
}

/// `--census`: seconds between censuses while recording, or (alone) one census now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CensusArg {
    Every(f64),
    Now,
}

fn parse_census_arg(text: &str) -> Result<CensusArg, String> {
    if text == "now" {
        return Ok(CensusArg::Now);
    }
    super::run::parse_census(text).map(CensusArg::Every)
}

/// What the agent does in the process: record, or answer one question and leave.
fn mode(args: &AttachArgs) -> serde_json::Value {
    match (&args.why, args.census) {
        (Some(expr), _) => serde_json::json!({"kind": "why", "expr": expr}),
        (None, Some(CensusArg::Now)) => serde_json::json!({"kind": "census"}),
        (None, _) => serde_json::json!({"kind": "record"}),
    }
}

/// Allowed for gdb's own start (attaching, reading symbols) on top of `--timeout`.
const GDB_STARTUP: Duration = Duration::from_secs(20);

pub fn run(args: AttachArgs, agent: Option<&Agent>) -> anyhow::Result<i32> {
    let Some(agent) = agent else {
        bail!("`memsleuth attach` loads memsleuth's Python extension into the process: use the `memsleuth` command installed by pip, or `python -m memsleuth attach`");
    };
    let pid = args.pid;
    let owner = check_target(pid, agent)?;
    inject::have_gdb()?;
    let given = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("memsleuth-{pid}.msl")));
    let output = std::path::absolute(&given)
        .with_context(|| format!("cannot tell where {} is", given.display()))?;
    if args.live {
        super::live::need_terminal(&given)?;
    }
    let session = Session::new(pid)?;
    let request = session.request();
    let census = match args.census {
        Some(CensusArg::Every(s)) => s,
        Some(CensusArg::Now) => 0.0,
        None => 1.0,
    };
    let asks = mode(&args);
    let recording = asks["kind"] == "record";
    let body = serde_json::json!({
        "mode": asks,
        "output": output.display().to_string(),
        "duration": args.duration.map(|d| d.as_secs_f64()),
        "sample": args.sample,
        "census": census,
        "native": args.native,
        "attacher": std::process::id(),
    });
    std::fs::write(&request, body.to_string())
        .with_context(|| format!("cannot write {}", request.display()))?;
    session.hand_over(owner)?;
    crate::err(&format!("memsleuth: attaching to process {pid} ...\n"));
    let stop = StopOnSignal::install();
    // gdb reads the symbols of the interpreter and its libraries before it looks for a safe
    // point: that takes seconds on a busy machine, and is not the process' doing
    let within = args.timeout + GDB_STARTUP;
    if let Err(f) = inject::inject(pid, &agent.library, &request, &session.dir, within) {
        return Err(failure(pid, f, within));
    }
    let started = Instant::now();
    // the agent thread waits for the GIL; a process that never lets it go is not attached
    loop {
        match session.status().as_deref() {
            Some("answered") if !recording => {
                let answer = std::fs::read_to_string(session.file("answer"))
                    .context("the process' answer was lost")?;
                crate::out(&answer);
                crate::err(&format!(
                    "memsleuth: detached from process {pid}, which goes on as before\n"
                ));
                return Ok(0);
            }
            Some("started") | Some("done") | Some("done hooks-kept") => break,
            Some(s) if s.starts_with("holders ") => break,
            Some(s) if s.starts_with("error ") && !recording => {
                bail!("no answer from process {pid}: {}", &s[6..])
            }
            Some(s) if s.starts_with("error ") => {
                bail!("memsleuth could not start in process {pid}: {}", &s[6..])
            }
            _ => {}
        }
        if !memsleuth_platform::alive(pid) {
            bail!("process {pid} exited before memsleuth started in it");
        }
        if started.elapsed() > args.timeout || stop.requested() {
            // the session's directory goes with `session`: memsleuth's thread in the process
            // finds no request when it gets the GIL, and ends without recording
            let within = humantime::format_duration(args.timeout);
            let waited = session.status();
            bail!("{}", stuck(pid, waited.as_deref(), &within.to_string()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let until = match args.duration {
        Some(d) => format!("for {}", humantime::format_duration(d)),
        None => "until Ctrl-C".into(),
    };
    crate::err(&format!(
        "memsleuth: recording process {pid} {until}; capture: {}\n",
        given.display()
    ));
    // the leak report's pass, kept here rather than in the process (see `attach_pass`); the
    // live view reads the capture every second, and so is the one to read it on
    let pass = attach_pass::shared_pass(&output);
    let following = attach_pass::Following::spawn(
        &output,
        Arc::clone(&pass),
        args.live,
        session.file("status"),
        session.file("wanted"),
    );
    let mut asked = false;
    let mut answered = false;
    if args.live {
        // the view takes the terminal (Ctrl-C is a key there): leaving it ends the recording
        let watched = super::live::follow(&pass, &output, Duration::from_secs(1));
        if !session.status().is_some_and(|s| s.starts_with("done")) {
            asked = true;
            session.ask_stop()?;
        }
        watched?;
    }
    let ended = loop {
        let s = session.status();
        if let Some(done) = s.as_deref().and_then(|s| s.strip_prefix("done")) {
            break done.trim().to_string();
        }
        if let Some(e) = s.as_deref().and_then(|s| s.strip_prefix("error ")) {
            bail!("memsleuth failed in process {pid}: {e}");
        }
        // no thread to answer the process (it could not start): answered from here, on the
        // pass the live view read on (unread without it)
        if following.is_none() && !answered {
            if let Some(upto) = attach_pass::holders_asked(&session.file("status")) {
                let mut held = pass.lock().unwrap_or_else(PoisonError::into_inner);
                attach_pass::answer(&session.file("wanted"), &mut held, upto)
                    .context("cannot answer the process")?;
                answered = true;
            }
        }
        if !memsleuth_platform::alive(pid) {
            break "exiting".to_string();
        }
        if stop.requested() && !asked {
            asked = true;
            session.ask_stop()?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stop);
    // the files shared with the process are done with: gone now, not after the report, which a
    // signal may end (the terminal closing, a second Ctrl-C)
    drop(session);
    match ended.as_str() {
        "exiting" => crate::err(&format!(
            "memsleuth: process {pid} exited while attached; the capture has what it recorded until then\n"
        )),
        "hooks-kept" => crate::err(&format!(
            "memsleuth: detached from process {pid}, which goes on as before, but for memsleuth's allocator wrappers: an allocator was installed over them while attached (tracemalloc?), so they stay under it, recording nothing\n"
        )),
        _ => crate::err(&format!(
            "memsleuth: detached from process {pid}, which goes on as before\n"
        )),
    }
    if args.no_report {
        return Ok(0);
    }
    // the pass read all but the last moments already: it reads the rest, and is the verdict
    let made = following
        .and_then(attach_pass::Following::take_back)
        .and_then(attach_pass::verdict)
        .map(Box::new);
    super::run::report(&output, &given, true, made)
        .with_context(|| format!("cannot report on {}", given.display()))?;
    Ok(0)
}

/// The checks that need nothing from the process but `/proc`: it exists, it is the caller's to
/// trace, it runs the Python this memsleuth was built for. Returns its owner.
fn check_target(pid: u32, agent: &Agent) -> anyhow::Result<u32> {
    if !memsleuth_platform::alive(pid) {
        bail!("no process with PID {pid}; check it with `ps -p {pid}`");
    }
    if pid == std::process::id() {
        bail!("process {pid} is this memsleuth; give the PID of the program to attach to");
    }
    let owner =
        memsleuth_platform::owner(pid).with_context(|| format!("no process with PID {pid}"))?;
    // SAFETY: no preconditions.
    let me = unsafe { libc::geteuid() };
    if me != 0 && owner != me {
        bail!(
            "process {pid} belongs to another user (uid {owner}); attach as that user, or as root"
        );
    }
    let Some((major, minor, debug)) = python_of(pid) else {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        bail!(
            "process {pid} ({}) is not a Python process: no CPython 3.9-3.13 interpreter or libpython is loaded in it",
            name.trim()
        );
    };
    let (want_major, want_minor) = agent.python;
    if (major, minor, debug) != (want_major, want_minor, agent.debug) {
        let label = memsleuth_render::instruments::python_label;
        bail!(
            "process {pid} runs Python {}, and this memsleuth is installed in Python {}; attach from a Python {major}.{minor} environment with memsleuth installed (`python{major}.{minor} -m pip install memsleuth`, then `python{major}.{minor} -m memsleuth attach {pid}`)",
            label(major, minor, debug),
            label(want_major, want_minor, agent.debug)
        );
    }
    if inject::ptrace_scope() == Some(3) {
        bail!("this kernel forbids attaching to processes (kernel.yama.ptrace_scope is 3) until it restarts; start the program under `memsleuth run` instead");
    }
    if let Some(tracer) = memsleuth_platform::tracer(pid) {
        let name = std::fs::read_to_string(format!("/proc/{tracer}/comm")).unwrap_or_default();
        bail!(
            "process {pid} is being traced by process {tracer} ({}), and a process has one tracer at a time; detach that debugger first",
            name.trim()
        );
    }
    Ok(owner)
}

/// The Python version a process runs, from the objects it mapped: `libpython3.X[d].so`, or an
/// executable named `python3.X[d]`.
fn python_of(pid: u32) -> Option<(u8, u8, bool)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let names = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter_map(|p| Path::new(p).file_name()?.to_str().map(str::to_string));
    let mut exe_version = None;
    if let Some(name) = exe.as_ref().and_then(|e| e.file_name()?.to_str()) {
        exe_version = version_in(name, "python", "");
    }
    names
        .filter_map(|n| version_in(&n, "libpython", ".so"))
        .next()
        .or(exe_version)
}

/// `3.X` and a debug `d` from `libpython3.11d.so.1.0` (prefix `libpython`, suffix `.so`) or
/// `python3.11` (suffix empty: the name ends there).
fn version_in(name: &str, prefix: &str, suffix: &str) -> Option<(u8, u8, bool)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix("3.")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let minor: u8 = digits.parse().ok()?;
    let tail = &rest[digits.len()..];
    let (debug, tail) = match tail.strip_prefix('d') {
        Some(t) => (true, t),
        None => (false, tail),
    };
    let ok = if suffix.is_empty() {
        tail.is_empty()
    } else {
        tail.starts_with(suffix)
    };
    (ok && (9..=13).contains(&minor)).then_some((3, minor, debug))
}

/// The attach's own directory of files shared with the process (request, status, stop), gone
/// when the attach ends.
struct Session {
    dir: PathBuf,
}

impl Session {
    fn new(pid: u32) -> anyhow::Result<Session> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "memsleuth-attach-{pid}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).with_context(|| {
            format!(
                "cannot make {}; set TMPDIR to a writable directory",
                dir.display()
            )
        })?;
        Ok(Session { dir })
    }

    /// The request file; the agent's files are named after it (see `_attach_agent.py`).
    fn request(&self) -> PathBuf {
        self.dir.join("request.json")
    }

    /// One of the agent's files beside the request: `status`, `stop`, `answer`.
    fn file(&self, what: &str) -> PathBuf {
        self.dir.join(format!("request.json.{what}"))
    }

    /// The agent's last status line, when it wrote one.
    fn status(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.file("status")).ok()?;
        text.lines().last().map(str::to_string)
    }

    /// Asks the agent to end the recording (it looks for the stop file), and says so.
    fn ask_stop(&self) -> anyhow::Result<()> {
        crate::err("memsleuth: stopping and detaching ...\n");
        std::fs::write(self.file("stop"), b"").context("cannot ask the process to stop")
    }

    /// Lets the process write its status into the directory when it runs as another user
    /// (`owner`; an attach by root).
    fn hand_over(&self, owner: u32) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } == owner {
            return Ok(());
        }
        let c = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes())?;
        // SAFETY: a NUL-terminated path; -1 leaves the group as it is.
        if unsafe { libc::chown(c.as_ptr(), owner, u32::MAX) } != 0 {
            bail!("cannot give {} to uid {owner}", self.dir.display());
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The one line for an agent that did not start in time, by how far it got (the stages its
/// status file names, see `_attach_agent.py`).
fn stuck(pid: u32, stage: Option<&str>, within: &str) -> String {
    let waiting = match stage {
        None => "memsleuth's thread did not start in it",
        Some("thread") => "it did not let memsleuth's thread take the GIL (C code holding it?)",
        Some("gil") => "memsleuth's thread took the GIL, but importing memsleuth did not finish",
        Some(_) => "memsleuth's tracker did not finish starting",
    };
    format!("process {pid}: {waiting} within {within}; it was left running as it was; try again, or a longer --timeout")
}

/// ptrace refused, in words that name the kernel setting that refused it (`scope`: Yama's
/// `ptrace_scope`, when the kernel has Yama).
fn refused(pid: u32, scope: Option<u8>, said: &str) -> anyhow::Error {
    let why = match scope {
        Some(1) => "kernel.yama.ptrace_scope is 1: only a parent may trace its child",
        Some(2) => "kernel.yama.ptrace_scope is 2: only root may trace",
        _ => "ptrace was refused (a container without CAP_SYS_PTRACE, or another user's process)",
    };
    anyhow::anyhow!("cannot attach to process {pid}: {why} (gdb: {said}); run as root, or allow it with `sudo sysctl kernel.yama.ptrace_scope=0`")
}

/// An injection's failure as the one line the user reads.
fn failure(pid: u32, f: Failure, timeout: Duration) -> anyhow::Error {
    match f {
        Failure::NoGdb => inject::no_gdb(),
        Failure::PtraceRefused(said) => refused(pid, inject::ptrace_scope(), &said),
        Failure::Exited => anyhow::anyhow!("process {pid} exited while memsleuth was attaching; nothing was recorded"),
        Failure::Timeout => anyhow::anyhow!("process {pid} reached no safe point to enter within {} (busy in C code that never calls into Python?), and was left running as it was; try again, or a longer --timeout", humantime::format_duration(timeout)),
        Failure::Other(said) => anyhow::anyhow!("cannot enter process {pid}: {said}; it was left running as it was"),
    }
}

#[cfg(test)]
mod tests {
    use super::version_in;

    #[test]
    fn python_versions_are_read_from_library_and_executable_names() {
        assert_eq!(
            version_in("libpython3.11.so.1.0", "libpython", ".so"),
            Some((3, 11, false))
        );
        assert_eq!(
            version_in("libpython3.11d.so.1.0", "libpython", ".so"),
            Some((3, 11, true))
        );
        assert_eq!(version_in("python3.9", "python", ""), Some((3, 9, false)));
        assert_eq!(version_in("python3.13d", "python", ""), Some((3, 13, true)));
        assert_eq!(version_in("python3.14", "python", ""), None);
        assert_eq!(version_in("python3", "python", ""), None);
        assert_eq!(version_in("python3.11-config", "python", ""), None);
        assert_eq!(version_in("sleep", "python", ""), None);
    }
}
