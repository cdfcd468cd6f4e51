//! The bounded reorder window of one trace: events arrive in completion order within a few
//! CPUs' jitter (the recorder) or in begin order (the model), and leave in key order: writers
//! and operations by their begin, lookups by their return, so a lookup comes after every writer
//! that could have written what it read. An event whose key is a window behind the newest begin
//! seen cannot be overtaken any more.
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

use tracer_common::{Event, Probe};

/// The time an event is ordered by.
pub fn key_of(ev: &Event) -> u64 {
    if ev.probe().is_some_and(Probe::is_lookup) {
        ev.ts_end
    } else {
        ev.ts_begin
    }
}

pub struct Reorder {
    window_ns: u64,
    // Events arriving in key order (most of them) queue in `run`; the others (operations and
    // writers overtaken by what ran inside them) wait in the heap, their bodies in `slab`.
    run: VecDeque<(u64, u64, Event)>,
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slab: Vec<Event>,
    free: Vec<u32>,
    /// Events taken in so far.
    pub arrivals: u64,
    /// The newest begin seen.
    watermark: u64,
    /// The most events held at once.
    pub max_depth: u64,
}

impl Reorder {
    pub fn new(window_ns: u64) -> Reorder {
        Reorder {
            window_ns,
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            arrivals: 0,
            watermark: 0,
            max_depth: 0,
        }
    }

    pub fn insert(&mut self, ev: Event) {
        self.arrivals += 1;
        let key = key_of(&ev);
        self.watermark = self.watermark.max(ev.ts_begin);
        if self.run.back().is_none_or(|(k, _, _)| *k <= key) {
            self.run.push_back((key, self.arrivals, ev));
        } else {
            let slot = match self.free.pop() {
                Some(s) => {
                    self.slab[s as usize] = ev;
                    s
                }
                None => {
                    self.slab.push(ev);
                    (self.slab.len() - 1) as u32
                }
            };
            self.heap.push(Reverse((key, self.arrivals, slot)));
        }
        let depth = (self.run.len() + self.heap.len()) as u64;
        self.max_depth = self.max_depth.max(depth);
    }

    /// The next event in key order if nothing can overtake it any more.
    pub fn pop_due(&mut self) -> Option<Event> {
        let k = self.next_key()?;
        if k.saturating_add(self.window_ns) > self.watermark {
            return None;
        }
        self.pop()
    }

    /// The next event in key order (draining at the end).
    pub fn pop(&mut self) -> Option<Event> {
        let from_run = match (self.run.front(), self.heap.peek()) {
            (Some((rk, rn, _)), Some(Reverse((hk, hn, _)))) => (rk, rn) < (hk, hn),
            (Some(_), None) => true,
            _ => false,
        };
        if from_run {
            return self.run.pop_front().map(|(_, _, ev)| ev);
        }
        let Reverse((_, _, slot)) = self.heap.pop()?;
        self.free.push(slot);
        Some(self.slab[slot as usize])
    }

    fn next_key(&self) -> Option<u64> {
        let r = self.run.front().map(|(k, n, _)| (*k, *n));
        let h = self.heap.peek().map(|Reverse((k, n, _))| (*k, *n));
        match (r, h) {
            (Some(r), Some(h)) => Some(r.min(h).0),
            (Some((k, _)), None) | (None, Some((k, _))) => Some(k),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(probe: Probe, b: u64, e: u64) -> Event {
        let mut ev = Event::zeroed();
        ev.probe = probe as u8;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev
    }

    #[test]
    fn events_leave_in_key_order_once_a_window_behind() {
        let mut r = Reorder::new(100);
        // An operation arrives at its end, after the lookup that ran inside it.
        r.insert(ev(Probe::DLookupRcu, 20, 30));
        r.insert(ev(Probe::Op, 10, 50));
        assert!(r.pop_due().is_none(), "nothing is a window behind yet");
        r.insert(ev(Probe::DDropInner, 200, 210));
        let first = r.pop_due().expect("due");
        assert_eq!(first.probe, Probe::Op as u8);
        assert_eq!(r.pop_due().map(|e| e.probe), Some(Probe::DLookupRcu as u8));
        assert!(r.pop_due().is_none());
        assert_eq!(r.pop().map(|e| e.ts_begin), Some(200));
        assert_eq!((r.arrivals, r.max_depth), (3, 3));
    }
}
