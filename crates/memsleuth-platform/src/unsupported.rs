//! Placeholder back end for operating systems without an implementation yet.

use crate::{Detail, Memory, Os, PlatformError, ProcessMemory};

#[derive(Debug)]
pub struct Unsupported;

#[derive(Debug)]
pub struct NoProcess(u32);

impl ProcessMemory for NoProcess {
    fn pid(&self) -> u32 {
        self.0
    }
    fn read(&mut self, _: Detail) -> Result<Memory, PlatformError> {
        Err(PlatformError::Unsupported)
    }
}

impl Os for Unsupported {
    type Process = NoProcess;
    fn open(_: u32, _: Detail) -> Result<NoProcess, PlatformError> {
        Err(PlatformError::Unsupported)
    }
    fn children(_: u32) -> Vec<u32> {
        Vec::new()
    }
    fn parent(_: u32) -> Option<u32> {
        None
    }
    fn command_line(_: u32) -> Vec<String> {
        Vec::new()
    }
    fn alive(_: u32) -> bool {
        false
    }
}
