//! Record types and their bodies. Tags are append-only: a tag number, once released, keeps its
//! meaning forever. A newer minor version may append fields to the end of a body; readers ignore
//! trailing bytes they do not understand.

use crate::codec::{Dec, DecodeError, Enc};

pub(crate) const TAG_HEADER: u64 = 1;
pub(crate) const TAG_PROCESS: u64 = 2;
pub(crate) const TAG_SAMPLE: u64 = 3;
pub(crate) const TAG_PROCESS_EXIT: u64 = 4;
pub(crate) const TAG_MARK: u64 = 5;
pub(crate) const TAG_TRAILER: u64 = 6;
// 1.1: the `python` allocation instrument
pub(crate) const TAG_FRAME: u64 = 7;
pub(crate) const TAG_STACK: u64 = 8;
pub(crate) const TAG_EVENTS: u64 = 9;
pub(crate) const TAG_THREAD: u64 = 10;
// 1.2: the `objects`, `gc` and `pymalloc` instruments
pub(crate) const TAG_CENSUS: u64 = 11;
pub(crate) const TAG_GC: u64 = 12;
pub(crate) const TAG_PYMALLOC: u64 = 13;
pub(crate) const TAG_HOLDER: u64 = 14;
// 1.5
pub(crate) const TAG_MAPPING: u64 = 15;
pub(crate) const TAG_NATIVE_FRAME: u64 = 16;

/// One record of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Header(Header),
    Process(ProcessInfo),
    Sample(Sample),
    ProcessExit(ProcessExit),
    Mark(Mark),
    Trailer(Trailer),
    /// 1.1: an interned source location.
    Frame(Frame),
    /// 1.1: an interned call stack, as one node of a prefix tree.
    Stack(StackNode),
    /// 1.1: a batch of allocation events of one thread.
    Events(Events),
    /// 1.1: a thread that allocated.
    Thread(ThreadInfo),
    /// 1.2: live Python objects by type at one moment.
    Census(Census),
    /// 1.2: one run of the cyclic garbage collector.
    Gc(GcCollection),
    /// 1.2: the state of the small-object allocator at one moment.
    Pymalloc(Pymalloc),
    /// 1.2: who keeps a surviving block alive: the object it holds and its retention path.
    Holder(Holder),
    /// 1.5: an object (executable, library, extension module) loaded into the process.
    Mapping(Mapping),
    /// 1.5: a native return address, named later from its object's file.
    NativeFrame(NativeFrame),
    /// A record whose tag this reader does not know (written by a newer minor version).
    Unknown(UnknownRecord),
}

/// What was captured, from where, and how. Always the first record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Version of the memsleuth that wrote the capture.
    pub tool_version: String,
    /// The process being observed (the root of the process tree).
    pub pid: u32,
    /// Its command line, when known.
    pub argv: Vec<String>,
    /// Wall-clock start, nanoseconds since the Unix epoch. All other times are offsets from it.
    pub start_unix_ns: u64,
    /// `sys.version` of the target when known, else empty.
    pub python_version: String,
    /// Instruments that were on (`rss`, `python`, ...).
    pub instruments: Vec<String>,
    /// Period of the memory sampler, nanoseconds; 0 when no sampler ran.
    pub sample_interval_ns: u64,
    /// Mean bytes between sampled allocations; 0 when allocations are not sampled.
    pub sample_bytes: u64,
    /// Host name of the machine the target ran on.
    pub hostname: String,
}

/// First sight of a process in the observed tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// When it was first seen, nanoseconds since the capture start.
    pub seen_ns: u64,
    pub argv: Vec<String>,
}

/// A field of a process reading. The discriminant is the bit in the field mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Rss = 0,
    Vms = 1,
    Uss = 2,
    Pss = 3,
    Swap = 4,
    Peak = 5,
    /// 1.3: open file descriptors (a count, not bytes).
    Fds = 6,
    /// 1.3: threads (a count, not bytes).
    Threads = 7,
    /// 1.4: bytes memsleuth itself holds in the process (its recorder's buffers, the tables of
    /// an analysis made while the program runs), part of its RSS but none of the program's.
    Own = 8,
}

impl Field {
    /// Every field this version knows, in bit order (the order values are written in).
    pub const ALL: [Field; 9] = [
        Field::Rss,
        Field::Vms,
        Field::Uss,
        Field::Pss,
        Field::Swap,
        Field::Peak,
        Field::Fds,
        Field::Threads,
        Field::Own,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Rss => "rss",
            Field::Vms => "vms",
            Field::Uss => "uss",
            Field::Pss => "pss",
            Field::Swap => "swap",
            Field::Peak => "peak",
            Field::Fds => "fds",
            Field::Threads => "threads",
            Field::Own => "own",
        }
    }
}

/// Memory of one process at one instant, in bytes, and its descriptor and thread counts. `None`
/// where the platform could not tell (for instance USS without permission to read
/// `smaps_rollup`), or the capture predates the field (fds and threads before 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessReading {
    pub pid: u32,
    pub rss: Option<u64>,
    pub vms: Option<u64>,
    pub uss: Option<u64>,
    pub pss: Option<u64>,
    pub swap: Option<u64>,
    /// High-water mark of RSS over the process' life (`VmHWM`).
    pub peak: Option<u64>,
    /// 1.3: open file descriptors.
    pub fds: Option<u64>,
    /// 1.3: threads, the main one included.
    pub threads: Option<u64>,
    /// 1.4: bytes memsleuth itself holds in the process, when it runs inside it.
    pub own: Option<u64>,
}

impl ProcessReading {
    pub fn get(&self, field: Field) -> Option<u64> {
        match field {
            Field::Rss => self.rss,
            Field::Vms => self.vms,
            Field::Uss => self.uss,
            Field::Pss => self.pss,
            Field::Swap => self.swap,
            Field::Peak => self.peak,
            Field::Fds => self.fds,
            Field::Threads => self.threads,
            Field::Own => self.own,
        }
    }

    pub fn set(&mut self, field: Field, value: Option<u64>) {
        let slot = match field {
            Field::Rss => &mut self.rss,
            Field::Vms => &mut self.vms,
            Field::Uss => &mut self.uss,
            Field::Pss => &mut self.pss,
            Field::Swap => &mut self.swap,
            Field::Peak => &mut self.peak,
            Field::Fds => &mut self.fds,
            Field::Threads => &mut self.threads,
            Field::Own => &mut self.own,
        };
        *slot = value;
    }
}

/// One tick of the memory sampler: a reading of every live process in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample {
    pub t_ns: u64,
    pub readings: Vec<ProcessReading>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExitStatus {
    #[default]
    Unknown,
    Code(i32),
    Signal(i32),
}

/// A process of the tree was seen to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessExit {
    pub pid: u32,
    pub t_ns: u64,
    pub status: ExitStatus,
}

/// A user-placed point in time (an iteration boundary, a phase name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mark {
    pub t_ns: u64,
    pub label: String,
}

/// Why the capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndReason {
    #[default]
    Unknown,
    /// The target (root process) exited.
    TargetExited,
    /// The user interrupted (Ctrl-C, SIGTERM).
    Interrupted,
    /// The requested duration elapsed.
    Duration,
    /// The API stopped the capture (end of a `with` block).
    Stopped,
}

impl EndReason {
    fn code(self) -> u8 {
        match self {
            EndReason::Unknown => 0,
            EndReason::TargetExited => 1,
            EndReason::Interrupted => 2,
            EndReason::Duration => 3,
            EndReason::Stopped => 4,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => EndReason::TargetExited,
            2 => EndReason::Interrupted,
            3 => EndReason::Duration,
            4 => EndReason::Stopped,
            _ => EndReason::Unknown,
        }
    }
}

/// Last record of a complete capture. Its absence means the capture was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailer {
    pub end_ns: u64,
    pub reason: EndReason,
    /// Exit status of the root process, when it ended.
    pub target_status: ExitStatus,
    pub samples: u64,
    /// Events that could not be recorded (buffers full, unreadable process).
    pub dropped: u64,
    /// Chunks written, this trailer's own included.
    pub flushes: u64,
}

/// A source location a stack passes through. Several ids may name the same location (the
/// recorder interns by code position, not by line); readers merge them by value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Frame {
    /// Unique within the capture; never 0.
    pub id: u32,
    pub function: String,
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: u32,
}

/// An object mapped into the process (format 1.5), so that native frames can be named from its
/// file after the process is gone, on the same machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapping {
    /// Unique within the capture; never 0.
    pub id: u32,
    pub path: String,
    /// The GNU build id, in hex; empty when the object has none. A reader can check that the
    /// file it opens is the one that was loaded.
    pub build_id: String,
    /// Lowest and highest (exclusive) address of its loaded segments in the process.
    pub start: u64,
    pub end: u64,
    /// What the dynamic linker added to the file's addresses.
    pub bias: u64,
    /// Whether the object has unwind tables (`.eh_frame_hdr`): without them, native stacks stop
    /// in it, and its callers are missing.
    pub unwind: bool,
}

/// A native frame (format 1.5): a return address in a [`Mapping`]'s object. Its id is one of the
/// [`Frame`] ids, so a [`StackNode`] names either kind; a reader names it from the object's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct NativeFrame {
    /// Unique among frame ids; never 0.
    pub id: u32,
    /// The [`Mapping`] id; 0 when the address lay in no known object.
    pub mapping: u32,
    /// The return address as a file address of the mapping's object (the process address when
    /// `mapping` is 0). The call instruction ends just before it.
    pub address: u64,
}

/// One node of the stack prefix tree: the stack `id` is the stack `parent` with `frame` called
/// on top of it. Parent 0 is the empty stack, so a stack of depth n is a chain of n nodes.
/// A node is always written before any node or event that refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StackNode {
    /// Unique within the capture; never 0.
    pub id: u32,
    pub parent: u32,
    /// A [`Frame`] id. The frame record may come later in the capture than the node (frames are
    /// resolved in batches); a reader resolves frames after reading.
    pub frame: u32,
}

/// What happened to a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum EventKind {
    #[default]
    Alloc,
    Free,
}

/// Which allocator a block came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Domain {
    /// `PyMem_RawMalloc` and friends.
    Raw,
    /// `PyMem_Malloc`.
    Mem,
    /// `PyObject_Malloc`: Python objects.
    #[default]
    Obj,
    /// Any other allocator (native instrument).
    Native,
}

impl Domain {
    pub fn code(self) -> u8 {
        match self {
            Domain::Raw => 0,
            Domain::Mem => 1,
            Domain::Obj => 2,
            Domain::Native => 3,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code & 3 {
            0 => Domain::Raw,
            1 => Domain::Mem,
            2 => Domain::Obj,
            _ => Domain::Native,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Domain::Raw => "raw",
            Domain::Mem => "mem",
            Domain::Obj => "obj",
            Domain::Native => "native",
        }
    }
}

/// One allocation or free. A `realloc` is a free of the old block followed by an allocation of
/// the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AllocEvent {
    pub kind: EventKind,
    pub domain: Domain,
    /// Nanoseconds since the capture start, on the same clock as [`Sample`]s. Stored to the
    /// microsecond: written values are rounded down to a multiple of 1000.
    pub t_ns: u64,
    pub addr: u64,
    /// Bytes requested; 0 for a free.
    pub size: u64,
    /// [`StackNode`] id the block was allocated under; 0 = no Python stack. Always 0 for a free.
    pub stack: u32,
}

/// Allocation events of one thread, in the order they happened on it. Events of different
/// threads interleave only through their times.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Events {
    /// A [`ThreadInfo`] id.
    pub thread: u32,
    pub events: Vec<AllocEvent>,
}

/// A thread seen allocating.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadInfo {
    /// Capture-local id, as used by [`Events`].
    pub id: u32,
    /// The OS thread id (`gettid`), 0 when unknown.
    pub native_id: u64,
    pub name: String,
}

/// Live Python objects by type, from a walk of the object graph (the `objects` instrument).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Census {
    pub t_ns: u64,
    /// How long the walk held the interpreter.
    pub duration_ns: u64,
    /// Objects and shallow bytes seen in all.
    pub objects: u64,
    pub bytes: u64,
    /// Whether automatic garbage collection was enabled (`gc.isenabled()`).
    pub gc_enabled: bool,
    /// `gc.get_count()`: allocations since the last collection, per generation.
    pub gc_counts: Vec<u64>,
    /// Objects (and their bytes) that nothing reachable holds: cycles awaiting the collector.
    pub unreachable: u64,
    pub unreachable_bytes: u64,
    /// Objects in `gc.garbage` (uncollectable).
    pub garbage: u64,
    /// The largest types; smaller ones are folded into one row named `(other)`.
    pub types: Vec<CensusType>,
    /// What `gc.garbage` holds: type name and count, most first.
    pub garbage_types: Vec<(String, u64)>,
}

/// One type's row in a [`Census`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CensusType {
    /// Qualified name, `module.QualName` (bare for builtins).
    pub name: String,
    pub count: u64,
    /// Shallow bytes, as `sys.getsizeof` counts them.
    pub bytes: u64,
    /// Bytes reachable only through instances of this type, when computed.
    pub retained: Option<u64>,
    /// Allocation-block addresses of a few instances, to find where they were allocated.
    pub samples: Vec<u64>,
}

/// One collection, from `gc.callbacks`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcCollection {
    /// When it started.
    pub t_ns: u64,
    pub duration_ns: u64,
    pub generation: u8,
    pub collected: u64,
    pub uncollectable: u64,
}

/// The small-object allocator (pymalloc), from `_PyObject_DebugMallocStats` and `sys`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pymalloc {
    pub t_ns: u64,
    /// `sys.getallocatedblocks()`.
    pub allocated_blocks: u64,
    /// `sys.gettotalrefcount()`, on debug builds only.
    pub total_refcount: Option<i64>,
    pub arena_size: u64,
    pub pool_size: u64,
    pub arenas_allocated_total: u64,
    pub arenas_reclaimed: u64,
    pub arenas_highwater: u64,
    pub arenas_now: u64,
    /// Bytes in blocks handed out, and in free blocks of pools in use.
    pub bytes_in_use: u64,
    pub bytes_free_blocks: u64,
    /// Pools in arenas that hold no block.
    pub unused_pools: u64,
    pub bytes_pool_headers: u64,
    pub bytes_quantization: u64,
    pub bytes_arena_alignment: u64,
    pub classes: Vec<SizeClass>,
}

/// One size class of pymalloc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SizeClass {
    /// Block size in bytes.
    pub size: u32,
    pub pools: u64,
    pub blocks_in_use: u64,
    pub blocks_free: u64,
}

/// A surviving allocation that is a Python object, and the chain of references that keeps it
/// alive, written when tracking stops (the link from an allocation site to its holder).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holder {
    /// The [`StackNode`] that allocated the block.
    pub stack: u32,
    /// The block's address.
    pub addr: u64,
    /// What kind of root the path starts at (see `docs/format.md`).
    pub root_kind: u8,
    /// The root in words.
    pub root: String,
    /// From the root object to the object in the block (last).
    pub steps: Vec<HolderStep>,
}

/// One object on a [`Holder`] path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolderStep {
    /// How the previous step refers to this one (`.attr`, `['key']`, `[3]`...).
    pub edge: String,
    pub type_name: String,
    /// A short description made without running the object's own code.
    pub repr: String,
    pub addr: u64,
    pub size: u64,
}

/// A record with a tag this reader does not know; its body is kept for tools that pass it on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownRecord {
    pub tag: u64,
    pub body: Vec<u8>,
}

fn put_status(e: &mut Enc<'_>, s: ExitStatus) {
    match s {
        ExitStatus::Unknown => e.u8(0),
        ExitStatus::Code(c) => {
            e.u8(1);
            e.i64(i64::from(c));
        }
        ExitStatus::Signal(c) => {
            e.u8(2);
            e.i64(i64::from(c));
        }
    }
}

fn get_status(d: &mut Dec<'_>) -> Result<ExitStatus, DecodeError> {
    let kind = d.u8()?;
    let mut code = || -> Result<i32, DecodeError> {
        i32::try_from(d.i64()?).map_err(|_| DecodeError("exit status out of range"))
    };
    Ok(match kind {
        1 => ExitStatus::Code(code()?),
        2 => ExitStatus::Signal(code()?),
        _ => ExitStatus::Unknown,
    })
}

fn get_pid(d: &mut Dec<'_>) -> Result<u32, DecodeError> {
    u32::try_from(d.u64()?).map_err(|_| DecodeError("pid out of range"))
}

fn get_u32(d: &mut Dec<'_>) -> Result<u32, DecodeError> {
    u32::try_from(d.u64()?).map_err(|_| DecodeError("id out of range"))
}

// An event batch: thread, count, then per event a head varint (bit 0 kind, bits 1-2 domain,
// the rest the microseconds since the previous event of the batch), the address as a zigzag
// delta from the previous event's address, and for an allocation its size and stack. Times are
// kept to the microsecond: nanosecond digits are noise to a leak analysis, and as random low
// bits they would triple the compressed size of a capture.
fn encode_events(e: &mut Enc<'_>, b: &Events) {
    e.u64(u64::from(b.thread));
    e.u64(b.events.len() as u64);
    let (mut t_us, mut addr) = (0u64, 0u64);
    for ev in &b.events {
        let now = ev.t_ns / 1000;
        let dt = now.saturating_sub(t_us);
        t_us = t_us.max(now);
        let kind = u64::from(ev.kind == EventKind::Free);
        e.u64(kind | u64::from(ev.domain.code()) << 1 | dt << 3);
        e.i64(ev.addr.wrapping_sub(addr) as i64);
        addr = ev.addr;
        if ev.kind == EventKind::Alloc {
            e.u64(ev.size);
            e.u64(u64::from(ev.stack));
        }
    }
}

fn decode_events(d: &mut Dec<'_>) -> Result<Events, DecodeError> {
    let thread = get_u32(d)?;
    let n = d.count()?;
    let mut events = Vec::with_capacity(n);
    let (mut t_us, mut addr) = (0u64, 0u64);
    for _ in 0..n {
        let head = d.u64()?;
        t_us = t_us
            .checked_add(head >> 3)
            .filter(|t| *t <= u64::MAX / 1000)
            .ok_or(DecodeError("event time overflows"))?;
        let t = t_us * 1000;
        addr = addr.wrapping_add(d.i64()? as u64);
        let kind = if head & 1 == 1 {
            EventKind::Free
        } else {
            EventKind::Alloc
        };
        let (size, stack) = match kind {
            EventKind::Alloc => (d.u64()?, get_u32(d)?),
            EventKind::Free => (0, 0),
        };
        events.push(AllocEvent {
            kind,
            domain: Domain::from_code(((head >> 1) & 3) as u8),
            t_ns: t,
            addr,
            size,
            stack,
        });
    }
    Ok(Events { thread, events })
}

// An optional value is stored as value + 1, with 0 for "none".
fn put_opt(e: &mut Enc<'_>, v: Option<u64>) {
    e.u64(v.map_or(0, |v| v.saturating_add(1)));
}

fn get_opt(d: &mut Dec<'_>) -> Result<Option<u64>, DecodeError> {
    Ok(d.u64()?.checked_sub(1))
}

fn encode_census(e: &mut Enc<'_>, c: &Census) {
    e.u64(c.t_ns);
    e.u64(c.duration_ns);
    e.u64(c.objects);
    e.u64(c.bytes);
    e.u8(u8::from(c.gc_enabled));
    e.u64(c.gc_counts.len() as u64);
    for n in &c.gc_counts {
        e.u64(*n);
    }
    e.u64(c.unreachable);
    e.u64(c.unreachable_bytes);
    e.u64(c.garbage);
    e.u64(c.types.len() as u64);
    for t in &c.types {
        e.str(&t.name);
        e.u64(t.count);
        e.u64(t.bytes);
        put_opt(e, t.retained);
        e.u64(t.samples.len() as u64);
        for a in &t.samples {
            e.u64(*a);
        }
    }
    e.u64(c.garbage_types.len() as u64);
    for (name, n) in &c.garbage_types {
        e.str(name);
        e.u64(*n);
    }
}

fn decode_census(d: &mut Dec<'_>) -> Result<Census, DecodeError> {
    let mut c = Census {
        t_ns: d.u64()?,
        duration_ns: d.u64()?,
        objects: d.u64()?,
        bytes: d.u64()?,
        gc_enabled: d.u8()? != 0,
        ..Census::default()
    };
    let n = d.count()?;
    for _ in 0..n {
        c.gc_counts.push(d.u64()?);
    }
    c.unreachable = d.u64()?;
    c.unreachable_bytes = d.u64()?;
    c.garbage = d.u64()?;
    let n = d.count()?;
    c.types.reserve(n);
    for _ in 0..n {
        let mut t = CensusType {
            name: d.str()?,
            count: d.u64()?,
            bytes: d.u64()?,
            retained: get_opt(d)?,
            samples: Vec::new(),
        };
        let k = d.count()?;
        for _ in 0..k {
            t.samples.push(d.u64()?);
        }
        c.types.push(t);
    }
    let n = d.count()?;
    for _ in 0..n {
        c.garbage_types.push((d.str()?, d.u64()?));
    }
    Ok(c)
}

fn encode_pymalloc(e: &mut Enc<'_>, p: &Pymalloc) {
    e.u64(p.t_ns);
    e.u64(p.allocated_blocks);
    match p.total_refcount {
        Some(n) => {
            e.u8(1);
            e.i64(n);
        }
        None => e.u8(0),
    }
    for v in [
        p.arena_size,
        p.pool_size,
        p.arenas_allocated_total,
        p.arenas_reclaimed,
        p.arenas_highwater,
        p.arenas_now,
        p.bytes_in_use,
        p.bytes_free_blocks,
        p.unused_pools,
        p.bytes_pool_headers,
        p.bytes_quantization,
        p.bytes_arena_alignment,
    ] {
        e.u64(v);
    }
    e.u64(p.classes.len() as u64);
    for c in &p.classes {
        e.u64(u64::from(c.size));
        e.u64(c.pools);
        e.u64(c.blocks_in_use);
        e.u64(c.blocks_free);
    }
}

fn decode_pymalloc(d: &mut Dec<'_>) -> Result<Pymalloc, DecodeError> {
    let t_ns = d.u64()?;
    let allocated_blocks = d.u64()?;
    let total_refcount = match d.u8()? {
        0 => None,
        _ => Some(d.i64()?),
    };
    let mut p = Pymalloc {
        t_ns,
        allocated_blocks,
        total_refcount,
        arena_size: d.u64()?,
        pool_size: d.u64()?,
        arenas_allocated_total: d.u64()?,
        arenas_reclaimed: d.u64()?,
        arenas_highwater: d.u64()?,
        arenas_now: d.u64()?,
        bytes_in_use: d.u64()?,
        bytes_free_blocks: d.u64()?,
        unused_pools: d.u64()?,
        bytes_pool_headers: d.u64()?,
        bytes_quantization: d.u64()?,
        bytes_arena_alignment: d.u64()?,
        classes: Vec::new(),
    };
    let n = d.count()?;
    for _ in 0..n {
        p.classes.push(SizeClass {
            size: get_u32(d)?,
            pools: d.u64()?,
            blocks_in_use: d.u64()?,
            blocks_free: d.u64()?,
        });
    }
    Ok(p)
}

impl Record {
    pub(crate) fn tag(&self) -> u64 {
        match self {
            Record::Header(_) => TAG_HEADER,
            Record::Process(_) => TAG_PROCESS,
            Record::Sample(_) => TAG_SAMPLE,
            Record::ProcessExit(_) => TAG_PROCESS_EXIT,
            Record::Mark(_) => TAG_MARK,
            Record::Trailer(_) => TAG_TRAILER,
            Record::Frame(_) => TAG_FRAME,
            Record::Stack(_) => TAG_STACK,
            Record::Events(_) => TAG_EVENTS,
            Record::Thread(_) => TAG_THREAD,
            Record::Census(_) => TAG_CENSUS,
            Record::Gc(_) => TAG_GC,
            Record::Pymalloc(_) => TAG_PYMALLOC,
            Record::Holder(_) => TAG_HOLDER,
            Record::Mapping(_) => TAG_MAPPING,
            Record::NativeFrame(_) => TAG_NATIVE_FRAME,
            Record::Unknown(u) => u.tag,
        }
    }

    /// Appends this record's body (not its tag or length) to `out`.
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        let mut e = Enc(out);
        match self {
            Record::Header(h) => {
                e.str(&h.tool_version);
                e.u64(u64::from(h.pid));
                e.strs(&h.argv);
                e.u64(h.start_unix_ns);
                e.str(&h.python_version);
                e.strs(&h.instruments);
                e.u64(h.sample_interval_ns);
                e.u64(h.sample_bytes);
                e.str(&h.hostname);
            }
            Record::Process(p) => {
                e.u64(u64::from(p.pid));
                e.u64(u64::from(p.ppid));
                e.u64(p.seen_ns);
                e.strs(&p.argv);
            }
            Record::Sample(s) => {
                e.u64(s.t_ns);
                e.u64(s.readings.len() as u64);
                for r in &s.readings {
                    e.u64(u64::from(r.pid));
                    let mask = Field::ALL
                        .iter()
                        .filter(|f| r.get(**f).is_some())
                        .fold(0u64, |m, f| m | 1 << *f as u64);
                    e.u64(mask);
                    for f in Field::ALL {
                        if let Some(v) = r.get(f) {
                            e.u64(v);
                        }
                    }
                }
            }
            Record::ProcessExit(x) => {
                e.u64(u64::from(x.pid));
                e.u64(x.t_ns);
                put_status(&mut e, x.status);
            }
            Record::Mark(m) => {
                e.u64(m.t_ns);
                e.str(&m.label);
            }
            Record::Trailer(t) => {
                e.u64(t.end_ns);
                e.u8(t.reason.code());
                put_status(&mut e, t.target_status);
                e.u64(t.samples);
                e.u64(t.dropped);
                e.u64(t.flushes);
            }
            Record::Frame(f) => {
                e.u64(u64::from(f.id));
                e.str(&f.function);
                e.str(&f.file);
                e.u64(u64::from(f.line));
            }
            Record::Mapping(m) => {
                e.u64(u64::from(m.id));
                e.str(&m.path);
                e.str(&m.build_id);
                e.u64(m.start);
                e.u64(m.end);
                e.u64(m.bias);
                e.u8(u8::from(m.unwind));
            }
            Record::NativeFrame(f) => {
                e.u64(u64::from(f.id));
                e.u64(u64::from(f.mapping));
                e.u64(f.address);
            }
            Record::Stack(n) => {
                e.u64(u64::from(n.id));
                e.u64(u64::from(n.parent));
                e.u64(u64::from(n.frame));
            }
            Record::Events(b) => encode_events(&mut e, b),
            Record::Thread(t) => {
                e.u64(u64::from(t.id));
                e.u64(t.native_id);
                e.str(&t.name);
            }
            Record::Census(c) => encode_census(&mut e, c),
            Record::Gc(g) => {
                e.u64(g.t_ns);
                e.u64(g.duration_ns);
                e.u8(g.generation);
                e.u64(g.collected);
                e.u64(g.uncollectable);
            }
            Record::Pymalloc(p) => encode_pymalloc(&mut e, p),
            Record::Holder(h) => {
                e.u64(u64::from(h.stack));
                e.u64(h.addr);
                e.u8(h.root_kind);
                e.str(&h.root);
                e.u64(h.steps.len() as u64);
                for s in &h.steps {
                    e.str(&s.edge);
                    e.str(&s.type_name);
                    e.str(&s.repr);
                    e.u64(s.addr);
                    e.u64(s.size);
                }
            }
            Record::Unknown(u) => e.0.extend_from_slice(&u.body),
        }
    }

    /// Decodes a body. Trailing bytes after the known fields are ignored (appended by a newer
    /// minor version).
    pub(crate) fn decode(tag: u64, body: &[u8]) -> Result<Record, DecodeError> {
        let mut d = Dec::new(body);
        let rec = match tag {
            TAG_HEADER => Record::Header(Header {
                tool_version: d.str()?,
                pid: get_pid(&mut d)?,
                argv: d.strs()?,
                start_unix_ns: d.u64()?,
                python_version: d.str()?,
                instruments: d.strs()?,
                sample_interval_ns: d.u64()?,
                sample_bytes: d.u64()?,
                hostname: d.str()?,
            }),
            TAG_PROCESS => Record::Process(ProcessInfo {
                pid: get_pid(&mut d)?,
                ppid: get_pid(&mut d)?,
                seen_ns: d.u64()?,
                argv: d.strs()?,
            }),
            TAG_SAMPLE => {
                let t_ns = d.u64()?;
                let n = d.count()?;
                let mut readings = Vec::with_capacity(n);
                for _ in 0..n {
                    let mut r = ProcessReading {
                        pid: get_pid(&mut d)?,
                        ..ProcessReading::default()
                    };
                    let mask = d.u64()?;
                    // fields are written in bit order; bits this version does not know come
                    // after the known ones, so stop reading this entry's values there
                    for f in Field::ALL {
                        if mask & (1 << f as u64) != 0 {
                            r.set(f, Some(d.u64()?));
                        }
                    }
                    let unknown_bits = mask >> Field::ALL.len();
                    for _ in 0..unknown_bits.count_ones() {
                        d.u64()?;
                    }
                    readings.push(r);
                }
                Record::Sample(Sample { t_ns, readings })
            }
            TAG_PROCESS_EXIT => Record::ProcessExit(ProcessExit {
                pid: get_pid(&mut d)?,
                t_ns: d.u64()?,
                status: get_status(&mut d)?,
            }),
            TAG_MARK => Record::Mark(Mark {
                t_ns: d.u64()?,
                label: d.str()?,
            }),
            TAG_TRAILER => Record::Trailer(Trailer {
                end_ns: d.u64()?,
                reason: EndReason::from_code(d.u8()?),
                target_status: get_status(&mut d)?,
                samples: d.u64()?,
                dropped: d.u64()?,
                flushes: d.u64()?,
            }),
            TAG_FRAME => Record::Frame(Frame {
                id: get_u32(&mut d)?,
                function: d.str()?,
                file: d.str()?,
                line: get_u32(&mut d)?,
            }),
            TAG_MAPPING => Record::Mapping(Mapping {
                id: get_u32(&mut d)?,
                path: d.str()?,
                build_id: d.str()?,
                start: d.u64()?,
                end: d.u64()?,
                bias: d.u64()?,
                unwind: d.u8()? != 0,
            }),
            TAG_NATIVE_FRAME => Record::NativeFrame(NativeFrame {
                id: get_u32(&mut d)?,
                mapping: get_u32(&mut d)?,
                address: d.u64()?,
            }),
            TAG_STACK => Record::Stack(StackNode {
                id: get_u32(&mut d)?,
                parent: get_u32(&mut d)?,
                frame: get_u32(&mut d)?,
            }),
            TAG_EVENTS => Record::Events(decode_events(&mut d)?),
            TAG_THREAD => Record::Thread(ThreadInfo {
                id: get_u32(&mut d)?,
                native_id: d.u64()?,
                name: d.str()?,
            }),
            TAG_CENSUS => Record::Census(decode_census(&mut d)?),
            TAG_GC => Record::Gc(GcCollection {
                t_ns: d.u64()?,
                duration_ns: d.u64()?,
                generation: d.u8()?,
                collected: d.u64()?,
                uncollectable: d.u64()?,
            }),
            TAG_PYMALLOC => Record::Pymalloc(decode_pymalloc(&mut d)?),
            TAG_HOLDER => {
                let stack = get_u32(&mut d)?;
                let addr = d.u64()?;
                let root_kind = d.u8()?;
                let root = d.str()?;
                let n = d.count()?;
                let mut steps = Vec::with_capacity(n);
                for _ in 0..n {
                    steps.push(HolderStep {
                        edge: d.str()?,
                        type_name: d.str()?,
                        repr: d.str()?,
                        addr: d.u64()?,
                        size: d.u64()?,
                    });
                }
                Record::Holder(Holder {
                    stack,
                    addr,
                    root_kind,
                    root,
                    steps,
                })
            }
            _ => Record::Unknown(UnknownRecord {
                tag,
                body: body.to_vec(),
            }),
        };
        Ok(rec)
    }
}
