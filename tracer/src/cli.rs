//! The command line: argument parsing and dispatch to the subcommands' handlers. It is in the
//! library, not the binary, so that its code (and the generic code it instantiates) compiles
//! beside tracer-analysis instead of after it: a binary waits for its dependencies' full
//! builds, a library only for their metadata.
use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tracer_analysis::{diff, output};

use crate::{btf, commands, verify};

/// Records the Linux dcache lookup protocol with eBPF, replays it in a model, diffs the two.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load every probe program through the running kernel's verifier and report each outcome.
    Verify {
        /// BTF of the kernel to resolve offsets and targets against.
        #[arg(long, default_value = btf::SYS_BTF)]
        btf: PathBuf,
        /// Print one JSON object per program instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the struct offsets the probes would use, resolved from BTF.
    Offsets {
        #[arg(long, default_value = btf::SYS_BTF)]
        btf: PathBuf,
    },
    /// Diff a kernel trace against a model trace: classify every NULL-inode lookup return and
    /// ENOENT, check the writer-side d_seq invariants. Exit 0 clean (complete traces, nothing
    /// lost, every d_seq move explained, no anomaly), 1 anomalies, 2 inconclusive (the reasons
    /// are listed) or an input refused.
    Diff(DiffArgs),
    /// Run a workload with the probes attached and write its trace.
    Record(commands::record::RecordArgs),
    /// Run a workload on the model (userspace-dcache) and write its trace.
    Replay(commands::model::ReplayArgs),
    /// Run a workload shape on the model's real threads and count invariant violations.
    Stress(commands::model::StressArgs),
    /// Model-check the lookup protocol: every interleaving (up to a preemption bound, loom) of
    /// a lookup against the kill path, d_delete or the kill of an unhashed dentry, per profile
    /// and mutant. No arguments: the whole table. Exit 0 holds (or a table), 1 fails.
    #[cfg(feature = "check")]
    Check(commands::check::CheckArgs),
    /// The model checker is not in this build (built without the `check` feature, as `cargo
    /// xtask run` builds it); `cargo build --release -p tracer` builds a tracer that has it.
    #[cfg(not(feature = "check"))]
    #[command(disable_help_flag = true)]
    Check {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Run a workload with no probes and print its elapsed time and op counts as JSON.
    RunWorkload(commands::run_workload::RunWorkloadArgs),
    /// Measure what recording costs a fixed workload: untraced, fentry, kprobe and bpftrace,
    /// in interleaved rounds, with events delivered and lost.
    Bench(commands::bench::BenchArgs),
    /// Write a trace's events for other tools (JSON Lines: one object per event).
    Export(commands::export::ExportArgs),
    /// Print a trace's header and footer, and whether it is intact.
    Info(commands::export::InfoArgs),
    /// List the builtin workloads, one line each, or print one as TOML.
    Workloads {
        /// Print this workload's TOML (a builtin name, or a file path: validated first).
        #[arg(long, value_name = "NAME", conflicts_with = "modules")]
        show: Option<String>,
        /// Print the kernel modules this workload's file system needs, comma-separated.
        #[arg(long, value_name = "NAME")]
        modules: Option<String>,
    },
}

/// Parses the process's arguments and runs the command; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Each cause once, outermost first, joined by ": ".
            eprintln!("tracer: error: {e:#}");
            2
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Cmd::Diff(args) => run_diff(args),
        Cmd::Record(args) => commands::record::run(args),
        Cmd::RunWorkload(args) => commands::run_workload::run(args),
        Cmd::Bench(args) => commands::bench::run(args),
        Cmd::Export(args) => commands::export::export(args),
        Cmd::Replay(args) => commands::model::replay(args),
        Cmd::Stress(args) => commands::model::stress_cmd(args),
        #[cfg(feature = "check")]
        Cmd::Check(args) => commands::check::run(args),
        #[cfg(not(feature = "check"))]
        Cmd::Check { .. } => bail!(
            "this tracer was built without the `check` feature (the loom model checker); \
             `cargo build --release -p tracer` builds one with it (target/release/tracer)"
        ),
        Cmd::Info(args) => commands::export::info(args),
        Cmd::Verify { btf, json } => {
            let checks = verify::verify_all(&btf)?;
            if json {
                for c in &checks {
                    println!("{}", serde_json::to_string(c)?);
                }
            } else {
                println!("{:<26} {:<22} {:<8} status", "program", "target", "family");
                for c in &checks {
                    let detail = match (c.status, &c.detail, c.status.explain()) {
                        (verify::VerifyStatus::Rejected, Some(d), _) => format!(" ({d})"),
                        (_, _, Some(why)) => format!(" ({why})"),
                        _ => String::new(),
                    };
                    println!(
                        "{:<26} {:<22} {:<8} {}{}",
                        c.program, c.target, c.family, c.status, detail
                    );
                }
            }
            Ok(
                if checks
                    .iter()
                    .any(|c| c.status == verify::VerifyStatus::Rejected)
                {
                    1
                } else {
                    0
                },
            )
        }
        Cmd::Workloads {
            show: Some(name), ..
        } => {
            print!(
                "{}",
                tracer_analysis::workload::Workload::load(&name)?.source()
            );
            Ok(0)
        }
        Cmd::Workloads {
            modules: Some(name),
            ..
        } => {
            let w = tracer_analysis::workload::Workload::load(&name)?;
            println!("{}", w.filesystem.kernel_modules().join(","));
            Ok(0)
        }
        Cmd::Workloads { .. } => {
            print!("{}", tracer_analysis::workload::listing()?);
            Ok(0)
        }
        Cmd::Offsets { btf } => {
            let k = btf::KernelBtf::from_file(&btf)?;
            let o = k.offsets().context("resolving offsets")?;
            println!("{o:#?}");
            match o.check_windows() {
                Ok(()) => println!("kprobe reads: one copy per dentry head and qstr"),
                Err((field, off)) => println!(
                    "kprobe reads: one per field (`{field}` at {off} lies outside the one-copy window)"
                ),
            }
            Ok(0)
        }
    }
}

/// Arguments of `tracer diff`.
#[derive(clap::Args)]
struct DiffArgs {
    /// Trace recorded from the kernel (`tracer record`).
    kernel: PathBuf,
    /// Trace of the same workload in the model (`tracer replay`).
    model: PathBuf,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Chrome/Perfetto trace-event timeline to this file (ui.perfetto.dev opens it).
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    /// Events shown before and after each anomaly (0 to 1000).
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = parse_context)]
    context: usize,
    /// How late (ms) an event may arrive behind the newest one and still be put in time order
    /// (0 to 3600000).
    #[arg(long, default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    window_ms: u64,
    /// Anomalies detailed with evidence and context; all are counted.
    #[arg(long, default_value_t = 100, value_name = "N")]
    max_anomalies: usize,
}

/// `--context`: each anomaly keeps this many events on each side in memory.
fn parse_context(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= 1000 => Ok(n),
        Ok(_) => Err("allowed: 0 to 1000".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn run_diff(args: DiffArgs) -> anyhow::Result<i32> {
    let outputs: Vec<&PathBuf> = args.json.iter().chain(&args.timeline).collect();
    for out in &outputs {
        output::refuse_same_file(out, [args.kernel.as_path(), args.model.as_path()])?;
    }
    if let [a, b] = outputs[..] {
        if a == b {
            bail!(
                "--json and --timeline name the same file {}; give each its own",
                a.display()
            );
        }
    }
    let opts = diff::DiffOptions {
        context: args.context,
        window_ns: args.window_ms.saturating_mul(1_000_000),
        max_anomalies: args.max_anomalies,
        timeline: args.timeline.clone(),
        ..diff::DiffOptions::default()
    };
    let report = match diff::diff_files(&args.kernel, &args.model, &opts) {
        Ok(r) => r,
        Err(e) => {
            // A previous run's reports must not read as this run's.
            for out in &outputs {
                output::remove_stale(out)?;
            }
            return Err(e.into());
        }
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).context("encoding the JSON report")?;
        output::write_atomic(path, &json, 0o644)?;
    }
    let mut out = std::io::stdout().lock();
    report.write_summary(&mut out)?;
    report.write_details(&mut out)?;
    if !report.anomalies.is_empty() {
        // The details can be long: repeat the verdict where the reader ends up.
        writeln!(out, "\n{}", report.verdict_line())?;
    }
    Ok(report.exit_status)
}
