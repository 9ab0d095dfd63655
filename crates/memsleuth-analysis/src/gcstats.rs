//! The `gc` report: what the cyclic garbage collector did during a capture (from its
//! `GcCollection` records) and the state it was seen in (the gc fields of `Census` records), with
//! the findings a person should act on.

use std::collections::BTreeMap;

use memsleuth_format::{Capture, Census, GcCollection, Record};
use serde::Serialize;

use crate::timeline::EndInfo;
use crate::trend::{classify, Verdict, VerdictKind, VerdictOptions};

/// Tuning of [`GcReport`]. Each default is a judgement call, explained next to it.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// A pause longer than this is reported. 100 ms is where a pause is felt: a request timing
    /// out, a frame dropped, a heartbeat missed.
    pub long_pause_ns: u64,
    /// With no collection at all, a capture at least this long whose censuses show the
    /// generation-0 count past the threshold is taken as one with automatic gc off. Shorter
    /// captures may just have ended before the first collection was due.
    pub infer_disabled_after_ns: u64,
    /// Options of the trend of unreachable objects, a count, not bytes: "growth" in
    /// `min_growth_bytes` is in objects.
    pub unreachable_trend: VerdictOptions,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            long_pause_ns: 100_000_000,
            infer_disabled_after_ns: 10_000_000_000,
            unreachable_trend: VerdictOptions {
                // a thousand objects in cycles is already a few hundred KiB of dicts and
                // instances; fewer is what any program has in flight between collections
                min_growth_bytes: 1000.0,
                // censuses are costly and so far apart: ask for fewer of them than the eight a
                // memory series needs. Six is the fewest for which Mann-Kendall can reach p < 0.01.
                min_points: 6,
                ..VerdictOptions::default()
            },
        }
    }
}

/// Pause statistics of a set of collections, nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pauses {
    pub total_ns: u64,
    pub max_ns: u64,
    /// When the longest pause started, ns since the capture start.
    pub max_at_ns: u64,
    /// Nearest-rank percentiles.
    pub p50_ns: u64,
    pub p99_ns: u64,
    /// `total_ns` over the capture's duration (0 when the duration is unknown).
    pub share: f64,
}

impl Pauses {
    fn of(runs: &[&GcCollection], duration_ns: u64) -> Self {
        let mut d: Vec<u64> = runs.iter().map(|g| g.duration_ns).collect();
        d.sort_unstable();
        let longest = runs
            .iter()
            .max_by_key(|g| (g.duration_ns, std::cmp::Reverse(g.t_ns)));
        let total_ns = d.iter().fold(0u64, |a, &x| a.saturating_add(x));
        Pauses {
            total_ns,
            max_ns: d.last().copied().unwrap_or(0),
            max_at_ns: longest.map_or(0, |g| g.t_ns),
            p50_ns: percentile(&d, 0.50),
            p99_ns: percentile(&d, 0.99),
            share: if duration_ns == 0 {
                0.0
            } else {
                total_ns as f64 / duration_ns as f64
            },
        }
    }
}

/// The value at rank ⌈p·n⌉ of sorted values (0 when empty).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the collector did in one generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Generation {
    pub generation: u8,
    pub collections: u64,
    /// Objects freed by these collections.
    pub collected: u64,
    /// Objects found unreachable but not freeable (moved to `gc.garbage`).
    pub uncollectable: u64,
    pub pauses: Pauses,
}

/// The gc state one census saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcState {
    pub t_ns: u64,
    pub gc_enabled: bool,
    pub gc_counts: Vec<u64>,
    pub unreachable: u64,
    pub unreachable_bytes: u64,
    pub garbage: u64,
    /// What `gc.garbage` holds, by type, most first.
    pub garbage_types: Vec<(String, u64)>,
}

impl From<&Census> for GcState {
    fn from(c: &Census) -> Self {
        GcState {
            t_ns: c.t_ns,
            gc_enabled: c.gc_enabled,
            gc_counts: c.gc_counts.clone(),
            unreachable: c.unreachable,
            unreachable_bytes: c.unreachable_bytes,
            garbage: c.garbage,
            garbage_types: c.garbage_types.clone(),
        }
    }
}

/// A span during which automatic collection was off, ns since the capture start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisabledSpan {
    /// First census that saw it off (it may have been off earlier).
    pub from_ns: u64,
    /// First later census that saw it on again; `None` when it stayed off to the end.
    pub until_ns: Option<u64>,
}

/// A finding of the gc report. The renderer words it; the fields are its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GcNote {
    /// Automatic collection was off: `gc.disable()` was called, so cycles are never freed.
    GcDisabled {
        /// Seen off in censuses (empty when inferred).
        spans: Vec<DisabledSpan>,
        /// True when no census said so but no collection ran in a long capture while the
        /// generation-0 count stayed past its threshold.
        inferred: bool,
        /// The generation-0 threshold of the target's Python (700; 2000 from 3.13).
        threshold: u64,
        /// Highest generation-0 count seen in a census.
        max_count: u64,
    },
    /// Unreachable objects (cycles awaiting the collector) keep growing from census to census.
    UnreachablePilingUp {
        /// First and last census counts, and the last one's bytes.
        from: u64,
        to: u64,
        to_bytes: u64,
        /// Objects per second (see [`Unreachable::rate`]).
        rate: f64,
    },
    /// Objects the collector could not free: `gc.garbage` holds them (or a collection reported
    /// uncollectable objects).
    Uncollectable {
        /// Largest `len(gc.garbage)` a census saw.
        garbage: u64,
        /// Uncollectable objects reported by collections, in all.
        uncollectable: u64,
        /// When they were first seen, ns since the capture start.
        first_ns: u64,
        /// What `gc.garbage` held at its largest, by type, most first.
        types: Vec<(String, u64)>,
    },
    /// Collections that stopped the program for long.
    LongPauses {
        /// Collections longer than `threshold_ns`, the longest, its generation and start.
        count: u64,
        threshold_ns: u64,
        max_ns: u64,
        max_generation: u8,
        max_at_ns: u64,
    },
}

/// Model behind `memsleuth report gc`.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    pub pid: u32,
    pub argv: Vec<String>,
    pub python_version: String,
    pub end: EndInfo,
    /// Capture duration, ns: the base of the pause shares.
    pub duration_ns: u64,
    pub collections: u64,
    pub collected: u64,
    pub uncollectable: u64,
    /// All generations together.
    pub pauses: Pauses,
    /// Generations that collected, youngest first.
    pub generations: Vec<Generation>,
    /// The gc state of every census, in time order.
    pub censuses: Vec<GcState>,
    /// Unreachable objects over the censuses and whether they pile up; `None` with fewer than
    /// two censuses.
    pub unreachable: Option<Unreachable>,
    /// Findings, most serious first.
    pub notes: Vec<GcNote>,
}

impl GcReport {
    /// The report of a capture's gc records; `None` when it has neither collections nor
    /// censuses.
    pub fn from_capture(capture: &Capture, opts: &GcOptions) -> Option<Self> {
        let mut runs: Vec<&GcCollection> = Vec::new();
        let mut censuses: Vec<&Census> = Vec::new();
        for r in &capture.records {
            match r {
                Record::Gc(g) => runs.push(g),
                Record::Census(c) => censuses.push(c),
                _ => {}
            }
        }
        if runs.is_empty() && censuses.is_empty() {
            return None;
        }
        runs.sort_by_key(|g| g.t_ns);
        censuses.sort_by_key(|c| c.t_ns);
        let end = crate::pymalloc::end_info(capture);
        let duration_ns = (end.duration * 1e9).round() as u64;
        let threshold = gen0_threshold(&capture.header.python_version);

        let mut by_gen: BTreeMap<u8, Vec<&GcCollection>> = BTreeMap::new();
        for g in &runs {
            by_gen.entry(g.generation).or_default().push(g);
        }
        let generations: Vec<Generation> = by_gen
            .iter()
            .map(|(&generation, gs)| Generation {
                generation,
                collections: gs.len() as u64,
                collected: gs.iter().fold(0u64, |a, g| a.saturating_add(g.collected)),
                uncollectable: gs
                    .iter()
                    .fold(0u64, |a, g| a.saturating_add(g.uncollectable)),
                pauses: Pauses::of(gs, duration_ns),
            })
            .collect();
        let states: Vec<GcState> = censuses.iter().map(|&c| GcState::from(c)).collect();

        let unreachable = unreachable(&states, &opts.unreachable_trend);

        let mut report = GcReport {
            pid: capture.header.pid,
            argv: capture.header.argv.clone(),
            python_version: capture.header.python_version.clone(),
            duration_ns,
            collections: runs.len() as u64,
            collected: generations
                .iter()
                .fold(0, |a, g| a.saturating_add(g.collected)),
            uncollectable: generations
                .iter()
                .fold(0, |a, g| a.saturating_add(g.uncollectable)),
            pauses: Pauses::of(&runs, duration_ns),
            generations,
            censuses: states,
            unreachable,
            notes: Vec::new(),
            end,
        };
        report.notes = notes(&report, &runs, threshold, opts);
        Some(report)
    }

    /// True when automatic collection was seen (or inferred) off.
    pub fn gc_disabled(&self) -> bool {
        self.notes
            .iter()
            .any(|n| matches!(n, GcNote::GcDisabled { .. }))
    }
}

/// Unreachable objects (cycles awaiting the collector) from the first census to the last, and
/// whether they pile up. The one judgement of that question: `report gc`, `report growth` and
/// the verdict all read it.
#[derive(Debug, Clone, Serialize)]
pub struct Unreachable {
    pub from: u64,
    pub to: u64,
    pub to_bytes: u64,
    /// When the first and the last census were taken, ns since the capture start.
    pub from_ns: u64,
    pub to_ns: u64,
    /// The shape of the count over the censuses; `None` with fewer than three.
    pub trend: Option<Verdict>,
    /// Objects per second: the trend's when it is growing, otherwise the change between the
    /// first and the last census over the time between them.
    pub rate: f64,
    pub growing: bool,
}

/// Judges the unreachable count of `states` (censuses in time order); `None` with fewer than
/// two. Growing means a growing trend; when the censuses are too few for a trend, it also means
/// a material rise over the last censuses, all taken with automatic collection off: the
/// collector off, unreachable cycles leave only through an explicit `gc.collect()`, so a rise
/// between two such censuses is not the ebb and flow between collections.
pub fn unreachable(states: &[GcState], opts: &VerdictOptions) -> Option<Unreachable> {
    let (first, last) = (states.first()?, states.last()?);
    if states.len() < 2 {
        return None;
    }
    let trend = (states.len() >= 3).then(|| {
        let t: Vec<f64> = states.iter().map(|s| s.t_ns as f64 / 1e9).collect();
        let y: Vec<f64> = states.iter().map(|s| s.unreachable as f64).collect();
        classify(&t, &y, opts)
    });
    let undecided = trend
        .as_ref()
        .is_none_or(|v| v.kind == VerdictKind::Inconclusive);
    // the censuses since automatic collection was last seen switched off
    let off = states.len() - states.iter().rev().take_while(|s| !s.gc_enabled).count();
    let rose_while_off = undecided && states.len() - off >= 2 && {
        let span = &states[off..];
        let rise = last.unreachable as f64 - span[0].unreachable as f64;
        let mut levels: Vec<u64> = span.iter().map(|s| s.unreachable).collect();
        levels.sort_unstable();
        let median = levels[levels.len() / 2] as f64;
        last.t_ns > span[0].t_ns
            && rise > opts.min_growth_bytes
            && rise > opts.min_growth_fraction * median
    };
    let rate_between = |a: &GcState| {
        let seconds = last.t_ns.saturating_sub(a.t_ns) as f64 / 1e9;
        let rise = last.unreachable as f64 - a.unreachable as f64;
        if seconds > 0.0 {
            rise / seconds
        } else {
            0.0
        }
    };
    let (rate, growing) = match &trend {
        Some(v) if v.kind == VerdictKind::Growing => (v.rate, true),
        _ if rose_while_off => (rate_between(&states[off]), true),
        _ => (rate_between(first), false),
    };
    Some(Unreachable {
        from: first.unreachable,
        to: last.unreachable,
        to_bytes: last.unreachable_bytes,
        from_ns: first.t_ns,
        to_ns: last.t_ns,
        trend,
        rate,
        growing,
    })
}

/// `gc.get_threshold()[0]` of the target's Python: 700 until 3.12, 2000 from 3.13.
fn gen0_threshold(python_version: &str) -> u64 {
    let mut parts = python_version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) if (major, minor) >= (3, 13) => 2000,
        _ => 700,
    }
}

fn notes(r: &GcReport, runs: &[&GcCollection], threshold: u64, opts: &GcOptions) -> Vec<GcNote> {
    let mut notes = Vec::new();
    let counts0: Vec<u64> = r
        .censuses
        .iter()
        .map(|s| s.gc_counts.first().copied().unwrap_or(0))
        .collect();
    let max_count = counts0.iter().copied().max().unwrap_or(0);

    let mut spans: Vec<DisabledSpan> = Vec::new();
    for s in &r.censuses {
        match (s.gc_enabled, spans.last_mut()) {
            (false, Some(open)) if open.until_ns.is_none() => {}
            (false, _) => spans.push(DisabledSpan {
                from_ns: s.t_ns,
                until_ns: None,
            }),
            (true, Some(open)) if open.until_ns.is_none() => open.until_ns = Some(s.t_ns),
            (true, _) => {}
        }
    }
    // Enabled, the collector runs as soon as the count passes the threshold, so a count that
    // stays past it and keeps rising over a long capture with no collection means it is off.
    let inferred = spans.is_empty()
        && runs.is_empty()
        && r.duration_ns >= opts.infer_disabled_after_ns
        && counts0.len() >= 2
        && counts0.iter().skip(1).all(|&c| c > threshold)
        && counts0.last() > counts0.first();
    if !spans.is_empty() || inferred {
        notes.push(GcNote::GcDisabled {
            spans,
            inferred,
            threshold,
            max_count,
        });
    }

    if let Some(u) = r.unreachable.as_ref().filter(|u| u.growing) {
        notes.push(GcNote::UnreachablePilingUp {
            from: u.from,
            to: u.to,
            to_bytes: u.to_bytes,
            rate: u.rate,
        });
    }

    let garbage = r.censuses.iter().map(|s| s.garbage).max().unwrap_or(0);
    if garbage > 0 || r.uncollectable > 0 {
        let in_census = r.censuses.iter().find(|s| s.garbage > 0).map(|s| s.t_ns);
        let in_run = runs.iter().find(|g| g.uncollectable > 0).map(|g| g.t_ns);
        let first_ns = match (in_census, in_run) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        let types = r
            .censuses
            .iter()
            .max_by_key(|s| s.garbage)
            .map(|s| s.garbage_types.clone())
            .unwrap_or_default();
        notes.push(GcNote::Uncollectable {
            garbage,
            uncollectable: r.uncollectable,
            first_ns,
            types,
        });
    }

    let long = runs
        .iter()
        .filter(|g| g.duration_ns > opts.long_pause_ns)
        .count() as u64;
    if long > 0 {
        let worst = runs
            .iter()
            .max_by_key(|g| (g.duration_ns, std::cmp::Reverse(g.t_ns)));
        notes.push(GcNote::LongPauses {
            count: long,
            threshold_ns: opts.long_pause_ns,
            max_ns: r.pauses.max_ns,
            max_generation: worst.map_or(0, |g| g.generation),
            max_at_ns: r.pauses.max_at_ns,
        });
    }
    notes
}

#[cfg(test)]
mod tests {
    use memsleuth_format::{CaptureWriter, EndReason, Header, Trailer};

    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn census(t_ns: u64, enabled: bool, count0: u64, unreachable: u64, garbage: u64) -> Record {
        Record::Census(Census {
            t_ns,
            duration_ns: 5 * MS,
            objects: 100_000,
            bytes: 10 << 20,
            gc_enabled: enabled,
            gc_counts: vec![count0, 3, 1],
            unreachable,
            unreachable_bytes: unreachable * 200,
            garbage,
            types: Vec::new(),
            garbage_types: vec![("app.Node".into(), garbage)],
        })
    }

    fn run(t_ns: u64, generation: u8, duration_ns: u64, collected: u64) -> Record {
        Record::Gc(GcCollection {
            t_ns,
            duration_ns,
            generation,
            collected,
            uncollectable: 0,
        })
    }

    fn capture(version: &str, end_ns: u64, records: &[Record]) -> Capture {
        let header = Header {
            tool_version: "test".into(),
            pid: 9,
            argv: vec!["python".into(), "worker.py".into()],
            python_version: version.into(),
            instruments: vec!["objects".into(), "gc".into()],
            ..Header::default()
        };
        let mut w = CaptureWriter::new(Vec::new(), &header).expect("header");
        for r in records {
            w.push(r);
        }
        let bytes = w
            .finish(Trailer {
                end_ns,
                reason: EndReason::TargetExited,
                ..Trailer::default()
            })
            .expect("finish");
        Capture::from_reader(bytes.as_slice()).expect("read")
    }

    fn report(version: &str, end_ns: u64, records: &[Record]) -> GcReport {
        GcReport::from_capture(&capture(version, end_ns, records), &GcOptions::default())
            .expect("gc records")
    }

    #[test]
    fn gc_turned_off_and_cycles_piling_up_are_both_said() {
        let mut records = Vec::new();
        // collections every 100 ms until gc.disable() at 5 s
        for i in 0..50 {
            records.push(run(i * 100 * MS, 0, MS, 700));
        }
        // a census a second: off from 5 s on, cycles piling up at 1000/s
        for i in 0..=20 {
            let enabled = i < 5;
            let unreachable = if enabled { 50 } else { 1000 * (i - 4) };
            records.push(census(i * S, enabled, 100 + 900 * i, unreachable, 0));
        }
        let r = report("3.12.1", 21 * S, &records);
        assert_eq!(r.collections, 50);
        assert_eq!(r.collected, 35_000);
        assert_eq!(r.censuses.len(), 21);
        assert!(r.gc_disabled());
        assert_eq!(
            r.notes[0],
            GcNote::GcDisabled {
                spans: vec![DisabledSpan {
                    from_ns: 5 * S,
                    until_ns: None
                }],
                inferred: false,
                threshold: 700,
                max_count: 18_100,
            }
        );
        let v = r
            .unreachable
            .as_ref()
            .and_then(|u| u.trend.as_ref())
            .expect("trend");
        assert_eq!(v.kind, VerdictKind::Growing, "{v:?}");
        assert_eq!(v.reason, crate::VerdictReason::Growing);
        assert!((v.rate - 1000.0).abs() < 1e-6, "{v:?}");
        match &r.notes[1] {
            GcNote::UnreachablePilingUp {
                from,
                to,
                to_bytes,
                rate,
            } => {
                assert_eq!((*from, *to, *to_bytes), (50, 16_000, 3_200_000));
                assert!((rate - 1000.0).abs() < 1.0, "{rate}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    }

    #[test]
    fn gc_switched_back_on_closes_the_span() {
        let records: Vec<Record> = (0..6)
            .map(|i| census(i * S, !(2..4).contains(&i), 10, 10, 0))
            .collect();
        let r = report("3.11.7", 6 * S, &records);
        match &r.notes[0] {
            GcNote::GcDisabled { spans, .. } => assert_eq!(
                spans,
                &[DisabledSpan {
                    from_ns: 2 * S,
                    until_ns: Some(4 * S)
                }]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_collections_while_counts_climb_means_gc_is_off() {
        let records: Vec<Record> = (0..12)
            .map(|i| census(i * 3 * S, true, 800 + 5000 * i, 20, 0))
            .collect();
        let r = report("3.12.1", 36 * S, &records);
        assert_eq!(r.collections, 0);
        assert_eq!(
            r.notes,
            [GcNote::GcDisabled {
                spans: Vec::new(),
                inferred: true,
                threshold: 700,
                max_count: 55_800,
            }]
        );
        // 3.13 collects only past 2000: counts of up to 1,900 are normal there
        let records: Vec<Record> = (0..12)
            .map(|i| census(i * 3 * S, true, 800 + 100 * i, 20, 0))
            .collect();
        assert!(report("3.13.0", 36 * S, &records).notes.is_empty());
        // and a short capture may just have ended before the first collection
        let records: Vec<Record> = (0..5)
            .map(|i| census(i * S, true, 800 + 5000 * i, 20, 0))
            .collect();
        assert!(report("3.12.1", 5 * S, &records).notes.is_empty());
    }

    #[test]
    fn pauses_per_generation() {
        let mut records = Vec::new();
        // generation 0: 100 runs of 1..=100 µs; generation 2: 3 runs, one of 250 ms
        for i in 0..100u64 {
            records.push(run(i * 10 * MS, 0, (i + 1) * 1000, 10));
        }
        records.push(run(2 * S, 2, 20 * MS, 5000));
        records.push(run(3 * S, 2, 250 * MS, 9000));
        records.push(run(5 * S, 2, 30 * MS, 7000));
        let r = report("3.12.1", 10 * S, &records);
        assert_eq!(r.generations.len(), 2);
        let g0 = &r.generations[0];
        assert_eq!(
            (g0.generation, g0.collections, g0.collected),
            (0, 100, 1000)
        );
        assert_eq!(g0.pauses.total_ns, 5_050_000);
        assert_eq!(g0.pauses.max_ns, 100_000);
        assert_eq!(g0.pauses.p50_ns, 50_000);
        assert_eq!(g0.pauses.p99_ns, 99_000);
        assert!((g0.pauses.share - 5_050_000.0 / 10e9).abs() < 1e-12);
        let g2 = &r.generations[1];
        assert_eq!((g2.generation, g2.collections), (2, 3));
        assert_eq!(g2.pauses.max_ns, 250 * MS);
        assert_eq!(g2.pauses.max_at_ns, 3 * S);
        assert_eq!(g2.pauses.p50_ns, 30 * MS);
        assert_eq!(r.pauses.max_ns, 250 * MS);
        assert_eq!(r.pauses.total_ns, 5_050_000 + 300 * MS);
        assert_eq!(
            r.notes,
            [GcNote::LongPauses {
                count: 1,
                threshold_ns: 100 * MS,
                max_ns: 250 * MS,
                max_generation: 2,
                max_at_ns: 3 * S,
            }]
        );
    }

    #[test]
    fn uncollectable_objects_are_reported() {
        let mut records = vec![census(S, true, 10, 0, 0), census(2 * S, true, 10, 0, 4)];
        records.push(Record::Gc(GcCollection {
            t_ns: 1500 * MS,
            duration_ns: MS,
            generation: 2,
            collected: 10,
            uncollectable: 4,
        }));
        let r = report("3.9.18", 3 * S, &records);
        assert_eq!(r.uncollectable, 4);
        assert_eq!(
            r.notes,
            [GcNote::Uncollectable {
                garbage: 4,
                uncollectable: 4,
                first_ns: 1500 * MS,
                types: vec![("app.Node".into(), 4)],
            }]
        );
    }

    #[test]
    fn two_censuses_with_collection_off_are_enough_to_see_cycles_pile_up() {
        // a short run with a slow census: too few censuses for a trend
        let off = [
            census(S / 2, false, 9_000, 30_000, 0),
            census(S, false, 18_000, 60_000, 0),
        ];
        let r = report("3.13.0", S, &off);
        let u = r.unreachable.as_ref().expect("two censuses");
        assert!(u.growing && u.trend.is_none(), "{u:?}");
        assert!((u.rate - 60_000.0).abs() < 1e-6, "{}", u.rate);
        assert!(r
            .notes
            .iter()
            .any(|n| matches!(n, GcNote::UnreachablePilingUp { to: 60_000, .. })));

        // with the collector on, the same rise may be the ebb and flow between collections
        let on = [
            census(S / 2, true, 100, 30_000, 0),
            census(S, true, 100, 60_000, 0),
        ];
        let u = report("3.13.0", S, &on).unreachable.expect("two censuses");
        assert!(!u.growing, "{u:?}");
    }

    #[test]
    fn a_healthy_capture_has_no_notes() {
        let mut records = Vec::new();
        for i in 0..200u64 {
            records.push(run(i * 50 * MS, (i % 10 == 9) as u8, 200_000, 500));
        }
        for i in 0..10u64 {
            records.push(census(i * S, true, 300, 40 + i % 3, 0));
        }
        let r = report("3.11.7", 10 * S, &records);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        assert!(!r.gc_disabled());
        assert_eq!(
            r.unreachable
                .as_ref()
                .and_then(|u| u.trend.as_ref())
                .map(|v| v.kind),
            Some(VerdictKind::Stable)
        );
        assert!((r.pauses.share - 0.004).abs() < 1e-9, "{}", r.pauses.share);
    }

    #[test]
    fn neither_record_no_report() {
        let c = capture("3.12.1", S, &[]);
        assert!(GcReport::from_capture(&c, &GcOptions::default()).is_none());
    }

    #[test]
    fn thresholds_follow_the_python_version() {
        assert_eq!(gen0_threshold("3.12.1 (main, Jan 1 2024)"), 700);
        assert_eq!(gen0_threshold("3.13.0"), 2000);
        assert_eq!(gen0_threshold("3.14.0a1"), 2000);
        assert_eq!(gen0_threshold(""), 700);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.99), 7);
    }
}
