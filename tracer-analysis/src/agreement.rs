//! Event agreement: does the model do, operation by operation, what the kernel's probes saw?
//! For every operation the kernel trace holds, the probe events inside it (same thread, inside
//! its begin/end) become a sequence of signatures — function, `d_seq` parity at exit, inode NULL
//! or not at exit, hashed at exit — and the model trace's events for the same operation (a
//! replay `--against` the kernel trace keeps its threads and spans) must give the same
//! sequence. Only the probes both traces recorded take part, so a probe one side lacks is not
//! counted as a difference.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use tracer_common::{flags, Event, OpKind, Probe};

/// What one probe event says, for comparing the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    pub probe: Probe,
    pub seq_odd: bool,
    pub inode_null: bool,
    pub hashed: bool,
}

impl Signature {
    fn of(e: &Event, probe: Probe) -> Signature {
        Signature {
            probe,
            seq_odd: e.seq_end & 1 == 1,
            inode_null: e.inode_end == 0,
            hashed: e.has(flags::HASHED_END),
        }
    }
}

/// Agreement of one operation kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// Operations found on both sides.
    pub ops: u64,
    /// Of those, the ones whose signature sequences are equal.
    pub agree: u64,
}

impl Share {
    /// `agree / ops`, 1 when there is nothing to compare.
    pub fn ratio(&self) -> f64 {
        if self.ops == 0 {
            1.0
        } else {
            self.agree as f64 / self.ops as f64
        }
    }
}

/// The agreement of two traces of one workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    pub total: Share,
    pub per_op: BTreeMap<OpKind, Share>,
    /// Kernel operations with no model operation of the same thread and begin time.
    pub unmatched: u64,
    /// The probes compared (recorded by both sides).
    pub probes: Vec<Probe>,
}

/// Each operation's (thread, begin) and its probe signatures, in time order.
fn per_op(
    events: &[Event],
    probes: &BTreeSet<Probe>,
) -> HashMap<(u32, u64), (OpKind, Vec<Signature>)> {
    let mut ops: Vec<&Event> = events
        .iter()
        .filter(|e| e.probe() == Some(Probe::Op))
        .collect();
    ops.sort_by_key(|e| (e.tid, e.ts_begin));
    let mut by_tid: HashMap<u32, Vec<&Event>> = HashMap::new();
    for e in events {
        if e.probe().is_some_and(|p| probes.contains(&p)) {
            by_tid.entry(e.tid).or_default().push(e);
        }
    }
    for v in by_tid.values_mut() {
        v.sort_by_key(|e| e.ts_begin);
    }
    let mut out = HashMap::new();
    for op in ops {
        let Some(kind) = OpKind::from_u32(op.aux) else {
            continue;
        };
        let sigs = by_tid
            .get(&op.tid)
            .map(|v| {
                v.iter()
                    .filter(|e| op.ts_begin <= e.ts_begin && e.ts_end <= op.ts_end)
                    .filter_map(|e| e.probe().map(|p| Signature::of(e, p)))
                    .collect()
            })
            .unwrap_or_default();
        out.insert((op.tid, op.ts_begin), (kind, sigs));
    }
    out
}

/// Compares `model` (a replay against the kernel trace) with `kernel`, operation by operation.
pub fn agreement(kernel: &[Event], model: &[Event]) -> Agreement {
    let seen = |events: &[Event]| -> BTreeSet<Probe> {
        events
            .iter()
            .filter_map(Event::probe)
            .filter(|p| *p != Probe::Op)
            .collect()
    };
    let probes: BTreeSet<Probe> = seen(kernel).intersection(&seen(model)).copied().collect();
    let k = per_op(kernel, &probes);
    let m = per_op(model, &probes);
    let mut a = Agreement {
        probes: probes.iter().copied().collect(),
        ..Agreement::default()
    };
    for (key, (kind, ksigs)) in &k {
        let Some((_, msigs)) = m.get(key) else {
            a.unmatched += 1;
            continue;
        };
        let same = ksigs == msigs;
        for s in [&mut a.total, a.per_op.entry(*kind).or_default()] {
            s.ops += 1;
            s.agree += u64::from(same);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(tid: u32, b: u64, e: u64) -> Event {
        let mut ev = Event::zeroed();
        ev.probe = Probe::Op as u8;
        ev.aux = OpKind::Stat as u32;
        ev.tid = tid;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev
    }

    fn probe(tid: u32, t: u64, p: Probe, seq: u32, inode: u64) -> Event {
        let mut ev = Event::zeroed();
        ev.probe = p as u8;
        ev.tid = tid;
        ev.ts_begin = t;
        ev.ts_end = t + 1;
        ev.seq_end = seq;
        ev.inode_end = inode;
        ev
    }

    #[test]
    fn operations_agree_when_their_probe_signatures_do() {
        let kernel = vec![
            op(1, 10, 20),
            probe(1, 12, Probe::DLookupRcu, 2, 5),
            op(1, 30, 40),
            probe(1, 32, Probe::DLookupRcu, 4, 5),
            // A probe the model never records does not count.
            probe(1, 33, Probe::DentryIput, 4, 0),
            op(2, 50, 60),
        ];
        let model = vec![
            op(1, 10, 20),
            probe(1, 11, Probe::DLookupRcu, 2, 5),
            op(1, 30, 40),
            probe(1, 35, Probe::DLookupRcu, 4, 0),
        ];
        let a = agreement(&kernel, &model);
        assert_eq!(a.total, Share { ops: 2, agree: 1 });
        assert_eq!(a.unmatched, 1, "thread 2's op has no model twin");
        assert_eq!(a.probes, vec![Probe::DLookupRcu]);
        assert_eq!(a.per_op[&OpKind::Stat].ratio(), 0.5);
    }
}
