//! What the operations say about each name over time: the ground truth the classification
//! asks "did this name exist at that point" and "did a writer touch it meanwhile".
//!
//! Facts older than the retention horizon are folded into two base facts per name, so memory
//! grows with the number of names, not with the length of the trace.
use std::{cell::Cell, collections::VecDeque};

use tracer_common::OpKind;

use super::align::PathId;

/// Whether a name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exists {
    Yes,
    No,
}

/// One completed operation on a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fact {
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    pub kind: OpKind,
    pub result: i32,
    /// What the operation proves about the name once it completed (None: nothing).
    pub effect: Option<Exists>,
    /// It took effect at one instant inside its interval, after which the name's state is
    /// `effect` (a successful create, mkdir, unlink, rmdir, rename or exchange): what the
    /// state at a point is made of, and what may have replaced the name's dentry and the names
    /// below it.
    pub writer: bool,
    /// It may have changed whether the name exists (rule 2): a writer, except an exchange and
    /// a rename onto a name that existed at its begin, which leave the name existing
    /// throughout (POSIX; `__d_move` swaps the dentries under `rename_lock`).
    pub changes_existence: bool,
}

const EEXIST: i32 = -17;

impl Fact {
    /// A create or mkdir of the workload's setup, which runs before its first operation (at
    /// `first_op`) and leaves no operation event: from the trace's start to that point.
    pub fn setup(kind: OpKind, first_op: u64) -> Fact {
        Fact {
            ts_begin: 0,
            ts_end: first_op.saturating_sub(1),
            tid: 0,
            kind,
            result: 0,
            effect: Some(Exists::Yes),
            writer: true,
            changes_existence: true,
        }
    }

    /// The facts an operation's result establishes about its first and (renames) second path.
    /// ENOENT results prove nothing: a spurious ENOENT is what the diff looks for, so it must
    /// not become the evidence that excuses the next one.
    pub fn from_op(
        kind: OpKind,
        result: i32,
        ts_begin: u64,
        ts_end: u64,
        tid: u32,
    ) -> [Option<Fact>; 2] {
        let fact = |effect: Option<Exists>, writer: bool| Fact {
            ts_begin,
            ts_end,
            tid,
            kind,
            result,
            effect,
            writer,
            changes_existence: writer && kind != OpKind::Exchange,
        };
        let ok = result >= 0;
        match kind {
            OpKind::Create | OpKind::Mkdir if ok => [Some(fact(Some(Exists::Yes), true)), None],
            OpKind::Create | OpKind::Mkdir if result == EEXIST => {
                [Some(fact(Some(Exists::Yes), false)), None]
            }
            OpKind::Unlink | OpKind::Rmdir if ok => [Some(fact(Some(Exists::No), true)), None],
            OpKind::Rename if ok => [
                Some(fact(Some(Exists::No), true)),
                Some(fact(Some(Exists::Yes), true)),
            ],
            // Both names exist before and after; each changes its dentry (and so what is below
            // it) in between.
            OpKind::Exchange if ok => [
                Some(fact(Some(Exists::Yes), true)),
                Some(fact(Some(Exists::Yes), true)),
            ],
            OpKind::Stat | OpKind::Open | OpKind::Readdir if ok => {
                [Some(fact(Some(Exists::Yes), false)), None]
            }
            _ => [None, None],
        }
    }
}

/// Whether a name exists at a point, and the facts that say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State<'a> {
    /// No operation before it says anything.
    Unknown,
    Exists(&'a Fact),
    Missing(&'a Fact),
    /// The last writer overlapped an earlier one with the opposite effect: which took effect
    /// last is unknown.
    Racing(&'a Fact, &'a Fact),
    /// Racing writers whose results fix the order: each is a successful create (always
    /// `O_EXCL`: the runner's and the model's), mkdir, unlink or rmdir, which needs the name in
    /// the state the other kind leaves, so from the state before the first of them began
    /// (`prior`'s, a fact that ended before) they alternate and `last`'s effect came last
    /// (`rival` is the racing writer of the other kind).
    Ordered {
        last: &'a Fact,
        rival: &'a Fact,
        prior: &'a Fact,
    },
}

impl<'a> State<'a> {
    /// The state with racing writers whose order is known read as their last one's effect.
    pub fn settled(self) -> State<'a> {
        match self {
            State::Ordered { last, .. } if last.effect == Some(Exists::Yes) => State::Exists(last),
            State::Ordered { last, .. } => State::Missing(last),
            s => s,
        }
    }
}

/// A name's facts in end order, as one slice: folding takes them from the front, and the
/// queries walk them back from the newest. A `VecDeque`'s ring cost each query its index
/// arithmetic and its two halves (about a third of a state query, callgrind); here the front
/// is an offset into a vector, which moves the live facts down once the dead front is as
/// long as they are (each fact is moved at most once on average).
#[derive(Default)]
struct Facts {
    buf: Vec<Fact>,
    /// Facts before it are folded.
    head: usize,
}

impl std::ops::Deref for Facts {
    type Target = [Fact];
    #[inline(always)]
    fn deref(&self) -> &[Fact] {
        // `head` never passes the end: `pop_front` moves it past a fact that exists only.
        self.buf.get(self.head..).unwrap_or(&[])
    }
}

impl Facts {
    fn back(&self) -> Option<&Fact> {
        self.buf.last().filter(|_| self.head < self.buf.len())
    }

    fn push_back(&mut self, f: Fact) {
        if self.buf.len() == self.buf.capacity() {
            self.make_room();
        }
        self.buf.push(f);
    }

    fn insert(&mut self, at: usize, f: Fact) {
        if self.buf.len() == self.buf.capacity() {
            self.make_room();
        }
        self.buf.insert(self.head + at, f);
    }

    /// A fact is to go into a full vector: the live facts moved down when a quarter of it
    /// or more is folded, rather than the vector doubled. Without it a name whose live facts
    /// were just over half the capacity doubled it once its dead front had grown to the rest
    /// (`pop_front` moves them down only when the front is as long as they are), and the
    /// vectors held up to four times their live facts: at 10 M and 30 M events a side the
    /// bench's histories held 1.5 M live facts a side in 80 and 160 MiB (heaptrack), the second
    /// reached only once the trace was twice the retention long. Now a vector doubles only
    /// when more than three quarters of it are live: it holds at most 8/3 of the most live
    /// facts (at least four), and moves at most three live facts per fold.
    /// (Out of line: it was 3.8 M instructions more on the bench's 1 M events a side with
    /// `--window-ms 100` inlined into the analysis's loop, which it changed around it.)
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) {
        if self.head != 0 && 4 * self.head >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    fn pop_front(&mut self) -> Option<Fact> {
        let f = *self.buf.get(self.head)?;
        self.head += 1;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head >= COMPACT_AT && 2 * self.head >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        Some(f)
    }
}

/// How many folded facts a name's [`Facts`] holds at least before moving its live ones down:
/// with at least as many live ones behind them (the other condition), each move copies no more
/// than the pops it follows, and a name with a few facts is never moved at all.
const COMPACT_AT: usize = 32;

/// How many racing groups back an order may rest on the one before it (each resolved from the
/// state before it): bounds the work of a state query on a name raced over and over.
const ORDER_DEPTH: u8 = 4;

/// Laid out as written (`repr(C)`), each name on cache lines of its own (`align(64)`): what
/// every add reads and writes is in the first line (`version`, `newest_end`, `recent`) and
/// the third (`moves`' length, `writers`), what a state question reads first in the first
/// two (`version`, `last_state`). The compiler's order, at a 264-byte stride, spread an add
/// over three lines: cachegrind's simulated first-level misses in `History::add` fell from
/// 2.0 M to 1.57 M on the bench's 1 M events a side (`--window-ms 100`), and the instructions
/// did not rise.
#[derive(Default)]
#[repr(C, align(64))]
struct NameHistory {
    /// Counts the changes to the facts (every add, which may also fold): a cached state
    /// ([`LastState`]) holds while it is the same.
    version: u64,
    /// The newest fact's `ts_end` while `recent` holds any: whether a fact appends is
    /// answered here, without reading `recent`'s far end (a cache miss per operation in the
    /// profile: a busy name holds thousands of facts).
    newest_end: u64,
    /// Facts of the last retention period, sorted by `ts_end` (those ending together in
    /// arrival order).
    recent: Facts,
    /// How many facts of `recent` end before they begin (a damaged event): while there is
    /// one, the walk for the last observation cannot stop early (see `last_before`).
    inverted: usize,
    /// The answer of the last state question on the name.
    last_state: Cell<LastState>,
    /// Renames and exchanges onto the name, in arrival order: where what is below it came
    /// from. Those ending behind the retention horizon are dropped, but for the newest of them.
    moves: VecDeque<Move>,
    /// The writers of `recent`, in the same order: what queries walk back through, where
    /// `recent` holds every observation too (a name stat'd 100 k times a second holds
    /// hundreds of thousands).
    writers: Facts,
    /// The last writer folded out of `recent`, and an overlapping one of opposite effect.
    base_writer: Option<Fact>,
    base_rival: Option<Fact>,
    /// Of the observations folded since `base_writer` ended, the one that began last.
    base_observation: Option<Fact>,
}

/// A rename or exchange onto a name: its interval and the name its dentry (and what is below
/// it) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Move {
    from: PathId,
    ts_begin: u64,
    ts_end: u64,
    tid: u32,
}

/// A writer, and a writer of opposite effect overlapping it (which took effect last is
/// unknown).
pub type LastWriter<'a> = (&'a Fact, Option<&'a Fact>);

/// Which writers an overlap question counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writers {
    /// Those that may have changed whether the name exists (rule 2 on the name itself).
    OfExistence,
    /// Those, and an exchange, which may swap a file and a directory: for results that
    /// depend on what the name is (an unlink's EISDIR, an open's).
    OfExistenceOrType,
    /// Every writer: also an exchange or a rename onto an existing name, which replace the
    /// name's dentry and what is below it.
    All,
}

impl Writers {
    /// Whether `f` is one of these writers.
    fn count(self, f: &Fact) -> bool {
        match self {
            Writers::OfExistence => f.changes_existence,
            Writers::OfExistenceOrType => {
                f.changes_existence || (f.writer && f.kind == OpKind::Exchange)
            }
            Writers::All => f.writer,
        }
    }
}

impl NameHistory {
    /// The last writer that completed before `t` with an overlapping rival of opposite effect,
    /// and the observation that began last after it (or the last one, with no writer).
    ///
    /// Of the facts that ended before `t`, newest first, the observations after the last
    /// writer: one that begins later than the best so far must end after that begin, and
    /// `recent` is sorted by end, so the walk stops at the first fact ending no later than the
    /// best's begin. What it reads is then the facts in flight at one instant (a few per
    /// thread), not every observation since the writer.
    fn last_before(&self, t: u64) -> (Option<&Fact>, Option<LastWriter<'_>>) {
        self.last_among(ended_before(&self.recent, t), t)
    }

    /// [`NameHistory::last_before`] from `end`, how many of `recent` ended before `t`.
    fn last_among(&self, end: usize, t: u64) -> (Option<&Fact>, Option<LastWriter<'_>>) {
        let mut observation: Option<&Fact> = self.base_observation.as_ref();
        for f in self.recent[..end].iter().rev() {
            if f.writer
                || (self.inverted == 0 && observation.is_some_and(|o| f.ts_end <= o.ts_begin))
            {
                break;
            }
            if observation.is_none_or(|o| f.ts_begin > o.ts_begin) {
                observation = Some(f);
            }
        }
        (observation, self.last_writer_before(t))
    }

    /// The writer half of [`NameHistory::last_before`]: the last writer that completed before
    /// `t`, with its rival. Inlined: every state question asks it, and as a call its
    /// prologue and epilogue were a fifth of its cost (callgrind).
    #[inline(always)]
    fn last_writer_before(&self, t: u64) -> Option<LastWriter<'_>> {
        self.last_writer_among(self.writers_before(t))
    }

    /// [`NameHistory::last_writer_before`] from `end`, how many of `writers` ended before the
    /// point.
    #[inline(always)]
    fn last_writer_among(&self, end: usize) -> Option<LastWriter<'_>> {
        let Some(i) = end.checked_sub(1) else {
            return self
                .base_writer
                .as_ref()
                .map(|w| (w, self.base_rival.as_ref()));
        };
        let f = &self.writers[i];
        let rival = self.writers[..i]
            .iter()
            .rev()
            .take_while(|g| g.ts_end >= f.ts_begin)
            .find(|g| rivals(g, f))
            .or_else(|| self.base_writer.as_ref().filter(|g| rivals(g, f)));
        Some((f, rival))
    }

    /// How many of `writers` ended before `t`.
    fn writers_before(&self, t: u64) -> usize {
        ended_before(&self.writers, t)
    }
}

impl NameHistory {
    /// [`NameHistory::state_before`], kept as the name's last answer (see
    /// [`History::state_at`]).
    fn state_asked(&self, t: u64) -> State<'_> {
        let end = ended_before(&self.recent, t);
        let state = self.state_from(self.last_among(end, t), t, ORDER_DEPTH);
        self.last_state.set(LastState {
            version: self.version,
            // The points after the end of the last fact before `t` up to the end of the first
            // one not before it have the same facts before them.
            from: end
                .checked_sub(1)
                .map_or(0, |i| self.recent[i].ts_end.saturating_add(1)),
            to: self.recent.get(end).map_or(u64::MAX, |f| f.ts_end),
            state: Held::of(state, self),
        });
        state
    }

    /// The fact that shows the name missing at `t`, if its state there is missing (see
    /// [`History::missing_and_last_writer`]).
    #[inline(never)]
    fn missing_at(&self, t: u64) -> Option<&Fact> {
        match self.state_from(self.last_before(t), t, ORDER_DEPTH) {
            State::Missing(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the name exists at `t`, from what completed before it (see
    /// [`History::state_at`]); racing writers are ordered from their results when they can be,
    /// resting on up to `depth` racing groups before them.
    fn state_before(&self, t: u64, depth: u8) -> State<'_> {
        self.state_from(self.last_before(t), t, depth)
    }

    /// [`NameHistory::state_before`] from what [`NameHistory::last_before`] found at `t`.
    fn state_from<'a>(
        &'a self,
        (observation, writer): (Option<&'a Fact>, Option<LastWriter<'a>>),
        t: u64,
        depth: u8,
    ) -> State<'a> {
        match (observation, writer) {
            (Some(o), Some((w, _))) if o.ts_begin > w.ts_end => State::Exists(o),
            (Some(o), None) => State::Exists(o),
            (_, Some((w, Some(r)))) => self.order(w, r, t, depth).unwrap_or(State::Racing(w, r)),
            (_, Some((w, None))) if w.effect == Some(Exists::Yes) => State::Exists(w),
            (_, Some((w, None))) => State::Missing(w),
            (None, None) => State::Unknown,
        }
    }

    /// The order of racing writers `w` (the last to complete before `t`) and `r`, when their
    /// results fix it: every writer that may have taken effect after the first of them began
    /// (each one ending after that begin, which moves back as they join) is a successful
    /// create, mkdir, unlink or rmdir, so each flips the name's existence; from the state
    /// before them, the count of each kind says which came last. None (the order stays
    /// unknown) with a rename or exchange among them, a state before them that is unknown or
    /// racing itself, a writer among them folded out of `recent` (the fold keeps only the last),
    /// or counts that no order from that state allows (a fact missing).
    fn order<'a>(&'a self, w: &'a Fact, r: &'a Fact, t: u64, depth: u8) -> Option<State<'a>> {
        let depth = depth.checked_sub(1)?;
        let mut from = w.ts_begin.min(r.ts_begin).min(w.ts_end).min(r.ts_end);
        let mut flips = 0i64;
        // Sorted by end: once a writer ends before `from`, so do the rest.
        for f in self.writers[..self.writers_before(t)].iter().rev() {
            if f.ts_end < from {
                break;
            }
            flips += flip(f)?;
            from = from.min(f.ts_begin);
        }
        if self.base_writer.is_some_and(|b| b.ts_end >= from) {
            return None;
        }
        ordered(w, r, self.state_before(from, depth), flips)
    }
}

/// How a writer that may have taken effect inside a racing group changes the name's
/// existence: +1 a successful create or mkdir, -1 a successful unlink or rmdir; None for any
/// other writer (a rename or exchange, a failed one), whose effect leaves the order unknown.
fn flip(f: &Fact) -> Option<i64> {
    match (f.kind, f.effect) {
        (OpKind::Create | OpKind::Mkdir, Some(Exists::Yes)) => Some(1),
        (OpKind::Unlink | OpKind::Rmdir, Some(Exists::No)) => Some(-1),
        _ => None,
    }
}

/// The order of racing writers `w` and `r` from the state `before` the group and the sum of
/// its writers' [`flip`]s: the one whose effect matches where the name ends up came last.
/// None when that state is unknown or racing, or no order from it allows the sum.
fn ordered<'a>(w: &'a Fact, r: &'a Fact, before: State<'a>, flips: i64) -> Option<State<'a>> {
    let (existed, prior) = match before {
        State::Exists(p) => (true, p),
        State::Missing(p) => (false, p),
        State::Ordered { last, prior, .. } => (last.effect == Some(Exists::Yes), prior),
        State::Racing(..) | State::Unknown => return None,
    };
    let exists = match (existed, flips) {
        (true, 0) | (false, 1) => true,
        (true, -1) | (false, 0) => false,
        _ => return None,
    };
    let (last, rival) = if (w.effect == Some(Exists::Yes)) == exists {
        (w, r)
    } else {
        (r, w)
    };
    Some(State::Ordered { last, rival, prior })
}

/// How many of `facts` (sorted by end) ended before `t`, searched from the newest: queries
/// ask about the recent past, so the answer is usually among the last few facts, and a binary
/// search from the front would read a cache line per step across the whole slice. Steps back
/// double until one ends before `t`, then a binary search between the last two. Inlined: a
/// state query makes two of these, nearly always answered by the newest fact, and the call
/// itself was a third of their cost (callgrind).
#[inline(always)]
fn ended_before(facts: &[Fact], t: u64) -> usize {
    let (mut lo, mut hi) = (0, facts.len());
    let mut step = 1;
    while let Some(i) = hi.checked_sub(step) {
        if facts[i].ts_end < t {
            lo = i + 1;
            break;
        }
        hi = i;
        step *= 2;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if facts[mid].ts_end < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn rivals(a: &Fact, b: &Fact) -> bool {
    a.effect != b.effect && a.ts_end >= b.ts_begin && b.ts_end >= a.ts_begin
}

/// Where a fact of a state is in its name's history: positions, which hold while the name's
/// facts are unchanged (its [`NameHistory::version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Recent(u32),
    Writer(u32),
    BaseWriter,
    BaseRival,
    BaseObservation,
}

impl At {
    /// `f`, a fact of `h`'s `recent` or `writers` or one of its base facts (a state holds no
    /// other).
    fn of(f: &Fact, h: &NameHistory) -> At {
        let size = std::mem::size_of::<Fact>();
        let p = f as *const Fact as usize;
        let index = |facts: &[Fact]| {
            let base = facts.as_ptr() as usize;
            (p >= base && p < base + std::mem::size_of_val(facts))
                .then(|| ((p - base) / size) as u32)
        };
        if let Some(i) = index(&h.writers) {
            At::Writer(i)
        } else if let Some(i) = index(&h.recent) {
            At::Recent(i)
        } else if h.base_writer.as_ref().is_some_and(|b| std::ptr::eq(b, f)) {
            At::BaseWriter
        } else if h.base_rival.as_ref().is_some_and(|b| std::ptr::eq(b, f)) {
            At::BaseRival
        } else {
            // A state borrows only its own name's facts; anything else would make a kept
            // answer read the base observation instead.
            debug_assert!(h
                .base_observation
                .as_ref()
                .is_some_and(|b| std::ptr::eq(b, f)));
            At::BaseObservation
        }
    }

    #[inline(always)]
    fn get(self, h: &NameHistory) -> Option<&Fact> {
        match self {
            At::Recent(i) => h.recent.get(i as usize),
            At::Writer(i) => h.writers.get(i as usize),
            At::BaseWriter => h.base_writer.as_ref(),
            At::BaseRival => h.base_rival.as_ref(),
            At::BaseObservation => h.base_observation.as_ref(),
        }
    }
}

/// A [`State`] by the positions of its facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Unknown,
    Exists(At),
    Missing(At),
    Racing(At, At),
    Ordered { last: At, rival: At, prior: At },
}

impl Held {
    fn of(s: State<'_>, h: &NameHistory) -> Held {
        let at = |f| At::of(f, h);
        match s {
            State::Unknown => Held::Unknown,
            State::Exists(f) => Held::Exists(at(f)),
            State::Missing(f) => Held::Missing(at(f)),
            State::Racing(w, r) => Held::Racing(at(w), at(r)),
            State::Ordered { last, rival, prior } => Held::Ordered {
                last: at(last),
                rival: at(rival),
                prior: at(prior),
            },
        }
    }

    /// The state again, from the unchanged history it was taken from (None if a position is
    /// gone, which an unchanged history rules out). Inlined into [`History::state_at`]: nearly
    /// every state question is answered here, and as a call its prologue and epilogue were
    /// about a quarter of it (callgrind).
    #[inline(always)]
    fn get(self, h: &NameHistory) -> Option<State<'_>> {
        Some(match self {
            Held::Unknown => State::Unknown,
            Held::Exists(f) => State::Exists(f.get(h)?),
            Held::Missing(f) => State::Missing(f.get(h)?),
            Held::Racing(w, r) => State::Racing(w.get(h)?, r.get(h)?),
            Held::Ordered { last, rival, prior } => State::Ordered {
                last: last.get(h)?,
                rival: rival.get(h)?,
                prior: prior.get(h)?,
            },
        })
    }
}

/// The answer of the last [`History::state_at`] question on a name: its state at any point
/// from `from` to `to` while its `version` is the one it had.
#[derive(Clone, Copy, Debug)]
struct LastState {
    version: u64,
    from: u64,
    to: u64,
    state: Held,
}

impl Default for LastState {
    /// Matches no question (an empty range).
    fn default() -> Self {
        LastState {
            version: 0,
            from: 1,
            to: 0,
            state: Held::Unknown,
        }
    }
}

/// Per-name operation history of one trace.
pub struct History {
    /// By path id (ids are dense: the interner numbers paths from 0).
    names: Vec<NameHistory>,
    retention: u64,
}

impl History {
    /// `retention`: how far back (ns) queries may reach behind the latest `now` passed to
    /// [`History::add`].
    pub fn new(retention: u64) -> History {
        History {
            names: Vec::new(),
            retention,
        }
    }

    /// Adds an operation's facts ([`Fact::from_op`]) on its path and, for a rename or exchange,
    /// its second path. Operations come in begin order, so the history before this one's
    /// begin is complete here.
    pub fn add_op(
        &mut self,
        [f1, f2]: [Option<Fact>; 2],
        path: PathId,
        path2: Option<PathId>,
        now: u64,
    ) {
        let (Some(to), Some(mut f2)) = (path2, f2) else {
            if let Some(f) = f1 {
                self.add(path, f, now);
            }
            return;
        };
        if to == path {
            // A rename or exchange of a name onto itself changes nothing (the kernel returns
            // at once): it only shows the name existing.
            let seen = Fact {
                effect: Some(Exists::Yes),
                writer: false,
                changes_existence: false,
                ..f2
            };
            self.add(path, seen, now);
            return;
        }
        if matches!(self.state_at(to, f2.ts_begin), State::Exists(_)) {
            f2.changes_existence = false;
        }
        let moved = |from| Move {
            from,
            ts_begin: f2.ts_begin,
            ts_end: f2.ts_end,
            tid: f2.tid,
        };
        if f2.kind == OpKind::Exchange {
            self.name_mut(path).moves.push_back(moved(to));
        }
        self.name_mut(to).moves.push_back(moved(path));
        if let Some(f) = f1 {
            self.add(path, f, now);
        }
        self.add(to, f2, now);
    }

    fn name_mut(&mut self, path: PathId) -> &mut NameHistory {
        let i = path as usize;
        if i >= self.names.len() {
            self.names.resize_with(i + 1, NameHistory::default);
        }
        &mut self.names[i]
    }

    pub fn add(&mut self, path: PathId, fact: Fact, now: u64) {
        let i = path as usize;
        if i >= self.names.len() {
            self.names.resize_with(i + 1, NameHistory::default);
        }
        let h = &mut self.names[i];
        h.version += 1;
        // Facts come nearly in completion order: append unless one finished earlier.
        if h.recent.is_empty() || h.newest_end <= fact.ts_end {
            h.newest_end = fact.ts_end;
            h.recent.push_back(fact);
        } else {
            let at = h.recent.partition_point(|f| f.ts_end <= fact.ts_end);
            h.recent.insert(at, fact);
        }
        if fact.writer {
            if h.writers.back().is_none_or(|w| w.ts_end <= fact.ts_end) {
                h.writers.push_back(fact);
            } else {
                let at = h.writers.partition_point(|f| f.ts_end <= fact.ts_end);
                h.writers.insert(at, fact);
            }
        }
        if fact.ts_begin > fact.ts_end {
            h.inverted += 1;
        }
        let horizon = now.saturating_sub(self.retention);
        while h.moves.get(1).is_some_and(|m| m.ts_end < horizon) {
            h.moves.pop_front();
        }
        while h.recent.first().is_some_and(|f| f.ts_end < horizon) {
            let Some(old) = h.recent.pop_front() else {
                break;
            };
            if old.ts_begin > old.ts_end {
                h.inverted -= 1;
            }
            if old.writer {
                // The first writer of `recent` is the first of `writers`.
                h.writers.pop_front();
                h.base_rival = h.base_writer.filter(|p| rivals(p, &old));
                if h.base_observation.is_some_and(|o| o.ts_begin <= old.ts_end) {
                    h.base_observation = None;
                }
                h.base_writer = Some(old);
            } else if h.base_observation.is_none_or(|o| old.ts_begin > o.ts_begin) {
                h.base_observation = Some(old);
            }
        }
    }

    /// Whether `path` exists at `t`, from what completed before `t`: the last writer, unless
    /// an observation (a successful stat, open, EEXIST) began after that writer ended. An
    /// observation only proves the name existed at some instant inside it, so one that
    /// overlaps a later writer (an open that saw the file just before an unlink completed)
    /// proves nothing about `t`. Likewise a writer's effect lands somewhere inside its
    /// interval: a create and an unlink that overlap leave the order unknown, unless their
    /// results and the state before them fix it ([`State::Ordered`]).
    ///
    /// The state is a function of the name's facts that ended before `t` alone, so the last
    /// answer holds for any point between the same two facts' ends while the name's facts are
    /// unchanged: a name's state is asked several times in a row (the matcher's judgement of a
    /// stat, the class of its ENOENT, of the NULL-inode lookup inside it), and the walk of its
    /// facts and writers was about 120 instructions a question (callgrind).
    #[inline(always)]
    pub fn state_at(&self, path: PathId, t: u64) -> State<'_> {
        let Some(h) = self.names.get(path as usize) else {
            return State::Unknown;
        };
        let last = h.last_state.get();
        if last.version == h.version && last.from <= t && t <= last.to {
            if let Some(state) = last.state.get(h) {
                return state;
            }
        }
        h.state_asked(t)
    }

    /// [`History::state_at`] where it can be [`State::Missing`] or [`State::Racing`]; None where
    /// the last writer that completed before `t` rules both out (there is none, or it has no
    /// rival and left the name existing: the state is then existing or unknown), without
    /// walking the observations. A successful stat's or open's judgement asks only this: its
    /// result contradicts a missing name alone, and the walk was most of its cost (callgrind).
    pub fn state_unless_existing(&self, path: PathId, t: u64) -> Option<State<'_>> {
        match self.names.get(path as usize)?.last_writer_before(t) {
            None => None,
            Some((w, None)) if w.effect == Some(Exists::Yes) => None,
            Some(_) => Some(self.state_at(path, t)),
        }
    }

    /// Whether `path`'s state at `t` may be [`State::Racing`]: only when the last writer that
    /// completed before `t` has a rival. Cheaper than [`History::state_at`] (no walk of the
    /// observations), for a question that only needs to know whether the state is racing.
    pub fn may_race(&self, path: PathId, t: u64) -> bool {
        self.names
            .get(path as usize)
            .and_then(|h| h.last_writer_before(t))
            .is_some_and(|(_, rival)| rival.is_some())
    }

    /// What the classification asks of each directory above a name: the fact that shows
    /// `path` missing at `t` when [`History::state_at`] is [`State::Missing`], and the last
    /// writer that completed before `t` (with its rival if one overlapped it). Only a last
    /// writer with no rival that did not leave the name existing makes the state missing (an
    /// observation that began after it ended would make it existing), so only then are the
    /// observations walked: a directory is rarely removed, and the walk was two thirds of
    /// the question's cost (callgrind). Inlined, with that walk out of line
    /// ([`NameHistory::missing_at`]): the classification asks it of every directory above a
    /// name, and as a call it cost about 15 instructions more a question.
    #[inline(always)]
    pub fn missing_and_last_writer(
        &self,
        path: PathId,
        t: u64,
    ) -> (Option<&Fact>, Option<LastWriter<'_>>) {
        let Some(h) = self.names.get(path as usize) else {
            return (None, None);
        };
        let last = h.last_writer_before(t);
        let missing = match last {
            Some((w, None)) if w.effect != Some(Exists::Yes) => h.missing_at(t),
            _ => None,
        };
        (missing, last)
    }

    /// Where the dentry that writer `f` (a rename or exchange onto `path`) put there came
    /// from. None when `f` is no such writer, or its record was dropped behind the horizon.
    pub fn moved_from(&self, path: PathId, f: &Fact) -> Option<PathId> {
        let h = self.names.get(path as usize)?;
        h.moves
            .iter()
            .rev()
            .find(|m| m.ts_begin == f.ts_begin && m.ts_end == f.ts_end && m.tid == f.tid)
            .map(|m| m.from)
    }

    /// Facts on `path` that end at or after `b`, newest first. Queries ask about the recent
    /// past, so walking back from the newest stops after a few.
    fn ending_after(&self, path: PathId, b: u64) -> impl Iterator<Item = &Fact> {
        self.names
            .get(path as usize)
            .into_iter()
            .flat_map(move |h| h.recent.iter().rev().take_while(move |f| f.ts_end >= b))
    }

    /// The newest writer of `path` that ends at or after `b` and `hit` accepts (every fact
    /// that [`Writers::count`] counts is a writer: an observation changes nothing). A plain
    /// loop: as an iterator chain (`flat_map`, `take_while`, `find`) each question cost about
    /// 80 instructions where the name has a writer or two (callgrind).
    fn writer_ending_after(
        &self,
        path: PathId,
        b: u64,
        hit: impl Fn(&Fact) -> bool,
    ) -> Option<&Fact> {
        let h = self.names.get(path as usize)?;
        for f in h.writers.iter().rev() {
            if f.ts_end < b {
                return None;
            }
            if hit(f) {
                return Some(f);
            }
        }
        None
    }

    /// A writer of `path` whose interval overlaps `[b, e]`, other than the operation of thread
    /// `tid` over exactly `[b, e]` (the one asking).
    pub fn other_writer_overlapping(
        &self,
        path: PathId,
        b: u64,
        e: u64,
        tid: u32,
        which: Writers,
    ) -> Option<&Fact> {
        self.writer_ending_after(path, b, |f| {
            which.count(f) && f.ts_begin <= e && !(f.tid == tid && f.ts_begin == b && f.ts_end == e)
        })
    }

    /// Whether a writer of `path` other than the asking operation overlaps `[b, e]`
    /// ([`History::other_writer_overlapping`]) or `path`'s state at `b` is racing. One walk
    /// back through the name's writers answers both: those ending at or after `b` are the
    /// overlap's candidates, and the one before them is the last writer before `b`, whose
    /// rival alone can make the state racing ([`History::may_race`]); asked apart, the second
    /// searched the writers again (callgrind: about 50 instructions a name of a judgement).
    pub fn raced(&self, path: PathId, b: u64, e: u64, tid: u32, which: Writers) -> bool {
        let Some(h) = self.names.get(path as usize) else {
            return false;
        };
        let mut end = h.writers.len();
        for f in h.writers.iter().rev() {
            if f.ts_end < b {
                break;
            }
            if which.count(f)
                && f.ts_begin <= e
                && !(f.tid == tid && f.ts_begin == b && f.ts_end == e)
            {
                return true;
            }
            end -= 1;
        }
        h.last_writer_among(end)
            .is_some_and(|(_, rival)| rival.is_some())
            && matches!(self.state_at(path, b), State::Racing(..))
    }

    /// A writer operation on `path` (of `kinds`, or any; counting `which`) whose interval
    /// overlaps `[b, e]`.
    pub fn writer_overlapping(
        &self,
        path: PathId,
        b: u64,
        e: u64,
        kinds: Option<&[OpKind]>,
        which: Writers,
    ) -> Option<&Fact> {
        self.writer_ending_after(path, b, |f| {
            which.count(f) && f.ts_begin <= e && kinds.is_none_or(|k| k.contains(&f.kind))
        })
    }

    /// A writer operation of `kinds` on `path` by thread `tid` whose interval overlaps
    /// `[b, e]`.
    pub fn own_writer_overlapping(
        &self,
        path: PathId,
        b: u64,
        e: u64,
        tid: u32,
        kinds: &[OpKind],
    ) -> Option<&Fact> {
        self.writer_ending_after(path, b, |f| {
            f.tid == tid && f.ts_begin <= e && kinds.contains(&f.kind)
        })
    }

    /// Any operation of `kinds` on `path` overlapping `[b, e]` (coverage-gap attribution).
    pub fn op_overlapping(&self, path: PathId, b: u64, e: u64, kinds: &[OpKind]) -> Option<&Fact> {
        self.ending_after(path, b)
            .find(|f| kinds.contains(&f.kind) && f.ts_begin <= e)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Random operation intervals for tests of histories (here and the suspects'
    /// judgement): four threads, each running its operations one after another while the
    /// four overlap, begins up to 30 ns apart, now and then (one in 200) a jump past twice the
    /// retention that folds what came before; one operation in `odd` long (300 to 1,300 ns)
    /// and one in `odd` damaged (ending before it begins). An operation is
    /// [`Self::begin`], then [`Self::end`]: a test draws its kind between the two or after.
    pub(crate) struct Intervals {
        /// Drawn at random: 200 to 2,200 ns.
        pub retention: u64,
        t: u64,
        /// The latest stamp so far.
        pub now: u64,
        /// Per thread, where its next operation may begin.
        free: [u64; 4],
    }

    impl Intervals {
        pub(crate) fn new(rng: &mut impl FnMut(u64) -> u64) -> Intervals {
            Intervals {
                retention: 200 + rng(2_000),
                t: 1_000,
                now: 0,
                free: [0; 4],
            }
        }

        /// The next operation's thread and begin.
        pub(crate) fn begin(&mut self, rng: &mut impl FnMut(u64) -> u64) -> (usize, u64) {
            let tid = rng(4) as usize;
            self.t += rng(30);
            if rng(200) == 0 {
                self.t += self.retention * 2;
            }
            (tid, self.t.max(self.free[tid]))
        }

        /// The end of the operation [`Self::begin`] gave.
        pub(crate) fn end(
            &mut self,
            rng: &mut impl FnMut(u64) -> u64,
            (tid, b): (usize, u64),
            odd: u64,
        ) -> u64 {
            let e = match rng(odd) {
                0 => b + 300 + rng(1_000),
                1 => b.saturating_sub(1 + rng(20)),
                _ => b + 1 + rng(40),
            };
            self.free[tid] = b.max(e) + 1;
            self.now = self.now.max(b.max(e));
            e
        }
    }

    fn kind(s: State<'_>) -> Option<OpKind> {
        match s {
            State::Exists(f) | State::Missing(f) => Some(f.kind),
            State::Racing(..) | State::Ordered { .. } | State::Unknown => None,
        }
    }

    fn add(h: &mut History, kind: OpKind, result: i32, b: u64, e: u64, now: u64) {
        for f in Fact::from_op(kind, result, b, e, 1).into_iter().flatten() {
            h.add(7, f, now);
        }
    }

    /// A name's facts as a vector with a moving front hold what a double-ended queue would
    /// through appends, inserts and pops, across the moves of the live facts down (and with
    /// the front emptied now and then).
    #[test]
    fn facts_behave_as_a_queue_across_compactions() {
        let mut facts = Facts::default();
        let mut queue: VecDeque<Fact> = VecDeque::new();
        let mut rnd = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1d);
        // Those made room for an addition, those after a pop.
        let mut compactions = [0; 2];
        for n in 0..20_000u64 {
            let head = facts.head;
            // Growing and shrinking in turn: additions fill the vector, pops empty its front.
            let pops_from = if n / 2_000 % 2 == 0 { 4 } else { 2 };
            let popped = match rnd(7) {
                r if r >= pops_from => {
                    assert_eq!(facts.pop_front(), queue.pop_front(), "at {n}");
                    1
                }
                0 => {
                    let at = rnd(queue.len() as u64 + 1) as usize;
                    facts.insert(at, stat_at(n));
                    queue.insert(at, stat_at(n));
                    0
                }
                _ => {
                    facts.push_back(stat_at(n));
                    queue.push_back(stat_at(n));
                    0
                }
            };
            if facts.head < head && !queue.is_empty() {
                compactions[popped] += 1;
            }
            assert!(facts.iter().eq(queue.iter()), "at {n}");
            assert_eq!(facts.back(), queue.back(), "at {n}");
            assert!(facts.buf.len() <= 2 * queue.len() + COMPACT_AT, "at {n}");
        }
        assert!(
            compactions.iter().all(|&c| c >= 10),
            "{compactions:?} compactions"
        );
    }

    /// However long a name's facts come at a steady rate, its vectors hold at most 8/3 of the
    /// most facts live at once: 1,152 live facts (the bench's names at a 1 s window), a
    /// quarter of them writers, doubled each vector a second time once the folded front had
    /// filled it (4,096 and 1,024 slots, 3.6 times their live facts).
    /// A successful stat by thread 1 at `n`, begun and ended there.
    fn stat_at(n: u64) -> Fact {
        Fact {
            ts_begin: n,
            ts_end: n,
            tid: 1,
            kind: OpKind::Stat,
            result: 0,
            effect: None,
            writer: false,
            changes_existence: false,
        }
    }

    /// A name's history starts a cache line, and what every add touches before the facts
    /// themselves but `moves` (its version, newest end and recent facts' vector) lies in that
    /// first line, with the start of the kept state answer a question reads after the version.
    #[test]
    fn an_adds_fields_share_the_first_cache_line() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<NameHistory>(), 64);
        for (field, end) in [
            (
                "version",
                offset_of!(NameHistory, version) + size_of::<u64>(),
            ),
            (
                "newest_end",
                offset_of!(NameHistory, newest_end) + size_of::<u64>(),
            ),
            (
                "recent",
                offset_of!(NameHistory, recent) + size_of::<Facts>(),
            ),
        ] {
            assert!(end <= 64, "{field} ends at {end}");
        }
        assert!(offset_of!(NameHistory, last_state) < 64);
    }

    /// A late fact inserted into a full vector whose front is a quarter folded moves the live
    /// facts down instead of doubling the vector, as an addition at the back does.
    #[test]
    fn an_insert_into_a_full_vector_moves_the_live_facts_down() {
        let mut facts = Facts {
            buf: Vec::with_capacity(8),
            head: 0,
        };
        for n in 0..8 {
            facts.push_back(stat_at(n));
        }
        assert_eq!(facts.buf.capacity(), 8);
        for n in 0..2 {
            assert_eq!(facts.pop_front(), Some(stat_at(n)));
        }
        facts.insert(3, stat_at(100));
        assert_eq!((facts.head, facts.buf.capacity()), (0, 8));
        let ends: Vec<u64> = facts.iter().map(|f| f.ts_end).collect();
        assert_eq!(ends, [2, 3, 4, 100, 5, 6, 7]);
    }

    #[test]
    fn a_names_vectors_hold_a_bounded_multiple_of_its_live_facts() {
        let step = 10;
        let mut h = History::new(1_152 * step);
        let mut most = [0; 2];
        for i in 0..20_000u64 {
            let (kind, result) = match i % 8 {
                3 => (OpKind::Create, 0),
                7 => (OpKind::Unlink, 0),
                _ => (OpKind::Stat, 0),
            };
            let t = i * step;
            add(&mut h, kind, result, t, t + 5, t + 5);
            let nh = &h.names[7];
            most = [most[0].max(nh.recent.len()), most[1].max(nh.writers.len())];
            for (facts, most) in [(&nh.recent, most[0]), (&nh.writers, most[1])] {
                let held = facts.buf.capacity();
                assert!(
                    held <= (8 * most / 3).max(4),
                    "{held} slots for {most} at {i}"
                );
            }
        }
        assert_eq!(most, [1_153, 289]);
    }

    #[test]
    fn state_is_the_last_completed_effect() {
        let mut h = History::new(1_000);
        add(&mut h, OpKind::Create, 0, 10, 20, 20);
        add(&mut h, OpKind::Stat, -2, 30, 40, 40);
        add(&mut h, OpKind::Unlink, 0, 50, 60, 60);
        assert_eq!(h.state_at(7, 5), State::Unknown);
        assert!(matches!(h.state_at(7, 45), State::Exists(_)));
        assert!(matches!(h.state_at(7, 61), State::Missing(_)));
        assert_eq!(
            h.writer_overlapping(7, 55, 58, None, Writers::All)
                .map(|f| f.kind),
            Some(OpKind::Unlink)
        );
        assert_eq!(
            h.writer_overlapping(7, 30, 40, None, Writers::All),
            None,
            "a stat is no writer"
        );
        // The newest overlapping writer is a create; an unlink behind it still counts.
        add(&mut h, OpKind::Create, 0, 56, 70, 70);
        let unlink = [OpKind::Unlink];
        assert_eq!(
            h.writer_overlapping(7, 57, 58, Some(&unlink), Writers::All)
                .map(|f| f.kind),
            Some(OpKind::Unlink)
        );
    }

    /// Facts arriving out of completion order, with folds emptying a name now and then:
    /// `recent` stays sorted by end and the cached newest end is its last fact's.
    #[test]
    fn facts_stay_in_end_order_as_they_come_and_fold() {
        let mut h = History::new(50);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut now = 0;
        for i in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Now and then a jump past the retention, which folds every fact of the name.
            now += if i % 97 == 0 { 200 } else { x % 4 };
            let end = now.saturating_sub(x % 30);
            add(&mut h, OpKind::Stat, 0, end.saturating_sub(3), end, now);
            let nh = &h.names[7];
            assert!(nh
                .recent
                .iter()
                .zip(nh.recent.iter().skip(1))
                .all(|(a, b)| a.ts_end <= b.ts_end));
            if let Some(last) = nh.recent.back() {
                assert_eq!(last.ts_end, nh.newest_end);
            }
        }
    }

    #[test]
    fn old_facts_fold_into_the_base() {
        let mut h = History::new(100);
        add(&mut h, OpKind::Create, 0, 10, 20, 20);
        add(&mut h, OpKind::Stat, 0, 30, 40, 40);
        add(&mut h, OpKind::Readdir, -2, 41, 42, 42);
        add(&mut h, OpKind::Unlink, 0, 950, 960, 1_000);
        let nh = &h.names[7];
        assert_eq!(nh.recent.len(), 1);
        assert_eq!(nh.base_writer.map(|f| f.kind), Some(OpKind::Create));
        assert_eq!(nh.base_observation.map(|f| f.kind), Some(OpKind::Stat));
        assert_eq!(kind(h.state_at(7, 450)), Some(OpKind::Stat));
        assert_eq!(kind(h.state_at(7, 961)), Some(OpKind::Unlink));
    }

    #[test]
    fn an_observation_overlapping_a_later_writer_proves_nothing() {
        let mut h = History::new(1_000);
        add(&mut h, OpKind::Create, 0, 0, 10, 10);
        // A slow open saw the file early; an unlink completed while it ran.
        add(&mut h, OpKind::Unlink, 0, 30, 40, 40);
        add(&mut h, OpKind::Open, 0, 20, 100, 100);
        assert_eq!(kind(h.state_at(7, 110)), Some(OpKind::Unlink));
        // A stat that began after the unlink ended does prove a (re)creation.
        add(&mut h, OpKind::Stat, 0, 50, 60, 100);
        assert_eq!(kind(h.state_at(7, 110)), Some(OpKind::Stat));
        // The same holds once everything is folded into the base.
        add(&mut h, OpKind::Readdir, 0, 5_000, 5_001, 5_000);
        assert_eq!(h.names[7].recent.len(), 1);
        assert_eq!(kind(h.state_at(7, 4_000)), Some(OpKind::Stat));
    }

    #[test]
    fn overlapping_create_and_unlink_leave_the_state_unknown() {
        let mut h = History::new(1_000);
        // A create preempted for long; an unlink ran and finished inside it.
        add(&mut h, OpKind::Unlink, 0, 40, 50, 50);
        add(&mut h, OpKind::Create, 0, 10, 100, 100);
        assert!(matches!(h.state_at(7, 110), State::Racing(w, r)
            if w.kind == OpKind::Create && r.kind == OpKind::Unlink));
        // A stat that began after both settles it.
        add(&mut h, OpKind::Stat, 0, 120, 130, 130);
        assert_eq!(kind(h.state_at(7, 140)), Some(OpKind::Stat));
        // Folded into the base, the race is still known.
        let mut h = History::new(1_000);
        add(&mut h, OpKind::Unlink, 0, 40, 50, 50);
        add(&mut h, OpKind::Create, 0, 10, 100, 100);
        add(&mut h, OpKind::Readdir, 0, 9_000, 9_001, 9_000);
        assert!(h.names[7].base_rival.is_some());
        assert!(matches!(h.state_at(7, 8_000), State::Racing(..)));
    }

    /// What racing writers' results prove: from the name's state before them, an exclusive
    /// create and a mkdir need it missing, an unlink and an rmdir need it existing, so they
    /// alternate and the counts say which came last. A rename among them, an unknown state
    /// before them, or counts no order allows leave the order unknown.
    #[test]
    fn racing_writers_are_ordered_when_their_results_fix_it() {
        use OpKind::{Create, Mkdir, Rename, Rmdir, Stat, Unlink};
        let settled = |ops: &[(OpKind, u64, u64)], t: u64| {
            let mut h = History::new(1_000_000);
            for &(kind, b, e) in ops {
                add(&mut h, kind, 0, b, e, e);
            }
            match h.state_at(7, t) {
                State::Ordered { last, rival, prior } => Some((
                    last.kind,
                    rival.kind,
                    prior.kind,
                    h.state_at(7, t).settled(),
                ))
                .map(|(l, r, p, s)| (l, r, p, matches!(s, State::Exists(_)))),
                _ => None,
            }
        };
        // Existing (a stat after the create): the unlink came first, the create last.
        let race = [
            (Create, 10, 20),
            (Stat, 30, 40),
            (Create, 100, 300),
            (Unlink, 150, 200),
        ];
        assert_eq!(settled(&race, 400), Some((Create, Unlink, Stat, true)));
        // Missing (unlinked): the create came first, the unlink last.
        let race = [
            (Create, 10, 20),
            (Unlink, 30, 40),
            (Unlink, 100, 300),
            (Create, 150, 200),
        ];
        assert_eq!(settled(&race, 400), Some((Unlink, Create, Unlink, false)));
        // Directories alike.
        let race = [(Mkdir, 10, 20), (Rmdir, 100, 300), (Mkdir, 150, 200)];
        assert_eq!(settled(&race, 400), Some((Mkdir, Rmdir, Mkdir, true)));
        // Three writers chained by overlaps, from existing: unlink, create, unlink.
        let race = [
            (Create, 10, 20),
            (Unlink, 100, 160),
            (Create, 150, 260),
            (Unlink, 250, 300),
        ];
        assert_eq!(settled(&race, 400), Some((Unlink, Create, Create, false)));
        // A race resting on the one before it (no fact between them).
        let race = [
            (Create, 10, 20),
            (Stat, 30, 40),
            (Create, 100, 300),
            (Unlink, 150, 200),
            (Unlink, 400, 600),
            (Create, 450, 500),
        ];
        assert_eq!(settled(&race, 700), Some((Create, Unlink, Stat, true)));
        let mut h = History::new(1_000_000);
        for (kind, result, b, e) in [
            (Create, 0, 10, 20),
            (Stat, 0, 30, 40),
            (Create, 0, 100, 300),
            (Unlink, 0, 150, 200),
        ] {
            add(&mut h, kind, result, b, e, e);
        }
        // Inside the race nothing is settled: only what completed before counts.
        assert!(matches!(h.state_at(7, 250), State::Missing(f) if f.kind == Unlink));
        for unknown in [
            // Nothing before them.
            &[(Create, 100, 300), (Unlink, 150, 200)][..],
            // A rename onto the name needs no state.
            &[
                (Create, 10, 20),
                (Stat, 30, 40),
                (Rename, 100, 300),
                (Unlink, 150, 200),
            ],
            // Two creates and an unlink from existing: no order allows it (a fact missing).
            &[
                (Create, 10, 20),
                (Stat, 30, 40),
                (Create, 100, 300),
                (Unlink, 150, 200),
                (Create, 160, 210),
            ],
            // The state before them is a race of its own that cannot be ordered.
            &[
                (Create, 100, 300),
                (Unlink, 150, 200),
                (Unlink, 400, 600),
                (Create, 450, 500),
            ],
        ] {
            let mut h = History::new(1_000_000);
            for &(kind, b, e) in unknown {
                add(&mut h, kind, 0, b, e, e);
            }
            assert!(
                matches!(h.state_at(7, 700), State::Racing(..)),
                "{unknown:?}: {:?}",
                h.state_at(7, 700)
            );
        }
        // Folded into the base, the writers are not all known: racing again.
        let mut h = History::new(1_000);
        for (kind, b, e) in [(Create, 10, 20), (Stat, 30, 40), (Create, 100, 300)] {
            add(&mut h, kind, 0, b, e, e);
        }
        add(&mut h, Unlink, 0, 150, 200, 200);
        assert!(matches!(h.state_at(7, 400), State::Ordered { .. }));
        add(&mut h, OpKind::Readdir, 0, 5_000, 5_001, 5_000);
        assert!(matches!(h.state_at(7, 400), State::Racing(..)));
    }

    /// A rename onto a name that exists, and an exchange, leave the name existing: writers
    /// (they set its state) that change no existence (rule 2). A rename onto a missing name
    /// makes it exist; a rename onto itself only shows it. Each rename records where the
    /// dentry now under its target came from.
    #[test]
    fn renames_change_existence_only_where_the_name_was_missing() {
        let (a, b) = (7, 8);
        let mut h = History::new(1_000);
        let mut op = |kind, to: Option<PathId>, bg, e| {
            h.add_op(Fact::from_op(kind, 0, bg, e, 1), a, to, e);
            (
                h.writer_overlapping(b, bg, e, None, Writers::OfExistence)
                    .is_some(),
                h.writer_overlapping(b, bg, e, None, Writers::All).is_some(),
            )
        };
        op(OpKind::Create, None, 10, 20);
        assert_eq!(op(OpKind::Rename, Some(b), 30, 40), (true, true), "b made");
        op(OpKind::Create, None, 50, 60);
        assert_eq!(op(OpKind::Rename, Some(b), 70, 80), (false, true), "b kept");
        assert_eq!(op(OpKind::Exchange, Some(b), 90, 100), (false, true));
        let State::Exists(over) = h.state_at(b, 85) else {
            panic!("b exists after the rename onto it");
        };
        assert_eq!(h.moved_from(b, over), Some(a));
        let State::Exists(swap) = h.state_at(a, 105) else {
            panic!("a exists after the exchange");
        };
        assert_eq!(
            (swap.kind, h.moved_from(a, swap)),
            (OpKind::Exchange, Some(b))
        );
        h.add_op(
            Fact::from_op(OpKind::Rename, 0, 110, 120, 1),
            b,
            Some(b),
            120,
        );
        assert_eq!(h.writer_overlapping(b, 110, 120, None, Writers::All), None);
        assert!(matches!(h.state_at(b, 130), State::Exists(f) if !f.writer));
    }

    /// The queries as they were before `writers` and the early stop: every walk reads
    /// `recent` whole from its newest fact. The reference the faster queries must agree with.
    mod reference {
        use super::super::*;

        pub fn last_before(h: &NameHistory, t: u64) -> (Option<&Fact>, Option<LastWriter<'_>>) {
            let mut observation: Option<&Fact> = h.base_observation.as_ref();
            let mut before = h.recent.iter().rev().filter(|f| f.ts_end < t);
            while let Some(f) = before.next() {
                if f.writer {
                    let rival = before
                        .clone()
                        .take_while(|g| g.ts_end >= f.ts_begin)
                        .find(|g| g.writer && rivals(g, f))
                        .or_else(|| h.base_writer.as_ref().filter(|g| rivals(g, f)));
                    return (observation, Some((f, rival)));
                }
                if observation.is_none_or(|o| f.ts_begin > o.ts_begin) {
                    observation = Some(f);
                }
            }
            let writer = h.base_writer.as_ref().map(|w| (w, h.base_rival.as_ref()));
            (observation, writer)
        }

        pub fn state_before(h: &NameHistory, t: u64, depth: u8) -> State<'_> {
            match last_before(h, t) {
                (Some(o), Some((w, _))) if o.ts_begin > w.ts_end => State::Exists(o),
                (Some(o), None) => State::Exists(o),
                (_, Some((w, Some(r)))) => order(h, w, r, t, depth).unwrap_or(State::Racing(w, r)),
                (_, Some((w, None))) if w.effect == Some(Exists::Yes) => State::Exists(w),
                (_, Some((w, None))) => State::Missing(w),
                (None, None) => State::Unknown,
            }
        }

        fn order<'a>(
            h: &'a NameHistory,
            w: &'a Fact,
            r: &'a Fact,
            t: u64,
            depth: u8,
        ) -> Option<State<'a>> {
            let depth = depth.checked_sub(1)?;
            let mut from = w.ts_begin.min(r.ts_begin).min(w.ts_end).min(r.ts_end);
            let mut flips = 0i64;
            for f in h.recent.iter().rev().filter(|f| f.writer && f.ts_end < t) {
                if f.ts_end < from {
                    break;
                }
                flips += flip(f)?;
                from = from.min(f.ts_begin);
            }
            if h.base_writer.is_some_and(|b| b.ts_end >= from) {
                return None;
            }
            ordered(w, r, state_before(h, from, depth), flips)
        }

        /// `writer_overlapping` (with `tid`: `other_writer_overlapping`).
        pub fn writer_overlapping<'a>(
            h: &'a NameHistory,
            (b, e): (u64, u64),
            tid: Option<u32>,
            kinds: Option<&[OpKind]>,
            which: Writers,
        ) -> Option<&'a Fact> {
            h.recent
                .iter()
                .rev()
                .take_while(|f| f.ts_end >= b)
                .find(|f| {
                    which.count(f)
                        && f.ts_begin <= e
                        && kinds.is_none_or(|k| k.contains(&f.kind))
                        && tid.is_none_or(|tid| !(f.tid == tid && f.ts_begin == b && f.ts_end == e))
                })
        }
    }

    /// Random histories of two names (writers, observations, renames and exchanges between
    /// them, overlaps from four threads, long operations, runs of stats, now and then a
    /// damaged interval ending before it begins, and jumps past the retention that fold):
    /// every query answers what the reference answers, after every operation.
    #[test]
    fn queries_agree_with_a_walk_of_every_fact() {
        use OpKind::{Create, Exchange, Mkdir, Open, Readdir, Rename, Rmdir, Stat, Unlink};
        let kinds = [
            Create, Mkdir, Unlink, Rmdir, Rename, Exchange, Stat, Open, Readdir,
        ];
        let whiches = [
            Writers::OfExistence,
            Writers::OfExistenceOrType,
            Writers::All,
        ];
        let (mut ordered, mut racing, mut observed, mut early, mut unasked) = (0, 0, 0, 0, 0);
        for seed in 1..=40u64 {
            let mut rng = crate::test_rng::xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut ops = Intervals::new(&mut rng);
            let retention = ops.retention;
            let mut h = History::new(retention);
            let mut stats = 0;
            for _ in 0..1_500 {
                let (tid, b) = ops.begin(&mut rng);
                let kind = if stats > 0 {
                    stats -= 1;
                    Stat
                } else {
                    if rng(20) == 0 {
                        stats = rng(300);
                    }
                    kinds[rng(kinds.len() as u64) as usize]
                };
                let e = ops.end(&mut rng, (tid, b), 50);
                let result = [0, 0, 0, -2, -17][rng(5) as usize];
                let (path, to) = match (kind, rng(2)) {
                    (Rename | Exchange, 0) => (7, Some(8)),
                    (Rename | Exchange, _) => (8, Some(7)),
                    (_, p) => (7 + p as PathId, None),
                };
                let now = ops.now;
                h.add_op(Fact::from_op(kind, result, b, e, tid as u32), path, to, now);
                for p in [7, 8] {
                    let Some(nh) = h.names.get(p as usize) else {
                        continue;
                    };
                    let writers: Vec<Fact> =
                        nh.recent.iter().filter(|f| f.writer).copied().collect();
                    assert!(nh.writers.iter().eq(writers.iter()), "seed {seed}");
                    for _ in 0..6 {
                        let q = (now + 50).saturating_sub(rng(retention + 100));
                        assert_eq!(
                            nh.last_before(q),
                            reference::last_before(nh, q),
                            "seed {seed} t {q}"
                        );
                        let state = h.state_at(p, q);
                        assert_eq!(
                            state,
                            reference::state_before(nh, q, ORDER_DEPTH),
                            "seed {seed} t {q}"
                        );
                        let missing = match state {
                            State::Missing(f) => Some(f),
                            _ => None,
                        };
                        assert_eq!(
                            h.missing_and_last_writer(p, q),
                            (missing, reference::last_before(nh, q).1),
                            "seed {seed} t {q}"
                        );
                        let rival = matches!(reference::last_before(nh, q).1, Some((_, Some(_))));
                        assert_eq!(h.may_race(p, q), rival, "seed {seed} t {q}");
                        assert!(
                            rival || !matches!(state, State::Racing(..)),
                            "seed {seed} t {q}"
                        );
                        // Asked only where it can be missing or racing, as the state then.
                        match h.state_unless_existing(p, q) {
                            Some(s) => assert_eq!(s, state, "seed {seed} t {q}"),
                            None => {
                                unasked += 1;
                                assert!(
                                    matches!(state, State::Exists(_) | State::Unknown),
                                    "seed {seed} t {q}"
                                );
                            }
                        }
                        match state {
                            State::Ordered { .. } => ordered += 1,
                            State::Racing(..) => racing += 1,
                            State::Exists(f) if !f.writer => observed += 1,
                            _ => {}
                        }
                        let end = nh.recent.partition_point(|f| f.ts_end < q);
                        let since = nh.recent[..end]
                            .iter()
                            .rev()
                            .take_while(|f| !f.writer)
                            .count();
                        if since > 20 {
                            early += 1;
                        }
                        let (b, e) = (q, q + rng(100));
                        let ks = [kinds[rng(kinds.len() as u64) as usize], Unlink];
                        let tid = rng(4) as u32;
                        for which in whiches {
                            for k in [None, Some(&ks[..])] {
                                assert_eq!(
                                    h.writer_overlapping(p, b, e, k, which),
                                    reference::writer_overlapping(nh, (b, e), None, k, which),
                                );
                            }
                            let other = h.other_writer_overlapping(p, b, e, tid, which);
                            assert_eq!(
                                other,
                                reference::writer_overlapping(nh, (b, e), Some(tid), None, which),
                            );
                            let racing = matches!(h.state_at(p, b), State::Racing(..));
                            assert_eq!(
                                h.raced(p, b, e, tid, which),
                                other.is_some() || (h.may_race(p, b) && racing),
                                "seed {seed} [{b}, {e}]"
                            );
                        }
                        assert_eq!(
                            h.own_writer_overlapping(p, b, e, tid, &ks),
                            nh.recent
                                .iter()
                                .rev()
                                .take_while(|f| f.ts_end >= b)
                                .find(|f| {
                                    f.writer
                                        && f.tid == tid
                                        && f.ts_begin <= e
                                        && ks.contains(&f.kind)
                                }),
                        );
                    }
                }
            }
        }
        // The histories reach every case the walks distinguish.
        assert!(
            ordered > 100 && racing > 100 && observed > 1_000 && early > 1_000 && unasked > 1_000,
            "ordered {ordered}, racing {racing}, observed {observed}, long runs {early}, \
             unasked {unasked}"
        );
    }

    /// A name's last state answer is given again for a point with the same facts before it,
    /// and asked afresh once a fact is added (one that ends inside the answer's range, a late
    /// one, or a fold), or for a point with another fact before it.
    #[test]
    fn a_kept_state_holds_only_while_the_facts_before_it_do() {
        let fact = |kind, b, e| Fact::from_op(kind, 0, b, e, 1)[0].expect("a fact");
        let mut h = History::new(1_000);
        let create = fact(OpKind::Create, 10, 20);
        h.add(7, create, 20);
        assert_eq!(h.state_at(7, 20), State::Unknown, "the create ends at 20");
        assert_eq!(h.state_at(7, 100), State::Exists(&create));
        assert_eq!(h.state_at(7, 21), State::Exists(&create));
        assert_eq!(h.state_at(7, 20), State::Unknown, "before the kept range");
        // An unlink ending inside the kept range (21 on): the state after it is missing.
        assert_eq!(h.state_at(7, 100), State::Exists(&create));
        let unlink = fact(OpKind::Unlink, 30, 40);
        h.add(7, unlink, 40);
        assert_eq!(h.state_at(7, 100), State::Missing(&unlink));
        assert_eq!(h.state_at(7, 35), State::Exists(&create));
        // A late stat that ended before the unlink did changes nothing after it; a stat
        // after it does.
        assert_eq!(h.state_at(7, 100), State::Missing(&unlink));
        h.add(7, fact(OpKind::Stat, 22, 25), 45);
        assert_eq!(h.state_at(7, 100), State::Missing(&unlink));
        let stat = fact(OpKind::Stat, 50, 60);
        h.add(7, stat, 60);
        assert_eq!(h.state_at(7, 100), State::Exists(&stat));
        // Folds past the horizon: the facts move to the base, then the base writer changes.
        assert_eq!(h.state_at(7, 5_000), State::Exists(&stat));
        let late = fact(OpKind::Unlink, 4_000, 4_200);
        h.add(7, late, 4_200);
        assert_eq!(h.state_at(7, 5_000), State::Missing(&late));
        assert_eq!(h.state_at(7, 3_500), State::Exists(&stat));
        let again = fact(OpKind::Create, 5_400, 5_500);
        h.add(7, again, 5_500);
        let gone = fact(OpKind::Unlink, 6_400, 6_600);
        h.add(7, gone, 6_600);
        assert_eq!(h.state_at(7, 6_000), State::Exists(&again));
        h.add(7, fact(OpKind::Stat, 7_600, 7_700), 7_700);
        // Behind the horizon the fold keeps only the last writer: the answer changes with it.
        assert_eq!(
            h.state_at(7, 6_000),
            State::Missing(&gone),
            "from the base writer"
        );
    }

    #[test]
    fn enoent_and_eexist_results() {
        let [f, g] = Fact::from_op(OpKind::Stat, -2, 0, 1, 1);
        assert!(f.is_none() && g.is_none(), "ENOENT proves nothing");
        let [f, _] = Fact::from_op(OpKind::Create, -17, 0, 1, 1);
        let f = f.expect("EEXIST proves existence");
        assert_eq!((f.effect, f.writer), (Some(Exists::Yes), false));
        let [old, new] = Fact::from_op(OpKind::Rename, 0, 0, 1, 1);
        assert_eq!(old.and_then(|f| f.effect), Some(Exists::No));
        assert_eq!(new.and_then(|f| f.effect), Some(Exists::Yes));
    }
}
