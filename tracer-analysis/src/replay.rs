//! Replay: a workload on the model (`userspace-dcache`), written as a trace of the same schema
//! as a kernel recording. With a kernel trace, the model runs that trace's operations in the
//! order of their timestamps, so the two traces can be diffed operation by operation.
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use tracer_common::{flags, Event, OpKind, Probe};
use userspace_dcache::{
    replay, replay::replay_with_hook, Dcache, DcacheConfig, EventSink, FsKind, ModelError, Profile,
    ReplayMode, ReplayOp, Step, StepHook,
};

use crate::{
    trace::{End, Footer, Header, Origin, Reader, ThreadInfo, TraceError, Writer},
    workload::{self, PlannedOp, Workload, WorkloadError, SETUP_THREAD},
};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("{0}")]
    Input(String),
}

/// Streams model events into a trace writer; setup runs with recording off, as the kernel's
/// setup runs before the probes attach.
struct TraceSink {
    on: AtomicBool,
    writer: Mutex<Option<Writer>>,
    error: Mutex<Option<TraceError>>,
}

impl EventSink for TraceSink {
    fn wants_events(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn emit(&self, events: &[Event]) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = w.as_mut() else { return };
        for e in events {
            if let Err(err) = w.push(e) {
                let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(err);
                return;
            }
        }
    }
}

/// Where the replay's operations come from.
pub enum Source<'a> {
    /// The workload's own plan, run freely on one model thread per workload thread.
    Plan,
    /// The operations of this kernel trace, in its timestamp order.
    Against(&'a Path),
}

/// How the model runs the operations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Run a kernel trace's operations on one model thread per kernel thread, at the kernel
    /// run's pace, instead of one at a time in timestamp order: the model's own races can then
    /// happen.
    pub threads: bool,
    /// Yield at the protocol's race windows (after `__d_lookup_rcu` returns, between unhash and
    /// inode clear, before the shrinker's kill), as a scheduler forcing interleavings would.
    pub delays: bool,
}

/// What a replay did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReplaySummary {
    pub profile: String,
    pub workload: String,
    pub ops: u64,
    pub events: u64,
    /// Against a kernel trace: ops whose model result differs from the kernel's.
    pub results_differ: Option<u64>,
    /// Ran on real threads (the plan, or `--threads`), with delays injected or not.
    pub threads: bool,
    pub delays: bool,
}

fn model_fs(w: &Workload) -> FsKind {
    if w.filesystem.is_disk() {
        FsKind::Disk
    } else {
        FsKind::Tmpfs
    }
}

/// The workload a kernel trace ran (its stored TOML, scaled as recorded).
pub fn workload_of(header: &Header, path: &Path) -> Result<Workload, ReplayError> {
    let toml = header.workload_toml.as_deref().ok_or_else(|| {
        ReplayError::Input(format!(
            "{} holds no workload; pass --workload",
            path.display()
        ))
    })?;
    let mut w = Workload::from_toml(toml, &path.display().to_string())?;
    if let Some(f) = header.scale {
        w.scale(f)?;
    }
    Ok(w)
}

/// A kernel trace's operations: as replay input, as recorded, and its threads.
struct KernelOps {
    ops: Vec<ReplayOp>,
    events: Vec<Event>,
    threads: Vec<ThreadInfo>,
}

fn kernel_ops(path: &Path) -> Result<KernelOps, ReplayError> {
    let mut r = Reader::open(path)?;
    let mut ops = Vec::new();
    let mut events = Vec::new();
    while let Some(e) = r.next_event()? {
        if e.probe() != Some(Probe::Op) {
            continue;
        }
        let Some(kind) = OpKind::from_u32(e.aux) else {
            return Err(ReplayError::Input(format!(
                "{}: operation event with unknown kind {}",
                path.display(),
                e.aux
            )));
        };
        let bytes = e.name_bytes();
        let (p1, p2) = if e.has(flags::TWO_PATHS) {
            let mut parts = bytes.splitn(2, |b| *b == 0);
            let a = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let b = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            (a, Some(b))
        } else {
            (String::from_utf8_lossy(bytes).into_owned(), None)
        };
        let mut op = ReplayOp::new(e.tid, kind, p1).with_span(e.ts_begin, e.ts_end);
        op.path2 = p2;
        ops.push(op);
        events.push(e);
    }
    let threads = r.footer().map(|f| f.threads.clone()).unwrap_or_default();
    Ok(KernelOps {
        ops,
        events,
        threads,
    })
}

fn to_replay(op: &PlannedOp, tid: u32) -> ReplayOp {
    let mut r = ReplayOp::new(tid, op.kind, op.path.clone());
    r.path2 = op.path2.clone();
    r
}

/// Thread ids the model uses for a plan replay: workload thread `t` is tid `t + 1`.
fn plan_tid(thread: usize) -> u32 {
    thread as u32 + 1
}

/// Iterations run by a plan replay for threads that run "until the others finish".
pub const UNBOUNDED_ITERATIONS: u64 = 64;

/// Runs `w` on a model with `profile` and writes `out`.
pub fn replay_to_trace(
    w: &Workload,
    profile: Profile,
    source: Source<'_>,
    style: Style,
    out: &Path,
    kernel_release: &str,
) -> Result<ReplaySummary, ReplayError> {
    // In timestamp order unless threads were asked for; a plan has no timestamps to follow.
    let on_threads = style.threads || matches!(source, Source::Plan);
    let mut header = Header::new(Origin::Model);
    header.kernel_release = kernel_release.to_string();
    header.profile = Some(profile.name.to_string());
    header.workload = Some(w.name.clone());
    header.workload_toml = Some(w.source().to_string());
    header.seed = Some(w.seed);
    header.notes.insert(
        "replay".into(),
        if on_threads {
            "threads"
        } else {
            "timestamp order"
        }
        .into(),
    );
    header
        .notes
        .insert("delays".into(), style.delays.to_string());
    let sink = Arc::new(TraceSink {
        on: AtomicBool::new(false),
        writer: Mutex::new(Some(Writer::create(out, &header)?)),
        error: Mutex::new(None),
    });
    let mut config = DcacheConfig::new(profile, model_fs(w)).with_sink(sink.clone());
    if !on_threads {
        // The model's steps then take their timestamps from a logical clock that jumps to each
        // kernel operation's begin, so its probe events fall inside the kernel op's interval.
        config = config.with_logical_clock();
    }
    let dc = Dcache::new(config);

    let setup: Vec<ReplayOp> = w
        .setup_ops()
        .iter()
        .map(|op| to_replay(op, SETUP_THREAD))
        .collect();
    for (o, op) in replay(&dc, &setup, ReplayMode::Sequential)?
        .iter()
        .zip(&setup)
    {
        if o.result != 0 {
            return Err(ReplayError::Input(format!(
                "the model failed the workload's setup: {} {} returned {}",
                op.kind.name(),
                op.path,
                o.result
            )));
        }
    }
    sink.on.store(true, Ordering::Relaxed);

    let (ops, threads, kernel) = match source {
        Source::Plan => {
            let plan = w.expand(UNBOUNDED_ITERATIONS);
            let ops: Vec<ReplayOp> = plan
                .iter()
                .enumerate()
                .flat_map(|(t, list)| list.iter().map(move |op| to_replay(op, plan_tid(t))))
                .collect();
            let threads = w
                .threads
                .iter()
                .enumerate()
                .map(|(t, spec)| ThreadInfo {
                    name: spec.name.clone(),
                    tid: plan_tid(t),
                })
                .collect();
            (ops, threads, None)
        }
        Source::Against(path) => {
            let k = kernel_ops(path)?;
            (k.ops, k.threads, Some(k.events))
        }
    };
    let mode = match (&kernel, on_threads) {
        // At the kernel run's pace, so the ops that overlapped there overlap here.
        (Some(_), true) => ReplayMode::Paced,
        (None, _) => ReplayMode::Threads,
        (Some(_), false) => ReplayMode::Sequential,
    };
    let hook: Option<StepHook> = style.delays.then(|| {
        let h: StepHook = Arc::new(|step: Step| match step {
            // The reader's window between `__d_lookup_rcu` and its use of the inode: hold it
            // open for a while (a preempted reader in the kernel), so pruning can run into it.
            Step::LookupRcuReturned => {
                let until = std::time::Instant::now() + std::time::Duration::from_micros(50);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            Step::KillAfterUnhash | Step::ShrinkBeforeKill => std::thread::yield_now(),
        });
        h
    });
    let outcomes = replay_with_hook(&dc, &ops, mode, hook)?;
    sink.on.store(false, Ordering::Relaxed);
    drop(dc);

    let results_differ = kernel.map(|k| {
        outcomes
            .iter()
            .filter(|o| k.get(o.index).is_some_and(|e| e.result != o.result))
            .count() as u64
    });
    if let Some(err) = sink.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(err.into());
    }
    let writer = sink
        .writer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| ReplayError::Input("the model's trace writer is gone".into()))?;
    let footer = writer.finish(Footer {
        end: End::Finished,
        threads,
        ..Footer::default()
    })?;
    Ok(ReplaySummary {
        profile: profile.name.to_string(),
        workload: w.name.clone(),
        ops: outcomes.len() as u64,
        events: footer.events,
        results_differ,
        threads: on_threads,
        delays: style.delays,
    })
}

/// The profile for a kernel release, or the one named.
pub fn pick_profile(name: Option<&str>, release: &str) -> Result<Profile, ModelError> {
    match name {
        Some(n) => Profile::named(n),
        None => Profile::for_release(release),
    }
}

/// The workload named on the command line, or the one a kernel trace ran.
pub fn resolve_workload(
    name: Option<&str>,
    scale: Option<f64>,
    against: Option<&Path>,
) -> Result<(Workload, String), ReplayError> {
    match (name, against) {
        (_, Some(path)) => {
            let r = Reader::open(path)?;
            let w = workload_of(&r.header, path)?;
            if let Some(n) = name {
                if n != w.name && workload::builtin(n).is_some() {
                    return Err(ReplayError::Input(format!(
                        "{} recorded workload `{}`, not `{n}`; drop --workload to replay what it ran",
                        path.display(),
                        w.name
                    )));
                }
            }
            Ok((w, r.header.kernel_release.clone()))
        }
        (Some(n), None) => {
            let mut w = Workload::load(n)?;
            if let Some(f) = scale {
                w.scale(f)?;
            }
            Ok((w, String::new()))
        }
        (None, None) => Err(ReplayError::Input(
            "nothing to replay: pass --workload W or --against kernel.trace".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_replay_writes_a_model_trace_with_every_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("model.trace");
        let mut w = workload::builtin("unlink-stat")
            .expect("builtin exists")
            .expect("builtin parses");
        w.scale(0.02).expect("scale");
        let profile = Profile::named("linux-6.1").expect("profile");
        let s =
            replay_to_trace(&w, profile, Source::Plan, Style::default(), &out, "").expect("replay");
        let (h, events, f) = Reader::open(&out).expect("open").read_all().expect("read");
        assert_eq!(h.origin, Origin::Model);
        assert_eq!(h.profile.as_deref(), Some("linux-6.1"));
        let ops = events
            .iter()
            .filter(|e| e.probe() == Some(Probe::Op))
            .count() as u64;
        assert_eq!(ops, s.ops, "one op event per replayed op, setup excluded");
        assert!(events.iter().any(|e| e.probe() == Some(Probe::DLookupRcu)));
        assert_eq!(f.threads.len(), w.threads.len());
        assert!(f.complete());
    }

    #[test]
    fn replay_against_a_trace_uses_its_ops_and_compares_results() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let w = Workload::from_toml(
            r#"
name = "tiny"
filesystem = "tmpfs"
seed = 1
[[setup]]
op = "create"
path = "f1"
[[thread]]
name = "t"
iterations = 1
ops = [{ op = "stat", path = "f1" }]
"#,
            "test",
        )
        .expect("workload");
        let mut h = Header::new(Origin::Kernel);
        h.kernel_release = "6.1.0-test".into();
        h.workload_toml = Some(w.source().to_string());
        let mut wr = Writer::create(&kernel, &h).expect("create");
        for (i, (path, result)) in [("f1", 0), ("f2", -2), ("f1", -2)].iter().enumerate() {
            let mut e = Event::zeroed();
            e.probe = Probe::Op as u8;
            e.aux = OpKind::Stat as u32;
            e.tid = 7;
            e.ts_begin = 100 * (i as u64 + 1);
            e.ts_end = e.ts_begin + 50;
            e.result = *result;
            e.set_name(path.as_bytes());
            wr.push(&e).expect("push");
        }
        wr.finish(Footer::default()).expect("finish");

        let (w2, release) = resolve_workload(None, None, Some(&kernel)).expect("resolve");
        assert_eq!(release, "6.1.0-test");
        let profile = pick_profile(None, &release).expect("profile");
        assert_eq!(profile.name, "linux-6.1");
        let out = dir.path().join("model.trace");
        let s = replay_to_trace(
            &w2,
            profile,
            Source::Against(&kernel),
            Style::default(),
            &out,
            &release,
        )
        .expect("replay");
        assert_eq!(s.ops, 3);
        // The third stat of an existing file "returned ENOENT" in the made-up kernel trace.
        assert_eq!(s.results_differ, Some(1));
        let (_, events, _) = Reader::open(&out).expect("open").read_all().expect("read");
        let ops: Vec<&Event> = events
            .iter()
            .filter(|e| e.probe() == Some(Probe::Op))
            .collect();
        assert_eq!(ops.len(), 3);
        assert!(ops.iter().all(|e| e.tid == 7), "kernel tids are kept");
        assert_eq!(ops[1].ts_begin, 200, "kernel timestamps are kept");
        for e in events.iter().filter(|e| e.probe() != Some(Probe::Op)) {
            assert!(
                ops.iter()
                    .any(|op| op.ts_begin <= e.ts_begin && e.ts_end <= op.ts_end),
                "model probe event outside every kernel op's interval: {e:?}"
            );
        }
    }
}
