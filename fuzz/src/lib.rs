//! What the fuzz targets share: a scratch directory for the files the library reads, and the
//! diff target's input format.
//!
//! The diff target's input: two bytes, little endian, the number of events that go to the
//! kernel trace; then whole events (`tracer_common::EVENT_SIZE` bytes each), the kernel's
//! first and the model's after them. Both traces are written with valid checksums, so the
//! fuzzer exercises the diff rather than the reader's checks.
use std::path::PathBuf;

use tracer_analysis::trace::{End, Footer, Header, Origin, Writer};
use tracer_common::{Event, EVENT_SIZE};

/// A directory of this process for scratch files (`cargo xtask fuzz` points TMPDIR at a
/// directory it removes afterwards).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracer-fuzz-{}", std::process::id()));
    // An existing directory is fine; a failure shows when the file is written.
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// Splits a diff input into the kernel's and the model's events.
pub fn split_events(data: &[u8]) -> (Vec<Event>, Vec<Event>) {
    let (head, body) = data.split_at(data.len().min(2));
    let kernel = match head {
        [a, b] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    let events: Vec<Event> = body
        .chunks_exact(EVENT_SIZE)
        .filter_map(|c| <&[u8; EVENT_SIZE]>::try_from(c).ok())
        .map(Event::from_bytes)
        .collect();
    let kernel = kernel.min(events.len());
    let model = events[kernel..].to_vec();
    let mut kernel_events = events;
    kernel_events.truncate(kernel);
    (kernel_events, model)
}

/// The inverse of [`split_events`], for seeds.
pub fn join_events(kernel: &[Event], model: &[Event]) -> Vec<u8> {
    let n = u16::try_from(kernel.len()).unwrap_or(u16::MAX);
    let mut out = n.to_le_bytes().to_vec();
    for e in kernel.iter().take(usize::from(n)).chain(model) {
        out.extend_from_slice(e.as_bytes());
    }
    out
}

/// Writes `events` as a complete trace of `origin` (release 6.1, the diff's default profile).
pub fn write_trace(path: &std::path::Path, origin: Origin, events: &[Event]) {
    let mut h = Header::new(origin);
    h.kernel_release = "6.1.0-fuzz".into();
    let mut w = Writer::create(path, &h).expect("the scratch directory is writable");
    for e in events {
        w.push(e).expect("writing a scratch trace");
    }
    w.finish(Footer {
        end: End::Finished,
        ..Footer::default()
    })
    .expect("finishing a scratch trace");
}
