//! The leak report's pass kept up to date while the program runs. `run`'s exit verdict reads the
//! whole capture; read at the end, that is seconds of work on a large heap after the program's
//! last line, which users pay as time to their prompt. This thread reads each chunk soon after
//! the recorder hands it to the OS, on a core the program is not using, so the end has only the
//! last fraction of a second to read (see `objects::at_main_end`).
//!
//! It is a plain thread: it never takes the GIL or calls Python, and allocates only through
//! Rust's allocator, which the `python` instrument's hooks do not see and `own_memory` counts
//! (its tables are memsleuth's bytes in the program's RSS, not the program's).

use std::fs::File;
use std::io::{BufReader, Take};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memsleuth_analysis::{LeakOptions, LeakPass};

/// How often the pass reads on: often enough that the end finds little left, rarely enough
/// that each read is a few large chunks rather than many small ones.
const READ_EVERY: Duration = Duration::from_millis(500);
/// How often the largest sites' blocks are offered to the census thread for a holder search
/// (see [`Wanted`]), at least: the census thread takes the newest offer once a second. A read
/// stops at the end of a chunk to offer when one is due: at nice 19 beside a busy program the
/// reader may take seconds to catch up, and a search only at the end of that could come after
/// the program has released what it held (a pool closed).
const OFFER_EVERY: Duration = Duration::from_secs(1);
/// An offer costs a report on the pass so far; on a large heap offers are spaced further, so
/// that they take at most one part in this many of the reader's time.
const OFFER_SHARE: u32 = 5;
/// Sites whose blocks get a holder search while the program runs, largest first.
const WANTED_SITES: usize = 5;
/// How long the end waits for the pass. A read under way stops at the end of the chunk it is
/// in and hands over what it has read (the end reads on from there), which takes a chunk's
/// decoding at most; at nice 19 on a machine whose cores something else keeps busy, even that
/// may take long, and the end then reads the capture from the start instead.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Blocks of the largest sites for the census thread to find holders of while the program
/// still holds them: a site whose memory the program releases as its main code ends (a pool's
/// threads joined, their thread-locals with them) has no holder left to find at the end. The
/// census thread takes the list; the reader puts a newer one. Each block comes with its site's
/// rank and the stack that allocated it, which the holder record carries (a holder of a site's
/// block, not of an instance of a growing type).
pub(crate) type Wanted = Arc<Mutex<Option<Vec<(u64, usize, u32)>>>>;

pub(crate) type Pass = LeakPass<Take<BufReader<File>>>;

/// The running thread.
#[derive(Debug)]
pub(crate) struct PassReader {
    stop: Sender<()>,
    /// Set to end a read under way at its chunk's end.
    stop_now: Arc<AtomicBool>,
    /// The pass, sent once the thread has stopped.
    done: Receiver<Option<Pass>>,
}

impl PassReader {
    /// Starts reading the capture at `path` as far as `flushed` (the recorder's length written)
    /// says, with the options of the exit report.
    pub fn spawn(
        path: PathBuf,
        opts: LeakOptions,
        flushed: Arc<AtomicU64>,
        wanted: Option<Wanted>,
    ) -> Option<PassReader> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let stop_now = Arc::new(AtomicBool::new(false));
        let interrupted = Arc::clone(&stop_now);
        std::thread::Builder::new()
            .name("memsleuth-reader".into())
            .spawn(move || {
                // what the reader allocates is memsleuth's, not the program's
                super::hooks::ignore_this_thread();
                // on a machine with no idle core, the program and the recorder come first:
                // what this thread has not read by the end is read then
                memsleuth_platform::lowest_priority_for_this_thread();
                let mut pass: Option<Pass> = None;
                let mut next_offer = Instant::now() + OFFER_EVERY;
                'reading: while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(READ_EVERY)
                {
                    // a program near its memory limit gets no more of our tables: the end
                    // then reads the capture from the start, if it has room for that
                    if !memsleuth_platform::can_map(memsleuth_analysis::allocs::memory_needed(
                        &path,
                    )) {
                        pass = None;
                        break;
                    }
                    let upto = flushed.load(Ordering::Acquire);
                    let p = match pass.as_mut() {
                        Some(p) => p,
                        // the header may not be in the file yet: try again next time
                        None => match LeakPass::open_unread(&path, &opts, upto) {
                            Ok(p) => pass.insert(p),
                            Err(_) => continue,
                        },
                    };
                    let offering = wanted.as_ref();
                    loop {
                        let due = next_offer;
                        let pause = || {
                            interrupted.load(Ordering::Relaxed)
                                || (offering.is_some() && Instant::now() >= due)
                        };
                        let all = p.read_to_unless(upto, &pause);
                        if interrupted.load(Ordering::Relaxed) {
                            break 'reading;
                        }
                        // short of `upto` without a pause: damage, read no further
                        let paused = !all && pause();
                        if let Some(w) = offering.filter(|_| Instant::now() >= next_offer) {
                            let offering_from = Instant::now();
                            offer(p, w);
                            let spent = offering_from.elapsed();
                            next_offer = Instant::now() + OFFER_EVERY.max(spent * OFFER_SHARE);
                        }
                        if !paused {
                            break;
                        }
                    }
                    // what the read and the report freed (chunk buffers, a table outgrown,
                    // the report's scratch) goes back to the OS: the C allocator would keep
                    // it, in this thread's own arena, and RSS beyond the bytes memsleuth
                    // holds would read as the program's C memory growing
                    memsleuth_platform::release_free_memory();
                }
                // nobody waits any more when the end gave up on this thread: the pass is
                // dropped here
                let _ = done_tx.send(pass);
            })
            .ok()?;
        Some(PassReader {
            stop,
            stop_now,
            done,
        })
    }

    /// Stops the thread and returns the pass as far as it read: `None` if it could not start
    /// one, gave up, or does not reach the end of the chunk it is reading within
    /// [`STOP_WAIT`] (it is then left to get there and drop the pass; it holds no lock and
    /// calls no Python).
    pub fn stop(self) -> Option<Pass> {
        self.stop_now.store(true, Ordering::Relaxed);
        let _ = self.stop.send(());
        self.done.recv_timeout(STOP_WAIT).ok().flatten()
    }
}

/// Puts the blocks of the largest sites so far where the census thread takes them.
fn offer(pass: &Pass, wanted: &Wanted) {
    let Ok(report) = pass.report() else {
        return;
    };
    let blocks: Vec<(u64, usize, u32)> = report
        .samples
        .iter()
        .take(WANTED_SITES)
        .enumerate()
        .flat_map(|(rank, site)| {
            site.iter()
                .filter_map(move |&a| Some((a, rank, pass.stack_of(a)?)))
        })
        .collect();
    if !blocks.is_empty() {
        if let Ok(mut w) = wanted.lock() {
            *w = Some(blocks);
        }
    }
}
