use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use memsleuth_format::{
    CaptureWriter, EndReason, ExitStatus, Header, Mark, ProcessExit, ProcessInfo, ProcessReading,
    Record, Sample, Trailer,
};
use memsleuth_platform::{Current, Detail, Memory, Os, PlatformError, ProcessMemory};

use crate::RecorderError;

/// What the `rss` sampler watches and how often.
#[derive(Debug, Clone, Copy)]
pub struct RssConfig {
    pub root: u32,
    pub interval: Duration,
    pub detail: Detail,
    /// Follow descendants of the root as they appear.
    pub children: bool,
    /// Longest time records may wait in memory before they reach the file.
    pub flush_every: Duration,
}

impl RssConfig {
    pub fn new(root: u32, interval: Duration) -> Self {
        RssConfig {
            root,
            interval,
            detail: Detail::Full,
            children: true,
            flush_every: Duration::from_secs(1),
        }
    }
}

/// What one tick saw, for status lines and loop control.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickSummary {
    pub t: Duration,
    pub total_rss: u64,
    pub processes: u32,
    pub root_alive: bool,
}

struct Tracked {
    handle: <Current as Os>::Process,
}

/// Samples a process tree's memory into a capture, one [`RssSampler::tick`] at a time.
pub struct RssSampler<W: Write> {
    cfg: RssConfig,
    writer: CaptureWriter<W>,
    start: Instant,
    tracked: Vec<Tracked>,
    seen: HashSet<u32>,
    root_alive: bool,
    ticks: u64,
    samples: u64,
    dropped: u64,
    last_flush: Instant,
    // descendants are looked for at most every 100 ms: scanning /proc every 10 ms would cost the
    // machine more than the readings themselves
    discover_every: u64,
    readings: Vec<ProcessReading>,
}

impl<W: Write> std::fmt::Debug for RssSampler<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RssSampler")
            .field("cfg", &self.cfg)
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

pub(crate) fn to_reading(pid: u32, m: Memory) -> ProcessReading {
    ProcessReading {
        pid,
        rss: m.rss,
        vms: m.vms,
        uss: m.uss,
        pss: m.pss,
        swap: m.swap,
        peak: m.peak,
        fds: m.fds,
        threads: m.threads,
        own: None,
    }
}

impl<W: Write> RssSampler<W> {
    /// Opens the root process (failing clearly if it is gone or not ours to read) and starts the
    /// capture. `header.pid` and timing fields are filled in here.
    pub fn new(out: W, mut header: Header, cfg: RssConfig) -> Result<Self, RecorderError> {
        let root = Current::open(cfg.root, cfg.detail)?;
        let start = Instant::now();
        header.pid = cfg.root;
        header.start_unix_ns = crate::unix_now_ns();
        header.sample_interval_ns = cfg.interval.as_nanos() as u64;
        if !header.instruments.iter().any(|i| i == "rss") {
            header.instruments.push("rss".into());
        }
        if header.argv.is_empty() {
            header.argv = Current::command_line(cfg.root);
        }
        let writer = CaptureWriter::new(out, &header)?;
        let discover_every =
            (Duration::from_millis(100).as_nanos() / cfg.interval.as_nanos().max(1)).max(1) as u64;
        let mut s = RssSampler {
            cfg,
            writer,
            start,
            tracked: Vec::new(),
            seen: HashSet::new(),
            root_alive: true,
            ticks: 0,
            samples: 0,
            dropped: 0,
            last_flush: start,
            discover_every,
            readings: Vec::new(),
        };
        s.track(root, Current::parent(cfg.root).unwrap_or(0));
        Ok(s)
    }

    /// When the capture started.
    pub fn start(&self) -> Instant {
        self.start
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn track(&mut self, handle: <Current as Os>::Process, ppid: u32) {
        let pid = handle.pid();
        self.seen.insert(pid);
        let info = ProcessInfo {
            pid,
            ppid,
            seen_ns: self.now_ns(),
            argv: Current::command_line(pid),
        };
        self.writer.push(&Record::Process(info));
        self.tracked.push(Tracked { handle });
    }

    fn discover(&mut self) {
        for (pid, ppid) in Current::descendants(self.cfg.root) {
            if self.seen.contains(&pid) {
                continue;
            }
            match Current::open(pid, self.cfg.detail) {
                Ok(handle) => self.track(handle, ppid),
                // gone already, or not ours (a setuid child): note it once and move on
                Err(_) => {
                    self.seen.insert(pid);
                    self.dropped += 1;
                }
            }
        }
    }

    /// Reads every tracked process once and records the readings as one sample.
    pub fn tick(&mut self) -> Result<TickSummary, RecorderError> {
        if self.cfg.children && self.ticks.is_multiple_of(self.discover_every) {
            self.discover();
        }
        self.ticks += 1;
        let t_ns = self.now_ns();
        self.readings.clear();
        let mut i = 0;
        while i < self.tracked.len() {
            let pid = self.tracked[i].handle.pid();
            match self.tracked[i].handle.read(self.cfg.detail) {
                Ok(m) => {
                    self.readings.push(to_reading(pid, m));
                    i += 1;
                }
                Err(PlatformError::NoSuchProcess(_)) => {
                    self.tracked.swap_remove(i);
                    self.exited(pid, ExitStatus::Unknown);
                }
                Err(_) => {
                    self.dropped += 1;
                    i += 1;
                }
            }
        }
        let total_rss = self.readings.iter().filter_map(|r| r.rss).sum();
        let processes = self.readings.len() as u32;
        if !self.readings.is_empty() {
            self.readings.sort_unstable_by_key(|r| r.pid);
            let sample = Sample {
                t_ns,
                readings: std::mem::take(&mut self.readings),
            };
            self.writer.push(&Record::Sample(sample));
            self.samples += 1;
            if self.samples == 1 {
                self.writer.flush()?;
                self.last_flush = Instant::now();
            }
        }
        self.maybe_flush()?;
        Ok(TickSummary {
            t: Duration::from_nanos(t_ns),
            total_rss,
            processes,
            root_alive: self.root_alive,
        })
    }

    fn exited(&mut self, pid: u32, status: ExitStatus) {
        if pid == self.cfg.root {
            if !self.root_alive {
                return;
            }
            self.root_alive = false;
        }
        let exit = ProcessExit {
            pid,
            t_ns: self.now_ns(),
            status,
        };
        self.writer.push(&Record::ProcessExit(exit));
    }

    /// Records how the root ended, when the caller reaped it and knows.
    pub fn root_exited(&mut self, status: ExitStatus) {
        let root = self.cfg.root;
        self.tracked.retain(|t| t.handle.pid() != root);
        self.exited(root, status);
    }

    /// Records a user mark at `t` (since the capture started).
    pub fn mark_at(&mut self, t: Duration, label: &str) {
        let mark = Mark {
            t_ns: t.as_nanos() as u64,
            label: label.to_string(),
        };
        self.writer.push(&Record::Mark(mark));
    }

    fn maybe_flush(&mut self) -> Result<(), RecorderError> {
        if self.last_flush.elapsed() >= self.cfg.flush_every || self.writer.pending() > 256 << 10 {
            self.writer.flush()?;
            self.last_flush = Instant::now();
        }
        Ok(())
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Finishes the capture with its trailer and returns the sink.
    pub fn finish(self, reason: EndReason, target_status: ExitStatus) -> Result<W, RecorderError> {
        let trailer = Trailer {
            end_ns: self.now_ns(),
            reason,
            target_status,
            samples: self.samples,
            dropped: self.dropped,
            flushes: 0,
        };
        Ok(self.writer.finish(trailer)?)
    }
}
