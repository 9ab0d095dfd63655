//! The objects (executable, shared libraries, extension modules) loaded into this process, as the
//! dynamic linker lists them: where each lies, its segments and its unwind table, so that native
//! stacks can be unwound in the process and their addresses named later, from the files.

/// A segment loaded from an object's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Address as stated in the file (add [`LoadedObject::bias`] for where it is).
    pub vaddr: u64,
    pub memsz: u64,
    /// Offset of its bytes in the file.
    pub offset: u64,
    pub executable: bool,
}

/// One object mapped into this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedObject {
    /// Path of its file ("" for the main program when the linker names none: see `path_or_exe`).
    pub path: String,
    /// What the dynamic linker added to the file's addresses.
    pub bias: u64,
    pub segments: Vec<Segment>,
    /// `PT_GNU_EH_FRAME`: the `.eh_frame_hdr` section's file address and size.
    pub eh_frame_hdr: Option<(u64, u64)>,
    /// The GNU build id note, when the object has one.
    pub build_id: Vec<u8>,
}

impl LoadedObject {
    /// Lowest and highest (exclusive) address of its loaded segments in this process.
    pub fn range(&self) -> (u64, u64) {
        let lo = self.segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let hi = self
            .segments
            .iter()
            .map(|s| s.vaddr.saturating_add(s.memsz))
            .max()
            .unwrap_or(0);
        (lo.wrapping_add(self.bias), hi.wrapping_add(self.bias))
    }

    /// The segment holding file address `vaddr`.
    pub fn segment_of(&self, vaddr: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr < s.vaddr.saturating_add(s.memsz))
    }
}

/// Every object loaded now, in the dynamic linker's order (the main program first). Takes the
/// linker's lock for the walk: never call it from an allocator hook.
#[cfg(target_os = "linux")]
pub fn loaded_objects() -> Vec<LoadedObject> {
    let mut out: Vec<LoadedObject> = Vec::new();
    // SAFETY: the callback only reads the structures the linker hands it, for the call's length.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), std::ptr::from_mut(&mut out).cast());
    }
    let exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for o in &mut out {
        if o.path.is_empty() && !exe.is_empty() {
            o.path.clone_from(&exe);
            break;
        }
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub fn loaded_objects() -> Vec<LoadedObject> {
    Vec::new()
}

#[cfg(target_os = "linux")]
unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `data` is the Vec passed above; `info` and its headers are valid for this call.
    unsafe {
        let out = &mut *data.cast::<Vec<LoadedObject>>();
        let info = &*info;
        let path = if info.dlpi_name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(info.dlpi_name)
                .to_string_lossy()
                .into_owned()
        };
        let headers = std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum));
        let bias = info.dlpi_addr;
        let mut object = LoadedObject {
            path,
            bias,
            segments: Vec::new(),
            eh_frame_hdr: None,
            build_id: Vec::new(),
        };
        for h in headers {
            match h.p_type {
                libc::PT_LOAD => object.segments.push(Segment {
                    vaddr: h.p_vaddr,
                    memsz: h.p_memsz,
                    offset: h.p_offset,
                    executable: h.p_flags & libc::PF_X != 0,
                }),
                libc::PT_GNU_EH_FRAME => object.eh_frame_hdr = Some((h.p_vaddr, h.p_memsz)),
                _ => {}
            }
        }
        for h in headers.iter().filter(|h| h.p_type == libc::PT_NOTE) {
            let notes = std::slice::from_raw_parts(
                bias.wrapping_add(h.p_vaddr) as *const u8,
                h.p_memsz as usize,
            );
            if let Some(id) = gnu_build_id(notes) {
                object.build_id = id.to_vec();
                break;
            }
        }
        if !object.segments.is_empty() {
            out.push(object);
        }
        0
    }
}

/// The `NT_GNU_BUILD_ID` note's bytes in a `PT_NOTE` segment.
fn gnu_build_id(mut notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let align4 = |n: usize| n.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let (namesz, descsz, kind) = (word(notes, 0)?, word(notes, 4)?, word(notes, 8)?);
        let name_end = 12 + align4(namesz as usize);
        let desc_end = name_end + align4(descsz as usize);
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes.get(12..12 + namesz as usize) == Some(b"GNU\0") {
            return notes.get(name_end..name_end + descsz as usize);
        }
        notes = &notes[desc_end..];
    }
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_and_the_c_library_are_listed_with_their_unwind_tables() {
        let objects = loaded_objects();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let main = &objects[0];
        assert_eq!(main.path, exe.display().to_string());
        assert!(main.eh_frame_hdr.is_some());
        assert!(main.segments.iter().any(|s| s.executable));
        // a function of this binary lies in the main object's range
        let here = loaded_objects as *const () as usize as u64;
        let (lo, hi) = main.range();
        assert!(lo <= here && here < hi, "{lo:#x} {here:#x} {hi:#x}");
        let libc = objects.iter().find(|o| o.path.contains("libc.so")).unwrap();
        assert!(!libc.build_id.is_empty(), "Debian's libc has a build id");
    }
}
