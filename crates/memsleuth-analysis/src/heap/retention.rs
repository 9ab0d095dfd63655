//! The retention-path model: why an object is still alive, in words a renderer can show.

use serde::Serialize;

/// What kind of thing keeps the first object of a path alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A module (reachable from `sys.modules`).
    Module,
    /// A local or argument of a running frame.
    ThreadFrame,
    /// Listed in `gc.garbage`.
    GcGarbage,
    /// Referenced from C: more references than the gc can see.
    HeldFromC,
    /// Part of a cycle nothing refers to that the gc has not collected yet.
    Unreachable,
}

impl RootKind {
    /// The serialized name, for renderers that key styles or legends on it.
    pub fn as_str(self) -> &'static str {
        match self {
            RootKind::Module => "module",
            RootKind::ThreadFrame => "thread_frame",
            RootKind::GcGarbage => "gc_garbage",
            RootKind::HeldFromC => "held_from_c",
            RootKind::Unreachable => "unreachable",
        }
    }
}

/// One object on a retention path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStep {
    /// How the previous step refers to this one: `.cache`, `['key']`, `[3]`, `{member}`,
    /// `closure 'x'`, `local 'buf'`, `.__self__`, `->` when unknown; empty for the first step.
    pub edge: String,
    pub type_name: String,
    /// A short, safe description of the object: `dict (3 items)`, `<Job object>`, `'abc'`.
    pub repr: String,
    pub addr: u64,
    /// Shallow size in bytes.
    pub size: u64,
}

/// A chain of references from a root to an object that is alive because of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionPath {
    pub root_kind: RootKind,
    /// Words for the root, e.g. "module app.cache", "thread MainThread, frame serve (app.py:12)",
    /// "gc.garbage", "held from C (2 references the gc cannot see)", "unreachable cycle (garbage
    /// the gc has not collected)".
    pub root: String,
    /// From the root object (first) to the target (last).
    pub steps: Vec<PathStep>,
}
