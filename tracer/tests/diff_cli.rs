//! `tracer diff` on the command line: reports, exit statuses like diff(1), errors naming the file.
use std::process::Command;

use tracer_common::OpKind;

#[path = "../../tracer-analysis/tests/support/mod.rs"]
mod support;
use support::*;

#[test]
fn the_command_line_reports_and_exits_like_diff() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, -2);
    let clean = Trace::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp, json) = (
        dir.path().join("k.trace"),
        dir.path().join("m.trace"),
        dir.path().join("report.json"),
    );
    k.write(&kp, Origin::Kernel, finished());
    clean.write(&mp, Origin::Model, finished());
    let bin = env!("CARGO_BIN_EXE_tracer");
    let out = Command::new(bin)
        .arg("diff")
        .arg(&kp)
        .arg(&mp)
        .arg("--json")
        .arg(&json)
        .args(["--context", "2"])
        .output()
        .expect("run tracer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ANOMALIES"), "{stdout}");
    assert!(stdout.contains("anomaly 1: spurious-enoent f1"), "{stdout}");
    assert!(stdout.contains("verdict: 1 anomalies (exit 1)"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert_eq!(v["exit_status"], 1);

    // Refused inputs: one line naming the problem, exit 2.
    for (kernel, model, says) in [
        (&mp, &mp, "the same file given twice"),
        (&mp, &kp, "the kernel trace must be a kernel trace"),
        (&kp, &kp, "the same file given twice"),
    ] {
        let out = Command::new(bin)
            .arg("diff")
            .arg(kernel)
            .arg(model)
            .output()
            .expect("run tracer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    let copy = dir.path().join("copy.trace");
    std::fs::copy(&kp, &copy).expect("copy");
    let out = Command::new(bin)
        .arg("diff")
        .arg(&kp)
        .arg(&copy)
        .output()
        .expect("run tracer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the model trace must be a model trace"),
        "{stderr}"
    );

    let out = Command::new(bin)
        .arg("diff")
        .arg(dir.path().join("missing.trace"))
        .arg(&mp)
        .output()
        .expect("run tracer");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.trace"), "{stderr}");
}

/// The anomalies' records wait in a temporary file: where none can be made, the diff stops
/// with one error naming the directory and the fix, not a report with counts it could not
/// keep.
#[test]
fn a_temporary_directory_that_cannot_be_written_is_named() {
    let mut k = Trace::default();
    created(&mut k, "f1");
    k.op(OpKind::Stat, "f1", 1_000, 1_100, 12, -2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    k.write(&mp, Origin::Model, finished());
    let missing = dir.path().join("no-such-dir");
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .arg("diff")
        .arg(&kp)
        .arg(&mp)
        .env("TMPDIR", &missing)
        .output()
        .expect("run tracer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot keep the anomalies' records in a temporary file in {}; set TMPDIR to a \
             writable directory with free space",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no report: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
