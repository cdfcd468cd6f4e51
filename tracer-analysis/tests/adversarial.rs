//! Adversarial cases for the diff's verdict (session 7's reviews, docs/notes/session-7/
//! advrev-findings.md, advrev2-findings.md, rev2-findings.md, rev3-findings.md): trace pairs built to get `clean` where the traces show an anomaly or cannot show there is
//! none, or to make the report say what did not happen, each asserting what the rules promise
//! (mod.rs's module documentation, ARCHITECTURE.md's diff section). The `held_` ones record
//! attacks the rules withstood.
use std::{collections::BTreeMap, path::PathBuf};

use tracer_analysis::{
    diff::{diff_files, AnomalyKind, DiffError, DiffOptions, ReasonKind, Report, Side, Verdict},
    trace::{Attachment, Footer, ThreadInfo},
};
use tracer_common::{flags, Event, OpKind, Probe, Source};

mod support;
use support::*;

fn diff_parts(k: &Parts, m: &Parts) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp): (PathBuf, PathBuf) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    save(k, &kp);
    save(m, &mp);
    diff_files(&kp, &mp, &DiffOptions::default()).expect("diff")
}

fn run(kernel: &Trace, model: &Trace) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (k, m) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    kernel.write(&k, Origin::Kernel, finished());
    model.write(&m, Origin::Model, finished());
    diff_files(&k, &m, &DiffOptions::default()).expect("diff")
}

/// The verdict, the anomalies by kind and the reasons, for a failure message.
fn outcome(r: &Report) -> String {
    let kinds: Vec<(&str, &str)> = r
        .anomalies
        .iter()
        .map(|a| (a.side.name(), a.kind.name()))
        .collect();
    let reasons: Vec<String> = r.reasons.iter().map(|x| x.to_string()).collect();
    format!(
        "{} (exit {}), anomalies {kinds:?}, reasons {reasons:?}, null-inode classes kernel {:?}, \
         enoent classes kernel {:?}",
        r.verdict.name(),
        r.exit_status,
        r.null_inode_returns.kernel.by_class,
        r.enoent_results.kernel.by_class
    )
}

fn has_reason(r: &Report, k: ReasonKind) -> bool {
    r.reasons.iter().any(|x| x.kind == k)
}

fn has_anomaly(r: &Report, k: AnomalyKind) -> bool {
    r.anomaly_counts.kernel.contains_key(&k) || r.anomaly_counts.model.contains_key(&k)
}

/// The fixture's first positive lookup of a name (in time order): before it, no operation
/// has shown the name existing; only the setup in the header's workload says it does.
fn first_lookup(p: &Parts) -> usize {
    let mut idx = positive_lookups(p);
    idx.sort_by_key(|i| p.events[*i].ts_begin);
    idx[0]
}

fn is(e: &Event, p: Probe) -> bool {
    e.probe == p as u8
}

fn two_paths(t: &mut Trace) {
    if let Some(e) = t.events.last_mut() {
        e.flags |= flags::TWO_PATHS;
    }
}

/// Stamps at the ends of the range (0, `u64::MAX`, an event ending before it begins, a
/// writer and a lookup at the same instant) must not panic the diff (tests build with
/// overflow checks).
#[test]
fn extreme_stamps_do_not_panic() {
    let mut k = Trace::default();
    k.op(OpKind::Create, "f1", 0, 0, 10, 0);
    k.op(OpKind::Stat, "f1", 0, u64::MAX, 11, -2);
    k.lookup(ROOT, 2, "f1", (u64::MAX, u64::MAX), 11, 0, (2, 2), H | V);
    k.lookup(
        ROOT,
        2,
        "f1",
        (u64::MAX - 1, 1),
        11,
        0,
        (u32::MAX, u32::MAX),
        H | V,
    );
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (u64::MAX, u64::MAX),
        12,
        (7, 7),
        (u32::MAX, u32::MAX),
        H,
    );
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (u64::MAX, 0),
        12,
        (7, 0),
        (u32::MAX, 1),
        H,
    );
    k.op(OpKind::Unlink, "f1", u64::MAX, 0, 12, 0);
    let opts = DiffOptions {
        window_ns: u64::MAX,
        ..DiffOptions::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    k.write(&mp, Origin::Model, finished());
    for o in [opts, DiffOptions::default()] {
        let r = diff_files(&kp, &mp, &o).expect("diff");
        assert_eq!(r.kernel.events_read, k.events.len() as u64);
    }
}

// ---- operation results compared across the sides

/// Operations are paired across the sides as "the n-th of this kind on this name", n-th in
/// `ts_begin` order per side. In the kernel a long stat (A) can begin before a short one (B)
/// and end after it; the model runs them one at a time in begin order. A saw the file before
/// an unlink, B after it; the model agrees on both. Paired by end (the order results are
/// resolved in), the kernel's B (ENOENT, no writer overlaps it) met the model's A (found): a
/// `result-differs` anomaly that is not there.
#[test]
fn overlapping_operations_are_paired_in_begin_order() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 1_000, 5_000, 11, 0);
    k.lookup(ROOT, 2, "f1", (1_010, 1_020), 11, 7, (2, 2), H | V);
    k.op(OpKind::Unlink, "f1", 2_000, 2_100, 10, 0);
    k.op(OpKind::Stat, "f1", 3_000, 3_100, 12, -2);
    // The model: one operation at a time, each stamped from the kernel operation's begin.
    let mut m = Trace::default();
    created(&mut m, "f1");
    m.op(OpKind::Stat, "f1", 1_000, 1_050, 11, 0);
    m.op(OpKind::Unlink, "f1", 2_000, 2_050, 10, 0);
    m.op(OpKind::Stat, "f1", 3_000, 3_050, 12, -2);
    let r = run(&k, &m);
    assert_eq!(
        r.verdict,
        Verdict::Clean,
        "{}\n{:?}",
        outcome(&r),
        r.divergence
    );
    assert_eq!(r.divergence.results_differ, 0);
}

/// A stat whose result a race explains (it overlapped an unlink on one side) used to mark the
/// name as "diverged", and every later difference on it was taken as following from that
/// race until a writer succeeded on both sides. A stat changes nothing: the sides' states did
/// not diverge. Here a later stat finds the unlinked file (0) in the kernel where the model
/// says ENOENT, with no writer anywhere near it: a real difference.
#[test]
fn a_raced_stat_does_not_excuse_later_differences_on_the_name() {
    let trace = |raced: bool, first: i32, later: i32| {
        let mut t = Trace::default();
        created(&mut t, "f1");
        t.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
        if raced {
            t.op(OpKind::Stat, "f1", 1_050, 1_150, 12, first);
        } else {
            t.op(OpKind::Stat, "f1", 1_200, 1_300, 12, first);
        }
        t.op(OpKind::Stat, "f1", 5_000, 5_100, 12, later);
        t
    };
    // Control: the first stat does not overlap the unlink and both sides agree on it.
    let control = run(&trace(false, -2, 0), &trace(false, -2, -2));
    assert!(
        has_anomaly(&control, AnomalyKind::ResultDiffers),
        "control: {}",
        outcome(&control)
    );
    let r = run(&trace(true, -2, 0), &trace(true, 0, -2));
    assert_eq!(r.divergence.explained_by_race, 1, "{:?}", r.divergence);
    assert!(
        has_anomaly(&r, AnomalyKind::ResultDiffers),
        "{}\n{:?}",
        outcome(&r),
        r.divergence
    );
}

/// The other half of the rule above: an unlink that succeeded on one side only (it raced a
/// create of the name) does leave the two sides' states apart, and a later stat that differs
/// follows from it, with no writer near the stat.
#[test]
fn a_raced_writer_excuses_the_differences_it_leaves() {
    let trace = |unlinked: i32, later: i32| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "f1", 1_000, 1_100, 10, 0);
        t.op(OpKind::Unlink, "f1", 1_050, 1_150, 11, unlinked);
        t.op(OpKind::Stat, "f1", 5_000, 5_100, 12, later);
        t
    };
    // The kernel's stat walked to no dentry.
    let mut k = trace(0, -2);
    k.lookup(ROOT, 0, "f1", (5_010, 5_020), 12, 0, (0, 0), 0);
    let r = run(&k, &trace(-2, 0));
    assert_eq!(
        r.verdict,
        Verdict::Clean,
        "{}\n{:?}",
        outcome(&r),
        r.divergence
    );
    assert_eq!(
        (r.divergence.results_differ, r.divergence.explained_by_race),
        (2, 2),
        "{:?}",
        r.divergence
    );
}

/// A result difference is filed under the side whose result its own trace's history rules
/// out (a stat finding a name its side had unlinked, with no writer near), when the other
/// side's agrees with its own; otherwise under the kernel, the model being the reference it
/// is judged against. The anomaly is on that side's operation and its evidence names both.
/// It was filed under whichever side's result came in second: the model's, as the analysis
/// advances the side with fewer operations and the kernel goes first on a tie. The kernel's
/// stat found a file it had unlinked (0, the model says ENOENT), yet the summary's ANOMALIES
/// row read kernel 0, model 1, and the anomaly named the model's operation.
#[test]
fn a_result_difference_is_not_filed_under_the_model_by_processing_order() {
    let trace = |tid: u32, later: i32| {
        let mut t = Trace::default();
        created(&mut t, "f1");
        t.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
        t.op(OpKind::Stat, "f1", 5_000, 5_100, tid, later);
        t
    };
    // (kernel's stat result, model's): the side whose result its history rules out.
    for (k, m, wrong, tid) in [(0, -2, "kernel", 12), (-2, 0, "model", 13)] {
        let r = run(&trace(12, k), &trace(13, m));
        let count = |c: &std::collections::BTreeMap<AnomalyKind, u64>| {
            c.get(&AnomalyKind::ResultDiffers).copied()
        };
        let counts = (
            count(&r.anomaly_counts.kernel),
            count(&r.anomaly_counts.model),
        );
        let expected = if wrong == "kernel" {
            (Some(1), None)
        } else {
            (None, Some(1))
        };
        assert_eq!(counts, expected, "{wrong}: {}", outcome(&r));
        let a = r
            .anomalies
            .iter()
            .find(|a| a.kind == AnomalyKind::ResultDiffers)
            .expect("the anomaly");
        assert_eq!(
            (a.side.name(), a.tid, a.ts_begin, a.operation.as_str()),
            (wrong, tid, 5_000, "stat")
        );
        let d = &a.evidence["divergence"];
        assert_eq!(
            (&d["kernel_result"], &d["model_result"]),
            (&k.into(), &m.into())
        );
    }
}

/// The first numbered event of a CPU cut out, the footer's hits lowered to match: the
/// numbering starts at 2, a hole.
#[test]
fn held_the_first_event_of_a_cpu_cut_is_a_hole() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let i = (0..k.events.len())
        .find(|i| !is(&k.events[*i], Probe::Op) && k.events[*i].cpu_seq == 1)
        .expect("a first event");
    let e = k.events.remove(i);
    if let Some(h) = e.probe().and_then(|p| k.footer.hits.get_mut(p.symbol())) {
        *h -= 1;
    }
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(r.reasons.iter().any(|x| x.kind == ReasonKind::SequenceHole));
}

/// A footer claiming fewer calls of a probe than the file holds events of it.
#[test]
fn held_a_footer_counting_fewer_hits_than_events() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    if let Some(h) = k.footer.hits.get_mut(Probe::DDropInner.symbol()) {
        *h -= 3;
    }
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(r.reasons.iter().any(|x| x.kind == ReasonKind::HitsMismatch));
}

/// Writers touching the lookup's interval at one nanosecond, at either end, overlap it.
#[test]
fn held_a_writer_touching_the_lookup_at_one_ns_overlaps_it() {
    for (b, e) in [(900, 1_010), (1_020, 1_100)] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.op(OpKind::Unlink, "f1", b, e, 10, 0);
        k.op(OpKind::Stat, "f1", 1_005, 1_030, 12, -2);
        k.lookup(ROOT, 2, "f1", (1_010, 1_020), 12, 0, (2, 2), H | V);
        let r = run(&k, &k.clone());
        assert!(r.anomalies.is_empty(), "{}", outcome(&r));
        assert_eq!(r.null_inode_returns.kernel.by_class["overlaps-writer"], 1);
    }
}

// ---- what the headers and the events say the trace is

/// The header's workload is what tells the diff which names the setup created (they have no
/// operation event). A workload text this build no longer parses (a field added or retired
/// between versions: the workload format denies unknown fields) loses the setup, and every
/// name is "never seen existing" until an operation shows it: the fixture's planted NULL
/// inode on a setup-created name would read `negative`. The lost setup is a reason.
#[test]
fn a_workload_the_diff_cannot_parse_does_not_make_a_null_inode_clean() {
    let mut k = load("prune-stat.kernel.trace");
    let mut m = load("prune-stat.model.trace");
    let i = first_lookup(&k);
    k.events[i].inode_begin = 0;
    k.events[i].inode_end = 0;
    let control = diff_parts(&k, &m);
    assert!(
        has_anomaly(&control, AnomalyKind::NullInodePositive),
        "control: {}",
        outcome(&control)
    );
    for p in [&mut k, &mut m] {
        let toml = p.header.workload_toml.clone().expect("a workload");
        p.header.workload_toml = Some(format!("retired_field = 1\n{toml}"));
    }
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(
        has_reason(&r, ReasonKind::WorkloadUnreadable),
        "{}",
        outcome(&r)
    );
}

/// A model trace whose header was relabelled `kernel` (origin and release) passes the origin
/// check; none of its probe events is numbered or counted in a footer, so nothing about it
/// could show losses. Its events' source says no kernel probe wrote them: a reason.
#[test]
fn a_model_trace_relabelled_as_kernel_is_not_a_clean_kernel_trace() {
    let k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let mut fake = m.clone();
    fake.header.origin = Origin::Kernel;
    fake.header.kernel_release = k.header.kernel_release.clone();
    fake.header.attach = k.header.attach.clone();
    fake.header.profile = None;
    assert!(fake
        .events
        .iter()
        .all(|e| is(e, Probe::Op) || e.source == Source::Model as u8));
    let r = diff_parts(&fake, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(has_reason(&r, ReasonKind::ForeignEvents), "{}", outcome(&r));
}

/// `__d_lookup_rcu` unattached (the header says unavailable) and so no lookup in the trace:
/// no NULL-inode return can be seen at all. `tracer record` refuses to record without it, but
/// the diff takes any trace: the header's word is a reason.
#[test]
fn a_kernel_trace_without_the_lookup_probe_is_not_clean() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    k.header.attach.insert(
        "__d_lookup_rcu".into(),
        Attachment::Absent("fentry: no BTF FUNC; kprobe: not probeable".into()),
    );
    k.events.retain(|e| !is(e, Probe::DLookupRcu));
    k.footer.hits.remove(Probe::DLookupRcu.symbol());
    // Number what is left as the probes would have.
    let mut per_cpu: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, e) in k.events.iter().enumerate() {
        if !is(e, Probe::Op) {
            per_cpu.entry(e.cpu).or_default().push(i);
        }
    }
    k.footer.last_cpu_seq.clear();
    for (cpu, mut idx) in per_cpu {
        idx.sort_by_key(|i| k.events[*i].cpu_seq);
        for (n, i) in idx.iter().enumerate() {
            k.events[*i].cpu_seq = n as u32 + 1;
        }
        k.footer.last_cpu_seq.insert(cpu, idx.len() as u64);
    }
    let r = diff_parts(&k, &m);
    assert_eq!(r.events.kernel.per_probe["__d_lookup_rcu"], 0);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(
        has_reason(&r, ReasonKind::LookupNotTraced),
        "{}",
        outcome(&r)
    );
}

/// Names longer than an event keeps (`NAME_CAP`, 64 bytes) are cut, and two names sharing
/// their first 64 bytes become one key: an unlink of one makes the other "missing", and a
/// validated NULL inode for the other, which exists, reads `negative`. The events say the
/// names were cut (`NAME_TRUNCATED`): a reason, on both sides.
#[test]
fn names_cut_to_the_same_key_do_not_make_a_null_inode_clean() {
    let a = format!("{}1", "a".repeat(64));
    let b = format!("{}2", "a".repeat(64));
    let trace = |inode: u64| {
        let mut t = Trace::default();
        t.op(OpKind::Create, &a, 100, 200, 10, 0);
        t.op(OpKind::Stat, &a, 300, 400, 11, 0);
        t.op(OpKind::Create, &b, 500, 600, 10, 0);
        t.op(OpKind::Unlink, &b, 700, 800, 10, 0);
        t.op(OpKind::Stat, &a, 1_000, 1_100, 12, 0);
        t.lookup(ROOT, 2, &a, (1_010, 1_020), 12, inode, (2, 2), H | V);
        t
    };
    let r = run(&trace(0), &trace(7));
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    let cut: Vec<_> = r
        .reasons
        .iter()
        .filter(|x| x.kind == ReasonKind::NamesCut)
        .collect();
    assert_eq!(cut.len(), 2, "{}", outcome(&r));
}

/// A model of another workload, another seed or another text of the workload is not the
/// replay of this kernel trace: its operations would be compared with others. Refused, each
/// way of differing on its own.
#[test]
fn a_model_of_another_workload_is_refused() {
    let k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let mut name = m.clone();
    name.header.workload = Some("unlink-stat".into());
    let mut seed = m.clone();
    seed.header.seed = k.header.seed.map(|s| s + 1);
    let mut text = m.clone();
    text.header.workload_toml = text
        .header
        .workload_toml
        .map(|t| format!("{t}\n# edited\n"));
    for (what, other) in [("name", name), ("seed", seed), ("text", text)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
        save(&k, &kp);
        save(&other, &mp);
        match diff_files(&kp, &mp, &DiffOptions::default()) {
            Err(e @ DiffError::OtherWorkload { .. }) => {
                assert!(e.to_string().contains("tracer replay --against"), "{e}")
            }
            Err(e) => panic!("{what}: another error: {e}"),
            Ok(r) => panic!("{what}: diffed: {}", outcome(&r)),
        }
    }
    assert_eq!(
        diff_parts(&k, &m).verdict,
        Verdict::Clean,
        "the pair itself"
    );
}

/// The footer's last number per CPU finds the losses after a CPU's last event; a footer whose
/// number is below the file's highest, or that lacks a CPU the file has events of, does not
/// count these events, and such losses could hide. Each is a reason, and the last event of
/// that CPU cut as well stays unseen otherwise.
#[test]
fn a_footer_that_does_not_count_the_files_events_is_a_reason() {
    let k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    assert_eq!(
        diff_parts(&k, &m).verdict,
        Verdict::Clean,
        "the pair itself"
    );
    let (&cpu, &last) = k
        .footer
        .last_cpu_seq
        .iter()
        .find(|(_, n)| **n > 1)
        .expect("a CPU with events");
    let mut below = k.clone();
    below.footer.last_cpu_seq.insert(cpu, last - 1);
    let mut lacking = k.clone();
    lacking.footer.last_cpu_seq.remove(&cpu);
    for (what, t) in [("below", below), ("lacking", lacking)] {
        let r = diff_parts(&t, &m);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{what}: {}", outcome(&r));
        assert!(
            has_reason(&r, ReasonKind::FooterDisagrees),
            "{what}: {}",
            outcome(&r)
        );
    }
}

/// A writer whose entry half was not seen (`NO_ENTRY`: the probe attached mid-call) skips the
/// entry checks, the clear-before-unhash one among them: a trace that has such events cannot
/// show those checks pass.
#[test]
fn events_without_their_entry_half_are_a_reason() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let w = k
        .events
        .iter_mut()
        .find(|e| !is(e, Probe::Op) && !is(e, Probe::DLookupRcu) && !is(e, Probe::DLookup))
        .expect("a writer");
    w.flags |= flags::NO_ENTRY;
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(has_reason(&r, ReasonKind::NoEntry), "{}", outcome(&r));
}

/// A kernel release that is not a version gives no generation's rules; the newest are assumed,
/// and the report says so as a reason rather than judging an unknown kernel as if it were known.
#[test]
fn a_kernel_release_that_is_not_a_version_is_a_reason() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    k.header.kernel_release = "custom".into();
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(
        has_reason(&r, ReasonKind::ReleaseUnknown),
        "{}",
        outcome(&r)
    );
}

// ---- rule 2 and names a writer does not make appear or disappear

/// rename-exchange's promise ("each of which exists for the whole run: any ENOENT is an
/// anomaly") and POSIX's (a rename over an existing `new` leaves `new` visible throughout):
/// a rename onto an existing name, and an exchange, never make the name missing. Rule 2 takes
/// every successful rename or exchange of the name as a writer that excuses, so the very
/// symptom rename-exchange is there to catch (a stat's ENOENT, a validated NULL inode on the
/// target while the rename runs) reads `overlaps-writer`, and the verdict is clean.
#[test]
fn a_rename_over_an_existing_name_does_not_excuse_its_enoent() {
    let mut wrong = Vec::new();
    for (op, path) in [(OpKind::Rename, "t1\0c1"), (OpKind::Exchange, "t1\0c1")] {
        let trace = |result: i32, inode: u64| {
            let mut t = Trace::default();
            t.op(OpKind::Create, "c1", 100, 200, 10, 0);
            t.op(OpKind::Create, "t1", 210, 290, 10, 0);
            t.op(OpKind::Stat, "c1", 300, 400, 11, 0);
            t.op(op, path, 1_000, 1_100, 13, 0);
            two_paths(&mut t);
            t.op(OpKind::Stat, "c1", 1_040, 1_060, 12, result);
            t.lookup(ROOT, 2, "c1", (1_045, 1_050), 12, inode, (2, 2), H | V);
            t
        };
        let r = run(&trace(-2, 0), &trace(0, 7));
        if !has_anomaly(&r, AnomalyKind::SpuriousEnoent)
            || !has_anomaly(&r, AnomalyKind::NullInodePositive)
        {
            wrong.push(format!("{}: {}", op.name(), outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `rename("f1", "f1")` succeeds and changes nothing. Its two facts (the old name gone, the
/// new one there) land on one name over one interval, so rule 2's "two writers that
/// overlapped with opposite effects" holds for good: every later validated NULL inode (and
/// ENOENT) on `f1` is `overlaps-writer` until another writer of it, and the verdict is clean.
#[test]
fn a_rename_onto_itself_does_not_excuse_every_later_null_inode() {
    let trace = |inode: u64| {
        let mut t = Trace::default();
        created(&mut t, "f1");
        t.op(OpKind::Rename, "f1\0f1", 1_000, 1_100, 13, 0);
        two_paths(&mut t);
        t.op(OpKind::Stat, "f1", 50_000, 50_100, 12, 0);
        t.lookup(ROOT, 2, "f1", (50_010, 50_020), 12, inode, (2, 2), H | V);
        t
    };
    let r = run(&trace(0), &trace(7));
    assert!(
        has_anomaly(&r, AnomalyKind::NullInodePositive),
        "{}",
        outcome(&r)
    );
}

// ---- rule 3: a directory rename moves the state of the names below it

/// A directory renamed with its files: `d1/f` exists (it moved with `d1`), yet no operation
/// names it, so the history holds nothing for it and rule 3 reads "never seen existing" as
/// `negative`. A validated NULL `d_inode` for it is the anomaly the diff exists to find.
#[test]
fn a_null_inode_for_a_file_moved_with_its_directory_is_not_clean() {
    let trace = |inode: u64| {
        let mut t = Trace::default();
        t.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
        t.op(OpKind::Create, "d0/f", 100, 200, 10, 0);
        t.op(OpKind::Stat, "d0/f", 300, 400, 11, 0);
        t.op(OpKind::Rename, "d0\0d1", 1_000, 1_100, 13, 0);
        two_paths(&mut t);
        t.op(OpKind::Stat, "d1/f", 2_000, 2_100, 11, 0);
        t.lookup(ROOT, 2, "d1", (2_010, 2_015), 11, 20, (2, 2), H | V);
        t.lookup(2, 3, "f", (2_020, 2_025), 11, inode, (2, 2), H | V);
        t
    };
    let r = run(&trace(0), &trace(30));
    assert_eq!(
        r.anomalies.first().map(|a| a.name.as_str()),
        Some("d1/f"),
        "{}",
        outcome(&r)
    );
    assert!(
        has_anomaly(&r, AnomalyKind::NullInodePositive),
        "{}",
        outcome(&r)
    );
}

/// The mirror of the moved-directory case: after `d0` is renamed to `d1` and a new, empty
/// `d0` is made, `d0/f` does not exist, but its history still ends with its create, so a
/// stat's ENOENT and its lookup's NULL inode read as anomalies on both sides.
#[test]
fn a_name_left_behind_by_its_directory_rename_is_negative() {
    let mut k = Trace::default();
    k.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
    k.op(OpKind::Create, "d0/f", 100, 200, 10, 0);
    k.op(OpKind::Stat, "d0/f", 300, 400, 11, 0);
    k.op(OpKind::Rename, "d0\0d1", 1_000, 1_100, 13, 0);
    two_paths(&mut k);
    k.op(OpKind::Mkdir, "d0", 1_200, 1_300, 13, 0);
    k.op(OpKind::Stat, "d0/f", 2_000, 2_100, 11, -2);
    k.lookup(ROOT, 5, "d0", (2_010, 2_015), 11, 21, (2, 2), H | V);
    k.lookup(5, 6, "f", (2_020, 2_025), 11, 0, (0, 0), H | V);
    let r = run(&k, &k.clone());
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    assert_eq!(r.verdict, Verdict::Clean, "{}", outcome(&r));
}

/// A writer of the old path that overlapped the directory rename leaves the moved name's
/// state unknown only while it runs: once both have ended, a writer that succeeded leaves a
/// known state whichever order they took. A create of `d0/f` that succeeded found the
/// directory, moved or not, so `d1/f` exists; an exchange changes no existence at all. A
/// validated NULL inode and an ENOENT on `d1/f` 50 µs after both ended, with no writer near,
/// are the bug, here on both sides (as the 3.0-rc7 model replays Hugh Dickins' bug), so no
/// `result-differs` falls back on them. The control (no overlapping writer) finds them.
/// (Second review, rev2 finding R3.)
#[test]
fn a_writer_overlapping_a_directory_rename_does_not_excuse_the_moved_name_for_good() {
    let mut wrong = Vec::new();
    for overlap in [
        None,
        Some((OpKind::Create, "d0/f")),
        Some((OpKind::Exchange, "d0/f\0d0/g")),
    ] {
        let k = moved_with_overlap(overlap, 1_150, -2);
        let r = run(&k, &k.clone());
        if !has_anomaly(&r, AnomalyKind::NullInodePositive)
            || !has_anomaly(&r, AnomalyKind::SpuriousEnoent)
            || r.verdict != Verdict::Anomalies
        {
            wrong.push(format!("{overlap:?}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The other side of the same rule: a create of the old path still running when the lookup
/// of the moved name begins leaves it unknown (`overlaps-writer`), and an unlink of the old
/// path that overlapped the rename and succeeded removed the moved name in either order, so
/// the later ENOENT and NULL inode are `negative`. Neither is an anomaly.
#[test]
fn a_writer_of_the_old_path_still_explains_what_it_reaches() {
    let mut wrong = Vec::new();
    for (overlap, end, class) in [
        ((OpKind::Create, "d0/f"), 60_000, "overlaps-writer"),
        ((OpKind::Unlink, "d0/f"), 1_150, "negative"),
    ] {
        let k = moved_with_overlap(Some(overlap), end, -2);
        let r = run(&k, &k.clone());
        let null = &r.null_inode_returns.kernel.by_class;
        if !r.anomalies.is_empty()
            || r.verdict != Verdict::Clean
            || null.get(class).copied() != Some(1)
        {
            wrong.push(format!("{overlap:?}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A stat of the moved name that began while an unlink of its old path (overlapping the
/// rename) still ran saw the file before the unlink took effect: it does not settle the
/// name's state, the unlink that ended after it does. The later ENOENT and NULL inode are
/// `negative`, not anomalies; with the stat after the unlink ended they are anomalies.
#[test]
fn an_observation_of_the_moved_name_inside_an_old_path_writer_does_not_settle_it() {
    let mut wrong = Vec::new();
    for (stat_begin, class) in [(1_110, "negative"), (1_200, "anomaly")] {
        let mut k = Trace::default();
        k.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
        k.op(OpKind::Create, "d0/f", 100, 200, 10, 0);
        k.op(OpKind::Rename, "d0\0d1", 1_000, 1_100, 13, 0);
        two_paths(&mut k);
        k.op(OpKind::Unlink, "d0/f", 1_050, 1_150, 14, 0);
        k.op(OpKind::Stat, "d1/f", stat_begin, stat_begin + 20, 15, 0);
        k.op(OpKind::Stat, "d1/f", 50_000, 50_100, 11, -2);
        k.lookup(ROOT, 2, "d1", (50_010, 50_015), 11, 20, (2, 2), H | V);
        k.lookup(2, 3, "f", (50_020, 50_025), 11, 0, (2, 2), H | V);
        let r = run(&k, &k.clone());
        let null = &r.null_inode_returns.kernel.by_class;
        let anomalies = class == "anomaly";
        if null.get(class).copied() != Some(1)
            || r.anomalies.is_empty() == anomalies
            || (r.verdict == Verdict::Anomalies) != anomalies
        {
            wrong.push(format!("stat at {stat_begin}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `d0` with `d0/g` (and `d0/f`, unless the overlapping writer is its create) renamed to
/// `d1` over [1000, 1100], `overlap` on the old path from 1050 to `end`, then a stat of
/// `d1/f` with `result` and a validated NULL inode for it at 50 µs.
fn moved_with_overlap(overlap: Option<(OpKind, &str)>, end: u64, result: i32) -> Trace {
    let mut t = Trace::default();
    t.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
    t.op(OpKind::Create, "d0/g", 30, 40, 10, 0);
    if overlap.is_none_or(|(k, _)| k != OpKind::Create) {
        t.op(OpKind::Create, "d0/f", 100, 200, 10, 0);
        t.op(OpKind::Stat, "d0/f", 300, 400, 11, 0);
    }
    t.op(OpKind::Rename, "d0\0d1", 1_000, 1_100, 13, 0);
    two_paths(&mut t);
    if let Some((kind, path)) = overlap {
        t.op(kind, path, 1_050, end, 14, 0);
        if path.contains('\0') {
            two_paths(&mut t);
        }
    }
    t.op(OpKind::Stat, "d1/f", 50_000, 50_100, 11, result);
    t.lookup(ROOT, 2, "d1", (50_010, 50_015), 11, 20, (2, 2), H | V);
    t.lookup(2, 3, "f", (50_020, 50_025), 11, 0, (2, 2), H | V);
    t
}

// ---- writer invariants: d_delete is of the name itself

/// A child's inode cleared on the kill path while it is still hashed is an anomaly
/// (`clear-before-unhash`) unless it is `d_delete` inside an unlink, rmdir or rename *of the
/// name*. A rename of its parent directory does not `d_delete` the child, yet excuses it:
/// `clear_while_hashed` climbs the directories above the name like rule 2 does.
#[test]
fn a_rename_of_the_parent_does_not_excuse_a_hashed_clear_of_the_child() {
    let trace = |rename_parent: bool| {
        let mut t = Trace::default();
        t.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
        t.op(OpKind::Create, "d0/f", 100, 200, 10, 0);
        t.op(OpKind::Stat, "d0/f", 300, 400, 11, 0);
        t.lookup(ROOT, 2, "d0", (305, 310), 11, 20, (2, 2), H | V);
        t.lookup(2, 3, "f", (315, 320), 11, 30, (2, 2), H | V);
        if rename_parent {
            t.op(OpKind::Rename, "d0\0d1", 1_000, 1_200, 13, 0);
            two_paths(&mut t);
        }
        t.op(OpKind::DropCaches, "", 1_000, 1_300, 20, 0);
        // The pruner clears the file's inode with the dentry still hashed.
        t.writer(
            Probe::DentryUnlinkInode,
            3,
            "f",
            (1_050, 1_060),
            20,
            (30, 0),
            (2, 4),
            H,
        )
        .under(2);
        t
    };
    let control = run(&trace(false), &trace(false));
    assert!(
        has_anomaly(&control, AnomalyKind::ClearBeforeUnhash),
        "control: {}",
        outcome(&control)
    );
    let r = run(&trace(true), &trace(true));
    assert!(
        has_anomaly(&r, AnomalyKind::ClearBeforeUnhash),
        "{}",
        outcome(&r)
    );
}

// ---- d_seq: moves the traced writers do not explain, counts going back, dentry lives

/// A lookup read `d_seq` 10 where the writers so far account for 2; the kill's writers,
/// stamped after it (its thread stalled between stamp and reads), then move it 2 -> 6 only.
/// The first of them "explains" the whole gap as seen early, and 6 -> 10 (two more bumps no
/// traced writer made) is never reported: the verdict is clean. The same pair reading 6 is
/// the labelled-gap case of tests/diff.rs. (The stalled lookup is on another CPU than the
/// kill: on one CPU, reading 10 then 2 is the count going back, `seq-decreased`.)
#[test]
fn a_writer_seen_early_explains_only_what_it_moved() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.op(OpKind::Stat, "f1", 895, 2_000, 12, 0);
    k.lookup(ROOT, 2, "f1", (900, 910), 12, 0, (2, 10), 0)
        .on_cpu(1);
    k.op(OpKind::DropCaches, "", 990, 1_200, 20, 0);
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_000, 1_010),
        20,
        (7, 7),
        (2, 2),
        H,
    );
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_012, 1_030),
        20,
        (7, 0),
        (4, 6),
        0,
    );
    let r = run(&k, &k.clone());
    assert!(
        r.coverage_gaps.kernel.total > 0,
        "{}\n{:?}",
        outcome(&r),
        r.coverage_gaps.kernel
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
}

/// `d_seq` going backwards between two writers of one dentry life, on one CPU and 4 µs
/// apart: `d_delete`'s clear leaves 4, the pruner's unhash of the (still hashed) negative
/// dentry enters at 2. Counted as a "regression" in the diagnostics (meant for events that
/// arrive out of order), nothing in the verdict: clean. The rule for lookups (`ReadOrder`)
/// (the same CPU, or further apart than the clock skew) would call it an anomaly: asserted
/// exactly, `seq-decreased` alone and the verdict `anomalies` (rev2 finding R6).
#[test]
fn d_seq_going_backwards_between_writers_is_not_clean() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_040, 1_060),
        10,
        (7, 0),
        (2, 4),
        H,
    );
    k.op(OpKind::DropCaches, "", 5_000, 5_200, 20, 0);
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (5_010, 5_020),
        20,
        (0, 0),
        (2, 2),
        H,
    );
    let r = run(&k, &k.clone());
    assert_eq!(r.diagnostics.kernel.seq_regressions, 1);
    assert_eq!(
        r.anomaly_counts.kernel.keys().collect::<Vec<_>>(),
        [&AnomalyKind::SeqDecreased],
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// A lookup reading less than a traced writer left, later on the same CPU and within the
/// same dentry life: the count went backwards, but the rule compares lookups with lookups
/// only, and no lookup had read the writer's value. Asserted exactly: `seq-decreased` alone,
/// the verdict `anomalies` (rev2 finding R6). The same with a hot dentry: 40 lookups on CPU 1
/// in between, each reading the writer's 4, more than the diff keeps of a dentry's recent
/// reads within the clock skew; the reads they push out are still held against later ones
/// (rev33 H1: from 32 on, the verdict was clean).
#[test]
fn a_lookup_reading_below_a_writers_exit_is_not_clean() {
    for others in [0, 40] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
        k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
        k.writer(
            Probe::DentryUnlinkInode,
            2,
            "f1",
            (1_040, 1_060),
            10,
            (7, 0),
            (2, 4),
            H,
        );
        for i in 0..others {
            let b = 2_000 + i * 1_000;
            k.op(OpKind::Stat, "f1", b, b + 100, 30, -2);
            k.lookup(ROOT, 2, "f1", (b + 10, b + 20), 30, 0, (4, 4), H | V)
                .on_cpu(1);
        }
        k.op(OpKind::Stat, "f1", 50_000, 50_100, 12, -2);
        k.lookup(ROOT, 2, "f1", (50_010, 50_020), 12, 0, (2, 2), H | V);
        let r = run(&k, &k.clone());
        assert_eq!(
            r.anomaly_counts.kernel.keys().collect::<Vec<_>>(),
            [&AnomalyKind::SeqDecreased],
            "{others}: {}",
            outcome(&r)
        );
        assert_eq!(r.verdict, Verdict::Anomalies, "{others}: {}", outcome(&r));
    }
}

/// Across CPUs, further apart than the clock skew: CPU 0 reads 4; 40 lookups on CPU 1 within
/// the skew read 2 (within-skew decreases only, not ordered); 100 ms later CPU 2 reads 2,
/// which the stamps alone order after the 4, though the 4 left the recent reads long before.
#[test]
fn a_backwards_read_a_skew_after_a_forgotten_high_read_is_not_clean() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 290, 320, 11, 0);
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (4, 4), H | V);
    for i in 0..40 {
        let b = 2_000 + i * 1_000;
        k.op(OpKind::Stat, "f1", b, b + 100, 30, 0);
        k.lookup(ROOT, 2, "f1", (b + 10, b + 20), 30, 7, (2, 2), H | V)
            .on_cpu(1);
    }
    let t = 100_000_000;
    k.op(OpKind::Stat, "f1", t, t + 100, 12, 0);
    k.lookup(ROOT, 2, "f1", (t + 10, t + 20), 12, 7, (2, 2), H | V)
        .on_cpu(2);
    let r = run(&k, &k.clone());
    assert!(
        has_anomaly(&r, AnomalyKind::SeqDecreased),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// `d_delete` is a container writer with no bounds (0 at least, no most): on a kernel that
/// inlines `dentry_unlink_inode` into it (the recorder's `observed_through`), its event is
/// the only sight of the clear. One that cleared the inode of a hashed dentry without moving
/// `d_seq` (the 6.1 bracket missing) is no finding; nor is one whose count went backwards
/// (read as "a kill path's exit reads a dentry it freed", but `d_delete` frees nothing).
#[test]
fn a_d_delete_that_cleared_the_inode_without_its_bracket_is_an_anomaly() {
    let mut wrong = Vec::new();
    for seq_end in [2, 0] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
        k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
        k.writer(
            Probe::DDelete,
            2,
            "f1",
            (1_040, 1_060),
            10,
            (7, 0),
            (2, seq_end),
            H,
        );
        let r = run(&k, &k.clone());
        if !has_anomaly(&r, AnomalyKind::SeqDelta) {
            wrong.push(format!("d_seq 2 -> {seq_end}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A dentry's hashed life ends at a traced unhash of a negative dentry or a traced clear of
/// an unhashed one. Where the kill path shows only as `__dentry_kill` (its `___d_drop` and
/// `dentry_unlink_inode` inlined: the header's `observed_through`), the death is not seen.
/// The slab then gives the address to a new dentry of another name: it gets a new
/// generation, but the old one's `d_seq` reads are kept, and the new dentry's first read (0,
/// on the same CPU) is reported as `d_seq` going backwards.
#[test]
fn an_address_reused_after_a_kill_seen_only_as_dentry_kill_is_a_new_dentry() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    created(&mut k, "g1");
    k.op(OpKind::Stat, "f1", 500, 600, 11, 0);
    k.lookup(ROOT, 2, "f1", (510, 520), 11, 7, (2, 2), H | V);
    k.op(OpKind::DropCaches, "", 1_000, 1_200, 20, 0);
    k.writer(
        Probe::DentryKill,
        2,
        "f1",
        (1_010, 1_050),
        20,
        (7, 0),
        (2, 6),
        H,
    );
    // The address comes back as g1's new dentry, d_seq from 0.
    k.op(OpKind::Stat, "g1", 2_000, 2_100, 12, 0);
    k.lookup(ROOT, 2, "g1", (2_010, 2_020), 12, 9, (0, 0), H | V);
    let r = run(&k, &k.clone());
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
}

// ---- rule 2: writers overlapping the lookup, and what arrives too late to say so

/// An unlink longer than the reorder window (1 s; a syscall under TCG was seen taking 300 ms)
/// reaches the kernel trace at its end, after the lookups inside it were judged: the stat's
/// ENOENT and its NULL-inode lookup overlap the unlink (rule 2, `overlaps-writer`), but are
/// reported as anomalies, and the verdict is `anomalies` although the report's own reason
/// says events came late and "may have been judged out of order". Judged before the unlink
/// arrived, they are set aside (a reason naming them), not anomalies.
#[test]
fn a_writer_arriving_after_the_reorder_window_does_not_make_anomalies() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Unlink, "f1", 1_000, 1_500_000_000, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_500, 1_600),
        10,
        (7, 0),
        (2, 4),
        H,
    );
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    k.lookup(ROOT, 2, "f1", (2_010, 2_020), 12, 0, (4, 4), H | V);
    // Another thread's operations, every tenth of a second, move the window on.
    for i in 1..=20u64 {
        let t = i * 100_000_000;
        k.op(OpKind::Stat, "g", t, t + 100, 14, -2);
    }
    let r = run(&k, &k.clone());
    assert!(
        r.reasons.iter().any(|x| x.kind == ReasonKind::LateEvents),
        "{}",
        outcome(&r)
    );
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::AnomalyBeforeLateEvent),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
}

// ---- a trace that stops early: what its lost tail would have explained

/// "Anomalies as soon as one is found, complete traces or not: what was seen is real." But
/// what a lookup or an ENOENT is judged by comes later in the file: an operation's event is
/// written at its end. Cut the file after a stat's ENOENT and its NULL-inode lookup and before
/// the end of the unlink they overlap, and both are anomalies (exit 1) of a trace that only
/// lost the writer that explains them. Within the reorder window of where the trace stops,
/// they are set aside (a reason), not anomalies.
#[test]
fn a_cut_trace_does_not_make_anomalies_of_what_the_lost_tail_explains() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Unlink, "f1", 1_000, 1_000_000, 10, 0);
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    k.lookup(ROOT, 2, "f1", (2_010, 2_020), 12, 0, (2, 2), H | V);
    // Names never created (negative), enough to fill the file's first chunk of 4096 events.
    for i in 0..4_100u64 {
        let t = 3_000 + i * 100;
        k.op(OpKind::Stat, &format!("g{i}"), t, t + 50, 14, -2);
    }
    for i in 0..10u64 {
        let t = 2_000_000 + i * 100;
        k.op(OpKind::Stat, "h", t, t + 50, 14, -2);
    }
    let m = Trace {
        events: k
            .events
            .iter()
            .filter(|e| is(e, Probe::Op))
            .copied()
            .collect(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    m.write(&mp, Origin::Model, finished());
    let control = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
    assert!(
        control.anomalies.is_empty(),
        "control: {}",
        outcome(&control)
    );
    // Cut inside the second chunk (which holds the unlink).
    let bytes = std::fs::read(&kp).expect("read");
    let second = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"EVTS")
        .nth(1)
        .map(|(i, _)| i)
        .expect("two chunks");
    std::fs::write(&kp, &bytes[..second + 200]).expect("cut");
    let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
    assert!(
        r.reasons.iter().any(|x| x.kind == ReasonKind::Damaged),
        "{}",
        outcome(&r)
    );
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::AnomalyNearCut),
        "{}",
        outcome(&r)
    );
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
}

/// The control: an anomaly more than the reorder window before where a cut trace stops had
/// every event that could explain it in the file (a lost probe event arrives after every
/// event read, at most a window behind the newest; each of the workload's four threads ran
/// operations up to the cut, so what it lost began after them), so it stays an anomaly.
#[test]
fn an_anomaly_a_window_before_the_cut_stays_an_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    // A stat's ENOENT on a name that exists, no writer anywhere near.
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    // Two seconds of other names never created, filling more than the file's first chunk,
    // taken in turn by every thread.
    for i in 0..4_100u64 {
        let t = 3_000 + i * 500_000;
        let tid = [10, 11, 12, 14][i as usize % 4];
        k.op(OpKind::Stat, &format!("g{i}"), t, t + 50, tid, -2);
    }
    let m = k.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let header = |h: &mut tracer_analysis::trace::Header| {
        h.workload_toml = Some(threads_workload(1, 3));
    };
    k.write_with(&kp, Origin::Kernel, finished(), header);
    m.write_with(&mp, Origin::Model, finished(), header);
    let bytes = std::fs::read(&kp).expect("read");
    let second = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"EVTS")
        .nth(1)
        .map(|(i, _)| i)
        .expect("two chunks");
    std::fs::write(&kp, &bytes[..second + 200]).expect("cut");
    let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
    assert!(
        r.reasons.iter().any(|x| x.kind == ReasonKind::Damaged),
        "{}",
        outcome(&r)
    );
    assert_eq!(
        r.anomaly_counts.kernel.get(&AnomalyKind::SpuriousEnoent),
        Some(&1),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

// ---- keys

/// A directory dentry re-created by a ref-walk (after pruning) is named by no event; a lookup
/// under it is named from its thread's operation. Stamped just outside that operation (two
/// vCPUs' clocks disagree by milliseconds under TCG: ARCHITECTURE.md), it gets no name and
/// is keyed at the root: `d0/f`'s NULL inode is judged as a lookup of `f`, a name never seen,
/// and reads `negative`. The report counts the unnamed parent in its diagnostics only.
#[test]
fn a_lookup_under_an_unnamed_directory_is_not_judged_at_the_root() {
    let trace = |inode: u64| {
        let mut t = Trace::default();
        t.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
        t.op(OpKind::Create, "d0/f", 100, 200, 10, 0);
        t.op(OpKind::Stat, "d0/f", 300, 400, 11, 0);
        t.op(OpKind::Stat, "d0/f", 2_000, 2_100, 12, 0);
        // Directory dentry 6 was allocated by the ref-walk: no event has it as its subject.
        t.lookup(6, 7, "f", (2_095, 2_105), 12, inode, (2, 2), H | V);
        t
    };
    let r = run(&trace(0), &trace(30));
    assert_eq!(r.diagnostics.kernel.unnamed_parents, 1);
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::UnnamedDirectory && x.side == Some(Side::Kernel)),
        "{}",
        outcome(&r)
    );
    assert_ne!(r.verdict, Verdict::Clean, "{}", outcome(&r));
}

/// The same reuse with the death not traced at all (a kill path inlined everywhere): a dentry
/// id seen under another name with no traced `__d_move` since is another dentry. After a
/// traced `__d_move`, the new name is the same dentry, and its count going back is found.
#[test]
fn an_id_under_another_name_without_a_traced_move_is_a_new_dentry() {
    let trace = |moved: bool| {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.op(OpKind::Stat, "f1", 500, 600, 11, 0);
        k.lookup(ROOT, 2, "f1", (510, 520), 11, 7, (6, 6), H | V);
        if moved {
            k.op(OpKind::Rename, "f1\0g1", 1_000, 1_200, 20, 0);
            two_paths(&mut k);
            k.writer(Probe::DMove, 2, "f1", (1_010, 1_050), 20, (7, 7), (6, 8), H);
        } else {
            created(&mut k, "g1");
        }
        k.op(OpKind::Stat, "g1", 2_000, 2_100, 12, 0);
        k.lookup(ROOT, 2, "g1", (2_010, 2_020), 12, 7, (0, 0), H | V);
        k
    };
    let k = trace(false);
    let r = run(&k, &k.clone());
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    let k = trace(true);
    let r = run(&k, &k.clone());
    assert!(
        has_anomaly(&r, AnomalyKind::SeqDecreased),
        "{}",
        outcome(&r)
    );
}

// ---- the second review (docs/notes/session-7/advrev2-findings.md): writers' results and the
// ---- replay's spans

/// `c1` exists before and after `rename(t1, c1)`, which replaces it atomically, and the
/// parent's lock orders an unlink or a create of `c1` before or after the rename: the unlink
/// must succeed and the create must fail with EEXIST, whichever comes first. A kernel that
/// answers ENOENT to the unlink (or 0 to the create) while the rename runs is wrong, and the
/// model (which runs them one at a time) says so. The cross-side comparison excuses any
/// difference on an operation that another writer of its name overlaps (`judge` in
/// diff/side/suspects.rs asks `other_writer_overlapping`, any `writer` fact), and the replay
/// stamps the model's operations with the kernel's spans, so both sides "race" by
/// construction: no check is left for a writer's result. (The stat's ENOENT in the same
/// situation is caught by the single-side ENOENT rule, fixed after the first review; writers'
/// results have no such rule.)
#[test]
fn a_rename_over_the_name_does_not_excuse_a_writers_impossible_result() {
    let mut wrong = Vec::new();
    for (kind, kernel, model) in [(OpKind::Unlink, -2, 0), (OpKind::Create, 0, -17)] {
        let trace = |result: i32| {
            let mut t = Trace::default();
            t.op(OpKind::Create, "c1", 100, 200, 10, 0);
            t.op(OpKind::Create, "t1", 210, 290, 10, 0);
            t.op(OpKind::Stat, "c1", 300, 400, 11, 0);
            t.op(OpKind::Rename, "t1\0c1", 1_000, 1_100, 13, 0);
            two_paths(&mut t);
            t.op(kind, "c1", 1_040, 1_060, 12, result);
            t
        };
        let r = run(&trace(kernel), &trace(model));
        if !r
            .anomaly_counts
            .kernel
            .contains_key(&AnomalyKind::ResultDiffers)
        {
            wrong.push(format!("{}: {}", kind.name(), outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The same for an exchange: both names exist throughout, so an unlink of either while it
/// runs succeeds.
#[test]
fn an_exchange_does_not_excuse_an_unlinks_enoent() {
    let trace = |result: i32| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "c1", 100, 200, 10, 0);
        t.op(OpKind::Create, "t1", 210, 290, 10, 0);
        t.op(OpKind::Stat, "c1", 300, 400, 11, 0);
        t.op(OpKind::Exchange, "t1\0c1", 1_000, 1_100, 13, 0);
        two_paths(&mut t);
        t.op(OpKind::Unlink, "c1", 1_040, 1_060, 12, result);
        t
    };
    let r = run(&trace(-2), &trace(0));
    assert!(
        r.anomaly_counts
            .kernel
            .contains_key(&AnomalyKind::ResultDiffers),
        "{}",
        outcome(&r)
    );
}

/// A CPU's numbering that wraps (`cpu_seq` is 32 bits, the probes' counter 64): after
/// 2^32 - 1 come 0 (read as unsequenced, a reason of its own) and 1, 2, ... again, which read as
/// repeats, never as a complete numbering. (The test builder renumbers a 0, so the numbers
/// here skip it.)
#[test]
fn held_a_wrapped_cpu_seq_is_not_complete() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 1_000, 1_500, 11, 0);
    for (i, seq) in [1, 2, u32::MAX - 1, u32::MAX, 1, 2].into_iter().enumerate() {
        let b = 1_010 + 50 * i as u64;
        k.lookup(ROOT, 2, "f1", (b, b + 10), 11, 7, (2, 2), H | V);
        if let Some(e) = k.events.last_mut() {
            e.cpu_seq = seq;
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let mut footer = finished();
    footer.last_cpu_seq.insert(0, (1u64 << 32) + 2);
    k.write(&kp, Origin::Kernel, footer);
    let mut m = Trace::default();
    created(&mut m, "f1");
    m.op(OpKind::Stat, "f1", 1_000, 1_500, 11, 0);
    m.write(&mp, Origin::Model, finished());
    let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::SequenceRepeat),
        "{}",
        outcome(&r)
    );
}

const RENAME_OVER_TOML: &str = r#"
name = "rename-over"
seed = 1
[[setup]]
op = "create"
path = "c1"
[[setup]]
op = "create"
path = "t1"
[[thread]]
name = "w"
iterations = 1
ops = [{ op = "stat", path = "c1" }]
"#;

/// A kernel operation: kind, path (a NUL before a rename's second path), span, tid, result.
type KernelOp<'a> = (OpKind, &'a [u8], (u64, u64), u32, i32);

/// Writes a kernel trace of the `rename-over` workload holding `ops` (kind, path with a NUL
/// before a second path, span, tid, result; in end order), replays the model against it in
/// timestamp order and diffs the two: the real pipeline of `tracer replay --against` and
/// `tracer diff`.
fn replay_and_diff(ops: &[KernelOp<'_>]) -> (tracer_analysis::replay::ReplaySummary, Report) {
    use tracer_analysis::{
        replay::{replay_to_trace, Source, Style},
        trace::{Attachment, Header, Writer},
        workload::Workload,
    };
    use tracer_common::{flags, Event, Probe, Source as EventSource};
    let w = Workload::from_toml(RENAME_OVER_TOML, "rename-over.toml").expect("workload");
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let mut h = Header::new(Origin::Kernel);
    h.kernel_release = "6.1.0-27-amd64".into();
    h.workload = Some("rename-over".into());
    h.workload_toml = Some(RENAME_OVER_TOML.into());
    h.attach = [
        "__d_lookup_rcu",
        "___d_drop",
        "dentry_unlink_inode",
        "__d_drop",
    ]
    .into_iter()
    .map(|s| (s.to_string(), Attachment::Fentry))
    .collect();
    let mut kw = Writer::create(&kp, &h).expect("create");
    for &(kind, path, (b, e), tid, result) in ops {
        let mut ev = Event::zeroed();
        ev.probe = Probe::Op as u8;
        ev.source = EventSource::Workload as u8;
        ev.aux = kind as u32;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev.tid = tid;
        ev.result = result;
        ev.set_name(path);
        if path.contains(&0) {
            ev.flags |= flags::TWO_PATHS;
        }
        kw.push(&ev).expect("push");
    }
    kw.finish(finished()).expect("finish");
    let s = replay_to_trace(
        &w,
        userspace_dcache::Profile::named("linux-6.1").expect("profile"),
        Source::Against(&kp),
        Style::default(),
        &mp,
        "6.1.0-27-amd64",
    )
    .expect("replay");
    let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
    (s, r)
}

/// The finding above through the real pipeline: the setup creates `c1` and `t1`; a stat
/// first (the setup's facts end at the trace's first operation), then `rename(t1, c1)` and an
/// unlink of `c1` answered ENOENT while it runs. The model's unlink succeeds (the replay counts
/// the difference), and the diff excuses it as a race because the replay gave the model's
/// operations the kernel's spans.
#[test]
fn a_replay_against_an_impossible_unlink_result_is_not_clean() {
    let (s, r) = replay_and_diff(&[
        (OpKind::Stat, b"t1", (500, 600), 11, 0),
        (OpKind::Unlink, b"c1", (1_040, 1_060), 12, -2),
        (OpKind::Rename, b"t1\0c1", (1_000, 1_100), 13, 0),
    ]);
    assert_eq!(
        (s.ops, s.results_differ),
        (3, Some(1)),
        "the model's unlink succeeds: {s:?}"
    );
    assert_eq!(r.divergence.results_differ, 1, "{}", outcome(&r));
    assert!(
        r.anomaly_counts
            .kernel
            .contains_key(&AnomalyKind::ResultDiffers),
        "{}",
        outcome(&r)
    );
}

/// The setup's facts span [0, the trace's first operation] and count as a writer there, and
/// `state_at` takes only facts ending strictly before a time. When the trace's first operation
/// is a rename over a setup-created name, the name's state at its begin is unknown, so the
/// rename's target fact keeps `changes_existence` (history.rs `add_op`), and a stat's ENOENT
/// on the target inside it (the first review's finding 1) is `overlaps-writer` again.
#[test]
fn a_rename_over_a_setup_name_as_the_first_operation_does_not_excuse_its_enoent() {
    let (_, r) = replay_and_diff(&[
        (OpKind::Stat, b"c1", (1_040, 1_060), 12, -2),
        (OpKind::Rename, b"t1\0c1", (1_000, 1_100), 13, 0),
    ]);
    assert!(
        r.anomaly_counts
            .kernel
            .contains_key(&AnomalyKind::SpuriousEnoent),
        "{}",
        outcome(&r)
    );
}

// ---- late events and the cut: only what an anomaly's rule reads sets it aside (second review,
// rev2 findings R1, R2, R4, R5)

/// Another thread's operations on a name never created, every tenth of a second up to
/// `until_s` seconds: they move the reorder window on.
fn tick(t: &mut Trace, until_s: u64) {
    for i in 1..=until_s * 10 {
        let ts = i * 100_000_000;
        t.op(OpKind::Stat, "g", ts, ts + 100, 14, -2);
    }
}

/// Hugh Dickins' symptom on an existing `name` with no writer anywhere: a stat's ENOENT and
/// its validated NULL-inode lookup at 2 µs.
fn spurious(t: &mut Trace, name: &str) {
    t.op(OpKind::Stat, name, 2_000, 2_100, 12, -2);
    t.lookup(ROOT, 2, name, (2_010, 2_020), 12, 0, (2, 2), H | V);
}

/// Control: with no late event, the spurious ENOENT and NULL inode are anomalies.
#[test]
fn control_a_spurious_enoent_with_nothing_late_is_an_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    spurious(&mut k, "f1");
    tick(&mut k, 2);
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// A late event that can only prove the name existed (a successful stat, longer than the
/// reorder window, overlapping the spurious ENOENT) cannot excuse an ENOENT or a NULL inode
/// (rules 2 and 3: only a writer changing existence excuses, an observation proves
/// existence). `Evidence::late` used to set aside every anomaly on the name the late event
/// reached, whatever its kind, and the real anomaly read `anomaly-before-late-event`.
#[test]
fn a_late_observation_does_not_set_aside_a_real_spurious_enoent() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 1_000, 1_500_000_000, 10, 0);
    spurious(&mut k, "f1");
    tick(&mut k, 2);
    let r = run(&k, &k.clone());
    assert!(
        r.reasons.iter().any(|x| x.kind == ReasonKind::LateEvents),
        "the long stat must be late: {}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// The same through a directory above: a long successful stat of `d0` (a walk of any name
/// below it would do) arriving late sets aside the anomaly on `d0/f1`.
#[test]
fn a_late_observation_of_the_directory_does_not_set_aside_an_anomaly_below_it() {
    let mut k = Trace::default();
    k.op(OpKind::Mkdir, "d0", 50, 90, 10, 0);
    created(&mut k, "d0/f1");
    k.op(OpKind::Stat, "d0", 1_000, 1_500_000_000, 10, 0);
    k.op(OpKind::Stat, "d0/f1", 2_000, 2_100, 12, -2);
    tick(&mut k, 2);
    let r = run(&k, &k.clone());
    assert!(
        r.reasons.iter().any(|x| x.kind == ReasonKind::LateEvents),
        "the long stat must be late: {}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// prune-stat's own shape: Hugh Dickins' symptom (a stat's ENOENT and a validated NULL inode
/// on `d0/f1`, which exists) while a `drop_caches` runs. `drop_caches` changes no name's
/// existence, so it excuses nothing (rules 2 and 3), but its operation event has the empty
/// path, the root, which `Evidence::late` used to count as "a directory above" every name.
/// One that takes longer than the reorder window (a large dentry cache; the CI's VMs took up
/// to 52 ms for a small one) arrives late; it must not set aside what was judged inside it,
/// or the bug the workload exists to catch reads `inconclusive`. The first case (the same
/// `drop_caches` short, not late) is the control.
#[test]
fn a_late_drop_caches_does_not_set_aside_the_race_it_provokes() {
    let trace = |drop_end: u64| {
        let mut k = Trace::default();
        k.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
        created(&mut k, "d0/f1");
        k.op(OpKind::DropCaches, "", 1_000, drop_end, 20, 0);
        k.op(OpKind::Stat, "d0/f1", 2_000, 2_100, 12, -2);
        k.lookup(ROOT, 5, "d0", (2_010, 2_015), 12, 21, (2, 2), H | V);
        k.lookup(5, 6, "f1", (2_020, 2_025), 12, 0, (2, 2), H | V);
        tick(&mut k, 2);
        k
    };
    let mut wrong = Vec::new();
    for drop_end in [1_500, 1_500_000_000] {
        let k = trace(drop_end);
        let r = run(&k, &k.clone());
        let kinds = &r.anomaly_counts.kernel;
        if r.verdict != Verdict::Anomalies
            || !kinds.contains_key(&AnomalyKind::SpuriousEnoent)
            || !kinds.contains_key(&AnomalyKind::NullInodePositive)
        {
            wrong.push(format!("drop_caches to {drop_end} ns: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A trace cut while an unlink longer than the reorder window was in flight: the unlink's
/// event (written at its end) is lost, and the stat's ENOENT inside it, judged without it,
/// is more than a window before the cut. `anomaly-near-cut` assumes "a lost event would
/// arrive after every event read, so at most a window behind the newest", which holds for
/// lookups and writers but not for an operation, keyed by its begin and written at its end:
/// the same reason late events exist. The ENOENT is a false anomaly (exit 1) of a trace that
/// only lost the writer explaining it. The lost operation is not seen, but its thread's last
/// operation in the file (the create, at 200 ns) is: the lost one began after it.
#[test]
fn a_cut_inside_an_operation_longer_than_the_window_does_not_make_anomalies() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    // The unlink runs from 1 µs to 3 s; the recording stops (consumer error) at 2.5 s.
    k.op(OpKind::Unlink, "f1", 1_000, 3_000_000_000, 10, 0);
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    tick(&mut k, 3);
    let cut_at = 2_500_000_000;
    let seen = Trace {
        events: k
            .events
            .iter()
            .filter(|e| e.ts_end <= cut_at)
            .copied()
            .collect(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let header = |h: &mut tracer_analysis::trace::Header| {
        h.workload_toml = Some(threads_workload(1, 3));
    };
    // A recording that failed with the workload: the footer lists no threads.
    seen.write_with(
        &kp,
        Origin::Kernel,
        Footer {
            end: End::Error("workload: thread `writer` failed".into()),
            ..finished()
        },
        header,
    );
    k.write_with(&mp, Origin::Model, finished(), header);
    let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
    assert!(
        !r.anomaly_counts
            .kernel
            .contains_key(&AnomalyKind::SpuriousEnoent),
        "{}",
        outcome(&r)
    );
    assert_ne!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    let why = near_cut(&r).unwrap_or_default();
    assert!(why.contains("where thread 10's last operation"), "{why}");
}

/// When an anomaly is set aside, the report's per-class counts must not keep it: they said
/// "anomaly: 1" next to an empty anomaly list and an inconclusive verdict.
#[test]
fn a_set_aside_anomaly_is_not_counted_as_an_anomaly_class() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Unlink, "f1", 1_000, 1_500_000_000, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_500, 1_600),
        10,
        (7, 0),
        (2, 4),
        H,
    );
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    k.lookup(ROOT, 2, "f1", (2_010, 2_020), 12, 0, (4, 4), H | V);
    tick(&mut k, 2);
    let r = run(&k, &k.clone());
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::AnomalyBeforeLateEvent),
        "{}",
        outcome(&r)
    );
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    // The class key is always present: its count is what must leave the anomalies.
    for (what, c) in [
        ("null-inode", &r.null_inode_returns.kernel),
        ("enoent", &r.enoent_results.kernel),
    ] {
        assert_eq!(
            (c.by_class.get("anomaly"), c.anomalous, c.set_aside),
            (Some(&0), 0, 1),
            "{what} classes count the set-aside anomaly: {}",
            outcome(&r)
        );
    }
}

/// Anomalies are detailed first come, first served (`--max-anomalies`); setting one aside
/// drops its details but never details one of those counted past the limit. With the limit
/// at 1, an anomaly set aside (a late unlink on its name) and a real one on another name give
/// verdict `anomalies` with an empty anomaly list: the report names no anomaly it counts.
/// With `--max-anomalies 1`, the first anomaly (on `f1`) is set aside by a late unlink; the
/// second (on `f2`) is real and counted, so it must be detailed: the limit is on what the
/// report keeps, and the set-aside one is not kept.
#[test]
fn an_anomaly_counted_after_one_set_aside_is_detailed() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    created(&mut k, "f2");
    k.op(OpKind::Unlink, "f1", 1_000, 1_500_000_000, 10, 0);
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    k.op(OpKind::Stat, "f2", 3_000, 3_100, 12, -2);
    tick(&mut k, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    k.write(&mp, Origin::Model, finished());
    let opts = DiffOptions {
        max_anomalies: 1,
        ..DiffOptions::default()
    };
    let r = diff_files(&kp, &mp, &opts).expect("diff");
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::AnomalyBeforeLateEvent),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert!(
        r.anomalies.iter().any(|a| a.name == "f2"),
        "counted {:?}, detailed none: {}",
        r.anomaly_counts,
        outcome(&r)
    );
}

// ---- the third review (docs/notes/session-7/rev3-findings.md)

/// A cut trace (the recording failed after the workload returned: its footer lists the
/// threads, so every operation is in the file and only probe events after the failure are
/// lost) whose kernel side holds a real spurious ENOENT 1.5 s before the end, with nothing
/// that could excuse it. The only operation longer than the window is a `drop_caches` that
/// ended long before the ENOENT began: a lost operation can excuse an ENOENT only by changing
/// existence, and a `drop_caches` changes none, yet its length became the cut's bound and the
/// anomaly was set aside as `anomaly-near-cut`. The control, the same trace with a short
/// `drop_caches`, is an anomaly.
#[test]
fn a_long_drop_caches_does_not_widen_the_cut_over_a_real_anomaly() {
    let cut_trace = |drop_end: u64| {
        let mut k = Trace::default();
        k.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
        created(&mut k, "d0/f1");
        k.op(OpKind::DropCaches, "", 1_000, drop_end, 20, 0);
        let t = 3_500_000_000;
        k.op(OpKind::Stat, "d0/f1", t, t + 100, 12, -2);
        k.lookup(ROOT, 5, "d0", (t + 10, t + 15), 12, 21, (2, 2), H | V);
        k.lookup(5, 6, "f1", (t + 20, t + 25), 12, 0, (2, 2), H | V);
        tick(&mut k, 5);
        // The probe events go on to the end, as the lookups of the ticks' stats.
        for i in 1..=50 {
            let ts = i * 100_000_000;
            k.lookup(ROOT, 0, "g", (ts + 10, ts + 20), 14, 0, (0, 0), 0);
        }
        k
    };
    let mut wrong = Vec::new();
    for drop_end in [1_500, 3_000_000_000] {
        let k = cut_trace(drop_end);
        let dir = tempfile::tempdir().expect("tempdir");
        let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
        k.write(
            &kp,
            Origin::Kernel,
            Footer {
                end: End::Error("consumer: ring gone".into()),
                threads: [10, 11, 12, 14, 20]
                    .map(|tid| ThreadInfo {
                        name: format!("t{tid}"),
                        tid,
                    })
                    .into(),
                ..finished()
            },
        );
        k.write(&mp, Origin::Model, finished());
        let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
        if r.verdict != Verdict::Anomalies
            || !r
                .anomaly_counts
                .kernel
                .contains_key(&AnomalyKind::SpuriousEnoent)
        {
            wrong.push(format!("drop_caches to {drop_end} ns: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Two writers of the old path overlap the directory rename: one ended at 1150, the other
/// (the opposite change of existence) began at 1060 and still runs at the stat of `d1/f`
/// (50 µs). It resolved `d0` before the move, so it acts on the moved `d1/f`, and may have
/// done so before the lookup: the ENOENT and the NULL inode are `overlaps-writer`, as
/// `a_writer_of_the_old_path_still_explains_what_it_reaches` says of one running writer.
/// `writer_overlapping` returns the first to end; this checks that the one still running
/// decides (it does: a passing check of fixmoved, rev3).
#[test]
fn a_second_writer_of_the_old_path_still_running_explains_the_moved_name() {
    let mut wrong = Vec::new();
    for (first, second) in [
        (OpKind::Create, OpKind::Unlink),
        (OpKind::Unlink, OpKind::Create),
    ] {
        let mut k = moved_with_overlap(Some((first, "d0/f")), 1_150, -2);
        k.op(second, "d0/f", 1_060, 60_000, 15, 0);
        let r = run(&k, &k.clone());
        let null = &r.null_inode_returns.kernel.by_class;
        if !r.anomalies.is_empty()
            || null.get("overlaps-writer") != Some(&1)
            || r.verdict != Verdict::Clean
        {
            wrong.push(format!(
                "{first:?} then {second:?} running: {}",
                outcome(&r)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `renameat2(RENAME_EXCHANGE)` may swap a file with a directory. An unlink of `c1` while the
/// exchange of `t1` (a directory) and `c1` (a file) runs is ordered before or after it by the
/// parent's lock: 0 before (the file), EISDIR after (now the directory). The kernel answering
/// EISDIR and the model 0 is that race, on a correct kernel. 12fe223 counts only writers that
/// change existence for an unlink's result, so the exchange no longer excuses it and the
/// difference reads `result-differs`: a false anomaly. (An unlink's result depends on the
/// name's type too, not only on whether it exists.)
#[test]
fn an_exchange_of_a_file_with_a_directory_explains_an_unlinks_eisdir() {
    let trace = |result: i32| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "c1", 100, 200, 10, 0);
        t.op(OpKind::Mkdir, "t1", 210, 290, 10, 0);
        t.op(OpKind::Stat, "c1", 300, 400, 11, 0);
        t.op(OpKind::Exchange, "t1\0c1", 1_000, 1_100, 13, 0);
        two_paths(&mut t);
        t.op(OpKind::Unlink, "c1", 1_040, 1_060, 12, result);
        t
    };
    let r = run(&trace(-21), &trace(0));
    assert!(r.anomaly_counts.kernel.is_empty(), "{}", outcome(&r));
    assert!(r.anomaly_counts.model.is_empty(), "{}", outcome(&r));
    assert_ne!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

// ---- session 8: what the report and the timeline say of set-aside anomalies

/// The timeline (`--timeline`) marks exactly the anomalies the report counts: an anomaly set
/// aside after it was judged (here on `f1`, by a late unlink) is marked `set aside`, with its
/// reason, not `ANOMALY`. Its mark used to be written when it was judged and never taken back.
#[test]
fn the_timeline_marks_a_set_aside_anomaly_as_set_aside() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    created(&mut k, "f2");
    k.op(OpKind::Unlink, "f1", 1_000, 1_500_000_000, 10, 0);
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    k.op(OpKind::Stat, "f2", 3_000, 3_100, 12, -2);
    tick(&mut k, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let tl = dir.path().join("timeline.json");
    k.write(&kp, Origin::Kernel, finished());
    k.write(&mp, Origin::Model, finished());
    let opts = DiffOptions {
        timeline: Some(tl.clone()),
        ..DiffOptions::default()
    };
    let r = diff_files(&kp, &mp, &opts).expect("diff");
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tl).expect("read")).expect("valid JSON");
    let evs = v["traceEvents"].as_array().expect("traceEvents");
    let marks = |cat: &str| {
        let mut per: BTreeMap<(u64, String), u64> = BTreeMap::new();
        for e in evs.iter().filter(|e| e["ph"] == "i" && e["cat"] == cat) {
            let kind = e["name"].as_str().expect("name");
            let kind = kind.rsplit(' ').next().expect("kind").to_string();
            *per.entry((e["pid"].as_u64().expect("pid"), kind))
                .or_default() += 1;
        }
        per
    };
    let mut counted = BTreeMap::new();
    for (pid, counts) in [(1, &r.anomaly_counts.kernel), (2, &r.anomaly_counts.model)] {
        for (kind, n) in counts {
            counted.insert((pid, kind.name().to_string()), *n);
        }
    }
    assert_eq!(marks("anomaly"), counted, "{}", outcome(&r));
    let enoent = AnomalyKind::SpuriousEnoent.name().to_string();
    assert_eq!(
        marks("set-aside"),
        BTreeMap::from([((1, enoent.clone()), 1), ((2, enoent), 1)])
    );
    for e in evs.iter().filter(|e| e["cat"] == "set-aside") {
        assert_eq!(e["args"]["name"], "f1");
        assert_eq!(e["args"]["set_aside"], "anomaly-before-late-event");
    }
    assert!(evs
        .iter()
        .filter(|e| e["cat"] == "anomaly")
        .all(|e| e["args"]["name"] == "f2"));
}

/// rev3 F4: with `--max-anomalies 1`, two ENOENTs under `d0` take the detail reserve (twice
/// the limit); a real one on `f3` comes after them, undetailed; a late (failed) rmdir of `d0`
/// then sets the first two aside. `f3` is counted and within the limit, and its details are
/// gone for good (context is collected as events pass): the report says so, naming it, in
/// report.json and in the text.
#[test]
fn a_counted_anomaly_left_undetailed_by_set_asides_is_named() {
    let mut k = Trace::default();
    k.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
    created(&mut k, "d0/f1");
    created(&mut k, "d0/f2");
    created(&mut k, "f3");
    k.op(OpKind::Rmdir, "d0", 1_000, 1_500_000_000, 10, -39);
    k.op(OpKind::Stat, "d0/f1", 2_000, 2_100, 12, -2);
    k.op(OpKind::Stat, "d0/f2", 3_000, 3_100, 12, -2);
    k.op(OpKind::Stat, "f3", 4_000, 4_100, 12, -2);
    tick(&mut k, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    k.write(&mp, Origin::Model, finished());
    let opts = DiffOptions {
        max_anomalies: 1,
        ..DiffOptions::default()
    };
    let r = diff_files(&kp, &mp, &opts).expect("diff");
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert_eq!(
        r.anomaly_counts.kernel,
        BTreeMap::from([(AnomalyKind::SpuriousEnoent, 1)]),
        "{}",
        outcome(&r)
    );
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    for side in [Side::Kernel, Side::Model] {
        assert_eq!(
            r.diagnostics.get(side).undetailed_within_limit,
            ["spurious-enoent on f3 at 4000 ns"],
            "{}",
            outcome(&r)
        );
    }
    let mut text = Vec::new();
    r.write_details(&mut text).expect("text");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(
        text.contains(
            "1 kernel anomalies within --max-anomalies are not detailed: their details went to \
             anomalies judged before them and set aside after them"
        ) && text.contains("spurious-enoent on f3 at 4000 ns"),
        "{text}"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(
        json["diagnostics"]["kernel"]["undetailed_within_limit"][0],
        "spurious-enoent on f3 at 4000 ns"
    );
}

/// The same for the cut: the kernel's recording failed half a second after a spurious ENOENT,
/// which is set aside there (`anomaly-near-cut`); the model's finished trace keeps it. Each
/// side's track marks what its side's counts say.
#[test]
fn the_timeline_marks_an_anomaly_near_the_cut_on_its_side_only() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    let t = 1_500_000_000;
    k.op(OpKind::Stat, "f1", t, t + 100, 12, -2);
    tick(&mut k, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let tl = dir.path().join("timeline.json");
    k.write(
        &kp,
        Origin::Kernel,
        Footer {
            end: End::Error("consumer: ring gone".into()),
            ..finished()
        },
    );
    k.write(&mp, Origin::Model, finished());
    let opts = DiffOptions {
        timeline: Some(tl.clone()),
        ..DiffOptions::default()
    };
    let r = diff_files(&kp, &mp, &opts).expect("diff");
    assert!(r.anomaly_counts.kernel.is_empty(), "{}", outcome(&r));
    assert_eq!(
        r.anomaly_counts.model,
        BTreeMap::from([(AnomalyKind::SpuriousEnoent, 1)]),
        "{}",
        outcome(&r)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tl).expect("read")).expect("valid JSON");
    let marks: Vec<(u64, &str, &str)> = v["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["ph"] == "i")
        .map(|e| {
            (
                e["pid"].as_u64().expect("pid"),
                e["name"].as_str().expect("name"),
                e["args"]["set_aside"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            (1, "set aside: spurious-enoent", "anomaly-near-cut"),
            (2, "ANOMALY spurious-enoent", "")
        ]
    );
}

// ---- a cut trace's bound, proved from each thread's last operation (rev3 finding F2)
//
// A thread runs its operations one after another and the file holds them in its order (the
// recorder writes in completion order), so an operation the cut lost began after the end of
// its thread's last operation in the file; a lost probe event follows every event read, so it
// is at most a reorder window behind the newest. Anomalies ending before the earliest of
// these are judged; the others are set aside (`anomaly-near-cut`).

/// Stats of a name never created (negative on both sides), every tenth of a second from
/// `from` to `until` tenths, taken in turn by `tids`: each thread busy to the end.
fn busy(t: &mut Trace, tids: &[u32], from: u64, until: u64) {
    for (n, i) in (from..=until).enumerate() {
        let ts = i * 100_000_000;
        t.op(OpKind::Stat, "g", ts, ts + 100, tids[n % tids.len()], -2);
    }
}

/// `k` as a kernel trace whose header runs `workload` (a workload text, or none), the footer
/// cut off; `m` as the model's, whole, with the same workload.
fn diff_cut(k: &Trace, m: &Trace, workload: Option<String>) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    let header = |h: &mut tracer_analysis::trace::Header| h.workload_toml = workload.clone();
    k.write_with(&kp, Origin::Kernel, finished(), header);
    cut_footer(&kp);
    m.write_with(&mp, Origin::Model, finished(), header);
    diff_files(&kp, &mp, &DiffOptions::default()).expect("diff")
}

fn near_cut(r: &Report) -> Option<&str> {
    r.reasons
        .iter()
        .find(|x| x.kind == ReasonKind::AnomalyNearCut)
        .map(|x| x.message.as_str())
}

/// rev3's F2: R2's case (a stat's ENOENT inside an unlink that the cut lost, 3 s long), but
/// with the model's unlink 100 ns long, like a model running the workload at its own pace (a
/// `replay --against` cannot stamp an operation the cut kernel trace lacks). No side shows an
/// operation as long as the lost one, so the old bound (the longest operation seen) left the
/// ENOENT judged: `anomalies` (exit 1) on a correct kernel. Thread 10's last operation in the
/// file ended at 200 ns; whatever it ran next may explain everything after.
#[test]
fn a_cut_inside_a_long_unlink_is_not_an_anomaly_when_the_model_unlink_is_short() {
    let trace = |unlink_end: u64, cut_at: u64| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "f1", 100, 200, 10, 0);
        t.op(OpKind::Stat, "f1", 300, 400, 12, 0);
        t.op(OpKind::Unlink, "f1", 1_000, unlink_end, 10, 0);
        t.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
        busy(&mut t, &[12, 14], 10, 30);
        t.events.retain(|e| e.ts_end <= cut_at);
        t
    };
    let k = trace(3_000_000_000, 2_500_000_000);
    let m = trace(1_100, u64::MAX);
    let r = diff_cut(&k, &m, Some(threads_workload(1, 2)));
    assert!(
        !has_anomaly(&r, AnomalyKind::SpuriousEnoent),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    let why = near_cut(&r).unwrap_or_default();
    assert!(
        why.contains("200 ns: where thread 10's last operation in the file ended"),
        "{why}"
    );
}

/// The old bound set aside what the trace proves: an unlink of `d0` 3 s long ended long before
/// the cut, yet as the longest operation seen it widened the set-aside zone to 3 s before the
/// end, over a real spurious ENOENT 1.5 s before it. Every thread ran operations up to the cut,
/// so what the cut lost began after them, and the lost probe events a window before the end
/// at the earliest: the ENOENT is judged (the model's stat found the name).
#[test]
fn a_long_writer_that_ended_before_the_cut_does_not_widen_it_over_a_real_anomaly() {
    let trace = |result: i32| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "f1", 100, 200, 10, 0);
        t.op(OpKind::Stat, "f1", 300, 400, 12, 0);
        t.op(OpKind::Mkdir, "d0", 500, 600, 10, 0);
        t.op(OpKind::Rmdir, "d0", 1_000, 3_000_000_000, 10, 0);
        t.op(OpKind::Stat, "f1", 3_500_000_000, 3_500_000_100, 12, result);
        busy(&mut t, &[10, 12, 14], 31, 50);
        t
    };
    let r = diff_cut(&trace(-2), &trace(0), Some(threads_workload(1, 2)));
    assert_eq!(
        r.anomaly_counts.kernel.get(&AnomalyKind::SpuriousEnoent),
        Some(&1),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// A workload thread with no operation in the file may have begun a lost one at any time:
/// with the same cut trace, a real spurious ENOENT 1.5 s before the cut (every thread in the
/// file busy to the end) is judged when the header's workload has exactly the threads seen,
/// and set aside when it has one more that may make or remove names (it could be inside an
/// unlink of `f1` since the start), or when the header says nothing of its threads. One more
/// thread that only stats leaves the ENOENT judged (only a writer explains it) but sets aside
/// the result difference (a lost stat numbers the name's stats differently).
#[test]
fn a_workload_thread_that_never_ran_an_operation_bounds_the_whole_cut_trace() {
    let trace = |result: i32| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "f1", 100, 200, 10, 0);
        t.op(OpKind::Stat, "f1", 300, 400, 12, 0);
        t.op(OpKind::Stat, "f1", 3_500_000_000, 3_500_000_100, 12, result);
        busy(&mut t, &[10, 12, 14], 31, 50);
        t
    };
    let (k, m) = (trace(-2), trace(0));
    let mut wrong = Vec::new();
    for (case, (workload, enoent, differs, why)) in [
        (Some(threads_workload(1, 2)), true, true, None),
        (
            Some(threads_workload(1, 3)),
            true,
            false,
            Some("only 3 of the workload's 4 threads have an operation"),
        ),
        (
            Some(threads_workload(2, 2)),
            false,
            false,
            Some("only 3 of the workload's 4 threads have an operation"),
        ),
        (None, false, false, Some("no readable workload")),
    ]
    .into_iter()
    .enumerate()
    {
        let r = diff_cut(&k, &m, workload);
        let kinds = &r.anomaly_counts.kernel;
        let verdict = if enoent {
            Verdict::Anomalies
        } else {
            Verdict::Inconclusive
        };
        if kinds.contains_key(&AnomalyKind::SpuriousEnoent) != enoent
            || kinds.contains_key(&AnomalyKind::ResultDiffers) != differs
            || r.verdict != verdict
            || why.is_some_and(|w| !near_cut(&r).is_some_and(|m| m.contains(w)))
        {
            wrong.push(format!("case {case}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A result difference pairs the n-th stat of a name on each side: an operation the kernel
/// trace's cut lost (thread 10 went quiet after 200 ns) can number the kernel's stats
/// differently, so a difference past that point is set aside even when it is filed under the
/// model, whose trace is whole. What the model's own history rules out (its stat's ENOENT
/// on a name it made) does not depend on the kernel and stays an anomaly.
#[test]
fn a_result_difference_past_the_other_sides_cut_is_set_aside() {
    let trace = |result: i32| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "f1", 100, 200, 10, 0);
        t.op(OpKind::Stat, "f1", 300, 400, 12, 0);
        t.op(OpKind::Stat, "f1", 2_000, 2_100, 12, result);
        busy(&mut t, &[12, 14], 10, 30);
        t
    };
    let r = diff_cut(&trace(0), &trace(-2), Some(threads_workload(1, 2)));
    let model = &r.anomaly_counts.model;
    assert_eq!(
        model.get(&AnomalyKind::SpuriousEnoent),
        Some(&1),
        "{}",
        outcome(&r)
    );
    assert!(
        !model.contains_key(&AnomalyKind::ResultDiffers),
        "{}",
        outcome(&r)
    );
    let why = r
        .reasons
        .iter()
        .find(|x| x.kind == ReasonKind::AnomalyNearCut && x.side == Some(Side::Model))
        .map(|x| x.message.as_str())
        .unwrap_or_default();
    assert!(
        why.contains("the other trace's operations: 200 ns: where thread 10's"),
        "{}",
        outcome(&r)
    );
}

/// A thread that ran every operation its plan has (the header's workload: the writer runs a
/// create and an unlink, once) lost none to the cut, however early it ended: the readers busy
/// to the end leave a real spurious ENOENT 1.5 s before the cut judged. The control: the
/// writer ran only its create, so it may be inside its unlink since 400 ns, which explains
/// the ENOENT: set aside.
#[test]
fn a_thread_that_ran_its_whole_plan_does_not_bound_the_cut() {
    let trace = |result: i32, whole_plan: bool| {
        let mut t = Trace::default();
        t.op(OpKind::Create, "w", 100, 200, 10, 0);
        if whole_plan {
            t.op(OpKind::Unlink, "w", 300, 400, 10, 0);
        }
        t.op(OpKind::Stat, "f1", 300, 400, 12, 0);
        t.op(OpKind::Stat, "f1", 3_500_000_000, 3_500_000_100, 12, result);
        busy(&mut t, &[12, 14], 31, 50);
        t
    };
    let mut wrong = Vec::new();
    for whole_plan in [true, false] {
        let r = diff_cut(
            &trace(-2, whole_plan),
            &trace(0, whole_plan),
            Some(threads_workload(1, 2)),
        );
        let counted = r
            .anomaly_counts
            .kernel
            .contains_key(&AnomalyKind::SpuriousEnoent);
        if counted != whole_plan {
            wrong.push(format!("whole plan {whole_plan}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---- the owed +2 after `___d_drop`, inside a traced kill (rev4 finding 1,
// ---- docs/notes/session-8/fixseq.md)

/// A kill of `f1`'s dentry 2 by the pruner (thread 20), `___d_drop` then
/// `dentry_unlink_inode`, optionally inside a traced `__dentry_kill`. `invalidate`: whether
/// `__d_drop` bumps `d_seq` by 2 after `___d_drop` (the July 2011 fix, dentry_rcuwalk_barrier).
fn kill_of_f1(t: &mut Trace, container: Option<Probe>, invalidate: bool) {
    let bump = if invalidate { 2 } else { 0 };
    t.op(OpKind::DropCaches, "", 1_000, 1_200, 20, 0);
    if let Some(container) = container {
        t.writer(
            container,
            2,
            "f1",
            (1_010, 1_090),
            20,
            (7, 0),
            (2, 4 + bump),
            flags::HASHED_BEGIN,
        );
    }
    t.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_020, 1_030),
        20,
        (7, 7),
        (2, 2),
        flags::HASHED_BEGIN,
    );
    t.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_040, 1_050),
        20,
        (7, 0),
        (2 + bump, 4 + bump),
        0,
    );
}

/// The July 2011 bug itself: `__d_drop` unhashes without `d_seq`'s invalidate. The +2
/// `___d_drop`'s caller owes is checked at the next writer's entry, also when that writer is
/// nested in a traced kill (`__dentry_kill` on 5.10/6.1/6.12, `dentry_kill` on 7.3: the
/// matrix's attach lists), where its entry is below the kill's exit by design: the owing
/// thread's next writer is held to the bump's own base. Before rev4 finding 1 the check was
/// skipped inside a container and such a kill read clean.
#[test]
fn a_kill_whose_d_drop_skips_the_invalidate_is_caught_inside_a_traced_dentry_kill() {
    let mut got = Vec::new();
    for container in [None, Some(Probe::DentryKill), Some(Probe::DentryKillLocked)] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
        kill_of_f1(&mut k, container, false);
        let r = run(&k, &k.clone());
        got.push((
            container,
            has_anomaly(&r, AnomalyKind::SeqDelta),
            outcome(&r),
        ));
    }
    assert!(
        got.iter().all(|(_, caught, _)| *caught),
        "(container traced, seq-delta found, outcome): {got:#?}"
    );
}

/// The same kill with the invalidate is clean either way (the test above is not about the
/// container itself).
#[test]
fn control_a_correct_kill_inside_a_traced_dentry_kill_is_clean() {
    for container in [None, Some(Probe::DentryKill), Some(Probe::DentryKillLocked)] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
        kill_of_f1(&mut k, container, true);
        let r = run(&k, &k.clone());
        assert_eq!(
            r.verdict,
            Verdict::Clean,
            "container {container:?}: {}",
            outcome(&r)
        );
    }
}

// ---- clear-before-unhash seen by the kill's own probes (rev4 finding 2)

/// A kill of `f1`'s dentry 2 by the pruner (thread 20, inside its `drop_caches`): `kill` is the
/// container's probe, entered with `kill_inode` in `d_inode`; `___d_drop` enters the hashed
/// dentry with `drop_inode`; `dentry_unlink_inode`, when the dentry still has an inode, finds
/// `unlink_inode`. `d_seq` as on 6.1: +2 after the unhash, +2 around the clear.
fn kill_clearing_f1(
    t: &mut Trace,
    kill: Probe,
    kill_inode: u64,
    drop_inode: u64,
    unlink_inode: Option<u64>,
) {
    t.op(OpKind::DropCaches, "", 1_000, 1_200, 20, 0);
    let end = if unlink_inode.is_some() { 6 } else { 4 };
    t.writer(
        kill,
        2,
        "f1",
        (1_010, 1_090),
        20,
        (kill_inode, 0),
        (2, end),
        flags::HASHED_BEGIN,
    );
    t.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_020, 1_030),
        20,
        (drop_inode, drop_inode),
        (2, 2),
        flags::HASHED_BEGIN,
    );
    if let Some(inode) = unlink_inode {
        t.writer(
            Probe::DentryUnlinkInode,
            2,
            "f1",
            (1_040, 1_050),
            20,
            (inode, 0),
            (4, 6),
            0,
        );
    }
}

/// The catalogue's `kill-clear-before-unhash` (kernel-bugs/): `__dentry_kill` sets `d_inode`
/// to NULL while the dentry is hashed, unhashes, then puts the inode back for
/// `dentry_unlink_inode`. The kill's own probes show it on every kill, with no lookup racing
/// the window: `___d_drop` enters a hashed dentry with NULL `d_inode` inside a `__dentry_kill`
/// that entered with an inode (under `d_lock` since its entry: nothing else can clear it), and
/// `dentry_unlink_inode` then finds the inode again. It read clean (the unhash was taken for a
/// negative dentry's death, the clear for a new dentry's). rev4's test asserted only the
/// verdict; the kind is the writer invariant's, once for the kill.
#[test]
fn a_kill_that_clears_the_inode_before_its_unhash_is_seen_by_its_own_probes() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    kill_clearing_f1(&mut k, Probe::DentryKill, 7, 0, Some(7));
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert_eq!(
        r.anomaly_counts.kernel,
        BTreeMap::from([(AnomalyKind::ClearBeforeUnhash, 1)]),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.anomalies[0].kind, AnomalyKind::ClearBeforeUnhash);
    assert_eq!(
        r.anomalies[0].operation, "___d_drop in drop_caches",
        "{:?}",
        r.anomalies[0]
    );
}

/// 6.19's `dentry_kill` (`lock_for_kill` folded in) may drop `d_lock` after its entry, so its
/// entry's inode proves nothing about the unhash; but `dentry_unlink_inode` finding an inode
/// after the unhash in the same kill found `d_inode` NULL on the hashed dentry does, on any
/// generation: the inode was cleared before the unhash and put back.
#[test]
fn an_inode_found_again_after_a_negative_unhash_in_the_same_kill_is_clear_before_unhash() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    kill_clearing_f1(&mut k, Probe::DentryKillLocked, 7, 0, Some(7));
    let r = run(&k, &k.clone());
    assert_eq!(
        r.anomaly_counts.kernel,
        BTreeMap::from([(AnomalyKind::ClearBeforeUnhash, 1)]),
        "{}",
        outcome(&r)
    );
    assert_eq!(
        r.anomalies[0].operation, "dentry_unlink_inode in drop_caches",
        "{:?}",
        r.anomalies[0]
    );
}

/// Correct kills read clean: of a positive dentry (the unhash finds the inode, the clear comes
/// after), of a negative one (never had an inode, or lost it to the name's `d_delete` on the
/// unlinking thread before the kill began), and a 6.19 `dentry_kill` that entered with an
/// inode the name's `d_delete` cleared while `lock_for_kill` had dropped `d_lock` (it then
/// kills a negative dentry: no `dentry_unlink_inode`).
#[test]
fn correct_kills_of_positive_and_negative_dentries_are_not_clear_before_unhash() {
    let mut wrong = Vec::new();
    // What, the kill's probe, the inodes its entry, the unhash and dentry_unlink_inode find,
    // and d_delete's span on the unlinking thread.
    type Case = (
        &'static str,
        Probe,
        u64,
        u64,
        Option<u64>,
        Option<(u64, u64)>,
    );
    let cases: [Case; 4] = [
        ("positive", Probe::DentryKill, 7, 7, Some(7), None),
        ("negative", Probe::DentryKill, 0, 0, None, None),
        (
            "d_delete'd before",
            Probe::DentryKill,
            0,
            0,
            None,
            Some((950, 1_000)),
        ),
        (
            "d_delete'd meanwhile",
            Probe::DentryKillLocked,
            7,
            0,
            None,
            Some((1_012, 1_018)),
        ),
    ];
    for (what, kill, kill_inode, drop_inode, unlink_inode, d_delete) in cases {
        let mut k = Trace::default();
        created(&mut k, "f1");
        kill_clearing_f1(&mut k, kill, kill_inode, drop_inode, unlink_inode);
        if let Some((b, e)) = d_delete {
            // d_delete's clear moves d_seq by 2 (6.1): what enters after it sees 2 more.
            for ev in k.events.iter_mut().filter(|ev| ev.probe != Probe::Op as u8) {
                if ev.ts_begin > e {
                    ev.seq_begin += 2;
                }
                if ev.ts_end > e {
                    ev.seq_end += 2;
                }
            }
            k.op(OpKind::Unlink, "f1", b - 5, e + 1, 10, 0);
            for probe in [Probe::DDelete, Probe::DentryUnlinkInode] {
                k.writer(
                    probe,
                    2,
                    "f1",
                    (b, e),
                    10,
                    (7, 0),
                    (2, 4),
                    flags::HASHED_BEGIN | flags::HASHED_END,
                );
            }
            // The clear inside d_delete.
            if let Some(ev) = k.events.last_mut() {
                ev.ts_begin = b + 1;
                ev.ts_end = e - 1;
            }
        }
        let r = run(&k, &k.clone());
        if has_anomaly(&r, AnomalyKind::ClearBeforeUnhash) || r.verdict == Verdict::Anomalies {
            wrong.push(format!("{what}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---- rule 2's racing writers: an order their results fix (rev4 finding 3,
// docs/notes/session-8/rev4-findings.md)

/// Two overlapping writers of opposite effect leave the name `Racing` (rule 2's "which one
/// took effect last is unknown"), which excuses every NULL inode and ENOENT on the name until
/// a successful observation begins after both. But their results fix the order: `f1`
/// existed before both (a stat that began after its create), the unlink succeeded (it found
/// the file) and the exclusive create succeeded (it found none), so the unlink came first and
/// the create last: `f1` exists. A validated NULL inode and an ENOENT right after both read
/// as `overlaps-writer`: clean.
#[test]
fn overlapping_unlink_and_exclusive_create_of_an_existing_name_leave_it_existing() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Create, "f1", 900, 1_200, 12, 0);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    k.op(OpKind::Stat, "f1", 1_300, 1_400, 11, -2);
    k.lookup(ROOT, 2, "f1", (1_310, 1_320), 11, 0, (2, 2), H | V);
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert_eq!(
        (
            r.anomaly_counts.kernel.get(&AnomalyKind::NullInodePositive),
            r.anomaly_counts.kernel.get(&AnomalyKind::SpuriousEnoent)
        ),
        (Some(&1), Some(&1)),
        "{}",
        outcome(&r)
    );
}

/// The other order: `f1` was missing before both (created, then unlinked), so the exclusive
/// create came first and the unlink last: `f1` is missing, and the NULL inode and ENOENT
/// after both are `negative`.
#[test]
fn overlapping_exclusive_create_and_unlink_of_a_missing_name_leave_it_missing() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Unlink, "f1", 500, 600, 10, 0);
    k.op(OpKind::Create, "f1", 900, 1_200, 12, 0);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    k.op(OpKind::Stat, "f1", 1_300, 1_400, 11, -2);
    k.lookup(ROOT, 2, "f1", (1_310, 1_320), 11, 0, (2, 2), H | V);
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Clean, "{}", outcome(&r));
    assert_eq!(
        r.null_inode_returns.kernel.by_class.get("negative"),
        Some(&1),
        "{}",
        outcome(&r)
    );
}

/// A rename among the racing writers (onto the name: it needs no state) leaves the order
/// unknown: the NULL inode after them is `overlaps-writer`.
#[test]
fn a_rename_racing_an_unlink_still_leaves_the_order_unknown() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    created(&mut k, "g");
    k.op(OpKind::Rename, "g\0f1", 900, 1_200, 12, 0);
    two_paths(&mut k);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    k.op(OpKind::Stat, "f1", 1_300, 1_400, 11, -2);
    k.lookup(ROOT, 2, "f1", (1_310, 1_320), 11, 0, (2, 2), H | V);
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Clean, "{}", outcome(&r));
    assert_eq!(
        r.null_inode_returns.kernel.by_class.get("overlaps-writer"),
        Some(&1),
        "{}",
        outcome(&r)
    );
}

// ---- what a late writer probe can set aside: only what its rule reads (rev4 finding 7)

/// prune-stat's race (a spurious ENOENT and its validated NULL inode on `f1`, which exists)
/// with the pruner's kill of that very dentry around it — what the catalogue's
/// `kill-clear-before-unhash` produces. Rule 4: a kill excuses nothing; the NULL-inode and
/// ENOENT rules read the operations' history only. Yet when the kill's `__dentry_kill` reached
/// the diff after the reorder window (the recorder drained that CPU's ring late), it set
/// both anomalies aside (`Evidence::late` marked every kind for any writer probe on the name
/// or the dentry) and the verdict was `inconclusive`. The same events in time order are the
/// control.
#[test]
fn a_late_kill_probe_does_not_set_aside_a_null_inode_it_cannot_excuse() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::DropCaches, "", 1_900, 2_300, 20, 0);
    // The kill began before the lookup (it cleared d_inode, then waited in its window).
    k.writer(
        Probe::DentryKill,
        2,
        "f1",
        (2_005, 2_060),
        20,
        (7, 0),
        (2, 6),
        flags::HASHED_BEGIN,
    );
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    k.lookup(ROOT, 2, "f1", (2_010, 2_020), 12, 0, (2, 2), H | V);
    tick(&mut k, 2);
    // The model (a correct dcache) found the file.
    let mut m = Trace::default();
    created(&mut m, "f1");
    m.op(OpKind::DropCaches, "", 1_900, 2_300, 20, 0);
    m.op(OpKind::Stat, "f1", 2_000, 2_100, 12, 0);
    m.lookup(ROOT, 2, "f1", (2_010, 2_020), 12, 7, (2, 2), H | V);
    tick(&mut m, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    m.write(&mp, Origin::Model, finished());
    let mut wrong = Vec::new();
    for late in [false, true] {
        if late {
            // The __dentry_kill event moved to the end of the file: 2 s behind the newest key.
            let mut p = load_path(&kp);
            let i = p
                .events
                .iter()
                .position(|e| e.probe == Probe::DentryKill as u8)
                .expect("the kill's event");
            let e = p.events.remove(i);
            p.events.push(e);
            save(&p, &kp);
        }
        let r = diff_files(&kp, &mp, &DiffOptions::default()).expect("diff");
        let kinds = &r.anomaly_counts.kernel;
        if r.verdict != Verdict::Anomalies
            || !kinds.contains_key(&AnomalyKind::SpuriousEnoent)
            || !kinds.contains_key(&AnomalyKind::NullInodePositive)
            || has_reason(&r, ReasonKind::LateEvents) != late
        {
            wrong.push(format!("late {late}: {}", outcome(&r)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A trace file taken apart.
fn load_path(path: &std::path::Path) -> Parts {
    let (header, events, footer) = tracer_analysis::trace::Reader::open(path)
        .expect("open")
        .read_all()
        .expect("read");
    Parts {
        header,
        events,
        footer,
    }
}

// ---- a clean verdict that rests on nothing (rev4 finding 5): reason `nothing-observed`

/// Two finished traces with no event at all (the workload never ran, or the recorder wrote
/// only its header and footer) read `clean`: nothing was traced, nothing compared, and the
/// verdict said no race happened. `cargo xtask detect`'s control cell counts `clean` as its
/// pass, so a control kernel whose recording is empty passed it.
#[test]
fn two_empty_traces_are_not_clean() {
    let k = Trace::default();
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    let kinds: Vec<(Option<Side>, ReasonKind)> =
        r.reasons.iter().map(|x| (x.side, x.kind)).collect();
    assert_eq!(
        kinds,
        [(Some(Side::Kernel), ReasonKind::NothingObserved)],
        "{}",
        outcome(&r)
    );
}

/// A kernel trace whose workload ran (8 stats, all found) but whose `__d_lookup_rcu` probe,
/// attached by the header, recorded nothing (a probe on a copy of the function the walk does
/// not call, a program that never emits): no lookup was seen, so no NULL inode could be,
/// yet the verdict was `clean` — the same answer `lookup-not-traced` exists to refuse. The
/// same trace with one lookup recorded is clean (and a model trace without lookups, as
/// `tracer replay` writes without `--probes`, gives no reason).
#[test]
fn a_kernel_trace_whose_lookup_probe_saw_no_call_is_not_clean() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    for i in 0..8u64 {
        k.op(OpKind::Stat, "f1", 1_000 + i * 100, 1_050 + i * 100, 11, 0);
    }
    let r = run(&k, &k.clone());
    assert_eq!(
        r.events
            .kernel
            .per_probe
            .get("__d_lookup_rcu")
            .copied()
            .unwrap_or(0),
        0
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    let kinds: Vec<(Option<Side>, ReasonKind)> =
        r.reasons.iter().map(|x| (x.side, x.kind)).collect();
    assert_eq!(
        kinds,
        [(Some(Side::Kernel), ReasonKind::NothingObserved)],
        "{}",
        outcome(&r)
    );
    let m = k.clone();
    k.lookup(ROOT, 2, "f1", (1_010, 1_020), 11, 7, (2, 2), H | V);
    let r = run(&k, &m);
    assert_eq!(r.verdict, Verdict::Clean, "{}", outcome(&r));
}

// ---- clear-before-unhash: only the unlinking thread's d_delete excuses a hashed clear (rev4
// ---- finding 4)

/// An inode clear on a hashed dentry is legitimate only as the name's own `d_delete`, which
/// runs in the unlinking thread (`vfs_unlink`). The rule excused the clear when an unlink of
/// the name by *any* thread overlapped it: a kill path (the pruner, thread 20, inside its
/// `drop_caches`) clearing `f1`'s hashed dentry while thread 10 unlinks `f1` read clean. The
/// control: the same clear on thread 10, inside its unlink, is `d_delete`'s.
#[test]
fn a_hashed_clear_on_another_thread_than_the_unlink_is_an_anomaly() {
    let trace = |clear_tid: u32| {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
        k.op(OpKind::Unlink, "f1", 1_000, 1_300, 10, 0);
        k.op(OpKind::DropCaches, "", 1_000, 1_200, 20, 0);
        k.writer(
            Probe::DentryUnlinkInode,
            2,
            "f1",
            (1_040, 1_060),
            clear_tid,
            (7, 0),
            (2, 4),
            flags::HASHED_BEGIN | flags::HASHED_END,
        );
        k
    };
    let k = trace(20);
    let r = run(&k, &k.clone());
    assert!(
        has_anomaly(&r, AnomalyKind::ClearBeforeUnhash),
        "{}",
        outcome(&r)
    );
    let a = &r.anomalies[0];
    assert!(
        a.why.contains("tid 10"),
        "names the unlinking thread: {a:?}"
    );
    let k = trace(10);
    let r = run(&k, &k.clone());
    assert!(
        !has_anomaly(&r, AnomalyKind::ClearBeforeUnhash),
        "the unlinking thread's d_delete: {}",
        outcome(&r)
    );
    assert_eq!(r.diagnostics.kernel.d_delete_clears, 1, "{}", outcome(&r));
}

// ---- a validated RCU lookup returning a dentry after its unhash's invalidate (rev4
// ---- finding 2b, docs/notes/session-8/fixseq.md)

/// The catalogue's `lookup-no-unhashed-check`: `__d_lookup_rcu` without its `d_unhashed()`
/// skip. In a correct kernel a lookup reads `d_seq` before it checks `d_unhashed`, and the
/// unhash writes `pprev = NULL` before `__d_drop`'s invalidate (smp_wmb): a lookup whose
/// `*seqp` already holds the invalidated value (here 4, after `___d_drop` left 2 and its
/// caller added 2) saw the dentry unhashed and must have skipped it. This one returned it,
/// validated, unhashed at return: the bug's own signature, on a positive dentry (no NULL
/// inode, no ENOENT yet). The diff reads it clean; the step accepts this bug only through the
/// symptoms that need the later inode clear to land in its window. Now `found-unhashed`
/// (rev4 finding 2b); the control below is the legitimate window.
#[test]
fn a_lookup_returning_a_dentry_after_its_unhash_is_an_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.op(OpKind::DropCaches, "", 1_000, 1_200, 20, 0);
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_010, 1_020),
        20,
        (7, 7),
        (2, 2),
        flags::HASHED_BEGIN,
    );
    // Between the unhash's invalidate (d_seq 4) and the inode clear: found through the hash
    // chain, unhashed, d_seq 4 read and unchanged at return.
    k.op(OpKind::Stat, "f1", 1_040, 1_080, 12, 0);
    k.lookup(ROOT, 2, "f1", (1_050, 1_060), 12, 7, (4, 4), V);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_100, 1_110),
        20,
        (7, 0),
        (4, 6),
        0,
    );
    let r = run(&k, &k.clone());
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert_eq!(
        r.anomaly_counts.kernel.keys().collect::<Vec<_>>(),
        [&AnomalyKind::FoundUnhashed],
        "{}",
        outcome(&r)
    );
}

/// The legitimate window of the same kill: a lookup that read `d_seq` before the invalidate
/// (2, the value `___d_drop` left) may find the dentry hashed, and be unhashed and still
/// validated when it returns, between `pprev = NULL` and the invalidate. A lookup after a
/// rehash (a traced `__d_move` that found the dentry hashed at exit) is no anomaly either,
/// whatever it finds at its return.
#[test]
fn control_a_lookup_that_read_d_seq_before_the_invalidate_is_clean() {
    for rehashed in [false, true] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
        k.op(OpKind::DropCaches, "", 1_000, 1_200, 20, 0);
        k.writer(
            Probe::DDropInner,
            2,
            "f1",
            (1_010, 1_020),
            20,
            (7, 7),
            (2, 2),
            flags::HASHED_BEGIN,
        );
        let seqp = if rehashed {
            k.writer(
                Probe::DMove,
                2,
                "f1",
                (1_025, 1_035),
                20,
                (7, 7),
                (4, 6),
                flags::HASHED_END,
            );
            6
        } else {
            2
        };
        k.op(OpKind::Stat, "f1", 1_040, 1_080, 12, 0);
        k.lookup(ROOT, 2, "f1", (1_050, 1_060), 12, 7, (seqp, seqp), V);
        let r = run(&k, &k.clone());
        assert!(
            !has_anomaly(&r, AnomalyKind::FoundUnhashed),
            "rehashed {rehashed}: {}",
            outcome(&r)
        );
    }
}

// ---- a footer must count what its events need (rev6 finding 4, docs/notes/session-9/
// ---- fixskip.md): a kernel trace's footer without `hits` for a probe with events, or without
// ---- `last_cpu_seq`, vouches for nothing, and a cut tail would hide behind it

/// A kernel trace whose footer counts nothing (no hits, no drops, no last numbers): the
/// events after CPU 1's 600th are gone and nothing in the file can show it.
#[test]
fn a_kernel_footer_without_counters_does_not_hide_a_cut_tail() {
    let m = load("prune-stat.model.trace");
    let mut k = load("prune-stat.kernel.trace");
    k.events
        .retain(|e| e.probe == Probe::Op as u8 || e.cpu != 1 || e.cpu_seq <= 600);
    k.footer.hits.clear();
    k.footer.drops.clear();
    k.footer.last_cpu_seq.clear();
    let r = diff_parts(&k, &m);
    assert_ne!(r.verdict, Verdict::Clean, "{}", outcome(&r));
}

/// Each of the two missing counters alone gives its reason: hits missing for a probe with
/// events (`hits-mismatch`), the last numbers missing (`footer-disagrees`, one per CPU).
#[test]
fn each_missing_footer_counter_is_a_reason() {
    let m = load("prune-stat.model.trace");
    let k = load("prune-stat.kernel.trace");
    assert_eq!(diff_parts(&k, &m).verdict, Verdict::Clean, "the control");
    let mut no_hits = k.clone();
    no_hits
        .footer
        .hits
        .remove(Probe::DentryUnlinkInode.symbol());
    let r = diff_parts(&no_hits, &m);
    let named = messages(&r, ReasonKind::HitsMismatch);
    assert!(
        named.len() == 1 && named[0].contains("dentry_unlink_inode"),
        "{}",
        outcome(&r)
    );
    let mut no_last = k.clone();
    no_last.footer.last_cpu_seq.clear();
    let r = diff_parts(&no_last, &m);
    let cpus = k.footer.last_cpu_seq.len();
    assert_eq!(
        r.reasons
            .iter()
            .filter(|x| x.kind == ReasonKind::FooterDisagrees)
            .count(),
        cpus,
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

// ---- anomalies resting on a probe whose entries the kernel skipped (rev6 finding 3,
// ---- docs/notes/session-9/fixskip.md): one event may join two calls, so they are set aside
// ---- (`anomaly-on-skipped-probe`), not counted

/// Thread 12's stat of `f1` then of `f2` (ENOENT), the kernel's `__d_lookup_rcu` calls of
/// both, and, when `f1_lookup` is given, the one event a skipped fexit and a skipped fentry
/// leave of them: the f1 call's entry half (name, begin) with the f2 call's exit half (the
/// dentry and inode given).
fn skipped_pair(f1_lookup: Option<(u64, u64)>) -> Trace {
    let mut t = Trace::default();
    created(&mut t, "f1");
    t.lookup(ROOT, 2, "f1", (310, 320), 11, 7, (2, 2), H | V);
    t.op(OpKind::Stat, "f1", 1_000, 1_100, 12, 0);
    t.op(OpKind::Stat, "f2", 2_000, 2_100, 12, -2);
    if let Some((dentry, inode)) = f1_lookup {
        // Entry of the f1 call, exit of the f2 call.
        t.lookup(ROOT, dentry, "f1", (1_010, 2_020), 12, inode, (2, 2), H | V);
    }
    t
}

/// How a kernel trace says entries of a probe were skipped.
#[derive(Clone, Copy, Debug)]
enum SkipsIn {
    /// Not at all: nothing skipped.
    Nothing,
    /// The footer's `skipped_entries` / `skipped_exits`.
    Footer,
    /// The header notes recorders before the footer fields wrote.
    OldNotes,
}

/// Writes `t` as a kernel trace whose `probe` had one entry and one exit skipped, counted as
/// a recording counts them (the skipped entry a hit and a drop), reported as `how` says.
fn write_skipped(t: &Trace, p: &std::path::Path, probe: Probe, how: SkipsIn) {
    let mut footer = finished();
    footer.last_cpu_seq = BTreeMap::from([(0, 2)]);
    let sym = probe.symbol().to_string();
    let skipped = u64::from(!matches!(how, SkipsIn::Nothing));
    let lookups = Probe::DLookupRcu.symbol().to_string();
    footer.hits.insert(lookups, 2);
    *footer.hits.entry(sym.clone()).or_insert(0) += skipped;
    footer.drops.insert(sym.clone(), skipped);
    if let SkipsIn::Footer = how {
        footer.skipped_entries.insert(sym.clone(), 1);
        footer.skipped_exits.insert(sym.clone(), 1);
    }
    t.write_with(p, Origin::Kernel, footer, |h| {
        if let SkipsIn::OldNotes = how {
            h.notes
                .insert("recursion_misses_entry".into(), format!("{sym} 1"));
            h.notes
                .insert("recursion_misses_exit".into(), format!("{sym} 1"));
        }
    });
}

fn diff_skipped(probe: Probe, how: SkipsIn) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (k, m) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    skipped_pair(None).write(&m, Origin::Model, finished());
    write_skipped(&skipped_pair(Some((3, 0))), &k, probe, how);
    diff_files(&k, &m, &DiffOptions::default()).expect("diff")
}

/// fentry family, a thread's walk reusing one `struct qstr` (`nd->last`) under one parent:
/// the fexit of its lookup of `f1` was skipped by the kernel's recursion guard (slot left
/// armed), then the fentry of its lookup of `f2` was skipped too. `f2`'s fexit meets `f1`'s
/// slot as its own (same qstr pointer, same parent: `Call::meets`) and emits one event with
/// `f1`'s entry half (name, `ts_begin`, number) and `f2`'s result, a validated negative
/// dentry. The counts agree (one hit and one event for the first call, the skipped entry
/// counted as a hit and a drop by `finish_trace`), and the fabricated event reads as a
/// validated NULL inode for `f1`, which exists: exit 1 on a lookup that never happened. With
/// entries of a probe skipped, its events' pairing cannot be trusted; an anomaly resting on
/// them must be set aside with a reason, not reported. Both ways a recording says so: the
/// footer's counts, and the header notes of recorders before them.
#[test]
fn an_anomaly_on_a_probe_whose_entries_were_skipped_is_not_reported() {
    let control = diff_skipped(Probe::DLookupRcu, SkipsIn::Nothing);
    assert!(
        has_anomaly(&control, AnomalyKind::NullInodePositive),
        "the event itself reads as the anomaly: {}",
        outcome(&control)
    );
    for how in [SkipsIn::Footer, SkipsIn::OldNotes] {
        let r = diff_skipped(Probe::DLookupRcu, how);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{how:?}: {}", outcome(&r));
        let why = r
            .reasons
            .iter()
            .find(|x| x.kind == ReasonKind::AnomalyOnSkippedProbe)
            .unwrap_or_else(|| panic!("{how:?}: {}", outcome(&r)));
        assert!(
            why.message.contains("null-inode-positive")
                && why.message.contains("__d_lookup_rcu (1 skipped)"),
            "{how:?}: {why}"
        );
        assert!(has_reason(&r, ReasonKind::Lost), "{how:?}: {}", outcome(&r));
        assert_eq!(r.null_inode_returns.kernel.anomalous, 0, "{how:?}");
    }
}

/// Only what reads the skipped probe's events is set aside: the trace has no ref-walk
/// `__d_lookup` event, so a skip of it touched neither the RCU lookup judged nor the names
/// above it, and the anomaly stands, with the loss as a reason beside it.
#[test]
fn a_skip_of_another_probe_sets_aside_nothing_it_does_not_read() {
    let r = diff_skipped(Probe::DLookup, SkipsIn::Footer);
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert!(has_anomaly(&r, AnomalyKind::NullInodePositive));
    assert!(
        !has_reason(&r, ReasonKind::AnomalyOnSkippedProbe),
        "{}",
        outcome(&r)
    );
    assert!(has_reason(&r, ReasonKind::Lost));
}

// ---- a skip sets aside only what rests on the skipped probe's events (rev7 finding 4,
// ---- docs/notes/session-10/verdict.md): its own events, the records of the dentries it had
// ---- events on, the names at or below its events' names

/// Diffs `k` as a kernel trace whose footer says the kernel skipped one entry of each of
/// `skipped`, against a model of its operations alone.
fn run_skipped(k: &Trace, skipped: &[Probe]) -> Report {
    let mut footer = finished();
    for p in skipped {
        footer.skipped_entries.insert(p.symbol().into(), 1);
    }
    diff_against_its_ops(k, footer)
}

/// Diffs `k` as a kernel trace ending in `footer` against a model of its operations alone.
fn diff_against_its_ops(k: &Trace, footer: Footer) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, footer);
    let ops = Trace {
        events: k
            .events
            .iter()
            .filter(|e| is(e, Probe::Op))
            .copied()
            .collect(),
    };
    ops.write(&mp, Origin::Model, finished());
    diff_files(&kp, &mp, &DiffOptions::default()).expect("diff")
}

/// A finished footer whose hits are, per probe, its events in `k`.
fn footer_counting(k: &Trace) -> Footer {
    let mut footer = finished();
    for p in Probe::KERNEL {
        let n = k.events.iter().filter(|e| is(e, p)).count() as u64;
        if n > 0 {
            footer.hits.insert(p.symbol().into(), n);
        }
    }
    footer
}

/// `f1`'s clear (dentry 2) leaves `d_seq` 4, the pruner's unhash of the same dentry enters
/// at 2 on the same CPU: `seq-decreased` (as in
/// `d_seq_going_backwards_between_writers_is_not_clean`). `f1` and `f2` were created with a
/// traced `d_instantiate`, of dentry `instantiated` (2: `f1`'s, 3: `f2`'s).
fn decrease_after_instantiate(instantiated: u64) -> Trace {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Create, "f2", 500, 600, 10, 0);
    let name = if instantiated == 2 { "f1" } else { "f2" };
    let at = if instantiated == 2 { 150 } else { 550 };
    k.writer(
        Probe::DInstantiate,
        instantiated,
        name,
        (at, at + 10),
        10,
        (0, 7),
        (0, 2),
        H,
    );
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_040, 1_060),
        10,
        (7, 0),
        (2, 4),
        H,
    );
    k.op(OpKind::DropCaches, "", 5_000, 5_200, 20, 0);
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (5_010, 5_020),
        20,
        (0, 0),
        (2, 2),
        H,
    );
    k
}

/// The reason that sets anomalies aside for a skip, with what it says.
fn skip_reason(r: &Report) -> String {
    r.reasons
        .iter()
        .find(|x| x.kind == ReasonKind::AnomalyOnSkippedProbe)
        .map(|x| x.message.clone())
        .unwrap_or_else(|| panic!("no anomaly-on-skipped-probe: {}", outcome(r)))
}

/// A skipped `dentry_unlink_inode` may have joined the clear the decrease is held against
/// (its exit half, the 4, from another call): set aside. A skipped `d_instantiate` whose one
/// event is on the same dentry, before the judgment, may have fed its record: set aside too.
#[test]
fn a_seq_decreased_on_a_dentry_a_skipped_probe_had_events_on_is_set_aside() {
    for (skipped, instantiated) in [(Probe::DentryUnlinkInode, 3), (Probe::DInstantiate, 2)] {
        let k = decrease_after_instantiate(instantiated);
        let control = run_skipped(&k, &[]);
        assert_eq!(
            control.anomaly_counts.kernel.keys().collect::<Vec<_>>(),
            [&AnomalyKind::SeqDecreased],
            "{}",
            outcome(&control)
        );
        let r = run_skipped(&k, &[skipped]);
        assert_eq!(
            r.verdict,
            Verdict::Inconclusive,
            "{skipped:?}: {}",
            outcome(&r)
        );
        assert!(r.anomaly_counts.kernel.is_empty(), "{}", outcome(&r));
        let why = skip_reason(&r);
        assert!(
            why.contains("1 seq-decreased") && why.contains(skipped.symbol()),
            "{why}"
        );
    }
}

/// rev7 finding 4: one skipped `d_instantiate` entry set aside every `d_seq` anomaly of the
/// trace. Its only event here is `f2`'s, another dentry and name: nothing the decrease on
/// `f1`'s dentry read. Counted, the verdict `anomalies`; the skipped call a `Lost` reason
/// beside it (the footer's drops do not count it, so the skip itself is said).
#[test]
fn a_seq_decreased_on_a_dentry_no_skipped_probe_touched_is_counted() {
    let r = run_skipped(&decrease_after_instantiate(3), &[Probe::DInstantiate]);
    assert!(has_reason(&r, ReasonKind::Lost), "{}", outcome(&r));
    assert_eq!(
        r.anomaly_counts.kernel.get(&AnomalyKind::SeqDecreased),
        Some(&1),
        "{}",
        outcome(&r)
    );
    assert!(
        !has_reason(&r, ReasonKind::AnomalyOnSkippedProbe),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// Thread 12 stats `d/f` (a ref-walk `__d_lookup` of `d` whose exit the kernel skipped), then
/// `e/f`, which does not exist (the `__d_lookup` of `e` skipped its entry): the second call's
/// exit takes the first call's slot and emits one event, `d` (name, begin) returning `e`'s
/// dentry 5. The RCU lookup of `f` under dentry 5 then returns a validated negative dentry,
/// which the diff names `d/f`: a name that exists, a NULL inode, exit 1 on `e/f`'s correct
/// miss. `named_by`: the probe of the event naming dentry 5.
fn miss_under_a_joined_directory(named_by: Probe) -> Trace {
    let mut k = Trace::default();
    k.op(OpKind::Mkdir, "d", 100, 200, 10, 0);
    k.op(OpKind::Mkdir, "e", 210, 220, 10, 0);
    k.op(OpKind::Create, "d/f", 230, 240, 10, 0);
    k.op(OpKind::Stat, "d/f", 300, 400, 11, 0);
    k.op(OpKind::Stat, "d/f", 1_000, 1_100, 12, 0);
    k.op(OpKind::Stat, "e/f", 2_000, 2_100, 12, -2);
    k.lookup(ROOT, 5, "d", (1_010, 2_020), 12, 50, (2, 2), H | V);
    if let Some(e) = k.events.last_mut() {
        e.probe = named_by as u8;
    }
    k.lookup(5, 6, "f", (2_030, 2_040), 12, 0, (2, 2), H | V);
    k
}

/// A ref-walk lookup binds the dentry it returned to the name its entry read: joined, it names
/// another directory's dentry, and a NULL inode below it is judged at the wrong name. The old
/// rule let a skipped `__d_lookup` set aside only the `d_seq` kinds: the fabricated
/// `null-inode-positive` counted. Now set aside, as a NULL inode below any name a skipped
/// probe's event bound.
#[test]
fn a_null_inode_below_a_name_a_skipped_lookup_bound_is_set_aside() {
    let k = miss_under_a_joined_directory(Probe::DLookup);
    let control = run_skipped(&k, &[]);
    assert!(
        has_anomaly(&control, AnomalyKind::NullInodePositive),
        "the joined event reads as the anomaly: {}",
        outcome(&control)
    );
    let r = run_skipped(&k, &[Probe::DLookup]);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert_eq!(r.null_inode_returns.kernel.anomalous, 0, "{}", outcome(&r));
    let why = skip_reason(&r);
    assert!(
        why.contains("null-inode-positive") && why.contains("__d_lookup (1 skipped)"),
        "{why}"
    );
    // The directory named by a lookup of a probe not skipped: nothing joined it, the
    // anomaly stands.
    let r = run_skipped(
        &miss_under_a_joined_directory(Probe::DLookupRcu),
        &[Probe::DLookup],
    );
    assert!(
        has_anomaly(&r, AnomalyKind::NullInodePositive),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

// ---- what the recording could not see shows in the verdict (rev6 finding 1): a writer that
// ---- is neither traced nor inside traced functions holding every call of it is a reason,
// ---- `writer-not-observed`

/// Numbers the kernel probe events of `p` again per CPU, 1, 2, 3, ... in their old order, and
/// sets the footer's last numbers to match: what the probes stamp when the removed events'
/// calls never reached a program.
fn renumber(p: &mut Parts) {
    let mut order: Vec<usize> = (0..p.events.len())
        .filter(|i| p.events[*i].probe != Probe::Op as u8)
        .collect();
    order.sort_by_key(|i| (p.events[*i].cpu, p.events[*i].cpu_seq));
    let mut next = BTreeMap::<u32, u64>::new();
    for i in order {
        let e = &mut p.events[i];
        let n = next.entry(e.cpu).or_default();
        *n += 1;
        e.cpu_seq = *n as u32;
    }
    p.footer.last_cpu_seq = next;
}

/// The fixture with `probe`'s events gone and its target marked as `attach` says.
fn without(probe: Probe, attach: Attachment) -> Parts {
    let mut k = load("prune-stat.kernel.trace");
    k.events.retain(|e| e.probe != probe as u8);
    k.footer.hits.remove(probe.symbol());
    k.footer.drops.remove(probe.symbol());
    k.header.attach.insert(probe.symbol().into(), attach);
    renumber(&mut k);
    k
}

/// A global writer whose probe the kernel refused (its fentry and kprobe both failed for a
/// reason other than inlining): `tracer record` goes on without it, and the trace holds none
/// of its calls. The unlinks' inode clears went unseen; the diff only noted the target. The
/// refusal is typed in the header (`refused: why`; the review wrote the pre-session-9
/// `unavailable: why`, which reads back as refused when its words are not the old recorder's
/// absence sentences). This header lists none of `dentry_unlink_inode`'s callers (`d_delete`,
/// `__dentry_kill`: the fixture predates them as targets), so nothing traced holds its calls.
#[test]
fn a_writer_that_failed_to_attach_leaves_the_trace_not_clean() {
    let m = load("prune-stat.model.trace");
    let mut clean = Vec::new();
    for probe in [Probe::DentryUnlinkInode, Probe::DDropInner] {
        let k = without(
            probe,
            Attachment::Refused(
                "fentry: attaching failed: Device or resource busy; kprobe: attaching failed: \
                 Device or resource busy"
                    .into(),
            ),
        );
        let r = diff_parts(&k, &m);
        if r.verdict == Verdict::Clean {
            clean.push(format!("{}: {}", probe.symbol(), outcome(&r)));
        }
        assert!(
            r.reasons
                .iter()
                .any(|x| x.kind == ReasonKind::WriterNotObserved
                    && x.message.contains(probe.symbol())),
            "{}: {}",
            probe.symbol(),
            outcome(&r)
        );
    }
    assert!(clean.is_empty(), "{clean:#?}");
}

/// The same refusal where the header lists its only callers as traced is not a reason: Debian
/// 5.10, 6.1 and 6.12 refuse `__d_add` (fentry EBUSY or no BTF FUNC, kprobe EINVAL; it is in
/// kallsyms: 25 of session 8's 31 real kernel traces), a static function
/// called only from `d_add` and `d_splice_alias` (6.1's fs/dcache.c), both traced: their
/// events carry what it did, as on a kernel that inlines it. The fixture's verdict stands.
#[test]
fn a_refused_static_writer_inside_traced_callers_leaves_the_verdict_alone() {
    let m = load("prune-stat.model.trace");
    let before = diff_parts(&load("prune-stat.kernel.trace"), &m);
    let mut k = load("prune-stat.kernel.trace");
    for caller in [Probe::DAdd, Probe::DSpliceAlias] {
        k.header
            .attach
            .insert(caller.symbol().into(), Attachment::Fentry);
    }
    k.header.attach.insert(
        Probe::DAddInner.symbol().into(),
        Attachment::Refused("fentry: EBUSY; kprobe: EINVAL".into()),
    );
    let r = diff_parts(&k, &m);
    assert!(
        !has_reason(&r, ReasonKind::WriterNotObserved),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, before.verdict, "{}", outcome(&r));
    // One of them refused as well: the calls it holds are unseen.
    k.header.attach.insert(
        Probe::DSpliceAlias.symbol().into(),
        Attachment::Refused("fentry: EBUSY; kprobe: EINVAL".into()),
    );
    let r = diff_parts(&k, &m);
    assert!(
        has_reason(&r, ReasonKind::WriterNotObserved),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
}

/// rev7 finding 6: the callers' lists were 6.1's, but 4.18's `d_instantiate_no_diralias`
/// (fuse's instantiation) calls `__d_instantiate` too, with no probe, and so does 6.19's
/// `d_make_persistent` (tmpfs's creates). There a refused `__d_instantiate` with
/// `d_instantiate` and `d_instantiate_new` traced read "every call of it is in" them; it is
/// `writer-not-observed`, naming that caller. On 4.19 (the same generation's `d_seq` rules as
/// 4.18), which removed the first, and on 6.18, before the second, the same header is
/// observed through them.
#[test]
fn a_refused_d_instantiate_with_an_unprobed_caller_on_its_release_is_not_observed() {
    let m = load("prune-stat.model.trace");
    let mut k = load("prune-stat.kernel.trace");
    for caller in [Probe::DInstantiate, Probe::DInstantiateNew] {
        k.header
            .attach
            .insert(caller.symbol().into(), Attachment::Fentry);
    }
    k.header.attach.insert(
        Probe::DInstantiateInner.symbol().into(),
        Attachment::Refused("fentry: EBUSY; kprobe: EINVAL".into()),
    );
    for release in ["4.19.0", "6.18.2"] {
        k.header.kernel_release = release.into();
        let r = diff_parts(&k, &m);
        assert!(
            !has_reason(&r, ReasonKind::WriterNotObserved),
            "{release}: {}",
            outcome(&r)
        );
    }
    for (release, caller) in [
        ("4.18.0", "d_instantiate_no_diralias"),
        ("6.19.0", "d_make_persistent"),
    ] {
        k.header.kernel_release = release.into();
        let r = diff_parts(&k, &m);
        let why = r
            .reasons
            .iter()
            .find(|x| x.kind == ReasonKind::WriterNotObserved)
            .unwrap_or_else(|| panic!("{release}: {}", outcome(&r)));
        assert!(
            why.message.contains("__d_instantiate") && why.message.contains(caller),
            "{release}: {why}"
        );
        assert_ne!(r.verdict, Verdict::Clean, "{release}: {}", outcome(&r));
    }
}

// ---- a call the kernel can drop without counting it shows in the verdict (rev6 finding 2):
// ---- kprobe programs on a preemptive kernel before 6.7, `kprobe-skips-uncounted`

/// Before 6.7 `trace_call_bpf` skips a kprobe program while `bpf_prog_active` is raised on
/// the CPU and counts nothing; a BPF map syscall of another task raises it preemptibly
/// (migration disabled only), so on a preemptive kernel a lookup can be lost with no drop, no
/// hole and no hits mismatch. `auto` picks fentry/fexit there; a recording forced onto kprobes
/// says so in its header, and that trace cannot read clean. Counted skips, or a header without
/// the word (a recorder before session 9), leave the verdict as it was.
#[test]
fn kprobes_whose_skips_go_uncounted_leave_the_trace_not_clean() {
    use tracer_analysis::trace::SkipCounting;
    let m = load("prune-stat.model.trace");
    let before = diff_parts(&load("prune-stat.kernel.trace"), &m);
    let mut k = load("prune-stat.kernel.trace");
    k.header.skip_counting = Some(SkipCounting::Counted);
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, before.verdict, "{}", outcome(&r));
    assert!(!has_reason(&r, ReasonKind::KprobeSkipsUncounted));
    k.header.skip_counting = Some(SkipCounting::KprobeUncounted);
    let r = diff_parts(&k, &m);
    assert!(
        has_reason(&r, ReasonKind::KprobeSkipsUncounted),
        "{}",
        outcome(&r)
    );
    assert_ne!(r.verdict, Verdict::Clean, "{}", outcome(&r));
}

// ---- an anomaly judged FROM a late event: the `d_seq` rules and `clear-before-unhash` hold
// an event against its dentry's state as processed, which assumes time order (session 9's
// 3.0-rc7 pair: a model `__dentry_kill` preempted 39 ms arrived after later events of its
// dentry, and its entry's `d_seq` read below what they had seen)

/// `f1`'s d_delete clear (`d_seq` 2 → 4, overlapping the unlink on its thread) and two lookups
/// reading 4 at 1.2 and 1.3 s. With `late`, the clear enters at 1 µs and is preempted after
/// its writes until 2.5 s: its event (written at its end) reaches the
/// file more than the reorder window (1 s) after the lookups, which were processed before
/// it. Without it, the clear runs at 1.4 s, after
/// the lookups, and arrives in its order: the count went from 4 back to 2.
fn clear_after_lookups(late: bool) -> Trace {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    for b in [1_200_000_000, 1_300_000_000] {
        k.lookup(ROOT, 2, "f1", (b, b + 10), 11, 7, (4, 4), H | V);
    }
    let (b, e) = if late {
        (1_000, 2_500_000_000)
    } else {
        (1_400_000_000, 1_400_000_100)
    };
    // Late, the unlink ends first: arriving after the clear, it would set aside as
    // `anomaly-before-late-event` what was judged from the clear.
    let unlink_end = if late { e - 100_000_000 } else { e + 100 };
    k.op(OpKind::Unlink, "f1", b, unlink_end, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (b + 40, e),
        10,
        (7, 0),
        (2, 4),
        H,
    );
    tick(&mut k, 3);
    k
}

/// Control: the clear stamped after the lookups and arriving in order entered at a `d_seq`
/// below what they read, on the same CPU: a counted `seq-decreased`, the verdict `anomalies`.
#[test]
fn control_a_d_seq_decrease_in_order_is_a_counted_seq_decreased() {
    let k = clear_after_lookups(false);
    let r = run(&k, &k.clone());
    assert!(
        !has_reason(&r, ReasonKind::LateEvents),
        "nothing is late here: {}",
        outcome(&r)
    );
    assert_eq!(
        r.anomaly_counts.kernel.get(&AnomalyKind::SeqDecreased),
        Some(&1),
        "{}",
        outcome(&r)
    );
    assert!(
        !has_reason(&r, ReasonKind::AnomalyFromLateEvent),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// The same values with the clear stamped before the lookups but arriving after them: its
/// entry's 2 was held against the 4 they read, as if they came first. Nothing in the trace
/// shows the count going back; counted, it made `anomalies` of an arrival order. Set aside
/// (`anomaly-from-late-event`, naming it), never counted, never dropped silently.
#[test]
fn a_d_seq_decrease_judged_from_a_late_event_is_set_aside() {
    let k = clear_after_lookups(true);
    let r = run(&k, &k.clone());
    assert!(
        has_reason(&r, ReasonKind::LateEvents),
        "the clear must be late: {}",
        outcome(&r)
    );
    assert!(r.anomalies.is_empty(), "{}", outcome(&r));
    assert!(r.anomaly_counts.kernel.is_empty(), "{}", outcome(&r));
    let reason = r
        .reasons
        .iter()
        .find(|x| x.kind == ReasonKind::AnomalyFromLateEvent && x.side == Some(Side::Kernel))
        .unwrap_or_else(|| panic!("no anomaly-from-late-event: {}", outcome(&r)));
    assert!(
        reason.message.contains("1 seq-decreased") && reason.message.contains("f1"),
        "{}",
        reason.message
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
}

// ---- rev8 (session 10): a footer naming skipped entries is a loss by itself

/// A kernel footer that says `__d_lookup_rcu` had an entry skipped (the skipped call's event is
/// missing) but whose `drops` do not count it (a recorder's footer always does, since a9fe622;
/// a damaged or hand-made one may not): nothing else in the trace is wrong, and no anomaly is
/// judged. The skipped call is a lost event all the same, so the trace must not read clean.
#[test]
fn rev8_a_skipped_entry_alone_is_not_clean() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (310, 320), 11, 7, (2, 2), H | V);
    k.op(OpKind::Stat, "f1", 300, 400, 11, 0);
    let control = run_skipped(&k, &[]);
    assert_eq!(control.verdict, Verdict::Clean, "{}", outcome(&control));
    let r = run_skipped(&k, &[Probe::DLookupRcu]);
    assert_ne!(r.verdict, Verdict::Clean, "{}", outcome(&r));
}

/// `f1` (dentry 2) is unlinked (its inode cleared while hashed, d_seq 2 -> 4), then killed by
/// a `drop_caches` (`dentry_kill`), and `f1` is created again at the same address: a new
/// dentry, d_seq from 0. `kill`: whether the kill's event is in the trace.
fn recreated_at_the_same_address(kill: bool) -> Trace {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (310, 320), 11, 7, (2, 2), H | V);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_040, 1_060),
        10,
        (7, 0),
        (2, 4),
        H,
    );
    k.op(OpKind::DropCaches, "", 5_000, 5_200, 20, 0);
    if kill {
        k.writer(
            Probe::DentryKill,
            2,
            "f1",
            (5_010, 5_020),
            20,
            (0, 0),
            (4, 6),
            H,
        );
    }
    k.op(OpKind::Create, "f1", 6_000, 6_100, 10, 0);
    k.writer(
        Probe::DInstantiate,
        2,
        "f1",
        (6_040, 6_050),
        10,
        (0, 8),
        (0, 2),
        H,
    );
    k.op(OpKind::Stat, "f1", 7_000, 7_100, 11, 0);
    k.lookup(ROOT, 2, "f1", (7_010, 7_020), 11, 8, (2, 2), H | V);
    k
}

/// A skipped `dentry_kill` entry: the kill of `f1`'s dentry has no event (the skipped call's
/// own event is missing). Its record then runs on into the next dentry at the same address
/// under the same name, and the new dentry's d_seq 0 reads as `seq-decreased` (4 -> 0). The
/// old rule (any writer skipped: the `d_seq` kinds set aside) set it aside; the narrowed one
/// counts it, as no `dentry_kill` event touched dentry 2 before the judgment: exit 1 on a
/// decrease that never happened, on a trace whose footer says a kill was skipped.
#[test]
fn rev8_a_skipped_kill_s_missing_event_does_not_make_an_anomaly() {
    let control = run_skipped(&recreated_at_the_same_address(true), &[]);
    assert!(
        !has_anomaly(&control, AnomalyKind::SeqDecreased),
        "with the kill seen, no decrease: {}",
        outcome(&control)
    );
    let bare = run_skipped(&recreated_at_the_same_address(false), &[Probe::DentryKill]);
    // As a recorder writes it: the skipped call a hit and a drop (`finish_trace`).
    let k = recreated_at_the_same_address(false);
    let mut footer = footer_counting(&k);
    let sym = Probe::DentryKill.symbol().to_string();
    footer.skipped_entries.insert(sym.clone(), 1);
    footer.hits.insert(sym.clone(), 1);
    footer.drops.insert(sym, 1);
    let r = diff_against_its_ops(&k, footer);
    assert!(has_reason(&r, ReasonKind::Lost), "{}", outcome(&r));
    assert_ne!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert_ne!(bare.verdict, Verdict::Anomalies, "{}", outcome(&bare));
}

// ---- fixskip2 (session 10): a lost call of a life-ending probe, skipped or dropped

/// Diffs `k` as a kernel trace whose footer counts, per probe of `lost`, its events in the
/// file plus the lost calls as hits and drops (`skipped`: the entries were skipped, as a
/// recorder counts them), against a model of its operations alone.
fn run_lost(k: &Trace, lost: &[(Probe, u64)], skipped: bool) -> Report {
    let mut footer = footer_counting(k);
    for (p, n) in lost {
        *footer.hits.entry(p.symbol().into()).or_insert(0) += n;
        footer.drops.insert(p.symbol().into(), *n);
        if skipped {
            footer.skipped_entries.insert(p.symbol().into(), *n);
        }
    }
    diff_against_its_ops(k, footer)
}

/// A dropped `dentry_kill` (no skip) runs the two lives of dentry 2 together just as a
/// skipped one does: the decrease is set aside with a reason naming the lost kill, and the
/// trace reads inconclusive; so for every probe whose event ends a life (a skip of one with
/// an event on dentry 2 sets it aside as resting on its events). A loss of a probe
/// that ends none (dropped: `__d_lookup_rcu`, `d_instantiate`; skipped: `d_add`, `__d_move`)
/// leaves the decrease counted: exit 1.
#[test]
fn a_lost_life_ending_call_sets_aside_what_two_lives_run_together_can_make() {
    let k = recreated_at_the_same_address(false);
    for p in [
        Probe::DentryKill,
        Probe::DentryKillLocked,
        Probe::DentryUnlinkInode,
        Probe::DentryIput,
        Probe::DDrop,
        Probe::DDropInner,
    ] {
        for skipped in [false, true] {
            let r = run_lost(&k, &[(p, 1)], skipped);
            assert!(
                !has_anomaly(&r, AnomalyKind::SeqDecreased),
                "{}",
                outcome(&r)
            );
            assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
            // A skipped probe with an event on dentry 2 sets it aside as resting on its
            // events first.
            let why = r
                .reasons
                .iter()
                .find(|x| {
                    x.kind == ReasonKind::AnomalyAcrossLostDeath
                        || (skipped && x.kind == ReasonKind::AnomalyOnSkippedProbe)
                })
                .map(|x| x.message.clone())
                .unwrap_or_default();
            assert!(
                why.contains("seq-decreased") && why.contains(p.symbol()),
                "{}",
                outcome(&r)
            );
        }
    }
    // (A skip of a probe with an event on dentry 2 would set the decrease aside as resting
    // on its events: skips of probes with none here.)
    for (p, skipped) in [
        (Probe::DLookupRcu, false),
        (Probe::DInstantiate, false),
        (Probe::DAdd, true),
        (Probe::DMove, true),
    ] {
        let r = run_lost(&k, &[(p, 1)], skipped);
        assert!(
            has_anomaly(&r, AnomalyKind::SeqDecreased),
            "{}",
            outcome(&r)
        );
        assert!(
            !has_reason(&r, ReasonKind::AnomalyAcrossLostDeath),
            "{}",
            outcome(&r)
        );
        assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    }
    // Nothing lost: the decrease (the kill unseen with no loss counted) stands.
    let r = run_lost(&k, &[], false);
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// A recorder's footer counts each skipped entry in `drops` too: one `Lost` reason, for the
/// drops, not a second for the skip. A footer whose drops count only part of the skips says
/// the rest.
#[test]
fn a_skipped_entry_is_one_lost_event_whatever_the_footer_counts() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (310, 320), 11, 7, (2, 2), H | V);
    k.op(OpKind::Stat, "f1", 300, 400, 11, 0);
    let r = run_lost(&k, &[(Probe::DLookupRcu, 3)], true);
    let lost = messages(&r, ReasonKind::Lost);
    assert_eq!(lost.len(), 1, "{}", outcome(&r));
    assert!(lost[0].contains("lost 3 events"), "{}", outcome(&r));
    let r = run_skipped(&k, &[Probe::DLookupRcu]);
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::Lost && x.message.contains("beyond its drops 0")),
        "{}",
        outcome(&r)
    );
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
}

// ---- rev10 (session 10): a lost kill the footer's drops and skips do not name

/// Writes `k` as a kernel trace whose footer counts, per probe, its events in the file plus
/// `extra_hits` (calls the file lacks, no drop counted), and diffs it against its operations.
fn run_with_hits(k: &Trace, extra_hits: &[(Probe, u64)]) -> Report {
    let mut footer = footer_counting(k);
    for (p, n) in extra_hits {
        *footer.hits.entry(p.symbol().into()).or_insert(0) += n;
    }
    diff_against_its_ops(k, footer)
}

/// The footer counts one more `__dentry_kill` call than the file holds and no drop: a kill
/// lost that no drop counter saw (`hits-mismatch`). It is the same lost death as a dropped
/// one (fixskip2), and the next `f1` at the address would read as `seq-decreased`. One more
/// `__d_lookup_rcu` call instead ends no life: the decrease stays counted.
#[test]
fn rev10_a_kill_lost_beyond_the_drops_does_not_make_an_anomaly() {
    let k = recreated_at_the_same_address(false);
    let r = run_with_hits(&k, &[(Probe::DentryKill, 1)]);
    assert!(has_reason(&r, ReasonKind::HitsMismatch), "{}", outcome(&r));
    assert_ne!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::AnomalyAcrossLostDeath
                && x.message
                    .contains("__dentry_kill: 1 missing beyond its drops")),
        "{}",
        outcome(&r)
    );
    let r = run_with_hits(&k, &[(Probe::DLookupRcu, 1)]);
    assert!(has_reason(&r, ReasonKind::HitsMismatch), "{}", outcome(&r));
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}

/// Numbers `k`'s probe events 1, 2, 3, ... per CPU, in file order.
fn numbered(k: &mut Trace) {
    let mut next: BTreeMap<u32, u32> = BTreeMap::new();
    for e in k.events.iter_mut().filter(|e| e.probe != Probe::Op as u8) {
        let n = next.entry(e.cpu).or_insert(0);
        *n += 1;
        e.cpu_seq = *n;
    }
}

/// The kill's event numbered and then missing from the file (a hole in its CPU's `cpu_seq`),
/// the footer's hits and drops consistent with the file: the hole is the only sign of the
/// loss, and it is a lost kill all the same (the probe unknown: every life-ending one in
/// doubt). A drop the hole comes with accounts for it: a drop of a probe that ends no life
/// leaves the decrease counted.
#[test]
fn rev10_a_kill_lost_in_a_sequence_hole_does_not_make_an_anomaly() {
    let mut k = recreated_at_the_same_address(true);
    numbered(&mut k);
    k.events.retain(|e| !is(e, Probe::DentryKill));
    let r = run_with_hits(&k, &[]);
    assert!(has_reason(&r, ReasonKind::SequenceHole), "{}", outcome(&r));
    assert_ne!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::AnomalyAcrossLostDeath
                && x.message.contains("1 cpu_seq numbers missing")),
        "{}",
        outcome(&r)
    );
    let r = run_lost(&k, &[(Probe::DLookupRcu, 1)], false);
    assert!(has_reason(&r, ReasonKind::SequenceHole), "{}", outcome(&r));
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
    // Without a hole, nothing lost: counted.
    let mut k = recreated_at_the_same_address(false);
    numbered(&mut k);
    let r = run_with_hits(&k, &[]);
    assert!(!has_reason(&r, ReasonKind::SequenceHole), "{}", outcome(&r));
    assert_eq!(r.verdict, Verdict::Anomalies, "{}", outcome(&r));
}
