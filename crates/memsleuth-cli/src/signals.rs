//! Ctrl-C and SIGTERM become a flag the watch loop polls, so the capture is always finished.
//! The previous handlers (Python's, when run through the extension) are put back afterwards.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers while alive; restores the old ones on drop.
#[derive(Debug)]
pub struct StopOnSignal {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl StopOnSignal {
    pub fn install() -> Self {
        STOP.store(false, Ordering::SeqCst);
        let mut old = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction with a zeroed struct and an async-signal-safe handler (one atomic
            // store); `prev` is written by the kernel.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        StopOnSignal { old }
    }

    pub fn requested(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

impl Drop for StopOnSignal {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restoring exactly what sigaction gave us.
            unsafe {
                libc::sigaction(*sig, prev, std::ptr::null_mut());
            }
        }
    }
}
