//! The committed eBPF object (as cilium/ebpf's bpf2go commits its generated objects): a machine
//! without the eBPF toolchain (pinned nightly, bpf-linker, LLVM) builds the tracer with it
//! instead of compiling tracer-ebpf/. Beside it, the SHA-256 of the sources it was built from,
//! so such a build refuses an object older than the sources. `cargo xtask test` rebuilds it
//! from source and fails when the bytes differ. Compiled into `tracer/build.rs` and into xtask
//! (`#[path]`), so both hash the same inputs the same way.
use std::{
    fs, io,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// The object, relative to the workspace root.
pub const OBJECT: &str = "tracer-ebpf/committed/tracer-ebpf.o";
/// The hex SHA-256 of the inputs it was built from, relative to the workspace root.
pub const SOURCES_DIGEST: &str = "tracer-ebpf/committed/sources.sha256";
/// What rebuilds both from source.
pub const REFRESH: &str = "cargo xtask ebpf-object";

/// Everything (relative to the workspace root) the object is built from; directories are
/// walked. The compiler and bpf-linker are pinned, not hashed: the test's rebuild covers them.
pub const INPUTS: &[&str] = &[
    "tracer-ebpf/src",
    "tracer-ebpf/Cargo.toml",
    "tracer-ebpf/Cargo.lock",
    "tracer-ebpf/.cargo/config.toml",
    "tracer-ebpf/rust-toolchain.toml",
    "tracer-common/src",
    "tracer-common/Cargo.toml",
];

/// The SHA-256 (hex) of every input file's relative path and contents, in path order.
pub fn sources_digest(root: &Path) -> io::Result<String> {
    let mut files = Vec::new();
    for input in INPUTS {
        collect(root, &root.join(input), &mut files)?;
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in &files {
        let bytes = fs::read(root.join(rel))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect(root: &Path, path: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            collect(root, &entry?.path(), out)?;
        }
    } else {
        let rel = path
            .strip_prefix(root)
            .map_err(|_| io::Error::other(format!("{} is outside the root", path.display())))?;
        out.push(rel.to_path_buf());
    }
    Ok(())
}

/// The committed digest, trimmed.
pub fn committed_digest(root: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(root.join(SOURCES_DIGEST))?
        .trim()
        .to_string())
}
