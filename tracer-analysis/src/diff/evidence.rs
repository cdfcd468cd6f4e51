//! What the report shows of each anomaly: the events kept after processing (a bounded ring),
//! the context window around an anomaly's event (the events before it from the ring, the
//! events after it as they come), and the per-kind counts.
use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde_json::{json, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{writes, PathId, Paths},
    classify::Ruling,
    report::{Anomaly, AnomalyKind, ContextLine, ReasonKind, Side},
};

/// An event as kept after processing: enough for context windows, suspects and evidence.
#[derive(Clone, Copy, Debug)]
pub struct Obs {
    /// Processing order.
    pub n: u64,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    pub probe: Probe,
    pub op: Option<OpKind>,
    pub path: PathId,
    /// A rename's new name.
    pub path2: Option<PathId>,
    pub dentry: u64,
    /// The dentry's number in its trace (`dentry` is the pointer).
    pub slot: u32,
    pub generation: u32,
    pub seq_begin: u32,
    pub seq_end: u32,
    pub inode_begin: u64,
    pub inode_end: u64,
    pub flags: u16,
    pub result: i32,
}

/// What a probe event (not an operation) adds to the probes seen on its dentry and at its
/// name ([`Evidence::commit`]): its probe, its dentry's slot (None without a dentry) and its
/// path, as its observation has them.
#[derive(Clone, Copy, Debug)]
pub struct Probed {
    pub probe: Probe,
    pub slot: Option<u32>,
    pub path: PathId,
}

impl Probed {
    /// The fields of `obs`, None for an operation's.
    #[cfg(test)]
    pub fn of(obs: &Obs) -> Option<Probed> {
        obs.op.is_none().then_some(Probed {
            probe: obs.probe,
            slot: (obs.dentry != 0).then_some(obs.slot),
            path: obs.path,
        })
    }
}

impl Obs {
    /// A ring slot not yet built; an observation's fields no probe set.
    pub(in crate::diff) const BLANK: Obs = Obs {
        n: 0,
        ts_begin: 0,
        ts_end: 0,
        tid: 0,
        probe: Probe::Op,
        op: None,
        path: 0,
        path2: None,
        dentry: 0,
        slot: 0,
        generation: 0,
        seq_begin: 0,
        seq_end: 0,
        inode_begin: 0,
        inode_end: 0,
        flags: 0,
        result: 0,
    };
}

/// Why an anomaly already found is set aside: what its judgment rested on turned out to be
/// incomplete, so it is not "what was seen is real".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Doubt {
    /// A late event its rule reads (see [`Evidence::late`]) arrived after it was judged, and
    /// might have changed the judgment.
    LateEvent,
    /// Judged from a late event by a rule that holds it against its dentry's state as built
    /// in processing order (see [`judged_in_order`]): that state held events stamped after
    /// it, so the comparison is an artefact of the arrival order.
    FromLateEvent,
    /// Its interval reaches where a cut or unfinished trace's missing events may begin: the
    /// events that would explain it may be in the lost tail.
    NearCut,
    /// Its rule reads events of a probe whose entry program the kernel skipped (see
    /// [`Skipped`]): one of them may join two calls.
    SkippedEntry,
    /// Its rule reads a dentry's record or the name a dentry's binding gave, and calls of a
    /// probe that ends a dentry's life were lost (see [`Skipped::lost_deaths`]): the record
    /// may run two lives at one address together.
    LostDeath,
}

impl Doubt {
    /// The reason that names the anomalies set aside so.
    pub fn reason(self) -> ReasonKind {
        match self {
            Doubt::LateEvent => ReasonKind::AnomalyBeforeLateEvent,
            Doubt::FromLateEvent => ReasonKind::AnomalyFromLateEvent,
            Doubt::NearCut => ReasonKind::AnomalyNearCut,
            Doubt::SkippedEntry => ReasonKind::AnomalyOnSkippedProbe,
            Doubt::LostDeath => ReasonKind::AnomalyAcrossLostDeath,
        }
    }
}

/// The probes of a trace whose entry program the kernel skipped (the footer's
/// `skipped_entries`). The thread's previous call of the probe may have left its slot armed (a
/// skipped fexit, a kretprobe out of instances); the skipped entry did not retire it, so the
/// call's exit took it as its own: one event with the earlier call's entry half (name, parent,
/// begin) and this call's exit half (a lookup's result, a writer's `d_seq`, inode and hashed
/// state at exit). Nothing in the event shows it, and the footer counts skips per probe only
/// (no thread, no time), so every event of the probe is in doubt, and with it each anomaly
/// whose judgment read one ([`Judged::touched`]):
/// - the anomaly's own event, of that probe;
/// - for the kinds that read a dentry's record (`seq-delta`, `seq-decreased`,
///   `found-unhashed`: its `d_seq` history; `clear-before-unhash`: its writers), an event of
///   the probe on that dentry processed before the anomaly was judged;
/// - for the kinds judged at a name (`null-inode-positive`, `clear-before-unhash`: against the
///   operations on it), such an event on the name or a directory above it: a joined lookup
///   binds its result to the other call's name, and a joined kill ends its dentry's life at
///   the other call's exit, and the names below that dentry follow.
///
/// `spurious-enoent` and `result-differs` read operations only, and `validated-flag` its own
/// lookup's values: a skip leaves them standing. So does an anomaly whose dentry and names no
/// event of a skipped probe touched before its judgment: the skipped call's own event is
/// missing, like a dropped one, which is a loss (a reason), and sets aside only what a lost
/// death can make ([`Skipped::lost_deaths`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Bit `p as u8` per probe `p`.
    probes: u32,
    /// A probe that ends a dentry's life lost calls (see [`Skipped::lost_deaths`]).
    lost_death: bool,
}

/// The probes whose event ends a dentry's life in the analysis (`on_writer` sets `dead_at`:
/// the kill path, a clear of an unhashed dentry's inode, the unhash of a negative one).
pub const LIFE_ENDING: [Probe; 6] = [
    Probe::DentryKill,
    Probe::DentryKillLocked,
    Probe::DentryUnlinkInode,
    Probe::DentryIput,
    Probe::DDrop,
    Probe::DDropInner,
];

/// Whether a lost call of the probe with this symbol may be a dentry's death: a life-ending
/// probe's, one of a symbol no probe has, or (`None`) one of a probe unknown.
pub fn may_end_a_life(symbol: Option<&str>) -> bool {
    symbol.is_none_or(|sym| kernel_probe(sym).is_none_or(|p| LIFE_ENDING.contains(&p)))
}

/// The kernel probe with this symbol, if any.
fn kernel_probe(symbol: &str) -> Option<Probe> {
    Probe::KERNEL.into_iter().find(|p| p.symbol() == symbol)
}

/// A probe's bit in a set of probes.
fn bit(p: Probe) -> u32 {
    1 << (p as u8)
}

impl Skipped {
    pub fn of(probes: impl IntoIterator<Item = Probe>) -> Skipped {
        let mut s = Skipped::default();
        for p in probes {
            s.probes |= bit(p);
        }
        // `__d_move`'s programs record its target's events too.
        if s.probes & (bit(Probe::DMove) | bit(Probe::DMoveTarget)) != 0 {
            s.probes |= bit(Probe::DMove) | bit(Probe::DMoveTarget);
        }
        s
    }

    /// From a footer's symbols; one no probe has (a foreign file) counts as every probe
    /// skipped.
    pub fn of_symbols<'a>(symbols: impl IntoIterator<Item = &'a str>) -> Skipped {
        let mut unknown = false;
        let mut s = Skipped::of(symbols.into_iter().filter_map(|sym| {
            let p = kernel_probe(sym);
            unknown |= p.is_none();
            p
        }));
        if unknown {
            s.probes = Probe::KERNEL.into_iter().fold(0, |a, p| a | bit(p));
        }
        s
    }

    /// Whether the judgment of an anomaly on an event of `subject`, which read events of the
    /// probes `touched`, may rest on a joined event.
    fn doubts(self, subject: Probe, touched: u32) -> bool {
        self.probes & (bit(subject) | touched) != 0
    }

    /// The probes with calls lost (`verdict::losses`: skipped entries, drops, hits beyond
    /// the events and drops, `None` for `cpu_seq` numbers missing beyond what the drops
    /// account for: the call's own event is missing each way), of which one a life-ending
    /// probe's (or a symbol no probe has, or an unknown probe) means a dentry's death may be
    /// unseen. Its address comes back from the slab as another
    /// dentry; under the same leaf name the analysis takes it for the same one (`bind`
    /// starts a new life only on another leaf name or after a seen death), so the new life's
    /// `d_seq` from 0 continues the old record. Nothing shows where (the footer counts per
    /// probe only, and a dentry seen again under its name looks the same whether it lived on
    /// or not), so every anomaly whose rule reads a record or a name a binding gave is in
    /// doubt:
    /// - `seq-decreased`: the new life's first values below the old life's last;
    /// - `seq-delta`: the old life's last writer's owed bump (`__d_drop`'s caller's +2) held
    ///   against the new life's first writer;
    /// - `found-unhashed`: the old life's unhash value held against the new life's lookups
    ///   (no writer of the new life seen hashed to clear it);
    /// - `null-inode-positive`, `clear-before-unhash`: a directory's dentry still bound to
    ///   its old name names what is below the new dentry at its address; a clear inside a
    ///   kill whose event is missing also reads as outside one.
    ///
    /// `spurious-enoent`, `result-differs` and `validated-flag` read no record and no binding.
    pub fn lost_deaths<'a>(
        mut self,
        symbols: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Skipped {
        self.lost_death |= symbols.into_iter().any(may_end_a_life);
        self
    }

    /// Whether an anomaly of `kind` may come from two lives run together.
    fn doubts_life(self, kind: AnomalyKind) -> bool {
        use AnomalyKind as K;
        self.lost_death
            && match kind {
                K::SeqDelta
                | K::SeqDecreased
                | K::FoundUnhashed
                | K::NullInodePositive
                | K::ClearBeforeUnhash => true,
                K::ValidatedFlag | K::SpuriousEnoent | K::ResultDiffers => false,
            }
    }
}

/// What one anomaly was judged on, kept for every anomaly (also those not detailed) so it
/// can be set aside later.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Judged {
    kind: AnomalyKind,
    /// Its subject event's probe.
    probe: Probe,
    path: PathId,
    /// Its dentry's slot, when it has a dentry.
    slot: Option<u32>,
    ts_begin: u64,
    /// Its subject's end: every event that could change the judgment has a key at or below.
    reach: u64,
    /// Its index in the detailed anomalies.
    detailed: Option<u32>,
    /// Judged from a late event by a rule that reads the processing order
    /// ([`judged_in_order`]).
    from_late: bool,
    /// The probes with an event processed before its judgment that its rule read: on its
    /// dentry, or on its name or a directory above it, as its kind reads them (see
    /// [`Skipped`] and [`Evidence::touched`]).
    touched: u32,
}

/// Whether `kind`'s rule holds its subject event against its dentry's state as processing
/// built it: the `d_seq` history (invariants.rs assumes observations in time order, which
/// the reorder window provides) and the dentry's writers so far (`clear-before-unhash`: the
/// kill around the clear, the `d_delete` holding it). A late event's subject was compared
/// with events stamped after it. The other kinds read their own event's values
/// (`validated-flag`) or the operations' history by their stamps (`null-inode-positive`,
/// `spurious-enoent`, `result-differs`; an operation is late whenever it outlasts the
/// window, and what arrived late before their judgment is [`Doubt::LateEvent`]'s).
pub fn judged_in_order(kind: AnomalyKind) -> bool {
    matches!(
        kind,
        AnomalyKind::SeqDelta
            | AnomalyKind::SeqDecreased
            | AnomalyKind::FoundUnhashed
            | AnomalyKind::ClearBeforeUnhash
    )
}

/// Bytes of one [`Judged`] in the record file.
const RECORD: usize = 36;

impl Judged {
    fn encode(&self) -> [u8; RECORD] {
        let mut b = [0u8; RECORD];
        // Its place in `AnomalyKind::ALL` (declaration order).
        b[0] = self.kind as u8;
        b[1] = u8::from(self.slot.is_some());
        b[2] = self.probe as u8;
        b[3] = u8::from(self.from_late);
        b[4..8].copy_from_slice(&self.path.to_le_bytes());
        b[8..12].copy_from_slice(&self.slot.unwrap_or(0).to_le_bytes());
        b[12..16].copy_from_slice(&self.detailed.unwrap_or(u32::MAX).to_le_bytes());
        b[16..24].copy_from_slice(&self.ts_begin.to_le_bytes());
        b[24..32].copy_from_slice(&self.reach.to_le_bytes());
        b[32..36].copy_from_slice(&self.touched.to_le_bytes());
        b
    }

    fn decode(b: &[u8; RECORD]) -> Option<Judged> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let detailed = u32_at(12);
        Some(Judged {
            kind: *AnomalyKind::ALL.get(b[0] as usize)?,
            probe: Probe::from_u8(b[2])?,
            path: u32_at(4),
            slot: (b[1] != 0).then(|| u32_at(8)),
            ts_begin: u64_at(16),
            reach: u64_at(24),
            detailed: (detailed != u32::MAX).then_some(detailed),
            from_late: b[3] != 0,
            touched: u32_at(32),
        })
    }
}

/// The judged records, in judgment order, in an unnamed temporary file: they grow with the
/// anomalies (a bug that fires a million times), the diff's memory must not, and they are
/// read once, when the trace's end is known.
#[derive(Default)]
struct Records {
    file: Option<BufWriter<File>>,
    len: u64,
    /// The first error; the records are then incomplete and the diff fails.
    error: Option<io::Error>,
}

impl Records {
    fn push(&mut self, j: &Judged) {
        if self.error.is_some() {
            return;
        }
        let res = (|| {
            let out = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(BufWriter::new(tempfile::tempfile()?)),
            };
            out.write_all(&j.encode())
        })();
        match res {
            Ok(()) => self.len += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// Every record in judgment order, with its number.
    fn read(&mut self, mut each: impl FnMut(u64, Judged)) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let Some(out) = self.file.take() else {
            return Ok(());
        };
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        let mut input = BufReader::new(file);
        let mut b = [0u8; RECORD];
        for i in 0..self.len {
            input.read_exact(&mut b)?;
            let j = Judged::decode(&b).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "an anomaly record is damaged")
            })?;
            each(i, j);
        }
        Ok(())
    }
}

/// What a late event's rule reads, by its kind (see [`Evidence::late`]).
#[derive(Clone, Copy, Debug)]
enum Reads {
    /// An operation that changes which names exist.
    Existence,
    /// Any other operation.
    Operation,
    /// A writer probe.
    Writer,
    /// A lookup.
    Lookup,
}

/// A late event, kept while it may change a record judged before it.
#[derive(Clone, Copy, Debug)]
struct Late {
    /// Records judged before it arrived.
    at: u64,
    key: u64,
    reads: Reads,
    path: PathId,
    path2: Option<PathId>,
    slot: Option<u32>,
}

impl Late {
    fn names(&self) -> impl Iterator<Item = PathId> + Clone {
        [Some(self.path), self.path2].into_iter().flatten()
    }

    /// Whether it could change the judgment of `j`, judged before it arrived.
    fn changes(&self, j: &Judged, paths: &Paths) -> bool {
        if self.key > j.reach {
            return false;
        }
        let above = || self.names().any(|p| at_or_below(paths, j.path, p));
        let on_slot = self.slot.is_some() && self.slot == j.slot;
        match self.reads {
            Reads::Existence => above(),
            Reads::Operation => {
                j.kind == AnomalyKind::ResultDiffers && self.names().any(|p| p == j.path)
            }
            Reads::Writer => {
                (reads_writers(j.kind) && (on_slot || above()))
                    || (j.kind == AnomalyKind::NullInodePositive
                        && self
                            .names()
                            .any(|p| p != j.path && at_or_below(paths, j.path, p)))
            }
            Reads::Lookup => on_slot && reads_d_seq(j.kind),
        }
    }
}

/// `path` is `of` or below it.
fn at_or_below(paths: &Paths, path: PathId, of: PathId) -> bool {
    let mut cur = Some(path);
    while let Some(c) = cur {
        if c == of {
            return true;
        }
        cur = paths.parent(c);
    }
    false
}

/// A detailed anomaly not yet set aside, watched for late events as they come, so that the
/// details it gives up leave room for later ones at once.
struct Open {
    judged: Judged,
    doubted: bool,
}

/// Anomalies set aside, per doubt: per kind, and a few as "kind name at ts".
#[derive(Clone, Debug, Default)]
pub struct SetAside {
    pub by_doubt: BTreeMap<Doubt, (BTreeMap<AnomalyKind, u64>, Vec<String>)>,
}

/// Examples of anomalies set aside named in a reason, per doubt.
const SET_ASIDE_EXAMPLES: usize = 3;

/// An anomaly still collecting the events after it.
struct Collector {
    index: usize,
    need: usize,
    subject: Obs,
}

/// The context ring: the last `cap` events kept and, at `next`, the one being built (a ring
/// written in place: every event passes here): `cap + 1` slots once full, the oldest kept at
/// `next + 1`. Once full, `next` goes one past the last slot when that is kept, and back to 0
/// at the next [`Evidence::stage`] (its mark), so keeping an event tests no wrap; `next` at
/// the end stands for 0.
struct Ring {
    slots: Vec<Obs>,
    next: usize,
    cap: usize,
    /// Where [`Evidence::stage`] next stops for [`Evidence::at_mark`].
    mark: usize,
}

impl Ring {
    /// The kept events in processing order, as two slices: the `cap` slots before `next`
    /// (cyclically), or, until the ring is full, the events before `next`.
    fn kept(&self) -> (&[Obs], &[Obs]) {
        if self.slots.len() <= self.cap {
            return (self.slots.get(..self.next).unwrap_or(&[]), &[]);
        }
        let next = if self.next == self.slots.len() {
            0
        } else {
            self.next
        };
        let (new, old) = self.slots.split_at(next);
        let old = old.get(1..).unwrap_or(&[]);
        // The first part holds every event when one part is empty.
        if old.is_empty() {
            (new, old)
        } else {
            (old, new)
        }
    }

    /// The kept event numbered `n`, if the ring still holds it.
    fn kept_event(&self, n: u64) -> Option<&Obs> {
        let (a, b) = self.kept();
        let part = if b.first().is_some_and(|o| o.n <= n) {
            b
        } else {
            a
        };
        part.get(part.partition_point(|o| o.n < n))
            .filter(|o| o.n == n)
    }

    /// The least event number the ring will still hold after `more` events are kept (0 when
    /// it will hold every event kept so far, `u64::MAX` when none of them).
    fn kept_from_after(&self, more: usize) -> u64 {
        let (a, b) = self.kept();
        let held = a.len() + b.len();
        match (held + more).checked_sub(self.cap) {
            None | Some(0) => 0,
            Some(lost) => a
                .get(lost)
                .or_else(|| b.get(lost - a.len()))
                .map_or(u64::MAX, |o| o.n),
        }
    }
}

/// Lookups kept per thread, to show which lookups led to an ENOENT.
pub const LOOKUPS_KEPT: usize = 16;

/// A thread's last [`LOOKUPS_KEPT`] lookups by their number: the observations themselves are
/// in the context ring, written once (a copy here cost about 30 instructions a lookup,
/// callgrind). They are read a reorder window later, when the ring may have moved on: those
/// the ring is about to overwrite are copied into `spilled` first ([`Evidence::at_mark`]), so
/// every number here is in one of the two.
#[derive(Default)]
struct Lookups {
    numbers: [u64; LOOKUPS_KEPT],
    /// How many were pushed: the next is written at this modulo [`LOOKUPS_KEPT`].
    pushed: usize,
    /// Copies of this thread's lookups numbered up to `spilled_to`, oldest first (some may
    /// have left `numbers` since).
    spilled: Vec<Obs>,
    spilled_to: u64,
}

impl Lookups {
    /// Keeps lookup `n`. True when the thread must be listed for [`Self::spill`]: every
    /// lookup it kept before was spilled (so it is not listed), or it had none.
    #[inline(always)]
    fn push(&mut self, n: u64) -> bool {
        let newest = self.numbers[self.pushed.wrapping_sub(1) % LOOKUPS_KEPT];
        self.numbers[self.pushed % LOOKUPS_KEPT] = n;
        self.pushed += 1;
        newest <= self.spilled_to
    }

    /// The numbers kept, oldest first.
    fn kept(&self) -> impl Iterator<Item = u64> + '_ {
        numbers_of(&self.numbers, self.pushed)
    }

    /// Copies into `spilled` the lookups numbered below `keep_from` (those `ring` will have
    /// overwritten by its next mark), and drops the copies no longer kept. True while a
    /// lookup kept is not copied (the thread stays listed).
    fn spill(&mut self, keep_from: u64, ring: &Ring) -> bool {
        let oldest = self.kept().next().unwrap_or(u64::MAX);
        self.spilled.retain(|o| o.n >= oldest);
        let numbers = self.numbers;
        for n in numbers_of(&numbers, self.pushed) {
            if n > self.spilled_to && n < keep_from {
                let kept = ring.kept_event(n);
                debug_assert!(kept.is_some(), "lookup {n} left the ring unspilled");
                self.spilled.extend(kept.copied());
                self.spilled_to = n;
            }
        }
        self.kept().last().is_some_and(|n| n > self.spilled_to)
    }

    /// The observations kept, oldest first.
    fn iter<'a>(&'a self, ring: &'a Ring) -> impl Iterator<Item = &'a Obs> + 'a {
        self.kept().filter_map(move |n| {
            if n <= self.spilled_to {
                self.spilled.iter().find(|o| o.n == n)
            } else {
                ring.kept_event(n)
            }
        })
    }
}

/// The numbers of a ring that `pushed` were written to in turn, oldest first.
fn numbers_of(ring: &[u64; LOOKUPS_KEPT], pushed: usize) -> impl Iterator<Item = u64> + '_ {
    let (new, old) = ring.split_at(pushed % LOOKUPS_KEPT);
    let old = if pushed >= LOOKUPS_KEPT { old } else { &[] };
    old.iter().chain(new).copied()
}

/// Every thread's last lookups, by thread number, and the threads with a lookup not yet
/// copied out of the ring (listed once each).
#[derive(Default)]
struct ThreadLookups {
    per: Vec<Lookups>,
    listed: Vec<usize>,
}

impl ThreadLookups {
    /// A thread's first lookup since all it kept were copied.
    #[cold]
    #[inline(never)]
    fn list(&mut self, thread: usize) {
        self.listed.push(thread);
    }

    /// A thread's first lookup.
    #[cold]
    #[inline(never)]
    fn first(&mut self, thread: usize, n: u64) {
        if self.per.len() <= thread {
            self.per.resize_with(thread + 1, Lookups::default);
        }
        if let Some(l) = self.per.get_mut(thread) {
            if l.push(n) {
                self.listed.push(thread);
            }
        }
    }
}

pub struct Evidence {
    side: Side,
    context: usize,
    max_anomalies: usize,
    /// Every event's observation, written once where it is kept.
    ring: Ring,
    /// Per thread, its last lookups, by number into `ring`.
    lookups: ThreadLookups,
    collectors: Vec<Collector>,
    /// Detailed anomalies (the first `max_anomalies` not set aside, once settled).
    pub anomalies: Vec<Anomaly>,
    /// Every anomaly, per kind.
    pub counts: BTreeMap<AnomalyKind, u64>,
    /// Anomalies counted but not detailed.
    pub not_detailed: u64,
    /// Counted anomalies within `max_anomalies` left without details (their details went to
    /// anomalies set aside later), as "kind on name at ts".
    pub undetailed: Vec<String>,
    records: Records,
    /// The detailed anomalies' records (at most four times the limit).
    open: Vec<Open>,
    /// Late events that may change a record judged before them; only those on a name,
    /// directory or dentry some anomaly has, so they grow with the late events on anomalous
    /// names, not with the anomalies.
    lates: Vec<Late>,
    /// The anomalies' names with every directory above them, their dentries' slots, and
    /// their latest reach: what a late event must touch to be kept.
    under: HashSet<PathId>,
    slots: HashSet<u32>,
    max_reach: u64,
    /// The cut, once known: from which key an anomaly is in doubt, and a `result-differs`.
    cut: Option<(u64, u64)>,
    /// The probes whose entries the kernel skipped, once the footer is read.
    skipped: Skipped,
    /// Detailed anomalies set aside since by a late event: each leaves room for one more.
    detailed_in_doubt: usize,
    /// Per dentry number, the probes with an event on it so far (what a skip may have
    /// joined is known only at the end: see [`Skipped`]).
    on_dentry: Vec<u32>,
    /// Per path, the probes with an event on it so far.
    at_path: Vec<u32>,
}

impl Evidence {
    pub fn new(side: Side, context: usize, max_anomalies: usize) -> Evidence {
        Evidence {
            side,
            context,
            max_anomalies,
            ring: Ring {
                slots: Vec::new(),
                next: 0,
                cap: 4096 + 2 * context,
                mark: 0,
            },
            lookups: ThreadLookups::default(),
            collectors: Vec::new(),
            anomalies: Vec::new(),
            counts: BTreeMap::new(),
            not_detailed: 0,
            undetailed: Vec::new(),
            records: Records::default(),
            open: Vec::new(),
            lates: Vec::new(),
            under: HashSet::new(),
            slots: HashSet::new(),
            max_reach: 0,
            cut: None,
            skipped: Skipped::default(),
            detailed_in_doubt: 0,
            on_dentry: Vec::new(),
            at_path: Vec::new(),
        }
    }

    /// A processed event: context for the anomalies still collecting, and for later ones.
    #[cfg(test)]
    pub fn keep(&mut self, obs: &Obs, paths: &Paths) {
        *self.stage() = *obs;
        self.commit(paths, Probed::of(obs));
    }

    /// Where the next event's observation is built, in place: the ring's slot past the kept
    /// events, so an event is written once (built in the handler and copied in here, it cost
    /// about 20 instructions an event, callgrind), and what is read while it is handled (an
    /// anomaly's context) is still the kept events alone. Read back with [`Self::staged`];
    /// kept by [`Self::commit`].
    #[inline(always)]
    pub fn stage(&mut self) -> &mut Obs {
        if self.ring.next == self.ring.mark {
            self.at_mark();
        }
        &mut self.ring.slots[self.ring.next]
    }

    /// While the ring grows, at each event: one more slot. Then every half ring: the threads'
    /// lookups that the ring will overwrite before the next mark are copied out
    /// ([`Lookups::spill`]); at the second half's mark, one past the last slot, the ring
    /// wraps.
    #[cold]
    #[inline(never)]
    fn at_mark(&mut self) {
        let r = &mut self.ring;
        let slots = r.cap + 1;
        if r.next == slots {
            r.next = 0;
        }
        if r.slots.len() < slots {
            r.slots.push(Obs::BLANK);
        }
        r.mark = if r.slots.len() < slots {
            r.next + 1
        } else if r.next < slots / 2 {
            slots / 2
        } else {
            slots
        };
        // Events kept before the next mark.
        let until = (r.mark + slots - r.next) % slots;
        let keep_from = r.kept_from_after(until);
        if keep_from > 0 {
            let (per, ring) = (&mut self.lookups.per, &self.ring);
            self.lookups
                .listed
                .retain(|&t| per.get_mut(t).is_some_and(|l| l.spill(keep_from, ring)));
        }
    }

    /// The observation built by [`Self::stage`].
    #[inline(always)]
    pub fn staged(&self) -> &Obs {
        &self.ring.slots[self.ring.next]
    }

    /// Keeps the staged observation: context for the anomalies still collecting, and for
    /// later ones; the slot after it is the next one built (the oldest kept event's once the
    /// ring is full, which then leaves it). `probed`: a probe event's probe, dentry and path
    /// as staged ([`Probed::of`] the observation), None for an operation.
    #[inline(always)]
    pub fn commit(&mut self, paths: &Paths, probed: Option<Probed>) {
        // From the caller, which holds them: read back from the slot, with its bounds check,
        // they cost about 3 instructions a probe event more (callgrind).
        if let Some(p) = probed {
            let b = bit(p.probe);
            if let Some(slot) = p.slot {
                add_bit(&mut self.on_dentry, slot, b);
            }
            add_bit(&mut self.at_path, p.path, b);
        }
        if !self.collectors.is_empty() {
            let obs = &self.ring.slots[self.ring.next];
            for c in &mut self.collectors {
                if let Some(a) = self.anomalies.get_mut(c.index) {
                    a.context.push(line(obs, &c.subject, paths));
                }
                c.need -= 1;
            }
            self.collectors.retain(|c| c.need > 0);
        }
        // The wrap is at the mark ([`Self::at_mark`]): a division for every event showed in
        // the profile, and a test of the end about 3 instructions an event.
        self.ring.next += 1;
    }

    /// The event kept last.
    pub fn newest(&self) -> &Obs {
        let r = &self.ring;
        &r.slots[r.next.checked_sub(1).unwrap_or(r.cap)]
    }

    /// Keeps lookup `n` (staged or kept) among thread number `thread`'s last lookups.
    #[inline(always)]
    pub fn push_lookup(&mut self, thread: usize, n: u64) {
        match self.lookups.per.get_mut(thread) {
            Some(l) => {
                if l.push(n) {
                    self.lookups.list(thread);
                }
            }
            None => self.lookups.first(thread, n),
        }
    }

    /// Thread number `thread`'s last lookups, oldest first.
    pub fn thread_lookups(&self, thread: usize) -> impl Iterator<Item = &Obs> + '_ {
        self.lookups
            .per
            .get(thread)
            .into_iter()
            .flat_map(|l| l.iter(&self.ring))
    }

    fn kept(&self) -> (&[Obs], &[Obs]) {
        self.ring.kept()
    }

    /// Stops collecting context (the trace ended).
    pub fn close(&mut self) {
        self.collectors.clear();
    }

    /// A late event (`late`, keyed at `key`) was processed: the anomalies judged before it
    /// that it could have changed are in doubt. Only an event the anomaly's rule reads can
    /// change it, and only if it is at or before the anomaly's end:
    /// - an operation that changes which names exist (create, mkdir, unlink, rmdir, rename,
    ///   exchange) on the name or a directory above it: the history the existence rules and
    ///   the clear's `d_delete` read;
    /// - any operation on the name itself for `result-differs`: the matcher numbered the
    ///   name's operations without it;
    /// - a writer probe on the dentry, the name or a directory above it, for the kinds whose
    ///   rule reads writer probes: the `d_seq` kinds and `clear-before-unhash` (whether a
    ///   traced `d_delete` on the clear's thread holds it); and for `null-inode-positive`
    ///   below a directory the writer is on (a kill of that directory's dentry changes which
    ///   name a lookup under it is judged at);
    /// - a lookup on the dentry for the `d_seq` kinds, which read its `d_seq` values.
    ///
    /// An observation (stat, open, readdir, a lookup) only proves a name existed, and a
    /// `drop_caches` changes no name's existence: neither can excuse an ENOENT or a NULL
    /// inode, so they set none of those aside. Nor can a writer probe on the name itself or
    /// its dentry (rule 4: a kill excuses nothing; those rules and `result-differs` read the
    /// operations' history only). The records are judged against it when the
    /// trace's end is known ([`Evidence::set_aside`]); the detailed ones at once.
    pub fn late(&mut self, late: &Obs, key: u64, paths: &Paths) {
        let l = Late {
            at: self.records.len,
            key,
            reads: match late.op {
                Some(k) if writes(k) => Reads::Existence,
                Some(_) => Reads::Operation,
                None if matches!(late.probe, Probe::DLookupRcu | Probe::DLookup) => Reads::Lookup,
                None => Reads::Writer,
            },
            path: late.path,
            path2: late.path2,
            slot: (late.dentry != 0).then_some(late.slot),
        };
        let touches = l.names().any(|p| self.under.contains(&p))
            || l.slot.is_some_and(|s| self.slots.contains(&s));
        if l.at == 0 || key > self.max_reach || !touches {
            return;
        }
        for o in &mut self.open {
            if !o.doubted && l.changes(&o.judged, paths) {
                o.doubted = true;
                self.detailed_in_doubt += 1;
            }
        }
        self.lates.push(l);
    }

    /// The trace lacks events keyed at `from` or later (cut short or unfinished), and
    /// operations of any kind at `results_from` or later: the anomalies reaching there are in
    /// doubt (`result-differs` from the second, as a lost operation numbers a name's
    /// operations differently; every kind from the first).
    pub fn cut(&mut self, from: u64, results_from: u64) {
        self.cut = Some((from, results_from));
    }

    /// The kernel skipped the entry programs of `skipped`: the anomalies reading their events
    /// are in doubt (see [`Skipped`]).
    pub fn skipped(&mut self, skipped: Skipped) {
        self.skipped = skipped;
    }

    /// Takes the anomalies in doubt out of the counts and the details (once every event is
    /// processed and no context is collected any more), telling `each` every anomaly's doubt
    /// in judgment order. Err: the records could not be kept (a temporary file).
    pub fn set_aside(
        &mut self,
        paths: &Paths,
        mut each: impl FnMut(Option<Doubt>),
    ) -> io::Result<SetAside> {
        let mut by_name: HashMap<PathId, Vec<usize>> = HashMap::new();
        let mut by_slot: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, l) in self.lates.iter().enumerate() {
            for p in l.names() {
                by_name.entry(p).or_default().push(i);
            }
            if let Some(s) = l.slot {
                by_slot.entry(s).or_default().push(i);
            }
        }
        let lates = std::mem::take(&mut self.lates);
        let (cut, skipped) = (self.cut, self.skipped);
        let mut out = SetAside::default();
        let mut dropped = vec![false; self.anomalies.len()];
        let mut undetailed = Vec::new();
        let (counts, not_detailed) = (&mut self.counts, &mut self.not_detailed);
        let max_anomalies = self.max_anomalies;
        let changed = |j: &Judged, n: u64| {
            let hit = |i: &usize| lates[*i].at > n && lates[*i].changes(j, paths);
            j.slot
                .and_then(|s| by_slot.get(&s))
                .into_iter()
                .flatten()
                .any(hit)
                || std::iter::successors(Some(j.path), |&c| paths.parent(c))
                    .any(|c| by_name.get(&c).into_iter().flatten().any(hit))
        };
        self.records.read(|n, j| {
            let doubt = if j.from_late {
                Some(Doubt::FromLateEvent)
            } else if changed(&j, n) {
                Some(Doubt::LateEvent)
            } else if cut.is_some_and(|(from, results_from)| {
                j.reach
                    >= if j.kind == AnomalyKind::ResultDiffers {
                        results_from
                    } else {
                        from
                    }
            }) {
                Some(Doubt::NearCut)
            } else if skipped.doubts(j.probe, j.touched) {
                Some(Doubt::SkippedEntry)
            } else if skipped.doubts_life(j.kind) {
                Some(Doubt::LostDeath)
            } else {
                None
            };
            each(doubt);
            let Some(doubt) = doubt else {
                if j.detailed.is_none() && undetailed.len() < max_anomalies {
                    undetailed.push(example(&j, paths));
                }
                return;
            };
            if let Some(n) = counts.get_mut(&j.kind) {
                *n -= 1;
            }
            match j.detailed {
                Some(i) => dropped[i as usize] = true,
                None => *not_detailed -= 1,
            }
            let (kinds, examples) = out.by_doubt.entry(doubt).or_default();
            *kinds.entry(j.kind).or_insert(0) += 1;
            if examples.len() < SET_ASIDE_EXAMPLES {
                examples.push(example(&j, paths));
            }
        })?;
        self.counts.retain(|_, n| *n > 0);
        let mut i = 0;
        self.anomalies.retain(|_| {
            i += 1;
            !dropped[i - 1]
        });
        // The reserve's details beyond the limit: counted, not detailed.
        let over = self.anomalies.len().saturating_sub(self.max_anomalies);
        self.anomalies.truncate(self.max_anomalies);
        self.not_detailed += over as u64;
        // Counted anomalies the limit would have detailed, had their details not gone to
        // anomalies set aside after them were judged.
        undetailed.truncate(self.max_anomalies - self.anomalies.len());
        self.undetailed = undetailed;
        Ok(out)
    }

    /// The probes with an event processed so far that the rule of `kind` reads for an
    /// anomaly on `subject` (see [`Skipped`]): the `d_seq` kinds read its dentry's record, a
    /// NULL inode is judged at its name, whose dentries above gave it, and a hashed clear does
    /// both; the other kinds read only their own event and the operations.
    fn touched(&self, kind: AnomalyKind, subject: &Obs, paths: &Paths) -> u32 {
        let dentry = || {
            if subject.dentry == 0 {
                return 0;
            }
            self.on_dentry
                .get(subject.slot as usize)
                .copied()
                .unwrap_or(0)
        };
        let named = || {
            std::iter::successors(Some(subject.path), |&c| paths.parent(c))
                .filter_map(|p| self.at_path.get(p as usize))
                .fold(0, |a, b| a | b)
        };
        use AnomalyKind as K;
        match kind {
            K::SeqDelta | K::SeqDecreased | K::FoundUnhashed => dentry(),
            K::NullInodePositive => named(),
            K::ClearBeforeUnhash => dentry() | named(),
            K::ValidatedFlag | K::SpuriousEnoent | K::ResultDiffers => 0,
        }
    }

    /// Counts an anomaly on `subject` and details it with its context while under the limit.
    /// `late`: the subject arrived after the reorder window had passed its time.
    pub fn add(
        &mut self,
        kind: AnomalyKind,
        subject: &Obs,
        late: bool,
        operation: String,
        v: Ruling,
        paths: &Paths,
    ) {
        *self.counts.entry(kind).or_insert(0) += 1;
        // A late event may set aside anomalies detailed before later ones were counted: a
        // reserve of as many again as the limit is detailed, and those already set aside
        // leave room (up to four times the limit, so the details stay bounded). `set_aside`
        // trims back to the limit once the doubts are known.
        let detailed = self.anomalies.len() - self.detailed_in_doubt
            < self.max_anomalies.saturating_mul(2)
            && self.anomalies.len() < self.max_anomalies.saturating_mul(4);
        let judged = Judged {
            kind,
            probe: subject.probe,
            path: subject.path,
            slot: (subject.dentry != 0).then_some(subject.slot),
            ts_begin: subject.ts_begin,
            reach: subject.ts_end,
            detailed: detailed.then_some(self.anomalies.len() as u32),
            from_late: late && judged_in_order(kind),
            touched: self.touched(kind, subject, paths),
        };
        self.records.push(&judged);
        let mut cur = Some(subject.path);
        while let Some(c) = cur {
            if !self.under.insert(c) {
                // Its directories are in already.
                break;
            }
            cur = paths.parent(c);
        }
        if let Some(s) = judged.slot {
            self.slots.insert(s);
        }
        self.max_reach = self.max_reach.max(judged.reach);
        if !detailed {
            self.not_detailed += 1;
            return;
        }
        // Set aside from the start: it leaves room for a later one's details at once.
        if judged.from_late {
            self.detailed_in_doubt += 1;
        }
        self.open.push(Open {
            judged,
            doubted: judged.from_late,
        });
        let n = self.context as u64;
        let (a, b) = self.kept();
        let at = if a.last().is_some_and(|o| o.n < subject.n) {
            a.len() + b.partition_point(|o| o.n < subject.n)
        } else {
            a.partition_point(|o| o.n < subject.n)
        };
        let before_start = at.saturating_sub(self.context);
        let mut context: Vec<ContextLine> = a
            .iter()
            .chain(b)
            .skip(before_start)
            .take(at - before_start)
            .filter(|o| o.n + n >= subject.n)
            .map(|o| line(o, subject, paths))
            .collect();
        context.push(line(subject, subject, paths));
        let after: Vec<ContextLine> = a
            .iter()
            .chain(b)
            .skip(at)
            .filter(|o| o.n > subject.n)
            .take(self.context)
            .map(|o| line(o, subject, paths))
            .collect();
        let need = self.context - after.len();
        context.extend(after);
        let index = self.anomalies.len();
        self.anomalies.push(Anomaly {
            side: self.side,
            kind,
            name: paths.render(subject.path),
            operation,
            tid: subject.tid,
            ts_begin: subject.ts_begin,
            ts_end: subject.ts_end,
            dentry: (subject.dentry != 0).then_some(subject.dentry),
            generation: (subject.dentry != 0).then_some(subject.generation),
            why: v.why,
            evidence: v.evidence,
            context,
        });
        if need > 0 {
            self.collectors.push(Collector {
                index,
                need,
                subject: *subject,
            });
        }
    }
}

/// Adds `b` to the set at `i`, growing the table. Every probe event passes here twice: the
/// growth, rare, is out of line.
#[inline(always)]
fn add_bit(sets: &mut Vec<u32>, i: u32, b: u32) {
    match sets.get_mut(i as usize) {
        Some(set) => *set |= b,
        None => add_bit_growing(sets, i as usize, b),
    }
}

#[cold]
#[inline(never)]
fn add_bit_growing(sets: &mut Vec<u32>, i: usize, b: u32) {
    sets.resize(i + 1, 0);
    sets[i] |= b;
}

/// An anomaly as named in a reason: "kind on name at ts".
fn example(j: &Judged, paths: &Paths) -> String {
    format!(
        "{} on {} at {} ns",
        j.kind.name(),
        paths.render(j.path),
        j.ts_begin
    )
}

/// The kinds whose rule reads writer probes: the `d_seq` kinds, and the hashed clear (a
/// traced `d_delete` around it on its thread makes it legitimate).
fn reads_writers(kind: AnomalyKind) -> bool {
    reads_d_seq(kind) || kind == AnomalyKind::ClearBeforeUnhash
}

/// The kinds whose rule reads a dentry's `d_seq` values, which a lookup also reports.
fn reads_d_seq(kind: AnomalyKind) -> bool {
    matches!(
        kind,
        AnomalyKind::SeqDelta | AnomalyKind::SeqDecreased | AnomalyKind::ValidatedFlag
    )
}

/// One event of an anomaly's context.
fn line(o: &Obs, subject: &Obs, paths: &Paths) -> ContextLine {
    let name = match o.path2 {
        Some(p2) => format!("{} -> {}", paths.render(o.path), paths.render(p2)),
        None => paths.render(o.path),
    };
    ContextLine {
        ts_begin: o.ts_begin,
        ts_end: o.ts_end,
        tid: o.tid,
        event: match o.op {
            Some(k) => k.name().into(),
            None => o.probe.symbol().into(),
        },
        name,
        dentry: (o.dentry != 0).then_some(o.dentry),
        generation: (o.dentry != 0).then_some(o.generation),
        seq_begin: o.seq_begin,
        seq_end: o.seq_end,
        inode_begin: o.inode_begin,
        inode_end: o.inode_end,
        flags: flag_text(o.flags),
        result: o.op.map(|_| o.result),
        subject: o.n == subject.n,
        related: (o.dentry != 0 && o.dentry == subject.dentry)
            || o.path == subject.path
            || o.path2 == Some(subject.path),
    }
}

pub fn flag_text(f: u16) -> String {
    [
        (flags::HASHED_BEGIN, 'H'),
        (flags::HASHED_END, 'h'),
        (flags::VALIDATED, 'V'),
        (flags::NAME_TRUNCATED, 'T'),
        (flags::READ_FAULT, 'F'),
        (flags::NO_ENTRY, 'E'),
    ]
    .iter()
    .filter(|(bit, _)| f & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// An event's fields as JSON (timeline args, evidence).
pub fn obs_args(o: &Obs, paths: &Paths) -> Value {
    match o.op {
        Some(k) => json!({
            "operation": k.name(),
            "name": paths.render(o.path),
            "new_name": o.path2.map(|p| paths.render(p)),
            "result": o.result,
            "tid": o.tid,
            "ts_begin": o.ts_begin,
            "ts_end": o.ts_end,
        }),
        None => json!({
            "probe": o.probe.symbol(),
            "name": paths.render(o.path),
            "dentry": o.dentry,
            "generation": o.generation,
            "seq_begin": o.seq_begin,
            "seq_end": o.seq_end,
            "inode_begin": o.inode_begin,
            "inode_end": o.inode_end,
            "flags": flag_text(o.flags),
            "tid": o.tid,
            "ts_begin": o.ts_begin,
            "ts_end": o.ts_end,
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::diff::{align::ROOT, classify::Class};

    /// An RCU lookup numbered and timed `n` by thread 1, every other field zero.
    pub(crate) fn obs(n: u64) -> Obs {
        Obs {
            n,
            ts_begin: n,
            ts_end: n,
            tid: 1,
            probe: Probe::DLookupRcu,
            ..Obs::BLANK
        }
    }

    /// A thread's lookups keep the last [`LOOKUPS_KEPT`] pushed, oldest first, before and
    /// after their ring wraps.
    #[test]
    fn a_thread_keeps_its_last_lookups_in_order() {
        let paths = Paths::default();
        let mut e = Evidence::new(Side::Kernel, 0, 10);
        for n in 1..=3 * LOOKUPS_KEPT as u64 + 5 {
            *e.stage() = obs(n);
            e.push_lookup(2, n);
            e.commit(&paths, Probed::of(e.staged()));
            let kept: Vec<u64> = e.thread_lookups(2).map(|o| o.n).collect();
            let from = n.saturating_sub(LOOKUPS_KEPT as u64) + 1;
            assert_eq!(kept, (from..=n).collect::<Vec<u64>>(), "after {n}");
            assert_eq!(e.thread_lookups(1).count(), 0);
        }
    }

    /// A thread's lookups are read a reorder window after they were kept, when the context
    /// ring may have overwritten them many times: threads that look up rarely among many
    /// events keep their last lookups whole (the copies made at the ring's marks), and one
    /// that looks up often reads them from the ring. Every few events (and at every event
    /// near the end) each thread's lookups are compared with the last ones pushed, the
    /// observations whole.
    #[test]
    fn lookups_outlive_the_context_ring() {
        let paths = Paths::default();
        let mut e = Evidence::new(Side::Kernel, 3, 10);
        let cap = e.ring.cap as u64;
        let mut pushed: Vec<Vec<Obs>> = vec![Vec::new(); 4];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut compared = 0;
        for n in 1..=10 * cap {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Thread 0 looks up every other event, 1 one event in 1,000, 2 one in 9,000;
            // thread 3 never.
            let thread = match x % 18_000 {
                0..=8_999 => Some(0),
                9_000..=9_017 => Some(1),
                9_018..=9_019 => Some(2),
                _ => None,
            };
            let mut o = obs(n);
            o.ts_begin = x;
            o.tid = thread.map_or(7, |t| t as u32);
            *e.stage() = o;
            if let Some(t) = thread {
                e.push_lookup(t, n);
                pushed[t].push(o);
            }
            e.commit(&paths, Probed::of(e.staged()));
            if n % 97 == 0 || n + 10 > 10 * cap {
                for (t, p) in pushed.iter().enumerate() {
                    let kept: Vec<Obs> = e.thread_lookups(t).copied().collect();
                    let want = &p[p.len().saturating_sub(LOOKUPS_KEPT)..];
                    assert_eq!(
                        format!("{kept:?}"),
                        format!("{want:?}"),
                        "thread {t} after {n}"
                    );
                    compared += want.len();
                }
            }
        }
        // The rare threads' lookups were read long after the ring overwrote them.
        assert!(pushed[2].len() >= 2, "{}", pushed[2].len());
        assert!(compared > 5_000, "{compared}");
        assert!(e
            .lookups
            .per
            .iter()
            .all(|l| l.spilled.len() <= LOOKUPS_KEPT));
    }

    /// Once the ring has wrapped, an anomaly's context still comes in processing order,
    /// across the point where the ring's oldest and newest meet, and the events after it are
    /// collected as they come.
    #[test]
    fn context_is_in_order_across_the_ring_s_wrap() {
        let paths = Paths::default();
        let mut e = Evidence::new(Side::Kernel, 2, 10);
        let cap = e.ring.cap as u64;
        for n in 1..=cap + 900 {
            e.keep(&obs(n), &paths);
        }
        let ruling = || Ruling {
            class: Class::Anomaly,
            why: String::new(),
            evidence: serde_json::Map::new(),
        };
        let ts = |a: &Anomaly| a.context.iter().map(|c| c.ts_begin).collect::<Vec<_>>();
        // The last event before the wrap point, with its context on both sides of it.
        e.add(
            AnomalyKind::SeqDelta,
            &obs(cap),
            false,
            String::new(),
            ruling(),
            &paths,
        );
        assert_eq!(
            ts(&e.anomalies[0]),
            vec![cap - 2, cap - 1, cap, cap + 1, cap + 2]
        );
        // The newest event: its context after it comes with the next events.
        e.add(
            AnomalyKind::SeqDelta,
            &obs(cap + 900),
            false,
            String::new(),
            ruling(),
            &paths,
        );
        e.keep(&obs(cap + 901), &paths);
        e.keep(&obs(cap + 902), &paths);
        let last = cap + 900;
        assert_eq!(
            ts(&e.anomalies[1]),
            vec![last - 2, last - 1, last, last + 1, last + 2]
        );
        // Older than the ring: nothing before it, after it the oldest events still kept.
        e.add(
            AnomalyKind::SeqDelta,
            &obs(800),
            false,
            String::new(),
            ruling(),
            &paths,
        );
        assert_eq!(ts(&e.anomalies[2]), vec![800, 903, 904]);
    }

    /// Before the ring is full, when it has just filled and once it wrapped by one, an
    /// anomaly's context is its neighbours in processing order: the ring writes in place from
    /// its first event, so where its oldest event is depends on how far it has filled.
    #[test]
    fn context_is_in_order_as_the_ring_fills() {
        let paths = Paths::default();
        let cap = Evidence::new(Side::Kernel, 3, 100).ring.cap as u64;
        for kept in [1, 4, 10, cap - 1, cap, cap + 1, cap + 3] {
            let mut e = Evidence::new(Side::Kernel, 3, 100);
            for n in 1..=kept {
                e.keep(&obs(n), &paths);
            }
            for (i, subject) in [1, kept / 2 + 1, kept].into_iter().enumerate() {
                e.add(
                    AnomalyKind::SeqDelta,
                    &obs(subject),
                    false,
                    String::new(),
                    ruling(),
                    &paths,
                );
                // Before it, what the ring still holds; it; after it, the first kept.
                let oldest = kept.saturating_sub(cap) + 1;
                let expected: Vec<u64> = (subject.saturating_sub(3).max(oldest)..subject)
                    .chain([subject])
                    .chain(((subject + 1).max(oldest)..=kept).take(3))
                    .collect();
                let seen: Vec<u64> = e.anomalies[i].context.iter().map(|c| c.ts_begin).collect();
                assert_eq!(seen, expected, "{kept} kept, subject {subject}");
            }
        }
    }

    fn ruling() -> Ruling {
        Ruling {
            class: Class::Anomaly,
            why: String::new(),
            evidence: serde_json::Map::new(),
        }
    }

    /// Every anomaly's doubt, in judgment order.
    fn doubts(e: &mut Evidence, paths: &Paths) -> Vec<Option<Doubt>> {
        let mut out = Vec::new();
        e.set_aside(paths, |d| out.push(d)).expect("records");
        out
    }

    /// Which of `anomalies` (judged in this order) the `lates`, arriving after them, set aside.
    fn set_aside_after(
        anomalies: &[(AnomalyKind, Obs)],
        lates: &[Obs],
        paths: &Paths,
    ) -> Vec<bool> {
        let mut e = Evidence::new(Side::Kernel, 0, 10);
        for (kind, subject) in anomalies {
            e.add(*kind, subject, false, String::new(), ruling(), paths);
        }
        for l in lates {
            e.late(l, 10, paths);
        }
        doubts(&mut e, paths).iter().map(|d| d.is_some()).collect()
    }

    /// A late event sets aside only the anomalies its kind can explain, and only those on
    /// the names it reaches: a `drop_caches` (the root's empty path) or a stat none of the
    /// existence ones, an unlink of a directory those below it, a stat a `result-differs` on
    /// its own name, a lookup a `d_seq` finding on its dentry.
    #[test]
    fn a_late_event_sets_aside_what_its_rule_reads() {
        let mut paths = Paths::default();
        let (ax, by) = (paths.parse(b"a/x"), paths.parse(b"b/y"));
        let a = paths.parse(b"a");
        let at = |path, dentry, slot| Obs {
            path,
            dentry,
            slot,
            ts_end: 100,
            ..obs(50)
        };
        let op = |kind, path| Obs {
            op: Some(kind),
            probe: Probe::Op,
            ..at(path, 0, 0)
        };
        // The three anomalies, then the late events so far: what is set aside.
        let after = |lates: &[Obs]| {
            set_aside_after(
                &[
                    (AnomalyKind::SpuriousEnoent, at(ax, 0, 0)),
                    (AnomalyKind::ResultDiffers, at(by, 0, 0)),
                    (AnomalyKind::SeqDelta, at(by, 7, 3)),
                ],
                lates,
                &paths,
            )
        };
        let mut lates = vec![
            op(OpKind::DropCaches, ROOT),
            op(OpKind::Stat, ax),
            op(OpKind::Stat, a),
        ];
        assert_eq!(after(&lates), [false, false, false]);
        lates.push(op(OpKind::Unlink, a));
        assert_eq!(after(&lates), [true, false, false]);
        lates.push(op(OpKind::Stat, by));
        assert_eq!(after(&lates), [true, true, false]);
        lates.push(at(by, 7, 3));
        assert_eq!(after(&lates), [true, true, true]);
    }

    /// A late writer probe (a kill) sets aside only the kinds whose rule reads writer probes:
    /// on its dentry or name the `d_seq` kinds and the hashed clear, not a NULL inode, an
    /// ENOENT or a result difference (rule 4: a kill excuses nothing); on a directory above,
    /// also a NULL inode below it, whose name the directory's dentry gave.
    #[test]
    fn a_late_writer_probe_sets_aside_what_reads_writer_probes() {
        let mut paths = Paths::default();
        let (a, ax) = (paths.parse(b"a"), paths.parse(b"a/x"));
        let at = |path, dentry, slot| Obs {
            path,
            dentry,
            slot,
            ts_end: 100,
            ..obs(50)
        };
        let kill = |path, dentry, slot| Obs {
            probe: Probe::DentryKill,
            ..at(path, dentry, slot)
        };
        let after = |lates: &[Obs]| {
            set_aside_after(
                &[
                    (AnomalyKind::NullInodePositive, at(ax, 7, 3)),
                    (AnomalyKind::SpuriousEnoent, at(ax, 0, 0)),
                    (AnomalyKind::ResultDiffers, at(ax, 0, 0)),
                    (AnomalyKind::ClearBeforeUnhash, at(ax, 7, 3)),
                    (AnomalyKind::SeqDelta, at(ax, 7, 3)),
                ],
                lates,
                &paths,
            )
        };
        let mut lates = vec![kill(ax, 7, 3)];
        assert_eq!(after(&lates), [false, false, false, true, true]);
        lates.push(kill(a, 8, 4));
        assert_eq!(after(&lates), [true, false, false, true, true]);
    }

    /// Skipped entries set aside what read the skipped probe's events, through the records:
    /// an anomaly on its own event; the kinds reading a dentry's record after one of its
    /// events on that dentry; the kinds judged at a name after one on the name (another
    /// dentry of it) or a directory above. Nothing whose dentry and names no event of the
    /// probe touched before its judgment: a sibling, the same dentry later, a probe not
    /// skipped. Never an ENOENT, a result difference or another probe's `validated-flag`.
    #[test]
    fn skipped_entries_set_aside_what_read_the_probe_s_events() {
        use AnomalyKind as K;
        let mut paths = Paths::default();
        let (d, df, dg, dh, ex) = (
            paths.parse(b"d"),
            paths.parse(b"d/f"),
            paths.parse(b"d/g"),
            paths.parse(b"d/h"),
            paths.parse(b"e/x"),
        );
        let ev = |n, probe, path, slot: u32| Obs {
            probe,
            path,
            dentry: 0x1000 + u64::from(slot),
            slot,
            ..obs(n)
        };
        // Every kind judged on `subject`'s event (dentry 7 at d/f) after `before`, then
        // `after`: the kinds set aside with `skipped`.
        let aside = |before: &[Obs], after: &[Obs], skipped: Skipped, subject: Probe| {
            let mut e = Evidence::new(Side::Kernel, 0, 100);
            for o in before {
                e.keep(o, &paths);
            }
            let s = ev(50, subject, df, 7);
            e.keep(&s, &paths);
            for k in K::ALL {
                e.add(k, &s, false, String::new(), ruling(), &paths);
            }
            for o in after {
                e.keep(o, &paths);
            }
            e.skipped(skipped);
            let d = doubts(&mut e, &paths);
            assert!(d.iter().flatten().all(|d| *d == Doubt::SkippedEntry));
            K::ALL
                .into_iter()
                .zip(d)
                .filter_map(|(k, d)| d.map(|_| k))
                .collect::<Vec<_>>()
        };
        let of = |p: &[Probe]| Skipped::of(p.iter().copied());
        let kill = Probe::DentryKill;
        let rcu = Probe::DLookupRcu;
        let record = [
            K::ClearBeforeUnhash,
            K::SeqDelta,
            K::SeqDecreased,
            K::FoundUnhashed,
        ];
        let named = [K::NullInodePositive, K::ClearBeforeUnhash];
        assert_eq!(aside(&[], &[], of(&[]), rcu), []);
        assert_eq!(aside(&[], &[], of(&[rcu]), rcu), K::ALL);
        assert_eq!(aside(&[], &[], of(&[kill]), kill), K::ALL);
        // The skipped probe's events elsewhere, or after the judgment: nothing.
        let elsewhere = [ev(1, kill, dg, 8), ev(2, rcu, dg, 8), ev(3, kill, ex, 9)];
        let later = [ev(60, kill, df, 7), ev(61, kill, d, 3)];
        assert_eq!(aside(&elsewhere, &later, of(&[kill]), rcu), []);
        assert_eq!(aside(&elsewhere, &later, of(&[Probe::DLookup]), rcu), []);
        // On the dentry, under the name it had before: what reads its record.
        assert_eq!(aside(&[ev(1, kill, dh, 7)], &[], of(&[kill]), rcu), record);
        assert_eq!(
            aside(
                &[ev(1, Probe::DLookup, dh, 7)],
                &[],
                of(&[Probe::DLookup]),
                rcu
            ),
            record
        );
        // On the name (another dentry of it) or the directory above: what is judged at it.
        assert_eq!(aside(&[ev(1, kill, df, 9)], &[], of(&[kill]), rcu), named);
        assert_eq!(
            aside(
                &[ev(1, Probe::DLookup, d, 3)],
                &[],
                of(&[Probe::DLookup]),
                rcu
            ),
            named
        );
        // `__d_move`'s programs record its target's events too.
        let target = [ev(1, Probe::DMoveTarget, dh, 7)];
        assert_eq!(aside(&target, &[], of(&[Probe::DMove]), rcu), record);
        // A footer symbol no probe has: every probe's events in doubt, not the operations.
        let foreign = Skipped::of_symbols(["foreign"]);
        assert_eq!(aside(&elsewhere, &[], foreign, Probe::Op), []);
        assert_eq!(aside(&[ev(1, kill, d, 3)], &[], foreign, Probe::Op), named);
        assert_eq!(aside(&[], &[], foreign, rcu), K::ALL);
    }

    /// A lost call of a life-ending probe (or of a symbol no probe has) sets aside the kinds
    /// reading a dentry's record or a binding's name, whatever their dentry and probes; a
    /// lost call of another probe, nothing. A skip that touched the anomaly is named first.
    #[test]
    fn a_lost_death_sets_aside_what_reads_a_record_or_a_binding() {
        use AnomalyKind as K;
        let mut paths = Paths::default();
        let df = paths.parse(b"d/f");
        let aside = |lost: &[&str], skipped: &[Probe]| {
            let mut e = Evidence::new(Side::Kernel, 0, 100);
            let s = Obs {
                probe: Probe::DLookupRcu,
                path: df,
                dentry: 0x1007,
                slot: 7,
                ..obs(50)
            };
            e.keep(&s, &paths);
            for k in K::ALL {
                e.add(k, &s, false, String::new(), ruling(), &paths);
            }
            e.skipped(
                Skipped::of(skipped.iter().copied()).lost_deaths(lost.iter().map(|s| Some(*s))),
            );
            K::ALL
                .into_iter()
                .zip(doubts(&mut e, &paths))
                .filter_map(|(k, d)| d.map(|d| (k, d)))
                .collect::<Vec<_>>()
        };
        let lives = [
            K::SeqDelta,
            K::SeqDecreased,
            K::FoundUnhashed,
            K::NullInodePositive,
            K::ClearBeforeUnhash,
        ];
        let by = |d: Doubt| {
            let mut v: Vec<_> = lives.iter().map(|k| (*k, d)).collect();
            v.sort();
            v
        };
        for p in LIFE_ENDING {
            let mut got = aside(&[p.symbol()], &[]);
            got.sort();
            assert_eq!(got, by(Doubt::LostDeath), "{p:?}");
        }
        let mut got = aside(&["foreign"], &[]);
        got.sort();
        assert_eq!(got, by(Doubt::LostDeath));
        // A loss of a probe unknown (a `cpu_seq` hole no drop accounts for).
        assert!(Skipped::default()
            .lost_deaths([None])
            .doubts_life(K::SeqDecreased));
        assert_eq!(
            aside(&[Probe::DLookup.symbol(), Probe::DAdd.symbol()], &[]),
            []
        );
        let kill = [Probe::DentryKill.symbol()];
        assert!(aside(&kill, &[Probe::DLookupRcu])
            .iter()
            .all(|(_, d)| *d == Doubt::SkippedEntry));
    }

    /// A late event changes only what was judged before it arrived and ends at or after its
    /// key; a cut only what reaches within its bound of the end; a late event wins over the
    /// cut. The record read back is the record written.
    #[test]
    fn doubts_follow_judgment_order_reach_and_the_cut() {
        let mut paths = Paths::default();
        let f = paths.parse(b"d/f");
        let d = paths.parse(b"d");
        let at = |ts_end| Obs {
            path: f,
            ts_end,
            ..obs(1)
        };
        let unlink = Obs {
            op: Some(OpKind::Rmdir),
            probe: Probe::Op,
            path: d,
            ..obs(2)
        };
        let mut e = Evidence::new(Side::Kernel, 0, 10);
        // Judged before the late rmdir: ends before its key, at it, after it.
        for end in [40, 50, 900] {
            e.add(
                AnomalyKind::SpuriousEnoent,
                &at(end),
                false,
                String::new(),
                ruling(),
                &paths,
            );
        }
        e.late(&unlink, 50, &paths);
        // Judged after it: not its doing; near the cut, or not.
        for end in [60, 950] {
            e.add(
                AnomalyKind::SpuriousEnoent,
                &at(end),
                false,
                String::new(),
                ruling(),
                &paths,
            );
        }
        e.cut(900, 900);
        assert_eq!(
            doubts(&mut e, &paths),
            [
                None,
                Some(Doubt::LateEvent),
                Some(Doubt::LateEvent),
                None,
                Some(Doubt::NearCut)
            ]
        );
        assert_eq!(e.counts[&AnomalyKind::SpuriousEnoent], 2);
        for j in [
            Judged {
                kind: AnomalyKind::ResultDiffers,
                probe: Probe::Op,
                path: 7,
                slot: Some(0),
                ts_begin: u64::MAX,
                reach: 3,
                detailed: None,
                from_late: false,
                touched: 0,
            },
            Judged {
                kind: AnomalyKind::NullInodePositive,
                probe: Probe::DDropLocked,
                path: u32::MAX,
                slot: None,
                ts_begin: 0,
                reach: u64::MAX,
                detailed: Some(5),
                from_late: true,
                touched: u32::MAX - 6,
            },
        ] {
            assert_eq!(Judged::decode(&j.encode()), Some(j));
        }
        for (i, k) in AnomalyKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i, "ALL in declaration order: {k:?}");
        }
    }

    /// A bug that fires on every event: a hundred thousand anomalies keep the side's memory
    /// at the limit's details and the late events that touch their names, the counts exact,
    /// and a late rmdir of the directory above a third of them sets exactly those aside.
    #[test]
    fn many_anomalies_keep_memory_bounded_and_counts_exact() {
        let mut paths = Paths::default();
        let names: Vec<PathId> = (0..3)
            .map(|i| paths.parse(format!("d{i}/f").as_bytes()))
            .collect();
        let d1 = paths.parse(b"d1");
        let mut e = Evidence::new(Side::Kernel, 2, 5);
        let n = 100_000u64;
        for i in 0..n {
            let o = Obs {
                path: names[(i % 3) as usize],
                ts_end: i + 10,
                ..obs(i + 1)
            };
            e.keep(&o, &paths);
            e.add(
                AnomalyKind::SpuriousEnoent,
                &o,
                false,
                String::new(),
                ruling(),
                &paths,
            );
        }
        let rmdir = Obs {
            op: Some(OpKind::Rmdir),
            probe: Probe::Op,
            path: d1,
            ..obs(n + 1)
        };
        e.late(&rmdir, 0, &paths);
        // A late stat elsewhere is not kept: it touches no anomaly's name.
        let elsewhere = paths.parse(b"other");
        e.late(
            &Obs {
                op: Some(OpKind::Stat),
                probe: Probe::Op,
                path: elsewhere,
                ..obs(n + 2)
            },
            0,
            &paths,
        );
        assert_eq!(e.records.len, n);
        // What stays in memory: the reserve's details (four times the limit at most), the
        // names and the one late event that touches them.
        assert!(
            e.open.len() <= 20 && e.anomalies.len() <= 20,
            "{}",
            e.open.len()
        );
        assert_eq!(e.lates.len(), 1);
        assert_eq!(e.under.len(), 7, "three names, their directories, the root");
        let paths = &paths;
        let mut marks = 0u64;
        let out = e.set_aside(paths, |_| marks += 1).expect("records");
        assert_eq!(marks, n);
        let aside = n / 3;
        assert_eq!(
            out.by_doubt[&Doubt::LateEvent].0[&AnomalyKind::SpuriousEnoent],
            aside
        );
        assert_eq!(e.counts[&AnomalyKind::SpuriousEnoent], n - aside);
        assert_eq!(e.anomalies.len(), 5);
        assert!(e.anomalies.iter().all(|a| a.name != "d1/f"));
        assert_eq!(e.not_detailed, n - aside - 5);
        assert!(e.undetailed.is_empty());
    }
}
