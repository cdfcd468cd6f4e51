//! Running QEMU: the command line, KVM when it really works (else TCG), a wall-clock timeout,
//! and progress read from the guest's console markers (for timings and the caller's stages
//! only; results travel in the transfer frame). QEMU is a tokio child tied to xtask: killed when
//! its future is dropped, and by the kernel when xtask dies of any signal (see
//! [`cmd::tie_to_parent`]).
use std::{
    ffi::OsString,
    fs,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{Observer, Stage};
use crate::cmd;

pub const QEMU: &str = "qemu-system-x86_64";

/// How long a KVM guest may take to reach init before KVM counts as broken here (a working KVM
/// guest gets there in a second or two; here it stalls after the BIOS, or QEMU aborts).
const KVM_PROBE: Duration = Duration::from_secs(20);

/// How long a guest may print nothing before init ran until its boot counts as stalled. A TCG
/// boot prints a line every few seconds even on a loaded host (its quietest stretch, unpacking
/// the initramfs, is a few seconds); Debian's 7.3 kernel has been seen to stop for good right
/// after probing the serial ports, once in many boots, which only a new boot mends.
const BOOT_STALL: Duration = Duration::from_secs(120);

/// Size of the sparse transfer disk; the guest's output is bounded by its RAM anyway.
const DISK_BYTES: u64 = 4 << 30;

/// Console lines guest/init.sh prints at each stage.
pub const MARK_INIT: &str = "xtask-vm: init";
pub const MARK_TRACER_START: &str = "xtask-vm: tracer start";
pub const MARK_TRACER_END: &str = "xtask-vm: tracer end";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM when /dev/kvm is usable, the CPU's flags do not rule it out (vmx or svm listed, or
    /// no flags to read), and a KVM guest boots here (the verdict is remembered), else TCG
    Auto,
    Kvm,
    Tcg,
}

/// What the guest's clock counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestClock {
    /// Time as the host's: the vCPUs run on host threads at once, so races can happen.
    #[default]
    Wall,
    /// Guest instructions (QEMU's `-icount shift=1,sleep=off`: 2 ns each, idle time skipped):
    /// TCG on one host thread. Under TCG the wall clock also measures the emulation, which
    /// costs a probe's code differently from the workload's; counted in instructions, two
    /// runs in one boot compare the guest's own work, whatever the host's load.
    Instructions,
}

/// One boot.
pub struct Boot<'a> {
    /// A bzImage, or an ELF kernel with a PVH entry point.
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub append: &'a str,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// target/vm: the KVM verdict lives here.
    pub vm_dir: &'a Path,
    /// Scratch files of the run: qemu.log, the serial capture, the disk image.
    pub run_dir: &'a Path,
    pub console_log: &'a Path,
    pub clock: GuestClock,
}

impl Boot<'_> {
    pub fn serial_capture(&self) -> PathBuf {
        self.run_dir.join("serial1.bin")
    }
    pub fn disk(&self) -> PathBuf {
        self.run_dir.join("transfer.img")
    }
    /// QEMU's own messages, per accelerator (a failed KVM try keeps its log).
    pub fn qemu_log(&self, accel: Accel) -> PathBuf {
        self.run_dir.join(match accel {
            Accel::Kvm => "qemu-kvm.log",
            _ => "qemu.log",
        })
    }
}

/// How a boot ended, with host-clock timings taken from the console markers.
#[derive(Debug)]
pub struct Booted {
    pub accel: Accel,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    /// A KVM guest tried first that did not reach init (KVM broken here), killed after
    /// [`KVM_PROBE`]: once per machine, before the verdict is remembered.
    pub kvm_probe: Option<Duration>,
    /// The guest printed nothing for [`BOOT_STALL`] before init ran and was killed (a boot
    /// that stalled; [`boot`] boots once more after the first).
    pub stalled: bool,
    /// QEMU start → init's first line.
    pub boot_to_init: Option<Duration>,
    /// Tracer start → tracer end.
    pub tracer: Option<Duration>,
    /// Tracer end (or init, when the tracer did not run) → QEMU gone: packing, sending, poweroff.
    pub transfer: Option<Duration>,
    pub wall: Duration,
}

pub fn check_installed() -> Result<()> {
    if cmd::on_path(QEMU) {
        return Ok(());
    }
    bail!(
        "{QEMU} is not installed; run `cargo xtask setup` (or as root: apt-get install -y \
         qemu-system-x86)"
    )
}

/// Boots with the requested accelerator; `Auto` tries KVM when it is usable and not known to
/// fail here, and falls back to TCG (remembering why) when the KVM guest does not reach init.
pub async fn boot(b: &Boot<'_>, accel: Accel, observer: &dyn Observer) -> Result<Booted> {
    let verdict_file = b.vm_dir.join("kvm-verdict");
    // Asks QEMU for its version: only worth a process where KVM is still in question.
    let verdict_key = std::cell::LazyCell::new(kvm_verdict_key);
    check_clock(accel, b.clock)?;
    let try_kvm = match accel {
        Accel::Tcg => false,
        Accel::Auto if b.clock == GuestClock::Instructions => false,
        Accel::Kvm => {
            if let Err(e) = kvm_usable() {
                bail!("--accel kvm: /dev/kvm is not usable ({e}); use --accel tcg");
            }
            true
        }
        Accel::Auto => {
            kvm_usable().is_ok()
                && cpu_virtualization(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
                    != Some(false)
                && fs::read_to_string(&verdict_file).ok().as_deref()
                    != Some(format!("{} broken\n", *verdict_key).as_str())
        }
    };
    if try_kvm {
        let probe = (accel == Accel::Auto).then_some(KVM_PROBE);
        // A KVM boot that stalls is KVM's verdict to give, as before.
        let r = run(b, Accel::Kvm, probe, observer).await?;
        let console = fs::read_to_string(b.console_log).unwrap_or_default();
        if accel == Accel::Kvm || r.boot_to_init.is_some() || panic_line(&console).is_some() {
            if r.boot_to_init.is_some() {
                let _ = fs::write(&verdict_file, format!("{} works\n", *verdict_key));
            }
            return Ok(r);
        }
        let _ = fs::write(&verdict_file, format!("{} broken\n", *verdict_key));
        observer.note(&format!(
            "a KVM guest does not reach init here (see {}); using TCG, now and next time \
             (delete {} to try KVM again)",
            b.qemu_log(Accel::Kvm).display(),
            verdict_file.display()
        ));
        let tcg = run_tcg(b, observer).await?;
        return Ok(Booted {
            kvm_probe: Some(r.wall),
            ..tcg
        });
    }
    run_tcg(b, observer).await
}

/// The instruction clock is TCG's alone: KVM runs the guest on the host's CPU.
fn check_clock(accel: Accel, clock: GuestClock) -> Result<()> {
    if accel == Accel::Kvm && clock == GuestClock::Instructions {
        bail!("--guest-clock instructions counts TCG's instructions; use --accel tcg (or auto)");
    }
    Ok(())
}

/// A TCG boot, and a second one when the first stalled before init (the console log of the
/// stalled one is kept beside the new one's).
async fn run_tcg(b: &Boot<'_>, observer: &dyn Observer) -> Result<Booted> {
    let first = run(b, Accel::Tcg, None, observer).await?;
    if !first.stalled {
        return Ok(first);
    }
    let kept = b.console_log.with_extension("stalled.log");
    let _ = fs::rename(b.console_log, &kept);
    observer.note(&format!(
        "the guest printed nothing for {}s before init ran (its console: {}); booting it again, \
         once",
        BOOT_STALL.as_secs(),
        kept.display()
    ));
    run(b, Accel::Tcg, None, observer).await
}

/// /dev/kvm opens for reading and writing.
fn kvm_usable() -> std::io::Result<()> {
    fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
}

/// Whether the x86 CPU offers hardware virtualization, from /proc/cpuinfo's `flags` lines:
/// `Some(false)` only when there are such lines and none lists `vmx` (Intel) or `svm` (AMD).
/// Then no KVM guest can run, and the [`KVM_PROBE`] could only time out: kvm_intel and kvm_amd
/// refuse to load without that CPU feature, and the kernel drops `vmx` from the flags when the
/// firmware has locked VMX off. A nested hypervisor that offers KVM to its guest exposes the
/// flag. `None` (no `flags` line: not x86, or /proc unreadable) decides nothing, and the
/// probe runs. Some sandboxes offer a /dev/kvm that opens without either flag (this project's
/// build machine): their guests never reach init.
fn cpu_virtualization(cpuinfo: &str) -> Option<bool> {
    let mut flags = cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(key, _)| key.trim() == "flags")
        .map(|(_, v)| v)
        .peekable();
    flags.peek()?;
    Some(flags.any(|v| v.split_whitespace().any(|f| f == "vmx" || f == "svm")))
}

/// The KVM verdict holds while the host kernel and QEMU stay the same.
fn kvm_verdict_key() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let qemu = cmd::output(Command::new(QEMU).arg("--version")).unwrap_or_default();
    format!(
        "host {} qemu {}",
        host.trim(),
        qemu.lines().next().unwrap_or_default().trim()
    )
}

/// QEMU's arguments for one boot.
pub fn qemu_args(b: &Boot, accel: Accel) -> Vec<OsString> {
    // `check_clock` refuses the instruction clock with KVM before any boot; should one get
    // here anyway, KVM wins and the clock stays the wall's.
    let (accel, icount) = match (accel, b.clock) {
        (Accel::Kvm, _) => ("kvm", false),
        // Multi-threaded TCG: the two vCPUs really run at once, so races can happen.
        (_, GuestClock::Wall) => ("tcg,thread=multi", false),
        // QEMU counts instructions only with every vCPU on one host thread.
        (_, GuestClock::Instructions) => ("tcg,thread=single", true),
    };
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for s in [
        "-machine",
        "q35",
        "-accel",
        accel,
        "-cpu",
        "max",
        "-smp",
        &b.cpus.to_string(),
        "-m",
        &format!("{}M", b.memory_mib),
        "-nographic",
        "-nodefaults",
        // A panic reboots (panic=-1 on the command line); this turns that into QEMU exiting.
        "-no-reboot",
        "-append",
        b.append,
    ] {
        push(s);
    }
    let mut path_arg = |flag: &str, prefix: &str, p: &Path| {
        a.push(flag.into());
        let mut v = OsString::from(prefix);
        v.push(p.as_os_str());
        a.push(v);
    };
    path_arg("-kernel", "", b.kernel);
    path_arg("-initrd", "", b.initramfs);
    // ttyS0: the console; ttyS1: the transfer line when the guest has no virtio disk.
    path_arg("-serial", "file:", b.console_log);
    path_arg("-serial", "file:", &b.serial_capture());
    // cache=unsafe: the guest's final sync need not reach the host's disk, only QEMU's file.
    path_arg(
        "-drive",
        "if=none,id=transfer,format=raw,cache=unsafe,file=",
        &b.disk(),
    );
    a.push("-device".into());
    a.push("virtio-blk-pci,drive=transfer".into());
    if icount {
        a.push("-icount".into());
        a.push("shift=1,sleep=off".into());
    }
    a
}

async fn run(
    b: &Boot<'_>,
    accel: Accel,
    probe: Option<Duration>,
    observer: &dyn Observer,
) -> Result<Booted> {
    fs::create_dir_all(b.run_dir).with_context(|| format!("creating {}", b.run_dir.display()))?;
    for p in [b.serial_capture(), b.disk(), b.console_log.to_owned()] {
        let _ = fs::remove_file(p);
    }
    fs::File::create(b.disk())
        .and_then(|f| f.set_len(DISK_BYTES))
        .with_context(|| format!("creating {}", b.disk().display()))?;
    let log = fs::File::create(b.qemu_log(accel))
        .with_context(|| format!("creating {}", b.qemu_log(accel).display()))?;
    let mut c = Command::new(QEMU);
    c.args(qemu_args(b, accel))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let shown = cmd::show(&c);
    let mut c = tokio::process::Command::from(c);
    cmd::tie_to_parent(&mut c);
    observer.stage(Stage::Booting);
    let t0 = Instant::now();
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut watch = ConsoleWatch::new(b.console_log);
    let mut marks: [Option<Instant>; 3] = [None; 3];
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let (status, timed_out, stalled) = loop {
        let limit = match probe {
            Some(p) if marks[0].is_none() => p.min(b.timeout),
            _ => b.timeout,
        };
        let deadline = tokio::time::Instant::from_std(t0 + limit);
        tokio::select! {
            status = child.wait() => {
                watch.poll();
                break (Some(status.context("waiting for QEMU")?), false, false);
            }
            _ = tokio::time::sleep_until(deadline) => {
                // Our own child, killed by its handle.
                let _ = child.kill().await;
                break (None, probe.is_none() || marks[0].is_some(), false);
            }
            _ = tick.tick() => {
                watch.poll();
                watch.mark(&mut marks, observer);
                if probe.is_none() && marks[0].is_none() && watch.quiet_for() >= BOOT_STALL {
                    let _ = child.kill().await;
                    break (None, true, true);
                }
            }
        }
    };
    watch.mark(&mut marks, observer);
    let end = Instant::now();
    let [init, start, stop] = marks;
    Ok(Booted {
        accel,
        status,
        timed_out,
        kvm_probe: None,
        stalled,
        boot_to_init: init.map(|t| t - t0),
        tracer: start.zip(stop).map(|(s, e)| e - s),
        transfer: stop.or(init).map(|t| end - t),
        wall: end - t0,
    })
}

/// Follows the console log file as QEMU writes it.
struct ConsoleWatch {
    path: PathBuf,
    offset: u64,
    text: String,
    /// When the log last grew (or the watch began).
    grew: Instant,
}

impl ConsoleWatch {
    fn new(path: &Path) -> Self {
        ConsoleWatch {
            path: path.to_owned(),
            offset: 0,
            text: String::new(),
            grew: Instant::now(),
        }
    }

    fn poll(&mut self) {
        let Ok(mut f) = fs::File::open(&self.path) else {
            return;
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_ok() && f.read_to_end(&mut buf).is_ok() {
            if !buf.is_empty() {
                self.grew = Instant::now();
            }
            self.offset += buf.len() as u64;
            self.text.push_str(&String::from_utf8_lossy(&buf));
        }
    }

    /// How long the log has not grown.
    fn quiet_for(&self) -> Duration {
        self.grew.elapsed()
    }

    fn seen(&self, mark: &str) -> bool {
        self.text.contains(mark)
    }

    /// Times the console markers seen since the last call and reports their stages.
    fn mark(&self, marks: &mut [Option<Instant>; 3], observer: &dyn Observer) {
        let stages = [
            (MARK_INIT, Stage::Booting),
            (MARK_TRACER_START, Stage::Tracing),
            (MARK_TRACER_END, Stage::Sending),
        ];
        for (slot, (m, stage)) in marks.iter_mut().zip(stages) {
            if slot.is_none() && self.seen(m) {
                *slot = Some(Instant::now());
                observer.stage(stage);
            }
        }
    }
}

/// The line where the guest kernel panicked, if it did.
pub fn panic_line(console: &str) -> Option<&str> {
    console
        .lines()
        .find(|l| l.contains("Kernel panic - not syncing"))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_boot(clock: GuestClock) -> Boot<'static> {
        Boot {
            kernel: Path::new("/k/bzImage"),
            initramfs: Path::new("/c/i.cpio"),
            append: "console=ttyS0 panic=-1",
            memory_mib: 1024,
            cpus: 2,
            timeout: Duration::from_secs(1),
            vm_dir: Path::new("/t/vm"),
            run_dir: Path::new("/t/vm/run"),
            console_log: Path::new("/t/vm/console.log"),
            clock,
        }
    }

    #[test]
    fn command_line() {
        let b = test_boot(GuestClock::Wall);
        let args: Vec<String> = qemu_args(&b, Accel::Tcg)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let s = args.join(" ");
        assert!(
            s.contains("-machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1024M"),
            "{s}"
        );
        assert!(
            s.contains("-serial file:/t/vm/console.log -serial file:/t/vm/run/serial1.bin"),
            "{s}"
        );
        assert!(s.contains("-kernel /k/bzImage -initrd /c/i.cpio"), "{s}");
        assert!(s.contains("file=/t/vm/run/transfer.img"), "{s}");
        assert!(args.contains(&"console=ttyS0 panic=-1".to_owned()));
        let kvm = qemu_args(&b, Accel::Kvm);
        assert!(kvm.iter().any(|a| a == "kvm"));
        assert!(!s.contains("-icount"), "{s}");
    }

    /// The instruction clock: one host thread, `-icount`; refused with KVM.
    #[test]
    fn the_instruction_clock_runs_tcg_on_one_thread_with_icount() {
        let b = test_boot(GuestClock::Instructions);
        for accel in [Accel::Tcg, Accel::Auto] {
            let s = qemu_args(&b, accel)
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            assert!(s.contains("-accel tcg,thread=single -cpu max"), "{s}");
            assert!(s.ends_with(" -icount shift=1,sleep=off"), "{s}");
        }
        let err = check_clock(Accel::Kvm, GuestClock::Instructions).expect_err("kvm refused");
        assert!(err.to_string().contains("--accel tcg"), "{err}");
        for accel in [Accel::Auto, Accel::Tcg] {
            check_clock(accel, GuestClock::Instructions).expect("TCG counts instructions");
        }
        check_clock(Accel::Kvm, GuestClock::Wall).expect("KVM keeps the wall clock");
    }

    #[test]
    fn rules_kvm_out_only_when_the_flags_lack_vmx_and_svm() {
        let cpu = |flags: &str| format!("processor\t: 0\nflags\t\t: fpu {flags} sse2\n\n");
        assert_eq!(cpu_virtualization(&cpu("vme pae")), Some(false));
        assert_eq!(cpu_virtualization(&cpu("vmx ept")), Some(true));
        assert_eq!(cpu_virtualization(&cpu("svm npt")), Some(true));
        // `vmx flags` (Linux 5.8+) is another key; its values do not count as the flag.
        let vmx_flags = format!("{}vmx flags\t: vnmi ept\n", cpu("pae"));
        assert_eq!(cpu_virtualization(&vmx_flags), Some(false));
        // A word containing the name is not the flag.
        assert_eq!(cpu_virtualization(&cpu("svmx vmxon")), Some(false));
        // No flags line (arm64's is `Features`; /proc unreadable): nothing is ruled out.
        assert_eq!(
            cpu_virtualization("processor\t: 0\nFeatures\t: fp asimd\n"),
            None
        );
        assert_eq!(cpu_virtualization(""), None);
    }

    /// A stall is measured from the log's last growth, not from the boot's start.
    #[test]
    fn the_console_watch_times_the_logs_last_growth() {
        let dir = std::env::temp_dir().join(format!("xtask-console-watch-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let log = dir.join("console.log");
        let mut w = ConsoleWatch::new(&log);
        let pause = Duration::from_millis(50);
        std::thread::sleep(pause);
        w.poll();
        let before = w.quiet_for();
        assert!(before >= pause, "no log yet: {before:?}");
        fs::write(&log, "[    1.9] ttyS0 is a 16550A\n").expect("write");
        w.poll();
        assert!(w.quiet_for() < before, "it grew");
        std::thread::sleep(pause);
        w.poll();
        assert!(w.quiet_for() >= pause, "nothing new since");
        assert!(w.seen("16550A"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn finds_panics() {
        let log =
            "[    1.0] foo\n[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n";
        assert_eq!(
            panic_line(log),
            Some("[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs")
        );
        assert_eq!(panic_line("xtask-vm: init at 2.0s\n"), None);
    }
}
