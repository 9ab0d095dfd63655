//! The live status line `watch` keeps on a terminal: elapsed, processes, current, peak, trend.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use memsleuth_render::units;

#[derive(Debug)]
pub struct StatusLine {
    enabled: bool,
    last_draw: Option<Instant>,
    recent: VecDeque<(f64, f64)>,
    peak: u64,
}

/// Least-squares slope of the recent window; only for the live display (the verdict uses
/// robust statistics over the whole capture).
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    if points.len() < 5 {
        return None;
    }
    let n = points.len() as f64;
    let (mt, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (t, y)| (a + t / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (t, y)| {
        (num + (t - mt) * (y - my), den + (t - mt) * (t - mt))
    });
    (den > 0.0).then(|| num / den)
}

impl StatusLine {
    pub fn new(quiet: bool) -> Self {
        StatusLine {
            enabled: !quiet && std::io::stderr().is_terminal(),
            last_draw: None,
            recent: VecDeque::new(),
            peak: 0,
        }
    }

    pub fn update(&mut self, elapsed: Duration, rss: u64, processes: u32) {
        let t = elapsed.as_secs_f64();
        self.peak = self.peak.max(rss);
        self.recent.push_back((t, rss as f64));
        while self.recent.front().is_some_and(|(t0, _)| t - t0 > 10.0) {
            self.recent.pop_front();
        }
        if !self.enabled
            || self
                .last_draw
                .is_some_and(|d| d.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        let trend = slope(&self.recent)
            .map(|s| format!(" · trend {}", units::rate(s)))
            .unwrap_or_default();
        crate::err(&format!(
            "\r\x1b[K  watching {} · {} process{} · rss {} · peak {}{}",
            units::seconds(t),
            processes,
            if processes == 1 { "" } else { "es" },
            units::bytes(rss as f64),
            units::bytes(self.peak as f64),
            trend
        ));
    }

    pub fn clear(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            crate::err("\r\x1b[K");
        }
    }
}
