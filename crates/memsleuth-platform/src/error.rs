use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("no process with PID {0} (it may have exited)")]
    NoSuchProcess(u32),
    #[error(
        "no permission to read the memory of PID {pid} (owned by uid {owner}); {}",
        if *foreign {
            "run memsleuth as that user or as root"
        } else {
            // root, or the owner, and still refused: ptrace rules (Yama's ptrace_scope, a
            // process that is not dumpable) guard the page-table walk behind USS and PSS
            "the kernel allows only the basic reading (RSS, VMS, swap, peak) of this process"
        }
    )]
    PermissionDenied {
        pid: u32,
        owner: u32,
        /// The process belongs to another user and we are not root: running as that user or
        /// as root would help.
        foreign: bool,
    },
    #[error("cannot read {what} of PID {pid}: {source}")]
    Io {
        pid: u32,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("reading process memory is not supported on this operating system yet")]
    Unsupported,
}
