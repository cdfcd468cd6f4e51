//! The model instance: one superblock with its dcache (hash table, LRU, `rename_lock`), the
//! backing file system, the RCU domain, the clock and the event sink.

use crate::dentry::*;
use crate::error::ModelError;
use crate::event::{Clock, ClockKind, EventSink, NullSink};
use crate::fs::{FsKind, InodeKind, ModelFs, ROOT_INO};
use crate::profile::Profile;
use crate::rcu::Rcu;
use crate::sync::{Mutex, Ordering, SeqCount, SpinLock};
use crate::task::Task;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

/// How to build a [`Dcache`].
#[derive(Clone)]
pub struct DcacheConfig {
    pub profile: Profile,
    pub fs: FsKind,
    /// log2 of the number of hash buckets.
    pub hash_bits: u32,
    /// Where timestamps come from.
    pub clock: ClockKind,
    pub sink: Arc<dyn EventSink>,
}

impl DcacheConfig {
    /// 1024 buckets, monotonic clock, no events.
    pub fn new(profile: Profile, fs: FsKind) -> DcacheConfig {
        DcacheConfig {
            profile,
            fs,
            hash_bits: 10,
            clock: ClockKind::Monotonic,
            sink: Arc::new(NullSink),
        }
    }

    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> DcacheConfig {
        self.sink = sink;
        self
    }

    pub fn with_logical_clock(mut self) -> DcacheConfig {
        self.clock = ClockKind::Logical;
        self
    }

    /// A logical clock read on the calling thread only ([`Clock::LogicalOneThread`]).
    pub fn with_one_thread_clock(mut self) -> DcacheConfig {
        self.clock = ClockKind::LogicalOneThread;
        self
    }
}

/// `s_dentry_lru`: unused dentries, oldest first (keys grow with every insertion).
pub(crate) struct Lru {
    pub(crate) list: BTreeMap<u64, DPtr>,
    pub(crate) next_key: u64,
}

impl Lru {
    /// Puts `d` at the newest end (`list_add()` onto the list's head) under a new key, which
    /// `d` keeps so that `d_lru_del()` finds it; returns the key.
    pub(crate) fn add_newest(&mut self, d: DPtr) -> u64 {
        self.next_key += 1;
        let key = self.next_key;
        self.list.insert(key, d);
        d.d_lru_key.store(key, Ordering::Relaxed);
        key
    }
}

/// A model kernel: one mounted file system and its dcache. Threads work on it through
/// [`Task`]s ([`Dcache::task`]).
pub struct Dcache {
    pub(crate) profile: Profile,
    pub(crate) fs: ModelFs,
    pub(crate) hashtable: Box<[HlistBlHead]>,
    /// `rename_lock` (a seqlock): its lock and its count.
    pub(crate) rename_lock: SpinLock,
    pub(crate) rename_lock_seq: SeqCount,
    pub(crate) lru: Mutex<Lru>,
    /// Stands for every directory's `i_rwsem` at once: namespace operations and `lookup_slow`
    /// are serialised per file system (the kernel does it per directory). RCU lookups and the
    /// shrinker never take it, which is what the races are about.
    pub(crate) i_rwsem: Mutex<()>,
    pub(crate) rcu: Rcu,
    pub(crate) clock: Clock,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) root: DPtr,
    pub(crate) next_id: AtomicU64,
    /// The next [`Dentry::d_child_key`](crate::dentry::Dentry): every `d_subdirs` add takes
    /// one, so the newest add has the largest.
    pub(crate) next_child_key: AtomicU64,
    /// `nr_dentry`: allocated and not yet killed.
    pub(crate) nr_dentry: AtomicUsize,
}

impl Dcache {
    pub fn new(config: DcacheConfig) -> Dcache {
        let buckets = 1usize << config.hash_bits.min(24);
        let root = DPtr::alloc(Dentry::new(1, 0, QStr::new(0, b"/")));
        root.d_parent.store(root.as_ptr(), Ordering::Relaxed);
        root.d_inode.store(ROOT_INO, Ordering::Relaxed);
        root.d_flags.store(DCACHE_DIRECTORY_TYPE, Ordering::Relaxed);
        Dcache {
            profile: config.profile,
            fs: ModelFs::new(config.fs),
            hashtable: (0..buckets).map(|_| HlistBlHead::new()).collect(),
            rename_lock: SpinLock::new(),
            rename_lock_seq: SeqCount::new(),
            lru: Mutex::new(Lru {
                list: BTreeMap::new(),
                next_key: 0,
            }),
            i_rwsem: Mutex::new(()),
            rcu: Rcu::new(),
            clock: match config.clock {
                ClockKind::Monotonic => Clock::monotonic(),
                ClockKind::Logical => Clock::logical(),
                ClockKind::LogicalOneThread => Clock::logical_one_thread(),
            },
            sink: config.sink,
            root,
            next_id: AtomicU64::new(2),
            next_child_key: AtomicU64::new(1),
            nr_dentry: AtomicUsize::new(1),
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn fs_kind(&self) -> FsKind {
        self.fs.kind
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A worker context for the calling thread; `tid` goes into its events.
    pub fn task(&self, tid: u32) -> Task<'_> {
        Task::new(self, tid)
    }

    /// Dentries allocated and not yet killed (`nr_dentry`), the root included.
    pub fn nr_dentry(&self) -> usize {
        self.nr_dentry.load(Ordering::Relaxed)
    }

    /// Dentries on the LRU (unused and cached).
    pub fn nr_unused(&self) -> usize {
        self.lru.lock().list.len()
    }

    /// Creates directories and files through the model's own syscalls, with no events: the
    /// workload's initial tree. Parents must come before their children.
    pub fn populate<'p>(
        &self,
        entries: impl IntoIterator<Item = (&'p str, InodeKind)>,
    ) -> Result<(), ModelError> {
        let t = Task::quiet(self);
        for (path, kind) in entries {
            let r = match kind {
                InodeKind::Dir => t.mkdir(path),
                InodeKind::File => t.create(path),
            };
            r.map_err(|errno| ModelError::Populate {
                path: path.to_owned(),
                errno,
            })?;
        }
        Ok(())
    }
}

impl Drop for Dcache {
    /// Unmount: every dentry still alive is hashed, an ancestor of a hashed one, on the LRU, or
    /// the root (an unhashed unused dentry is killed at once). Free them all; nothing else
    /// runs now. RCU-deferred frees run when the collector goes.
    fn drop(&mut self) {
        let mut live: HashSet<DPtr> = HashSet::new();
        live.insert(self.root);
        let mut chain = |mut d: DPtr| {
            while live.insert(d) {
                d = d.d_parent();
            }
        };
        for b in self.hashtable.iter() {
            let mut node = b.first.load(Ordering::Relaxed);
            while let Some(d) = DPtr::new(node) {
                node = d.d_hash.next.load(Ordering::Relaxed);
                chain(d);
            }
        }
        for d in self.lru.lock().list.values() {
            chain(*d);
        }
        debug_assert_eq!(
            live.len(),
            self.nr_dentry(),
            "dentries leaked or double-counted"
        );
        for d in live {
            // SAFETY: no task is left (they borrow the Dcache), so nothing references these.
            drop(unsafe { Box::from_raw(d.as_ptr()) });
        }
    }
}
