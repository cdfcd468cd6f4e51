//! Bounded concurrent runs of every operation on every profile: small enough for Miri, which
//! checks them for data races, use-after-free and leaks. Afterwards the dcache must account
//! for every dentry (the teardown asserts it in debug builds).

use std::sync::atomic::{AtomicUsize, Ordering};
use userspace_dcache::*;

const ROUNDS: usize = if cfg!(miri) { 6 } else { 300 };

fn run(profile: Profile, fs: FsKind) {
    let dc = Dcache::new(
        DcacheConfig::new(profile, fs).with_sink(std::sync::Arc::new(CountSink::default())),
    );
    dc.populate([
        ("d", InodeKind::Dir),
        ("d/a", InodeKind::File),
        ("d/b", InodeKind::File),
        ("e", InodeKind::Dir),
    ])
    .unwrap();
    let enoent_on_kept = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let t = dc.task(1);
            for _ in 0..ROUNDS {
                if t.stat("d/a") == Err(Errno::ENOENT) {
                    enoent_on_kept.fetch_add(1, Ordering::Relaxed);
                }
                let _ = t.stat("d/c");
                let _ = t.open("e/x");
                let _ = t.readdir("d");
            }
        });
        s.spawn(|| {
            let t = dc.task(2);
            for i in 0..ROUNDS {
                let _ = t.create("d/c");
                let _ = t.rename("d/c", "e/x");
                let _ = t.unlink("e/x");
                let _ = t.mkdir("e/sub");
                let _ = t.rmdir("e/sub");
                if i % 2 == 0 {
                    t.drop_caches();
                }
            }
        });
        let t = dc.task(3);
        for _ in 0..ROUNDS {
            let _ = t.stat("d/b");
            t.drop_caches();
        }
    });
    let t = dc.task(4);
    assert_eq!(t.stat("d/a").map(|_| ()), Ok(()));
    assert_eq!(t.readdir("d"), Ok(vec!["a".to_owned(), "b".to_owned()]));
    let fixed = !profile.reread_inode_after_check;
    if fixed {
        assert_eq!(
            enoent_on_kept.load(Ordering::Relaxed),
            0,
            "{}",
            profile.name
        );
    }
    t.drop_caches();
    let expect = match fs {
        // root; d, a, b, e are pinned.
        FsKind::Tmpfs => 5,
        FsKind::Disk => 1,
    };
    assert_eq!(dc.nr_dentry(), expect, "{} {fs:?}", profile.name);
}

#[test]
fn every_profile_survives_concurrent_namespace_changes_and_pruning() {
    for p in Profile::NAMES {
        for fs in [FsKind::Disk, FsKind::Tmpfs] {
            run(Profile::named(p).unwrap(), fs);
        }
    }
}
