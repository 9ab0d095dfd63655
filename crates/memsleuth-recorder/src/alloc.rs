//! The allocation recorder: one thread drains every hook ring, rebuilds each thread's Python
//! stack from its frame events, interns stacks as a prefix tree, and writes frames, stacks,
//! events and the process' own memory series into the capture.
//!
//! It never needs the GIL: code positions are turned into (function, file, line) by a resolver
//! that reads code objects without it, on this thread, once per distinct position; frames reach
//! the capture a little after the stacks that use them, which the format allows.

use rustc_hash::FxHashMap as HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memsleuth_format::{
    AllocEvent, CaptureWriter, Domain, EndReason, EventKind, Events, ExitStatus, Frame, Header,
    Mark, Record, Sample, StackNode, ThreadInfo, Trailer,
};
use memsleuth_hook::{Event, Kind};
use memsleuth_platform::{Current, Detail, Os, ProcessMemory};

use crate::RecorderError;

/// Turns code positions `(code object address, instruction byte offset)` into
/// `(function, file, line)`, one output per input, in order. Runs on the recorder thread: it
/// must not block, and must not take the GIL (a thread waiting in a hook for room in its ring may
/// hold it).
pub type ResolveFn = Box<dyn FnMut(&[(u64, u32)]) -> Vec<(String, String, u32)> + Send>;

/// Events a thread's batch holds before it is encoded into the current chunk: bounds the
/// recorder's memory at any event rate (decoded events take 40 bytes, encoded a few).
const BATCH_EVENTS: usize = 16 * 1024;
/// Encoded bytes that trigger a flush before the flush interval is up.
const CHUNK_BYTES: usize = 4 << 20;

/// Frame id used for stack levels whose frame events were lost.
const UNKNOWN_FRAME: u32 = 1;

/// How the recorder runs.
#[derive(Debug, Clone)]
pub struct AllocConfig {
    /// `CLOCK_MONOTONIC` nanoseconds ([`memsleuth_hook::now_ns`]) at the capture start; event
    /// and sample times are written relative to it.
    pub start_mono_ns: u64,
    /// How often the process' own memory is read (0: never).
    pub rss_interval: Duration,
    /// Longest time records wait in memory before they reach the file: what a crash can lose.
    pub flush_interval: Duration,
    /// Compress chunks (format 1.1 LZ4).
    pub compress: bool,
    /// The bytes memsleuth holds in the process, read with each memory sample (format 1.4's
    /// `own`), so an analysis can tell them from the program's.
    pub own_bytes: Option<fn() -> u64>,
    /// Called first on the recorder's thread, so the caller's hooks can mark it as memsleuth's
    /// own (the native instrument sees every `malloc`, the recorder's too).
    pub thread_start: Option<fn()>,
    /// Called on every pass of the recorder's loop, on its thread: work the hooks ask for and
    /// may not do themselves (the native unwinder's list of loaded objects).
    pub on_pass: Option<fn()>,
}

impl Default for AllocConfig {
    fn default() -> Self {
        AllocConfig {
            start_mono_ns: memsleuth_hook::now_ns(),
            rss_interval: Duration::from_millis(10),
            flush_interval: Duration::from_millis(50),
            compress: true,
            own_bytes: None,
            thread_start: None,
            on_pass: None,
        }
    }
}

/// What a finished recording wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    pub allocs: u64,
    pub frees: u64,
    /// Events the hooks could not record (full rings, no ring).
    pub dropped: u64,
    pub frames: u64,
    pub stacks: u64,
    pub samples: u64,
    pub flushes: u64,
}

enum Command {
    Mark(u64, String),
    /// A mark stamped when the recorder takes it, then answered (see [`AllocRecorder::phase`]).
    Phase(String, Sender<u64>),
    /// A record made elsewhere (census, gc, pymalloc, holder): written as is.
    Record(Box<Record>),
    /// Write everything recorded so far, frames resolved, then answer.
    Sync(Sender<Result<u64, String>>),
    Stop(EndReason, ExitStatus),
}

/// A handle other threads use to add records to a running capture (census, gc events).
#[derive(Debug, Clone)]
pub struct RecordSink {
    commands: Sender<Command>,
    start_mono_ns: u64,
}

impl RecordSink {
    /// Nanoseconds since the capture start, on the capture's clock.
    pub fn now_ns(&self) -> u64 {
        memsleuth_hook::now_ns().saturating_sub(self.start_mono_ns)
    }

    /// Adds a record; dropped silently once the recorder has stopped.
    pub fn push(&self, record: Record) {
        let _ = self.commands.send(Command::Record(Box::new(record)));
    }

    /// Places a phase mark (end of the program's main code, end of its shutdown) and waits
    /// until it is in the capture; returns its time. The recorder stamps it itself, after
    /// emitting what it drained so far, so every event recorded after the mark's time comes
    /// after the mark in the file: a reader learns of a phase before any event past it.
    pub fn phase(&self, label: &str) -> Result<u64, RecorderError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::Phase(label.to_string(), tx))
            .map_err(|_| RecorderError::ThreadLost)?;
        rx.recv().map_err(|_| RecorderError::ThreadLost)
    }

    /// [`AllocRecorder::sync`], from another thread.
    pub fn sync(&self) -> Result<u64, RecorderError> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(Command::Sync(tx))
            .map_err(|_| RecorderError::ThreadLost)?;
        match rx.recv() {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(e)) => Err(RecorderError::Format(std::io::Error::other(e).into())),
            Err(_) => Err(RecorderError::ThreadLost),
        }
    }
}

/// The recorder thread and how to stop it.
#[derive(Debug)]
pub struct AllocRecorder {
    commands: Sender<Command>,
    stopping: Arc<AtomicBool>,
    flushed: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<AllocStats, RecorderError>>>,
    start_mono_ns: u64,
}

impl AllocRecorder {
    /// Writes the header and starts recording. Hooks may already be producing events: anything
    /// in the rings is recorded.
    pub fn spawn<W: Write + Send + 'static>(
        out: W,
        header: Header,
        cfg: AllocConfig,
        resolve: ResolveFn,
    ) -> Result<Self, RecorderError> {
        let mut writer = CaptureWriter::new(out, &header)?;
        writer.set_compression(cfg.compress);
        let (tx, rx) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let flushed = Arc::new(AtomicU64::new(writer.written()));
        let flushed_by_state = Arc::clone(&flushed);
        let start_mono_ns = cfg.start_mono_ns;
        let pid = header.pid;
        let thread = std::thread::Builder::new()
            .name("memsleuth-recorder".into())
            .spawn(move || {
                // the recorder's own allocations must never be recorded: it stays "inside" the
                // hook for its whole life
                let _inside = memsleuth_hook::enter();
                if let Some(start) = cfg.thread_start {
                    start();
                }
                State::new(writer, cfg, resolve, pid, flushed_by_state).run(&rx, &flag)
            })
            .map_err(|_| RecorderError::ThreadLost)?;
        Ok(AllocRecorder {
            commands: tx,
            stopping,
            flushed,
            thread: Some(thread),
            start_mono_ns,
        })
    }

    /// The length of the capture up to its last complete chunk, as the recorder hands chunks
    /// to the OS: a reader on another thread may read that far at any time while recording
    /// goes on (frames may come after the stacks that use them; a [`AllocRecorder::sync`]
    /// before a report makes everything so far readable).
    pub fn flushed(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.flushed)
    }

    /// Places a mark at the current time.
    pub fn mark(&self, label: &str) {
        let t = memsleuth_hook::now_ns().saturating_sub(self.start_mono_ns);
        let _ = self.commands.send(Command::Mark(t, label.to_string()));
    }

    /// Nanoseconds since the capture start, on the capture's clock.
    pub fn now_ns(&self) -> u64 {
        memsleuth_hook::now_ns().saturating_sub(self.start_mono_ns)
    }

    /// Adds a record made by another instrument (census, gc, pymalloc, holder) to the capture.
    pub fn push(&self, record: Record) {
        let _ = self.commands.send(Command::Record(Box::new(record)));
    }

    /// A handle for other threads to add records.
    pub fn sink(&self) -> RecordSink {
        RecordSink {
            commands: self.commands.clone(),
            start_mono_ns: self.start_mono_ns,
        }
    }

    /// Blocks until everything the hooks produced so far is in the file, with every frame
    /// resolved, so the capture can be analysed while recording continues; returns the file's
    /// length at that point, the end of a complete chunk (the recorder goes on appending, and a
    /// reader must stop there). A caller holding the GIL should release it while waiting
    /// (hooks of other threads may wait for the recorder).
    pub fn sync(&self) -> Result<u64, RecorderError> {
        self.sink().sync()
    }

    /// Drains what is left, resolves every frame, writes the trailer and joins the thread.
    /// Call it after the hooks stopped producing.
    pub fn stop(
        &mut self,
        reason: EndReason,
        status: ExitStatus,
    ) -> Result<AllocStats, RecorderError> {
        let Some(thread) = self.thread.take() else {
            return Err(RecorderError::ThreadLost);
        };
        let _ = self.commands.send(Command::Stop(reason, status));
        self.stopping.store(true, Ordering::Release);
        thread.join().map_err(|_| RecorderError::ThreadLost)?
    }

    /// True until [`AllocRecorder::stop`] was called.
    pub fn running(&self) -> bool {
        self.thread.is_some()
    }
}

#[derive(Default)]
struct ThreadState {
    id: u32,
    /// Stack node id at each depth, outermost first.
    nodes: Vec<u32>,
    /// Native return addresses for the thread's next C allocation, outermost first.
    native: Vec<u64>,
    last_t_ns: u64,
    batch: Vec<AllocEvent>,
}

struct State<W: Write> {
    writer: CaptureWriter<W>,
    cfg: AllocConfig,
    threads: HashMap<u32, ThreadState>,
    thread_count: u32,
    new_threads: Vec<ThreadInfo>,
    frame_ids: HashMap<(u64, u32), u32>,
    /// The next frame id, shared by Python and native frames.
    next_frame: u32,
    native_names: crate::native::NativeNames,
    /// Records made while handling events (native frames, mappings), written before the batch
    /// that uses them.
    pending: Vec<Record>,
    /// Frame ids with the code position to resolve: `(id, code object address, instruction
    /// offset)`.
    unresolved: Vec<(u32, u64, u32)>,
    resolve: ResolveFn,
    nodes: HashMap<(u32, u32), u32>,
    new_nodes: Vec<StackNode>,
    memory: Option<<Current as Os>::Process>,
    stats: AllocStats,
    dropped_at_start: u64,
    last_flush: Instant,
    last_rss: Instant,
    clock: memsleuth_hook::TickConverter,
    /// Where [`AllocRecorder::flushed`] readers see the length written so far.
    flushed: Arc<AtomicU64>,
}

impl<W: Write> State<W> {
    fn new(
        writer: CaptureWriter<W>,
        cfg: AllocConfig,
        resolve: ResolveFn,
        pid: u32,
        flushed: Arc<AtomicU64>,
    ) -> Self {
        let memory = if cfg.rss_interval.is_zero() {
            None
        } else {
            Current::open(pid, Detail::Basic).ok()
        };
        let mut state = State {
            writer,
            cfg,
            threads: HashMap::default(),
            thread_count: 0,
            new_threads: Vec::new(),
            frame_ids: HashMap::default(),
            next_frame: UNKNOWN_FRAME + 1,
            native_names: crate::native::NativeNames::default(),
            pending: Vec::new(),
            unresolved: Vec::new(),
            resolve,
            nodes: HashMap::default(),
            new_nodes: Vec::new(),
            memory,
            stats: AllocStats::default(),
            dropped_at_start: memsleuth_hook::dropped_total(),
            last_flush: Instant::now(),
            last_rss: Instant::now(),
            clock: memsleuth_hook::TickConverter::new(),
            flushed,
        };
        state.writer.push(&Record::Frame(Frame {
            id: UNKNOWN_FRAME,
            function: "<unknown: frame events lost>".into(),
            file: String::new(),
            line: 0,
        }));
        state.read_memory();
        state
    }

    fn run(
        mut self,
        commands: &Receiver<Command>,
        stopping: &AtomicBool,
    ) -> Result<AllocStats, RecorderError> {
        let mut idle = Duration::from_micros(200);
        loop {
            let stop_requested = stopping.load(Ordering::Acquire);
            self.clock.calibrate();
            memsleuth_hook::tick_coarse();
            let drained = self.drain();
            while let Ok(cmd) = commands.try_recv() {
                match cmd {
                    Command::Mark(t_ns, label) => {
                        self.writer.push(&Record::Mark(Mark { t_ns, label }));
                    }
                    Command::Phase(label, ack) => {
                        // events drained so far may be held in per-thread batches: they must
                        // reach the file before the mark, which they all precede in time
                        self.emit_all();
                        let t_ns = memsleuth_hook::now_ns().saturating_sub(self.cfg.start_mono_ns);
                        self.writer.push(&Record::Mark(Mark { t_ns, label }));
                        let _ = ack.send(t_ns);
                    }
                    Command::Record(r) => self.writer.push(&r),
                    Command::Sync(ack) => {
                        let done = self.sync().map_err(|e| e.to_string());
                        let _ = ack.send(done);
                    }
                    Command::Stop(reason, status) => return self.finish(reason, status),
                }
            }
            self.collect_resolved();
            if let Some(pass) = self.cfg.on_pass {
                pass();
            }
            if self.last_rss.elapsed() >= self.cfg.rss_interval {
                self.read_memory();
            }
            if self.last_flush.elapsed() >= self.cfg.flush_interval
                || self.writer.pending() > CHUNK_BYTES
            {
                self.flush()?;
            }
            if drained == 0 && !stop_requested {
                std::thread::sleep(idle);
                // the hooks' coarse clock is refreshed on every pass: keep passes frequent
                idle = (idle * 2).min(Duration::from_millis(2));
            } else {
                idle = Duration::from_micros(200);
            }
        }
    }

    fn drain(&mut self) -> u64 {
        let mut events = std::mem::take(&mut self.threads);
        let mut exited = Vec::new();
        let stats = memsleuth_hook::drain_and_retire(
            |tid, evs| {
                let st = events.entry(tid).or_insert_with(|| {
                    self.thread_count += 1;
                    self.new_threads.push(ThreadInfo {
                        id: self.thread_count,
                        native_id: u64::from(tid),
                        name: String::new(),
                    });
                    ThreadState {
                        id: self.thread_count,
                        ..ThreadState::default()
                    }
                });
                for ev in evs {
                    self.event(st, ev);
                    if st.batch.len() >= BATCH_EVENTS {
                        self.emit(st);
                    }
                }
            },
            |tid| exited.push(tid),
        );
        // a thread that exited has sent its last events: write them, and forget the thread, so
        // a program that starts thread after thread does not grow the recorder
        for tid in exited {
            if let Some(mut st) = events.remove(&tid) {
                self.emit(&mut st);
            }
        }
        self.threads = events;
        stats.events
    }

    fn event(&mut self, st: &mut ThreadState, ev: &Event) {
        match ev.kind {
            Kind::Frame => {
                let depth = ev.stack as usize;
                if depth == 0 {
                    st.nodes.clear();
                    return;
                }
                st.nodes.truncate(depth - 1);
                while st.nodes.len() < depth - 1 {
                    let parent = st.nodes.last().copied().unwrap_or(0);
                    let node = self.node(parent, UNKNOWN_FRAME);
                    st.nodes.push(node);
                }
                let frame = self.frame(ev.addr, ev.size as u32);
                let parent = st.nodes.last().copied().unwrap_or(0);
                let node = self.node(parent, frame);
                st.nodes.push(node);
            }
            Kind::NativeFrame => {
                let depth = ev.stack as usize;
                st.native.truncate(depth.saturating_sub(1));
                st.native.resize(depth.saturating_sub(1), 0);
                if depth > 0 {
                    st.native.push(ev.addr);
                }
            }
            Kind::Alloc => {
                let t_ns = self.time(st, ev);
                self.stats.allocs += 1;
                let domain = Domain::from_code(ev.domain);
                let mut stack = st.nodes.last().copied().unwrap_or(0);
                // the C frames go on top of the Python ones: the allocation's own stack (for
                // Python's allocators, sent only when C code outside the interpreter made it)
                for &pc in &st.native {
                    let frame =
                        self.native_names
                            .frame(pc, &mut self.next_frame, &mut self.pending);
                    stack = self.node(stack, frame);
                }
                st.batch.push(AllocEvent {
                    kind: EventKind::Alloc,
                    domain,
                    t_ns,
                    addr: ev.addr,
                    size: ev.size,
                    stack,
                });
            }
            Kind::Free => {
                let t_ns = self.time(st, ev);
                self.stats.frees += 1;
                st.batch.push(AllocEvent {
                    kind: EventKind::Free,
                    domain: Domain::from_code(ev.domain),
                    t_ns,
                    addr: ev.addr,
                    size: 0,
                    stack: 0,
                });
            }
        }
    }

    /// An event's time since the capture start, never before the thread's previous event (see
    /// `memsleuth_hook::event_ticks`: only a thread's first event after another thread's is
    /// stamped exactly).
    fn time(&self, st: &mut ThreadState, ev: &Event) -> u64 {
        let t_ns = self
            .clock
            .to_ns(ev.time_ns)
            .saturating_sub(self.cfg.start_mono_ns)
            .max(st.last_t_ns);
        st.last_t_ns = t_ns;
        t_ns
    }

    fn frame(&mut self, code: u64, instr: u32) -> u32 {
        let next = &mut self.next_frame;
        *self.frame_ids.entry((code, instr)).or_insert_with(|| {
            let id = *next;
            *next += 1;
            self.unresolved.push((id, code, instr));
            id
        })
    }

    fn node(&mut self, parent: u32, frame: u32) -> u32 {
        let next = self.nodes.len() as u32 + 1;
        *self.nodes.entry((parent, frame)).or_insert_with(|| {
            self.new_nodes.push(StackNode {
                id: next,
                parent,
                frame,
            });
            next
        })
    }

    /// Names the code positions seen since the last call.
    fn collect_resolved(&mut self) {
        if self.unresolved.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.unresolved);
        let keys: Vec<(u64, u32)> = batch
            .iter()
            .map(|&(_, code, instr)| (code, instr))
            .collect();
        let names = (self.resolve)(&keys);
        self.stats.frames += batch.len() as u64;
        for (&(id, _, _), (function, file, line)) in batch.iter().zip(names) {
            self.writer.push(&Record::Frame(Frame {
                id,
                function,
                file,
                line,
            }));
        }
    }

    /// Everything so far into the file, every frame resolved.
    fn sync(&mut self) -> Result<u64, RecorderError> {
        self.clock.calibrate();
        memsleuth_hook::tick_coarse();
        while self.drain() > 0 {}
        self.collect_resolved();
        self.flush()?;
        Ok(self.writer.written())
    }

    fn read_memory(&mut self) {
        self.last_rss = Instant::now();
        let Some(handle) = self.memory.as_mut() else {
            return;
        };
        let t_ns = memsleuth_hook::now_ns().saturating_sub(self.cfg.start_mono_ns);
        if let Ok(m) = handle.read(Detail::Basic) {
            let mut reading = crate::rss::to_reading(handle.pid(), m);
            reading.own = self.cfg.own_bytes.map(|own| own());
            self.writer.push(&Record::Sample(Sample {
                t_ns,
                readings: vec![reading],
            }));
            self.stats.samples += 1;
        }
    }

    /// Writes what readers need before events: new threads and stack nodes.
    fn push_names(&mut self) {
        for t in self.new_threads.drain(..) {
            self.writer.push(&Record::Thread(t));
        }
        for r in self.pending.drain(..) {
            self.writer.push(&r);
        }
        for n in self.new_nodes.drain(..) {
            self.writer.push(&Record::Stack(n));
        }
        self.stats.stacks = self.nodes.len() as u64;
    }

    /// Encodes one thread's batch into the current chunk (after the names it uses).
    fn emit(&mut self, st: &mut ThreadState) {
        if st.batch.is_empty() {
            return;
        }
        self.push_names();
        let record = Record::Events(Events {
            thread: st.id,
            events: std::mem::take(&mut st.batch),
        });
        self.writer.push(&record);
        // keep the buffer: the next batch needs the same room
        if let Record::Events(Events { mut events, .. }) = record {
            events.clear();
            st.batch = events;
        }
    }

    /// Encodes every thread's pending batch into the current chunk.
    fn emit_all(&mut self) {
        let mut threads = std::mem::take(&mut self.threads);
        for st in threads.values_mut() {
            self.emit(st);
        }
        self.threads = threads;
    }

    /// Writes everything pending in dependency order and hands the chunk to the OS.
    fn flush(&mut self) -> Result<(), RecorderError> {
        self.push_names();
        self.emit_all();
        self.writer.flush()?;
        self.flushed.store(self.writer.written(), Ordering::Release);
        self.last_flush = Instant::now();
        Ok(())
    }

    fn finish(
        mut self,
        reason: EndReason,
        status: ExitStatus,
    ) -> Result<AllocStats, RecorderError> {
        // the hooks are off: whatever is in the rings now is the last of it
        self.clock.calibrate();
        while self.drain() > 0 {}
        self.read_memory();
        self.collect_resolved();
        self.flush()?;
        self.stats.dropped = memsleuth_hook::dropped_total().saturating_sub(self.dropped_at_start);
        self.stats.flushes = self.writer.flushes() + 1;
        let trailer = Trailer {
            end_ns: memsleuth_hook::now_ns().saturating_sub(self.cfg.start_mono_ns),
            reason,
            target_status: status,
            samples: self.stats.samples,
            dropped: self.stats.dropped,
            flushes: 0,
        };
        self.writer.finish(trailer)?;
        Ok(self.stats)
    }
}
