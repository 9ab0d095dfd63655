//! Reentrancy: a hook that itself allocates (or the recorder, which must never be tracked) must
//! not be recorded again.

use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    // const-initialised and without Drop: accessing it never allocates or registers a destructor
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Proof that this thread is inside a hook; leaving the scope leaves the hook. Not `Send`: it
/// belongs to the thread that entered.
#[derive(Debug)]
pub struct Reentry {
    /// Address of this thread's flag: unique among live threads, free to get.
    token: usize,
    _not_send: PhantomData<*const ()>,
}

impl Reentry {
    /// A value that identifies the calling thread among live threads.
    #[inline]
    pub fn thread_token(&self) -> usize {
        self.token
    }
}

/// Enters the hook on this thread, or returns `None` when the thread is already inside one (the
/// event must then be passed through untracked).
#[inline]
pub fn enter() -> Option<Reentry> {
    INSIDE
        .try_with(|inside| {
            if inside.replace(true) {
                None
            } else {
                Some(Reentry {
                    token: std::ptr::from_ref(inside) as usize,
                    _not_send: PhantomData,
                })
            }
        })
        .ok()
        .flatten()
}

impl Drop for Reentry {
    #[inline]
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|inside| inside.set(false));
    }
}
