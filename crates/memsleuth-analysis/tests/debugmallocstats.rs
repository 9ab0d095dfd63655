//! The pymalloc statistics parser against real `sys._debugmallocstats()` output of CPython 3.9 to
//! 3.13 (fixtures/debugmallocstats.py wrote them), and against damaged text.

use memsleuth_analysis::pymalloc::{parse_debugmallocstats, StatsError};
use memsleuth_format::{Pymalloc, SizeClass};

const KIB: u64 = 1024;

fn fixture(version: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/debugmallocstats-{version}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(version: &str) -> Pymalloc {
    parse_debugmallocstats(&fixture(version)).unwrap_or_else(|e| panic!("{version}: {e}"))
}

fn class(p: &Pymalloc, size: u32) -> &SizeClass {
    p.classes
        .iter()
        .find(|c| c.size == size)
        .unwrap_or_else(|| panic!("no class of {size} bytes"))
}

#[test]
fn python_3_9_has_small_arenas_and_pools() {
    let p = parse("3.9");
    assert_eq!(p.arena_size, 256 * KIB);
    assert_eq!(p.pool_size, 4 * KIB);
    assert_eq!(p.arenas_allocated_total, 183);
    assert_eq!(p.arenas_reclaimed, 146);
    assert_eq!(p.arenas_highwater, 155);
    assert_eq!(p.arenas_now, 37);
    assert_eq!(p.bytes_in_use, 9_278_864);
    assert_eq!(p.bytes_free_blocks, 73_888);
    assert_eq!(p.unused_pools, 46);
    assert_eq!(p.bytes_pool_headers, 111_456);
    assert_eq!(p.bytes_quantization, 46_704);
    assert_eq!(p.bytes_arena_alignment, 0);
    assert_eq!(p.classes.len(), 32);
    assert_eq!(
        *class(&p, 64),
        SizeClass {
            size: 64,
            pools: 1673,
            blocks_in_use: 105_385,
            blocks_free: 14
        }
    );
    // the text holds none of these
    assert_eq!((p.t_ns, p.allocated_blocks, p.total_refcount), (0, 0, None));
}

#[test]
fn python_3_10_has_large_arenas_and_an_arena_map() {
    let p = parse("3.10");
    assert_eq!(p.arena_size, 1024 * KIB);
    assert_eq!(p.pool_size, 16 * KIB);
    assert_eq!(
        (
            p.arenas_allocated_total,
            p.arenas_reclaimed,
            p.arenas_highwater,
            p.arenas_now
        ),
        (45, 35, 39, 10)
    );
    assert_eq!(p.bytes_in_use, 9_345_424);
    assert_eq!(p.bytes_free_blocks, 293_680);
    assert_eq!(p.unused_pools, 39);
    assert_eq!(p.bytes_pool_headers, 28_368);
    assert_eq!(p.bytes_quantization, 15_472);
    assert_eq!(p.bytes_arena_alignment, 163_840);
    assert_eq!(p.classes.len(), 32);
    assert_eq!(
        *class(&p, 64),
        SizeClass {
            size: 64,
            pools: 416,
            blocks_in_use: 105_922,
            blocks_free: 158
        }
    );
}

#[test]
fn python_3_11() {
    let p = parse("3.11");
    assert_eq!((p.arena_size, p.pool_size), (1024 * KIB, 16 * KIB));
    assert_eq!(p.arenas_now, 12);
    assert_eq!(p.arenas_highwater, 41);
    assert_eq!(p.bytes_in_use, 11_471_680);
    assert_eq!(p.bytes_free_blocks, 331_280);
    assert_eq!(p.unused_pools, 35);
    assert_eq!(p.bytes_arena_alignment, 147_456);
    assert_eq!(p.classes.len(), 32);
    assert_eq!(
        *class(&p, 64),
        SizeClass {
            size: 64,
            pools: 442,
            blocks_in_use: 112_516,
            blocks_free: 194
        }
    );
    assert_eq!(
        *class(&p, 512),
        SizeClass {
            size: 512,
            pools: 2,
            blocks_in_use: 50,
            blocks_free: 12
        }
    );
}

#[test]
fn python_3_12_leaves_out_a_class_without_pools() {
    let p = parse("3.12");
    assert_eq!(p.arenas_now, 9);
    assert_eq!(p.bytes_in_use, 7_992_704);
    assert_eq!(p.bytes_free_blocks, 374_848);
    assert_eq!(p.unused_pools, 54);
    assert_eq!(p.bytes_quantization, 12_816);
    // class 22 (368 bytes) owned no pool, so CPython printed no row for it
    assert_eq!(p.classes.len(), 31);
    assert!(p.classes.iter().all(|c| c.size != 368));
    assert_eq!(
        *class(&p, 64),
        SizeClass {
            size: 64,
            pools: 209,
            blocks_in_use: 53_205,
            blocks_free: 90
        }
    );
}

#[test]
fn python_3_13() {
    let p = parse("3.13");
    assert_eq!((p.arena_size, p.pool_size), (1024 * KIB, 16 * KIB));
    assert_eq!(
        (
            p.arenas_allocated_total,
            p.arenas_reclaimed,
            p.arenas_highwater,
            p.arenas_now
        ),
        (44, 35, 39, 9)
    );
    assert_eq!(p.bytes_in_use, 8_548_112);
    assert_eq!(p.bytes_free_blocks, 275_136);
    assert_eq!(p.unused_pools, 33);
    assert_eq!(p.bytes_pool_headers, 25_968);
    assert_eq!(p.bytes_quantization, 14_528);
    assert_eq!(p.bytes_arena_alignment, 32_768);
    assert_eq!(p.classes.len(), 32);
    assert_eq!(
        *class(&p, 64),
        SizeClass {
            size: 64,
            pools: 217,
            blocks_in_use: 55_185,
            blocks_free: 150
        }
    );
}

#[test]
fn every_version_adds_up() {
    for v in ["3.9", "3.10", "3.11", "3.12", "3.13"] {
        let p = parse(v);
        let in_use: u64 = p
            .classes
            .iter()
            .map(|c| c.blocks_in_use * u64::from(c.size))
            .sum();
        assert_eq!(in_use, p.bytes_in_use, "{v}");
        let parts = p.bytes_in_use
            + p.bytes_free_blocks
            + p.unused_pools * p.pool_size
            + p.bytes_pool_headers
            + p.bytes_quantization
            + p.bytes_arena_alignment;
        assert_eq!(parts, p.arenas_now * p.arena_size, "{v}");
        assert!(p.classes.windows(2).all(|w| w[0].size < w[1].size), "{v}");
    }
}

#[test]
fn the_pymalloc_part_alone_parses_too() {
    // what `_PyObject_DebugMallocStats` writes: no free lists after the totals
    let full = fixture("3.11");
    let cut = full
        .find("\narena map counts")
        .map_or(full.as_str(), |i| &full[..=i]);
    assert_eq!(parse_debugmallocstats(cut), Ok(parse("3.11")));
}

#[test]
fn a_debug_build_line_is_skipped() {
    let text = fixture("3.12").replacen(
        "# arenas allocated total",
        "# times object malloc called       =            1,234,567\n# arenas allocated total",
        1,
    );
    assert_eq!(parse_debugmallocstats(&text), Ok(parse("3.12")));
}

#[test]
fn pymalloc_off_is_told_apart_from_garbage() {
    assert_eq!(parse_debugmallocstats(""), Err(StatsError::Empty));
    assert_eq!(parse_debugmallocstats("\n \n"), Err(StatsError::Empty));
    // sys._debugmallocstats() under PYTHONMALLOC=malloc: the free lists only
    let free_lists: String = fixture("3.11")
        .lines()
        .filter(|l| l.contains(" free "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!free_lists.is_empty());
    assert_eq!(
        parse_debugmallocstats(&free_lists),
        Err(StatsError::NotInUse)
    );
    assert_eq!(
        parse_debugmallocstats(&fixture("3.13-mimalloc")),
        Err(StatsError::Mimalloc)
    );
}

#[test]
fn garbage_is_a_clear_error() {
    let e = parse_debugmallocstats("hello world\nthis is not it\n").unwrap_err();
    assert!(matches!(e, StatsError::Malformed { line: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("Small block threshold"), "{e}");

    let e = parse_debugmallocstats(&fixture("3.10").replace("bytes/arena", "octets/arena"))
        .unwrap_err();
    assert!(e.to_string().contains("unknown line"), "{e}");

    let e = parse_debugmallocstats(&fixture("3.10").replace("9,345,424", "9,345;424")).unwrap_err();
    assert!(matches!(e, StatsError::Malformed { line: 44, .. }), "{e:?}");
    assert!(e.to_string().contains("`9,345;424` is not a number"), "{e}");

    let binary = String::from_utf8_lossy(&[0xff, 0x00, 0x13, 0x37, b'\n', 0x80]).into_owned();
    assert!(parse_debugmallocstats(&binary).is_err());
}

#[test]
fn a_misread_number_does_not_add_up() {
    let e = parse_debugmallocstats(&fixture("3.13").replace("8,548,112", "8,548,113")).unwrap_err();
    assert!(matches!(e, StatsError::Inconsistent(_)), "{e:?}");
    let e = parse_debugmallocstats(&fixture("3.13").replacen(
        "   64         217           55185",
        "   64         217           55186",
        1,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("do not add up"), "{e}");
}

#[test]
fn truncated_text_says_where_it_ends() {
    let full = fixture("3.9");
    // cut at every byte of the pymalloc part: an error or, once Total is read, the same result
    let end = full.find("\nTotal").expect("a Total line") + 1;
    let whole = parse("3.9");
    for cut in 0..end {
        if !full.is_char_boundary(cut) {
            continue;
        }
        match parse_debugmallocstats(&full[..cut]) {
            Ok(p) => panic!("cut at {cut} parsed as {p:?}"),
            Err(StatsError::Empty) if full[..cut].trim().is_empty() => {}
            Err(StatsError::Truncated { .. } | StatsError::Malformed { .. }) => {}
            Err(StatsError::Inconsistent(_)) => {}
            Err(e) => panic!("cut at {cut}: {e:?}"),
        }
    }
    let total_line_end = end + full[end..].find('\n').unwrap_or(0);
    assert_eq!(parse_debugmallocstats(&full[..total_line_end]), Ok(whole));

    let cut = &full[..full.find("# bytes in available").expect("line")];
    let e = parse_debugmallocstats(cut).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the allocator statistics end early, at line {}: no `# bytes in available blocks` \
             line",
            cut.lines().count()
        )
    );
    let mid_row = &full[..full.find("   3     64        16").expect("row") + 20];
    let e = parse_debugmallocstats(mid_row).unwrap_err();
    assert!(matches!(e, StatsError::Truncated { line: 8, .. }), "{e:?}");
}
