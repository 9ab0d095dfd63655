//! The native instrument in a process that did not start with the preload library
//! (`memsleuth attach --native`). `LD_PRELOAD` is only read at start; in a running process the
//! preload is loaded with `dlopen`, and the entries of the global offset tables through which
//! the loaded objects call the C allocator (their `JUMP_SLOT` and `GLOB_DAT` relocations of
//! `malloc`, `free`, ...) are pointed at the preload's functions. `dlopen`'s entries are
//! pointed at [`patched_dlopen`], which does the same for every object loaded later (extension
//! modules imported while attached). [`restore`] puts back every entry that still points at
//! one of ours.
//!
//! Left alone: the C library and the dynamic linker (their calls to their own allocator do not
//! go through a table), the preload, and this extension (memsleuth's own work). Not seen, unlike
//! with `LD_PRELOAD`: calls through a pointer taken before the patch or with `dlsym`
//! (ctypes' `CDLL(None).malloc`), which hold the C library's address itself.
//!
//! Every pass runs inside `dl_iterate_phdr`'s callback, under the dynamic linker's lock, so no
//! object is unloaded while its table is written. Our own state has its own lock, taken only
//! inside that callback (never the other way around). An entry is an aligned word: a thread
//! calling through it sees the old function or the new one, both of which work.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Mutex;

/// The C allocator's functions the preload stands in for.
const ALLOCATOR: [&[u8]; 14] = [
    b"malloc",
    b"calloc",
    b"realloc",
    b"free",
    b"posix_memalign",
    b"aligned_alloc",
    b"memalign",
    b"valloc",
    b"pvalloc",
    b"reallocarray",
    b"mmap",
    b"mmap64",
    b"munmap",
    b"mremap",
];

// The dynamic section and relocation records as the dynamic linker keeps them in memory
// (ELF64, x86-64 and aarch64 use RELA): three plain records, read in place.
#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

#[repr(C)]
struct Rela {
    offset: u64,
    info: u64,
    addend: i64,
}

#[repr(C)]
struct Sym {
    name: u32,
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_JMPREL: i64 = 23;
#[cfg(target_arch = "x86_64")]
const R_GLOB_DAT: u32 = 6;
#[cfg(target_arch = "x86_64")]
const R_JUMP_SLOT: u32 = 7;
#[cfg(target_arch = "aarch64")]
const R_GLOB_DAT: u32 = 1025;
#[cfg(target_arch = "aarch64")]
const R_JUMP_SLOT: u32 = 1026;
const PT_GNU_RELRO: u32 = 0x6474_e552;

/// What a table entry is pointed at: a symbol's name and our function's address.
struct Target {
    name: &'static [u8],
    ours: usize,
}

/// One entry we wrote, to put back.
struct Slot {
    at: usize,
    old: usize,
    ours: usize,
    /// Inside the object's read-only-after-relocation range: made writable for the write.
    relro: (usize, usize),
}

struct Patched {
    targets: Vec<Target>,
    slots: Vec<Slot>,
    /// Objects left alone, by load address: the preload, this extension.
    skip: Vec<usize>,
    /// The C library's `dlopen`, which [`patched_dlopen`] calls.
    dlopen: usize,
}

static STATE: Mutex<Option<Patched>> = Mutex::new(None);

/// Why the allocator could not be patched in.
#[derive(Debug)]
pub struct Refused(pub String);

/// Loads the preload library at `path` and points every loaded object's allocator entries at
/// it. Returns the preload's handle, for the tracker to install its table through.
pub fn patch(path: &str) -> Result<*mut c_void, Refused> {
    let c = std::ffi::CString::new(path).map_err(|_| Refused("a path with a NUL".into()))?;
    // SAFETY: a NUL-terminated path; the library has no constructor that needs more.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror's string is valid until the next dl call on this thread.
        let why = unsafe { CStr::from_ptr(libc::dlerror()) }
            .to_string_lossy()
            .into_owned();
        return Err(Refused(format!("cannot load the native library: {why}")));
    }
    let mut targets = Vec::new();
    for name in ALLOCATOR {
        let mut z = name.to_vec();
        z.push(0);
        // SAFETY: a NUL-terminated name looked up in the preload (which defines it) first.
        let f = unsafe { libc::dlsym(handle, z.as_ptr().cast::<c_char>()) } as usize;
        if f != 0 {
            targets.push(Target { name, ours: f });
        }
    }
    // the preload finds the C library's functions on its first call: made now, so that no
    // thread makes it first in the middle of loading a library
    if let (Some(m), Some(f)) = (
        targets.iter().find(|t| t.name == b"malloc"),
        targets.iter().find(|t| t.name == b"free"),
    ) {
        // SAFETY: the preload's malloc and free, with their C types.
        unsafe {
            let malloc =
                std::mem::transmute::<usize, unsafe extern "C" fn(usize) -> *mut c_void>(m.ours);
            let free = std::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void)>(f.ours);
            free(malloc(16));
        }
    } else {
        return Err(Refused(
            "the native library lacks malloc or free (a damaged cache?)".into(),
        ));
    }
    // SAFETY: a NUL-terminated name; the first definition in the global scope, the C library's.
    let dlopen = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"dlopen".as_ptr()) } as usize;
    if dlopen != 0 {
        targets.push(Target {
            name: b"dlopen",
            ours: patched_dlopen as *const () as usize,
        });
    }
    let skip = [
        targets.first().map_or(0, |t| t.ours),
        patch as *const () as usize,
    ]
    .iter()
    .filter_map(|&a| load_address(a))
    .collect();
    {
        let mut state = STATE.lock().map_err(|_| Refused("state lost".into()))?;
        *state = Some(Patched {
            targets,
            slots: Vec::new(),
            skip,
            dlopen,
        });
    }
    pass(Pass::Patch);
    Ok(handle)
}

/// Puts back every entry that still points at one of ours. The preload stays loaded (a thread
/// may be inside one of its functions), with no table installed: it only forwards.
pub fn restore() {
    pass(Pass::Restore);
    if let Ok(mut state) = STATE.lock() {
        *state = None;
    }
}

/// The load address of the object holding `addr`.
fn load_address(addr: usize) -> Option<usize> {
    // SAFETY: a zeroed Dl_info is what dladdr fills.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address.
    if addr == 0 || unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 {
        return None;
    }
    Some(info.dli_fbase as usize)
}

/// `dlopen` for the patched objects: the C library's, then the new objects are patched too.
unsafe extern "C" fn patched_dlopen(file: *const c_char, flags: c_int) -> *mut c_void {
    let real = STATE
        .lock()
        .ok()
        .and_then(|s| s.as_ref().map(|p| p.dlopen))
        .unwrap_or(0);
    let real = if real == 0 {
        // restored meanwhile (a thread that read our entry just before): the global one
        // SAFETY: as in `patch`.
        unsafe { libc::dlsym(libc::RTLD_NEXT, c"dlopen".as_ptr()) as usize }
    } else {
        real
    };
    if real == 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: the C library's dlopen, whose C type this is.
    let f = unsafe {
        std::mem::transmute::<usize, unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void>(
            real,
        )
    };
    // SAFETY: the caller's arguments, as they gave them.
    let handle = unsafe { f(file, flags) };
    if !handle.is_null() {
        pass(Pass::Patch);
    }
    handle
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Patch,
    Restore,
}

fn pass(which: Pass) {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `data` is the `Pass` handed below; the linker hands a valid `info`.
        let (which, info) = unsafe { (*(data as *const Pass), &*info) };
        let Ok(mut guard) = STATE.lock() else {
            return 1;
        };
        let Some(state) = guard.as_mut() else {
            return 1;
        };
        // SAFETY: the object is loaded and stays so while the callback runs.
        unsafe {
            match which {
                Pass::Patch => patch_object(state, info),
                Pass::Restore => restore_object(state, info),
            }
        }
        0
    }
    let mut which = which;
    // SAFETY: the callback reads only what it is handed, under the linker's lock.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut which as *mut Pass).cast()) };
}

/// Whether an object is the C library, the dynamic linker or the kernel's vDSO.
fn system_object(info: &libc::dl_phdr_info) -> bool {
    if info.dlpi_name.is_null() {
        return false;
    }
    // SAFETY: a NUL-terminated name from the linker.
    let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes();
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    base.starts_with(b"libc.so")
        || base.starts_with(b"linux-vdso")
        || base.starts_with(b"linux-gate")
        || memsleuth_hook::native::is_dynamic_linker(base)
}

/// The object's program headers.
///
/// # Safety
/// `info` is the linker's, for a loaded object.
unsafe fn headers(info: &libc::dl_phdr_info) -> &[libc::Elf64_Phdr] {
    if info.dlpi_phdr.is_null() {
        return &[];
    }
    // SAFETY: the linker's headers, `dlpi_phnum` of them.
    unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
}

/// The pages the linker made read-only after relocation; (0, 0) when none. Both ends are
/// rounded down, as the linker rounds them (`_dl_protect_relro`): the page the range ends in
/// part-way stays writable, holding data, and must not be made read-only after a write.
fn relro_range(info: &libc::dl_phdr_info, phdrs: &[libc::Elf64_Phdr]) -> (usize, usize) {
    let page = page_size();
    phdrs
        .iter()
        .find(|h| h.p_type == PT_GNU_RELRO)
        .map_or((0, 0), |h| {
            let lo = (info.dlpi_addr + h.p_vaddr) as usize;
            let hi = lo + h.p_memsz as usize;
            (lo & !(page - 1), hi & !(page - 1))
        })
}

fn page_size() -> usize {
    // SAFETY: no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096).max(1)
}

/// The relocations of one table (`JMPREL` or `RELA`) of an object's dynamic section, with the
/// symbol and string tables to name them.
struct Tables {
    base: usize,
    symtab: usize,
    strtab: usize,
    lists: [(usize, usize); 2],
}

/// Reads the dynamic section. Its addresses are relocated in place by the linker on most
/// systems; one still below the load address is made absolute here.
///
/// # Safety
/// `info` is the linker's, for a loaded object.
unsafe fn tables(info: &libc::dl_phdr_info, phdrs: &[libc::Elf64_Phdr]) -> Option<Tables> {
    let base = info.dlpi_addr as usize;
    let dynamic = phdrs.iter().find(|h| h.p_type == libc::PT_DYNAMIC)?;
    let mut d = (base + dynamic.p_vaddr as usize) as *const Dyn;
    let abs = |v: u64| -> usize {
        let v = v as usize;
        if v < base {
            v + base
        } else {
            v
        }
    };
    let (mut symtab, mut strtab) = (0, 0);
    let (mut jmprel, mut pltrelsz, mut rela, mut relasz) = (0, 0, 0, 0);
    // SAFETY: the dynamic section ends with DT_NULL.
    unsafe {
        while (*d).tag != DT_NULL {
            let v = (*d).val;
            match (*d).tag {
                DT_SYMTAB => symtab = abs(v),
                DT_STRTAB => strtab = abs(v),
                DT_JMPREL => jmprel = abs(v),
                DT_PLTRELSZ => pltrelsz = v as usize,
                DT_RELA => rela = abs(v),
                DT_RELASZ => relasz = v as usize,
                _ => {}
            }
            d = d.add(1);
        }
    }
    if symtab == 0 || strtab == 0 {
        return None;
    }
    Some(Tables {
        base,
        symtab,
        strtab,
        lists: [(jmprel, pltrelsz), (rela, relasz)],
    })
}

/// Calls `f(entry address, symbol name)` for each `JUMP_SLOT` and `GLOB_DAT` relocation.
///
/// # Safety
/// `t` was read from a loaded object's dynamic section.
unsafe fn each_entry(t: &Tables, mut f: impl FnMut(usize, &[u8])) {
    for (start, len) in t.lists {
        if start == 0 || len == 0 {
            continue;
        }
        let n = len / std::mem::size_of::<Rela>();
        // SAFETY: the linker's relocation table, `len` bytes of records.
        let relocs = unsafe { std::slice::from_raw_parts(start as *const Rela, n) };
        for r in relocs {
            let kind = (r.info & 0xffff_ffff) as u32;
            if kind != R_JUMP_SLOT && kind != R_GLOB_DAT {
                continue;
            }
            let index = (r.info >> 32) as usize;
            if index == 0 {
                continue;
            }
            // SAFETY: the symbol table holds every symbol a relocation names; its names are
            // NUL-terminated strings of the string table.
            let name = unsafe {
                let sym = &*((t.symtab as *const Sym).add(index));
                CStr::from_ptr((t.strtab + sym.name as usize) as *const c_char).to_bytes()
            };
            f(t.base + r.offset as usize, name);
        }
    }
}

/// Writes `value` at `at`, making a read-only-after-relocation page writable for it.
///
/// # Safety
/// `at` is an aligned table entry of a loaded object; `relro` its object's range.
unsafe fn write_entry(at: usize, value: usize, relro: (usize, usize)) -> bool {
    let page = page_size();
    let inside = at >= relro.0 && at < relro.1;
    let start = at & !(page - 1);
    // SAFETY: the page of a loaded object's table; it is put back as it was just below.
    unsafe {
        if inside
            && libc::mprotect(
                start as *mut c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
            ) != 0
        {
            return false;
        }
        std::ptr::write_volatile(at as *mut usize, value);
        if inside {
            libc::mprotect(start as *mut c_void, page, libc::PROT_READ);
        }
    }
    true
}

/// # Safety
/// `info` is the linker's, for a loaded object; called under the linker's lock.
unsafe fn patch_object(state: &mut Patched, info: &libc::dl_phdr_info) {
    let base = info.dlpi_addr as usize;
    if system_object(info) || state.skip.contains(&base) {
        return;
    }
    // SAFETY: as the caller promises.
    let phdrs = unsafe { headers(info) };
    // SAFETY: as the caller promises.
    let Some(t) = (unsafe { tables(info, phdrs) }) else {
        return;
    };
    let relro = relro_range(info, phdrs);
    let mut found = Vec::new();
    // SAFETY: read from a loaded object.
    unsafe {
        each_entry(&t, |at, name| {
            if let Some(target) = state.targets.iter().find(|x| x.name == name) {
                found.push((at, target.ours));
            }
        });
    }
    for (at, ours) in found {
        // SAFETY: an entry of the object's table, aligned.
        let old = unsafe { std::ptr::read_volatile(at as *const usize) };
        if old == ours || state.slots.iter().any(|s| s.at == at) {
            continue;
        }
        // SAFETY: as above.
        if unsafe { write_entry(at, ours, relro) } {
            state.slots.push(Slot {
                at,
                old,
                ours,
                relro,
            });
        }
    }
}

/// # Safety
/// As [`patch_object`].
unsafe fn restore_object(state: &mut Patched, info: &libc::dl_phdr_info) {
    // SAFETY: as the caller promises.
    let phdrs = unsafe { headers(info) };
    let lo = info.dlpi_addr as usize;
    let hi = phdrs
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD)
        .map(|h| lo + (h.p_vaddr + h.p_memsz) as usize)
        .max()
        .unwrap_or(lo);
    state.slots.retain(|s| {
        if s.at < lo || s.at >= hi {
            return true;
        }
        // only an entry still ours is put back: a library unloaded and another loaded at its
        // address has tables of its own
        // SAFETY: inside a loaded object's range.
        let now = unsafe { std::ptr::read_volatile(s.at as *const usize) };
        if now == s.ours {
            // SAFETY: as in `patch_object`.
            unsafe { write_entry(s.at, s.old, s.relro) };
        }
        false
    });
}
