//! Command lines that ask for something wrong or odd, through the real binary: one line that
//! says what and how to fix it, exit 2 for a usage error and 1 for work that failed.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{dir, memsleuth, stderr, stdout};

/// The one error line, checked to be the only line on stderr.
fn one_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("memsleuth: error: "), "{err}");
    lines[0].to_string()
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

#[test]
fn an_option_given_no_value_says_so_with_an_example() {
    let d = dir("usage");
    for (args, says) in [
        (
            &["watch", "-i", "--", "true"][..],
            "-i/--interval needs a value (e.g. -i 100ms); see `memsleuth watch --help`",
        ),
        (
            &["watch", "-qi", "--", "true"],
            "-i/--interval needs a value (e.g. -i 100ms)",
        ),
        (
            &["watch", "--interval", "--", "true"],
            "-i/--interval needs a value (e.g. --interval 100ms)",
        ),
        (
            &["watch", "-d", "--", "true"],
            "-d/--duration needs a value (e.g. -d 30s)",
        ),
        (
            &["watch", "-o", "--", "true"],
            "-o/--output needs a value (e.g. -o out.msl)",
        ),
        (&["watch", "-p"], "-p/--pid needs a value (e.g. -p 1234)"),
        (
            &["run", "--census", "--", "app.py"],
            "--census needs a value (e.g. --census 1)",
        ),
        (
            &["run", "-o"],
            "-o/--output needs a value (e.g. -o out.msl)",
        ),
        (
            &["report", "leaks", "x.msl", "--at"],
            "--at needs a value (e.g. --at 12.5)",
        ),
        (
            &["report", "growth", "x.msl", "--from"],
            "--from needs a value (e.g. --from=#1)",
        ),
        (
            &["report", "export", "x.msl", "--format"],
            "--format needs a value (e.g. --format json)",
        ),
        (
            &["report", "timeline", "x.msl", "-o"],
            "-o/--output needs a value (e.g. -o mem.svg); see `memsleuth report timeline --help`",
        ),
    ] {
        let o = memsleuth(&d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let line = one_line(&o);
        assert!(line.contains(says), "{args:?}: {line}");
    }
}

#[test]
fn a_stack_depth_out_of_range_names_the_range_and_the_default() {
    let d = dir("usage");
    for depth in ["0", "257", "many"] {
        let o = memsleuth(&d, &["run", "--stack-depth", depth, "app.py"]);
        assert_eq!(o.status.code(), Some(2), "{depth}: {}", stderr(&o));
        let line = one_line(&o);
        assert!(
            line.contains(&format!(
                "--stack-depth {depth}: not a number of frames from 1 to 256; give e.g. \
                 --stack-depth 64 (the default is 128)"
            )),
            "{line}"
        );
    }
}

#[test]
fn a_timeline_goes_where_it_is_told_in_the_format_its_name_says() {
    let d = dir("usage");
    let capture = golden("v1.0/leak.msl").display().to_string();
    // no extension: SVG, or HTML with --html
    let o = memsleuth(&d, &["report", "timeline", &capture, "-o", "mem"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(d.join("mem"))
        .unwrap()
        .starts_with("<svg"));
    let o = memsleuth(
        &d,
        &["report", "timeline", &capture, "--html", "-o", "page"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(d.join("page"))
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    // a device: SVG, and a write that fails says so
    let o = memsleuth(&d, &["report", "timeline", &capture, "-o", "/dev/stdout"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("<svg"));
    let o = memsleuth(&d, &["report", "timeline", &capture, "-o", "/dev/full"]);
    assert_eq!(o.status.code(), Some(1));
    let line = one_line(&o);
    assert!(
        line.contains("cannot write /dev/full: No space left on device; choose another path"),
        "{line}"
    );
    // an extension that is no picture memsleuth draws: what was asked is wrong
    let o = memsleuth(&d, &["report", "timeline", &capture, "-o", "t.gif"]);
    assert_eq!(o.status.code(), Some(2));
    let line = one_line(&o);
    assert!(
        line.contains("-o t.gif: .gif is not a picture format memsleuth writes; name the output .svg, .png or .html"),
        "{line}"
    );
    // --help says what a name without an extension gets
    let help = stdout(&memsleuth(&d, &["report", "timeline", "--help"]));
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("a name without one (a device such as /dev/stdout) gets SVG"),
        "{help}"
    );
}

#[test]
fn a_time_past_the_end_of_a_damaged_capture_is_the_damage() {
    let d = dir("usage");
    let damaged = golden("hostile/truncated-mid-chunk.msl")
        .display()
        .to_string();
    let o = memsleuth(&d, &["report", "leaks", &damaged, "--at", "1000"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = one_line(&o);
    assert!(
        line.contains("it is damaged: capture is truncated at byte 137995"),
        "{line}"
    );
    // a sound capture: the time asked for is the mistake
    let sound = golden("v1.1/leak-run.msl").display().to_string();
    let o = memsleuth(&d, &["report", "leaks", &sound, "--at", "1000"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(one_line(&o).contains("is past the end of the capture"));
}

#[test]
fn a_capture_that_is_not_a_file_is_named_once() {
    let d = dir("usage");
    // watch writes to /dev/null and cannot read it back
    let o = memsleuth(
        &d,
        &[
            "watch",
            "-q",
            "-i",
            "20ms",
            "-o",
            "/dev/null",
            "--",
            "sleep",
            "0.3",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = one_line(&o);
    assert!(
        line.starts_with("memsleuth: error: /dev/null is not a regular file (a character device)"),
        "{line}"
    );
    assert_eq!(line.matches("/dev/null").count(), 1, "{line}");
}

/// A program that ends before its first sample leaves no capture: the file watch made is
/// removed, but never what `-o` named when that is not a file (as root, `-o /dev/null` would
/// have unlinked the system's /dev/null). Made with a device node of our own, as root.
#[cfg(unix)]
#[test]
fn a_watch_that_writes_no_capture_removes_only_a_file() {
    use std::os::unix::fs::FileTypeExt;
    let d = dir("usage");
    let null = d.join("null");
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mknod needs root");
        return;
    }
    let out = null.display().to_string();
    let o = memsleuth(&d, &["watch", "-q", "-i", "10s", "-o", &out, "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("before its first sample"),
        "{}",
        stderr(&o)
    );
    let kept = std::fs::symlink_metadata(&null).expect("the device is still there");
    assert!(kept.file_type().is_char_device());
    // a file of its own is removed as before
    let file = d.join("x.msl").display().to_string();
    let o = memsleuth(&d, &["watch", "-q", "-i", "10s", "-o", &file, "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!d.join("x.msl").exists());
}
