//! The command line's subcommands that need more than a few lines: argument structs and
//! handlers. Library logic stays in the crate's modules; these only parse, orchestrate and
//! print.
pub mod args;
pub mod bench;
#[cfg(feature = "check")]
pub mod check;
pub mod export;
pub mod model;
pub mod record;
pub mod run_workload;

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use anyhow::{Context, Result};
use tracer_analysis::workload::Workload;

/// A builtin workload or a TOML file, scaled by `--scale`.
pub fn load_workload(name: &str, scale: Option<f64>) -> Result<Workload> {
    let mut w = Workload::load(name).with_context(|| {
        format!("loading workload `{name}` (`tracer workloads` lists the builtins)")
    })?;
    if let Some(f) = scale {
        w.scale(f).context("--scale")?;
    }
    Ok(w)
}

/// SIGINT and SIGTERM set `stop`, so a workload ends cleanly; the exit code says which came.
pub struct Signals {
    pub stop: Arc<AtomicBool>,
    sigint: Arc<AtomicBool>,
    sigterm: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        let s = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            sigint: Arc::new(AtomicBool::new(false)),
            sigterm: Arc::new(AtomicBool::new(false)),
        };
        for (sig, flag) in [
            (signal_hook::consts::SIGINT, &s.sigint),
            (signal_hook::consts::SIGTERM, &s.sigterm),
        ] {
            signal_hook::flag::register(sig, Arc::clone(flag))
                .context("installing signal handler")?;
            signal_hook::flag::register(sig, Arc::clone(&s.stop))
                .context("installing signal handler")?;
        }
        Ok(s)
    }

    /// 130 after SIGINT, 143 after SIGTERM, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.sigint.load(Ordering::Relaxed) {
            130
        } else if self.sigterm.load(Ordering::Relaxed) {
            143
        } else {
            0
        }
    }
}
