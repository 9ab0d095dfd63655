//! Algorithms over a snapshot of the Python object graph: the graph itself (compact, `u32` ids,
//! CSR adjacency), its referrers, the dominator tree with retained sizes, retained bytes per
//! type, by-type census, shortest referrer chains to a root, and the retention-path model the
//! renderers draw.
//!
//! The snapshot is walked from a live interpreter elsewhere; everything here is plain Rust over
//! arrays, iterative throughout, sized for heaps of millions of objects.

mod dominators;
mod graph;
mod paths;
mod retention;
#[cfg(test)]
mod tests;

pub use dominators::{
    dominators, dominators_with, fill_retained, retained_by_type, Dominators, SUPER_ROOT,
};
pub use graph::{census_by_type, referrers, GraphBuilder, HeapGraph, Referrers, TypeRow};
pub use paths::{nearest, path_to_root};
pub use retention::{PathStep, RetentionPath, RootKind};
