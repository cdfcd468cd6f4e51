//! Stable keys: paths relative to the workload's file system root, interned once and shared by
//! both sides, so a kernel event and a model event about the same name get the same key although
//! their dentry ids have nothing in common. Also the cross-side matching of operation results.
use std::collections::VecDeque;

// foldhash: the per-event tables are keyed by small integers and names; SipHash (std's
// default, built against hash flooding) cost a quarter of the diff's instructions.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde::Serialize;
use tracer_common::OpKind;

use crate::cache_line::hash_line;

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

    /// The node for `name` under `parent`, if anything named it.
    pub fn find_child(&self, parent: PathId, name: NameId) -> Option<PathId> {
        self.children.get(&(parent, name)).copied()
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
    ///
    /// Inlined, the first sight of a name apart: once `SideState::process` grew past the
    /// compiler's inlining budget, the call cost about 24 M instructions in the bench
    /// (callgrind).
    #[inline(always)]
    pub fn operation(&mut self, n: NameId, two: bool) -> OpPaths {
        if let Some(p) = self
            .operations
            .get(n as usize)
            .and_then(|o| o[usize::from(two)])
        {
            return p;
        }
        self.operation_new(n, two)
    }

    #[cold]
    #[inline(never)]
    fn operation_new(&mut self, n: NameId, two: bool) -> OpPaths {
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

    /// The parent and the last component's name, with one look-up (None for the root).
    pub fn node(&self, id: PathId) -> Option<(PathId, NameId)> {
        match self.nodes.get(id as usize) {
            Some(&node) if id != ROOT => Some(node),
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

/// One operation's result as its side resolved it, with what the kernel's anomaly names: it
/// waits in the matcher for its counterpart on the other side.
#[derive(Clone, Copy, Debug)]
pub struct OpResult {
    pub kind: OpKind,
    pub path: PathId,
    /// A rename's or exchange's second name.
    pub path2: Option<PathId>,
    /// 1-based: the n-th operation of its kind on its name on its side, in `ts_begin` order
    /// ([`OpMatcher::begin`]).
    pub occurrence: u64,
    /// The matcher's entry for its kind and name ([`Begun::key`]).
    pub key: u32,
    /// Its side's processing number (the evidence's `Obs::n`).
    pub n: u64,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    pub flags: u16,
    pub result: i32,
}

/// An operation begun on one side ([`OpMatcher::begin`]): its occurrence, and where the
/// matcher keeps its kind and name, so that [`OpMatcher::record`] finds them without hashing
/// them again (about 40 instructions an operation, callgrind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Begun {
    pub occurrence: u64,
    pub key: u32,
}

/// What an operation's side's history says of its result.
#[derive(Clone, Copy, Debug, Default)]
pub struct Judgement {
    /// A race on its side makes another result possible.
    pub racy: bool,
    /// Its own side's history rules the result out (a stat that found a name its side had
    /// removed, with no writer near): the side whose result is wrong, when the other's agrees
    /// with its history.
    pub contradicts: bool,
}

/// A result waiting for its counterpart on the other side.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    op: OpResult,
    judged: Judged,
}

/// What a waiting result holds of its side's judgement.
#[derive(Clone, Copy, Debug)]
enum Judged {
    /// Asked when it began to wait: its twin's result was not known to be the same.
    Asked(Judgement),
    /// Not asked: its counterpart had begun with the same result ([`OpMatcher::record`]); a
    /// judgement is read only when the two results differ.
    SameAhead,
    /// Not a result: its side settled the pair when it began the operation
    /// ([`OpMatcher::begin_or_settle`]), its twin still unrecorded. It stands in for the
    /// result until the twin's record takes it; the pair is counted already and it is not in
    /// the backlog.
    Settled,
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

/// One (kind, name)'s operations on both sides: how many each side has begun, and the results
/// waiting for their counterpart, per side, by occurrence.
#[derive(Default)]
struct Key {
    begun: [u64; 2],
    /// Per side, the result of its operation numbered `begun` (the last it began).
    last_result: [i32; 2],
    /// Per side, the occurrence of a result the other side settled at its begin and the side
    /// has not recorded yet (0: none; occurrences count from 1): its record tests this
    /// before searching `waiting`. Only one a side: a second settled before the first is
    /// recorded meets a stand-in ([`Judged::Settled`]) in `waiting` instead. Nearly every
    /// settled pair has its first result still to record, and a stand-in's push and its
    /// taking cost about 70 instructions a pair (callgrind).
    settled: [u64; 2],
    /// Per side, least occurrence first. A side resolves its operations in end order, which is
    /// begin order unless one overlaps another, so an insert is nearly always at the back.
    waiting: [VecDeque<Waiting>; 2],
}

/// Lines of [`OpMatcher`]'s recent keys: a power of two, a few times the names a workload
/// works on at once.
const KEY_BITS: u32 = 12;
/// The tag of an empty line: no (kind, name) has it (a name's id is 32 bits).
const NO_KEY: u64 = u64::MAX;

/// The tag of (`kind`, `path`) and its line among [`OpMatcher`]'s recent keys.
fn key_line(kind: OpKind, path: PathId) -> (u64, usize) {
    let tag = (u64::from(path) << 8) | kind as u64;
    (tag, hash_line(tag, KEY_BITS))
}

/// Matches the n-th operation of a kind on a name across the two sides (n counted in begin
/// order on each side, as the sides begin them, not as they resolve: a long operation ends
/// after a short one that began later) and compares results. Its memory is a counter per
/// (kind, name) and the backlog of one side over the other, capped by `cap` entries.
pub struct OpMatcher {
    /// Per (kind, name), its entry in `entries`.
    keys: HashMap<(OpKind, PathId), u32>,
    /// Recent answers of `keys`, direct-mapped by (kind, name) ([`key_line`]): a line answers
    /// only for the pair it holds. Both sides begin each operation, so the second asks what
    /// the first just did: the hash probe cost about 38 instructions an operation
    /// (callgrind), a line about 10.
    recent_keys: Box<[(u64, u32)]>,
    entries: Vec<Key>,
    backlog: usize,
    cap: usize,
    pub compared: u64,
    pub differ: u64,
    /// Of those that differ, the ones a race on either side explains.
    pub explained_by_race: u64,
    pub abandoned: bool,
    pub examples: Vec<OpDivergence>,
    max_examples: usize,
    /// Names whose state a writer's raced result left different between the sides: their
    /// results may differ until a writer succeeds on both sides (the state is then the same
    /// again).
    diverged: HashSet<PathId>,
    /// Per side, the differences no race explains that the side files, with its operation
    /// ([`OpMatcher::take_differences`]), whichever side's result completed the pair.
    differences: [Vec<(OpResult, OpDivergence)>; 2],
}

/// A writer that succeeded in making or removing its name: when both sides' results are the
/// same, the name's state is the same again on both ([`OpMatcher::record`]).
fn realigns(kind: OpKind, result: i32) -> bool {
    matches!(
        kind,
        OpKind::Create | OpKind::Mkdir | OpKind::Unlink | OpKind::Rmdir
    ) && result >= 0
}

/// Operations that change which names exist: only their results, when they differ, leave the
/// two sides' states apart.
pub(super) fn writes(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::Create
            | OpKind::Mkdir
            | OpKind::Unlink
            | OpKind::Rmdir
            | OpKind::Rename
            | OpKind::Exchange
    )
}

impl OpMatcher {
    pub fn new(cap: usize, max_examples: usize) -> OpMatcher {
        OpMatcher {
            keys: HashMap::new(),
            recent_keys: vec![(NO_KEY, 0); 1 << KEY_BITS].into_boxed_slice(),
            entries: Vec::new(),
            backlog: 0,
            cap,
            compared: 0,
            differ: 0,
            explained_by_race: 0,
            abandoned: false,
            examples: Vec::new(),
            max_examples,
            diverged: HashSet::new(),
            differences: [Vec::new(), Vec::new()],
        }
    }

    /// Side `side` begins its next operation of `kind` on `path` (called in begin order),
    /// which returns `result`: its occurrence and entry, to give [`OpMatcher::record`] (in
    /// the result) when the operation has been judged. Never settles the pair (see
    /// [`OpMatcher::begin_or_settle`]): the matcher as it was, the tests' oracle.
    #[cfg(test)]
    pub fn begin(&mut self, side: usize, kind: OpKind, path: PathId, result: i32) -> Begun {
        let begun = self.begin_or_settle(side, kind, path, result, false);
        begun.expect("a pair is settled only when asked")
    }

    /// As [`OpMatcher::begin`], but with `may_settle` (the caller needs the result for
    /// nothing else) a pair already known to agree is settled here and None returned: the
    /// result is not to be recorded. The pair is known to agree when the other side began its
    /// twin last ([`Key::begun`]) with the same result; it is counted now and its other
    /// result, if waiting, taken; otherwise that result finds itself settled at its record
    /// ([`Key::settled`], or a stand-in, [`Judged::Settled`]). Not settled: a create, mkdir,
    /// unlink or rmdir that succeeded, whose record at its place among the others realigns
    /// the name in `diverged` (moving it would change what a differing pair recorded between
    /// reads).
    ///
    /// The backlog's cap then counts only results held for a twin not known to agree: a
    /// settled result is never held, and its mark or stand-in lives only while its twin waits
    /// in the other side's suspects. Below the cap nothing else changes: the differences, the
    /// `diverged` names and the final counts are the ones recording both results gave. At
    /// the cap matching is abandoned later, if at all, and `compared` counts the settled
    /// pairs as they began.
    #[inline(always)]
    pub fn begin_or_settle(
        &mut self,
        side: usize,
        kind: OpKind,
        path: PathId,
        result: i32,
        may_settle: bool,
    ) -> Option<Begun> {
        if self.abandoned {
            return Some(Begun {
                occurrence: 0,
                key: 0,
            });
        }
        let (tag, line) = key_line(kind, path);
        let key = match self.recent_keys.get(line) {
            Some(&(t, k)) if t == tag => k,
            _ => self.key_of(kind, path, tag, line),
        };
        let (mine, theirs) = (side & 1, 1 - (side & 1));
        let entry = &mut self.entries[key as usize];
        entry.last_result[mine] = result;
        let n = &mut entry.begun[mine];
        *n += 1;
        let begun = Begun {
            occurrence: *n,
            key,
        };
        if !may_settle
            || entry.begun[theirs] != begun.occurrence
            || entry.last_result[theirs] != result
            || realigns(kind, result)
        {
            return Some(begun);
        }
        let waiting = &mut entry.waiting[theirs];
        let twin = match waiting.front() {
            Some(w) if w.op.occurrence == begun.occurrence => Some(0),
            _ => waiting
                .binary_search_by_key(&begun.occurrence, |w| w.op.occurrence)
                .ok(),
        };
        match twin {
            Some(at) => {
                debug_assert!(
                    waiting
                        .get(at)
                        .is_some_and(|w| !matches!(w.judged, Judged::Settled)),
                    "a pair is settled once, by its second begin"
                );
                waiting.remove(at);
                self.backlog -= 1;
            }
            None if entry.settled[theirs] == 0 => entry.settled[theirs] = begun.occurrence,
            // Begun last on this side: every result of it waiting has a lesser occurrence.
            None => entry.waiting[mine].push_back(Waiting {
                op: OpResult {
                    kind,
                    path,
                    path2: None,
                    occurrence: begun.occurrence,
                    key,
                    n: 0,
                    ts_begin: 0,
                    ts_end: 0,
                    tid: 0,
                    flags: 0,
                    result,
                },
                judged: Judged::Settled,
            }),
        }
        self.compared += 1;
        None
    }

    /// The entry of (`kind`, `path`), made at its first operation, and kept in line `line`
    /// of the recent answers as `tag`.
    #[cold]
    #[inline(never)]
    fn key_of(&mut self, kind: OpKind, path: PathId, tag: u64, line: usize) -> u32 {
        let next = self.entries.len() as u32;
        let key = *self.keys.entry((kind, path)).or_insert(next);
        if key == next {
            self.entries.push(Key::default());
        }
        if let Some(l) = self.recent_keys.get_mut(line) {
            *l = (tag, key);
        }
        key
    }

    /// Records side `side`'s result `r`, and compares it with the other side's of the same
    /// occurrence if that one is in. A difference no race on either side explains waits in
    /// [`OpMatcher::take_differences`]. `judge` is asked only when the answer can matter: when
    /// the result differs from its twin's, or waits for a twin whose result is not known to be
    /// the same (it is known when the other side has begun the twin last, with the result it
    /// gave [`OpMatcher::begin_or_settle`]). It walks the history: about 190 instructions, a
    /// third of resolving an operation (callgrind).
    pub fn record(
        &mut self,
        side: usize,
        r: OpResult,
        judge: impl FnOnce() -> Judgement,
        paths: &Paths,
    ) {
        if self.abandoned {
            return;
        }
        let side = side & 1;
        let Some(key) = self.entries.get_mut(r.key as usize) else {
            debug_assert!(false, "an operation's entry is made at its begin");
            return;
        };
        // Counted when settled, never in the backlog; the same result by construction.
        if key.settled[side] == r.occurrence {
            key.settled[side] = 0;
            return;
        }
        let theirs = &mut key.waiting[1 - side];
        // Nearly always the twin is the other side's oldest waiting result, and a result
        // that waits goes at the back: the general cases (operations that overlapped on one
        // side) cost a search and a shift.
        let twin = match theirs.front() {
            Some(w) if w.op.occurrence == r.occurrence => theirs.pop_front(),
            _ => match theirs.binary_search_by_key(&r.occurrence, |w| w.op.occurrence) {
                Ok(at) => theirs.remove(at),
                Err(_) => None,
            },
        };
        let Some(Waiting {
            op: other,
            judged: theirs_judged,
        }) = twin
        else {
            let same_ahead =
                key.begun[1 - side] == r.occurrence && key.last_result[1 - side] == r.result;
            let mine = &mut key.waiting[side];
            let w = Waiting {
                op: r,
                judged: if same_ahead {
                    Judged::SameAhead
                } else {
                    Judged::Asked(judge())
                },
            };
            match mine.back() {
                Some(last) if last.op.occurrence > r.occurrence => {
                    let at = mine.partition_point(|w| w.op.occurrence < r.occurrence);
                    mine.insert(at, w);
                }
                _ => mine.push_back(w),
            }
            self.backlog += 1;
            if self.backlog > self.cap {
                // The two traces do not hold the same operations; stop before memory grows
                // with the trace instead of with the names.
                self.abandoned = true;
                self.keys.clear();
                self.recent_keys.fill((NO_KEY, 0));
                self.entries.clear();
            }
            return;
        };
        let theirs_judged = match theirs_judged {
            Judged::Asked(j) => Some(j),
            Judged::SameAhead => None,
            // Counted when settled, never in the backlog; the same result by construction.
            Judged::Settled => return,
        };
        self.backlog -= 1;
        self.compared += 1;
        let names = [Some(r.path), r.path2];
        if other.result == r.result {
            if realigns(r.kind, r.result) {
                self.diverged.remove(&r.path);
            }
            return;
        }
        self.differ += 1;
        debug_assert!(
            theirs_judged.is_some(),
            "a result waits unjudged only for a twin of the same result"
        );
        let theirs_judged = theirs_judged.unwrap_or_default();
        let mine = judge();
        let ((k, kj), (m, mj)) = if side == 0 {
            ((r, mine), (other, theirs_judged))
        } else {
            ((other, theirs_judged), (r, mine))
        };
        let d = OpDivergence {
            operation: r.kind.name(),
            name: paths.render(r.path),
            occurrence: r.occurrence,
            kernel_result: k.result,
            model_result: m.result,
            kernel_ts_begin: k.ts_begin,
            model_ts_begin: m.ts_begin,
            explained_by_race: mine.racy
                || theirs_judged.racy
                || names.iter().flatten().any(|p| self.diverged.contains(p)),
        };
        if self.examples.len() < self.max_examples {
            self.examples.push(d.clone());
        }
        if d.explained_by_race {
            self.explained_by_race += 1;
            // A stat, open or readdir changes nothing: the sides' states are as apart as they
            // were. A writer that succeeded on one side only leaves its names apart.
            if writes(r.kind) {
                self.diverged.extend(names.into_iter().flatten());
            }
            return;
        }
        // The side whose result its own history rules out, when the other's agrees with
        // its own; otherwise the kernel's: the model is the reference it is judged against.
        let (owner, op) = if mj.contradicts && !kj.contradicts {
            (1, m)
        } else {
            (0, k)
        };
        self.differences[owner].push((op, d));
    }

    /// The differences no race explains that side `side` files (see `differences`), recorded
    /// since the last call, each with the side's own operation of the pair.
    pub fn take_differences(&mut self, side: usize) -> Vec<(OpResult, OpDivergence)> {
        std::mem::take(&mut self.differences[side & 1])
    }

    /// Whether [`OpMatcher::take_differences`] has anything for `side`.
    pub fn has_differences(&self, side: usize) -> bool {
        !self.differences[side & 1].is_empty()
    }

    /// Operations one side has and the other never matched: (kernel, model).
    pub fn unmatched(&self) -> (u64, u64) {
        let mut out = (0, 0);
        for key in &self.entries {
            out.0 += key.waiting[0].len() as u64;
            out.1 += key.waiting[1].len() as u64;
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

    fn result(kind: OpKind, path: PathId, begun: Begun, result: i32, ts: u64) -> OpResult {
        OpResult {
            kind,
            path,
            path2: None,
            occurrence: begun.occurrence,
            key: begun.key,
            n: ts,
            ts_begin: ts,
            ts_end: ts + 1,
            tid: 1,
            flags: 0,
            result,
        }
    }

    /// Begins then records one operation; the difference it completes that no race explains.
    #[allow(clippy::too_many_arguments)]
    fn op(
        m: &mut OpMatcher,
        p: &Paths,
        side: usize,
        kind: OpKind,
        path: PathId,
        res: i32,
        ts: u64,
        racy: bool,
    ) -> Option<OpDivergence> {
        let n = m.begin(side, kind, path, res);
        m.record(
            side,
            result(kind, path, n, res, ts),
            || Judgement {
                racy,
                contradicts: false,
            },
            p,
        );
        assert!(!m.has_differences(1), "neither contradicts: the kernel's");
        let mut found = m.take_differences(0);
        assert!(found.len() <= 1);
        found.pop().map(|(k, d)| {
            assert_eq!(
                (k.ts_begin, k.result),
                (d.kernel_ts_begin, d.kernel_result),
                "the kernel's operation comes with it"
            );
            d
        })
    }

    #[test]
    fn matcher_compares_the_nth_operation_per_name() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        assert!(op(&mut m, &p, 0, OpKind::Stat, f, 0, 10, false).is_none());
        assert!(op(&mut m, &p, 0, OpKind::Stat, f, -2, 20, false).is_none());
        assert!(op(&mut m, &p, 1, OpKind::Stat, f, 0, 5, false).is_none());
        let d = op(&mut m, &p, 1, OpKind::Stat, f, 0, 6, false);
        assert_eq!(d.map(|d| d.kernel_result), Some(-2));
        op(&mut m, &p, 1, OpKind::Unlink, f, 0, 7, false);
        op(&mut m, &p, 0, OpKind::Open, f, -2, 30, true);
        assert!(
            op(&mut m, &p, 1, OpKind::Open, f, 0, 31, false).is_none(),
            "a race on one side explains it"
        );
        assert_eq!((m.compared, m.differ, m.explained_by_race), (3, 2, 1));
        // A raced open changed nothing: the next difference needs its own race.
        op(&mut m, &p, 0, OpKind::Open, f, 0, 40, false);
        assert!(op(&mut m, &p, 1, OpKind::Open, f, -2, 41, false).is_some());
        // A raced unlink that succeeded on one side only leaves the sides disagreeing on the
        // name: the next difference follows from it, until a writer succeeds on both sides.
        op(&mut m, &p, 0, OpKind::Unlink, f, -2, 45, true);
        op(&mut m, &p, 0, OpKind::Open, f, 0, 46, false);
        assert!(op(&mut m, &p, 1, OpKind::Open, f, -2, 47, false).is_none());
        op(&mut m, &p, 0, OpKind::Create, f, 0, 50, false);
        assert!(op(&mut m, &p, 1, OpKind::Create, f, 0, 51, false).is_none());
        op(&mut m, &p, 0, OpKind::Open, f, 0, 60, false);
        assert!(
            op(&mut m, &p, 1, OpKind::Open, f, -2, 61, false).is_some(),
            "realigned by the create: a difference again needs its own race"
        );
        let d = &m.examples[0];
        assert_eq!((d.occurrence, d.kernel_result, d.model_result), (2, -2, 0));
        assert_eq!(m.unmatched(), (0, 0));
        op(&mut m, &p, 1, OpKind::Stat, f, 0, 70, false);
        assert_eq!(m.unmatched(), (0, 1));
    }

    /// Each side's results pair by the order the side began the operations, whatever order
    /// their results come in: a long stat begun first and resolved last is still the first.
    #[test]
    fn matcher_pairs_by_begin_order_not_by_resolution() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        let (long, short) = (
            m.begin(0, OpKind::Stat, f, 0),
            m.begin(0, OpKind::Stat, f, -2),
        );
        assert_eq!((long.occurrence, short.occurrence), (1, 2));
        // The kernel's short stat (after an unlink) resolves first.
        let judge = Judgement::default;
        m.record(0, result(OpKind::Stat, f, short, -2, 3_000), judge, &p);
        for (ts, res) in [(1_000, 0), (3_000, -2)] {
            let n = m.begin(1, OpKind::Stat, f, res);
            m.record(1, result(OpKind::Stat, f, n, res, ts), judge, &p);
        }
        m.record(0, result(OpKind::Stat, f, long, 0, 1_000), judge, &p);
        assert_eq!((m.compared, m.differ, m.unmatched()), (2, 0, (0, 0)));
        assert!(!m.has_differences(0));
    }

    #[test]
    fn matcher_asks_about_a_race_only_when_the_answer_can_matter() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        let asked = std::cell::Cell::new(0);
        let ask = |racy| {
            asked.set(asked.get() + 1);
            Judgement {
                racy,
                contradicts: false,
            }
        };
        let mut stat = |side, res, ts, racy| {
            let n = m.begin(side, OpKind::Stat, f, res);
            m.record(side, result(OpKind::Stat, f, n, res, ts), || ask(racy), &p);
            (m.compared, m.differ, m.explained_by_race)
        };
        // Waiting for its twin, which may differ: asked.
        stat(0, 0, 10, false);
        assert_eq!(asked.get(), 1);
        // The same result as its twin: not asked.
        stat(1, 0, 11, false);
        assert_eq!(asked.get(), 1);
        // A different result: asked, and the answer explains the difference.
        stat(0, 0, 20, false);
        assert_eq!(stat(1, -2, 21, true), (2, 1, 1));
        assert_eq!(asked.get(), 3);
    }

    /// The side whose own history rules its result out files the difference, when the
    /// other's agrees with its own; otherwise the kernel does.
    #[test]
    fn a_difference_goes_to_the_side_whose_history_rules_its_result_out() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        // (kernel contradicts, model contradicts) -> the side that files.
        for (kc, mc, owner) in [
            (false, true, 1),
            (true, false, 0),
            (false, false, 0),
            (true, true, 0),
        ] {
            for (side, res, contradicts) in [(0, 0, kc), (1, -2, mc)] {
                let n = m.begin(side, OpKind::Stat, f, res);
                let judged = Judgement {
                    racy: false,
                    contradicts,
                };
                let ts = 10 + n.occurrence;
                m.record(side, result(OpKind::Stat, f, n, res, ts), || judged, &p);
            }
            let found = m.take_differences(owner);
            assert_eq!(found.len(), 1, "{kc} {mc}");
            let (op, d) = &found[0];
            assert_eq!(op.result, [0, -2][owner], "the owner's own operation");
            assert_eq!((d.kernel_result, d.model_result), (0, -2));
            assert!(!m.has_differences(1 - owner));
        }
    }

    /// Each (kind, name) has one entry, whichever side begins it first; operations of
    /// different names and kinds keep apart while interleaved.
    #[test]
    fn operations_of_one_kind_and_name_share_an_entry() {
        let mut p = Paths::default();
        let (f, g) = (p.parse(b"f"), p.parse(b"g"));
        let mut m = OpMatcher::new(100, 10);
        let ops = [
            (1, OpKind::Stat, f),
            (0, OpKind::Stat, g),
            (0, OpKind::Stat, f),
            (0, OpKind::Unlink, f),
            (1, OpKind::Stat, g),
            (1, OpKind::Stat, f),
        ];
        let keys = ops.map(|(side, kind, path)| m.begin(side, kind, path, 0));
        let occurrences = keys.map(|b| b.occurrence);
        assert_eq!(occurrences, [1, 1, 1, 1, 1, 2]);
        assert_eq!(keys[0].key, keys[2].key);
        assert_eq!(keys[0].key, keys[5].key);
        assert_eq!(keys[1].key, keys[4].key);
        assert!(keys[0].key != keys[1].key && keys[3].key != keys[0].key);
        // Results recorded through their entries pair within a name only.
        for (b, (side, kind, path)) in keys.iter().zip(ops) {
            m.record(side, result(kind, path, *b, 0, 5), Judgement::default, &p);
        }
        assert_eq!((m.compared, m.unmatched()), (2, (1, 1)));
    }

    /// The entries found through the recent keys are a map's: 60,000 operations of every kind
    /// on 3,000 names from both sides (more pairs than lines, so lines are shared and
    /// overwritten), each entry and occurrence against a plain map numbering pairs in
    /// first-seen order.
    #[test]
    fn recent_keys_answer_as_the_map() {
        let mut m = OpMatcher::new(usize::MAX, 10);
        let mut numbers: HashMap<(OpKind, PathId), (u32, [u64; 2])> = HashMap::new();
        let mut rnd = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1d);
        for i in 0..60_000u32 {
            let kind = OpKind::ALL[rnd(OpKind::ALL.len() as u64) as usize];
            let path = rnd(3_000) as PathId;
            let side = (i % 2) as usize;
            let next = numbers.len() as u32;
            let e = numbers.entry((kind, path)).or_insert((next, [0, 0]));
            e.1[side] += 1;
            let b = m.begin(side, kind, path, 0);
            assert_eq!(
                (b.key, b.occurrence),
                (e.0, e.1[side]),
                "{kind:?} {path} at {i}"
            );
        }
        assert_eq!(m.entries.len(), numbers.len());
        assert!(numbers.len() > 4 << KEY_BITS, "{}", numbers.len());
    }

    /// A result waits unjudged only when the other side began its twin last, with the same
    /// result: a twin begun with another result, or before a later operation of the name,
    /// has its waiting result judged, and a race found then explains the difference.
    #[test]
    fn a_result_waits_unjudged_only_for_a_twin_begun_with_the_same_result() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(100, 10);
        let asked = std::cell::Cell::new(0);
        let racy = || {
            asked.set(asked.get() + 1);
            Judgement {
                racy: true,
                contradicts: false,
            }
        };
        // The twin begun, last, with the same result: not asked, and the pair agrees.
        let k = m.begin(0, OpKind::Stat, f, 0);
        let t = m.begin(1, OpKind::Stat, f, 0);
        m.record(0, result(OpKind::Stat, f, k, 0, 10), racy, &p);
        assert_eq!(asked.get(), 0);
        m.record(1, result(OpKind::Stat, f, t, 0, 11), racy, &p);
        assert_eq!((asked.get(), m.compared, m.differ), (0, 1, 0));
        // The twin begun with another result: asked, the race explains the difference.
        let k = m.begin(0, OpKind::Stat, f, 0);
        let t = m.begin(1, OpKind::Stat, f, -2);
        m.record(0, result(OpKind::Stat, f, k, 0, 20), racy, &p);
        assert_eq!(asked.get(), 1);
        m.record(1, result(OpKind::Stat, f, t, -2, 21), racy, &p);
        assert_eq!((m.differ, m.explained_by_race), (1, 1));
        // The twin begun before another operation of the name: its result is not the one
        // kept, so asked.
        let k = m.begin(0, OpKind::Stat, f, 0);
        let t = m.begin(1, OpKind::Stat, f, -2);
        let later = m.begin(1, OpKind::Stat, f, 0);
        m.record(0, result(OpKind::Stat, f, k, 0, 30), racy, &p);
        assert_eq!(asked.get(), 3);
        m.record(1, result(OpKind::Stat, f, t, -2, 31), racy, &p);
        assert_eq!((asked.get(), m.differ, m.explained_by_race), (4, 2, 2));
        // The twin not begun yet: asked.
        m.record(1, result(OpKind::Stat, f, later, 0, 32), racy, &p);
        assert_eq!(asked.get(), 5);
        assert_eq!(m.unmatched(), (0, 1));
    }

    /// A begun operation of [`unjudged_waits_change_no_answer`] not yet recorded: its result,
    /// the two matchers' begun answers, kind and path.
    type Pending = (i32, [Begun; 2], OpKind, PathId);

    /// A begun operation of [`settled_pairs_change_nothing_below_the_cap`] not yet recorded:
    /// its result, the settling matcher's answer (None: settled, not recorded there), the
    /// oracle's, kind and path.
    type Begins = (i32, Option<Begun>, Begun, OpKind, PathId);

    /// The matcher with its unjudged waits against itself judging every waiting result (its
    /// begins given a result no operation returns, as the matcher was before it kept them):
    /// random operations of three kinds, writers among them, on three names, each side's
    /// begun in order and recorded in a shuffled order, the sides interleaved, results and
    /// judgements at random. Counts, examples, the differences each side files, after every
    /// record, and the unmatched are the same; judgements were skipped.
    #[test]
    fn unjudged_waits_change_no_answer() {
        let kinds = [OpKind::Stat, OpKind::Unlink, OpKind::Create];
        let mut p = Paths::default();
        let names = [p.parse(b"a"), p.parse(b"b"), p.parse(b"a/c")];
        let mut skipped = 0;
        for seed in 1..=40u64 {
            let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15 ^ seed);
            let cap = if seed % 5 == 0 { 12 } else { usize::MAX };
            let mut ms = [OpMatcher::new(cap, 8), OpMatcher::new(cap, 8)];
            let asked = [std::cell::Cell::new(0), std::cell::Cell::new(0)];
            // Per side, begun operations waiting to be recorded.
            let mut pending: [Vec<Pending>; 2] = Default::default();
            let mut ts = 0;
            for _ in 0..400 {
                ts += 1;
                let side = next(2) as usize;
                if next(3) != 0 {
                    let kind = kinds[next(3) as usize];
                    let path = names[next(3) as usize];
                    let res = [0, -2, -17][next(3) as usize];
                    let b = [
                        ms[0].begin(side, kind, path, res),
                        ms[1].begin(side, kind, path, i32::MIN),
                    ];
                    assert_eq!(b[0], b[1]);
                    pending[side].push((res, b, kind, path));
                } else if !pending[side].is_empty() {
                    // Mostly the oldest, sometimes a later one (operations that overlapped).
                    let at = if next(4) == 0 {
                        next(pending[side].len() as u64) as usize
                    } else {
                        0
                    };
                    let (res, b, kind, path) = pending[side].remove(at);
                    let judged = Judgement {
                        racy: next(3) == 0,
                        contradicts: next(2) == 0,
                    };
                    for (i, m) in ms.iter_mut().enumerate() {
                        let r = result(kind, path, b[i], res, ts);
                        let judge = || {
                            asked[i].set(asked[i].get() + 1);
                            judged
                        };
                        m.record(side, r, judge, &p);
                    }
                    for s in 0..2 {
                        let [a, o] = ms
                            .each_mut()
                            .map(|m| format!("{:?}", m.take_differences(s)));
                        assert_eq!(a, o, "seed {seed}: differences of side {s}");
                    }
                }
            }
            let [a, o] = &ms;
            assert_eq!(
                (
                    a.compared,
                    a.differ,
                    a.explained_by_race,
                    a.abandoned,
                    a.unmatched()
                ),
                (
                    o.compared,
                    o.differ,
                    o.explained_by_race,
                    o.abandoned,
                    o.unmatched()
                ),
                "seed {seed}"
            );
            assert_eq!(
                format!("{:?}", a.examples),
                format!("{:?}", o.examples),
                "seed {seed}"
            );
            assert!(asked[0].get() <= asked[1].get());
            skipped += asked[1].get() - asked[0].get();
        }
        assert!(skipped > 100, "judgements skipped: {skipped}");
    }

    /// The matcher settling pairs at their second begin against itself recording every
    /// result (the oracle): random operations of three kinds, writers that realign a name
    /// among them, on three names, each side's begun in order and recorded in a shuffled
    /// order, the sides interleaved, often the twin of the other side's last begun, results
    /// mostly the same and judgements at random (races
    /// put names in `diverged`), some begins not allowed to settle; settled results met by
    /// their entry's mark and, with the mark taken, by stand-ins. Below the cap the
    /// differences each side files after every record, the counts, examples and unmatched are
    /// the same, and the backlog is never above the oracle's; no mark is left.
    #[test]
    fn settled_pairs_change_nothing_below_the_cap() {
        let kinds = [OpKind::Stat, OpKind::Unlink, OpKind::Create];
        let mut p = Paths::default();
        let names = [p.parse(b"a"), p.parse(b"b"), p.parse(b"a/c")];
        let (mut settled, mut stand_ins) = (0, 0);
        for seed in 1..=60u64 {
            let mut next = crate::test_rng::xorshift(0x51f1_e5d2_b0a7_3c11 ^ seed);
            let mut m = OpMatcher::new(usize::MAX, 8);
            let mut o = OpMatcher::new(usize::MAX, 8);
            // Per side, begun operations waiting to be recorded.
            let mut pending: [Vec<Begins>; 2] = Default::default();
            let mut ts = 0;
            for _ in 0..600 {
                ts += 1;
                let side = next(2) as usize;
                if next(2) == 0 {
                    let (mut kind, mut path) = (kinds[next(3) as usize], names[next(3) as usize]);
                    let mut res = [0, 0, 0, -2, -17][next(5) as usize];
                    // Often the twin of what the other side began last, as when both run
                    // the same workload, mostly with the same result.
                    if let Some(&(r, _, _, k, n)) = pending[1 - side].last() {
                        if next(3) != 0 {
                            (kind, path) = (k, n);
                            if next(4) != 0 {
                                res = r;
                            }
                        }
                    }
                    let b = m.begin_or_settle(side, kind, path, res, next(8) != 0);
                    let oracle = o.begin(side, kind, path, res);
                    if let Some(b) = b {
                        assert_eq!(b, oracle);
                    } else {
                        settled += 1;
                        let waiting = m.entries.iter().flat_map(|e| e.waiting.iter().flatten());
                        stand_ins += waiting
                            .filter(|w| matches!(w.judged, Judged::Settled))
                            .count();
                    }
                    pending[side].push((res, b, oracle, kind, path));
                } else if !pending[side].is_empty() {
                    let at = if next(4) == 0 {
                        next(pending[side].len() as u64) as usize
                    } else {
                        0
                    };
                    let (res, b, oracle, kind, path) = pending[side].remove(at);
                    let judged = Judgement {
                        racy: next(3) == 0,
                        contradicts: next(2) == 0,
                    };
                    if let Some(b) = b {
                        m.record(side, result(kind, path, b, res, ts), || judged, &p);
                    }
                    o.record(side, result(kind, path, oracle, res, ts), || judged, &p);
                    for s in 0..2 {
                        assert_eq!(
                            format!("{:?}", m.take_differences(s)),
                            format!("{:?}", o.take_differences(s)),
                            "seed {seed}: differences of side {s}"
                        );
                    }
                    assert_eq!(m.diverged, o.diverged, "seed {seed}");
                }
                assert!(m.backlog <= o.backlog, "seed {seed}");
            }
            // The ends: what is left is recorded.
            for (side, left) in pending.iter_mut().enumerate() {
                for (res, b, oracle, kind, path) in std::mem::take(left) {
                    if let Some(b) = b {
                        m.record(side, result(kind, path, b, res, ts), Judgement::default, &p);
                    }
                    o.record(
                        side,
                        result(kind, path, oracle, res, ts),
                        Judgement::default,
                        &p,
                    );
                    for s in 0..2 {
                        assert_eq!(
                            format!("{:?}", m.take_differences(s)),
                            format!("{:?}", o.take_differences(s)),
                            "seed {seed}: differences of side {s}"
                        );
                    }
                }
            }
            let counts = |m: &OpMatcher| {
                (
                    m.compared,
                    m.differ,
                    m.explained_by_race,
                    m.abandoned,
                    m.unmatched(),
                    m.backlog,
                    format!("{:?}", m.examples),
                )
            };
            assert_eq!(counts(&m), counts(&o), "seed {seed}");
            assert!(m.entries.iter().all(|e| e.settled == [0, 0]), "seed {seed}");
        }
        assert!(settled > 500, "settled: {settled}");
        // Summed over the settlements, so a stand-in waiting through several counts at each.
        assert!(
            stand_ins > 50,
            "stand-ins waiting, summed over the settlements: {stand_ins}"
        );
    }

    /// The cap counts the results held for a twin not known to agree: a pair settled at its
    /// second begin holds nothing, its first result finds it settled (its entry's mark, or a
    /// stand-in when the mark is taken), and recording both (the matcher as it was) would
    /// have passed the cap.
    #[test]
    fn the_cap_counts_only_results_held_for_a_twin_not_known_to_agree() {
        let mut p = Paths::default();
        let names = [p.parse(b"f"), p.parse(b"g"), p.parse(b"h"), p.parse(b"i")];
        let judge = Judgement::default;
        let [mut m, mut o] = [OpMatcher::new(2, 10), OpMatcher::new(2, 10)];
        let mut firsts = Vec::new();
        for &f in &names {
            // The kernel's stat begins, then the model's with the same result: settled.
            firsts.push((
                f,
                m.begin(0, OpKind::Stat, f, 0),
                o.begin(0, OpKind::Stat, f, 0),
            ));
            assert_eq!(m.begin_or_settle(1, OpKind::Stat, f, 0, true), None);
            let twin = o.begin(1, OpKind::Stat, f, 0);
            firsts.push((f, twin, twin));
        }
        assert_eq!((m.compared, m.backlog, m.unmatched()), (4, 0, (0, 0)));
        assert!(m.entries.iter().all(|e| e.settled == [1, 0]));
        // The kernel's results resolve: each meets its mark. The oracle records them
        // and the model's after them, four results waiting: past the cap of 2.
        for &(f, mine, _) in firsts.iter().step_by(2) {
            m.record(0, result(OpKind::Stat, f, mine, 0, 1), judge, &p);
            assert_eq!(m.backlog, 0);
        }
        for side in 0..2 {
            for &(f, _, oracle) in firsts.iter().skip(side).step_by(2) {
                o.record(side, result(OpKind::Stat, f, oracle, 0, 1), judge, &p);
            }
        }
        assert!(
            o.abandoned,
            "recording both, the kernel's four waited at once"
        );
        assert!(!m.abandoned);
        assert_eq!((m.compared, m.backlog, m.unmatched()), (4, 0, (0, 0)));
        // A result recorded before its twin began is held and counted as before; the twin's
        // begin settles the pair and takes it.
        let f = names[0];
        let b = m.begin(0, OpKind::Stat, f, -2);
        m.record(0, result(OpKind::Stat, f, b, -2, 2), judge, &p);
        assert_eq!((m.backlog, m.unmatched()), (1, (1, 0)));
        assert_eq!(m.begin_or_settle(1, OpKind::Stat, f, -2, true), None);
        assert_eq!((m.compared, m.backlog, m.unmatched()), (5, 0, (0, 0)));
        // Two pairs of one name settled before either first result is recorded: the first is
        // marked, the second waits as a stand-in (not in the backlog); each record finds its
        // own.
        let twice = [0, 1].map(|_| {
            let b = m.begin(0, OpKind::Stat, f, 0);
            assert_eq!(m.begin_or_settle(1, OpKind::Stat, f, 0, true), None);
            b
        });
        assert_eq!((m.compared, m.backlog, m.unmatched()), (7, 0, (0, 1)));
        for b in twice {
            m.record(0, result(OpKind::Stat, f, b, 0, 3), judge, &p);
        }
        assert_eq!((m.compared, m.backlog, m.unmatched()), (7, 0, (0, 0)));
        // Results held for twins not begun, or begun with another result, still count.
        for (i, &f) in names.iter().enumerate() {
            let b = m.begin(0, OpKind::Stat, f, 0);
            if i == 0 {
                assert!(m.begin_or_settle(1, OpKind::Stat, f, -2, true).is_some());
            }
            m.record(0, result(OpKind::Stat, f, b, 0, 3), judge, &p);
        }
        assert!(
            m.abandoned,
            "three results held for twins not known to agree"
        );
    }

    #[test]
    fn matcher_gives_up_past_its_cap() {
        let mut p = Paths::default();
        let f = p.parse(b"f");
        let mut m = OpMatcher::new(3, 10);
        for i in 0..5 {
            op(&mut m, &p, 0, OpKind::Stat, f, 0, i, false);
        }
        assert!(m.abandoned);
        assert_eq!(m.unmatched(), (0, 0));
    }
}
