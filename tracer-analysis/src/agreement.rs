//! Event agreement: does the model do, operation by operation, what the kernel's probes saw?
//! For every operation the kernel trace holds, the probe events inside it (same thread, inside
//! its begin/end) become a sequence of signatures — function, `d_seq` parity at exit, inode NULL
//! or not at exit, hashed at exit — and the model trace's events for the same operation (a
//! replay `--against` the kernel trace keeps its threads and spans) must give the same
//! sequence. Only the probes both traces have shown take part (a probe counts from the first
//! time both sides have recorded it), so a probe one side lacks is not counted as a difference.
//!
//! [`Builder`] takes both traces' events as they stream (in any order within a time window)
//! and keeps only what that window holds: `tracer diff` computes the agreement in its pass.
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap},
    fmt,
};

use serde::{Serialize, Serializer};
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

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}, {}, {})",
            self.probe.symbol(),
            if self.seq_odd { "odd" } else { "even" },
            if self.inode_null { "NULL" } else { "inode" },
            if self.hashed { "hashed" } else { "unhashed" }
        )
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Agreement of one operation kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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

/// One operation whose two sequences differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    #[serde(serialize_with = "op_name")]
    pub kind: OpKind,
    pub path: String,
    pub tid: u32,
    pub ts_begin: u64,
    pub kernel: Vec<Signature>,
    pub model: Vec<Signature>,
}

/// The agreement of two traces of one workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Agreement {
    pub total: Share,
    #[serde(serialize_with = "per_op_names")]
    pub per_op: BTreeMap<OpKind, Share>,
    /// Kernel operations with no model operation of the same thread and begin time.
    pub unmatched: u64,
    /// The probes compared (recorded by both sides).
    #[serde(serialize_with = "probe_symbols")]
    pub probes: Vec<Probe>,
    /// The first differing operations, in the order they were compared.
    pub examples: Vec<Disagreement>,
}

fn op_name<S: Serializer>(k: &OpKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

fn per_op_names<S: Serializer>(m: &BTreeMap<OpKind, Share>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(k, v)| (k.name(), v)))
}

fn probe_symbols<S: Serializer>(p: &[Probe], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(p.iter().map(|p| p.symbol()))
}

/// Differing operations a text report shows (report.json holds all the examples kept).
const TEXT_EXAMPLES: usize = 5;

impl fmt::Display for Agreement {
    /// One line with the total and each kind's share, then the first examples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self
            .per_op
            .iter()
            .map(|(k, s)| format!("{} {:.1} %", k.name(), 100.0 * s.ratio()))
            .collect();
        writeln!(
            f,
            "event agreement: {}/{} operations ({:.1} %){}{}; kernel operations without a model twin: {}",
            self.total.agree,
            self.total.ops,
            100.0 * self.total.ratio(),
            if kinds.is_empty() { "" } else { ": " },
            kinds.join(", "),
            self.unmatched
        )?;
        if !self.examples.is_empty() {
            writeln!(
                f,
                "operations whose probe events differ ({} of {}):",
                self.examples.len().min(TEXT_EXAMPLES),
                self.total.ops - self.total.agree
            )?;
        }
        for d in self.examples.iter().take(TEXT_EXAMPLES) {
            let seq = |v: &[Signature]| {
                v.iter()
                    .map(Signature::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            writeln!(
                f,
                "  {} {} (thread {}, at {:.9}s)\n    kernel: {}\n    model:  {}",
                d.kind.name(),
                d.path,
                d.tid,
                d.ts_begin as f64 / 1e9,
                seq(&d.kernel),
                seq(&d.model)
            )?;
        }
        Ok(())
    }
}

/// A finished operation of one side, waiting for its twin.
struct Done {
    kind: OpKind,
    path: String,
    sigs: Vec<Signature>,
}

/// One thread's probe events not yet given to an operation: (end, arrival) → (begin, signature).
type Pending = BTreeMap<(u64, u64), (u64, Signature)>;

/// One trace's operations and probe events not yet paired.
#[derive(Default)]
struct SideState {
    /// Probe events per thread not yet given to an operation, by (end, arrival): an
    /// operation takes the ones that ended by its end in one split.
    events: HashMap<u32, Pending>,
    arrivals: u64,
    /// Operations arrived and not finished, per thread.
    open_per_tid: HashMap<u32, usize>,
    /// Operations waiting for their events, the earliest end first: (end, tid, begin, index).
    open: BinaryHeap<Reverse<(u64, u32, u64, usize)>>,
    /// Their kinds and paths, by the index in `open`.
    ops: HashMap<usize, (OpKind, String)>,
    next_op: usize,
    /// The latest begin time seen.
    newest: u64,
    seen: BTreeSet<Probe>,
    /// Finished operations whose twin has not come yet.
    done: HashMap<(u32, u64), Done>,
}

impl SideState {
    fn push(&mut self, e: &Event) {
        let Some(probe) = e.probe() else { return };
        self.newest = self.newest.max(e.ts_begin);
        if probe == Probe::Op {
            let Some(kind) = OpKind::from_u32(e.aux) else {
                return;
            };
            let path = String::from_utf8_lossy(e.name_bytes()).replace('\0', " -> ");
            self.ops.insert(self.next_op, (kind, path));
            *self.open_per_tid.entry(e.tid).or_default() += 1;
            self.open
                .push(Reverse((e.ts_end, e.tid, e.ts_begin, self.next_op)));
            self.next_op += 1;
        } else {
            self.seen.insert(probe);
            self.arrivals += 1;
            self.events.entry(e.tid).or_default().insert(
                (e.ts_end, self.arrivals),
                (e.ts_begin, Signature::of(e, probe)),
            );
        }
    }

    /// Finishes the operations that ended more than `window_ns` before the newest event (all,
    /// with `None`): their events have all come.
    fn ready(&mut self, window_ns: Option<u64>) -> Vec<((u32, u64), Done)> {
        let mut out = Vec::new();
        while let Some(&Reverse((end, tid, begin, i))) = self.open.peek() {
            if window_ns.is_some_and(|w| end.saturating_add(w) >= self.newest) {
                break;
            }
            self.open.pop();
            if let Some(n) = self.open_per_tid.get_mut(&tid) {
                *n = n.saturating_sub(1);
            }
            let Some((kind, path)) = self.ops.remove(&i) else {
                continue;
            };
            // A thread's operations end in program order, so what ended before this one
            // and lies outside it belongs to no operation.
            let mut sigs = Vec::new();
            if let Some(list) = self.events.get_mut(&tid) {
                let later = list.split_off(&(end.saturating_add(1), 0));
                let ended = std::mem::replace(list, later);
                let mut inside: Vec<(u64, Signature)> =
                    ended.into_values().filter(|&(b, _)| b >= begin).collect();
                inside.sort_by_key(|&(b, _)| b);
                sigs = inside.into_iter().map(|(_, s)| s).collect();
            }
            out.push(((tid, begin), Done { kind, path, sigs }));
        }
        out
    }
}

/// Events between two sweeps of [`SideState::forget_orphans`].
const SWEEP_EVERY: u64 = 1024;

impl SideState {
    /// Drops the events of threads with no operation open that ended more than `window_ns`
    /// before the newest: their operation has come and gone (an operation arrives at most a
    /// window after its end), or there is none (a kernel thread's kill, the setup's events).
    fn forget_orphans(&mut self, window_ns: u64) {
        let horizon = self.newest.saturating_sub(window_ns);
        for (tid, list) in self.events.iter_mut() {
            if self.open_per_tid.get(tid).is_some_and(|n| *n > 0) {
                continue;
            }
            *list = list.split_off(&(horizon, 0));
        }
        self.events.retain(|_, l| !l.is_empty());
    }
}

/// Builds an [`Agreement`] from two event streams.
pub struct Builder {
    /// Kernel, model.
    sides: [SideState; 2],
    window_ns: u64,
    max_examples: usize,
    result: Agreement,
}

/// Which stream an event is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Kernel = 0,
    Model = 1,
}

impl Builder {
    /// `window_ns`: how far behind the newest begin time an event of an operation may arrive;
    /// `max_examples`: differing operations kept.
    pub fn new(window_ns: u64, max_examples: usize) -> Builder {
        Builder {
            sides: [SideState::default(), SideState::default()],
            window_ns,
            max_examples,
            result: Agreement::default(),
        }
    }

    pub fn push(&mut self, stream: Stream, e: &Event) {
        let i = stream as usize;
        self.sides[i].push(e);
        if self.sides[i].arrivals.is_multiple_of(SWEEP_EVERY) {
            self.sides[i].forget_orphans(self.window_ns);
        }
        for (key, done) in self.sides[i].ready(Some(self.window_ns)) {
            self.pair(i, key, done);
        }
    }

    fn pair(&mut self, i: usize, key: (u32, u64), done: Done) {
        let Some(twin) = self.sides[1 - i].done.remove(&key) else {
            self.sides[i].done.insert(key, done);
            return;
        };
        let (k, m) = if i == 0 { (done, twin) } else { (twin, done) };
        let both: BTreeSet<Probe> = self.sides[0]
            .seen
            .intersection(&self.sides[1].seen)
            .copied()
            .collect();
        let keep = |v: Vec<Signature>| -> Vec<Signature> {
            v.into_iter().filter(|s| both.contains(&s.probe)).collect()
        };
        let (ks, ms) = (keep(k.sigs), keep(m.sigs));
        let same = ks == ms;
        for s in [
            &mut self.result.total,
            self.result.per_op.entry(k.kind).or_default(),
        ] {
            s.ops += 1;
            s.agree += u64::from(same);
        }
        if !same && self.result.examples.len() < self.max_examples {
            self.result.examples.push(Disagreement {
                kind: k.kind,
                path: k.path,
                tid: key.0,
                ts_begin: key.1,
                kernel: ks,
                model: ms,
            });
        }
    }

    pub fn finish(mut self) -> Agreement {
        for i in 0..2 {
            for (key, done) in self.sides[i].ready(None) {
                self.pair(i, key, done);
            }
        }
        self.result.unmatched = self.sides[0].done.len() as u64;
        self.result.probes = self.sides[0]
            .seen
            .intersection(&self.sides[1].seen)
            .copied()
            .collect();
        self.result
    }
}

/// Compares `model` (a replay against the kernel trace) with `kernel`, operation by operation,
/// whole traces in memory, keeping up to `max_examples` differing operations.
pub fn agreement(kernel: &[Event], model: &[Event], max_examples: usize) -> Agreement {
    let mut b = Builder::new(u64::MAX, max_examples);
    for e in kernel {
        b.push(Stream::Kernel, e);
    }
    for e in model {
        b.push(Stream::Model, e);
    }
    b.finish()
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
        ev.set_name(b"d/f");
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
        let a = agreement(&kernel, &model, 10);
        assert_eq!(a.total, Share { ops: 2, agree: 1 });
        assert_eq!(a.unmatched, 1, "thread 2's op has no model twin");
        assert_eq!(a.probes, vec![Probe::DLookupRcu]);
        assert_eq!(a.per_op[&OpKind::Stat].ratio(), 0.5);
        assert_eq!(a.examples.len(), 1);
        let d = &a.examples[0];
        assert_eq!((d.tid, d.ts_begin, d.path.as_str()), (1, 30, "d/f"));
        assert_eq!(
            d.kernel[0].to_string(),
            "__d_lookup_rcu(even, inode, unhashed)"
        );
        assert_eq!(
            d.model[0].to_string(),
            "__d_lookup_rcu(even, NULL, unhashed)"
        );
    }

    /// Streamed with a window, events that arrive after their operation (the kernel writes an
    /// operation at its end, a probe event may come later from another CPU's buffer) still
    /// count, and the state held stays within the window.
    #[test]
    fn a_streamed_agreement_waits_a_window_for_late_events() {
        let mut b = Builder::new(100, 10);
        let (mut t, mut held) = (0, 0);
        for i in 0..5_000u64 {
            let begin = 1_000 + i * 50;
            // The kernel's probe event comes after its operation; the model's before.
            b.push(Stream::Kernel, &op(1, begin, begin + 20));
            b.push(
                Stream::Kernel,
                &probe(1, begin + 5, Probe::DLookupRcu, 2, 7),
            );
            b.push(Stream::Model, &probe(1, begin + 6, Probe::DLookupRcu, 2, 7));
            b.push(Stream::Model, &op(1, begin, begin + 20));
            // A thread that runs no operation (a kernel worker's kill).
            b.push(
                Stream::Kernel,
                &probe(99, begin + 7, Probe::DentryKill, 2, 0),
            );
            t = t.max(
                b.sides
                    .iter()
                    .map(|s| s.ops.len() + s.done.len())
                    .sum::<usize>(),
            );
            held = held.max(b.sides[0].events.values().map(BTreeMap::len).sum::<usize>());
        }
        assert!(t <= 12, "held at most a window's operations, held {t}");
        assert!(
            held <= SWEEP_EVERY as usize,
            "held at most a sweep's events, held {held}"
        );
        let a = b.finish();
        assert_eq!(
            a.total,
            Share {
                ops: 5_000,
                agree: 5_000
            }
        );
        assert_eq!(a.unmatched, 0);
        assert!(a.examples.is_empty());
    }
}
