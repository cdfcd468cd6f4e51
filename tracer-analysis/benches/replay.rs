//! Replay throughput and peak memory: a kernel trace's operations run on the model in
//! timestamp order (`tracer replay --against`, what `cargo xtask run` and the matrix do), the
//! model trace written out. Not a timed test.
//!
//! `cargo bench -p tracer-analysis --bench replay -- [MODEL_EVENTS ...] [--workload W]
//! [--profile P] [--probes N] [--burst N] [--dir DIR] [--stream] [--json FILE]`
//!
//! For each size (default 1 000 000 and 10 000 000 model events) it writes a kernel trace
//! holding the operations of the workload's plan (default `unlink-stat`), its threads taking
//! turns, one operation every microsecond, as many as make about that many model events (the
//! events per operation are measured first on a short input). With `--probes N` each operation
//! is preceded by N `__d_lookup_rcu` events of its thread inside its span, naming its last
//! component, as a kernel trace's probes would (the replay then reads, assigns and places by
//! them). With `--burst N` the Op events of N operations in a row follow all their probe events
//! (as when one CPU's buffer is written long after another's): each thread's events then wait
//! for operations that arrive after later events, the case where an operation's look at its
//! waiting events once went quadratic. With `--dir` the input is kept and reused, so two builds replay the same bytes. It then replays it and measures the replay
//! alone: CPU seconds (user + system of every thread, getrusage), wall seconds, peak resident
//! memory (VmHWM, reset through /proc/self/clear_refs first).
//!
//! The model trace goes to a file beside the input, or with `--stream` into a named pipe that
//! a child process of the bench reads and discards (100 M model events are 9 GB). Either way
//! the bench prints the CRC-32 of the model trace's events as the reader hands them out (each
//! event's 152 bytes, whatever the file's format stores), so two builds' outputs are compared
//! event for event, across trace formats too. Every figure goes to FILE (default `target/bench/replay.json`); the previous FILE is
//! read first and each size's events per CPU-second printed against it.
mod common;

use common::{commit, cpu_seconds, load_average, make_fifo, previous, vm_hwm_kib};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use serde::Serialize;

use tracer_analysis::{
    output::write_atomic,
    replay::{replay_to_stream, replay_to_trace, ReplaySummary, Source, Style},
    trace::{Footer, Header, Origin, Reader, Writer},
    workload::{self, Workload},
};
use tracer_common::{flags, Event, Probe, Source as EventSource};
use userspace_dcache::Profile;

/// The kernel release written into the input: the profile is named on the command line.
const RELEASE: &str = "6.1.0-bench";

/// Writes a kernel trace of the first `ops` operations of `w`'s plan, its threads taking turns,
/// each after `probes` lookup events inside its span; the operations themselves written `burst`
/// at a time, after the probe events of all of them.
fn generate(path: &Path, w: &Workload, ops: u64, probes: u32, burst: usize) {
    let mut h = Header::new(Origin::Kernel);
    h.kernel_release = RELEASE.into();
    h.workload = Some(w.name.clone());
    h.workload_toml = Some(w.source().to_string());
    let mut out = Writer::create(path, &h).expect("create the input");
    let mut threads: Vec<_> = w.all_thread_ops().collect();
    let mut n = 0u64;
    let mut held = Vec::with_capacity(burst);
    while n < ops && !threads.is_empty() {
        let mut t = 0;
        while t < threads.len() && n < ops {
            let Some(op) = threads[t].next() else {
                threads.remove(t);
                continue;
            };
            let mut e = Event::zeroed();
            e.probe = Probe::Op as u8;
            e.source = EventSource::Workload as u8;
            e.aux = op.kind as u32;
            e.tid = 1000 + op.thread;
            e.ts_begin = 1_000_000 + n * 1000;
            e.ts_end = e.ts_begin + 600;
            if op.path2.is_some() {
                e.flags |= flags::TWO_PATHS;
            }
            e.set_name(&op.event_name());
            let last = op.path.rsplit('/').next().unwrap_or(&op.path).as_bytes();
            for k in 0..u64::from(probes) {
                let mut p = Event::zeroed();
                p.probe = Probe::DLookupRcu as u8;
                p.source = EventSource::FEntry as u8;
                p.tid = e.tid;
                p.ts_begin = e.ts_begin + 50 + k * 500 / u64::from(probes);
                p.ts_end = p.ts_begin + 20;
                p.dentry = 2 + n % 64;
                p.parent = 1;
                p.inode_begin = 100 + n % 64;
                p.inode_end = p.inode_begin;
                p.set_name(last);
                out.push(&p).expect("write a probe event");
            }
            held.push(e);
            if held.len() >= burst {
                out.push_all(&held).expect("write the operations");
                held.clear();
            }
            n += 1;
            t += 1;
        }
    }
    assert_eq!(n, ops, "the workload's plan ran out of operations");
    out.push_all(&held).expect("write the operations");
    out.finish(Footer::default()).expect("finish the input");
}

/// The workload, scaled so that its plan holds at least `ops` operations.
fn workload_for(name: &str, ops: u64) -> Workload {
    let mut w = Workload::load(name).expect("the workload");
    if let Some(planned) = w.planned_ops().filter(|&p| p > 0) {
        let factor = (ops as f64 / planned as f64).ceil().max(1.0);
        w.scale(factor).expect("scale the workload");
    }
    w
}

fn replay(w: &Workload, profile: &str, input: &Path, out: &Path, stream: bool) -> ReplaySummary {
    let profile = Profile::named(profile).expect("the profile");
    let run = if stream {
        replay_to_stream
    } else {
        replay_to_trace
    };
    run(
        w,
        profile,
        Source::Against(input),
        Style::default(),
        out,
        RELEASE,
    )
    .expect("replay")
}

/// CRC-32 of the events of the trace at `path` (each event's bytes as [`Event::as_bytes`]
/// lays them out, not the file's encoding of them) and the file's length in bytes.
fn crc_of(path: &Path) -> (u32, u64) {
    let mut r = Reader::open(path).expect("open the model trace");
    let mut h = crc32fast::Hasher::new();
    while let Some(e) = r.next_event_ref().expect("read the model trace") {
        h.update(e.as_bytes());
    }
    (h.finalize(), r.bytes_read())
}

/// One size's figures, as written to the JSON.
#[derive(Serialize)]
struct Run {
    workload: String,
    profile: String,
    /// The size asked for; `events` is what the model wrote.
    target_events: u64,
    ops: u64,
    /// Model events written (setup excluded, as in the trace).
    events: u64,
    /// Kernel probe events before each operation in the input (`--probes`).
    probes_per_op: u32,
    /// Operations whose Op events follow all their probe events (`--burst`; 1: each its own).
    burst: usize,
    /// Input size: the kernel trace's operations and probe events.
    input_bytes: u64,
    /// The model trace went into a pipe (`--stream`), not a file.
    streamed: bool,
    output_bytes: u64,
    /// CRC-32 of the model trace's events: equal for two builds means the same events.
    output_crc32: String,
    generate_s: f64,
    wall_s: f64,
    user_s: f64,
    sys_s: f64,
    events_per_cpu_s: f64,
    events_per_wall_s: f64,
    /// None when /proc/self/clear_refs could not reset the peak.
    vm_hwm_kib: Option<u64>,
}

#[derive(Serialize)]
struct BenchFile {
    schema: &'static str,
    /// `git describe` of the tree the bench ran from, when git can say.
    commit: Option<String>,
    cpus: usize,
    /// The 1-minute load average when the bench started: wall times on a loaded machine mean
    /// little, CPU seconds still do.
    load_average: Option<f64>,
    /// Model events per operation on a short input, used to size the inputs.
    events_per_op: f64,
    runs: Vec<Run>,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // A child reading the model trace out of the pipe: its CPU time is not the replay's.
    if let [_, flag, path] = &argv[..] {
        if flag == "--drain" {
            let (crc, len) = crc_of(Path::new(path));
            println!("{crc:08x} {len}");
            return;
        }
    }
    let mut sizes = Vec::new();
    let mut stream = false;
    let mut dir: Option<PathBuf> = None;
    let mut name = "unlink-stat".to_string();
    let mut profile = "linux-6.1".to_string();
    let mut probes = 0u32;
    let mut burst = 1usize;
    let mut json = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/replay.json");
    let mut args = argv.into_iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--stream" => stream = true,
            "--workload" => name = args.next().expect("--workload NAME"),
            "--profile" => profile = args.next().expect("--profile NAME"),
            "--probes" => {
                probes = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--probes N (probe events per operation)")
            }
            "--burst" => {
                burst = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--burst N (operations written together, at least 1)")
            }
            "--json" => json = PathBuf::from(args.next().expect("--json FILE")),
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            n => match n.replace('_', "").parse::<u64>() {
                Ok(v) => sizes.push(v),
                Err(_) => eprintln!("ignoring argument {n}"),
            },
        }
    }
    if sizes.is_empty() {
        sizes = vec![1_000_000, 10_000_000];
    }
    assert!(
        workload::builtin(&name).is_some() || Path::new(&name).exists(),
        "no workload {name}"
    );
    let before = previous(&json, "target_events");
    let tmp = tempfile::tempdir().expect("tempdir");
    let keep = dir.is_some();
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    fs::create_dir_all(&dir).expect("create the input directory");

    // glibc's threshold for giving a large allocation pages of its own rises to the size of
    // each such block freed, and the short replay below frees several: the measured replay's
    // deques, grown a second of trace at a time, would then grow inside the heap and be
    // copied at each doubling, which `tracer replay` in a process of its own does not pay
    // (about 11 M instructions at 1 M `--probes 6`, callgrind). Fixed at glibc's default.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and sets an allocator parameter (under glibc's own
    // lock).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
    // Events per operation, from a short input, to size the real ones.
    const PROBE_OPS: u64 = 20_000;
    let w = workload_for(&name, PROBE_OPS);
    let probe_in = dir.join("probe-input.trace");
    generate(&probe_in, &w, PROBE_OPS, probes, burst);
    let probe_out = dir.join("probe-model.trace");
    let s = replay(&w, &profile, &probe_in, &probe_out, false);
    let per_op = s.events as f64 / PROBE_OPS as f64;
    let _ = fs::remove_file(&probe_in);
    let _ = fs::remove_file(&probe_out);

    let mut out = BenchFile {
        schema: "tracer-replay-bench/2",
        commit: commit(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: load_average(),
        events_per_op: per_op,
        runs: Vec::new(),
    };
    println!("{name} on {profile}: {per_op:.2} model events per operation");
    println!(
        "{:>12} {:>10} {:>12} {:>7} {:>8} {:>8} {:>12} {:>12} {:>10} {:>9} {:>11}",
        "target",
        "ops",
        "events",
        "gen s",
        "wall s",
        "cpu s",
        "events/s",
        "events/cpu-s",
        "VmHWM MiB",
        "crc32",
        "vs previous"
    );
    for target in sizes {
        let ops = (target as f64 / per_op).ceil() as u64;
        let probes_part = match probes {
            0 => String::new(),
            p => format!("-p{p}"),
        };
        let burst_part = match burst {
            1 => String::new(),
            b => format!("-b{b}"),
        };
        let input = dir.join(format!("input-{name}-{ops}{probes_part}{burst_part}.trace"));
        let model = dir.join(format!("model-{name}-{ops}.trace"));
        let t0 = Instant::now();
        let w = workload_for(&name, ops);
        if !(keep && input.exists()) {
            generate(&input, &w, ops, probes, burst);
        }
        let gen = t0.elapsed().as_secs_f64();
        let input_bytes = fs::metadata(&input).map_or(0, |m| m.len());
        let drain = stream.then(|| {
            let _ = fs::remove_file(&model);
            make_fifo(&model);
            Command::new(std::env::current_exe().expect("the bench's own path"))
                .arg("--drain")
                .arg(&model)
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the pipe's reader")
        });
        // Reset the peak so VmHWM measures the replay alone (Linux 4.0+).
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
        let t1 = Instant::now();
        let (u1, s1) = cpu_seconds();
        let s = replay(&w, &profile, &input, &model, stream);
        let wall = t1.elapsed().as_secs_f64();
        let (u2, s2) = cpu_seconds();
        let hwm = vm_hwm_kib().filter(|_| reset);
        let (crc, output_bytes) = match drain {
            Some(child) => {
                let done = child.wait_with_output().expect("the pipe's reader");
                assert!(done.status.success(), "the pipe's reader failed");
                let text = String::from_utf8_lossy(&done.stdout);
                let mut parts = text.split_whitespace();
                let crc = u32::from_str_radix(parts.next().unwrap_or(""), 16).expect("a CRC");
                let len = parts.next().and_then(|l| l.parse().ok()).expect("a length");
                (crc, len)
            }
            None => crc_of(&model),
        };
        let _ = fs::remove_file(&model);
        if !keep {
            let _ = fs::remove_file(&input);
        }
        let (user, sys) = (u2 - u1, s2 - s1);
        let per_cpu = s.events as f64 / (user + sys);
        println!(
            "{:>12} {:>10} {:>12} {:>7.1} {:>8.2} {:>8.2} {:>12.0} {:>12.0} {:>10} {:>9} {:>11}",
            target,
            s.ops,
            s.events,
            gen,
            wall,
            user + sys,
            s.events as f64 / wall,
            per_cpu,
            hwm.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            format!("{crc:08x}"),
            before
                .get(&target)
                .map_or("-".into(), |b| format!("{:.2}x", per_cpu / b))
        );
        out.runs.push(Run {
            workload: name.clone(),
            profile: profile.clone(),
            target_events: target,
            ops: s.ops,
            events: s.events,
            probes_per_op: probes,
            burst,
            input_bytes,
            streamed: stream,
            output_bytes,
            output_crc32: format!("{crc:08x}"),
            generate_s: gen,
            wall_s: wall,
            user_s: user,
            sys_s: sys,
            events_per_cpu_s: per_cpu,
            events_per_wall_s: s.events as f64 / wall,
            vm_hwm_kib: hwm,
        });
    }
    if let Some(parent) = json.parent() {
        fs::create_dir_all(parent).expect("create the JSON's directory");
    }
    let text = serde_json::to_string_pretty(&out).expect("serialize the figures");
    write_atomic(&json, (text + "\n").as_bytes(), 0o644).expect("write the JSON");
    println!("figures: {}", json.display());
}
