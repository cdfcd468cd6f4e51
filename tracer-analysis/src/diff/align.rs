//! Stable keys: paths relative to the workload's file system root, interned once and shared by
//! both sides, so a kernel event and a model event about the same name get the same key although
//! their dentry ids have nothing in common. Also the cross-side matching of operation results.
use std::collections::VecDeque;

// foldhash: the per-event tables are keyed by small integers and names; SipHash (std's
// default, built against hash flooding) cost a quarter of the diff's instructions.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde::Serialize;
use tracer_common::OpKind;

/// An interned path. [`ROOT`] is the workload's file system root.
pub type PathId = u32;
pub const ROOT: PathId = 0;
/// An interned name (a path component, or an operation's whole path as its event holds it).
pub type NameId = u32;

/// An operation's path and, for a rename or exchange, its second path.
pub type OpPaths = (PathId, Option<PathId>);

/// Path interner: a tree of (parent, name) nodes, names interned once.
pub struct Paths {
    /// Per node: its parent and last component (the root's are itself and the empty name).
    nodes: Vec<(PathId, NameId)>,
    names: Vec<Box<[u8]>>,
    name_ids: HashMap<Box<[u8]>, NameId>,
    children: HashMap<(PathId, NameId), PathId>,
    /// Operation paths by their event's name id, without and with the second path: parsed
    /// once.
    operations: Vec<[Option<OpPaths>; 2]>,
}

impl Default for Paths {
    fn default() -> Self {
        let mut p = Paths {
            nodes: Vec::new(),
            names: Vec::new(),
            name_ids: HashMap::new(),
            children: HashMap::new(),
            operations: Vec::new(),
        };
        let empty = p.name(b"");
        p.nodes.push((ROOT, empty));
        p
    }
}

impl Paths {
    /// The id of the name `bytes`.
    pub fn name(&mut self, bytes: &[u8]) -> NameId {
        if let Some(n) = self.name_ids.get(bytes) {
            return *n;
        }
        let n = self.names.len() as NameId;
        self.names.push(Box::from(bytes));
        self.name_ids.insert(Box::from(bytes), n);
        n
    }

    /// The bytes of name `n`.
    pub fn name_bytes(&self, n: NameId) -> &[u8] {
        self.names.get(n as usize).map_or(&[], |b| b)
    }

    /// The node for `name` under `parent`. `.` and `..` are taken literally: lookups never see
    /// them and the workload's paths are normalized by [`Paths::parse`].
    pub fn child(&mut self, parent: PathId, name: NameId) -> PathId {
        let next = self.nodes.len() as PathId;
        let id = *self.children.entry((parent, name)).or_insert(next);
        if id == next {
            self.nodes.push((parent, name));
        }
        id
    }

    /// A workload path ("d0/f1", "/d0//f1/", "./f1") relative to the root.
    pub fn parse(&mut self, path: &[u8]) -> PathId {
        path.split(|b| *b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .fold(ROOT, |dir, c| {
                let n = self.name(c);
                self.child(dir, n)
            })
    }

    /// The path, and with `two` (a rename's event) the second path after the NUL, of an
    /// operation whose event holds the name `n`.
    pub fn operation(&mut self, n: NameId, two: bool) -> OpPaths {
        if let Some(p) = self
            .operations
            .get(n as usize)
            .and_then(|o| o[usize::from(two)])
        {
            return p;
        }
        let bytes = self.names.get(n as usize).cloned().unwrap_or_default();
        let (first, second) = match bytes.iter().position(|b| *b == 0) {
            Some(i) if two => (&bytes[..i], Some(&bytes[i + 1..])),
            _ => (&bytes[..], None),
        };
        let p = (self.parse(first), second.map(|s| self.parse(s)));
        let i = n as usize;
        if i >= self.operations.len() {
            self.operations.resize(i + 1, [None; 2]);
        }
        self.operations[i][usize::from(two)] = Some(p);
        p
    }

    /// The parent directory, None for the root.
    pub fn parent(&self, id: PathId) -> Option<PathId> {
        match self.nodes.get(id as usize) {
            Some((p, _)) if id != ROOT => Some(*p),
            _ => None,
        }
    }

    /// The last component.
    pub fn leaf(&self, id: PathId) -> &[u8] {
        self.name_bytes(self.leaf_name(id))
    }

    /// The last component's name id.
    pub fn leaf_name(&self, id: PathId) -> NameId {
        self.nodes.get(id as usize).map_or(0, |(_, n)| *n)
    }

    /// "d0/f1" (the root is "/"); bytes that are not UTF-8 are escaped.
    pub fn render(&self, id: PathId) -> String {
        if id == ROOT {
            return "/".into();
        }
        let mut parts = Vec::new();
        let mut cur = id;
        while cur != ROOT {
            parts.push(self.leaf(cur));
            match self.parent(cur) {
                Some(p) => cur = p,
                None => break,
            }
        }
        let mut out = String::new();
        for (i, p) in parts.iter().rev().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(&String::from_utf8_lossy(p));
        }
        out
    }
}

/// One operation result, waiting for its counterpart on the other side.
#[derive(Clone, Copy, Debug)]
struct Pending {
    result: i32,
    ts_begin: u64,
    /// A race on its side makes another result possible.
    racy: bool,
}

/// An operation whose result differs between the kernel and the model.
#[derive(Clone, Debug, Serialize)]
pub struct OpDivergence {
    pub operation: &'static str,
    pub name: String,
    /// 1-based: the n-th operation of this kind on this name, in `ts_begin` order per side.
    pub occurrence: u64,
    pub kernel_result: i32,
    pub model_result: i32,
    pub kernel_ts_begin: u64,
    pub model_ts_begin: u64,
    /// A writer of the name overlapped the operation on one side (or two writers before it
    /// overlapped each other): either result is possible.
    pub explained_by_race: bool,
}

/// Matches the n-th operation of a kind on a name across the two sides and compares results.
/// Its memory is the backlog of one side over the other, capped by `cap` entries.
pub struct OpMatcher {
    /// Per key: which side the queued results are from, and the queue.
    queues: HashMap<(OpKind, PathId), (usize, VecDeque<Pending>, u64)>,
    backlog: usize,
    cap: usize,
    pub compared: u64,
    pub differ: u64,
    /// Of those that differ, the ones a race on either side explains.
    pub explained_by_race: u64,
    pub abandoned: bool,
    pub examples: Vec<OpDivergence>,
    max_examples: usize,
    /// Names whose state a race left different between the sides: their results may differ
    /// until a writer succeeds on both sides (the state is then the same again).
    diverged: HashSet<PathId>,
}

impl OpMatcher {
    pub fn new(cap: usize, max_examples: usize) -> OpMatcher {
        OpMatcher {
            queues: HashMap::new(),
            backlog: 0,
            cap,
            compared: 0,
            differ: 0,
            explained_by_race: 0,
            abandoned: false,
            examples: Vec::new(),
            max_examples,
            diverged: HashSet::new(),
        }
    }

    /// Records side `side`'s next operation of `kind` on `path` (`racy`: whether a race on this
    /// side makes another result possible; asked only when the answer can matter, when the
    /// result waits for its twin or differs from it: the question walks the history and was
    /// a third of resolving an operation in the profile). Returns the pair when the results
    /// differ and no race on either side explains it.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        side: usize,
        kind: OpKind,
        path: PathId,
        result: i32,
        ts_begin: u64,
        racy: impl FnOnce() -> bool,
        paths: &Paths,
    ) -> Option<OpDivergence> {
        if self.abandoned {
            return None;
        }
        let (owner, queue, seen) = self
            .queues
            .entry((kind, path))
            .or_insert_with(|| (side, VecDeque::new(), 0));
        if *owner == side || queue.is_empty() {
            *owner = side;
            queue.push_back(Pending {
                result,
                ts_begin,
                racy: racy(),
            });
            self.backlog += 1;
            if self.backlog > self.cap {
                // The two traces do not hold the same operations; stop before memory grows
                // with the trace instead of with the names.
                self.abandoned = true;
                self.queues.clear();
            }
            return None;
        }
        let other = queue.pop_front()?;
        self.backlog -= 1;
        *seen += 1;
        self.compared += 1;
        if other.result == result {
            let writer = matches!(
                kind,
                OpKind::Create | OpKind::Mkdir | OpKind::Unlink | OpKind::Rmdir
            );
            if writer && result >= 0 {
                self.diverged.remove(&path);
            }
            return None;
        }
        self.differ += 1;
        let (k, m) = if side == 0 {
            ((result, ts_begin), (other.result, other.ts_begin))
        } else {
            ((other.result, other.ts_begin), (result, ts_begin))
        };
        let d = OpDivergence {
            operation: kind.name(),
            name: paths.render(path),
            occurrence: *seen,
            kernel_result: k.0,
            model_result: m.0,
            kernel_ts_begin: k.1,
            model_ts_begin: m.1,
            explained_by_race: racy() || other.racy || self.diverged.contains(&path),
        };
        if self.examples.len() < self.max_examples {
            self.examples.push(d.clone());
        }
        if d.explained_by_race {
            self.explained_by_race += 1;
            self.diverged.insert(path);
            return None;
        }
        Some(d)
    }

    /// Operations one side has and the other never matched: (kernel, model).
    pub fn unmatched(&self) -> (u64, u64) {
        let mut out = (0, 0);
        for (owner, q, _) in self.queues.values() {
            if *owner == 0 {
                out.0 += q.len() as u64;
            } else {
                out.1 += q.len() as u64;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_and_intern() {
        let mut p = Paths::default();
        let a = p.parse(b"d0/f1");
        assert_eq!(p.parse(b"/d0//f1/"), a);
        assert_eq!(p.parse(b"./d0/./f1"), a);
        let d0 = p.parse(b"d0");
        let f1 = p.name(b"f1");
        assert_eq!(p.child(d0, f1), a);
        assert_eq!(p.parent(a), Some(d0));
        assert_eq!(p.parent(d0), Some(ROOT));
        assert_eq!(p.parent(ROOT), None);
        assert_eq!(p.render(a), "d0/f1");
        assert_eq!(p.render(ROOT), "/");
        assert_eq!(p.parse(b""), ROOT);
    }

    #[test]
    fn operation_paths_are_split_and_parsed_once() {
        let mut p = Paths::default();
        let both = p.name(b"d0/f1\0d1/f2");
        let (a, b) = p.operation(both, true);
        assert_eq!(p.render(a), "d0/f1");
        assert_eq!(b.map(|b| p.render(b)).as_deref(), Some("d1/f2"));
        assert_eq!(p.operation(both, true), (a, b));
        // Without the flag the NUL is part of a name.
        let (whole, none) = p.operation(both, false);
        assert_eq!((p.render(whole).as_str(), none), ("d0/f1\u{0}d1/f2", None));
        let f1 = p.name(b"f1");
        assert_eq!(p.leaf_name(a), f1);
        let d0 = p.parse(b"d0");
        assert_eq!(p.child(d0, f1), a);
    }

    #[test]
    fn matcher_compares_the_nth_operation_per_name() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        assert!(m.record(0, OpKind::Stat, f, 0, 10, || false, &p).is_none());
        assert!(m.record(0, OpKind::Stat, f, -2, 20, || false, &p).is_none());
        assert!(m.record(1, OpKind::Stat, f, 0, 5, || false, &p).is_none());
        let d = m.record(1, OpKind::Stat, f, 0, 6, || false, &p);
        assert_eq!(d.map(|d| d.kernel_result), Some(-2));
        m.record(1, OpKind::Unlink, f, 0, 7, || false, &p);
        m.record(0, OpKind::Open, f, -2, 30, || true, &p);
        assert!(
            m.record(1, OpKind::Open, f, 0, 31, || false, &p).is_none(),
            "a race on one side explains it"
        );
        assert_eq!((m.compared, m.differ, m.explained_by_race), (3, 2, 1));
        // The race left the sides disagreeing on the name: the next difference follows from
        // it, until a writer succeeds on both sides.
        m.record(0, OpKind::Open, f, 0, 40, || false, &p);
        assert!(m.record(1, OpKind::Open, f, -2, 41, || false, &p).is_none());
        m.record(0, OpKind::Create, f, 0, 50, || false, &p);
        assert!(m
            .record(1, OpKind::Create, f, 0, 51, || false, &p)
            .is_none());
        m.record(0, OpKind::Open, f, 0, 60, || false, &p);
        assert!(
            m.record(1, OpKind::Open, f, -2, 61, || false, &p).is_some(),
            "realigned by the create: a difference again needs its own race"
        );
        let d = &m.examples[0];
        assert_eq!((d.occurrence, d.kernel_result, d.model_result), (2, -2, 0));
        assert_eq!(m.unmatched(), (0, 1));
    }

    #[test]
    fn matcher_asks_about_a_race_only_when_the_answer_can_matter() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        let asked = std::cell::Cell::new(0);
        let ask = |racy| {
            asked.set(asked.get() + 1);
            racy
        };
        // Waiting for its twin, which may differ: asked.
        m.record(0, OpKind::Stat, f, 0, 10, || ask(false), &p);
        assert_eq!(asked.get(), 1);
        // The same result as its twin: not asked.
        assert!(m
            .record(1, OpKind::Stat, f, 0, 11, || ask(false), &p)
            .is_none());
        assert_eq!(asked.get(), 1);
        // A different result: asked, and the answer explains the difference.
        m.record(0, OpKind::Stat, f, 0, 20, || ask(false), &p);
        assert!(m
            .record(1, OpKind::Stat, f, -2, 21, || ask(true), &p)
            .is_none());
        assert_eq!(asked.get(), 3);
        assert_eq!((m.compared, m.differ, m.explained_by_race), (2, 1, 1));
    }

    #[test]
    fn matcher_gives_up_past_its_cap() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(3, 10);
        for i in 0..5 {
            m.record(0, OpKind::Stat, f, 0, i, || false, &p);
        }
        assert!(m.abandoned);
        assert_eq!(m.unmatched(), (0, 0));
    }
}
