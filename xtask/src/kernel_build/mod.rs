//! `cargo xtask kernel build`: x86_64 kernels built from Debian's own `linux-source-6.1`
//! (apt; the same version as the default linux-image-amd64) with the project's config fragment
//! (kernel-bugs/kernel.config over `make tinyconfig`), unpatched, with a catalogue bug, or with
//! a kernel developer's own patch.
//!
//! Layout of the cache (outside the clone, so a fresh clone finds its kernels):
//! `<version>/src` the unpacked source, patched in place with the patch recorded in
//! `<version>/applied.patch`; `<version>/build` its one build tree (`make O=`), so switching
//! patches rebuilds only the files they touch; `<version>/build.log` the last make's output;
//! `images/<name>-<key>/` one finished kernel per content key (source version, config
//! fragment, patch): `bzImage`, `config`, `build.json` and `modules/<release>/` holding the
//! build's `modules.builtin*` (what the VM harness reads to know ext4 and loop are built in).
mod catalogue;
pub mod detect;

use std::{
    fs,
    io::{BufRead, BufReader, IsTerminal, Write},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

pub use catalogue::{AnomalyKind, Bug, Expectation, Window, DELAY_PARAM};

use crate::{cmd, setup};

/// Debian's source package; its version names the source tree.
const SOURCE_PACKAGE: &str = "linux-source-6.1";
/// Where the package puts its tarball, and the directory inside it.
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
const TARBALL_DIR: &str = "linux-source-6.1";
/// What building needs besides the source (dwarves: pahole, for BTF; patch: the catalogue).
const BUILD_DEPS: [&str; 9] = [
    "build-essential",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "dwarves",
    "xz-utils",
    "patch",
];
/// Bumped when the layout of an image directory or the build steps change.
const FORMAT: &str = "dcache-tracer kernel image 1";

/// Where kernels are built and kept; `DCACHE_TRACER_KERNELS` overrides it.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("DCACHE_TRACER_KERNELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/dcache-tracer/kernels"))
}

#[derive(clap::Args)]
pub struct KernelArgs {
    #[command(subcommand)]
    cmd: KernelCmd,
}

#[derive(clap::Subcommand)]
enum KernelCmd {
    /// Build (or find in the cache) a kernel from Debian's linux-source-6.1 with the project's
    /// config; prints the bzImage's path. Boot it with `cargo xtask run --kernel PATH`.
    Build {
        /// Apply this catalogue bug (kernel-bugs/<NAME>/patch).
        #[arg(long, value_enum, value_name = "NAME", conflicts_with = "patch")]
        bug: Option<Bug>,
        /// Apply your own patch (`patch -p1` from the top of the kernel source).
        #[arg(long, value_name = "FILE")]
        patch: Option<PathBuf>,
    },
}

pub fn kernel(args: KernelArgs) -> Result<i32> {
    match args.cmd {
        KernelCmd::Build { bug, patch } => {
            let variant = match (bug, patch) {
                (Some(b), _) => Variant::Bug(b),
                (None, Some(p)) => Variant::Patch(p),
                (None, None) => Variant::Unpatched,
            };
            let built = build(&variant)?;
            eprintln!(
                "kernel: {} ({}), modules.builtin in {}",
                variant.label(),
                built.release,
                built.modules.display()
            );
            println!("{}", built.bzimage.display());
            Ok(0)
        }
    }
}

/// What goes into the source before it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Unpatched,
    Bug(Bug),
    Patch(PathBuf),
}

impl Variant {
    /// `unpatched`, the bug's name, or `patch:FILE`.
    pub fn label(&self) -> String {
        match self {
            Variant::Unpatched => "unpatched".into(),
            Variant::Bug(b) => b.name().into(),
            Variant::Patch(p) => format!("patch:{}", p.display()),
        }
    }

    /// The patch's bytes (None: unpatched).
    fn patch_bytes(&self) -> Result<Option<Vec<u8>>> {
        let path = match self {
            Variant::Unpatched => return Ok(None),
            Variant::Bug(b) => b.patch(),
            Variant::Patch(p) => p.clone(),
        };
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.is_empty() {
            bail!(
                "{} is empty: give a patch in `diff -u` form",
                path.display()
            );
        }
        Ok(Some(bytes))
    }

    /// The image directory's name before its key.
    fn dir_name(&self) -> &str {
        match self {
            Variant::Unpatched => "unpatched",
            Variant::Bug(b) => b.name(),
            Variant::Patch(_) => "patch",
        }
    }
}

/// A finished kernel.
#[derive(Clone, Debug)]
pub struct Built {
    pub bzimage: PathBuf,
    /// `modules/<release>`: the build's modules.builtin, for the VM harness.
    pub modules: PathBuf,
    pub release: String,
    /// Found in the cache rather than built now.
    pub cached: bool,
    /// How long make ran (zero when cached).
    pub build_time: Duration,
}

/// `built:NAME` for the VM harness: `unpatched` or a catalogue bug's name; built on first use.
/// Returns the bzImage and its modules directory.
pub fn built_kernel(name: &str) -> Result<(PathBuf, PathBuf)> {
    let variant = if name == "unpatched" {
        Variant::Unpatched
    } else {
        match Bug::named(name) {
            Some(b) => Variant::Bug(b),
            None => bail!(
                "no built kernel called {name:?}; known: unpatched, {}",
                Bug::ALL.map(Bug::name).join(", ")
            ),
        }
    };
    let b = build(&variant)?;
    Ok((b.bzimage, b.modules))
}

/// The modules directory an image directory of this cache holds next to its bzImage, so a
/// self-built kernel boots with no `--modules`.
pub fn modules_beside(bzimage: &Path) -> Option<PathBuf> {
    let dir = bzimage.parent()?.join("modules");
    let mut entries = fs::read_dir(&dir).ok()?.filter_map(|e| e.ok());
    let only = entries.next()?.path();
    (entries.next().is_none() && only.join("modules.builtin").is_file()).then_some(only)
}

/// Builds `variant` unless the cache has it.
pub fn build(variant: &Variant) -> Result<Built> {
    let patch = variant.patch_bytes()?;
    let fragment_path = catalogue::config_fragment();
    let fragment = fs::read_to_string(&fragment_path)
        .with_context(|| format!("reading {}", fragment_path.display()))?;
    setup::ensure_packages(&[SOURCE_PACKAGE], setup::is_root())?;
    setup::ensure_packages(&BUILD_DEPS, setup::is_root())?;
    let version = source_version()?;

    let key = content_key(&version, &fragment, patch.as_deref());
    let image_dir =
        cache_dir()
            .join("images")
            .join(format!("{}-{}", variant.dir_name(), &key[..16]));
    if let Some(b) = find_image(&image_dir) {
        return Ok(b);
    }

    let tree = cache_dir().join(&version);
    fs::create_dir_all(&tree).with_context(|| format!("creating {}", tree.display()))?;
    let _lock = TreeLock::take(&tree)?;
    // Another build may have made it while this one waited for the lock.
    if let Some(b) = find_image(&image_dir) {
        return Ok(b);
    }
    let src = unpack(&tree)?;
    configure(&tree, &src, &fragment)?;
    apply_patch(&tree, &src, patch.as_deref(), variant)?;
    eprintln!(
        "kernel: building {} from {SOURCE_PACKAGE} {version} in {}",
        variant.label(),
        tree.join("build").display()
    );
    let build_time = make(&tree, &src)?;
    let release = cmd::output(make_cmd(&tree, &src).args(["-s", "kernelrelease"]))?
        .trim()
        .to_string();
    install(&tree, &image_dir, &release, variant, &version, build_time)?;
    eprintln!(
        "kernel: built {} in {:.0}s",
        variant.label(),
        build_time.as_secs_f64()
    );
    let mut b = find_image(&image_dir)
        .with_context(|| format!("{} is incomplete right after install", image_dir.display()))?;
    b.cached = false;
    b.build_time = build_time;
    Ok(b)
}

fn content_key(version: &str, fragment: &str, patch: Option<&[u8]>) -> String {
    let mut h = Sha256::new();
    for part in [FORMAT.as_bytes(), version.as_bytes(), fragment.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    match patch {
        Some(p) => {
            h.update([1]);
            h.update(p);
        }
        None => h.update([0]),
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn find_image(dir: &Path) -> Option<Built> {
    let bzimage = dir.join("bzImage");
    if !bzimage.is_file() || !dir.join("build.json").is_file() {
        return None;
    }
    let modules = modules_beside(&bzimage)?;
    let release = modules.file_name()?.to_string_lossy().into_owned();
    Some(Built {
        bzimage,
        modules,
        release,
        cached: true,
        build_time: Duration::ZERO,
    })
}

fn source_version() -> Result<String> {
    let v = cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Version}", SOURCE_PACKAGE]))?;
    let v = v.trim();
    if v.is_empty() || v.contains('/') {
        bail!("dpkg-query gave no usable version of {SOURCE_PACKAGE}: {v:?}");
    }
    Ok(v.to_string())
}

/// `<tree>/src`, unpacked from the package's tarball the first time.
fn unpack(tree: &Path) -> Result<PathBuf> {
    let src = tree.join("src");
    if src.join("Makefile").is_file() {
        return Ok(src);
    }
    let tmp = tree.join("unpacking");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    eprintln!("kernel: unpacking {TARBALL}");
    cmd::run(
        Command::new("tar")
            .arg("-xf")
            .arg(TARBALL)
            .arg("-C")
            .arg(&tmp),
    )?;
    let _ = fs::remove_dir_all(&src);
    let _ = fs::remove_file(tree.join("applied.patch"));
    fs::rename(tmp.join(TARBALL_DIR), &src)
        .with_context(|| format!("{TARBALL} holds no {TARBALL_DIR}/"))?;
    let _ = fs::remove_dir_all(&tmp);
    Ok(src)
}

/// `make -C <src> O=<tree>/build`
fn make_cmd(tree: &Path, src: &Path) -> Command {
    let mut c = Command::new("make");
    c.arg("-C")
        .arg(src)
        .arg(format!("O={}", tree.join("build").display()));
    c
}

/// `make tinyconfig`, the fragment merged over it, `make olddefconfig`; every line of the
/// fragment must survive (a dependency left off silently drops an option). Redone only when
/// the fragment changed.
fn configure(tree: &Path, src: &Path, fragment: &str) -> Result<()> {
    let build = tree.join("build");
    let stamp_path = tree.join("config.sha256");
    let stamp = content_key("", fragment, None);
    if build.join(".config").is_file()
        && fs::read_to_string(&stamp_path).is_ok_and(|s| s.trim() == stamp)
    {
        return Ok(());
    }
    eprintln!("kernel: configuring (tinyconfig + kernel-bugs/kernel.config)");
    fs::create_dir_all(&build).with_context(|| format!("creating {}", build.display()))?;
    let frag_copy = tree.join("fragment.config");
    fs::write(&frag_copy, fragment).with_context(|| format!("writing {}", frag_copy.display()))?;
    cmd::output(make_cmd(tree, src).arg("tinyconfig"))?;
    cmd::output(
        Command::new(src.join("scripts/kconfig/merge_config.sh"))
            .current_dir(src)
            .arg("-m")
            .arg("-O")
            .arg(&build)
            .arg(build.join(".config"))
            .arg(&frag_copy),
    )?;
    cmd::output(make_cmd(tree, src).arg("olddefconfig"))?;
    let config = fs::read_to_string(build.join(".config"))
        .with_context(|| format!("reading {}", build.join(".config").display()))?;
    let missing = missing_options(fragment, &config);
    if !missing.is_empty() {
        bail!(
            "after `make olddefconfig` the kernel config lacks {} (an option it depends on is \
             off): add the dependency to {}",
            missing.join(", "),
            catalogue::config_fragment().display()
        );
    }
    fs::write(&stamp_path, &stamp).with_context(|| format!("writing {}", stamp_path.display()))?;
    Ok(())
}

/// The fragment's `CONFIG_X=...` lines that the final config does not hold as written.
fn missing_options(fragment: &str, config: &str) -> Vec<String> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_"))
        .filter(|l| !config.lines().any(|c| c.trim() == *l))
        .map(String::from)
        .collect()
}

/// Puts the source in the state `patch` asks for: takes back the patch it holds (if another),
/// then applies the new one, recording it in `<tree>/applied.patch`. The files either patch
/// touches get new timestamps, so make rebuilds exactly those.
fn apply_patch(tree: &Path, src: &Path, patch: Option<&[u8]>, variant: &Variant) -> Result<()> {
    let applied_path = tree.join("applied.patch");
    let applied = fs::read(&applied_path).ok();
    if applied.as_deref() == patch {
        return Ok(());
    }
    if applied.is_some() {
        let out = Command::new("patch")
            .args(["-R", "-p1", "-s", "-f", "-i"])
            .arg(&applied_path)
            .current_dir(src)
            .output()
            .context("cannot start patch")?;
        if !out.status.success() {
            bail!(
                "the source in {} does not take back the patch it holds ({}); delete that \
                 directory and it is unpacked again",
                src.display(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        fs::remove_file(&applied_path)
            .with_context(|| format!("removing {}", applied_path.display()))?;
    }
    let Some(patch) = patch else {
        return Ok(());
    };
    let pending = tree.join("pending.patch");
    fs::write(&pending, patch).with_context(|| format!("writing {}", pending.display()))?;
    for dry in [true, false] {
        let mut c = Command::new("patch");
        c.args(["-p1", "-s", "-f", "--forward", "-i"])
            .arg(&pending)
            .current_dir(src);
        if dry {
            c.arg("--dry-run");
        }
        let out = c.output().context("cannot start patch")?;
        if !out.status.success() {
            bail!(
                "{} does not apply to {SOURCE_PACKAGE} (patch -p1 from the top of the source): {}",
                variant.label(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
    }
    fs::rename(&pending, &applied_path)
        .with_context(|| format!("writing {}", applied_path.display()))?;
    Ok(())
}

/// The build stage a line of make's output belongs to, and whether it compiled an object.
fn classify_line(line: &str) -> Option<(&'static str, bool)> {
    let mut words = line.split_whitespace();
    let tool = words.next()?;
    let target = words.next().unwrap_or("");
    let stage = match tool {
        "CC" | "AS" => return Some(("compile", true)),
        "BTF" | "BTFIDS" | "PAHOLE" => "btf",
        "KSYMS" | "KSYM" | "SYSMAP" => "kallsyms",
        "MODPOST" => "modules",
        "LD" if target == "[M]" => "modules",
        "LD" | "AR" if target.starts_with("arch/x86/boot") => "image",
        "LD" | "AR" if target.contains("vmlinux") => "link",
        "LD" | "AR" => "compile",
        "BUILD" | "OBJCOPY" | "GZIP" | "MKPIGGY" | "VOFFSET" | "ZOFFSET" | "CPUSTR" => "image",
        "HOSTCC" | "HOSTLD" | "SYNC" | "GEN" | "UPD" | "SYSHDR" | "SYSTBL" | "WRAP" | "CALL"
        | "CHK" | "HYPERCALLS" | "DESCEND" | "MKELF" => "prepare",
        _ => return None,
    };
    Some((stage, false))
}

/// Runs make with a progress line (stage, objects compiled, elapsed) and the whole output in
/// `<tree>/build.log`; on failure, the log's tail.
fn make(tree: &Path, src: &Path) -> Result<Duration> {
    let log_path = tree.join("build.log");
    let mut log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut c = make_cmd(tree, src);
    c.arg(format!("-j{jobs}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(
            log.try_clone()
                .context("duplicating the log's descriptor")?,
        );
    let t0 = Instant::now();
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot start `{}`", cmd::show(&c)))?;
    let stdout = child.stdout.take().context("make's stdout")?;
    let tty = std::io::stderr().is_terminal();
    let total = fs::read_to_string(tree.join("objects-cold"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut stage = "prepare";
    let mut objects = 0u64;
    let mut last_print = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading make's output")?;
        let _ = writeln!(log, "{line}");
        let Some((s, object)) = classify_line(&line) else {
            continue;
        };
        let changed = s != stage;
        stage = s;
        objects += u64::from(object);
        if tty || changed || last_print.elapsed() >= Duration::from_secs(20) {
            let of = total
                .filter(|&t| t > 0)
                .map(|t| format!("/{t}"))
                .unwrap_or_default();
            let msg = format!(
                "kernel: [{stage}] {objects}{of} objects compiled, {:.0}s",
                t0.elapsed().as_secs_f64()
            );
            if tty {
                eprint!("\r{msg:<70}");
            } else {
                eprintln!("{msg}");
            }
            last_print = Instant::now();
        }
    }
    if tty {
        eprintln!();
    }
    let status = child.wait().context("waiting for make")?;
    let elapsed = t0.elapsed();
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
        bail!(
            "the kernel build failed ({status}); whole log: {}",
            log_path.display()
        );
    }
    // A cold build's object count is the denominator of the next progress lines.
    if objects > 0 && total.is_none_or(|t| objects > t / 2) {
        let _ = fs::write(tree.join("objects-cold"), objects.to_string());
    }
    Ok(elapsed)
}

/// Copies the build's results into `image_dir` (through a temporary directory, so a
/// half-written image is never found).
fn install(
    tree: &Path,
    image_dir: &Path,
    release: &str,
    variant: &Variant,
    version: &str,
    build_time: Duration,
) -> Result<()> {
    let build = tree.join("build");
    let tmp = image_dir.with_extension("partial");
    let _ = fs::remove_dir_all(&tmp);
    let modules = tmp.join("modules").join(release);
    fs::create_dir_all(&modules).with_context(|| format!("creating {}", modules.display()))?;
    let copies = [
        (build.join("arch/x86/boot/bzImage"), tmp.join("bzImage")),
        (build.join(".config"), tmp.join("config")),
        (
            build.join("modules.builtin"),
            modules.join("modules.builtin"),
        ),
        (
            build.join("modules.builtin.modinfo"),
            modules.join("modules.builtin.modinfo"),
        ),
    ];
    for (from, to) in &copies {
        fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let meta = serde_json::json!({
        "variant": variant.label(),
        "source": format!("{SOURCE_PACKAGE} {version}"),
        "release": release,
        "build_seconds": build_time.as_secs_f64(),
    });
    fs::write(tmp.join("build.json"), format!("{meta:#}\n"))
        .with_context(|| format!("writing {}", tmp.join("build.json").display()))?;
    let _ = fs::remove_dir_all(image_dir);
    fs::rename(&tmp, image_dir).with_context(|| format!("creating {}", image_dir.display()))?;
    Ok(())
}

/// One build per source tree at a time.
struct TreeLock {
    _file: fs::File,
}

impl TreeLock {
    fn take(tree: &Path) -> Result<TreeLock> {
        let path = tree.join("lock");
        let f = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let flock = |op| {
            // SAFETY: flock(2) on a descriptor this function owns; no memory is shared.
            unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
        };
        if !flock(libc::LOCK_EX | libc::LOCK_NB) {
            eprintln!("kernel: waiting for another build in {}", tree.display());
            if !flock(libc::LOCK_EX) {
                bail!(
                    "cannot lock {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                );
            }
        }
        Ok(TreeLock { _file: f })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_options_names_what_olddefconfig_dropped() {
        let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=y\n\nCONFIG_C=\"x\"\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n";
        assert_eq!(missing_options(fragment, config), vec!["CONFIG_B=y"]);
    }

    #[test]
    fn make_lines_map_to_stages() {
        assert_eq!(
            classify_line("  CC      fs/dcache.o"),
            Some(("compile", true))
        );
        assert_eq!(classify_line("  LD      vmlinux.o"), Some(("link", false)));
        assert_eq!(
            classify_line("  BTF     .btf.vmlinux.bin.o"),
            Some(("btf", false))
        );
        assert_eq!(
            classify_line("  BUILD   arch/x86/boot/bzImage"),
            Some(("image", false))
        );
        assert_eq!(classify_line("make[1]: Entering directory '/x'"), None);
    }

    #[test]
    fn content_key_depends_on_every_input() {
        let base = content_key("6.1.192-3", "CONFIG_A=y\n", None);
        assert_ne!(base, content_key("6.1.192-4", "CONFIG_A=y\n", None));
        assert_ne!(base, content_key("6.1.192-3", "CONFIG_A=n\n", None));
        assert_ne!(base, content_key("6.1.192-3", "CONFIG_A=y\n", Some(b"")));
        assert_ne!(
            content_key("6.1.192-3", "CONFIG_A=y\n", Some(b"x")),
            content_key("6.1.192-3", "CONFIG_A=y\n", Some(b"y"))
        );
        assert_eq!(base, content_key("6.1.192-3", "CONFIG_A=y\n", None));
    }

    #[test]
    fn modules_beside_finds_the_one_release() {
        let dir = std::env::temp_dir().join(format!("kb-mods-{}", std::process::id()));
        let rel = dir.join("modules/6.1.192");
        fs::create_dir_all(&rel).expect("mkdir");
        let bz = dir.join("bzImage");
        assert_eq!(modules_beside(&bz), None, "no modules.builtin yet");
        fs::write(rel.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").expect("write");
        assert_eq!(modules_beside(&bz), Some(rel));
        fs::create_dir_all(dir.join("modules/other")).expect("mkdir");
        assert_eq!(modules_beside(&bz), None, "two releases: ambiguous");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
