use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memsleuth_format::{EndReason, ExitStatus};

use crate::{RecorderError, RssSampler};

enum Command {
    Mark(Duration, String),
    Stop,
}

/// What a stopped background sampler reports.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub samples: u64,
    /// Why the thread ended on its own before being asked to, if it did (root gone).
    pub root_gone: bool,
}

/// An [`RssSampler`] running on its own thread at absolute deadlines, so the period does not drift
/// with the time a reading takes.
#[derive(Debug)]
pub struct BackgroundSampler {
    tx: Sender<Command>,
    thread: Option<JoinHandle<Result<Stopped, RecorderError>>>,
    start: Instant,
}

impl BackgroundSampler {
    pub fn spawn<W: Write + Send + 'static>(
        mut sampler: RssSampler<W>,
        interval: Duration,
    ) -> Result<Self, RecorderError> {
        let (tx, rx) = mpsc::channel::<Command>();
        let start = sampler.start();
        let thread = std::thread::Builder::new()
            .name("memsleuth-rss".into())
            .spawn(move || {
                let mut next = Instant::now();
                let mut root_gone = false;
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(Command::Mark(t, label)) => sampler.mark_at(t, &label),
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            let summary = sampler.tick()?;
                            if !summary.root_alive {
                                root_gone = true;
                                break;
                            }
                            next += interval;
                            // after a stall (a stopped process, a suspended laptop) resume the
                            // rhythm instead of firing a burst of catch-up ticks
                            let now = Instant::now();
                            if next < now {
                                next = now + interval;
                            }
                        }
                    }
                }
                let samples = sampler.samples();
                let reason = if root_gone {
                    EndReason::TargetExited
                } else {
                    EndReason::Stopped
                };
                sampler.finish(reason, ExitStatus::Unknown)?;
                Ok(Stopped { samples, root_gone })
            })
            .map_err(|_| RecorderError::ThreadLost)?;
        Ok(BackgroundSampler {
            tx,
            thread: Some(thread),
            start,
        })
    }

    /// Places a mark now. Cheap: the label travels to the sampler thread.
    pub fn mark(&self, label: &str) {
        let _ = self
            .tx
            .send(Command::Mark(self.start.elapsed(), label.to_string()));
    }

    /// Stops the thread, which writes the trailer, and waits for it.
    pub fn stop(&mut self) -> Result<Stopped, RecorderError> {
        let _ = self.tx.send(Command::Stop);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| RecorderError::ThreadLost)?,
            None => Err(RecorderError::ThreadLost),
        }
    }

    /// True while the thread runs.
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for BackgroundSampler {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}
