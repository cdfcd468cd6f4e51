//! The diff's result: serialized as report.json, rendered as the text summary and details.
use std::{
    collections::BTreeMap,
    io::{self, Write},
};

use serde::Serialize;
use serde_json::{Map, Value};

use tracer_common::Probe;

use crate::trace::{Attachment, End, Origin};

use super::align::OpDivergence;
// The engine's files name the vocabulary through the report, as before it moved.
pub use super::vocabulary::{
    AnomalyKind, Classes, CpuSequence, EventCounts, LostEvents, PerSide, Reason, ReasonKind, Side,
    Verdict,
};
use crate::agreement::Agreement;

/// What a trace is and whether it could be read to its end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TraceInfo {
    pub path: String,
    pub origin: Origin,
    /// The kernel release (kernel traces) or the release the profile stands for (model).
    pub release: String,
    /// Per target symbol: how it was traced.
    pub attach: BTreeMap<String, Attachment>,
    pub profile: Option<String>,
    pub workload: Option<String>,
    /// Where the `d_seq` rules the invariants use came from.
    pub seq_rules: String,
    pub events_read: u64,
    /// Read to its end mark, no lost events, and the recording finished normally.
    pub complete: bool,
    /// How the recording ended (footer), None when the footer was never reached.
    pub end: Option<End>,
    /// Why the trace could not be read to its end (truncated or corrupted).
    pub problem: Option<String>,
}

/// One event of an anomaly's context window.
#[derive(Clone, Debug, Serialize)]
pub struct ContextLine {
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    /// Probe symbol, or the operation's kind.
    pub event: String,
    pub name: String,
    pub dentry: Option<u64>,
    pub generation: Option<u32>,
    pub seq_begin: u32,
    pub seq_end: u32,
    pub inode_begin: u64,
    pub inode_end: u64,
    /// H hashed at entry, h hashed at exit, V validated, T name truncated, F read fault,
    /// E entry not seen.
    pub flags: String,
    pub result: Option<i32>,
    /// The anomaly's own event.
    pub subject: bool,
    /// Same dentry or same name as the anomaly's event.
    pub related: bool,
}

/// A user-visible or protocol-level failure, with the evidence around it.
#[derive(Clone, Debug, Serialize)]
pub struct Anomaly {
    pub side: Side,
    pub kind: AnomalyKind,
    pub name: String,
    /// The operation (or probe) in which it happened.
    pub operation: String,
    pub tid: u32,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub dentry: Option<u64>,
    pub generation: Option<u32>,
    pub why: String,
    pub evidence: Map<String, Value>,
    pub context: Vec<ContextLine>,
}

/// One `d_seq` change no traced writer accounts for.
#[derive(Clone, Debug, Serialize)]
pub struct GapExample {
    pub name: String,
    pub dentry: u64,
    pub generation: u32,
    pub from_seq: u32,
    pub to_seq: u32,
    /// The previous observation of this dentry, and the one that found the change.
    pub since_ts: u64,
    pub ts: u64,
    pub observed_by: &'static str,
    pub cause: String,
}

/// Coverage gaps of one side.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Coverage {
    pub total: u64,
    pub by_cause: BTreeMap<String, u64>,
    /// Targets the header says were not attached, with the reason.
    pub unattached_targets: BTreeMap<String, String>,
    /// Per writer, what observed it, judged from the header's attach modes (when the header
    /// has `observed_through`: [`crate::writers`]).
    pub observed_through: BTreeMap<String, String>,
    pub examples: Vec<GapExample>,
}

/// Where the two sides differ beyond the per-side counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Divergence {
    /// Operations matched by (kind, name, occurrence) and compared.
    pub operations_compared: u64,
    pub results_differ: u64,
    /// Of those, the ones a race explains; each of the others is a `result-differs` anomaly.
    pub explained_by_race: u64,
    /// Operations with no counterpart on the other side.
    pub unmatched: PerSide<u64>,
    /// The traces held too different operations to keep matching (memory cap reached).
    pub abandoned: bool,
    pub examples: Vec<OpDivergence>,
}

/// How well the input fit the diff's assumptions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Diagnostics {
    /// Events that arrived after the reorder window had passed their time (raise --window-ms).
    pub late_events: u64,
    /// Unknown probe codes or operation kinds (skipped).
    pub unknown_events: u64,
    /// Events with a kernel read fault (skipped by the classification).
    pub read_faults: u64,
    /// Distinct parent ids with no known name (neither from an event nor from the operation
    /// around it) when an event under them came; such names are keyed as if at the root, and
    /// their validated NULL-inode returns and hashed inode clears are not judged.
    pub unnamed_parents: u64,
    /// Writer entries that found `d_seq` below what was already observed, nothing owed (the
    /// ones the stamps order after that observation are `seq-decreased` too).
    pub seq_regressions: u64,
    /// Lookups and writer entries that read less than a lookup or writer on another CPU had
    /// seen, stamped within the clock skew two CPUs can show (`CLOCK_SKEW_NS`): not ordered,
    /// so not `seq-decreased`.
    pub seq_decreases_within_clock_skew: u64,
    /// `d_seq` moves a lookup read before the writer that made them was stamped (a thread
    /// stalled between its entry probe and its write): explained by that writer.
    pub seq_moves_seen_early: u64,
    /// Inode clears on a hashed dentry inside an unlink/rmdir/rename (d_delete, expected).
    pub d_delete_clears: u64,
    /// The most events held at once by the reorder window.
    pub max_reorder_depth: u64,
    /// Anomalies counted but not detailed (over --max-anomalies).
    pub anomalies_not_detailed: u64,
    /// Of those, the ones within --max-anomalies ("kind on name at ts ns"): their details
    /// were given to anomalies judged before them and set aside after them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undetailed_within_limit: Vec<String>,
    /// First begin and last end of the operations, and of the probe events.
    pub operation_time_range: Option<(u64, u64)>,
    pub probe_time_range: Option<(u64, u64)>,
}

impl Diagnostics {
    /// The operations and the probe events cover mostly different times: their timestamps
    /// are not on one clock, and the classification compares them.
    pub fn clocks_disagree(&self) -> bool {
        let (Some((ob, oe)), Some((pb, pe))) = (self.operation_time_range, self.probe_time_range)
        else {
            return false;
        };
        // A damaged trace can end a range before it begins: such a range is empty.
        let shorter = oe.saturating_sub(ob).min(pe.saturating_sub(pb));
        let common = oe.min(pe).saturating_sub(ob.max(pb));
        shorter > 0 && common.saturating_mul(2) < shorter
    }
}

/// Everything `tracer diff` found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub kernel: TraceInfo,
    pub model: TraceInfo,
    /// The model's profile (from its header).
    pub profile: Option<String>,
    pub events: PerSide<EventCounts>,
    pub lost_events: PerSide<LostEvents>,
    pub null_inode_returns: PerSide<Classes>,
    pub enoent_results: PerSide<Classes>,
    /// Anomalies per kind (all of them, also those past --max-anomalies).
    pub anomaly_counts: PerSide<BTreeMap<AnomalyKind, u64>>,
    pub anomalies: Vec<Anomaly>,
    pub coverage_gaps: PerSide<Coverage>,
    pub divergence: Divergence,
    pub diagnostics: PerSide<Diagnostics>,
    /// Per CPU, the kernel trace's `cpu_seq` numbering: what arrived, what is missing.
    pub cpu_sequence: BTreeMap<u32, CpuSequence>,
    /// Per operation, do the two sides' probe events agree (informative: no verdict rests on it).
    pub agreement: Agreement,
    pub verdict: Verdict,
    /// Why the verdict is not "clean" beyond the anomalies: one line each.
    pub reasons: Vec<Reason>,
    /// 0 clean, 1 anomalies, 2 inconclusive.
    pub exit_status: i32,
}

impl Report {
    /// Anomalies on both sides.
    pub fn anomaly_total(&self) -> u64 {
        self.anomaly_counts.kernel.values().sum::<u64>()
            + self.anomaly_counts.model.values().sum::<u64>()
    }

    pub(crate) fn decide(&mut self) {
        self.verdict = if self.anomaly_total() > 0 {
            Verdict::Anomalies
        } else if !self.reasons.is_empty() {
            Verdict::Inconclusive
        } else {
            Verdict::Clean
        };
        self.exit_status = self.verdict.exit_status();
    }

    /// The summary a person takes in at a glance.
    pub fn write_summary(&self, out: &mut dyn Write) -> io::Result<()> {
        let k = &self.kernel;
        let m = &self.model;
        writeln!(
            out,
            "tracer diff: {} (kernel {}) vs {} (model{})",
            k.path,
            k.release,
            m.path,
            self.profile
                .as_deref()
                .map(|p| format!(", profile {p}"))
                .unwrap_or_default()
        )?;
        writeln!(out)?;
        writeln!(out, "{:<40} {:>12} {:>12}", "", "kernel", "model")?;
        let row = |out: &mut dyn Write, label: &str, a: String, b: String| {
            writeln!(out, "{label:<40} {a:>12} {b:>12}")
        };
        let num = |out: &mut dyn Write, label: &str, a: u64, b: u64| {
            row(out, label, a.to_string(), b.to_string())
        };
        // Rows in `order` first (the natural order of probes or classes), then any others.
        let ordered = |out: &mut dyn Write,
                       order: &[&str],
                       a: &BTreeMap<String, u64>,
                       b: &BTreeMap<String, u64>|
         -> io::Result<()> {
            let mut keys: Vec<&str> = order.to_vec();
            for k in a.keys().chain(b.keys()) {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
            for key in keys {
                let label = format!("  {key}");
                num(
                    out,
                    &label,
                    a.get(key).copied().unwrap_or(0),
                    b.get(key).copied().unwrap_or(0),
                )?;
            }
            Ok(())
        };
        let keyed = |out: &mut dyn Write, a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            ordered(out, &[], a, b)
        };
        let probes: Vec<&str> = Probe::ALL.iter().map(|p| p.symbol()).collect();
        let class_order = [
            "negative",
            "overlaps-writer",
            "rejected-snapshot",
            "anomaly",
        ];
        let (ek, em) = (&self.events.kernel, &self.events.model);
        num(out, "events", ek.total, em.total)?;
        ordered(out, &probes, &ek.per_probe, &em.per_probe)?;
        num(
            out,
            "operations",
            ek.per_operation.values().sum(),
            em.per_operation.values().sum(),
        )?;
        keyed(out, &ek.per_operation, &em.per_operation)?;
        num(
            out,
            "lost events",
            self.lost_events.kernel.total,
            self.lost_events.model.total,
        )?;
        let yes = |b: bool| if b { "yes" } else { "NO" }.to_string();
        row(out, "trace complete", yes(k.complete), yes(m.complete))?;
        let classes = |out: &mut dyn Write, label: &str, c: &PerSide<Classes>| {
            num(out, label, c.kernel.total, c.model.total)?;
            let shown: Vec<&str> = class_order
                .iter()
                .copied()
                .filter(|k| c.kernel.by_class.contains_key(*k))
                .collect();
            ordered(out, &shown, &c.kernel.by_class, &c.model.by_class)
        };
        classes(
            out,
            "NULL-inode returns (rcu-walk)",
            &self.null_inode_returns,
        )?;
        classes(out, "ENOENT results (stat, open)", &self.enoent_results)?;
        let (ak, am) = (&self.anomaly_counts.kernel, &self.anomaly_counts.model);
        num(out, "ANOMALIES", ak.values().sum(), am.values().sum())?;
        let named = |m: &BTreeMap<AnomalyKind, u64>| -> BTreeMap<String, u64> {
            m.iter().map(|(k, n)| (k.name().to_string(), *n)).collect()
        };
        keyed(out, &named(ak), &named(am))?;
        let (ck, cm) = (&self.coverage_gaps.kernel, &self.coverage_gaps.model);
        num(
            out,
            "coverage gaps (untraced d_seq moves)",
            ck.total,
            cm.total,
        )?;
        keyed(out, &ck.by_cause, &cm.by_cause)?;
        writeln!(out)?;
        let d = &self.divergence;
        if d.abandoned {
            writeln!(
                out,
                "operation results: not compared (the traces hold different operations)"
            )?;
        } else {
            writeln!(
                out,
                "operation results: {} compared, {} differ; unmatched: kernel {}, model {}",
                d.operations_compared, d.results_differ, d.unmatched.kernel, d.unmatched.model
            )?;
        }
        write!(out, "{}", self.agreement)?;
        for (side, c) in [(Side::Kernel, ck), (Side::Model, cm)] {
            if c.observed_through.is_empty() {
                for (target, why) in &c.unattached_targets {
                    writeln!(
                        out,
                        "note: {} target {target} not traced: {why}",
                        side.name()
                    )?;
                }
            }
            // Writers seen through their own probe need no note; the others say how (or
            // whether) their effect was observed.
            for (writer, how) in &c.observed_through {
                if how.starts_with("not ") {
                    writeln!(out, "note: {} writer {writer}: {how}", side.name())?;
                }
            }
        }
        for side in [Side::Kernel, Side::Model] {
            let lost = self.lost_events.get(side).total;
            if lost > 0 {
                writeln!(
                    out,
                    "note: the {} trace lost {lost} events: a writer missing from it can turn \
                     an explained NULL-inode return into an anomaly or hide a coverage gap",
                    side.name()
                )?;
            }
            let dg = self.diagnostics.get(side);
            if dg.late_events > 0 {
                writeln!(
                    out,
                    "note: {} {} events arrived later than the reorder window; raise --window-ms",
                    dg.late_events,
                    side.name()
                )?;
            }
            if dg.unnamed_parents > 0 {
                writeln!(
                    out,
                    "note: {} {} parent dentries had no known name when events under them \
                     came; those names are keyed as if at the root",
                    dg.unnamed_parents,
                    side.name()
                )?;
            }
        }
        writeln!(out, "{}", self.verdict_line())?;
        for r in &self.reasons {
            writeln!(out, "  {}: {r}", self.reason_label())?;
        }
        Ok(())
    }

    fn reason_label(&self) -> &'static str {
        match self.verdict {
            Verdict::Inconclusive => "inconclusive",
            _ => "also",
        }
    }

    /// One line: the verdict and its exit status.
    pub fn verdict_line(&self) -> String {
        let what = match self.verdict {
            Verdict::Clean => {
                "clean: no anomaly, and the traces are complete enough to say so".to_string()
            }
            Verdict::Anomalies => format!("{} anomalies", self.anomaly_total()),
            Verdict::Inconclusive => format!(
                "inconclusive: no anomaly found, but {} reason(s) below keep the traces from \
                 showing there is none",
                self.reasons.len()
            ),
        };
        format!("verdict: {what} (exit {})", self.exit_status)
    }

    /// Every detailed anomaly with its evidence and context window, then the first operations
    /// whose results differ between the sides.
    pub fn write_details(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, a) in self.anomalies.iter().enumerate() {
            writeln!(out)?;
            writeln!(
                out,
                "[{}] anomaly {}: {} {} ({}, tid {}, {} + {})",
                a.side.name(),
                i + 1,
                a.kind.name(),
                a.name,
                a.operation,
                a.tid,
                secs(a.ts_begin),
                dur(a.ts_end.saturating_sub(a.ts_begin)),
            )?;
            if let (Some(d), Some(g)) = (a.dentry, a.generation) {
                writeln!(out, "  dentry #{d} generation {g}")?;
            }
            writeln!(out, "  {}", a.why)?;
            for (key, v) in &a.evidence {
                writeln!(out, "  {key}: {v}")?;
            }
            if !a.context.is_empty() {
                writeln!(out, "  context (> the event, * same dentry or name):")?;
                for c in &a.context {
                    let mark = if c.subject {
                        '>'
                    } else if c.related {
                        '*'
                    } else {
                        ' '
                    };
                    writeln!(out, "  {mark} {}", context_text(c))?;
                }
            }
        }
        let left = self.diagnostics.kernel.anomalies_not_detailed
            + self.diagnostics.model.anomalies_not_detailed;
        if left > 0 {
            writeln!(out)?;
            writeln!(
                out,
                "{left} more anomalies counted but not detailed (raise --max-anomalies)"
            )?;
        }
        for side in [Side::Kernel, Side::Model] {
            let within = &self.diagnostics.get(side).undetailed_within_limit;
            if !within.is_empty() {
                writeln!(
                    out,
                    "{} {} anomalies within --max-anomalies are not detailed: their details \
                     went to anomalies judged before them and set aside after them (see the \
                     reasons): {}",
                    within.len(),
                    side.name(),
                    within.join("; ")
                )?;
            }
        }
        let d = &self.divergence;
        if !d.examples.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "operation results that differ ({} of {}):",
                d.examples.len(),
                d.results_differ
            )?;
            for x in &d.examples {
                writeln!(
                    out,
                    "  {} {} #{}: kernel {} at {}, model {} at {}",
                    x.operation,
                    x.name,
                    x.occurrence,
                    x.kernel_result,
                    secs(x.kernel_ts_begin),
                    x.model_result,
                    secs(x.model_ts_begin)
                )?;
            }
        }
        Ok(())
    }
}

fn secs(ns: u64) -> String {
    format!("{}.{:09}s", ns / 1_000_000_000, ns % 1_000_000_000)
}

fn dur(ns: u64) -> String {
    if ns < 10_000 {
        format!("{ns}ns")
    } else {
        format!("{:.1}us", ns as f64 / 1000.0)
    }
}

fn inode(i: u64) -> String {
    if i == 0 {
        "NULL".into()
    } else {
        format!("#{i}")
    }
}

/// One context event on one line: time, duration, tid, what, name, then what it saw.
pub fn context_text(c: &ContextLine) -> String {
    let mut s = format!(
        "{} {:>8} tid {:<7} {:<20} {:<16}",
        secs(c.ts_begin),
        dur(c.ts_end.saturating_sub(c.ts_begin)),
        c.tid,
        c.event,
        c.name
    );
    if let Some(r) = c.result {
        s.push_str(&format!(" result {r}"));
    } else {
        if let (Some(d), Some(g)) = (c.dentry, c.generation) {
            s.push_str(&format!(" #{d}/g{g}"));
        }
        s.push_str(&format!(
            " seq {}->{} inode {}->{} [{}]",
            c.seq_begin,
            c.seq_end,
            inode(c.inode_begin),
            inode(c.inode_end),
            c.flags
        ));
    }
    s
}
