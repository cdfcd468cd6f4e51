//! `cargo xtask detect`: the live side under mutation testing. For the unpatched build (the
//! control) and each catalogue bug it boots the kernel, runs the workloads that reach the bug
//! (`cargo xtask run`: record, replay, diff), and prints a matrix: kernel, workload, verdict,
//! anomaly kinds and counts, time to the first anomaly, events, lost. The control must be
//! clean on every workload having compared real lookups; each bug must show its own signature
//! (and, where a racing lookup is what shows it, a symptom) on at least one boot.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tracer_analysis::diff::{ReportDigest, Side};
use tracer_common::Probe;

use super::{build, AnomalyKind, Bug, Expectation, Variant, Window, DELAY_PARAM};
use crate::{cmd, run, vm::KernelChoice};

#[derive(clap::Args)]
pub struct DetectArgs {
    /// A catalogue bug to test (repeatable); default: every one. The control always runs.
    #[arg(long = "bug", value_enum, value_name = "NAME")]
    bugs: Vec<Bug>,
    /// How long each workload's foreground threads run per boot.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Boots per kernel and workload.
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// The race-window delay the patched kernels get (their dcache_bug_delay_us parameter).
    #[arg(long, default_value_t = 20)]
    delay_us: u32,
    /// Where each run's traces and reports go, and detect.json.
    #[arg(long, default_value = "target/detect")]
    out: PathBuf,
}

impl DetectArgs {
    /// Every bug, `runs` boots of `seconds` each, output under `out`.
    pub fn all(seconds: u64, runs: u32, out: PathBuf) -> DetectArgs {
        DetectArgs {
            bugs: Vec::new(),
            seconds,
            runs,
            delay_us: 20,
            out,
        }
    }
}

/// The diff's verdict of one run, or the run's failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Clean,
    Anomalies,
    Inconclusive,
    /// The run did not get as far as a diff (build, boot or recording failed).
    Error,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Anomalies => "anomalies",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Error => "error",
        }
    }
}

/// One boot: a kernel, a workload, what the diff said.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// `unpatched` or the bug's name.
    pub kernel: String,
    pub workload: String,
    pub run: u32,
    pub verdict: Verdict,
    /// Kernel-side anomalies per kind.
    pub anomaly_counts: BTreeMap<AnomalyKind, u64>,
    /// The planted windows the detailed kernel-side anomalies show.
    pub windows: BTreeSet<Window>,
    /// From the first operation to the first kernel-side anomaly.
    pub first_anomaly_ms: Option<f64>,
    pub events: u64,
    pub lost: u64,
    /// `__d_lookup_rcu` events, kernel side and model side: what the diff compared.
    pub lookups: PerSideCount,
    /// A bug's cell: its expectation met. The control's: clean, with lookups compared.
    pub ok: bool,
    pub wall_seconds: f64,
    pub out: PathBuf,
    pub error: Option<String>,
}

/// A count on each side of the diff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PerSideCount {
    pub kernel: u64,
    pub model: u64,
}

/// One kernel's outcome over its cells.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub kernel: String,
    /// None: the control.
    pub expected: Option<Expectation>,
    pub build_seconds: f64,
    pub build_cached: bool,
    /// Cells that met the expectation, of all cells.
    pub ok_runs: u32,
    pub runs: u32,
    /// Control: every cell clean with lookups compared. Bug: at least one cell meeting its
    /// expectation.
    pub pass: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub seconds: u64,
    pub delay_us: u32,
    pub rows: Vec<Row>,
    pub cells: Vec<Cell>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.pass)
    }
}

/// `cargo xtask detect`: exit 0 when the control is clean and every bug is caught, else 1.
pub fn detect(args: DetectArgs) -> Result<i32> {
    let outcome = run_detect(&args)?;
    Ok(if outcome.passed() { 0 } else { 1 })
}

/// Builds, boots and diffs; prints the matrix; writes `<out>/detect.json`.
pub fn run_detect(args: &DetectArgs) -> Result<Outcome> {
    if args.seconds == 0 || args.runs == 0 {
        bail!("--seconds and --runs must be at least 1");
    }
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        cmd::root().join(&args.out)
    };
    let mut bugs = args.bugs.clone();
    if bugs.is_empty() {
        bugs = Bug::ALL.to_vec();
    }
    bugs.sort();
    bugs.dedup();
    let mut control_workloads: Vec<&str> =
        bugs.iter().flat_map(|b| b.workloads()).copied().collect();
    control_workloads.sort();
    control_workloads.dedup();

    // Every kernel first, so a build failure stops detect before any boot.
    let mut kernels = vec![(Variant::Unpatched, build(&Variant::Unpatched)?)];
    for b in &bugs {
        kernels.push((Variant::Bug(*b), build(&Variant::Bug(*b))?));
    }

    let mut rows = Vec::new();
    let mut cells = Vec::new();
    for (variant, built) in &kernels {
        let (workloads, expected, append): (&[&str], Option<Expectation>, Vec<String>) =
            match variant {
                Variant::Bug(b) => (
                    b.workloads(),
                    Some(b.expectation()),
                    vec![format!("{DELAY_PARAM}={}", args.delay_us)],
                ),
                _ => (&control_workloads, None, Vec::new()),
            };
        let label = variant.label();
        let mut row_cells = Vec::new();
        for w in workloads {
            for run in 1..=args.runs {
                let dir = out.join(&label).join(w).join(run.to_string());
                eprintln!("\n=== detect: {label}, {w}, run {run}/{} ===", args.runs);
                let cell = run_cell(args, built, &append, &label, w, run, &dir, &expected);
                row_cells.push(cell);
            }
        }
        let ok_runs = row_cells.iter().filter(|c| c.ok).count() as u32;
        let pass = if expected.is_none() {
            ok_runs as usize == row_cells.len()
        } else {
            ok_runs > 0
        };
        rows.push(Row {
            kernel: label,
            expected,
            build_seconds: built.build_time.as_secs_f64(),
            build_cached: built.cached,
            ok_runs,
            runs: row_cells.len() as u32,
            pass,
        });
        cells.extend(row_cells);
    }
    let outcome = Outcome {
        seconds: args.seconds,
        delay_us: args.delay_us,
        rows,
        cells,
    };
    print_matrix(&outcome);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("detect.json");
    fs::write(&json, serde_json::to_string_pretty(&outcome)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    eprintln!("detect: {} written", json.display());
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
fn run_cell(
    args: &DetectArgs,
    built: &super::Built,
    append: &[String],
    label: &str,
    workload: &str,
    run: u32,
    dir: &Path,
    expected: &Option<Expectation>,
) -> Cell {
    let t0 = Instant::now();
    let mut cell = Cell {
        kernel: label.to_string(),
        workload: workload.to_string(),
        run,
        verdict: Verdict::Error,
        anomaly_counts: BTreeMap::new(),
        windows: BTreeSet::new(),
        first_anomaly_ms: None,
        events: 0,
        lost: 0,
        lookups: PerSideCount::default(),
        ok: false,
        wall_seconds: 0.0,
        out: dir.to_path_buf(),
        error: None,
    };
    let result = (|| -> Result<()> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let toml = timed_workload(workload, args.seconds, dir)?;
        let kernel = KernelChoice::Image {
            bzimage: built.bzimage.clone(),
            modules: Some(built.modules.clone()),
        };
        let code = run::run(run::RunArgs::on_kernel(
            &toml.display().to_string(),
            kernel,
            append.to_vec(),
            dir.to_path_buf(),
        ))?;
        read_report(&dir.join("report.json"), code, &mut cell)
    })();
    if let Err(e) = result {
        eprintln!("detect: {label}, {workload}, run {run}: {e:#}");
        cell.error = Some(format!("{e:#}"));
    }
    cell.wall_seconds = t0.elapsed().as_secs_f64();
    cell.ok = match expected {
        None => control_ok(&cell),
        Some(e) => e.met(&cell.anomaly_counts, &cell.windows),
    };
    cell
}

/// A clean control means something only if the diff compared lookups: the kernel recorded
/// `__d_lookup_rcu` calls and the model replayed them (a probe that attached and saw nothing,
/// or an empty trace, would read clean too).
fn control_ok(cell: &Cell) -> bool {
    cell.verdict == Verdict::Clean
        && cell.events > 0
        && cell.lookups.kernel > 0
        && cell.lookups.model > 0
}

/// The builtin `name` with every foreground thread running for `seconds` instead of its
/// iteration count, written to `<dir>/workload.toml`.
fn timed_workload(name: &str, seconds: u64, dir: &Path) -> Result<PathBuf> {
    let path = cmd::root()
        .join("tracer-analysis/workloads")
        .join(format!("{name}.toml"));
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let threads = table
        .get_mut("thread")
        .and_then(toml::Value::as_array_mut)
        .with_context(|| format!("{} has no [[thread]]", path.display()))?;
    for t in threads.iter_mut().filter_map(toml::Value::as_table_mut) {
        if t.get("background").and_then(toml::Value::as_bool) == Some(true) {
            continue;
        }
        t.remove("iterations");
        t.insert(
            "duration_ms".into(),
            toml::Value::Integer(i64::try_from(seconds.saturating_mul(1000))?),
        );
    }
    let out = dir.join("workload.toml");
    fs::write(&out, toml::to_string(&table)?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Fills the cell from the diff's report.json and exit code (which must say the same: exit 2
/// is also any error of the tracer).
fn read_report(path: &Path, code: i32, cell: &mut Cell) -> Result<()> {
    use tracer_analysis::diff::Verdict as Diff;
    let r = ReportDigest::read(path)?;
    if r.verdict.exit_status() != code {
        bail!(
            "the diff exited {code} but {} says {}",
            path.display(),
            r.verdict.name()
        );
    }
    cell.verdict = match r.verdict {
        Diff::Clean => Verdict::Clean,
        Diff::Anomalies => Verdict::Anomalies,
        Diff::Inconclusive => Verdict::Inconclusive,
    };
    cell.events = r.events.kernel.total;
    cell.lost = r.lost_events.kernel.total;
    let start = r.diagnostics.kernel.operation_time_range.map(|(b, _)| b);
    let first = r
        .anomalies
        .iter()
        .filter(|a| a.side == Side::Kernel)
        .map(|a| a.ts_begin)
        .min();
    if let (Some(s), Some(f)) = (start, first) {
        cell.first_anomaly_ms = Some(f.saturating_sub(s) as f64 / 1e6);
    }
    cell.anomaly_counts = r.anomaly_counts.kernel;
    let lookups = |per_probe: &BTreeMap<String, u64>| {
        per_probe
            .get(Probe::DLookupRcu.symbol())
            .copied()
            .unwrap_or(0)
    };
    cell.lookups = PerSideCount {
        kernel: lookups(&r.events.kernel.per_probe),
        model: lookups(&r.events.model.per_probe),
    };
    cell.windows = windows(path)?;
    Ok(())
}

/// The detailed anomalies' evidence, which the digest does not carry.
#[derive(Deserialize)]
struct Detailed {
    anomalies: Vec<DetailedAnomaly>,
}

#[derive(Deserialize)]
struct DetailedAnomaly {
    side: Side,
    kind: AnomalyKind,
    evidence: serde_json::Map<String, serde_json::Value>,
}

/// The planted windows the report's detailed kernel-side anomalies show (the report details
/// the first `--max-anomalies`; the counts cover all).
fn windows(path: &Path) -> Result<BTreeSet<Window>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let d: Detailed = serde_json::from_str(&text)
        .with_context(|| format!("{}: the detailed anomalies", path.display()))?;
    Ok(d.anomalies
        .iter()
        .filter(|a| a.side == Side::Kernel)
        .flat_map(|a| {
            Window::ALL
                .into_iter()
                .filter(|w| w.shown_by(a.kind, &a.evidence))
        })
        .collect())
}

fn print_matrix(o: &Outcome) {
    println!(
        "\n{:<26} {:<12} {:>3} {:<12} {:<44} {:>8} {:>9} {:>6} {:>3}",
        "kernel",
        "workload",
        "run",
        "verdict",
        "anomalies (kernel side)",
        "first",
        "events",
        "lost",
        "ok"
    );
    for c in &o.cells {
        let kinds = if c.anomaly_counts.is_empty() {
            "-".to_string()
        } else {
            c.anomaly_counts
                .iter()
                .map(|(k, n)| format!("{} {n}", k.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let first = c
            .first_anomaly_ms
            .map_or("-".to_string(), |ms| format!("{:.1}s", ms / 1000.0));
        println!(
            "{:<26} {:<12} {:>3} {:<12} {:<44} {:>8} {:>9} {:>6} {:>3}",
            c.kernel,
            c.workload,
            c.run,
            c.verdict.name(),
            kinds,
            first,
            c.events,
            c.lost,
            if c.ok { "yes" } else { "NO" }
        );
    }
    println!();
    for r in &o.rows {
        let want = match &r.expected {
            None => "clean on every workload, lookups compared".to_string(),
            Some(e) => format!("expected {}", e.describe()),
        };
        println!(
            "{:<26} {}: {}/{} runs as expected ({want}); kernel {}",
            r.kernel,
            if r.pass { "PASS" } else { "FAIL" },
            r.ok_runs,
            r.runs,
            if r.build_cached {
                "from the cache".to_string()
            } else {
                format!("built in {:.0}s", r.build_seconds)
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_fixture;

    #[test]
    fn timed_workload_runs_foreground_threads_for_the_duration() {
        let dir = std::env::temp_dir().join(format!("detect-wl-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let path = timed_workload("prune-stat", 7, &dir).expect("rewrite");
        let t: toml::Table = fs::read_to_string(&path)
            .expect("read")
            .parse()
            .expect("parse");
        let threads = t["thread"].as_array().expect("threads");
        let reader = threads
            .iter()
            .find(|t| t["name"].as_str() == Some("reader"))
            .expect("reader");
        assert_eq!(reader.get("iterations"), None);
        assert_eq!(reader["duration_ms"].as_integer(), Some(7000));
        let pruner = threads
            .iter()
            .find(|t| t["name"].as_str() == Some("pruner"))
            .expect("pruner");
        assert_eq!(
            pruner.get("duration_ms"),
            None,
            "background threads keep their shape"
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    fn cell(verdict: Verdict, events: u64, kernel: u64, model: u64) -> Cell {
        Cell {
            kernel: "unpatched".into(),
            workload: "prune-stat".into(),
            run: 1,
            verdict,
            anomaly_counts: BTreeMap::new(),
            windows: BTreeSet::new(),
            first_anomaly_ms: None,
            events,
            lost: 0,
            lookups: PerSideCount { kernel, model },
            ok: false,
            wall_seconds: 0.0,
            out: PathBuf::new(),
            error: None,
        }
    }

    #[test]
    fn a_clean_control_counts_only_when_lookups_were_compared() {
        assert!(control_ok(&cell(Verdict::Clean, 1000, 600, 590)));
        assert!(
            !control_ok(&cell(Verdict::Clean, 0, 0, 0)),
            "an empty trace"
        );
        assert!(
            !control_ok(&cell(Verdict::Clean, 1000, 0, 590)),
            "the lookup probe saw no call"
        );
        assert!(
            !control_ok(&cell(Verdict::Clean, 1000, 600, 0)),
            "the model replayed no lookup"
        );
        assert!(!control_ok(&cell(Verdict::Inconclusive, 1000, 600, 590)));
    }

    #[test]
    fn report_fields_fill_the_cell() {
        let dir = std::env::temp_dir().join(format!("detect-rep-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let mut report = report_fixture::clean();
        report["verdict"] = "anomalies".into();
        report["exit_status"] = 1.into();
        report["anomaly_counts"]["kernel"] = serde_json::json!({"spurious-enoent": 3});
        report["events"]["kernel"]["total"] = 1000.into();
        report["events"]["kernel"]["per_probe"] = serde_json::json!({"__d_lookup_rcu": 600});
        report["events"]["model"]["per_probe"] = serde_json::json!({"__d_lookup_rcu": 590});
        report["lost_events"]["kernel"]["total"] = 2.into();
        report["diagnostics"]["kernel"]["operation_time_range"] =
            serde_json::json!([1_000_000_000u64, 9_000_000_000u64]);
        let stamp = |side: &str, ts: u64| serde_json::json!({"side": side, "kind": "spurious-enoent", "ts_begin": ts, "evidence": {}});
        let debt = |side: &str| serde_json::json!({"side": side, "kind": "seq-delta", "ts_begin": 4_000_000_000u64, "evidence": {"owed_by": "___d_drop"}});
        report["anomalies"] = serde_json::json!([
            stamp("model", 1_000_000_000),
            stamp("kernel", 3_500_000_000),
            stamp("kernel", 2_500_000_000),
            debt("model")
        ]);
        let path = dir.join("report.json");
        fs::write(&path, report.to_string()).expect("write");
        let mut cell = Cell {
            kernel: "x".into(),
            workload: "w".into(),
            run: 1,
            verdict: Verdict::Error,
            anomaly_counts: BTreeMap::new(),
            windows: BTreeSet::new(),
            first_anomaly_ms: None,
            events: 0,
            lost: 0,
            lookups: PerSideCount::default(),
            ok: false,
            wall_seconds: 0.0,
            out: dir.clone(),
            error: None,
        };
        read_report(&path, 1, &mut cell).expect("read");
        assert_eq!(cell.verdict, Verdict::Anomalies);
        assert_eq!(
            cell.anomaly_counts.get(&AnomalyKind::SpuriousEnoent),
            Some(&3)
        );
        assert_eq!(cell.events, 1000);
        assert_eq!(cell.lost, 2);
        assert_eq!(cell.first_anomaly_ms, Some(1500.0));
        assert_eq!(
            cell.lookups,
            PerSideCount {
                kernel: 600,
                model: 590
            }
        );
        assert!(
            cell.windows.is_empty(),
            "the model's unpaid debt is not the kernel's"
        );
        report["anomalies"][0]["side"] = "kernel".into();
        report["anomalies"][3]["side"] = "kernel".into();
        fs::write(&path, report.to_string()).expect("write");
        read_report(&path, 1, &mut cell).expect("read");
        assert_eq!(
            cell.windows,
            BTreeSet::from([Window::DropDebtUnpaid]),
            "only the seq-delta owed by ___d_drop shows the window"
        );
        let e = read_report(&path, 2, &mut cell).expect_err("exit 2 is not this report's");
        assert!(e.to_string().contains("says anomalies"), "{e}");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
