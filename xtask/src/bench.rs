//! `cargo xtask bench`: the recording-cost benchmark (`tracer bench`) in one boot of the VM,
//! with Debian's bpftrace, its shared libraries and its loader carried into the initramfs.
//! The table comes from the guest; the JSON lands in target/bench/record-cost.json.
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{cmd, test::Check, vm, vm::GuestClock};

/// Where the guest writes the results, relative to its output directory.
const GUEST_JSON: &str = "record-cost.json";

/// The configurations `tracer bench` runs by default, all of which the smoke run expects.
const SETUPS: [&str; 6] = [
    "untraced",
    "fentry-floor",
    "fentry",
    "kprobe-floor",
    "kprobe",
    "bpftrace",
];

/// Iterations per thread in the smoke run: enough for every probe to fire, a VM boot of about
/// a minute in all.
const SMOKE_ITERATIONS: u64 = 300;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Rounds; each runs every configuration once.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Workload thread counts: every configuration is measured at each, in the same boot.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    threads: Vec<u32>,
    /// Iterations per workload thread [default: the tracer's].
    #[arg(long)]
    iterations: Option<u64>,
    /// Traced configurations to run [default:
    /// fentry-floor,fentry,kprobe-floor,kprobe,bpftrace].
    #[arg(long, value_name = "A,B")]
    setups: Option<String>,
    /// Pass this argument on to every `tracer record` in the guest (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    record_arg: Vec<String>,
    /// Also record with this statically linked tracer, as `fentry@NAME` and `kprobe@NAME`
    /// (repeatable): another build compared in the same boot.
    #[arg(long, value_name = "NAME=PATH", value_parser = parse_variant)]
    variant: Vec<(String, PathBuf)>,
    /// Write the JSON results here.
    #[arg(long, default_value = "target/bench/record-cost.json")]
    out: PathBuf,
    /// Wall-clock limit for the VM in seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// The guest's clocksource: `tsc` (what x86 hardware uses) or `kernel` (the guest kernel's
    /// own choice, HPET under TCG, where every timestamp is an emulated device read).
    #[arg(long, value_enum, default_value_t = Clocksource::Tsc)]
    clocksource: Clocksource,
    /// What the guest's clock counts: `wall`, or `instructions` (TCG on one host thread under
    /// QEMU's `-icount`: every time and ratio then counts the guest's instructions, the same
    /// whatever the host's load; about six times slower to run, so fewer rounds or threads fit
    /// the timeout).
    #[arg(long, value_enum, default_value_t = GuestClock::Wall)]
    guest_clock: GuestClock,
}

/// Which clock the guest kernel reads for every timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Clocksource {
    /// `tsc=reliable`: under TCG the kernel marks the TSC unstable at boot (the vCPUs' first
    /// reads look unsynchronized), although every vCPU's TSC is the host's; trusting it gives
    /// timestamps at the cost of an instruction, as on hardware.
    Tsc,
    /// The kernel's choice: HPET under TCG. Each read is emulated MMIO that takes QEMU's big
    /// lock, about 0.4 µs here, for the tracer's two timestamps an event, bpftrace's and the
    /// workload's own alike.
    Kernel,
}

/// What to run.
pub struct BenchOptions {
    pub rounds: u32,
    pub threads: Vec<u32>,
    pub iterations: Option<u64>,
    pub setups: Option<String>,
    pub record_args: Vec<String>,
    /// Other tracer builds (name, static binary) to record with too.
    pub variants: Vec<(String, PathBuf)>,
    pub clocksource: Clocksource,
    pub clock: GuestClock,
    pub timeout: Duration,
    /// Receives the guest's output directory.
    pub vm_out: PathBuf,
}

/// A finished benchmark: the guest's results and the VM run that made them.
pub struct BenchRun {
    pub json: PathBuf,
    pub outcome: vm::VmOutcome,
}

/// Boots the VM once and runs `tracer bench` in it.
pub fn run(opts: &BenchOptions) -> Result<BenchRun> {
    let mut args = vec![
        "bench".to_string(),
        "--rounds".into(),
        opts.rounds.to_string(),
        "--threads".into(),
        opts.threads
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        "--bpftrace".into(),
        "/usr/bin/bpftrace".into(),
        "--out".into(),
        GUEST_JSON.into(),
    ];
    if let Some(n) = opts.iterations {
        args.extend(["--iterations".into(), n.to_string()]);
    }
    if let Some(s) = &opts.setups {
        args.extend(["--setups".into(), s.clone()]);
    }
    for a in &opts.record_args {
        args.push(format!("--record-arg={a}"));
    }
    // bpftrace is the comparison, needed by the benchmark alone: installed here, not by setup.
    crate::setup::ensure_packages(&["bpftrace"], crate::setup::is_root())?;
    let mut files = bpftrace_files()?;
    for (name, host) in &opts.variants {
        let host = vm::static_binary(
            host,
            "give a tracer built by `cargo xtask build --static-tracer`",
        )?;
        let guest = PathBuf::from(format!("/bin/tracer-{name}"));
        args.push(format!("--variant={name}={}", guest.display()));
        files.push((host, guest));
    }
    let mut spec = vm::VmSpec::new(args);
    spec.files = files;
    if opts.clocksource == Clocksource::Tsc {
        spec.kernel_args.push("tsc=reliable".into());
    }
    spec.clock = opts.clock;
    spec.timeout = opts.timeout;
    spec.out_dir = opts.vm_out.clone();
    // bpftrace's libraries (LLVM, clang) take about 200 MB of the initramfs, unpacked in RAM.
    spec.memory_mib = 2048;
    let outcome = vm::run_in_vm(&spec)?;
    let json = outcome.out_dir.join(GUEST_JSON);
    if outcome.exit_code != 0 || !json.is_file() {
        let err = fs::read_to_string(&outcome.stderr).unwrap_or_default();
        bail!(
            "tracer bench exited {} in the guest:\n{}",
            outcome.exit_code,
            err.trim()
        );
    }
    Ok(BenchRun { json, outcome })
}

/// `NAME=PATH` of `--variant`.
fn parse_variant(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path))
            if !name.is_empty()
                && !path.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "{s:?}: expected NAME=PATH (NAME of letters, digits, - _ .)"
        )),
    }
}

/// bpftrace with its shared libraries, each at its own path in the guest.
fn bpftrace_files() -> Result<Vec<(PathBuf, PathBuf)>> {
    let bin = PathBuf::from("/usr/bin/bpftrace");
    if !bin.is_file() {
        bail!(
            "{} is missing; `cargo xtask setup` installs Debian's bpftrace",
            bin.display()
        );
    }
    cmd::program_with_libraries(&bin)
}

/// `cargo xtask bench`: the guest's table on stdout, the JSON copied to `--out`.
pub fn bench(args: BenchArgs) -> Result<i32> {
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        cmd::root().join(&args.out)
    };
    let load_before = cmd::host_load();
    let r = run(&BenchOptions {
        rounds: args.rounds,
        threads: args.threads,
        iterations: args.iterations,
        setups: args.setups,
        record_args: args.record_arg,
        variants: args.variant,
        clocksource: args.clocksource,
        clock: args.guest_clock,
        timeout: Duration::from_secs(args.timeout),
        vm_out: vm::vm_dir().join("bench-out"),
    })?;
    let _ = std::io::stderr().write_all(&fs::read(&r.outcome.stderr).unwrap_or_default());
    let table = fs::read_to_string(&r.outcome.stdout)
        .with_context(|| format!("reading {}", r.outcome.stdout.display()))?;
    print!("{table}");
    let load = serde_json::json!({ "before": load_before, "after": cmd::host_load() });
    write_with_host_context(&r.json, &out, &load, args.guest_clock)?;
    eprintln!(
        "xtask bench: results in {} (VM: {}, {:?}, {:.0}s; host load average before and after: \
         {load})",
        out.display(),
        r.outcome.release,
        r.outcome.accel,
        r.outcome.timings.total.as_secs_f64()
    );
    Ok(0)
}

/// The guest's results written to `to` with what they depend on beside the guest: the host's
/// 1, 5 and 15 minute load averages before and after (the guest's vCPUs share the host's
/// cores, so wall-clock figures move with what else the host runs) and the guest's clock.
fn write_with_host_context(from: &Path, to: &Path, load: &Value, clock: GuestClock) -> Result<()> {
    let text = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut json: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", from.display()))?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("host_load_average".into(), load.clone());
        obj.insert("guest_clock".into(), serde_json::to_value(clock)?);
    }
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(to, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", to.display()))
}

/// The smoke run behind `cargo xtask test`'s "bench-smoke" step: one round, a few iterations,
/// every configuration present and the tracer's own loss zero. Not a timing test.
pub fn smoke() -> Result<Vec<Check>> {
    let r = run(&BenchOptions {
        rounds: 1,
        threads: vec![2],
        iterations: Some(SMOKE_ITERATIONS),
        setups: None,
        record_args: Vec::new(),
        variants: Vec::new(),
        clocksource: Clocksource::Tsc,
        // The instruction clock's boot path is run here; the other VM steps run the wall's.
        clock: GuestClock::Instructions,
        timeout: Duration::from_secs(900),
        vm_out: vm::vm_dir().join("bench-smoke"),
    })?;
    let text = fs::read(&r.json).with_context(|| format!("reading {}", r.json.display()))?;
    let json: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", r.json.display()))?;
    Ok(check_results(&json))
}

/// What a results file must show: every configuration with a time; fentry and kprobe with
/// hits, every hit delivered and nothing lost; bpftrace with its hits counted; the floors with
/// no hits (their programs count nothing).
fn check_results(json: &Value) -> Vec<Check> {
    let check = |what: String, ok: bool, detail: String| Check { what, ok, detail };
    let summary = json["summary"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for name in SETUPS {
        let what = format!("bench {name}");
        let Some(s) = summary.iter().find(|s| s["setup"] == name) else {
            out.push(check(what, false, "missing from the results".into()));
            continue;
        };
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        let seconds = s["median_seconds"].as_f64().unwrap_or(0.0);
        let (hits, delivered, lost) = (n("hits_total"), n("delivered_total"), n("lost_total"));
        out.push(match name {
            _ if seconds <= 0.0 => check(what, false, "no workload time".into()),
            "untraced" => check(what, true, String::new()),
            "fentry-floor" | "kprobe-floor" if hits == 0 && delivered == 0 => {
                check(what, true, String::new())
            }
            "fentry-floor" | "kprobe-floor" => check(
                what,
                false,
                format!("{hits} hits and {delivered} events from programs that do nothing"),
            ),
            "bpftrace" if hits > 0 => check(
                what,
                true,
                format!("{delivered} of {hits} events delivered, {lost} lost"),
            ),
            "bpftrace" => check(what, false, "no hits counted".into()),
            _ if hits > 0 && lost == 0 && delivered == hits => check(what, true, String::new()),
            _ => check(
                what,
                false,
                format!("{delivered} of {hits} events delivered, {lost} lost"),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_checks_want_every_setup_and_no_loss_of_ours() {
        let row = |setup: &str, hits: u64, delivered: u64| {
            serde_json::json!({
                "setup": setup, "median_seconds": 0.5, "hits_total": hits,
                "delivered_total": delivered, "lost_total": hits - delivered,
            })
        };
        let good = serde_json::json!({ "summary": [
            row("untraced", 0, 0), row("fentry-floor", 0, 0), row("fentry", 10, 10),
            row("kprobe-floor", 0, 0), row("kprobe", 10, 10), row("bpftrace", 10, 4),
        ]});
        assert!(check_results(&good).iter().all(|c| c.ok));
        let lossy = serde_json::json!({ "summary": [
            row("untraced", 0, 0), row("fentry", 10, 9), row("bpftrace", 10, 4),
        ]});
        let failed: Vec<String> = check_results(&lossy)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.what)
            .collect();
        assert_eq!(
            failed,
            [
                "bench fentry-floor",
                "bench fentry",
                "bench kprobe-floor",
                "bench kprobe"
            ]
        );
    }
}
