//! What the operations say about each name over time: the ground truth the classification
//! asks "did this name exist at that point" and "did a writer touch it meanwhile".
//!
//! Facts older than the retention horizon are folded into one base fact per name, so memory
//! grows with the number of names, not with the length of the trace.
use std::collections::{HashMap, VecDeque};

use tracer_common::OpKind;

use super::align::PathId;

/// Whether a name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exists {
    Yes,
    No,
}

/// One completed operation on a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fact {
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    pub kind: OpKind,
    pub result: i32,
    /// What the operation proves about the name once it completed (None: nothing).
    pub effect: Option<Exists>,
    /// It changed whether the name exists (a successful create, mkdir, unlink, rmdir, rename).
    pub writer: bool,
}

const EEXIST: i32 = -17;

impl Fact {
    /// The facts an operation's result establishes about its first and (renames) second path.
    /// ENOENT results prove nothing: a spurious ENOENT is what the diff looks for, so it must
    /// not become the evidence that excuses the next one.
    pub fn from_op(
        kind: OpKind,
        result: i32,
        ts_begin: u64,
        ts_end: u64,
        tid: u32,
    ) -> [Option<Fact>; 2] {
        let fact = |effect: Option<Exists>, writer: bool| Fact {
            ts_begin,
            ts_end,
            tid,
            kind,
            result,
            effect,
            writer,
        };
        let ok = result >= 0;
        match kind {
            OpKind::Create | OpKind::Mkdir if ok => [Some(fact(Some(Exists::Yes), true)), None],
            OpKind::Create | OpKind::Mkdir if result == EEXIST => {
                [Some(fact(Some(Exists::Yes), false)), None]
            }
            OpKind::Unlink | OpKind::Rmdir if ok => [Some(fact(Some(Exists::No), true)), None],
            OpKind::Rename if ok => [
                Some(fact(Some(Exists::No), true)),
                Some(fact(Some(Exists::Yes), true)),
            ],
            OpKind::Stat | OpKind::Open | OpKind::Readdir if ok => {
                [Some(fact(Some(Exists::Yes), false)), None]
            }
            _ => [None, None],
        }
    }
}

#[derive(Default)]
struct NameHistory {
    /// The last effective fact folded out of `recent`.
    base: Option<Fact>,
    /// Facts of the last retention period, sorted by `ts_end`.
    recent: VecDeque<Fact>,
}

/// Per-name operation history of one trace.
pub struct History {
    names: HashMap<PathId, NameHistory>,
    retention: u64,
}

impl History {
    /// `retention`: how far back (ns) queries may reach behind the latest `now` passed to
    /// [`History::add`].
    pub fn new(retention: u64) -> History {
        History {
            names: HashMap::new(),
            retention,
        }
    }

    pub fn add(&mut self, path: PathId, fact: Fact, now: u64) {
        let h = self.names.entry(path).or_default();
        // Facts come nearly in completion order: append unless one finished earlier.
        if h.recent.back().is_none_or(|f| f.ts_end <= fact.ts_end) {
            h.recent.push_back(fact);
        } else {
            let at = h.recent.partition_point(|f| f.ts_end <= fact.ts_end);
            h.recent.insert(at, fact);
        }
        let horizon = now.saturating_sub(self.retention);
        while h.recent.front().is_some_and(|f| f.ts_end < horizon) {
            if let Some(old) = h.recent.pop_front() {
                if old.effect.is_some() {
                    h.base = Some(old);
                }
            }
        }
    }

    /// The last fact with an effect on `path` that completed before `t`.
    pub fn state_at(&self, path: PathId, t: u64) -> Option<&Fact> {
        let h = self.names.get(&path)?;
        h.recent
            .iter()
            .rev()
            .find(|f| f.ts_end < t && f.effect.is_some())
            .or(h.base.as_ref())
    }

    /// Facts on `path` that end at or after `b`, newest first. Queries ask about the recent
    /// past, so walking back from the newest stops after a few.
    fn ending_after(&self, path: PathId, b: u64) -> impl Iterator<Item = &Fact> {
        self.names
            .get(&path)
            .into_iter()
            .flat_map(move |h| h.recent.iter().rev().take_while(move |f| f.ts_end >= b))
    }

    /// A writer operation on `path` whose interval overlaps `[b, e]`.
    pub fn writer_overlapping(&self, path: PathId, b: u64, e: u64) -> Option<&Fact> {
        self.ending_after(path, b)
            .find(|f| f.writer && f.ts_begin <= e)
    }

    /// Any operation of `kinds` on `path` overlapping `[b, e]` (coverage-gap attribution).
    pub fn op_overlapping(&self, path: PathId, b: u64, e: u64, kinds: &[OpKind]) -> Option<&Fact> {
        self.ending_after(path, b)
            .find(|f| kinds.contains(&f.kind) && f.ts_begin <= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(h: &mut History, kind: OpKind, result: i32, b: u64, e: u64, now: u64) {
        for f in Fact::from_op(kind, result, b, e, 1).into_iter().flatten() {
            h.add(7, f, now);
        }
    }

    #[test]
    fn state_is_the_last_completed_effect() {
        let mut h = History::new(1_000);
        add(&mut h, OpKind::Create, 0, 10, 20, 20);
        add(&mut h, OpKind::Stat, -2, 30, 40, 40);
        add(&mut h, OpKind::Unlink, 0, 50, 60, 60);
        assert_eq!(h.state_at(7, 5), None);
        assert_eq!(h.state_at(7, 45).map(|f| f.effect), Some(Some(Exists::Yes)));
        assert_eq!(h.state_at(7, 61).map(|f| f.effect), Some(Some(Exists::No)));
        assert_eq!(
            h.writer_overlapping(7, 55, 58).map(|f| f.kind),
            Some(OpKind::Unlink)
        );
        assert_eq!(h.writer_overlapping(7, 30, 40), None, "a stat is no writer");
    }

    #[test]
    fn old_facts_fold_into_the_base() {
        let mut h = History::new(100);
        add(&mut h, OpKind::Create, 0, 10, 20, 20);
        add(&mut h, OpKind::Stat, 0, 30, 40, 40);
        add(&mut h, OpKind::Readdir, -2, 41, 42, 42);
        add(&mut h, OpKind::Unlink, 0, 950, 960, 1_000);
        let nh = &h.names[&7];
        assert_eq!(nh.recent.len(), 1);
        assert_eq!(nh.base.map(|f| f.kind), Some(OpKind::Stat));
        assert_eq!(h.state_at(7, 450).map(|f| f.kind), Some(OpKind::Stat));
    }

    #[test]
    fn enoent_and_eexist_results() {
        let [f, g] = Fact::from_op(OpKind::Stat, -2, 0, 1, 1);
        assert!(f.is_none() && g.is_none(), "ENOENT proves nothing");
        let [f, _] = Fact::from_op(OpKind::Create, -17, 0, 1, 1);
        let f = f.expect("EEXIST proves existence");
        assert_eq!((f.effect, f.writer), (Some(Exists::Yes), false));
        let [old, new] = Fact::from_op(OpKind::Rename, 0, 0, 1, 1);
        assert_eq!(old.and_then(|f| f.effect), Some(Exists::No));
        assert_eq!(new.and_then(|f| f.effect), Some(Exists::Yes));
    }
}
