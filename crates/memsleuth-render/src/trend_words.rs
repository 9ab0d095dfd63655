//! The words on a trend verdict. The analysis says which case applies and with what figures
//! ([`VerdictReason`]); every sentence a reader sees under a verdict is written here.

use memsleuth_analysis::{TimelineReport, Verdict, VerdictKind, VerdictReason};

use crate::units::count;

/// The sentence under a memory verdict, e.g. "grows 1.2 MiB/s (95% CI 1.1–1.3 MiB/s) after a
/// 2.0 s warm-up, p < 0.001".
pub fn verdict_sentence(v: &Verdict) -> String {
    sentence(v, "samples")
}

/// The sentence under the verdict of a timeline report: a process' own verdict, standing for
/// the tree's, is named by its pid.
pub fn report_sentence(r: &TimelineReport) -> String {
    let sentence = verdict_sentence(&r.verdict);
    match r.verdict_pid {
        Some(pid) => format!("pid {pid}: {sentence}"),
        None => sentence,
    }
}

/// The verdict on a series of counts, kind first, e.g. "growing: 1,000 more objects per second
/// (95% CI 990–1,010), p < 0.001". `unit` is the plural noun counted ("objects", "blocks");
/// `points`, what the series was taken at ("censuses", "snapshots").
pub fn count_sentence(v: &Verdict, unit: &str, points: &str) -> String {
    let n = |x: f64| count(x.abs().round() as u64);
    match v.kind {
        VerdictKind::Growing => format!(
            "growing: {} more {unit} per second (95% CI {}–{}), {}",
            n(v.rate),
            n(v.rate_low),
            n(v.rate_high),
            p_phrase(v.p_value)
        ),
        VerdictKind::Plateau => format!(
            "plateau: grew by {} {unit}, then levelled off",
            n(v.net_change)
        ),
        VerdictKind::Sawtooth => format!(
            "sawtooth: rises and falls back {} times, no growth trend",
            v.releases
        ),
        VerdictKind::Stable => format!(
            "stable: no growth trend (net change {}{} {unit})",
            if v.net_change < 0.0 { "-" } else { "+" },
            n(v.net_change)
        ),
        VerdictKind::Inconclusive => format!("inconclusive: {}", sentence(v, points)),
    }
}

/// The memory sentence, with `points` naming what was sampled where it says there were too
/// few: the same reasons cut a series of censuses or snapshots short.
fn sentence(v: &Verdict, points: &str) -> String {
    let n = v.points;
    let too_few = |why: String| format!("too few {points} to judge ({why})");
    match v.reason {
        VerdictReason::Growing => {
            let mut s = format!(
                "grows {} {}, {}",
                rate_with_interval(v.rate, v.rate_low, v.rate_high),
                warmup_phrase(v.warmup),
                p_phrase(v.p_value)
            );
            if v.releases > 0 {
                s.push_str(&format!(
                    ", even though it is released {}",
                    times(v.releases)
                ));
            }
            s
        }
        VerdictReason::Sawtooth { range } => format!(
            "rises and is released {} (swings of up to {}), no growth trend",
            times(v.releases),
            size(range)
        ),
        VerdictReason::Plateau { filled, level } => format!(
            "grew {}, then levelled off at {}",
            size(filled),
            size(level)
        ),
        VerdictReason::Shrinking => format!(
            "shrinks {}, no growth {}",
            rate_with_interval(-v.rate, -v.rate_high, -v.rate_low),
            warmup_phrase(v.warmup)
        ),
        VerdictReason::NoSignificantTrend => format!(
            "no significant trend: slope {}, {}",
            rate_with_interval(v.rate, v.rate_low, v.rate_high),
            p_phrase(v.p_value)
        ),
        VerdictReason::ReleasedNoTrend => format!(
            "rises and is released {}, no growth trend",
            times(v.releases)
        ),
        VerdictReason::NoMaterialChange { spread } => {
            format!("no material change (±{})", size(spread))
        }
        VerdictReason::NoSamples => too_few("none usable".to_string()),
        VerdictReason::TooFewSamples { need } => {
            too_few(format!("{n} usable, need at least {need}"))
        }
        VerdictReason::AllAtOnce => too_few(format!("{n} {points}, all at the same time")),
        VerdictReason::TooFewAfterWarmup { need } => {
            let after = if v.warmup > 0.0 {
                format!(" after the {} warm-up", duration(v.warmup))
            } else {
                String::new()
            };
            too_few(format!("{n}{after}, need at least {need} spread over time"))
        }
        VerdictReason::TooBrief {
            allocated_for_ns,
            windows,
            window_ns,
        } => format!(
            "too short to judge: allocated over the last {:.1} ms only ({windows} window{} of {} \
             ms)",
            allocated_for_ns as f64 / 1e6,
            if windows == 1 { "" } else { "s" },
            window_ns / 1_000_000
        ),
    }
}

fn p_phrase(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {p:.3}")
    }
}

fn times(n: u32) -> String {
    match n {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        n => format!("{n} times"),
    }
}

fn warmup_phrase(warmup: f64) -> String {
    if warmup > 0.0 {
        format!("after a {} warm-up", duration(warmup))
    } else {
        "with no warm-up".to_string()
    }
}

/// "2.0 s", or "3.5 min" from two minutes on. Not `units::seconds`: a warm-up has always read
/// in tenths of a second here, never in milliseconds.
fn duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

// Sizes here keep one decimal in every unit ("300.0 MiB", where `units::bytes` writes "300 MiB"),
// and a rate shares the unit of its interval's ends: `units` has neither form.

const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// Binary unit (index into `UNITS`) in which `x` bytes reads best.
fn unit_of(x: f64) -> usize {
    let mut a = x.abs();
    let mut u = 0;
    // switch up when the value would round to 1024 in the current unit
    while u + 1 < UNITS.len() && a >= if u == 0 { 1023.5 } else { 1023.95 } {
        a /= 1024.0;
        u += 1;
    }
    u
}

/// `x` bytes as a number in unit `u`: whole bytes, one decimal otherwise.
fn number_in(x: f64, u: usize) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let v = x / 1024f64.powi(u as i32);
    if u == 0 {
        let v = v.round();
        format!("{:.0}", if v == 0.0 { 0.0 } else { v })
    } else {
        let v = (v * 10.0).round() / 10.0;
        format!("{:.1}", if v == 0.0 { 0.0 } else { v })
    }
}

/// "512 B", "1.5 KiB", "30.0 MiB", "-2.0 GiB".
fn size(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let u = unit_of(x);
    format!("{} {}", number_in(x, u), UNITS[u])
}

/// "1.2 MiB/s (95% CI 1.1–1.3 MiB/s)", all three in the unit of the largest.
fn rate_with_interval(rate: f64, low: f64, high: f64) -> String {
    let biggest = [rate, low, high]
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    let u = unit_of(biggest);
    format!(
        "{r} {unit}/s (95% CI {l}–{h} {unit}/s)",
        r = number_in(rate, u),
        l = number_in(low, u),
        h = number_in(high, u),
        unit = UNITS[u]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::test_models;

    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;

    /// A verdict with a reason and the figures its sentence reads.
    fn verdict(kind: VerdictKind, reason: VerdictReason) -> Verdict {
        Verdict {
            kind,
            rate: 2.0 * MIB,
            rate_low: 1.9 * MIB,
            rate_high: 2.1 * MIB,
            p_value: 0.0004,
            warmup: 2.0,
            window_start: 2.0,
            window_end: 10.0,
            intercept: 30.0 * MIB,
            net_change: 16.0 * MIB,
            releases: 0,
            points: 161,
            reason,
        }
    }

    fn inconclusive(reason: VerdictReason, points: usize, warmup: f64) -> Verdict {
        Verdict {
            points,
            warmup,
            ..verdict(VerdictKind::Inconclusive, reason)
        }
    }

    #[test]
    fn growing_names_rate_interval_warmup_and_p() {
        let v = verdict(VerdictKind::Growing, VerdictReason::Growing);
        assert_eq!(
            verdict_sentence(&v),
            "grows 2.0 MiB/s (95% CI 1.9–2.1 MiB/s) after a 2.0 s warm-up, p < 0.001"
        );
        let v = Verdict {
            warmup: 0.0,
            p_value: 0.0123,
            releases: 3,
            rate: 100.0 * KIB,
            rate_low: 90.0 * KIB,
            rate_high: 110.0 * KIB,
            ..v
        };
        assert_eq!(
            verdict_sentence(&v),
            "grows 100.0 KiB/s (95% CI 90.0–110.0 KiB/s) with no warm-up, p = 0.012, even \
             though it is released 3 times"
        );
    }

    #[test]
    fn sawtooth_names_its_releases_and_swing() {
        let v = Verdict {
            releases: 4,
            ..verdict(
                VerdictKind::Sawtooth,
                VerdictReason::Sawtooth { range: 12.9 * MIB },
            )
        };
        assert_eq!(
            verdict_sentence(&v),
            "rises and is released 4 times (swings of up to 12.9 MiB), no growth trend"
        );
    }

    #[test]
    fn plateau_names_what_filled_and_where_it_settled() {
        let v = verdict(
            VerdictKind::Plateau,
            VerdictReason::Plateau {
                filled: 18.1 * MIB,
                level: 28.7 * MIB,
            },
        );
        assert_eq!(
            verdict_sentence(&v),
            "grew 18.1 MiB, then levelled off at 28.7 MiB"
        );
    }

    #[test]
    fn shrinking_reads_as_a_positive_rate_down() {
        let v = Verdict {
            rate: -26.0 * MIB,
            rate_low: -29.1 * MIB,
            rate_high: -23.5 * MIB,
            warmup: 0.6,
            ..verdict(VerdictKind::Stable, VerdictReason::Shrinking)
        };
        assert_eq!(
            verdict_sentence(&v),
            "shrinks 26.0 MiB/s (95% CI 23.5–29.1 MiB/s), no growth after a 0.6 s warm-up"
        );
    }

    #[test]
    fn a_slope_without_evidence_says_so() {
        let v = Verdict {
            rate: 1.5 * MIB,
            rate_low: -0.5 * MIB,
            rate_high: 3.5 * MIB,
            p_value: 0.12,
            ..verdict(VerdictKind::Stable, VerdictReason::NoSignificantTrend)
        };
        assert_eq!(
            verdict_sentence(&v),
            "no significant trend: slope 1.5 MiB/s (95% CI -0.5–3.5 MiB/s), p = 0.120"
        );
    }

    #[test]
    fn releases_without_a_sawtooth_are_counted_in_words() {
        let v = verdict(VerdictKind::Stable, VerdictReason::ReleasedNoTrend);
        for (releases, said) in [(1, "once"), (2, "twice"), (5, "5 times")] {
            assert_eq!(
                verdict_sentence(&Verdict {
                    releases,
                    ..v.clone()
                }),
                format!("rises and is released {said}, no growth trend")
            );
        }
    }

    #[test]
    fn no_material_change_gives_the_spread() {
        let v = |spread| {
            verdict(
                VerdictKind::Stable,
                VerdictReason::NoMaterialChange { spread },
            )
        };
        assert_eq!(
            verdict_sentence(&v(208.0 * KIB)),
            "no material change (±208.0 KiB)"
        );
        assert_eq!(verdict_sentence(&v(0.0)), "no material change (±0 B)");
    }

    #[test]
    fn too_few_samples_says_how_many_and_how_many_it_needs() {
        let v = inconclusive(VerdictReason::NoSamples, 0, 0.0);
        assert_eq!(
            verdict_sentence(&v),
            "too few samples to judge (none usable)"
        );
        let v = inconclusive(VerdictReason::TooFewSamples { need: 3 }, 2, 0.0);
        assert_eq!(
            verdict_sentence(&v),
            "too few samples to judge (2 usable, need at least 3)"
        );
        let v = inconclusive(VerdictReason::AllAtOnce, 50, 0.0);
        assert_eq!(
            verdict_sentence(&v),
            "too few samples to judge (50 samples, all at the same time)"
        );
        let v = inconclusive(VerdictReason::TooFewAfterWarmup { need: 8 }, 4, 0.8);
        assert_eq!(
            verdict_sentence(&v),
            "too few samples to judge (4 after the 0.8 s warm-up, need at least 8 spread over \
             time)"
        );
        let v = inconclusive(VerdictReason::TooFewAfterWarmup { need: 8 }, 1, 0.0);
        assert_eq!(
            verdict_sentence(&v),
            "too few samples to judge (1, need at least 8 spread over time)"
        );
    }

    #[test]
    fn a_site_allocated_at_the_very_end_is_too_short() {
        let v = |allocated_for_ns, windows, window_ns| {
            let reason = VerdictReason::TooBrief {
                allocated_for_ns,
                windows,
                window_ns,
            };
            inconclusive(reason, 2, 0.0)
        };
        assert_eq!(
            verdict_sentence(&v(3_000_000, 1, 8_000_000)),
            "too short to judge: allocated over the last 3.0 ms only (1 window of 8 ms)"
        );
        assert_eq!(
            verdict_sentence(&v(4_500_000, 6, 1_000_000)),
            "too short to judge: allocated over the last 4.5 ms only (6 windows of 1 ms)"
        );
    }

    #[test]
    fn a_process_standing_for_the_tree_is_named() {
        let mut r = test_models::growing();
        let own = verdict_sentence(&r.verdict);
        assert_eq!(report_sentence(&r), own);
        r.verdict_pid = Some(4243);
        assert_eq!(report_sentence(&r), format!("pid 4243: {own}"));
    }

    #[test]
    fn counts_read_in_their_unit_with_grouped_digits() {
        let v = Verdict {
            rate: 1000.0,
            rate_low: 990.0,
            rate_high: 1010.0,
            p_value: 1e-6,
            ..verdict(VerdictKind::Growing, VerdictReason::Growing)
        };
        assert_eq!(
            count_sentence(&v, "objects", "censuses"),
            "growing: 1,000 more objects per second (95% CI 990–1,010), p < 0.001"
        );
        let plateau = VerdictReason::Plateau {
            filled: 2048.0,
            level: 4096.0,
        };
        let v = Verdict {
            net_change: 2048.0,
            ..verdict(VerdictKind::Plateau, plateau)
        };
        assert_eq!(
            count_sentence(&v, "blocks", "snapshots"),
            "plateau: grew by 2,048 blocks, then levelled off"
        );
        let v = Verdict {
            releases: 3,
            ..verdict(
                VerdictKind::Sawtooth,
                VerdictReason::Sawtooth { range: 9.0 },
            )
        };
        assert_eq!(
            count_sentence(&v, "blocks", "snapshots"),
            "sawtooth: rises and falls back 3 times, no growth trend"
        );
        let stable = VerdictReason::NoMaterialChange { spread: 4.0 };
        let v = Verdict {
            net_change: -12.0,
            ..verdict(VerdictKind::Stable, stable)
        };
        assert_eq!(
            count_sentence(&v, "objects", "censuses"),
            "stable: no growth trend (net change -12 objects)"
        );
    }

    #[test]
    fn too_few_counts_name_what_was_taken() {
        let v = inconclusive(VerdictReason::TooFewAfterWarmup { need: 6 }, 4, 0.6);
        assert_eq!(
            count_sentence(&v, "objects", "censuses"),
            "inconclusive: too few censuses to judge (4 after the 0.6 s warm-up, need at least 6 \
             spread over time)"
        );
        let v = inconclusive(VerdictReason::AllAtOnce, 3, 0.0);
        assert_eq!(
            count_sentence(&v, "blocks", "snapshots"),
            "inconclusive: too few snapshots to judge (3 snapshots, all at the same time)"
        );
    }

    #[test]
    fn sizes_and_rates_keep_one_decimal() {
        assert_eq!(size(0.0), "0 B");
        assert_eq!(size(-0.2), "0 B");
        assert_eq!(size(512.0), "512 B");
        assert_eq!(size(1023.7), "1.0 KiB");
        assert_eq!(size(1536.0), "1.5 KiB");
        assert_eq!(size(300.0 * KIB), "300.0 KiB");
        assert_eq!(size(1.2 * MIB), "1.2 MiB");
        assert_eq!(size(-40.0 * MIB), "-40.0 MiB");
        assert_eq!(size(3.0 * 1024.0 * MIB), "3.0 GiB");
        assert_eq!(size(f64::NAN), "n/a");
        assert_eq!(
            rate_with_interval(1.2 * MIB, 1.1 * MIB, 1.3 * MIB),
            "1.2 MiB/s (95% CI 1.1–1.3 MiB/s)"
        );
        assert_eq!(
            rate_with_interval(900.0 * KIB, 800.0 * KIB, 1.1 * MIB),
            "0.9 MiB/s (95% CI 0.8–1.1 MiB/s)"
        );
        assert_eq!(p_phrase(0.0004), "p < 0.001");
        assert_eq!(p_phrase(0.0123), "p = 0.012");
        assert_eq!(warmup_phrase(0.0), "with no warm-up");
        assert_eq!(warmup_phrase(2.0), "after a 2.0 s warm-up");
        assert_eq!(warmup_phrase(300.0), "after a 5.0 min warm-up");
    }
}
