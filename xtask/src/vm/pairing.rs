//! The pairing check of `cargo xtask test`'s vm step: when a probed call's exit never runs, no
//! later exit of that thread may take its entry. The guest (4 vCPUs) boots with `preempt=full`
//! and `dhash_entries=16` and runs sixty threads walking a six-component path (pairing.toml)
//! under `--attach kprobe`. With sixteen hash buckets `__d_lookup_rcu` walks long chains, so
//! walkers are often preempted inside it, more at once than the kernel gives its kretprobe
//! instances (max(10, 2 × CPUs) unless asked otherwise, which aya cannot): some exits are
//! never seen (5-15 % of the calls here), and preempted walkers migrate between CPUs, which
//! is what let a stale entry meet a later exit before the fix. The check asserts that exits
//! were missed (else it tests nothing), that every lookup event still carries its own call's
//! name with its result, that one thread's calls of one probe never overlap in time (nothing
//! nests on tmpfs), that the counters account for every call, and that every exit that ran
//! found its entry (nothing in the guest skips an entry program).
use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result};
use tracer_analysis::trace::{Footer, Reader};
use tracer_common::{Event, Probe, Source};

use super::{run_in_vm, VmSpec};
use crate::test::Check;

const WORKLOAD: &str = include_str!("pairing.toml");

/// Boots at most this many times until one run misses exits.
const TRIES: u32 = 3;

/// Where the workload lands in the guest.
const GUEST_WORKLOAD: &str = "/etc/pairing.toml";

/// Boots the VM once with `tracer` (a static build) and returns the checks; `dir` receives the
/// workload file and the guest's output.
pub fn run(tracer: &Path, dir: &Path) -> Result<Vec<Check>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let workload = dir.join("pairing.toml");
    fs::write(&workload, WORKLOAD).with_context(|| format!("writing {}", workload.display()))?;
    let mut spec = VmSpec::new([
        "record",
        "--workload",
        GUEST_WORKLOAD,
        "--attach",
        "kprobe",
        "--out",
        "kernel.trace",
        "--quiet",
    ]);
    spec.out_dir = dir.join("out");
    spec.timeout = Duration::from_secs(400);
    spec.tracer = Some(tracer.to_path_buf());
    spec.kernel_args = vec!["preempt=full".into(), "dhash_entries=16".into()];
    // Four CPUs: more CPU slots free while the instances are exhausted, and more migrations.
    // With two, the unfixed probes paired none of 10608 missed exits wrongly; with four they
    // did (a lookup of "b" reported with the result of "d").
    spec.cpus = 4;
    spec.files = vec![(workload, GUEST_WORKLOAD.into())];
    let mut tries = 0;
    loop {
        tries += 1;
        let o = run_in_vm(&spec).context("booting the VM for the pairing check")?;
        let what = "pairing: record exits 0".to_string();
        if o.exit_code != 0 {
            let stderr = fs::read_to_string(&o.stderr).unwrap_or_default();
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            return Ok(vec![Check::fail(
                what,
                format!("exit {}: {}", o.exit_code, last.unwrap_or_default()),
            )]);
        }
        let path = o.out_dir.join("kernel.trace");
        let (_, events, footer) = Reader::open(&path)
            .and_then(|r| r.read_all())
            .with_context(|| format!("reading {}", path.display()))?;
        // How many walkers meet inside the function depends on the host's load (TCG): a run
        // that lost no exit tested nothing, so it is run again, and fails after the last.
        if footer.lost() == 0 && tries < TRIES {
            continue;
        }
        let mut checks = vec![Check::pass(what)];
        checks.extend(judge(&events, &footer, tries));
        return Ok(checks);
    }
}

/// The assertions on a recording of pairing.toml.
/// `tries`: the boots it took to miss exits (said in the first check).
fn judge(events: &[Event], footer: &Footer, tries: u32) -> Vec<Check> {
    let kernel: Vec<&Event> = events
        .iter()
        .filter(|e| Source::from_u8(e.source) == Some(Source::KProbe))
        .collect();
    let lost = footer.lost();
    let mut checks = vec![if lost > 0 {
        Check::pass(format!(
            "pairing: exits went missing ({lost} calls lost, run {tries} of at most {TRIES})"
        ))
    } else {
        Check::fail(
            "pairing: exits went missing".into(),
            format!(
                "nothing lost in {} events in {tries} runs: nothing provoked what it tests",
                kernel.len()
            ),
        )
    }];
    checks.push(names(&kernel));
    checks.push(overlaps(&kernel));
    checks.push(accounts(&kernel, footer));
    checks.push(entries(footer));
    checks
}

/// Nothing in the guest skips an entry program (no other kprobe or BPF user; the recorder
/// reads its counters only after the workload), so every exit that ran finds its entry: one
/// counted without (the footer's `exits_without_entry`) is an exit that lost its own slot to
/// the stale ones the missed exits leave, to preemption or to migration, or a call in flight
/// at attach let through (the entry attaches before the exit so that none is). The missed
/// exits themselves cannot show here: a return the kretprobe could not hook runs no exit.
fn entries(footer: &Footer) -> Check {
    let what = "pairing: every exit found its entry (no exits_without_entry)".to_string();
    if footer.exits_without_entry.values().all(|n| *n == 0) {
        Check::pass(what)
    } else {
        Check::fail(what, format!("{:?}", footer.exits_without_entry))
    }
}

/// Every lookup that returned a dentry looked up that dentry's name under its parent: a
/// dentry (nothing is freed in this workload) is returned for one (parent, name) only.
fn names(kernel: &[&Event]) -> Check {
    let what = "pairing: every lookup's result is the dentry of its own name".to_string();
    let mut named = HashMap::<u64, (u64, &[u8])>::new();
    let mut results = 0u64;
    for e in kernel {
        if !matches!(
            Probe::from_u8(e.probe),
            Some(Probe::DLookupRcu | Probe::DLookup)
        ) || e.dentry == 0
        {
            continue;
        }
        results += 1;
        let name = &e.name[..(e.name_len as usize).min(e.name.len())];
        let first = *named.entry(e.dentry).or_insert((e.parent, name));
        if first != (e.parent, name) {
            return Check::fail(
                what,
                format!(
                    "dentry {} returned for {:?} under {} and for {:?} under {} (thread {}, cpu_seq {})",
                    e.dentry,
                    String::from_utf8_lossy(first.1),
                    first.0,
                    String::from_utf8_lossy(name),
                    e.parent,
                    e.tid,
                    e.cpu_seq
                ),
            );
        }
    }
    if results == 0 {
        return Check::fail(what, "no lookup returned a dentry".into());
    }
    Check::pass(format!("{what} ({results} results)"))
}

/// One thread's calls of one probe follow each other: a call that began before the previous
/// one ended is an entry paired with another call's exit.
fn overlaps(kernel: &[&Event]) -> Check {
    let what = "pairing: one thread's calls of a probe never overlap".to_string();
    let mut by = BTreeMap::<(u32, u8), Vec<(u64, u64)>>::new();
    for e in kernel {
        by.entry((e.tid, e.probe))
            .or_default()
            .push((e.ts_begin, e.ts_end));
    }
    for ((tid, probe), mut spans) in by {
        spans.sort_unstable();
        if let Some(w) = spans.windows(2).find(|w| w[1].0 < w[0].1) {
            let sym = Probe::from_u8(probe).map_or("?", |p| p.symbol());
            return Check::fail(
                what,
                format!(
                    "thread {tid}, {sym}: [{}, {}] and [{}, {}]",
                    w[0].0, w[0].1, w[1].0, w[1].1
                ),
            );
        }
    }
    Check::pass(what)
}

/// Per probe, hits minus drops is the events in the trace, and no CPU's number comes twice.
fn accounts(kernel: &[&Event], footer: &Footer) -> Check {
    let what = "pairing: hits - drops = events per probe, each cpu_seq once".to_string();
    let mut got = BTreeMap::<&str, u64>::new();
    let mut seen = std::collections::HashSet::new();
    for e in kernel {
        if let Some(p) = Probe::from_u8(e.probe) {
            *got.entry(p.symbol()).or_default() += 1;
        }
        if !seen.insert((e.cpu, e.cpu_seq)) {
            return Check::fail(what, format!("cpu {} numbered {} twice", e.cpu, e.cpu_seq));
        }
    }
    for (sym, hits) in &footer.hits {
        let drops = footer.drops.get(sym).copied().unwrap_or(0);
        let events = got.get(sym.as_str()).copied().unwrap_or(0);
        if hits.checked_sub(drops) != Some(events) {
            return Check::fail(
                what,
                format!("{sym}: {hits} hits - {drops} drops, {events} events"),
            );
        }
    }
    Check::pass(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kprobe lookup event of `tid`: `name` under `parent` returned `dentry`.
    fn lookup(tid: u32, seq: u32, span: (u64, u64), parent: u64, name: &str, dentry: u64) -> Event {
        let mut e = Event::zeroed();
        e.source = Source::KProbe as u8;
        e.probe = Probe::DLookupRcu as u8;
        e.tid = tid;
        e.cpu_seq = seq;
        (e.ts_begin, e.ts_end) = span;
        e.parent = parent;
        e.dentry = dentry;
        e.name[..name.len()].copy_from_slice(name.as_bytes());
        e.name_len = name.len() as u32;
        e
    }

    fn footer(hits: u64, drops: u64) -> Footer {
        let sym = Probe::DLookupRcu.symbol().to_string();
        let mut f = Footer::default();
        f.hits.insert(sym.clone(), hits);
        f.drops.insert(sym, drops);
        f
    }

    /// A walk of a/b with one call lost: all four checks pass.
    fn walk() -> Vec<Event> {
        vec![
            lookup(7, 1, (10, 20), 1, "a", 2),
            lookup(7, 2, (30, 40), 2, "b", 3),
            lookup(8, 4, (15, 25), 1, "a", 2),
        ]
    }

    #[test]
    fn a_correct_recording_with_losses_passes() {
        let c = judge(&walk(), &footer(4, 1), 1);
        assert!(Check::failed(&c).is_empty(), "{c:?}");
    }

    #[test]
    fn nothing_lost_means_nothing_was_tested() {
        let c = judge(&walk(), &footer(3, 0), 3);
        assert_eq!(Check::failed(&c), vec!["pairing: exits went missing"]);
    }

    #[test]
    fn an_entry_paired_with_a_later_exit_fails() {
        // Thread 7's lookup of "a" lost its exit; its next call's exit (the lookup of "b",
        // which returned dentry 3) took the entry of "a": 3 under the name "a", and a span
        // over the call that ran between.
        let mut events = walk();
        events.push(lookup(7, 3, (12, 50), 1, "a", 3));
        let c = judge(&events, &footer(5, 1), 1);
        assert_eq!(
            Check::failed(&c),
            vec![
                "pairing: every lookup's result is the dentry of its own name",
                "pairing: one thread's calls of a probe never overlap",
            ]
        );
    }

    #[test]
    fn an_exit_without_its_entry_fails() {
        let mut f = footer(4, 1);
        f.exits_without_entry
            .insert(Probe::DLookupRcu.symbol().to_string(), 2);
        let c = judge(&walk(), &f, 1);
        assert_eq!(
            Check::failed(&c),
            vec!["pairing: every exit found its entry (no exits_without_entry)"]
        );
    }

    #[test]
    fn counts_that_do_not_add_up_fail() {
        let c = judge(&walk(), &footer(5, 1), 1);
        assert_eq!(
            Check::failed(&c),
            vec!["pairing: hits - drops = events per probe, each cpu_seq once"]
        );
        let mut twice = walk();
        twice[1].cpu_seq = 1;
        let c = judge(&twice, &footer(4, 1), 1);
        assert_eq!(
            Check::failed(&c),
            vec!["pairing: hits - drops = events per probe, each cpu_seq once"]
        );
    }
}
