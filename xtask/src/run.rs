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
    // A usage error comes before any download.
    let kernel = args
        .kernel
        .clone()
        .map(|k| k.with_modules(args.modules.clone()))
        .transpose()?;
    setup::for_run_build();
    // Which kernel the VM boots is known before the tracer is built, and whether the run will
    // need the VM is known or likely: the kernel's download then leaves the critical path.
    let prefetch = kernel_to_prefetch(&args, HostFacts::read()).map(|(choice, why)| {
        eprintln!("run: fetching the VM's kernel ({choice}) beside the build: {why}");
        std::thread::spawn(move || {
            let t = Instant::now();
            vm::prefetch_kernel(&choice).map(|_| t.elapsed())
        })
    });
    // One build serves both sides: the static tracer goes into the guest and runs here. It
    // needs none of the packages, so on a fresh machine the compile and apt overlap.
    let build = std::thread::spawn(|| {
        let t = Instant::now();
        builder::static_tracer_binary().map(|p| (p, t.elapsed()))
    });
    let packages = setup::for_run_packages();
    spent.add(Phase::Packages, t0.elapsed());
    let built = build.join();
    // Both threads joined before either's failure returns: a fetch's apt-get would outlive us.
    // What the run waits for the fetch after the build is the kernel's time on its critical
    // path.
    let waiting = Instant::now();
    let fetched = prefetch.map(|f| f.join());
    let fetch_wait = waiting.elapsed();
    let built = built.map_err(|_| anyhow::anyhow!("the build thread panicked"))?;
    let fetched = fetched
        .transpose()
        .map_err(|_| anyhow::anyhow!("the kernel's fetch thread panicked"))?;
    packages?;
    let (tracer, build_time) = built?;
    spent.add_beside(Phase::Build, build_time, Phase::Packages);
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
        // A failed fetch fails here, once; a fetched kernel is found in the cache below.
        if let Some(fetch) = fetched {
            spent.add_beside(Phase::KernelFetch, fetch?, Phase::Build);
        }
        let vm = record_in_vm(&args, kernel, &tracer, &workload, record_args, &out)?;
        spent.add(Phase::Kernel, fetch_wait + vm.kernel);
        spent.add(Phase::Initramfs, vm.initramfs);
        if let Some(probe) = vm.kvm_probe {
            spent.add(Phase::KvmProbe, probe);
        }
        spent.add(Phase::Boot, vm.boot_to_init.unwrap_or_default());
        spent.tracer(&out.join("record.json"), vm.tracer.unwrap_or_default());
        spent.add(Phase::Transfer, vm.transfer);
    } else {
        eprintln!("run: recording natively: {why}");
        match fetched {
            Some(Ok(took)) => {
                eprintln!(
                    "run: the kernel fetched beside the build is not needed (it stays cached)"
                );
                spent.add_beside(Phase::KernelFetch, took, Phase::Build);
                spent.add(Phase::Kernel, fetch_wait);
            }
            Some(Err(e)) => {
                eprintln!(
                    "run: the kernel's fetch beside the build failed, and is not needed: {e:#}"
                );
                spent.add(Phase::Kernel, fetch_wait);
            }
            None => {}
        }
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

/// Where the kernel publishes its BTF; without it the tracer cannot resolve offsets.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The kprobe PMU: where `perf_event_open` finds kprobes, which the tracer attaches with.
const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";

/// What decides, before the tracer exists to ask the kernel, whether a run records in the VM.
#[derive(Debug, Clone, Copy)]
struct HostFacts {
    root: bool,
    btf: bool,
    kprobe_pmu: bool,
}

impl HostFacts {
    fn read() -> HostFacts {
        HostFacts {
            root: setup::is_root(),
            btf: Path::new(KERNEL_BTF).exists(),
            kprobe_pmu: Path::new(KPROBE_PMU).exists(),
        }
    }
}

/// The Debian kernel to download beside the build, and why: when the run will record in the
/// VM for sure ([`native_capability`] fails without asking the tracer), or very likely (no
/// kprobes: only fentry could attach, which a kernel without kprobes seldom allows). A host
/// that may trace natively fetches nothing, nor does a kernel that needs no download. The very
/// likely host extracts the image too: on this project's machine kind (no kprobes, fentry
/// refused) that took 1.3 s after the build when left to it (session 20, `lead.json`).
fn kernel_to_prefetch(args: &RunArgs, host: HostFacts) -> Option<(KernelChoice, &'static str)> {
    let why = if args.vm || args.kernel.is_some() {
        "asked for (--vm or --kernel)"
    } else if args.native {
        return None;
    } else if !host.root {
        "not root, so the VM records"
    } else if !host.btf {
        "no kernel BTF here, so the VM records"
    } else if !host.kprobe_pmu {
        "no kprobes here, so the VM records unless this kernel loads fentry programs"
    } else {
        return None;
    };
    let choice = args.kernel.clone().unwrap_or_default();
    matches!(choice, KernelChoice::Debian { .. }).then_some((choice, why))
}

/// Ok(how) when this host can attach the probes itself, else Err(why not).
fn native_capability(tracer: &Path) -> std::result::Result<String, String> {
    if !setup::is_root() {
        return Err("not root (attaching probes needs root)".into());
    }
    if !Path::new(KERNEL_BTF).exists() {
        return Err(format!("the kernel publishes no BTF ({KERNEL_BTF})"));
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
    if Path::new(KPROBE_PMU).exists() {
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
    /// Fetching (or finding) the VM's kernel and extracting its PVH image beside the build,
    /// when the run knew it would need the VM or thought it very likely (see
    /// [`kernel_to_prefetch`]).
    KernelFetch,
    /// Finding (or fetching) the VM's kernel after the build, and extracting its PVH image;
    /// with a fetch beside the build, the time the run waited for it once built and finding
    /// both in the caches.
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
            Phase::Build => "build",
            Phase::KernelFetch => "kernel fetch",
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

/// One phase of a run: its time, and the phase it ran beside (its seconds then overlap that
/// phase's, so the phases add up to more than the total, which is the run's wall time).
struct Part {
    phase: Phase,
    took: Duration,
    beside: Option<Phase>,
}

/// Where a run's seconds went, in order: the recording with its phases inside it.
#[derive(Default)]
struct Spent {
    parts: Vec<Part>,
    record: Vec<(Phase, f64)>,
}

impl Spent {
    fn add(&mut self, phase: Phase, took: Duration) {
        self.parts.push(Part {
            phase,
            took,
            beside: None,
        });
    }

    /// A phase that ran at the same time as `beside`.
    fn add_beside(&mut self, phase: Phase, took: Duration, beside: Phase) {
        self.parts.push(Part {
            phase,
            took,
            beside: Some(beside),
        });
    }

    /// The recording (`elapsed`, as the host or the guest saw it) with its phases from `tracer
    /// record`'s summary. A summary that cannot be read leaves the phases out.
    fn tracer(&mut self, summary: &Path, elapsed: Duration) {
        // No summary (the recording failed) leaves the recording's own phases out.
        self.record = RecordSummary::read(summary)
            .map(|s| Phase::of_recording(&s).to_vec())
            .unwrap_or_default();
        self.add(Phase::Record, elapsed);
    }

    /// Every figure, for time.json: `phases` in order (the recording's own under `record`; a
    /// phase that overlapped another names it in `beside`).
    fn json(&self, vm: bool) -> serde_json::Value {
        let phases: Vec<serde_json::Value> = self
            .parts
            .iter()
            .map(|part| {
                let mut p =
                    serde_json::json!({ "phase": part.phase, "seconds": part.took.as_secs_f64() });
                if let Some(beside) = part.beside {
                    p["beside"] = serde_json::json!(beside);
                }
                if part.phase == Phase::Record {
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
            .map(|part| {
                let inner: Vec<String> = self
                    .record
                    .iter()
                    .map(|&(p, s)| format!("{} {}", p.label(), secs(s)))
                    .collect();
                let took = secs(part.took.as_secs_f64());
                match part.beside {
                    _ if part.phase == Phase::Record && !inner.is_empty() => {
                        format!("record ({}) {took}", inner.join(", "))
                    }
                    Some(b) => format!("{} (beside the {}) {took}", part.phase.label(), b.label()),
                    None => format!("{} {took}", part.phase.label()),
                }
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn record_in_vm(
    args: &RunArgs,
    kernel: Option<KernelChoice>,
    tracer: &Path,
    workload: &str,
    mut record_args: Vec<String>,
    out: &Path,
) -> Result<vm::Timings> {
    let mut spec = VmSpec::new(Vec::<String>::new());
    spec.tracer = Some(tracer.to_path_buf());
    if let Some(k) = kernel {
        spec.kernel = k;
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
        spent.add(Phase::Packages, Duration::from_secs(20));
        spent.add_beside(Phase::Build, Duration::from_secs(90), Phase::Packages);
        spent.add_beside(Phase::KernelFetch, Duration::from_secs(11), Phase::Build);
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
        assert_eq!(
            phases,
            [
                "packages",
                "build",
                "kernel-fetch",
                "boot",
                "record",
                "total"
            ]
        );
        assert_eq!(j["phases"][0].get("beside"), None);
        assert_eq!(j["phases"][1]["beside"], "packages");
        assert_eq!(j["phases"][2]["beside"], "build");
        let record = &j["phases"][4];
        assert_eq!(record["seconds"], 4.5);
        assert_eq!(record["of_which"][0]["phase"], "btf-and-object");
        assert_eq!(record["of_which"][3]["phase"], "detach-and-trace");
        assert_eq!(record["of_which"][3]["seconds"], 0.25);
        assert_eq!(
            spent.to_string(),
            "packages 20.0s, build (beside the packages) 90.0s, kernel fetch (beside the build) \
             11.0s, boot 5.0s, record (BTF and object 1.5s, attach 2.0s, workload 0.5s, detach \
             or pin, trace 0.2s) 4.5s, total 10.0s"
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

    #[test]
    fn modules_with_a_debian_kernel_is_refused_before_anything_is_fetched_or_built() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let args = Cli::try_parse_from([
            "run",
            "--kernel",
            "debian:bookworm",
            "--modules",
            "/nonexistent",
        ])
        .expect("arguments")
        .run;
        // Before the check moved ahead of the fetch and the build, this ran both first.
        let e = run(args).expect_err("a usage error");
        assert!(
            e.to_string()
                .contains("--modules goes with --kernel PATH only"),
            "{e:#}"
        );
    }

    #[test]
    fn fetches_the_kernel_beside_the_build_only_when_the_vm_is_sure_or_likely() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let args = |argv: &[&str]| {
            Cli::try_parse_from(std::iter::once("run").chain(argv.iter().copied()))
                .expect("arguments")
                .run
        };
        let can_trace = HostFacts {
            root: true,
            btf: true,
            kprobe_pmu: true,
        };
        let fetched = |argv: &[&str], host: HostFacts| {
            kernel_to_prefetch(&args(argv), host).map(|(k, _)| k.to_string())
        };
        let bookworm = Some("debian:bookworm".to_string());
        // A host that may trace natively downloads nothing it may not need.
        assert_eq!(fetched(&[], can_trace), None);
        assert_eq!(fetched(&["--vm"], can_trace), bookworm);
        assert_eq!(
            fetched(&["--kernel", "debian:trixie/6.12.1-1"], can_trace),
            Some("debian:trixie/6.12.1-1".to_string())
        );
        // A kernel on disk or built here needs no download.
        assert_eq!(fetched(&["--kernel", "/boot/vmlinuz"], can_trace), None);
        assert_eq!(fetched(&["--kernel", "built:b1"], can_trace), None);
        for host in [
            HostFacts {
                root: false,
                ..can_trace
            },
            HostFacts {
                btf: false,
                ..can_trace
            },
            HostFacts {
                kprobe_pmu: false,
                ..can_trace
            },
        ] {
            assert_eq!(fetched(&[], host), bookworm, "{host:?}");
            assert_eq!(fetched(&["--native"], host), None, "{host:?}: --native");
        }
    }
}
