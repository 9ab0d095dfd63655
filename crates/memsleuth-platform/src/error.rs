use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("no process with PID {0} (it may have exited)")]
    NoSuchProcess(u32),
    #[error(
        "no permission to read the memory of PID {pid} (owned by uid {owner}); \
         run memsleuth as that user or as root"
    )]
    PermissionDenied { pid: u32, owner: u32 },
    #[error("cannot read {what} of PID {pid}: {source}")]
    Io {
        pid: u32,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("reading process memory is not supported on this operating system yet")]
    Unsupported,
}
