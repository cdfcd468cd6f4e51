//! The model checker: one RCU-walk lookup of a positive name against one writer path, explored
//! exhaustively with loom, per profile. Only built with `--cfg loom` (the `userspace-dcache-loom`
//! package builds this crate that way for the `tracer check` command).
//!
//! Why loom: it runs the model's own reader and writer code (the same functions the syscalls
//! use, with loom's atomics swapped in by `sync`), and it models the C11 memory model the model
//! is written in: relaxed, acquire and release accesses, and fences, with a load free to return
//! any store that coherence and happens-before allow. That is what the seed argument needs:
//! `smp_wmb`/`smp_rmb` are release/acquire fences, seq-protected fields relaxed atomics.
//!
//! Limits, so a verdict is read right:
//! - Exhaustive up to a preemption bound: every interleaving with at most that many preemptions
//!   (switches away from a thread that could go on), with every choice of stored value for each
//!   load. A "holds" is a proof for those interleavings, not for all.
//! - Loom's partial-order reduction remembers one last access per object, so a writer's own
//!   load can hide a reader's earlier one and skip interleavings; `sync` gives every atomic a
//!   dependency token that keeps those races visible (without it, sequentially consistent runs
//!   missed the reader-skips-unhashed-check counterexample).
//! - Loom does not explore load buffering (a load returning a store from its own thread's
//!   future); the reader stores nothing and the writers meet under locks, so no such cycle
//!   exists here. Loom treats `SeqCst` accesses as `AcqRel` plus "never older than the newest
//!   `SeqCst` store", which is sequential consistency here (see `sync`); `SeqCst` fences are
//!   modelled.
//! - [`MemoryModel::Sc`] runs the same code with every access and fence `SeqCst`: what a machine
//!   that never reorders allows. For these programs x86-TSO allows no more: the reader only
//!   loads, and writers meet only under locks (whose atomic read-modify-writes are full barriers
//!   on x86).
//! - The reader ends where RCU-walk would leave for ref-walk (a miss, a failed validation:
//!   -ECHILD); ref-walk is lock-based and not explored. Its probe is attached, as on a traced
//!   kernel: the lookup invariant is judged on the probe's own reads.
//! - Grace periods are not explored: under loom a freed dentry lives to the end of the run
//!   (`rcu`), which the reader's RCU section would guarantee anyway.
//!
//! The world of one check: a root directory and one positive, hashed file dentry "f" in a
//! one-bucket hash table. Thread 1 is the reader (`Task::stat_rcu_walk`). Threads 2 and 3 are
//! the writers of the [`Scenario`]. The backing file system is not consulted (the reader never
//! leaves RCU-walk), so "f exists" is by construction: no scenario but [`Scenario::Delete`]
//! removes it.
//!
//! Two invariants, each with its own verdict:
//! - lookup (the seed's claim, and the diff's anomaly): a `__d_lookup_rcu` return that its probe
//!   sees validated (`d_inode`, `smp_rmb`, `d_seq` equal to `*seqp`), hashed (`d_hash.pprev` read
//!   after that), with a NULL inode, for a name positive in the version `*seqp` names. In
//!   [`Scenario::Kill`] and [`Scenario::UnhashedKill`] "f" is positive in every version. In
//!   [`Scenario::Delete`] it is negative from `d_delete`'s clear on: in the version
//!   `dentry_unlink_inode` leaves, and, where the profile clears before it bumps `d_seq` (3.0),
//!   also in the version it started from.
//! - caller: the reader's stat returns ENOENT while "f" is positive throughout. Not checked in
//!   [`Scenario::Delete`], where ENOENT is a right answer for a stat racing the unlink.

use crate::dentry::DPtr;
use crate::error::{Errno, ModelError};
use crate::event::CollectSink;
use crate::fs::{FsKind, InodeKind};
use crate::model::{Dcache, DcacheConfig};
use crate::profile::{InodeSeq, Mutants, Profile, ReaderInode};
use crate::task::Task;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tracer_common::{flags, Event, Probe};

/// Preemptions explored by default. Stale reads cost no preemption, so every C11 failure of
/// the table shows at 1; three sequentially consistent ones of the unhashed kill (three threads)
/// need 2. Raising it to 3 changes no verdict of linux-6.1 (its tests run at 3) and costs about
/// seven times the executions.
pub const DEFAULT_PREEMPTION_BOUND: usize = 2;

/// The checked name, a file in the root directory.
const NAME: &str = "f";
/// Its inode number.
const F_INO: u64 = 2;
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
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Kill, Scenario::Delete, Scenario::UnhashedKill];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill",
            Scenario::Delete => "delete",
            Scenario::UnhashedKill => "unhashed-kill",
        }
    }

    pub fn named(name: &str) -> Result<Scenario, CheckError> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| CheckError::UnknownScenario(name.to_owned()))
    }

    /// Whether "f" exists for the whole check (the caller invariant applies).
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
        }
    }
}

/// One deliberate bug ([`Mutants`]), applied on top of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutant {
    /// `__d_drop` invalidates `d_seq` without its `smp_wmb()`.
    NoDDropBarrier,
    /// The kill path clears `d_inode` before it unhashes the dentry.
    ClearInodeBeforeUnhash,
    /// `__d_lookup_rcu` skips its `d_unhashed()` check.
    ReaderSkipsUnhashedCheck,
}

impl Mutant {
    pub const ALL: [Mutant; 3] = [
        Mutant::NoDDropBarrier,
        Mutant::ClearInodeBeforeUnhash,
        Mutant::ReaderSkipsUnhashedCheck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutant::NoDDropBarrier => "no-d-drop-barrier",
            Mutant::ClearInodeBeforeUnhash => "clear-inode-before-unhash",
            Mutant::ReaderSkipsUnhashedCheck => "reader-skips-unhashed-check",
        }
    }

    pub fn named(name: &str) -> Result<Mutant, CheckError> {
        Mutant::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| CheckError::UnknownMutant(name.to_owned()))
    }

    fn apply(self, p: Profile) -> Profile {
        let mut m = Mutants::default();
        match self {
            Mutant::NoDDropBarrier => m.no_d_drop_barrier = true,
            Mutant::ClearInodeBeforeUnhash => m.clear_inode_before_unhash = true,
            Mutant::ReaderSkipsUnhashedCheck => m.reader_skips_unhashed_check = true,
        }
        Profile { mutants: m, ..p }
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
    #[error("unknown scenario {0:?}; known: kill, delete, unhashed-kill")]
    UnknownScenario(String),
    #[error(
        "unknown mutant {0:?}; known: no-d-drop-barrier, clear-inode-before-unhash, \
         reader-skips-unhashed-check"
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
        Ok(Check {
            profile: Profile::named(profile)?,
            scenario,
            mutant: None,
            model: MemoryModel::C11,
            preemption_bound: DEFAULT_PREEMPTION_BOUND,
        })
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
/// and every mutant on the two generations it can break: 3.0, where Linus' argument rests on
/// `__d_drop`'s barrier and the kill path's order, and 6.1, which otherwise holds everywhere.
/// Each under both memory models.
pub fn table() -> Vec<Check> {
    let mut v = Vec::new();
    let mutants = std::iter::once(None).chain(Mutant::ALL.map(Some));
    for mutant in mutants {
        for profile in Profile::NAMES {
            if mutant.is_some() && profile != "linux-3.0" && profile != "linux-6.1" {
                continue;
            }
            for scenario in Scenario::ALL {
                for model in MemoryModel::ALL {
                    if let Ok(c) = Check::new(profile, scenario) {
                        v.push(c.with_mutant(mutant).with_model(model));
                    }
                }
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

/// One execution: a fresh dcache, the scenario's threads, then the invariants on its events.
fn execution(check: &Check, found: &Mutex<Found>) {
    let profile = check.protocol();
    let sink = Arc::new(CollectSink::new());
    let dc = Arc::new(Dcache::new(DcacheConfig {
        profile,
        fs: FsKind::Disk,
        // One bucket: fewer atomics for loom to track, same chain walk.
        hash_bits: 0,
        logical_clock: true,
        sink: sink.clone(),
    }));
    let f = setup(&dc, check.scenario);
    let reader = {
        let dc = dc.clone();
        loom::thread::spawn(move || {
            crate::sync::mark_reader();
            dc.task(READER).stat_rcu_walk(NAME)
        })
    };
    let mut writers = Vec::new();
    let mut spawn = |tid: u32, w: fn(&Task<'_>, DPtr)| {
        let dc = dc.clone();
        writers.push(loom::thread::spawn(move || w(&dc.task(tid), f)));
    };
    match check.scenario {
        Scenario::Kill => spawn(WRITER, |t, _| {
            t.prune_dcache_sb(1);
        }),
        Scenario::Delete => spawn(WRITER, |t, f| t.d_delete(f)),
        Scenario::UnhashedKill => {
            spawn(WRITER, |t, f| t.d_drop(f));
            spawn(SECOND_WRITER, |t, f| t.dput(f));
        }
    }
    let stat = join(reader);
    for w in writers {
        join(w);
    }
    let events = sink.take();
    if std::env::var("DBG").is_ok() {
        eprintln!("---- {:?}", stat);
        for e in &events {
            eprintln!("{}", describe(e));
        }
    }
    let lookup = lookup_violation(check, &profile, &events);
    let caller = (check.scenario.positive_throughout() && stat == Err(Errno::ENOENT)).then(|| {
        format!(
            "stat(\"{NAME}\") returned ENOENT although \"{NAME}\" exists throughout ({})",
            enoent_source(&profile)
        )
    });
    let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
    found.executions += 1;
    if found.lookup.is_none() {
        found.lookup = lookup.map(|v| counterexample(&events, v));
    }
    if found.caller.is_none() {
        found.caller = caller.map(|v| counterexample(&events, v));
    }
}

/// Where the profile's RCU-walk caller takes its ENOENT from (its only way to one).
fn enoent_source(profile: &Profile) -> &'static str {
    if profile.follow_mount_reloads_inode {
        "__follow_mount_rcu re-read d_inode without a d_seq check"
    } else if profile.reader_inode == ReaderInode::InLookup {
        "do_lookup took the NULL inode __d_lookup_rcu validated"
    } else {
        "lookup_fast read a NULL d_inode and its d_seq re-check passed"
    }
}

fn join<T>(h: loom::thread::JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Builds the world before any thread starts: "f" positive and hashed (`d_alloc` + `d_add`, as
/// a lookup that read it from disk leaves it), with the reference the scenario needs.
fn setup(dc: &Dcache, scenario: Scenario) -> DPtr {
    let t = Task::quiet(dc);
    let f = t.d_alloc(dc.root, NAME.as_bytes());
    t.d_add(f, Some((F_INO, InodeKind::File)));
    match scenario {
        // The last reference goes: retain_dentry() keeps it, unused, on the LRU.
        Scenario::Kill => t.dput(f),
        // The unlinker's reference (Delete) or the last user's (UnhashedKill) stays.
        Scenario::Delete | Scenario::UnhashedKill => {}
    }
    f
}

/// The lookup invariant on one execution's events: the reader's `__d_lookup_rcu` event is its
/// probe's view (`*seqp`, then `d_inode`, `smp_rmb`, `d_seq`, then `d_hash.pprev`).
fn lookup_violation(check: &Check, profile: &Profile, events: &[Event]) -> Option<String> {
    let l = events
        .iter()
        .find(|e| e.tid == READER && e.probe == Probe::DLookupRcu as u8)?;
    if l.dentry == 0 || l.inode_begin != 0 || !l.has(flags::VALIDATED) {
        return None;
    }
    if !l.has(flags::HASHED_BEGIN) {
        return None;
    }
    let negative_versions = match check.scenario {
        Scenario::Kill | Scenario::UnhashedKill => Vec::new(),
        Scenario::Delete => {
            let w = events
                .iter()
                .find(|e| e.tid == WRITER && e.probe == Probe::DentryUnlinkInode as u8)?;
            match profile.unlink_inode_seq {
                InodeSeq::BarrierAfter => vec![w.seq_begin, w.seq_end],
                InodeSeq::Bracket | InodeSeq::BracketIfHashed => vec![w.seq_end],
            }
        }
    };
    if negative_versions.contains(&l.seq_begin) {
        return None;
    }
    Some(format!(
        "__d_lookup_rcu returned \"{NAME}\" validated (d_seq {} = *seqp), hashed, with a NULL \
         inode, in a version where \"{NAME}\" is positive",
        l.seq_end
    ))
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
