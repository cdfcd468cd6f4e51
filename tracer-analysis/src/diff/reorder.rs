//! The bounded reorder window of one trace: events arrive in completion order within a few
//! CPUs' jitter (the recorder) or in begin order (the model), and leave in key order: writers
//! and operations by their begin, lookups by their return, so a lookup comes after every writer
//! that could have written what it read. An event whose key is a window behind the newest begin
//! seen cannot be overtaken any more.
use tracer_common::Probe;

use crate::trace::Record;

use super::{
    event::{Ev, NameNo, Numbers, Slot},
    feed::RELEASED_ROOM,
    runs::{Pack, PackFrom, Runs, BLOCK},
};

/// The time an event is ordered by.
#[inline(always)]
pub fn key_of(ev: &Ev) -> u64 {
    key_time(ev.probe, ev.ts_begin, ev.ts_end)
}

/// The time an event of probe code `probe` running from `begin` to `end` is ordered by. The
/// code compared directly: it is what `Probe::is_lookup` of the decoded probe answers,
/// without the decoding.
#[inline(always)]
pub fn key_time(probe: u8, begin: u64, end: u64) -> u64 {
    if keyed_by_end(probe) {
        end
    } else {
        begin
    }
}

/// Whether events of probe code `probe` are ordered by their end (lookups) or their begin.
#[inline(always)]
fn keyed_by_end(probe: u8) -> bool {
    probe == Probe::DLookupRcu as u8 || probe == Probe::DLookup as u8
}

/// An event as the window parks it, 56 bytes where the event and its arrival number are 80:
/// its key (the time it is ordered by, above its arrival number) as the step from the key of
/// the event before it in its run, its other time as its duration, its inodes and CPU
/// narrowed. On the bench's traces nearly every step is below a microsecond and a few
/// arrivals. An event any of whose values does not fit is parked whole ([`Pack::WIDE`]).
///
/// The fields it keeps whole come first, in [`Ev`]'s order (`tid` to `name`, 32 bytes), and
/// `seq_begin` to `aux` in the trace record's: moved as a few wide copies, not field by field.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Parked {
    tid: u32,
    seq_begin: u32,
    seq_end: u32,
    aux: u32,
    result: i32,
    dentry: Slot,
    parent: Slot,
    name: NameNo,
    /// The step's time and arrival parts (arrivals rise in a run, so the step borrows
    /// nothing from its time part).
    step_time: u32,
    duration: u32,
    inode_begin: u32,
    inode_end: u32,
    step_arrival: u16,
    cpu: u16,
    flags: u16,
    probe: u8,
    wide: bool,
}

const _: () = assert!(std::mem::size_of::<Parked>() == 56);

// The fields kept whole lie at the same distances from `tid` in both forms.
const _: () = {
    use std::mem::offset_of;
    let (e, p) = (offset_of!(Ev, tid), offset_of!(Parked, tid));
    assert!(offset_of!(Ev, seq_begin) - e == offset_of!(Parked, seq_begin) - p);
    assert!(offset_of!(Ev, seq_end) - e == offset_of!(Parked, seq_end) - p);
    assert!(offset_of!(Ev, aux) - e == offset_of!(Parked, aux) - p);
    assert!(offset_of!(Ev, result) - e == offset_of!(Parked, result) - p);
    assert!(offset_of!(Ev, dentry) - e == offset_of!(Parked, dentry) - p);
    assert!(offset_of!(Ev, parent) - e == offset_of!(Parked, parent) - p);
    assert!(offset_of!(Ev, name) - e == offset_of!(Parked, name) - p);
};

impl Pack for Ev {
    type Packed = Parked;
    const WIDE: Parked = Parked {
        step_time: 0,
        duration: 0,
        inode_begin: 0,
        inode_end: 0,
        dentry: 0,
        parent: 0,
        tid: 0,
        name: 0,
        seq_begin: 0,
        seq_end: 0,
        aux: 0,
        result: 0,
        step_arrival: 0,
        cpu: 0,
        flags: 0,
        probe: 0,
        wide: true,
    };

    #[inline(always)]
    fn is_wide(p: &Parked) -> bool {
        p.wide
    }

    #[inline(always)]
    fn step(p: &Parked) -> u128 {
        u128::from(p.step_time) << 64 | u128::from(p.step_arrival)
    }

    /// The event, its times from its key's.
    #[inline(always)]
    fn unpack(p: &Parked, key: u128) -> Ev {
        let time = (key >> 64) as u64;
        let duration = u64::from(p.duration);
        let (ts_begin, ts_end) = if keyed_by_end(p.probe) {
            (time.wrapping_sub(duration), time)
        } else {
            (time, time.wrapping_add(duration))
        };
        Ev {
            ts_begin,
            ts_end,
            inode_begin: u64::from(p.inode_begin),
            inode_end: u64::from(p.inode_end),
            dentry: p.dentry,
            parent: p.parent,
            tid: p.tid,
            cpu: u32::from(p.cpu),
            seq_begin: p.seq_begin,
            seq_end: p.seq_end,
            aux: p.aux,
            result: p.result,
            name: p.name,
            flags: p.flags,
            probe: p.probe,
        }
    }
}

/// An event as it arrives: its record and the numbers of its pointers and name. It is
/// packed straight from the record.
#[derive(Clone, Copy)]
pub struct Arrival<'c> {
    pub rec: Record<'c>,
    pub numbers: Numbers,
}

impl PackFrom<Ev> for Arrival<'_> {
    #[inline(always)]
    fn pack_into(&self, step: u128, slot: &mut Parked) -> bool {
        pack(&Ev::of(&self.rec, self.numbers), step, slot)
    }

    #[inline(always)]
    fn whole(&self) -> Ev {
        Ev::of(&self.rec, self.numbers)
    }
}

/// Writes `ev` packed into `slot`, `step` past its run's last key; false when it does not fit.
#[inline(always)]
fn pack(ev: &Ev, step: u128, slot: &mut Parked) -> bool {
    let step_time = (step >> 64) as u64;
    let step_arrival = step as u64;
    let duration = ev.ts_end.wrapping_sub(ev.ts_begin);
    // One test for every value that is narrowed.
    if ((step_time | duration | ev.inode_begin | ev.inode_end) >> 32
        | (step_arrival | u64::from(ev.cpu)) >> 16)
        != 0
    {
        return false;
    }
    *slot = Parked {
        step_time: step_time as u32,
        duration: duration as u32,
        inode_begin: ev.inode_begin as u32,
        inode_end: ev.inode_end as u32,
        dentry: ev.dentry,
        parent: ev.parent,
        tid: ev.tid,
        name: ev.name,
        seq_begin: ev.seq_begin,
        seq_end: ev.seq_end,
        aux: ev.aux,
        result: ev.result,
        step_arrival: step_arrival as u16,
        cpu: ev.cpu as u16,
        flags: ev.flags,
        probe: ev.probe,
        wide: false,
    };
    true
}

// A block of the window's runs is larger than a batch of released events as a batch is first
// made (one that grows past it, after a gap longer than the window, or any other large chunk
// freed, can still raise the threshold below; rev18's F1, seen in no run): glibc's malloc
// serves a request from its heaps, not from a mapping of its own, when it is below the largest
// mapped block freed so far (a batch, freed by the analysis thread), and blocks of 4,096
// events (328 KB) fell between freed batches, whose room then went unused: 1 M events a side
// peaked at 271 MiB instead of 195 (small pages; with the threshold fixed by
// `glibc.malloc.mmap_threshold`, 193 and 192).
const _: () =
    assert!(BLOCK * std::mem::size_of::<Parked>() > RELEASED_ROOM * std::mem::size_of::<Ev>());

/// An event's whole key: its time above its arrival number (which never reaches
/// `u64::MAX`, so the key is below `u128::MAX` as the runs need).
#[inline(always)]
fn key_of_arrival(time: u64, arrival: u64) -> u128 {
    (time as u128) << 64 | arrival as u128
}

/// The key below which a parked event is due: one whose time `t` has
/// `t.saturating_add(window) <= watermark`. One comparison of whole keys a pop, where the time
/// was taken out of the key and added to first. Keys are below `u128::MAX`, so that bound
/// takes every key (at a watermark of `u64::MAX` every time is due, even one whose sum
/// saturated).
#[inline(always)]
fn due_below(watermark: u64, window: u64) -> u128 {
    match watermark.checked_sub(window) {
        _ if watermark == u64::MAX => u128::MAX,
        Some(last) => (u128::from(last) + 1) << 64,
        None => 0,
    }
}

pub struct Reorder {
    window_ns: u64,
    // By (key, arrival): events arriving in key order (most of them) queue in one sorted run,
    // operations and writers overtaken by what ran inside them in another.
    events: Runs<Ev, 8>,
    /// Events taken in so far.
    pub arrivals: u64,
    /// The newest begin seen.
    watermark: u64,
    /// The most events held at once.
    pub max_depth: u64,
    depth: u64,
}

impl Reorder {
    pub fn new(window_ns: u64) -> Reorder {
        Reorder {
            window_ns,
            events: Runs::default(),
            arrivals: 0,
            watermark: 0,
            max_depth: 0,
            depth: 0,
        }
    }

    /// Takes in an event beginning at `begin`, ordered by `key` ([`key_of`], which the caller
    /// computed from its record).
    #[inline(always)]
    pub fn insert(&mut self, key: u64, begin: u64, ev: impl PackFrom<Ev>) {
        self.arrivals += 1;
        self.watermark = self.watermark.max(begin);
        let arrival = self.arrivals;
        self.events.push(key_of_arrival(key, arrival), ev);
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
    }

    /// Appends to `out`, in key order, the events nothing can overtake any more.
    #[inline(always)]
    pub fn pop_due(&mut self, out: &mut Vec<Ev>) {
        let limit = due_below(self.watermark, self.window_ns);
        let before = out.len();
        self.events.pop_while(|k| k < limit, |ev| out.push(ev));
        self.depth -= (out.len() - before) as u64;
    }

    /// Appends to `out` the next `most` events in key order, or all that are left when fewer
    /// (draining at the end): copied once, from where they lie into `out` (one `pop` an event
    /// copied each twice more through its `Option`, callgrind).
    pub fn drain_into(&mut self, out: &mut Vec<Ev>, most: usize) {
        let before = out.len();
        let mut left = most;
        let mut more = || left.checked_sub(1).map(|l| left = l).is_some();
        self.events.pop_while(|_| more(), |ev| out.push(ev));
        self.depth -= (out.len() - before) as u64;
    }

    /// The next event in key order.
    #[cfg(test)]
    pub fn pop(&mut self) -> Option<Ev> {
        let mut out = Vec::with_capacity(1);
        self.drain_into(&mut out, 1);
        out.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound keys are compared with says due exactly when the time plus the window is at
    /// most the watermark, at the edges of both and where the sum saturates.
    #[test]
    fn the_due_bound_is_the_saturating_sum() {
        let edges = [0, 1, 2, 99, 100, 101, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for window in edges {
            for watermark in edges {
                let limit = due_below(watermark, window);
                for time in edges {
                    for arrival in [1, 2, u64::MAX - 1] {
                        let key = key_of_arrival(time, arrival);
                        let due = time.saturating_add(window) <= watermark;
                        assert_eq!(key < limit, due, "{time} + {window} vs {watermark}");
                    }
                }
            }
        }
    }

    /// The probe code compared directly orders an event as its decoded probe does, for every
    /// code.
    #[test]
    fn key_time_is_the_decoded_probes_choice() {
        for code in 0..=u8::MAX {
            let decoded = crate::codes::probe_of(code).is_some_and(Probe::is_lookup);
            assert_eq!(
                key_time(code, 1, 2),
                if decoded { 2 } else { 1 },
                "code {code}"
            );
        }
    }

    /// Events at equal times, in different runs (lookups by their end, operations by their
    /// begin, arriving late), leave in arrival order: the key's time is its high half.
    #[test]
    fn equal_times_leave_in_arrival_order() {
        let mut rnd = crate::test_rng::xorshift(11u64);
        let probes = [
            Probe::DLookup,
            Probe::DLookupRcu,
            Probe::Op,
            Probe::DDropInner,
        ];
        let mut r = Reorder::new(5);
        let mut all = Vec::new();
        let mut out = Vec::new();
        for i in 0..3000u64 {
            let probe = probes[rnd(4) as usize];
            let b = i / 4 - rnd(3).min(i / 4);
            let e = b + rnd(3);
            let mut x = ev(probe, b, e);
            x.tid = i as u32;
            all.push(x);
            r.insert_ev(x);
            r.pop_due(&mut out);
        }
        while let Some(x) = r.pop() {
            out.push(x);
        }
        // A stable sort keeps arrival order among equal times.
        all.sort_by_key(key_of);
        let order = |v: &[Ev]| v.iter().map(|x| x.tid).collect::<Vec<_>>();
        assert_eq!(order(&out), order(&all));
    }

    /// Draining hands out at most the events asked for each time, in key order, and all of
    /// them in the end.
    #[test]
    fn draining_hands_out_the_events_asked_for_in_key_order() {
        let mut r = Reorder::new(u64::MAX);
        let mut want = Vec::new();
        for i in 0..100u64 {
            let x = ev(Probe::DDropInner, (i * 37) % 101, 0);
            want.push(x.ts_begin);
            r.insert_ev(x);
        }
        want.sort_unstable();
        let mut out = Vec::new();
        for most in [0, 1, 7, 30] {
            let before = out.len();
            r.drain_into(&mut out, most);
            assert_eq!(out.len() - before, most);
        }
        r.drain_into(&mut out, 1000);
        assert_eq!(out.len(), 100);
        r.drain_into(&mut out, 5);
        assert_eq!(out.iter().map(|e| e.ts_begin).collect::<Vec<_>>(), want);
        assert_eq!(r.depth, 0);
    }

    /// A window drained at the trace's end gives back its blocks as their events are out:
    /// it holds no more than its events left need, one a run and the spares, where every
    /// block read through was kept to the end.
    #[test]
    fn draining_frees_the_blocks_read_through() {
        use crate::diff::runs::SPARE_BLOCKS;
        let mut r = Reorder::new(u64::MAX);
        let n = (SPARE_BLOCKS + 5) as u64 * BLOCK as u64 + 100;
        for i in 0..n {
            r.insert_ev(ev(Probe::DDropInner, i, i));
        }
        assert_eq!(r.events.blocks(), SPARE_BLOCKS + 6);
        let mut out = Vec::new();
        while r.depth > 0 {
            r.drain_into(&mut out, 4096);
            let needed = (r.depth as usize).div_ceil(BLOCK) + 1 + SPARE_BLOCKS;
            assert!(
                r.events.blocks() <= needed,
                "{} blocks for {}",
                r.events.blocks(),
                r.depth
            );
        }
        assert_eq!(out.len() as u64, n);
        assert!(out.windows(2).all(|p| p[0].ts_begin < p[1].ts_begin));
    }

    /// Every field of an event, to compare events whole.
    fn fields(e: &Ev) -> String {
        format!("{e:?}")
    }

    /// An event as the bench and a kernel make them (times a microsecond apart, small
    /// inodes and CPUs) is parked packed, in 56 bytes where it and its arrival number took 80.
    #[test]
    fn a_usual_event_is_parked_packed_in_56_bytes() {
        assert_eq!(std::mem::size_of::<Parked>(), 56);
        let mut x = ev(
            Probe::DLookupRcu,
            1_700_000_000_000_000_000,
            1_700_000_000_000_000_900,
        );
        (x.inode_begin, x.inode_end, x.cpu, x.seq_begin, x.aux) =
            (4_000_000, 4_000_001, 63, 7, 0x8);
        let mut slot = <Ev as Pack>::WIDE;
        let step = key_of_arrival(1_000, 3);
        assert!(pack(&x, step, &mut slot));
        assert!(!Ev::is_wide(&slot));
        assert_eq!(Ev::step(&slot), step);
        let back = Ev::unpack(&slot, key_of_arrival(key_of(&x), 99));
        assert_eq!(fields(&back), fields(&x));
    }

    /// Events whose values do not fit the packed form (a step of 2^32 ns or 2^16 arrivals
    /// from the event before in the run, a duration of 2^32 ns, an end before the begin,
    /// inodes of 2^32, CPU numbers of 2^16) are parked whole, and every event leaves the
    /// window whole and in key order, as a stable sort of the input orders them.
    #[test]
    fn events_that_do_not_pack_leave_whole_and_in_order() {
        let mut slot = <Ev as Pack>::WIDE;
        let base = ev(Probe::DDropInner, 1_000, 1_010);
        type Widen = fn(&mut Ev);
        let wide: [(u128, Widen); 7] = [
            (key_of_arrival(1 << 32, 1), |_| {}),
            (key_of_arrival(0, 1 << 16), |_| {}),
            (0, |x| x.ts_end = x.ts_begin + (1 << 32)),
            (0, |x| x.ts_end = x.ts_begin - 1),
            (0, |x| x.inode_begin = 1 << 32),
            (0, |x| x.inode_end = u64::MAX),
            (0, |x| x.cpu = 1 << 16),
        ];
        for (i, (step, make)) in wide.iter().enumerate() {
            let mut x = base;
            make(&mut x);
            assert!(!pack(&x, *step, &mut slot), "case {i} packed");
        }
        let mut rnd = crate::test_rng::xorshift(3u64);
        let probes = [Probe::DLookupRcu, Probe::Op, Probe::DDropInner];
        let mut r = Reorder::new(1 << 33);
        let (mut all, mut out) = (Vec::new(), Vec::new());
        let mut t = 1u64 << 40;
        for i in 0..40_000u64 {
            let probe = probes[rnd(3) as usize];
            // Now and then a leap of seconds, or an event far behind.
            t += match rnd(1000) {
                0 => 5 << 32,
                1 => 0,
                _ => rnd(900),
            };
            let b = if rnd(500) == 0 { t - (3 << 32) } else { t };
            let mut x = ev(probe, b, b + rnd(2000));
            x.tid = i as u32;
            match rnd(200) {
                0 => x.ts_end = b + (1 << 32) + rnd(9),
                1 => x.ts_end = b.wrapping_sub(1 + rnd(9)),
                2 => x.inode_begin = (1 << 32) + rnd(9),
                3 => x.inode_end = u64::MAX - rnd(9),
                4 => x.cpu = u32::MAX - rnd(9) as u32,
                _ => {
                    (x.inode_begin, x.inode_end, x.cpu) =
                        (rnd(1 << 20), rnd(1 << 20), rnd(64) as u32)
                }
            }
            all.push(x);
            r.insert_ev(x);
            r.pop_due(&mut out);
        }
        // An operation held while 70,000 lookups pass below it in another run: the next
        // event after it in its run is 2^16 arrivals on.
        let held = ev(Probe::Op, t + 1_000_000, t + 1_000_100);
        all.push(held);
        r.insert_ev(held);
        for i in 0..70_000u64 {
            let x = ev(Probe::DLookupRcu, t + i, t + i + 5);
            all.push(x);
            r.insert_ev(x);
        }
        let next = ev(Probe::Op, t + 1_000_200, t + 1_000_300);
        all.push(next);
        r.insert_ev(next);
        r.drain_into(&mut out, usize::MAX);
        // A stable sort keeps arrival order among equal times.
        all.sort_by_key(key_of);
        assert_eq!(out.len(), all.len());
        for (i, (a, b)) in out.iter().zip(&all).enumerate() {
            assert_eq!(fields(a), fields(b), "event {i}");
        }
    }

    impl PackFrom<Ev> for Ev {
        fn pack_into(&self, step: u128, slot: &mut Parked) -> bool {
            pack(self, step, slot)
        }

        fn whole(&self) -> Ev {
            *self
        }
    }

    impl Reorder {
        fn insert_ev(&mut self, ev: Ev) {
            self.insert(key_of(&ev), ev.ts_begin, ev);
        }
    }

    fn ev(probe: Probe, b: u64, e: u64) -> Ev {
        let mut ev = Ev::zeroed();
        ev.probe = probe as u8;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev
    }

    #[test]
    fn events_leave_in_key_order_once_a_window_behind() {
        let mut r = Reorder::new(100);
        // An operation arrives at its end, after the lookup that ran inside it.
        r.insert_ev(ev(Probe::DLookupRcu, 20, 30));
        r.insert_ev(ev(Probe::Op, 10, 50));
        let mut out = Vec::new();
        r.pop_due(&mut out);
        assert!(out.is_empty(), "nothing is a window behind yet");
        r.insert_ev(ev(Probe::DDropInner, 200, 210));
        r.pop_due(&mut out);
        let probes: Vec<u8> = out.iter().map(|e| e.probe).collect();
        assert_eq!(probes, [Probe::Op as u8, Probe::DLookupRcu as u8]);
        r.pop_due(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(r.pop().map(|e| e.ts_begin), Some(200));
        assert_eq!((r.arrivals, r.max_depth), (3, 3));
    }
}
