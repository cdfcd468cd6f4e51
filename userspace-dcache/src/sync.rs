//! The kernel's concurrency primitives, as the model uses them: atomics, `smp_*` barriers,
//! `spinlock_t`, `seqcount_t`. Everything the protocol code touches concurrently goes through
//! here, so `--cfg loom` can swap in loom's atomics and explore every interleaving of the same
//! step code.
//!
//! Under loom the atomics are thin wrappers that can also run the same code sequentially
//! consistent ([`seq_cst_scope`]): the checker compares what C11 allows with what a machine that
//! never reorders (for these load-only readers, x86-TSO is no weaker) allows.

#[cfg(loom)]
pub(crate) use loom_atomics::{
    fence, mark_reader, AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64,
};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64};

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
thread_local! {
    /// Every atomic access and fence is `SeqCst` while set. A plain thread-local suffices: loom
    /// runs all threads of a model as coroutines on the thread that called `check`.
    static SEQ_CST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a loom model run) with every access and fence `SeqCst` if `on`; restores the
/// previous mode afterwards, also when `f` unwinds.
#[cfg(loom)]
pub(crate) fn seq_cst_scope<R>(on: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SEQ_CST.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(SEQ_CST.with(|c| c.replace(on)));
    f()
}

/// loom's atomics with the ordering each call asks for, or `SeqCst` inside [`seq_cst_scope`].
/// Loom treats `SeqCst` accesses like `AcqRel` except that a `SeqCst` load never returns a
/// `SeqCst` store older than another one it could see: every location the checked code shares
/// is written by one lock holder at a time, so loads then return the latest store, which is
/// sequential consistency.
///
/// Each atomic also carries a dependency token for loom's partial-order reduction, which
/// remembers only the last access to an object: a writer's own load (`seq++` reads first, the
/// probes read everything) would hide a reader's earlier load of the same field from the
/// writer's next store, and the interleaving where that store lands between two loads of the
/// reader would never run (loom issues #166, #392). Stores and the reader's loads also store to
/// the token, so that race is always seen. The token is never loaded: it adds no
/// synchronization, only exploration.
#[cfg(loom)]
mod loom_atomics {
    use super::{Ordering, SEQ_CST};

    loom::thread_local! {
        /// Marks the checker's reader thread (see `mark_reader`).
        static READER: std::cell::Cell<bool> = std::cell::Cell::new(false);
    }

    /// The calling loom thread is the checker's reader: its loads are dependent with every
    /// other thread's stores. Writers' loads are not tracked (they read fields they own).
    pub(crate) fn mark_reader() {
        READER.with(|r| r.set(true));
    }

    fn ord(o: Ordering) -> Ordering {
        if SEQ_CST.with(|c| c.get()) {
            Ordering::SeqCst
        } else {
            o
        }
    }

    pub(crate) fn fence(o: Ordering) {
        loom::sync::atomic::fence(ord(o));
    }

    struct Token(loom::sync::atomic::AtomicBool);

    impl Token {
        fn new() -> Token {
            Token(loom::sync::atomic::AtomicBool::new(false))
        }

        fn load(&self) {
            if READER.with(|r| r.get()) {
                self.0.store(false, Ordering::Relaxed);
            }
        }

        fn store(&self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }

    macro_rules! wrapper {
        ($name:ident, $t:ty) => {
            pub(crate) struct $name(loom::sync::atomic::$name, Token);

            impl $name {
                pub(crate) fn new(v: $t) -> $name {
                    $name(loom::sync::atomic::$name::new(v), Token::new())
                }

                pub(crate) fn load(&self, o: Ordering) -> $t {
                    self.1.load();
                    self.0.load(ord(o))
                }

                pub(crate) fn store(&self, v: $t, o: Ordering) {
                    self.1.store();
                    self.0.store(v, ord(o))
                }
            }
        };
    }

    wrapper!(AtomicI32, i32);
    wrapper!(AtomicU32, u32);
    wrapper!(AtomicU64, u64);
    wrapper!(AtomicBool, bool);

    impl AtomicBool {
        pub(crate) fn compare_exchange(
            &self,
            current: bool,
            new: bool,
            success: Ordering,
            failure: Ordering,
        ) -> Result<bool, bool> {
            self.1.store();
            self.0
                .compare_exchange(current, new, ord(success), ord(failure))
        }

        pub(crate) fn compare_exchange_weak(
            &self,
            current: bool,
            new: bool,
            success: Ordering,
            failure: Ordering,
        ) -> Result<bool, bool> {
            self.1.store();
            self.0
                .compare_exchange_weak(current, new, ord(success), ord(failure))
        }
    }

    pub(crate) struct AtomicPtr<T>(loom::sync::atomic::AtomicPtr<T>, Token);

    impl<T> AtomicPtr<T> {
        pub(crate) fn new(p: *mut T) -> AtomicPtr<T> {
            AtomicPtr(loom::sync::atomic::AtomicPtr::new(p), Token::new())
        }

        pub(crate) fn load(&self, o: Ordering) -> *mut T {
            self.1.load();
            self.0.load(ord(o))
        }

        pub(crate) fn store(&self, p: *mut T, o: Ordering) {
            self.1.store();
            self.0.store(p, ord(o))
        }

        pub(crate) fn swap(&self, p: *mut T, o: Ordering) -> *mut T {
            self.1.store();
            self.0.swap(p, ord(o))
        }
    }
}

/// `smp_wmb()`: orders earlier stores before later stores. A release fence is the C11 reading.
#[inline]
pub(crate) fn smp_wmb() {
    fence(Ordering::Release);
}

/// `smp_rmb()`: orders earlier loads before later loads. An acquire fence is the C11 reading.
#[inline]
pub(crate) fn smp_rmb() {
    fence(Ordering::Acquire);
}

/// `cpu_relax()` in a spin loop. Outside loom, a waiter also yields now and then: unlike a
/// kernel spinlock holder, a user thread holding a lock can be preempted.
#[inline]
pub(crate) fn cpu_relax(spins: &mut u32) {
    #[cfg(loom)]
    {
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        *spins += 1;
        if spins.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// `spinlock_t`: lock and unlock are separate calls, as in C, because the kernel functions the
/// model mirrors release locks they did not take (`__releases(dentry->d_lock)`).
///
/// Ordering, as the Linux kernel memory model (LKMM) gives it: `spin_lock()` is an acquire,
/// `spin_unlock()` a release, and an unlock followed by a lock (on another CPU that takes the
/// lock next, or on the same CPU) orders every access before the unlock before every access
/// after the lock *for every observer*, lock holder or not (`po-unlock-lock-po` is a
/// `cumul-fence` in tools/memory-model/linux-kernel.cat). C11's acquire/release alone orders
/// them only for threads that take the lock too; the lock-free RCU reader never does. So
/// [`SpinLock::lock`] ends with a release fence: a reader that sees a store made after the
/// lock and then runs an acquire fence (`smp_rmb`) synchronises with that fence, and sees
/// everything the previous holder did. The fence also orders this CPU's own stores made
/// before the lock with no unlock in between, which LKMM does not; no checked path has such a
/// store whose order matters to the reader (writers meet only under locks).
pub(crate) struct SpinLock {
    locked: AtomicBool,
}

impl SpinLock {
    pub(crate) fn new() -> SpinLock {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// `spin_lock()`
    pub(crate) fn lock(&self) {
        let mut spins = 0;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.locked.load(Ordering::Relaxed) {
                cpu_relax(&mut spins);
            }
        }
        fence(Ordering::Release);
        #[cfg(test)]
        lock_order::taken(self);
    }

    /// `spin_trylock()`
    pub(crate) fn try_lock(&self) -> bool {
        let locked = self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if locked {
            fence(Ordering::Release);
            #[cfg(test)]
            lock_order::taken(self);
        }
        locked
    }

    /// `spin_unlock()`
    pub(crate) fn unlock(&self) {
        debug_assert!(self.is_locked(), "unlock of a free spinlock");
        #[cfg(test)]
        lock_order::released(self);
        self.locked.store(false, Ordering::Release);
    }

    /// `spin_is_locked()`, for `assert_spin_locked()`-style debug checks.
    pub(crate) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

/// The order a thread takes and releases spinlocks in, for tests of a function's lock order
/// against the kernel's (lockdep's view: which lock is taken while which is held), and what a
/// test's watch reads while each is held.
#[cfg(test)]
pub(crate) mod lock_order {
    use std::cell::RefCell;

    /// What a thread did to a spinlock.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Op {
        Lock,
        Unlock,
    }

    /// One lock operation of the recording thread: the lock's address, what was done to it,
    /// and what the recording's watch read while the lock was held (right after a lock, right
    /// before an unlock).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Step {
        pub(crate) lock: usize,
        pub(crate) op: Op,
        pub(crate) seen: Option<u64>,
    }

    type Watch = Box<dyn Fn(usize) -> Option<u64>>;

    thread_local! {
        static STEPS: RefCell<Option<(Vec<Step>, Watch)>> = const { RefCell::new(None) };
    }

    pub(super) fn taken(lock: &super::SpinLock) {
        note(lock, Op::Lock);
    }

    pub(super) fn released(lock: &super::SpinLock) {
        note(lock, Op::Unlock);
    }

    fn note(lock: &super::SpinLock, op: Op) {
        let lock = lock as *const super::SpinLock as usize;
        STEPS.with(|t| {
            if let Some((steps, watch)) = t.borrow_mut().as_mut() {
                let seen = watch(lock);
                steps.push(Step { lock, op, seen });
            }
        });
    }

    /// Runs `f` and returns this thread's lock operations in it, in order, each with what
    /// `watch` read, given the lock's address, while the lock was held. `watch` must take no
    /// spinlock; it is asked only about locks being taken or released, so it may read the
    /// object holding the lock.
    pub(crate) fn record_watching(
        watch: impl Fn(usize) -> Option<u64> + 'static,
        f: impl FnOnce(),
    ) -> Vec<Step> {
        STEPS.with(|t| *t.borrow_mut() = Some((Vec::new(), Box::new(watch))));
        f();
        STEPS.with(|t| {
            t.borrow_mut()
                .take()
                .map(|(steps, _)| steps)
                .unwrap_or_default()
        })
    }

    /// Runs `f` and returns the addresses of the spinlocks this thread took in it, in order.
    pub(crate) fn record(f: impl FnOnce()) -> Vec<usize> {
        record_watching(|_| None, f)
            .into_iter()
            .filter(|s| s.op == Op::Lock)
            .map(|s| s.lock)
            .collect()
    }
}

/// `seqcount_t` (`d_seq`, the count of `rename_lock`). Writers are serialised by a lock the
/// caller holds, so the count is bumped with a relaxed load and store, as the kernel's plain
/// `s->sequence++`.
pub(crate) struct SeqCount {
    sequence: AtomicU32,
}

impl SeqCount {
    pub(crate) fn new() -> SeqCount {
        SeqCount {
            sequence: AtomicU32::new(0),
        }
    }

    /// The raw value, as a probe reads it.
    pub(crate) fn read(&self) -> u32 {
        self.sequence.load(Ordering::Relaxed)
    }

    /// `read_seqcount_begin()` (3.0 and later): waits for an even count, then `smp_rmb()`.
    pub(crate) fn read_seqcount_begin(&self) -> u32 {
        let mut spins = 0;
        loop {
            let s = self.sequence.load(Ordering::Relaxed);
            if s & 1 == 0 {
                smp_rmb();
                return s;
            }
            cpu_relax(&mut spins);
        }
    }

    /// `__read_seqcount_begin()`: waits for an even count, no barrier (the caller supplies
    /// one).
    #[allow(non_snake_case)]
    pub(crate) fn __read_seqcount_begin(&self) -> u32 {
        let mut spins = 0;
        loop {
            let s = self.sequence.load(Ordering::Relaxed);
            if s & 1 == 0 {
                return s;
            }
            cpu_relax(&mut spins);
        }
    }

    /// `raw_seqcount_begin()` (modern `__d_lookup_rcu`): never waits; clears bit 0 so that a
    /// retry fails if a writer was inside its section. `keep_bit0` is the
    /// `seqcount-begin-keeps-bit0` mutant.
    pub(crate) fn raw_seqcount_begin(&self, keep_bit0: bool) -> u32 {
        let s = self.sequence.load(Ordering::Relaxed);
        smp_rmb();
        if keep_bit0 {
            s
        } else {
            s & !1
        }
    }

    /// `read_seqcount_retry()`: `smp_rmb()`, then compare. `without_rmb` is the
    /// `retry-without-rmb` mutant.
    pub(crate) fn read_seqcount_retry_as(&self, start: u32, without_rmb: bool) -> bool {
        if !without_rmb {
            smp_rmb();
        }
        self.__read_seqcount_retry(start)
    }

    /// `read_seqcount_retry()`: `smp_rmb()`, then compare.
    pub(crate) fn read_seqcount_retry(&self, start: u32) -> bool {
        self.read_seqcount_retry_as(start, false)
    }

    /// `__read_seqcount_retry()`: compare without a barrier (the caller supplies one).
    #[allow(non_snake_case)]
    pub(crate) fn __read_seqcount_retry(&self, start: u32) -> bool {
        self.sequence.load(Ordering::Relaxed) != start
    }

    fn add(&self, n: u32) {
        let s = self.sequence.load(Ordering::Relaxed);
        self.sequence.store(s.wrapping_add(n), Ordering::Relaxed);
    }

    /// `raw_write_seqcount_begin()` / `write_seqcount_begin()`: `seq++; smp_wmb()`.
    pub(crate) fn write_seqcount_begin(&self) {
        self.add(1);
        smp_wmb();
    }

    /// `raw_write_seqcount_end()` / `write_seqcount_end()`: `smp_wmb(); seq++`.
    pub(crate) fn write_seqcount_end(&self) {
        smp_wmb();
        self.add(1);
    }

    /// `write_seqcount_invalidate()` (4.2+; `write_seqcount_barrier()` in 3.0):
    /// `smp_wmb(); seq += 2`.
    pub(crate) fn write_seqcount_invalidate(&self) {
        smp_wmb();
        self.add(2);
    }
}

/// A mutex for the model's sleeping locks (`i_rwsem`, the LRU lock). Poisoning is ignored: a
/// panic in the model is a bug that the panic itself reports.
pub(crate) struct Mutex<T>(
    #[cfg(loom)] loom::sync::Mutex<T>,
    #[cfg(not(loom))] std::sync::Mutex<T>,
);

#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(v: T) -> Mutex<T> {
        #[cfg(loom)]
        return Mutex(loom::sync::Mutex::new(v));
        #[cfg(not(loom))]
        return Mutex(std::sync::Mutex::new(v));
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqcount_moves_as_the_kernel_helpers_do() {
        let s = SeqCount::new();
        let start = s.read_seqcount_begin();
        s.write_seqcount_begin();
        assert_eq!(
            s.raw_seqcount_begin(false),
            start,
            "raw begin clears the writer bit"
        );
        assert!(s.read_seqcount_retry(start));
        assert_eq!(s.raw_seqcount_begin(true), start + 1, "the mutant keeps it");
        s.write_seqcount_end();
        assert_eq!(s.__read_seqcount_begin(), start + 2);
        assert_eq!(s.read(), start + 2);
        s.write_seqcount_invalidate();
        assert_eq!(s.read(), start + 4);
        assert!(!s.read_seqcount_retry(start + 4));
    }

    #[test]
    fn spinlock_excludes() {
        let l = SpinLock::new();
        l.lock();
        assert!(!l.try_lock());
        l.unlock();
        assert!(l.try_lock());
        l.unlock();
    }
}
