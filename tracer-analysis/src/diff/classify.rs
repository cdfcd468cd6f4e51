//! The classification rules (ARCHITECTURE.md, The diff) as pure functions of the operation history,
//! the path tree and the writer probes seen on the dentry. See the module documentation of
//! [`crate::diff`] for the rules in prose.
use serde_json::{json, Map, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{PathId, Paths, ROOT},
    history::{Exists, Fact, History, LastWriter, State, Writers},
};

/// Class of a NULL-inode lookup return or an ENOENT operation result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Negative,
    OverlapsWriter,
    RejectedSnapshot,
    Anomaly,
}

impl Class {
    pub const ALL: [Class; 4] = [
        Class::Negative,
        Class::OverlapsWriter,
        Class::RejectedSnapshot,
        Class::Anomaly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Negative => "negative",
            Class::OverlapsWriter => "overlaps-writer",
            Class::RejectedSnapshot => "rejected-snapshot",
            Class::Anomaly => "anomaly",
        }
    }
}

/// A writer probe event on a dentry, kept for overlap questions.
#[derive(Clone, Copy, Debug)]
pub struct WriterSpan {
    pub probe: Probe,
    pub ts_begin: u64,
    pub ts_end: u64,
    pub tid: u32,
    pub flags: u16,
    /// `d_inode` was not NULL at its entry (false for an event without its entry half).
    pub positive: bool,
}

impl WriterSpan {
    /// It ran inside `outer`, on the same thread.
    pub fn within(&self, outer: &WriterSpan) -> bool {
        self.tid == outer.tid && outer.ts_begin <= self.ts_begin && self.ts_end <= outer.ts_end
    }

    fn entered(&self) -> bool {
        self.flags & flags::NO_ENTRY == 0
    }

    /// The kill path (`__dentry_kill`, `dentry_kill`).
    pub fn is_kill(&self) -> bool {
        matches!(self.probe, Probe::DentryKill | Probe::DentryKillLocked)
    }

    /// An unhash that found the dentry hashed with `d_inode` NULL at its entry.
    fn negative_unhash(&self) -> bool {
        matches!(self.probe, Probe::DDropInner | Probe::DDrop)
            && self.entered()
            && self.flags & flags::HASHED_BEGIN != 0
            && !self.positive
    }

    /// `__dentry_kill` that entered with `d_inode` set. It runs under `d_lock` from its entry
    /// (5.10 to 7.1.5 at least), and `d_inode` changes only under `d_lock`: nothing but the
    /// kill itself can clear it before the kill's own unhash. (The 7.x `dentry_kill` that
    /// folded `lock_for_kill` in, after 7.1.5, is not one: it may drop `d_lock` there, where
    /// the name's `d_delete` can clear the inode.)
    fn positive_locked_kill(&self) -> bool {
        self.probe == Probe::DentryKill && self.entered() && self.positive
    }
}

/// A class with the reason in one sentence and the facts behind it.
#[derive(Clone, Debug)]
pub struct Ruling {
    pub class: Class,
    pub why: String,
    pub evidence: Map<String, Value>,
}

impl Ruling {
    fn new(class: Class, why: String) -> Ruling {
        Ruling {
            class,
            why,
            evidence: Map::new(),
        }
    }

    fn with(mut self, key: &str, v: Value) -> Ruling {
        self.evidence.insert(key.into(), v);
        self
    }
}

/// What the history says about a name at one point.
enum NameState {
    Exists(Fact),
    /// The last fact says it does not exist, or there is none (never seen existing).
    Missing(Option<Fact>),
    /// An ancestor directory was removed.
    ParentGone(PathId, Fact),
    /// A directory above it was made (or removed and seen again) after the name's own last
    /// operation, and no rename brought the name along: nothing shows it in there.
    DirectoryReplaced(PathId, Fact),
    /// The last two writers overlapped with opposite effects: the order is unknown.
    Racing(Fact, Fact),
    /// A writer of the name's old path (or a directory between it and the renamed one)
    /// overlapped the directory rename that moved it: whether it acted before the move is
    /// unknown.
    MovedMeanwhile(PathId, Fact),
    /// The directory rename that would have moved the name did not end before the point: only
    /// a writer folded behind the retention is taken as a directory's last one so, and what
    /// came before it is gone, so whether the name was there is unknown.
    MoveNotBefore(PathId, Fact),
}

/// A name's state, and where its facts are.
struct Found {
    state: NameState,
    /// The name the state's facts are about: the name itself, or the name it had before a
    /// rename of a directory above it moved it (the facts of the moved name stay behind).
    at: PathId,
    /// The newest rename or exchange of a directory above the name that moved it, and that
    /// directory.
    moved: Option<(PathId, Fact)>,
}

pub fn fact_json(f: &Fact, paths: &Paths, path: PathId) -> Value {
    json!({
        "operation": f.kind.name(),
        "name": paths.render(path),
        "tid": f.tid,
        "ts_begin": f.ts_begin,
        "ts_end": f.ts_end,
        "result": f.result,
    })
}

/// The name that `path`, below `dir`, had below `from`: None if no operation ever named it.
fn relocate(paths: &Paths, path: PathId, dir: PathId, from: PathId) -> Option<PathId> {
    let mut names = Vec::new();
    let mut cur = path;
    while cur != dir {
        names.push(paths.leaf_name(cur));
        cur = paths.parent(cur)?;
    }
    names
        .iter()
        .rev()
        .try_fold(from, |p, n| paths.find_child(p, *n))
}

/// The state of `path` at `t`: its own last facts, unless a writer of a directory above it
/// completed after them. A rename or exchange of that directory brought along what was below
/// its source at the rename's begin, so the question moves there (and back in time); a mkdir
/// made it empty.
///
/// Inlined: [`class_of`] reads only the class off the state, and as a call the answer was
/// written out whole (the state's facts, where they are, the move) and read back, with the
/// prologue and epilogue about a fifth of its cost (callgrind).
#[inline(always)]
fn name_state(hist: &History, paths: &Paths, path: PathId, t: u64) -> Found {
    let (mut path, mut t, mut moved) = (path, t, None);
    loop {
        let mut own = hist.state_at(path, t);
        let own_end = match own {
            State::Exists(f) | State::Missing(f) => Some(f.ts_end),
            State::Racing(w, r)
            | State::Ordered {
                last: w, rival: r, ..
            } => Some(w.ts_end.max(r.ts_end)),
            State::Unknown => None,
        };
        let found = move |state| Found {
            state,
            at: path,
            moved,
        };
        let mut newest: Option<(PathId, LastWriter<'_>)> = None;
        let mut doubt: Option<(PathId, Fact)> = None;
        let mut dir = paths.parent(path);
        while let Some(d) = dir.filter(|d| *d != ROOT) {
            let (missing, last_writer) = hist.missing_and_last_writer(d, t);
            if let Some(f) = missing {
                return found(NameState::ParentGone(d, *f));
            }
            if let Some(lw) = last_writer {
                if own_end.is_none_or(|e| lw.0.ts_end > e) {
                    if newest.is_none_or(|(_, (n, _))| lw.0.ts_end > n.ts_end) {
                        newest = Some((d, lw));
                    }
                } else {
                    // The order of the name's racing writers rests on its state before them,
                    // under the directory as it was then.
                    if let State::Ordered { last, rival, prior } = own {
                        if lw.0.ts_end > prior.ts_end {
                            own = State::Racing(last, rival);
                        }
                    }
                    if let (State::Exists(f), None) = (own.settled(), doubt) {
                        doubt = moved_doubt(hist, paths, path, d, lw.0, f);
                    }
                }
            }
            dir = paths.parent(d);
        }
        let Some((d, (w, rival))) = newest else {
            return found(match (own.settled(), doubt) {
                // The name's own facts since the move began before a writer of its old path
                // ended: that writer's effect came last (or raced them).
                (State::Exists(_), Some((q, x))) if x.ts_end >= t => {
                    NameState::MovedMeanwhile(q, x)
                }
                (State::Exists(f), Some((q, x))) if x.effect == Some(Exists::No) => {
                    if f.writer && f.ts_end >= x.ts_begin {
                        NameState::Racing(*f, x)
                    } else {
                        return Found {
                            state: NameState::Missing(Some(x)),
                            at: q,
                            moved,
                        };
                    }
                }
                (State::Exists(f), _) => NameState::Exists(*f),
                (State::Missing(f), _) => NameState::Missing(Some(*f)),
                (State::Unknown, _) => NameState::Missing(None),
                (
                    State::Racing(w, r)
                    | State::Ordered {
                        last: w, rival: r, ..
                    },
                    _,
                ) => NameState::Racing(*w, *r),
            });
        };
        if let Some(r) = rival {
            return Found {
                state: NameState::Racing(*w, *r),
                at: d,
                moved,
            };
        }
        let Some(from) = hist.moved_from(d, w) else {
            return found(NameState::DirectoryReplaced(d, *w));
        };
        moved = moved.or(Some((d, *w)));
        let Some(src) = relocate(paths, path, d, from) else {
            return Found {
                state: NameState::Missing(None),
                at: path,
                moved,
            };
        };
        // An operation on the old path that overlapped the rename may have resolved it before
        // the move and acted on the moved name, before or after the move. A directory between
        // the name and the renamed one replaced that way leaves the name unknown.
        let mut cur = paths.parent(src);
        while let Some(q) = cur.filter(|q| *q != from) {
            if let Some(x) = hist.writer_overlapping(q, w.ts_begin, w.ts_end, None, Writers::All) {
                return Found {
                    state: NameState::MovedMeanwhile(q, *x),
                    at: path,
                    moved,
                };
            }
            cur = paths.parent(q);
        }
        // On the name itself only a change of existence matters, and once it ended its effect
        // holds in either order (a create that succeeded found the directory, moved or not):
        // unknown only for a point inside it.
        if let Some(x) =
            hist.writer_overlapping(src, w.ts_begin, w.ts_end, None, Writers::OfExistence)
        {
            let state = if x.ts_end >= t {
                NameState::MovedMeanwhile(src, *x)
            } else {
                match hist.state_at(src, x.ts_end.saturating_add(1)) {
                    State::Exists(f) => NameState::Exists(*f),
                    State::Missing(f) => NameState::Missing(Some(*f)),
                    // Its order would rest on the old name's state before the move.
                    State::Racing(a, b)
                    | State::Ordered {
                        last: a, rival: b, ..
                    } => NameState::Racing(*a, *b),
                    State::Unknown => NameState::MovedMeanwhile(src, *x),
                }
            };
            return Found {
                state,
                at: src,
                moved,
            };
        }
        // Strictly earlier, so the walk ends even on stamps that end before they begin. A
        // writer that is not (a folded one, for a question asked late) would send the walk
        // between two exchanged directories for ever.
        let before = w.ts_begin.min(w.ts_end);
        if before >= t {
            return found(NameState::MoveNotBefore(d, *w));
        }
        path = src;
        t = before;
    }
}

/// A writer of existence of `path`'s old name that overlapped `w` (a rename or exchange of
/// its directory `d` that moved it there) and did not end before `f`, the fact showing
/// `path` existing since, began: `f` does not settle what it did to the moved name.
fn moved_doubt(
    hist: &History,
    paths: &Paths,
    path: PathId,
    d: PathId,
    w: &Fact,
    f: &Fact,
) -> Option<(PathId, Fact)> {
    let src = relocate(paths, path, d, hist.moved_from(d, w)?)?;
    hist.writer_overlapping(src, w.ts_begin, w.ts_end, None, Writers::OfExistence)
        .filter(|x| x.ts_end >= f.ts_begin)
        .map(|x| (src, *x))
}

/// A name-changing operation on `path` or one of its directories overlapping `[b, e]` (rule 2).
/// On the name itself only a writer that may have changed its existence
/// counts; above it any writer, since an exchange or a rename onto an existing directory
/// replaces what is below it.
fn writer_op(
    hist: &History,
    paths: &Paths,
    path: PathId,
    b: u64,
    e: u64,
) -> Option<(PathId, Fact)> {
    let mut cur = Some(path);
    let mut which = Writers::OfExistence;
    while let Some(p) = cur.filter(|p| *p != ROOT) {
        if let Some(f) = hist.writer_overlapping(p, b, e, None, which) {
            return Some((p, *f));
        }
        which = Writers::All;
        cur = paths.parent(p);
    }
    None
}

/// What the overlap and existence questions found, in rule order: the class, and the facts
/// a ruling shows. Cheap: the ruling (its sentence and evidence) is built only when asked for.
enum Outcome {
    /// A name-changing operation on the name or a directory above it overlaps.
    Writer(PathId, Fact),
    State(Found),
}

impl Outcome {
    /// The class as [`class_of`] gave it until it asked without building an outcome: the
    /// oracle of its test.
    #[cfg(test)]
    fn class(&self) -> Class {
        match self {
            Outcome::Writer(..)
            | Outcome::State(Found {
                state:
                    NameState::Racing(..) | NameState::MovedMeanwhile(..) | NameState::MoveNotBefore(..),
                ..
            }) => Class::OverlapsWriter,
            Outcome::State(Found {
                state: NameState::Exists(_),
                ..
            }) => Class::Anomaly,
            Outcome::State(_) => Class::Negative,
        }
    }
}

impl NameState {
    /// The class a name in this state gives when no writer overlaps.
    fn class(&self) -> Class {
        match self {
            NameState::Racing(..)
            | NameState::MovedMeanwhile(..)
            | NameState::MoveNotBefore(..) => Class::OverlapsWriter,
            NameState::Exists(_) => Class::Anomaly,
            NameState::Missing(_)
            | NameState::ParentGone(..)
            | NameState::DirectoryReplaced(..) => Class::Negative,
        }
    }
}

fn outcome(hist: &History, paths: &Paths, path: PathId, b: u64, e: u64) -> Outcome {
    if let Some((p, f)) = writer_op(hist, paths, path, b, e) {
        return Outcome::Writer(p, f);
    }
    Outcome::State(name_state(hist, paths, path, b))
}

/// The class of a validated NULL-inode lookup return or of an ENOENT result over `[b, e]`:
/// what [`null_lookup`] and [`enoent`] rule, without building their sentence and evidence.
///
/// [`outcome`]'s questions, asked without building an [`Outcome`] (built and read back by
/// the caller, it cost about 15 instructions a call, callgrind).
pub fn class_of(hist: &History, paths: &Paths, path: PathId, b: u64, e: u64) -> Class {
    if writer_op(hist, paths, path, b, e).is_some() {
        return Class::OverlapsWriter;
    }
    name_state(hist, paths, path, b).state.class()
}

/// The fact that shows a name existing for a whole interval, and where it is (see [`Found`]).
struct Since {
    fact: Fact,
    at: PathId,
    moved: Option<(PathId, Fact)>,
}

/// Adds the directory rename that moved the name, if one did.
fn with_move(v: Ruling, moved: Option<(PathId, Fact)>, paths: &Paths) -> Ruling {
    match moved {
        Some((d, f)) => v.with("moved_with_directory", fact_json(&f, paths, d)),
        None => v,
    }
}

/// The overlap and existence questions every class asks, in rule order. `Err` is the verdict;
/// `Ok` carries the fact that shows the name existing for the whole interval.
fn explain(
    hist: &History,
    paths: &Paths,
    path: PathId,
    b: u64,
    e: u64,
    subject: &str,
) -> Result<Since, Ruling> {
    let Found { state, at, moved } = match outcome(hist, paths, path, b, e) {
        Outcome::Writer(p, f) => {
            return Err(Ruling::new(
                Class::OverlapsWriter,
                format!(
                    "a {} of {} by tid {} overlaps the {subject}",
                    f.kind.name(),
                    paths.render(p),
                    f.tid
                ),
            )
            .with("writer", fact_json(&f, paths, p)));
        }
        Outcome::State(s) => s,
    };
    let v = match state {
        NameState::Exists(fact) => return Ok(Since { fact, at, moved }),
        NameState::Missing(None) => Ruling::new(
            Class::Negative,
            "no operation before it shows the name existing".into(),
        )
        .with("name_state", json!("never seen existing")),
        NameState::Missing(Some(f)) => Ruling::new(
            Class::Negative,
            format!(
                "the name is missing since a {} by tid {} ended",
                f.kind.name(),
                f.tid
            ),
        )
        .with("name_state", json!("missing"))
        .with("last_operation", fact_json(&f, paths, at)),
        NameState::Racing(w, r) => Ruling::new(
            Class::OverlapsWriter,
            format!(
                "a {} (tid {}) and a {} (tid {}) of {} overlapped each other before it: which \
                 took effect last is unknown",
                w.kind.name(),
                w.tid,
                r.kind.name(),
                r.tid,
                paths.render(at)
            ),
        )
        .with("name_state", json!("racing writers"))
        .with("writer", fact_json(&w, paths, at))
        .with("rival_writer", fact_json(&r, paths, at)),
        NameState::MovedMeanwhile(q, f) => Ruling::new(
            Class::OverlapsWriter,
            format!(
                "a {} of {} by tid {} overlapped the directory rename that moved the name: \
                 whether it acted on the name before the move is unknown",
                f.kind.name(),
                paths.render(q),
                f.tid
            ),
        )
        .with("name_state", json!("written while moved"))
        .with("writer", fact_json(&f, paths, q)),
        NameState::MoveNotBefore(d, f) => Ruling::new(
            Class::OverlapsWriter,
            format!(
                "the {} of its directory {} by tid {} did not end before it, and what came                  before that is behind the retention: whether the name was there is unknown",
                f.kind.name(),
                paths.render(d),
                f.tid
            ),
        )
        .with("name_state", json!("moved, its past folded"))
        .with("writer", fact_json(&f, paths, d)),
        NameState::ParentGone(d, f) => Ruling::new(
            Class::Negative,
            format!(
                "its directory {} is missing since a {} by tid {}",
                paths.render(d),
                f.kind.name(),
                f.tid
            ),
        )
        .with("name_state", json!("directory missing"))
        .with("last_operation", fact_json(&f, paths, d)),
        NameState::DirectoryReplaced(d, f) => Ruling::new(
            Class::Negative,
            format!(
                "its directory {} changed by a {} by tid {} after the name's last operation, \
                 and nothing shows the name in it since",
                paths.render(d),
                f.kind.name(),
                f.tid
            ),
        )
        .with("name_state", json!("directory replaced"))
        .with("last_operation", fact_json(&f, paths, d)),
    };
    Err(with_move(v, moved, paths))
}

fn exists_evidence(v: Ruling, since: Since, paths: &Paths) -> Ruling {
    let v = v
        .with("name_state", json!("exists for the whole interval"))
        .with("exists_since", fact_json(&since.fact, paths, since.at));
    with_move(v, since.moved, paths)
}

/// A validated `__d_lookup_rcu` return with NULL `d_inode` (unvalidated ones are
/// `rejected-snapshot` without further questions).
pub fn null_lookup(
    hist: &History,
    paths: &Paths,
    path: PathId,
    b: u64,
    e: u64,
    hashed: bool,
    writers: &[WriterSpan],
) -> Ruling {
    let since = match explain(hist, paths, path, b, e, "lookup") {
        Ok(f) => f,
        Err(v) => return v,
    };
    let writer = writers
        .iter()
        .find(|w| w.ts_begin <= e && w.ts_end >= b)
        .copied();
    let mut why = String::from(
        "validated NULL d_inode for a name that exists for the whole lookup: the caller would \
         report ENOENT",
    );
    if let Some(w) = writer {
        // Only a writer that changes whether the name exists (rule 2) excuses it. A kill by
        // pruning leaves the name existing, and its d_seq bumps (the invalidate after the
        // unhash, the clear) must have failed the lookup's validation.
        why.push_str(&format!(
            "; {} (tid {}) overlapping it kills the dentry, which must have failed the \
             validation, not passed it",
            w.probe.symbol(),
            w.tid
        ));
    } else if !hashed {
        why.push_str("; the dentry was unhashed and no traced writer explains it");
    }
    let mut v = exists_evidence(Ruling::new(Class::Anomaly, why), since, paths);
    if let Some(w) = writer {
        v = v.with("overlapping_writer_probe", writer_json(&w));
    }
    v
}

fn writer_json(w: &WriterSpan) -> Value {
    json!({
        "probe": w.probe.symbol(),
        "tid": w.tid,
        "ts_begin": w.ts_begin,
        "ts_end": w.ts_end,
        "hashed_at_entry": w.flags & flags::HASHED_BEGIN != 0,
        "hashed_at_exit": w.flags & flags::HASHED_END != 0,
    })
}

/// An ENOENT result of a stat or open.
pub fn enoent(hist: &History, paths: &Paths, path: PathId, b: u64, e: u64) -> Ruling {
    match explain(hist, paths, path, b, e, "operation") {
        Err(v) => v,
        Ok(since) => exists_evidence(
            Ruling::new(
                Class::Anomaly,
                "ENOENT for a name that exists for the whole operation".into(),
            ),
            since,
            paths,
        ),
    }
}

/// The kill path clearing `d_inode` before it unhashes, as the kill's own probes show it: `w`
/// is the writer just seen, `earlier` the dentry's writers before it in this life. Either an
/// unhash inside a `__dentry_kill` that entered with an inode finds the still hashed dentry
/// with `d_inode` NULL, or a writer inside a kill finds an inode that an unhash before it in
/// the same kill found NULL on the hashed dentry (inside a kill `d_lock` is held from that
/// unhash on, and nothing instantiates a dentry being killed: the inode was cleared before
/// the unhash and put back). Reported once per kill: at the unhash when the kill's entry shows
/// it, else at the writer that found the inode again. Some(verdict) if it is an anomaly.
pub fn cleared_in_kill(w: &WriterSpan, earlier: &[WriterSpan]) -> Option<Ruling> {
    if w.negative_unhash() {
        // `___d_drop` inside `__d_drop` is the same unhash.
        if earlier.iter().any(|u| u.negative_unhash() && w.within(u)) {
            return None;
        }
        let kill = earlier
            .iter()
            .find(|k| k.positive_locked_kill() && w.within(k))?;
        return Some(
            Ruling::new(
                Class::Anomaly,
                format!(
                    "{} found the dentry hashed with d_inode NULL inside {} (tid {}), which \
                     entered with an inode under d_lock: the kill cleared d_inode before it \
                     unhashed",
                    w.probe.symbol(),
                    kill.probe.symbol(),
                    kill.tid
                ),
            )
            .with("kill", writer_json(kill)),
        );
    }
    if !(w.positive && w.entered()) {
        return None;
    }
    let (kill, unhash) = earlier
        .iter()
        .filter(|k| k.is_kill() && w.within(k))
        .find_map(|k| {
            earlier
                .iter()
                .find(|u| u.negative_unhash() && u.within(k) && u.ts_end <= w.ts_begin)
                .map(|u| (k, u))
        })?;
    // Reported at the unhash already.
    if earlier
        .iter()
        .any(|k| k.positive_locked_kill() && unhash.within(k))
    {
        return None;
    }
    Some(
        Ruling::new(
            Class::Anomaly,
            format!(
                "{} found an inode that {} before it in the same {} (tid {}) found NULL on the \
                 hashed dentry: the kill cleared d_inode before it unhashed, then put it back",
                w.probe.symbol(),
                unhash.probe.symbol(),
                kill.probe.symbol(),
                kill.tid
            ),
        )
        .with("kill", writer_json(kill))
        .with("unhash", writer_json(unhash)),
    )
}

/// An inode clear (`dentry_unlink_inode`/`dentry_iput`) on a dentry hashed at its entry, by
/// thread `tid`. Only `d_delete` does that legitimately, inside an unlink or rmdir of the name
/// itself, in the unlinking thread (`vfs_unlink`, `vfs_rmdir`); a rename calls no `d_delete`
/// (`__d_move` unhashes the target, which dies unhashed, and moves the source and what is
/// below a renamed directory along); anywhere else (the kill path, pruning, also while
/// another thread unlinks the name) the unhash must come first. Some(verdict) if it is an
/// anomaly.
pub fn clear_while_hashed(
    hist: &History,
    path: PathId,
    b: u64,
    e: u64,
    tid: u32,
) -> Option<Ruling> {
    const DELETERS: [OpKind; 2] = [OpKind::Unlink, OpKind::Rmdir];
    if hist
        .own_writer_overlapping(path, b, e, tid, &DELETERS)
        .is_some()
    {
        return None;
    }
    let why = match hist.writer_overlapping(path, b, e, Some(&DELETERS), Writers::All) {
        Some(f) => format!(
            "d_inode cleared while the dentry was still hashed, outside d_delete: the {} of the \
             name overlapping it runs on tid {}, and d_delete runs in the unlinking thread; the \
             kill path must unhash before the clear",
            f.kind.name(),
            f.tid
        ),
        None => "d_inode cleared while the dentry was still hashed, outside d_delete (no unlink \
                 or rmdir of the name overlaps): the kill path must unhash before the clear"
            .into(),
    };
    Some(Ruling::new(Class::Anomaly, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(paths: &mut Paths, ops: &[(OpKind, &str, i32, u64, u64)]) -> History {
        let mut h = History::new(u64::MAX);
        for (kind, name, result, b, e) in ops {
            let p = paths.parse(name.as_bytes());
            for f in Fact::from_op(*kind, *result, *b, *e, 9)
                .into_iter()
                .flatten()
            {
                h.add(p, f, *e);
            }
        }
        h
    }

    fn hist_two(paths: &mut Paths, ops: &[(OpKind, &str, Option<&str>, u64, u64)]) -> History {
        let mut h = History::new(u64::MAX);
        for (kind, name, to, b, e) in ops {
            let p = paths.parse(name.as_bytes());
            let to = to.map(|t| paths.parse(t.as_bytes()));
            h.add_op(Fact::from_op(*kind, 0, *b, *e, 9), p, to, *e);
        }
        h
    }

    /// A directory renamed or exchanged brings its names along: their state is the one they
    /// had under the source at the rename's begin; a mkdir over the old name leaves it empty.
    #[test]
    fn names_move_with_their_directory() {
        let mut paths = Paths::default();
        let h = hist_two(
            &mut paths,
            &[
                (OpKind::Mkdir, "d0", None, 0, 5),
                (OpKind::Mkdir, "e0", None, 0, 5),
                (OpKind::Create, "d0/f", None, 10, 20),
                (OpKind::Create, "e0/g", None, 10, 20),
                (OpKind::Rename, "d0", Some("d1"), 100, 110),
                (OpKind::Mkdir, "d0", None, 120, 130),
                (OpKind::Exchange, "d1", Some("e0"), 200, 210),
            ],
        );
        // Interned for the questions only: a name no operation named has no facts.
        let [d1f, d0f, e0f, d1g] =
            ["d1/f", "d0/f", "e0/f", "d1/g"].map(|p| paths.parse(p.as_bytes()));
        let at = |p, t| class_of(&h, &paths, p, t, t + 5);
        assert_eq!(at(d1f, 150), Class::Anomaly, "moved with d0");
        assert_eq!(at(d0f, 150), Class::Negative, "left behind, d0 new");
        assert_eq!(at(e0f, 250), Class::Anomaly, "exchanged into e0");
        assert_eq!(at(d1g, 250), Class::Anomaly, "exchanged into d1");
        assert_eq!(at(d1f, 250), Class::Negative, "exchanged away");
        assert_eq!(at(d1f, 105), Class::OverlapsWriter, "the rename overlaps");
        let v = null_lookup(&h, &paths, e0f, 250, 255, true, &[]);
        assert_eq!(v.evidence["exists_since"]["name"], "d0/f");
        assert_eq!(v.evidence["moved_with_directory"]["name"], "e0");
        // An unlink of the old path overlapping a directory's rename may have acted on the
        // moved name: unknown while it runs, missing once it ended (in either order).
        let mut paths = Paths::default();
        let h = hist_two(
            &mut paths,
            &[
                (OpKind::Mkdir, "d0", None, 0, 5),
                (OpKind::Create, "d0/f", None, 10, 20),
                (OpKind::Unlink, "d0/f", None, 90, 150),
                (OpKind::Rename, "d0", Some("d1"), 100, 110),
            ],
        );
        let d1f = paths.parse(b"d1/f");
        let v = enoent(&h, &paths, d1f, 120, 130);
        assert_eq!(v.class, Class::OverlapsWriter, "{}", v.why);
        assert_eq!(v.evidence["writer"]["name"], "d0/f");
        let v = enoent(&h, &paths, d1f, 200, 210);
        assert_eq!(v.class, Class::Negative, "{}", v.why);
        assert_eq!(v.evidence["last_operation"]["operation"], "unlink");
    }

    /// Racing writers of a name are ordered from its state before them: under the directory
    /// as it was then. A directory above it exchanged after that state was seen leaves their
    /// order unknown (what was under the new directory is another name's state).
    /// A question asked late, behind the retention, about a name under two directories that
    /// were exchanged: the exchange, folded into each directory's base writer, is the only
    /// writer either knows, though it did not end before the point. Taking it as the move
    /// before the point relocated the name from one directory to the other and back at the
    /// same point, for ever (rev22 finding 1, session 14).
    #[test]
    fn a_folded_exchange_not_before_the_point_ends_the_walk() {
        let mut paths = Paths::default();
        let mut h = History::new(10);
        let ops: [(OpKind, &str, Option<&str>, u64, u64); 5] = [
            (OpKind::Mkdir, "a", None, 0, 5),
            (OpKind::Mkdir, "b", None, 0, 5),
            (OpKind::Exchange, "a", Some("b"), 100, 200),
            // Later operations on both directories fold the exchange into their base facts.
            (OpKind::Stat, "a", None, 10_000, 10_005),
            (OpKind::Stat, "b", None, 10_000, 10_005),
        ];
        for (kind, name, to, b, e) in ops {
            let p = paths.parse(name.as_bytes());
            let to = to.map(|t| paths.parse(t.as_bytes()));
            h.add_op(Fact::from_op(kind, 0, b, e, 9), p, to, e);
        }
        // Both of the name's places interned, as other operations would have.
        let [x, _] = ["a/x", "b/x"].map(|p| paths.parse(p.as_bytes()));
        let v = null_lookup(&h, &paths, x, 100, 150, true, &[]);
        assert_eq!(v.class, Class::OverlapsWriter, "{}", v.why);
        assert_eq!(
            v.evidence["writer"]["operation"], "exchange",
            "{:?}",
            v.evidence
        );
    }

    #[test]
    fn racing_writers_are_ordered_only_under_an_unchanged_directory() {
        let class = |exchange: Option<(u64, u64)>| {
            let mut paths = Paths::default();
            let mut ops = vec![
                (OpKind::Mkdir, "d0", None, 0, 5),
                (OpKind::Mkdir, "e0", None, 0, 5),
                (OpKind::Create, "d0/f", None, 10, 20),
                (OpKind::Stat, "d0/f", None, 30, 40),
                (OpKind::Unlink, "d0/f", None, 100, 300),
                (OpKind::Create, "d0/f", None, 150, 200),
            ];
            if let Some((b, e)) = exchange {
                ops.push((OpKind::Exchange, "d0", Some("e0"), b, e));
                ops.sort_by_key(|o| o.3);
            }
            let h = hist_two(&mut paths, &ops);
            let f = paths.parse(b"d0/f");
            class_of(&h, &paths, f, 400, 410)
        };
        assert_eq!(
            class(None),
            Class::Anomaly,
            "the unlink first, the create last"
        );
        assert_eq!(
            class(Some((25, 28))),
            Class::Anomaly,
            "the stat saw it after"
        );
        assert_eq!(class(Some((50, 60))), Class::OverlapsWriter);
    }

    /// `class_of` asks [`outcome`]'s questions without building one: on random histories of
    /// makes, removals, renames and exchanges (some failing) over a small tree, and random
    /// questions, it gives the class the outcome gives (`class_of` as it was).
    #[test]
    fn class_of_answers_as_the_outcome() {
        let names = ["d", "e", "d/f", "d/g", "e/f", "e/g", "d/f/x", "e/f/x"];
        let kinds = [
            OpKind::Mkdir,
            OpKind::Create,
            OpKind::Unlink,
            OpKind::Rmdir,
            OpKind::Rename,
            OpKind::Exchange,
            OpKind::Stat,
        ];
        let mut next = crate::test_rng::xorshift(0x5851_f42d_4c95_7f2d);
        let mut seen = [0u32; Class::ALL.len()];
        for _ in 0..400 {
            let mut paths = Paths::default();
            let mut h = History::new(u64::MAX);
            let mut ops: Vec<(u64, u64, OpKind, usize, usize, i32)> = (0..=next(30))
                .map(|_| {
                    let b = next(1_000);
                    let kind = kinds[next(kinds.len() as u64) as usize];
                    let result = [0, 0, 0, -2, -17][next(5) as usize];
                    let (name, to) = (next(names.len() as u64), next(names.len() as u64));
                    (b, b + next(60), kind, name as usize, to as usize, result)
                })
                .collect();
            ops.sort_unstable_by_key(|o| (o.0, o.1));
            for (b, e, kind, name, to, result) in ops {
                let p = paths.parse(names[name].as_bytes());
                let to = matches!(kind, OpKind::Rename | OpKind::Exchange)
                    .then(|| paths.parse(names[to].as_bytes()));
                h.add_op(Fact::from_op(kind, result, b, e, 9), p, to, e);
            }
            for _ in 0..50 {
                let p = paths.parse(names[next(names.len() as u64) as usize].as_bytes());
                let b = next(1_100);
                let e = b + next(40);
                let class = class_of(&h, &paths, p, b, e);
                assert_eq!(class, outcome(&h, &paths, p, b, e).class(), "{p} {b} {e}");
                seen[class as usize] += 1;
            }
        }
        for class in [Class::Negative, Class::OverlapsWriter, Class::Anomaly] {
            assert!(seen[class as usize] > 1_000, "{seen:?}");
        }
    }

    #[test]
    fn rules_in_order() {
        let mut paths = Paths::default();
        let h = hist(
            &mut paths,
            &[
                (OpKind::Mkdir, "d", 0, 0, 5),
                (OpKind::Create, "d/f", 0, 10, 20),
                (OpKind::Unlink, "d/g", 0, 30, 40),
                (OpKind::Rmdir, "e", 0, 30, 40),
                // A create preempted across a whole unlink of the same name.
                (OpKind::Unlink, "d/r", 0, 40, 50),
                (OpKind::Create, "d/r", 0, 10, 60),
            ],
        );
        let f = paths.parse(b"d/f");
        let g = paths.parse(b"d/g");
        let ef = paths.parse(b"e/f");
        let never = paths.parse(b"d/never");
        let c = |p, b, e, hashed| {
            let class = null_lookup(&h, &paths, p, b, e, hashed, &[]).class;
            assert_eq!(
                class_of(&h, &paths, p, b, e),
                class,
                "the cheap class agrees"
            );
            class
        };
        assert_eq!(c(f, 100, 110, true), Class::Anomaly);
        assert_eq!(
            c(f, 15, 25, true),
            Class::OverlapsWriter,
            "the create overlaps"
        );
        assert_eq!(c(f, 6, 8, true), Class::Negative, "before the create");
        assert_eq!(c(g, 35, 45, true), Class::OverlapsWriter);
        assert_eq!(c(g, 50, 60, true), Class::Negative);
        assert_eq!(c(ef, 50, 60, true), Class::Negative, "directory removed");
        assert_eq!(c(never, 50, 60, true), Class::Negative);
        let kill = WriterSpan {
            probe: Probe::DDropInner,
            ts_begin: 100,
            ts_end: 104,
            tid: 3,
            flags: flags::HASHED_BEGIN | flags::HASHED_END,
            positive: true,
        };
        let v = null_lookup(&h, &paths, f, 102, 106, false, &[kill]);
        assert_eq!(
            v.class,
            Class::Anomaly,
            "unhashed by a kill: the kill does not excuse it either"
        );
        let v = null_lookup(&h, &paths, f, 102, 106, true, &[kill]);
        assert_eq!(
            v.class,
            Class::Anomaly,
            "hashed: the kill does not excuse it"
        );
        assert!(v.evidence.contains_key("overlapping_writer_probe"));
        let r = paths.parse(b"d/r");
        let v = enoent(&h, &paths, r, 100, 110);
        assert_eq!(v.class, Class::OverlapsWriter, "{}", v.why);
        assert_eq!(v.evidence["name_state"], "racing writers");
        assert_eq!(enoent(&h, &paths, f, 100, 110).class, Class::Anomaly);
        assert_eq!(enoent(&h, &paths, g, 50, 60).class, Class::Negative);
        assert!(clear_while_hashed(&h, g, 32, 38, 9).is_none(), "d_delete");
        let v = clear_while_hashed(&h, g, 32, 38, 3).map(|v| v.why);
        assert!(
            v.as_ref().is_some_and(|w| w.contains("tid 9")),
            "another thread's clear: {v:?}"
        );
        assert!(clear_while_hashed(&h, f, 100, 110, 9).is_some());
        // A rename of the name itself calls no d_delete either.
        let mut paths = Paths::default();
        let h = hist_two(&mut paths, &[(OpKind::Rename, "a", Some("b"), 10, 20)]);
        let (a, b) = (paths.parse(b"a"), paths.parse(b"b"));
        assert!(clear_while_hashed(&h, a, 12, 14, 9).is_some());
        assert!(clear_while_hashed(&h, b, 12, 14, 9).is_some());
    }
}
