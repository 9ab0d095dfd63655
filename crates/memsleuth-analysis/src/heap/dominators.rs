//! Dominator tree and retained sizes (Lengauer–Tarjan, iterative).
//!
//! Object `d` dominates `v` when every chain of references from a root to `v` passes through
//! `d`: freeing `d` would free `v`, so `v`'s bytes count towards what `d` retains. Heaps with
//! million-long linked lists are common, so nothing here recurses: the depth-first search keeps
//! its position in per-node edge cursors and walks back up through parent links, and path
//! compression uses an explicit stack.

use super::graph::{referrers, HeapGraph, Referrers};

/// The `idom` of a node that only the virtual super-root dominates.
pub const SUPER_ROOT: u32 = u32::MAX;

/// Marks an unset slot in the working arrays (a preorder number never reaches it: node ids stop
/// below `u32::MAX`, so preorder numbers, with the super-root at 0, stop at `u32::MAX - 1`).
const NONE: u32 = u32::MAX;

/// The dominator tree of a [`HeapGraph`] under a virtual super-root.
#[derive(Debug, Clone, Default)]
pub struct Dominators {
    /// Immediate dominator of each node; [`SUPER_ROOT`] when only the super-root dominates it.
    pub idom: Vec<u32>,
    /// Bytes each node retains: the shallow sizes of its dominator subtree, itself included.
    pub retained: Vec<u64>,
    /// True for the nodes no root reaches (attached to the super-root so they still get a
    /// dominator and a retained size).
    pub unrooted: Vec<bool>,
    /// Every node, each after its immediate dominator (the depth-first preorder the tree was
    /// computed in), so a pass over `order` can propagate anything down the tree.
    pub order: Vec<u32>,
}

impl Dominators {
    /// The dominators of `n` from the outermost (a child of the super-root) to `n` itself.
    pub fn chain(&self, n: u32) -> Vec<u32> {
        let mut chain = vec![n];
        let mut v = n;
        while self.idom[v as usize] != SUPER_ROOT {
            v = self.idom[v as usize];
            chain.push(v);
        }
        chain.reverse();
        chain
    }

    /// The nodes immediately dominated by the super-root whose retained sizes are largest,
    /// largest first: the top of "who keeps the memory alive".
    pub fn top_level(&self, k: usize) -> Vec<u32> {
        let mut top: Vec<u32> = (0..self.idom.len() as u32)
            .filter(|&v| self.idom[v as usize] == SUPER_ROOT)
            .collect();
        top.sort_by(|&a, &b| {
            self.retained[b as usize]
                .cmp(&self.retained[a as usize])
                .then(a.cmp(&b))
        });
        top.truncate(k);
        top
    }
}

/// Dominator tree from a virtual super-root that points at `roots`. Nodes no root reaches are
/// attached to the super-root too: in increasing id order, each node not yet reached becomes a
/// child of the super-root and its reachable set joins the tree; all of them are flagged in
/// `unrooted`. Root ids out of range are ignored.
pub fn dominators(g: &HeapGraph, roots: &[u32]) -> Dominators {
    dominators_with(g, &referrers(g), roots)
}

/// [`dominators`] with the referrers already at hand (they are the bulk of the working memory).
pub fn dominators_with(g: &HeapGraph, r: &Referrers, roots: &[u32]) -> Dominators {
    let n = g.len();
    assert_eq!(r.len(), n, "referrers of another graph");
    let total = n + 1;

    // --- depth-first numbering; preorder 0 is the super-root -------------------------------
    let mut pre = vec![NONE; n];
    let mut vertex: Vec<u32> = Vec::with_capacity(total);
    vertex.push(NONE);
    let mut parent = vec![0u32; total];
    // next edge to explore, per preorder number; becomes the link forest's `ancestor` later
    let mut cursor = vec![0u32; total];

    let mut is_root = vec![false; n];
    for &root in roots {
        if (root as usize) < n {
            is_root[root as usize] = true;
            if pre[root as usize] == NONE {
                dfs(g, root, &mut pre, &mut vertex, &mut parent, &mut cursor);
            }
        }
    }
    let rooted = vertex.len() as u32;
    for v in 0..n as u32 {
        if pre[v as usize] == NONE {
            dfs(g, v, &mut pre, &mut vertex, &mut parent, &mut cursor);
        }
    }
    debug_assert_eq!(vertex.len(), total);

    // --- semidominators and implicit immediate dominators ----------------------------------
    let mut idom = vec![0u32; total];
    {
        let mut semi: Vec<u32> = (0..total as u32).collect();
        let mut forest = Forest::new(cursor);
        let mut bucket_head = vec![NONE; total];
        let mut bucket_next = vec![NONE; total];

        for w in (1..total as u32).rev() {
            let node = vertex[w as usize];
            let pw = parent[w as usize];
            // the super-root points at every root and at every unrooted starting point, and no
            // semidominator can be smaller than it, so their other referrers need no look
            let mut s = if pw == 0 || is_root[node as usize] {
                0
            } else {
                w
            };
            if s != 0 {
                for &p in r.of(node) {
                    let u = forest.eval(pre[p as usize], &semi);
                    s = s.min(semi[u as usize]);
                }
            }
            semi[w as usize] = s;
            bucket_next[w as usize] = bucket_head[s as usize];
            bucket_head[s as usize] = w;
            forest.link(pw, w);

            let mut v = std::mem::replace(&mut bucket_head[pw as usize], NONE);
            while v != NONE {
                let u = forest.eval(v, &semi);
                // `u` with a smaller semidominator means v shares u's dominator (resolved
                // below, once u's is known); otherwise v's semidominator is its dominator
                idom[v as usize] = if semi[u as usize] < semi[v as usize] {
                    u
                } else {
                    pw
                };
                v = bucket_next[v as usize];
            }
        }
        for w in 1..total {
            if idom[w] != semi[w] {
                idom[w] = idom[idom[w] as usize];
            }
        }
    }
    drop(parent);

    // --- back to node ids; retained sizes bottom-up (reverse preorder) -----------------------
    let mut idom_node = vec![SUPER_ROOT; n];
    for w in 1..total {
        let d = idom[w];
        if d != 0 {
            idom_node[vertex[w] as usize] = vertex[d as usize];
        }
    }
    drop(idom);
    let mut retained = g.node_size.clone();
    for &v in vertex[1..].iter().rev() {
        let d = idom_node[v as usize];
        if d != SUPER_ROOT {
            retained[d as usize] += retained[v as usize];
        }
    }
    let unrooted = pre.iter().map(|&p| p >= rooted).collect();
    vertex.remove(0);
    Dominators {
        idom: idom_node,
        retained,
        unrooted,
        order: vertex,
    }
}

/// Numbers every node reachable from `start` (not yet numbered) in depth-first preorder, with
/// `start` a child of the super-root. The current path is the parent chain, and each node on it
/// remembers in `cursor` which of its edges to try next, so depth costs no call stack.
fn dfs(
    g: &HeapGraph,
    start: u32,
    pre: &mut [u32],
    vertex: &mut Vec<u32>,
    parent: &mut [u32],
    cursor: &mut [u32],
) {
    let s = vertex.len() as u32;
    pre[start as usize] = s;
    vertex.push(start);
    parent[s as usize] = 0;
    cursor[s as usize] = g.edge_start[start as usize];
    let mut cur = s;
    loop {
        let v = vertex[cur as usize];
        let at = cursor[cur as usize];
        if at < g.edge_start[v as usize + 1] {
            cursor[cur as usize] = at + 1;
            let w = g.edges[at as usize];
            if pre[w as usize] == NONE {
                let k = vertex.len() as u32;
                pre[w as usize] = k;
                vertex.push(w);
                parent[k as usize] = cur;
                cursor[k as usize] = g.edge_start[w as usize];
                cur = k;
            }
        } else if cur == s {
            return;
        } else {
            cur = parent[cur as usize];
        }
    }
}

/// The link-eval forest of Lengauer–Tarjan (the simple variant: path compression, no
/// balancing), over preorder numbers.
struct Forest {
    ancestor: Vec<u32>,
    /// The vertex of smallest semidominator seen on the compressed path above each vertex.
    label: Vec<u32>,
    /// Scratch for compressing without recursion.
    stack: Vec<u32>,
}

impl Forest {
    /// A forest of single vertices, in `ancestor`'s storage (the search's spent edge cursors).
    fn new(mut ancestor: Vec<u32>) -> Self {
        ancestor.fill(NONE);
        let label = (0..ancestor.len() as u32).collect();
        Self {
            ancestor,
            label,
            stack: Vec::new(),
        }
    }

    fn link(&mut self, parent: u32, child: u32) {
        self.ancestor[child as usize] = parent;
    }

    /// The vertex of smallest semidominator on the forest path above `v` (its tree root
    /// excluded), compressing the path on the way.
    fn eval(&mut self, v: u32, semi: &[u32]) -> u32 {
        let (ancestor, label) = (&mut self.ancestor, &mut self.label);
        if ancestor[v as usize] == NONE {
            return v;
        }
        let mut x = v;
        while ancestor[ancestor[x as usize] as usize] != NONE {
            self.stack.push(x);
            x = ancestor[x as usize];
        }
        // top down, so each vertex takes its ancestor's already compressed label
        while let Some(y) = self.stack.pop() {
            let a = ancestor[y as usize];
            if semi[label[a as usize] as usize] < semi[label[y as usize] as usize] {
                label[y as usize] = label[a as usize];
            }
            ancestor[y as usize] = ancestor[a as usize];
        }
        label[v as usize]
    }
}

/// Retained bytes of a set of types: for each requested type `t`, the bytes of every node whose
/// dominator chain (the node itself included) contains an instance of `t`, counted once even
/// when instances of `t` dominate each other. Types are handled 64 at a time (one bit each per
/// node), so more than 64 cost one pass over the graph per 64.
pub fn retained_by_type(g: &HeapGraph, d: &Dominators, types: &[u32]) -> Vec<u64> {
    let mut out = Vec::with_capacity(types.len());
    let type_count = g
        .node_type
        .iter()
        .map(|&t| t as usize + 1)
        .max()
        .unwrap_or(0);
    let mut masks = vec![0u64; g.len()];
    for chunk in types.chunks(64) {
        // which requested bits an instance of each type sets
        let mut own = vec![0u64; type_count];
        for (bit, &t) in chunk.iter().enumerate() {
            if let Some(m) = own.get_mut(t as usize) {
                *m |= 1 << bit;
            }
        }
        let mut bytes = [0u64; 64];
        for &v in &d.order {
            let v = v as usize;
            let up = match d.idom[v] {
                SUPER_ROOT => 0,
                i => masks[i as usize],
            };
            let mut m = up | own[g.node_type[v] as usize];
            masks[v] = m;
            while m != 0 {
                bytes[m.trailing_zeros() as usize] += g.node_size[v];
                m &= m - 1;
            }
        }
        out.extend_from_slice(&bytes[..chunk.len()]);
    }
    out
}

/// Fills the `retained` column of census rows (see [`retained_by_type`]).
pub fn fill_retained(g: &HeapGraph, d: &Dominators, rows: &mut [super::TypeRow]) {
    let types: Vec<u32> = rows.iter().map(|r| r.type_id).collect();
    for (row, bytes) in rows.iter_mut().zip(retained_by_type(g, d, &types)) {
        row.retained = Some(bytes);
    }
}
