//! The bug catalogue (kernel-bugs/ at the top of the repo): each bug a patch against Debian's
//! linux-source-6.1, the anomaly kinds the diff must report for it, and the builtin workloads
//! that reach it. The names are shared with the model's mutants (`tracer check`).
use std::path::PathBuf;

use serde::Serialize;
pub use tracer_analysis::diff::AnomalyKind;

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
    /// `__d_lookup_rcu` without its `d_unhashed()` check.
    LookupNoUnhashedCheck,
    /// Killing an already unhashed dentry moves no `d_seq` (4.8 to 4.17; 4c0d7cd5 reverted).
    UnhashedKillNoBump,
}

impl Bug {
    pub const ALL: [Bug; 5] = [
        Bug::StepIntoReread,
        Bug::KillClearBeforeUnhash,
        Bug::DropWithoutInvalidate,
        Bug::LookupNoUnhashedCheck,
        Bug::UnhashedKillNoBump,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::StepIntoReread => "step-into-reread",
            Bug::KillClearBeforeUnhash => "kill-clear-before-unhash",
            Bug::DropWithoutInvalidate => "drop-without-invalidate",
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

    /// The report must count at least one of these (on the kernel side) for the bug to count
    /// as caught; each bug's README says why.
    pub fn expected(self) -> &'static [AnomalyKind] {
        match self {
            Bug::StepIntoReread => &[AnomalyKind::SpuriousEnoent],
            Bug::KillClearBeforeUnhash => {
                &[AnomalyKind::NullInodePositive, AnomalyKind::SpuriousEnoent]
            }
            Bug::DropWithoutInvalidate => &[AnomalyKind::SpuriousEnoent],
            Bug::LookupNoUnhashedCheck => &[AnomalyKind::SpuriousEnoent],
            Bug::UnhashedKillNoBump => &[AnomalyKind::SeqDelta],
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
            for kind in b.expected() {
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
    fn value_enum_names_are_the_catalogue_names() {
        use clap::ValueEnum;
        for b in Bug::ALL {
            let pv = b.to_possible_value().expect("not skipped");
            assert_eq!(pv.get_name(), b.name());
        }
    }
}
