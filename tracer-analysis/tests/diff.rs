//! `tracer diff` on hand-made traces: one scenario per class, the writer invariants, the report
//! fields, damaged input, the timeline and the command line.
use std::collections::BTreeMap;

use tracer_analysis::{
    diff::{
        diff_files, AnomalyKind, DiffOptions, DigestError, Reason, ReasonKind, Report,
        ReportDigest, Side, Verdict,
    },
    trace::{End, Footer},
};
use tracer_common::{flags, OpKind, Probe};

mod support;
use support::*;

fn run_with(kernel: &Trace, model: &Trace, opts: &DiffOptions) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = dir.path().join("kernel.trace");
    let m = dir.path().join("model.trace");
    kernel.write(&k, Origin::Kernel, finished());
    model.write(&m, Origin::Model, finished());
    diff_files(&k, &m, opts).expect("diff")
}

fn run(kernel: &Trace, model: &Trace) -> Report {
    run_with(kernel, model, &DiffOptions::default())
}

fn class(r: &Report, side: &str, class: &str) -> u64 {
    let c = if side == "kernel" {
        &r.null_inode_returns.kernel
    } else {
        &r.null_inode_returns.model
    };
    c.by_class[class]
}

fn kinds(r: &Report) -> Vec<(&str, &'static str)> {
    r.anomalies
        .iter()
        .map(|a| (a.side.name(), a.kind.name()))
        .collect()
}

#[test]
fn validated_null_inode_for_an_existing_name_is_an_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    // The injected failure: validated, hashed, NULL inode, inside a stat of an existing file.
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, 0);
    k.lookup(ROOT, 2, "f1", (1_010, 1_020), 12, 0, (2, 2), H | V);
    let mut m = Trace::default();
    created(&mut m, "f1");
    m.op(OpKind::Stat, "f1", 1_000, 1_100, 12, 0);
    m.lookup(ROOT, 5, "f1", (1_010, 1_020), 12, 9, (2, 2), H | V);

    let r = run(&k, &m);
    assert_eq!(r.null_inode_returns.kernel.total, 1);
    assert_eq!(class(&r, "kernel", "anomaly"), 1);
    assert_eq!(r.null_inode_returns.kernel.anomalous, 1);
    assert_eq!(r.null_inode_returns.model.total, 0);
    assert_eq!(kinds(&r), [("kernel", "null-inode-positive")]);
    let a = &r.anomalies[0];
    assert_eq!(a.name, "f1");
    assert_eq!(a.operation, "__d_lookup_rcu in stat");
    assert_eq!((a.ts_begin, a.ts_end, a.tid), (1_010, 1_020, 12));
    assert_eq!((a.dentry, a.generation), (Some(2), Some(1)));
    assert_eq!(a.evidence["exists_since"]["operation"], "stat");
    assert_eq!(a.evidence["lookup"]["flags"], "HhV");
    assert!(a
        .context
        .iter()
        .any(|c| c.subject && c.event == "__d_lookup_rcu"));
    assert!(a.context.iter().any(|c| c.related && c.event == "stat"));
    assert_eq!(r.exit_status, 1);
}

#[test]
fn spurious_enoent_is_an_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    // Hugh's symptom: the lookup validated a positive dentry, the caller still said ENOENT.
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, -2);
    k.lookup(ROOT, 2, "f1", (1_010, 1_020), 12, 7, (2, 2), H | V);
    let r = run(&k, &k.clone());
    assert_eq!(r.enoent_results.kernel.total, 1);
    assert_eq!(r.enoent_results.kernel.by_class["anomaly"], 1);
    assert_eq!(
        kinds(&r),
        [("kernel", "spurious-enoent"), ("model", "spurious-enoent")]
    );
    let a = &r.anomalies[0];
    assert_eq!((a.name.as_str(), a.operation.as_str()), ("f1", "stat"));
    let lookups = a.evidence["lookups_in_operation"]
        .as_array()
        .expect("lookups");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0]["inode_begin"], 7);
    assert_eq!(r.null_inode_returns.kernel.total, 0);
    assert_eq!(r.exit_status, 1);
}

#[test]
fn negative_dentries_are_not_anomalies() {
    let mut k = Trace::default();
    // Never created.
    k.op(OpKind::Stat, "nx", 1_000, 1_100, 12, -2);
    k.lookup(ROOT, 3, "nx", (1_010, 1_020), 12, 0, (0, 0), H | V);
    // Created, then unlinked (d_delete leaves a hashed negative dentry), then looked up.
    created(&mut k, "gone");
    k.op(OpKind::Unlink, "gone", 500, 600, 10, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        4,
        "gone",
        (520, 540),
        10,
        (8, 0),
        (2, 4),
        H,
    );
    k.op(OpKind::Open, "gone", 2_000, 2_100, 12, -2);
    k.lookup(ROOT, 4, "gone", (2_010, 2_020), 12, 0, (4, 4), H | V);
    let r = run(&k, &k.clone());
    assert_eq!(r.null_inode_returns.kernel.total, 2);
    assert_eq!(class(&r, "kernel", "negative"), 2);
    assert_eq!(r.enoent_results.kernel.by_class["negative"], 2);
    assert_eq!(r.null_inode_returns.model.by_class["negative"], 2);
    assert!(r.anomalies.is_empty(), "{:?}", kinds(&r));
    assert_eq!(r.diagnostics.kernel.d_delete_clears, 1);
    assert_eq!(r.exit_status, 0);
}

#[test]
fn a_lookup_overlapping_an_unlink_is_not_an_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.op(OpKind::Unlink, "f1", 1_000, 1_100, 10, 0);
    // d_delete with one reference: the inode goes, the dentry stays hashed (negative).
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
    k.op(OpKind::Stat, "f1", 1_045, 1_090, 12, -2);
    k.lookup(ROOT, 2, "f1", (1_050, 1_070), 12, 0, (4, 4), H | V);
    let r = run(&k, &k.clone());
    assert_eq!(class(&r, "kernel", "overlaps-writer"), 1);
    assert_eq!(r.enoent_results.kernel.by_class["overlaps-writer"], 1);
    assert!(r.anomalies.is_empty(), "{:?}", kinds(&r));
    assert_eq!(r.coverage_gaps.kernel.total, 0);
    assert_eq!(r.exit_status, 0);
}

/// A lookup racing a prune of the dentry on the 6.1 kill path: ___d_drop, the caller's +2,
/// then the bracketed clear. The lookup took its seq before and sees it moved.
fn pruned(t: &mut Trace) {
    created(t, "f1");
    t.op(OpKind::DropCaches, "", 900, 1_200, 20, 0);
    t.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    t.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_000, 1_010),
        20,
        (7, 7),
        (2, 2),
        H,
    );
    t.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_012, 1_030),
        20,
        (7, 0),
        (4, 6),
        0,
    );
    t.op(OpKind::Stat, "f1", 995, 1_100, 12, 0);
    t.lookup(ROOT, 2, "f1", (1_005, 1_020), 12, 0, (2, 6), H);
}

#[test]
fn an_unvalidated_snapshot_is_not_an_anomaly() {
    let mut k = Trace::default();
    pruned(&mut k);
    let r = run(&k, &k.clone());
    assert_eq!(class(&r, "kernel", "rejected-snapshot"), 1);
    assert_eq!(class(&r, "model", "rejected-snapshot"), 1);
    assert!(r.anomalies.is_empty(), "{:?}", kinds(&r));
    assert_eq!(
        r.coverage_gaps.kernel.total, 0,
        "{:?}",
        r.coverage_gaps.kernel
    );
    assert_eq!(r.diagnostics.kernel.seq_regressions, 0);
    assert_eq!(r.exit_status, 0);
}

#[test]
fn a_dentry_seen_again_after_its_kill_is_a_new_generation() {
    let mut k = Trace::default();
    pruned(&mut k);
    // The slab reuses the address: same id, new dentry, new d_seq.
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, 0);
    k.lookup(ROOT, 2, "f1", (2_010, 2_020), 12, 9, (0, 0), H | V);
    k.op(OpKind::Stat, "f1", 3_000, 3_100, 12, 0);
    k.lookup(ROOT, 2, "f1", (3_010, 3_020), 12, 0, (0, 0), H | V);
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), [("kernel", "null-inode-positive")]);
    assert_eq!(r.anomalies[0].generation, Some(2));
    assert_eq!(r.coverage_gaps.kernel.total, 0, "no gap across generations");
    assert_eq!(r.diagnostics.kernel.seq_regressions, 0);
}

#[test]
fn drop_after_clear_is_flagged() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.op(OpKind::DropCaches, "", 900, 1_200, 20, 0);
    // The mutant kill path: the inode is cleared while the dentry is still hashed...
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_000, 1_010),
        20,
        (7, 0),
        (2, 4),
        H,
    );
    // ...and unhashed only afterwards.
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_012, 1_015),
        20,
        (0, 0),
        (4, 4),
        H,
    );
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), [("kernel", "clear-before-unhash")]);
    let a = &r.anomalies[0];
    assert_eq!(a.operation, "dentry_unlink_inode in drop_caches");
    assert_eq!(a.evidence["clear"]["flags"], "Hh");
    assert!(
        a.context
            .iter()
            .any(|c| c.event == "___d_drop" && c.related && !c.subject),
        "the late unhash shows in the context: {:?}",
        a.context
    );
    assert_eq!(r.exit_status, 1);
}

/// d_delete's own clear (a hashed dentry made negative in place) is legitimate even where the
/// operation events do not show the unlink around it (an operation event judged late).
#[test]
fn a_clear_inside_a_traced_d_delete_is_no_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    k.writer(Probe::DDelete, 2, "f1", (995, 1_020), 20, (7, 0), (2, 4), H);
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_000, 1_010),
        20,
        (7, 0),
        (2, 4),
        H,
    );
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), []);
    assert_eq!(r.coverage_gaps.kernel.total, 0);
}

#[test]
fn a_seq_change_without_a_writer_is_a_coverage_gap() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    // d_seq 2 -> 6 with nothing traced in between (an inlined or untraced writer).
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, 0);
    k.lookup(ROOT, 2, "f1", (1_010, 1_020), 12, 7, (6, 6), H | V);
    // A negative dentry instantiated by a create: d_instantiate is not traced.
    k.op(OpKind::Stat, "n1", 1_200, 1_300, 12, -2);
    k.lookup(ROOT, 3, "n1", (1_210, 1_220), 12, 0, (0, 0), H | V);
    k.op(OpKind::Create, "n1", 1_400, 1_500, 10, 0);
    k.op(OpKind::Stat, "n1", 1_600, 1_700, 12, 0);
    k.lookup(ROOT, 3, "n1", (1_610, 1_620), 12, 8, (2, 2), H | V);
    let r = run(&k, &Trace::default());
    let c = &r.coverage_gaps.kernel;
    assert_eq!(c.total, 2, "{c:?}");
    assert_eq!(
        c.by_cause["unknown (no operation on the name explains it)"],
        1
    );
    assert_eq!(c.by_cause["d_instantiate (create)"], 1);
    let g = &c.examples[0];
    assert_eq!(
        (g.name.as_str(), g.from_seq, g.to_seq, g.observed_by),
        ("f1", 2, 6, "__d_lookup_rcu")
    );
    assert_eq!(
        c.unattached_targets["__d_drop"],
        "not called out of line (inlined)"
    );
    assert!(r.anomalies.is_empty(), "{:?}", kinds(&r));
    assert_eq!(r.exit_status, 2, "unexplained moves: inconclusive");
    assert!(r
        .reasons
        .iter()
        .any(|x| x.kind == ReasonKind::UnexplainedSeqMoves
            && x.message.contains("d_instantiate (create)")));
}

#[test]
fn a_missing_invalidate_after_d_drop_is_a_seq_delta_anomaly() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::DropCaches, "", 900, 1_200, 20, 0);
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
    // The caller's +2 never happened: the clear starts from 2.
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (1_012, 1_030),
        20,
        (7, 0),
        (2, 4),
        0,
    );
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), [("kernel", "seq-delta")]);
    assert_eq!(r.anomalies[0].evidence["owed_by"], "___d_drop");
    assert_eq!(r.anomalies[0].evidence["expected_at_least"], 4);
}

#[test]
fn report_json_has_the_documented_fields() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, -2);
    let r = run(&k, &Trace::default());
    let v = serde_json::to_value(&r).expect("serialize");
    assert_eq!(v["schema"], "tracer-diff-report/2");
    assert_eq!(v["verdict"], "anomalies");
    assert!(v["reasons"].is_array());
    assert_eq!(v["kernel"]["release"], "6.1.0-27-amd64");
    assert_eq!(v["kernel"]["attach"]["__d_lookup_rcu"], "fentry");
    assert_eq!(
        v["kernel"]["attach"]["__d_drop"],
        "absent: not called out of line (inlined)"
    );
    assert_eq!(v["profile"], "linux-6.1");
    assert_eq!(v["events"]["kernel"]["total"], 3);
    assert_eq!(v["events"]["kernel"]["per_probe"]["workload"], 3);
    assert_eq!(v["events"]["kernel"]["per_probe"]["__d_lookup_rcu"], 0);
    assert_eq!(v["events"]["kernel"]["per_operation"]["stat"], 2);
    assert_eq!(v["events"]["model"]["total"], 0);
    assert_eq!(v["lost_events"]["kernel"]["total"], 0);
    let n = &v["null_inode_returns"]["kernel"];
    assert_eq!(n["total"], 0);
    assert_eq!(n["anomalous"], 0);
    for c in [
        "negative",
        "overlaps-writer",
        "rejected-snapshot",
        "anomaly",
    ] {
        assert_eq!(n["by_class"][c], 0, "{c}");
    }
    let a = &v["anomalies"][0];
    assert_eq!(a["kind"], "spurious-enoent");
    assert_eq!(a["name"], "f1");
    assert_eq!(a["operation"], "stat");
    assert_eq!(
        (a["ts_begin"].as_u64(), a["ts_end"].as_u64()),
        (Some(1_000), Some(1_100))
    );
    assert!(a["evidence"].is_object());
    assert!(v["coverage_gaps"]["kernel"]["total"].is_u64());
    assert!(v["coverage_gaps"]["kernel"]["by_cause"].is_object());
    assert_eq!(v["kernel"]["complete"], true);
    assert_eq!(v["exit_status"], 1);
}

/// A finished recording's footer that lost three `___d_drop` events.
fn three_drops() -> Footer {
    Footer {
        end: End::Finished,
        drops: BTreeMap::from([("___d_drop".into(), 3)]),
        ..Footer::default()
    }
}

#[test]
fn the_digest_reads_what_the_report_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (k, m) = (dir.path().join("k"), dir.path().join("m"));
    let mut t = Trace::default();
    created(&mut t, "f1");
    t.op(OpKind::Stat, "f1", 1_000, 1_100, 12, -2);
    t.write(&k, Origin::Kernel, three_drops());
    Trace::default().write(&m, Origin::Model, finished());
    let r = diff_files(&k, &m, &DiffOptions::default()).expect("diff");
    // Both an anomaly and a reason, so that every field read back is a non-trivial one.
    assert_eq!(r.verdict, Verdict::Anomalies);
    assert!(!r.reasons.is_empty());
    let json = dir.path().join("report.json");
    std::fs::write(&json, serde_json::to_string(&r).expect("serialize")).expect("write");
    let d = ReportDigest::read(&json).expect("digest");
    assert_eq!(d.verdict, r.verdict);
    assert_eq!(d.exit_status, r.exit_status);
    assert_eq!(d.reasons, r.reasons);
    assert_eq!(d.anomaly_counts, r.anomaly_counts);
    assert_eq!(
        d.anomaly_counts.kernel.get(&AnomalyKind::SpuriousEnoent),
        Some(&1)
    );
    let stamps: Vec<_> = d
        .anomalies
        .iter()
        .map(|a| (a.side, a.kind, a.ts_begin))
        .collect();
    let want: Vec<_> = r
        .anomalies
        .iter()
        .map(|a| (a.side, a.kind, a.ts_begin))
        .collect();
    assert_eq!(stamps, want);
    assert_eq!(d.events.kernel.total, r.events.kernel.total);
    assert_eq!(d.events.kernel.per_probe, r.events.kernel.per_probe);
    assert_eq!(d.lost_events.kernel.total, 3);
    assert_eq!(
        d.lost_events.kernel.per_probe,
        r.lost_events.kernel.per_probe
    );
    assert_eq!(
        d.null_inode_returns.kernel.by_class,
        r.null_inode_returns.kernel.by_class
    );
    assert_eq!(d.enoent_results.kernel.total, r.enoent_results.kernel.total);
    assert_eq!(
        d.enoent_results.kernel.anomalous,
        r.enoent_results.kernel.anomalous
    );
    assert_eq!(d.coverage_gaps.kernel.total, r.coverage_gaps.kernel.total);
    assert_eq!(
        d.coverage_gaps.kernel.by_cause,
        r.coverage_gaps.kernel.by_cause
    );
    assert_eq!(d.cpu_sequence, r.cpu_sequence);
    assert_eq!(
        d.diagnostics.kernel.operation_time_range,
        r.diagnostics.kernel.operation_time_range
    );
    assert!(d.diagnostics.kernel.operation_time_range.is_some());
}

#[test]
fn the_digest_names_a_report_of_another_layout_and_a_file_that_is_none() {
    let other = r#"{"schema": "tracer-diff-report/1", "verdict": "clean"}"#;
    let e = ReportDigest::parse(other, "old.json").expect_err("another layout");
    assert!(matches!(e, DigestError::Schema { .. }), "{e:?}");
    assert!(e.to_string().contains("tracer-diff-report/1"), "{e}");
    assert!(e.to_string().contains("re-run `tracer diff --json`"), "{e}");
    let e = ReportDigest::parse(r#"{"verdict": "clean"}"#, "x.json").expect_err("no layout");
    assert!(matches!(e, DigestError::Parse { .. }), "{e:?}");
    let e =
        ReportDigest::read(std::path::Path::new("/nonexistent/report.json")).expect_err("missing");
    assert!(matches!(e, DigestError::Read { .. }), "{e:?}");
}

#[test]
fn lost_events_make_the_verdict_inconclusive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (k, m) = (dir.path().join("k"), dir.path().join("m"));
    let mut t = Trace::default();
    created(&mut t, "f1");
    // The stat's walk, seen (a kernel trace whose stats no lookup saw is `nothing-observed`).
    t.lookup(ROOT, 2, "f1", (310, 320), 11, 7, (2, 2), H | V);
    t.write(&k, Origin::Kernel, three_drops());
    t.write(&m, Origin::Model, finished());
    let r = diff_files(&k, &m, &DiffOptions::default()).expect("diff");
    assert_eq!(r.lost_events.kernel.total, 3);
    assert_eq!(r.lost_events.kernel.per_probe["___d_drop"], 3);
    assert!(!r.kernel.complete);
    assert!(r.model.complete);
    assert_eq!(r.exit_status, 2);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(
        r.reasons,
        [Reason {
            side: Some(Side::Kernel),
            kind: ReasonKind::Lost,
            message: "lost 3 events on ___d_drop (footer drops)".into()
        }]
    );
    let mut text = Vec::new();
    r.write_summary(&mut text).expect("text");
    let text = String::from_utf8(text).expect("utf8");
    assert!(text.contains("the kernel trace lost 3 events"), "{text}");
}

#[test]
fn a_truncated_trace_is_diffed_up_to_the_cut_and_its_anomaly_counts() {
    let mut k = Trace::default();
    // One thread (the header's workload says so) makes the name and finds it missing.
    k.op(OpKind::Create, "f1", 100, 200, 12, 0);
    k.op(OpKind::Stat, "f1", 300, 400, 12, 0);
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, -2);
    // Enough events after the anomaly that cutting the footer off keeps it, over more than
    // the reorder window: an anomaly within a window of the cut, or after the last operation
    // of a thread in the file, is set aside (what the lost tail holds could explain it).
    for i in 0..5_000 {
        k.op(
            OpKind::Stat,
            "f1",
            2_000 + i * 300_000,
            2_005 + i * 300_000,
            12,
            0,
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (kernel, model) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write_with(&kernel, Origin::Kernel, finished(), |h| {
        h.workload_toml = Some(threads_workload(1, 0));
    });
    Trace::default().write(&model, Origin::Model, finished());
    let bytes = std::fs::read(&kernel).expect("read");
    std::fs::write(&kernel, &bytes[..bytes.len() - 100]).expect("cut");
    let r = diff_files(&kernel, &model, &DiffOptions::default()).expect("diff");
    assert_eq!(r.exit_status, 1, "what was seen is real");
    assert!(!r.kernel.complete);
    assert!(
        r.kernel
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("truncated")),
        "{:?}",
        r.kernel.problem
    );
    assert_eq!(r.reasons[0].kind, ReasonKind::Damaged, "{:?}", r.reasons);
    assert_eq!(r.reasons[0].side, Some(Side::Kernel));
    assert_eq!(
        kinds(&r),
        [("kernel", "spurious-enoent")],
        "found before the cut"
    );
}

/// Found by the diff_traces fuzz target: an operation that ends before it begins made the
/// clock check subtract past zero (a panic in debug builds, a wrong verdict in release).
#[test]
fn an_operation_ending_before_it_begins_is_survived() {
    let mut k = Trace::default();
    k.op(OpKind::Stat, "f1", 5_000, 10, 12, 0);
    k.lookup(ROOT, 2, "f1", (20, 30), 12, 3, (2, 2), H | V);
    let r = run(&k, &Trace::default());
    assert_eq!(r.kernel.events_read, k.events.len() as u64);
}

#[test]
fn unreadable_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("notes.txt");
    std::fs::write(&bogus, "not a trace").expect("write");
    let good = dir.path().join("m.trace");
    Trace::default().write(&good, Origin::Model, finished());
    let err = diff_files(&bogus, &good, &DiffOptions::default()).expect_err("must fail");
    // The message and its cause, each once.
    let cause = std::error::Error::source(&err).map(|c| c.to_string());
    let msg = format!("{err}: {}", cause.unwrap_or_default());
    assert!(
        msg.contains("kernel trace") && msg.contains("notes.txt"),
        "{msg}"
    );
    assert!(msg.contains("not a trace file"), "{msg}");
}

#[test]
fn operation_results_are_compared_across_sides() {
    let mut k = Trace::default();
    let mut m = Trace::default();
    for t in [&mut k, &mut m] {
        t.op(OpKind::Create, "f1", 100, 200, 10, 0);
        t.op(OpKind::Unlink, "f1", 300, 400, 10, 0);
    }
    // The kernel's stat raced the unlink and lost (its walk found no dentry); the model's ran
    // before it.
    k.op(OpKind::Stat, "f1", 350, 450, 11, -2);
    k.lookup(ROOT, 0, "f1", (410, 420), 11, 0, (0, 0), 0);
    m.op(OpKind::Stat, "f1", 250, 280, 11, 0);
    let r = run(&k, &m);
    assert_eq!(r.divergence.operations_compared, 3);
    assert_eq!(r.divergence.results_differ, 1);
    let d = &r.divergence.examples[0];
    assert_eq!(
        (
            d.operation,
            d.name.as_str(),
            d.kernel_result,
            d.model_result
        ),
        ("stat", "f1", -2, 0)
    );
    assert_eq!(r.enoent_results.kernel.by_class["overlaps-writer"], 1);
    assert_eq!(r.exit_status, 0);
    let mut text = Vec::new();
    r.write_details(&mut text).expect("text");
    let text = String::from_utf8(text).expect("utf8");
    assert!(
        text.contains("stat f1 #1: kernel -2 at 0.000000350s, model 0 at 0.000000250s"),
        "{text}"
    );
}

/// What a side's history says of a result that waits for its twin (whether a race explains
/// another result) is read when the twin comes, if the results differ; meanwhile the side's
/// history moves on. The answer is the one it had when the result was recorded (a judgement
/// taken later, to save the walk when the twins agree, would have to keep it): here a fold past
/// the retention (a further stat's fact comes 600 ns after the writers ended, the window
/// 100 ns) merges the kernel's three racing writers into one base writer with no rival, which
/// alone would read the kernel's ENOENT as contradicted rather than raced.
#[test]
fn a_result_raced_when_recorded_stays_raced_after_its_history_folds() {
    let mut k = Trace::default();
    let mut m = Trace::default();
    // The kernel's long create races an unlink (and the create after it) on f1; the model's
    // writers run one after another.
    k.op(OpKind::Create, "f1", 100, 600, 1, 0);
    k.op(OpKind::Unlink, "f1", 150, 200, 2, 0);
    k.op(OpKind::Create, "f1", 210, 250, 3, 0);
    m.op(OpKind::Create, "f1", 100, 110, 1, 0);
    m.op(OpKind::Unlink, "f1", 150, 160, 2, 0);
    m.op(OpKind::Create, "f1", 210, 250, 3, 0);
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 4, -2);
    m.op(OpKind::Stat, "f1", 1_000, 1_100, 4, 0);
    for t in [&mut k, &mut m] {
        t.op(OpKind::Stat, "f1", 1_200, 1_250, 4, 0);
    }
    let opts = DiffOptions {
        window_ns: 100,
        ..DiffOptions::default()
    };
    let r = run_with(&k, &m, &opts);
    assert_eq!(
        (
            r.divergence.operations_compared,
            r.divergence.results_differ,
            r.divergence.explained_by_race
        ),
        (5, 1, 1)
    );
    assert!(
        !kinds(&r).contains(&("kernel", "result-differs")),
        "{:?}",
        kinds(&r)
    );
}

/// As above, with a late writer: the kernel's unlink of f1 overlaps its stat but arrives after
/// the stat was recorded (past the window), and before the model's twin: the stat is judged
/// without it, and its difference with the model's ENOENT is no race: the model, whose own
/// history says f1 existed, files it.
#[test]
fn a_result_judged_before_a_late_writer_keeps_its_judgement() {
    let mut k = Trace::default();
    let mut m = Trace::default();
    for t in [&mut k, &mut m] {
        t.op(OpKind::Create, "f1", 100, 200, 1, 0);
        t.op(OpKind::Mkdir, "d", 2_000, 2_100, 3, 0);
        // Read before the unlink: the window has passed the stat and the mkdir.
        t.op(OpKind::Stat, "d", 3_000, 3_100, 3, 0);
    }
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 2, 0);
    m.op(OpKind::Stat, "f1", 1_000, 1_100, 2, -2);
    // Operations the kernel lacks put the model ahead in operations processed, so the kernel
    // processes its late unlink before the model resolves its stat.
    for i in 0..6u64 {
        let t = 300 + 10 * i;
        m.op(OpKind::Mkdir, &format!("e{i}"), t, t + 5, 5, 0);
    }
    k.op(OpKind::Unlink, "f1", 1_050, 5_000, 4, 0);
    m.op(OpKind::Unlink, "f1", 4_000, 5_000, 4, 0);
    let opts = DiffOptions {
        window_ns: 100,
        ..DiffOptions::default()
    };
    let r = run_with(&k, &m, &opts);
    assert_eq!(r.diagnostics.kernel.late_events, 1);
    assert_eq!(
        (
            r.divergence.operations_compared,
            r.divergence.results_differ,
            r.divergence.explained_by_race
        ),
        (5, 1, 0)
    );
    assert!(
        kinds(&r).contains(&("model", "result-differs")),
        "{:?}",
        kinds(&r)
    );
}

#[test]
fn names_under_directories_resolve_through_parent_ids() {
    let mut k = Trace::default();
    k.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
    k.op(OpKind::Create, "d0/f1", 100, 200, 10, 0);
    k.op(OpKind::Stat, "d0/f1", 300, 400, 11, 0);
    k.op(OpKind::Stat, "d0/f1", 1_000, 1_100, 12, 0);
    k.lookup(ROOT, 2, "d0", (1_005, 1_008), 12, 5, (2, 2), H | V);
    k.lookup(2, 3, "f1", (1_010, 1_020), 12, 0, (2, 2), H | V);
    // The same name in another directory is another key.
    k.op(OpKind::Stat, "f1", 1_200, 1_300, 12, -2);
    k.lookup(ROOT, 4, "f1", (1_210, 1_220), 12, 0, (0, 0), H | V);
    // A lookup under a directory nothing names, outside any operation: keyed at the root.
    k.lookup(9, 10, "x", (1_400, 1_410), 30, 5, (2, 2), H | V);
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), [("kernel", "null-inode-positive")]);
    assert_eq!(r.anomalies[0].name, "d0/f1");
    assert_eq!(class(&r, "kernel", "negative"), 1);
    assert_eq!(
        r.diagnostics.kernel.unnamed_parents, 1,
        "the walk of d0/f1 names the root; 9 stays unnamed"
    );
}

#[test]
fn a_small_reorder_window_gives_the_same_result() {
    let mut k = Trace::default();
    pruned(&mut k);
    for i in 0..50u64 {
        let t = 10_000 + i * 1_000;
        k.op(
            OpKind::Stat,
            "f1",
            t,
            t + 100,
            12,
            if i == 7 { -2 } else { 0 },
        );
    }
    let wide = run(&k, &k.clone());
    let narrow = run_with(
        &k,
        &k.clone(),
        &DiffOptions {
            window_ns: 500,
            ..DiffOptions::default()
        },
    );
    for r in [&wide, &narrow] {
        assert_eq!(class(r, "kernel", "rejected-snapshot"), 1);
        assert_eq!(
            kinds(r),
            [("kernel", "spurious-enoent"), ("model", "spurious-enoent")]
        );
        assert_eq!(r.coverage_gaps.kernel.total, 0);
    }
    assert_eq!(narrow.diagnostics.kernel.late_events, 0);
    assert!(
        narrow.diagnostics.kernel.max_reorder_depth < wide.diagnostics.kernel.max_reorder_depth
    );
}

#[test]
fn the_timeline_is_trace_event_json() {
    let mut k = Trace::default();
    pruned(&mut k);
    k.op(OpKind::Stat, "f1", 2_000, 2_100, 12, -2);
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = dir.path().join("timeline.json");
    let r = run_with(
        &k,
        &k.clone(),
        &DiffOptions {
            timeline: Some(tl.clone()),
            ..DiffOptions::default()
        },
    );
    assert_eq!(r.exit_status, 1);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tl).expect("read")).expect("valid JSON");
    let evs = v["traceEvents"].as_array().expect("traceEvents");
    let slices: Vec<_> = evs.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(slices.len(), 2 * k.events.len());
    assert!(slices
        .iter()
        .all(|e| e["dur"].as_f64().is_some_and(|d| d >= 0.0)));
    assert!(slices.iter().any(|e| e["pid"] == 1 && e["tid"] == 20));
    assert!(slices.iter().any(|e| e["pid"] == 2));
    let marks: Vec<_> = evs
        .iter()
        .filter(|e| e["ph"] == "i" && e["cat"] == "anomaly")
        .collect();
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[0]["name"], "ANOMALY spurious-enoent");
    assert!(evs
        .iter()
        .any(|e| e["ph"] == "M" && e["args"]["name"] == "kernel 6.1.0-27-amd64"));
}

/// A side's timeline counts from the begin of its first event, also when that event is one the
/// diff cannot use (a writer with no dentry): its slices are placed from there.
#[test]
fn the_timeline_counts_from_the_first_event_read() {
    let mut k = Trace::default();
    k.writer(Probe::DDrop, 0, "x", (1_000, 1_010), 20, (0, 0), (2, 2), H);
    k.op(OpKind::Stat, "f1", 5_000, 6_000, 12, -2);
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = dir.path().join("timeline.json");
    run_with(
        &k,
        &k.clone(),
        &DiffOptions {
            timeline: Some(tl.clone()),
            ..DiffOptions::default()
        },
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tl).expect("read")).expect("valid JSON");
    let evs = v["traceEvents"].as_array().expect("traceEvents");
    let stats: Vec<_> = evs
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "op")
        .collect();
    assert_eq!(stats.len(), 2);
    for s in stats {
        assert_eq!(s["ts"].as_f64(), Some(4.0), "{s}");
        assert_eq!(s["dur"].as_f64(), Some(1.0), "{s}");
    }
}

#[test]
fn operations_and_probes_on_different_clocks_are_trouble() {
    let mut m = Trace::default();
    for i in 0..200u64 {
        // Operations on the kernel's clock, the lookups inside them on another one.
        let t = 7_000_000_000 + i * 1_000;
        m.op(OpKind::Stat, "f1", t, t + 500, 12, 0);
        m.lookup(ROOT, 2, "f1", (i * 100, i * 100 + 50), 12, 7, (2, 2), H | V);
    }
    let mut k = Trace::default();
    for i in 0..200u64 {
        let t = 7_000_000_000 + i * 1_000;
        k.op(OpKind::Stat, "f1", t, t + 500, 12, 0);
        k.lookup(ROOT, 2, "f1", (t + 100, t + 200), 12, 7, (2, 2), H | V);
    }
    let r = run(&k, &m);
    assert!(!r.diagnostics.kernel.clocks_disagree());
    assert!(r.diagnostics.model.clocks_disagree());
    assert_eq!(r.exit_status, 2);
    let clocks: Vec<&Reason> = r
        .reasons
        .iter()
        .filter(|x| x.kind == ReasonKind::ClocksDisagree)
        .collect();
    assert_eq!(clocks.len(), 1, "{:?}", r.reasons);
    assert_eq!(clocks[0].side, Some(Side::Model));
    assert!(
        clocks[0].to_string().contains("not on one clock"),
        "{}",
        clocks[0]
    );
}

/// Two directories and a file in the first, all looked up (so every id is named).
fn two_dirs_and_a_file(t: &mut Trace) {
    t.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
    t.op(OpKind::Mkdir, "d1", 30, 40, 10, 0);
    t.op(OpKind::Create, "d0/f1", 100, 200, 10, 0);
    t.op(OpKind::Stat, "d0/f1", 300, 400, 11, 0);
    t.lookup(ROOT, 2, "d0", (305, 310), 11, 20, (2, 2), H | V);
    t.lookup(2, 3, "f1", (315, 320), 11, 30, (2, 2), H | V);
    t.op(OpKind::Stat, "d1", 500, 600, 11, 0);
    t.lookup(ROOT, 4, "d1", (505, 510), 11, 40, (2, 2), H | V);
}

/// A 6.1 rename of `from` (dentry `src` under `src_dir`) onto a name that does not exist:
/// `__d_move` opens both seqcounts (odd), `___d_drop`s the moved dentry and the negative
/// target, closes both (+1). The target stays unhashed and dies without a traced event.
#[allow(clippy::too_many_arguments)]
fn renamed(
    t: &mut Trace,
    (from, src_dir, src, src_seq): (&str, u64, u64, u32),
    (to, dst_dir, target): (&str, u64, u64),
    b: u64,
) {
    let leaf = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let (from_leaf, to_leaf) = (leaf(from), leaf(to));
    t.op(OpKind::Rename, &format!("{from}\0{to}"), b, b + 100, 13, 0);
    if let Some(e) = t.events.last_mut() {
        e.flags |= flags::TWO_PATHS;
    }
    t.lookup(dst_dir, 0, &to_leaf, (b + 10, b + 15), 13, 0, (0, 0), 0)
        .ref_walk();
    t.writer(
        Probe::DDropInner,
        src,
        &from_leaf,
        (b + 20, b + 25),
        13,
        (30, 30),
        (src_seq + 1, src_seq + 1),
        H,
    )
    .under(src_dir);
    t.writer(
        Probe::DDropInner,
        target,
        &to_leaf,
        (b + 30, b + 35),
        13,
        (0, 0),
        (1, 1),
        H,
    )
    .under(dst_dir);
}

#[test]
fn a_rename_inside_d_move_is_no_anomaly() {
    let mut k = Trace::default();
    two_dirs_and_a_file(&mut k);
    renamed(&mut k, ("d0/f1", 2, 3, 2), ("d1/f1", 4, 9), 1_000);
    // The moved dentry under its new name and parent: __d_move's closing +1 is there.
    k.op(OpKind::Stat, "d1/f1", 1_200, 1_300, 11, 0);
    k.lookup(4, 3, "f1", (1_210, 1_220), 11, 30, (4, 4), H | V);
    // Renamed back onto a new name; the slab hands the dead target's address to the new
    // target, whose d_seq starts from 0 again.
    renamed(&mut k, ("d1/f1", 4, 3, 4), ("d0/g1", 2, 9), 2_000);
    k.op(OpKind::Stat, "d0/g1", 2_200, 2_300, 11, 0);
    k.lookup(2, 3, "g1", (2_210, 2_220), 11, 30, (6, 6), H | V);
    // And once more, the same address again as the target.
    renamed(&mut k, ("d0/g1", 2, 3, 6), ("d1/g1", 4, 9), 3_000);
    let r = run(&k, &k.clone());
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    let c = &r.coverage_gaps.kernel;
    assert_eq!(c.total, 3, "{c:?}");
    assert_eq!(c.by_cause["__d_move (odd d_seq at ___d_drop entry)"], 3);
    assert_eq!(r.diagnostics.kernel.seq_regressions, 0);
    assert_eq!(r.diagnostics.kernel.unnamed_parents, 0);
    // __d_move is not probed: its moves are unexplained, the verdict inconclusive, naming it.
    assert_eq!(r.exit_status, 2);
    assert_eq!(r.reasons.len(), 2, "one per side: {:?}", r.reasons);
    for x in &r.reasons {
        assert_eq!(x.kind, ReasonKind::UnexplainedSeqMoves);
        assert!(x.message.contains("__d_move"), "{x}");
    }
}

#[test]
fn a_missing_d_move_end_is_still_a_seq_delta_anomaly() {
    let mut k = Trace::default();
    two_dirs_and_a_file(&mut k);
    renamed(&mut k, ("d0/f1", 2, 3, 2), ("d1/f1", 4, 9), 1_000);
    // The moved dentry's next writer finds the count still odd: the closing +1 is missing.
    k.op(OpKind::Unlink, "d1/f1", 1_200, 1_300, 11, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        3,
        "f1",
        (1_210, 1_220),
        11,
        (30, 0),
        (3, 5),
        H,
    )
    .under(4);
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), [("kernel", "seq-delta")], "{:?}", r.anomalies);
    assert_eq!(r.anomalies[0].name, "d1/f1");
    assert_eq!(r.anomalies[0].evidence["expected_at_least"], 4);
}

/// A directory and a file in it, pruned (file first, then the directory, both on the 6.1
/// kill path), then an unlink of the file: the walk misses `d0` in RCU mode, re-creates its
/// dentry (`new_dir`) through the slow path, which no event names, and `d_delete` clears
/// the file's new dentry (`file`) while it is hashed.
fn pruned_dir_then_unlink(t: &mut Trace, new_dir: u64, file: u64) {
    t.op(OpKind::Mkdir, "d0", 10, 20, 10, 0);
    t.op(OpKind::Create, "d0/m6", 100, 200, 10, 0);
    t.op(OpKind::Stat, "d0/m6", 300, 400, 11, 0);
    t.lookup(ROOT, 2, "d0", (305, 310), 11, 20, (2, 2), H | V);
    t.lookup(2, 3, "m6", (315, 320), 11, 30, (2, 2), H | V);
    t.op(OpKind::DropCaches, "", 1_000, 1_100, 20, 0);
    t.writer(
        Probe::DDropInner,
        3,
        "m6",
        (1_010, 1_012),
        20,
        (30, 30),
        (2, 2),
        H,
    )
    .under(2);
    t.writer(
        Probe::DentryUnlinkInode,
        3,
        "m6",
        (1_014, 1_016),
        20,
        (30, 0),
        (4, 6),
        0,
    )
    .under(2);
    t.writer(
        Probe::DDropInner,
        2,
        "d0",
        (1_020, 1_022),
        20,
        (20, 20),
        (2, 2),
        H,
    );
    t.writer(
        Probe::DentryUnlinkInode,
        2,
        "d0",
        (1_024, 1_026),
        20,
        (20, 0),
        (4, 6),
        0,
    );
    t.op(OpKind::Unlink, "d0/m6", 2_000, 2_300, 12, 0);
    t.lookup(ROOT, 0, "d0", (2_010, 2_015), 12, 0, (0, 0), 0);
    t.lookup(new_dir, 0, "m6", (2_020, 2_025), 12, 0, (0, 0), 0)
        .ref_walk();
    t.writer(
        Probe::DentryUnlinkInode,
        file,
        "m6",
        (2_100, 2_110),
        12,
        (31, 0),
        (2, 4),
        H,
    )
    .under(new_dir);
}

#[test]
fn d_delete_under_a_re_created_unnamed_directory_is_no_anomaly() {
    // The new directory dentry has an id never seen before.
    let mut k = Trace::default();
    pruned_dir_then_unlink(&mut k, 6, 7);
    let r = run(&k, &k.clone());
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.diagnostics.kernel.d_delete_clears, 1);
    assert_eq!(r.diagnostics.kernel.unnamed_parents, 0);
    assert_eq!(r.exit_status, 0);
    // The slab gave the new directory the address of the killed file: that id's old name
    // (d0/m6) must not be taken for the directory's.
    let mut k = Trace::default();
    pruned_dir_then_unlink(&mut k, 3, 7);
    let r = run(&k, &Trace::default());
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.diagnostics.kernel.d_delete_clears, 1);
}

#[test]
fn a_kill_path_clear_under_a_re_created_directory_is_still_flagged() {
    let mut k = Trace::default();
    pruned_dir_then_unlink(&mut k, 6, 7);
    // A stat of the file names the new directory; then a prune clears the hashed file dentry.
    k.op(OpKind::Create, "d0/m6", 3_000, 3_100, 10, 0);
    k.op(OpKind::Stat, "d0/m6", 3_200, 3_300, 11, 0);
    k.lookup(ROOT, 6, "d0", (3_205, 3_210), 11, 21, (2, 2), H | V);
    k.lookup(6, 8, "m6", (3_215, 3_220), 11, 32, (2, 2), H | V);
    k.op(OpKind::DropCaches, "", 4_000, 4_100, 20, 0);
    k.writer(
        Probe::DentryUnlinkInode,
        8,
        "m6",
        (4_010, 4_020),
        20,
        (32, 0),
        (2, 4),
        H,
    )
    .under(6);
    let r = run(&k, &Trace::default());
    assert_eq!(kinds(&r), [("kernel", "clear-before-unhash")]);
    assert_eq!(r.anomalies[0].name, "d0/m6");
}

#[test]
fn a_lookup_that_read_a_kill_stamped_after_it_is_a_labelled_gap() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.lookup(ROOT, 2, "f1", (300, 310), 11, 7, (2, 2), H | V);
    // The lookup's thread stalls between its stamp and its reads: it reads the kill's
    // unhash and clear (2 -> 6) whose events are stamped after it, on another CPU (on its
    // own, the kill would have waited for the stalled probe: 6 then 2 is the count going
    // back).
    k.op(OpKind::Stat, "f1", 895, 2_000, 12, 0);
    k.lookup(ROOT, 2, "f1", (900, 910), 12, 0, (2, 6), 0)
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
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.coverage_gaps.kernel.total, 0, "explained by the drop");
    assert_eq!(r.diagnostics.kernel.seq_moves_seen_early, 1);
    assert_eq!(r.diagnostics.kernel.seq_regressions, 0);
    assert_eq!(class(&r, "kernel", "rejected-snapshot"), 1);
    assert_eq!(r.exit_status, 0, "{:?}", r.reasons);

    // The same kill a millisecond after the stat that read its doing had ended: the lookup
    // read before its operation ended, so this kill cannot be what it saw.
    let mut late = Trace::default();
    for e in &k.events {
        let mut e = *e;
        let writer = e.probe != Probe::Op as u8 && e.probe != Probe::DLookupRcu as u8;
        if writer || (e.probe == Probe::Op as u8 && e.aux == OpKind::DropCaches as u32) {
            e.ts_begin += 1_000_000;
            e.ts_end += 1_000_000;
        }
        late.events.push(e);
    }
    let r = run(&late, &late.clone());
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.coverage_gaps.kernel.total, 1);
    assert_eq!(r.diagnostics.kernel.seq_moves_seen_early, 0);
    assert_eq!(r.exit_status, 2);
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == ReasonKind::UnexplainedSeqMoves),
        "{:?}",
        r.reasons
    );
}

// The diff's writer rules follow the generation's `__d_drop` shape: up to 4.14 `__d_move` calls
// the traced `__d_drop` inside its sections (+4 for a hashed dentry, 2 of them the nested
// `__d_drop`'s). rev5 finding 1.

fn run_on_release(release: &str, profile: &str, t: &Trace) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = dir.path().join("kernel.trace");
    let m = dir.path().join("model.trace");
    t.write_with(&k, Origin::Kernel, finished(), |h| {
        h.kernel_release = release.into();
        h.attach.insert(
            "__d_drop".into(),
            tracer_analysis::trace::Attachment::Fentry,
        );
        h.attach.insert(
            "__d_move".into(),
            tracer_analysis::trace::Attachment::Fentry,
        );
    });
    t.write_with(&m, Origin::Model, finished(), |h| {
        h.kernel_release = release.into();
        h.profile = Some(profile.into());
    });
    diff_files(&k, &m, &DiffOptions::default()).expect("diff")
}

/// A rename of `f1` (dentry 2, hashed) onto the new name `f2` (dentry 3: the negative hashed
/// dentry `__lookup_hash()` left), as a 3.0-4.14 kernel records it: `__d_move()` opens both
/// `write_seqcount_begin()` sections, then calls the out-of-line `__d_drop()` on each (hashed:
/// unlink, `pprev = NULL`, `write_seqcount_barrier/invalidate` +2; fs/dcache.c of 3.0.1 and
/// 4.8.15), then closes both: each dentry's `d_seq` moves by 4 across `__d_move`, the traced
/// `__d_drop`s inside explaining 2 of it. The target is then killed unhashed and negative.
fn rename_as_a_single_d_drop_kernel_records_it() -> Trace {
    let mut t = Trace::default();
    created(&mut t, "f1");
    t.op(OpKind::Rename, "f1\0f2", 1_000, 2_000, 13, 0);
    t.writer(Probe::DMove, 2, "f1", (1_100, 1_500), 13, (7, 7), (2, 6), H);
    t.writer(
        Probe::DMoveTarget,
        3,
        "f2",
        (1_100, 1_500),
        13,
        (0, 0),
        (2, 6),
        H,
    );
    t.writer(
        Probe::DDrop,
        2,
        "f1",
        (1_150, 1_200),
        13,
        (7, 7),
        (3, 5),
        flags::HASHED_BEGIN,
    );
    t.writer(
        Probe::DDrop,
        3,
        "f2",
        (1_250, 1_300),
        13,
        (0, 0),
        (3, 5),
        flags::HASHED_BEGIN,
    );
    t.writer(
        Probe::DentryKill,
        3,
        "f2",
        (1_600, 1_700),
        13,
        (0, 0),
        (6, 6),
        0,
    );
    t.writer(Probe::DDrop, 3, "f2", (1_610, 1_620), 13, (0, 0), (6, 6), 0);
    t
}

/// rev5 finding 1: on the generations whose `__d_move` calls the traced `__d_drop` inside its
/// sections (`DDropShape::Single`, 3.0–4.14) a hashed dentry moves by 4, and the `__d_drop`
/// nested in that `__d_move` explains the 2 beyond `__d_move`'s own; the diff once allowed +2
/// in every generation, and every such rename was an "untraced writer inside __d_move" gap.
/// The same +4 without the nested `__d_drop` must stay a gap; 4.15+'s shape (`___d_drop`
/// inside, +2 in all) stays clean.
#[test]
fn d_move_with_d_drop_inside_is_explained_on_single_d_drop_kernels() {
    // Control: the same rename as 4.15+ records it (`___d_drop` inside, +2 in all) is clean.
    let mut split = Trace::default();
    created(&mut split, "f1");
    split.op(OpKind::Rename, "f1\0f2", 1_000, 2_000, 13, 0);
    split.writer(Probe::DMove, 2, "f1", (1_100, 1_500), 13, (7, 7), (2, 4), H);
    split.writer(
        Probe::DMoveTarget,
        3,
        "f2",
        (1_100, 1_500),
        13,
        (0, 0),
        (2, 4),
        H,
    );
    split.writer(
        Probe::DDropInner,
        2,
        "f1",
        (1_150, 1_200),
        13,
        (7, 7),
        (3, 3),
        H,
    );
    split.writer(
        Probe::DDropInner,
        3,
        "f2",
        (1_250, 1_300),
        13,
        (0, 0),
        (3, 3),
        H,
    );
    split.writer(
        Probe::DentryKill,
        3,
        "f2",
        (1_600, 1_700),
        13,
        (0, 0),
        (4, 4),
        0,
    );
    let r = run_on_release("6.1.0-27-amd64", "linux-6.1", &split);
    assert!(
        r.coverage_gaps.kernel.by_cause.is_empty(),
        "{:?}",
        r.coverage_gaps.kernel.by_cause
    );
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    for (release, profile) in [("3.0.1", "linux-3.0"), ("4.8.15", "linux-4.8")] {
        let r = run_on_release(
            release,
            profile,
            &rename_as_a_single_d_drop_kernel_records_it(),
        );
        let c = &r.coverage_gaps.kernel;
        assert!(
            !c.by_cause.contains_key("untraced writer inside __d_move"),
            "{release}: {:?}",
            c.by_cause
        );
        assert!(r.anomalies.is_empty(), "{release}: {:?}", r.anomalies);
        // The same +4 with no nested `__d_drop` event: nothing traced explains the extra 2.
        let mut untraced = rename_as_a_single_d_drop_kernel_records_it();
        untraced
            .events
            .retain(|e| !(e.probe == Probe::DDrop as u8 && e.seq_begin == 3));
        let r = run_on_release(release, profile, &untraced);
        assert_eq!(
            r.coverage_gaps
                .kernel
                .by_cause
                .get("untraced writer inside __d_move"),
            Some(&2),
            "{release}: {:?}",
            r.coverage_gaps.kernel.by_cause
        );
    }
}
