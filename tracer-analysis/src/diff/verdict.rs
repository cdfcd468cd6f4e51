//! The reasons a diff cannot say "clean", per trace: everything that keeps a trace from showing
//! that no anomaly happened. Anomalies decide on their own (exit 1); without any, one reason
//! makes the verdict inconclusive (exit 2).
use std::collections::BTreeMap;

use super::{
    evidence::{may_end_a_life, Doubt, SetAside},
    report::{Coverage, CpuSequence, Diagnostics, EventCounts, Reason, ReasonKind, Side},
    side::{CutBound, CutBounds},
};
use crate::trace::{End, Footer, Origin, SkipCounting};
use tracer_common::{OpKind, Probe};

/// What one side's reasons are drawn from.
pub struct Facts<'a> {
    /// Why the trace could not be read to its end.
    pub problem: Option<&'a str>,
    pub origin: Origin,
    pub footer: Option<&'a Footer>,
    pub events: &'a EventCounts,
    pub diag: &'a Diagnostics,
    pub unsequenced: u64,
    pub coverage: &'a Coverage,
    pub unmatched: u64,
    /// The kernel trace's numbering (None for the model).
    pub cpu_sequence: Option<&'a BTreeMap<u32, CpuSequence>>,
    /// Why the header's workload text does not parse, if it does not.
    pub workload_unreadable: Option<&'a str>,
    /// Why `__d_lookup_rcu` was not attached, if the header says it was not.
    pub lookup_unattached: Option<&'a str>,
    /// Writers whose calls the kernel trace could not see, with why (the header's attach
    /// modes, [`crate::writers`]).
    pub unobserved_writers: &'a [(&'static str, String)],
    /// The header's word on skipped programs going uncounted.
    pub skip_counting: Option<SkipCounting>,
    /// Probe events whose source is no kernel probe (counted; judged for the kernel only).
    pub not_from_probes: u64,
    /// Events whose name was cut.
    pub names_cut: u64,
    /// Events whose entry half was not seen.
    pub no_entry: u64,
    /// Why the header's release gave no rules, if it did not.
    pub release_unknown: Option<&'a str>,
    /// Anomalies whose judgment lacked events: not counted as anomalies.
    pub set_aside: &'a SetAside,
    /// Per probe, calls whose entry program the kernel skipped (lost events; the set-aside
    /// reason names them).
    pub skipped_entries: &'a BTreeMap<String, u64>,
    /// The calls the trace shows lost ([`losses`]), as the set-aside was decided from them.
    pub losses: &'a [Loss<'a>],
    /// Where the events a cut trace lacks may begin, and why there.
    pub cut_bound: Option<&'a CutBounds>,
    /// The same of the other trace's operations, for `result-differs`.
    pub other_cut: Option<&'a CutBound>,
    /// Suspects keyed under a directory no event named, not judged.
    pub unnamed_unjudged: u64,
}

pub fn reasons(side: Side, f: &Facts<'_>) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut say = |kind: ReasonKind, message: String| {
        out.push(Reason {
            side: Some(side),
            kind,
            message,
        })
    };
    if let Some(p) = f.problem {
        say(
            ReasonKind::Damaged,
            format!("{p}; the diff covers the events before the damage only"),
        );
    }
    if let Some(footer) = f.footer {
        match &footer.end {
            End::Finished => {}
            End::Interrupted => say(
                ReasonKind::NotFinished,
                "the recording was interrupted: the workload did not run to its end".into(),
            ),
            other => say(
                ReasonKind::NotFinished,
                format!("the recording did not finish ({other})"),
            ),
        }
        for (probe, n) in footer.drops.iter().filter(|(_, n)| **n > 0) {
            say(
                ReasonKind::Lost,
                format!(
                    "lost {n} events on {probe} (footer drops){}",
                    skip_causes(footer, probe)
                ),
            );
        }
        // A skipped entry loses its call's event. A recorder counts each in the probe's
        // drops as well (`finish_trace`), so only what the drops leave out is said here: a
        // footer written otherwise loses no skip, and a recorder's counts none twice.
        for (probe, n) in f.skipped_entries {
            let dropped = footer.drops.get(probe).copied().unwrap_or(0);
            if *n > dropped {
                say(
                    ReasonKind::Lost,
                    format!(
                        "lost {} events on {probe} (footer skipped_entries {n}, beyond its \
                         drops {dropped}){}",
                        n - dropped,
                        skip_causes(footer, probe)
                    ),
                );
            }
        }
        if f.origin == Origin::Kernel {
            // A recorder counts every probe it loaded: events of one it does not count are
            // beyond what the footer can vouch for (a crafted or foreign footer).
            for p in Probe::KERNEL {
                let held = f.events.per_probe.get(p.symbol()).copied().unwrap_or(0);
                if held > 0 && !footer.hits.contains_key(p.symbol()) {
                    say(
                        ReasonKind::HitsMismatch,
                        format!(
                            "{held} {} events in the file, but the footer counts no calls of \
                             it: losses of it cannot be found",
                            p.symbol()
                        ),
                    );
                }
            }
        }
        for (probe, hits) in &footer.hits {
            let held = f.events.per_probe.get(probe).copied().unwrap_or(0);
            let dropped = footer.drops.get(probe).copied().unwrap_or(0);
            if *hits == held {
                continue;
            }
            if held > *hits {
                say(
                    ReasonKind::HitsMismatch,
                    format!(
                        "{held} {probe} events in the file, but the footer counts only {hits} \
                         calls of it: events that no probe recorded"
                    ),
                );
            } else if hits - held > dropped {
                say(
                    ReasonKind::HitsMismatch,
                    format!(
                        "the footer counts {hits} calls of {probe} and {dropped} lost, the file \
                         holds {held} events of it: {} missing that no drop counter saw",
                        hits - held - dropped
                    ),
                );
            }
        }
    }
    if let Some(seqs) = f.cpu_sequence {
        // A kernel recording's footer numbers every CPU its probes ran on: an empty list there
        // is a CPU without its number, not a footer without numbers.
        let footer_last = f
            .footer
            .map(|x| &x.last_cpu_seq)
            .filter(|l| !l.is_empty() || f.origin == Origin::Kernel);
        for (cpu, s) in seqs {
            match footer_last.map(|l| l.get(cpu)) {
                Some(Some(l)) if *l < s.last => say(
                    ReasonKind::FooterDisagrees,
                    format!(
                        "the footer says CPU {cpu}'s last event number is {l}, the file holds \
                         numbers up to {}: the footer does not count these events, so losses \
                         after them cannot be found",
                        s.last
                    ),
                ),
                Some(None) if s.events > 0 => say(
                    ReasonKind::FooterDisagrees,
                    format!(
                        "the footer has no last event number for CPU {cpu}, which has {} \
                         events in the file: losses after them cannot be found",
                        s.events
                    ),
                ),
                _ => {}
            }
            if s.missing > 0 {
                say(
                    ReasonKind::SequenceHole,
                    format!(
                        "gap in the event sequence of CPU {cpu}: {} of its {} events missing \
                         (first missing number {})",
                        s.missing,
                        s.last,
                        s.first_missing.unwrap_or(0)
                    ),
                );
            }
            if s.repeated > 0 {
                say(
                    ReasonKind::SequenceRepeat,
                    format!(
                        "{} events of CPU {cpu} repeat a sequence number another event has",
                        s.repeated
                    ),
                );
            }
        }
        if f.unsequenced > 0 {
            say(
                ReasonKind::Unsequenced,
                format!(
                    "{} kernel probe events carry no sequence number: losses among them \
                     cannot be found",
                    f.unsequenced
                ),
            );
        }
    }
    if f.coverage.total > 0 {
        let causes: Vec<String> = f
            .coverage
            .by_cause
            .iter()
            .map(|(cause, n)| format!("{n} by {cause}"))
            .collect();
        say(
            ReasonKind::UnexplainedSeqMoves,
            format!(
                "{} d_seq moves no traced writer explains ({}): a writer that is not \
                 probed could hide a missing bump",
                f.coverage.total,
                causes.join(", ")
            ),
        );
    }
    if f.unmatched > 0 {
        say(
            ReasonKind::UnmatchedOperations,
            format!(
                "{} operations with no counterpart in the other trace",
                f.unmatched
            ),
        );
    }
    let d = f.diag;
    if let (true, Some(o), Some(p)) = (
        d.clocks_disagree(),
        d.operation_time_range,
        d.probe_time_range,
    ) {
        say(
            ReasonKind::ClocksDisagree,
            format!(
                "its operations ({} to {} ns) and its probe events ({} to {} ns) cover mostly \
                 different times: they are not on one clock, and the classification compares \
                 them (a model replayed against a kernel trace needs the logical clock that \
                 jumps to each operation's begin)",
                o.0, o.1, p.0, p.1
            ),
        );
    }
    if d.late_events > 0 {
        say(
            ReasonKind::LateEvents,
            format!(
                "{} events arrived later than the reorder window and may have been judged \
                 out of order; raise --window-ms",
                d.late_events
            ),
        );
    }
    for (doubt, (kinds, examples)) in &f.set_aside.by_doubt {
        let n: u64 = kinds.values().sum();
        let kinds: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{n} {}", k.name()))
            .collect();
        let (kind, why) = match doubt {
            Doubt::LateEvent => (
                ReasonKind::AnomalyBeforeLateEvent,
                "were judged before a late event on their name, a directory above it or their \
                 dentry arrived, which may explain them"
                    .to_string(),
            ),
            Doubt::FromLateEvent => (
                ReasonKind::AnomalyFromLateEvent,
                "were judged from a late event by a rule that compares it with what its \
                 dentry's earlier events showed, and events stamped after it had been \
                 processed before it arrived: the comparison is the arrival order's, not \
                 the trace's"
                    .to_string(),
            ),
            Doubt::NearCut => (
                ReasonKind::AnomalyNearCut,
                format!(
                    "reach past where an event the trace lacks may begin ({}), and such an \
                     event (an operation is written at its end) may explain them",
                    cut_from(f.cut_bound, f.other_cut)
                ),
            ),
            Doubt::SkippedEntry => (
                ReasonKind::AnomalyOnSkippedProbe,
                format!(
                    "rest on events of {} whose entry program the kernel skipped (its \
                     recursion guard, a kprobe it missed, or a lookup's exit without its \
                     entry, which may also be the tracer's own lost slot): their own, or one \
                     judged before them on their dentry, \
                     their name or a directory above it; the exit of such a call takes the \
                     slot the thread's previous call may have left, and its event joins one \
                     call's name to the other's result",
                    f.skipped_entries
                        .iter()
                        .map(|(p, n)| format!("{p} ({n} skipped)"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Doubt::LostDeath => (
                ReasonKind::AnomalyAcrossLostDeath,
                format!(
                    "rest on a dentry's d_seq record, its writers or the name a dentry's \
                     binding gave, and calls of a probe that ends a dentry's life were lost \
                     ({}): a death not seen runs the next dentry at the same address under \
                     the same name into the old one's record (its d_seq from 0 reads as going \
                     back) and leaves a directory's old name on the new dentry",
                    lost_deaths(f)
                ),
            ),
        };
        say(
            kind,
            format!(
                "{n} anomalies ({}) {why}; not counted as anomalies: {}",
                kinds.join(", "),
                examples.join("; ")
            ),
        );
    }
    if f.unnamed_unjudged > 0 {
        say(
            ReasonKind::UnnamedDirectory,
            format!(
                "{} validated NULL-inode returns or hashed inode clears under a directory no \
                 event or operation names were not judged: their name is unknown",
                f.unnamed_unjudged
            ),
        );
    }
    if d.unknown_events > 0 {
        say(
            ReasonKind::UnknownEvents,
            format!(
                "{} events with an unknown probe or operation code were skipped",
                d.unknown_events
            ),
        );
    }
    if d.read_faults > 0 {
        say(
            ReasonKind::ReadFaults,
            format!(
                "{} events with a kernel read fault were not judged",
                d.read_faults
            ),
        );
    }
    if let Some(why) = f.workload_unreadable {
        say(
            ReasonKind::WorkloadUnreadable,
            format!(
                "its header's workload does not parse with this build ({why}): the names its \
                 setup created are not known to exist, so a NULL inode on one cannot be told \
                 from a negative lookup; diff with the tracer version that recorded it"
            ),
        );
    }
    if let Some(why) = f.lookup_unattached {
        say(
            ReasonKind::LookupNotTraced,
            format!("__d_lookup_rcu was not traced ({why}): no NULL-inode return could be seen"),
        );
    }
    for (writer, why) in f.unobserved_writers {
        say(
            ReasonKind::WriterNotObserved,
            format!(
                "writer {writer} was not observed ({why}): its writes are not in the trace, so \
                 the checks resting on them did not run; re-record where it attaches \
                 (`tracer info` shows each target's attach mode)"
            ),
        );
    }
    if f.skip_counting == Some(SkipCounting::KprobeUncounted) {
        say(
            ReasonKind::KprobeSkipsUncounted,
            "its kprobe programs ran on a kernel before 6.7 that preempts kernel code (or may): \
             there the kernel skips them uncounted while another task's BPF map syscall is \
             preempted on that CPU, so a lost call leaves no trace; record with `--attach \
             auto` or `fentry`, whose skips are counted"
                .into(),
        );
    }
    if side == Side::Kernel {
        nothing_observed(f, &mut say);
    }
    if f.cpu_sequence.is_some() && f.not_from_probes > 0 {
        say(
            ReasonKind::ForeignEvents,
            format!(
                "{} of its probe events were not written by a kernel probe (their source is \
                 another): this is not a recording of the kernel; diff the trace `tracer \
                 record` wrote",
                f.not_from_probes
            ),
        );
    }
    if f.no_entry > 0 {
        say(
            ReasonKind::NoEntry,
            format!(
                "{} events lack their entry half (the probe was attached mid-call): what they \
                 found at entry is unknown, and the checks that need it are skipped",
                f.no_entry
            ),
        );
    }
    if let Some(why) = f.release_unknown {
        say(
            ReasonKind::ReleaseUnknown,
            format!("{why}: the newest rules were assumed"),
        );
    }
    if f.names_cut > 0 {
        say(
            ReasonKind::NamesCut,
            format!(
                "{} events carry a name cut to the event's 64 bytes: names that share those \
                 bytes share one key, and what is judged of one may be the other's",
                f.names_cut
            ),
        );
    }
    out
}

/// How the footer shows calls of `probe` lost under the kernel's own skips (beyond the
/// recursion guard, which the set-aside reason names), and what avoids them; empty when it
/// shows none.
fn skip_causes(footer: &Footer, probe: &str) -> String {
    let count = |m: &BTreeMap<String, u64>| m.get(probe).copied().filter(|n| *n > 0);
    let mut causes = Vec::new();
    if let Some(n) = count(&footer.exits_without_entry) {
        causes.push(format!(
            "{n} of its exits found no entry on a traced file system: calls whose entry \
             program the kernel passed over (another BPF program or a BPF map syscall held \
             bpf_prog_active on that CPU; among the recursion guard's skips from 6.7, \
             uncounted before), or the tracer's own lost slots (its slot map recycled the \
             entry's or had no room for it: such a call is also its entry's drop, and no \
             exit was paired with another call's entry); stop the other BPF users, or record \
             with `--attach fentry`, whose skips the kernel counts and whose lost slots are \
             plain drops"
        ));
    }
    if let Some(n) = count(&footer.kprobe_missed_entries) {
        causes.push(format!(
            "its kprobe missed {n} hits on any file system (the link's `missed`: a hit while \
             another kprobe's handler ran on that CPU), each counted lost; stop the other \
             kprobe users, or record with `--attach fentry`"
        ));
    }
    if let Some(n) = count(&footer.kprobe_missed_exits) {
        causes.push(format!(
            "its kretprobe missed {n} returns on any file system (no free instance, or a hit \
             while another kprobe's handler ran), the traced ones among these; record with \
             `--attach fentry`, or with fewer threads in the function at once than the \
             kernel's default kretprobe instances (maxactive, which this tracer cannot raise)"
        ));
    }
    if causes.is_empty() {
        String::new()
    } else {
        format!(": {}", causes.join("; "))
    }
}

/// The life-ending probes (or symbols no probe has, or probes unknown) that lost calls, with
/// how many, for the lost-death reason.
fn lost_deaths(f: &Facts<'_>) -> String {
    f.losses
        .iter()
        .filter(|l| may_end_a_life(l.symbol))
        .map(Loss::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a trace shows calls lost.
#[derive(Clone, Copy)]
enum Shown {
    /// The footer's `skipped_entries`.
    Skipped,
    /// The footer's `drops`.
    Dropped,
    /// The footer's hits beyond the events in the file and the drops.
    BeyondDrops,
    /// `cpu_seq` numbers no event carries, beyond those the drops account for.
    Unnumbered,
}

/// Calls a trace lost: of the probe with this symbol, or (`None`) of a probe unknown.
pub struct Loss<'a> {
    pub symbol: Option<&'a str>,
    calls: u64,
    shown: Shown,
}

impl std::fmt::Display for Loss<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sym, n) = (self.symbol.unwrap_or("a probe unknown"), self.calls);
        match self.shown {
            Shown::Skipped => write!(f, "{sym}: {n} skipped"),
            Shown::Dropped => write!(f, "{sym}: {n} dropped"),
            Shown::BeyondDrops => write!(f, "{sym}: {n} missing beyond its drops (footer hits)"),
            Shown::Unnumbered => write!(
                f,
                "{sym}: {n} cpu_seq numbers missing that the drops do not account for"
            ),
        }
    }
}

/// Every way the trace shows calls lost (the reasons `lost`, `hits-mismatch` and
/// `sequence-hole` say them): skipped entries, drops, per probe the footer's hits beyond its
/// events in the file and its drops, and `cpu_seq` holes (`cpu_sequence`: the kernel's)
/// beyond what the drops account for. A probe numbers a call before it can fail to write its
/// event (`hit()`), so each drop but a skipped entry (whose program did not run) and each hit
/// beyond the drops leaves a hole; a hole beyond those is a call whose probe the footer does
/// not name. The footer counts drops per probe and the holes are per CPU, so only their sums
/// compare.
pub fn losses<'a>(
    footer: Option<&'a Footer>,
    skipped: &'a BTreeMap<String, u64>,
    events: &EventCounts,
    cpu_sequence: Option<&BTreeMap<u32, CpuSequence>>,
) -> Vec<Loss<'a>> {
    let loss = |symbol: &'a String, calls: u64, shown: Shown| Loss {
        symbol: Some(symbol.as_str()),
        calls,
        shown,
    };
    let mut out: Vec<Loss<'a>> = skipped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| loss(p, *n, Shown::Skipped))
        .collect();
    let mut numbered = 0u64;
    if let Some(footer) = footer {
        for (p, n) in footer.drops.iter().filter(|(_, n)| **n > 0) {
            out.push(loss(p, *n, Shown::Dropped));
            numbered += n.saturating_sub(skipped.get(p).copied().unwrap_or(0));
        }
        for (p, hits) in &footer.hits {
            let held = events.per_probe.get(p).copied().unwrap_or(0);
            let dropped = footer.drops.get(p).copied().unwrap_or(0);
            let beyond = hits.saturating_sub(held).saturating_sub(dropped);
            if beyond > 0 {
                out.push(loss(p, beyond, Shown::BeyondDrops));
                numbered += beyond;
            }
        }
    }
    let missing: u64 = cpu_sequence
        .iter()
        .flat_map(|s| s.values())
        .map(|s| s.missing)
        .sum();
    if missing > numbered {
        out.push(Loss {
            symbol: None,
            calls: missing - numbered,
            shown: Shown::Unnumbered,
        });
    }
    out
}

/// Where a cut trace's missing events may begin, and what shows it, for the near-cut reason.
fn cut_from(own: Option<&CutBounds>, other: Option<&CutBound>) -> String {
    let mut out = match own {
        Some(b) if b.names == b.results => bound_text(&b.names),
        Some(b) => format!(
            "{}; for result-differs, which a lost operation of any kind can make, {}",
            bound_text(&b.names),
            bound_text(&b.results)
        ),
        None => String::new(),
    };
    if let Some(b) = other {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&format!(
            "for result-differs, the other trace's operations: {}",
            bound_text(b)
        ));
    }
    out
}

fn bound_text(b: &CutBound) -> String {
    match *b {
        CutBound::Window { at } => format!(
            "{at} ns: a reorder window behind the newest event read, which a lost lookup or \
             writer follows"
        ),
        CutBound::Thread { tid, at } => format!(
            "{at} ns: where thread {tid}'s last operation in the file ended; each thread runs \
             its operations one after another, so the one it ran next began after"
        ),
        CutBound::ThreadsWithoutOps { threads, with_ops } => format!(
            "anywhere: only {with_ops} of the workload's {threads} threads have an operation in \
             the file, and the others' may have begun at any time"
        ),
        CutBound::ThreadsUnknown => "anywhere: the header holds no readable workload to say \
             how many threads ran, so a thread with no operation in the file cannot be ruled out"
            .to_string(),
    }
}

/// A kernel trace that saw nothing to judge: no operation at all, or path walks that the
/// attached `__d_lookup_rcu` did not see. A stat or open walks at least its last component, and
/// in RCU mode `lookup_fast` asks `__d_lookup_rcu` first; a create, unlink, mkdir, rmdir or
/// rename of a name right under the walk's start looks its last component up under the
/// directory's lock (`d_lookup`), and a model may be replayed without probe events, so only
/// the kernel's stats and opens are counted.
fn nothing_observed(f: &Facts<'_>, say: &mut impl FnMut(ReasonKind, String)) {
    let ops = |kinds: &[OpKind]| -> u64 {
        kinds
            .iter()
            .filter_map(|k| f.events.per_operation.get(k.name()))
            .sum()
    };
    if ops(&OpKind::ALL) == 0 {
        say(
            ReasonKind::NothingObserved,
            "it holds no operation: the workload did not run or its events were not written, \
             so nothing was compared"
                .into(),
        );
        return;
    }
    let walks = ops(&[OpKind::Stat, OpKind::Open]);
    let lookups = f
        .events
        .per_probe
        .get(Probe::DLookupRcu.symbol())
        .copied()
        .unwrap_or(0);
    if walks > 0 && lookups == 0 && f.lookup_unattached.is_none() {
        say(
            ReasonKind::NothingObserved,
            format!(
                "{walks} stats and opens walked a path, but the attached __d_lookup_rcu \
                 recorded no call (a device filter that misses the workload's file system, a \
                 probe on a copy of the function the walk does not call): no NULL-inode return \
                 could be seen"
            ),
        );
    }
}
