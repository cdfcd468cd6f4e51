//! A user-space re-implementation of the Linux dcache RCU lookup protocol (fs/dcache.c and the
//! fs/namei.c callers that decide what a syscall sees), per kernel generation.
//!
//! - [`Dcache`]: one model kernel (a mounted file system, its dcache, RCU, clock, event sink),
//!   built from a [`DcacheConfig`] with a [`Profile`] (one per generation, `linux-2.6.38` to
//!   `linux-7.2`; [`Profile::for_release`], the project's one release table, picks one for a
//!   kernel release).
//! - [`Task`]: a worker thread's context; its syscalls (`stat`, `open`, `create`, `unlink`,
//!   `rename`, `mkdir`, `rmdir`, `readdir`, `drop_caches`, or [`Task::run`] by [`OpKind`]) run the
//!   protocol and emit [`tracer_common::Event`]s (`Source::Model`) to the [`EventSink`]: one per
//!   `__d_lookup_rcu`/`__d_lookup` return and per writer call, one `Probe::Op` per syscall.
//! - [`replay`]: runs a list of [`ReplayOp`]s in trace order or freely on threads.
//! - [`stress`]: real threads for a while, counting invariant violations.
//!
//! Concurrency is real: seq-protected fields are relaxed atomics, `smp_wmb`/`smp_rmb` are
//! release/acquire fences, `d_lock` is a spinlock, freed dentries wait for an RCU grace period
//! (crossbeam-epoch). Under `--cfg loom` the primitives in `sync` and `rcu` switch to loom's,
//! and `check` (the model checker) is built: then the model runs only inside a loom model.

#[cfg(loom)]
pub mod check;
mod dcache;
mod dentry;
mod error;
mod event;
mod fs;
mod model;
mod namei;
mod profile;
mod rcu;
pub mod replay;
mod slab;
pub mod stress;
mod sync;
mod task;

pub use error::{Errno, ModelError};
pub use event::{Clock, ClockKind, CollectSink, CountSink, EventSink, NullSink};
pub use fs::{FsKind, InodeKind, ROOT_INO};
pub use model::{Dcache, DcacheConfig};
pub use profile::{
    is_release_candidate, major_minor, Caller, Commit, DAddShape, DDeleteDrop, DDropShape,
    DFlagsNumbering, DMoveRehash, DMoveTarget, DeadDirCheck, DisposeAdd, DisposeFree,
    DputReferenced, DropSlabLoop, InodeSeq, KillEntry, KillIput, KillParentLock, Landing, Mutants,
    Profile, PruneWalk, ShrinkLock, ShrinkParent, TmpfsPin,
};
pub use replay::{replay, ReplayMode, ReplayOp, ReplayOutcome};
pub use stress::{stress, Delay, Shape, StressConfig, StressReport};
pub use task::{Step, StepHook, Task};
pub use tracer_common::OpKind;
