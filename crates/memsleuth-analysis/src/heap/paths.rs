//! Chains of referrers from an object back to what keeps it alive.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::graph::Referrers;

/// Shortest chain of referrers from `target` back to a node for which `is_root` is true
/// (breadth-first over referrers, at most `max_nodes` nodes visited, `target` included).
/// Returns node ids from the root to the target, both included; `[target]` when the target is
/// itself a root. `None` when no root is within reach.
pub fn path_to_root(
    r: &Referrers,
    target: u32,
    is_root: impl Fn(u32) -> bool,
    max_nodes: usize,
) -> Option<Vec<u32>> {
    nearest(r, target, is_root, max_nodes)
}

/// The nearest node satisfying `pred` among those that (transitively) refer to `target`, and
/// the chain from it to the target: the fallback when no true root is in reach, e.g. the
/// nearest object held from C. Same search and result as [`path_to_root`].
pub fn nearest(
    r: &Referrers,
    target: u32,
    pred: impl Fn(u32) -> bool,
    max_nodes: usize,
) -> Option<Vec<u32>> {
    if max_nodes == 0 || target as usize >= r.len() {
        return None;
    }
    if pred(target) {
        return Some(vec![target]);
    }
    // visited node -> the node one step closer to the target; a map rather than a per-node
    // array because searches are bounded and may run once per suspect over a huge graph
    let mut toward: FxHashMap<u32, u32> = FxHashMap::default();
    toward.insert(target, target);
    let mut queue = VecDeque::from([target]);
    while let Some(v) = queue.pop_front() {
        for &p in r.of(v) {
            if toward.contains_key(&p) {
                continue;
            }
            if toward.len() >= max_nodes {
                return None;
            }
            toward.insert(p, v);
            // checked on discovery: breadth-first discovers nodes in order of distance
            if pred(p) {
                return Some(chain(&toward, p, target));
            }
            queue.push_back(p);
        }
    }
    None
}

fn chain(toward: &FxHashMap<u32, u32>, from: u32, target: u32) -> Vec<u32> {
    let mut path = vec![from];
    let mut v = from;
    while v != target {
        v = toward[&v];
        path.push(v);
    }
    path
}
