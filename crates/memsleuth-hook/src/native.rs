//! The contract between the `memsleuth-preload` library (loaded with `LD_PRELOAD` before the
//! interpreter starts, so its `malloc` and friends stand in for the C library's) and the tracker
//! in the `_native` extension, which is loaded later and owns the rings, the stacks and the
//! enabled flag. The preload forwards every call to the real allocator and, while the tracker
//! has installed a [`NativeHooks`] table, reports it through the table. One definition here
//! keeps both sides' layout the same.

use std::ffi::c_void;

/// Bumped whenever [`NativeHooks`] changes; the tracker refuses a preload of another version
/// (a wheel upgraded under a running process, or a stale library in the cache).
pub const ABI_VERSION: u32 = 1;

/// Name of the preload's exported `extern "C" fn(*const NativeHooks) -> u32` that installs a
/// table (null uninstalls) and returns [`ABI_VERSION`].
pub const INSTALL_SYMBOL: &[u8] = b"memsleuth_preload_install\0";

/// What the preload calls. Every function is called with the preload's own reentrancy flag set,
/// so an allocation made inside one is forwarded unrecorded; each returns at once when the
/// calling thread is inside a Python allocator hook or is one of memsleuth's own threads.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NativeHooks {
    /// A block of `size` bytes now lives at `ptr` (malloc family, or an `mmap` when `mapped`).
    pub alloc: extern "C" fn(ptr: *mut c_void, size: usize, mapped: bool),
    /// The block at `ptr` is about to be released (called before the real `free`/`munmap`, so
    /// another thread that gets the address next is always seen after it).
    pub free: extern "C" fn(ptr: *mut c_void),
    /// Called before a `realloc`/`mremap` of `ptr`: the time to stamp its free with, or 0 when it
    /// is not to be recorded.
    pub before_move: extern "C" fn(ptr: *mut c_void) -> u64,
    /// After a successful move: `old` was freed at `t` (from `before_move`) and `new` holds
    /// `size` bytes.
    pub moved: extern "C" fn(old: *mut c_void, t: u64, new: *mut c_void, size: usize, mapped: bool),
}

/// Whether an object's file name (the last component of its path) is the dynamic linker's. The
/// preload and the unwinder both tell the linker's own allocations apart by it.
pub fn is_dynamic_linker(file_name: &[u8]) -> bool {
    file_name.starts_with(b"ld-linux") || file_name.starts_with(b"ld64.so") || file_name == b"ld.so"
}
