//! Kernel-generation profiles: every place where the protocol differs between the kernels the
//! model covers is one field here, and the protocol code branches on these fields only.

use crate::error::ModelError;

/// How the lookup caller gets the inode of the dentry `__d_lookup_rcu` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderInode {
    /// 3.0: `__d_lookup_rcu(parent, name, &seq, &inode)` reads `d_inode` inside its seq section
    /// and hands it back validated; `do_lookup` uses it.
    InLookup,
    /// 3.5+: `__d_lookup_rcu` returns the dentry and seq only; the caller (`lookup_fast` on 6.1)
    /// reads `d_inode`, then `read_seqcount_retry(&dentry->d_seq, seq)` (-ECHILD on failure).
    CallerValidates,
}

/// How `d_seq` moves around a change of `d_inode` (`dentry_unlink_inode`, `__d_instantiate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InodeSeq {
    /// 3.0: change `d_inode`, then `dentry_rcuwalk_barrier()` = `smp_wmb(); seq += 2`.
    BarrierAfter,
    /// 4.8 to 4.17 `dentry_unlink_inode`: `raw_write_seqcount_begin/end` around the clear only
    /// if the dentry is still hashed, so killing an already-unhashed dentry moves no seq.
    BracketIfHashed,
    /// 4.6/4.7 `dentry_unlink_inode`, every `__d_instantiate` since 4.x, and `dentry_unlink_inode`
    /// after "make sure that __dentry_kill() always invalidates d_seq, unhashed or not" (2018):
    /// always bracketed.
    Bracket,
}

/// What clears `d_inode` on the kill path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillIput {
    /// Before 4.8: `d_kill()` -> `dentry_iput()`: `d_inode = NULL` with no seq change of its own.
    DentryIput,
    /// 4.8+: `__dentry_kill()` -> `dentry_unlink_inode()` (seq per [`Profile::unlink_inode_seq`]).
    DentryUnlinkInode,
}

/// The shape of `__d_drop`, which decides what its probes can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DDropShape {
    /// 3.0, 4.8: one out-of-line `__d_drop` does unlink, `pprev = NULL` and the invalidate; the
    /// model emits one `__d_drop` event per unhash.
    Single,
    /// 4.15+ split: `__d_drop` (inline) calls static `___d_drop` (bucket lock and unlink only),
    /// then sets `pprev = NULL` and invalidates `d_seq` itself. On Debian's 6.1 every `__d_drop`
    /// call site is inlined, so a probe on `__d_drop` sees nothing: the model emits only the
    /// `___d_drop` event (hashed at its entry and exit, seq unchanged inside it), as the kernel's
    /// probes would record it.
    SplitInlined,
}

/// What a non-exchanging `__d_move` does to the target (the dentry being replaced), which then
/// dies unhashed on its last `dput`: it decides the name and parent its kill events carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DMoveTarget {
    /// 3.0: `switch_names()` and a swap of `d_parent`: the target gets the old name and parent.
    SwapNameAndParent,
    /// 4.8: the target keeps its name but gets the old parent.
    KeepNameSwapParent,
    /// Since "make non-exchanging __d_move() copy ->d_parent rather than swap them" (2018):
    /// the target keeps name and parent; the parents' references follow the moved dentry.
    KeepNameAndParent,
}

/// Deliberately broken variants of a profile, for the model checker to prove it catches them.
/// All false in every named profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// `__d_drop` invalidates `d_seq` without its `smp_wmb()`.
    pub no_d_drop_barrier: bool,
    /// The kill path clears `d_inode` before it unhashes the dentry.
    pub clear_inode_before_unhash: bool,
    /// `__d_lookup_rcu` skips its `d_unhashed()` check.
    pub reader_skips_unhashed_check: bool,
}

/// The protocol of one kernel generation. Build one with [`Profile::named`] or
/// [`Profile::for_release`]; tweak fields (mutants) for experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Profile name, one of [`Profile::NAMES`].
    pub name: &'static str,
    /// Generation as (major, minor), for picking a default from a release string.
    pub version: (u32, u32),
    /// 3.0's `__d_lookup_rcu` uses `read_seqcount_begin()` (waits for an even count); 3.5+
    /// uses `raw_seqcount_begin()` (never waits, clears bit 0).
    pub reader_waits_even_seq: bool,
    /// See [`ReaderInode`].
    pub reader_inode: ReaderInode,
    /// 3.0-rc7 only (Hugh Dickins' bug): `__follow_mount_rcu()` starts every iteration with
    /// `*inode = path->dentry->d_inode`, an unvalidated re-read after `__d_lookup_rcu` validated
    /// the inode; `walk_component()` then returns -ENOENT for NULL. Fixed before 3.0 by "vfs: fix
    /// race in rcu lookup of pruned dentry" (reload only after crossing a mount point).
    pub follow_mount_reloads_inode: bool,
    /// See [`KillIput`].
    pub kill_iput: KillIput,
    /// `d_seq` around the clear in `dentry_unlink_inode` (the `d_delete` path in every
    /// generation, the kill path from 4.8).
    pub unlink_inode_seq: InodeSeq,
    /// `d_seq` around setting `d_inode` in `__d_instantiate`/`__d_add`.
    pub instantiate_seq: InodeSeq,
    /// See [`DDropShape`].
    pub d_drop_shape: DDropShape,
    /// See [`DMoveTarget`].
    pub d_move_target: DMoveTarget,
    /// Deliberate bugs, see [`Mutants`].
    pub mutants: Mutants,
}

impl Profile {
    /// Every named profile, oldest first.
    pub const NAMES: [&'static str; 4] = ["linux-3.0-rc7", "linux-3.0", "linux-4.8", "linux-6.1"];

    /// 3.0-rc7: the 3.0 protocol with Hugh Dickins' unvalidated inode re-read in the caller.
    pub const LINUX_3_0_RC7: Profile = Profile {
        name: "linux-3.0-rc7",
        follow_mount_reloads_inode: true,
        ..Profile::LINUX_3_0
    };

    /// 3.0 as released.
    pub const LINUX_3_0: Profile = Profile {
        name: "linux-3.0",
        version: (3, 0),
        reader_waits_even_seq: true,
        reader_inode: ReaderInode::InLookup,
        follow_mount_reloads_inode: false,
        kill_iput: KillIput::DentryIput,
        unlink_inode_seq: InodeSeq::BarrierAfter,
        instantiate_seq: InodeSeq::BarrierAfter,
        d_drop_shape: DDropShape::Single,
        d_move_target: DMoveTarget::SwapNameAndParent,
        mutants: Mutants {
            no_d_drop_barrier: false,
            clear_inode_before_unhash: false,
            reader_skips_unhashed_check: false,
        },
    };

    /// 4.8: `dentry_iput` folded into `dentry_unlink_inode`, which bumps `d_seq` only if the
    /// dentry is still hashed.
    pub const LINUX_4_8: Profile = Profile {
        name: "linux-4.8",
        version: (4, 8),
        reader_waits_even_seq: false,
        reader_inode: ReaderInode::CallerValidates,
        follow_mount_reloads_inode: false,
        kill_iput: KillIput::DentryUnlinkInode,
        unlink_inode_seq: InodeSeq::BracketIfHashed,
        instantiate_seq: InodeSeq::Bracket,
        d_drop_shape: DDropShape::Single,
        d_move_target: DMoveTarget::KeepNameSwapParent,
        mutants: Profile::LINUX_3_0.mutants,
    };

    /// 6.1 (Debian 12's kernel).
    pub const LINUX_6_1: Profile = Profile {
        name: "linux-6.1",
        version: (6, 1),
        unlink_inode_seq: InodeSeq::Bracket,
        d_drop_shape: DDropShape::SplitInlined,
        d_move_target: DMoveTarget::KeepNameAndParent,
        ..Profile::LINUX_4_8
    };

    const ALL: [Profile; 4] = [
        Profile::LINUX_3_0_RC7,
        Profile::LINUX_3_0,
        Profile::LINUX_4_8,
        Profile::LINUX_6_1,
    ];

    /// The profile called `name` (one of [`Profile::NAMES`]).
    pub fn named(name: &str) -> Result<Profile, ModelError> {
        Profile::ALL
            .iter()
            .copied()
            .find(|p| p.name == name)
            .ok_or_else(|| ModelError::UnknownProfile(name.to_owned()))
    }

    /// The default profile for a kernel release string such as `6.1.0-27-amd64` or `3.0.0`:
    /// the newest released generation not newer than the release. 3.0 release candidates
    /// (`3.0.0-rc7`, `3.0-rc7`) get `linux-3.0-rc7`; releases older than 3.0 are refused (no
    /// RCU path walk).
    pub fn for_release(release: &str) -> Result<Profile, ModelError> {
        let bad = || ModelError::BadRelease(release.to_owned());
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let minor: u32 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if (major, minor) == (3, 0) && release.contains("-rc") {
            return Ok(Profile::LINUX_3_0_RC7);
        }
        Profile::ALL
            .iter()
            .rev()
            .copied()
            .filter(|p| !p.follow_mount_reloads_inode)
            .find(|p| p.version <= (major, minor))
            .ok_or_else(|| ModelError::ReleaseTooOld(release.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_strings_pick_the_nearest_older_generation() {
        let pick = |r: &str| Profile::for_release(r).map(|p| p.name);
        assert_eq!(pick("6.1.0-27-amd64").ok(), Some("linux-6.1"));
        assert_eq!(pick("6.12.9").ok(), Some("linux-6.1"));
        assert_eq!(pick("5.10.0-30-amd64").ok(), Some("linux-4.8"));
        assert_eq!(pick("4.8.0").ok(), Some("linux-4.8"));
        assert_eq!(pick("4.7.10").ok(), Some("linux-3.0"));
        assert_eq!(pick("3.0.0").ok(), Some("linux-3.0"));
        assert_eq!(pick("3.0.0-rc7").ok(), Some("linux-3.0-rc7"));
        assert_eq!(pick("3.2.0-4-amd64").ok(), Some("linux-3.0"));
        assert!(matches!(
            Profile::for_release("2.6.39"),
            Err(ModelError::ReleaseTooOld(_))
        ));
        assert!(matches!(
            Profile::for_release("vmlinuz"),
            Err(ModelError::BadRelease(_))
        ));
    }

    #[test]
    fn names_round_trip_and_differ_where_documented() {
        for n in Profile::NAMES {
            assert_eq!(Profile::named(n).map(|p| p.name).ok(), Some(n));
        }
        assert!(Profile::named("linux-9.9").is_err());
        let rc7 = Profile::LINUX_3_0_RC7;
        let fixed = Profile::LINUX_3_0;
        assert_eq!(
            Profile {
                name: fixed.name,
                follow_mount_reloads_inode: false,
                ..rc7
            },
            fixed,
            "rc7 differs from 3.0 in the caller's re-read only"
        );
        assert_eq!(
            Profile::LINUX_4_8.unlink_inode_seq,
            InodeSeq::BracketIfHashed
        );
        assert_eq!(Profile::LINUX_6_1.unlink_inode_seq, InodeSeq::Bracket);
    }
}
