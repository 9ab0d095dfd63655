//! Descriptor and thread series in the timeline: from the 1.3 golden (a server whose open files
//! and threads climb, with a worker of another user's), and absent from captures older than 1.3.

use std::path::PathBuf;

use memsleuth_analysis::Timeline;
use memsleuth_format::read_capture;

fn timeline(golden: &str) -> Timeline {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(golden);
    Timeline::from_capture(&read_capture(&path).expect("golden reads"))
}

#[test]
fn the_root_has_descriptor_and_thread_series() {
    let tl = timeline("v1.3/fds-threads.msl");
    let root = tl.root().expect("a root process");
    assert_eq!(root.pid, 5000);
    assert_eq!(
        root.series("fds"),
        [
            (0, 7),
            (100_000_000, 107),
            (200_000_000, 207),
            (300_000_000, 307),
            (400_000_000, 407)
        ]
    );
    assert_eq!(
        root.series("threads"),
        [
            (0, 1),
            (100_000_000, 11),
            (200_000_000, 21),
            (300_000_000, 31),
            (400_000_000, 41)
        ]
    );
    assert_eq!(root.series("rss")[4], (400_000_000, 44 << 20));
    assert!(root.series("no such metric").is_empty());
}

#[test]
fn a_process_whose_descriptors_are_unreadable_has_threads_only() {
    let tl = timeline("v1.3/fds-threads.msl");
    let worker = tl.processes.iter().find(|p| p.pid == 5001).expect("worker");
    assert!(!worker.root);
    assert!(worker.series("fds").is_empty());
    assert_eq!(
        worker.series("threads"),
        [(0, 2), (100_000_000, 2), (200_000_000, 2)]
    );
    // the tree's totals add what could be read
    let totals: Vec<(u64, u64)> = tl
        .total
        .iter()
        .map(|p| (p.get("fds"), p.get("threads")))
        .collect();
    assert_eq!(totals, [(7, 3), (107, 13), (207, 23), (307, 31), (407, 41)]);
}

#[test]
fn captures_before_1_3_have_no_descriptor_or_thread_series() {
    for golden in ["v1.0/leak.msl", "v1.1/leak-run.msl"] {
        let tl = timeline(golden);
        let root = tl.root().expect("a root process");
        assert!(!root.series("rss").is_empty(), "{golden}");
        assert!(root.series("fds").is_empty(), "{golden}");
        assert!(root.series("threads").is_empty(), "{golden}");
        assert!(root
            .points
            .iter()
            .all(|p| p.fds.is_none() && p.threads.is_none()));
    }
}
