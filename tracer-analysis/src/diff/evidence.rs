//! What the report shows of each anomaly: the events kept after processing (a bounded ring),
//! the context window around an anomaly's event (the events before it from the ring, the
//! events after it as they come), and the per-kind counts.
use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use serde_json::{json, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{writes, PathId, Paths},
    classify::Ruling,
    report::{Anomaly, AnomalyKind, ContextLine, Side},
};

/// An event as kept after processing: enough for context windows, suspects and evidence.
#[derive(Clone, Copy, Debug)]
pub struct Obs {
    /// Processing order.
    pub n: u64,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    pub probe: Probe,
    pub op: Option<OpKind>,
    pub path: PathId,
    /// A rename's new name.
    pub path2: Option<PathId>,
    pub dentry: u64,
    /// The dentry's number in its trace (`dentry` is the pointer).
    pub slot: u32,
    pub generation: u32,
    pub seq_begin: u32,
    pub seq_end: u32,
    pub inode_begin: u64,
    pub inode_end: u64,
    pub flags: u16,
    pub result: i32,
}

/// Why an anomaly already found is set aside: what its judgment rested on turned out to be
/// incomplete, so it is not "what was seen is real".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Doubt {
    /// A late event its rule reads (see [`Evidence::late`]) arrived after it was judged, and
    /// might have changed the judgment.
    LateEvent,
    /// Its interval reaches within the reorder window of where a cut or unfinished trace
    /// ends: the events that would explain it may be in the lost tail.
    NearCut,
}

/// What one anomaly was judged on, kept for every anomaly (also those not detailed) so it
/// can be set aside later.
struct Judged {
    kind: AnomalyKind,
    path: PathId,
    ts_begin: u64,
    /// Its subject's end: every event that could change the judgment has a key at or below.
    reach: u64,
    /// Its index in the detailed anomalies.
    detailed: Option<usize>,
    doubt: Option<Doubt>,
}

/// Anomalies set aside, per doubt: per kind, and a few as "kind name at ts".
#[derive(Clone, Debug, Default)]
pub struct SetAside {
    pub by_doubt: BTreeMap<Doubt, (BTreeMap<AnomalyKind, u64>, Vec<String>)>,
}

/// Examples of anomalies set aside named in a reason, per doubt.
const SET_ASIDE_EXAMPLES: usize = 3;

/// An anomaly still collecting the events after it.
struct Collector {
    index: usize,
    need: usize,
    subject: Obs,
}

pub struct Evidence {
    side: Side,
    context: usize,
    max_anomalies: usize,
    /// The last `ring_cap` events kept, oldest at `next` once full (a ring written in place:
    /// every event passes here).
    ring: Vec<Obs>,
    next: usize,
    ring_cap: usize,
    collectors: Vec<Collector>,
    /// Detailed anomalies (the first `max_anomalies` not set aside, once settled).
    pub anomalies: Vec<Anomaly>,
    /// Every anomaly, per kind.
    pub counts: BTreeMap<AnomalyKind, u64>,
    /// Anomalies counted but not detailed.
    pub not_detailed: u64,
    judged: Vec<Judged>,
    /// Indexes into `judged`, so a late event visits only the records it could change: per
    /// name, per name or directory above it, per dentry slot.
    on_name: HashMap<PathId, Vec<u32>>,
    below: HashMap<PathId, Vec<u32>>,
    on_slot: HashMap<u32, Vec<u32>>,
    /// Detailed anomalies set aside since by a late event: each leaves room for one more.
    detailed_in_doubt: usize,
}

impl Evidence {
    pub fn new(side: Side, context: usize, max_anomalies: usize) -> Evidence {
        Evidence {
            side,
            context,
            max_anomalies,
            ring: Vec::new(),
            next: 0,
            ring_cap: 4096 + 2 * context,
            collectors: Vec::new(),
            anomalies: Vec::new(),
            counts: BTreeMap::new(),
            not_detailed: 0,
            judged: Vec::new(),
            on_name: HashMap::new(),
            below: HashMap::new(),
            on_slot: HashMap::new(),
            detailed_in_doubt: 0,
        }
    }

    /// A processed event: context for the anomalies still collecting, and for later ones.
    pub fn keep(&mut self, obs: &Obs, paths: &Paths) {
        if !self.collectors.is_empty() {
            for c in &mut self.collectors {
                if let Some(a) = self.anomalies.get_mut(c.index) {
                    a.context.push(line(obs, &c.subject, paths));
                }
                c.need -= 1;
            }
            self.collectors.retain(|c| c.need > 0);
        }
        if self.ring.len() < self.ring_cap {
            self.ring.push(*obs);
        } else {
            self.ring[self.next] = *obs;
            // Not `%`: a division for every event showed in the profile.
            self.next += 1;
            if self.next == self.ring_cap {
                self.next = 0;
            }
        }
    }

    /// The kept events in processing order, as two slices.
    fn kept(&self) -> (&[Obs], &[Obs]) {
        let (new, old) = self.ring.split_at(self.next);
        (old, new)
    }

    /// Stops collecting context (the trace ended).
    pub fn close(&mut self) {
        self.collectors.clear();
    }

    /// A late event (`late`, keyed at `key`) was processed: the anomalies judged before it
    /// that it could have changed are in doubt. Only an event the anomaly's rule reads can
    /// change it, and only if it is at or before the anomaly's end:
    /// - an operation that changes which names exist (create, mkdir, unlink, rmdir, rename,
    ///   exchange) on the name or a directory above it: the history the existence rules and
    ///   the clear's `d_delete` read;
    /// - any operation on the name itself for `result-differs`: the matcher numbered the
    ///   name's operations without it;
    /// - a writer probe on the dentry, the name or a directory above it;
    /// - a lookup on the dentry for the `d_seq` kinds, which read its `d_seq` values.
    ///
    /// An observation (stat, open, readdir, a lookup) only proves a name existed, and a
    /// `drop_caches` changes no name's existence: neither can excuse an ENOENT or a NULL
    /// inode, so they set none of those aside.
    pub fn late(&mut self, late: &Obs, key: u64) {
        let judged = &mut self.judged;
        let detailed_in_doubt = &mut self.detailed_in_doubt;
        let mut mark = |i: u32, applies: &dyn Fn(AnomalyKind) -> bool| {
            let j = &mut judged[i as usize];
            if j.doubt.is_none() && key <= j.reach && applies(j.kind) {
                j.doubt = Some(Doubt::LateEvent);
                if j.detailed.is_some() {
                    *detailed_in_doubt += 1;
                }
            }
        };
        let names = [Some(late.path), late.path2].into_iter().flatten();
        match late.op {
            Some(k) if writes(k) => {
                for p in names {
                    for &i in self.below.get(&p).into_iter().flatten() {
                        mark(i, &|_| true);
                    }
                }
            }
            Some(_) => {
                for p in names {
                    for &i in self.on_name.get(&p).into_iter().flatten() {
                        mark(i, &|kind| kind == AnomalyKind::ResultDiffers);
                    }
                }
            }
            None => {
                let writer = !matches!(late.probe, Probe::DLookupRcu | Probe::DLookup);
                if writer {
                    for p in names {
                        for &i in self.below.get(&p).into_iter().flatten() {
                            mark(i, &|_| true);
                        }
                    }
                }
                if late.dentry != 0 {
                    for &i in self.on_slot.get(&late.slot).into_iter().flatten() {
                        mark(i, &|kind| writer || reads_d_seq(kind));
                    }
                }
            }
        }
    }

    /// The trace ends at key `end` cut short or unfinished: the anomalies reaching within
    /// `bound` of it are in doubt.
    pub fn cut(&mut self, end: u64, bound: u64) {
        for j in &mut self.judged {
            if j.doubt.is_none() && j.reach.saturating_add(bound) >= end {
                j.doubt = Some(Doubt::NearCut);
            }
        }
    }

    /// Takes the anomalies in doubt out of the counts and the details (once every event is
    /// processed and no context is collected any more).
    pub fn set_aside(&mut self, paths: &Paths) -> SetAside {
        let mut out = SetAside::default();
        let mut dropped = vec![false; self.anomalies.len()];
        for j in self.judged.iter().filter(|j| j.doubt.is_some()) {
            let Some(doubt) = j.doubt else { continue };
            if let Some(n) = self.counts.get_mut(&j.kind) {
                *n -= 1;
            }
            match j.detailed {
                Some(i) => dropped[i] = true,
                None => self.not_detailed -= 1,
            }
            let (kinds, examples) = out.by_doubt.entry(doubt).or_default();
            *kinds.entry(j.kind).or_insert(0) += 1;
            if examples.len() < SET_ASIDE_EXAMPLES {
                examples.push(format!(
                    "{} on {} at {} ns",
                    j.kind.name(),
                    paths.render(j.path),
                    j.ts_begin
                ));
            }
        }
        self.counts.retain(|_, n| *n > 0);
        let mut i = 0;
        self.anomalies.retain(|_| {
            i += 1;
            !dropped[i - 1]
        });
        // The reserve's details beyond the limit: counted, not detailed.
        let over = self.anomalies.len().saturating_sub(self.max_anomalies);
        self.anomalies.truncate(self.max_anomalies);
        self.not_detailed += over as u64;
        out
    }

    /// Counts an anomaly on `subject` and details it with its context while under the limit.
    pub fn add(
        &mut self,
        kind: AnomalyKind,
        subject: &Obs,
        operation: String,
        v: Ruling,
        paths: &Paths,
    ) {
        *self.counts.entry(kind).or_insert(0) += 1;
        // A late event may set aside anomalies detailed before later ones were counted: a
        // reserve of as many again as the limit is detailed, and those already set aside
        // leave room (up to four times the limit, so the details stay bounded). `set_aside`
        // trims back to the limit once the doubts are known.
        let detailed = self.anomalies.len() - self.detailed_in_doubt
            < self.max_anomalies.saturating_mul(2)
            && self.anomalies.len() < self.max_anomalies.saturating_mul(4);
        let at = self.judged.len() as u32;
        self.on_name.entry(subject.path).or_default().push(at);
        let mut cur = Some(subject.path);
        while let Some(c) = cur {
            self.below.entry(c).or_default().push(at);
            cur = paths.parent(c);
        }
        if subject.dentry != 0 {
            self.on_slot.entry(subject.slot).or_default().push(at);
        }
        self.judged.push(Judged {
            kind,
            path: subject.path,
            ts_begin: subject.ts_begin,
            reach: subject.ts_end,
            detailed: detailed.then_some(self.anomalies.len()),
            doubt: None,
        });
        if !detailed {
            self.not_detailed += 1;
            return;
        }
        let n = self.context as u64;
        let (a, b) = self.kept();
        let at = if a.last().is_some_and(|o| o.n < subject.n) {
            a.len() + b.partition_point(|o| o.n < subject.n)
        } else {
            a.partition_point(|o| o.n < subject.n)
        };
        let before_start = at.saturating_sub(self.context);
        let mut context: Vec<ContextLine> = a
            .iter()
            .chain(b)
            .skip(before_start)
            .take(at - before_start)
            .filter(|o| o.n + n >= subject.n)
            .map(|o| line(o, subject, paths))
            .collect();
        context.push(line(subject, subject, paths));
        let after: Vec<ContextLine> = a
            .iter()
            .chain(b)
            .skip(at)
            .filter(|o| o.n > subject.n)
            .take(self.context)
            .map(|o| line(o, subject, paths))
            .collect();
        let need = self.context - after.len();
        context.extend(after);
        let index = self.anomalies.len();
        self.anomalies.push(Anomaly {
            side: self.side,
            kind,
            name: paths.render(subject.path),
            operation,
            tid: subject.tid,
            ts_begin: subject.ts_begin,
            ts_end: subject.ts_end,
            dentry: (subject.dentry != 0).then_some(subject.dentry),
            generation: (subject.dentry != 0).then_some(subject.generation),
            why: v.why,
            evidence: v.evidence,
            context,
        });
        if need > 0 {
            self.collectors.push(Collector {
                index,
                need,
                subject: *subject,
            });
        }
    }
}

/// The kinds whose rule reads a dentry's `d_seq` values, which a lookup also reports.
fn reads_d_seq(kind: AnomalyKind) -> bool {
    matches!(
        kind,
        AnomalyKind::SeqDelta | AnomalyKind::SeqDecreased | AnomalyKind::ValidatedFlag
    )
}

/// One event of an anomaly's context.
fn line(o: &Obs, subject: &Obs, paths: &Paths) -> ContextLine {
    let name = match o.path2 {
        Some(p2) => format!("{} -> {}", paths.render(o.path), paths.render(p2)),
        None => paths.render(o.path),
    };
    ContextLine {
        ts_begin: o.ts_begin,
        ts_end: o.ts_end,
        tid: o.tid,
        event: match o.op {
            Some(k) => k.name().into(),
            None => o.probe.symbol().into(),
        },
        name,
        dentry: (o.dentry != 0).then_some(o.dentry),
        generation: (o.dentry != 0).then_some(o.generation),
        seq_begin: o.seq_begin,
        seq_end: o.seq_end,
        inode_begin: o.inode_begin,
        inode_end: o.inode_end,
        flags: flag_text(o.flags),
        result: o.op.map(|_| o.result),
        subject: o.n == subject.n,
        related: (o.dentry != 0 && o.dentry == subject.dentry)
            || o.path == subject.path
            || o.path2 == Some(subject.path),
    }
}

pub fn flag_text(f: u16) -> String {
    [
        (flags::HASHED_BEGIN, 'H'),
        (flags::HASHED_END, 'h'),
        (flags::VALIDATED, 'V'),
        (flags::NAME_TRUNCATED, 'T'),
        (flags::READ_FAULT, 'F'),
        (flags::NO_ENTRY, 'E'),
    ]
    .iter()
    .filter(|(bit, _)| f & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// An event's fields as JSON (timeline args, evidence).
pub fn obs_args(o: &Obs, paths: &Paths) -> Value {
    match o.op {
        Some(k) => json!({
            "operation": k.name(),
            "name": paths.render(o.path),
            "new_name": o.path2.map(|p| paths.render(p)),
            "result": o.result,
            "tid": o.tid,
            "ts_begin": o.ts_begin,
            "ts_end": o.ts_end,
        }),
        None => json!({
            "probe": o.probe.symbol(),
            "name": paths.render(o.path),
            "dentry": o.dentry,
            "generation": o.generation,
            "seq_begin": o.seq_begin,
            "seq_end": o.seq_end,
            "inode_begin": o.inode_begin,
            "inode_end": o.inode_end,
            "flags": flag_text(o.flags),
            "tid": o.tid,
            "ts_begin": o.ts_begin,
            "ts_end": o.ts_end,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{align::ROOT, classify::Class};

    fn obs(n: u64) -> Obs {
        Obs {
            n,
            ts_begin: n,
            ts_end: n,
            tid: 1,
            probe: Probe::DLookupRcu,
            op: None,
            path: 0,
            path2: None,
            dentry: 0,
            slot: 0,
            generation: 0,
            seq_begin: 0,
            seq_end: 0,
            inode_begin: 0,
            inode_end: 0,
            flags: 0,
            result: 0,
        }
    }

    /// Once the ring has wrapped, an anomaly's context still comes in processing order,
    /// across the point where the ring's oldest and newest meet, and the events after it are
    /// collected as they come.
    #[test]
    fn context_is_in_order_across_the_ring_s_wrap() {
        let paths = Paths::default();
        let mut e = Evidence::new(Side::Kernel, 2, 10);
        let cap = e.ring_cap as u64;
        for n in 1..=cap + 900 {
            e.keep(&obs(n), &paths);
        }
        let ruling = || Ruling {
            class: Class::Anomaly,
            why: String::new(),
            evidence: serde_json::Map::new(),
        };
        let ts = |a: &Anomaly| a.context.iter().map(|c| c.ts_begin).collect::<Vec<_>>();
        // The last event before the wrap point, with its context on both sides of it.
        e.add(
            AnomalyKind::SeqDelta,
            &obs(cap),
            String::new(),
            ruling(),
            &paths,
        );
        assert_eq!(
            ts(&e.anomalies[0]),
            vec![cap - 2, cap - 1, cap, cap + 1, cap + 2]
        );
        // The newest event: its context after it comes with the next events.
        e.add(
            AnomalyKind::SeqDelta,
            &obs(cap + 900),
            String::new(),
            ruling(),
            &paths,
        );
        e.keep(&obs(cap + 901), &paths);
        e.keep(&obs(cap + 902), &paths);
        let last = cap + 900;
        assert_eq!(
            ts(&e.anomalies[1]),
            vec![last - 2, last - 1, last, last + 1, last + 2]
        );
        // Older than the ring: nothing before it, after it the oldest events still kept.
        e.add(
            AnomalyKind::SeqDelta,
            &obs(800),
            String::new(),
            ruling(),
            &paths,
        );
        assert_eq!(ts(&e.anomalies[2]), vec![800, 903, 904]);
    }

    /// A late event sets aside only the anomalies its kind can explain, and only those on
    /// the names it reaches: a `drop_caches` (the root's empty path) or a stat none of the
    /// existence ones, an unlink of a directory those below it, a stat a `result-differs` on
    /// its own name, a lookup a `d_seq` finding on its dentry.
    #[test]
    fn a_late_event_sets_aside_what_its_rule_reads() {
        let mut paths = Paths::default();
        let (ax, by) = (paths.parse(b"a/x"), paths.parse(b"b/y"));
        let a = paths.parse(b"a");
        let ruling = || Ruling {
            class: Class::Anomaly,
            why: String::new(),
            evidence: serde_json::Map::new(),
        };
        let mut e = Evidence::new(Side::Kernel, 0, 10);
        let at = |path, dentry, slot| Obs {
            path,
            dentry,
            slot,
            ts_end: 100,
            ..obs(50)
        };
        let op = |kind, path| Obs {
            op: Some(kind),
            probe: Probe::Op,
            ..at(path, 0, 0)
        };
        e.add(
            AnomalyKind::SpuriousEnoent,
            &at(ax, 0, 0),
            String::new(),
            ruling(),
            &paths,
        );
        e.add(
            AnomalyKind::ResultDiffers,
            &at(by, 0, 0),
            String::new(),
            ruling(),
            &paths,
        );
        e.add(
            AnomalyKind::SeqDelta,
            &at(by, 7, 3),
            String::new(),
            ruling(),
            &paths,
        );
        let doubted = |e: &Evidence| {
            e.judged
                .iter()
                .map(|j| j.doubt.is_some())
                .collect::<Vec<_>>()
        };
        e.late(&op(OpKind::DropCaches, ROOT), 10);
        e.late(&op(OpKind::Stat, ax), 10);
        e.late(&op(OpKind::Stat, a), 10);
        assert_eq!(doubted(&e), [false, false, false]);
        e.late(&op(OpKind::Unlink, a), 10);
        assert_eq!(doubted(&e), [true, false, false]);
        e.late(&op(OpKind::Stat, by), 10);
        assert_eq!(doubted(&e), [true, true, false]);
        e.late(&at(by, 7, 3), 10);
        assert_eq!(doubted(&e), [true, true, true]);
    }
}
