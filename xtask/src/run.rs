//! `cargo xtask run`: the main job.
use std::process::Command;

use anyhow::Result;

use crate::{builder, cmd, setup};

#[derive(clap::Args)]
pub struct RunArgs {}

pub fn run(_args: RunArgs) -> Result<i32> {
    setup::setup()?;
    let tracer = builder::release_binaries()?;
    // Until the recorder lands: every probe program through this kernel's verifier.
    let status = Command::new(&tracer).arg("verify").status()?;
    if !status.success() {
        eprintln!(
            "run: `{}` reported rejected programs",
            cmd::show(Command::new(&tracer).arg("verify"))
        );
    }
    Ok(status.code().unwrap_or(2))
}
