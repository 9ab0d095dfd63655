//! The leak report's pass that `memsleuth attach` keeps on the capture while the process
//! records it, in the attacher's own process. At the recording's end it picks the blocks whose
//! holders the process looks up (the surviving blocks of the largest sites); after the detach
//! it gives the verdict without a second read of the capture. The process being recorded, a
//! service in production as often as not, pays neither the pass' time nor its tables: read in
//! the process at the end, they cost it a core for about as long as a busy server was recorded,
//! and memory for every block alive (see `_attach_agent.py`, `holders`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memsleuth_analysis::allocs::Followed;
use memsleuth_analysis::ProgramVerdict;

/// How often the pass reads on: often enough that the end finds little left to read.
const READ_EVERY: Duration = Duration::from_millis(500);
/// The longest read at a time; the reader then rests at least as long as it read. A busy
/// process writes its capture about as fast as a core reads it, and a reader taking a whole
/// core beside it slowed it by a fifth on two cores, even at the lowest priority: what it has
/// not read when the recording ends is read then, while the program runs untracked.
const READ_AT_MOST: Duration = Duration::from_millis(250);
/// How long the reader's pass is waited for before the capture is read again from its start.
const STOP_WAIT: Duration = Duration::from_millis(500);
/// How often the thread looks for the process' question (`holders LENGTH` in its status).
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// The thread that answers the process' question at the recording's end, with the pass a
/// reader thread keeps meanwhile. A thread of its own rather than the attacher's main loop:
/// `attach --live` spends the recording in the terminal view.
pub(crate) struct Following {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Followed>,
}

impl Following {
    /// `status`: the file where the process says how far it got; `wanted`: where the answer
    /// goes.
    pub(crate) fn spawn(capture: &Path, status: PathBuf, wanted: PathBuf) -> Option<Following> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let capture = capture.to_path_buf();
        let reader = Reader::spawn(new_pass(&capture))?;
        let thread = std::thread::Builder::new()
            .name("memsleuth-answer".into())
            .spawn(move || {
                // a reader that is slow to stop (or lost to a panic) leaves its pass to be
                // read again from the start
                let take_back = |r: Reader| r.take_back().unwrap_or_else(|| new_pass(&capture));
                let mut reader = Some(reader);
                let mut answered: Option<Followed> = None;
                while !stopping.load(Ordering::Relaxed) {
                    // asked once: the reader is taken for the answer
                    if let Some(upto) = reader.as_ref().and_then(|_| holders_asked(&status)) {
                        // the reader may lag behind on a busy machine, at its lowest priority:
                        // the rest is read here, at the usual one, as the process waits
                        let mut pass = reader.take().map_or_else(|| new_pass(&capture), take_back);
                        let _ = answer(&wanted, &mut pass, upto);
                        answered = Some(pass);
                    }
                    std::thread::park_timeout(LOOK_EVERY);
                }
                match (answered, reader) {
                    (Some(pass), _) => pass,
                    (None, Some(r)) => take_back(r),
                    (None, None) => new_pass(&capture),
                }
            })
            .ok()?;
        Some(Following { stop, thread })
    }

    /// Stops the threads, the reader at the end of the chunk it reads, and takes the pass.
    pub(crate) fn take_back(self) -> Option<Followed> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        self.thread.join().ok()
    }
}

/// The thread that reads the capture as the process writes it, at the lowest priority: on a
/// machine with no idle core, the process comes first.
struct Reader {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
    /// The pass, sent once the thread stops.
    done: Receiver<Followed>,
}

impl Reader {
    fn spawn(mut pass: Followed) -> Option<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let (send, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("memsleuth-pass".into())
            .spawn(move || {
                memsleuth_platform::lowest_priority_for_this_thread();
                let stopped = || stopping.load(Ordering::Relaxed);
                while !stopped() {
                    let began = Instant::now();
                    let enough = || stopped() || began.elapsed() >= READ_AT_MOST;
                    // the capture may not exist yet, or hold no whole chunk: next time
                    let _ = pass.read_on(&enough);
                    std::thread::park_timeout(READ_EVERY.max(began.elapsed()));
                }
                let _ = send.send(pass);
            })
            .ok()?;
        Some(Reader {
            stop,
            thread: thread.thread().clone(),
            done,
        })
    }

    /// Stops the thread at the end of the chunk it reads, and takes its pass back: `None`
    /// when it does not get there within [`STOP_WAIT`] (at the lowest priority on a machine
    /// whose cores something else keeps busy, a chunk's decoding may take seconds); it then
    /// drops the pass itself when it does.
    fn take_back(self) -> Option<Followed> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
        self.done.recv_timeout(STOP_WAIT).ok()
    }
}

/// The capture's length the process asks the blocks to hold at (`holders LENGTH`, its last
/// status line), when it asks.
pub(crate) fn holders_asked(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    text.lines()
        .last()?
        .strip_prefix("holders ")?
        .trim()
        .parse()
        .ok()
}

/// Answers the process: the blocks whose holders it looks up, the capture being whole up to
/// `upto` (its last sync), each with its site's rank, written where it reads them, whole:
/// beside, then renamed.
pub(crate) fn answer(wanted: &Path, pass: &mut Followed, upto: u64) -> std::io::Result<()> {
    let _ = pass.read_to(upto, &|| false);
    let report = pass.report().ok().flatten();
    let blocks = report.map(|r| r.blocks_to_hold()).unwrap_or_default();
    let mut partial = wanted.as_os_str().to_owned();
    partial.push(".partial");
    let body = serde_json::to_string(&blocks).map_err(std::io::Error::other)?;
    std::fs::write(&partial, body)?;
    std::fs::rename(&partial, wanted)
}

/// A pass on the capture from its start, when no thread kept one.
pub(crate) fn new_pass(capture: &Path) -> Followed {
    Followed::new(capture, super::run::verdict_options())
}

/// The verdict on the finished capture; `None` when the pass could not make it (the capture's
/// own read then says why).
pub(crate) fn verdict(mut pass: Followed) -> Option<ProgramVerdict> {
    pass.read_to(u64::MAX, &|| false).ok()?;
    pass.report().ok().flatten().map(ProgramVerdict::from_leaks)
}
