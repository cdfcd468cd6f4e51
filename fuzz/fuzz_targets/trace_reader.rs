//! Any bytes as a trace file: the reader returns events or an error, never panics, never
//! allocates past its bounds; a file it reads whole writes back to the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_analysis::trace::{Reader, Writer};

fuzz_target!(|data: &[u8]| {
    let path = tracer_fuzz::scratch("input.trace");
    std::fs::write(&path, data).expect("writing the scratch file");
    let Ok(reader) = Reader::open(&path) else {
        return;
    };
    let Ok((header, events, footer)) = reader.read_all() else {
        return;
    };
    let again = tracer_fuzz::scratch("again.trace");
    let mut w = Writer::create(&again, &header).expect("rewriting a trace that was read");
    for e in &events {
        w.push(e).expect("pushing an event that was read");
    }
    w.finish(footer.clone()).expect("finishing the rewrite");
    let (h2, e2, f2) = Reader::open(&again)
        .and_then(Reader::read_all)
        .expect("a rewritten trace reads back");
    assert_eq!(h2, header);
    assert_eq!(e2, events);
    assert_eq!(f2.events, footer.events);
});
