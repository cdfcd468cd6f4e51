//! `tracer replay` and `tracer stress`: the workload on the model.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use userspace_dcache::{stress, Delay, Profile, Shape, Step, StressConfig};

use tracer_analysis::{
    output,
    replay::{self, Source},
};

// `tracer replay --threads --delays` and `tracer stress --delays` yield at the same steps.

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// A builtin workload or a TOML file (default with --against: the one the trace ran).
    #[arg(long)]
    workload: Option<String>,
    /// Multiply the workload's iteration counts (ignored with --against: the trace's is used).
    #[arg(long, value_parser = super::args::scale)]
    scale: Option<f64>,
    /// Replay this kernel trace's operations, in its timestamp order.
    #[arg(long)]
    against: Option<PathBuf>,
    /// Model profile: `linux-<release>` picks the generation of that release (`linux-2.6.38` to
    /// `linux-7.2`, see README); default: the one for the kernel trace's release, else linux-6.1.
    #[arg(long)]
    profile: Option<String>,
    /// The model trace to write.
    #[arg(long, default_value = "model.trace")]
    out: PathBuf,
    /// With --against: run the trace's operations on one model thread per kernel thread at the
    /// kernel run's pace, instead of one at a time in timestamp order (the model's own races
    /// can then happen).
    #[arg(long, requires = "against")]
    threads: bool,
    /// Yield at the protocol's race windows, widening them (most useful with --threads).
    #[arg(long)]
    delays: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn replay(args: ReplayArgs) -> Result<i32> {
    let inputs = args.against.iter().map(PathBuf::as_path);
    let inputs = inputs.chain(args.workload.as_deref().map(Path::new));
    output::refuse_same_file(&args.out, inputs)?;
    let (w, release) = replay::resolve_workload(
        args.workload.as_deref(),
        args.scale,
        args.against.as_deref(),
    )?;
    let profile = match (&args.profile, release.is_empty()) {
        (None, true) => Profile::named("linux-6.1")?,
        (p, _) => replay::pick_profile(p.as_deref(), &release)
            .with_context(|| format!("choosing a model profile for kernel `{release}`"))?,
    };
    let source = match &args.against {
        Some(p) => Source::Against(p),
        None => Source::Plan,
    };
    let style = replay::Style {
        threads: args.threads,
        delays: args.delays,
    };
    let s = replay::replay_to_trace(&w, profile, source, style, &args.out, &release)?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        eprintln!(
            "replayed {} on {}: {} operations, {} events -> {}",
            s.workload,
            s.profile,
            s.ops,
            s.events,
            args.out.display()
        );
        if let Some(n) = s.placed_at_effect {
            eprintln!("  {n} operations placed where the kernel's own events show their effect");
        }
        if let Some(n) = s.results_differ {
            eprintln!("  {n} operation results differ from the kernel's (`tracer diff` explains)");
        }
        if let Some(n) = s.damaged_ends.filter(|&n| n > 0) {
            eprintln!("{}", damaged_ends_warning(n));
        }
        if let Some(n) = s.damaged_begins.filter(|&n| n > 0) {
            eprintln!("{}", damaged_begins_warning(n));
        }
        if let Some(n) = s.late_events.filter(|&n| n > 0) {
            eprintln!(
                "  {n} events came more than the reorder window (1 s) after later ones, or \
                 would have moved an event given early to another operation: replayed again \
                 with a {:.3} s window, events given out only as it passes them, in the exact \
                 order{}",
                s.window_ns.unwrap_or(0) as f64 / 1e9,
                if s.damaged_begins.is_some_and(|n| n > 0) {
                    " but for the damaged begins above"
                } else {
                    ""
                }
            );
        }
    }
    Ok(0)
}

/// What `tracer replay` says of `n` events whose end the window took as damaged.
fn damaged_ends_warning(n: u64) -> String {
    format!(
        "  damaged timestamps: {n} event(s) ending more than {} s after both their begin and \
         every end recorded before them (the recorder writes each event at its end); taken as \
         ending at the latest end recorded before them (or their begins, if later), so the \
         replay holds one reorder window, not the rest of the trace; the kernel trace and the \
         model trace's Op events keep the recorded ends",
        replay::MAX_END_LEAD_NS / 1_000_000_000
    )
}

/// What `tracer replay` says of `n` events later than the second replay's window allows.
fn damaged_begins_warning(n: u64) -> String {
    format!(
        "  damaged timestamps: {n} event(s) arrived more than {} s after their place (they \
         began that long before the latest end recorded before them; the recorder writes each \
         event at its end), likely damaged begin stamps; the exact replay's window stops at \
         that bound, so it holds at most two such windows of trace, not the whole trace, and \
         they ran at the first chance it allowed; the kernel trace and the model trace's Op \
         events keep the recorded timestamps",
        replay::MAX_BEGIN_LAG_NS / 1_000_000_000
    )
}

#[derive(clap::Args)]
pub struct StressArgs {
    /// Workload shape: prune-stat, unlink-stat or rename-stat.
    #[arg(long, default_value = "prune-stat")]
    workload: String,
    /// Model profile.
    #[arg(long, default_value = "linux-6.1")]
    profile: String,
    /// How long to run (0.001 to 86400).
    #[arg(long, default_value = "10", value_parser = super::args::seconds)]
    seconds: Duration,
    /// Reader threads (besides the pruner and, per shape, the writer), 1 to 64.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    readers: u16,
    /// Widen the race windows: yield at the protocol's steps (after `__d_lookup_rcu` returns,
    /// between unhash and inode clear, before the shrinker's kill), as a scheduler would.
    #[arg(long)]
    delays: bool,
    /// Stop at the first violation.
    #[arg(long)]
    stop_on_first: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StressJson {
    profile: String,
    workload: String,
    seconds: f64,
    operations: u64,
    lookups_rcu: u64,
    validated_null_inode: u64,
    spurious_enoent: u64,
    delays: bool,
    first_violation_after_ms: Option<f64>,
}

pub fn stress_cmd(args: StressArgs) -> Result<i32> {
    let shape = match args.workload.as_str() {
        "prune-stat" => Shape::PruneStat,
        "unlink-stat" => Shape::UnlinkStat,
        "rename-stat" => Shape::RenameStat,
        other => {
            bail!("stress runs the shapes prune-stat, unlink-stat and rename-stat, not `{other}`")
        }
    };
    let profile = Profile::named(&args.profile)?;
    let mut cfg = StressConfig::new(profile, shape, args.seconds);
    cfg.readers = usize::from(args.readers);
    cfg.stop_on_first = args.stop_on_first;
    if args.delays {
        cfg.delays = vec![
            Delay::Yield {
                step: Step::LookupRcuReturned,
            },
            Delay::Yield {
                step: Step::KillAfterUnhash,
            },
            Delay::Yield {
                step: Step::ShrinkBeforeKill,
            },
        ];
    }
    let r = stress(&cfg);
    let out = StressJson {
        profile: r.profile.to_string(),
        workload: args.workload.clone(),
        seconds: r.elapsed.as_secs_f64(),
        operations: r.ops,
        lookups_rcu: r.lookups_rcu,
        validated_null_inode: r.validated_null_inode,
        spurious_enoent: r.spurious_enoent,
        delays: r.delays_used,
        first_violation_after_ms: r.first_violation_after.map(|d| d.as_secs_f64() * 1e3),
    };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "{} on {}: {} operations in {:.1}s ({} RCU lookups){}",
            out.workload,
            out.profile,
            out.operations,
            out.seconds,
            out.lookups_rcu,
            if out.delays {
                ", with delays injected at the protocol's steps"
            } else {
                ""
            }
        );
        println!(
            "  validated lookups returning a hashed dentry with NULL d_inode for a positive name: {}",
            out.validated_null_inode
        );
        println!(
            "  ENOENT for names that exist: {}{}",
            out.spurious_enoent,
            out.first_violation_after_ms
                .map(|ms| format!(" (first after {ms:.1} ms)"))
                .unwrap_or_default()
        );
    }
    Ok(if out.validated_null_inode + out.spurious_enoent > 0 {
        1
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warnings give the count, the bound, the likely cause, what was done, and that
    /// nothing recorded changed.
    #[test]
    fn the_damaged_timestamps_warnings_say_what_and_why() {
        let says = |w: String, parts: &[&str]| {
            for part in parts {
                assert!(w.contains(part), "{part:?} not in {w:?}");
            }
        };
        says(
            damaged_begins_warning(3),
            &[
                "3 event(s) arrived more than 60 s after their place",
                "likely damaged begin stamps",
                "window stops at that bound",
                "keep the recorded timestamps",
            ],
        );
        says(
            damaged_ends_warning(2),
            &[
                "2 event(s) ending more than 60 s after both their begin",
                "taken as ending at the latest end recorded before them",
                "holds one reorder window",
                "keep the recorded ends",
            ],
        );
    }
}
