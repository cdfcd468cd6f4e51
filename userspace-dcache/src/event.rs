//! Where model events go, and the model's clock.
//!
//! Each worker ([`crate::Task`]) buffers its events and hands them to the sink in batches (at the
//! end of every syscall, or when the buffer fills), so the sink's cost is per batch, not per
//! event. Within a batch, events are in that worker's program order; across workers, order by
//! timestamps.

use std::cell::Cell;
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
    /// [`Clock::Logical`] for a model run on one thread (a replay in timestamp order): the same
    /// readings, counted without a locked instruction (a `lock xadd` per model event, waiting
    /// for the stores of the event just built, was 6 % of such a replay). Read from any thread
    /// but `thread`, the one that made it, it panics: two threads could get the same reading.
    LogicalOneThread { ticks: AtomicU64, thread: u64 },
}

/// Which [`Clock`] a [`crate::Dcache`] is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// [`Clock::Monotonic`]: nanoseconds.
    Monotonic,
    /// [`Clock::Logical`]: a total order of the steps of every thread.
    Logical,
    /// [`Clock::LogicalOneThread`]: the same, for a model run on the thread that makes it.
    LogicalOneThread,
}

thread_local! {
    /// The calling thread's number ([`this_thread`]), 0 until it first asks.
    static THIS: Cell<u64> = const { Cell::new(0) };
}

/// A number for the calling thread, never given to another (thread ids of the OS are reused).
fn this_thread() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    THIS.with(|n| {
        if n.get() == 0 {
            n.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        n.get()
    })
}

impl Clock {
    pub fn monotonic() -> Clock {
        Clock::Monotonic(Instant::now())
    }

    pub fn logical() -> Clock {
        Clock::Logical(AtomicU64::new(0))
    }

    /// [`Clock::LogicalOneThread`], read on the calling thread only.
    pub fn logical_one_thread() -> Clock {
        Clock::LogicalOneThread {
            ticks: AtomicU64::new(0),
            thread: this_thread(),
        }
    }

    pub fn now(&self) -> u64 {
        match self {
            Clock::Monotonic(t0) => t0.elapsed().as_nanos() as u64,
            Clock::Logical(c) => c.fetch_add(1, Ordering::Relaxed) + 1,
            Clock::LogicalOneThread { ticks, thread } => {
                Self::on_its_thread(*thread);
                Self::tick(ticks)
            }
        }
    }

    /// The counter of a one-thread clock when the calling thread is the one that made it: a
    /// reader that stays on this thread ([`crate::Task`]) reads it with [`Clock::tick`], the
    /// check done once (a thread-local read at every reading was about 1 % of a replay's
    /// instructions, callgrind). None for another clock or another thread.
    pub(crate) fn ticks_here(&self) -> Option<&AtomicU64> {
        match self {
            Clock::LogicalOneThread { ticks, thread } if THIS.with(Cell::get) == *thread => {
                Some(ticks)
            }
            _ => None,
        }
    }

    /// A one-thread clock's reading on its thread, from its counter ([`Clock::ticks_here`]).
    #[inline]
    pub(crate) fn tick(ticks: &AtomicU64) -> u64 {
        let t = ticks.load(Ordering::Relaxed) + 1;
        ticks.store(t, Ordering::Relaxed);
        t
    }

    /// Logical clock: the next reading is at least `t`. Monotonic clock: no effect.
    pub fn advance_to(&self, t: u64) {
        match self {
            Clock::Monotonic(_) => {}
            Clock::Logical(c) => {
                c.fetch_max(t.saturating_sub(1), Ordering::Relaxed);
            }
            Clock::LogicalOneThread { ticks, thread } => {
                Self::on_its_thread(*thread);
                Self::advance_ticks(ticks, t);
            }
        }
    }

    /// A one-thread clock's [`Clock::advance_to`] on its thread, on its counter
    /// ([`Clock::ticks_here`]).
    #[inline]
    pub(crate) fn advance_ticks(ticks: &AtomicU64, t: u64) {
        let now = ticks.load(Ordering::Relaxed);
        ticks.store(now.max(t.saturating_sub(1)), Ordering::Relaxed);
    }

    /// A one-thread clock's load and store are one step only on the thread that made it. That
    /// thread took its number when it made the clock, so a thread whose number is not the
    /// clock's, or still 0, is another one: the test is a load and a compare at every reading
    /// (the panic is out of line).
    #[inline]
    fn on_its_thread(thread: u64) {
        if THIS.with(Cell::get) != thread {
            Self::not_its_thread(thread);
        }
    }

    #[cold]
    #[inline(never)]
    fn not_its_thread(thread: u64) {
        assert_eq!(
            this_thread(),
            thread,
            "a one-thread logical clock was read on another thread than the one that made it \
             (use the logical clock for a model run on several threads)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of a replay: readings, jumps forward to an op's begin, a jump backwards
    /// (no effect), a jump to 0 and to the clock's limit.
    fn readings(c: &Clock) -> Vec<u64> {
        let mut out = Vec::new();
        for jump in [0, 1, 100, 50, 100, 101, 5_000, u64::MAX - 3] {
            c.advance_to(jump);
            out.extend((0..3).map(|_| c.now()));
        }
        out
    }

    #[test]
    fn a_one_thread_clock_reads_as_the_logical_clock() {
        let one = readings(&Clock::logical_one_thread());
        assert_eq!(one, readings(&Clock::logical()));
        assert_eq!(&one[..6], [1, 2, 3, 4, 5, 6]);
        assert_eq!(&one[6..9], [100, 101, 102]);
    }

    #[test]
    fn a_one_thread_clock_refuses_another_thread() {
        let c = Clock::logical_one_thread();
        c.now();
        std::thread::scope(|s| {
            assert!(
                s.spawn(|| c.now()).join().is_err(),
                "read on another thread"
            );
            assert!(
                s.spawn(|| c.advance_to(7)).join().is_err(),
                "moved on another thread"
            );
            // A thread that has its own number (it made a clock) is refused as well.
            assert!(
                s.spawn(|| {
                    Clock::logical_one_thread().now();
                    c.now()
                })
                .join()
                .is_err(),
                "read on a thread with a number of its own"
            );
        });
        assert_eq!(c.now(), 2);
    }
}
