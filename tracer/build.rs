//! Builds the eBPF object (`tracer-ebpf/`) for bpfel-unknown-none and hands its path to the
//! crate as `TRACER_EBPF_OBJ`, so the binary embeds it. Edits of the eBPF crate or the shared ABI,
//! a new bpf-linker or another toolchain rebuild it. The compiler is chosen in one place,
//! `tracer-ebpf/toolchain.rs`, which `cargo xtask setup` shares.
use std::{env, path::PathBuf};

#[path = "../tracer-ebpf/toolchain.rs"]
// xtask uses the rest of it (package names, the toolchain's name).
#[allow(dead_code)]
mod toolchain;

use toolchain::EbpfToolchain;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // The workspace root holds this crate and tracer-ebpf side by side; check it rather than
    // trust it, so a moved crate fails here instead of writing target/ebpf somewhere else.
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let ebpf = root.join("tracer-ebpf");
    assert!(
        ebpf.join("Cargo.toml").exists() && root.join("Cargo.toml").exists(),
        "tracer-ebpf/ not found beside {}: the tracer crate must sit at the workspace root",
        manifest.display()
    );
    for p in [
        ebpf.join("src"),
        ebpf.join("Cargo.toml"),
        ebpf.join("Cargo.lock"),
        ebpf.join(".cargo/config.toml"),
        ebpf.join("rust-toolchain.toml"),
        ebpf.join("toolchain.rs"),
        root.join("tracer-common/src"),
        root.join("tracer-common/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-env-changed=TRACER_EBPF_TOOLCHAIN");
    if let Some(linker) = find_on_path("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }

    let target_dir = root.join("target/ebpf");
    let Some(toolchain) = EbpfToolchain::detect() else {
        panic!(
            "no compiler for the eBPF crate: neither rustup's {} with rust-src nor Debian's \
             rustc-web; run `cargo xtask setup`",
            toolchain::pinned_nightly()
        );
    };
    let status = toolchain
        .cargo(&ebpf)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir)
        .status()
        .unwrap_or_else(|e| {
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

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
