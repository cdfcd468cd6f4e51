//! One side's results, read out for the report once the trace is done: the front's event
//! counts, coverage gaps per cause, and NULL-inode returns and ENOENTs per class.
use std::collections::BTreeMap;

use tracer_common::{OpKind, Probe};

use super::SideState;
use crate::diff::{
    classify::Class,
    feed::Counts,
    report::{Classes, Coverage, EventCounts},
};

impl SideState {
    /// The front's counts, once it has read the whole trace.
    pub fn absorb(&mut self, counts: Counts) {
        self.diag.operation_time_range = counts.operation_time_range;
        self.diag.probe_time_range = counts.probe_time_range;
        self.diag.max_reorder_depth = counts.max_reorder_depth;
        self.counts = counts;
    }

    /// Events per probe symbol and per operation, as read.
    pub fn event_counts(&self) -> EventCounts {
        let mut per_probe = BTreeMap::new();
        for p in Probe::ALL {
            per_probe.insert(p.symbol().to_string(), self.counts.per_probe[p as usize]);
        }
        let unknown = self.counts.per_probe[0];
        if unknown > 0 {
            per_probe.insert("unknown".into(), unknown);
        }
        let mut per_operation = BTreeMap::new();
        for k in OpKind::ALL {
            let n = self.counts.per_op[k as usize];
            if n > 0 {
                per_operation.insert(k.name().to_string(), n);
            }
        }
        EventCounts {
            total: self.counts.arrivals,
            per_probe,
            per_operation,
        }
    }

    /// Coverage gaps found in the trace (the header's unattached targets are added by the caller).
    pub fn coverage(&self) -> Coverage {
        let mut c = self.coverage.clone();
        c.by_cause = self
            .gap_causes
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        c
    }

    /// NULL-inode lookup returns per class.
    pub fn null_classes(&self) -> Classes {
        classes(&self.null, &Class::ALL, self.set_aside[0])
    }

    /// ENOENT results per class (a snapshot cannot be rejected by an operation).
    pub fn enoent_classes(&self) -> Classes {
        classes(
            &self.enoent,
            &[Class::Negative, Class::OverlapsWriter, Class::Anomaly],
            self.set_aside[1],
        )
    }
}

/// `counts`: per class, indexed by `Class as usize`; `set_aside`: taken out of the anomalies.
fn classes(counts: &[u64; Class::ALL.len()], shown: &[Class], set_aside: u64) -> Classes {
    let by_class: BTreeMap<String, u64> = shown
        .iter()
        .map(|c| (c.name().to_string(), counts[*c as usize]))
        .collect();
    Classes {
        total: counts.iter().sum::<u64>() + set_aside,
        anomalous: counts[Class::Anomaly as usize],
        by_class,
        set_aside,
    }
}
