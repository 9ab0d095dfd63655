//! The object graph in compressed sparse row form, its builder, its reverse, and a by-type census.
//!
//! Heaps of several million objects are the norm, so node ids are `u32` and adjacency lives in
//! two flat arrays (offsets and targets) rather than a `Vec` per node: 16 bytes a node and 4 an
//! edge, with no per-node allocation.

use rustc_hash::FxHashMap;

/// A snapshot of the object graph. Node ids are dense `0..n`. Edges are CSR: the referents of
/// node `i` are `edges[edge_start[i]..edge_start[i+1]]` (`edge_start` has `n + 1` entries).
#[derive(Debug, Default, Clone)]
pub struct HeapGraph {
    /// Type names; the index is the type id.
    pub type_names: Vec<String>,
    /// Type id of each node.
    pub node_type: Vec<u32>,
    /// Shallow size of each node, in bytes.
    pub node_size: Vec<u64>,
    /// `n + 1` offsets into `edges`.
    pub edge_start: Vec<u32>,
    /// Referents of all nodes, node after node.
    pub edges: Vec<u32>,
}

impl HeapGraph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.node_type.len()
    }

    /// True when the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.node_type.is_empty()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The nodes `n` refers to, in the order the walker reported them.
    pub fn referents(&self, n: u32) -> &[u32] {
        let n = n as usize;
        &self.edges[self.edge_start[n] as usize..self.edge_start[n + 1] as usize]
    }

    /// The name of node `n`'s type (`"?"` if the type id is unknown).
    pub fn type_name(&self, n: u32) -> &str {
        self.type_names
            .get(self.node_type[n as usize] as usize)
            .map_or("?", String::as_str)
    }

    /// Sum of the shallow sizes of all nodes.
    pub fn total_size(&self) -> u64 {
        self.node_size.iter().sum()
    }
}

/// Builds a [`HeapGraph`] node by node, in id order: the walker calls [`add_node`] to assign ids
/// to newly seen objects, and [`begin`]`(n)` / [`edge`]`(to)` to list the referents of node `n`,
/// with nodes begun in increasing id order. Each node is begun at most once; a node never begun
/// (or begun with no edge) has no referents. [`finish`] closes the CSR.
///
/// Misuse (beginning a node twice or out of order, an edge to an id not yet added, more than
/// `u32::MAX` nodes or edges) is a bug in the walker and panics with a message saying which.
///
/// [`add_node`]: GraphBuilder::add_node
/// [`begin`]: GraphBuilder::begin
/// [`edge`]: GraphBuilder::edge
/// [`finish`]: GraphBuilder::finish
#[derive(Debug, Default)]
pub struct GraphBuilder {
    type_names: Vec<String>,
    type_ids: FxHashMap<String, u32>,
    node_type: Vec<u32>,
    node_size: Vec<u64>,
    edge_start: Vec<u32>,
    edges: Vec<u32>,
    /// The node whose referents `edge` appends to; `None` before the first `begin`.
    current: Option<u32>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `nodes` nodes and `edges` edges, so a walker that knows
    /// the heap's size (e.g. from `gc.get_objects()`) avoids regrowing arrays of millions.
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        Self {
            node_type: Vec::with_capacity(nodes),
            node_size: Vec::with_capacity(nodes),
            edge_start: Vec::with_capacity(nodes + 1),
            edges: Vec::with_capacity(edges),
            ..Self::default()
        }
    }

    /// The id of the type called `name`, added on first use.
    pub fn intern_type(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.type_ids.get(name) {
            return id;
        }
        self.push_type(name)
    }

    /// Adds a type and returns its id, even if a type of that name exists: for walkers that
    /// key types by something other than the name (two classes may share a `__qualname__`).
    pub fn add_type(&mut self, name: &str) -> u32 {
        self.push_type(name)
    }

    fn push_type(&mut self, name: &str) -> u32 {
        let id = u32::try_from(self.type_names.len()).expect("more than u32::MAX types");
        self.type_names.push(name.to_owned());
        self.type_ids.entry(name.to_owned()).or_insert(id);
        id
    }

    /// Number of nodes added so far.
    pub fn len(&self) -> usize {
        self.node_type.len()
    }

    /// True when no node has been added.
    pub fn is_empty(&self) -> bool {
        self.node_type.is_empty()
    }

    /// Adds a node and returns its id (ids are dense, from 0).
    pub fn add_node(&mut self, type_id: u32, size: u64) -> u32 {
        // u32::MAX is kept free: the dominator tree uses it for the super-root.
        let id = u32::try_from(self.node_type.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .expect("heap graph: more than u32::MAX - 1 nodes");
        self.node_type.push(type_id);
        self.node_size.push(size);
        id
    }

    /// Changes the shallow size of node `n` (the walker may learn it after assigning the id).
    pub fn set_size(&mut self, n: u32, size: u64) {
        self.node_size[n as usize] = size;
    }

    /// Starts the referent list of node `n`; the following [`edge`](Self::edge) calls belong to
    /// it. Nodes skipped between the previous `begin` and `n` get no referents.
    pub fn begin(&mut self, n: u32) {
        assert!(
            (n as usize) < self.node_type.len(),
            "heap graph: begin({n}) before add_node gave that id"
        );
        if let Some(cur) = self.current {
            assert!(
                n > cur,
                "heap graph: begin({n}) after begin({cur}); nodes must be begun in increasing id order, once each"
            );
        }
        self.close_up_to(n as usize);
        self.current = Some(n);
    }

    /// Adds `to` to the referents of the node last begun.
    pub fn edge(&mut self, to: u32) {
        assert!(
            self.current.is_some(),
            "heap graph: edge({to}) before any begin"
        );
        assert!(
            (to as usize) < self.node_type.len(),
            "heap graph: edge to {to}, an id add_node has not given"
        );
        assert!(
            self.edges.len() < u32::MAX as usize,
            "heap graph: more than u32::MAX edges"
        );
        self.edges.push(to);
    }

    /// Records where the referents of every node before `upto` end: nodes between the last
    /// begun and `upto` have none, so their ranges are empty.
    fn close_up_to(&mut self, upto: usize) {
        let here = self.edges.len() as u32;
        while self.edge_start.len() <= upto {
            self.edge_start.push(here);
        }
    }

    /// The finished graph.
    pub fn finish(mut self) -> HeapGraph {
        let n = self.node_type.len();
        self.close_up_to(n);
        HeapGraph {
            type_names: self.type_names,
            node_type: self.node_type,
            node_size: self.node_size,
            edge_start: self.edge_start,
            edges: self.edges,
        }
    }
}

/// Referrers (the reverse CSR) of every node.
#[derive(Debug, Default, Clone)]
pub struct Referrers {
    start: Vec<u32>,
    from: Vec<u32>,
}

impl Referrers {
    /// The nodes that refer to `n`, in increasing id order (a node referring twice is listed
    /// twice).
    pub fn of(&self, n: u32) -> &[u32] {
        let n = n as usize;
        &self.from[self.start[n] as usize..self.start[n + 1] as usize]
    }

    /// How many references to `n` the graph holds.
    pub fn count(&self, n: u32) -> u32 {
        let n = n as usize;
        self.start[n + 1] - self.start[n]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// True when the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The referrers of every node of `g`.
pub fn referrers(g: &HeapGraph) -> Referrers {
    let n = g.len();
    // counting sort by target: one pass to size each list, one to fill it
    let mut start = vec![0u32; n + 1];
    for &to in &g.edges {
        start[to as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut from = vec![0u32; g.edges.len()];
    for v in 0..n as u32 {
        for &to in g.referents(v) {
            let slot = &mut fill[to as usize];
            from[*slot as usize] = v;
            *slot += 1;
        }
    }
    Referrers { start, from }
}

/// One type in a census.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TypeRow {
    pub type_id: u32,
    /// Number of instances.
    pub count: u64,
    /// Sum of their shallow sizes.
    pub bytes: u64,
    /// What the instances keep alive (see [`retained_by_type`](super::retained_by_type)), when
    /// computed.
    pub retained: Option<u64>,
}

/// By-type census of the graph: per type present, instance count and shallow bytes; sorted by
/// bytes, largest first (ties by type id). `retained` is left `None`; see
/// [`fill_retained`](super::fill_retained).
pub fn census_by_type(g: &HeapGraph) -> Vec<TypeRow> {
    let types = g
        .node_type
        .iter()
        .map(|&t| t as usize + 1)
        .max()
        .unwrap_or(0)
        .max(g.type_names.len());
    let mut count = vec![0u64; types];
    let mut bytes = vec![0u64; types];
    for (&t, &size) in g.node_type.iter().zip(&g.node_size) {
        count[t as usize] += 1;
        bytes[t as usize] += size;
    }
    let mut rows: Vec<TypeRow> = (0..types)
        .filter(|&t| count[t] > 0)
        .map(|t| TypeRow {
            type_id: t as u32,
            count: count[t],
            bytes: bytes[t],
            retained: None,
        })
        .collect();
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.type_id.cmp(&b.type_id)));
    rows
}
