//! `tracer check`: the model checker over profiles, scenarios and mutants. The checker is
//! userspace-dcache's own reader and writer code explored with loom; this binary carries it
//! through the `userspace-dcache-loom` crate (the model built a second time with loom's
//! atomics), so it runs in-process, with no RUSTFLAGS and no second binary to find.
use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Instant,
};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tracer_analysis::trace::{End, Footer, Header, Origin, ThreadInfo, Writer};
use userspace_dcache_loom::check::{
    self, Check, CheckResult, Counterexample, MemoryModel, Mutant, Scenario, Verdict,
};

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Run one check, of this profile: linux-2.6.38, linux-2.6.39, linux-3.0, linux-3.3,
    /// linux-3.5, linux-3.12, linux-4.0, linux-4.7, linux-4.8, linux-4.12, linux-4.17,
    /// linux-4.18, linux-5.3, linux-5.7, linux-5.15, linux-6.1, linux-6.8, linux-6.15,
    /// linux-6.19, linux-7.2, or `linux-` and a release (linux-5.10 is its generation's,
    /// linux-5.7).
    /// Without it, every profile, scenario and mutant is checked and a table printed.
    #[arg(long, requires = "scenario")]
    profile: Option<String>,
    /// What races the walk: kill (the shrinker kills the dentry of a positive name), delete
    /// (d_delete of it), unhashed-kill (d_drop on one thread, the last dput on another),
    /// cwd-dotdot (stat ".." from a removed cwd while a chdir drops its last reference).
    #[arg(long, requires = "profile")]
    scenario: Option<String>,
    /// A deliberate bug on top of the profile (the bug catalogue's names): step-into-reread,
    /// kill-clear-before-unhash, drop-without-invalidate, d-drop-no-invalidate,
    /// lookup-no-unhashed-check, unhashed-kill-no-bump, no-child-seq-recheck,
    /// seqcount-begin-keeps-bit0, retry-without-rmb.
    #[arg(long, requires = "profile")]
    mutant: Option<String>,
    /// Memory model: c11 (the model's orderings as written) or sc (no reordering, which is all
    /// x86 allows here). Default: c11 for one check, both for the table.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Explore every interleaving with up to this many preemptions.
    #[arg(long, default_value_t = check::DEFAULT_PREEMPTION_BOUND as u8, value_name = "N",
          value_parser = clap::value_parser!(u8).range(0..=8))]
    preemptions: u8,
    /// Write the counterexample (the lookup invariant's, else the caller's) as a trace file
    /// that `tracer export` reads. Nothing is written when the check holds.
    #[arg(long, requires = "profile", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print a JSON list of objects (profile, scenario, mutant, model, verdict, ...).
    #[arg(long)]
    json: bool,
    /// Checks run at once (default: the available CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
}

/// Exit status: one check, 0 holds and 1 fails; the table, 0 (its failures are findings).
pub fn run(args: CheckArgs) -> Result<i32> {
    let model = args.model.as_deref().map(MemoryModel::named).transpose()?;
    let checks = match (&args.profile, &args.scenario) {
        (Some(profile), Some(scenario)) => {
            let mutant = args.mutant.as_deref().map(Mutant::named).transpose()?;
            vec![Check::new(profile, Scenario::named(scenario)?)?
                .with_mutant(mutant)
                .with_model(model.unwrap_or(MemoryModel::C11))]
        }
        _ => check::table()
            .into_iter()
            .filter(|c| model.is_none_or(|m| c.model == m))
            .collect(),
    };
    let checks: Vec<Check> = checks
        .into_iter()
        .map(|c| Check {
            preemption_bound: usize::from(args.preemptions),
            ..c
        })
        .collect();
    let jobs = args
        .jobs
        .map(usize::from)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    let t0 = Instant::now();
    let results = run_all(&checks, jobs)?;
    let secs = t0.elapsed().as_secs_f64();
    let single = args.profile.is_some();
    if let Some(path) = &args.out {
        write_out(path, &results[0])?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<Value> = results.iter().map(to_json).collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else if single {
        print_one(&mut out, &results[0])?;
        writeln!(out, "explored in {secs:.1} s")?;
    } else {
        print_table(&mut out, &results)?;
        writeln!(
            out,
            "{} checks, every interleaving with up to {} preemptions, in {secs:.1} s",
            results.len(),
            args.preemptions
        )?;
    }
    Ok(if single && !results[0].holds() { 1 } else { 0 })
}

/// Runs the checks on `jobs` threads (loom keeps its state per thread); results in order.
fn run_all(checks: &[Check], jobs: usize) -> Result<Vec<CheckResult>> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<CheckResult, check::CheckError>>>> =
        Mutex::new(checks.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(checks.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = checks.get(i) else { break };
                let r = check::run(c);
                if let Some(slot) = done.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i) {
                    *slot = Some(r);
                }
            });
        }
    });
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    checks
        .iter()
        .zip(done)
        .map(|(c, r)| {
            r.context("a checker thread ended early")?
                .with_context(|| format!("checking {}", label(c)))
        })
        .collect()
}

fn label(c: &Check) -> String {
    let mutant = c
        .mutant
        .map_or(String::new(), |m| format!(" + {}", m.name()));
    format!(
        "{}{mutant} against {} ({})",
        c.profile.name,
        c.scenario.name(),
        c.model.name()
    )
}

/// "holds", or "fails (N)" with the counterexample's length in events.
fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Holds => "holds".into(),
        Verdict::Fails(cx) => format!("fails ({})", cx.events.len()),
    }
}

fn print_table(out: &mut impl Write, results: &[CheckResult]) -> Result<()> {
    writeln!(
        out,
        "{:<13} {:<14} {:<26} {:<6} {:<10} {:<10} interleavings",
        "profile", "scenario", "mutant", "model", "lookup", "caller"
    )?;
    for r in results {
        let c = &r.check;
        writeln!(
            out,
            "{:<13} {:<14} {:<26} {:<6} {:<10} {:<10} {}",
            c.profile.name,
            c.scenario.name(),
            c.mutant.map_or("-", Mutant::name),
            c.model.name(),
            verdict_text(&r.lookup),
            r.caller.as_ref().map_or("n/a".into(), verdict_text),
            r.interleavings
        )?;
        writeln!(out, "    why: {}", check::reasoning(r))?;
    }
    writeln!(
        out,
        "lookup: the inode the reader's caller validated belongs to the d_seq version it \
         validated against (never negative where the name is positive, never an odd count); \
         caller: no ENOENT for a name that exists throughout, no walk standing on a NULL inode \
         (n/a for delete). fails (N): a counterexample of N events (tracer check --profile P \
         --scenario S ... prints it). why: the accesses the verdict rests on (W: a writer's \
         stores, R: the reader's loads, in program order) and what the Linux kernel memory \
         model and x86 say of them."
    )?;
    Ok(())
}

fn print_one(out: &mut impl Write, r: &CheckResult) -> Result<()> {
    let c = &r.check;
    writeln!(
        out,
        "{}: every interleaving with up to {} preemptions ({} executions)",
        label(c),
        c.preemption_bound,
        r.interleavings
    )?;
    writeln!(
        out,
        "  {}: the generation opened by {}",
        c.profile.name, c.profile.commit
    )?;
    let invariants = [("lookup", Some(&r.lookup)), ("caller", r.caller.as_ref())];
    for (name, v) in invariants {
        let Some(v) = v else {
            writeln!(
                out,
                "  {name}: n/a (ENOENT is a right answer for a stat racing an unlink)"
            )?;
            continue;
        };
        writeln!(out, "  {name}: {}", verdict_text(v))?;
        if let Some(cx) = v.counterexample() {
            for s in &cx.steps {
                writeln!(out, "    {s}")?;
            }
        }
    }
    writeln!(out, "  why: {}", check::reasoning(r))?;
    Ok(())
}

fn to_json(r: &CheckResult) -> Value {
    let c = &r.check;
    let cx = r.counterexample();
    json!({
        "profile": c.profile.name,
        "scenario": c.scenario.name(),
        "mutant": c.mutant.map(Mutant::name),
        "model": c.model.name(),
        "verdict": if r.holds() { "holds" } else { "fails" },
        "lookup": if r.lookup.holds() { "holds" } else { "fails" },
        "caller": r.caller.as_ref().map(|v| if v.holds() { "holds" } else { "fails" }),
        "counterexample_events": cx.map(|cx| cx.events.len()),
        "violation": cx.map(|cx| cx.violation.as_str()),
        "steps": cx.map(|cx| &cx.steps),
        "interleavings": r.interleavings,
        "preemption_bound": c.preemption_bound,
        "why": check::reasoning(r),
    })
}

/// Writes the counterexample as a trace: header origin "check" with the profile and the check
/// in its notes, the events, the footer naming the threads.
fn write_out(path: &Path, r: &CheckResult) -> Result<()> {
    let (invariant, cx): (&str, &Counterexample) = match (
        r.lookup.counterexample(),
        r.caller.as_ref().and_then(Verdict::counterexample),
    ) {
        (Some(cx), _) => ("lookup", cx),
        (None, Some(cx)) => ("caller", cx),
        (None, None) => {
            eprintln!(
                "tracer: {} holds: no counterexample, {} not written",
                label(&r.check),
                path.display()
            );
            return Ok(());
        }
    };
    let c = &r.check;
    let mut header = Header::new(Origin::Check);
    header.profile = Some(c.profile.name.to_owned());
    header.kernel_release = match c.profile.since {
        (2, minor, sub) => format!("2.{minor}.{sub}"),
        (major, minor, _) => format!("{major}.{minor}"),
    };
    let notes = [
        ("scenario", c.scenario.name().to_owned()),
        ("mutant", c.mutant.map_or("none", Mutant::name).to_owned()),
        ("memory_model", c.model.name().to_owned()),
        ("invariant", invariant.to_owned()),
        ("violation", cx.violation.clone()),
        ("preemption_bound", c.preemption_bound.to_string()),
        ("interleavings", r.interleavings.to_string()),
    ];
    header.notes = notes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let mut w = Writer::create(path, &header)?;
    for e in &cx.events {
        w.push(e)?;
    }
    let threads = c
        .scenario
        .threads()
        .iter()
        .map(|&(tid, name)| ThreadInfo {
            name: name.to_owned(),
            tid,
        })
        .collect();
    w.finish(Footer {
        end: End::Finished,
        threads,
        ..Footer::default()
    })?;
    eprintln!(
        "tracer: wrote the {invariant} counterexample ({} events) to {}",
        cx.events.len(),
        path.display()
    );
    Ok(())
}
