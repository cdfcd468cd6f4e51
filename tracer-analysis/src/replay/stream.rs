//! Replay in timestamp order, streamed: the kernel trace is read once, and each operation runs
//! as soon as nothing still to come can take its place or move it, so memory is set by the
//! operations and events of one reorder window, not by the length of the trace.
//!
//! The order is that of a stable sort of all operations by where they took effect
//! ([`KernelOp::placed_at`]; ties in trace order), and an operation's effect comes from the
//! probe events of its thread inside its span ([`effect`]). Both are exact when every event
//! arrives within `window` of trace time of the latest end seen before it (the recorder writes
//! per-CPU buffers in turn and operations at their end, a few milliseconds apart). An event
//! that arrives later is counted as late (the diff's reorder window makes the same
//! assumption): a late operation runs at the first chance, a late probe event whose operation
//! has run is ignored.
//!
//! With `early`, a probe event is assigned as soon as its operation is known, instead of when the
//! window passes it (the events of a window were most of the memory and time). Exact because:
//! [`Effect::merge`](super::Effect::merge) is the maximum of a total order (commutative,
//! associative), so only which operation an event goes to matters, not when; the one it goes to
//! (the thread's last op begun at or before it, by (begin, index)) changes only if an op arriving
//! later begins between that op's begin and the event's. Such an op lands right after it in the
//! thread's list (the events assigned early to the ops before that one begin before it, by the same
//! rule), so comparing, when an op arrives, its begin with `reach` of the one before it finds every
//! case; it is counted as late, and `replay_to_trace` replays again without `early`. This needs
//! events that end no earlier than they begin: a damaged one is never assigned early, and is judged
//! late by its end.
//!
//! The lookups of a thread read past the back of its ops (in a steady stream, those of the op
//! it has not yet written) wait as the tail of its queue kept apart ([`Coming`]), with the
//! latest end among them. The op read next takes them as one when each begins in its span and
//! before the thread's next op and ends by its end: the look at the queue would meet each of
//! them and take it, and of lookups the latest end decides ([`Pending::take_lookups`]), so its
//! effect and `reach` are the ones the look gives. Anything else that reaches the tail (an op
//! that does not take them all, an event queued behind them, the window passing the first of
//! them) first puts them back at the queue's end, so the queue is at every step the one the
//! take-in without the tail keeps (a test holds the two side by side).
//!
//! An end more than [`MAX_END_LEAD_NS`] past both its event's begin and every end read before it
//! is damaged ([`damaged_end`]): the recorder writes an event at its end, so an honest one ends
//! near the latest end before it, or began near it. Taken at its word it would hold the rest of
//! the trace in memory (everything after it late, the operation it ends never settled, the
//! replay redone with a window as wide as the damage); the window takes such an event as ending
//! at the latest end read before it (at its begin if that is later) instead, and the model trace
//! keeps the recorded end.
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, VecDeque},
    path::Path,
};

use foldhash::HashMap;
use tracer_common::{OpKind, Probe};
use userspace_dcache::{Dcache, ModelError, StepHook, Task};

use super::{
    effect, lookup_effect, parse_op, task, KernelOp, Paths, ProbeEvent, ReplayError,
    MAX_END_LEAD_NS,
};
use crate::trace::{Reader, Record, ThreadInfo, Writer};

/// What a streamed replay did.
pub(super) struct Outcome {
    pub ops: u64,
    /// Operations whose model result differs from the kernel's.
    pub differ: u64,
    /// Operations placed at their effect rather than their begin.
    pub placed: u64,
    /// Events that arrived more than the window after later ones, and (with `early`)
    /// operations that would take an event already assigned to the one before them: either
    /// way the order may not be the exact one, and `replay_to_trace` replays again.
    pub late: u64,
    /// The most trace time an event began before the latest end seen when it arrived: a
    /// window above it makes no event late.
    pub max_lag: u64,
    /// Events whose end is damaged ([`damaged_end`]): the window took them as ending at the
    /// latest end read before them, or at their begin if later.
    pub damaged_ends: u64,
    pub threads: Vec<ThreadInfo>,
}

/// Whether an event may be assigned early. The argument in the module comment needs it to end
/// no earlier than it begins (a damaged one could be overturned by an op that arrives after
/// the one it went to has run, unseen), and `reach` (one past its begin) to fit in a `u64`.
fn early_candidate(begin: u64, end: u64) -> bool {
    begin <= end && begin < u64::MAX
}

/// Whether an event's end is damaged: more than [`MAX_END_LEAD_NS`] after its begin and after
/// `horizon`, the latest end read before it. An honest end is near the latest one before it
/// (the recorder writes events at their ends, its per-CPU buffers in turn), unless nothing was
/// recorded for a while; then the event began near it too (a long operation writes its probe
/// events, ending inside it, before itself).
fn damaged_end(begin: u64, end: u64, horizon: u64) -> bool {
    end > horizon.max(begin).saturating_add(MAX_END_LEAD_NS)
}

/// An operation read and not yet run (64 bytes, was 88: a window holds a million of these,
/// read back a second of trace time after they were written; the deque's buffer is not
/// line-aligned, so each still spans two cache lines, where an 88-byte one spanned 2.25). Its
/// effect accumulates in `op.effect` while it is open ([`PendingOps::is_open`]) and is final
/// from then on.
struct Pending {
    op: KernelOp,
    /// One past the latest begin of the events assigned to it early, 0 with none (8 bytes,
    /// not an `Option`'s 16: a window holds a million of these). An event begun at `u64::MAX`
    /// is not assigned early.
    reach: u64,
}

impl Pending {
    /// Takes `e`, an event of its thread inside its span, as one of its own (the caller has
    /// checked that it is still open).
    fn take(&mut self, paths: &Paths, names: &Paths, e: &ProbeEvent) {
        if let Some(new) = effect(&self.op, paths, names, e) {
            self.op.effect = Some(self.op.effect.map_or(new, |f| f.merge(new)));
        }
    }

    /// [`Pending::take`] for an event assigned early.
    fn take_early(&mut self, paths: &Paths, names: &Paths, e: &ProbeEvent) {
        self.take(paths, names, e);
        self.took_early(e);
    }

    /// Counts `e`, assigned early, in its `reach`.
    fn took_early(&mut self, e: &ProbeEvent) {
        self.reach = self.reach.max(e.ts_begin.saturating_add(1));
    }

    /// [`Pending::take`] of lookups of its thread inside its span, the latest ending at
    /// `latest`: of lookups the latest decides ([`Effect::merge`] is the maximum of an order
    /// in which a later lookup ranks higher), so taking that one is taking them all.
    fn take_lookups(&mut self, latest: u64) {
        if let Some(new) = lookup_effect(self.op.kind, latest) {
            self.op.effect = Some(self.op.effect.map_or(new, |f| f.merge(new)));
        }
    }
}

/// The operations read and not run, by index in the trace from `base` on, and whether each is
/// still open (its effect may still change: a probe event not yet assigned may fall in its
/// span). The flags are a deque of their own: [`Stream::first_open`] reads the flag of an
/// operation a second of trace time after it was written, 64 to a cache line instead of one
/// in each operation's entry.
#[derive(Default)]
struct PendingOps {
    pending: VecDeque<Option<Pending>>,
    open: VecDeque<bool>,
    base: usize,
}

impl PendingOps {
    fn push(&mut self, p: Pending) {
        self.pending.push_back(Some(p));
        self.open.push_back(true);
    }

    fn get(&self, i: usize) -> Option<&Pending> {
        self.pending.get(i.wrapping_sub(self.base))?.as_ref()
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Pending> {
        self.pending.get_mut(i.wrapping_sub(self.base))?.as_mut()
    }

    fn is_open(&self, i: usize) -> bool {
        self.open.get(i.wrapping_sub(self.base)) == Some(&true)
    }

    /// Settles operation `i` (its effect is final) and returns it, if it is still pending.
    fn close(&mut self, i: usize) -> Option<&mut Pending> {
        if let Some(open) = self.open.get_mut(i.wrapping_sub(self.base)) {
            *open = false;
        }
        self.get_mut(i)
    }

    fn ran(&self, i: usize) -> bool {
        self.pending
            .get(i.wrapping_sub(self.base))
            .is_none_or(|p| p.is_none())
    }

    /// Takes operation `i` out to run it, and forgets those at the front that have run.
    fn take(&mut self, i: usize) -> Option<Pending> {
        let p = self
            .pending
            .get_mut(i.wrapping_sub(self.base))
            .and_then(Option::take);
        while let Some(None) = self.pending.front() {
            self.pending.pop_front();
            self.open.pop_front();
            self.base += 1;
        }
        p
    }
}

/// Keys in the order they are taken out, smallest first: a queue when they come in order (as
/// a trace's operations mostly do), a heap for those that do not.
struct Queue<K> {
    run: VecDeque<K>,
    heap: BinaryHeap<Reverse<K>>,
}

impl<K: Ord> Default for Queue<K> {
    fn default() -> Queue<K> {
        Queue {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Copy> Queue<K> {
    #[inline(always)]
    fn push(&mut self, k: K) {
        if self.run.back().is_none_or(|&last| last <= k) {
            self.run.push_back(k);
        } else {
            self.heap.push(Reverse(k));
        }
    }

    fn is_empty(&self) -> bool {
        self.run.is_empty() && self.heap.is_empty()
    }

    fn peek(&self) -> Option<K> {
        match (self.run.front(), self.heap.peek()) {
            (Some(&a), Some(&Reverse(b))) => Some(a.min(b)),
            (a, b) => a.copied().or(b.map(|r| r.0)),
        }
    }

    /// [`Queue::pop`] when `take` accepts the smallest key: the side it is on is found once
    /// (a peek and then a pop found it twice, and copied the key out twice).
    fn pop_if(&mut self, take: impl FnOnce(&K) -> bool) -> Option<K> {
        let from_heap = match (self.run.front(), self.heap.peek()) {
            (Some(a), Some(Reverse(b))) => b < a,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => return None,
        };
        if from_heap {
            let top = self.heap.peek_mut()?;
            take(&top.0).then(|| std::collections::binary_heap::PeekMut::pop(top).0)
        } else {
            take(self.run.front()?)
                .then(|| self.run.pop_front())
                .flatten()
        }
    }

    /// The smallest key; the queue's on a tie (as [`Queue::peek`] would have it).
    fn pop(&mut self) -> Option<K> {
        match (self.run.front(), self.heap.peek()) {
            (Some(&a), Some(&Reverse(b))) if b < a => self.heap.pop().map(|r| r.0),
            (Some(_), _) => self.run.pop_front(),
            (None, _) => self.heap.pop().map(|r| r.0),
        }
    }
}

/// `list.partition_point(|s| s.0 <= t)`, the last entry and the first few tried first: in a
/// steady stream an event just read is mostly after the last (its operation not read yet), one
/// settled mostly among the first (those before it are forgotten as they settle), and a binary
/// search over the thousands of a reorder window costs a cache miss per step. When the whole
/// trace fits in the window, nothing is forgotten: then it searches.
fn first_after(list: &VecDeque<(u64, usize)>, t: u64) -> usize {
    const NEAR: usize = 4;
    if list.back().is_none_or(|s| s.0 <= t) {
        return list.len();
    }
    match list.iter().take(NEAR).position(|s| s.0 > t) {
        Some(k) => k,
        None => list.partition_point(|s| s.0 <= t),
    }
}

/// A probe event waiting to be assigned, ordered by (begin, arrival) alone (arrival numbers
/// are distinct, so no two differ only in the event).
#[derive(Clone, Copy)]
struct Waiting {
    key: (u64, u64),
    e: ProbeEvent,
    /// Assigned early while in the middle of its thread's queue: left there, passed over when
    /// the window reaches it (taking it out would move every later one, once per operation).
    taken: bool,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Waiting) -> bool {
        self.key == other.key
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Waiting) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Waiting) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The lookups at the tail of a thread's waiting run that arrived past the back of its ops,
/// each one an operation arriving later may take early: kept apart from the run, with the
/// latest end among them, so that the operation they are for takes them as one (module
/// comment) instead of meeting each in the run.
#[derive(Default)]
struct Coming {
    /// Each with its arrival number, in the run's order (by begin; arrival numbers grow): a
    /// [`Waiting`] not taken, without the copy of its begin in its key.
    events: Vec<(ProbeEvent, u64)>,
    /// The latest end among them, 0 with none.
    latest_end: u64,
}

impl Coming {
    fn push(&mut self, e: ProbeEvent, arrival: u64) {
        self.latest_end = self.latest_end.max(e.ts_end);
        self.events.push((e, arrival));
    }

    /// The latest begin among them (the last's), if any.
    fn last_begin(&self) -> Option<u64> {
        self.events.last().map(|w| w.0.ts_begin)
    }

    /// Each as it waits in the run, in order.
    fn waiting(&self) -> impl Iterator<Item = Waiting> + '_ {
        self.events.iter().map(|&(e, arrival)| Waiting {
            key: (e.ts_begin, arrival),
            e,
            taken: false,
        })
    }

    fn clear(&mut self) {
        self.events.clear();
        self.latest_end = 0;
    }

    /// Whether an op from `begin` to `end`, the thread's next op beginning at `next`, takes
    /// them all: each begins from its begin and before `next`, and ends by its end.
    fn taken_whole_by(&self, begin: u64, end: u64, next: u64) -> bool {
        self.events.first().is_some_and(|w| begin <= w.0.ts_begin)
            && self.last_begin().is_some_and(|b| b < next)
            && self.latest_end <= end
    }
}

/// A thread's operations and its probe events not yet assigned.
#[derive(Default)]
struct Thread {
    /// (begin, index) of the operations a probe event of the thread may belong to, in that
    /// order (a thread's ops arrive in it but for overlaps). One that has run is kept while a
    /// later event could still find it (the thread's last operation begun at or before the
    /// event), so that the event is passed over as the whole-trace rule would.
    ops: VecDeque<(u64, usize)>,
    /// (begin, end) of the operation at the back of `ops`, None when it is empty: an event
    /// begun at or after that one's begin and ending after its end is taken early by no
    /// operation read so far. In a steady stream an operation's events arrive before it, so
    /// each is such an event, and looking that operation up in `pending` was the heaviest step
    /// of reading one (perf). Kept here, not read from `ops`: the deque's back is an index
    /// computed and a bound checked for every probe event (callgrind).
    back: Option<(u64, u64)>,
    /// Its probe events not yet assigned, by (begin, arrival): mostly in order, so mostly a
    /// queue (a B-tree of them cost a third of a replay with 6 probe events per operation).
    /// The run's tail of lookups past the back is in `coming`.
    waiting: Queue<Waiting>,
    coming: Coming,
}

impl Thread {
    /// The begin of the last event of the waiting run (`coming`'s, if it has any).
    fn run_back_begin(&self) -> Option<u64> {
        self.coming
            .last_begin()
            .or_else(|| self.waiting.run.back().map(|w| w.key.0))
    }

    /// Queues `w`, an event just read (its arrival number above every one queued): at the
    /// run's back, after `coming`, if it begins no earlier than the run's last (the begins
    /// compared alone: about 6 instructions a probe event fewer, callgrind), else in the heap.
    fn wait(&mut self, w: Waiting) {
        if self.run_back_begin().is_none_or(|b| b <= w.key.0) {
            self.spill();
            self.waiting.run.push_back(w);
        } else {
            self.waiting.heap.push(Reverse(w));
        }
    }

    /// Puts `coming` back at the tail of the waiting run, where it belongs.
    fn spill(&mut self) {
        self.waiting.run.extend(self.coming.waiting());
        self.coming.clear();
    }

    /// Whether it has probe events not yet assigned.
    fn has_waiting(&self) -> bool {
        !(self.waiting.is_empty() && self.coming.events.is_empty())
    }

    /// Whether an event from `begin` to `end` falls past the operation at the back of `ops`:
    /// no operation read so far takes it ([`Thread::back`]).
    fn past_the_back(&self, begin: u64, end: u64) -> bool {
        self.back.is_some_and(|(b, e)| b <= begin && end > e)
    }
}

/// The threads with operations or events in the window, by tid: each in a slot of its own,
/// and the last one asked for remembered. A trace's events come in runs of one thread's (an
/// operation after its own probe events, a CPU buffer's events of the thread it ran), and
/// hashing the tid of every event was a thirtieth of a replay's instructions (callgrind).
#[derive(Default)]
struct Threads {
    slots: Vec<Thread>,
    by_tid: HashMap<u32, usize>,
    /// Slots of forgotten threads, for the next new one.
    free: Vec<usize>,
    /// (tid, slot) of the thread asked for last; None when its slot may have been freed.
    last: Option<(u32, usize)>,
    /// Slots of threads asked for before: a trace's events switch among a few threads, and
    /// hashing the tid at each switch cost about 50 instructions (callgrind).
    recent: RecentTids,
}

/// Places (a slot, an index) of tids asked for before, direct-mapped by tid modulo
/// [`RECENT_TIDS`]: the (tid, place) pairs, the place [`NO_SLOT`] when none.
#[derive(Clone, Copy)]
struct RecentTids([(u32, u32); RECENT_TIDS]);

const RECENT_TIDS: usize = 64;
const NO_SLOT: u32 = u32::MAX;

impl Default for RecentTids {
    fn default() -> Self {
        RecentTids([(0, NO_SLOT); RECENT_TIDS])
    }
}

impl RecentTids {
    /// The place remembered for `tid`, if its line holds it.
    #[inline(always)]
    fn get(&self, tid: u32) -> Option<usize> {
        match self.0[tid as usize % RECENT_TIDS] {
            (t, at) if t == tid && at != NO_SLOT => Some(at as usize),
            _ => None,
        }
    }

    /// Remembers `tid` at `at`, in place of what its line held (a place beyond a u32 is not
    /// remembered).
    fn remember(&mut self, tid: u32, at: usize) {
        self.0[tid as usize % RECENT_TIDS] = (tid, u32::try_from(at).unwrap_or(NO_SLOT));
    }
}

impl Threads {
    /// Thread `tid`'s entry, a new one if it has none.
    #[inline(always)]
    fn entry(&mut self, tid: u32) -> &mut Thread {
        let slot = match self.last {
            Some((t, slot)) if t == tid => slot,
            _ => self.find(tid),
        };
        &mut self.slots[slot]
    }

    /// Thread `tid`'s slot, a new one if it has none, remembered as the last asked for.
    #[inline(never)]
    fn find(&mut self, tid: u32) -> usize {
        let slot = match self.recent.get(tid) {
            Some(slot) => slot,
            None => {
                let slot = match self.by_tid.get(&tid) {
                    Some(&slot) => slot,
                    None => self.new_slot(tid),
                };
                self.recent.remember(tid, slot);
                slot
            }
        };
        self.last = Some((tid, slot));
        slot
    }

    fn new_slot(&mut self, tid: u32) -> usize {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Thread::default();
                slot
            }
            None => {
                self.slots.push(Thread::default());
                self.slots.len() - 1
            }
        };
        self.by_tid.insert(tid, slot);
        slot
    }

    /// Every slot, the free ones too: a thread is forgotten with nothing left, so those
    /// are empty, and there are as many as threads were kept at once, not as ever seen.
    fn slots_mut(&mut self) -> impl Iterator<Item = &mut Thread> {
        self.slots.iter_mut()
    }

    /// Forgets the threads for which `keep` is false.
    fn retain(&mut self, mut keep: impl FnMut(&mut Thread) -> bool) {
        let (slots, free) = (&mut self.slots, &mut self.free);
        let freed = free.len();
        self.by_tid.retain(|_, &mut slot| {
            let kept = slots.get_mut(slot).is_some_and(&mut keep);
            if !kept {
                free.push(slot);
            }
            kept
        });
        self.last = None;
        // A freed slot goes to the next new thread: no tid may still lead to it.
        if free.len() > freed {
            self.recent = RecentTids::default();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_tid.len()
    }

    #[cfg(test)]
    fn get(&self, tid: u32) -> Option<&Thread> {
        self.slots.get(*self.by_tid.get(&tid)?)
    }
}

/// The model's tasks, one for each thread that ran an operation, kept to the end of the
/// replay (each is its thread's registration with the model's RCU): by tid in a B-tree, and
/// the one of a tid asked for before in [`RecentTids`] (a tid searched in the
/// B-tree for every operation was about 50 instructions, callgrind). None is ever dropped
/// before the end, so a remembered place stays right.
#[derive(Default)]
struct Tasks<'d> {
    tasks: Vec<Option<Task<'d>>>,
    by_tid: BTreeMap<u32, usize>,
    /// Indexes in `tasks`.
    recent: RecentTids,
}

impl<'d> Tasks<'d> {
    /// Thread `tid`'s task, `make`'s if it has none yet.
    fn get_or_make(&mut self, tid: u32, make: impl FnOnce() -> Task<'d>) -> &Task<'d> {
        let i = match self.recent.get(tid) {
            Some(i) => i,
            None => {
                let tasks = &mut self.tasks;
                let i = *self.by_tid.entry(tid).or_insert_with(|| {
                    tasks.push(None);
                    tasks.len() - 1
                });
                self.recent.remember(tid, i);
                i
            }
        };
        self.tasks[i].get_or_insert_with(make)
    }
}

impl Drop for Tasks<'_> {
    /// In tid order, as the B-tree of tasks the replay kept before dropped them (each leaves
    /// the model's RCU as it goes).
    fn drop(&mut self) {
        for &i in self.by_tid.values() {
            drop(self.tasks.get_mut(i).and_then(Option::take));
        }
    }
}

/// The operation an event begun at `begin` belongs to: its thread's last operation begun at
/// or before it (`ops`), by index. One that has run (no longer pending) holds the event as
/// well: it is passed over.
fn owner(ops: &VecDeque<(u64, usize)>, begin: u64) -> Option<usize> {
    let at = first_after(ops, begin);
    at.checked_sub(1).and_then(|k| ops.get(k)).map(|&(_, i)| i)
}

/// The operation `e` belongs to ([`owner`]), if that one is still open and has not ended
/// before the event did. One settled has its place computed and queued: a late event reaching
/// it changes nothing.
fn open_owner<'a>(
    ops: &VecDeque<(u64, usize)>,
    pending: &'a mut PendingOps,
    e: &ProbeEvent,
) -> Option<&'a mut Pending> {
    let i = owner(ops, e.ts_begin).filter(|&i| pending.is_open(i))?;
    pending.get_mut(i).filter(|p| e.ts_end <= p.op.ts_end)
}

/// The operation `e` belongs to takes it, if it still can ([`open_owner`]).
fn assign(
    ops: &VecDeque<(u64, usize)>,
    pending: &mut PendingOps,
    paths: &Paths,
    names: &Paths,
    e: &ProbeEvent,
) {
    if let Some(p) = open_owner(ops, pending, e) {
        p.take(paths, names, e);
    }
}

struct Stream<'d, 'p, 'w> {
    dc: &'d Dcache,
    hook: &'p Option<StepHook>,
    /// Each operation's model events, written as it returns (its task keeps them for this).
    model: &'w mut Writer,
    tasks: Tasks<'d>,
    paths: Paths,
    /// The probe events' names.
    names: Paths,
    window: u64,
    /// The latest end seen (trace time); `u64::MAX` once the trace has ended.
    horizon: u64,
    /// Operations read and not run.
    pending: PendingOps,
    /// The threads with operations or events in the window.
    threads: Threads,
    next_event: u64,
    /// Assign probe events as soon as their operation is known (see the module's comment).
    early: bool,
    /// Open operations by (end, index), and by (begin, index) (entries of operations no longer
    /// open are skipped when met).
    open_by_end: Queue<(u64, usize)>,
    open_by_begin: Queue<(u64, usize)>,
    /// Pending operations whose place is final, by (place, index).
    ready: Queue<(u64, usize)>,
    /// The recorded ends of pending operations whose end is damaged, by index: the window
    /// takes them as ending at the latest end read before them (their begin if later), the
    /// model trace's Op event keeps what the kernel recorded.
    recorded_ends: HashMap<usize, u64>,
    /// The horizon as `advance` last saw it, plus [`MAX_END_LEAD_NS`]: no end below it is
    /// damaged (the horizon only grows).
    lead_limit: u64,
    out: Outcome,
}

impl<'d, 'p, 'w> Stream<'d, 'p, 'w> {
    fn new(
        dc: &'d Dcache,
        hook: &'p Option<StepHook>,
        model: &'w mut Writer,
        window: u64,
        early: bool,
    ) -> Self {
        Stream {
            dc,
            hook,
            model,
            tasks: Tasks::default(),
            paths: Paths::default(),
            names: Paths::default(),
            window,
            horizon: 0,
            pending: PendingOps::default(),
            threads: Threads::default(),
            next_event: 0,
            early,
            open_by_end: Queue::default(),
            open_by_begin: Queue::default(),
            ready: Queue::default(),
            recorded_ends: HashMap::default(),
            lead_limit: 0,
            out: Outcome {
                ops: 0,
                differ: 0,
                placed: 0,
                late: 0,
                max_lag: 0,
                damaged_ends: 0,
                threads: Vec::new(),
            },
        }
    }

    /// Takes in `rec`, an event of the kernel trace at `path` by `probe`, read where the
    /// trace's reader holds it: an operation or a probe event, ending where the window takes
    /// it to end (a damaged end at the horizon or its begin, [`damaged_end`]).
    fn take_in(&mut self, path: &Path, rec: &Record<'_>, probe: Probe) -> Result<(), ReplayError> {
        let (begin, end) = (rec.ts_begin(), rec.ts_end());
        // `lead_limit` is at most the horizon plus the lead: one compare passes nearly every
        // event (checking the whole rule on each was 2 % of a replay's instructions).
        let damaged = end > self.lead_limit && damaged_end(begin, end, self.horizon);
        self.out.damaged_ends += u64::from(damaged);
        if probe == Probe::Op {
            let index = self.out.ops as usize;
            let mut op = parse_op(path, rec, index, &mut self.paths)?;
            self.out.ops += 1;
            if damaged {
                self.recorded_ends.insert(index, op.ts_end);
                // Its own probe events, ended before it was written, stay in its span.
                op.ts_end = op.ts_begin.max(self.horizon);
            }
            self.add_op(index, op);
        } else {
            // Left as recorded: it ends after every operation's end the window knows, so no
            // operation takes it.
            let pe = ProbeEvent::new(rec, probe, &mut self.names);
            self.add_event(pe);
        }
        self.horizon = self.horizon.max(if damaged { begin } else { end });
        Ok(())
    }

    /// Everything that begins before this is final (under the window assumption).
    fn settled(&self) -> u64 {
        self.horizon.saturating_sub(self.window)
    }

    /// Counts an event beginning at `begin` as late if it is, and its lag; whether it is.
    fn arrived(&mut self, begin: u64) -> bool {
        // Beginning before `settled` is lagging more than the window: with `begin` at most the
        // horizon, `begin < horizon - window` (none is late while the horizon is below the
        // window, nor lags more); one after the horizon lags 0.
        let lag = self.horizon.saturating_sub(begin);
        let late = lag > self.window;
        self.out.late += u64::from(late);
        self.out.max_lag = self.out.max_lag.max(lag);
        late
    }

    // Its one caller, `take_in`: called instead of inlined, 0.6 % more instructions (callgrind,
    // the replay bench at 1 M with 6 probe events an operation).
    #[inline(always)]
    fn add_op(&mut self, index: usize, op: KernelOp) {
        let late = self.arrived(op.ts_begin);
        let th = self.threads.entry(op.tid);
        let key = (op.ts_begin, index);
        let at = if th.ops.back().is_none_or(|&last| last <= key) {
            th.ops.push_back(key);
            th.back = Some((op.ts_begin, op.ts_end));
            th.ops.len() - 1
        } else {
            // Before the back (which is larger): the back stays.
            let at = th.ops.partition_point(|&k| k < key);
            th.ops.insert(at, key);
            at
        };
        self.open_by_end.push((op.ts_end, index));
        self.open_by_begin.push(key);
        let mut p = Pending { op, reach: 0 };
        if self.early {
            let pending = &self.pending;
            let before = at.checked_sub(1).and_then(|k| th.ops.get(k));
            let reach = before.and_then(|&(_, j)| pending.get(j)).map(|p| p.reach);
            // An event assigned early to the op before it is this one's (module comment).
            if !late && reach.is_some_and(|r| r > op.ts_begin) {
                self.out.late += 1;
            }
            // Its waiting events: from its begin to the next op's (the thread's ops after it
            // begin later: its index is the largest), within its span (none begun at
            // `u64::MAX`: `next` is at most that). One taken ends within the span and no
            // earlier than it begins, so the look stops at the op's end: the events of the
            // thread's later ops, read before this op, are not looked at once per op.
            let next = th.ops.get(at + 1).map_or(u64::MAX, |s| s.0);
            // The lookups coming, when it takes them all: the look below would meet each (they
            // end by its end, so begin by it) and take it; else they go back to the run for
            // that look.
            let mut lookups_end = None;
            if th.coming.taken_whole_by(op.ts_begin, op.ts_end, next) {
                lookups_end = Some(th.coming.latest_end);
                p.reach = th.coming.last_begin().map_or(0, |b| b.saturating_add(1));
                th.coming.clear();
            } else {
                th.spill();
            }
            let run = &mut th.waiting.run;
            // The run is in key order: those begun after its end are mostly none (its own
            // events arrive before it), else a burst of later ops' events, found by halving.
            let to = if run.back().is_none_or(|w| w.key.0 <= op.ts_end) {
                run.len()
            } else {
                run.partition_point(|w| w.key.0 <= op.ts_end)
            };
            // Then down from there while they begin at or after its begin: the events a
            // search for both ends gave, met back to front (the order of taking does not
            // matter: module comment). Two searches and a pop each cost about a third of an
            // operation's own work in a steady stream (callgrind).
            // Its lookups (most of a trace's probe events) are taken as one, by the latest end
            // among them: the effect of each was a call and a merge (callgrind).
            let mut from = to;
            let mut all_taken = true;
            for w in run.range_mut(..to).rev() {
                if w.key.0 < op.ts_begin {
                    break;
                }
                from -= 1;
                if !w.taken
                    && w.key.0 < next
                    && early_candidate(w.e.ts_begin, w.e.ts_end)
                    && w.e.ts_end <= op.ts_end
                {
                    if w.e.probe.is_lookup() {
                        lookups_end = lookups_end.max(Some(w.e.ts_end));
                        p.took_early(&w.e);
                    } else {
                        p.take_early(&self.paths, &self.names, &w.e);
                    }
                    w.taken = true;
                }
                all_taken &= w.taken;
            }
            if let Some(latest) = lookups_end {
                p.take_lookups(latest);
            }
            // Those taken at either end go now (the op's own events, in order or after a
            // burst of the thread's later ones), not when the window reaches them.
            if to == run.len() && all_taken {
                run.truncate(from);
            }
            while run.back().is_some_and(|w| w.taken) {
                run.pop_back();
            }
            while run.front().is_some_and(|w| w.taken) {
                run.pop_front();
            }
        }
        self.pending.push(p);
    }

    fn add_event(&mut self, e: ProbeEvent) {
        // A damaged event ending before it begins is judged late by its end: the op its end
        // falls in may have run already.
        self.arrived(e.ts_begin.min(e.ts_end));
        let th = self.threads.entry(e.tid);
        let candidate = early_candidate(e.ts_begin, e.ts_end);
        if self.early {
            // Its owner would be the op at the back of the thread's list, which ends before
            // it.
            if !th.past_the_back(e.ts_begin, e.ts_end) {
                // A settled op's place is computed: an event reaching it now waits, as
                // without `early`, and is passed over.
                if let Some(p) = open_owner(&th.ops, &mut self.pending, &e).filter(|_| candidate) {
                    p.take_early(&self.paths, &self.names, &e);
                    return;
                }
            } else if candidate
                && e.probe.is_lookup()
                && th.run_back_begin().is_none_or(|b| b <= e.ts_begin)
            {
                // A lookup an op read later may take early, at the run's back: coming.
                th.coming.push(e, self.next_event);
                self.next_event += 1;
                return;
            }
        }
        th.wait(Waiting {
            key: (e.ts_begin, self.next_event),
            e,
            taken: false,
        });
        self.next_event += 1;
    }

    /// Assigns the settled events, settles the operations no event can reach any more, runs
    /// those whose place nothing still open or still to come can precede, and forgets what no
    /// later event can find.
    /// `last`: the trace has ended, everything settles (also a damaged timestamp at
    /// `u64::MAX`, which no `settled` value passes).
    fn advance(&mut self, last: bool) -> Result<(), ReplayError> {
        self.lead_limit = self.horizon.saturating_add(MAX_END_LEAD_NS);
        let settled = self.settled();
        let unsettled = |t: u64| !last && t >= settled;
        // Threads in turn: the order of assignment does not matter (module comment).
        let (pending, paths, names) = (&mut self.pending, &self.paths, &self.names);
        for th in self.threads.slots_mut() {
            // The run's tail, met in order once the window reaches its first.
            if th
                .coming
                .events
                .first()
                .is_some_and(|w| !unsettled(w.0.ts_begin))
            {
                th.spill();
            }
            while let Some(w) = th.waiting.pop_if(|w| !unsettled(w.key.0)) {
                if !w.taken {
                    assign(&th.ops, pending, paths, names, &w.e);
                }
            }
        }
        // Operations settle one at a time, and after each those that can run run, while the
        // entry just read to settle one is still in cache (at the trace's end a whole window
        // settles at once). Either way they run in the order settling the whole batch first
        // would give (with nothing late, a sort of all by (place, index)): an open operation
        // is placed no earlier than it begins.
        loop {
            while let Some((at, i)) = self.ready.peek() {
                // An open operation may still be placed at its begin; one still to come
                // begins at `settled` or later, and comes after in the trace.
                if self.first_open().is_some_and(|b| (at, i) > b) || unsettled(at) {
                    break;
                }
                self.ready.pop();
                self.run(i)?;
            }
            let Some((_, i)) = self.open_by_end.pop_if(|&(end, _)| !unsettled(end)) else {
                break;
            };
            if let Some(p) = self.pending.close(i) {
                let at = p.op.placed_at();
                self.ready.push((at, i));
            }
        }
        self.forget(settled);
        Ok(())
    }

    /// (begin, index) of the earliest open operation.
    fn first_open(&mut self) -> Option<(u64, usize)> {
        while let Some((b, i)) = self.open_by_begin.peek() {
            if self.pending.is_open(i) {
                return Some((b, i));
            }
            self.open_by_begin.pop();
        }
        None
    }

    fn run(&mut self, i: usize) -> Result<(), ReplayError> {
        let Some(p) = self.pending.take(i) else {
            return Ok(());
        };
        let op = p.op;
        if matches!(op.kind, OpKind::Rename | OpKind::Exchange) && op.path2.is_none() {
            return Err(ModelError::MissingSecondPath {
                index: i,
                kind: op.kind.name(),
            }
            .into());
        }
        let (dc, hook) = (self.dc, self.hook);
        let t = self
            .tasks
            .get_or_make(op.tid, || task(dc, op.tid, hook).keeping_events());
        t.advance_clock_to(op.placed_at());
        let path2 = op.path2.map(|p| self.paths.get(p));
        // Hashed only when some end was damaged.
        let end = if self.recorded_ends.is_empty() {
            op.ts_end
        } else {
            self.recorded_ends.remove(&i).unwrap_or(op.ts_end)
        };
        let r = t.run(
            op.kind,
            self.paths.get(op.path),
            path2,
            Some((op.ts_begin, end)),
        );
        t.take_events(|events| self.model.push_all(events))?;
        if r.map_or_else(|e| -e.code(), |()| 0) != op.result {
            self.out.differ += 1;
        }
        if op.effect.is_some() {
            self.out.placed += 1;
        }
        Ok(())
    }

    /// Drops, per thread, the operations that have run and that every event still to be
    /// assigned (begun at `settled` or later) would pass over for a later one of its thread,
    /// and the threads left with nothing (a trace names many threads that come and go).
    fn forget(&mut self, settled: u64) {
        let pending = &self.pending;
        let ran = |i: usize| pending.ran(i);
        self.threads.retain(|th| {
            let list = &mut th.ops;
            // The last operation begun before `settled` is still the one such an event finds.
            while list.len() > 1 && list[1].0 < settled && ran(list[0].1) {
                list.pop_front();
            }
            // When it has run, such an event is passed over whether it finds that one or none
            // (and no op is before a later one's to hold its `reach`).
            if list.len() == 1 && list[0].0 < settled && ran(list[0].1) {
                list.pop_front();
                th.back = None;
            }
            !list.is_empty() || th.has_waiting()
        });
    }
}

/// Replays the operations of the kernel trace at `path` in order on `dc`, streaming, and
/// writes their model events to `out`; `early`: probe events are assigned as soon as their
/// operation is known.
pub(super) fn run_sequential(
    dc: &Dcache,
    path: &Path,
    hook: &Option<StepHook>,
    out: &mut Writer,
    window: u64,
    early: bool,
) -> Result<Outcome, ReplayError> {
    let mut s = Stream::new(dc, hook, out, window, early);
    let mut r = Reader::open(path)?;
    let mut since_advance = 0u32;
    // Each raw probe byte's probe, found once: `Probe::from_u8` searches the probes' list,
    // a call per event.
    let probes: [Option<Probe>; 256] = std::array::from_fn(|b| Probe::from_u8(b as u8));
    // Events are read where the reader holds them, not decoded into a whole `Event` each (a
    // tenth of the reader's instructions, callgrind): a probe event is kept as the little the
    // placement needs.
    while let Some(records) = r.next_records()? {
        for rec in records {
            let Some(probe) = probes[usize::from(rec.probe())] else {
                continue;
            };
            s.take_in(path, &rec, probe)?;
            // Settling is cheap but not free: every few events is as good as every one.
            since_advance += 1;
            if since_advance == 64 {
                since_advance = 0;
                s.advance(false)?;
            }
        }
    }
    s.horizon = u64::MAX;
    s.window = 0;
    s.advance(true)?;
    s.out.threads = r.footer().map(|f| f.threads.clone()).unwrap_or_default();
    Ok(s.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{tests::stat_until, REORDER_WINDOW_NS};
    use crate::trace::{Footer, Header, Origin};
    use tracer_common::Event;
    use userspace_dcache::{DcacheConfig, FsKind, Profile};

    fn lookup(tid: u32, begin: u64, names: &mut Paths) -> ProbeEvent {
        let mut e = Event::zeroed();
        e.probe = Probe::DLookupRcu as u8;
        e.tid = tid;
        e.ts_begin = begin;
        e.ts_end = begin + 10;
        ProbeEvent::new(&Record::of_event(&e), Probe::DLookupRcu, names)
    }

    fn stat(tid: u32, begin: u64, end: u64, paths: &mut Paths) -> KernelOp {
        KernelOp {
            tid,
            kind: OpKind::Stat,
            path: paths.id(b"d0/f1"),
            path2: None,
            ts_begin: begin,
            ts_end: end,
            effect: None,
            result: 0,
        }
    }

    fn dcache() -> Dcache {
        let profile = Profile::named("linux-6.1").expect("profile");
        Dcache::new(DcacheConfig::new(profile, FsKind::Tmpfs).with_one_thread_clock())
    }

    /// A model trace in `dir` for the ops a test runs.
    fn writer(dir: &tempfile::TempDir) -> Writer {
        Writer::create(&dir.path().join("model.trace"), &Header::new(Origin::Model))
            .expect("create the model trace")
    }

    /// A trace names many threads that come and go (each thread of the machine with a probe
    /// event): once the window has passed a thread's events and its ops have run, it is
    /// forgotten, so `advance` walks the threads of the window, not every one ever seen.
    #[test]
    fn threads_the_window_has_passed_are_forgotten() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 1_000, true);
        for tid in 1..=500 {
            let e = lookup(tid, 1_000 * u64::from(tid), &mut s.names);
            s.add_event(e);
        }
        let op = stat(1000, 5_000_000, 5_000_600, &mut s.paths);
        s.add_op(0, op);
        s.horizon = 5_000_600;
        s.advance(false).expect("advance");
        assert_eq!(s.threads.len(), 1, "threads kept");
        assert!(s.threads.get(1000).is_some());
        s.horizon = u64::MAX;
        s.window = 0;
        s.advance(true).expect("advance");
        assert!(s.pending.pending.is_empty(), "the op has run");
        assert_eq!(s.threads.len(), 0, "threads kept");
    }

    /// A thread forgotten and seen again gets a new, empty entry, and its slot goes to no
    /// other thread while it is in use: the thread asked for last is remembered by slot, and
    /// forgetting threads forgets that too.
    #[test]
    fn a_forgotten_thread_s_slot_is_never_shared() {
        let mut t = Threads::default();
        t.entry(1).ops.push_back((10, 0));
        t.entry(2).ops.push_back((20, 1));
        assert_eq!(t.get(1).map(|th| th.ops.len()), Some(1));
        t.retain(|th| th.ops.front() != Some(&(10, 0)));
        assert!(t.get(1).is_none() && t.get(2).is_some());
        // Thread 1 again: a new entry in the freed slot.
        assert!(t.entry(1).ops.is_empty());
        t.entry(1).ops.push_back((30, 2));
        t.retain(|th| th.ops.front() != Some(&(30, 2)));
        t.entry(1).ops.push_back((40, 3));
        // Thread 3 is new: not handed thread 1's slot, which is in use.
        assert!(t.entry(3).ops.is_empty());
        assert_eq!(
            t.get(1).map(|th| th.ops.front().copied()),
            Some(Some((40, 3)))
        );
        assert_eq!(
            t.get(2).map(|th| th.ops.front().copied()),
            Some(Some((20, 1)))
        );
        assert_eq!(t.len(), 3);
        // Threads 1 and 65 fall in the same remembered place, in turns: each its own entry.
        for k in 0..4 {
            t.entry(65).ops.push_back((50 + k, 4));
            t.entry(1).ops.push_back((60 + k, 5));
        }
        assert_eq!(t.get(65).map(|th| th.ops.len()), Some(4));
        assert_eq!(t.get(1).map(|th| th.ops.len()), Some(5));
        // Thread 2 forgotten, its slot given to thread 4, thread 65 asked for last: thread 2
        // again is a new thread, not thread 4.
        t.retain(|th| th.ops.front() != Some(&(20, 1)));
        t.entry(4).ops.push_back((70, 6));
        t.entry(65);
        assert!(t.entry(2).ops.is_empty(), "thread 2 handed thread 4's slot");
        assert_eq!(t.len(), 5);
    }

    /// A thread's kept `back` is the (begin, end) of the op at the back of its list, None when
    /// the list is empty, through ops arriving in order and out of it, overlapping ones, events
    /// waiting for later ops (they keep a thread whose ops are all forgotten) and the window
    /// running and forgetting ops.
    #[test]
    fn a_thread_s_back_is_the_back_of_its_ops() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 5_000, true);
        let mut rnd = crate::test_rng::xorshift(23u64);
        let mut ends = Vec::new();
        let mut emptied_while_kept = 0;
        for k in 0..4_000u64 {
            let tid = 1 + rnd(3) as u32;
            let t = 1_000 * k;
            if rnd(3) == 0 {
                // Now and then an op begun well before the latest ones of its thread.
                let b = t.saturating_sub(rnd(4_000));
                let op = stat(tid, b, b + 200 + rnd(3_000), &mut s.paths);
                ends.push(op.ts_end);
                s.add_op(ends.len() - 1, op);
            } else {
                let e = lookup(tid, t + rnd(3_000), &mut s.names);
                s.add_event(e);
            }
            s.horizon = t;
            s.advance(false).expect("advance");
            for tid in 1..=3 {
                let Some(th) = s.threads.get(tid) else {
                    continue;
                };
                let want = th.ops.back().map(|&(b, i)| (b, ends[i]));
                assert_eq!(th.back, want, "thread {tid} after step {k}");
                emptied_while_kept += u32::from(th.ops.is_empty());
            }
        }
        assert!(
            emptied_while_kept > 0,
            "no thread kept with its ops forgotten"
        );
    }

    /// An event is late when it begins before `settled()`, read from its lag alone: at and
    /// around the settled point, after the horizon, with the horizon below the window and at
    /// the clock's ends.
    #[test]
    fn an_event_is_late_when_it_begins_before_the_settled_point() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 0, true);
        let edges = [0, 1, 999, 1_000, 1_001, 5_000, u64::MAX - 1, u64::MAX];
        for window in [0, 1, 1_000, u64::MAX] {
            for horizon in edges {
                let mut begins = edges.to_vec();
                begins.extend([
                    horizon.saturating_sub(window),
                    horizon.saturating_sub(window).saturating_add(1),
                ]);
                begins.extend([horizon.saturating_sub(window).saturating_sub(1), horizon]);
                for begin in begins {
                    (s.window, s.horizon, s.out.max_lag) = (window, horizon, 0);
                    let (late_before, settled) = (s.out.late, s.settled());
                    let late = s.arrived(begin);
                    let case = format!("window {window} horizon {horizon} begin {begin}");
                    assert_eq!(late, begin < settled, "{case}");
                    assert_eq!(s.out.late - late_before, u64::from(late), "{case}");
                    assert_eq!(s.out.max_lag, horizon.saturating_sub(begin), "{case}");
                }
            }
        }
    }

    /// Each tid gets a task of its own, made once, and the same one every time after, also
    /// when tids that share a remembered place (1, 65, 129) take turns.
    #[test]
    fn a_tid_s_task_is_made_once_and_found_again() {
        let dc = dcache();
        let mut tasks = Tasks::default();
        let mut made = Vec::new();
        for k in 0..300u32 {
            let tid = [1, 65, 129, 2, 1, 1][k as usize % 6] + 64 * (k / 150);
            let t = tasks.get_or_make(tid, || {
                made.push(tid);
                task(&dc, tid, &None)
            });
            assert_eq!(t.tid(), tid, "step {k}");
        }
        assert_eq!(made, [1, 65, 129, 2, 193, 66], "tasks made");
    }

    /// A thread's waiting run as one queue: the run, then the lookups coming.
    fn whole_run(th: &Thread) -> VecDeque<Waiting> {
        th.waiting
            .run
            .iter()
            .copied()
            .chain(th.coming.waiting())
            .collect()
    }

    /// What `add_op` did with a thread's waiting events before it met them back to front and
    /// took its lookups as one: both ends of the op's span searched for, each event in it
    /// taken in turn, then those taken popped at either end. The op's effect and reach.
    fn taken_by_searches(
        run: &mut VecDeque<Waiting>,
        op: KernelOp,
        next: u64,
        paths: &Paths,
        names: &Paths,
    ) -> (Option<crate::replay::Effect>, u64) {
        let mut p = Pending { op, reach: 0 };
        let from = run.partition_point(|w| w.key.0 < op.ts_begin);
        let to = run.partition_point(|w| w.key.0 <= op.ts_end).max(from);
        for w in run.range_mut(from..to) {
            if !w.taken
                && w.key.0 < next
                && early_candidate(w.e.ts_begin, w.e.ts_end)
                && w.e.ts_end <= op.ts_end
            {
                p.take_early(paths, names, &w.e);
                w.taken = true;
            }
        }
        while run.back().is_some_and(|w| w.taken) {
            run.pop_back();
        }
        while run.front().is_some_and(|w| w.taken) {
            run.pop_front();
        }
        (p.op.effect, p.reach)
    }

    /// An arriving op takes the waiting events a search for both ends of its span and a
    /// look at each would give it, with the same effect and reach, and leaves the same
    /// events waiting: ops in and out of order, overlapping, in bursts after their events,
    /// of every kind but the shrinker's, with lookups, writers' probes naming their dentry
    /// or another, and damaged events ending before they begin.
    #[test]
    fn an_op_takes_what_searching_its_span_gave() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 20_000, true);
        let mut rnd = crate::test_rng::xorshift(41u64);
        let kinds = [
            OpKind::Stat,
            OpKind::Unlink,
            OpKind::Create,
            OpKind::DropCaches,
        ];
        let probes = [
            Probe::DLookupRcu,
            Probe::DLookup,
            Probe::DDelete,
            Probe::DDrop,
            Probe::DInstantiate,
        ];
        let (mut ops, mut took_lookups, mut took_writes) = (0, 0, 0);
        for k in 0..20_000u64 {
            let tid = 1 + rnd(2) as u32;
            let t = 100 * k;
            if rnd(4) == 0 {
                let b = t.saturating_sub(rnd(3_000));
                let mut op = stat(tid, b, b + 100 + rnd(2_000), &mut s.paths);
                op.kind = kinds[rnd(4) as usize];
                op.path = s.paths.id(if rnd(2) == 0 { b"d0/f1" } else { b"d0/f2" });
                let th = s.threads.entry(tid);
                let mut run = whole_run(th);
                s.add_op(ops, op);
                let th = s.threads.entry(tid);
                let at = th.ops.iter().position(|&o| o == (op.ts_begin, ops));
                let next = at
                    .and_then(|at| th.ops.get(at + 1))
                    .map_or(u64::MAX, |o| o.0);
                let want = taken_by_searches(&mut run, op, next, &s.paths, &s.names);
                let p = s.pending.get(ops).expect("pending");
                assert_eq!((p.op.effect, p.reach), want, "op {ops} at step {k}");
                let keys = |r: &VecDeque<Waiting>| -> Vec<_> {
                    r.iter().map(|w| (w.key, w.taken)).collect()
                };
                let th = s.threads.entry(tid);
                assert_eq!(keys(&whole_run(th)), keys(&run), "op {ops} at step {k}");
                took_lookups += u32::from(matches!(want.0, Some(crate::replay::Effect::Read(_))));
                took_writes += u32::from(matches!(
                    want.0,
                    Some(crate::replay::Effect::Write(_) | crate::replay::Effect::Enter(_))
                ));
                ops += 1;
            } else {
                let mut e = Event::zeroed();
                e.probe = probes[rnd(5) as usize] as u8;
                e.tid = tid;
                e.ts_begin = t + rnd(4_000);
                // Now and then a damaged one, ending before it begins.
                e.ts_end = if rnd(50) == 0 {
                    e.ts_begin.saturating_sub(1)
                } else {
                    e.ts_begin + rnd(300)
                };
                e.inode_end = rnd(2);
                e.set_name(if rnd(2) == 0 { b"f1" } else { b"f2" });
                let probe = Probe::from_u8(e.probe).expect("probe");
                let pe = ProbeEvent::new(&Record::of_event(&e), probe, &mut s.names);
                s.add_event(pe);
            }
            s.horizon = t;
            if k % 16 == 0 {
                s.advance(false).expect("advance");
            }
        }
        assert!(
            took_lookups > 500 && took_writes > 100,
            "{took_lookups} {took_writes}"
        );
    }

    /// A thread's lookups, all read before its ops (a burst): each op, as it arrives, takes
    /// its own three early and they leave the queue at once; the others stay for their ops.
    #[test]
    fn events_taken_early_out_of_a_burst_leave_the_queue() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 1_000_000_000, true);
        const OPS: u64 = 50;
        for k in 0..OPS {
            for j in 0..3 {
                let e = lookup(1, 1_000_000 + k * 1_000 + 100 + j * 100, &mut s.names);
                s.add_event(e);
            }
        }
        for k in 0..OPS {
            let b = 1_000_000 + k * 1_000;
            let op = stat(1, b, b + 600, &mut s.paths);
            s.add_op(k as usize, op);
            let left = s.threads.get(1).map_or(0, |t| whole_run(t).len());
            assert_eq!(left as u64, 3 * (OPS - 1 - k), "after op {k}");
            let p = s.pending.get(k as usize).expect("pending");
            assert_eq!(p.reach, b + 301, "op {k} took its last lookup");
        }
    }

    /// An event read after its op (the op's Op event first) goes to it at once; one ending
    /// after the thread's last op waits, and goes to an op arriving later that holds it.
    #[test]
    fn an_event_read_after_its_op_is_taken_at_once() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 1_000_000_000, true);
        let waiting = |s: &Stream| s.threads.get(1).map_or(0, |t| whole_run(t).len());
        let op = stat(1, 1_000, 1_600, &mut s.paths);
        s.add_op(0, op);
        let e = lookup(1, 1_100, &mut s.names);
        s.add_event(e);
        assert_eq!(
            s.pending.get(0).expect("pending").reach,
            1_101,
            "taken at once"
        );
        assert_eq!(waiting(&s), 0);
        // Begins inside the op, ends after it: not its own.
        let e = lookup(1, 1_595, &mut s.names);
        s.add_event(e);
        assert_eq!(s.pending.get(0).expect("pending").reach, 1_101);
        assert_eq!(waiting(&s), 1, "past the op's end");
        let op = stat(1, 1_590, 2_000, &mut s.paths);
        s.add_op(1, op);
        assert_eq!(
            s.pending.get(1).expect("pending").reach,
            1_596,
            "the later op took it"
        );
        assert_eq!(waiting(&s), 0);
        let e = lookup(1, 1_900, &mut s.names);
        s.add_event(e);
        assert_eq!(s.pending.get(1).expect("pending").reach, 1_901);
    }

    /// An operation settled (its place computed and queued) but not yet run, because an open
    /// one begins before it: a late event of its span reaching it then leaves its effect, so
    /// it runs where it was placed.
    #[test]
    fn a_late_event_leaves_a_settled_operation_where_it_was_placed() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 100, true);
        let long = stat(2, 500, 10_000, &mut s.paths);
        s.add_op(0, long);
        let op = stat(1, 1_000, 1_600, &mut s.paths);
        s.add_op(1, op);
        s.horizon = 2_000;
        s.advance(false).expect("advance");
        assert!(
            s.pending.get(1).is_some(),
            "settled, waiting for the open one"
        );
        assert!(!s.pending.is_open(1));
        let e = lookup(1, 1_100, &mut s.names);
        s.add_event(e);
        assert_eq!(s.out.late, 1);
        s.advance(false).expect("advance");
        let p = s.pending.get(1).expect("still waiting");
        assert_eq!(p.op.effect, None, "the late lookup moved it");
        assert_eq!(p.op.placed_at(), 1_000);
    }

    /// At the trace's end the whole window settles at once: each operation runs as soon as it
    /// settles, so the queue of settled operations waiting to run never holds the window (it
    /// held a million at 10 M). Their order: `ops_settling_at_the_end_run_in_order` (mod.rs).
    #[test]
    fn operations_run_as_they_settle() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, 1_000_000_000, true);
        const OPS: usize = 1_000;
        for k in 0..OPS {
            let b = 1_000 + 1_000 * k as u64;
            let op = stat(1 + k as u32 % 4, b, b + 600, &mut s.paths);
            s.add_op(k, op);
        }
        s.horizon = u64::MAX;
        s.window = 0;
        s.advance(true).expect("advance");
        assert!(s.pending.pending.is_empty(), "every op has run");
        assert!(
            s.ready.run.capacity() < 64,
            "{} settled ops queued at once",
            s.ready.run.capacity()
        );
        // The model has no `d0`: each stat fails where the kernel's succeeded.
        assert_eq!(s.out.differ, OPS as u64, "ops run");
    }

    /// rev17 (session 12), finding 3: one operation's end damaged to `u64::MAX`, then 10 s of
    /// trace (a stat every 100 µs on each of two threads, a lookup in each). The window takes
    /// the damaged end as the latest end read before it, here the op's begin: nothing after it
    /// is late, and the operations held stay those of one window. Taken at its word, the end
    /// made every later event late and the op never settled: all 200 000 were held to the
    /// trace's end (and the replay redone with a window of 584 years).
    #[test]
    fn a_damaged_end_does_not_hold_the_trace() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let mut out = writer(&dir);
        let mut s = Stream::new(&dc, &hook, &mut out, REORDER_WINDOW_NS, true);
        let path = Path::new("kernel.trace");
        let mut held = 0;
        let mut take = |s: &mut Stream, e: &Event| {
            let probe = e.probe().expect("a probe");
            s.take_in(path, &Record::of_event(e), probe)
                .expect("take in");
            s.advance(false).expect("advance");
            held = held.max(s.pending.pending.len());
        };
        take(&mut s, &stat_until(1, 1_000, u64::MAX));
        let kept = s.recorded_ends.get(&0).copied();
        const OPS: u64 = 100_000;
        for k in 0..OPS {
            for tid in 1..=2 {
                let b = 2_000 + k * 100_000 + u64::from(tid) * 1_000;
                let mut e = stat_until(tid, b + 100, b + 200);
                e.probe = Probe::DLookupRcu as u8;
                e.set_name(b"f1");
                take(&mut s, &e);
                take(&mut s, &stat_until(tid, b, b + 600));
            }
        }
        // One second of trace time: 20 000 ops, and the one just read.
        assert!(held <= 20_001, "{held} operations held at once");
        assert_eq!((s.out.damaged_ends, s.out.late), (1, 0));
        assert!(s.out.max_lag < 1_000_000, "max lag {}", s.out.max_lag);
        assert_eq!(
            kept,
            Some(u64::MAX),
            "the recorded end, kept for the model trace"
        );
        s.horizon = u64::MAX;
        s.window = 0;
        s.advance(true).expect("advance");
        assert_eq!(s.out.ops, 2 * OPS + 1);
        assert!(s.pending.pending.is_empty() && s.recorded_ends.is_empty());
    }

    /// A begin stamped 0 on an operation read 190 s into a 300 s trace (a stat every 10 ms):
    /// the first replay sees a lag of 190 s. The second replay's window stops at
    /// [`MAX_BEGIN_LAG_NS`](crate::replay::MAX_BEGIN_LAG_NS), the damaged op is late there, and
    /// what is held stays within two such windows. With a window above the lag it held the
    /// whole trace (30 000 ops).
    #[test]
    fn a_damaged_begin_does_not_hold_the_trace() {
        let (dc, hook, dir) = (dcache(), None, tempfile::tempdir().expect("tempdir"));
        let path = Path::new("kernel.trace");
        const OPS: u64 = 30_000;
        const DAMAGED: u64 = 19_000;
        let events: Vec<Event> = (0..OPS)
            .map(|k| {
                let b = 1_000_000_000 + k * 10_000_000;
                stat_until(1, if k == DAMAGED { 0 } else { b }, b + 600)
            })
            .collect();
        let replay = |window, early| {
            let mut out = writer(&dir);
            let mut s = Stream::new(&dc, &hook, &mut out, window, early);
            let mut held = 0;
            for e in &events {
                s.take_in(path, &Record::of_event(e), Probe::Op)
                    .expect("take in");
                s.advance(false).expect("advance");
                held = held.max(s.pending.pending.len());
            }
            s.horizon = u64::MAX;
            s.window = 0;
            s.advance(true).expect("advance");
            assert!(s.pending.pending.is_empty(), "every op has run");
            (s.out.max_lag, s.out.late, s.out.damaged_ends, held)
        };
        let (lag, late, ..) = replay(REORDER_WINDOW_NS, true);
        assert_eq!(late, 1);
        assert!(lag > 190_000_000_000, "max lag {lag}");
        let (_, late, damaged_ends, held) = replay(crate::replay::exact_window(lag), false);
        // Two windows of trace time, 12 000 ops (and the one just read, and the damaged one):
        // the damaged op, placed first, stays open until the window passes its end, and the
        // ops read meanwhile wait behind it.
        assert!(held <= 12_002, "{held} operations held at once");
        assert_eq!((late, damaged_ends), (1, 0));
    }

    /// Ends more than [`MAX_END_LEAD_NS`] past both the event's begin and the latest end
    /// before it are damaged; a long operation, or one ending after a quiet spell, is not.
    #[test]
    fn an_end_is_damaged_past_both_its_begin_and_the_horizon() {
        let lead = MAX_END_LEAD_NS;
        let t = 5_000_000_000;
        assert!(damaged_end(t, u64::MAX, t));
        assert!(damaged_end(t, t + lead + 1, t));
        assert!(!damaged_end(t, t + lead, t));
        // The first event (nothing read before it).
        assert!(damaged_end(t, u64::MAX, 0));
        assert!(!damaged_end(t, t + 600, 0));
        // An op of two minutes whose probe events ended inside it; one after a quiet spell.
        assert!(!damaged_end(t, t + 2 * lead, t + 2 * lead - 1_000));
        assert!(!damaged_end(t + 2 * lead, t + 2 * lead + 600, t));
        assert!(!damaged_end(u64::MAX - 5, u64::MAX, 0));
    }

    /// A window holds a million pending operations: one is 64 bytes (88 with its effect kept
    /// beside the op's place and its open flag).
    #[test]
    fn a_pending_operation_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Option<Pending>>(), 64);
    }

    /// Keys pushed in and out of order, popped between pushes, leave smallest first, as a
    /// sorted list of them would give them.
    #[test]
    fn a_queue_pops_its_smallest_key() {
        let mut rnd = crate::test_rng::xorshift(7u64);
        let mut q = Queue::default();
        let mut all = std::collections::BTreeSet::new();
        for i in 0..5_000usize {
            let k = (i as u64 + rnd(40) - rnd(40).min(i as u64), i);
            q.push(k);
            all.insert(k);
            if rnd(3) == 0 {
                assert_eq!(q.pop(), all.pop_first(), "after {i}");
            }
        }
        while let Some(k) = all.pop_first() {
            assert_eq!(q.pop(), Some(k));
        }
        assert!(q.is_empty() && q.pop().is_none());
    }

    /// `pop_if` takes what `pop` would when the test accepts it, and nothing (the queue left
    /// as it was) when it refuses, wherever the smallest key is (queue, heap, a tie).
    #[test]
    fn pop_if_takes_what_pop_would_or_nothing() {
        let mut rnd = crate::test_rng::xorshift(11u64);
        let (mut q, mut same) = (Queue::default(), Queue::default());
        for i in 0..5_000usize {
            let k = (i as u64 + rnd(40) - rnd(40).min(i as u64), i % 7);
            q.push(k);
            same.push(k);
            if rnd(3) == 0 {
                let limit = i as u64 + rnd(40) - rnd(40).min(i as u64);
                let want = same.peek().filter(|&(b, _)| b <= limit);
                if want.is_some() {
                    same.pop();
                }
                assert_eq!(q.pop_if(|&(b, _)| b <= limit), want, "after {i}");
            }
        }
        while let Some(k) = same.pop() {
            assert_eq!(q.pop_if(|_| false), None);
            assert_eq!(q.pop_if(|_| true), Some(k));
        }
        assert!(q.is_empty() && q.pop_if(|_| true).is_none());
    }

    /// Events queued as they arrive (arrival numbers growing, begins in and out of order and
    /// repeated) go where `push` puts them: the same run and heap, and the same keys out.
    #[test]
    fn an_arriving_event_goes_where_push_puts_it() {
        let mut rnd = crate::test_rng::xorshift(13u64);
        let (mut th, mut same) = (Thread::default(), Queue::default());
        let mut names = Paths::default();
        for arrival in 0..5_000u64 {
            let begin = 1_000 + arrival + rnd(30) - rnd(30);
            let w = Waiting {
                key: (begin, arrival),
                e: lookup(1, begin, &mut names),
                taken: false,
            };
            th.wait(w);
            same.push(w);
            let q = &mut th.waiting;
            let keys = |q: &Queue<Waiting>| -> (Vec<_>, usize) {
                (q.run.iter().map(|w| w.key).collect(), q.heap.len())
            };
            assert_eq!(keys(q), keys(&same), "after {arrival}");
            if rnd(3) == 0 {
                assert_eq!(q.pop().map(|w| w.key), same.pop().map(|w| w.key));
            }
        }
        while let Some(w) = same.pop() {
            assert_eq!(th.waiting.pop().map(|w| w.key), Some(w.key));
        }
        assert!(th.waiting.is_empty());
    }

    /// The search from the front finds what a binary search over the whole list finds, for
    /// every point around every entry, with repeated begins.
    #[test]
    fn first_after_is_the_partition_point() {
        for len in 0..40usize {
            let list: VecDeque<(u64, usize)> = (0..len).map(|i| ((i as u64 / 3) * 10, i)).collect();
            for t in 0..(len as u64 / 3 + 2) * 10 {
                assert_eq!(
                    first_after(&list, t),
                    list.partition_point(|s| s.0 <= t),
                    "len {len}, t {t}"
                );
            }
        }
    }

    // The take-in before lookups came to an op's `Coming` (main aade2e0's `Stream::add_op`
    // and `Stream::add_event`, renamed), kept as the oracle of `the_take_in_is_the_old_one`:
    // every waiting event in the thread's queue itself, and `coming` never used (so `advance`'s
    // spill and `forget`'s look at it do nothing, and `advance` is the old one too).
    fn old_add_op(s: &mut Stream<'_, '_, '_>, index: usize, op: KernelOp) {
        let late = s.arrived(op.ts_begin);
        let th = s.threads.entry(op.tid);
        let key = (op.ts_begin, index);
        let at = if th.ops.back().is_none_or(|&last| last <= key) {
            th.ops.push_back(key);
            th.back = Some((op.ts_begin, op.ts_end));
            th.ops.len() - 1
        } else {
            // Before the back (which is larger): the back stays.
            let at = th.ops.partition_point(|&k| k < key);
            th.ops.insert(at, key);
            at
        };
        s.open_by_end.push((op.ts_end, index));
        s.open_by_begin.push(key);
        let mut p = Pending { op, reach: 0 };
        if s.early {
            let pending = &s.pending;
            let before = at.checked_sub(1).and_then(|k| th.ops.get(k));
            let reach = before.and_then(|&(_, j)| pending.get(j)).map(|p| p.reach);
            // An event assigned early to the op before it is this one's (module comment).
            if !late && reach.is_some_and(|r| r > op.ts_begin) {
                s.out.late += 1;
            }
            // Its waiting events: from its begin to the next op's (the thread's ops after it
            // begin later: its index is the largest), within its span (none begun at
            // `u64::MAX`: `next` is at most that). One taken ends within the span and no
            // earlier than it begins, so the look stops at the op's end: the events of the
            // thread's later ops, read before this op, are not looked at once per op.
            let next = th.ops.get(at + 1).map_or(u64::MAX, |s| s.0);
            let run = &mut th.waiting.run;
            // The run is in key order: those begun after its end are mostly none (its own
            // events arrive before it), else a burst of later ops' events, found by halving.
            let to = if run.back().is_none_or(|w| w.key.0 <= op.ts_end) {
                run.len()
            } else {
                run.partition_point(|w| w.key.0 <= op.ts_end)
            };
            // Then down from there while they begin at or after its begin: the events a
            // search for both ends gave, met back to front (the order of taking does not
            // matter: module comment). Two searches and a pop each cost about a third of an
            // operation's own work in a steady stream (callgrind).
            // Its lookups (most of a trace's probe events) are taken as one, by the latest end
            // among them: the effect of each was a call and a merge (callgrind).
            let mut from = to;
            let mut all_taken = true;
            let mut lookups_end = None;
            for w in run.range_mut(..to).rev() {
                if w.key.0 < op.ts_begin {
                    break;
                }
                from -= 1;
                if !w.taken
                    && w.key.0 < next
                    && early_candidate(w.e.ts_begin, w.e.ts_end)
                    && w.e.ts_end <= op.ts_end
                {
                    if w.e.probe.is_lookup() {
                        lookups_end = lookups_end.max(Some(w.e.ts_end));
                        p.took_early(&w.e);
                    } else {
                        p.take_early(&s.paths, &s.names, &w.e);
                    }
                    w.taken = true;
                }
                all_taken &= w.taken;
            }
            if let Some(latest) = lookups_end {
                p.take_lookups(latest);
            }
            // Those taken at either end go now (the op's own events, in order or after a
            // burst of the thread's later ones), not when the window reaches them.
            if to == run.len() && all_taken {
                run.truncate(from);
            }
            while run.back().is_some_and(|w| w.taken) {
                run.pop_back();
            }
            while run.front().is_some_and(|w| w.taken) {
                run.pop_front();
            }
        }
        s.pending.push(p);
    }

    fn old_add_event(s: &mut Stream<'_, '_, '_>, e: ProbeEvent) {
        // A damaged event ending before it begins is judged late by its end: the op its end
        // falls in may have run already.
        s.arrived(e.ts_begin.min(e.ts_end));
        let th = s.threads.entry(e.tid);
        // Its owner would be the op at the back of the thread's list, which ends before it.
        let past_the_back = th.past_the_back(e.ts_begin, e.ts_end);
        if s.early && !past_the_back {
            // A settled op's place is computed: an event reaching it now waits, as without
            // `early`, and is passed over.
            let candidate = early_candidate(e.ts_begin, e.ts_end);
            if let Some(p) = open_owner(&th.ops, &mut s.pending, &e).filter(|_| candidate) {
                p.take_early(&s.paths, &s.names, &e);
                return;
            }
        }
        let w = Waiting {
            key: (e.ts_begin, s.next_event),
            e,
            taken: false,
        };
        if th
            .waiting
            .run
            .back()
            .is_none_or(|last| last.key.0 <= w.key.0)
        {
            th.waiting.run.push_back(w);
        } else {
            th.waiting.heap.push(Reverse(w));
        }
        s.next_event += 1;
    }

    /// One thing a kernel trace holds, as the take-in gets it.
    #[derive(Clone, Copy)]
    enum Read {
        Op(KernelOp),
        Event(ProbeEvent),
    }

    /// A random stretch of a kernel trace, as its reader hands it out: threads' ops, each
    /// with up to 8 probe events (none for some), lookups mostly, inside its span mostly,
    /// else begun before it or ending after it, now and then damaged (ending before it
    /// begins, begun at `u64::MAX`, ending far past everything); ops overlapping their
    /// thread's last now and then, or ending before they begin; a thread with events and no
    /// op. Each op comes after its events, or before them, or in a burst after the events of
    /// the next few ops, and neighbours swap places now and then.
    fn interleaving(seed: u64, paths: &mut Paths, names: &mut Paths) -> Vec<Read> {
        let mut rnd = crate::test_rng::xorshift(seed);
        let probes = [
            Probe::DLookupRcu,
            Probe::DLookupRcu,
            Probe::DLookupRcu,
            Probe::DLookup,
            Probe::DDelete,
            Probe::DDrop,
            Probe::DInstantiate,
        ];
        let kinds = [
            OpKind::Stat,
            OpKind::Unlink,
            OpKind::Create,
            OpKind::DropCaches,
        ];
        let mut clock = [1_000_000u64; 5];
        let mut groups = Vec::new();
        for _ in 0..150 {
            let tid = 1 + rnd(4) as u32;
            let t = &mut clock[tid as usize];
            let begin = if rnd(12) == 0 {
                t.saturating_sub(rnd(2_000))
            } else {
                *t + rnd(500)
            };
            let len = 100 + rnd(2_000);
            let end = if rnd(60) == 0 { begin - 1 } else { begin + len };
            *t = begin + len + rnd(300);
            let mut op = stat(tid, begin, end, paths);
            op.kind = kinds[rnd(4) as usize];
            op.path = paths.id(if rnd(2) == 0 { b"d0/f1" } else { b"d0/f2" });
            let mut events = Vec::new();
            for _ in 0..rnd(9) {
                let mut e = Event::zeroed();
                e.probe = probes[rnd(probes.len() as u64) as usize] as u8;
                // Now and then the thread with no ops.
                e.tid = if rnd(30) == 0 { 9 } else { tid };
                e.ts_begin = match rnd(10) {
                    0 => begin.saturating_sub(rnd(400)),
                    _ => begin + rnd(len),
                };
                e.ts_end = match rnd(40) {
                    0 => e.ts_begin.saturating_sub(1),
                    1 => e.ts_begin + 1_000_000_000_000,
                    2 | 3 => end + rnd(300),
                    _ => (e.ts_begin + rnd(200)).min(end.max(e.ts_begin)),
                };
                if rnd(200) == 0 {
                    e.ts_begin = u64::MAX;
                }
                e.inode_end = rnd(2);
                e.set_name(if rnd(2) == 0 { b"f1" } else { b"f2" });
                events.push(e);
            }
            events.sort_by_key(|e| e.ts_end);
            let events: Vec<_> = events
                .iter()
                .map(|e| {
                    let probe = Probe::from_u8(e.probe).expect("probe");
                    Read::Event(ProbeEvent::new(&Record::of_event(e), probe, names))
                })
                .collect();
            groups.push((Read::Op(op), events));
        }
        let mut reads = Vec::new();
        let mut held = Vec::new();
        for (op, events) in groups {
            match rnd(6) {
                0 => {
                    reads.push(op);
                    reads.extend(events);
                }
                1 | 2 => {
                    // A burst: ops held until a few more have come.
                    reads.extend(events);
                    held.push(op);
                    if held.len() > rnd(6) as usize {
                        reads.append(&mut held);
                    }
                }
                _ => {
                    reads.extend(events);
                    reads.push(op);
                }
            }
        }
        reads.append(&mut held);
        for k in 1..reads.len() {
            if rnd(25) == 0 {
                reads.swap(k - 1, k);
            }
        }
        reads
    }

    /// Takes `read` in as `take_in` does (a damaged end at the horizon or its begin), by the
    /// new take-in or the old one.
    fn feed(s: &mut Stream<'_, '_, '_>, read: Read, old: bool) {
        let (begin, end) = match read {
            Read::Op(op) => (op.ts_begin, op.ts_end),
            Read::Event(e) => (e.ts_begin, e.ts_end),
        };
        let damaged = damaged_end(begin, end, s.horizon);
        match read {
            Read::Op(mut op) => {
                let index = s.out.ops as usize;
                s.out.ops += 1;
                if damaged {
                    op.ts_end = op.ts_begin.max(s.horizon);
                }
                if old {
                    old_add_op(s, index, op);
                } else {
                    s.add_op(index, op);
                }
            }
            Read::Event(e) if old => old_add_event(s, e),
            Read::Event(e) => s.add_event(e),
        }
        s.horizon = s.horizon.max(if damaged { begin } else { end });
    }

    /// What the take-in and the window hold: each pending op's effect, end, reach and whether
    /// it is open; each thread's ops, back, waiting run (with `coming`) and heap; the queues
    /// of ops; the counts.
    fn state(s: &Stream<'_, '_, '_>) -> String {
        let sorted = |mut v: Vec<(u64, usize)>| {
            v.sort_unstable();
            v
        };
        let queue = |q: &Queue<(u64, usize)>| {
            let heap = sorted(q.heap.iter().map(|r| r.0).collect());
            (q.run.clone(), heap)
        };
        let pending: Vec<_> = s
            .pending
            .pending
            .iter()
            .map(|p| p.as_ref().map(|p| (p.op.effect, p.op.ts_end, p.reach)))
            .collect();
        let threads: Vec<_> = (0..10)
            .map(|tid| {
                s.threads.get(tid).map(|th| {
                    let run: Vec<_> = whole_run(th).iter().map(|w| (w.key, w.taken)).collect();
                    let mut heap: Vec<_> = th
                        .waiting
                        .heap
                        .iter()
                        .map(|r| (r.0.key, r.0.taken))
                        .collect();
                    heap.sort_unstable();
                    (th.ops.clone(), th.back, run, heap)
                })
            })
            .collect();
        format!(
            "{pending:?} {:?} {} {threads:?} {:?} {:?} {:?} {} {} {} {} {} {}",
            s.pending.open,
            s.pending.base,
            queue(&s.ready),
            queue(&s.open_by_end),
            queue(&s.open_by_begin),
            s.next_event,
            s.out.ops,
            s.out.late,
            s.out.max_lag,
            s.out.placed,
            s.out.differ,
        )
    }

    /// The take-in with lookups coming to an op as one holds, after every event read and
    /// every settling, what the old take-in (kept above) held, and the two write the same
    /// model trace: random interleavings (`interleaving`) under windows that make some events
    /// late and none, each read whole or cut short (a truncated trace), its end settled at
    /// once. Both ways of taking in lookups coming (whole, and back to the run) are met often.
    #[test]
    fn the_take_in_is_the_old_one() {
        let (mut whole, mut spilled) = (0, 0);
        for seed in 1..=60u64 {
            let window = [2_000, 50_000, 1_000_000_000][seed as usize % 3];
            let dir = tempfile::tempdir().expect("tempdir");
            let (dc, old_dc, hook) = (dcache(), dcache(), None);
            let create = |name: &str| {
                Writer::create(&dir.path().join(name), &Header::new(Origin::Model))
                    .expect("create a model trace")
            };
            let (mut out, mut old_out) = (create("new.trace"), create("old.trace"));
            let mut s = Stream::new(&dc, &hook, &mut out, window, true);
            let mut o = Stream::new(&old_dc, &hook, &mut old_out, window, true);
            let mut reads = interleaving(seed, &mut s.paths, &mut s.names);
            // The same paths and names, numbered alike, for the old one.
            interleaving(seed, &mut o.paths, &mut o.names);
            let mut rnd = crate::test_rng::xorshift(seed + 1_000);
            if seed % 4 == 0 {
                reads.truncate(rnd(reads.len() as u64) as usize);
            }
            for (k, &read) in reads.iter().enumerate() {
                // Whether the op takes the lookups coming to it whole, or they go back to the
                // run for its look (the test holds both to the old take-in either way).
                if let Read::Op(op) = read {
                    let key = (op.ts_begin, s.out.ops as usize);
                    if let Some(th) = s
                        .threads
                        .get(op.tid)
                        .filter(|th| !th.coming.events.is_empty())
                    {
                        let next = th.ops.iter().find(|&&k| k > key).map_or(u64::MAX, |k| k.0);
                        if th.coming.taken_whole_by(op.ts_begin, op.ts_end, next) {
                            whole += 1;
                        } else {
                            spilled += 1;
                        }
                    }
                }
                feed(&mut s, read, false);
                feed(&mut o, read, true);
                assert_eq!(state(&s), state(&o), "seed {seed}, read {k}");
                if rnd(8) == 0 {
                    s.advance(false).expect("advance");
                    o.advance(false).expect("advance");
                    assert_eq!(state(&s), state(&o), "seed {seed}, advance after read {k}");
                }
            }
            for s in [&mut s, &mut o] {
                s.horizon = u64::MAX;
                s.window = 0;
                s.advance(true).expect("advance");
            }
            assert_eq!(state(&s), state(&o), "seed {seed}, at the end");
            assert!(s.pending.pending.is_empty(), "seed {seed}: every op ran");
            drop((s, o));
            let finish = |w: Writer, name: &str| {
                w.finish(Footer::default()).expect("finish");
                std::fs::read(dir.path().join(name)).expect("read the model trace")
            };
            assert!(
                finish(out, "new.trace") == finish(old_out, "old.trace"),
                "seed {seed}: model traces differ"
            );
        }
        assert!(whole > 300 && spilled > 300, "{whole} {spilled}");
    }
}
