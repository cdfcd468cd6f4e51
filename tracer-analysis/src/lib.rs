//! The analysis half of the tracer: the trace file format, workload definitions, replay of a
//! workload or a kernel trace on the model, and the diff with its reports. Nothing here loads a
//! probe or needs the eBPF toolchain: it builds and tests with stable Rust alone.
//!
//! The `engine` feature (default) is the replay, the model, the workload parser and the diff's
//! engine. Without it the crate is what a tool reading the tracer's files needs (xtask): the
//! trace format with its atomic outputs, the record summary, report.json's vocabulary and
//! digest, and the builtin workloads' names.
#[cfg(feature = "engine")]
pub mod agreement;
#[cfg(feature = "engine")]
mod cache_line;
#[cfg(feature = "engine")]
mod codes;
#[cfg(feature = "engine")]
pub mod diff;
/// Without the engine: report.json's vocabulary and what a tool reads back from it.
#[cfg(not(feature = "engine"))]
pub mod diff {
    mod digest;
    mod vocabulary;

    pub use digest::{AnomalyStamp, DigestError, GapCounts, ReportDigest, TimeRanges};
    pub use vocabulary::{
        AnomalyKind, Classes, CpuSequence, EventCounts, LostEvents, PerSide, Reason, ReasonKind,
        Side, Verdict, SCHEMA,
    };
}
#[cfg(feature = "engine")]
pub mod export;
pub mod output;
pub mod record_summary;
#[cfg(feature = "engine")]
pub mod replay;
pub mod trace;
#[cfg(feature = "engine")]
pub mod workload;
/// Without the engine: the builtin workloads' names alone.
#[cfg(not(feature = "engine"))]
pub mod workload {
    mod names;

    pub use names::BUILTIN_NAMES;
}
#[cfg(feature = "engine")]
pub mod writers;

#[cfg(test)]
mod test_rng;
