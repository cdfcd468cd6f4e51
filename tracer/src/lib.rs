//! The `tracer` binary's library: the kernel side's loader and recorder. Probe programs and
//! their attach plan, offsets from BTF, the verifier check, the workload runner on a live file
//! system, the recorder. The analysis (trace format, replay, diff) is `tracer-analysis`. The
//! command line (`cli`, with its subcommands' handlers in `commands`) is here too; the binary
//! only calls it.
pub mod attach;
pub mod btf;
pub mod cli;
mod commands;
pub mod kernel;
pub mod programs;
pub mod record;
pub mod runner;
pub mod verify;
