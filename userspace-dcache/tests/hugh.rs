//! Hugh Dickins' July 2011 race, made deterministic: a stat whose RCU lookup has just found a
//! positive dentry, while the shrinker kills that dentry (the step hook runs `drop_caches` at
//! exactly that point). Only 3.0-rc7's caller turns it into a user-visible ENOENT.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use userspace_dcache::*;

/// stat("d/f") on a fresh model, with the shrinker run to completion inside the window
/// between `__d_lookup_rcu`'s return for "f" and its caller's use of the inode.
fn stat_with_prune_in_window(profile: &str) -> (Result<u64, Errno>, Vec<tracer_common::Event>) {
    let sink = Arc::new(CollectSink::new());
    let dc = Arc::new(Dcache::new(
        DcacheConfig::new(Profile::named(profile).unwrap(), FsKind::Disk).with_sink(sink.clone()),
    ));
    dc.populate([("d", InodeKind::Dir), ("d/f", InodeKind::File)])
        .unwrap();
    let windows = Arc::new(AtomicUsize::new(0));
    let hook: StepHook = {
        let dc = dc.clone();
        let windows = windows.clone();
        Arc::new(move |s| {
            // The first window is the lookup of "d", the second the lookup of "f".
            if s == Step::LookupRcuReturned && windows.fetch_add(1, Ordering::Relaxed) == 1 {
                let pruner = dc.task(2);
                let before = dc.nr_dentry();
                pruner.drop_caches();
                // "f" dies, then "d", which only f's reference kept in use (the RCU walk
                // holds none).
                assert_eq!(dc.nr_dentry(), before - 2, "d/f was unused and is killed");
            }
        })
    };
    let ret = dc.task(1).with_hook(hook).stat("d/f");
    assert!(windows.load(Ordering::Relaxed) >= 2);
    (ret, sink.take())
}

#[test]
fn rc7_reports_enoent_for_a_pruned_positive_dentry() {
    let (r, events) = stat_with_prune_in_window("linux-3.0-rc7");
    assert_eq!(r, Err(Errno::ENOENT));
    // The lookup itself was fine: validated, hashed, positive when it returned.
    let lookup_f = events
        .iter()
        .find(|e| e.probe == tracer_common::Probe::DLookupRcu as u8 && e.name_bytes() == b"f")
        .unwrap();
    assert!(lookup_f.has(tracer_common::flags::VALIDATED));
    assert!(lookup_f.has(tracer_common::flags::HASHED_BEGIN));
    assert_ne!(lookup_f.inode_begin, 0);
    // ...and the kill that follows it: unhash, then the inode cleared without a seq bump, both
    // inside the kill path's own event (which begins first).
    let kill: Vec<u8> = events
        .iter()
        .filter(|e| {
            e.dentry == lookup_f.dentry && e.probe != tracer_common::Probe::DLookupRcu as u8
        })
        .map(|e| e.probe)
        .collect();
    assert_eq!(
        kill,
        [
            tracer_common::Probe::DentryKill as u8,
            tracer_common::Probe::DDrop as u8,
            tracer_common::Probe::DentryIput as u8
        ]
    );
}

#[test]
fn fixed_kernels_fall_back_to_ref_walk_and_find_the_file() {
    for p in ["linux-3.0", "linux-4.8", "linux-6.1"] {
        let (r, events) = stat_with_prune_in_window(p);
        assert!(r.is_ok(), "{p}: {r:?}");
        // The retry went through ref-walk: a __d_lookup miss, then the fs read it back.
        assert!(
            events
                .iter()
                .any(|e| e.probe == tracer_common::Probe::DLookup as u8),
            "{p}: no ref-walk lookup"
        );
    }
}
