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
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aya::maps::{PerCpuArray, RingBuf};
use serde::Serialize;
use tracer_common::{Config, Event, Probe, EVENT_SIZE, MAX_DEVS};

use crate::{
    attach::{self, AttachMode, Attached, ProbeableSymbols},
    btf::KernelBtf,
    programs::{self, Half},
};
use tracer_analysis::trace::{
    self, Anonymizer, End, Footer, Header, OffsetsJson, Origin, Reader, ThreadInfo, Writer,
};

/// How to record.
pub struct RecordOptions {
    pub btf: PathBuf,
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
}

/// What a recording produced, also written as `--summary` JSON.
#[derive(Debug, Default, Serialize)]
pub struct RecordSummary {
    pub trace: PathBuf,
    pub kernel_release: String,
    /// Per target symbol: "fentry", "kprobe" or "unavailable: why".
    pub attach: BTreeMap<String, String>,
    /// Events in the trace per probe symbol ("workload" for operations).
    pub events: BTreeMap<String, u64>,
    pub hits: BTreeMap<String, u64>,
    pub drops: BTreeMap<String, u64>,
    pub lost: u64,
    pub ops: u64,
    /// The recording, from attach to the last event drained.
    pub seconds: f64,
    /// The workload alone, from its threads' start to the last one's end: what tracing slows.
    pub workload_seconds: f64,
    pub kernel_events_per_second: f64,
    pub end: String,
    pub complete: bool,
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
pub fn record<F>(
    opts: &RecordOptions,
    workload: &WorkloadInfo,
    devs: &[u32],
    stop: &AtomicBool,
    run_workload: F,
) -> Result<RecordSummary>
where
    F: FnOnce(&AtomicBool) -> Result<WorkloadRun> + Send,
{
    if devs.len() > MAX_DEVS {
        bail!(
            "at most {MAX_DEVS} file systems can be traced at once, got {}",
            devs.len()
        );
    }
    let kbtf = KernelBtf::from_file(&opts.btf).with_context(|| {
        format!(
            "this kernel publishes no usable BTF at {}; the probes need it for struct offsets",
            opts.btf.display()
        )
    })?;
    let offsets = kbtf
        .offsets()
        .context("resolving struct offsets from BTF")?;
    let mut config = Config::ZERO;
    config.offsets = offsets;
    let reads = match offsets.check_windows() {
        Ok(()) if !opts.per_field_reads => "one copy per dentry head and qstr".to_string(),
        Ok(()) => "one per field (--per-field-reads)".to_string(),
        Err((field, off)) => {
            format!("one per field (`{field}` at {off} lies outside the one-copy window)")
        }
    };
    config.fast_reads = u32::from(offsets.check_windows().is_ok() && !opts.per_field_reads);
    config.devs[..devs.len()].copy_from_slice(devs);
    config.wakeup_bytes = opts.wakeup_bytes;
    config.cpus = aya::util::nr_cpus()
        .map_err(|(path, e)| anyhow::anyhow!("reading {path}: {e}"))?
        .try_into()
        .context("more CPUs than a u32 counts")?;

    let btf = aya::Btf::parse_file(&opts.btf, aya::Endianness::default())
        .with_context(|| format!("parsing {}", opts.btf.display()))?;
    let mut ebpf =
        programs::open(&config, opts.ring_bytes).context("parsing the embedded eBPF object")?;
    let syms = ProbeableSymbols::read();
    let attached = attach::attach_all(&mut ebpf, opts.attach, &kbtf, &btf, &syms);
    if let Some(Attached::No(why)) = attached.get(&Probe::DLookupRcu) {
        bail!(
            "cannot attach to __d_lookup_rcu ({why}); without it there is nothing to record. \
             On a kernel without kprobes or tracing programs use the VM: cargo xtask vm"
        );
    }

    let mut header = Header::new(Origin::Kernel);
    header.kernel_release = attach::kernel_release();
    header.attach = attached
        .iter()
        .map(|(p, a)| (p.symbol().to_string(), a.describe()))
        .collect();
    header.observed_through = attach::observed_through(&attached);
    header.offsets = Some(OffsetsJson::from(&offsets));
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
    header.notes.insert("kprobe_reads".into(), reads);

    let spill_path = spill_path(&opts.out);
    let mut spill = Writer::create(&spill_path, &header)?;
    let mut ring = RingBuf::try_from(
        ebpf.take_map("EVENTS")
            .context("the eBPF object has no EVENTS map")?,
    )?;

    let mut staging = Staging::new(opts.ring_bytes as usize);
    let t0 = Instant::now();
    let finished = AtomicBool::new(false);
    let mut anon = Anonymizer::default();
    let (ops, drained) = std::thread::scope(|s| -> Result<(Result<WorkloadRun>, Result<u64>)> {
        let worker = s.spawn(|| {
            let r = run_workload(stop);
            finished.store(true, Ordering::Release);
            r
        });
        let mut sink = Sink {
            staging: &mut staging,
            spill: &mut spill,
            anon: &mut anon,
            raw_pointers: opts.raw_pointers,
        };
        let drained = drain_until(&mut ring, &finished, &mut sink, opts.progress, t0);
        let ops = worker
            .join()
            .map_err(|_| anyhow::anyhow!("the workload thread panicked"))?;
        Ok((ops, drained))
    })?;
    let seconds = t0.elapsed().as_secs_f64();
    // Detach before anything else: the workload's unmount must not be recorded.
    let hits = read_counters(&mut ebpf, "HITS")?;
    let drops = read_counters(&mut ebpf, "DROPS")?;
    let last_cpu_seq = read_last_seq(&mut ebpf)?;
    let missed_entries = recursion_misses(&ebpf, &attached, Half::Entry);
    let missed_exits = recursion_misses(&ebpf, &attached, Half::Exit);
    drop(ring);
    drop(ebpf);

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
    let mut footer = Footer {
        end: end.clone(),
        threads: run.threads,
        last_cpu_seq,
        ..Footer::default()
    };
    let delivered = count_per_probe(&spill_path)?;
    for p in Probe::KERNEL {
        let sym = p.symbol().to_string();
        let h = hits.get(&p).copied().unwrap_or(0);
        let d = drops.get(&p).copied().unwrap_or(0);
        let got = delivered.get(&sym).copied().unwrap_or(0);
        // Calls whose entry program the kernel skipped: never counted as hits, lost all the
        // same. (A skipped exit leaves a hit without an event, counted below.)
        let missed = missed_entries.get(&p).copied().unwrap_or(0);
        let (h, d) = (h + missed, d + missed);
        // Entries without an event that no drop counter saw (a kretprobe missed for lack of
        // instances, or a call still in flight at detach) are lost all the same.
        let unaccounted = h.saturating_sub(d + got);
        footer.hits.insert(sym.clone(), h);
        footer.drops.insert(sym, d + unaccounted);
    }
    for (what, m) in [
        ("recursion_misses_entry", &missed_entries),
        ("recursion_misses_exit", &missed_exits),
    ] {
        let text: Vec<String> = m
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| format!("{} {n}", p.symbol()))
            .collect();
        if !text.is_empty() {
            header.notes.insert(what.into(), text.join(", "));
        }
    }
    let footer = merge(&spill_path, &opts.out, &header, run.ops, footer)?;
    std::fs::remove_file(&spill_path)
        .with_context(|| format!("removing {}", spill_path.display()))?;

    let lost = footer.lost();
    let summary = RecordSummary {
        trace: opts.out.clone(),
        kernel_release: header.kernel_release.clone(),
        attach: header.attach.clone(),
        events: footer.per_probe.clone(),
        hits: footer.hits.clone(),
        drops: footer.drops.clone(),
        lost,
        ops: footer
            .per_probe
            .get(Probe::Op.symbol())
            .copied()
            .unwrap_or(0),
        seconds,
        workload_seconds,
        kernel_events_per_second: kernel_events as f64 / seconds.max(1e-9),
        end: end.to_string(),
        complete: footer.complete(),
    };
    if let Err(e) = drained {
        return Err(e.context(format!(
            "draining the ring buffer failed; the events before it are in {}",
            opts.out.display()
        )));
    }
    Ok(summary)
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
    /// Converts and writes every staged event, and empties the staging buffer.
    fn flush(&mut self) -> Result<()> {
        for rec in self.staging.buf[..self.staging.len].chunks_exact(EVENT_SIZE) {
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
        self.staging.len = 0;
        Ok(())
    }

    /// Moves every record now in the ring to the staging buffer; returns how many.
    fn drain(&mut self, ring: &mut RingBuf<aya::maps::MapData>) -> Result<u64> {
        let mut n = 0;
        while let Some(item) = ring.next() {
            let bytes: &[u8] = &item;
            let Ok(arr) = <&[u8; EVENT_SIZE]>::try_from(bytes) else {
                bail!(
                    "ring buffer record of {} bytes, expected {EVENT_SIZE}: the eBPF object and \
                     this tracer disagree on the event layout",
                    bytes.len()
                );
            };
            if self.staging.is_full() {
                self.flush()?;
            }
            self.staging.push(arr);
            n += 1;
        }
        Ok(n)
    }
}

/// Drains the ring until the workload has finished and the ring is empty, then converts what
/// is staged (also after a failure, so the spill keeps what was drained).
fn drain_until(
    ring: &mut RingBuf<aya::maps::MapData>,
    finished: &AtomicBool,
    sink: &mut Sink<'_>,
    progress: bool,
    t0: Instant,
) -> Result<u64> {
    let fd = ring.as_raw_fd();
    let mut n = 0u64;
    let mut last_report = Instant::now();
    let mut last_n = 0u64;
    let drained = loop {
        let done = finished.load(Ordering::Acquire);
        // Producers submit without a wakeup below the threshold, so poll on a short timeout.
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 10) };
        let batch = match sink.drain(ring) {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        n += batch;
        if progress && last_report.elapsed() >= Duration::from_secs(1) {
            let rate = (n - last_n) as f64 / last_report.elapsed().as_secs_f64();
            eprint!(
                "\rrecording: {n} events, {rate:.0} events/s, {:.0}s   ",
                t0.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
            last_n = n;
        }
        if done && batch == 0 {
            // Let exits of calls that were in flight at the workload's end land, then stop.
            std::thread::sleep(Duration::from_millis(20));
            match sink.drain(ring) {
                Ok(0) => break Ok(n),
                Ok(late) => n += late,
                Err(e) => break Err(e),
            }
        }
    };
    if progress {
        eprintln!();
    }
    let flushed = sink.flush();
    let n = drained?;
    flushed?;
    Ok(n)
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

/// Sums a per-CPU counter array per probe.
fn read_counters(ebpf: &mut aya::Ebpf, name: &str) -> Result<BTreeMap<Probe, u64>> {
    let map = ebpf
        .map(name)
        .with_context(|| format!("the eBPF object has no {name} map"))?;
    let arr: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    let mut out = BTreeMap::new();
    for p in Probe::KERNEL {
        let vals = arr.get(&p.counter_index(), 0)?;
        out.insert(p, vals.iter().sum());
    }
    Ok(out)
}

/// The last `cpu_seq` stamped per CPU (CPUs that stamped none left out).
fn read_last_seq(ebpf: &mut aya::Ebpf) -> Result<BTreeMap<u32, u64>> {
    let map = ebpf.map("SEQ").context("the eBPF object has no SEQ map")?;
    let arr: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
    // One value per possible CPU, in CPU id order.
    let vals = arr.get(&0, 0)?;
    Ok((0u32..)
        .zip(vals.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(cpu, n)| (cpu, *n))
        .collect())
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
