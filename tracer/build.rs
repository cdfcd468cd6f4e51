//! Hands the crate the eBPF object as `TRACER_EBPF_OBJ`, so the binary embeds it: built from
//! `tracer-ebpf/` for bpfel-unknown-none when this machine has the eBPF toolchain (the
//! compiler chosen in one place, `tracer-ebpf/toolchain.rs`, which `cargo xtask setup` shares,
//! and bpf-linker), else the committed object (`tracer-ebpf/committed.rs`), provided the
//! sources have not changed since it was built. `TRACER_EBPF_OBJECT=source|committed` forces
//! one. Edits of the eBPF crate or the shared ABI, a new bpf-linker or another toolchain rerun
//! this.
use std::{env, path::PathBuf};

#[path = "../tracer-ebpf/toolchain.rs"]
// xtask uses the rest of it (package names, the toolchain's name).
#[allow(dead_code)]
mod toolchain;

#[path = "../tracer-ebpf/committed.rs"]
// xtask uses the rest of it (the refresh).
#[allow(dead_code)]
mod committed;

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
    for p in committed::INPUTS
        .iter()
        .chain(&[
            "tracer-ebpf/toolchain.rs",
            "tracer-ebpf/committed.rs",
            committed::OBJECT,
            committed::SOURCES_DIGEST,
        ])
        .map(|p| root.join(p))
    {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-env-changed=TRACER_EBPF_TOOLCHAIN");
    println!("cargo:rerun-if-env-changed=TRACER_EBPF_OBJECT");
    let linker = toolchain::bpf_linker();
    if let Some(l) = &linker {
        println!("cargo:rerun-if-changed={}", l.display());
    }

    let toolchain = EbpfToolchain::detect();
    let from_source = match env::var("TRACER_EBPF_OBJECT").as_deref() {
        Ok("source") => true,
        Ok("committed") => false,
        Ok(other) => panic!("TRACER_EBPF_OBJECT={other:?}: expected source or committed"),
        Err(_) => toolchain.is_some() && linker.is_some(),
    };
    let obj = if from_source {
        let Some(toolchain) = toolchain else {
            panic!(
                "no compiler for the eBPF crate: neither rustup's {} with rust-src nor Debian's \
                 rustc-web; run `cargo xtask setup`",
                toolchain::pinned_nightly()
            );
        };
        toolchain
            .build_object(&ebpf, &root.join("target/ebpf"))
            .unwrap_or_else(|e| {
                panic!("{e}; `cargo xtask setup` installs the eBPF toolchain and bpf-linker")
            })
    } else {
        let digest = committed::sources_digest(&root)
            .unwrap_or_else(|e| panic!("hashing the eBPF crate's sources: {e}"));
        let built_from = committed::committed_digest(&root)
            .unwrap_or_else(|e| panic!("reading {}: {e}", committed::SOURCES_DIGEST));
        if digest != built_from {
            panic!(
                "the eBPF sources changed since {} was built, and this build uses it (no eBPF \
                 toolchain or bpf-linker here, or TRACER_EBPF_OBJECT=committed): run `cargo \
                 xtask setup`, then `{}`",
                committed::OBJECT,
                committed::REFRESH
            );
        }
        root.join(committed::OBJECT)
    };
    println!("cargo:rustc-env=TRACER_EBPF_OBJ={}", obj.display());
}
