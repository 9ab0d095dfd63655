//! The thread priority helper, read back from /proc.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)] // test: a failed unwrap is a failed test

/// The nice value of a thread of this process: field 19 of its stat line, counted after the
/// command name in parentheses (which may hold spaces).
fn nice_of(tid: i64) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(16).unwrap().parse().unwrap()
}

fn this_tid() -> i64 {
    // SAFETY: gettid has no preconditions
    unsafe { libc::syscall(libc::SYS_gettid) }
}

#[test]
fn the_lowest_priority_is_for_the_calling_thread_alone() {
    let main = this_tid();
    let before = nice_of(main);
    let (tid, nice) = std::thread::spawn(|| {
        assert!(memsleuth_platform::lowest_priority_for_this_thread());
        let tid = this_tid();
        (tid, nice_of(tid))
    })
    .join()
    .unwrap();
    assert_ne!(tid, main);
    assert_eq!(nice, 19);
    assert_eq!(nice_of(main), before);
}
