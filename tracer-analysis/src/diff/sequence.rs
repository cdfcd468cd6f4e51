//! The kernel trace's per-CPU sequence numbers (`Event::cpu_seq`): the probes number every call
//! that passed the filter on its entry CPU, 1, 2, 3, ..., before anything can fail, so a number
//! no event carries is an event lost (no slot, ring buffer full, an exit that never ran, or an
//! event cut out of the file), found without trusting the footer. The footer's last number per
//! CPU adds the losses after a CPU's last event.
//!
//! Events of a CPU reach the file out of order (a call's event is sent at its exit, and calls
//! nest or sleep), so each CPU keeps the prefix it has seen whole and the numbers seen beyond
//! it. Memory is bounded: past [`AHEAD_MAX`] numbers beyond the prefix, the oldest hole is
//! taken as lost for good.
use std::collections::{BTreeMap, BTreeSet};

use super::report::CpuSequence;

/// Numbers a CPU may hold beyond its whole prefix before its oldest hole counts as final.
const AHEAD_MAX: usize = 1 << 16;

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

/// The numbering of one trace's kernel events, per CPU.
#[derive(Default)]
pub struct CpuSeqs {
    cpus: BTreeMap<u32, Cpu>,
    /// Kernel probe events without a number.
    pub unsequenced: u64,
}

impl CpuSeqs {
    pub fn push(&mut self, cpu: u32, seq: u32) {
        if seq == 0 {
            self.unsequenced += 1;
            return;
        }
        let seq = u64::from(seq);
        let c = self.cpus.entry(cpu).or_default();
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
            self.cpus.entry(*cpu).or_default();
        }
        let mut out = BTreeMap::new();
        for (cpu, c) in &mut self.cpus {
            while let Some(s) = c.ahead.pop_first() {
                c.skip_to(s);
            }
            if let Some(l) = last.get(cpu).copied().filter(|l| *l > c.whole) {
                c.missing += l - c.whole;
                c.first_missing.get_or_insert(c.whole + 1);
                c.whole = l;
            }
            out.insert(
                *cpu,
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
