//! The verdict on a capture another process is still writing (`memsleuth live`, and the
//! attacher of `memsleuth attach`): one leak pass, read on as the capture grows, through its
//! complete chunks only.

use std::fs::File;
use std::io::{BufReader, Take};
use std::path::{Path, PathBuf};

use memsleuth_format::Follow;

use super::leaks::LeakPass;
use super::{LeakOptions, LeakReport};
use crate::{AnalysisError, ProgramVerdict};

/// A capture followed as it is written: [`Followed::refresh`] reads what was added since the
/// last call and weighs everything read so far.
#[derive(Debug)]
pub struct Followed {
    path: PathBuf,
    opts: LeakOptions,
    follow: Follow,
    file: Option<File>,
    pass: Option<LeakPass<Take<BufReader<File>>>>,
}

impl Followed {
    pub fn new(path: &Path, opts: LeakOptions) -> Followed {
        Followed {
            path: path.to_path_buf(),
            opts,
            follow: Follow::new(),
            file: None,
            pass: None,
        }
    }

    /// The verdict on what the capture holds now; `None` while it holds no allocation yet (its
    /// recorder has not flushed, or it records no allocations).
    pub fn refresh(&mut self) -> Result<Option<ProgramVerdict>, AnalysisError> {
        self.read_on(&|| false)?;
        Ok(self.report()?.map(ProgramVerdict::from_leaks))
    }

    /// Reads the complete chunks written since the last read, stopping early at a chunk's end
    /// once `stop` says so (a later read goes on from there).
    pub fn read_on(&mut self, stop: &dyn Fn() -> bool) -> Result<(), AnalysisError> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(memsleuth_format::open_capture(&self.path).map_err(AnalysisError::Format)?),
        };
        let upto = self
            .follow
            .whole_len(file)
            .map_err(|e| AnalysisError::Format(e.into()))?;
        self.read_to(upto, stop)
    }

    /// Reads on to `upto`: a length its writer said ends a complete chunk (a recorder's sync),
    /// or `u64::MAX` once the capture is finished, trailer and all.
    pub fn read_to(&mut self, upto: u64, stop: &dyn Fn() -> bool) -> Result<(), AnalysisError> {
        if upto <= memsleuth_format::PREAMBLE_LEN as u64 {
            return Ok(());
        }
        let pass = match &mut self.pass {
            Some(pass) => pass,
            None => self
                .pass
                .insert(LeakPass::open_unread(&self.path, &self.opts, upto)?),
        };
        pass.read_to_unless(upto, stop);
        Ok(())
    }

    /// The leak report on what was read so far; `None` before any allocation.
    pub fn report(&self) -> Result<Option<LeakReport>, AnalysisError> {
        let Some(pass) = &self.pass else {
            return Ok(None);
        };
        match pass.report() {
            Ok(r) => Ok(Some(r)),
            Err(AnalysisError::NoAllocations) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
