//! The classification rules (ARCHITECTURE.md, The diff) as pure functions of the operation history,
//! the path tree and the writer probes seen on the dentry. See the module documentation of
//! [`crate::diff`] for the rules in prose.
use serde_json::{json, Map, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{
    align::{PathId, Paths, ROOT},
    history::{Fact, History, State},
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
    /// The last two writers overlapped with opposite effects: the order is unknown.
    Racing(Fact, Fact),
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

fn name_state(hist: &History, paths: &Paths, path: PathId, t: u64) -> NameState {
    let mut dir = paths.parent(path);
    while let Some(d) = dir.filter(|d| *d != ROOT) {
        if let State::Missing(f) = hist.state_at(d, t) {
            return NameState::ParentGone(d, *f);
        }
        dir = paths.parent(d);
    }
    match hist.state_at(path, t) {
        State::Exists(f) => NameState::Exists(*f),
        State::Missing(f) => NameState::Missing(Some(*f)),
        State::Unknown => NameState::Missing(None),
        State::Racing(w, r) => NameState::Racing(*w, *r),
    }
}

/// A name-changing operation (of `kinds`, or any writer) on `path` or one of its directories
/// overlapping `[b, e]`.
fn writer_op(
    hist: &History,
    paths: &Paths,
    path: PathId,
    b: u64,
    e: u64,
    kinds: Option<&[OpKind]>,
) -> Option<(PathId, Fact)> {
    let mut cur = Some(path);
    while let Some(p) = cur.filter(|p| *p != ROOT) {
        if let Some(f) = hist.writer_overlapping(p, b, e, kinds) {
            return Some((p, *f));
        }
        cur = paths.parent(p);
    }
    None
}

/// What the overlap and existence questions found, in rule order: the class, and the facts
/// a ruling shows. Cheap: the ruling (its sentence and evidence) is built only when asked for.
enum Outcome {
    /// A name-changing operation on the name or a directory above it overlaps.
    Writer(PathId, Fact),
    /// The name exists for the whole interval, since this fact.
    Exists(Fact),
    State(NameState),
}

impl Outcome {
    fn class(&self) -> Class {
        match self {
            Outcome::Writer(..) | Outcome::State(NameState::Racing(..)) => Class::OverlapsWriter,
            Outcome::Exists(_) => Class::Anomaly,
            Outcome::State(_) => Class::Negative,
        }
    }
}

fn outcome(hist: &History, paths: &Paths, path: PathId, b: u64, e: u64) -> Outcome {
    if let Some((p, f)) = writer_op(hist, paths, path, b, e, None) {
        return Outcome::Writer(p, f);
    }
    match name_state(hist, paths, path, b) {
        NameState::Exists(f) => Outcome::Exists(f),
        s => Outcome::State(s),
    }
}

/// The class of a validated NULL-inode lookup return or of an ENOENT result over `[b, e]`:
/// what [`null_lookup`] and [`enoent`] rule, without building their sentence and evidence.
pub fn class_of(hist: &History, paths: &Paths, path: PathId, b: u64, e: u64) -> Class {
    outcome(hist, paths, path, b, e).class()
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
) -> Result<Fact, Ruling> {
    let state = match outcome(hist, paths, path, b, e) {
        Outcome::Exists(f) => return Ok(f),
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
    match state {
        NameState::Exists(f) => Ok(f),
        NameState::Missing(None) => Err(Ruling::new(
            Class::Negative,
            "no operation before it shows the name existing".into(),
        )
        .with("name_state", json!("never seen existing"))),
        NameState::Missing(Some(f)) => Err(Ruling::new(
            Class::Negative,
            format!(
                "the name is missing since a {} by tid {} ended",
                f.kind.name(),
                f.tid
            ),
        )
        .with("name_state", json!("missing"))
        .with("last_operation", fact_json(&f, paths, path))),
        NameState::Racing(w, r) => Err(Ruling::new(
            Class::OverlapsWriter,
            format!(
                "a {} (tid {}) and a {} (tid {}) of the name overlapped each other before it: \
                 which took effect last is unknown",
                w.kind.name(),
                w.tid,
                r.kind.name(),
                r.tid
            ),
        )
        .with("name_state", json!("racing writers"))
        .with("writer", fact_json(&w, paths, path))
        .with("rival_writer", fact_json(&r, paths, path))),
        NameState::ParentGone(d, f) => Err(Ruling::new(
            Class::Negative,
            format!(
                "its directory {} is missing since a {} by tid {}",
                paths.render(d),
                f.kind.name(),
                f.tid
            ),
        )
        .with("name_state", json!("directory missing"))
        .with("last_operation", fact_json(&f, paths, d))),
    }
}

fn exists_evidence(v: Ruling, since: &Fact, paths: &Paths, path: PathId) -> Ruling {
    v.with("name_state", json!("exists for the whole interval"))
        .with("exists_since", fact_json(since, paths, path))
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
    let mut v = exists_evidence(Ruling::new(Class::Anomaly, why), &since, paths, path);
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
            &since,
            paths,
            path,
        ),
    }
}

/// An inode clear (`dentry_unlink_inode`/`dentry_iput`) on a dentry hashed at its entry. Only
/// `d_delete` does that legitimately, inside an unlink, rmdir or rename of the name; anywhere
/// else (the kill path, pruning) the unhash must come first. Some(verdict) if it is an anomaly.
pub fn clear_while_hashed(
    hist: &History,
    paths: &Paths,
    path: PathId,
    b: u64,
    e: u64,
) -> Option<Ruling> {
    const DELETERS: [OpKind; 3] = [OpKind::Unlink, OpKind::Rmdir, OpKind::Rename];
    if writer_op(hist, paths, path, b, e, Some(&DELETERS)).is_some() {
        return None;
    }
    Some(Ruling::new(
        Class::Anomaly,
        "d_inode cleared while the dentry was still hashed, outside d_delete (no unlink, rmdir \
         or rename of the name overlaps): the kill path must unhash before the clear"
            .into(),
    ))
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
        assert!(
            clear_while_hashed(&h, &paths, g, 32, 38).is_none(),
            "d_delete"
        );
        assert!(clear_while_hashed(&h, &paths, f, 100, 110).is_some());
    }
}
