//! The kernel to boot, as `--kernel` names it everywhere: a bzImage path (with `--modules`),
//! `debian:SUITE[/VERSION]` (see debian.rs) or `built:NAME` (a kernel `cargo xtask kernel build`
//! made).
use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
    str::FromStr,
};

use anyhow::{bail, Context, Result};

use super::{bzimage, debian, digest::Digests, elf};

/// The kernel every run boots unless told otherwise: Debian 12's, whose 6.1 the default model
/// profile follows.
pub const DEFAULT: &str = "debian:bookworm";

/// What `--kernel` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelChoice {
    /// A bzImage, with its `lib/modules/<release>` tree when modules are to be loaded.
    Image {
        bzimage: PathBuf,
        modules: Option<PathBuf>,
    },
    /// The newest amd64 kernel of a Debian suite, or the one with `version`.
    Debian {
        suite: String,
        version: Option<String>,
    },
    /// A kernel built by `cargo xtask kernel build --bug NAME`.
    Built(String),
}

impl KernelChoice {
    /// Attaches `--modules` to a path; the other forms bring their own tree.
    pub fn with_modules(self, modules: Option<PathBuf>) -> Result<KernelChoice> {
        match (self, modules) {
            (KernelChoice::Image { bzimage, .. }, modules) => {
                Ok(KernelChoice::Image { bzimage, modules })
            }
            (k, None) => Ok(k),
            (k, Some(_)) => {
                bail!("--modules goes with --kernel PATH only; {k} brings its own module tree")
            }
        }
    }

    /// A short name for directories and reports: `debian-bookworm`, `built-NAME`, the file name.
    pub fn slug(&self) -> String {
        let s = match self {
            KernelChoice::Image { bzimage, .. } => bzimage
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "kernel".into()),
            KernelChoice::Debian { suite, version } => match version {
                Some(v) => format!("debian-{suite}-{v}"),
                None => format!("debian-{suite}"),
            },
            KernelChoice::Built(name) => format!("built-{name}"),
        };
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

impl Default for KernelChoice {
    /// [`DEFAULT`].
    fn default() -> Self {
        KernelChoice::Debian {
            suite: "bookworm".into(),
            version: None,
        }
    }
}

impl FromStr for KernelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("debian:") {
            let (suite, version) = match rest.split_once('/') {
                Some((suite, v)) if !v.is_empty() => (suite, Some(v.to_owned())),
                Some(_) => return Err(format!("{s}: give a version after the '/'")),
                None => (rest, None),
            };
            debian::check_suite(suite).map_err(|e| e.to_string())?;
            return Ok(KernelChoice::Debian {
                suite: suite.to_owned(),
                version,
            });
        }
        if let Some(name) = s.strip_prefix("built:") {
            if name.is_empty() || name.contains('/') {
                return Err(format!(
                    "{s}: give the name of a built kernel (`cargo xtask kernel build --bug NAME`)"
                ));
            }
            return Ok(KernelChoice::Built(name.to_owned()));
        }
        if s.is_empty() {
            return Err(
                "an empty --kernel; give a bzImage path, debian:SUITE[/VERSION] or built:NAME"
                    .into(),
            );
        }
        Ok(KernelChoice::Image {
            bzimage: PathBuf::from(s),
            modules: None,
        })
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelChoice::Image { bzimage, .. } => write!(f, "{}", bzimage.display()),
            KernelChoice::Debian {
                suite,
                version: None,
            } => write!(f, "debian:{suite}"),
            KernelChoice::Debian {
                suite,
                version: Some(v),
            } => write!(f, "debian:{suite}/{v}"),
            KernelChoice::Built(name) => write!(f, "built:{name}"),
        }
    }
}

/// A bootable kernel and, when known, its modules.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub bzimage: PathBuf,
    /// Its `lib/modules/<release>` directory.
    pub modules: Option<PathBuf>,
    /// Where it came from, for messages ("debian:bookworm: linux-image-6.1.0-57-amd64 6.1.192-3").
    pub origin: String,
}

pub fn resolve(choice: &KernelChoice) -> Result<Kernel> {
    match choice {
        KernelChoice::Debian { suite, version } => {
            let k = debian::resolve(suite, version.as_deref())?;
            Ok(Kernel {
                bzimage: k.bzimage,
                modules: Some(k.modules),
                origin: format!("{choice}: {} {}", k.package, k.version),
            })
        }
        KernelChoice::Built(name) => {
            let (bzimage, modules) = crate::kernel_build::built_kernel(name)?;
            Ok(Kernel {
                bzimage,
                modules: Some(modules),
                origin: choice.to_string(),
            })
        }
        KernelChoice::Image { bzimage, modules } => {
            let release = bzimage::check(bzimage)?;
            // A kernel of `cargo xtask kernel build` has its modules.builtin beside it.
            let modules = match modules {
                Some(m) => Some(modules_dir(m, release.as_deref())?),
                None => crate::kernel_build::modules_beside(bzimage),
            };
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
        "--modules {} is not the module tree of kernel {release}: give its lib/modules/{release}          directory",
        dir.display()
    )
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
            // Names of this process: parallel runs may extract the same kernel.
            let packed = cache.join(format!("{key}.payload.{}", std::process::id()));
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
    let tmp = cache.join(format!("{key}.vmlinux.{}", std::process::id()));
    fs::write(&tmp, &vmlinux).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &elf).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(Some(elf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_names() {
        let k = |s: &str| s.parse::<KernelChoice>();
        assert_eq!(k(DEFAULT), Ok(KernelChoice::default()));
        assert_eq!(
            k("debian:bookworm-backports/6.12.95-1~bpo12+1"),
            Ok(KernelChoice::Debian {
                suite: "bookworm-backports".into(),
                version: Some("6.12.95-1~bpo12+1".into())
            })
        );
        assert_eq!(
            k("built:hugh-2011"),
            Ok(KernelChoice::Built("hugh-2011".into()))
        );
        assert_eq!(
            k("/boot/vmlinuz-6.1"),
            Ok(KernelChoice::Image {
                bzimage: "/boot/vmlinuz-6.1".into(),
                modules: None
            })
        );
        for bad in [
            "debian:",
            "debian:Trixie",
            "debian:trixie/",
            "built:",
            "built:a/b",
            "",
        ] {
            assert!(k(bad).is_err(), "{bad}");
        }
        for s in [
            "debian:trixie-backports",
            "debian:bullseye/5.10.0-46-amd64",
            "built:x",
        ] {
            assert_eq!(k(s).map(|c| c.to_string()).as_deref(), Ok(s));
        }
        assert_eq!(
            k("debian:trixie/6.12.1-1~x").map(|c| c.slug()).as_deref(),
            Ok("debian-trixie-6.12.1-1_x")
        );
        assert!(k("debian:trixie")
            .expect("parses")
            .with_modules(Some("/m".into()))
            .is_err());
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
