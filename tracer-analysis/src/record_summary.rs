//! What `tracer record --summary` writes about a recording, and what the VM test step and the
//! matrix read back: one type for both sides, so the attach modes and the recording's end are
//! the trace header's enums, not strings each reader parses its own way.
use std::{collections::BTreeMap, fs, io, path::Path, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::trace::{Attachment, End};

/// A recording, as `tracer record --summary` writes it (JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordSummary {
    pub trace: PathBuf,
    pub kernel_release: String,
    /// Per target symbol: how it was traced (`"fentry"`, `"kprobe"`, `"absent: why"` or `"refused: why"`).
    pub attach: BTreeMap<String, Attachment>,
    /// Events in the trace per probe symbol ("workload" for operations).
    pub events: BTreeMap<String, u64>,
    pub hits: BTreeMap<String, u64>,
    pub drops: BTreeMap<String, u64>,
    pub lost: u64,
    /// Of the calls lost, per probe symbol, those the kernel gave no program run for: an entry
    /// it skipped (recursion guard, kprobe missed, or an exit without its entry, which may
    /// also be the tracer's own lost slot) or a return its kretprobe missed. A larger ring
    /// buffer does not bring them back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kernel_skips: BTreeMap<String, u64>,
    pub ops: u64,
    /// The recording, from attach to the last event drained.
    pub seconds: f64,
    /// The workload alone, from its threads' start to the last one's end: what tracing slows.
    pub workload_seconds: f64,
    /// Reading the kernel's BTF (struct offsets, function signatures) and the embedded object.
    pub load_seconds: f64,
    /// Loading the programs through the verifier and attaching them.
    pub attach_seconds: f64,
    /// Detaching, reading the counters and writing the trace after the workload.
    pub finish_seconds: f64,
    /// The consumer thread's CPU time while the workload ran: what draining took from it.
    pub consumer_cpu_seconds: f64,
    /// Times the consumer woke while the workload ran (ring readiness or its drain tick).
    pub consumer_wakeups: u64,
    /// With `--program-stats`: per program, its runs and the kernel's time in it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub programs: BTreeMap<String, ProgramStats>,
    pub kernel_events_per_second: f64,
    /// How the recording ended, as its one-line text (`"finished"`, `"error: why"`, ...).
    #[serde(with = "end_text")]
    pub end: End,
    pub complete: bool,
    /// At the end the kernel's counters and the drained events agreed (no call in flight):
    /// the footer's counts are that snapshot's.
    pub counters_settled: bool,
}

/// One program's runs and the time the kernel measured in it (the program alone: not the
/// trampoline or kprobe that calls it).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgramStats {
    pub runs: u64,
    pub ns_per_run: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is not a `tracer record --summary` of this build: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

impl RecordSummary {
    pub fn read(path: &Path) -> Result<Self, SummaryError> {
        let text = fs::read(path).map_err(|source| SummaryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| SummaryError::Parse {
            path: path.display().to_string(),
            source,
        })
    }
}

/// The end as the one line people read (`End`'s `Display`), and back.
pub mod end_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::trace::End;

    pub fn serialize<S: Serializer>(end: &End, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(end)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<End, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "finished" => End::Finished,
            "interrupted" => End::Interrupted,
            "partial" => End::Partial,
            other => match other.strip_prefix("error: ") {
                Some(why) => End::Error(why.to_owned()),
                None => {
                    return Err(serde::de::Error::custom(format!(
                        "recording end {other:?}: expected \"finished\", \"interrupted\", \
                         \"partial\" or \"error: why\""
                    )))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_and_attach_mode_reads_back_as_written() {
        for end in [
            End::Finished,
            End::Interrupted,
            End::Partial,
            End::Error("consumer: ring gone".into()),
        ] {
            let s = RecordSummary {
                attach: BTreeMap::from([
                    ("__d_lookup_rcu".into(), Attachment::Fentry),
                    ("___d_drop".into(), Attachment::Kprobe),
                    (
                        "dentry_iput".into(),
                        Attachment::Absent("fentry: no BTF FUNC".into()),
                    ),
                ]),
                end: end.clone(),
                ..RecordSummary::default()
            };
            let json = serde_json::to_value(&s).expect("serialize");
            assert_eq!(json["end"], end.to_string());
            assert_eq!(json["attach"]["dentry_iput"], "absent: fentry: no BTF FUNC");
            let back: RecordSummary = serde_json::from_value(json).expect("read back");
            assert_eq!(back.end, end);
            assert_eq!(back.attach, s.attach);
        }
    }

    #[test]
    fn an_unknown_end_is_refused_with_what_is_expected() {
        let mut json = serde_json::to_value(RecordSummary::default()).expect("serialize");
        json["end"] = "done".into();
        let e = serde_json::from_value::<RecordSummary>(json).expect_err("unknown end");
        assert!(e.to_string().contains("expected \"finished\""), "{e}");
    }
}
