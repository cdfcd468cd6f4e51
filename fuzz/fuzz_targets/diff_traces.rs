//! Two traces of fuzzed events (written with valid checksums): the diff returns a report or
//! an error, never panics, and its exit status agrees with its anomalies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_analysis::{
    diff::{diff_files, DiffOptions},
    trace::Origin,
};

fuzz_target!(|data: &[u8]| {
    let (kernel, model) = tracer_fuzz::split_events(data);
    let (kp, mp) = (
        tracer_fuzz::scratch("kernel.trace"),
        tracer_fuzz::scratch("model.trace"),
    );
    tracer_fuzz::write_trace(&kp, Origin::Kernel, &kernel);
    tracer_fuzz::write_trace(&mp, Origin::Model, &model);
    if let Ok(report) = diff_files(&kp, &mp, &DiffOptions::default()) {
        if !report.anomalies.is_empty() {
            assert_ne!(report.exit_status, 0, "anomalies with a clean exit");
        }
    }
});
