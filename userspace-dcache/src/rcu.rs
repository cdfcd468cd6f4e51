//! RCU: `rcu_read_lock()` sections and `call_rcu()` frees.
//!
//! The runnable model uses crossbeam-epoch: a pinned guard is a read-side critical section and a
//! deferred destroy runs once every guard pinned before it is gone, which is exactly the grace
//! period `__d_free` waits for. Under `--cfg loom` a grace period is the end of the model run:
//! frees are queued and run when the `Rcu` is dropped, which keeps every object a checker's reader
//! can reach alive while it explores.

use crate::slab::{self, Cached};

/// One RCU domain (the kernel has one; the model has one per [`crate::Dcache`]).
pub(crate) struct Rcu {
    #[cfg(not(loom))]
    collector: crossbeam_epoch::Collector,
    #[cfg(loom)]
    garbage: std::sync::Arc<crate::sync::Mutex<Vec<Deferred>>>,
}

#[cfg(loom)]
struct Deferred(Box<dyn FnOnce()>);

// SAFETY (loom only): deferred frees run on the thread that drops the last handle, after every
// thread of the model has finished; the closures only free memory nobody references then.
#[cfg(loom)]
unsafe impl Send for Deferred {}

/// A thread's registration with the RCU domain (what `current` is to the kernel's RCU).
pub(crate) struct RcuHandle {
    #[cfg(not(loom))]
    handle: crossbeam_epoch::LocalHandle,
    #[cfg(loom)]
    garbage: std::sync::Arc<crate::sync::Mutex<Vec<Deferred>>>,
}

/// An `rcu_read_lock()` section; `rcu_read_unlock()` is the drop.
pub(crate) struct RcuReadGuard {
    #[cfg(not(loom))]
    _guard: crossbeam_epoch::Guard,
}

impl Rcu {
    pub(crate) fn new() -> Rcu {
        Rcu {
            #[cfg(not(loom))]
            collector: crossbeam_epoch::Collector::new(),
            #[cfg(loom)]
            garbage: std::sync::Arc::new(crate::sync::Mutex::new(Vec::new())),
        }
    }

    pub(crate) fn register(&self) -> RcuHandle {
        RcuHandle {
            #[cfg(not(loom))]
            handle: self.collector.register(),
            #[cfg(loom)]
            garbage: self.garbage.clone(),
        }
    }
}

#[cfg(loom)]
impl Drop for Rcu {
    fn drop(&mut self) {
        let frees = std::mem::take(&mut *self.garbage.lock());
        for f in frees {
            (f.0)();
        }
    }
}

/// `rcu_read_unlock()`. Under loom nothing waits for it (frees wait for the end of the run),
/// but the protocol code still ends its sections where the kernel does.
#[cfg(loom)]
impl Drop for RcuReadGuard {
    fn drop(&mut self) {}
}

impl RcuHandle {
    /// `rcu_read_lock()`
    pub(crate) fn read_lock(&self) -> RcuReadGuard {
        RcuReadGuard {
            #[cfg(not(loom))]
            _guard: self.handle.pin(),
        }
    }

    /// `call_rcu(..., free)`: frees the object at `p` to its cache after a grace period.
    ///
    /// # Safety
    /// `p` comes from [`slab::alloc`], is freed only here, and no new reference to it can be
    /// taken from now on (it is unreachable except to readers already inside a section).
    pub(crate) unsafe fn call_rcu_free<T: Cached>(&self, p: *mut T) {
        // SAFETY: the caller hands over the only owning pointer; the closure runs once.
        let free = move || unsafe { slab::free(p) };
        #[cfg(not(loom))]
        {
            let guard = self.handle.pin();
            // SAFETY: the closure touches nothing but `p`, which no reader can reach once the
            // epoch advances past every guard pinned now.
            unsafe { guard.defer_unchecked(free) };
        }
        #[cfg(loom)]
        self.garbage.lock().push(Deferred(Box::new(free)));
    }
}
