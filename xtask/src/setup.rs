//! `cargo xtask setup`: makes the eBPF toolchain, bpf-linker and the live-kernel packages
//! present. Idempotent: with everything installed it only checks (a few seconds).
use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{bail, Context, Result};

use crate::cmd::{self, on_path, succeeds};

/// Debian packages the project needs at run time (the VM path) and to build bpf-linker.
const APT_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "e2fsprogs",
    "llvm-22-dev",
    // Carried into the VM by `cargo xtask bench`, the comparison for the recording cost.
    "bpftrace",
];
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Which compiler builds the eBPF crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EbpfToolchain {
    /// rustup's nightly with its rust-src component.
    Nightly,
    /// Debian's rustc-web with rust-web-src, unlocked by RUSTC_BOOTSTRAP=1.
    Debian,
}

/// What setup found or installed.
pub struct Setup {
    pub toolchain: EbpfToolchain,
}

pub fn setup() -> Result<Setup> {
    let t0 = Instant::now();
    put_cargo_bin_on_path();
    let root = is_root();
    let debian = std::path::Path::new("/etc/debian_version").exists();
    let can_install = root && debian;

    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !apt_installed(p))
        .collect();
    if !missing.is_empty() {
        if !can_install {
            bail!(
                "missing Debian packages: {}. Run as root: apt-get update && \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
                missing.join(" "),
                missing.join(" ")
            );
        }
        apt_install(&missing)?;
    }

    let toolchain = ebpf_toolchain(can_install)?;

    if !succeeds(Command::new("bpf-linker").arg("--version")) {
        eprintln!(
            "setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes, once)"
        );
        cmd::run(
            Command::new("cargo")
                .args([
                    "install",
                    "bpf-linker",
                    "--version",
                    BPF_LINKER_VERSION,
                    "--locked",
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                ])
                .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
        )
        .context(
            "installing bpf-linker; it needs Debian's llvm-22-dev \
             (LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --no-default-features --features llvm-22)",
        )?;
    }
    let linker = cmd::output(Command::new("bpf-linker").arg("--version"))?;

    eprintln!(
        "setup: eBPF compiler: {}; {}; packages: {} ({:.1}s)",
        match toolchain {
            EbpfToolchain::Nightly => "rustup nightly + rust-src",
            EbpfToolchain::Debian =>
                "Debian rustc-web + rust-web-src + cargo-web (RUSTC_BOOTSTRAP=1)",
        },
        linker.trim(),
        APT_PACKAGES.join(" "),
        t0.elapsed().as_secs_f64()
    );
    // build.rs of the tracer crate reads this to pick the same compiler.
    std::env::set_var(
        "TRACER_EBPF_TOOLCHAIN",
        match toolchain {
            EbpfToolchain::Nightly => "nightly",
            EbpfToolchain::Debian => "debian",
        },
    );
    Ok(Setup { toolchain })
}

/// rustup's nightly when it has (or can get) rust-src, else Debian's rustc-web.
fn ebpf_toolchain(can_install: bool) -> Result<EbpfToolchain> {
    if nightly_has_rust_src() {
        return Ok(EbpfToolchain::Nightly);
    }
    if on_path("rustup") {
        let added = if succeeds(Command::new("rustup").args(["toolchain", "list"]))
            && cmd::output(Command::new("rustup").args(["toolchain", "list"]))?.contains("nightly")
        {
            succeeds(Command::new("rustup").args([
                "component",
                "add",
                "rust-src",
                "--toolchain",
                "nightly",
            ]))
        } else {
            succeeds(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))
        };
        if added && nightly_has_rust_src() {
            return Ok(EbpfToolchain::Nightly);
        }
    }
    if debian_rust_present() {
        return Ok(EbpfToolchain::Debian);
    }
    if !can_install {
        bail!(
            "no compiler for the eBPF crate: run `rustup component add rust-src --toolchain \
             nightly`, or as root: apt-get install -y rustc-web rust-web-src cargo-web rust-web-clippy"
        );
    }
    apt_install(DEBIAN_RUST)?;
    if debian_rust_present() {
        Ok(EbpfToolchain::Debian)
    } else {
        bail!("Debian's Rust installed, but /usr/lib/rustlib/src/rust is missing")
    }
}

fn nightly_has_rust_src() -> bool {
    let Ok(sysroot) =
        cmd::output(Command::new("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]))
    else {
        return false;
    };
    PathBuf::from(sysroot.trim())
        .join("lib/rustlib/src/rust/library/core")
        .exists()
}

/// Debian's Rust, the eBPF compiler when rustup's nightly cannot have rust-src.
const DEBIAN_RUST: &[&str] = &["rustc-web", "rust-web-src", "cargo-web", "rust-web-clippy"];

fn debian_rust_present() -> bool {
    DEBIAN_RUST.iter().all(|p| apt_installed(p))
        && std::path::Path::new("/usr/lib/rustlib/src/rust/library/core").exists()
}

/// Debian's cargo in `dir`, driving Debian's rustc (and clippy-driver) with nightly features
/// unlocked, as the eBPF build needs (`-Z build-std`).
pub fn debian_cargo(dir: &std::path::Path) -> Command {
    let mut c = Command::new("/usr/bin/cargo");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![PathBuf::from("/usr/bin")];
    dirs.extend(std::env::split_paths(&path));
    c.current_dir(dir)
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    if let Ok(p) = std::env::join_paths(dirs) {
        c.env("PATH", p);
    }
    c
}

fn apt_installed(pkg: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

fn apt_install(pkgs: &[&str]) -> Result<()> {
    eprintln!("setup: apt-get install {}", pkgs.join(" "));
    cmd::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

pub fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

/// `cargo install` puts bpf-linker in ~/.cargo/bin, which a CI shell may not have on PATH.
fn put_cargo_bin_on_path() {
    let bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin"));
    let (Some(bin), Some(path)) = (bin, std::env::var_os("PATH")) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if !dirs.contains(&bin) {
        dirs.insert(0, bin);
        if let Ok(joined) = std::env::join_paths(dirs) {
            std::env::set_var("PATH", joined);
        }
    }
}
