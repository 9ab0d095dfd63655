//! Native stacks for the native instrument: the C frames between an allocation and the Python
//! frame that led to it, unwound inside the allocator hook.
//!
//! Interpreters and extensions are mostly built without frame pointers, so the unwinder reads
//! each object's DWARF call-frame information (`.eh_frame`, found through `.eh_frame_hdr`)
//! straight from memory with framehop, in its allocation-free mode, with a rule cache per
//! thread. The walk starts in this function and stops at the interpreter's evaluation loop:
//! the frames beyond it are Python's, which the Python stack names better. What it keeps are
//! return addresses; naming them (function, file, line, library) is the reader's work, from the
//! objects' files, after the program ran.
//!
//! The list of loaded objects is published whole and never freed. An address in no known
//! object ends the walk. If the dynamic linker has loaded a library since the list was made (a
//! cheap count, no allocation), the hook builds the new list at once and walks again: the one
//! place a hook allocates, once per library loaded. Otherwise (another thread is building it,
//! or the address is generated code in no object) the recorder thread looks on its next pass.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

#[cfg(target_arch = "x86_64")]
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
#[cfg(target_arch = "x86_64")]
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder,
};
use memsleuth_platform::LoadedObject;

/// Most native frames kept per allocation, innermost first.
pub const MAX_NATIVE: usize = 32;

#[cfg(target_arch = "x86_64")]
type Unwind = UnwinderX86_64<&'static [u8], MustNotAllocateDuringUnwind>;
#[cfg(target_arch = "x86_64")]
type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;

/// One published list of objects, never freed: a hook on another thread may still be reading
/// an older one (a list is a few kilobytes, and a new one is built only when a library loads).
struct Published {
    #[cfg(target_arch = "x86_64")]
    unwinder: Unwind,
    /// Every object's address range, sorted.
    ranges: Vec<(u64, u64)>,
    /// memsleuth's own objects (this extension, the preload): its innermost frames are skipped.
    own: Vec<(u64, u64)>,
    /// The interpreter's evaluation loop (`_PyEval_EvalFrameDefault`): the walk ends there.
    eval: (u64, u64),
    /// The interpreter: the object the evaluation loop is in (libpython, or the executable), and
    /// its standard extension modules (`lib-dynload`).
    interp: Vec<(u64, u64)>,
    /// The dynamic linker: what it allocates for itself (a thread's block of thread-local
    /// storage for a library, made on the thread's first use of it) is not the program's.
    loader: (u64, u64),
}

static PUBLISHED: AtomicPtr<Published> = AtomicPtr::new(std::ptr::null_mut());
/// The dynamic linker's count of objects ever loaded when the published list was made.
static PUBLISHED_ADDS: AtomicU64 = AtomicU64::new(u64::MAX);
/// Set while a hook builds a new list, so that only one thread does it at a time.
static REBUILDING: AtomicBool = AtomicBool::new(false);
/// Set by a walk that met an address in no known object.
static STALE: AtomicBool = AtomicBool::new(false);
/// Whether walks are wanted at all (a tracker with the native instrument is on).
static WANTED: AtomicBool = AtomicBool::new(false);

/// Turns native stacks on (building the list of objects) or off. Not from a hook.
pub fn want(on: bool) {
    if on && PUBLISHED.load(Ordering::Acquire).is_null() {
        publish();
    }
    WANTED.store(on, Ordering::Release);
}

/// Whether a tracker with the native instrument is on.
#[inline(always)]
pub fn wanted() -> bool {
    WANTED.load(Ordering::Relaxed)
}

/// Builds a new list of objects if a walk asked for one. The recorder thread calls it on every
/// pass; it is cheap when nothing was asked.
pub fn refresh_if_stale() {
    if STALE.swap(false, Ordering::AcqRel) && WANTED.load(Ordering::Acquire) {
        publish();
    }
}

/// How many objects the dynamic linker has ever loaded: a cheap test of whether the published
/// list is out of date. Takes the linker's list lock (recursive; never held while it runs a
/// library's constructors) and allocates nothing.
fn loads_so_far() -> u64 {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: both pointers are valid for the call: the linker's info and our counter.
        unsafe { *data.cast::<u64>() = (*info).dlpi_adds };
        1
    }
    let mut adds = 0u64;
    // SAFETY: the callback writes one u64 through the pointer it is given.
    unsafe { libc::dl_iterate_phdr(Some(first), std::ptr::from_mut(&mut adds).cast()) };
    adds
}

fn publish() {
    let adds = loads_so_far();
    let objects = memsleuth_platform::loaded_objects();
    let mut ranges: Vec<(u64, u64)> = objects.iter().map(LoadedObject::range).collect();
    ranges.sort_unstable();
    // SAFETY: published lists are never freed.
    if let Some(current) = unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() } {
        if current.ranges == ranges {
            // nothing was loaded: the address was in no object at all (generated code); a new
            // list would not know it either, and each list is kept for good
            PUBLISHED_ADDS.store(adds, Ordering::Release);
            return;
        }
    }
    let ours = [
        capture as *const () as usize as u64,
        super::native::preload_address().unwrap_or(0),
    ];
    let own = objects
        .iter()
        .map(LoadedObject::range)
        .filter(|&(lo, hi)| ours.iter().any(|&a| a >= lo && a < hi))
        .collect();
    let eval = eval_loop().unwrap_or((0, 0));
    let interp = objects
        .iter()
        .map(LoadedObject::range)
        .zip(&objects)
        .filter(|&((lo, hi), o)| (eval.0 >= lo && eval.0 < hi) || o.path.contains("/lib-dynload/"))
        .map(|(r, _)| r)
        .collect();
    let p = Published {
        #[cfg(target_arch = "x86_64")]
        unwinder: unwinder(&objects),
        ranges,
        own,
        eval,
        interp,
        loader: objects
            .iter()
            .find(|o| {
                let name = o.path.rsplit('/').next().unwrap_or("");
                memsleuth_hook::native::is_dynamic_linker(name.as_bytes())
            })
            .map_or((0, 0), LoadedObject::range),
    };
    let old = PUBLISHED.swap(Box::into_raw(Box::new(p)), Ordering::AcqRel);
    PUBLISHED_ADDS.store(adds, Ordering::Release);
    // the old list stays: a walk on another thread may be using it
    let _ = old;
}

/// From a hook that met an address in no known object: builds the new list at once when a
/// library was loaded since (once per load, and by one thread at a time), so that an extension
/// imported while tracking is unwound from its first allocation. The one place a hook
/// allocates: its allocations are the tracker's own and pass through unrecorded. Returns
/// whether a new list was published.
fn rebuild_now() -> bool {
    if loads_so_far() == PUBLISHED_ADDS.load(Ordering::Acquire) {
        return false;
    }
    if REBUILDING.swap(true, Ordering::AcqRel) {
        return false;
    }
    publish();
    REBUILDING.store(false, Ordering::Release);
    true
}

#[cfg(target_arch = "x86_64")]
fn unwinder(objects: &[LoadedObject]) -> Unwind {
    let mut u = Unwind::new();
    for o in objects {
        let (start, end) = o.range();
        if start >= end {
            continue;
        }
        let info = section_info(o);
        u.add_module(Module::new(o.path.clone(), start..end, o.bias, info));
    }
    u
}

/// `len` bytes of this process at `addr`, which lie in a segment of a loaded object.
fn mapped(addr: u64, len: u64) -> &'static [u8] {
    // SAFETY: callers pass ranges inside loaded segments; objects are not unloaded while
    // tracking (CPython never unloads an extension module).
    unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) }
}

/// Where an object's unwind tables and code are, as framehop wants them: file addresses
/// (`base_svma` 0 for ELF) and the bytes as they lie in memory.
#[cfg(target_arch = "x86_64")]
fn section_info(o: &LoadedObject) -> ExplicitModuleSectionInfo<&'static [u8]> {
    let mut info = ExplicitModuleSectionInfo {
        base_svma: 0,
        ..ExplicitModuleSectionInfo::default()
    };
    if let Some(text) = o.segments.iter().find(|s| s.executable) {
        info.text_svma = Some(text.vaddr..text.vaddr + text.memsz);
        info.text = Some(mapped(o.bias.wrapping_add(text.vaddr), text.memsz));
    }
    let Some((hdr_vaddr, hdr_len)) = o.eh_frame_hdr else {
        return info;
    };
    let hdr = mapped(o.bias.wrapping_add(hdr_vaddr), hdr_len);
    let Some(eh_vaddr) = eh_frame_address(hdr, hdr_vaddr) else {
        return info;
    };
    let Some(segment) = o.segment_of(eh_vaddr) else {
        return info;
    };
    // .eh_frame's length is not in the program headers: it ends at the latest with its segment
    let eh_len = segment.vaddr + segment.memsz - eh_vaddr;
    info.eh_frame_hdr_svma = Some(hdr_vaddr..hdr_vaddr + hdr_len);
    info.eh_frame_hdr = Some(hdr);
    info.eh_frame_svma = Some(eh_vaddr..eh_vaddr + eh_len);
    info.eh_frame = Some(mapped(o.bias.wrapping_add(eh_vaddr), eh_len));
    info
}

/// The file address of `.eh_frame` from the `.eh_frame_hdr` at file address `hdr_vaddr`: its
/// second field, in the encodings linkers use (4-byte pc-relative, or absolute).
fn eh_frame_address(hdr: &[u8], hdr_vaddr: u64) -> Option<u64> {
    const PCREL_SDATA4: u8 = 0x1b;
    const UDATA4: u8 = 0x03;
    const ABSPTR: u8 = 0x00;
    if hdr.first() != Some(&1) {
        return None;
    }
    let field = hdr.get(4..)?;
    match *hdr.get(1)? {
        PCREL_SDATA4 => {
            let rel = i32::from_le_bytes(field.get(..4)?.try_into().ok()?);
            Some((hdr_vaddr + 4).wrapping_add_signed(i64::from(rel)))
        }
        UDATA4 => Some(u64::from(u32::from_le_bytes(
            field.get(..4)?.try_into().ok()?,
        ))),
        ABSPTR => Some(u64::from_le_bytes(field.get(..8)?.try_into().ok()?)),
        _ => None,
    }
}

/// `dladdr1`'s request for the symbol table entry (glibc's `RTLD_DL_SYMENT`).
const RTLD_DL_SYMENT: libc::c_int = 1;

/// The address range of `_PyEval_EvalFrameDefault`, from the dynamic symbol table.
fn eval_loop() -> Option<(u64, u64)> {
    // SAFETY: a NUL-terminated name; dladdr1 fills the structures it is given.
    unsafe {
        let f = libc::dlsym(libc::RTLD_DEFAULT, c"_PyEval_EvalFrameDefault".as_ptr());
        if f.is_null() {
            return None;
        }
        let mut info: libc::Dl_info = std::mem::zeroed();
        let mut sym: *mut c_void = std::ptr::null_mut();
        if libc::dladdr1(f, &mut info, &mut sym, RTLD_DL_SYMENT) == 0 || sym.is_null() {
            return None;
        }
        let sym = &*sym.cast::<libc::Elf64_Sym>();
        let start = f as u64;
        Some((start, start + sym.st_size.max(1)))
    }
}

/// A thread's unwinding state, kept in its ring's word (`memsleuth_hook::thread_aux`), so a ring
/// handed to a new thread brings its cache along.
#[cfg(target_arch = "x86_64")]
struct PerThread {
    cache: Cache,
    /// The thread whose stack bounds these are.
    owner: libc::pthread_t,
    stack_lo: u64,
    stack_hi: u64,
}

/// This thread's state, made on its first walk. The allocation happens inside the hook, where
/// the preload passes it through unrecorded; it is reused by every later owner of the ring.
#[cfg(target_arch = "x86_64")]
fn per_thread() -> Option<&'static mut PerThread> {
    let aux = memsleuth_hook::thread_aux();
    // SAFETY: the word belongs to this thread's ring, which only this thread uses.
    let aux: &AtomicUsize = unsafe { aux.as_ref()? };
    let mut t = aux.load(Ordering::Relaxed) as *mut PerThread;
    if t.is_null() {
        t = Box::into_raw(Box::new(PerThread {
            cache: Cache::new_in(),
            owner: 0,
            stack_lo: 0,
            stack_hi: 0,
        }));
        aux.store(t as usize, Ordering::Relaxed);
    }
    // SAFETY: made above or by an earlier owner of the ring, never freed, used by one thread.
    let t = unsafe { &mut *t };
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    if t.owner != me {
        (t.stack_lo, t.stack_hi) = stack_bounds(me);
        t.owner = me;
    }
    Some(t)
}

/// Lowest and highest address of the calling thread's stack; (0, 0) when unknown.
fn stack_bounds(me: libc::pthread_t) -> (u64, u64) {
    // SAFETY: a zeroed attr is initialised by pthread_getattr_np and destroyed after use.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(me, &mut attr) != 0 {
            return (0, 0);
        }
        let mut addr: *mut c_void = std::ptr::null_mut();
        let mut size: usize = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if ok {
            (addr as u64, addr as u64 + size as u64)
        } else {
            (0, 0)
        }
    }
}

/// Writes the calling thread's native return addresses into `out`, innermost first: from the
/// caller of the allocator (memsleuth's own frames skipped) out to, and without, the
/// evaluation loop's frame. Returns how many, or `None` when the allocation is the dynamic
/// linker's own (not to be recorded). No allocation after the thread's first call, no lock,
/// no panic.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub fn capture(out: &mut [u64]) -> Option<usize> {
    if !WANTED.load(Ordering::Relaxed) {
        return Some(0);
    }
    // SAFETY: published lists are never freed.
    let Some(p) = (unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() }) else {
        return Some(0);
    };
    let Some(t) = per_thread() else {
        return Some(0);
    };
    match walk(p, t, out) {
        Walked::Unknown(n) if rebuild_now() => {
            // SAFETY: published lists are never freed.
            match unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() } {
                Some(p) => match walk(p, t, out) {
                    Walked::Done(n) | Walked::Unknown(n) => Some(n),
                    Walked::Loader => None,
                },
                None => Some(n),
            }
        }
        Walked::Unknown(n) => {
            // another thread is building the list, or the address is in no object at all;
            // the recorder thread looks again on its next pass
            STALE.store(true, Ordering::Release);
            Some(n)
        }
        Walked::Done(n) => Some(n),
        Walked::Loader => None,
    }
}

/// For an allocation through Python's allocators: the native frames as [`capture`] finds
/// them when C code outside the interpreter and its standard modules (an extension, a library)
/// is among them, else none,
/// so that an object a C function made is recorded at that function, while the allocations the
/// interpreter makes for Python code keep their Python stack alone.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
pub fn capture_python(out: &mut [u64]) -> usize {
    let Some(n) = capture(out) else {
        return 0;
    };
    // SAFETY: published lists are never freed.
    let Some(p) = (unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() }) else {
        return 0;
    };
    let interp = |a: u64| p.interp.iter().any(|&(lo, hi)| a >= lo && a < hi);
    if out[..n].iter().all(|&a| interp(a)) {
        0
    } else {
        n
    }
}

/// How a walk ended.
#[cfg(target_arch = "x86_64")]
enum Walked {
    /// At the evaluation loop, the stack's root, or `out`'s end: this many frames.
    Done(usize),
    /// At an address in no object of the list; the frames before it and it.
    Unknown(usize),
    /// The allocation is the dynamic linker's own.
    Loader,
}

/// One walk of this thread's stack against list `p` (see [`capture`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn walk(p: &Published, t: &mut PerThread, out: &mut [u64]) -> Walked {
    let (pc, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers, touches no memory.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags)
        );
    }
    let (lo, hi) = if t.stack_hi > t.stack_lo {
        (t.stack_lo.max(sp), t.stack_hi)
    } else {
        (sp, sp.saturating_add(1 << 20))
    };
    // only this thread's stack, above where the walk began, is ever read
    let mut read = |addr: u64| -> Result<u64, ()> {
        if addr.is_multiple_of(8) && addr >= lo && addr.saturating_add(8) <= hi {
            // SAFETY: an aligned word inside this thread's live stack.
            Ok(unsafe { *(addr as *const u64) })
        } else {
            Err(())
        }
    };
    let regs = UnwindRegsX86_64::new(pc, sp, bp);
    let mut frames = p.unwinder.iter_frames(pc, regs, &mut t.cache, &mut read);
    let mut n = 0;
    let mut past_own = false;
    while n < out.len() {
        let addr = match frames.next() {
            Ok(Some(FrameAddress::InstructionPointer(a))) => a,
            Ok(Some(FrameAddress::ReturnAddress(a))) => a.get(),
            _ => break,
        };
        if addr >= p.eval.0 && addr < p.eval.1 {
            break;
        }
        let known = match p.ranges.binary_search_by_key(&addr, |r| r.0) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => addr < p.ranges[i - 1].1,
        };
        if !known {
            // a library loaded since the list was made: keep the address and stop, as the
            // frames beyond could not be trusted
            out[n] = addr;
            return Walked::Unknown(n + 1);
        }
        if !past_own && p.own.iter().any(|&(lo, hi)| addr >= lo && addr < hi) {
            continue;
        }
        if !past_own && addr >= p.loader.0 && addr < p.loader.1 {
            return Walked::Loader;
        }
        past_own = true;
        out[n] = addr;
        n += 1;
    }
    Walked::Done(n)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn capture(_out: &mut [u64]) -> Option<usize> {
    Some(0)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn capture_python(_out: &mut [u64]) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eh_frame_is_found_from_its_header() {
        // version 1, pc-relative 4-byte pointer to .eh_frame 0x100 bytes after the field
        let hdr = [1, 0x1b, 0x03, 0x3b, 0x00, 0x01, 0x00, 0x00];
        assert_eq!(eh_frame_address(&hdr, 0x2000), Some(0x2004 + 0x100));
        let absolute = [1, 0x00, 0x03, 0x3b, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0];
        assert_eq!(eh_frame_address(&absolute, 0), Some(0x1234_5678));
        assert_eq!(eh_frame_address(&[2, 0x1b, 0, 0, 0, 0, 0, 0], 0), None);
        assert_eq!(eh_frame_address(&[1, 0x1b, 0, 0], 0), None);
    }
}
