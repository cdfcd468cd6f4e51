//! The verdict suite: a real trace (prune-stat recorded on Debian's 6.1 kernel in the VM, and
//! its replay on the linux-6.1 model; tests/fixtures/README.md says how they were made) and a
//! catalogue of mutations of it, each with the verdict `tracer diff` must give. Controls must
//! stay clean; planted defects must be anomalies; losses, damage and doubt must be
//! inconclusive and name why; inputs that are not a kernel/model pair must be refused.
//!
//! `cargo test -p tracer-analysis --test verdict -- --nocapture` prints the table.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use tracer_analysis::{
    diff::{self, diff_files, AnomalyKind, DiffOptions, ReasonKind, Report, Verdict},
    trace::{End, Origin},
};
use tracer_common::{flags, Event, OpKind, Probe, Source};

mod support;
use support::{load, messages, positive_lookups, save, Parts};

/// The two traces of a case and what happens to the kernel file's bytes once written.
struct Pair {
    k: Parts,
    m: Parts,
    kernel_bytes: Option<fn(&mut Vec<u8>)>,
    /// Diff the kernel file against itself.
    same_file: bool,
    /// Give the model trace as the kernel's and the other way round.
    swapped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Clean,
    Anomaly(AnomalyKind),
    Inconclusive(ReasonKind),
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    mutate: fn(&mut Pair),
    expect: Expect,
}

fn is(e: &Event, p: Probe) -> bool {
    e.probe == p as u8
}

fn sym(p: Probe) -> String {
    p.symbol().to_string()
}

/// Positive lookups that read the same `d_seq` as an earlier lookup of the dentry that had
/// returned before they began: a dentry already observed in this life.
fn relookups(p: &Parts) -> Vec<usize> {
    let all = positive_lookups(p);
    all.iter()
        .copied()
        .filter(|j| {
            let b = &p.events[*j];
            all.iter().any(|i| {
                let a = &p.events[*i];
                a.dentry == b.dentry && a.ts_end < b.ts_begin && a.seq_end == b.seq_end
            })
        })
        .collect()
}

/// The first positive lookup of each name (by name bytes), in time order.
fn first_lookups(p: &Parts) -> Vec<usize> {
    let mut idx = positive_lookups(p);
    idx.sort_by_key(|i| p.events[*i].ts_begin);
    let mut seen = std::collections::HashSet::new();
    idx.into_iter()
        .filter(|i| seen.insert(p.events[*i].name_bytes().to_vec()))
        .collect()
}

/// (`___d_drop`, `dentry_unlink_inode`) index pairs of the kill path: the clear of a positive
/// dentry that the drop unhashed just before, on the same thread.
fn kills(p: &Parts) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, d) in p.events.iter().enumerate() {
        if !is(d, Probe::DDropInner) || d.inode_begin == 0 {
            continue;
        }
        let clear = p.events.iter().position(|c| {
            is(c, Probe::DentryUnlinkInode)
                && c.dentry == d.dentry
                && c.tid == d.tid
                && c.ts_begin >= d.ts_end
                && c.ts_begin - d.ts_end < 1_000_000
                && c.inode_end == 0
        });
        if let Some(c) = clear {
            out.push((i, c));
        }
    }
    out
}

/// Adds a kernel event as the probes would have: the next number of CPU 0, counted in the
/// footer's hits and last number.
fn inject(p: &mut Parts, mut ev: Event) {
    ev.cpu = 0;
    let last = p.footer.last_cpu_seq.entry(0).or_insert(0);
    *last += 1;
    ev.cpu_seq = *last as u32;
    if let Some(probe) = ev.probe() {
        *p.footer.hits.entry(sym(probe)).or_insert(0) += 1;
    }
    place(p, ev);
}

/// Puts an event where the recorder would have: in completion order.
fn place(p: &mut Parts, ev: Event) {
    let at = p.events.partition_point(|e| e.ts_end <= ev.ts_end);
    p.events.insert(at, ev);
}

/// Adds an operation event to a trace.
fn op(p: &mut Parts, kind: OpKind, path: &str, (b, e): (u64, u64), tid: u32, result: i32) {
    let mut ev = Event::zeroed();
    ev.probe = Probe::Op as u8;
    ev.source = if p.header.origin == Origin::Kernel {
        Source::Workload as u8
    } else {
        Source::Model as u8
    };
    ev.aux = kind as u32;
    ev.ts_begin = b;
    ev.ts_end = e;
    ev.tid = tid;
    ev.result = result;
    ev.set_name(path.as_bytes());
    place(p, ev);
}

fn first_stat(p: &Parts, result: i32) -> usize {
    let mut idx: Vec<usize> = (0..p.events.len())
        .filter(|i| {
            let e = &p.events[*i];
            is(e, Probe::Op) && e.aux == OpKind::Stat as u32 && e.result == result
        })
        .collect();
    idx.sort_by_key(|i| p.events[*i].ts_begin);
    idx[0]
}

/// The kernel's last event time, and a thread id no event uses.
fn after_end(p: &Parts) -> (u64, u32) {
    let t = p.events.iter().map(|e| e.ts_end).max().unwrap_or(0);
    let tid = p.events.iter().map(|e| e.tid).max().unwrap_or(0) + 1;
    (t + 1_000_000, tid)
}

/// Raises `d_seq` by `by` in every event of the dentry of event `i` from `i`'s time on (its
/// current life only), as if something had bumped it right before.
fn shift_seq_from(p: &mut Parts, i: usize, by: u32) {
    let (d, t) = (p.events[i].dentry, p.events[i].ts_end);
    let end = p
        .events
        .iter()
        .filter(|e| {
            e.dentry == d && is(e, Probe::DentryUnlinkInode) && e.ts_begin >= t && e.inode_end == 0
        })
        .map(|e| e.ts_end)
        .min()
        .unwrap_or(u64::MAX);
    for e in &mut p.events {
        let key = if e.probe().is_some_and(Probe::is_lookup) {
            e.ts_end
        } else {
            e.ts_begin
        };
        if e.dentry == d && key >= t && key <= end && !is(e, Probe::Op) {
            e.seq_begin = e.seq_begin.wrapping_add(by);
            e.seq_end = e.seq_end.wrapping_add(by);
        }
    }
}

fn remove(p: &mut Parts, mut idx: Vec<usize>) {
    idx.sort_unstable();
    for i in idx.into_iter().rev() {
        p.events.remove(i);
    }
}

/// A positive lookup made to return a NULL inode, and one exit without its entry on `probe`.
fn null_inode_with_exits_without_entry(p: &mut Pair, probe: Probe) {
    let i = positive_lookups(&p.k)[43];
    p.k.events[i].inode_begin = 0;
    p.k.events[i].inode_end = 0;
    p.k.footer.exits_without_entry.insert(sym(probe), 1);
}

fn catalogue() -> Vec<Case> {
    use Expect::*;
    vec![
        // ---- controls: must stay clean
        Case {
            name: "unmodified",
            mutate: |_| {},
            expect: Clean,
        },
        Case {
            name: "rejected snapshot: a NULL-inode return whose d_seq moved (not validated)",
            mutate: |p| {
                let i = positive_lookups(&p.k)[10];
                let e = &mut p.k.events[i];
                e.inode_begin = 0;
                e.inode_end = 0;
                e.seq_begin = e.seq_end.wrapping_sub(2);
                e.flags &= !flags::VALIDATED;
            },
            expect: Clean,
        },
        Case {
            name: "validated NULL inode overlapping an unlink of the name (both sides)",
            mutate: |p| {
                let i = positive_lookups(&p.k)[20];
                let (b, e) = (p.k.events[i].ts_begin, p.k.events[i].ts_end);
                let name = format!("d0/{}", String::from_utf8_lossy(p.k.events[i].name_bytes()));
                let (_, tid) = after_end(&p.k);
                let ev = &mut p.k.events[i];
                ev.inode_begin = 0;
                ev.inode_end = 0;
                // The model's counterpart after its last event: only its result is compared.
                let (mt, mtid) = after_end(&p.m);
                op(&mut p.k, OpKind::Unlink, &name, (b - 50, e + 50), tid, 0);
                op(&mut p.m, OpKind::Unlink, &name, (mt, mt + 100), mtid, 0);
            },
            expect: Clean,
        },
        Case {
            name: "negative dentry: a validated NULL return for a name never created",
            mutate: |p| {
                let i = positive_lookups(&p.k)[30];
                let mut ev = p.k.events[i];
                ev.set_name(b"never-created");
                ev.dentry = 1_000_000;
                ev.inode_begin = 0;
                ev.inode_end = 0;
                ev.seq_begin = 0;
                ev.seq_end = 0;
                inject(&mut p.k, ev);
            },
            expect: Clean,
        },
        Case {
            name: "ENOENT for a name never created, on both sides",
            mutate: |p| {
                let (t, tid) = after_end(&p.k);
                op(&mut p.k, OpKind::Stat, "d0/nope", (t, t + 100), tid, -2);
                let (t, tid) = after_end(&p.m);
                op(&mut p.m, OpKind::Stat, "d0/nope", (t, t + 100), tid, -2);
            },
            expect: Clean,
        },
        Case {
            name: "events reordered in the file (pairs of neighbours swapped)",
            mutate: |p| {
                for i in (0..p.k.events.len() - 1).step_by(7) {
                    p.k.events.swap(i, i + 1);
                }
            },
            expect: Clean,
        },
        Case {
            name: "dentry and inode ids renumbered",
            mutate: |p| {
                for e in &mut p.k.events {
                    for id in [&mut e.dentry, &mut e.parent] {
                        if *id != 0 {
                            *id += 5_000;
                        }
                    }
                    for id in [&mut e.inode_begin, &mut e.inode_end] {
                        if *id != 0 {
                            *id += 7_000;
                        }
                    }
                }
            },
            expect: Clean,
        },
        // ---- planted defects: anomalies
        Case {
            name: "ENOENT on the first access of a name the setup created",
            mutate: |p| {
                let i = first_stat(&p.k, 0);
                p.k.events[i].result = -2;
            },
            expect: Anomaly(AnomalyKind::SpuriousEnoent),
        },
        Case {
            name: "validated NULL inode on the first lookup of a setup-created name",
            mutate: |p| {
                let i = first_lookups(&p.k)[0];
                p.k.events[i].inode_begin = 0;
                p.k.events[i].inode_end = 0;
            },
            expect: Anomaly(AnomalyKind::NullInodePositive),
        },
        Case {
            name: "validated NULL inode for an existing name, mid-run",
            mutate: |p| {
                let all = positive_lookups(&p.k);
                let i = all[all.len() / 2];
                p.k.events[i].inode_begin = 0;
                p.k.events[i].inode_end = 0;
            },
            expect: Anomaly(AnomalyKind::NullInodePositive),
        },
        Case {
            name: "validated NULL inode across a pruning kill of the dentry",
            mutate: |p| {
                let (d, c) = kills(&p.k)[0];
                let (drop, clear) = (p.k.events[d], p.k.events[c]);
                let mut ev = Event::zeroed();
                ev.probe = Probe::DLookupRcu as u8;
                ev.source = drop.source;
                ev.tid = drop.tid + 100_000;
                ev.ts_begin = drop.ts_begin;
                ev.ts_end = clear.ts_end;
                ev.dentry = drop.dentry;
                ev.parent = drop.parent;
                ev.name = drop.name;
                ev.name_len = drop.name_len;
                ev.seq_begin = clear.seq_end;
                ev.seq_end = clear.seq_end;
                ev.flags = flags::VALIDATED;
                inject(&mut p.k, ev);
            },
            expect: Anomaly(AnomalyKind::NullInodePositive),
        },
        Case {
            name: "d_seq going backwards between two lookups of one dentry",
            mutate: |p| {
                let all = positive_lookups(&p.k);
                let mut pick = None;
                'outer: for (n, i) in all.iter().enumerate() {
                    for j in &all[n + 1..] {
                        let (a, b) = (&p.k.events[*i], &p.k.events[*j]);
                        // Ordered by the stamps: the same CPU, or apart by more than two
                        // CPUs' clocks can disagree.
                        let ordered = a.cpu == b.cpu || b.ts_begin > a.ts_end + diff::CLOCK_SKEW_NS;
                        if a.dentry == b.dentry
                            && b.ts_begin > a.ts_end
                            && a.seq_end >= 2
                            && ordered
                        {
                            pick = Some(*j);
                            break 'outer;
                        }
                    }
                }
                let j = pick.expect("two lookups of one dentry");
                let e = &mut p.k.events[j];
                e.seq_end -= 2;
                e.seq_begin = e.seq_end;
            },
            expect: Anomaly(AnomalyKind::SeqDecreased),
        },
        Case {
            name: "validated flag set on a lookup whose d_seq values differ",
            mutate: |p| {
                let i = positive_lookups(&p.k)[5];
                p.k.events[i].seq_begin = p.k.events[i].seq_end.wrapping_sub(2);
            },
            expect: Anomaly(AnomalyKind::ValidatedFlag),
        },
        Case {
            name: "validated flag cleared on a lookup whose d_seq values agree",
            mutate: |p| {
                let i = positive_lookups(&p.k)[6];
                p.k.events[i].flags &= !flags::VALIDATED;
            },
            expect: Anomaly(AnomalyKind::ValidatedFlag),
        },
        Case {
            name: "the invalidate after ___d_drop missing (clear entered at the drop's value)",
            mutate: |p| {
                let (d, c) = kills(&p.k)[1];
                let drop_end = p.k.events[d].seq_end;
                let e = &mut p.k.events[c];
                e.seq_begin = drop_end;
                e.seq_end = drop_end.wrapping_add(2);
            },
            expect: Anomaly(AnomalyKind::SeqDelta),
        },
        Case {
            name: "inode cleared while still hashed on the kill path",
            mutate: |p| {
                let (_, c) = kills(&p.k)[2];
                p.k.events[c].flags |= flags::HASHED_BEGIN;
            },
            expect: Anomaly(AnomalyKind::ClearBeforeUnhash),
        },
        Case {
            name: "an operation result differs from the model's (EACCES), no race",
            mutate: |p| {
                let i = first_stat(&p.k, 0);
                p.k.events[i].result = -13;
            },
            expect: Anomaly(AnomalyKind::ResultDiffers),
        },
        Case {
            name: "the model reports ENOENT where the kernel found the file",
            mutate: |p| {
                let i = first_stat(&p.m, 0);
                p.m.events[i].result = -2;
            },
            expect: Anomaly(AnomalyKind::SpuriousEnoent),
        },
        Case {
            name: "a NULL-inode anomaly in a trace that also lost events (anomaly wins)",
            mutate: |p| {
                let i = positive_lookups(&p.k)[40];
                p.k.events[i].inode_begin = 0;
                p.k.events[i].inode_end = 0;
                p.k.footer.drops.insert(sym(Probe::DLookupRcu), 2);
            },
            expect: Anomaly(AnomalyKind::NullInodePositive),
        },
        Case {
            // A dropped `___d_drop` may be a directory's unseen death: the name below the
            // next dentry at its address may be the old one's.
            name: "a NULL-inode anomaly in a trace that lost calls ending a dentry's life",
            mutate: |p| {
                let i = positive_lookups(&p.k)[42];
                p.k.events[i].inode_begin = 0;
                p.k.events[i].inode_end = 0;
                p.k.footer.drops.insert(sym(Probe::DDropInner), 2);
            },
            expect: Inconclusive(ReasonKind::AnomalyAcrossLostDeath),
        },
        Case {
            name: "a NULL-inode anomaly hidden behind an interrupted recording",
            mutate: |p| {
                let i = positive_lookups(&p.k)[41];
                p.k.events[i].inode_begin = 0;
                p.k.events[i].inode_end = 0;
                p.k.footer.end = End::Interrupted;
            },
            expect: Anomaly(AnomalyKind::NullInodePositive),
        },
        // ---- losses, damage, doubt: inconclusive
        Case {
            name: "the writer events of one kill removed, footer unchanged",
            mutate: |p| {
                let (d, c) = kills(&p.k)[3];
                remove(&mut p.k, vec![d, c]);
            },
            expect: Inconclusive(ReasonKind::SequenceHole),
        },
        Case {
            name: "the writer events of one kill removed, footer hits lowered to match",
            mutate: |p| {
                let (d, c) = kills(&p.k)[4];
                remove(&mut p.k, vec![d, c]);
                for probe in [Probe::DDropInner, Probe::DentryUnlinkInode] {
                    if let Some(h) = p.k.footer.hits.get_mut(&sym(probe)) {
                        *h -= 1;
                    }
                }
            },
            expect: Inconclusive(ReasonKind::SequenceHole),
        },
        Case {
            name: "a contiguous 10% of the events cut out mid-stream, footer unchanged",
            mutate: |p| {
                let n = p.k.events.len();
                p.k.events.drain(n / 2..n / 2 + n / 10);
            },
            expect: Inconclusive(ReasonKind::SequenceHole),
        },
        Case {
            name: "the last event of a CPU cut off (the footer's last number says so)",
            mutate: |p| {
                let i = (0..p.k.events.len())
                    .rev()
                    .find(|i| !is(&p.k.events[*i], Probe::Op))
                    .expect("a kernel event");
                let e = p.k.events[i];
                let highest =
                    p.k.events
                        .iter()
                        .filter(|x| x.cpu == e.cpu && !is(x, Probe::Op))
                        .map(|x| x.cpu_seq)
                        .max()
                        .unwrap_or(0);
                let j =
                    p.k.events
                        .iter()
                        .position(|x| x.cpu == e.cpu && x.cpu_seq == highest)
                        .expect("the highest");
                let probe = p.k.events[j].probe().expect("known probe");
                p.k.events.remove(j);
                // Hits lowered too: only the numbering tells.
                if let Some(h) = p.k.footer.hits.get_mut(&sym(probe)) {
                    *h -= 1;
                }
            },
            expect: Inconclusive(ReasonKind::SequenceHole),
        },
        Case {
            name: "an event duplicated",
            mutate: |p| {
                let i = positive_lookups(&p.k)[50];
                let e = p.k.events[i];
                p.k.events.insert(i + 1, e);
            },
            expect: Inconclusive(ReasonKind::SequenceRepeat),
        },
        Case {
            name: "the recording was interrupted",
            mutate: |p| p.k.footer.end = End::Interrupted,
            expect: Inconclusive(ReasonKind::NotFinished),
        },
        Case {
            name: "the recording failed (consumer error)",
            mutate: |p| p.k.footer.end = End::Error("consumer: ring buffer".into()),
            expect: Inconclusive(ReasonKind::NotFinished),
        },
        Case {
            name: "the footer holds drops",
            mutate: |p| {
                p.k.footer.drops.insert(sym(Probe::DentryUnlinkInode), 1);
            },
            expect: Inconclusive(ReasonKind::Lost),
        },
        Case {
            // A kretprobe's exit found no entry of its call on the traced file system: the
            // kernel skipped the entry kprobe (reentrancy, `bpf_prog_active`), no hit counted.
            name: "the footer counts lookup exits without their entry, nothing else",
            mutate: |p| {
                p.k.footer
                    .exits_without_entry
                    .insert(sym(Probe::DLookupRcu), 2);
            },
            expect: Inconclusive(ReasonKind::Lost),
        },
        Case {
            name: "the footer counts no lookup exit without its entry (control)",
            mutate: |p| {
                p.k.footer
                    .exits_without_entry
                    .insert(sym(Probe::DLookupRcu), 0);
            },
            expect: Clean,
        },
        Case {
            // The skipped entry's call may have taken the thread's stale slot: the event the
            // anomaly rests on may join two calls.
            name: "a NULL-inode anomaly on a lookup whose exits found no entry (set aside)",
            mutate: |p| null_inode_with_exits_without_entry(p, Probe::DLookupRcu),
            expect: Inconclusive(ReasonKind::AnomalyOnSkippedProbe),
        },
        Case {
            name: "a NULL-inode anomaly with exits without entry on another probe (anomaly wins)",
            mutate: |p| null_inode_with_exits_without_entry(p, Probe::DLookup),
            expect: Anomaly(AnomalyKind::NullInodePositive),
        },
        Case {
            // On 6.7+ a kprobe link reports the hits its kprobe missed (reentrancy): each a
            // call lost, on any file system.
            name: "the footer counts a writer kprobe's missed hits, nothing else",
            mutate: |p| {
                p.k.footer
                    .kprobe_missed_entries
                    .insert(sym(Probe::DDropInner), 2);
            },
            expect: Inconclusive(ReasonKind::Lost),
        },
        Case {
            name: "the footer counts no missed kprobe hit (control)",
            mutate: |p| {
                p.k.footer
                    .kprobe_missed_entries
                    .insert(sym(Probe::DDropInner), 0);
                p.k.footer
                    .kprobe_missed_exits
                    .insert(sym(Probe::DDropInner), 0);
            },
            expect: Clean,
        },
        Case {
            // rev16 (session 12): lookups and writers alike; the header's skip counting, not
            // this list, decides (a cooperative kernel before 6.7, as 5.10's matrix attach).
            name: "kprobe misses the kernel does not report, on a cooperative kernel",
            mutate: |p| {
                p.k.footer
                    .kprobe_misses_uncounted
                    .extend([sym(Probe::DLookupRcu), sym(Probe::DDropInner)]);
            },
            expect: Clean,
        },
        Case {
            name: "the footer counts one call more than the file holds",
            mutate: |p| {
                *p.k.footer.hits.entry(sym(Probe::DLookupRcu)).or_insert(0) += 1;
            },
            expect: Inconclusive(ReasonKind::HitsMismatch),
        },
        Case {
            name: "sequence numbers wiped",
            mutate: |p| {
                for e in &mut p.k.events {
                    e.cpu_seq = 0;
                }
            },
            expect: Inconclusive(ReasonKind::Unsequenced),
        },
        Case {
            name: "d_seq moves by 2 with no writer (every later read of the dentry shifted)",
            mutate: |p| {
                let i = relookups(&p.k)[60];
                shift_seq_from(&mut p.k, i, 2);
            },
            expect: Inconclusive(ReasonKind::UnexplainedSeqMoves),
        },
        Case {
            name: "d_seq moves with no writer, blamed on a create added on both sides",
            mutate: |p| {
                let i = relookups(&p.k)[70];
                shift_seq_from(&mut p.k, i, 2);
                let e = p.k.events[i];
                let name = format!("d0/{}", String::from_utf8_lossy(e.name_bytes()));
                let (_, tid) = after_end(&p.k);
                op(
                    &mut p.k,
                    OpKind::Create,
                    &name,
                    (e.ts_begin - 500, e.ts_begin - 100),
                    tid,
                    -17,
                );
                let (t, mtid) = after_end(&p.m);
                op(&mut p.m, OpKind::Create, &name, (t, t + 100), mtid, -17);
            },
            expect: Inconclusive(ReasonKind::UnexplainedSeqMoves),
        },
        Case {
            name: "an ENOENT while only the pruner (drop_caches) runs",
            mutate: |p| {
                let drops: Vec<(u64, u64)> =
                    p.k.events
                        .iter()
                        .filter(|e| is(e, Probe::Op) && e.aux == OpKind::DropCaches as u32)
                        .map(|e| (e.ts_begin, e.ts_end))
                        .collect();
                let i = (0..p.k.events.len())
                    .find(|i| {
                        let e = &p.k.events[*i];
                        is(e, Probe::Op)
                            && e.aux == OpKind::Stat as u32
                            && drops.iter().any(|(b, x)| e.ts_begin < *x && e.ts_end > *b)
                    })
                    .expect("a stat during a drop_caches");
                p.k.events[i].result = -2;
            },
            expect: Anomaly(AnomalyKind::SpuriousEnoent),
        },
        Case {
            name: "a validated NULL return hidden as a ref-walk retry (unvalidated, same seqs)",
            mutate: |p| {
                let i = positive_lookups(&p.k)[62];
                let e = &mut p.k.events[i];
                e.inode_begin = 0;
                e.inode_end = 0;
                e.flags &= !flags::VALIDATED;
            },
            expect: Anomaly(AnomalyKind::ValidatedFlag),
        },
        Case {
            name: "an operation missing from the model",
            mutate: |p| {
                let i = first_stat(&p.m, 0);
                p.m.events.remove(i);
            },
            expect: Inconclusive(ReasonKind::UnmatchedOperations),
        },
        Case {
            name: "an event with an unknown probe code",
            mutate: |p| {
                let i = positive_lookups(&p.k)[70];
                p.k.events[i].probe = 99;
            },
            expect: Inconclusive(ReasonKind::UnknownEvents),
        },
        Case {
            name: "an event with a kernel read fault",
            mutate: |p| {
                let i = positive_lookups(&p.k)[71];
                p.k.events[i].flags |= flags::READ_FAULT;
            },
            expect: Inconclusive(ReasonKind::ReadFaults),
        },
        Case {
            name: "the file cut before its footer",
            mutate: |p| {
                p.kernel_bytes = Some(|b| {
                    let n = b.len() - 64;
                    b.truncate(n);
                })
            },
            expect: Inconclusive(ReasonKind::Damaged),
        },
        Case {
            name: "a byte flipped inside an event chunk",
            mutate: |p| p.kernel_bytes = Some(|b| b[2_000] ^= 0x10),
            expect: Inconclusive(ReasonKind::Damaged),
        },
        Case {
            name: "data after the end mark",
            mutate: |p| p.kernel_bytes = Some(|b| b.extend_from_slice(b"DCTRACE\0")),
            expect: Inconclusive(ReasonKind::Damaged),
        },
        // ---- not a kernel/model pair: refused
        Case {
            name: "the model trace on the kernel side (traces swapped)",
            mutate: |p| p.swapped = true,
            expect: Refused("must be a kernel trace"),
        },
        Case {
            name: "the kernel trace on both sides (a copy as the model)",
            mutate: |p| p.m = p.k.clone(),
            expect: Refused("must be a model trace"),
        },
        Case {
            name: "the same file twice",
            mutate: |p| p.same_file = true,
            expect: Refused("the same file given twice"),
        },
    ]
}

fn outcome(r: &Result<Report, String>) -> String {
    match r {
        Err(e) => format!("refused: {e}"),
        Ok(r) => {
            let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
            for (k, n) in r
                .anomaly_counts
                .kernel
                .iter()
                .chain(r.anomaly_counts.model.iter())
            {
                *kinds.entry(k.name()).or_insert(0) += n;
            }
            let reasons: Vec<String> = r.reasons.iter().map(|x| x.to_string()).collect();
            format!(
                "{} (exit {}) anomalies {kinds:?} reasons {reasons:?}",
                r.verdict.name(),
                r.exit_status
            )
        }
    }
}

fn matches(expect: Expect, r: &Result<Report, String>) -> bool {
    match (expect, r) {
        (Expect::Refused(s), Err(e)) => e.contains(s),
        (Expect::Clean, Ok(r)) => r.verdict == Verdict::Clean && r.exit_status == 0,
        (Expect::Anomaly(k), Ok(r)) => {
            r.verdict == Verdict::Anomalies
                && r.exit_status == 1
                && (r.anomaly_counts.kernel.contains_key(&k)
                    || r.anomaly_counts.model.contains_key(&k))
        }
        (Expect::Inconclusive(k), Ok(r)) => {
            r.verdict == Verdict::Inconclusive
                && r.exit_status == 2
                && r.reasons.iter().any(|x| x.kind == k)
        }
        _ => false,
    }
}

fn run_case(c: &Case, k: &Parts, m: &Parts, dir: &Path) -> Result<Report, String> {
    let mut pair = Pair {
        k: k.clone(),
        m: m.clone(),
        kernel_bytes: None,
        same_file: false,
        swapped: false,
    };
    (c.mutate)(&mut pair);
    let (kp, mp): (PathBuf, PathBuf) = (dir.join("kernel.trace"), dir.join("model.trace"));
    save(&pair.k, &kp);
    save(&pair.m, &mp);
    if let Some(f) = pair.kernel_bytes {
        let mut b = std::fs::read(&kp).expect("read");
        f(&mut b);
        std::fs::write(&kp, b).expect("write");
    }
    let (a, b) = match (pair.same_file, pair.swapped) {
        (true, _) => (&kp, &kp),
        (false, true) => (&mp, &kp),
        (false, false) => (&kp, &mp),
    };
    diff_files(a, b, &DiffOptions::default()).map_err(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(x) = src {
            s.push_str(&format!(": {x}"));
            src = x.source();
        }
        s
    })
}

#[test]
fn the_fixture_is_a_real_recording() {
    let k = load("prune-stat.kernel.trace");
    assert_eq!(k.header.origin, Origin::Kernel);
    assert!(
        k.header.kernel_release.starts_with("6.1."),
        "{}",
        k.header.kernel_release
    );
    assert_eq!(k.footer.end, End::Finished);
    let kernel_events = k.events.iter().filter(|e| !is(e, Probe::Op)).count();
    assert!(
        (1_000..20_000).contains(&kernel_events),
        "a few thousand kernel events: {kernel_events}"
    );
    assert!(k.events.iter().all(|e| is(e, Probe::Op) || e.cpu_seq > 0));
    assert!(
        kills(&k).len() >= 5,
        "the pruner killed dentries under the readers"
    );
    let m = load("prune-stat.model.trace");
    assert_eq!(m.header.origin, Origin::Model);
}

#[test]
fn every_mutation_gets_its_verdict() {
    let k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let cases = catalogue();
    let mut wrong = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = run_case(c, &k, &m, dir.path());
        let ok = matches(c.expect, &r);
        println!(
            "{:>2} {} {:<75} expected {:?}, got {}",
            n + 1,
            if ok { "ok  " } else { "FAIL" },
            c.name,
            c.expect,
            outcome(&r)
        );
        if !ok {
            wrong.push(format!(
                "{}: expected {:?}, got {}",
                c.name,
                c.expect,
                outcome(&r)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// The case's mutation of the recorded pair, diffed, with the verdict it expects.
fn judged(case: &Case) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let r = run_case(case, &k, &m, dir.path()).expect("diff");
    assert!(
        matches(case.expect, &Ok(r.clone())),
        "{}",
        outcome(&Ok(r.clone()))
    );
    r
}

/// A lookup's exits without their entry, counted in the footer as a recorder counts them (in
/// the skipped entries, hits and drops too): the reason names the probe, the count, the cause
/// and what avoids it, once.
#[test]
fn exits_without_entry_name_probe_count_and_fix() {
    let r = judged(&Case {
        name: "exits without entry, as recorded",
        mutate: |p| {
            let s = sym(Probe::DLookupRcu);
            p.k.footer.exits_without_entry.insert(s.clone(), 3);
            p.k.footer.skipped_entries.insert(s.clone(), 3);
            *p.k.footer.hits.entry(s.clone()).or_insert(0) += 3;
            p.k.footer.drops.insert(s, 3);
        },
        expect: Expect::Inconclusive(ReasonKind::Lost),
    });
    let lost = messages(&r, ReasonKind::Lost);
    assert_eq!(lost.len(), 1, "{lost:?}");
    for part in [
        "lost 3 events on __d_lookup_rcu",
        "3 of its exits found no entry",
        "the tracer's own lost slots",
        "`--attach fentry`",
    ] {
        assert!(lost[0].contains(part), "{part:?} in {:?}", lost[0]);
    }
}

/// The kprobe layer's misses as a 6.7+ recorder writes them (an entry kprobe's in the skipped
/// entries, hits and drops; a kretprobe's whose traced calls are among the drops): each reason
/// names the probe, the count and what avoids it.
#[test]
fn kprobe_misses_name_probe_count_and_fix() {
    let r = judged(&Case {
        name: "kprobe misses, as recorded",
        mutate: |p| {
            let (kill, drop) = (sym(Probe::DentryKill), sym(Probe::DDropInner));
            p.k.footer.kprobe_missed_entries.insert(kill.clone(), 2);
            p.k.footer.skipped_entries.insert(kill.clone(), 2);
            *p.k.footer.hits.entry(kill.clone()).or_insert(0) += 2;
            p.k.footer.drops.insert(kill, 2);
            p.k.footer.kprobe_missed_exits.insert(drop.clone(), 7);
            *p.k.footer.hits.entry(drop.clone()).or_insert(0) += 1;
            p.k.footer.drops.insert(drop, 1);
        },
        expect: Expect::Inconclusive(ReasonKind::Lost),
    });
    let said = |kind: ReasonKind, parts: &[&str]| {
        assert!(
            r.reasons
                .iter()
                .any(|x| x.kind == kind && parts.iter().all(|p| x.message.contains(p))),
            "{kind:?} with {parts:?} in {:?}",
            r.reasons
        );
    };
    said(
        ReasonKind::Lost,
        &[
            "lost 2 events on __dentry_kill",
            "its kprobe missed 2 hits",
            "`--attach fentry`",
        ],
    );
    said(
        ReasonKind::Lost,
        &[
            "lost 1 events on ___d_drop",
            "its kretprobe missed 7 returns",
            "maxactive",
        ],
    );
}

/// The report carries the event agreement of the pair: every kernel operation of the real
/// recording has its twin in the replay; with the model's positive lookups made to return a
/// NULL inode, the operations holding them stop agreeing and the report shows which.
#[test]
fn the_report_carries_event_agreement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = load("prune-stat.kernel.trace");
    let mut m = load("prune-stat.model.trace");
    let kernel_ops = k.events.iter().filter(|e| is(e, Probe::Op)).count() as u64;
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    save(&k, &kp);
    let diff = |m: &Parts| {
        save(m, &mp);
        diff_files(&kp, &mp, &DiffOptions::default()).expect("diff")
    };
    let before = diff(&m).agreement;
    assert_eq!(before.unmatched, 0);
    assert_eq!(before.total.ops, kernel_ops);
    assert!(before.total.agree > kernel_ops / 2, "{before}");
    // Debian's 6.1 inlines __d_drop into its callers: attached, it never fired. The model
    // calls it as the source does; the unhash is compared through ___d_drop alone.
    assert!(k.header.attach["__d_drop"].is_attached());
    assert!(!k.events.iter().any(|e| is(e, Probe::DDrop)));
    assert!(m.events.iter().any(|e| is(e, Probe::DDrop)));
    assert!(before.model_only.contains(&Probe::DDrop), "{before}");
    assert!(before.probes.contains(&Probe::DDropInner), "{before}");

    for e in m.events.iter_mut() {
        if is(e, Probe::DLookupRcu) && e.inode_end != 0 {
            e.inode_end = 0;
        }
    }
    let r = diff(&m);
    let after = &r.agreement;
    assert_eq!(after.total.ops, kernel_ops);
    assert!(
        after.total.agree < before.total.agree / 2,
        "before {before}after {after}"
    );
    let v = serde_json::to_value(&r).expect("serialize");
    let stat = &v["agreement"]["per_op"]["stat"];
    assert!(stat["ops"].as_u64() > stat["agree"].as_u64(), "{stat}");
    let first = &v["agreement"]["examples"][0];
    assert!(
        first["model"]
            .as_array()
            .expect("model signatures")
            .iter()
            .any(|s| s
                .as_str()
                .is_some_and(|s| s.starts_with("__d_lookup_rcu(") && s.contains("NULL"))),
        "{first}"
    );
    let mut text = Vec::new();
    r.write_summary(&mut text).expect("summary");
    let text = String::from_utf8(text).expect("utf-8");
    assert!(text.contains("event agreement: "), "{text}");
}
