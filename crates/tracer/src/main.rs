use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracer::{btf, verify};

mod commands;

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
    /// Run a workload with the probes attached and write its trace.
    Record(commands::record::RecordArgs),
    /// List the builtin workloads, one line each, or print one as TOML.
    Workloads {
        /// Print this workload's TOML (a builtin name, or a file path: validated first).
        #[arg(long, value_name = "NAME")]
        show: Option<String>,
    },
}

fn main() {
    let code = match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tracer: error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        Cmd::Record(args) => commands::record::run(args),
        Cmd::Verify { btf, json } => {
            let checks = verify::verify_all(&btf)?;
            if json {
                for c in &checks {
                    println!("{}", serde_json::to_string(c)?);
                }
            } else {
                println!("{:<26} {:<22} {:<8} status", "program", "target", "family");
                for c in &checks {
                    let detail = match (&c.status, &c.detail) {
                        (&"rejected", Some(d)) => format!(" ({d})"),
                        (&"refused", _) => " (the kernel denies this program type here)".into(),
                        (&"no-btf", _) => " (no BTF FUNC: not traceable by fentry here)".into(),
                        _ => String::new(),
                    };
                    println!(
                        "{:<26} {:<22} {:<8} {}{}",
                        c.program, c.target, c.family, c.status, detail
                    );
                }
            }
            Ok(if checks.iter().any(|c| c.status == "rejected") {
                1
            } else {
                0
            })
        }
        Cmd::Workloads { show: None } => {
            print!("{}", tracer::workload::listing()?);
            Ok(0)
        }
        Cmd::Workloads { show: Some(name) } => {
            print!("{}", tracer::workload::Workload::load(&name)?.source());
            Ok(0)
        }
        Cmd::Offsets { btf } => {
            let k = btf::KernelBtf::from_file(&btf)?;
            let o = k.offsets().context("resolving offsets")?;
            println!("{o:#?}");
            Ok(0)
        }
    }
}
