//! A priority queue for items that arrive nearly in key order: the reorder window's events
//! (lookups and writers in order, operations in order among themselves, one stream behind the
//! other). Items go to the end of a sorted run that they do not
//! break; only what fits no run (more interleaved streams than [`MAX_RUNS`]) goes to a binary
//! heap. Popping takes the least key of the run fronts and the heap's top, so items leave in
//! exactly key order whatever the input: the runs only make the common case cheap (a push and a
//! pop are a few comparisons instead of a sift through a heap of a million entries).
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

/// Sorted runs kept at most; beyond, the heap takes what fits none.
const MAX_RUNS: usize = 8;

pub struct Runs<K, V> {
    runs: Vec<VecDeque<(K, V)>>,
    heap: BinaryHeap<Reverse<(K, u32)>>,
    /// The values of the heap's items, by slot.
    slab: Vec<V>,
    free: Vec<u32>,
}

impl<K, V> Default for Runs<K, V> {
    fn default() -> Self {
        Runs {
            runs: Vec::new(),
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V: Copy> Runs<K, V> {
    /// Keys must be distinct (a sequence number as the last part breaks ties), so the order
    /// items leave in is fully determined.
    pub fn push(&mut self, key: K, value: V) {
        // The run whose last key is the highest one at or below `key` (the tightest fit keeps
        // the other runs open for what comes further behind), else an empty run, else a new
        // one.
        let mut best: Option<(usize, K)> = None;
        let mut empty = None;
        for (i, r) in self.runs.iter().enumerate() {
            match r.back() {
                Some(&(last, _)) if last <= key && best.is_none_or(|(_, b)| last > b) => {
                    best = Some((i, last));
                }
                Some(_) => {}
                None => empty = empty.or(Some(i)),
            }
        }
        let run = match (best, empty) {
            (Some((i, _)), _) | (None, Some(i)) => i,
            (None, None) if self.runs.len() < MAX_RUNS => {
                self.runs.push(VecDeque::new());
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
        self.runs[run].push_back((key, value));
    }

    /// The run whose front has the least key, with that key.
    fn least_run(&self) -> Option<(usize, K)> {
        let mut best: Option<(usize, K)> = None;
        for (i, r) in self.runs.iter().enumerate() {
            if let Some(&(k, _)) = r.front() {
                if best.is_none_or(|(_, b)| k < b) {
                    best = Some((i, k));
                }
            }
        }
        best
    }

    /// The least key.
    pub fn peek(&self) -> Option<K> {
        let r = self.least_run().map(|(_, k)| k);
        let h = self.heap.peek().map(|Reverse((k, _))| *k);
        match (r, h) {
            (Some(r), Some(h)) => Some(r.min(h)),
            (r, h) => r.or(h),
        }
    }

    /// The item with the least key.
    pub fn pop(&mut self) -> Option<(K, V)> {
        let run = self.least_run();
        let from_heap = match (run, self.heap.peek()) {
            (Some((_, r)), Some(Reverse((h, _)))) => *h < r,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            let Reverse((k, slot)) = self.heap.pop()?;
            self.free.push(slot);
            return self.slab.get(slot as usize).map(|v| (k, *v));
        }
        self.runs[run?.0].pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the arrival order (sorted, two interleaved streams, more streams than runs,
    /// random), items leave in key order, exactly as a binary heap would give them.
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
        for keys in orders {
            let mut runs = Runs::default();
            let mut heap = BinaryHeap::new();
            let mut out = (Vec::new(), Vec::new());
            for (n, k) in keys.iter().enumerate() {
                runs.push((*k, n as u64), n);
                heap.push(Reverse((*k, n as u64)));
                // Pop now and then, as the window does while items keep coming.
                if n % 3 == 0 {
                    assert_eq!(runs.peek(), heap.peek().map(|Reverse(k)| *k));
                    out.0.push(runs.pop().map(|(k, _)| k));
                    out.1.push(heap.pop().map(|Reverse(k)| k));
                }
            }
            while let Some(Reverse(k)) = heap.pop() {
                out.1.push(Some(k));
                out.0.push(runs.pop().map(|(k, _)| k));
            }
            assert_eq!(out.0, out.1);
            assert!(runs.pop().is_none());
        }
    }

    #[test]
    fn values_travel_with_their_keys() {
        let mut runs = Runs::default();
        // More descending streams than runs: the heap takes the rest.
        for i in 0..3 * MAX_RUNS as u64 {
            runs.push(100 - i, i * 10);
        }
        assert!(!runs.heap.is_empty());
        while let Some((k, v)) = runs.pop() {
            assert_eq!(v, (100 - k) * 10);
        }
    }
}
