//! Where model events go, and the model's clock.
//!
//! Each worker ([`crate::Task`]) buffers its events and hands them to the sink in batches (at the
//! end of every syscall, or when the buffer fills), so the sink's cost is per batch, not per
//! event. Within a batch, events are in that worker's program order; across workers, order by
//! timestamps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tracer_common::Event;

/// Receives model events from every worker thread.
pub trait EventSink: Send + Sync {
    /// Whether to build events at all; a sink that returns false costs nothing per event.
    fn wants_events(&self) -> bool {
        true
    }

    /// One batch from one worker, in that worker's program order.
    fn emit(&self, events: &[Event]);
}

/// Drops everything; the model then skips building events.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn wants_events(&self) -> bool {
        false
    }

    fn emit(&self, _events: &[Event]) {}
}

/// Keeps every event in memory.
#[derive(Default)]
pub struct CollectSink {
    events: Mutex<Vec<Event>>,
}

impl CollectSink {
    pub fn new() -> CollectSink {
        CollectSink {
            events: Mutex::new(Vec::new()),
        }
    }

    /// Takes the events collected so far, sorted by `ts_begin` (stable, so each worker's program
    /// order survives ties).
    pub fn take(&self) -> Vec<Event> {
        let mut v = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        v.sort_by_key(|e| e.ts_begin);
        v
    }
}

impl EventSink for CollectSink {
    fn emit(&self, events: &[Event]) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
    }
}

/// Counts events without keeping them (benchmarks, stress runs that only want totals).
#[derive(Debug, Default)]
pub struct CountSink {
    count: AtomicU64,
}

impl CountSink {
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl EventSink for CountSink {
    fn emit(&self, events: &[Event]) {
        self.count.fetch_add(events.len() as u64, Ordering::Relaxed);
    }
}

/// Model time, in nanoseconds, for event timestamps.
#[derive(Debug)]
pub enum Clock {
    /// Nanoseconds since the clock was made (monotonic).
    Monotonic(Instant),
    /// A counter: every reading is one tick after the previous one, across all threads, so
    /// timestamps give a total order of the model's steps. [`Clock::advance_to`] moves it forward
    /// to a kernel trace's timestamps during sequential replay.
    Logical(AtomicU64),
}

impl Clock {
    pub fn monotonic() -> Clock {
        Clock::Monotonic(Instant::now())
    }

    pub fn logical() -> Clock {
        Clock::Logical(AtomicU64::new(0))
    }

    pub fn now(&self) -> u64 {
        match self {
            Clock::Monotonic(t0) => t0.elapsed().as_nanos() as u64,
            Clock::Logical(c) => c.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Logical clock: the next reading is at least `t`. Monotonic clock: no effect.
    pub fn advance_to(&self, t: u64) {
        if let Clock::Logical(c) = self {
            c.fetch_max(t.saturating_sub(1), Ordering::Relaxed);
        }
    }
}
