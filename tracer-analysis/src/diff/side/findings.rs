//! What one side reports as it goes: coverage gaps (a `d_seq` move no traced writer made,
//! with the untraced writer named when the protocol or the operations around it tell) and
//! anomalies (turned into the evidence ring's details and, if asked, timeline marks, written
//! once the trace's end says whether each is set aside).
use serde_json::{json, Value};
use tracer_common::{flags, OpKind, Probe};

use super::{Shared, SideState};
use crate::diff::{
    classify::{Class, Ruling},
    evidence::Obs,
    invariants::{Finding, GapCause},
    report::{AnomalyKind, GapExample},
};

/// A coverage gap with its cause, and the observation that revealed it.
pub(super) struct Gap {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) since: u64,
    pub(super) cause: &'static str,
    pub(super) obs: Obs,
}

/// A finding made while processing an event, turned into an anomaly once the event is in the
/// context ring.
pub(super) struct Fresh {
    pub(super) kind: AnomalyKind,
    pub(super) ruling: Ruling,
}

impl SideState {
    pub(super) fn operation_of(&self, obs: &Obs) -> String {
        match (obs.op, self.enclosing_op(obs)) {
            (Some(k), _) => k.name().into(),
            (None, Some(k)) => format!("{} in {}", obs.probe.symbol(), k.name()),
            (None, None) => obs.probe.symbol().into(),
        }
    }

    pub(super) fn finding(&mut self, f: Finding, obs: &Obs, sh: &mut Shared) {
        match f {
            Finding::Gap {
                from,
                to,
                since,
                cause,
            } => {
                let awaits_d_drop = matches!(cause, GapCause::AwaitsDDrop(_));
                let cause = match cause {
                    GapCause::DMove(Probe::DDrop) => "__d_move (odd d_seq at __d_drop entry)",
                    GapCause::DMove(_) => "__d_move (odd d_seq at ___d_drop entry)",
                    GapCause::InsideWriter(p) | GapCause::AwaitsDDrop(p) => match p {
                        Probe::DDrop => "untraced writer inside __d_drop",
                        Probe::DDropInner => "untraced writer inside ___d_drop",
                        Probe::DentryUnlinkInode => "untraced writer inside dentry_unlink_inode",
                        Probe::DentryIput => "untraced writer inside dentry_iput",
                        Probe::DMove | Probe::DMoveTarget => "untraced writer inside __d_move",
                        Probe::DInstantiate | Probe::DInstantiateInner | Probe::DInstantiateNew => {
                            "untraced writer inside d_instantiate"
                        }
                        Probe::DAdd | Probe::DAddInner => "untraced writer inside d_add",
                        _ => "untraced writer inside a traced one",
                    },
                    GapCause::Unattributed => self.attribute_gap(obs, since),
                };
                let gap = Gap {
                    from,
                    to,
                    since,
                    cause,
                    obs: *obs,
                };
                if awaits_d_drop {
                    // Held for the `__d_drop` this `__d_move` called: its event comes next.
                    let earlier = self
                        .dentries
                        .get_mut(obs.slot)
                        .and_then(|r| r.awaits_d_drop.replace(Box::new(gap)));
                    if let Some(g) = earlier {
                        self.gap(*g, sh);
                    }
                } else {
                    self.gap(gap, sh);
                }
            }
            // Settles a held gap (on_writer); nothing of its own to report. Decreases are
            // found by lookups (on_lookup).
            Finding::SeenEarly { .. } | Finding::Decreased { .. } => {}
            Finding::ShortWithin {
                probe,
                expected,
                observed,
            } => {
                let ruling = Ruling {
                    class: Class::Anomaly,
                    why: format!(
                        "{} moved d_seq by {observed}, the protocol ({}) requires {expected}",
                        probe.symbol(),
                        self.proto.source
                    ),
                    evidence: json_map(json!({
                        "expected_delta": expected,
                        "observed_delta": observed,
                        "seq_begin": obs.seq_begin,
                        "seq_end": obs.seq_end,
                        "hashed_at_entry": obs.flags & flags::HASHED_BEGIN != 0,
                    })),
                };
                self.fresh.push(Fresh {
                    kind: AnomalyKind::SeqDelta,
                    ruling,
                });
            }
            Finding::MissingOwed {
                by,
                base,
                amount,
                found,
                owed_since,
            } => {
                let ruling = Ruling {
                    class: Class::Anomaly,
                    why: format!(
                        "the caller of {} owed d_seq +{amount} after it returned (at {base}); \
                         the next writer found {found}",
                        by.symbol()
                    ),
                    evidence: json_map(json!({
                        "owed_by": by.symbol(),
                        "owed_since_ts": owed_since,
                        "expected_at_least": base.wrapping_add(amount),
                        "found": found,
                    })),
                };
                self.fresh.push(Fresh {
                    kind: AnomalyKind::SeqDelta,
                    ruling,
                });
            }
        }
    }

    pub(super) fn gap(&mut self, g: Gap, sh: &mut Shared) {
        let Gap {
            from,
            to,
            since,
            cause,
            obs,
        } = g;
        self.coverage.total += 1;
        if let Some(t) = sh.timeline.as_mut() {
            let origin = self.origin.unwrap_or(0);
            let args = json!({"from": from, "to": to, "cause": cause});
            t.instant(
                self.pid(),
                obs.tid,
                "coverage gap",
                "coverage-gap",
                obs.ts_end.saturating_sub(origin),
                &args,
            );
        }
        if self.coverage.examples.len() < self.lim.max_examples {
            self.coverage.examples.push(GapExample {
                name: sh.paths.render(obs.path),
                dentry: obs.dentry,
                generation: obs.generation,
                from_seq: from,
                to_seq: to,
                since_ts: since,
                ts: obs.ts_begin,
                observed_by: obs.probe.symbol(),
                cause: cause.to_string(),
            });
        }
        *self.gap_causes.entry(cause).or_insert(0) += 1;
    }

    /// Names the untraced writer of a gap from the operations on the name meanwhile.
    pub(super) fn attribute_gap(&self, obs: &Obs, since: u64) -> &'static str {
        let (b, e) = (since.min(obs.ts_begin), obs.ts_end);
        let ops = [
            (
                &[OpKind::Create, OpKind::Mkdir, OpKind::Open][..],
                "d_instantiate (create)",
            ),
            (&[OpKind::Rename, OpKind::Exchange][..], "__d_move (rename)"),
            (
                &[OpKind::Unlink, OpKind::Rmdir][..],
                "untraced d_delete path (unlink)",
            ),
        ];
        ops.iter()
            .find(|(kinds, _)| self.hist.op_overlapping(obs.path, b, e, kinds).is_some())
            .map_or("unknown (no operation on the name explains it)", |(_, c)| c)
    }

    /// `late`: the subject arrived after the reorder window had passed its time.
    pub(super) fn add_anomaly(
        &mut self,
        kind: AnomalyKind,
        subject: &Obs,
        late: bool,
        operation: String,
        v: Ruling,
        sh: &mut Shared,
    ) {
        if let Some(t) = sh.timeline.as_mut() {
            let origin = self.origin.unwrap_or(0);
            let name = sh.paths.render(subject.path);
            let args = json!({"name": name, "why": v.why, "evidence": v.evidence});
            t.anomaly(
                self.pid(),
                subject.tid,
                kind,
                subject.ts_begin.saturating_sub(origin),
                args,
            );
        }
        self.evidence
            .add(kind, subject, late, operation, v, &sh.paths);
    }
}

pub(super) fn json_map(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}
