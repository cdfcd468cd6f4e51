//! report.json as `tracer diff --json` writes it, for the tests of the steps that read it
//! back (`ReportDigest`): every field the digest reads, with a clean run's values.
use serde_json::{json, Value};
use tracer_analysis::diff::SCHEMA;

/// A clean report; tests change the fields they are about.
pub fn clean() -> Value {
    let classes = json!({"total": 0, "by_class": {}, "anomalous": 0});
    let counts = json!({"total": 0, "per_probe": {}, "per_operation": {}});
    let lost = json!({"total": 0, "per_probe": {}});
    let gaps = json!({"total": 0, "by_cause": {}});
    let times = json!({"operation_time_range": null});
    json!({
        "schema": SCHEMA,
        "verdict": "clean",
        "exit_status": 0,
        "reasons": [],
        "anomaly_counts": {"kernel": {}, "model": {}},
        "anomalies": [],
        "events": {"kernel": counts, "model": counts},
        "lost_events": {"kernel": lost, "model": lost},
        "null_inode_returns": {"kernel": classes, "model": classes},
        "enoent_results": {"kernel": classes, "model": classes},
        "coverage_gaps": {"kernel": gaps, "model": gaps},
        "cpu_sequence": {},
        "diagnostics": {"kernel": times, "model": times},
    })
}

/// A report with `verdict` and its exit status.
pub fn with_verdict(verdict: &str) -> String {
    let mut r = clean();
    r["exit_status"] = match verdict {
        "clean" => 0,
        "anomalies" => 1,
        _ => 2,
    }
    .into();
    r["verdict"] = verdict.into();
    r.to_string()
}
