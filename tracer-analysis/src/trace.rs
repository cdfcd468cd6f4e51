//! The trace file: a versioned header, the events in checksummed chunks, a footer with counts,
//! drops and a clean-end mark. Written by the recorder, the model replay and the checker; read
//! by the diff and `tracer export`.
//!
//! ```text
//! file   := "DCTRACE\0" u32:format u32:len header-json[len] u32:crc   chunk*   footer
//! chunk  := "EVTS" u32:count u32:bytes u32:crc record[count]          (records: `bytes` long)
//! record := fields[FIXED] name[min(name_len, NAME_CAP)]
//! footer := "FOOT" u32:len footer-json[len] u32:crc "DCEND\0\0\0"
//! ```
//! All integers little endian. A record is an [`Event`] as its ABI lays it out, cut after the
//! stored bytes of its name: `fields` are its bytes before `name` (every other field,
//! `name_len` among them), and the name bytes past `name_len` it drops are zero in an event
//! read back. Names are mostly a few bytes of the 64 the ABI holds: a record is some 95 bytes,
//! not 152, and the kernel copies that much less in and out (format 2). The chunk's CRC-32
//! covers its records. Format 1 (still read) had no `bytes` and stored each event whole:
//! `chunk := "EVTS" u32:count u32:crc event[count * EVENT_SIZE]`; its name bytes past
//! `name_len` are zeroed when read, as format 2 drops them.
//!
//! A file without the end mark was cut short (truncated); a bad magic or checksum, a header or
//! footer length no JSON object has, or records that do not fill their chunk exactly, are
//! corruption; another format or schema version is refused by name.
use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{self, BufWriter, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use crate::output::{AtomicFile, Durability, OutputError};
use serde::{Deserialize, Serialize};
use tracer_common::{Event, Offsets, Probe, EVENT_SIZE, NAME_CAP, SCHEMA_VERSION};

const MAGIC: &[u8; 8] = b"DCTRACE\0";
const CHUNK_MAGIC: &[u8; 4] = b"EVTS";
const FOOTER_MAGIC: &[u8; 4] = b"FOOT";
const END_MARK: &[u8; 8] = b"DCEND\0\0\0";
/// Container layout version written (independent of the event schema); [`Layout`] says which
/// ones are read.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of a record before the name: every field of an [`Event`] but `name`, which is last.
const FIXED: usize = std::mem::offset_of!(Event, name);
const _: () = assert!(FIXED + NAME_CAP == EVENT_SIZE);
/// Where `name_len` sits in a record.
const NAME_LEN_AT: usize = std::mem::offset_of!(Event, name_len);
const CHUNK_EVENTS: usize = 4096;
/// Name bytes the writer copies for a name this long or shorter (one 16-byte move).
const SHORT_NAME: usize = 16;
/// Headers and footers are small JSON objects; a length outside these bounds is corruption.
const MAX_JSON: u32 = 16 << 20;
/// `{}`, the shortest JSON object.
const MIN_JSON: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a trace file (bad magic); expected a file written by `tracer record`, `tracer replay` or `tracer check`")]
    NotATrace { path: PathBuf },
    #[error("{path}: trace format {found}, this tracer reads formats 1 to {FORMAT_VERSION}; re-record it or use the tracer version that wrote it")]
    WrongFormat { path: PathBuf, found: u32 },
    #[error("{path}: event schema {found} (event size {size}), this tracer reads schema {SCHEMA_VERSION} (size {EVENT_SIZE}); re-record it or use the tracer version that wrote it")]
    WrongSchema {
        path: PathBuf,
        found: u32,
        size: usize,
    },
    #[error("{path}: truncated after {events} events ({what}); the recording did not end cleanly, the events before the cut are intact")]
    Truncated {
        path: PathBuf,
        events: u64,
        what: &'static str,
    },
    #[error("{path}: corrupted at byte {offset} ({what}); {events} events before it are intact")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        events: u64,
        what: String,
    },
}

/// Who wrote a trace.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `tracer record`: the probes on a live kernel.
    #[default]
    Kernel,
    /// `tracer replay`: the model.
    Model,
    /// `tracer check`: a model checker's counterexample, a model trace too.
    Check,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Kernel => "kernel",
            Origin::Model => "model",
            Origin::Check => "check",
        }
    }

    /// Whether events of this trace come from the model rather than a kernel.
    pub fn is_model(self) -> bool {
        matches!(self, Origin::Model | Origin::Check)
    }
}

/// How a recording ended.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum End {
    /// The workload ran to its end and everything in flight was drained.
    Finished,
    /// Stopped by a signal.
    Interrupted,
    /// Not ended yet (the recorder's spill file while it runs).
    #[default]
    Partial,
    /// The workload or the consumer failed; the message says how.
    Error(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Finished => f.write_str("finished"),
            End::Interrupted => f.write_str("interrupted"),
            End::Partial => f.write_str("partial"),
            End::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// How a target function was traced, as the header records it: `"fentry"`, `"kprobe"`,
/// `"absent: why"` or `"refused: why"` in JSON. Recordings before session 9 wrote
/// `"unavailable: why"` for both of the last two; they read back as [`Attachment::Absent`]
/// only when every attach family's words are that recorder's two absence sentences, else as
/// [`Attachment::Refused`] (a doubt reads as the case the verdict cannot rest on).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub enum Attachment {
    /// fentry/fexit programs.
    Fentry,
    /// kprobe/kretprobe programs.
    Kprobe,
    /// No out-of-line body to attach to: the function is inlined into every caller, or this
    /// kernel does not have it. Its code runs, if at all, inside its callers.
    Absent(String),
    /// The function has a body of its own (or only GCC clones of it), but it was not traced:
    /// the kernel or the tracer refused it, or the tracer could not tell. Its calls went unseen.
    Refused(String),
}

/// What the recorder before session 9 wrote for an attach family that found no function body.
const LEGACY_ABSENT: [&str; 2] = [
    "(absent, or inlined everywhere)",
    "(inlined or absent in this kernel)",
];

impl Attachment {
    pub fn is_attached(&self) -> bool {
        matches!(self, Attachment::Fentry | Attachment::Kprobe)
    }

    /// Why it was not traced, if it was not.
    pub fn why_not(&self) -> Option<&str> {
        match self {
            Attachment::Fentry | Attachment::Kprobe => None,
            Attachment::Absent(why) | Attachment::Refused(why) => Some(why),
        }
    }

    fn legacy(why: &str) -> Attachment {
        let absent = why
            .split("; ")
            .all(|family| LEGACY_ABSENT.iter().any(|a| family.ends_with(a)));
        if absent {
            Attachment::Absent(why.to_string())
        } else {
            Attachment::Refused(why.to_string())
        }
    }
}

impl From<Attachment> for String {
    fn from(a: Attachment) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Attachment {
    type Error = String;

    fn try_from(s: String) -> Result<Attachment, String> {
        let tagged = |tag: &str| s.strip_prefix(tag).map(str::to_string);
        match s.as_str() {
            "fentry" => Ok(Attachment::Fentry),
            "kprobe" => Ok(Attachment::Kprobe),
            _ => {
                if let Some(why) = tagged("absent: ") {
                    Ok(Attachment::Absent(why))
                } else if let Some(why) = tagged("refused: ") {
                    Ok(Attachment::Refused(why))
                } else if let Some(why) = tagged("unavailable: ") {
                    Ok(Attachment::legacy(&why))
                } else {
                    Err(format!(
                        "attach mode {s:?}: expected \"fentry\", \"kprobe\", \"absent: why\" or \
                         \"refused: why\""
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attachment::Fentry => f.write_str("fentry"),
            Attachment::Kprobe => f.write_str("kprobe"),
            Attachment::Absent(why) => write!(f, "absent: {why}"),
            Attachment::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// Whether the kernel counts every call it skipped a recorded program for (kernel traces).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SkipCounting {
    /// Every skip the kernel can make of these programs is counted (`recursion_misses`), or
    /// none can happen.
    Counted,
    /// kprobe programs on a kernel before 6.7 that preempts kernel code, or may: there a BPF
    /// map syscall of another task (`bpf_disable_instrumentation`: migration, not preemption,
    /// disabled) preempted with `bpf_prog_active` raised makes `trace_call_bpf` skip them on
    /// that CPU and count nothing (6.7's dd8657894c11 "bpf: Count missed stats in
    /// trace_call_bpf" counts it). A call lost so leaves no trace.
    KprobeUncounted,
}

/// What a trace is of and how it was made.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Header {
    pub schema: u32,
    pub event_size: usize,
    pub origin: Origin,
    pub tool_version: String,
    /// `uname -r` of the traced kernel (kernel traces), or the release the model profile stands for.
    pub kernel_release: String,
    /// Per target symbol: how it was traced.
    pub attach: BTreeMap<String, Attachment>,
    /// Per writer of `d_seq`, `d_hash` or `d_inode`: the probe that observes it, or the traced
    /// functions containing its calls when it has no probe of its own, or why nothing does
    /// (kernel traces; for people: the diff judges `attach` itself, `crate::writers`).
    pub observed_through: BTreeMap<String, String>,
    pub offsets: Option<OffsetsJson>,
    pub workload: Option<String>,
    /// The workload's TOML as run, so a replay needs nothing else.
    pub workload_toml: Option<String>,
    pub seed: Option<u64>,
    /// The `--scale` factor the workload ran with (its TOML is stored unscaled).
    pub scale: Option<f64>,
    /// Model profile (model traces).
    pub profile: Option<String>,
    /// Pointers are stored raw (else as per-trace ids).
    pub raw_pointers: bool,
    /// File systems recorded (kernel `s_dev`).
    pub devs: Vec<u32>,
    /// Anything else worth keeping (ring size, command line, ...).
    pub notes: BTreeMap<String, String>,
    /// Whether the kernel counted every skip of the programs (None: a recorder before session
    /// 9, or a model trace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_counting: Option<SkipCounting>,
}

/// [`Offsets`] as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OffsetsJson {
    pub d_flags: u32,
    pub d_seq: u32,
    pub d_hash_pprev: u32,
    pub d_parent: u32,
    pub d_name: u32,
    pub d_inode: u32,
    pub d_sb: u32,
    pub qstr_hash: u32,
    pub qstr_len: u32,
    pub qstr_name: u32,
    pub sb_s_dev: u32,
}

impl From<&Offsets> for OffsetsJson {
    fn from(o: &Offsets) -> Self {
        OffsetsJson {
            d_flags: o.d_flags,
            d_seq: o.d_seq,
            d_hash_pprev: o.d_hash_pprev,
            d_parent: o.d_parent,
            d_name: o.d_name,
            d_inode: o.d_inode,
            d_sb: o.d_sb,
            qstr_hash: o.qstr_hash,
            qstr_len: o.qstr_len,
            qstr_name: o.qstr_name,
            sb_s_dev: o.sb_s_dev,
        }
    }
}

impl Header {
    pub fn new(origin: Origin) -> Header {
        Header {
            schema: SCHEMA_VERSION,
            event_size: EVENT_SIZE,
            origin,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            ..Header::default()
        }
    }
}

/// One workload thread: the link from an event's `tid` to the workload's thread list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ThreadInfo {
    /// The thread's name in the workload (`reader.0`, ...), in the workload's thread order.
    pub name: String,
    pub tid: u32,
}

/// Counts at the end of a trace.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Footer {
    /// Events in the file.
    pub events: u64,
    /// Events per probe symbol (and "workload" for operations).
    pub per_probe: BTreeMap<String, u64>,
    /// Calls the probes saw after filtering, per symbol (kernel traces).
    pub hits: BTreeMap<String, u64>,
    /// Calls that produced no event, per symbol (stash or ring buffer full).
    pub drops: BTreeMap<String, u64>,
    /// Why the recording ended.
    pub end: End,
    /// Per CPU, the last `cpu_seq` its probes stamped (kernel traces): events of that CPU
    /// numbered above the last one in the file were lost at the end.
    pub last_cpu_seq: BTreeMap<u32, u64>,
    /// The workload's threads, in the workload's order (empty when no workload ran). Listed
    /// only when the workload returned, and then every operation it ran is in the file: the
    /// diff relies on it for a recording that failed after (`End::Error`).
    pub threads: Vec<ThreadInfo>,
    /// Per probe symbol, calls whose entry program the kernel skipped (`recursion_misses` of
    /// the entry program; kernel traces, only the probes it skipped). Such a call leaves a
    /// slot the thread's previous call left armed in place, so the exit may pair that call's
    /// entry with this one's exit. Counted in `hits` and `drops` too. Left out when empty, as
    /// in footers before it: a trace without skips is byte for byte what it was.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_entries: BTreeMap<String, u64>,
    /// Per probe symbol, calls whose exit program the kernel skipped (their `drops` count
    /// them).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_exits: BTreeMap<String, u64>,
    /// Per probe symbol, exits that found no entry of their call on a traced file system (a
    /// lookup's kretprobe, which sees the dentry it returns): calls whose entry program the
    /// kernel passed over uncounted while `bpf_prog_active` was held and whose exit program
    /// ran, or whose entry's slot was lost. A kprobe missed by reentrancy is not among them:
    /// the kprobe and the kretprobe of one function are one probe to the kernel, which then
    /// hooks no return either. `skipped_entries` counts at least as many (it takes the larger
    /// of these and the kernel's own count), so `hits` and `drops` do too.
    ///
    /// Limitation: the exit cannot tell the two causes apart (neither leaves it anything to
    /// find), so a slot the tracer lost (`SLOTS`, an LRU, recycled the entry's, or had no room
    /// for it) counts here as a skip: that call is then counted twice, as its entry's drop (or
    /// a hit without an event) and as a skipped entry, and the anomalies on that probe are set
    /// aside (`anomaly-on-skipped-probe`) although no exit took another call's slot. Such a
    /// loss needs `SLOTS`' 16384 (thread, probe) keys in use, or fewer on many CPUs, whose
    /// per-CPU free lists hold some of its nodes back.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exits_without_entry: BTreeMap<String, u64>,
    /// Per probe symbol attached through kprobes, hits its entry kprobe missed on any file
    /// system (the link's `missed`, 6.7+: a kprobe hit while another kprobe's handler ran on
    /// that CPU). Counted in `skipped_entries` (added to the recursion guard's skips), so in
    /// `hits` and `drops` too.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kprobe_missed_entries: BTreeMap<String, u64>,
    /// Per probe symbol attached through kprobes, returns its kretprobe missed on any file
    /// system (no free instance, or reentrancy): a traced call's is a hit without an event,
    /// which `drops` counts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kprobe_missed_exits: BTreeMap<String, u64>,
    /// Probe symbols attached through kprobes whose entry kprobe's misses the kernel does not
    /// report (before 6.7, or a kprobe attached without a bpf_link), for the record: the
    /// verdict follows the header's `skip_counting` (a preemptive kernel before 6.7 can skip
    /// a kprobe program uncounted; on a cooperative one only a hit inside another kprobe's
    /// handler can, which no program of this tracer makes), as lookups and writers alike.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kprobe_misses_uncounted: Vec<String>,
}

/// The header note in which recorders before the footer's `skipped_entries` wrote them, as
/// "symbol count, symbol count".
const SKIPPED_ENTRIES_NOTE: &str = "recursion_misses_entry";

impl Footer {
    pub fn lost(&self) -> u64 {
        self.drops.values().sum()
    }

    /// Per probe, the calls whose entry program the kernel skipped: the footer's count, or
    /// what an older recorder wrote in `header`'s notes, and at least its exits without their
    /// entry and its kprobe's misses (each one such a call, whatever else the footer says). An
    /// item of the note whose count does not parse counts as one skip: the note says some were
    /// skipped.
    pub fn skipped_entries(&self, header: &Header) -> BTreeMap<String, u64> {
        let mut out = if !self.skipped_entries.is_empty() {
            self.skipped_entries.clone()
        } else if let Some(note) = header.notes.get(SKIPPED_ENTRIES_NOTE) {
            note.split(',')
                .map(|item| {
                    let item = item.trim();
                    let (sym, n) = item.rsplit_once(' ').unwrap_or((item, ""));
                    (sym.to_string(), n.parse().unwrap_or(1))
                })
                .filter(|(sym, n)| !sym.is_empty() && *n > 0)
                .collect()
        } else {
            BTreeMap::new()
        };
        let shown = self
            .exits_without_entry
            .iter()
            .chain(&self.kprobe_missed_entries);
        for (sym, n) in shown.filter(|(_, n)| **n > 0) {
            let e = out.entry(sym.clone()).or_insert(0);
            *e = (*e).max(*n);
        }
        out
    }

    /// A trace with drops or an abnormal end is incomplete.
    pub fn complete(&self) -> bool {
        self.lost() == 0 && self.end == End::Finished
    }
}

/// Replaces kernel pointers with stable per-trace ids (KASLR: pointers are secrets).
/// Dentries (and parents) share one id space, inodes another; 0 stays 0 (NULL). Name hashes
/// get ids of their own: since 4.8 the kernel salts `full_name_hash` with the parent dentry's
/// address, so a raw hash carries bits of a pointer. Equal hashes keep equal ids.
/// Hashed with foldhash rather than SipHash: the recorder's consumer maps four pointers per
/// event while the workload runs, and kernel addresses are not chosen by an adversary.
#[derive(Default)]
pub struct Anonymizer {
    dentries: foldhash::HashMap<u64, u64>,
    inodes: foldhash::HashMap<u64, u64>,
    name_hashes: foldhash::HashMap<u64, u64>,
}

impl Anonymizer {
    fn id(map: &mut foldhash::HashMap<u64, u64>, ptr: u64) -> u64 {
        if ptr == 0 {
            return 0;
        }
        let next = map.len() as u64 + 1;
        *map.entry(ptr).or_insert(next)
    }

    pub fn apply(&mut self, ev: &mut Event) {
        ev.dentry = Self::id(&mut self.dentries, ev.dentry);
        ev.parent = Self::id(&mut self.dentries, ev.parent);
        ev.inode_begin = Self::id(&mut self.inodes, ev.inode_begin);
        ev.inode_end = Self::id(&mut self.inodes, ev.inode_end);
        // At most 2^32 - 1 distinct non-zero hashes: their ids fit the field.
        ev.name_hash = Self::id(&mut self.name_hashes, u64::from(ev.name_hash)) as u32;
    }
}

/// Zeroes name bytes past `name_len`: the probes copy a fixed window, whatever follows the
/// name in kernel memory must not reach the file.
pub fn sanitize(ev: &mut Event) {
    let n = (ev.name_len as usize).min(NAME_CAP);
    ev.name[n..].fill(0);
}

/// Streams events into a trace file.
pub struct Writer {
    path: PathBuf,
    out: Out,
    /// The chunk being filled, its head at the front, with room for [`CHUNK_EVENTS`] whole
    /// events: each event is copied in fixed sizes the compiler inlines (its fields, then the
    /// first [`SHORT_NAME`] bytes of its name field or all of it), and the next record starts
    /// at this one's end. A `memcpy` call of each record's length, with the vector's capacity
    /// check, was about 7 instructions an event more (callgrind).
    chunk: Box<[u8]>,
    /// Bytes of `chunk` in use: the head and the records so far.
    chunk_len: usize,
    chunk_events: usize,
    footer: Footer,
    /// Events per raw `probe` byte, named in the footer at the end: a map keyed by symbol
    /// looked up per event cost a tenth of a replay (string compares).
    per_probe: [u64; 256],
}

/// Where a writer's bytes go: an output that appears whole when finished, or a scratch file
/// readable while it grows (the recorder's spill, which a crash must not delete).
enum Out {
    Atomic(AtomicFile),
    Scratch(BufWriter<File>),
}

impl Out {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Out::Atomic(f) => f.write_all(bytes),
            Out::Scratch(f) => f.write_all(bytes),
        }
    }

    /// A whole chunk: written past the buffer, which would only copy it.
    fn write_chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Out::Atomic(f) => f.write_unbuffered(bytes),
            Out::Scratch(f) => {
                f.flush()?;
                f.get_mut().write_all(bytes)
            }
        }
    }
}

/// Bytes of a chunk's head as written (magic, event count, byte count, CRC-32), kept at the
/// front of the chunk buffer so a chunk goes out in one write.
const CHUNK_HEAD: usize = Layout::Compact.chunk_head();

/// How a file's chunks store their events: the formats read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Format 1: each event's [`EVENT_SIZE`] bytes as they are in memory.
    Raw,
    /// Format 2: each event's bytes up to its name's end ([`FIXED`] and the name's bytes).
    Compact,
}

impl Layout {
    fn of_format(format: u32) -> Option<Layout> {
        match format {
            1 => Some(Layout::Raw),
            FORMAT_VERSION => Some(Layout::Compact),
            _ => None,
        }
    }

    /// Bytes of a chunk's head: magic, event count, (format 2) byte count, CRC-32.
    const fn chunk_head(self) -> usize {
        match self {
            Layout::Raw => 12,
            Layout::Compact => 16,
        }
    }
}

/// Per stored length `n`, the mask that keeps the first `n` bytes of a name.
static NAME_MASKS: [[u8; NAME_CAP]; NAME_CAP + 1] = {
    let mut masks = [[0; NAME_CAP]; NAME_CAP + 1];
    let mut n = 0;
    while n <= NAME_CAP {
        let mut i = 0;
        while i < n {
            masks[n][i] = 0xff;
            i += 1;
        }
        n += 1;
    }
    masks
};

/// The name bytes a record stores for an event whose `name_len` is `name_len`.
fn stored_name(name_len: u32) -> usize {
    (name_len as usize).min(NAME_CAP)
}

/// The `name_len` of the record that starts `rec` (at least [`FIXED`] bytes).
fn record_name_len(rec: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&rec[NAME_LEN_AT..NAME_LEN_AT + 4]);
    u32::from_le_bytes(b)
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Writer {
    /// Starts `path`, mode 0600, and writes the header. The file appears (replacing any
    /// previous one) only when [`Writer::finish`] succeeds; a writer dropped before leaves
    /// the previous file as it was.
    pub fn create(path: &Path, header: &Header) -> Result<Writer, TraceError> {
        Writer::create_with(path, header, Durability::Synced)
    }

    /// [`Writer::create`] with the durability asked: [`Durability::Recreatable`] for a trace
    /// made again from its inputs (a replay's model trace), not synced before it is renamed.
    pub fn create_with(
        path: &Path,
        header: &Header,
        durability: Durability,
    ) -> Result<Writer, TraceError> {
        let out = Out::Atomic(AtomicFile::create_with(path, 0o600, durability)?);
        Writer::start(path, out, header)
    }

    /// Creates (or replaces) `path`, mode 0600, written in place: a reader sees the events
    /// written so far, and a crash leaves them (a trace without a footer, read as truncated).
    pub fn create_scratch(path: &Path, header: &Header) -> Result<Writer, TraceError> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err(path))?;
        Writer::start(
            path,
            Out::Scratch(BufWriter::with_capacity(1 << 20, file)),
            header,
        )
    }

    fn start(path: &Path, mut out: Out, header: &Header) -> Result<Writer, TraceError> {
        let json = serde_json::to_vec(header).map_err(|e| io_err(path)(e.into()))?;
        let mut head = Vec::with_capacity(json.len() + 20);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
        head.extend_from_slice(&json);
        head.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        out.write_all(&head).map_err(io_err(path))?;
        Ok(Writer {
            path: path.to_path_buf(),
            out,
            chunk: vec![0; CHUNK_HEAD + CHUNK_EVENTS * EVENT_SIZE].into_boxed_slice(),
            chunk_len: CHUNK_HEAD,
            chunk_events: 0,
            footer: Footer::default(),
            per_probe: [0; 256],
        })
    }

    pub fn push(&mut self, ev: &Event) -> Result<(), TraceError> {
        self.push_all(std::slice::from_ref(ev))
    }

    /// [`Writer::push`] of each event in turn.
    pub fn push_all(&mut self, events: &[Event]) -> Result<(), TraceError> {
        let mut rest = events;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(rest.len().min(CHUNK_EVENTS - self.chunk_events));
            let (chunk, per_probe) = (&mut *self.chunk, &mut self.per_probe);
            let mut at = self.chunk_len;
            for ev in now {
                // At most CHUNK_EVENTS events a chunk, each at most EVENT_SIZE bytes: the
                // whole event fits, and the bytes past its record are the next one's.
                let to = &mut chunk[at..at + EVENT_SIZE];
                let (fixed, name) = ev.as_bytes().split_at(FIXED);
                to[..FIXED].copy_from_slice(fixed);
                let n = stored_name(ev.name_len);
                // Most names are short: their first bytes, not the whole field.
                if n <= SHORT_NAME {
                    to[FIXED..FIXED + SHORT_NAME].copy_from_slice(&name[..SHORT_NAME]);
                } else {
                    to[FIXED..].copy_from_slice(name);
                }
                at += FIXED + n;
                per_probe[usize::from(ev.probe)] += 1;
            }
            self.chunk_len = at;
            self.chunk_events += now.len();
            self.footer.events += now.len() as u64;
            if self.chunk_events == CHUNK_EVENTS {
                self.flush_chunk()?;
            }
            rest = later;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), TraceError> {
        if self.chunk_events == 0 {
            return Ok(());
        }
        let chunk = &mut self.chunk[..self.chunk_len];
        let crc = crc32fast::hash(&chunk[CHUNK_HEAD..]);
        // At most CHUNK_EVENTS * EVENT_SIZE bytes.
        let bytes = (chunk.len() - CHUNK_HEAD) as u32;
        let head = &mut chunk[..CHUNK_HEAD];
        head[..4].copy_from_slice(CHUNK_MAGIC);
        head[4..8].copy_from_slice(&(self.chunk_events as u32).to_le_bytes());
        head[8..12].copy_from_slice(&bytes.to_le_bytes());
        head[12..].copy_from_slice(&crc.to_le_bytes());
        self.out.write_chunk(chunk).map_err(io_err(&self.path))?;
        self.chunk_len = CHUNK_HEAD;
        self.chunk_events = 0;
        Ok(())
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.footer.events
    }

    /// Writes the last chunk, the footer (the counts are the writer's own; `hits`, `drops` and
    /// `end` come from `footer`) and the end mark.
    pub fn finish(mut self, mut footer: Footer) -> Result<Footer, TraceError> {
        self.flush_chunk()?;
        footer.events = self.footer.events;
        footer.per_probe = BTreeMap::new();
        for (raw, &n) in (0..=u8::MAX).zip(self.per_probe.iter()) {
            if n > 0 {
                let name = Probe::from_u8(raw).map_or("unknown", Probe::symbol);
                *footer.per_probe.entry(name.to_string()).or_default() += n;
            }
        }
        let json = serde_json::to_vec(&footer).map_err(|e| io_err(&self.path)(e.into()))?;
        let mut tail = Vec::with_capacity(json.len() + 20);
        tail.extend_from_slice(FOOTER_MAGIC);
        tail.extend_from_slice(&(json.len() as u32).to_le_bytes());
        tail.extend_from_slice(&json);
        tail.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        tail.extend_from_slice(END_MARK);
        self.out.write_all(&tail).map_err(io_err(&self.path))?;
        match self.out {
            Out::Atomic(f) => f.commit()?,
            Out::Scratch(mut f) => {
                f.flush().map_err(io_err(&self.path))?;
                // A pipe (a trace streamed to its reader) has nothing to sync.
                if f.get_ref().metadata().is_ok_and(|m| m.is_file()) {
                    f.get_ref().sync_all().map_err(io_err(&self.path))?;
                }
            }
        }
        Ok(footer)
    }
}

/// Whether `count` format-2 records fill `records` exactly, each one's fixed part inside it.
/// The walk adds lengths and tests only the fixed part's room per record: the ends only grow,
/// so one that ran past the chunk leaves the last end past it too (a test of each end as
/// well, and the record's number kept for the message, were 18 instructions a record,
/// callgrind). [`Reader::records_misfit`] says why not.
#[inline(always)]
fn records_fill(records: &[u8], count: u32) -> bool {
    let mut at = 0;
    for _ in 0..count {
        let Some(rec) = records.get(at..).and_then(<[u8]>::first_chunk::<FIXED>) else {
            return false;
        };
        at += FIXED + stored_name(record_name_len(rec));
    }
    at == records.len()
}

/// Streams events out of a trace file, chunk by chunk: memory stays constant with length.
pub struct Reader {
    path: PathBuf,
    /// Read without a buffer in between: a chunk's records are read straight into `chunk`,
    /// with the head of the record after them in the same read (a `BufReader` in front
    /// copied the first 64 KB of every chunk through its own buffer).
    input: File,
    pub header: Header,
    layout: Layout,
    offset: u64,
    events: u64,
    /// The current chunk's records, checked whole, and [`NAME_CAP`] bytes more (the next
    /// record's head read with them, then anything): a name is copied whole and masked.
    chunk: Vec<u8>,
    /// Where the next record starts in `chunk`.
    pos: usize,
    /// Records of the chunk not yet handed out.
    left: u32,
    /// The event handed out last, decoded from its record.
    scratch: Event,
    /// Bytes read past the current chunk's records (the next record's head), not yet
    /// consumed: `carry[carry_at..carry_len]`.
    carry: [u8; CHUNK_HEAD],
    carry_at: usize,
    carry_len: usize,
    footer: Option<Footer>,
}

/// The bytes of `ev`, to decode a record into.
fn event_bytes_mut(ev: &mut Event) -> &mut [u8; EVENT_SIZE] {
    // SAFETY: Event is repr(C) of integers and byte arrays with no padding (its size is
    // asserted in tracer-common), so any bytes written here leave a valid event.
    unsafe { &mut *(ev as *mut Event).cast::<[u8; EVENT_SIZE]>() }
}

/// The record at `*pos` of a chunk checked by [`Reader::read_chunk`], moving `*pos` past it;
/// None if it does not fit (which that check rules out).
#[inline(always)]
fn take_record<'c>(chunk: &'c [u8], pos: &mut usize, layout: Layout) -> Option<Record<'c>> {
    // read_chunk left room for every record's whole name: one test of the room for a whole
    // event, the fields and the name split off at lengths known when compiled (a test for
    // each was two more branches a record, callgrind).
    let whole = chunk.get(*pos..)?.first_chunk::<EVENT_SIZE>()?;
    let (fields, rest) = whole.split_first_chunk::<FIXED>()?;
    let name = rest.first_chunk::<NAME_CAP>()?;
    let stored = stored_name(record_name_len(fields));
    *pos += match layout {
        Layout::Raw => EVENT_SIZE,
        Layout::Compact => FIXED + stored,
    };
    Some(Record {
        fields,
        name,
        stored,
    })
}

/// The records of a chunk checked whole by [`Reader::read_chunk`], in order.
pub struct Records<'c> {
    chunk: &'c [u8],
    pos: usize,
    left: u32,
    layout: Layout,
}

impl<'c> Iterator for Records<'c> {
    type Item = Record<'c>;

    /// The next record; the chunk's check makes every one fit (the chunk is followed by
    /// [`NAME_CAP`] bytes of room, and its records fill it exactly).
    #[inline(always)]
    fn next(&mut self) -> Option<Record<'c>> {
        self.left = self.left.checked_sub(1)?;
        take_record(self.chunk, &mut self.pos, self.layout)
    }
}

/// One record, read in place: its fields as the [`Event`] of the same name holds them.
#[derive(Clone, Copy)]
pub struct Record<'c> {
    fields: &'c [u8; FIXED],
    /// The [`NAME_CAP`] bytes from the name's start: its stored bytes, then whatever follows
    /// them in the chunk (the next record, format 1's left-overs, or the chunk's slack).
    name: &'c [u8; NAME_CAP],
    /// The name bytes the record stores (as [`Event::name_bytes`] has them), read once.
    stored: usize,
}

/// Accessors of a [`Record`]'s fields, each at its [`Event`] field's offset.
macro_rules! record_fields {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(
            #[inline(always)]
            pub fn $field(&self) -> $ty {
                const AT: usize = std::mem::offset_of!(Event, $field);
                const N: usize = std::mem::size_of::<$ty>();
                let mut b = [0u8; N];
                b.copy_from_slice(&self.fields[AT..AT + N]);
                <$ty>::from_le_bytes(b)
            }
        )*
    };
}

impl<'c> Record<'c> {
    record_fields!(
        ts_begin: u64, ts_end: u64, dentry: u64, parent: u64, inode_begin: u64, inode_end: u64,
        tid: u32, cpu: u32, probe: u8, source: u8, flags: u16, seq_begin: u32, seq_end: u32,
        aux: u32, result: i32, cpu_seq: u32,
    );

    /// A record of `ev`'s bytes, as a trace would hold it.
    #[cfg(test)]
    pub fn of_event(ev: &'c Event) -> Record<'c> {
        let (fields, name) = ev
            .as_bytes()
            .split_first_chunk::<FIXED>()
            .expect("FIXED < EVENT_SIZE");
        let name = name
            .first_chunk::<NAME_CAP>()
            .expect("the name ends the event");
        let stored = stored_name(ev.name_len);
        Record {
            fields,
            name,
            stored,
        }
    }

    /// The recorded name bytes, as [`Event::name_bytes`] gives them.
    #[inline(always)]
    pub fn name_bytes(&self) -> &'c [u8] {
        &self.name[..self.stored.min(NAME_CAP)]
    }

    /// The [`NAME_CAP`] bytes from the name's start: the name's, then bytes that are not
    /// (mask them by [`Record::name_bytes`]'s length).
    #[inline(always)]
    pub fn name_window(&self) -> &'c [u8; NAME_CAP] {
        self.name
    }

    /// The event: the fields, and the name's bytes masked to its stored ones. Copies of fixed
    /// size, no branch on the name's length: its copy and the fill after it were a third of
    /// the decoding's instructions.
    fn decode_into(&self, ev: &mut Event) {
        let mask = &NAME_MASKS[self.stored];
        let dst = event_bytes_mut(ev);
        dst[..FIXED].copy_from_slice(self.fields);
        for i in 0..NAME_CAP {
            dst[FIXED + i] = self.name[i] & mask[i];
        }
    }
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, TraceError> {
        let file = File::open(path).map_err(io_err(path))?;
        let mut r = Reader {
            path: path.to_path_buf(),
            input: file,
            header: Header::default(),
            layout: Layout::Compact,
            offset: 0,
            events: 0,
            chunk: Vec::new(),
            pos: 0,
            left: 0,
            scratch: Event::zeroed(),
            carry: [0; CHUNK_HEAD],
            carry_at: 0,
            carry_len: 0,
            footer: None,
        };
        let mut magic = [0u8; 8];
        if !r.read_exact_or_eof(&mut magic)? || &magic != MAGIC {
            return Err(TraceError::NotATrace { path: r.path });
        }
        let format = r.read_u32("header")?;
        let Some(layout) = Layout::of_format(format) else {
            return Err(TraceError::WrongFormat {
                path: r.path,
                found: format,
            });
        };
        r.layout = layout;
        let json = r.read_json_block("header")?;
        let header: Header = serde_json::from_slice(&json).map_err(|e| r.corrupt(e.to_string()))?;
        if header.schema != SCHEMA_VERSION || header.event_size != EVENT_SIZE {
            return Err(TraceError::WrongSchema {
                path: r.path,
                found: header.schema,
                size: header.event_size,
            });
        }
        r.header = header;
        Ok(r)
    }

    fn corrupt(&self, what: String) -> TraceError {
        self.corrupt_at(self.offset, what)
    }

    fn corrupt_at(&self, offset: u64, what: String) -> TraceError {
        TraceError::Corrupt {
            path: self.path.clone(),
            offset,
            events: self.events,
            what,
        }
    }

    fn truncated(&self, what: &'static str) -> TraceError {
        TraceError::Truncated {
            path: self.path.clone(),
            events: self.events,
            what,
        }
    }

    /// Fills `buf`; Ok(false) on a clean EOF before the first byte, Truncated on a partial read.
    fn read_exact_or_eof(&mut self, buf: &mut [u8]) -> Result<bool, TraceError> {
        Ok(self.read_at_least(buf, buf.len())? > 0)
    }

    /// Fills `buf[..need]` and as much of the rest as one read brings, the carried bytes
    /// first; returns the bytes filled: 0 on a clean EOF before the first byte, Truncated on
    /// EOF after it. Only `need` bytes count as consumed (`offset`); the caller keeps the
    /// rest with [`Reader::carry_over`].
    fn read_at_least(&mut self, buf: &mut [u8], need: usize) -> Result<usize, TraceError> {
        let carried = (self.carry_len - self.carry_at).min(buf.len());
        buf[..carried].copy_from_slice(&self.carry[self.carry_at..self.carry_at + carried]);
        self.carry_at += carried;
        let mut got = carried;
        while got < need {
            match self.input.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(0),
                Ok(0) => return Err(self.truncated("end of file inside a record")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&self.path)(e)),
            }
        }
        self.offset += need as u64;
        Ok(got)
    }

    /// Keeps `extra`, bytes read past a record, for the next read.
    fn carry_over(&mut self, extra: &[u8]) {
        debug_assert_eq!(self.carry_at, self.carry_len, "carried bytes left unread");
        self.carry[..extra.len()].copy_from_slice(extra);
        self.carry_at = 0;
        self.carry_len = extra.len();
    }

    fn read_full(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), TraceError> {
        if self.read_exact_or_eof(buf)? {
            Ok(())
        } else {
            Err(self.truncated(what))
        }
    }

    fn read_u32(&mut self, what: &'static str) -> Result<u32, TraceError> {
        let mut b = [0u8; 4];
        self.read_full(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    /// A length, that many bytes of JSON and their CRC-32. A length no header or footer can
    /// have is corruption at the length, before any read it would ask for: the file may well
    /// go on (an empty read would even look like a cut).
    fn read_json_block(&mut self, what: &'static str) -> Result<Vec<u8>, TraceError> {
        let at = self.offset;
        let len = self.read_u32(what)?;
        if !(MIN_JSON..=MAX_JSON).contains(&len) {
            return Err(self.corrupt_at(at, format!("{what} length {len} is impossible")));
        }
        let mut json = vec![0u8; len as usize];
        self.read_full(&mut json, what)?;
        let crc = self.read_u32(what)?;
        if crc != crc32fast::hash(&json) {
            return Err(self.corrupt(format!("{what} checksum mismatch")));
        }
        Ok(json)
    }

    /// The next event, None after the footer. Errors name truncation or corruption.
    pub fn next_event(&mut self) -> Result<Option<Event>, TraceError> {
        Ok(self.next_event_ref()?.copied())
    }

    /// [`Reader::next_event`] without the copy: the event decoded into the reader's own.
    pub fn next_event_ref(&mut self) -> Result<Option<&Event>, TraceError> {
        if self.left == 0 && !self.next_chunk()? {
            return Ok(None);
        }
        let Some(rec) = take_record(&self.chunk, &mut self.pos, self.layout) else {
            return Err(self.record_past_chunk());
        };
        rec.decode_into(&mut self.scratch);
        self.left -= 1;
        self.events += 1;
        Ok(Some(&self.scratch))
    }

    /// The records of the current chunk not yet handed out (of the next chunk with events
    /// when none are left), where they lie, None after the footer: for a reader that wants a
    /// few fields, not a whole [`Event`] (the diff's, which decoded every event into 152 bytes
    /// to read them back at once). They count as read at once: the chunk's bookkeeping is
    /// done once a chunk, not once a record (a record at a time through a `Result` was some
    /// 20 instructions an event, callgrind).
    #[inline]
    pub fn next_records(&mut self) -> Result<Option<Records<'_>>, TraceError> {
        if self.left == 0 && !self.next_chunk()? {
            return Ok(None);
        }
        let left = std::mem::take(&mut self.left);
        self.events += u64::from(left);
        Ok(Some(Records {
            chunk: &self.chunk,
            pos: self.pos,
            left,
            layout: self.layout,
        }))
    }

    /// Reads records up to a chunk with events (true) or past the footer (false). Out of
    /// line: [`Reader::next_event_ref`]'s every call inlined it, and saved and restored the
    /// registers it needs (a fifth of the reader's instructions per event).
    #[inline(never)]
    fn next_chunk(&mut self) -> Result<bool, TraceError> {
        loop {
            if self.left > 0 {
                return Ok(true);
            }
            if self.footer.is_some() {
                return Ok(false);
            }
            let mut magic = [0u8; 4];
            if !self.read_exact_or_eof(&mut magic)? {
                return Err(self.truncated("no footer"));
            }
            if &magic == CHUNK_MAGIC {
                self.read_chunk()?;
            } else if &magic == FOOTER_MAGIC {
                let json = self.read_json_block("footer")?;
                let footer: Footer =
                    serde_json::from_slice(&json).map_err(|e| self.corrupt(e.to_string()))?;
                let mut end = [0u8; 8];
                self.read_full(&mut end, "end mark")?;
                if &end != END_MARK {
                    return Err(self.corrupt("bad end mark".into()));
                }
                // A file is one trace: bytes after its end are not ours to ignore (two
                // traces concatenated, or a writer that went on after the end).
                let mut extra = [0u8; 1];
                if self.read_exact_or_eof(&mut extra)? {
                    self.offset -= 1;
                    return Err(self.corrupt("data after the end mark".into()));
                }
                if footer.events != self.events {
                    return Err(self.corrupt(format!(
                        "footer counts {} events, the file holds {}",
                        footer.events, self.events
                    )));
                }
                self.footer = Some(footer);
            } else {
                return Err(self.corrupt(format!("unknown record {magic:02x?}")));
            }
        }
    }

    /// Reads a chunk after its magic and checks it whole: its checksum, then (format 2) that
    /// its records fill it exactly. Only then are its events handed out.
    fn read_chunk(&mut self) -> Result<(), TraceError> {
        let count = self.read_u32("chunk header")?;
        if count as usize > CHUNK_EVENTS {
            return Err(self.corrupt(format!("chunk of {count} events")));
        }
        let need = match self.layout {
            Layout::Raw => count as usize * EVENT_SIZE,
            Layout::Compact => {
                let bytes = self.read_u32("chunk header")?;
                if bytes as usize > count as usize * EVENT_SIZE {
                    return Err(self.corrupt(format!("chunk of {count} events in {bytes} bytes")));
                }
                bytes as usize
            }
        };
        let crc = self.read_u32("chunk header")?;
        let start = self.offset;
        // Room for the next record's head, read in the same call.
        let ahead = self.layout.chunk_head();
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.resize(need + NAME_CAP, 0);
        let res = match self.read_at_least(&mut chunk[..need + ahead], need) {
            Ok(0) if need > 0 => Err(self.truncated("events")),
            Ok(got) => {
                self.carry_over(&chunk[need..got]);
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.chunk = chunk;
        res?;
        let records = &self.chunk[..need];
        if crc != crc32fast::hash(records) {
            return Err(self.corrupt("event chunk checksum mismatch".into()));
        }
        if self.layout == Layout::Compact && !records_fill(records, count) {
            return Err(self.records_misfit(need, count, start));
        }
        self.pos = 0;
        self.left = count;
        Ok(())
    }

    /// Why the `count` records of the chunk just read (`need` bytes from file offset `start`)
    /// do not fill it exactly ([`records_fill`] said so): the first that runs past it, or
    /// where they end before it does.
    #[cold]
    #[inline(never)]
    fn records_misfit(&self, need: usize, count: u32, start: u64) -> TraceError {
        let records = &self.chunk[..need];
        let mut at = 0;
        for i in 0..count {
            let end = records
                .get(at..at + FIXED)
                .map(|rec| at + FIXED + stored_name(record_name_len(rec)))
                .filter(|&end| end <= need);
            let Some(end) = end else {
                let what = format!("event {i} of {count} runs past its chunk");
                return self.corrupt_at(start + at as u64, what);
            };
            at = end;
        }
        let what = format!("its events end {} bytes before the chunk does", need - at);
        self.corrupt_at(start + at as u64, what)
    }

    /// Out of line, as it never happens: its formatting in the record's take cost every event
    /// the registers it needs.
    #[cold]
    #[inline(never)]
    fn record_past_chunk(&self) -> TraceError {
        self.corrupt(format!("event {} past its chunk", self.events))
    }

    /// Bytes of the file read so far: its length once the footer has been read.
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// The footer, once every event has been read.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    /// Reads the rest of the file, for small traces and tests.
    pub fn read_all(mut self) -> Result<(Header, Vec<Event>, Footer), TraceError> {
        let mut events = Vec::new();
        while let Some(e) = self.next_event()? {
            events.push(e);
        }
        let footer = self
            .footer
            .take()
            .ok_or_else(|| self.truncated("no footer"))?;
        Ok((self.header, events, footer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{flags, OpKind, Source};

    fn sample(i: u64) -> Event {
        let mut e = Event::zeroed();
        e.ts_begin = i * 10;
        e.ts_end = i * 10 + 5;
        e.probe = if i.is_multiple_of(2) {
            Probe::DLookupRcu as u8
        } else {
            Probe::Op as u8
        };
        e.source = Source::Model as u8;
        e.aux = OpKind::Stat as u32;
        e.dentry = 0xffff_8880_0000_0000 + i;
        e.flags = flags::VALIDATED;
        e.set_name(format!("f{i}").as_bytes());
        e
    }

    fn write(path: &Path, n: u64) -> Vec<Event> {
        let mut h = Header::new(Origin::Model);
        h.kernel_release = "6.1.0-test".into();
        let mut w = Writer::create(path, &h).expect("create");
        let evs: Vec<Event> = (0..n).map(sample).collect();
        for e in &evs {
            w.push(e).expect("push");
        }
        w.finish(Footer {
            end: End::Finished,
            ..Footer::default()
        })
        .expect("finish");
        evs
    }

    #[test]
    fn round_trip_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let evs = write(&p, CHUNK_EVENTS as u64 * 2 + 7);
        let (h, back, f) = Reader::open(&p).expect("open").read_all().expect("read");
        assert_eq!(h.kernel_release, "6.1.0-test");
        assert_eq!(back, evs);
        assert_eq!(f.events, evs.len() as u64);
        assert_eq!(
            f.per_probe["__d_lookup_rcu"],
            (evs.len() as u64).div_ceil(2)
        );
        assert!(f.complete());
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&p).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let mut r = Reader::open(&p).expect("open");
        while r.next_event_ref().expect("read").is_some() {}
        assert_eq!(r.bytes_read(), meta.len());
    }

    /// Batches that straddle chunk boundaries give the same file as pushing one event at a
    /// time, and the footer counts every probe, an unknown probe byte as "unknown".
    #[test]
    fn batches_split_at_chunks_and_write_what_single_pushes_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = dir.path().join("one.trace");
        let batched = dir.path().join("batched.trace");
        let mut evs: Vec<Event> = (0..CHUNK_EVENTS as u64 * 2 + 7).map(sample).collect();
        evs[5].probe = 200;
        evs[CHUNK_EVENTS + 1].probe = Probe::DDrop as u8;
        let h = Header::new(Origin::Model);
        let mut w = Writer::create(&one, &h).expect("create");
        for e in &evs {
            w.push(e).expect("push");
        }
        w.finish(Footer::default()).expect("finish");
        let mut w = Writer::create(&batched, &h).expect("create");
        for batch in evs.chunks(1000) {
            w.push_all(batch).expect("push_all");
        }
        let f = w.finish(Footer::default()).expect("finish");
        assert_eq!(
            std::fs::read(&one).expect("read"),
            std::fs::read(&batched).expect("read")
        );
        let (_, back, _) = Reader::open(&batched)
            .expect("open")
            .read_all()
            .expect("read");
        assert_eq!(back, evs);
        let count = |p: Probe| evs.iter().filter(|e| e.probe == p as u8).count() as u64;
        assert_eq!(f.per_probe["unknown"], 1);
        assert_eq!(f.per_probe["__d_drop"], 1);
        assert_eq!(f.per_probe["__d_lookup_rcu"], count(Probe::DLookupRcu));
        assert_eq!(f.per_probe.values().sum::<u64>(), evs.len() as u64);
    }

    /// The chunks a writer writes are those of the encoding written out plainly (each record
    /// the event's first bytes up to its stored name's end, pushed onto the chunk): random
    /// events, every byte random (so the bytes past a name differ from the zeroes a real one
    /// has there), names of every length up to past the capacity, pushed in random batches
    /// across chunk boundaries. The writer copies whole events and keeps each record's end.
    #[test]
    fn chunks_hold_each_record_as_the_plain_encoding_does() {
        let mut rnd = crate::test_rng::xorshift(0x5eed_c4a7);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let n = CHUNK_EVENTS * 2 + 1 + rnd(CHUNK_EVENTS as u64) as usize;
        let evs: Vec<Event> = (0..n)
            .map(|_| {
                let mut e = Event::zeroed();
                for b in event_bytes_mut(&mut e).iter_mut() {
                    *b = rnd(256) as u8;
                }
                e.name_len = match rnd(8) {
                    0 => NAME_CAP as u32 + rnd(1_000) as u32,
                    1 => u32::MAX - rnd(2) as u32,
                    _ => rnd(NAME_CAP as u64 + 1) as u32,
                };
                e
            })
            .collect();
        let h = Header::new(Origin::Model);
        let mut w = Writer::create(&p, &h).expect("create");
        let mut rest = &evs[..];
        while !rest.is_empty() {
            let (now, later) = rest.split_at((rnd(3_000) as usize).min(rest.len()));
            w.push_all(now).expect("push_all");
            rest = later;
        }
        w.finish(Footer::default()).expect("finish");

        let json = serde_json::to_vec(&h).expect("ser");
        let mut want = MAGIC.to_vec();
        want.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        want.extend_from_slice(&(json.len() as u32).to_le_bytes());
        want.extend_from_slice(&json);
        want.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        for chunk in evs.chunks(CHUNK_EVENTS) {
            let mut body = Vec::new();
            for e in chunk {
                let len = FIXED + (e.name_len as usize).min(NAME_CAP);
                body.extend_from_slice(&e.as_bytes()[..len]);
            }
            want.extend_from_slice(CHUNK_MAGIC);
            want.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            want.extend_from_slice(&(body.len() as u32).to_le_bytes());
            want.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            want.extend_from_slice(&body);
        }
        want.extend_from_slice(FOOTER_MAGIC);
        let got = std::fs::read(&p).expect("read");
        assert!(got.len() > want.len(), "the file ends before its footer");
        assert!(got[..want.len()] == want[..], "the chunks differ");
    }

    #[test]
    fn truncation_is_detected_with_the_intact_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        write(&p, CHUNK_EVENTS as u64 + 10);
        let bytes = std::fs::read(&p).expect("read");
        // Cut inside the second chunk, then cut off only the footer.
        for cut in [bytes.len() - 300, bytes.len() - 8] {
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let mut r = Reader::open(&p).expect("header intact");
            let mut n = 0;
            let err = loop {
                match r.next_event() {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => panic!("a cut file must not read to the end"),
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(err, TraceError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
            assert!(n >= CHUNK_EVENTS, "the first chunk is intact");
        }
    }

    /// A chunk's events are read together with the head of the record after them: a cut
    /// anywhere near a record's edges (inside that head, at it, just before it) is still
    /// truncation after exactly the events of the whole chunks before it.
    #[test]
    fn every_cut_near_a_record_edge_is_truncation_after_the_whole_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let evs = write(&p, CHUNK_EVENTS as u64 + 10);
        let bytes = std::fs::read(&p).expect("read");
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let first = 20 + u32_at(12) as usize;
        let second = first + CHUNK_HEAD + u32_at(first + 8) as usize;
        let footer = second + CHUNK_HEAD + u32_at(second + 8) as usize;
        assert_eq!(&bytes[first..first + 4], CHUNK_MAGIC);
        assert_eq!(&bytes[second..second + 4], CHUNK_MAGIC);
        assert_eq!(&bytes[footer..footer + 4], FOOTER_MAGIC);
        let cuts = (first..first + 2 * CHUNK_HEAD)
            .chain(second - 2 * CHUNK_HEAD..second + 2 * CHUNK_HEAD)
            .chain(footer - 2 * CHUNK_HEAD..bytes.len());
        for cut in cuts {
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let mut r = Reader::open(&p).expect("header intact");
            let mut back = Vec::new();
            let err = loop {
                match r.next_event() {
                    Ok(Some(e)) => back.push(e),
                    Ok(None) => panic!("cut at {cut}: a cut file must not read to the end"),
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(err, TraceError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
            let whole = if cut >= footer {
                evs.len()
            } else if cut >= second {
                CHUNK_EVENTS
            } else {
                0
            };
            assert_eq!(back.len(), whole, "cut at {cut}");
            assert_eq!(back, evs[..whole], "cut at {cut}");
        }
        std::fs::write(&p, &bytes).expect("write");
        let (_, back, _) = Reader::open(&p).expect("open").read_all().expect("whole");
        assert_eq!(back, evs);
    }

    /// A pipe hands a reader whatever has been written so far, so records arrive split at
    /// any byte: the reader reads what it reads from the whole file.
    #[test]
    fn a_trace_arriving_in_small_pieces_through_a_pipe_reads_as_the_file() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let evs = write(&p, 2 * CHUNK_EVENTS as u64 + 3);
        let bytes = std::fs::read(&p).expect("read");
        let (rx, mut tx) = std::io::pipe().expect("pipe");
        let writer = std::thread::spawn(move || {
            // Pieces of 1 to 29 bytes, then the rest of each chunk in one write.
            let mut at = 0;
            let mut size = 1;
            while at < bytes.len() {
                let n = if size < 30 { size } else { 100_000 }.min(bytes.len() - at);
                tx.write_all(&bytes[at..at + n]).expect("write to the pipe");
                tx.flush().expect("flush");
                at += n;
                size = if size >= 30 { 1 } else { size + 1 };
                std::thread::yield_now();
            }
        });
        let path = PathBuf::from(format!("/proc/self/fd/{}", rx.as_raw_fd()));
        let (_, back, footer) = Reader::open(&path).expect("open").read_all().expect("read");
        writer.join().expect("writer");
        assert_eq!(back, evs);
        assert_eq!(footer.events, evs.len() as u64);
    }

    /// A trace file of `format` written by hand, its chunks `(event count, body)` each with a
    /// head that tells its body's length (format 2) and checksum, and a footer that counts
    /// their events.
    fn hand_written(format: u32, chunks: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let block = |f: &mut Vec<u8>, json: &[u8]| {
            f.extend_from_slice(&(json.len() as u32).to_le_bytes());
            f.extend_from_slice(json);
            f.extend_from_slice(&crc32fast::hash(json).to_le_bytes());
        };
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&format.to_le_bytes());
        block(
            &mut f,
            &serde_json::to_vec(&Header::new(Origin::Model)).expect("ser"),
        );
        for (count, body) in chunks {
            f.extend_from_slice(CHUNK_MAGIC);
            f.extend_from_slice(&count.to_le_bytes());
            if format == 2 {
                f.extend_from_slice(&(body.len() as u32).to_le_bytes());
            }
            f.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            f.extend_from_slice(body);
        }
        let footer = Footer {
            events: chunks.iter().map(|(n, _)| u64::from(*n)).sum(),
            end: End::Finished,
            ..Footer::default()
        };
        f.extend_from_slice(FOOTER_MAGIC);
        block(&mut f, &serde_json::to_vec(&footer).expect("ser"));
        f.extend_from_slice(END_MARK);
        f
    }

    /// Names of every length around the capacity, a long one before short ones: a record
    /// holds the fields and the name's stored bytes only, and each event reads back equal
    /// (zero past its own name, whatever the event before held there).
    #[test]
    fn records_hold_the_stored_name_and_read_back_zeroed_past_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let lens = [NAME_CAP + 9, 1, 0, NAME_CAP, 3, NAME_CAP - 1, 200, 2];
        let evs: Vec<Event> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut e = sample(i as u64);
                e.set_name(&vec![b'a' + i as u8; len]);
                e
            })
            .collect();
        let mut w = Writer::create(&p, &Header::new(Origin::Model)).expect("create");
        w.push_all(&evs).expect("push");
        w.finish(Footer::default()).expect("finish");
        let bytes = std::fs::read(&p).expect("read");
        let first = 20 + u32::from_le_bytes(bytes[12..16].try_into().expect("4")) as usize;
        let body = u32::from_le_bytes(bytes[first + 8..first + 12].try_into().expect("4"));
        let stored: usize = lens.iter().map(|&n| FIXED + n.min(NAME_CAP)).sum();
        assert_eq!(body as usize, stored);
        let (_, back, _) = Reader::open(&p).expect("open").read_all().expect("read");
        assert_eq!(back, evs);
        assert!(back[0].has(flags::NAME_TRUNCATED));
        assert_eq!(back[0].name_len as usize, NAME_CAP + 9);
    }

    /// Format 1 files (each event's 152 bytes) still read, to the events a format 2 file of
    /// them reads to: name bytes past `name_len` (format 2 does not store them) read as zero.
    #[test]
    fn format_1_files_read_as_their_events_zeroed_past_the_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let mut evs: Vec<Event> = (0..CHUNK_EVENTS as u64 + 3).map(sample).collect();
        evs[1].set_name(&[b'x'; NAME_CAP + 1]);
        let clean = evs.clone();
        evs[2].name[10..20].fill(b'?');
        let raw = |evs: &[Event]| evs.iter().flat_map(|e| *e.as_bytes()).collect::<Vec<u8>>();
        let chunks = [
            (CHUNK_EVENTS as u32, raw(&evs[..CHUNK_EVENTS])),
            (3, raw(&evs[CHUNK_EVENTS..])),
        ];
        std::fs::write(&p, hand_written(1, &chunks)).expect("write");
        let (_, back, footer) = Reader::open(&p).expect("open").read_all().expect("read");
        assert_eq!(back, clean);
        assert_eq!(footer.events, clean.len() as u64);

        // The writer stores no byte past a name either.
        let again = dir.path().join("again.trace");
        let mut w = Writer::create(&again, &Header::new(Origin::Model)).expect("create");
        w.push_all(&evs).expect("push");
        w.finish(Footer::default()).expect("finish");
        let (_, back, _) = Reader::open(&again)
            .expect("open")
            .read_all()
            .expect("read");
        assert_eq!(back, clean);
    }

    /// Records read where they lie hold what the decoded events hold, field by field and name
    /// by name, in format 1 (bytes left after a name, a name past its cap) as in format 2.
    #[test]
    fn records_read_in_place_are_the_decoded_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut evs: Vec<Event> = (0..CHUNK_EVENTS as u64 + 3).map(sample).collect();
        for (i, e) in evs.iter_mut().enumerate() {
            let i = i as u64;
            (e.parent, e.inode_begin, e.inode_end) = (i << 40 | 7, i * 3 + 1, u64::MAX - i);
            (e.tid, e.cpu, e.source, e.flags) = (i as u32 + 9, i as u32 % 5, 3, i as u16);
            (e.seq_begin, e.seq_end, e.aux, e.result) = (1, 2, i as u32, -(i as i32));
            e.cpu_seq = i as u32 * 7;
        }
        evs[1].set_name(&[b'x'; NAME_CAP + 1]);
        evs[2].set_name(b"");
        evs[3].set_name(&[b'y'; NAME_CAP]);
        evs[4].name[10..20].fill(b'?');
        let raw: Vec<u8> = evs[..CHUNK_EVENTS]
            .iter()
            .flat_map(|e| *e.as_bytes())
            .collect();
        let tail: Vec<u8> = evs[CHUNK_EVENTS..]
            .iter()
            .flat_map(|e| *e.as_bytes())
            .collect();
        let v1 = dir.path().join("v1.trace");
        let chunks = [(CHUNK_EVENTS as u32, raw), (3, tail)];
        std::fs::write(&v1, hand_written(1, &chunks)).expect("write");
        let v2 = dir.path().join("v2.trace");
        let mut w = Writer::create(&v2, &Header::new(Origin::Model)).expect("create");
        w.push_all(&evs).expect("push");
        w.finish(Footer::default()).expect("finish");
        for p in [&v1, &v2] {
            let mut records = Reader::open(p).expect("open");
            let mut events = Reader::open(p).expect("open");
            let mut n = 0;
            let mut starts = Vec::new();
            while let Some(chunk) = records.next_records().expect("records") {
                starts.push(n);
                for r in chunk {
                    let e = events.next_event().expect("event").expect("as many events");
                    let fields = (
                        r.ts_begin(),
                        r.ts_end(),
                        r.dentry(),
                        r.parent(),
                        r.inode_begin(),
                    );
                    assert_eq!(
                        fields,
                        (e.ts_begin, e.ts_end, e.dentry, e.parent, e.inode_begin)
                    );
                    let fields = (
                        r.inode_end(),
                        r.tid(),
                        r.cpu(),
                        r.probe(),
                        r.source(),
                        r.flags(),
                    );
                    assert_eq!(
                        fields,
                        (e.inode_end, e.tid, e.cpu, e.probe, e.source, e.flags)
                    );
                    let fields = (r.seq_begin(), r.seq_end(), r.aux(), r.result(), r.cpu_seq());
                    assert_eq!(fields, (e.seq_begin, e.seq_end, e.aux, e.result, e.cpu_seq));
                    assert_eq!(r.name_bytes(), e.name_bytes(), "{}: event {n}", p.display());
                    assert_eq!(&r.name_window()[..r.name_bytes().len()], r.name_bytes());
                    n += 1;
                }
            }
            assert!(events.next_event().expect("end").is_none());
            assert_eq!(n, evs.len());
            // A chunk at a time, each whole: the second starts where the first's events end.
            assert_eq!(starts, [0, CHUNK_EVENTS], "{}", p.display());
        }
    }

    /// A chunk whose checksum holds but whose records do not fill it exactly is corruption,
    /// at the record that breaks it: a name running past the chunk, fields cut short, bytes
    /// left over, a length no chunk of that many events can have.
    #[test]
    fn records_that_do_not_fill_their_chunk_are_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let record = |name_len: u32, name: usize| {
            let mut e = sample(1);
            e.name_len = name_len;
            e.as_bytes()[..FIXED + name].to_vec()
        };
        let two = [record(3, 3), record(2, 2)].concat();
        let cases: [(u32, Vec<u8>, &str); 6] = [
            (1, record(10, 5), "event 0 of 1 runs past its chunk"),
            (1, record(200, 63), "event 0 of 1 runs past its chunk"),
            (2, record(3, 3), "event 1 of 2 runs past its chunk"),
            (
                2,
                two[..two.len() - 1].to_vec(),
                "event 1 of 2 runs past its chunk",
            ),
            (
                2,
                [&two[..], &record(2, 2)].concat(),
                "its events end 90 bytes before the chunk does",
            ),
            (0, vec![0; 1], "chunk of 0 events in 1 bytes"),
        ];
        for (count, body, want) in cases {
            let bytes = hand_written(2, &[(count, body)]);
            std::fs::write(&p, &bytes).expect("write");
            let mut r = Reader::open(&p).expect("header intact");
            match r.next_event() {
                Err(TraceError::Corrupt { what, events, .. }) => {
                    assert_eq!(what, want);
                    assert_eq!(events, 0);
                }
                other => panic!("{want}: {other:?}"),
            }
        }
        // The same records filling their chunk read.
        std::fs::write(&p, hand_written(2, &[(2, two)])).expect("write");
        let (_, back, _) = Reader::open(&p).expect("open").read_all().expect("read");
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].name_len, 2);
    }

    /// The walk that tests only each record's fixed part and the last end says a chunk's
    /// records fit exactly when the check of every record's end does (the old check, kept
    /// here as the oracle): random lengths and counts, names past `NAME_CAP`, records cut
    /// anywhere, bytes left over, counts too high and too low, empty chunks.
    #[test]
    fn the_records_fit_as_every_end_tested_says() {
        let oracle = |records: &[u8], count: u32| {
            let need = records.len();
            let mut at = 0;
            for _ in 0..count {
                let end = records
                    .get(at..at + FIXED)
                    .map(|rec| at + FIXED + stored_name(record_name_len(rec)))
                    .filter(|&end| end <= need);
                let Some(end) = end else {
                    return false;
                };
                at = end;
            }
            at == need
        };
        let mut rnd = crate::test_rng::xorshift(29u64);
        let (mut fit, mut misfit) = (0, 0);
        for _ in 0..20_000 {
            let n = rnd(6) as u32;
            let mut records = Vec::new();
            for _ in 0..n {
                let name_len = match rnd(4) {
                    0 => NAME_CAP as u32 + rnd(300) as u32,
                    1 => rnd(4) as u32,
                    _ => rnd(NAME_CAP as u64 + 1) as u32,
                };
                let mut e = sample(rnd(50));
                e.name_len = name_len;
                records.extend_from_slice(&e.as_bytes()[..FIXED + stored_name(name_len)]);
            }
            match rnd(5) {
                0 => records.truncate(rnd(records.len() as u64 + 1) as usize),
                1 => records.extend((0..rnd(200)).map(|i| i as u8)),
                _ => {}
            }
            let count = match rnd(5) {
                0 => n + 1 + rnd(2) as u32,
                1 => n.saturating_sub(1),
                _ => n,
            };
            let want = oracle(&records, count);
            assert_eq!(
                records_fill(&records, count),
                want,
                "{count} in {records:?}"
            );
            if want {
                fit += 1;
            } else {
                misfit += 1;
            }
        }
        assert!(fit > 5000 && misfit > 5000, "{fit} fit, {misfit} do not");
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        write(&p, 100);
        let mut bytes = std::fs::read(&p).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&p, &bytes).expect("write");
        let err = Reader::open(&p)
            .expect("header intact")
            .read_all()
            .expect_err("must fail");
        assert!(matches!(err, TraceError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn attach_modes_read_and_write_as_their_strings() {
        for (a, text) in [
            (Attachment::Fentry, "\"fentry\""),
            (Attachment::Kprobe, "\"kprobe\""),
            (Attachment::Absent("inlined".into()), "\"absent: inlined\""),
            (Attachment::Refused("EBUSY".into()), "\"refused: EBUSY\""),
        ] {
            assert_eq!(serde_json::to_string(&a).expect("ser"), text);
            assert_eq!(serde_json::from_str::<Attachment>(text).expect("de"), a);
        }
        // As the recorder before session 9 wrote them (6.1's `dentry_iput`, 5.10's `__d_add`).
        let absent = "fentry: no BTF FUNC for `dentry_iput` (absent, or inlined everywhere); \
                      kprobe: `dentry_iput` is in neither available_filter_functions nor \
                      kallsyms (inlined or absent in this kernel)";
        let refused = "fentry: no BTF FUNC for `__d_add` (absent, or inlined everywhere); \
                       kprobe: attaching d_add_inner_kprobe: `perf_event_open` failed: Invalid \
                       argument (os error 22)";
        for (why, want) in [
            (absent, Attachment::Absent(absent.into())),
            (refused, Attachment::Refused(refused.into())),
        ] {
            let text = serde_json::to_string(&format!("unavailable: {why}")).expect("ser");
            assert_eq!(serde_json::from_str::<Attachment>(&text).expect("de"), want);
        }
        let err = serde_json::from_str::<Attachment>("\"uprobe\"").expect_err("unknown");
        assert!(err.to_string().contains("expected"), "{err}");
    }

    /// The header's word on uncounted skips is left out when absent, so headers of recorders
    /// before it and model traces read and write as they did.
    #[test]
    fn skip_counting_is_written_only_when_known() {
        let mut h = Header::new(Origin::Kernel);
        let json = serde_json::to_value(&h).expect("ser");
        assert!(json.get("skip_counting").is_none(), "{json}");
        h.skip_counting = Some(SkipCounting::KprobeUncounted);
        let json = serde_json::to_value(&h).expect("ser");
        assert_eq!(json["skip_counting"], "kprobe-uncounted");
        let back: Header = serde_json::from_value(json).expect("de");
        assert_eq!(back.skip_counting, Some(SkipCounting::KprobeUncounted));
    }

    #[test]
    fn data_after_the_end_mark_is_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        write(&p, 5);
        let mut bytes = std::fs::read(&p).expect("read");
        let end = bytes.len() as u64;
        bytes.extend_from_slice(b"more");
        std::fs::write(&p, &bytes).expect("write");
        let err = Reader::open(&p)
            .expect("header intact")
            .read_all()
            .expect_err("must fail");
        match err {
            TraceError::Corrupt { offset, what, .. } => {
                assert_eq!(offset, end);
                assert_eq!(what, "data after the end mark");
            }
            e => panic!("{e}"),
        }
    }

    /// Reads `p` up to its first error, the header's or a later one's.
    fn first_error(p: &Path) -> TraceError {
        let mut r = match Reader::open(p) {
            Ok(r) => r,
            Err(e) => return e,
        };
        loop {
            match r.next_event() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("{} read whole", p.display()),
                Err(e) => break e,
            }
        }
    }

    /// rev9 F3: a footer of length 0 with its checksum and end mark intact is damaged, not
    /// cut (the empty read it asks for looked like an end of file).
    #[test]
    fn a_zero_length_footer_is_corruption_not_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        write(&p, 10);
        let mut bytes = std::fs::read(&p).expect("read");
        let foot = bytes
            .windows(4)
            .rposition(|w| w == FOOTER_MAGIC)
            .expect("footer");
        bytes.truncate(foot + 4);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&[]).to_le_bytes());
        bytes.extend_from_slice(END_MARK);
        std::fs::write(&p, &bytes).expect("write");
        let err = first_error(&p);
        assert!(
            matches!(err, TraceError::Corrupt { offset, events: 10, .. } if offset == foot as u64 + 4),
            "{err:?}"
        );
    }

    /// A header or footer length no JSON object has is corruption at the length, whatever
    /// follows it; a file cut right after a plausible length, or inside its JSON, is
    /// truncation.
    #[test]
    fn an_impossible_json_length_is_corruption_and_a_cut_block_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        write(&p, 10);
        let bytes = std::fs::read(&p).expect("read");
        let foot = bytes
            .windows(4)
            .rposition(|w| w == FOOTER_MAGIC)
            .expect("footer");
        for (at, block) in [(12, "header"), (foot + 4, "footer")] {
            for len in [0, 1, MAX_JSON + 1, u32::MAX] {
                let mut b = bytes.clone();
                b[at..at + 4].copy_from_slice(&len.to_le_bytes());
                std::fs::write(&p, &b).expect("write");
                match first_error(&p) {
                    TraceError::Corrupt { offset, what, .. } => {
                        assert_eq!(offset, at as u64, "{block} length {len}");
                        assert_eq!(what, format!("{block} length {len} is impossible"));
                    }
                    e => panic!("{block} length {len}: {e:?}"),
                }
            }
            let json = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
            for cut in [at + 4, at + 4 + json / 2, at + 4 + json + 2] {
                std::fs::write(&p, &bytes[..cut]).expect("write");
                let err = first_error(&p);
                assert!(
                    matches!(err, TraceError::Truncated { .. }),
                    "{block} cut at {cut}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn wrong_versions_and_foreign_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        write(&p, 3);
        let mut bytes = std::fs::read(&p).expect("read");
        bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
        std::fs::write(&p, &bytes).expect("write");
        let err = Reader::open(&p).err().expect("must fail");
        assert!(
            matches!(err, TraceError::WrongFormat { found: 99, .. }),
            "{err}"
        );

        let mut h = Header::new(Origin::Kernel);
        h.schema = SCHEMA_VERSION + 1;
        Writer::create(&p, &h)
            .expect("create")
            .finish(Footer::default())
            .expect("finish");
        let err = Reader::open(&p).err().expect("must fail");
        assert!(matches!(err, TraceError::WrongSchema { .. }), "{err}");

        std::fs::write(&p, b"hello world, not a trace").expect("write");
        let err = Reader::open(&p).err().expect("must fail");
        assert!(matches!(err, TraceError::NotATrace { .. }), "{err}");
    }

    #[test]
    fn anonymizer_gives_stable_ids_and_keeps_null() {
        let mut a = Anonymizer::default();
        let mut e = sample(1);
        e.dentry = 0xffff_8880_dead_0000;
        e.parent = 0xffff_8880_beef_0000;
        e.inode_begin = 0xffff_8880_1111_0000;
        e.inode_end = 0;
        let mut f = e;
        a.apply(&mut e);
        assert_eq!(
            (e.dentry, e.parent, e.inode_begin, e.inode_end),
            (1, 2, 1, 0)
        );
        f.dentry = 0xffff_8880_beef_0000;
        a.apply(&mut f);
        assert_eq!(f.dentry, 2, "the parent seen before keeps its id");
    }

    #[test]
    fn anonymizer_hides_name_hashes_and_keeps_them_comparable() {
        let mut a = Anonymizer::default();
        let raw = [0x9e37_79b9u32, 0x7f4a_7c15, 0x9e37_79b9, 0];
        let ids: Vec<u32> = raw
            .iter()
            .map(|&h| {
                let mut e = sample(1);
                e.name_hash = h;
                a.apply(&mut e);
                e.name_hash
            })
            .collect();
        assert_eq!(
            ids,
            vec![1, 2, 1, 0],
            "equal hashes share an id, none is kept raw"
        );
    }

    #[test]
    fn sanitize_clears_bytes_past_the_name() {
        let mut e = Event::zeroed();
        e.name = [b'x'; NAME_CAP];
        e.name_len = 3;
        sanitize(&mut e);
        assert_eq!(&e.name[..4], b"xxx\0");
        assert!(e.name[3..].iter().all(|b| *b == 0));
    }

    #[test]
    fn skipped_entries_come_from_the_footer_or_an_older_recorders_note() {
        let mut h = Header::new(Origin::Kernel);
        h.notes.insert(
            SKIPPED_ENTRIES_NOTE.into(),
            "__d_lookup_rcu 3, __d_move:target 1, ___d_drop x".into(),
        );
        let old = Footer::default().skipped_entries(&h);
        assert_eq!(
            old,
            BTreeMap::from([
                ("__d_lookup_rcu".to_string(), 3),
                ("__d_move:target".to_string(), 1),
                ("___d_drop".to_string(), 1),
            ])
        );
        let new = Footer {
            skipped_entries: BTreeMap::from([("__d_lookup".to_string(), 2)]),
            ..Footer::default()
        };
        assert_eq!(new.skipped_entries(&h), new.skipped_entries);
        assert!(Footer::default()
            .skipped_entries(&Header::new(Origin::Kernel))
            .is_empty());
    }

    /// An exit without its entry is a skipped entry whatever `skipped_entries` says: a footer
    /// counting fewer (or none) is raised to it, one counting more keeps its count. A footer
    /// without any is written as before the field existed.
    #[test]
    fn exits_without_entry_count_as_skipped_entries() {
        let h = Header::new(Origin::Kernel);
        let f = Footer {
            skipped_entries: BTreeMap::from([
                ("__d_lookup".to_string(), 5),
                ("__d_lookup_rcu".to_string(), 1),
            ]),
            exits_without_entry: BTreeMap::from([
                ("__d_lookup".to_string(), 2),
                ("__d_lookup_rcu".to_string(), 4),
            ]),
            ..Footer::default()
        };
        assert_eq!(
            f.skipped_entries(&h),
            BTreeMap::from([
                ("__d_lookup".to_string(), 5),
                ("__d_lookup_rcu".to_string(), 4),
            ])
        );
        let only = Footer {
            exits_without_entry: BTreeMap::from([("__d_lookup_rcu".to_string(), 3)]),
            ..Footer::default()
        };
        assert_eq!(
            only.skipped_entries(&h),
            BTreeMap::from([("__d_lookup_rcu".to_string(), 3)])
        );
        let json = serde_json::to_value(&only).expect("a footer serializes");
        assert_eq!(json["exits_without_entry"]["__d_lookup_rcu"], 3);
        let none = serde_json::to_value(Footer::default()).expect("a footer serializes");
        assert!(none.get("exits_without_entry").is_none(), "{none}");
    }
}
