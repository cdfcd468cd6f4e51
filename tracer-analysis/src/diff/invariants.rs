//! Writer-side `d_seq` bookkeeping per dentry generation. Every observation (a writer's entry
//! and exit, a lookup's re-read of `d_seq`) is held against the highest value the traced
//! writers account for:
//!
//! - a value above it means something wrote `d_seq` unobserved: a coverage gap (an untraced
//!   writer such as `__d_move`, `d_instantiate`, or an inlined call site), never an anomaly;
//! - a writer that moves `d_seq` by less than its protocol requires, or whose caller's owed
//!   bump (the +2 after `___d_drop`) is missing at the next writer's entry, is an anomaly
//!   (inside a kill too: there the owing thread's next writer is held to the bump's base);
//! - a writer entering below what a lookup already read (but not below what was known before
//!   that lookup) was stamped after the lookup saw its doing, if the times allow it. A lookup
//!   reads after its return stamp, at the latest before its thread's operation ends (`read_by`);
//!   a writer writes inside its interval. So the writer must have begun before the first
//!   lookup that read the new value had read it, and ended after every lookup that read the
//!   old value had returned. Otherwise the move stays unexplained. Each such writer explains
//!   only what it moved: what the lookup read above where they left the count stays a gap;
//! - a lookup's read or a writer's entry below what a lookup or a writer's exit saw before it:
//!   `d_seq` went backwards within the dentry's life, an anomaly ([`ReadOrder`]). Only orders
//!   the stamps can prove count: the same CPU's, or further apart than two CPUs' clocks can
//!   disagree.
//!
//! Observations must come in time order (writers by entry, lookups by return), which the
//! side's reorder window provides.
use tracer_common::{flags, Probe};

use super::{event::Ev, protocol::Protocol};

/// Why `d_seq` moved with no traced writer to account for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapCause {
    /// The unhash `__d_move` calls (`___d_drop`, up to 4.14 `__d_drop`, the probe) entered with
    /// an odd count: inside `__d_move`'s `write_seqcount_begin`.
    DMove(Probe),
    /// The count moved inside a traced writer by more than that writer does itself.
    InsideWriter(Probe),
    /// Inside a `__d_move` that calls `__d_drop` (up to 4.14) on a hashed dentry, by exactly
    /// that `__d_drop`'s +2 beyond its own: explained once the nested `__d_drop`'s event shows
    /// up (by entry order, after its caller's), else the gap `InsideWriter` is.
    AwaitsDDrop(Probe),
    /// Not known here; the side attributes it from the operations (create → `d_instantiate`).
    Unattributed,
}

/// What one observation revealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    Gap {
        from: u32,
        to: u32,
        /// When the previous observation was made.
        since: u64,
        cause: GapCause,
    },
    /// A writer moved `d_seq` by less than the protocol requires.
    ShortWithin {
        probe: Probe,
        expected: u32,
        /// Negative when the count went back.
        observed: i64,
    },
    /// The caller of `by` owed `amount` after it returned and the next writer found less.
    MissingOwed {
        by: Probe,
        base: u32,
        amount: u32,
        found: u32,
        owed_since: u64,
    },
    /// A writer entered at a value between what was known and what the last lookup read
    /// (its gap `from`..`to`): the lookup already saw this writer's doing, so the trace's
    /// stamps are out of order with the reads (a thread stalled between the two).
    SeenEarly { from: u32, to: u32 },
    /// A lookup read `to`, below the `from` a lookup that returned before it began had read.
    Decreased { from: u32, to: u32, since: u64 },
}

/// A gap a lookup found, waiting for the writer that may explain it.
#[derive(Clone, Copy, Debug)]
struct SeenAhead {
    from: u32,
    to: u32,
    /// The latest time the first lookup that read `to` can have read it.
    read_by: u64,
    /// When the last lookup that read below `to` returned.
    last_old_end: u64,
    /// A writer seen early took on part of it already (`from` is where it left the count).
    begun: bool,
}

/// How far apart two CPUs' stamps of one instant were seen to be. Under QEMU TCG on a loaded
/// host (Debian 6.1, `negative` on minix) a lookup on one vCPU read the `d_seq` a kill on the
/// other vCPU left, yet was stamped 2.9 ms before that kill began: across CPUs, stamps closer
/// than this do not say which read came first.
pub const CLOCK_SKEW_NS: u64 = 20_000_000;

/// Reads kept per dentry generation that are still within the clock skew of newer ones.
const RECENT_READS_KEPT: usize = 32;

/// How much newer than a span's first the reads folded into it may be (see [`Dropped`]): a
/// span settles at most this much later than its oldest read alone would.
const DROPPED_SPAN_NS: u64 = CLOCK_SKEW_NS / 4;

/// Spans of dropped reads kept; when full the two oldest merge (settling later, never earlier).
const DROPPED_SPANS_KEPT: usize = 8;

/// Reads a full ring drops at once: half of it, so the fold's call comes once in that many reads.
const DROPPED_AT_ONCE: usize = RECENT_READS_KEPT / 2;

/// The `d_seq` values lookups read and writers found or left in one dentry generation, to find
/// the count going backwards.
#[derive(Clone, Debug)]
pub struct ReadOrder {
    /// The highest value read by a lookup that returned more than [`CLOCK_SKEW_NS`] before a
    /// later lookup began, and that lookup's return: ordered before every later read.
    settled: Option<(u64, u32)>,
    /// Newer reads as (return stamp, CPU, value): ordered only against reads on their CPU.
    recent: Recent,
    /// Reads the full ring pushed out before they aged past the skew; allocated at the first.
    dropped: Option<Box<Dropped>>,
    /// A read begun after this settles the oldest span of `dropped` (its latest stamp and the
    /// skew; `u64::MAX` while there is none): one compare a read.
    dropped_due: u64,
    /// The highest value ever read in this generation: a read at or above it is below
    /// nothing, which spares most lookups the scan of `recent`.
    high: Option<u32>,
    /// Lower values read after higher ones only across CPUs within the clock skew (not
    /// anomalies: the stamps cannot order them).
    pub within_skew: u64,
}

impl Default for ReadOrder {
    fn default() -> ReadOrder {
        ReadOrder {
            settled: None,
            recent: Recent::default(),
            dropped: None,
            dropped_due: u64::MAX,
            high: None,
            within_skew: 0,
        }
    }
}

/// A read as (return stamp, CPU, value).
type Read = (u64, u32, u32);

/// The recent reads of a [`ReadOrder`], oldest first: a ring of [`RECENT_READS_KEPT`] (a power
/// of two: its index is a mask) allocated at the first read and kept across generations.
/// Every lookup and writer passes here; the `VecDeque` it replaces cost about 10 instructions
/// more a read (its capacity and wrap arithmetic: 12 M in the diff bench at 1 M events a side,
/// callgrind).
#[derive(Clone, Default)]
struct Recent {
    ring: Option<Box<[Read; RECENT_READS_KEPT]>>,
    /// Where the oldest is, and how many there are.
    head: usize,
    len: usize,
}

const _: () = assert!(RECENT_READS_KEPT.is_power_of_two());

impl Recent {
    #[inline(always)]
    fn front(&self) -> Option<Read> {
        if self.len == 0 {
            return None;
        }
        self.ring.as_ref().map(|r| r[self.head % RECENT_READS_KEPT])
    }

    #[inline(always)]
    fn pop_front(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % RECENT_READS_KEPT;
            self.len -= 1;
        }
    }

    /// Full, it drops the oldest first.
    #[inline(always)]
    fn push_back(&mut self, read: Read) {
        if self.len == RECENT_READS_KEPT {
            self.pop_front();
        }
        let ring = self
            .ring
            .get_or_insert_with(|| Box::new([(0, 0, 0); RECENT_READS_KEPT]));
        ring[(self.head + self.len) % RECENT_READS_KEPT] = read;
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    fn iter(&self) -> impl Iterator<Item = &Read> {
        let (head, len) = (self.head, self.len);
        self.ring
            .iter()
            .flat_map(move |r| (0..len).map(move |i| &r[(head + i) % RECENT_READS_KEPT]))
    }
}

/// The reads it holds, as the `VecDeque` showed them.
impl std::fmt::Debug for Recent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The reads a full [`Recent`] ring pushed out before they aged past [`CLOCK_SKEW_NS`], folded
/// so that a read the stamps order after them is still held against them: a hot dentry (a
/// directory every walk passes) gets more than [`RECENT_READS_KEPT`] reads within the skew,
/// and a read forgotten there let a `d_seq` that went backwards pass as clean. Each fold keeps
/// the highest value and the latest stamp of the reads in it, so it is ordered before a later
/// read only when every read in it is.
#[derive(Clone, Debug, Default)]
struct Dropped {
    /// Oldest first: (first stamp, latest stamp, highest value) of the reads dropped within
    /// [`DROPPED_SPAN_NS`] of the span's first. A span settles (into `settled`) once its latest
    /// stamp is a skew behind a read's begin.
    spans: std::collections::VecDeque<(u64, u64, u32)>,
    /// Per CPU: (CPU, latest stamp, highest value) of its dropped reads, ordered before every
    /// read on that CPU begun after that stamp.
    by_cpu: Vec<(u32, u64, u32)>,
}

/// Folds a read of `v` returned at `t` into a fold's latest stamp and highest value.
#[inline(always)]
fn raise(latest: &mut u64, high: &mut u32, t: u64, v: u32) {
    *latest = (*latest).max(t);
    if ahead(v, *high) > 0 {
        *high = v;
    }
}

/// Keeps in `slot` the higher of its value and `v` (read by `t`): the settled read, or the
/// floor a read is held against.
#[inline(always)]
fn keep_higher(slot: &mut Option<(u64, u32)>, t: u64, v: u32) {
    if slot.is_none_or(|(_, m)| ahead(v, m) > 0) {
        *slot = Some((t, v));
    }
}

impl Dropped {
    #[inline(always)]
    fn fold(&mut self, (t, cpu, v): Read) {
        match self.spans.back_mut() {
            Some((first, latest, high)) if t.saturating_sub(*first) <= DROPPED_SPAN_NS => {
                raise(latest, high, t, v);
            }
            _ => {
                if self.spans.len() == DROPPED_SPANS_KEPT {
                    if let Some((_, older_latest, older_high)) = self.spans.pop_front() {
                        if let Some((_, latest, high)) = self.spans.front_mut() {
                            raise(latest, high, older_latest, older_high);
                        }
                    }
                }
                self.spans.push_back((t, t, v));
            }
        }
        match self.by_cpu.iter_mut().find(|(c, _, _)| *c == cpu) {
            Some((_, latest, high)) => raise(latest, high, t, v),
            None => self.by_cpu.push((cpu, t, v)),
        }
    }

    fn clear(&mut self) {
        self.spans.clear();
        self.by_cpu.clear();
    }

    /// When the oldest span settles: a read begun after its latest stamp and the skew.
    fn due(&self) -> u64 {
        self.spans
            .front()
            .map_or(u64::MAX, |&(_, t, _)| t.saturating_add(CLOCK_SKEW_NS))
    }
}

impl ReadOrder {
    /// Starts a new dentry generation, keeping the buffer of recent reads (ids are reused
    /// often: a fresh buffer per generation cost a tenth of the diff's allocations).
    pub fn reset(&mut self) {
        self.settled = None;
        self.recent.clear();
        if let Some(d) = self.dropped.as_mut() {
            d.clear();
        }
        self.dropped_due = u64::MAX;
        self.high = None;
        self.within_skew = 0;
    }

    /// A lookup on `cpu` over `[b, e]` read `seq` (a writer's entry: `b` = `e`, its stamp).
    // Inlined (the scan below apart): called for every lookup and writer, its prologue and
    // epilogue were a third of its cost (callgrind).
    #[inline(always)]
    pub fn read(&mut self, seq: u32, cpu: u32, b: u64, e: u64) -> Option<Finding> {
        if b > self.dropped_due {
            self.settle_dropped(b);
        }
        while let Some((t, _, v)) = self.recent.front() {
            if t.saturating_add(CLOCK_SKEW_NS) >= b {
                break;
            }
            self.recent.pop_front();
            keep_higher(&mut self.settled, t, v);
        }
        if self.recent.len() == RECENT_READS_KEPT {
            // Not settled: a newer read on another CPU may still precede it.
            self.drop_oldest();
        }
        let found = if self.high.is_none_or(|h| ahead(seq, h) >= 0) {
            self.high = Some(seq);
            None
        } else {
            self.below(seq, cpu, b)
        };
        self.recent.push_back((e, cpu, seq));
        found
    }

    /// A writer's exit on `cpu` at `t` left `seq`: held against later reads and writer
    /// entries like a read, but checked against nothing (a writer's own move is checked by
    /// [`SeqState::writer`]). Nothing is settled here: the exit is stamped after events that
    /// are yet to come.
    pub fn exit(&mut self, seq: u32, cpu: u32, t: u64) {
        if self.recent.len() == RECENT_READS_KEPT {
            self.drop_oldest();
        }
        if self.high.is_none_or(|h| ahead(seq, h) > 0) {
            self.high = Some(seq);
        }
        self.recent.push_back((t, cpu, seq));
    }

    /// Moves the oldest [`DROPPED_AT_ONCE`] recent reads into [`Dropped`].
    #[inline(never)]
    fn drop_oldest(&mut self) {
        let dropped = self.dropped.get_or_insert_default();
        for _ in 0..DROPPED_AT_ONCE {
            let Some(read) = self.recent.front() else {
                break;
            };
            self.recent.pop_front();
            dropped.fold(read);
        }
        self.dropped_due = dropped.due();
    }

    /// Settles the spans of dropped reads whose latest stamp is a skew before `b`.
    #[inline(never)]
    fn settle_dropped(&mut self, b: u64) {
        let Some(dropped) = self.dropped.as_mut() else {
            return;
        };
        while let Some(&(_, t, v)) = dropped.spans.front() {
            if t.saturating_add(CLOCK_SKEW_NS) >= b {
                break;
            }
            dropped.spans.pop_front();
            keep_higher(&mut self.settled, t, v);
        }
        self.dropped_due = dropped.due();
    }

    /// A read of `seq` on `cpu` begun at `b`, below the highest read so far: a finding when an
    /// earlier read the stamps order before it was higher, else counted when only reads they
    /// cannot order were.
    #[inline(never)]
    fn below(&mut self, seq: u32, cpu: u32, b: u64) -> Option<Finding> {
        let mut floor = self.settled;
        let dropped = self.dropped.as_deref();
        for &(c, t, v) in dropped.map_or(&[][..], |d| &d.by_cpu) {
            if c == cpu && t < b {
                keep_higher(&mut floor, t, v);
            }
        }
        for &(t, c, v) in self.recent.iter() {
            if c == cpu && t < b {
                keep_higher(&mut floor, t, v);
            }
        }
        let found = floor
            .filter(|(_, m)| ahead(seq, *m) < 0)
            .map(|(since, from)| Finding::Decreased {
                from,
                to: seq,
                since,
            });
        if found.is_none()
            && (self
                .recent
                .iter()
                .any(|&(t, _, v)| t < b && ahead(seq, v) < 0)
                || dropped.is_some_and(|d| {
                    d.spans
                        .iter()
                        .any(|&(first, _, v)| first < b && ahead(seq, v) < 0)
                }))
        {
            self.within_skew += 1;
        }
        found
    }
}

#[derive(Clone, Copy, Debug)]
struct Owed {
    by: Probe,
    base: u32,
    amount: u32,
    /// When `by` returned, and on which thread: its caller pays right after.
    ts: u64,
    tid: u32,
}

/// `d_seq` state of one dentry generation.
#[derive(Clone, Debug, Default)]
pub struct SeqState {
    /// The highest value the observed writers account for (owed bumps included).
    known: Option<u32>,
    last_ts: u64,
    owed: Option<Owed>,
    /// The last writer's (begin, end, tid): a writer inside it on the same thread (`___d_drop`
    /// inside an out-of-line `__d_drop`) entered before its caller's bump.
    last_writer: Option<(u64, u64, u32)>,
    /// The gap a lookup found since the last writer.
    seen_ahead: Option<SeenAhead>,
    /// When the last lookup that read no more than `known` returned.
    old_read_end: u64,
    /// The last writer with no upper bound of its own (`__dentry_kill`, `d_delete`...): its
    /// (begin, end, tid, `d_seq` at exit). Writers it calls enter below what it accounts for,
    /// and what it moves through inlined code is explained by it.
    container: Option<(u64, u64, u32, u32)>,
    /// The value `d_seq` reaches with the invalidate of this generation's last traced unhash
    /// (`__d_drop`: `pprev = NULL`, then +2), until a writer finds it hashed again.
    unhashed_from: Option<u32>,
    /// A writer entry found less than `known` with nothing owed: out-of-order observations.
    pub regressions: u64,
}

/// `a - b` in sequence-counter arithmetic (the counter wraps).
fn ahead(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl SeqState {
    /// A lookup that returned at `e` read `seq` (its `d_seq` re-read), at the latest at
    /// `read_by`.
    pub fn lookup(&mut self, seq: u32, e: u64, read_by: u64) -> Option<Finding> {
        let mut out = None;
        match self.known {
            Some(k) if ahead(seq, k) > 0 => {
                out = Some(Finding::Gap {
                    from: k,
                    to: seq,
                    since: self.last_ts,
                    cause: GapCause::Unattributed,
                });
                self.seen_ahead = Some(SeenAhead {
                    from: k,
                    to: seq,
                    read_by,
                    last_old_end: self.old_read_end,
                    begun: false,
                });
                self.known = Some(seq);
            }
            Some(_) => {
                self.old_read_end = self.old_read_end.max(e);
                if let Some(s) = self.seen_ahead.as_mut().filter(|s| ahead(s.to, seq) > 0) {
                    s.last_old_end = s.last_old_end.max(e);
                }
            }
            None => {
                self.known = Some(seq);
                self.old_read_end = e;
            }
        }
        if let Some(o) = self.owed {
            if ahead(seq, o.base) >= i64::from(o.amount) {
                self.owed = None;
            }
        }
        self.last_ts = e;
        out
    }

    /// A lookup returned this dentry with `*seqp` = `seqp`: the value its last traced unhash
    /// invalidated to, when `seqp` is at or above it. `__d_lookup_rcu` reads `d_seq` before it
    /// checks `d_unhashed()`, and `__d_drop` clears `pprev` before its invalidate (`smp_wmb`),
    /// so a reader that read the invalidated value saw the dentry unhashed and skipped it.
    pub fn returned_after_unhash(&self, seqp: u32) -> Option<u32> {
        self.unhashed_from.filter(|&u| ahead(seqp, u) >= 0)
    }

    /// After a writer seen early: the value from which the move its lookup read is still
    /// unexplained (None: the writers seen so far account for all of it).
    pub fn unexplained_from(&self) -> Option<u32> {
        self.seen_ahead.map(|s| s.from)
    }

    /// A writer event; up to two findings (one at entry, one across the call).
    pub fn writer(&mut self, ev: &Ev, probe: Probe, proto: &Protocol) -> [Option<Finding>; 2] {
        let mut out = [None, None];
        let mut nested = false;
        if ev.has(flags::NO_ENTRY) {
            // Only the exit was seen: no entry value to check, keep the exit as the new floor.
            if self.known.is_none_or(|k| ahead(ev.seq_end, k) > 0) {
                self.known = Some(ev.seq_end);
            }
        } else {
            let sb = ev.seq_begin;
            let inside =
                |b: u64, e: u64, tid: u32| tid == ev.tid && b <= ev.ts_begin && ev.ts_end <= e;
            // A call whose own event comes after the event of a writer it called (an outer
            // call longer than the reorder window, e.g. __d_move stalled on a loaded machine):
            // it entered before that writer, below what it left.
            let encloses_last = self
                .last_writer
                .is_some_and(|(b, e, tid)| tid == ev.tid && ev.ts_begin <= b && e <= ev.ts_end);
            nested = encloses_last
                || self
                    .last_writer
                    .is_some_and(|(b, e, tid)| inside(b, e, tid))
                || self
                    .container
                    .is_some_and(|(b, e, tid, _)| inside(b, e, tid));
            if let Some(k) = self.known {
                let d = ahead(sb, k);
                if d > 0 {
                    let cause = if proto.unhash_inside_d_move(probe, sb) {
                        GapCause::DMove(probe)
                    } else {
                        GapCause::Unattributed
                    };
                    out[0] = Some(Finding::Gap {
                        from: k,
                        to: sb,
                        since: self.last_ts,
                        cause,
                    });
                } else if d < 0 {
                    // A nested writer's entry is below `known` by design (its container's exit
                    // is there), but the debt is still checkable against its own base: the
                    // writer that owes runs on one thread, whose later writers see its bump
                    // (`__d_drop`'s invalidate comes before anything else the kill does).
                    let short = self.owed.filter(|o| {
                        ahead(sb, o.base) < i64::from(o.amount)
                            && (!nested || (o.tid == ev.tid && o.ts < ev.ts_begin))
                    });
                    match (short, self.seen_ahead) {
                        (Some(o), _) => {
                            out[0] = Some(Finding::MissingOwed {
                                by: o.by,
                                base: o.base,
                                amount: o.amount,
                                found: sb,
                                owed_since: o.ts,
                            });
                        }
                        _ if nested => {}
                        (_, Some(s))
                            if ahead(sb, s.from) >= 0
                                && ahead(s.to, sb) > 0
                                && ev.ts_begin <= s.read_by
                                && ev.ts_end >= s.last_old_end =>
                        {
                            out[0] = Some(Finding::SeenEarly {
                                from: s.from,
                                to: s.to,
                            });
                        }
                        _ => self.regressions += 1,
                    }
                }
            }
            let within = ahead(ev.seq_end, sb);
            let (expected, max) = proto.bounds(probe, ev);
            if max.is_none() {
                if within < 0 && matches!(probe, Probe::DentryKill | Probe::DentryKillLocked) {
                    // A kill path's exit reads a dentry it freed (RCU-deferred, rarely reused
                    // at once): a count that went back is a new dentry's, neither a finding
                    // nor a floor. The other containers free nothing.
                } else {
                    if within < i64::from(expected) {
                        out[1] = Some(Finding::ShortWithin {
                            probe,
                            expected,
                            observed: within,
                        });
                    }
                    self.known = Some(ev.seq_end);
                    self.container = Some((ev.ts_begin, ev.ts_end, ev.tid, ev.seq_end));
                }
            } else {
                if within < i64::from(expected) {
                    out[1] = Some(Finding::ShortWithin {
                        probe,
                        expected,
                        observed: within,
                    });
                } else if let Some(m) = max.filter(|m| within > i64::from(*m)) {
                    let nested_drop = proto.calls_d_drop(probe)
                        && ev.has(flags::HASHED_BEGIN)
                        && within == i64::from(m) + 2;
                    out[1] = Some(Finding::Gap {
                        from: sb.wrapping_add(m),
                        to: ev.seq_end,
                        since: ev.ts_begin,
                        cause: if nested_drop {
                            GapCause::AwaitsDDrop(probe)
                        } else {
                            GapCause::InsideWriter(probe)
                        },
                    });
                }
                self.known = Some(ev.seq_end);
            }
        }
        self.owed = None;
        let pending = self.seen_ahead.take();
        let entry = if ev.has(flags::NO_ENTRY) {
            ev.seq_end
        } else {
            ev.seq_begin
        };
        let amount = proto.owed_after(probe, entry);
        // `___d_drop` leaves `pprev` as it was (its caller clears it), so only the other
        // writers' exits say the dentry was hashed again (`__d_move`, `d_add`).
        if ev.has(flags::HASHED_END) && probe != Probe::DDropInner {
            self.unhashed_from = None;
        }
        match probe {
            Probe::DDropInner if amount == 2 => {
                self.unhashed_from = Some(ev.seq_end.wrapping_add(amount));
            }
            // Inside `__d_move` (up to 4.14) `__d_move` rehashes the dentry or leaves the
            // target unhashed itself, as with `___d_drop` there.
            Probe::DDrop | Probe::DDropLocked
                if ev.has(flags::HASHED_BEGIN)
                    && !ev.has(flags::NO_ENTRY)
                    && !proto.unhash_inside_d_move(probe, ev.seq_begin) =>
            {
                self.unhashed_from = Some(ev.seq_begin.wrapping_add(proto.within(probe, true)));
            }
            _ => {}
        }
        if amount > 0 {
            self.owed = Some(Owed {
                by: probe,
                base: ev.seq_end,
                amount,
                ts: ev.ts_end,
                tid: ev.tid,
            });
            self.known = Some(ev.seq_end.wrapping_add(amount));
        }
        // A writer called by a container leaves the count where the container's exit found
        // it at the least: the rest was moved by the container's inlined code.
        if let (Some((b, e, tid, end)), Some(k)) = (self.container, self.known) {
            if tid == ev.tid && b <= ev.ts_begin && ev.ts_end <= e && ahead(end, k) > 0 {
                self.known = Some(end);
            }
        }
        // A writer seen early explains only what it moved: what the lookup read above where
        // it left the count waits for the next writer, and stays a gap if none takes it on.
        // A writer called by one seen early (`___d_drop` in `__d_move`) is part of its move.
        match (out[0], pending, self.known) {
            (Some(Finding::SeenEarly { .. }), Some(mut s), Some(k)) if ahead(s.to, k) > 0 => {
                s.from = k;
                s.begun = true;
                self.seen_ahead = Some(s);
                self.known = Some(s.to);
            }
            (None, Some(s), Some(k)) if nested && s.begun => {
                self.seen_ahead = Some(s);
                if ahead(s.to, k) > 0 {
                    self.known = Some(s.to);
                }
            }
            _ => {}
        }
        self.last_ts = ev.ts_end;
        self.last_writer = Some((ev.ts_begin, ev.ts_end, ev.tid));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer event, each one later than the one before in its test. The clock is the
    /// test's own (each test runs on its own thread): one shared by the tests running in
    /// parallel gave each test other stamps from run to run.
    fn writer(probe: Probe, sb: u32, se: u32, hashed: bool) -> Ev {
        thread_local! {
            static CLOCK: std::cell::Cell<u64> = const { std::cell::Cell::new(100) };
        }
        let t = CLOCK.with(|c| c.replace(c.get() + 10));
        let mut e = Ev::zeroed();
        e.ts_begin = t;
        e.ts_end = t + 5;
        e.probe = probe as u8;
        e.seq_begin = sb;
        e.seq_end = se;
        if hashed {
            e.flags |= flags::HASHED_BEGIN;
        }
        e
    }

    #[test]
    fn kill_path_of_6_1_is_clean() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        assert_eq!(s.lookup(2, 1, 1), None);
        let drop = writer(Probe::DDropInner, 2, 2, true);
        assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
        // A lookup racing the drop may still read 2; the owed +2 makes 4 legitimate too.
        assert_eq!(s.lookup(2, 3, 3), None);
        let clear = writer(Probe::DentryUnlinkInode, 4, 6, false);
        assert_eq!(s.writer(&clear, Probe::DentryUnlinkInode, &p), [None, None]);
        assert_eq!(s.regressions, 0);
    }

    #[test]
    fn missing_invalidate_after_d_drop_is_found() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.writer(
            &writer(Probe::DDropInner, 2, 2, true),
            Probe::DDropInner,
            &p,
        );
        let f = s.writer(
            &writer(Probe::DentryUnlinkInode, 2, 4, false),
            Probe::DentryUnlinkInode,
            &p,
        );
        assert!(owed_two_from_two_unpaid(&f[0]), "{f:?}");
    }

    /// `___d_drop` left `d_seq` at 2 and the next writer found it still 2: the +2 unpaid.
    fn owed_two_from_two_unpaid(f: &Option<Finding>) -> bool {
        matches!(
            f,
            Some(Finding::MissingOwed {
                base: 2,
                amount: 2,
                found: 2,
                ..
            })
        )
    }

    #[test]
    fn a_missing_invalidate_inside_a_kill_is_found() {
        let p = Protocol::modern("test");
        for invalidate in [2, 0] {
            let mut s = SeqState::default();
            s.lookup(2, 1, 1);
            let kill = span(writer(Probe::DentryKill, 2, 4 + invalidate, true), 10, 40);
            assert_eq!(s.writer(&kill, Probe::DentryKill, &p), [None, None]);
            let drop = span(writer(Probe::DDropInner, 2, 2, true), 12, 14);
            assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
            let clear = span(
                writer(
                    Probe::DentryUnlinkInode,
                    2 + invalidate,
                    4 + invalidate,
                    false,
                ),
                20,
                30,
            );
            let f = s.writer(&clear, Probe::DentryUnlinkInode, &p);
            if invalidate == 2 {
                assert_eq!(f, [None, None]);
            } else {
                assert!(owed_two_from_two_unpaid(&f[0]), "{f:?}");
            }
        }
    }

    #[test]
    fn the_value_after_an_unhash_is_kept_until_a_rehash() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        let drop = span(writer(Probe::DDrop, 2, 4, true), 10, 20);
        s.writer(&drop, Probe::DDrop, &p);
        assert_eq!(
            s.returned_after_unhash(2),
            None,
            "read before the invalidate"
        );
        assert_eq!(s.returned_after_unhash(4), Some(4));
        // `__d_move` rehashes it.
        let mut mv = span(writer(Probe::DMove, 4, 6, false), 30, 40);
        mv.flags |= flags::HASHED_END;
        s.writer(&mv, Probe::DMove, &p);
        assert_eq!(s.returned_after_unhash(6), None);
        // `___d_drop` inside `__d_move` (odd): its caller sets no `pprev = NULL`.
        let mut s = SeqState::default();
        let inner = span(writer(Probe::DDropInner, 3, 3, true), 10, 20);
        s.writer(&inner, Probe::DDropInner, &p);
        assert_eq!(s.returned_after_unhash(4), None);
        let inner = span(writer(Probe::DDropInner, 4, 4, true), 30, 40);
        s.writer(&inner, Probe::DDropInner, &p);
        assert_eq!(s.returned_after_unhash(6), Some(6));
    }

    #[test]
    fn short_and_long_writers() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        let f = s.writer(
            &writer(Probe::DentryUnlinkInode, 2, 2, true),
            Probe::DentryUnlinkInode,
            &p,
        );
        assert!(matches!(
            f[1],
            Some(Finding::ShortWithin {
                expected: 2,
                observed: 0,
                ..
            })
        ));
        let f = s.writer(&writer(Probe::DDrop, 2, 6, true), Probe::DDrop, &p);
        assert!(matches!(
            f[1],
            Some(Finding::Gap {
                from: 4,
                to: 6,
                cause: GapCause::InsideWriter(Probe::DDrop),
                ..
            })
        ));
    }

    #[test]
    fn d_drop_inside_an_out_of_line_d_drop() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        let outer = span(writer(Probe::DDrop, 2, 4, true), 10, 20);
        let inner = span(writer(Probe::DDropInner, 2, 2, true), 12, 15);
        assert_eq!(s.writer(&outer, Probe::DDrop, &p), [None, None]);
        assert_eq!(s.writer(&inner, Probe::DDropInner, &p), [None, None]);
        let clear = span(writer(Probe::DentryUnlinkInode, 4, 6, false), 21, 30);
        assert_eq!(s.writer(&clear, Probe::DentryUnlinkInode, &p), [None, None]);
        assert_eq!(s.regressions, 0);
    }

    #[test]
    fn unobserved_moves_are_gaps() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 1, 1);
        assert!(matches!(
            s.lookup(6, 2, 2),
            Some(Finding::Gap { from: 2, to: 6, .. })
        ));
        let f = s.writer(
            &writer(Probe::DDropInner, 7, 7, true),
            Probe::DDropInner,
            &p,
        );
        assert!(matches!(
            f[0],
            Some(Finding::Gap {
                from: 6,
                to: 7,
                cause: GapCause::DMove(Probe::DDropInner),
                ..
            })
        ));
        // __d_move's closing +1 is owed, not a gap.
        assert_eq!(s.lookup(8, 3, 3), None);
    }

    fn span(mut e: Ev, b: u64, end: u64) -> Ev {
        (e.ts_begin, e.ts_end) = (b, end);
        e
    }

    #[test]
    fn a_kill_path_explains_its_inlined_unhash() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 1, 1);
        // __dentry_kill: __d_drop (with ___d_drop) inlined, dentry_unlink_inode traced.
        let kill = span(writer(Probe::DentryKill, 2, 6, true), 10, 40);
        assert_eq!(s.writer(&kill, Probe::DentryKill, &p), [None, None]);
        // A lookup racing the kill sees the invalidate's 4: no gap, the kill accounts for it.
        assert_eq!(s.lookup(4, 15, 15), None);
        let clear = span(writer(Probe::DentryUnlinkInode, 4, 6, false), 20, 30);
        assert_eq!(s.writer(&clear, Probe::DentryUnlinkInode, &p), [None, None]);
        assert_eq!(s.lookup(6, 45, 45), None);
        assert_eq!(s.regressions, 0);
    }

    #[test]
    fn writers_inside_a_container_keep_its_floor() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 1, 1);
        // d_delete: ___d_drop traced, its caller's invalidate and a bracket inlined.
        let del = span(writer(Probe::DDelete, 2, 8, true), 10, 40);
        assert_eq!(s.writer(&del, Probe::DDelete, &p), [None, None]);
        let drop = span(writer(Probe::DDropInner, 2, 2, true), 12, 14);
        assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
        assert_eq!(
            s.lookup(8, 50, 50),
            None,
            "the container's exit value stays explained"
        );
        assert_eq!(s.regressions, 0);
    }

    #[test]
    fn a_d_move_whose_event_comes_after_its_unhash_is_no_anomaly() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 1, 1);
        let drop = span(writer(Probe::DDropInner, 3, 3, true), 12, 14);
        let f = s.writer(&drop, Probe::DDropInner, &p);
        assert!(matches!(f[0], Some(Finding::Gap { from: 2, to: 3, .. })));
        let mv = span(writer(Probe::DMove, 2, 4, true), 10, 40);
        assert_eq!(s.writer(&mv, Probe::DMove, &p), [None, None]);
        assert_eq!(s.lookup(4, 50, 50), None);
        assert_eq!(s.regressions, 0);
    }

    #[test]
    fn a_freed_dentry_read_at_a_kill_exit_is_no_finding() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(6, 1, 1);
        let kill = span(writer(Probe::DentryKill, 6, 0, true), 10, 40);
        assert_eq!(s.writer(&kill, Probe::DentryKill, &p), [None, None]);
    }

    #[test]
    fn d_move_is_two_plus_one_around_its_unhash() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 1, 1);
        let mv = span(writer(Probe::DMove, 2, 4, true), 10, 40);
        assert_eq!(s.writer(&mv, Probe::DMove, &p), [None, None]);
        let drop = span(writer(Probe::DDropInner, 3, 3, true), 12, 14);
        assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
        assert_eq!(s.lookup(4, 50, 50), None);
        // A __d_move that moved less than its bracket is an anomaly.
        let short = span(writer(Probe::DMove, 4, 4, true), 60, 70);
        assert!(matches!(
            s.writer(&short, Probe::DMove, &p)[1],
            Some(Finding::ShortWithin { expected: 2, .. })
        ));
    }

    #[test]
    fn a_writer_stamped_after_the_lookup_that_saw_it() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 101, 101);
        // A lookup read the kill path's 2 -> 6 before its writers' events: it reads after its
        // return stamp (t=105), before its operation ends (t=200), and the drop entered at 150.
        assert!(matches!(
            s.lookup(6, 105, 200),
            Some(Finding::Gap { from: 2, to: 6, .. })
        ));
        let drop = span(writer(Probe::DDropInner, 2, 2, true), 150, 160);
        assert_eq!(
            s.writer(&drop, Probe::DDropInner, &p),
            [Some(Finding::SeenEarly { from: 2, to: 6 }), None]
        );
        assert_eq!(
            s.unexplained_from(),
            Some(4),
            "the drop and its owed +2 reach 4"
        );
        let clear = span(writer(Probe::DentryUnlinkInode, 4, 6, false), 170, 180);
        assert_eq!(
            s.writer(&clear, Probe::DentryUnlinkInode, &p),
            [Some(Finding::SeenEarly { from: 4, to: 6 }), None]
        );
        assert_eq!(s.unexplained_from(), None);
        assert_eq!(s.regressions, 0);
        // Behind what was known before the lookup: a regression still.
        let late = span(writer(Probe::DentryUnlinkInode, 2, 4, false), 300, 310);
        assert_eq!(s.writer(&late, Probe::DentryUnlinkInode, &p), [None, None]);
        assert_eq!(s.regressions, 1);
    }

    #[test]
    fn writers_seen_early_explain_only_what_they_moved() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 101, 101);
        assert!(s.lookup(10, 105, 200).is_some());
        let drop = span(writer(Probe::DDropInner, 2, 2, true), 150, 160);
        s.writer(&drop, Probe::DDropInner, &p);
        let clear = span(writer(Probe::DentryUnlinkInode, 4, 6, false), 162, 170);
        assert_eq!(
            s.writer(&clear, Probe::DentryUnlinkInode, &p)[0],
            Some(Finding::SeenEarly { from: 4, to: 10 })
        );
        assert_eq!(
            s.unexplained_from(),
            Some(6),
            "6 -> 10 moved by no traced writer"
        );
        // A lookup reading what was seen is no new gap.
        assert_eq!(s.lookup(10, 180, 180), None);
        // A writer entering where the lookup's read left the count takes none of it on.
        let next = span(writer(Probe::DDrop, 10, 12, true), 190, 195);
        assert_eq!(s.writer(&next, Probe::DDrop, &p), [None, None]);
        assert_eq!(s.unexplained_from(), None);
    }

    #[test]
    fn renames_seen_early_one_after_the_other_explain_the_whole_move() {
        // Debian 7.3, rename-stat: a lookup on another vCPU read three `__d_move`s (44 -> 50)
        // stamped after it; each calls `___d_drop` inside its seqcount section.
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(44, 100, 100);
        assert!(s.lookup(50, 110, 5_000).is_some());
        for (i, base) in [44, 46, 48].into_iter().enumerate() {
            let t = 1_000 + 100 * i as u64;
            let mv = span(writer(Probe::DMove, base, base + 2, true), t, t + 50);
            assert_eq!(
                s.writer(&mv, Probe::DMove, &p),
                [Some(Finding::SeenEarly { from: base, to: 50 }), None]
            );
            let drop = span(
                writer(Probe::DDropInner, base + 1, base + 1, true),
                t + 10,
                t + 20,
            );
            assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
            let left = (base + 2 < 50).then_some(base + 2);
            assert_eq!(s.unexplained_from(), left);
        }
        assert_eq!(s.regressions, 0);
    }

    #[test]
    fn a_writer_long_after_the_lookup_does_not_explain_it() {
        let p = Protocol::modern("test");
        let mut s = SeqState::default();
        s.lookup(2, 101, 101);
        assert!(s.lookup(6, 105, 200).is_some());
        // Entered a millisecond after the operation of the lookup that read 6 had ended.
        let drop = span(writer(Probe::DDropInner, 2, 2, true), 1_000_105, 1_000_106);
        assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
        assert_eq!(s.regressions, 1);
        // Ended before the last lookup that still read the old value began.
        let mut s = SeqState::default();
        s.lookup(2, 101, 101);
        assert!(s.lookup(6, 120, 500).is_some());
        // Read the old value after the writer below had ended.
        s.lookup(2, 121, 121);
        let drop = span(writer(Probe::DDropInner, 2, 2, true), 102, 103);
        assert_eq!(s.writer(&drop, Probe::DDropInner, &p), [None, None]);
    }

    #[test]
    fn d_seq_going_backwards_between_lookups_is_found() {
        let mut r = ReadOrder::default();
        assert_eq!(r.read(4, 0, 10, 20), None);
        // Overlapping the first: it may have read before the move.
        assert_eq!(r.read(2, 0, 15, 25), None);
        assert!(matches!(
            r.read(2, 0, 30, 40),
            Some(Finding::Decreased {
                from: 4,
                to: 2,
                since: 20
            })
        ));
        // On another CPU, later than the skew allows: ordered.
        let late = 20 + CLOCK_SKEW_NS + 1;
        assert!(matches!(
            r.read(2, 1, late, late + 5),
            Some(Finding::Decreased { from: 4, to: 2, .. })
        ));
        assert_eq!(r.within_skew, 0);
    }

    /// The ring of recent reads behaves as the queue it replaced, across many wraps, drops
    /// when full, clears and reads of a front or of every entry in order.
    #[test]
    fn recent_reads_behave_as_a_queue() {
        let mut ring = Recent::default();
        let mut queue = std::collections::VecDeque::new();
        let mut next = crate::test_rng::xorshift(0x5851_f42d_4c95_7f2du64);
        for i in 0..20_000u64 {
            match next(10) {
                0..=5 => {
                    let read = (i, next(4) as u32, next(1_000) as u32);
                    if queue.len() == RECENT_READS_KEPT {
                        queue.pop_front();
                    }
                    queue.push_back(read);
                    ring.push_back(read);
                }
                6..=8 => {
                    queue.pop_front();
                    ring.pop_front();
                }
                _ if next(20) == 0 => {
                    queue.clear();
                    ring.clear();
                }
                _ => {}
            }
            assert_eq!(ring.len(), queue.len(), "step {i}");
            assert_eq!(ring.front(), queue.front().copied(), "step {i}");
            assert!(ring.iter().eq(queue.iter()), "step {i}");
        }
        assert_eq!(format!("{ring:?}"), format!("{queue:?}"));
    }

    /// More reads within the skew than the ring keeps (a hot dentry) no longer hide the
    /// reads they push out: the same CPU's order still holds against them, and so does a
    /// read further than the skew from them on any CPU, while reads keep coming (rev33 H1).
    #[test]
    fn reads_the_full_ring_pushed_out_are_still_held_against_later_ones() {
        let busy = |r: &mut ReadOrder, from: u64, n: u64, step: u64| {
            for i in 0..n {
                let t = from + i * step;
                assert_eq!(r.read(6, 1, t, t + 5), None);
            }
        };
        // The same CPU, within the skew.
        let mut r = ReadOrder::default();
        assert_eq!(r.read(6, 0, 0, 10), None);
        busy(&mut r, 20, 2 * RECENT_READS_KEPT as u64, 1_000);
        assert!(matches!(
            r.read(2, 0, 100_000, 100_010),
            Some(Finding::Decreased { from: 6, to: 2, .. })
        ));
        // Another CPU, later than the skew, with CPU 1 reading every 10 µs throughout.
        let mut r = ReadOrder::default();
        assert_eq!(r.read(6, 0, 0, 10), None);
        busy(&mut r, 20, 13_000, 10_000);
        let late = 130_000_100;
        assert!(matches!(
            r.read(4, 2, late, late + 5),
            Some(Finding::Decreased { from: 6, to: 4, .. })
        ));
        // Another CPU, within the skew of the dropped reads: not ordered.
        let mut r = ReadOrder::default();
        assert_eq!(r.read(6, 0, 0, 10), None);
        busy(&mut r, 20, 2 * RECENT_READS_KEPT as u64, 1_000);
        assert_eq!(r.read(4, 2, 1_000_000, 1_000_005), None);
        assert_eq!(r.within_skew, 1);
    }

    /// Against every read kept (the rule as stated): a finding names a value an earlier read
    /// ordered before this one (same CPU and returned before it began, or a skew apart) had
    /// read, above the new one; and every such read on the same CPU is found, as is every one
    /// further than the skew and a span apart. Reads come about 200 µs apart on four CPUs, so
    /// the ring fills and spans settle all along.
    #[test]
    fn read_order_agrees_with_all_reads_kept() {
        for seed in 1..=20u64 {
            let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15 ^ seed);
            let mut r = ReadOrder::default();
            let mut all: Vec<Read> = Vec::new();
            let mut t = 0u64;
            let mut seq = 2u32;
            for i in 0..3_000 {
                t += next(400_000);
                seq = match next(40) {
                    0 => seq.wrapping_sub(2 * (1 + next(3) as u32)),
                    1..=4 => seq.wrapping_add(2),
                    _ => seq,
                };
                let cpu = next(4) as u32;
                let (b, e) = (t, t + 1 + next(50));
                let ordered = |&&(te, c, _): &&Read| (c == cpu && te < b) || te + CLOCK_SKEW_NS < b;
                let above = |&&(_, _, v): &&Read| ahead(seq, v) < 0;
                let found = r.read(seq, cpu, b, e);
                if let Some(Finding::Decreased { from, to, .. }) = found {
                    assert_eq!(to, seq, "seed {seed} read {i}");
                    assert!(
                        all.iter()
                            .filter(ordered)
                            .any(|&(_, _, v)| v == from && ahead(seq, v) < 0),
                        "seed {seed} read {i}: {from} not read before"
                    );
                }
                let must = all.iter().filter(above).any(|&(te, c, _)| {
                    (c == cpu && te < b) || te + CLOCK_SKEW_NS + DROPPED_SPAN_NS < b
                });
                assert!(!must || found.is_some(), "seed {seed} read {i}: missed");
                all.push((e, cpu, seq));
                t = e;
            }
        }
    }

    #[test]
    fn a_reset_read_order_is_a_new_one() {
        let mut r = ReadOrder::default();
        r.read(6, 1, 200, 210);
        r.read(2, 0, 500, 510);
        assert_eq!(r.within_skew, 1);
        r.reset();
        assert_eq!(format!("{r:?}"), format!("{:?}", ReadOrder::default()));
        // Nothing of the old generation is held against the new one.
        assert_eq!(r.read(0, 0, 600, 610), None);
    }

    #[test]
    fn a_lower_read_on_another_cpu_within_the_clock_skew_is_no_finding() {
        // The TCG case: CPU 1 read the kill's 6 stamped before CPU 0's lookups of the
        // generation's 2, which in fact came before the kill.
        let mut r = ReadOrder::default();
        assert_eq!(r.read(2, 0, 100, 110), None);
        assert_eq!(r.read(6, 1, 200, 210), None);
        assert_eq!(r.read(2, 0, 500, 510), None);
        assert_eq!(r.within_skew, 1);
        // The same CPU's order is exact, however close.
        assert!(matches!(
            r.read(2, 1, 211, 215),
            Some(Finding::Decreased {
                from: 6,
                to: 2,
                since: 210
            })
        ));
        // A high read beyond the skew is settled for every CPU, and stays so when newer
        // reads push it out of the recent ones.
        let mut r = ReadOrder::default();
        r.read(6, 1, 0, 10);
        for i in 0..2 * RECENT_READS_KEPT as u64 {
            let t = 10 + CLOCK_SKEW_NS + 1 + i;
            assert_eq!(r.read(6, 0, t, t), None);
        }
        assert!(matches!(
            r.read(4, 2, 3 * CLOCK_SKEW_NS, 3 * CLOCK_SKEW_NS),
            Some(Finding::Decreased { from: 6, to: 4, .. })
        ));
    }
}
