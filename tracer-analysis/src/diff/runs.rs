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
/// 72-byte event was 18 % more memory to write and read back. One integer (the window's time
/// above its arrival number), below [`NONE`]: comparing it is two instructions, where a pair
/// of `u64` was a branch per half.
pub trait Keyed: Copy {
    fn key(&self) -> u128;
}

/// The front key of a run that holds nothing: above every item's key, so the scan for the
/// least front needs no test for empty runs.
const NONE: u128 = u128::MAX;

/// Items per block of a run ([`Ring`]): 655 KB of the reorder window's 80-byte events, so that
/// opening a block and handing one back are rare, and the part of a block a run has not
/// filled is little beside a window of two million events. A block must also be larger than
/// the buffers the window's events are sent on (see `reorder.rs`).
pub const BLOCK: usize = 8192;

/// Blocks read through that [`Runs`] keeps for the next block a run opens; a block read
/// through beyond them is freed. While events stream in, the window's runs open about as many
/// blocks as they read through, and a few spares cover the difference; when the window
/// drains at the trace's end every block read through went to the spares, so the window
/// held its whole peak until it was dropped, beside everything the analysis gathers at the
/// end (148 MB a side at 10 M events a side with the 1 s window). Eight blocks are 5 MB of
/// the window's events; at 10 M events a side the runs made as many blocks with them as
/// without (about 450: none freed and made again).
pub const SPARE_BLOCKS: usize = 8;

pub struct Runs<V: Keyed, const RUNS: usize, const BLOCK_ITEMS: usize = BLOCK> {
    /// The runs opened so far, each sorted by key.
    runs: Vec<Ring<V, BLOCK_ITEMS>>,
    /// Blocks read through, for the next block a run opens: every run draws on them, so the
    /// blocks made follow the items held at once, not each run's peak.
    spare: Vec<Vec<V>>,
    /// Per run, its front's key ([`NONE`] when empty or not opened). The scan for the least
    /// front reads these, not the parked items (a front written a second of trace time
    /// earlier was a cache miss per scan in the profile).
    fronts: [u128; RUNS],
    /// The opened runs' back keys, highest first (0 for an empty run: anything may follow),
    /// and `order` the run each one is. The scan that chooses a run for a push reads these.
    backs: [u128; RUNS],
    order: [usize; RUNS],
    /// The run with the least front key (0 while none is open): kept current by every push
    /// and pop, so asking what is next is one load.
    least: usize,
    heap: BinaryHeap<Reverse<(u128, u32)>>,
    /// The heap's least key, [`NONE`] when it is empty.
    heap_top: u128,
    /// The least key held, [`NONE`] when empty: the least of `fronts[least]` and `heap_top`,
    /// kept by every push and pop, so a pop that finds nothing due is one comparison.
    next: u128,
    /// The values of the heap's items, by slot.
    slab: Vec<V>,
    free: Vec<u32>,
}

impl<V: Keyed, const RUNS: usize, const BLOCK_ITEMS: usize> Default for Runs<V, RUNS, BLOCK_ITEMS> {
    fn default() -> Self {
        // An empty block would lose every item pushed into it.
        const { assert!(BLOCK_ITEMS > 0) };
        Runs {
            runs: Vec::with_capacity(RUNS),
            spare: Vec::new(),
            fronts: [NONE; RUNS],
            backs: [0; RUNS],
            order: [0; RUNS],
            least: 0,
            heap: BinaryHeap::new(),
            heap_top: NONE,
            next: NONE,
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

/// One run's items in order, in blocks of `BLOCK_ITEMS` (each written whole when made):
/// the front is `front[head]`, or `back[head]` while `front` is no block, the back the one
/// before `back[tail]`, and the blocks between are full, in order in `middle`. A block is
/// owned by the run it is in, and goes to the spares of [`Runs`] when the run has read it
/// through, for the next block any run opens.
///
/// A ring buffer per run (as a `VecDeque` is) cycles through its whole capacity, a power of
/// two up to twice the most items the run held: at 10 M events a side the window's two runs
/// per trace peaked at 1.29 M and 0.56 M events in rings of 2 M and 1 M slots, so 503 MB were
/// written where the events took 296 MB (memory touched first is page faults and page
/// clearing, which the diff's system time mostly is). Blocks follow what the runs hold at
/// once. The two ends are fields of their own, not indices into a table of blocks: a push
/// and a pop each read one block's slice, as the ring did (through a table, about 17
/// instructions more an event, callgrind).
struct Ring<V, const BLOCK_ITEMS: usize> {
    front: Vec<V>,
    middle: VecDeque<Vec<V>>,
    back: Vec<V>,
    head: usize,
    /// Where the next push goes in `back` (`BLOCK_ITEMS` before the first: a block first).
    tail: usize,
    len: usize,
}

impl<V, const BLOCK_ITEMS: usize> Default for Ring<V, BLOCK_ITEMS> {
    fn default() -> Self {
        Ring {
            front: Vec::new(),
            middle: VecDeque::new(),
            back: Vec::new(),
            head: 0,
            tail: BLOCK_ITEMS,
            len: 0,
        }
    }
}

impl<V: Copy, const BLOCK_ITEMS: usize> Ring<V, BLOCK_ITEMS> {
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block the front is in: `front`, or `back` while the run's items all are there.
    #[inline(always)]
    fn front_block(&self) -> &[V] {
        if self.front.is_empty() {
            &self.back
        } else {
            &self.front
        }
    }

    /// Hands the front item to `f` where it lies and drops it; returns the key of the next
    /// one, [`NONE`] when the run is left empty. One call a pop, finding the front's block
    /// once: the next item is in the same block unless this one ended it (asking for the
    /// block again for the next key was a branch and a bounds check more a pop, callgrind).
    #[inline(always)]
    fn take_front(&mut self, spare: &mut Vec<Vec<V>>, f: &mut impl FnMut(&V)) -> u128
    where
        V: Keyed,
    {
        let head = self.head;
        let block = if self.front.is_empty() {
            &self.back
        } else {
            &self.front
        };
        let Some(item) = block.get(head) else {
            return NONE;
        };
        f(item);
        self.len -= 1;
        if self.len == 0 {
            // Its last block starts over (the front's block is the back's when one item
            // is left: a front block read through moves on at once, below).
            debug_assert!(self.front.is_empty());
            self.head = 0;
            self.tail = 0;
            return NONE;
        }
        // Every block is `BLOCK_ITEMS` long, so only the end of the block has no item after
        // this one here (items are left: the next one is written).
        if let Some(next) = block.get(head + 1) {
            let key = next.key();
            self.head = head + 1;
            return key;
        }
        self.next_block(spare);
        self.front_block().first().map_or(NONE, Keyed::key)
    }

    /// The front block is read through (items are left, so it is not the back one).
    #[inline(never)]
    fn next_block(&mut self, spare: &mut Vec<Vec<V>>) {
        let next = self.middle.pop_front().unwrap_or_default();
        let read = std::mem::replace(&mut self.front, next);
        // Beyond the spares it is freed here.
        if spare.len() < SPARE_BLOCKS {
            spare.push(read);
        }
        self.head = 0;
    }

    /// The place of the next item, in the back block (a new one when it is full).
    #[inline(always)]
    fn next_slot(&mut self, spare: &mut Vec<Vec<V>>) -> Option<&mut V>
    where
        V: Default,
    {
        if self.tail >= self.back.len() {
            self.open(spare);
        }
        let at = self.tail;
        self.tail += 1;
        self.len += 1;
        self.back.get_mut(at)
    }

    /// A new back block, the old one being full (or none); the next push goes first in it.
    #[inline(never)]
    fn open(&mut self, spare: &mut Vec<Vec<V>>)
    where
        V: Default,
    {
        let block = spare
            .pop()
            .unwrap_or_else(|| vec![V::default(); BLOCK_ITEMS]);
        let full = std::mem::replace(&mut self.back, block);
        if !full.is_empty() {
            if self.front.is_empty() {
                // The front stays where it is, `head` in that block.
                self.front = full;
            } else {
                self.middle.push_back(full);
            }
        }
        self.tail = 0;
    }
}

impl<V: Keyed, const RUNS: usize, const BLOCK_ITEMS: usize> Runs<V, RUNS, BLOCK_ITEMS> {
    /// Adds `value`, whose key is `key` (the caller has it at hand: computed again from the
    /// value it was a few instructions more a push). Keys must be distinct (a sequence number
    /// as the last part breaks ties), so the order items leave in is fully determined,
    /// whichever run or the heap holds each, and below [`NONE`].
    ///
    /// The run taken is the one whose last key is the highest at or below `key` (the
    /// tightest fit keeps the other runs open for what comes further behind): the first of
    /// `backs`, which are kept highest first, that `key` does not fall below. Appending there
    /// keeps that order (the key is below the back before it, or that run would have been
    /// the fit), so the window's two interleaved streams cost one or two comparisons a push
    /// (the two runs last pushed to, compared with each other, were about 5 instructions an
    /// event more, callgrind).
    ///
    /// The item is written by `fill`, in place in its run's block (in the heap's slab
    /// through a default item when no run takes it).
    #[inline(always)]
    pub fn push_with(&mut self, key: u128, fill: impl FnOnce(&mut V))
    where
        V: Default,
    {
        debug_assert!(key != NONE);
        // One place `fill` is called from, so that it is inlined: called on each path (the
        // run's block, a new block, the heap's slab), it was a call of its own.
        let slot = match self.run_for(key) {
            Some(run) => (self.runs.get_mut(run)).and_then(|q| q.next_slot(&mut self.spare)),
            None => self.heap_slot(key),
        };
        if let Some(slot) = slot {
            fill(slot);
        }
    }

    /// The run an item of `key` goes to the back of (None: the heap), its back key and
    /// front set for it.
    #[inline(always)]
    fn run_for(&mut self, key: u128) -> Option<usize> {
        let used = self.runs.len().min(RUNS);
        let fit = self
            .backs
            .get(..used)
            .and_then(|b| b.iter().position(|&b| b <= key));
        let at = match fit {
            Some(at) => at,
            None if used < RUNS => self.open_run(),
            None => return None,
        };
        let (Some(back), Some(&run)) = (self.backs.get_mut(at), self.order.get(at)) else {
            return None;
        };
        *back = key;
        if self.runs.get(run).is_some_and(Ring::is_empty) {
            // The only way a push changes a run's front: a run that was empty.
            self.fronts[run % RUNS] = key;
            if key < self.fronts[self.least % RUNS] {
                self.least = run;
            }
            self.next = self.next.min(key);
        }
        Some(run)
    }

    /// [`Runs::push_with`] of a whole item.
    #[cfg(test)]
    pub fn push(&mut self, key: u128, value: V)
    where
        V: Default,
    {
        debug_assert!(key == value.key());
        self.push_with(key, |slot| *slot = value);
    }

    /// A new run, last in `backs` (every back is above the key that needs it: none is empty),
    /// and its place there.
    #[inline(never)]
    fn open_run(&mut self) -> usize {
        let run = self.runs.len();
        self.runs.push(Ring::default());
        self.order[run % RUNS] = run;
        run
    }

    /// The place of an item of `key` that no run takes, in the heap's slab.
    #[inline(never)]
    fn heap_slot(&mut self, key: u128) -> Option<&mut V>
    where
        V: Default,
    {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slab.push(V::default());
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((key, slot)));
        self.heap_top = self.heap_top.min(key);
        self.next = self.next.min(key);
        self.slab.get_mut(slot as usize)
    }

    /// Run `run` has been emptied: its back is 0 (anything may follow), so it goes last in
    /// `backs`, the others keeping their order.
    #[inline(never)]
    fn emptied(&mut self, run: usize) {
        let used = self.runs.len().min(RUNS);
        if let Some(at) = self
            .order
            .get(..used)
            .and_then(|o| o.iter().position(|&r| r == run))
        {
            self.order[at..used].rotate_left(1);
            self.backs[at..used].rotate_left(1);
            self.backs[used - 1] = 0;
        }
    }

    /// Takes the heap's least item, handing it to `f` where it lies.
    #[inline(never)]
    fn take_heap(&mut self, f: &mut impl FnMut(&V)) {
        if let Some(Reverse((_, slot))) = self.heap.pop() {
            self.free.push(slot);
            if let Some(v) = self.slab.get(slot as usize) {
                f(v);
            }
        }
        self.heap_top = self.heap.peek().map_or(NONE, |&Reverse((k, _))| k);
        self.next = self.heap_top.min(self.fronts[self.least % RUNS]);
    }

    /// Takes the front of run `run`, the least item held, handing it to `f` where it lies
    /// (popping it first was a copy more, callgrind).
    #[inline(always)]
    fn take_run(&mut self, run: usize, f: &mut impl FnMut(&V)) {
        let Some(q) = self.runs.get_mut(run) else {
            return;
        };
        let next = q.take_front(&mut self.spare, f);
        self.fronts[run % RUNS] = next;
        if next == NONE {
            self.emptied(run);
        }
        self.least = self.least_run();
        self.next = self.heap_top.min(self.fronts[self.least % RUNS]);
    }

    /// The opened run whose front key is least (empty runs' are [`NONE`], above any other).
    #[inline(always)]
    fn least_run(&self) -> usize {
        let mut best = 0;
        for i in 1..self.runs.len().min(RUNS) {
            if self.fronts[i] < self.fronts[best] {
                best = i;
            }
        }
        best
    }

    /// The item with the least key.
    #[cfg(test)]
    pub fn pop(&mut self) -> Option<V> {
        let mut out = None;
        let mut asked = false;
        self.pop_while(|_| !std::mem::replace(&mut asked, true), |v| out = Some(*v));
        out
    }

    /// The least key held, [`NONE`] when empty.
    #[inline(always)]
    pub fn least_key(&self) -> u128 {
        self.next
    }

    /// Takes the items in key order while `due` passes their key, handing each to `f` where
    /// it lies (the window's events are copied once, into the batch).
    #[inline(always)]
    pub fn pop_while(&mut self, mut due: impl FnMut(u128) -> bool, mut f: impl FnMut(&V)) {
        loop {
            let key = self.next;
            if key == NONE || !due(key) {
                return;
            }
            // Keys are distinct: the heap's top is the least key only when it is in the heap.
            if key == self.heap_top {
                self.take_heap(&mut f);
            } else {
                self.take_run(self.least, &mut f);
            }
        }
    }

    /// Blocks held: the runs' and the spares.
    #[cfg(test)]
    pub fn blocks(&self) -> usize {
        let held = |b: &Vec<V>| usize::from(b.capacity() > 0);
        let runs: usize = self
            .runs
            .iter()
            .map(|q| held(&q.front) + q.middle.len() + held(&q.back))
            .sum();
        runs + self.spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS_TESTED: usize = 8;

    #[derive(Clone, Copy, Default)]
    struct Item {
        key: u128,
        value: u64,
    }

    impl Keyed for Item {
        fn key(&self) -> u128 {
            self.key
        }
    }

    fn key(k: u64, n: u64) -> u128 {
        (k as u128) << 64 | n as u128
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
            // Runs emptied and filled again while others hold items.
            (0..900).map(|i| (i % 3) * 7 + i / 3 * 10).collect(),
            (0..900)
                .map(|i| if i % 50 < 10 { i } else { 10_000 - i })
                .collect(),
        ];
        for keys in &orders {
            check::<1, BLOCK>(keys);
            check::<2, BLOCK>(keys);
            check::<3, BLOCK>(keys);
            check::<RUNS_TESTED, BLOCK>(keys);
            // Blocks used up and opened on every few pushes and pops, and on each one.
            check::<3, 4>(keys);
            check::<RUNS_TESTED, 4>(keys);
            check::<2, 1>(keys);
        }
    }

    fn check<const R: usize, const B: usize>(keys: &[u64]) {
        let mut runs = Runs::<Item, R, B>::default();
        let mut heap = BinaryHeap::new();
        let mut out = (Vec::new(), Vec::new());
        for (n, k) in keys.iter().enumerate() {
            let k = key(*k, n as u64);
            runs.push(k, Item { key: k, value: 0 });
            heap.push(Reverse(k));
            // Pop now and then, as the window does while items keep coming; an item not
            // yet due stays.
            if n % 3 == 0 {
                let least = heap.peek().map(|Reverse(k)| *k);
                let mut taken = Vec::new();
                runs.pop_while(|k| Some(k) < least, |i| taken.push(i.key));
                assert!(taken.is_empty());
                runs.pop_while(|k| Some(k) <= least, |i| taken.push(i.key));
                out.0.push(taken);
                out.1
                    .push(heap.pop().map(|Reverse(k)| k).into_iter().collect());
            }
        }
        while let Some(Reverse(k)) = heap.pop() {
            out.1.push(vec![k]);
            out.0.push(runs.pop().map(|i| i.key).into_iter().collect());
        }
        assert_eq!(out.0, out.1, "{R} runs, blocks of {B}");
        assert!(runs.pop().is_none());
    }

    impl<V: Keyed, const RUNS: usize, const B: usize> Runs<V, RUNS, B> {
        /// The slots of every block made.
        fn slots(&self) -> usize {
            let held: usize = (self.runs.iter())
                .map(|r| {
                    [&r.front, &r.back]
                        .map(|b| usize::from(!b.is_empty()))
                        .iter()
                        .sum::<usize>()
                        + r.middle.len()
                })
                .sum();
            (held + self.spare.len()) * B
        }
    }

    /// The runs' memory follows the items held at once: a window of 1,100 time units over a
    /// stream keyed by its time (one item a unit) and one keyed 300 units back (one item in
    /// three units), as lookups and the operations around them are, takes room for the items
    /// it holds and less than two blocks per run more. Rings cycling through a power of two
    /// of slots each took 2,048 and 512.
    #[test]
    fn blocks_follow_the_items_held() {
        const B: usize = 64;
        let mut runs = Runs::<Item, RUNS_TESTED, B>::default();
        let (mut held, mut most) = (0usize, 0usize);
        for t in 2_000..20_000u64 {
            let n = 2 * t;
            runs.push(
                key(t, n),
                Item {
                    key: key(t, n),
                    value: t,
                },
            );
            held += 1;
            if t % 3 == 0 {
                let k = key(t - 300, n + 1);
                runs.push(k, Item { key: k, value: t });
                held += 1;
            }
            most = most.max(held);
            runs.pop_while(|k| k < key(t - 1_100, 0), |_| held -= 1);
        }
        assert_eq!(runs.runs.len(), 2);
        assert!(
            runs.slots() < most + 2 * 2 * B,
            "{} slots for {most} items held at most",
            runs.slots()
        );
    }

    /// The backs are kept highest first, each the key of its run's last item (0 for an empty
    /// run), so the first that fits a push is the tightest: whatever the arrival order, and
    /// as runs empty and fill again.
    #[test]
    fn backs_stay_highest_first_and_name_each_runs_last_item() {
        let mut rnd = crate::test_rng::xorshift(5u64);
        let mut runs = Runs::<Item, 4, 4>::default();
        let mut last: Vec<Option<u128>> = Vec::new();
        for n in 0..5000u64 {
            let k = key(n / 2 + rnd(40), n);
            runs.push(k, Item { key: k, value: 0 });
            if rnd(3) == 0 {
                // Now and then past every item: runs empty, some while others hold items.
                let bound = key(n / 2 + rnd(50), 0);
                runs.pop_while(|k| k < bound, |_| {});
            }
            let used = runs.runs.len();
            let backs = &runs.backs[..used];
            assert!(backs.windows(2).all(|p| p[0] >= p[1]), "{backs:?}");
            last.clear();
            last.resize(used, None);
            for (at, &run) in runs.order[..used].iter().enumerate() {
                let q = &runs.runs[run];
                let want = if q.is_empty() {
                    0
                } else {
                    let block = &q.back[..q.tail];
                    block.last().map_or(0, Keyed::key)
                };
                assert_eq!(backs[at], want, "run {run} at {at}");
                last[run] = Some(want);
            }
            assert!(
                last.iter().all(Option::is_some),
                "each run once in the order"
            );
        }
    }

    /// The window's input, one stream in key order and one a little behind it, takes two
    /// runs and never the heap.
    #[test]
    fn two_interleaved_streams_take_two_runs() {
        let mut runs = Runs::<Item, RUNS_TESTED>::default();
        let mut n = 0;
        for t in 1_000..50_000u64 {
            n += 1;
            runs.push(
                key(t, n),
                Item {
                    key: key(t, n),
                    value: 0,
                },
            );
            if t % 4 == 0 {
                n += 1;
                runs.push(
                    key(t - 30, n),
                    Item {
                        key: key(t - 30, n),
                        value: 0,
                    },
                );
            }
            runs.pop_while(|k| k < key(t - 500, 0), |_| {});
        }
        assert_eq!((runs.runs.len(), runs.heap.len()), (2, 0));
    }

    #[test]
    fn values_travel_with_their_keys() {
        let mut runs = Runs::<Item, RUNS_TESTED>::default();
        // More descending streams than runs: the heap takes the rest.
        for i in 0..3 * RUNS_TESTED as u64 {
            let k = key(100 - i, i);
            runs.push(
                k,
                Item {
                    key: k,
                    value: i * 10,
                },
            );
        }
        assert!(!runs.heap.is_empty());
        let mut left = 0;
        while let Some(Item { key: k, value }) = runs.pop() {
            let i = k as u64;
            assert_eq!((value, (k >> 64) as u64), (i * 10, 100 - i));
            left += 1;
        }
        assert_eq!(left, 3 * RUNS_TESTED);
    }

    /// After every push and pop, each run's front key is its first item's (read from the
    /// block it was in, or from the next block when a pop ended one) and the least key held
    /// is the least of them and the heap's: with blocks of one, two and 8,192 items, runs
    /// emptied and filled again, and items left to the heap.
    #[test]
    fn fronts_name_each_runs_first_item_across_block_ends() {
        fn check<const R: usize, const B: usize>(seed: u64) {
            let mut rnd = crate::test_rng::xorshift(seed);
            let mut runs = Runs::<Item, R, B>::default();
            let mut held = BinaryHeap::new();
            for n in 0..3000u64 {
                let k = key(n / 3 + rnd(20), n);
                runs.push(k, Item { key: k, value: n });
                held.push(Reverse(k));
                if rnd(2) == 0 {
                    let bound = key(n / 3 + rnd(15), 0);
                    runs.pop_while(
                        |k| k < bound,
                        |i| {
                            assert_eq!(held.pop(), Some(Reverse(i.key)));
                        },
                    );
                }
                for (run, q) in runs.runs.iter().enumerate() {
                    let first = q.front_block().get(q.head).filter(|_| !q.is_empty());
                    assert_eq!(
                        runs.fronts[run],
                        first.map_or(NONE, Keyed::key),
                        "run {run}"
                    );
                }
                let least = held.peek().map_or(NONE, |Reverse(k)| *k);
                assert_eq!(runs.next, least);
            }
        }
        for seed in [3, 17, 99] {
            check::<2, 1>(seed);
            check::<2, 2>(seed);
            check::<3, 4>(seed);
            check::<RUNS_TESTED, BLOCK>(seed);
        }
    }

    /// An item is written where it is kept: `fill` is handed the run's slot itself (here a
    /// block given back to the spares, which still holds the item read through there), not
    /// a value built elsewhere and copied in.
    #[test]
    fn items_are_filled_in_their_blocks_slot() {
        let mut runs = Runs::<Item, 2, 4>::default();
        for n in 0..8u64 {
            runs.push(
                key(n, n),
                Item {
                    key: key(n, n),
                    value: 100 + n,
                },
            );
        }
        runs.pop_while(|k| k < key(4, 0), |_| {});
        // The first block was read through and kept as a spare; the next block opened takes
        // it, and the one after is new (default items).
        let mut seen = Vec::new();
        for n in 8..13u64 {
            let k = key(n, n);
            runs.push_with(k, |slot| {
                seen.push(slot.value);
                *slot = Item { key: k, value: n };
            });
        }
        assert_eq!(seen, [100, 101, 102, 103, 0]);
        let mut out = Vec::new();
        while let Some(i) = runs.pop() {
            out.push(i.value);
        }
        assert_eq!(out, [104, 105, 106, 107, 8, 9, 10, 11, 12]);
    }
}
