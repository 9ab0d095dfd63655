//! Process memory readings per operating system, and process trees.
//!
//! The OS boundary is the [`Os`] trait: one implementation per platform (Linux today, reading
//! `/proc` directly). macOS (`proc_pidinfo`/`task_info`) and Windows (`GetProcessMemoryInfo`)
//! back ends slot in beside `linux` without touching callers, which use [`Current`].

mod error;
#[cfg(target_os = "linux")]
mod linux;
mod objects;
#[cfg(not(target_os = "linux"))]
mod unsupported;

pub use error::PlatformError;
pub use objects::{loaded_objects, LoadedObject, Segment};

/// Memory of one process, bytes, with its open file descriptors and threads (counts), which leak
/// alongside memory. `None` where this platform or this reading could not tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss: Option<u64>,
    pub vms: Option<u64>,
    /// Unique set size: private pages, what the process would give back by exiting.
    pub uss: Option<u64>,
    /// Proportional set size: private pages plus a fair share of shared ones.
    pub pss: Option<u64>,
    pub swap: Option<u64>,
    /// Peak RSS over the process' life.
    pub peak: Option<u64>,
    /// Open file descriptors. `None` when this user may not list them (another user's process).
    /// A process reading itself counts the descriptors memsleuth holds for the reading too.
    pub fds: Option<u64>,
    /// Threads of the process, the main one included.
    pub threads: Option<u64>,
}

/// How much to read. `Basic` is the cheap reading (RSS, VMS, peak, swap, fds, threads); `Full`
/// adds USS and PSS, which cost the kernel a walk of the page tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Basic,
    Full,
}

/// One process' memory, readable again and again. Implementations keep whatever handles make a
/// repeated reading cheap, and a handle pins the process: once it exits, reads fail with
/// [`PlatformError::NoSuchProcess`] even if its PID is reused.
pub trait ProcessMemory {
    fn pid(&self) -> u32;
    fn read(&mut self, detail: Detail) -> Result<Memory, PlatformError>;
}

/// The OS boundary.
pub trait Os {
    type Process: ProcessMemory + Send;

    /// Opens a process for reading at `detail`. Fails with a clear error when the process does
    /// not exist or this user may not read it.
    fn open(pid: u32, detail: Detail) -> Result<Self::Process, PlatformError>;
    /// Direct children of `pid` (empty when it has none or is gone).
    fn children(pid: u32) -> Vec<u32>;
    /// Parent PID, when the process exists.
    fn parent(pid: u32) -> Option<u32>;
    /// Command line (empty for kernel threads, gone or unreadable processes).
    fn command_line(pid: u32) -> Vec<String>;
    /// True when the process exists and has not exited (zombies count as exited).
    fn alive(pid: u32) -> bool;

    /// Every descendant of `root` as (pid, parent), parents before children.
    fn descendants(root: u32) -> Vec<(u32, u32)> {
        tree_below(root, Self::children)
    }
}

/// Breadth-first walk of a process tree given a way to list children.
pub(crate) fn tree_below(root: u32, mut children: impl FnMut(u32) -> Vec<u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut next = 0;
    let mut parent = root;
    loop {
        for child in children(parent) {
            if child != root && !out.iter().any(|&(p, _)| p == child) {
                out.push((child, parent));
            }
        }
        match out.get(next) {
            Some(&(pid, _)) => parent = pid,
            None => return out,
        }
        next += 1;
    }
}

#[cfg(target_os = "linux")]
pub type Current = linux::Linux;
#[cfg(not(target_os = "linux"))]
pub type Current = unsupported::Unsupported;

/// Every descendant of `root` (children, grandchildren, ...) as (pid, parent), parents first.
pub fn descendants(root: u32) -> Vec<(u32, u32)> {
    Current::descendants(root)
}

/// True when `pid` exists and has not exited (zombies count as exited).
pub fn alive(pid: u32) -> bool {
    Current::alive(pid)
}

/// The user that owns process `pid` (its `/proc` entry's), when it exists and can be seen.
pub fn owner(pid: u32) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        linux::owner(pid)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The process tracing `pid` (a debugger, strace), when one does.
pub fn tracer(pid: u32) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        linux::tracer(pid)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The calling thread's id, as the kernel names it (`/proc/self/task/<id>`).
pub fn this_thread() -> Option<u64> {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe {
        Some(libc::syscall(libc::SYS_gettid) as u64)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Waits until thread `tid` of this process is gone, polling, for at most `within`; returns
/// whether it went. A thread's last steps after its own code returns still run in the process:
/// CPython frees a finished thread's bookkeeping through Python's raw allocator without the GIL,
/// which must not overlap whatever the program does with its allocators next.
pub fn wait_thread_gone(tid: u64, within: std::time::Duration) -> bool {
    #[cfg(target_os = "linux")]
    {
        let task = format!("/proc/self/task/{tid}");
        let until = std::time::Instant::now() + within;
        loop {
            if std::fs::metadata(&task).is_err() {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (tid, within);
        false
    }
}

/// Reads the memory of `pid` once. For repeated readings keep a handle from [`Os::open`].
pub fn memory(pid: u32, detail: Detail) -> Result<Memory, PlatformError> {
    Current::open(pid, detail)?.read(detail)
}

/// Hands the C allocator's free memory back to the OS. A full census builds a graph of the
/// whole heap and frees it; glibc keeps the freed pages (its mmap threshold rises after the
/// first large free), so without this each census would leave the process's RSS higher, and
/// the verdict would read memsleuth's own scratch memory as a native leak of the program.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bytes the C allocator has handed out and not had back, in this process: what C extensions,
/// `ctypes` and Python's own large objects hold through `malloc`. `None` where the C library
/// does not say (glibc's `mallinfo2` only).
pub fn c_heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics, under its own locks
        let info = unsafe { libc::mallinfo2() };
        // small blocks from the arenas, and the blocks too large for them, mapped one by one
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Gives the calling thread the lowest scheduling priority (nice 19): work that may wait, such as
/// reading a capture ahead of the program's end, then takes only CPU time that the program and
/// the recorder leave. Returns false where the platform cannot do it for one thread.
pub fn lowest_priority_for_this_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(tid) = this_thread() else {
            return false;
        };
        // SAFETY: on Linux a thread id names that one thread for setpriority, and raising
        // one's own nice value needs no privilege.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// True when this process can map `bytes` more of memory now. memsleuth's own work at exit
/// (a heap walk, a leak analysis) uses ordinary Rust allocations, and a refused one aborts the
/// process; a program that ran into its `ulimit -v` (as a leaking one may) must see that work
/// skipped, never its own end turned into an abort. Only address space is asked for: nothing is
/// touched or committed.
pub fn can_map(bytes: usize) -> bool {
    // SAFETY: an anonymous, inaccessible, unreserved mapping, unmapped at once.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes.max(1),
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        p != libc::MAP_FAILED && libc::munmap(p, bytes.max(1)) == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn a_thread_is_seen_gone_only_once_it_has_ended() {
        use std::sync::mpsc;
        use std::time::Duration;
        let (tid_tx, tid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tid_tx.send(super::this_thread().unwrap()).unwrap();
            let _ = go_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        assert_ne!(Some(tid), super::this_thread());
        assert!(!super::wait_thread_gone(tid, Duration::from_millis(50)));
        go_tx.send(()).unwrap();
        assert!(super::wait_thread_gone(tid, Duration::from_secs(10)));
        t.join().unwrap();
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_c_heap_in_use_follows_a_malloc_and_its_free() {
        let before = super::c_heap_in_use().unwrap();
        // SAFETY: a plain allocation, freed below
        let p = unsafe { libc::malloc(3 << 20) };
        assert!(!p.is_null());
        let during = super::c_heap_in_use().unwrap();
        // SAFETY: allocated above, freed once
        unsafe { libc::free(p) };
        let after = super::c_heap_in_use().unwrap();
        assert!(during >= before + (3 << 20), "{before} -> {during}");
        assert!(after + (3 << 20) <= during, "{during} -> {after}");
    }
}
