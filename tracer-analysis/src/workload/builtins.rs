//! The builtin workloads, embedded from `tracer-analysis/workloads/*.toml` so `--show` prints
//! exactly what runs.
use std::fmt::Write;

use super::{Workload, WorkloadError};

const BUILTINS: [(&str, &str); 6] = [
    (
        "unlink-stat",
        include_str!("../../workloads/unlink-stat.toml"),
    ),
    (
        "prune-stat",
        include_str!("../../workloads/prune-stat.toml"),
    ),
    (
        "rename-stat",
        include_str!("../../workloads/rename-stat.toml"),
    ),
    ("negative", include_str!("../../workloads/negative.toml")),
    (
        "rename-exchange",
        include_str!("../../workloads/rename-exchange.toml"),
    ),
    ("rmdir", include_str!("../../workloads/rmdir.toml")),
];

/// The builtin called `name`, parsed; `None` if there is none. (Parsing cannot fail for the
/// shipped files, which the tests hold, but an error is still an error rather than a panic.)
pub fn builtin(name: &str) -> Option<Result<Workload, WorkloadError>> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Workload::from_toml(text, &format!("builtin {n}")))
}

/// Every builtin, parsed, in listing order.
pub fn builtins() -> Result<Vec<Workload>, WorkloadError> {
    BUILTINS
        .iter()
        .map(|(n, text)| Workload::from_toml(text, &format!("builtin {n}")))
        .collect()
}

/// One line per builtin: name, file system, threads, operations, description.
pub fn listing() -> Result<String, WorkloadError> {
    let mut out = String::new();
    for w in builtins()? {
        let bounded: u64 = w
            .threads
            .iter()
            .filter_map(|t| t.iterations.map(|n| n * t.ops.len() as u64))
            .sum();
        let ops = if w.threads.iter().all(|t| t.is_bounded()) {
            format!("{bounded} ops")
        } else {
            format!("{bounded}+ ops")
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:<15} {:<6} {:>2} threads {:>10}  {}",
            w.name,
            w.filesystem.name(),
            w.threads.len(),
            ops,
            w.description
        );
    }
    Ok(out)
}
