//! Debian kernels by suite: `debian:SUITE` (the newest amd64 kernel of that suite) and
//! `debian:SUITE/VERSION`. apt answers with a private source list and state directory per suite,
//! so the host's own sources, lists and package cache are never read or changed. Packages are
//! checked against the SHA256 of apt's index and unpacked once per package version under the
//! kernel cache, outside the clone when the machine allows, so fresh clones (CI) reuse it.
//!
//! Two package layouts exist. Old (bullseye, bookworm): `linux-image-<release>` holds
//! `boot/vmlinuz-<release>` and `lib/modules/<release>/`. New (trixie's backports on): that
//! package is a metapackage depending on `linux-binary-<release>` (`usr/lib/modules/<release>/
//! vmlinuz`), `linux-modules-<release>` (the `.ko` files) and `linux-base-<release>` (module
//! metadata such as `modules.builtin`, which the module loader needs to skip built-in modules).
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{digest::hex, FileLock};
use crate::cmd;

/// How long apt's lists of a suite are trusted before `apt-get update` runs again.
const LISTS_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// The keyring every Debian suite is signed with (package debian-archive-keyring).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The Debian kernel flavour the guest boots.
const FLAVOUR: &str = "amd64";

/// A Debian kernel unpacked in the cache.
#[derive(Debug, Clone)]
pub struct Unpacked {
    pub bzimage: PathBuf,
    pub modules: PathBuf,
    /// `linux-image-<release>`.
    pub package: String,
    pub version: String,
}

/// Where Debian kernels and the per-suite apt state live: /var/cache/dcache-tracer when this
/// user may write there (shared by every clone on the machine), else target/vm/debian-kernels.
pub fn cache_root() -> PathBuf {
    let shared = PathBuf::from("/var/cache/dcache-tracer/debian-kernels");
    if fs::create_dir_all(&shared).is_ok() && writable(&shared) {
        shared
    } else {
        super::vm_dir().join("debian-kernels")
    }
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

/// A suite name as apt and deb.debian.org spell it: lowercase letters, then `-backports`,
/// `-updates` and the like.
pub fn check_suite(suite: &str) -> Result<()> {
    let mut parts = suite.split('-');
    let base_ok = parts
        .next()
        .is_some_and(|b| !b.is_empty() && b.bytes().all(|c| c.is_ascii_lowercase()));
    let rest_ok = parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase()));
    if base_ok && rest_ok {
        return Ok(());
    }
    bail!(
        "debian:{suite}: not a Debian suite name; use a codename such as bullseye, bookworm, \
         bookworm-backports, trixie or trixie-backports"
    )
}

/// The source list of a suite: a base suite comes with its point-release updates and security
/// archive (where its kernels are updated); a backports suite is read alone, so its newest
/// kernel is the candidate.
fn sources_list(suite: &str) -> String {
    let line = |archive: &str, s: &str| format!("deb [signed-by={KEYRING}] {archive} {s} main\n");
    let main = "http://deb.debian.org/debian";
    if suite.contains('-') {
        return line(main, suite);
    }
    let mut text = line(main, suite);
    text.push_str(&line(main, &format!("{suite}-updates")));
    text.push_str(&line(
        "http://deb.debian.org/debian-security",
        &format!("{suite}-security"),
    ));
    text
}

/// apt with the suite's private configuration.
struct Apt {
    dir: PathBuf,
    suite: String,
}

impl Apt {
    fn new(root: &Path, suite: &str) -> Result<Apt> {
        let dir = root.join("apt").join(suite);
        for d in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(d))
                .with_context(|| format!("creating {}", dir.join(d).display()))?;
        }
        let status = dir.join("status");
        if !status.exists() {
            fs::write(&status, b"").with_context(|| format!("writing {}", status.display()))?;
        }
        let list = dir.join("sources.list");
        let text = sources_list(suite);
        if fs::read_to_string(&list).ok().as_deref() != Some(text.as_str()) {
            fs::write(&list, text).with_context(|| format!("writing {}", list.display()))?;
            let _ = fs::remove_file(dir.join("updated"));
        }
        Ok(Apt {
            dir,
            suite: suite.to_owned(),
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let d = &self.dir;
        for (key, value) in [
            ("Dir::Etc::SourceList", d.join("sources.list")),
            ("Dir::Etc::SourceParts", PathBuf::from("/nonexistent")),
            ("Dir::State::Lists", d.join("lists")),
            ("Dir::State::status", d.join("status")),
            ("Dir::Cache", d.join("cache")),
            ("APT::Architectures", PathBuf::from(FLAVOUR)),
            // The private state is ours; apt's system lock and its sandbox user are not needed
            // (the sandbox user could not write into our directories anyway).
            ("Debug::NoLocking", PathBuf::from("1")),
            ("APT::Sandbox::User", PathBuf::from("root")),
        ] {
            c.arg("-o").arg(format!("{key}={}", value.display()));
        }
        c.env("DEBIAN_FRONTEND", "noninteractive");
        c
    }

    /// When the suite's lists were last fetched.
    fn lists_fetched(&self) -> Option<SystemTime> {
        fs::metadata(self.dir.join("updated"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Whether the lists are younger than [`LISTS_MAX_AGE`], so [`Apt::update`] does nothing.
    fn lists_fresh(&self) -> bool {
        self.lists_fetched()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|a| a < LISTS_MAX_AGE)
    }

    /// Fetches the suite's lists when they are missing or older than [`LISTS_MAX_AGE`]; with
    /// old lists and no network, goes on with the old lists.
    fn update(&self) -> Result<()> {
        let stamp = self.dir.join("updated");
        let age = self
            .lists_fetched()
            .and_then(|t| SystemTime::now().duration_since(t).ok());
        if age.is_some_and(|a| a < LISTS_MAX_AGE) {
            return Ok(());
        }
        eprintln!("kernel: apt-get update for debian:{}", self.suite);
        let r = cmd::output(self.command("apt-get").args(["update", "-qq"]));
        match (r, age) {
            (Ok(_), _) => {
                fs::write(&stamp, b"").with_context(|| format!("writing {}", stamp.display()))
            }
            (Err(e), Some(_)) => {
                eprintln!(
                    "kernel: warning: could not refresh debian:{}'s package lists ({e:#}); \
                     using the old ones",
                    self.suite
                );
                Ok(())
            }
            (Err(e), None) => Err(e).with_context(|| {
                format!(
                    "fetching the package lists of debian:{} from deb.debian.org (is the suite \
                     name right, and is the network up?)",
                    self.suite
                )
            }),
        }
    }

    /// `apt-cache show` of one version of a package; None when apt does not know it.
    fn show(&self, spec: &str) -> Result<Option<Stanza>> {
        let out = self
            .command("apt-cache")
            .args(["show", "--no-all-versions", spec])
            .stdin(std::process::Stdio::null())
            .output()
            .context("running apt-cache")?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Stanza::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Every version of every kernel image package of the flavour, as (package, version).
    fn images(&self) -> Result<Vec<(String, String)>> {
        let out = cmd::output(
            self.command("apt-cache")
                .args(["madison", &format!("^linux-image-.*-{FLAVOUR}$")]),
        )
        .context("listing the suite's kernel packages")?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut f = l.split('|').map(str::trim);
                Some((f.next()?.to_owned(), f.next()?.to_owned()))
            })
            .collect())
    }
}

/// What `debian:SUITE[/VERSION]` resolved to, remembered per suite and version asked for, so
/// a run with fresh lists and the kernel unpacked asks apt nothing: each `apt-cache` call
/// rebuilds apt's cache from the lists, about a CPU-second.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolution {
    package: String,
    version: String,
    release: String,
}

impl Resolution {
    fn file(apt: &Apt, version: Option<&str>) -> PathBuf {
        let key = version.map_or_else(|| "newest".to_owned(), |v| format!("v-{v}"));
        apt.dir.join("resolved").join(key.replace(['/', ':'], "_"))
    }

    /// The remembered resolution, when it was made from the lists apt has now and those lists
    /// are fresh (else apt must look again).
    fn load(apt: &Apt, version: Option<&str>) -> Option<Resolution> {
        let path = Resolution::file(apt, version);
        let written = fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if !apt.lists_fresh() || apt.lists_fetched().is_none_or(|f| written < f) {
            return None;
        }
        Resolution::parse(&fs::read_to_string(path).ok()?)
    }

    fn parse(text: &str) -> Option<Resolution> {
        let mut f = text.trim_end().split('\t');
        let r = Resolution {
            package: f.next()?.to_owned(),
            version: f.next()?.to_owned(),
            release: f.next()?.to_owned(),
        };
        f.next().is_none().then_some(r)
    }

    fn save(&self, apt: &Apt, version: Option<&str>) -> Result<()> {
        let path = Resolution::file(apt, version);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = format!("{}\t{}\t{}\n", self.package, self.version, self.release);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Where the kernel is unpacked.
    fn dir(&self, root: &Path) -> PathBuf {
        root.join(format!(
            "{}_{}",
            self.package,
            self.version.replace([':', '/'], "_")
        ))
    }
}

/// The fields of one package stanza that resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stanza {
    package: String,
    version: String,
    sha256: String,
    /// (name, exact version) of each `name (= version)` dependency.
    pinned_depends: Vec<(String, String)>,
}

impl Stanza {
    fn parse(text: &str) -> Option<Stanza> {
        let field = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')
                    .map(|v| v.trim().to_owned())
            })
        };
        let pinned_depends = field("Depends")
            .unwrap_or_default()
            .split(',')
            .filter_map(|d| {
                let (name, rest) = d.trim().split_once(' ')?;
                let version = rest.trim().strip_prefix("(=")?.strip_suffix(')')?.trim();
                Some((name.to_owned(), version.to_owned()))
            })
            .collect();
        Some(Stanza {
            package: field("Package")?,
            version: field("Version")?,
            sha256: field("SHA256")?,
            pinned_depends,
        })
    }

    /// Whether this is the stanza of `package` at `version`.
    fn is(&self, package: &str, version: &str) -> bool {
        self.package == package && self.version == version
    }

    /// The `linux-image-<release>` this metapackage stands for.
    fn image_dependency(&self) -> Option<&(String, String)> {
        self.pinned_depends.iter().find(|(n, _)| {
            n.strip_prefix("linux-image-")
                .is_some_and(|r| r.ends_with(&format!("-{FLAVOUR}")) && r != FLAVOUR)
        })
    }
}

/// The packages holding one kernel: the image package and, in the new layout, the three it
/// depends on.
fn kernel_packages(image: &Stanza) -> Result<(String, Vec<(String, String)>)> {
    let release = image
        .package
        .strip_prefix("linux-image-")
        .with_context(|| format!("{} is not a kernel image package", image.package))?
        .to_owned();
    let mut packages = vec![(image.package.clone(), image.version.clone())];
    for part in ["binary", "modules", "base"] {
        let name = format!("linux-{part}-{release}");
        if let Some(dep) = image.pinned_depends.iter().find(|(n, _)| *n == name) {
            packages.push(dep.clone());
        }
    }
    Ok((release, packages))
}

/// The image package of `suite` for `version`: none given, the one `linux-image-amd64` depends
/// on; else a package version (`6.1.112-1`) or a release (`6.1.0-26-amd64`, `6.1.0-26`).
fn image_stanza(apt: &Apt, suite: &str, version: Option<&str>) -> Result<Stanza> {
    let meta = format!("linux-image-{FLAVOUR}");
    let Some(v) = version else {
        let m = apt
            .show(&meta)?
            .with_context(|| format!("debian:{suite} has no {meta}"))?;
        let (p, v) = m
            .image_dependency()
            .with_context(|| format!("{meta} {} names no kernel image package", m.version))?;
        return apt
            .show(&format!("{p}={v}"))?
            .with_context(|| format!("debian:{suite} lists {p} {v} but apt cannot show it"));
    };
    for candidate in [
        format!("linux-image-{v}"),
        format!("linux-image-{v}-{FLAVOUR}"),
    ] {
        if let Some(s) = apt.show(&candidate)? {
            if s.package.ends_with(&format!("-{FLAVOUR}")) {
                return Ok(s);
            }
        }
    }
    let images = apt.images()?;
    if let Some((p, v)) = images
        .iter()
        .find(|(p, pv)| pv == v && p != &meta && !p.contains("-dbg"))
    {
        if let Some(s) = apt.show(&format!("{p}={v}"))? {
            return Ok(s);
        }
    }
    let mut known: Vec<String> = images
        .iter()
        .filter(|(p, _)| p != &meta && !p.ends_with("-dbg"))
        .map(|(p, v)| format!("{} ({v})", p.trim_start_matches("linux-image-")))
        .collect();
    known.sort();
    known.dedup();
    bail!(
        "debian:{suite}/{v}: no amd64 kernel with that version or release in {suite}; it has: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// Resolves `debian:SUITE[/VERSION]`, downloading and unpacking the kernel when the cache does
/// not hold that version yet.
pub fn resolve(suite: &str, version: Option<&str>) -> Result<Unpacked> {
    check_suite(suite)?;
    if !cmd::on_path("apt-get") || !cmd::on_path("dpkg-deb") {
        bail!(
            "debian:{suite} needs apt-get and dpkg-deb to fetch the kernel; on a host without \
             them give --kernel PATH (a bzImage with BTF and kprobes) and --modules DIR"
        );
    }
    let root = cache_root();
    // One resolver at a time per cache: parallel runs (the matrix, other clones) share it.
    let _lock = FileLock::take(&root.join("lock"), "a kernel download")?;
    let apt = Apt::new(&root, suite)?;
    if let Some(r) = Resolution::load(&apt, version) {
        let dir = r.dir(&root);
        if dir.join(".complete").is_file() {
            if let Ok((bzimage, modules)) = layout(&dir, &r.release) {
                return Ok(Unpacked {
                    bzimage,
                    modules,
                    package: r.package,
                    version: r.version,
                });
            }
        }
    }
    apt.update()?;
    let image = image_stanza(&apt, suite, version)?;
    let (release, packages) = kernel_packages(&image)?;
    let resolution = Resolution {
        package: image.package.clone(),
        version: image.version.clone(),
        release,
    };
    let dir = resolution.dir(&root);
    let stamp = dir.join(".complete");
    let manifest: String = packages.iter().map(|(p, v)| format!("{p} {v}\n")).collect();
    if fs::read_to_string(&stamp).ok().as_deref() != Some(manifest.as_str()) {
        fetch(&apt, &image, &packages, &root, &dir)?;
        fs::write(&stamp, &manifest).with_context(|| format!("writing {}", stamp.display()))?;
    }
    let (bzimage, modules) = layout(&dir, &resolution.release)?;
    resolution.save(&apt, version)?;
    Ok(Unpacked {
        bzimage,
        modules,
        package: resolution.package,
        version: resolution.version,
    })
}

/// The kernel image and module tree in an unpacked kernel, whichever layout it has.
fn layout(dir: &Path, release: &str) -> Result<(PathBuf, PathBuf)> {
    let old = dir.join("boot").join(format!("vmlinuz-{release}"));
    let new = dir.join("usr/lib/modules").join(release).join("vmlinuz");
    let bzimage = [old, new]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no boot/vmlinuz-{release} nor usr/lib/modules/{release}/vmlinuz in {}; remove \
                 that directory to fetch it again",
                dir.display()
            )
        })?;
    let modules = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|m| dir.join(m).join(release))
        .find(|p| p.join("kernel").is_dir())
        .with_context(|| {
            format!(
                "no lib/modules/{release}/kernel in {}; remove that directory to fetch it again",
                dir.display()
            )
        })?;
    Ok((bzimage, modules))
}

/// Downloads `packages`, checks each against apt's SHA256 and unpacks them together into `dest`.
/// `image` is the image package's stanza, which resolution read already: only the others are
/// asked for (each `apt-cache` call rebuilds apt's cache, about a CPU-second).
fn fetch(
    apt: &Apt,
    image: &Stanza,
    packages: &[(String, String)],
    root: &Path,
    dest: &Path,
) -> Result<()> {
    let names: Vec<String> = packages.iter().map(|(p, v)| format!("{p}={v}")).collect();
    eprintln!(
        "kernel: downloading {} (once; cached in {})",
        names.join(" "),
        dest.display()
    );
    let dl = root.join(format!("download.{}", std::process::id()));
    let tmp = dest.with_extension("partial");
    let _ = fs::remove_dir_all(&dl);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&dl).with_context(|| format!("creating {}", dl.display()))?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = (|| {
        cmd::output(
            apt.command("apt-get")
                .current_dir(&dl)
                .arg("download")
                .args(&names),
        )
        .with_context(|| format!("downloading {}", names.join(" ")))?;
        for ((package, version), spec) in packages.iter().zip(&names) {
            let shown;
            let stanza = if image.is(package, version) {
                image
            } else {
                shown = apt
                    .show(spec)?
                    .with_context(|| format!("apt no longer knows {spec}"))?;
                &shown
            };
            let deb = fs::read_dir(&dl)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.file_name().is_some_and(|n| {
                        n.to_string_lossy()
                            .starts_with(&format!("{}_", stanza.package))
                    })
                })
                .with_context(|| format!("apt-get download left no .deb for {spec}"))?;
            let bytes = fs::read(&deb).with_context(|| format!("reading {}", deb.display()))?;
            let got = hex(&Sha256::digest(&bytes));
            if got != stanza.sha256 {
                bail!(
                    "{} has SHA256 {got}, apt's index says {}; try again (a mirror in the middle \
                     of an update), or delete {} to refetch the lists",
                    deb.display(),
                    stanza.sha256,
                    apt.dir.join("updated").display()
                );
            }
            cmd::output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp))
                .with_context(|| format!("unpacking {}", deb.display()))?;
        }
        let _ = fs::remove_dir_all(dest);
        fs::rename(&tmp, dest).with_context(|| format!("renaming {}", tmp.display()))
    })();
    let _ = fs::remove_dir_all(&dl);
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stanzas_and_pinned_dependencies() {
        let meta = "Package: linux-image-amd64\nVersion: 7.3.4-1~bpo13+1\nDepends: \
                    linux-base-amd64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-amd64 (= \
                    7.3.4-1~bpo13+1), linux-modules-amd64 (= 7.3.4-1~bpo13+1)\nSHA256: ab\n";
        let s = Stanza::parse(meta).expect("stanza");
        assert_eq!(s.version, "7.3.4-1~bpo13+1");
        assert_eq!(
            s.image_dependency(),
            Some(&(
                "linux-image-7.3.4+deb13-amd64".to_owned(),
                "7.3.4-1~bpo13+1".to_owned()
            ))
        );
        let old = "Package: linux-image-amd64\nVersion: 6.1.192-3\nDepends: \
                   linux-image-6.1.0-57-amd64 (= 6.1.192-3)\nSHA256: cd\n";
        let s = Stanza::parse(old).expect("stanza");
        assert_eq!(
            s.image_dependency().map(|d| d.0.as_str()),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(Stanza::parse("Package: x\nVersion: 1\n"), None);
    }

    #[test]
    fn lists_the_packages_of_both_layouts() {
        let new = Stanza::parse(
            "Package: linux-image-7.3.4+deb13-amd64\nVersion: 7.3.4-1~bpo13+1\nDepends: dracut \
             | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, \
             linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 \
             (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)\nSHA256: \
             ef\n",
        )
        .expect("stanza");
        let (release, pkgs) = kernel_packages(&new).expect("packages");
        assert_eq!(release, "7.3.4+deb13-amd64");
        let names: Vec<&str> = pkgs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "linux-image-7.3.4+deb13-amd64",
                "linux-binary-7.3.4+deb13-amd64",
                "linux-modules-7.3.4+deb13-amd64",
                "linux-base-7.3.4+deb13-amd64"
            ]
        );
        // fetch asks apt only for the stanzas resolution has not read: all but the image's.
        let asked: Vec<&str> = pkgs
            .iter()
            .filter(|(p, v)| !new.is(p, v))
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(asked, names[1..]);
        assert!(!new.is("linux-image-7.3.4+deb13-amd64", "7.3.4-1"));
        let old = Stanza::parse(
            "Package: linux-image-5.10.0-46-amd64\nVersion: 5.10.262-1\nDepends: kmod, \
             linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool\n\
             SHA256: 01\n",
        )
        .expect("stanza");
        let (release, pkgs) = kernel_packages(&old).expect("packages");
        assert_eq!(release, "5.10.0-46-amd64");
        assert_eq!(pkgs.len(), 1);
        assert!(old.is(&pkgs[0].0, &pkgs[0].1));
    }

    #[test]
    fn finds_image_and_modules_in_both_layouts() {
        let d = std::env::temp_dir().join(format!("xtask-debian-layout-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let old = d.join("old");
        fs::create_dir_all(old.join("boot")).expect("mkdir");
        fs::create_dir_all(old.join("lib/modules/6.1.0-9-amd64/kernel")).expect("mkdir");
        fs::write(old.join("boot/vmlinuz-6.1.0-9-amd64"), b"k").expect("write");
        let (k, m) = layout(&old, "6.1.0-9-amd64").expect("old layout");
        assert!(k.ends_with("boot/vmlinuz-6.1.0-9-amd64"));
        assert!(m.ends_with("lib/modules/6.1.0-9-amd64"));
        let new = d.join("new");
        let tree = new.join("usr/lib/modules/7.3.4+deb13-amd64");
        fs::create_dir_all(tree.join("kernel")).expect("mkdir");
        fs::write(tree.join("vmlinuz"), b"k").expect("write");
        let (k, m) = layout(&new, "7.3.4+deb13-amd64").expect("new layout");
        assert_eq!((k, m), (tree.join("vmlinuz"), tree.clone()));
        let err = layout(&new, "7.3.5+deb13-amd64").expect_err("other release");
        assert!(format!("{err}").contains("remove that directory"), "{err}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn remembers_a_resolution_while_the_lists_stay_the_same() {
        let d = std::env::temp_dir().join(format!("xtask-debian-resolved-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let apt = Apt::new(&d, "bookworm").expect("apt dir");
        let r = Resolution {
            package: "linux-image-6.1.0-9-amd64".into(),
            version: "6.1.27-1".into(),
            release: "6.1.0-9-amd64".into(),
        };
        let stamp = apt.dir.join("updated");
        let set_fetched = |ago: Duration| {
            let f = fs::File::create(&stamp).expect("stamp");
            f.set_modified(SystemTime::now() - ago).expect("mtime");
        };
        r.save(&apt, None).expect("save");
        assert_eq!(Resolution::load(&apt, None), None, "lists never fetched");
        set_fetched(Duration::from_secs(60));
        r.save(&apt, None).expect("save");
        assert_eq!(Resolution::load(&apt, None), Some(r.clone()));
        assert_eq!(
            Resolution::load(&apt, Some("6.1.27-1")),
            None,
            "another version"
        );
        set_fetched(Duration::ZERO);
        let f = fs::File::options()
            .write(true)
            .open(Resolution::file(&apt, None))
            .expect("resolution file");
        f.set_modified(SystemTime::now() - Duration::from_secs(5))
            .expect("mtime");
        assert_eq!(Resolution::load(&apt, None), None, "lists fetched since");
        set_fetched(LISTS_MAX_AGE + Duration::from_secs(60));
        r.save(&apt, None).expect("save");
        assert_eq!(Resolution::load(&apt, None), None, "lists too old");
        assert_eq!(
            r.dir(&d),
            d.join("linux-image-6.1.0-9-amd64_6.1.27-1"),
            "the directory resolve() unpacks into"
        );
        assert_eq!(Resolution::parse("a\tb\n"), None);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn suites_are_checked_and_listed() {
        for ok in ["bullseye", "bookworm-backports", "trixie"] {
            check_suite(ok).expect(ok);
        }
        for bad in ["", "Bookworm", "bookworm/", "../x", "bookworm-"] {
            assert!(check_suite(bad).is_err(), "{bad}");
        }
        let base = sources_list("bookworm");
        assert!(base.contains(" bookworm main\n") && base.contains("bookworm-security main"));
        assert!(base.contains("signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"));
        assert_eq!(sources_list("trixie-backports").lines().count(), 1);
    }
}
