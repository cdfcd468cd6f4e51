//! The bounded reorder window of one trace: events arrive in completion order within a few
//! CPUs' jitter (the recorder) or in begin order (the model), and leave in key order: writers
//! and operations by their begin, lookups by their return, so a lookup comes after every writer
//! that could have written what it read. An event whose key is a window behind the newest begin
//! seen cannot be overtaken any more.
use tracer_common::Probe;

use super::{
    event::Ev,
    feed::RELEASED_ROOM,
    runs::{Keyed, Runs, BLOCK},
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
    if probe == Probe::DLookupRcu as u8 || probe == Probe::DLookup as u8 {
        end
    } else {
        begin
    }
}

/// An event in the window, with its arrival number: the last part of its key, which breaks
/// ties between equal times in arrival order.
#[derive(Clone, Copy, Default)]
struct Parked {
    arrival: u64,
    ev: Ev,
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

impl Keyed for Parked {
    /// The time above the arrival (which never reaches `u64::MAX`, so the key is below
    /// `u128::MAX` as the runs need).
    #[inline(always)]
    fn key(&self) -> u128 {
        Parked::key_of(key_of(&self.ev), self.arrival)
    }
}

impl Parked {
    #[inline(always)]
    fn key_of(time: u64, arrival: u64) -> u128 {
        (time as u128) << 64 | arrival as u128
    }
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
    events: Runs<Parked, 8>,
    /// Events taken in so far.
    pub arrivals: u64,
    /// The newest begin seen.
    watermark: u64,
    /// [`due_below`] the watermark: computed when the watermark rises, not at every pop
    /// (most arrivals leave it where it was).
    limit: u128,
    /// Events handed out so far: the window holds `arrivals - popped`.
    popped: u64,
    /// The most events held at once, as of the last pop that handed any out (see
    /// [`Reorder::max_depth`]).
    max_depth: u64,
}

impl Reorder {
    pub fn new(window_ns: u64) -> Reorder {
        Reorder {
            window_ns,
            events: Runs::default(),
            arrivals: 0,
            watermark: 0,
            limit: due_below(0, window_ns),
            popped: 0,
            max_depth: 0,
        }
    }

    /// Takes in the event that `fill` writes, ordered by `key` ([`key_of`], which the caller
    /// computed from its record) and beginning at `begin`. It is written where it is parked
    /// (decoded on the stack and copied into the run's block, each event was copied once
    /// more, callgrind).
    #[inline(always)]
    pub fn insert_with(&mut self, key: u64, begin: u64, fill: impl FnOnce(&mut Ev)) {
        self.arrivals += 1;
        if begin > self.watermark {
            self.watermark = begin;
            self.limit = due_below(begin, self.window_ns);
        }
        let arrival = self.arrivals;
        let key = Parked::key_of(key, arrival);
        self.events.push_with(key, |p| {
            p.arrival = arrival;
            fill(&mut p.ev);
            debug_assert_eq!(p.key(), key);
            debug_assert_eq!(p.ev.ts_begin, begin);
        });
    }

    /// Events held now.
    #[inline(always)]
    fn depth(&self) -> u64 {
        self.arrivals - self.popped
    }

    /// The most events held at once after any arrival. The depth only falls when events are
    /// handed out, so its peaks are the depths just before those pops and the depth now: kept
    /// there, not after every arrival (most arrivals hand nothing out; per arrival it was
    /// about 10 instructions, callgrind).
    pub fn max_depth(&self) -> u64 {
        self.max_depth.max(self.depth())
    }

    /// Appends to `out`, in key order, the events nothing can overtake any more; whether
    /// there were any.
    #[inline(always)]
    pub fn pop_due(&mut self, out: &mut Vec<Ev>) -> bool {
        let limit = self.limit;
        if self.events.least_key() >= limit {
            return false;
        }
        self.max_depth = self.max_depth();
        let before = out.len();
        self.events.pop_while(|k| k < limit, |p| out.push(p.ev));
        self.popped += (out.len() - before) as u64;
        true
    }

    /// Appends to `out` the next `most` events in key order, or all that are left when fewer
    /// (draining at the end): copied once, from where they lie into `out` (one `pop` an event
    /// copied each twice more through its `Option`, callgrind).
    pub fn drain_into(&mut self, out: &mut Vec<Ev>, most: usize) {
        self.max_depth = self.max_depth();
        let before = out.len();
        let mut left = most;
        let mut more = || left.checked_sub(1).map(|l| left = l).is_some();
        self.events.pop_while(|_| more(), |p| out.push(p.ev));
        self.popped += (out.len() - before) as u64;
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
                        let key = Parked::key_of(time, arrival);
                        let due = time.saturating_add(window) <= watermark;
                        assert_eq!(key < limit, due, "{time} + {window} vs {watermark}");
                    }
                }
            }
        }
    }

    /// The bound kept for pops is the watermark's at every step, whether an arrival raised the
    /// watermark, left it where it was, or came from before it; from the start (watermark 0)
    /// and with windows that saturate.
    #[test]
    fn the_kept_bound_follows_the_watermark() {
        let mut rnd = crate::test_rng::xorshift(23u64);
        for window in [0, 1, 50, u64::MAX / 2, u64::MAX] {
            let mut r = Reorder::new(window);
            assert_eq!(r.limit, due_below(0, window));
            let mut out = Vec::new();
            for i in 0..2000u64 {
                let b = match rnd(4) {
                    0 => r.watermark,
                    1 => r.watermark.saturating_sub(rnd(100)),
                    2 if i == 1999 => u64::MAX,
                    _ => r.watermark + rnd(30),
                };
                r.insert_ev(ev(Probe::DDropInner, b, b));
                assert_eq!(r.limit, due_below(r.watermark, window), "begin {b}");
                r.pop_due(&mut out);
            }
        }
    }

    /// The most events held, kept only where events are handed out, is the most held after
    /// any arrival (the oracle: the depth taken after every arrival, as it was kept before),
    /// with late events, equal times, bursts that hand out many at once, arrivals that hand
    /// out nothing, a trace that ends while the depth is at its peak, and drains.
    #[test]
    fn the_most_held_is_the_peak_after_any_arrival() {
        let mut rnd = crate::test_rng::xorshift(41u64);
        for round in 0..40u64 {
            let window = [0, 1, 20, 500][round as usize % 4];
            let mut r = Reorder::new(window);
            let mut out = Vec::new();
            let (mut most, mut t) = (0u64, 0u64);
            for i in 0..rnd(3000) {
                t += match rnd(10) {
                    0 => rnd(2000),
                    1..=3 => 0,
                    _ => rnd(5),
                };
                let b = t.saturating_sub(if rnd(4) == 0 { rnd(800) } else { 0 });
                let probe = [Probe::DLookupRcu, Probe::Op, Probe::DDropInner][rnd(3) as usize];
                r.insert_ev(ev(probe, b, b + rnd(30)));
                most = most.max(i + 1 - out.len() as u64);
                let before = out.len();
                let any = r.pop_due(&mut out);
                assert_eq!(any, out.len() > before);
                if rnd(500) == 0 {
                    r.drain_into(&mut out, rnd(50) as usize);
                }
                assert_eq!(
                    r.max_depth(),
                    most.max(r.depth()),
                    "round {round}, arrival {i}"
                );
            }
            assert_eq!(r.max_depth(), most, "round {round}");
            r.drain_into(&mut out, usize::MAX);
            assert_eq!((r.max_depth(), r.depth()), (most, 0), "round {round}");
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
        assert_eq!(r.depth(), 0);
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
        while r.depth() > 0 {
            r.drain_into(&mut out, 4096);
            let needed = (r.depth() as usize).div_ceil(BLOCK) + 1 + SPARE_BLOCKS;
            assert!(
                r.events.blocks() <= needed,
                "{} blocks for {}",
                r.events.blocks(),
                r.depth()
            );
        }
        assert_eq!(out.len() as u64, n);
        assert!(out.windows(2).all(|p| p[0].ts_begin < p[1].ts_begin));
    }

    impl Reorder {
        fn insert_ev(&mut self, ev: Ev) {
            self.insert_with(key_of(&ev), ev.ts_begin, |slot| *slot = ev);
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
        assert_eq!((r.arrivals, r.max_depth()), (3, 3));
    }
}
