//! Loading memsleuth's extension into a running CPython process and starting its agent, through
//! gdb: attach, wait for a thread at a safe point, call `dlopen` and the agent's entry point on
//! it, detach. See docs/attach.md for why gdb and what "safe" means.
//!
//! The work inside gdb is a short gdb-Python script (`SCRIPT`), which prints one `MEMSLEUTH:`
//! line saying how it ended; everything else gdb prints is only kept for the error message.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run inside gdb. A thread is safe to call into when none of its frames is in the C allocator,
/// the dynamic linker or thread creation (their locks are not reentrant: a call that needs one
/// the stopped thread holds would wait forever). While the call runs, the other threads run too
/// (scheduler-locking off), so a lock one of them holds is released as usual.
///
/// First choice: a thread blocked in a system call (asleep, waiting for I/O or a condition):
/// its place is known exactly. Otherwise the script sets breakpoints at the entry of functions
/// the interpreter calls often, from Python code, holding nothing (`PyEval_SaveThread`,
/// `PyObject_Malloc`, `PyObject_Free`, `_PyEval_EvalFrameDefault`), lets the target run until one
/// is hit, and calls there.
const SCRIPT: &str = r#"
import os, re
import gdb

LIB = os.environ["MEMSLEUTH_AGENT_LIB"]
REQUEST = os.environ["MEMSLEUTH_AGENT_REQUEST"]
UNSAFE = re.compile(
    r"^(__libc_|__GI___libc_|__GI_)?(malloc|calloc|realloc|free|cfree|memalign|posix_memalign"
    r"|aligned_alloc|valloc|pvalloc|reallocarray)$|^_int_|^tcache|^sysmalloc|^systrim|arena"
    r"|^_dl_|^dl_|^__?dl|^dlopen|^dlsym|^dlclose|^dlmopen|^__tls_get_addr|^pthread_create"
    r"|^allocate_stack|^__nptl_|^__?fork|^_Fork|^__run_fork_handlers|^__libc_fork"
)
BLOCKED = re.compile(
    r"nanosleep|read$|recv|poll|select|epoll_wait|epoll_pwait|accept|wait4|waitpid|futex"
    r"|^pause$|sigtimedwait|sigwaitinfo|syscall"
)
ENTRIES = ["PyEval_SaveThread", "PyObject_Malloc", "PyObject_Free", "_PyEval_EvalFrameDefault"]


def say(text):
    print("MEMSLEUTH: " + text, flush=True)


def frames(limit=64):
    names = []
    try:
        f = gdb.newest_frame()
    except gdb.error:
        return names
    while f is not None and len(names) < limit:
        names.append(f.name() or "")
        try:
            f = f.older()
        except gdb.error:
            break
    return names


def safe(names):
    return not any(UNSAFE.search(n) for n in names if n)


def blocked_thread():
    for t in gdb.selected_inferior().threads():
        t.switch()
        names = frames()
        if not names or not BLOCKED.search(names[0]) or not safe(names):
            continue
        # a bare futex wait may be a lock's (the allocator's): only a condition's or a
        # semaphore's is known to hold nothing
        if "futex" in names[0] and not any("pthread_cond" in n or "sem_" in n for n in names):
            continue
        return t
    return None


def stopped_at_entry():
    points = []
    for name in ENTRIES:
        try:
            points.append(gdb.Breakpoint(name, internal=True))
        except gdb.error:
            pass
    if not points:
        return False
    try:
        for _ in range(1000):
            gdb.execute("continue", to_string=True)
            if safe(frames()):
                return True
        return False
    finally:
        for p in points:
            p.delete()


def call(expr):
    return gdb.parse_and_eval(expr)


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def inject():
    gdb.execute("set scheduler-locking off")
    gdb.execute("set unwindonsignal on")
    if blocked_thread() is None and not stopped_at_entry():
        say("error no-safe-point")
        return
    handle = int(call("((void*(*)(const char*, int))dlopen)(%s, 2)" % c_string(LIB)))
    if handle == 0:
        reason = call("((char*(*)(void))dlerror)()")
        say("error dlopen " + (reason.string() if int(reason) else "?"))
        return
    start = int(call('((void*(*)(void*, const char*))dlsym)(%d, "memsleuth_agent_start")' % handle))
    if start == 0:
        say("error no-agent")
        return
    code = int(call("((int(*)(const char*))%d)(%s)" % (start, c_string(REQUEST))))
    say("ok" if code == 0 else "error agent %d" % code)


try:
    inject()
except gdb.error as e:
    say("error gdb " + str(e).replace("\n", " "))
"#;

/// How an injection failed, for the attacher's one line.
#[derive(Debug)]
pub enum Failure {
    /// gdb is not installed.
    NoGdb,
    /// ptrace was refused (another user's process, Yama's `ptrace_scope`, a container).
    PtraceRefused(String),
    /// The process ended while gdb was attached or attaching.
    Exited,
    /// No thread reached a safe point before the timeout.
    Timeout,
    /// Anything else, in gdb's words or the script's.
    Other(String),
}

/// Loads `library` into process `pid` and calls its `memsleuth_agent_start(request)`, within
/// `timeout`. On timeout gdb is killed (the kernel detaches it) and the process is sent
/// `SIGCONT`, so it never stays stopped.
pub fn inject(
    pid: u32,
    library: &Path,
    request: &Path,
    dir: &Path,
    timeout: Duration,
) -> Result<(), Failure> {
    let script = dir.join("inject.py");
    std::fs::write(&script, SCRIPT).map_err(|e| Failure::Other(e.to_string()))?;
    let (out_path, err_path) = (dir.join("gdb.out"), dir.join("gdb.err"));
    let child = Command::new("gdb")
        .args(["-q", "-nx", "-batch", "-p", &pid.to_string(), "-x"])
        .arg(&script)
        .env("MEMSLEUTH_AGENT_LIB", library)
        .env("MEMSLEUTH_AGENT_REQUEST", request)
        // gdb's own Python must not see the caller's virtualenv or PYTHONPATH
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        // files, not pipes: gdb's warnings about a process with many libraries could fill a
        // pipe nobody reads until gdb exits
        .stdout(said_file(&out_path)?)
        .stderr(said_file(&err_path)?)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::NoGdb),
        Err(e) => return Err(Failure::Other(format!("cannot start gdb: {e}"))),
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Failure::Other(e.to_string())),
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        // SAFETY: a signal to a process; SIGCONT only resumes it if it was left stopped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        return Err(Failure::Timeout);
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let said = out
        .lines()
        .chain(err.lines())
        .find_map(|l| l.strip_prefix("MEMSLEUTH: "))
        .map(str::to_string);
    match said.as_deref() {
        Some("ok") => Ok(()),
        Some("error no-safe-point") => Err(Failure::Timeout),
        Some(other) => {
            if !memsleuth_platform::alive(pid) {
                return Err(Failure::Exited);
            }
            Err(Failure::Other(
                other.trim_start_matches("error ").to_string(),
            ))
        }
        None => {
            let text = format!("{out}\n{err}");
            if text.contains("ptrace: Operation not permitted")
                || text.contains("Could not attach to process")
            {
                return Err(Failure::PtraceRefused(first_line(&err)));
            }
            if !memsleuth_platform::alive(pid) || text.contains("No such process") {
                return Err(Failure::Exited);
            }
            Err(Failure::Other(first_line(&err)))
        }
    }
}

fn said_file(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::File::create(path)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("warning:"))
        .unwrap_or("gdb said nothing")
        .to_string()
}

/// Whether gdb is on PATH, for the check before anything is made.
pub fn have_gdb() -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("gdb").is_file()))
        .unwrap_or(false);
    if !found {
        return Err(no_gdb());
    }
    Ok(())
}

/// The one line for a machine without gdb.
pub fn no_gdb() -> anyhow::Error {
    anyhow::anyhow!("`memsleuth attach` needs gdb to enter the process, and it is not on PATH; install it (`apt install gdb`, `dnf install gdb`)")
}

/// `kernel.yama.ptrace_scope`, when the kernel has Yama.
pub fn ptrace_scope() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}
