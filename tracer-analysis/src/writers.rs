//! The writers of `d_seq`, `d_hash` and `d_inode`, and what observes each in a kernel trace,
//! judged from how its header says the targets were attached. The recorder writes the result
//! into the header (`observed_through`, for people); the diff judges the `attach` map itself,
//! so a header whose words disagree with its attach modes cannot hide an untraced writer.
use std::collections::BTreeMap;

use tracer_common::Probe;
use userspace_dcache::{is_release_candidate, major_minor};

use crate::trace::Attachment;

/// One writer: the probes on the function itself, and the traced functions containing its
/// calls (its callers), whose events carry what it did when it has no probe of its own.
pub struct Writer {
    pub name: &'static str,
    pub itself: &'static [Probe],
    pub callers: &'static [Probe],
    /// Callers some releases have besides `callers`, with no probe: on those releases
    /// `callers` do not hold every call.
    pub unprobed: &'static [Unprobed],
}

/// A caller of a static writer on the releases from `since` to before `gone_in`, which no
/// probe brackets.
pub struct Unprobed {
    pub caller: &'static str,
    /// The first release (major, minor) with it; None: every release before `gone_in`.
    pub since: Option<(u32, u32)>,
    /// The first release without it; None: every release from `since`.
    pub gone_in: Option<(u32, u32)>,
    /// What shows it, and what added or removed it.
    pub source: &'static str,
}

/// Every writer. A static writer's calls are all in `fs/dcache.c`; its `callers` are the
/// functions holding them, checked in 6.1's source (`__d_add` in `d_add` and
/// `d_splice_alias`, `dentry_unlink_inode` in `__dentry_kill` and `d_delete`, `___d_drop` in
/// `__d_drop` and `__d_move`, `__d_instantiate` in `d_instantiate` and `d_instantiate_new`)
/// and in 4.18's and 7.1.5's, which have one more caller of `__d_instantiate` each
/// ([`Unprobed`]); 4.19.1's and 6.18.2's have the 6.1 callers. Releases before 4.18 are not
/// checked beyond that.
pub const WRITERS: [Writer; 10] = [
    Writer {
        name: "__d_move",
        itself: &[Probe::DMove],
        callers: &[],
        unprobed: &[],
    },
    Writer {
        name: "__d_instantiate",
        itself: &[Probe::DInstantiateInner],
        callers: &[Probe::DInstantiate, Probe::DInstantiateNew],
        unprobed: &[
            Unprobed {
                caller: "d_instantiate_no_diralias",
                since: None,
                gone_in: Some((4, 19)),
                source: "4.18's fs/dcache.c:1985, called by fuse's create_new_entry (mknod, \
                         mkdir, symlink, link); removed in 4.19 by c971e6a00617 (\"kill \
                         d_instantiate_no_diralias()\")",
            },
            Unprobed {
                caller: "d_make_persistent",
                since: Some((6, 19)),
                gone_in: None,
                source: "6.19's fs/dcache.c:2803, 7.1.5's :2870, tmpfs's creates; added by \
                         bacdf1d70bbe (\"primitives for maintaining persisitency\")",
            },
        ],
    },
    Writer {
        name: "__d_add",
        itself: &[Probe::DAddInner],
        callers: &[Probe::DAdd, Probe::DSpliceAlias],
        unprobed: &[],
    },
    Writer {
        name: "___d_drop",
        itself: &[Probe::DDropInner],
        callers: &[
            Probe::DDrop,
            Probe::DDropLocked,
            Probe::DDelete,
            Probe::DentryKill,
            Probe::DentryKillLocked,
            Probe::DInvalidate,
            Probe::DMove,
        ],
        unprobed: &[],
    },
    Writer {
        name: "__d_drop (pprev = NULL, invalidate after ___d_drop)",
        itself: &[Probe::DDrop],
        callers: &[
            Probe::DDropLocked,
            Probe::DDelete,
            Probe::DentryKill,
            Probe::DentryKillLocked,
            Probe::DInvalidate,
        ],
        unprobed: &[],
    },
    Writer {
        name: "dentry_unlink_inode",
        itself: &[Probe::DentryUnlinkInode],
        callers: &[Probe::DDelete, Probe::DentryKill, Probe::DentryKillLocked],
        unprobed: &[],
    },
    Writer {
        name: "dentry_iput",
        itself: &[Probe::DentryIput],
        callers: &[Probe::DentryKill, Probe::DentryKillLocked],
        unprobed: &[],
    },
    Writer {
        name: "d_delete",
        itself: &[Probe::DDelete],
        callers: &[],
        unprobed: &[],
    },
    Writer {
        name: "kill path",
        itself: &[Probe::DentryKill, Probe::DentryKillLocked],
        callers: &[],
        unprobed: &[],
    },
    Writer {
        name: "d_invalidate",
        itself: &[Probe::DInvalidate],
        callers: &[],
        unprobed: &[],
    },
];

/// What observes one writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Its own probes ("__d_move (fentry)").
    Itself(Vec<String>),
    /// Not traced itself, but every call of it runs inside these traced functions, whose
    /// events carry its effect. `why`: why it has no probe of its own.
    Callers { why: Untraced, through: Vec<String> },
    /// Its calls went unseen; why.
    NotObserved(String),
    /// The header lists none of its probes, or it has no probe of its own and the header lists
    /// none of its callers (a recording from before they were targets): not judged.
    NotListed,
}

/// Why a writer has no probe of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Untraced {
    /// No body of its own: inlined or absent.
    Absent,
    /// A static function with a body, refused: the error.
    Refused(String),
}

impl std::fmt::Display for Observation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Observation::Itself(probes) => f.write_str(&probes.join(", ")),
            Observation::Callers {
                why: Untraced::Absent,
                through,
            } => write!(
                f,
                "not attachable (inlined or absent); its effect is observed in {}",
                through.join(", ")
            ),
            Observation::Callers {
                why: Untraced::Refused(why),
                through,
            } => write!(
                f,
                "not traced itself (refused: {why}); every call of it is in {}, whose events \
                 observe its effect",
                through.join(", ")
            ),
            Observation::NotObserved(why) => write!(f, "not observed on this kernel: {why}"),
            Observation::NotListed => f.write_str("not listed in the header"),
        }
    }
}

/// Whether `release` (a kernel release such as `4.18.0-305.el8.x86_64`) has `u`'s caller. A
/// release candidate of `since` or of `gone_in` counts as having it (which candidate had the
/// change is not checked). One whose `major.minor` does not parse is taken as the newest, as
/// the diff's rules take it (a reason of its own says so).
fn has(release: &str, u: &Unprobed) -> bool {
    let Some(v) = major_minor(release) else {
        return u.gone_in.is_none();
    };
    u.since.is_none_or(|s| v >= s)
        && u.gone_in
            .is_none_or(|g| v < g || (v == g && is_release_candidate(release)))
}

impl Writer {
    /// A caller with no probe this writer has on `release`.
    fn unprobed_on(&self, release: &str) -> Option<&Unprobed> {
        self.unprobed.iter().find(|u| has(release, u))
    }

    /// What observes this writer given the header's attach modes and kernel release.
    pub fn observation(&self, attach: &BTreeMap<String, Attachment>, release: &str) -> Observation {
        let of = |p: &Probe| attach.get(p.symbol()).map(|a| (*p, a));
        let own: Vec<(Probe, &Attachment)> = self.itself.iter().filter_map(of).collect();
        if own.is_empty() {
            return Observation::NotListed;
        }
        let traced = |ps: &[(Probe, &Attachment)]| -> Vec<String> {
            ps.iter()
                .filter(|(_, a)| a.is_attached())
                .map(|(p, a)| format!("{} ({a})", p.symbol()))
                .collect()
        };
        let refused: Vec<(Probe, &str)> = own
            .iter()
            .filter_map(|(p, a)| match a {
                Attachment::Refused(why) => Some((*p, why.as_str())),
                _ => None,
            })
            .collect();
        let itself = traced(&own);
        if refused.is_empty() && !itself.is_empty() {
            return Observation::Itself(itself);
        }
        let callers: Vec<(Probe, &Attachment)> = self.callers.iter().filter_map(of).collect();
        let through = traced(&callers);
        if let Some((p, why)) = refused.first() {
            if let Some((g, _)) = refused.iter().find(|(p, _)| p.is_global()) {
                return Observation::NotObserved(format!(
                    "`{}` was refused ({why}), and being global it has callers outside \
                     fs/dcache.c that no probe brackets",
                    g.symbol()
                ));
            }
            if let Some(u) = self.unprobed_on(release) {
                return Observation::NotObserved(format!(
                    "`{}` was refused ({why}), and on {release} `{}` calls it too, with no \
                     probe ({})",
                    p.symbol(),
                    u.caller,
                    u.source
                ));
            }
            // A refused static function runs where it is called: seen only if every function
            // that may call it is traced or has no body (a refused or unlisted one hides calls).
            let all_covered = callers.len() == self.callers.len()
                && callers
                    .iter()
                    .all(|(_, a)| a.is_attached() || matches!(a, Attachment::Absent(_)));
            return if all_covered && !through.is_empty() {
                Observation::Callers {
                    why: Untraced::Refused(format!("{}: {why}", p.symbol())),
                    through,
                }
            } else {
                Observation::NotObserved(format!(
                    "`{}` was refused ({why}), and not every function calling it is traced",
                    p.symbol()
                ))
            };
        }
        if self.callers.is_empty() {
            return Observation::NotObserved(format!(
                "{} has no body to attach to, and no traced function is known to contain it",
                self.name
            ));
        }
        if callers.is_empty() {
            return Observation::NotListed;
        }
        if let Some(u) = self.unprobed_on(release) {
            return Observation::NotObserved(format!(
                "{} has no body to attach to, and on {release} `{}` contains it too, with no \
                 probe ({})",
                self.name, u.caller, u.source
            ));
        }
        let hides = callers
            .iter()
            .find(|(_, a)| matches!(a, Attachment::Refused(_)));
        match hides {
            None if !through.is_empty() => Observation::Callers {
                why: Untraced::Absent,
                through,
            },
            Some((c, _)) => Observation::NotObserved(format!(
                "{} has no body to attach to, and `{}`, which may contain it, was refused",
                self.name,
                c.symbol()
            )),
            None => Observation::NotObserved(format!(
                "{} has no body to attach to, and none of the functions containing it is traced",
                self.name
            )),
        }
    }
}

/// Per writer, what observes it on `release` (the header's `observed_through`, for people).
pub fn observed_through(
    attach: &BTreeMap<String, Attachment>,
    release: &str,
) -> BTreeMap<String, String> {
    WRITERS
        .iter()
        .map(|w| {
            (
                w.name.to_string(),
                w.observation(attach, release).to_string(),
            )
        })
        .collect()
}

/// The writers whose calls went unseen on `release`, with why.
pub fn unobserved(
    attach: &BTreeMap<String, Attachment>,
    release: &str,
) -> Vec<(&'static str, String)> {
    WRITERS
        .iter()
        .filter_map(|w| match w.observation(attach, release) {
            Observation::NotObserved(why) => Some((w.name, why)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release whose callers are the 6.1 lists'.
    const NEW: &str = "6.1.0-27-amd64";

    fn all_fentry() -> BTreeMap<String, Attachment> {
        Probe::KERNEL
            .iter()
            .filter(|p| p.is_attach_target())
            .map(|p| (p.symbol().to_string(), Attachment::Fentry))
            .collect()
    }

    fn set(a: &mut BTreeMap<String, Attachment>, p: Probe, to: Attachment) {
        a.insert(p.symbol().into(), to);
    }

    #[test]
    fn inlined_writers_are_observed_through_their_callers() {
        let mut a = all_fentry();
        // As on Debian's 7.3: no __d_add, no __dentry_kill; dentry_kill by kprobe.
        set(
            &mut a,
            Probe::DAddInner,
            Attachment::Absent("inlined".into()),
        );
        set(
            &mut a,
            Probe::DentryKill,
            Attachment::Absent("absent".into()),
        );
        set(&mut a, Probe::DentryKillLocked, Attachment::Kprobe);
        set(
            &mut a,
            Probe::DentryIput,
            Attachment::Absent("absent".into()),
        );
        set(
            &mut a,
            Probe::DInvalidate,
            Attachment::Absent("absent".into()),
        );
        let o = observed_through(&a, NEW);
        assert_eq!(o["__d_move"], "__d_move (fentry)");
        assert_eq!(
            o["__d_add"],
            "not attachable (inlined or absent); its effect is observed in d_add (fentry), \
             d_splice_alias (fentry)"
        );
        assert_eq!(o["kill path"], "dentry_kill (kprobe)");
        assert_eq!(
            o["dentry_iput"],
            "not attachable (inlined or absent); its effect is observed in dentry_kill (kprobe)"
        );
        assert_eq!(
            unobserved(&a, NEW),
            [(
                "d_invalidate",
                "d_invalidate has no body to attach to, and no traced function is known to \
                 contain it"
                    .to_string()
            )]
        );
        assert_eq!(o.len(), WRITERS.len());
    }

    /// Debian 5.10, 6.1 and 6.12 refuse `__d_add` (in kallsyms; fentry EBUSY or no BTF FUNC,
    /// kprobe EINVAL): static, called only from `d_add` and `d_splice_alias`, both traced.
    #[test]
    fn a_refused_static_writer_whose_callers_are_all_traced_is_observed_through_them() {
        let mut a = all_fentry();
        set(
            &mut a,
            Probe::DAddInner,
            Attachment::Refused("EBUSY".into()),
        );
        assert!(unobserved(&a, NEW).is_empty(), "{:?}", unobserved(&a, NEW));
        assert!(observed_through(&a, NEW)["__d_add"].starts_with("not traced itself (refused: "));
        // One caller refused too: its calls of `__d_add` are unseen.
        set(
            &mut a,
            Probe::DSpliceAlias,
            Attachment::Refused("EBUSY".into()),
        );
        assert_eq!(
            unobserved(&a, NEW)
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>(),
            ["__d_add"]
        );
    }

    #[test]
    fn a_refused_global_writer_is_not_observed_whatever_its_callers() {
        let mut a = all_fentry();
        set(&mut a, Probe::DDrop, Attachment::Refused("EBUSY".into()));
        let u = unobserved(&a, NEW);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].1.contains("global"), "{u:?}");
        // A writer with no traced container, refused.
        let mut a = all_fentry();
        set(&mut a, Probe::DMove, Attachment::Refused("EBUSY".into()));
        assert_eq!(
            unobserved(&a, NEW)
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>(),
            ["__d_move"]
        );
    }

    /// 4.18's `d_instantiate_no_diralias` (gone in 4.19) and 6.19's `d_make_persistent`
    /// (tmpfs's creates) call `__d_instantiate` too, and have no probe: there a refused or
    /// inlined `__d_instantiate` is not observed, though `d_instantiate` and
    /// `d_instantiate_new` are traced; from 4.19 to 6.18 it is. A release candidate of either
    /// boundary counts as having the caller; a release that does not parse as the newest.
    #[test]
    fn unprobed_callers_hide_instantiations_on_their_releases() {
        let old = ["d_instantiate_no_diralias", "c971e6a00617"];
        let new = ["d_make_persistent", "bacdf1d70bbe"];
        for to in [
            Attachment::Refused("EBUSY".into()),
            Attachment::Absent("inlined".into()),
        ] {
            let mut a = all_fentry();
            set(&mut a, Probe::DInstantiateInner, to.clone());
            for (release, hidden_by) in [
                ("3.16.0-4-amd64", Some(old)),
                ("4.18.0", Some(old)),
                ("4.18.20-custom", Some(old)),
                ("4.19-rc3", Some(old)),
                ("4.19.0-0.rc3.git0.1.fc30", Some(old)),
                ("4.19.0-300.fc30.x86_64", None),
                ("4.19.0", None),
                ("4.19.1", None),
                ("5.10.0-30-amd64", None),
                (NEW, None),
                ("6.18.2", None),
                ("6.19-rc1", Some(new)),
                ("6.19.0-0.rc1.20251215git0.1.fc44", Some(new)),
                ("6.19.10", Some(new)),
                ("7.3.4+deb13-amd64", Some(new)),
                ("custom", Some(new)),
            ] {
                let u = unobserved(&a, release);
                let Some(words) = hidden_by else {
                    assert!(u.is_empty(), "{to:?} on {release}: {u:?}");
                    continue;
                };
                assert_eq!(
                    u.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
                    ["__d_instantiate"],
                    "{to:?} on {release}"
                );
                assert!(words.iter().all(|w| u[0].1.contains(w)), "{}", u[0].1);
            }
        }
        // Traced itself, it is observed on any release.
        for release in ["4.18.0", "7.1.5"] {
            assert!(unobserved(&all_fentry(), release).is_empty());
        }
    }

    /// A header of a recording from before a target existed lists neither it nor its callers.
    #[test]
    fn writers_the_header_does_not_list_are_not_judged() {
        let a = BTreeMap::from([
            ("__d_lookup_rcu".to_string(), Attachment::Fentry),
            (
                "dentry_iput".to_string(),
                Attachment::Absent("inlined".into()),
            ),
        ]);
        assert!(unobserved(&a, NEW).is_empty());
        assert_eq!(
            WRITERS[6].observation(&a, NEW),
            Observation::NotListed,
            "dentry_iput: absent, its callers unlisted"
        );
    }
}
