//! The in-process sampler behind `memsleuth.watch()`: a Rust thread that samples this process
//! (and its children) and writes a capture, without taking the GIL.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use memsleuth_format::Header;
use memsleuth_platform::Detail;
use memsleuth_recorder::{BackgroundSampler, RssConfig, RssSampler};
use pyo3::prelude::*;

use crate::errors::{to_py, Error};

/// A background memory sampler writing to a capture file. Use `memsleuth.watch()` rather than
/// this class directly.
#[pyclass(module = "memsleuth._native")]
#[derive(Debug)]
pub struct Sampler {
    path: PathBuf,
    running: Option<BackgroundSampler>,
    /// The process that started the thread: a forked child has no such thread and must neither
    /// join it nor write to the parent's capture.
    owner: u32,
    samples: u64,
}

#[pymethods]
impl Sampler {
    #[new]
    #[pyo3(signature = (path, interval=0.05, children=true, full=true, argv=vec![], python_version=String::new()))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        interval: f64,
        children: bool,
        full: bool,
        argv: Vec<String>,
        python_version: String,
    ) -> PyResult<Self> {
        let interval = crate::seconds::checked("interval", interval, 0.001)?;
        let me = std::process::id();
        let mut cfg = RssConfig::new(me, interval);
        cfg.children = children;
        cfg.detail = if full { Detail::Full } else { Detail::Basic };
        let header = Header {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            argv,
            python_version,
            hostname: memsleuth_recorder::hostname(),
            ..Header::default()
        };
        let started = py.detach(|| -> Result<BackgroundSampler, Error> {
            let file = BufWriter::new(File::create(&path)?);
            let sampler = RssSampler::new(file, header, cfg)?;
            Ok(BackgroundSampler::spawn(sampler, cfg.interval)?)
        });
        let running = started.map_err(|e| to_py(e, &path))?;
        Ok(Sampler {
            path,
            running: Some(running),
            owner: me,
            samples: 0,
        })
    }

    /// Places a mark (an iteration boundary, a phase) on the timeline.
    fn mark(&self, label: &str) {
        if let Some(bg) = &self.running {
            if self.owner == std::process::id() {
                bg.mark(label);
            }
        }
    }

    /// Stops sampling and finishes the capture. Returns the number of samples taken. Calling it
    /// again does nothing; in a forked child it does nothing either.
    fn stop(&mut self, py: Python<'_>) -> PyResult<u64> {
        let Some(mut bg) = self.running.take() else {
            return Ok(self.samples);
        };
        if self.owner != std::process::id() {
            // the thread exists only in the parent; joining it here would be undefined
            std::mem::forget(bg);
            return Ok(0);
        }
        let stopped = py.detach(|| bg.stop());
        self.samples = stopped.map_err(|e| to_py(e.into(), &self.path))?.samples;
        Ok(self.samples)
    }

    /// True while the sampler thread runs.
    #[getter]
    fn running(&self) -> bool {
        self.owner == std::process::id() && self.running.as_ref().is_some_and(|b| b.running())
    }

    /// The capture file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if self.owner != std::process::id() {
            if let Some(bg) = self.running.take() {
                std::mem::forget(bg);
            }
        }
    }
}
