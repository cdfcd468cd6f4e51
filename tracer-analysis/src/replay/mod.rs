//! Replay: a workload on the model (`userspace-dcache`), written as a trace of the same schema
//! as a kernel recording. With a kernel trace, the model runs that trace's operations in the
//! order of their timestamps, so the two traces can be diffed operation by operation.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use tracer_common::{flags, Event, OpKind, Probe};
use userspace_dcache::{
    replay, Dcache, DcacheConfig, EventSink, FsKind, ModelError, Profile, ReplayMode, ReplayOp,
    Step, StepHook, Task,
};

use crate::{
    cache_line::hash_line,
    output::Durability,
    trace::{End, Footer, Header, Origin, Reader, Record, ThreadInfo, TraceError, Writer},
    workload::{self, PlannedOp, Workload, WorkloadError, SETUP_THREAD},
};

mod stream;

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
    #[error("{}: operations on {found} threads; a threaded replay runs at most {max} (drop --threads to replay in timestamp order)", path.display())]
    TooManyThreads {
        path: PathBuf,
        found: usize,
        max: usize,
    },
    #[error("{}: operation {index} starts {seconds:.0} s after the first; a paced replay follows at most {max} s (a damaged timestamp? drop --threads to replay in timestamp order)", path.display())]
    PaceSpan {
        path: PathBuf,
        index: usize,
        seconds: f64,
        max: u64,
    },
    #[error("{}: the header's `{field}`", path.display())]
    HeaderField {
        path: PathBuf,
        field: &'static str,
        #[source]
        source: Box<WorkloadError>,
    },
    #[error("cannot start a model thread")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
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
        if let Err(err) = w.push_all(events) {
            let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(err);
        }
    }
}

fn take_writer(sink: &TraceSink) -> Result<Writer, ReplayError> {
    sink.writer
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| ReplayError::Input("the model's trace writer is gone".into()))
}

/// Where the replay's operations come from.
#[derive(Clone, Copy)]
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

impl Style {
    /// Whether the replay runs on one model thread per workload thread: when asked, and always
    /// for a plan (it has no timestamps to follow).
    fn on_threads(self, source: Source<'_>) -> bool {
        self.threads || matches!(source, Source::Plan)
    }
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
    /// Against a kernel trace, replayed in timestamp order: ops placed where the kernel's own
    /// probe events show their effect (the others at their begin).
    pub placed_at_effect: Option<u64>,
    /// Against a kernel trace, replayed in timestamp order: events that arrived more than the
    /// reorder window ([`REORDER_WINDOW_NS`]) after later ones, and operations that arrived
    /// after a probe event inside them had been given to an earlier one of their thread (only
    /// when a thread's operations overlap). [`replay_to_trace`] then replays again with a
    /// window wide enough for all of them up to [`MAX_BEGIN_LAG_NS`] (`damaged_begins` are
    /// those past it), assigning events only as the window passes them, so the order stays
    /// exact.
    pub late_events: Option<u64>,
    /// Against a kernel trace in timestamp order: the reorder window (trace time) the model
    /// trace was written with.
    pub window_ns: Option<u64>,
    /// Against a kernel trace in timestamp order: events whose end lies more than
    /// [`MAX_END_LEAD_NS`] after both their begin and every end recorded before them, damaged
    /// stamps the window took as ending at the latest end recorded before them, or at their
    /// begins if later (its Op event in the model trace keeps the recorded end).
    pub damaged_ends: Option<u64>,
    /// Against a kernel trace in timestamp order: events that began more than
    /// [`MAX_BEGIN_LAG_NS`] before the latest end read when they arrived, likely damaged begin
    /// stamps. The second replay's window stops at that bound: they ran at the first chance
    /// it allowed, as recorded otherwise.
    pub damaged_begins: Option<u64>,
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
        w.scale(f).map_err(|source| ReplayError::HeaderField {
            path: path.to_path_buf(),
            field: "scale",
            source: Box::new(source),
        })?;
    }
    Ok(w)
}

/// A kernel trace's operation paths, each distinct one stored once: a trace repeats the
/// workload's names millions of times.
struct Paths {
    ids: foldhash::HashMap<Box<[u8]>, u32>,
    paths: Vec<String>,
    /// Each number's bytes as read, for [`Paths::recent`]'s check.
    raw: Vec<Box<[u8]>>,
    /// The number last given for bytes of a length and last eight bytes that fall in each
    /// slot, checked whole before use: hashing a path for the map cost about 100 instructions
    /// an operation (callgrind); a workload's few paths each keep a slot.
    recent: Box<[u32; RECENT]>,
}

const RECENT_BITS: u32 = 8;
const RECENT: usize = 1 << RECENT_BITS;

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            ids: foldhash::HashMap::default(),
            paths: Vec::new(),
            raw: Vec::new(),
            recent: Box::new([u32::MAX; RECENT]),
        }
    }
}

impl Paths {
    fn id(&mut self, bytes: &[u8]) -> u32 {
        let slot = Paths::slot(bytes);
        let id = self.recent[slot];
        if self
            .raw
            .get(id as usize)
            .is_some_and(|r| same_bytes(r, bytes))
        {
            return id;
        }
        let id = match self.ids.get(bytes) {
            Some(&id) => id,
            None => {
                let id = self.paths.len() as u32;
                self.paths.push(String::from_utf8_lossy(bytes).into_owned());
                self.raw.push(bytes.into());
                self.ids.insert(bytes.into(), id);
                id
            }
        };
        self.recent[slot] = id;
        id
    }

    /// `bytes`' slot in [`Paths::recent`], from its length and last eight bytes (where paths
    /// of a directory differ; a shorter path zero-padded).
    fn slot(bytes: &[u8]) -> usize {
        let tail: [u8; 8] = match bytes.last_chunk::<8>() {
            Some(t) => *t,
            None => {
                let mut t = [0; 8];
                t[..bytes.len()].copy_from_slice(bytes);
                t
            }
        };
        let key = u64::from_le_bytes(tail) ^ (bytes.len() as u64).rotate_left(32);
        hash_line(key, RECENT_BITS)
    }

    fn get(&self, id: u32) -> &str {
        &self.paths[id as usize]
    }

    /// The number of `bytes`, if it has one.
    fn find(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(bytes).copied()
    }
}

/// `a == b` for the short paths a workload names: up to 16 bytes, the lengths and then two
/// loads of each that overlap unless the length is twice their size, not a `bcmp` call of the
/// length (about 20 instructions an operation with the call, callgrind).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn at<const N: usize>(s: &[u8], i: usize) -> Option<&[u8; N]> {
        s.get(i..)?.first_chunk::<N>()
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => at::<4>(a, 0) == at::<4>(b, 0) && at::<4>(a, n - 4) == at::<4>(b, n - 4),
        8..=16 => at::<8>(a, 0) == at::<8>(b, 0) && at::<8>(a, n - 8) == at::<8>(b, n - 8),
        _ => a == b,
    }
}

/// A kernel probe event as the replay keeps it until it is assigned to an operation: what
/// [`effect`] reads, its name by number (32 bytes; the event is 152, and a reorder window
/// holds millions of them).
#[derive(Clone, Copy, Debug)]
struct ProbeEvent {
    ts_begin: u64,
    ts_end: u64,
    tid: u32,
    /// Its name as recorded (cut at the event's capacity), numbered in the replay's names; a
    /// lookup's is not kept ([`effect`] does not read it, and interning it was a tenth of a
    /// replay's work).
    name: Option<u32>,
    probe: Probe,
    /// Its `inode_end` is not NULL.
    positive: bool,
}

impl ProbeEvent {
    /// The event of `rec`, read where the trace reader holds it.
    fn new(rec: &Record<'_>, probe: Probe, names: &mut Paths) -> ProbeEvent {
        ProbeEvent {
            ts_begin: rec.ts_begin(),
            ts_end: rec.ts_end(),
            tid: rec.tid(),
            name: (!probe.is_lookup()).then(|| names.id(rec.name_bytes())),
            probe,
            positive: rec.inode_end() != 0,
        }
    }
}

/// One operation of a kernel trace, as the replay keeps it (56 bytes, paths by number): a
/// replay in timestamp order holds those of one reorder window, a paced one all of them.
#[derive(Clone, Copy, Debug)]
struct KernelOp {
    tid: u32,
    kind: OpKind,
    path: u32,
    path2: Option<u32>,
    ts_begin: u64,
    ts_end: u64,
    /// What the kernel's own probe events show of the op taking effect (see [`effect`]),
    /// merged over those assigned to it so far.
    effect: Option<Effect>,
    /// What it returned in the kernel.
    result: i32,
}

impl KernelOp {
    /// Where a replay in timestamp order runs it: its effect, kept inside its span (so a
    /// thread's ops keep their program order), else its begin.
    fn placed_at(&self) -> u64 {
        match self.effect.map(Effect::at) {
            Some(t) if self.ts_begin <= self.ts_end => t.clamp(self.ts_begin, self.ts_end),
            _ => self.ts_begin,
        }
    }
}

/// A kernel trace's operations, their paths, and its threads.
struct KernelOps {
    ops: Vec<KernelOp>,
    paths: Paths,
    threads: Vec<ThreadInfo>,
}

/// What a probe event inside an operation says about when the operation took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// A reader's lookup: the operation saw the dcache as it was when the lookup returned;
    /// the last one decides.
    Read(u64),
    /// The entry of a writer's wrapper on its own dentry (`d_delete`, `d_instantiate`,
    /// `__dentry_kill`, ...): the change happens somewhere inside it, which may be long
    /// (an unlink preempted for 2.8 ms inside `d_delete`).
    Enter(u64),
    /// A writer's change itself (unhash, inode clear, move, the inner instantiate): the
    /// operation's effect is visible from the first one on.
    Write(u64),
}

impl Effect {
    /// Its time in the trace.
    fn at(self) -> u64 {
        match self {
            Effect::Read(t) | Effect::Enter(t) | Effect::Write(t) => t,
        }
    }

    /// Merges two findings of one operation: a change outranks a wrapper's entry, which
    /// outranks the lookups around it; the first change, the last lookup.
    fn merge(self, other: Effect) -> Effect {
        use Effect::{Enter, Read, Write};
        match (self, other) {
            (Write(a), Write(b)) => Write(a.min(b)),
            (Enter(a), Enter(b)) => Enter(a.min(b)),
            (Read(a), Read(b)) => Read(a.max(b)),
            (Write(t), _) | (_, Write(t)) => Write(t),
            (Enter(t), _) | (_, Enter(t)) => Enter(t),
        }
    }
}

/// The last component of an operation's path: the dentry a writer changes.
fn last_component(path: &str) -> &[u8] {
    path.rsplit('/').next().unwrap_or(path).as_bytes()
}

/// What a lookup of an operation of `kind` ending at `end` shows: the operation saw the
/// dcache as it was then; the shrinker's are no point of its effect.
fn lookup_effect(kind: OpKind, end: u64) -> Option<Effect> {
    (kind != OpKind::DropCaches).then_some(Effect::Read(end))
}

/// When `e` (an event of `op`'s thread inside its span) shows `op` taking effect, if it does.
/// Readers: their lookups. Writers: the probes of their own change on the dentry they name —
/// an rmdir first kills its children's dentries, and only its `d_delete` of the directory
/// makes the name go away, often milliseconds later. A writer that changed nothing (a create
/// that met an existing name: EEXIST) is an observation: its lookups place it, as a reader's.
/// `paths` numbers the operations' paths, `names` the events' names.
fn effect(op: &KernelOp, paths: &Paths, names: &Paths, e: &ProbeEvent) -> Option<Effect> {
    let probe = e.probe;
    // The event names the op's dentry: its name is the number of a path's last component.
    let named = |p: u32| e.name.is_some() && names.find(last_component(paths.get(p))) == e.name;
    let names_its_dentry = || named(op.path) || op.path2.is_some_and(named);
    if probe.is_lookup() {
        return lookup_effect(op.kind, e.ts_end);
    }
    match op.kind {
        OpKind::Stat | OpKind::Open | OpKind::Readdir => None,
        OpKind::Create | OpKind::Mkdir => {
            let at = match probe {
                Probe::DInstantiateInner => Effect::Write(e.ts_begin),
                Probe::DAddInner if e.positive => Effect::Write(e.ts_begin),
                Probe::DInstantiate | Probe::DInstantiateNew => Effect::Enter(e.ts_begin),
                // d_add(dentry, NULL) from the lookup hashes a negative dentry first.
                Probe::DAdd | Probe::DSpliceAlias if e.positive => Effect::Enter(e.ts_begin),
                _ => return None,
            };
            names_its_dentry().then_some(at)
        }
        OpKind::Unlink | OpKind::Rmdir => {
            let at = match probe {
                Probe::DDrop | Probe::DDropInner | Probe::DentryUnlinkInode | Probe::DentryIput => {
                    Effect::Write(e.ts_begin)
                }
                Probe::DDelete
                | Probe::DDropLocked
                | Probe::DentryKill
                | Probe::DentryKillLocked
                | Probe::DInvalidate => Effect::Enter(e.ts_begin),
                _ => return None,
            };
            names_its_dentry().then_some(at)
        }
        OpKind::Rename | OpKind::Exchange => (matches!(probe, Probe::DMove | Probe::DMoveTarget)
            && names_its_dentry())
        .then_some(Effect::Write(e.ts_begin)),
        // The shrinker's kills spread over the whole call: no one point is its effect.
        OpKind::DropCaches => None,
    }
}

/// The operation the Op event `rec` of the trace at `path` records; `index`: its place among
/// the trace's operations.
fn parse_op(
    path: &Path,
    rec: &Record<'_>,
    index: usize,
    paths: &mut Paths,
) -> Result<KernelOp, ReplayError> {
    let Some(kind) = OpKind::from_u32(rec.aux()) else {
        return Err(ReplayError::Input(format!(
            "{}: operation event with unknown kind {}",
            path.display(),
            rec.aux()
        )));
    };
    let bytes = rec.name_bytes();
    let (p1, p2) = if rec.flags() & flags::TWO_PATHS != 0 {
        let mut parts = bytes.splitn(2, |b| *b == 0);
        let a = paths.id(parts.next().unwrap_or_default());
        let b = paths.id(parts.next().unwrap_or_default());
        (a, Some(b))
    } else {
        (paths.id(bytes), None)
    };
    if kind == OpKind::Rename && p2.is_none() {
        return Err(ReplayError::Input(format!(
            "{}: operation {index} is a rename without its new path",
            path.display(),
        )));
    }
    Ok(KernelOp {
        tid: rec.tid(),
        kind,
        path: p1,
        path2: p2,
        ts_begin: rec.ts_begin(),
        ts_end: rec.ts_end(),
        effect: None,
        result: rec.result(),
    })
}

/// Every operation of a kernel trace (a paced replay schedules them all before it starts).
fn kernel_ops(path: &Path) -> Result<KernelOps, ReplayError> {
    let mut r = Reader::open(path)?;
    let mut ops = Vec::new();
    let mut paths = Paths::default();
    while let Some(records) = r.next_records()? {
        for rec in records.filter(|rec| rec.probe() == Probe::Op as u8) {
            ops.push(parse_op(path, &rec, ops.len(), &mut paths)?);
        }
    }
    let threads = r.footer().map(|f| f.threads.clone()).unwrap_or_default();
    Ok(KernelOps {
        ops,
        paths,
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

/// How far out of time order (trace time) a replay in timestamp order expects a kernel trace's
/// events: the diff's reorder window. It bounds the replay's memory.
pub const REORDER_WINDOW_NS: u64 = 1_000_000_000;

/// How far past both its begin and every end recorded before it an event's end may be before
/// a replay in timestamp order takes it as damaged (`replay/stream.rs`): a thousand times what
/// the 31 traces of CI's VMs show (51 ms at most, an operation ending after a quiet spell),
/// and it bounds the trace time the replay holds for such an end (the whole trace before, for
/// an end at `u64::MAX`).
pub const MAX_END_LEAD_NS: u64 = 60_000_000_000;

/// The widest window (trace time) [`replay_to_trace`]'s second replay holds: an event that
/// begins further before the latest end read when it arrives is taken as a damaged begin
/// (stamped 0, or minutes early) and runs at the first chance. The same bound as a damaged
/// end's, for the same reasons: honest events lag 141 ms at most in the 31 traces of CI's
/// VMs (only an operation lasting more than a minute would be taken for damage), and it bounds
/// the trace time the replay holds (one begin stamped 0 made the window, and the memory, the
/// whole trace).
pub const MAX_BEGIN_LAG_NS: u64 = MAX_END_LEAD_NS;

/// The window of [`replay_to_trace`]'s second replay: above the largest lag the first one saw,
/// so no event is late, up to [`MAX_BEGIN_LAG_NS`].
fn exact_window(max_lag: u64) -> u64 {
    max_lag.saturating_add(1).min(MAX_BEGIN_LAG_NS)
}

/// Iterations run by a plan replay for threads that run "until the others finish".
pub const UNBOUNDED_ITERATIONS: u64 = 64;

/// Model threads a replay runs at most: one per workload thread, or per kernel thread with
/// `--threads` (a workload has at most [`workload::limits::MAX_THREADS`]).
pub const MAX_REPLAY_THREADS: usize = workload::limits::MAX_THREADS as usize;

/// How far past a kernel trace's first operation a paced replay follows its timestamps: a
/// recording that long is far beyond what the VM runs, a timestamp beyond it is damage.
pub const MAX_PACED_SPAN: Duration = Duration::from_secs(3600);

fn task<'d>(dc: &'d Dcache, tid: u32, hook: &Option<StepHook>) -> Task<'d> {
    match hook {
        Some(h) => dc.task(tid).with_hook(h.clone()),
        None => dc.task(tid),
    }
}

/// Joins scoped threads, then reports a failed spawn (after the others have run).
fn join_all<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, T>>,
    spawn_error: Option<std::io::Error>,
) -> Result<Vec<T>, ReplayError> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.join().map_err(|_| ModelError::ThreadPanicked)?);
    }
    match spawn_error {
        Some(source) => Err(ReplayError::Spawn { source }),
        None => Ok(out),
    }
}

/// The workload's own plan, one model thread per workload thread, each drawing its operations
/// from the workload's generator as it goes: memory does not grow with the iteration count.
/// Returns the operations run.
fn run_plan(dc: &Dcache, w: &Workload, hook: Option<StepHook>) -> Result<u64, ReplayError> {
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut spawn_error = None;
        for (t, ops) in w.all_thread_ops().enumerate() {
            let spec = ops.spec();
            let cap = spec
                .iterations
                .unwrap_or(UNBOUNDED_ITERATIONS)
                .saturating_mul(spec.ops.len() as u64);
            let hook = &hook;
            let spawned = std::thread::Builder::new()
                .name(format!("replay-{t}"))
                .spawn_scoped(s, move || {
                    let task = task(dc, plan_tid(t), hook);
                    let mut n = 0u64;
                    for op in ops.take(usize::try_from(cap).unwrap_or(usize::MAX)) {
                        // The result is in the op's event; a plan has no kernel's to compare.
                        let _ = task.run(op.kind, &op.path, op.path2.as_deref(), None);
                        n += 1;
                    }
                    n
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
        Ok(join_all(handles, spawn_error)?.into_iter().sum())
    })
}

/// A kernel trace's operations on one model thread per kernel thread, each op started at its
/// kernel start time relative to the trace's first op. Returns each op's result, in order.
fn run_paced(
    dc: &Dcache,
    k: &KernelOps,
    hook: Option<StepHook>,
    path: &Path,
) -> Result<Vec<i32>, ReplayError> {
    let ops = &k.ops;
    let first = ops.iter().map(|op| op.ts_begin).min().unwrap_or(0);
    let mut per_tid: BTreeMap<u32, Vec<(usize, Duration)>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let due = Duration::from_nanos(op.ts_begin - first);
        if due > MAX_PACED_SPAN {
            return Err(ReplayError::PaceSpan {
                path: path.to_path_buf(),
                index: i,
                seconds: due.as_secs_f64(),
                max: MAX_PACED_SPAN.as_secs(),
            });
        }
        per_tid.entry(op.tid).or_default().push((i, due));
    }
    if per_tid.len() > MAX_REPLAY_THREADS {
        return Err(ReplayError::TooManyThreads {
            path: path.to_path_buf(),
            found: per_tid.len(),
            max: MAX_REPLAY_THREADS,
        });
    }
    let start = Instant::now();
    let per_thread = std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut spawn_error = None;
        for (tid, list) in per_tid {
            let hook = &hook;
            let spawned = std::thread::Builder::new()
                .name(format!("replay-{tid}"))
                .spawn_scoped(s, move || {
                    let task = task(dc, tid, hook);
                    list.into_iter()
                        .map(|(i, due)| {
                            if let Some(wait) = due.checked_sub(start.elapsed()) {
                                std::thread::sleep(wait);
                            }
                            let op = &ops[i];
                            let path2 = op.path2.map(|p| k.paths.get(p));
                            let r = task.run(op.kind, k.paths.get(op.path), path2, None);
                            (i, r.map_or_else(|e| -e.code(), |()| 0))
                        })
                        .collect::<Vec<_>>()
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
        join_all(handles, spawn_error)
    })?;
    let mut results = vec![0; ops.len()];
    for (i, r) in per_thread.into_iter().flatten() {
        results[i] = r;
    }
    Ok(results)
}

/// Runs `w` on a model with `profile` and writes `out` (it appears whole when complete). A
/// replay in timestamp order is not synced to the disk ([`Durability::Recreatable`]: the same
/// replay of the kernel trace makes it again, event for event); one on threads is
/// ([`Durability::Synced`]): its interleavings are the run's own and may never come again.
///
/// Against a kernel trace in timestamp order the replay streams; when events came later than
/// the reorder window (an operation longer than it, a stalled CPU buffer) the streamed order
/// may not be the kernel's, so it replays again with a window above the largest lag: the model
/// trace is the exact order's. That window stops at [`MAX_BEGIN_LAG_NS`]: events later than it
/// (damaged begins, likely) run at the first chance and are counted
/// ([`ReplaySummary::damaged_begins`]), and the memory stays bounded.
pub fn replay_to_trace(
    w: &Workload,
    profile: Profile,
    source: Source<'_>,
    style: Style,
    out: &Path,
    kernel_release: &str,
) -> Result<ReplaySummary, ReplayError> {
    let durability = if style.on_threads(source) {
        Durability::Synced
    } else {
        Durability::Recreatable
    };
    let once = |ns, if_late, early| {
        let window = Window { ns, if_late, early };
        replay_into(w, profile, source, style, kernel_release, window, |h| {
            Writer::create_with(out, h, durability)
        })
    };
    let (mut streamed, max_lag) = once(REORDER_WINDOW_NS, IfLate::Discard, true)?;
    if streamed.late_events.is_none_or(|n| n == 0) {
        // No event lagged more than the reorder window, far below the bound.
        streamed.damaged_begins = streamed.late_events;
        return Ok(streamed);
    }
    // The same events arrive in the same order: with a window above the largest lag seen,
    // none is late, and the memory is that window's. Events are assigned as the window passes
    // them, which no operation arriving later can overturn. Those late with the bound lagged
    // more than it.
    let (mut exact, _) = once(exact_window(max_lag), IfLate::Keep, false)?;
    exact.damaged_begins = exact.late_events;
    exact.late_events = streamed.late_events;
    Ok(exact)
}

/// How a replay in timestamp order streams: its reorder window (trace time), and what it
/// does with its output when events came later than that.
#[derive(Clone, Copy)]
struct Window {
    ns: u64,
    if_late: IfLate,
    /// Probe events are assigned as soon as their operation is known (`replay/stream.rs`).
    early: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum IfLate {
    /// Writes it: the best order the window allowed.
    Keep,
    /// Leaves the output as it was (the writer is dropped unfinished), for a second replay.
    Discard,
}

/// [`replay_to_trace`] into `out` written in place, for a reader consuming it as it grows (a
/// named pipe: the replay bench's traces too large for the disk).
pub fn replay_to_stream(
    w: &Workload,
    profile: Profile,
    source: Source<'_>,
    style: Style,
    out: &Path,
    kernel_release: &str,
) -> Result<ReplaySummary, ReplayError> {
    replay_into(
        w,
        profile,
        source,
        style,
        kernel_release,
        Window {
            ns: REORDER_WINDOW_NS,
            if_late: IfLate::Keep,
            early: true,
        },
        |h| Writer::create_scratch(out, h),
    )
    .map(|(summary, _)| summary)
}

fn replay_into(
    w: &Workload,
    profile: Profile,
    source: Source<'_>,
    style: Style,
    kernel_release: &str,
    window: Window,

    writer: impl FnOnce(&Header) -> Result<Writer, TraceError>,
) -> Result<(ReplaySummary, u64), ReplayError> {
    let on_threads = style.on_threads(source);
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
        writer: Mutex::new(Some(writer(&header)?)),
        error: Mutex::new(None),
    });
    let mut config = DcacheConfig::new(profile, model_fs(w)).with_sink(sink.clone());
    if !on_threads {
        // The model's steps then take their timestamps from a logical clock that jumps to each
        // kernel operation's begin, so its probe events fall inside the kernel op's interval;
        // the whole replay runs on this thread.
        config = config.with_one_thread_clock();
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

    let hook: Option<StepHook> = style.delays.then(|| {
        let h: StepHook = Arc::new(|step: Step| match step {
            // The reader's window between `__d_lookup_rcu` and its use of the inode: hold it
            // open for a while (a preempted reader in the kernel), so pruning can run into it.
            Step::LookupRcuReturned => {
                let until = Instant::now() + Duration::from_micros(50);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            Step::KillAfterUnhash | Step::ShrinkBeforeKill => std::thread::yield_now(),
            // The kernel's window there is a spin on the parent's lock, not a preemption.
            Step::ShrinkRelock => {}
        });
        h
    });
    // With a kernel trace in timestamp order, what the stream did besides.
    let (ops, threads, results_differ, streamed) = match source {
        Source::Plan => {
            let threads = w
                .threads
                .iter()
                .enumerate()
                .map(|(t, spec)| ThreadInfo {
                    name: spec.name.clone(),
                    tid: plan_tid(t),
                })
                .collect();
            (run_plan(&dc, w, hook)?, threads, None, None)
        }
        Source::Against(path) if on_threads => {
            let k = kernel_ops(path)?;
            let differ = run_paced(&dc, &k, hook, path)?
                .iter()
                .zip(&k.ops)
                .filter(|(model, op)| **model != op.result)
                .count() as u64;
            (k.ops.len() as u64, k.threads, Some(differ), None)
        }
        Source::Against(path) => {
            // The replay writes each operation's events itself, in its order (its tasks keep
            // them for it): no lock per operation.
            let mut out = take_writer(&sink)?;
            let o = stream::run_sequential(&dc, path, &hook, &mut out, window.ns, window.early);
            *sink.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
            let mut o = o?;
            let threads = std::mem::take(&mut o.threads);
            (o.ops, threads, Some(o.differ), Some(o))
        }
    };
    sink.on.store(false, Ordering::Relaxed);
    drop(dc);

    if let Some(err) = sink.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(err.into());
    }
    let writer = take_writer(&sink)?;
    let mut summary = ReplaySummary {
        profile: profile.name.to_string(),
        workload: w.name.clone(),
        ops,
        events: 0,
        results_differ,
        placed_at_effect: streamed.as_ref().map(|o| o.placed),
        late_events: streamed.as_ref().map(|o| o.late),
        damaged_ends: streamed.as_ref().map(|o| o.damaged_ends),
        // Known only to `replay_to_trace`.
        damaged_begins: None,
        window_ns: (!on_threads).then_some(window.ns),
        threads: on_threads,
        delays: style.delays,
    };
    let max_lag = streamed.map_or(0, |o| o.max_lag);
    if window.if_late == IfLate::Discard && summary.late_events.is_some_and(|n| n > 0) {
        drop(writer);
        return Ok((summary, max_lag));
    }
    let footer = writer.finish(Footer {
        end: End::Finished,
        threads,
        ..Footer::default()
    })?;
    summary.events = footer.events;
    Ok((summary, max_lag))
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
pub(crate) mod tests {
    use super::*;

    /// Paths get their number in the order first seen, whatever the slots remember: paths
    /// sharing a length and last eight bytes (one slot), short ones, the empty one, asked for
    /// again in turns.
    #[test]
    fn a_path_s_number_is_its_first_sighting_s() {
        let mut all: Vec<Vec<u8>> = vec![Vec::new(), b"a".to_vec(), b"ab".to_vec()];
        for d in 0..40u8 {
            all.push([&[b'a' + d % 26, b'/'][..], b"same-end"].concat());
            all.push([&[b'd', d][..], b"/file-12"].concat());
        }
        let mut rnd = crate::test_rng::xorshift(5u64);
        let (mut paths, mut first) = (Paths::default(), Vec::<Vec<u8>>::new());
        for _ in 0..20_000 {
            let p = &all[rnd(all.len() as u64) as usize];
            let want = match first.iter().position(|f| f == p) {
                Some(k) => k,
                None => {
                    first.push(p.clone());
                    first.len() - 1
                }
            };
            let id = paths.id(p);
            assert_eq!(id as usize, want, "{:?}", String::from_utf8_lossy(p));
            assert_eq!(paths.get(id).as_bytes(), &p[..]);
        }
    }

    /// `same_bytes` is `==`: random byte strings of every length to past the short cases,
    /// against themselves, against a copy with one byte changed at each place, and against
    /// strings one byte shorter or longer.
    #[test]
    fn same_bytes_is_slice_equality() {
        let mut rnd = crate::test_rng::xorshift(11u64);
        for n in 0..=40usize {
            for _ in 0..4 {
                let a: Vec<u8> = (0..n).map(|_| rnd(256) as u8).collect();
                assert!(same_bytes(&a, &a.clone()), "{n} bytes");
                for i in 0..n {
                    let mut b = a.clone();
                    b[i] ^= 1 << rnd(8);
                    assert!(!same_bytes(&a, &b), "{n} bytes, changed at {i}");
                }
                let mut longer = a.clone();
                longer.push(rnd(256) as u8);
                assert!(!same_bytes(&a, &longer) && !same_bytes(&longer, &a));
                if let Some((_, shorter)) = a.split_last() {
                    assert!(!same_bytes(&a, shorter) && !same_bytes(shorter, &a));
                }
            }
        }
    }

    #[test]
    fn plan_replay_writes_a_model_trace_with_every_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("model.trace");
        let mut w = workload::builtin("unlink-stat")
            .expect("builtin exists")
            .expect("builtin parses");
        w.scale(0.02).expect("scale");
        let profile = Profile::named("linux-6.1").expect("profile");
        let syncs = || crate::output::tests::SYNCS.with(|n| n.get());
        let before = syncs();
        let s =
            replay_to_trace(&w, profile, Source::Plan, Style::default(), &out, "").expect("replay");
        // A plan runs on threads: its interleavings are its own, so its trace is synced.
        assert_eq!(
            syncs(),
            before + 1,
            "a plan replay's model trace was not synced"
        );
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

    /// Every Debian-era release replays on its generation's profile, from the trace header's
    /// release alone: 5.10 (bullseye), 6.1 (bookworm), 6.12 (trixie) and 7.x.
    #[test]
    fn each_release_replays_on_its_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = workload::builtin("unlink-stat")
            .expect("builtin exists")
            .expect("builtin parses");
        w.scale(0.01).expect("scale");
        for (release, name) in [
            ("5.10.0-30-amd64", "linux-5.7"),
            ("6.1.0-27-amd64", "linux-6.1"),
            ("6.12.9-amd64", "linux-6.8"),
            ("7.0.0-1-amd64", "linux-6.19"),
            ("7.3.4+deb13-amd64", "linux-7.2"),
        ] {
            let profile = pick_profile(None, release).expect("profile");
            assert_eq!(profile.name, name, "{release}");
            let out = dir.path().join(format!("{release}.trace"));
            replay_to_trace(&w, profile, Source::Plan, Style::default(), &out, release)
                .expect("replay");
            let (h, events, f) = Reader::open(&out).expect("open").read_all().expect("read");
            assert_eq!(h.profile.as_deref(), Some(name), "{release}");
            assert!(f.complete());
            assert!(events.iter().any(|e| e.probe() == Some(Probe::DLookupRcu)));
        }
    }

    /// The builtin unlink-stat workload, and a kernel trace of it holding `events` at `kernel`.
    fn unlink_stat_trace(kernel: &Path, events: &[Event]) -> Workload {
        let w = workload::builtin("unlink-stat")
            .expect("builtin exists")
            .expect("builtin parses");
        kernel_trace_of(kernel, w.source(), events);
        w
    }

    /// A kernel trace of release "6.1.0-test" recording the workload `toml` with `events`.
    fn kernel_trace_of(path: &Path, toml: &str, events: &[Event]) {
        let w = Workload::from_toml(toml, "test").expect("workload");
        let mut h = Header::new(Origin::Kernel);
        h.kernel_release = "6.1.0-test".into();
        h.workload_toml = Some(w.source().to_string());
        let mut wr = Writer::create(path, &h).expect("create");
        for e in events {
            wr.push(e).expect("push");
        }
        wr.finish(Footer::default()).expect("finish");
    }

    /// Operations and probe events are read where the trace's reader holds them (records, not
    /// decoded events): what the replay keeps of each is what the event holds, across chunk
    /// edges, for two-path names and names cut at the event's capacity.
    #[test]
    fn events_read_in_place_give_what_the_events_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let long = "d".repeat(40);
        let events: Vec<Event> = (0..10_000u64)
            .map(|i| {
                let mut e = Event::zeroed();
                e.tid = 1 + (i % 7) as u32;
                e.ts_begin = 1_000 + i * 100;
                e.ts_end = e.ts_begin + 50 + i % 13;
                e.result = -(i as i32 % 3);
                e.inode_end = i % 2;
                if i % 3 == 0 {
                    e.probe = Probe::DDelete as u8;
                    e.set_name(format!("n{}", i % 11).as_bytes());
                } else {
                    e.probe = Probe::Op as u8;
                    e.aux = OpKind::Rename as u32;
                    e.flags |= flags::TWO_PATHS;
                    // 82 bytes: the second path is cut at the event's 64.
                    e.set_name(format!("{long}/a{i}\0{long}/b{i}").as_bytes());
                }
                e
            })
            .collect();
        unlink_stat_trace(&kernel, &events);
        let k = kernel_ops(&kernel).expect("read the operations");
        let ops: Vec<&Event> = events
            .iter()
            .filter(|e| e.probe() == Some(Probe::Op))
            .collect();
        assert_eq!(k.ops.len(), ops.len());
        for (op, e) in k.ops.iter().zip(&ops) {
            let mut parts = e.name_bytes().splitn(2, |b| *b == 0);
            let (a, b) = (parts.next(), parts.next());
            assert_eq!(Some(k.paths.get(op.path).as_bytes()), a);
            assert_eq!(op.path2.map(|p| k.paths.get(p).as_bytes()), b);
            assert_eq!(
                (op.tid, op.kind, op.ts_begin, op.ts_end, op.result),
                (e.tid, OpKind::Rename, e.ts_begin, e.ts_end, e.result)
            );
        }
        let mut r = Reader::open(&kernel).expect("open");
        let mut names = Paths::default();
        let mut seen = 0;
        while let Some(records) = r.next_records().expect("records") {
            for rec in records {
                let e = &events[seen];
                seen += 1;
                let Some(probe) = e.probe().filter(|&p| p != Probe::Op) else {
                    continue;
                };
                let pe = ProbeEvent::new(&rec, probe, &mut names);
                assert_eq!(
                    (pe.ts_begin, pe.ts_end, pe.tid, pe.positive, pe.probe),
                    (e.ts_begin, e.ts_end, e.tid, e.inode_end != 0, probe)
                );
                assert_eq!(
                    pe.name.map(|n| names.get(n).as_bytes()),
                    Some(e.name_bytes())
                );
            }
        }
        assert_eq!(seen, events.len());
    }

    /// `tracer replay --against kernel` on the profile of the trace's release.
    fn replay_against(kernel: &Path, out: &Path, style: Style) -> ReplaySummary {
        let (w, release) = resolve_workload(None, None, Some(kernel)).expect("resolve");
        assert_eq!(release, "6.1.0-test");
        let profile = pick_profile(None, &release).expect("profile");
        assert_eq!(profile.name, "linux-6.1");
        replay_to_trace(&w, profile, Source::Against(kernel), style, out, &release).expect("replay")
    }

    #[test]
    fn replay_against_a_trace_uses_its_ops_and_compares_results() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let mut ops = Vec::new();
        for (i, (path, result)) in [("f1", 0), ("f2", -2), ("f1", -2)].iter().enumerate() {
            let mut e = Event::zeroed();
            e.probe = Probe::Op as u8;
            e.aux = OpKind::Stat as u32;
            e.tid = 7;
            e.ts_begin = 100 * (i as u64 + 1);
            e.ts_end = e.ts_begin + 50;
            e.result = *result;
            e.set_name(path.as_bytes());
            ops.push(e);
        }
        kernel_trace_of(
            &kernel,
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
            &ops,
        );
        // The kernel trace cannot be made again: synced. The model trace can (from it): the
        // replay leaves its writeback to the kernel.
        let syncs = || crate::output::tests::SYNCS.with(|n| n.get());
        assert_eq!(syncs(), 1, "the kernel trace was not synced");
        let out = dir.path().join("model.trace");
        let s = replay_against(&kernel, &out, Style::default());
        assert_eq!(syncs(), 1, "the model trace was synced");
        // On threads the same kernel trace replays in an interleaving of the run's own.
        let threaded = dir.path().join("threaded.trace");
        let style = Style {
            threads: true,
            delays: false,
        };
        replay_against(&kernel, &threaded, style);
        assert_eq!(syncs(), 2, "a threaded replay's model trace was not synced");
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

    /// The issue's case: an rmdir that removed its directory at the end of a long span, and
    /// stats inside that span that found it. Placed at the rmdir's begin, or at the entry of
    /// its `d_delete` (preempted inside), the model's stats failed; placed at the clear of the
    /// directory's inode, they agree. Events of another name (the child's kill) and of another
    /// thread do not move the rmdir.
    #[test]
    fn replay_against_a_trace_places_writers_at_their_kernel_effect() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let event = |probe: Probe, tid: u32, b: u64, e: u64, name: &str| {
            let mut ev = Event::zeroed();
            ev.probe = probe as u8;
            ev.tid = tid;
            ev.ts_begin = b;
            ev.ts_end = e;
            ev.set_name(name.as_bytes());
            ev
        };
        let op = |kind: OpKind, tid: u32, b: u64, e: u64, path: &str, result: i32| {
            let mut ev = event(Probe::Op, tid, b, e, path);
            ev.aux = kind as u32;
            ev.result = result;
            ev
        };
        let events = [
            event(Probe::DentryKill, 1, 1_000, 1_100, "f"),
            // Another thread's event inside the rmdir's span names the directory too.
            event(Probe::DDelete, 9, 2_000, 2_100, "d"),
            event(Probe::DLookupRcu, 2, 2_010, 2_020, "d"),
            op(OpKind::Stat, 2, 2_000, 2_500, "d", 0),
            // d_delete entered at 4 000, preempted; the inode is cleared at 4 700.
            event(Probe::DDelete, 1, 4_000, 4_900, "d"),
            event(Probe::DentryUnlinkInode, 1, 4_700, 4_750, "d"),
            event(Probe::DLookupRcu, 3, 4_210, 4_220, "d"),
            op(OpKind::Stat, 3, 4_200, 4_300, "d", 0),
            op(OpKind::Rmdir, 1, 100, 5_000, "d", 0),
            event(Probe::DLookupRcu, 2, 5_100, 5_110, "d"),
            op(OpKind::Stat, 2, 5_050, 5_200, "d", -2),
        ];
        kernel_trace_of(
            &kernel,
            r#"
name = "tiny-rmdir"
filesystem = "tmpfs"
seed = 1
[[setup]]
op = "mkdir"
path = "d"
[[thread]]
name = "t"
iterations = 1
ops = [{ op = "stat", path = "d" }]
"#,
            &events,
        );
        let out = dir.path().join("model.trace");
        let s = replay_against(&kernel, &out, Style::default());
        assert_eq!(s.ops, 4);
        assert_eq!(s.placed_at_effect, Some(4));
        assert_eq!(s.results_differ, Some(0));
    }

    /// The first `n` operations of `w`'s plan as Op events of a kernel trace, its threads
    /// taking turns, one begun every microsecond; every seventh lasts 20 µs, the others 0.6.
    fn planned_op_events(w: &Workload, n: usize) -> Vec<Event> {
        let mut threads: Vec<_> = w.all_thread_ops().collect();
        let mut out = Vec::new();
        while out.len() < n {
            for t in &mut threads {
                let op = t.next().expect("the plan runs on");
                let mut e = Event::zeroed();
                e.probe = Probe::Op as u8;
                e.aux = op.kind as u32;
                e.tid = 1000 + op.thread;
                e.ts_begin = 1_000_000 + out.len() as u64 * 1000;
                e.ts_end = e.ts_begin + if out.len() % 7 == 3 { 20_000 } else { 600 };
                if op.path2.is_some() {
                    e.flags |= flags::TWO_PATHS;
                }
                e.set_name(&op.event_name());
                out.push(e);
            }
        }
        out
    }

    /// A replay in timestamp order over a window of 50 µs, assigning probe events early, writes
    /// the model trace a replay holding the whole trace (assigning them at its end) writes.
    /// The input has probe events inside each op's span (a
    /// model trace of the workload: the ops are placed at their effect), long ops overlapping
    /// others, ops written at their end as the recorder does, and is out of order within the
    /// window (every 8 events reversed); it is 60 windows long.
    #[test]
    fn a_streamed_replay_writes_what_a_replay_of_the_whole_trace_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["unlink-stat", "rename-exchange", "rmdir"] {
            let mut w = workload::builtin(name)
                .expect("builtin exists")
                .expect("builtin parses");
            w.scale(10.0).expect("scale");
            let replay = |input: &Path, window: u64, early: bool, out: &Path| {
                replay_into(
                    &w,
                    Profile::named("linux-6.1").expect("profile"),
                    Source::Against(input),
                    Style::default(),
                    "6.1",
                    Window {
                        ns: window,
                        if_late: IfLate::Keep,
                        early,
                    },
                    |h| Writer::create(out, h),
                )
                .expect("replay")
                .0
            };
            let ops = dir.path().join(format!("{name}-ops.trace"));
            kernel_trace_of(&ops, w.source(), &planned_op_events(&w, 3000));
            let model = dir.path().join(format!("{name}-model.trace"));
            replay(&ops, u64::MAX, false, &model);
            let (_, mut events, _) = Reader::open(&model)
                .expect("open")
                .read_all()
                .expect("read");
            events.sort_by_key(|e| e.ts_end);
            for chunk in events.chunks_mut(8) {
                chunk.reverse();
            }
            let input = dir.path().join(format!("{name}-input.trace"));
            kernel_trace_of(&input, w.source(), &events);

            let window = 50_000;
            let streamed = dir.path().join(format!("{name}-streamed.trace"));
            let whole = dir.path().join(format!("{name}-whole.trace"));
            let s = replay(&input, window, true, &streamed);
            let all = replay(&input, u64::MAX, false, &whole);
            assert_eq!(s.late_events, Some(0), "{name}");
            assert_eq!(s.ops, 3000, "{name}");
            assert!(s.placed_at_effect.is_some_and(|n| n > 1000), "{name}");
            assert_eq!(s.placed_at_effect, all.placed_at_effect, "{name}");
            assert_eq!(s.results_differ, all.results_differ, "{name}");
            assert!(
                std::fs::read(&streamed).expect("read") == std::fs::read(&whole).expect("read"),
                "{name}: the streamed replay wrote another model trace"
            );
        }
    }

    /// An event later than the window is counted, and its operation still runs.
    #[test]
    fn events_later_than_the_window_are_counted_and_still_replayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        // Thread 1 stats every 100 µs for 20 ms; then an op of thread 2 begun at 5 ms
        // arrives: late for a 1 ms window, after the ops of up to about 18 ms have run.
        let mut events: Vec<Event> = (0..200).map(|i| stat(1, 1_000 + i * 100_000)).collect();
        events.push(stat(2, 5_000_000));
        let w = unlink_stat_trace(&kernel, &events);
        let out = dir.path().join("model.trace");
        let win = Window {
            ns: 1_000_000,
            if_late: IfLate::Keep,
            early: true,
        };
        let s = replay_windowed(&w, &kernel, &out, win);
        assert_eq!(s.late_events, Some(1));
        assert_eq!(s.ops, 201);
        let begins = op_begins(&out);
        // The late op ran after ops it would have preceded had it come in time (the one begun
        // at 10 ms), the others in order.
        let late = begins
            .iter()
            .position(|&b| b == 5_000_000)
            .expect("the late op ran");
        let at_10ms = begins.iter().position(|&b| b == 10_001_000).expect("ran");
        assert!(late > at_10ms, "{begins:?}");
        let mut rest = begins.clone();
        rest.remove(late);
        assert_eq!(rest.len(), 200);
        assert!(rest.is_sorted());
    }

    /// Through `replay_to_trace` (the 1 s window): an operation later than the window makes it
    /// replay again with a window wide enough, and the model trace is the exact order's.
    #[test]
    fn a_late_event_makes_the_replay_widen_its_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Thread 1 stats every 100 ms for 4 s; then an op of thread 2 begun at 0.5 s arrives.
        let mut events: Vec<Event> = (0..40).map(|i| stat(1, 1_000 + i * 100_000_000)).collect();
        events.push(stat(2, 500_000_000));
        let s = replayed_as_the_whole_trace_is(dir.path(), &events);
        assert_eq!((s.late_events, s.ops), (Some(1), 41));
        // Thread 2's op began 0.5 s into the trace and came after the end of the one at 3.9 s.
        assert_eq!(s.window_ns, Some(3_900_001_010 - 500_000_000 + 1));
        let out = dir.path().join("model.trace");
        let begins = op_begins(&out);
        assert!(begins.is_sorted(), "{begins:?}");
    }

    /// `events` as a kernel trace replayed by `replay_to_trace`, and the model trace of a
    /// replay holding the whole trace and assigning probe events at its end: the two must be
    /// byte for byte the same. The summary of the first.
    fn replayed_as_the_whole_trace_is(dir: &Path, events: &[Event]) -> ReplaySummary {
        let (kernel, out) = (dir.join("kernel.trace"), dir.join("model.trace"));
        let (w, s) = replayed_on_6_1(&kernel, &out, events);
        let exact = dir.join("exact.trace");
        let window = Window {
            ns: u64::MAX,
            if_late: IfLate::Keep,
            early: false,
        };
        replay_windowed(&w, &kernel, &exact, window);
        assert!(
            std::fs::read(&out).expect("read") == std::fs::read(&exact).expect("read"),
            "the model trace is not the exact order's"
        );
        s
    }

    /// `events` written as an unlink-stat kernel trace at `kernel` and replayed against it on
    /// linux-6.1 into `out`, as `tracer replay --against` does.
    fn replayed_on_6_1(kernel: &Path, out: &Path, events: &[Event]) -> (Workload, ReplaySummary) {
        let w = unlink_stat_trace(kernel, events);
        let s = replay_to_trace(
            &w,
            Profile::named("linux-6.1").expect("profile"),
            Source::Against(kernel),
            Style::default(),
            out,
            "6.1",
        )
        .expect("replay");
        (w, s)
    }

    /// A `__d_lookup_rcu` of `d0/f1`'s last component by thread `tid`, from `b` to `e`.
    fn lookup(tid: u32, b: u64, e: u64) -> Event {
        let mut ev = Event::zeroed();
        ev.probe = Probe::DLookupRcu as u8;
        ev.tid = tid;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev.set_name(b"f1");
        ev
    }

    /// A probe event given early to the only operation of its thread known then belongs to
    /// one of the thread's that arrives after it and began between the two: that one is
    /// counted late, the replay is redone without early assignment, and each op runs where
    /// the whole trace places it.
    #[test]
    fn an_op_arriving_after_an_event_given_to_the_op_before_it_is_late() {
        let dir = tempfile::tempdir().expect("tempdir");
        let events = [
            stat_until(1, 1_000, 100_000),
            lookup(1, 50_000, 50_010),
            // Thread 1 again, overlapping: the lookup is this op's (the last begun before it).
            stat_until(1, 40_000, 200_000),
            stat_until(2, 45_000, 45_100),
        ];
        let s = replayed_as_the_whole_trace_is(dir.path(), &events);
        assert_eq!((s.late_events, s.ops), (Some(1), 3));
        let begins = op_begins(&dir.path().join("model.trace"));
        // The second op of thread 1 runs at its lookup's end (50 010), after thread 2's.
        assert_eq!(begins, [1_000, 45_000, 40_000]);
    }

    /// Adversarial inputs through `replay_to_trace` write what a replay of the whole trace
    /// writes: three threads whose ops often overlap, lookups before, inside, across and
    /// after their spans (and of a thread without ops), arriving up to 5 ms out of order (an
    /// Op event before or after its lookups), and with `late` some 1.5 s late.
    #[test]
    fn early_assignment_writes_what_the_whole_trace_replay_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut redone = 0;
        for late in [false, true] {
            for seed in 1..=6u64 {
                let mut rnd = crate::test_rng::xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                // (arrival, event)
                let mut arrivals = Vec::new();
                for tid in 1..=3u32 {
                    let mut t = 1_000_000u64;
                    for _ in 0..300 {
                        let b = t + rnd(30_000_000);
                        let len = 1_000 + rnd(8_000_000);
                        let op = stat_until(tid, b, b + len);
                        arrivals.push((op.ts_end + rnd(5_000_000), op));
                        for _ in 0..rnd(5) {
                            let eb = (b + rnd(len + 1_000_000)).saturating_sub(500_000);
                            let e = lookup(tid, eb, eb + rnd(50_000));
                            arrivals.push((e.ts_end + rnd(5_000_000), e));
                        }
                        t = if rnd(3) == 0 { b + rnd(len) } else { b + len };
                    }
                    let e = lookup(9, t / 2, t / 2 + 10);
                    arrivals.push((e.ts_end, e));
                }
                if late {
                    for a in arrivals.iter_mut().filter(|_| rnd(100) == 0) {
                        a.0 += 1_500_000_000;
                    }
                }
                arrivals.sort_by_key(|a| a.0);
                let events: Vec<Event> = arrivals.into_iter().map(|a| a.1).collect();
                let s = replayed_as_the_whole_trace_is(dir.path(), &events);
                assert_eq!(s.ops, 900, "seed {seed}");
                // Nothing comes later than the window without `late`: there, only ops behind
                // an event given early make it replay again.
                if !late && s.late_events.is_some_and(|n| n > 0) {
                    redone += 1;
                }
            }
        }
        assert!(redone >= 1, "{redone} replays redone");
    }

    /// Two threads' ops arriving in bursts of 100, after all their lookups (inside their
    /// spans in and out of order, across their ends, between them): each op takes its own out
    /// of the middle of its thread's waiting events, the rest wait for the window, and the
    /// model trace is the whole-trace replay's.
    #[test]
    fn ops_arriving_in_bursts_after_their_events_replay_as_the_whole_trace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut events = Vec::new();
        for block in 0..4u64 {
            let mut ops = Vec::new();
            for k in 0..50u64 {
                for tid in 1..=2u32 {
                    let b = 1_000_000 + (block * 50 + k) * 10_000 + u64::from(tid) * 3_000;
                    ops.push(stat_until(tid, b, b + 2_000));
                    events.push(lookup(tid, b + 100, b + 200));
                    events.push(lookup(tid, b + 1_900, b + 2_500));
                    events.push(lookup(tid, b + 2_600, b + 2_700));
                    events.push(lookup(tid, b + 1_000, b + 1_100));
                }
            }
            events.extend(ops);
        }
        let s = replayed_as_the_whole_trace_is(dir.path(), &events);
        assert_eq!((s.ops, s.late_events), (400, Some(0)));
    }

    /// A damaged lookup that ends before it begins (1 500 < 7 000) falls in X's span by its
    /// end and after Y's begin by its begin. Assigned early to X, it was never taken back when
    /// Y came after X had run: the model trace differed from the whole trace's, with no late
    /// event counted.
    #[test]
    fn a_damaged_event_is_not_assigned_early() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (x, y) = (stat_until(1, 1_000, 2_000), stat_until(1, 6_000, 6_010));
        let mut events = vec![x, lookup(1, 7_000, 1_500), stat(3, 1_200)];
        // A second of trace time later: X runs before Y arrives.
        events.extend((0..70).map(|i| stat(2, 1_000_000_000 + 5_000 + i)));
        events.push(y);
        replayed_as_the_whole_trace_is(dir.path(), &events);
    }

    /// The same damaged lookup arriving after X has run: judged by its begin it was not late,
    /// and X's place was computed without it.
    #[test]
    fn a_damaged_event_is_judged_late_by_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut events = vec![stat_until(1, 1_000, 2_000), stat(3, 1_200)];
        events.extend((0..70).map(|i| stat(2, 1_000_000_000 + 5_000 + i)));
        events.push(lookup(1, 7_000, 1_500));
        let s = replayed_as_the_whole_trace_is(dir.path(), &events);
        assert!(s.late_events.is_some_and(|n| n > 0), "{:?}", s.late_events);
    }

    /// rev20 (session 13), finding 1: an honest stat of a minute and a bit whose lookup ended
    /// early in it, on an otherwise quiet trace, reads as a damaged end. The window takes the
    /// end as the latest end read before it (the lookup's), not as the op's begin, so the
    /// lookup stays in the op's span and the model's events are those of the same op ending
    /// inside the bound (taken at its begin, they were stamped where the op began).
    #[test]
    fn a_long_operation_taken_for_damaged_keeps_its_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = 1_000_000;
        let model = |end: u64| {
            let kernel = dir.path().join(format!("kernel-{end}.trace"));
            let out = dir.path().join(format!("model-{end}.trace"));
            let events = [lookup(1, t + 100, t + 200), stat_until(1, t, end)];
            let (_, s) = replayed_on_6_1(&kernel, &out, &events);
            let (_, events, _) = Reader::open(&out).expect("open").read_all().expect("read");
            let probes: Vec<Event> = events
                .into_iter()
                .filter(|e| e.probe != Probe::Op as u8)
                .collect();
            (s.damaged_ends, probes)
        };
        let (damaged, long) = model(t + MAX_END_LEAD_NS + 1_000);
        let (honest, short) = model(t + MAX_END_LEAD_NS - 1_000);
        assert_eq!((damaged, honest), (Some(1), Some(0)));
        assert!(!long.is_empty());
        assert_eq!(long, short);
    }

    /// A damaged end stamp at `u64::MAX` (no `settled` value passes it) still lets every operation
    /// run, in order. The window takes it as the latest end read before it, here the op's begin:
    /// nothing after it is late, so the replay runs once, with the reorder window (before: again,
    /// with a window of 584 years holding the whole trace); the model trace keeps the recorded end.
    #[test]
    fn an_end_stamp_at_the_clock_s_limit_runs_every_operation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let damaged = stat_until(1, 2_000, u64::MAX);
        let events = [stat(1, 1_000), damaged, stat(2, 3_000), stat(1, 4_000)];
        let out = dir.path().join("model.trace");
        let (_, s) = replayed_on_6_1(&kernel, &out, &events);
        assert_eq!(s.ops, 4);
        assert_eq!(
            (s.damaged_ends, s.late_events, s.window_ns),
            (Some(1), Some(0), Some(REORDER_WINDOW_NS))
        );
        let begins = op_begins(&out);
        assert_eq!(begins, [1_000, 2_000, 3_000, 4_000]);
        let (_, model, _) = Reader::open(&out).expect("open").read_all().expect("read");
        let op = model
            .iter()
            .find(|e| e.probe() == Some(Probe::Op) && e.ts_begin == 2_000);
        assert_eq!(op.map(|e| e.ts_end), Some(u64::MAX));
    }

    /// rev20 (session 13), finding 2: ends each just inside the damaged-end bound past the
    /// latest one (a ratchet of 59 s steps) are never taken as damaged, and the honest events
    /// after each fall minutes behind. The second replay's window still stops at
    /// [`MAX_BEGIN_LAG_NS`] (it was the whole lag, 1,002 s in the reviewer's reproducer), and
    /// every operation runs.
    #[test]
    fn a_ratchet_of_ends_inside_the_bound_keeps_the_window_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kernel, out) = (
            dir.path().join("kernel.trace"),
            dir.path().join("model.trace"),
        );
        let step = MAX_END_LEAD_NS - 1_000_000_000;
        let mut horizon = 0;
        let events: Vec<Event> = (0..300u64)
            .map(|k| {
                let b = 1_000_000 + k * 10_000_000;
                let e = if k % 50 == 49 {
                    horizon + step
                } else {
                    b + 600
                };
                horizon = horizon.max(e);
                stat_until(1 + (k % 2) as u32, b, e)
            })
            .collect();
        let (_, s) = replayed_on_6_1(&kernel, &out, &events);
        assert_eq!(s.ops, 300);
        assert_eq!(s.damaged_ends, Some(0), "each end is inside the bound");
        assert!(s.late_events.is_some_and(|n| n > 0), "{:?}", s.late_events);
        assert_eq!(s.window_ns, Some(MAX_BEGIN_LAG_NS));
        assert!(
            s.damaged_begins.is_some_and(|n| n > 0),
            "{:?}",
            s.damaged_begins
        );
    }

    /// A begin stamped 0, read 70 s into the trace: the first replay's lag is 70 s, the
    /// second's window stops at [`MAX_BEGIN_LAG_NS`], where the event is late. It is counted
    /// as a damaged begin and runs at the first chance (first: nothing has run before the
    /// trace's end here), keeping its recorded stamps; the others keep their order.
    #[test]
    fn a_damaged_begin_is_counted_and_bounds_the_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let late = 70_000_000_000;
        let events = [
            stat(1, 1_000),
            stat(2, 2_000),
            stat(1, late),
            stat_until(2, 0, late + 100),
            stat(1, late + 1_000),
        ];
        let out = dir.path().join("model.trace");
        let (_, s) = replayed_on_6_1(&kernel, &out, &events);
        assert_eq!(s.ops, 5);
        assert_eq!(
            (s.damaged_begins, s.late_events, s.window_ns),
            (Some(1), Some(1), Some(MAX_BEGIN_LAG_NS))
        );
        assert_eq!(s.damaged_ends, Some(0));
        assert_eq!(op_begins(&out), [0, 1_000, 2_000, late, late + 1_000]);
        // Without damage, none are counted.
        let events = [stat(1, 1_000), stat(2, 2_000)];
        let (_, s) = replayed_on_6_1(&kernel, &out, &events);
        assert_eq!((s.damaged_begins, s.late_events), (Some(0), Some(0)));
    }

    /// A stat of `d0/f1` by thread `tid`, begun at `b`, 10 ns long.
    fn stat(tid: u32, b: u64) -> Event {
        let mut e = Event::zeroed();
        e.probe = Probe::Op as u8;
        e.aux = OpKind::Stat as u32;
        e.tid = tid;
        e.ts_begin = b;
        e.ts_end = b + 10;
        e.set_name(b"d0/f1");
        e
    }

    /// [`stat`] ending at `e`.
    pub(crate) fn stat_until(tid: u32, b: u64, e: u64) -> Event {
        let mut ev = stat(tid, b);
        ev.ts_end = e;
        ev
    }

    /// A trace shorter than the window settles whole at its end; its overlapping ops,
    /// arriving out of order, run in the order of their begins (no probe events: placed at
    /// their begins). rev17 (session 12): run as each settles, they keep that order.
    #[test]
    fn ops_settling_at_the_end_run_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let events: Vec<Event> = (0..1_000u64)
            .map(|k| {
                let j = (k / 8) * 8 + (7 - k % 8);
                let b = 1_000 + 1_000 * j;
                stat_until(1 + (j % 4) as u32, b, b + 600 + (j % 5) * 3_000)
            })
            .collect();
        let w = unlink_stat_trace(&kernel, &events);
        let out = dir.path().join("model.trace");
        let win = Window {
            ns: REORDER_WINDOW_NS,
            if_late: IfLate::Keep,
            early: true,
        };
        let s = replay_windowed(&w, &kernel, &out, win);
        assert_eq!((s.ops, s.late_events), (1_000, Some(0)));
        let begins = op_begins(&out);
        assert_eq!(begins.len(), 1_000);
        assert!(begins.is_sorted(), "{:?}", &begins[..16]);
    }

    /// `kernel` replayed on linux-6.1 in its timestamp order with `window`, into `out`.
    fn replay_windowed(w: &Workload, kernel: &Path, out: &Path, window: Window) -> ReplaySummary {
        replay_into(
            w,
            Profile::named("linux-6.1").expect("profile"),
            Source::Against(kernel),
            Style::default(),
            "6.1",
            window,
            |h| Writer::create(out, h),
        )
        .expect("replay")
        .0
    }

    /// The begin stamps of a model trace's operations, in its order.
    fn op_begins(path: &Path) -> Vec<u64> {
        let (_, model, _) = Reader::open(path).expect("open").read_all().expect("read");
        model
            .iter()
            .filter(|e| e.probe() == Some(Probe::Op))
            .map(|e| e.ts_begin)
            .collect()
    }

    /// A kernel trace with one stat op per `(tid, ts_begin)`.
    fn kernel_trace(path: &Path, ops: &[(u32, u64)]) {
        let w = workload::builtin("unlink-stat")
            .expect("builtin exists")
            .expect("builtin parses");
        let mut h = Header::new(Origin::Kernel);
        h.kernel_release = "6.1.0-test".into();
        h.workload_toml = Some(w.source().to_string());
        let mut wr = Writer::create(path, &h).expect("create");
        for &(tid, ts) in ops {
            let mut e = Event::zeroed();
            e.probe = Probe::Op as u8;
            e.aux = OpKind::Stat as u32;
            e.tid = tid;
            e.ts_begin = ts;
            e.ts_end = ts + 10;
            e.set_name(b"d/missing");
            wr.push(&e).expect("push");
        }
        wr.finish(Footer::default()).expect("finish");
    }

    fn replay_threads(kernel: &Path, out: &Path) -> Result<ReplaySummary, ReplayError> {
        let (w, release) = resolve_workload(None, None, Some(kernel)).expect("resolve");
        let profile = pick_profile(None, &release).expect("profile");
        let style = Style {
            threads: true,
            delays: false,
        };
        replay_to_trace(&w, profile, Source::Against(kernel), style, out, &release)
    }

    #[test]
    fn a_paced_replay_refuses_an_absurd_timestamp_instead_of_sleeping_on_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        // Before: the second op slept ~584 years.
        kernel_trace(&kernel, &[(1, 1_000), (1, u64::MAX - 20)]);
        let out = dir.path().join("model.trace");
        let t0 = Instant::now();
        let err = replay_threads(&kernel, &out).expect_err("absurd timestamp");
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(err, ReplayError::PaceSpan { index: 1, .. }),
            "{err}"
        );
        assert!(!out.exists(), "a failed replay leaves no model trace");

        kernel_trace(&kernel, &[(1, 5_000), (2, 5_000 + 20_000_000)]);
        let s = replay_threads(&kernel, &out).expect("20 ms apart replays at that pace");
        assert_eq!(s.ops, 2);
    }

    #[test]
    fn a_paced_replay_caps_its_threads_with_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("kernel.trace");
        let ops: Vec<(u32, u64)> = (0..=MAX_REPLAY_THREADS as u32)
            .map(|tid| (tid + 100, 1_000))
            .collect();
        kernel_trace(&kernel, &ops);
        let err = replay_threads(&kernel, &dir.path().join("m.trace")).expect_err("too many");
        assert!(
            matches!(
                err,
                ReplayError::TooManyThreads {
                    found: 65,
                    max: 64,
                    ..
                }
            ),
            "{err}"
        );
    }
}
