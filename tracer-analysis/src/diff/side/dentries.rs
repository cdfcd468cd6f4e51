//! The per-dentry records of one trace and which name each dentry stands for. A record holds
//! a dentry's `d_seq` state, its recent writers and a gap waiting for its next writer; it is
//! found by the number the trace's front gave the dentry's pointer. A pointer names a path
//! through its parent's last-known name (or the operation around the event) plus its own, and
//! gets a new generation when it shows up under another name or after its hashed life ended
//! (the slab reuses addresses): the generation is what the two sides are compared by. Its
//! `d_seq` record starts afresh with a new life, and with a new name no traced `__d_move` gave
//! it.
use super::{findings::Gap, Named, Shared, SideState};
use crate::cache_line::hash_line;
use crate::diff::{
    align::{NameId, PathId, Paths, ROOT},
    classify::WriterSpan,
    event::Slot,
    invariants::{ReadOrder, SeqState},
};

/// One dentry id's life as seen in the trace.
#[derive(Default)]
pub(super) struct DentryRec {
    /// The name it was last seen under.
    pub(super) bound: Option<PathId>,
    pub(super) generation: u32,
    /// When its hashed life ended (killed, or a negative dentry unhashed): seen again after
    /// that, the id stands for a new generation.
    pub(super) dead_at: Option<u64>,
    /// A traced `__d_move` renamed it since it was bound: its next name is the same dentry's.
    pub(super) moved: bool,
    pub(super) seq: SeqState,
    pub(super) order: ReadOrder,
    pub(super) writers: Vec<WriterSpan>,
    /// A gap a lookup found, held until the dentry's next writer: one that entered behind
    /// the value the lookup read was stamped after it and explains it.
    pub(super) held_gap: Option<Box<Gap>>,
    /// The 2 a `__d_move` that calls `__d_drop` (up to 4.14) moved a hashed dentry beyond its
    /// own, held until the dentry's next writer: the hashed `__d_drop` it called, on its
    /// thread and inside it, explains it; anything else leaves it a gap.
    pub(super) awaits_d_drop: Option<Box<Gap>>,
}

/// The dentry records of one trace, by the number its front gave each pointer: a dense
/// table, where each question about an event's dentry used to probe a map of large records.
/// A record exists once the analysis bound the dentry to a name or saw a writer on it.
pub(super) struct Dentries {
    recs: Vec<Option<DentryRec>>,
    /// Paths as [`Paths::child`] gave them, direct-mapped by a hash of their directory and
    /// name ([`child_line`]; [`ROOT`], no path's child, marks an empty line): a lookup miss
    /// (a third of the lookups, with no dentry for `placed` to answer from) is named under its
    /// parent's path, and the paths' hash map cost about 57 instructions a miss (callgrind).
    children: Box<[PathId]>,
}

/// Lines of [`Dentries::children`]: a power of two, a few times the names a workload walks.
const CHILD_BITS: u32 = 12;

impl Default for Dentries {
    fn default() -> Self {
        Dentries {
            recs: Vec::new(),
            children: vec![ROOT; 1 << CHILD_BITS].into_boxed_slice(),
        }
    }
}

/// The line of [`Dentries::children`] for `name` under `dir`.
fn child_line(dir: PathId, name: NameId) -> usize {
    hash_line((u64::from(dir) << 32) | u64::from(name), CHILD_BITS)
}

impl Dentries {
    /// [`Paths::child`], through the cache of recent answers: a line holds a path whose node
    /// is `(dir, name)` only if it is that pair's (the paths give each pair one node).
    fn child(&mut self, paths: &mut Paths, dir: PathId, name: NameId) -> PathId {
        if let Some(c) = self.cached_child(paths, dir, name) {
            return c;
        }
        let c = paths.child(dir, name);
        if let Some(l) = self.children.get_mut(child_line(dir, name)) {
            *l = c;
        }
        c
    }

    /// [`Self::child`]'s answer when its cache holds it (None: ask [`Self::child`]).
    #[inline(always)]
    fn cached_child(&self, paths: &Paths, dir: PathId, name: NameId) -> Option<PathId> {
        let c = *self.children.get(child_line(dir, name))?;
        (paths.node(c) == Some((dir, name))).then_some(c)
    }

    pub(super) fn get(&self, s: Slot) -> Option<&DentryRec> {
        self.recs.get(s as usize)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, s: Slot) -> Option<&mut DentryRec> {
        self.recs.get_mut(s as usize)?.as_mut()
    }

    /// The record of `s`, a fresh one the first time.
    // Called for every lookup and writer from the other files of `side`: without the hint it
    // is no longer inlined into them (it was while they were one file).
    #[inline]
    pub(super) fn entry(&mut self, s: Slot) -> &mut DentryRec {
        let i = s as usize;
        if i >= self.recs.len() {
            self.recs.resize_with(i + 1, || None);
        }
        self.recs[i].get_or_insert_with(DentryRec::default)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut DentryRec> {
        self.recs.iter_mut().flatten()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &DentryRec> {
        self.recs.iter().flatten()
    }
}

impl SideState {
    /// The path of the event's dentry, whether its directory is a guess ([`Self::path_of`]),
    /// and the dentry's generation there ([`Self::bind`]; 0 without a dentry).
    #[inline(always)]
    pub(super) fn place(&mut self, ev: &Named, sh: &mut Shared) -> (PathId, bool, u32) {
        match self.placed(ev, &sh.paths) {
            Some(placed) => placed,
            None => self.place_anew(ev, sh),
        }
    }

    /// [`Self::place`] without its read-only answer: the look-up and binding that may change
    /// the records.
    fn place_anew(&mut self, ev: &Named, sh: &mut Shared) -> (PathId, bool, u32) {
        let (path, guessed) = self.path_of(ev, sh);
        let generation = if ev.dentry != 0 {
            self.bind(ev.dentry, path, ev.ts_begin, sh)
        } else {
            0
        };
        (path, guessed, generation)
    }

    /// What [`Self::place`] gives when `path_of` and `bind` would change nothing: the root's
    /// own dentry, or a dentry bound in its current life to its name under its parent's
    /// current name (most events). One look-up of each record; the two calls looked up the
    /// dentry's twice, and cost about 150 instructions an event (callgrind).
    ///
    /// A lookup that found no dentry (about a sixth of the events) is placed here too when
    /// its parent is named and the cache of children holds its name there, as `path_of` would
    /// find it: its call cost about 60 instructions (callgrind).
    #[inline(always)]
    fn placed(&self, ev: &Named, paths: &Paths) -> Option<(PathId, bool, u32)> {
        if ev.dentry == ev.parent && ev.dentry != 0 {
            return Some((ROOT, false, 0));
        }
        let dir = self
            .dentries
            .get(ev.parent)
            .filter(|r| r.dead_at.is_none_or(|d| ev.ts_begin <= d))?
            .bound?;
        if ev.dentry == 0 {
            let path = self.dentries.cached_child(paths, dir, ev.name_id)?;
            return Some((path, false, 0));
        }
        let rec = self.dentries.get(ev.dentry)?;
        let path = rec.bound?;
        if paths.node(path) != Some((dir, ev.name_id))
            || rec.dead_at.is_some_and(|d| ev.ts_begin > d)
        {
            return None;
        }
        Some((path, false, rec.generation))
    }

    /// The path of the event's dentry (or, for a miss, of the name looked up): its parent's
    /// last name plus its own. A parent whose name is unknown (never seen named, or its id's
    /// last life ended: the slab reuses addresses) is named from the operation around the
    /// event, else taken as the root; the flag says when the root is that guess, and the
    /// path then a key to count the dentry by but not to judge its name's existence by.
    fn path_of(&mut self, ev: &Named, sh: &mut Shared) -> (PathId, bool) {
        if ev.dentry != 0 && ev.dentry == ev.parent {
            // IS_ROOT(dentry).
            return (ROOT, false);
        }
        let mut guessed = false;
        let known = self
            .dentries
            .get(ev.parent)
            .filter(|r| r.dead_at.is_none_or(|d| ev.ts_begin <= d))
            .and_then(|r| r.bound);
        let dir = match known {
            Some(p) => p,
            None => match self.dir_from_operation(ev, &sh.paths) {
                Some(d) => {
                    self.name_dir(ev.parent, d, ev.ts_begin, sh);
                    d
                }
                None => {
                    // A miss under a directory allocated by this very walk is normal; only
                    // keys of dentries can go wrong.
                    if ev.parent != 0 && ev.dentry != 0 {
                        self.unnamed.insert(ev.parent);
                        guessed = true;
                    }
                    ROOT
                }
            },
        };
        // Most events name a dentry already bound to this very name: no interning lookup.
        let bound = self.dentries.get(ev.dentry).and_then(|r| r.bound);
        if let Some(p) = bound.filter(|p| {
            ev.dentry != 0
                && sh.paths.parent(*p) == Some(dir)
                && sh.paths.leaf_name(*p) == ev.name_id
        }) {
            return (p, guessed);
        }
        (self.dentries.child(&mut sh.paths, dir, ev.name_id), guessed)
    }

    /// The directory an event's parent stands for, from the operation its thread is running:
    /// a walk resolving name N for an operation on "a/N/b" does so in "a". A directory whose
    /// dentry was re-created by a ref-walk (`d_alloc_parallel` after an RCU miss) is never
    /// the subject of an event, so this is the only way to learn its name. None when the
    /// event is outside an operation or its name fits more than one directory of the paths.
    fn dir_from_operation(&self, ev: &Named, paths: &Paths) -> Option<PathId> {
        let op = self.threads.get(ev.tid)?.op?;
        if op.ts_begin > ev.ts_begin || ev.ts_end > op.ts_end {
            return None;
        }
        let mut dir = None;
        for mut cur in [Some(op.path), op.path2].into_iter().flatten() {
            while let Some(parent) = paths.parent(cur) {
                if paths.leaf_name(cur) == ev.name_id {
                    if dir.is_some_and(|d| d != parent) {
                        return None;
                    }
                    dir = Some(parent);
                }
                cur = parent;
            }
        }
        dir
    }

    /// Records that directory dentry `id` is `dir`.
    fn name_dir(&mut self, id: Slot, dir: PathId, ts_begin: u64, sh: &mut Shared) {
        if dir == ROOT {
            // Names under it were keyed at the root all along: they were right.
            self.unnamed.remove(&id);
            self.dentries.entry(id).bound = Some(ROOT);
        } else {
            self.bind(id, dir, ts_begin, sh);
        }
    }

    /// Binds dentry `id` to `path` and returns its generation there: a new one when the id
    /// shows up under another name, or again after its hashed life ended.
    fn bind(&mut self, id: Slot, path: PathId, ts_begin: u64, sh: &mut Shared) -> u32 {
        if path == ROOT {
            return 0;
        }
        let rec = self.dentries.entry(id);
        // Only `__d_move` renames a dentry: one seen under another name with no traced move
        // since is another dentry at the same address, its death unseen (a kill path with
        // nothing traced). Its old life's `d_seq` is no floor for the new one.
        let renamed = !rec.moved
            && rec.bound.is_some_and(|b| {
                b != ROOT && b != path && sh.paths.leaf_name(b) != sh.paths.leaf_name(path)
            });
        let reborn = renamed || rec.dead_at.is_some_and(|d| ts_begin > d);
        let mut ended = None;
        let mut unexplained = None;
        if reborn {
            self.diag.seq_regressions += rec.seq.regressions;
            self.diag.seq_decreases_within_clock_skew += rec.order.within_skew;
            rec.seq = SeqState::default();
            rec.order.reset();
            rec.writers.clear();
            rec.dead_at = None;
            ended = rec.held_gap.take();
            unexplained = rec.awaits_d_drop.take();
        }
        if reborn || rec.bound != Some(path) {
            let i = path as usize;
            if i >= self.generations.len() {
                self.generations.resize(i + 1, 0);
            }
            let g = &mut self.generations[i];
            *g += 1;
            rec.generation = *g;
            rec.bound = Some(path);
            rec.moved = false;
        }
        let generation = rec.generation;
        for g in [unexplained, ended].into_iter().flatten() {
            self.gap(*g, sh);
        }
        generation
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Limits, SideState};
    use super::*;
    use crate::diff::{
        align::{NameId, OpMatcher},
        event::Ev,
        protocol::Protocol,
        report::Side,
    };

    /// What `path_of` and `bind` may change for an event: its two records and the counts of
    /// generations and unnamed parents.
    type Trace = (
        Vec<Option<(Option<PathId>, u32, Option<u64>, bool)>>,
        Vec<u32>,
        usize,
    );

    fn trace(st: &SideState, slots: [Slot; 2]) -> Trace {
        let recs = slots
            .iter()
            .map(|s| {
                st.dentries
                    .get(*s)
                    .map(|r| (r.bound, r.generation, r.dead_at, r.moved))
            })
            .collect();
        (recs, st.generations.clone(), st.unnamed.len())
    }

    /// The children cache answers as the paths do, also when pairs share a line and evict
    /// each other: random pairs over more directories and names than the cache has lines,
    /// asked through the cache of one table and directly of another path table.
    #[test]
    fn cached_children_agree_with_the_paths() {
        let mut dentries = Dentries::default();
        let (mut cached, mut direct) = (Paths::default(), Paths::default());
        let names: Vec<NameId> = (0..300u32)
            .map(|i| {
                let n = cached.name(format!("n{i}").as_bytes());
                assert_eq!(direct.name(format!("n{i}").as_bytes()), n);
                n
            })
            .collect();
        let mut next = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut dirs = vec![ROOT];
        let mut shared_lines = 0;
        for i in 0..60_000 {
            let dir = dirs[next(dirs.len() as u64) as usize];
            let name = names[next(names.len() as u64) as usize];
            let line = dentries.children[child_line(dir, name)];
            shared_lines += usize::from(line != ROOT && cached.node(line) != Some((dir, name)));
            let c = dentries.child(&mut cached, dir, name);
            assert_eq!(c, direct.child(dir, name), "pair {i}");
            assert_eq!(cached.node(c), Some((dir, name)), "pair {i}");
            if dirs.len() < 40 && next(50) == 0 {
                dirs.push(c);
            }
        }
        // Lines held another pair's path: the check of the node is what answered right.
        assert!(shared_lines > 1_000, "{shared_lines}");
    }

    /// `placed` answers only where `path_of` and `bind` change nothing, and answers as they
    /// do: random events over a few dentry numbers, parents and names, with lives ended and
    /// renames by a traced move in between. Lookups that found no dentry (number 0) are among
    /// them, answered from the children's cache.
    #[test]
    fn placed_agrees_with_path_of_and_bind() {
        let lim = Limits {
            context: 2,
            window_ns: 1_000_000,
            max_anomalies: 10,
            max_examples: 10,
        };
        let mut st = SideState::new(Side::Kernel, Protocol::modern("test"), lim, Vec::new());
        let mut sh = Shared {
            paths: Paths::default(),
            matcher: OpMatcher::new(100, 10),
            timeline: None,
            agreement: crate::agreement::Builder::new(10),
        };
        let names: Vec<NameId> = [&b"a"[..], b"b", b"c"]
            .iter()
            .map(|n| sh.paths.name(n))
            .collect();
        let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let (mut answered, mut without_dentry) = (0, 0);
        for i in 1..20_000u64 {
            let mut ev = Ev::zeroed();
            ev.ts_begin = i * 10;
            ev.ts_end = i * 10 + 5;
            ev.dentry = next(6) as Slot;
            ev.parent = next(6) as Slot;
            let ev = Named {
                ev: &ev,
                name_id: names[next(3) as usize],
                ptr: u64::from(ev.dentry),
            };
            if let Some(r) = st.dentries.get_mut(ev.dentry) {
                match next(12) {
                    0 => r.dead_at = Some(ev.ts_begin - 1 - next(2)),
                    1 => r.moved = true,
                    _ => {}
                }
            }
            let fast = st.placed(&ev, &sh.paths);
            let before = trace(&st, [ev.dentry, ev.parent]);
            let anew = st.place_anew(&ev, &mut sh);
            if let Some(f) = fast {
                assert_eq!(f, anew, "event {i}");
                assert_eq!(trace(&st, [ev.dentry, ev.parent]), before, "event {i}");
                answered += 1;
                without_dentry += usize::from(ev.dentry == 0);
            }
        }
        assert!((2_000..18_000).contains(&answered), "{answered}");
        assert!(without_dentry > 500, "{without_dentry}");
    }
}
