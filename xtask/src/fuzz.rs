//! Fuzzing with cargo-fuzz (libFuzzer): the trace reader (on the bytes as given, and with their
//! checksums recomputed), the workload parser and the diff of two traces, each a target of the
//! `fuzz/` crate. `cargo xtask fuzz` runs them for as long as
//! asked; the test step runs each for [`STEP_SECONDS`]. Any crash, panic, timeout or
//! out-of-memory fails; libFuzzer leaves the input that did it in `fuzz/artifacts/<target>/`.
//!
//! Built without a sanitizer (the fuzzed code is safe Rust) and with debug assertions, so an
//! arithmetic overflow is a crash too. cargo-fuzz needs nightly: the eBPF crate's pinned one.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::{cmd, setup::toolchain};

/// The fuzz targets (binaries of `fuzz/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Any bytes as a trace file.
    TraceReader,
    /// Any bytes as a trace file, its checksums recomputed: past the CRC-32, into the records.
    TraceChecksummed,
    /// Any text as a workload file.
    WorkloadParser,
    /// Two traces of fuzzed events, diffed.
    DiffTraces,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::TraceReader,
        Target::TraceChecksummed,
        Target::WorkloadParser,
        Target::DiffTraces,
    ];

    fn bin(self) -> &'static str {
        match self {
            Target::TraceReader => "trace_reader",
            Target::TraceChecksummed => "trace_checksummed",
            Target::WorkloadParser => "workload_parser",
            Target::DiffTraces => "diff_traces",
        }
    }

    /// The committed seeds, `fuzz/seeds/<this>`: both trace targets read trace files.
    fn seeds(self) -> &'static str {
        match self {
            Target::TraceChecksummed => Target::TraceReader.bin(),
            Target::TraceReader | Target::WorkloadParser | Target::DiffTraces => self.bin(),
        }
    }

    /// Seed directories besides the committed ones.
    fn extra_seeds(self, root: &Path) -> Vec<PathBuf> {
        match self {
            Target::WorkloadParser => vec![
                root.join("tracer-analysis/workloads"),
                root.join("xtask/workloads"),
            ],
            Target::TraceReader | Target::TraceChecksummed | Target::DiffTraces => Vec::new(),
        }
    }

    /// Largest input libFuzzer makes: a few chunks of events, a long workload file.
    fn max_len(self) -> usize {
        match self {
            Target::TraceReader | Target::TraceChecksummed | Target::DiffTraces => 64 << 10,
            Target::WorkloadParser => 8 << 10,
        }
    }
}

/// Each target's time in `cargo xtask test`.
pub const STEP_SECONDS: u64 = 60;

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Targets to run (repeatable); default: all four.
    #[arg(long = "target", value_enum)]
    targets: Vec<Target>,
    /// Seconds per target.
    #[arg(long, default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=7 * 86_400))]
    seconds: u64,
}

/// `cargo xtask fuzz`.
pub fn fuzz(args: FuzzArgs) -> Result<i32> {
    let targets = if args.targets.is_empty() {
        Target::ALL.to_vec()
    } else {
        args.targets
    };
    let (_, failed) = run(&targets, Duration::from_secs(args.seconds))?;
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// Builds the targets and runs each for `time`; the targets that passed, a line per failure.
pub fn run(targets: &[Target], time: Duration) -> Result<(u64, Vec<String>)> {
    let root = cmd::root();
    let dir = root.join("fuzz");
    let nightly = toolchain::pinned_nightly();
    if !cmd::succeeds(Command::new("cargo-fuzz").arg("--version")) {
        bail!("cargo-fuzz is missing; `cargo xtask setup` installs it (cargo install cargo-fuzz)");
    }
    let cargo_fuzz = || {
        let mut c = Command::new("rustup");
        c.args(["run", nightly, "cargo", "fuzz"]).current_dir(&dir);
        c
    };
    cmd::run(cargo_fuzz().args(["build", "--sanitizer", "none", "--debug-assertions"]))
        .with_context(|| {
            format!("building the fuzz targets with {nightly} (rustup toolchain install {nightly})")
        })?;
    let scratch = root.join("target/fuzz-scratch");
    let (mut passed, mut failed) = (0, Vec::new());
    for &t in targets {
        let corpus = root.join("target/fuzz-corpus").join(t.bin());
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let mut c = cargo_fuzz();
        c.args(["run", "--sanitizer", "none", "--debug-assertions", t.bin()])
            .arg(&corpus)
            .arg(dir.join("seeds").join(t.seeds()))
            .args(t.extra_seeds(&root))
            .arg("--")
            .arg(format!("-max_total_time={}", time.as_secs()))
            .arg(format!("-max_len={}", t.max_len()))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            // The targets write their scratch files under TMPDIR; removed below.
            .env("TMPDIR", &scratch);
        eprintln!("fuzz: {} for {} s", t.bin(), time.as_secs());
        let status = c
            .status()
            .with_context(|| format!("cannot start `{}`", cmd::show(&c)))?;
        let _ = std::fs::remove_dir_all(&scratch);
        if status.success() {
            passed += 1;
            eprintln!("fuzz: {}: no crash", t.bin());
        } else {
            let line = format!(
                "fuzz: {}: FAILED ({status}); the input is in {}",
                t.bin(),
                dir.join("artifacts").join(t.bin()).display()
            );
            eprintln!("{line}");
            failed.push(line);
        }
    }
    Ok((passed, failed))
}
