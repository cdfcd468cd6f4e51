//! The kernel to boot: a bzImage the user gives, or a Debian kernel package (by default the
//! current `linux-image-amd64`), downloaded once per package version and kept unpacked under
//! target/vm/kernels.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{bzimage, digest::Digests, elf, initramfs::hex, KernelChoice};
use crate::cmd;

/// The Debian metapackage that always depends on the current kernel image.
pub const DEBIAN_DEFAULT: &str = "linux-image-amd64";

/// A bootable kernel and, when known, its modules.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub bzimage: PathBuf,
    /// Its `lib/modules/<release>` directory.
    pub modules: Option<PathBuf>,
    /// Where it came from, for messages ("Debian linux-image-6.1.0-56-amd64 6.1.192-2").
    pub origin: String,
}

pub fn resolve(choice: &KernelChoice, vm_dir: &Path) -> Result<Kernel> {
    match choice {
        KernelChoice::Debian(package) => debian(package, vm_dir),
        KernelChoice::Image { bzimage, modules } => {
            let release = bzimage::check(bzimage)?;
            let modules = modules
                .as_deref()
                .map(|m| modules_dir(m, release.as_deref()))
                .transpose()?;
            Ok(Kernel {
                bzimage: bzimage.clone(),
                modules,
                origin: bzimage.display().to_string(),
            })
        }
    }
}

/// `dir` is `lib/modules/<release>` itself, or `lib/modules` holding it.
fn modules_dir(dir: &Path, release: Option<&str>) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("--modules {}: no such directory", dir.display());
    }
    let Some(release) = release else {
        return Ok(dir.to_owned());
    };
    if dir.file_name().is_some_and(|n| n == release) {
        return Ok(dir.to_owned());
    }
    let inner = dir.join(release);
    if inner.is_dir() {
        return Ok(inner);
    }
    bail!(
        "--modules {} is not the module tree of kernel {release}: give its lib/modules/{release} \
         directory",
        dir.display()
    )
}

/// A Debian kernel: `package` is a metapackage (resolved to the image it depends on) or an image
/// package; resolved through apt's lists, cached by version, checked against the archive's
/// SHA256.
fn debian(package: &str, vm_dir: &Path) -> Result<Kernel> {
    if !cmd::on_path("apt-cache") || !cmd::on_path("apt-get") {
        bail!(
            "no apt on this host to fetch Debian's kernel; give --kernel PATH (a bzImage with BTF \
             and kprobes) and --modules DIR"
        );
    }
    let (package, version, sha256) = debian_candidate(package, vm_dir)?;
    let origin = format!("Debian {package} {version}");
    let dir = vm_dir
        .join("kernels")
        .join(format!("{package}_{}", version.replace([':', '/'], "_")));
    let stamp = dir.join(".complete");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(sha256.as_str()) {
        fetch(&package, &version, &sha256, vm_dir, &dir)?;
        fs::write(&stamp, &sha256).with_context(|| format!("writing {}", stamp.display()))?;
    }
    let bzimage = find_vmlinuz(&dir.join("boot"))?;
    let release = bzimage::check(&bzimage)?;
    let modules = release.as_deref().and_then(|r| {
        ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|m| dir.join(m).join(r))
            .find(|p| p.is_dir())
    });
    Ok(Kernel {
        bzimage,
        modules,
        origin,
    })
}

/// The kernel package apt would install now, its version and SHA256. Asking apt costs seconds
/// (apt-cache rebuilds its cache on hosts that do not keep one), so the answer is remembered
/// until apt's lists or configuration change.
fn debian_candidate(wanted: &str, vm_dir: &Path) -> Result<(String, String, String)> {
    let memo = vm_dir.join(format!("debian-{wanted}"));
    let fingerprint = apt_fingerprint();
    if let Ok(text) = fs::read_to_string(&memo) {
        if let [fp, package, version, sha256] = text.lines().collect::<Vec<_>>()[..] {
            if fp == fingerprint {
                return Ok((package.into(), version.into(), sha256.into()));
            }
        }
    }
    let ask = || cmd::output(Command::new("apt-cache").args(["depends", wanted]));
    let depends = match ask() {
        Ok(d) => d,
        // Fresh machines and CI images often come without package lists; root can fetch them.
        Err(_) if crate::setup::is_root() => {
            eprintln!("vm: apt knows no {wanted}; running apt-get update");
            cmd::output(
                Command::new("apt-get")
                    .arg("update")
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )
            .context("apt-get update")?;
            ask().with_context(|| format!("apt knows no {wanted}, even after apt-get update"))?
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("apt knows no {wanted}; run `apt-get update` (or give --kernel PATH)")
            })
        }
    };
    // A metapackage names the image it stands for; an image package is itself.
    let package = versioned_package(&depends).unwrap_or_else(|| wanted.to_owned());
    let show = cmd::output(Command::new("apt-cache").args(["show", "--no-all-versions", &package]))
        .with_context(|| format!("asking apt about {package}"))?;
    let (version, sha256) = candidate(&show)
        .with_context(|| format!("apt-cache show {package} gave no Version and SHA256"))?;
    // After an update the lists changed: remember the answer under their new fingerprint.
    let _ = fs::write(
        &memo,
        format!("{}\n{package}\n{version}\n{sha256}\n", apt_fingerprint()),
    );
    Ok((package, version, sha256))
}

/// Names, sizes and times of apt's package lists and configuration.
fn apt_fingerprint() -> String {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    let mut dirs = vec![
        PathBuf::from("/var/lib/apt/lists"),
        PathBuf::from("/etc/apt"),
    ];
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                dirs.push(e.path());
            } else {
                h.update(format!(
                    "{} {} {}.{}\n",
                    e.path().display(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec()
                ));
            }
        }
    }
    hex(&h.finalize())
}

/// Downloads `package=version` and unpacks it into `dest`.
fn fetch(package: &str, version: &str, sha256: &str, vm_dir: &Path, dest: &Path) -> Result<()> {
    eprintln!(
        "vm: downloading {package} {version} (once; cached in {})",
        dest.display()
    );
    // apt-get download writes into the current directory; a fresh one we own (apt's sandbox
    // user cannot write there, which apt only warns about).
    let dl = vm_dir.join("download");
    let _ = fs::remove_dir_all(&dl);
    fs::create_dir_all(&dl).with_context(|| format!("creating {}", dl.display()))?;
    cmd::output(
        Command::new("apt-get")
            .current_dir(&dl)
            .args(["download", &format!("{package}={version}")]),
    )
    .with_context(|| format!("downloading {package} {version}"))?;
    let deb = fs::read_dir(&dl)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", dl.display()))?;
    let bytes = fs::read(&deb).with_context(|| format!("reading {}", deb.display()))?;
    let got = hex(&Sha256::digest(&bytes));
    if got != sha256 {
        bail!(
            "{} has SHA256 {got}, apt's index says {sha256}; run `apt-get update` and retry",
            deb.display()
        );
    }
    let tmp = dest.with_extension("partial");
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    cmd::output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))
        .with_context(|| format!("unpacking {}", deb.display()))?;
    fs::rename(&tmp, dest).with_context(|| format!("renaming {}", tmp.display()))?;
    let _ = fs::remove_dir_all(&dl);
    Ok(())
}

/// The uncompressed kernel inside `bzimage`, as an ELF file QEMU can boot at its PVH entry
/// point: under TCG that skips about 3 s of decompression per boot. Extracted once per bzImage
/// (by content) into `cache`; None when the kernel has no PVH entry (CONFIG_PVH off) or a
/// compression the host cannot undo, and then the bzImage boots as is.
pub fn pvh_image(bzimage: &Path, cache: &Path, digests: &mut Digests) -> Result<Option<PathBuf>> {
    let key = digests.of(bzimage)?;
    let elf = cache.join(format!("{key}.vmlinux"));
    let none = cache.join(format!("{key}.no-pvh"));
    if elf.is_file() {
        return Ok(Some(elf));
    }
    if none.is_file() {
        return Ok(None);
    }
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let bytes = fs::read(bzimage).with_context(|| format!("reading {}", bzimage.display()))?;
    let payload = bzimage::payload(&bytes).map(|r| &bytes[r]);
    // The kernel appends the uncompressed size after the stream; the tools see trailing bytes
    // and may complain, so their output decides, not their exit status.
    let tool: Option<&[&str]> = match payload {
        Some(p) if p.starts_with(b"\xfd7zXZ\0") => Some(&["xz", "-dc", "--single-stream"]),
        Some(p) if p.starts_with(b"\x1f\x8b") => Some(&["gzip", "-dc"]),
        Some(p) if p.starts_with(b"\x28\xb5\x2f\xfd") => Some(&["zstd", "-dc"]),
        _ => None,
    };
    let vmlinux = match (payload, tool) {
        (Some(p), Some([prog, args @ ..])) => {
            let packed = cache.join(format!("{key}.payload"));
            fs::write(&packed, p).with_context(|| format!("writing {}", packed.display()))?;
            let out = Command::new(prog)
                .args(args)
                .arg(&packed)
                .stdin(std::process::Stdio::null())
                .output();
            let _ = fs::remove_file(&packed);
            out.map(|o| o.stdout).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    if !elf::is_pvh_kernel(&vmlinux) {
        fs::write(&none, b"").with_context(|| format!("writing {}", none.display()))?;
        return Ok(None);
    }
    let tmp = cache.join(format!("{key}.vmlinux.tmp"));
    fs::write(&tmp, &vmlinux).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &elf).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(Some(elf))
}

fn find_vmlinuz(boot: &Path) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(boot)
        .with_context(|| format!("listing {}", boot.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no vmlinuz-* in {}", boot.display()),
        _ => bail!(
            "several vmlinuz-* in {}; remove the directory to refetch",
            boot.display()
        ),
    }
}

/// The kernel image package the metapackage depends on, from `apt-cache depends`.
fn versioned_package(depends: &str) -> Option<String> {
    depends.lines().find_map(|l| {
        let dep = l
            .trim()
            .trim_start_matches('|')
            .strip_prefix("Depends:")?
            .trim();
        let dep = dep.trim_start_matches('<').trim_end_matches('>');
        dep.starts_with("linux-image-").then(|| dep.to_owned())
    })
}

/// Version and SHA256 of the candidate, from `apt-cache show --no-all-versions`.
fn candidate(show: &str) -> Option<(String, String)> {
    let field = |name: &str| {
        show.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')
                .map(|v| v.trim().to_owned())
        })
    };
    Some((field("Version")?, field("SHA256")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_versioned_package() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            versioned_package(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let alt = "linux-image-amd64\n |Depends: <linux-image-6.12.9-amd64>\n  Depends: foo\n";
        assert_eq!(
            versioned_package(alt).as_deref(),
            Some("linux-image-6.12.9-amd64")
        );
        assert_eq!(versioned_package("linux-image-amd64\n"), None);
    }

    #[test]
    fn reads_the_candidate() {
        let show = "Package: linux-image-6.1.0-56-amd64\nSource: linux-signed-amd64 (6.1.192+2)\n\
                    Version: 6.1.192-2\nSHA256: 0123abcd\nDescription: x\n";
        assert_eq!(
            candidate(show),
            Some(("6.1.192-2".into(), "0123abcd".into()))
        );
        assert_eq!(candidate("Package: x\n"), None);
    }

    #[test]
    fn finds_the_module_tree() {
        let d = std::env::temp_dir().join(format!("xtask-vm-kernel-{}", std::process::id()));
        let tree = d.join("lib/modules/6.1.0-9-amd64");
        fs::create_dir_all(&tree).expect("mkdir");
        assert_eq!(
            modules_dir(&tree, Some("6.1.0-9-amd64")).expect("tree"),
            tree
        );
        assert_eq!(
            modules_dir(&d.join("lib/modules"), Some("6.1.0-9-amd64")).expect("tree"),
            tree
        );
        assert!(modules_dir(&tree, Some("6.12.0-1-amd64")).is_err());
        assert!(modules_dir(&d.join("nope"), None).is_err());
        let _ = fs::remove_dir_all(&d);
    }
}
