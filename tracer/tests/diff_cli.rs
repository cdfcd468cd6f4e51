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
