//! The command line at its boundaries: numbers out of range, outputs that are inputs, stale
//! reports after a failure, errors that name each cause once. Each case failed before: a
//! panic (exit 101), a destroyed input, a report left from an earlier run, or a repeated cause.
use std::{path::Path, process::Command};

use tracer_common::OpKind;

#[path = "../../tracer-analysis/tests/support/mod.rs"]
mod support;
use support::*;

fn tracer(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args(args)
        .output()
        .expect("run tracer");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small kernel trace holding the builtin `unlink-stat` (so `replay --against` runs it).
fn kernel_trace(path: &Path) {
    same_ops().write(path, Origin::Kernel, finished());
}

fn same_ops() -> Trace {
    let mut t = Trace::default();
    created(&mut t, "f1");
    t.op(OpKind::Stat, "f1", 1_000, 1_100, 12, 0);
    // Its walk, seen (a kernel trace whose stats no lookup saw is `nothing-observed`).
    t.lookup(ROOT, 2, "f1", (1_010, 1_020), 12, 7, (2, 2), H | V);
    t
}

#[test]
fn numbers_out_of_range_are_refused_naming_the_flag_and_range() {
    for (args, needle) in [
        (
            &["stress", "--seconds", "1e-10"][..],
            "allowed: 0.001 to 86400 seconds",
        ),
        (&["stress", "--seconds", "1e30"][..], "allowed: 0.001"),
        (&["stress", "--readers", "100000"][..], "--readers"),
        (
            &["replay", "--workload", "unlink-stat", "--scale", "1e300"][..],
            "--scale",
        ),
        (&["check", "--jobs", "0"][..], "--jobs"),
        (
            &["diff", "a", "b", "--context", "99999999999"][..],
            "allowed: 0 to 1000",
        ),
    ] {
        let (code, err) = tracer(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_trace_header_scale_that_overflows_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("kernel.trace");
    let w = tracer_analysis::workload::builtin("prune-stat")
        .expect("builtin")
        .expect("parses");
    let mut h = tracer_analysis::trace::Header::new(Origin::Kernel);
    h.kernel_release = "6.1.0".into();
    h.workload_toml = Some(w.source().to_string());
    h.scale = Some(1e300);
    tracer_analysis::trace::Writer::create(&kernel, &h)
        .expect("create")
        .finish(finished())
        .expect("finish");
    let out = dir.path().join("model.trace");
    let (code, err) = tracer(&["replay", "--against", s(&kernel), "--out", s(&out)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("kernel.trace: the header's `scale`: scale factor 1e300 is out of range"),
        "{err}"
    );
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("kernel.trace");
    kernel_trace(&kernel);
    let before = std::fs::read(&kernel).expect("read");
    let k = s(&kernel);
    let cases: [&[&str]; 4] = [
        &["replay", "--against", k, "--out", k],
        &["export", k, "--out", k],
        &["diff", k, k, "--json", k],
        &["diff", k, k, "--timeline", k],
    ];
    for args in cases {
        let (code, err) = tracer(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("would destroy the input"), "{args:?}: {err}");
        assert_eq!(std::fs::read(&kernel).expect("read"), before, "{args:?}");
    }
}

#[test]
fn a_failed_diff_removes_the_previous_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("kernel.trace");
    kernel_trace(&kernel);
    let model = dir.path().join("model.trace");
    same_ops().write(&model, Origin::Model, finished());
    let json = dir.path().join("report.json");
    let timeline = dir.path().join("timeline.json");
    let (code, err) = tracer(&[
        "diff",
        s(&kernel),
        s(&model),
        "--json",
        s(&json),
        "--timeline",
        s(&timeline),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(json.exists() && timeline.exists());

    let missing = dir.path().join("missing.trace");
    let (code, err) = tracer(&[
        "diff",
        s(&kernel),
        s(&missing),
        "--json",
        s(&json),
        "--timeline",
        s(&timeline),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!json.exists(), "the previous JSON report is gone");
    assert!(!timeline.exists(), "the previous timeline is gone");
    // Each cause once: the trace error names the path, the OS error follows it once.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.matches("missing.trace").count(), 1, "{err}");
}

/// A recording that fails, however early (here: no BTF at the path given), removes the
/// summary an earlier run left, so it cannot be read as this run's.
#[test]
fn a_failed_record_removes_the_previous_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.json");
    std::fs::write(&summary, "{}").expect("an earlier run's summary");
    let (code, err) = tracer(&[
        "record",
        "--workload",
        "unlink-stat",
        "--btf",
        s(&dir.path().join("no-btf")),
        "--out",
        s(&dir.path().join("kernel.trace")),
        "--summary",
        s(&summary),
        "--quiet",
    ]);
    assert_ne!(code, Some(0), "{err}");
    assert!(!summary.exists(), "the earlier summary is gone: {err}");
}

#[test]
fn an_export_to_a_file_leaves_no_partial_file_when_the_trace_is_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bogus.trace");
    std::fs::write(&bogus, b"not a trace").expect("write");
    let out = dir.path().join("out.jsonl");
    let (code, err) = tracer(&["export", s(&bogus), "--out", s(&out)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!out.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
}

/// `--leave-attached` would leave the probes attached after the tracer exits: off the VM guest
/// (no `dcache_tracer.guest` on the kernel command line, as on this host) it is refused before
/// anything is attached or written.
#[test]
fn leave_attached_is_refused_off_the_vm_guest() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").expect("read /proc/cmdline");
    assert!(
        !cmdline
            .split_whitespace()
            .any(|w| w == "dcache_tracer.guest"),
        "this test runs on a host, not in the VM guest"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("kernel.trace");
    let (code, err) = tracer(&["record", "--leave-attached", "--out", s(&out)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("only for cargo xtask's VM guest"), "{err}");
    assert!(err.contains("leave the flag out"), "{err}");
    assert!(!out.exists(), "nothing is written");
}

/// The bench runs many recordings in one boot: one left attached would sit under every run
/// after it, so the bench refuses to pass `--leave-attached` on.
#[test]
fn the_bench_refuses_to_leave_recordings_attached() {
    let (code, err) = tracer(&["bench", "--record-arg", "--leave-attached"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--record-arg --leave-attached"), "{err}");
    assert!(err.contains("leave it out"), "{err}");
}
