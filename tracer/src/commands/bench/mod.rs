//! `tracer bench`: what recording costs the traced workload. Rounds of one fixed workload run
//! under `tracer record` with fentry/fexit, with kprobe/kretprobe, under bpftrace running the
//! equivalent script (`dcache.bt`), and with each family's floor (the same targets attached
//! with programs that return at once), each traced run between two untraced ones; per
//! configuration the median of the workload's own elapsed time, its ratio to the untraced runs
//! around it, and events delivered and lost, the loss counted in the kernel rather than by the
//! consumer. Every configuration runs the same workload code: this binary's runner, as
//! `tracer record` or `tracer run-workload`. The whole set runs once per workload thread count.
//!
//! Why bracket: on a shared host the speed of a VM drifts with the host's load within seconds,
//! so a traced run is compared with the untraced runs just before and after it, and the median
//! of those ratios is reported, with their spread.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tracer_analysis::{
    output,
    record_summary::{end_text, ProgramStats},
    trace::{Attachment, End, Reader},
    workload::limits,
};
use tracer_common::Probe;

use super::run_workload::{median_duration, HoldLine, RunWorkloadReport};

mod floor;
mod parse;
mod process;
mod stats;
mod table;

use floor::run_floor;
use process::{bpftrace_version, run_bpftrace, run_record, run_untraced};
use stats::summarize;
use table::table;

/// The bpftrace script: the same fields from the same functions, one line per call.
const BPFTRACE_SCRIPT: &str = include_str!("dcache.bt");

/// Operations per iteration of a bench thread: create, stat, stat of a missing name, unlink.
const OPS_PER_ITERATION: u64 = 4;

/// Names each thread cycles through; every thread has its own.
const NAMES_PER_THREAD: u64 = 16;

/// 2: floor configurations, and every figure per workload thread count (`threads` a list).
/// 3: the consumer's CPU time and wakeups per recording.
const SCHEMA: u32 = 3;

/// Printed with every result: under TCG wall-clock figures drift between boots.
const TCG_NOTE: &str = "Only ratios within one boot mean anything: under QEMU TCG absolute \
                        times say nothing about real hardware and drift from boot to boot.";

/// How long bpftrace may take to compile and attach (LLVM under TCG is slow), and to exit.
const BPFTRACE_READY_TIMEOUT: Duration = Duration::from_secs(600);
const BPFTRACE_EXIT_TIMEOUT: Duration = Duration::from_secs(300);
/// bpftrace is stopped once its output has not grown for this long after the workload.
const BPFTRACE_SETTLE: Duration = Duration::from_secs(2);

/// How the workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// `tracer run-workload`: no probes.
    Untraced,
    /// `tracer record --attach fentry`.
    Fentry,
    /// `tracer record --attach kprobe`.
    Kprobe,
    /// `tracer run-workload` while bpftrace runs dcache.bt.
    Bpftrace,
    /// `tracer run-workload` with fentry/fexit programs that return at once on every target.
    FentryFloor,
    /// `tracer run-workload` with kprobe/kretprobe programs that return at once on every target.
    KprobeFloor,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Untraced => "untraced",
            Kind::Fentry => "fentry",
            Kind::Kprobe => "kprobe",
            Kind::Bpftrace => "bpftrace",
            Kind::FentryFloor => "fentry-floor",
            Kind::KprobeFloor => "kprobe-floor",
        }
    }

    /// The floor of a recording configuration: the same attachment with empty programs.
    fn floor(self) -> Option<Kind> {
        match self {
            Kind::Fentry => Some(Kind::FentryFloor),
            Kind::Kprobe => Some(Kind::KprobeFloor),
            _ => None,
        }
    }

    /// How its lost events are counted.
    fn loss_method(self) -> &'static str {
        match self {
            Kind::Untraced | Kind::FentryFloor | Kind::KprobeFloor => "",
            Kind::Fentry | Kind::Kprobe => {
                "the programs' hits (per-probe, per-CPU counters bumped at entry, after the \
                 device filter) minus the events in the trace"
            }
            Kind::Bpftrace => {
                "its @hits_* count() maps (bumped at entry, after the same device filter) \
                 minus its output lines; bpftrace's own \"Lost N events\" reports beside it"
            }
        }
    }

    fn records(self) -> bool {
        matches!(self, Kind::Fentry | Kind::Kprobe)
    }
}

/// One configuration: a kind, and for `tracer record` kinds the tracer binary that records
/// (this one, or a `--variant`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Setup {
    kind: Kind,
    variant: Option<String>,
}

impl Setup {
    const UNTRACED: Setup = Setup {
        kind: Kind::Untraced,
        variant: None,
    };

    fn of(kind: Kind) -> Setup {
        Setup {
            kind,
            variant: None,
        }
    }

    /// `fentry`, or `fentry@NAME` for a variant's.
    fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}@{v}", self.kind.name()),
            None => self.kind.name().to_string(),
        }
    }
}

impl Serialize for Setup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// `NAME=PATH` of `--variant`.
fn parse_variant(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path))
            if !name.is_empty()
                && !path.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "{s:?}: expected NAME=PATH (NAME of letters, digits, - _ .)"
        )),
    }
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Rounds; each runs every traced configuration once, in an order rotated per round, with
    /// an untraced run before the first and after each.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,
    /// Workload thread counts (each thread on its own names), 1 to 64 each: every
    /// configuration is measured at each count, one after the other.
    #[arg(long, default_value = "2", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: Vec<u32>,
    /// Iterations per thread (create, stat, stat of a missing name, unlink).
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=limits::MAX_ITERATIONS))]
    iterations: u64,
    /// Traced configurations to run (untraced runs always, around each of them).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fentry-floor,fentry,kprobe-floor,kprobe,bpftrace"
    )]
    setups: Vec<Kind>,
    /// Also record with this other tracer binary, as `fentry@NAME` and `kprobe@NAME`
    /// (repeatable): two builds compared in the same boot, interleaved like the rest.
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_variant)]
    variant: Vec<(String, PathBuf)>,
    /// The bpftrace binary.
    #[arg(long, default_value = "bpftrace")]
    bpftrace: PathBuf,
    /// Run this bpftrace script instead of the built-in one. It gets the device as `$1`, must
    /// print a line `ready` from BEGIN and keep `@hits_<symbol>` counters; its event lines
    /// start with the probe's symbol.
    #[arg(long, value_name = "FILE")]
    bpftrace_script: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long, default_value = "record-cost.json")]
    out: PathBuf,
    /// Pass this argument on to every `tracer record` (repeatable), e.g. `--record-arg
    /// --wakeup-bytes=0` to see what waking the consumer on every event costs.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    record_arg: Vec<String>,
}

/// One run of one configuration.
#[derive(Debug, Serialize)]
struct Run {
    round: u32,
    threads: u32,
    setup: Setup,
    workload_seconds: f64,
    /// Traced runs: `workload_seconds` over the mean of the untraced runs before and after.
    ratio: Option<f64>,
    /// The median operation's duration: the probes' cost inline in the syscalls, which the
    /// host's load hardly moves (it stretches a few operations, not the median).
    median_op_ns: u64,
    ops: u64,
    failed_ops: u64,
    /// Per probe symbol: calls that passed the filter, counted in the kernel.
    hits: BTreeMap<String, u64>,
    /// Per probe symbol: events the consumer got.
    delivered: BTreeMap<String, u64>,
    /// What the tool itself reported lost (`tracer record`'s summary; bpftrace's "Lost N
    /// events" lines).
    tool_reported_lost: u64,
    /// `tracer record`: its consumer thread's CPU time while the workload ran (a tracer that
    /// does not report it: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_cpu_seconds: Option<f64>,
    /// `tracer record`: how often its consumer woke while the workload ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_wakeups: Option<u64>,
    /// `tracer record --program-stats` (through `--record-arg`): per program, its runs and
    /// nanoseconds per run as the kernel timed them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    programs: BTreeMap<String, ProgramStats>,
}

impl Run {
    fn hits_total(&self) -> u64 {
        self.hits.values().sum()
    }

    fn delivered_total(&self) -> u64 {
        self.delivered.values().sum()
    }

    /// Per probe, hits without an event.
    fn lost(&self) -> u64 {
        self.hits
            .iter()
            .map(|(sym, h)| h.saturating_sub(self.delivered.get(sym).copied().unwrap_or(0)))
            .sum()
    }
}

/// Per configuration, over all rounds.
#[derive(Debug, Serialize)]
struct Summary {
    threads: u32,
    setup: Setup,
    median_seconds: f64,
    /// The median of the runs' ratios to the untraced runs around them (1 for untraced).
    ratio: f64,
    /// A recording's ratio over its family's floor's (same thread count): what the real
    /// programs and the consumer add to attaching alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    over_floor: Option<f64>,
    ratio_min: f64,
    ratio_max: f64,
    median_op_ns: u64,
    /// median_op_ns over untraced's.
    op_ratio: f64,
    median_hits_per_run: u64,
    median_delivered_per_run: u64,
    hits_total: u64,
    delivered_total: u64,
    lost_total: u64,
    tool_reported_lost_total: u64,
    /// Median over runs of the consumer's CPU time while the workload ran, per event it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_cpu_us_per_event: Option<f64>,
    /// Median over runs of the consumer's wakeups while the workload ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_wakeups_per_run: Option<u64>,
    /// delivered_total / hits_total.
    delivered_share: Option<f64>,
    lost_counted_by: &'static str,
    /// How each target was attached (tracer record's report).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attach: BTreeMap<String, Attachment>,
}

#[derive(Debug, Serialize)]
struct BenchWorkload {
    threads: u32,
    ops_per_run: u64,
    toml: String,
}

#[derive(Debug, Serialize)]
struct Report {
    schema: u32,
    note: &'static str,
    kernel_release: String,
    cpus: usize,
    rounds: u32,
    threads: Vec<u32>,
    iterations_per_thread: u64,
    /// Per thread count, the workload and its operations a run.
    workloads: Vec<BenchWorkload>,
    /// Extra arguments every `tracer record` got.
    record_args: Vec<String>,
    bpftrace_version: Option<String>,
    bpftrace_script: Option<String>,
    /// A few lines of bpftrace's output, to show what it recorded.
    bpftrace_sample: Vec<String>,
    summary: Vec<Summary>,
    runs: Vec<Run>,
}

/// The fields of `tracer record --summary` the bench reads.
#[derive(Deserialize)]
struct RecordSummaryIn {
    trace: PathBuf,
    attach: BTreeMap<String, Attachment>,
    hits: BTreeMap<String, u64>,
    lost: u64,
    workload_seconds: f64,
    #[serde(with = "end_text")]
    end: End,
    /// Absent from tracers built before it was reported.
    consumer_cpu_seconds: Option<f64>,
    consumer_wakeups: Option<u64>,
    #[serde(default)]
    programs: BTreeMap<String, ProgramStats>,
}

/// The bench workload: `threads` threads, each looping create, stat, stat of a missing name,
/// unlink over its own names, so every thread does the same fixed work in any interleaving.
pub fn workload_toml(threads: u32, iterations: u64) -> String {
    let mut s = String::from(
        "# tracer bench: each thread creates, stats, stats a missing name and unlinks, over its\n\
         # own names, so the work is fixed whatever the interleaving.\n\
         name = \"bench\"\n\
         description = \"recording-cost benchmark: create/stat/stat-missing/unlink per thread\"\n\
         filesystem = \"tmpfs\"\n\
         seed = 0\n\n\
         [[setup]]\n\
         op = \"mkdir\"\n\
         path = \"d0\"\n",
    );
    for t in 0..u64::from(threads) {
        let (start, end) = (t * NAMES_PER_THREAD, (t + 1) * NAMES_PER_THREAD);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "\n[[thread]]\n\
             name = \"w{t}\"\n\
             iterations = {iterations}\n\
             range = [{start}, {end}]\n\
             pick = \"sequential\"\n\
             ops = [\n    \
             {{ op = \"create\", path = \"d0/f{{i}}\" }},\n    \
             {{ op = \"stat\", path = \"d0/f{{i}}\" }},\n    \
             {{ op = \"stat\", path = \"d0/m{{i}}\" }},\n    \
             {{ op = \"unlink\", path = \"d0/f{{i}}\" }},\n\
             ]\n"
        );
    }
    s
}

/// A scratch directory, removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: BenchArgs) -> Result<i32> {
    // Each recording's probes would stay attached under every run after it.
    if args.record_arg.iter().any(|a| a == "--leave-attached") {
        bail!("--record-arg --leave-attached would leave each recording's probes attached under the runs after it; leave it out");
    }
    let mut kinds: Vec<Kind> = args
        .setups
        .iter()
        .copied()
        .filter(|k| *k != Kind::Untraced)
        .collect();
    kinds.sort();
    kinds.dedup();
    let mut traced = Vec::new();
    for &kind in &kinds {
        traced.push(Setup::of(kind));
        if kind.records() {
            for (name, _) in &args.variant {
                traced.push(Setup {
                    kind,
                    variant: Some(name.clone()),
                });
            }
        }
    }
    let mut thread_counts = args.threads.clone();
    thread_counts.dedup();
    let exe = std::env::current_exe().context("finding this tracer binary")?;
    let work = WorkDir(std::env::temp_dir().join(format!("tracer-bench-{}", std::process::id())));
    fs::create_dir_all(&work.0).with_context(|| format!("creating {}", work.0.display()))?;
    let script = match &args.bpftrace_script {
        Some(p) => fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => BPFTRACE_SCRIPT.to_string(),
    };
    let script_path = work.0.join("dcache.bt");
    let bpftrace_version = if kinds.contains(&Kind::Bpftrace) {
        fs::write(&script_path, &script)
            .with_context(|| format!("writing {}", script_path.display()))?;
        Some(bpftrace_version(&args.bpftrace)?)
    } else {
        None
    };

    eprintln!(
        "bench: {} rounds of {}, each between untraced runs, at {} workload threads x {} \
         iterations",
        args.rounds,
        traced
            .iter()
            .map(Setup::name)
            .collect::<Vec<_>>()
            .join(", "),
        thread_counts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.iterations,
    );

    let mut runs = Vec::new();
    let mut workloads = Vec::new();
    let mut attach: BTreeMap<Setup, BTreeMap<String, Attachment>> = BTreeMap::new();
    let mut sample = Vec::new();
    for &threads in &thread_counts {
        let toml = workload_toml(threads, args.iterations);
        let toml_path = work.0.join(format!("bench-{threads}.toml"));
        fs::write(&toml_path, &toml).with_context(|| format!("writing {}", toml_path.display()))?;
        let expected = Expected {
            ops: u64::from(threads) * args.iterations * OPS_PER_ITERATION,
            failed: u64::from(threads) * args.iterations,
        };
        workloads.push(BenchWorkload {
            threads,
            ops_per_run: expected.ops,
            toml,
        });
        let ctx = Ctx {
            exe: &exe,
            work: &work.0,
            toml: &toml_path,
            script: &script_path,
            bpftrace: &args.bpftrace,
            variants: &args.variant,
            record_args: &args.record_arg,
            threads,
            expected,
        };
        eprintln!(
            "bench: {threads} threads, {} ops a run; warming up",
            expected.ops
        );
        rounds(&ctx, &args, &traced, &mut runs, &mut attach, &mut sample)?;
    }

    let mut setups = vec![Setup::UNTRACED];
    setups.extend(traced);
    let summary = thread_counts
        .iter()
        .flat_map(|&t| summarize(t, &setups, &runs, &attach))
        .collect();
    let report = Report {
        schema: SCHEMA,
        note: TCG_NOTE,
        kernel_release: crate::kernel::release(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        rounds: args.rounds,
        threads: thread_counts,
        iterations_per_thread: args.iterations,
        workloads,
        record_args: args.record_arg.clone(),
        bpftrace_script: bpftrace_version.as_ref().map(|_| script),
        bpftrace_version,
        bpftrace_sample: sample,
        summary,
        runs,
    };
    print!("{}", table(&report));
    output::write_atomic(&args.out, &serde_json::to_vec_pretty(&report)?, 0o644)?;
    eprintln!("bench: results in {}", args.out.display());
    Ok(0)
}

/// Every round at one thread count: each traced configuration once, in an order rotated per
/// round, with an untraced run before the first and after each.
fn rounds(
    ctx: &Ctx<'_>,
    args: &BenchArgs,
    traced: &[Setup],
    runs: &mut Vec<Run>,
    attach: &mut BTreeMap<Setup, BTreeMap<String, Attachment>>,
    sample: &mut Vec<String>,
) -> Result<()> {
    // The first run grows the dentry and inode caches; no configuration pays for it.
    run_untraced(ctx, 0)?;
    let progress = |run: &Run| {
        eprintln!(
            "bench: {}t round {}/{} {:<12} {:>8.3}s {:>7} {:>9} events {:>9} lost",
            run.threads,
            run.round + 1,
            args.rounds,
            run.setup.name(),
            run.workload_seconds,
            run.ratio.map_or_else(String::new, |r| format!("{r:.2}x")),
            run.delivered_total(),
            run.lost()
        );
    };
    for round in 0..args.rounds {
        let first = run_untraced(ctx, round)?;
        progress(&first);
        let mut before = first.workload_seconds;
        runs.push(first);
        let n = traced.len();
        for i in 0..n {
            let setup = &traced[(i + round as usize) % n];
            let mut run = match setup.kind {
                Kind::Untraced => run_untraced(ctx, round)?,
                Kind::Fentry | Kind::Kprobe | Kind::FentryFloor | Kind::KprobeFloor => {
                    let (run, a) = if setup.kind.records() {
                        run_record(ctx, round, setup)?
                    } else {
                        run_floor(ctx, round, setup)?
                    };
                    attach.entry(setup.clone()).or_insert(a);
                    run
                }
                Kind::Bpftrace => {
                    let (run, s) = run_bpftrace(ctx, round)?;
                    if sample.is_empty() {
                        *sample = s;
                    }
                    run
                }
            };
            let after = run_untraced(ctx, round)?;
            run.ratio = Some(run.workload_seconds / ((before + after.workload_seconds) / 2.0));
            before = after.workload_seconds;
            progress(&run);
            progress(&after);
            runs.push(run);
            runs.push(after);
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Expected {
    ops: u64,
    failed: u64,
}

struct Ctx<'a> {
    exe: &'a Path,
    work: &'a Path,
    toml: &'a Path,
    script: &'a Path,
    bpftrace: &'a Path,
    variants: &'a [(String, PathBuf)],
    record_args: &'a [String],
    threads: u32,
    expected: Expected,
}

impl Ctx<'_> {
    /// The workload did its fixed work: every op ran, and only the stats of missing names
    /// failed. Otherwise the configurations would not be measuring the same thing.
    fn check_work(&self, setup: &Setup, ops: u64, failed: u64) -> Result<()> {
        if ops != self.expected.ops || failed != self.expected.failed {
            bail!(
                "{}: the workload did {ops} ops with {failed} failures, expected {} with {} \
                 (one ENOENT per iteration); the configurations would not compare",
                setup.name(),
                self.expected.ops,
                self.expected.failed
            );
        }
        Ok(())
    }

    fn run_workload_cmd(&self) -> Command {
        let mut c = Command::new(self.exe);
        c.arg("run-workload").arg("--workload").arg(self.toml);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::{
        parse::parse_bpftrace,
        stats::{median, median_u64},
        *,
    };
    use tracer_analysis::workload::Workload;

    #[test]
    fn the_bench_workload_parses_with_its_fixed_work() {
        let w = Workload::from_toml(&workload_toml(3, 7), "bench").expect("valid workload");
        assert_eq!(w.threads.len(), 3);
        assert_eq!(w.planned_ops(), Some(3 * 7 * OPS_PER_ITERATION));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median_u64(vec![5, 1, 9]), 5);
    }

    #[test]
    fn summaries_per_thread_count_with_the_ratio_over_the_floor() {
        let run = |threads, kind, ratio: Option<f64>| Run {
            round: 0,
            threads,
            setup: Setup::of(kind),
            workload_seconds: 1.0,
            ratio,
            median_op_ns: 100,
            ops: 4,
            failed_ops: 1,
            hits: BTreeMap::new(),
            delivered: BTreeMap::from([("__d_lookup_rcu".to_string(), 1000)]),
            tool_reported_lost: 0,
            consumer_cpu_seconds: kind.records().then_some(0.01),
            consumer_wakeups: kind.records().then_some(3),
            programs: BTreeMap::new(),
        };
        let runs = vec![
            run(1, Kind::Untraced, None),
            run(1, Kind::FentryFloor, Some(1.2)),
            run(1, Kind::Fentry, Some(1.5)),
            run(1, Kind::Fentry, Some(1.8)),
            run(1, Kind::Fentry, Some(1.6)),
            run(4, Kind::Untraced, None),
            run(4, Kind::FentryFloor, Some(2.0)),
            run(4, Kind::Fentry, Some(3.0)),
        ];
        let setups = [
            Setup::UNTRACED,
            Setup::of(Kind::FentryFloor),
            Setup::of(Kind::Fentry),
            Setup::of(Kind::Kprobe),
        ];
        let s1 = stats::summarize(1, &setups, &runs, &BTreeMap::new());
        let fentry = &s1[2];
        assert_eq!((fentry.threads, fentry.setup.kind), (1, Kind::Fentry));
        assert_eq!(
            (fentry.ratio, fentry.ratio_min, fentry.ratio_max),
            (1.6, 1.5, 1.8)
        );
        assert!((fentry.over_floor.expect("fentry has a floor") - 1.6 / 1.2).abs() < 1e-12);
        assert_eq!(s1[1].over_floor, None);
        // 10 ms of the consumer's CPU for 1000 events.
        let us = fentry
            .consumer_cpu_us_per_event
            .expect("fentry has a consumer");
        assert!((us - 10.0).abs() < 1e-9, "{us}");
        assert_eq!(fentry.consumer_wakeups_per_run, Some(3));
        assert_eq!(s1[1].consumer_cpu_us_per_event, None);
        // No kprobe floor ran: no ratio over it.
        assert_eq!(s1[3].over_floor, None);
        let s4 = stats::summarize(4, &setups, &runs, &BTreeMap::new());
        assert_eq!(s4[2].ratio, 3.0);
        assert_eq!(s4[2].over_floor, Some(1.5));
    }

    #[test]
    fn reads_the_recorders_consumer_and_program_figures_when_present() {
        let old: RecordSummaryIn = serde_json::from_str(
            r#"{"trace": "t", "attach": {}, "hits": {}, "lost": 0, "workload_seconds": 1.0,
                "end": "finished"}"#,
        )
        .expect("a summary without them");
        assert_eq!(
            (old.consumer_cpu_seconds, old.consumer_wakeups),
            (None, None)
        );
        assert!(old.programs.is_empty());
        let new: RecordSummaryIn = serde_json::from_str(
            r#"{"trace": "t", "attach": {}, "hits": {}, "lost": 0, "workload_seconds": 1.0,
                "end": "finished", "consumer_cpu_seconds": 0.5, "consumer_wakeups": 7,
                "programs": {"lookup_rcu_fentry": {"runs": 10, "ns_per_run": 250.0}}}"#,
        )
        .expect("a summary with them");
        assert_eq!(
            (new.consumer_cpu_seconds, new.consumer_wakeups),
            (Some(0.5), Some(7))
        );
        let p = &new.programs["lookup_rcu_fentry"];
        assert_eq!((p.runs, p.ns_per_run), (10, 250.0));
    }

    #[test]
    fn reads_bpftrace_output() {
        let p = std::env::temp_dir().join(format!("bench-bt-{}.out", std::process::id()));
        fs::write(
            &p,
            "Attaching 11 probes...\nready\n\
             __d_lookup_rcu 1 2 3 0 ffff1 ffff2 4 ffff3 4 1 0 abc 2 f0\n\
             ___d_drop 1 2 3 0 a b 4 c 1 6 c 0 0 abc 2 f0\n\
             Lost 7 events\n\n\n@hits___d_lookup_rcu: 3\n\n@hits____d_drop: 1\n",
        )
        .expect("write");
        let o = parse_bpftrace(&p).expect("parsed");
        let _ = fs::remove_file(&p);
        assert_eq!(o.lines.get("__d_lookup_rcu"), Some(&1));
        assert_eq!(o.lines.get("___d_drop"), Some(&1));
        assert_eq!(o.hits.get("__d_lookup_rcu"), Some(&3));
        assert_eq!(o.hits.get("___d_drop"), Some(&1));
        assert_eq!(o.reported_lost, 7);
        let run = Run {
            round: 0,
            threads: 2,
            setup: Setup::of(Kind::Bpftrace),
            workload_seconds: 1.0,
            ratio: None,
            median_op_ns: 0,
            ops: 0,
            failed_ops: 0,
            hits: o.hits,
            delivered: o.lines,
            tool_reported_lost: o.reported_lost,
            consumer_cpu_seconds: None,
            consumer_wakeups: None,
            programs: BTreeMap::new(),
        };
        assert_eq!(run.lost(), 2);
    }
}
