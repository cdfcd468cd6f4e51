//! `tracer check` end to end: the table as JSON, one failing check written as a trace that the
//! trace reader and `tracer export` take, one that holds. The verdicts themselves are tested
//! in userspace-dcache's tests/loom.rs; these runs use the sequentially consistent model or
//! small checks, which loom explores in seconds even in a debug build.
use std::process::Command;

use serde_json::Value;
use tracer_analysis::trace::{Origin, Reader};
use tracer_common::Probe;

fn tracer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args(args)
        .output()
        .expect("tracer runs")
}

#[test]
fn table_as_json_lists_every_profile_scenario_and_mutant() {
    let out = tracer(&["check", "--model", "sc", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON list");
    assert_eq!(
        list.len(),
        (20 + 9) * 4,
        "(20 profiles + 9 mutants on 6.1) x 4 scenarios, one model"
    );
    for o in &list {
        for key in ["profile", "scenario", "mutant", "verdict"] {
            assert!(o.get(key).is_some(), "{o}: no {key}");
        }
        assert_eq!(o["model"], "sc");
        assert!(
            o["why"].as_str().is_some_and(|w| w.len() > 40),
            "{o}: every row says why"
        );
    }
    let row = |profile: &str, scenario: &str| {
        list.iter()
            .find(|o| o["profile"] == profile && o["scenario"] == scenario && o["mutant"].is_null())
            .expect("a row")
    };
    // Hugh's bug and 4c0d7cd5's cwd hole need no reordering; the rest of 2.6.38-4.17's
    // failures do, so they hold here.
    assert_eq!(row("linux-2.6.39", "kill")["verdict"], "fails");
    assert_eq!(row("linux-3.0", "kill")["verdict"], "holds");
    assert_eq!(row("linux-4.8", "unhashed-kill")["verdict"], "holds");
    assert_eq!(row("linux-4.8", "cwd-dotdot")["verdict"], "fails");
    assert_eq!(row("linux-4.17", "cwd-dotdot")["verdict"], "fails");
    assert_eq!(row("linux-4.18", "cwd-dotdot")["verdict"], "holds");
    assert_eq!(row("linux-5.7", "cwd-dotdot")["verdict"], "holds");
    assert!(row("linux-2.6.39", "kill")["steps"].is_array());
    // __d_drop without its invalidate: 6.1's kill bracket still turns every reader away.
    let unhash_only: Vec<&Value> = list
        .iter()
        .filter(|o| o["mutant"] == "d-drop-no-invalidate")
        .collect();
    assert_eq!(unhash_only.len(), 4);
    assert!(unhash_only.iter().all(|o| o["verdict"] == "holds"));
}

#[test]
fn a_failing_check_writes_its_counterexample_as_a_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cex.trace");
    let p = path.to_str().expect("utf-8 path");
    let out = tracer(&[
        "check",
        "--profile",
        "linux-4.8",
        "--scenario",
        "kill",
        "--out",
        p,
    ]);
    assert_eq!(out.status.code(), Some(1), "fails: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let n: usize = text
        .split("lookup: fails (")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a failing lookup invariant: {text}"));
    assert!(text.contains("why: MP without a write barrier"), "{text}");
    assert!(
        text.contains("linux-4.8: the generation opened by dentry_iput() folded"),
        "{text}"
    );

    let (header, events, footer) = Reader::open(&path)
        .expect("a trace")
        .read_all()
        .expect("intact");
    assert_eq!(header.origin, Origin::Check);
    assert_eq!(header.profile.as_deref(), Some("linux-4.8"));
    assert_eq!(
        header.notes.get("invariant").map(String::as_str),
        Some("lookup")
    );
    assert_eq!(
        header.notes.get("memory_model").map(String::as_str),
        Some("c11")
    );
    assert_eq!(header.kernel_release, "4.8");
    assert!(footer.complete());
    assert_eq!(events.len(), n);
    assert_eq!(footer.threads.len(), 2, "stat, shrinker");
    assert!(events.iter().any(|e| e.probe() == Some(Probe::DLookupRcu)));
    let stat = events
        .iter()
        .find(|e| e.probe() == Some(Probe::Op))
        .expect("the reader's stat");
    assert_eq!(stat.result, -2, "ENOENT for a file that exists");

    let out = tracer(&["export", p]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), n);
}

#[test]
fn a_check_that_holds_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("none.trace");
    let p = path.to_str().expect("utf-8 path");
    let args = [
        "check",
        "--profile",
        "linux-6.1",
        "--scenario",
        "delete",
        "--out",
        p,
    ];
    let out = tracer(&args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!path.exists());
    let out = tracer(&["check", "--profile", "linux-6.1", "--scenario", "rename"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("known: kill, delete, unhashed-kill, cwd-dotdot"));
}
