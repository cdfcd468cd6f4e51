//! `cargo xtask vm`: the live-kernel harness. Boots a kernel with BTF and kprobes under QEMU
//! (Debian's current one by default), runs the tracer inside with a normal root environment, and
//! brings the tracer's output directory, exit code, stdout and stderr back to the host through a
//! virtio disk or the second serial port, never through the console.
//!
//! Other xtask code calls [`run_in_vm`] (or [`run_in_vm_async`] from tokio) with a [`VmSpec`].
//!
//! Layout under target/vm: `initramfs/` (archives by content hash), `vmlinux/` (kernels taken
//! out of their bzImage), `run/` (QEMU's log, the initrd of this run, transfer disk and serial
//! capture, the guest's facts), `console.log`, `out/` (the default output directory),
//! `kvm-verdict` (whether KVM boots a guest on this host), `digests` (file hashes by inode and
//! timestamps), `lock` (held by the running VM), `cache.lock` (held while the caches are
//! written). A run given its own scratch directory keeps `run/`, `console.log` and `lock` there,
//! so such runs go in parallel. Debian kernels live in debian.rs's cache.
mod bzimage;
mod debian;
mod digest;
mod elf;
mod initramfs;
mod kernel;
mod modules;
mod pairing;
mod qemu;
pub mod selftest;
mod transfer;

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

pub use kernel::KernelChoice;
pub use qemu::{Accel, GuestClock};

use crate::{builder, cmd};
use initramfs::{Initramfs, Source};

/// Where the guest's tracer runs and writes; everything under it comes back.
pub const GUEST_OUT: &str = "/out";

/// The guest's init; it reads the files the host puts in /etc/xtask-vm.
const INIT: &str = include_str!("../../guest/init.sh");

/// Outputs above this size make the guest load the virtio disk modules (when the tree has them)
/// instead of using the serial line, which moves about 0.5 MB/s under TCG.
const SERIAL_MAX_BYTES: u64 = 1 << 20;

/// What to run in the VM.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub kernel: KernelChoice,
    /// Modules to load before the tracer runs (their dependencies are added).
    pub load_modules: Vec<String>,
    /// Arguments of `tracer` in the guest; it runs in [`GUEST_OUT`].
    pub tracer_args: Vec<String>,
    /// Extra files: host path → absolute guest path.
    pub files: Vec<(PathBuf, PathBuf)>,
    /// Wall-clock limit for the VM.
    pub timeout: Duration,
    /// Host directory that receives the guest's [`GUEST_OUT`] (emptied first).
    pub out_dir: PathBuf,
    pub accel: Accel,
    /// What the guest's clock counts (instructions only under TCG).
    pub clock: GuestClock,
    pub memory_mib: u32,
    pub cpus: u32,
    /// A statically linked tracer to run instead of building one from this tree.
    pub tracer: Option<PathBuf>,
    /// Boot the kernel inside the bzImage directly at its PVH entry point when it has one:
    /// about 3 s faster per boot under TCG, but the guest kernel runs without KASLR.
    pub pvh: bool,
    /// More kernel command-line parameters, after the harness's own.
    pub kernel_args: Vec<String>,
    /// This run's scratch directory: console log, QEMU's logs, transfer files and the lock
    /// that keeps two runs from sharing them (target/vm by default).
    pub scratch: PathBuf,
}

impl VmSpec {
    /// [`kernel::DEFAULT`], no modules, 10 minutes, output in target/vm/out, 1 GiB, 2 vCPUs.
    pub fn new(tracer_args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        VmSpec {
            kernel: KernelChoice::default(),
            load_modules: Vec::new(),
            tracer_args: tracer_args.into_iter().map(Into::into).collect(),
            files: Vec::new(),
            timeout: Duration::from_secs(600),
            out_dir: vm_dir().join("out"),
            accel: Accel::Auto,
            clock: GuestClock::Wall,
            // The trace lives in the guest's RAM twice at the end (the spill and the merged
            // trace) beside the pinned ring: a 10 s prune-stat (1.6 M events, 250 MB a copy)
            // ran 1 GiB out of space.
            memory_mib: 2048,
            cpus: 2,
            tracer: None,
            pvh: true,
            kernel_args: Vec::new(),
            scratch: vm_dir(),
        }
    }
}

/// Where the time went (host clock).
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Fetching (first run) or finding the kernel.
    pub kernel: Duration,
    /// `cargo build` of the static tracer.
    pub build: Duration,
    /// Hashing the initramfs inputs, and writing the archive when it is new.
    pub initramfs: Duration,
    /// A KVM guest that did not reach init, tried first (see [`qemu::Booted::kvm_probe`]).
    pub kvm_probe: Option<Duration>,
    /// QEMU start → the guest's init runs.
    pub boot_to_init: Option<Duration>,
    /// The tracer's run in the guest.
    pub tracer: Option<Duration>,
    /// Tracer end → results unpacked on the host (guest packing and sending, poweroff, decoding).
    pub transfer: Duration,
    /// QEMU start → QEMU gone.
    pub qemu: Duration,
    pub total: Duration,
}

/// The result of a run in which the tracer ran (whatever its exit code).
#[derive(Debug, Clone)]
pub struct VmOutcome {
    /// The tracer's exit code in the guest.
    pub exit_code: i32,
    pub out_dir: PathBuf,
    /// Files brought back, relative to `out_dir` (including the three below).
    pub files: Vec<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub console_log: PathBuf,
    /// Where the kernel came from and its release in the guest.
    pub kernel: String,
    pub release: String,
    pub accel: Accel,
    /// Booted at the PVH entry point (see [`VmSpec::pvh`]).
    pub pvh: bool,
    /// "virtio disk" or "serial".
    pub channel: &'static str,
    /// The guest kernel's uptime when init started.
    pub guest_boot: Option<Duration>,
    pub timings: Timings,
}

/// target/vm
pub fn vm_dir() -> PathBuf {
    cmd::root().join("target/vm")
}

/// The stages of a run, for a caller that shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Kernel, tracer and initramfs being made ready.
    Preparing,
    /// QEMU started; the guest has not reached init yet.
    Booting,
    /// The guest's init started the tracer.
    Tracing,
    /// The tracer ended; the guest sends its results.
    Sending,
}

/// Where a run reports its stages and notes: the terminal by default; the matrix prefixes
/// each line with its pair.
pub trait Observer: Send + Sync {
    fn stage(&self, _stage: Stage) {}
    fn note(&self, line: &str) {
        eprintln!("vm: {line}");
    }
}

/// The terminal, unprefixed.
pub struct Terminal;
impl Observer for Terminal {}

/// Boots the VM, runs the tracer, brings its output back. An error means the harness failed
/// (its message is one line: the cause, the fix, the console log's path); a tracer that fails
/// is an outcome with its exit code.
pub fn run_in_vm(spec: &VmSpec) -> Result<VmOutcome> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(run_in_vm_async(spec.clone(), std::sync::Arc::new(Terminal)))
}

/// Fetches the kernel when needed; returns where it came from.
pub fn resolve_kernel(choice: &KernelChoice) -> Result<String> {
    Ok(kernel::resolve(choice)?.origin)
}

/// [`resolve_kernel`], then the PVH image a [`VmSpec`] boots by default extracted into the
/// cache [`prepare`] finds it in: for a run that fetches its kernel beside the build, so the
/// extraction leaves the critical path too.
pub fn prefetch_kernel(choice: &KernelChoice) -> Result<String> {
    prefetch_into(choice, &vm_dir())
}

fn prefetch_into(choice: &KernelChoice, vm_dir: &Path) -> Result<String> {
    let kernel = kernel::resolve(choice)?;
    // The digests file and the image cache are shared with runs in other processes.
    let _cache_lock = FileLock::take(&vm_dir.join("cache.lock"), "the VM caches")?;
    let mut digests = digest::Digests::load(&vm_dir.join("digests"));
    kernel::pvh_image(&kernel.bzimage, &vm_dir.join("vmlinux"), &mut digests)?;
    digests.save();
    Ok(kernel.origin)
}

/// The guest kernel's command line: the harness's parameters, then the user's `--append`.
fn kernel_command_line(user: &[String]) -> String {
    // no_timer_check: on a loaded host a TCG guest can miss the IO-APIC timer test at boot and
    // panic ("IO-APIC + timer doesn't work!"; seen with two guests on 2 busy cores); QEMU's
    // timer is known good. dcache_tracer.guest: the marker without which `tracer record`
    // refuses `--leave-attached` (tracer/src/commands/record.rs): this machine powers off next.
    // cryptomgr.notests: Debian's kernels test every built-in crypto algorithm at boot (6.1's
    // `crypto_algapi_init`, 1.48 s of a 3.47 s TCG boot counted in guest instructions); the
    // algorithms stay usable (ext4's crc32c, the modules' signature checks), only the check of
    // each on this emulated CPU goes. A kernel without the parameter drops it. Before the
    // user's `--append`, so `cryptomgr.notests=0` there brings the tests back.
    let mut append = String::from(
        "console=ttyS0 panic=-1 rdinit=/init no_timer_check dcache_tracer.guest cryptomgr.notests",
    );
    for a in user {
        append.push(' ');
        append.push_str(a);
    }
    append
}

/// What the run needs before QEMU starts.
struct Prepared {
    _lock: FileLock,
    t0: Instant,
    kernel: kernel::Kernel,
    /// The kernel QEMU boots: the bzImage or its PVH ELF.
    boot_kernel: PathBuf,
    pvh: bool,
    initrd: PathBuf,
    timings: Timings,
}

/// [`run_in_vm`] for callers already in tokio. QEMU is killed when the returned future is
/// dropped (a cancelled matrix), and by the kernel when xtask dies (see qemu.rs).
pub async fn run_in_vm_async(
    spec: VmSpec,
    observer: std::sync::Arc<dyn Observer>,
) -> Result<VmOutcome> {
    observer.stage(Stage::Preparing);
    let (spec, prepared) = {
        let observer = observer.clone();
        tokio::task::spawn_blocking(move || prepare(&spec, &*observer).map(|p| (spec, p)))
            .await
            .context("the preparation task failed")??
    };
    let Prepared {
        _lock,
        t0,
        kernel,
        boot_kernel,
        pvh,
        initrd,
        mut timings,
    } = prepared;
    let vm_dir = vm_dir();
    let console_log = spec.scratch.join("console.log");
    let run_dir = spec.scratch.join("run");

    let append = kernel_command_line(&spec.kernel_args);
    let boot = qemu::Boot {
        kernel: &boot_kernel,
        initramfs: &initrd,
        append: &append,
        memory_mib: spec.memory_mib,
        cpus: spec.cpus,
        timeout: spec.timeout,
        vm_dir: &vm_dir,
        run_dir: &run_dir,
        console_log: &console_log,
        clock: spec.clock,
    };
    let booted = qemu::boot(&boot, spec.accel, &*observer).await?;
    let console = fs::read_to_string(&console_log).unwrap_or_default();
    let fail = |cause: String, fix: &str| failure(&*observer, &console, &console_log, cause, fix);
    if booted.timed_out {
        let stage = match (booted.boot_to_init, booted.tracer) {
            (None, _) => "before init ran",
            (Some(_), None) if console.contains(qemu::MARK_TRACER_START) => "while the tracer ran",
            (Some(_), None) => "in init, before the tracer ran",
            (Some(_), Some(_)) => "while sending the results",
        };
        return Err(fail(
            format!(
                "the VM did not finish within {}s and was killed; it hung {stage}",
                spec.timeout.as_secs()
            ),
            "raise --timeout if the run needs longer, else the console log shows where it stopped",
        ));
    }

    let t = Instant::now();
    let frame = match transfer::read_frame(&boot.disk()) {
        Ok(Some(f)) => Ok(Some((f, "virtio disk"))),
        Ok(None) => transfer::read_frame(&boot.serial_capture()).map(|f| f.map(|f| (f, "serial"))),
        Err(e) => Err(e),
    };
    let _ = fs::remove_file(boot.disk());
    let ((encoding, payload), channel) = match frame {
        Ok(Some(f)) => f,
        Ok(None) => {
            let status = booted
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "killed".into());
            return Err(if let Some(p) = qemu::panic_line(&console) {
                fail(format!("the guest kernel panicked: {p}"), panic_fix(p))
            } else if booted.boot_to_init.is_none() {
                fail(
                    format!("the guest never reached init (QEMU: {status})"),
                    &format!(
                        "check {} for QEMU's own errors; the kernel must be x86_64 with an \
                         8250 serial console and initramfs support, and fit in --memory",
                        boot.qemu_log(booted.accel).display()
                    ),
                )
            } else {
                fail(
                    format!("the guest ran init but sent no results (QEMU: {status})"),
                    "the console log shows how far init got",
                )
            });
        }
        Err(e) => {
            return Err(fail(
                format!("the transfer from the guest failed: {e:#}"),
                "the console log shows what the guest sent",
            ))
        }
    };
    fs::create_dir_all(&spec.out_dir)
        .with_context(|| format!("creating {}", spec.out_dir.display()))?;
    let unpacked = transfer::unpack(encoding, &payload, &spec.out_dir).with_context(|| {
        format!(
            "unpacking the guest's results into {}",
            spec.out_dir.display()
        )
    })?;
    let _ = fs::write(run_dir.join("facts"), &unpacked.facts);
    let facts = transfer::parse_facts(&unpacked.facts);
    let t_decode = t.elapsed();

    let release = facts.release.clone();
    let exit_code = match tracer_exit(&facts) {
        Ok(code) => code,
        Err((cause, fix)) => return Err(fail(cause, fix)),
    };

    Ok(VmOutcome {
        exit_code,
        stdout: spec.out_dir.join("tracer.stdout"),
        stderr: spec.out_dir.join("tracer.stderr"),
        out_dir: spec.out_dir.clone(),
        files: unpacked.files,
        console_log,
        kernel: kernel.origin,
        release,
        accel: booted.accel,
        pvh,
        channel,
        guest_boot: facts.uptime_init.map(Duration::from_secs_f64),
        timings: {
            timings.kvm_probe = booted.kvm_probe;
            timings.boot_to_init = booted.boot_to_init;
            timings.tracer = booted.tracer;
            timings.transfer = booted.transfer.unwrap_or_default() + t_decode;
            timings.qemu = booted.wall;
            timings.total = t0.elapsed();
            timings
        },
    })
}

/// Takes the run's lock, resolves the kernel, builds what is missing and writes this run's
/// initrd. The shared caches are written under target/vm/cache.lock, one run at a time.
fn prepare(spec: &VmSpec, observer: &dyn Observer) -> Result<Prepared> {
    let vm_dir = vm_dir();
    let lock = FileLock::take(&spec.scratch.join("lock"), "a VM run")?;
    // Timings start once this run owns its scratch directory.
    let t0 = Instant::now();
    let run_dir = spec.scratch.join("run");
    qemu::check_installed()?;
    check_out_dir(&spec.out_dir)?;
    let cache_lock = FileLock::take(&vm_dir.join("cache.lock"), "the VM caches")?;

    let mut digests = digest::Digests::load(&vm_dir.join("digests"));
    let kernel = kernel::resolve(&spec.kernel)?;
    let pvh = if spec.pvh {
        kernel::pvh_image(&kernel.bzimage, &vm_dir.join("vmlinux"), &mut digests)?
    } else {
        None
    };
    let t_kernel = t0.elapsed();

    let t = Instant::now();
    let tracer = match &spec.tracer {
        Some(p) => p.clone(),
        None => builder::static_tracer_binary()?,
    };
    let t_build = t.elapsed();

    let t = Instant::now();
    let (base, this_run, notes) = assemble(spec, &kernel, &tracer)?;
    for n in &notes {
        observer.note(&format!("note: {n}"));
    }
    let (cached, built) = base.cached(&vm_dir.join("initramfs"), &mut digests)?;
    digests.save();
    if built {
        observer.note(&format!("built initramfs {}", cached.display()));
    }
    // The kernel unpacks concatenated archives in order: the cached one, then this run's small
    // one, so arguments do not make a new 20 MB archive.
    let initrd = run_dir.join("initrd.cpio");
    fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    fs::copy(&cached, &initrd).with_context(|| format!("writing {}", initrd.display()))?;
    drop(cache_lock);
    let mut f = fs::File::options()
        .append(true)
        .open(&initrd)
        .with_context(|| format!("writing {}", initrd.display()))?;
    this_run
        .write(&mut f)
        .with_context(|| format!("writing {}", initrd.display()))?;
    drop(f);
    let boot_kernel = pvh.clone().unwrap_or_else(|| kernel.bzimage.clone());
    Ok(Prepared {
        _lock: lock,
        t0,
        kernel,
        boot_kernel,
        pvh: pvh.is_some(),
        initrd,
        timings: Timings {
            kernel: t_kernel,
            build: t_build,
            initramfs: t.elapsed(),
            ..Timings::default()
        },
    })
}

/// The tracer's exit code from init's facts, or why the guest could not run it (cause, fix).
fn tracer_exit(facts: &transfer::Facts) -> Result<i32, (String, &'static str)> {
    if let Some(m) = &facts.module_error {
        return Err((
            format!("a kernel module did not load in the guest: {m}"),
            "the console log has the kernel's reason; the modules must come from the same build \
             as the kernel",
        ));
    }
    let mut missing = Vec::new();
    if facts.btf == Some(false) {
        missing.push("BTF (/sys/kernel/btf/vmlinux is absent; needs CONFIG_DEBUG_INFO_BTF=y)");
    }
    if facts.kprobes == Some(false) {
        missing.push(
            "kprobes (no /sys/kernel/tracing/kprobe_events and no kprobe PMU; needs \
             CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y)",
        );
    }
    if !missing.is_empty() {
        return Err((
            format!("kernel {} lacks {}", facts.release, missing.join(" and ")),
            "boot a kernel built with those options (the default Debian kernel has them)",
        ));
    }
    facts.tracer_exit.ok_or_else(|| {
        (
            "the guest sent results but the tracer did not run".into(),
            "the console log shows how far init got",
        )
    })
}

/// What to do about a guest panic, for the panics the harness itself can cause.
fn panic_fix(line: &str) -> &'static str {
    if line.contains("Unable to mount root fs") {
        "the kernel did not unpack the initramfs: give the guest more --memory, or boot a kernel \
         with CONFIG_BLK_DEV_INITRD=y"
    } else if line.contains("on memory") || line.contains("Out of memory") {
        "the guest ran out of memory: give it more --memory"
    } else {
        "the lines before the panic in the console log say why"
    }
}

/// An exclusive flock(2) on a file, waited for with a message naming the holder; released when
/// dropped (the kernel drops the lock when the file closes, also when xtask dies).
pub(crate) struct FileLock {
    _file: fs::File,
}

impl FileLock {
    /// Locks `path` for `what` (for the message when another process holds it).
    pub(crate) fn take(path: &Path, what: &str) -> Result<FileLock> {
        use std::os::fd::AsRawFd;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut f = fs::File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let flock = |f: &fs::File, op| {
            // SAFETY: flock(2) on a descriptor this function owns; no memory is shared.
            unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
        };
        if !flock(&f, libc::LOCK_EX | libc::LOCK_NB) {
            let holder = fs::read_to_string(path).unwrap_or_default();
            eprintln!(
                "vm: waiting for {what} ({}, {}) to finish",
                holder.trim(),
                path.display()
            );
            if !flock(&f, libc::LOCK_EX) {
                bail!(
                    "cannot lock {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                );
            }
        }
        let _ = f.set_len(0);
        let _ = writeln!(f, "pid {}", std::process::id());
        Ok(FileLock { _file: f })
    }
}

/// The output directory must be new, empty, or one the harness filled before (it then holds
/// tracer.exit): the harness empties it and would not delete someone else's files.
fn check_out_dir(dir: &Path) -> Result<()> {
    let Ok(mut entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if !dir.join("tracer.exit").is_file() {
        bail!(
            "--out {} holds files the VM harness did not write; give a new or empty directory",
            dir.display()
        );
    }
    fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))
}

/// The initramfs for this run in two parts: what is worth caching (binaries, modules, files)
/// and what changes every run (arguments, load lists); and notes for the user.
fn assemble(
    spec: &VmSpec,
    kernel: &kernel::Kernel,
    tracer: &Path,
) -> Result<(Initramfs, Initramfs, Vec<String>)> {
    let mut img = Initramfs::default();
    let mut run = Initramfs::default();
    let mut notes = Vec::new();
    img.dir(GUEST_OUT);
    for d in ["proc", "sys", "dev", "tmp", "run", "root", "mnt"] {
        img.dir(d);
    }
    // The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    img.char_dev("dev/console", 5, 1);
    img.file("init", Source::Bytes(INIT.as_bytes().to_vec()), 0o755);

    let busybox = static_binary(
        &which("busybox").context(
            "busybox is not installed; run `cargo xtask setup` (or apt-get install -y busybox-static)",
        )?,
        "install busybox-static (Debian's busybox package is dynamically linked)",
    )?;
    img.file("bin/busybox", Source::File(busybox.clone()), 0o755);
    let applets = cmd::output(Command::new(&busybox).arg("--list-full"))
        .context("listing busybox's applets")?;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        if applet != "bin/busybox" {
            img.symlink(applet, "/bin/busybox");
        }
    }
    let tracer = static_binary(tracer, "build it with `cargo xtask build --static-tracer`")?;
    img.file("bin/tracer", Source::File(tracer), 0o755);

    run.file(
        "etc/xtask-vm/args",
        Source::Bytes(format!("set -- {}\n", shell_words(&spec.tracer_args)).into_bytes()),
        0o644,
    );

    let tree = kernel
        .modules
        .as_deref()
        .map(modules::ModuleTree::open)
        .transpose()?;
    let mut load = String::new();
    if !spec.load_modules.is_empty() {
        let Some(tree) = &tree else {
            bail!(
                "--load-modules needs the kernel's modules: give --modules DIR (its \
                 lib/modules/<release> directory)"
            );
        };
        let (files, n) = tree.load_order(&spec.load_modules)?;
        notes.extend(n);
        let names: Vec<&str> = files.iter().map(|m| m.name.as_str()).collect();
        notes.push(format!("modules to load, in order: {}", names.join(" ")));
        for m in files {
            load.push_str(&format!("/{}\n", m.guest_path));
            img.file(&m.guest_path, Source::Module(m.source, m.codec), 0o644);
        }
    }
    run.file(
        "etc/xtask-vm/modules",
        Source::Bytes(load.into_bytes()),
        0o644,
    );

    // The virtio disk drivers, for big results, when the kernel has them as modules. Loaded by
    // init only after the tracer is done, so the traced kernel runs exactly what was asked.
    let mut transfer = String::new();
    if let Some(tree) = &tree {
        let wanted = ["virtio_pci".to_owned(), "virtio_blk".to_owned()];
        if let Ok((files, _)) = tree.load_order(&wanted) {
            for m in files {
                if !img.contains(&m.guest_path) {
                    img.file(&m.guest_path, Source::Module(m.source, m.codec), 0o644);
                }
                transfer.push_str(&format!("/{}\n", m.guest_path));
            }
        }
    }
    run.file(
        "etc/xtask-vm/transfer-modules",
        Source::Bytes(transfer.into_bytes()),
        0o644,
    );
    run.file(
        "etc/xtask-vm/serial-max-bytes",
        Source::Bytes(format!("{SERIAL_MAX_BYTES}\n").into_bytes()),
        0o644,
    );

    for (host, guest) in &spec.files {
        let rel = guest
            .to_str()
            .and_then(|g| g.strip_prefix('/'))
            .filter(|g| !g.is_empty() && !g.split('/').any(|c| c == ".." || c == "."))
            .with_context(|| {
                format!("guest path {} must be absolute and plain", guest.display())
            })?;
        if img.contains(rel) || run.contains(rel) {
            bail!(
                "guest path {} is the harness's own; pick another",
                guest.display()
            );
        }
        let meta = fs::metadata(host).with_context(|| format!("reading {}", host.display()))?;
        if !meta.is_file() {
            bail!(
                "{} is not a file (only files can be copied into the guest)",
                host.display()
            );
        }
        use std::os::unix::fs::PermissionsExt;
        img.file(rel, Source::File(host.clone()), meta.permissions().mode());
    }
    Ok((img, run, notes))
}

/// `path` when it is an x86_64 ELF without a program interpreter.
pub(crate) fn static_binary(path: &Path, fix: &str) -> Result<PathBuf> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match elf::is_dynamic(&bytes) {
        Ok(false) => Ok(path.to_owned()),
        Ok(true) => bail!(
            "{} is dynamically linked; the initramfs has no libraries: {fix}",
            path.display()
        ),
        Err(e) => bail!("{}: {e}; {fix}", path.display()),
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Arguments as one line of POSIX shell words (single quotes; a quote becomes '\'').
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints the interesting part of the console and returns the one-line error.
fn failure(
    observer: &dyn Observer,
    console: &str,
    console_log: &Path,
    cause: String,
    fix: &str,
) -> anyhow::Error {
    let summary = console_summary(console);
    if !summary.is_empty() {
        observer.note(&format!(
            "console ({}), the part that matters:",
            console_log.display()
        ));
        for l in summary {
            observer.note(&format!("  | {l}"));
        }
    }
    anyhow::anyhow!("{cause}; {fix}; console log: {}", console_log.display())
}

/// Around a panic: 15 lines before it and 15 after; otherwise the last 20 lines. Terminal
/// escapes (SeaBIOS clears the screen) are dropped.
fn console_summary(console: &str) -> Vec<String> {
    let lines: Vec<String> = console
        .lines()
        .map(|l| {
            let mut out = String::new();
            let mut esc = false;
            for c in l.chars() {
                match (esc, c) {
                    (false, '\x1b') => esc = true,
                    (true, c) if c.is_ascii_alphabetic() => esc = false,
                    (true, _) => {}
                    (false, c) if c.is_control() => {}
                    (false, c) => out.push(c),
                }
            }
            out
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    let (from, to) = match lines
        .iter()
        .position(|l| l.contains("Kernel panic - not syncing"))
    {
        Some(p) => (p.saturating_sub(15), (p + 16).min(lines.len())),
        None => (lines.len().saturating_sub(20), lines.len()),
    };
    lines[from..to].to_vec()
}

/// The CLI.
#[derive(clap::Args)]
pub struct VmArgs {
    /// The kernel: a bzImage PATH (with --modules), debian:SUITE (its newest amd64 kernel),
    /// debian:SUITE/VERSION, or built:NAME
    #[arg(long, value_name = "KERNEL", default_value = kernel::DEFAULT)]
    kernel: KernelChoice,
    /// The lib/modules/<release> directory of a --kernel PATH (the other kinds bring their own)
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// Kernel modules to load in the guest before the tracer runs; dependencies are added
    #[arg(long, value_name = "M1,M2", value_delimiter = ',')]
    load_modules: Vec<String>,
    /// Copy a host file into the guest (repeatable)
    #[arg(long = "file", value_name = "HOST:GUEST", value_parser = parse_file_arg)]
    files: Vec<(PathBuf, PathBuf)>,
    /// Wall-clock limit for the VM in seconds; a VM still running then is killed
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    timeout: u64,
    /// Host directory that receives the guest's /out [default: target/vm/out]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Accelerator: KVM needs a /dev/kvm that really runs guests; TCG always works (slower)
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
    /// What the guest's clock counts: `instructions` runs TCG on one host thread under
    /// `-icount` (guest times count the guest's instructions, whatever the host's load)
    #[arg(long, value_enum, default_value_t = GuestClock::Wall)]
    guest_clock: GuestClock,
    /// Guest memory in MiB
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    memory: u32,
    /// Run this statically linked tracer binary instead of building one from the tree
    #[arg(long, value_name = "PATH")]
    tracer: Option<PathBuf>,
    /// Boot the bzImage itself, not its kernel at the PVH entry point (slower; keeps KASLR)
    #[arg(long)]
    no_pvh: bool,
    /// One more kernel command-line parameter (repeatable), e.g. dcache_bug_delay_us=20
    #[arg(long, value_name = "PARAM")]
    append: Vec<String>,
    /// The tracer's arguments; it runs in /out, so relative output paths come back
    #[arg(last = true, required = true, value_name = "TRACER ARGS")]
    tracer_args: Vec<String>,
}

fn parse_file_arg(s: &str) -> Result<(PathBuf, PathBuf), String> {
    let (host, guest) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: expected HOST:GUEST"))?;
    Ok((PathBuf::from(host), PathBuf::from(guest)))
}

/// `cargo xtask vm`: the tracer's stdout and stderr are replayed on ours, and its exit code is
/// ours.
pub fn vm(args: VmArgs) -> Result<i32> {
    let mut spec = VmSpec::new(args.tracer_args);
    spec.kernel = args.kernel.with_modules(args.modules)?;
    spec.kernel_args = args.append;
    spec.load_modules = args.load_modules;
    spec.files = args.files;
    spec.timeout = Duration::from_secs(args.timeout);
    if let Some(out) = args.out {
        spec.out_dir = out;
    }
    spec.accel = args.accel;
    spec.clock = args.guest_clock;
    spec.memory_mib = args.memory;
    spec.pvh = !args.no_pvh;
    spec.tracer = args.tracer;
    let o = run_in_vm(&spec)?;
    for (src, mut dst) in [
        (&o.stdout, Box::new(std::io::stdout()) as Box<dyn Write>),
        (&o.stderr, Box::new(std::io::stderr())),
    ] {
        if let Ok(bytes) = fs::read(src) {
            let _ = dst.write_all(&bytes);
            let _ = dst.flush();
        }
    }
    let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
    let opt = |d: Option<Duration>| d.map(secs).unwrap_or_else(|| "-".into());
    let t = &o.timings;
    eprintln!(
        "vm: tracer exited {} in the guest ({}, {}, {:?}{}); {} files in {}; console: {}",
        o.exit_code,
        o.kernel,
        o.release,
        o.accel,
        if o.pvh { ", PVH entry" } else { "" },
        o.files.len(),
        o.out_dir.display(),
        o.console_log.display()
    );
    eprintln!(
        "vm: time: kernel {}, build {}, initramfs {}, boot to init {} (guest kernel {}), \
         tracer {}, transfer {} ({}), QEMU {}, total {}",
        secs(t.kernel),
        secs(t.build),
        secs(t.initramfs),
        opt(t.boot_to_init),
        opt(o.guest_boot),
        opt(t.tracer),
        secs(t.transfer),
        o.channel,
        secs(t.qemu),
        secs(t.total)
    );
    Ok(o.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefetch_extracts_the_pvh_image_where_prepare_looks() {
        let dir = std::env::temp_dir().join(format!("xtask-prefetch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let vmlinux = elf::tests::fake_pvh_kernel();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vmlinux).expect("gzip");
        let packed = gz.finish().expect("gzip");
        // The payload after one setup sector, at the header's offset from the protected-mode
        // code (see bzimage::payload).
        let mut image = bzimage::tests::fake_bzimage("6.1.0-1-amd64 (test) #1");
        image[0x1f1] = 1;
        let offset = image.len() - 0x400;
        image[0x248..0x24c].copy_from_slice(&(offset as u32).to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(packed.len() as u32).to_le_bytes());
        image.extend_from_slice(&packed);
        let bzimage = dir.join("bzImage");
        fs::write(&bzimage, &image).expect("write");
        let vm = dir.join("vm");
        let choice = KernelChoice::Image {
            bzimage: bzimage.clone(),
            modules: None,
        };
        assert_eq!(
            prefetch_into(&choice, &vm).expect("prefetch"),
            bzimage.display().to_string()
        );
        // What prepare asks next finds the image in the cache: its key is in the saved digests,
        // and the ELF is the kernel inside the bzImage.
        let mut digests = digest::Digests::load(&vm.join("digests"));
        let key = digests.of(&bzimage).expect("digest");
        let cached = vm.join("vmlinux").join(format!("{key}.vmlinux"));
        assert_eq!(fs::read(&cached).expect("cached image"), vmlinux);
        assert!(fs::read_to_string(vm.join("digests"))
            .expect("digests saved")
            .starts_with(&key));
        assert_eq!(
            kernel::pvh_image(&bzimage, &vm.join("vmlinux"), &mut digests).expect("lookup"),
            Some(cached)
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn the_users_kernel_arguments_come_after_the_harnesss() {
        let line = kernel_command_line(&["cryptomgr.notests=0".into(), "quiet".into()]);
        // A parameter given twice takes its last value: the user's.
        assert!(
            line.ends_with(" dcache_tracer.guest cryptomgr.notests cryptomgr.notests=0 quiet"),
            "{line}"
        );
        assert!(
            line.starts_with("console=ttyS0 panic=-1 rdinit=/init "),
            "{line}"
        );
    }

    #[test]
    fn quotes_arguments_for_the_guest_shell() {
        let args: Vec<String> = ["verify", "--json", "it's", "a b", "$HOME"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            shell_words(&args),
            r#"'verify' '--json' 'it'\''s' 'a b' '$HOME'"#
        );
        assert_eq!(shell_words(&[]), "");
    }

    #[test]
    fn summarizes_the_console() {
        let mut log = String::from("\x1b[2J\x1b[0mSeaBIOS\n");
        for i in 0..40 {
            log.push_str(&format!("line {i}\n"));
        }
        let s = console_summary(&log);
        assert_eq!(s.len(), 20);
        assert_eq!(s[19], "line 39");
        log.push_str("Kernel panic - not syncing: Attempted to kill init!\n");
        let s = console_summary(&log);
        assert_eq!(s.first().map(String::as_str), Some("line 25"));
        assert!(s.last().is_some_and(|l| l.contains("Kernel panic")));
        assert_eq!(console_summary("\x1b[2J\n")[..], [] as [String; 0]);
    }

    #[test]
    fn explains_kernels_that_cannot_trace() {
        let ok = transfer::parse_facts("release=6.1\nbtf=yes\nkprobes=yes\ntracer_exit=3\n");
        assert_eq!(tracer_exit(&ok), Ok(3));
        let no_btf = transfer::parse_facts("release=5.4.0\nbtf=no\nkprobes=yes\n");
        let (cause, fix) = tracer_exit(&no_btf).expect_err("no BTF");
        assert!(cause.starts_with("kernel 5.4.0 lacks BTF"), "{cause}");
        assert!(fix.contains("options"), "{fix}");
        let neither = transfer::parse_facts("release=x\nbtf=no\nkprobes=no\n");
        let (cause, _) = tracer_exit(&neither).expect_err("neither");
        assert!(
            cause.contains("BTF") && cause.contains(" and kprobes"),
            "{cause}"
        );
        let module = transfer::parse_facts(
            "release=x\nmodule_error=/lib/modules/x/ext4.ko: insmod: can't insert: Invalid argument\n",
        );
        let (cause, _) = tracer_exit(&module).expect_err("module");
        assert!(cause.contains("ext4.ko: insmod"), "{cause}");
        let silent = transfer::parse_facts("release=x\nbtf=yes\nkprobes=yes\n");
        assert!(tracer_exit(&silent).is_err());
    }

    #[test]
    fn suggests_fixes_for_panics() {
        assert!(panic_fix(
            "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
        )
        .contains("--memory"));
        assert!(
            panic_fix("Kernel panic - not syncing: System is deadlocked on memory")
                .contains("--memory")
        );
        assert!(
            panic_fix("Kernel panic - not syncing: Attempted to kill init!")
                .contains("before the panic")
        );
    }

    #[test]
    fn parses_file_arguments() {
        assert_eq!(
            parse_file_arg("w.toml:/etc/w.toml"),
            Ok((PathBuf::from("w.toml"), PathBuf::from("/etc/w.toml")))
        );
        assert!(parse_file_arg("nope").is_err());
    }

    #[test]
    fn refuses_foreign_output_directories() {
        let d = std::env::temp_dir().join(format!("xtask-vm-out-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        check_out_dir(&d).expect("a new directory is fine");
        fs::create_dir_all(&d).expect("mkdir");
        check_out_dir(&d).expect("an empty directory is fine");
        fs::write(d.join("precious"), "x").expect("write");
        assert!(check_out_dir(&d).is_err());
        fs::write(d.join("tracer.exit"), "0\n").expect("write");
        check_out_dir(&d).expect("ours: emptied");
        assert!(!d.exists());
    }
}
