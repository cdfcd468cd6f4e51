//! `tracer verify`: every program of the object through the running kernel's verifier.
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use tracer_common::{Config, Probe};

use crate::{
    btf::KernelBtf,
    programs::{self, Body, Family, Half, LoadFailure},
};

/// What the kernel said to one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyStatus {
    Loaded,
    /// The kernel denied the program type (lockdown, no tracing programs).
    Refused,
    /// The verifier or another load step rejected it.
    Rejected,
    /// The function has no BTF FUNC in this kernel, so fentry/fexit cannot target it: not built
    /// in, or inlined everywhere.
    NoBtf,
}

impl VerifyStatus {
    /// Why, in a few words, for the table.
    pub fn explain(self) -> Option<&'static str> {
        match self {
            VerifyStatus::Loaded | VerifyStatus::Rejected => None,
            VerifyStatus::Refused => Some("the kernel denies this program type here"),
            VerifyStatus::NoBtf => Some("no BTF FUNC: not traceable by fentry here"),
        }
    }
}

impl std::fmt::Display for VerifyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyStatus::Loaded => "loaded",
            VerifyStatus::Refused => "refused",
            VerifyStatus::Rejected => "rejected",
            VerifyStatus::NoBtf => "no-btf",
        })
    }
}

/// Outcome for one program.
#[derive(Debug, Serialize)]
pub struct ProgramCheck {
    pub program: String,
    pub target: &'static str,
    pub family: Family,
    pub status: VerifyStatus,
    pub errno: Option<i32>,
    pub detail: Option<String>,
}

/// Loads every program of every kernel probe in both families and reports each outcome.
pub fn verify_all(btf_path: &Path) -> anyhow::Result<Vec<ProgramCheck>> {
    verify_all_reads(btf_path, false)
}

/// [`verify_all`], with the kprobe programs reading field by field when `per_field_reads` (the
/// `CONFIG` global is frozen, so the verifier only sees the read path the configuration takes).
pub fn verify_all_reads(
    btf_path: &Path,
    per_field_reads: bool,
) -> anyhow::Result<Vec<ProgramCheck>> {
    let (kbtf, btf) = KernelBtf::parse_both(btf_path)?;
    let mut config = Config::ZERO;
    config.offsets = kbtf
        .offsets()
        .context("resolving struct offsets from BTF")?;
    config.fast_reads = u32::from(config.offsets.check_windows().is_ok() && !per_field_reads);
    // A small ring: verification does not need the recording size.
    let mut ebpf = programs::open_with(&config, 1 << 16, &btf, btf_path)
        .context("parsing the embedded eBPF object")?;
    let mut out = Vec::new();
    for probe in Probe::KERNEL.into_iter().filter(|p| p.is_attach_target()) {
        for family in [Family::Fentry, Family::Kprobe] {
            let has_btf = kbtf.func_args(probe.symbol()).is_some();
            for half in [Half::Entry, Half::Exit] {
                let program = programs::program_name(probe, family, half);
                let mut check = ProgramCheck {
                    program,
                    target: probe.symbol(),
                    family,
                    status: VerifyStatus::Loaded,
                    errno: None,
                    detail: None,
                };
                if family == Family::Fentry && !has_btf {
                    check.status = VerifyStatus::NoBtf;
                    out.push(check);
                    continue;
                }
                if let Err(e) = programs::load(&mut ebpf, probe, family, half, Body::Record, &btf) {
                    check.errno = e.errno();
                    check.status = if programs::is_permission_refusal(e.errno()) {
                        VerifyStatus::Refused
                    } else {
                        VerifyStatus::Rejected
                    };
                    check.detail = Some(failure_text(&e));
                }
                out.push(check);
            }
        }
    }
    Ok(out)
}

fn failure_text(e: &LoadFailure) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
