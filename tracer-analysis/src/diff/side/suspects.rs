//! Suspects: events that cannot be judged when they are processed, because a writer that
//! overlaps them may still be in the reorder window. Each waits until processing has passed
//! its end, then is resolved against the history: a NULL-inode lookup return, an ENOENT
//! result, an inode cleared on a hashed dentry, and every operation's result, handed to the
//! cross-side matcher with whether a race makes either side's result possible.
use std::{
    cmp::{Ordering, Reverse},
    collections::BinaryHeap,
};

use serde_json::{json, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{findings::json_map, probes::ENOENT, Shared, SideState};
use crate::diff::{
    align::{Begun, Judgement, OpResult, PathId, Paths, ROOT},
    classify::{self, Class, Ruling},
    evidence::{obs_args, Obs},
    history::{History, State, Writers},
    report::AnomalyKind,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SuspectKind {
    NullLookup,
    /// `late`: the clear arrived after the reorder window had passed its time (whether a
    /// `d_delete` holds it was read from its dentry's writers in processing order).
    ClearHashed {
        late: bool,
    },
    /// Every operation: once every writer that can overlap it is in, its result is handed to
    /// the cross-side matcher with whether a race makes either result possible. `begun`:
    /// its occurrence among its side's operations of its kind on its name (taken in begin
    /// order, as the sides pair them by it) and the matcher's entry for that kind and name.
    /// `enoent`: a stat or open that returned ENOENT, whose result is then also classified
    /// (one suspect for both: they have the same deadline and event, and were resolved one
    /// after the other).
    Result {
        begun: Begun,
        enoent: bool,
    },
}

/// Something to classify once processing has passed its deadline (its [`Due`]'s, the
/// observation's end).
#[derive(Clone, Copy, Debug)]
pub(super) struct Suspect {
    kind: SuspectKind,
    obs: Obs,
    /// The operation the event happened in (same thread, enclosing interval).
    operation: Option<OpKind>,
    /// Once resolved: the next free slot ([`NO_SLOT`]: none).
    next_free: u32,
}

/// The end of [`Suspects`]' free slots.
const NO_SLOT: u32 = u32::MAX;

impl Suspect {
    /// What the event happened in, for an anomaly's report.
    fn operation(&self) -> String {
        let o = &self.obs;
        match self.operation {
            Some(k) if o.op.is_none() => format!("{} in {}", o.probe.symbol(), k.name()),
            Some(k) => k.name().to_string(),
            None => o.probe.symbol().to_string(),
        }
    }
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

/// How many keys wait in [`DueQueue`]'s ring before the greatest go to its heap: a power of
/// two, so a place in the ring is its index masked.
const NEAR: usize = 32;

/// The waiting suspects' keys, least first. Few wait at once (a lookup's deadline is its own
/// key, an operation's its end: at most 8 in the 10 M-event bench), so they sit in a short
/// ring sorted least first, where a push moves the key in from the back past the few greater
/// ones and a pop takes the front. Operations are pushed in begin order and end nearly in
/// it, so an operation's key nearly always stays at the back: with the keys sorted greatest
/// first (a vector popped from its end) it moved past every waiting key that ends before it,
/// about 32 instructions a suspect (callgrind). A binary heap cost about 150 instructions a
/// suspect here. Past [`NEAR`] waiting, the greatest keys go to a heap, so a trace that keeps
/// thousands waiting (an operation with a far end stamp, many threads) stays O(log n) a
/// suspect. A key can be in either part, or held beside them; the least is the least of the
/// three.
struct DueQueue {
    /// The ring: `len` keys from `head` (masked), least first.
    near: [Due; NEAR],
    head: usize,
    len: usize,
    far: BinaryHeap<Reverse<Due>>,
    /// The key of the suspect in slot [`HELD`], outside both parts ([`Suspects::push_lookup`]).
    held: Option<(u64, u64)>,
    /// The least key's deadline, the held one's included, `u64::MAX` with none waiting: every
    /// event asks it, and comparing the two parts' least cost about 20 instructions an event
    /// (callgrind).
    least: u64,
}

impl Default for DueQueue {
    fn default() -> Self {
        DueQueue {
            near: [Due {
                deadline: 0,
                n: 0,
                slot: 0,
            }; NEAR],
            head: 0,
            len: 0,
            far: BinaryHeap::new(),
            held: None,
            least: u64::MAX,
        }
    }
}

impl DueQueue {
    /// `d` must not be numbered below a key waiting in the ring ([`Self::insert_near`]
    /// compares deadlines alone): the suspects are pushed as their events are processed, in
    /// event-number order. Nor may it share the held lookup's number: the held key loses
    /// every tie ([`Self::take_held`]), where the queue alone would give it first, so the
    /// held lookup's exactness rests on its event pushing no other suspect (the handlers
    /// push one an event). Both checked in debug builds and in the crate's tests, which run
    /// whole diffs (`suspects_wait_in_event_number_order_in_a_whole_diff`).
    #[inline(always)]
    fn push(&mut self, d: Due) {
        if cfg!(any(test, debug_assertions)) {
            assert!(
                self.near_keys().all(|w| w.n <= d.n),
                "suspect {} pushed after a greater number",
                d.n
            );
            assert!(
                self.held.is_none_or(|(_, n)| n != d.n),
                "suspect {} pushed beside the held lookup of its own event",
                d.n
            );
        }
        self.least = self.least.min(d.deadline);
        if self.len == NEAR {
            self.push_full(d);
        } else {
            self.insert_near(d);
        }
    }

    /// The keys in the ring, least first.
    fn near_keys(&self) -> impl Iterator<Item = &Due> + '_ {
        (0..self.len).map(move |i| &self.near[(self.head + i) % NEAR])
    }

    /// The ring's least key.
    #[inline(always)]
    fn near_least(&self) -> Option<&Due> {
        (self.len > 0).then(|| &self.near[self.head % NEAR])
    }

    /// A push with the ring full: the greater of `d` and the ring's greatest goes to the
    /// heap. Out of line, so the common push keeps to few registers (its prologue and
    /// epilogue saved six, about 14 instructions a suspect, callgrind).
    #[cold]
    #[inline(never)]
    fn push_full(&mut self, d: Due) {
        let g = self.near[(self.head + self.len - 1) % NEAR];
        if d > g {
            self.far.push(Reverse(d));
        } else {
            self.len -= 1;
            self.far.push(Reverse(g));
            self.insert_near(d);
        }
    }

    /// Insertion from the back: the key goes past the few greater ones (nearly always none
    /// for an operation's). No key waiting is numbered above `d`, so a key is above it
    /// exactly when its deadline is: the deadlines alone are compared. The ring has room.
    #[inline(always)]
    fn insert_near(&mut self, d: Due) {
        let mut at = self.head + self.len;
        while at > self.head {
            let before = self.near[(at - 1) % NEAR];
            if before.deadline <= d.deadline {
                break;
            }
            self.near[at % NEAR] = before;
            at -= 1;
        }
        self.near[at % NEAR] = d;
        self.len += 1;
    }

    /// Takes the ring's least key (there is one).
    #[inline(always)]
    fn pop_near(&mut self) -> Due {
        let d = self.near[self.head % NEAR];
        self.head = (self.head + 1) % NEAR;
        self.len -= 1;
        d
    }

    /// Whether the least key is the heap's.
    fn far_first(&self) -> bool {
        match (self.near_least(), self.far.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (None, _) => true,
            (Some(_), None) => false,
        }
    }

    /// The least key of the two parts, the held one left out.
    fn peek_queued(&self) -> Option<&Due> {
        if self.far_first() {
            self.far.peek().map(|Reverse(d)| d)
        } else {
            self.near_least()
        }
    }

    /// The least key waiting.
    #[cfg(test)]
    fn peek(&self) -> Option<Due> {
        let held = self.held.map(|(deadline, n)| Due {
            deadline,
            n,
            slot: HELD,
        });
        match (held, self.peek_queued()) {
            (Some(h), Some(d)) if d < &h => Some(*d),
            (None, d) => d.copied(),
            (h, _) => h,
        }
    }

    /// Holds the key of the suspect in slot [`HELD`]: false when one is held already.
    #[inline(always)]
    fn hold(&mut self, deadline: u64, n: u64) -> bool {
        if self.held.is_some() {
            return false;
        }
        if cfg!(any(test, debug_assertions)) {
            assert!(
                self.near_keys().all(|w| w.n != n) && self.far.iter().all(|w| w.0.n != n),
                "lookup {n} held beside a queued suspect of its own event"
            );
        }
        self.held = Some((deadline, n));
        self.least = self.least.min(deadline);
        true
    }

    /// Takes the held key when it is the least waiting.
    #[inline(always)]
    fn take_held(&mut self) -> bool {
        let Some(h) = self.held else {
            return false;
        };
        // Nearly always the heap is empty and the ring's front is the queued least.
        let first = if self.far.is_empty() {
            self.near_least().is_none_or(|d| h < (d.deadline, d.n))
        } else {
            self.peek_queued().is_none_or(|d| h < (d.deadline, d.n))
        };
        if first {
            self.held = None;
            self.least = if self.far.is_empty() {
                self.near_least().map_or(u64::MAX, |d| d.deadline)
            } else {
                self.peek_queued().map_or(u64::MAX, |d| d.deadline)
            };
        }
        first
    }

    /// The least key of the two parts (the held one is taken by [`Self::take_held`]).
    #[inline(always)]
    fn pop(&mut self) -> Option<Due> {
        // Nearly always the heap is empty: the ring's front is the least, and the next one
        // the new least.
        if self.far.is_empty() {
            if self.len == 0 {
                return None;
            }
            let d = self.pop_near();
            let least = self.near_least().map_or(u64::MAX, |d| d.deadline);
            self.least = self.held.map_or(least, |h| least.min(h.0));
            return Some(d);
        }
        self.pop_either()
    }

    /// A pop with keys in the heap: out of line, as [`Self::push_full`].
    #[cold]
    #[inline(never)]
    fn pop_either(&mut self) -> Option<Due> {
        let d = if self.far_first() {
            self.far.pop().map(|Reverse(d)| d)
        } else {
            Some(self.pop_near())
        };
        let least = self.peek_queued().map_or(u64::MAX, |d| d.deadline);
        self.least = self.held.map_or(least, |h| least.min(h.0));
        d
    }
}

/// The slot of the held suspect ([`Suspects::push_lookup`]), never on the free list.
const HELD: u32 = 0;

/// Suspects by deadline. The queue moves 24-byte keys; the suspects (an observation each)
/// stay in their slots.
pub(super) struct Suspects {
    queue: DueQueue,
    /// Slot [`HELD`], then the queue's.
    slab: Vec<Suspect>,
    /// The last slot freed, the others chained through [`Suspect::next_free`] (a vector of
    /// free slots cost about 17 instructions a suspect in its push and pop, callgrind).
    free: u32,
}

impl Default for Suspects {
    fn default() -> Self {
        Suspects {
            queue: DueQueue::default(),
            slab: vec![Suspect {
                kind: SuspectKind::NullLookup,
                obs: Obs::BLANK,
                operation: None,
                next_free: NO_SLOT,
            }],
            free: NO_SLOT,
        }
    }
}

impl Suspects {
    /// Written into its slot field by field: a suspect is over 100 bytes, built once.
    fn push(&mut self, kind: SuspectKind, obs: &Obs, operation: Option<OpKind>) {
        let slot = match self.slab.get_mut(self.free as usize) {
            Some(s) => {
                let i = self.free;
                self.free = s.next_free;
                s.kind = kind;
                s.obs = *obs;
                s.operation = operation;
                i
            }
            None => self.grow(kind, obs, operation),
        };
        self.queue.push(Due {
            deadline: obs.ts_end,
            n: obs.n,
            slot,
        });
    }

    /// A NULL-inode lookup's suspect: its deadline is its own key, so it waits only until an
    /// event keyed after it, nearly always alone. It is held in slot [`HELD`], its key beside
    /// the queue's parts and popped when below their least, so suspects leave in the same
    /// order (skipping the queue's push, pop and free slot saved about 28 instructions a
    /// lookup, those the other suspects' pops pay for the held key deducted, callgrind); with
    /// one held already, it waits in the queue.
    #[inline(always)]
    fn push_lookup(&mut self, obs: &Obs, operation: Option<OpKind>) {
        match self.slab.get_mut(HELD as usize) {
            Some(s) if self.queue.hold(obs.ts_end, obs.n) => {
                s.kind = SuspectKind::NullLookup;
                s.obs = *obs;
                s.operation = operation;
            }
            _ => self.push(SuspectKind::NullLookup, obs, operation),
        }
    }

    /// A slot past the slab's end, for a push with none free (only while the most waiting
    /// grows): out of line, as [`DueQueue::push_full`].
    #[cold]
    #[inline(never)]
    fn grow(&mut self, kind: SuspectKind, obs: &Obs, operation: Option<OpKind>) -> u32 {
        self.slab.push(Suspect {
            kind,
            obs: *obs,
            operation,
            next_free: NO_SLOT,
        });
        (self.slab.len() - 1) as u32
    }

    /// The least deadline waiting, `u64::MAX` with none.
    #[inline(always)]
    pub(super) fn next_deadline(&self) -> u64 {
        self.queue.least
    }

    /// The slot of the suspect due first, which stays as it is until the next push: resolved
    /// where it lies (copying it out cost about 50 instructions a suspect).
    pub(super) fn pop(&mut self) -> Option<u32> {
        if self.queue.take_held() {
            return Some(HELD);
        }
        let d = self.queue.pop()?;
        if let Some(s) = self.slab.get_mut(d.slot as usize) {
            s.next_free = self.free;
            self.free = d.slot;
        }
        Some(d.slot)
    }

    fn get(&self, slot: u32) -> &Suspect {
        &self.slab[slot as usize]
    }
}

impl SideState {
    /// The event being handled (staged in the context ring) waits until processing has
    /// passed its end.
    pub(super) fn suspect(&mut self, kind: SuspectKind, operation: Option<OpKind>) {
        self.suspects.push(kind, self.evidence.staged(), operation);
    }

    /// The NULL-inode lookup being handled (staged) waits until processing has passed its
    /// return.
    pub(super) fn suspect_lookup(&mut self, operation: Option<OpKind>) {
        self.suspects.push_lookup(self.evidence.staged(), operation);
    }

    /// The suspect in `slot` (from [`Suspects::pop`]); read in place, copied only for an
    /// anomaly.
    pub(super) fn resolve(&mut self, slot: u32, sh: &mut Shared) {
        let s = self.suspects.get(slot);
        let o = &s.obs;
        match s.kind {
            SuspectKind::NullLookup => {
                // The class alone is cheap; the sentence and evidence only for an anomaly.
                let class = classify::class_of(&self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end);
                self.null[class as usize] += 1;
                if class == Class::Anomaly {
                    let s = *s;
                    let o = &s.obs;
                    let hashed = o.flags & flags::HASHED_BEGIN != 0;
                    let writers = self
                        .dentries
                        .get(o.slot)
                        .map_or(&[][..], |r| &r.writers[..]);
                    let mut v = classify::null_lookup(
                        &self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end, hashed, writers,
                    );
                    debug_assert_eq!(v.class, class);
                    v.evidence.insert("lookup".into(), obs_args(o, &sh.paths));
                    self.add_anomaly(
                        AnomalyKind::NullInodePositive,
                        o,
                        false,
                        s.operation(),
                        v,
                        sh,
                    );
                }
            }
            SuspectKind::Result { begun, enoent } => {
                let Some(kind) = o.op else { return };
                let r = OpResult {
                    kind,
                    path: o.path,
                    path2: o.path2,
                    occurrence: begun.occurrence,
                    key: begun.key,
                    n: o.n,
                    ts_begin: o.ts_begin,
                    ts_end: o.ts_end,
                    tid: o.tid,
                    flags: o.flags,
                    result: o.result,
                };
                let paths = &sh.paths;
                let hist = &self.hist;
                sh.matcher
                    .record(self.index, r, || judge(hist, o, paths), paths);
                if enoent {
                    self.resolve_enoent(slot, sh);
                }
            }
            SuspectKind::ClearHashed { late } => {
                match classify::clear_while_hashed(&self.hist, o.path, o.ts_begin, o.ts_end, o.tid)
                {
                    None => self.diag.d_delete_clears += 1,
                    Some(mut v) => {
                        let s = *s;
                        v.evidence
                            .insert("clear".into(), obs_args(&s.obs, &sh.paths));
                        self.add_anomaly(
                            AnomalyKind::ClearBeforeUnhash,
                            &s.obs,
                            late,
                            s.operation(),
                            v,
                            sh,
                        );
                    }
                }
            }
        }
    }

    /// An ENOENT result of the operation in `slot`: its class, and an anomaly's details.
    fn resolve_enoent(&mut self, slot: u32, sh: &mut Shared) {
        let s = self.suspects.get(slot);
        let o = &s.obs;
        let class = classify::class_of(&self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end);
        self.enoent[class as usize] += 1;
        if class == Class::Anomaly {
            let s = *s;
            let o = &s.obs;
            let mut v = classify::enoent(&self.hist, &sh.paths, o.path, o.ts_begin, o.ts_end);
            debug_assert_eq!(v.class, class);
            let lookups: Vec<Value> = self
                .threads
                .numbers
                .get(&o.tid)
                .map(|&t| {
                    self.evidence
                        .thread_lookups(t as usize)
                        .filter(|l| l.ts_begin >= o.ts_begin && l.ts_end <= o.ts_end)
                        .map(|l| obs_args(l, &sh.paths))
                        .collect()
                })
                .unwrap_or_default();
            v.evidence
                .insert("lookups_in_operation".into(), Value::Array(lookups));
            self.add_anomaly(AnomalyKind::SpuriousEnoent, o, false, s.operation(), v, sh);
        }
    }

    /// Files the result differences no race explains that the matcher gives this side
    /// ([`OpMatcher::take_differences`](crate::diff::align::OpMatcher::take_differences)) as
    /// its anomalies, each on its own operation, whichever side completed the pair; the
    /// evidence names the other side's operation too.
    pub(in crate::diff) fn file_differences(&mut self, sh: &mut Shared) {
        for (k, d) in sh.matcher.take_differences(self.index) {
            let subject = Obs {
                n: k.n,
                ts_begin: k.ts_begin,
                ts_end: k.ts_end,
                tid: k.tid,
                probe: Probe::Op,
                op: Some(k.kind),
                path: k.path,
                path2: k.path2,
                flags: k.flags,
                result: k.result,
                ..Obs::BLANK
            };
            let v = Ruling {
                class: Class::Anomaly,
                why: format!(
                    "{} {} returned {} in the kernel and {} in the model, and no writer of \
                     the name overlaps either side's operation",
                    d.operation, d.name, d.kernel_result, d.model_result
                ),
                evidence: json_map(json!({ "divergence": d })),
            };
            self.add_anomaly(
                AnomalyKind::ResultDiffers,
                &subject,
                false,
                k.kind.name().to_string(),
                v,
                sh,
            );
        }
        // Also filed after the side's end (the other side completed the pair later).
        self.diag.anomalies_not_detailed = self.evidence.not_detailed;
    }
}

/// What this side's history says of an operation's result: whether a race makes another
/// result possible (a writer of its name, or of a directory above it, by another
/// operation overlapping it, or two writers of the name before it that overlapped each
/// other), and whether the history rules the result out (only a stat's or open's found or
/// not found reads directly against the name's state at its begin; a writer's result
/// depends on more: its flags, the parent).
fn judge(hist: &History, o: &Obs, paths: &Paths) -> Judgement {
    const RACY: Judgement = Judgement {
        racy: true,
        contradicts: false,
    };
    // Results that depend only on whether the name exists (a rename onto it replaces it
    // with one of the same type), unless they say what it is: an unlink's or an open's
    // EISDIR or ENOTDIR, which an exchange of a file and a directory can make.
    const EISDIR: i32 = -21;
    const ENOTDIR: i32 = -20;
    let on_name = match o.op {
        Some(OpKind::Unlink | OpKind::Open) if matches!(o.result, EISDIR | ENOTDIR) => {
            Writers::OfExistenceOrType
        }
        Some(OpKind::Stat | OpKind::Open | OpKind::Unlink | OpKind::Create | OpKind::Mkdir) => {
            Writers::OfExistence
        }
        _ => Writers::All,
    };
    let (p, b) = (o.path, o.ts_begin);
    let mut contradicts = false;
    if p != ROOT && matches!(o.op, Some(OpKind::Stat | OpKind::Open)) {
        if hist
            .other_writer_overlapping(p, b, o.ts_end, o.tid, on_name)
            .is_some()
        {
            return RACY;
        }
        // The name's state, read only as far as the result needs: a name found is
        // contradicted by a missing one alone, ENOENT by an existing one (its class asks
        // the same state next, from the kept answer), any other result by neither.
        let state = match o.result {
            0 => hist.state_unless_existing(p, b),
            ENOENT => Some(hist.state_at(p, b)),
            _ => hist.may_race(p, b).then(|| hist.state_at(p, b)),
        };
        match state {
            Some(State::Racing(..)) => return RACY,
            Some(State::Exists(_)) => contradicts = o.result == ENOENT,
            Some(State::Missing(_)) => contradicts = o.result == 0,
            _ => {}
        }
        if raced_above(hist, paths.parent(p), o, Writers::All, paths) {
            return RACY;
        }
    } else if raced_above(hist, Some(p), o, on_name, paths) {
        return RACY;
    }
    if let Some(p2) = o.path2 {
        if raced_above(hist, Some(p2), o, on_name, paths) {
            return RACY;
        }
    }
    Judgement {
        racy: false,
        contradicts,
    }
}

/// Whether `from` or a directory above it (the root excluded) was raced around `o`: a
/// writer of it other than `o` itself overlaps `o` (counting `which` on `from`, every
/// writer above), or its state at `o`'s begin is racing.
fn raced_above(
    hist: &History,
    from: Option<PathId>,
    o: &Obs,
    which: Writers,
    paths: &Paths,
) -> bool {
    let (b, e) = (o.ts_begin, o.ts_end);
    let mut which = which;
    let mut cur = from;
    while let Some(p) = cur.filter(|p| *p != ROOT) {
        if hist.raced(p, b, e, o.tid, which) {
            return true;
        }
        which = Writers::All;
        cur = paths.parent(p);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::history::{tests::Intervals, Fact};

    /// Session 17's judgement, which read a stat's or open's own state in full whatever its
    /// result, walking every name from the operation's up: the oracle of [`judge`].
    fn judge_walk(hist: &History, o: &Obs, paths: &Paths) -> Judgement {
        const RACY: Judgement = Judgement {
            racy: true,
            contradicts: false,
        };
        let mut own = None;
        let on_name = match o.op {
            Some(OpKind::Unlink | OpKind::Open) if matches!(o.result, -21 | -20) => {
                Some(Writers::OfExistenceOrType)
            }
            Some(OpKind::Stat | OpKind::Open | OpKind::Unlink | OpKind::Create | OpKind::Mkdir) => {
                Some(Writers::OfExistence)
            }
            _ => None,
        };
        let reads_own = matches!(o.op, Some(OpKind::Stat | OpKind::Open));
        for start in [o.path, o.path2.unwrap_or(ROOT)] {
            let mut cur = Some(start);
            while let Some(p) = cur.filter(|p| *p != ROOT) {
                let which = on_name.filter(|_| p == start).unwrap_or(Writers::All);
                if hist
                    .other_writer_overlapping(p, o.ts_begin, o.ts_end, o.tid, which)
                    .is_some()
                {
                    return RACY;
                }
                let own_here = p == o.path && own.is_none();
                if (own_here && reads_own) || hist.may_race(p, o.ts_begin) {
                    let state = hist.state_at(p, o.ts_begin);
                    if let State::Racing(..) = state {
                        return RACY;
                    }
                    if own_here {
                        own = Some(state);
                    }
                }
                cur = paths.parent(p);
            }
        }
        let contradicts = reads_own
            && match own {
                Some(State::Exists(_)) => o.result == ENOENT,
                Some(State::Missing(_)) => o.result == 0,
                _ => false,
            };
        Judgement {
            racy: false,
            contradicts,
        }
    }

    /// Judgements on random histories of files and directories (operations of every kind from
    /// four threads, overlapping, some long, some damaged, renames and exchanges between the
    /// names, jumps past the retention that fold) answer as the walk of every name with the
    /// full own state does: each operation added is judged, and operations of every kind and
    /// result on every name (the root too) at points around it.
    #[test]
    fn judgements_agree_with_the_walk_that_read_the_whole_state() {
        use OpKind::{Create, Exchange, Mkdir, Open, Readdir, Rename, Rmdir, Stat, Unlink};
        // A name now and then the root; a second name for a rename or exchange.
        fn random_op(
            rng: &mut impl FnMut(u64) -> u64,
            names: &[PathId],
        ) -> (OpKind, PathId, Option<PathId>, i32) {
            let kinds = [
                Create, Mkdir, Unlink, Rmdir, Rename, Exchange, Stat, Open, Readdir,
            ];
            let pick = |rng: &mut dyn FnMut(u64) -> u64| match rng(30) {
                0 => ROOT,
                _ => names[rng(names.len() as u64) as usize],
            };
            let kind = kinds[rng(kinds.len() as u64) as usize];
            let path = pick(rng);
            let path2 = matches!(kind, Rename | Exchange).then(|| pick(rng));
            let result = [0, 0, 0, -2, -2, -17, -21, -20, -13][rng(9) as usize];
            (kind, path, path2, result)
        }
        let mut paths = Paths::default();
        let names: Vec<PathId> = ["d0", "d0/f0", "d0/f1", "d0/d1", "d0/d1/f2", "d2", "d2/f3"]
            .iter()
            .map(|p| paths.parse(p.as_bytes()))
            .collect();
        let (mut racy, mut contradicts, mut calm) = (0, 0, 0);
        for seed in 1..=30u64 {
            let mut rng = crate::test_rng::xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut ops = Intervals::new(&mut rng);
            let retention = ops.retention;
            let mut hist = History::new(retention);
            for _ in 0..800 {
                let (tid, b) = ops.begin(&mut rng);
                let e = ops.end(&mut rng, (tid, b), 40);
                let now = ops.now;
                let (kind, path, path2, result) = random_op(&mut rng, &names);
                hist.add_op(
                    Fact::from_op(kind, result, b, e, tid as u32),
                    path,
                    path2,
                    now,
                );
                let mut asked = vec![(kind, path, path2, result, b, e, tid as u32)];
                for _ in 0..4 {
                    let (kind, path, path2, result) = random_op(&mut rng, &names);
                    let qb = (now + 50).saturating_sub(rng(retention / 2 + 100));
                    asked.push((kind, path, path2, result, qb, qb + rng(60), rng(4) as u32));
                }
                for (kind, path, path2, result, b, e, tid) in asked {
                    let o = Obs {
                        ts_begin: b,
                        ts_end: e,
                        tid,
                        op: (rng(50) != 0).then_some(kind),
                        path,
                        path2,
                        result,
                        ..Obs::BLANK
                    };
                    let (new, old) = (judge(&hist, &o, &paths), judge_walk(&hist, &o, &paths));
                    assert_eq!(
                        (new.racy, new.contradicts),
                        (old.racy, old.contradicts),
                        "seed {seed}: {o:?}"
                    );
                    match (old.racy, old.contradicts) {
                        (true, _) => racy += 1,
                        (_, true) => contradicts += 1,
                        _ => calm += 1,
                    }
                }
            }
        }
        assert!(
            racy > 1_000 && contradicts > 1_000 && calm > 1_000,
            "racy {racy}, contradicting {contradicts}, neither {calm}"
        );
    }

    /// A popped suspect's slot holds it until the next push, and is then given out again: 5,000
    /// suspects, up to 40 waiting, each read back when popped and compared with a heap of
    /// (deadline, number) (a slot given out while its suspect waits would hold another's
    /// observation), the slab no larger than the most that waited at once and the held slot.
    #[test]
    fn freed_slots_are_reused_and_keep_their_suspect_until_the_next_push() {
        let mut s = Suspects::default();
        let mut heap = BinaryHeap::new();
        let mut rnd = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut most = 0;
        let mut popped = 0;
        for n in 0..5_000u64 {
            let obs = Obs {
                n,
                ts_end: rnd(1_000),
                ..Obs::BLANK
            };
            match rnd(2) {
                0 => s.push_lookup(&obs, None),
                _ => s.push(SuspectKind::ClearHashed { late: false }, &obs, None),
            }
            heap.push(Reverse((obs.ts_end, n)));
            most = most.max(heap.len());
            let pops = if heap.len() < 40 { rnd(2) } else { 1 + rnd(3) };
            for _ in 0..pops {
                let (Some(slot), Some(Reverse((end, n)))) = (s.pop(), heap.pop()) else {
                    break;
                };
                popped += 1;
                let got = s.get(slot);
                assert_eq!((got.obs.ts_end, got.obs.n), (end, n));
            }
        }
        while let (Some(slot), Some(Reverse((end, n)))) = (s.pop(), heap.pop()) {
            popped += 1;
            assert_eq!((s.get(slot).obs.ts_end, s.get(slot).obs.n), (end, n));
        }
        assert_eq!(popped, 5_000);
        assert!(
            s.slab.len() <= most + 1,
            "{} slots, {most} waited",
            s.slab.len()
        );
    }

    /// The held lookup loses every tie, where the queue alone would give it first: a second
    /// suspect of the lookup's own event would leave before it. No handler pushes one; the
    /// debug check stops the first that would (rev31 L1).
    #[test]
    #[should_panic(expected = "pushed beside the held lookup of its own event")]
    fn a_second_suspect_of_the_held_lookups_event_is_refused() {
        let mut s = Suspects::default();
        let o = Obs {
            n: 5,
            ts_end: 10,
            ..Obs::BLANK
        };
        s.push_lookup(&o, None);
        s.push(SuspectKind::ClearHashed { late: false }, &o, None);
    }

    /// The held NULL-inode lookup changes nothing in what leaves when: suspects pushed and
    /// resolved as [`SideState::process`] does (each event's suspects popped while the least
    /// deadline is below its key, then its own pushed; keys now and then late; lookups
    /// deadlined at their key, other suspects later or, late ones, earlier; deadlines often
    /// equal, numbers never) leave in the order the queue alone gave them, with the same
    /// suspect in the slot given, and the least deadline is the queue's after every push and
    /// pop. The oracle is the queue with nothing held, each suspect kept aside by its key's
    /// slot.
    #[test]
    fn the_held_lookup_leaves_in_the_queues_order() {
        let kinds = [
            SuspectKind::NullLookup,
            SuspectKind::ClearHashed { late: false },
            SuspectKind::ClearHashed { late: true },
        ];
        let mut held = 0;
        for seed in 1..=20u64 {
            let mut rnd = crate::test_rng::xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut s = Suspects::default();
            let (mut oracle, mut kept) = (DueQueue::default(), Vec::new());
            let mut now = 0u64;
            let mut popped = 0;
            let mut check_pop = |s: &mut Suspects, oracle: &mut DueQueue, kept: &Vec<Obs>| {
                let (Some(slot), Some(d)) = (s.pop(), oracle.pop()) else {
                    panic!("seed {seed}: one side empty");
                };
                let (got, want) = (s.get(slot), kept[d.slot as usize]);
                assert_eq!(
                    (got.obs.ts_end, got.obs.n),
                    (d.deadline, d.n),
                    "seed {seed}"
                );
                assert_eq!(got.kind, kinds[want.tid as usize], "seed {seed}");
                assert_eq!(got.obs.path, want.path, "seed {seed}");
                assert_eq!(s.next_deadline(), oracle.least, "seed {seed}");
                held += usize::from(slot == HELD);
            };
            for n in 0..3_000u64 {
                // Keys step by 0 to 3 (equal keys often); one event in 20 late.
                let key = match rnd(20) {
                    0 => now.saturating_sub(rnd(8)),
                    _ => {
                        now += rnd(4);
                        now
                    }
                };
                while s.next_deadline() < key {
                    check_pop(&mut s, &mut oracle, &kept);
                    popped += 1;
                }
                assert_eq!(s.next_deadline(), oracle.least, "seed {seed}");
                // At most one suspect an event, as the handlers push.
                if rnd(4) != 0 {
                    let k = match rnd(4) {
                        0 | 1 => 0,
                        2 => 1,
                        _ => 2,
                    };
                    let deadline = match kinds[k] {
                        SuspectKind::NullLookup => key,
                        _ => (key + rnd(12)).saturating_sub(rnd(3)),
                    };
                    let obs = Obs {
                        n,
                        ts_end: deadline,
                        tid: k as u32,
                        path: rnd(1_000) as PathId,
                        ..Obs::BLANK
                    };
                    match kinds[k] {
                        SuspectKind::NullLookup => s.push_lookup(&obs, None),
                        kind => s.push(kind, &obs, None),
                    }
                    oracle.push(Due {
                        deadline,
                        n,
                        slot: kept.len() as u32,
                    });
                    kept.push(obs);
                    assert_eq!(s.next_deadline(), oracle.least, "seed {seed}");
                }
            }
            while oracle.peek().is_some() {
                check_pop(&mut s, &mut oracle, &kept);
                popped += 1;
            }
            assert_eq!(s.pop(), None);
            assert_eq!(popped, kept.len(), "seed {seed}");
        }
        assert!(held > 10_000, "{held} pops of the held lookup");
    }

    /// The suspects of whole diffs (the committed recorded pair: operations and NULL-inode
    /// lookups, under three reorder windows) reach the queue in event-number order, as its
    /// insertion needs ([`DueQueue::push`] asserts it in the crate's tests).
    #[test]
    fn suspects_wait_in_event_number_order_in_a_whole_diff() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for window_ns in [0, 2_000_000, 50_000_000] {
            let opts = crate::diff::DiffOptions {
                window_ns,
                ..Default::default()
            };
            let r = crate::diff::diff_files(
                &fixtures.join("prune-stat.kernel.trace"),
                &fixtures.join("prune-stat.model.trace"),
                &opts,
            )
            .expect("diff");
            assert!(r.divergence.operations_compared > 0);
        }
    }

    /// Keys pop from the queue in the order a binary heap pops them (by deadline, then
    /// number), with few waiting (the ring alone) and with many (the heap takes the
    /// overflow), pops interleaved with pushes, numbers pushed in order and often repeated
    /// (no handler pushes two suspects of one event today, but the insertion by deadline alone
    /// is right for repeats too), as the ring's insertion by deadline alone needs; deadlines
    /// at random, or rising with the number give or take a spread (as operations' ends,
    /// pushed in begin order); the ring wrapping around; the cached least deadline is the
    /// heap's after every push and pop.
    #[test]
    fn keys_leave_in_order_like_a_heap() {
        let least = |h: &BinaryHeap<Reverse<Due>>| h.peek().map_or(u64::MAX, |r| r.0.deadline);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (waiting, spread, rising) in [
            (4, 10, false),
            (NEAR, 1_000, false),
            (NEAR + 1, 5, false),
            (5 * NEAR, 1_000_000, false),
            (8, 40, true),
            (NEAR, 200, true),
            (3 * NEAR, 2_000, true),
        ] {
            let mut queue = DueQueue::default();
            let mut heap = BinaryHeap::new();
            let mut popped = (Vec::new(), Vec::new());
            let mut n = 0;
            for slot in 0..20_000u32 {
                n += next() % 2;
                let d = Due {
                    deadline: if rising { 8 * n } else { 0 } + next() % spread,
                    n,
                    slot,
                };
                queue.push(d);
                heap.push(Reverse(d));
                assert_eq!(queue.least, least(&heap));
                // Fill up to `waiting`, then pop one or two per push, sometimes none.
                let pops = if heap.len() < waiting { 0 } else { next() % 3 };
                for _ in 0..pops {
                    assert_eq!(
                        queue.peek().map(|d| (d.deadline, d.n)),
                        heap.peek().map(|r| (r.0.deadline, r.0.n))
                    );
                    popped.0.extend(queue.pop().map(|d| (d.deadline, d.n)));
                    popped.1.extend(heap.pop().map(|r| (r.0.deadline, r.0.n)));
                    assert_eq!(queue.least, least(&heap));
                }
            }
            popped
                .0
                .extend(std::iter::from_fn(|| queue.pop()).map(|d| (d.deadline, d.n)));
            popped
                .1
                .extend(std::iter::from_fn(|| heap.pop()).map(|r| (r.0.deadline, r.0.n)));
            assert_eq!(
                popped.0, popped.1,
                "waiting {waiting}, spread {spread}, rising {rising}"
            );
            assert_eq!(popped.0.len(), 20_000);
        }
    }
}
