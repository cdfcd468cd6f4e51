//! `tracer diff`: a kernel trace against a model trace (ARCHITECTURE.md, The diff).
//!
//! Both traces are streamed side by side; memory grows with the live dentries and the names,
//! not with the traces' length nor with the anomalies (their records, read once the trace's
//! end says which are set aside, wait in a temporary file: `evidence.rs`). Each side is
//! analysed on its own terms (its own operation history, its own dentry ids, its own `d_seq`
//! rules) and the two are compared by stable keys:
//! paths relative to the workload's file system root, rebuilt from the parent ids and names in
//! the events, and per path the dentry's generation (a new dentry id for a name, or an id seen
//! again after its hashed life ended, is a new generation). Pointers are never compared. A
//! parent id no event names (a directory dentry re-created by a ref-walk after it was pruned,
//! or an id whose last life ended) is named from the operation its thread is running: looking
//! up N for an operation on "a/N/b" happens in "a". When that fails too, the name is keyed at
//! the root to count its dentry by, but a validated NULL-inode return or a hashed inode clear
//! keyed so is not judged (its name's history would be another name's): a reason
//! (`unnamed-directory`).
//!
//! # Classification of a NULL-inode `__d_lookup_rcu` return (dentry != 0, inode 0)
//!
//! In this order:
//! 1. not `VALIDATED` → `rejected-snapshot`: `d_seq` moved, the caller's re-check fails and
//!    it retries; nothing user-visible.
//! 2. a writer that may have changed whether the name exists (a successful create, mkdir,
//!    unlink, rmdir, a rename away from it, a rename onto it when it was not known to exist at
//!    the rename's begin), or any successful create/mkdir/unlink/rmdir/rename/exchange of a
//!    directory above it, whose interval overlaps the lookup's `[ts_begin, ts_end]` →
//!    `overlaps-writer`. An exchange of the name, and a rename onto it while it exists, leave
//!    it existing throughout (POSIX; `__d_move` swaps the dentries inside their `d_seq` write
//!    sections), so they excuse nothing on the name itself; a rename of a name onto itself
//!    changes nothing and counts as an observation. Also when the last two writers of the name
//!    before the lookup overlapped each other with opposite effects (a create preempted across
//!    a whole unlink): which one took effect last is unknown, so existence cannot be claimed —
//!    unless their results fix the order: when every writer of the name that may have taken
//!    effect since the first of them began is a successful create (`O_EXCL`), mkdir, unlink
//!    or rmdir, each needed the name in the state the other kind leaves, so from the name's
//!    state before them (known, and not from before a writer of a directory above it) they
//!    alternate and the last one's effect is the state (rules 3 and 4 then apply). A rename
//!    or exchange among them, or an unknown state before them, leaves the order unknown.
//! 3. the name does not exist at the lookup's begin → `negative`. The state at a point is the
//!    last writer that completed before it (a successful create, mkdir, rename onto or exchange
//!    proves existence, a successful unlink, rmdir or rename away absence), unless an
//!    observation (a successful stat, open or readdir, an EEXIST) began after that writer
//!    ended: an observation proves existence at some instant inside it, so it counts only when
//!    no writer can have taken effect after that instant. A writer of a directory above it that
//!    completed after the name's own last fact decides instead: a rename or exchange that put
//!    the directory there brought the name along, so the name has the state it had under the
//!    source at the rename's begin (asked the same way, back through earlier renames). A
//!    writer of the old name that changes existence and overlapped that rename may have acted
//!    before or after the move: `overlaps-writer` while it runs, its effect once it ended
//!    (either order gives the same), also over a fact of the moved name that began before it
//!    ended; one of a directory between them leaves the name unknown (`overlaps-writer`). A
//!    mkdir made the directory new and empty (`negative`). A directory above it removed, or no
//!    operation ever showing the name existing (under a renamed directory: under its source),
//!    is `negative` too. ENOENT results prove nothing (they are what is being checked).
//! 4. otherwise → `anomaly` (`null-inode-positive`): validated, the name exists for the whole
//!    interval. A kill-path writer (`___d_drop`, `dentry_unlink_inode`: pruning) overlapping
//!    the lookup does not excuse it, hashed or not at return: a kill leaves the name existing,
//!    and its `d_seq` bumps (the invalidate after the unhash, the clear) must have failed the
//!    validation. Only a writer that changes the name's existence (rule 2) excuses it.
//!
//! An ENOENT result (-2) of a stat or open goes through rules 2 and 3 (`overlaps-writer`,
//! `negative`); otherwise it is an anomaly (`spurious-enoent`, Hugh Dickins' symptom).
//!
//! Operation results are compared across the sides, the n-th operation of a kind on a name
//! with the other side's n-th, n counted in begin order on each side. A difference is
//! explained when a writer of the name overlaps the operation on either side (rule 2), or
//! when a writer of the name succeeded on one side only before it (the states are then apart
//! until a writer succeeds on both); otherwise it is an anomaly (`result-differs`), filed
//! under the side whose own history rules its result out when the other's agrees with its
//! own, else under the kernel (the model is the reference), its evidence naming both
//! operations.
//!
//! # Writer invariants
//!
//! - An inode clear (`dentry_unlink_inode`/`dentry_iput`, inode != 0 → 0) on a dentry hashed at
//!   its entry is legitimate only as `d_delete`, inside an unlink or rmdir of the name itself
//!   on the clear's thread (`d_delete` runs in the unlinking thread) (a rename calls no `d_delete`: `__d_move` unhashes the target, which dies unhashed, and
//!   moves the source and what is below a renamed directory along); anywhere else the kill
//!   path cleared before it unhashed: anomaly `clear-before-unhash`. The kill's own probes
//!   show that order with no probe on the clear: an unhash inside a `__dentry_kill` that
//!   entered with an inode (under `d_lock` from its entry, where only the kill itself can
//!   clear it) finding the hashed dentry's `d_inode` NULL, or a writer inside a kill (any
//!   generation's) finding an inode that an unhash before it in the same kill found NULL on
//!   the hashed dentry (cleared before the unhash, then put back): `clear-before-unhash`
//!   too, once per kill. An unhash inside a kill does not end the dentry's life before a
//!   writer that follows it in that kill.
//! - `d_seq` deltas per writer and kernel generation ([`Protocol`]): a writer that moves it less
//!   than required (`d_delete` of a hashed dentry: 2 at least, whichever branch it takes), or
//!   a missing +2 after `___d_drop` (owed by its inlined caller, found short at the next
//!   writer's entry; inside a traced kill, the owing thread's next writer is held to the bump's
//!   own base): anomaly `seq-delta`.
//! - An RCU lookup that returned a dentry, validated and unhashed at return, with `*seqp` at
//!   or above the value the dentry's last traced unhash invalidated `d_seq` to (and no writer
//!   found it hashed again since): `__d_lookup_rcu` reads `d_seq` before `d_unhashed()` and
//!   `__d_drop` clears `pprev` before its invalidate, so it skipped its unhashed check:
//!   anomaly `found-unhashed`. One that read `d_seq` before the invalidate is the legitimate
//!   window.
//! - `d_seq` going backwards within a dentry's life: a lookup's read or a writer's entry below
//!   what a lookup or a writer's exit saw before it, in an order the stamps prove (the same
//!   CPU, or further apart than two CPUs' clocks disagree): anomaly `seq-decreased`. Only the
//!   kill path's exit may read less than its entry (the dentry it freed, reused).
//! - A `d_seq` value no traced writer accounts for is a coverage gap (an untraced writer:
//!   `d_instantiate` on create, `__d_move` on rename, an inlined call site), attributed from the
//!   operations on the name, reported, never an anomaly. A gap a lookup found is held until
//!   the dentry's next writer: if that writer entered below the value the lookup read, the
//!   lookup saw its doing before its stamp (a thread stalled between stamp and reads). Such
//!   writers explain what they moved, one after the other; what the lookup read above where
//!   they left the count stays a gap.
//! - `__d_move` (rename) is not traced: its `___d_drop`s come at an odd count (a gap of +1 at
//!   entry, the closing +1 owed). The negative target it unhashes dies untraced, so an id seen
//!   again after that is a new dentry; so is one seen after a kill (`__dentry_kill`, or
//!   `dentry_kill` that left its dentry unhashed and negative: it gives up on one that gained
//!   a user), and one seen under another name with no traced `__d_move` since.
//!
//! # Verdict
//!
//! `anomalies` (exit 1) as soon as one anomaly is found, complete traces or not: what was seen
//! is real, as long as what the trace lacks could not have changed its judgment. An anomaly
//! judged before a late event its rule reads arrived, at or before its end (an existence
//! writer on its name or a directory above it; for the `d_seq` kinds and `clear-before-unhash`
//! a writer probe there or on its dentry, for a NULL inode one on a directory above it (which
//! names it); for `result-differs` any operation on its name; for the `d_seq` kinds a lookup
//! of its dentry: an observation, a `drop_caches` or a kill of the dentry excuses no ENOENT or
//! NULL inode), and, in a trace cut
//! short or whose recording failed (an interrupted one stops between operations and drains
//! its events: nothing is lost), an anomaly reaching where a missing event may begin is set
//! aside. A lost probe event would arrive after every event read, so at most a reorder window
//! behind the newest; a lost operation is keyed by its begin, but each workload thread runs
//! its operations one after another and the file holds them in its order, so a thread's lost
//! ones began after the end of its last one in the file (none, when it ran as many as the
//! header's workload plans for it): the bound is the earliest of these
//! over the workload's threads that make or remove names (once the trace shows them all; for
//! `result-differs` over every thread, as a lost stat numbers a name's stats differently), the
//! whole trace when such a thread has no operation in the file or the header does not say
//! which threads ran, and only the window when the recording failed after the workload
//! returned (the footer lists its threads: every operation is in the file). A
//! `result-differs` is also set aside past where the other side's lost operations may begin.
//! When the kernel skipped entry programs of a probe (the footer's `skipped_entries`), one of
//! its events may join a call's entry half to the next call's exit half: an anomaly on such a
//! probe's event, and one whose rule read such an event before its judgment (on its dentry for
//! the `d_seq` kinds and `clear-before-unhash`; on its name or a directory above for
//! `null-inode-positive` and `clear-before-unhash`), is set aside (`anomaly-on-skipped-probe`;
//! see `evidence::Skipped`). When calls of a probe whose event ends a dentry's life were
//! lost (skipped entries, drops, or hits beyond the events and drops of the kill path,
//! `dentry_unlink_inode`, `dentry_iput`, `__d_drop`, `___d_drop`; or `cpu_seq` holes beyond
//! what the drops account for, whose probe is unknown), a death may be unseen and the next
//! dentry at the address, under the same name, runs on in the old one's record: every
//! anomaly whose rule reads a dentry's record or a binding's name (the `d_seq` kinds,
//! `null-inode-positive`, `clear-before-unhash`) is set aside (`anomaly-across-lost-death`; see
//! `evidence::Skipped::lost_deaths`). An anomaly judged from a
//! late event by a rule that holds it against its dentry's state as processed (the `d_seq`
//! kinds, whose bookkeeping assumes time order, and `clear-before-unhash`, which reads the
//! dentry's writers so far) compared it with events stamped after it: set aside too
//! (`anomaly-from-late-event`; see `evidence::judged_in_order`).
//! Set aside means: not counted
//! (neither in the anomalies nor in its result class: `set_aside` there), a reason naming it
//! (`anomaly-before-late-event`, `anomaly-from-late-event`, `anomaly-near-cut`,
//! `anomaly-on-skipped-probe`, `anomaly-across-lost-death`). Otherwise `clean` (exit 0) only when
//! nothing keeps the traces from showing there is none; each thing that does is a reason, and any reason makes it `inconclusive` (exit 2):
//! a trace cut short, corrupted or not finished, events lost (footer drops, skipped entries
//! the drops do not count, per probe the
//! footer's hits against the events in the file, a kernel probe with events the footer has no
//! hits for, holes in a CPU's `cpu_seq` numbers),
//! `d_seq` moves no traced writer explains, operations without a counterpart, events the
//! classification could not judge (late, unknown, read faults), a header whose workload does
//! not parse (the names its setup made are then unknown), `__d_lookup_rcu` not attached, a
//! writer of `d_seq`, `d_hash` or `d_inode` whose calls the kernel trace could not see (refused
//! by the kernel, or without a body and no traced function holding it: `writer-not-observed`,
//! [`crate::writers`]), kprobe programs on a kernel that skips them uncounted (before 6.7 with
//! kernel preemption: `kprobe-skips-uncounted`), a kernel trace that saw nothing (no operation at all, or stats and opens that the attached
//! `__d_lookup_rcu` never saw: `nothing-observed`), a
//! kernel trace's probe events that no kernel probe wrote, names cut to the event's 64 bytes
//! (two may share a key), a footer whose last `cpu_seq` of a CPU is below the file's numbers
//! or missing (a kernel trace's footer with no last numbers at all included), events without their entry half (`NO_ENTRY`), a kernel release that is not a
//! version (the newest rules assumed). See [`verdict`].
//!
//! # Input problems
//!
//! A trace that cannot be opened (missing, not a trace, another format or schema), a model
//! trace given as the kernel's or a kernel trace as the model's, one file given twice, or a
//! model whose header names another workload, seed or workload text than the kernel trace's
//! (not its replay: its operations would be compared with others) is an error. A trace cut
//! short or corrupted mid-way is diffed up to the damage.
mod align;
mod classify;
mod digest;
mod event;
mod evidence;
mod feed;
mod history;
mod invariants;
mod protocol;
mod reorder;
mod report;
mod runs;
mod sequence;
mod side;
mod timeline;
mod verdict;
mod vocabulary;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

pub use align::OpDivergence;
pub use digest::{AnomalyStamp, DigestError, GapCounts, ReportDigest, TimeRanges};
pub use invariants::CLOCK_SKEW_NS;
pub use protocol::{InodeClearSeq, Protocol};
pub use report::{
    Anomaly, ContextLine, Coverage, Diagnostics, Divergence, GapExample, Report, TraceInfo,
};
pub use vocabulary::{
    AnomalyKind, Classes, CpuSequence, EventCounts, LostEvents, PerSide, Reason, ReasonKind, Side,
    Verdict, SCHEMA,
};

use tracer_common::{OpKind, Probe};

use crate::{
    agreement,
    output::OutputError,
    trace::{Attachment, End, Footer, Header, Origin, Reader, TraceError},
    workload::Workload,
    writers,
};
use align::{PathId, Paths};
use evidence::{SetAside, Skipped};
use side::{kind_bit, Ending, Limits, Shared, SideState, ThreadPlan};

/// How to diff.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// Events shown before and after each anomaly.
    pub context: usize,
    /// Reorder window: how far (ns) an event may arrive behind the newest begin time seen.
    pub window_ns: u64,
    /// Anomalies detailed (with evidence and context); all are counted.
    pub max_anomalies: usize,
    /// Coverage-gap and divergence examples kept per kind.
    pub max_examples: usize,
    /// Write the Chrome/Perfetto timeline here.
    pub timeline: Option<PathBuf>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            context: 5,
            // Operations reach a kernel trace at their end; under QEMU TCG on a loaded host a
            // syscall was seen to take 300 ms: a tenth of a second let them arrive too late.
            window_ns: 1_000_000_000,
            max_anomalies: 100,
            max_examples: 20,
            timeline: None,
        }
    }
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot read the {role} trace")]
    Open {
        role: &'static str,
        #[source]
        source: TraceError,
    },
    #[error("{}: the {role} trace must be {expected}, this one is a {} trace (from `tracer {}`); give the kernel trace first, the model trace second", path.display(), found.name(), match found { Origin::Kernel => "record", Origin::Model => "replay", Origin::Check => "check" })]
    WrongOrigin {
        role: &'static str,
        path: PathBuf,
        expected: &'static str,
        found: Origin,
    },
    #[error("{} and {}: the same file given twice; diff a kernel trace against a model trace", kernel.display(), model.display())]
    SameFile { kernel: PathBuf, model: PathBuf },
    #[error("{}: not a model of {}: {what}; diff the kernel trace against the model replayed from it (`tracer replay --against {}`)", model.display(), kernel.display(), kernel.display())]
    OtherWorkload {
        kernel: PathBuf,
        model: PathBuf,
        what: String,
    },
    #[error("cannot start a thread to read a trace")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot keep the anomalies' records in a temporary file in {}; set TMPDIR to a writable directory with free space", dir.display())]
    Records {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the timeline")]
    Timeline {
        #[source]
        source: OutputError,
    },
}

/// Results held for a twin not known to agree (`OpMatcher::record`) before matching gives
/// up: it bounds the matcher's memory.
const MATCH_BACKLOG: usize = 1 << 20;

struct Input {
    header: Header,
    path: PathBuf,
    done: bool,
    problem: Option<String>,
    /// Once the whole trace is read.
    footer: Option<Footer>,
}

fn open(role: &'static str, path: &Path) -> Result<(Input, Reader), DiffError> {
    let reader = Reader::open(path).map_err(|source| DiffError::Open { role, source })?;
    let input = Input {
        header: reader.header.clone(),
        path: path.to_path_buf(),
        done: false,
        problem: None,
        footer: None,
    };
    Ok((input, reader))
}

fn kernel_rules(h: &Header) -> Protocol {
    Protocol::for_release(&h.kernel_release)
        .unwrap_or_else(|| Protocol::modern("the header's release is not a version"))
}

fn model_rules(h: &Header) -> Protocol {
    h.profile
        .as_deref()
        .and_then(Protocol::for_profile)
        .or_else(|| Protocol::for_release(&h.kernel_release))
        .unwrap_or_else(|| Protocol::modern("no profile or release in the header"))
}

/// The same file, by device and inode (a path written two ways, a hard link).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// What the header's workload tells the diff.
#[derive(Default)]
struct HeaderWorkload {
    /// Its setup steps, interned: the names they create.
    setup: Vec<(PathId, OpKind)>,
    /// Its threads (None: the header has no workload).
    threads: Option<Vec<ThreadPlan>>,
}

/// The workload in the header. Err: why its text does not parse (its setup and threads are
/// then unknown).
fn workload_of(h: &Header, paths: &mut Paths) -> Result<HeaderWorkload, String> {
    let Some(toml) = h.workload_toml.as_deref() else {
        return Ok(HeaderWorkload::default());
    };
    let mut w = Workload::from_toml(toml, "the trace header").map_err(|e| e.to_string())?;
    // The text is stored unscaled; a scale it refuses leaves the threads' lengths unknown.
    let scaled = h.scale.is_none_or(|f| w.scale(f).is_ok());
    Ok(HeaderWorkload {
        setup: w
            .setup_ops()
            .into_iter()
            .map(|op| (paths.parse(op.path.as_bytes()), op.kind))
            .collect(),
        threads: Some(
            w.threads
                .iter()
                .map(|t| ThreadPlan {
                    kinds: t.ops.iter().map(|o| kind_bit(o.kind)).fold(0, |a, b| a | b),
                    ops: t
                        .iterations
                        .filter(|_| scaled)
                        .map(|n| n.saturating_mul(t.ops.len() as u64)),
                })
                .collect(),
        ),
    })
}

/// Why `__d_lookup_rcu` was not attached, as the header says.
fn lookup_unattached(h: &Header) -> Option<&str> {
    match h.attach.get(Probe::DLookupRcu.symbol()) {
        Some(a) => a.why_not(),
        None => None,
    }
}

/// What the model ran differs from what the kernel ran: its workload name, seed or text.
fn other_workload(k: &Header, m: &Header) -> Option<String> {
    fn differ<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        matches!((a, b), (Some(a), Some(b)) if a != b)
    }
    let name = |h: &Header| h.workload.clone().unwrap_or_else(|| "a workload".into());
    let seed = |h: &Header| h.seed.map_or(String::new(), |s| format!(" seed {s}"));
    if differ(&k.workload, &m.workload) || differ(&k.seed, &m.seed) {
        Some(format!(
            "the model ran {}{}, the kernel {}{}",
            name(m),
            seed(m),
            name(k),
            seed(k)
        ))
    } else if differ(&k.workload_toml, &m.workload_toml) {
        Some(format!(
            "the model ran another text of {} than the kernel",
            name(k)
        ))
    } else {
        None
    }
}

/// Whether side `i`, now at `mine` operations processed, is the one `diff_files`' loop
/// chooses to step, the other side being at `other` or at its end (`other_done`): the one
/// that has processed fewer operations, the kernel's (0) on a tie. Asked after each trace
/// event of the side stepped, as the loop would ask it again (a function of the loop's own
/// choice cost about 8 instructions a trace event more, callgrind).
#[inline(always)]
fn chosen_again(i: usize, mine: u64, other: u64, other_done: bool) -> bool {
    other_done || if i == 0 { mine <= other } else { mine < other }
}

/// Diffs `kernel` against `model`.
pub fn diff_files(kernel: &Path, model: &Path, opts: &DiffOptions) -> Result<Report, DiffError> {
    if same_file(kernel, model) {
        return Err(DiffError::SameFile {
            kernel: kernel.to_path_buf(),
            model: model.to_path_buf(),
        });
    }
    let (ki, kr) = open("kernel", kernel)?;
    let (mi, mr) = open("model", model)?;
    let mut inputs = [ki, mi];
    if inputs[0].header.origin != Origin::Kernel {
        return Err(DiffError::WrongOrigin {
            role: "kernel",
            path: kernel.to_path_buf(),
            expected: "a kernel trace (from `tracer record`)",
            found: inputs[0].header.origin,
        });
    }
    if !inputs[1].header.origin.is_model() {
        return Err(DiffError::WrongOrigin {
            role: "model",
            path: model.to_path_buf(),
            expected: "a model trace (from `tracer replay` or `tracer check`)",
            found: inputs[1].header.origin,
        });
    }
    if let Some(what) = other_workload(&inputs[0].header, &inputs[1].header) {
        return Err(DiffError::OtherWorkload {
            kernel: kernel.to_path_buf(),
            model: model.to_path_buf(),
            what,
        });
    }
    let timeline = match &opts.timeline {
        Some(p) => {
            Some(timeline::Timeline::create(p).map_err(|source| DiffError::Timeline { source })?)
        }
        None => None,
    };
    let lim = Limits {
        context: opts.context,
        window_ns: opts.window_ns,
        max_anomalies: opts.max_anomalies,
        max_examples: opts.max_examples,
    };
    let mut sh = Shared {
        paths: Paths::default(),
        matcher: align::OpMatcher::new(MATCH_BACKLOG, opts.max_examples),
        timeline,
        agreement: agreement::Builder::new(opts.max_examples),
    };
    let rules = [
        kernel_rules(&inputs[0].header),
        model_rules(&inputs[1].header),
    ];
    if let Some(t) = sh.timeline.as_mut() {
        t.process_name(1, &format!("kernel {}", inputs[0].header.kernel_release));
        let m = &inputs[1].header;
        t.process_name(
            2,
            &format!(
                "model {}",
                m.profile.as_deref().unwrap_or(&m.kernel_release)
            ),
        );
    }
    let workloads = [
        workload_of(&inputs[0].header, &mut sh.paths),
        workload_of(&inputs[1].header, &mut sh.paths),
    ];
    let workload_unreadable = workloads.each_ref().map(|w| w.as_ref().err().cloned());
    let [wk, wm] = workloads.map(Result::unwrap_or_default);
    let plans = [wk.threads, wm.threads];
    let mut sides = [
        SideState::new(Side::Kernel, rules[0].clone(), lim, wk.setup),
        SideState::new(Side::Model, rules[1].clone(), lim, wm.setup),
    ];
    let counts = std::thread::scope(|scope| {
        let mut fronts = Vec::with_capacity(2);
        let mut feeds = Vec::with_capacity(2);
        for (role, reader) in [("kernel", kr), ("model", mr)] {
            let (tx, feed) = feed::channel();
            let front = std::thread::Builder::new()
                .name(format!("diff {role} reader"))
                .spawn_scoped(scope, move || feed::run(reader, lim.window_ns, tx))
                .map_err(|source| DiffError::Thread { source })?;
            fronts.push(front);
            feeds.push(feed);
        }
        loop {
            // Advance the side that has processed fewer operations, so the operation
            // matcher's backlog stays small when both traces run the same workload.
            let i = match (inputs[0].done, inputs[1].done) {
                (true, true) => break,
                (false, true) => 0,
                (true, false) => 1,
                (false, false) => usize::from(sides[1].ops_processed < sides[0].ops_processed),
            };
            // The side is stepped for as long as the choice above would choose it again: only
            // its own count moves meanwhile.
            let other_done = inputs[1 - i].done;
            let other = sides[1 - i].ops_processed;
            let mut cx = (&mut sides[i], &mut sh);
            let step = feeds[i].steps(
                &mut cx,
                |(side, sh), ev, tables| side.process(ev, tables, sh),
                |(side, _)| chosen_again(i, side.ops_processed, other, other_done),
            );
            if let feed::Step::End(problem) = step {
                inputs[i].problem = problem;
                inputs[i].done = true;
                sides[i].finish(&mut sh);
            }
        }
        let mut counts = Vec::with_capacity(2);
        for (front, input) in fronts.into_iter().zip(inputs.iter_mut()) {
            // A front that panicked is a bug: carry its panic on.
            let (reader, c) = front
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            input.footer = reader.footer().cloned();
            counts.push(c);
        }
        Ok(counts)
    })?;
    // A side may complete a pair after the other's end, for the other to file.
    for side in &mut sides {
        side.file_differences(&mut sh);
    }
    for (side, c) in sides.iter_mut().zip(counts) {
        side.absorb(c);
    }
    let bounds = [0, 1].map(|i| sides[i].cut_bounds(ending(&inputs[i]), plans[i].as_deref()));
    let skipped = [0, 1].map(|i| skipped_entries(&inputs[i]));
    let footer_seqs = inputs[0]
        .footer
        .as_ref()
        .map(|f| f.last_cpu_seq.clone())
        .unwrap_or_default();
    // Before the anomalies are settled: a hole the drops do not account for is a lost call.
    let cpu_sequence = sides[0].counts.seqs.finish(&footer_seqs);
    let losses = [0, 1].map(|i| {
        verdict::losses(
            inputs[i].footer.as_ref(),
            &skipped[i],
            &sides[i].event_counts(),
            (i == 0).then_some(&cpu_sequence),
        )
    });
    let doubts = [0, 1].map(|i| {
        Skipped::of_symbols(skipped[i].keys().map(String::as_str))
            .lost_deaths(losses[i].iter().map(|l| l.symbol))
    });
    // A result difference pairs operations of both sides: the other side's cut can number
    // them differently too.
    let settled = sides
        .iter_mut()
        .enumerate()
        .map(|(i, side)| {
            side.settle(
                bounds[i],
                bounds[1 - i].map(|b| b.results),
                doubts[i],
                &sh.paths,
                sh.timeline.as_mut(),
            )
        })
        .collect::<Result<Vec<SetAside>, _>>()
        .map_err(|source| DiffError::Records {
            dir: std::env::temp_dir(),
            source,
        })?;
    let mut reasons = Vec::new();
    if let Some(t) = sh.timeline.take() {
        if let Err(e) = t.finish() {
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}"));
            reasons.push(Reason {
                side: None,
                kind: ReasonKind::Output,
                message: format!(
                    "the timeline was not written: {e}{}",
                    cause.unwrap_or_default()
                ),
            });
        }
    }
    let [mut k, mut m] = sides;
    let [ki, mi] = &inputs;
    let (uk, um) = sh.matcher.unmatched();
    let release_unknown = Protocol::for_release(&ki.header.kernel_release)
        .is_none()
        .then(|| {
            format!(
                "the kernel release {:?} in its header is not a version",
                ki.header.kernel_release
            )
        });
    let unobserved_writers = writers::unobserved(&ki.header.attach, &ki.header.kernel_release);
    for ((((side, input, state), unreadable), set_aside), i) in
        [(Side::Kernel, ki, &k), (Side::Model, mi, &m)]
            .into_iter()
            .zip(&workload_unreadable)
            .zip(&settled)
            .zip([0, 1])
    {
        reasons.extend(verdict::reasons(
            side,
            &verdict::Facts {
                problem: input.problem.as_deref(),
                origin: input.header.origin,
                footer: input.footer.as_ref(),
                events: &state.event_counts(),
                diag: &state.diag,
                unsequenced: state.counts.seqs.unsequenced,
                coverage: &state.coverage(),
                unmatched: if side == Side::Kernel { uk } else { um },
                cpu_sequence: if side == Side::Kernel {
                    Some(&cpu_sequence)
                } else {
                    None
                },
                workload_unreadable: unreadable.as_deref(),
                lookup_unattached: lookup_unattached(&input.header),
                unobserved_writers: if side == Side::Kernel {
                    &unobserved_writers
                } else {
                    &[]
                },
                skip_counting: input.header.skip_counting.filter(|_| side == Side::Kernel),
                not_from_probes: state.counts.not_from_probes,
                names_cut: state.counts.names_cut,
                no_entry: state.counts.no_entry,
                release_unknown: release_unknown.as_deref().filter(|_| side == Side::Kernel),
                set_aside,
                skipped_entries: &skipped[i],
                losses: &losses[i],
                cut_bound: bounds[i].as_ref(),
                other_cut: bounds[1 - i].as_ref().map(|b| &b.results),
                unnamed_unjudged: state.unnamed_unjudged,
            },
        ));
    }
    if sh.matcher.abandoned {
        reasons.push(Reason {
            side: None,
            kind: ReasonKind::MatchingAbandoned,
            message: "the traces hold too different operations to compare their results".into(),
        });
    }
    let mut anomalies = std::mem::take(&mut k.evidence.anomalies);
    anomalies.append(&mut m.evidence.anomalies);
    let mut report = Report {
        schema: SCHEMA,
        kernel: info(ki, &rules[0], &k),
        model: info(mi, &rules[1], &m),
        profile: mi.header.profile.clone(),
        events: PerSide {
            kernel: k.event_counts(),
            model: m.event_counts(),
        },
        lost_events: PerSide {
            kernel: lost(ki),
            model: lost(mi),
        },
        null_inode_returns: PerSide {
            kernel: k.null_classes(),
            model: m.null_classes(),
        },
        enoent_results: PerSide {
            kernel: k.enoent_classes(),
            model: m.enoent_classes(),
        },
        anomaly_counts: PerSide {
            kernel: std::mem::take(&mut k.evidence.counts),
            model: std::mem::take(&mut m.evidence.counts),
        },
        anomalies,
        coverage_gaps: PerSide {
            kernel: coverage(&k, &ki.header),
            model: coverage(&m, &mi.header),
        },
        divergence: Divergence {
            operations_compared: sh.matcher.compared,
            results_differ: sh.matcher.differ,
            explained_by_race: sh.matcher.explained_by_race,
            unmatched: PerSide {
                kernel: uk,
                model: um,
            },
            abandoned: sh.matcher.abandoned,
            examples: std::mem::take(&mut sh.matcher.examples),
        },
        diagnostics: PerSide {
            kernel: k.diag.clone(),
            model: m.diag.clone(),
        },
        cpu_sequence,
        agreement: sh.agreement.finish(&sh.paths),
        verdict: Verdict::Clean,
        reasons,
        exit_status: 0,
    };
    report.decide();
    Ok(report)
}

/// What the file of `input` may lack at its end.
fn ending(input: &Input) -> Ending {
    match &input.footer {
        _ if input.problem.is_some() => Ending::Cut,
        None => Ending::Cut,
        // An interrupted recording is not cut: its threads stop between operations and the
        // ring is drained before the footer is written, so nothing in flight is lost.
        Some(f) if matches!(f.end, End::Finished | End::Interrupted) => Ending::Whole,
        // The recorder lists the threads only when the workload returned, and then writes
        // every operation it ran.
        Some(f) if !f.threads.is_empty() => Ending::ProbesLost,
        Some(_) => Ending::Cut,
    }
}

/// Per probe, the calls whose entry program the kernel skipped, from the footer (or, from an
/// older recorder or a trace without its footer, the header's note).
fn skipped_entries(input: &Input) -> BTreeMap<String, u64> {
    match &input.footer {
        Some(f) => f.skipped_entries(&input.header),
        None => Footer::default().skipped_entries(&input.header),
    }
}

fn info(input: &Input, rules: &Protocol, side: &SideState) -> TraceInfo {
    let h = &input.header;
    let footer = input.footer.as_ref();
    TraceInfo {
        path: input.path.display().to_string(),
        origin: h.origin,
        release: h.kernel_release.clone(),
        attach: h.attach.clone(),
        profile: h.profile.clone(),
        workload: h.workload.clone(),
        seq_rules: rules.source.clone(),
        events_read: side.event_counts().total,
        complete: input.problem.is_none() && footer.is_some_and(|f| f.complete()),
        end: footer.map(|f| f.end.clone()),
        problem: input.problem.clone(),
    }
}

fn lost(input: &Input) -> LostEvents {
    input
        .footer
        .as_ref()
        .map(|f| LostEvents {
            total: f.lost(),
            per_probe: f.drops.clone(),
        })
        .unwrap_or_default()
}

fn coverage(side: &SideState, h: &Header) -> Coverage {
    let mut c = side.coverage();
    c.unattached_targets = h
        .attach
        .iter()
        .filter_map(|(t, a)| match a {
            Attachment::Absent(why) | Attachment::Refused(why) => Some((t.clone(), why.clone())),
            Attachment::Fentry | Attachment::Kprobe => None,
        })
        .collect();
    // The diff's own judgement from the attach modes, in place of the recorder's words (a
    // recorder before session 9 called a refused writer "inlined or absent"); a header
    // without those words (older still, or the model's) gets none.
    if !h.observed_through.is_empty() {
        c.observed_through = writers::observed_through(&h.attach, &h.kernel_release);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The side stepped on is the one the loop's choice (the oracle: its expression as it was
    /// asked before each trace event) would take, on random counts, near ties and with the
    /// other side at its end.
    #[test]
    fn a_side_is_stepped_again_exactly_when_the_choice_takes_it() {
        let choice = |done: [bool; 2], ops: [u64; 2]| match (done[0], done[1]) {
            (true, true) => None,
            (false, true) => Some(0),
            (true, false) => Some(1),
            (false, false) => Some(usize::from(ops[1] < ops[0])),
        };
        let mut next = crate::test_rng::xorshift(0x853c_49e6_748f_ea9b);
        for _ in 0..20_000 {
            let base = next(1 << 40);
            let ops = [base + next(3), base + next(3)];
            let done = [next(4) == 0, next(4) == 0];
            for i in 0..2 {
                if done[i] {
                    continue;
                }
                assert_eq!(
                    chosen_again(i, ops[i], ops[1 - i], done[1 - i]),
                    choice(done, ops) == Some(i),
                    "side {i}, {ops:?}, {done:?}"
                );
            }
        }
    }
}
