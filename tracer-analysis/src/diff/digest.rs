//! What a tool reads back from `tracer diff --json` to act on a verdict (the matrix, the
//! end-to-end step, `cargo xtask detect`): the verdict, its reasons and the counts they
//! assert on, typed with the report's own enums, so a renamed kind or verdict breaks the
//! build instead of a string comparison. Fields of the report beyond these are ignored.
use std::{collections::BTreeMap, fs, io, path::Path};

use serde::Deserialize;

use super::vocabulary::{
    AnomalyKind, Classes, CpuSequence, EventCounts, LostEvents, PerSide, Reason, Side, Verdict,
    SCHEMA,
};

/// The part of report.json that decides what a run of the diff means.
#[derive(Clone, Debug, Deserialize)]
pub struct ReportDigest {
    pub verdict: Verdict,
    pub exit_status: i32,
    pub reasons: Vec<Reason>,
    pub anomaly_counts: PerSide<BTreeMap<AnomalyKind, u64>>,
    pub anomalies: Vec<AnomalyStamp>,
    pub events: PerSide<EventCounts>,
    pub lost_events: PerSide<LostEvents>,
    pub null_inode_returns: PerSide<Classes>,
    pub enoent_results: PerSide<Classes>,
    pub coverage_gaps: PerSide<GapCounts>,
    pub cpu_sequence: BTreeMap<u32, CpuSequence>,
    pub diagnostics: PerSide<TimeRanges>,
}

/// Which side an anomaly is on, what it is and when its operation began.
#[derive(Clone, Debug, Deserialize)]
pub struct AnomalyStamp {
    pub side: Side,
    pub kind: AnomalyKind,
    pub ts_begin: u64,
}

/// A side's coverage gaps, counted.
#[derive(Clone, Debug, Deserialize)]
pub struct GapCounts {
    pub total: u64,
    pub by_cause: BTreeMap<String, u64>,
}

/// When a side's operations ran.
#[derive(Clone, Debug, Deserialize)]
pub struct TimeRanges {
    pub operation_time_range: Option<(u64, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is not a tracer diff report (re-run `tracer diff --json`): {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path} is a report of layout {found}, this build reads {SCHEMA}: re-run `tracer diff --json` with this build"
    )]
    Schema { path: String, found: String },
}

/// Only the layout's name is read first, so that a report of another layout is named as such
/// rather than as a missing field.
#[derive(Deserialize)]
struct Layout {
    schema: String,
}

impl ReportDigest {
    pub fn read(path: &Path) -> Result<Self, DigestError> {
        let text = fs::read_to_string(path).map_err(|source| DigestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// `origin` names the text in errors (a path, usually).
    pub fn parse(text: &str, origin: &str) -> Result<Self, DigestError> {
        let parse_error = |source| DigestError::Parse {
            path: origin.to_owned(),
            source,
        };
        let layout: Layout = serde_json::from_str(text).map_err(parse_error)?;
        if layout.schema != SCHEMA {
            return Err(DigestError::Schema {
                path: origin.to_owned(),
                found: layout.schema,
            });
        }
        serde_json::from_str(text).map_err(parse_error)
    }
}
