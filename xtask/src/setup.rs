//! `cargo xtask setup`: makes the eBPF toolchain, bpf-linker and the live-kernel packages
//! present. Idempotent: with everything installed it only checks (a few seconds). `cargo xtask
//! run` needs less ([`for_run_packages`]): the VM's packages; without the eBPF toolchain the
//! tracer embeds the committed eBPF object (`tracer-ebpf/committed.rs`).
//!
//! apt never removes a package the user has (`--no-remove`) and installs no recommends. QEMU's
//! packages must all have one version: when the user already has one of them from backports
//! (qemu-utils on this machine kind), the rest come from the same suite, read through a private
//! apt state directory so the host's own sources are never touched.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::cmd::{self, on_path, succeeds};

#[path = "../../tracer-ebpf/toolchain.rs"]
pub mod toolchain;

pub use toolchain::EbpfToolchain;

/// Debian packages the main job needs (the VM path).
const RUN_PACKAGES: &[&str] = &["qemu-system-x86", "busybox-static", "cpio", "e2fsprogs"];
/// Debian packages that build bpf-linker.
const BUILD_PACKAGES: &[&str] = &["llvm-22-dev"];
/// QEMU's packages that must share one version.
const QEMU_FAMILY: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-common",
    "qemu-system-data",
    "qemu-utils",
];
/// cargo-fuzz, pinned like bpf-linker.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

const BPF_LINKER_VERSION: &str = "0.13.0";

/// What setup found or installed.
pub struct Setup {
    pub toolchain: EbpfToolchain,
}

pub fn setup() -> Result<Setup> {
    let t0 = Instant::now();
    put_cargo_bin_on_path();
    let can_install = is_root() && Path::new("/etc/debian_version").exists();

    let packages = [RUN_PACKAGES, BUILD_PACKAGES].concat();
    ensure_packages(&packages, can_install)?;
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
    // The fuzz step's driver; it builds the targets with the pinned nightly.
    if !succeeds(Command::new("cargo-fuzz").arg("--version")) {
        eprintln!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (a few minutes, once)");
        cmd::run(Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--locked",
        ]))
        .context("installing cargo-fuzz (cargo install cargo-fuzz --locked)")?;
    }

    eprintln!(
        "setup: eBPF compiler: {}; {}; packages: {} ({:.1}s)",
        match toolchain {
            EbpfToolchain::Nightly => format!("rustup {} + rust-src", toolchain::pinned_nightly()),
            EbpfToolchain::Debian =>
                "Debian rustc-web + rust-web-src + cargo-web (RUSTC_BOOTSTRAP=1)".into(),
        },
        linker.trim(),
        packages.join(" "),
        t0.elapsed().as_secs_f64()
    );
    // The tracer's build script detects the same way; this only spares it the probing.
    std::env::set_var("TRACER_EBPF_TOOLCHAIN", toolchain.name());
    Ok(Setup { toolchain })
}

/// What `cargo xtask run` needs to build: bpf-linker on PATH and the eBPF compiler named when
/// this machine has them (a developer's, who ran `cargo xtask setup`): the tracer's build script
/// then compiles the eBPF crate, else it embeds the committed object. Says which; installs
/// nothing.
pub fn for_run_build() {
    put_cargo_bin_on_path();
    let object = match (std::env::var("TRACER_EBPF_OBJECT"), EbpfToolchain::detect()) {
        (Ok(forced), _) => format!("TRACER_EBPF_OBJECT={forced}"),
        (_, Some(t)) if toolchain::bpf_linker().is_some() => {
            std::env::set_var("TRACER_EBPF_TOOLCHAIN", t.name());
            format!("built from source ({})", t.name())
        }
        _ => "the committed one (no eBPF toolchain here)".to_string(),
    };
    eprintln!("setup: eBPF object: {object}");
}

/// What `cargo xtask run` needs to record: the VM's packages, nothing to build eBPF with.
pub fn for_run_packages() -> Result<()> {
    let can_install = is_root() && Path::new("/etc/debian_version").exists();
    ensure_packages(RUN_PACKAGES, can_install)
}

/// Installs what of `pkgs` is missing (root on Debian), else says what to run.
pub fn ensure_packages(pkgs: &[&str], can_install: bool) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !apt_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !can_install {
        bail!(
            "missing Debian packages: {}. Run as root: apt-get update && \
             DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    apt_install(&missing)
}

/// The pinned nightly with rust-src (rustup installs it), else Debian's rustc-web.
fn ebpf_toolchain(can_install: bool) -> Result<EbpfToolchain> {
    let pinned = toolchain::pinned_nightly();
    if let Some(t) = EbpfToolchain::detect() {
        // The clippy step lints the eBPF crate with the compiler that builds it.
        if t == EbpfToolchain::Nightly
            && !succeeds(Command::new("rustup").args(["run", pinned, "cargo-clippy", "--version"]))
        {
            cmd::run(Command::new("rustup").args([
                "component",
                "add",
                "clippy",
                "--toolchain",
                pinned,
            ]))
            .context("adding clippy to the eBPF crate's nightly")?;
        }
        return Ok(t);
    }
    if on_path("rustup")
        && succeeds(Command::new("rustup").args([
            "toolchain",
            "install",
            pinned,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
            "--component",
            "clippy",
        ]))
        && toolchain::nightly_has_rust_src()
    {
        return Ok(EbpfToolchain::Nightly);
    }
    if !can_install {
        bail!(
            "no compiler for the eBPF crate: run `rustup toolchain install {pinned} --component \
             rust-src --component clippy`, or as root: apt-get install -y \
             --no-install-recommends {}",
            toolchain::DEBIAN_RUST.join(" ")
        );
    }
    apt_install(toolchain::DEBIAN_RUST)?;
    if toolchain::debian_rust_present() {
        Ok(EbpfToolchain::Debian)
    } else {
        bail!("Debian's Rust installed, but /usr/lib/rustlib/src/rust is missing")
    }
}

fn apt_installed(pkg: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

fn installed_version(pkg: &str) -> Option<String> {
    apt_installed(pkg)
        .then(|| cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Version}", pkg])).ok())
        .flatten()
        .map(|v| v.trim().to_string())
}

/// The Debian release's codename (`bookworm`), from os-release.
fn codename() -> Option<String> {
    std::fs::read_to_string("/etc/os-release")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_string())
}

/// A backports version (`~bpo12+1`) of an installed QEMU package: the others must come from
/// backports too, or apt would remove it.
fn qemu_from_backports() -> bool {
    QEMU_FAMILY
        .iter()
        .filter_map(|p| installed_version(p))
        .any(|v| v.contains("~bpo"))
}

/// apt with a private list of the release's suites and its backports, in a state directory of
/// our own: the host's sources and lists stay as they are.
fn private_apt(codename: &str) -> Result<Vec<String>> {
    let dir = PathBuf::from("/var/cache/dcache-tracer/apt");
    std::fs::create_dir_all(dir.join("lists/partial"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let sources = dir.join("sources.list");
    std::fs::write(
        &sources,
        format!(
            "deb http://deb.debian.org/debian {codename} main\n\
             deb http://deb.debian.org/debian {codename}-updates main\n\
             deb http://deb.debian.org/debian-security {codename}-security main\n\
             deb http://deb.debian.org/debian {codename}-backports main\n"
        ),
    )
    .with_context(|| format!("writing {}", sources.display()))?;
    let opts = vec![
        "-o".into(),
        format!("Dir::Etc::SourceList={}", sources.display()),
        "-o".into(),
        "Dir::Etc::SourceParts=/nonexistent".into(),
        "-o".into(),
        format!("Dir::State::Lists={}", dir.join("lists").display()),
    ];
    cmd::run(
        Command::new("apt-get")
            .args(&opts)
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(opts)
}

fn apt_install(pkgs: &[&str]) -> Result<()> {
    let mut opts: Vec<String> = Vec::new();
    let mut wanted: Vec<String> = pkgs.iter().map(|p| p.to_string()).collect();
    let qemu = pkgs.iter().any(|p| QEMU_FAMILY.contains(p));
    match codename() {
        Some(c) if qemu && qemu_from_backports() => {
            opts = private_apt(&c)?;
            // QEMU and the firmware it depends on at the version of the one already there.
            for p in QEMU_FAMILY.iter().chain(["seabios"].iter()) {
                if *p == "qemu-utils" && !apt_installed(p) {
                    continue;
                }
                wanted.retain(|w| w != p);
                wanted.push(format!("{p}/{c}-backports"));
            }
        }
        _ => cmd::run(
            Command::new("apt-get")
                .args(["update", "-qq"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?,
    }
    eprintln!("setup: apt-get install {}", wanted.join(" "));
    let out = Command::new("apt-get")
        .args(&opts)
        .args(["install", "-y", "--no-install-recommends", "--no-remove"])
        .args(&wanted)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("cannot start apt-get")?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let removals: Vec<&str> = text
            .split("The following packages will be REMOVED:")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| l.starts_with(' '))
                    .flat_map(|l| l.split_whitespace())
                    .collect()
            })
            .unwrap_or_default();
        if !removals.is_empty() {
            bail!(
                "installing {} would remove {} that this machine has; nothing was changed. \
                 Choose yourself: `apt-get install {}` (removes them) or install a version of \
                 these packages that fits what you have",
                wanted.join(" "),
                removals.join(" "),
                wanted.join(" ")
            );
        }
        bail!(
            "apt-get install {} failed: {}",
            wanted.join(" "),
            text.lines()
                .filter(|l| l.starts_with("E:"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
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
