//! Event agreement: does the model do, operation by operation, what the kernel's probes saw?
//! For every operation the kernel trace holds, the probe events inside it (same thread, inside
//! its begin/end) become a sequence of signatures — function, `d_seq` parity at exit, inode NULL
//! or not at exit, hashed at exit — and the model trace's events for the same operation (a
//! replay `--against` the kernel trace keeps its threads and spans) must give the same
//! sequence. Only the probes both traces have shown take part (a probe counts from the first
//! time both sides have recorded it), so a probe one side lacks is not counted as a difference.
//! The kill path's two probes ([`Probe::is_kill`]) take part as one: a kernel shows
//! `dentry_kill` or `__dentry_kill` by release and build, the model emits `__dentry_kill`.
//!
//! [`Builder`] takes each trace's events in time order (an operation before the events inside
//! it), as `tracer diff` processes them after its reorder window, and holds only each thread's
//! current operation and the operations waiting for their twin.
use std::{collections::BTreeMap, fmt};

use foldhash::HashMap;

use crate::codes::{op_of, probe_of};

use serde::{Serialize, Serializer};
use tracer_common::{flags, Event, OpKind, Probe, NAME_CAP};

/// What one probe event says, for comparing the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    pub probe: Probe,
    pub seq_odd: bool,
    pub inode_null: bool,
    pub hashed: bool,
}

/// What the agreement reads of an event (the diff holds its events in a compact form of its
/// own; [`From<&Event>`] gives it for a trace's).
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub probe: u8,
    pub aux: u32,
    pub tid: u32,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub seq_end: u32,
    pub inode_end: u64,
    pub flags: u16,
    /// The recorded name (an operation's path; only operations' are read).
    pub name: &'a [u8],
}

impl<'a> From<&'a Event> for Seen<'a> {
    fn from(e: &'a Event) -> Seen<'a> {
        Seen {
            probe: e.probe,
            aux: e.aux,
            tid: e.tid,
            ts_begin: e.ts_begin,
            ts_end: e.ts_end,
            seq_end: e.seq_end,
            inode_end: e.inode_end,
            flags: e.flags,
            name: e.name_bytes(),
        }
    }
}

/// The probe a signature is compared under: the kill path's, whatever its name.
fn compared_as(probe: Probe) -> Probe {
    if probe.is_kill() {
        Probe::DentryKill
    } else {
        probe
    }
}

impl Signature {
    fn of(e: &Seen<'_>, probe: Probe) -> Signature {
        Signature {
            probe: compared_as(probe),
            seq_odd: e.seq_end & 1 == 1,
            inode_null: e.inode_end == 0,
            hashed: e.flags & flags::HASHED_END != 0,
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}, {}, {})",
            if self.probe.is_kill() {
                KILL_PATH
            } else {
                self.probe.symbol()
            },
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

/// How a kill's signature reads, under either name.
const KILL_PATH: &str = "kill path";

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
    /// The probes compared (recorded by both sides; a kill path's probe when both sides
    /// recorded either).
    #[serde(serialize_with = "probe_symbols")]
    pub probes: Vec<Probe>,
    /// Probes only the model recorded: the kernel's build inlines them into their callers (its
    /// attached out-of-line copy never fires: Debian 6.1's `__d_drop`), cannot attach them, or
    /// never called them. The model emits the source's calls; these are left out of the
    /// comparison.
    #[serde(serialize_with = "probe_symbols")]
    pub model_only: Vec<Probe>,
    /// Probes only the kernel recorded (functions the model does not have, or calls it does
    /// not make).
    #[serde(serialize_with = "probe_symbols")]
    pub kernel_only: Vec<Probe>,
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
        let symbols = |p: &[Probe]| p.iter().map(|p| p.symbol()).collect::<Vec<_>>().join(", ");
        if !self.model_only.is_empty() {
            writeln!(
                f,
                "  not compared, model only (inlined into callers, not attachable or not called in the kernel): {}",
                symbols(&self.model_only)
            )?;
        }
        if !self.kernel_only.is_empty() {
            writeln!(
                f,
                "  not compared, kernel only: {}",
                symbols(&self.kernel_only)
            )?;
        }
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

impl Signature {
    /// One byte: the probe code and the three bits (codes stay below 32).
    fn code(self) -> u8 {
        ((self.probe as u8) << 3)
            | u8::from(self.seq_odd) << 2
            | u8::from(self.inode_null) << 1
            | u8::from(self.hashed)
    }

    fn from_code(c: u8) -> Option<Signature> {
        Some(Signature {
            probe: Probe::from_u8(c >> 3)?,
            seq_odd: c & 4 != 0,
            inode_null: c & 2 != 0,
            hashed: c & 1 != 0,
        })
    }
}

/// An operation of one side: while running, the signatures of the events inside it; once
/// finished, waiting for its twin.
struct Op {
    end: u64,
    kind: OpKind,
    /// The operation event's path bytes, for an example (copied: no allocation per operation).
    name: [u8; NAME_CAP],
    name_len: usize,
    sigs: Vec<u8>,
    /// The probes in `sigs`, a bit per probe code: when both twins' probes are all compared,
    /// their sequences compare as they are, without filtering each byte.
    probes: u32,
    /// The last kill-path event in `sigs`: its index there, begin and end.
    kill: Option<(usize, u64, u64)>,
}

impl Op {
    /// A kill-path event. A kernel whose `dentry_kill` is out of line shows one kill twice,
    /// `dentry_kill` around `__dentry_kill`, where the model emits one `__dentry_kill`: of two
    /// nested kill-path events only the inner one is kept, whichever comes first.
    fn push_kill(&mut self, sig: u8, b: u64, e: u64) {
        match self.kill {
            Some((i, kb, ke)) if kb <= b && e <= ke => {
                self.sigs[i] = sig;
                self.kill = Some((i, b, e));
            }
            Some((_, kb, ke)) if b <= kb && ke <= e => {}
            _ => {
                self.kill = Some((self.sigs.len(), b, e));
                self.sigs.push(sig);
            }
        }
    }
}

/// One trace's running and finished operations (as slots of [`Builder`]'s table: the maps
/// move 4-byte slots, not operations).
#[derive(Default)]
struct SideState {
    /// Thread numbers given by [`Builder::push`] (a caller of [`Builder::push_numbered`]
    /// numbers its threads itself).
    numbers: HashMap<u32, u32>,
    /// By thread number: the thread's id, its current operation's begin and slot.
    current: Vec<Option<(u32, u64, u32)>>,
    /// Probes seen, a bit per probe code.
    seen: u32,
    /// Probes seen as they are compared ([`compared_as`]), a bit per probe code.
    compared: u32,
    /// By thread number: its thread's lane in [`Builder::lanes`] ([`NO_LANE`] before its
    /// first operation).
    lanes: Vec<u32>,
    /// Finished operations whose twin has not come yet (in this side's half of the lanes).
    done: usize,
}

/// A thread number with no lane yet.
const NO_LANE: u32 = u32::MAX;

/// One thread id's finished operations waiting for their twin, per side: (begin, slot), by
/// begin, least first, at most one per begin (as a map by (thread, begin) held them). A
/// thread's operations finish in begin order on each side, so a twin is nearly always at the
/// front of the other side's lane and a waiting operation goes at the back: the map cost
/// about 60 instructions a look-up and an insert as many (callgrind), twice an operation.
type Lane = [std::collections::VecDeque<(u64, u32)>; 2];

/// Builds an [`Agreement`] from two event streams, each in time order.
pub struct Builder {
    /// Kernel, model.
    sides: [SideState; 2],
    max_examples: usize,
    result: Agreement,
    /// The operations of both sides, running or waiting; a paired operation's slot (and its
    /// signature buffer) is reused.
    ops: Vec<Op>,
    free: Vec<u32>,
    /// Per thread id seen (by [`Builder::lane_of`]'s numbers), its finished operations.
    lanes: Vec<Lane>,
    lane_of: HashMap<u32, u32>,
    /// Per operation code, the share of the operations compared (`result.per_op` at the end,
    /// with the kinds that had any: a map's search per pair showed in the profile).
    per_op: [Share; OpKind::ALL.len() + 1],
}

/// Which stream an event is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Kernel = 0,
    Model = 1,
}

impl Builder {
    /// `max_examples`: differing operations kept.
    pub fn new(max_examples: usize) -> Builder {
        Builder {
            sides: [SideState::default(), SideState::default()],
            max_examples,
            result: Agreement::default(),
            ops: Vec::new(),
            free: Vec::new(),
            lanes: Vec::new(),
            lane_of: HashMap::default(),
            per_op: [Share::default(); OpKind::ALL.len() + 1],
        }
    }

    /// A slot for a new operation.
    fn alloc(&mut self, end: u64, kind: OpKind, name: &[u8]) -> u32 {
        let name_len = name.len().min(NAME_CAP);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.ops.push(Op {
                    end,
                    kind,
                    name: [0; NAME_CAP],
                    name_len: 0,
                    // Room for a typical operation's events from the start: a new slot
                    // is made for every operation waiting beyond the free ones (56 k in the
                    // 1 M bench), and each grew its buffer one push at a time.
                    sigs: Vec::with_capacity(16),
                    probes: 0,
                    kill: None,
                });
                (self.ops.len() - 1) as u32
            }
        };
        let op = &mut self.ops[slot as usize];
        op.end = end;
        op.kind = kind;
        op.name[..name_len].copy_from_slice(&name[..name_len]);
        op.name_len = name_len;
        op.sigs.clear();
        op.probes = 0;
        op.kill = None;
        slot
    }

    /// One event of `stream`, in time order: an operation's events come after it (an event
    /// outside its thread's current operation belongs to none).
    pub fn push(&mut self, stream: Stream, e: Seen<'_>) {
        let numbers = &mut self.sides[stream as usize].numbers;
        let next = numbers.len() as u32;
        let thread = *numbers.entry(e.tid).or_insert(next);
        if let Some(probe) = probe_of(e.probe) {
            self.push_numbered(stream, thread, probe, e);
        }
    }

    /// [`Builder::push`] with the event's thread numbered by the caller, who has already
    /// looked its id up (the diff: one hash probe an event instead of two). `thread` must be
    /// the same for every event of one thread id of `stream`, different for different ids,
    /// and small: it indexes a table. Use one of the two per `Builder`: `push`'s own numbers
    /// would collide with the caller's. `probe`: the event's probe, as the caller decoded it
    /// from `e.probe` (an event of no known probe is not pushed).
    // Always inlined: called for every event of the diff, and its argument is a 56-byte
    // struct built at the call only to be taken apart (about 40 instructions an event).
    #[inline(always)]
    pub fn push_numbered(&mut self, stream: Stream, thread: u32, probe: Probe, e: Seen<'_>) {
        let i = stream as usize;
        let t = thread as usize;
        if probe == Probe::Op {
            let Some(kind) = op_of(e.aux) else {
                return;
            };
            let slot = self.alloc(e.ts_end, kind, e.name);
            let side = &mut self.sides[i];
            if side.current.len() <= t {
                side.current.resize(t + 1, None);
                side.lanes.resize(t + 1, NO_LANE);
            }
            if side.lanes[t] == NO_LANE {
                let lane = self.lane(e.tid);
                self.sides[i].lanes[t] = lane;
            }
            let side = &mut self.sides[i];
            let lane = side.lanes[t];
            if let Some((tid, begin, prev)) = side.current[t].replace((e.tid, e.ts_begin, slot)) {
                self.pair(i, lane, (tid, begin), prev);
            }
            return;
        }
        let side = &mut self.sides[i];
        side.seen |= 1 << (probe as u32);
        let as_ = compared_as(probe);
        side.compared |= 1 << (as_ as u32);
        if let Some(&Some((_, begin, slot))) = side.current.get(t) {
            let op = &mut self.ops[slot as usize];
            if begin <= e.ts_begin && e.ts_end <= op.end {
                let sig = Signature::of(&e, probe).code();
                op.probes |= 1 << (as_ as u32);
                if !probe.is_kill() {
                    op.sigs.push(sig);
                } else {
                    op.push_kill(sig, e.ts_begin, e.ts_end);
                }
            }
        }
    }

    /// The lane of thread id `tid`, made at its first operation on either side.
    #[cold]
    #[inline(never)]
    fn lane(&mut self, tid: u32) -> u32 {
        let next = self.lanes.len() as u32;
        let lane = *self.lane_of.entry(tid).or_insert(next);
        if lane == next {
            self.lanes.push(Lane::default());
        }
        lane
    }

    /// Side `i`'s operation in `slot`, keyed `(thread id, begin)`, is finished: compared with
    /// its twin if the other side's is in (the lane of the thread id, from [`Builder::lane`]),
    /// else it waits for it (in place of one waiting with the same key, as a map's insert).
    #[inline(never)]
    fn pair(&mut self, i: usize, lane: u32, key: (u32, u64), slot: u32) {
        let begin = key.1;
        let Some(lane) = self.lanes.get_mut(lane as usize) else {
            debug_assert!(false, "a thread's lane is made before its first operation");
            return;
        };
        let theirs = &mut lane[1 - i];
        let twin = match theirs.front() {
            Some(&(b, s)) if b == begin => {
                theirs.pop_front();
                Some(s)
            }
            _ => theirs
                .binary_search_by_key(&begin, |&(b, _)| b)
                .ok()
                .and_then(|at| theirs.remove(at))
                .map(|(_, s)| s),
        };
        let Some(twin) = twin else {
            let mine = &mut lane[i];
            match mine.back() {
                Some(&(b, _)) if b >= begin => {
                    match mine.binary_search_by_key(&begin, |&(b, _)| b) {
                        Ok(at) => mine[at].1 = slot,
                        Err(at) => {
                            mine.insert(at, (begin, slot));
                            self.sides[i].done += 1;
                        }
                    }
                }
                _ => {
                    mine.push_back((begin, slot));
                    self.sides[i].done += 1;
                }
            }
            return;
        };
        self.sides[1 - i].done -= 1;
        self.free.extend([slot, twin]);
        let (k, m) = if i == 0 { (slot, twin) } else { (twin, slot) };
        let (k, m) = (&self.ops[k as usize], &self.ops[m as usize]);
        let both = self.sides[0].compared & self.sides[1].compared;
        fn kept(v: &[u8], both: u32) -> impl Iterator<Item = u8> + '_ {
            v.iter()
                .copied()
                .filter(move |c| both & (1 << (c >> 3)) != 0)
        }
        let same = if (k.probes | m.probes) & !both == 0 {
            k.sigs == m.sigs
        } else {
            kept(&k.sigs, both).eq(kept(&m.sigs, both))
        };
        for s in [&mut self.result.total, &mut self.per_op[k.kind as usize]] {
            s.ops += 1;
            s.agree += u64::from(same);
        }
        if !same && self.result.examples.len() < self.max_examples {
            let sigs = |v: &[u8]| kept(v, both).filter_map(Signature::from_code).collect();
            self.result.examples.push(Disagreement {
                kind: k.kind,
                path: String::from_utf8_lossy(&k.name[..k.name_len]).replace('\0', " -> "),
                tid: key.0,
                ts_begin: key.1,
                kernel: sigs(&k.sigs),
                model: sigs(&m.sigs),
            });
        }
    }

    pub fn finish(mut self) -> Agreement {
        for i in 0..2 {
            let side = &mut self.sides[i];
            let mut running: Vec<_> = side
                .current
                .drain(..)
                .zip(&side.lanes)
                .filter_map(|(c, &lane)| c.map(|(tid, begin, op)| (tid, begin, op, lane)))
                .collect();
            running.sort_by_key(|&(tid, begin, _, _)| (begin, tid));
            for (tid, begin, op, lane) in running {
                self.pair(i, lane, (tid, begin), op);
            }
        }
        self.result.per_op = OpKind::ALL
            .into_iter()
            .map(|k| (k, self.per_op[k as usize]))
            .filter(|(_, s)| s.ops > 0)
            .collect();
        self.result.unmatched = self.sides[0].done as u64;
        let [kernel, model] = [self.sides[0].seen, self.sides[1].seen];
        let both = self.sides[0].compared & self.sides[1].compared;
        // A probe is listed as compared when its class was seen on both sides (a kernel's
        // `dentry_kill` against the model's `__dentry_kill` lists both), else on its side.
        let of = |bits: u32, compared: bool| -> Vec<Probe> {
            Probe::ALL
                .into_iter()
                .filter(|p| {
                    bits & (1 << (*p as u32)) != 0
                        && (both & (1 << (compared_as(*p) as u32)) != 0) == compared
                })
                .collect()
        };
        self.result.probes = of(kernel | model, true);
        self.result.model_only = of(model, false);
        self.result.kernel_only = of(kernel, false);
        self.result
    }
}

/// Where an event falls in time for the diff (`diff::reorder`): a lookup when it returned (what
/// it found), anything else when it began; an operation before the events that began with it.
fn order_key(e: &Event) -> (u64, bool) {
    match e.probe() {
        Some(p) if p.is_lookup() => (e.ts_end, true),
        Some(Probe::Op) => (e.ts_begin, false),
        _ => (e.ts_begin, true),
    }
}

/// Compares `model` (a replay against the kernel trace) with `kernel`, operation by operation,
/// whole traces in memory, keeping up to `max_examples` differing operations.
pub fn agreement(kernel: &[Event], model: &[Event], max_examples: usize) -> Agreement {
    let mut b = Builder::new(max_examples);
    for (stream, events) in [(Stream::Kernel, kernel), (Stream::Model, model)] {
        let mut sorted: Vec<&Event> = events.iter().collect();
        sorted.sort_by_key(|e| order_key(e));
        for e in sorted {
            b.push(stream, e.into());
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lanes pair a finished operation as a map by (thread id, begin) did: with its twin
    /// when the other side's is waiting, else waiting in place of one with the same key; with
    /// begins in any order and repeated.
    #[test]
    fn lanes_pair_as_a_map_by_thread_and_begin() {
        let mut b = Builder::new(0);
        let mut maps: [HashMap<(u32, u64), u32>; 2] = Default::default();
        let mut next = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut paired = 0;
        for n in 0..20_000u64 {
            let i = next(2) as usize;
            let tid = next(4) as u32;
            // Mostly rising per thread, as operations finish; sometimes back, or repeated.
            let begin = n / 3 - next(if n % 7 == 0 { 20 } else { 2 }).min(n / 3);
            let slot = b.alloc(0, OpKind::Stat, b"");
            let lane = b.lane(tid);
            let freed = b.free.len();
            b.pair(i, lane, (tid, begin), slot);
            let expected = match maps[1 - i].remove(&(tid, begin)) {
                Some(twin) => Some(twin),
                None => {
                    maps[i].insert((tid, begin), slot);
                    None
                }
            };
            let got = (b.free.len() > freed).then(|| b.free[b.free.len() - 1]);
            assert_eq!(got, expected, "operation {n}");
            assert_eq!(
                [b.sides[0].done, b.sides[1].done],
                [maps[0].len(), maps[1].len()],
                "operation {n}"
            );
            paired += usize::from(got.is_some());
        }
        assert!(paired > 1_000, "{paired}");
    }

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
        assert_eq!(
            a.per_op.keys().collect::<Vec<_>>(),
            [&OpKind::Stat],
            "only the kinds compared"
        );
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

    /// The model emits `__d_drop` around `___d_drop`, as the source calls them. A kernel whose
    /// callers inline `__d_drop` never shows it: the unhash is compared through `___d_drop`
    /// alone and `__d_drop` is listed as model only. A kernel that calls it out of line is
    /// compared on both, so a model without the call disagrees there.
    #[test]
    fn a_probe_the_kernel_never_showed_is_left_out_and_one_it_showed_is_compared() {
        let unhash = |tid, t, outer: bool| {
            let inner = probe(tid, t + 1, Probe::DDropInner, 2, 5);
            let mut v = vec![op(tid, t, t + 10)];
            if outer {
                let mut o = probe(tid, t + 1, Probe::DDrop, 4, 5);
                o.ts_end = t + 5;
                v.push(o);
            }
            v.push(inner);
            v
        };
        let source = unhash(1, 10, true);
        let inlined = agreement(&unhash(1, 10, false), &source, 10);
        assert_eq!(inlined.total, Share { ops: 1, agree: 1 });
        assert_eq!(inlined.probes, vec![Probe::DDropInner]);
        assert_eq!(inlined.model_only, vec![Probe::DDrop]);
        assert!(inlined.kernel_only.is_empty());
        assert!(
            inlined
                .to_string()
                .contains("not compared, model only (inlined into callers, not attachable or not called in the kernel): __d_drop"),
            "{inlined}"
        );

        let out_of_line = agreement(&source, &source, 10);
        assert_eq!(out_of_line.total, Share { ops: 1, agree: 1 });
        assert_eq!(out_of_line.probes, vec![Probe::DDrop, Probe::DDropInner]);
        assert!(out_of_line.model_only.is_empty());
        let mut kernel = source.clone();
        kernel.extend(unhash(1, 100, true));
        let mut model = source.clone();
        model.extend(unhash(1, 100, false));
        let a = agreement(&kernel, &model, 10);
        assert_eq!(a.total, Share { ops: 2, agree: 1 });
        assert_eq!(
            a.examples[0].ts_begin, 100,
            "the unhash without its __d_drop"
        );
    }

    /// rev9 F1: a kernel that kills through `dentry_kill` (Debian's 7.3.4, 3.x) against the
    /// model's `__dentry_kill`: the kills are compared as one probe, so a kill on one side only
    /// disagrees. (rev9's version had no kill on both sides before its first pair: a probe
    /// counts from the first time both sides have shown it, so that pair agreed whatever the
    /// names; here both sides kill in the first operation.)
    #[test]
    fn rev9_a_7_3_kill_is_compared_with_the_models_kill() {
        let kernel = vec![
            op(1, 10, 40),
            probe(1, 20, Probe::DentryKillLocked, 4, 0),
            op(1, 50, 60),
            probe(1, 52, Probe::DLookupRcu, 2, 5),
            probe(1, 53, Probe::DentryKillLocked, 4, 0),
            op(1, 70, 80),
            probe(1, 72, Probe::DLookupRcu, 2, 5),
        ];
        let model = vec![
            op(1, 10, 40),
            probe(1, 20, Probe::DentryKill, 4, 0),
            op(1, 50, 60),
            probe(1, 52, Probe::DLookupRcu, 2, 5),
            op(1, 70, 80),
            probe(1, 72, Probe::DLookupRcu, 2, 5),
            probe(1, 75, Probe::DentryKill, 4, 0), // the model kills elsewhere
        ];
        let a = agreement(&kernel, &model, 10);
        assert_eq!(
            a.total,
            Share { ops: 3, agree: 1 },
            "both kills compared: {a}"
        );
        assert_eq!(
            a.probes,
            vec![
                Probe::DLookupRcu,
                Probe::DentryKill,
                Probe::DentryKillLocked
            ]
        );
        assert!(a.model_only.is_empty() && a.kernel_only.is_empty(), "{a}");
        let [kernel_only, model_only] = [&a.examples[0], &a.examples[1]];
        assert_eq!((kernel_only.ts_begin, model_only.ts_begin), (50, 70));
        assert_eq!(
            kernel_only.kernel[1].to_string(),
            "kill path(even, NULL, unhashed)"
        );
        assert_eq!((kernel_only.model.len(), model_only.kernel.len()), (1, 1));
        assert_eq!(model_only.model.len(), 2);
    }

    /// The control: the same kill under the two names, in the same operation and with the same
    /// exit, agrees; a kill whose exit differs does not; and a kill path one side never showed
    /// is still left out, under either name.
    #[test]
    fn a_kill_agrees_under_either_name_and_is_left_out_when_one_side_shows_none() {
        let with_kill = |p: Probe, inode| {
            vec![
                op(1, 10, 40),
                probe(1, 12, Probe::DLookupRcu, 2, 5),
                probe(1, 20, p, 4, inode),
            ]
        };
        let same = agreement(
            &with_kill(Probe::DentryKillLocked, 0),
            &with_kill(Probe::DentryKill, 0),
            10,
        );
        assert_eq!(same.total, Share { ops: 1, agree: 1 });
        let other_exit = agreement(
            &with_kill(Probe::DentryKillLocked, 7),
            &with_kill(Probe::DentryKill, 0),
            10,
        );
        assert_eq!(other_exit.total, Share { ops: 1, agree: 0 });
        let kernel_without = vec![op(1, 10, 40), probe(1, 12, Probe::DLookupRcu, 2, 5)];
        for p in [Probe::DentryKill, Probe::DentryKillLocked] {
            let a = agreement(&kernel_without, &with_kill(p, 0), 10);
            assert_eq!(a.total, Share { ops: 1, agree: 1 }, "{p:?}");
            assert_eq!(a.model_only, vec![p]);
            assert_eq!(a.probes, vec![Probe::DLookupRcu]);
        }
    }

    /// rev10 R10-2: a kernel whose `dentry_kill` is out of line shows one kill twice,
    /// `dentry_kill` around `__dentry_kill`; the model emits one `__dentry_kill`. Only the
    /// inner event counts, whichever of the two arrives first; two kills one after the other
    /// stay two, and an outer kill whose exit differs from the model's still disagrees when
    /// nothing is nested in it.
    #[test]
    fn a_kill_seen_by_both_kill_probes_counts_once() {
        let kill = |p: Probe, b: u64, e: u64, inode| {
            let mut ev = probe(1, b, p, 4, inode);
            ev.ts_end = e;
            ev
        };
        let model = |kills: &[u64]| {
            let mut v = vec![op(1, 10, 90), probe(1, 12, Probe::DLookupRcu, 2, 5)];
            v.extend(kills.iter().map(|&b| probe(1, b, Probe::DentryKill, 4, 0)));
            v
        };
        let head = || vec![op(1, 10, 90), probe(1, 12, Probe::DLookupRcu, 2, 5)];
        // The outer event's exit reads the freed dentry: its signature may be anything.
        let mut nested = head();
        nested.push(kill(Probe::DentryKillLocked, 20, 30, 9));
        nested.push(kill(Probe::DentryKill, 22, 23, 0));
        let a = agreement(&nested, &model(&[22]), 10);
        assert_eq!(a.total, Share { ops: 1, agree: 1 }, "{a}");
        let mut inner_first = head();
        inner_first.push(kill(Probe::DentryKill, 20, 23, 0));
        inner_first.push(kill(Probe::DentryKillLocked, 20, 30, 9));
        let a = agreement(&inner_first, &model(&[20]), 10);
        assert_eq!(a.total, Share { ops: 1, agree: 1 }, "{a}");
        let mut two = head();
        for b in [20, 40] {
            two.push(kill(Probe::DentryKillLocked, b, b + 10, 0));
            two.push(kill(Probe::DentryKill, b + 2, b + 3, 0));
        }
        assert_eq!(
            agreement(&two, &model(&[22, 42]), 10).total,
            Share { ops: 1, agree: 1 }
        );
        assert_eq!(
            agreement(&two, &model(&[22]), 10).total,
            Share { ops: 1, agree: 0 }
        );
        let mut alone = head();
        alone.push(kill(Probe::DentryKillLocked, 20, 30, 9));
        assert_eq!(
            agreement(&alone, &model(&[22]), 10).total,
            Share { ops: 1, agree: 0 }
        );
    }

    /// In time order, each thread's events go to its current operation; an event outside it
    /// (a kernel worker's kill, the setup's events) to none; the state held stays small.
    #[test]
    fn a_streamed_agreement_holds_only_running_and_unpaired_operations() {
        let mut b = Builder::new(10);
        let mut held = 0;
        for i in 0..5_000u64 {
            let begin = 1_000 + i * 50;
            b.push(Stream::Kernel, (&op(1, begin, begin + 20)).into());
            b.push(
                Stream::Kernel,
                (&probe(99, begin + 1, Probe::DentryKill, 2, 0)).into(),
            );
            b.push(
                Stream::Kernel,
                (&probe(1, begin + 5, Probe::DLookupRcu, 2, 7)).into(),
            );
            b.push(Stream::Model, (&op(1, begin, begin + 20)).into());
            b.push(
                Stream::Model,
                (&probe(1, begin + 6, Probe::DLookupRcu, 2, 7)).into(),
            );
            // After the operation's end: none of its events.
            b.push(
                Stream::Model,
                (&probe(1, begin + 30, Probe::DLookupRcu, 2, 0)).into(),
            );
            held = held.max(
                b.sides
                    .iter()
                    .map(|s| s.current.iter().flatten().count() + s.done)
                    .sum::<usize>(),
            );
        }
        assert!(held <= 3, "held {held} operations");
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

    /// Threads numbered by the caller (here in an order of its own, differently on each side,
    /// as the diff's two sides do) give the agreement `push` gives: operations still pair by
    /// thread id and begin, and the ones still running at the end pair in the same order.
    #[test]
    fn threads_numbered_by_the_caller_agree_with_the_builders_own_numbering() {
        let mut events = Vec::new();
        for i in 0..40u64 {
            let tid = [7, 3, 1_000_000, 42][i as usize % 4];
            let begin = 100 + i * 10;
            // Thread 42's operations run to the end of the trace (no next operation pairs them).
            let end = if tid == 42 { 10_000 + i } else { begin + 8 };
            events.push(op(tid, begin, end));
            let inode = if i % 3 == 0 { 0 } else { 5 };
            events.push(probe(tid, begin + 2, Probe::DLookupRcu, 2, inode));
        }
        let model: Vec<Event> = events
            .iter()
            .map(|e| {
                let mut m = *e;
                if m.probe != Probe::Op as u8 && m.ts_begin % 20 == 2 {
                    m.inode_end = 9;
                }
                m
            })
            .collect();
        let mut own = Builder::new(100);
        let mut numbered = Builder::new(100);
        for (stream, evs, numbers) in [
            (Stream::Kernel, &events, [3, 2, 1, 0]),
            (Stream::Model, &model, [0, 3, 1, 2]),
        ] {
            for e in evs.iter() {
                let at = [7, 3, 1_000_000, 42].iter().position(|t| *t == e.tid);
                let thread = at.map(|i| numbers[i]).expect("a known thread");
                own.push(stream, e.into());
                let probe = probe_of(e.probe).expect("a known probe");
                numbered.push_numbered(stream, thread, probe, e.into());
            }
        }
        let (own, numbered) = (own.finish(), numbered.finish());
        assert!(own.total.ops == 40 && own.total.agree < 40 && !own.examples.is_empty());
        assert_eq!(numbered, own);
    }

    #[test]
    fn a_signature_survives_its_one_byte_code() {
        for probe in Probe::ALL {
            for bits in 0..8u8 {
                let s = Signature {
                    probe,
                    seq_odd: bits & 4 != 0,
                    inode_null: bits & 2 != 0,
                    hashed: bits & 1 != 0,
                };
                assert_eq!(Signature::from_code(s.code()), Some(s));
            }
        }
    }
}
