//! fs/namei.c and the syscalls on top: the part of the caller that decides what a syscall
//! sees. Path walk starts in RCU-walk (no references, `d_seq` snapshots); -ECHILD anywhere
//! restarts it in ref-walk (`filename_lookup()`'s retry without `LOOKUP_RCU`).
//!
//! Three callers ([`Caller`]), each written in its release's order: 2.6.38-3.4 `walk_component()`
//! -> `do_lookup()` with `__follow_mount_rcu()`; 3.5-6.0 `walk_component()` -> `lookup_fast()`
//! (reads and validates the inode, 4.x decides ENOENT from the type bits); 6.1+
//! `walk_component()` -> `lookup_fast()` + `step_into()` with `nd->next_seq`. `lookup_slow()`
//! uses `d_lookup()` (3.x) or `d_alloc_parallel()`'s RCU lookup (4.7+). The model has no mount
//! points, no symlinks and no `d_revalidate`; the model checker's reader may also start at a
//! cwd and step `..` (`follow_dotdot_rcu()`).

use crate::dentry::{DPtr, Name};
use crate::error::Errno;
use crate::fs::InodeKind;
use crate::profile::{Caller, DeadDirCheck, TmpfsPin};
use crate::rcu::RcuReadGuard;
use crate::sync::Ordering;
use crate::task::{fresh_name_in_place, Step, Task};
use tracer_common::{flags, OpKind, Probe};

/// `NAME_MAX`
const NAME_MAX: usize = 255;

/// `struct fs_struct` for the model checker's walks from a cwd: `pwd` changes under `lock`
/// inside a `seq` write section, and holds a reference on its dentry.
#[cfg(loom)]
pub(crate) struct FsStruct {
    pub(crate) lock: crate::sync::SpinLock,
    pub(crate) seq: crate::sync::SeqCount,
    pub(crate) pwd: crate::sync::AtomicPtr<crate::dentry::Dentry>,
}

/// `struct nameidata`: where the walk stands.
struct Nameidata {
    dentry: DPtr,
    /// `d_seq` of `dentry` sampled when the walk stepped onto it (RCU-walk).
    seq: u32,
    /// 6.1: `d_seq` of the dentry the walk is about to step onto, sampled by
    /// `__d_lookup_rcu()` or `follow_dotdot_rcu()` and checked by `step_into()`.
    next_seq: u32,
    /// The walk is an open(2) at its last component: a dcache miss goes to `lookup_open()`,
    /// not `lookup_slow()` (`open_last_lookups()`).
    open_last: bool,
    inode: u64,
    /// `Some` in RCU-walk (`LOOKUP_RCU`, no reference held on `dentry`); `None` in ref-walk
    /// (a reference held).
    rcu: Option<RcuReadGuard>,
}

/// A path's components; inline up to 8 (no allocation per syscall for the workloads' paths).
type Components<'p> = smallvec::SmallVec<[&'p [u8]; 8]>;

/// Splits a path relative to the model's root into `v` (the caller's: returned by value, the
/// 136-byte list was copied twice per syscall). "." components are skipped; ".." is refused
/// (the model does not walk up).
fn components<'p>(path: &'p str, v: &mut Components<'p>) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    // Split on the byte: `str::split` on a `char` went through the general pattern searcher,
    // about 165 instructions for a two-component path (callgrind).
    for c in path.as_bytes().split(|&b| b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        if c == b".." {
            return Err(Errno::EINVAL);
        }
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        v.push(c);
    }
    Ok(())
}

fn inode_of(d: DPtr) -> u64 {
    d.d_inode.load(Ordering::Relaxed)
}

impl Task<'_> {
    fn path_init(&self, rcu: bool) -> Nameidata {
        let root = self.dc.root;
        if rcu {
            let guard = self.rcu.read_lock();
            Nameidata {
                dentry: root,
                seq: root.d_seq.read_seqcount_begin(),
                next_seq: 0,
                open_last: false,
                inode: inode_of(root),
                rcu: Some(guard),
            }
        } else {
            self.dget(root);
            Nameidata {
                dentry: root,
                seq: 0,
                next_seq: 0,
                open_last: false,
                inode: inode_of(root),
                rcu: None,
            }
        }
    }

    /// `terminate_walk()`: drop what the walk holds.
    fn terminate_walk(&self, nd: Nameidata) {
        if nd.rcu.is_none() {
            self.dput(nd.dentry);
        }
    }

    /// `try_to_unlazy()` (6.1) / `unlazy_walk()` (3.0): leave RCU-walk holding a reference on
    /// where the walk stands, if its `d_seq` still matches. Written as 3.0's
    /// `__d_rcu_to_refcount()` (seq check and increment under `d_lock`), which is what 6.1's
    /// `lockref_get_not_dead()` + `read_seqcount_retry()` amount to.
    fn try_to_unlazy(&self, nd: &mut Nameidata) -> Result<(), Errno> {
        // The checker's reader stops here: what follows is lock-based and decides no ENOENT of
        // RCU-walk's making, and leaving it out keeps the explored state space small.
        #[cfg(loom)]
        if self.rcu_walk_only {
            return Err(Errno::ECHILD);
        }
        let d = nd.dentry;
        d.d_lock.lock();
        if d.count() < 0 || d.d_seq.read_seqcount_retry(nd.seq) {
            d.d_lock.unlock();
            return Err(Errno::ECHILD);
        }
        d.count_add(1);
        d.d_lock.unlock();
        nd.rcu = None; // rcu_read_unlock()
        Ok(())
    }

    /// `complete_walk()`
    fn complete_walk(&self, nd: &mut Nameidata) -> Result<(), Errno> {
        if nd.rcu.is_some() {
            self.try_to_unlazy(nd)?;
        }
        Ok(())
    }

    /// One component (`link_path_walk()`'s loop body, `walk_component()`).
    fn walk_component(&self, nd: &mut Nameidata, name: &[u8]) -> Result<(), Errno> {
        if !nd.dentry.d_can_lookup() {
            // RCU-walk first makes sure the snapshot was not stale.
            if nd.rcu.is_some() {
                self.try_to_unlazy(nd)?;
            }
            return Err(Errno::ENOTDIR);
        }
        let q = Name::new(nd.dentry.id, name);
        match self.dc.profile.caller {
            Caller::DoLookup => self.walk_component_30(nd, &q),
            Caller::LookupFast | Caller::HandleMounts => self.walk_component_48(nd, &q),
            Caller::StepInto => self.walk_component_61(nd, &q),
        }
    }

    /// 3.0 `walk_component()`: `do_lookup()`, then -ENOENT for a NULL inode.
    fn walk_component_30(&self, nd: &mut Nameidata, name: &Name<'_>) -> Result<(), Errno> {
        let (dentry, inode) = self.do_lookup(nd, name)?;
        if inode == 0 {
            // path_to_nameidata(); terminate_walk(); return -ENOENT;
            if nd.rcu.is_none() {
                self.dput(dentry);
            }
            return Err(Errno::ENOENT);
        }
        // path_to_nameidata()
        if nd.rcu.is_none() {
            self.dput(nd.dentry);
        }
        nd.dentry = dentry;
        nd.inode = inode;
        Ok(())
    }

    /// 3.0 `do_lookup()`.
    fn do_lookup(&self, nd: &mut Nameidata, name: &Name<'_>) -> Result<(DPtr, u64), Errno> {
        let parent = nd.dentry;
        if let Some(rcu) = nd.rcu.as_ref() {
            let mut seq = 0;
            let mut inode = nd.inode;
            if let Some(dentry) = self.__d_lookup_rcu(rcu, parent, name, &mut seq, &mut inode) {
                // "Memory barrier in read_seqcount_begin of child is enough"
                if parent.d_seq.__read_seqcount_retry(nd.seq) {
                    return Err(Errno::ECHILD);
                }
                nd.seq = seq;
                self.step(Step::LookupRcuReturned);
                self.__follow_mount_rcu(dentry, &mut inode);
                return Ok((dentry, inode));
            }
            // unlazy: a miss goes on in ref-walk from the parent.
            self.try_to_unlazy(nd)?;
        }
        let dentry = match self.__d_lookup(parent, name) {
            Some(d) => d,
            None => self.lookup_slow(parent, name)?,
        };
        Ok((dentry, inode_of(dentry)))
    }

    /// 3.0 `__follow_mount_rcu()`. The model has no mount points, so the loop never crosses
    /// one; what matters is its first statement in 2.6.39 and 3.0-rc7: `*inode =
    /// path->dentry->d_inode`, an unvalidated re-read that can see the NULL a concurrent kill
    /// just stored (Hugh Dickins' bug). 3.0 reloads only after crossing a mount point.
    fn __follow_mount_rcu(&self, dentry: DPtr, inode: &mut u64) {
        if self.dc.profile.reread_inode_after_check {
            *inode = inode_of(dentry);
        }
    }

    /// Whether the RCU-walk caller takes `d` (whose `d_inode` it read as `inode`) for negative:
    /// the type bits (`d_is_negative()`, 4.7 to 5.6) or the NULL inode (5.7's
    /// `handle_mounts()` among them).
    fn caller_sees_negative(&self, d: DPtr, inode: u64) -> bool {
        if self.dc.profile.enoent_from_type_bits {
            d.d_is_negative()
        } else {
            inode == 0
        }
    }

    /// The child's `d_seq` re-check after reading its inode (`read_seqcount_retry()`), as the
    /// profile's mutants leave it: true when it fails.
    fn child_seq_changed(&self, d: DPtr, seq: u32) -> bool {
        let m = &self.dc.profile.mutants;
        !m.no_child_seq_recheck && d.d_seq.read_seqcount_retry_as(seq, m.retry_without_rmb)
    }

    /// 3.5-6.0 `walk_component()`: `lookup_fast()`, else `lookup_slow()`; -ENOENT for a
    /// negative dentry; then onto it (`path_to_nameidata()`).
    fn walk_component_48(&self, nd: &mut Nameidata, name: &Name<'_>) -> Result<(), Errno> {
        let (dentry, inode, seq) = match self.lookup_fast_48(nd, name)? {
            Some(found) => found,
            None => {
                let d = self.lookup_missed(nd, name)?;
                (d, inode_of(d), 0)
            }
        };
        if nd.rcu.is_none() {
            if dentry.d_is_negative() {
                self.dput(dentry);
                return Err(Errno::ENOENT);
            }
            self.dput(nd.dentry);
        }
        nd.dentry = dentry;
        nd.inode = inode;
        nd.seq = seq;
        Ok(())
    }

    /// 4.8 `lookup_fast()`: in RCU-walk, `__d_lookup_rcu()`; read `d_inode` and the type bits;
    /// re-check the dentry's `d_seq`, then the parent's (-ECHILD on failure); only then -ENOENT
    /// for a negative dentry. A miss leaves RCU-walk for `lookup_slow()`. 5.7's `lookup_fast()`
    /// is the same without the type bits; its caller's `handle_mounts()` returns the -ENOENT for
    /// a NULL inode, with nothing read or checked in between.
    fn lookup_fast_48(
        &self,
        nd: &mut Nameidata,
        name: &Name<'_>,
    ) -> Result<Option<(DPtr, u64, u32)>, Errno> {
        let parent = nd.dentry;
        let Some(rcu) = nd.rcu.as_ref() else {
            return Ok(self.__d_lookup(parent, name).map(|d| (d, inode_of(d), 0)));
        };
        let mut seq = 0;
        let mut unused = 0;
        let Some(dentry) = self.__d_lookup_rcu(rcu, parent, name, &mut seq, &mut unused) else {
            self.try_to_unlazy(nd)?;
            return Ok(None);
        };
        self.step(Step::LookupRcuReturned);
        // "This sequence count validates that the inode matches the dentry name information
        // from lookup."
        let inode = inode_of(dentry);
        let negative = self.caller_sees_negative(dentry, inode);
        if self.child_seq_changed(dentry, seq) {
            return Err(Errno::ECHILD);
        }
        // "This sequence count validates that the parent had no changes while we did the
        // lookup of the dentry above."
        if parent.d_seq.__read_seqcount_retry(nd.seq) {
            return Err(Errno::ECHILD);
        }
        self.reader_validated(dentry, inode, negative, seq);
        let (inode, negative) = self.reread(dentry, inode, negative);
        if negative {
            return Err(Errno::ENOENT);
        }
        Ok(Some((dentry, inode, seq)))
    }

    /// The `step-into-reread` bug in the 3.5+ callers: `d_inode` read again after the `d_seq`
    /// check, unvalidated, and NULL taken for negative.
    fn reread(&self, dentry: DPtr, inode: u64, negative: bool) -> (u64, bool) {
        if self.dc.profile.reread_inode_after_check {
            let again = inode_of(dentry);
            (again, again == 0)
        } else {
            (inode, negative)
        }
    }

    /// 6.1 `walk_component()`: `lookup_fast()`, else `lookup_slow()`, then `step_into()`.
    fn walk_component_61(&self, nd: &mut Nameidata, name: &Name<'_>) -> Result<(), Errno> {
        let dentry = match self.lookup_fast_61(nd, name)? {
            Some(d) => d,
            None => self.lookup_missed(nd, name)?,
        };
        self.step_into(nd, dentry)
    }

    /// 6.1 `lookup_fast()`: in RCU-walk, `__d_lookup_rcu()` samples the dentry's `d_seq` into
    /// `nd->next_seq`; the parent's `d_seq` is re-checked here (-ECHILD on failure), the
    /// dentry's and its inode are left to `step_into()`. A miss leaves RCU-walk for
    /// `lookup_slow()`.
    fn lookup_fast_61(&self, nd: &mut Nameidata, name: &Name<'_>) -> Result<Option<DPtr>, Errno> {
        let parent = nd.dentry;
        let Some(rcu) = nd.rcu.as_ref() else {
            return Ok(self.__d_lookup(parent, name));
        };
        let mut next_seq = 0;
        let mut unused = 0;
        let found = self.__d_lookup_rcu(rcu, parent, name, &mut next_seq, &mut unused);
        nd.next_seq = next_seq;
        let Some(dentry) = found else {
            self.try_to_unlazy(nd)?;
            return Ok(None);
        };
        self.step(Step::LookupRcuReturned);
        // "This sequence count validates that the parent had no changes while we did the
        // lookup of the dentry above."
        if parent.d_seq.read_seqcount_retry(nd.seq) {
            return Err(Errno::ECHILD);
        }
        Ok(Some(dentry))
    }

    /// 6.1 `step_into()` with `handle_mounts()` (no mount points here): read `d_inode`; in
    /// RCU-walk re-check `nd->next_seq` (-ECHILD) and only then -ENOENT for a NULL inode; in
    /// ref-walk `traverse_mounts()` has already returned -ENOENT for a negative dentry.
    fn step_into(&self, nd: &mut Nameidata, dentry: DPtr) -> Result<(), Errno> {
        if nd.rcu.is_none() && dentry.d_is_negative() {
            self.dput(dentry);
            return Err(Errno::ENOENT);
        }
        let inode = inode_of(dentry);
        if nd.rcu.is_some() {
            if self.child_seq_changed(dentry, nd.next_seq) {
                return Err(Errno::ECHILD);
            }
            self.reader_validated(dentry, inode, inode == 0, nd.next_seq);
            let (inode, negative) = self.reread(dentry, inode, inode == 0);
            if negative {
                return Err(Errno::ENOENT);
            }
            nd.inode = inode;
        } else {
            self.dput(nd.dentry);
            nd.inode = inode;
        }
        nd.dentry = dentry;
        nd.seq = nd.next_seq;
        Ok(())
    }

    /// After a dcache miss of `lookup_fast()`: `lookup_slow()`, or for open(2)'s last
    /// component `lookup_open()` under the directory lock (4.7+: `d_lookup()`, then
    /// `d_alloc_parallel()`).
    fn lookup_missed(&self, nd: &Nameidata, name: &Name<'_>) -> Result<DPtr, Errno> {
        if nd.open_last && self.dc.profile.d_alloc_parallel {
            let _dir_locked = self.dc.i_rwsem.lock();
            self.lookup_open(nd.dentry, name.name)
        } else {
            self.lookup_slow(nd.dentry, name)
        }
    }

    /// `lookup_slow()` under the directory lock: the dcache once more, then the file system.
    /// 3.x `do_lookup()`: `d_lookup()`, then `d_alloc_and_lookup()`, which checks
    /// `IS_DEADDIR()`. 4.7+ `__lookup_slow()`: `IS_DEADDIR()` first ("Don't go there if it's
    /// already dead"), then `d_alloc_parallel()`.
    fn lookup_slow(&self, dir: DPtr, name: &Name<'_>) -> Result<DPtr, Errno> {
        let _dir_locked = self.dc.i_rwsem.lock();
        if !self.dc.profile.d_alloc_parallel {
            return match self.d_lookup(dir, name) {
                Some(d) => Ok(d),
                None => self.d_alloc_and_lookup(dir, name),
            };
        }
        if self.is_deaddir(dir) {
            return Err(Errno::ENOENT);
        }
        self.d_alloc_parallel(dir, name)
    }

    /// `IS_DEADDIR()`: the directory was removed while we walked into it.
    fn is_deaddir(&self, dir: DPtr) -> bool {
        self.dc.fs.kind_of(inode_of(dir)).is_none()
    }

    /// 4.7+ `d_alloc_parallel()` and, for the dentry it allocated, `i_op->lookup()`: the
    /// spare is allocated before the lookup, and killed (`dput(new)`, a never-hashed negative
    /// dentry's `__dentry_kill`) when the lookup finds the name after all.
    fn d_alloc_parallel(&self, dir: DPtr, name: &Name<'_>) -> Result<DPtr, Errno> {
        let new = self.d_alloc(dir, name.name);
        if let Some(d) = self.d_alloc_parallel_lookup(dir, name) {
            self.dput(new);
            return Ok(d);
        }
        let inode = self.dc.fs.lookup(inode_of(dir), name.name);
        self.d_add(new, inode);
        Ok(new)
    }

    /// The lookup half of 6.1's `d_alloc_parallel()`: `__d_lookup_rcu()`, then
    /// `lockref_get_not_dead()` and a `d_seq` re-check, retried while `rename_lock` moved.
    fn d_alloc_parallel_lookup(&self, parent: DPtr, name: &Name<'_>) -> Option<DPtr> {
        loop {
            let rcu = self.rcu.read_lock();
            let r_seq = self.dc.rename_lock_seq.read_seqcount_begin();
            let mut d_seq = 0;
            let mut unused = 0;
            if let Some(d) = self.__d_lookup_rcu(&rcu, parent, name, &mut d_seq, &mut unused) {
                d.d_lock.lock();
                if d.count() < 0 {
                    d.d_lock.unlock();
                    continue;
                }
                d.count_add(1);
                d.d_lock.unlock();
                if d.d_seq.read_seqcount_retry(d_seq) {
                    drop(rcu);
                    self.dput(d);
                    continue;
                }
                return Some(d);
            }
            if !self.dc.rename_lock_seq.read_seqcount_retry(r_seq) {
                return None;
            }
        }
    }

    /// `d_alloc()` + `i_op->lookup()` after a `d_lookup()` miss (3.x `d_alloc_and_lookup()`,
    /// `__lookup_hash()`): read the name from the file system and hash a positive or negative
    /// dentry for it (`d_add`/`d_splice_alias`), unless the directory is dead, which
    /// [`DeadDirCheck`] finds before or after the allocation. Directory lock held.
    fn d_alloc_and_lookup(&self, dir: DPtr, name: &Name<'_>) -> Result<DPtr, Errno> {
        match self.dc.profile.dead_dir_check {
            DeadDirCheck::BeforeAlloc => {
                if self.is_deaddir(dir) {
                    return Err(Errno::ENOENT);
                }
                let d = self.d_alloc(dir, name.name);
                self.lookup_real(dir, d, name.name)
            }
            DeadDirCheck::AfterAlloc => {
                let d = self.d_alloc(dir, name.name);
                if self.is_deaddir(dir) {
                    // lookup_real(): "Don't create child dentry for a dead directory."
                    self.dput(d);
                    return Err(Errno::ENOENT);
                }
                self.lookup_real(dir, d, name.name)
            }
        }
    }

    /// `i_op->lookup()` for the fresh dentry `d` of `name`: the file system's answer, hashed.
    fn lookup_real(&self, dir: DPtr, d: DPtr, name: &[u8]) -> Result<DPtr, Errno> {
        let inode = self.dc.fs.lookup(inode_of(dir), name);
        self.d_add(d, inode);
        Ok(d)
    }

    /// `__lookup_hash()`: the last component of a namespace operation, directory lock held.
    fn __lookup_hash(&self, base: DPtr, name: &[u8]) -> Result<DPtr, Errno> {
        let q = Name::new(base.id, name);
        match self.d_lookup(base, &q) {
            Some(d) => Ok(d),
            None => self.d_alloc_and_lookup(base, &q),
        }
    }

    /// open(2) with `O_CREAT`: `lookup_open()`. From 4.7 (the `d_alloc_parallel()` callers) it
    /// checks `IS_DEADDIR()`, tries `d_lookup()`, then `d_alloc_parallel()`, whose lookup half
    /// is an RCU hash lookup, before the file system; before that, `__lookup_hash()`.
    /// Directory lock held.
    fn lookup_open(&self, base: DPtr, name: &[u8]) -> Result<DPtr, Errno> {
        if !self.dc.profile.d_alloc_parallel {
            return self.__lookup_hash(base, name);
        }
        if self.is_deaddir(base) {
            return Err(Errno::ENOENT);
        }
        let q = Name::new(base.id, name);
        if let Some(d) = self.d_lookup(base, &q) {
            return Ok(d);
        }
        self.d_alloc_parallel(base, &q)
    }

    /// `path_lookupat()` / `path_parentat()` / `path_openat()` (`open`): walks `comps` from the
    /// root and returns the end with a reference.
    fn path_walk(&self, comps: &[&[u8]], rcu: bool, open: bool) -> Result<DPtr, Errno> {
        let mut nd = self.path_init(rcu);
        let mut r = Ok(());
        for (i, c) in comps.iter().enumerate() {
            nd.open_last = open && i + 1 == comps.len();
            r = self.walk_component(&mut nd, c);
            if r.is_err() {
                break;
            }
        }
        let r = r.and_then(|()| self.complete_walk(&mut nd));
        match r {
            Ok(()) => Ok(nd.dentry),
            Err(e) => {
                self.terminate_walk(nd);
                Err(e)
            }
        }
    }

    /// `filename_lookup()`: RCU-walk, and on -ECHILD the whole walk again in ref-walk.
    pub(crate) fn filename_walk(&self, comps: &[&[u8]]) -> Result<DPtr, Errno> {
        self.filename_walk_as(comps, false)
    }

    /// `filename_lookup()`, or `do_filp_open()` when `open`.
    fn filename_walk_as(&self, comps: &[&[u8]], open: bool) -> Result<DPtr, Errno> {
        match self.path_walk(comps, true, open) {
            Err(Errno::ECHILD) => self.path_walk(comps, false, open),
            r => r,
        }
    }

    /// `filename_parentat()`: the parent directory (referenced) and the last name.
    fn filename_parentat<'p>(&self, path: &'p str) -> Result<(DPtr, Option<&'p [u8]>), Errno> {
        let mut comps = Components::new();
        components(path, &mut comps)?;
        let (last, dirs) = match comps.split_last() {
            Some((last, dirs)) => (Some(*last), dirs),
            None => (None, &comps[..]),
        };
        let parent = self.filename_walk(dirs)?;
        if last.is_some() && !parent.d_can_lookup() {
            self.dput(parent);
            return Err(Errno::ENOTDIR);
        }
        Ok((parent, last))
    }

    /// The model checker's reader: stat(2) of `name` in the root, RCU-walk only. It ends with
    /// the component's lookup (`__d_lookup_rcu` and the profile's caller validation, up to the
    /// caller's -ENOENT for a NULL inode); where the kernel would leave RCU-walk (a miss, a
    /// failed validation) it returns -ECHILD instead of going on in ref-walk.
    #[cfg(loom)]
    pub(crate) fn stat_rcu_walk(&mut self, name: &str) -> Result<u64, Errno> {
        self.rcu_walk_only = true;
        self.syscall(OpKind::Stat, name, None, None, || {
            let mut nd = self.path_init(true);
            self.walk_component(&mut nd, name.as_bytes())?;
            Ok(nd.inode)
        })
    }

    /// `path_init()` of a relative path in RCU-walk: the cwd, its inode and its `d_seq`, read
    /// consistently under `fs->seq` (4.8 and 6.1 alike: inode, then `__read_seqcount_begin()`).
    #[cfg(loom)]
    fn path_init_cwd(&self, fs: &FsStruct) -> Nameidata {
        let guard = self.rcu.read_lock();
        loop {
            let s = fs.seq.read_seqcount_begin();
            let cwd = DPtr::new(fs.pwd.load(Ordering::Relaxed)).unwrap_or(self.dc.root);
            let inode = inode_of(cwd);
            let seq = cwd.d_seq.__read_seqcount_begin();
            if !fs.seq.read_seqcount_retry(s) {
                return Nameidata {
                    dentry: cwd,
                    seq,
                    next_seq: 0,
                    open_last: false,
                    inode,
                    rcu: Some(guard),
                };
            }
        }
    }

    /// `follow_dotdot_rcu()` (no mount points; the model's root is the walk's root), then, on
    /// 5.7+, `step_into()`. Up to 6.0 only the child's `d_seq` is re-checked and the walk takes
    /// the parent's inode unvalidated: read after the re-check on 3.0, before sampling the
    /// parent's `d_seq` from 4.8; 5.7's `handle_mounts()` returns -ENOENT for a NULL one where
    /// 4.8 stood on it.
    #[cfg(loom)]
    fn follow_dotdot_rcu(&self, nd: &mut Nameidata) -> Result<(), Errno> {
        let old = nd.dentry;
        let parent = old.d_parent();
        if parent == old {
            return Ok(());
        }
        match self.dc.profile.caller {
            Caller::DoLookup => {
                let seq = parent.d_seq.read_seqcount_begin();
                if old.d_seq.read_seqcount_retry(nd.seq) {
                    return Err(Errno::ECHILD);
                }
                let inode = inode_of(parent);
                self.reader_validated(parent, inode, inode == 0, seq);
                nd.dentry = parent;
                nd.seq = seq;
                nd.inode = inode;
                Ok(())
            }
            Caller::LookupFast | Caller::HandleMounts => {
                let inode = inode_of(parent);
                let seq = parent.d_seq.read_seqcount_begin();
                if old.d_seq.read_seqcount_retry(nd.seq) {
                    return Err(Errno::ECHILD);
                }
                self.reader_validated(parent, inode, inode == 0, seq);
                if inode == 0 && self.dc.profile.caller == Caller::HandleMounts {
                    return Err(Errno::ENOENT);
                }
                nd.dentry = parent;
                nd.seq = seq;
                nd.inode = inode;
                Ok(())
            }
            Caller::StepInto => {
                nd.next_seq = parent.d_seq.read_seqcount_begin();
                // "makes sure that non-RCU pathwalk could reach this state"
                if old.d_seq.read_seqcount_retry(nd.seq) {
                    return Err(Errno::ECHILD);
                }
                self.step_into(nd, parent)
            }
        }
    }

    /// The model checker's reader from a cwd: stat(2) of `..` in RCU-walk only. `Ok` is the
    /// inode the walk stands on (0: a NULL inode it trusts).
    #[cfg(loom)]
    pub(crate) fn stat_dotdot_rcu_walk(&mut self, fs: &FsStruct) -> Result<u64, Errno> {
        self.rcu_walk_only = true;
        self.syscall(OpKind::Stat, "..", None, None, || {
            let mut nd = self.path_init_cwd(fs);
            self.follow_dotdot_rcu(&mut nd)?;
            Ok(nd.inode)
        })
    }

    /// chdir(2) to `to`: `set_fs_pwd()` swaps `fs->pwd` under `fs->lock` and `fs->seq`, then
    /// `path_put()` drops the old cwd, which may be its last reference.
    #[cfg(loom)]
    pub(crate) fn set_fs_pwd(&self, fs: &FsStruct, to: DPtr) {
        self.dget(to);
        fs.lock.lock();
        fs.seq.write_seqcount_begin();
        let old = fs.pwd.swap(to.as_ptr(), Ordering::Relaxed);
        fs.seq.write_seqcount_end();
        fs.lock.unlock();
        if let Some(old) = DPtr::new(old) {
            self.dput(old);
        }
    }

    fn do_stat(&self, path: &str) -> Result<u64, Errno> {
        self.do_lookup_path(path, false)
    }

    /// open(2) without `O_CREAT`: stat's walk, but a miss of the last component goes to
    /// `lookup_open()`.
    fn do_open(&self, path: &str) -> Result<u64, Errno> {
        self.do_lookup_path(path, true)
    }

    fn do_lookup_path(&self, path: &str, open: bool) -> Result<u64, Errno> {
        let mut comps = Components::new();
        components(path, &mut comps)?;
        let d = self.filename_walk_as(&comps, open)?;
        let ino = inode_of(d);
        self.dput(d);
        Ok(ino)
    }

    /// create (`O_CREAT|O_EXCL`) and mkdir: `filename_create()`, `vfs_create()`/`vfs_mkdir()`.
    fn do_create(&self, path: &str, kind: InodeKind) -> Result<u64, Errno> {
        let (parent, last) = self.filename_parentat(path)?;
        let r = match last {
            None => Err(Errno::EEXIST),
            Some(name) => {
                let _dir_locked = self.dc.i_rwsem.lock();
                let found = match kind {
                    InodeKind::File => self.lookup_open(parent, name),
                    // mkdir: filename_create() -> lookup_one_qstr_excl()
                    InodeKind::Dir => self.__lookup_hash(parent, name),
                };
                found.and_then(|d| {
                    let r = if inode_of(d) != 0 {
                        Err(Errno::EEXIST)
                    } else {
                        self.dc.fs.create(inode_of(parent), name, kind)
                    };
                    if let Ok(ino) = r {
                        match (self.dc.fs.kind.pins_positive(), self.dc.profile.tmpfs_pin) {
                            (true, TmpfsPin::Persistent) => self.d_make_persistent(d, (ino, kind)),
                            (true, TmpfsPin::DgetAfterInstantiate) => {
                                self.d_instantiate(d, Some((ino, kind)));
                                // shmem_mknod(): "Extra count - pin the dentry in core"
                                self.dget(d);
                            }
                            (false, _) => self.d_instantiate(d, Some((ino, kind))),
                        }
                    }
                    self.dput(d);
                    r
                })
            }
        };
        self.dput(parent);
        r
    }

    /// unlink and rmdir: `vfs_unlink()`/`vfs_rmdir()`, then `d_delete()`.
    fn do_remove(&self, path: &str, dir: bool) -> Result<(), Errno> {
        let (parent, last) = self.filename_parentat(path)?;
        let r = match last {
            None if dir => Err(Errno::EBUSY),
            None => Err(Errno::EISDIR),
            Some(name) => {
                let _dir_locked = self.dc.i_rwsem.lock();
                self.__lookup_hash(parent, name).and_then(|d| {
                    let r = match (inode_of(d), d.d_can_lookup(), dir) {
                        (0, _, _) => Err(Errno::ENOENT),
                        (_, true, false) => Err(Errno::EISDIR),
                        (_, false, true) => Err(Errno::ENOTDIR),
                        _ => self.dc.fs.remove(inode_of(parent), name),
                    };
                    if r.is_ok() {
                        if dir {
                            self.shrink_dcache_parent(d);
                        }
                        if self.dc.fs.kind.pins_positive() {
                            // vfs_unlink()'s caller still holds a reference.
                            self.simple_unlink_unpin(d);
                        }
                        self.d_delete(d);
                    }
                    self.dput(d);
                    r
                })
            }
        };
        self.dput(parent);
        r
    }

    /// rename: `lock_rename()`, both lookups, `vfs_rename()`, `d_move()`.
    fn do_rename(&self, old: &str, new: &str) -> Result<(), Errno> {
        let (op, olast) = self.filename_parentat(old)?;
        let (np, nlast) = match self.filename_parentat(new) {
            Ok(x) => x,
            Err(e) => {
                self.dput(op);
                return Err(e);
            }
        };
        let r = match (olast, nlast) {
            (Some(on), Some(nn)) => {
                let _dirs_locked = self.dc.i_rwsem.lock();
                self.rename_locked(op, on, np, nn)
            }
            _ => Err(Errno::EBUSY),
        };
        self.dput(np);
        self.dput(op);
        r
    }

    fn rename_locked(&self, op: DPtr, on: &[u8], np: DPtr, nn: &[u8]) -> Result<(), Errno> {
        let od = self.__lookup_hash(op, on)?;
        let nd = match self.__lookup_hash(np, nn) {
            Ok(d) => d,
            Err(e) => {
                self.dput(od);
                return Err(e);
            }
        };
        let r = self.vfs_rename(op, od, np, nd, on, nn);
        self.dput(nd);
        self.dput(od);
        r
    }

    /// `simple_unlink()`'s (and `simple_rmdir()`'s) drop of the pin a tmpfs create took:
    /// `dput()` up to 6.18, `d_make_discardable()` from 6.19 ([`TmpfsPin`]).
    fn simple_unlink_unpin(&self, d: DPtr) {
        match self.dc.profile.tmpfs_pin {
            TmpfsPin::DgetAfterInstantiate => self.dput(d),
            TmpfsPin::Persistent => self.d_make_discardable(d),
        }
    }

    fn vfs_rename(
        &self,
        op: DPtr,
        od: DPtr,
        np: DPtr,
        nd: DPtr,
        on: &[u8],
        nn: &[u8],
    ) -> Result<(), Errno> {
        if inode_of(od) == 0 {
            return Err(Errno::ENOENT);
        }
        if od == nd {
            return Ok(());
        }
        // lock_rename()'s trap: the source may not be an ancestor of the target's directory.
        let mut a = np;
        loop {
            if a == od {
                return Err(Errno::EINVAL);
            }
            let up = a.d_parent();
            if up == a {
                break;
            }
            a = up;
        }
        let target_positive = inode_of(nd) != 0;
        if target_positive {
            match (od.d_can_lookup(), nd.d_can_lookup()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
        }
        self.dc.fs.rename(inode_of(op), on, inode_of(np), nn)?;
        if target_positive {
            if nd.d_can_lookup() {
                self.shrink_dcache_parent(nd);
            }
            if self.dc.fs.kind.pins_positive() {
                // shmem_rename2() unlinks the target: its pin goes.
                self.simple_unlink_unpin(nd);
            }
        }
        self.d_move(od, nd);
        Ok(())
    }

    fn do_exchange(&self, a: &str, b: &str) -> Result<(), Errno> {
        let (ap, alast) = self.filename_parentat(a)?;
        let (bp, blast) = match self.filename_parentat(b) {
            Ok(x) => x,
            Err(e) => {
                self.dput(ap);
                return Err(e);
            }
        };
        let r = match (alast, blast) {
            (Some(an), Some(bn)) => {
                let _dirs_locked = self.dc.i_rwsem.lock();
                self.exchange_locked(ap, an, bp, bn)
            }
            _ => Err(Errno::EBUSY),
        };
        self.dput(bp);
        self.dput(ap);
        r
    }

    fn exchange_locked(&self, ap: DPtr, an: &[u8], bp: DPtr, bn: &[u8]) -> Result<(), Errno> {
        let ad = self.__lookup_hash(ap, an)?;
        let bd = match self.__lookup_hash(bp, bn) {
            Ok(d) => d,
            Err(e) => {
                self.dput(ad);
                return Err(e);
            }
        };
        let r = if inode_of(ad) == 0 || inode_of(bd) == 0 {
            Err(Errno::ENOENT)
        } else if ad == bd {
            Ok(())
        } else if is_ancestor(ad, bp) || is_ancestor(bd, ap) {
            // lock_rename()'s trap, both ways: neither may be an ancestor of the other's
            // directory.
            Err(Errno::EINVAL)
        } else {
            self.dc
                .fs
                .exchange(inode_of(ap), an, inode_of(bp), bn)
                .map(|()| self.d_exchange(ad, bd))
        };
        self.dput(bd);
        self.dput(ad);
        r
    }

    fn do_readdir(&self, path: &str) -> Result<Vec<String>, Errno> {
        let mut comps = Components::new();
        components(path, &mut comps)?;
        let d = self.filename_walk(&comps)?;
        let r = if d.d_can_lookup() {
            let _dir_locked = self.dc.i_rwsem.lock();
            self.dc.fs.readdir(inode_of(d))
        } else {
            Err(Errno::ENOTDIR)
        };
        self.dput(d);
        r
    }

    /// `echo 2 > /proc/sys/vm/drop_caches`: `drop_slab()` ([`Task::drop_slab`]). Returns the
    /// shrinker's `freed` count (dentries it isolated; parents it then killed are not counted,
    /// as in the kernel).
    fn do_drop_caches(&self) -> usize {
        self.drop_slab()
    }

    /// Runs `f` as one syscall: emits its Op event (begin/end from the model clock, or `span`
    /// from a kernel trace) and flushes the task's events.
    fn syscall<T>(
        &self,
        kind: OpKind,
        path: &str,
        path2: Option<&str>,
        span: Option<(u64, u64)>,
        f: impl FnOnce() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if let Some((b, _)) = span {
            // The op's own events come strictly after its begin: a reader ordering events by
            // time (the diff) meets the op before what ran inside it.
            self.advance_clock_to(b.saturating_add(1));
        }
        let ts = match span {
            Some((b, _)) => b,
            None => self.probe_clock(),
        };
        let r = f();
        if self.want_events {
            self.push_new(Probe::Op, ts, |e| {
                e.aux = kind as u32;
                e.result = r.as_ref().map_or_else(|e| -e.code(), |_| 0);
                fresh_name_in_place(e, path.as_bytes(), path2.map(str::as_bytes));
                if path2.is_some() {
                    e.flags |= flags::TWO_PATHS;
                }
                e.ts_end = match span {
                    Some((_, end)) => end,
                    None => self.now(),
                };
            });
        }
        self.flush();
        r
    }

    /// stat(2): the inode number.
    pub fn stat(&self, path: &str) -> Result<u64, Errno> {
        self.syscall(OpKind::Stat, path, None, None, || self.do_stat(path))
    }

    /// open(2) of an existing path (`O_RDONLY`), closed again: the inode number.
    pub fn open(&self, path: &str) -> Result<u64, Errno> {
        self.syscall(OpKind::Open, path, None, None, || self.do_open(path))
    }

    /// open(2) with `O_CREAT|O_EXCL`: the new inode number.
    pub fn create(&self, path: &str) -> Result<u64, Errno> {
        self.syscall(OpKind::Create, path, None, None, || {
            self.do_create(path, InodeKind::File)
        })
    }

    /// mkdir(2): the new inode number.
    pub fn mkdir(&self, path: &str) -> Result<u64, Errno> {
        self.syscall(OpKind::Mkdir, path, None, None, || {
            self.do_create(path, InodeKind::Dir)
        })
    }

    /// unlink(2)
    pub fn unlink(&self, path: &str) -> Result<(), Errno> {
        self.syscall(OpKind::Unlink, path, None, None, || {
            self.do_remove(path, false)
        })
    }

    /// rmdir(2)
    pub fn rmdir(&self, path: &str) -> Result<(), Errno> {
        self.syscall(OpKind::Rmdir, path, None, None, || {
            self.do_remove(path, true)
        })
    }

    /// rename(2)
    pub fn rename(&self, old: &str, new: &str) -> Result<(), Errno> {
        self.syscall(OpKind::Rename, old, Some(new), None, || {
            self.do_rename(old, new)
        })
    }

    /// renameat2(2) with `RENAME_EXCHANGE`: the two names swap what they name.
    pub fn exchange(&self, a: &str, b: &str) -> Result<(), Errno> {
        self.syscall(OpKind::Exchange, a, Some(b), None, || {
            self.do_exchange(a, b)
        })
    }

    /// getdents(2) over a whole directory: its names, sorted.
    pub fn readdir(&self, path: &str) -> Result<Vec<String>, Errno> {
        self.syscall(OpKind::Readdir, path, None, None, || self.do_readdir(path))
    }

    /// Writing 2 to /proc/sys/vm/drop_caches: the shrinker's `freed` count.
    pub fn drop_caches(&self) -> usize {
        let r: Result<usize, Errno> = self.syscall(OpKind::DropCaches, "", None, None, || {
            Ok(self.do_drop_caches())
        });
        r.unwrap_or(0)
    }

    /// Any operation by kind, for replay: `path2` is the target of a rename; `span` is a
    /// kernel trace's begin/end for the Op event (and moves a logical clock forward to it).
    /// A rename without `path2` is EINVAL.
    pub fn run(
        &self,
        kind: OpKind,
        path: &str,
        path2: Option<&str>,
        span: Option<(u64, u64)>,
    ) -> Result<(), Errno> {
        let p2 = path2.filter(|_| matches!(kind, OpKind::Rename | OpKind::Exchange));
        self.syscall(kind, path, p2, span, || match kind {
            OpKind::Stat => self.do_stat(path).map(drop),
            OpKind::Open => self.do_open(path).map(drop),
            OpKind::Create => self.do_create(path, InodeKind::File).map(drop),
            OpKind::Mkdir => self.do_create(path, InodeKind::Dir).map(drop),
            OpKind::Unlink => self.do_remove(path, false),
            OpKind::Rmdir => self.do_remove(path, true),
            OpKind::Rename => match p2 {
                Some(new) => self.do_rename(path, new),
                None => Err(Errno::EINVAL),
            },
            OpKind::Exchange => match p2 {
                Some(other) => self.do_exchange(path, other),
                None => Err(Errno::EINVAL),
            },
            OpKind::Readdir => self.do_readdir(path).map(drop),
            OpKind::DropCaches => {
                self.do_drop_caches();
                Ok(())
            }
        })
    }
}

/// Whether `anc` is `d` or one of its ancestors.
fn is_ancestor(anc: DPtr, d: DPtr) -> bool {
    let mut a = d;
    loop {
        if a == anc {
            return true;
        }
        let up = a.d_parent();
        if up == a {
            return false;
        }
        a = up;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcache::tests::model;
    use tracer_common::Event;

    /// `components` splits on the byte '/' as `str::split('/')` did (the same list, the same
    /// refusals): empty and "." components skipped, ".." and over-long names refused, names
    /// with multi-byte characters (whose bytes are never '/') kept whole.
    #[test]
    fn components_are_the_path_split_at_each_slash() {
        fn by_char(path: &str) -> Result<Vec<&[u8]>, Errno> {
            if path.is_empty() {
                return Err(Errno::ENOENT);
            }
            let mut v = Vec::new();
            for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
                if c == ".." {
                    return Err(Errno::EINVAL);
                }
                if c.len() > NAME_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                v.push(c.as_bytes());
            }
            Ok(v)
        }
        let long = "n".repeat(NAME_MAX);
        let longer = "n".repeat(NAME_MAX + 1);
        let paths = [
            "",
            "/",
            "//",
            ".",
            "./",
            "a",
            "/a",
            "a/",
            "a//b",
            "./a/./b/.",
            "a/../b",
            "..",
            "...",
            ".a/b.",
            "d0/f12",
            "d0/sub/f1",
            "é/ü/ñ",
            "a/é/",
            &long,
            &format!("a/{long}/b"),
            &longer,
            &format!("{longer}/.."),
            "a/b/c/d/e/f/g/h/i/j",
        ];
        for path in paths {
            let mut v = Components::new();
            let got = components(path, &mut v).map(|()| v.to_vec());
            assert_eq!(got, by_char(path), "{path:?}");
        }
    }

    fn probes(events: &[Event]) -> Vec<Probe> {
        let mut v: Vec<Probe> = events
            .iter()
            .filter_map(|e| Probe::from_u8(e.probe))
            .collect();
        v.sort();
        v
    }

    // rev5 finding 4: `lookup_slow()` checks `IS_DEADDIR()` where its generation does, and
    // 4.7+ `d_alloc_parallel()` kills its spare dentry when the lookup finds the name.

    /// A walker in ref-walk holds the directory "s" (it walked into it) while rmdir removes
    /// it, then misses "x" in the dcache: `lookup_slow(s, "x")`'s result and events.
    fn lookup_slow_in_a_removed_directory(profile: &str) -> (Result<(), Errno>, Vec<Probe>) {
        let (dc, sink) = model(profile);
        let t = dc.task(1);
        t.mkdir("s").unwrap();
        let s = t.filename_walk(&[b"s".as_slice()]).unwrap();
        t.rmdir("s").unwrap();
        t.flush();
        sink.take();
        let r = t.lookup_slow(s, &Name::new(s.id, b"x")).map(|d| t.dput(d));
        t.flush();
        let seen = probes(&sink.take());
        t.dput(s);
        (r, seen)
    }

    /// 4.7+ `__lookup_slow()` (4.7.4, 4.8.15, 4.18, 6.1 fs/namei.c) returns -ENOENT for a
    /// dead directory before `d_alloc_parallel()`: no `__d_lookup_rcu`. 3.0's `do_lookup()`
    /// asks `d_lookup()` first; its `d_alloc_and_lookup()` checks `IS_DEADDIR()` after that,
    /// before allocating. 3.5 to 4.6 (rev7 finding 5: 3.5.0's, 3.6's, 3.10.105's and
    /// 4.4.155's `lookup_slow()` -> `__lookup_hash()`) allocate on the miss and
    /// `lookup_real()` `dput()`s the allocation: a kill of a never-hashed negative dentry.
    #[test]
    fn lookup_slow_in_a_dead_directory_asks_the_dcache_only_before_4_7() {
        for profile in [
            "linux-4.7",
            "linux-4.18",
            "linux-6.1",
            "linux-6.8",
            "linux-6.19",
        ] {
            let (r, seen) = lookup_slow_in_a_removed_directory(profile);
            assert_eq!(r, Err(Errno::ENOENT), "{profile}");
            assert_eq!(seen, [], "{profile}: IS_DEADDIR comes first");
        }
        for (profile, want) in [
            ("linux-3.0", vec![Probe::DLookup]),
            ("linux-3.5", vec![Probe::DLookup, Probe::DentryKill]),
            ("linux-4.4", vec![Probe::DLookup, Probe::DentryKill]),
        ] {
            let (r, seen) = lookup_slow_in_a_removed_directory(profile);
            assert_eq!(r, Err(Errno::ENOENT), "{profile}");
            assert_eq!(
                lookups_and_kills(&seen),
                want,
                "{profile}: d_lookup() first"
            );
        }
    }

    /// The lookups and kills among `seen` (a kill's own unhash and inode events left out).
    fn lookups_and_kills(seen: &[Probe]) -> Vec<Probe> {
        seen.iter()
            .copied()
            .filter(|p| matches!(p, Probe::DLookup | Probe::DentryKill))
            .collect()
    }

    /// The namespace operations' `__lookup_hash()` in a dead directory: 4.7.4's and 4.8.15's
    /// still allocate before `lookup_real()` refuses; 4.17.0's checks `IS_DEADDIR()` first.
    #[test]
    fn lookup_hash_in_a_dead_directory_allocates_from_3_5_to_4_8() {
        for (profile, want) in [
            ("linux-3.0", vec![Probe::DLookup]),
            ("linux-4.7", vec![Probe::DLookup, Probe::DentryKill]),
            ("linux-4.8", vec![Probe::DLookup, Probe::DentryKill]),
            ("linux-4.17", vec![Probe::DLookup]),
            ("linux-6.19", vec![Probe::DLookup]),
        ] {
            let (dc, sink) = model(profile);
            let t = dc.task(1);
            t.mkdir("s").unwrap();
            let s = t.filename_walk(&[b"s".as_slice()]).unwrap();
            t.rmdir("s").unwrap();
            t.flush();
            sink.take();
            let r = t.__lookup_hash(s, b"x").map(|d| t.dput(d));
            t.flush();
            assert_eq!(r, Err(Errno::ENOENT), "{profile}");
            assert_eq!(lookups_and_kills(&probes(&sink.take())), want, "{profile}");
            t.dput(s);
        }
    }

    /// `lookup_slow()` of a name another lookup has hashed since `lookup_fast()` missed it:
    /// 4.7+ `d_alloc_parallel()` allocated `new` before its lookup found the name, and
    /// `dput(new)` kills that never-hashed negative dentry (`__dentry_kill`, nothing to
    /// unhash or detach, `d_seq` unmoved). 3.0's `d_lookup()` allocates nothing.
    #[test]
    fn d_alloc_parallel_kills_its_spare_when_the_lookup_finds_the_name() {
        for (profile, found_by) in [
            ("linux-3.0", Probe::DLookup),
            ("linux-4.7", Probe::DLookupRcu),
            ("linux-6.1", Probe::DLookupRcu),
        ] {
            let (dc, sink) = model(profile);
            let t = dc.task(1);
            let ino = t.create("f").unwrap();
            t.flush();
            sink.take();
            let root = dc.root;
            let f = t.lookup_slow(root, &Name::new(root.id, b"f")).unwrap();
            let (f_id, f_ino) = (f.id, inode_of(f));
            t.dput(f);
            assert_eq!(f_ino, ino, "{profile}");
            t.flush();
            let events = sink.take();
            let hits: Vec<&Event> = events
                .iter()
                .filter(|e| e.probe == found_by as u8 && e.dentry == f_id)
                .collect();
            assert_eq!(hits.len(), 1, "{profile}: {:?}", probes(&events));
            let kills: Vec<&Event> = events
                .iter()
                .filter(|e| e.probe == Probe::DentryKill as u8)
                .collect();
            if found_by == Probe::DLookup {
                assert!(kills.is_empty(), "{profile}: {:?}", probes(&events));
                continue;
            }
            assert_eq!(kills.len(), 1, "{profile}: {:?}", probes(&events));
            let k = kills[0];
            assert_ne!(k.dentry, f_id, "{profile}: the spare, not the found dentry");
            assert_eq!(k.name_bytes(), b"f");
            assert_eq!((k.inode_begin, k.inode_end), (0, 0), "{profile}: negative");
            assert_eq!(k.seq_begin, k.seq_end, "{profile}");
            assert!(!k.has(flags::HASHED_BEGIN) && !k.has(flags::HASHED_END));
        }
    }
}
