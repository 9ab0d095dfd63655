//! Strings a program chose, made safe to print on a terminal.
//!
//! Function, file and type names come from the program being analysed, and a program can make
//! them anything: `compile(src, "\x1b]0;pwned\x07evil.py", "exec")`, or a function renamed
//! through `__code__.replace(co_name=...)`. Printed raw, an escape sequence in a name clears the
//! screen, sets the terminal's title or rewrites what the report says. Every text renderer
//! passes every such string (function, file and type names, holder descriptions, marks, command
//! lines) through [`printable`]. JSON keeps the exact string (its own escaping covers it); the
//! HTML pages use it too, under their HTML escaping, so a control character shows as `\x1b`
//! there as well instead of vanishing.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that a terminal obeys or that reorder what it shows: the C0 and C1 controls and
/// DEL, and the Unicode bidirectional overrides and isolates (which can make a line read
/// differently from what it holds).
fn hazardous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every control character spelled out: `\n`, `\t`, `\r`, `\x1b`, `\x00`, `\x08`,
/// `\x9b`; bidirectional controls as `\u{202e}`. Everything else, backslashes included, is kept
/// as it is, so ordinary names and Windows paths read unchanged.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hazardous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Writing to a String cannot fail.
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if hazardous(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_spelled_out() {
        assert_eq!(
            printable("\x1b]0;pwned\x07evil.py"),
            "\\x1b]0;pwned\\x07evil.py"
        );
        assert_eq!(printable("a\x00b\x08c\x7f"), "a\\x00b\\x08c\\x7f");
        assert_eq!(printable("one\ntwo\tthree\r"), "one\\ntwo\\tthree\\r");
        assert_eq!(printable("\u{9b}2J"), "\\x9b2J");
        assert_eq!(printable("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
    }

    #[test]
    fn ordinary_names_are_kept_as_they_are() {
        for s in [
            "handle",
            "Cache.add",
            "<module>",
            "C:\\app\\x.py",
            "día/naïve.py",
            "…/a.py",
        ] {
            assert!(matches!(printable(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }
}
