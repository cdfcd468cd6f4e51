//! Stress: a workload-like loop on real threads for a while, counting violations of the
//! invariants the seed mail is about.
//!
//! - `validated_null_inode`: a `__d_lookup_rcu` return that its probe sees validated (`d_seq`
//!   re-read after `d_inode` equals `*seqp`), hashed, with a NULL inode, for a name that is
//!   positive for the whole run (the same test the diff applies to kernel traces);
//! - `spurious_enoent`: a stat that returned ENOENT for a name that exists for the whole run.
//!
//! Only the `keep-N` files are checked: no thread ever removes them, so "positive throughout"
//! needs no bookkeeping. Optional [`Delay`]s at protocol [`Step`]s widen race windows.

use crate::error::Errno;
use crate::event::EventSink;
use crate::fs::{FsKind, InodeKind};
use crate::model::{Dcache, DcacheConfig};
use crate::profile::Profile;
use crate::task::{Step, StepHook};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracer_common::{flags, Event, Probe};

/// The workload's shape: which threads run beside the readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Hugh's case: readers stat existing files while one thread prunes unused dentries with
    /// the shrinker (`drop_caches`) over and over. No namespace changes at all.
    PruneStat,
    /// Readers stat the kept files and short-lived ones; one thread creates and unlinks the
    /// short-lived files (`d_delete`); one prunes.
    UnlinkStat,
    /// Readers stat the kept files and renamed ones; one thread renames files back and forth
    /// (`d_move`); one prunes.
    RenameStat,
}

/// A delay injected at a protocol step, in every thread that passes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// Busy-wait this many `spin_loop` hints.
    Spin { step: Step, spins: u32 },
    /// Give up the CPU once (lets another thread run into the window on a small machine).
    Yield { step: Step },
}

impl Delay {
    fn step(&self) -> Step {
        match *self {
            Delay::Spin { step, .. } | Delay::Yield { step } => step,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StressConfig {
    pub profile: Profile,
    pub fs: FsKind,
    pub shape: Shape,
    /// Threads that stat files (besides the pruner and, per shape, the writer).
    pub readers: usize,
    /// Kept files (`d/keep-N`), and as many short-lived ones for the writer shapes.
    pub files: usize,
    pub duration: Duration,
    pub delays: Vec<Delay>,
    /// End the run at the first violation.
    pub stop_on_first: bool,
    pub seed: u64,
}

impl StressConfig {
    /// Two readers, 64 files on a disk file system, no delays, run for `duration`.
    pub fn new(profile: Profile, shape: Shape, duration: Duration) -> StressConfig {
        StressConfig {
            profile,
            fs: FsKind::Disk,
            shape,
            readers: 2,
            files: 64,
            duration,
            delays: Vec::new(),
            stop_on_first: false,
            seed: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StressReport {
    pub profile: &'static str,
    pub shape: Shape,
    pub elapsed: Duration,
    /// Syscalls completed by all threads.
    pub ops: u64,
    /// `__d_lookup_rcu` returns seen.
    pub lookups_rcu: u64,
    pub validated_null_inode: u64,
    pub spurious_enoent: u64,
    /// Whether any delay was configured (and so ran at its step).
    pub delays_used: bool,
    /// Time from the start to the first violation.
    pub first_violation_after: Option<Duration>,
}

/// Checks lookup events as they stream in.
struct Checker {
    lookups: AtomicU64,
    validated_null: AtomicU64,
}

const KEEP: &[u8] = b"keep-";

impl EventSink for Checker {
    fn emit(&self, events: &[Event]) {
        for e in events {
            if e.probe != Probe::DLookupRcu as u8 {
                continue;
            }
            self.lookups.fetch_add(1, Ordering::Relaxed);
            let bad = e.dentry != 0
                && e.inode_begin == 0
                && e.has(flags::VALIDATED)
                && e.has(flags::HASHED_BEGIN)
                && e.name_bytes().starts_with(KEEP);
            if bad {
                self.validated_null.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// xorshift64*: a cheap per-thread generator for picking files.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

struct Run<'a> {
    cfg: &'a StressConfig,
    dc: &'a Dcache,
    checker: &'a Checker,
    hook: Option<StepHook>,
    stop: AtomicBool,
    ops: AtomicU64,
    spurious: AtomicU64,
    first: std::sync::Mutex<Option<Duration>>,
    start: Instant,
}

impl Run<'_> {
    fn task(&self, tid: u32) -> crate::task::Task<'_> {
        let t = self.dc.task(tid);
        match &self.hook {
            Some(h) => t.with_hook(h.clone()),
            None => t,
        }
    }

    fn violation(&self) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| self.start.elapsed());
        if self.cfg.stop_on_first {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.start.elapsed() < self.cfg.duration
    }

    fn reader(&self, tid: u32) {
        let t = self.task(tid);
        let mut rng = Rng(self.cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(tid) | 1);
        while self.running() {
            let i = rng.below(self.cfg.files);
            let keep = format!("d/keep-{i}");
            if t.stat(&keep) == Err(Errno::ENOENT) {
                self.spurious.fetch_add(1, Ordering::Relaxed);
                self.violation();
            }
            let mut n = 1;
            if self.cfg.shape != Shape::PruneStat {
                // Names the writer changes: any result is legitimate.
                let _ = t.stat(&format!("d/tmp-{i}"));
                n += 1;
            }
            self.ops.fetch_add(n, Ordering::Relaxed);
            if self.checker.validated_null.load(Ordering::Relaxed) > 0 {
                self.violation();
            }
        }
    }

    fn pruner(&self, tid: u32) {
        let t = self.task(tid);
        while self.running() {
            t.drop_caches();
            self.ops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn writer(&self, tid: u32) {
        let t = self.task(tid);
        let mut rng = Rng(self.cfg.seed ^ 0xdead_beef);
        while self.running() {
            let i = rng.below(self.cfg.files);
            let (a, b) = (format!("d/tmp-{i}"), format!("d/tmp-{i}.moved"));
            // Results vary with the order the loop hits names in; all are legitimate.
            let _ = match self.cfg.shape {
                Shape::UnlinkStat => t.create(&a).map(drop).or_else(|_| t.unlink(&a)),
                _ => t.rename(&a, &b).or_else(|_| t.rename(&b, &a)),
            };
            self.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs the stress loop described by `cfg` and reports what it counted.
pub fn stress(cfg: &StressConfig) -> StressReport {
    let checker = Arc::new(Checker {
        lookups: AtomicU64::new(0),
        validated_null: AtomicU64::new(0),
    });
    let dc = Dcache::new(DcacheConfig::new(cfg.profile, cfg.fs).with_sink(checker.clone()));
    let files = cfg.files.max(1);
    let mut tree: Vec<(String, InodeKind)> = vec![("d".to_owned(), InodeKind::Dir)];
    tree.extend((0..files).map(|i| (format!("d/keep-{i}"), InodeKind::File)));
    if cfg.shape == Shape::RenameStat {
        tree.extend((0..files).map(|i| (format!("d/tmp-{i}"), InodeKind::File)));
    }
    // Populating a fresh model only fails on a bug; the run then reports no ops.
    let populated = dc
        .populate(tree.iter().map(|(p, k)| (p.as_str(), *k)))
        .is_ok();
    let delays = cfg.delays.clone();
    let hook: Option<StepHook> = (!delays.is_empty()).then(|| {
        Arc::new(move |s: Step| {
            for d in delays.iter().filter(|d| d.step() == s) {
                match *d {
                    Delay::Spin { spins, .. } => (0..spins).for_each(|_| std::hint::spin_loop()),
                    Delay::Yield { .. } => std::thread::yield_now(),
                }
            }
        }) as StepHook
    });
    let run = Run {
        cfg: &StressConfig {
            files,
            ..cfg.clone()
        },
        dc: &dc,
        checker: &checker,
        hook,
        stop: AtomicBool::new(!populated),
        ops: AtomicU64::new(0),
        spurious: AtomicU64::new(0),
        first: std::sync::Mutex::new(None),
        start: Instant::now(),
    };
    std::thread::scope(|s| {
        let run = &run;
        let mut tid = 1;
        for _ in 0..cfg.readers.max(1) {
            s.spawn(move || run.reader(tid));
            tid += 1;
        }
        s.spawn(move || run.pruner(tid));
        if cfg.shape != Shape::PruneStat {
            s.spawn(move || run.writer(tid + 1));
        }
    });
    let first_violation_after = *run.first.lock().unwrap_or_else(|e| e.into_inner());
    StressReport {
        profile: cfg.profile.name,
        shape: cfg.shape,
        elapsed: run.start.elapsed(),
        ops: run.ops.load(Ordering::Relaxed),
        lookups_rcu: checker.lookups.load(Ordering::Relaxed),
        validated_null_inode: checker.validated_null.load(Ordering::Relaxed),
        spurious_enoent: run.spurious.load(Ordering::Relaxed),
        delays_used: !cfg.delays.is_empty(),
        first_violation_after,
    }
}
