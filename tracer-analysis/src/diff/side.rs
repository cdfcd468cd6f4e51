//! One trace's analysis. Events pass a bounded reorder window (writers and operations keyed by
//! their begin, lookups by their return, so a lookup comes after every writer that could have
//! written what it read), then feed the name and dentry tables, the operation history, the
//! `d_seq` invariants and the suspects: NULL-inode returns, ENOENT results and hashed inode
//! clears, each resolved once every event that could overlap it has been processed.
use std::{
    cmp::{Ordering, Reverse},
    collections::{BTreeMap, BinaryHeap, VecDeque},
};

use crate::agreement::{Seen, Stream};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde_json::{json, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{NameId, OpMatcher, PathId, Paths, ROOT},
    classify::{self, Class, Ruling, WriterSpan},
    event::{Ev, Slot, Tables},
    evidence::{flag_text, obs_args, Evidence, Obs},
    feed::Counts,
    history::{Fact, History, State},
    invariants::{Finding, GapCause, ReadOrder, SeqState},
    protocol::Protocol,
    reorder::key_of,
    report::{AnomalyKind, Classes, Coverage, Diagnostics, GapExample, Side},
    timeline::Timeline,
};

const ENOENT: i32 = -2;
/// Writer spans kept per dentry for overlap questions (a kill is two or three events).
const WRITERS_KEPT: usize = 8;
/// Lookups kept per thread, to show which lookups led to an ENOENT.
const LOOKUPS_KEPT: usize = 16;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SuspectKind {
    NullLookup,
    Enoent,
    ClearHashed,
    /// Every operation: once every writer that can overlap it is in, its result is handed to
    /// the cross-side matcher with whether a race makes either result possible.
    Result,
}

/// Something to classify once processing has passed `deadline`.
#[derive(Clone, Copy, Debug)]
struct Suspect {
    deadline: u64,
    kind: SuspectKind,
    obs: Obs,
    /// The operation the event happened in (same thread, enclosing interval).
    operation: Option<OpKind>,
}

/// Where a suspect waits in [`Suspects`]: ordered by (deadline, event number) alone, as the
/// suspects themselves were, so the heap pops them in the same order.
#[derive(Clone, Copy, Debug)]
struct Due {
    deadline: u64,
    n: u64,
    slot: u32,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.n).cmp(&(other.deadline, other.n))
    }
}

/// Suspects by deadline. The heap moves 24-byte keys; the suspects (an observation each)
/// stay in their slots. (Few wait at once: a lookup's deadline is its own key, an
/// operation's its end; sorted runs, as the reorder window keeps, cost more here.)
#[derive(Default)]
struct Suspects {
    heap: BinaryHeap<Reverse<Due>>,
    slab: Vec<Suspect>,
    free: Vec<u32>,
}

impl Suspects {
    fn push(&mut self, s: Suspect) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = s;
                i
            }
            None => {
                self.slab.push(s);
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse(Due {
            deadline: s.deadline,
            n: s.obs.n,
            slot,
        }));
    }

    fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(d)| d.deadline)
    }

    fn pop(&mut self) -> Option<Suspect> {
        let Reverse(d) = self.heap.pop()?;
        self.free.push(d.slot);
        self.slab.get(d.slot as usize).copied()
    }
}

/// One dentry id's life as seen in the trace.
#[derive(Default)]
struct DentryRec {
    /// The name it was last seen under.
    bound: Option<PathId>,
    generation: u32,
    /// When its hashed life ended (killed, or a negative dentry unhashed): seen again after
    /// that, the id stands for a new generation.
    dead_at: Option<u64>,
    seq: SeqState,
    order: ReadOrder,
    writers: Vec<WriterSpan>,
    /// A gap a lookup found, held until the dentry's next writer: one that entered behind
    /// the value the lookup read was stamped after it and explains it.
    held_gap: Option<Box<Gap>>,
}

/// The dentry records of one trace, by the number its front gave each pointer: a dense
/// table, where each question about an event's dentry used to probe a map of large records.
/// A record exists once the analysis bound the dentry to a name or saw a writer on it.
#[derive(Default)]
struct Dentries {
    recs: Vec<Option<DentryRec>>,
}

impl Dentries {
    fn get(&self, s: Slot) -> Option<&DentryRec> {
        self.recs.get(s as usize)?.as_ref()
    }

    fn get_mut(&mut self, s: Slot) -> Option<&mut DentryRec> {
        self.recs.get_mut(s as usize)?.as_mut()
    }

    /// The record of `s`, a fresh one the first time.
    fn entry(&mut self, s: Slot) -> &mut DentryRec {
        let i = s as usize;
        if i >= self.recs.len() {
            self.recs.resize_with(i + 1, || None);
        }
        self.recs[i].get_or_insert_with(DentryRec::default)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut DentryRec> {
        self.recs.iter_mut().flatten()
    }

    fn iter(&self) -> impl Iterator<Item = &DentryRec> {
        self.recs.iter().flatten()
    }
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

/// A coverage gap with its cause, and the observation that revealed it.
struct Gap {
    from: u32,
    to: u32,
    since: u64,
    cause: &'static str,
    obs: Obs,
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
    lookups: VecDeque<Obs>,
}

/// A finding made while processing an event, turned into an anomaly once the event is in the
/// context ring.
struct Fresh {
    kind: AnomalyKind,
    ruling: Ruling,
}

pub struct SideState {
    index: usize,
    proto: Protocol,
    lim: Limits,
    /// Key of the latest processed event: processing has reached this time.
    now: u64,
    origin: Option<u64>,
    // Tables.
    dentries: Dentries,
    /// Per path id, the last generation given out.
    generations: Vec<u32>,
    /// Dentries (by slot) used as parents with no name known.
    unnamed: HashSet<Slot>,
    /// Per name number of the trace, its id in the shared paths.
    names: Vec<NameId>,
    hist: History,
    tids: HashMap<u32, TidState>,
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
    null: BTreeMap<Class, u64>,
    enoent: BTreeMap<Class, u64>,
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
            index: match side {
                Side::Kernel => 0,
                Side::Model => 1,
            },
            proto,
            lim,
            now: 0,
            origin: None,
            dentries: Dentries::default(),
            generations: Vec::new(),
            unnamed: HashSet::new(),
            names: Vec::new(),
            // A query reaches back at most an operation's length behind the processing time,
            // and operations longer than the window arrive late anyway.
            hist: History::new(lim.window_ns.saturating_mul(4)),
            tids: HashMap::new(),
            suspects: Suspects::default(),
            next_n: 0,
            evidence: Evidence::new(side, lim.context, lim.max_anomalies),
            fresh: Vec::new(),
            setup,
            counts: Counts::default(),
            ops_processed: 0,
            null: BTreeMap::new(),
            enoent: BTreeMap::new(),
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
        while let Some(s) = self.suspects.pop() {
            self.resolve(s, sh);
        }
        let mut held: Vec<Gap> = self
            .dentries
            .iter_mut()
            .filter_map(|r| r.held_gap.take())
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

    /// The shared id of the trace's name number `n`.
    fn name_of(&mut self, n: u32, tables: &Tables, paths: &mut Paths) -> NameId {
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
        if key < self.now {
            self.diag.late_events += 1;
        } else {
            self.now = key;
        }
        while self.suspects.next_deadline().is_some_and(|d| d < key) {
            if let Some(s) = self.suspects.pop() {
                self.resolve(s, sh);
            }
        }
        let origin = *self.origin.get_or_insert(ev.ts_begin);
        let stream = [Stream::Kernel, Stream::Model][self.index];
        let name = self.name_of(ev.name, tables, &mut sh.paths);
        let ptr = tables.ptr(ev.dentry);
        let is_op = ev.probe == Probe::Op as u8;
        sh.agreement.push(
            stream,
            Seen {
                probe: ev.probe,
                aux: ev.aux,
                tid: ev.tid,
                ts_begin: ev.ts_begin,
                ts_end: ev.ts_end,
                seq_end: ev.seq_end,
                inode_end: ev.inode_end,
                flags: ev.flags,
                // Only an operation's name is read: its path, for an example.
                name: if is_op {
                    sh.paths.name_bytes(name)
                } else {
                    &[]
                },
            },
        );
        let Some(probe) = ev.probe() else {
            self.diag.unknown_events += 1;
            return;
        };
        if ev.has(flags::READ_FAULT) {
            self.diag.read_faults += 1;
            return;
        }
        let ev = Named {
            ev,
            name_id: name,
            ptr,
        };
        let obs = match probe {
            Probe::Op => self.on_op(&ev, sh),
            Probe::DLookupRcu | Probe::DLookup => Some(self.on_lookup(&ev, probe, sh)),
            _ => self.on_writer(&ev, probe, sh),
        };
        let Some(obs) = obs else {
            self.diag.unknown_events += 1;
            return;
        };
        self.evidence.keep(obs, &sh.paths);
        for f in std::mem::take(&mut self.fresh) {
            let operation = self.operation_of(&obs);
            self.add_anomaly(f.kind, &obs, operation, f.ruling, sh);
        }
        if let Some(t) = sh.timeline.as_mut() {
            let (name, cat) = match obs.op {
                Some(k) => (format!("{} {}", k.name(), sh.paths.render(obs.path)), "op"),
                None => (
                    format!(
                        "{} {}",
                        probe.symbol(),
                        String::from_utf8_lossy(sh.paths.leaf(obs.path))
                    ),
                    "probe",
                ),
            };
            let args = obs_args(&obs, &sh.paths);
            t.slice(
                self.pid(),
                obs.tid,
                &name,
                cat,
                obs.ts_begin.saturating_sub(origin),
                obs.ts_end.saturating_sub(origin),
                &args,
            );
        }
    }

    fn obs(&mut self, ev: &Named, probe: Probe, path: PathId, generation: u32) -> Obs {
        self.next_n += 1;
        Obs {
            n: self.next_n,
            ts_begin: ev.ts_begin,
            ts_end: ev.ts_end,
            tid: ev.tid,
            probe,
            op: None,
            path,
            path2: None,
            dentry: ev.ptr,
            slot: ev.dentry,
            generation,
            seq_begin: ev.seq_begin,
            seq_end: ev.seq_end,
            inode_begin: ev.inode_begin,
            inode_end: ev.inode_end,
            flags: ev.flags,
            result: ev.result,
        }
    }

    fn on_op(&mut self, ev: &Named, sh: &mut Shared) -> Option<Obs> {
        let kind = OpKind::from_u32(ev.aux)?;
        let (path, path2) = sh.paths.operation(ev.name_id, ev.has(flags::TWO_PATHS));
        let [f1, f2] = Fact::from_op(kind, ev.result, ev.ts_begin, ev.ts_end, ev.tid);
        // Operations come in begin order: this is the first one, the setup is over.
        for (p, k) in std::mem::take(&mut self.setup) {
            self.hist.add(p, Fact::setup(k, ev.ts_begin), self.now);
        }
        if let Some(f) = f1 {
            self.hist.add(path, f, self.now);
        }
        if let (Some(f), Some(p)) = (f2, path2) {
            self.hist.add(p, f, self.now);
        }
        self.tids.entry(ev.tid).or_default().op = Some(OpSpan {
            kind,
            ts_begin: ev.ts_begin,
            ts_end: ev.ts_end,
            path,
            path2,
        });
        self.ops_processed += 1;
        let mut obs = self.obs(ev, Probe::Op, path, 0);
        obs.op = Some(kind);
        obs.path2 = path2;
        self.suspect(SuspectKind::Result, obs, Some(kind));
        if matches!(kind, OpKind::Stat | OpKind::Open) && ev.result == ENOENT {
            self.suspect(SuspectKind::Enoent, obs, Some(kind));
        }
        Some(obs)
    }

    /// The path of the event's dentry (or, for a miss, of the name looked up): its parent's
    /// last name plus its own. A parent whose name is unknown (never seen named, or its id's
    /// last life ended: the slab reuses addresses) is named from the operation around the
    /// event, else taken as the root.
    fn path_of(&mut self, ev: &Named, sh: &mut Shared) -> PathId {
        if ev.dentry != 0 && ev.dentry == ev.parent {
            // IS_ROOT(dentry).
            return ROOT;
        }
        let known = self
            .dentries
            .get(ev.parent)
            .filter(|r| r.dead_at.is_none_or(|d| ev.ts_begin <= d))
            .and_then(|r| r.bound);
        let dir = match known {
            Some(p) => p,
            None => match self.dir_from_operation(ev, &sh.paths) {
                Some(d) => {
                    self.name_dir(ev.parent, d, ev.ts_begin, sh);
                    d
                }
                None => {
                    // A miss under a directory allocated by this very walk is normal; only
                    // keys of dentries can go wrong.
                    if ev.parent != 0 && ev.dentry != 0 {
                        self.unnamed.insert(ev.parent);
                    }
                    ROOT
                }
            },
        };
        // Most events name a dentry already bound to this very name: no interning lookup.
        let bound = self.dentries.get(ev.dentry).and_then(|r| r.bound);
        if let Some(p) = bound.filter(|p| {
            ev.dentry != 0
                && sh.paths.parent(*p) == Some(dir)
                && sh.paths.leaf_name(*p) == ev.name_id
        }) {
            return p;
        }
        sh.paths.child(dir, ev.name_id)
    }

    /// The directory an event's parent stands for, from the operation its thread is running:
    /// a walk resolving name N for an operation on "a/N/b" does so in "a". A directory whose
    /// dentry was re-created by a ref-walk (`d_alloc_parallel` after an RCU miss) is never
    /// the subject of an event, so this is the only way to learn its name. None when the
    /// event is outside an operation or its name fits more than one directory of the paths.
    fn dir_from_operation(&self, ev: &Named, paths: &Paths) -> Option<PathId> {
        let op = self.tids.get(&ev.tid)?.op?;
        if op.ts_begin > ev.ts_begin || ev.ts_end > op.ts_end {
            return None;
        }
        let mut dir = None;
        for mut cur in [Some(op.path), op.path2].into_iter().flatten() {
            while let Some(parent) = paths.parent(cur) {
                if paths.leaf_name(cur) == ev.name_id {
                    if dir.is_some_and(|d| d != parent) {
                        return None;
                    }
                    dir = Some(parent);
                }
                cur = parent;
            }
        }
        dir
    }

    /// Records that directory dentry `id` is `dir`.
    fn name_dir(&mut self, id: Slot, dir: PathId, ts_begin: u64, sh: &mut Shared) {
        if dir == ROOT {
            // Names under it were keyed at the root all along: they were right.
            self.unnamed.remove(&id);
            self.dentries.entry(id).bound = Some(ROOT);
        } else {
            self.bind(id, dir, ts_begin, sh);
        }
    }

    /// Binds dentry `id` to `path` and returns its generation there: a new one when the id
    /// shows up under another name, or again after its hashed life ended.
    fn bind(&mut self, id: Slot, path: PathId, ts_begin: u64, sh: &mut Shared) -> u32 {
        if path == ROOT {
            return 0;
        }
        let rec = self.dentries.entry(id);
        let reborn = rec.dead_at.is_some_and(|d| ts_begin > d);
        let mut ended = None;
        if reborn {
            self.diag.seq_regressions += rec.seq.regressions;
            self.diag.seq_decreases_within_clock_skew += rec.order.within_skew;
            rec.seq = SeqState::default();
            rec.order.reset();
            rec.writers.clear();
            rec.dead_at = None;
            ended = rec.held_gap.take();
        }
        if reborn || rec.bound != Some(path) {
            let i = path as usize;
            if i >= self.generations.len() {
                self.generations.resize(i + 1, 0);
            }
            let g = &mut self.generations[i];
            *g += 1;
            rec.generation = *g;
            rec.bound = Some(path);
        }
        let generation = rec.generation;
        if let Some(g) = ended {
            self.gap(*g, sh);
        }
        generation
    }

    fn on_lookup(&mut self, ev: &Named, probe: Probe, sh: &mut Shared) -> Obs {
        let path = self.path_of(ev, sh);
        let generation = if ev.dentry != 0 {
            self.bind(ev.dentry, path, ev.ts_begin, sh)
        } else {
            0
        };
        let obs = self.obs(ev, probe, path, generation);
        if ev.dentry != 0 {
            if ev.has(flags::VALIDATED) != (ev.seq_begin == ev.seq_end) {
                self.fresh.push(Fresh {
                    kind: AnomalyKind::ValidatedFlag,
                    ruling: Ruling {
                        class: Class::Anomaly,
                        why: format!(
                            "the lookup is {} but read d_seq {} then {}: the flag says the \
                             caller's check {} when the values say it {}",
                            if ev.has(flags::VALIDATED) {
                                "validated"
                            } else {
                                "not validated"
                            },
                            ev.seq_begin,
                            ev.seq_end,
                            if ev.has(flags::VALIDATED) {
                                "passes"
                            } else {
                                "fails"
                            },
                            if ev.has(flags::VALIDATED) {
                                "fails"
                            } else {
                                "passes"
                            },
                        ),
                        evidence: json_map(json!({
                            "seq_begin": ev.seq_begin,
                            "seq_end": ev.seq_end,
                            "flags": flag_text(ev.flags),
                        })),
                    },
                });
            }
            // The probe reads after its return stamp; the thread's operation ending bounds it.
            let read_by = self
                .tids
                .get(&ev.tid)
                .and_then(|t| t.op)
                .filter(|op| op.ts_begin <= ev.ts_begin && op.ts_end >= ev.ts_end)
                .map_or(ev.ts_end, |op| op.ts_end);
            let (found, decreased) = match self.dentries.get_mut(ev.dentry) {
                Some(r) => (
                    r.seq.lookup(ev.seq_end, ev.ts_end, read_by),
                    r.order.read(ev.seq_end, ev.cpu, ev.ts_begin, ev.ts_end),
                ),
                None => (None, None),
            };
            if let Some(Finding::Decreased { from, to, since }) = decreased {
                self.fresh.push(Fresh {
                    kind: AnomalyKind::SeqDecreased,
                    ruling: Ruling {
                        class: Class::Anomaly,
                        why: format!(
                            "d_seq read {to}, below the {from} a lookup that returned before \
                             this one began had read: the count went backwards within the \
                             dentry's life"
                        ),
                        evidence: json_map(json!({
                            "earlier_value": from,
                            "value": to,
                            "previous_observation_ts": since,
                        })),
                    },
                });
            }
            if let Some(Finding::Gap {
                from, to, since, ..
            }) = found
            {
                // Attributed now, while the operations around it are still in the history.
                let gap = Gap {
                    from,
                    to,
                    since,
                    cause: self.attribute_gap(&obs, since),
                    obs,
                };
                let earlier = self
                    .dentries
                    .get_mut(ev.dentry)
                    .and_then(|r| r.held_gap.replace(Box::new(gap)));
                if let Some(g) = earlier {
                    self.gap(*g, sh);
                }
            }
            if probe == Probe::DLookupRcu && ev.inode_begin == 0 {
                if ev.has(flags::VALIDATED) {
                    let op = self.enclosing_op(&obs);
                    self.suspect(SuspectKind::NullLookup, obs, op);
                } else {
                    *self.null.entry(Class::RejectedSnapshot).or_insert(0) += 1;
                }
            }
        }
        let t = self.tids.entry(ev.tid).or_default();
        if t.lookups.len() == LOOKUPS_KEPT {
            t.lookups.pop_front();
        }
        t.lookups.push_back(obs);
        obs
    }

    fn on_writer(&mut self, ev: &Named, probe: Probe, sh: &mut Shared) -> Option<Obs> {
        if ev.dentry == 0 {
            return None;
        }
        let path = self.path_of(ev, sh);
        let generation = self.bind(ev.dentry, path, ev.ts_begin, sh);
        let obs = self.obs(ev, probe, path, generation);
        let proto = &self.proto;
        let rec = self.dentries.entry(ev.dentry);
        let findings = rec.seq.writer(ev, probe, proto);
        let held = rec.held_gap.take();
        if rec.writers.len() == WRITERS_KEPT {
            rec.writers.remove(0);
        }
        rec.writers.push(WriterSpan {
            probe,
            ts_begin: ev.ts_begin,
            ts_end: ev.ts_end,
            tid: ev.tid,
            flags: ev.flags,
        });
        // Inside a traced d_delete on the same thread, the clear is d_delete's own, whatever
        // the operations' timing says.
        let in_d_delete = rec.writers.iter().any(|w| {
            w.probe == Probe::DDelete
                && w.tid == ev.tid
                && w.ts_begin <= ev.ts_begin
                && ev.ts_end <= w.ts_end
        });
        let clear = matches!(probe, Probe::DentryUnlinkInode | Probe::DentryIput)
            && ev.inode_begin != 0
            && ev.inode_end == 0;
        let hashed = ev.has(flags::HASHED_BEGIN);
        // A negative dentry's hashed life ends at its unhash, also inside `__d_move` (odd
        // count): only the positive dentry being moved is rehashed; the negative target is
        // left unhashed and dies with no traced event, and its address comes back as a new
        // dentry whose d_seq starts again from 0.
        let negative_unhash = ev.inode_begin == 0
            && match probe {
                Probe::DDropInner => true,
                Probe::DDrop => hashed,
                _ => false,
            };
        if (clear && !hashed) || negative_unhash {
            rec.dead_at = Some(ev.ts_end);
        }
        if let Some(g) = held {
            if matches!(findings[0], Some(Finding::SeenEarly { .. })) {
                // This writer's own move, read before its stamp: explained.
                self.diag.seq_moves_seen_early += 1;
            } else {
                self.gap(*g, sh);
            }
        }
        for f in findings.into_iter().flatten() {
            self.finding(f, &obs, sh);
        }
        if clear && hashed && !in_d_delete && !ev.has(flags::NO_ENTRY) {
            let op = self.enclosing_op(&obs);
            self.suspect(SuspectKind::ClearHashed, obs, op);
        }
        Some(obs)
    }

    fn enclosing_op(&self, obs: &Obs) -> Option<OpKind> {
        let op = self.tids.get(&obs.tid)?.op?;
        (op.ts_begin <= obs.ts_begin && op.ts_end >= obs.ts_end).then_some(op.kind)
    }

    fn operation_of(&self, obs: &Obs) -> String {
        match (obs.op, self.enclosing_op(obs)) {
            (Some(k), _) => k.name().into(),
            (None, Some(k)) => format!("{} in {}", obs.probe.symbol(), k.name()),
            (None, None) => obs.probe.symbol().into(),
        }
    }

    fn suspect(&mut self, kind: SuspectKind, obs: Obs, operation: Option<OpKind>) {
        self.suspects.push(Suspect {
            deadline: obs.ts_end,
            kind,
            obs,
            operation,
        });
    }

    fn finding(&mut self, f: Finding, obs: &Obs, sh: &mut Shared) {
        match f {
            Finding::Gap {
                from,
                to,
                since,
                cause,
            } => {
                let cause = match cause {
                    GapCause::DMove => "__d_move (odd d_seq at ___d_drop entry)",
                    GapCause::InsideWriter(p) => match p {
                        Probe::DDrop => "untraced writer inside __d_drop",
                        Probe::DDropInner => "untraced writer inside ___d_drop",
                        Probe::DentryUnlinkInode => "untraced writer inside dentry_unlink_inode",
                        Probe::DentryIput => "untraced writer inside dentry_iput",
                        Probe::DMove | Probe::DMoveTarget => "untraced writer inside __d_move",
                        Probe::DInstantiate | Probe::DInstantiateInner | Probe::DInstantiateNew => {
                            "untraced writer inside d_instantiate"
                        }
                        Probe::DAdd | Probe::DAddInner => "untraced writer inside d_add",
                        _ => "untraced writer inside a traced one",
                    },
                    GapCause::Unattributed => self.attribute_gap(obs, since),
                };
                let gap = Gap {
                    from,
                    to,
                    since,
                    cause,
                    obs: *obs,
                };
                self.gap(gap, sh);
            }
            // Settles a held gap (on_writer); nothing of its own to report. Decreases are
            // found by lookups (on_lookup).
            Finding::SeenEarly { .. } | Finding::Decreased { .. } => {}
            Finding::ShortWithin {
                probe,
                expected,
                observed,
            } => {
                let ruling = Ruling {
                    class: Class::Anomaly,
                    why: format!(
                        "{} moved d_seq by {observed}, the protocol ({}) requires {expected}",
                        probe.symbol(),
                        self.proto.source
                    ),
                    evidence: json_map(json!({
                        "expected_delta": expected,
                        "observed_delta": observed,
                        "seq_begin": obs.seq_begin,
                        "seq_end": obs.seq_end,
                        "hashed_at_entry": obs.flags & flags::HASHED_BEGIN != 0,
                    })),
                };
                self.fresh.push(Fresh {
                    kind: AnomalyKind::SeqDelta,
                    ruling,
                });
            }
            Finding::MissingOwed {
                by,
                base,
                amount,
                found,
                owed_since,
            } => {
                let ruling = Ruling {
                    class: Class::Anomaly,
                    why: format!(
                        "the caller of {} owed d_seq +{amount} after it returned (at {base}); \
                         the next writer found {found}",
                        by.symbol()
                    ),
                    evidence: json_map(json!({
                        "owed_by": by.symbol(),
                        "owed_since_ts": owed_since,
                        "expected_at_least": base.wrapping_add(amount),
                        "found": found,
                    })),
                };
                self.fresh.push(Fresh {
                    kind: AnomalyKind::SeqDelta,
                    ruling,
                });
            }
        }
    }

    fn gap(&mut self, g: Gap, sh: &mut Shared) {
        let Gap {
            from,
            to,
            since,
            cause,
            obs,
        } = g;
        self.coverage.total += 1;
        if let Some(t) = sh.timeline.as_mut() {
            let origin = self.origin.unwrap_or(0);
            let args = json!({"from": from, "to": to, "cause": cause});
            t.instant(
                self.pid(),
                obs.tid,
                "coverage gap",
                "coverage-gap",
                obs.ts_end.saturating_sub(origin),
                &args,
            );
        }
        if self.coverage.examples.len() < self.lim.max_examples {
            self.coverage.examples.push(GapExample {
                name: sh.paths.render(obs.path),
                dentry: obs.dentry,
                generation: obs.generation,
                from_seq: from,
                to_seq: to,
                since_ts: since,
                ts: obs.ts_begin,
                observed_by: obs.probe.symbol(),
                cause: cause.to_string(),
            });
        }
        *self.gap_causes.entry(cause).or_insert(0) += 1;
    }

    /// Names the untraced writer of a gap from the operations on the name meanwhile.
    fn attribute_gap(&self, obs: &Obs, since: u64) -> &'static str {
        let (b, e) = (since.min(obs.ts_begin), obs.ts_end);
        let ops = [
            (
                &[OpKind::Create, OpKind::Mkdir, OpKind::Open][..],
                "d_instantiate (create)",
            ),
            (&[OpKind::Rename, OpKind::Exchange][..], "__d_move (rename)"),
            (
                &[OpKind::Unlink, OpKind::Rmdir][..],
                "untraced d_delete path (unlink)",
            ),
        ];
        ops.iter()
            .find(|(kinds, _)| self.hist.op_overlapping(obs.path, b, e, kinds).is_some())
            .map_or("unknown (no operation on the name explains it)", |(_, c)| c)
    }

    fn resolve(&mut self, s: Suspect, sh: &mut Shared) {
        let o = &s.obs;
        // Named only for an anomaly: most suspects resolve to nothing to report.
        let operation = || match s.operation {
            Some(k) if o.op.is_none() => format!("{} in {}", o.probe.symbol(), k.name()),
            Some(k) => k.name().to_string(),
            None => o.probe.symbol().to_string(),
        };
        match s.kind {
            SuspectKind::NullLookup => {
                let hashed = o.flags & flags::HASHED_BEGIN != 0;
                let writers = self
                    .dentries
                    .get(o.slot)
                    .map_or(&[][..], |r| &r.writers[..]);
                // The class alone is cheap; the sentence and evidence only for an anomaly.
                let class = classify::class_of(&self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end);
                *self.null.entry(class).or_insert(0) += 1;
                if class == Class::Anomaly {
                    let mut v = classify::null_lookup(
                        &self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end, hashed, writers,
                    );
                    debug_assert_eq!(v.class, class);
                    v.evidence.insert("lookup".into(), obs_args(o, &sh.paths));
                    self.add_anomaly(AnomalyKind::NullInodePositive, o, operation(), v, sh);
                }
            }
            SuspectKind::Enoent => {
                let class = classify::class_of(&self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end);
                *self.enoent.entry(class).or_insert(0) += 1;
                if class == Class::Anomaly {
                    let mut v =
                        classify::enoent(&self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end);
                    debug_assert_eq!(v.class, class);
                    let lookups: Vec<Value> = self
                        .tids
                        .get(&o.tid)
                        .map(|t| {
                            t.lookups
                                .iter()
                                .filter(|l| l.ts_begin >= o.ts_begin && l.ts_end <= o.ts_end)
                                .map(|l| obs_args(l, &sh.paths))
                                .collect()
                        })
                        .unwrap_or_default();
                    v.evidence
                        .insert("lookups_in_operation".into(), Value::Array(lookups));
                    self.add_anomaly(AnomalyKind::SpuriousEnoent, o, operation(), v, sh);
                }
            }
            SuspectKind::Result => {
                let Some(kind) = o.op else { return };
                let race = self.race_around(o, &sh.paths);
                if let Some(d) = sh.matcher.record(
                    self.index,
                    kind,
                    o.path,
                    o.result,
                    o.ts_begin,
                    race.is_some(),
                    &sh.paths,
                ) {
                    let v = Ruling {
                        class: Class::Anomaly,
                        why: format!(
                            "{} {} returned {} in the kernel and {} in the model, and no \
                             writer of the name overlaps either side's operation",
                            d.operation, d.name, d.kernel_result, d.model_result
                        ),
                        evidence: json_map(json!({ "divergence": d })),
                    };
                    self.add_anomaly(AnomalyKind::ResultDiffers, o, operation(), v, sh);
                }
            }
            SuspectKind::ClearHashed => {
                match classify::clear_while_hashed(
                    &self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end,
                ) {
                    None => self.diag.d_delete_clears += 1,
                    Some(mut v) => {
                        v.evidence.insert("clear".into(), obs_args(o, &sh.paths));
                        self.add_anomaly(AnomalyKind::ClearBeforeUnhash, o, operation(), v, sh);
                    }
                }
            }
        }
    }

    /// What makes an operation's result depend on an order the two sides may not share: a
    /// writer of its name (or of a directory above it) by another operation overlapping it,
    /// or two writers of the name before it that overlapped each other.
    fn race_around(&self, o: &Obs, paths: &Paths) -> Option<Fact> {
        for start in [Some(o.path), o.path2].into_iter().flatten() {
            let mut cur = Some(start);
            while let Some(p) = cur.filter(|p| *p != ROOT) {
                if let Some(f) = self
                    .hist
                    .other_writer_overlapping(p, o.ts_begin, o.ts_end, o.tid)
                {
                    return Some(*f);
                }
                if let State::Racing(w, _) = self.hist.state_at(p, o.ts_begin) {
                    return Some(*w);
                }
                cur = paths.parent(p);
            }
        }
        None
    }

    fn add_anomaly(
        &mut self,
        kind: AnomalyKind,
        subject: &Obs,
        operation: String,
        v: Ruling,
        sh: &mut Shared,
    ) {
        if let Some(t) = sh.timeline.as_mut() {
            let origin = self.origin.unwrap_or(0);
            let name = sh.paths.render(subject.path);
            let args = json!({"name": name, "why": v.why, "evidence": v.evidence});
            t.instant(
                self.pid(),
                subject.tid,
                &format!("ANOMALY {}", kind.name()),
                "anomaly",
                subject.ts_begin.saturating_sub(origin),
                &args,
            );
        }
        self.evidence.add(kind, subject, operation, v, &sh.paths);
    }

    /// The front's counts, once it has read the whole trace.
    pub fn absorb(&mut self, counts: Counts) {
        self.diag.operation_time_range = counts.operation_time_range;
        self.diag.probe_time_range = counts.probe_time_range;
        self.diag.max_reorder_depth = counts.max_reorder_depth;
        self.counts = counts;
    }

    /// Events per probe symbol and per operation, as read.
    pub fn event_counts(&self) -> super::report::EventCounts {
        let mut per_probe = BTreeMap::new();
        for p in Probe::ALL {
            per_probe.insert(p.symbol().to_string(), self.counts.per_probe[p as usize]);
        }
        let unknown = self.counts.per_probe[0];
        if unknown > 0 {
            per_probe.insert("unknown".into(), unknown);
        }
        let mut per_operation = BTreeMap::new();
        for k in OpKind::ALL {
            let n = self.counts.per_op[k as usize];
            if n > 0 {
                per_operation.insert(k.name().to_string(), n);
            }
        }
        super::report::EventCounts {
            total: self.counts.arrivals,
            per_probe,
            per_operation,
        }
    }

    /// Coverage gaps found in the trace (the header's unattached targets are added by the caller).
    pub fn coverage(&self) -> Coverage {
        let mut c = self.coverage.clone();
        c.by_cause = self
            .gap_causes
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        c
    }

    /// NULL-inode lookup returns per class.
    pub fn null_classes(&self) -> Classes {
        classes(&self.null, &Class::ALL)
    }

    /// ENOENT results per class (a snapshot cannot be rejected by an operation).
    pub fn enoent_classes(&self) -> Classes {
        classes(
            &self.enoent,
            &[Class::Negative, Class::OverlapsWriter, Class::Anomaly],
        )
    }
}

fn classes(counts: &BTreeMap<Class, u64>, shown: &[Class]) -> Classes {
    let by_class: BTreeMap<String, u64> = shown
        .iter()
        .map(|c| (c.name().to_string(), counts.get(c).copied().unwrap_or(0)))
        .collect();
    Classes {
        total: counts.values().sum(),
        anomalous: counts.get(&Class::Anomaly).copied().unwrap_or(0),
        by_class,
    }
}

fn json_map(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}
