//! The event ABI: what the eBPF probes, the workload runner and the model all emit, and what the
//! trace file and the diff read. Every type here is `#[repr(C)]` with a fixed size, so the kernel
//! side can write it straight into a ring buffer. Changing a layout means bumping [`SCHEMA_VERSION`].
#![no_std]

/// Version of the event layout below; stored in every trace header.
pub const SCHEMA_VERSION: u32 = 2;

/// Bytes of a name kept in an event. Longer names keep their full length in `name_len` and set
/// [`flags::NAME_TRUNCATED`].
pub const NAME_CAP: usize = 64;

/// Where an event comes from: one kernel function (or the workload runner).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// `__d_lookup_rcu` return (RCU-walk lookup).
    DLookupRcu = 1,
    /// `__d_lookup` return (ref-walk lookup, the fallback after -ECHILD).
    DLookup = 2,
    /// `__d_drop` (exported wrapper; inlined at most call sites on 6.1).
    DDrop = 3,
    /// `___d_drop` (the static unhash every `__d_drop` reaches).
    DDropInner = 4,
    /// `dentry_unlink_inode` (3.0 `d_delete` path, every kill path since 4.8).
    DentryUnlinkInode = 5,
    /// `dentry_iput` (kill path before 4.8).
    DentryIput = 6,
    /// A workload operation (syscall) with its result.
    Op = 7,
    /// `__d_move(dentry, target, exchange)`: rename, exchange and `d_splice_alias`'s move. The
    /// moved dentry; `write_seqcount_begin/end` (+2) around both unhashes and the rehash.
    DMove = 8,
    /// `__d_move`'s target (its second argument), recorded by the same programs: +2.
    DMoveTarget = 9,
    /// `d_instantiate(dentry, inode)`: a negative dentry made positive (create, mkdir).
    DInstantiate = 10,
    /// `__d_instantiate` (static; out of line in some builds, inlined into its callers in others).
    DInstantiateInner = 11,
    /// `d_instantiate_new(dentry, inode)`: the same for a new inode still locked.
    DInstantiateNew = 12,
    /// `d_add(dentry, inode)`: instantiate (inode non-NULL) and hash.
    DAdd = 13,
    /// `__d_add` (static; what `d_add` and `d_splice_alias` reach).
    DAddInner = 14,
    /// `d_splice_alias(inode, dentry)`: a lookup's result, through `__d_add` or `__d_move`.
    DSpliceAlias = 15,
    /// `d_delete(dentry)`: after unlink/rmdir; `dentry_unlink_inode` or `__d_drop` inside.
    DDelete = 16,
    /// `__dentry_kill(dentry)`: the kill path once `dentry_kill` was split (read in 4.4.155)
    /// up to 7.1 (7.1.5's source; gone in 7.2.6's); `__d_drop` and `dentry_unlink_inode`
    /// inside. Its callers take the locks (`lock_for_kill` from 6.8).
    DentryKill = 17,
    /// `dentry_kill(dentry)`: the kill path where there is no `__dentry_kill`. In 3.x (read in
    /// 3.5.0 and 3.10.105) a static inline that locks, then kills through `d_kill`; from 7.2
    /// (7.2.6's and 7.3.4's sources), which folded `lock_for_kill` into it, it gives up without
    /// killing when the dentry is in use. In between, the static caller of `__dentry_kill`,
    /// usually inlined. See [`Probe::is_kill`].
    DentryKillLocked = 18,
    /// `d_invalidate(dentry)`: `__d_drop` then the subtree's shrink.
    DInvalidate = 19,
    /// `d_drop(dentry)`: `__d_drop` under `d_lock`.
    DDropLocked = 20,
}

impl Probe {
    pub const ALL: [Probe; 20] = [
        Probe::DLookupRcu,
        Probe::DLookup,
        Probe::DDrop,
        Probe::DDropInner,
        Probe::DentryUnlinkInode,
        Probe::DentryIput,
        Probe::Op,
        Probe::DMove,
        Probe::DMoveTarget,
        Probe::DInstantiate,
        Probe::DInstantiateInner,
        Probe::DInstantiateNew,
        Probe::DAdd,
        Probe::DAddInner,
        Probe::DSpliceAlias,
        Probe::DDelete,
        Probe::DentryKill,
        Probe::DentryKillLocked,
        Probe::DInvalidate,
        Probe::DDropLocked,
    ];
    /// Kernel probes only, in counter-index order.
    pub const KERNEL: [Probe; 19] = [
        Probe::DLookupRcu,
        Probe::DLookup,
        Probe::DDrop,
        Probe::DDropInner,
        Probe::DentryUnlinkInode,
        Probe::DentryIput,
        Probe::DMove,
        Probe::DMoveTarget,
        Probe::DInstantiate,
        Probe::DInstantiateInner,
        Probe::DInstantiateNew,
        Probe::DAdd,
        Probe::DAddInner,
        Probe::DSpliceAlias,
        Probe::DDelete,
        Probe::DentryKill,
        Probe::DentryKillLocked,
        Probe::DInvalidate,
        Probe::DDropLocked,
    ];

    pub fn from_u8(v: u8) -> Option<Probe> {
        Probe::ALL.iter().copied().find(|p| *p as u8 == v)
    }

    /// The kernel symbol this probe attaches to, or the runner's name. [`Probe::DMoveTarget`]
    /// is recorded by `__d_move`'s programs: its name says which argument it is.
    pub fn symbol(self) -> &'static str {
        match self {
            Probe::DLookupRcu => "__d_lookup_rcu",
            Probe::DLookup => "__d_lookup",
            Probe::DDrop => "__d_drop",
            Probe::DDropInner => "___d_drop",
            Probe::DentryUnlinkInode => "dentry_unlink_inode",
            Probe::DentryIput => "dentry_iput",
            Probe::Op => "workload",
            Probe::DMove => "__d_move",
            Probe::DMoveTarget => "__d_move:target",
            Probe::DInstantiate => "d_instantiate",
            Probe::DInstantiateInner => "__d_instantiate",
            Probe::DInstantiateNew => "d_instantiate_new",
            Probe::DAdd => "d_add",
            Probe::DAddInner => "__d_add",
            Probe::DSpliceAlias => "d_splice_alias",
            Probe::DDelete => "d_delete",
            Probe::DentryKill => "__dentry_kill",
            Probe::DentryKillLocked => "dentry_kill",
            Probe::DInvalidate => "d_invalidate",
            Probe::DDropLocked => "d_drop",
        }
    }

    /// Whether the target is a global (most of them exported) function on every kernel with
    /// fentry (5.5+): it always keeps an out-of-line body, hence a BTF FUNC. Static targets may
    /// be inlined into every caller, depending on the build.
    pub fn is_global(self) -> bool {
        matches!(
            self,
            Probe::DLookupRcu
                | Probe::DLookup
                | Probe::DDrop
                | Probe::DDropLocked
                | Probe::DDelete
                | Probe::DInstantiate
                | Probe::DInstantiateNew
                | Probe::DAdd
                | Probe::DSpliceAlias
                | Probe::DInvalidate
        )
    }

    /// Whether this probe has programs of its own to attach (every kernel probe but
    /// [`Probe::DMoveTarget`], which `__d_move`'s programs record).
    pub fn is_attach_target(self) -> bool {
        self != Probe::Op && self != Probe::DMoveTarget
    }

    /// Index into the per-CPU counters (`Counts::hits`, `Counts::drops`).
    pub fn counter_index(self) -> u32 {
        self as u32 - 1
    }

    /// Stem of this probe's program names in the eBPF object: `{stem}_fentry`, `{stem}_fexit`,
    /// `{stem}_kprobe`, `{stem}_kretprobe`.
    pub fn prog_stem(self) -> &'static str {
        match self {
            Probe::DLookupRcu => "lookup_rcu",
            Probe::DLookup => "lookup",
            Probe::DDrop => "d_drop",
            Probe::DDropInner => "d_drop_inner",
            Probe::DentryUnlinkInode => "unlink_inode",
            Probe::DentryIput => "dentry_iput",
            Probe::Op | Probe::DMoveTarget => "none",
            Probe::DMove => "d_move",
            Probe::DInstantiate => "d_instantiate",
            Probe::DInstantiateInner => "d_instantiate_inner",
            Probe::DInstantiateNew => "d_instantiate_new",
            Probe::DAdd => "d_add",
            Probe::DAddInner => "d_add_inner",
            Probe::DSpliceAlias => "d_splice_alias",
            Probe::DDelete => "d_delete",
            Probe::DentryKill => "dentry_kill",
            Probe::DentryKillLocked => "dentry_kill_locked",
            Probe::DInvalidate => "d_invalidate",
            Probe::DDropLocked => "d_drop_locked",
        }
    }

    /// Where the traced dentry is among the function's arguments (0-based), for writers.
    pub fn dentry_arg(self) -> usize {
        match self {
            Probe::DSpliceAlias | Probe::DMoveTarget => 1,
            _ => 0,
        }
    }

    pub fn is_lookup(self) -> bool {
        matches!(self, Probe::DLookupRcu | Probe::DLookup)
    }

    /// The kill path's own probe, under either name ([`Probe::DentryKill`],
    /// [`Probe::DentryKillLocked`]): which of the two a kernel shows depends on its release
    /// and build, so an analysis comparing kills compares them as one.
    pub fn is_kill(self) -> bool {
        matches!(self, Probe::DentryKill | Probe::DentryKillLocked)
    }

    pub fn is_writer(self) -> bool {
        !self.is_lookup() && self != Probe::Op
    }
}

/// Number of slots in the per-CPU counter arrays.
pub const COUNTERS: u32 = 24;

/// The programs' counters on one CPU (the `COUNTS` per-CPU map, one element): in one value so
/// that an event costs one map lookup for its sequence number and its hit.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// The last `cpu_seq` stamped on this CPU.
    pub seq: u64,
    /// Calls that passed the filter, per probe ([`Probe::counter_index`]).
    pub hits: [u64; COUNTERS as usize],
    /// Calls that passed the filter but produced no event (no slot, ring buffer full).
    pub drops: [u64; COUNTERS as usize],
    /// Exits that found no entry of their call although the call was on a traced file system
    /// (kretprobes of the lookups, which see the returned dentry): the kernel passed over the
    /// entry program (the call took no number and counted no hit), or the entry's slot was
    /// lost (its drop counted). Neither hits nor drops.
    pub orphan_exits: [u64; COUNTERS as usize],
}

/// How an event was produced.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    FEntry = 1,
    KProbe = 2,
    Workload = 3,
    Model = 4,
}

impl Source {
    pub fn from_u8(v: u8) -> Option<Source> {
        match v {
            1 => Some(Source::FEntry),
            2 => Some(Source::KProbe),
            3 => Some(Source::Workload),
            4 => Some(Source::Model),
            _ => None,
        }
    }
}

/// Workload operations, recorded as [`Probe::Op`] events (`aux` holds the kind).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Stat = 1,
    Open = 2,
    Create = 3,
    Unlink = 4,
    Rename = 5,
    Mkdir = 6,
    Rmdir = 7,
    Readdir = 8,
    DropCaches = 9,
    /// `renameat2(RENAME_EXCHANGE)`: two existing names swap their dentries (`__d_move` with
    /// `exchange`).
    Exchange = 10,
}

impl OpKind {
    pub const ALL: [OpKind; 10] = [
        OpKind::Stat,
        OpKind::Open,
        OpKind::Create,
        OpKind::Unlink,
        OpKind::Rename,
        OpKind::Mkdir,
        OpKind::Rmdir,
        OpKind::Readdir,
        OpKind::DropCaches,
        OpKind::Exchange,
    ];

    pub fn from_u32(v: u32) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| *k as u32 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Stat => "stat",
            OpKind::Open => "open",
            OpKind::Create => "create",
            OpKind::Unlink => "unlink",
            OpKind::Rename => "rename",
            OpKind::Mkdir => "mkdir",
            OpKind::Rmdir => "rmdir",
            OpKind::Readdir => "readdir",
            OpKind::DropCaches => "drop_caches",
            OpKind::Exchange => "exchange",
        }
    }
}

/// Bits of [`Event::flags`].
pub mod flags {
    /// Lookups: the dentry was hashed when `d_seq` was re-read. Writers: hashed at entry.
    pub const HASHED_BEGIN: u16 = 1 << 0;
    /// Writers: hashed at exit. Lookups: same as `HASHED_BEGIN`.
    pub const HASHED_END: u16 = 1 << 1;
    /// Lookups: `d_seq` read after `d_inode` equals `*seqp` (the caller's validation would pass).
    pub const VALIDATED: u16 = 1 << 2;
    /// `name_len` exceeds [`crate::NAME_CAP`]; `name` holds the first bytes.
    pub const NAME_TRUNCATED: u16 = 1 << 3;
    /// A kernel read failed (`bpf_probe_read_kernel`); the fields it fed are zero.
    pub const READ_FAULT: u16 = 1 << 4;
    /// The entry half of a writer or lookup was not seen (probe attached mid-call).
    pub const NO_ENTRY: u16 = 1 << 5;
    /// Op events: `name` holds "old\0new" for a rename or an exchange.
    pub const TWO_PATHS: u16 = 1 << 6;
}

/// One recorded event. Lookups and writers are each one event per call: the probe's entry half
/// stashes what it saw, the exit half completes and emits it.
///
/// Field meaning per probe:
///
/// | field | lookup (`__d_lookup_rcu`, `__d_lookup`) | writer | op |
/// |---|---|---|---|
/// | `ts_begin`/`ts_end` | call entry / return | entry / exit | syscall begin / end |
/// | `dentry` | returned dentry (0: miss) | the dentry | 0 |
/// | `parent` | parent argument | `d_parent` | 0 |
/// | `inode_begin` | `d_inode` (read after `*seqp`) | `d_inode` at entry | 0 |
/// | `inode_end` | same as `inode_begin` | `d_inode` at exit | 0 |
/// | `seq_begin` | `*seqp` (rcu) / `d_seq` (ref-walk) | `d_seq` at entry | 0 |
/// | `seq_end` | `d_seq` read after `d_inode` | `d_seq` at exit | 0 |
/// | `aux` | `d_flags` | `d_flags` at entry | [`OpKind`] |
/// | `result` | 0 | 0 | 0 or `-errno` |
/// | `cpu_seq` | per-CPU sequence number | same | 0 |
///
/// `cpu_seq` is stamped at the entry half from a counter of the entry CPU (`cpu`), for every
/// call that passed the filter, before anything can fail: the kernel events of a CPU carry
/// 1, 2, 3, ... and a number missing from a trace is an event lost (no slot, ring buffer
/// full, exit never ran), whatever the footer says. 0 means not stamped (operations, model).
///
/// Kernel pointers are KASLR secrets: trace files hold stable per-trace ids in `dentry`,
/// `parent` and the inode fields unless recorded with `--raw-pointers`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts_begin: u64,
    pub ts_end: u64,
    pub dentry: u64,
    pub parent: u64,
    pub inode_begin: u64,
    pub inode_end: u64,
    pub tid: u32,
    pub cpu: u32,
    pub probe: u8,
    pub source: u8,
    pub flags: u16,
    pub seq_begin: u32,
    pub seq_end: u32,
    pub aux: u32,
    pub name_hash: u32,
    pub name_len: u32,
    pub result: i32,
    pub cpu_seq: u32,
    pub name: [u8; NAME_CAP],
}

/// Size of one event on the wire and on disk.
pub const EVENT_SIZE: usize = core::mem::size_of::<Event>();
const _: () = assert!(EVENT_SIZE == 152);

impl Event {
    pub const fn zeroed() -> Event {
        Event {
            ts_begin: 0,
            ts_end: 0,
            dentry: 0,
            parent: 0,
            inode_begin: 0,
            inode_end: 0,
            tid: 0,
            cpu: 0,
            probe: 0,
            source: 0,
            flags: 0,
            seq_begin: 0,
            seq_end: 0,
            aux: 0,
            name_hash: 0,
            name_len: 0,
            result: 0,
            cpu_seq: 0,
            name: [0; NAME_CAP],
        }
    }

    pub fn probe(&self) -> Option<Probe> {
        Probe::from_u8(self.probe)
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The recorded name bytes (cut to `name_len` and to [`NAME_CAP`]).
    pub fn name_bytes(&self) -> &[u8] {
        let n = (self.name_len as usize).min(NAME_CAP);
        &self.name[..n]
    }

    /// Sets `name`, `name_len` and the truncation flag from `bytes`.
    pub fn set_name(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(NAME_CAP);
        self.name = [0; NAME_CAP];
        self.name[..n].copy_from_slice(&bytes[..n]);
        self.name_len = bytes.len() as u32;
        if bytes.len() > NAME_CAP {
            self.flags |= flags::NAME_TRUNCATED;
        } else {
            self.flags &= !flags::NAME_TRUNCATED;
        }
    }

    /// The raw bytes of this event as stored in a trace file (native = little endian here).
    pub fn as_bytes(&self) -> &[u8; EVENT_SIZE] {
        // SAFETY: Event is repr(C), Copy, has no padding holes (asserted by size) and every
        // byte pattern of its fields is valid to read.
        unsafe { &*(self as *const Event as *const [u8; EVENT_SIZE]) }
    }

    /// Reads an event from its stored bytes.
    pub fn from_bytes(bytes: &[u8; EVENT_SIZE]) -> Event {
        // SAFETY: every bit pattern is a valid Event (integers and byte arrays only);
        // read_unaligned copes with any alignment of the source.
        unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const Event) }
    }
}

/// Struct member offsets of the target kernel, resolved from its BTF at load time and handed
/// to the programs as a load-time global. Rust eBPF has no CO-RE, so nothing here is compiled in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `dentry.d_flags`
    pub d_flags: u32,
    /// `dentry.d_seq` (the sequence word; `seqcount_spinlock_t` starts with it since 5.x)
    pub d_seq: u32,
    /// `dentry.d_hash.pprev`
    pub d_hash_pprev: u32,
    /// `dentry.d_parent`
    pub d_parent: u32,
    /// `dentry.d_name` (a `struct qstr`)
    pub d_name: u32,
    /// `dentry.d_inode`
    pub d_inode: u32,
    /// `dentry.d_sb`
    pub d_sb: u32,
    /// `qstr.hash` (within `struct qstr`)
    pub qstr_hash: u32,
    /// `qstr.len`
    pub qstr_len: u32,
    /// `qstr.name`
    pub qstr_name: u32,
    /// `super_block.s_dev`
    pub sb_s_dev: u32,
    pub _pad: u32,
}

/// Bytes at the start of `struct dentry` the kprobe programs read in one go: `d_flags`, `d_seq`
/// and `d_hash` (a kernel without lock debugging starts the struct with them).
/// [`Offsets::check_windows`] says whether a kernel's layout allows it.
pub const DENTRY_WINDOW: usize = 24;

/// Bytes at the start of `struct dentry` the kprobe programs read in one go at a writer's entry
/// and exit: the head, `d_parent`, `d_name` and `d_inode` (in that order on every kernel without
/// lock debugging). [`Offsets::check_windows`] says whether a kernel's layout allows it.
pub const DENTRY_SPAN: usize = 56;

/// `struct qstr` (hash, len, name pointer), which the probes read whole.
pub const QSTR_SIZE: usize = 16;

impl Offsets {
    /// Whether the fields the probes take out of one read lie inside it, aligned: `d_flags`,
    /// `d_seq` and `d_hash.pprev` in the dentry's first [`DENTRY_WINDOW`] bytes; those,
    /// `d_parent`, `d_inode` and `d_name`'s fields in its first [`DENTRY_SPAN`] bytes; and
    /// `hash`, `len` and `name` in the [`QSTR_SIZE`] bytes of a qstr. On failure, the first
    /// field that does not, and its offset.
    pub fn check_windows(&self) -> Result<(), (&'static str, u32)> {
        let name = |off: u32| self.d_name.saturating_add(off);
        let fields = [
            ("dentry.d_flags", self.d_flags, 4, DENTRY_WINDOW),
            ("dentry.d_seq", self.d_seq, 4, DENTRY_WINDOW),
            ("dentry.d_hash.pprev", self.d_hash_pprev, 8, DENTRY_WINDOW),
            ("dentry.d_parent", self.d_parent, 8, DENTRY_SPAN),
            ("dentry.d_name.hash", name(self.qstr_hash), 4, DENTRY_SPAN),
            ("dentry.d_name.len", name(self.qstr_len), 4, DENTRY_SPAN),
            ("dentry.d_name.name", name(self.qstr_name), 8, DENTRY_SPAN),
            ("dentry.d_inode", self.d_inode, 8, DENTRY_SPAN),
            ("qstr.hash", self.qstr_hash, 4, QSTR_SIZE),
            ("qstr.len", self.qstr_len, 4, QSTR_SIZE),
            ("qstr.name", self.qstr_name, 8, QSTR_SIZE),
        ];
        for (name, off, size, window) in fields {
            if off % size != 0 || off as usize + size as usize > window {
                return Err((name, off));
            }
        }
        Ok(())
    }
}

/// Load-time configuration of the programs (the `CONFIG` global).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub offsets: Offsets,
    /// Only dentries whose `d_sb->s_dev` is in this list are recorded; all zero: record all.
    pub devs: [u32; MAX_DEVS],
    /// Ring buffer wakeup policy: submit with `BPF_RB_NO_WAKEUP` and wake the consumer only
    /// when the ring holds more than this many bytes (0: wake on every event).
    pub wakeup_bytes: u64,
    /// Possible CPUs (their ids are below it): where a call that migrated looks for its slot.
    pub cpus: u32,
    /// 1: the layout passes [`Offsets::check_windows`], so kprobe programs read a dentry's head
    /// and a qstr in one copy each; 0: one read per field (debugging and real-time
    /// configurations enlarge locks and move fields). fentry programs read per field anyway.
    pub fast_reads: u32,
}

impl Offsets {
    pub const ZERO: Offsets = Offsets {
        d_flags: 0,
        d_seq: 0,
        d_hash_pprev: 0,
        d_parent: 0,
        d_name: 0,
        d_inode: 0,
        d_sb: 0,
        qstr_hash: 0,
        qstr_len: 0,
        qstr_name: 0,
        sb_s_dev: 0,
        _pad: 0,
    };
}

impl Config {
    pub const ZERO: Config = Config {
        offsets: Offsets::ZERO,
        devs: [0; MAX_DEVS],
        wakeup_bytes: 0,
        cpus: 0,
        fast_reads: 0,
    };
}

/// How many file systems one recording can filter on.
pub const MAX_DEVS: usize = 4;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain old data, repr(C), no padding holes.
    unsafe impl aya::Pod for super::Event {}
    unsafe impl aya::Pod for super::Offsets {}
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::Counts {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn event_round_trips_through_bytes() {
        let mut e = Event::zeroed();
        e.ts_begin = 1;
        e.ts_end = 2;
        e.dentry = 0xffff_8880_0000_1234;
        e.probe = Probe::DLookupRcu as u8;
        e.flags = flags::VALIDATED | flags::HASHED_BEGIN;
        e.set_name(b"hello");
        let back = Event::from_bytes(e.as_bytes());
        assert_eq!(back, e);
        assert_eq!(back.name_bytes(), b"hello");
    }

    #[test]
    fn long_names_are_cut_and_flagged() {
        let mut e = Event::zeroed();
        let long = [b'x'; 100];
        e.set_name(&long);
        assert_eq!(e.name_len, 100);
        assert!(e.has(flags::NAME_TRUNCATED));
        assert_eq!(e.name_bytes().len(), NAME_CAP);
    }

    #[test]
    fn window_check_accepts_the_usual_layout_only() {
        let mut o = Offsets {
            d_flags: 0,
            d_seq: 4,
            d_hash_pprev: 16,
            d_parent: 24,
            d_name: 32,
            d_inode: 48,
            d_sb: 104,
            qstr_hash: 0,
            qstr_len: 4,
            qstr_name: 8,
            ..Offsets::ZERO
        };
        assert_eq!(o.check_windows(), Ok(()));
        o.d_hash_pprev = 24;
        assert_eq!(o.check_windows(), Err(("dentry.d_hash.pprev", 24)));
        o.d_hash_pprev = 16;
        o.d_inode = 56;
        assert_eq!(o.check_windows(), Err(("dentry.d_inode", 56)));
        o.d_inode = 48;
        o.d_name = 48;
        assert_eq!(o.check_windows(), Err(("dentry.d_name.name", 56)));
        o.d_name = 32;
        o.qstr_len = 6;
        assert_eq!(o.check_windows(), Err(("dentry.d_name.len", 38)));
    }

    #[test]
    fn probe_codes_round_trip() {
        for p in Probe::ALL {
            assert_eq!(Probe::from_u8(p as u8), Some(p));
            assert!(p.counter_index() < COUNTERS);
        }
        for k in OpKind::ALL {
            assert_eq!(OpKind::from_u32(k as u32), Some(k));
        }
        assert_eq!(Probe::from_u8(0), None);
    }

    #[test]
    fn kernel_probes_are_every_probe_but_op_with_distinct_programs() {
        let kernel: std::vec::Vec<Probe> = Probe::ALL
            .iter()
            .copied()
            .filter(|p| *p != Probe::Op)
            .collect();
        assert_eq!(kernel, Probe::KERNEL);
        let mut stems: std::vec::Vec<&str> = Probe::KERNEL
            .iter()
            .filter(|p| p.is_attach_target())
            .map(|p| p.prog_stem())
            .collect();
        let n = stems.len();
        stems.sort();
        stems.dedup();
        assert_eq!(stems.len(), n, "two probes share program names");
        assert!(!Probe::DMoveTarget.is_attach_target());
        assert!(Probe::DMoveTarget.is_writer() && !Probe::Op.is_writer());
    }
}
