//! `cargo xtask matrix`: every kernel × workload pair recorded in its own guest, `--jobs`
//! guests at a time, each trace replayed on the model profile of its kernel's generation and
//! diffed. The guests are tokio tasks: each has a timeout, Ctrl-C or SIGTERM cancels them all
//! (dropping a task kills its QEMU), and each pair has a live status line and prefixed notes.
//!
//! Outputs in `--out`: `summary.json`, `junit.xml` (one test case per pair), `table.txt`, and a
//! folder per pair (`<kernel>/<workload>/`: kernel.trace, record.json, model.trace, report.txt,
//! report.json, timeline.json, the guest's files and the VM's console log). Exit status: the
//! worst verdict (0 clean, 1 anomalies, 2 anything else).
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::{IsTerminal, Write as _},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tokio::{sync::Semaphore, task::JoinSet};
use tracer_analysis::{diff::ReportDigest, record_summary::RecordSummary, trace::Attachment};

use crate::{
    builder, cmd, setup,
    test::Check,
    vm::{self, KernelChoice, Observer, Stage, VmSpec},
};

/// Debian's 5.10, 6.1 and 6.12, and the newest kernel in backports.
pub const DEFAULT_KERNELS: [&str; 4] = [
    "debian:bullseye",
    "debian:bookworm",
    "debian:bookworm-backports",
    "debian:trixie-backports",
];

/// The builtin workloads (`tracer workloads`).
pub use tracer_analysis::workload::BUILTIN_NAMES as BUILTIN_WORKLOADS;

#[derive(clap::Args, Debug)]
pub struct MatrixArgs {
    /// Kernels, comma-separated: debian:SUITE[/VERSION], built:NAME or a bzImage path
    /// [default: debian:bullseye,debian:bookworm,debian:bookworm-backports,debian:trixie-backports]
    #[arg(long, value_name = "K,...", value_delimiter = ',')]
    kernels: Vec<KernelChoice>,
    /// Workloads, comma-separated: builtin names or TOML files [default: every builtin]
    #[arg(long, value_name = "W,...", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Multiply every workload's iteration counts
    #[arg(long)]
    scale: Option<f64>,
    /// Guests at a time [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// Run only the pair with this index (kernel-major order, from 0): one pair per CI job or
    /// per Kubernetes Job completion index
    #[arg(long, value_name = "I")]
    index: Option<usize>,
    /// Wall-clock limit per guest, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    timeout: u64,
    /// Where the summary, the JUnit XML and each pair's folder go
    #[arg(long, value_name = "DIR", default_value = "target/matrix")]
    out: PathBuf,
    /// Instead of running, write a CI workflow that runs one pair per job (into --out)
    #[arg(long, value_enum, value_name = "ENGINE")]
    emit: Option<Emit>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// A GitHub Actions workflow with a job matrix of the pairs
    GithubActions,
}

/// What happened to one pair, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The diff found nothing (exit 0).
    Clean,
    /// The diff found anomalies (exit 1).
    Anomalies,
    /// The diff could not decide (exit 2: trouble with its inputs).
    Inconclusive,
    /// The recording or the harness failed: no diff.
    Failed,
    /// The guest or a step ran past its time limit.
    TimedOut,
    /// Ctrl-C or SIGTERM stopped the matrix before the pair ended.
    Cancelled,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Clean => 0,
            Verdict::Anomalies => 1,
            _ => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Anomalies => "anomalies",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Failed => "failed",
            Verdict::TimedOut => "timed-out",
            Verdict::Cancelled => "cancelled",
        }
    }
}

/// One row of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct PairResult {
    pub kernel: String,
    pub workload: String,
    /// Where the kernel came from (package and version) and its release in the guest.
    pub kernel_origin: Option<String>,
    pub release: Option<String>,
    /// Probe symbol → attach mode ("fentry", "kprobe", "absent: ...", "refused: ...").
    pub attach: BTreeMap<String, Attachment>,
    pub events: Option<u64>,
    pub lost: Option<u64>,
    /// The recording ended with the workload and every event drained.
    pub complete: Option<bool>,
    /// Coverage gaps of the kernel side.
    pub gaps: Option<u64>,
    pub verdict: Verdict,
    /// What went wrong, for the verdicts that are not the diff's.
    pub error: Option<String>,
    pub wall_seconds: f64,
    pub dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub kernels: Vec<String>,
    pub workloads: Vec<String>,
    pub jobs: u16,
    /// Builds and kernel downloads before the first guest.
    pub prepare_seconds: f64,
    /// First guest started → last pair ended.
    pub wall_seconds: f64,
    pub worst: Verdict,
    pub pairs: Vec<PairResult>,
}

/// What to run, for callers other than the CLI (the test step).
pub struct Plan {
    pub kernels: Vec<KernelChoice>,
    /// (workload, scale)
    pub workloads: Vec<(String, Option<f64>)>,
    pub jobs: u16,
    pub timeout: Duration,
    pub out: PathBuf,
}

pub fn matrix(args: MatrixArgs) -> Result<i32> {
    let kernels = if args.kernels.is_empty() {
        default_kernels()
    } else {
        args.kernels
    };
    let workloads: Vec<String> = if args.workloads.is_empty() {
        BUILTIN_WORKLOADS.iter().map(|w| w.to_string()).collect()
    } else {
        args.workloads
    };
    let out = absolute(&args.out)?;
    if let Some(Emit::GithubActions) = args.emit {
        let path = out.join("kernel-matrix.yml");
        fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        fs::write(&path, github_actions(&kernels, &workloads, args.scale))
            .with_context(|| format!("writing {}", path.display()))?;
        println!(
            "matrix: wrote {} (copy it to .github/workflows/)",
            path.display()
        );
        return Ok(0);
    }
    let mut pairs: Vec<(KernelChoice, (String, Option<f64>))> = kernels
        .iter()
        .flat_map(|k| {
            workloads
                .iter()
                .map(|w| (k.clone(), (w.clone(), args.scale)))
        })
        .collect();
    if let Some(i) = args.index {
        let n = pairs.len();
        if i >= n {
            bail!(
                "--index {i}: there are {n} pairs (0 to {})",
                n.saturating_sub(1)
            );
        }
        pairs = vec![pairs.swap_remove(i)];
    }
    let mut kernels: Vec<KernelChoice> = Vec::new();
    let mut workloads: Vec<(String, Option<f64>)> = Vec::new();
    for (k, w) in &pairs {
        if !kernels.contains(k) {
            kernels.push(k.clone());
        }
        if !workloads.contains(w) {
            workloads.push(w.clone());
        }
    }
    let plan = Plan {
        kernels,
        workloads,
        jobs: args.jobs.unwrap_or_else(default_jobs),
        timeout: Duration::from_secs(args.timeout),
        out,
    };
    let summary = run(&plan)?;
    Ok(summary.worst.exit_code())
}

pub fn default_kernels() -> Vec<KernelChoice> {
    DEFAULT_KERNELS
        .iter()
        .filter_map(|k| k.parse().ok())
        .collect()
}

/// One guest per core. Each guest has two vCPUs, but under TCG a guest spends much of its time
/// in the single-threaded early boot and in the host-side replay: on 2 cores, 16 pairs took
/// 339 s two at a time against 543 s one at a time.
fn default_jobs() -> u16 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u16::try_from(cores.clamp(1, 64)).unwrap_or(1)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Runs the plan and writes its outputs; the summary says how each pair ended.
pub fn run(plan: &Plan) -> Result<Summary> {
    setup::setup()?;
    let t0 = Instant::now();
    let host_tracer = builder::release_binaries()?;
    let guest_tracer = builder::static_tracer_binary()?;
    // Kernels are fetched before any guest starts: one download at a time, and a kernel that
    // cannot be had fails its pairs without holding a guest slot.
    let mut resolved = Vec::new();
    for k in &plan.kernels {
        resolved.push(vm::resolve_kernel(k).map_err(|e| format!("{e:#}")));
    }
    let mut pairs = Vec::new();
    for (k, kernel) in plan.kernels.iter().zip(&resolved) {
        for (w, scale) in &plan.workloads {
            let workload = resolve_workload(w)?;
            let modules = modules_of(&host_tracer, &workload)?;
            pairs.push(Pair {
                kernel: k.clone(),
                kernel_origin: kernel.as_ref().ok().cloned(),
                kernel_error: kernel.as_ref().err().cloned(),
                label: format!("{k} × {}", workload_label(w)),
                workload,
                workload_label: workload_label(w),
                scale: *scale,
                modules,
                dir: plan.out.join(k.slug()).join(workload_label(w)),
            });
        }
    }
    fs::create_dir_all(&plan.out).with_context(|| format!("creating {}", plan.out.display()))?;
    let status = Arc::new(Status::new(pairs.iter().map(|p| p.label.clone()).collect()));
    let prepare = t0.elapsed();
    let t0 = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let results = runtime.block_on(supervise(
        pairs,
        plan,
        status.clone(),
        Tools {
            host: host_tracer,
            guest: guest_tracer,
        },
    ))?;
    // Tasks cancelled mid-run dropped their children; the runtime's shutdown reaps them.
    runtime.shutdown_timeout(Duration::from_secs(5));
    status.finish();

    let worst = results
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Clean);
    let summary = Summary {
        kernels: plan.kernels.iter().map(|k| k.to_string()).collect(),
        workloads: plan
            .workloads
            .iter()
            .map(|(w, _)| workload_label(w))
            .collect(),
        jobs: plan.jobs,
        prepare_seconds: prepare.as_secs_f64(),
        wall_seconds: t0.elapsed().as_secs_f64(),
        worst,
        pairs: results,
    };
    let table = table(&summary);
    print!("{table}");
    let write = |name: &str, bytes: Vec<u8>| {
        let p = plan.out.join(name);
        fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write("summary.json", serde_json::to_vec_pretty(&summary)?)?;
    write("table.txt", table.into_bytes())?;
    write("junit.xml", junit(&summary).into_bytes())?;
    eprintln!(
        "matrix: {} pairs in {:.0}s with --jobs {} (after {:.0}s of builds and downloads); worst \
         verdict: {}; {}/summary.json, junit.xml, table.txt",
        summary.pairs.len(),
        summary.wall_seconds,
        summary.jobs,
        summary.prepare_seconds,
        worst.name(),
        plan.out.display()
    );
    Ok(summary)
}

/// The tracer builds every pair uses.
#[derive(Clone)]
struct Tools {
    /// Replays and diffs on the host.
    host: PathBuf,
    /// Records in the guest (static).
    guest: PathBuf,
}

#[derive(Clone)]
struct Pair {
    kernel: KernelChoice,
    kernel_origin: Option<String>,
    kernel_error: Option<String>,
    label: String,
    /// A builtin name or an absolute TOML path.
    workload: String,
    workload_label: String,
    scale: Option<f64>,
    modules: Vec<String>,
    dir: PathBuf,
}

/// Runs every pair, `plan.jobs` at a time, until all end or a signal cancels the rest.
async fn supervise(
    pairs: Vec<Pair>,
    plan: &Plan,
    status: Arc<Status>,
    tools: Tools,
) -> Result<Vec<PairResult>> {
    let slots = Arc::new(Semaphore::new(usize::from(plan.jobs)));
    let mut set = JoinSet::new();
    for (i, pair) in pairs.iter().cloned().enumerate() {
        let slots = slots.clone();
        let status = status.clone();
        let tools = tools.clone();
        let timeout = plan.timeout;
        set.spawn(async move {
            let permit = slots.acquire_owned().await;
            let t0 = Instant::now();
            let r = match permit {
                Ok(_permit) => run_pair(&pair, i, &status, &tools, timeout).await,
                Err(_) => Err((Verdict::Cancelled, "the matrix stopped".into())),
            };
            (i, t0.elapsed(), r)
        });
    }
    let mut results: Vec<Option<PairResult>> = vec![None; pairs.len()];
    let ticker = status.clone();
    let redraw = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            ticker.redraw();
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            joined = set.join_next() => {
                let Some(joined) = joined else { break };
                let (i, wall, r) = joined.context("a pair's task failed")?;
                let pair = &pairs[i];
                let row = finish(pair, wall, r);
                status.set(i, row.verdict.name().to_string());
                results[i] = Some(row);
            }
            _ = tokio::signal::ctrl_c() => {
                status.note(None, "Ctrl-C: stopping every guest");
                break;
            }
            _ = term.recv() => {
                status.note(None, "SIGTERM: stopping every guest");
                break;
            }
        }
    }
    // Dropping the tasks drops their QEMU and tracer children, which are killed on drop.
    set.abort_all();
    while set.join_next().await.is_some() {}
    redraw.abort();
    Ok(pairs
        .iter()
        .zip(results)
        .map(|(pair, r)| {
            r.unwrap_or_else(|| {
                finish(
                    pair,
                    Duration::ZERO,
                    Err((Verdict::Cancelled, "the matrix was stopped".into())),
                )
            })
        })
        .collect())
}

/// What a pair's run hands back: the diff's exit status, or the verdict and why.
type PairRun = std::result::Result<i32, (Verdict, String)>;

/// The summary row of a pair from what its folder holds.
fn finish(pair: &Pair, wall: Duration, r: PairRun) -> PairResult {
    let record = RecordSummary::read(&pair.dir.join("record.json")).ok();
    let report = ReportDigest::read(&pair.dir.join("report.json")).ok();
    let (verdict, error) = match r {
        Ok(0) => (Verdict::Clean, None),
        Ok(1) => (Verdict::Anomalies, None),
        Ok(_) => (Verdict::Inconclusive, None),
        Err((v, e)) => (v, Some(e)),
    };
    let _ = fs::write(
        pair.dir.join("verdict"),
        format!(
            "{}\n{}",
            verdict.name(),
            error.as_deref().unwrap_or_default()
        ),
    );
    PairResult {
        kernel: pair.kernel.to_string(),
        workload: pair.workload_label.clone(),
        kernel_origin: pair.kernel_origin.clone(),
        release: record.as_ref().map(|r| r.kernel_release.clone()),
        attach: record
            .as_ref()
            .map(|r| r.attach.clone())
            .unwrap_or_default(),
        events: record.as_ref().map(|r| r.events.values().sum()),
        lost: record.as_ref().map(|r| r.lost),
        complete: record.as_ref().map(|r| r.complete),
        gaps: report.map(|r| r.coverage_gaps.kernel.total),
        verdict,
        error,
        wall_seconds: wall.as_secs_f64(),
        dir: pair.dir.clone(),
    }
}

/// A pair's progress, for its status line and its log.
struct PairObserver {
    status: Arc<Status>,
    index: usize,
}

impl Observer for PairObserver {
    fn stage(&self, stage: Stage) {
        let what = match stage {
            Stage::Preparing => "preparing",
            Stage::Booting => "booting",
            Stage::Tracing => "recording",
            Stage::Sending => "sending",
        };
        self.status.set(self.index, what.into());
    }
    fn note(&self, line: &str) {
        self.status.note(Some(self.index), line);
    }
}

/// Records the pair in its guest, then replays and diffs on the host.
async fn run_pair(
    pair: &Pair,
    index: usize,
    status: &Arc<Status>,
    tools: &Tools,
    timeout: Duration,
) -> PairRun {
    let failed = |e: anyhow::Error| (Verdict::Failed, format!("{e:#}"));
    if let Some(e) = &pair.kernel_error {
        return Err((Verdict::Failed, e.clone()));
    }
    let _ = fs::remove_dir_all(&pair.dir);
    fs::create_dir_all(&pair.dir)
        .with_context(|| format!("creating {}", pair.dir.display()))
        .map_err(failed)?;
    let mut spec = VmSpec::new(record_args(pair));
    spec.kernel = pair.kernel.clone();
    spec.load_modules = pair.modules.clone();
    spec.files = crate::run::guest_tools(&spec.load_modules).map_err(failed)?;
    spec.tracer = Some(tools.guest.clone());
    spec.timeout = timeout;
    spec.scratch = pair.dir.join("vm");
    spec.out_dir = pair.dir.join("guest");
    if Path::new(&pair.workload).is_absolute() {
        spec.files.push((
            PathBuf::from(&pair.workload),
            PathBuf::from("/workload.toml"),
        ));
    }
    let observer = Arc::new(PairObserver {
        status: status.clone(),
        index,
    });
    let outcome = vm::run_in_vm_async(spec, observer).await.map_err(|e| {
        let text = format!("{e:#}");
        let verdict = if text.contains("did not finish within") {
            Verdict::TimedOut
        } else {
            Verdict::Failed
        };
        (verdict, text)
    })?;
    for f in ["kernel.trace", "record.json"] {
        // A failed recording may leave no trace; the exit code below says why.
        let _ = fs::rename(outcome.out_dir.join(f), pair.dir.join(f));
    }
    if outcome.exit_code != 0 {
        let stderr = fs::read_to_string(&outcome.stderr).unwrap_or_default();
        return Err((
            Verdict::Failed,
            format!(
                "tracer record exited {} in the guest: {}",
                outcome.exit_code,
                stderr.lines().last().unwrap_or_default()
            ),
        ));
    }

    status.set(index, "diffing".into());
    let trace = pair.dir.join("kernel.trace");
    let model = pair.dir.join("model.trace");
    let mut replay = tokio::process::Command::new(&tools.host);
    replay
        .args(["replay", "--against"])
        .arg(&trace)
        .arg("--out")
        .arg(&model);
    let out = child(replay, timeout, &pair.dir.join("replay.log")).await?;
    if out.0 != 0 {
        return Err((
            Verdict::Failed,
            format!(
                "tracer replay exited {}; see {}",
                out.0,
                pair.dir.join("replay.log").display()
            ),
        ));
    }
    let mut diff = tokio::process::Command::new(&tools.host);
    diff.arg("diff")
        .arg(&trace)
        .arg(&model)
        .arg("--json")
        .arg(pair.dir.join("report.json"))
        .arg("--timeline")
        .arg(pair.dir.join("timeline.json"));
    let (code, stdout) = child(diff, timeout, &pair.dir.join("diff.log")).await?;
    let _ = fs::write(pair.dir.join("report.txt"), stdout);
    check_diff_exit(code, &pair.dir)?;
    Ok(code)
}

/// Exit 2 is both the diff's "inconclusive" and any error of the tracer: only a report whose
/// verdict matches the exit status makes it a verdict, else the pair failed.
fn check_diff_exit(code: i32, dir: &Path) -> std::result::Result<(), (Verdict, String)> {
    let reported = ReportDigest::read(&dir.join("report.json"))
        .ok()
        .map(|r| r.verdict);
    if reported.is_some_and(|v| v.exit_status() == code) {
        return Ok(());
    }
    let log = dir.join("diff.log");
    let last = fs::read_to_string(&log).unwrap_or_default();
    Err((
        Verdict::Failed,
        format!(
            "tracer diff exited {code} with report verdict {}: {} (see {})",
            reported.map_or("none", |v| v.name()),
            last.lines().last().unwrap_or("no message"),
            log.display()
        ),
    ))
}

/// Runs a host child tied to xtask with a time limit; its stderr goes to `log`. Returns its
/// exit code and stdout.
async fn child(
    mut c: tokio::process::Command,
    timeout: Duration,
    log: &Path,
) -> std::result::Result<(i32, Vec<u8>), (Verdict, String)> {
    let shown = cmd::show(c.as_std());
    let err = fs::File::create(log)
        .map_err(|e| (Verdict::Failed, format!("creating {}: {e}", log.display())))?;
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err);
    cmd::tie_to_parent(&mut c);
    let child = c
        .spawn()
        .map_err(|e| (Verdict::Failed, format!("cannot start `{shown}`: {e}")))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok((out.status.code().unwrap_or(2), out.stdout)),
        Ok(Err(e)) => Err((Verdict::Failed, format!("`{shown}`: {e}"))),
        Err(_) => Err((
            Verdict::TimedOut,
            format!("`{shown}` ran past {}s and was killed", timeout.as_secs()),
        )),
    }
}

fn record_args(pair: &Pair) -> Vec<String> {
    let workload = if Path::new(&pair.workload).is_absolute() {
        "/workload.toml".to_owned()
    } else {
        pair.workload.clone()
    };
    let mut a: Vec<String> = vec![
        "record".into(),
        "--workload".into(),
        workload,
        "--summary".into(),
        "record.json".into(),
        "--out".into(),
        "kernel.trace".into(),
        "--quiet".into(),
    ];
    if let Some(s) = pair.scale {
        a.extend(["--scale".into(), s.to_string()]);
    }
    a
}

/// A builtin name stays a name; a TOML file becomes an absolute path (copied into the guest).
fn resolve_workload(w: &str) -> Result<String> {
    let p = Path::new(w);
    if p.is_file() {
        return Ok(fs::canonicalize(p)?.display().to_string());
    }
    if BUILTIN_WORKLOADS.contains(&w) {
        return Ok(w.to_owned());
    }
    bail!(
        "--workloads {w}: neither a builtin ({}) nor a TOML file",
        BUILTIN_WORKLOADS.join(", ")
    )
}

/// The workload's name in tables and folder names: the builtin's, or the TOML file's stem.
fn workload_label(w: &str) -> String {
    Path::new(w)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| w.to_owned())
}

/// The kernel modules the workload's file systems need in the guest.
fn modules_of(tracer: &Path, workload: &str) -> Result<Vec<String>> {
    let out =
        cmd::output(std::process::Command::new(tracer).args(["workloads", "--modules", workload]))
            .context("asking the tracer which kernel modules the workload needs")?;
    Ok(out
        .trim()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect())
}

/// The live status: a line per pair, redrawn in place on a terminal; on anything else (CI
/// logs) a line per change.
struct Status {
    tty: bool,
    inner: Mutex<StatusInner>,
}

struct StatusInner {
    labels: Vec<String>,
    states: Vec<(String, Instant)>,
    /// Lines of the block drawn last, to move back over.
    drawn: usize,
}

impl Status {
    fn new(labels: Vec<String>) -> Status {
        let now = Instant::now();
        Status {
            tty: std::io::stderr().is_terminal(),
            inner: Mutex::new(StatusInner {
                states: labels.iter().map(|_| ("queued".into(), now)).collect(),
                labels,
                drawn: 0,
            }),
        }
    }

    fn set(&self, i: usize, state: String) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if s.states.get(i).is_some_and(|(old, _)| *old == state) {
            return;
        }
        if let Some(slot) = s.states.get_mut(i) {
            *slot = (state.clone(), Instant::now());
        }
        if self.tty {
            self.draw(&mut s, &[]);
        } else {
            let label = s.labels.get(i).cloned().unwrap_or_default();
            eprintln!("[{label}] {state}");
        }
    }

    fn note(&self, i: Option<usize>, line: &str) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let text = match i.and_then(|i| s.labels.get(i)) {
            Some(label) => format!("[{label}] {line}"),
            None => format!("matrix: {line}"),
        };
        if self.tty {
            self.draw(&mut s, &[text]);
        } else {
            eprintln!("{text}");
        }
    }

    fn redraw(&self) {
        if self.tty {
            let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            self.draw(&mut s, &[]);
        }
    }

    /// Moves up over the last block, prints `notes` above a new block.
    fn draw(&self, s: &mut StatusInner, notes: &[String]) {
        let mut out = String::new();
        if s.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\r\x1b[J", s.drawn);
        }
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
        let width = s
            .labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        for (label, (state, since)) in s.labels.iter().zip(&s.states) {
            let _ = writeln!(
                out,
                "  {label:<width$}  {state} ({:.0}s)",
                since.elapsed().as_secs_f64()
            );
        }
        s.drawn = s.labels.len();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    /// Leaves the last block on the screen as it is.
    fn finish(&self) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty {
            self.draw(&mut s, &[]);
        }
        s.drawn = 0;
    }
}

/// The table: kernel, workload, attach modes, events, lost, gaps, verdict, wall time.
pub fn table(s: &Summary) -> String {
    let rows: Vec<[String; 8]> = s
        .pairs
        .iter()
        .map(|p| {
            let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
            [
                match &p.release {
                    Some(r) => format!("{} ({r})", p.kernel),
                    None => p.kernel.clone(),
                },
                p.workload.clone(),
                attach_modes(&p.attach),
                opt(p.events),
                opt(p.lost),
                opt(p.gaps),
                p.verdict.name().to_owned(),
                format!("{:.0}s", p.wall_seconds),
            ]
        })
        .collect();
    let head = [
        "kernel", "workload", "attach", "events", "lost", "gaps", "verdict", "wall",
    ];
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    };
    line(head.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// "fentry" when every probe attached so, "kprobe" likewise, else the count of each mode.
fn attach_modes(attach: &BTreeMap<String, Attachment>) -> String {
    if attach.is_empty() {
        return "-".into();
    }
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for mode in attach.values() {
        let m = match mode {
            Attachment::Fentry => "fentry",
            Attachment::Kprobe => "kprobe",
            Attachment::Absent(_) => "absent",
            Attachment::Refused(_) => "refused",
        };
        *count.entry(m).or_default() += 1;
    }
    if count.len() == 1 {
        return count
            .keys()
            .next()
            .map(|k| k.to_string())
            .unwrap_or_default();
    }
    count
        .iter()
        .map(|(m, n)| format!("{m}×{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// JUnit XML: one test suite, one test case per pair (class: the kernel, name: the workload);
/// a pair that is not clean is a failure with its verdict and error.
pub fn junit(s: &Summary) -> String {
    let failures = s
        .pairs
        .iter()
        .filter(|p| p.verdict != Verdict::Clean)
        .count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites><testsuite name=\"kernel-matrix\" tests=\"{}\" failures=\"{failures}\" \
         time=\"{:.1}\">",
        s.pairs.len(),
        s.wall_seconds
    );
    for p in &s.pairs {
        let _ = write!(
            x,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.1}\">",
            xml_escape(&p.kernel),
            xml_escape(&p.workload),
            p.wall_seconds
        );
        if p.verdict != Verdict::Clean {
            let _ = write!(
                x,
                "<failure message=\"{}\">{}</failure>",
                p.verdict.name(),
                xml_escape(
                    p.error
                        .as_deref()
                        .unwrap_or(&format!("see {}", p.dir.join("report.txt").display()))
                )
            );
        }
        let _ = writeln!(
            x,
            "<system-out>events {} lost {} gaps {} release {}</system-out></testcase>",
            p.events.map_or("-".into(), |v| v.to_string()),
            p.lost.map_or("-".into(), |v| v.to_string()),
            p.gaps.map_or("-".into(), |v| v.to_string()),
            xml_escape(p.release.as_deref().unwrap_or("-")),
        );
    }
    x.push_str("</testsuite></testsuites>\n");
    x
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// A workflow running `cargo xtask matrix --index I` as one job per pair, each uploading its
/// folder.
pub fn github_actions(
    kernels: &[KernelChoice],
    workloads: &[String],
    scale: Option<f64>,
) -> String {
    let mut include = String::new();
    let mut i = 0;
    for k in kernels {
        for w in workloads {
            let _ = writeln!(
                include,
                "          - {{ index: {i}, kernel: \"{k}\", workload: \"{}\" }}",
                workload_label(w)
            );
            i += 1;
        }
    }
    let kernels: Vec<String> = kernels.iter().map(|k| k.to_string()).collect();
    let scale = scale.map(|s| format!(" --scale {s}")).unwrap_or_default();
    format!(
        r#"# Written by `cargo xtask matrix --emit github-actions`: one kernel × workload pair per job.
name: kernel-matrix
on:
  workflow_dispatch:
jobs:
  pair:
    name: ${{{{ matrix.kernel }}}} × ${{{{ matrix.workload }}}}
    runs-on: ubuntu-24.04
    timeout-minutes: 60
    strategy:
      fail-fast: false
      matrix:
        include:
{include}    steps:
      - uses: actions/checkout@v4
      - name: Debian's archive keys (the kernels come from deb.debian.org)
        run: sudo apt-get update && sudo apt-get install -y debian-archive-keyring
      - name: Toolchains and QEMU
        run: sudo -E env "PATH=$PATH" cargo xtask setup
      - name: Record, replay and diff the pair
        run: >-
          sudo -E env "PATH=$PATH" cargo xtask matrix
          --kernels {kernels} --workloads {workloads}{scale}
          --index ${{{{ matrix.index }}}} --jobs 1 --out out
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: pair-${{{{ matrix.index }}}}
          path: out/
"#,
        kernels = kernels.join(","),
        workloads = workloads.join(","),
    )
}

/// Scale of each builtin in the test step: a few seconds of recording under TCG.
const SMOKE_SCALE: f64 = 0.1;

/// The `matrix` test step: the default kernels × every builtin at a small scale. Every pair
/// must record completely, lose nothing and have no anomaly (the kernels are Debian's,
/// unpatched); inconclusive passes.
pub fn smoke() -> Result<Vec<Check>> {
    let plan = Plan {
        kernels: default_kernels(),
        workloads: BUILTIN_WORKLOADS
            .iter()
            .map(|w| (w.to_string(), Some(SMOKE_SCALE)))
            .collect(),
        jobs: default_jobs().max(2),
        timeout: Duration::from_secs(600),
        out: cmd::root().join("target/matrix-smoke"),
    };
    let s = run(&plan)?;
    let mut checks = Vec::new();
    let want = plan.kernels.len() * plan.workloads.len();
    checks.push(if s.pairs.len() == want {
        Check::pass(format!("{want} pairs in the summary"))
    } else {
        Check::fail(
            format!("{want} pairs in the summary"),
            format!("{} pairs", s.pairs.len()),
        )
    });
    let junit = fs::read_to_string(plan.out.join("junit.xml")).unwrap_or_default();
    let cases = junit.matches("<testcase ").count();
    checks.push(if cases == want {
        Check::pass("junit.xml has a test case per pair".into())
    } else {
        Check::fail(
            "junit.xml has a test case per pair".into(),
            format!("{cases} test cases"),
        )
    });
    // Every default kernel is Debian's, unpatched: an anomaly there is the tool's false
    // positive, so the step fails on it. Inconclusive (coverage gaps) is an honest answer.
    for p in &s.pairs {
        let what = format!(
            "{} × {}: recorded completely, 0 lost, no anomaly",
            p.kernel, p.workload
        );
        let detail = format!(
            "{} ({}), {} events, verdict {}, {:.0}s",
            p.release.as_deref().unwrap_or("-"),
            attach_modes(&p.attach),
            p.events.unwrap_or(0),
            p.verdict.name(),
            p.wall_seconds
        );
        let ok = p.complete == Some(true)
            && p.lost == Some(0)
            && matches!(p.verdict, Verdict::Clean | Verdict::Inconclusive);
        checks.push(if ok {
            Check::note(what, detail)
        } else {
            let kept = crate::evidence::keep(&p.dir, &format!("{}-{}", p.kernel, p.workload));
            Check::fail(
                what,
                format!(
                    "{detail}; complete {:?}, lost {:?}; reasons {:?}; report {}{}",
                    p.complete,
                    p.lost,
                    report_reasons(&p.dir.join("report.json")),
                    kept.as_deref()
                        .unwrap_or(&p.dir)
                        .join("report.txt")
                        .display(),
                    p.error
                        .as_deref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default()
                ),
            )
        });
    }
    Ok(checks)
}

/// The first few reasons of a pair's verdict, as the report states them.
fn report_reasons(report: &Path) -> Vec<String> {
    match ReportDigest::read(report) {
        Ok(r) => r.reasons.into_iter().take(3).map(|x| x.message).collect(),
        Err(e) => vec![e.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_fixture;

    fn row(kernel: &str, workload: &str, verdict: Verdict) -> PairResult {
        PairResult {
            kernel: kernel.into(),
            workload: workload.into(),
            kernel_origin: None,
            release: Some("6.1.0-57-amd64".into()),
            attach: [
                ("__d_lookup_rcu".to_owned(), Attachment::Fentry),
                ("__d_drop".to_owned(), Attachment::Fentry),
            ]
            .into(),
            events: Some(1234),
            lost: Some(0),
            complete: Some(true),
            gaps: Some(0),
            verdict,
            error: (verdict != Verdict::Clean).then(|| "a <bad> \"thing\" & more".into()),
            wall_seconds: 61.2,
            dir: PathBuf::from("/m/x"),
        }
    }

    fn summary() -> Summary {
        Summary {
            kernels: vec!["debian:bookworm".into()],
            workloads: vec!["negative".into(), "prune-stat".into()],
            jobs: 2,
            prepare_seconds: 10.0,
            wall_seconds: 100.0,
            worst: Verdict::Failed,
            pairs: vec![
                row("debian:bookworm", "negative", Verdict::Clean),
                row("debian:bookworm", "prune-stat", Verdict::Failed),
            ],
        }
    }

    /// A tracer error exits 2 like "inconclusive" does: without a report saying inconclusive,
    /// the pair failed, so a crashing diff cannot pass the matrix step.
    #[test]
    fn an_exit_status_counts_only_with_the_report_that_matches_it() {
        let dir = std::env::temp_dir().join(format!("xtask-diff-exit-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        fs::write(
            dir.join("diff.log"),
            "tracer: error: reading x.trace: truncated\n",
        )
        .expect("log");
        let failed = check_diff_exit(2, &dir).expect_err("no report");
        assert_eq!(failed.0, Verdict::Failed);
        assert!(failed.1.contains("truncated"), "{}", failed.1);
        fs::write(
            dir.join("report.json"),
            report_fixture::with_verdict("inconclusive"),
        )
        .expect("report");
        assert!(check_diff_exit(2, &dir).is_ok());
        assert!(
            check_diff_exit(0, &dir).is_err(),
            "exit 0 with an inconclusive report"
        );
        fs::write(
            dir.join("report.json"),
            report_fixture::with_verdict("anomalies"),
        )
        .expect("report");
        assert!(check_diff_exit(1, &dir).is_ok());
        assert!(check_diff_exit(3, &dir).is_err());
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn verdicts_order_and_exit() {
        assert!(Verdict::Clean < Verdict::Anomalies && Verdict::Anomalies < Verdict::Inconclusive);
        assert!(Verdict::Inconclusive < Verdict::Failed && Verdict::TimedOut < Verdict::Cancelled);
        let codes: Vec<i32> = [Verdict::Clean, Verdict::Anomalies, Verdict::TimedOut]
            .iter()
            .map(|v| v.exit_code())
            .collect();
        assert_eq!(codes, [0, 1, 2]);
        assert_eq!(
            serde_json::to_value(Verdict::TimedOut).expect("json"),
            "timed-out"
        );
    }

    #[test]
    fn table_has_a_row_per_pair() {
        let t = table(&summary());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("kernel") && lines[0].contains("verdict"));
        assert!(
            lines[1].contains("debian:bookworm (6.1.0-57-amd64)")
                && lines[1].contains("fentry")
                && lines[1].contains("1234")
                && lines[1].contains("clean"),
            "{t}"
        );
        assert!(lines[2].contains("failed"), "{t}");
    }

    #[test]
    fn junit_is_escaped_and_counts_failures() {
        let x = junit(&summary());
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert!(
            x.contains("a &lt;bad&gt; &quot;thing&quot; &amp; more"),
            "{x}"
        );
        assert!(!x.contains("<bad>"));
    }

    #[test]
    fn attach_modes_summarise() {
        let mut a: BTreeMap<String, Attachment> = [("a".to_owned(), Attachment::Kprobe)].into();
        assert_eq!(attach_modes(&a), "kprobe");
        a.insert("b".into(), Attachment::Fentry);
        a.insert("c".into(), Attachment::Absent("no symbol".into()));
        a.insert("d".into(), Attachment::Refused("EBUSY".into()));
        assert_eq!(attach_modes(&a), "absent×1,fentry×1,kprobe×1,refused×1");
        assert_eq!(attach_modes(&BTreeMap::new()), "-");
    }

    #[test]
    fn workflow_lists_every_pair() {
        let kernels = default_kernels();
        assert_eq!(kernels.len(), 4);
        let w: Vec<String> = BUILTIN_WORKLOADS.iter().map(|s| s.to_string()).collect();
        let y = github_actions(&kernels, &w, Some(0.2));
        let n = 4 * w.len();
        assert_eq!(y.matches("- { index: ").count(), n, "{y}");
        let last = format!(
            "{{ index: {}, kernel: \"debian:trixie-backports\", workload: \"{}\" }}",
            n - 1,
            w[w.len() - 1]
        );
        assert!(y.contains(&last), "{y}");
        assert!(y.contains("--index ${{ matrix.index }}"), "{y}");
        assert!(y.contains("--scale 0.2"));
    }

    #[test]
    fn workloads_are_builtins_or_files() {
        assert_eq!(
            resolve_workload("negative").ok().as_deref(),
            Some("negative")
        );
        let err = resolve_workload("negatve").expect_err("misspelt");
        assert!(format!("{err}").contains("neither a builtin"), "{err}");
        assert_eq!(workload_label("/x/y/my-load.toml"), "my-load");
    }
}
