//! `cargo xtask build`: the release binaries (the tracer embeds the eBPF object through its
//! build script) and, for the VM, a statically linked tracer.
use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::{cmd, setup};

/// Host triple for the static build (glibc, +crt-static: no shared libraries in the initramfs).
const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

pub fn build(static_tracer: bool) -> Result<()> {
    setup::setup()?;
    release_binaries()?;
    if static_tracer {
        let p = static_tracer_binary()?;
        eprintln!("build: static tracer at {}", p.display());
    }
    Ok(())
}

/// `cargo build --release` of the tracer; returns its path.
pub fn release_binaries() -> Result<PathBuf> {
    cmd::run(Command::new(cargo()).current_dir(cmd::root()).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "tracer",
    ]))
    .context("building the tracer")?;
    Ok(cmd::root().join("target/release/tracer"))
}

/// A tracer linked statically against glibc, for the initramfs. It has its own target
/// directory so its RUSTFLAGS do not invalidate the normal build.
pub fn static_tracer_binary() -> Result<PathBuf> {
    let target_dir = cmd::root().join("target/static");
    cmd::run(
        Command::new(cargo())
            .current_dir(cmd::root())
            .args(["build", "--release", "--locked", "-p", "tracer", "--target"])
            .arg(HOST_TRIPLE)
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )
    .context("building the static tracer")?;
    Ok(target_dir.join(HOST_TRIPLE).join("release/tracer"))
}

/// The cargo that runs us (stable), so nested builds use the same toolchain.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
