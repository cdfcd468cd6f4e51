//! The embedded eBPF object and how each program of it is loaded, per target and attach family.
use std::{collections::BTreeMap, fmt, path::Path};

use aya::{
    programs::{FEntry, FExit, KProbe, ProgramError},
    Btf, Ebpf, EbpfLoader,
};
use serde::{Deserialize, Serialize};
use tracer_common::{Config, Probe};

use crate::btf::SYS_BTF;

/// The object built from tracer-ebpf/ by build.rs.
pub static EBPF_OBJ: &[u8] = aya::include_bytes_aligned!(env!("TRACER_EBPF_OBJ"));

/// Default ring buffer size (bytes, a power of two and a multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 64 << 20;

/// The two ways a target can be traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// fentry/fexit (BPF trampolines; needs BTF for the function, 5.5+)
    Fentry,
    /// kprobe/kretprobe (needs CONFIG_KPROBES and the symbol in available_filter_functions)
    Kprobe,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Fentry => "fentry",
            Family::Kprobe => "kprobe",
        })
    }
}

/// Entry or exit half of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    Entry,
    Exit,
}

/// Which programs go on a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// The recording programs.
    Record,
    /// Programs that return at once: `tracer bench`'s floor, what attaching alone costs.
    Floor,
}

/// Name of the recording program for `probe` in `family`, as it appears in the object.
pub fn program_name(probe: Probe, family: Family, half: Half) -> String {
    body_program_name(probe, family, half, Body::Record)
}

/// Name of the program with `body` for `probe` in `family`, as it appears in the object.
pub fn body_program_name(probe: Probe, family: Family, half: Half, body: Body) -> String {
    let suffix = match (family, half) {
        (Family::Fentry, Half::Entry) => "fentry",
        (Family::Fentry, Half::Exit) => "fexit",
        (Family::Kprobe, Half::Entry) => "kprobe",
        (Family::Kprobe, Half::Exit) => "kretprobe",
    };
    let floor = match body {
        Body::Record => "",
        Body::Floor => "_floor",
    };
    format!("{}_{suffix}{floor}", probe.prog_stem())
}

/// Parses the embedded object with the given configuration; loads nothing into the kernel yet.
pub fn open(config: &Config, ring_bytes: u32) -> Result<Ebpf, aya::EbpfError> {
    configure(EbpfLoader::new(), config, ring_bytes)
}

/// [`open`], for a caller that has parsed `btf` from `path` already.
///
/// aya 0.14's loader has one constructor, and it parses the running kernel's BTF (the
/// object's relocations are made against it) even when the caller hands it one afterwards:
/// most of the object's open, 0.7 s of a TCG guest's time, for types the caller holds. So
/// when `path` is that file, the loader is made where it cannot see it
/// ([`loader_without_sys_btf`]) and handed `btf`, the same bytes parsed the same way. Where
/// that loader cannot be made, or `path` is another file, this is [`open`].
pub fn open_with(
    config: &Config,
    ring_bytes: u32,
    btf: &Btf,
    path: &Path,
) -> Result<Ebpf, aya::EbpfError> {
    let blind: Option<EbpfLoader<'_>> = (path == Path::new(SYS_BTF))
        .then(loader_without_sys_btf)
        .flatten();
    let loader = match blind {
        Some(mut loader) => {
            loader.btf(Some(btf));
            loader
        }
        None => EbpfLoader::new(),
    };
    configure(loader, config, ring_bytes)
}

fn configure<'a>(
    mut loader: EbpfLoader<'a>,
    config: &'a Config,
    ring_bytes: u32,
) -> Result<Ebpf, aya::EbpfError> {
    loader
        .override_global("CONFIG", config, true)
        .map_max_entries("EVENTS", ring_bytes)
        .load(EBPF_OBJ)
}

/// A loader made on a thread whose root directory is [`SYS_BTF`]'s directory, so that its
/// constructor finds no file at that path and parses nothing: the directory holds only files
/// (vmlinux's and the modules' BTF), so no path under that root goes three directories deep.
/// Only that thread moves: `unshare(CLONE_FS)` gives it a root and working directory of its
/// own, which go when it ends; nothing is mounted. None where the thread cannot start or
/// chroot is refused (no CAP_SYS_CHROOT).
pub fn loader_without_sys_btf() -> Option<EbpfLoader<'static>> {
    let dir = Path::new(SYS_BTF).parent()?;
    let thread = std::thread::Builder::new()
        .name("loader".into())
        .spawn(move || {
            // SAFETY: only the root, working directory and umask are unshared; the descriptor
            // table stays shared.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }.ok()?;
            rustix::process::chroot(dir).ok()?;
            Some(EbpfLoader::new())
        })
        .ok()?;
    thread
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Why a program did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    #[error("program {0} is not in the eBPF object")]
    Missing(String),
    #[error("the kernel refused to load {prog}")]
    Refused {
        prog: String,
        #[source]
        source: ProgramError,
    },
}

impl LoadFailure {
    /// The errno of a refused load, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LoadFailure::Refused { source, .. } => program_errno(source),
            LoadFailure::Missing(_) => None,
        }
    }
}

fn program_errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

/// Loads one half of one probe through the kernel's verifier.
pub fn load(
    ebpf: &mut Ebpf,
    probe: Probe,
    family: Family,
    half: Half,
    body: Body,
    btf: &Btf,
) -> Result<(), LoadFailure> {
    let name = body_program_name(probe, family, half, body);
    let prog = ebpf
        .program_mut(&name)
        .ok_or_else(|| LoadFailure::Missing(name.clone()))?;
    let refused = |source| LoadFailure::Refused {
        prog: name.clone(),
        source,
    };
    let sym = probe.symbol();
    match (family, half) {
        (Family::Fentry, Half::Entry) => {
            let p: &mut FEntry = prog.try_into().map_err(refused)?;
            p.load(sym, btf).map_err(refused)
        }
        (Family::Fentry, Half::Exit) => {
            let p: &mut FExit = prog.try_into().map_err(refused)?;
            p.load(sym, btf).map_err(refused)
        }
        (Family::Kprobe, _) => {
            let p: &mut KProbe = prog.try_into().map_err(refused)?;
            p.load().map_err(refused)
        }
    }
}

/// How many times the kernel skipped program `name` because a program of its kind was already
/// running on that CPU (`bpf_prog_info.recursion_misses`, 5.12+). fentry/fexit programs run
/// with migration, not preemption, disabled: on a kernel that preempts kernel code (full or
/// lazy preemption) a program preempted mid-run makes the next task's call to the same
/// function skip it. None when the program is not loaded or the kernel does not say.
pub fn recursion_misses(ebpf: &Ebpf, name: &str) -> Option<u64> {
    use std::os::fd::{AsFd, AsRawFd};

    use aya_obj::generated::bpf_prog_info;

    let fd = ebpf.program(name)?.fd().ok()?;
    let info: bpf_prog_info = obj_info(fd.as_fd().as_raw_fd())?;
    Some(info.recursion_misses)
}

/// The kernel's id of the loaded program `name`.
pub fn program_id(ebpf: &Ebpf, name: &str) -> Option<u32> {
    Some(ebpf.program(name)?.info().ok()?.id())
}

/// Per program id, how many hits the kernel's kprobe layer missed on the kprobe or kretprobe
/// that runs it, for every such bpf_link this process holds: the link info's `missed`
/// (`bpf_link_info.perf_event.kprobe.missed`, filled from 6.7 by "bpf: Add missed value to
/// kprobe perf link info", the series of dd8657894c11; read in 6.12.0's and 7.1.5's
/// `bpf_perf_link_fill_kprobe`, absent from 6.1.0's). For a kprobe it is the kprobe's
/// `nmissed` (a hit while another kprobe's handler ran on that CPU); for a kretprobe, that of
/// its entry kprobe plus the returns it could not hook (no free instance: `maxactive`).
/// Before 6.7 the field reads 0 whatever was missed, so the caller asks only from 6.7.
///
/// aya 0.14 keeps a link's descriptor to itself and its `LinkInfo` exposes no `missed`: the
/// links are found among this process's descriptors (`anon_inode:bpf_link`) and asked with
/// BPF_OBJ_GET_INFO_BY_FD directly. A kprobe attached without a bpf_link (before 5.15 aya
/// attaches through the perf event) has none to ask. Fails only when the descriptors cannot be
/// listed; a link that does not answer is left out.
pub fn kprobe_link_misses() -> std::io::Result<BTreeMap<u32, u64>> {
    use aya_obj::generated::{bpf_link_info, bpf_link_type, bpf_perf_event_type};

    let dir = std::fs::read_dir("/proc/self/fd")?;
    let kprobe = [
        bpf_perf_event_type::BPF_PERF_EVENT_KPROBE as u32,
        bpf_perf_event_type::BPF_PERF_EVENT_KRETPROBE as u32,
    ];
    let mut out = BTreeMap::new();
    for entry in dir.flatten() {
        let is_link = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.as_os_str() == "anon_inode:bpf_link");
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if !is_link {
            continue;
        }
        let Some(info) = obj_info::<bpf_link_info>(fd) else {
            continue;
        };
        if info.type_ != bpf_link_type::BPF_LINK_TYPE_PERF_EVENT as u32 {
            continue;
        }
        // SAFETY: a perf_event link: the kernel filled that member of the union (or left it
        // zero), and every bit pattern of its integers is valid.
        let (kind, missed) = unsafe {
            let perf = info.__bindgen_anon_1.perf_event;
            (perf.type_, perf.__bindgen_anon_1.kprobe.missed)
        };
        if kprobe.contains(&kind) {
            out.insert(info.prog_id, missed);
        }
    }
    Ok(out)
}

/// A `bpf_*_info` the kernel fills in: plain integers, and arrays and unions of them.
///
/// # Safety
/// Every bit pattern must be a valid value (the kernel writes whatever bytes it has), all
/// zero its empty one (no buffer of the kernel's to fill asked for), and the size the
/// kernel's `info_len` for that kind of object.
unsafe trait ObjInfo: Sized {}

// SAFETY: integers and arrays of them; zero asks for no jited or xlated buffers.
unsafe impl ObjInfo for aya_obj::generated::bpf_prog_info {}
// SAFETY: integers and unions of integers; zero asks for no name buffer.
unsafe impl ObjInfo for aya_obj::generated::bpf_link_info {}

/// BPF_OBJ_GET_INFO_BY_FD on `fd` (an object of `T`'s kind); None when the kernel did not
/// answer.
fn obj_info<T: ObjInfo>(fd: std::os::fd::RawFd) -> Option<T> {
    #[repr(C)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let bpf_fd = u32::try_from(fd).ok()?;
    let info_len = u32::try_from(std::mem::size_of::<T>()).ok()?;
    // SAFETY: `ObjInfo`: all zero is a valid, empty `T`.
    let mut info: T = unsafe { std::mem::zeroed() };
    let mut attr = InfoByFd {
        bpf_fd,
        info_len,
        info: std::ptr::addr_of_mut!(info) as u64,
    };
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: `attr` is live and writable, for the kernel writes back into it the length it
    // filled (`info_len`); it points at a live, writable `info` of the length it gives, of
    // which the kernel writes at most that many bytes, any of which make a valid `T`
    // (`ObjInfo`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            std::ptr::addr_of_mut!(attr),
            std::mem::size_of::<InfoByFd>(),
        )
    };
    (rc == 0).then_some(info)
}

/// Is this errno the kernel saying "not allowed here" (lockdown, no tracing programs) rather
/// than the verifier rejecting the program?
pub fn is_permission_refusal(errno: Option<i32>) -> bool {
    errno == Some(libc::EPERM)
}
