//! What the model's syscalls return and what they leave in the dcache, per profile and file
//! system kind.

use std::sync::Arc;
use tracer_common::{flags, Event, Probe};
use userspace_dcache::*;

fn model(profile: &str, fs: FsKind) -> (Dcache, Arc<CollectSink>) {
    let sink = Arc::new(CollectSink::new());
    let cfg = DcacheConfig::new(Profile::named(profile).unwrap(), fs).with_sink(sink.clone());
    (Dcache::new(cfg), sink)
}

fn of(events: &[Event], probe: Probe) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.probe == probe as u8)
        .copied()
        .collect()
}

#[test]
fn namespace_operations_return_what_linux_returns() {
    for p in Profile::NAMES {
        for fs in [FsKind::Tmpfs, FsKind::Disk] {
            let (dc, _) = model(p, fs);
            let t = dc.task(1);
            let d = t.mkdir("d").unwrap();
            let f = t.create("d/f").unwrap();
            assert_ne!(d, f);
            assert_eq!(t.stat("d/f"), Ok(f), "{p} {fs:?}");
            assert_eq!(t.open("d/./f"), Ok(f));
            assert_eq!(t.stat("/d//f"), Ok(f));
            assert_eq!(t.create("d/f"), Err(Errno::EEXIST));
            assert_eq!(t.stat("d/g"), Err(Errno::ENOENT));
            assert_eq!(t.stat("d/f/x"), Err(Errno::ENOTDIR));
            assert_eq!(t.stat(""), Err(Errno::ENOENT));
            assert_eq!(t.stat("d/.."), Err(Errno::EINVAL));
            assert_eq!(t.stat(&"x".repeat(256)), Err(Errno::ENAMETOOLONG));
            assert_eq!(t.unlink("d"), Err(Errno::EISDIR));
            assert_eq!(t.rmdir("d/f"), Err(Errno::ENOTDIR));
            assert_eq!(t.rmdir("d"), Err(Errno::ENOTEMPTY));
            assert_eq!(t.readdir("d"), Ok(vec!["f".to_owned()]));
            assert_eq!(t.readdir("d/f"), Err(Errno::ENOTDIR));
            t.rename("d/f", "g").unwrap();
            assert_eq!(t.stat("g"), Ok(f));
            assert_eq!(t.stat("d/f"), Err(Errno::ENOENT));
            assert_eq!(t.rename("d", "d/sub"), Err(Errno::EINVAL));
            let h = t.create("h").unwrap();
            t.rename("h", "g").unwrap();
            assert_eq!(t.stat("g"), Ok(h), "rename replaces the target");
            assert_eq!(t.stat("h"), Err(Errno::ENOENT));
            assert_eq!(t.rename("g", "d"), Err(Errno::EISDIR));
            t.unlink("g").unwrap();
            assert_eq!(t.unlink("g"), Err(Errno::ENOENT));
            t.rmdir("d").unwrap();
            assert_eq!(t.readdir("/"), Ok(vec![]));
            assert_eq!(t.rmdir("/"), Err(Errno::EBUSY));
        }
    }
}

#[test]
fn tmpfs_keeps_no_negative_dentries_and_pins_positive_ones() {
    let (dc, _) = model("linux-6.1", FsKind::Tmpfs);
    let t = dc.task(1);
    t.create("f").unwrap();
    let base = dc.nr_dentry();
    assert_eq!(t.stat("missing"), Err(Errno::ENOENT));
    assert_eq!(
        dc.nr_dentry(),
        base,
        "negative dentry killed on its last dput"
    );
    t.drop_caches();
    assert_eq!(
        dc.nr_dentry(),
        base,
        "the shrinker cannot free a pinned tmpfs dentry"
    );
    t.unlink("f").unwrap();
    assert_eq!(dc.nr_dentry(), base - 1);
}

#[test]
fn disk_fs_keeps_negative_dentries_until_pruned() {
    let (dc, _) = model("linux-6.1", FsKind::Disk);
    let t = dc.task(1);
    t.create("f").unwrap();
    let base = dc.nr_dentry();
    assert_eq!(t.stat("missing"), Err(Errno::ENOENT));
    assert_eq!(dc.nr_dentry(), base + 1, "negative dentry cached");
    t.unlink("f").unwrap();
    assert_eq!(
        dc.nr_dentry(),
        base + 1,
        "unlink leaves f as a negative dentry"
    );
    assert_eq!(t.drop_caches(), 2);
    assert_eq!(dc.nr_dentry(), 1, "only the root is left");
    assert_eq!(dc.nr_unused(), 0);
}

#[test]
fn pruned_files_come_back_from_disk_as_new_dentries() {
    let (dc, sink) = model("linux-6.1", FsKind::Disk);
    let t = dc.task(1);
    t.mkdir("d").unwrap();
    let ino = t.create("d/f").unwrap();
    t.stat("d/f").unwrap();
    let before = of(&sink.take(), Probe::DLookupRcu);
    let old_id = before.last().unwrap().dentry;
    assert!(t.drop_caches() >= 1);
    assert_eq!(dc.nr_dentry(), 1, "f and then its parent d were killed");
    assert_eq!(t.stat("d/f"), Ok(ino));
    let ev = sink.take();
    // RCU-walk misses "d", the ref-walk lookup misses too, the fs instantiates it.
    let rcu = of(&ev, Probe::DLookupRcu);
    assert_eq!(rcu[0].dentry, 0);
    assert_eq!(of(&ev, Probe::DLookup)[0].dentry, 0);
    t.stat("d/f").unwrap();
    let again = of(&sink.take(), Probe::DLookupRcu);
    let f = again.last().unwrap();
    assert_eq!(f.inode_begin, ino);
    assert_ne!(f.dentry, old_id, "a new generation of d/f");
}

#[test]
fn lookup_events_carry_the_probe_fields() {
    let (dc, sink) = model("linux-6.1", FsKind::Disk);
    let t = dc.task(7);
    t.mkdir("d").unwrap();
    let ino = t.create("d/f").unwrap();
    let _ = sink.take();
    t.stat("d/f").unwrap();
    let ev = sink.take();
    let rcu = of(&ev, Probe::DLookupRcu);
    assert_eq!(rcu.len(), 2);
    let (d, f) = (rcu[0], rcu[1]);
    assert_eq!(d.name_bytes(), b"d");
    assert_eq!(f.name_bytes(), b"f");
    assert_eq!(f.parent, d.dentry);
    assert_eq!(f.inode_begin, ino);
    assert_eq!(f.inode_end, ino);
    assert_eq!(f.seq_begin, f.seq_end);
    assert_eq!(f.seq_begin % 2, 0);
    assert!(f.has(flags::VALIDATED) && f.has(flags::HASHED_BEGIN) && f.has(flags::HASHED_END));
    assert_eq!(f.tid, 7);
    assert_eq!(f.source, tracer_common::Source::Model as u8);
    assert!(f.ts_begin <= f.ts_end);
    let op = of(&ev, Probe::Op);
    assert_eq!(op.len(), 1);
    assert_eq!(op[0].aux, OpKind::Stat as u32);
    assert_eq!(op[0].result, 0);
    assert_eq!(op[0].name_bytes(), b"d/f");
    assert!(op[0].ts_begin <= d.ts_begin && f.ts_end <= op[0].ts_end);
    assert_eq!(t.stat("d/x"), Err(Errno::ENOENT));
    let op = of(&sink.take(), Probe::Op);
    assert_eq!(op[0].result, -2);
    t.rename("d/f", "d/g").unwrap();
    let op = of(&sink.take(), Probe::Op);
    assert!(op[0].has(flags::TWO_PATHS));
    assert_eq!(op[0].name_bytes(), b"d/f\0d/g");
}

/// (probe, seq moved by, inode cleared, hashed at entry, hashed at exit) of a writer event.
type Writer = (Probe, u32, bool, bool, bool);

fn writers(ev: &[Event], dentry: u64) -> Vec<Writer> {
    ev.iter()
        .filter(|e| e.dentry == dentry && e.probe().is_some_and(Probe::is_writer))
        .map(|e| {
            (
                e.probe().unwrap(),
                e.seq_end.wrapping_sub(e.seq_begin),
                e.inode_begin != 0 && e.inode_end == 0,
                e.has(flags::HASHED_BEGIN),
                e.has(flags::HASHED_END),
            )
        })
        .collect()
}

fn dentry_of(ev: &[Event], name: &[u8]) -> u64 {
    ev.iter()
        .rev()
        .find(|e| {
            e.probe().is_some_and(Probe::is_lookup) && e.name_bytes() == name && e.dentry != 0
        })
        .unwrap()
        .dentry
}

#[test]
fn prune_kill_path_writers_per_profile() {
    use Probe::*;
    // Up to 4.7: the kill path's own event (__dentry_kill) around __d_drop (+2), then
    // dentry_iput clears the inode with no seq change.
    let iput = vec![
        (DentryKill, 2, true, true, false),
        (DDrop, 2, false, true, false),
        (DentryIput, 0, true, false, false),
    ];
    // 4.8: dentry_unlink_inode of an already-unhashed dentry moves no seq.
    let hole = vec![
        (DentryKill, 2, true, true, false),
        (DDrop, 2, false, true, false),
        (DentryUnlinkInode, 0, true, false, false),
    ];
    // 4.17: the same hole, with __d_drop split as 4.18's (below).
    let split_hole = vec![
        (DentryKill, 2, true, true, false),
        (DDrop, 2, false, true, false),
        (DDropInner, 0, false, true, true),
        (DentryUnlinkInode, 0, true, false, false),
    ];
    // 4.18+: __d_drop as the source calls it: ___d_drop inside (hashed on both sides, seq
    // unchanged), then __d_drop's own pprev = NULL and invalidate (+2); then a bracketed
    // dentry_unlink_inode.
    let bracket = vec![
        (DentryKill, 4, true, true, false),
        (DDrop, 2, false, true, false),
        (DDropInner, 0, false, true, true),
        (DentryUnlinkInode, 2, true, false, false),
    ];
    // 7.2+: the same writes inside the folded dentry_kill (its lock_for_kill passes here).
    let mut folded = bracket.clone();
    folded[0].0 = DentryKillLocked;
    let expect = [
        ("linux-2.6.38", &iput),
        ("linux-2.6.39", &iput),
        ("linux-3.0", &iput),
        ("linux-3.3", &iput),
        ("linux-3.5", &iput),
        ("linux-3.12", &iput),
        ("linux-4.0", &iput),
        ("linux-4.7", &iput),
        ("linux-4.8", &hole),
        ("linux-4.12", &hole),
        ("linux-4.17", &split_hole),
        ("linux-4.18", &bracket),
        ("linux-5.3", &bracket),
        ("linux-5.7", &bracket),
        ("linux-5.15", &bracket),
        ("linux-6.1", &bracket),
        ("linux-6.8", &bracket),
        ("linux-6.15", &bracket),
        ("linux-6.19", &bracket),
        ("linux-7.2", &folded),
    ];
    assert_eq!(expect.map(|(p, _)| p), Profile::NAMES);
    for (p, want) in expect {
        let (dc, sink) = model(p, FsKind::Disk);
        let t = dc.task(1);
        t.create("f").unwrap();
        t.stat("f").unwrap();
        let id = dentry_of(&sink.take(), b"f");
        t.drop_caches();
        let ev = sink.take();
        assert_eq!(&writers(&ev, id), want, "{p}");
        if want == &bracket || want == &folded {
            let w: Vec<_> = ev.iter().filter(|e| e.dentry == id).collect();
            assert_eq!(
                w[1].seq_end,
                w[2].seq_end + 2,
                "__d_drop invalidates after ___d_drop returns"
            );
            assert_eq!(w[3].seq_begin, w[1].seq_end);
        }
    }
}

#[test]
fn unlink_writers_per_profile_and_fs() {
    use Probe::*;
    let cases: [(&str, FsKind, Vec<Writer>); 5] = [
        // d_delete with the only reference: dentry_unlink_inode, the dentry stays hashed.
        // d_delete's own event comes first (it begins first), the kill path's around its
        // writers.
        (
            "linux-3.0",
            FsKind::Disk,
            vec![
                (DDelete, 2, true, true, true),
                (DentryUnlinkInode, 2, true, true, true),
            ],
        ),
        (
            "linux-4.8",
            FsKind::Disk,
            vec![
                (DDelete, 2, true, true, true),
                (DentryUnlinkInode, 2, true, true, true),
            ],
        ),
        (
            "linux-6.1",
            FsKind::Disk,
            vec![
                (DDelete, 2, true, true, true),
                (DentryUnlinkInode, 2, true, true, true),
            ],
        ),
        // tmpfs then kills the negative dentry on the last dput.
        (
            "linux-3.0",
            FsKind::Tmpfs,
            vec![
                (DDelete, 2, true, true, true),
                (DentryUnlinkInode, 2, true, true, true),
                (DentryKill, 2, false, true, false),
                (DDrop, 2, false, true, false),
                (DentryIput, 0, false, false, false),
            ],
        ),
        (
            "linux-6.1",
            FsKind::Tmpfs,
            vec![
                (DDelete, 2, true, true, true),
                (DentryUnlinkInode, 2, true, true, true),
                (DentryKill, 2, false, true, false),
                (DDrop, 2, false, true, false),
                (DDropInner, 0, false, true, true),
            ],
        ),
    ];
    for (p, fs, want) in cases {
        let (dc, sink) = model(p, fs);
        let t = dc.task(1);
        t.create("f").unwrap();
        t.stat("f").unwrap();
        let id = dentry_of(&sink.take(), b"f");
        t.unlink("f").unwrap();
        assert_eq!(writers(&sink.take(), id), want, "{p} {fs:?}");
        assert_eq!(t.stat("f"), Err(Errno::ENOENT));
    }
}

#[test]
fn rename_unhashes_the_target_and_moves_the_source() {
    for p in Profile::NAMES {
        let (dc, sink) = model(p, FsKind::Disk);
        let t = dc.task(1);
        let a = t.create("a").unwrap();
        t.create("b").unwrap();
        t.stat("a").unwrap();
        t.stat("b").unwrap();
        let ev = sink.take();
        let (ida, idb) = (dentry_of(&ev, b"a"), dentry_of(&ev, b"b"));
        t.rename("a", "b").unwrap();
        let ev = sink.take();
        // The target b was unhashed by d_move and dies on its last dput: the kill of an
        // already-unhashed dentry. Its inode clear moves d_seq only where the profile says.
        let last = *writers(&ev, idb).last().unwrap();
        let profile = Profile::named(p).unwrap();
        let want = match (profile.kill_iput, profile.unlink_inode_seq) {
            (KillIput::DentryIput, _) => (Probe::DentryIput, 0),
            (_, InodeSeq::BracketIfHashed) => (Probe::DentryUnlinkInode, 0),
            _ => (Probe::DentryUnlinkInode, 2),
        };
        assert_eq!((last.0, last.1), want, "{p}");
        assert!(
            last.2 && !last.3 && !last.4,
            "{p}: inode cleared, unhashed throughout"
        );
        t.stat("b").unwrap();
        let ev = sink.take();
        let b = ev
            .iter()
            .find(|e| e.probe == Probe::DLookupRcu as u8 && e.name_bytes() == b"b")
            .unwrap();
        assert_eq!(b.dentry, ida, "{p}: the source dentry now answers for b");
        assert_eq!(b.inode_begin, a);
    }
}

/// A file made and stat'd, then its positive dentry killed by `drop_caches`: its dentry and the
/// events of the kill.
fn kill_of_a_positive_dentry(profile: Profile) -> (u64, Vec<Event>) {
    let sink = Arc::new(CollectSink::new());
    let dc = Dcache::new(DcacheConfig::new(profile, FsKind::Disk).with_sink(sink.clone()));
    let t = dc.task(1);
    t.create("f").unwrap();
    t.stat("f").unwrap();
    let id = dentry_of(&sink.take(), b"f");
    t.drop_caches();
    (id, sink.take())
}

#[test]
fn mutant_clear_before_unhash_shows_in_the_kill_events() {
    for mutant in [false, true] {
        let mut profile = Profile::LINUX_6_1;
        profile.mutants.kill_clear_before_unhash = mutant;
        let (id, ev) = kill_of_a_positive_dentry(profile);
        let unhash = ev
            .iter()
            .find(|e| e.dentry == id && e.probe == Probe::DDropInner as u8)
            .unwrap();
        // The kernel unhashes a positive dentry; the mutant has already cleared its inode.
        assert_eq!(unhash.inode_begin == 0, mutant);
    }
}

/// `d-drop-no-invalidate` in the model under stress: the kill's `dentry_unlink_inode` begins
/// where `___d_drop` left `d_seq` (its caller's +2 never came); without the mutant it begins 2
/// above. The bracket (+2) is there either way.
#[test]
fn mutant_d_drop_no_invalidate_leaves_the_unhash_debt_unpaid() {
    for mutant in [false, true] {
        let mut profile = Profile::LINUX_6_1;
        profile.mutants.d_drop_no_invalidate = mutant;
        let (id, ev) = kill_of_a_positive_dentry(profile);
        let of = |probe: Probe| {
            ev.iter()
                .find(|e| e.dentry == id && e.probe == probe as u8)
                .unwrap()
        };
        let (unhash, clear) = (of(Probe::DDropInner), of(Probe::DentryUnlinkInode));
        let owed = clear.seq_begin.wrapping_sub(unhash.seq_end);
        assert_eq!(owed, if mutant { 0 } else { 2 }, "mutant {mutant}");
        assert_eq!(clear.seq_end.wrapping_sub(clear.seq_begin), 2);
    }
}

/// `d_exchange()` is `__d_move(dentry, target, true)` in its generation's shape (rev5
/// finding 8): up to 4.14 each dentry's `__d_drop` runs inside the `d_seq` sections (+2 of its
/// own, +4 across `__d_move`; each is rehashed after it returns: at once before 4.8, as in
/// 3.15's source, after the names swap in 4.8's); 4.15+ unhashes with `___d_drop` (+2 across
/// `__d_move`), which leaves `pprev` to its caller.
#[test]
fn exchange_swaps_two_names_with_one_d_move_per_dentry() {
    for (profile, unhash, moved, hashed_at_unhash_exit) in [
        ("linux-3.5", (Probe::DDrop, 2), 4, false),
        ("linux-4.8", (Probe::DDrop, 2), 4, false),
        ("linux-6.1", (Probe::DDropInner, 0), 2, true),
    ] {
        let (dc, sink) = model(profile, FsKind::Tmpfs);
        let t = dc.task(1);
        t.mkdir("d").unwrap();
        t.create("a").unwrap();
        t.create("d/b").unwrap();
        let (a, b) = (t.stat("a").unwrap(), t.stat("d/b").unwrap());
        let ev = sink.take();
        let (da, db) = (dentry_of(&ev, b"a"), dentry_of(&ev, b"b"));
        t.exchange("a", "d/b").unwrap();
        let ev = sink.take();
        // Each dentry: its __d_move event, with its unhash inside at an odd count; both end
        // hashed.
        for (d, mv) in [(da, Probe::DMove), (db, Probe::DMoveTarget)] {
            assert_eq!(
                writers(&ev, d),
                [
                    (mv, moved, false, true, true),
                    (unhash.0, unhash.1, false, true, hashed_at_unhash_exit)
                ],
                "{profile}"
            );
            let drop = ev
                .iter()
                .find(|e| e.dentry == d && e.probe == unhash.0 as u8)
                .unwrap();
            assert_eq!(
                drop.seq_begin % 2,
                1,
                "{profile}: inside __d_move's sections"
            );
        }
        assert_eq!(of(&ev, Probe::Op)[0].name_bytes(), b"a\0d/b");
        assert_eq!(t.stat("a"), Ok(b), "{profile}");
        assert_eq!(t.stat("d/b"), Ok(a), "{profile}");
        assert_eq!(t.exchange("a", "missing"), Err(Errno::ENOENT));
        assert_eq!(t.exchange("d", "d/b"), Err(Errno::EINVAL));
        assert_eq!(t.readdir("d"), Ok(vec!["b".to_string()]));
    }
}

// 3.0's `switch_names()`: the target keeps its own inline name. rev5 finding 6.

/// 3.0's `__d_move()` calls `switch_names()`, which for two names both stored inline (shorter
/// than DNAME_INLINE_LEN, 32 on 64-bit) only copies the target's name into the moved dentry:
/// the target keeps its own name (and takes the moved dentry's hash and parent). With an
/// external name on either side the storage moves and the target gets the old name
/// (3.0.1's and 3.7's fs/dcache.c).
#[test]
fn linux_3_0_rename_target_keeps_its_inline_name() {
    let (dc, sink) = model("linux-3.0", FsKind::Disk);
    let t = dc.task(1);
    t.create("a").unwrap();
    t.create("b").unwrap();
    let long = "l".repeat(40);
    t.create(&long).unwrap();
    t.create("c").unwrap();
    sink.take();
    for (from, onto, target_ends_as) in [("a", "b", "b"), (long.as_str(), "c", long.as_str())] {
        t.rename(from, onto).unwrap();
        let events = sink.take();
        let target = events
            .iter()
            .find(|e| e.probe == Probe::DMoveTarget as u8)
            .map(|e| e.dentry)
            .unwrap();
        let mut seen = 0;
        for e in events
            .iter()
            .filter(|e| e.dentry == target && e.probe().is_some_and(Probe::is_writer))
        {
            let named = e.name_bytes();
            // The names it carries are read at entry: the kill path's, after the switch (not
            // the `__d_move` entry's, nor the `__d_drop` inside it, at an odd count).
            if e.probe != Probe::DMoveTarget as u8 && e.seq_begin % 2 == 0 {
                seen += 1;
                assert_eq!(
                    named,
                    &target_ends_as.as_bytes()[..named.len()],
                    "{from} onto {onto}: {:?} of the replaced target",
                    Probe::from_u8(e.probe)
                );
            }
        }
        assert!(seen >= 2, "{from} onto {onto}: the target's exit and kill");
    }
}

/// Names past the dentry's inline length (32 bytes) are kept whole: looked up, told apart
/// from one that differs only past that length, renamed to a short name and back, and
/// reported in lookup events (cut at the event's capacity, with the flag saying so).
#[test]
fn names_longer_than_the_inline_ones_are_kept_whole() {
    let (dc, sink) = model("linux-6.1", FsKind::Tmpfs);
    let t = dc.task(1);
    t.mkdir("d").unwrap();
    let long = format!("d/{}", "l".repeat(200));
    let longer = format!("{long}x");
    let f = t.create(&long).unwrap();
    assert_eq!(t.stat(&long), Ok(f));
    assert_eq!(t.stat(&longer), Err(Errno::ENOENT));
    t.rename(&long, "d/s").unwrap();
    assert_eq!(t.stat("d/s"), Ok(f));
    assert_eq!(t.stat(&long), Err(Errno::ENOENT));
    t.rename("d/s", &longer).unwrap();
    assert_eq!(t.stat(&longer), Ok(f));
    t.flush();
    let found: Vec<Event> = of(&sink.take(), Probe::DLookupRcu)
        .into_iter()
        .filter(|e| e.dentry != 0 && e.name_len == 201)
        .collect();
    assert!(!found.is_empty());
    for e in found {
        assert!(e.has(flags::NAME_TRUNCATED));
        assert!(e.name_bytes().iter().all(|&b| b == b'l'));
    }
}

// rev5 finding 3: `d_add()` runs the writers of its generation's source (`DAddShape`), so the
// model's events are the ones the kernel's probes record: 4.7+ `__d_add()` and no
// `__d_instantiate()`; up to 4.6 `d_instantiate()` (and its barrier, a NULL inode too).

/// The writer events of a stat whose last component is not cached: on a disk file system the
/// lookup reads the name from disk and hashes its dentry with `d_add()`, positive for the
/// existing "f", negative for the missing "g".
fn d_add_events(profile: &str, existing: bool) -> Vec<Event> {
    let (dc, sink) = model(profile, FsKind::Disk);
    let t = dc.task(1);
    let ino = t.create("f").unwrap();
    assert_eq!(t.drop_caches(), 1, "{profile}: f was unused and is killed");
    sink.take();
    if existing {
        assert_eq!(t.stat("f"), Ok(ino));
    } else {
        assert_eq!(t.stat("g"), Err(Errno::ENOENT));
    }
    let seen: Vec<Event> = sink
        .take()
        .into_iter()
        .filter(|e| Probe::from_u8(e.probe).is_some_and(Probe::is_writer))
        .collect();
    assert!(
        seen.iter().any(|e| e.probe == Probe::DAdd as u8),
        "{profile}: no d_add in {:?}",
        probes(&seen)
    );
    seen
}

fn probes(events: &[Event]) -> Vec<Probe> {
    events
        .iter()
        .filter_map(|e| Probe::from_u8(e.probe))
        .collect()
}

/// `d_seq`'s move from entry to exit of each event of `probe`.
fn moves(events: &[Event], probe: Probe) -> Vec<u32> {
    of(events, probe)
        .iter()
        .map(|e| e.seq_end.wrapping_sub(e.seq_begin))
        .collect()
}

/// 4.7+ `d_add()` is `__d_add()`: it brackets `__d_set_inode_and_type()` itself and never
/// calls `__d_instantiate()` (4.8, 4.18, 6.1 and 6.12 fs/dcache.c). The bracket (+2) is
/// inside `__d_add`, and a negative `d_add` moves nothing.
#[test]
fn d_add_since_4_7_is_inner_d_add_and_calls_no_inner_d_instantiate() {
    for profile in [
        "linux-4.7",
        "linux-4.8",
        "linux-4.18",
        "linux-6.1",
        "linux-6.8",
        "linux-6.19",
    ] {
        let seen = d_add_events(profile, true);
        assert!(
            !seen
                .iter()
                .any(|e| e.probe == Probe::DInstantiateInner as u8),
            "{profile}: __d_instantiate inside d_add: {:?}",
            probes(&seen)
        );
        assert_eq!(moves(&seen, Probe::DAddInner), [2], "{profile}");
        assert_eq!(moves(&seen, Probe::DAdd), [2], "{profile}");
        let negative = d_add_events(profile, false);
        let mut writers = probes(&negative);
        writers.sort();
        assert_eq!(
            writers,
            [Probe::DAdd, Probe::DAddInner],
            "{profile}: d_add(dentry, NULL)"
        );
        assert_eq!(moves(&negative, Probe::DAdd), [0], "{profile}");
    }
}

/// 3.0's `d_add()` is `d_instantiate(); d_rehash();` (include/linux/dcache.h): the exported
/// `d_instantiate()` runs, and its probe fires, inside every `d_add`, a negative one too, whose
/// `__d_instantiate()` sets `d_inode = NULL` and still takes `dentry_rcuwalk_barrier()` (+2).
#[test]
fn d_add_in_3_0_calls_d_instantiate() {
    for profile in ["linux-2.6.38", "linux-3.0", "linux-3.5"] {
        for existing in [true, false] {
            let seen = d_add_events(profile, existing);
            assert_eq!(
                moves(&seen, Probe::DInstantiate),
                [2],
                "{profile}: no d_instantiate inside d_add (existing: {existing}): {:?}",
                probes(&seen)
            );
            assert_eq!(moves(&seen, Probe::DInstantiateInner), [2], "{profile}");
            assert_eq!(moves(&seen, Probe::DAdd), [2], "{profile}");
            assert!(!seen.iter().any(|e| e.probe == Probe::DAddInner as u8));
            let inst = of(&seen, Probe::DInstantiate)[0];
            assert_eq!(inst.inode_end != 0, existing, "{profile}");
            assert!(
                !inst.has(flags::HASHED_END),
                "{profile}: d_rehash() comes after d_instantiate()"
            );
            assert!(of(&seen, Probe::DAdd)[0].has(flags::HASHED_END));
        }
    }
}

// The release table against the sources (rev5 findings 2, 5 and 7): a release gets the
// generation whose source it has.

/// rev5 finding 2. c153007b7b7a ("teach handle_mounts() to handle RCU mode", merged for 5.7)
/// replaced `lookup_fast()`'s `if (unlikely(negative)) return -ENOENT;` (the type bits,
/// `d_is_negative()`) with `if (unlikely(!*inode)) return -ENOENT;` in `handle_mounts()`.
/// 4.18's `lookup_fast()` still decides from the type bits; 5.10 (a kernel the matrix traces)
/// decides from the NULL inode, as 6.1's `step_into()` does.
#[test]
fn linux_5_7_to_6_0_decide_enoent_from_the_inode_not_the_type_bits() {
    let p418 = Profile::for_release("4.18.0").unwrap();
    assert!(
        p418.enoent_from_type_bits,
        "4.18's lookup_fast reads d_is_negative()"
    );
    let p510 = Profile::for_release("5.10.0-30-amd64").unwrap();
    assert!(
        !p510.enoent_from_type_bits,
        "5.10 ({}) decides ENOENT from the type bits in the model, from !*inode in the kernel",
        p510.name
    );
    assert_eq!(p510.caller, Caller::HandleMounts);
    let p60 = Profile::for_release("6.0.19").unwrap();
    assert_eq!(
        (p60.caller, p60.enoent_from_type_bits),
        (p510.caller, false),
        "6.0 ({}) keeps 5.7's caller",
        p60.name
    );
}

/// rev5 finding 5. A change merged in a merge window is in that release's -rc1: the rule "a
/// release candidate belongs to the generation before its release" holds for fixes that
/// landed after the last rc (3.0's re-read fix, 4c0d7cd5 in 4.18), not for merge-window
/// changes. `LINUX_2_6_39`'s own commit says the re-read came in 2.6.39-rc1.
#[test]
fn an_rc1_kernel_has_its_merge_window_changes() {
    let p = Profile::for_release("2.6.39-rc1").unwrap();
    assert!(
        p.reread_inode_after_check,
        "2.6.39-rc1 has 62a7375e5d7's re-read, the table gives {}",
        p.name
    );
    assert_eq!(
        Profile::for_release("3.0-rc7").unwrap().name,
        "linux-2.6.39"
    );
    assert_eq!(Profile::for_release("4.18-rc8").unwrap().name, "linux-4.17");
    assert_eq!(Profile::for_release("5.7-rc1").unwrap().name, "linux-5.7");
}

/// rev5 finding 7. 3.7's `__d_lookup_rcu()` samples `d_seq` with `raw_seqcount_begin()` (no wait
/// for an even count; x86-8/linux-3.7 fs/dcache.c). So do 3.5.0's and 3.6's; 3.4.4's still
/// waits with `read_seqcount_begin()`: the switch is in the linux-3.5 generation itself.
#[test]
fn linux_3_7_samples_d_seq_without_waiting() {
    let p = Profile::for_release("3.7.0").unwrap();
    assert!(
        !p.reader_waits_even_seq,
        "3.7 ({}) waits for an even d_seq in the model",
        p.name
    );
    assert!(!Profile::for_release("3.5.0").unwrap().reader_waits_even_seq);
    assert!(Profile::for_release("3.4.4").unwrap().reader_waits_even_seq);
}

/// 6.19+ tmpfs creates through `d_make_persistent()`: `__d_instantiate` (+2, bracketed) runs
/// with no `d_instantiate` around it, and the pin is taken in the same `d_lock` section. Up to
/// 6.18 `shmem_mknod()` calls `d_instantiate()` and then `dget()`; a disk file system's create
/// is `d_instantiate()` on both. Either way the pin keeps the dentry through the shrinker and
/// unlink's drop of it lets the last `dput` kill it.
#[test]
fn tmpfs_creates_through_d_make_persistent_since_6_19() {
    let create = |profile: &str, fs: FsKind| {
        let (dc, sink) = model(profile, fs);
        sink.take();
        dc.task(1).create("f").unwrap();
        let seen: Vec<Event> = sink
            .take()
            .into_iter()
            .filter(|e| Probe::from_u8(e.probe).is_some_and(Probe::is_writer))
            .filter(|e| e.inode_begin == 0 && e.inode_end != 0)
            .collect();
        (dc, seen)
    };
    for (profile, fs, want) in [
        ("linux-6.19", FsKind::Tmpfs, vec![Probe::DInstantiateInner]),
        (
            "linux-6.8",
            FsKind::Tmpfs,
            vec![Probe::DInstantiate, Probe::DInstantiateInner],
        ),
        (
            "linux-6.19",
            FsKind::Disk,
            vec![Probe::DInstantiate, Probe::DInstantiateInner],
        ),
        (
            "linux-3.0",
            FsKind::Tmpfs,
            vec![Probe::DInstantiate, Probe::DInstantiateInner],
        ),
    ] {
        let (dc, seen) = create(profile, fs);
        assert_eq!(probes(&seen), want, "{profile} {fs:?}");
        assert_eq!(
            moves(&seen, Probe::DInstantiateInner),
            [2],
            "{profile} {fs:?}"
        );
        let ev = of(&seen, Probe::DInstantiateInner)[0];
        assert!(ev.has(flags::HASHED_BEGIN) && ev.has(flags::HASHED_END));
        if fs == FsKind::Tmpfs {
            let t = dc.task(2);
            let base = dc.nr_dentry();
            assert_eq!(t.drop_caches(), 0, "{profile}: the pin keeps f");
            t.unlink("f").unwrap();
            assert_eq!(dc.nr_dentry(), base - 1, "{profile}: unlink kills f");
        }
    }
}

/// 6.19's generation: 6.18.2's sources have none of its changes, 6.19.0's and 7.1's all three.
#[test]
fn linux_6_19_opens_with_the_persistent_tmpfs_dentries() {
    let old = Profile::for_release("6.18.2").unwrap();
    let new = Profile::for_release("7.1.5").unwrap();
    assert_eq!((old.name, new.name), ("linux-6.15", "linux-6.19"));
    assert_eq!(old.tmpfs_pin, TmpfsPin::DgetAfterInstantiate);
    assert_eq!(new.tmpfs_pin, TmpfsPin::Persistent);
    assert!(!old.caller_locks_d_instantiate && new.caller_locks_d_instantiate);
    assert!(!old.unhashed_check_after_name && new.unhashed_check_after_name);
    assert_eq!(Profile::for_release("6.19-rc1").unwrap().name, "linux-6.19");
    assert_eq!(new.kill_parent_lock, KillParentLock::AfterUnlinkInode);
}
