//! Kernel-generation profiles and the one release -> profile table of the project: every place
//! where the protocol differs between the kernels the model covers is one field here, and the
//! protocol code branches on these fields only. Replay, the diff's writer rules and the model
//! checker all pick their profile through [`Profile::for_release`] / [`Profile::named`].
//!
//! A profile is named after the first release of its generation (`linux-4.18` covers 4.18 up to
//! 5.2). Each field says which commit brought its value, by hash and title where the hash was
//! verified (a commit page or the release's source); where only the release is known, the doc
//! says so.

use crate::error::ModelError;

/// When a generation's opening change reached the mainline tree; it decides which generation a
/// release candidate of that release belongs to ([`Profile::for_release`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landing {
    /// Merged in the release's merge window: already in its -rc1 and every later rc.
    MergeWindow,
    /// A fix merged after the last rc: only the final release has it; every rc still belongs to
    /// the generation before.
    LateFix,
}

/// A commit that starts a generation or changes one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Abbreviated hash, empty where it was not verified.
    pub hash: &'static str,
    /// Subject line, or what the change did where the subject is not known.
    pub title: &'static str,
}

impl std::fmt::Display for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.hash.is_empty() {
            write!(f, "{}", self.title)
        } else {
            write!(f, "{} (\"{}\")", self.hash, self.title)
        }
    }
}

/// Who reads `d_inode` for the component, validates it and decides ENOENT (fs/namei.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// 2.6.38 to 3.4: `walk_component()` -> `do_lookup()`: `__d_lookup_rcu(parent, name, &seq,
    /// &inode)` reads `d_inode` inside its own seq section and hands it back validated;
    /// `__follow_mount_rcu()` may re-read it ([`Profile::reread_inode_after_check`]);
    /// `walk_component()` returns -ENOENT for a NULL inode.
    DoLookup,
    /// 3.5 to 5.6: `__d_lookup_rcu()` returns dentry and seq only; `lookup_fast()` reads
    /// `d_inode` (and from 4.x the type bits, `d_is_negative()`), re-checks the dentry's and
    /// the parent's `d_seq` (-ECHILD on failure), then -ENOENT. Since 12f8ad4b0533 ("vfs:
    /// clean up __d_lookup_rcu() and dentry_cmp() interfaces"). `follow_dotdot_rcu()` hands
    /// the walk the parent's inode as read, NULL included.
    LookupFast,
    /// 5.7 to 6.0: `lookup_fast()` reads `d_inode`, re-checks the dentry's and the parent's
    /// `d_seq` (-ECHILD) and returns the dentry; `step_into()` -> `handle_mounts()` then
    /// returns -ENOENT for a NULL inode, the parent's inode from `follow_dotdot_rcu()` (read
    /// before sampling the parent's `d_seq`) included. c153007b7b7a ("teach handle_mounts() to
    /// handle RCU mode"), in Al Viro's pathwalk series that sat in linux-next on 5.6-rc7
    /// (next-20200324) and was merged for 5.7; the shape read in 5.10.13's fs/namei.c.
    HandleMounts,
    /// 6.1+: `lookup_fast()` leaves the dentry's seq in `nd->next_seq` and re-checks only the
    /// parent's; `step_into()` (after `handle_mounts()`) reads `d_inode`, re-checks `nd->next_seq`,
    /// and returns -ENOENT for a NULL inode. Seen in 6.1's fs/namei.c; brought by 03fa86e9f79d
    /// ("namei: stash the sampled ->d_seq into nameidata") and 3bd8bc897161 ("step_into(): move
    /// fetching ->d_inode past handle_mounts()"), both in Al Viro's `pull-work.namei` of 1 August
    /// 2022, sent in the 6.0 merge window: 6.0 may already have this caller (no 6.0 fs/namei.c was
    /// read; the table keeps 6.0 on linux-5.15, with 5.7's caller).
    StepInto,
}

/// How `d_seq` moves around a change of `d_inode` (`dentry_unlink_inode`, `__d_instantiate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InodeSeq {
    /// Up to 4.6: change `d_inode`, then `dentry_rcuwalk_barrier()` = `smp_wmb(); seq += 2`.
    BarrierAfter,
    /// 4.8 to 4.17 `dentry_unlink_inode`: `raw_write_seqcount_begin/end` around the clear only
    /// if the dentry is still hashed, so killing an already-unhashed dentry moves no seq.
    BracketIfHashed,
    /// Always bracketed: a528aca7f359 ("use ->d_seq to get coherency between ->d_inode and
    /// ->d_flags", in 4.7's source) and, for the kill path, 4c0d7cd5c841 ("make sure that
    /// __dentry_kill() always invalidates d_seq, unhashed or not", 4.18).
    Bracket,
}

/// What clears `d_inode` on the kill path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillIput {
    /// Before 4.8: `d_kill()`/`__dentry_kill()` -> `dentry_iput()`: `d_inode = NULL` with no seq
    /// change of its own.
    DentryIput,
    /// 4.8+: `__dentry_kill()` -> `dentry_unlink_inode()` (seq per [`Profile::unlink_inode_seq`]);
    /// `dentry_iput()` is gone in 4.8's source.
    DentryUnlinkInode,
}

/// Where the kill path holds the parent's `d_lock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillParentLock {
    /// 2.6.38 to 6.7: `dentry_kill()` trylocks the parent before `__dentry_kill()`, which
    /// unhashes, unlists and drops the parent's lock before detaching the inode.
    AroundUnhash,
    /// 6.8+: `__dentry_kill()` unhashes and detaches the inode first; only then, "now that it's
    /// negative, ->d_parent is stable", it locks the parent, then the dentry again inside it
    /// (`spin_lock_nested()`), unlists it (`DCACHE_DENTRY_KILLED`) and tests
    /// `DCACHE_SHRINK_LIST` under both, unlocks and frees the dentry, and drops the parent's
    /// count under the parent's lock (`--parent->d_lockref.count`): it returns the parent
    /// still locked when that was the last reference, else unlocks it and returns NULL
    /// (6.8.0's fs/dcache.c:611-628, 6.12's :623-640, 7.1.5's :726-743; 7.2's
    /// `dentry_kill()` keeps the body). `dput()` (7.1's `finish_dput()`) and the shrinker's
    /// `shrink_kill()` go on from that locked parent: `dput()` asks `retain_dentry()` about it,
    /// `shrink_kill()` kills it at once, whatever list it sits on, after `lock_for_kill()`
    /// (6.8.0's :848 and :1050). So a dispose list's dentry takes the ancestors it leaves
    /// unused with it, where up to 6.7 the shrinker put such a parent on its dispose list
    /// (`__dput_to_list()`, which also took a parent still in use off the LRU; 6.8's only
    /// drops its count, as Debian's 6.12 and 7.3.4 rmdir traces show in `d_flags`), or left
    /// it to the list it was already on. With the same series `fast_dput()` drops the last
    /// reference before it asks `retain_dentry()`, which no longer touches the count (6.8.0's
    /// :753-766; up to 6.7 `retain_dentry()` dropped it when it kept the dentry).
    /// 1c18edd1b7a0 ("__dentry_kill(): new locking scheme", Al Viro's work.dcache2): the
    /// kernel test robot's report of a stress-ng regression names it on torvalds/linux.git
    /// master; the count's rules came in the same branch with e9d130d05077 ("make
    /// retain_dentry() neutral with respect to refcounting"), 2f42f1eb9093 ("Call
    /// retain_dentry() with refcount 0") and 15f23734a1de ("fast_dput(): new rules for
    /// refcount"), `shrink_kill()` with 3fcf535626a4 ("centralize killing dentry from shrink
    /// list"), hashes from linux-next's list of that branch. 6.7 was not read: 6.1.0's source
    /// has the old scheme, 6.8.0's the new.
    AfterUnlinkInode,
}

/// The shape of `__d_drop` in the source. What a kernel's probes can see of it is not the
/// profile's business: a build may inline `__d_drop` into its callers (Debian's 6.1 does, so its
/// attached out-of-line copy never fires); the comparison then counts only the probes the kernel
/// trace showed (`tracer_analysis::agreement`), and the diff's writer rules explain `___d_drop`
/// inside a traced `__d_drop` and alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DDropShape {
    /// Up to 4.14: one out-of-line `__d_drop` does unlink, `pprev = NULL` and the invalidate;
    /// the model emits one `__d_drop` event per call.
    Single,
    /// The split of 4.17's and 6.1's sources: `__d_drop` calls static `___d_drop` (bucket lock
    /// and unlink only), then sets `pprev = NULL` and invalidates `d_seq` itself; `__d_move`
    /// calls `___d_drop` directly. The model emits a `__d_drop` event per call with the
    /// `___d_drop` event inside it, as the source calls them. 4.15's source (4.15.18) has an
    /// earlier split that no profile models: its `___d_drop` also invalidates, so its
    /// `__d_move` moves a hashed dentry's `d_seq` by 4 as [`DDropShape::Single`] does; the
    /// table keeps 4.15 and 4.16 (not read) on linux-4.12, with 4.8's shape.
    Split,
}

/// Whether `d_delete()` of a dentry others still hold (it cannot turn negative in place) tests
/// `d_unhashed()` before calling `__d_drop()`. An out-of-line `__d_drop` runs, and its probe
/// fires, only if called: on a dentry already unhashed, only with [`DDeleteDrop::Always`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DDeleteDrop {
    /// Up to 4.16: `if (!d_unhashed(dentry)) __d_drop(dentry);` after the `i_lock` trylock
    /// loop (3.0.1's fs/dcache.c, 4.8.15's, 4.16.13's :2425).
    IfHashed,
    /// 4.17 on: `i_lock`, then `d_lock`, no trylock loop, and `__d_drop()` called
    /// unconditionally, its own `d_unhashed()` test deciding (4.17.0's fs/dcache.c:2450,
    /// 6.7.3's :2566), from "d_delete(): get rid of trylock loop" (Al Viro, 4.17: between
    /// 4.16.13 and 4.17.0; its hash not pinned here). [`Profile::LINUX_4_17`] opens with it.
    Always,
}

/// Where a `__d_move` that calls `__d_drop` ([`DDropShape::Single`]) puts the moved dentry on
/// its new hash chain. Nothing traced sees the difference (both happen inside the `d_seq`
/// sections): a reader meeting the dentry on its new chain mid-move sees its old name in one,
/// its new name in the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DMoveRehash {
    /// 2.6.38 (3.0.1's fs/dcache.c): `__d_drop(dentry)`, `__d_rehash(dentry)` on the target's
    /// chain under its old name, `__d_drop(target)`, then the names switch.
    BeforeNameSwitch,
    /// 4.8's source: `__d_drop` both, copy the name, then `__d_rehash(dentry)` by its new name
    /// (the split shape of 4.15+ also rehashes after the name; the commit between 3.0 and 4.8
    /// that moved it is not pinned down here).
    AfterNameCopy,
}

/// Which function the kill path's probe sits on, and who checks that the dentry is still unused
/// once the locks for the kill are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillEntry {
    /// Up to 7.1 (7.1.5's fs/dcache.c): the callers check first (`dput()`, the shrink list, and
    /// from 6.8 `lock_for_kill()` in `finish_dput()`/`shrink_kill()`), then call
    /// `__dentry_kill()`, which only kills: a dentry that gained a user is never entered.
    CallerChecks,
    /// 7.2+ (7.2.6's and 7.3.4's fs/dcache.c): `__dentry_kill()` is gone; `dentry_kill()` runs
    /// `lock_for_kill()` first, which gives up (unlocking) when the count is not 0, then kills
    /// in 6.8's order. Its callers no longer check, so it is entered and gives up where a
    /// dentry is still in use: in every tmpfs unlink and rmdir (`d_make_discardable()` drops
    /// the pin, then `finish_dput()` while `vfs_unlink()`'s caller holds the dentry; what
    /// Debian's 7.3.4 traces show before each tmpfs `d_delete`), and for a dentry that gained
    /// a user while on a shrink list (`shrink_dentry_list()`).
    DentryKillChecks,
}

/// Which end of a dispose list an isolation adds a dentry to. `shrink_dentry_list()` always
/// takes `list->prev` (the tail), so this decides the kill order of several dentries isolated
/// in one walk. The prune walk ([`Profile::dispose_add`]) and `shrink_dcache_parent()`
/// ([`Profile::parent_dispose_add`]) changed in different releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisposeAdd {
    /// `list_move_tail()` onto the list: the dentry isolated last is killed first.
    Tail,
    /// `list_move()` or `list_add()` onto the list: the dentry isolated first is killed first.
    Head,
}

/// How the shrinker's `prune_dcache_sb()` walks the superblock's LRU, oldest first, and what it
/// does with a dentry `dput()` marked `DCACHE_REFERENCED` (the LRU's second chance). Its
/// isolations go onto the dispose list at [`Profile::dispose_add`]'s end either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneWalk {
    /// 2.6.38 to 3.11: no list_lru. The walk takes `s_dentry_lru`'s tail (its oldest) under
    /// `dcache_lru_lock` until the LRU is empty or `count` dentries went onto its `tmp` dispose
    /// list; a referenced dentry loses the flag and moves to a private `referenced` list, which
    /// `list_splice()` puts back at the LRU's head (its newest end) only after the walk, so one
    /// walk never isolates it. `count` counts the isolations only, a dentry still in use
    /// among them (the walk does not look at `d_count`; `shrink_dentry_list()` takes such a
    /// one off the list). A failed `spin_trylock()` of `d_lock` drops the LRU lock and
    /// restarts at the tail (`goto relock`). 2.6.38's and 3.0.1's `__shrink_dcache_sb()`
    /// (fs/dcache.c:740 and :723, called by `prune_dcache()` with `DCACHE_REFERENCED`);
    /// 3.5's, 3.10.105's and 3.11.0's `prune_dcache_sb()` (:862, :823, :812: the same body
    /// after b48f03b319ba folded `__shrink_dcache_sb()` back into it).
    ReferencedList,
    /// 3.12+: `list_lru_walk_node()` with `dentry_lru_isolate()`: `nr_to_walk` counts every
    /// dentry visited; a failed trylock skips it (`LRU_SKIP`), an in-use one leaves the LRU
    /// (`LRU_REMOVED`), a referenced one loses the flag and moves to the list's newest end
    /// (`LRU_ROTATE`), where the same walk can meet it again and isolate it. 3.12.0's
    /// fs/dcache.c:952 and :1022, mm/list_lru.c:67 (the rotation's `list_move_tail()` at :97);
    /// the same in 4.0.0, 4.19.1, 6.1.0 and 7.1.5. "dcache: convert to use new lru list
    /// infrastructure" (Dave Chinner, in Glauber Costa's memcg-aware shrinker series merged
    /// through -mm for 3.12; its mainline hash not pinned) brought it: 3.11.0's walk is the
    /// one above. [`Profile::LINUX_3_12`] opens with it.
    ListLru,
}

/// What `dput()` does to `DCACHE_REFERENCED` when it keeps a dentry cached on its last
/// reference: the mark is the LRU's second chance, which the prune walk ([`PruneWalk`]) spends
/// before it isolates the dentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DputReferenced {
    /// Up to 4.11: `dput()` marks the dentry at every retained last reference, then
    /// `dentry_lru_add()` puts it on the LRU if it is not there (4.4.155's fs/dcache.c:809-811,
    /// 4.8.15's :782-784, 4.10.17's :782-784, 4.11.0's the same lines), so a dentry used once
    /// already has the mark: the shrinker meets it twice before it isolates it.
    EveryRetain,
    /// 4.12+: `dentry_lru_add()` puts a dentry not yet on the LRU there unmarked and marks only
    /// one already on it (4.12.0's fs/dcache.c:418-424, called by `dput()` at :784; 4.14.177's
    /// :463-468; from 4.17 the same test in `retain_dentry()`, 6.1.0's :684-687). 563f40019d16
    /// ("fs: don't set *REFERENCED on single use objects"): its diff, on a commit page of a
    /// kernel fork, moves the mark into `dentry_lru_add()` at 4.11's line 419. 4.11.0 marks at
    /// every retain and 4.12.0 does not, so it came in the 4.12 merge window.
    /// [`Profile::LINUX_4_12`] opens with it.
    OnLru,
}

/// When `drop_slab()` (`echo 2 > /proc/sys/vm/drop_caches`) stops: it calls every shrinker
/// again while a pass over them frees enough. The count is what the shrinkers return: from 3.12
/// the dcache's walk's `LRU_REMOVED`s; up to 3.11 the drop in each shrinker's own count, which
/// the dcache rounds down to hundreds (fewer than 100 unused dentries: no further pass), where
/// the model counts isolations (`Task::shrink_slab()`'s doc says why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropSlabLoop {
    /// 2.6.38 to 5.14: `while (freed > 10)` (2.6.38's fs/drop_caches.c:40-42; 4.0.0's
    /// mm/vmscan.c:422-435 in `drop_slab_node()`; 5.3.1's :740-752, 5.4.0's :743-755,
    /// 5.10.44's :695-710 and 5.10.198's :727-742 (the 5.10 stable line kept it), 5.11.0's
    /// :693-708, 5.12.9's :694-709, 5.14-rc5's :894-909). A pass of the model's small caches
    /// seldom frees more than 10 objects, so the loop mostly stops after one.
    MoreThanTen,
    /// 5.15+: `while ((freed >> shift++) > 1)`: the n-th further pass runs only if the pass before
    /// it freed at least 2^n, so the loop ends even when something keeps refilling the caches
    /// (5.15.55's and 5.15.85's mm/vmscan.c:939-955, 5.19.0's :951-967, 6.0.1's :1012-1028, 6.1.0's
    /// :1023-1039; 6.12's :420-434 runs it in `drop_slab()` over the nodes). 1399af7e5489 ("mm,
    /// vmscan: guarantee drop_slab_node() termination"): the hash is the one a kernel.org
    /// post-receive mail of 4 September 2021 (groeck/linux-staging's master, the 5.15 merge window)
    /// lists under that title; 5.14-rc5 has the old loop. [`Profile::LINUX_5_15`] opens with it.
    DoublingThreshold,
}

impl DropSlabLoop {
    /// Whether `drop_slab()` runs another pass after pass `pass` (0 for the first) freed
    /// `freed`.
    pub fn again(self, freed: usize, pass: u32) -> bool {
        match self {
            DropSlabLoop::MoreThanTen => freed > 10,
            DropSlabLoop::DoublingThreshold => freed.checked_shr(pass).unwrap_or(0) > 1,
        }
    }
}

/// When the shrinker drops the reference a killed dentry held on its parent, and where a
/// parent left unused goes. 6.8+ kills such a parent at once instead
/// ([`KillParentLock::AfterUnlinkInode`]'s `shrink_kill()`), whatever this says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkParent {
    /// Up to 5.2: after the child's kill, and the parent dies next (3.0's
    /// `try_prune_one_dentry()`; 4.x's and 5.2.1's `shrink_dentry_list()` loop
    /// `dentry_kill()` up the ancestors, read in 4.19.1 and 5.2.1).
    KilledNext,
    /// 5.3 to 6.7 (5.3.1's, 5.10.13's and 6.1.0's fs/dcache.c): `__dput_to_list()` on the
    /// parent, whose `d_lock` `shrink_lock_dentry()` holds, before `__dentry_kill()` of the child;
    /// `d_shrink_add()` puts it at the list's head, so it dies after everything already on
    /// the list. From "Teach shrink_dcache_parent() to cope with mixed-filesystem shrink
    /// lists" (Al Viro; a99d7580f66e on his work.dcache branch in the report of a regression
    /// it caused; he answered that it was already fixed in 9bdebc2bd1c4, the commit with its
    /// fixes folded in), pulled with work.dcache2 for 5.3 ("[git pull] vfs.git - dcache and
    /// mountpoint stuff", 20 July 2019): 5.2.1's fs/dcache.c still has the ancestor loop,
    /// 5.3.1's has `__dput_to_list()` before `__dentry_kill()`. [`Profile::LINUX_5_3`] opens
    /// with it.
    DputToListFirst,
}

/// How `shrink_dentry_list()` locks a dispose list's dentry for its kill, and when it takes
/// the dentry off the list (`d_shrink_del()`, which clears `DCACHE_SHRINK_LIST` and
/// `DCACHE_LRU_LIST`): before or after the parent's `d_lock`. A concurrent `dput()` that
/// sees the flags clear puts the dentry back on the LRU; one that sees them set leaves it to
/// the list's owner. Up to 6.7 only: 6.8's `lock_for_kill()`
/// ([`KillParentLock::AfterUnlinkInode`]) locks no parent before the kill, and the model has
/// no `i_lock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkLock {
    /// Up to 4.16 in the model: off the list first, then `dentry_kill()` locks the parent (a
    /// trylock, else the relock, looking again when the parent changed) and leaves the dentry
    /// to whoever took it meanwhile, as 3.14.40's `shrink_dentry_list()` (fs/dcache.c:855)
    /// does. 3.15 to 4.16 take the parent's `d_lock` first (`lock_parent()`, which looks again
    /// too) and `d_shrink_del()` under it (4.8.15's fs/dcache.c:939-1000), from 046b961b45f9
    /// "shrink_dentry_list(): take parent's ->d_lock earlier" (Al Viro, 3.15); the model has
    /// no profile opening in 3.15 and keeps the older order there: it differs only in the
    /// flags a concurrent `dput()` sees while the parent's lock is awaited.
    ClearFirst,
    /// 4.17 to 6.7: `shrink_lock_dentry()` first, which gives up, leaving the dentry unused
    /// and off every list, when the count is no longer 0 or the parent changed under the
    /// relock ("somebody had grabbed it"); `d_shrink_del()` after it either way (4.17.0's
    /// fs/dcache.c:1009-1085, 6.1.0's and 6.7.3's alike). From 3b3f09f48ba7 "get rid of
    /// trylock loop in locking dentries on shrink list" (Al Viro, 4.17). 6.8's 339e9e13530b
    /// "don't try to cut corners in shrink_lock_dentry()" replaced it with `lock_for_kill()`.
    /// [`Profile::LINUX_4_17`] opens with it.
    ShrinkLockDentry,
}

/// How the owner of a dispose list knows that a dentry someone else killed while it sat on the
/// list is the owner's to free (`__dentry_kill()` leaves such a dentry to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisposeFree {
    /// Up to 6.7: `__dentry_kill()` marks it `DCACHE_MAY_FREE` under its `d_lock`, and
    /// `shrink_dentry_list()` frees a dead dentry so marked (4.4.155's fs/dcache.c:571 and
    /// :996, 6.1.0's :616 and :1190). The flag came in 3.15 (3.15.5's include/linux/dcache.h
    /// has it at bit 23 and its fs/dcache.c the hand-over, :488 and :859; 3.14.1's and
    /// 3.14.40's have neither, so 3.14.y never took it; the commit is not pinned): up to 3.14
    /// the kill took the dentry off the dispose list and freed it itself. The model's older
    /// profiles keep the later hand-over, which frees the same dentry one step later.
    MayFree,
    /// 6.8+: no such mark; `shrink_dentry_list()` frees a dentry `dentry_unlist()` marked
    /// `DCACHE_DENTRY_KILLED`, which with 6.8's kill order (the unlist and the test of
    /// `DCACHE_SHRINK_LIST` in one `d_lock` section) says the same (6.8.0's fs/dcache.c:1068,
    /// 6.12's :1080, 6.18.2's :1134, 7.1.5's :1215; 6.8.0's include/linux/dcache.h has no
    /// `DCACHE_MAY_FREE`). 1b327b5ac57c "kill DCACHE_MAY_FREE" (Al Viro's [PATCH 19/20] of
    /// 24 November 2023, on his work.dcache branch beside 1c18edd1b7a0, read in linux-next's
    /// history of 20 December 2023). [`Profile::LINUX_6_8`] opens with it.
    DentryKilled,
}

/// The numbering of `d_flags` in the kernel's include/linux/dcache.h, which the events carry
/// raw (the probes read `d_flags` out of the dentry; the diff reads none of it, `tracer
/// export` prints it). The model keeps 6.1's values; [`Self::kernel`] renumbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DFlagsNumbering {
    /// 4.x to 6.14 (4.4.155's and 6.1.0's `#define`s, 6.12's and 6.14.0's `BIT()`s):
    /// `DCACHE_DENTRY_KILLED` is bit 15, `DCACHE_LRU_LIST` bit 19, the entry type bits
    /// 20..22, `DCACHE_MAY_FREE` (up to 6.7, [`DisposeFree::MayFree`]) bit 23 (4.4.155's
    /// include/linux/dcache.h:209 and :228, 6.1.0's :188 and :207, 6.12's :197). The older
    /// profiles use it for their 2.6.38 to 3.x releases too, where the numbering differs: up
    /// to 3.11 neither `DCACHE_LRU_LIST` nor the type bits exist (3.5's bit 19 is
    /// `DCACHE_NEED_LOOKUP`), 3.6 to 3.12 number `DCACHE_DENTRY_KILLED` bit 20 (3.6's, 3.10.105's
    /// and 3.12.0's headers; 3.13.11's has bit 15), up to 3.5 a kill sets
    /// `DCACHE_DISCONNECTED` instead (3.0.1's and 3.5's `d_kill()`); 3.12 has
    /// `DCACHE_LRU_LIST` at bit 19 (3.12.0's include/linux/dcache.h:211), and 3.13 to 3.19
    /// number the directory type `1 << 20` where 4.0 has `2 << 20` (3.19.8's :219, 4.0.0's
    /// :220). Their events carry the model's 6.1 values.
    Bit19Lru,
    /// 9748cb2dc393 ("VFS: repack DENTRY_ flags.", NeilBrown; quoted by "dcache: convert
    /// dentry flag macros to enum", 8 April 2025, for 6.15) closed the holes below bit 18:
    /// `DCACHE_LRU_LIST` is bit 18, the type bits 19..21 (6.18.2's, 6.19.0's and 7.1.5's
    /// `enum dentry_flags`; Debian's 7.3.4 traces carry 0x40000 on the LRU), and
    /// `DCACHE_DENTRY_KILLED` bit 14 (6.18.2's include/linux/dcache.h:210, 7.1.5's :221). The
    /// other flags the model keeps below bit 18 (`DCACHE_OP_DELETE`, `DCACHE_REFERENCED`,
    /// `DCACHE_SHRINK_LIST`) did not move; bit 23 is now `DCACHE_OP_REAL` (6.18.2's :224,
    /// 7.1.5's :235), and the model sets no `DCACHE_MAY_FREE` on these releases
    /// ([`DisposeFree::DentryKilled`]). 6.14.0's include/linux/dcache.h:217 still has
    /// `DCACHE_LRU_LIST` at `BIT(19)`; linux-next's fs-current took the commit on 24 March
    /// 2025, the opening of the 6.15 merge window. 6.15.0's header itself was not read (no
    /// 6.15 tree small enough to fetch); two later sources agree: "dcache: convert dentry
    /// flag macros to enum" (8 April 2025, on Linus' tree two days after 6.15-rc1) shows the
    /// repacked values as mainline's, and drgn's 644a47ba5087 picks the new values for
    /// kernels from 6.15 on, naming 9748cb2dc393 as in v6.15.
    /// [`Profile::LINUX_6_15`] opens with it.
    Bit18Lru,
}

impl DFlagsNumbering {
    /// The kernel's `d_flags` for the model's (6.1's numbering).
    pub fn kernel(self, model: u32) -> u32 {
        use crate::dentry::{DCACHE_DENTRY_KILLED, DCACHE_ENTRY_TYPE, DCACHE_LRU_LIST};
        match self {
            DFlagsNumbering::Bit19Lru => model,
            DFlagsNumbering::Bit18Lru => {
                let moved = DCACHE_LRU_LIST | DCACHE_ENTRY_TYPE | DCACHE_DENTRY_KILLED;
                (model & !moved) | ((model & moved) >> 1)
            }
        }
    }
}

/// What `d_add()` is in the source: which writers a lookup that hashes its result runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DAddShape {
    /// Up to 4.6: a `static inline` of include/linux/dcache.h, `d_instantiate(); d_rehash();`
    /// (3.0.1's source): the exported `d_instantiate()` and `__d_instantiate()` run for every
    /// call, a negative one too (its `d_inode = NULL` takes the barrier as well), and the hash
    /// is a second `d_lock` section.
    InstantiateThenRehash,
    /// 4.7+ (4.7.4's, 4.8's, 4.18's, 6.1's and 6.12's sources): the exported `d_add()` calls
    /// static `__d_add()`, which brackets `__d_set_inode_and_type()` itself and hashes in one
    /// `d_lock` section; no `__d_instantiate()`. Out of line with the parallel lookups series
    /// of 4.7 (its commit not pinned here).
    InnerDAdd,
}

/// What a non-exchanging `__d_move` does to the target (the dentry being replaced), which then
/// dies unhashed on its last `dput`: it decides the name and parent its kill events carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DMoveTarget {
    /// 3.0: `switch_names()`, a swap of the hashes and of `d_parent`: the target gets the old
    /// hash and parent, and the old name unless both names are inline (shorter than
    /// `DNAME_INLINE_LEN`), when only the target's is copied into the moved dentry and the
    /// target keeps its own (3.0.1's and 3.7's fs/dcache.c).
    SwapNameAndParent,
    /// 4.8: the target keeps its name but gets the old parent.
    KeepNameSwapParent,
    /// "make non-exchanging __d_move() copy ->d_parent rather than swap them" (in 4.17's
    /// source): the target keeps name and parent; the parents' references follow the dentry.
    KeepNameAndParent,
}

/// Where a namespace operation's lookup (`__lookup_hash()`, and up to 4.6 `lookup_slow()`)
/// checks `IS_DEADDIR()` after a `d_lookup()` miss, for a directory removed under it. 4.7+'s
/// `__lookup_slow()` and `lookup_open()` check before `d_alloc_parallel()` whatever this says
/// ([`Profile::d_alloc_parallel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadDirCheck {
    /// 2.6.38 to 3.4's `d_alloc_and_lookup()` and 4.17+'s `__lookup_hash()` (4.17.0's and
    /// 4.18's fs/namei.c): -ENOENT before `d_alloc()`, nothing allocated.
    BeforeAlloc,
    /// 3.5.0's, 3.6's, 3.10.105's, 4.4.155's, 4.7.4's and 4.8.15's fs/namei.c: on a miss
    /// `lookup_dcache()` (or, from 4.7, `__lookup_hash()` itself) allocates with `d_alloc()`,
    /// then `lookup_real()` finds the directory dead and `dput()`s the allocation, a
    /// `__dentry_kill` of a never-hashed negative dentry. Came with the atomic-open
    /// preparations of 3.5 (Miklos Szeredi's split of `do_lookup()`, 697f514df10b "vfs: split
    /// do_lookup()"; the commit that added `lookup_real()` itself is not pinned here). Gone by
    /// 4.17.0, which checks first; the release between 4.9 and 4.17 that folded
    /// `lookup_real()` into `__lookup_hash()` was not read, so the table keeps 4.9 to 4.16 on
    /// linux-4.8's and linux-4.12's `AfterAlloc`.
    AfterAlloc,
}

/// How tmpfs (shmem) pins the dentry of every file it creates, so that the dcache, its only
/// directory structure, never forgets it, and how unlink drops that pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmpfsPin {
    /// Up to 6.18 (3.0.1's, 6.12's and 6.18.2's mm/shmem.c and fs/libfs.c): `shmem_mknod()`
    /// calls the exported `d_instantiate()` and then `dget()` ("Extra count - pin the dentry
    /// in core"); `simple_unlink()` drops the pin with `dput()`.
    DgetAfterInstantiate,
    /// 6.19+ (6.19.0's, 7.1.3's and 7.1.5's sources): `shmem_mknod()` calls
    /// `d_make_persistent()`, which runs `__d_instantiate()` directly, takes the pin and marks
    /// the dentry `DCACHE_PERSISTENT` in the same `d_lock` section, and rehashes it if it is
    /// unhashed; no `d_instantiate()` runs, so a kernel trace shows the create's
    /// `__d_instantiate` alone. `simple_unlink()` drops the pin with `d_make_discardable()`,
    /// a decrement under `d_lock` (the model's `dput` takes it too, so only the name changes).
    /// bacdf1d70bbe brought the two helpers (see [`Profile::LINUX_6_19`]).
    Persistent,
}

/// Deliberately broken variants of a profile, for the model checker to prove it catches them.
/// All false in every named profile. Two catalogue bugs are profile fields instead, because a
/// real release had them: `step-into-reread` ([`Profile::reread_inode_after_check`]) and
/// `unhashed-kill-no-bump` ([`InodeSeq::BracketIfHashed`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// The kill path clears `d_inode` before it unhashes the dentry, outside any `d_seq`
    /// bracket.
    pub kill_clear_before_unhash: bool,
    /// `__d_drop` unhashes without invalidating `d_seq`, and the kill path clears `d_inode`
    /// without a bracket.
    pub drop_without_invalidate: bool,
    /// `__d_drop` unhashes without invalidating `d_seq`; the kill path's bracket stays.
    pub d_drop_no_invalidate: bool,
    /// `__d_lookup_rcu` skips its `d_unhashed()` check.
    pub lookup_no_unhashed_check: bool,
    /// The caller drops its re-check of the child's `d_seq` after reading `d_inode`.
    pub no_child_seq_recheck: bool,
    /// `raw_seqcount_begin()` does not clear bit 0: a reader can validate against the odd count
    /// of a writer still inside its section.
    pub seqcount_begin_keeps_bit0: bool,
    /// `read_seqcount_retry()` without its `smp_rmb()`.
    pub retry_without_rmb: bool,
}

/// The protocol of one kernel generation. Build one with [`Profile::named`] or
/// [`Profile::for_release`]; tweak fields (mutants) for experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Profile name, one of [`Profile::NAMES`]: `linux-` and the generation's first release.
    pub name: &'static str,
    /// The generation's first release as (major, minor, sublevel), sublevel only for 2.6.x.
    pub since: (u32, u32, u32),
    /// The change that opens the generation.
    pub commit: Commit,
    /// Whether that change came in the merge window or as a late fix, see [`Landing`].
    pub landing: Landing,
    /// 2.6.38 to 3.4 `__d_lookup_rcu` uses `read_seqcount_begin()` (waits for an even count;
    /// 3.0.1's and 3.4.4's source); 3.5.0's, 3.6's and 4.7's sources use
    /// `raw_seqcount_begin()` (never waits, clears bit 0), the helper of 4f988f152ee0
    /// ("seqlock: add 'raw_seqcount_begin()' function"), already in 3.4.4's seqlock.h. The
    /// commit that switched `__d_lookup_rcu` to it, in 3.5, is not pinned down here.
    pub reader_waits_even_seq: bool,
    /// See [`Caller`].
    pub caller: Caller,
    /// The RCU-walk caller decides ENOENT from the type bits (`d_is_negative()`, 4.7 to 5.6's
    /// `lookup_fast()`: read before the `d_seq` re-check) instead of the NULL inode (3.0's
    /// `walk_component()`, 5.7's `handle_mounts()`, 6.1's `step_into()`).
    pub enoent_from_type_bits: bool,
    /// The `step-into-reread` bug, in released 2.6.39 and 3.0-rc1..rc7: after the lookup
    /// validated the inode, `__follow_mount_rcu()` starts with `*inode = path->dentry->d_inode`,
    /// an unvalidated re-read, and the caller returns -ENOENT for NULL (Hugh Dickins' report).
    /// Came with 62a7375e5d7 (2.6.39-rc1); fixed for 3.0 by "vfs: fix race in rcu lookup of
    /// pruned dentry" (reload only after crossing a mount point).
    pub reread_inode_after_check: bool,
    /// 4.7+: `lookup_slow()` and `lookup_open()` (open with `O_CREAT`) look the name up again
    /// through `d_alloc_parallel()`, whose lookup half is `__d_lookup_rcu()` (the parallel
    /// lookups series, 84e710da2a1d "parallel lookups machinery, part 2"); before, `d_lookup()`
    /// alone.
    pub d_alloc_parallel: bool,
    /// See [`DeadDirCheck`].
    pub dead_dir_check: DeadDirCheck,
    /// See [`KillIput`].
    pub kill_iput: KillIput,
    /// See [`KillParentLock`].
    pub kill_parent_lock: KillParentLock,
    /// `d_seq` around the clear in `dentry_unlink_inode` (the `d_delete` path in every
    /// generation, the kill path from 4.8).
    pub unlink_inode_seq: InodeSeq,
    /// `d_seq` around setting `d_inode` in `__d_instantiate`/`__d_add`.
    pub instantiate_seq: InodeSeq,
    /// See [`DDropShape`].
    pub d_drop_shape: DDropShape,
    /// See [`DDeleteDrop`].
    pub d_delete_drop: DDeleteDrop,
    /// See [`DAddShape`].
    pub d_add: DAddShape,
    /// See [`DMoveTarget`].
    pub d_move_target: DMoveTarget,
    /// See [`DMoveRehash`].
    pub d_move_rehash: DMoveRehash,
    /// 6.19+ `d_instantiate()` takes `d_lock` around `__d_instantiate()`, which up to 6.18
    /// takes it itself (6.12's and 6.18.2's sources, and the 3.x and 4.x excerpts seen through
    /// the code search): the `__d_instantiate` probe then fires inside the lock, not before it.
    pub caller_locks_d_instantiate: bool,
    /// 6.19+ `__d_lookup_rcu()` checks `d_unhashed()` after the name compare instead of right
    /// after the parent (3.5's to 6.18.2's order, as 6.1 has it). Both reads come after the
    /// `d_seq` sample, inside the section the caller re-checks, and no hook lies between them:
    /// the order is kept for fidelity; no event differs.
    pub unhashed_check_after_name: bool,
    /// See [`TmpfsPin`].
    pub tmpfs_pin: TmpfsPin,
    /// See [`KillEntry`].
    pub kill_entry: KillEntry,
    /// Where the prune walk (`prune_dcache_sb()`) puts an isolated dentry. [`DisposeAdd::Tail`]
    /// up to 3.19: the walk's `tmp` list in 3.5's, 3.10.105's and 3.11.0's fs/dcache.c, then
    /// `d_lru_shrink_move()`'s `list_move_tail()` (3.12.0's, 3.14.1's and 3.19.8's;
    /// fs/dcache.c:415 in 3.19.8). [`DisposeAdd::Head`] from 4.0 (4.0.0's, 4.4.155's,
    /// 4.19.1's, 6.12's and 7.1.5's): `d_lru_shrink_move()` goes through
    /// `list_lru_isolate_move()`, a `list_move()` (4.0.0's mm/list_lru.c:143), so the LRU's
    /// oldest dies first. "list_lru: add helpers to isolate items" (Vladimir Davydov, -mm v2 of
    /// 19 January 2015; its hash not pinned) made that change (4.0.0's fs/dcache.c:418);
    /// [`Profile::LINUX_4_0`] opens with it.
    pub dispose_add: DisposeAdd,
    /// See [`PruneWalk`].
    pub prune_walk: PruneWalk,
    /// See [`DputReferenced`].
    pub dput_referenced: DputReferenced,
    /// See [`DropSlabLoop`].
    pub drop_slab_loop: DropSlabLoop,
    /// Where `shrink_dcache_parent()` puts an unused child it collects, as the order it kills
    /// them in. [`DisposeAdd::Head`] up to 3.2, with no dispose list: `select_parent()` moves
    /// each unused child to the LRU's tail (`dentry_lru_move_tail()`), and
    /// `__shrink_dcache_sb(sb, &found, 0)` takes them back from that tail onto its `tmp` list
    /// with `list_move_tail()`; reversed twice, the child the walk met first dies first
    /// (2.6.38's fs/dcache.c:1151, :1234, :751, :772; 3.0.1's :1149, :1218; 3.2.0's :1121,
    /// :1189). [`DisposeAdd::Tail`] from 3.3 to 3.11: `select_parent()` moves each onto a
    /// dispose list with `dentry_lru_move_list()`, a `list_move_tail()` (3.3.8's :1131,
    /// 3.5's, 3.10.105's, 3.11.0's :1142); [`Profile::LINUX_3_3`] opens with it.
    /// [`DisposeAdd::Head`] again from 3.12: `d_walk()`'s `select_collect()` calls
    /// `d_shrink_add()`, a `list_add()` (3.12.0's fs/dcache.c:1441, and 3.14.1's, 3.19.8's,
    /// 4.0.0's, 5.3.1's and 6.1.0's); [`Profile::LINUX_3_12`] opens with it. Either head
    /// shape kills the child the walk meets first (the newest) first.
    pub parent_dispose_add: DisposeAdd,
    /// See [`ShrinkParent`].
    pub shrink_parent: ShrinkParent,
    /// See [`ShrinkLock`].
    pub shrink_lock: ShrinkLock,
    /// See [`DisposeFree`].
    pub dispose_free: DisposeFree,
    /// See [`DFlagsNumbering`].
    pub d_flags_numbering: DFlagsNumbering,
    /// Deliberate bugs, see [`Mutants`].
    pub mutants: Mutants,
}

impl Profile {
    /// Every named profile, oldest first.
    pub const NAMES: [&'static str; 20] = [
        "linux-2.6.38",
        "linux-2.6.39",
        "linux-3.0",
        "linux-3.3",
        "linux-3.5",
        "linux-3.12",
        "linux-4.0",
        "linux-4.7",
        "linux-4.8",
        "linux-4.12",
        "linux-4.17",
        "linux-4.18",
        "linux-5.3",
        "linux-5.7",
        "linux-5.15",
        "linux-6.1",
        "linux-6.8",
        "linux-6.15",
        "linux-6.19",
        "linux-7.2",
    ];

    /// 2.6.38: RCU path walk, 31e6b01f418 ("fs: rcu-walk for path lookup"), merged with
    /// Nick Piggin's vfs-scale-working branch (b4a45f5fe807, 7 January 2011: the merge window).
    pub const LINUX_2_6_38: Profile = Profile {
        name: "linux-2.6.38",
        since: (2, 6, 38),
        commit: Commit {
            hash: "31e6b01f418",
            title: "fs: rcu-walk for path lookup",
        },
        landing: Landing::MergeWindow,
        reader_waits_even_seq: true,
        caller: Caller::DoLookup,
        enoent_from_type_bits: false,
        reread_inode_after_check: false,
        d_alloc_parallel: false,
        dead_dir_check: DeadDirCheck::BeforeAlloc,
        kill_iput: KillIput::DentryIput,
        kill_parent_lock: KillParentLock::AroundUnhash,
        unlink_inode_seq: InodeSeq::BarrierAfter,
        instantiate_seq: InodeSeq::BarrierAfter,
        d_drop_shape: DDropShape::Single,
        d_delete_drop: DDeleteDrop::IfHashed,
        d_add: DAddShape::InstantiateThenRehash,
        d_move_target: DMoveTarget::SwapNameAndParent,
        d_move_rehash: DMoveRehash::BeforeNameSwitch,
        caller_locks_d_instantiate: false,
        unhashed_check_after_name: false,
        tmpfs_pin: TmpfsPin::DgetAfterInstantiate,
        kill_entry: KillEntry::CallerChecks,
        prune_walk: PruneWalk::ReferencedList,
        dput_referenced: DputReferenced::EveryRetain,
        drop_slab_loop: DropSlabLoop::MoreThanTen,
        dispose_add: DisposeAdd::Tail,
        parent_dispose_add: DisposeAdd::Head,
        shrink_parent: ShrinkParent::KilledNext,
        shrink_lock: ShrinkLock::ClearFirst,
        dispose_free: DisposeFree::MayFree,
        d_flags_numbering: DFlagsNumbering::Bit19Lru,
        mutants: Mutants {
            kill_clear_before_unhash: false,
            drop_without_invalidate: false,
            d_drop_no_invalidate: false,
            lookup_no_unhashed_check: false,
            no_child_seq_recheck: false,
            seqcount_begin_keeps_bit0: false,
            retry_without_rmb: false,
        },
    };

    /// 2.6.39 up to 3.0-rc7: the unvalidated re-read (`step-into-reread`, Hugh Dickins' bug).
    pub const LINUX_2_6_39: Profile = Profile {
        name: "linux-2.6.39",
        since: (2, 6, 39),
        commit: Commit {
            hash: "62a7375e5d7",
            title: "__follow_mount_rcu() re-reads d_inode (2.6.39-rc1)",
        },
        reread_inode_after_check: true,
        ..Profile::LINUX_2_6_38
    };

    /// 3.0 as released: the re-read fixed after 3.0-rc7 (Hugh Dickins' report of July 2011).
    pub const LINUX_3_0: Profile = Profile {
        name: "linux-3.0",
        since: (3, 0, 0),
        commit: Commit {
            hash: "",
            title: "vfs: fix race in rcu lookup of pruned dentry",
        },
        landing: Landing::LateFix,
        reread_inode_after_check: false,
        ..Profile::LINUX_2_6_39
    };

    /// 3.3 and 3.4: `shrink_dcache_parent()` gets a dispose list of its own
    /// ([`Profile::parent_dispose_add`]): `select_parent()` moves each unused child onto it
    /// with `list_move_tail()` instead of to the LRU's tail for `__shrink_dcache_sb()` to take
    /// back, so an rmdir kills its oldest unused child first where 3.2 killed the newest
    /// (3.2.0's fs/dcache.c:1121 and :1189 against 3.3.8's :1131). b48f03b319ba; when it was
    /// merged was not pinned (the table counts it from the 3.3 merge window), and 3.2.71
    /// already has it (a 3.2.y stable backport, its first release not pinned), so a 3.2
    /// distribution kernel may have either order.
    pub const LINUX_3_3: Profile = Profile {
        name: "linux-3.3",
        since: (3, 3, 0),
        commit: Commit {
            hash: "b48f03b319ba",
            title: "dcache: use a dispose list in select_parent",
        },
        landing: Landing::MergeWindow,
        parent_dispose_add: DisposeAdd::Tail,
        ..Profile::LINUX_3_0
    };

    /// 3.5: `__d_lookup_rcu` stops handing back the inode and samples `d_seq` without waiting
    /// for an even count; `lookup_fast` validates the inode; a lookup in a dead directory
    /// allocates before `lookup_real()` refuses it ([`DeadDirCheck::AfterAlloc`]). 12f8ad4b0533 came with the
    /// dentry-cleanups merge (31ed8e6f93a2) of the 3.5 merge window.
    pub const LINUX_3_5: Profile = Profile {
        name: "linux-3.5",
        since: (3, 5, 0),
        commit: Commit {
            hash: "12f8ad4b0533",
            title: "vfs: clean up __d_lookup_rcu() and dentry_cmp() interfaces",
        },
        landing: Landing::MergeWindow,
        reader_waits_even_seq: false,
        caller: Caller::LookupFast,
        dead_dir_check: DeadDirCheck::AfterAlloc,
        ..Profile::LINUX_3_3
    };

    /// 3.12 up to 3.19: `shrink_dcache_parent()` collects a directory's unused children with
    /// `d_walk()` and `select_collect()`, which adds each at the dispose list's head
    /// ([`Profile::parent_dispose_add`]): 3.11.0's `select_parent()` (fs/dcache.c:1109)
    /// against 3.12.0's `select_collect()` (:1416). The prune walk is list_lru's
    /// ([`PruneWalk::ListLru`], 3.11.0's :812 against 3.12.0's :1022) and still adds at the
    /// tail. Both came with 3.12's dcache rework, merged in its merge window. Which
    /// commit of 3.12's dcache rework (`d_walk()`, the list_lru conversion, Linus Torvalds'
    /// 89dc77bcdabf "vfs: fix dentry LRU list handling and nr_dentry_unused accounting", whose
    /// message was read but not its diff) brought `d_shrink_add()` there was not pinned, nor
    /// whether 3.12-rc1 already had it: the table counts it from the merge window.
    pub const LINUX_3_12: Profile = Profile {
        name: "linux-3.12",
        since: (3, 12, 0),
        commit: Commit {
            hash: "",
            title: "select_collect() adds with d_shrink_add() (3.12.0's source)",
        },
        landing: Landing::MergeWindow,
        prune_walk: PruneWalk::ListLru,
        parent_dispose_add: DisposeAdd::Head,
        ..Profile::LINUX_3_5
    };

    /// 4.0 up to 4.6: the prune walk adds to a dispose list at its head
    /// ([`Profile::dispose_add`]), so the dentry isolated first dies first. 3.19.8's fs/dcache.c
    /// (`d_lru_shrink_move()`'s `list_move_tail()`, :415) against 4.0.0's
    /// (`list_lru_isolate_move()`, :418). A -mm series posted in January 2015, before 3.19's
    /// release, so merged with Andrew Morton's patches in the 4.0 merge window (inferred; no
    /// 4.0 release candidate was read).
    pub const LINUX_4_0: Profile = Profile {
        name: "linux-4.0",
        since: (4, 0, 0),
        commit: Commit {
            hash: "",
            title: "list_lru: add helpers to isolate items",
        },
        landing: Landing::MergeWindow,
        dispose_add: DisposeAdd::Head,
        ..Profile::LINUX_3_12
    };

    /// 4.7's source: `dentry_unlink_inode` and `__d_instantiate` bracket the change of
    /// `d_inode` with `d_seq` writes; ENOENT from the type bits; `d_alloc_parallel()` (the
    /// parallel lookups series of the 4.7 merge window); `d_add()` is `__d_add()`. The kill
    /// path still clears through `dentry_iput`, which moves no seq. The bracket is a528aca7f359
    /// (2016, marked for stable 3.13+, so a stable kernel between 3.13 and 4.6 may have it).
    pub const LINUX_4_7: Profile = Profile {
        name: "linux-4.7",
        since: (4, 7, 0),
        commit: Commit {
            hash: "a528aca7f359",
            title: "use ->d_seq to get coherency between ->d_inode and ->d_flags",
        },
        landing: Landing::MergeWindow,
        enoent_from_type_bits: true,
        d_alloc_parallel: true,
        unlink_inode_seq: InodeSeq::Bracket,
        instantiate_seq: InodeSeq::Bracket,
        d_add: DAddShape::InnerDAdd,
        ..Profile::LINUX_4_0
    };

    /// 4.8: `dentry_iput` folded into `dentry_unlink_inode`, which brackets the clear only if
    /// the dentry is still hashed (the `unhashed-kill-no-bump` hole, up to 4.17). The fold's
    /// commit and tag were not read; a cleanup of this kind lands in a merge window.
    pub const LINUX_4_8: Profile = Profile {
        name: "linux-4.8",
        since: (4, 8, 0),
        commit: Commit {
            hash: "",
            title: "dentry_iput() folded into dentry_unlink_inode() (4.8's source)",
        },
        landing: Landing::MergeWindow,
        kill_iput: KillIput::DentryUnlinkInode,
        unlink_inode_seq: InodeSeq::BracketIfHashed,
        d_move_target: DMoveTarget::KeepNameSwapParent,
        d_move_rehash: DMoveRehash::AfterNameCopy,
        ..Profile::LINUX_4_7
    };

    /// 4.12 up to 4.16: `dput()` marks a dentry referenced only when it is already on the LRU
    /// ([`DputReferenced::OnLru`]): 4.11.0's `dput()` marks it at every retain, 4.12.0's
    /// `dentry_lru_add()` (fs/dcache.c:418-424) only on a second retain. Merged in the 4.12
    /// merge window (inferred from the two releases; no release candidate was read).
    pub const LINUX_4_12: Profile = Profile {
        name: "linux-4.12",
        since: (4, 12, 0),
        commit: Commit {
            hash: "563f40019d16",
            title: "fs: don't set *REFERENCED on single use objects",
        },
        landing: Landing::MergeWindow,
        dput_referenced: DputReferenced::OnLru,
        ..Profile::LINUX_4_8
    };

    /// 4.17: `__d_move` keeps the target's name and parent, and `__d_drop` is 6.1's split
    /// (both read in 4.17.0's source); killing an unhashed dentry still moves no `d_seq`;
    /// `__lookup_hash()` checks `IS_DEADDIR()` before allocating; the shrinker locks with
    /// `shrink_lock_dentry()` and `d_delete()` calls `__d_drop()` unguarded.
    /// 076515fc9267 is Al Viro's of March 2018, before 4.16's release, so it waited for the
    /// 4.17 merge window (inferred; its tag was not read). The commit of the split's 4.17 form
    /// is not pinned down here.
    pub const LINUX_4_17: Profile = Profile {
        name: "linux-4.17",
        since: (4, 17, 0),
        commit: Commit {
            hash: "076515fc9267",
            title: "make non-exchanging __d_move() copy ->d_parent rather than swap them",
        },
        landing: Landing::MergeWindow,
        d_drop_shape: DDropShape::Split,
        d_delete_drop: DDeleteDrop::Always,
        d_move_target: DMoveTarget::KeepNameAndParent,
        dead_dir_check: DeadDirCheck::BeforeAlloc,
        shrink_lock: ShrinkLock::ShrinkLockDentry,
        ..Profile::LINUX_4_12
    };

    /// 4.18 up to 5.2: the kill path always brackets the clear; the caller is still 4.8's.
    /// 4c0d7cd5c841 came after 4.18-rc8.
    pub const LINUX_4_18: Profile = Profile {
        name: "linux-4.18",
        since: (4, 18, 0),
        commit: Commit {
            hash: "4c0d7cd5c841",
            title: "make sure that __dentry_kill() always invalidates d_seq, unhashed or not",
        },
        landing: Landing::LateFix,
        unlink_inode_seq: InodeSeq::Bracket,
        ..Profile::LINUX_4_17
    };

    /// 5.3 up to 5.6: the shrinker queues a pruned child's unused parent at the dispose list's
    /// head before the child's kill ([`ShrinkParent::DputToListFirst`]): 5.2.1's
    /// `shrink_dentry_list()` (fs/dcache.c:1070) kills the ancestors after the child, 5.3.1's
    /// (fs/dcache.c:1096, the call at :1119) calls `__dput_to_list()` on the parent first.
    /// Merged with Al Viro's work.dcache2 pull of 20 July 2019, in the 5.3 merge window.
    pub const LINUX_5_3: Profile = Profile {
        name: "linux-5.3",
        since: (5, 3, 0),
        commit: Commit {
            hash: "9bdebc2bd1c4",
            title: "Teach shrink_dcache_parent() to cope with mixed-filesystem shrink lists",
        },
        landing: Landing::MergeWindow,
        shrink_parent: ShrinkParent::DputToListFirst,
        ..Profile::LINUX_4_18
    };

    /// 5.7 up to 5.14 (Debian 11's 5.10): `handle_mounts()` decides ENOENT from the NULL inode,
    /// for `..` too. See [`Caller::HandleMounts`].
    pub const LINUX_5_7: Profile = Profile {
        name: "linux-5.7",
        since: (5, 7, 0),
        commit: Commit {
            hash: "c153007b7b7a",
            title: "teach handle_mounts() to handle RCU mode",
        },
        landing: Landing::MergeWindow,
        caller: Caller::HandleMounts,
        enoent_from_type_bits: false,
        ..Profile::LINUX_5_3
    };

    /// 5.15 up to 6.0: `drop_slab()` repeats a pass while its count, halved once more each
    /// pass, stays above 1 ([`DropSlabLoop::DoublingThreshold`]): 5.14-rc5's
    /// `drop_slab_node()` loops `while (freed > 10)` (mm/vmscan.c:909), 5.15.55's on the
    /// shift (:955). Debian 11's 5.10 keeps the old loop (5.10.198's :742).
    pub const LINUX_5_15: Profile = Profile {
        name: "linux-5.15",
        since: (5, 15, 0),
        commit: Commit {
            hash: "1399af7e5489",
            title: "mm, vmscan: guarantee drop_slab_node() termination",
        },
        landing: Landing::MergeWindow,
        drop_slab_loop: DropSlabLoop::DoublingThreshold,
        ..Profile::LINUX_5_7
    };

    /// 6.1 up to 6.7 (Debian 12's kernel): the `step_into()` caller with `nd->next_seq`.
    pub const LINUX_6_1: Profile = Profile {
        name: "linux-6.1",
        since: (6, 1, 0),
        commit: Commit {
            hash: "03fa86e9f79d",
            title: "namei: stash the sampled ->d_seq into nameidata",
        },
        landing: Landing::MergeWindow,
        caller: Caller::StepInto,
        ..Profile::LINUX_5_15
    };

    /// 6.8 up to 6.14 (Debian 13's 6.12): the kill path locks the parent only after the inode
    /// is detached; the same series dropped `DCACHE_MAY_FREE` ([`DisposeFree::DentryKilled`]).
    pub const LINUX_6_8: Profile = Profile {
        name: "linux-6.8",
        since: (6, 8, 0),
        commit: Commit {
            hash: "1c18edd1b7a0",
            title: "__dentry_kill(): new locking scheme",
        },
        landing: Landing::MergeWindow,
        kill_parent_lock: KillParentLock::AfterUnlinkInode,
        dispose_free: DisposeFree::DentryKilled,
        ..Profile::LINUX_6_1
    };

    /// 6.15 up to 6.18: `d_flags` in the repacked numbering, `DCACHE_LRU_LIST` at bit 18
    /// ([`DFlagsNumbering::Bit18Lru`]): 6.14.0's include/linux/dcache.h (:217, `BIT(19)`)
    /// against 6.18.2's (`enum dentry_flags`, `BIT(18)` at :214). The commit sat in Christian
    /// Brauner's vfs-6.15.async.dir branch and reached linux-next's fs-current on 24 March
    /// 2025, the day 6.14 was released.
    pub const LINUX_6_15: Profile = Profile {
        name: "linux-6.15",
        since: (6, 15, 0),
        commit: Commit {
            hash: "9748cb2dc393",
            title: "VFS: repack DENTRY_ flags.",
        },
        landing: Landing::MergeWindow,
        d_flags_numbering: DFlagsNumbering::Bit18Lru,
        ..Profile::LINUX_6_8
    };

    /// 6.19 up to 7.1: tmpfs pins its dentries with
    /// `d_make_persistent()` ([`TmpfsPin::Persistent`]), `__d_instantiate()` runs under its
    /// caller's `d_lock`, and `__d_lookup_rcu()` checks `d_unhashed()` last. Read in 6.19.0's
    /// tree (matankalina/linux-6.19.10-fork, whose Makefile says 6.19.0) and 7.1.3's and
    /// 7.1.5's (rikudousennin22/linux-7.1.3, danayer/linux-7.1.5: the same fs/dcache.c), against
    /// 6.12's (shilei-massclouds/linux-6.12) and 6.18.2's (gfunkmonk/linux-6.18.2), which have
    /// none of the three. Compared and unchanged from 6.12 to 7.1: `__dentry_kill`,
    /// `lock_for_kill`, `retain_dentry`, `fast_dput` (its slow path is now `finish_dput()`, the
    /// same loop), `__d_drop`/`___d_drop`, `dentry_unlink_inode` (one more store, the
    /// `d_alias`/`waiters` union, inside the bracket), `d_delete`, `__d_move`, `d_exchange`,
    /// `__d_add` (an ops argument set before the inode), `d_invalidate`,
    /// `shrink_dentry_list`, `lookup_fast`, `lookup_slow`, and `d_alloc_parallel`'s order (the
    /// spare is allocated, then attached under the parent's `d_lock`, before the lookup).
    /// `step_into()` gained an RCU fast path (no `handle_mounts()` for a dentry neither managed
    /// nor a symlink) that reads `d_inode`, re-checks `nd->next_seq` and returns -ENOENT in
    /// 6.1's order; the model reads no type bits there, so its `step_into` is unchanged. Not
    /// modelled: `d_delete()`'s `__d_drop()` first under `fs.dentry-negative=1` (already in
    /// 6.18.2, off by default), tmpfs's `DCACHE_DONTCACHE` in `simple_lookup()` where 6.12
    /// installed `always_delete_dentry` (the same `retain_dentry()` answer), the
    /// `DCACHE_PERSISTENT` flag (read at umount only). 7.1.x still kills through
    /// `__dentry_kill()` after its callers' `lock_for_kill()`; 7.2 folds the two
    /// ([`Profile::LINUX_7_2`]). bacdf1d70bbe opens the generation: its commit
    /// page (git.ipfire.org, read through the search tool) carries the message of Al Viro's
    /// "[PATCH v4 06/54] primitives for maintaining persisitency" of 18 November 2025, which
    /// adds both helpers and moves `d_lock` from `__d_instantiate()` into its callers; later
    /// patches of that series switch shmem to them. Posted before 6.18's release, so merged
    /// in the 6.19 merge window (inferred; the tag was not read).
    pub const LINUX_6_19: Profile = Profile {
        name: "linux-6.19",
        since: (6, 19, 0),
        commit: Commit {
            hash: "bacdf1d70bbe",
            title: "primitives for maintaining persisitency",
        },
        landing: Landing::MergeWindow,
        caller_locks_d_instantiate: true,
        unhashed_check_after_name: true,
        tmpfs_pin: TmpfsPin::Persistent,
        ..Profile::LINUX_6_15
    };

    /// 7.2 and later (Debian 13's backported 7.3.4): the kill path is one function,
    /// `dentry_kill()`, which runs `lock_for_kill()` itself and gives up when the dentry gained
    /// a user ([`KillEntry::DentryKillChecks`]); the kill's writes keep 6.8's order (mark dead,
    /// LRU, `__d_drop`, `dentry_unlink_inode`, then the parent's lock). Read in Debian's
    /// `linux-source-7.2` 7.2.6-1~bpo13+1 and `linux-source-7.3` 7.3.4-1~bpo13+1, against
    /// 7.1.5 (danayer/linux-7.1.5), which still has `__dentry_kill()`. From 7.2.6 to 7.3.4
    /// fs/dcache.c changes nothing the model covers (`lockref_is_dead()` helpers,
    /// `dentry_unlink_inode()` deciding the fsnotify call before it unlocks, KMSAN). Also new
    /// in 7.2 and not modelled: the RCU read sections move into `fast_dput()` and
    /// `lock_for_kill()`, `dentry_unlink_inode()` unlinks the alias without re-initialising it,
    /// `___d_drop()` always uses the hash table (secondary roots move to their own list),
    /// in-lookup waiters sleep on `DCACHE_LOOKUP_WAITERS` instead of a wait queue, and
    /// `d_alloc_parallel()` pins a match under its `d_lock` instead of
    /// `lockref_get_not_dead()`; none of these changes a traced event's order. The fold is
    /// d197a9a6d44f ("adjust calling conventions of lock_for_kill(), fold __dentry_kill() into
    /// dentry_kill()", Al Viro), a linux-next hash: fs-next's push of 10 June 2026 lists it in
    /// his work.dcache series, not yet seen in a mainline tag. The same series has
    /// cb2ae3c99214 ("shrink_dentry_list(): start with removing from shrink list"), the
    /// `d_shrink_del()`-first order of 7.2's `shrink_dentry_list()` the model follows.
    pub const LINUX_7_2: Profile = Profile {
        name: "linux-7.2",
        since: (7, 2, 0),
        commit: Commit {
            hash: "d197a9a6d44f",
            title: "adjust calling conventions of lock_for_kill(), fold __dentry_kill() into dentry_kill()",
        },
        landing: Landing::MergeWindow,
        kill_entry: KillEntry::DentryKillChecks,
        ..Profile::LINUX_6_19
    };

    /// Every profile, oldest first (the order of [`Profile::NAMES`]).
    pub const ALL: [Profile; 20] = [
        Profile::LINUX_2_6_38,
        Profile::LINUX_2_6_39,
        Profile::LINUX_3_0,
        Profile::LINUX_3_3,
        Profile::LINUX_3_5,
        Profile::LINUX_3_12,
        Profile::LINUX_4_0,
        Profile::LINUX_4_7,
        Profile::LINUX_4_8,
        Profile::LINUX_4_12,
        Profile::LINUX_4_17,
        Profile::LINUX_4_18,
        Profile::LINUX_5_3,
        Profile::LINUX_5_7,
        Profile::LINUX_5_15,
        Profile::LINUX_6_1,
        Profile::LINUX_6_8,
        Profile::LINUX_6_15,
        Profile::LINUX_6_19,
        Profile::LINUX_7_2,
    ];

    /// The profile called `name`: one of [`Profile::NAMES`], or `linux-` and a release
    /// (`linux-5.10`, `linux-3.0-rc7`), which names the profile of that release's generation.
    pub fn named(name: &str) -> Result<Profile, ModelError> {
        if let Some(p) = Profile::ALL.iter().find(|p| p.name == name) {
            return Ok(*p);
        }
        name.strip_prefix("linux-")
            .and_then(|r| Profile::for_release(r).ok())
            .ok_or_else(|| ModelError::UnknownProfile(name.to_owned()))
    }

    /// The profile for a kernel release string such as `6.1.0-27-amd64`, `2.6.39.3` or
    /// `3.0-rc7`: the newest generation that began at or before the release. A release
    /// candidate has its release's merge-window changes (2.6.39-rc1 has the re-read) but not
    /// its late fixes ([`Landing`]: 3.0-rc7 still had the re-read, 4.18-rc8 still the unhashed
    /// hole). Releases before 2.6.38 are refused (no RCU path walk).
    pub fn for_release(release: &str) -> Result<Profile, ModelError> {
        let bad = || ModelError::BadRelease(release.to_owned());
        let mut parts = release_numbers(release);
        let mut num = || parts.next().flatten();
        let major = num().ok_or_else(bad)?;
        let minor = num().ok_or_else(bad)?;
        let key = if major == 2 {
            (major, minor, num().ok_or_else(bad)?)
        } else {
            (major, minor, 0)
        };
        let rc = is_release_candidate(release);
        Profile::ALL
            .iter()
            .rev()
            .copied()
            .find(|p| {
                p.since < key || (p.since == key && (!rc || p.landing == Landing::MergeWindow))
            })
            .ok_or_else(|| ModelError::ReleaseTooOld(release.to_owned()))
    }
}

/// The numbers of a kernel release string, in order, split at every other character
/// (`6.1.0-26-amd64`: 6, 1, 0, 26, then `None` for the empty piece of `-amd`): every release
/// table of the project reads its first two (three for 2.6.x) this way ([`major_minor`]).
fn release_numbers(release: &str) -> impl Iterator<Item = Option<u32>> + '_ {
    release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok())
}

/// A kernel release string's `major.minor`, when it starts with them.
pub fn major_minor(release: &str) -> Option<(u32, u32)> {
    let mut n = release_numbers(release);
    Some((n.next().flatten()?, n.next().flatten()?))
}

/// Whether a kernel release string names a release candidate: "rc" (either case) and its
/// number, not inside a word on either side. Mainline writes `4.19-rc3`; Fedora
/// `4.19.0-0.rc3.git0.1.fc30`; Ubuntu's mainline builds `4.19.0-041900rc3-generic`. A
/// localversion such as `-rc1board` is a word, not a candidate (rev10's R10-3).
pub fn is_release_candidate(release: &str) -> bool {
    let b = release.as_bytes();
    b.windows(3).enumerate().any(|(i, w)| {
        let digits = b[i + 2..].iter().take_while(|c| c.is_ascii_digit()).count();
        w[0].eq_ignore_ascii_case(&b'r')
            && w[1].eq_ignore_ascii_case(&b'c')
            && digits > 0
            && (i == 0 || !b[i - 1].is_ascii_alphabetic())
            && b.get(i + 2 + digits)
                .is_none_or(|c| !c.is_ascii_alphabetic())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_candidates_in_each_spelling() {
        for rc in [
            "4.19-rc3",
            "4.19.0-rc3",
            "4.19.0-0.rc3.git0.1.fc30",
            "4.19.0-041900rc3-generic",
            "6.1.0-RC1",
            "6.8.0-rc1+",
        ] {
            assert!(is_release_candidate(rc), "{rc}");
        }
        for final_release in [
            "4.19.0",
            "4.19.0-300.fc30.x86_64",
            "6.1.0-26-amd64",
            "4.18.0-305.el8.x86_64",
            "5.10.0-src1",
            "6.8.0-arc1",
            "6.1.0-1-rc1board",
            "6.1.0-ORC2",
        ] {
            assert!(!is_release_candidate(final_release), "{final_release}");
        }
    }

    #[test]
    fn releases_pick_their_generation() {
        let pick = |r: &str| Profile::for_release(r).map(|p| p.name).ok();
        for (release, profile) in [
            ("2.6.38", "linux-2.6.38"),
            ("2.6.39.3", "linux-2.6.39"),
            ("2.6.39-rc1", "linux-2.6.39"),
            ("3.5-rc1", "linux-3.5"),
            ("3.0-rc7", "linux-2.6.39"),
            ("3.0.0-rc7", "linux-2.6.39"),
            ("3.0.0", "linux-3.0"),
            ("3.2.0-4-amd64", "linux-3.0"),
            ("3.3-rc1", "linux-3.3"),
            ("3.3.8", "linux-3.3"),
            ("3.4.108", "linux-3.3"),
            ("3.5.0", "linux-3.5"),
            ("3.11.10", "linux-3.5"),
            ("3.12-rc1", "linux-3.12"),
            ("3.13.0-170-generic", "linux-3.12"),
            ("3.19.8", "linux-3.12"),
            ("4.0-rc1", "linux-4.0"),
            ("4.0.5", "linux-4.0"),
            ("4.4.0-210-generic", "linux-4.0"),
            ("4.6.7", "linux-4.0"),
            ("4.7.10", "linux-4.7"),
            ("4.8.15", "linux-4.8"),
            ("4.11.12", "linux-4.8"),
            ("4.12-rc1", "linux-4.12"),
            ("4.16.18", "linux-4.12"),
            ("4.17.0", "linux-4.17"),
            ("4.18-rc8", "linux-4.17"),
            ("4.18.0-0.rc8.git0.1.fc29.x86_64", "linux-4.17"),
            ("3.0.0-0.rc7.git0.1.fc16", "linux-2.6.39"),
            ("4.18.0", "linux-4.18"),
            ("5.2.21", "linux-4.18"),
            ("5.3-rc1", "linux-5.3"),
            ("5.4.0-42-generic", "linux-5.3"),
            ("5.6.19", "linux-5.3"),
            ("5.7-rc1", "linux-5.7"),
            ("5.10.0-30-amd64", "linux-5.7"),
            ("5.14.21", "linux-5.7"),
            ("5.15-rc1", "linux-5.15"),
            ("5.15.0-91-generic", "linux-5.15"),
            ("6.0.19", "linux-5.15"),
            ("6.1.0-27-amd64", "linux-6.1"),
            ("6.7.12", "linux-6.1"),
            ("6.8.0", "linux-6.8"),
            ("6.12.9-amd64", "linux-6.8"),
            ("6.14.11", "linux-6.8"),
            ("6.15-rc1", "linux-6.15"),
            ("6.15.0", "linux-6.15"),
            ("6.18.2", "linux-6.15"),
            ("6.19-rc1", "linux-6.19"),
            ("6.19.10", "linux-6.19"),
            ("7.0.1", "linux-6.19"),
            ("7.1.5", "linux-6.19"),
            ("7.2-rc1", "linux-7.2"),
            ("7.2.6+deb13-amd64", "linux-7.2"),
            ("7.3.4+deb13-amd64", "linux-7.2"),
        ] {
            assert_eq!(pick(release), Some(profile), "{release}");
        }
        assert!(matches!(
            Profile::for_release("2.6.37"),
            Err(ModelError::ReleaseTooOld(_))
        ));
        assert!(matches!(
            Profile::for_release("vmlinuz"),
            Err(ModelError::BadRelease(_))
        ));
        assert!(matches!(
            Profile::for_release("2.6"),
            Err(ModelError::BadRelease(_))
        ));
    }

    #[test]
    fn names_round_trip_and_releases_name_their_generation() {
        for (n, p) in Profile::NAMES.iter().zip(Profile::ALL) {
            assert_eq!(Profile::named(n).map(|p| p.name).ok(), Some(*n));
            assert_eq!(p.name, *n);
        }
        assert!(Profile::ALL.windows(2).all(|w| w[0].since < w[1].since));
        assert_eq!(
            Profile::named("linux-5.10").map(|p| p.name).ok(),
            Some("linux-5.7")
        );
        assert_eq!(
            Profile::named("linux-3.0-rc7").map(|p| p.name).ok(),
            Some("linux-2.6.39")
        );
        assert!(Profile::named("linux-9").is_err());
        assert!(Profile::named("6.1").is_err());
    }

    #[test]
    fn each_generation_differs_from_the_one_before() {
        for w in Profile::ALL.windows(2) {
            let (old, new) = (w[0], w[1]);
            let same = Profile {
                name: old.name,
                since: old.since,
                commit: old.commit,
                landing: old.landing,
                ..new
            };
            assert_ne!(same, old, "{} repeats {}", new.name, old.name);
        }
        // 2.6.38 and 3.0 are the same protocol; 2.6.39 differs from both by the re-read only.
        assert_eq!(
            Profile {
                name: "linux-2.6.38",
                since: (2, 6, 38),
                commit: Profile::LINUX_2_6_38.commit,
                landing: Profile::LINUX_2_6_38.landing,
                ..Profile::LINUX_3_0
            },
            Profile::LINUX_2_6_38
        );
        assert_eq!(
            Profile {
                reread_inode_after_check: false,
                ..Profile::LINUX_2_6_39
            }
            .unlink_inode_seq,
            Profile::LINUX_3_0.unlink_inode_seq
        );
        assert_eq!(
            Profile::LINUX_4_8.unlink_inode_seq,
            InodeSeq::BracketIfHashed
        );
        assert_eq!(Profile::LINUX_4_18.unlink_inode_seq, InodeSeq::Bracket);
        assert_eq!(Profile::LINUX_4_7.kill_iput, KillIput::DentryIput);
    }

    /// A killed dentry's marks in its kernel's numbering: `DCACHE_DENTRY_KILLED` bit 15 up to
    /// 6.14 and bit 14 from 6.15's repacking; `DCACHE_MAY_FREE` (set by the model only up to
    /// 6.7) bit 23. Read in 4.4.155's, 6.1.0's, 6.12's, 6.14.0's, 6.18.2's and 7.1.5's
    /// include/linux/dcache.h.
    #[test]
    fn a_killed_dentry_carries_its_kernels_bits() {
        use crate::dentry::{DCACHE_DENTRY_KILLED, DCACHE_MAY_FREE, DCACHE_SHRINK_LIST};
        for (release, killed) in [
            ("4.4.155", 1 << 15),
            ("6.1.0-27-amd64", 1 << 15),
            ("6.7.12", 1 << 15),
            ("6.8.0", 1 << 15),
            ("6.12.9-amd64", 1 << 15),
            ("6.14.11", 1 << 15),
            ("6.15.0", 1 << 14),
            ("6.18.2", 1 << 14),
            ("7.3.4+deb13-amd64", 1 << 14),
        ] {
            let n = Profile::for_release(release)
                .expect("a profile")
                .d_flags_numbering;
            let k = n.kernel(DCACHE_SHRINK_LIST | DCACHE_DENTRY_KILLED);
            assert_eq!(k, DCACHE_SHRINK_LIST | killed, "{release}");
            if killed == 1 << 15 {
                assert_eq!(n.kernel(DCACHE_MAY_FREE), 1 << 23, "{release}");
            }
        }
    }

    /// `drop_slab()`'s passes for a shrinker that frees `counts` in turn (0 once they run out):
    /// up to 5.14 (5.10.198's mm/vmscan.c:742) a pass must free more than 10 for another to
    /// run; from 5.15 (5.15.55's :955, 6.1.0's :1039) the n-th pass at least 2^n for another.
    #[test]
    fn drop_slab_repeats_passes_by_its_kernels_condition() {
        let passes = |release: &str, counts: &[usize]| {
            let l = Profile::for_release(release)
                .expect("a profile")
                .drop_slab_loop;
            let mut pass = 0;
            let total = crate::dcache::drop_slab_node(l, || {
                pass += 1;
                counts.get(pass - 1).copied().unwrap_or(0)
            });
            assert_eq!(total, counts.iter().take(pass).sum::<usize>(), "{release}");
            pass
        };
        for release in ["2.6.38", "4.19.1", "5.10.0-30-amd64", "5.14.21"] {
            assert_eq!(passes(release, &[5, 3, 1]), 1, "{release}");
            assert_eq!(passes(release, &[11, 11, 10]), 3, "{release}");
        }
        for release in [
            "5.15.0",
            "6.1.0-27-amd64",
            "6.12.9-amd64",
            "7.3.4+deb13-amd64",
        ] {
            assert_eq!(passes(release, &[5, 3, 1]), 2, "{release}");
            assert_eq!(passes(release, &[11, 11, 10]), 4, "{release}");
            assert_eq!(passes(release, &[2, 4, 8, 16, 33]), 6, "{release}");
        }
    }

    /// The generations that open inside another's range differ from the one before in the
    /// field their commit changed (3.12: the two of its dcache rework), and in nothing else.
    /// `shrink_lock_dentry()` from 4.17 up to 6.8's `lock_for_kill()`; before, the older
    /// order, whose shrinker kills the parent next: the model reads `shrink_parent` only
    /// after a parent lock, so a profile that clears first must not queue the parent.
    #[test]
    fn the_shrinker_locks_the_parent_first_from_4_17_to_6_7() {
        for p in Profile::ALL {
            let expected = if p.since >= (4, 17, 0) {
                ShrinkLock::ShrinkLockDentry
            } else {
                ShrinkLock::ClearFirst
            };
            assert_eq!(p.shrink_lock, expected, "{}", p.name);
            if p.shrink_lock == ShrinkLock::ClearFirst {
                assert_eq!(p.shrink_parent, ShrinkParent::KilledNext, "{}", p.name);
            }
        }
    }

    /// `d_delete()` calls `__d_drop()` without testing `d_unhashed()` from 4.17, the release
    /// that dropped its `i_lock` trylock loop.
    #[test]
    fn d_delete_calls_d_drop_unguarded_from_4_17() {
        for p in Profile::ALL {
            let expected = if p.since >= (4, 17, 0) {
                DDeleteDrop::Always
            } else {
                DDeleteDrop::IfHashed
            };
            assert_eq!(p.d_delete_drop, expected, "{}", p.name);
        }
    }

    #[test]
    fn each_mid_range_generation_changes_only_its_commits_field() {
        let back = |new: Profile, old: Profile| Profile {
            name: old.name,
            since: old.since,
            commit: old.commit,
            landing: old.landing,
            ..new
        };
        assert_eq!(
            back(
                Profile {
                    parent_dispose_add: DisposeAdd::Head,
                    ..Profile::LINUX_3_3
                },
                Profile::LINUX_3_0
            ),
            Profile::LINUX_3_0
        );
        assert_eq!(Profile::LINUX_3_3.parent_dispose_add, DisposeAdd::Tail);
        assert_eq!(
            back(
                Profile {
                    parent_dispose_add: DisposeAdd::Tail,
                    prune_walk: PruneWalk::ReferencedList,
                    ..Profile::LINUX_3_12
                },
                Profile::LINUX_3_5
            ),
            Profile::LINUX_3_5
        );
        assert_eq!(Profile::LINUX_3_12.parent_dispose_add, DisposeAdd::Head);
        assert_eq!(Profile::LINUX_3_12.prune_walk, PruneWalk::ListLru);
        assert_eq!(
            back(
                Profile {
                    dispose_add: DisposeAdd::Tail,
                    ..Profile::LINUX_4_0
                },
                Profile::LINUX_3_12
            ),
            Profile::LINUX_3_12
        );
        assert_eq!(Profile::LINUX_4_0.dispose_add, DisposeAdd::Head);
        assert_eq!(
            back(
                Profile {
                    dput_referenced: DputReferenced::EveryRetain,
                    ..Profile::LINUX_4_12
                },
                Profile::LINUX_4_8
            ),
            Profile::LINUX_4_8
        );
        assert_eq!(Profile::LINUX_4_12.dput_referenced, DputReferenced::OnLru);
        assert_eq!(
            back(
                Profile {
                    shrink_parent: ShrinkParent::KilledNext,
                    ..Profile::LINUX_5_3
                },
                Profile::LINUX_4_18
            ),
            Profile::LINUX_4_18
        );
        assert_eq!(
            Profile::LINUX_5_3.shrink_parent,
            ShrinkParent::DputToListFirst
        );
        assert_eq!(
            back(
                Profile {
                    drop_slab_loop: DropSlabLoop::MoreThanTen,
                    ..Profile::LINUX_5_15
                },
                Profile::LINUX_5_7
            ),
            Profile::LINUX_5_7
        );
        assert_eq!(
            Profile::LINUX_5_15.drop_slab_loop,
            DropSlabLoop::DoublingThreshold
        );
        assert_eq!(
            back(
                Profile {
                    d_flags_numbering: DFlagsNumbering::Bit19Lru,
                    ..Profile::LINUX_6_15
                },
                Profile::LINUX_6_8
            ),
            Profile::LINUX_6_8
        );
        assert_eq!(
            Profile::LINUX_6_15.d_flags_numbering,
            DFlagsNumbering::Bit18Lru
        );
    }
}
