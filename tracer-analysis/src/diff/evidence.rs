//! What the report shows of each anomaly: the events kept after processing (a bounded ring),
//! the context window around an anomaly's event (the events before it from the ring, the
//! events after it as they come), and the per-kind counts.
use std::collections::{BTreeMap, VecDeque};

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
    ring: VecDeque<Obs>,
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
            ring: VecDeque::new(),
            ring_cap: 4096 + 2 * context,
            collectors: Vec::new(),
            anomalies: Vec::new(),
            counts: BTreeMap::new(),
            not_detailed: 0,
        }
    }

    /// A processed event: context for the anomalies still collecting, and for later ones.
    pub fn keep(&mut self, obs: Obs, paths: &Paths) {
        if !self.collectors.is_empty() {
            for c in &mut self.collectors {
                if let Some(a) = self.anomalies.get_mut(c.index) {
                    a.context.push(line(&obs, &c.subject, paths));
                }
                c.need -= 1;
            }
            self.collectors.retain(|c| c.need > 0);
        }
        self.ring.push_back(obs);
        if self.ring.len() > self.ring_cap {
            self.ring.pop_front();
        }
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
        let at = self.ring.partition_point(|o| o.n < subject.n);
        let before_start = at.saturating_sub(self.context);
        let mut context: Vec<ContextLine> = self
            .ring
            .range(before_start..at)
            .filter(|o| o.n + n >= subject.n)
            .map(|o| line(o, subject, paths))
            .collect();
        context.push(line(subject, subject, paths));
        let after: Vec<ContextLine> = self
            .ring
            .iter()
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
