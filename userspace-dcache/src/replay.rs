//! Replay: run a workload's operations (converted from a workload file or a kernel trace) on
//! the model, either one at a time in the trace's order or freely on real threads.

use crate::error::ModelError;
use crate::model::Dcache;
use crate::task::{StepHook, Task};
use std::collections::BTreeMap;
use tracer_common::OpKind;

/// One workload operation to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOp {
    /// Thread id; becomes the `tid` of the op's model events.
    pub tid: u32,
    pub kind: OpKind,
    /// Path relative to the model's root ("d/f3"); unused for `DropCaches`.
    pub path: String,
    /// Rename target; required for `Rename`, ignored otherwise.
    pub path2: Option<String>,
    /// Syscall begin and end from a kernel trace, if any (same clock for all ops).
    pub ts_begin: Option<u64>,
    pub ts_end: Option<u64>,
    /// When, inside its span, the kernel trace shows the op taking effect (a writer's unhash,
    /// move or instantiate; a reader's last lookup): sequential replay runs the op there, not
    /// at its begin, so ops that overlapped in the kernel meet in the kernel's order.
    pub ts_effect: Option<u64>,
}

impl ReplayOp {
    pub fn new(tid: u32, kind: OpKind, path: impl Into<String>) -> ReplayOp {
        ReplayOp {
            tid,
            kind,
            path: path.into(),
            path2: None,
            ts_begin: None,
            ts_end: None,
            ts_effect: None,
        }
    }

    pub fn with_path2(mut self, path2: impl Into<String>) -> ReplayOp {
        self.path2 = Some(path2.into());
        self
    }

    pub fn with_span(mut self, ts_begin: u64, ts_end: u64) -> ReplayOp {
        self.ts_begin = Some(ts_begin);
        self.ts_end = Some(ts_end);
        self
    }

    pub fn with_effect(mut self, ts_effect: u64) -> ReplayOp {
        self.ts_effect = Some(ts_effect);
        self
    }

    /// Where sequential replay places the op: its effect, kept inside its span (so a thread's
    /// ops keep their program order), else its begin.
    fn placed_at(&self) -> Option<u64> {
        match (self.ts_begin, self.ts_end, self.ts_effect) {
            (Some(b), Some(e), Some(t)) if b <= e => Some(t.clamp(b, e)),
            (b, _, _) => b,
        }
    }
}

/// How to run the ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayMode {
    /// One at a time on the calling thread, ordered by `ts_effect` where known, else `ts_begin`
    /// (ties and ops without one keep their input order): an order consistent with the kernel
    /// trace. Ops with both timestamps get them in their Op events, and a logical clock jumps
    /// forward to each op's place, so model events land inside their op's interval.
    Sequential,
    /// One OS thread per `tid`, each running its ops in input order, all threads at once.
    Threads,
    /// [`ReplayMode::Threads`], each thread waiting until its op's `ts_begin` (relative to the
    /// earliest one) before running it: the kernel run's pace, so that ops which overlapped in
    /// the kernel overlap in the model too. The model's own clock stamps the events.
    Paced,
}

/// What one op returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Index into the input.
    pub index: usize,
    pub tid: u32,
    pub kind: OpKind,
    /// 0 or -errno.
    pub result: i32,
}

fn run_one(t: &Task<'_>, index: usize, op: &ReplayOp, use_span: bool) -> ReplayOutcome {
    let span = op.ts_begin.zip(op.ts_end).filter(|_| use_span);
    let r = t.run(op.kind, &op.path, op.path2.as_deref(), span);
    ReplayOutcome {
        index,
        tid: op.tid,
        kind: op.kind,
        result: r.map_or_else(|e| -e.code(), |()| 0),
    }
}

/// Runs `ops` on `dc`; outcomes come back in input order.
pub fn replay(
    dc: &Dcache,
    ops: &[ReplayOp],
    mode: ReplayMode,
) -> Result<Vec<ReplayOutcome>, ModelError> {
    replay_with_hook(dc, ops, mode, None)
}

/// [`replay`], every task calling `hook` at each protocol [`crate::Step`] (injected delays
/// widen race windows in [`ReplayMode::Threads`]).
pub fn replay_with_hook(
    dc: &Dcache,
    ops: &[ReplayOp],
    mode: ReplayMode,
    hook: Option<StepHook>,
) -> Result<Vec<ReplayOutcome>, ModelError> {
    let task = |tid: u32| match &hook {
        Some(h) => dc.task(tid).with_hook(h.clone()),
        None => dc.task(tid),
    };
    if let Some((index, op)) = ops
        .iter()
        .enumerate()
        .find(|(_, op)| matches!(op.kind, OpKind::Rename | OpKind::Exchange) && op.path2.is_none())
    {
        return Err(ModelError::MissingSecondPath {
            index,
            kind: op.kind.name(),
        });
    }
    let mut out = match mode {
        ReplayMode::Sequential => {
            let mut order: Vec<usize> = (0..ops.len()).collect();
            // Ops without a timestamp stay where they are relative to the one before them.
            let mut last = 0;
            let keys: Vec<u64> = ops
                .iter()
                .map(|op| {
                    last = op.placed_at().unwrap_or(last);
                    last
                })
                .collect();
            order.sort_by_key(|&i| keys[i]);
            let mut tasks: BTreeMap<u32, Task<'_>> = BTreeMap::new();
            order
                .into_iter()
                .map(|i| {
                    let op = &ops[i];
                    let t = tasks.entry(op.tid).or_insert_with(|| task(op.tid));
                    if let Some(at) = op.placed_at() {
                        dc.clock().advance_to(at);
                    }
                    run_one(t, i, op, true)
                })
                .collect::<Vec<_>>()
        }
        ReplayMode::Threads | ReplayMode::Paced => {
            let paced = mode == ReplayMode::Paced;
            let first = ops.iter().filter_map(|op| op.ts_begin).min().unwrap_or(0);
            let start = std::time::Instant::now();
            let mut per_tid: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for (i, op) in ops.iter().enumerate() {
                per_tid.entry(op.tid).or_default().push(i);
            }
            std::thread::scope(|s| {
                let handles: Vec<_> = per_tid
                    .into_iter()
                    .map(|(tid, idx)| {
                        let task = &task;
                        s.spawn(move || {
                            let t = task(tid);
                            idx.into_iter()
                                .map(|i| {
                                    let op = &ops[i];
                                    if let (true, Some(b)) = (paced, op.ts_begin) {
                                        let due = std::time::Duration::from_nanos(b - first);
                                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                                            std::thread::sleep(wait);
                                        }
                                    }
                                    run_one(&t, i, op, !paced)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut all = Vec::with_capacity(ops.len());
                for h in handles {
                    all.extend(h.join().map_err(|_| ModelError::ThreadPanicked)?);
                }
                Ok::<_, ModelError>(all)
            })?
        }
    };
    out.sort_by_key(|o| o.index);
    Ok(out)
}
