//! The expected verdicts of the model checker (`userspace_dcache::check`), one test each:
//! exhaustive loom exploration of the model's own reader and writers, with the kernel's locks,
//! up to a preemption bound. Why each verdict comes out so is `check::reasoning` (and
//! /work/notes/issue-13.md's table): in short, 2.6.38-4.17 let a hash lookup validate a NULL
//! inode on weakly ordered machines (nothing orders `__d_drop`'s `d_seq` bump before the kill's
//! clear), 2.6.39's re-read fails everywhere, the walk from a removed cwd hits 4c0d7cd5's hole
//! on every machine up to 4.17, and 4.18+ hold.
//!
//! Run in release mode (loom re-runs each scenario thousands of times):
//! `RUSTFLAGS="--cfg loom" cargo test --release -p userspace-dcache --test loom --target-dir
//! target/loom` (`cargo xtask test --only loom` does that). `LOOM_MAX_PREEMPTIONS`, if set,
//! replaces every test's bound.
#![cfg(loom)]

use tracer_common::{Event, OpKind, Probe, Source};
use userspace_dcache::check::*;
use userspace_dcache::Profile;

fn bound(default: usize) -> usize {
    std::env::var("LOOM_MAX_PREEMPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn check(
    profile: &str,
    scenario: Scenario,
    mutant: Option<Mutant>,
    model: MemoryModel,
) -> CheckResult {
    check_bounded(profile, scenario, mutant, model, DEFAULT_PREEMPTION_BOUND)
}

fn check_bounded(
    profile: &str,
    scenario: Scenario,
    mutant: Option<Mutant>,
    model: MemoryModel,
    preemptions: usize,
) -> CheckResult {
    let c = Check {
        preemption_bound: bound(preemptions),
        ..Check::new(profile, scenario)
            .expect("a known profile")
            .with_mutant(mutant)
            .with_model(model)
    };
    let r = run(&c).expect("loom explores the check");
    assert!(r.interleavings > 0);
    for cx in [Some(&r.lookup), r.caller.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(Verdict::counterexample)
    {
        assert_is_a_trace(&c, cx);
    }
    r
}

/// A counterexample is the failing execution's events: model events in logical-time order,
/// the reader's lookup (if it looks a name up) inside its stat, and stale reads only where the
/// memory model allows them.
fn assert_is_a_trace(c: &Check, cx: &Counterexample) {
    assert!(!cx.events.is_empty());
    assert_eq!(
        cx.steps.len(),
        cx.events.len() + 1,
        "a step per event, then the verdict"
    );
    assert!(cx.events.iter().all(|e| e.source == Source::Model as u8));
    assert!(cx.events.windows(2).all(|w| w[0].ts_begin < w[1].ts_begin));
    let stat = stat_event(cx);
    assert_eq!(stat.aux, OpKind::Stat as u32);
    if c.scenario != Scenario::CwdDotDot {
        let l = lookup_event(cx);
        assert!(
            stat.ts_begin < l.ts_begin && l.ts_end < stat.ts_end,
            "the lookup is the stat's"
        );
    }
    if c.model == MemoryModel::Sc {
        assert!(
            !cx.steps.iter().any(|s| s.contains("stale:")),
            "no stale read is sequentially consistent: {:#?}",
            cx.steps
        );
    }
}

fn stat_event(cx: &Counterexample) -> Event {
    *cx.events
        .iter()
        .find(|e| e.probe == Probe::Op as u8)
        .expect("the reader's stat")
}

fn lookup_event(cx: &Counterexample) -> Event {
    *cx.events
        .iter()
        .find(|e| e.probe == Probe::DLookupRcu as u8)
        .expect("the reader's lookup")
}

const ENOENT: i32 = -2;

fn lookup_cx(r: &CheckResult) -> &Counterexample {
    r.lookup
        .counterexample()
        .unwrap_or_else(|| panic!("{r:#?}: expected the lookup invariant to fail"))
}

fn caller_cx(r: &CheckResult) -> &Counterexample {
    r.caller
        .as_ref()
        .and_then(Verdict::counterexample)
        .unwrap_or_else(|| panic!("{r:#?}: expected the caller invariant to fail"))
}

/// 2.6.38 to 4.17, a hash lookup against the kill of a hashed dentry: `__d_drop` bumps `d_seq`
/// after its `smp_wmb()`, then the kill clears `d_inode` with only the parent's unlock in
/// between (a release, which orders nothing after it). A reader can see the clear and the old
/// `d_seq`, validate the NULL and return ENOENT: C11 and the kernel memory model allow it, a
/// machine that keeps store order (x86, `sc`) does not.
#[test]
fn kill_of_a_hashed_dentry_fails_only_where_stores_reorder_up_to_4_17() {
    for profile in ["linux-3.0", "linux-4.8"] {
        let r = check(profile, Scenario::Kill, None, MemoryModel::C11);
        let cx = lookup_cx(&r);
        assert!(cx.violation.contains("negative"), "{}", cx.violation);
        assert!(
            reasoning(&r).contains("allowed by LKMM"),
            "{}",
            reasoning(&r)
        );
        assert_eq!(stat_event(caller_cx(&r)).result, -2);
        let r = check(profile, Scenario::Kill, None, MemoryModel::Sc);
        assert!(r.holds(), "{profile}: {r:#?}");
    }
}

/// Hugh Dickins' bug (`step-into-reread` as released in 2.6.39 and 3.0-rc7): the caller
/// re-reads `d_inode` after the lookup validated it and reports ENOENT for the NULL a
/// concurrent kill stored. No reordering needed: it fails under sequential consistency, where
/// what was validated was right.
#[test]
fn linux_2_6_39_rereads_and_reports_spurious_enoent_on_any_machine() {
    let r = check("linux-2.6.39", Scenario::Kill, None, MemoryModel::Sc);
    assert!(r.lookup.holds(), "{r:#?}");
    assert!(reasoning(&r).contains("lookup holds"), "{}", reasoning(&r));
    let c11 = check("linux-2.6.39", Scenario::Kill, None, MemoryModel::C11);
    assert!(
        reasoning(&c11).contains("The lookup fails on its own: MP"),
        "{}",
        reasoning(&c11)
    );
    let cx = caller_cx(&r);
    assert_eq!(stat_event(cx).result, ENOENT);
    let l = lookup_event(cx);
    assert!(l.inode_begin != 0, "{:#?}", cx.steps);
    let iput = cx
        .events
        .iter()
        .find(|e| e.probe == Probe::DentryIput as u8)
        .expect("the kill's dentry_iput");
    assert!(l.ts_end < iput.ts_begin, "{:#?}", cx.steps);
    assert_eq!(
        Profile::for_release("3.0-rc7").map(|p| p.name).ok(),
        Some("linux-2.6.39")
    );
}

/// A dentry found through the hash and killed unhashed by another thread: 4.8's kill bumps
/// nothing, but the `d_drop` that unhashed it did, under the same `d_lock`; the unlock -> lock
/// pair orders that bump before the clear for the reader too, so the lookup holds on both
/// memory models. (Without the locks the checker reported a C11 failure here: an artifact.)
#[test]
fn unhashed_kill_through_the_hash_holds_with_the_locks() {
    for model in MemoryModel::ALL {
        let r = check("linux-4.8", Scenario::UnhashedKill, None, model);
        assert!(r.holds(), "{r:#?}");
    }
}

/// 4c0d7cd5's real hole: a walk that starts at the cwd "a/b" (both removed while in use, so
/// unhashed) and steps `..` while the last reference to the cwd goes. Killing an unhashed
/// dentry moves no `d_seq` up to 4.17, so the walk takes the NULL inode of "a" with every
/// check passing, on any machine. 4.18's kill always brackets the clear: -ECHILD instead.
#[test]
fn cwd_dotdot_fails_up_to_4_17_and_holds_from_4_18() {
    for profile in ["linux-3.0", "linux-4.8", "linux-4.17"] {
        for model in MemoryModel::ALL {
            let r = check(profile, Scenario::CwdDotDot, None, model);
            let cx = caller_cx(&r);
            assert!(cx.violation.contains("NULL inode"), "{}", cx.violation);
            assert!(!r.lookup.holds());
            let unlinks: Vec<&Event> = cx
                .events
                .iter()
                .filter(|e| e.probe().is_some_and(Probe::is_writer) && e.inode_end == 0)
                .collect();
            assert!(
                unlinks.iter().all(|e| e.seq_begin == e.seq_end),
                "no kill moved a d_seq: {:#?}",
                cx.steps
            );
        }
    }
    assert_eq!(
        Profile::for_release("4.17.0").map(|p| p.name).ok(),
        Some("linux-4.17")
    );
    for profile in [
        "linux-4.18",
        "linux-5.7",
        "linux-6.1",
        "linux-6.8",
        "linux-6.19",
        "linux-7.2",
    ] {
        for model in MemoryModel::ALL {
            let r = check(profile, Scenario::CwdDotDot, None, model);
            assert!(r.holds(), "{profile}: {r:#?}");
        }
    }
}

/// 4.18 onwards every clear of `d_inode` is bracketed by `d_seq` writes: both invariants hold
/// in every scenario, under both memory models.
fn holds_everywhere(profile: &str, preemptions: usize) {
    for scenario in [Scenario::Kill, Scenario::Delete, Scenario::UnhashedKill] {
        for model in MemoryModel::ALL {
            let r = check_bounded(profile, scenario, None, model, preemptions);
            assert!(r.holds(), "{profile}: {r:#?}");
        }
    }
}

#[test]
fn linux_4_18_holds_everywhere() {
    holds_everywhere("linux-4.18", DEFAULT_PREEMPTION_BOUND);
}

#[test]
fn linux_5_7_holds_everywhere() {
    holds_everywhere("linux-5.7", DEFAULT_PREEMPTION_BOUND);
}

#[test]
fn linux_6_1_holds_everywhere() {
    holds_everywhere("linux-6.1", DEFAULT_PREEMPTION_BOUND);
}

#[test]
fn linux_6_8_holds_everywhere() {
    holds_everywhere("linux-6.8", DEFAULT_PREEMPTION_BOUND);
}

/// 6.19 reads `d_unhashed()` after the name and instantiates under the caller's `d_lock`.
#[test]
fn linux_6_19_holds_everywhere() {
    holds_everywhere("linux-6.19", DEFAULT_PREEMPTION_BOUND);
}

/// 7.2 kills through `dentry_kill()`, which checks the count itself before the same writes.
#[test]
fn linux_7_2_holds_everywhere() {
    holds_everywhere("linux-7.2", DEFAULT_PREEMPTION_BOUND);
}

/// `d_delete` turns "f" negative in place: a reader may validate either state, but only with
/// the `d_seq` of a version that holds it. Every generation keeps that, and the invariant is
/// not vacuous: a reader validating against a writer's odd count, or not re-checking at all,
/// breaks it on the same scenario.
#[test]
fn d_delete_validates_only_the_version_it_names() {
    for profile in ["linux-3.0", "linux-4.7"] {
        for model in MemoryModel::ALL {
            let r = check(profile, Scenario::Delete, None, model);
            assert!(r.holds(), "{r:#?}");
            assert!(
                r.caller.is_none(),
                "ENOENT is not checked against an unlink"
            );
        }
    }
    let r = check(
        "linux-6.1",
        Scenario::Delete,
        Some(Mutant::SeqcountBeginKeepsBit0),
        MemoryModel::Sc,
    );
    assert!(lookup_cx(&r).violation.contains("odd d_seq"));
    let r = check(
        "linux-6.1",
        Scenario::Delete,
        Some(Mutant::NoChildSeqRecheck),
        MemoryModel::Sc,
    );
    assert!(!r.lookup.holds());
}

/// Mutants that break the protocol on any machine: each fails against the kill on 6.1 under
/// both memory models, with the validated NULL and the ENOENT it leads to.
#[test]
fn mutants_that_need_no_reordering_fail_under_both_models() {
    for m in [
        Mutant::KillClearBeforeUnhash,
        Mutant::DropWithoutInvalidate,
        Mutant::LookupNoUnhashedCheck,
        Mutant::NoChildSeqRecheck,
    ] {
        for model in MemoryModel::ALL {
            let r = check("linux-6.1", Scenario::Kill, Some(m), model);
            assert!(lookup_cx(&r).violation.contains("negative"), "{}", m.name());
            assert_eq!(stat_event(caller_cx(&r)).result, ENOENT, "{}", m.name());
        }
    }
}

/// `d-drop-no-invalidate` (`__d_drop` without its invalidate, 6.1's kill bracket kept): every
/// scenario holds under both models. A reader that saw the kill's NULL saw the bracket move
/// `d_seq`; one that validated before the clear holds an inode that was the dentry's. The
/// missing +2 shows only in the writers' own `d_seq` values, which `tracer diff` checks.
#[test]
fn mutant_d_drop_no_invalidate_is_covered_by_the_kills_bracket() {
    for scenario in Scenario::ALL {
        for model in MemoryModel::ALL {
            let r = check(
                "linux-6.1",
                scenario,
                Some(Mutant::DDropNoInvalidate),
                model,
            );
            assert!(r.holds(), "{} {}: {r:#?}", scenario.name(), model.name());
        }
    }
}

/// `step-into-reread` on 6.1's `step_into()`: the validated view is right (lookup holds), the
/// syscall is not.
#[test]
fn mutant_step_into_reread_fails_in_the_caller() {
    for model in MemoryModel::ALL {
        let r = check(
            "linux-6.1",
            Scenario::Kill,
            Some(Mutant::StepIntoReread),
            model,
        );
        assert!(r.lookup.holds(), "{r:#?}");
        assert_eq!(stat_event(caller_cx(&r)).result, ENOENT);
    }
}

/// `unhashed-kill-no-bump` (4c0d7cd5 reverted on 6.1): the cwd walk fails on any machine, the
/// kill of a hashed dentry only where stores reorder.
#[test]
fn mutant_unhashed_kill_no_bump_reopens_both_holes() {
    let m = Some(Mutant::UnhashedKillNoBump);
    for model in MemoryModel::ALL {
        assert!(!check("linux-6.1", Scenario::CwdDotDot, m, model).holds());
    }
    assert!(!check("linux-6.1", Scenario::Kill, m, MemoryModel::C11).holds());
    assert!(check("linux-6.1", Scenario::Kill, m, MemoryModel::Sc).holds());
}

/// `retry-without-rmb`: the re-check's `d_seq` load may pass the `d_inode` load; only a
/// reordering machine shows it.
#[test]
fn mutant_retry_without_rmb_fails_only_where_loads_reorder() {
    let m = Some(Mutant::RetryWithoutRmb);
    let r = check("linux-6.1", Scenario::Kill, m, MemoryModel::C11);
    assert_eq!(stat_event(caller_cx(&r)).result, ENOENT);
    assert!(check("linux-6.1", Scenario::Kill, m, MemoryModel::Sc).holds());
}

/// Names as `tracer check` takes them; the table covers every profile and every mutant.
#[test]
fn names_round_trip() {
    for s in Scenario::ALL {
        assert_eq!(Scenario::named(s.name()).ok(), Some(s));
    }
    for m in Mutant::ALL {
        assert_eq!(Mutant::named(m.name()).ok(), Some(m));
    }
    for m in MemoryModel::ALL {
        assert_eq!(MemoryModel::named(m.name()).ok(), Some(m));
    }
    assert!(Scenario::named("rename").is_err());
    assert!(Mutant::named("none").is_err());
    assert!(Check::new("linux-2.6", Scenario::Kill).is_err());
    let t = table();
    assert_eq!(
        t.len(),
        (Profile::NAMES.len() + Mutant::ALL.len()) * Scenario::ALL.len() * 2,
        "profiles, then mutants on 6.1"
    );
    assert!(t
        .iter()
        .all(|c| c.preemption_bound == DEFAULT_PREEMPTION_BOUND));
}
