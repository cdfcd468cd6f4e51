//! The bug catalogue (kernel-bugs/ at the top of the repo): each bug a patch against Debian's
//! linux-source-6.1, the anomaly kinds the diff must report for it, and the builtin workloads
//! that reach it. The names are shared with the model's mutants (`tracer check`).
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use serde::Serialize;
use serde_json::Value;
pub use tracer_analysis::diff::AnomalyKind;
use tracer_common::Probe;

use crate::cmd;

/// The kernel command-line parameter every catalogue patch adds: microseconds of delay inside
/// its race window, 0 (no delay) by default.
pub const DELAY_PARAM: &str = "dcache_bug_delay_us";

/// One catalogue bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// `step_into` re-reads `d_inode` after its `d_seq` check (2.6.39/3.0-rc7's
    /// `__follow_mount_rcu` pattern, Hugh Dickins' 2011 report).
    StepIntoReread,
    /// `__dentry_kill` clears `d_inode` while the dentry is still hashed, outside `d_seq`.
    KillClearBeforeUnhash,
    /// `__d_drop` without its `d_seq` invalidate and `dentry_unlink_inode` without its bracket.
    DropWithoutInvalidate,
    /// `__d_drop` without its `d_seq` invalidate, `dentry_unlink_inode`'s bracket kept: only
    /// the writer probes' `d_seq` values show it.
    DDropNoInvalidate,
    /// `__d_lookup_rcu` without its `d_unhashed()` check.
    LookupNoUnhashedCheck,
    /// Killing an already unhashed dentry moves no `d_seq` (4.8 to 4.17; 4c0d7cd5 reverted).
    UnhashedKillNoBump,
}

impl Bug {
    pub const ALL: [Bug; 6] = [
        Bug::StepIntoReread,
        Bug::KillClearBeforeUnhash,
        Bug::DropWithoutInvalidate,
        Bug::DDropNoInvalidate,
        Bug::LookupNoUnhashedCheck,
        Bug::UnhashedKillNoBump,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::StepIntoReread => "step-into-reread",
            Bug::KillClearBeforeUnhash => "kill-clear-before-unhash",
            Bug::DropWithoutInvalidate => "drop-without-invalidate",
            Bug::DDropNoInvalidate => "d-drop-no-invalidate",
            Bug::LookupNoUnhashedCheck => "lookup-no-unhashed-check",
            Bug::UnhashedKillNoBump => "unhashed-kill-no-bump",
        }
    }

    pub fn named(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }

    /// kernel-bugs/<name>/patch
    pub fn patch(self) -> PathBuf {
        dir().join(self.name()).join("patch")
    }

    /// What the kernel side of a cell's report must show for the bug to count as caught; each
    /// bug's README says why.
    pub fn expectation(self) -> Expectation {
        use AnomalyKind::*;
        let (signature, symptoms, window): (&[AnomalyKind], &[AnomalyKind], _) = match self {
            // The bug lives in the caller, after a correct lookup: the stat's result is all
            // the probes can show.
            Bug::StepIntoReread => (&[SpuriousEnoent], &[], None),
            Bug::KillClearBeforeUnhash => (
                &[ClearBeforeUnhash],
                &[NullInodePositive, SpuriousEnoent],
                Some(Window::KillClearedFirst),
            ),
            Bug::DropWithoutInvalidate => {
                (&[SeqDelta], &[SpuriousEnoent], Some(Window::DropDebtUnpaid))
            }
            Bug::DDropNoInvalidate => (&[SeqDelta], &[], Some(Window::DropDebtUnpaid)),
            Bug::LookupNoUnhashedCheck => (&[FoundUnhashed], &[SpuriousEnoent], None),
            Bug::UnhashedKillNoBump => (&[SeqDelta], &[], None),
        };
        Expectation {
            signature,
            symptoms,
            window,
        }
    }

    /// Builtin workloads that reach the bug: prune-stat kills unused positive dentries under
    /// the readers; unlink-stat kills dentries that an open file kept alive after their unlink
    /// had unhashed them.
    pub fn workloads(self) -> &'static [&'static str] {
        match self {
            Bug::UnhashedKillNoBump => &["unlink-stat"],
            _ => &["prune-stat"],
        }
    }
}

/// What a bug's cell must count on the kernel side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Expectation {
    /// The bug's own signature: every one of these kinds, whether or not a lookup raced it.
    pub signature: &'static [AnomalyKind],
    /// What a lookup racing the window shows: at least one of these, when any is listed.
    pub symptoms: &'static [AnomalyKind],
    /// A detailed anomaly the planted change itself explains, when the report can say so.
    pub window: Option<Window>,
}

impl Expectation {
    /// Whether the counts and the detailed anomalies meet it.
    pub fn met(&self, counts: &BTreeMap<AnomalyKind, u64>, windows: &BTreeSet<Window>) -> bool {
        let counted = |k: &AnomalyKind| counts.get(k).is_some_and(|&n| n > 0);
        self.signature.iter().all(counted)
            && (self.symptoms.is_empty() || self.symptoms.iter().any(counted))
            && self.window.is_none_or(|w| windows.contains(&w))
    }

    /// "seq-delta and (spurious-enoent), in ___d_drop's debt", for the matrix's rows.
    pub fn describe(&self) -> String {
        let names = |ks: &[AnomalyKind], sep: &str| {
            ks.iter().map(|k| k.name()).collect::<Vec<_>>().join(sep)
        };
        let mut parts = Vec::new();
        if !self.signature.is_empty() {
            parts.push(names(self.signature, " and "));
        }
        if !self.symptoms.is_empty() {
            parts.push(format!("({})", names(self.symptoms, " or ")));
        }
        let mut text = parts.join(" and ");
        if let Some(w) = self.window {
            text.push_str(&format!(", {}", w.describe()));
        }
        text
    }
}

/// A detailed anomaly tied to the planted change, beyond its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Window {
    /// A `seq-delta` whose evidence names `___d_drop`'s debt: the +2 `__d_drop` owes after the
    /// unhash (its `write_seqcount_invalidate`) never came.
    DropDebtUnpaid,
    /// A `clear-before-unhash` the kill's own probes show (its evidence names the kill whose
    /// unhash found the hashed dentry already without its inode), not a hashed clear in
    /// `dentry_unlink_inode`.
    KillClearedFirst,
}

impl Window {
    pub const ALL: [Window; 2] = [Window::DropDebtUnpaid, Window::KillClearedFirst];

    pub fn describe(self) -> &'static str {
        match self {
            Window::DropDebtUnpaid => "one of them ___d_drop's unpaid +2",
            Window::KillClearedFirst => "one of them inside its kill",
        }
    }

    /// Whether one detailed kernel-side anomaly (its kind and `evidence` object) is this
    /// window's.
    pub fn shown_by(self, kind: AnomalyKind, evidence: &serde_json::Map<String, Value>) -> bool {
        match self {
            Window::DropDebtUnpaid => {
                kind == AnomalyKind::SeqDelta
                    && evidence.get("owed_by").and_then(Value::as_str)
                        == Some(Probe::DDropInner.symbol())
            }
            Window::KillClearedFirst => {
                let kill = evidence
                    .get("kill")
                    .and_then(|k| k.get("probe"))
                    .and_then(Value::as_str);
                kind == AnomalyKind::ClearBeforeUnhash
                    && [Probe::DentryKill, Probe::DentryKillLocked]
                        .iter()
                        .any(|p| kill == Some(p.symbol()))
            }
        }
    }
}

/// kernel-bugs/
pub fn dir() -> PathBuf {
    cmd::root().join("kernel-bugs")
}

/// The project's kernel config fragment.
pub fn config_fragment() -> PathBuf {
    dir().join("kernel.config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_has_its_patch_and_readme() {
        for b in Bug::ALL {
            let patch = std::fs::read_to_string(b.patch()).expect("patch file");
            assert!(
                patch.contains(DELAY_PARAM),
                "{}: no race-window delay",
                b.name()
            );
            assert!(patch.starts_with("--- a/"), "{}: not a -p1 patch", b.name());
            let readme =
                std::fs::read_to_string(dir().join(b.name()).join("README.md")).expect("README.md");
            let e = b.expectation();
            for kind in e.signature.iter().chain(e.symptoms) {
                assert!(
                    readme.contains(kind.name()),
                    "{}: README misses {}",
                    b.name(),
                    kind.name()
                );
            }
            assert_eq!(Bug::named(b.name()), Some(b));
        }
    }

    #[test]
    fn a_bug_is_caught_by_its_signature_not_by_a_symptom_alone() {
        use AnomalyKind::*;
        let e = Bug::DropWithoutInvalidate.expectation();
        let counts = |ks: &[(AnomalyKind, u64)]| ks.iter().copied().collect::<BTreeMap<_, _>>();
        let debt = BTreeSet::from([Window::DropDebtUnpaid]);
        let none = BTreeSet::new();
        assert!(e.met(&counts(&[(SeqDelta, 3), (SpuriousEnoent, 1)]), &debt));
        assert!(
            !e.met(
                &counts(&[(SpuriousEnoent, 9), (NullInodePositive, 9)]),
                &debt
            ),
            "the symptom other bugs share, without seq-delta"
        );
        assert!(
            !e.met(&counts(&[(SeqDelta, 3), (SpuriousEnoent, 1)]), &none),
            "seq-delta from the bracket alone, ___d_drop's debt never checked"
        );
        assert!(
            !e.met(&counts(&[(SeqDelta, 3), (SpuriousEnoent, 0)]), &debt),
            "no racing lookup hit the window"
        );
        let only = Bug::DDropNoInvalidate.expectation();
        assert!(only.met(&counts(&[(SeqDelta, 1)]), &debt));
        assert!(!only.met(&counts(&[(SeqDelta, 1)]), &none));
        let kill = Bug::KillClearBeforeUnhash.expectation();
        let in_kill = BTreeSet::from([Window::KillClearedFirst]);
        assert!(kill.met(
            &counts(&[(ClearBeforeUnhash, 4), (SpuriousEnoent, 1)]),
            &in_kill
        ));
        assert!(
            !kill.met(
                &counts(&[(SpuriousEnoent, 1), (NullInodePositive, 1)]),
                &none
            ),
            "symptoms only: the kill's own probes did not see it"
        );
        assert!(
            !kill.met(
                &counts(&[(ClearBeforeUnhash, 4), (SpuriousEnoent, 1)]),
                &none
            ),
            "a hashed clear in dentry_unlink_inode, not the kill's early clear"
        );
        assert_eq!(
            e.describe(),
            "seq-delta and (spurious-enoent), one of them ___d_drop's unpaid +2"
        );
    }

    #[test]
    fn the_drop_debt_window_is_a_seq_delta_owed_by_d_drop() {
        let ev = |v: serde_json::Value| v.as_object().expect("object").clone();
        let w = Window::DropDebtUnpaid;
        let owed = ev(serde_json::json!({"owed_by": "___d_drop", "found": 2}));
        assert!(w.shown_by(AnomalyKind::SeqDelta, &owed));
        assert!(!w.shown_by(AnomalyKind::SpuriousEnoent, &owed));
        let short = ev(serde_json::json!({"expected_delta": 2, "observed_delta": 0}));
        assert!(!w.shown_by(AnomalyKind::SeqDelta, &short));
    }

    #[test]
    fn the_kill_window_is_a_clear_before_unhash_naming_its_kill() {
        let ev = |v: serde_json::Value| v.as_object().expect("object").clone();
        let w = Window::KillClearedFirst;
        let in_kill = ev(serde_json::json!({"kill": {"probe": "__dentry_kill", "tid": 7}}));
        assert!(w.shown_by(AnomalyKind::ClearBeforeUnhash, &in_kill));
        assert!(!w.shown_by(AnomalyKind::SeqDelta, &in_kill));
        let hashed_clear = ev(serde_json::json!({"unlink_overlapping": false}));
        assert!(!w.shown_by(AnomalyKind::ClearBeforeUnhash, &hashed_clear));
    }

    #[test]
    fn value_enum_names_are_the_catalogue_names() {
        use clap::ValueEnum;
        for b in Bug::ALL {
            let pv = b.to_possible_value().expect("not skipped");
            assert_eq!(pv.get_name(), b.name());
        }
    }
}
