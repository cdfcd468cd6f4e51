//! Builds the eBPF object (crates/tracer-ebpf) for bpfel-unknown-none and hands its path to the
//! crate as `TRACER_EBPF_OBJ`, so the binary embeds it. Only edits of the eBPF crate or the
//! shared ABI rebuild it.
//!
//! Toolchain: `TRACER_EBPF_TOOLCHAIN=nightly|debian` forces one; otherwise rustup's nightly when it
//! has rust-src, else Debian's rustc-web with rust-web-src (`cargo xtask setup` installs either).
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let crates = manifest.parent().expect("crates/ directory").to_path_buf();
    let ebpf = crates.join("tracer-ebpf");
    let root = crates.parent().expect("workspace root").to_path_buf();
    for p in [
        ebpf.join("src"),
        ebpf.join("Cargo.toml"),
        ebpf.join("Cargo.lock"),
        ebpf.join(".cargo/config.toml"),
        crates.join("tracer-common/src"),
        crates.join("tracer-common/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-env-changed=TRACER_EBPF_TOOLCHAIN");

    let target_dir = root.join("target/ebpf");
    let toolchain = toolchain();
    let mut cmd = match toolchain {
        Toolchain::Nightly => {
            let mut c = Command::new("rustup");
            c.args(["run", "nightly", "cargo"]);
            c
        }
        Toolchain::Debian => {
            // Debian's cargo-web and rustc-web, nightly features unlocked for -Z build-std.
            let mut c = Command::new("/usr/bin/cargo");
            c.env("RUSTC", "/usr/bin/rustc").env("RUSTC_BOOTSTRAP", "1");
            c
        }
    };
    // The outer cargo's environment would leak into the inner build (clippy's wrapper, host
    // rustflags, the stable toolchain's RUSTC); the eBPF build must see none of it.
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
        if !(var == "RUSTC" && matches!(toolchain, Toolchain::Debian)) {
            cmd.env_remove(var);
        }
    }
    cmd.current_dir(&ebpf)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir);
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run cargo for the eBPF crate ({e}); run `cargo xtask setup` first")
    });
    if !status.success() {
        panic!(
            "building the eBPF crate failed ({status}); `cargo xtask setup` installs the eBPF \
             toolchain and bpf-linker"
        );
    }
    let obj = target_dir.join("bpfel-unknown-none/release/tracer-ebpf");
    assert!(obj.exists(), "eBPF object missing at {}", obj.display());
    println!("cargo:rustc-env=TRACER_EBPF_OBJ={}", obj.display());
}

enum Toolchain {
    Nightly,
    Debian,
}

fn toolchain() -> Toolchain {
    match env::var("TRACER_EBPF_TOOLCHAIN").as_deref() {
        Ok("nightly") => return Toolchain::Nightly,
        Ok("debian") => return Toolchain::Debian,
        _ => {}
    }
    if nightly_has_rust_src() {
        Toolchain::Nightly
    } else {
        Toolchain::Debian
    }
}

fn nightly_has_rust_src() -> bool {
    let Ok(out) = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
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
