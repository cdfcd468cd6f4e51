//! `struct dentry`, `struct qstr` and the RCU hash chains (`hlist_bl`), laid out like
//! include/linux/dcache.h and include/linux/list_bl.h.

use crate::slab::{self, Cached};
use crate::sync::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering, SeqCount, SpinLock};
use std::ptr::NonNull;

// d_flags bits, with the values of 6.1's include/linux/dcache.h for every profile (3.0 numbered
// some differently); events carry them in the profile's numbering (`DFlagsNumbering`).
/// `always_delete_dentry` installed (tmpfs): `retain_dentry()` says no.
pub(crate) const DCACHE_OP_DELETE: u32 = 0x0000_0008;
/// Recently used: the shrinker's walk passes over it once instead of freeing it (3.12+ rotate
/// it on the LRU, earlier walks park it until they end: [`PruneWalk`](crate::PruneWalk)).
pub(crate) const DCACHE_REFERENCED: u32 = 0x0000_0040;
/// On a shrinker's private dispose list.
pub(crate) const DCACHE_SHRINK_LIST: u32 = 0x0000_0400;
/// On the superblock's LRU (or a dispose list).
pub(crate) const DCACHE_LRU_LIST: u32 = 0x0008_0000;
pub(crate) const DCACHE_ENTRY_TYPE: u32 = 0x0070_0000;
pub(crate) const DCACHE_DIRECTORY_TYPE: u32 = 0x0020_0000;
pub(crate) const DCACHE_REGULAR_TYPE: u32 = 0x0040_0000;
/// Killed while on a dispose list: the list's owner frees it (up to 6.7,
/// [`DisposeFree::MayFree`](crate::DisposeFree)).
pub(crate) const DCACHE_MAY_FREE: u32 = 0x0080_0000;
/// Killed: `dentry_unlist()` sets it on every kill (3.6 onwards; 2.6.38 to 3.5's `d_kill()` set
/// `DCACHE_DISCONNECTED` instead, whose events carry the model's 6.1 values all the same,
/// [`DFlagsNumbering`](crate::DFlagsNumbering)).
pub(crate) const DCACHE_DENTRY_KILLED: u32 = 0x0000_8000;

/// `lockref_mark_dead()`'s count.
pub(crate) const LOCKREF_DEAD: i32 = -128;

/// `struct qstr`: a name and its hash. The model hashes with the parent's id as salt (as
/// `full_name_hash(parent, ...)` does since 4.8), so the hash also picks the bucket. A `QStr`
/// is immutable once a dentry points to it; `__d_move` swaps in another one and frees the old
/// one after a grace period, which gives readers the consistent snapshot the kernel gets from
/// `d_seq` plus `smp_load_acquire(&d_name.name)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QStr {
    pub(crate) hash: u32,
    pub(crate) name: InlineName,
}

/// `DNAME_INLINE_LEN` on 64-bit (until 6.14): names shorter than this live in the dentry's
/// `d_iname` (with their NUL), longer ones in a separate allocation. The model keeps short
/// names in the `QStr` the same way (up to this length: it stores no NUL), which spares an
/// allocation and a free per dentry; no event depends on where the bytes are.
const DNAME_INLINE_LEN: usize = 32;

pub(crate) type InlineName = smallvec::SmallVec<[u8; DNAME_INLINE_LEN]>;

impl QStr {
    /// Stored in the dentry's `d_iname`, not a separate allocation (`!dname_external()`): a
    /// name shorter than `DNAME_INLINE_LEN`, which a rename keeps inline (3.0's
    /// `switch_names()` moves the storage along with the name).
    pub(crate) fn is_inline(&self) -> bool {
        self.name.len() < DNAME_INLINE_LEN
    }

    pub(crate) fn new(parent_id: u64, name: &[u8]) -> QStr {
        QStr {
            hash: full_name_hash(parent_id, name),
            name: InlineName::from_slice(name),
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    /// The thread's freed names (external names' `kmalloc()`, and `d_iname` in the dentry's
    /// own allocation in the kernel; a box of its own here).
    static FREE_NAMES: slab::FreeList<QStr> = const { std::cell::RefCell::new(Vec::new()) };
    /// The thread's freed dentries (`dentry_cache`).
    static FREE_DENTRIES: slab::FreeList<Dentry> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Cached for QStr {
    #[cfg(not(loom))]
    fn free_list() -> &'static std::thread::LocalKey<slab::FreeList<QStr>> {
        &FREE_NAMES
    }
}

impl Cached for Dentry {
    #[cfg(not(loom))]
    fn free_list() -> &'static std::thread::LocalKey<slab::FreeList<Dentry>> {
        &FREE_DENTRIES
    }
}

/// A name being looked up (the caller's `struct qstr`, borrowed from the path).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Name<'a> {
    pub(crate) hash: u32,
    pub(crate) name: &'a [u8],
}

impl<'a> Name<'a> {
    pub(crate) fn new(parent_id: u64, name: &'a [u8]) -> Name<'a> {
        Name {
            hash: full_name_hash(parent_id, name),
            name,
        }
    }
}

/// `dentry_cmp()`'s answer: whether a dentry's name is the one looked up. Short names are
/// compared in two fixed-size loads each that overlap in the middle, inlined: a `memcmp`
/// call (the length not known to the compiler) and its setup cost about 30 instructions a
/// lookup that met its name (callgrind).
#[inline(always)]
pub(crate) fn same_name(a: &[u8], b: &[u8]) -> bool {
    /// The first and the last `K` bytes: the whole of slices of `K` to `2 * K` bytes.
    #[inline(always)]
    fn ends<const K: usize>(a: &[u8], b: &[u8]) -> bool {
        a.first_chunk::<K>() == b.first_chunk::<K>() && a.last_chunk::<K>() == b.last_chunk::<K>()
    }
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1..=3 => ends::<1>(a, b) && a.get(1) == b.get(1),
        4..=7 => ends::<4>(a, b),
        8..=15 => ends::<8>(a, b),
        16..=31 => ends::<16>(a, b),
        _ => a == b,
    }
}

/// `full_name_hash(salt, name, len)`: FNV-1a over the salt (the parent's id) and the name;
/// cheap, and good enough to spread buckets.
fn full_name_hash(parent_id: u64, name: &[u8]) -> u32 {
    // The salt and the name in a fold each: a `for` over the two chained tested which half it
    // was in at every byte (a walk hashes every component).
    let step = |h: u32, b: &u8| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    let salted = parent_id.to_le_bytes().iter().fold(0x811c_9dc5, step);
    name.iter().fold(salted, step)
}

/// `struct hlist_bl_node`: `pprev` points at the previous node's `next` or at the bucket head;
/// `d_unhashed()` is `pprev == NULL`.
pub(crate) struct HlistBlNode {
    pub(crate) next: AtomicPtr<Dentry>,
    pub(crate) pprev: AtomicPtr<AtomicPtr<Dentry>>,
}

/// `struct hlist_bl_head` with its bit lock (a separate spinlock here).
pub(crate) struct HlistBlHead {
    pub(crate) first: AtomicPtr<Dentry>,
    pub(crate) lock: SpinLock,
}

impl HlistBlHead {
    pub(crate) fn new() -> HlistBlHead {
        HlistBlHead {
            first: AtomicPtr::new(std::ptr::null_mut()),
            lock: SpinLock::new(),
        }
    }

    /// `hlist_bl_add_head_rcu()`; bucket lock held.
    pub(crate) fn add_head_rcu(&self, n: DPtr) {
        debug_assert!(self.lock.is_locked());
        let first = self.first.load(Ordering::Relaxed);
        n.d_hash.next.store(first, Ordering::Relaxed);
        n.d_hash.pprev.store(ptr_of(&self.first), Ordering::Relaxed);
        // rcu_assign_pointer(): the node's initialisation is published with the link.
        self.first.store(n.as_ptr(), Ordering::Release);
        if let Some(f) = DPtr::new(first) {
            f.d_hash
                .pprev
                .store(ptr_of(&n.d_hash.next), Ordering::Relaxed);
        }
    }

    /// `__hlist_bl_del()`; bucket lock held. `next` is left intact so that a reader standing
    /// on the node still reaches the rest of the chain; `pprev` is left for the caller.
    pub(crate) fn del(&self, n: DPtr) {
        debug_assert!(self.lock.is_locked());
        let next = n.d_hash.next.load(Ordering::Relaxed);
        let pprev = n.d_hash.pprev.load(Ordering::Relaxed);
        // SAFETY: pprev points at the bucket head or at the `next` field of a hashed dentry of
        // this bucket; both outlive this call because the bucket lock is held.
        let prev = unsafe { &*pprev };
        // WRITE_ONCE() in the kernel (address dependencies order the reader); C11 needs release
        // so a reader that loads `next` from here also sees the next node's initialisation.
        prev.store(next, Ordering::Release);
        if let Some(nx) = DPtr::new(next) {
            nx.d_hash.pprev.store(pprev, Ordering::Relaxed);
        }
    }
}

fn ptr_of<T>(r: &T) -> *mut T {
    r as *const T as *mut T
}

/// `struct dentry`, with the fields the protocol touches. Seq-protected fields are relaxed
/// atomics; `d_lock` serialises writers.
pub(crate) struct Dentry {
    /// Model id: stable for this dentry object and never reused; events carry it, never a
    /// pointer. A new dentry for the same name is a new id (a new generation).
    pub(crate) id: u64,
    pub(crate) d_flags: AtomicU32,
    pub(crate) d_seq: SeqCount,
    pub(crate) d_hash: HlistBlNode,
    /// Parent (self for a root). A child holds a reference on its parent.
    pub(crate) d_parent: AtomicPtr<Dentry>,
    pub(crate) d_name: AtomicPtr<QStr>,
    /// The inode number (0 = NULL, a negative dentry).
    pub(crate) d_inode: AtomicU64,
    pub(crate) d_lock: SpinLock,
    /// `d_lockref.count`: changed only under `d_lock` (the lockref cmpxchg fast paths are
    /// folded into the locked slow paths).
    pub(crate) d_count: AtomicI32,
    /// Key of this dentry's place on the superblock LRU (`d_lru`); under the LRU lock.
    pub(crate) d_lru_key: AtomicU64,
    /// This dentry's place on its parent's `d_subdirs`/`d_children` (`d_child`/`d_sib`): a
    /// larger key is nearer the list's head, where `d_alloc()` and `__d_move()` add; changed
    /// under the parent's `d_lock`. Bookkeeping for the walk's order, not state the checker
    /// races on: std's atomic under loom too.
    pub(crate) d_child_key: std::sync::atomic::AtomicU64,
}

impl Dentry {
    pub(crate) fn new(id: u64, flags: u32, name: QStr) -> Dentry {
        Dentry {
            id,
            d_flags: AtomicU32::new(flags),
            d_seq: SeqCount::new(),
            d_hash: HlistBlNode {
                next: AtomicPtr::new(std::ptr::null_mut()),
                pprev: AtomicPtr::new(std::ptr::null_mut()),
            },
            d_parent: AtomicPtr::new(std::ptr::null_mut()),
            d_name: AtomicPtr::new(slab::alloc(name).as_ptr()),
            d_inode: AtomicU64::new(0),
            d_lock: SpinLock::new(),
            d_count: AtomicI32::new(1),
            d_lru_key: AtomicU64::new(0),
            d_child_key: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `d_unhashed()`
    pub(crate) fn d_unhashed(&self) -> bool {
        self.d_hash.pprev.load(Ordering::Relaxed).is_null()
    }

    /// The current name. The caller keeps it from being freed: an RCU read section, or
    /// `d_lock` (which `__d_move` needs to swap it).
    pub(crate) fn d_name(&self) -> &QStr {
        // SAFETY: d_name always points at a live QStr; a replaced one is freed only after a
        // grace period, and the caller is inside a read section or holds d_lock.
        unsafe { &*self.d_name.load(Ordering::Acquire) }
    }

    pub(crate) fn d_parent(&self) -> DPtr {
        DPtr::new(self.d_parent.load(Ordering::Relaxed)).unwrap_or(DPtr(NonNull::from(self)))
    }

    pub(crate) fn count(&self) -> i32 {
        self.d_count.load(Ordering::Relaxed)
    }

    /// Adds `n` to the count; `d_lock` held.
    pub(crate) fn count_add(&self, n: i32) {
        debug_assert!(self.d_lock.is_locked());
        self.d_count.store(self.count() + n, Ordering::Relaxed);
    }

    pub(crate) fn flags(&self) -> u32 {
        self.d_flags.load(Ordering::Relaxed)
    }

    /// Sets and clears `d_flags` bits; `d_lock` held (plain read-modify-write, as in C).
    pub(crate) fn flags_update(&self, set: u32, clear: u32) {
        let f = self.flags();
        self.d_flags.store((f & !clear) | set, Ordering::Relaxed);
    }

    /// `d_is_negative()`: the type bits say "miss" (no inode).
    pub(crate) fn d_is_negative(&self) -> bool {
        self.flags() & DCACHE_ENTRY_TYPE == 0
    }

    /// `d_can_lookup()`: a directory.
    pub(crate) fn d_can_lookup(&self) -> bool {
        self.flags() & DCACHE_ENTRY_TYPE == DCACHE_DIRECTORY_TYPE
    }
}

impl Drop for Dentry {
    fn drop(&mut self) {
        // SAFETY: the name is owned by this dentry; a name swapped out by __d_move was handed
        // to RCU separately, so this is the only free of the current one.
        unsafe { slab::free(self.d_name.load(Ordering::Relaxed)) };
    }
}

/// A pointer to a dentry, the model's `struct dentry *`.
///
/// Invariant, as in the kernel: a `DPtr` is only dereferenced while the dentry cannot be freed,
/// i.e. inside an RCU read section that found it through a hash chain or `d_parent`, or while
/// holding a reference (`d_count`), or under a lock that keeps it alive (the LRU lock for LRU
/// members). Freeing goes through `call_rcu`, so a reader inside a section never sees freed
/// memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DPtr(NonNull<Dentry>);

// SAFETY: dentries are shared between threads by design; every field is an atomic or immutable.
unsafe impl Send for DPtr {}
unsafe impl Sync for DPtr {}

impl DPtr {
    pub(crate) fn new(p: *mut Dentry) -> Option<DPtr> {
        NonNull::new(p).map(DPtr)
    }

    pub(crate) fn alloc(d: Dentry) -> DPtr {
        DPtr(slab::alloc(d))
    }

    pub(crate) fn as_ptr(self) -> *mut Dentry {
        self.0.as_ptr()
    }
}

impl std::ops::Deref for DPtr {
    type Target = Dentry;

    fn deref(&self) -> &Dentry {
        // SAFETY: see the type's invariant: the dentry is alive while a DPtr to it is used.
        unsafe { self.0.as_ref() }
    }
}

#[cfg(test)]
mod tests {
    /// `same_name` is slice equality: every pair of names up to 40 bytes long that are equal,
    /// differ in one byte (at each place), or differ in length.
    #[test]
    fn same_name_is_slice_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(super::same_name(a, a), "{n}");
            for m in 0..=base.len() {
                assert_eq!(super::same_name(a, &base[..m]), n == m, "{n} {m}");
            }
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!super::same_name(a, &b), "{n} at {at}");
                assert!(!super::same_name(&b, a), "{n} at {at}");
            }
        }
    }

    /// `full_name_hash` is FNV-1a over the parent's id (little-endian) and then the name, byte
    /// by byte: the hash events carry and buckets are picked by.
    #[test]
    fn the_name_hash_is_fnv1a_over_the_salt_and_the_name() {
        let fnv = |bytes: &[u8]| {
            let mut h: u32 = 0x811c_9dc5;
            for b in bytes {
                h ^= u32::from(*b);
                h = h.wrapping_mul(0x0100_0193);
            }
            h
        };
        let long: Vec<u8> = (0..=255u8).collect();
        for id in [0, 1, 0x1234_5678_9abc_def0, u64::MAX] {
            for n in [0, 1, 7, 8, 31, 32, 255, 256] {
                let name = &long[..n];
                let joined = [&id.to_le_bytes()[..], name].concat();
                assert_eq!(super::full_name_hash(id, name), fnv(&joined), "{id} {n}");
            }
        }
    }
}
