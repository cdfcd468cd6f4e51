//! The kernel trace's per-CPU sequence numbers (`Event::cpu_seq`): the probes number every call
//! that passed the filter on its entry CPU, 1, 2, 3, ..., before anything can fail, so a number
//! no event carries is an event lost (no slot, ring buffer full, an exit that never ran, or an
//! event cut out of the file), found without trusting the footer. The footer's last number per
//! CPU adds the losses after a CPU's last event.
//!
//! An event carries the low 32 bits of its CPU's 64-bit count (`hit()` in the programs): past
//! 2^32 calls on one CPU the numbers start again at 0, 1, 2, ... Each is read as the number
//! nearest the CPU's whole prefix with those low bits (serial-number arithmetic, RFC 1982), so
//! the sequence goes on across the wrap and meets the footer's 64-bit last number. A 0 is
//! "unsequenced" until the CPU's prefix is half-way to the wrap; from there on it is the wrap's
//! number (a program that failed to count, the only other source of a 0, never happens there
//! alone: a 0 taken for a number that an event already has is a repeat).
//!
//! Events of a CPU reach the file out of order (a call's event is sent at its exit, and calls
//! nest or sleep), so each CPU keeps the prefix it has seen whole and the numbers seen beyond
//! it. Memory is bounded: past [`AHEAD_MAX`] numbers beyond the prefix, the oldest hole is
//! taken as lost for good.
use std::collections::{BTreeMap, BTreeSet};

use super::report::CpuSequence;

/// Numbers a CPU may hold beyond its whole prefix before its oldest hole counts as final.
const AHEAD_MAX: usize = 1 << 16;

/// Half the range of an event's number: an event's number is taken within this of the prefix.
const HALF: u64 = 1 << 31;

#[derive(Default)]
struct Cpu {
    /// Every number up to this one has been seen.
    whole: u64,
    ahead: BTreeSet<u64>,
    events: u64,
    missing: u64,
    first_missing: Option<u64>,
    repeated: u64,
}

impl Cpu {
    /// The 64-bit number whose low 32 bits an event carries: the one nearest the prefix (not
    /// below 1: numbers start there).
    fn unwrap(&self, low: u32) -> u64 {
        let d = low.wrapping_sub(self.whole as u32) as i32;
        self.whole
            .checked_add_signed(i64::from(d))
            .filter(|n| *n > 0)
            .unwrap_or(u64::from(low))
    }

    fn advance(&mut self) {
        while self.ahead.first() == Some(&(self.whole + 1)) {
            self.ahead.pop_first();
            self.whole += 1;
        }
    }

    /// Takes every number up to `to` as seen, counting those that were not as missing.
    fn skip_to(&mut self, to: u64) {
        if to > self.whole + 1 {
            self.missing += to - self.whole - 1;
            self.first_missing.get_or_insert(self.whole + 1);
        }
        self.whole = self.whole.max(to);
    }
}

/// CPUs numbered below this are found by index, the others in a map: a machine's CPU numbers
/// are small, a damaged trace's may be anything.
const DENSE: usize = 1 << 12;

/// The numbering of one trace's kernel events, per CPU.
#[derive(Default)]
pub struct CpuSeqs {
    /// By CPU number, below [`DENSE`]: one indexed load an event, where the map's search was
    /// some 40 instructions for each kernel event (callgrind).
    dense: Vec<Option<Cpu>>,
    /// The CPUs numbered from [`DENSE`] on.
    sparse: BTreeMap<u32, Cpu>,
    /// Kernel probe events without a number.
    pub unsequenced: u64,
}

impl CpuSeqs {
    fn get(&self, cpu: u32) -> Option<&Cpu> {
        match self.dense.get(cpu as usize) {
            Some(c) => c.as_ref(),
            None if cpu as usize >= DENSE => self.sparse.get(&cpu),
            None => None,
        }
    }

    /// CPU `cpu`'s numbering, made when it has none.
    #[inline(always)]
    fn cpu(&mut self, cpu: u32) -> &mut Cpu {
        let at = cpu as usize;
        if at >= DENSE {
            return self.sparse.entry(cpu).or_default();
        }
        if at >= self.dense.len() {
            self.dense.resize_with(at + 1, || None);
        }
        self.dense[at].get_or_insert_with(Cpu::default)
    }

    #[inline(always)]
    pub fn push(&mut self, cpu: u32, seq: u32) {
        // The common cases first, on a CPU below DENSE: the number after the CPU's whole
        // prefix (its low bits one more, and not 0, which may be "unsequenced"), which moves
        // the prefix on with no unwrapping and no set to touch unless numbers beyond wait;
        // and a 0 on a CPU with no number yet, unsequenced. Each was a call and a search of
        // both tables (half the counting's instructions, callgrind).
        if (cpu as usize) < DENSE {
            match self.dense.get_mut(cpu as usize).and_then(Option::as_mut) {
                Some(c) if seq != 0 && seq == (c.whole as u32).wrapping_add(1) => {
                    c.events += 1;
                    c.whole += 1;
                    if !c.ahead.is_empty() {
                        c.advance();
                    }
                    return;
                }
                None if seq == 0 => {
                    self.unsequenced += 1;
                    return;
                }
                _ => {}
            }
        }
        self.push_other(cpu, seq);
    }

    /// [`CpuSeqs::push`] of any other number, or on a CPU not seen yet.
    #[inline(never)]
    fn push_other(&mut self, cpu: u32, seq: u32) {
        if seq == 0 && self.get(cpu).is_none_or(|c| c.whole < HALF) {
            self.unsequenced += 1;
            return;
        }
        let c = self.cpu(cpu);
        let seq = c.unwrap(seq);
        c.events += 1;
        if seq == c.whole + 1 {
            // The common case: the next number, no set to touch unless numbers beyond wait.
            c.whole = seq;
            c.advance();
            return;
        }
        if seq <= c.whole || !c.ahead.insert(seq) {
            c.repeated += 1;
            return;
        }
        c.advance();
        if c.ahead.len() > AHEAD_MAX {
            if let Some(s) = c.ahead.pop_first() {
                c.skip_to(s);
                c.advance();
            }
        }
    }

    /// The numbering per CPU once every event is in; `last` is the footer's last number per
    /// CPU (empty when the footer is missing).
    pub fn finish(&mut self, last: &BTreeMap<u32, u64>) -> BTreeMap<u32, CpuSequence> {
        for cpu in last.keys() {
            self.cpu(*cpu);
        }
        let mut out = BTreeMap::new();
        let dense = (self.dense.iter_mut().enumerate())
            .filter_map(|(cpu, c)| Some((cpu as u32, c.as_mut()?)));
        for (cpu, c) in dense.chain(self.sparse.iter_mut().map(|(cpu, c)| (*cpu, c))) {
            while let Some(s) = c.ahead.pop_first() {
                c.skip_to(s);
            }
            if let Some(l) = last.get(&cpu).copied().filter(|l| *l > c.whole) {
                c.missing += l - c.whole;
                c.first_missing.get_or_insert(c.whole + 1);
                c.whole = l;
            }
            out.insert(
                cpu,
                CpuSequence {
                    events: c.events,
                    last: c.whole,
                    missing: c.missing,
                    first_missing: c.first_missing,
                    repeated: c.repeated,
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_repeats_and_the_tail_are_counted_per_cpu() {
        let mut s = CpuSeqs::default();
        for n in [1, 3, 2, 4, 7, 8, 8] {
            s.push(0, n);
        }
        for n in [2, 1] {
            s.push(1, n);
        }
        s.push(1, 0);
        let r = s.finish(&BTreeMap::from([(0, 8), (1, 4), (2, 1)]));
        assert_eq!(
            r[&0],
            CpuSequence {
                events: 7,
                last: 8,
                missing: 2,
                first_missing: Some(5),
                repeated: 1
            }
        );
        assert_eq!((r[&1].missing, r[&1].first_missing), (2, Some(3)), "tail");
        assert_eq!((r[&2].events, r[&2].missing), (0, 1), "a CPU with no event");
        assert_eq!(s.unsequenced, 1);
    }

    /// 2^32 calls on one CPU: the numbers start again at 0 (not "unsequenced" there), out of
    /// order across the wrap as before it; the footer's 64-bit last number meets them. Events
    /// numbered just below the wrap and arriving after it are not repeats.
    #[test]
    fn numbers_go_on_across_the_wrap() {
        let wrap = 1u64 << 32;
        let mut s = CpuSeqs::default();
        *s.cpu(0) = Cpu {
            whole: wrap - 3,
            events: wrap - 3,
            ..Cpu::default()
        };
        for n in [u32::MAX, 0, u32::MAX - 1, 2, 1, 4] {
            s.push(0, n);
        }
        let r = s.finish(&BTreeMap::from([(0, wrap + 5)]));
        assert_eq!(
            r[&0],
            CpuSequence {
                events: wrap + 3,
                last: wrap + 5,
                missing: 2,
                first_missing: Some(wrap + 3),
                repeated: 0
            }
        );
        assert_eq!(s.unsequenced, 0);
    }

    /// Far below the wrap, a 0 is still an event without a number, and a number from long
    /// before the prefix a repeat.
    #[test]
    fn a_zero_below_the_wrap_is_unsequenced() {
        let mut s = CpuSeqs::default();
        for n in [1, 2, 0, 1] {
            s.push(0, n);
        }
        let r = s.finish(&BTreeMap::new());
        assert_eq!((r[&0].last, r[&0].events, r[&0].repeated), (2, 3, 1));
        assert_eq!(s.unsequenced, 1);
    }

    /// CPUs found by index and CPUs in the map (from [`DENSE`] on, as a damaged trace may
    /// name) are each counted, and reported in CPU order, footer-only ones included.
    #[test]
    fn cpus_by_index_and_by_map_count_alike_in_cpu_order() {
        let mut s = CpuSeqs::default();
        let cpus = [
            DENSE as u32 + 7,
            3,
            DENSE as u32 - 1,
            DENSE as u32,
            u32::MAX,
        ];
        for n in 1..=3 {
            for (i, cpu) in cpus.iter().enumerate() {
                if n != 2 || i % 2 == 0 {
                    s.push(*cpu, n);
                }
            }
        }
        let r = s.finish(&BTreeMap::from([(9, 2), (DENSE as u32 + 1, 1)]));
        let mut want: Vec<u32> = cpus.to_vec();
        want.extend([9, DENSE as u32 + 1]);
        want.sort_unstable();
        assert_eq!(r.keys().copied().collect::<Vec<_>>(), want);
        for (i, cpu) in cpus.iter().enumerate() {
            let missing = u64::from(i % 2 == 1);
            assert_eq!((r[cpu].last, r[cpu].missing), (3, missing), "cpu {cpu}");
        }
        assert_eq!((r[&9].missing, r[&(DENSE as u32 + 1)].missing), (2, 1));
    }

    /// The common cases taken before the general path (the next number, a 0 on a CPU with
    /// none) count exactly as the general path alone does: random numbers near each CPU's
    /// prefix, zeros, repeats, holes, CPUs by index and in the map, across the wrap.
    #[test]
    fn the_common_cases_count_as_the_general_path_does() {
        let mut rnd = crate::test_rng::xorshift(31u64);
        for round in 0..20u64 {
            let (mut fast, mut general) = (CpuSeqs::default(), CpuSeqs::default());
            let cpus = [0, 1, 5, DENSE as u32 - 1, DENSE as u32 + 3];
            let mut next = [0u64; 5];
            if round % 2 == 1 {
                // Numbers near the wrap of the low 32 bits.
                next = [(1 << 32) - 40; 5];
                for (cpu, start) in cpus.iter().zip(next) {
                    for s in [&mut fast, &mut general] {
                        s.cpu(*cpu).whole = start;
                    }
                }
            }
            for _ in 0..3000 {
                let i = rnd(cpus.len() as u64) as usize;
                let seq = match rnd(10) {
                    0 => 0,
                    1 => next[i].wrapping_sub(rnd(5)) as u32,
                    2 => next[i].wrapping_add(2 + rnd(6)) as u32,
                    _ => {
                        next[i] += 1;
                        next[i] as u32
                    }
                };
                fast.push(cpus[i], seq);
                general.push_other(cpus[i], seq);
            }
            let last = BTreeMap::from([(1, next[1] + 3)]);
            assert_eq!(fast.finish(&last), general.finish(&last), "round {round}");
            assert_eq!(fast.unsequenced, general.unsequenced);
        }
    }

    #[test]
    fn without_a_footer_the_highest_number_is_the_last() {
        let mut s = CpuSeqs::default();
        for n in [1, 2, 5] {
            s.push(3, n);
        }
        let r = s.finish(&BTreeMap::new());
        assert_eq!((r[&3].last, r[&3].missing), (5, 2));
    }
}
