//! Kernel side of the tracer: one program pair per target in each attach family.
//!
//! Every call is one event. The entry half (fentry or kprobe) filters by the dentry's file
//! system, counts a hit and stashes what it saw in `PENDING`, keyed by thread and probe. The exit
//! half (fexit or kretprobe) takes the stash, reads the state after the call and submits the
//! completed event to the `EVENTS` ring buffer. A failed stash or reserve is counted in `DROPS`,
//! so `HITS - DROPS` is what the consumer must have received.
//!
//! Struct offsets come from the target kernel's BTF through the `CONFIG` load-time global: Rust
//! eBPF has no CO-RE relocations, and the layouts differ between kernels.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns,
        bpf_probe_read_kernel, generated,
    },
    macros::{fentry, fexit, kprobe, kretprobe, map},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use tracer_common::{flags, Config, Event, Probe, Source, COUNTERS, MAX_DEVS, NAME_CAP};

/// Filled in by the loader (aya `EbpfLoader::set_global`) before the programs load.
#[no_mangle]
static CONFIG: Config = Config::ZERO;

/// Completed events. The loader sets the size (`--buffer`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Calls that passed the file-system filter, per probe and CPU.
#[map]
static HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS, 0);

/// Calls that passed the filter but produced no event (stash full, ring buffer full).
#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS, 0);

/// Entry halves waiting for their exit, keyed by `tid << 8 | probe`.
#[map]
static PENDING: HashMap<u64, Pending> = HashMap::with_max_entries(16384, 0);

/// Per-CPU workspace for building an entry half: too large for the 512-byte BPF stack.
#[map]
static SCRATCH: PerCpuArray<Pending> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    ev: Event,
    /// `__d_lookup_rcu`'s `seqp` argument, read again at return.
    seqp: u64,
}

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

#[inline(always)]
fn config() -> Config {
    // SAFETY: CONFIG is a plain global; the volatile read keeps the compiler from folding the
    // zero initialiser into the code, since the loader rewrites it.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}

#[inline(always)]
fn bump(map: &PerCpuArray<u64>, probe: Probe) {
    if let Some(slot) = map.get_ptr_mut(probe.counter_index()) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *slot += 1 };
    }
}

#[inline(always)]
fn key(probe: Probe) -> u64 {
    let tid = bpf_get_current_pid_tgid() & 0xffff_ffff;
    (tid << 8) | probe as u64
}

#[inline(always)]
unsafe fn read<T>(base: u64, off: u32) -> Option<T> {
    bpf_probe_read_kernel((base + off as u64) as *const T).ok()
}

/// Does the dentry live on one of the traced file systems?
#[inline(always)]
fn dev_allowed(cfg: &Config, dentry: u64) -> bool {
    if dentry == 0 {
        return false;
    }
    let mut any = false;
    let mut i = 0;
    while i < MAX_DEVS {
        any |= cfg.devs[i] != 0;
        i += 1;
    }
    if !any {
        return true;
    }
    // SAFETY: reads of kernel memory go through bpf_probe_read_kernel, which faults safely.
    let dev: u32 = match unsafe { read::<u64>(dentry, cfg.offsets.d_sb) } {
        Some(sb) if sb != 0 => match unsafe { read::<u32>(sb, cfg.offsets.sb_s_dev) } {
            Some(d) => d,
            None => return false,
        },
        _ => return false,
    };
    let mut i = 0;
    while i < MAX_DEVS {
        if cfg.devs[i] != 0 && cfg.devs[i] == dev {
            return true;
        }
        i += 1;
    }
    false
}

/// Copies a `struct qstr` (hash, len, name) into the event. The name is not NUL-terminated
/// (a lookup's qstr points into the whole path), so only `len` bytes are read.
#[inline(always)]
fn read_qstr(cfg: &Config, ev: &mut Event, qstr: u64) {
    let o = &cfg.offsets;
    // SAFETY: faulting reads are caught by the helper and flagged.
    let (hash, len, name) = unsafe {
        (
            read::<u32>(qstr, o.qstr_hash),
            read::<u32>(qstr, o.qstr_len),
            read::<u64>(qstr, o.qstr_name),
        )
    };
    let (Some(hash), Some(len), Some(name)) = (hash, len, name) else {
        ev.flags |= flags::READ_FAULT;
        ev.name_len = 0;
        return;
    };
    ev.name_hash = hash;
    ev.name_len = len;
    if len as usize > NAME_CAP {
        ev.flags |= flags::NAME_TRUNCATED;
    }
    // A fixed-size read: the verifier cannot bound a size derived from `len` once LLVM has
    // reused the unbounded register. Bytes past `len` are cut by userspace. Names live in the
    // dentry (d_iname) or in a path buffer in the direct map, so reading past them stays mapped.
    // SAFETY: the destination is NAME_CAP bytes.
    let rc = unsafe {
        generated::bpf_probe_read_kernel(
            ev.name.as_mut_ptr() as *mut c_void,
            NAME_CAP as u32,
            name as *const c_void,
        )
    };
    if rc != 0 {
        ev.flags |= flags::READ_FAULT;
    }
}

/// Starts an event in the per-CPU scratch slot with what every probe records.
#[inline(always)]
fn begin(probe: Probe, source: Source) -> Option<&'static mut Pending> {
    let p = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: the per-CPU slot is ours until the program returns.
    let p = unsafe { &mut *p };
    // SAFETY: helpers with no preconditions.
    let (now, cpu) = unsafe { (bpf_ktime_get_ns(), bpf_get_smp_processor_id()) };
    let ev = &mut p.ev;
    // Volatile stores: LLVM would merge plain zero stores into a memset call, which BPF
    // cannot make. `name` is not cleared: `name_len` bounds it and userspace cuts to it.
    macro_rules! set {
        ($field:expr, $v:expr) => {
            // SAFETY: a field of the per-CPU slot we own.
            unsafe { core::ptr::write_volatile(&mut $field, $v) }
        };
    }
    set!(ev.ts_begin, now);
    set!(ev.ts_end, 0);
    set!(ev.dentry, 0);
    set!(ev.parent, 0);
    set!(ev.inode_begin, 0);
    set!(ev.inode_end, 0);
    set!(ev.tid, (bpf_get_current_pid_tgid() & 0xffff_ffff) as u32);
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
    set!(ev._pad, 0);
    set!(p.seqp, 0);
    Some(p)
}

#[inline(always)]
fn stash(probe: Probe, p: &Pending) {
    if PENDING.insert(key(probe), p, 0).is_err() {
        bump(&DROPS, probe);
    }
}

/// Entry half of `__d_lookup_rcu(parent, name, seqp)` and `__d_lookup(parent, name)`.
#[inline(always)]
fn lookup_entry(probe: Probe, source: Source, parent: u64, qstr: u64, seqp: u64) {
    let cfg = config();
    if !dev_allowed(&cfg, parent) {
        return;
    }
    bump(&HITS, probe);
    let Some(p) = begin(probe, source) else {
        bump(&DROPS, probe);
        return;
    };
    p.ev.parent = parent;
    read_qstr(&cfg, &mut p.ev, qstr);
    p.seqp = seqp;
    stash(probe, p);
}

#[inline(always)]
fn wakeup_flags(cfg: &Config) -> u64 {
    if cfg.wakeup_bytes == 0 {
        return 0;
    }
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= cfg.wakeup_bytes {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Takes the stashed entry half, lets `fill` complete it in the ring buffer, submits it.
#[inline(always)]
fn finish(probe: Probe, fill: impl FnOnce(&Config, &mut Event)) {
    let k = key(probe);
    let Some(pending) = (unsafe { PENDING.get(k) }) else {
        return;
    };
    let cfg = config();
    match EVENTS.reserve::<Event>(0) {
        Some(mut slot) => {
            let mut ev = pending.ev;
            let seqp = pending.seqp;
            ev.ts_end = unsafe { bpf_ktime_get_ns() };
            // seqp travels in seq_begin's place only until fill reads it.
            ev.inode_end = seqp;
            fill(&cfg, &mut ev);
            slot.write(ev);
            slot.submit(wakeup_flags(&cfg));
        }
        None => bump(&DROPS, probe),
    }
    let _ = PENDING.remove(k);
}

/// Exit half of the lookups: `*seqp`, then `d_inode`, then `d_seq` again, in that order, so
/// `validated` is the check the caller (`step_into` on 6.x) would make.
#[inline(always)]
fn lookup_exit(probe: Probe, ret: u64) {
    finish(probe, |cfg, ev| {
        let seqp = ev.inode_end;
        ev.inode_end = 0;
        ev.dentry = ret;
        if ret == 0 {
            return;
        }
        let o = &cfg.offsets;
        // SAFETY: all reads go through bpf_probe_read_kernel.
        unsafe {
            let seq = if probe == Probe::DLookupRcu {
                read::<u32>(seqp, 0)
            } else {
                read::<u32>(ret, o.d_seq)
            };
            let inode = read::<u64>(ret, o.d_inode);
            let seq_after = read::<u32>(ret, o.d_seq);
            let pprev = read::<u64>(ret, o.d_hash_pprev);
            let dflags = read::<u32>(ret, o.d_flags);
            match (seq, inode, seq_after, pprev, dflags) {
                (Some(seq), Some(inode), Some(seq_after), Some(pprev), Some(dflags)) => {
                    ev.seq_begin = seq;
                    ev.inode_begin = inode;
                    ev.inode_end = inode;
                    ev.seq_end = seq_after;
                    ev.aux = dflags;
                    if seq == seq_after {
                        ev.flags |= flags::VALIDATED;
                    }
                    if pprev != 0 {
                        ev.flags |= flags::HASHED_BEGIN | flags::HASHED_END;
                    }
                }
                _ => ev.flags |= flags::READ_FAULT,
            }
        }
    });
}

/// Entry half of the writers: the dentry's name, `d_seq`, `d_inode`, hashed, `d_flags`.
#[inline(always)]
fn writer_entry(probe: Probe, source: Source, dentry: u64) {
    let cfg = config();
    if !dev_allowed(&cfg, dentry) {
        return;
    }
    bump(&HITS, probe);
    let Some(p) = begin(probe, source) else {
        bump(&DROPS, probe);
        return;
    };
    let o = &cfg.offsets;
    let ev = &mut p.ev;
    ev.dentry = dentry;
    // SAFETY: all reads go through bpf_probe_read_kernel.
    unsafe {
        match (
            read::<u64>(dentry, o.d_parent),
            read::<u32>(dentry, o.d_seq),
            read::<u64>(dentry, o.d_inode),
            read::<u64>(dentry, o.d_hash_pprev),
            read::<u32>(dentry, o.d_flags),
        ) {
            (Some(parent), Some(seq), Some(inode), Some(pprev), Some(dflags)) => {
                ev.parent = parent;
                ev.seq_begin = seq;
                ev.inode_begin = inode;
                ev.aux = dflags;
                if pprev != 0 {
                    ev.flags |= flags::HASHED_BEGIN;
                }
            }
            _ => ev.flags |= flags::READ_FAULT,
        }
    }
    read_qstr(&cfg, ev, dentry + cfg.offsets.d_name as u64);
    stash(probe, p);
}

/// Exit half of the writers: `d_seq`, `d_inode` and hashed after the call.
#[inline(always)]
fn writer_exit(probe: Probe) {
    finish(probe, |cfg, ev| {
        ev.inode_end = 0;
        let o = &cfg.offsets;
        let d = ev.dentry;
        // SAFETY: all reads go through bpf_probe_read_kernel.
        unsafe {
            match (
                read::<u32>(d, o.d_seq),
                read::<u64>(d, o.d_inode),
                read::<u64>(d, o.d_hash_pprev),
            ) {
                (Some(seq), Some(inode), Some(pprev)) => {
                    ev.seq_end = seq;
                    ev.inode_end = inode;
                    if pprev != 0 {
                        ev.flags |= flags::HASHED_END;
                    }
                }
                _ => ev.flags |= flags::READ_FAULT,
            }
        }
    });
}

// fentry/fexit family. fexit sees the arguments followed by the return value.

#[fentry(function = "__d_lookup_rcu")]
pub fn lookup_rcu_fentry(ctx: FEntryContext) -> i32 {
    lookup_entry(
        Probe::DLookupRcu,
        Source::FEntry,
        ctx.arg(0),
        ctx.arg(1),
        ctx.arg(2),
    );
    0
}

#[fexit(function = "__d_lookup_rcu")]
pub fn lookup_rcu_fexit(ctx: FExitContext) -> i32 {
    // fexit sees the arguments, then the return value. Every kernel with fexit (5.5+) has the
    // 3-argument __d_lookup_rcu (3.5 dropped the inode pointer); the loader checks BTF, and
    // the context offset must be a constant for the verifier.
    lookup_exit(Probe::DLookupRcu, ctx.arg(3));
    0
}

#[fentry(function = "__d_lookup")]
pub fn lookup_fentry(ctx: FEntryContext) -> i32 {
    lookup_entry(Probe::DLookup, Source::FEntry, ctx.arg(0), ctx.arg(1), 0);
    0
}

#[fexit(function = "__d_lookup")]
pub fn lookup_fexit(ctx: FExitContext) -> i32 {
    lookup_exit(Probe::DLookup, ctx.arg(2));
    0
}

#[fentry(function = "__d_drop")]
pub fn d_drop_fentry(ctx: FEntryContext) -> i32 {
    writer_entry(Probe::DDrop, Source::FEntry, ctx.arg(0));
    0
}

#[fexit(function = "__d_drop")]
pub fn d_drop_fexit(_ctx: FExitContext) -> i32 {
    writer_exit(Probe::DDrop);
    0
}

#[fentry(function = "___d_drop")]
pub fn d_drop_inner_fentry(ctx: FEntryContext) -> i32 {
    writer_entry(Probe::DDropInner, Source::FEntry, ctx.arg(0));
    0
}

#[fexit(function = "___d_drop")]
pub fn d_drop_inner_fexit(_ctx: FExitContext) -> i32 {
    writer_exit(Probe::DDropInner);
    0
}

#[fentry(function = "dentry_unlink_inode")]
pub fn unlink_inode_fentry(ctx: FEntryContext) -> i32 {
    writer_entry(Probe::DentryUnlinkInode, Source::FEntry, ctx.arg(0));
    0
}

#[fexit(function = "dentry_unlink_inode")]
pub fn unlink_inode_fexit(_ctx: FExitContext) -> i32 {
    writer_exit(Probe::DentryUnlinkInode);
    0
}

#[fentry(function = "dentry_iput")]
pub fn dentry_iput_fentry(ctx: FEntryContext) -> i32 {
    writer_entry(Probe::DentryIput, Source::FEntry, ctx.arg(0));
    0
}

#[fexit(function = "dentry_iput")]
pub fn dentry_iput_fexit(_ctx: FExitContext) -> i32 {
    writer_exit(Probe::DentryIput);
    0
}

// kprobe/kretprobe family: the loader picks the symbol; kretprobe sees only the return value,
// so everything else comes from the entry half's stash.

#[kprobe]
pub fn lookup_rcu_kprobe(ctx: ProbeContext) -> u32 {
    if let (Some(parent), Some(name), Some(seqp)) = (ctx.arg(0), ctx.arg(1), ctx.arg(2)) {
        lookup_entry(Probe::DLookupRcu, Source::KProbe, parent, name, seqp);
    }
    0
}

#[kretprobe]
pub fn lookup_rcu_kretprobe(ctx: RetProbeContext) -> u32 {
    lookup_exit(Probe::DLookupRcu, ctx.ret());
    0
}

#[kprobe]
pub fn lookup_kprobe(ctx: ProbeContext) -> u32 {
    if let (Some(parent), Some(name)) = (ctx.arg(0), ctx.arg(1)) {
        lookup_entry(Probe::DLookup, Source::KProbe, parent, name, 0);
    }
    0
}

#[kretprobe]
pub fn lookup_kretprobe(ctx: RetProbeContext) -> u32 {
    lookup_exit(Probe::DLookup, ctx.ret());
    0
}

#[kprobe]
pub fn d_drop_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry(Probe::DDrop, Source::KProbe, d);
    }
    0
}

#[kretprobe]
pub fn d_drop_kretprobe(_ctx: RetProbeContext) -> u32 {
    writer_exit(Probe::DDrop);
    0
}

#[kprobe]
pub fn d_drop_inner_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry(Probe::DDropInner, Source::KProbe, d);
    }
    0
}

#[kretprobe]
pub fn d_drop_inner_kretprobe(_ctx: RetProbeContext) -> u32 {
    writer_exit(Probe::DDropInner);
    0
}

#[kprobe]
pub fn unlink_inode_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry(Probe::DentryUnlinkInode, Source::KProbe, d);
    }
    0
}

#[kretprobe]
pub fn unlink_inode_kretprobe(_ctx: RetProbeContext) -> u32 {
    writer_exit(Probe::DentryUnlinkInode);
    0
}

#[kprobe]
pub fn dentry_iput_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(d) = ctx.arg(0) {
        writer_entry(Probe::DentryIput, Source::KProbe, d);
    }
    0
}

#[kretprobe]
pub fn dentry_iput_kretprobe(_ctx: RetProbeContext) -> u32 {
    writer_exit(Probe::DentryIput);
    0
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // No panic path survives the verifier; this only satisfies no_std.
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
