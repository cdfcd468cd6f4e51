//! report.json's vocabulary: the verdict, its reasons, the anomaly kinds and the counts they
//! assert on. Kept apart from the report and the engine that fills it: a tool reading a report
//! back (the digest, xtask) builds with these alone (the crate's `engine` feature off).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the report.json layout.
pub const SCHEMA: &str = "tracer-diff-report/2";

/// Which trace a finding is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Kernel,
    Model,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Kernel => "kernel",
            Side::Model => "model",
        }
    }
}

/// What the diff concludes, and its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Exit 0: both traces complete, nothing lost, every `d_seq` move explained, no anomaly.
    Clean,
    /// Exit 1: at least one anomaly (what was seen is real, complete trace or not).
    Anomalies,
    /// Exit 2: no anomaly, but the traces cannot show there is none (see the reasons).
    Inconclusive,
}

impl Verdict {
    pub fn exit_status(self) -> i32 {
        match self {
            Verdict::Clean => 0,
            Verdict::Anomalies => 1,
            Verdict::Inconclusive => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Anomalies => "anomalies",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Why a verdict cannot be "clean".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonKind {
    /// The trace is cut short or corrupted: the diff stops at the damage.
    Damaged,
    /// The recording did not finish (interrupted, failed, never ended).
    NotFinished,
    /// The footer counts calls that produced no event.
    Lost,
    /// The footer's hits of a probe and the events of that probe in the file disagree.
    HitsMismatch,
    /// Numbers missing from a CPU's `cpu_seq` sequence: events lost.
    SequenceHole,
    /// A CPU's `cpu_seq` number seen twice: events duplicated or the numbering is broken.
    SequenceRepeat,
    /// Kernel probe events without a `cpu_seq` number.
    Unsequenced,
    /// `d_seq` moves no traced writer explains.
    UnexplainedSeqMoves,
    /// Operations of one side with no counterpart on the other.
    UnmatchedOperations,
    /// The traces held too different operations to keep comparing them.
    MatchingAbandoned,
    /// Operations and probe events are not on one clock.
    ClocksDisagree,
    /// Events arrived after the reorder window had passed their time.
    LateEvents,
    /// Anomalies judged before a late event that could change them arrived: set aside.
    AnomalyBeforeLateEvent,
    /// Anomalies judged from a late event by a rule that holds it against its dentry's
    /// `d_seq` history or writers as processed, which held events stamped after it: set aside.
    AnomalyFromLateEvent,
    /// Anomalies near where a cut or unfinished trace stops, which the missing events could
    /// explain: set aside.
    AnomalyNearCut,
    /// Anomalies whose rule reads events of a probe whose entry program the kernel skipped
    /// (one such event may join two calls): set aside.
    AnomalyOnSkippedProbe,
    /// Anomalies whose rule reads a dentry's `d_seq` record, writers or the name a binding
    /// gave, in a trace that lost calls of a probe ending a dentry's life: two lives at one
    /// address may run together. Set aside.
    AnomalyAcrossLostDeath,
    /// NULL-inode returns or inode clears under a directory with no known name: not judged.
    UnnamedDirectory,
    /// Events with an unknown probe or operation code.
    UnknownEvents,
    /// Events with a kernel read fault, not judged.
    ReadFaults,
    /// An output (the timeline) could not be written.
    Output,
    /// The header's workload does not parse: the names its setup created are not known.
    WorkloadUnreadable,
    /// `__d_lookup_rcu` was not traced: no NULL-inode return could be seen.
    LookupNotTraced,
    /// A writer of `d_seq`, `d_hash` or `d_inode` neither traced itself nor inside traced
    /// functions holding every call of it (refused, or absent with no traced container): the
    /// checks resting on its events did not run.
    WriterNotObserved,
    /// kprobe programs on a kernel that can skip them without counting it (the header's
    /// `skip_counting`): a call lost so leaves no trace.
    KprobeSkipsUncounted,
    /// The kernel trace holds no operation, or stats and opens walked paths while the attached
    /// `__d_lookup_rcu` recorded no call: a clean verdict would rest on nothing seen.
    NothingObserved,
    /// Probe events of a kernel trace that no kernel probe wrote (their source says so).
    ForeignEvents,
    /// Names cut to the events' 64 bytes: two names may share one key.
    NamesCut,
    /// The footer's last `cpu_seq` of a CPU is below the numbers in the file, or missing.
    FooterDisagrees,
    /// Writer or lookup events whose entry half was not seen (`NO_ENTRY`).
    NoEntry,
    /// The kernel release is not a version: the newest rules were assumed.
    ReleaseUnknown,
}

/// One reason, on one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The trace it is about (None: the diff's own output).
    pub side: Option<Side>,
    pub kind: ReasonKind,
    pub message: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.side {
            Some(s) => write!(f, "{} trace: {}", s.name(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What an anomaly is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A validated NULL `d_inode` for a name that exists.
    NullInodePositive,
    /// ENOENT for a name that exists (Hugh Dickins' symptom).
    SpuriousEnoent,
    /// `d_inode` cleared on a hashed dentry outside `d_delete`.
    ClearBeforeUnhash,
    /// A writer moved `d_seq` by less than its protocol requires, or an owed bump is missing.
    SeqDelta,
    /// `d_seq` went backwards within one dentry's life.
    SeqDecreased,
    /// A lookup's `validated` flag contradicts its own `d_seq` values.
    ValidatedFlag,
    /// An operation's result differs from the other side's and no race explains it.
    ResultDiffers,
    /// An RCU lookup returned a dentry whose `*seqp` holds the value after the dentry's unhash
    /// (its invalidate): it skipped its `d_unhashed()` check.
    FoundUnhashed,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 8] = [
        AnomalyKind::NullInodePositive,
        AnomalyKind::SpuriousEnoent,
        AnomalyKind::ClearBeforeUnhash,
        AnomalyKind::SeqDelta,
        AnomalyKind::SeqDecreased,
        AnomalyKind::ValidatedFlag,
        AnomalyKind::ResultDiffers,
        AnomalyKind::FoundUnhashed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::NullInodePositive => "null-inode-positive",
            AnomalyKind::SpuriousEnoent => "spurious-enoent",
            AnomalyKind::ClearBeforeUnhash => "clear-before-unhash",
            AnomalyKind::SeqDelta => "seq-delta",
            AnomalyKind::SeqDecreased => "seq-decreased",
            AnomalyKind::ValidatedFlag => "validated-flag",
            AnomalyKind::ResultDiffers => "result-differs",
            AnomalyKind::FoundUnhashed => "found-unhashed",
        }
    }
}

/// A value per side.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PerSide<T> {
    pub kernel: T,
    pub model: T,
}

impl<T> PerSide<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Kernel => &self.kernel,
            Side::Model => &self.model,
        }
    }
}

/// Event counts of one side.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EventCounts {
    pub total: u64,
    pub per_probe: BTreeMap<String, u64>,
    pub per_operation: BTreeMap<String, u64>,
}

/// Events the recording could not deliver (footer drops).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LostEvents {
    pub total: u64,
    pub per_probe: BTreeMap<String, u64>,
}

/// Counts per class of one kind of result.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Classes {
    pub total: u64,
    pub by_class: BTreeMap<String, u64>,
    pub anomalous: u64,
    /// Judged anomalies then set aside (a reason names them): in `total`, not in `by_class`
    /// or `anomalous`. Absent when none, as in every report before it existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub set_aside: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One CPU's `cpu_seq` numbers in the kernel trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSequence {
    /// Kernel events stamped on this CPU that the file holds.
    pub events: u64,
    /// The highest number expected: the footer's last, else the highest seen.
    pub last: u64,
    /// Numbers up to `last` that no event carries: events lost.
    pub missing: u64,
    /// The first missing number.
    pub first_missing: Option<u64>,
    /// Numbers carried by more than one event.
    pub repeated: u64,
}
