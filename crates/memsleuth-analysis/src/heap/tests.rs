use proptest::prelude::*;

use super::*;

/// A graph from an edge list; every node of type 0 and size 1 unless `sizes`/`types` say.
fn graph(n: usize, edges: &[(u32, u32)], sizes: &[u64], types: &[u32]) -> HeapGraph {
    let mut b = GraphBuilder::new();
    let t0 = b.intern_type("t0");
    for _ in 1..types.iter().copied().max().unwrap_or(0) + 1 {
        b.add_type("t");
    }
    for v in 0..n {
        let t = types.get(v).copied().unwrap_or(t0);
        b.add_node(t, sizes.get(v).copied().unwrap_or(1));
    }
    let mut sorted = edges.to_vec();
    // the builder wants referents grouped by node, in node order; keep each node's own order
    sorted.sort_by_key(|&(from, _)| from);
    let mut begun = None;
    for (from, to) in sorted {
        if begun != Some(from) {
            b.begin(from);
            begun = Some(from);
        }
        b.edge(to);
    }
    b.finish()
}

const S: u32 = SUPER_ROOT;

#[test]
fn builder_closes_the_csr_and_skipped_nodes_have_no_referents() {
    let mut b = GraphBuilder::with_capacity(4, 4);
    let dict = b.intern_type("dict");
    let list = b.intern_type("list");
    assert_eq!(b.intern_type("dict"), dict);
    let other_dict = b.add_type("dict");
    assert_ne!(other_dict, dict);
    let a = b.add_node(dict, 64);
    let c = b.add_node(list, 56);
    b.begin(a);
    b.edge(c);
    let d = b.add_node(other_dict, 10);
    b.edge(d);
    // c is skipped: begun never
    let e = b.add_node(list, 0);
    b.begin(d);
    b.edge(a);
    b.set_size(e, 99);
    b.begin(e);
    let g = b.finish();
    assert_eq!(g.len(), 4);
    assert!(!g.is_empty());
    assert_eq!(g.edge_start, vec![0, 2, 2, 3, 3]);
    assert_eq!(g.referents(a), &[c, d]);
    assert_eq!(g.referents(c), &[] as &[u32]);
    assert_eq!(g.referents(d), &[a]);
    assert_eq!(g.referents(e), &[] as &[u32]);
    assert_eq!(g.node_size, vec![64, 56, 10, 99]);
    assert_eq!(g.type_name(d), "dict");
    assert_eq!(g.type_names, vec!["dict", "list", "dict"]);

    let r = referrers(&g);
    assert_eq!(r.of(a), &[d]);
    assert_eq!(r.of(c), &[a]);
    assert_eq!(r.of(d), &[a]);
    assert_eq!(r.count(e), 0);
    assert_eq!(r.count(a), 1);
}

#[test]
fn builder_with_trailing_nodes_never_begun() {
    let mut b = GraphBuilder::new();
    let t = b.intern_type("object");
    for _ in 0..3 {
        b.add_node(t, 16);
    }
    let g = b.finish();
    assert_eq!(g.edge_start, vec![0, 0, 0, 0]);
    assert!(GraphBuilder::new().finish().is_empty());
}

#[test]
#[should_panic(expected = "increasing id order")]
fn builder_rejects_nodes_begun_twice() {
    let mut b = GraphBuilder::new();
    let t = b.intern_type("object");
    b.add_node(t, 16);
    b.add_node(t, 16);
    b.begin(1);
    b.begin(1);
}

#[test]
fn referrers_list_duplicates_and_self_loops() {
    let g = graph(3, &[(0, 1), (0, 1), (1, 1), (2, 0)], &[], &[]);
    let r = referrers(&g);
    assert_eq!(r.of(1), &[0, 0, 1]);
    assert_eq!(r.of(0), &[2]);
    assert_eq!(r.count(2), 0);
    assert_eq!(r.len(), 3);
}

#[test]
fn diamond() {
    // 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 4
    let g = graph(
        5,
        &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)],
        &[1, 10, 100, 1000, 10000],
        &[],
    );
    let d = dominators(&g, &[0]);
    assert_eq!(d.idom, vec![S, 0, 0, 0, 3]);
    assert_eq!(d.retained, vec![11111, 10, 100, 11000, 10000]);
    assert_eq!(d.unrooted, vec![false; 5]);
    assert_eq!(d.chain(4), vec![0, 3, 4]);
}

#[test]
fn cycle_through_the_root() {
    // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 1
    let g = graph(4, &[(0, 1), (1, 2), (2, 0), (2, 3), (3, 1)], &[], &[]);
    let d = dominators(&g, &[0]);
    assert_eq!(d.idom, vec![S, 0, 1, 2]);
    assert_eq!(d.retained, vec![4, 3, 2, 1]);
}

#[test]
fn chain() {
    let edges: Vec<(u32, u32)> = (0..9).map(|v| (v, v + 1)).collect();
    let g = graph(10, &edges, &[], &[]);
    let d = dominators(&g, &[0]);
    let mut want = vec![S];
    want.extend(0..9);
    assert_eq!(d.idom, want);
    assert_eq!(d.retained, (1..=10).rev().collect::<Vec<u64>>());
}

#[test]
fn a_root_reached_from_another_root_is_dominated_by_the_super_root_only() {
    // roots 0 and 2; 0 -> 1 -> 2 -> 3
    let g = graph(4, &[(0, 1), (1, 2), (2, 3)], &[], &[]);
    let d = dominators(&g, &[0, 2]);
    assert_eq!(d.idom, vec![S, 0, S, 2]);
    assert_eq!(d.retained, vec![2, 1, 2, 1]);
}

#[test]
fn unrooted_cycles_are_attached_in_id_order() {
    // root 0 -> 1; unrooted: 2 <-> 3, 3 -> 4, 5 -> 3, 6 -> 6
    let g = graph(
        7,
        &[(0, 1), (2, 3), (3, 2), (3, 4), (5, 3), (6, 6)],
        &[1, 2, 4, 8, 16, 32, 64],
        &[],
    );
    let d = dominators(&g, &[0]);
    // 2 is attached first and reaches 3 and 4; 5 is still unreached, so it is attached too and
    // its edge to 3 leaves 3 with two ways in from the super-root
    assert_eq!(d.idom, vec![S, 0, S, S, 3, S, S]);
    assert_eq!(d.unrooted, vec![false, false, true, true, true, true, true]);
    assert_eq!(d.retained, vec![3, 2, 4, 24, 16, 32, 64]);

    let none = dominators(&g, &[]);
    assert_eq!(none.idom[1], 0);
    assert!(none.unrooted.iter().all(|&u| u));
    // roots out of range are ignored
    let odd = dominators(&g, &[0, 99]);
    assert_eq!(odd.idom, d.idom);
}

#[test]
fn order_puts_every_node_after_its_dominator() {
    let g = graph(
        6,
        &[(0, 1), (1, 2), (2, 1), (3, 4), (4, 5), (5, 3)],
        &[],
        &[],
    );
    let d = dominators(&g, &[0]);
    let mut seen = [false; 6];
    for &v in &d.order {
        let i = d.idom[v as usize];
        assert!(i == S || seen[i as usize], "{v} before its dominator {i}");
        seen[v as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
    assert_eq!(d.top_level(1), vec![0]);
}

#[test]
fn retained_by_type_counts_nested_instances_once() {
    // types: 0 = Root, 1 = Node, 2 = Leaf, 3 = never instantiated
    // 0:Root -> 1:Node -> 2:Node -> 3:Leaf ; 0 -> 4:Leaf ; 5:Node (unrooted) -> 4
    let g = graph(
        6,
        &[(0, 1), (1, 2), (2, 3), (0, 4), (5, 4)],
        &[1, 10, 100, 1000, 10000, 100000],
        &[0, 1, 1, 2, 2, 1],
    );
    let d = dominators(&g, &[0]);
    // 4 is reached both from the root and from the unrooted 5, so only the super-root holds it
    assert_eq!(d.idom, vec![S, 0, 1, 2, S, S]);
    let got = retained_by_type(&g, &d, &[1, 2, 0, 3, 1]);
    assert_eq!(got, vec![1110 + 100000, 11000, 1111, 0, 1110 + 100000]);

    let mut rows = census_by_type(&g);
    assert_eq!(
        rows.iter()
            .map(|r| (r.type_id, r.count, r.bytes))
            .collect::<Vec<_>>(),
        vec![(1, 3, 100110), (2, 2, 11000), (0, 1, 1)]
    );
    fill_retained(&g, &d, &mut rows);
    assert_eq!(
        rows.iter().map(|r| r.retained).collect::<Vec<_>>(),
        vec![Some(101110), Some(11000), Some(1111)]
    );
}

#[test]
fn retained_by_type_handles_more_than_64_types() {
    let n = 70usize;
    let edges: Vec<(u32, u32)> = (0..n as u32 - 1).map(|v| (v, v + 1)).collect();
    let types: Vec<u32> = (0..n as u32).collect();
    let g = graph(n, &edges, &[], &types);
    let d = dominators(&g, &[0]);
    let got = retained_by_type(&g, &d, &types);
    let want: Vec<u64> = (1..=n as u64).rev().collect();
    assert_eq!(got, want);
}

#[test]
fn path_to_root_takes_the_shortest_way() {
    // roots: 0 and 5. 0 -> 1 -> 2 -> 3 -> 9 (long), 5 -> 6 -> 9 (short), 7 -> 9 (no root)
    let g = graph(
        10,
        &[(0, 1), (1, 2), (2, 3), (3, 9), (5, 6), (6, 9), (7, 9)],
        &[],
        &[],
    );
    let r = referrers(&g);
    let roots = [0u32, 5];
    let is_root = |v: u32| roots.contains(&v);
    assert_eq!(path_to_root(&r, 9, is_root, 100), Some(vec![5, 6, 9]));
    assert_eq!(path_to_root(&r, 2, is_root, 100), Some(vec![0, 1, 2]));
    assert_eq!(path_to_root(&r, 5, is_root, 100), Some(vec![5]));
    // 7 has no referrer, 8 is isolated
    assert_eq!(path_to_root(&r, 7, is_root, 100), None);
    assert_eq!(path_to_root(&r, 8, is_root, 100), None);
    assert_eq!(path_to_root(&r, 99, is_root, 100), None);
    // nearest, with another property: the nearest referrer of 9 that is above node 2
    assert_eq!(nearest(&r, 9, |v| v > 2 && v != 9, 100), Some(vec![3, 9]));
}

#[test]
fn path_to_root_visits_at_most_max_nodes() {
    // 0 -> 1 -> 2 -> 3 -> 4: reaching the root from 4 visits all five
    let edges: Vec<(u32, u32)> = (0..4).map(|v| (v, v + 1)).collect();
    let g = graph(5, &edges, &[], &[]);
    let r = referrers(&g);
    assert_eq!(path_to_root(&r, 4, |v| v == 0, 4), None);
    assert_eq!(
        path_to_root(&r, 4, |v| v == 0, 5),
        Some(vec![0, 1, 2, 3, 4])
    );
    assert_eq!(path_to_root(&r, 4, |v| v == 4, 0), None);
    assert_eq!(path_to_root(&r, 4, |v| v == 4, 1), Some(vec![4]));

    // fan-in: many referrers at distance one eat the budget before the root at distance two
    let mut edges: Vec<(u32, u32)> = (1..=10).map(|v| (v, 0)).collect();
    edges.push((11, 10));
    let g = graph(12, &edges, &[], &[]);
    let r = referrers(&g);
    assert_eq!(path_to_root(&r, 0, |v| v == 11, 11), None);
    assert_eq!(path_to_root(&r, 0, |v| v == 11, 12), Some(vec![11, 10, 0]));
}

/// A small deterministic generator, so big random graphs need no extra crate.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }
}

fn long_chain(n: u32) -> HeapGraph {
    let mut b = GraphBuilder::with_capacity(n as usize, n as usize);
    let t = b.intern_type("node");
    for _ in 0..n {
        b.add_node(t, 1);
    }
    for v in 0..n - 1 {
        b.begin(v);
        b.edge(v + 1);
    }
    b.finish()
}

/// A random graph: each node refers to about `mean_degree` uniformly chosen nodes (so most of
/// the graph is one big tangle of cycles), and one node in four to the next one (runs of list
/// links).
fn random_heap(n: u32, mean_degree: u32, seed: u64) -> HeapGraph {
    let mut rng = SplitMix(seed);
    let mut b = GraphBuilder::with_capacity(n as usize, (n * (mean_degree + 1)) as usize);
    let types: Vec<u32> = (0..8).map(|i| b.intern_type(&format!("t{i}"))).collect();
    for _ in 0..n {
        let t = types[rng.below(8) as usize];
        b.add_node(t, 16 + u64::from(rng.below(200)));
    }
    for v in 0..n {
        b.begin(v);
        for _ in 0..rng.below(2 * mean_degree + 1) {
            b.edge(rng.below(n));
        }
        if v + 1 < n && rng.below(4) == 0 {
            b.edge(v + 1);
        }
    }
    b.finish()
}

#[test]
fn two_million_long_chain_needs_no_stack() {
    let n = 2_000_000;
    let g = long_chain(n);
    let d = dominators(&g, &[0]);
    assert_eq!(d.retained[0], u64::from(n));
    assert_eq!(d.idom[n as usize - 1], n - 2);
    assert_eq!(d.retained[n as usize - 1], 1);
    let r = referrers(&g);
    let path = path_to_root(&r, n - 1, |v| v == 0, usize::MAX).expect("reachable");
    assert_eq!(path.len(), n as usize);
    assert_eq!(path.first(), Some(&0));
    // no root: the whole chain hangs off its first node
    let d = dominators(&g, &[]);
    assert_eq!(d.idom[0], S);
    assert_eq!(d.retained[0], u64::from(n));
    assert!(d.unrooted.iter().all(|&u| u));
    let got = retained_by_type(&g, &d, &[0]);
    assert_eq!(got, vec![u64::from(n)]);
}

#[test]
fn a_million_random_nodes_without_overflow() {
    let g = random_heap(1_000_000, 2, 7);
    let roots: Vec<u32> = (0..100).map(|i| i * 9_973).collect();
    let d = dominators(&g, &roots);
    check_tree(&g, &d);
}

/// Invariants a dominator tree of any graph satisfies: each node's dominator is earlier in
/// `order`, retained sizes add up, and every edge `u -> v` has `idom(v)` dominating `u`
/// (otherwise `u` would be a way around it).
fn check_tree(g: &HeapGraph, d: &Dominators) {
    let n = g.len();
    let mut pos = vec![u32::MAX; n];
    for (i, &v) in d.order.iter().enumerate() {
        pos[v as usize] = i as u32;
    }
    assert!(pos.iter().all(|&p| p != u32::MAX));
    let mut top = 0u64;
    for v in 0..n {
        let i = d.idom[v];
        if i == S {
            top += d.retained[v];
        } else {
            assert!(pos[i as usize] < pos[v]);
        }
    }
    assert_eq!(top, g.total_size());
    // every referrer of v is dominated by idom(v) (or is v's own dominator chain)
    let dominates = |a: u32, mut b: u32| loop {
        if a == b {
            return true;
        }
        if b == S {
            return a == S;
        }
        b = d.idom[b as usize];
    };
    for u in (0..n as u32).step_by(97) {
        for &v in g.referents(u) {
            let i = d.idom[v as usize];
            if v != u && i != S {
                assert!(dominates(i, u), "edge {u} -> {v} bypasses idom {i}");
            }
        }
    }
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture heap"]
fn heap_timings() {
    use std::time::Instant;
    let g = random_heap(1_000_000, 2, 7);
    let roots: Vec<u32> = (0..100).map(|i| i * 9_973).collect();
    let t = Instant::now();
    let r = referrers(&g);
    let t_ref = t.elapsed();
    let t = Instant::now();
    let d = dominators_with(&g, &r, &roots);
    let t_dom = t.elapsed();
    let t = Instant::now();
    let by_type = retained_by_type(&g, &d, &[0, 1, 2, 3, 4, 5, 6, 7]);
    let t_types = t.elapsed();
    eprintln!(
        "random heap: {} nodes, {} edges; referrers {:?}, dominators {:?}, retained_by_type(8) {:?}; {} unrooted; {:?}",
        g.len(),
        g.edge_count(),
        t_ref,
        t_dom,
        t_types,
        d.unrooted.iter().filter(|&&u| u).count(),
        by_type
    );
    let g = long_chain(2_000_000);
    let t = Instant::now();
    let d = dominators(&g, &[0]);
    eprintln!(
        "chain: {} nodes; dominators (referrers included) {:?}; retained[0] = {}",
        g.len(),
        t.elapsed(),
        d.retained[0]
    );
}

// --- against the definition -------------------------------------------------------------------

/// Dominators by definition: `d` dominates `v` when removing `d` leaves `v` unreachable from the
/// super-root, whose edges go to the roots, then to each node still unreached in id order.
fn naive(g: &HeapGraph, roots: &[u32]) -> (Vec<u32>, Vec<u64>, Vec<bool>, Vec<Vec<bool>>) {
    let n = g.len();
    let reach = |starts: &[u32], removed: Option<u32>, seen: &mut Vec<bool>| {
        let mut stack: Vec<u32> = starts
            .iter()
            .copied()
            .filter(|&s| Some(s) != removed && (s as usize) < n)
            .collect();
        while let Some(v) = stack.pop() {
            if seen[v as usize] {
                continue;
            }
            seen[v as usize] = true;
            for &w in g.referents(v) {
                if Some(w) != removed && !seen[w as usize] {
                    stack.push(w);
                }
            }
        }
    };
    let mut seen = vec![false; n];
    reach(roots, None, &mut seen);
    let unrooted: Vec<bool> = seen.iter().map(|&s| !s).collect();
    let mut starts: Vec<u32> = roots.to_vec();
    for v in 0..n as u32 {
        if !seen[v as usize] {
            starts.push(v);
            reach(&[v], None, &mut seen);
        }
    }
    // dom[d][v]: d dominates v (reflexive)
    let mut dom = vec![vec![false; n]; n];
    for d in 0..n as u32 {
        let mut seen = vec![false; n];
        reach(&starts, Some(d), &mut seen);
        for v in 0..n {
            dom[d as usize][v] = !seen[v];
        }
    }
    let mut idom = vec![S; n];
    for v in 0..n {
        // the strict dominator every other strict dominator dominates
        let strict: Vec<usize> = (0..n).filter(|&d| d != v && dom[d][v]).collect();
        for &d in &strict {
            if strict.iter().all(|&e| dom[e][d]) {
                idom[v] = d as u32;
            }
        }
    }
    let retained = (0..n)
        .map(|d| (0..n).filter(|&v| dom[d][v]).map(|v| g.node_size[v]).sum())
        .collect();
    (idom, retained, unrooted, dom)
}

fn arb_graph() -> impl Strategy<Value = (HeapGraph, Vec<u32>)> {
    (1usize..24).prop_flat_map(|n| {
        let nn = n as u32;
        (
            proptest::collection::vec((0..nn, 0..nn), 0..n * 3),
            proptest::collection::vec(1u64..1000, n),
            proptest::collection::vec(0u32..4, n),
            proptest::collection::vec(0..nn + 2, 0..4),
        )
            .prop_map(move |(edges, sizes, types, roots)| (graph(n, &edges, &sizes, &types), roots))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn agrees_with_the_definition((g, roots) in arb_graph()) {
        let d = dominators(&g, &roots);
        let (idom, retained, unrooted, dom) = naive(&g, &roots);
        prop_assert_eq!(&d.idom, &idom);
        prop_assert_eq!(&d.retained, &retained);
        prop_assert_eq!(&d.unrooted, &unrooted);
        check_tree(&g, &d);

        let types = [0u32, 1, 2, 3, 9];
        let got = retained_by_type(&g, &d, &types);
        let n = g.len();
        for (i, &t) in types.iter().enumerate() {
            let want: u64 = (0..n)
                .filter(|&v| (0..n).any(|a| dom[a][v] && g.node_type[a] == t))
                .map(|v| g.node_size[v])
                .sum();
            prop_assert_eq!(got[i], want, "type {}", t);
        }
    }

    #[test]
    fn shortest_paths_are_shortest((g, roots) in arb_graph(), target in 0u32..24) {
        let n = g.len() as u32;
        let target = target % n;
        let r = referrers(&g);
        let is_root = |v: u32| roots.contains(&v);
        // distances to target along edges, by plain relaxation
        let mut dist = vec![u32::MAX; n as usize];
        dist[target as usize] = 0;
        for _ in 0..n {
            for u in 0..n {
                for &v in g.referents(u) {
                    if dist[v as usize] != u32::MAX {
                        dist[u as usize] = dist[u as usize].min(dist[v as usize] + 1);
                    }
                }
            }
        }
        let best = (0..n).filter(|&v| is_root(v)).map(|v| dist[v as usize]).min().unwrap_or(u32::MAX);
        match path_to_root(&r, target, is_root, usize::MAX) {
            None => prop_assert_eq!(best, u32::MAX),
            Some(path) => {
                prop_assert_eq!(path.len() as u32, best + 1);
                prop_assert!(is_root(path[0]));
                prop_assert_eq!(*path.last().expect("non-empty"), target);
                for w in path.windows(2) {
                    prop_assert!(g.referents(w[0]).contains(&w[1]));
                }
            }
        }
    }
}
