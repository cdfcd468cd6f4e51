//! Any text as a workload file: parsing returns a workload or an error, never panics; a
//! workload that parses scales, expands its setup and generates its threads' operations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_analysis::workload::Workload;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut w) = Workload::from_toml(text, "fuzz.toml") else {
        return;
    };
    // Every operation's name must fit an event; the first operations of each thread suffice
    // (a thread may run for a billion iterations).
    for ops in w.all_thread_ops() {
        for op in ops.take(64) {
            assert!(op.event_name().len() <= tracer_common::NAME_CAP);
        }
    }
    let _ = w.setup_ops();
    let _ = w.planned_ops();
    for factor in [1e-6, 0.5, 3.0, 1e6] {
        let before = w.clone();
        if w.scale(factor).is_err() {
            assert_eq!(w, before, "a refused scale changes nothing");
        }
    }
});
