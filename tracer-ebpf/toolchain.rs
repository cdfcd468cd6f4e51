//! Which compiler builds this crate: the one place that decides it. Compiled into
//! `tracer/build.rs` and into xtask (`#[path]`), std only, so both always agree.
//!
//! rustup's nightly pinned in `rust-toolchain.toml` (with rust-src) when present, else Debian's
//! rustc-web with rust-web-src, whose nightly features are unlocked by `RUSTC_BOOTSTRAP=1`.
//! `TRACER_EBPF_TOOLCHAIN=nightly|debian` forces one.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The compiler that builds the eBPF crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EbpfToolchain {
    /// rustup's pinned nightly with its rust-src component.
    Nightly,
    /// Debian's rustc-web with rust-web-src, unlocked by RUSTC_BOOTSTRAP=1.
    Debian,
}

/// Debian's packages of the fallback compiler.
pub const DEBIAN_RUST: &[&str] = &["rustc-web", "rust-web-src", "cargo-web", "rust-web-clippy"];

/// The pinned nightly's channel, read from the toolchain file beside this one.
pub fn pinned_nightly() -> &'static str {
    include_str!("rust-toolchain.toml")
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .map(|c| c.trim_matches('"'))
        .unwrap_or("nightly")
}

impl EbpfToolchain {
    /// What is on this machine now, or what `TRACER_EBPF_TOOLCHAIN` forces; `None` when neither
    /// compiler is usable.
    pub fn detect() -> Option<EbpfToolchain> {
        match std::env::var("TRACER_EBPF_TOOLCHAIN").as_deref() {
            Ok("nightly") => return Some(EbpfToolchain::Nightly),
            Ok("debian") => return Some(EbpfToolchain::Debian),
            _ => {}
        }
        if nightly_has_rust_src() {
            Some(EbpfToolchain::Nightly)
        } else if debian_rust_present() {
            Some(EbpfToolchain::Debian)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EbpfToolchain::Nightly => "nightly",
            EbpfToolchain::Debian => "debian",
        }
    }

    /// `cargo` for the eBPF crate in `dir`, with none of an outer cargo's environment (clippy's
    /// wrapper, host rustflags, the stable toolchain's RUSTC) leaking into it.
    pub fn cargo(self, dir: &Path) -> Command {
        let mut c = match self {
            EbpfToolchain::Nightly => {
                let mut c = Command::new("rustup");
                c.args(["run", pinned_nightly(), "cargo"]);
                c
            }
            EbpfToolchain::Debian => {
                let mut c = Command::new("/usr/bin/cargo");
                // Debian's clippy-driver and rustc first on PATH.
                let path = std::env::var_os("PATH").unwrap_or_default();
                let mut dirs = vec![PathBuf::from("/usr/bin")];
                dirs.extend(std::env::split_paths(&path));
                if let Ok(p) = std::env::join_paths(dirs) {
                    c.env("PATH", p);
                }
                c
            }
        };
        for var in [
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTUP_TOOLCHAIN",
            "CARGO",
            "CARGO_MAKEFLAGS",
            "MAKEFLAGS",
            "MFLAGS",
        ] {
            c.env_remove(var);
        }
        if self == EbpfToolchain::Debian {
            c.env("RUSTC", "/usr/bin/rustc").env("RUSTC_BOOTSTRAP", "1");
        }
        c.current_dir(dir);
        c
    }
}

/// Where [`EbpfToolchain::build_object`] leaves the object, under its target directory.
pub const OBJECT_IN_TARGET: &str = "bpfel-unknown-none/release/tracer-ebpf";

impl EbpfToolchain {
    /// Builds the eBPF crate in `ebpf_dir` into `target_dir`; returns the object's path, or why
    /// it failed.
    pub fn build_object(self, ebpf_dir: &Path, target_dir: &Path) -> Result<PathBuf, String> {
        let status = self
            .cargo(ebpf_dir)
            .args(["build", "--release", "--locked", "--target-dir"])
            .arg(target_dir)
            .status()
            .map_err(|e| format!("cannot run cargo for the eBPF crate ({e})"))?;
        if !status.success() {
            return Err(format!("building the eBPF crate failed ({status})"));
        }
        let obj = target_dir.join(OBJECT_IN_TARGET);
        if obj.exists() {
            Ok(obj)
        } else {
            Err(format!("the eBPF object is missing at {}", obj.display()))
        }
    }
}

/// bpf-linker, the eBPF crate's linker, on PATH.
pub fn bpf_linker() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}

/// The pinned nightly is installed and has rust-src.
pub fn nightly_has_rust_src() -> bool {
    let Ok(out) = Command::new("rustup")
        .args(["run", pinned_nightly(), "rustc", "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
    else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success()
        && Path::new(&sysroot)
            .join("lib/rustlib/src/rust/library/core")
            .exists()
}

/// Debian's Rust with its library source, the fallback compiler.
pub fn debian_rust_present() -> bool {
    Path::new("/usr/bin/rustc").exists()
        && Path::new("/usr/lib/rustlib/src/rust/library/core").exists()
}
