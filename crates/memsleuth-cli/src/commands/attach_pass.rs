//! The leak report's pass that `memsleuth attach` keeps on the capture while the process
//! records it, in the attacher's own process. At the recording's end it picks the blocks whose
//! holders the process looks up (the surviving blocks of the largest sites); after the detach
//! it gives the verdict without a second read of the capture. The process being recorded, a
//! service in production as often as not, pays neither the pass' time nor its tables: read in
//! the process at the end, they cost it a core for about as long as a busy server was recorded,
//! and memory for every block alive (see `_attach_agent.py`, `holders`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
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
/// How long the live view's pass is waited for: it reads at the usual priority, and lets go
/// within a refresh.
const VIEW_WAIT: Duration = Duration::from_secs(60);
/// How often the thread looks for the process' question (`holders LENGTH` in its status).
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// The pass, shared by whoever reads it on: the [`Reader`] thread, or the live view of
/// `attach --live`, which reads the capture every second anyway; and, at the end, the thread
/// that answers the process.
pub(crate) type SharedPass = Arc<Mutex<Followed>>;

/// A new shared pass on `capture`, from its start.
pub(crate) fn shared_pass(capture: &Path) -> SharedPass {
    Arc::new(Mutex::new(new_pass(capture)))
}

/// The thread that answers the process' question at the recording's end, with the pass read
/// meanwhile. A thread of its own rather than the attacher's main loop: `attach --live` spends
/// the recording in the terminal view.
pub(crate) struct Following {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Followed>,
}

impl Following {
    /// `status`: the file where the process says how far it got; `wanted`: where the answer
    /// goes. `pass` is read on by a reader thread of its own, unless `viewed`: the live view
    /// reads it then.
    pub(crate) fn spawn(
        capture: &Path,
        pass: SharedPass,
        viewed: bool,
        status: PathBuf,
        wanted: PathBuf,
    ) -> Option<Following> {
        let capture = capture.to_path_buf();
        let patience = if viewed { VIEW_WAIT } else { STOP_WAIT };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let reader = if viewed {
            None
        } else {
            Some(Reader::spawn(Arc::clone(&pass))?)
        };
        let thread = std::thread::Builder::new()
            .name("memsleuth-answer".into())
            .spawn(move || {
                let mut reader = reader;
                // a pass slow to be let go of (or half read by a panic) is read again from
                // the start, at the usual priority
                let mut own: Option<Followed> = None;
                let mut asked = false;
                while !stopping.load(Ordering::Relaxed) {
                    if !asked {
                        if let Some(upto) = holders_asked(&status) {
                            asked = true;
                            // the reader may lag behind on a busy machine, at its lowest
                            // priority: the rest is read here, as the process waits
                            if let Some(r) = reader.take() {
                                r.stop();
                            }
                            let _ = match lock_within(&pass, patience) {
                                Some(mut held) => answer(&wanted, &mut held, upto),
                                None => answer(&wanted, own.insert(new_pass(&capture)), upto),
                            };
                        }
                    }
                    std::thread::park_timeout(LOOK_EVERY);
                }
                if let Some(r) = reader {
                    r.stop();
                }
                if let Some(pass) = own {
                    return pass;
                }
                match lock_within(&pass, patience) {
                    Some(mut held) => std::mem::replace(&mut *held, new_pass(&capture)),
                    None => new_pass(&capture),
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

/// The pass, once whoever reads it has let go of it within `wait`; `None` when they do not
/// (at the lowest priority on a machine whose cores something else keeps busy, a chunk's
/// decoding may take seconds), or when a reader panicked in it, leaving it half read.
fn lock_within(pass: &SharedPass, wait: Duration) -> Option<MutexGuard<'_, Followed>> {
    let until = Instant::now() + wait;
    loop {
        match pass.try_lock() {
            Ok(held) => return Some(held),
            Err(TryLockError::Poisoned(_)) => return None,
            Err(TryLockError::WouldBlock) if Instant::now() >= until => return None,
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The thread that reads the capture as the process writes it, at the lowest priority: on a
/// machine with no idle core, the process comes first.
struct Reader {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Reader {
    fn spawn(pass: SharedPass) -> Option<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("memsleuth-pass".into())
            .spawn(move || {
                memsleuth_platform::lowest_priority_for_this_thread();
                let stopped = || stopping.load(Ordering::Relaxed);
                while !stopped() {
                    let began = Instant::now();
                    let enough = || stopped() || began.elapsed() >= READ_AT_MOST;
                    // the capture may not exist yet, or hold no whole chunk: next time
                    let _ = pass.lock().map(|mut p| p.read_on(&enough));
                    std::thread::park_timeout(READ_EVERY.max(began.elapsed()));
                }
            })
            .ok()?;
        Some(Reader {
            stop,
            thread: thread.thread().clone(),
        })
    }

    /// Stops the thread at the end of the chunk it reads; it lets go of the pass then.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
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
fn new_pass(capture: &Path) -> Followed {
    Followed::new(capture, super::run::verdict_options())
}

/// The verdict on the finished capture; `None` when the pass could not make it (the capture's
/// own read then says why).
pub(crate) fn verdict(mut pass: Followed) -> Option<ProgramVerdict> {
    pass.read_to(u64::MAX, &|| false).ok()?;
    pass.report().ok().flatten().map(ProgramVerdict::from_leaks)
}
