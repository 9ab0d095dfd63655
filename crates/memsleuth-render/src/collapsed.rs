//! A stack [`Profile`] as folded stacks (Brendan Gregg's "collapsed" format): one line per stack,
//! `outer;middle;site bytes`, which `flamegraph.pl`, inferno and speedscope read.

use std::io::{self, Write};

use memsleuth_analysis::Profile;

/// The frame that stands for a stack with no Python frame at all (allocations made before the
/// first frame, e.g. at interpreter start-up), so such bytes still show up in a graph.
pub const NO_FRAME: &str = "[no Python frame]";

/// Label of a location index that the profile does not have (a malformed model); never panics.
const BAD_FRAME: &str = "[unknown frame]";

/// Writes one `frame;frame;frame bytes` line per stack, outermost frame first, frames labelled
/// `function (file:line)`. Semicolons and line breaks inside names are replaced so that every
/// line parses back into the same frames and value.
pub fn collapsed(profile: &Profile, out: &mut impl Write) -> io::Result<()> {
    let labels: Vec<String> = profile
        .locations
        .iter()
        .map(|l| folded_frame(&crate::labels::frame(l)))
        .collect();
    let mut line = String::new();
    for stack in &profile.stacks {
        line.clear();
        if stack.frames.is_empty() {
            line.push_str(NO_FRAME);
        }
        for (i, &frame) in stack.frames.iter().enumerate() {
            if i > 0 {
                line.push(';');
            }
            line.push_str(labels.get(frame as usize).map_or(BAD_FRAME, String::as_str));
        }
        writeln!(out, "{line} {}", stack.bytes)?;
    }
    Ok(())
}

/// A frame label made safe for the folded format: `;` separates frames, so it becomes `,`;
/// control characters are spelled out as in every text report (`\n`, `\x1b`), so a line break
/// cannot end a record and an escape sequence cannot reach a terminal. An empty label becomes
/// [`BAD_FRAME`] (an empty frame would read as two separators).
pub(crate) fn folded_frame(label: &str) -> String {
    if label.is_empty() {
        return BAD_FRAME.to_string();
    }
    crate::escape::printable(label).replace(';', ",")
}

#[cfg(test)]
pub(crate) mod test_profiles {
    //! Synthetic profiles shared by the stack renderers' tests.

    use memsleuth_analysis::{Location, Profile, ProfileStack, ProfileSubject};

    pub fn loc(function: &str, file: &str, line: u32) -> Location {
        Location {
            function: function.into(),
            file: file.into(),
            line,
            library: String::new(),
        }
    }

    /// Three stacks under `main`, one with no frame, names that need escaping.
    pub fn small() -> Profile {
        Profile {
            program: Some("app.py".into()),
            subject: ProfileSubject::Leaks { at_ns: None },
            locations: vec![
                loc("<module>", "app.py", 1),            // 0
                loc("main", "app.py", 10),               // 1
                loc("load", "store.py", 20),             // 2
                loc("cache_put", "store.py", 31),        // 3
                loc("parse;fast", "fmt</script>.py", 7), // 4
                loc("<listcomp>", "fmt</script>.py", 8), // 5
                loc("weird\nname", "", 0),               // 6
            ],
            stacks: vec![
                ProfileStack {
                    frames: vec![0, 1, 2, 3],
                    bytes: 6 * 1024 * 1024,
                    count: 600,
                    bins: vec![(0, 1024 * 1024, 100), (5, 5 * 1024 * 1024, 500)],
                },
                ProfileStack {
                    frames: vec![0, 1, 4, 5],
                    bytes: 3 * 1024 * 1024,
                    count: 3000,
                    bins: vec![(2, 3 * 1024 * 1024, 3000)],
                },
                ProfileStack {
                    frames: vec![0, 1, 2],
                    bytes: 1024 * 1024,
                    count: 10,
                    bins: vec![(9, 1024 * 1024, 10)],
                },
                ProfileStack {
                    frames: vec![],
                    bytes: 4096,
                    count: 2,
                    bins: vec![(0, 4096, 2)],
                },
                ProfileStack {
                    frames: vec![6],
                    bytes: 100,
                    count: 1,
                    bins: vec![(1, 100, 1)],
                },
            ],
            bin_ns: 1_000_000_000,
            bins: 10,
            heap: (0..=100)
                .map(|i| (i * 100_000_000, i * 100 * 1024 + 1_000_000))
                .collect(),
            rss: (0..=50)
                .map(|i| (i * 200_000_000, i * 300 * 1024 + 20_000_000))
                .collect(),
            sampled: false,
        }
    }

    /// A big profile: `stacks` stacks of depth up to `max_depth` over a call tree with shared
    /// prefixes, every stack allocated over several time bins. Deterministic.
    pub fn big(stacks: usize, max_depth: usize) -> Profile {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            // xorshift64*
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let files = 40;
        let functions = 600;
        let locations: Vec<Location> = (0..functions)
            .map(|i| {
                loc(
                    &format!("function_{i}"),
                    &format!("/srv/app/package_{}/module_{}.py", i % files / 8, i % files),
                    (i * 7 % 500 + 1) as u32,
                )
            })
            .collect();
        let bins = 120u32;
        let mut out = Vec::with_capacity(stacks);
        for s in 0..stacks {
            let depth = 8 + (next() as usize) % (max_depth - 7);
            // A few hot prefixes, then a tail that diverges.
            let mut frames = Vec::with_capacity(depth);
            let family = (next() % 12) as u32;
            for d in 0..depth {
                let f = if d < 6 {
                    (family * 6 + d as u32) % functions as u32
                } else if d < depth / 2 {
                    (family * 31 + (d as u32) * 13 + (s as u32 % 5)) % functions as u32
                } else {
                    (next() % functions as u64) as u32
                };
                frames.push(f);
            }
            let bytes = 64 + next() % (1 << 20) / (1 + (s as u64) / 50);
            let count = 1 + bytes / 96;
            let first = (next() % u64::from(bins)) as u32;
            let spread = 1 + (next() % 30) as u32;
            let used: Vec<u32> = (first..(first + spread).min(bins)).collect();
            let n = used.len() as u64;
            let mut bin_vals = Vec::with_capacity(used.len());
            let (mut b_left, mut c_left) = (bytes, count);
            for (i, &b) in used.iter().enumerate() {
                let (bb, cc) = if i + 1 == used.len() {
                    (b_left, c_left)
                } else {
                    (bytes / n, count / n)
                };
                b_left -= bb;
                c_left -= cc;
                if bb > 0 || cc > 0 {
                    bin_vals.push((b, bb, cc));
                }
            }
            out.push(ProfileStack {
                frames,
                bytes,
                count,
                bins: bin_vals,
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.bytes));
        let end = u64::from(bins) * 250_000_000;
        Profile {
            program: Some("big.py".into()),
            subject: ProfileSubject::Peak { at_ns: end / 2 },
            locations,
            stacks: out,
            bin_ns: 250_000_000,
            bins,
            heap: (0..20_000u64)
                .map(|i| {
                    (
                        i * end / 20_000,
                        50_000_000 + (i * 37_813 % 9_000_000) + i * 1000,
                    )
                })
                .collect(),
            rss: (0..3_000u64)
                .map(|i| (i * end / 3_000, 90_000_000 + i * 9_000))
                .collect(),
            sampled: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_profiles::*;
    use super::*;

    fn folded(profile: &Profile) -> String {
        let mut out = Vec::new();
        collapsed(profile, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Parses folded stacks as flamegraph.pl does: the value after the last space.
    fn parse(text: &str) -> Vec<(Vec<String>, u64)> {
        text.lines()
            .map(|line| {
                let (stack, value) = line.rsplit_once(' ').unwrap();
                (
                    stack.split(';').map(str::to_string).collect(),
                    value.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn one_line_per_stack_outermost_first() {
        let p = small();
        let text = folded(&p);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), p.stacks.len());
        assert_eq!(
            lines[0],
            "<module> (app.py:1);main (app.py:10);load (store.py:20);cache_put (store.py:31) 6291456"
        );
        // `;` inside a name cannot split a frame; a line break cannot split a record.
        assert_eq!(
            lines[1],
            "<module> (app.py:1);main (app.py:10);parse,fast (fmt</script>.py:7);\
             <listcomp> (fmt</script>.py:8) 3145728"
        );
        assert_eq!(lines[3], "[no Python frame] 4096");
        assert_eq!(lines[4], "weird\\nname 100");
    }

    #[test]
    fn control_characters_in_names_are_spelled_out() {
        let mut p = small();
        p.locations[6].function = "evil\x1b]0;pwned\x07\x00\x08".into();
        let text = folded(&p);
        assert!(!text.contains('\x1b') && !text.contains('\x00'), "{text:?}");
        assert!(
            text.contains("evil\\x1b]0,pwned\\x07\\x00\\x08 100"),
            "{text}"
        );
    }

    #[test]
    fn parses_back_to_the_same_totals() {
        for p in [small(), big(2000, 64)] {
            let parsed = parse(&folded(&p));
            assert_eq!(parsed.len(), p.stacks.len());
            assert_eq!(parsed.iter().map(|(_, v)| v).sum::<u64>(), p.total_bytes());
            for ((frames, value), stack) in parsed.iter().zip(&p.stacks) {
                assert_eq!(*value, stack.bytes);
                assert_eq!(frames.len(), stack.frames.len().max(1));
                assert!(frames.iter().all(|f| !f.is_empty()));
            }
        }
    }

    #[test]
    fn bad_frame_indexes_do_not_panic() {
        let mut p = small();
        p.stacks[0].frames.push(999);
        let text = folded(&p);
        assert!(text
            .lines()
            .next()
            .unwrap()
            .ends_with(";[unknown frame] 6291456"));
    }
}
