//! The live bytes of every stack slot over time, followed in the replay's one pass, so the leak
//! report can give each site a series (and a verdict) without a second pass over the capture.
//!
//! Time is cut into windows of equal width, at most `cap` of them, the width doubling whenever
//! the run outgrows them (as [`super::replay::Series`] does for the whole heap). A slot keeps,
//! for each window it changed in, its live bytes after its last change there: between two such
//! windows its value stands still. A site's series is the sum of its slots' at each window end.
//! Which sites matter is known only at the end; this keeps all of them for the cost of one
//! comparison per event and memory bounded by `cap` entries per slot.

/// Live bytes per slot at window ends.
#[derive(Debug, Clone)]
pub(crate) struct SlotSeries {
    /// Window width, ns.
    width: u64,
    cap: u64,
    /// The window of the latest event, and where it ends: events come in time order, so the
    /// window is found by a comparison, not a division, per event.
    window: u32,
    window_end: u64,
    /// Per slot: its live bytes now (weighted, so estimates when sampled) and the window of
    /// its latest change (`u32::MAX` before any).
    now: Vec<(f64, u32)>,
    /// Per slot: `(window, live bytes at its end)` for the windows it changed in before the one
    /// `now` is in, windows rising. `f32` halves the memory; a trend needs no more than its 24
    /// bits of precision.
    changes: Vec<Vec<(u32, f32)>>,
}

impl SlotSeries {
    /// Windows start at 1 ms, the shortest worth a point; `cap` is at least 2.
    pub fn new(cap: u32) -> Self {
        let width = 1_000_000;
        SlotSeries {
            width,
            cap: u64::from(cap.max(2)),
            window: 0,
            window_end: width,
            now: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Slots seen so far.
    pub fn slots(&self) -> usize {
        self.now.len()
    }

    /// `slot`'s live bytes at the end of the window holding `t_ns`.
    pub fn value_at(&self, slot: u32, t_ns: u64) -> f64 {
        let window = t_ns / self.width;
        let Some(&(now, latest)) = self.now.get(slot as usize) else {
            return 0.0;
        };
        if latest != u32::MAX && u64::from(latest) <= window {
            return now;
        }
        let changes = &self.changes[slot as usize];
        let after = changes.partition_point(|c| u64::from(c.0) <= window);
        after
            .checked_sub(1)
            .map_or(0.0, |j| f64::from(changes[j].1))
    }

    /// The windows' width now, ns.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// Adds `delta` bytes to `slot`'s live bytes at `t_ns`. Times never go back (the replay
    /// hands events in time order).
    #[inline]
    pub fn add(&mut self, slot: u32, t_ns: u64, delta: f64) {
        if t_ns >= self.window_end {
            self.move_to(t_ns);
        }
        let i = slot as usize;
        if i >= self.now.len() {
            self.now.resize(i + 1, (0.0, u32::MAX));
            self.changes.resize_with(i + 1, Vec::new);
        }
        let (value, window) = &mut self.now[i];
        if *window != self.window {
            if *window != u32::MAX {
                self.changes[i].push((*window, *value as f32));
            }
            *window = self.window;
        }
        *value += delta;
    }

    /// Moves to the window holding `t_ns`, widening the windows while there would be too many.
    #[cold]
    fn move_to(&mut self, t_ns: u64) {
        while t_ns / self.width >= self.cap {
            self.halve();
        }
        let window = t_ns / self.width;
        self.window = window as u32;
        self.window_end = (window + 1).saturating_mul(self.width);
    }

    /// Doubles the width: window `w` becomes `w / 2`, keeping the later value of each pair.
    fn halve(&mut self) {
        self.width = self.width.saturating_mul(2);
        for (changes, now) in self.changes.iter_mut().zip(&mut self.now) {
            let mut kept = 0;
            for j in 0..changes.len() {
                let (w, v) = changes[j];
                let w = w / 2;
                if kept > 0 && changes[kept - 1].0 == w {
                    changes[kept - 1].1 = v;
                } else {
                    changes[kept] = (w, v);
                    kept += 1;
                }
            }
            changes.truncate(kept);
            if now.1 != u32::MAX {
                now.1 /= 2;
                // the window of the latest change swallowed the one before: its value is later
                if changes.last().is_some_and(|c| c.0 == now.1) {
                    changes.pop();
                }
            }
        }
    }

    /// The summed live bytes of `slots` at the end of every window from the one holding
    /// `start_ns` to the one holding `end_ns`, as `(window end, bytes)`; the last point is at
    /// `end_ns` itself (changes after it were never added).
    pub fn sum_of(&self, slots: &[u32], start_ns: u64, end_ns: u64) -> Vec<(u64, f64)> {
        let end_ns = end_ns.max(start_ns);
        let first = start_ns / self.width;
        let last = end_ns / self.width;
        let n = (last - first + 1) as usize;
        let mut sums = vec![0.0f64; n];
        for &slot in slots {
            let Some(changes) = self.changes.get(slot as usize) else {
                continue;
            };
            let latest = self.now[slot as usize];
            let changes = changes
                .iter()
                .copied()
                .chain((latest.1 != u32::MAX).then_some((latest.1, latest.0 as f32)))
                .collect::<Vec<_>>();
            // the value standing when the first window begins
            let before = changes.partition_point(|c| u64::from(c.0) < first);
            let mut value = before
                .checked_sub(1)
                .map_or(0.0, |j| f64::from(changes[j].1));
            let mut next = before;
            for (k, sum) in sums.iter_mut().enumerate() {
                let window = first + k as u64;
                while let Some(&(w, v)) = changes.get(next) {
                    if u64::from(w) > window {
                        break;
                    }
                    value = f64::from(v);
                    next += 1;
                }
                *sum += value;
            }
        }
        let mut points: Vec<(u64, f64)> = sums
            .into_iter()
            .enumerate()
            .map(|(k, v)| {
                let window_end = (first + k as u64 + 1).saturating_mul(self.width);
                (window_end.min(end_ns), v)
            })
            .collect();
        // `end_ns` on a window boundary: the window it opens holds only what happened at
        // `end_ns` itself, and its point replaces the one the window before ended with
        if let [.., a, b] = points.as_slice() {
            if a.0 == b.0 {
                let last = points.pop();
                points.pop();
                points.extend(last);
            }
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_slot_keeps_its_value_at_each_window_end() {
        let mut s = SlotSeries::new(200);
        s.add(0, 0, 100.0);
        s.add(0, MS / 2, 50.0); // same window: the later value stands
        s.add(0, 3 * MS + 1, -150.0);
        let points = s.sum_of(&[0], 0, 4 * MS);
        assert_eq!(
            points,
            vec![(MS, 150.0), (2 * MS, 150.0), (3 * MS, 150.0), (4 * MS, 0.0)]
        );
    }

    #[test]
    fn windows_widen_as_the_run_outgrows_them_and_slots_add_up() {
        let mut s = SlotSeries::new(4);
        for i in 0..16u64 {
            s.add((i % 2) as u32, i * MS, 10.0);
        }
        // 16 ms in at most 4 windows: 4 ms each, the value at each end
        let points = s.sum_of(&[0, 1], 0, 15 * MS);
        assert_eq!(points.len(), 4);
        assert_eq!(points[0], (4 * MS, 40.0));
        assert_eq!(points[3], (15 * MS, 160.0));
        // one slot alone, from a later start
        let odd = s.sum_of(&[1], 8 * MS, 15 * MS);
        assert_eq!(odd, vec![(12 * MS, 60.0), (15 * MS, 80.0)]);
    }

    #[test]
    fn a_value_is_read_at_any_time() {
        let mut s = SlotSeries::new(200);
        s.add(3, MS, 100.0);
        s.add(3, 5 * MS, 100.0);
        s.add(3, 9 * MS, -150.0);
        assert_eq!(s.value_at(3, 0), 0.0);
        assert_eq!(s.value_at(3, 2 * MS), 100.0);
        assert_eq!(s.value_at(3, 6 * MS), 200.0);
        assert_eq!(s.value_at(3, 20 * MS), 50.0);
        assert_eq!(s.value_at(4, 20 * MS), 0.0);
        assert_eq!(s.slots(), 4);
    }

    #[test]
    fn an_unknown_slot_counts_nothing() {
        let s = SlotSeries::new(10);
        assert_eq!(s.sum_of(&[7], 0, MS / 2), vec![(MS / 2, 0.0)]);
    }
}
