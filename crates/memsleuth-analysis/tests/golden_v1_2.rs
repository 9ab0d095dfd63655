//! The 1.2 golden from a real run, read by the analyses: the growth of a module-level cache,
//! where its instances were allocated, and who holds the leaking line's blocks.
//!
//! `memsleuth run --no-report --census 0.2 -o objects-run.msl tests/programs/objects_app.py
//! cache 0.5` on CPython 3.11.7 (the cache line is objects_app.py:31).

use std::path::PathBuf;

use memsleuth_analysis::growth::{GrowthOptions, GrowthReport};
use memsleuth_analysis::heap::RootKind;
use memsleuth_analysis::{LeakOptions, LeakReport};

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/v1.2/objects-run.msl")
}

#[test]
fn the_cached_type_grows_from_its_line_and_is_held_by_the_module() {
    let r = GrowthReport::from_path(&golden(), &GrowthOptions::default()).expect("growth");
    assert_eq!(r.censuses.len(), 3);
    let session = r
        .types
        .iter()
        .find(|t| t.name == "__main__.Session")
        .expect("Session row");
    assert!(session.growing);
    assert_eq!(session.to_count, 5000);
    let site = &session.sites[0].location;
    assert!(site.file.ends_with("objects_app.py"), "{site:?}");
    assert_eq!(site.line, 31);
    let held = &session.holders[0];
    assert_eq!(held.root_kind, RootKind::Module);
    assert!(held.root.starts_with("module __main__"), "{}", held.root);
    let edges: Vec<&str> = held.steps.iter().map(|s| s.edge.as_str()).collect();
    assert_eq!(edges[1], ".CACHE");
    assert_eq!(
        held.steps.last().map(|s| s.type_name.as_str()),
        Some("__main__.Session")
    );
}

#[test]
fn the_leaking_line_names_its_holder() {
    let r = LeakReport::from_path(&golden(), &LeakOptions::default()).expect("leaks");
    let cache_line = r
        .leaks
        .sites
        .iter()
        .position(|s| s.location.file.ends_with("objects_app.py") && s.location.line == 31)
        .expect("the cache line is a leak site");
    let held: Vec<_> = r.holders.iter().filter(|h| h.site == cache_line).collect();
    assert!(!held.is_empty(), "{:?}", r.holders);
    for h in held {
        assert!(h.path.root.starts_with("module __main__"));
        assert!(h.path.steps.iter().any(|s| s.edge == ".CACHE"));
    }
}
