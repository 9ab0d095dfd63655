//! Linux: `/proc/<pid>/{statm,status,smaps_rollup}`, read with `pread` on file descriptors kept
//! open, and the `/proc/<pid>/fd` directory counted through one kept open, so a repeated reading
//! costs a few system calls and no allocation.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::sync::OnceLock;

use crate::{Detail, Memory, Os, PlatformError, ProcessMemory};

#[derive(Debug)]
pub struct Linux;

#[derive(Debug)]
pub struct LinuxProcess {
    pid: u32,
    statm: File,
    status: File,
    smaps_rollup: Option<File>,
    /// `/proc/<pid>/fd`; `None` when this user may not list it (another user's process).
    fd_dir: Option<File>,
    /// `/proc/self/task`, for our own thread count: a reading of ourselves skips `status`.
    task_dir: Option<File>,
    is_self: bool,
}

/// Peak RSS of the calling process from getrusage (the kernel's hiwater mark, in KiB).
fn own_peak_rss() -> Option<u64> {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    (ok && usage.ru_maxrss > 0).then(|| usage.ru_maxrss as u64 * 1024)
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    })
}

/// The owner of `/proc/<pid>`: the process' user (`None` when it is gone).
pub(crate) fn owner(pid: u32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// The process tracing `pid` (a debugger, strace): `TracerPid` of its `status`, when not 0.
pub(crate) fn tracer(pid: u32) -> Option<u32> {
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    let mut tracer = None;
    number_lines(&status, |key, n| {
        if key == b"TracerPid" && n != 0 {
            tracer = u32::try_from(n).ok();
        }
    });
    tracer
}

fn open_proc(pid: u32, name: &'static str) -> Result<File, PlatformError> {
    File::open(format!("/proc/{pid}/{name}")).map_err(|e| map_err(pid, name, e))
}

/// A `/proc/<pid>/` directory held open, or `None` when it cannot be (the kernel lets only the
/// owner, or root, open `fd`). Like the files, it stays bound to its process: once that exits,
/// listing it fails rather than showing a new process that took the PID.
fn open_proc_dir(pid: u32, name: &str) -> Option<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(format!("/proc/{pid}/{name}"))
        .ok()
}

fn fstat(file: &File) -> Option<libc::stat> {
    // SAFETY: fstat fills the zeroed struct it is given, from a descriptor `file` keeps open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(file.as_raw_fd(), &mut st) } == 0).then_some(st)
}

/// Open descriptors of the process whose `/proc/<pid>/fd` is `dir`.
fn count_fds(dir: &File) -> Option<u64> {
    // Linux 6.2 and later give the count as the directory's size, without listing it, so a
    // process with thousands of descriptors costs one call rather than a walk of all of them.
    // Older kernels say 0 there, as does a process with no descriptors: then list.
    match u64::try_from(fstat(dir)?.st_size) {
        Ok(n) if n > 0 => Some(n),
        _ => count_entries(dir),
    }
}

/// getdents64 wants its buffer aligned for `struct linux_dirent64`.
#[repr(C, align(8))]
struct DirBuf([u8; 4096]);

/// Entries of a directory held open, `.` and `..` aside, listed into a buffer on the stack: no
/// allocation per entry (as `read_dir` makes), since this runs on every sampler tick.
fn count_entries(dir: &File) -> Option<u64> {
    let fd = dir.as_raw_fd();
    // SAFETY: lseek on a descriptor `dir` keeps open; rewinds the listing for this reading.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } != 0 {
        return None;
    }
    let mut buf = DirBuf([0; 4096]);
    let mut count = 0u64;
    loop {
        // SAFETY: the kernel writes at most `buf.0.len()` bytes into the buffer it is given.
        let got =
            unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.0.as_mut_ptr(), buf.0.len()) };
        let got = match usize::try_from(got) {
            Ok(0) => return Some(count),
            Ok(n) => n.min(buf.0.len()),
            Err(_) if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        // each record: d_ino u64, d_off i64, d_reclen u16, d_type u8, then the name
        let mut at = 0;
        while at + 19 < got {
            let len = usize::from(u16::from_ne_bytes([buf.0[at + 16], buf.0[at + 17]]));
            if len == 0 {
                return None;
            }
            // descriptor names are digits: only `.` and `..` start with a dot
            if buf.0[at + 19] != b'.' {
                count += 1;
            }
            at += len;
        }
    }
}

/// Threads of the process whose `/proc/<pid>/task` is `dir`: the kernel reports the directory's
/// link count as 2 plus the number of threads, so no listing is needed.
fn count_threads(dir: &File) -> Option<u64> {
    // nlink_t is u64 on x86_64 but u32 on other targets (aarch64)
    #[allow(clippy::useless_conversion)]
    let links = u64::from(fstat(dir)?.st_nlink);
    links.checked_sub(2).filter(|&n| n > 0)
}

fn map_err(pid: u32, what: &'static str, e: std::io::Error) -> PlatformError {
    match e.kind() {
        ErrorKind::NotFound => PlatformError::NoSuchProcess(pid),
        ErrorKind::PermissionDenied => {
            let owner = owner(pid).unwrap_or(u32::MAX);
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            PlatformError::PermissionDenied {
                pid,
                owner,
                foreign: me != 0 && me != owner,
            }
        }
        _ if e.raw_os_error() == Some(libc::ESRCH) => PlatformError::NoSuchProcess(pid),
        _ => PlatformError::Io {
            pid,
            what,
            source: e,
        },
    }
}

/// Reads a whole /proc file from offset 0 into `buf`; the kernel regenerates it on every read.
fn pread<'a>(
    file: &File,
    buf: &'a mut [u8],
    pid: u32,
    what: &'static str,
) -> Result<&'a [u8], PlatformError> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(map_err(pid, what, e)),
        }
    }
    if got == 0 {
        // a dead task's files read as empty
        return Err(PlatformError::NoSuchProcess(pid));
    }
    Ok(&buf[..got])
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let digits = bytes
        .iter()
        .skip_while(|b| !b.is_ascii_digit())
        .take_while(|b| b.is_ascii_digit());
    let mut seen = false;
    let mut v: u64 = 0;
    for d in digits {
        seen = true;
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    seen.then_some(v)
}

/// `Key:   123` lines, as in `status` and `smaps_rollup`, with the number as written.
fn number_lines(text: &[u8], mut each: impl FnMut(&[u8], u64)) {
    for line in text.split(|&b| b == b'\n') {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            if let Some(n) = parse_u64(&line[colon + 1..]) {
                each(&line[..colon], n);
            }
        }
    }
}

/// `Key:   123 kB` lines, as in `status` and `smaps_rollup`; values in bytes.
fn kb_lines(text: &[u8], mut each: impl FnMut(&[u8], u64)) {
    number_lines(text, |key, kb| each(key, kb.saturating_mul(1024)));
}

/// State letter from `/proc/<pid>/stat`, and the parent PID. The command name may hold spaces
/// and parentheses, so parse after the last `)`.
fn stat_fields(pid: u32) -> Option<(u8, u32)> {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = raw.iter().rposition(|&b| b == b')')?;
    let mut rest = raw[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let state = *rest.next()?.first()?;
    let ppid = u32::try_from(parse_u64(rest.next()?)?).ok()?;
    Some((state, ppid))
}

impl LinuxProcess {
    /// Reads `smaps_rollup` into `buf` and returns its length; `None` without the file (a basic
    /// handle).
    fn read_rollup(&mut self, buf: &mut [u8]) -> Result<Option<usize>, PlatformError> {
        let Some(file) = &self.smaps_rollup else {
            return Ok(None);
        };
        match pread(file, buf, self.pid, "smaps_rollup") {
            Ok(text) => return Ok(Some(text.len())),
            Err(PlatformError::NoSuchProcess(_)) => {}
            Err(e) => return Err(e),
        }
        // statm and status were just read, so the process lives: it has called exec, and the
        // open smaps_rollup still points at its old program's memory (the kernel binds it at
        // open). Read the new program's through a new handle; a process that is really gone
        // fails again here.
        let file = open_proc(self.pid, "smaps_rollup")?;
        let len = pread(&file, buf, self.pid, "smaps_rollup")?.len();
        self.smaps_rollup = Some(file);
        Ok(Some(len))
    }
}

impl ProcessMemory for LinuxProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn read(&mut self, detail: Detail) -> Result<Memory, PlatformError> {
        let pid = self.pid;
        let mut buf = [0u8; 4096];
        let mut mem = Memory::default();

        let statm = pread(&self.statm, &mut buf, pid, "statm")?;
        let mut fields = statm.split(|&b| b == b' ');
        let page = page_size();
        mem.vms = fields.next().and_then(parse_u64).map(|p| p * page);
        mem.rss = fields.next().and_then(parse_u64).map(|p| p * page);

        if self.is_self {
            // our own peak without formatting all of /proc/self/status (8 µs vs 1 µs), and our
            // threads from the task directory's link count for the same reason
            mem.peak = own_peak_rss();
            mem.threads = self.task_dir.as_ref().and_then(count_threads);
        } else {
            let status = pread(&self.status, &mut buf, pid, "status")?;
            let mut zombie = false;
            for line in status.split(|&b| b == b'\n') {
                if let Some(state) = line.strip_prefix(b"State:") {
                    let letter = state.iter().find(|b| !b.is_ascii_whitespace());
                    zombie = matches!(letter, Some(b'Z' | b'X'));
                    break;
                }
            }
            if zombie {
                return Err(PlatformError::NoSuchProcess(pid));
            }
            // one pass over the status text just read gives the thread count too
            number_lines(status, |key, n| match key {
                b"VmHWM" => mem.peak = Some(n.saturating_mul(1024)),
                b"VmSwap" => mem.swap = Some(n.saturating_mul(1024)),
                b"Threads" => mem.threads = Some(n),
                _ => {}
            });
        }
        mem.fds = self.fd_dir.as_ref().and_then(count_fds);

        if detail == Detail::Full {
            if let Some(len) = self.read_rollup(&mut buf)? {
                let rollup = &buf[..len];
                let (mut uss, mut pss, mut swap) = (None::<u64>, None, None);
                kb_lines(rollup, |key, v| match key {
                    b"Pss" => pss = Some(v),
                    b"Private_Clean" | b"Private_Dirty" | b"Private_Hugetlb" => {
                        uss = Some(uss.unwrap_or(0) + v)
                    }
                    b"Swap" => swap = Some(v),
                    _ => {}
                });
                mem.uss = uss;
                mem.pss = pss;
                mem.swap = swap.or(mem.swap);
            }
        }
        // the kernel updates its high-water mark lazily; a peak below the current RSS is stale
        mem.peak = match (mem.peak, mem.rss) {
            (Some(p), Some(r)) => Some(p.max(r)),
            (p, _) => p,
        };
        Ok(mem)
    }
}

/// Whether this kernel has `/proc/<pid>/task/<tid>/children` (CONFIG_PROC_CHILDREN).
fn has_children_files() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        let me = std::process::id();
        std::fs::metadata(format!("/proc/{me}/task/{me}/children")).is_ok()
    })
}

/// (pid, parent) of every live process, sorted by pid.
fn parent_table() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut table: Vec<(u32, u32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            stat_fields(p)
                .filter(|&(state, _)| state != b'Z' && state != b'X')
                .map(|(_, ppid)| (p, ppid))
        })
        .collect();
    table.sort_unstable();
    table
}

impl Os for Linux {
    type Process = LinuxProcess;

    fn open(pid: u32, detail: Detail) -> Result<LinuxProcess, PlatformError> {
        if pid == 0 {
            return Err(PlatformError::NoSuchProcess(pid));
        }
        let mut process = LinuxProcess {
            pid,
            statm: open_proc(pid, "statm")?,
            status: open_proc(pid, "status")?,
            smaps_rollup: match detail {
                // the kernel checks ptrace-read access when smaps_rollup is opened, so a
                // foreign process fails here, with a clear error, rather than mid-run
                Detail::Full => Some(open_proc(pid, "smaps_rollup")?),
                Detail::Basic => None,
            },
            fd_dir: open_proc_dir(pid, "fd"),
            task_dir: (pid == std::process::id())
                .then(|| open_proc_dir(pid, "task"))
                .flatten(),
            is_self: pid == std::process::id(),
        };
        process.read(Detail::Basic)?;
        Ok(process)
    }

    fn children(pid: u32) -> Vec<u32> {
        if has_children_files() {
            let mut out = Vec::new();
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return out;
            };
            for task in tasks.flatten() {
                let path = task.path().join("children");
                if let Ok(text) = std::fs::read_to_string(path) {
                    out.extend(
                        text.split_whitespace()
                            .filter_map(|s| s.parse::<u32>().ok()),
                    );
                }
            }
            out.sort_unstable();
            out.dedup();
            return out;
        }
        // without children files, scan every process' parent
        parent_table()
            .into_iter()
            .filter(|&(_, ppid)| ppid == pid)
            .map(|(p, _)| p)
            .collect()
    }

    fn descendants(root: u32) -> Vec<(u32, u32)> {
        if has_children_files() {
            return crate::tree_below(root, Self::children);
        }
        // one scan of /proc for the whole tree rather than one per process in it
        let table = parent_table();
        crate::tree_below(root, |pid| {
            table
                .iter()
                .filter(|&&(_, ppid)| ppid == pid)
                .map(|&(p, _)| p)
                .collect()
        })
    }

    fn parent(pid: u32) -> Option<u32> {
        stat_fields(pid).map(|(_, ppid)| ppid)
    }

    fn command_line(pid: u32) -> Vec<String> {
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return Vec::new();
        };
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    fn alive(pid: u32) -> bool {
        stat_fields(pid).is_some_and(|(state, _)| state != b'Z' && state != b'X')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descendants;

    #[test]
    fn reads_own_memory() {
        let mut me = Linux::open(std::process::id(), Detail::Full).unwrap();
        let m = me.read(Detail::Full).unwrap();
        let rss = m.rss.unwrap();
        assert!(rss > 0);
        assert!(m.vms.unwrap() >= rss);
        assert!(m.peak.unwrap() >= rss / 2);
        assert!(m.uss.unwrap() <= rss + (1 << 20));
        assert!(m.pss.unwrap() > 0);
    }

    #[test]
    fn rss_follows_touched_memory() {
        let mut me = Linux::open(std::process::id(), Detail::Basic).unwrap();
        let before = me.read(Detail::Basic).unwrap().rss.unwrap();
        let block = vec![1u8; 64 << 20];
        let after = me.read(Detail::Basic).unwrap().rss.unwrap();
        assert!(after >= before + (60 << 20), "{before} -> {after}");
        drop(block);
    }

    #[test]
    fn missing_process_is_a_clear_error() {
        // PIDs are bounded by pid_max (at most 2^22), so this one never exists
        let err = Linux::open(u32::MAX - 1, Detail::Basic).unwrap_err();
        assert!(matches!(err, PlatformError::NoSuchProcess(_)), "{err}");
        assert!(err.to_string().contains("no process with PID"));
    }

    #[test]
    fn handle_fails_after_its_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let mut handle = Linux::open(child.id(), Detail::Full).unwrap();
        assert!(handle.read(Detail::Full).is_ok());
        assert_eq!(Linux::parent(child.id()), Some(std::process::id()));
        assert!(Linux::children(std::process::id()).contains(&child.id()));
        assert!(descendants(std::process::id())
            .iter()
            .any(|&(p, parent)| p == child.id() && parent == std::process::id()));
        // spawn returns when the child calls execve, which can be before the kernel has set
        // up the new argv: give exec a moment to finish
        let mut argv = Linux::command_line(child.id());
        for _ in 0..100 {
            if argv == ["sleep", "10"] {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            argv = Linux::command_line(child.id());
        }
        assert_eq!(argv, vec!["sleep", "10"]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(
            handle.read(Detail::Full),
            Err(PlatformError::NoSuchProcess(_))
        ));
        assert!(!Linux::alive(child.id()));
    }

    #[test]
    fn handle_follows_its_process_through_exec() {
        use std::io::Write;
        // the shell waits for a line, then replaces itself with `sleep`
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read line; exec sleep 10"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut handle = Linux::open(child.id(), Detail::Full).unwrap();
        assert!(handle.read(Detail::Full).unwrap().pss.is_some());
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut argv = Linux::command_line(child.id());
        for _ in 0..500 {
            if argv == ["sleep", "10"] {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            argv = Linux::command_line(child.id());
        }
        assert_eq!(argv, vec!["sleep", "10"]);
        let after = handle.read(Detail::Full);
        child.kill().unwrap();
        child.wait().unwrap();
        let after = after.expect("a process that called exec is still readable");
        assert!(after.pss.is_some_and(|p| p > 0), "{after:?}");
        assert!(after.uss.is_some(), "{after:?}");
    }

    #[test]
    fn fds_follow_files_opened_and_closed() {
        let mut me = Linux::open(std::process::id(), Detail::Basic).unwrap();
        let before = me.read(Detail::Basic).unwrap().fds.unwrap();
        let files: Vec<File> = (0..256).map(|_| File::open("/dev/null").unwrap()).collect();
        let during = me.read(Detail::Basic).unwrap().fds.unwrap();
        drop(files);
        let after = me.read(Detail::Basic).unwrap().fds.unwrap();
        // other tests of this binary run on other threads and open a few files of their own:
        // leave them room rather than expecting exactly 256
        assert!(during >= before + 200, "{before} -> {during}");
        assert!(after + 200 <= during, "{during} -> {after}");
    }

    #[test]
    fn threads_follow_threads_started_and_ended() {
        let mut me = Linux::open(std::process::id(), Detail::Basic).unwrap();
        let before = me.read(Detail::Basic).unwrap().threads.unwrap();
        assert!(before >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let workers: Vec<_> = (0..32)
            .map(|_| {
                let rx = rx.clone();
                // each waits until the channel closes
                std::thread::spawn(move || while rx.lock().unwrap().recv().is_ok() {})
            })
            .collect();
        let during = me.read(Detail::Basic).unwrap().threads.unwrap();
        drop(tx);
        for w in workers {
            w.join().unwrap();
        }
        let after = me.read(Detail::Basic).unwrap().threads.unwrap();
        assert!(during >= before + 24, "{before} -> {during}");
        assert!(after + 24 <= during, "{during} -> {after}");
    }

    #[test]
    fn another_process_has_its_threads_from_status() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let reading =
            Linux::open(child.id(), Detail::Basic).and_then(|mut h| h.read(Detail::Basic));
        child.kill().unwrap();
        child.wait().unwrap();
        let m = reading.unwrap();
        assert_eq!(m.threads, Some(1), "{m:?}");
        assert!(m.fds.is_some(), "{m:?}");
    }

    #[test]
    fn directory_listing_counts_every_entry_each_time() {
        // more entries than one getdents64 call returns, to cover the loop
        let dir = std::env::temp_dir().join(format!("memsleuth-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..500 {
            File::create(dir.join(format!("entry-with-a-longish-name-{i}"))).unwrap();
        }
        let handle = open_proc_dir_path(&dir);
        let first = count_entries(&handle);
        let second = count_entries(&handle);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((first, second), (Some(500), Some(500)));
    }

    fn open_proc_dir_path(path: &std::path::Path) -> File {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .unwrap()
    }

    #[test]
    fn fds_count_from_size_matches_the_listing() {
        // a quiet process: in this one, other test threads open files, and an fd reserved by a
        // call still under way counts in the size but is not listed yet
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let dir = open_proc_dir(child.id(), "fd").unwrap();
        // the same count both ways (from the size on 6.2+, a listing before), once the exec and
        // the loader's files are done with
        let mut seen = Vec::new();
        for _ in 0..200 {
            let both = (count_fds(&dir), count_entries(&dir));
            if both.0 == both.1 && both.0.is_some_and(|n| n > 0) {
                break;
            }
            seen.push(both);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let last = (count_fds(&dir), count_entries(&dir));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(last.0, last.1, "{seen:?}");
        assert!(last.0.is_some_and(|n| n > 0), "{last:?}");
    }

    /// Set by [`another_users_fds_are_none`] for the copy of this test binary it runs as `nobody`.
    const FOREIGN_PID: &str = "MEMSLEUTH_TEST_FOREIGN_PID";

    /// Reads a process of another user: memory and threads yes, its descriptors no.
    fn probe_foreign(pid: u32) {
        let m = Linux::open(pid, Detail::Basic)
            .and_then(|mut h| h.read(Detail::Basic))
            .unwrap();
        assert!(m.rss.is_some() && m.threads.is_some(), "{m:?}");
        assert_eq!(m.fds, None, "{m:?}");
    }

    #[test]
    #[ignore = "run as another user by another_users_fds_are_none"]
    fn foreign_probe() {
        if let Some(pid) = std::env::var(FOREIGN_PID).ok().and_then(|p| p.parse().ok()) {
            probe_foreign(pid);
        }
    }

    #[test]
    fn another_users_fds_are_none() {
        use std::os::unix::process::CommandExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            // init belongs to root, and we are not root
            return probe_foreign(1);
        }
        // as root every process is ours to read: run the probe in a copy of this binary as
        // `nobody`, reading this (root's) process
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "linux::tests::foreign_probe",
                "--ignored",
                "--nocapture",
            ])
            .env(FOREIGN_PID, std::process::id().to_string())
            .uid(65534)
            .gid(65534)
            .output();
        let out = match out {
            Ok(out) => out,
            // the test binary sits where `nobody` may not go (a checkout under a `mktemp -d`
            // directory, mode 0700): there is no other user to read this process as
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("skipped: `nobody` cannot run {:?}", std::env::current_exe());
                return;
            }
            Err(e) => panic!("cannot run the probe as nobody: {e}"),
        };
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }

    #[test]
    fn kb_parser_handles_odd_lines() {
        let mut seen = Vec::new();
        kb_lines(b"Rss:  12 kB\nbogus\nPss:\nSwap: 3 kB", |k, v| {
            seen.push((k.to_vec(), v))
        });
        assert_eq!(
            seen,
            vec![(b"Rss".to_vec(), 12 * 1024), (b"Swap".to_vec(), 3 * 1024)]
        );
    }
}
