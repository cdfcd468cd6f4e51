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
/// own; [`Seen::of`] gives it for a trace's).
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub probe: u8,
    pub aux: u32,
    pub tid: u32,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub seq_end: u32,
    pub inode_end: u64,
    pub flags: u16,
    /// The caller's number for the recorded name (an operation's path), read through
    /// [`Names`] only when an example is built: copying every operation's name for the rare
    /// example cost about 45 instructions an operation (callgrind).
    pub name: u32,
}

impl Seen {
    /// A trace's event, its name numbered `name` by the caller's [`Names`].
    pub fn of(e: &Event, name: u32) -> Seen {
        Seen {
            probe: e.probe,
            aux: e.aux,
            tid: e.tid,
            ts_begin: e.ts_begin,
            ts_end: e.ts_end,
            seq_end: e.seq_end,
            inode_end: e.inode_end,
            flags: e.flags,
            name,
        }
    }
}

/// The bytes of the names [`Seen::name`] numbers (an example shows at most [`NAME_CAP`] of
/// them, as a trace records).
pub trait Names {
    fn name_bytes(&self, name: u32) -> &[u8];
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
    /// `e`'s signature in one byte, `as_` its probe as compared ([`compared_as`]): the probe
    /// code and the three bits (codes stay below 32). Built from the event's fields at once
    /// (a `Signature` built, then encoded, cost about 8 instructions more an event).
    fn code_of(e: &Seen, as_: Probe) -> u8 {
        ((as_ as u8) << 3)
            | u8::from(e.seq_end & 1 == 1) << 2
            | u8::from(e.inode_end == 0) << 1
            | u8::from(e.flags & flags::HASHED_END != 0)
    }

    /// The signature a [`Signature::code_of`] byte encodes.
    fn from_code(c: u8) -> Option<Signature> {
        Some(Signature {
            probe: Probe::from_u8(c >> 3)?,
            seq_odd: c & 4 != 0,
            inode_null: c & 2 != 0,
            hashed: c & 1 != 0,
        })
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

/// An operation's signatures ([`Signature::code_of`]) in order: the first [`HEAD`] in a word, a
/// byte each from the low end, the rest in a vector. Most operations have fewer events in
/// them, so a waiting operation carries its sequence without a buffer of its own and twins
/// compare two words: a buffer per waiting operation cost an allocation for each at the
/// peak, a spare list and a `memcmp` call per pair (callgrind).
#[derive(Default)]
struct Sigs {
    len: usize,
    head: u64,
    rest: Vec<u8>,
}

/// Signatures held in [`Sigs::head`].
const HEAD: usize = 8;

impl Sigs {
    // Inlined into every event's path: as a call it cost about 10 instructions an event.
    #[inline(always)]
    fn push(&mut self, code: u8) {
        if self.len < HEAD {
            self.head |= u64::from(code) << (8 * self.len);
        } else {
            self.rest.push(code);
        }
        self.len += 1;
    }

    /// Replaces the `i`th signature.
    fn set(&mut self, i: usize, code: u8) {
        if i < HEAD {
            let shift = 8 * i;
            self.head = (self.head & !(0xff << shift)) | u64::from(code) << shift;
        } else if let Some(c) = self.rest.get_mut(i - HEAD) {
            *c = code;
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
        self.rest.clear();
    }

    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        let head = self.head.to_le_bytes().into_iter().take(self.len.min(HEAD));
        head.chain(self.rest.iter().copied())
    }
}

impl PartialEq for Sigs {
    /// The unused bytes of `head` are zero, so equal words of equal lengths hold equal
    /// signatures.
    fn eq(&self, other: &Sigs) -> bool {
        self.len == other.len
            && self.head == other.head
            && (self.len <= HEAD || self.rest == other.rest)
    }
}

/// A thread's current operation on one side, as the agreement follows it: held by the caller
/// with the rest of its per-thread state (the diff's thread record), so an event's signature
/// is appended where the caller already is, and a finished operation is compared from here
/// when its twin is already waiting. Only the first of two twins to finish moves its
/// signatures into its lane to wait.
#[derive(Default)]
pub struct Running {
    /// The current operation, None before the thread's first.
    op: Option<Current>,
    /// Its events' signatures, in order.
    sigs: Sigs,
    /// The probes in `sigs`, a bit per probe code: when both twins' probes are all compared,
    /// their sequences compare as they are, without filtering each byte.
    probes: u32,
    /// The last kill-path event in `sigs`: its index there, begin and end.
    kill: Option<(usize, u64, u64)>,
}

/// What a running operation is keyed and reported by.
#[derive(Clone, Copy)]
struct Current {
    tid: u32,
    begin: u64,
    end: u64,
    kind: OpKind,
    /// The caller's number of its name ([`Names`]).
    name: u32,
    /// Its thread id's lane in [`Builder::lanes`] (made at the thread's first operation).
    lane: u32,
}

impl Running {
    /// A kill-path event. A kernel whose `dentry_kill` is out of line shows one kill twice,
    /// `dentry_kill` around `__dentry_kill`, where the model emits one `__dentry_kill`: of two
    /// nested kill-path events only the inner one is kept, whichever comes first.
    fn push_kill(&mut self, sig: u8, b: u64, e: u64) {
        match self.kill {
            Some((i, kb, ke)) if kb <= b && e <= ke => {
                self.sigs.set(i, sig);
                self.kill = Some((i, b, e));
            }
            Some((_, kb, ke)) if b <= kb && ke <= e => {}
            _ => {
                self.kill = Some((self.sigs.len, b, e));
                self.sigs.push(sig);
            }
        }
    }
}

/// A finished operation waiting for its twin.
struct Waiting {
    begin: u64,
    kind: OpKind,
    name: u32,
    probes: u32,
    sigs: Sigs,
}

/// One side's operation as two twins are compared: the running one's or a waiting one's.
struct Finished<'a> {
    kind: OpKind,
    name: u32,
    probes: u32,
    sigs: &'a Sigs,
}

/// One trace's counts.
#[derive(Default)]
struct SideState {
    /// Running operations handed over at the trace's end ([`Builder::end_of`]).
    ended: Vec<Running>,
    /// Probes seen, a bit per probe code.
    seen: u32,
    /// Probes seen as they are compared ([`compared_as`]), a bit per probe code.
    compared: u32,
    /// Finished operations whose twin has not come yet (in this side's half of the lanes).
    done: usize,
}

/// One thread id's finished operations waiting for their twin, per side, by begin, least
/// first, at most one per begin (as a map by (thread, begin) held them). A thread's
/// operations finish in begin order on each side, so a twin is nearly always at the front of
/// the other side's lane and a waiting operation goes at the back: the map cost about 60
/// instructions a look-up and an insert as many (callgrind), twice an operation.
type Lane = [std::collections::VecDeque<Waiting>; 2];

/// Builds an [`Agreement`] from two event streams, each in time order.
pub struct Builder {
    /// Kernel, model.
    sides: [SideState; 2],
    max_examples: usize,
    result: Agreement,
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
            lanes: Vec::new(),
            lane_of: HashMap::default(),
            per_op: [Share::default(); OpKind::ALL.len() + 1],
        }
    }

    /// One event of `stream`, in time order: an operation's events come after it (an event
    /// outside its thread's current operation belongs to none). The event's thread's
    /// [`Running`] is held by the caller, who has already looked its thread up (the diff keeps
    /// it on its own thread record: one look-up an event instead of two). `running` must be
    /// the same for every event of one thread id of `stream`, and a different one for each
    /// id. `probe`: the event's probe, as the caller decoded it from `e.probe` (an event of no
    /// known probe is not pushed). At the trace's end, hand the threads' `Running` over with
    /// [`Builder::end_of`].
    // Always inlined: called for every event of the diff, and its argument is a struct built
    // at the call only to be taken apart (about 40 instructions an event).
    #[inline(always)]
    pub fn push_running(
        &mut self,
        stream: Stream,
        running: &mut Running,
        probe: Probe,
        e: Seen,
        names: &impl Names,
    ) {
        let i = stream as usize;
        if probe == Probe::Op {
            let Some(kind) = op_of(e.aux) else {
                return;
            };
            let lane = match running.op {
                Some(c) => {
                    self.pair(i, running, names);
                    c.lane
                }
                None => self.lane(e.tid),
            };
            running.op = Some(Current {
                tid: e.tid,
                begin: e.ts_begin,
                end: e.ts_end,
                kind,
                name: e.name,
                lane,
            });
            running.sigs.clear();
            running.probes = 0;
            running.kill = None;
            return;
        }
        let side = &mut self.sides[i];
        side.seen |= 1 << (probe as u32);
        let as_ = compared_as(probe);
        side.compared |= 1 << (as_ as u32);
        if let Some(c) = &running.op {
            if c.begin <= e.ts_begin && e.ts_end <= c.end {
                let sig = Signature::code_of(&e, as_);
                running.probes |= 1 << (as_ as u32);
                if !probe.is_kill() {
                    running.sigs.push(sig);
                } else {
                    running.push_kill(sig, e.ts_begin, e.ts_end);
                }
            }
        }
    }

    /// `stream` has ended: its threads' running operations (of [`Builder::push_running`]),
    /// compared by [`Builder::finish`].
    pub fn end_of(&mut self, stream: Stream, running: impl IntoIterator<Item = Running>) {
        self.sides[stream as usize]
            .ended
            .extend(running.into_iter().filter(|r| r.op.is_some()));
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

    /// Side `i`'s operation in `running` is finished: compared with its twin if the other
    /// side's is in (the lane of its thread id, keyed by its begin), else it waits for it (in
    /// place of one waiting with the same begin, as a map's insert), its signatures moved
    /// into the lane.
    #[inline(never)]
    fn pair(&mut self, i: usize, running: &mut Running, names: &impl Names) {
        let Some(c) = running.op else {
            return;
        };
        let Some(lane) = self.lanes.get_mut(c.lane as usize) else {
            debug_assert!(false, "a thread's lane is made before its first operation");
            return;
        };
        let theirs = &mut lane[1 - i];
        let twin = match theirs.front() {
            Some(w) if w.begin == c.begin => theirs.pop_front(),
            _ => theirs
                .binary_search_by_key(&c.begin, |w| w.begin)
                .ok()
                .and_then(|at| theirs.remove(at)),
        };
        let Some(twin) = twin else {
            let waiting = Waiting {
                begin: c.begin,
                kind: c.kind,
                name: c.name,
                probes: running.probes,
                sigs: std::mem::take(&mut running.sigs),
            };
            let mine = &mut lane[i];
            match mine.back() {
                Some(w) if w.begin >= c.begin => {
                    match mine.binary_search_by_key(&c.begin, |w| w.begin) {
                        Ok(at) => {
                            mine[at] = waiting;
                        }
                        Err(at) => {
                            mine.insert(at, waiting);
                            self.sides[i].done += 1;
                        }
                    }
                }
                _ => {
                    mine.push_back(waiting);
                    self.sides[i].done += 1;
                }
            }
            return;
        };
        self.sides[1 - i].done -= 1;
        let ours = Finished {
            kind: c.kind,
            name: c.name,
            probes: running.probes,
            sigs: &running.sigs,
        };
        let other = Finished {
            kind: twin.kind,
            name: twin.name,
            probes: twin.probes,
            sigs: &twin.sigs,
        };
        let (k, m) = if i == 0 { (ours, other) } else { (other, ours) };
        let both = self.sides[0].compared & self.sides[1].compared;
        fn kept(v: &Sigs, both: u32) -> impl Iterator<Item = u8> + '_ {
            v.iter().filter(move |c| both & (1 << (c >> 3)) != 0)
        }
        let same = if (k.probes | m.probes) & !both == 0 {
            k.sigs == m.sigs
        } else {
            kept(k.sigs, both).eq(kept(m.sigs, both))
        };
        for s in [&mut self.result.total, &mut self.per_op[k.kind as usize]] {
            s.ops += 1;
            s.agree += u64::from(same);
        }
        if !same && self.result.examples.len() < self.max_examples {
            let sigs = |v: &Sigs| kept(v, both).filter_map(Signature::from_code).collect();
            let name = names.name_bytes(k.name);
            self.result.examples.push(Disagreement {
                kind: k.kind,
                path: String::from_utf8_lossy(&name[..name.len().min(NAME_CAP)])
                    .replace('\0', " -> "),
                tid: c.tid,
                ts_begin: c.begin,
                kernel: sigs(k.sigs),
                model: sigs(m.sigs),
            });
        }
    }

    /// The agreement, once both streams have ended: the operations still running are
    /// compared, each side's in order of begin and thread id. `names`: as for the events.
    pub fn finish(mut self, names: &impl Names) -> Agreement {
        for i in 0..2 {
            let side = &mut self.sides[i];
            let mut running = std::mem::take(&mut side.ended);
            running.sort_by_key(|r| r.op.map(|c| (c.begin, c.tid)));
            for mut r in running {
                self.pair(i, &mut r, names);
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

/// Feeds a [`Builder`] whole traces in memory, each thread's running operation held by
/// thread id (the diff holds it on its own thread record).
struct Fed {
    b: Builder,
    running: [HashMap<u32, Running>; 2],
}

impl Fed {
    fn new(max_examples: usize) -> Fed {
        Fed {
            b: Builder::new(max_examples),
            running: [HashMap::default(), HashMap::default()],
        }
    }

    fn push(&mut self, stream: Stream, e: Seen, names: &impl Names) {
        if let Some(probe) = probe_of(e.probe) {
            let running = self.running[stream as usize].entry(e.tid).or_default();
            self.b.push_running(stream, running, probe, e, names);
        }
    }

    fn finish(mut self, names: &impl Names) -> Agreement {
        for stream in [Stream::Kernel, Stream::Model] {
            let running = std::mem::take(&mut self.running[stream as usize]);
            self.b.end_of(stream, running.into_values());
        }
        self.b.finish(names)
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
    let names = EventNames([kernel, model]);
    let mut b = Fed::new(max_examples);
    let mut first = 0;
    for (stream, events) in [(Stream::Kernel, kernel), (Stream::Model, model)] {
        let mut sorted: Vec<usize> = (0..events.len()).collect();
        sorted.sort_by_key(|&at| order_key(&events[at]));
        for at in sorted {
            b.push(stream, Seen::of(&events[at], (first + at) as u32), &names);
        }
        first = kernel.len();
    }
    b.finish(&names)
}

/// Two traces' events, numbered through both: the kernel's first.
struct EventNames<'a>([&'a [Event]; 2]);

impl Names for EventNames<'_> {
    fn name_bytes(&self, name: u32) -> &[u8] {
        let [kernel, model] = self.0;
        let (events, at) = match (name as usize).checked_sub(kernel.len()) {
            None => (kernel, name as usize),
            Some(at) => (model, at),
        };
        events.get(at).map_or(&[], Event::name_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names numbered by their decimal text, for examples whose path says which operation
    /// was compared.
    struct Decimal(Vec<Vec<u8>>);

    impl Decimal {
        fn new(n: usize) -> Decimal {
            Decimal((0..n).map(|i| i.to_string().into_bytes()).collect())
        }
    }

    impl Names for Decimal {
        fn name_bytes(&self, name: u32) -> &[u8] {
            &self.0[name as usize]
        }
    }

    /// The lanes pair a finished operation as a map by (thread id, begin) did: with its twin
    /// when the other side's is waiting, else waiting in place of one with the same key; with
    /// begins in any order and repeated. Every pair differs (the kernel's operations show one
    /// signature, the model's another), so each pair is an example naming the kernel's
    /// operation.
    #[test]
    fn lanes_pair_as_a_map_by_thread_and_begin() {
        let mut b = Builder::new(usize::MAX);
        let names = Decimal::new(20_000);
        let code = [5, 0].map(|inode| {
            let e = Seen::of(&probe(0, 0, Probe::DLookup, 2, inode), 0);
            Signature::code_of(&e, Probe::DLookup)
        });
        let sig = code.map(|c| Signature::from_code(c).expect("a code"));
        for side in &mut b.sides {
            side.compared = 1 << Probe::DLookup as u32;
        }
        let mut maps: [HashMap<(u32, u64), u32>; 2] = Default::default();
        let mut next = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut paired = 0;
        for n in 0..20_000u64 {
            let i = next(2) as usize;
            let tid = next(4) as u32;
            // Mostly rising per thread, as operations finish; sometimes back, or repeated.
            let begin = n / 3 - next(if n % 7 == 0 { 20 } else { 2 }).min(n / 3);
            let mut running = Running {
                op: Some(Current {
                    tid,
                    begin,
                    end: begin,
                    kind: OpKind::Stat,
                    name: n as u32,
                    lane: b.lane(tid),
                }),
                sigs: Sigs::default(),
                probes: 1 << Probe::DLookup as u32,
                kill: None,
            };
            running.sigs.push(code[i]);
            let examples = b.result.examples.len();
            b.pair(i, &mut running, &names);
            let expected = match maps[1 - i].remove(&(tid, begin)) {
                Some(twin) => Some(if i == 0 { n as u32 } else { twin }),
                None => {
                    maps[i].insert((tid, begin), n as u32);
                    None
                }
            };
            let got = (b.result.examples.len() > examples).then(|| {
                let d = &b.result.examples[examples];
                assert_eq!((d.tid, d.ts_begin), (tid, begin), "operation {n}");
                assert_eq!((&d.kernel[..], &d.model[..]), (&sig[..1], &sig[1..]));
                d.path.parse::<u32>().expect("a decimal name")
            });
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

    /// Every name the same, for tests that build no example or look at no path.
    struct Same;

    impl Names for Same {
        fn name_bytes(&self, _: u32) -> &[u8] {
            b"d/f"
        }
    }

    /// In time order, each thread's events go to its current operation; an event outside it
    /// (a kernel worker's kill, the setup's events) to none; the state held stays small.
    #[test]
    fn a_streamed_agreement_holds_only_running_and_unpaired_operations() {
        let mut b = Fed::new(10);
        let mut held = 0;
        for i in 0..5_000u64 {
            let begin = 1_000 + i * 50;
            for (stream, e) in [
                (Stream::Kernel, op(1, begin, begin + 20)),
                (
                    Stream::Kernel,
                    probe(99, begin + 1, Probe::DentryKill, 2, 0),
                ),
                (Stream::Kernel, probe(1, begin + 5, Probe::DLookupRcu, 2, 7)),
                (Stream::Model, op(1, begin, begin + 20)),
                (Stream::Model, probe(1, begin + 6, Probe::DLookupRcu, 2, 7)),
                // After the operation's end: none of its events.
                (Stream::Model, probe(1, begin + 30, Probe::DLookupRcu, 2, 0)),
            ] {
                b.push(stream, Seen::of(&e, 0), &Same);
            }
            held = held.max(
                b.running
                    .iter()
                    .map(|r| r.values().filter(|r| r.op.is_some()).count())
                    .sum::<usize>()
                    + b.b.sides.iter().map(|s| s.done).sum::<usize>(),
            );
        }
        assert!(held <= 3, "held {held} operations");
        let a = b.finish(&Same);
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

    /// Threads' running operations held in a table numbered in an order of its own,
    /// differently on each side (as the diff's two sides number their threads), give the
    /// agreement they give held by thread id: operations still pair by thread id and begin,
    /// and the ones still running at the end, handed over by `end_of`, pair in the same order.
    #[test]
    fn threads_numbered_in_any_order_agree() {
        let mut events = Vec::new();
        for i in 0..40u64 {
            let tid = [7, 3, 1_000_000, 42][i as usize % 4];
            let begin = 100 + i * 10;
            // Thread 42's operations run to the end of the trace (no next operation pairs them).
            let end = if tid == 42 { 10_000 + i } else { begin + 8 };
            let mut e = op(tid, begin, end);
            e.set_name(format!("d/{i}").as_bytes());
            events.push(e);
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
        let names = EventNames([&events, &model]);
        let mut own = Fed::new(100);
        let mut held = Builder::new(100);
        for (stream, evs, numbers, first) in [
            (Stream::Kernel, &events, [3, 2, 1, 0], 0),
            (Stream::Model, &model, [0, 3, 1, 2], events.len()),
        ] {
            let mut running: Vec<Running> = (0..4).map(|_| Running::default()).collect();
            for (at, e) in evs.iter().enumerate() {
                let seen = Seen::of(e, (first + at) as u32);
                let thread = [7, 3, 1_000_000, 42].iter().position(|t| *t == e.tid);
                let thread = thread.map(|i| numbers[i]).expect("a known thread");
                own.push(stream, seen, &names);
                let probe = probe_of(e.probe).expect("a known probe");
                held.push_running(stream, &mut running[thread], probe, seen, &names);
            }
            held.end_of(stream, running);
        }
        let (own, held) = (own.finish(&names), held.finish(&names));
        assert!(own.total.ops == 40 && own.total.agree < 40 && !own.examples.is_empty());
        assert_eq!(
            own.examples[0].path, "d/0",
            "the kernel operation's own name"
        );
        assert_eq!(held, own);
    }

    /// The cases the diff's clean runs never show, in one stream: twins that differ only in
    /// their last event, an operation beginning inside another on its thread (the first is
    /// over: its twin compares what it had), a kernel operation with no twin and a model one
    /// with none, more differing operations than examples kept. An example's name is read
    /// only when the example is built.
    #[test]
    fn rare_cases_pair_and_report_as_streamed() {
        struct Counted<'a>(std::cell::Cell<usize>, &'a EventNames<'a>);
        impl Names for Counted<'_> {
            fn name_bytes(&self, name: u32) -> &[u8] {
                self.0.set(self.0.get() + 1);
                self.1.name_bytes(name)
            }
        }
        let named = |mut e: Event, name: &str| {
            e.set_name(name.as_bytes());
            e
        };
        let lookup = |t, inode| probe(1, t, Probe::DLookupRcu, 2, inode);
        let kernel = vec![
            named(op(1, 10, 20), "a"),
            lookup(12, 5),
            lookup(14, 5),
            named(op(2, 15, 25), "kernel only"),
            named(op(1, 30, 60), "outer"),
            lookup(32, 5),
            named(op(1, 40, 50), "inner"),
            lookup(42, 5),
            lookup(44, 5),
        ];
        let model = vec![
            named(op(1, 10, 20), "a"),
            lookup(12, 5),
            lookup(14, 0),
            named(op(1, 30, 60), "outer"),
            lookup(32, 5),
            named(op(3, 35, 36), "model only"),
            named(op(1, 40, 50), "inner"),
            lookup(42, 5),
            lookup(44, 0),
        ];
        let names = EventNames([&kernel, &model]);
        let counted = Counted(std::cell::Cell::new(0), &names);
        let mut b = Fed::new(1);
        for (stream, events, first) in [
            (Stream::Kernel, &kernel, 0),
            (Stream::Model, &model, kernel.len()),
        ] {
            for (at, e) in events.iter().enumerate() {
                b.push(stream, Seen::of(e, (first + at) as u32), &counted);
            }
        }
        let a = b.finish(&counted);
        assert_eq!(a.total, Share { ops: 3, agree: 1 }, "{a}");
        assert_eq!(a.unmatched, 1, "{a}");
        assert_eq!(
            counted.0.get(),
            1,
            "one name read, for the one example kept"
        );
        let [d] = &a.examples[..] else {
            panic!("one example: {a}");
        };
        assert_eq!((d.path.as_str(), d.tid, d.ts_begin), ("a", 1, 10));
        let seq = |v: &[Signature]| v.iter().map(Signature::to_string).collect::<Vec<_>>();
        assert_eq!(seq(&d.kernel)[1], "__d_lookup_rcu(even, inode, unhashed)");
        assert_eq!(seq(&d.model)[1], "__d_lookup_rcu(even, NULL, unhashed)");
        assert_eq!(seq(&d.kernel)[0], seq(&d.model)[0]);
        assert!(
            a.to_string()
                .contains("operations whose probe events differ (1 of 2):\n  stat a (thread 1"),
            "{a}"
        );
    }

    /// Random streams of both sides, interleaved in chunks as the diff advances them, against
    /// a plain reference: per side a map of each thread's current operation and one of the
    /// finished operations waiting for their twin by (thread id, begin), sequences compared
    /// on the probes both sides have shown when the twins meet. The model's stream is the
    /// kernel's with events dropped or changed (an exit, a begin), operations added inside
    /// others, probes of one side only.
    #[test]
    fn streamed_pairs_agree_with_a_map_of_waiting_operations() {
        let probes = [Probe::DLookupRcu, Probe::DLookup, Probe::DDropInner];
        let kinds = [OpKind::Stat, OpKind::Open, OpKind::Unlink];
        for seed in 1..=20u64 {
            let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15 ^ seed);
            let mut kernel = Vec::new();
            let mut t = 0;
            for _ in 0..600 {
                t += next(4);
                let tid = 1 + next(3) as u32;
                if next(4) == 0 {
                    let mut e = op(tid, t, t + next(40));
                    e.aux = kinds[next(3) as usize] as u32;
                    kernel.push(e);
                } else {
                    let p = probes[next(3) as usize];
                    let mut e = probe(tid, t.saturating_sub(next(6)), p, next(2) as u32, next(2));
                    e.ts_end = e.ts_begin + next(4);
                    e.flags = if next(2) == 0 { flags::HASHED_END } else { 0 };
                    kernel.push(e);
                }
            }
            let mut model = Vec::new();
            for e in &kernel {
                let mut m = *e;
                match next(40) {
                    0 => continue,
                    1 if m.probe == Probe::Op as u8 => m.ts_begin += 1,
                    1 => m.inode_end ^= 1,
                    2 if m.probe == Probe::Op as u8 => {
                        model.push(m);
                        m.ts_begin += 1;
                        m.ts_end = m.ts_begin + 2;
                    }
                    2 => m.seq_end ^= 1,
                    // A probe the kernel never shows.
                    3 => m.probe = Probe::DDrop as u8,
                    _ => {}
                }
                model.push(m);
            }
            // A probe the model never shows.
            for e in kernel.iter_mut().filter(|e| e.ts_begin % 50 == 7) {
                if e.probe != Probe::Op as u8 {
                    e.probe = Probe::DentryIput as u8;
                }
            }
            let names = Decimal::new(kernel.len() + model.len());
            let mut b = Fed::new(30);
            let mut reference = Reference::default();
            let (mut at, first) = ([0, 0], [0, kernel.len()]);
            let streams = [&kernel, &model];
            while at[0] < kernel.len() || at[1] < model.len() {
                let i = next(2) as usize;
                for _ in 0..next(30) {
                    let Some(e) = streams[i].get(at[i]) else {
                        break;
                    };
                    let stream = [Stream::Kernel, Stream::Model][i];
                    b.push(stream, Seen::of(e, (first[i] + at[i]) as u32), &names);
                    reference.push(i, e, (first[i] + at[i]) as u32);
                    at[i] += 1;
                }
            }
            let a = b.finish(&names);
            let (total, unmatched, examples) = reference.finish(30);
            assert_eq!((a.total, a.unmatched), (total, unmatched), "seed {seed}");
            assert!(
                total.ops > 100 && total.agree < total.ops,
                "seed {seed}: {a}"
            );
            let got: Vec<_> = a
                .examples
                .iter()
                .map(|d| {
                    let name = d.path.parse::<u32>().expect("a decimal name");
                    (name, d.tid, d.ts_begin, d.kernel.clone(), d.model.clone())
                })
                .collect();
            let signatures = |v: Vec<u8>| {
                let sigs = v.into_iter().map(Signature::from_code);
                sigs.collect::<Option<Vec<_>>>().expect("codes")
            };
            let expected: Vec<_> = examples
                .into_iter()
                .map(|(name, tid, begin, k, m)| (name, tid, begin, signatures(k), signatures(m)))
                .collect();
            assert_eq!(got, expected, "seed {seed}");
        }
    }

    /// The reference of [`streamed_pairs_agree_with_a_map_of_waiting_operations`]: a running
    /// operation is (begin, end, name, codes); a waiting one is keyed (thread id, begin).
    #[derive(Default)]
    struct Reference {
        current: [HashMap<u32, RefOp>; 2],
        waiting: [HashMap<(u32, u64), RefWaiting>; 2],
        compared: [u32; 2],
        total: Share,
        /// (kernel name, thread id, begin, kernel codes, model codes), compared on both's
        /// probes.
        examples: Vec<RefExample>,
    }

    /// A running operation of the reference: begin, end, name, codes.
    type RefOp = (u64, u64, u32, Vec<u8>);
    /// A waiting one: name, codes.
    type RefWaiting = (u32, Vec<u8>);
    /// A differing pair: the kernel operation's name, thread id, begin, and the two sides'
    /// codes on the probes both have shown.
    type RefExample = (u32, u32, u64, Vec<u8>, Vec<u8>);

    impl Reference {
        fn push(&mut self, i: usize, e: &Event, name: u32) {
            if e.probe == Probe::Op as u8 {
                let new = (e.ts_begin, e.ts_end, name, Vec::new());
                if let Some((begin, _, name, codes)) = self.current[i].insert(e.tid, new) {
                    self.finished(i, e.tid, begin, name, codes);
                }
                return;
            }
            let p = probe_of(e.probe).expect("a known probe");
            self.compared[i] |= 1 << compared_as(p) as u32;
            if let Some((begin, end, _, codes)) = self.current[i].get_mut(&e.tid) {
                if *begin <= e.ts_begin && e.ts_end <= *end {
                    codes.push(Signature::code_of(&Seen::of(e, 0), compared_as(p)));
                }
            }
        }

        fn finished(&mut self, i: usize, tid: u32, begin: u64, name: u32, codes: Vec<u8>) {
            let Some((twin_name, twin)) = self.waiting[1 - i].remove(&(tid, begin)) else {
                self.waiting[i].insert((tid, begin), (name, codes));
                return;
            };
            let both = self.compared[0] & self.compared[1];
            let kept = |v: &[u8]| -> Vec<u8> {
                v.iter()
                    .copied()
                    .filter(|c| both & (1 << (c >> 3)) != 0)
                    .collect()
            };
            let (k, m, kernel_name) = if i == 0 {
                (kept(&codes), kept(&twin), name)
            } else {
                (kept(&twin), kept(&codes), twin_name)
            };
            self.total.ops += 1;
            self.total.agree += u64::from(k == m);
            if k != m {
                self.examples.push((kernel_name, tid, begin, k, m));
            }
        }

        fn finish(mut self, max_examples: usize) -> (Share, u64, Vec<RefExample>) {
            for i in 0..2 {
                let mut running: Vec<_> = std::mem::take(&mut self.current[i])
                    .into_iter()
                    .map(|(tid, (begin, _, name, codes))| (begin, tid, name, codes))
                    .collect();
                running.sort_by_key(|r| (r.0, r.1));
                for (begin, tid, name, codes) in running {
                    self.finished(i, tid, begin, name, codes);
                }
            }
            self.examples.truncate(max_examples);
            (self.total, self.waiting[0].len() as u64, self.examples)
        }
    }

    /// Signatures held in a word and a vector read, compare and change as one vector would:
    /// sequences of every length around the word's eight, equal or differing in one place
    /// (in the word or past it), kill-path replacements in either part.
    #[test]
    fn signatures_behave_as_a_vector() {
        let mut next = crate::test_rng::xorshift(0x5851_f42d_4c95_7f2du64);
        let build = |codes: &[u8]| {
            let mut s = Sigs::default();
            codes.iter().for_each(|&c| s.push(c));
            s
        };
        let mut reused = Sigs::default();
        for _ in 0..5_000 {
            let len = next(2 * HEAD as u64 + 3) as usize;
            // Code 0 too: a word's unused bytes are zero as well.
            let codes: Vec<u8> = (0..len).map(|_| next(4) as u8).collect();
            let mut other = codes.clone();
            match next(4) {
                0 if len > 0 => other[next(len as u64) as usize] ^= 1 + next(3) as u8,
                1 => other.push(next(4) as u8),
                2 if len > 0 => {
                    other.pop();
                }
                _ => {}
            }
            reused.clear();
            codes.iter().for_each(|&c| reused.push(c));
            let (a, b) = (build(&codes), build(&other));
            assert_eq!(a.iter().collect::<Vec<u8>>(), codes);
            assert_eq!(reused.iter().collect::<Vec<u8>>(), codes);
            assert_eq!(a == b, codes == other, "{codes:?} {other:?}");
            assert_eq!(reused == b, codes == other, "{codes:?} {other:?}");
            if len > 0 {
                let (i, c) = (next(len as u64) as usize, next(4) as u8);
                let mut set = build(&codes);
                set.set(i, c);
                let mut expected = codes.clone();
                expected[i] = c;
                assert_eq!(set.iter().collect::<Vec<u8>>(), expected);
                assert!(set == build(&expected));
            }
        }
    }

    #[test]
    fn a_signature_survives_its_one_byte_code() {
        for probe in Probe::ALL {
            for bits in 0..8u8 {
                let mut e = Event::zeroed();
                e.seq_end = 6 + u32::from(bits >> 2);
                e.inode_end = if bits & 2 != 0 { 0 } else { 9 };
                e.flags = if bits & 1 != 0 { flags::HASHED_END } else { 0 };
                let s = Signature {
                    probe,
                    seq_odd: bits & 4 != 0,
                    inode_null: bits & 2 != 0,
                    hashed: bits & 1 != 0,
                };
                let code = Signature::code_of(&Seen::of(&e, 0), probe);
                assert_eq!(Signature::from_code(code), Some(s));
            }
        }
    }
}
