//! One trace's analysis. Events pass a bounded reorder window (writers and operations keyed by
//! their begin, lookups by their return, so a lookup comes after every writer that could have
//! written what it read), then feed the name and dentry tables, the operation history, the
//! `d_seq` invariants and the suspects: NULL-inode returns, ENOENT results and hashed inode
//! clears, each resolved once every event that could overlap it has been processed.
//!
//! This file holds the side's state and the per-event entry point ([`SideState::process`]);
//! the rest of its methods are split by concern, each file an `impl SideState` block over this
//! one state:
//! - `probes.rs`: what an operation, a lookup and a writer event do to the state;
//! - `dentries.rs`: the per-dentry records, and which name and generation a dentry stands for;
//! - `suspects.rs`: what waits until every overlapping event is in, and how it is resolved
//!   (NULL-inode returns, ENOENTs, hashed clears, operation results for the cross-side matcher);
//! - `findings.rs`: coverage gaps and anomalies, as they are counted and reported;
//! - `results.rs`: the side's counts and classes, read out for the report.
mod dentries;
mod findings;
mod probes;
mod results;
mod suspects;

use std::collections::BTreeMap;

use crate::agreement::{Names, Running, Seen, Stream};
use foldhash::{HashMap, HashSet, HashSetExt};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{writes, NameId, OpMatcher, PathId, Paths},
    classify::Class,
    event::{Ev, Slot, Tables},
    evidence::{Evidence, Obs, Probed, SetAside, Skipped},
    feed::Counts,
    history::History,
    protocol::Protocol,
    reorder::key_of,
    report::{AnomalyKind, Coverage, Diagnostics, Side},
    timeline::Timeline,
};
use dentries::Dentries;
use findings::{Fresh, Gap};
use suspects::Suspects;

/// How a side's trace ends: what of the recording its file may lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Nothing: it finished, or it was interrupted (the threads stop between operations and
    /// the ring is drained before the footer is written).
    Whole,
    /// The recording failed after the workload returned (the footer lists its threads): every
    /// operation it ran is in the file, the probe events after the failure are not.
    ProbesLost,
    /// The file stops early (damaged, or no footer), or the recording failed without the
    /// workload's threads: operations are missing too.
    Cut,
}

/// Where the events a cut trace lacks may begin, and what shows it (named in the reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutBound {
    /// A reorder window behind the newest key read (`at` is where the window starts): a
    /// lost probe event follows every event read.
    Window { at: u64 },
    /// Where thread `tid`'s last operation in the file ended: the one it ran next, lost,
    /// began after it.
    Thread { tid: u32, at: u64 },
    /// Only `with_ops` of the workload's `threads` have an operation in the file: the
    /// others' may have begun anywhere.
    ThreadsWithoutOps { threads: usize, with_ops: usize },
    /// The header names no workload the diff can read: threads with no operation in the
    /// file cannot be ruled out.
    ThreadsUnknown,
}

/// A cut trace's bounds: for the anomalies a lost name-making or -removing operation can
/// explain (every kind), and for `result-differs`, which a lost operation of any kind can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutBounds {
    pub names: CutBound,
    pub results: CutBound,
}

/// What the header's workload says of one of its threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Its operations' kinds ([`kind_bit`]).
    pub kinds: u16,
    /// How many operations it runs in all (None: it runs for a time, or until the others end).
    pub ops: Option<u64>,
}

/// An operation kind's bit in a set of kinds.
pub fn kind_bit(k: OpKind) -> u16 {
    1 << k as u16
}

/// The kinds that make or remove names.
fn writing_kinds() -> u16 {
    OpKind::ALL
        .into_iter()
        .filter(|&k| writes(k))
        .map(kind_bit)
        .fold(0, |a, b| a | b)
}

impl CutBound {
    /// The earliest key a missing event may have.
    pub fn from(&self) -> u64 {
        match *self {
            CutBound::Window { at } | CutBound::Thread { at, .. } => at,
            CutBound::ThreadsWithoutOps { .. } | CutBound::ThreadsUnknown => 0,
        }
    }
}

/// State both sides share: the path keys, the cross-side operation matcher, the timeline.
pub struct Shared {
    pub paths: Paths,
    pub matcher: OpMatcher,
    pub timeline: Option<Timeline>,
    pub agreement: crate::agreement::Builder,
}

/// The knobs of one diff.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub context: usize,
    pub window_ns: u64,
    pub max_anomalies: usize,
    pub max_examples: usize,
}

/// An event with its name's shared id (`name_id`; the event's own `name` is its trace's
/// number) and its dentry's pointer.
struct Named<'a> {
    ev: &'a Ev,
    name_id: NameId,
    ptr: u64,
}

impl std::ops::Deref for Named<'_> {
    type Target = Ev;
    fn deref(&self) -> &Ev {
        self.ev
    }
}

#[derive(Clone, Copy)]
struct OpSpan {
    kind: OpKind,
    ts_begin: u64,
    ts_end: u64,
    path: PathId,
    path2: Option<PathId>,
}

#[derive(Default)]
struct TidState {
    op: Option<OpSpan>,
    /// Its operations so far, and their kinds ([`kind_bit`]).
    ops: u64,
    kinds: u16,
    /// Its current operation as the event agreement follows it.
    agreement: Running,
}

/// An operation's name for the event agreement's examples: the path [`Seen::name`] numbers.
impl Names for Paths {
    fn name_bytes(&self, name: u32) -> &[u8] {
        Paths::name_bytes(self, name)
    }
}

/// Per thread id, its state: in a table by a number given at first sight, so each event hashes
/// its thread id once, for the event agreement and the handlers (they hashed it up to three
/// times: a hash probe each in the profile).
struct Threads {
    numbers: HashMap<u32, u32>,
    /// Thread ids seen, direct-mapped by their low bits, with their number plus one (0: an
    /// empty line): the hash probe cost about 45 instructions an event (callgrind), this
    /// about 10, and a trace has few threads.
    recent: [(u32, u32); THREAD_LINES],
    states: Vec<TidState>,
}

const THREAD_LINES: usize = 64;

impl Default for Threads {
    fn default() -> Self {
        Threads {
            numbers: HashMap::default(),
            recent: [(0, 0); THREAD_LINES],
            states: Vec::new(),
        }
    }
}

impl Threads {
    /// The number of thread `tid`, given now if it has none. Inlined, the rare miss apart:
    /// as a call its prologue and epilogue cost more than the look-up.
    #[inline(always)]
    fn number(&mut self, tid: u32) -> usize {
        let line = tid as usize % THREAD_LINES;
        if let Some(&(t, n)) = self.recent.get(line) {
            if t == tid && n != 0 {
                return n as usize - 1;
            }
        }
        self.number_slow(tid, line)
    }

    #[cold]
    #[inline(never)]
    fn number_slow(&mut self, tid: u32, line: usize) -> usize {
        let next = self.states.len() as u32;
        let n = *self.numbers.entry(tid).or_insert(next);
        if n == next {
            self.states.push(TidState::default());
        }
        if let Some(e) = self.recent.get_mut(line) {
            *e = (tid, n + 1);
        }
        n as usize
    }

    fn get(&self, tid: u32) -> Option<&TidState> {
        self.states.get(*self.numbers.get(&tid)? as usize)
    }
}

pub struct SideState {
    index: usize,
    /// The event agreement's stream of this side (indexing a two-element array by `index`
    /// cost 7 instructions an event).
    stream: Stream,
    proto: Protocol,
    lim: Limits,
    /// Key of the latest processed event: processing has reached this time.
    now: u64,
    /// Key of the latest probe event (not an operation) processed.
    last_probe: Option<u64>,
    origin: Option<u64>,
    // Tables.
    dentries: Dentries,
    /// Per path id, the last generation given out.
    generations: Vec<u32>,
    /// Dentries (by slot) used as parents with no name known.
    unnamed: HashSet<Slot>,
    /// Validated NULL-inode returns and hashed inode clears keyed under such a parent: not
    /// judged (a reason).
    pub unnamed_unjudged: u64,
    /// Per name number of the trace, its id in the shared paths.
    names: Vec<NameId>,
    hist: History,
    threads: Threads,
    suspects: Suspects,
    next_n: u64,
    fresh: Vec<Fresh>,
    pub evidence: Evidence,
    /// The workload's setup (done before its first operation, with no operation event of its
    /// own): added to the history as creates that end when the first operation begins.
    setup: Vec<(PathId, OpKind)>,
    /// What the trace's front counted as it read (filled in at the end by [`Self::absorb`]).
    pub counts: Counts,
    // Results.
    pub ops_processed: u64,
    /// NULL-inode returns and ENOENTs per class, indexed by `Class as usize` (a map's
    /// search per suspect showed in the profile).
    null: [u64; Class::ALL.len()],
    enoent: [u64; Class::ALL.len()],
    /// NULL-inode returns and ENOENTs judged anomalies, then set aside: taken out of the
    /// `Class::Anomaly` counts.
    set_aside: [u64; 2],
    coverage: Coverage,
    /// Coverage gaps per cause (static names: a gap costs no allocation).
    gap_causes: BTreeMap<&'static str, u64>,
    pub diag: Diagnostics,
}

impl SideState {
    pub fn new(
        side: Side,
        proto: Protocol,
        lim: Limits,
        setup: Vec<(PathId, OpKind)>,
    ) -> SideState {
        SideState {
            stream: match side {
                Side::Kernel => Stream::Kernel,
                Side::Model => Stream::Model,
            },
            index: match side {
                Side::Kernel => 0,
                Side::Model => 1,
            },
            proto,
            lim,
            now: 0,
            last_probe: None,
            origin: None,
            dentries: Dentries::default(),
            generations: Vec::new(),
            unnamed: HashSet::new(),
            unnamed_unjudged: 0,
            names: Vec::new(),
            // A query reaches back at most an operation's length behind the processing time,
            // and operations longer than the window arrive late anyway.
            hist: History::new(lim.window_ns.saturating_mul(4)),
            threads: Threads::default(),
            suspects: Suspects::default(),
            next_n: 0,
            evidence: Evidence::new(side, lim.context, lim.max_anomalies),
            fresh: Vec::new(),
            setup,
            counts: Counts::default(),
            ops_processed: 0,
            null: [0; Class::ALL.len()],
            enoent: [0; Class::ALL.len()],
            set_aside: [0; 2],
            coverage: Coverage::default(),
            gap_causes: BTreeMap::new(),
            diag: Diagnostics::default(),
        }
    }

    fn pid(&self) -> u32 {
        self.index as u32 + 1
    }

    /// End of the trace (or of its readable part), every event processed: resolves every
    /// suspect.
    pub fn finish(&mut self, sh: &mut Shared) {
        sh.agreement.end_of(
            self.stream,
            self.threads
                .states
                .iter_mut()
                .map(|t| std::mem::take(&mut t.agreement)),
        );
        while let Some(s) = self.suspects.pop() {
            self.resolve(s, sh);
        }
        self.file_differences(sh);
        let mut held: Vec<Gap> = self
            .dentries
            .iter_mut()
            .flat_map(|r| [r.awaits_d_drop.take(), r.held_gap.take()])
            .flatten()
            .map(|g| *g)
            .collect();
        held.sort_by_key(|g| g.obs.n);
        for g in held {
            self.gap(g, sh);
        }
        self.evidence.close();
        self.diag.anomalies_not_detailed = self.evidence.not_detailed;
        self.diag.unnamed_parents = self.unnamed.len() as u64;
        self.diag.seq_regressions += self.dentries.iter().map(|r| r.seq.regressions).sum::<u64>();
        self.diag.seq_decreases_within_clock_skew += self
            .dentries
            .iter()
            .map(|r| r.order.within_skew)
            .sum::<u64>();
    }

    /// Once the trace's end is known: sets aside the anomalies in doubt, those a late event
    /// could have changed and, when events are missing at the end (`bounds`, from
    /// [`Self::cut_bounds`]), those reaching at or past where a missing one may begin; a
    /// `result-differs` also past where the other side's missing operations may begin
    /// (`other_results`); those reading events of a probe whose entries the kernel skipped
    /// (`skipped`).
    ///
    /// Each anomaly's mark on the timeline is written now, as an anomaly or as set aside.
    /// Err: the anomalies' records could not be kept.
    pub fn settle(
        &mut self,
        bounds: Option<CutBounds>,
        other_results: Option<CutBound>,
        skipped: Skipped,
        paths: &Paths,
        mut timeline: Option<&mut Timeline>,
    ) -> std::io::Result<SetAside> {
        self.evidence.skipped(skipped);
        let other = other_results.map_or(u64::MAX, |b| b.from());
        match bounds {
            Some(b) => self
                .evidence
                .cut(b.names.from(), b.results.from().min(other)),
            None if other_results.is_some() => self.evidence.cut(u64::MAX, other),
            None => {}
        }
        let pid = self.pid();
        let out = self.evidence.set_aside(paths, |doubt| {
            if let Some(t) = timeline.as_deref_mut() {
                t.settle_mark(pid, doubt);
            }
        })?;
        self.diag.anomalies_not_detailed = self.evidence.not_detailed;
        self.diag.undetailed_within_limit = std::mem::take(&mut self.evidence.undetailed);
        for (kinds, _) in out.by_doubt.values() {
            for (i, (kind, counts)) in [
                (AnomalyKind::NullInodePositive, &mut self.null),
                (AnomalyKind::SpuriousEnoent, &mut self.enoent),
            ]
            .into_iter()
            .enumerate()
            {
                let n = kinds.get(&kind).copied().unwrap_or(0);
                counts[Class::Anomaly as usize] = counts[Class::Anomaly as usize].saturating_sub(n);
                self.set_aside[i] += n;
            }
        }
        Ok(out)
    }

    /// Where the events a trace ending as `ending` may lack can begin (their key: an
    /// operation's begin, a lookup's return, a writer's entry). Only an event keyed at or
    /// before an anomaly's end could change its judgment, so what ends before this point is
    /// safe. `plans`: the header workload's threads, when it has a readable one.
    ///
    /// A lost probe event would come after every event read (the file is in completion
    /// order), so by the reorder window's premise its key is at most a window behind the
    /// newest key read. A lost operation is keyed by its begin, which its length puts
    /// arbitrarily far back; but each workload thread runs its operations one after another
    /// and the file holds them in its order, so the ones lost are the thread's last and began
    /// after the end of its last operation in the file. A thread that ran as many operations
    /// as its plan has (as every plan its kinds fit says) lost none. A thread with no
    /// operation in the file bounds nothing, nor does a workload whose threads are unknown.
    ///
    /// Only an operation making or removing a name explains a NULL inode, an ENOENT or a
    /// clear, so those threads bound every kind once each is known: as many threads were
    /// seen doing so as the workload has threads that may. A lost operation of any kind
    /// changes how a name's operations are numbered for the other side: every thread bounds
    /// `result-differs`.
    pub fn cut_bounds(&self, ending: Ending, plans: Option<&[ThreadPlan]>) -> Option<CutBounds> {
        let window = |key: u64| CutBound::Window {
            at: key.saturating_sub(self.lim.window_ns),
        };
        let both = |b: CutBound| CutBounds {
            names: b,
            results: b,
        };
        match ending {
            Ending::Whole => None,
            // Operations are all there; the probe events stopped where the recording failed,
            // which later operations (a thread's pause, its last operation) may be past.
            Ending::ProbesLost => Some(both(
                self.last_probe.map_or(CutBound::Window { at: 0 }, window),
            )),
            Ending::Cut => {
                let Some(plans) = plans else {
                    return Some(both(CutBound::ThreadsUnknown));
                };
                let writing = writing_kinds();
                let probes = window(self.now);
                // Per thread with an operation: where its last one ended, whether it made or
                // removed a name, whether it may still have run more.
                let ran: Vec<(u64, u32, bool, bool)> = self
                    .threads
                    .numbers
                    .iter()
                    .filter_map(|(&tid, &n)| {
                        let t = &self.threads.states[n as usize];
                        let mut fit = plans.iter().filter(|p| p.kinds & t.kinds == t.kinds);
                        let done =
                            fit.clone().next().is_some() && fit.all(|p| p.ops == Some(t.ops));
                        Some((t.op?.ts_end, tid, t.kinds & writing != 0, !done))
                    })
                    .collect();
                let earliest = |wrote_only: bool| {
                    let ends = ran
                        .iter()
                        .filter(|r| r.3 && (r.2 || !wrote_only))
                        .map(|&(at, tid, _, _)| (at, tid));
                    match ends.min() {
                        Some((at, tid)) if at < probes.from() => CutBound::Thread { tid, at },
                        _ => probes,
                    }
                };
                let results = if ran.len() < plans.len() {
                    CutBound::ThreadsWithoutOps {
                        threads: plans.len(),
                        with_ops: ran.len(),
                    }
                } else {
                    earliest(false)
                };
                let wrote = ran.iter().filter(|r| r.2).count();
                let names = if wrote >= plans.iter().filter(|p| p.kinds & writing != 0).count() {
                    earliest(true)
                } else {
                    results
                };
                Some(CutBounds { names, results })
            }
        }
    }

    /// The shared id of the trace's name number `n`.
    fn name_of(&mut self, n: u32, tables: &Tables, paths: &mut Paths) -> NameId {
        if let Some(&id) = self.names.get(n as usize) {
            return id;
        }
        while self.names.len() <= n as usize {
            let bytes = tables.names.get(self.names.len()).map_or(&[][..], |b| b);
            self.names.push(paths.name(bytes));
        }
        self.names[n as usize]
    }

    /// One event, in key order (from the trace's [`super::feed`]), with the tables its
    /// numbers stand in.
    pub fn process(&mut self, ev: &Ev, tables: &Tables, sh: &mut Shared) {
        let key = key_of(ev);
        let late = key < self.now;
        if late {
            self.diag.late_events += 1;
        } else {
            self.now = key;
        }
        while self.suspects.next_deadline() < key {
            if let Some(s) = self.suspects.pop() {
                self.resolve(s, sh);
            }
        }
        if sh.matcher.has_differences(self.index) {
            self.file_differences(sh);
        }
        // Read only for the timeline and reports: not held across the event.
        if self.origin.is_none() {
            self.origin = Some(ev.ts_begin);
        }
        let name = self.name_of(ev.name, tables, &mut sh.paths);
        let ptr = tables.ptr(ev.dentry);
        let is_op = ev.probe == Probe::Op as u8;
        if !is_op && self.last_probe.is_none_or(|k| k < key) {
            self.last_probe = Some(key);
        }
        let thread = self.threads.number(ev.tid);
        let Some(probe) = ev.probe() else {
            self.diag.unknown_events += 1;
            return;
        };
        let Some(state) = self.threads.states.get_mut(thread) else {
            debug_assert!(false, "a thread's state is made when it is numbered");
            return;
        };
        sh.agreement.push_running(
            self.stream,
            &mut state.agreement,
            probe,
            Seen {
                probe: ev.probe,
                aux: ev.aux,
                tid: ev.tid,
                ts_begin: ev.ts_begin,
                ts_end: ev.ts_end,
                seq_end: ev.seq_end,
                inode_end: ev.inode_end,
                flags: ev.flags,
                name,
            },
            &sh.paths,
        );
        if ev.has(flags::READ_FAULT) {
            self.diag.read_faults += 1;
            return;
        }
        let ev = Named {
            ev,
            name_id: name,
            ptr,
        };
        // Each handler builds the event's observation in the context ring's staged slot
        // ([`Evidence::stage`]), where it is kept: written once. A probe event's handler
        // gives its path, for the probes seen at it.
        let path = match probe {
            Probe::Op => {
                if !self.on_op(&ev, thread, sh) {
                    self.diag.unknown_events += 1;
                    return;
                }
                None
            }
            Probe::DLookupRcu | Probe::DLookup => Some(self.on_lookup(&ev, thread, probe, sh)),
            _ => {
                let Some(path) = self.on_writer(&ev, probe, late, sh) else {
                    self.diag.unknown_events += 1;
                    return;
                };
                Some(path)
            }
        };
        if late {
            // What was judged before this event arrived did not have it.
            let obs = *self.evidence.staged();
            self.evidence.late(&obs, key, &sh.paths);
        }
        // As staged: the observation's dentry is `ptr`, its slot the event's.
        let probed = path.map(|path| Probed {
            probe,
            slot: (ptr != 0).then_some(ev.dentry),
            path,
        });
        self.evidence.commit(&sh.paths, probed);
        // Nearly always empty: taking and dropping an empty vector cost about 24 instructions
        // an event in the profile.
        if !self.fresh.is_empty() {
            let obs = *self.evidence.newest();
            for f in std::mem::take(&mut self.fresh) {
                let operation = self.operation_of(&obs);
                self.add_anomaly(f.kind, &obs, late, operation, f.ruling, sh);
            }
        }
        if let Some(t) = sh.timeline.as_mut() {
            self.slice(t, probe, &sh.paths);
        }
    }

    /// The event just kept, as a slice of the timeline: out of line, as only `--timeline`
    /// asks it (inline, the newest event's place was found for every event, about 5
    /// instructions).
    #[cold]
    #[inline(never)]
    fn slice(&self, t: &mut Timeline, probe: Probe, paths: &Paths) {
        let obs = self.evidence.newest();
        let origin = self.origin.unwrap_or(0);
        let (name, cat) = match obs.op {
            Some(k) => (format!("{} {}", k.name(), paths.render(obs.path)), "op"),
            None => (
                format!(
                    "{} {}",
                    probe.symbol(),
                    String::from_utf8_lossy(paths.leaf(obs.path))
                ),
                "probe",
            ),
        };
        t.slice(
            self.pid(),
            &name,
            cat,
            obs.ts_begin.saturating_sub(origin),
            obs.ts_end.saturating_sub(origin),
            obs,
            paths,
        );
    }

    /// Builds the event's observation in the context ring's staged slot (`op` and `path2`
    /// an operation's).
    #[inline(always)]
    fn stage(
        &mut self,
        ev: &Named,
        probe: Probe,
        path: PathId,
        generation: u32,
        (op, path2): (Option<OpKind>, Option<PathId>),
    ) {
        self.next_n += 1;
        // Field by field: assigned whole, it was built on the stack and copied in.
        let o = self.evidence.stage();
        o.n = self.next_n;
        o.ts_begin = ev.ts_begin;
        o.ts_end = ev.ts_end;
        o.tid = ev.tid;
        o.probe = probe;
        o.op = op;
        o.path = path;
        o.path2 = path2;
        o.dentry = ev.ptr;
        o.slot = ev.dentry;
        o.generation = generation;
        o.seq_begin = ev.seq_begin;
        o.seq_end = ev.seq_end;
        o.inode_begin = ev.inode_begin;
        o.inode_end = ev.inode_end;
        o.flags = ev.flags;
        o.result = ev.result;
    }

    fn enclosing_op(&self, obs: &Obs) -> Option<OpKind> {
        let op = self.threads.get(obs.tid)?.op?;
        (op.ts_begin <= obs.ts_begin && op.ts_end >= obs.ts_end).then_some(op.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thread ids get numbers in the order they are first seen, whatever the cache of recent
    /// ids holds: ids sharing a line (0, 64, 128), thread 0 against the empty lines, ids
    /// coming back after others evicted them.
    #[test]
    fn threads_are_numbered_in_first_seen_order() {
        let mut threads = Threads::default();
        let mut first_seen: Vec<u32> = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..5_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let tid = match i % 4 {
                0 => (x % 3) as u32 * THREAD_LINES as u32,
                1 => (x % 200) as u32,
                _ => 1_000 + (x % 7) as u32,
            };
            let expected = first_seen
                .iter()
                .position(|t| *t == tid)
                .unwrap_or_else(|| {
                    first_seen.push(tid);
                    first_seen.len() - 1
                });
            assert_eq!(threads.number(tid), expected, "tid {tid} at {i}");
        }
        assert_eq!(threads.states.len(), first_seen.len());
        assert_eq!(threads.numbers.len(), first_seen.len());
    }
}
