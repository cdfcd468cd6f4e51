//! What the report shows of each anomaly: the events kept after processing (a bounded ring),
//! the context window around an anomaly's event (the events before it from the ring, the
//! events after it as they come), and the per-kind counts.
use std::collections::BTreeMap;

use serde_json::{json, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{PathId, Paths},
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
    /// Detailed anomalies (the first `max_anomalies`).
    pub anomalies: Vec<Anomaly>,
    /// Every anomaly, per kind.
    pub counts: BTreeMap<AnomalyKind, u64>,
    /// Anomalies counted but not detailed.
    pub not_detailed: u64,
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
        if self.anomalies.len() >= self.max_anomalies {
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
    use crate::diff::classify::Class;

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
}
