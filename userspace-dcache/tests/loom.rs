//! The expected verdicts of the model checker (`userspace_dcache::check`), one test each:
//! exhaustive loom exploration of the model's own reader and writers, up to a preemption bound.
//!
//! Run in release mode (loom re-runs each scenario tens of thousands of times):
//! `RUSTFLAGS="--cfg loom" cargo test --release -p userspace-dcache --test loom --target-dir
//! target/loom` (`cargo xtask test --only loom` does that). `LOOM_MAX_PREEMPTIONS`, if set,
//! replaces every test's bound.
#![cfg(loom)]

use tracer_common::{flags, Event, OpKind, Probe, Source};
use userspace_dcache::check::*;

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
/// the reader's lookup inside its stat, and stale reads only where the memory model allows
/// them.
fn assert_is_a_trace(c: &Check, cx: &Counterexample) {
    assert!(!cx.events.is_empty());
    assert_eq!(
        cx.steps.len(),
        cx.events.len() + 1,
        "a step per event, then the verdict"
    );
    assert!(cx.events.iter().all(|e| e.source == Source::Model as u8));
    assert!(cx.events.windows(2).all(|w| w[0].ts_begin < w[1].ts_begin));
    let stat = cx
        .events
        .iter()
        .find(|e| e.probe == Probe::Op as u8)
        .expect("the reader's stat");
    assert_eq!(stat.aux, OpKind::Stat as u32);
    let l = lookup_event(cx);
    assert!(
        stat.ts_begin < l.ts_begin && l.ts_end < stat.ts_end,
        "the lookup is the stat's"
    );
    if c.model == MemoryModel::Sc {
        assert!(
            !cx.steps.iter().any(|s| s.contains("stale:")),
            "no stale read is sequentially consistent: {:#?}",
            cx.steps
        );
    }
}

fn lookup_event(cx: &Counterexample) -> Event {
    *cx.events
        .iter()
        .find(|e| e.probe == Probe::DLookupRcu as u8)
        .expect("the reader's lookup")
}

fn stat_result(cx: &Counterexample) -> i32 {
    cx.events
        .iter()
        .find(|e| e.probe == Probe::Op as u8)
        .map_or(0, |e| e.result)
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

/// The seed's argument: `__d_drop` unhashes, then `smp_wmb()` and the `d_seq` bump, and only
/// then does `dentry_iput` clear `d_inode`; a lookup that sees the NULL therefore also sees the
/// unhash, so no validated lookup hands back a hashed dentry with a NULL inode. Holds under
/// C11; on a machine that does not reorder, the 3.0 caller never reports ENOENT either.
#[test]
fn linux_3_0_reader_holds_against_the_kill_path() {
    let r = check("linux-3.0", Scenario::Kill, None, MemoryModel::C11);
    assert!(r.lookup.holds(), "{r:#?}");
    let r = check("linux-3.0", Scenario::Kill, None, MemoryModel::Sc);
    assert!(r.holds(), "{r:#?}");
}

/// What the argument does not cover under C11: nothing orders `__d_drop`'s `d_seq` bump before
/// `dentry_iput`'s clear (the barrier sits before the bump), so the reader can see the NULL and
/// still the old `d_seq`, validate, and the 3.0 caller reports ENOENT. Only a reordering
/// machine can do it: every counterexample reads `d_seq` stale.
#[test]
fn linux_3_0_caller_enoent_needs_a_stale_d_seq() {
    let r = check("linux-3.0", Scenario::Kill, None, MemoryModel::C11);
    let cx = caller_cx(&r);
    assert_eq!(stat_result(cx), ENOENT);
    let l = lookup_event(cx);
    assert!(l.has(flags::VALIDATED) && l.inode_begin == 0 && !l.has(flags::HASHED_BEGIN));
    assert!(
        cx.steps.iter().any(|s| s.contains("stale: d_seq")),
        "{:#?}",
        cx.steps
    );
}

/// Hugh Dickins' bug: 3.0-rc7's `__follow_mount_rcu` re-reads `d_inode` after the lookup
/// validated it, and the caller reports ENOENT for the NULL a concurrent kill stored. No
/// reordering needed: it fails under sequential consistency, while the lookup itself holds.
#[test]
fn linux_3_0_rc7_caller_reports_spurious_enoent() {
    for model in MemoryModel::ALL {
        let r = check("linux-3.0-rc7", Scenario::Kill, None, model);
        assert!(r.lookup.holds(), "{r:#?}");
        let cx = caller_cx(&r);
        assert_eq!(stat_result(cx), ENOENT);
        if model == MemoryModel::Sc {
            // The lookup validated a positive inode; the kill cleared it; the re-read saw NULL.
            let l = lookup_event(cx);
            assert!(
                l.has(flags::VALIDATED) && l.inode_begin != 0,
                "{:#?}",
                cx.steps
            );
            let iput = cx
                .events
                .iter()
                .find(|e| e.probe == Probe::DentryIput as u8)
                .expect("the kill's dentry_iput");
            assert!(l.ts_end < iput.ts_begin, "{:#?}", cx.steps);
        }
    }
}

/// 4.8's kill of an already-unhashed dentry moves no `d_seq` (`dentry_unlink_inode` brackets
/// the clear only if the dentry is hashed). When the unhash happened on another thread, nothing
/// orders it, or its `d_seq` bump, before the clear: a lookup that found "f" hashed sees the
/// NULL, the old `d_seq` and the old hash link, and hands back a validated, hashed dentry with a
/// NULL inode. A C11 hole only: x86 cannot do it.
#[test]
fn linux_4_8_unhashed_kill_fails() {
    let r = check("linux-4.8", Scenario::UnhashedKill, None, MemoryModel::C11);
    let cx = lookup_cx(&r);
    let l = lookup_event(cx);
    assert!(l.has(flags::VALIDATED) && l.has(flags::HASHED_BEGIN) && l.inode_begin == 0);
    let clear = cx
        .events
        .iter()
        .find(|e| e.probe == Probe::DentryUnlinkInode as u8)
        .expect("the kill's dentry_unlink_inode");
    assert_eq!(clear.seq_begin, clear.seq_end, "the kill moves no d_seq");
    assert!(!clear.has(flags::HASHED_BEGIN));
    assert_eq!(caller_cx(&r).events.len(), cx.events.len());
    assert!(check("linux-4.8", Scenario::UnhashedKill, None, MemoryModel::Sc).holds());
}

/// The smallest scenario for that hole is the unhashed kill: when the kill path unhashes the
/// dentry itself, its own `smp_wmb()` publishes the unhash with the clear and the lookup
/// invariant holds (only the caller's stale `d_seq` remains, as in 3.0).
#[test]
fn linux_4_8_kill_of_a_hashed_dentry_keeps_the_lookup_invariant() {
    let r = check("linux-4.8", Scenario::Kill, None, MemoryModel::C11);
    assert!(r.lookup.holds(), "{r:#?}");
    assert!(!r.holds());
}

/// 6.1 (since "make sure that __dentry_kill() always invalidates d_seq, unhashed or not"):
/// every clear of `d_inode` is bracketed by `d_seq` writes, so both invariants hold in every
/// scenario, under both memory models. Explored one preemption deeper than the other tests.
fn linux_6_1_holds(scenario: Scenario) {
    for model in MemoryModel::ALL {
        let r = check_bounded(
            "linux-6.1",
            scenario,
            None,
            model,
            DEFAULT_PREEMPTION_BOUND + 1,
        );
        assert!(r.holds(), "{r:#?}");
    }
}

#[test]
fn linux_6_1_holds_against_the_kill_path() {
    linux_6_1_holds(Scenario::Kill);
}

#[test]
fn linux_6_1_holds_against_d_delete() {
    linux_6_1_holds(Scenario::Delete);
}

#[test]
fn linux_6_1_holds_against_the_unhashed_kill() {
    linux_6_1_holds(Scenario::UnhashedKill);
}

/// `d_delete` turns "f" negative in place: a lookup racing it may return the NULL (ENOENT is a
/// right answer then), but only in a `d_seq` version in which "f" was negative. Every
/// generation keeps that.
#[test]
fn d_delete_only_ever_shows_a_negative_version() {
    for profile in ["linux-3.0-rc7", "linux-3.0", "linux-4.8"] {
        for model in MemoryModel::ALL {
            let r = check(profile, Scenario::Delete, None, model);
            assert!(r.holds(), "{r:#?}");
            assert!(
                r.caller.is_none(),
                "ENOENT is not checked against an unlink"
            );
        }
    }
}

/// Linus' argument rests on `__d_drop`'s `smp_wmb()`: without it a reader can sample the
/// bumped `d_seq` yet still see the dentry hashed, and the inode clear that follows moves no
/// `d_seq`. Only a reordering machine can show it.
#[test]
fn mutant_no_d_drop_barrier_fails() {
    let m = Some(Mutant::NoDDropBarrier);
    let r = check("linux-3.0", Scenario::Kill, m, MemoryModel::C11);
    let l = lookup_event(lookup_cx(&r));
    assert!(l.has(flags::VALIDATED) && l.has(flags::HASHED_BEGIN) && l.inode_begin == 0);
    assert!(check("linux-3.0", Scenario::Kill, m, MemoryModel::Sc).holds());
}

/// ...and on the kill path's order: clearing the inode before the unhash lets a lookup that
/// never sees a `d_seq` change find the dentry hashed and negative, on any machine, in any
/// generation.
#[test]
fn mutant_clear_inode_before_unhash_fails() {
    let m = Some(Mutant::ClearInodeBeforeUnhash);
    for profile in ["linux-3.0", "linux-6.1"] {
        for model in MemoryModel::ALL {
            let r = check(profile, Scenario::Kill, m, model);
            let l = lookup_event(lookup_cx(&r));
            assert!(l.has(flags::VALIDATED) && l.has(flags::HASHED_BEGIN) && l.inode_begin == 0);
            assert_eq!(stat_result(caller_cx(&r)), ENOENT);
        }
    }
}

/// ...and on the reader's `d_unhashed()` check: without it a lookup that reached the dentry
/// before the kill unlinked it takes a `d_seq` sampled after the whole kill, validates the NULL
/// and the caller reports ENOENT, even on 6.1, even without reordering.
#[test]
fn mutant_reader_skips_unhashed_check_fails() {
    let m = Some(Mutant::ReaderSkipsUnhashedCheck);
    for model in MemoryModel::ALL {
        let r = check("linux-6.1", Scenario::Kill, m, model);
        let cx = caller_cx(&r);
        assert_eq!(stat_result(cx), ENOENT);
        let l = lookup_event(cx);
        assert!(
            !l.has(flags::HASHED_BEGIN),
            "the lookup returned an unhashed dentry"
        );
    }
}

/// Names as `tracer check` takes them.
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
        (4 + 3 * 2) * 3 * 2,
        "profiles, then mutants on 3.0 and 6.1"
    );
    assert!(t
        .iter()
        .all(|c| c.preemption_bound == DEFAULT_PREEMPTION_BOUND));
}
