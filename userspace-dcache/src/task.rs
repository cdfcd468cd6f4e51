//! [`Task`]: one worker thread's context, the model's `current`: its id for events, its RCU
//! registration, its event buffer, and an optional hook called at named protocol steps (to
//! widen race windows in stress runs).

use crate::dentry::DPtr;
use crate::event::Clock;
use crate::model::Dcache;
use crate::rcu::RcuHandle;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tracer_common::{flags, Event, Probe, Source, NAME_CAP};

/// Named points of the protocol where a [`StepHook`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Reader: `__d_lookup_rcu` returned a dentry; its caller has not yet used the inode or
    /// re-checked `d_seq` (3.0-rc7's unvalidated re-read comes next).
    LookupRcuReturned,
    /// Kill path: the dentry is unhashed, its inode not yet detached.
    KillAfterUnhash,
    /// Shrinker: an unused dentry is on the dispose list, about to be killed.
    ShrinkBeforeKill,
    /// Shrinker, 4.17 to 6.7's `shrink_lock_dentry()`: the parent's trylock failed and the
    /// dentry's lock is dropped; the parent's lock is awaited next, while a rename may move
    /// the dentry.
    ShrinkRelock,
}

/// What the checker's reader validated last, as it saw it (not as a probe re-reads it): the
/// dentry, the inode it read, whether its caller took that for negative (the NULL inode, or
/// the type bits where the profile decides so), and the `d_seq` it validated against.
#[cfg(loom)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Validated {
    pub(crate) dentry: u64,
    pub(crate) inode: u64,
    pub(crate) negative: bool,
    pub(crate) seq: u32,
}

/// Called at every [`Step`] a task passes (delays, counters).
pub type StepHook = Arc<dyn Fn(Step) + Send + Sync>;

/// Events are handed to the sink when an operation ends or when this many are buffered.
const FLUSH_AT: usize = 1024;

/// One worker's context. Not `Send`: make it on the thread that uses it.
pub struct Task<'a> {
    pub(crate) dc: &'a Dcache,
    pub(crate) tid: u32,
    pub(crate) rcu: RcuHandle,
    pub(crate) want_events: bool,
    /// The model checker's reader: RCU-walk never turns into ref-walk (see `try_to_unlazy`).
    #[cfg(loom)]
    pub(crate) rcu_walk_only: bool,
    /// The model checker's reader: what its caller last validated (see [`Validated`]).
    #[cfg(loom)]
    pub(crate) validated: std::cell::Cell<Option<Validated>>,
    events: RefCell<Vec<Event>>,
    /// The dcache's one-thread clock's counter, when this task was made on the clock's thread
    /// ([`Clock::ticks_here`]): read without the clock's thread check ([`Task::now`]).
    clock_ticks: Option<&'a AtomicU64>,
    /// A task stays on the thread that made it (the RCU handle ties it there too): the clock's
    /// thread check is done once, when it is made.
    _not_send: PhantomData<*const ()>,
    /// Its events wait for [`Task::take_events`] instead of going to the sink.
    keep_events: bool,
    hook: Option<StepHook>,
}

impl<'a> Task<'a> {
    pub(crate) fn new(dc: &'a Dcache, tid: u32) -> Task<'a> {
        Task {
            dc,
            tid,
            rcu: dc.rcu.register(),
            want_events: dc.sink.wants_events(),
            #[cfg(loom)]
            rcu_walk_only: false,
            #[cfg(loom)]
            validated: std::cell::Cell::new(None),
            events: RefCell::new(Vec::new()),
            clock_ticks: dc.clock.ticks_here(),
            _not_send: PhantomData,
            keep_events: false,
            hook: None,
        }
    }

    /// A task that emits nothing (setup work).
    pub(crate) fn quiet(dc: &'a Dcache) -> Task<'a> {
        let mut t = Task::new(dc, 0);
        t.want_events = false;
        t
    }

    /// Runs `hook` at every [`Step`] this task passes.
    pub fn with_hook(mut self, hook: StepHook) -> Task<'a> {
        self.hook = Some(hook);
        self
    }

    /// Keeps this task's events for its owner ([`Task::take_events`]) instead of handing them
    /// to the sink at the end of every syscall: a replay on one thread writes them itself, in
    /// its own order, without the sink's lock (two locked instructions a syscall, each waiting
    /// for the stores of the events just built). Events nobody took go to the sink when the
    /// task is dropped.
    pub fn keeping_events(mut self) -> Task<'a> {
        self.keep_events = true;
        self
    }

    /// Hands the events kept so far to `f`, then forgets them.
    pub fn take_events<R>(&self, f: impl FnOnce(&[Event]) -> R) -> R {
        let mut ev = self.events.borrow_mut();
        let r = f(&ev);
        ev.clear();
        r
    }

    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// The reader's own view: its caller validated `inode` of `d` (negative by its own test)
    /// against `seq` and goes on with it. Recorded for the model checker only.
    #[inline]
    pub(crate) fn reader_validated(&self, d: DPtr, inode: u64, negative: bool, seq: u32) {
        #[cfg(loom)]
        self.validated.set(Some(Validated {
            dentry: d.id,
            inode,
            negative,
            seq,
        }));
        #[cfg(not(loom))]
        let _ = (d, inode, negative, seq);
    }

    pub(crate) fn step(&self, s: Step) {
        if let Some(h) = &self.hook {
            h(s);
        }
    }

    /// A timestamp for an event that may be built, 0 when none will be.
    pub(crate) fn probe_clock(&self) -> u64 {
        if self.want_events {
            self.now()
        } else {
            0
        }
    }

    /// The dcache clock's next reading ([`Clock::now`]), made on this task's thread.
    pub(crate) fn now(&self) -> u64 {
        match self.clock_ticks {
            Some(ticks) => Clock::tick(ticks),
            None => self.dc.clock.now(),
        }
    }

    /// [`Clock::advance_to`] of the dcache's clock, on this task's thread.
    pub fn advance_clock_to(&self, t: u64) {
        match self.clock_ticks {
            Some(ticks) => Clock::advance_ticks(ticks, t),
            None => self.dc.clock.advance_to(t),
        }
    }

    /// Sets what every event of this task carries: probe, begin, thread.
    fn stamp(&self, e: &mut Event, probe: Probe, ts: u64) {
        e.ts_begin = ts;
        e.tid = self.tid;
        // The model has no CPUs; the worker id stands in.
        e.cpu = self.tid;
        e.probe = probe as u8;
        e.source = Source::Model as u8;
    }

    /// Appends an event of `probe` begun at `ts`, which `fill` completes where it is kept: an
    /// event built on the stack and moved in costs a 152-byte copy, the replay's largest.
    pub(crate) fn push_new(&self, probe: Probe, ts: u64, fill: impl FnOnce(&mut Event)) {
        let mut ev = self.events.borrow_mut();
        ev.push(Event::zeroed());
        if let Some(e) = ev.last_mut() {
            self.stamp(e, probe, ts);
            fill(e);
        }
        self.flush_full(&mut ev);
    }

    fn flush_full(&self, ev: &mut Vec<Event>) {
        if ev.len() >= FLUSH_AT && !self.keep_events {
            self.dc.sink.emit(ev);
            ev.clear();
        }
    }

    /// Hands buffered events to the sink, unless they are kept ([`Task::keeping_events`]).
    pub fn flush(&self) {
        if !self.keep_events {
            self.hand_to_sink();
        }
    }

    fn hand_to_sink(&self) {
        let mut ev = self.events.borrow_mut();
        if !ev.is_empty() {
            self.dc.sink.emit(&ev);
            ev.clear();
        }
    }

    /// A writer probe's entry half: the state at entry (`d_lock` is held at every writer's
    /// entry, so name and parent are stable). `None` when no events are wanted. Built where it
    /// is returned: an event built beside it and moved in was a 152-byte copy a writer.
    // Inlined into each writer, with `writer_exit`: called, the event was built in this
    // function's frame and copied out to the caller's, then copied again into the task's
    // vector by `writer_exit` (two 152-byte copies a writer event; inlined, the replay bench's
    // model half at 1 M `--probes 6` fell 505.6 M -> 478.9 M instructions, callgrind).
    #[inline(always)]
    pub(crate) fn writer_entry(&self, probe: Probe, d: DPtr) -> Option<Event> {
        if !self.want_events {
            return None;
        }
        let mut entry = Some(Event::zeroed());
        if let Some(e) = entry.as_mut() {
            self.stamp(e, probe, self.now());
            e.dentry = d.id;
            e.parent = d.d_parent().id;
            let name = d.d_name();
            fresh_name(e, &name.name, None);
            e.name_hash = name.hash;
            e.seq_begin = d.d_seq.read();
            e.inode_begin = d.d_inode.load(crate::sync::Ordering::Relaxed);
            e.aux = self.dc.profile.d_flags_numbering.kernel(d.flags());
            if !d.d_unhashed() {
                e.flags |= flags::HASHED_BEGIN;
            }
        }
        entry
    }

    /// A writer probe's exit half: the state at return.
    // Inlined for the reason `writer_entry` is.
    #[inline(always)]
    pub(crate) fn writer_exit(&self, e: Option<Event>, d: DPtr) {
        let Some(entry) = e else {
            return;
        };
        // Completed where it is kept, as in `push_new`.
        let mut ev = self.events.borrow_mut();
        ev.push(entry);
        if let Some(e) = ev.last_mut() {
            e.seq_end = d.d_seq.read();
            e.inode_end = d.d_inode.load(crate::sync::Ordering::Relaxed);
            if !d.d_unhashed() {
                e.flags |= flags::HASHED_END;
            }
            e.ts_end = self.now();
        }
        self.flush_full(&mut ev);
    }
}

/// What [`Event::set_name`] makes of `first`, or of `first`, a NUL and `second` (an Op event's
/// two paths), on an event whose name is still zeroed ([`Event::zeroed`]): the same bytes,
/// without zeroing the 64 again or joining the two paths in a new `String` first.
pub(crate) fn fresh_name(e: &mut Event, first: &[u8], second: Option<&[u8]>) {
    put_name(e, first, second, <[u8]>::copy_from_slice);
}

/// [`fresh_name`] for an event already in the task's vector ([`Task::push_new`]): the bytes
/// copied inline ([`copy_name`]), not by a `memcpy` call. Not for an event on the stack
/// (`writer_entry`'s): there the copy to a place the compiler does not know kept the whole
/// event in memory, moved twice more with `memcpy` (callgrind).
pub(crate) fn fresh_name_in_place(e: &mut Event, first: &[u8], second: Option<&[u8]>) {
    put_name(e, first, second, copy_name);
}

/// The two ways' common part: `copy` moves each path's bytes.
#[inline(always)]
fn put_name(e: &mut Event, first: &[u8], second: Option<&[u8]>, copy: impl Fn(&mut [u8], &[u8])) {
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(NAME_CAP - at);
        if let (Some(to), Some(from)) = (e.name.get_mut(at..at + n), bytes.get(..n)) {
            copy(to, from);
        }
        at += n;
    };
    put(first);
    let mut len = first.len();
    if let Some(second) = second {
        put(&[0]);
        put(second);
        len += 1 + second.len();
    }
    e.name_len = len as u32;
    if len > NAME_CAP {
        e.flags |= flags::NAME_TRUNCATED;
    }
}

/// `to.copy_from_slice(from)` for slices of one length of at most [`NAME_CAP`]: two moves of
/// a fixed size that overlap in the middle (one byte at a time below 4), inlined. A name's
/// `memcpy` call (its length not known to the compiler) and its setup cost about 25
/// instructions a probe event (callgrind).
#[inline(always)]
fn copy_name(to: &mut [u8], from: &[u8]) {
    /// The first and the last `K` bytes: the whole of a slice of `K` to `2 * K` bytes.
    #[inline(always)]
    fn ends<const K: usize>(to: &mut [u8], from: &[u8]) {
        if let (Some(t), Some(f)) = (to.first_chunk_mut::<K>(), from.first_chunk::<K>()) {
            *t = *f;
        }
        if let (Some(t), Some(f)) = (to.last_chunk_mut::<K>(), from.last_chunk::<K>()) {
            *t = *f;
        }
    }
    match from.len() {
        0 => {}
        1..=3 => {
            ends::<1>(to, from);
            if let (Some(t), Some(f)) = (to.get_mut(1), from.get(1)) {
                *t = *f;
            }
        }
        4..=7 => ends::<4>(to, from),
        8..=15 => ends::<8>(to, from),
        16..=31 => ends::<16>(to, from),
        32..=64 => ends::<32>(to, from),
        _ => to.copy_from_slice(from),
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.hand_to_sink();
    }
}

#[cfg(test)]
mod tests {
    use crate::{CollectSink, Dcache, DcacheConfig, FsKind, Profile};
    use std::sync::Arc;
    use tracer_common::{Event, Probe};

    fn dcache(sink: &Arc<CollectSink>) -> Dcache {
        Dcache::new(
            DcacheConfig::new(Profile::LINUX_6_1, FsKind::Tmpfs)
                .with_sink(sink.clone())
                .with_one_thread_clock(),
        )
    }

    /// A fresh event's name written by `fresh_name` or `fresh_name_in_place` is byte for byte
    /// what `Event::set_name` writes, for one path or two joined by a NUL, of every length
    /// below, at and past the name's capacity (each of `copy_name`'s cases and their edges).
    #[test]
    fn a_fresh_name_is_what_set_name_writes() {
        let long: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        type Fresh = fn(&mut Event, &[u8], Option<&[u8]>);
        let ways: [Fresh; 2] = [super::fresh_name, super::fresh_name_in_place];
        for (way, fresh) in ways.into_iter().enumerate() {
            for n in 0..=100 {
                let first = &long[..n];
                let mut want = Event::zeroed();
                want.set_name(first);
                let mut got = Event::zeroed();
                fresh(&mut got, first, None);
                assert_eq!(got.as_bytes(), want.as_bytes(), "way {way}, {n} bytes");
                for m in 0..=70 {
                    let second = &long[..m];
                    let joined = [first, &[0], second].concat();
                    want.set_name(&joined);
                    let mut got = Event::zeroed();
                    fresh(&mut got, first, Some(second));
                    assert_eq!(
                        got.as_bytes(),
                        want.as_bytes(),
                        "way {way}, {n} and {m} bytes"
                    );
                }
            }
        }
    }

    /// A task keeping its events hands none to the sink at the end of a syscall: its owner
    /// takes them, the events a task handing them to the sink gives it; what nobody took
    /// reaches the sink when the task goes.
    #[test]
    fn a_task_keeping_its_events_gives_them_to_its_owner() {
        let handed = Arc::new(CollectSink::new());
        let dc = dcache(&handed);
        let t = dc.task(7);
        t.mkdir("d").expect("mkdir");
        t.stat("d").expect("stat");
        drop(t);
        let handed = handed.take();

        let sink = Arc::new(CollectSink::new());
        let dc = dcache(&sink);
        let t = dc.task(7).keeping_events();
        t.mkdir("d").expect("mkdir");
        assert!(sink.take().is_empty(), "handed to the sink");
        let mut kept: Vec<Event> = t.take_events(|ev| ev.to_vec());
        assert_eq!(kept.last().map(|e| e.probe), Some(Probe::Op as u8));
        t.take_events(|ev| assert!(ev.is_empty(), "taken twice"));
        t.stat("d").expect("stat");
        drop(t);
        let at_drop = sink.take();
        assert!(at_drop.iter().any(|e| e.probe == Probe::Op as u8));
        kept.extend(at_drop);
        // The sink's order (by begin; the readings are distinct).
        kept.sort_by_key(|e| e.ts_begin);
        assert_eq!(kept.len(), handed.len());
        assert!(kept
            .iter()
            .zip(&handed)
            .all(|(a, b)| a.as_bytes() == b.as_bytes()));
    }

    /// A task on the one-thread clock's thread reads its counter without the clock's thread
    /// check: its readings and the clock's own follow one count, moved on by `advance_to`; a
    /// task made on another thread is refused at its first reading, as the clock refuses that
    /// thread. Each clock kind's task reads that clock's count.
    #[test]
    fn a_task_reads_its_dcache_s_clock_in_turn_with_it() {
        let sink = Arc::new(CollectSink::new());
        let dc = dcache(&sink);
        let t = dc.task(7);
        assert!(
            t.clock_ticks.is_some(),
            "checked once, on the clock's thread"
        );
        let c = dc.clock();
        let readings = [c.now(), t.now(), t.now(), c.now(), t.probe_clock()];
        assert_eq!(readings, [1, 2, 3, 4, 5]);
        c.advance_to(100);
        assert_eq!([t.now(), c.now()], [100, 101]);
        t.advance_clock_to(50);
        assert_eq!(c.now(), 102, "not moved back");
        t.advance_clock_to(200);
        assert_eq!([c.now(), t.now()], [200, 201]);
        std::thread::scope(|s| {
            let other = s.spawn(|| dc.task(8).now());
            assert!(other.join().is_err(), "read on another thread");
        });
        assert_eq!(t.now(), 202, "the refused reading took no tick");

        let logical = Dcache::new(
            DcacheConfig::new(Profile::LINUX_6_1, FsKind::Tmpfs)
                .with_sink(sink.clone())
                .with_logical_clock(),
        );
        let t = logical.task(7);
        assert!(t.clock_ticks.is_none(), "not a one-thread clock");
        assert_eq!([logical.clock().now(), t.now(), t.now()], [1, 2, 3]);
        t.advance_clock_to(10);
        assert_eq!([logical.clock().now(), t.now()], [10, 11]);
    }
}
