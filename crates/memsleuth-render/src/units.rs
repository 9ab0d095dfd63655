//! Human units for sizes and rates.

/// `1536` → `"1.5 KiB"`; exact bytes below 1 KiB.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let sign = if n < 0.0 { "-" } else { "" };
    let mut v = n.abs();
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{sign}{v:.0} B")
    } else if v >= 100.0 {
        format!("{sign}{v:.0} {}", UNITS[unit])
    } else {
        format!("{sign}{v:.1} {}", UNITS[unit])
    }
}

/// Signed size with an explicit `+` for growth: `"+1.5 MiB"`.
pub fn signed_bytes(n: f64) -> String {
    if n > 0.0 {
        format!("+{}", bytes(n))
    } else {
        bytes(n)
    }
}

/// A rate in bytes per second: `"+1.2 MiB/s"`.
pub fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", signed_bytes(bytes_per_s))
}

/// Seconds in a short human form: `"850 ms"`, `"12.3 s"`, `"4m05s"`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The sum of sizes or counts read from a capture, saturating: a damaged capture can claim
/// blocks of any size, and a total that wraps would be a lie (or, in a debug build, a panic).
pub fn total(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(0, u64::saturating_add)
}

/// A count with thousands separators: `48211` → `"48,211"`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds down to the microsecond, for gc pauses, which are mostly far below a millisecond:
/// `"35 µs"`, `"1.25 ms"`, `"250 ms"`; from one second on as [`seconds`].
pub fn fine_seconds(s: f64) -> String {
    if s >= 1.0 {
        seconds(s)
    } else if s >= 0.1 {
        format!("{:.0} ms", s * 1e3)
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 0.001 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(300.0 * 1024.0 * 1024.0), "300 MiB");
        assert_eq!(signed_bytes(2.0 * 1024.0 * 1024.0), "+2.0 MiB");
        assert_eq!(signed_bytes(-2048.0), "-2.0 KiB");
        assert_eq!(rate(1024.0), "+1.0 KiB/s");
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(245.0), "4m05s");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(10_489_956), "10,489,956");
        assert_eq!(count(48_211), "48,211");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn pauses_keep_their_microseconds() {
        assert_eq!(fine_seconds(0.0), "0 µs");
        assert_eq!(fine_seconds(0.000_035), "35 µs");
        assert_eq!(fine_seconds(0.001_25), "1.25 ms");
        assert_eq!(fine_seconds(0.0123), "12.3 ms");
        assert_eq!(fine_seconds(0.25), "250 ms");
        assert_eq!(fine_seconds(2.5), "2.5 s");
    }
}
