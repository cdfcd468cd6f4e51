//! `tracer record`: a workload on the live kernel, with the probes attached.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tracer_analysis::{output, trace::ThreadInfo};

use crate::{
    attach::{AttachMode, GuestPins},
    btf,
    programs::DEFAULT_RING_BYTES,
    record::{self, KernelTypes, RecordOptions, RecordSummary, WorkloadInfo, WorkloadRun},
    runner,
};

#[derive(clap::Args)]
pub struct RecordArgs {
    /// A builtin workload (`tracer workloads` lists them) or a TOML file.
    #[arg(long, default_value = "unlink-stat")]
    workload: String,
    /// Multiply the workload's iteration counts (and durations) by this factor.
    #[arg(long, value_parser = super::args::scale)]
    scale: Option<f64>,
    /// Attach family per target: auto (fentry/fexit where possible, else kprobe/kretprobe).
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    attach: AttachMode,
    /// The trace file to write (mode 0600).
    #[arg(long, default_value = "kernel.trace")]
    out: PathBuf,
    /// Also write the recording's summary as JSON here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Ring buffer size in bytes: a power of two, a multiple of the page size.
    #[arg(long, default_value_t = DEFAULT_RING_BYTES)]
    buffer: u32,
    /// Wake the consumer only when the ring holds this many bytes (it also polls every 10 ms);
    /// 0 wakes it on every event, which costs the traced workload far more.
    #[arg(long, default_value_t = 1 << 20)]
    wakeup_bytes: u64,
    /// Store kernel pointers as they are instead of per-trace ids (they are KASLR secrets).
    #[arg(long)]
    raw_pointers: bool,
    /// BTF of the running kernel.
    #[arg(long, default_value = btf::SYS_BTF)]
    btf: PathBuf,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
    /// kprobe programs read struct fields one by one, as on a kernel whose layout (lock
    /// debugging, real-time) moves them out of the one-copy window; for testing that path.
    #[arg(long)]
    per_field_reads: bool,
    /// Do not detach the programs at the end: leave them attached, pinned under
    /// /sys/fs/bpf/dcache-tracer-PID, so that exiting does not wait for the detach's grace
    /// periods (seconds under TCG). Only for a machine that powers off next (cargo xtask's VM
    /// guest): elsewhere the probes stay until those pins are removed. The trace is the same:
    /// the ring is drained and the counters read first.
    #[arg(long)]
    leave_attached: bool,
    /// Have the kernel time every program run (BPF_ENABLE_STATS) and report runs and
    /// nanoseconds per run of each program in the summary: where the recording's cost goes.
    /// The timing itself costs two clock reads a run.
    #[arg(long)]
    program_stats: bool,
}

/// Runs the recording; returns the exit code (130/143 after SIGINT/SIGTERM).
pub fn run(args: RecordArgs) -> Result<i32> {
    let page = 4096u32;
    if !args.buffer.is_power_of_two() || !args.buffer.is_multiple_of(page) {
        bail!(
            "--buffer {} is not a power of two multiple of the page size; try {}",
            args.buffer,
            DEFAULT_RING_BYTES
        );
    }
    let w = super::load_workload(&args.workload, args.scale)?;
    for out in std::iter::once(&args.out).chain(&args.summary) {
        output::refuse_same_file(out, [Path::new(&args.workload), args.btf.as_path()])?;
    }
    if args.summary.as_ref() == Some(&args.out) {
        bail!("--summary and --out name the same file; give each its own");
    }
    // Checked before the workload's file system is prepared: nothing is written when refused.
    crate::kernel::initial_namespaces()?;
    let pins = args
        .leave_attached
        .then(|| {
            GuestPins::new(PathBuf::from(format!(
                "/sys/fs/bpf/dcache-tracer-{}",
                std::process::id()
            )))
        })
        .transpose()?;
    if args.wakeup_bytes > u64::from(args.buffer) {
        bail!(
            "--wakeup-bytes {} is larger than the ring (--buffer {}); allowed: 0 to {}",
            args.wakeup_bytes,
            args.buffer,
            args.buffer
        );
    }

    // A previous run's summary must not read as this run's, however this one ends.
    if let Some(path) = &args.summary {
        output::remove_stale(path)?;
    }

    let signals = super::Signals::install()?;
    let stop = &signals.stop;

    // The file system is made on the runner thread while BTF is parsed here: neither needs the
    // other, and the object's device filter needs both. On a BTF error the preparation is
    // dropped unwaited, and its runner undoes it.
    let preparing = runner::Preparing::start(&w).context("preparing the workload's file system")?;
    let types = KernelTypes::read(&args.btf)?;
    let mut prepared = preparing
        .wait()
        .context("preparing the workload's file system")?;
    let opts = RecordOptions {
        attach: args.attach,
        out: args.out,
        ring_bytes: args.buffer,
        wakeup_bytes: args.wakeup_bytes,
        raw_pointers: args.raw_pointers,
        progress: !args.quiet,
        per_field_reads: args.per_field_reads,
        leave_attached: pins,
        program_stats: args.program_stats,
    };
    let info = WorkloadInfo {
        name: w.name.clone(),
        toml: w.source().to_string(),
        seed: w.seed,
        scale: args.scale,
    };
    let devs = [prepared.dev()];
    let result = record::record(&opts, types, &info, &devs, stop, |stop| {
        let report = prepared.run(stop)?;
        Ok(WorkloadRun {
            ops: report.events,
            threads: report
                .threads
                .into_iter()
                .map(|t| ThreadInfo {
                    name: t.name,
                    tid: t.tid,
                })
                .collect(),
            elapsed: report.elapsed,
        })
    });
    // Unmount and detach the loop device whatever happened; report both failures.
    let cleanup = prepared.finish();
    let summary = result?;
    cleanup.context("cleaning up the workload's file system")?;

    print_summary(&summary);
    if let Some(path) = &args.summary {
        output::write_atomic(path, &serde_json::to_vec_pretty(&summary)?, 0o644)?;
    }
    Ok(signals.exit_code())
}

fn print_summary(s: &RecordSummary) {
    eprintln!(
        "recorded {} ({}): {} operations in {:.2}s, {:.0} kernel events/s over {:.2}s, end: {}",
        s.trace.display(),
        s.kernel_release,
        s.ops,
        s.workload_seconds,
        s.kernel_events_per_second,
        s.seconds,
        s.end
    );
    eprintln!(
        "  {:<22} {:<42} {:>10} {:>10} {:>8}",
        "target", "attach", "hits", "events", "lost"
    );
    for (sym, mode) in &s.attach {
        let n = |m: &std::collections::BTreeMap<String, u64>| m.get(sym).copied().unwrap_or(0);
        // By characters: `String::truncate` panics inside a multi-byte one.
        let mode: String = mode.to_string().chars().take(42).collect();
        eprintln!(
            "  {:<22} {:<42} {:>10} {:>10} {:>8}",
            sym,
            mode,
            n(&s.hits),
            n(&s.events),
            n(&s.drops)
        );
    }
    let skips: u64 = s.kernel_skips.values().sum();
    if s.lost > skips {
        eprintln!(
            "  INCOMPLETE: {} events lost; a larger --buffer may help",
            s.lost - skips
        );
    }
    if skips > 0 {
        eprintln!(
            "  INCOMPLETE: {skips} calls the kernel skipped a program for (a kprobe or \
             kretprobe missed, a recursion guard): `tracer diff` names them and what avoids \
             them; a larger --buffer does not"
        );
    }
}
