//! The model checker: one RCU-walk lookup of a positive name against one writer path, explored
//! exhaustively with loom, per profile. Only built with `--cfg loom` (the `userspace-dcache-loom`
//! package builds this crate that way for the `tracer check` command).
//!
//! Why loom: it runs the model's own reader and writer code (the same functions the syscalls
//! use, with loom's atomics swapped in by `sync`), and it models the C11 memory model the model
//! is written in: relaxed, acquire and release accesses, and fences, with a load free to return
//! any store that coherence and happens-before allow. `smp_wmb`/`smp_rmb` are release/acquire
//! fences, seq-protected fields relaxed atomics, and the locks the kernel holds on these paths
//! are taken in each release's order: the dentry's `d_lock`, the parent's (`dentry_kill()` up
//! to 6.7, `__dentry_kill()` after the detach from 6.8), the hash bucket's bit lock, `fs->lock`.
//! A lock is an acquire, an unlock a release, and `spin_lock()` ends with a release fence so
//! that, as in the Linux kernel memory model (LKMM), an unlock followed by a lock orders the
//! two critical sections for every observer, the lock-free reader included (see `sync`).
//!
//! Reading a verdict against the kernel: a C11 counterexample here is an execution LKMM
//! allows too when the two stores it reorders are ordered by nothing LKMM knows: no
//! `smp_wmb()`/release between them, and no unlock-then-lock. An unlock alone (a release)
//! orders what precedes it before the unlock, not before what follows it. [`reasoning`] says,
//! per row, which litmus shape the verdict rests on; `userspace-dcache/litmus/` holds them as
//! LKMM litmus tests for herd7 (written, not run here).
//!
//! Limits, so a verdict is read right:
//! - Exhaustive up to a preemption bound: every interleaving with at most that many preemptions
//!   (switches away from a thread that could go on), with every choice of stored value for each
//!   load. A "holds" is a proof for those interleavings, not for all.
//! - Loom's partial-order reduction remembers one last access per object, so a writer's own
//!   load can hide a reader's earlier one and skip interleavings; `sync` gives every atomic a
//!   dependency token that keeps those races visible.
//! - Loom does not explore load buffering (a load returning a store from its own thread's
//!   future); the reader stores nothing and the writers meet under locks, so no such cycle
//!   exists here. `SeqCst` fences are modelled; `SeqCst` accesses are `AcqRel` plus "never
//!   older than the newest `SeqCst` store", which is sequential consistency here.
//! - C11's release fence is cumulative (it publishes everything that happens before it); LKMM's
//!   `smp_wmb()` orders only the CPU's own stores. The difference shows only when a writer
//!   reads another writer's store outside a lock; no checked path does.
//! - [`MemoryModel::Sc`] runs the same code with every access and fence `SeqCst`: what a machine
//!   that never reorders allows. For these programs x86-TSO allows no more: the reader only
//!   loads, and writers meet only under locks.
//! - The reader ends where RCU-walk would leave for ref-walk (a miss, a failed validation:
//!   -ECHILD); ref-walk is lock-based and not explored.
//! - Grace periods are not explored: under loom a freed dentry lives to the end of the run
//!   (`rcu`), which the reader's RCU section would guarantee anyway.
//!
//! The world of one check: a root directory and one positive, hashed file dentry "f" in a
//! one-bucket hash table, or, for [`Scenario::CwdDotDot`], a cwd "a/b" whose two directories
//! were removed while in use (unhashed, still positive). Thread 1 is the reader; threads 2 and
//! 3 are the writers of the [`Scenario`]. The backing file system is not consulted.
//!
//! Two invariants, each with its own verdict, judged from the reader's own view (what its
//! caller validated, not what a probe re-reads afterwards):
//! - lookup: the reader's caller goes on with an inode it validated against a `d_seq`
//!   (`__d_lookup_rcu` itself on 2.6.38-3.4, `lookup_fast` on 3.5-6.0, `step_into` on 6.1+,
//!   `follow_dotdot_rcu` for `..`); that inode must belong to the version the seq names: never
//!   negative where the name is positive, never positive where it is negative, and never an odd
//!   seq (a writer inside its section). "f" and `..` are positive in every version except in
//!   [`Scenario::Delete`], where "f" is negative from the version `dentry_unlink_inode` leaves
//!   (and, where the profile clears before it bumps `d_seq`, also in the one it started from).
//! - caller: what the syscall returns: no ENOENT for a name that exists throughout, and, for
//!   `..`, no walk standing on a NULL inode (the kernel dereferences it next). Not checked in
//!   [`Scenario::Delete`], where ENOENT is a right answer for a stat racing the unlink.

use crate::dentry::{DPtr, DCACHE_REFERENCED};
use crate::error::{Errno, ModelError};
use crate::event::{ClockKind, CollectSink};
use crate::fs::{FsKind, InodeKind};
use crate::model::{Dcache, DcacheConfig};
use crate::namei::FsStruct;
use crate::profile::{Caller, InodeSeq, KillIput, Profile};
use crate::sync::{AtomicPtr, SeqCount, SpinLock};
use crate::task::{Task, Validated};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tracer_common::{flags, Event, Probe};

/// Preemptions explored by default. Stale reads cost no preemption, so every C11 failure of
/// the table shows at 1; sequentially consistent ones need up to 2. The 4.18+ profiles are
/// also checked at 3 in tests/loom.rs.
pub const DEFAULT_PREEMPTION_BOUND: usize = 2;

/// The checked name, a file in the root directory.
const NAME: &str = "f";
/// Its inode number.
const F_INO: u64 = 2;
/// The inode numbers of the cwd scenario's directories "a" and "a/b".
const A_INO: u64 = 10;
const B_INO: u64 = 11;
const READER: u32 = 1;
const WRITER: u32 = 2;
const SECOND_WRITER: u32 = 3;

/// What races the lookup of "f".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// (a) "f" is unused on the LRU; the shrinker (`prune_dcache_sb`) kills it: `__dentry_kill`
    /// unhashes it (`__d_drop`), then detaches the inode (`dentry_iput` before 4.8,
    /// `dentry_unlink_inode` since). Hugh Dickins' case: no namespace change at all.
    Kill,
    /// (b) The unlinker holds the only reference and calls `d_delete`: `dentry_unlink_inode`
    /// turns "f" negative in place; it stays hashed.
    Delete,
    /// (c) Thread 2 unhashes "f" (`d_drop`, as `d_invalidate` does; the file stays); thread 3
    /// holds the last reference, and its `dput` kills "f" once it is unhashed, with no
    /// `__d_drop` of its own to bump `d_seq`. The kill comes from another thread than the
    /// unhash, so nothing orders the unhash's `d_seq` bump (or the unhash) before the clear
    /// unless the kill path invalidates `d_seq` itself.
    UnhashedKill,
    /// (d) The walk starts at an unhashed dentry (4c0d7cd5's "we can *start* with an unhashed
    /// dentry or jump into it"): the cwd is "a/b", both directories removed while in use
    /// (unhashed, positive; "b" holds the only reference to "a"). Thread 1 stats `..` from the
    /// cwd in RCU-walk; thread 2 chdirs to "/", and its `dput` of the old cwd kills "b" and
    /// then "a", both already unhashed: nothing but the kill itself can move their `d_seq`.
    CwdDotDot,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Kill,
        Scenario::Delete,
        Scenario::UnhashedKill,
        Scenario::CwdDotDot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill",
            Scenario::Delete => "delete",
            Scenario::UnhashedKill => "unhashed-kill",
            Scenario::CwdDotDot => "cwd-dotdot",
        }
    }

    pub fn named(name: &str) -> Result<Scenario, CheckError> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| CheckError::UnknownScenario(name.to_owned()))
    }

    /// Whether the looked-up name exists for the whole check (the caller invariant applies).
    pub fn positive_throughout(self) -> bool {
        self != Scenario::Delete
    }

    /// The threads of a check, by event `tid`, with what each one does.
    pub fn threads(self) -> &'static [(u32, &'static str)] {
        match self {
            Scenario::Kill => &[(READER, "stat"), (WRITER, "shrinker")],
            Scenario::Delete => &[(READER, "stat"), (WRITER, "d_delete")],
            Scenario::UnhashedKill => &[
                (READER, "stat"),
                (WRITER, "d_drop"),
                (SECOND_WRITER, "dput"),
            ],
            Scenario::CwdDotDot => &[(READER, "stat .."), (WRITER, "chdir")],
        }
    }
}

/// One deliberate bug, applied on top of a profile. The names are the live bug catalogue's
/// (DESIGN.md section 12): one name is one bug in the checker, the stress runs and the patched
/// kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutant {
    /// 2011's pattern (released 2.6.39, 3.0-rc7): `d_inode` re-read after the `d_seq` check,
    /// unvalidated, ENOENT on NULL.
    StepIntoReread,
    /// The kill path clears `d_inode` before it unhashes the dentry, outside any `d_seq`
    /// bracket.
    KillClearBeforeUnhash,
    /// `__d_drop` without its `d_seq` invalidate, and the kill path's clear unbracketed.
    DropWithoutInvalidate,
    /// `__d_drop` without its `d_seq` invalidate; the kill path's bracket kept.
    DDropNoInvalidate,
    /// `__d_lookup_rcu` without its `d_unhashed()` check.
    LookupNoUnhashedCheck,
    /// 4c0d7cd5 reverted: killing an already-unhashed dentry moves no `d_seq`.
    UnhashedKillNoBump,
    /// The caller does not re-check the child's `d_seq` after reading its inode.
    NoChildSeqRecheck,
    /// `raw_seqcount_begin()` keeps bit 0 (a writer's odd count validates).
    SeqcountBeginKeepsBit0,
    /// `read_seqcount_retry()` without its `smp_rmb()`.
    RetryWithoutRmb,
}

impl Mutant {
    pub const ALL: [Mutant; 9] = [
        Mutant::StepIntoReread,
        Mutant::KillClearBeforeUnhash,
        Mutant::DropWithoutInvalidate,
        Mutant::DDropNoInvalidate,
        Mutant::LookupNoUnhashedCheck,
        Mutant::UnhashedKillNoBump,
        Mutant::NoChildSeqRecheck,
        Mutant::SeqcountBeginKeepsBit0,
        Mutant::RetryWithoutRmb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutant::StepIntoReread => "step-into-reread",
            Mutant::KillClearBeforeUnhash => "kill-clear-before-unhash",
            Mutant::DropWithoutInvalidate => "drop-without-invalidate",
            Mutant::DDropNoInvalidate => "d-drop-no-invalidate",
            Mutant::LookupNoUnhashedCheck => "lookup-no-unhashed-check",
            Mutant::UnhashedKillNoBump => "unhashed-kill-no-bump",
            Mutant::NoChildSeqRecheck => "no-child-seq-recheck",
            Mutant::SeqcountBeginKeepsBit0 => "seqcount-begin-keeps-bit0",
            Mutant::RetryWithoutRmb => "retry-without-rmb",
        }
    }

    pub fn named(name: &str) -> Result<Mutant, CheckError> {
        Mutant::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| CheckError::UnknownMutant(name.to_owned()))
    }

    /// The profile the default table applies every mutant to: Debian 12's generation (6.1),
    /// which holds everywhere unbroken, so each failure is the mutant's.
    pub fn base_profile(self) -> Profile {
        Profile::LINUX_6_1
    }

    fn apply(self, p: Profile) -> Profile {
        let mut p = p;
        let m = &mut p.mutants;
        match self {
            Mutant::StepIntoReread => p.reread_inode_after_check = true,
            Mutant::KillClearBeforeUnhash => m.kill_clear_before_unhash = true,
            Mutant::DropWithoutInvalidate => m.drop_without_invalidate = true,
            Mutant::DDropNoInvalidate => m.d_drop_no_invalidate = true,
            Mutant::LookupNoUnhashedCheck => m.lookup_no_unhashed_check = true,
            Mutant::UnhashedKillNoBump => {
                if p.unlink_inode_seq == InodeSeq::Bracket {
                    p.unlink_inode_seq = InodeSeq::BracketIfHashed;
                }
            }
            Mutant::NoChildSeqRecheck => m.no_child_seq_recheck = true,
            Mutant::SeqcountBeginKeepsBit0 => m.seqcount_begin_keeps_bit0 = true,
            Mutant::RetryWithoutRmb => m.retry_without_rmb = true,
        }
        p
    }
}

/// Which executions a check explores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemoryModel {
    /// C11 with the orderings the model is written with.
    C11,
    /// Sequential consistency (every access and fence `SeqCst`): what x86 allows here.
    Sc,
}

impl MemoryModel {
    pub const ALL: [MemoryModel; 2] = [MemoryModel::C11, MemoryModel::Sc];

    pub fn name(self) -> &'static str {
        match self {
            MemoryModel::C11 => "c11",
            MemoryModel::Sc => "sc",
        }
    }

    pub fn named(name: &str) -> Result<MemoryModel, CheckError> {
        MemoryModel::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| CheckError::UnknownMemoryModel(name.to_owned()))
    }
}

/// What went wrong around a check (never a verdict: a failing invariant is a [`Verdict`]).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown scenario {0:?}; known: kill, delete, unhashed-kill, cwd-dotdot")]
    UnknownScenario(String),
    #[error(
        "unknown mutant {0:?}; known: step-into-reread, kill-clear-before-unhash, \
         drop-without-invalidate, d-drop-no-invalidate, lookup-no-unhashed-check, \
         unhashed-kill-no-bump, no-child-seq-recheck, seqcount-begin-keeps-bit0, \
         retry-without-rmb"
    )]
    UnknownMutant(String),
    #[error("unknown memory model {0:?}; known: c11, sc")]
    UnknownMemoryModel(String),
    #[error(transparent)]
    Profile(#[from] ModelError),
    /// loom stopped the exploration: a deadlock, too many branches, a bad `LOOM_*` variable,
    /// or a panic in the model (a bug in the model, not a verdict).
    #[error("the model checker stopped: {0}")]
    Loom(String),
}

/// One check: a profile (with at most one mutant) against a scenario under a memory model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub profile: Profile,
    pub scenario: Scenario,
    pub mutant: Option<Mutant>,
    pub model: MemoryModel,
    pub preemption_bound: usize,
}

impl Check {
    /// A check of the named profile, C11, default preemption bound.
    pub fn new(profile: &str, scenario: Scenario) -> Result<Check, CheckError> {
        Ok(Check::of(Profile::named(profile)?, scenario))
    }

    /// A check of `profile`, C11, default preemption bound.
    pub fn of(profile: Profile, scenario: Scenario) -> Check {
        Check {
            profile,
            scenario,
            mutant: None,
            model: MemoryModel::C11,
            preemption_bound: DEFAULT_PREEMPTION_BOUND,
        }
    }

    pub fn with_mutant(self, mutant: Option<Mutant>) -> Check {
        Check { mutant, ..self }
    }

    pub fn with_model(self, model: MemoryModel) -> Check {
        Check { model, ..self }
    }

    /// The protocol the threads run: the profile with the mutant applied.
    pub fn protocol(&self) -> Profile {
        match self.mutant {
            Some(m) => m.apply(self.profile),
            None => self.profile,
        }
    }
}

/// The default set (`tracer check` without arguments): every profile against every scenario,
/// then every mutant on its [`Mutant::base_profile`] against every scenario, each under both
/// memory models.
pub fn table() -> Vec<Check> {
    let plain = Profile::ALL.into_iter().map(|p| (p, None));
    let mutants = Mutant::ALL.into_iter().map(|m| (m.base_profile(), Some(m)));
    let mut v = Vec::new();
    for (profile, mutant) in plain.chain(mutants) {
        for scenario in Scenario::ALL {
            for model in MemoryModel::ALL {
                v.push(
                    Check::of(profile, scenario)
                        .with_mutant(mutant)
                        .with_model(model),
                );
            }
        }
    }
    v
}

/// An execution that breaks an invariant: its events in the tracer-common schema (model source,
/// logical timestamps: the order loom ran the steps in), and the same as readable steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Counterexample {
    pub events: Vec<Event>,
    pub steps: Vec<String>,
    /// What broke, in one sentence.
    pub violation: String,
}

/// One invariant's outcome over every explored execution.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Holds,
    /// The first execution (in loom's exploration order) that breaks it.
    Fails(Counterexample),
}

impl Verdict {
    pub fn holds(&self) -> bool {
        matches!(self, Verdict::Holds)
    }

    pub fn counterexample(&self) -> Option<&Counterexample> {
        match self {
            Verdict::Holds => None,
            Verdict::Fails(c) => Some(c),
        }
    }
}

/// The outcome of one [`Check`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub check: Check,
    /// The lookup invariant (see the module docs).
    pub lookup: Verdict,
    /// The caller invariant; `None` where ENOENT is a right answer ([`Scenario::Delete`]).
    /// For [`Scenario::CwdDotDot`] it also fails when the walk stands on a NULL inode.
    pub caller: Option<Verdict>,
    /// Executions explored (interleavings times load outcomes).
    pub interleavings: u64,
}

impl CheckResult {
    /// Both invariants hold.
    pub fn holds(&self) -> bool {
        self.lookup.holds() && self.caller.as_ref().is_none_or(Verdict::holds)
    }

    /// The counterexample to show: the lookup invariant's, else the caller's.
    pub fn counterexample(&self) -> Option<&Counterexample> {
        self.lookup
            .counterexample()
            .or_else(|| self.caller.as_ref().and_then(Verdict::counterexample))
    }
}

/// What the explored executions showed so far (lives outside loom's view, across executions).
#[derive(Default)]
struct Found {
    executions: u64,
    lookup: Option<Counterexample>,
    caller: Option<Counterexample>,
}

/// Runs one check: every execution up to the preemption bound.
pub fn run(check: &Check) -> Result<CheckResult, CheckError> {
    let found = Arc::new(Mutex::new(Found::default()));
    let mut builder = loom::model::Builder::new();
    // Only the bound may come from the caller: a permutation or time limit, or a checkpoint
    // file, from the environment would cut the exploration short and turn "holds" into a guess.
    builder.preemption_bound = Some(check.preemption_bound);
    builder.max_permutations = None;
    builder.max_duration = None;
    builder.checkpoint_file = None;
    let c = *check;
    let f = found.clone();
    let explored = std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::sync::seq_cst_scope(c.model == MemoryModel::Sc, || {
            builder.check(move || execution(&c, &f));
        })
    }));
    if let Err(panic) = explored {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        return Err(CheckError::Loom(msg));
    }
    let found = std::mem::take(&mut *found.lock().unwrap_or_else(|e| e.into_inner()));
    let verdict = |c: Option<Counterexample>| c.map_or(Verdict::Holds, Verdict::Fails);
    Ok(CheckResult {
        check: c,
        lookup: verdict(found.lookup),
        caller: c
            .scenario
            .positive_throughout()
            .then(|| verdict(found.caller)),
        interleavings: found.executions,
    })
}

/// What the scenario's threads share: the dentry "f", or the cwd's `fs_struct`.
#[derive(Clone)]
enum World {
    F(DPtr),
    Cwd(Arc<FsStruct>),
}

/// One execution: a fresh dcache, the scenario's threads, then the invariants on the reader's
/// view and its events.
fn execution(check: &Check, found: &Mutex<Found>) {
    let profile = check.protocol();
    let sink = Arc::new(CollectSink::new());
    let dc = Arc::new(Dcache::new(DcacheConfig {
        profile,
        fs: FsKind::Disk,
        // One bucket: fewer atomics for loom to track, same chain walk.
        hash_bits: 0,
        clock: ClockKind::Logical,
        sink: sink.clone(),
    }));
    let world = setup(&dc, check.scenario);
    let reader = {
        let dc = dc.clone();
        let world = world.clone();
        loom::thread::spawn(move || {
            crate::sync::mark_reader();
            let mut t = dc.task(READER);
            let r = match &world {
                World::F(_) => t.stat_rcu_walk(NAME),
                World::Cwd(fs) => t.stat_dotdot_rcu_walk(fs),
            };
            (r, t.validated.get())
        })
    };
    let mut writers = Vec::new();
    let mut spawn = |tid: u32, w: fn(&Task<'_>, &World)| {
        let dc = dc.clone();
        let world = world.clone();
        writers.push(loom::thread::spawn(move || w(&dc.task(tid), &world)));
    };
    match check.scenario {
        Scenario::Kill => spawn(WRITER, |t, _| {
            t.prune_dcache_sb(1);
        }),
        Scenario::Delete => spawn(WRITER, |t, w| {
            if let World::F(f) = w {
                t.d_delete(*f);
            }
        }),
        Scenario::UnhashedKill => {
            spawn(WRITER, |t, w| {
                if let World::F(f) = w {
                    t.d_drop(*f);
                }
            });
            spawn(SECOND_WRITER, |t, w| {
                if let World::F(f) = w {
                    t.dput(*f);
                }
            });
        }
        Scenario::CwdDotDot => spawn(WRITER, |t, w| {
            if let World::Cwd(fs) = w {
                t.set_fs_pwd(fs, t.dc.root);
            }
        }),
    }
    let (stat, view) = join(reader);
    for w in writers {
        join(w);
    }
    let events = sink.take();
    let lookup = view_violation(check, &profile, view, &events);
    let caller = check
        .scenario
        .positive_throughout()
        .then(|| caller_violation(check.scenario, &profile, stat))
        .flatten();
    let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
    found.executions += 1;
    if found.lookup.is_none() {
        found.lookup = lookup.map(|v| counterexample(&events, v));
    }
    if found.caller.is_none() {
        found.caller = caller.map(|v| counterexample(&events, v));
    }
}

/// The caller invariant on the reader's syscall result.
fn caller_violation(
    scenario: Scenario,
    profile: &Profile,
    stat: Result<u64, Errno>,
) -> Option<String> {
    match (scenario, stat) {
        (Scenario::CwdDotDot, Ok(0)) => Some(
            "stat(\"..\") from the cwd: RCU-walk stands on \"a\" with a NULL inode that passed \
             its d_seq checks (the kernel's next step dereferences it)"
                .to_owned(),
        ),
        (Scenario::CwdDotDot, Err(Errno::ENOENT)) => Some(format!(
            "stat(\"..\") returned ENOENT although the cwd pins its parent ({})",
            enoent_source(profile)
        )),
        (Scenario::CwdDotDot, _) => None,
        (_, Err(Errno::ENOENT)) => Some(format!(
            "stat(\"{NAME}\") returned ENOENT although \"{NAME}\" exists throughout ({})",
            enoent_source(profile)
        )),
        _ => None,
    }
}

/// Where the profile's RCU-walk caller takes its ENOENT from.
fn enoent_source(profile: &Profile) -> &'static str {
    if profile.reread_inode_after_check {
        return "d_inode re-read after the d_seq check, unvalidated";
    }
    match profile.caller {
        Caller::DoLookup => "do_lookup took the NULL inode __d_lookup_rcu validated",
        Caller::LookupFast if profile.enoent_from_type_bits => {
            "lookup_fast read negative type bits and its d_seq re-checks passed"
        }
        Caller::LookupFast => "lookup_fast read a NULL d_inode and its d_seq re-checks passed",
        Caller::HandleMounts => {
            "handle_mounts took the NULL d_inode lookup_fast read and its d_seq re-checks passed"
        }
        Caller::StepInto => "step_into read a NULL d_inode and its nd->next_seq re-check passed",
    }
}

fn join<T>(h: loom::thread::JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Builds the world before any thread starts. "f": positive and hashed (`d_alloc` +
/// `d_add`, as a lookup that read it from disk leaves it), with the reference the scenario
/// needs. The cwd: "a" and "a/b" positive directories that were never hashed (as `rmdir` of a
/// directory in use leaves them: `d_delete` -> `__d_drop`, inode kept), "b" the cwd (the
/// `fs_struct`'s reference) and the only holder of "a".
fn setup(dc: &Dcache, scenario: Scenario) -> World {
    let t = Task::quiet(dc);
    if scenario == Scenario::CwdDotDot {
        let a = t.d_alloc(dc.root, b"a");
        t.d_instantiate(a, Some((A_INO, InodeKind::Dir)));
        let b = t.d_alloc(a, b"b");
        t.d_instantiate(b, Some((B_INO, InodeKind::Dir)));
        t.dput(a);
        return World::Cwd(Arc::new(FsStruct {
            lock: SpinLock::new(),
            seq: SeqCount::new(),
            pwd: AtomicPtr::new(b.as_ptr()),
        }));
    }
    let f = t.d_alloc(dc.root, NAME.as_bytes());
    t.d_add(f, Some((F_INO, InodeKind::File)));
    match scenario {
        // The last reference goes: retain_dentry() keeps it, unused, on the LRU. Up to 4.11
        // that dput() also marked it referenced (DputReferenced::EveryRetain), and a shrinker
        // kills such a dentry only on its second visit: an earlier walk spends the mark, so
        // the one raced here kills "f" as from 4.12.
        Scenario::Kill => {
            t.dput(f);
            if f.flags() & DCACHE_REFERENCED != 0 {
                t.prune_dcache_sb(1);
            }
        }
        // The unlinker's reference (Delete) or the last user's (UnhashedKill) stays.
        Scenario::Delete | Scenario::UnhashedKill | Scenario::CwdDotDot => {}
    }
    World::F(f)
}

/// The lookup invariant on the reader's own view (see the module docs). The versions in which
/// "f" is negative come from the `d_delete` writer's event, read under its `d_lock`.
fn view_violation(
    check: &Check,
    profile: &Profile,
    view: Option<Validated>,
    events: &[Event],
) -> Option<String> {
    let v = view?;
    let what = match check.scenario {
        Scenario::CwdDotDot => "\"..\" (\"a\")".to_owned(),
        _ => format!("\"{NAME}\""),
    };
    let read = if v.negative {
        "negative".to_owned()
    } else {
        format!("inode {}", v.inode)
    };
    if v.seq & 1 == 1 {
        return Some(format!(
            "the reader validated {what} ({read}) against the odd d_seq {} of a writer still \
             inside its section",
            v.seq
        ));
    }
    let (negative_in, positive_in) = match check.scenario {
        Scenario::Delete => {
            let w = events.iter().find(|e| {
                e.tid == WRITER && e.probe == Probe::DentryUnlinkInode as u8 && e.dentry == v.dentry
            })?;
            match profile.unlink_inode_seq {
                // d_inode = NULL, then +2: the old version held both states.
                InodeSeq::BarrierAfter => (vec![w.seq_begin, w.seq_end], vec![w.seq_begin]),
                InodeSeq::Bracket | InodeSeq::BracketIfHashed => {
                    (vec![w.seq_end], vec![w.seq_begin])
                }
            }
        }
        _ => (Vec::new(), vec![v.seq]),
    };
    if v.negative && !negative_in.contains(&v.seq) {
        return Some(format!(
            "the reader validated {what} negative against d_seq {}, a version in which it is \
             positive",
            v.seq
        ));
    }
    if !v.negative && !positive_in.contains(&v.seq) {
        return Some(format!(
            "the reader validated {what} with inode {} against d_seq {}, a version in which it \
             is negative",
            v.inode, v.seq
        ));
    }
    None
}

fn counterexample(events: &[Event], violation: String) -> Counterexample {
    let mut steps: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let stale = stale_reads(e, events);
            if stale.is_empty() {
                format!("{:>2}. {}", i + 1, describe(e))
            } else {
                format!("{:>2}. {}; stale: {}", i + 1, describe(e), stale.join(", "))
            }
        })
        .collect();
    steps.push(format!("=> {violation}"));
    Counterexample {
        events: events.to_vec(),
        steps,
        violation,
    }
}

/// What a lookup's probe read that a writer had already overwritten. In every scenario `d_seq`
/// only grows and "f" only loses its inode and its hash, so a read older than a state known to
/// precede it is stale: C11 allows that, a sequentially consistent machine does not. Known to
/// precede every probe read: the end of each writer event that ended before the lookup began.
/// Known to precede the reads after a NULL `d_inode` (`d_seq`, then the hash): the entry of the
/// writer event that stored the NULL.
fn stale_reads(lookup: &Event, events: &[Event]) -> Vec<String> {
    if lookup.probe() != Some(Probe::DLookupRcu) || lookup.dentry == 0 {
        return Vec::new();
    }
    let writers = || {
        events
            .iter()
            .filter(|w| w.probe().is_some_and(Probe::is_writer) && w.dentry == lookup.dentry)
    };
    // (d_seq, inode, hashed, what the state is) for each state that precedes the reads.
    let mut known: Vec<(u32, Option<u64>, bool, String)> = writers()
        .filter(|w| w.ts_end < lookup.ts_begin)
        .max_by_key(|w| w.ts_end)
        .map(|w| {
            let what = format!("t{} left it before the lookup began", w.tid);
            (w.seq_end, Some(w.inode_end), w.has(flags::HASHED_END), what)
        })
        .into_iter()
        .collect();
    if lookup.inode_begin == 0 {
        // The innermost clearing writer: the kill path's own event (`__dentry_kill`) spans its
        // unhash too, so its entry state is older than the clear's.
        let clear = writers()
            .filter(|w| w.inode_begin != 0 && w.inode_end == 0)
            .max_by_key(|w| w.ts_begin);
        if let Some(w) = clear {
            let what = format!("t{} had it so before clearing d_inode", w.tid);
            known.push((w.seq_begin, None, w.has(flags::HASHED_BEGIN), what));
        }
    }
    let mut stale = Vec::new();
    for (seq, inode, hashed, what) in known {
        if lookup.seq_end < seq {
            stale.push(format!("d_seq {} ({seq}: {what})", lookup.seq_end));
        }
        if inode == Some(0) && lookup.inode_begin != 0 {
            stale.push(format!("d_inode {} (NULL: {what})", lookup.inode_begin));
        }
        if !hashed && lookup.has(flags::HASHED_BEGIN) {
            stale.push(format!("hashed (unhashed: {what})"));
        }
    }
    stale
}

/// One event as a step: thread, logical time, call and what its probe saw.
pub fn describe(e: &Event) -> String {
    let name = String::from_utf8_lossy(e.name_bytes());
    let when = format!("t{} @{}..{}", e.tid, e.ts_begin, e.ts_end);
    let hashed = |b: bool| if b { "hashed" } else { "unhashed" };
    match e.probe() {
        Some(Probe::Op) => {
            let op = tracer_common::OpKind::from_u32(e.aux).map_or("op", |k| k.name());
            let result = match e.result {
                0 => "0".to_owned(),
                r if r == -Errno::ENOENT.code() => "-ENOENT".to_owned(),
                r => r.to_string(),
            };
            format!("{when}  {op}(\"{name}\") = {result}")
        }
        Some(p) if p.is_lookup() => {
            if e.dentry == 0 {
                return format!("{when}  {}(\"{name}\") = NULL (miss)", p.symbol());
            }
            format!(
                "{when}  {}(\"{name}\") = dentry {}, *seqp {}; probe reads d_inode {}, d_seq {} \
                 ({}), {}",
                p.symbol(),
                e.dentry,
                e.seq_begin,
                e.inode_begin,
                e.seq_end,
                if e.has(flags::VALIDATED) {
                    "validated"
                } else {
                    "stale"
                },
                hashed(e.has(flags::HASHED_BEGIN)),
            )
        }
        Some(p) => format!(
            "{when}  {}(\"{name}\") dentry {}: d_seq {} -> {}, d_inode {} -> {}, {} -> {}",
            p.symbol(),
            e.dentry,
            e.seq_begin,
            e.seq_end,
            e.inode_begin,
            e.inode_end,
            hashed(e.has(flags::HASHED_BEGIN)),
            hashed(e.has(flags::HASHED_END)),
        ),
        None => format!("{when}  unknown probe {}", e.probe),
    }
}

/// Why a row of the table comes out as it does: the writer's and the reader's accesses the
/// verdict rests on, as a litmus shape (W: stores, R: loads, in program order), and what the
/// Linux kernel memory model and x86 say of it.
pub fn reasoning(r: &CheckResult) -> String {
    let c = &r.check;
    let p = c.protocol();
    let kill_bumps =
        p.kill_iput == KillIput::DentryUnlinkInode && p.unlink_inode_seq == InodeSeq::Bracket;
    let unhashed_kill_bumps = kill_bumps && !p.mutants.drop_without_invalidate;
    if let Some(m) = c.mutant {
        return mutant_reasoning(m, c.scenario, r.holds());
    }
    let text = match c.scenario {
        Scenario::Kill if kill_bumps => {
            "MP with smp_wmb/smp_rmb, forbidden: W d_seq+=2 (__d_drop); d_seq++ ; smp_wmb ; \
             d_inode=NULL (dentry_unlink_inode's bracket) || R d_inode ; smp_rmb ; R d_seq. A \
             reader that sees the NULL sees d_seq moved (-ECHILD)."
        }
        Scenario::Kill => {
            "MP without a write barrier, allowed by LKMM: W pprev=NULL ; smp_wmb ; d_seq+=2 \
             (__d_drop) ; spin_unlock(parent) ; d_inode=NULL (no bracket: dentry_iput, or 4.8's \
             dentry_unlink_inode of a now-unhashed dentry) || R pprev (hashed) ; R d_inode=NULL ; \
             smp_rmb ; R d_seq = old. The unlock is a release: it orders the bump before itself, \
             not before the clear, so Arm/POWER may show the clear first; x86-TSO keeps store \
             order (sc holds). The reader validates NULL and stat returns ENOENT."
        }
        Scenario::Delete => {
            "MP both ways, forbidden: d_delete changes d_inode under d_lock with smp_wmb between \
             the clear and the d_seq bump (3.0: clear ; smp_wmb ; +2) or a bracket (d_seq++ ; \
             smp_wmb ; clear ; smp_wmb ; d_seq++); the reader reads d_seq ; smp_rmb ; d_inode ; \
             smp_rmb ; d_seq, so the inode it validates belongs to the version it names."
        }
        Scenario::UnhashedKill if unhashed_kill_bumps => {
            "Forbidden: the kill brackets its clear (d_seq++ ; smp_wmb ; d_inode=NULL), so a \
             reader that sees the NULL fails its d_seq re-check."
        }
        Scenario::UnhashedKill => {
            "Forbidden by the locks: W2 pprev=NULL ; smp_wmb ; d_seq+=2 ; spin_unlock(d_lock) || \
             W3 spin_lock(d_lock) ; d_inode=NULL (no bump: unhashed) || R d_inode=NULL ; smp_rmb \
             ; R d_seq. The unlock->lock pair orders W2's stores before W3's for every observer \
             (LKMM po-unlock-lock-po), so the reader sees the bump: a dentry found through the \
             hash is safe, as 4c0d7cd5's message says. (Without the locks, C11 let the reader see \
             the NULL and the old d_seq: the checker's earlier artifact.)"
        }
        Scenario::CwdDotDot if unhashed_kill_bumps => {
            "Forbidden: the kill of b brackets its clear, and so does a's: W d_seq(b)++ ; smp_wmb \
             ; ... ; d_seq(a)++ ; smp_wmb ; d_inode(a)=NULL || R d_inode(a)=NULL ; smp_rmb ; \
             R d_seq(b): the walk's re-check of the cwd's d_seq fails (-ECHILD), and on 6.1+ \
             step_into re-checks a's own."
        }
        Scenario::CwdDotDot => {
            "4c0d7cd5's hole, no reordering needed: b and a are already unhashed, so killing them \
             moves no d_seq at all (dentry_iput up to 4.7, 4.8-4.17's dentry_unlink_inode of an \
             unhashed dentry). The walk from the cwd reads a's NULL inode and every d_seq check \
             passes: it stands on a NULL inode (the kernel's next permission check dereferences \
             it). Fixed in 4.18."
        }
    };
    if p.reread_inode_after_check && c.scenario != Scenario::Delete {
        let reread = "step-into-reread: the caller validated a positive inode, the kill clears \
                      it, then __follow_mount_rcu re-reads d_inode with no d_seq check and \
                      returns ENOENT: no reordering needed, the caller fails under sc too.";
        return if r.lookup.holds() {
            format!("{reread} What was validated was right (lookup holds).")
        } else {
            format!("{reread} The lookup fails on its own: {text}")
        };
    }
    text.to_owned()
}

fn mutant_reasoning(m: Mutant, scenario: Scenario, holds: bool) -> String {
    let why = match m {
        Mutant::StepIntoReread => {
            "the caller re-reads d_inode after its d_seq check and takes NULL for ENOENT: any \
             clear between the check and the re-read shows, on any machine"
        }
        Mutant::KillClearBeforeUnhash => {
            "the kill clears d_inode while the dentry is still hashed, with no d_seq change: a \
             reader that found it hashed validates the NULL, on any machine"
        }
        Mutant::DropWithoutInvalidate => {
            "neither the unhash nor the kill's clear moves d_seq: a reader that found the dentry \
             hashed validates the NULL, on any machine"
        }
        Mutant::DDropNoInvalidate => {
            "the unhash leaves d_seq alone, but every kill still brackets its clear: a reader \
             that sees the NULL sees d_seq moved; a reader that validates a positive inode \
             after the unhash keeps a snapshot that was true, so neither invariant breaks. \
             Only the writer's own d_seq values show the missing +2 (tracer diff: seq-delta)"
        }
        Mutant::LookupNoUnhashedCheck => {
            "the reader samples d_seq after the whole kill and never looks at the hash link: it \
             validates the NULL of a dead dentry, on any machine"
        }
        Mutant::UnhashedKillNoBump => {
            "4c0d7cd5 reverted: the kill of an unhashed dentry moves no d_seq (the cwd walk \
             fails on any machine) and the kill of a hashed one leaves its clear unordered after \
             __d_drop's bump (C11/LKMM only)"
        }
        Mutant::NoChildSeqRecheck => {
            "nothing validates the inode the caller read: a clear after the lookup's d_seq \
             sample shows, on any machine"
        }
        Mutant::SeqcountBeginKeepsBit0 => {
            "a reader that samples the odd d_seq of a writer inside its bracket validates \
             against it: d_delete's bracket runs on a hashed dentry the reader can find, so the \
             delete scenario shows it on any machine; the kill brackets only after the unhash"
        }
        Mutant::RetryWithoutRmb => {
            "without smp_rmb the re-check's d_seq load may be satisfied before the d_inode \
             load: R d_inode=NULL ; R d_seq = old is allowed (C11/LKMM), x86 keeps load order"
        }
    };
    let verdict = if holds {
        format!(
            "holds against {}: this scenario does not reach the bug",
            scenario.name()
        )
    } else {
        format!("fails against {}", scenario.name())
    };
    format!("{}: {why}; {verdict}.", m.name())
}
