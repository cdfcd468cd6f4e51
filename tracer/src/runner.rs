//! The workload runner: a fresh file system in a private mount namespace, the workload's threads
//! doing their operations with direct syscalls, each operation recorded as an [`Event`].
//!
//! Namespaces and threads: `unshare(CLONE_NEWNS)` moves only the calling thread of a
//! multithreaded process. So [`prepare`] starts a runner thread that unshares, mounts and owns
//! every resource; it spawns the workers, which inherit its namespace. Operations are `*at`
//! calls on a descriptor of the mount root, so every path walk starts at that root and stays on
//! the workload's file system. The caller's namespace never changes and nothing mounted here is
//! visible outside it. The runner thread tears down (unmount, loop detach, temp dir) when the
//! [`Prepared`] is finished or dropped. If the process dies first, the kernel frees the
//! namespace with its mounts and the loop device clears itself (autoclear): at most an empty
//! directory under the temp dir remains.
use std::{
    ffi::{CStr, CString},
    fs::File,
    io,
    marker::PhantomData,
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Arc, Condvar, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use rustix::{
    fs::{self as rfs, AtFlags, Mode, OFlags, RawDir, RenameFlags},
    io::Errno,
    mount::{MountFlags, MountPropagationFlags, UnmountFlags},
    thread::UnshareFlags,
    time::ClockId,
};
use tracer_common::{flags, Event, OpKind, Probe, Source};

use tracer_analysis::workload::{FsKind, ThreadOps, Workload};

/// Where `drop_caches` operations write "2" (free reclaimable slab objects: dentries, inodes).
pub const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Size limit of a tmpfs workload file system.
const TMPFS_OPTIONS: &str = "mode=0755,size=64m";

/// Operations generated ahead per refill: a bounded thread usually gets its whole list before
/// the start, an endless one a little at a time.
const BOUNDED_CHUNK: u64 = 1 << 16;
const ENDLESS_CHUNK: u64 = 1 << 10;

/// Why the runner could not prepare or run a workload.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the workload runner needs root: it mounts a fresh file system in a private mount \
         namespace (run as root, or with sudo)"
    )]
    NotRoot,
    #[error("{what}")]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("file system {fs} needs `{tool}` on PATH ({hint})")]
    MissingTool {
        fs: FsKind,
        tool: &'static str,
        hint: &'static str,
    },
    #[error("`{tool} {device}` failed ({status}):\n{output}")]
    Mkfs {
        tool: &'static str,
        device: String,
        status: ExitStatus,
        output: String,
    },
    #[error("setup step {step} ({op} {path}) failed")]
    Setup {
        step: usize,
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("workload thread `{thread}`: {what}")]
    Thread {
        thread: String,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("workload thread `{0}` panicked")]
    ThreadPanicked(String),
    #[error("this workload already ran; prepare it again for another run")]
    AlreadyRan,
    #[error("the workload runner thread exited unexpectedly (it panicked)")]
    RunnerGone,
}

fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Sys { what, source }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The kernel-internal `dev_t` (`sb->s_dev`: major << 20 | minor, what the probes compare) of a
/// userspace `st_dev` (glibc's encoding: major in bits 8-19 and 32-43, minor in bits 0-7 and
/// 20-31).
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = ((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & !0xfff);
    let minor = (st_dev & 0xff) | ((st_dev >> 12) & !0xff);
    ((major << 20) | (minor & 0xf_ffff)) as u32
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`.
fn now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// Performs one operation on the file system under `root`; 0 or -errno. An error is a result
/// here (a stat racing an unlink may well see ENOENT), never a failure of the run.
fn execute(
    root: BorrowedFd<'_>,
    kind: OpKind,
    path: &CStr,
    path2: Option<&CStr>,
    drop_caches: Option<BorrowedFd<'_>>,
) -> i32 {
    let r = match kind {
        OpKind::Stat => rfs::statat(root, path, AtFlags::empty()).map(drop),
        // The descriptors opened here close as they drop.
        OpKind::Open => {
            rfs::openat(root, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map(drop)
        }
        OpKind::Create => rfs::openat(
            root,
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
        OpKind::Unlink => rfs::unlinkat(root, path, AtFlags::empty()),
        OpKind::Rename => match path2 {
            Some(to) => rfs::renameat(root, path, root, to),
            None => Err(Errno::INVAL),
        },
        OpKind::Exchange => match path2 {
            Some(to) => rfs::renameat_with(root, path, root, to, RenameFlags::EXCHANGE),
            None => Err(Errno::INVAL),
        },
        OpKind::Mkdir => rfs::mkdirat(root, path, Mode::from_raw_mode(0o755)),
        OpKind::Rmdir => rfs::unlinkat(root, path, AtFlags::REMOVEDIR),
        OpKind::Readdir => read_dir_at(root, path),
        OpKind::DropCaches => match drop_caches.map(|fd| rustix::io::pwrite(fd, b"2", 0)) {
            Some(Ok(1)) => Ok(()),
            Some(Ok(_)) => Err(Errno::IO),
            Some(Err(e)) => Err(e),
            None => Err(Errno::BADF),
        },
    };
    r.map_or_else(|e| -e.raw_os_error(), |()| 0)
}

/// Opens a directory and reads every entry (getdents64 until the end), as `ls` would.
fn read_dir_at(root: BorrowedFd<'_>, path: &CStr) -> rustix::io::Result<()> {
    let fd = rfs::openat(
        root,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut dir = RawDir::new(&fd, &mut buf);
    while let Some(entry) = dir.next() {
        entry?;
    }
    Ok(())
}

/// A loop device bound to an image file, cleared on drop.
struct LoopDevice {
    file: File,
    path: String,
    cleared: bool,
}

// <linux/loop.h>
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

impl LoopDevice {
    /// Binds a free loop device to `image`, with autoclear so the kernel unbinds it on the last
    /// close even if this process dies.
    fn attach(image: &File) -> Result<LoopDevice, RunError> {
        let ctl = File::options()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(sys(
                "opening /dev/loop-control (is the loop driver loaded? modprobe loop)",
            ))?;
        // Another process may take the free device between GET_FREE and SET_FD: try again.
        for _ in 0..16 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument.
            let n = cvt(unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) })
                .map_err(sys("LOOP_CTL_GET_FREE on /dev/loop-control"))?;
            let path = format!("/dev/loop{n}");
            let file = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(sys(format!("opening {path} (is /dev a devtmpfs?)")))?;
            // SAFETY: LOOP_SET_FD takes a descriptor, which `image` keeps open.
            match cvt(unsafe { libc::ioctl(file.as_raw_fd(), LOOP_SET_FD as _, image.as_raw_fd()) })
            {
                Ok(_) => {
                    let dev = LoopDevice {
                        file,
                        path,
                        cleared: false,
                    };
                    dev.set_autoclear()?;
                    return Ok(dev);
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
                Err(e) => return Err(sys(format!("LOOP_SET_FD on {path}"))(e)),
            }
        }
        Err(RunError::Sys {
            what: "binding a loop device".into(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        })
    }

    fn set_autoclear(&self) -> Result<(), RunError> {
        let mut info = LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: LO_FLAGS_AUTOCLEAR,
            lo_file_name: [0; 64],
            lo_crypt_name: [0; 64],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        };
        let name = b"tracer-workload";
        info.lo_file_name[..name.len()].copy_from_slice(name);
        // SAFETY: info is a valid loop_info64 for the duration of the call.
        cvt(unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_SET_STATUS64 as _, &info) })
            .map(drop)
            .map_err(sys(format!(
                "LOOP_SET_STATUS64 (autoclear) on {}",
                self.path
            )))
    }

    /// Unbinds now (the file system on it must be unmounted). ENXIO: already unbound.
    fn detach(&mut self) -> io::Result<()> {
        if self.cleared {
            return Ok(());
        }
        self.cleared = true;
        // SAFETY: LOOP_CLR_FD takes no argument.
        match cvt(unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD as _) }) {
            Err(e) if e.raw_os_error() != Some(libc::ENXIO) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // Best effort; autoclear unbinds on close anyway.
        let _ = self.detach();
    }
}

/// Creates a sparse image of `mib` MiB in `dir` and unlinks it at once: the open file is all
/// that is needed, and no name can be left behind.
fn image_file(dir: &Path, mib: u32) -> Result<File, RunError> {
    let path = dir.join("image");
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(sys(format!("creating {}", path.display())))?;
    std::fs::remove_file(&path).map_err(sys(format!("unlinking {}", path.display())))?;
    file.set_len(u64::from(mib) << 20)
        .map_err(sys("sizing the loop image"))?;
    Ok(file)
}

fn mkfs(fs: FsKind, device: &str) -> Result<(), RunError> {
    // mke2fs without -t makes ext2 both from e2fsprogs and from busybox, so the layout is the
    // same on a host and in the VM; the ext4 driver mounts it.
    let (tool, args, hint): (&'static str, &[&str], &'static str) = match fs {
        FsKind::Ext4 => (
            "mke2fs",
            &["-F"],
            "Debian: apt-get install e2fsprogs; busybox's mke2fs works too",
        ),
        FsKind::Minix => (
            "mkfs.minix",
            &[],
            "Debian: apt-get install util-linux; busybox-static 1.35 has no mkfs.minix",
        ),
        FsKind::Tmpfs => return Ok(()),
    };
    let out = Command::new(tool)
        .args(args)
        .arg(device)
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(RunError::MissingTool { fs, tool, hint })
        }
        Err(e) => Err(sys(format!("running {tool}"))(e)),
        Ok(o) if !o.status.success() => Err(RunError::Mkfs {
            tool,
            device: device.to_owned(),
            status: o.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        }),
        Ok(_) => Ok(()),
    }
}

fn mount(source: &str, target: &Path, fstype: &str, data: Option<&str>) -> io::Result<()> {
    let data = data.map(CString::new).transpose()?;
    rustix::mount::mount(
        source,
        target,
        fstype,
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_deref(),
    )?;
    Ok(())
}

/// A new directory under `base` for the mount point; the runner removes it at teardown.
fn make_temp_dir(base: &Path) -> Result<PathBuf, RunError> {
    tempfile::Builder::new()
        .prefix("tracer-workload.")
        .tempdir_in(base)
        .map(tempfile::TempDir::keep)
        .map_err(sys(format!("creating a temp dir under {}", base.display())))
}

/// Everything the runner thread owns; torn down in reverse order of creation.
struct Env {
    dir: Option<PathBuf>,
    loop_dev: Option<LoopDevice>,
    mounted: bool,
    root: Option<OwnedFd>,
    st_dev: u64,
}

impl Env {
    /// Must run on the runner thread: it moves that thread into a new mount namespace.
    fn create(w: &Workload, temp_base: &Path) -> Result<Env, RunError> {
        let mut env = Env {
            dir: None,
            loop_dev: None,
            mounted: false,
            root: None,
            st_dev: 0,
        };
        // SAFETY: only the mount namespace is unshared; the descriptor table stays shared.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
            .map_err(|e| sys("unshare(CLONE_NEWNS) for a private mount namespace")(e.into()))?;
        // Without this, mounts below a shared `/` would propagate back to the host's namespace.
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        )
        .map_err(|e| sys("making / private (mount --make-rprivate /)")(e.into()))?;
        let dir = make_temp_dir(temp_base)?;
        env.dir = Some(dir.clone());

        let fs = w.filesystem;
        let what = || format!("mounting {fs} on {}", dir.display());
        if fs.is_disk() {
            let image = image_file(&dir, w.image_mib)?;
            let lo = env.loop_dev.insert(LoopDevice::attach(&image)?);
            mkfs(fs, &lo.path)?;
            mount(&lo.path, &dir, fs.name(), None).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::ENODEV) {
                    format!(" (this kernel has no {fs} driver: load its module)")
                } else {
                    String::new()
                };
                sys(format!("{}{hint}", what()))(e)
            })?;
        } else {
            mount("tmpfs", &dir, "tmpfs", Some(TMPFS_OPTIONS)).map_err(sys(what()))?;
        }
        env.mounted = true;

        let fd = rfs::open(
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys(format!("opening {}", dir.display()))(e.into()))?;
        let root = env.root.insert(fd);
        env.st_dev = rfs::fstat(&*root)
            .map_err(|e| sys(format!("stat {}", dir.display()))(e.into()))?
            .st_dev;

        for (step, op) in w.setup_ops().into_iter().enumerate() {
            let path = CString::new(op.path.as_str()).unwrap_or_default();
            let r = execute(root.as_fd(), op.kind, &path, None, None);
            if r != 0 {
                return Err(RunError::Setup {
                    step,
                    op: op.kind.name(),
                    path: op.path,
                    source: io::Error::from_raw_os_error(-r),
                });
            }
        }
        Ok(env)
    }

    /// Idempotent; goes on after an error and reports the first.
    fn teardown(&mut self) -> Result<(), RunError> {
        let mut first: Option<RunError> = None;
        self.root = None;
        if let (true, Some(dir)) = (self.mounted, &self.dir) {
            self.mounted = false;
            if let Err(e) = unmount(dir) {
                first.get_or_insert(sys(format!("unmounting {}", dir.display()))(e));
            }
        }
        if let Some(mut lo) = self.loop_dev.take() {
            if let Err(e) = lo.detach() {
                first.get_or_insert(sys(format!("detaching {}", lo.path))(e));
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = std::fs::remove_dir(&dir) {
                first.get_or_insert(sys(format!("removing {}", dir.display()))(e));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Drop cannot return the error, and a leftover mount or loop device must not go
        // unnoticed.
        if let Err(e) = self.teardown() {
            eprintln!("tracer: warning: workload cleanup: {e}");
        }
    }
}

/// Unmounts, retrying while busy (a just-closed descriptor can hold it briefly); if it stays
/// busy, detaches it lazily so it vanishes from the namespace, and reports EBUSY.
fn unmount(dir: &Path) -> io::Result<()> {
    for _ in 0..50 {
        match rustix::mount::unmount(dir, UnmountFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(Errno::BUSY) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.into()),
        }
    }
    rustix::mount::unmount(dir, UnmountFlags::DETACH)?;
    Err(Errno::BUSY.into())
}

/// What one workload thread did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadRun {
    pub name: String,
    /// Linux thread id: the `tid` of its events.
    pub tid: u32,
    /// Operations performed.
    pub ops: u64,
    /// Stopped by the stop flag or another thread's failure before its own end.
    pub interrupted: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// One [`Probe::Op`] event per operation, sorted by `ts_begin` (then `tid`).
    pub events: Vec<Event>,
    /// Per workload thread, in [`Workload::threads`] order.
    pub threads: Vec<ThreadRun>,
    /// The stop flag ended the run early.
    pub interrupted: bool,
    /// From the start signal to the last thread's end.
    pub elapsed: Duration,
}

/// A one-shot start line: workers wait until every worker is ready, so generation of their
/// lists does not skew who starts first, and a failed spawn can release the others.
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn arrive_and_wait(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 += 1;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn wait_ready(&self, n: usize) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.0 < n {
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn open(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// State the workers share with the runner thread.
struct Shared<'a> {
    root: BorrowedFd<'a>,
    stop: &'a AtomicBool,
    /// Set when a worker fails or a spawn fails: everyone stops.
    abort: AtomicBool,
    foreground_left: AtomicUsize,
    gate: Gate,
}

/// One operation, ready to issue: C strings and the event template built before the start.
struct ReadyOp {
    kind: OpKind,
    path: CString,
    path2: Option<CString>,
    event: Event,
    pause_before: bool,
}

fn refill(ops: &mut ThreadOps<'_>, out: &mut Vec<ReadyOp>, tid: u32, n: u64) {
    out.clear();
    for _ in 0..n {
        let pause_before = ops.at_iteration_start() && ops.iteration() > 0;
        let Some(op) = ops.next() else { break };
        let mut event = Event::zeroed();
        event.probe = Probe::Op as u8;
        event.source = Source::Workload as u8;
        event.tid = tid;
        event.aux = op.kind as u32;
        event.set_name(&op.event_name());
        if op.path2.is_some() {
            event.flags |= flags::TWO_PATHS;
        }
        // Validation rejects NUL in paths; an empty path would only fail with ENOENT.
        out.push(ReadyOp {
            kind: op.kind,
            path: CString::new(op.path).unwrap_or_default(),
            path2: op.path2.map(|p| CString::new(p).unwrap_or_default()),
            event,
            pause_before,
        });
    }
}

fn worker(sh: &Shared<'_>, mut ops: ThreadOps<'_>) -> Result<(ThreadRun, Vec<Event>), RunError> {
    let spec = ops.spec();
    let tid = gettid();
    let chunk = if spec.is_bounded() {
        BOUNDED_CHUNK
    } else {
        ENDLESS_CHUNK
    };
    let prep = (|| {
        let drop_caches = if spec.ops.iter().any(|o| o.kind == OpKind::DropCaches) {
            let f = File::options()
                .write(true)
                .open(DROP_CACHES)
                .map_err(|source| RunError::Thread {
                    thread: spec.name.clone(),
                    what: format!("opening {DROP_CACHES}"),
                    source,
                })?;
            Some(f)
        } else {
            None
        };
        let mut ready = Vec::new();
        refill(&mut ops, &mut ready, tid, chunk);
        Ok::<_, RunError>((drop_caches, ready))
    })();
    if prep.is_err() {
        sh.abort.store(true, Ordering::Relaxed);
    }
    sh.gate.arrive_and_wait();
    let done = |sh: &Shared<'_>| {
        if !spec.background {
            sh.foreground_left.fetch_sub(1, Ordering::Relaxed);
        }
    };
    let (drop_caches, mut ready) = match prep {
        Ok(p) => p,
        Err(e) => {
            done(sh);
            return Err(e);
        }
    };
    let dc_fd = drop_caches.as_ref().map(|f| f.as_fd());
    let capacity = spec
        .iterations
        .map_or(ENDLESS_CHUNK, |n| n * spec.ops.len() as u64);
    let mut events = Vec::with_capacity(capacity.min(BOUNDED_CHUNK * 4) as usize);
    let deadline = spec
        .duration
        .map(|d| now_ns().saturating_add(d.as_nanos() as u64));
    let mut interrupted = false;
    'run: while !ready.is_empty() {
        for op in &ready {
            if sh.stop.load(Ordering::Relaxed) || sh.abort.load(Ordering::Relaxed) {
                interrupted = true;
                break 'run;
            }
            if spec.background && sh.foreground_left.load(Ordering::Relaxed) == 0 {
                break 'run;
            }
            if op.pause_before {
                if let Some(p) = spec.pause {
                    thread::sleep(p);
                }
            }
            let mut ev = op.event;
            ev.cpu = rustix::thread::sched_getcpu() as u32;
            ev.ts_begin = now_ns();
            ev.result = execute(sh.root, op.kind, &op.path, op.path2.as_deref(), dc_fd);
            ev.ts_end = now_ns();
            events.push(ev);
            if deadline.is_some_and(|d| ev.ts_end >= d) {
                break 'run;
            }
        }
        refill(&mut ops, &mut ready, tid, chunk);
    }
    done(sh);
    let run = ThreadRun {
        name: spec.name.clone(),
        tid,
        ops: events.len() as u64,
        interrupted,
    };
    Ok((run, events))
}

/// Runs every thread of `w` once on the prepared file system. Runs on the runner thread.
fn run_threads(env: &Env, w: &Workload, stop: &AtomicBool) -> Result<RunReport, RunError> {
    let root = env
        .root
        .as_ref()
        .map(|f| f.as_fd())
        .ok_or(RunError::RunnerGone)?;
    let sh = Shared {
        root,
        stop,
        abort: AtomicBool::new(false),
        foreground_left: AtomicUsize::new(w.threads.iter().filter(|t| !t.background).count()),
        gate: Gate {
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
        },
    };
    let (results, elapsed) = thread::scope(|s| {
        let mut handles = Vec::with_capacity(w.threads.len());
        let mut spawn_error = None;
        for ops in w.all_thread_ops() {
            let name = ops.spec().name.clone();
            let sh = &sh;
            match thread::Builder::new()
                .name(name.clone())
                .spawn_scoped(s, move || worker(sh, ops))
            {
                Ok(h) => handles.push((name, h)),
                Err(source) => {
                    spawn_error = Some(RunError::Thread {
                        thread: name,
                        what: "spawning".into(),
                        source,
                    });
                    sh.abort.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        sh.gate.wait_ready(handles.len());
        let t0 = Instant::now();
        sh.gate.open();
        let results: Vec<_> = handles
            .into_iter()
            .map(|(name, h)| h.join().unwrap_or(Err(RunError::ThreadPanicked(name))))
            .collect();
        let elapsed = t0.elapsed();
        match spawn_error {
            Some(e) => (vec![Err(e)], elapsed),
            None => (results, elapsed),
        }
    });
    let mut events = Vec::new();
    let mut threads = Vec::with_capacity(results.len());
    for r in results {
        let (run, ev) = r?;
        threads.push(run);
        events.extend(ev);
    }
    events.sort_by_key(|e| (e.ts_begin, e.tid));
    Ok(RunReport {
        events,
        threads,
        interrupted: stop.load(Ordering::Relaxed),
        elapsed,
    })
}

enum HostCommand {
    Run {
        stop: Arc<AtomicBool>,
        reply: mpsc::Sender<Result<RunReport, RunError>>,
    },
    Finish {
        reply: mpsc::Sender<Result<(), RunError>>,
    },
}

struct HostInfo {
    st_dev: u64,
    loop_device: Option<String>,
    mount_point: PathBuf,
    tid: u32,
}

/// The runner thread: builds the environment, then serves run and finish commands. A closed
/// command channel (the [`Prepared`] was dropped) tears down too, through `Env`'s drop.
fn host(
    w: Workload,
    temp_base: PathBuf,
    ready: mpsc::Sender<Result<HostInfo, RunError>>,
    commands: mpsc::Receiver<HostCommand>,
) {
    let mut env = match Env::create(&w, &temp_base) {
        Ok(env) => env,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let info = HostInfo {
        st_dev: env.st_dev,
        loop_device: env.loop_dev.as_ref().map(|l| l.path.clone()),
        mount_point: env.dir.clone().unwrap_or_default(),
        tid: gettid(),
    };
    if ready.send(Ok(info)).is_err() {
        return;
    }
    while let Ok(cmd) = commands.recv() {
        match cmd {
            HostCommand::Run { stop, reply } => {
                let _ = reply.send(run_threads(&env, &w, &stop));
            }
            HostCommand::Finish { reply } => {
                let _ = reply.send(env.teardown());
                return;
            }
        }
    }
}

fn require_root() -> Result<(), RunError> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(RunError::NotRoot)
    }
}

/// A workload ready to run: its file system is mounted (in the runner's private namespace)
/// and set up. Tear down with [`Prepared::finish`] to see cleanup errors, or just drop it.
pub struct Prepared {
    info: HostInfo,
    commands: Option<mpsc::Sender<HostCommand>>,
    host: Option<thread::JoinHandle<()>>,
    ran: bool,
}

/// Builds the workload's environment: a private mount namespace (on a runner thread; the
/// caller's is untouched), a fresh file system of the workload's kind, and its setup steps.
/// Needs root. Call [`Prepared::dev`] for the probes' device filter, then run.
///
/// The mount point (and a disk image, unlinked at once) is a new directory in the system's
/// temp dir (`$TMPDIR`, else /tmp).
pub fn prepare(w: &Workload) -> Result<Prepared, RunError> {
    prepare_in(w, &std::env::temp_dir())
}

/// [`prepare`], with the mount point's directory made in `temp_base`.
pub fn prepare_in(w: &Workload, temp_base: &Path) -> Result<Prepared, RunError> {
    Preparing::start_in(w, temp_base)?.wait()
}

/// A preparation under way on the runner thread: the caller can do other work (read BTF)
/// while the file system is made and mounted, then [`Preparing::wait`] for it. Dropping it
/// waits for the runner to tear down what it made.
pub struct Preparing {
    ready: mpsc::Receiver<Result<HostInfo, RunError>>,
    commands: Option<mpsc::Sender<HostCommand>>,
    host: Option<thread::JoinHandle<()>>,
}

impl Preparing {
    /// [`prepare`], returning as soon as the runner thread has started.
    pub fn start(w: &Workload) -> Result<Preparing, RunError> {
        Preparing::start_in(w, &std::env::temp_dir())
    }

    /// [`prepare_in`], returning as soon as the runner thread has started.
    pub fn start_in(w: &Workload, temp_base: &Path) -> Result<Preparing, RunError> {
        require_root()?;
        let temp_base = temp_base.to_owned();
        let (ready_tx, ready) = mpsc::channel();
        let (commands, cmd_rx) = mpsc::channel();
        let w = w.clone();
        let host = thread::Builder::new()
            .name("workload-runner".into())
            .spawn(move || host(w, temp_base, ready_tx, cmd_rx))
            .map_err(sys("spawning the workload runner thread"))?;
        Ok(Preparing {
            ready,
            commands: Some(commands),
            host: Some(host),
        })
    }

    /// Waits until the file system is mounted and set up (or the preparation failed).
    pub fn wait(mut self) -> Result<Prepared, RunError> {
        // On an error, dropping `self` joins the runner, which has ended.
        match self.ready.recv() {
            Ok(Ok(info)) => Ok(Prepared {
                info,
                commands: self.commands.take(),
                host: self.host.take(),
                ran: false,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RunError::RunnerGone),
        }
    }
}

impl Drop for Preparing {
    fn drop(&mut self) {
        // The runner sees the closed command channel once it is ready, and tears down.
        self.commands = None;
        if let Some(h) = self.host.take() {
            let _ = h.join();
        }
    }
}

impl Prepared {
    /// The file system's device as the kernel stores it in `super_block.s_dev`.
    pub fn dev(&self) -> u32 {
        kernel_dev(self.info.st_dev)
    }

    /// The file system's device as `stat` reports it.
    pub fn st_dev(&self) -> u64 {
        self.info.st_dev
    }

    /// Where the file system is mounted: visible only in the runner's namespace (from outside,
    /// through `/proc/<pid>/task/<runner_tid>/root`).
    pub fn mount_point(&self) -> &Path {
        &self.info.mount_point
    }

    /// The loop device under a disk file system (`/dev/loopN`); `None` for tmpfs.
    pub fn loop_device(&self) -> Option<&str> {
        self.info.loop_device.as_deref()
    }

    /// The thread holding the private namespace (`/proc/<pid>/task/<tid>/mountinfo`).
    pub fn runner_tid(&self) -> u32 {
        self.info.tid
    }

    /// Starts the run and returns at once; workers stop between operations once `stop` is set.
    /// A workload runs once per preparation.
    pub fn start(&mut self, stop: Arc<AtomicBool>) -> Result<Running<'_>, RunError> {
        if self.ran {
            return Err(RunError::AlreadyRan);
        }
        self.ran = true;
        let (reply, rx) = mpsc::channel();
        self.commands
            .as_ref()
            .ok_or(RunError::RunnerGone)?
            .send(HostCommand::Run {
                stop: Arc::clone(&stop),
                reply,
            })
            .map_err(|_| RunError::RunnerGone)?;
        Ok(Running {
            rx,
            stop,
            result: None,
            waited: false,
            _prepared: PhantomData,
        })
    }

    /// Runs the workload to its end, or until `stop` is set (checked every 10 ms and passed on;
    /// workers then stop between operations).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<RunReport, RunError> {
        let inner = Arc::new(AtomicBool::new(stop.load(Ordering::Relaxed)));
        let mut running = self.start(Arc::clone(&inner))?;
        while !running.poll(Duration::from_millis(10)) {
            if stop.load(Ordering::Relaxed) {
                inner.store(true, Ordering::Relaxed);
            }
        }
        running.wait()
    }

    /// Unmounts, detaches the loop device and removes the temp dir, reporting any failure.
    pub fn finish(mut self) -> Result<(), RunError> {
        let Some(commands) = self.commands.take() else {
            return Ok(());
        };
        let (reply, rx) = mpsc::channel();
        let sent = commands.send(HostCommand::Finish { reply }).is_ok();
        let result = if sent {
            rx.recv().unwrap_or(Err(RunError::RunnerGone))
        } else {
            Err(RunError::RunnerGone)
        };
        drop(commands);
        if let Some(h) = self.host.take() {
            if h.join().is_err() {
                return Err(RunError::RunnerGone);
            }
        }
        result
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Closing the channel makes the runner thread tear down; wait for it so nothing is
        // still mounted when this returns.
        self.commands = None;
        if let Some(h) = self.host.take() {
            let _ = h.join();
        }
    }
}

/// A run in progress; see [`Prepared::start`]. Dropping it stops the run and waits for it.
pub struct Running<'a> {
    rx: mpsc::Receiver<Result<RunReport, RunError>>,
    stop: Arc<AtomicBool>,
    result: Option<Result<RunReport, RunError>>,
    waited: bool,
    _prepared: PhantomData<&'a mut Prepared>,
}

impl Running<'_> {
    /// Whether the run has ended (then [`Running::wait`] returns at once).
    pub fn is_finished(&mut self) -> bool {
        self.poll(Duration::ZERO)
    }

    fn poll(&mut self, timeout: Duration) -> bool {
        if self.result.is_some() {
            return true;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(r) => self.result = Some(r),
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.result = Some(Err(RunError::RunnerGone))
            }
        }
        true
    }

    /// Waits for the end of the run.
    pub fn wait(mut self) -> Result<RunReport, RunError> {
        self.waited = true;
        match self.result.take() {
            Some(r) => r,
            None => self.rx.recv().unwrap_or(Err(RunError::RunnerGone)),
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.waited && self.result.is_none() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.rx.recv();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_dev;

    #[test]
    fn kernel_dev_converts_the_userspace_encoding() {
        // Literal glibc encodings: 8:1, and 259:70000 (major 0x103, minor 0x11170) whose minor
        // spills into the high bits.
        assert_eq!(kernel_dev(0x801), 8 << 20 | 1);
        assert_eq!(kernel_dev(0x1111_0370), 0x103 << 20 | 0x11170);
        // tmpfs: an anonymous device, major 0.
        assert_eq!(kernel_dev(45), 45);
        for (major, minor) in [
            (0u32, 45u32),
            (7, 0),
            (7, 300),
            (259, 3),
            (254, 0xf_ffff),
            (4095, 1),
        ] {
            assert_eq!(
                kernel_dev(rustix::fs::makedev(major, minor)),
                major << 20 | minor,
                "{major}:{minor}"
            );
        }
    }
}
