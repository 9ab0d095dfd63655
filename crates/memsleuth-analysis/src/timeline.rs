//! The memory timeline: per-process and whole-tree series built from `Sample` records.

use memsleuth_format::{Capture, EndReason, ExitStatus, FormatError, Record, Trailer};
use serde::Serialize;

/// One reading of one process, times in seconds since capture start, sizes in bytes, descriptors
/// and threads as counts. `None` where the reading could not tell or the capture predates the
/// field (fds and threads before format 1.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Point {
    pub t: f64,
    /// The same time in the capture's nanoseconds, for analyses that need its exact clock (JSON
    /// readers have `t`).
    #[serde(skip)]
    pub t_ns: u64,
    pub rss: Option<u64>,
    pub vms: Option<u64>,
    pub uss: Option<u64>,
    pub pss: Option<u64>,
    pub swap: Option<u64>,
    pub peak: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
    /// Threads, the main one included.
    pub threads: Option<u64>,
    /// Bytes memsleuth itself held in the process (format 1.4; `run` and the Python API only).
    pub own: Option<u64>,
}

/// Every metric a [`Point`] holds, by the name [`Point::get`] and [`ProcessSeries::series`] take.
pub const METRICS: [&str; 9] = [
    "rss", "vms", "uss", "pss", "swap", "peak", "fds", "threads", "own",
];

impl Point {
    /// A metric by name (see [`METRICS`]); `None` when it was not read, or for a name not listed.
    pub fn get(&self, metric: &str) -> Option<u64> {
        match metric {
            "rss" => self.rss,
            "vms" => self.vms,
            "uss" => self.uss,
            "pss" => self.pss,
            "swap" => self.swap,
            "peak" => self.peak,
            "fds" => self.fds,
            "threads" => self.threads,
            "own" => self.own,
            _ => None,
        }
    }
}

/// The series of one process of the observed tree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessSeries {
    pub pid: u32,
    pub ppid: u32,
    pub argv: Vec<String>,
    /// True for the root of the observed tree.
    pub root: bool,
    pub points: Vec<Point>,
    /// Seconds since start when it was seen to exit.
    pub exited_at: Option<f64>,
    /// How it exited, when known; JSON `{"code": 0}`, `{"signal": 9}` or `null`.
    #[serde(serialize_with = "exit_json")]
    pub exit: Exit,
}

impl ProcessSeries {
    /// `(t_ns, value)` of a metric (see [`METRICS`]) at every point where it was read, in time
    /// order: `series("fds")`, `series("threads")`, `series("rss")`.
    pub fn series(&self, metric: &str) -> Vec<(u64, u64)> {
        self.points
            .iter()
            .filter_map(|p| Some((p.t_ns, p.get(metric)?)))
            .collect()
    }
}

/// The whole tree at one sampler tick: sums over the live processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TotalPoint {
    pub t: f64,
    pub rss: u64,
    /// Sum of USS where readable (0 when no process' USS could be read).
    pub uss: u64,
    pub pss: u64,
    pub swap: u64,
    /// Sum of open descriptors where readable (0 when no process' count could be read).
    pub fds: u64,
    /// Sum of threads where readable.
    pub threads: u64,
    pub processes: u32,
}

impl TotalPoint {
    /// The total of a metric by name ("rss", "uss", "pss", "swap", "fds", "threads"); RSS for
    /// any other name.
    pub fn get(&self, metric: &str) -> u64 {
        match metric {
            "uss" => self.uss,
            "pss" => self.pss,
            "swap" => self.swap,
            "fds" => self.fds,
            "threads" => self.threads,
            _ => self.rss,
        }
    }
}

/// Why a capture ended, as its trailer says: the format's `EndReason` as the models carry it,
/// so renderers never need the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    TargetExited,
    Interrupted,
    Duration,
    Stopped,
    Unknown,
}

impl From<EndReason> for EndCause {
    fn from(r: EndReason) -> Self {
        match r {
            EndReason::TargetExited => EndCause::TargetExited,
            EndReason::Interrupted => EndCause::Interrupted,
            EndReason::Duration => EndCause::Duration,
            EndReason::Stopped => EndCause::Stopped,
            EndReason::Unknown => EndCause::Unknown,
        }
    }
}

/// How a process ended: the format's `ExitStatus` as the models carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exit {
    #[default]
    Unknown,
    Code(i32),
    Signal(i32),
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Unknown => Exit::Unknown,
            ExitStatus::Code(c) => Exit::Code(c),
            ExitStatus::Signal(n) => Exit::Signal(n),
        }
    }
}

/// How the capture ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EndInfo {
    /// Why it ended, as its trailer says; `None` when it has no trailer (cut short). JSON
    /// `target_exited`, `interrupted`, `duration`, `stopped`, `unknown` or `cut_short`.
    #[serde(serialize_with = "end_reason_json")]
    pub reason: Option<EndCause>,
    /// True when the trailer is missing: the recorder died before finishing.
    pub cut_short: bool,
    /// Reader's description of damage that stopped reading early, if any.
    pub damage: Option<String>,
    /// How the root process exited, when known; JSON as [`ProcessSeries::exit`].
    #[serde(serialize_with = "exit_json")]
    pub target_exit: Exit,
    pub samples: u64,
    pub dropped: u64,
    pub flushes: u64,
    /// Seconds from start to the end of the capture (or the last record when cut short).
    pub duration: f64,
}

impl EndInfo {
    /// How a capture ended: from its trailer when it has one, the damage that stopped reading,
    /// the root process' exit as its records saw it (used when the trailer does not know it),
    /// and the time the capture covers.
    pub fn new(
        trailer: Option<Trailer>,
        damage: Option<&FormatError>,
        root_exit: ExitStatus,
        duration_ns: u64,
    ) -> Self {
        let status = match trailer.map(|t| t.target_status) {
            Some(s) if s != ExitStatus::Unknown => s,
            _ => root_exit,
        };
        EndInfo {
            reason: trailer.map(|t| t.reason.into()),
            cut_short: trailer.is_none(),
            damage: damage.map(|d| d.to_string()),
            target_exit: status.into(),
            samples: trailer.map_or(0, |t| t.samples),
            dropped: trailer.map_or(0, |t| t.dropped),
            flushes: trailer.map_or(0, |t| t.flushes),
            duration: duration_ns as f64 / 1e9,
        }
    }
}

/// Everything the timeline reports and plots need.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub pid: u32,
    pub argv: Vec<String>,
    pub python_version: String,
    pub hostname: String,
    pub start_unix_ns: u64,
    pub interval: f64,
    pub processes: Vec<ProcessSeries>,
    pub total: Vec<TotalPoint>,
    /// User marks: (seconds since start, label).
    pub marks: Vec<(f64, String)>,
    pub end: EndInfo,
}

/// The JSON of an ending reason: a kind for machines (render words it for people).
fn end_reason_json<S: serde::Serializer>(r: &Option<EndCause>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match r {
        None => "cut_short",
        Some(EndCause::TargetExited) => "target_exited",
        Some(EndCause::Interrupted) => "interrupted",
        Some(EndCause::Duration) => "duration",
        Some(EndCause::Stopped) => "stopped",
        Some(EndCause::Unknown) => "unknown",
    })
}

/// The JSON of an exit status: `{"code": 1}`, `{"signal": 9}`, or `null` when unknown. Public
/// for render's own models that carry one.
pub fn exit_json<S: serde::Serializer>(e: &Exit, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let (key, value) = match *e {
        Exit::Unknown => return s.serialize_none(),
        Exit::Code(c) => ("code", c),
        Exit::Signal(n) => ("signal", n),
    };
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, &value)?;
    map.end()
}

const NS: f64 = 1e9;

impl Timeline {
    /// Builds the series from a capture's records.
    pub fn from_capture(capture: &Capture) -> Timeline {
        let h = &capture.header;
        let mut tl = Timeline {
            pid: h.pid,
            argv: h.argv.clone(),
            python_version: h.python_version.clone(),
            hostname: h.hostname.clone(),
            start_unix_ns: h.start_unix_ns,
            interval: h.sample_interval_ns as f64 / NS,
            ..Timeline::default()
        };
        let mut last_t = 0.0f64;
        let mut root_exit = ExitStatus::Unknown;
        for record in &capture.records {
            match record {
                Record::Process(p) => {
                    if tl.series_mut(p.pid).is_none() {
                        tl.processes.push(ProcessSeries {
                            pid: p.pid,
                            ppid: p.ppid,
                            argv: p.argv.clone(),
                            root: p.pid == h.pid,
                            ..ProcessSeries::default()
                        });
                    }
                }
                Record::Sample(s) => {
                    let t = s.t_ns as f64 / NS;
                    last_t = last_t.max(t);
                    let mut total = TotalPoint {
                        t,
                        ..TotalPoint::default()
                    };
                    for r in &s.readings {
                        total.rss += r.rss.unwrap_or(0);
                        total.uss += r.uss.unwrap_or(0);
                        total.pss += r.pss.unwrap_or(0);
                        total.swap += r.swap.unwrap_or(0);
                        // counts come from the file, which may be hostile: saturate, never wrap
                        total.fds = total.fds.saturating_add(r.fds.unwrap_or(0));
                        total.threads = total.threads.saturating_add(r.threads.unwrap_or(0));
                        total.processes += 1;
                        let point = Point {
                            t,
                            t_ns: s.t_ns,
                            rss: r.rss,
                            vms: r.vms,
                            uss: r.uss,
                            pss: r.pss,
                            swap: r.swap,
                            peak: r.peak,
                            fds: r.fds,
                            threads: r.threads,
                            own: r.own,
                        };
                        match tl.series_mut(r.pid) {
                            Some(series) => series.points.push(point),
                            None => tl.processes.push(ProcessSeries {
                                pid: r.pid,
                                root: r.pid == h.pid,
                                points: vec![point],
                                ..ProcessSeries::default()
                            }),
                        }
                    }
                    tl.total.push(total);
                }
                Record::ProcessExit(x) => {
                    let t = x.t_ns as f64 / NS;
                    last_t = last_t.max(t);
                    if x.pid == h.pid && x.status != ExitStatus::Unknown {
                        root_exit = x.status;
                    }
                    if let Some(series) = tl.series_mut(x.pid) {
                        series.exited_at = Some(t);
                        series.exit = x.status.into();
                    }
                }
                Record::Mark(m) => tl.marks.push((m.t_ns as f64 / NS, m.label.clone())),
                // allocation records belong to the allocation analyses
                Record::Header(_)
                | Record::Trailer(_)
                | Record::Unknown(_)
                | Record::Frame(_)
                | Record::Stack(_)
                | Record::Events(_)
                | Record::Thread(_)
                | Record::Census(_)
                | Record::Gc(_)
                | Record::Pymalloc(_)
                | Record::Holder(_)
                | Record::Mapping(_)
                | Record::NativeFrame(_) => {}
            }
        }
        // root first, then by pid
        tl.processes.sort_by_key(|p| (!p.root, p.pid));
        let trailer = capture.trailer;
        let duration_ns = trailer.map_or((last_t * NS) as u64, |t| t.end_ns);
        tl.end = EndInfo::new(trailer, capture.damage.as_ref(), root_exit, duration_ns);
        // without a trailer, what was read is the count: samples, and chunks for flushes
        if trailer.is_none() {
            tl.end.samples = tl.total.len() as u64;
            tl.end.flushes = capture.chunks;
        }
        tl
    }

    fn series_mut(&mut self, pid: u32) -> Option<&mut ProcessSeries> {
        self.processes.iter_mut().find(|p| p.pid == pid)
    }

    /// The root process' series (the observed program), when the capture has readings of it:
    /// `timeline.root().map(|s| s.series("fds"))`.
    pub fn root(&self) -> Option<&ProcessSeries> {
        self.processes.iter().find(|p| p.root)
    }
}
