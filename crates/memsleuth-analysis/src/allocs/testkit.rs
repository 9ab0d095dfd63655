//! Synthetic captures for tests, written with the real `CaptureWriter`.
//!
//! A tiny DSL: stacks are written as `"main@app.py:30 > serve@app.py:20 > handle@app.py:10"`
//! (outermost first, the allocation site last); events are method calls with times in
//! milliseconds; `flush` ends a chunk the way the recorder does (thread records, then one event
//! batch per thread).
//!
//! ```ignore
//! let mut c = Cap::new();
//! let leak = c.stack("main@app.py:1 > leak@app.py:10");
//! c.alloc(0.0, 0x1000, 64, leak).free(5.0, 0x2000).flush();
//! let bytes = c.finish(10.0);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use memsleuth_format::{
    AllocEvent, CaptureWriter, Domain, EndReason, EventKind, Events, ExitStatus, Frame, Header,
    ProcessReading, Record, Sample, StackNode, ThreadInfo, Trailer,
};

pub(crate) fn ms(t: f64) -> u64 {
    (t * 1e6).round() as u64
}

pub(crate) struct Cap {
    w: CaptureWriter<Vec<u8>>,
    frames: HashMap<(String, String, u32), u32>,
    nodes: HashMap<(u32, u32), u32>,
    pending: BTreeMap<u32, Vec<AllocEvent>>,
    threads: HashSet<u32>,
    thread: u32,
    defer_frames: bool,
    deferred: Vec<Frame>,
    samples: u64,
}

impl Cap {
    pub fn new() -> Self {
        Self::with_sampling(0)
    }

    /// A capture whose allocations were sampled, `rate` bytes between samples on average.
    pub fn with_sampling(rate: u64) -> Self {
        let header = Header {
            tool_version: "test".into(),
            pid: 42,
            argv: vec!["python".into(), "app.py".into()],
            start_unix_ns: 1_700_000_000_000_000_000,
            python_version: "3.12.0".into(),
            instruments: vec!["python".into()],
            sample_interval_ns: 10_000_000,
            sample_bytes: rate,
            hostname: "test".into(),
        };
        Self::with_header(header)
    }

    pub fn with_header(header: Header) -> Self {
        let mut w = CaptureWriter::new(Vec::new(), &header).expect("header");
        w.set_compression(true);
        Cap {
            w,
            frames: HashMap::new(),
            nodes: HashMap::new(),
            pending: BTreeMap::new(),
            threads: HashSet::new(),
            thread: 1,
            defer_frames: false,
            deferred: Vec::new(),
            samples: 0,
        }
    }

    /// Frame records are held back until [`Cap::write_frames`] (or the end), as the recorder's
    /// resolver does.
    pub fn defer_frames(mut self) -> Self {
        self.defer_frames = true;
        self
    }

    fn frame(&mut self, spec: &str) -> u32 {
        let spec = spec.trim();
        let (function, place) = spec.split_once('@').unwrap_or((spec, ""));
        let (file, line) = place.rsplit_once(':').unwrap_or((place, "0"));
        let key = (
            function.to_string(),
            file.to_string(),
            line.parse().unwrap_or(0),
        );
        if let Some(&id) = self.frames.get(&key) {
            return id;
        }
        let id = self.frames.len() as u32 + 1;
        let frame = Frame {
            id,
            function: key.0.clone(),
            file: key.1.clone(),
            line: key.2,
        };
        self.frames.insert(key, id);
        if self.defer_frames {
            self.deferred.push(frame);
        } else {
            self.w.push(&Record::Frame(frame));
        }
        id
    }

    /// Interns a stack, outermost first: `"main@app.py:1 > leak@app.py:10"`. `""` is the empty
    /// stack (0).
    pub fn stack(&mut self, spec: &str) -> u32 {
        let mut parent = 0;
        for part in spec.split('>').filter(|p| !p.trim().is_empty()) {
            let frame = self.frame(part);
            let next = self.nodes.len() as u32 + 1;
            parent = *self.nodes.entry((parent, frame)).or_insert_with(|| {
                self.w.push(&Record::Stack(StackNode {
                    id: next,
                    parent,
                    frame,
                }));
                next
            });
        }
        parent
    }

    /// Later events happen on this thread.
    pub fn on(&mut self, thread: u32) -> &mut Self {
        self.thread = thread;
        self
    }

    pub fn alloc_ns(&mut self, t_ns: u64, addr: u64, size: u64, stack: u32) -> &mut Self {
        self.pending
            .entry(self.thread)
            .or_default()
            .push(AllocEvent {
                kind: EventKind::Alloc,
                domain: Domain::Obj,
                t_ns,
                addr,
                size,
                stack,
            });
        self
    }

    pub fn free_ns(&mut self, t_ns: u64, addr: u64) -> &mut Self {
        self.pending
            .entry(self.thread)
            .or_default()
            .push(AllocEvent {
                kind: EventKind::Free,
                domain: Domain::Obj,
                t_ns,
                addr,
                size: 0,
                stack: 0,
            });
        self
    }

    pub fn alloc(&mut self, t_ms: f64, addr: u64, size: u64, stack: u32) -> &mut Self {
        self.alloc_ns(ms(t_ms), addr, size, stack)
    }

    pub fn free(&mut self, t_ms: f64, addr: u64) -> &mut Self {
        self.free_ns(ms(t_ms), addr)
    }

    /// A `realloc` of `old` to `new`: the free of the old block, the allocation of the new one.
    pub fn realloc(&mut self, t_ms: f64, old: u64, new: u64, size: u64, stack: u32) -> &mut Self {
        self.free(t_ms, old).alloc(t_ms, new, size, stack)
    }

    /// An RSS reading of the root process.
    pub fn sample(&mut self, t_ms: f64, rss: u64) -> &mut Self {
        self.sample_of(t_ms, rss, None)
    }

    /// An RSS reading of the root process, with the bytes memsleuth held in it (format 1.4).
    pub fn sample_of(&mut self, t_ms: f64, rss: u64, own: Option<u64>) -> &mut Self {
        self.samples += 1;
        self.w.push(&Record::Sample(Sample {
            t_ns: ms(t_ms),
            readings: vec![ProcessReading {
                pid: 42,
                rss: Some(rss),
                own,
                ..ProcessReading::default()
            }],
        }));
        self
    }

    pub fn write_frames(&mut self) -> &mut Self {
        for f in std::mem::take(&mut self.deferred) {
            self.w.push(&Record::Frame(f));
        }
        self
    }

    /// Writes the pending events as the recorder does (threads first, then a batch per thread)
    /// and ends the chunk.
    pub fn flush(&mut self) -> &mut Self {
        self.write_batches();
        self.w.flush().expect("flush");
        self
    }

    fn write_batches(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for &thread in pending.keys() {
            if self.threads.insert(thread) {
                self.w.push(&Record::Thread(ThreadInfo {
                    id: thread,
                    native_id: u64::from(thread) + 1000,
                    name: String::new(),
                }));
            }
        }
        for (thread, events) in pending {
            if !events.is_empty() {
                self.w.push(&Record::Events(Events { thread, events }));
            }
        }
    }

    /// Writes the pending events, then `record` (a mark, a holder), as the recorder places
    /// a record after what it drained before it.
    pub fn record(&mut self, record: Record) -> &mut Self {
        self.write_batches();
        self.w.push(&record);
        self
    }

    /// The capture's length once flushed: where a reader of a capture still being written
    /// stops.
    pub fn written(&self) -> u64 {
        self.w.written()
    }

    /// Writes one event batch for `thread` without the others (to build hostile orders).
    pub fn flush_thread(&mut self, thread: u32) -> &mut Self {
        if let Some(events) = self.pending.remove(&thread) {
            self.w.push(&Record::Events(Events { thread, events }));
        }
        self
    }

    /// Ends the capture properly at `end_ms`.
    pub fn finish(mut self, end_ms: f64) -> Vec<u8> {
        self.write_batches();
        self.write_frames();
        self.w.flush().expect("flush");
        self.w
            .finish(Trailer {
                end_ns: ms(end_ms),
                reason: EndReason::TargetExited,
                target_status: ExitStatus::Code(0),
                samples: self.samples,
                dropped: 0,
                flushes: 0,
            })
            .expect("finish")
    }

    /// What a killed recorder leaves: everything flushed so far, no trailer. Pending events and
    /// deferred frames are lost.
    pub fn cut(self) -> Vec<u8> {
        self.w.abandon()
    }
}

/// A small deterministic random source (SplitMix64).
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes bytes to a fresh file in the temp dir and returns its path; the caller removes it.
pub(crate) fn temp_capture(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "memsleuth-analysis-{}-{name}.msl",
        std::process::id()
    ));
    std::fs::write(&path, bytes).expect("write capture");
    path
}
