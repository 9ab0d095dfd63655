//! `memsleuth.memory()`: one fast snapshot of a process' memory.

use std::sync::Mutex;

use memsleuth_platform::{Current, Detail, Os, ProcessMemory};
use pyo3::prelude::*;

use crate::errors::{to_py, Error};

/// Memory of a process at one instant, in bytes. Fields the platform could not read are None.
#[pyclass(frozen, module = "memsleuth._native")]
#[derive(Debug, Clone)]
pub struct Memory {
    #[pyo3(get)]
    pid: u32,
    /// Resident set size.
    #[pyo3(get)]
    rss: Option<u64>,
    /// Virtual memory size.
    #[pyo3(get)]
    vms: Option<u64>,
    /// Unique set size: memory the process alone uses.
    #[pyo3(get)]
    uss: Option<u64>,
    /// Proportional set size: private memory plus a share of shared pages.
    #[pyo3(get)]
    pss: Option<u64>,
    /// Swapped-out memory.
    #[pyo3(get)]
    swap: Option<u64>,
    /// Peak RSS over the process' life.
    #[pyo3(get)]
    peak: Option<u64>,
}

fn human(v: Option<u64>) -> String {
    v.map_or_else(
        || "None".into(),
        |b| memsleuth_render::units::bytes(b as f64),
    )
}

#[pymethods]
impl Memory {
    fn __repr__(&self) -> String {
        format!(
            "Memory(pid={}, rss={}, vms={}, uss={}, pss={}, swap={}, peak={})",
            self.pid,
            human(self.rss),
            human(self.vms),
            human(self.uss),
            human(self.pss),
            human(self.swap),
            human(self.peak)
        )
    }

    /// The readings as a plain dict of bytes.
    fn as_dict(&self) -> std::collections::BTreeMap<&'static str, Option<u64>> {
        [
            ("rss", self.rss),
            ("vms", self.vms),
            ("uss", self.uss),
            ("pss", self.pss),
            ("swap", self.swap),
            ("peak", self.peak),
        ]
        .into_iter()
        .collect()
    }
}

/// Open handles on this process' /proc files, reused between calls so a reading costs a few
/// `pread`s. Keyed by PID: a forked child must not read its parent through inherited handles.
static SELF_HANDLE: Mutex<Option<<Current as Os>::Process>> = Mutex::new(None);

fn read_self(detail: Detail) -> Result<memsleuth_platform::Memory, Error> {
    let me = std::process::id();
    let mut slot = SELF_HANDLE.lock().unwrap_or_else(|p| p.into_inner());
    let reusable = slot.as_ref().is_some_and(|h| h.pid() == me);
    if !reusable {
        *slot = Some(Current::open(me, Detail::Full).or_else(|_| Current::open(me, detail))?);
    }
    match slot.as_mut() {
        Some(h) => Ok(h.read(detail)?),
        None => Err(Error::Platform(
            memsleuth_platform::PlatformError::NoSuchProcess(me),
        )),
    }
}

/// Reads the memory of `pid` (default: this process). `full=False` skips USS and PSS, which cost
/// the kernel a page-table walk, for the cheapest possible reading.
#[pyfunction]
#[pyo3(signature = (pid=None, full=true))]
pub fn memory(pid: Option<u32>, full: bool) -> PyResult<Memory> {
    let detail = if full { Detail::Full } else { Detail::Basic };
    let me = std::process::id();
    let target = pid.unwrap_or(me);
    let reading = if target == me {
        read_self(detail)
    } else {
        memsleuth_platform::memory(target, detail).map_err(Error::from)
    };
    let m = reading.map_err(|e| to_py(e, std::path::Path::new("")))?;
    Ok(Memory {
        pid: target,
        rss: m.rss,
        vms: m.vms,
        uss: m.uss,
        pss: m.pss,
        swap: m.swap,
        peak: m.peak,
    })
}
