//! fs/dcache.c: allocation, hashing, RCU and ref-walk lookup, unhash, inode attach and detach,
//! `dput` and the kill path, the shrinker, `d_move`. Each function keeps the kernel's name and
//! the order of its reads, writes and barriers; comments name the generation a branch belongs
//! to. Functions are methods of [`Task`], which stands for `current` (thread id, RCU handle,
//! event buffer).
//!
//! Not modelled, because they protect lists the model does not keep: `inode->i_lock` and the
//! `d_alias` list, the parent's `d_lock` around `d_subdirs`, the in-lookup hash of
//! `d_alloc_parallel`. The prune walk is the generation's ([`PruneWalk`]), and so is the rule by
//! which `dput()` marks a dentry `DCACHE_REFERENCED` ([`DputReferenced`]): that decides which
//! dentries a prune pass picks, not how they are killed.
//!
//! [`PruneWalk`]: crate::profile::PruneWalk
//! [`DputReferenced`]: crate::profile::DputReferenced

use crate::dentry::*;
use crate::fs::InodeKind;
use crate::profile::{
    Caller, DAddShape, DDeleteDrop, DDropShape, DMoveRehash, DMoveTarget, DisposeAdd, DisposeFree,
    DputReferenced, DropSlabLoop, InodeSeq, KillEntry, KillIput, KillParentLock, PruneWalk,
    ShrinkLock, ShrinkParent,
};
use crate::rcu::RcuReadGuard;
use crate::slab;
use crate::sync::{cpu_relax, smp_rmb, Ordering};
use crate::task::{Step, Task};
use std::collections::VecDeque;
use tracer_common::{Event, Probe};

/// What `shrink_lock_dentry()` leaves a dispose list's dentry in, `d_lock` held either way.
enum ShrinkLocked {
    /// Unused, its parent's `d_lock` held (`None`: a root): the kill may go on.
    Parent(Option<DPtr>),
    /// In use, or its parent changed under the relock: taken off the list and left.
    GaveUp,
}

impl Task<'_> {
    /// `d_hash()`: the bucket of a name hash.
    pub(crate) fn d_hash(&self, hash: u32) -> &HlistBlHead {
        let t = &self.dc.hashtable;
        &t[hash as usize & (t.len() - 1)]
    }

    /// `d_alloc()`: a new unhashed negative dentry under `parent`, holding a reference on it.
    pub(crate) fn d_alloc(&self, parent: DPtr, name: &[u8]) -> DPtr {
        // __d_alloc(): tmpfs's simple_lookup() would install always_delete_dentry right after.
        let flags = if self.dc.fs.kind.deletes_on_last_dput() {
            DCACHE_OP_DELETE
        } else {
            0
        };
        let id = self.dc.next_id.fetch_add(1, Ordering::Relaxed);
        let d = DPtr::alloc(Dentry::new(id, flags, QStr::new(parent.id, name)));
        self.dc.nr_dentry.fetch_add(1, Ordering::Relaxed);
        parent.d_lock.lock();
        parent.count_add(1); // __dget_dlock(parent)
        d.d_parent.store(parent.as_ptr(), Ordering::Relaxed);
        self.d_child_add(d);
        parent.d_lock.unlock();
        d
    }

    /// `list_add()` of `d_child` onto the parent's `d_subdirs` (`hlist_add_head()` of `d_sib`
    /// onto `d_children` from 6.8): at the head, in every generation.
    fn d_child_add(&self, d: DPtr) {
        let key = self.dc.next_child_key.fetch_add(1, Ordering::Relaxed);
        d.d_child_key.store(key, Ordering::Relaxed);
    }

    /// `dget()`
    pub(crate) fn dget(&self, d: DPtr) {
        d.d_lock.lock();
        d.count_add(1);
        d.d_lock.unlock();
    }

    /// `__d_set_inode_and_type()` / `__d_clear_type_and_inode()` (`ino == 0`): `d_inode`
    /// first, then the type bits (a release store on 6.1).
    fn set_inode_and_type(&self, d: DPtr, ino: u64, kind: Option<InodeKind>) {
        let ty = match kind {
            Some(InodeKind::Dir) => DCACHE_DIRECTORY_TYPE,
            Some(InodeKind::File) => DCACHE_REGULAR_TYPE,
            None => 0,
        };
        if ino == 0 {
            let f = d.flags() & !DCACHE_ENTRY_TYPE;
            d.d_flags.store(f, Ordering::Relaxed);
            d.d_inode.store(0, Ordering::Relaxed);
        } else {
            d.d_inode.store(ino, Ordering::Relaxed);
            let f = (d.flags() & !DCACHE_ENTRY_TYPE) | ty;
            d.d_flags.store(f, Ordering::Release);
        }
    }

    /// `__d_instantiate()`: attach an inode. Up to 6.18 it takes `d_lock` itself; 6.19+ runs
    /// under its caller's ([`Profile::caller_locks_d_instantiate`]). `None` only up to 4.6,
    /// where `d_add()` of a negative dentry goes through here too.
    ///
    /// [`Profile::caller_locks_d_instantiate`]: crate::Profile::caller_locks_d_instantiate
    fn __d_instantiate(&self, d: DPtr, inode: Option<(u64, InodeKind)>) {
        let ev = self.writer_entry(Probe::DInstantiateInner, d);
        let own_lock = !self.dc.profile.caller_locks_d_instantiate;
        if own_lock {
            d.d_lock.lock();
        }
        self.set_inode_seq(d, inode);
        if own_lock {
            d.d_lock.unlock();
        }
        self.writer_exit(ev, d);
    }

    /// `d_inode` and the type bits set, with `d_seq` moved as the generation's
    /// `__d_instantiate()`/`__d_add()` move it; `None` leaves the dentry negative.
    fn set_inode_seq(&self, d: DPtr, inode: Option<(u64, InodeKind)>) {
        let (ino, kind) = inode.map_or((0, None), |(i, k)| (i, Some(k)));
        match self.dc.profile.instantiate_seq {
            // Up to 4.6: d_inode = inode (NULL too); dentry_rcuwalk_barrier()
            InodeSeq::BarrierAfter => {
                self.set_inode_and_type(d, ino, kind);
                d.d_seq.write_seqcount_invalidate();
            }
            // 4.7+: only given an inode: raw_write_seqcount_begin();
            // __d_set_inode_and_type(); raw_write_seqcount_end()
            InodeSeq::Bracket | InodeSeq::BracketIfHashed => {
                if inode.is_some() {
                    d.d_seq.write_seqcount_begin();
                    self.set_inode_and_type(d, ino, kind);
                    d.d_seq.write_seqcount_end();
                }
            }
        }
    }

    /// `d_instantiate()`: a negative dentry becomes positive (create, mkdir; up to 4.6 also
    /// `d_add()`, with `None` for a negative lookup). 4.7+ does nothing without an inode.
    pub(crate) fn d_instantiate(&self, d: DPtr, inode: Option<(u64, InodeKind)>) {
        let ev = self.writer_entry(Probe::DInstantiate, d);
        if inode.is_some() || self.dc.profile.instantiate_seq == InodeSeq::BarrierAfter {
            if self.dc.profile.caller_locks_d_instantiate {
                d.d_lock.lock();
                self.__d_instantiate(d, inode);
                d.d_lock.unlock();
            } else {
                self.__d_instantiate(d, inode);
            }
        }
        self.writer_exit(ev, d);
    }

    /// `d_make_persistent()` (6.19+, tmpfs's create): `__d_instantiate()`, the pin
    /// (`dget_dlock()`) and, for an unhashed dentry, the hash, all in one `d_lock` section; no
    /// `d_instantiate()` runs. The `DCACHE_PERSISTENT` mark is not modelled: only umount reads
    /// it.
    pub(crate) fn d_make_persistent(&self, d: DPtr, inode: (u64, InodeKind)) {
        d.d_lock.lock();
        self.__d_instantiate(d, Some(inode));
        d.count_add(1);
        if d.d_unhashed() {
            self.__d_rehash(d, d.d_name().hash);
        }
        d.d_lock.unlock();
    }

    /// `d_make_discardable()` (6.19+, tmpfs's unlink and rmdir): the pin dropped under
    /// `d_lock`, then `finish_dput()`. Up to 7.1 that starts with `lock_for_kill()`, which
    /// refuses a dentry still in use without entering `__dentry_kill()`: the model's `dput`
    /// (a decrement under `d_lock`) does the same. 7.2's enters `dentry_kill()` at once, which
    /// gives up while the caller still holds its reference: a `dentry_kill` event in every
    /// tmpfs unlink before its `d_delete` ([`KillEntry::DentryKillChecks`]).
    pub(crate) fn d_make_discardable(&self, d: DPtr) {
        match self.dc.profile.kill_entry {
            KillEntry::CallerChecks => self.dput(d),
            KillEntry::DentryKillChecks => {
                d.d_lock.lock();
                d.count_add(-1);
                self.finish_dput(d);
            }
        }
    }

    /// `__d_rehash()`: hash the dentry into the bucket of `hash`; `d_lock` held.
    fn __d_rehash(&self, d: DPtr, hash: u32) {
        let b = self.d_hash(hash);
        b.lock.lock();
        b.add_head_rcu(d);
        b.lock.unlock();
    }

    /// `d_add()`: instantiate (or leave negative) and hash a fresh dentry, through the
    /// functions of the generation's source ([`DAddShape`]), whose probes fire inside it.
    pub(crate) fn d_add(&self, d: DPtr, inode: Option<(u64, InodeKind)>) {
        let ev = self.writer_entry(Probe::DAdd, d);
        match self.dc.profile.d_add {
            // Up to 4.6: d_instantiate(entry, inode); d_rehash(entry);
            DAddShape::InstantiateThenRehash => {
                self.d_instantiate(d, inode);
                d.d_lock.lock();
                self.__d_rehash(d, d.d_name().hash);
                d.d_lock.unlock();
            }
            DAddShape::InnerDAdd => self.__d_add(d, inode),
        }
        self.writer_exit(ev, d);
    }

    /// `__d_add()` (4.7+): one `d_lock` section sets the inode, bracketed, and hashes; no
    /// `__d_instantiate()`.
    fn __d_add(&self, d: DPtr, inode: Option<(u64, InodeKind)>) {
        let ev = self.writer_entry(Probe::DAddInner, d);
        d.d_lock.lock();
        self.set_inode_seq(d, inode);
        self.__d_rehash(d, d.d_name().hash);
        d.d_lock.unlock();
        self.writer_exit(ev, d);
    }

    /// `__d_lookup_rcu()`: lockless hash-chain walk, inside the caller's RCU read section. On a
    /// hit, `*seqp` is the `d_seq` the caller must re-check. 3.0 also hands back the inode it read
    /// inside the seq section (`*inode`); 3.5+ leave the inode to the caller.
    pub(crate) fn __d_lookup_rcu(
        &self,
        _rcu: &RcuReadGuard,
        parent: DPtr,
        name: &Name<'_>,
        seqp: &mut u32,
        inode: &mut u64,
    ) -> Option<DPtr> {
        let ts = self.probe_clock();
        let p = &self.dc.profile;
        let b = self.d_hash(name.hash);
        let seq_begin = |d: DPtr| {
            if p.reader_waits_even_seq {
                d.d_seq.read_seqcount_begin()
            } else {
                d.d_seq
                    .raw_seqcount_begin(p.mutants.seqcount_begin_keeps_bit0)
            }
        };
        let skip_unhashed_check = p.mutants.lookup_no_unhashed_check;
        // hlist_bl_for_each_entry_rcu(dentry, node, b, d_hash)
        let mut node = b.first.load(Ordering::Acquire);
        let found = 'chain: loop {
            let Some(dentry) = DPtr::new(node) else {
                break None;
            };
            node = dentry.d_hash.next.load(Ordering::Acquire);
            if p.caller == Caller::DoLookup {
                // 3.0: if (dentry->d_name.hash != hash) continue; then the seqretry loop.
                if dentry.d_name().hash != name.hash {
                    continue;
                }
                loop {
                    let seq = seq_begin(dentry);
                    if dentry.d_parent.load(Ordering::Relaxed) != parent.as_ptr() {
                        continue 'chain;
                    }
                    if !skip_unhashed_check && dentry.d_unhashed() {
                        continue 'chain;
                    }
                    let tname = dentry.d_name();
                    let i = dentry.d_inode.load(Ordering::Relaxed);
                    if !p.mutants.no_child_seq_recheck
                        && dentry
                            .d_seq
                            .read_seqcount_retry_as(seq, p.mutants.retry_without_rmb)
                    {
                        continue; // goto seqretry
                    }
                    if !same_name(&tname.name, name.name) {
                        continue 'chain;
                    }
                    *seqp = seq;
                    *inode = i;
                    self.reader_validated(dentry, i, i == 0, seq);
                    break 'chain Some(dentry);
                }
            } else {
                // 3.5+ (6.1 as written): seq = raw_seqcount_begin(); parent; unhashed; hash_len;
                // dentry_cmp(); return dentry with *seqp = seq. No d_inode read. 6.19+ checks
                // unhashed after dentry_cmp().
                let seq = seq_begin(dentry);
                if dentry.d_parent.load(Ordering::Relaxed) != parent.as_ptr() {
                    continue;
                }
                let unhashed_last = p.unhashed_check_after_name;
                if !skip_unhashed_check && !unhashed_last && dentry.d_unhashed() {
                    continue;
                }
                let tname = dentry.d_name();
                if tname.hash != name.hash || !same_name(&tname.name, name.name) {
                    continue;
                }
                if !skip_unhashed_check && unhashed_last && dentry.d_unhashed() {
                    continue;
                }
                *seqp = seq;
                break Some(dentry);
            }
        };
        self.lookup_probe(Probe::DLookupRcu, ts, parent, name, found, *seqp);
        found
    }

    /// `__d_lookup()`: ref-walk lookup; takes each candidate's `d_lock` and returns the match
    /// with a reference.
    pub(crate) fn __d_lookup(&self, parent: DPtr, name: &Name<'_>) -> Option<DPtr> {
        let ts = self.probe_clock();
        let rcu = self.rcu.read_lock();
        let b = self.d_hash(name.hash);
        let mut node = b.first.load(Ordering::Acquire);
        let mut found = None;
        while let Some(dentry) = DPtr::new(node) {
            node = dentry.d_hash.next.load(Ordering::Acquire);
            if dentry.d_name().hash != name.hash {
                continue;
            }
            dentry.d_lock.lock();
            if dentry.d_parent.load(Ordering::Relaxed) == parent.as_ptr()
                && !dentry.d_unhashed()
                && same_name(&dentry.d_name().name, name.name)
            {
                dentry.count_add(1);
                dentry.d_lock.unlock();
                found = Some(dentry);
                break;
            }
            dentry.d_lock.unlock();
        }
        drop(rcu);
        let seq = found.map_or(0, |d| d.d_seq.read());
        self.lookup_probe(Probe::DLookup, ts, parent, name, found, seq);
        found
    }

    /// `d_lookup()`: `__d_lookup()` retried while a rename ran (a miss may be a dentry that
    /// `d_move` was carrying between chains).
    pub(crate) fn d_lookup(&self, parent: DPtr, name: &Name<'_>) -> Option<DPtr> {
        loop {
            let seq = self.dc.rename_lock_seq.read_seqcount_begin();
            let d = self.__d_lookup(parent, name);
            if d.is_some() || !self.dc.rename_lock_seq.read_seqcount_retry(seq) {
                return d;
            }
        }
    }

    /// `___d_drop()` (4.15+ split): bucket lock and unlink only; `pprev` stays set and `d_seq`
    /// is left to the caller. The probe sees the dentry hashed at entry and at exit.
    fn ___d_drop(&self, d: DPtr) {
        let ev = self.writer_entry(Probe::DDropInner, d);
        let b = self.d_hash(d.d_name().hash);
        b.lock.lock();
        b.del(d);
        b.lock.unlock();
        self.writer_exit(ev, d);
    }

    /// `__d_drop()`: unhash, then invalidate `d_seq` so RCU walkers that already hold the
    /// dentry fail their re-check. `d_lock` held.
    pub(crate) fn __d_drop(&self, d: DPtr) {
        let m = self.dc.profile.mutants;
        let no_invalidate = m.drop_without_invalidate || m.d_drop_no_invalidate;
        match self.dc.profile.d_drop_shape {
            // 3.0, 4.8: one out-of-line function; its probe fires on every call.
            DDropShape::Single => {
                let ev = self.writer_entry(Probe::DDrop, d);
                if !d.d_unhashed() {
                    let b = self.d_hash(d.d_name().hash);
                    b.lock.lock();
                    b.del(d);
                    d.d_hash
                        .pprev
                        .store(std::ptr::null_mut(), Ordering::Relaxed);
                    b.lock.unlock();
                    // 3.0 dentry_rcuwalk_barrier(), 4.8 write_seqcount_invalidate()
                    if !no_invalidate {
                        d.d_seq.write_seqcount_invalidate();
                    }
                }
                self.writer_exit(ev, d);
            }
            // 4.17, 6.1: ___d_drop(); pprev = NULL; write_seqcount_invalidate().
            DDropShape::Split => {
                // The checker's invariants read no `__d_drop` event; under loom its probe's
                // reads would only add interleavings to every 4.18+ check.
                let ev = if cfg!(loom) {
                    None
                } else {
                    self.writer_entry(Probe::DDrop, d)
                };
                if !d.d_unhashed() {
                    self.___d_drop(d);
                    d.d_hash
                        .pprev
                        .store(std::ptr::null_mut(), Ordering::Relaxed);
                    if !no_invalidate {
                        d.d_seq.write_seqcount_invalidate();
                    }
                }
                self.writer_exit(ev, d);
            }
        }
    }

    /// `d_drop()`: unhash under `d_lock` (`d_invalidate()`, a failed `d_revalidate()`): the
    /// name stays, only this dentry leaves the cache; its last `dput` then kills it unhashed.
    /// The model's syscalls never need it; the checker's unhashed-kill scenario does.
    #[cfg(loom)]
    pub(crate) fn d_drop(&self, d: DPtr) {
        let ev = self.writer_entry(Probe::DDropLocked, d);
        d.d_lock.lock();
        self.__d_drop(d);
        d.d_lock.unlock();
        self.writer_exit(ev, d);
    }

    /// `dentry_unlink_inode()`: clear `d_inode`; `d_lock` held and released here (then `iput`).
    /// `seq` is how `d_seq` moves around the clear: the profile's, or `None` for the mutants
    /// whose kill path clears without a bracket.
    fn dentry_unlink_inode(&self, d: DPtr, seq: Option<InodeSeq>) {
        let ev = self.writer_entry(Probe::DentryUnlinkInode, d);
        match seq {
            None => self.set_inode_and_type(d, 0, None),
            // 3.0: d_inode = NULL; dentry_rcuwalk_barrier()
            Some(InodeSeq::BarrierAfter) => {
                self.set_inode_and_type(d, 0, None);
                d.d_seq.write_seqcount_invalidate();
            }
            // 4.8: bool hashed = !d_unhashed(dentry); bracket only if hashed.
            Some(InodeSeq::BracketIfHashed) => {
                let hashed = !d.d_unhashed();
                if hashed {
                    d.d_seq.write_seqcount_begin();
                }
                self.set_inode_and_type(d, 0, None);
                if hashed {
                    d.d_seq.write_seqcount_end();
                }
            }
            // 4.7 (d_delete), 4.18+: always bracketed.
            Some(InodeSeq::Bracket) => {
                d.d_seq.write_seqcount_begin();
                self.set_inode_and_type(d, 0, None);
                d.d_seq.write_seqcount_end();
            }
        }
        d.d_lock.unlock();
        self.writer_exit(ev, d);
    }

    /// `dentry_iput()` (before 4.8, kill path): `d_inode = NULL` with no seq change of its own;
    /// `d_lock` held and released here.
    fn dentry_iput(&self, d: DPtr) {
        let ev = self.writer_entry(Probe::DentryIput, d);
        if d.d_inode.load(Ordering::Relaxed) != 0 {
            self.set_inode_and_type(d, 0, None);
        }
        d.d_lock.unlock();
        self.writer_exit(ev, d);
    }

    /// The kill path's inode detach: 3.0's `dentry_iput()` or 4.8+'s `dentry_unlink_inode()`
    /// (called only for a positive dentry there). Releases `d_lock`.
    fn kill_detach_inode(&self, d: DPtr) {
        let p = &self.dc.profile;
        match p.kill_iput {
            KillIput::DentryIput => self.dentry_iput(d),
            KillIput::DentryUnlinkInode => {
                if d.d_inode.load(Ordering::Relaxed) != 0 {
                    let unbracketed =
                        p.mutants.drop_without_invalidate || p.mutants.kill_clear_before_unhash;
                    let seq = (!unbracketed).then_some(p.unlink_inode_seq);
                    self.dentry_unlink_inode(d, seq);
                } else {
                    d.d_lock.unlock();
                }
            }
        }
    }

    /// `d_delete()`: after unlink/rmdir. The only user turns the dentry negative in place (it
    /// stays hashed); otherwise it is unhashed and keeps its inode until the last `dput`.
    pub(crate) fn d_delete(&self, d: DPtr) {
        let ev = self.writer_entry(Probe::DDelete, d);
        d.d_lock.lock();
        if d.count() == 1 {
            self.dentry_unlink_inode(d, Some(self.dc.profile.unlink_inode_seq));
        } else {
            match self.dc.profile.d_delete_drop {
                DDeleteDrop::IfHashed => {
                    if !d.d_unhashed() {
                        self.__d_drop(d);
                    }
                }
                // `__d_drop()` tests `d_unhashed()` itself; its probe fires either way.
                DDeleteDrop::Always => self.__d_drop(d),
            }
            d.d_lock.unlock();
        }
        self.writer_exit(ev, d);
    }

    /// `dentry_unlist()`: `d_lock` held. Marks the dentry killed (`DCACHE_DENTRY_KILLED`:
    /// `d_walk()`'s ascent tests it, and from 6.8 a dispose list's owner,
    /// [`DisposeFree::DentryKilled`]); the model keeps no `d_subdirs` to take it off (a walk
    /// finds children by `d_parent`).
    fn dentry_unlist(&self, d: DPtr) {
        d.flags_update(DCACHE_DENTRY_KILLED, 0);
    }

    /// `dentry_free()`: `call_rcu(&dentry->d_u.d_rcu, __d_free)`.
    fn dentry_free(&self, d: DPtr) {
        // SAFETY: the dentry is dead, unhashed, off every list, and this is its only free.
        unsafe { self.rcu.call_rcu_free(d.as_ptr()) };
    }

    /// `__dentry_kill()` (6.1; 3.0's `dentry_kill()` + `d_kill()`): `d_lock` held, released
    /// here. Up to 6.7 `locked_parent`'s `d_lock` is held too (`dentry_kill()` took it) and
    /// released after the unhash and unlist, before the inode detach; the caller then drops
    /// the reference the dentry held on its parent, and this returns `None`. From 6.8
    /// (`locked_parent` is `None`) the parent is locked only after the detach ("now that it's
    /// negative, ->d_parent is stable"), then the dentry again inside it, to unlist it and test
    /// `DCACHE_SHRINK_LIST` under both; the parent's count drops under its lock, and the parent
    /// comes back still locked when that was its last reference, else unlocked and `None`
    /// ([`KillParentLock::AfterUnlinkInode`]). `ev` is the open event of the function this body
    /// belongs to: `__dentry_kill`'s own up to 7.1, 7.2's `dentry_kill`'s, which runs it after
    /// its `lock_for_kill()` ([`KillEntry`]).
    fn __dentry_kill(
        &self,
        ev: Option<Event>,
        d: DPtr,
        locked_parent: Option<DPtr>,
    ) -> Option<DPtr> {
        let p = self.dc.profile;
        // lockref_mark_dead(): lockref_get_not_dead() fails from now on.
        d.d_count.store(LOCKREF_DEAD, Ordering::Relaxed);
        let f = d.flags();
        if f & DCACHE_LRU_LIST != 0 && f & DCACHE_SHRINK_LIST == 0 {
            self.d_lru_del(d);
        }
        if p.mutants.kill_clear_before_unhash {
            self.set_inode_and_type(d, 0, None);
        }
        // if it was on the hash then remove it
        self.__d_drop(d);
        if p.kill_parent_lock == KillParentLock::AroundUnhash {
            self.dentry_unlist(d);
            // spin_unlock(&parent->d_lock)
            if let Some(parent) = locked_parent {
                parent.d_lock.unlock();
            }
        }
        self.step(Step::KillAfterUnhash);
        self.kill_detach_inode(d);
        self.dc.nr_dentry.fetch_sub(1, Ordering::Relaxed);
        let parent = match p.kill_parent_lock {
            KillParentLock::AroundUnhash => {
                d.d_lock.lock();
                None
            }
            KillParentLock::AfterUnlinkInode => {
                // if (!IS_ROOT(dentry)) spin_lock(&parent->d_lock);
                let parent = d.d_parent();
                let parent = (parent != d).then_some(parent);
                if let Some(parent) = parent {
                    parent.d_lock.lock();
                }
                // spin_lock_nested(&dentry->d_lock, DENTRY_D_LOCK_NESTED)
                d.d_lock.lock();
                self.dentry_unlist(d);
                parent
            }
        };
        let can_free = if d.flags() & DCACHE_SHRINK_LIST != 0 {
            if p.dispose_free == DisposeFree::MayFree {
                d.flags_update(DCACHE_MAY_FREE, 0);
            }
            false
        } else {
            true
        };
        d.d_lock.unlock();
        // The kernel's exit half reads the dentry after dentry_free() queued it, and from 6.8
        // after the parent's count dropped; the model's reads it just before, the same state.
        self.writer_exit(ev, d);
        if can_free {
            self.dentry_free(d);
        }
        // 6.8+: if (parent && --parent->d_lockref.count) unlock and return NULL.
        let parent = parent?;
        parent.count_add(-1);
        if parent.count() != 0 {
            parent.d_lock.unlock();
            return None;
        }
        Some(parent)
    }

    /// `dentry_kill()`: `d_lock` held. Up to 6.7 it kills and returns the parent, unlocked,
    /// whose reference the caller drops next (`dput`'s loop), or `None` when the dentry is
    /// kept after all. Up to 6.7 it first takes the
    /// parent's `d_lock`: a trylock, else `__lock_parent()`'s parent-then-child order, after
    /// which the parent may have changed (a rename: look again) and the dentry may have gained
    /// a user or a hash (the kernel's `got_locks` re-check: `dput`'s reference is dropped as
    /// `dput` would, a shrinker's candidate is left to its user).
    ///
    /// From 6.8 it is `__dentry_kill()` under its probe, which drops the parent's reference
    /// itself and returns the parent still locked when that was its last one
    /// ([`KillParentLock::AfterUnlinkInode`]). 7.2+ ([`KillEntry::DentryKillChecks`]):
    /// `dentry_kill()` is the kill itself: `lock_for_kill()` first, then `__dentry_kill()`'s
    /// body under this function's own event, a give-up included.
    fn dentry_kill(&self, d: DPtr) -> Option<DPtr> {
        let p = self.dc.profile;
        if p.kill_parent_lock == KillParentLock::AfterUnlinkInode {
            let ev = match p.kill_entry {
                KillEntry::CallerChecks => self.writer_entry(Probe::DentryKill, d),
                KillEntry::DentryKillChecks => {
                    let ev = self.writer_entry(Probe::DentryKillLocked, d);
                    // A give-up's exit event reads the dentry after lock_for_kill() let it go,
                    // when its new user may kill and free it: read it under RCU.
                    let rcu = ev.is_some().then(|| self.rcu.read_lock());
                    if !self.lock_for_kill(d) {
                        self.writer_exit(ev, d);
                        return None;
                    }
                    drop(rcu);
                    ev
                }
            };
            return self.__dentry_kill(ev, d, None);
        }
        let count = d.count();
        let mut relocked = false;
        let parent = loop {
            let parent = d.d_parent();
            if parent == d {
                break None;
            }
            if parent.d_lock.try_lock() {
                break Some(parent);
            }
            relocked = true;
            // __lock_parent(): rcu_read_lock() before the dentry's lock goes. Without it a
            // rename can move the dentry meanwhile, drop the old parent's last reference and
            // free it before we lock it (the likely cause of the one SIGSEGV the stress test
            // showed, in a unit step of this session).
            let rcu = self.rcu.read_lock();
            d.d_lock.unlock();
            parent.d_lock.lock();
            d.d_lock.lock();
            let same = d.d_parent() == parent;
            if !same {
                parent.d_lock.unlock();
            }
            drop(rcu); // rcu_read_unlock()
            if same {
                break Some(parent);
            }
        };
        let kept = relocked
            && if count != 1 {
                // A shrinker's unused dentry: leave it to whoever took it.
                d.count() != count
            } else if d.count() != 1 {
                // dput's reference, no longer the last one.
                d.count_add(-1);
                true
            } else {
                self.retain_dentry(d)
            };
        if kept {
            d.d_lock.unlock();
            if let Some(p) = parent {
                p.d_lock.unlock();
            }
            return None;
        }
        self.__dentry_kill(self.writer_entry(Probe::DentryKill, d), d, parent);
        parent
    }

    /// `lock_for_kill()` (7.2's form, which unlocks on failure): `d_lock` held; false, with
    /// `d_lock` released, when the dentry has a user again or is dying. The model keeps no
    /// `i_lock`, so the kernel's trylock-or-relock dance (the other window for a new user) has
    /// no counterpart here; the count check is what a shrink list's dentry meets.
    fn lock_for_kill(&self, d: DPtr) -> bool {
        if d.count() != 0 {
            d.d_lock.unlock();
            return false;
        }
        true
    }

    /// `retain_dentry()`: last reference going; keep it cached on the LRU? `d_lock` held. Up
    /// to 6.7 the count drops here when it is kept; from 6.8 the caller has dropped it
    /// before asking, and a parent whose last reference a kill dropped is asked with its
    /// count 0 ([`KillParentLock::AfterUnlinkInode`]).
    fn retain_dentry(&self, d: DPtr) -> bool {
        if d.d_unhashed() {
            return false; // unreachable: get rid of it
        }
        if d.flags() & DCACHE_OP_DELETE != 0 {
            return false; // tmpfs: always_delete_dentry()
        }
        if self.dc.profile.kill_parent_lock == KillParentLock::AroundUnhash {
            d.count_add(-1);
        }
        match self.dc.profile.dput_referenced {
            DputReferenced::EveryRetain => {
                if d.flags() & DCACHE_REFERENCED == 0 {
                    d.flags_update(DCACHE_REFERENCED, 0);
                }
                if d.flags() & DCACHE_LRU_LIST == 0 {
                    self.d_lru_add(d);
                }
            }
            DputReferenced::OnLru => {
                if d.flags() & DCACHE_LRU_LIST == 0 {
                    self.d_lru_add(d);
                } else if d.flags() & DCACHE_REFERENCED == 0 {
                    d.flags_update(DCACHE_REFERENCED, 0);
                }
            }
        }
        true
    }

    /// `dput()`. From 6.8 `fast_dput()` drops the last reference before it asks
    /// `retain_dentry()`, and `finish_dput()` kills what is not kept.
    pub(crate) fn dput(&self, d: DPtr) {
        let after_unlink_inode =
            self.dc.profile.kill_parent_lock == KillParentLock::AfterUnlinkInode;
        let mut next = Some(d);
        while let Some(d) = next {
            d.d_lock.lock();
            debug_assert!(d.count() > 0, "dput of a dead or unreferenced dentry");
            if d.count() > 1 {
                d.count_add(-1);
                d.d_lock.unlock();
                return;
            }
            if after_unlink_inode {
                // fast_dput(): the count drops before retain_dentry() is asked.
                d.count_add(-1);
            }
            if self.retain_dentry(d) {
                d.d_lock.unlock();
                return;
            }
            if after_unlink_inode {
                self.finish_dput(d);
                return;
            }
            next = self.dentry_kill(d);
        }
    }

    /// `finish_dput()` (7.1's name for 6.8's loop in `dput()`): `d_lock` held, the count
    /// dropped. Kills `d`, then each parent the kill hands back locked (the kill dropped its
    /// last reference) that `retain_dentry()` does not keep. 6.8 to 7.1 ask `lock_for_kill()`
    /// before each kill, 7.2's `dentry_kill()` asks it; the count is 0 under `d_lock` and the
    /// model has no `i_lock` to drop it for, so only 7.2's give-up (a tmpfs unlink's
    /// `d_make_discardable()` while its caller holds the dentry) stops here.
    fn finish_dput(&self, d: DPtr) {
        let mut next = d;
        while let Some(parent) = self.dentry_kill(next) {
            if self.retain_dentry(parent) {
                parent.d_lock.unlock();
                return;
            }
            next = parent;
        }
    }

    /// `d_lru_add()`: `d_lock` held; takes the LRU lock inside it.
    fn d_lru_add(&self, d: DPtr) {
        let mut lru = self.dc.lru.lock();
        lru.add_newest(d);
        d.flags_update(DCACHE_LRU_LIST, 0);
    }

    /// `d_lru_del()`: `d_lock` held.
    fn d_lru_del(&self, d: DPtr) {
        let mut lru = self.dc.lru.lock();
        lru.list.remove(&d.d_lru_key.load(Ordering::Relaxed));
        d.flags_update(0, DCACHE_LRU_LIST);
    }

    /// `drop_slab()`: passes of the shrinker ([`Task::shrink_slab`]) while the generation's
    /// condition on a pass's count holds ([`DropSlabLoop`]). Returns the counts' sum.
    ///
    /// [`DropSlabLoop`]: crate::profile::DropSlabLoop
    pub(crate) fn drop_slab(&self) -> usize {
        drop_slab_node(self.dc.profile.drop_slab_loop, || self.shrink_slab())
    }

    /// `shrink_slab()` of the one superblock's dcache, as `drop_slab()` calls it: a scan of
    /// twice the freeable count (3.x's `max_pass * 2`, 4.x's `2 * freeable` cap of
    /// `do_shrink_slab()`) in batches, each a call of `prune_dcache_sb()`. The kernel's
    /// batches are `SHRINK_BATCH` (128) objects shared out between the superblock's caches
    /// (2.6.38 to 3.11 also round the freeable count down to hundreds): on the model's small
    /// caches it would prune nothing, so a batch is the whole freeable count. 3.12+'s walk
    /// counts visits and spends the scan in one call, meeting its rotated dentries again; up
    /// to 3.11 the walk counts isolations, so the scan takes two calls of the freeable count,
    /// and the second isolates what the first parked. Returns the dentries isolated.
    pub(crate) fn shrink_slab(&self) -> usize {
        let freeable = self.dc.nr_unused();
        match self.dc.profile.prune_walk {
            PruneWalk::ListLru => self.prune_dcache_sb(2 * freeable),
            PruneWalk::ReferencedList => {
                self.prune_dcache_sb(freeable) + self.prune_dcache_sb(freeable)
            }
        }
    }

    /// `prune_dcache_sb()`: the shrinker's walk of the LRU, oldest first, isolating unused
    /// dentries onto a private dispose list, which it then kills (`shrink_dentry_list()`).
    /// The walk is the generation's ([`PruneWalk`]): 3.12+'s `list_lru_walk_node()` or the
    /// referenced list of 2.6.38 to 3.11. Returns how many it isolated for freeing.
    ///
    /// [`PruneWalk`]: crate::profile::PruneWalk
    pub(crate) fn prune_dcache_sb(&self, nr_to_scan: usize) -> usize {
        let mut dispose = VecDeque::new();
        let freed = match self.dc.profile.prune_walk {
            PruneWalk::ReferencedList => self.__shrink_dcache_sb(nr_to_scan, &mut dispose),
            PruneWalk::ListLru => self.list_lru_walk_node(nr_to_scan, &mut dispose),
        };
        self.shrink_dentry_list(dispose);
        freed
    }

    /// 3.12+: `list_lru_walk_node()` with `dentry_lru_isolate()`: visits up to `nr_to_walk`
    /// LRU entries, oldest first. A rotated (recently referenced) dentry goes to the newest
    /// end and can be met again in the same walk. Counts every `LRU_REMOVED`, an in-use
    /// dentry taken off the LRU as well as one moved to the dispose list (3.12.0's
    /// mm/list_lru.c:90, 4.0.0's :213, 6.1.0's :236).
    fn list_lru_walk_node(&self, nr_to_walk: usize, dispose: &mut VecDeque<DPtr>) -> usize {
        let mut lru = self.dc.lru.lock();
        let mut isolated = 0;
        let mut cursor = 0;
        for _ in 0..nr_to_walk {
            let Some((&key, &d)) = lru.list.range(cursor + 1..).next() else {
                break;
            };
            cursor = key;
            // The LRU lock nests inside d_lock elsewhere: only a trylock here (LRU_SKIP).
            if !d.d_lock.try_lock() {
                continue;
            }
            if d.count() != 0 {
                // In use: lazily drop it from the LRU (d_lru_isolate), LRU_REMOVED.
                lru.list.remove(&key);
                d.flags_update(0, DCACHE_LRU_LIST);
                isolated += 1;
            } else if d.flags() & DCACHE_REFERENCED != 0 {
                // Recently used: age it and give it another round (LRU_ROTATE).
                d.flags_update(0, DCACHE_REFERENCED);
                lru.list.remove(&key);
                lru.add_newest(d);
            } else {
                // d_lru_shrink_move(): onto the dispose list, LRU_REMOVED.
                lru.list.remove(&key);
                d.flags_update(DCACHE_SHRINK_LIST, 0);
                dispose_add(dispose, d, self.dc.profile.dispose_add);
                isolated += 1;
            }
            d.d_lock.unlock();
        }
        isolated
    }

    /// 2.6.38 to 3.11 (`__shrink_dcache_sb()`, from 3.3 the body of `prune_dcache_sb()`):
    /// take the LRU's oldest dentry until the LRU is empty or `count` went onto the dispose
    /// list (0 never stops it, as the kernel's `--count`). A referenced one loses the flag and
    /// waits on the walk's private `referenced` list; the rest, in use or not, go onto the
    /// dispose list (`shrink_dentry_list()` drops the ones in use). After the walk
    /// `list_splice()` puts the referenced ones back at the LRU's newest end, in the walk's
    /// order: this walk never isolates them.
    ///
    /// The model's LRU is one ordered map that `d_lru_del()` finds a dentry in by its key, so
    /// the referenced list is kept inside it: each parked dentry moves to the newest end at
    /// once and the walk passes over the keys it parked; the splice moves them, those still
    /// there, to the newest end again. Unlike the kernel's private list, another walker can
    /// meet them meanwhile.
    fn __shrink_dcache_sb(&self, count: usize, dispose: &mut VecDeque<DPtr>) -> usize {
        // Parked keys, in walk order (they only grow): looked up at every step.
        let mut referenced = std::collections::BTreeSet::new();
        let mut isolated = 0;
        let mut spins = 0;
        // relock:
        let mut lru = loop {
            let mut lru = self.dc.lru.lock();
            let mut relock = false;
            loop {
                let oldest = lru.list.iter().find(|(k, _)| !referenced.contains(*k));
                let Some((&key, &d)) = oldest else {
                    break;
                };
                // The LRU lock nests inside d_lock elsewhere: a failed trylock drops it and
                // starts again from the oldest.
                if !d.d_lock.try_lock() {
                    relock = true;
                    break;
                }
                lru.list.remove(&key);
                if d.flags() & DCACHE_REFERENCED != 0 {
                    d.flags_update(0, DCACHE_REFERENCED);
                    // list_move(&dentry->d_lru, &referenced)
                    referenced.insert(lru.add_newest(d));
                    d.d_lock.unlock();
                } else {
                    // list_move_tail(&dentry->d_lru, &tmp)
                    d.flags_update(DCACHE_SHRINK_LIST, 0);
                    dispose_add(dispose, d, self.dc.profile.dispose_add);
                    d.d_lock.unlock();
                    isolated += 1;
                    if isolated == count {
                        break;
                    }
                }
            }
            if !relock {
                break lru;
            }
            drop(lru);
            cpu_relax(&mut spins);
        };
        // list_splice(&referenced, &sb->s_dentry_lru)
        for key in referenced {
            if let Some(d) = lru.list.remove(&key) {
                lru.add_newest(d);
            }
        }
        isolated
    }

    /// `shrink_dcache_parent()`: `d_walk()` with `select_collect()` over the directory's
    /// children from the head of its `d_subdirs` (newest add first, [`Dentry::d_child_key`]),
    /// isolating the unused ones onto the dispose list, then killing them (vfs_rmdir and a
    /// rename over a directory call it so a removed directory keeps no cached children). The
    /// model keeps no `d_subdirs`: the children it can isolate are those on the LRU, visited
    /// in the list's order. Up to 3.2 (the LRU's tail, taken back by `__shrink_dcache_sb()`)
    /// and from 3.12 (`d_shrink_add()`'s head add) the newest child dies first; with 3.3 to
    /// 3.11's dispose list (`select_parent()`'s `list_move_tail()`) the oldest
    /// ([`Profile::parent_dispose_add`]).
    ///
    /// [`Dentry::d_child_key`]: crate::dentry::Dentry
    /// [`Profile::parent_dispose_add`]: crate::Profile
    pub(crate) fn shrink_dcache_parent(&self, dir: DPtr) {
        let mut dispose = VecDeque::new();
        {
            let mut lru = self.dc.lru.lock();
            let mut children: Vec<(u64, DPtr)> = lru
                .list
                .iter()
                .filter(|(_, d)| d.d_parent.load(Ordering::Relaxed) == dir.as_ptr())
                .map(|(&key, &d)| (key, d))
                .collect();
            children.sort_by_key(|(_, d)| std::cmp::Reverse(d.d_child_key.load(Ordering::Relaxed)));
            for (key, d) in children {
                if !d.d_lock.try_lock() {
                    continue;
                }
                if d.count() == 0 {
                    lru.list.remove(&key);
                    d.flags_update(DCACHE_SHRINK_LIST, 0);
                    dispose_add(&mut dispose, d, self.dc.profile.parent_dispose_add);
                }
                d.d_lock.unlock();
            }
        }
        self.shrink_dentry_list(dispose);
    }

    /// `shrink_dentry_list()`: kill what is still unused on a dispose list; free what someone
    /// else killed meanwhile (`DCACHE_MAY_FREE`); drop what got used again. The kernel takes
    /// `list->prev`, the tail (the back here).
    ///
    /// 7.2+ leaves the count to `dentry_kill()`: only a dentry someone else killed meanwhile
    /// is freed here; one that got used again (or is dying) enters `dentry_kill()`, which
    /// gives up.
    fn shrink_dentry_list(&self, mut list: VecDeque<DPtr>) {
        while let Some(d) = list.pop_back() {
            d.d_lock.lock();
            if self.dc.profile.kill_entry == KillEntry::DentryKillChecks {
                self.d_shrink_del(d);
                if self.killed_on_dispose_list(d) {
                    d.d_lock.unlock();
                    self.dentry_free(d);
                    continue;
                }
                self.step(Step::ShrinkBeforeKill);
                self.shrink_kill(d);
                continue;
            }
            let p = self.dc.profile;
            if p.kill_parent_lock == KillParentLock::AfterUnlinkInode
                || p.shrink_lock == ShrinkLock::ClearFirst
            {
                if d.count() != 0 {
                    // Someone took a reference, or killed it while it sat on our list.
                    self.d_shrink_del(d);
                    self.free_if_killed_on_dispose_list(d);
                    continue;
                }
                self.d_shrink_del(d);
                self.step(Step::ShrinkBeforeKill);
                if p.kill_parent_lock == KillParentLock::AfterUnlinkInode {
                    self.shrink_kill(d);
                } else {
                    self.kill_ancestors(self.dentry_kill(d));
                }
                continue;
            }
            // 4.17 to 6.7: the parent's d_lock first, d_shrink_del() under it.
            let rcu = self.rcu.read_lock();
            let locked = self.shrink_lock_dentry(d);
            drop(rcu);
            self.d_shrink_del(d);
            let parent = match locked {
                ShrinkLocked::Parent(parent) => parent,
                ShrinkLocked::GaveUp => {
                    self.free_if_killed_on_dispose_list(d);
                    continue;
                }
            };
            self.step(Step::ShrinkBeforeKill);
            match p.shrink_parent {
                ShrinkParent::KilledNext => {
                    self.__dentry_kill(self.writer_entry(Probe::DentryKill, d), d, parent);
                    self.kill_ancestors(parent);
                }
                ShrinkParent::DputToListFirst => {
                    if let Some(parent) = parent {
                        self.__dput_to_list(parent, &mut list);
                    }
                    self.__dentry_kill(self.writer_entry(Probe::DentryKill, d), d, parent);
                }
            }
        }
    }

    /// `d_shrink_del()`: off the owner's dispose list, and so off the LRU's accounting too
    /// (the list was isolated from it). `d_lock` held.
    fn d_shrink_del(&self, d: DPtr) {
        d.flags_update(0, DCACHE_SHRINK_LIST | DCACHE_LRU_LIST);
    }

    /// The end of a dispose list's dentry its owner does not kill (`d_lock` held, released
    /// here): freed when someone else killed it meanwhile and left the free to the list's
    /// owner, else left to its user.
    fn free_if_killed_on_dispose_list(&self, d: DPtr) {
        let can_free = self.killed_on_dispose_list(d);
        d.d_lock.unlock();
        if can_free {
            self.dentry_free(d);
        }
    }

    /// `shrink_lock_dentry()` (4.17 to 6.7, [`ShrinkLock::ShrinkLockDentry`]): `d_lock` held,
    /// under RCU, and held again on return. The dentry's parent locked for its kill (none for
    /// a root), or given up when someone holds the dentry or the parent changed under the
    /// relock (the model has no `i_lock`, the kernel's other relock).
    fn shrink_lock_dentry(&self, d: DPtr) -> ShrinkLocked {
        if d.count() != 0 {
            return ShrinkLocked::GaveUp;
        }
        let parent = d.d_parent();
        if parent == d {
            return ShrinkLocked::Parent(None);
        }
        if parent.d_lock.try_lock() {
            return ShrinkLocked::Parent(Some(parent));
        }
        d.d_lock.unlock();
        self.step(Step::ShrinkRelock);
        parent.d_lock.lock();
        if parent != d.d_parent() {
            parent.d_lock.unlock();
            d.d_lock.lock();
            return ShrinkLocked::GaveUp;
        }
        // spin_lock_nested(&dentry->d_lock, DENTRY_D_LOCK_NESTED)
        d.d_lock.lock();
        if d.count() == 0 {
            return ShrinkLocked::Parent(Some(parent));
        }
        parent.d_lock.unlock();
        ShrinkLocked::GaveUp
    }

    /// Whether someone else killed `d` while it sat on the caller's dispose list, leaving the
    /// free to the list's owner ([`DisposeFree`]). `d_lock` held, `DCACHE_SHRINK_LIST` just
    /// cleared by the owner.
    fn killed_on_dispose_list(&self, d: DPtr) -> bool {
        match self.dc.profile.dispose_free {
            DisposeFree::MayFree => d.count() < 0 && d.flags() & DCACHE_MAY_FREE != 0,
            DisposeFree::DentryKilled => d.flags() & DCACHE_DENTRY_KILLED != 0,
        }
    }

    /// Up to 5.2 ([`ShrinkParent::KilledNext`]): the ancestor loop after a dispose list's kill
    /// (3.0's and 3.10.105's `try_prune_one_dentry()`, 4.4.155's and 4.19.1's
    /// `shrink_dentry_list()`): a parent still in use only loses the reference
    /// (`lockref_put_or_lock()`, `d_count--`) and stays on the LRU; one whose last reference
    /// that was dies at once through `dentry_kill()`, whatever list it sits on (that list's
    /// owner frees it, `DCACHE_MAY_FREE`).
    fn kill_ancestors(&self, mut next: Option<DPtr>) {
        while let Some(parent) = next {
            parent.d_lock.lock();
            if parent.count() > 1 {
                parent.count_add(-1);
                parent.d_lock.unlock();
                return;
            }
            next = self.dentry_kill(parent);
        }
    }

    /// `shrink_kill()` (6.8+, [`KillParentLock::AfterUnlinkInode`]): kill a dispose list's
    /// dentry, then each ancestor the kill below it hands back locked (its last reference was
    /// the one that kill dropped), at once and without asking `retain_dentry()`, whatever
    /// list it sits on (that list's owner frees it); a parent still in use only loses a
    /// reference, under its lock, and stays on the LRU. 5.3 to 6.7 put such a parent through
    /// `__dput_to_list()` instead. `d_lock` held, count 0.
    fn shrink_kill(&self, victim: DPtr) {
        let mut victim = victim;
        // 6.8 to 7.1 call lock_for_kill() on each parent here, 7.2's dentry_kill() does: its
        // count is 0 under d_lock, and the model has no i_lock to drop it for, so it passes.
        while let Some(parent) = self.dentry_kill(victim) {
            victim = parent;
        }
    }

    /// `__dput_to_list()` (5.3 to 6.7): drop the reference a killed child held; a parent left
    /// unused joins the same dispose list at its head (`d_shrink_add()`), killed after what
    /// the list already holds. `d_lock` held. Up to 5.2 [`Self::kill_ancestors`] kills it at
    /// once, as 6.8's [`Self::shrink_kill`] does.
    fn __dput_to_list(&self, d: DPtr, list: &mut VecDeque<DPtr>) {
        if d.flags() & DCACHE_SHRINK_LIST != 0 {
            // Let the owner of the list it is on deal with it.
            d.count_add(-1);
        } else {
            if d.flags() & DCACHE_LRU_LIST != 0 {
                self.d_lru_del(d);
            }
            d.count_add(-1);
            if d.count() == 0 {
                // d_shrink_add()
                d.flags_update(DCACHE_SHRINK_LIST | DCACHE_LRU_LIST, 0);
                list.push_front(d);
            }
        }
    }

    /// `d_move()`: `dentry` takes `target`'s name and place; `target` is left unhashed for its
    /// last `dput` to kill. Caller holds references on both and on both parents, and the
    /// namespace lock.
    pub(crate) fn d_move(&self, dentry: DPtr, target: DPtr) {
        // write_seqlock(&rename_lock)
        self.dc.rename_lock.lock();
        self.dc.rename_lock_seq.write_seqcount_begin();
        self.__d_move(dentry, target);
        self.dc.rename_lock_seq.write_seqcount_end();
        self.dc.rename_lock.unlock();
    }

    fn __d_move(&self, dentry: DPtr, target: DPtr) {
        let ev = self.writer_entry(Probe::DMove, dentry);
        let tev = self.writer_entry(Probe::DMoveTarget, target);
        self.__d_move_body(dentry, target);
        self.writer_exit(ev, dentry);
        self.writer_exit(tev, target);
    }

    /// `d_exchange()`: two positive dentries swap names and parents (`renameat2` with
    /// `RENAME_EXCHANGE`); both stay hashed, each under its new name. `__d_move(dentry,
    /// target, true)` in its generation's shape: 4.8's (`__d_drop` both, `swap_names()`,
    /// rehash both) and 6.1's (`___d_drop` both, parents, rehash); before 4.8 each is rehashed
    /// right after its `__d_drop`, as in 3.15's (exchange came in 3.15: older profiles take
    /// that shape too).
    pub(crate) fn d_exchange(&self, dentry: DPtr, target: DPtr) {
        let p = self.dc.profile;
        self.dc.rename_lock.lock();
        self.dc.rename_lock_seq.write_seqcount_begin();
        let ev = self.writer_entry(Probe::DMove, dentry);
        let tev = self.writer_entry(Probe::DMoveTarget, target);
        let (old_parent, new_parent) = self.lock_for_move(dentry, target);
        dentry.d_seq.write_seqcount_begin();
        target.d_seq.write_seqcount_begin();
        let (dhash, thash) = (dentry.d_name().hash, target.d_name().hash);
        let single = p.d_drop_shape == DDropShape::Single;
        let early = single && p.d_move_rehash == DMoveRehash::BeforeNameSwitch;
        // unhash both
        for (d, new_hash) in [(dentry, thash), (target, dhash)] {
            if single {
                self.__d_drop(d);
                if early {
                    self.__d_rehash(d, new_hash);
                }
            } else if !d.d_unhashed() {
                self.___d_drop(d);
            }
        }
        // swap_names()
        let old_name = dentry.d_name.load(Ordering::Relaxed);
        let tname = target.d_name.swap(old_name, Ordering::AcqRel);
        dentry.d_name.store(tname, Ordering::Release);
        if single && !early {
            self.__d_rehash(dentry, thash);
            self.__d_rehash(target, dhash);
        }
        // ... and switch them in the tree: both parents.
        dentry
            .d_parent
            .store(new_parent.as_ptr(), Ordering::Relaxed);
        target
            .d_parent
            .store(old_parent.as_ptr(), Ordering::Relaxed);
        self.d_child_add(target);
        self.d_child_add(dentry);
        if !single {
            self.__d_rehash(target, dhash);
            self.__d_rehash(dentry, thash);
        }
        target.d_seq.write_seqcount_end();
        dentry.d_seq.write_seqcount_end();
        self.unlock_for_move(dentry, target, old_parent, new_parent);
        self.writer_exit(ev, dentry);
        self.writer_exit(tev, target);
        self.dc.rename_lock_seq.write_seqcount_end();
        self.dc.rename_lock.unlock();
    }

    /// The `d_lock`s `__d_move()` takes, in its generation's order; returns the dentry's parent
    /// and the target's. The parents first, the one above the other first (the target's when
    /// neither is), the shared one once: up to 4.16 `dentry_lock_for_move()` asks
    /// `d_ancestor(dentry->d_parent, target->d_parent)`, 4.17+'s inline code
    /// `d_ancestor(old_parent, target)`, which order the parents alike (2.6.38's, 3.0.1's,
    /// 4.14.177's, 4.17.0's and 6.1.0's fs/dcache.c). Then the two dentries: by address up to
    /// 4.16, the dentry first from 4.17: 076515fc9267 ("make non-exchanging __d_move() copy
    /// ->d_parent rather than swap them", [`DMoveTarget::KeepNameAndParent`]) also folded the
    /// unlocking into `__d_move()` and dropped the address order, every move being serialised
    /// on `rename_lock` (its message says so). Parent before child is the order `dentry_kill()`'s
    /// relock follows: taken after the dentries', the parents deadlocked the stress test. The
    /// model never moves a root (it has no `d_splice_alias()`), so the `IS_ROOT()` branch is
    /// left out.
    fn lock_for_move(&self, dentry: DPtr, target: DPtr) -> (DPtr, DPtr) {
        let old_parent = dentry.d_parent();
        let new_parent = target.d_parent();
        if old_parent == new_parent {
            new_parent.d_lock.lock();
        } else if d_ancestor(old_parent, new_parent).is_some() {
            old_parent.d_lock.lock();
            new_parent.d_lock.lock();
        } else {
            new_parent.d_lock.lock();
            old_parent.d_lock.lock();
        }
        let by_address = self.dc.profile.d_move_target != DMoveTarget::KeepNameAndParent;
        if by_address && target.as_ptr() < dentry.as_ptr() {
            target.d_lock.lock();
            dentry.d_lock.lock();
        } else {
            dentry.d_lock.lock();
            target.d_lock.lock();
        }
        (old_parent, new_parent)
    }

    /// What [`Self::lock_for_move`] took, released after the switch in both generations'
    /// order (`dentry_unlock_for_move()` up to 4.16 reads the swapped parents): the dentry's
    /// new parent if it has moved, its old one, the target, the dentry.
    fn unlock_for_move(&self, dentry: DPtr, target: DPtr, old_parent: DPtr, new_parent: DPtr) {
        if new_parent != old_parent {
            new_parent.d_lock.unlock();
        }
        old_parent.d_lock.unlock();
        target.d_lock.unlock();
        dentry.d_lock.unlock();
    }

    fn __d_move_body(&self, dentry: DPtr, target: DPtr) {
        let p = self.dc.profile;
        let (old_parent, new_parent) = self.lock_for_move(dentry, target);
        let parents = p.d_move_target == DMoveTarget::KeepNameAndParent;
        dentry.d_seq.write_seqcount_begin();
        target.d_seq.write_seqcount_begin();
        let new_hash = target.d_name().hash;
        match (p.d_drop_shape, p.d_move_rehash) {
            // 3.0: __d_drop(dentry); __d_rehash(dentry, target's chain); __d_drop(target).
            // "__d_drop does write_seqcount_barrier, but they're OK to nest."
            (DDropShape::Single, DMoveRehash::BeforeNameSwitch) => {
                self.__d_drop(dentry);
                self.__d_rehash(dentry, new_hash);
                self.__d_drop(target);
            }
            // 4.8: __d_drop() both; the rehash follows the name copy.
            (DDropShape::Single, DMoveRehash::AfterNameCopy) => {
                self.__d_drop(dentry);
                self.__d_drop(target);
            }
            // 6.1: unhash both with ___d_drop(); pprev of target cleared below.
            (DDropShape::Split, _) => {
                if !dentry.d_unhashed() {
                    self.___d_drop(dentry);
                }
                if !target.d_unhashed() {
                    self.___d_drop(target);
                }
            }
        }
        // ... and switch them in the tree
        let old_name = dentry.d_name.load(Ordering::Relaxed);
        match p.d_move_target {
            DMoveTarget::SwapNameAndParent
                if dentry.d_name().is_inline() && target.d_name().is_inline() =>
            {
                // switch_names() copies the target's inline name into the dentry, and the
                // hashes swap: the target keeps its name under the dentry's old hash.
                let kept = QStr {
                    hash: dentry.d_name().hash,
                    name: target.d_name().name.clone(),
                };
                let tname = target
                    .d_name
                    .swap(slab::alloc(kept).as_ptr(), Ordering::AcqRel);
                dentry.d_name.store(tname, Ordering::Release);
                // SAFETY: old_name was dentry's own, now unreachable for new readers.
                unsafe { self.rcu.call_rcu_free(old_name) };
            }
            DMoveTarget::SwapNameAndParent => {
                let tname = target.d_name.swap(old_name, Ordering::AcqRel);
                dentry.d_name.store(tname, Ordering::Release);
            }
            DMoveTarget::KeepNameSwapParent | DMoveTarget::KeepNameAndParent => {
                let copy = slab::alloc(target.d_name().clone()).as_ptr();
                dentry.d_name.store(copy, Ordering::Release);
                // SAFETY: old_name was dentry's own, now unreachable for new readers.
                unsafe { self.rcu.call_rcu_free(old_name) };
            }
        }
        if p.d_drop_shape == DDropShape::Single && p.d_move_rehash == DMoveRehash::AfterNameCopy {
            self.__d_rehash(dentry, new_hash);
        }
        dentry
            .d_parent
            .store(new_parent.as_ptr(), Ordering::Relaxed);
        if parents {
            // The target keeps its parent; the references follow the dentry.
            new_parent.count_add(1);
            old_parent.count_add(-1);
        } else {
            target
                .d_parent
                .store(old_parent.as_ptr(), Ordering::Relaxed);
            self.d_child_add(target);
        }
        // list_move() of the dentry's d_child onto its new parent's list, after the target's.
        self.d_child_add(dentry);
        if p.d_drop_shape == DDropShape::Split {
            target
                .d_hash
                .pprev
                .store(std::ptr::null_mut(), Ordering::Relaxed);
            self.__d_rehash(dentry, new_hash);
        }
        target.d_seq.write_seqcount_end();
        dentry.d_seq.write_seqcount_end();
        self.unlock_for_move(dentry, target, old_parent, new_parent);
    }

    /// The probe's own reads at a lookup's return, in its order: `*seqp`, `d_inode`, `d_seq`,
    /// then `pprev`. Only when the sink wants events.
    fn lookup_probe(
        &self,
        probe: Probe,
        ts: u64,
        parent: DPtr,
        name: &Name<'_>,
        found: Option<DPtr>,
        seq: u32,
    ) {
        if !self.want_events {
            return;
        }
        self.push_new(probe, ts, |e| {
            e.parent = parent.id;
            crate::task::fresh_name_in_place(e, name.name, None);
            e.name_hash = name.hash;
            if let Some(d) = found {
                e.dentry = d.id;
                e.seq_begin = seq;
                let inode = d.d_inode.load(Ordering::Relaxed);
                smp_rmb();
                e.seq_end = d.d_seq.read();
                e.inode_begin = inode;
                e.inode_end = inode;
                e.aux = self.dc.profile.d_flags_numbering.kernel(d.flags());
                if !d.d_unhashed() {
                    e.flags |=
                        tracer_common::flags::HASHED_BEGIN | tracer_common::flags::HASHED_END;
                }
                if e.seq_end == e.seq_begin {
                    e.flags |= tracer_common::flags::VALIDATED;
                }
            }
            e.ts_end = self.now();
        });
    }
}

/// `d_ancestor()`: the dentry on the way up from `p2` (itself included) whose parent is `p1`,
/// or none when `p1` is not above `p2`.
fn d_ancestor(p1: DPtr, p2: DPtr) -> Option<DPtr> {
    let mut p = p2;
    loop {
        let up = p.d_parent();
        if up == p {
            return None;
        }
        if up == p1 {
            return Some(p);
        }
        p = up;
    }
}

/// An isolation's move onto a dispose list, whose front is the kernel list's head
/// ([`DisposeAdd`]).
fn dispose_add(list: &mut VecDeque<DPtr>, d: DPtr, end: DisposeAdd) {
    match end {
        DisposeAdd::Head => list.push_front(d),
        DisposeAdd::Tail => list.push_back(d),
    }
}

/// `drop_slab_node()`'s loop (6.12's `drop_slab()` over the nodes): `shrink_slab()` again while
/// the generation's condition on the last pass's count holds. Returns the counts' sum.
pub(crate) fn drop_slab_node(l: DropSlabLoop, mut shrink_slab: impl FnMut() -> usize) -> usize {
    let mut total = 0;
    let mut pass = 0;
    loop {
        let freed = shrink_slab();
        total += freed;
        if !l.again(freed, pass) {
            return total;
        }
        pass += 1;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::profile::KillEntry;
    use crate::*;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use tracer_common::{flags, Event, Probe};

    /// A model of `profile` on a disk file system, with the sink its events go to.
    pub(crate) fn model(profile: &str) -> (Dcache, Arc<CollectSink>) {
        let sink = Arc::new(CollectSink::new());
        let p = Profile::named(profile).expect("a profile");
        let cfg = DcacheConfig::new(p, FsKind::Disk).with_sink(sink.clone());
        (Dcache::new(cfg), sink)
    }

    /// "d/f" made and walked to: the file `t` now holds, and its directory.
    fn held_file_in_d(t: &Task<'_>) -> (crate::dentry::DPtr, crate::dentry::DPtr) {
        t.mkdir("d").unwrap();
        t.create("d/f").unwrap();
        let f = t
            .filename_walk(&[b"d".as_slice(), b"f".as_slice()])
            .unwrap();
        (f.d_parent(), f)
    }

    /// `__d_move()`'s locks as its generation takes them: after `rename_lock`, the parents,
    /// the one above the other first (else the target's), a shared one once; then the two
    /// dentries, by address up to 4.16 and the moved one first from 4.17. `d_exchange()` is
    /// the same `__d_move()`: exchanging the same two names twice makes each of the two
    /// dentries the moved one once, so one of the exchanges has the target at the lower
    /// address.
    #[test]
    fn d_move_locks_the_parent_above_first_then_the_dentries_in_its_generations_order() {
        for (release, by_address) in [
            ("linux-2.6.38", true),
            ("linux-3.0.1", true),
            ("linux-4.14.177", true),
            ("linux-4.17.0", false),
            ("linux-6.1.0", false),
            ("linux-6.12.9", false),
        ] {
            let (dc, _sink) = model(release);
            let t = dc.task(1);
            for dir in ["a", "a/b", "c"] {
                t.mkdir(dir).unwrap();
            }
            for f in [
                "a/x", "a/b/x", "a/b/y", "a/y", "a/z", "c/z", "c/w", "c/v", "a/b/p",
            ] {
                t.create(f).unwrap();
            }
            t.create("c/q").unwrap();
            let walk = |path: &str| {
                let comps: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
                t.filename_walk(&comps).unwrap()
            };
            let lock = |d: crate::dentry::DPtr| std::ptr::addr_of!(d.d_lock) as usize;
            let rename_lock = std::ptr::addr_of!(dc.rename_lock) as usize;
            // (operation, source, target, the parents in the order they must be taken)
            let cases: [(&str, &str, &str, &[&str]); 6] = [
                ("rename", "a/x", "a/b/x", &["a", "a/b"]),
                ("rename", "a/b/y", "a/y", &["a", "a/b"]),
                ("rename", "a/z", "c/z", &["c", "a"]),
                ("rename", "c/w", "c/v", &["c"]),
                ("exchange", "a/b/p", "c/q", &["c", "a/b"]),
                ("exchange", "a/b/p", "c/q", &["c", "a/b"]),
            ];
            let mut target_lower = false;
            for (op, from, to, parents) in cases {
                let (od, nd) = (walk(from), walk(to));
                let mut want: Vec<usize> = parents
                    .iter()
                    .map(|p| walk(p))
                    .map(|p| {
                        let l = lock(p);
                        t.dput(p);
                        l
                    })
                    .collect();
                let lower = nd.as_ptr() < od.as_ptr();
                target_lower |= lower;
                if by_address && lower {
                    want.extend([lock(nd), lock(od)]);
                } else {
                    want.extend([lock(od), lock(nd)]);
                }
                let taken = crate::sync::lock_order::record(|| match op {
                    "rename" => t.rename(from, to).unwrap(),
                    _ => t.exchange(from, to).unwrap(),
                });
                let at = taken.iter().position(|&l| l == rename_lock).unwrap();
                assert_eq!(
                    taken[at + 1..at + 1 + want.len()],
                    want[..],
                    "{release}: {op} {from} {to}"
                );
                t.dput(nd);
                t.dput(od);
            }
            assert!(
                target_lower,
                "{release}: no move had its target at the lower address"
            );
        }
    }

    /// The kill's locks as its generation takes them, in two kills that take an unused parent
    /// with them: `dput()` of "d/f", unlinked and in "d", removed, while the test held "f";
    /// and the shrinker's kill of "d/f" alone on a dispose list, "d" left unused on the LRU.
    /// From 6.8 (6.8.0's, 6.12's and 7.1.5's `__dentry_kill()`, 7.2's `dentry_kill()`) the
    /// kill of "f" locks "d" after the inode detach, then "f" inside it, marks "f"
    /// `DCACHE_DENTRY_KILLED` there, drops d's count under d's lock and hands "d" back locked
    /// (its count 0): the caller kills it from there, and d's kill drops the root's count
    /// under the root's lock, which it takes once. 6.1 (unchanged): the parent first, a
    /// trylock before the kill, released after the unhash; `dput()` and the dispose list
    /// relock the parent.
    #[test]
    fn a_kill_from_6_8_marks_the_dentry_and_drops_the_count_under_the_parents_lock() {
        use crate::dentry::{DPtr, DCACHE_DENTRY_KILLED};
        use crate::sync::lock_order::{self, Op, Step};
        let new = "f+ f- d+ f+ f- d- r+ d+ d- r-";
        for (release, dput_order, shrink_order) in [
            (
                "linux-6.1.0",
                "f+ d+ d- f- f+ f- d+ r+ r- d- d+ d- r+ r-",
                "f+ d+ d- f- f+ f- d+ r+ r- d- d+ d-",
            ),
            ("linux-6.8.0", new, new),
            ("linux-6.12.9", new, new),
            ("linux-7.1.5", new, new),
            ("linux-7.3.4", new, new),
        ] {
            for shrink in [false, true] {
                let (dc, _sink) = model(release);
                let t = dc.task(1);
                let (d, f) = held_file_in_d(&t);
                let root = d.d_parent();
                if shrink {
                    t.dput(f);
                    isolate(&dc, f);
                } else {
                    t.unlink("d/f").unwrap();
                    t.rmdir("d").unwrap();
                }
                let lock = |x: DPtr| std::ptr::addr_of!(x.d_lock) as usize;
                let names = [(lock(f), "f"), (lock(d), "d"), (lock(root), "r")];
                // Each dentry read only while its own lock is held (found by the address taken
                // while all three live): flags high, count low.
                let dentries = [(lock(f), f), (lock(d), d), (lock(root), root)];
                let steps = lock_order::record_watching(
                    move |l| {
                        let (_, x) = dentries.into_iter().find(|&(a, _)| a == l)?;
                        Some(u64::from(x.flags()) << 32 | u64::from(x.count() as u32))
                    },
                    || {
                        if shrink {
                            t.shrink_dentry_list(VecDeque::from([f]));
                        } else {
                            t.dput(f);
                        }
                    },
                );
                let ours: Vec<(&str, Step)> = steps
                    .into_iter()
                    .filter_map(|s| Some((names.iter().find(|n| n.0 == s.lock)?.1, s)))
                    .collect();
                let order: Vec<String> = ours
                    .iter()
                    .map(|(n, s)| format!("{n}{}", if s.op == Op::Lock { '+' } else { '-' }))
                    .collect();
                let want = if shrink { shrink_order } else { dput_order };
                assert_eq!(order.join(" "), want, "{release}, shrink {shrink}");
                if want != new {
                    continue;
                }
                let seen = |i: usize| ours[i].1.seen.expect("a watched lock");
                let held = |name: &str, at: usize| {
                    ours[..at]
                        .iter()
                        .rfind(|(n, _)| *n == name)
                        .is_some_and(|(_, s)| s.op == Op::Lock)
                };
                // The first of f's steps to see the mark has "d" held.
                let marked = (0..ours.len())
                    .find(|&i| {
                        ours[i].0 == "f" && seen(i) >> 32 & u64::from(DCACHE_DENTRY_KILLED) != 0
                    })
                    .expect("f marked killed");
                assert!(held("d", marked), "{release}, shrink {shrink}: {order:?}");
                // d's count: 1 (f's reference) when the kill of "f" takes d's lock.
                assert_eq!(seen(2) as u32, 1, "{release}, shrink {shrink}");
                // Its next release is its own kill's (dead already): no unlock in between.
                let dead = crate::dentry::LOCKREF_DEAD;
                assert_eq!(seen(5) as u32 as i32, dead, "{release}, shrink {shrink}");
                // The root's count drops by d's reference inside its one hold.
                let (r_in, r_out) = (seen(6) as u32, seen(9) as u32);
                assert_eq!(r_in, r_out + 1, "{release}, shrink {shrink}");
            }
        }
    }

    /// The probe of the model's kills: `dentry_kill` where it checks the count itself (7.2+),
    /// else the kill proper.
    fn kill_probe(dc: &Dcache) -> Probe {
        if dc.profile.kill_entry == KillEntry::DentryKillChecks {
            Probe::DentryKillLocked
        } else {
            Probe::DentryKill
        }
    }

    /// The dentries the model's kills (`kill_probe`) ended since the last take, in time order.
    fn kills(t: &Task<'_>, sink: &CollectSink) -> Vec<u64> {
        t.flush();
        let kill = kill_probe(t.dc);
        let mut k: Vec<Event> = sink
            .take()
            .into_iter()
            .filter(|e| e.probe == kill as u8)
            .collect();
        k.sort_by_key(|e| e.ts_begin);
        k.iter().map(|e| e.dentry).collect()
    }

    /// The negative dentry a failed stat of `name` hashed (the events before it dropped).
    fn negative(t: &Task<'_>, sink: &CollectSink, name: &str) -> u64 {
        t.flush();
        sink.take();
        assert!(t.stat(name).is_err(), "{name} exists");
        t.flush();
        sink.take()
            .into_iter()
            .filter(|e| [Probe::DAdd as u8, Probe::DSpliceAlias as u8].contains(&e.probe))
            .map(|e| e.dentry)
            .next_back()
            .expect("a negative dentry")
    }

    /// Whether `release`'s prune walk parks a referenced dentry until the walk ends (2.6.38 to
    /// 3.11, before list_lru), from its numbers rather than the model's profile.
    fn parks_referenced(release: &str) -> bool {
        let numbers = crate::profile::major_minor(release.trim_start_matches("linux-"));
        numbers.is_some_and(|n| n < (3, 12))
    }

    /// A prune pass that must isolate `want` dentries, all of them referenced: up to 3.11 its
    /// first walk parks them and isolates none (so kills none), the second isolates them.
    fn prune_referenced(t: &Task<'_>, sink: &CollectSink, release: &str, want: usize) {
        if parks_referenced(release) {
            assert_eq!(t.prune_dcache_sb(usize::MAX), 0, "{release}: parked");
            t.flush();
            let kill = kill_probe(t.dc) as u8;
            assert!(
                sink.take().iter().all(|e| e.probe != kill),
                "{release}: a kill in the walk that parked"
            );
        }
        assert!(t.prune_dcache_sb(usize::MAX) >= want, "{release}");
    }

    /// `prune_dcache_sb()`'s isolation of the unused `d` (`d_lru_shrink_move()`): off the LRU
    /// and marked for a dispose list, which the test then hands to `shrink_dentry_list()`.
    fn isolate(dc: &Dcache, d: crate::dentry::DPtr) {
        d.d_lock.lock();
        dc.lru
            .lock()
            .list
            .remove(&d.d_lru_key.load(crate::sync::Ordering::Relaxed));
        d.flags_update(crate::dentry::DCACHE_SHRINK_LIST, 0);
        d.d_lock.unlock();
    }

    /// The kill path's events on "f" and inside it, in entry order.
    fn kill_and_inside(events: &[Event], f: u64) -> Vec<Probe> {
        let mut on_f: Vec<&Event> = events.iter().filter(|e| e.dentry == f).collect();
        on_f.sort_by_key(|e| e.ts_begin);
        on_f.iter()
            .filter_map(|e| Probe::from_u8(e.probe))
            .collect()
    }

    /// A pruned unused positive dentry is killed under its release's name: `__dentry_kill` up
    /// to 7.1 (7.1.5's fs/dcache.c), `dentry_kill` from 7.2 (7.2.6's and 7.3.4's), with the
    /// same writes inside in 6.8's order: unhash, then the inode detach.
    #[test]
    fn a_pruned_dentry_dies_in_dentry_kill_from_7_2_in_6_8s_order() {
        for (release, kill) in [
            ("linux-6.12.9", Probe::DentryKill),
            ("linux-7.1.5", Probe::DentryKill),
            ("linux-7.2.6", Probe::DentryKillLocked),
            ("linux-7.3.4", Probe::DentryKillLocked),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            t.create("f").unwrap();
            let d = t.filename_walk(&[b"f".as_slice()]).unwrap();
            let f = d.id;
            t.dput(d);
            t.flush();
            sink.take();
            assert_eq!(t.prune_dcache_sb(usize::MAX), 1, "{release}");
            t.flush();
            let events = sink.take();
            assert_eq!(
                kill_and_inside(&events, f),
                [
                    kill,
                    Probe::DDrop,
                    Probe::DDropInner,
                    Probe::DentryUnlinkInode
                ],
                "{release}"
            );
            let k = events.iter().find(|e| e.probe == kill as u8).unwrap();
            assert!(k.has(flags::HASHED_BEGIN) && !k.has(flags::HASHED_END));
            assert_ne!(k.inode_begin, 0, "{release}");
            assert_eq!(k.inode_end, 0, "{release}");
            assert_eq!(t.stat("f").map(|_| ()), Ok(()), "{release}: still on disk");
        }
    }

    /// The race of Debian 7.3.4's give-ups: "f" went onto a shrink list while unused, then a
    /// walk took a reference before `shrink_dentry_list()` got to it. 7.2's list enters
    /// `dentry_kill()`, whose `lock_for_kill()` gives up: one `dentry_kill` event, the dentry
    /// hashed, positive and its `d_seq` unmoved at both ends. 7.1's list sees the count itself
    /// and kills nothing, so no event.
    #[test]
    fn a_shrink_list_dentry_that_gained_a_user_enters_dentry_kill_from_7_2() {
        for (release, give_ups) in [("linux-7.1.5", 0), ("linux-7.3.4", 1)] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            t.create("f").unwrap();
            let d = t.filename_walk(&[b"f".as_slice()]).unwrap();
            t.dput(d);
            // prune_dcache_sb()'s isolation (d_lru_shrink_move()) of the unused dentry.
            isolate(&dc, d);
            let held = t.filename_walk(&[b"f".as_slice()]).unwrap();
            assert_eq!(held, d);
            t.flush();
            sink.take();
            t.shrink_dentry_list(VecDeque::from([d]));
            t.flush();
            let events = sink.take();
            let seen: Vec<&Event> = events.iter().filter(|e| e.dentry == d.id).collect();
            assert_eq!(seen.len(), give_ups, "{release}: {seen:?}");
            for e in seen {
                assert_eq!(e.probe, Probe::DentryKillLocked as u8);
                assert!(e.has(flags::HASHED_BEGIN) && e.has(flags::HASHED_END));
                assert_ne!(e.inode_begin, 0);
                assert_eq!(e.inode_begin, e.inode_end);
                assert_eq!(e.seq_begin, e.seq_end);
            }
            assert_eq!(d.count(), 1, "{release}: the walker's reference");
            t.dput(held);
            assert_eq!(t.stat("f").map(|_| ()), Ok(()), "{release}");
        }
    }

    /// What Debian 7.3.4's tmpfs unlinks show: `simple_unlink()`'s `d_make_discardable()`
    /// enters `dentry_kill()` while `vfs_unlink()`'s caller still holds the dentry, and it
    /// gives up (hashed, positive, `d_seq` unmoved), before `d_delete()` turns it negative;
    /// the last `dput` then kills it. 7.1's `finish_dput()` refuses in `lock_for_kill()`
    /// without entering the kill.
    #[test]
    fn a_7_2_tmpfs_unlink_gives_up_in_dentry_kill_before_d_delete() {
        for (release, want) in [
            ("linux-7.1.5", vec![Probe::DDelete, Probe::DentryKill]),
            (
                "linux-7.3.4",
                vec![
                    Probe::DentryKillLocked,
                    Probe::DDelete,
                    Probe::DentryKillLocked,
                ],
            ),
        ] {
            let sink = Arc::new(CollectSink::new());
            let p = Profile::named(release).expect("a profile");
            let dc = Dcache::new(DcacheConfig::new(p, FsKind::Tmpfs).with_sink(sink.clone()));
            let t = dc.task(1);
            t.create("f").unwrap();
            let f = t.filename_walk(&[b"f".as_slice()]).unwrap();
            let id = f.id;
            t.dput(f);
            t.flush();
            sink.take();
            t.unlink("f").unwrap();
            t.flush();
            let events = sink.take();
            let mut on_f: Vec<&Event> = events
                .iter()
                .filter(|e| e.dentry == id)
                .filter(|e| {
                    matches!(
                        Probe::from_u8(e.probe),
                        Some(Probe::DDelete | Probe::DentryKill | Probe::DentryKillLocked)
                    )
                })
                .collect();
            on_f.sort_by_key(|e| e.ts_begin);
            let seen: Vec<Probe> = on_f
                .iter()
                .filter_map(|e| Probe::from_u8(e.probe))
                .collect();
            assert_eq!(seen, want, "{release}");
            if seen.len() == 3 {
                let g = on_f[0];
                assert!(g.has(flags::HASHED_BEGIN) && g.has(flags::HASHED_END));
                assert_ne!(g.inode_end, 0);
                assert_eq!(g.seq_begin, g.seq_end);
            }
            assert_eq!(t.stat("f").map(|_| ()), Err(Errno::ENOENT), "{release}");
        }
    }

    /// `shrink_kill()` from 6.8, the ancestor loop up to 5.2: pruning "d/f" drops the last
    /// reference to "d", which sits on another dispose list (isolated while unused, then given
    /// the child). 6.8's shrinker kills "d" at once, right after "f" (each kill entered after
    /// the previous one returned), and the other list only frees it; so do 3.10.105's
    /// `try_prune_one_dentry()` and 4.19.1's `shrink_dentry_list()` (`dentry_kill()` of each
    /// ancestor whose `lockref_put_or_lock()` fails). 5.3 to 6.7's `__dput_to_list()` leave
    /// "d" to the list it is on, which kills it later.
    #[test]
    fn a_pruned_childs_parent_dies_at_once_up_to_5_2_and_from_6_8() {
        for (release, kill, at_once) in [
            ("linux-3.10.105", Probe::DentryKill, true),
            ("linux-4.19.1", Probe::DentryKill, true),
            ("linux-5.2.21", Probe::DentryKill, true),
            ("linux-5.3.0", Probe::DentryKill, false),
            ("linux-5.10.0", Probe::DentryKill, false),
            ("linux-6.1.0", Probe::DentryKill, false),
            ("linux-6.7.12", Probe::DentryKill, false),
            ("linux-6.12.9", Probe::DentryKill, true),
            ("linux-7.1.5", Probe::DentryKill, true),
            ("linux-7.3.4", Probe::DentryKillLocked, true),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            t.mkdir("d").unwrap();
            let d = t.filename_walk(&[b"d".as_slice()]).unwrap();
            t.dput(d);
            // Another shrinker's isolation (d_lru_shrink_move()) of the unused "d".
            isolate(&dc, d);
            t.create("d/f").unwrap();
            let f = t
                .filename_walk(&[b"d".as_slice(), b"f".as_slice()])
                .unwrap();
            let f_id = f.id;
            t.dput(f);
            assert_eq!(d.count(), 1, "{release}: f's reference");
            t.flush();
            sink.take();
            // "f" was looked up again after its create: referenced.
            prune_referenced(&t, &sink, release, 1);
            t.flush();
            let mut kills: Vec<Event> = sink
                .take()
                .into_iter()
                .filter(|e| e.probe == kill as u8)
                .collect();
            kills.sort_by_key(|e| e.ts_begin);
            let ids: Vec<u64> = kills.iter().map(|e| e.dentry).collect();
            let want = if at_once {
                vec![f_id, d.id]
            } else {
                vec![f_id]
            };
            assert_eq!(ids, want, "{release}");
            if at_once {
                assert!(kills[0].ts_end <= kills[1].ts_begin, "{release}: {kills:?}");
                assert!(kills[1].has(flags::HASHED_BEGIN) && !kills[1].has(flags::HASHED_END));
            } else {
                assert_eq!(d.count(), 0, "{release}: left to its list");
            }
            // The other list's turn: it kills "d" only if the shrinker left it.
            t.shrink_dentry_list(VecDeque::from([d]));
            t.flush();
            let later = sink
                .take()
                .iter()
                .filter(|e| e.probe == kill as u8 && e.dentry == d.id)
                .count();
            assert_eq!(later, usize::from(!at_once), "{release}");
            assert_eq!(
                dc.nr_dentry.load(crate::sync::Ordering::Relaxed),
                1,
                "{release}"
            );
            assert_eq!(
                t.stat("d/f").map(|_| ()),
                Ok(()),
                "{release}: still on disk"
            );
        }
    }

    /// The kill order of two dentries isolated in one walk ([`DisposeAdd`]): a head add kills
    /// the one isolated first, a tail add the one isolated last. The shrinker (two unused,
    /// referenced files) isolates the LRU's oldest first and adds at the head from 4.0; up to
    /// 3.11 its first walk parks both on its `referenced` list and isolates neither, the next
    /// isolates both, from 3.12 one walk rotates and then isolates them ([`PruneWalk`]);
    /// `shrink_dcache_parent()` (rmdir of a directory holding two negative dentries) walks
    /// `d_subdirs` from its head, the newest child first (`d_alloc()` adds there: 3.10.105's,
    /// 4.19.1's and 6.1.192's `list_add()`, 6.12's `hlist_add_head()`), and adds at the head
    /// from 3.12, so rmdir kills the newest child first from 3.12 and up to 3.2, the oldest
    /// from 3.3 to 3.11.
    #[test]
    fn a_dispose_list_kills_in_the_kernels_order() {
        for (release, rmdir_head_add, prune_walks, prune_head_add) in [
            ("linux-2.6.38", true, 2, false),
            ("linux-3.0.1", true, 2, false),
            ("linux-3.3.8", false, 2, false),
            ("linux-3.5.0", false, 2, false),
            ("linux-3.10.105", false, 2, false),
            ("linux-3.11.0", false, 2, false),
            ("linux-3.12.0", true, 1, false),
            ("linux-3.19.8", true, 1, false),
            ("linux-4.0.0", true, 1, true),
            ("linux-4.6.7", true, 1, true),
            ("linux-4.7.0", true, 1, true),
            ("linux-4.19.1", true, 1, true),
            ("linux-6.1.0", true, 1, true),
            ("linux-6.12.9", true, 1, true),
            ("linux-7.3.4", true, 1, true),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            let mut ids = Vec::new();
            for name in ["a", "b"] {
                t.create(name).unwrap();
                let d = t.filename_walk(&[name.as_bytes()]).unwrap();
                ids.push(d.id);
                t.dput(d);
            }
            t.mkdir("d").unwrap();
            let mut neg = Vec::new();
            for name in ["d/x", "d/y"] {
                neg.push(negative(&t, &sink, name));
            }
            kills(&t, &sink);
            t.rmdir("d").unwrap();
            let got: Vec<u64> = kills(&t, &sink)
                .into_iter()
                .filter(|k| neg.contains(k))
                .collect();
            if rmdir_head_add {
                neg.reverse();
            }
            assert_eq!(got, neg, "{release}: rmdir");
            // Both are referenced (looked up after their create): all but the last walk
            // isolate nothing.
            for _ in 1..prune_walks {
                assert_eq!(t.prune_dcache_sb(usize::MAX), 0, "{release}: parked");
                assert_eq!(kills(&t, &sink), [], "{release}: parked");
            }
            assert!(t.prune_dcache_sb(usize::MAX) >= 2, "{release}");
            let got: Vec<u64> = kills(&t, &sink)
                .into_iter()
                .filter(|k| ids.contains(k))
                .collect();
            if !prune_head_add {
                ids.reverse();
            }
            assert_eq!(got, ids, "{release}: prune");
        }
    }

    /// Where a kill marks the dentry `DCACHE_DENTRY_KILLED` (`dentry_unlist()`), as the kill's
    /// inode-detach event shows in its `d_flags` at entry: up to 6.7 the unlist comes right
    /// after the unhash, before the detach (Debian's 5.10 and 6.1 traces show 0x8000 in the
    /// kill's `dentry_unlink_inode`); from 6.8 it comes after the detach (Debian's 6.12 and
    /// 7.3.4 traces show it clear).
    #[test]
    fn the_kill_marks_the_dentry_killed_where_its_generation_unlists_it() {
        for (release, before_detach) in [
            ("linux-4.4.155", true),
            ("linux-5.10.0", true),
            ("linux-6.1.0", true),
            ("linux-6.7.12", true),
            ("linux-6.8.0", false),
            ("linux-6.12.9", false),
            ("linux-6.18.2", false),
            ("linux-7.3.4", false),
        ] {
            let (dc, sink) = model(release);
            let killed = dc
                .profile
                .d_flags_numbering
                .kernel(crate::dentry::DCACHE_DENTRY_KILLED);
            let t = dc.task(1);
            t.create("a").unwrap();
            // Held across the unlink: d_delete() unhashes it, and this last reference kills
            // it with its inode.
            let a = t.filename_walk(&[b"a".as_slice()]).unwrap();
            t.unlink("a").unwrap();
            t.flush();
            sink.take();
            t.dput(a);
            t.flush();
            let detach: Vec<u32> = sink
                .take()
                .iter()
                .filter(|e| {
                    e.dentry == a.id
                        && (e.probe == Probe::DentryUnlinkInode as u8
                            || e.probe == Probe::DentryIput as u8)
                })
                .map(|e| e.aux)
                .collect();
            assert_eq!(detach.len(), 1, "{release}");
            assert_eq!(detach[0] & killed != 0, before_detach, "{release}");
        }
    }

    /// `d_delete()` of a dentry two holders keep, already unhashed: 4.17's and later call
    /// `__d_drop()` anyway, and its probe fires on the no-op (unhashed on entry and exit, no
    /// `___d_drop` inside, `d_seq` unmoved); 4.16's and older test `d_unhashed()` first.
    #[test]
    fn d_delete_calls_d_drop_on_an_unhashed_dentry_from_4_17() {
        for (release, fires) in [
            ("linux-3.0.1", false),
            ("linux-4.8.15", false),
            ("linux-4.16.13", false),
            ("linux-4.17.0", true),
            ("linux-6.1.0", true),
            ("linux-6.8.0", true),
            ("linux-7.3.4", true),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            t.create("f").unwrap();
            let f = t.filename_walk(&[b"f".as_slice()]).unwrap();
            let again = t.filename_walk(&[b"f".as_slice()]).unwrap();
            assert_eq!(again.id, f.id, "{release}");
            f.d_lock.lock();
            t.__d_drop(f);
            f.d_lock.unlock();
            t.flush();
            sink.take();
            t.d_delete(f);
            t.flush();
            let hashed = tracer_common::flags::HASHED_BEGIN | tracer_common::flags::HASHED_END;
            let seen: Vec<(u8, u16, bool)> = sink
                .take()
                .iter()
                .filter(|e| e.dentry == f.id)
                .map(|e| (e.probe, e.flags & hashed, e.seq_begin == e.seq_end))
                .collect();
            let mut expected = vec![(Probe::DDelete as u8, 0, true)];
            if fires {
                expected.push((Probe::DDrop as u8, 0, true));
            }
            assert_eq!(seen, expected, "{release}");
            assert!(f.d_unhashed(), "{release}");
            assert_ne!(
                f.d_inode.load(crate::sync::Ordering::Relaxed),
                0,
                "{release}: others hold it, so it keeps its inode"
            );
            t.dput(again);
            t.dput(f);
        }
    }

    /// A dentry killed by someone else while it sits on a shrinker's dispose list is left to
    /// the list's owner, who knows it by `DCACHE_MAY_FREE` up to 6.7 and by
    /// `DCACHE_DENTRY_KILLED` from 6.8 ([`DisposeFree`]); every kill sets
    /// `DCACHE_DENTRY_KILLED` (`dentry_unlist()`), and 6.8+ no longer sets `DCACHE_MAY_FREE`.
    /// A dentry still alive on the list is not the owner's to free.
    #[test]
    fn a_dentry_killed_on_a_dispose_list_is_left_to_its_owner() {
        use crate::dentry::{
            DCACHE_DENTRY_KILLED, DCACHE_LRU_LIST, DCACHE_MAY_FREE, DCACHE_SHRINK_LIST,
            LOCKREF_DEAD,
        };
        for (release, may_free) in [
            ("linux-4.4.155", true),
            ("linux-6.1.0", true),
            ("linux-6.7.12", true),
            ("linux-6.8.0", false),
            ("linux-6.12.9", false),
            ("linux-6.18.2", false),
            ("linux-7.3.4", false),
        ] {
            let (dc, _sink) = model(release);
            let t = dc.task(1);
            for name in ["a", "b"] {
                t.create(name).unwrap();
            }
            // The shrinker's walk: up to 4.11 the creates' dput() marked both referenced, and
            // the first visit of each only rotates it.
            let mut list = VecDeque::new();
            while list.len() < 2 {
                t.list_lru_walk_node(2, &mut list);
            }
            let a = t.filename_walk(&[b"a".as_slice()]).unwrap();
            let b = t.filename_walk(&[b"b".as_slice()]).unwrap();
            assert!(list.contains(&a) && list.contains(&b), "{release}");
            // Another task unlinks "a" while the walk's caller has not reached its list: its
            // last reference kills it, on the list.
            t.unlink("a").unwrap();
            t.dput(a);
            a.d_lock.lock();
            let f = a.flags();
            assert_eq!(a.count(), LOCKREF_DEAD, "{release}");
            assert_ne!(f & DCACHE_DENTRY_KILLED, 0, "{release}: {f:#x}");
            assert_eq!(f & DCACHE_MAY_FREE != 0, may_free, "{release}: {f:#x}");
            // d_shrink_del(), as shrink_dentry_list() does first.
            a.flags_update(0, DCACHE_SHRINK_LIST | DCACHE_LRU_LIST);
            assert!(t.killed_on_dispose_list(a), "{release}");
            a.d_lock.unlock();
            b.d_lock.lock();
            assert!(!t.killed_on_dispose_list(b), "{release}");
            b.d_lock.unlock();
            t.dput(b);
            t.shrink_dentry_list(list);
        }
    }

    /// Whether `release`'s `dput()` marks a dentry referenced at every retained last reference
    /// (up to 4.11, [`DputReferenced::EveryRetain`]), from its numbers rather than the model's
    /// profile.
    ///
    /// [`DputReferenced::EveryRetain`]: crate::profile::DputReferenced
    fn marks_every_retain(release: &str) -> bool {
        let numbers = crate::profile::major_minor(release.trim_start_matches("linux-"));
        numbers.is_some_and(|n| n < (4, 12))
    }

    /// What one prune walk counts and where a referenced dentry goes ([`PruneWalk`]). The LRU holds
    /// "a" (referenced), then "b" and "c" (unreferenced: never looked up after their create), and
    /// each walk is asked for one. Up to 4.11 each create's `dput()` marked its dentry, so a walk
    /// of three ages them first (parks or rotates each, in the LRU's order). Up to 3.11 `count`
    /// counts isolations and the walk parks "a" until it ends: the first walk kills "b", and "a",
    /// spliced back at the newest end, lets the second kill "c" (2.6.38's and 3.0.1's
    /// `__shrink_dcache_sb()`, 3.5's, 3.10.105's and 3.11.0's `prune_dcache_sb()`). From 3.12
    /// `nr_to_walk` counts visits: the first walk only rotates "a", the second kills "b" (3.12.0's
    /// `list_lru_walk_node()`, and 4.0.0's, 6.1.0's, 7.1.5's).
    #[test]
    fn a_walk_counts_isolations_and_parks_referenced_dentries_up_to_3_11() {
        for (release, first, second) in [
            ("linux-2.6.38", "b", "c"),
            ("linux-3.0.1", "b", "c"),
            ("linux-3.5.0", "b", "c"),
            ("linux-3.10.105", "b", "c"),
            ("linux-3.11.0", "b", "c"),
            ("linux-3.12.0", "", "b"),
            ("linux-4.0.0", "", "b"),
            ("linux-4.11.0", "", "b"),
            ("linux-4.12.0", "", "b"),
            ("linux-6.1.0", "", "b"),
            ("linux-7.3.4", "", "b"),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            for name in ["a", "b", "c"] {
                t.create(name).unwrap();
            }
            let marked = dc
                .lru
                .lock()
                .list
                .values()
                .all(|d| d.flags() & crate::dentry::DCACHE_REFERENCED != 0);
            assert_eq!(marked, marks_every_retain(release), "{release}");
            if marked {
                assert_eq!(t.prune_dcache_sb(3), 0, "{release}: aged");
            }
            let d = t.filename_walk(&[b"a".as_slice()]).unwrap();
            assert_eq!(d.flags() & crate::dentry::DCACHE_REFERENCED, 0);
            t.dput(d);
            assert_ne!(d.flags() & crate::dentry::DCACHE_REFERENCED, 0);
            // The LRU, oldest first: a, b, c (each joined it at its create's last dput).
            let lru: Vec<u64> = dc.lru.lock().list.values().map(|d| d.id).collect();
            assert_eq!(lru.len(), 3, "{release}");
            let ids: std::collections::HashMap<u64, &str> =
                lru.into_iter().zip(["a", "b", "c"]).collect();
            kills(&t, &sink);
            for want in [first, second] {
                t.prune_dcache_sb(1);
                let got: Vec<&str> = kills(&t, &sink)
                    .iter()
                    .filter_map(|k| ids.get(k).copied())
                    .collect();
                let want: Vec<&str> = [want].into_iter().filter(|w| !w.is_empty()).collect();
                assert_eq!(got, want, "{release}");
            }
        }
    }

    /// Prunes the unused `f` while its parent's lock is held here, so 4.17 to 6.7's shrinker
    /// waits in `shrink_lock_dentry()`'s relock; `meanwhile` runs on `f` at that step, from
    /// the shrinker's thread, and what it returns comes back once the shrinker is done.
    fn prune_while_the_parent_is_locked<T: Send + 'static>(
        dc: &Dcache,
        f: crate::dentry::DPtr,
        meanwhile: impl Fn(crate::dentry::DPtr) -> T + Send + Sync + 'static,
    ) -> T {
        use std::sync::mpsc;
        use std::time::Duration;
        let (done, waited) = mpsc::channel();
        let f_ptr = f.as_ptr() as usize;
        let hook: StepHook = Arc::new(move |s| {
            if s == Step::ShrinkRelock {
                let f = crate::dentry::DPtr::new(f_ptr as *mut _).expect("f");
                let _ = done.send(meanwhile(f));
            }
        });
        let parent = f.d_parent();
        parent.d_lock.lock();
        let got = std::thread::scope(|s| {
            let shrinker = s.spawn(|| dc.task(2).with_hook(hook).prune_dcache_sb(usize::MAX));
            let got = waited.recv_timeout(Duration::from_secs(30));
            parent.d_lock.unlock();
            shrinker.join().expect("the shrinker");
            got
        });
        got.expect("the shrinker waited for the parent's lock")
    }

    /// 4.17 to 6.7's shrinker (`shrink_lock_dentry()`): "a/f", unused, is pruned while "a"'s
    /// lock is held elsewhere; while the shrinker waits for it, a rename moves "a/f" under "b"
    /// (its `d_parent` set as `__d_move()` sets it). The shrinker then gives the dentry up: off
    /// its dispose list and the LRU, unused, alive, hashed, not killed. It waited with the
    /// dentry still flagged on its dispose list, where up to 4.16 (the model's order there) it
    /// had taken it off first.
    #[test]
    fn the_shrinker_gives_up_a_dentry_whose_parent_changed_while_it_waited() {
        use crate::dentry::{DCACHE_DENTRY_KILLED, DCACHE_LRU_LIST, DCACHE_SHRINK_LIST};
        use std::sync::atomic::Ordering;
        let (dc, sink) = model("linux-6.1");
        let t = dc.task(1);
        t.mkdir("a").unwrap();
        t.mkdir("b").unwrap();
        t.create("a/f").unwrap();
        let f = t
            .filename_walk(&[b"a".as_slice(), b"f".as_slice()])
            .unwrap();
        let b = t.filename_walk(&[b"b".as_slice()]).unwrap();
        let a = f.d_parent();
        t.dput(f);
        kills(&t, &sink);
        let b_ptr = b.as_ptr() as usize;
        let flags = prune_while_the_parent_is_locked(&dc, f, move |f| {
            let flags = f.flags();
            f.d_parent.store(b_ptr as *mut _, Ordering::Relaxed);
            flags
        });
        assert_ne!(
            flags & DCACHE_SHRINK_LIST,
            0,
            "still on the dispose list while waiting"
        );
        assert_eq!(f.count(), 0);
        assert_eq!(f.flags() & (DCACHE_SHRINK_LIST | DCACHE_LRU_LIST), 0);
        assert_eq!(f.flags() & DCACHE_DENTRY_KILLED, 0);
        assert!(!f.d_unhashed());
        assert_eq!(kills(&t, &sink), [], "nothing killed");
        f.d_parent.store(a.as_ptr(), Ordering::Relaxed);
        t.dput(b);
    }

    /// 4.17 to 6.7's shrinker, the other give-up: while it waits for "a"'s lock, someone takes
    /// a reference on "a/f" (`dget_dlock()` under the dentry's own lock, which the relock let
    /// go). Relocked, `shrink_lock_dentry()` sees the count and gives the dentry up: off its
    /// dispose list and the LRU, held, hashed, not killed.
    #[test]
    fn the_shrinker_gives_up_a_dentry_someone_took_while_it_waited() {
        use crate::dentry::{DCACHE_DENTRY_KILLED, DCACHE_LRU_LIST, DCACHE_SHRINK_LIST};
        let (dc, sink) = model("linux-6.1");
        let t = dc.task(1);
        t.mkdir("a").unwrap();
        t.create("a/f").unwrap();
        let f = t
            .filename_walk(&[b"a".as_slice(), b"f".as_slice()])
            .unwrap();
        t.dput(f);
        kills(&t, &sink);
        prune_while_the_parent_is_locked(&dc, f, |f| {
            f.d_lock.lock();
            f.count_add(1);
            f.d_lock.unlock();
        });
        assert_eq!(f.count(), 1);
        assert_eq!(f.flags() & (DCACHE_SHRINK_LIST | DCACHE_LRU_LIST), 0);
        assert_eq!(f.flags() & DCACHE_DENTRY_KILLED, 0);
        assert!(!f.d_unhashed());
        assert_eq!(kills(&t, &sink), [], "nothing killed");
        t.dput(f);
    }

    /// A walk counts an in-use dentry it takes off the LRU among the ones it isolated, as the
    /// kernel's `freed` does (`drop_slab()`'s loop reads it): "d", on the LRU since its mkdir
    /// and now held by its child "d/f", is its oldest entry ("d/f", in use too, the next).
    /// 3.12+'s `LRU_REMOVED` counts it
    /// (3.12.0's mm/list_lru.c:90, 6.1.0's :236); up to 3.11 the walk moves it to its dispose
    /// list like an unused one (`shrink_dentry_list()` then drops it). Nothing dies. Up to
    /// 3.11 the walk parks a referenced dentry before it looks at anything else, and there
    /// (up to 4.11 in general) the mkdir's and the create's `dput()` marked "d" and "d/f": a
    /// first walk ages them.
    #[test]
    fn a_walk_counts_the_in_use_dentry_it_takes_off_the_lru() {
        for name in Profile::NAMES {
            let (dc, sink) = model(name);
            let t = dc.task(1);
            let (d, f) = held_file_in_d(&t);
            kills(&t, &sink);
            let lru = || -> Vec<u64> { dc.lru.lock().list.values().map(|d| d.id).collect() };
            assert_eq!(lru(), [d.id, f.id], "{name}");
            if parks_referenced(name) {
                assert_eq!(t.prune_dcache_sb(2), 0, "{name}: aged");
                assert_eq!(lru(), [d.id, f.id], "{name}");
            }
            assert_eq!(t.prune_dcache_sb(1), 1, "{name}");
            assert_eq!(lru(), [f.id], "{name}");
            assert_eq!(d.flags() & crate::dentry::DCACHE_LRU_LIST, 0, "{name}");
            assert_eq!(kills(&t, &sink), [], "{name}");
            t.dput(f);
        }
    }

    /// `d_walk()` visits `d_subdirs` from its head, where `d_alloc()` adds a new child and
    /// `__d_move()` a renamed one (`list_move()`; 6.12's `hlist_add_head()`). "d/x" is looked
    /// up, "m" renamed into "d", "d/y" looked up, then "d/m" unlinked: three negative children,
    /// met as y, m, x. 3.12+ (`d_shrink_add()`) and up to 3.2 (the LRU's tail, taken back
    /// from its tail) kill in that order, 3.3 to 3.11 (`list_move_tail()` onto a dispose
    /// list) in the reverse.
    #[test]
    fn rmdir_walks_the_children_from_the_lists_head() {
        for (release, head_add) in [
            ("linux-2.6.38", true),
            ("linux-3.0.1", true),
            ("linux-3.2.0", true),
            ("linux-3.3.8", false),
            ("linux-3.10.105", false),
            ("linux-3.11.0", false),
            ("linux-3.12.0", true),
            ("linux-4.0.0", true),
            ("linux-4.19.1", true),
            ("linux-6.1.0", true),
            ("linux-6.12.9", true),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            t.mkdir("d").unwrap();
            t.create("m").unwrap();
            let m = t.filename_walk(&[b"m".as_slice()]).unwrap();
            let m_id = m.id;
            t.dput(m);
            let x = negative(&t, &sink, "d/x");
            t.rename("m", "d/m").unwrap();
            let y = negative(&t, &sink, "d/y");
            t.unlink("d/m").unwrap();
            t.flush();
            sink.take();
            t.rmdir("d").unwrap();
            let got: Vec<u64> = kills(&t, &sink)
                .into_iter()
                .filter(|k| [x, y, m_id].contains(k))
                .collect();
            let mut walk = vec![y, m_id, x];
            if !head_add {
                walk.reverse();
            }
            assert_eq!(got, walk, "{release}");
        }
    }

    /// Where a pruned child's parent, left unused, dies ([`ShrinkParent`]): "d/f" and then "a"
    /// isolated in one walk. 5.3 to 6.7 queue "d" at the list's head before f's kill, so "a"
    /// dies first (5.3.1's and 5.10.13's fs/dcache.c have it); up to 5.2 (5.2.1's ancestor
    /// loop) and from 6.8 the parent dies right after its child; 3.x's list kills "a"
    /// (isolated last) first, 4.0+'s "f" (isolated first).
    #[test]
    fn a_pruned_childs_unused_parent_dies_in_the_kernels_order() {
        for (release, order) in [
            ("linux-3.5.0", ["a", "f", "d"]),
            ("linux-3.19.8", ["a", "f", "d"]),
            ("linux-4.0.0", ["f", "d", "a"]),
            ("linux-4.7.0", ["f", "d", "a"]),
            ("linux-4.19.1", ["f", "d", "a"]),
            ("linux-5.2.21", ["f", "d", "a"]),
            ("linux-5.3.0", ["f", "a", "d"]),
            ("linux-5.6.19", ["f", "a", "d"]),
            ("linux-5.10.0", ["f", "a", "d"]),
            ("linux-6.1.0", ["f", "a", "d"]),
            ("linux-6.7.12", ["f", "a", "d"]),
            ("linux-6.12.9", ["f", "d", "a"]),
            ("linux-7.3.4", ["f", "d", "a"]),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            let mut ids = std::collections::HashMap::new();
            t.mkdir("d").unwrap();
            let d = t.filename_walk(&[b"d".as_slice()]).unwrap();
            ids.insert(d.id, "d");
            t.dput(d);
            for path in ["d/f", "a"] {
                t.create(path).unwrap();
                let names: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
                let x = t.filename_walk(&names).unwrap();
                ids.insert(x.id, &path[path.len() - 1..]);
                t.dput(x);
            }
            t.flush();
            sink.take();
            prune_referenced(&t, &sink, release, 2);
            let got: Vec<&str> = kills(&t, &sink)
                .iter()
                .filter_map(|k| ids.get(k).copied())
                .collect();
            assert_eq!(got, order, "{release}");
        }
    }

    /// Events carry the kernel's raw `d_flags` ([`DFlagsNumbering`]): a cached directory's
    /// lookup shows `DCACHE_LRU_LIST` and the directory type at 6.12's and 6.14's bits (19,
    /// 2 << 20), at the repacked ones (18, 2 << 19) from 6.15, as 6.18.2's header and Debian's
    /// 7.3.4 traces do.
    #[test]
    fn events_carry_the_kernels_d_flags_numbering() {
        for (release, lru, dir) in [
            ("linux-6.1.0", 1 << 19, 2 << 20),
            ("linux-6.12.9", 1 << 19, 2 << 20),
            ("linux-6.14.11", 1 << 19, 2 << 20),
            ("linux-6.15.0", 1 << 18, 2 << 19),
            ("linux-6.18.2", 1 << 18, 2 << 19),
            ("linux-6.19.0", 1 << 18, 2 << 19),
            ("linux-7.3.4", 1 << 18, 2 << 19),
        ] {
            let (dc, sink) = model(release);
            let t = dc.task(1);
            t.mkdir("d").unwrap();
            let d = t.filename_walk(&[b"d".as_slice()]).unwrap();
            t.dput(d);
            t.flush();
            sink.take();
            let d = t.filename_walk(&[b"d".as_slice()]).unwrap();
            t.dput(d);
            t.flush();
            let found: Vec<u32> = sink
                .take()
                .iter()
                .filter(|e| e.probe == Probe::DLookupRcu as u8 && e.dentry == d.id)
                .map(|e| e.aux)
                .collect();
            assert!(!found.is_empty(), "{release}");
            for aux in found {
                assert_eq!(
                    aux & (lru | (7 << 19) | (7 << 20)),
                    lru | dir,
                    "{release}: {aux:#x}"
                );
            }
        }
    }

    /// What Debian's 6.12 and 7.3.4 rmdir traces show in `d_delete`'s `d_flags`: a directory
    /// that outlives its pruned child stays on the LRU from 6.8, whose `__dentry_kill()` only
    /// drops the parent's count, and up to 5.2, whose ancestor loop only drops it
    /// (3.10.105's `d_count--`, 4.19.1's `lockref_put_or_lock()`); 5.3 to 6.7's
    /// `__dput_to_list()` takes it off (Debian's 6.1 traces show it off).
    #[test]
    fn a_parent_left_in_use_stays_on_the_lru_up_to_5_2_and_from_6_8() {
        for (release, on_lru) in [
            ("linux-3.10.105", true),
            ("linux-4.19.1", true),
            ("linux-5.2.21", true),
            ("linux-5.3.0", false),
            ("linux-5.10.0", false),
            ("linux-6.1.0", false),
            ("linux-6.7.12", false),
            ("linux-6.12.9", true),
            ("linux-7.3.4", true),
        ] {
            let (dc, _sink) = model(release);
            let t = dc.task(1);
            t.mkdir("d").unwrap();
            t.create("d/f").unwrap();
            let d = t.filename_walk(&[b"d".as_slice()]).unwrap();
            assert_ne!(d.flags() & crate::dentry::DCACHE_LRU_LIST, 0, "{release}");
            // The walker's reference keeps "d" in use; the LRU walk drops it lazily only if it
            // meets it first, so isolate "f" alone.
            let f = t
                .filename_walk(&[b"d".as_slice(), b"f".as_slice()])
                .unwrap();
            t.dput(f);
            isolate(&dc, f);
            t.shrink_dentry_list(VecDeque::from([f]));
            assert_eq!(d.count(), 1, "{release}: the walker's reference");
            let kept = d.flags() & crate::dentry::DCACHE_LRU_LIST != 0;
            assert_eq!(kept, on_lru, "{release}");
            t.dput(d);
        }
    }
}
