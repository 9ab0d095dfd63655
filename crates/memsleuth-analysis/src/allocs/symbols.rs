//! Names for native frames (format 1.5): a return address in a loaded object becomes the
//! function, source file and line of the call, read from the object's DWARF (or its symbol
//! table) when a report is made, on the machine the program ran on. Each object's file is
//! opened once per report; a file that is gone or unreadable leaves its frames named by
//! address.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use addr2line::Loader;
use memsleuth_format::{Mapping, NativeFrame};
use rustc_hash::FxHashMap;

use crate::profile::Location;

/// Which native frames a report shows (`--native-frames`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NativeFrames {
    /// None: every allocation is at its innermost Python line.
    None,
    /// The innermost frame in the program's own native code (an extension module, a library it
    /// loaded), below the Python line that called it; none when every native frame is the
    /// interpreter's or the C runtime's (a ctypes call: the Python line is the site).
    #[default]
    Boundary,
    /// Every native frame recorded, from the allocator's caller out to the Python frame.
    All,
}

static NATIVE_FRAMES: AtomicU8 = AtomicU8::new(1);

/// Chooses the native frames every report of this process shows; the command line sets it once
/// from `--native-frames` before it reads a capture (the default is [`NativeFrames::Boundary`]).
pub fn set_native_frames(mode: NativeFrames) {
    NATIVE_FRAMES.store(mode as u8, Ordering::Relaxed);
}

pub(crate) fn native_frames() -> NativeFrames {
    match NATIVE_FRAMES.load(Ordering::Relaxed) {
        0 => NativeFrames::None,
        2 => NativeFrames::All,
        _ => NativeFrames::Boundary,
    }
}

/// Whether a native frame's object is the interpreter's or the C runtime's rather than the
/// program's: the boundary skips them to reach the line that matters.
pub(crate) fn is_runtime(library: &str, path_hint: &str) -> bool {
    const RUNTIME: [&str; 10] = [
        "libc.so",
        "libc-",
        "libstdc++",
        "libgcc_s",
        "ld-linux",
        "libm.so",
        "libpthread",
        "libdl.so",
        "libffi",
        "libmemsleuth-preload",
    ];
    RUNTIME.iter().any(|r| library.starts_with(r))
        || library.starts_with("libpython")
        || (library.starts_with("python") && !library.ends_with(".so"))
        || library.starts_with("_native.")
        || path_hint.contains("/lib-dynload/")
}

/// Opens objects' files as they are first needed and remembers what each address was named.
#[derive(Default)]
pub(crate) struct Symbolizer {
    /// By mapping id; `None`: the file could not be read.
    loaders: FxHashMap<u32, Option<Loader>>,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("objects", &self.loaders.len())
            .finish()
    }
}

impl Symbolizer {
    /// The location of native frame `frame`, its object described by `mapping` when known.
    pub(crate) fn locate(&mut self, frame: &NativeFrame, mapping: Option<&Mapping>) -> Location {
        let Some(m) = mapping else {
            return Location {
                function: format!("0x{:x}", frame.address),
                ..Location::default()
            };
        };
        let library = file_name(&m.path);
        let loader = self.loaders.entry(m.id).or_insert_with(|| {
            // a file rebuilt since the run (same path, another build) would give wrong lines
            let same = m.build_id.is_empty()
                || file_build_id(Path::new(&m.path)).is_none_or(|id| id == m.build_id);
            if same {
                Loader::new(&m.path).ok()
            } else {
                None
            }
        });
        // a return address follows the call: the call's own line is one byte before it
        let probe = frame.address.saturating_sub(1);
        let named = loader.as_ref().and_then(|l| name(l, probe));
        match named {
            Some((function, file, line)) => Location {
                function,
                file,
                line,
                library,
            },
            None => Location {
                function: format!("0x{:x}", frame.address),
                library,
                ..Location::default()
            },
        }
    }
}

/// Function, file and line of `probe` in the loader's object. Of the calls DWARF says were
/// inlined there, the innermost outside the system's headers: a C++ container's allocation
/// is named at the program's line that grew it, not in `new_allocator.h`. Without DWARF, the
/// symbol table's function, with no line.
fn name(loader: &Loader, probe: u64) -> Option<(String, String, u32)> {
    let mut chosen: Option<(String, String, u32)> = None;
    if let Ok(mut frames) = loader.find_frames(probe) {
        while let Ok(Some(frame)) = frames.next() {
            let Some(function) = frame
                .function
                .as_ref()
                .and_then(|f| f.demangle().ok().map(|d| d.into_owned()))
            else {
                continue;
            };
            let (file, line) = frame
                .location
                .map(|l| (l.file.unwrap_or("").to_string(), l.line.unwrap_or(0)))
                .unwrap_or_default();
            let system = is_system_header(&file);
            if chosen.is_none() || !system {
                chosen = Some((function, file, line));
            }
            if !system {
                break;
            }
        }
    }
    if chosen.is_some() {
        return chosen;
    }
    let symbol = loader.find_symbol(probe)?;
    let function = addr2line::demangle_auto(symbol.into(), None).into_owned();
    Some((function, String::new(), 0))
}

/// Headers of the C and C++ libraries, whose inlined code is never the line to blame.
fn is_system_header(file: &str) -> bool {
    file.starts_with("/usr/include/") || file.starts_with("/usr/lib/gcc/") || file.contains("/c++/")
}

/// The GNU build id of an ELF file, in hex, from its notes (`PT_NOTE` segments); `None` when
/// the file cannot be read or has none.
fn file_build_id(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head).ok()?;
    // ELF64, little-endian: the only objects the native instrument records
    if head[..4] != *b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let u16_at =
        |b: &[u8], at: usize| Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?));
    let u32_at =
        |b: &[u8], at: usize| Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?));
    let u64_at =
        |b: &[u8], at: usize| Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?));
    let (phoff, phentsize, phnum) = (u64_at(&head, 32)?, u16_at(&head, 54)?, u16_at(&head, 56)?);
    let mut headers = vec![0u8; usize::from(phentsize) * usize::from(phnum.min(256))];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut headers).ok()?;
    const PT_NOTE: u32 = 4;
    for h in headers.chunks(usize::from(phentsize.max(1))) {
        if u32_at(h, 0)? != PT_NOTE {
            continue;
        }
        let (offset, size) = (u64_at(h, 8)?, u64_at(h, 32)?.min(1 << 16));
        let mut notes = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut notes).ok()?;
        let mut rest = &notes[..];
        while rest.len() >= 12 {
            let (namesz, descsz, kind) = (u32_at(rest, 0)?, u32_at(rest, 4)?, u32_at(rest, 8)?);
            let name_end = 12 + (namesz as usize).div_ceil(4) * 4;
            let desc_end = name_end + (descsz as usize).div_ceil(4) * 4;
            if desc_end > rest.len() {
                break;
            }
            const NT_GNU_BUILD_ID: u32 = 3;
            if kind == NT_GNU_BUILD_ID && rest.get(12..12 + namesz as usize) == Some(b"GNU\0") {
                let id = rest.get(name_end..name_end + descsz as usize)?;
                return Some(id.iter().map(|b| format!("{b:02x}")).collect());
            }
            rest = &rest[desc_end..];
        }
    }
    None
}

/// The last component of a path, which is how a library is shown.
pub(crate) fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_of_this_test() -> u64 {
        std::hint::black_box(1)
    }

    #[test]
    fn an_address_of_this_binary_is_named_from_its_file() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.display().to_string();
        // test binaries are position-independent: find where this one was loaded
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let bias = maps
            .lines()
            .find(|l| l.ends_with(&exe) && l.split_whitespace().nth(2) == Some("00000000"))
            .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
            .unwrap();
        let address = a_function_of_this_test as *const () as usize as u64 - bias + 1;
        let mapping = Mapping {
            id: 1,
            path: exe.clone(),
            bias,
            ..Mapping::default()
        };
        let mut s = Symbolizer::default();
        let frame = NativeFrame {
            id: 5,
            mapping: 1,
            address,
        };
        let loc = s.locate(&frame, Some(&mapping));
        assert!(loc.function.contains("a_function_of_this_test"), "{loc:?}");
        assert!(loc.file.ends_with("symbols.rs"), "{loc:?}");
        assert_eq!(loc.library, file_name(&exe));
        // a file rebuilt since the run: not named from it
        let rebuilt = Mapping {
            id: 3,
            build_id: "00".repeat(20),
            ..mapping.clone()
        };
        let loc = s.locate(&frame, Some(&rebuilt));
        assert_eq!(loc.function, format!("0x{address:x}"), "{loc:?}");
        // this very binary's build id, when it has one, is read from its file
        if let Some(id) = file_build_id(Path::new(&exe)) {
            let same = Mapping {
                id: 4,
                build_id: id,
                ..mapping.clone()
            };
            assert!(s
                .locate(&frame, Some(&same))
                .function
                .contains("a_function_of_this_test"));
        }
        // no object: the address
        let loc = s.locate(&frame, None);
        assert_eq!(loc.function, format!("0x{address:x}"));
        // an object whose file is gone: the address, with the library named
        let gone = Mapping {
            id: 2,
            path: "/nonexistent/libgone.so".into(),
            ..Mapping::default()
        };
        let loc = s.locate(&frame, Some(&gone));
        assert_eq!(
            (loc.function.as_str(), loc.library.as_str()),
            (format!("0x{address:x}").as_str(), "libgone.so")
        );
    }
}
