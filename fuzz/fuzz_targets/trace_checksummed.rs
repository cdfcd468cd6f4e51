//! Any bytes as a trace file once every checksum its framing reaches is recomputed (and the
//! footer's event count set): the fuzzer's changes to records, counts and lengths reach the
//! reader's structural checks, which a CRC-32 it cannot repair keeps `trace_reader` out of.
//! Same oracle as `trace_reader`, and no checksum mismatch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_fuzz::Checksums;

fuzz_target!(|data: &[u8]| {
    tracer_fuzz::read_trace(&tracer_fuzz::with_checksums(data), Checksums::Recomputed)
});
