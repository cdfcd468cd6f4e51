//! What each event does to one side's state, by kind: an operation (the workload's own event:
//! its facts enter the history, its result and any ENOENT become suspects), a lookup (the
//! dentry's `d_seq` read against its writers, the validated flag checked, a NULL-inode return
//! held as a suspect) and a writer (the `d_seq` moves checked, the end of a dentry's hashed
//! life, an inode clear on a hashed dentry held as a suspect). Called from
//! [`SideState::process`](super::SideState::process) once per event, in key order.
use tracer_common::{flags, OpKind, Probe};

use super::{
    findings::{json_map, Fresh, Gap},
    kind_bit,
    suspects::SuspectKind,
    Named, OpSpan, Shared, SideState,
};
use crate::diff::{
    align::PathId,
    classify::{self, Class, Ruling, WriterSpan},
    evidence::flag_text,
    history::Fact,
    invariants::Finding,
    report::AnomalyKind,
};
use serde_json::json;

pub(super) const ENOENT: i32 = -2;
/// Writer spans kept per dentry for overlap questions (a kill is two or three events).
const WRITERS_KEPT: usize = 8;

impl SideState {
    /// `thread`: the event's thread number in [`super::Threads`].
    /// False: not an operation this diff knows (nothing built).
    pub(super) fn on_op(&mut self, ev: &Named, thread: usize, sh: &mut Shared) -> bool {
        let Some(kind) = crate::codes::op_of(ev.aux) else {
            return false;
        };
        let (path, path2) = sh.paths.operation(ev.name_id, ev.has(flags::TWO_PATHS));
        // Operations come in begin order: this is the first one, the setup is over. Tested
        // first: taking the empty vector cost about 10 instructions an operation (callgrind).
        if !self.setup.is_empty() {
            for (p, k) in std::mem::take(&mut self.setup) {
                self.hist.add(p, Fact::setup(k, ev.ts_begin), self.now);
            }
        }
        let facts = Fact::from_op(kind, ev.result, ev.ts_begin, ev.ts_end, ev.tid);
        self.hist.add_op(facts, path, path2, self.now);
        let t = &mut self.threads.states[thread];
        t.ops += 1;
        t.kinds |= kind_bit(kind);
        t.op = Some(OpSpan {
            kind,
            ts_begin: ev.ts_begin,
            ts_end: ev.ts_end,
            path,
            path2,
        });
        self.ops_processed += 1;
        let enoent = matches!(kind, OpKind::Stat | OpKind::Open) && ev.result == ENOENT;
        // An ENOENT is also classified at its deadline: its suspect stays.
        let begun = sh
            .matcher
            .begin_or_settle(self.index, kind, path, ev.result, !enoent);
        self.stage(ev, Probe::Op, path, 0, (Some(kind), path2));
        // Settled: the other side's twin, begun first, gave the same result, and nothing
        // else waits on this one.
        if let Some(begun) = begun {
            self.suspect(SuspectKind::Result { begun, enoent }, Some(kind));
        }
        true
    }

    /// Always builds an observation; its path.
    pub(super) fn on_lookup(
        &mut self,
        ev: &Named,
        thread: usize,
        probe: Probe,
        sh: &mut Shared,
    ) -> PathId {
        // The operation around the lookup on its thread, looked up once (nothing below changes
        // the thread's state before the lookup is added to it at the end): its kind, and its
        // end bounding when the probe read. Only these two are read out (copying the
        // operation out cost about 4 instructions a lookup, callgrind).
        let (op_kind, read_by) = match &self.threads.states[thread].op {
            Some(op) if op.ts_begin <= ev.ts_begin && op.ts_end >= ev.ts_end => {
                (Some(op.kind), op.ts_end)
            }
            // The probe reads after its return stamp.
            _ => (None, ev.ts_end),
        };
        let (path, guessed, generation) = self.place(ev, sh);
        self.stage(ev, probe, path, generation, (None, None));
        if ev.dentry != 0 {
            if ev.has(flags::VALIDATED) != (ev.seq_begin == ev.seq_end) {
                self.fresh.push(Fresh {
                    kind: AnomalyKind::ValidatedFlag,
                    ruling: Ruling {
                        class: Class::Anomaly,
                        why: format!(
                            "the lookup is {} but read d_seq {} then {}: the flag says the \
                             caller's check {} when the values say it {}",
                            if ev.has(flags::VALIDATED) {
                                "validated"
                            } else {
                                "not validated"
                            },
                            ev.seq_begin,
                            ev.seq_end,
                            if ev.has(flags::VALIDATED) {
                                "passes"
                            } else {
                                "fails"
                            },
                            if ev.has(flags::VALIDATED) {
                                "fails"
                            } else {
                                "passes"
                            },
                        ),
                        evidence: json_map(json!({
                            "seq_begin": ev.seq_begin,
                            "seq_end": ev.seq_end,
                            "flags": flag_text(ev.flags),
                        })),
                    },
                });
            }
            // Returned unhashed and validated: did it read `d_seq` after its unhash's
            // invalidate (which a correct `__d_lookup_rcu` skips)?
            let returned_unhashed = probe == Probe::DLookupRcu
                && ev.flags & (flags::HASHED_BEGIN | flags::VALIDATED | flags::READ_FAULT)
                    == flags::VALIDATED;
            let (found, decreased, after_unhash) = match self.dentries.get_mut(ev.dentry) {
                Some(r) => (
                    r.seq.lookup(ev.seq_end, ev.ts_end, read_by),
                    r.order.read(ev.seq_end, ev.cpu, ev.ts_begin, ev.ts_end),
                    returned_unhashed
                        .then(|| r.seq.returned_after_unhash(ev.seq_begin))
                        .flatten(),
                ),
                None => (None, None, None),
            };
            if let Some(unhashed_from) = after_unhash {
                self.fresh.push(Fresh {
                    kind: AnomalyKind::FoundUnhashed,
                    ruling: Ruling {
                        class: Class::Anomaly,
                        why: format!(
                            "__d_lookup_rcu returned the dentry with *seqp {}, at or above the \
                             {unhashed_from} its unhash invalidated d_seq to, and it is unhashed \
                             at return: the lookup read d_seq after pprev was cleared, so its \
                             d_unhashed() check must have skipped the dentry",
                            ev.seq_begin
                        ),
                        evidence: json_map(json!({
                            "seqp": ev.seq_begin,
                            "seq_after_unhash": unhashed_from,
                            "flags": flag_text(ev.flags),
                        })),
                    },
                });
            }
            if let Some(f) = decreased {
                self.seq_decreased(f, probe);
            }
            if let Some(Finding::Gap {
                from, to, since, ..
            }) = found
            {
                // Attributed now, while the operations around it are still in the history.
                let obs = *self.evidence.staged();
                let gap = Gap {
                    from,
                    to,
                    since,
                    cause: self.attribute_gap(&obs, since),
                    obs,
                };
                let earlier = self
                    .dentries
                    .get_mut(ev.dentry)
                    .and_then(|r| r.held_gap.replace(Box::new(gap)));
                if let Some(g) = earlier {
                    self.gap(*g, sh);
                }
            }
            if probe == Probe::DLookupRcu && ev.inode_begin == 0 {
                if !ev.has(flags::VALIDATED) {
                    self.null[Class::RejectedSnapshot as usize] += 1;
                } else if guessed {
                    // Judged at a guessed name, it would be judged against another name's
                    // history.
                    self.unnamed_unjudged += 1;
                } else {
                    self.suspect_lookup(op_kind);
                }
            }
        }
        self.evidence.push_lookup(thread, self.next_n);
        path
    }

    /// A lookup's read or a writer's entry below a value the stamps order before it.
    fn seq_decreased(&mut self, f: Finding, probe: Probe) {
        let Finding::Decreased { from, to, since } = f else {
            return;
        };
        let read = match probe {
            Probe::DLookupRcu | Probe::DLookup => format!("d_seq read {to}"),
            p => format!("{} entered at d_seq {to}", p.symbol()),
        };
        self.fresh.push(Fresh {
            kind: AnomalyKind::SeqDecreased,
            ruling: Ruling {
                class: Class::Anomaly,
                why: format!(
                    "{read}, below the {from} a lookup or writer saw before it (the same CPU, or \
                     further apart than two CPUs' clocks disagree): the count went backwards \
                     within the dentry's life"
                ),
                evidence: json_map(json!({
                    "earlier_value": from,
                    "value": to,
                    "previous_observation_ts": since,
                })),
            },
        });
    }

    /// `late`: it arrived after the reorder window had passed its time. The path of the
    /// observation built; None: no dentry (nothing built).
    pub(super) fn on_writer(
        &mut self,
        ev: &Named,
        probe: Probe,
        late: bool,
        sh: &mut Shared,
    ) -> Option<PathId> {
        if ev.dentry == 0 {
            return None;
        }
        let span = WriterSpan {
            probe,
            ts_begin: ev.ts_begin,
            ts_end: ev.ts_end,
            tid: ev.tid,
            flags: ev.flags,
            positive: !ev.has(flags::NO_ENTRY) && ev.inode_begin != 0,
        };
        // A writer inside a traced kill of its dentry, on the kill's thread, is that dentry's:
        // an unhash of a negative dentry before it in the kill did not end its life (the
        // kill's end does). Only a kill that cleared the inode early shows such a writer.
        if let Some(rec) = self.dentries.get_mut(ev.dentry) {
            if let Some(d) = rec.dead_at.filter(|d| *d < ev.ts_begin) {
                if let Some(k) = rec
                    .writers
                    .iter()
                    .find(|k| k.is_kill() && span.within(k) && k.ts_begin <= d)
                {
                    rec.dead_at = Some(k.ts_end);
                }
            }
        }
        let (path, guessed, generation) = self.place(ev, sh);
        self.stage(ev, probe, path, generation, (None, None));
        let proto = &self.proto;
        let rec = self.dentries.entry(ev.dentry);
        let findings = rec.seq.writer(ev, probe, proto);
        let decreased = if ev.has(flags::NO_ENTRY) {
            None
        } else {
            rec.order
                .read(ev.seq_begin, ev.cpu, ev.ts_begin, ev.ts_begin)
        };
        // A kill's exit that went back read the freed dentry's next life: no value of this one.
        let freed = matches!(probe, Probe::DentryKill | Probe::DentryKillLocked)
            && (ev.seq_end.wrapping_sub(ev.seq_begin) as i32) < 0;
        if !freed {
            rec.order.exit(ev.seq_end, ev.cpu, ev.ts_end);
        }
        let held = rec.held_gap.take();
        // The hashed `__d_drop` a `__d_move` held its extra 2 for: called by it, on its thread.
        let awaited = rec.awaits_d_drop.take().filter(|g| {
            !(probe == Probe::DDrop
                && ev.flags & (flags::HASHED_BEGIN | flags::NO_ENTRY) == flags::HASHED_BEGIN
                && ev.tid == g.obs.tid
                && g.obs.ts_begin <= ev.ts_begin
                && ev.ts_end <= g.obs.ts_end)
        });
        let cleared_early = classify::cleared_in_kill(&span, &rec.writers);
        if rec.writers.len() == WRITERS_KEPT {
            rec.writers.remove(0);
        }
        rec.writers.push(span);
        // Inside a traced d_delete on the same thread, the clear is d_delete's own, whatever
        // the operations' timing says.
        let in_d_delete = rec.writers.iter().any(|w| {
            w.probe == Probe::DDelete
                && w.tid == ev.tid
                && w.ts_begin <= ev.ts_begin
                && ev.ts_end <= w.ts_end
        });
        let clear = matches!(probe, Probe::DentryUnlinkInode | Probe::DentryIput)
            && ev.inode_begin != 0
            && ev.inode_end == 0;
        let hashed = ev.has(flags::HASHED_BEGIN);
        // A negative dentry's hashed life ends at its unhash, also inside `__d_move` (odd
        // count): only the positive dentry being moved is rehashed; the negative target is
        // left unhashed and dies with no traced event, and its address comes back as a new
        // dentry whose d_seq starts again from 0.
        let negative_unhash = ev.inode_begin == 0
            && match probe {
                Probe::DDropInner => true,
                Probe::DDrop => hashed,
                _ => false,
            };
        // The kill path ends the dentry's life whatever its writers inside show (they may be
        // inlined into it). `__dentry_kill` always kills. `dentry_kill` gives up when the
        // dentry gained a user meanwhile (kept hashed, or kept its inode): it killed when it
        // leaves the dentry unhashed and negative (7.3's kills of unhashed negative dentries,
        // `__d_move`'s targets, show nothing else).
        let killed = match probe {
            Probe::DentryKill => true,
            Probe::DentryKillLocked => !ev.has(flags::HASHED_END) && ev.inode_end == 0,
            _ => false,
        };
        if (clear && !hashed) || negative_unhash || killed {
            rec.dead_at = Some(ev.ts_end);
        }
        if matches!(probe, Probe::DMove | Probe::DMoveTarget) {
            rec.moved = true;
        }
        if let Some(mut g) = held {
            match (rec.seq.unexplained_from(), findings[0]) {
                // Writers seen early moved part of it: the rest waits for the next writer.
                (Some(from), _) => {
                    g.from = from;
                    rec.held_gap = Some(g);
                }
                // This writer's own move, read before its stamp: explained.
                (None, Some(Finding::SeenEarly { .. })) => self.diag.seq_moves_seen_early += 1,
                (None, _) => self.gap(*g, sh),
            }
        }
        if let Some(g) = awaited {
            self.gap(*g, sh);
        }
        // Nearly always none: the pair as an iterator cost about 45 instructions a writer.
        let [first, second] = findings;
        if let Some(f) = first {
            let obs = *self.evidence.staged();
            self.finding(f, &obs, sh);
        }
        if let Some(f) = second {
            let obs = *self.evidence.staged();
            self.finding(f, &obs, sh);
        }
        if let Some(f) = decreased {
            self.seq_decreased(f, probe);
        }
        if let Some(ruling) = cleared_early {
            self.fresh.push(Fresh {
                kind: AnomalyKind::ClearBeforeUnhash,
                ruling,
            });
        }
        if clear && hashed && !in_d_delete && !ev.has(flags::NO_ENTRY) {
            if guessed {
                // Whether it is the name's own d_delete cannot be told at a guessed name.
                self.unnamed_unjudged += 1;
            } else {
                let op = self.enclosing_op(self.evidence.staged());
                self.suspect(SuspectKind::ClearHashed { late }, op);
            }
        }
        Some(path)
    }
}
