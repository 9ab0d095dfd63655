//! One census of live objects by type, as renderers see it.

use memsleuth_format::Census;
use serde::Serialize;

/// One type's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CensusRow {
    pub name: String,
    pub count: u64,
    pub bytes: u64,
    pub retained: Option<u64>,
}

/// A census: totals, gc state and rows, largest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CensusModel {
    pub objects: u64,
    pub bytes: u64,
    pub duration_s: f64,
    pub gc_enabled: bool,
    pub gc_counts: Vec<u64>,
    pub unreachable: u64,
    pub unreachable_bytes: u64,
    pub garbage: u64,
    /// Objects whose own `__sizeof__` failed or ran out of time: their size is the type's basic
    /// size.
    pub sizes_estimated: u64,
    pub types: Vec<CensusRow>,
}

impl CensusModel {
    pub fn from_record(c: &Census, sizes_estimated: u64) -> Self {
        CensusModel {
            objects: c.objects,
            bytes: c.bytes,
            duration_s: c.duration_ns as f64 / 1e9,
            gc_enabled: c.gc_enabled,
            gc_counts: c.gc_counts.clone(),
            unreachable: c.unreachable,
            unreachable_bytes: c.unreachable_bytes,
            garbage: c.garbage,
            sizes_estimated,
            types: c
                .types
                .iter()
                .map(|t| CensusRow {
                    name: t.name.clone(),
                    count: t.count,
                    bytes: t.bytes,
                    retained: t.retained,
                })
                .collect(),
        }
    }
}

use crate::heap::{PathStep, RetentionPath, RootKind};
use memsleuth_format::{Holder, HolderStep};

impl RootKind {
    /// The format's code (docs/format.md, `Holder.root_kind`).
    pub fn code(self) -> u8 {
        match self {
            RootKind::Module => 0,
            RootKind::ThreadFrame => 1,
            RootKind::GcGarbage => 2,
            RootKind::HeldFromC => 3,
            RootKind::Unreachable => 4,
        }
    }

    pub fn from_code(code: u8) -> RootKind {
        match code {
            0 => RootKind::Module,
            1 => RootKind::ThreadFrame,
            2 => RootKind::GcGarbage,
            3 => RootKind::HeldFromC,
            _ => RootKind::Unreachable,
        }
    }
}

impl RetentionPath {
    /// The path a capture's holder record describes.
    pub fn from_holder(h: &Holder) -> RetentionPath {
        RetentionPath {
            root_kind: RootKind::from_code(h.root_kind),
            root: h.root.clone(),
            steps: h
                .steps
                .iter()
                .map(|s| PathStep {
                    edge: s.edge.clone(),
                    type_name: s.type_name.clone(),
                    repr: s.repr.clone(),
                    addr: s.addr,
                    size: s.size,
                })
                .collect(),
        }
    }

    /// This path as a capture record for the block at `addr`, allocated by `stack`.
    pub fn to_holder(&self, stack: u32, addr: u64) -> Holder {
        Holder {
            stack,
            addr,
            root_kind: self.root_kind.code(),
            root: self.root.clone(),
            steps: self
                .steps
                .iter()
                .map(|s| HolderStep {
                    edge: s.edge.clone(),
                    type_name: s.type_name.clone(),
                    repr: s.repr.clone(),
                    addr: s.addr,
                    size: s.size,
                })
                .collect(),
        }
    }
}
