//! The native instrument's preload library, embedded in this extension (see `build.rs`): written
//! out once per build to the user's cache, so `memsleuth run --native` can put it in
//! `LD_PRELOAD` and start the interpreter again.

use std::io::Write;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;

use crate::errors::MemsleuthError;

static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memsleuth_preload.so"));

/// FNV-1a of the library, so that two builds of one version never share a file.
fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the cache lives: `$XDG_CACHE_HOME/memsleuth`, else `~/.cache/memsleuth`.
fn cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute());
    xdg.map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("memsleuth"))
}

/// Writes the library unless a file with its name and size is there; the name holds the
/// digest of its bytes. Written under a temporary name and renamed, so two processes starting
/// at once never load half a file.
fn write_out(dir: &Path) -> std::io::Result<PathBuf> {
    let name = format!(
        "libmemsleuth-preload-{}-{:016x}.so",
        env!("CARGO_PKG_VERSION"),
        digest(LIBRARY)
    );
    let path = dir.join(name);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == LIBRARY.len() as u64) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".preload-{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(LIBRARY)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The path of the preload library, written to the cache if needed. Start Python with it in
/// `LD_PRELOAD` to track the C allocator (`memsleuth run --native` does this for you).
#[pyfunction]
pub fn native_library() -> PyResult<String> {
    let Some(dir) = cache_dir() else {
        return Err(MemsleuthError::new_err(
            "cannot find a cache directory for the native instrument's library: set HOME or \
             XDG_CACHE_HOME",
        ));
    };
    write_out(&dir)
        .map(|p| p.display().to_string())
        .map_err(|e| {
            MemsleuthError::new_err(format!(
                "cannot write the native instrument's library into {}: {e}; set XDG_CACHE_HOME \
                 to a writable directory",
                dir.display()
            ))
        })
}

/// Whether this process started with the preload library, so that `Tracker(native=True)` can
/// record the C allocator.
#[pyfunction]
pub fn native_preloaded() -> bool {
    crate::tracker::native_preloaded()
}
