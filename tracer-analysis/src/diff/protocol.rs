//! How far `d_seq` moves per traced writer, per kernel generation (ARCHITECTURE.md, The diff;
//! checked against fs/dcache.c of 6.1). Both sides take their generation from
//! userspace-dcache's one release -> profile table: the kernel side from the trace header's
//! release, the model side from its profile name; both are held to the same checks.
use tracer_common::{flags, Probe};

use super::event::Ev;
use userspace_dcache::{DDropShape, Profile};

/// `d_seq` around the inode clear in `dentry_unlink_inode`, as the profile has it.
pub use userspace_dcache::InodeSeq as InodeClearSeq;

/// The writer-side `d_seq` rules the diff expects of one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// What the rules were derived from, for the report ("release 6.1.0-27-amd64").
    pub source: String,
    pub inode_clear: InodeClearSeq,
    /// Whether `__d_move` calls the out-of-line `__d_drop` (up to 4.14) or `___d_drop`.
    pub d_drop_shape: DDropShape,
    /// `d_seq` around setting `d_inode` in `__d_instantiate`/`__d_add`, as the profile has it.
    pub instantiate: InodeClearSeq,
}

impl Protocol {
    /// Rules for a kernel release such as `6.1.0-27-amd64`: its generation's profile. None if
    /// it does not start with `major.minor` or predates RCU path walk.
    pub fn for_release(release: &str) -> Option<Protocol> {
        let p = Profile::for_release(release).ok()?;
        Some(Protocol {
            source: format!("release {release} ({})", p.name),
            inode_clear: p.unlink_inode_seq,
            d_drop_shape: p.d_drop_shape,
            instantiate: p.instantiate_seq,
        })
    }

    /// Rules for a model profile name (`linux-4.8`, or `linux-` and a release).
    pub fn for_profile(profile: &str) -> Option<Protocol> {
        let p = Profile::named(profile).ok()?;
        Some(Protocol {
            source: format!("profile {}", p.name),
            inode_clear: p.unlink_inode_seq,
            d_drop_shape: p.d_drop_shape,
            instantiate: p.instantiate_seq,
        })
    }

    /// The rules of current kernels, when nothing better is known.
    pub fn modern(why: &str) -> Protocol {
        Protocol {
            source: format!("6.x rules ({why})"),
            inode_clear: InodeClearSeq::Bracket,
            d_drop_shape: DDropShape::Split,
            instantiate: InodeClearSeq::Bracket,
        }
    }

    /// The `d_seq` change between a writer probe's entry and exit.
    pub fn within(&self, probe: Probe, hashed_at_entry: bool) -> u32 {
        match probe {
            // Bucket unlink only; pprev = NULL and the invalidate follow in the caller.
            Probe::DDropInner => 0,
            // Unlink, pprev = NULL, write_seqcount_invalidate(): only if it was hashed (`d_drop`
            // is the same under `d_lock`).
            Probe::DDrop | Probe::DDropLocked if hashed_at_entry => 2,
            Probe::DentryUnlinkInode => match self.inode_clear {
                InodeClearSeq::BarrierAfter | InodeClearSeq::Bracket => 2,
                InodeClearSeq::BracketIfHashed if hashed_at_entry => 2,
                InodeClearSeq::BracketIfHashed => 0,
            },
            // Pre-4.8 kill path: d_inode = NULL with no seq change of its own.
            Probe::DentryIput => 0,
            // `write_seqcount_begin/end` around the unhash, the swap and the rehash. Up to 4.14
            // the unhash is the traced `__d_drop`, whose +2 for a hashed dentry is its own
            // event's (see `calls_d_drop`).
            Probe::DMove | Probe::DMoveTarget => 2,
            // Lookups and operations move nothing; the other writers' rules are in `bounds`.
            _ => 0,
        }
    }

    /// The `d_seq` change between a writer event's entry and exit: at least the first, at most
    /// the second (None: no bound, a function that calls other writers and whose own bumps
    /// depend on the path taken; what it moves is explained by it, and the writers it calls
    /// are checked by their own events).
    pub fn bounds(&self, probe: Probe, ev: &Ev) -> (u32, Option<u32>) {
        let hashed = ev.has(flags::HASHED_BEGIN);
        match probe {
            // `raw_write_seqcount_begin/end` around `__d_set_inode_and_type`, only when given
            // an inode (d_add of a negative dentry only hashes it). Up to 4.6 `__d_instantiate`
            // sets `d_inode`, NULL too, then `dentry_rcuwalk_barrier()`, and `d_add` is
            // `d_instantiate(); d_rehash();`: +2 whatever the inode.
            Probe::DInstantiate
            | Probe::DInstantiateInner
            | Probe::DInstantiateNew
            | Probe::DAdd
            | Probe::DAddInner => {
                let barrier = self.instantiate == InodeClearSeq::BarrierAfter;
                let n = if ev.inode_end != 0 || barrier { 2 } else { 0 };
                (n, Some(n))
            }
            // Either branch of `d_delete` moves a hashed dentry's count: `dentry_unlink_inode`'s
            // bracket (3.0: the barrier after the clear; 4.8-4.17: only if hashed) or
            // `__d_drop`'s invalidate (read in 3.0, 6.1 and 6.12; 4.8's `dentry_unlink_inode`).
            Probe::DDelete => (if hashed { 2 } else { 0 }, None),
            Probe::DSpliceAlias
            | Probe::DentryKill
            | Probe::DentryKillLocked
            | Probe::DInvalidate => (0, None),
            _ => {
                let n = self.within(probe, hashed);
                (n, Some(n))
            }
        }
    }

    /// The `d_seq` change a writer's caller owes right after it returns. `___d_drop` is called
    /// from `__d_drop` (even count: pprev = NULL, then +2) or from inside `__d_move`'s
    /// `write_seqcount_begin/end` (odd count: the closing +1). Up to 4.14 `__d_move` calls
    /// `__d_drop` inside those sections instead (odd count: the same closing +1).
    pub fn owed_after(&self, probe: Probe, seq_at_entry: u32) -> u32 {
        match probe {
            Probe::DDropInner if seq_at_entry.is_multiple_of(2) => 2,
            Probe::DDropInner => 1,
            Probe::DDrop
                if self.d_drop_shape == DDropShape::Single && !seq_at_entry.is_multiple_of(2) =>
            {
                1
            }
            _ => 0,
        }
    }

    /// The writer calls the out-of-line `__d_drop` on its dentry between its own
    /// `write_seqcount_begin/end`: `__d_move` up to 4.14 (fs/dcache.c of 3.0.1 and 4.8.15, the
    /// model's `DDropShape::Single`). For a hashed dentry that `__d_drop` moves `d_seq` by 2
    /// more, which only its own nested event explains.
    pub fn calls_d_drop(&self, probe: Probe) -> bool {
        self.d_drop_shape == DDropShape::Single
            && matches!(probe, Probe::DMove | Probe::DMoveTarget)
    }

    /// A `__d_drop` (or `___d_drop`) entered at an odd count: inside `__d_move`'s sections,
    /// where this generation's `__d_move` calls it.
    pub fn unhash_inside_d_move(&self, probe: Probe, seq_at_entry: u32) -> bool {
        !seq_at_entry.is_multiple_of(2)
            && match self.d_drop_shape {
                DDropShape::Single => probe == Probe::DDrop,
                DDropShape::Split => probe == Probe::DDropInner,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_map_to_their_generation() {
        let clear = |r: &str| Protocol::for_release(r).map(|p| p.inode_clear);
        assert_eq!(clear("3.0.0-rc7"), Some(InodeClearSeq::BarrierAfter));
        assert_eq!(clear("4.7.2"), Some(InodeClearSeq::Bracket));
        assert_eq!(clear("4.14.0"), Some(InodeClearSeq::BracketIfHashed));
        assert_eq!(clear("4.17.0"), Some(InodeClearSeq::BracketIfHashed));
        assert_eq!(clear("4.18.0"), Some(InodeClearSeq::Bracket));
        assert_eq!(clear("5.10.0-30-amd64"), Some(InodeClearSeq::Bracket));
        assert_eq!(clear("6.1.0-27-amd64"), Some(InodeClearSeq::Bracket));
        assert_eq!(clear("vmlinuz"), None);
        assert_eq!(
            Protocol::for_profile("linux-4.8").map(|p| p.inode_clear),
            Some(InodeClearSeq::BracketIfHashed)
        );
        assert_eq!(
            Protocol::for_profile("linux-3.0-rc7").map(|p| p.inode_clear),
            Some(InodeClearSeq::BarrierAfter)
        );
        assert_eq!(Protocol::for_profile("6.1"), None);
    }

    #[test]
    fn writer_deltas_follow_dcache_c() {
        let p = Protocol::modern("test");
        assert_eq!(p.within(Probe::DDropInner, true), 0);
        assert_eq!(
            p.owed_after(Probe::DDropInner, 4),
            2,
            "__d_drop's invalidate"
        );
        assert_eq!(
            p.owed_after(Probe::DDropInner, 5),
            1,
            "__d_move's seqcount end"
        );
        assert_eq!(p.within(Probe::DDrop, true), 2);
        assert_eq!(p.within(Probe::DDrop, false), 0);
        assert_eq!(p.within(Probe::DentryUnlinkInode, false), 2);
        let hole = Protocol::for_profile("linux-4.8").expect("profile");
        assert_eq!(hole.within(Probe::DentryUnlinkInode, false), 0);
        assert_eq!(hole.within(Probe::DentryUnlinkInode, true), 2);
        assert_eq!(p.within(Probe::DentryIput, true), 0);
        // Up to 4.14 `__d_move` calls `__d_drop` inside its sections, which owes the closing +1.
        assert!(!p.calls_d_drop(Probe::DMove));
        assert_eq!(p.owed_after(Probe::DDrop, 3), 0);
        for single in ["3.0.1", "4.8.15"] {
            let s = Protocol::for_release(single).expect("release");
            assert!(s.calls_d_drop(Probe::DMove) && s.calls_d_drop(Probe::DMoveTarget));
            assert_eq!(s.owed_after(Probe::DDrop, 3), 1, "{single}");
            assert_eq!(s.owed_after(Probe::DDrop, 2), 0, "{single}");
            assert!(s.unhash_inside_d_move(Probe::DDrop, 3));
            assert!(!s.unhash_inside_d_move(Probe::DDropInner, 3));
        }
    }

    #[test]
    fn new_writers_bounds() {
        let p = Protocol::modern("test");
        let mut ev = Ev::zeroed();
        assert_eq!(p.bounds(Probe::DMove, &ev), (2, Some(2)));
        assert_eq!(p.bounds(Probe::DMoveTarget, &ev), (2, Some(2)));
        assert_eq!(
            p.bounds(Probe::DAdd, &ev),
            (0, Some(0)),
            "d_add(dentry, NULL)"
        );
        ev.inode_end = 0x10;
        assert_eq!(p.bounds(Probe::DAdd, &ev), (2, Some(2)));
        assert_eq!(p.bounds(Probe::DInstantiate, &ev), (2, Some(2)));
        assert_eq!(p.bounds(Probe::DentryKill, &ev), (0, None));
        ev.inode_end = 0;
        let old = Protocol::for_release("3.0.0").expect("release");
        for probe in [Probe::DAdd, Probe::DInstantiate, Probe::DInstantiateInner] {
            assert_eq!(
                old.bounds(probe, &ev),
                (2, Some(2)),
                "3.0 d_add(dentry, NULL): the barrier after d_inode = NULL"
            );
        }
        ev.inode_end = 0x10;
        assert_eq!(p.bounds(Probe::DDelete, &ev), (0, None), "unhashed");
        assert_eq!(p.bounds(Probe::DDropLocked, &ev), (0, Some(0)));
        ev.flags |= flags::HASHED_BEGIN;
        assert_eq!(p.bounds(Probe::DDropLocked, &ev), (2, Some(2)));
        assert_eq!(p.bounds(Probe::DDrop, &ev), (2, Some(2)));
        assert_eq!(p.bounds(Probe::DDelete, &ev), (2, None));
        assert_eq!(p.bounds(Probe::DentryKill, &ev), (0, None));
    }
}
