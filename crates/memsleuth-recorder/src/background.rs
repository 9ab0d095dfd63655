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
                // None: the next deadline lies beyond what an Instant can hold (an absurd
                // interval); then only a command wakes the thread
                let mut next = Some(Instant::now());
                let mut root_gone = false;
                loop {
                    let command = match next {
                        Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match command {
                        Ok(Command::Mark(t, label)) => sampler.mark_at(t, &label),
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            let summary = sampler.tick()?;
                            if !summary.root_alive {
                                root_gone = true;
                                break;
                            }
                            // after a stall (a stopped process, a suspended laptop) resume the
                            // rhythm instead of firing a burst of catch-up ticks
                            let now = Instant::now();
                            next = match next.and_then(|at| at.checked_add(interval)) {
                                Some(at) if at >= now => Some(at),
                                _ => now.checked_add(interval),
                            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RssConfig;
    use memsleuth_format::Header;

    #[test]
    fn an_interval_too_long_for_the_clock_samples_once_and_stops_cleanly() {
        // `Instant + Duration::MAX` overflows: the thread must wait for a command instead
        let cfg = RssConfig::new(std::process::id(), Duration::MAX);
        let sampler = RssSampler::new(Vec::new(), Header::default(), cfg).unwrap();
        let mut bg = BackgroundSampler::spawn(sampler, cfg.interval).unwrap();
        bg.mark("still here");
        std::thread::sleep(Duration::from_millis(50));
        assert!(bg.running());
        let stopped = bg.stop().expect("the sampler thread survives");
        assert_eq!(stopped.samples, 1);
        assert!(!stopped.root_gone);
    }
}
