//! The `tracer` binary's library: probe loading, recording, workloads, trace files, diff.
pub mod attach;
pub mod btf;
pub mod diff;
pub mod export;
pub mod programs;
pub mod record;
pub mod replay;
pub mod trace;
pub mod verify;
pub mod workload;
