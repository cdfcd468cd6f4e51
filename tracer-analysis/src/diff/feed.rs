//! The front half of one trace's analysis, on a thread of its own: reading (chunk checksums,
//! decoding into the compact form of `event.rs`, numbering pointers and names), the per-probe
//! and per-operation counts, the `cpu_seq` numbering and the reorder window. The events leave
//! in key order, grouped by the trace event whose arrival released them, so the analysis
//! thread interleaves the two sides exactly as one thread reading both did: the front halves of the two traces and the analysis run on three cores at once.
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use tracer_common::{flags, OpKind, Probe, Source};

use super::{
    event::{Ev, Numbering, Tables},
    reorder::{key_time, Reorder},
    sequence::CpuSeqs,
};
use crate::{
    codes::{op_of, probe_of},
    trace::{Reader, Record},
};

/// Trace events per batch sent on: enough to make the hand-over cheap, few enough that the
/// batches in flight stay small (a batch holds about as many events as it covers: 300 KB
/// here, against the reorder window's 150 MB). The readers run ahead of the analysis and
/// sleep until it takes a batch, so each batch is a sleep and a wake-up: at 512 a batch that
/// was 55 k context switches at 10 M events a side and about a tenth of the diff's CPU time.
const READ_BATCH: usize = 4096;
/// Room for the events a batch releases: about `READ_BATCH`, often a few more (a batch's
/// vector grown past its capacity was a reallocation and a 37 KB copy in the profile).
pub(super) const RELEASED_ROOM: usize = 2 * READ_BATCH;
/// Events per batch when the window drains at the end.
const DRAIN_BATCH: usize = 4096;
/// Batches sent and not yet taken: the front runs at most this far ahead.
const IN_FLIGHT: usize = 2;

/// What the front counts per event read, for the report.
pub struct Counts {
    /// Slot 0 counts unknown codes, the others are indexed by the code.
    pub per_probe: [u64; Probe::ALL.len() + 1],
    pub per_op: [u64; OpKind::ALL.len() + 1],
    /// The kernel events' per-CPU numbering.
    pub seqs: CpuSeqs,
    pub operation_time_range: Option<(u64, u64)>,
    pub probe_time_range: Option<(u64, u64)>,
    /// Events read.
    pub arrivals: u64,
    /// The most events the reorder window held at once.
    pub max_reorder_depth: u64,
    /// Probe events (not operations) whose source is no kernel probe.
    pub not_from_probes: u64,
    /// Events whose name was cut to the event's size.
    pub names_cut: u64,
    /// Events whose entry half was not seen.
    pub no_entry: u64,
    /// Operations', then probe events' least begin and greatest end so far, the time ranges
    /// once [`Counts::finish`] has run (an `Option` rebuilt per event was a tenth of the
    /// counting's instructions).
    spans: [(u64, u64); 2],
    /// Events by probe code and [`COUNTED`] flags: one increment an event, folded into
    /// `per_probe`, `names_cut` and `no_entry` by [`Counts::finish`] (a decoded probe and two
    /// flag tests an event before).
    by_code: Box<[[u64; COLUMNS]; 256]>,
}

/// The flags the report counts. A column of [`Counts::by_code`] is an event's flags masked
/// to these and shifted down to the lowest of them: two instructions an event, where the two
/// flags tested apart and packed in two bits were seven (callgrind); the columns between
/// them stay empty.
const COUNTED: u16 = flags::NAME_TRUNCATED | flags::NO_ENTRY;
const COUNTED_SHIFT: u32 = COUNTED.trailing_zeros();
const COLUMNS: usize = (COUNTED >> COUNTED_SHIFT) as usize + 1;

/// The column of [`Counts::by_code`] for an event's flags.
#[inline(always)]
fn flag_bits(f: u16) -> usize {
    usize::from((f & COUNTED) >> COUNTED_SHIFT)
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            per_probe: [0; Probe::ALL.len() + 1],
            per_op: [0; OpKind::ALL.len() + 1],
            seqs: CpuSeqs::default(),
            operation_time_range: None,
            probe_time_range: None,
            arrivals: 0,
            max_reorder_depth: 0,
            not_from_probes: 0,
            names_cut: 0,
            no_entry: 0,
            spans: [(u64::MAX, 0); 2],
            by_code: Box::new([[0; COLUMNS]; 256]),
        }
    }
}

impl Counts {
    #[inline(always)]
    fn count(&mut self, ev: &Record) {
        let probe = ev.probe();
        self.by_code[usize::from(probe)][flag_bits(ev.flags())] += 1;
        let is_op = probe == Probe::Op as u8;
        if is_op {
            self.per_op[op_of(ev.aux()).map_or(0, |k| k as usize)] += 1;
        }
        if matches!(
            Source::from_u8(ev.source()),
            Some(Source::FEntry | Source::KProbe)
        ) {
            self.seqs.push(ev.cpu(), ev.cpu_seq());
        } else if !is_op {
            self.not_from_probes += 1;
        }
        let span = &mut self.spans[usize::from(!is_op)];
        span.0 = span.0.min(ev.ts_begin());
        span.1 = span.1.max(ev.ts_end());
    }

    /// The counts by probe and flag, and the time ranges from the spans: None for a kind no
    /// event had.
    fn finish(&mut self) {
        for (code, columns) in self.by_code.iter().enumerate() {
            let slot = u8::try_from(code)
                .ok()
                .and_then(probe_of)
                .map_or(0, |p| p as usize);
            for (column, n) in (0u16..).zip(columns.iter()) {
                let f = column << COUNTED_SHIFT;
                self.per_probe[slot] += n;
                self.names_cut += n * u64::from(f & flags::NAME_TRUNCATED != 0);
                self.no_entry += n * u64::from(f & flags::NO_ENTRY != 0);
            }
        }
        let ops: u64 = self.per_op.iter().sum();
        let all: u64 = self.per_probe.iter().sum();
        let [op, probe] = self.spans;
        self.operation_time_range = (ops > 0).then_some(op);
        self.probe_time_range = (all > ops).then_some(probe);
    }
}

/// What the front sends the analysis.
enum Batch {
    /// Per trace event read that released events, where they end in `events` (the end,
    /// not the count: neither side then adds or subtracts per trace event); those events, in
    /// key order; the pointers and names numbered since the last batch. A trace event that
    /// released none has no entry: nothing is handed over at it, so the analysis has nothing
    /// to decide there (about half the bench's arrivals release nothing; an entry each was
    /// a push here and a turn of [`Feed::steps`]' loop there).
    Read {
        released: Vec<u32>,
        events: Vec<Ev>,
        numbered: Tables,
    },
    /// The trace ended: events the window held, in order (one or more batches).
    Drain(Vec<Ev>),
    /// The end: None at the footer, else what broke the trace (it is diffed up to there).
    End(Option<String>),
}

/// Runs the front of one trace until its end (or until the analysis hangs up). Returns the
/// reader, whose footer the report needs, and the counts.
pub fn run(mut reader: Reader, window_ns: u64, tx: Sender) -> (Reader, Counts) {
    let mut counts = Counts::default();
    let mut window = Reorder::new(window_ns);
    let mut numbering = Numbering::default();
    let mut released = Vec::with_capacity(READ_BATCH);
    let mut events = Vec::with_capacity(RELEASED_ROOM);
    let problem = 'read: loop {
        let records = match reader.next_records() {
            Ok(Some(records)) => records,
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        };
        for rec in records {
            counts.count(&rec);
            let key = key_time(rec.probe(), rec.ts_begin(), rec.ts_end());
            window.insert_with(key, rec.ts_begin(), |ev| numbering.compact_into(&rec, ev));
            if window.pop_due(&mut events) {
                released.push(events.len() as u32);
            }
            if window.arrivals.is_multiple_of(READ_BATCH as u64) {
                let batch = Batch::Read {
                    released: std::mem::replace(&mut released, Vec::with_capacity(READ_BATCH)),
                    events: std::mem::replace(&mut events, Vec::with_capacity(RELEASED_ROOM)),
                    numbered: numbering.take(),
                };
                if tx.0.send(batch).is_err() {
                    break 'read None;
                }
            }
        }
    };
    counts.finish();
    counts.arrivals = window.arrivals;
    counts.max_reorder_depth = window.max_depth();
    let mut sent = true;
    // Trace events read since the last batch (a batch goes every `READ_BATCH`).
    if !window.arrivals.is_multiple_of(READ_BATCH as u64) {
        sent =
            tx.0.send(Batch::Read {
                released,
                events,
                numbered: numbering.take(),
            })
            .is_ok();
    }
    while sent {
        let mut drain = Vec::with_capacity(DRAIN_BATCH);
        window.drain_into(&mut drain, DRAIN_BATCH);
        if drain.is_empty() {
            break;
        }
        sent = tx.0.send(Batch::Drain(drain)).is_ok();
    }
    if sent {
        // Nobody left to tell is fine: the analysis stopped first.
        let _ = tx.0.send(Batch::End(problem));
    }
    (reader, counts)
}

/// The sending end of a front.
pub struct Sender(SyncSender<Batch>);

/// The receiving end: the analysis thread's view of one trace.
pub struct Feed {
    rx: Receiver<Batch>,
    released: Vec<u32>,
    events: Vec<Ev>,
    /// Every pointer and name the trace's events were numbered by so far.
    tables: Tables,
    step: usize,
    at: usize,
}

/// A front and its feed.
pub fn channel() -> (Sender, Feed) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let feed = Feed {
        rx,
        released: Vec::new(),
        events: Vec::new(),
        tables: Tables::default(),
        step: 0,
        at: 0,
    };
    (Sender(tx), feed)
}

/// What one step of a feed did.
pub enum Step {
    /// Trace events were read, the last of them releasing events, which were handed over.
    Read,
    /// The trace ended and every event was handed over: None at its footer, else the problem.
    End(Option<String>),
}

impl Feed {
    /// Hands `f` the events the next trace event that released any released, or at the end
    /// everything left, with the tables their numbers stand in; then, while `more` says so,
    /// the next such trace event's (Read: `more` said no). `cx` is what both work on. The
    /// loop is here, not in the caller: a return to the caller's loop after every trace
    /// event, to choose the side again, cost about 6 instructions a trace event (callgrind).
    ///
    /// `more` is asked only after events were handed over: the caller's answer must change
    /// only through them, and be yes when it steps this feed (as the side choice of
    /// `diff_files` is), so that a trace event that released nothing, where the answer
    /// would have been asked again unchanged, needs no step of its own.
    pub fn steps<C>(
        &mut self,
        cx: &mut C,
        mut f: impl FnMut(&mut C, &Ev, &Tables),
        mut more: impl FnMut(&C) -> bool,
    ) -> Step {
        loop {
            while let Some(&end) = self.released.get(self.step) {
                let end = end as usize;
                for ev in &self.events[self.at..end] {
                    f(cx, ev, &self.tables);
                }
                self.at = end;
                self.step += 1;
                if !more(cx) {
                    return Step::Read;
                }
            }
            match self.rx.recv() {
                Ok(Batch::Read {
                    released,
                    events,
                    numbered,
                }) => {
                    self.tables.extend(numbered);
                    self.released = released;
                    self.events = events;
                    self.step = 0;
                    self.at = 0;
                }
                Ok(Batch::Drain(events)) => {
                    for ev in &events {
                        f(cx, ev, &self.tables);
                    }
                }
                Ok(Batch::End(problem)) => return Step::End(problem),
                // The front's thread is gone without its end (it panicked; the join says so).
                Err(_) => return Step::End(Some("the trace's reading thread stopped".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        diff::reorder::key_of,
        trace::{End, Footer, Header, Origin, Writer},
    };
    use tracer_common::Event;

    /// The counts folded from the table by code and flags are the ones counted event by
    /// event: per probe (unknown codes in slot 0), cut names, missing entries, and the time
    /// ranges of each kind, None for a kind no event had.
    #[test]
    fn counts_by_code_fold_into_the_reports_counts() {
        let mut counts = Counts::default();
        let mut want = Counts::default();
        let codes = [
            Probe::DLookupRcu as u8,
            Probe::Op as u8,
            0,
            200,
            Probe::DDropInner as u8,
        ];
        for i in 0..500u64 {
            let mut ev = Event::zeroed();
            ev.probe = codes[i as usize % codes.len()];
            ev.flags = (i as u16).wrapping_mul(0x2b);
            ev.source = Source::Model as u8;
            ev.aux = (i % 4) as u32;
            (ev.ts_begin, ev.ts_end) = (1_000 + i * 7 % 300, 2_000 + i * 13 % 500);
            counts.count(&Record::of_event(&ev));
            want.per_probe[probe_of(ev.probe).map_or(0, |p| p as usize)] += 1;
            want.names_cut += u64::from(ev.has(flags::NAME_TRUNCATED));
            want.no_entry += u64::from(ev.has(flags::NO_ENTRY));
            let range = if ev.probe == Probe::Op as u8 {
                &mut want.operation_time_range
            } else {
                &mut want.probe_time_range
            };
            let (b, e) = range.unwrap_or((u64::MAX, 0));
            *range = Some((b.min(ev.ts_begin), e.max(ev.ts_end)));
        }
        counts.finish();
        assert_eq!(counts.per_probe, want.per_probe);
        assert!(counts.per_probe[0] > 0 && counts.names_cut > 0 && counts.no_entry > 0);
        assert_eq!(
            (counts.names_cut, counts.no_entry),
            (want.names_cut, want.no_entry)
        );
        assert_eq!(counts.operation_time_range, want.operation_time_range);
        assert_eq!(counts.probe_time_range, want.probe_time_range);
        let mut none = Counts::default();
        none.finish();
        assert_eq!(
            (none.operation_time_range, none.probe_time_range),
            (None, None)
        );
    }

    /// A trace several batches long, each event under a name and a dentry first seen in its own
    /// batch, operations arriving after the lookups that ran inside them: the analysis side gets
    /// one step per trace event, every event once and in key order, and each number it is handed
    /// resolves in the tables that came with it.
    #[test]
    fn events_cross_batches_in_key_order_with_their_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.trace");
        let mut w = Writer::create(&path, &Header::new(Origin::Model)).expect("create");
        let n = 2 * READ_BATCH as u64 + 100;
        let t = |i: u64| 1_000 + i * 100;
        for i in 0..n {
            let mut ev = Event::zeroed();
            ev.source = Source::Model as u8;
            if i % 4 == 3 {
                // Written at its end, keyed by its begin: behind the three lookups before it.
                ev.probe = Probe::Op as u8;
                ev.aux = OpKind::Stat as u32;
                (ev.ts_begin, ev.ts_end) = (t(i - 3) - 1, t(i) + 50);
            } else {
                ev.probe = Probe::DLookupRcu as u8;
                (ev.ts_begin, ev.ts_end) = (t(i), t(i) + 10);
            }
            ev.dentry = 0x1000 + i * 64;
            ev.set_name(format!("n{i}").as_bytes());
            w.push(&ev).expect("push");
        }
        w.finish(Footer {
            end: End::Finished,
            ..Footer::default()
        })
        .expect("finish");

        let (tx, mut feed) = channel();
        let reader = Reader::open(&path).expect("open");
        let front = std::thread::spawn(move || run(reader, 1_000, tx));
        let mut seen = Vec::new();
        let mut steps = 0;
        let end = loop {
            let before = seen.len();
            let step = feed.steps(
                &mut seen,
                |seen, ev, tables| {
                    let name = tables.names.get(ev.name as usize).expect("name numbered");
                    seen.push((key_of(ev), tables.ptr(ev.dentry), name.clone()));
                },
                |_| false,
            );
            match step {
                Step::Read => {
                    assert!(seen.len() > before, "a step hands over events");
                    steps += 1;
                }
                Step::End(problem) => break problem,
            }
        };
        let (_, counts) = front.join().expect("front");
        assert_eq!(end, None);
        assert_eq!(counts.arrivals, n);
        assert!(
            steps > 0 && steps <= n,
            "{steps} steps for {n} trace events"
        );
        assert_eq!(seen.len() as u64, n);
        assert!(seen.windows(2).all(|p| p[0].0 <= p[1].0), "key order");
        let mut by_ptr: Vec<(u64, Box<[u8]>)> = seen.into_iter().map(|(_, p, s)| (p, s)).collect();
        by_ptr.sort();
        for (i, (ptr, name)) in by_ptr.iter().enumerate() {
            assert_eq!(*ptr, 0x1000 + i as u64 * 64);
            assert_eq!(&name[..], format!("n{i}").as_bytes());
        }
    }

    /// The old hand-over, kept as the oracle: an entry for every trace event, with the count
    /// of events it released (zero for most), and `more` asked after each.
    enum OldBatch {
        Read { released: Vec<u32>, events: Vec<Ev> },
        Drain(Vec<Ev>),
        End,
    }

    struct OldFeed {
        batches: std::collections::VecDeque<OldBatch>,
        released: Vec<u32>,
        events: Vec<Ev>,
        step: usize,
        at: usize,
    }

    impl OldFeed {
        fn steps<C>(
            &mut self,
            cx: &mut C,
            mut f: impl FnMut(&mut C, &Ev),
            mut more: impl FnMut(&C) -> bool,
        ) -> Step {
            loop {
                while let Some(n) = self.released.get(self.step) {
                    let n = *n as usize;
                    for ev in &self.events[self.at..self.at + n] {
                        f(cx, ev);
                    }
                    self.at += n;
                    self.step += 1;
                    if !more(cx) {
                        return Step::Read;
                    }
                }
                match self.batches.pop_front() {
                    Some(OldBatch::Read { released, events }) => {
                        self.released = released;
                        self.events = events;
                        self.step = 0;
                        self.at = 0;
                    }
                    Some(OldBatch::Drain(events)) => {
                        for ev in &events {
                            f(cx, ev);
                        }
                    }
                    Some(OldBatch::End) | None => return Step::End(None),
                }
            }
        }
    }

    /// Two traces' events processed as `diff_files` interleaves them (the side with fewer
    /// operations processed goes on, asked after each trace event): the feeds that skip trace
    /// events releasing nothing give the same order of events, side by side, as the old
    /// hand-over with an entry for every trace event. Random traces: most trace events release
    /// nothing, others one to a burst, operations among the events at random, batches of any
    /// number of trace events (some releasing nothing at all), drains of several batches, an
    /// empty trace.
    #[test]
    fn skipping_trace_events_that_release_nothing_keeps_the_interleaving() {
        let mut rnd = crate::test_rng::xorshift(0x5eed);
        let mut id = 0u32;
        for round in 0..300 {
            let mut old = Vec::new();
            let mut new = Vec::new();
            for _side in 0..2 {
                let mut ev = |rnd: &mut dyn FnMut(u64) -> u64| {
                    id += 1;
                    let mut e = Ev::zeroed();
                    e.tid = id;
                    e.probe = if rnd(3) == 0 {
                        Probe::Op as u8
                    } else {
                        Probe::DLookup as u8
                    };
                    e
                };
                let (tx, rx) = sync_channel::<Batch>(10_000);
                let mut batches = std::collections::VecDeque::new();
                let trace_events = if round % 50 == 0 { 0 } else { rnd(400) };
                let mut left = trace_events;
                while left > 0 {
                    let take = (1 + rnd(30)).min(left);
                    left -= take;
                    let (mut counts, mut ends, mut events) = (Vec::new(), Vec::new(), Vec::new());
                    let quiet = rnd(5) == 0;
                    for _ in 0..take {
                        let n = match rnd(10) {
                            _ if quiet => 0,
                            0..=4 => 0,
                            5..=8 => 1 + rnd(2),
                            _ => rnd(20),
                        };
                        for _ in 0..n {
                            events.push(ev(&mut rnd));
                        }
                        counts.push(n as u32);
                        if n > 0 {
                            ends.push(events.len() as u32);
                        }
                    }
                    batches.push_back(OldBatch::Read {
                        released: counts,
                        events: events.clone(),
                    });
                    tx.send(Batch::Read {
                        released: ends,
                        events,
                        numbered: Tables::default(),
                    })
                    .expect("room");
                }
                for _ in 0..rnd(3) {
                    let drain: Vec<Ev> = (0..1 + rnd(10)).map(|_| ev(&mut rnd)).collect();
                    batches.push_back(OldBatch::Drain(drain.clone()));
                    tx.send(Batch::Drain(drain)).expect("room");
                }
                batches.push_back(OldBatch::End);
                tx.send(Batch::End(None)).expect("room");
                old.push(OldFeed {
                    batches,
                    released: Vec::new(),
                    events: Vec::new(),
                    step: 0,
                    at: 0,
                });
                new.push(Feed {
                    rx,
                    released: Vec::new(),
                    events: Vec::new(),
                    tables: Tables::default(),
                    step: 0,
                    at: 0,
                });
            }
            // The side loop of `diff_files`, over either hand-over.
            fn interleave(
                mut step: impl FnMut(usize, &mut ([u64; 2], Vec<(usize, u32)>), u64, bool) -> Step,
            ) -> Vec<(usize, u32)> {
                let mut cx = ([0u64; 2], Vec::new());
                let mut done = [false; 2];
                loop {
                    let i = match done {
                        [true, true] => break,
                        [false, true] => 0,
                        [true, false] => 1,
                        [false, false] => usize::from(cx.0[1] < cx.0[0]),
                    };
                    let (other, other_done) = (cx.0[1 - i], done[1 - i]);
                    if let Step::End(_) = step(i, &mut cx, other, other_done) {
                        done[i] = true;
                    }
                }
                cx.1
            }
            let process = |i: usize| {
                move |cx: &mut ([u64; 2], Vec<(usize, u32)>), ev: &Ev| {
                    cx.1.push((i, ev.tid));
                    cx.0[i] += u64::from(ev.probe == Probe::Op as u8);
                }
            };
            let want = interleave(|i, cx, other, other_done| {
                old[i].steps(cx, process(i), |cx| {
                    super::super::chosen_again(i, cx.0[i], other, other_done)
                })
            });
            let got = interleave(|i, cx, other, other_done| {
                let p = process(i);
                new[i].steps(
                    cx,
                    |cx, ev, _| p(cx, ev),
                    |cx| super::super::chosen_again(i, cx.0[i], other, other_done),
                )
            });
            assert_eq!(got, want, "round {round}");
        }
    }
}
