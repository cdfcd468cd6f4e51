//! A kernel bug that fires on every operation must not make the diff's memory grow with it:
//! every anomaly's record (what a late event or the cut may still set aside) waits in a
//! temporary file, not in memory, and the counts stay exact. Alone in its binary: it counts
//! the process's heap.
use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::BTreeMap,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
};

use tracer_analysis::{
    diff::{diff_files, AnomalyKind, DiffOptions, Verdict},
    trace::{End, Footer, Header, Origin, Writer},
};
use tracer_common::{flags, Event, OpKind, Probe, Source};

/// The heap in use, and its peak since [`reset_peak`]: the diff's own growth, whatever the
/// process did before.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: a block this allocator gave out, with its layout.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: a block this allocator gave out, with its layout.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = IN_USE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap now, from which the next peak is measured.
fn reset_peak() -> usize {
    let now = IN_USE.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

fn op(kind: OpKind, name: &str, ts: u64, result: i32) -> Event {
    let mut ev = Event::zeroed();
    ev.probe = Probe::Op as u8;
    ev.source = Source::Workload as u8;
    ev.aux = kind as u32;
    ev.ts_begin = ts;
    ev.ts_end = ts + 100;
    ev.tid = 10;
    ev.result = result;
    ev.set_name(name.as_bytes());
    ev
}

/// Ten files made and seen, then `n` stats of them answering `result` (ENOENT: Hugh Dickins'
/// symptom every time), written as they are made: the test holds no trace in memory.
fn write(path: &Path, origin: Origin, n: u64, result: i32) {
    let mut h = Header::new(origin);
    h.kernel_release = "6.1.0-27-amd64".into();
    if origin == Origin::Model {
        h.profile = Some("linux-6.1".into());
    }
    let mut w = Writer::create(path, &h).expect("create trace");
    for i in 0..10u64 {
        let name = format!("f{i}");
        w.push(&op(OpKind::Create, &name, 100 + i * 1_000, 0))
            .expect("push");
        w.push(&op(OpKind::Stat, &name, 500 + i * 1_000, 0))
            .expect("push");
    }
    // The first stat's walk, seen (a kernel trace whose stats no lookup saw is
    // `nothing-observed`, not clean).
    let mut lookup = Event::zeroed();
    lookup.probe = Probe::DLookupRcu as u8;
    lookup.source = Source::FEntry as u8;
    (lookup.ts_begin, lookup.ts_end, lookup.tid) = (510, 520, 10);
    (lookup.parent, lookup.dentry) = (1, 2);
    (lookup.inode_begin, lookup.inode_end) = (7, 7);
    (lookup.seq_begin, lookup.seq_end, lookup.cpu_seq) = (2, 2, 1);
    lookup.flags = flags::HASHED_BEGIN | flags::HASHED_END | flags::VALIDATED;
    lookup.set_name(b"f0");
    w.push(&lookup).expect("push");
    for i in 0..n {
        let name = format!("f{}", i % 10);
        w.push(&op(OpKind::Stat, &name, 100_000 + i * 10_000, result))
            .expect("push");
    }
    // A recording's counters: the one lookup, numbered 1 on CPU 0.
    let mut footer = Footer {
        end: End::Finished,
        ..Footer::default()
    };
    if origin == Origin::Kernel {
        footer.hits = BTreeMap::from([(Probe::DLookupRcu.symbol().to_string(), 1)]);
        footer.last_cpu_seq = BTreeMap::from([(0, 1)]);
    }
    w.finish(footer).expect("finish");
}

/// Diffs `n` stats a side answering `result`: the report, and the most heap the diff held
/// above what was in use before it.
fn diff(dir: &Path, n: u64, result: i32) -> (tracer_analysis::diff::Report, usize) {
    let (kp, mp) = (dir.join("k.trace"), dir.join("m.trace"));
    write(&kp, Origin::Kernel, n, result);
    write(&mp, Origin::Model, n, result);
    let opts = DiffOptions {
        // A short window: the reorder window's own memory is not what is measured.
        window_ns: 1_000_000,
        ..DiffOptions::default()
    };
    let before = reset_peak();
    let r = diff_files(&kp, &mp, &opts).expect("diff");
    (r, PEAK.load(Ordering::Relaxed) - before)
}

#[test]
fn many_anomalies_do_not_grow_the_diffs_memory() {
    // The same 200k stats a side, answering 0 (clean) and ENOENT (200k anomalies a side):
    // the anomalies' records held in memory (about 60 bytes each, the vectors doubling) took
    // about 28 MiB more; in the record file, only the details remain (twice the limit a side
    // with their context until the end: about 1.6 MiB, whatever the number of anomalies).
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 200_000;
    let (clean, without) = diff(dir.path(), n, 0);
    assert_eq!(clean.verdict, Verdict::Clean);
    let (r, with) = diff(dir.path(), n, -2);
    assert_eq!(r.verdict, Verdict::Anomalies);
    for counts in [&r.anomaly_counts.kernel, &r.anomaly_counts.model] {
        assert_eq!(counts.get(&AnomalyKind::SpuriousEnoent), Some(&n));
    }
    assert_eq!(r.anomalies.len(), 200, "the limit's 100 a side");
    assert_eq!(
        r.diagnostics.kernel.anomalies_not_detailed + r.diagnostics.model.anomalies_not_detailed,
        2 * n - 200
    );
    let more_mib = with.saturating_sub(without) as f64 / (1 << 20) as f64;
    assert!(
        more_mib < 4.0,
        "{n} anomalies a side took {more_mib:.1} MiB more of the diff's peak heap"
    );
}
