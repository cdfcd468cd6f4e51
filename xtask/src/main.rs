//! `cargo xtask`: everything around the crates — toolchain setup, builds, the VM harness, the
//! test suite and the main run. See README.md for each subcommand.
mod bench;
mod builder;
mod cmd;
mod e2e;
mod evidence;
mod fuzz;
mod kernel_build;
mod matrix;
#[cfg(test)]
mod report_fixture;
mod run;
mod setup;
mod signals;
mod test;
mod vm;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Project automation for the dcache race tracer")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install or check everything the project needs (eBPF toolchain, bpf-linker, QEMU, ...).
    Setup,
    /// Build the eBPF object and the userspace binaries (release).
    Build {
        /// Also build the static tracer binary that goes into the VM's initramfs.
        #[arg(long)]
        static_tracer: bool,
    },
    /// Rebuild the committed eBPF object (tracer-ebpf/committed/) from source, for machines
    /// without the eBPF toolchain; `cargo xtask test` fails until it matches the sources.
    EbpfObject,
    /// Run every check: fmt, clippy, unit tests, the verifier test, and the live-kernel tests.
    Test(test::TestArgs),
    /// The main job: record a workload on a live kernel, replay it in the model, diff the two.
    Run(run::RunArgs),
    /// Measure what recording costs the workload in one VM boot: untraced, fentry/fexit,
    /// kprobe/kretprobe and bpftrace, interleaved rounds; JSON in target/bench/record-cost.json.
    Bench(bench::BenchArgs),
    /// Record every kernel × workload pair in its own guest, replay and diff each; a table,
    /// summary.json and JUnit XML. Exit: the worst verdict.
    Matrix(matrix::MatrixArgs),
    /// Build kernels from Debian's linux-source-6.1 with the project's config, unpatched or
    /// with a catalogue bug (kernel-bugs/) or your own patch.
    Kernel(kernel_build::KernelArgs),
    /// Catch every catalogue bug live: boot each patched kernel and the unpatched control, run
    /// the workloads that reach the bug, diff, print the matrix (JSON in target/detect).
    Detect(kernel_build::detect::DetectArgs),
    /// Fuzz the trace reader, the workload parser and the diff (cargo-fuzz, the pinned
    /// nightly); fails on any crash.
    Fuzz(fuzz::FuzzArgs),
    /// Boot a kernel with BTF and kprobes under QEMU and run the tracer inside:
    /// `cargo xtask vm [OPTIONS] -- <tracer arguments>`.
    Vm(vm::VmArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<i32> = match cli.cmd {
        Cmd::Setup => setup::setup().map(|_| 0),
        Cmd::Build { static_tracer } => builder::build(static_tracer).map(|_| 0),
        Cmd::EbpfObject => builder::refresh_ebpf_object(),
        Cmd::Test(args) => test::test(args),
        Cmd::Run(args) => run::run(args),
        Cmd::Vm(args) => vm::vm(args),
        Cmd::Matrix(args) => matrix::matrix(args),
        Cmd::Bench(args) => bench::bench(args),
        Cmd::Kernel(args) => kernel_build::kernel(args),
        Cmd::Detect(args) => kernel_build::detect::detect(args),
        Cmd::Fuzz(args) => fuzz::fuzz(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::exit(2);
        }
    }
}
