//! `kmem_cache_alloc()` and `kmem_cache_free()` for the model's dentries and names: the
//! kernel's `dentry_cache` (and its external names) keep freed objects on per-CPU lists for the
//! next allocation; here each thread keeps its own.
//!
//! Why not the allocator alone: frees arrive in batches (crossbeam runs a bag of up to 64
//! deferred frees at a time), more than glibc's per-thread cache holds for one size (7), so most
//! allocations of a replay went to malloc's slow path (about 285 instructions each, callgrind).
//!
//! Only where the memory comes from changes: the model stores the same values with the same
//! atomics, and no event carries an address. Under `--cfg loom` these are plain boxes.

use std::ptr::NonNull;
#[cfg(not(loom))]
use std::{cell::RefCell, mem::MaybeUninit, thread::LocalKey};

/// The most freed objects of one kind a thread keeps; past it they go back to the allocator
/// (a collection frees at most a few hundred at once).
#[cfg(not(loom))]
const KEEP: usize = 1024;

/// A thread's freed objects of one kind, their memory ready for the next allocation.
#[cfg(not(loom))]
pub(crate) type FreeList<T> = RefCell<Vec<Box<MaybeUninit<T>>>>;

/// A kind of object allocated from its own cache.
pub(crate) trait Cached: Sized + 'static {
    /// This kind's free list of the calling thread.
    #[cfg(not(loom))]
    fn free_list() -> &'static LocalKey<FreeList<Self>>;
}

/// `kmem_cache_alloc()`: `value` in memory freed earlier on this thread, or new memory.
pub(crate) fn alloc<T: Cached>(value: T) -> NonNull<T> {
    #[cfg(not(loom))]
    let slot = T::free_list()
        .try_with(|l| l.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(Box::new_uninit);
    #[cfg(not(loom))]
    let boxed = Box::write(slot, value);
    #[cfg(loom)]
    let boxed = Box::new(value);
    NonNull::from(Box::leak(boxed))
}

/// `kmem_cache_free()`: drops the object at `p` and keeps its memory for this thread's next
/// [`alloc`] of its kind.
///
/// # Safety
/// `p` comes from [`alloc`] (or `Box::into_raw`), is freed only here, and nothing uses it after.
pub(crate) unsafe fn free<T: Cached>(p: *mut T) {
    #[cfg(not(loom))]
    {
        // SAFETY: the caller hands over the only owner of a live, boxed `T`.
        unsafe { std::ptr::drop_in_place(p) };
        // SAFETY: the same allocation, its value dropped: `MaybeUninit<T>` has `T`'s layout.
        let slot = unsafe { Box::from_raw(p.cast::<MaybeUninit<T>>()) };
        // A full list, or a thread past its thread-locals, gives the memory back (the drop
        // of the box the closure does not take).
        let _ = T::free_list().try_with(|l| {
            let mut l = l.borrow_mut();
            if l.len() < KEEP {
                l.push(slot);
            }
        });
    }
    // SAFETY: as above.
    #[cfg(loom)]
    drop(unsafe { Box::from_raw(p) });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static DROPS: Cell<u64> = const { Cell::new(0) };
        static FREED: FreeList<Probe> = const { RefCell::new(Vec::new()) };
    }

    /// A value that counts its drops.
    struct Probe(u64);

    impl Drop for Probe {
        fn drop(&mut self) {
            DROPS.with(|d| d.set(d.get() + 1));
        }
    }

    impl Cached for Probe {
        fn free_list() -> &'static LocalKey<FreeList<Probe>> {
            &FREED
        }
    }

    fn kept() -> usize {
        FREED.with(|l| l.borrow().len())
    }

    /// Each value reads back as written, is dropped once when freed and never after (its memory
    /// reused holds the next value), freed memory serves the next allocations last freed first,
    /// and a thread keeps at most `KEEP` freed objects.
    #[test]
    fn freed_memory_is_reused_and_each_value_dropped_once() {
        let ps: Vec<NonNull<Probe>> = (0..KEEP as u64 + 10).map(|i| alloc(Probe(i))).collect();
        for (i, p) in ps.iter().enumerate() {
            // SAFETY: allocated above, not freed yet.
            assert_eq!(unsafe { p.as_ref() }.0, i as u64);
        }
        assert_eq!(DROPS.with(Cell::get), 0);
        for (n, p) in ps.iter().enumerate() {
            // SAFETY: each freed once, not used after.
            unsafe { free(p.as_ptr()) };
            assert_eq!(DROPS.with(Cell::get), n as u64 + 1);
            assert_eq!(kept(), (n + 1).min(KEEP));
        }
        let again: Vec<NonNull<Probe>> = (0..3).map(|i| alloc(Probe(100 + i))).collect();
        assert_eq!(kept(), KEEP - 3);
        assert_eq!(again[0], ps[KEEP - 1]);
        assert_eq!(again[1], ps[KEEP - 2]);
        assert_eq!(again[2], ps[KEEP - 3]);
        for (i, p) in again.iter().enumerate() {
            // SAFETY: allocated above, not freed yet.
            assert_eq!(unsafe { p.as_ref() }.0, 100 + i as u64);
        }
        assert_eq!(DROPS.with(Cell::get), KEEP as u64 + 10);
        for p in again {
            // SAFETY: freed once, not used after.
            unsafe { free(p.as_ptr()) };
        }
        assert_eq!(DROPS.with(Cell::get), KEEP as u64 + 13);
        assert_eq!(kept(), KEEP);
    }
}
