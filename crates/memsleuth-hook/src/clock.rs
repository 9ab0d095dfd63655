//! Time for events. A hook stamps every event, so the clock read is on the hot path: where the
//! CPU has an invariant time-stamp counter we read it directly (`rdtsc`, a few nanoseconds; a
//! `clock_gettime` vDSO call measured 17% of a tracked program's time in a VM), and the recorder
//! converts ticks to nanoseconds with a [`TickConverter`] calibrated against `CLOCK_MONOTONIC`.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Monotonic time in nanoseconds, shared by every thread (CLOCK_MONOTONIC, a vDSO call: no
/// system call, no allocation).
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

const UNKNOWN: u8 = 0;
const TSC: u8 = 1;
const MONOTONIC: u8 = 2;
static SOURCE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Chooses the tick source once: the TSC when the kernel reports it constant and non-stop
/// (so ticks advance at one rate on every core, through sleep states), else `now_ns`. Call it
/// before any hook can run (it reads `/proc/cpuinfo`, which allocates).
pub fn init_ticks() {
    if SOURCE.load(Ordering::Acquire) != UNKNOWN {
        return;
    }
    let tsc = cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.contains(" constant_tsc") && l.contains(" nonstop_tsc"))
        });
    SOURCE.store(if tsc { TSC } else { MONOTONIC }, Ordering::Release);
}

/// The event clock: raw ticks, only meaningful through a [`TickConverter`].
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if SOURCE.load(Ordering::Relaxed) == TSC {
        // SAFETY: rdtsc has no preconditions on x86_64.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    now_ns()
}

/// The recorder's last reading of [`ticks`], refreshed at least every few milliseconds.
static COARSE: AtomicU64 = AtomicU64::new(0);
/// Token of the thread that stamped the last event.
static LAST_THREAD: AtomicUsize = AtomicUsize::new(0);

/// Refreshes the coarse clock; the recorder calls it on every pass.
pub fn tick_coarse() {
    COARSE.store(ticks(), Ordering::Relaxed);
}

/// The time of an event of the thread `me` (a token unique among live threads, see
/// [`crate::Reentry::thread_token`]).
///
/// Leak analysis needs times for windows (milliseconds are plenty) and for one ordering: a
/// block freed by one thread and reused by another must be seen freed first. Events of one
/// thread are ordered by their ring, so only a *change of thread* needs an exact time. The
/// first event after another thread stamped one reads the clock; the others take the coarse
/// clock, which never runs ahead of real time. The recorder keeps each thread's times from going
/// backwards, so every event stays at or after its thread's last exact stamp, and before any
/// exact stamp taken later by another thread.
#[inline]
pub fn event_ticks(me: usize) -> u64 {
    let coarse = COARSE.load(Ordering::Relaxed);
    if coarse != 0 && LAST_THREAD.load(Ordering::Relaxed) == me {
        return coarse;
    }
    LAST_THREAD.store(me, Ordering::Relaxed);
    ticks()
}

/// Makes the next event of any thread read the clock exactly, as after a change of thread.
/// A mark placed between two stretches of a program (`hunt`'s runs) is stamped exactly; an
/// event after it taking the coarse clock could be stamped before it, and counted on the
/// wrong side. Thread tokens are addresses, never 0.
pub fn stamp_next_event_exactly() {
    LAST_THREAD.store(0, Ordering::Relaxed);
}

/// Turns [`ticks`] into `CLOCK_MONOTONIC` nanoseconds. The rate is measured between the first
/// calibration point and the latest one, so it gets more exact the longer a recording runs.
#[derive(Debug, Clone, Copy)]
pub struct TickConverter {
    first: (u64, u64),
    ns_per_tick: f64,
}

impl TickConverter {
    /// Starts calibrating now: a first rate from a 200 µs spin, refined by every
    /// [`TickConverter::calibrate`].
    pub fn new() -> Self {
        let first = (ticks(), now_ns());
        let mut c = TickConverter {
            first,
            ns_per_tick: 1.0,
        };
        if SOURCE.load(Ordering::Relaxed) == TSC {
            while now_ns() < first.1 + 200_000 {
                std::hint::spin_loop();
            }
            let (t1, n1) = (ticks(), now_ns());
            c.ns_per_tick = (n1 - first.1) as f64 / (t1.saturating_sub(first.0)).max(1) as f64;
        }
        c
    }

    /// Adds a calibration point (ticks and nanoseconds read together now).
    pub fn calibrate(&mut self) {
        if SOURCE.load(Ordering::Relaxed) != TSC {
            return;
        }
        let (t1, n1) = (ticks(), now_ns());
        let (t0, n0) = self.first;
        // below 10 ms the two reads' own jitter would weigh more than the spin's estimate
        if n1 > n0 + 10_000_000 && t1 > t0 {
            self.ns_per_tick = (n1 - n0) as f64 / (t1 - t0) as f64;
        }
    }

    /// Nanoseconds (`CLOCK_MONOTONIC`) at `ticks`.
    pub fn to_ns(&self, t: u64) -> u64 {
        let (t0, n0) = self.first;
        let dt = t as i128 - t0 as i128;
        (n0 as i128 + (dt as f64 * self.ns_per_tick) as i128).max(0) as u64
    }
}

impl Default for TickConverter {
    fn default() -> Self {
        Self::new()
    }
}
