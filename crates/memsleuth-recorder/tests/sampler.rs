#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use memsleuth_format::{Capture, EndReason, ExitStatus, Header, Record};
use memsleuth_recorder::{BackgroundSampler, RssConfig, RssSampler};

#[test]
fn background_sampler_writes_a_complete_capture_with_marks() {
    let cfg = RssConfig::new(std::process::id(), Duration::from_millis(10));
    let path = std::env::temp_dir().join(format!("msl-bg-{}.msl", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let sampler = RssSampler::new(file, Header::default(), cfg).unwrap();
    let mut bg = BackgroundSampler::spawn(sampler, cfg.interval).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    bg.mark("half");
    std::thread::sleep(Duration::from_millis(120));
    let stopped = bg.stop().unwrap();
    assert!(!stopped.root_gone);
    assert!(
        stopped.samples >= 10,
        "{} samples in 240 ms at 10 ms",
        stopped.samples
    );

    let cap = memsleuth_format::read_capture(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(cap.header.pid, std::process::id());
    assert_eq!(cap.header.instruments, vec!["rss"]);
    let trailer = cap.trailer.unwrap();
    assert_eq!(trailer.reason, EndReason::Stopped);
    assert_eq!(trailer.samples, stopped.samples);
    let marks: Vec<_> = cap
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Mark(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].label, "half");
    assert!(marks[0].t_ns > 100_000_000);
    let rss: Vec<u64> = cap
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => s.readings[0].rss,
            _ => None,
        })
        .collect();
    assert!(rss.iter().all(|&v| v > 1 << 20));
}

#[test]
fn follows_children_and_records_their_exit() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "sleep 0.3 & sleep 0.3; wait"])
        .spawn()
        .unwrap();
    let cfg = RssConfig::new(child.id(), Duration::from_millis(20));
    let mut s = RssSampler::new(Vec::new(), Header::default(), cfg).unwrap();
    let mut max_procs = 0;
    loop {
        let tick = s.tick().unwrap();
        max_procs = max_procs.max(tick.processes);
        if let Some(status) = child.try_wait().unwrap() {
            s.root_exited(ExitStatus::Code(status.code().unwrap()));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait().unwrap();
    assert!(max_procs >= 3, "sh and two sleeps, saw {max_procs}");
    let bytes = s
        .finish(EndReason::TargetExited, ExitStatus::Code(0))
        .unwrap();
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    let procs = cap
        .records
        .iter()
        .filter(|r| matches!(r, Record::Process(_)))
        .count();
    let exits = cap
        .records
        .iter()
        .filter(|r| matches!(r, Record::ProcessExit(_)))
        .count();
    assert!(procs >= 3);
    assert!(exits >= 1);
}

#[test]
fn missing_root_is_a_clear_error() {
    let cfg = RssConfig::new(u32::MAX - 1, Duration::from_millis(20));
    let err = RssSampler::new(Vec::new(), Header::default(), cfg).unwrap_err();
    assert!(err.to_string().contains("no process with PID"), "{err}");
}

#[test]
fn samples_carry_descriptor_and_thread_counts() {
    let cfg = RssConfig::new(std::process::id(), Duration::from_millis(10));
    let mut s = RssSampler::new(Vec::new(), Header::default(), cfg).unwrap();
    s.tick().unwrap();
    let files: Vec<std::fs::File> = (0..128)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    s.tick().unwrap();
    drop(files);
    let bytes = s.finish(EndReason::Stopped, ExitStatus::Unknown).unwrap();
    let cap = Capture::from_reader(&bytes[..]).unwrap();
    let readings: Vec<_> = cap
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(s) => Some(s.readings[0]),
            _ => None,
        })
        .collect();
    assert_eq!(readings.len(), 2);
    let (before, after) = (readings[0], readings[1]);
    assert!(
        before.threads.is_some_and(|n| n >= 1),
        "{before:?} has no threads"
    );
    // other tests of this binary open files too, on other threads: leave them room
    let (fds0, fds1) = (before.fds.unwrap(), after.fds.unwrap());
    assert!(fds1 >= fds0 + 100, "{fds0} -> {fds1} fds");
}
