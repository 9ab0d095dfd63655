//! Time for events. A hook stamps every event, so the clock read is on the hot path: where the
//! CPU has an invariant time-stamp counter we read it directly (`rdtsc`, a few nanoseconds; a
//! `clock_gettime` vDSO call measured 17% of a tracked program's time in a VM), and the recorder
//! converts ticks to nanoseconds with a [`TickConverter`] calibrated against `CLOCK_MONOTONIC`.

use std::sync::atomic::{AtomicU8, Ordering};

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

/// Turns [`ticks`] into `CLOCK_MONOTONIC` nanoseconds. The rate is measured between the first
/// calibration point and the latest one, so it gets more exact the longer a recording runs.
#[derive(Debug, Clone, Copy)]
pub struct TickConverter {
    first: (u64, u64),
    ns_per_tick: f64,
}

impl TickConverter {
    /// Starts calibrating now.
    pub fn new() -> Self {
        TickConverter {
            first: (ticks(), now_ns()),
            ns_per_tick: if SOURCE.load(Ordering::Relaxed) == TSC {
                0.0
            } else {
                1.0
            },
        }
    }

    /// Adds a calibration point (ticks and nanoseconds read together now).
    pub fn calibrate(&mut self) {
        if SOURCE.load(Ordering::Relaxed) != TSC {
            return;
        }
        let (t1, n1) = (ticks(), now_ns());
        let (t0, n0) = self.first;
        // below a millisecond the two reads' own jitter would dominate the rate
        if n1 > n0 + 1_000_000 && t1 > t0 {
            self.ns_per_tick = (n1 - n0) as f64 / (t1 - t0) as f64;
        }
    }

    /// Nanoseconds (`CLOCK_MONOTONIC`) at `ticks`.
    pub fn to_ns(&self, t: u64) -> u64 {
        let (t0, n0) = self.first;
        if self.ns_per_tick == 0.0 {
            // not calibrated yet: assume 1 GHz, corrected at the next calibration
            return n0.wrapping_add(t.wrapping_sub(t0));
        }
        let dt = t as i128 - t0 as i128;
        (n0 as i128 + (dt as f64 * self.ns_per_tick) as i128).max(0) as u64
    }
}

impl Default for TickConverter {
    fn default() -> Self {
        Self::new()
    }
}
