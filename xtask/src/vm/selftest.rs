//! The live-kernel test behind `cargo xtask test`'s "vm" step: Debian's kernel under QEMU,
//! every program of both attach families through the guest kernel's verifier, then a small
//! workload recorded once per family, with every attached probe expected to see the workload;
//! then the pairing check (pairing.rs): exits that go missing never pair another call's entry.
//!
//! Nothing here names a kernel version. What a kernel cannot do is recognized by comparing the
//! two families: a target neither family can attach is absent from that kernel (dentry_iput
//! since 4.8), a target both attach but nothing calls is either beyond this workload's reach
//! (`__d_move` without renames) or inlined into every caller (`__d_drop` on 6.1); a target one
//! family handles and the other does not is a failure.
use std::{collections::BTreeMap, fs, time::Duration};

use anyhow::{Context, Result};
use serde::Deserialize;
use tracer_analysis::{record_summary::RecordSummary, trace::Attachment};
use tracer_common::Probe;

use super::{run_in_vm, vm_dir, VmSpec};
use crate::{builder, test::Check};

/// The attach families, as the tracer's `--attach` and its JSON name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Fentry,
    Kprobe,
}

impl Family {
    const ALL: [Family; 2] = [Family::Fentry, Family::Kprobe];

    fn as_str(self) -> &'static str {
        match self {
            Family::Fentry => "fentry",
            Family::Kprobe => "kprobe",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `tracer verify --json` says of one program (its `VerifyStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum VerifyStatus {
    Loaded,
    Refused,
    Rejected,
    NoBtf,
}

/// One line of `tracer verify --json`.
#[derive(Debug, Deserialize)]
struct VerifyLine {
    program: String,
    target: String,
    family: Family,
    status: VerifyStatus,
    detail: Option<String>,
}

/// The workload: small enough for TCG (seconds), big enough that every writer path runs.
const WORKLOAD: [&str; 4] = ["--workload", "unlink-stat", "--scale", "0.1"];

/// Boots the VM four times (verify, record per family, pairing) and returns every assertion. An error
/// means a VM run itself failed, which the test counts as a failure.
pub fn run() -> Result<Vec<Check>> {
    // One build for the three boots, linked (same inode: its digest stays remembered) so that
    // a build in between, which writes a new file, cannot swap it.
    let dir = vm_dir().join("test");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let built = builder::static_tracer_binary()?;
    let tracer = dir.join("tracer");
    let _ = fs::remove_file(&tracer);
    fs::hard_link(&built, &tracer)
        .or_else(|_| fs::copy(&built, &tracer).map(drop))
        .with_context(|| format!("copying {} to {}", built.display(), tracer.display()))?;
    let spec = |name: &str, args: Vec<String>| {
        let mut s = VmSpec::new(args);
        s.out_dir = dir.join(name);
        s.timeout = Duration::from_secs(300);
        s.tracer = Some(tracer.clone());
        s
    };
    let mut checks = Vec::new();

    let o = run_in_vm(&spec("verify", strings(&["verify", "--json"])))
        .context("booting the VM for `tracer verify`")?;
    let stdout =
        fs::read_to_string(&o.stdout).with_context(|| format!("reading {}", o.stdout.display()))?;
    checks.extend(verify(&stdout));

    let mut summaries = Vec::new();
    for family in Family::ALL {
        let mut args = strings(&["record"]);
        args.extend(strings(&WORKLOAD));
        args.extend(strings(&[
            "--attach",
            family.as_str(),
            "--out",
            "kernel.trace",
            "--summary",
            "summary.json",
            "--quiet",
        ]));
        let o = run_in_vm(&spec(&format!("record-{family}"), args))
            .with_context(|| format!("booting the VM for `tracer record --attach {family}`"))?;
        let what = format!("record --attach {family} exits 0");
        if o.exit_code != 0 {
            let stderr = fs::read_to_string(&o.stderr).unwrap_or_default();
            checks.push(Check::fail(
                what,
                format!("exit {}: {}", o.exit_code, last_line(&stderr)),
            ));
            continue;
        }
        checks.push(Check::pass(what));
        summaries.push((
            family,
            RecordSummary::read(&o.out_dir.join("summary.json"))?,
        ));
    }
    checks.extend(record(&summaries));
    checks.extend(super::pairing::run(&tracer, &dir.join("pairing"))?);
    Ok(checks)
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// `tracer verify --json` output: every program "loaded", except the fentry/fexit programs of
/// a static target, which may be "no-btf" (gone from this kernel, like dentry_iput since 4.8,
/// or inlined into every caller in this build).
pub fn verify(stdout: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut families = BTreeMap::<Family, usize>::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: VerifyLine = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                checks.push(Check::fail(
                    "verify prints JSON lines".into(),
                    format!("{e}: {line}"),
                ));
                continue;
            }
        };
        *families.entry(v.family).or_default() += 1;
        let what = format!("verify: {} ({} on {}) loads", v.program, v.family, v.target);
        let static_target = v.family == Family::Fentry
            && !Probe::KERNEL
                .iter()
                .any(|p| p.symbol() == v.target && p.is_global());
        checks.push(match v.status {
            VerifyStatus::Loaded => Check::pass(what),
            VerifyStatus::NoBtf if static_target => Check::note(
                what,
                "no-btf: a static target, absent or inlined here".into(),
            ),
            status => {
                let detail = v
                    .detail
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .unwrap_or_default();
                Check::fail(what, format!("{}: {detail}", status_name(status)))
            }
        });
    }
    for family in Family::ALL {
        if !families.contains_key(&family) {
            checks.push(Check::fail(
                format!("verify: {family} programs are checked"),
                "none in the output".into(),
            ));
        }
    }
    checks
}

fn status_name(s: VerifyStatus) -> &'static str {
    match s {
        VerifyStatus::Loaded => "loaded",
        VerifyStatus::Refused => "refused",
        VerifyStatus::Rejected => "rejected",
        VerifyStatus::NoBtf => "no-btf",
    }
}

/// Record summaries, one per family: complete, and every target either seen by each family that
/// attached it, or explained by the other family (absent, or never called out of line).
pub fn record(summaries: &[(Family, RecordSummary)]) -> Vec<Check> {
    let mut checks = Vec::new();
    // The family that attached `sym`, or the reason it is unavailable.
    let attach = |s: &RecordSummary, sym: &str| -> Result<Family, String> {
        match s.attach.get(sym) {
            Some(Attachment::Fentry) => Ok(Family::Fentry),
            Some(Attachment::Kprobe) => Ok(Family::Kprobe),
            Some(other) => Err(other.to_string()),
            None => Err("not in the summary".into()),
        }
    };
    let count = |m: &BTreeMap<String, u64>, sym: &str| m.get(sym).copied().unwrap_or(0);
    let mut targets = std::collections::BTreeSet::new();
    for (family, s) in summaries {
        let (complete, lost) = (s.complete, s.lost);
        // Counters that never agreed with the drained events are a note, not a failure: with
        // nothing lost they can only be short of the events (two programs interleaved on one
        // CPU lose a hit), which the diff reports as a hits mismatch.
        let settled = s.counters_settled;
        let what = format!("record --attach {family}: trace complete, nothing lost");
        checks.push(if complete && lost == 0 {
            if settled {
                Check::pass(what)
            } else {
                Check::note(
                    what,
                    "the counters never agreed with the drained events (counters_settled false)"
                        .into(),
                )
            }
        } else {
            Check::fail(
                what,
                format!(
                    "complete {complete}, {lost} lost, counters settled {settled}, end {}",
                    s.end
                ),
            )
        });
        let ops = s.ops;
        let what = format!("record --attach {family}: the workload ran");
        checks.push(if ops > 0 {
            Check::pass(what)
        } else {
            Check::fail(what, "0 operations".into())
        });
        targets.extend(s.attach.keys().cloned());
    }
    for sym in &targets {
        for (family, s) in summaries {
            let mode = attach(s, sym);
            let others: Vec<&(Family, RecordSummary)> =
                summaries.iter().filter(|(f, _)| f != family).collect();
            let what = format!("record --attach {family}: {sym}");
            let check = if mode == Ok(*family) {
                let events = count(&s.events, sym);
                let uncalled = |v: &RecordSummary| count(&v.hits, sym) == 0;
                if events > 0 {
                    Check::pass(format!("{what} attached and saw {events} workload events"))
                } else if uncalled(s)
                    && !others.is_empty()
                    && others
                        .iter()
                        .all(|(f, o)| attach(o, sym) == Ok(*f) && uncalled(o))
                {
                    Check::note(
                        format!("{what} attached"),
                        "no call in either family's run: this workload does not reach it, or \
                         every caller has it inlined on this kernel"
                            .into(),
                    )
                } else {
                    Check::fail(
                        format!("{what} saw workload events"),
                        format!(
                            "attached ({family}) but 0 events ({} hits)",
                            count(&s.hits, sym)
                        ),
                    )
                }
            } else {
                let why = match &mode {
                    Ok(f) => format!("attached by {f}"),
                    Err(why) => why.clone(),
                };
                if !others.is_empty() && others.iter().all(|(f, o)| attach(o, sym) != Ok(*f)) {
                    Check::note(
                        format!("{what} unavailable"),
                        format!("no family can attach it on this kernel ({why})"),
                    )
                } else {
                    Check::fail(
                        format!("{what} attaches"),
                        format!("{why}, yet another family attaches it"),
                    )
                }
            };
            checks.push(check);
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_analysis::trace::End;

    fn summary(family: &str, rows: &[(&str, &str, u64)]) -> RecordSummary {
        let mut s = RecordSummary {
            ops: 2800,
            complete: true,
            end: End::Finished,
            counters_settled: true,
            ..RecordSummary::default()
        };
        for (sym, mode, n) in rows {
            let mode = if *mode == "yes" { family } else { mode };
            let mode = Attachment::try_from(mode.to_string()).expect("an attach mode");
            s.attach.insert(sym.to_string(), mode);
            s.hits.insert(sym.to_string(), *n);
            if *n > 0 {
                s.events.insert(sym.to_string(), *n);
            }
        }
        s
    }

    #[test]
    fn verify_accepts_loaded_and_a_missing_dentry_iput() {
        let out = r#"{"program":"lookup_rcu_fentry","target":"__d_lookup_rcu","family":"fentry","status":"loaded","errno":null,"detail":null}
{"program":"lookup_rcu_kprobe","target":"__d_lookup_rcu","family":"kprobe","status":"loaded","errno":null,"detail":null}
{"program":"dentry_iput_fexit","target":"dentry_iput","family":"fentry","status":"no-btf","errno":null,"detail":null}
"#;
        let c = verify(out);
        assert_eq!(c.len(), 3);
        assert!(Check::failed(&c).is_empty(), "{c:?}");
        assert_eq!(
            c[2].detail,
            "no-btf: a static target, absent or inlined here"
        );
    }

    #[test]
    fn verify_fails_rejections_and_missing_families() {
        let out = r#"{"program":"lookup_rcu_fexit","target":"__d_lookup_rcu","family":"fentry","status":"rejected","errno":13,"detail":"the kernel refused\nlog"}
{"program":"lookup_fentry","target":"__d_lookup","family":"fentry","status":"no-btf","errno":null,"detail":null}
not json
"#;
        let c = verify(out);
        assert_eq!(
            Check::failed(&c),
            vec![
                "verify: lookup_rcu_fexit (fentry on __d_lookup_rcu) loads",
                "verify: lookup_fentry (fentry on __d_lookup) loads",
                "verify prints JSON lines",
                "verify: kprobe programs are checked",
            ]
        );
        assert_eq!(c[0].detail, "rejected: the kernel refused");
    }

    #[test]
    fn record_explains_absent_and_uncalled_targets() {
        let fentry = summary(
            "fentry",
            &[
                ("__d_lookup_rcu", "yes", 6867),
                ("__d_drop", "yes", 0),
                ("dentry_iput", "unavailable: fentry: no BTF FUNC", 0),
            ],
        );
        let kprobe = summary(
            "kprobe",
            &[
                ("__d_lookup_rcu", "yes", 6008),
                ("__d_drop", "yes", 0),
                (
                    "dentry_iput",
                    "unavailable: kprobe: not in available_filter_functions",
                    0,
                ),
            ],
        );
        let c = record(&[(Family::Fentry, fentry), (Family::Kprobe, kprobe)]);
        assert!(Check::failed(&c).is_empty(), "{c:?}");
        assert_eq!(c.iter().filter(|c| !c.detail.is_empty()).count(), 4);
    }

    #[test]
    fn record_fails_what_one_family_misses() {
        let fentry = summary(
            "fentry",
            &[
                ("__d_lookup_rcu", "unavailable: fentry: attach failed", 0),
                ("___d_drop", "yes", 0),
            ],
        );
        let kprobe = summary(
            "kprobe",
            &[("__d_lookup_rcu", "yes", 10), ("___d_drop", "yes", 5)],
        );
        let mut unsettled = kprobe.clone();
        unsettled.counters_settled = false;
        let c = record(&[(Family::Kprobe, unsettled)]);
        assert!(Check::failed(&c).is_empty(), "{c:?}");
        assert!(
            c.iter()
                .any(|c| c.detail.contains("counters_settled false")),
            "an unsettled recording is noted: {c:?}"
        );
        let mut bad = kprobe.clone();
        bad.lost = 3;
        bad.complete = false;
        let c = record(&[(Family::Fentry, fentry), (Family::Kprobe, bad)]);
        assert_eq!(
            Check::failed(&c),
            vec![
                "record --attach kprobe: trace complete, nothing lost",
                "record --attach fentry: ___d_drop saw workload events",
                "record --attach fentry: __d_lookup_rcu attaches",
            ]
        );
    }
}
