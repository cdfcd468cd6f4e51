//! The analysis half of the tracer: the trace file format, workload definitions, replay of a
//! workload or a kernel trace on the model, and the diff with its reports. Nothing here loads a
//! probe or needs the eBPF toolchain: it builds and tests with stable Rust alone.
pub mod agreement;
mod cache_line;
mod codes;
pub mod diff;
pub mod export;
pub mod output;
pub mod record_summary;
pub mod replay;
pub mod trace;
pub mod workload;
pub mod writers;

#[cfg(test)]
mod test_rng;
