//! Kernel side of the tracer: one program pair per target in each attach family.
//!
//! Every call is one event. The entry half (fentry or kprobe) filters by the dentry's file
//! system, counts a hit and writes what it saw into a slot: its CPU's slot for the probe in
//! `CPU_SLOTS` when free, else the calling thread's in `SLOTS`. The exit half (fexit or
//! kretprobe) finds the slot, completes the event there with the state after the call and
//! copies it into the `EVENTS` ring buffer. A call that passed the filter but produced no event
//! (no slot, ring buffer full) is counted in `Counts::drops`, so hits minus drops is what the
//! consumer must have received.
//!
//! Cost, per call: an inlined array lookup and one atomic add take the CPU's slot (no hashing,
//! no insert and delete, each of which would lock a bucket and visit the element free list);
//! one per-CPU map lookup counts the hit and takes the sequence number; the ring's fill level
//! is asked once in `WAKEUP_CHECK_EVERY` events. fentry/fexit programs load struct fields
//! directly through their BTF-typed arguments; kprobe programs read with as few
//! `bpf_probe_read_kernel` calls as the layout allows (see `Mem`).
//!
//! Struct offsets come from the target kernel's BTF through the `CONFIG` load-time global: Rust
//! eBPF has no CO-RE relocations, and the layouts differ between kernels, by version and by
//! configuration. The loader tells the programs whether the layout allows the kprobe family's
//! one-copy reads (`Offsets::check_windows`); any other layout is read field by field.
#![no_std]
#![no_main]
// BPF_XADD: the BPF target has no compare-and-swap, so core's atomics offer no fetch_add.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::{
    ffi::c_void,
    intrinsics::{atomic_xadd, AtomicOrdering},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        bpf_probe_read_kernel, generated,
    },
    macros::{fentry, fexit, kprobe, kretprobe, map},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use tracer_common::{
    flags, Config, Counts, Event, Probe, Source, COUNTERS, DENTRY_SPAN, DENTRY_WINDOW, MAX_DEVS,
    NAME_CAP, QSTR_SIZE,
};

/// Filled in by the loader (aya `EbpfLoader::set_global`) before the programs load.
#[no_mangle]
static CONFIG: Config = Config::ZERO;

/// Completed events. The loader sets the size (`--buffer`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Per CPU: the last `cpu_seq` stamped, and per probe the calls that passed the filter and
/// those that produced no event (no slot, ring buffer full). One element: an event's hit and
/// sequence number cost one lookup (a helper call on kernels before 6.10).
#[map]
static COUNTS: PerCpuArray<Counts> = PerCpuArray::with_max_entries(1, 0);

/// The entry half of a thread's call in flight whose CPU slot was taken, per probe, keyed by
/// `tid << 8 | probe`. Written in place by the entry, disarmed by the exit, kept for the
/// thread's next call (no insert and delete per call). LRU:
/// once the map is full the slots of threads long gone are recycled; an armed one recycled
/// that way is a hit without an event, counted as lost, never silent.
#[map]
static SLOTS: LruHashMap<u64, Slot> = LruHashMap::with_max_entries(16384, 0);

/// Source bytes for a thread's first slot on a probe (the entry overwrites what it uses).
#[map]
static FRESH: PerCpuArray<Slot> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    ev: Event,
    /// `__d_lookup_rcu`'s `seqp` argument, read at return.
    seqp: u64,
    /// Set by the entry half, cleared by the exit half: an exit without its entry (attached
    /// mid-call) emits nothing. In `CPU_SLOTS`, a claim count (see `claim`); 64 bits, the
    /// only width of BPF atomics.
    armed: u64,
    /// In `CPU_SLOTS`: the thread holding the slot, 0 when none.
    owner: u32,
    _pad: u32,
    /// Which call of the thread the entry half belongs to (`Call::id`).
    call: u64,
}

/// What tells one call of a probe on a thread from another: an exit whose entry ran takes its
/// own slot and no other, and an entry whose exit never ran (a kretprobe without a free
/// instance, an fexit skipped by recursion protection) is found stale instead of paired with a
/// later call's exit. A thread has one call of a probe in flight, except when the function
/// nests in itself through a stacked file system (`dentry_unlink_inode` → `iput` → evict →
/// overlayfs' `ovl_destroy_inode` → `dput` → `__dentry_kill` → `dentry_unlink_inode` of the
/// upper dentry), so "the thread's slot" is not enough.
#[derive(Clone, Copy)]
struct Call {
    /// kprobe family: the stack pointer at the function's entry (the kretprobe sees it one
    /// return address higher); fentry family: the argument the exit sees again (the dentry, or
    /// a lookup's qstr).
    id: u64,
    /// `id` is a stack pointer: calls nest downwards, so a slot at or below a new entry's is
    /// from a call that returned unseen, and one below an exit's is a nested call that did.
    stack: bool,
    /// Lookups in the fentry family: the parent, checked with the qstr (0: none to check).
    parent: u64,
}

impl Call {
    /// kprobe/kretprobe: the stack pointer in the probe's registers.
    #[inline(always)]
    fn stack(regs: *mut aya_ebpf::bindings::pt_regs) -> Call {
        // SAFETY: the program's context; the verifier checks the load.
        let sp = unsafe { (*regs).rsp };
        Call {
            id: sp,
            stack: true,
            parent: 0,
        }
    }

    /// fentry/fexit: an argument the exit sees again.
    #[inline(always)]
    fn arg(id: u64, parent: u64) -> Call {
        Call {
            id,
            stack: false,
            parent,
        }
    }

    /// At this call's entry: the thread's slot `s` holds a call that can no longer be in
    /// flight (its frame is at or below ours, or it is this very call again).
    #[inline(always)]
    fn outlived(&self, s: &Slot) -> bool {
        if self.stack {
            s.call <= self.id
        } else {
            s.call == self.id
        }
    }

    /// At this call's exit: how the thread's slot `s` relates to it.
    #[inline(always)]
    fn meets(&self, s: &Slot) -> Meets {
        if self.stack {
            // The kretprobe's stack pointer is the entry's plus the popped return address.
            if s.call > self.id {
                Meets::Other
            } else if s.call + 8 >= self.id {
                Meets::Mine
            } else {
                Meets::Stale
            }
        } else if s.call == self.id && (self.parent == 0 || s.ev.parent == self.parent) {
            Meets::Mine
        } else {
            Meets::Other
        }
    }
}

/// A slot of the thread's, seen from an exit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Meets {
    /// This call's entry (or, of several, the newest: the others returned unseen).
    Mine,
    /// A call nested in this one that returned unseen.
    Stale,
    /// A call in flight around this one, or one that returned unseen above it.
    Other,
}

/// CPUs with a row in `CPU_SLOTS`; calls on higher-numbered CPUs use `SLOTS` alone.
const MAX_CPUS: u32 = 256;

/// The fast path for the entry half of a call in flight: a slot per CPU and probe, at index
/// `cpu * COUNTERS + probe` of an array (whose lookups the verifier inlines: no helper call,
/// no hashing). A call's entry claims its CPU's slot when it is free, else (a call in flight
/// there was preempted) uses the thread's slot in `SLOTS`. The exit looks in `SLOTS` and in
/// every CPU's row (it may have migrated) and takes the newest slot its `Call` matches.
/// Claims are atomic: programs of different tasks can interleave on one CPU on preemptible
/// kernels. Only the holder writes a held slot, and it clears `owner` before releasing, so
/// `owner == tid` means "mine" wherever it is read.
#[map]
static CPU_SLOTS: Array<Slot> = Array::with_max_entries(MAX_CPUS * COUNTERS, 0);

/// Per probe, the `SLOTS` slots armed (by any thread): while none is, an exit need not look
/// for its own there (a hash lookup). One a recycled or never-released slot leaves counted
/// only makes exits look.
#[map]
static ARMED_THREAD_SLOTS: Array<u64> = Array::with_max_entries(COUNTERS, 0);

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

/// How often (in a CPU's events, by `cpu_seq`) the exit asks the ring how full it is: a helper
/// call per event otherwise. Between checks it submits without waking the consumer, which also
/// drains every 10 ms; a wakeup is late by at most this many events per CPU (10 KB), against
/// a threshold of a megabyte in a ring of 64 by default.
const WAKEUP_CHECK_EVERY: u32 = 64;

/// One field of `CONFIG`. A volatile read keeps the compiler from folding the zero initialiser
/// into the code (the loader rewrites it), without copying the whole struct per program.
macro_rules! cfg {
    ($($f:tt).+) => {{
        // Expanded inside unsafe blocks too, where its own block is redundant.
        #[allow(unused_unsafe)]
        // SAFETY: a field of a plain global.
        let v = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(CONFIG.$($f).+)) };
        v
    }};
}

/// This CPU's counters.
#[inline(always)]
fn counts() -> Option<&'static mut Counts> {
    // SAFETY: per-CPU value, no concurrent writer on this CPU while the program runs.
    COUNTS.get_ptr_mut(0).map(|c| unsafe { &mut *c })
}

/// Counts a call that passed the filter but produced no event.
#[inline(always)]
fn drop_event(probe: Probe) {
    if let Some(d) = counts().and_then(|c| c.drops.get_mut(probe.counter_index() as usize)) {
        *d += 1;
    }
}

/// Counts an exit that found no entry of its call, on a traced file system: a call whose entry
/// program the kernel skipped, which took no number and counted no hit, so that only this
/// count shows it.
#[inline(always)]
fn orphan_exit(probe: Probe) {
    if let Some(o) = counts().and_then(|c| c.orphan_exits.get_mut(probe.counter_index() as usize)) {
        *o += 1;
    }
}

/// Counts a call that passed the filter and returns its `cpu_seq`: taken before the call can
/// fail to produce an event, so that every such failure leaves a hole in its CPU's numbers.
/// Per-CPU and not atomic: two programs interleaved on one CPU (a preemptible kernel) could
/// take one number twice and skip one, which reads as a loss, never as none.
#[inline(always)]
fn hit(probe: Probe) -> u32 {
    let Some(c) = counts() else {
        return 0;
    };
    if let Some(h) = c.hits.get_mut(probe.counter_index() as usize) {
        *h += 1;
    }
    c.seq += 1;
    c.seq as u32
}

#[inline(always)]
fn key(pid_tgid: u64, probe: Probe) -> u64 {
    ((pid_tgid & 0xffff_ffff) << 8) | probe as u64
}

#[inline(always)]
unsafe fn read<T>(base: u64, off: u32) -> Option<T> {
    bpf_probe_read_kernel((base + off as u64) as *const T).ok()
}

/// The word of a window that holds byte `off`: chosen by comparisons rather than an index, so
/// the verifier sees only fixed stack offsets.
#[inline(always)]
fn word<const N: usize>(words: &[u64; N], off: u32) -> u64 {
    let mut w = words[0];
    let mut i = 1;
    while i < N {
        if off as usize >= i * 8 {
            w = words[i];
        }
        i += 1;
    }
    w
}

/// The 4 bytes at `off` (4-aligned) of a window read as little-endian words.
#[inline(always)]
fn u32_at<const N: usize>(words: &[u64; N], off: u32) -> u32 {
    (word(words, off) >> ((off % 8) * 8)) as u32
}

/// What the probes read of a dentry's head: `d_flags`, `d_seq`, and whether `d_hash.pprev` is
/// set (the dentry is hashed).
struct Head {
    flags: u32,
    seq: u32,
    hashed: bool,
}

/// A `struct qstr`.
struct Qstr {
    hash: u32,
    len: u32,
    name: u64,
}

/// What a writer's entry reads of its dentry besides the name's bytes.
struct Dentry {
    parent: u64,
    head: Head,
    inode: u64,
    name: Qstr,
}

/// How a program reads kernel structs. `None` is a read that faulted.
trait Mem {
    /// The pointer-sized field at `off`.
    fn ptr(base: u64, off: u32) -> Option<u64>;
    /// The 4-byte field at `off`.
    fn u32(base: u64, off: u32) -> Option<u32>;
    fn head(dentry: u64) -> Option<Head>;
    fn qstr(qstr: u64) -> Option<Qstr>;

    /// A writer's dentry at entry: `d_parent`, the head, `d_inode`, `d_name`.
    #[inline(always)]
    fn dentry(dentry: u64) -> Option<Dentry> {
        let d_name: u32 = cfg!(offsets.d_name);
        Some(Dentry {
            parent: Self::ptr(dentry, cfg!(offsets.d_parent))?,
            head: Self::head(dentry)?,
            inode: Self::ptr(dentry, cfg!(offsets.d_inode))?,
            name: Self::qstr(dentry + d_name as u64)?,
        })
    }

    /// A writer's dentry at exit: the head, then `d_inode`.
    #[inline(always)]
    fn state(dentry: u64) -> Option<(Head, u64)> {
        Some((
            Self::head(dentry)?,
            Self::ptr(dentry, cfg!(offsets.d_inode))?,
        ))
    }
}

/// fentry/fexit programs get BTF-typed pointers and load struct fields directly: the verifier
/// checks each load against the kernel's BTF (the offsets are constants to it, `CONFIG` being
/// frozen read-only data) and turns a faulting one into a zero. No helper call per field.
struct Btf;

impl Mem for Btf {
    #[inline(always)]
    fn ptr(base: u64, off: u32) -> Option<u64> {
        // SAFETY: a BTF-typed load; the verifier checked it and a fault reads zero.
        Some(unsafe { core::ptr::read_volatile((base + off as u64) as *const u64) })
    }

    #[inline(always)]
    fn u32(base: u64, off: u32) -> Option<u32> {
        // SAFETY: as above.
        Some(unsafe { core::ptr::read_volatile((base + off as u64) as *const u32) })
    }

    #[inline(always)]
    fn head(dentry: u64) -> Option<Head> {
        Some(Head {
            flags: Self::u32(dentry, cfg!(offsets.d_flags))?,
            seq: Self::u32(dentry, cfg!(offsets.d_seq))?,
            hashed: Self::ptr(dentry, cfg!(offsets.d_hash_pprev))? != 0,
        })
    }

    #[inline(always)]
    fn qstr(qstr: u64) -> Option<Qstr> {
        Some(Qstr {
            hash: Self::u32(qstr, cfg!(offsets.qstr_hash))?,
            len: Self::u32(qstr, cfg!(offsets.qstr_len))?,
            name: Self::ptr(qstr, cfg!(offsets.qstr_name))?,
        })
    }
}

/// kprobe/kretprobe programs get plain numbers and copy through `bpf_probe_read_kernel`: the
/// head of a dentry (`d_flags`, `d_seq`, `d_hash`) and a whole qstr in one call each where the
/// layout allows it (`CONFIG.fast_reads`), else one call per field.
struct Probed;

impl Mem for Probed {
    #[inline(always)]
    fn ptr(base: u64, off: u32) -> Option<u64> {
        // SAFETY: the helper faults safely.
        unsafe { read::<u64>(base, off) }
    }

    #[inline(always)]
    fn u32(base: u64, off: u32) -> Option<u32> {
        // SAFETY: as above.
        unsafe { read::<u32>(base, off) }
    }

    #[inline(always)]
    fn head(dentry: u64) -> Option<Head> {
        let fast: u32 = cfg!(fast_reads);
        if fast == 0 {
            return Some(Head {
                flags: Self::u32(dentry, cfg!(offsets.d_flags))?,
                seq: Self::u32(dentry, cfg!(offsets.d_seq))?,
                hashed: Self::ptr(dentry, cfg!(offsets.d_hash_pprev))? != 0,
            });
        }
        // SAFETY: as above.
        let w = unsafe { read::<[u64; DENTRY_WINDOW / 8]>(dentry, 0) }?;
        let pprev: u32 = cfg!(offsets.d_hash_pprev);
        Some(Head {
            flags: u32_at(&w, cfg!(offsets.d_flags)),
            seq: u32_at(&w, cfg!(offsets.d_seq)),
            hashed: word(&w, pprev) != 0,
        })
    }

    #[inline(always)]
    fn qstr(qstr: u64) -> Option<Qstr> {
        let fast: u32 = cfg!(fast_reads);
        if fast == 0 {
            return Some(Qstr {
                hash: Self::u32(qstr, cfg!(offsets.qstr_hash))?,
                len: Self::u32(qstr, cfg!(offsets.qstr_len))?,
                name: Self::ptr(qstr, cfg!(offsets.qstr_name))?,
            });
        }
        // SAFETY: as above.
        let w = unsafe { read::<[u64; QSTR_SIZE / 8]>(qstr, 0) }?;
        let name: u32 = cfg!(offsets.qstr_name);
        Some(Qstr {
            hash: u32_at(&w, cfg!(offsets.qstr_hash)),
            len: u32_at(&w, cfg!(offsets.qstr_len)),
            name: word(&w, name),
        })
    }

    /// One copy of the dentry's first `DENTRY_SPAN` bytes where the layout allows it, instead
    /// of five: the head, `d_parent`, `d_name` and `d_inode` all lie in it.
    #[inline(always)]
    fn dentry(dentry: u64) -> Option<Dentry> {
        let fast: u32 = cfg!(fast_reads);
        let d_name: u32 = cfg!(offsets.d_name);
        if fast == 0 {
            return Some(Dentry {
                parent: Self::ptr(dentry, cfg!(offsets.d_parent))?,
                head: Self::head(dentry)?,
                inode: Self::ptr(dentry, cfg!(offsets.d_inode))?,
                name: Self::qstr(dentry + d_name as u64)?,
            });
        }
        let w = span(dentry)?;
        let (parent, inode): (u32, u32) = (cfg!(offsets.d_parent), cfg!(offsets.d_inode));
        let (hash, len, name): (u32, u32, u32) = (
            cfg!(offsets.qstr_hash),
            cfg!(offsets.qstr_len),
            cfg!(offsets.qstr_name),
        );
        Some(Dentry {
            parent: word(&w, parent),
            head: span_head(&w),
            inode: word(&w, inode),
            name: Qstr {
                hash: u32_at(&w, d_name + hash),
                len: u32_at(&w, d_name + len),
                name: word(&w, d_name + name),
            },
        })
    }

    /// One copy for the head and `d_inode` where the layout allows it (the head's fields come
    /// first in the dentry, so they are read before `d_inode`, as field by field).
    #[inline(always)]
    fn state(dentry: u64) -> Option<(Head, u64)> {
        let fast: u32 = cfg!(fast_reads);
        if fast == 0 {
            return Some((
                Self::head(dentry)?,
                Self::ptr(dentry, cfg!(offsets.d_inode))?,
            ));
        }
        let w = span(dentry)?;
        let inode: u32 = cfg!(offsets.d_inode);
        Some((span_head(&w), word(&w, inode)))
    }
}

/// The dentry's first `DENTRY_SPAN` bytes, in one helper call.
#[inline(always)]
fn span(dentry: u64) -> Option<[u64; DENTRY_SPAN / 8]> {
    // SAFETY: the helper faults safely.
    unsafe { read::<[u64; DENTRY_SPAN / 8]>(dentry, 0) }
}

/// The head's fields out of a `span`.
#[inline(always)]
fn span_head(w: &[u64; DENTRY_SPAN / 8]) -> Head {
    let pprev: u32 = cfg!(offsets.d_hash_pprev);
    Head {
        flags: u32_at(w, cfg!(offsets.d_flags)),
        seq: u32_at(w, cfg!(offsets.d_seq)),
        hashed: word(w, pprev) != 0,
    }
}

/// Does the dentry live on one of the traced file systems?
#[inline(always)]
fn dev_allowed<M: Mem>(dentry: u64) -> bool {
    if dentry == 0 {
        return false;
    }
    let devs: [u32; MAX_DEVS] = cfg!(devs);
    if devs.iter().all(|d| *d == 0) {
        return true;
    }
    let dev = match M::ptr(dentry, cfg!(offsets.d_sb)) {
        Some(sb) if sb != 0 => match M::u32(sb, cfg!(offsets.sb_s_dev)) {
            Some(d) => d,
            None => return false,
        },
        _ => return false,
    };
    devs.iter().any(|d| *d != 0 && *d == dev)
}

/// Copies a `struct qstr` (hash, len, name), read by the caller, into the event. The name is
/// not NUL-terminated (a lookup's qstr points into the whole path), so only `len` bytes count.
#[inline(always)]
fn read_name(ev: &mut Event, qstr: Option<Qstr>) {
    let Some(q) = qstr else {
        ev.flags |= flags::READ_FAULT;
        ev.name_len = 0;
        return;
    };
    ev.name_hash = q.hash;
    ev.name_len = q.len;
    if q.len as usize > NAME_CAP {
        ev.flags |= flags::NAME_TRUNCATED;
    }
    // Of four constant sizes, the smallest that holds `len` (the helper copies a word a step,
    // and most names are short): the verifier cannot bound a size derived from `len` once LLVM
    // has reused the unbounded register. Bytes past `len` are cut by userspace. Names live in
    // the dentry (d_iname) or in a path buffer in the direct map, so reading past them stays
    // mapped.
    let (dst, src) = (ev.name.as_mut_ptr() as *mut c_void, q.name as *const c_void);
    // SAFETY: the destination is NAME_CAP bytes, each size at most that.
    let rc = unsafe {
        if q.len <= 8 {
            generated::bpf_probe_read_kernel(dst, 8, src)
        } else if q.len <= 16 {
            generated::bpf_probe_read_kernel(dst, 16, src)
        } else if q.len <= 32 {
            generated::bpf_probe_read_kernel(dst, 32, src)
        } else {
            generated::bpf_probe_read_kernel(dst, NAME_CAP as u32, src)
        }
    };
    if rc != 0 {
        ev.flags |= flags::READ_FAULT;
    }
}

/// The calling thread's slot for `probe` in `SLOTS`, made on its first call there.
#[inline(always)]
fn thread_slot(probe: Probe, pid_tgid: u64) -> Option<&'static mut Slot> {
    let k = key(pid_tgid, probe);
    if let Some(p) = SLOTS.get_ptr_mut(k) {
        // SAFETY: only this thread uses this key, and not re-entrantly.
        return Some(unsafe { &mut *p });
    }
    // SAFETY: a map value; its bytes are only a template.
    let fresh: &Slot = unsafe { &*FRESH.get_ptr(0)? };
    SLOTS.insert(k, fresh, BPF_NOEXIST as u64).ok()?;
    // SAFETY: as above.
    SLOTS.get_ptr_mut(k).map(|p| unsafe { &mut *p })
}

/// `CPU_SLOTS`' slot of `cpu` for `probe`, for CPUs that have a row.
#[inline(always)]
fn cpu_slot(cpu: u32, probe: Probe) -> Option<&'static mut Slot> {
    if cpu >= MAX_CPUS {
        return None;
    }
    let p = CPU_SLOTS.get_ptr_mut(cpu * COUNTERS + probe.counter_index())?;
    // SAFETY: a map value; who may write it is `CPU_SLOTS`' protocol.
    Some(unsafe { &mut *p })
}

/// Adds `v` (wrapping) to a slot's claim count atomically.
#[inline(always)]
fn add_claims(s: &mut Slot, v: u64) {
    add(&mut s.armed, v);
}

/// Adds `v` (wrapping) to a counter other CPUs also write.
#[inline(always)]
fn add(counter: &mut u64, v: u64) {
    // SAFETY: an aligned u64 of map memory; every writer goes through here.
    unsafe {
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(core::ptr::addr_of_mut!(*counter), v)
    };
}

/// Counts a `SLOTS` slot of `probe` armed (`v` 1) or released (`v` `u64::MAX`).
#[inline(always)]
fn count_thread_slot(probe: Probe, v: u64) {
    if let Some(p) = ARMED_THREAD_SLOTS.get_ptr_mut(probe.counter_index()) {
        // SAFETY: a map value, written only through `add`.
        add(unsafe { &mut *p }, v);
    }
}

/// Whether any thread's `SLOTS` slot for `probe` may be armed.
#[inline(always)]
fn thread_slots_armed(probe: Probe) -> bool {
    match ARMED_THREAD_SLOTS.get_ptr(probe.counter_index()) {
        // SAFETY: a map value; a volatile read of a counter other CPUs write.
        Some(p) => (unsafe { core::ptr::read_volatile(p) }) != 0,
        None => true,
    }
}

/// A slot holding (or about to hold) the entry half of a call, and which kind it is.
struct Held {
    slot: &'static mut Slot,
    /// In `CPU_SLOTS` (claimed, released by count), not the thread's own in `SLOTS`.
    cpu: bool,
}

/// A slot for the entry half of this call: its CPU's, when no other call holds it or the
/// thread's own there is stale, else the thread's. A stale slot taken over, or the thread's
/// slot still armed (stale, or a third call nested in two), held a call that will produce no
/// event: counted as a drop, so that hits minus drops stays what the consumer receives.
#[inline(always)]
fn claim(probe: Probe, pid_tgid: u64, cpu: u32, call: &Call) -> Option<Held> {
    if let Some(s) = cpu_slot(cpu, probe) {
        // Take a ticket, then look: the one who finds it alone holds the slot; the others
        // give theirs back. No two can both see 1.
        add_claims(s, 1);
        // SAFETY: a field another CPU may write.
        if unsafe { core::ptr::read_volatile(&s.armed) } == 1 {
            return Some(Held { slot: s, cpu: true });
        }
        add_claims(s, u64::MAX);
        // SAFETY: as above; only the holder writes `owner` and `call`.
        let mine = unsafe { core::ptr::read_volatile(&s.owner) } == tid(pid_tgid);
        if mine && call.outlived(s) {
            // Ours already (its ticket still counts): the call it held returned unseen.
            drop_event(probe);
            return Some(Held { slot: s, cpu: true });
        }
    }
    let slot = thread_slot(probe, pid_tgid)?;
    if slot.armed != 0 {
        drop_event(probe);
    }
    Some(Held { slot, cpu: false })
}

#[inline(always)]
fn tid(pid_tgid: u64) -> u32 {
    (pid_tgid & 0xffff_ffff) as u32
}

/// Marks the entry half complete: a `CPU_SLOTS` slot gets its owner (written last, so the
/// owner finding it finds the rest), the thread's slot is armed.
#[inline(always)]
fn arm(probe: Probe, h: Held, pid_tgid: u64, call: &Call) {
    h.slot.call = call.id;
    if h.cpu {
        // SAFETY: our own claimed slot.
        unsafe { core::ptr::write_volatile(&mut h.slot.owner, tid(pid_tgid)) };
    } else {
        if h.slot.armed == 0 {
            count_thread_slot(probe, 1);
        }
        h.slot.armed = 1;
    }
}

/// Where a slot of the thread's is: the thread's own in `SLOTS`, or a CPU's.
const IN_SLOTS: u32 = u32::MAX;
/// No slot.
const NOWHERE: u32 = u32::MAX - 1;

/// The newest slot `held` has met as its call's: where, and its entry's time.
struct Best {
    at: u32,
    ts: u64,
}

/// The slot holding the entry half of this call, if its entry was seen: of the thread's slots
/// for the probe that `call` meets as its own, the newest (the others returned unseen), looked
/// for in every place one can be (this CPU's slot, the thread's, every CPU's after a
/// migration). Every stale one met on the way is released and counted as a drop.
#[inline(always)]
fn held(probe: Probe, pid_tgid: u64, call: &Call) -> Option<Held> {
    let tid = tid(pid_tgid);
    // The newest of ours so far: where (`NOWHERE` for none), and its entry's time. Plain
    // scalars, all initialised: an `Option`'s undefined payload becomes a register the
    // verifier refuses to read, and a pointer would keep its states from merging in the scan.
    let mut best = Best { at: NOWHERE, ts: 0 };
    let in_slots = if thread_slots_armed(probe) {
        SLOTS.get_ptr_mut(key(pid_tgid, probe))
    } else {
        None
    };
    if let Some(p) = in_slots {
        // SAFETY: only this thread uses this key.
        let s = unsafe { &mut *p };
        if s.armed != 0 {
            consider(
                probe,
                pid_tgid,
                call,
                &mut best,
                IN_SLOTS,
                Held {
                    slot: s,
                    cpu: false,
                },
            );
        }
    }
    let cpus: u32 = cfg!(cpus);
    let mut c = 0;
    while c < MAX_CPUS {
        if c >= cpus {
            break;
        }
        if let Some(s) = cpu_slot(c, probe) {
            // SAFETY: volatile read of a field another CPU may write.
            if unsafe { core::ptr::read_volatile(&s.owner) } == tid {
                consider(
                    probe,
                    pid_tgid,
                    call,
                    &mut best,
                    c,
                    Held { slot: s, cpu: true },
                );
            }
        }
        c += 1;
    }
    if best.at == NOWHERE {
        return None;
    }
    slot_at(probe, pid_tgid, best.at)
}

/// One of the thread's slots met by `held`: kept as the newest of this call's so far, or
/// released as stale (a nested call's, or an older one's that `call` also meets as its own).
#[inline(always)]
fn consider(probe: Probe, pid_tgid: u64, call: &Call, best: &mut Best, at: u32, h: Held) {
    match call.meets(h.slot) {
        Meets::Other => {}
        Meets::Stale => release_stale(probe, h),
        Meets::Mine => {
            let ts = h.slot.ev.ts_begin;
            if best.at != NOWHERE && best.ts > ts {
                release_stale(probe, h);
                return;
            }
            if best.at != NOWHERE {
                if let Some(old) = slot_at(probe, pid_tgid, best.at) {
                    release_stale(probe, old);
                }
            }
            best.at = at;
            best.ts = ts;
        }
    }
}

/// The thread's slot at `at` (`IN_SLOTS` or a CPU), found by `held`.
#[inline(always)]
fn slot_at(probe: Probe, pid_tgid: u64, at: u32) -> Option<Held> {
    if at == IN_SLOTS {
        // SAFETY: only this thread uses this key.
        let slot = unsafe { &mut *SLOTS.get_ptr_mut(key(pid_tgid, probe))? };
        return Some(Held { slot, cpu: false });
    }
    cpu_slot(at, probe).map(|slot| Held { slot, cpu: true })
}

/// Releases a slot whose call returned without its exit: a hit without an event.
#[inline(always)]
fn release_stale(probe: Probe, h: Held) {
    release(probe, h);
    drop_event(probe);
}

/// Gives a slot back once its event is copied out: a `CPU_SLOTS` one becomes claimable.
#[inline(always)]
fn release(probe: Probe, h: Held) {
    if h.cpu {
        // SAFETY: our own held slot; no longer "mine" to anyone from here.
        unsafe { core::ptr::write_volatile(&mut h.slot.owner, 0) };
        add_claims(h.slot, u64::MAX);
    } else {
        h.slot.armed = 0;
        count_thread_slot(probe, u64::MAX);
    }
}

/// Starts the event in the slot with what every probe records; every field is written, so
/// nothing of the thread's previous call survives.
#[inline(always)]
fn begin(s: &mut Slot, probe: Probe, source: Source, pid_tgid: u64, cpu: u32, seq: u32) {
    // SAFETY: helper with no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let ev = &mut s.ev;
    // Volatile stores: LLVM would merge plain zero stores into a memset call, which BPF
    // cannot make. `name` is not cleared: `name_len` bounds it and userspace cuts to it.
    macro_rules! set {
        ($field:expr, $v:expr) => {
            // SAFETY: a field of the slot we own.
            unsafe { core::ptr::write_volatile(&mut $field, $v) }
        };
    }
    set!(ev.ts_begin, now);
    set!(ev.ts_end, 0);
    set!(ev.dentry, 0);
    set!(ev.parent, 0);
    set!(ev.inode_begin, 0);
    set!(ev.inode_end, 0);
    set!(ev.tid, (pid_tgid & 0xffff_ffff) as u32);
    set!(ev.cpu, cpu);
    set!(ev.probe, probe as u8);
    set!(ev.source, source as u8);
    set!(ev.flags, 0);
    set!(ev.seq_begin, 0);
    set!(ev.seq_end, 0);
    set!(ev.aux, 0);
    set!(ev.name_hash, 0);
    set!(ev.name_len, 0);
    set!(ev.result, 0);
    set!(ev.cpu_seq, seq);
    set!(s.seqp, 0);
}

/// Entry half of `__d_lookup_rcu(parent, name, seqp)` and `__d_lookup(parent, name)`.
#[inline(always)]
fn lookup_entry<M: Mem>(
    probe: Probe,
    source: Source,
    call: Call,
    parent: u64,
    qstr: u64,
    seqp: u64,
) {
    if !dev_allowed::<M>(parent) {
        return;
    }
    let seq = hit(probe);
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: helper with no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(h) = claim(probe, pid_tgid, cpu, &call) else {
        drop_event(probe);
        return;
    };
    let s = &mut *h.slot;
    begin(s, probe, source, pid_tgid, cpu, seq);
    s.ev.parent = parent;
    read_name(&mut s.ev, M::qstr(qstr));
    s.seqp = seqp;
    arm(probe, h, pid_tgid, &call);
}

/// Wake the consumer on every event (`wakeup_bytes` 0), or once the ring holds more than the
/// threshold, looked at in one event of a CPU's `WAKEUP_CHECK_EVERY` (by its `cpu_seq`).
#[inline(always)]
fn wakeup_flags(cpu_seq: u32) -> u64 {
    let threshold: u64 = cfg!(wakeup_bytes);
    if threshold == 0 {
        return 0;
    }
    if !cpu_seq.is_multiple_of(WAKEUP_CHECK_EVERY) {
        return BPF_RB_NO_WAKEUP;
    }
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Completes the call's event in its slot (`fill` gets the slot's `seqp`), copies it into a
/// record reserved in the ring buffer, releases the slot. False when no slot holds the call's
/// entry (its entry program did not run, or the probe was attached mid-call).
#[inline(always)]
fn finish(probe: Probe, call: Call, fill: impl FnOnce(&mut Event, u64)) -> bool {
    let Some(h) = held(probe, bpf_get_current_pid_tgid(), &call) else {
        return false;
    };
    let s = &mut *h.slot;
    // SAFETY: helper with no preconditions.
    s.ev.ts_end = unsafe { bpf_ktime_get_ns() };
    fill(&mut s.ev, s.seqp);
    let wakeup = wakeup_flags(s.ev.cpu_seq);
    // Reserved and copied here rather than by `bpf_ringbuf_output`, whose kernel `memcpy` is a
    // `rep movsb` on CPUs with ERMS: QEMU's instruction count (the bench's clock) counts it a
    // step per byte, where the program copies a word a load. On hardware the two are close.
    let sent = match EVENTS.reserve::<Event>(0) {
        Some(mut rec) => {
            // SAFETY: both are `Event`s, 8-aligned, in different maps.
            unsafe { core::ptr::copy_nonoverlapping(&s.ev, rec.as_mut_ptr(), 1) };
            rec.submit(wakeup);
            true
        }
        None => false,
    };
    // Only once it is copied out: a released CPU slot can be claimed at once.
    release(probe, h);
    if !sent {
        drop_event(probe);
    }
    true
}

/// Exit half of the lookups: `*seqp`, then `d_inode`, then `d_seq` again (with `d_flags` and
/// `d_hash.pprev`), in that order, so `validated` is the check the caller (`step_into` on 6.x)
/// would make. `seqp` points at an int, which no BTF type lets a program load directly.
/// False when no slot held the call's entry.
#[inline(always)]
fn lookup_exit<M: Mem>(probe: Probe, call: Call, ret: u64) -> bool {
    finish(
        probe,
        call,
        #[inline(always)]
        |ev, seqp| {
            ev.dentry = ret;
            if ret == 0 {
                return;
            }
            let seq = if probe == Probe::DLookupRcu {
                // SAFETY: the helper faults safely.
                unsafe { read::<u32>(seqp, 0) }
            } else {
                M::u32(ret, cfg!(offsets.d_seq))
            };
            let inode = M::ptr(ret, cfg!(offsets.d_inode));
            let head = M::head(ret);
            match (seq, inode, head) {
                (Some(seq), Some(inode), Some(head)) => {
                    ev.seq_begin = seq;
                    ev.inode_begin = inode;
                    ev.inode_end = inode;
                    ev.seq_end = head.seq;
                    ev.aux = head.flags;
                    if seq == head.seq {
                        ev.flags |= flags::VALIDATED;
                    }
                    if head.hashed {
                        ev.flags |= flags::HASHED_BEGIN | flags::HASHED_END;
                    }
                }
                _ => ev.flags |= flags::READ_FAULT,
            }
        },
    )
}

/// kretprobe half of a lookup. An exit without its entry whose returned dentry is on a traced
/// file system is a call whose entry program `trace_call_bpf` passed over (`bpf_prog_active`
/// held) while its exit ran, or whose slot was lost: counted, not silent. A kprobe missed by
/// reentrancy hooks no return either (one probe to the kernel), so it never shows here. A
/// call in flight when the probes attached is never among them: the loader attaches the entry
/// before the exit, and a kretprobe hooks only the returns of calls entered after it
/// registered. The device filter is the entry's (the parent's file system is the dentry's);
/// a lookup that returned nothing cannot be placed.
#[inline(always)]
fn kretprobe_lookup_exit(probe: Probe, ctx: &RetProbeContext) {
    let ret: u64 = ctx.ret();
    if !lookup_exit::<Probed>(probe, Call::stack(ctx.regs), ret) && dev_allowed::<Probed>(ret) {
        orphan_exit(probe);
    }
}

/// Entry half of the writers: the dentry's name, `d_seq`, `d_inode`, hashed, `d_flags`.
#[inline(always)]
fn writer_entry<M: Mem>(probe: Probe, source: Source, call: Call, dentry: u64) {
    if !dev_allowed::<M>(dentry) {
        return;
    }
    let seq = hit(probe);
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: helper with no preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(h) = claim(probe, pid_tgid, cpu, &call) else {
        drop_event(probe);
        return;
    };
    let s = &mut *h.slot;
    begin(s, probe, source, pid_tgid, cpu, seq);
    let ev = &mut s.ev;
    ev.dentry = dentry;
    match M::dentry(dentry) {
        Some(d) => {
            ev.parent = d.parent;
            ev.seq_begin = d.head.seq;
            ev.inode_begin = d.inode;
            ev.aux = d.head.flags;
            if d.head.hashed {
                ev.flags |= flags::HASHED_BEGIN;
            }
            read_name(ev, Some(d.name));
        }
        None => read_name(ev, None),
    }
    arm(probe, h, pid_tgid, &call);
}

/// Exit half of the writers: `d_seq`, `d_inode` and hashed after the call. `dentry` is the
/// argument again (fexit sees it, typed), or `None` to take the one the entry stashed.
#[inline(always)]
fn writer_exit<M: Mem>(probe: Probe, call: Call, dentry: Option<u64>) {
    finish(
        probe,
        call,
        #[inline(always)]
        |ev, _| {
            let d = dentry.unwrap_or(ev.dentry);
            match M::state(d) {
                Some((head, inode)) => {
                    ev.seq_end = head.seq;
                    ev.inode_end = inode;
                    if head.hashed {
                        ev.flags |= flags::HASHED_END;
                    }
                }
                _ => ev.flags |= flags::READ_FAULT,
            }
        },
    );
}

// fentry/fexit family. fexit sees the arguments followed by the return value.

/// fentry half of a writer of `dentry`: the dentry tells its call from another.
#[inline(always)]
fn fentry_writer(probe: Probe, dentry: u64) {
    writer_entry::<Btf>(probe, Source::FEntry, Call::arg(dentry, 0), dentry);
}

/// fexit half of a writer of `dentry`.
#[inline(always)]
fn fexit_writer(probe: Probe, dentry: u64) {
    writer_exit::<Btf>(probe, Call::arg(dentry, 0), Some(dentry));
}

#[fentry(function = "__d_lookup_rcu")]
pub fn lookup_rcu_fentry(ctx: FEntryContext) -> i32 {
    let (parent, name) = (ctx.arg(0), ctx.arg(1));
    let call = Call::arg(name, parent);
    lookup_entry::<Btf>(
        Probe::DLookupRcu,
        Source::FEntry,
        call,
        parent,
        name,
        ctx.arg(2),
    );
    0
}

#[fexit(function = "__d_lookup_rcu")]
pub fn lookup_rcu_fexit(ctx: FExitContext) -> i32 {
    // fexit sees the arguments, then the return value. Every kernel with fexit (5.5+) has the
    // 3-argument __d_lookup_rcu (3.5 dropped the inode pointer); the loader checks BTF, and
    // the context offset must be a constant for the verifier.
    lookup_exit::<Btf>(
        Probe::DLookupRcu,
        Call::arg(ctx.arg(1), ctx.arg(0)),
        ctx.arg(3),
    );
    0
}

#[fentry(function = "__d_lookup")]
pub fn lookup_fentry(ctx: FEntryContext) -> i32 {
    let (parent, name) = (ctx.arg(0), ctx.arg(1));
    lookup_entry::<Btf>(
        Probe::DLookup,
        Source::FEntry,
        Call::arg(name, parent),
        parent,
        name,
        0,
    );
    0
}

#[fexit(function = "__d_lookup")]
pub fn lookup_fexit(ctx: FExitContext) -> i32 {
    lookup_exit::<Btf>(
        Probe::DLookup,
        Call::arg(ctx.arg(1), ctx.arg(0)),
        ctx.arg(2),
    );
    0
}

#[fentry(function = "__d_drop")]
pub fn d_drop_fentry(ctx: FEntryContext) -> i32 {
    fentry_writer(Probe::DDrop, ctx.arg(0));
    0
}

#[fexit(function = "__d_drop")]
pub fn d_drop_fexit(ctx: FExitContext) -> i32 {
    fexit_writer(Probe::DDrop, ctx.arg(0));
    0
}

#[fentry(function = "___d_drop")]
pub fn d_drop_inner_fentry(ctx: FEntryContext) -> i32 {
    fentry_writer(Probe::DDropInner, ctx.arg(0));
    0
}

#[fexit(function = "___d_drop")]
pub fn d_drop_inner_fexit(ctx: FExitContext) -> i32 {
    fexit_writer(Probe::DDropInner, ctx.arg(0));
    0
}

#[fentry(function = "dentry_unlink_inode")]
pub fn unlink_inode_fentry(ctx: FEntryContext) -> i32 {
    fentry_writer(Probe::DentryUnlinkInode, ctx.arg(0));
    0
}

#[fexit(function = "dentry_unlink_inode")]
pub fn unlink_inode_fexit(ctx: FExitContext) -> i32 {
    fexit_writer(Probe::DentryUnlinkInode, ctx.arg(0));
    0
}

#[fentry(function = "dentry_iput")]
pub fn dentry_iput_fentry(ctx: FEntryContext) -> i32 {
    fentry_writer(Probe::DentryIput, ctx.arg(0));
    0
}

#[fexit(function = "dentry_iput")]
pub fn dentry_iput_fexit(ctx: FExitContext) -> i32 {
    fexit_writer(Probe::DentryIput, ctx.arg(0));
    0
}

// kprobe/kretprobe family: the loader picks the symbol; kretprobe sees only the return value,
// so everything else comes from the entry half's stash.

#[kprobe]
pub fn lookup_rcu_kprobe(ctx: ProbeContext) -> u32 {
    if let (Some(parent), Some(name), Some(seqp)) = (ctx.arg(0), ctx.arg(1), ctx.arg(2)) {
        lookup_entry::<Probed>(
            Probe::DLookupRcu,
            Source::KProbe,
            Call::stack(ctx.regs),
            parent,
            name,
            seqp,
        );
    }
    0
}

#[kretprobe]
pub fn lookup_rcu_kretprobe(ctx: RetProbeContext) -> u32 {
    kretprobe_lookup_exit(Probe::DLookupRcu, &ctx);
    0
}

#[kprobe]
pub fn lookup_kprobe(ctx: ProbeContext) -> u32 {
    if let (Some(parent), Some(name)) = (ctx.arg(0), ctx.arg(1)) {
        lookup_entry::<Probed>(
            Probe::DLookup,
            Source::KProbe,
            Call::stack(ctx.regs),
            parent,
            name,
            0,
        );
    }
    0
}

#[kretprobe]
pub fn lookup_kretprobe(ctx: RetProbeContext) -> u32 {
    kretprobe_lookup_exit(Probe::DLookup, &ctx);
    0
}

#[kprobe]
pub fn d_drop_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry::<Probed>(Probe::DDrop, Source::KProbe, Call::stack(ctx.regs), d);
    }
    0
}

#[kretprobe]
pub fn d_drop_kretprobe(ctx: RetProbeContext) -> u32 {
    writer_exit::<Probed>(Probe::DDrop, Call::stack(ctx.regs), None);
    0
}

#[kprobe]
pub fn d_drop_inner_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry::<Probed>(Probe::DDropInner, Source::KProbe, Call::stack(ctx.regs), d);
    }
    0
}

#[kretprobe]
pub fn d_drop_inner_kretprobe(ctx: RetProbeContext) -> u32 {
    writer_exit::<Probed>(Probe::DDropInner, Call::stack(ctx.regs), None);
    0
}

#[kprobe]
pub fn unlink_inode_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry::<Probed>(
            Probe::DentryUnlinkInode,
            Source::KProbe,
            Call::stack(ctx.regs),
            d,
        );
    }
    0
}

#[kretprobe]
pub fn unlink_inode_kretprobe(ctx: RetProbeContext) -> u32 {
    writer_exit::<Probed>(Probe::DentryUnlinkInode, Call::stack(ctx.regs), None);
    0
}

#[kprobe]
pub fn dentry_iput_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry::<Probed>(Probe::DentryIput, Source::KProbe, Call::stack(ctx.regs), d);
    }
    0
}

#[kretprobe]
pub fn dentry_iput_kretprobe(ctx: RetProbeContext) -> u32 {
    writer_exit::<Probed>(Probe::DentryIput, Call::stack(ctx.regs), None);
    0
}

// Writers beyond the unhash and the inode clear: every other function that moves `d_seq` or
// changes `d_inode`, each recorded like the ones above (one event per call, the traced dentry's
// state at entry and at exit). A function that calls traced writers is recorded too: its
// interval explains the moves its inlined parts make (`__d_drop`'s `pprev = NULL` and
// invalidate after `___d_drop`, `__d_add`'s bracket when `__d_add` is inlined).

/// fentry/fexit and kprobe/kretprobe programs of a writer whose dentry is argument `$arg`.
macro_rules! writer_programs {
    ($sym:literal, $probe:expr, $arg:literal, $fentry:ident, $fexit:ident, $kprobe:ident, $kretprobe:ident) => {
        #[fentry(function = $sym)]
        pub fn $fentry(ctx: FEntryContext) -> i32 {
            fentry_writer($probe, ctx.arg($arg));
            0
        }

        #[fexit(function = $sym)]
        pub fn $fexit(ctx: FExitContext) -> i32 {
            fexit_writer($probe, ctx.arg($arg));
            0
        }

        #[kprobe]
        pub fn $kprobe(ctx: ProbeContext) -> u32 {
            if let Some(d) = ctx.arg($arg) {
                writer_entry::<Probed>($probe, Source::KProbe, Call::stack(ctx.regs), d);
            }
            0
        }

        #[kretprobe]
        pub fn $kretprobe(ctx: RetProbeContext) -> u32 {
            writer_exit::<Probed>($probe, Call::stack(ctx.regs), None);
            0
        }
    };
}

writer_programs!(
    "d_instantiate",
    Probe::DInstantiate,
    0,
    d_instantiate_fentry,
    d_instantiate_fexit,
    d_instantiate_kprobe,
    d_instantiate_kretprobe
);
writer_programs!(
    "__d_instantiate",
    Probe::DInstantiateInner,
    0,
    d_instantiate_inner_fentry,
    d_instantiate_inner_fexit,
    d_instantiate_inner_kprobe,
    d_instantiate_inner_kretprobe
);
writer_programs!(
    "d_instantiate_new",
    Probe::DInstantiateNew,
    0,
    d_instantiate_new_fentry,
    d_instantiate_new_fexit,
    d_instantiate_new_kprobe,
    d_instantiate_new_kretprobe
);
writer_programs!(
    "d_add",
    Probe::DAdd,
    0,
    d_add_fentry,
    d_add_fexit,
    d_add_kprobe,
    d_add_kretprobe
);
writer_programs!(
    "__d_add",
    Probe::DAddInner,
    0,
    d_add_inner_fentry,
    d_add_inner_fexit,
    d_add_inner_kprobe,
    d_add_inner_kretprobe
);
writer_programs!(
    "d_splice_alias",
    Probe::DSpliceAlias,
    1,
    d_splice_alias_fentry,
    d_splice_alias_fexit,
    d_splice_alias_kprobe,
    d_splice_alias_kretprobe
);
writer_programs!(
    "d_delete",
    Probe::DDelete,
    0,
    d_delete_fentry,
    d_delete_fexit,
    d_delete_kprobe,
    d_delete_kretprobe
);
writer_programs!(
    "__dentry_kill",
    Probe::DentryKill,
    0,
    dentry_kill_fentry,
    dentry_kill_fexit,
    dentry_kill_kprobe,
    dentry_kill_kretprobe
);
writer_programs!(
    "dentry_kill",
    Probe::DentryKillLocked,
    0,
    dentry_kill_locked_fentry,
    dentry_kill_locked_fexit,
    dentry_kill_locked_kprobe,
    dentry_kill_locked_kretprobe
);
writer_programs!(
    "d_invalidate",
    Probe::DInvalidate,
    0,
    d_invalidate_fentry,
    d_invalidate_fexit,
    d_invalidate_kprobe,
    d_invalidate_kretprobe
);
writer_programs!(
    "d_drop",
    Probe::DDropLocked,
    0,
    d_drop_locked_fentry,
    d_drop_locked_fexit,
    d_drop_locked_kprobe,
    d_drop_locked_kretprobe
);

// `__d_move(dentry, target, exchange)` moves two dentries' `d_seq`: one event for each, from
// the same programs (the target's in its own slot, as `Probe::DMoveTarget`).

#[fentry(function = "__d_move")]
pub fn d_move_fentry(ctx: FEntryContext) -> i32 {
    fentry_writer(Probe::DMove, ctx.arg(0));
    fentry_writer(Probe::DMoveTarget, ctx.arg(1));
    0
}

#[fexit(function = "__d_move")]
pub fn d_move_fexit(ctx: FExitContext) -> i32 {
    fexit_writer(Probe::DMove, ctx.arg(0));
    fexit_writer(Probe::DMoveTarget, ctx.arg(1));
    0
}

#[kprobe]
pub fn d_move_kprobe(ctx: ProbeContext) -> u32 {
    if let (Some(d), Some(t)) = (ctx.arg(0), ctx.arg(1)) {
        writer_entry::<Probed>(Probe::DMove, Source::KProbe, Call::stack(ctx.regs), d);
        writer_entry::<Probed>(Probe::DMoveTarget, Source::KProbe, Call::stack(ctx.regs), t);
    }
    0
}

#[kretprobe]
pub fn d_move_kretprobe(ctx: RetProbeContext) -> u32 {
    writer_exit::<Probed>(Probe::DMove, Call::stack(ctx.regs), None);
    writer_exit::<Probed>(Probe::DMoveTarget, Call::stack(ctx.regs), None);
    0
}

// The floor: for every target, programs of both families that return at once. `tracer bench`
// attaches them to the same targets as the real programs to show what attaching alone costs
// the workload (the trampoline or the kprobe, and entering an empty program), so the real
// programs' own cost is the difference.

/// fentry/fexit and kprobe/kretprobe programs on `$sym` that do nothing.
macro_rules! floor_programs {
    ($sym:literal, $fentry:ident, $fexit:ident, $kprobe:ident, $kretprobe:ident) => {
        #[fentry(function = $sym)]
        pub fn $fentry(_ctx: FEntryContext) -> i32 {
            0
        }

        #[fexit(function = $sym)]
        pub fn $fexit(_ctx: FExitContext) -> i32 {
            0
        }

        #[kprobe]
        pub fn $kprobe(_ctx: ProbeContext) -> u32 {
            0
        }

        #[kretprobe]
        pub fn $kretprobe(_ctx: RetProbeContext) -> u32 {
            0
        }
    };
}

floor_programs!(
    "__d_lookup_rcu",
    lookup_rcu_fentry_floor,
    lookup_rcu_fexit_floor,
    lookup_rcu_kprobe_floor,
    lookup_rcu_kretprobe_floor
);
floor_programs!(
    "__d_lookup",
    lookup_fentry_floor,
    lookup_fexit_floor,
    lookup_kprobe_floor,
    lookup_kretprobe_floor
);
floor_programs!(
    "__d_drop",
    d_drop_fentry_floor,
    d_drop_fexit_floor,
    d_drop_kprobe_floor,
    d_drop_kretprobe_floor
);
floor_programs!(
    "___d_drop",
    d_drop_inner_fentry_floor,
    d_drop_inner_fexit_floor,
    d_drop_inner_kprobe_floor,
    d_drop_inner_kretprobe_floor
);
floor_programs!(
    "dentry_unlink_inode",
    unlink_inode_fentry_floor,
    unlink_inode_fexit_floor,
    unlink_inode_kprobe_floor,
    unlink_inode_kretprobe_floor
);
floor_programs!(
    "dentry_iput",
    dentry_iput_fentry_floor,
    dentry_iput_fexit_floor,
    dentry_iput_kprobe_floor,
    dentry_iput_kretprobe_floor
);
floor_programs!(
    "__d_move",
    d_move_fentry_floor,
    d_move_fexit_floor,
    d_move_kprobe_floor,
    d_move_kretprobe_floor
);
floor_programs!(
    "d_instantiate",
    d_instantiate_fentry_floor,
    d_instantiate_fexit_floor,
    d_instantiate_kprobe_floor,
    d_instantiate_kretprobe_floor
);
floor_programs!(
    "__d_instantiate",
    d_instantiate_inner_fentry_floor,
    d_instantiate_inner_fexit_floor,
    d_instantiate_inner_kprobe_floor,
    d_instantiate_inner_kretprobe_floor
);
floor_programs!(
    "d_instantiate_new",
    d_instantiate_new_fentry_floor,
    d_instantiate_new_fexit_floor,
    d_instantiate_new_kprobe_floor,
    d_instantiate_new_kretprobe_floor
);
floor_programs!(
    "d_add",
    d_add_fentry_floor,
    d_add_fexit_floor,
    d_add_kprobe_floor,
    d_add_kretprobe_floor
);
floor_programs!(
    "__d_add",
    d_add_inner_fentry_floor,
    d_add_inner_fexit_floor,
    d_add_inner_kprobe_floor,
    d_add_inner_kretprobe_floor
);
floor_programs!(
    "d_splice_alias",
    d_splice_alias_fentry_floor,
    d_splice_alias_fexit_floor,
    d_splice_alias_kprobe_floor,
    d_splice_alias_kretprobe_floor
);
floor_programs!(
    "d_delete",
    d_delete_fentry_floor,
    d_delete_fexit_floor,
    d_delete_kprobe_floor,
    d_delete_kretprobe_floor
);
floor_programs!(
    "__dentry_kill",
    dentry_kill_fentry_floor,
    dentry_kill_fexit_floor,
    dentry_kill_kprobe_floor,
    dentry_kill_kretprobe_floor
);
floor_programs!(
    "dentry_kill",
    dentry_kill_locked_fentry_floor,
    dentry_kill_locked_fexit_floor,
    dentry_kill_locked_kprobe_floor,
    dentry_kill_locked_kretprobe_floor
);
floor_programs!(
    "d_invalidate",
    d_invalidate_fentry_floor,
    d_invalidate_fexit_floor,
    d_invalidate_kprobe_floor,
    d_invalidate_kretprobe_floor
);
floor_programs!(
    "d_drop",
    d_drop_locked_fentry_floor,
    d_drop_locked_fexit_floor,
    d_drop_locked_kprobe_floor,
    d_drop_locked_kretprobe_floor
);

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // No panic path survives the verifier; this only satisfies no_std.
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
