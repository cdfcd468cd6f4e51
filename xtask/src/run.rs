//! `cargo xtask run`: the main job. Records a workload on a live kernel (natively when this
//! host can attach probes, else in the VM), replays it on the model, diffs the two, and exits
//! with the diff's status (0 clean, 1 anomalies, 2 inconclusive).
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use tracer_analysis::record_summary::RecordSummary;

use crate::{
    builder, cmd, setup,
    vm::{self, KernelChoice, VmSpec},
};

#[derive(clap::Args)]
pub struct RunArgs {
    /// A builtin workload (`tracer workloads` lists them) or a TOML file.
    #[arg(long, default_value = "prune-stat")]
    workload: String,
    /// Multiply the workload's iteration counts.
    #[arg(long)]
    scale: Option<f64>,
    /// Record in a QEMU guest even if this host could attach probes.
    #[arg(long, conflicts_with = "native")]
    vm: bool,
    /// Record on this host's kernel; fail rather than fall back to the VM.
    #[arg(long)]
    native: bool,
    /// Record in the VM (implies --vm) on this kernel: a bzImage PATH (with --modules),
    /// debian:SUITE, debian:SUITE/VERSION or built:NAME [default of the VM: debian:bookworm].
    #[arg(long, value_name = "KERNEL")]
    kernel: Option<KernelChoice>,
    /// The lib/modules/<release> directory of a --kernel PATH, for workloads on ext4 or minix.
    #[arg(long, value_name = "DIR", requires = "kernel")]
    modules: Option<PathBuf>,
    /// One more kernel command-line parameter for the VM (repeatable), e.g.
    /// dcache_bug_delay_us=20 for a catalogue bug's race window.
    #[arg(long, value_name = "PARAM")]
    append: Vec<String>,
    /// Model profile; default: the one for the recorded kernel's release.
    #[arg(long)]
    profile: Option<String>,
    /// Where the traces and reports go.
    #[arg(long, default_value = "out")]
    out: PathBuf,
}

impl RunArgs {
    /// A run in the VM of `workload` at `scale`, into `out`, with the default profile.
    pub fn in_vm(workload: &str, scale: f64, out: PathBuf) -> RunArgs {
        RunArgs {
            workload: workload.to_string(),
            scale: Some(scale),
            vm: true,
            native: false,
            kernel: None,
            modules: None,
            append: Vec::new(),
            profile: None,
            out,
        }
    }

    /// A run in the VM of `workload` (a builtin or a TOML file) on this kernel, with these
    /// kernel command-line parameters.
    pub fn on_kernel(
        workload: &str,
        kernel: KernelChoice,
        append: Vec<String>,
        out: PathBuf,
    ) -> RunArgs {
        RunArgs {
            kernel: Some(kernel),
            append,
            scale: None,
            ..RunArgs::in_vm(workload, 1.0, out)
        }
    }
}

pub fn run(args: RunArgs) -> Result<i32> {
    let t0 = Instant::now();
    let mut spent = Spent::default();
    setup::for_run_build();
    // One build serves both sides: the static tracer goes into the guest and runs here. It
    // needs none of the packages, so on a fresh machine the compile and apt overlap.
    let build = std::thread::spawn(|| {
        let t = Instant::now();
        builder::static_tracer_binary().map(|p| (p, t.elapsed()))
    });
    let packages = setup::for_run_packages();
    spent.add(Phase::Packages, t0.elapsed());
    let built = build
        .join()
        .map_err(|_| anyhow::anyhow!("the build thread panicked"))?;
    packages?;
    let (tracer, build_time) = built?;
    spent.add(Phase::Build, build_time);
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        std::env::current_dir()?.join(&args.out)
    };
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let workload = resolve_workload_arg(&args.workload)?;

    let (use_vm, why) = if args.vm || args.kernel.is_some() {
        (true, "asked for (--vm or --kernel)".to_string())
    } else {
        match native_capability(&tracer) {
            Ok(how) => (false, how),
            Err(why) if args.native => bail!("--native: this host cannot attach probes: {why}"),
            Err(why) => (true, why),
        }
    };
    let kernel_trace = out.join("kernel.trace");
    let mut record_args: Vec<String> = vec![
        "record".into(),
        "--workload".into(),
        workload.clone(),
        "--summary".into(),
        "record.json".into(),
    ];
    if let Some(f) = args.scale {
        record_args.extend(["--scale".into(), f.to_string()]);
    }
    let t = Instant::now();
    if use_vm {
        eprintln!("run: recording in a QEMU guest: {why}");
        let vm = record_in_vm(&args, &tracer, &workload, record_args, &out)?;
        spent.add(Phase::Kernel, vm.kernel);
        spent.add(Phase::Initramfs, vm.initramfs);
        if let Some(probe) = vm.kvm_probe {
            spent.add(Phase::KvmProbe, probe);
        }
        spent.add(Phase::Boot, vm.boot_to_init.unwrap_or_default());
        spent.tracer(&out.join("record.json"), vm.tracer.unwrap_or_default());
        spent.add(Phase::Transfer, vm.transfer);
    } else {
        eprintln!("run: recording natively: {why}");
        record_args.extend(["--out".into(), kernel_trace.display().to_string()]);
        let status = Command::new(&tracer)
            .args(&record_args)
            .current_dir(&out)
            .status()
            .context("running tracer record")?;
        if !status.success() {
            bail!("tracer record failed ({status})");
        }
        spent.tracer(&out.join("record.json"), t.elapsed());
    }

    let model_trace = out.join("model.trace");
    let mut replay = Command::new(&tracer);
    replay
        .args(["replay", "--against"])
        .arg(&kernel_trace)
        .arg("--out")
        .arg(&model_trace);
    if let Some(p) = &args.profile {
        replay.args(["--profile", p]);
    }
    let t = Instant::now();
    cmd::run(&mut replay).context("replaying the workload on the model")?;
    spent.add(Phase::Replay, t.elapsed());

    let report_txt = out.join("report.txt");
    let t = Instant::now();
    let diff_out = Command::new(&tracer)
        .arg("diff")
        .arg(&kernel_trace)
        .arg(&model_trace)
        .arg("--json")
        .arg(out.join("report.json"))
        .arg("--timeline")
        .arg(out.join("timeline.json"))
        .output()
        .context("running tracer diff")?;
    spent.add(Phase::Diff, t.elapsed());
    fs::write(&report_txt, &diff_out.stdout)
        .with_context(|| format!("writing {}", report_txt.display()))?;
    let text = String::from_utf8_lossy(&diff_out.stdout);
    // The summary is everything before the first detail block.
    let summary: String = text
        .split("\n[")
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string();
    println!("{summary}");
    eprint!("{}", String::from_utf8_lossy(&diff_out.stderr));
    spent.add(Phase::Total, t0.elapsed());
    let time_json = out.join("time.json");
    fs::write(&time_json, serde_json::to_vec_pretty(&spent.json(use_vm))?)
        .with_context(|| format!("writing {}", time_json.display()))?;
    eprintln!(
        "\nrun: {} written: kernel.trace, model.trace, report.txt (details), report.json, timeline.json (open in ui.perfetto.dev or chrome://tracing), time.json (where the seconds went)",
        out.display()
    );
    eprintln!("run: time: {spent}");
    Ok(diff_out.status.code().unwrap_or(2))
}

/// A builtin name stays a name; a TOML file becomes an absolute path (the VM copies it in).
fn resolve_workload_arg(w: &str) -> Result<String> {
    let p = Path::new(w);
    if p.exists() {
        Ok(fs::canonicalize(p)?.display().to_string())
    } else {
        Ok(w.to_string())
    }
}

/// Ok(how) when this host can attach the probes itself, else Err(why not).
fn native_capability(tracer: &Path) -> std::result::Result<String, String> {
    if !setup::is_root() {
        return Err("not root (attaching probes needs root)".into());
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err("the kernel publishes no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    // fentry needs tracing programs to load; kprobes need CONFIG_KPROBES.
    let verify = cmd::output(Command::new(tracer).args(["verify", "--json"]))
        .map_err(|e| format!("tracer verify failed: {e}"))?;
    let fentry_ok = verify.lines().any(|l| {
        l.contains("\"program\":\"lookup_rcu_fentry\"") && l.contains("\"status\":\"loaded\"")
    });
    if fentry_ok {
        return Ok("this kernel loads fentry/fexit programs".into());
    }
    if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return Ok("this kernel has kprobes".into());
    }
    Err(
        "this kernel refuses tracing programs and has no kprobes (CONFIG_KPROBES off or lockdown)"
            .into(),
    )
}

/// util-linux's mkfs.minix on the host (Debian's path).
const MKFS_MINIX: &str = "/usr/sbin/mkfs.minix";

/// Host programs (with their libraries) a guest needs for a workload whose file system needs
/// `modules`: the guest's busybox formats ext2 (mke2fs) but has no mkfs.minix.
pub fn guest_tools(modules: &[String]) -> Result<Vec<(PathBuf, PathBuf)>> {
    if !modules.iter().any(|m| m == "minix") {
        return Ok(Vec::new());
    }
    let mkfs = Path::new(MKFS_MINIX);
    if !mkfs.is_file() {
        bail!(
            "{MKFS_MINIX} is missing; a minix workload needs it in the guest \
             (Debian: apt-get install util-linux)"
        );
    }
    cmd::program_with_libraries(mkfs)
}

/// A part of a run, timed on the host's clock; the recording's own phases come from `tracer
/// record --summary` (the guest's clock in the VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    /// apt installing what `run` needs (nothing when it is installed).
    Packages,
    /// The static tracer's build, beside the packages.
    Build,
    /// Finding (or fetching) the VM's kernel.
    Kernel,
    Initramfs,
    /// A KVM guest that did not reach init, tried first: once per machine where KVM is broken.
    KvmProbe,
    /// QEMU start to the guest's init.
    Boot,
    /// `tracer record`, all of it, as the host (native) or the guest's console (VM) saw it.
    Record,
    /// Of the recording: reading the kernel's BTF and the embedded eBPF object.
    BtfAndObject,
    /// Of the recording: loading and attaching the programs.
    Attach,
    /// Of the recording: the workload while the ring is drained.
    Workload,
    /// Of the recording: the kernel's counters read, the programs detached (on a host) or
    /// pinned (in the VM's guest, which powers off next), the trace written.
    DetachAndTrace,
    /// The tracer's end in the guest to the results unpacked here.
    Transfer,
    Replay,
    Diff,
    Total,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Packages => "packages",
            Phase::Build => "build (beside the packages)",
            Phase::Kernel => "kernel",
            Phase::Initramfs => "initramfs",
            Phase::KvmProbe => "KVM probe (KVM broken here; remembered)",
            Phase::Boot => "boot",
            Phase::Record => "record",
            Phase::BtfAndObject => "BTF and object",
            Phase::Attach => "attach",
            Phase::Workload => "workload",
            Phase::DetachAndTrace => "detach or pin, trace",
            Phase::Transfer => "transfer",
            Phase::Replay => "replay",
            Phase::Diff => "diff",
            Phase::Total => "total",
        }
    }

    /// The recording's phases, from `tracer record`'s summary.
    fn of_recording(s: &RecordSummary) -> [(Phase, f64); 4] {
        [
            (Phase::BtfAndObject, s.load_seconds),
            (Phase::Attach, s.attach_seconds),
            (Phase::Workload, s.workload_seconds),
            (Phase::DetachAndTrace, s.finish_seconds),
        ]
    }
}

/// Where a run's seconds went, in order: the recording with its phases inside it.
#[derive(Default)]
struct Spent {
    parts: Vec<(Phase, Duration)>,
    record: Vec<(Phase, f64)>,
}

impl Spent {
    fn add(&mut self, phase: Phase, d: Duration) {
        self.parts.push((phase, d));
    }

    /// The recording (`elapsed`, as the host or the guest saw it) with its phases from `tracer
    /// record`'s summary. A summary that cannot be read leaves the phases out.
    fn tracer(&mut self, summary: &Path, elapsed: Duration) {
        // No summary (the recording failed) leaves the recording's own phases out.
        self.record = RecordSummary::read(summary)
            .map(|s| Phase::of_recording(&s).to_vec())
            .unwrap_or_default();
        self.parts.push((Phase::Record, elapsed));
    }

    /// Every figure, for time.json: `phases` in order (the recording's own under `record`).
    fn json(&self, vm: bool) -> serde_json::Value {
        let phases: Vec<serde_json::Value> = self
            .parts
            .iter()
            .map(|&(phase, d)| {
                let mut p = serde_json::json!({ "phase": phase, "seconds": d.as_secs_f64() });
                if phase == Phase::Record {
                    p["of_which"] = self
                        .record
                        .iter()
                        .map(
                            |&(phase, secs)| serde_json::json!({ "phase": phase, "seconds": secs }),
                        )
                        .collect();
                }
                p
            })
            .collect();
        serde_json::json!({
            "schema": 1,
            "recorded_in": if vm { "vm" } else { "native" },
            "load_average": cmd::host_load(),
            "phases": phases,
        })
    }
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = |d: f64| format!("{d:.1}s");
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|&(phase, d)| {
                let inner: Vec<String> = self
                    .record
                    .iter()
                    .map(|&(p, s)| format!("{} {}", p.label(), secs(s)))
                    .collect();
                if phase == Phase::Record && !inner.is_empty() {
                    format!("record ({}) {}", inner.join(", "), secs(d.as_secs_f64()))
                } else {
                    format!("{} {}", phase.label(), secs(d.as_secs_f64()))
                }
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn record_in_vm(
    args: &RunArgs,
    tracer: &Path,
    workload: &str,
    mut record_args: Vec<String>,
    out: &Path,
) -> Result<vm::Timings> {
    let mut spec = VmSpec::new(Vec::<String>::new());
    spec.tracer = Some(tracer.to_path_buf());
    if let Some(k) = &args.kernel {
        spec.kernel = k.clone().with_modules(args.modules.clone())?;
    }
    spec.kernel_args = args.append.clone();
    let modules = cmd::output(Command::new(tracer).args(["workloads", "--modules", workload]))
        .context("asking the tracer which kernel modules the workload needs")?;
    spec.load_modules = modules
        .trim()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect();
    spec.files.extend(guest_tools(&spec.load_modules)?);
    if Path::new(workload).is_absolute() {
        let guest = PathBuf::from("/workload.toml");
        spec.files.push((PathBuf::from(workload), guest.clone()));
        if let Some(i) = record_args.iter().position(|a| a == workload) {
            record_args[i] = guest.display().to_string();
        }
    }
    // The guest powers off after the transfer: detaching there only waits for grace periods.
    record_args.extend([
        "--out".into(),
        "kernel.trace".into(),
        "--quiet".into(),
        "--leave-attached".into(),
    ]);
    spec.tracer_args = record_args;
    spec.timeout = Duration::from_secs(900);
    spec.out_dir = out.join("guest");
    let outcome = vm::run_in_vm(&spec)?;
    let stderr = fs::read_to_string(&outcome.stderr).unwrap_or_default();
    eprint!("{stderr}");
    if outcome.exit_code != 0 {
        bail!(
            "tracer record exited {} in the guest; console log: {}",
            outcome.exit_code,
            outcome.console_log.display()
        );
    }
    for f in ["kernel.trace", "record.json"] {
        fs::rename(outcome.out_dir.join(f), out.join(f))
            .with_context(|| format!("moving {f} out of {}", outcome.out_dir.display()))?;
    }
    Ok(outcome.timings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_json_has_every_phase_in_order() {
        let dir = std::env::temp_dir().join(format!("xtask-run-time-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let summary = dir.join("record.json");
        let s = RecordSummary {
            load_seconds: 1.5,
            attach_seconds: 2.0,
            workload_seconds: 0.5,
            finish_seconds: 0.25,
            ..RecordSummary::default()
        };
        fs::write(&summary, serde_json::to_vec(&s).expect("json")).expect("write");
        let mut spent = Spent::default();
        spent.add(Phase::Boot, Duration::from_millis(5000));
        spent.tracer(&summary, Duration::from_millis(4500));
        spent.add(Phase::Total, Duration::from_secs(10));
        let j = spent.json(true);
        assert_eq!(j["recorded_in"], "vm");
        let phases: Vec<&str> = j["phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| p["phase"].as_str().expect("name"))
            .collect();
        assert_eq!(phases, ["boot", "record", "total"]);
        let record = &j["phases"][1];
        assert_eq!(record["seconds"], 4.5);
        assert_eq!(record["of_which"][0]["phase"], "btf-and-object");
        assert_eq!(record["of_which"][3]["phase"], "detach-and-trace");
        assert_eq!(record["of_which"][3]["seconds"], 0.25);
        assert_eq!(
            spent.to_string(),
            "boot 5.0s, record (BTF and object 1.5s, attach 2.0s, workload 0.5s, detach or \
             pin, trace 0.2s) 4.5s, total 10.0s"
        );
        fs::write(&summary, "not json").expect("write");
        let mut unread = Spent::default();
        unread.tracer(&summary, Duration::from_secs(1));
        assert_eq!(unread.to_string(), "record 1.0s");
        assert!(unread.json(false)["phases"][0]
            .get("of_which")
            .is_some_and(|w| w.as_array().is_some_and(Vec::is_empty)));
        let _ = fs::remove_dir_all(&dir);
    }
}
