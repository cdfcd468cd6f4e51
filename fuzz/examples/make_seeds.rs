//! `cargo run --example make-seeds -- OUT TRACE... -- WORKLOAD...` (in `fuzz/`): writes each
//! fuzz target's seed corpus under OUT
//! (`OUT/trace_reader`, `OUT/workload_parser`, `OUT/diff_traces`) from real recordings and
//! workload files. Traces are seeds cut to their first events (small inputs mutate faster), in
//! one chunk and in several, and whole when small; the diff gets each kernel trace's events
//! against each model trace's.
use std::path::{Path, PathBuf};

use tracer_analysis::trace::{Origin, Reader, Writer};
use tracer_common::Event;

/// Events kept per trace in the cut seeds.
const CUT: usize = 48;
/// Events per chunk in the multi-chunk seeds (the rest in a last one).
const CHUNKS: [usize; 3] = [1, 7, 16];
/// Traces up to this size are also seeds whole (the seeds are committed).
const WHOLE_MAX: usize = 16 << 10;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: make-seeds OUT TRACE... -- WORKLOAD...");
        std::process::exit(2);
    };
    let rest: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let split = rest.iter().position(|a| a.as_os_str() == "--");
    let (traces, workloads) = match split {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..], &[][..]),
    };
    let dir = |name: &str| {
        let d = out.join(name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| fail(&d, e));
        d
    };
    let (reader_dir, workload_dir, diff_dir) = (
        dir("trace_reader"),
        dir("workload_parser"),
        dir("diff_traces"),
    );

    let mut kernel = Vec::new();
    let mut model = Vec::new();
    for (i, t) in traces.iter().enumerate() {
        let bytes = std::fs::read(t).unwrap_or_else(|e| fail(t, e));
        if bytes.len() <= WHOLE_MAX {
            write(&reader_dir.join(format!("whole-{i}")), &bytes);
        }
        let (header, events, footer) = Reader::open(t)
            .and_then(Reader::read_all)
            .unwrap_or_else(|e| fail(t, e));
        let cut: Vec<Event> = events.into_iter().take(CUT).collect();
        let cut_path = reader_dir.join(format!("cut-{i}"));
        let mut w = Writer::create(&cut_path, &header).unwrap_or_else(|e| fail(&cut_path, e));
        for e in &cut {
            w.push(e).unwrap_or_else(|e| fail(&cut_path, e));
        }
        w.finish(footer).unwrap_or_else(|e| fail(&cut_path, e));
        // The same events in several chunks, one of a single event: the writer fills a
        // chunk to 4096 events, past what a fuzz input holds.
        let cut_bytes = std::fs::read(&cut_path).unwrap_or_else(|e| fail(&cut_path, e));
        let chunks = tracer_fuzz::chunked(&cut_bytes, &cut, &CHUNKS);
        write(&reader_dir.join(format!("chunks-{i}")), &chunks);
        match header.origin {
            Origin::Kernel => kernel.push(cut),
            _ => model.push(cut),
        }
    }
    for (i, k) in kernel.iter().enumerate() {
        write(
            &diff_dir.join(format!("kernel-{i}-alone")),
            &tracer_fuzz::join_events(k, &[]),
        );
        for (j, m) in model.iter().enumerate() {
            let seed = tracer_fuzz::join_events(k, m);
            write(&diff_dir.join(format!("kernel-{i}-model-{j}")), &seed);
        }
    }
    for (i, m) in model.iter().enumerate() {
        write(
            &diff_dir.join(format!("model-{i}-both")),
            &tracer_fuzz::join_events(m, m),
        );
    }
    for (i, w) in workloads.iter().enumerate() {
        let bytes = std::fs::read(w).unwrap_or_else(|e| fail(w, e));
        write(&workload_dir.join(format!("workload-{i}")), &bytes);
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| fail(path, e));
}

fn fail(path: &Path, e: impl std::fmt::Display) -> ! {
    eprintln!("make-seeds: {}: {e}", path.display());
    std::process::exit(1);
}
