//! The `tracer` binary's library: probe loading, recording, workloads, trace files, diff.
pub mod btf;
pub mod programs;
pub mod trace;
pub mod verify;
