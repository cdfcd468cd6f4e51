//! Model throughput and footprint: `cargo bench -p userspace-dcache`. Prints model syscalls/s
//! (one thread, two threads), events/s emitted, and heap bytes per live dentry.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use userspace_dcache::*;

/// Counts live heap bytes, to measure what a dentry costs.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const FILES: usize = 64;
const RUN: Duration = Duration::from_millis(700);

fn model(profile: Profile, sink: Arc<dyn EventSink>) -> Dcache {
    let dc = Dcache::new(DcacheConfig::new(profile, FsKind::Disk).with_sink(sink));
    let mut tree = vec![("d".to_owned(), InodeKind::Dir)];
    tree.extend((0..FILES).map(|i| (format!("d/f{i}"), InodeKind::File)));
    dc.populate(tree.iter().map(|(p, k)| (p.as_str(), *k)))
        .expect("fresh model");
    dc
}

/// Stats on `threads` threads for `RUN`; returns syscalls/s over all threads.
fn stat_rate(dc: &Dcache, threads: u32) -> f64 {
    let paths: Vec<String> = (0..FILES).map(|i| format!("d/f{i}")).collect();
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for tid in 0..threads {
            let (paths, done, stop) = (&paths, &done, &stop);
            s.spawn(move || {
                let t = dc.task(tid + 1);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for p in paths {
                        assert!(t.stat(p).is_ok());
                    }
                    n += paths.len() as u64;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(RUN);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

/// create + stat + unlink of one name, repeated, on one thread: syscalls/s.
fn churn_rate(dc: &Dcache) -> f64 {
    let t = dc.task(1);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < RUN {
        for _ in 0..100 {
            assert!(t.create("d/tmp").is_ok());
            assert!(t.stat("d/tmp").is_ok());
            assert!(t.unlink("d/tmp").is_ok());
        }
        n += 300;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn bytes_per_dentry() -> f64 {
    const N: usize = 20_000;
    let dc = Dcache::new(DcacheConfig::new(Profile::LINUX_6_1, FsKind::Disk));
    let mut tree = vec![("d".to_owned(), InodeKind::Dir)];
    tree.extend((0..N).map(|i| (format!("d/file-{i:06}"), InodeKind::File)));
    dc.populate(tree.iter().map(|(p, k)| (p.as_str(), *k)))
        .expect("fresh model");
    let paths: Vec<String> = (0..N).map(|i| format!("d/file-{i:06}")).collect();
    let t = dc.task(1);
    t.drop_caches();
    let before = LIVE.load(Ordering::Relaxed);
    let live_before = dc.nr_dentry();
    for p in &paths {
        assert!(t.stat(p).is_ok());
    }
    let added = dc.nr_dentry() - live_before;
    (LIVE.load(Ordering::Relaxed) - before) as f64 / added as f64
}

fn main() {
    // `cargo test --benches` runs this too; keep that quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    println!(
        "userspace-dcache model benchmark ({FILES} cached files on a disk fs, {RUN:?} per figure)"
    );
    for name in Profile::NAMES {
        let p = Profile::named(name).expect("known profile");
        let dc = model(p, Arc::new(NullSink));
        let one = stat_rate(&dc, 1);
        let two = stat_rate(&dc, 2);
        let churn = churn_rate(&dc);
        println!(
            "{name:>14}: stat 1 thread {:>10.0}/s  2 threads {:>10.0}/s  create+stat+unlink {:>9.0}/s",
            one, two, churn
        );
    }
    let count = Arc::new(CountSink::default());
    let dc = model(Profile::LINUX_6_1, count.clone());
    let t0 = Instant::now();
    let ops = stat_rate(&dc, 1);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "     linux-6.1: events emitted {:.0}/s (stat with a counting sink: {:.0} syscalls/s, {:.1} events each)",
        count.count() as f64 / secs,
        ops,
        count.count() as f64 / (ops * secs)
    );
    println!(
        "     linux-6.1: heap bytes per live dentry {:.0} (dentry, name, LRU entry)",
        bytes_per_dentry()
    );
}
