//! `tracer run-workload`: a workload on its fresh file system with no probes, reported as one
//! JSON object. The untraced baseline of `tracer bench`, and the way to put another tracer
//! (bpftrace, perf) beside the very same workload code: `--hold` says which device to filter on
//! and waits until that tracer is ready.
use std::io::{BufRead, Write};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::runner;

#[derive(clap::Args)]
pub struct RunWorkloadArgs {
    /// A builtin workload (`tracer workloads` lists them) or a TOML file.
    #[arg(long, default_value = "unlink-stat")]
    workload: String,
    /// Multiply the workload's iteration counts (and durations) by this factor.
    #[arg(long, value_parser = super::args::scale)]
    scale: Option<f64>,
    /// Once the file system is ready, print `{"dev": N}` (its `s_dev` as the kernel stores it)
    /// as a line on stdout and start only when a line arrives on stdin (end of input cancels).
    #[arg(long)]
    hold: bool,
}

/// What `tracer run-workload` prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunWorkloadReport {
    pub workload: String,
    /// The file system's device (`super_block.s_dev`).
    pub dev: u32,
    /// From the threads' start to the last one's end.
    pub elapsed_seconds: f64,
    /// Operations performed.
    pub ops: u64,
    /// Operations whose result was an error (an expected ENOENT counts too).
    pub failed_ops: u64,
    /// The median operation's duration (its syscalls, on the probes' clock).
    pub median_op_ns: u64,
    pub interrupted: bool,
}

/// The `--hold` line.
#[derive(Debug, Serialize, Deserialize)]
pub struct HoldLine {
    pub dev: u32,
}

/// The median of operation durations (ns); 0 for none.
pub fn median_duration(durations: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = durations.collect();
    if v.is_empty() {
        return 0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable(mid).1
}

/// Runs the workload; returns the exit code (130/143 after SIGINT/SIGTERM).
pub fn run(args: RunWorkloadArgs) -> Result<i32> {
    let w = super::load_workload(&args.workload, args.scale)?;
    let signals = super::Signals::install()?;
    let stop = &signals.stop;

    let mut prepared = runner::prepare(&w).context("preparing the workload's file system")?;
    let dev = prepared.dev();
    if args.hold {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &HoldLine { dev })?;
        writeln!(out)?;
        out.flush()?;
        let mut line = String::new();
        if std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the start line")?
            == 0
        {
            bail!("stdin closed before the start line; the workload did not run");
        }
    }
    let result = prepared.run(stop);
    let cleanup = prepared.finish();
    let report = result.context("running the workload")?;
    cleanup.context("cleaning up the workload's file system")?;

    let out = RunWorkloadReport {
        workload: w.name.clone(),
        dev,
        elapsed_seconds: report.elapsed.as_secs_f64(),
        ops: report.events.len() as u64,
        failed_ops: report.events.iter().filter(|e| e.result != 0).count() as u64,
        median_op_ns: median_duration(
            report
                .events
                .iter()
                .map(|e| e.ts_end.saturating_sub(e.ts_begin)),
        ),
        interrupted: report.interrupted,
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(signals.exit_code())
}
