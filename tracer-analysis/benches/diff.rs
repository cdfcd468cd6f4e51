//! Diff throughput and peak memory on large synthetic trace pairs (not a timed test).
//!
//! `cargo bench -p tracer --bench diff -- [EVENTS_PER_TRACE ...] [--dir DIR] [--window-ms MS]`
//!
//! For each size (default 1 000 000 and 10 000 000 events per trace) it writes a kernel and a
//! model trace of the same synthetic workload to DIR (default: a temporary directory), then
//! diffs them and prints events/s and the peak resident memory of the diff alone (VmHWM, reset
//! through /proc/self/clear_refs before the diff). Equal peaks across sizes show the diff's
//! memory does not grow with the length of the traces; what it does grow with is the reorder
//! window (events per second of trace time times `--window-ms`) and the live dentries.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use tracer_analysis::{
    diff::{diff_files, DiffOptions},
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
    out: Vec<Event>,
}

impl Workload {
    fn new(seed: u64, id_base: u64) -> Workload {
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
        let n = self.rng.below(self.names.len() as u64) as usize;
        let b = self.span(300).0;
        match self.rng.below(100) {
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

fn generate(path: &Path, origin: Origin, events: u64, id_base: u64) -> u64 {
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
    let mut w = Writer::create(path, &h).expect("create trace");
    let mut wl = Workload::new(42, id_base);
    while w.events() < events {
        wl.step();
        for ev in wl.out.drain(..) {
            w.push(&ev).expect("write event");
        }
    }
    w.finish(Footer {
        end: End::Finished,
        ..Footer::default()
    })
    .expect("finish trace");
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// User + system CPU seconds of this process: steadier than wall time on a shared machine.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn vm_hwm_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mut sizes = Vec::new();
    let mut dir: Option<PathBuf> = None;
    let mut opts = DiffOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "{:>12} {:>8} {:>7} {:>9} {:>9} {:>13} {:>13} {:>10} {:>9}",
        "events/side",
        "MB/side",
        "gen s",
        "diff s",
        "diff cpu",
        "events/s",
        "events/cpu-s",
        "VmHWM MiB",
        "anomalies"
    );
    for n in sizes {
        let k = dir.join(format!("kernel-{n}.trace"));
        let m = dir.join(format!("model-{n}.trace"));
        let t0 = Instant::now();
        let bytes = generate(&k, Origin::Kernel, n, 0);
        generate(&m, Origin::Model, n, 1 << 32);
        let gen = t0.elapsed().as_secs_f64();
        // Reset the peak so VmHWM measures the diff alone (Linux 4.0+).
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
        let t1 = Instant::now();
        let c1 = cpu_seconds();
        let report = diff_files(&k, &m, &opts).expect("diff");
        let secs = t1.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - c1;
        let total = report.events.kernel.total + report.events.model.total;
        let hwm = vm_hwm_kib().map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        println!(
            "{:>12} {:>8.0} {:>7.1} {:>9.2} {:>9.2} {:>13.0} {:>13.0} {:>10}{} {:>9}",
            n,
            bytes as f64 / 1e6,
            gen,
            secs,
            cpu,
            total as f64 / secs,
            total as f64 / cpu,
            hwm,
            if reset { "" } else { "*" },
            report.anomaly_total()
        );
        let null = &report.null_inode_returns.kernel;
        println!(
            "{:>12} NULL-inode returns {} ({:?}), ENOENT {}, coverage gaps {}, ops compared {} \
             (differ {}), late {}, reorder depth {}",
            "",
            null.total,
            null.by_class,
            report.enoent_results.kernel.total,
            report.coverage_gaps.kernel.total,
            report.divergence.operations_compared,
            report.divergence.results_differ,
            report.diagnostics.kernel.late_events,
            report.diagnostics.kernel.max_reorder_depth
        );
        let _ = fs::remove_file(&k);
        let _ = fs::remove_file(&m);
    }
}
