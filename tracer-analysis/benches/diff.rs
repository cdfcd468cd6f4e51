//! Diff throughput and peak memory on large synthetic trace pairs (not a timed test).
//!
//! `cargo bench -p tracer-analysis --bench diff -- [EVENTS_PER_TRACE ...] [--dir DIR]
//! [--window-ms MS] [--json FILE] [--stream] [--report DIR] [--hot-names N]`
//!
//! For each size (default 1 000 000 and 10 000 000 events per trace) it writes a kernel and a
//! model trace of the same synthetic workload to DIR (default: a temporary directory; with
//! `--dir` the pair is kept there and reused by the next run, so two builds diff the same
//! bytes), then diffs them and measures the diff alone: CPU seconds (user + system of every
//! thread, from getrusage: on a shared machine the steady figure, where wall time is not),
//! wall seconds, and the peak resident memory (VmHWM, reset through /proc/self/clear_refs
//! before the diff). Equal peaks across sizes show the diff's memory does not grow with the
//! length of the traces; what it does grow with is the reorder window (events per second of
//! trace time times `--window-ms`) and the live dentries.
//!
//! `--stream` writes no file: two child processes generate the traces into named pipes that
//! the diff reads as they come (for sizes whose files would not fit on the disk: 100 M events
//! are 9 GB a side). The diff's CPU seconds and peak memory are then still its own; its wall
//! time is the generators' pace.
//!
//! `--report DIR` writes each size's report as `DIR/report-N.json` and `DIR/report-N.txt`
//! (what `tracer diff --json` and its standard output would hold), so a change to the diff can
//! be checked to leave the report byte for byte as it was.
//!
//! `--hot-names N` replaces the workload by successful stats of N names (each created first),
//! 10 µs apart: a name stat'd thousands of times between two writers, as a real workload
//! polling a file does. Its traces and reports are named `hotN-…` (the same `--dir` holds
//! both workloads).
//!
//! Every figure goes to FILE (default `target/bench/diff.json`); the previous FILE, when there
//! is one, is read first and each size's events per CPU-second is printed against it.
mod common;

use common::{commit, cpu_seconds, load_average, make_fifo, previous, vm_hwm_kib};
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use serde::Serialize;

use tracer_analysis::{
    diff::{diff_files, DiffOptions, Verdict},
    output::write_atomic,
    trace::{Attachment, End, Footer, Header, Origin, Writer},
};
use tracer_common::{flags, Event, OpKind, Probe, Source};

const ROOT: u64 = 1;
const DIRS: usize = 8;
const FILES_PER_DIR: usize = 128;
const H: u16 = flags::HASHED_BEGIN | flags::HASHED_END;
const V: u16 = flags::VALIDATED;

/// A small deterministic generator (xorshift64*), so both sides see the same workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy)]
struct Dentry {
    id: u64,
    seq: u32,
    inode: u64,
}

struct Name {
    dir: usize,
    leaf: String,
    exists: bool,
    dentry: Option<Dentry>,
}

/// A dcache the way a 6.1 kernel would show it through the probes: stat, create and unlink of
/// names in a few directories from several threads, and pruning that kills dentries. About
/// 1.6 million events per second of trace time, several times what the recorder delivers.
struct Workload {
    rng: Rng,
    names: Vec<Name>,
    t: u64,
    next_id: u64,
    free_ids: Vec<u64>,
    next_inode: u64,
    id_base: u64,
    /// `--hot-names`: only stats (after one create each) of this many names.
    hot: Option<usize>,
    out: Vec<Event>,
}

impl Workload {
    fn new(seed: u64, id_base: u64, hot: Option<usize>) -> Workload {
        let names = (0..DIRS * FILES_PER_DIR)
            .map(|i| Name {
                dir: i / FILES_PER_DIR,
                leaf: format!("f{}", i % FILES_PER_DIR),
                exists: false,
                dentry: None,
            })
            .collect();
        Workload {
            rng: Rng(seed | 1),
            names,
            t: 1_000_000,
            next_id: (DIRS + 2) as u64,
            free_ids: Vec::new(),
            next_inode: (DIRS + 2) as u64,
            id_base,
            hot,
            out: Vec::new(),
        }
    }

    fn span(&mut self, d: u64) -> (u64, u64) {
        let b = self.t;
        self.t += d;
        (b, self.t)
    }

    fn event(&mut self, probe: Probe, (b, e): (u64, u64), tid: u32) -> Event {
        let mut ev = Event::zeroed();
        ev.probe = probe as u8;
        ev.source = Source::FEntry as u8;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev.tid = tid;
        ev.cpu = tid % 2;
        ev
    }

    fn id(&self, local: u64) -> u64 {
        local + self.id_base
    }

    /// The lookups of a path walk: the directory, then the name (a miss allocates a dentry on
    /// the slow path, untraced).
    fn walk(&mut self, n: usize, tid: u32) {
        let dir = self.names[n].dir as u64;
        let span = self.span(400);
        let mut ev = self.event(Probe::DLookupRcu, span, tid);
        ev.parent = self.id(ROOT);
        ev.dentry = self.id(2 + dir);
        ev.inode_begin = 2 + dir;
        ev.inode_end = ev.inode_begin;
        ev.seq_begin = 2;
        ev.seq_end = 2;
        ev.flags = H | V;
        ev.set_name(format!("d{dir}").as_bytes());
        self.out.push(ev);
        let span = self.span(600);
        let mut ev = self.event(Probe::DLookupRcu, span, tid);
        ev.parent = self.id(2 + dir);
        ev.set_name(self.names[n].leaf.as_bytes());
        match self.names[n].dentry {
            Some(d) => {
                ev.dentry = self.id(d.id);
                ev.inode_begin = d.inode;
                ev.inode_end = d.inode;
                ev.seq_begin = d.seq;
                ev.seq_end = d.seq;
                ev.flags = H | V;
            }
            None => {
                let id = self.free_ids.pop().unwrap_or_else(|| {
                    self.next_id += 1;
                    self.next_id
                });
                let inode = if self.names[n].exists {
                    self.next_inode += 1;
                    self.next_inode
                } else {
                    0
                };
                // d_add: +2 around the inode when there is one.
                let seq = if inode != 0 { 2 } else { 0 };
                self.names[n].dentry = Some(Dentry { id, seq, inode });
            }
        }
        self.out.push(ev);
    }

    fn op(&mut self, kind: OpKind, n: usize, b: u64, tid: u32, result: i32) {
        let span = (b, self.t + 200);
        self.t += 200;
        let mut ev = self.event(Probe::Op, span, tid);
        ev.source = Source::Workload as u8;
        ev.aux = kind as u32;
        ev.result = result;
        let name = &self.names[n];
        ev.set_name(format!("d{}/{}", name.dir, name.leaf).as_bytes());
        self.out.push(ev);
    }

    fn writer(&mut self, probe: Probe, n: usize, tid: u32, d: Dentry, after: Dentry, fl: u16) {
        let span = self.span(800);
        let mut ev = self.event(probe, span, tid);
        ev.parent = self.id(2 + self.names[n].dir as u64);
        ev.dentry = self.id(d.id);
        ev.inode_begin = d.inode;
        ev.inode_end = after.inode;
        ev.seq_begin = d.seq;
        ev.seq_end = after.seq;
        ev.flags = fl;
        ev.set_name(self.names[n].leaf.as_bytes());
        self.out.push(ev);
    }

    /// Appends the events of one operation (in completion order) to `out`.
    fn step(&mut self) {
        let tid = 100 + self.rng.below(4) as u32;
        let n = self.rng.below(self.hot.unwrap_or(self.names.len()) as u64) as usize;
        if self.hot.is_some() {
            // 10 µs from one operation's begin to the next (an operation spans 1.5 µs).
            self.t += 8_500;
        }
        let b = self.span(300).0;
        let pick = match self.hot {
            Some(_) if self.names[n].exists => 0,
            Some(_) => 60,
            None => self.rng.below(100),
        };
        match pick {
            0..=59 => {
                self.walk(n, tid);
                let r = if self.names[n].exists { 0 } else { -2 };
                self.op(OpKind::Stat, n, b, tid, r);
            }
            60..=74 => {
                self.walk(n, tid);
                if self.names[n].exists {
                    self.op(OpKind::Create, n, b, tid, -17);
                } else {
                    self.next_inode += 1;
                    let inode = self.next_inode;
                    if let Some(d) = self.names[n].dentry.as_mut() {
                        // d_instantiate of the negative dentry: +2, not traced.
                        d.seq += 2;
                        d.inode = inode;
                    }
                    self.names[n].exists = true;
                    self.op(OpKind::Create, n, b, tid, 0);
                }
            }
            75..=89 => {
                self.walk(n, tid);
                match (self.names[n].exists, self.names[n].dentry) {
                    (true, Some(d)) => {
                        // d_delete with one reference: negative in place, still hashed.
                        let after = Dentry {
                            seq: d.seq + 2,
                            inode: 0,
                            ..d
                        };
                        self.writer(Probe::DentryUnlinkInode, n, tid, d, after, H);
                        self.names[n].dentry = Some(after);
                        self.names[n].exists = false;
                        self.op(OpKind::Unlink, n, b, tid, 0);
                    }
                    _ => self.op(OpKind::Unlink, n, b, tid, -2),
                }
            }
            _ => {
                // drop_caches: kill a few unused dentries (unhash, +2, then the clear).
                let pruner = 200;
                for _ in 0..4 {
                    let k = self.rng.below(self.names.len() as u64) as usize;
                    let Some(d) = self.names[k].dentry.take() else {
                        continue;
                    };
                    self.writer(Probe::DDropInner, k, pruner, d, d, H);
                    let dropped = Dentry {
                        seq: d.seq + 2,
                        ..d
                    };
                    if d.inode != 0 {
                        let after = Dentry {
                            seq: dropped.seq + 2,
                            inode: 0,
                            ..d
                        };
                        self.writer(Probe::DentryUnlinkInode, k, pruner, dropped, after, 0);
                    }
                    self.free_ids.push(d.id);
                }
                let span = (b, self.t + 100);
                self.t += 100;
                let mut ev = self.event(Probe::Op, span, pruner);
                ev.source = Source::Workload as u8;
                ev.aux = OpKind::DropCaches as u32;
                self.out.push(ev);
            }
        }
    }
}

/// Writes a trace of `events` events; `stream`: into a pipe that the diff reads as it goes.
fn generate(path: &Path, origin: Origin, events: u64, stream: bool, hot: Option<usize>) {
    let mut h = Header::new(origin);
    if origin == Origin::Kernel {
        h.kernel_release = "6.1.0-27-amd64".into();
        h.attach = BTreeMap::from([
            ("__d_lookup_rcu".into(), Attachment::Fentry),
            ("___d_drop".into(), Attachment::Fentry),
            ("dentry_unlink_inode".into(), Attachment::Fentry),
        ]);
    } else {
        h.kernel_release = "6.1".into();
        h.profile = Some("linux-6.1".into());
    }
    h.workload = Some("synthetic".into());
    let mut w = if stream {
        Writer::create_scratch(path, &h)
    } else {
        Writer::create(path, &h)
    }
    .expect("create trace");
    // Ids of the two sides have nothing in common, as a kernel's and the model's.
    let id_base = if origin == Origin::Kernel { 0 } else { 1 << 32 };
    let mut wl = Workload::new(42, id_base, hot);
    // The probes number their calls per CPU (the diff checks the numbering for holes) and
    // count them per probe (the footer's hits, checked against the events).
    let mut cpu_seq: BTreeMap<u32, u64> = BTreeMap::new();
    let mut hits: BTreeMap<String, u64> = BTreeMap::new();
    while w.events() < events {
        wl.step();
        for mut ev in wl.out.drain(..) {
            if origin == Origin::Kernel && ev.source == Source::FEntry as u8 {
                let n = cpu_seq.entry(ev.cpu).or_insert(0);
                *n += 1;
                ev.cpu_seq = *n as u32;
                let probe = Probe::from_u8(ev.probe).map_or("unknown", Probe::symbol);
                *hits.entry(probe.into()).or_insert(0) += 1;
            }
            w.push(&ev).expect("write event");
        }
    }
    w.finish(Footer {
        end: End::Finished,
        last_cpu_seq: cpu_seq,
        hits,
        ..Footer::default()
    })
    .expect("finish trace");
}

/// One size's figures, as written to the JSON.
#[derive(Serialize)]
struct Run {
    events_per_side: u64,
    /// `--hot-names`: the workload was successful stats of this many names.
    hot_names: Option<usize>,
    /// Generated into pipes as the diff read them (`--stream`).
    streamed: bool,
    /// Events diffed: both sides.
    events: u64,
    /// None when streamed (`--stream`: no file).
    bytes_per_side: Option<u64>,
    generate_s: f64,
    wall_s: f64,
    user_s: f64,
    sys_s: f64,
    /// Events (both sides) per CPU-second of the diff.
    events_per_cpu_s: f64,
    events_per_wall_s: f64,
    /// None when /proc/self/clear_refs could not reset the peak (it then includes generation).
    vm_hwm_kib: Option<u64>,
    reorder_max_depth: u64,
    verdict: Verdict,
    anomalies: u64,
    null_inode_returns: u64,
    enoent_results: u64,
    coverage_gaps: u64,
    operations_compared: u64,
}

#[derive(Serialize)]
struct BenchFile {
    schema: &'static str,
    /// `git describe` of the tree the bench ran from, when git can say.
    commit: Option<String>,
    window_ms: u64,
    cpus: usize,
    /// The 1-minute load average when the bench started: a loaded machine's wall times mean
    /// little, its CPU seconds still do.
    load_average: Option<f64>,
    runs: Vec<Run>,
}

/// Starts a child process of this bench writing one side's trace into the pipe at `path`:
/// the generator's CPU time is then not the diff's.
fn spawn_generator(path: &Path, origin: Origin, n: u64, hot: Option<usize>) -> std::process::Child {
    let exe = std::env::current_exe().expect("the bench's own path");
    std::process::Command::new(exe)
        .arg("--generate")
        .arg(origin.name())
        .arg(n.to_string())
        .arg(path)
        .arg(hot.unwrap_or(0).to_string())
        .spawn()
        .expect("start a generator")
}

/// The report as `tracer diff` gives it: report.json and the text on its standard output.
fn write_report(dir: &Path, name: &str, report: &tracer_analysis::diff::Report) {
    fs::create_dir_all(dir).expect("create the report directory");
    let json = serde_json::to_vec_pretty(report).expect("serialize the report");
    fs::write(dir.join(format!("report-{name}.json")), json).expect("write report.json");
    let mut text = Vec::new();
    report.write_summary(&mut text).expect("summary");
    report.write_details(&mut text).expect("details");
    if !report.anomalies.is_empty() {
        text.extend_from_slice(format!("\n{}\n", report.verdict_line()).as_bytes());
    }
    fs::write(dir.join(format!("report-{name}.txt")), text).expect("write report.txt");
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let [_, flag, origin, n, path, hot] = &argv[..] {
        if flag == "--generate" {
            let origin = if origin == Origin::Kernel.name() {
                Origin::Kernel
            } else {
                Origin::Model
            };
            let hot = Some(hot.parse().expect("a name count")).filter(|&h| h > 0);
            generate(
                Path::new(path),
                origin,
                n.parse().expect("a count"),
                true,
                hot,
            );
            return;
        }
    }
    let mut sizes = Vec::new();
    let mut stream = false;
    let mut dir: Option<PathBuf> = None;
    let mut reports: Option<PathBuf> = None;
    let mut hot: Option<usize> = None;
    let mut json = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/diff.json");
    let mut opts = DiffOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--stream" => stream = true,
            "--report" => reports = args.next().map(PathBuf::from),
            "--hot-names" => {
                hot = args.next().and_then(|v| v.parse::<usize>().ok());
                assert!(
                    hot.is_some_and(|h| (1..=DIRS * FILES_PER_DIR).contains(&h)),
                    "--hot-names takes a count of names from 1 to {}",
                    DIRS * FILES_PER_DIR
                );
            }
            "--json" => {
                if let Some(p) = args.next() {
                    json = PathBuf::from(p);
                }
            }
            "--window-ms" => {
                if let Some(ms) = args.next().and_then(|v| v.parse::<u64>().ok()) {
                    opts.window_ns = ms * 1_000_000;
                }
            }
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
    let before = previous(&json, "events_per_side");
    let tmp = tempfile::tempdir().expect("tempdir");
    let keep = dir.is_some();
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    fs::create_dir_all(&dir).expect("create the input directory");
    let mut out = BenchFile {
        schema: "tracer-diff-bench/1",
        commit: commit(),
        window_ms: opts.window_ns / 1_000_000,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: load_average(),
        runs: Vec::new(),
    };
    println!(
        "{:>12} {:>8} {:>7} {:>8} {:>8} {:>12} {:>12} {:>10} {:>9} {:>13}",
        "events/side",
        "MB/side",
        "gen s",
        "wall s",
        "cpu s",
        "events/s",
        "events/cpu-s",
        "VmHWM MiB",
        "anomalies",
        "vs previous"
    );
    for n in sizes {
        let name = hot.map_or(n.to_string(), |h| format!("hot{h}-{n}"));
        let k = dir.join(format!("kernel-{name}.trace"));
        let m = dir.join(format!("model-{name}.trace"));
        let t0 = Instant::now();
        let mut children = Vec::new();
        if stream {
            let _ = fs::remove_file(&k);
            let _ = fs::remove_file(&m);
            make_fifo(&k);
            make_fifo(&m);
            children.push(spawn_generator(&k, Origin::Kernel, n, hot));
            children.push(spawn_generator(&m, Origin::Model, n, hot));
        } else if !(keep && k.exists() && m.exists()) {
            generate(&k, Origin::Kernel, n, false, hot);
            generate(&m, Origin::Model, n, false, hot);
        }
        let gen = t0.elapsed().as_secs_f64();
        let bytes = (!stream).then(|| fs::metadata(&k).map(|m| m.len()).unwrap_or(0));
        // Reset the peak so VmHWM measures the diff alone (Linux 4.0+).
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
        let t1 = Instant::now();
        let (u1, s1) = cpu_seconds();
        let report = diff_files(&k, &m, &opts).expect("diff");
        let wall = t1.elapsed().as_secs_f64();
        let (u2, s2) = cpu_seconds();
        for mut c in children {
            assert!(c.wait().is_ok_and(|s| s.success()), "a generator failed");
        }
        if let Some(rd) = &reports {
            write_report(rd, &name, &report);
        }
        let (user, sys) = (u2 - u1, s2 - s1);
        let total = report.events.kernel.total + report.events.model.total;
        let hwm = vm_hwm_kib().filter(|_| reset);
        let per_cpu = total as f64 / (user + sys);
        println!(
            "{:>12} {:>8} {:>7.1} {:>8.2} {:>8.2} {:>12.0} {:>12.0} {:>10} {:>9} {:>13}",
            n,
            bytes.map_or("stream".into(), |b| format!("{:.0}", b as f64 / 1e6)),
            gen,
            wall,
            user + sys,
            total as f64 / wall,
            per_cpu,
            hwm.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            report.anomaly_total(),
            before
                .get(&n)
                .map_or("-".into(), |b| format!("{:.2}x", per_cpu / b))
        );
        let null = &report.null_inode_returns.kernel;
        println!(
            "{:>12} verdict {}, NULL-inode returns {} ({:?}), ENOENT {}, coverage gaps {}, \
             ops compared {} (differ {}), late {}, reorder depth {}",
            "",
            report.verdict.name(),
            null.total,
            null.by_class,
            report.enoent_results.kernel.total,
            report.coverage_gaps.kernel.total,
            report.divergence.operations_compared,
            report.divergence.results_differ,
            report.diagnostics.kernel.late_events,
            report.diagnostics.kernel.max_reorder_depth
        );
        out.runs.push(Run {
            events_per_side: n,
            hot_names: hot,
            streamed: stream,
            events: total,
            bytes_per_side: bytes,
            generate_s: gen,
            wall_s: wall,
            user_s: user,
            sys_s: sys,
            events_per_cpu_s: per_cpu,
            events_per_wall_s: total as f64 / wall,
            vm_hwm_kib: hwm,
            reorder_max_depth: report
                .diagnostics
                .kernel
                .max_reorder_depth
                .max(report.diagnostics.model.max_reorder_depth),
            verdict: report.verdict,
            anomalies: report.anomaly_total(),
            null_inode_returns: null.total,
            enoent_results: report.enoent_results.kernel.total,
            coverage_gaps: report.coverage_gaps.kernel.total,
            operations_compared: report.divergence.operations_compared,
        });
        if !keep || stream {
            let _ = fs::remove_file(&k);
            let _ = fs::remove_file(&m);
        }
    }
    if let Some(parent) = json.parent() {
        fs::create_dir_all(parent).expect("create the JSON's directory");
    }
    let text = serde_json::to_string_pretty(&out).expect("serialize the figures");
    write_atomic(&json, (text + "\n").as_bytes(), 0o644).expect("write the JSON");
    println!("figures: {}", json.display());
}
