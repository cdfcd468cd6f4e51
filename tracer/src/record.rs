//! `tracer record`: attaches the probes, runs a workload, drains the ring buffer into a trace.
//!
//! While the workload runs, the consumer only copies ring records into a staging buffer that
//! was allocated and touched before the start. Turning them into trace events (sanitizing,
//! anonymizing, checksumming, writing) costs several µs an event under QEMU TCG and page
//! allocations anywhere: CPU and memory traffic the traced workload would lose while it runs.
//! That happens when the buffer is full (long recordings) or the workload has ended.
//!
//! Kernel events go to a spill trace (`<out>.partial`, a valid trace without a footer until the
//! end, so a crash loses at most the staged events); at the end they are merged with the
//! workload's operation events in completion order (`ts_end`) into the final trace, whose
//! footer holds hits, drops and how the recording ended.
use std::{
    collections::BTreeMap,
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aya::maps::{PerCpuArray, RingBuf};
use tokio::{
    io::{unix::AsyncFd, Interest},
    signal::unix::{signal, SignalKind},
    time::MissedTickBehavior,
};
use tracer_common::{Config, Counts, Event, Probe, COUNTERS, EVENT_SIZE, MAX_DEVS};

use crate::{
    attach::{self, AttachMode, Attached, ProbeableSymbols},
    btf::KernelBtf,
    kernel,
    programs::{self, Family, Half},
};
pub use tracer_analysis::record_summary::{ProgramStats, RecordSummary};
use tracer_analysis::trace::{
    self, Anonymizer, End, Footer, Header, OffsetsJson, Origin, Reader, ThreadInfo, Writer,
};

/// How to record.
pub struct RecordOptions {
    pub attach: AttachMode,
    pub out: PathBuf,
    pub ring_bytes: u32,
    /// Wake the consumer only when the ring holds this many bytes (0: on every event).
    pub wakeup_bytes: u64,
    pub raw_pointers: bool,
    /// Print a live progress line on stderr.
    pub progress: bool,
    /// Read struct fields one by one in the kprobe programs even where the layout allows one
    /// copy per dentry head (the path any other layout takes; for testing it on any kernel).
    pub per_field_reads: bool,
    /// Leave the programs attached, pinned, instead of detaching them (see
    /// [`attach::Links::leave_attached`]): only the VM guest can make a [`attach::GuestPins`].
    pub leave_attached: Option<attach::GuestPins>,
    /// Have the kernel time every program run and report it (`RecordSummary::programs`).
    pub program_stats: bool,
}

/// The running kernel's BTF, parsed for struct offsets and for loading the programs: the
/// slowest step before the probes load, and one that needs no workload, so `tracer record`
/// reads it while the workload's file system is made (whose device the object's filter needs).
pub struct KernelTypes {
    kbtf: KernelBtf,
    btf: aya::Btf,
    /// Where `btf` was read: the object's loader is handed it when that is the running kernel's.
    path: PathBuf,
    offsets: tracer_common::Offsets,
    took: Duration,
}

impl KernelTypes {
    /// Reads and parses the BTF at `path` (the running kernel's: [`crate::btf::SYS_BTF`]).
    pub fn read(path: &Path) -> Result<KernelTypes> {
        let t = Instant::now();
        let (kbtf, btf) = KernelBtf::parse_both(path).with_context(|| {
            format!(
                "this kernel publishes no usable BTF at {}; the probes need it for struct offsets",
                path.display()
            )
        })?;
        let offsets = kbtf
            .offsets()
            .context("resolving struct offsets from BTF")?;
        Ok(KernelTypes {
            kbtf,
            btf,
            path: path.to_owned(),
            offsets,
            took: t.elapsed(),
        })
    }
}

/// Which workload is run, for the header.
pub struct WorkloadInfo {
    pub name: String,
    pub toml: String,
    pub seed: u64,
    pub scale: Option<f64>,
}

/// What the workload reports back: its operation events and its threads.
pub struct WorkloadRun {
    pub ops: Vec<Event>,
    pub threads: Vec<ThreadInfo>,
    /// From the threads' start to the last one's end.
    pub elapsed: Duration,
}

/// Records `run_workload` (given the stop flag, it returns the operation events) on the file
/// systems `devs` (kernel `s_dev` values; empty: everything). `stop` is set by a signal.
///
/// Four phases: load and attach the probes, run the workload while draining the ring into a
/// spill file, detach and read the kernel's counters, merge the spill with the operations into
/// the trace.
pub fn record<F>(
    opts: &RecordOptions,
    types: KernelTypes,
    workload: &WorkloadInfo,
    devs: &[u32],
    stop: &AtomicBool,
    run_workload: F,
) -> Result<RecordSummary>
where
    F: FnOnce(&AtomicBool) -> Result<WorkloadRun> + Send,
{
    // Touching the staging buffer's pages (64 MiB by default: half a second of page faults
    // under TCG) needs nothing from the probes: it runs while they load and attach, which
    // leave a CPU idle during the kernel's grace periods.
    let ring_bytes = opts.ring_bytes as usize;
    let staging = std::thread::Builder::new()
        .name("staging".into())
        .spawn(move || Staging::new(ring_bytes))
        .context("starting the staging buffer's thread")?;
    let mut probes = load_and_attach(opts, types, devs)?;
    let (load_seconds, attach_seconds) = (probes.load.as_secs_f64(), probes.attach.as_secs_f64());
    let header = header(opts, workload, devs, &probes);
    let spill_path = spill_path(&opts.out);
    let mut spill = Writer::create_scratch(&spill_path, &header)?;
    let ring = RingBuf::try_from(
        probes
            .ebpf
            .take_map("EVENTS")
            .context("the eBPF object has no EVENTS map")?,
    )?;
    let ring = Ring::new(ring, opts.ring_bytes)?;
    // Held until the programs' figures are read.
    let stats = opts
        .program_stats
        .then(|| aya::sys::enable_stats(aya::sys::Stats::RunTime))
        .transpose()
        .context("enabling the kernel's program statistics (BPF_ENABLE_STATS, Linux 5.8+)")?;
    let staging = staging
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    let t0 = Instant::now();
    let (ops, drained) = {
        let counts = counts_map(&probes.ebpf)?;
        run_and_drain(
            opts,
            staging,
            ring,
            &counts,
            &mut spill,
            stop,
            run_workload,
            t0,
        )?
    };
    let consumer = drained.as_ref().map(|d| d.cost).unwrap_or_default();
    let seconds = t0.elapsed().as_secs_f64();
    let t_finish = Instant::now();
    // The counters first, then detach (or pin): nothing after this point, the workload's
    // unmount included, is counted or read from the ring. After a normal end they are the
    // snapshot the drain settled on, which every drained event agrees with.
    let settled = drained.as_ref().ok().and_then(|d| d.settled.clone());
    let counters_settled = settled.is_some();
    let counters = Counters::read(&mut probes, settled)?;
    if let Some(w) = counters.kprobe.unread_warning(probes.kprobe_skips) {
        eprintln!("tracer: warning: {w}");
    }
    let programs = if stats.is_some() {
        program_stats(&probes)
    } else {
        BTreeMap::new()
    };
    drop(stats);
    match &opts.leave_attached {
        Some(pins) => {
            // The ring is drained and the counters read: a failed pin costs the exit the
            // detach's grace periods (links not pinned are detached as they drop), never the
            // trace.
            if let Err(e) = probes.links.leave_attached(pins) {
                eprintln!(
                    "tracer: warning: leaving the probes attached under {}: {e}; the rest are \
                     detached",
                    pins.dir().display()
                );
            }
        }
        None => drop(probes),
    }

    let interrupted = stop.load(Ordering::Relaxed);
    let (run, end) = match (ops, &drained) {
        (Ok(run), Ok(_)) if interrupted => (run, End::Interrupted),
        (Ok(run), Ok(_)) => (run, End::Finished),
        (Err(e), _) => (
            WorkloadRun {
                ops: Vec::new(),
                threads: Vec::new(),
                elapsed: Duration::ZERO,
            },
            End::Error(format!("workload: {e:#}")),
        ),
        (Ok(run), Err(e)) => (run, End::Error(format!("consumer: {e:#}"))),
    };
    let kernel_events = spill.events();
    spill.finish(Footer {
        end: End::Partial,
        ..Footer::default()
    })?;
    let workload_seconds = run.elapsed.as_secs_f64();
    let footer = finish_trace(&spill_path, opts, &header, run, end.clone(), counters)?;
    let finish_seconds = t_finish.elapsed().as_secs_f64();

    let summary = RecordSummary {
        trace: opts.out.clone(),
        kernel_release: header.kernel_release.clone(),
        attach: header.attach.clone(),
        events: footer.per_probe.clone(),
        hits: footer.hits.clone(),
        drops: footer.drops.clone(),
        lost: footer.lost(),
        kernel_skips: kernel_skips(&footer, &header),
        ops: footer
            .per_probe
            .get(Probe::Op.symbol())
            .copied()
            .unwrap_or(0),
        seconds,
        workload_seconds,
        load_seconds,
        attach_seconds,
        finish_seconds,
        consumer_cpu_seconds: consumer.cpu.as_secs_f64(),
        consumer_wakeups: consumer.wakeups,
        programs,
        kernel_events_per_second: kernel_events as f64 / seconds.max(1e-9),
        end,
        complete: footer.complete(),
        counters_settled,
    };
    if let Err(e) = drained {
        return Err(e.context(format!(
            "draining the ring buffer failed; the events before it are in {}",
            opts.out.display()
        )));
    }
    Ok(summary)
}

/// Per probe, the drops the kernel's skips account for: skipped entries, then returns its
/// kretprobe missed (on any file system: at most the drops left).
fn kernel_skips(footer: &Footer, header: &Header) -> BTreeMap<String, u64> {
    let skipped = footer.skipped_entries(header);
    footer
        .drops
        .iter()
        .map(|(sym, drops)| {
            let entries = skipped.get(sym).copied().unwrap_or(0).min(*drops);
            let exits = footer.kprobe_missed_exits.get(sym).copied().unwrap_or(0);
            (sym.clone(), entries + exits.min(drops - entries))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The loaded object with its programs attached.
struct Probes {
    ebpf: aya::Ebpf,
    offsets: tracer_common::Offsets,
    attached: BTreeMap<Probe, Attached>,
    links: attach::Links,
    /// How the kprobe programs read struct fields, for the header.
    reads: String,
    /// The kernel's preemption model and whether it counts skipped kprobe programs, which set
    /// `auto`'s attach order.
    preemption: attach::Preemption,
    kprobe_skips: attach::KprobeSkips,
    /// Reading BTF and the object; loading and attaching the programs.
    load: Duration,
    attach: Duration,
}

/// Phase 1: offsets from BTF, the object loaded with its configuration, every target attached.
fn load_and_attach(opts: &RecordOptions, types: KernelTypes, devs: &[u32]) -> Result<Probes> {
    if devs.len() > MAX_DEVS {
        bail!(
            "at most {MAX_DEVS} file systems can be traced at once, got {}",
            devs.len()
        );
    }
    let t_load = Instant::now();
    let KernelTypes {
        kbtf,
        btf,
        path,
        offsets,
        took,
    } = types;
    let mut config = Config::ZERO;
    config.offsets = offsets;
    let (fast, reads) = kprobe_reads(&offsets, opts.per_field_reads);
    config.fast_reads = u32::from(fast);
    config.devs[..devs.len()].copy_from_slice(devs);
    config.wakeup_bytes = opts.wakeup_bytes;
    config.cpus = aya::util::nr_cpus()
        .map_err(|(path, e)| anyhow::anyhow!("reading {path}: {e}"))?
        .try_into()
        .context("more CPUs than a u32 counts")?;

    let mut ebpf = programs::open_with(&config, opts.ring_bytes, &btf, &path)
        .context("parsing the embedded eBPF object")?;
    let load = took + t_load.elapsed();
    let t_attach = Instant::now();
    let syms = ProbeableSymbols::read();
    let preemption = attach::Preemption::of_running_kernel();
    let kprobe_skips = attach::KprobeSkips::of_release(&kernel::release());
    let (attached, links) = attach::attach_all(
        &mut ebpf,
        programs::Body::Record,
        opts.attach,
        preemption.auto_order(kprobe_skips),
        &kbtf,
        &btf,
        &syms,
    );
    if let Some(why) = attached.get(&Probe::DLookupRcu).and_then(Attached::why_not) {
        bail!(
            "cannot attach to __d_lookup_rcu ({why}); without it there is nothing to record. \
             On a kernel without kprobes or tracing programs use the VM: cargo xtask vm"
        );
    }
    Ok(Probes {
        ebpf,
        offsets,
        attached,
        links,
        reads,
        preemption,
        kprobe_skips,
        load,
        attach: t_attach.elapsed(),
    })
}

/// The trace's header: what runs, on which kernel, attached how.
fn header(opts: &RecordOptions, workload: &WorkloadInfo, devs: &[u32], probes: &Probes) -> Header {
    let mut header = Header::new(Origin::Kernel);
    header.kernel_release = kernel::release();
    header.attach = probes
        .attached
        .iter()
        .map(|(p, a)| (p.symbol().to_string(), a.describe()))
        .collect();
    header.observed_through =
        tracer_analysis::writers::observed_through(&header.attach, &header.kernel_release);
    header.offsets = Some(OffsetsJson::from(&probes.offsets));
    header.workload = Some(workload.name.clone());
    header.workload_toml = Some(workload.toml.clone());
    header.seed = Some(workload.seed);
    header.scale = workload.scale;
    header.raw_pointers = opts.raw_pointers;
    header.devs = devs.to_vec();
    header
        .notes
        .insert("ring_bytes".into(), opts.ring_bytes.to_string());
    header
        .notes
        .insert("wakeup_bytes".into(), opts.wakeup_bytes.to_string());
    header
        .notes
        .insert("kprobe_reads".into(), probes.reads.clone());
    header.notes.insert(
        "preemption".into(),
        probes.preemption.describe(probes.kprobe_skips),
    );
    header.skip_counting = Some(
        probes
            .preemption
            .skip_counting(probes.kprobe_skips, &probes.attached),
    );
    header
}

/// Phase 2: the workload on its own thread while this one drains the ring into the spill.
/// Returns the workload's outcome and the drain's.
#[allow(clippy::too_many_arguments)]
fn run_and_drain<F>(
    opts: &RecordOptions,
    mut staging: Staging,
    ring: Ring,
    counts: &CountsMap<'_>,
    spill: &mut Writer,
    stop: &AtomicBool,
    run_workload: F,
    t0: Instant,
) -> Result<(Result<WorkloadRun>, Result<Drained>)>
where
    F: FnOnce(&AtomicBool) -> Result<WorkloadRun> + Send,
{
    let mut anon = Anonymizer::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the recorder's event loop")?;
    std::thread::scope(|s| {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let worker = std::thread::Builder::new()
            .name("workload".into())
            .spawn_scoped(s, move || {
                let r = run_workload(stop);
                // The loop may be gone after a consumer error; the result is joined below.
                let _ = done_tx.send(());
                r
            })
            .context("starting the workload's thread")?;
        let mut sink = Sink {
            staging: &mut staging,
            spill,
            anon: &mut anon,
            raw_pointers: opts.raw_pointers,
        };
        let drained = runtime.block_on(drain(
            ring,
            counts,
            &mut sink,
            stop,
            done_rx,
            opts.progress,
            t0,
        ));
        if drained.is_err() {
            // The consumer failed: stop the workload rather than run it untraced.
            stop.store(true, Ordering::Relaxed);
        }
        let ops = worker
            .join()
            .map_err(|_| anyhow::anyhow!("the workload thread panicked"))?;
        Ok((ops, drained))
    })
}

/// The programs' per-CPU counters.
type CountsMap<'a> = PerCpuArray<&'a aya::maps::MapData, Counts>;

fn counts_map(ebpf: &aya::Ebpf) -> Result<CountsMap<'_>> {
    let map = ebpf
        .map("COUNTS")
        .context("the eBPF object has no COUNTS map")?;
    Ok(PerCpuArray::try_from(map)?)
}

/// One read of `COUNTS`, summed per probe.
#[derive(Clone)]
struct Snapshot {
    hits: BTreeMap<Probe, u64>,
    drops: BTreeMap<Probe, u64>,
    /// Exits that found no entry on a traced file system (`Counts::orphan_exits`).
    orphan_exits: BTreeMap<Probe, u64>,
    last_cpu_seq: BTreeMap<u32, u64>,
}

impl Snapshot {
    fn read(counts: &CountsMap<'_>) -> Result<Snapshot> {
        // One value per possible CPU, in CPU id order.
        let per_cpu = counts.get(&0, 0).context("reading the COUNTS map")?;
        let per_probe = |pick: fn(&Counts) -> &[u64; COUNTERS as usize]| -> BTreeMap<Probe, u64> {
            Probe::KERNEL
                .iter()
                .map(|&p| {
                    let i = p.counter_index() as usize;
                    (p, per_cpu.iter().map(|c| pick(c)[i]).sum())
                })
                .collect()
        };
        Ok(Snapshot {
            hits: per_probe(|c| &c.hits),
            drops: per_probe(|c| &c.drops),
            orphan_exits: per_probe(|c| &c.orphan_exits),
            last_cpu_seq: (0u32..)
                .zip(per_cpu.iter())
                .filter(|(_, c)| c.seq > 0)
                .map(|(cpu, c)| (cpu, c.seq))
                .collect(),
        })
    }

    /// Events the ring must have carried: calls counted minus calls that produced none.
    fn owed(&self) -> u64 {
        let sum = |m: &BTreeMap<Probe, u64>| m.values().sum::<u64>();
        sum(&self.hits).saturating_sub(sum(&self.drops))
    }
}

/// What the kernel side counted, read before detaching.
struct Counters {
    counts: Snapshot,
    /// Calls whose entry (exit) program the kernel skipped (recursion protection).
    missed_entries: BTreeMap<Probe, u64>,
    missed_exits: BTreeMap<Probe, u64>,
    /// What the kernel's kprobe layer missed under the kprobe programs.
    kprobe: KprobeMisses,
}

/// Per probe attached through kprobes, the hits its kprobe (kretprobe) missed, as the links
/// report them ([`programs::kprobe_link_misses`]), and the probes whose entry kprobe's misses
/// the kernel does not report.
#[derive(Default)]
struct KprobeMisses {
    entries: BTreeMap<Probe, u64>,
    exits: BTreeMap<Probe, u64>,
    unread: Vec<Probe>,
    /// Why the links could not be listed at all, when they could not.
    unlisted: Option<String>,
}

impl KprobeMisses {
    /// Read before detaching, while the links are this process's; `__d_move`'s programs stand
    /// for its target's events too. A kretprobe's misses that go unread are not listed: the
    /// call's entry ran and counted a hit, so its lost event is counted anyway.
    fn read(probes: &Probes) -> KprobeMisses {
        let mut out = KprobeMisses::default();
        let by_id = if probes.kprobe_skips == attach::KprobeSkips::Counted {
            programs::kprobe_link_misses().unwrap_or_else(|e| {
                out.unlisted = Some(format!("listing /proc/self/fd: {e}"));
                BTreeMap::new()
            })
        } else {
            BTreeMap::new()
        };
        for p in Probe::KERNEL {
            let owner = if p == Probe::DMoveTarget {
                Probe::DMove
            } else {
                p
            };
            if probes.attached.get(&owner) != Some(&Attached::Yes(Family::Kprobe)) {
                continue;
            }
            let missed = |half| {
                let name = programs::program_name(owner, Family::Kprobe, half);
                programs::program_id(&probes.ebpf, &name).and_then(|id| by_id.get(&id).copied())
            };
            match missed(Half::Entry) {
                Some(n) => {
                    out.entries.insert(p, n);
                }
                None => out.unread.push(p),
            }
            if let Some(n) = missed(Half::Exit) {
                out.exits.insert(p, n);
            }
        }
        out
    }

    /// On a kernel that reports kprobe misses (6.7 and later), the probes whose links the
    /// tracer could not read: their misses are unknown, which the kernel's own silence before
    /// 6.7 would not explain, so the user is told the cause rather than the kernel's age.
    fn unread_warning(&self, skips: attach::KprobeSkips) -> Option<String> {
        if skips != attach::KprobeSkips::Counted || self.unread.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.unread.iter().map(|p| p.symbol()).collect();
        let cause = self.unlisted.as_deref().unwrap_or(
            "no bpf_link of this process answered BPF_OBJ_GET_INFO_BY_FD for their programs",
        );
        Some(format!(
            "the kprobe links of {} could not be read ({cause}): the hits their kprobes missed \
             are not counted (footer `kprobe_misses_uncounted`); record with `--attach fentry`, \
             whose skips the kernel counts",
            names.join(", ")
        ))
    }
}

impl Counters {
    /// The programs' counters (`settled`, or read now when the drain did not settle on a
    /// snapshot); the kernel's own counts of skipped programs.
    fn read(probes: &mut Probes, settled: Option<Snapshot>) -> Result<Counters> {
        let counts = match settled {
            Some(s) => s,
            None => Snapshot::read(&counts_map(&probes.ebpf)?)?,
        };
        Ok(Counters {
            counts,
            missed_entries: recursion_misses(&probes.ebpf, &probes.attached, Half::Entry),
            missed_exits: recursion_misses(&probes.ebpf, &probes.attached, Half::Exit),
            kprobe: KprobeMisses::read(probes),
        })
    }
}

/// Phases 3 and 4: counts per probe (delivered, hits, drops, calls the kernel skipped, and
/// calls that produced no event unseen by any drop counter), then the spill merged with the
/// operations into the trace.
fn finish_trace(
    spill_path: &Path,
    opts: &RecordOptions,
    header: &Header,
    run: WorkloadRun,
    end: End,
    counters: Counters,
) -> Result<Footer> {
    let delivered = count_per_probe(spill_path)?;
    let footer = Footer {
        end,
        threads: run.threads,
        ..fold_counts(counters, &delivered)
    };
    let footer = merge(spill_path, &opts.out, header, run.ops, footer)?;
    std::fs::remove_file(spill_path)
        .with_context(|| format!("removing {}", spill_path.display()))?;
    Ok(footer)
}

/// The footer's counts: per probe, the kernel's counters folded with the events the spill
/// holds (`delivered`, per symbol).
fn fold_counts(counters: Counters, delivered: &BTreeMap<String, u64>) -> Footer {
    let mut footer = Footer {
        last_cpu_seq: counters.counts.last_cpu_seq,
        ..Footer::default()
    };
    let mut skipped = BTreeMap::new();
    for p in Probe::KERNEL {
        let sym = p.symbol().to_string();
        let h = counters.counts.hits.get(&p).copied().unwrap_or(0);
        let d = counters.counts.drops.get(&p).copied().unwrap_or(0);
        let got = delivered.get(&sym).copied().unwrap_or(0);
        // Calls whose entry program the kernel skipped (its recursion guard, or its kprobe
        // missed): never counted as hits, lost all the same. (A skipped exit leaves a hit
        // without an event, counted below.) The kernel's counts cover every file system; the
        // exits that found no entry count the traced ones' skips the kernel did not count (a
        // kprobe before 6.7), and otherwise are among its: the larger of the two.
        let orphans = counters.counts.orphan_exits.get(&p).copied().unwrap_or(0);
        let counted = counters.missed_entries.get(&p).copied().unwrap_or(0)
            + counters.kprobe.entries.get(&p).copied().unwrap_or(0);
        let missed = counted.max(orphans);
        skipped.insert(p, missed);
        let (h, d) = (h + missed, d + missed);
        // Entries without an event that no drop counter saw (a kretprobe missed for lack of
        // instances, or a call still in flight at detach) are lost all the same.
        let unaccounted = h.saturating_sub(d + got);
        footer.hits.insert(sym.clone(), h);
        footer.drops.insert(sym, d + unaccounted);
    }
    // Per probe in the footer (typed, the diff reads them): a skipped entry lets the exit pair
    // a call with the thread's previous one.
    for (into, m) in [
        (&mut footer.skipped_entries, &skipped),
        (&mut footer.skipped_exits, &counters.missed_exits),
        (
            &mut footer.exits_without_entry,
            &counters.counts.orphan_exits,
        ),
        (&mut footer.kprobe_missed_entries, &counters.kprobe.entries),
        (&mut footer.kprobe_missed_exits, &counters.kprobe.exits),
    ] {
        *into = m
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| (p.symbol().to_string(), *n))
            .collect();
    }
    footer.kprobe_misses_uncounted = counters
        .kprobe
        .unread
        .iter()
        .map(|p| p.symbol().to_string())
        .collect();
    footer
}

fn spill_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Ring records waiting to become trace events: a buffer of whole events, allocated and
/// touched before the workload starts so that filling it costs no page faults.
struct Staging {
    buf: Vec<u8>,
    len: usize,
}

/// The staging buffer holds as much as the ring, up to this (it only sets how often a long
/// recording converts events while it runs).
const STAGING_MAX_BYTES: usize = 64 << 20;

impl Staging {
    fn new(ring_bytes: usize) -> Staging {
        let events = ring_bytes.clamp(EVENT_SIZE, STAGING_MAX_BYTES) / EVENT_SIZE;
        let mut buf = vec![0u8; events * EVENT_SIZE];
        // The zeroed allocation is only mapped on first write; write every page now.
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(1);
        for i in (0..buf.len()).step_by(page) {
            // SAFETY: in bounds; volatile so the store of a zero over zeroes stays.
            unsafe { std::ptr::write_volatile(buf.as_mut_ptr().add(i), 0) };
        }
        Staging { buf, len: 0 }
    }

    fn is_full(&self) -> bool {
        self.len + EVENT_SIZE > self.buf.len()
    }

    fn push(&mut self, rec: &[u8; EVENT_SIZE]) {
        self.buf[self.len..self.len + EVENT_SIZE].copy_from_slice(rec);
        self.len += EVENT_SIZE;
    }
}

/// Where drained events go: staged, then sanitized, anonymized and written to the spill.
struct Sink<'a> {
    staging: &'a mut Staging,
    spill: &'a mut Writer,
    anon: &'a mut Anonymizer,
    raw_pointers: bool,
}

impl Sink<'_> {
    /// Converts and writes every staged event, and empties the staging buffer, also when a
    /// write fails: the caller flushes once more at the end, and a retry would write again the
    /// events that did go out (the trace ends with the error either way).
    fn flush(&mut self) -> Result<()> {
        let len = std::mem::take(&mut self.staging.len);
        for rec in self.staging.buf[..len].chunks_exact(EVENT_SIZE) {
            let Ok(arr) = <&[u8; EVENT_SIZE]>::try_from(rec) else {
                continue;
            };
            let mut ev = Event::from_bytes(arr);
            trace::sanitize(&mut ev);
            if !self.raw_pointers {
                self.anon.apply(&mut ev);
            }
            self.spill.push(&ev)?;
        }
        Ok(())
    }

    /// Moves every committed record now in the ring to the staging buffer; returns how many.
    fn drain(&mut self, ring: &mut RingReader) -> Result<u64> {
        let mut n = 0;
        loop {
            let end = ring.producer_pos();
            let mut moved = false;
            while ring.pos != end {
                let Some(rec) = ring.record() else {
                    // Reserved, not yet committed: its producer's wakeup or the tick comes back.
                    break;
                };
                let len = match rec {
                    Record::Discarded(len) => len,
                    Record::Oversized(len) => bail!(
                        "ring buffer record of {len} bytes, longer than the ring: the ring \
                         buffer's header is not the kernel's layout this tracer reads"
                    ),
                    Record::Data(bytes) => {
                        let Ok(arr) = <&[u8; EVENT_SIZE]>::try_from(bytes) else {
                            bail!(
                                "ring buffer record of {} bytes, expected {EVENT_SIZE}: the eBPF \
                             object and this tracer disagree on the event layout",
                                bytes.len()
                            );
                        };
                        if self.staging.is_full() {
                            // The staged records' ring space back before the conversion runs.
                            ring.publish();
                            self.flush()?;
                        }
                        self.staging.push(arr);
                        n += 1;
                        if n % PUBLISH_EVERY == 0 {
                            // A long backlog gives its space back as it goes: producers
                            // meeting a ring still full of copied records would drop theirs.
                            ring.publish();
                        }
                        bytes.len()
                    }
                };
                ring.advance(len);
                moved = true;
            }
            if !moved {
                return Ok(n);
            }
            ring.publish();
        }
    }
}

/// The ring buffer map, which the event loop polls for readiness, and its pages read in place.
struct Ring {
    map: RingBuf<aya::maps::MapData>,
    reader: RingReader,
}

impl Ring {
    fn new(map: RingBuf<aya::maps::MapData>, size: u32) -> Result<Ring> {
        let reader = RingReader::map(map.as_fd(), size)?;
        Ok(Ring { map, reader })
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.map.as_raw_fd()
    }
}

/// A ring buffer record at the consumer's position.
enum Record<'a> {
    Data(&'a [u8]),
    /// Reserved and then discarded by its producer: skipped (its length).
    Discarded(usize),
    /// A committed record whose header claims more than the ring holds: no slice is made.
    Oversized(usize),
}

/// Committed records read between two stores of the consumer position within one drain.
const PUBLISH_EVERY: u64 = 4096;

/// The kernel's ring buffer record header: the length with these two flags in its top bits,
/// then the record's page offset (`struct bpf_ringbuf_hdr`).
const RINGBUF_BUSY: u32 = 1 << 31;
const RINGBUF_DISCARD: u32 = 1 << 30;
const RINGBUF_HDR: u64 = 8;

/// The ring buffer read in place, as the kernel maps it: a consumer page (read-write) holding
/// the consumer position, a producer page holding the producer position, then the data pages
/// twice in a row, so a record that wraps reads as one piece. aya's `RingBuf::next` hands out
/// one record a call (a call, and a position stored for the kernel, an event); this reads
/// every committed record up to the producer position and stores the position once a batch.
struct RingReader {
    consumer: *const AtomicU64,
    producer: *const AtomicU64,
    data: *const u8,
    mask: u64,
    /// Where the next record starts (the kernel's positions only grow).
    pos: u64,
    /// The mappings `consumer`, `producer` and `data` point into; None in the tests, which
    /// lay a ring out in memory of their own.
    _maps: Option<[Mapping; 2]>,
}

impl RingReader {
    /// Maps the ring buffer map `fd` of `size` bytes (a power of two, a multiple of the page).
    fn map(fd: BorrowedFd<'_>, size: u32) -> Result<RingReader> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .context("the page size")?;
        let size = usize::try_from(size).context("the ring's size")?;
        let consumer = Mapping::new(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)
            .context("mapping the ring buffer's consumer page")?;
        let producer = Mapping::new(fd, page + 2 * size, libc::PROT_READ, page)
            .context("mapping the ring buffer's producer and data pages")?;
        let (c, p) = (consumer.ptr.cast::<AtomicU64>(), producer.ptr.cast::<u8>());
        // SAFETY: the producer mapping is one page and then the data pages.
        let data = unsafe { p.add(page) };
        // SAFETY: the consumer page starts with the consumer position, 8-aligned (a page).
        let pos = unsafe { &*c }.load(Ordering::Acquire);
        Ok(RingReader {
            consumer: c,
            producer: p.cast(),
            data,
            mask: size as u64 - 1,
            pos,
            _maps: Some([consumer, producer]),
        })
    }

    /// The producer position: every record before it is reserved, committed or not.
    fn producer_pos(&self) -> u64 {
        // SAFETY: the producer page's first word, page-aligned, live as long as `self`; the
        // kernel stores it with release ordering after the record's header.
        unsafe { &*self.producer }.load(Ordering::Acquire)
    }

    /// The record at `pos`, which must be before the producer position; None while it is
    /// reserved and not yet committed.
    fn record(&self) -> Option<Record<'_>> {
        let off = (self.pos & self.mask) as usize;
        // SAFETY: `off` is inside the data pages, 8-aligned (records are); the kernel commits
        // the header with a full barrier after the record's bytes.
        let hdr = unsafe { &*self.data.add(off).cast::<AtomicU32>() }.load(Ordering::Acquire);
        if hdr & RINGBUF_BUSY != 0 {
            return None;
        }
        let len = (hdr & !(RINGBUF_BUSY | RINGBUF_DISCARD)) as usize;
        if hdr & RINGBUF_DISCARD != 0 {
            return Some(Record::Discarded(len));
        }
        if len as u64 + RINGBUF_HDR > self.mask + 1 {
            return Some(Record::Oversized(len));
        }
        // SAFETY: a committed record fits in the ring after its header, and the data pages are
        // mapped twice, so it is contiguous from `off` even where it wraps; the kernel does not
        // write it again until the consumer position passes it (`advance`, `publish`).
        Some(Record::Data(unsafe {
            std::slice::from_raw_parts(self.data.add(off + RINGBUF_HDR as usize), len)
        }))
    }

    /// Past the record at `pos` of `len` bytes (committed or discarded), as the kernel
    /// rounds it.
    fn advance(&mut self, len: usize) {
        self.pos += (len as u64 + RINGBUF_HDR).next_multiple_of(8);
    }

    /// Hands the records read so far back to the kernel. The fence orders the store before
    /// the next read of the producer position: a producer that commits meanwhile either is
    /// seen or sees this position and wakes the consumer (when it asks for a wakeup).
    fn publish(&self) {
        // SAFETY: the consumer page's first word, page-aligned, live as long as `self`.
        unsafe { &*self.consumer }.store(self.pos, Ordering::Release);
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// A shared mapping of a map's pages, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: libc::c_int, offset: usize) -> Result<Mapping> {
        let offset = libc::off_t::try_from(offset).context("the mapping's offset")?;
        // SAFETY: a new mapping at an address the kernel picks; the kernel checks the length,
        // offset and protection against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping; nothing borrows from it once the reader is gone.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Producers below the wakeup threshold submit without waking the consumer: drain this often.
const DRAIN_TICK: Duration = Duration::from_millis(10);

/// The consumer's share of the machine while the workload ran: what draining took from it.
#[derive(Clone, Copy, Default)]
struct ConsumerCost {
    cpu: Duration,
    wakeups: u64,
}

/// What the drain hands back after the workload's end.
struct Drained {
    cost: ConsumerCost,
    /// The counters every drained event agrees with, when the drain settled (see
    /// `finish_drain`); None after an error of the drain, or when calls stayed in flight or
    /// events kept coming (see `finish_drain`).
    settled: Option<Snapshot>,
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; this clock exists on every Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Drains the ring until the workload has finished and the ring is empty, then converts what
/// is staged (also after a failure, so the spill keeps what was drained). One `select!` over
/// the ring's readiness, the drain tick, SIGINT/SIGTERM (which stop the workload; it ends
/// early and the loop drains what it left) and the workload's end.
async fn drain(
    ring: Ring,
    counts: &CountsMap<'_>,
    sink: &mut Sink<'_>,
    stop: &AtomicBool,
    mut done: tokio::sync::oneshot::Receiver<()>,
    progress: bool,
    t0: Instant,
) -> Result<Drained> {
    let cpu0 = thread_cpu_time();
    let mut during = ConsumerCost::default();
    // SAFETY: the ring owns its map's descriptor (MapData holds an OwnedFd) and returns that
    // one from as_raw_fd for as long as it lives; the AsyncFd owns the ring.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(std::io::Error::from)
        .context("registering the ring buffer with the event loop")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut tick = tokio::time::interval(DRAIN_TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let second = Duration::from_secs(1);
    let mut report = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    let (mut n, mut last_n) = (0u64, 0u64);
    let mut last_report = Instant::now();
    let mut settled = None;
    let drained = loop {
        let batch = tokio::select! {
            guard = ring.readable_mut() => match guard {
                Ok(mut g) => {
                    let b = sink.drain(&mut g.get_inner_mut().reader);
                    g.clear_ready();
                    b
                }
                Err(e) => Err(anyhow::Error::new(e).context("waiting on the ring buffer")),
            },
            _ = tick.tick() => sink.drain(&mut ring.get_mut().reader),
            _ = sigint.recv() => {
                stop.store(true, Ordering::Relaxed);
                continue;
            }
            _ = sigterm.recv() => {
                stop.store(true, Ordering::Relaxed);
                continue;
            }
            _ = report.tick(), if progress => {
                let rate = (n - last_n) as f64 / last_report.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\rrecording: {n} events, {rate:.0} events/s, {:.0}s   ",
                    t0.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
                last_n = n;
                continue;
            }
            _ = &mut done => {
                during.cpu = thread_cpu_time().saturating_sub(cpu0);
                break finish_drain(&mut ring, counts, sink, n).await.map(|s| settled = s);
            }
        };
        during.wakeups += 1;
        match batch {
            Ok(b) => n += b,
            Err(e) => break Err(e),
        }
    };
    if progress {
        eprintln!();
    }
    let flushed = sink.flush();
    drained?;
    flushed?;
    Ok(Drained {
        cost: during,
        settled,
    })
}

/// After the workload's end: let the exits of calls that were in flight land and drain until
/// the ring stays empty and the counters owe no event: a call counted on entry whose event
/// was not yet in the ring (its exit still running, or a late call on the workload's file
/// systems from a kernel thread) would otherwise read as lost. Returns the counters the drained
/// events agree with, or None when they did not agree within `SETTLE_LIMIT` of the first
/// empty drain (calls stuck in flight) or events kept coming for `DRAIN_LIMIT`: the footer
/// then counts those calls as lost.
async fn finish_drain(
    ring: &mut AsyncFd<Ring>,
    counts: &CountsMap<'_>,
    sink: &mut Sink<'_>,
    mut n: u64,
) -> Result<Option<Snapshot>> {
    let drain_until = Instant::now() + DRAIN_LIMIT;
    let mut settle_until = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let late = sink.drain(&mut ring.get_mut().reader)?;
        n += late;
        if late == 0 {
            // Read after the drain: every event drained was counted in it.
            let snap = Snapshot::read(counts)?;
            if snap.owed() == n {
                return Ok(Some(snap));
            }
            // From the first quiet drain: a long drain of a full ring does not eat into it.
            if Instant::now() >= *settle_until.get_or_insert(Instant::now() + SETTLE_LIMIT) {
                return Ok(None);
            }
        } else if Instant::now() >= drain_until {
            // Events keep coming (activity on the workload's file systems that does not
            // stop): the counters read after this count what is still in the ring as lost.
            return Ok(None);
        }
    }
}

/// How long the end of a recording waits, once the ring was found empty, for the counters and
/// the drained events to agree.
const SETTLE_LIMIT: Duration = Duration::from_millis(500);
/// How long it drains while events keep coming after the workload's end.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Whether the kprobe programs may read a dentry's head and a qstr in one copy each (the layout
/// keeps the fields in the window, and the user did not ask otherwise), and why, for the header.
fn kprobe_reads(offsets: &tracer_common::Offsets, per_field: bool) -> (bool, String) {
    match offsets.check_windows() {
        Ok(()) if !per_field => (true, "one copy per dentry head and qstr".into()),
        Ok(()) => (false, "one per field (--per-field-reads)".into()),
        Err((field, off)) => (
            false,
            format!("one per field (`{field}` at {off} lies outside the one-copy window)"),
        ),
    }
}

/// Per probe, how often the kernel skipped its `half` program (see
/// [`programs::recursion_misses`]); `__d_move`'s programs stand for its target's events too.
fn recursion_misses(
    ebpf: &aya::Ebpf,
    attached: &BTreeMap<Probe, Attached>,
    half: Half,
) -> BTreeMap<Probe, u64> {
    Probe::KERNEL
        .iter()
        .filter_map(|&p| {
            let owner = if p == Probe::DMoveTarget {
                Probe::DMove
            } else {
                p
            };
            let Some(Attached::Yes(family)) = attached.get(&owner) else {
                return None;
            };
            let name = programs::program_name(owner, *family, half);
            Some((p, programs::recursion_misses(ebpf, &name)?))
        })
        .collect()
}

/// Per attached program that ran, its runs and the kernel's time in it.
fn program_stats(probes: &Probes) -> BTreeMap<String, ProgramStats> {
    let mut out = BTreeMap::new();
    for (probe, attached) in &probes.attached {
        let Attached::Yes(family) = attached else {
            continue;
        };
        for half in [Half::Entry, Half::Exit] {
            let name = programs::program_name(*probe, *family, half);
            let Some(info) = probes.ebpf.program(&name).and_then(|p| p.info().ok()) else {
                continue;
            };
            let runs = info.run_count();
            if runs > 0 {
                let ns = info.run_time().as_nanos() as f64;
                out.insert(
                    name,
                    ProgramStats {
                        runs,
                        ns_per_run: ns / runs as f64,
                    },
                );
            }
        }
    }
    out
}

fn count_per_probe(spill: &Path) -> Result<BTreeMap<String, u64>> {
    let mut r = Reader::open(spill)?;
    while r.next_event()?.is_some() {}
    Ok(r.footer().map(|f| f.per_probe.clone()).unwrap_or_default())
}

/// Merges the spilled kernel events with the operation events by `ts_end` into `out`.
fn merge(
    spill: &Path,
    out: &Path,
    header: &Header,
    mut ops: Vec<Event>,
    footer: Footer,
) -> Result<Footer> {
    ops.sort_by_key(|e| e.ts_end);
    let mut r = Reader::open(spill)?;
    let mut w = Writer::create(out, header)?;
    let mut ops = ops.into_iter().peekable();
    while let Some(ev) = r.next_event()? {
        while let Some(op) = ops.next_if(|op| op.ts_end <= ev.ts_end) {
            w.push(&op)?;
        }
        w.push(&ev)?;
    }
    for op in ops {
        w.push(&op)?;
    }
    Ok(w.finish(footer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a `Sink` borrows: a staging buffer of `staging_bytes`, a spill into `spill` (a
    /// device), an anonymizer.
    struct SinkParts {
        staging: Staging,
        spill: Writer,
        anon: Anonymizer,
    }

    impl SinkParts {
        fn new(spill: &str, staging_bytes: usize) -> SinkParts {
            let header = trace::Header::new(trace::Origin::Kernel);
            SinkParts {
                staging: Staging::new(staging_bytes),
                spill: Writer::create_scratch(Path::new(spill), &header).expect("the device opens"),
                anon: Anonymizer::default(),
            }
        }

        fn sink(&mut self) -> Sink<'_> {
            Sink {
                staging: &mut self.staging,
                spill: &mut self.spill,
                anon: &mut self.anon,
                raw_pointers: false,
            }
        }
    }

    /// A spill that fails mid-way (a full disk): the staged events are not kept for the final
    /// flush, which would write again those that went out before the failure.
    #[test]
    fn a_failed_flush_empties_the_staging_buffer() {
        let mut parts = SinkParts::new("/dev/full", 4 << 20);
        let mut ev = Event::zeroed();
        ev.probe = tracer_common::Probe::DLookupRcu as u8;
        while !parts.staging.is_full() {
            parts.staging.push(ev.as_bytes());
            ev.cpu_seq += 1;
        }
        let mut sink = parts.sink();
        assert!(sink.flush().is_err(), "4 MiB of events into /dev/full");
        assert_eq!(sink.staging.len, 0);
        assert!(sink.flush().is_ok(), "nothing left to write again");
    }

    /// A ring buffer laid out in memory as the kernel maps it (the data pages twice in a row),
    /// written as a producer does: reserve (busy header), fill, commit or discard.
    struct FakeRing {
        consumer: Box<AtomicU64>,
        producer: Box<AtomicU64>,
        /// Both copies of the data pages, written and read through `data` alone.
        _pages: Vec<u64>,
        data: *mut u8,
        size: usize,
    }

    impl FakeRing {
        fn new(size: usize) -> FakeRing {
            let mut pages = vec![0u64; 2 * size / 8];
            FakeRing {
                consumer: Box::new(AtomicU64::new(0)),
                producer: Box::new(AtomicU64::new(0)),
                data: pages.as_mut_ptr().cast(),
                _pages: pages,
                size,
            }
        }

        fn reader(&mut self) -> RingReader {
            RingReader {
                consumer: &*self.consumer,
                producer: &*self.producer,
                data: self.data,
                mask: self.size as u64 - 1,
                pos: self.consumer.load(Ordering::Relaxed),
                _maps: None,
            }
        }

        /// Writes `bytes` at ring position `pos`, in both copies of the data pages.
        fn write(&mut self, pos: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                let at = (pos as usize + i) & (self.size - 1);
                for copy in [at, at + self.size] {
                    // SAFETY: inside the two copies of the data pages.
                    unsafe { self.data.add(copy).write(*b) };
                }
            }
        }

        /// Reserves a record of `len` bytes; None when the ring has no room.
        fn reserve(&mut self, len: usize) -> Option<u64> {
            let pos = self.producer.load(Ordering::Relaxed);
            let step = (len as u64 + RINGBUF_HDR).next_multiple_of(8);
            if pos + step - self.consumer.load(Ordering::Relaxed) > self.size as u64 {
                return None;
            }
            self.write(pos, &(len as u32 | RINGBUF_BUSY).to_le_bytes());
            self.producer.store(pos + step, Ordering::Release);
            Some(pos)
        }

        fn commit(&mut self, pos: u64, rec: &[u8], discard: bool) {
            self.write(pos + RINGBUF_HDR, rec);
            let flag = if discard { RINGBUF_DISCARD } else { 0 };
            self.write(pos, &(rec.len() as u32 | flag).to_le_bytes());
        }
    }

    /// The reader against the records a producer wrote, in order: random events in batches
    /// that wrap the ring many times, discarded records among them (skipped), a record still
    /// reserved when a drain runs (where that drain stops, the next resumes); the consumer
    /// position handed back to the kernel is past every record read.
    #[test]
    fn the_ring_reader_yields_every_committed_record_in_order() {
        let mut parts = SinkParts::new("/dev/null", 1 << 20);
        let mut sink = parts.sink();
        let mut ring = FakeRing::new(4096);
        let mut reader = ring.reader();
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.u64(..);
        // What the drains must have staged, and what is committed behind a reserved record.
        let (mut want, mut behind) = (Vec::new(), Vec::new());
        let mut pending = None;
        for _ in 0..200 {
            for _ in 0..next() % 30 {
                let mut rec = [0u8; EVENT_SIZE];
                rec.iter_mut().for_each(|b| *b = next() as u8);
                let discard = next() % 5 == 0;
                let Some(pos) = ring.reserve(EVENT_SIZE) else {
                    break;
                };
                if pending.is_none() && next() % 7 == 0 {
                    pending = Some((pos, rec, discard));
                    continue;
                }
                ring.commit(pos, &rec, discard);
                let into = if pending.is_some() {
                    &mut behind
                } else {
                    &mut want
                };
                if !discard {
                    into.extend_from_slice(&rec);
                }
            }
            let before = sink.staging.len;
            let n = sink
                .drain(&mut reader)
                .expect("records of the event's size");
            assert_eq!(n as usize, (sink.staging.len - before) / EVENT_SIZE);
            assert_eq!(sink.staging.buf[..sink.staging.len], want[..]);
            assert_eq!(ring.consumer.load(Ordering::Relaxed), reader.pos);
            if let Some((pos, rec, discard)) = pending.take() {
                assert_eq!(reader.pos, pos, "a drain stops at a reserved record");
                ring.commit(pos, &rec, discard);
                if !discard {
                    want.extend_from_slice(&rec);
                }
                want.append(&mut behind);
            }
        }
        sink.drain(&mut reader)
            .expect("records of the event's size");
        assert_eq!(sink.staging.buf[..sink.staging.len], want[..]);
        assert_eq!(reader.pos, ring.producer.load(Ordering::Relaxed));
        assert!(want.len() > 50 * 4096, "the ring wrapped many times");
    }

    /// A record of another size than the event's stops the drain with the layout's error.
    #[test]
    fn a_record_of_another_size_is_refused() {
        let mut parts = SinkParts::new("/dev/null", 1 << 20);
        let mut sink = parts.sink();
        let mut ring = FakeRing::new(4096);
        let mut reader = ring.reader();
        let pos = ring.reserve(64).expect("room");
        ring.commit(pos, &[0; 64], false);
        let err = sink.drain(&mut reader).expect_err("64 bytes are no event");
        assert!(err.to_string().contains("record of 64 bytes"), "{err}");
        // A header claiming more than the ring holds is refused before any byte is read.
        let mut ring = FakeRing::new(4096);
        let mut reader = ring.reader();
        let pos = ring.reserve(EVENT_SIZE).expect("room");
        ring.write(pos, &(1u32 << 20).to_le_bytes());
        let err = sink.drain(&mut reader).expect_err("longer than the ring");
        assert!(err.to_string().contains("longer than the ring"), "{err}");
    }

    /// The drops the kernel's skips explain, per probe: skipped entries (the footer's, or its
    /// exits without entry), then returns a kretprobe missed, never more than the drops; a
    /// probe whose drops the ring lost is left to the buffer's advice.
    #[test]
    fn kernel_skips_are_the_drops_the_kernel_skipped() {
        let map = |kv: &[(&str, u64)]| -> BTreeMap<String, u64> {
            kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let footer = Footer {
            drops: map(&[("__d_lookup_rcu", 5), ("___d_drop", 3), ("__d_lookup", 1)]),
            skipped_entries: map(&[("__d_lookup_rcu", 2)]),
            kprobe_missed_exits: map(&[("__d_lookup_rcu", 10), ("___d_drop", 1)]),
            exits_without_entry: map(&[("__d_lookup", 1)]),
            ..Footer::default()
        };
        let header = trace::Header::new(trace::Origin::Kernel);
        assert_eq!(
            kernel_skips(&footer, &header),
            map(&[("__d_lookup_rcu", 5), ("___d_drop", 1), ("__d_lookup", 1)])
        );
        let ring = Footer {
            drops: map(&[("___d_drop", 3)]),
            ..Footer::default()
        };
        assert!(kernel_skips(&ring, &header).is_empty());
    }

    /// Counters with these per-probe values (hits, drops, orphan exits; the recursion
    /// guard's entry skips; the kprobe links' missed entries and exits).
    struct Kernel<'a> {
        hits: &'a [(Probe, u64)],
        drops: &'a [(Probe, u64)],
        orphans: &'a [(Probe, u64)],
        recursion: &'a [(Probe, u64)],
        kprobe_entries: &'a [(Probe, u64)],
        kprobe_exits: &'a [(Probe, u64)],
    }

    const NONE: Kernel<'static> = Kernel {
        hits: &[],
        drops: &[],
        orphans: &[],
        recursion: &[],
        kprobe_entries: &[],
        kprobe_exits: &[],
    };

    /// The footer `fold_counts` makes of `k` with `delivered` events per probe, as its hits,
    /// drops and skipped entries of `p`.
    fn fold(k: &Kernel<'_>, delivered: &[(Probe, u64)], p: Probe) -> (Footer, [u64; 3]) {
        let m = |kv: &[(Probe, u64)]| kv.iter().copied().collect::<BTreeMap<Probe, u64>>();
        let counters = Counters {
            counts: Snapshot {
                hits: m(k.hits),
                drops: m(k.drops),
                orphan_exits: m(k.orphans),
                last_cpu_seq: BTreeMap::new(),
            },
            missed_entries: m(k.recursion),
            missed_exits: BTreeMap::new(),
            kprobe: KprobeMisses {
                entries: m(k.kprobe_entries),
                exits: m(k.kprobe_exits),
                unread: Vec::new(),
                unlisted: None,
            },
        };
        let delivered = delivered
            .iter()
            .map(|(p, n)| (p.symbol().to_string(), *n))
            .collect();
        let footer = fold_counts(counters, &delivered);
        let get = |m: &BTreeMap<String, u64>| m.get(p.symbol()).copied().unwrap_or(0);
        let counts = [
            get(&footer.hits),
            get(&footer.drops),
            get(&footer.skipped_entries),
        ];
        (footer, counts)
    }

    /// Exits without their entry alone: each a call the entry never counted, added to hits,
    /// drops and skipped entries, and kept as the footer's `exits_without_entry`.
    #[test]
    fn exits_without_entry_alone_are_skipped_entries() {
        let rcu = Probe::DLookupRcu;
        let k = Kernel {
            hits: &[(rcu, 10)],
            orphans: &[(rcu, 2)],
            ..NONE
        };
        let (footer, counts) = fold(&k, &[(rcu, 10)], rcu);
        assert_eq!(counts, [12, 2, 2]);
        assert_eq!(footer.exits_without_entry.get("__d_lookup_rcu"), Some(&2));
        assert!(footer.kprobe_missed_entries.is_empty());
    }

    /// The kernel's counts alone: the recursion guard's skips and the kprobe link's missed
    /// entries add up (two causes, two counters); a kretprobe's missed returns are hits
    /// without an event, drops through the hits no counter saw.
    #[test]
    fn the_kernels_counts_alone_add_up() {
        let rcu = Probe::DLookupRcu;
        let k = Kernel {
            hits: &[(rcu, 10)],
            recursion: &[(rcu, 1)],
            kprobe_entries: &[(rcu, 2)],
            kprobe_exits: &[(rcu, 4)],
            ..NONE
        };
        let (footer, counts) = fold(&k, &[(rcu, 6)], rcu);
        assert_eq!(counts, [13, 7, 3]);
        assert_eq!(footer.kprobe_missed_entries.get("__d_lookup_rcu"), Some(&2));
        assert_eq!(footer.kprobe_missed_exits.get("__d_lookup_rcu"), Some(&4));
        assert!(footer.exits_without_entry.is_empty());
    }

    /// Both: the exits without entry are among the kernel's counts when it counts, so the
    /// larger of the two, not their sum; exits beyond the kernel's count raise it.
    #[test]
    fn exits_without_entry_and_the_kernels_counts_take_the_larger() {
        let rcu = Probe::DLookupRcu;
        let k = Kernel {
            hits: &[(rcu, 10)],
            orphans: &[(rcu, 2)],
            recursion: &[(rcu, 1)],
            kprobe_entries: &[(rcu, 2)],
            ..NONE
        };
        assert_eq!(fold(&k, &[(rcu, 10)], rcu).1, [13, 3, 3]);
        let beyond = Kernel {
            orphans: &[(rcu, 5)],
            ..k
        };
        assert_eq!(fold(&beyond, &[(rcu, 10)], rcu).1, [15, 5, 5]);
    }

    /// `__d_move`'s programs record two events a call: a missed entry of its kprobe (read for
    /// both probes from the one link) loses both, each counted on its own probe.
    #[test]
    fn a_missed_d_move_entry_loses_its_two_events() {
        let (mv, target) = (Probe::DMove, Probe::DMoveTarget);
        let k = Kernel {
            hits: &[(mv, 5), (target, 5)],
            kprobe_entries: &[(mv, 1), (target, 1)],
            ..NONE
        };
        let delivered = [(mv, 5), (target, 5)];
        let (footer, counts) = fold(&k, &delivered, mv);
        assert_eq!(counts, [6, 1, 1]);
        assert_eq!(fold(&k, &delivered, target).1, [6, 1, 1]);
        assert_eq!(
            footer.skipped_entries,
            BTreeMap::from([
                ("__d_move".to_string(), 1),
                ("__d_move:target".to_string(), 1)
            ])
        );
    }

    /// The tracer's own lost slot: an entry whose claim failed counted its hit and a drop, and
    /// its exit found no slot. The fold takes the exit for a skipped entry besides: the one
    /// call is two hits, two drops and one skipped entry, one numbered hole (drops beyond the
    /// skipped entries), said twice and never hidden. A slot the LRU recycled after its entry
    /// counted no drop: the hit no counter saw is the second drop.
    #[test]
    fn a_lost_slot_counts_its_call_twice() {
        let rcu = Probe::DLookupRcu;
        let claim_failed = Kernel {
            hits: &[(rcu, 1)],
            drops: &[(rcu, 1)],
            orphans: &[(rcu, 1)],
            ..NONE
        };
        assert_eq!(fold(&claim_failed, &[], rcu).1, [2, 2, 1]);
        let recycled = Kernel {
            drops: &[],
            ..claim_failed
        };
        assert_eq!(fold(&recycled, &[], rcu).1, [2, 2, 1]);
    }

    /// 6.1's layout, and one a lock-debugging build gives (`d_lock` grown in front of `d_seq`
    /// and `d_hash`): the second is read field by field, never refused.
    #[test]
    fn a_layout_that_moves_the_head_is_read_field_by_field() {
        let usual = tracer_common::Offsets {
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
            ..tracer_common::Offsets::ZERO
        };
        assert!(kprobe_reads(&usual, false).0);
        assert!(!kprobe_reads(&usual, true).0);
        let debug = tracer_common::Offsets {
            d_seq: 72,
            d_hash_pprev: 88,
            ..usual
        };
        let (fast, why) = kprobe_reads(&debug, false);
        assert!(!fast);
        assert!(why.contains("dentry.d_seq` at 72"), "{why}");
    }

    /// rev16 F6: on 6.7 and later unread links are the tracer's failure, and the warning names
    /// its cause and the probes; before 6.7 the kernel reports nothing to read, and nothing is
    /// said.
    #[test]
    fn unread_kprobe_links_are_named_with_their_cause() {
        let misses = |unlisted: Option<&str>| KprobeMisses {
            unread: vec![Probe::DLookupRcu, Probe::DDrop],
            unlisted: unlisted.map(str::to_string),
            ..KprobeMisses::default()
        };
        let counted = attach::KprobeSkips::Counted;
        let listing = misses(Some("listing /proc/self/fd: Permission denied"))
            .unread_warning(counted)
            .expect("a warning");
        assert!(listing.contains("__d_lookup_rcu, __d_drop"), "{listing}");
        assert!(listing.contains("Permission denied"), "{listing}");
        assert!(listing.contains("--attach fentry"), "{listing}");
        let unanswered = misses(None).unread_warning(counted).expect("a warning");
        assert!(
            unanswered.contains("BPF_OBJ_GET_INFO_BY_FD"),
            "{unanswered}"
        );
        assert_eq!(
            misses(None).unread_warning(attach::KprobeSkips::Uncounted),
            None
        );
        assert_eq!(KprobeMisses::default().unread_warning(counted), None);
    }
}
