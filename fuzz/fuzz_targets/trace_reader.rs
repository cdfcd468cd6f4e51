//! Any bytes as a trace file: the reader returns events or a typed error, never panics, never
//! allocates past its bounds; a file it reads whole writes back to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_fuzz::Checksums;

fuzz_target!(|data: &[u8]| tracer_fuzz::read_trace(data, Checksums::AsGiven));
