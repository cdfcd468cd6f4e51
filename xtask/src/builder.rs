//! `cargo xtask build`: the release binaries (the tracer embeds the eBPF object through its
//! build script) and, for the VM, a statically linked tracer; `cargo xtask ebpf-object`: the
//! committed eBPF object rebuilt from source, or checked against it.
use std::{fs, path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};

use crate::{cmd, setup, test::Check};

#[path = "../../tracer-ebpf/committed.rs"]
mod committed;

/// Host triple for the static build (glibc, +crt-static: no shared libraries in the initramfs).
const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The static build's profile (Cargo.toml), also the name of its output directory.
const STATIC_PROFILE: &str = "static";

pub fn build(static_tracer: bool) -> Result<()> {
    setup::setup()?;
    release_binaries()?;
    if static_tracer {
        let p = static_tracer_binary()?;
        eprintln!("build: static tracer at {}", p.display());
    }
    Ok(())
}

/// `cargo build --release` of the tracer; returns its path.
pub fn release_binaries() -> Result<PathBuf> {
    cmd::run(Command::new(cargo()).current_dir(cmd::root()).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "tracer",
    ]))
    .context("building the tracer")?;
    Ok(cmd::root().join("target/release/tracer"))
}

/// A tracer linked statically against glibc, for the initramfs. It has its own target
/// directory so its RUSTFLAGS do not invalidate the normal build. It is built without the
/// `check` feature (the loom model checker, which no guest and no `run` needs) and with the
/// workspace's `static` profile (the release one without debug information, the argument
/// parser at opt-level 1; see Cargo.toml): less to compile on a fresh clone, and 9 MB instead
/// of 36 in every initramfs, which the guest unpacks at each boot under TCG. Panics still name
/// their functions (the symbols stay).
pub fn static_tracer_binary() -> Result<PathBuf> {
    let target_dir = cmd::root().join("target/static");
    cmd::run(
        Command::new(cargo())
            .current_dir(cmd::root())
            .args(["build", "--locked", "-p", "tracer", "--profile"])
            .arg(STATIC_PROFILE)
            .args(["--no-default-features", "--target"])
            .arg(HOST_TRIPLE)
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )
    .context("building the static tracer")?;
    Ok(target_dir
        .join(HOST_TRIPLE)
        .join(STATIC_PROFILE)
        .join("tracer"))
}

/// The cargo that runs us (stable), so nested builds use the same toolchain.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The eBPF object built from source with the eBPF toolchain (in the tracer build's own
/// target/ebpf, so an up-to-date build costs nothing).
fn ebpf_object_from_source(toolchain: setup::EbpfToolchain) -> Result<PathBuf> {
    let root = cmd::root();
    toolchain
        .build_object(&root.join("tracer-ebpf"), &root.join("target/ebpf"))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `cargo xtask ebpf-object`: rebuilds the committed object and its sources' digest.
pub fn refresh_ebpf_object() -> Result<i32> {
    let s = setup::setup()?;
    let built = ebpf_object_from_source(s.toolchain)?;
    let root = cmd::root();
    let (obj, digest) = (
        root.join(committed::OBJECT),
        root.join(committed::SOURCES_DIGEST),
    );
    if let Some(dir) = obj.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(&built, &obj)
        .with_context(|| format!("copying {} to {}", built.display(), obj.display()))?;
    let sources = committed::sources_digest(&root).context("hashing the eBPF sources")?;
    fs::write(&digest, format!("{sources}\n"))
        .with_context(|| format!("writing {}", digest.display()))?;
    eprintln!(
        "ebpf-object: {} and {} refreshed; commit both",
        committed::OBJECT,
        committed::SOURCES_DIGEST
    );
    Ok(0)
}

/// `cargo xtask test`'s check: the committed object is what the sources build, byte for byte,
/// and its digest is the sources'.
pub fn ebpf_object_checks(toolchain: setup::EbpfToolchain) -> Result<Vec<Check>> {
    let root = cmd::root();
    if toolchain != setup::EbpfToolchain::Nightly {
        bail!(
            "the committed eBPF object is built with rustup's {}; Debian's compiler makes other \
             bytes, so it cannot check it",
            setup::toolchain::pinned_nightly()
        );
    }
    let built = fs::read(ebpf_object_from_source(toolchain)?)?;
    let obj = root.join(committed::OBJECT);
    let committed_bytes = fs::read(&obj).with_context(|| format!("reading {}", obj.display()))?;
    let sources = committed::sources_digest(&root).context("hashing the eBPF sources")?;
    let recorded = committed::committed_digest(&root)
        .with_context(|| format!("reading {}", committed::SOURCES_DIGEST))?;
    let fix = format!("run `{}` and commit its two files", committed::REFRESH);
    Ok(vec![
        if built == committed_bytes {
            Check::pass(format!("{} is what the sources build", committed::OBJECT))
        } else {
            Check::fail(
                format!("{} is what the sources build", committed::OBJECT),
                format!(
                    "the build from source ({} bytes) differs from the committed object ({} \
                     bytes): {fix}",
                    built.len(),
                    committed_bytes.len()
                ),
            )
        },
        if sources == recorded {
            Check::pass(format!("{} matches the sources", committed::SOURCES_DIGEST))
        } else {
            Check::fail(
                format!("{} matches the sources", committed::SOURCES_DIGEST),
                format!("it holds {recorded}, the sources hash to {sources}: {fix}"),
            )
        },
    ])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::committed::{sources_digest, INPUTS};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn the_sources_digest_follows_contents_and_names_only() {
        let root = std::env::temp_dir().join(format!("xtask-digest-{}", std::process::id()));
        for input in INPUTS {
            if input.ends_with("/src") {
                write(&root, &format!("{input}/lib.rs"), "a");
            } else {
                write(&root, input, "b");
            }
        }
        let before = sources_digest(&root).expect("digest");
        assert_eq!(
            before,
            sources_digest(&root).expect("digest"),
            "deterministic"
        );
        assert_eq!(before.len(), 64);
        write(&root, "tracer-common/src/lib.rs", "c");
        let edited = sources_digest(&root).expect("digest");
        assert_ne!(before, edited);
        // A file outside the inputs changes nothing.
        write(&root, "tracer/src/main.rs", "d");
        assert_eq!(edited, sources_digest(&root).expect("digest"));
        // A new file in a source directory does.
        write(&root, "tracer-ebpf/src/extra.rs", "");
        assert_ne!(edited, sources_digest(&root).expect("digest"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
