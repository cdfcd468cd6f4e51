//! A priority queue for items that arrive nearly in key order: the reorder window's events
//! (lookups and writers in order, operations in order among themselves, one stream behind the
//! other). Items go to the end of a sorted run that they do not break; only what fits none of
//! the `RUNS` runs goes to a binary heap. Popping takes the least key of the run fronts and the
//! heap's top, so items leave in exactly key order whatever the input: the runs only make the
//! common case cheap (a push and a pop are a few comparisons instead of a sift through a heap
//! of a million entries).
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

/// An item and the key it is ordered by. The key is computed from the item, not stored beside
/// it: the reorder window's runs hold two million events, and a 16-byte key beside each
/// 72-byte event was 18 % more memory to write and read back.
pub trait Keyed: Copy {
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
}

/// One sorted run, with the keys of its two ends: the scans that choose a run for a push and
/// find the least front read these few keys, not the parked items (a front written a second
/// of trace time earlier was a cache miss per scan in the profile, and each key was computed
/// again from its item at every scan).
struct Run<V: Keyed> {
    items: VecDeque<V>,
    /// The keys of `items`' front and back, while it holds any.
    ends: Option<(V::Key, V::Key)>,
}

pub struct Runs<V: Keyed, const RUNS: usize> {
    runs: Vec<Run<V>>,
    heap: BinaryHeap<Reverse<(V::Key, u32)>>,
    /// The values of the heap's items, by slot.
    slab: Vec<V>,
    free: Vec<u32>,
    /// [`Runs::least_run`] as of the last change to a run's front (None: to be found again).
    /// The window asks after every arrival and is told "not due" about as often as it pops:
    /// without this, each of those questions scanned every run.
    least: Option<Option<(usize, V::Key)>>,
    /// The runs the last two pushes went to, the latest first (`usize::MAX`: none yet).
    hints: [usize; 2],
}

impl<V: Keyed, const RUNS: usize> Default for Runs<V, RUNS> {
    fn default() -> Self {
        Runs {
            runs: Vec::new(),
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            least: None,
            hints: [usize::MAX; 2],
        }
    }
}

impl<V: Keyed, const RUNS: usize> Runs<V, RUNS> {
    /// Keys must be distinct (a sequence number as the last part breaks ties), so the order
    /// items leave in is fully determined, whichever run or the heap holds each.
    pub fn push(&mut self, value: V) {
        let key = value.key();
        // The runs of the last two pushes first: the window's input is two interleaved
        // streams (operations, and the probes' events), each in a run of its own, so the
        // tighter of those two nearly always takes it without the scan of every run below
        // (about 20 instructions a push, callgrind). Any run whose last key is at most `key`
        // keeps the order exact.
        let fit = |i: usize| {
            self.runs
                .get(i)
                .and_then(|r| r.ends)
                .map(|(_, last)| last)
                .filter(|last| *last <= key)
        };
        let [h0, h1] = self.hints;
        let hinted = match (fit(h0), fit(h1)) {
            (Some(a), Some(b)) => Some(if a > b { h0 } else { h1 }),
            (Some(_), None) => Some(h0),
            (None, Some(_)) => Some(h1),
            (None, None) => None,
        };
        if let Some(run) = hinted {
            self.append(run, key, value);
            return;
        }
        // The run whose last key is the highest one at or below `key` (the tightest fit keeps
        // the other runs open for what comes further behind), else an empty run, else a new
        // one.
        let mut best: Option<(usize, V::Key)> = None;
        let mut empty = None;
        for (i, r) in self.runs.iter().enumerate() {
            match r.ends {
                Some((_, last)) if last <= key && best.is_none_or(|(_, b)| last > b) => {
                    best = Some((i, last));
                }
                Some(_) => {}
                None => empty = empty.or(Some(i)),
            }
        }
        let run = match (best, empty) {
            (Some((i, _)), _) | (None, Some(i)) => i,
            (None, None) if self.runs.len() < RUNS => {
                self.runs.push(Run {
                    items: VecDeque::new(),
                    ends: None,
                });
                self.runs.len() - 1
            }
            (None, None) => {
                let slot = match self.free.pop() {
                    Some(s) => {
                        self.slab[s as usize] = value;
                        s
                    }
                    None => {
                        self.slab.push(value);
                        (self.slab.len() - 1) as u32
                    }
                };
                self.heap.push(Reverse((key, slot)));
                return;
            }
        };
        self.append(run, key, value);
    }

    /// Puts `value` at the end of run `run`, whose last key is at most `key` (or which is
    /// empty).
    fn append(&mut self, run: usize, key: V::Key, value: V) {
        if run != self.hints[0] {
            self.hints = [run, self.hints[0]];
        }
        let r = &mut self.runs[run];
        match &mut r.ends {
            Some((_, last)) => *last = key,
            None => {
                // The only way a push changes a front: a run that was empty.
                r.ends = Some((key, key));
                if let Some(cached) = &mut self.least {
                    if cached.is_none_or(|(_, k)| key < k) {
                        *cached = Some((run, key));
                    }
                }
            }
        }
        r.items.push_back(value);
    }

    /// The run whose front has the least key, with that key (cached until a front changes).
    fn least_run(&mut self) -> Option<(usize, V::Key)> {
        if let Some(cached) = self.least {
            return cached;
        }
        let found = self.scan_runs();
        self.least = Some(found);
        found
    }

    fn scan_runs(&self) -> Option<(usize, V::Key)> {
        let mut best: Option<(usize, V::Key)> = None;
        for (i, r) in self.runs.iter().enumerate() {
            if let Some((k, _)) = r.ends {
                if best.is_none_or(|(_, b)| k < b) {
                    best = Some((i, k));
                }
            }
        }
        best
    }

    /// The item with the least key.
    pub fn pop(&mut self) -> Option<V> {
        self.pop_if(|_| true)
    }

    /// The item with the least key, if that key passes `due`.
    pub fn pop_if(&mut self, due: impl FnOnce(&V::Key) -> bool) -> Option<V> {
        let run = self.least_run();
        let from_heap = match (run, self.heap.peek()) {
            (Some((_, r)), Some(Reverse((h, _)))) => *h < r,
            (None, Some(_)) => true,
            _ => false,
        };
        let least = if from_heap {
            self.heap.peek().map(|Reverse((k, _))| *k)
        } else {
            run.map(|(_, k)| k)
        };
        if !least.is_some_and(|k| due(&k)) {
            return None;
        }
        if from_heap {
            let Reverse((_, slot)) = self.heap.pop()?;
            self.free.push(slot);
            return self.slab.get(slot as usize).copied();
        }
        self.least = None;
        let r = self.runs.get_mut(run?.0)?;
        let value = r.items.pop_front();
        r.ends = match (r.items.front(), r.ends) {
            (Some(front), Some((_, last))) => Some((front.key(), last)),
            _ => None,
        };
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS_TESTED: usize = 8;

    #[derive(Clone, Copy)]
    struct Item {
        key: (u64, u64),
        value: u64,
    }

    impl Keyed for Item {
        type Key = (u64, u64);
        fn key(&self) -> (u64, u64) {
            self.key
        }
    }

    /// Whatever the arrival order (sorted, two interleaved streams, more streams than runs,
    /// random), items leave in key order, exactly as a binary heap would give them, with one
    /// run as with several.
    #[test]
    fn items_leave_in_key_order_like_a_heap() {
        let mut seed = 7u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let orders: Vec<Vec<u64>> = vec![
            (0..1000).collect(),
            (0..500).flat_map(|i| [2 * i + 100, 2 * i + 1]).collect(),
            (0..600).map(|i| (i % 20) * 1000 + i).collect(),
            (0..2000).map(|_| rnd() % 300).collect(),
        ];
        for keys in &orders {
            check::<1>(keys);
            check::<2>(keys);
            check::<RUNS_TESTED>(keys);
        }
    }

    fn check<const R: usize>(keys: &[u64]) {
        let mut runs = Runs::<Item, R>::default();
        let mut heap = BinaryHeap::new();
        let mut out = (Vec::new(), Vec::new());
        for (n, k) in keys.iter().enumerate() {
            runs.push(Item {
                key: (*k, n as u64),
                value: n as u64,
            });
            heap.push(Reverse((*k, n as u64)));
            // Pop now and then, as the window does while items keep coming; an item not
            // yet due stays.
            if n % 3 == 0 {
                let least = heap.peek().map(|Reverse(k)| *k);
                assert!(runs.pop_if(|k| Some(*k) < least).is_none());
                out.0
                    .push(runs.pop_if(|k| Some(*k) == least).map(|i| i.key));
                out.1.push(heap.pop().map(|Reverse(k)| k));
            }
        }
        while let Some(Reverse(k)) = heap.pop() {
            out.1.push(Some(k));
            out.0.push(runs.pop().map(|i| i.key));
        }
        assert_eq!(out.0, out.1, "{R} runs");
        assert!(runs.pop().is_none());
    }

    #[test]
    fn values_travel_with_their_keys() {
        let mut runs = Runs::<Item, RUNS_TESTED>::default();
        // More descending streams than runs: the heap takes the rest.
        for i in 0..3 * RUNS_TESTED as u64 {
            runs.push(Item {
                key: (100 - i, i),
                value: i * 10,
            });
        }
        assert!(!runs.heap.is_empty());
        let mut left = 0;
        while let Some(Item { key: (k, i), value }) = runs.pop() {
            assert_eq!((value, k), (i * 10, 100 - i));
            left += 1;
        }
        assert_eq!(left, 3 * RUNS_TESTED);
    }
}
