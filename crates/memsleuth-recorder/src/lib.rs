//! The recorder side: samplers that read the target and write the capture.
//!
//! Today one sampler, `rss`: process-tree memory at a fixed interval. It is driven either by a
//! caller's loop ([`RssSampler::tick`], used by `memsleuth watch`) or by its own background thread
//! ([`BackgroundSampler`], used by `memsleuth.watch()` inside the target).

mod alloc;
mod background;
mod error;
mod native;
mod rss;

pub use alloc::{AllocConfig, AllocRecorder, AllocStats, RecordSink, ResolveFn};
pub use background::{BackgroundSampler, Stopped};
pub use error::RecorderError;
pub use rss::{RssConfig, RssSampler, TickSummary};

/// Nanoseconds since the Unix epoch, now.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// This machine's host name, or empty.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
