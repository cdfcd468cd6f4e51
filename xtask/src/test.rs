//! `cargo xtask test`: every check the project has, in one run, ending with one line that
//! counts what passed and failed. A step that cannot run counts as failed, never as skipped.
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result};

use crate::{bench, builder::cargo, cmd, setup, vm};

#[derive(clap::Args)]
pub struct TestArgs {
    /// Run only these steps (repeatable or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Step>,
}

/// The steps, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    Fmt,
    Clippy,
    EbpfObject,
    Unit,
    Loom,
    Vm,
    Signals,
    E2e,
    BenchSmoke,
    Matrix,
    LiveBugs,
    Fuzz,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::EbpfObject => "ebpf-object",
            Step::Unit => "unit",
            Step::Loom => "loom",
            Step::Vm => "vm",
            Step::Signals => "signals",
            Step::E2e => "e2e",
            Step::BenchSmoke => "bench-smoke",
            Step::Matrix => "matrix",
            Step::LiveBugs => "live-bugs",
            Step::Fuzz => "fuzz",
        }
    }

    fn run(self, setup: &setup::Setup) -> Result<Tally> {
        match self {
            Step::Fmt => fmt(setup),
            Step::Clippy => clippy(setup),
            Step::EbpfObject => checks(crate::builder::ebpf_object_checks(setup.toolchain)?),
            Step::Unit => unit(setup),
            Step::Loom => loom(setup),
            Step::Vm => vm(setup),
            Step::Signals => checks(crate::signals::run()?),
            Step::E2e => e2e(setup),
            Step::BenchSmoke => checks(bench::smoke()?),
            Step::Matrix => checks(crate::matrix::smoke()?),
            Step::LiveBugs => live_bugs(setup),
            Step::Fuzz => fuzz(setup),
        }
    }
}

/// Passed and failed counts of one step, and a line naming each failure.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    /// Repeated after the summary: CI keeps only the tail of a long run's output.
    failures: Vec<String>,
}

impl Tally {
    fn of(passed: u64, failures: Vec<String>) -> Tally {
        Tally {
            passed,
            failed: failures.len() as u64,
            failures,
        }
    }

    fn fail(&mut self, line: String) {
        self.failed += 1;
        self.failures.push(line);
    }
}

pub fn test(args: TestArgs) -> Result<i32> {
    let setup = setup::setup().context("setup failed, so no test can run")?;
    let mut total = Tally::default();
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for step in <Step as clap::ValueEnum>::value_variants() {
        if !args.only.is_empty() && !args.only.contains(step) {
            continue;
        }
        let name = step.name();
        eprintln!("\n=== test step: {name} ===");
        let t0 = Instant::now();
        let tally = match step.run(&setup) {
            Ok(t) => t,
            Err(e) => {
                let line = format!("step {name} could not run: {e:#}");
                eprintln!("{line}");
                let mut t = Tally::default();
                t.fail(line);
                t
            }
        };
        lines.push(format!(
            "  {name:<10} {:>5} passed {:>4} failed  {:>7.1}s",
            tally.passed,
            tally.failed,
            t0.elapsed().as_secs_f64()
        ));
        total.passed += tally.passed;
        total.failed += tally.failed;
        failures.extend(tally.failures.into_iter().map(|f| format!("{name}: {f}")));
    }
    if !failures.is_empty() {
        eprintln!("\n=== failures ===");
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    eprintln!("\n=== summary ===");
    for l in &lines {
        eprintln!("{l}");
    }
    println!("xtask: {} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed == 0 { 0 } else { 1 })
}

/// Every fuzz target for a minute from its seeds; a crash fails (see fuzz.rs). Then the fuzz
/// crate's own tests (the checksum repair against the reader and the seeds): the crate is
/// outside the workspace, so the unit step does not run them.
fn fuzz(_: &setup::Setup) -> Result<Tally> {
    let time = std::time::Duration::from_secs(crate::fuzz::STEP_SECONDS);
    let (passed, failures) = crate::fuzz::run(&crate::fuzz::Target::ALL, time)?;
    let lib = status_step(
        Command::new("rustup")
            .current_dir(cmd::root().join("fuzz"))
            .args([
                "run",
                setup::toolchain::pinned_nightly(),
                "cargo",
                "test",
                "--locked",
                "--lib",
            ]),
    )?;
    Ok(add(Tally::of(passed, failures), lib))
}

/// The main job end to end on every builtin (see e2e.rs).
fn e2e(_: &setup::Setup) -> Result<Tally> {
    let (passed, failures) = crate::e2e::e2e()?;
    Ok(Tally::of(passed, failures))
}

/// One pass or one fail for a command's exit status.
fn status_step(c: &mut Command) -> Result<Tally> {
    let status = c
        .status()
        .with_context(|| format!("cannot start `{}`", cmd::show(c)))?;
    let mut t = Tally::default();
    if status.success() {
        t.passed = 1;
    } else {
        let line = format!("`{}` failed ({status})", cmd::show(c));
        eprintln!("{line}");
        t.fail(line);
    }
    Ok(t)
}

fn add(mut a: Tally, b: Tally) -> Tally {
    a.passed += b.passed;
    a.failed += b.failed;
    a.failures.extend(b.failures);
    a
}

fn fmt(_: &setup::Setup) -> Result<Tally> {
    let root = cmd::root();
    let host = status_step(
        Command::new(cargo())
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    let ebpf = status_step(Command::new(cargo()).current_dir(&root).args([
        "fmt",
        "--manifest-path",
        "tracer-ebpf/Cargo.toml",
        "--",
        "--check",
    ]))?;
    Ok(add(host, ebpf))
}

fn clippy(setup: &setup::Setup) -> Result<Tally> {
    let root = cmd::root();
    let lint = |selection: &[&str]| {
        status_step(
            Command::new(cargo())
                .current_dir(&root)
                .arg("clippy")
                .args(selection)
                .args(["--all-targets", "--locked", "--", "-D", "warnings"]),
        )
    };
    let host = lint(&["--workspace", "--exclude", "xtask"])?;
    // `cargo xtask` builds xtask alone, with tracer-analysis's engine off, where the workspace's
    // build unifies it on: xtask is linted as it is built, with tracer-analysis's reduced build
    // and its own targets (whose tests the workspace's run has run on the same source).
    let reduced = lint(&[
        "--package",
        "xtask",
        "--package",
        "tracer-analysis",
        "--no-default-features",
    ])?;
    // The eBPF crate is linted with the compiler that builds it, for its own target.
    let ebpf = status_step(
        setup
            .toolchain
            .cargo(&root.join("tracer-ebpf"))
            .args(["clippy", "--release", "--locked"])
            .args(["--target-dir", "../target/ebpf", "--", "-D", "warnings"]),
    )?;
    Ok(add(add(host, reduced), ebpf))
}

/// `cargo test` of the workspace, counting its tests from the "test result:" lines.
fn unit(_: &setup::Setup) -> Result<Tally> {
    let mut c = Command::new(cargo());
    // The privileged tests (the workload runner's) fail instead of skipping when not root.
    c.current_dir(cmd::root())
        .args(["test", "--workspace", "--locked"])
        .env("TRACER_REQUIRE_ROOT", "1");
    counted_tests(&mut c)
}

/// The model checker's expected verdicts (userspace-dcache's tests/loom.rs: loom explores the
/// model's own reader and writers, every interleaving up to a preemption bound), in release
/// mode, and clippy on that build (the test file only compiles under loom). `--cfg loom` goes
/// to the whole build, so it gets its own target directory.
fn loom(_: &setup::Setup) -> Result<Tally> {
    let root = cmd::root();
    let target = root.join("target/loom");
    let loom_cargo = |args: &[&str]| {
        let mut c = Command::new(cargo());
        c.current_dir(&root)
            .args(args)
            .args(["--locked", "-p", "userspace-dcache", "--target-dir"])
            .arg(&target)
            .env("RUSTFLAGS", "--cfg loom")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        c
    };
    let lint = status_step(loom_cargo(&["clippy", "--tests"]).args(["--", "-D", "warnings"]))?;
    let checks = counted_tests(&mut loom_cargo(&["test", "--release", "--test", "loom"]))?;
    Ok(add(lint, checks))
}

/// Runs a `cargo test` command, counting its tests from libtest's "test result:" lines.
fn counted_tests(c: &mut Command) -> Result<Tally> {
    c.stdout(Stdio::piped());
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot start `{}`", cmd::show(c)))?;
    let mut tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(t) = parse_test_result(&line) {
                tally = add(tally, t);
            } else if line.starts_with("test ")
                && (line.ends_with(" FAILED")
                    || line.ends_with(" ignored")
                    || line.contains(" ... ignored, "))
            {
                tally.failures.push(line);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && tally.failed == 0 {
        // A build failure or a crashed test binary: nothing counted it, so count it here.
        let line = format!("`{}` failed ({status})", cmd::show(c));
        eprintln!("{line}");
        tally.fail(line);
    }
    Ok(tally)
}

/// The live kernel: Debian's kernel under QEMU loads every program of both families through its
/// verifier and records a small workload once per family, then checks that missed exits pair no
/// other call's entry (vm::selftest says what is checked).
fn vm(_: &setup::Setup) -> Result<Tally> {
    checks(vm::selftest::run()?)
}

/// One pass or one fail per check, each printed.
fn checks(list: Vec<Check>) -> Result<Tally> {
    let mut tally = Tally::default();
    for c in list {
        if c.ok {
            tally.passed += 1;
            eprintln!(
                "  ok    {}{}",
                c.what,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.detail)
                }
            );
        } else {
            let line = format!("{}: {}", c.what, c.detail);
            eprintln!("  FAIL  {line}");
            tally.fail(line);
        }
    }
    Ok(tally)
}

/// `cargo xtask detect` on every catalogue bug (kernel-bugs/): one pass per kernel row that
/// met its expectation (the control clean on every workload, each bug caught at least once).
fn live_bugs(_: &setup::Setup) -> Result<Tally> {
    let out = cmd::root().join("target/detect-test");
    let args = crate::kernel_build::detect::DetectArgs::all(LIVE_BUGS_SECONDS, LIVE_BUGS_RUNS, out);
    let outcome = crate::kernel_build::detect::run_detect(&args)?;
    let mut tally = Tally::default();
    for r in &outcome.rows {
        eprintln!(
            "  {}  {}: {}/{} runs as expected",
            if r.pass { "ok  " } else { "FAIL" },
            r.kernel,
            r.ok_runs,
            r.runs
        );
        if r.pass {
            tally.passed += 1;
            continue;
        }
        let cells: Vec<String> = outcome
            .cells
            .iter()
            .filter(|c| c.kernel == r.kernel && !c.ok)
            .map(|c| {
                let kept = crate::evidence::keep(
                    &c.out,
                    &format!("live-bugs-{}-{}-{}", c.kernel, c.workload, c.run),
                );
                format!(
                    "{} run {}: {}, anomalies {:?}, {} lost{} ({})",
                    c.workload,
                    c.run,
                    c.verdict.name(),
                    c.anomaly_counts,
                    c.lost,
                    c.error
                        .as_deref()
                        .map(|e| format!(", {e}"))
                        .unwrap_or_default(),
                    kept.as_deref().unwrap_or(&c.out).display()
                )
            })
            .collect();
        tally.fail(format!(
            "{}: {}/{} runs as expected; {}",
            r.kernel,
            r.ok_runs,
            r.runs,
            cells.join("; ")
        ));
    }
    Ok(tally)
}

/// Seconds per boot and boots per cell of the live-bugs step.
const LIVE_BUGS_SECONDS: u64 = 10;
const LIVE_BUGS_RUNS: u32 = 2;

/// Parses libtest's "test result: ok. 3 passed; 0 failed; 1 ignored; ..." line.
fn parse_test_result(line: &str) -> Option<Tally> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut t = Tally::default();
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let n = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        match words.as_slice() {
            [.., _, "passed"] => t.passed += n(words.len() - 2)?,
            [_, "failed"] => t.failed += n(0)?,
            // An ignored test did not run: the project has none by design, so it fails here.
            [_, "ignored"] => t.failed += n(0)?,
            _ => {}
        }
    }
    Some(t)
}

/// One assertion.
#[derive(Debug, PartialEq)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    /// Why it failed, or a note worth reading when it passed.
    pub detail: String,
}

impl Check {
    pub(crate) fn pass(what: String) -> Check {
        Check {
            what,
            ok: true,
            detail: String::new(),
        }
    }
    pub(crate) fn note(what: String, detail: String) -> Check {
        Check {
            what,
            ok: true,
            detail,
        }
    }
    pub(crate) fn fail(what: String, detail: String) -> Check {
        Check {
            what,
            ok: false,
            detail,
        }
    }
    /// What the failed ones of `checks` checked, for tests' assertions.
    #[cfg(test)]
    pub(crate) fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_a_closed_set() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: TestArgs,
        }
        let parsed = Cli::try_parse_from(["test", "--only", "fmt,bench-smoke", "--only", "matrix"])
            .expect("known steps");
        assert_eq!(
            parsed.args.only,
            [Step::Fmt, Step::BenchSmoke, Step::Matrix]
        );
        let err = Cli::try_parse_from(["test", "--only", "e2ee"])
            .err()
            .expect("a misspelt step is an error");
        assert!(err.to_string().contains("e2ee"), "{err}");
        for step in <Step as clap::ValueEnum>::value_variants() {
            let pv = clap::ValueEnum::to_possible_value(step).expect("visible");
            assert_eq!(pv.get_name(), step.name());
        }
    }

    #[test]
    fn failures_survive_adding_for_the_recap() {
        let mut a = Tally::of(3, vec!["unit: x".into()]);
        let mut b = Tally::default();
        b.fail("lint".into());
        a = add(a, b);
        assert_eq!((a.passed, a.failed), (3, 2));
        assert_eq!(a.failures, ["unit: x", "lint"]);
    }

    #[test]
    fn parses_libtest_summary() {
        let t = parse_test_result(
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s",
        )
        .expect("a result line");
        assert_eq!((t.passed, t.failed), (12, 0));
        let t = parse_test_result("test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured")
            .expect("a result line");
        assert_eq!((t.passed, t.failed), (3, 3));
        assert!(parse_test_result("running 3 tests").is_none());
    }
}
