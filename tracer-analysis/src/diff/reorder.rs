//! The bounded reorder window of one trace: events arrive in completion order within a few
//! CPUs' jitter (the recorder) or in begin order (the model), and leave in key order: writers
//! and operations by their begin, lookups by their return, so a lookup comes after every writer
//! that could have written what it read. An event whose key is a window behind the newest begin
//! seen cannot be overtaken any more.
use tracer_common::Probe;

use super::{
    event::Ev,
    runs::{Keyed, Runs},
};

/// The time an event is ordered by.
pub fn key_of(ev: &Ev) -> u64 {
    if ev.probe().is_some_and(Probe::is_lookup) {
        ev.ts_end
    } else {
        ev.ts_begin
    }
}

/// An event in the window, with its arrival number: the last part of its key, which breaks
/// ties between equal times in arrival order.
#[derive(Clone, Copy)]
struct Parked {
    arrival: u64,
    ev: Ev,
}

impl Keyed for Parked {
    type Key = (u64, u64);
    fn key(&self) -> (u64, u64) {
        (key_of(&self.ev), self.arrival)
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

    pub fn insert(&mut self, ev: Ev) {
        self.arrivals += 1;
        self.watermark = self.watermark.max(ev.ts_begin);
        self.events.push(Parked {
            arrival: self.arrivals,
            ev,
        });
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
    }

    /// The next event in key order if nothing can overtake it any more.
    pub fn pop_due(&mut self) -> Option<Ev> {
        let (window, watermark) = (self.window_ns, self.watermark);
        let parked = self
            .events
            .pop_if(|(k, _)| k.saturating_add(window) <= watermark)?;
        self.depth -= 1;
        Some(parked.ev)
    }

    /// The next event in key order (draining at the end).
    pub fn pop(&mut self) -> Option<Ev> {
        let parked = self.events.pop()?;
        self.depth -= 1;
        Some(parked.ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
