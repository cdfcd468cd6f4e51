//! Which attach family each target gets on this kernel, decided at load time: fentry/fexit when
//! the function has BTF and the kernel accepts tracing programs, kprobe/kretprobe when the
//! symbol is probeable, else the target is reported absent (no body of its own: in neither
//! kallsyms nor ftrace's list) or refused (it has one, or only GCC clones of one, but no family
//! attached), with the reasons. Never guessed.
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    fs,
    path::{Path, PathBuf},
};

use aya::{
    pin::PinError,
    programs::{
        kprobe::KProbeLink,
        links::{FdLink, PinnedLink},
        FEntry, FExit, KProbe,
    },
    Btf, Ebpf,
};
use tracer_analysis::trace::{Attachment, SkipCounting};
use tracer_common::Probe;

use crate::{
    btf::KernelBtf,
    programs::{self, Body, Family, Half},
};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// fentry/fexit where possible, else kprobe/kretprobe, per target.
    Auto,
    /// fentry/fexit only.
    Fentry,
    /// kprobe/kretprobe only.
    Kprobe,
}

/// The outcome for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attached {
    Yes(Family),
    /// No body of its own on this kernel; each family's reason.
    Absent(String),
    /// It has a body (or clones of one), yet no family attached; each family's reason.
    Refused(String),
}

impl Attached {
    /// As stored in the trace header.
    pub fn describe(&self) -> Attachment {
        match self {
            Attached::Yes(Family::Fentry) => Attachment::Fentry,
            Attached::Yes(Family::Kprobe) => Attachment::Kprobe,
            Attached::Absent(why) => Attachment::Absent(why.clone()),
            Attached::Refused(why) => Attachment::Refused(why.clone()),
        }
    }

    /// Why it was not attached, if it was not.
    pub fn why_not(&self) -> Option<&str> {
        match self {
            Attached::Yes(_) => None,
            Attached::Absent(why) | Attached::Refused(why) => Some(why),
        }
    }
}

/// Whether a symbol has a body of its own in the running kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Presence {
    /// In kallsyms or ftrace's list under its own name.
    Present,
    /// Only GCC clones of it (`sym.isra.0`, `sym.part.0`, `sym.constprop.0`): a body under
    /// another name, which the programs (written for `sym`'s arguments) do not attach to.
    Cloned(Vec<String>),
    /// Under no name: inlined into every caller, or not in this kernel.
    Missing,
    /// Neither list could be read.
    Unknown,
}

/// The attach targets' names in the running kernel's symbol lists, and their GCC clones', read
/// once: what [`Presence`] asks of them. Only these names are kept: a `String` for every name of
/// the lists cost half a second of a TCG guest's time.
pub struct ProbeableSymbols {
    /// None when neither list could be read.
    names: Option<BTreeSet<String>>,
}

impl ProbeableSymbols {
    pub fn read() -> ProbeableSymbols {
        let kallsyms = fs::read_to_string("/proc/kallsyms").ok();
        ProbeableSymbols::from_lists(kallsyms.as_deref(), || {
            [
                "/sys/kernel/tracing/available_filter_functions",
                "/sys/kernel/debug/tracing/available_filter_functions",
            ]
            .iter()
            .find_map(|p| fs::read_to_string(p).ok())
        })
    }

    /// From kallsyms' text, with ftrace's list's (`filter`) only when kallsyms cannot be read
    /// or holds a target's name ftrace may spell otherwise ([`may_be_cut`]). ftrace prints each
    /// entry by looking its address up in kallsyms, and one kallsyms does not know as
    /// `__ftrace_invalid_address___N` (or as hex before 6.0), which no target nor clone is
    /// named. But that lookup cut a name's suffix on Clang-LTO kernels until fb6a421fb615
    /// ("kallsyms: Match symbols exactly with CONFIG_LTO_CLANG", 6.11): kallsyms'
    /// `__d_move.llvm.123` (or `__d_move$<hash>` under CFI before LLVM 13) was the list's
    /// `__d_move`, which kprobes attached to by that name.
    /// Elsewhere the list adds no name here, and printing it took the kernel 0.6 s of a TCG
    /// guest's time.
    fn from_lists(
        kallsyms: Option<&str>,
        filter: impl FnOnce() -> Option<String>,
    ) -> ProbeableSymbols {
        let targets: HashSet<&str> = Probe::KERNEL
            .into_iter()
            .filter(|p| p.is_attach_target())
            .map(Probe::symbol)
            .collect();
        // The names of field `field` of each line that are a target's or its clones'.
        let kept = |text: &str, field: usize| -> BTreeSet<String> {
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(field))
                .filter(|name| targets.contains(base_name(name)))
                .map(String::from)
                .collect()
        };
        let names = match kallsyms {
            Some(k) => {
                let mut names = kept(k, 2);
                if names.iter().any(|n| may_be_cut(n)) {
                    if let Some(f) = filter() {
                        names.extend(kept(&f, 0));
                    }
                }
                Some(names)
            }
            None => filter().map(|f| kept(&f, 0)),
        };
        ProbeableSymbols { names }
    }

    /// None: probeable; Some(why): not.
    fn why_not(&self, sym: &str) -> Option<String> {
        match self.presence(sym) {
            Presence::Present => None,
            Presence::Cloned(clones) => Some(format!(
                "`{sym}` exists only as GCC clones ({}), whose arguments may differ: not attached",
                clones.join(", ")
            )),
            Presence::Missing => Some(format!(
                "`{sym}` is in neither available_filter_functions nor kallsyms (inlined or absent in this kernel)"
            )),
            Presence::Unknown => Some(
                "cannot read available_filter_functions or /proc/kallsyms (mount tracefs; run as root)"
                    .into(),
            ),
        }
    }

    /// Of an attach target's symbol (the only names kept).
    fn presence(&self, sym: &str) -> Presence {
        let Some(names) = &self.names else {
            return Presence::Unknown;
        };
        if names.contains(sym) {
            return Presence::Present;
        }
        // Sorted and without duplicates, as a set.
        let clones: Vec<String> = names
            .iter()
            .filter(|n| is_clone_of(n, sym))
            .cloned()
            .collect();
        if clones.is_empty() {
            Presence::Missing
        } else {
            Presence::Cloned(clones)
        }
    }
}

/// A kallsyms name before the suffix a compiler added: from its first `.` (GCC's clones and
/// `.cold` parts, Clang's `.llvm.<hash>`) or `$` (Clang's CFI promotion before LLVM 13). No
/// target's name holds either.
fn base_name(name: &str) -> &str {
    name.split(['.', '$']).next().unwrap_or(name)
}

/// A kallsyms name with a suffix that is neither a GCC clone's nor a `.cold` part's: what a
/// Clang-LTO kernel's ftrace list may print cut (`.llvm.<hash>`, a hex number, `$<hash>`).
fn may_be_cut(name: &str) -> bool {
    let base = base_name(name);
    let body = name.strip_suffix(".cold").unwrap_or(name);
    body != base && !is_clone_of(body, base)
}

/// Whether `name` is a GCC clone of `sym`: `sym.isra.N`, `sym.part.N`, `sym.constprop.N` or
/// chains of them (`sym.constprop.0.isra.0`). `.cold` parts are not: the function's entry
/// stays under its own name.
fn is_clone_of(name: &str, sym: &str) -> bool {
    let Some(rest) = name.strip_prefix(sym).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len().is_multiple_of(2)
        && parts.chunks(2).all(|c| {
            matches!(c[0], "isra" | "part" | "constprop")
                && !c[1].is_empty()
                && c[1].bytes().all(|b| b.is_ascii_digit())
        })
}

/// How the running kernel preempts kernel code. fentry/fexit programs run with migration
/// disabled but preemption enabled: where kernel code is preempted, a program preempted mid-run
/// holds its per-CPU "active" mark, and the kernel skips that program for every other task that
/// calls the function on that CPU meanwhile (counted in its `recursion_misses`). kprobe
/// programs run with preemption disabled and are not skipped that way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preemption {
    /// `none` or `voluntary`: kernel code runs until it yields.
    Cooperative(&'static str),
    /// `full`, `lazy` or real-time: kernel code is preempted, BPF programs included.
    Preemptive(&'static str),
    /// Neither debugfs nor the build banner says (a dynamic model without debugfs).
    Unknown,
}

impl Preemption {
    /// The running kernel's: `sched/preempt` in debugfs (the dynamic model's current choice is
    /// in parentheses), else the build banner (`/proc/sys/kernel/version`).
    pub fn of_running_kernel() -> Preemption {
        if let Ok(s) = fs::read_to_string("/sys/kernel/debug/sched/preempt") {
            return Preemption::from_sched_preempt(&s);
        }
        fs::read_to_string("/proc/sys/kernel/version")
            .map(|v| Preemption::from_banner(&v))
            .unwrap_or(Preemption::Unknown)
    }

    fn from_sched_preempt(s: &str) -> Preemption {
        let current = s
            .split_whitespace()
            .find_map(|w| w.strip_prefix('(')?.strip_suffix(')'));
        match current {
            Some("none") => Preemption::Cooperative("none"),
            Some("voluntary") => Preemption::Cooperative("voluntary"),
            Some("full") => Preemption::Preemptive("full"),
            Some("lazy") => Preemption::Preemptive("lazy"),
            _ => Preemption::Unknown,
        }
    }

    fn from_banner(v: &str) -> Preemption {
        let words: Vec<&str> = v.split_whitespace().collect();
        if words.contains(&"PREEMPT_RT") {
            Preemption::Preemptive("rt")
        } else if words.contains(&"PREEMPT_DYNAMIC") {
            Preemption::Unknown
        } else if words.contains(&"PREEMPT") {
            Preemption::Preemptive("full")
        } else if words.contains(&"PREEMPT_LAZY") {
            Preemption::Preemptive("lazy")
        } else {
            Preemption::Cooperative("none or voluntary")
        }
    }

    /// The attach families `auto` tries, in order. kprobe first only where its skips are
    /// counted too: otherwise fentry/fexit, whose skips (a preempted program's) are counted as
    /// lost (5.12+; before, nothing skips them), while a skipped kprobe entry leaves no trace.
    pub fn auto_order(self, kprobe: KprobeSkips) -> &'static [Family] {
        match (self, kprobe) {
            (Preemption::Preemptive(_), KprobeSkips::Counted) => &[Family::Kprobe, Family::Fentry],
            _ => &[Family::Fentry, Family::Kprobe],
        }
    }

    /// For the trace header.
    pub fn describe(self, kprobe: KprobeSkips) -> String {
        match (self, kprobe) {
            (Preemption::Cooperative(m), _) => format!("{m}: fentry/fexit first"),
            (Preemption::Preemptive(m), KprobeSkips::Counted) => format!(
                "{m}: kprobe/kretprobe first (a preempted fentry/fexit program makes the kernel \
                 skip it for the next calls on its CPU)"
            ),
            (Preemption::Preemptive(m), KprobeSkips::Uncounted) => format!(
                "{m}, kernel before 6.7: fentry/fexit first (the kernel skips kprobe programs \
                 uncounted while a preempted BPF map syscall holds bpf_prog_active; fentry/fexit \
                 skips count as lost)"
            ),
            (Preemption::Unknown, _) => "unknown (no debugfs sched/preempt): fentry/fexit \
                                         first; programs the kernel skipped count as lost"
                .into(),
        }
    }

    /// Whether every skip of the attached programs is counted: not where kprobe programs run
    /// on a kernel that skips them uncounted and may preempt the task that holds them off.
    pub fn skip_counting(
        self,
        kprobe: KprobeSkips,
        attached: &BTreeMap<Probe, Attached>,
    ) -> SkipCounting {
        let kprobes = attached
            .values()
            .any(|a| *a == Attached::Yes(Family::Kprobe));
        let preempts = !matches!(self, Preemption::Cooperative(_));
        if kprobes && preempts && kprobe == KprobeSkips::Uncounted {
            SkipCounting::KprobeUncounted
        } else {
            SkipCounting::Counted
        }
    }
}

/// Whether the running kernel counts the calls for which `trace_call_bpf` skipped a kprobe
/// program (another BPF program, or a BPF map syscall, holding `bpf_prog_active` on that CPU):
/// from 6.7 (dd8657894c11 "bpf: Count missed stats in trace_call_bpf") in the program's
/// `recursion_misses`, which the recorder reads; before, nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KprobeSkips {
    Counted,
    Uncounted,
}

impl KprobeSkips {
    /// From `uname -r`; a release that does not start with `major.minor` is taken as older.
    pub fn of_release(release: &str) -> KprobeSkips {
        match userspace_dcache::major_minor(release) {
            Some(v) if v >= (6, 7) => KprobeSkips::Counted,
            _ => KprobeSkips::Uncounted,
        }
    }
}

/// The links of the attached programs. Dropping them detaches the programs; each fentry/fexit
/// detach waits for RCU-tasks grace periods (about a tenth of a second each under TCG).
#[derive(Default)]
pub struct Links(Vec<Link>);

enum Link {
    /// fentry/fexit: a bpf_link.
    Fd(FdLink),
    /// A kprobe: a bpf_link where the kernel attaches kprobes through one, else a perf event.
    Kprobe(KProbeLink),
}

/// Leaving the links attached failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaveError {
    #[error("reading /proc/cmdline: {0}")]
    Cmdline(std::io::Error),
    #[error(
        "--leave-attached is only for cargo xtask's VM guest (its kernel command line has \
         `{GUEST_MARKER}`): here the probes would stay attached after the tracer exits; leave \
         the flag out"
    )]
    NotGuest,
    #[error("cannot create {path} (is bpffs mounted at /sys/fs/bpf?): {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot pin a link at {path}: {source}")]
    Pin { path: String, source: PinError },
}

/// The kernel command-line word that marks cargo xtask's VM guest (xtask/src/vm/mod.rs puts it
/// there; the kernel ignores a dotted word naming no module).
pub const GUEST_MARKER: &str = "dcache_tracer.guest";

/// Where to pin the links of a recording left attached. Made only on the VM guest, which
/// powers off after the transfer: on any other machine the probes would outlive the tracer.
#[derive(Debug, Clone)]
pub struct GuestPins {
    dir: PathBuf,
}

impl GuestPins {
    /// Pins under `dir` (bpffs), refused unless the kernel command line has [`GUEST_MARKER`].
    pub fn new(dir: PathBuf) -> Result<GuestPins, LeaveError> {
        let cmdline = fs::read_to_string("/proc/cmdline").map_err(LeaveError::Cmdline)?;
        if cmdline.split_whitespace().any(|w| w == GUEST_MARKER) {
            Ok(GuestPins { dir })
        } else {
            Err(LeaveError::NotGuest)
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Links {
    /// Leaves every program attached after this process exits: each bpf_link is pinned under
    /// the guest's bpffs directory, so the exit does not wait for the detach's grace periods.
    /// The probes keep firing until the pins are removed or the guest powers off. Links that
    /// cannot be pinned (kprobes attached as perf events alone) are detached. Returns how many
    /// were pinned.
    pub fn leave_attached(self, pins: &GuestPins) -> Result<usize, LeaveError> {
        let dir = pins.dir();
        fs::create_dir_all(dir).map_err(|source| LeaveError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let mut pinned: Vec<PinnedLink> = Vec::new();
        for link in self.0 {
            let fd = match link {
                Link::Fd(fd) => Some(fd),
                // A perf-event kprobe is dropped by the failed conversion: detached.
                Link::Kprobe(k) => FdLink::try_from(k).ok(),
            };
            if let Some(fd) = fd {
                let path = dir.join(format!("link{}", pinned.len()));
                let p = fd.pin(&path).map_err(|source| LeaveError::Pin {
                    path: path.display().to_string(),
                    source,
                })?;
                pinned.push(p);
            }
        }
        Ok(pinned.len())
    }
}

/// Loads and attaches both halves of every target per `mode` (`auto` in the order `auto`
/// gives: [`Preemption::auto_order`]), the programs with `body`; returns what happened to each
/// and the links: dropping those detaches everything.
pub fn attach_all(
    ebpf: &mut Ebpf,
    body: Body,
    mode: AttachMode,
    auto: &[Family],
    kbtf: &KernelBtf,
    btf: &Btf,
    syms: &ProbeableSymbols,
) -> (BTreeMap<Probe, Attached>, Links) {
    let mut out = BTreeMap::new();
    let mut links = Links::default();
    for probe in Probe::KERNEL.into_iter().filter(|p| p.is_attach_target()) {
        let mut reasons = Vec::new();
        let families: &[Family] = match mode {
            AttachMode::Auto => auto,
            AttachMode::Fentry => &[Family::Fentry],
            AttachMode::Kprobe => &[Family::Kprobe],
        };
        let mut result = None;
        for &family in families {
            match attach_one(ebpf, probe, family, body, kbtf, btf, syms, &mut links) {
                Ok(()) => {
                    result = Some(Attached::Yes(family));
                    break;
                }
                Err(why) => reasons.push(format!("{family}: {why}")),
            }
        }
        let why = reasons.join("; ");
        let outcome = result.unwrap_or_else(|| match syms.presence(probe.symbol()) {
            Presence::Missing => Attached::Absent(why),
            Presence::Present | Presence::Cloned(_) | Presence::Unknown => Attached::Refused(why),
        });
        out.insert(probe, outcome);
    }
    (out, links)
}

#[allow(clippy::too_many_arguments)]
fn attach_one(
    ebpf: &mut Ebpf,
    probe: Probe,
    family: Family,
    body: Body,
    kbtf: &KernelBtf,
    btf: &Btf,
    syms: &ProbeableSymbols,
    links: &mut Links,
) -> Result<(), String> {
    let sym = probe.symbol();
    match family {
        Family::Fentry => match kbtf.func_args(sym) {
            None => {
                return Err(format!(
                    "no BTF FUNC for `{sym}` (absent, or inlined everywhere)"
                ));
            }
            Some(n) if !args_fit(probe, n) => {
                return Err(format!(
                    "`{sym}` takes {n} arguments here; the programs expect {}",
                    expected_args(probe)
                ));
            }
            Some(_) => {}
        },
        Family::Kprobe => {
            if let Some(why) = syms.why_not(sym) {
                return Err(why);
            }
        }
    }
    for half in [Half::Entry, Half::Exit] {
        programs::load(ebpf, probe, family, half, body, btf).map_err(|e| chain(&e))?;
    }
    let mut both = Vec::with_capacity(2);
    // The entry first: an exit program runs only for calls entered after it attached (a
    // kretprobe hooks the return at entry, a trampoline's fexit runs for calls made through
    // it), so every call an exit sees had its entry program attached, and a lookup's exit
    // without its entry (`Counts::orphan_exits`) is never a call in flight at attach.
    for half in [Half::Entry, Half::Exit] {
        let name = programs::body_program_name(probe, family, half, body);
        let prog = ebpf
            .program_mut(&name)
            .ok_or_else(|| format!("program {name} missing from the object"))?;
        // The links are taken out of the programs so that the recorder decides when they go.
        let res = match family {
            Family::Fentry if half == Half::Entry => <&mut FEntry>::try_from(prog)
                .and_then(|p| p.attach().and_then(|id| p.take_link(id)))
                .map(|l| Link::Fd(l.into())),
            Family::Fentry => <&mut FExit>::try_from(prog)
                .and_then(|p| p.attach().and_then(|id| p.take_link(id)))
                .map(|l| Link::Fd(l.into())),
            Family::Kprobe => <&mut KProbe>::try_from(prog)
                .and_then(|p| p.attach(sym, 0).and_then(|id| p.take_link(id)))
                .map(Link::Kprobe),
        };
        match res {
            Ok(link) => both.push(link),
            Err(e) => {
                // Leave no half attached: the entry without its exit would only arm slots.
                drop(both);
                unload_both(ebpf, probe, family, body);
                return Err(format!("attaching {name}: {}", chain(&e)));
            }
        }
    }
    links.0.extend(both);
    Ok(())
}

/// Arguments of each target in every kernel that has fentry/fexit (5.5+).
fn expected_args(probe: Probe) -> usize {
    match probe {
        Probe::DLookupRcu | Probe::DMove => 3,
        Probe::DLookup
        | Probe::DInstantiate
        | Probe::DInstantiateInner
        | Probe::DInstantiateNew
        | Probe::DAdd
        | Probe::DAddInner
        | Probe::DSpliceAlias => 2,
        _ => 1,
    }
}

/// Whether a function with `n` parameters in BTF is the one the programs were written for.
/// Lookups' fexit programs read the return value right after the arguments, so their count
/// must match exactly; writers read only their dentry arguments and ignore the return value.
fn args_fit(probe: Probe, n: usize) -> bool {
    if probe.is_lookup() || probe == Probe::DMove {
        n == expected_args(probe)
    } else {
        n >= expected_args(probe).max(probe.dentry_arg() + 1)
    }
}

fn unload_both(ebpf: &mut Ebpf, probe: Probe, family: Family, body: Body) {
    for half in [Half::Entry, Half::Exit] {
        let Some(p) = ebpf.program_mut(&programs::body_program_name(probe, family, half, body))
        else {
            continue;
        };
        // Unloading detaches its links; an error here means it was never loaded.
        let _ = match (family, half) {
            (Family::Fentry, Half::Entry) => <&mut FEntry>::try_from(p).and_then(|p| p.unload()),
            (Family::Fentry, Half::Exit) => <&mut FExit>::try_from(p).and_then(|p| p.unload()),
            (Family::Kprobe, _) => <&mut KProbe>::try_from(p).and_then(|p| p.unload()),
        };
    }
}

/// An error and its sources on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        // Many errors already print their source in their own message.
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library refuses, not only the CLI: any caller of `record()` needs a `GuestPins`,
    /// and a host (this test's machine) cannot make one.
    #[test]
    fn pins_are_refused_off_the_vm_guest() {
        let cmdline = fs::read_to_string("/proc/cmdline").expect("read /proc/cmdline");
        assert!(
            !cmdline.split_whitespace().any(|w| w == GUEST_MARKER),
            "this test runs on a host, not in the VM guest"
        );
        let refused = GuestPins::new(PathBuf::from("/sys/fs/bpf/never-made"));
        assert!(matches!(refused, Err(LeaveError::NotGuest)), "{refused:?}");
        assert!(!Path::new("/sys/fs/bpf/never-made").exists());
    }

    /// Presence as it was found before only the targets' names were kept from kallsyms alone:
    /// in the union of ftrace's list and kallsyms, each kept whole.
    fn presence_of_both_lists(
        filter: Option<&HashSet<String>>,
        kallsyms: Option<&HashSet<String>>,
        sym: &str,
    ) -> Presence {
        if filter.is_none() && kallsyms.is_none() {
            return Presence::Unknown;
        }
        let lists = || filter.into_iter().chain(kallsyms);
        if lists().any(|l| l.contains(sym)) {
            return Presence::Present;
        }
        let mut clones: Vec<String> = lists()
            .flatten()
            .filter(|n| is_clone_of(n, sym))
            .cloned()
            .collect();
        clones.sort();
        clones.dedup();
        if clones.is_empty() {
            Presence::Missing
        } else {
            Presence::Cloned(clones)
        }
    }

    /// On random kernels' lists (kallsyms with module columns; ftrace's list a part of its
    /// functions with its invalid-address entries), every target's presence is what both lists
    /// kept whole gave, and so is ftrace's list alone's when kallsyms cannot be read.
    #[test]
    fn kept_names_give_the_presence_both_whole_lists_gave() {
        let mut r = fastrand::Rng::with_seed(0x5eed_ba5e);
        let mut rng = |n: u64| r.u64(..n);
        let targets: Vec<&str> = Probe::KERNEL
            .into_iter()
            .filter(|p| p.is_attach_target())
            .map(Probe::symbol)
            .collect();
        let others = [
            "d_add_ci",
            "dput",
            "d_lookup_done",
            "__d_lookup_unhash",
            "vfs_read",
        ];
        let suffixes = [
            "",
            "",
            ".isra.0",
            ".part.1",
            ".constprop.0.isra.0",
            ".cold",
            ".isra",
            ".llvm.7",
            ".llvm.5020190154358329906",
            ".1a",
        ];
        // What Clang names: no GCC clone, no `.cold` part.
        let clang = [
            "",
            "",
            ".llvm.7",
            ".llvm.5020190154358329906",
            ".1a",
            "$707af9a22804d33c81801f27dcfe489b",
        ];
        let mut cut_mattered = 0;
        for _ in 0..300 {
            let mut kallsyms = String::new();
            let mut filter = String::new();
            // A Clang-LTO kernel before 6.11: ftrace's list prints names cut at the first dot.
            // Other kernels (GCC's, and Clang's since) print them whole.
            let lto = rng(2) == 0;
            let suffixes: &[&str] = if lto { &clang } else { &suffixes };
            for i in 0..rng(60) {
                let base = if rng(2) == 0 {
                    targets[rng(targets.len() as u64) as usize]
                } else {
                    others[rng(others.len() as u64) as usize]
                };
                let name = format!("{base}{}", suffixes[rng(suffixes.len() as u64) as usize]);
                let module = (rng(4) == 0).then_some("ext4");
                kallsyms.push_str(&format!("ffffffff8{i:07x} t {name}"));
                if let Some(m) = module {
                    kallsyms.push_str(&format!("\t[{m}]"));
                }
                kallsyms.push('\n');
                // A `.cold` part has no `__fentry__` call of its own: never an ftrace record.
                if rng(2) == 0 && !name.ends_with(".cold") {
                    // As the kernel's cleanup cut it (not `base_name`, which this checks).
                    let cut = name.split(['.', '$']).next().unwrap_or(&name);
                    filter.push_str(if lto { cut } else { &name });
                    if let Some(m) = module {
                        filter.push_str(&format!(" [{m}]"));
                    }
                    filter.push('\n');
                }
                if rng(8) == 0 {
                    filter.push_str(&format!("__ftrace_invalid_address___{i}\n"));
                }
            }
            let whole = |text: &str, field: usize| -> HashSet<String> {
                text.lines()
                    .filter_map(|l| l.split_whitespace().nth(field))
                    .map(String::from)
                    .collect()
            };
            let (k, f) = (whole(&kallsyms, 2), whole(&filter, 0));
            let both = ProbeableSymbols::from_lists(Some(&kallsyms), || Some(filter.clone()));
            let filter_only = ProbeableSymbols::from_lists(None, || Some(filter.clone()));
            let kallsyms_only = ProbeableSymbols::from_lists(Some(&kallsyms), || None);
            for sym in &targets {
                if kallsyms_only.presence(sym) != presence_of_both_lists(Some(&f), Some(&k), sym) {
                    cut_mattered += 1;
                }
                assert_eq!(
                    both.presence(sym),
                    presence_of_both_lists(Some(&f), Some(&k), sym),
                    "{sym} in\n{kallsyms}"
                );
                assert_eq!(
                    filter_only.presence(sym),
                    presence_of_both_lists(Some(&f), None, sym),
                    "{sym} in\n{filter}"
                );
            }
        }
        assert!(
            cut_mattered > 0,
            "no kernel where ftrace's cut names mattered"
        );
        let neither = ProbeableSymbols::from_lists(None, || None);
        assert_eq!(neither.presence("d_move"), Presence::Unknown);
    }

    /// A Clang-LTO kernel before 6.11 (rev27 M1): kallsyms has `__dentry_kill.llvm.N`, ftrace's
    /// list `__dentry_kill`, which kprobes attached to: present, as both lists said.
    #[test]
    fn an_lto_suffix_kallsyms_shows_is_found_as_ftrace_lists_it() {
        let kallsyms = "ffffffff812f0c40 t __dentry_kill.llvm.5020190154358329906\n";
        let syms = ProbeableSymbols::from_lists(Some(kallsyms), || Some("__dentry_kill\n".into()));
        assert_eq!(syms.presence("__dentry_kill"), Presence::Present);
    }

    /// The same under Clang's CFI before LLVM 13 (rev27 F1): kallsyms' `__d_move$<hash>`.
    #[test]
    fn a_cfi_suffix_kallsyms_shows_is_found_as_ftrace_lists_it() {
        let kallsyms = "ffffffff812f0c40 t __d_move$707af9a22804d33c81801f27dcfe489b\n";
        let syms = ProbeableSymbols::from_lists(Some(kallsyms), || Some("__d_move\n".into()));
        assert_eq!(syms.presence("__d_move"), Presence::Present);
    }

    /// On a kernel whose kallsyms holds only the targets, GCC clones and `.cold` parts,
    /// ftrace's list is not read.
    #[test]
    fn ftrace_list_is_not_read_beside_plain_kallsyms() {
        let kallsyms = "ffffffff81000000 T __d_drop\nffffffff81000010 t __d_move.isra.0\n\
                        ffffffff81000020 t __dentry_kill.cold\nffffffff81000030 t d_move.part.0.cold\n";
        let syms = ProbeableSymbols::from_lists(Some(kallsyms), || {
            panic!("ftrace's list read though kallsyms names no cut target")
        });
        assert_eq!(syms.presence("__d_drop"), Presence::Present);
        assert_eq!(
            syms.presence("__d_move"),
            Presence::Cloned(vec!["__d_move.isra.0".into()])
        );
    }

    #[test]
    fn clones_are_told_from_other_names() {
        for clone in [
            "dentry_unlink_inode.part.0",
            "__d_move.isra.12",
            "__d_add.constprop.0.isra.0",
        ] {
            let sym = clone.split('.').next().expect("a name");
            assert!(is_clone_of(clone, sym), "{clone}");
        }
        for other in [
            "__d_move",
            "__d_move.cold",
            "__d_move_locked",
            "__d_move.isra",
            "__d_move.isra.x",
        ] {
            assert!(!is_clone_of(other, "__d_move"), "{other}");
        }
        let syms = |names: &[&str]| ProbeableSymbols {
            names: Some(names.iter().map(|n| n.to_string()).collect()),
        };
        let only_clone = syms(&["__d_move.isra.0", "d_move"]);
        assert_eq!(
            only_clone.presence("__d_move"),
            Presence::Cloned(vec!["__d_move.isra.0".into()])
        );
        assert!(only_clone
            .why_not("__d_move")
            .is_some_and(|w| w.contains("GCC clones (__d_move.isra.0)")));
        assert_eq!(only_clone.presence("d_move"), Presence::Present);
        assert_eq!(only_clone.presence("__d_add"), Presence::Missing);
        let none = ProbeableSymbols { names: None };
        assert_eq!(none.presence("d_move"), Presence::Unknown);
    }

    #[test]
    fn preemption_models_choose_the_attach_order() {
        let (counted, uncounted) = (KprobeSkips::Counted, KprobeSkips::Uncounted);
        let p = Preemption::from_sched_preempt("none voluntary full (lazy)\n");
        assert_eq!(p, Preemption::Preemptive("lazy"));
        assert_eq!(p.auto_order(counted), &[Family::Kprobe, Family::Fentry]);
        // Before 6.7 a skipped kprobe program goes uncounted: fentry first.
        assert_eq!(p.auto_order(uncounted), &[Family::Fentry, Family::Kprobe]);
        let p = Preemption::from_sched_preempt("none (voluntary) full\n");
        assert_eq!(p, Preemption::Cooperative("voluntary"));
        assert_eq!(p.auto_order(counted), &[Family::Fentry, Family::Kprobe]);
        assert_eq!(p.auto_order(uncounted), &[Family::Fentry, Family::Kprobe]);
        assert_eq!(Preemption::from_sched_preempt(""), Preemption::Unknown);
        let banner = |s| Preemption::from_banner(s);
        assert_eq!(
            banner("#1 SMP PREEMPT_DYNAMIC Debian 7.3.4-1~bpo13+1 (2026-11-15)"),
            Preemption::Unknown
        );
        assert_eq!(
            banner("#1 SMP PREEMPT_RT Debian 6.12.95-1"),
            Preemption::Preemptive("rt")
        );
        assert_eq!(
            banner("#1 SMP PREEMPT Sat Dec 5"),
            Preemption::Preemptive("full")
        );
        assert_eq!(
            banner("#1 SMP Debian 5.10.262-1 (2026-05-01)"),
            Preemption::Cooperative("none or voluntary")
        );
    }

    /// The matrix's kernels: 5.10, 6.1 and 6.12 count nothing, 7.3 counts.
    #[test]
    fn kprobe_skips_are_counted_from_6_7() {
        for (release, want) in [
            ("5.10.0-46-amd64", KprobeSkips::Uncounted),
            ("6.1.0-57-amd64", KprobeSkips::Uncounted),
            ("6.6.30", KprobeSkips::Uncounted),
            ("6.7.0-rc1", KprobeSkips::Counted),
            ("6.12.95+deb12-amd64", KprobeSkips::Counted),
            ("7.3.4+deb13-amd64", KprobeSkips::Counted),
            ("unknown", KprobeSkips::Uncounted),
        ] {
            assert_eq!(KprobeSkips::of_release(release), want, "{release}");
        }
    }

    /// `--attach kprobe` on a preemptive kernel before 6.7 says so in the header; fentry, a
    /// cooperative kernel or 6.7+ does not.
    #[test]
    fn kprobes_where_skips_go_uncounted_are_marked() {
        let with = |f: Family| BTreeMap::from([(Probe::DLookupRcu, Attached::Yes(f))]);
        let full = Preemption::Preemptive("full");
        assert_eq!(
            full.skip_counting(KprobeSkips::Uncounted, &with(Family::Kprobe)),
            SkipCounting::KprobeUncounted
        );
        assert_eq!(
            Preemption::Unknown.skip_counting(KprobeSkips::Uncounted, &with(Family::Kprobe)),
            SkipCounting::KprobeUncounted
        );
        for (p, k, f) in [
            (full, KprobeSkips::Uncounted, Family::Fentry),
            (full, KprobeSkips::Counted, Family::Kprobe),
            (
                Preemption::Cooperative("voluntary"),
                KprobeSkips::Uncounted,
                Family::Kprobe,
            ),
        ] {
            assert_eq!(
                p.skip_counting(k, &with(f)),
                SkipCounting::Counted,
                "{p:?} {k:?} {f}"
            );
        }
    }

    #[test]
    fn writers_take_their_dentry_arguments_lookups_their_exact_count() {
        assert!(args_fit(Probe::DLookupRcu, 3));
        assert!(!args_fit(Probe::DLookupRcu, 4));
        assert!(args_fit(Probe::DMove, 3));
        assert!(!args_fit(Probe::DMove, 2));
        assert!(args_fit(Probe::DSpliceAlias, 2));
        assert!(args_fit(Probe::DSpliceAlias, 3));
        assert!(!args_fit(Probe::DSpliceAlias, 1));
        assert!(args_fit(Probe::DentryKill, 1));
    }
}
