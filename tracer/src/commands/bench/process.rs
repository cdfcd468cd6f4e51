//! Running one configuration of the benchmark as child processes: the untraced workload,
//! `tracer record`, and bpftrace beside `tracer run-workload --hold`; reading back what each
//! delivered.
use super::{parse::parse_bpftrace, *};

/// Waits for a command; its stderr (captured) explains a failure.
pub(super) fn output_of(c: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

pub(super) fn run_untraced(ctx: &Ctx<'_>, round: u32) -> Result<Run> {
    run_untraced_as(ctx, round, &Setup::UNTRACED)
}

/// `tracer run-workload`, its run recorded as `setup`'s (untraced, or a floor's).
pub(super) fn run_untraced_as(ctx: &Ctx<'_>, round: u32, setup: &Setup) -> Result<Run> {
    let stdout = output_of(&mut ctx.run_workload_cmd(), "tracer run-workload")?;
    let r: RunWorkloadReport =
        serde_json::from_slice(&stdout).context("reading tracer run-workload's report")?;
    ctx.check_work(setup, r.ops, r.failed_ops)?;
    Ok(Run {
        round,
        threads: ctx.threads,
        setup: setup.clone(),
        workload_seconds: r.elapsed_seconds,
        ratio: None,
        median_op_ns: r.median_op_ns,
        ops: r.ops,
        failed_ops: r.failed_ops,
        hits: BTreeMap::new(),
        delivered: BTreeMap::new(),
        tool_reported_lost: 0,
        consumer_cpu_seconds: None,
        consumer_wakeups: None,
        programs: BTreeMap::new(),
    })
}

/// `tracer record` as a user runs it; the delivered events are counted from the trace itself.
pub(super) fn run_record(
    ctx: &Ctx<'_>,
    round: u32,
    setup: &Setup,
) -> Result<(Run, BTreeMap<String, Attachment>)> {
    let trace = ctx.work.join("run.trace");
    let summary_path = ctx.work.join("run.json");
    let exe = match &setup.variant {
        Some(v) => ctx
            .variants
            .iter()
            .find(|(name, _)| name == v)
            .map(|(_, path)| path.as_path())
            .with_context(|| format!("no variant {v}"))?,
        None => ctx.exe,
    };
    output_of(
        Command::new(exe)
            .arg("record")
            .arg("--workload")
            .arg(ctx.toml)
            .args(["--attach", setup.kind.name(), "--quiet", "--out"])
            .arg(&trace)
            .arg("--summary")
            .arg(&summary_path)
            .args(ctx.record_args),
        "tracer record",
    )?;
    let text =
        fs::read(&summary_path).with_context(|| format!("reading {}", summary_path.display()))?;
    let s: RecordSummaryIn =
        serde_json::from_slice(&text).context("reading tracer record's summary")?;
    if s.end != End::Finished {
        bail!("{}: the recording ended with {}", setup.name(), s.end);
    }
    let counted = count_trace(&s.trace)?;
    let _ = fs::remove_file(&s.trace);
    let _ = fs::remove_file(&summary_path);
    ctx.check_work(setup, counted.ops, counted.failed)?;
    let run = Run {
        round,
        threads: ctx.threads,
        setup: setup.clone(),
        workload_seconds: s.workload_seconds,
        ratio: None,
        median_op_ns: counted.median_op_ns,
        ops: counted.ops,
        failed_ops: counted.failed,
        // A probe that is not attached has no counter worth showing.
        hits: s.hits.into_iter().filter(|(_, h)| *h > 0).collect(),
        delivered: counted.per_probe,
        tool_reported_lost: s.lost,
        consumer_cpu_seconds: s.consumer_cpu_seconds,
        consumer_wakeups: s.consumer_wakeups,
        programs: s.programs,
    };
    Ok((run, s.attach))
}

/// What a trace holds, counted by the bench itself.
pub(super) struct Counted {
    /// Kernel events per probe symbol.
    pub(super) per_probe: BTreeMap<String, u64>,
    pub(super) ops: u64,
    pub(super) failed: u64,
    pub(super) median_op_ns: u64,
}

pub(super) fn count_trace(path: &Path) -> Result<Counted> {
    let mut r = Reader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut per_probe = BTreeMap::new();
    let (mut failed, mut durations) = (0, Vec::new());
    while let Some(ev) = r.next_event()? {
        match ev.probe() {
            Some(Probe::Op) => {
                failed += u64::from(ev.result != 0);
                durations.push(ev.ts_end.saturating_sub(ev.ts_begin));
            }
            Some(p) => *per_probe.entry(p.symbol().to_string()).or_insert(0) += 1,
            None => {}
        }
    }
    Ok(Counted {
        per_probe,
        ops: durations.len() as u64,
        failed,
        median_op_ns: median_duration(durations.into_iter()),
    })
}

pub(super) fn bpftrace_version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {} --version; install bpftrace, give its path with --bpftrace, or leave \
             it out with --setups untraced,fentry,kprobe",
                bin.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "{} --version failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A child killed and reaped if still running when dropped (an error path).
pub(super) struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The workload held at the start line; bpftrace started on its device, given time to compile
/// and attach (its BEGIN line), then the workload released; bpftrace stopped with SIGINT as a
/// user would, which prints its counters.
pub(super) fn run_bpftrace(ctx: &Ctx<'_>, round: u32) -> Result<(Run, Vec<String>)> {
    let mut wl = Reaped(
        ctx.run_workload_cmd()
            .arg("--hold")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tracer run-workload --hold")?,
    );
    let mut wl_out = BufReader::new(
        wl.0.stdout
            .take()
            .context("tracer run-workload has no stdout pipe")?,
    );
    let mut line = String::new();
    wl_out
        .read_line(&mut line)
        .context("reading tracer run-workload's device line")?;
    let hold: HoldLine = serde_json::from_str(line.trim()).with_context(|| {
        format!("tracer run-workload --hold printed {line:?}, not its device line")
    })?;

    let out_path = ctx.work.join("bpftrace.out");
    let err_path = ctx.work.join("bpftrace.err");
    let create =
        |p: &Path| fs::File::create(p).with_context(|| format!("creating {}", p.display()));
    let mut bt = Reaped(
        Command::new(ctx.bpftrace)
            .arg(ctx.script)
            .arg(hold.dev.to_string())
            .stdin(Stdio::null())
            .stdout(create(&out_path)?)
            .stderr(create(&err_path)?)
            .spawn()
            .with_context(|| format!("starting {}", ctx.bpftrace.display()))?,
    );
    let bt_failed = |what: &str| {
        let err = fs::read_to_string(&err_path).unwrap_or_default();
        anyhow::anyhow!("bpftrace {what}: {}", err.trim())
    };
    let t0 = Instant::now();
    loop {
        if fs::read_to_string(&out_path)
            .map(|s| s.lines().any(|l| l == "ready"))
            .unwrap_or(false)
        {
            break;
        }
        if let Some(status) = bt.0.try_wait()? {
            return Err(bt_failed(&format!("exited before attaching ({status})")));
        }
        if t0.elapsed() > BPFTRACE_READY_TIMEOUT {
            return Err(bt_failed("did not attach in time"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    {
        let mut stdin =
            wl.0.stdin
                .take()
                .context("tracer run-workload has no stdin")?;
        stdin
            .write_all(b"go\n")
            .context("starting the held workload")?;
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut wl_out, &mut rest)
        .context("reading tracer run-workload's report")?;
    let status = wl.0.wait()?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = wl.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        bail!("tracer run-workload failed ({status}): {}", err.trim());
    }
    let r: RunWorkloadReport =
        serde_json::from_str(rest.trim()).context("reading tracer run-workload's report")?;
    ctx.check_work(&Setup::of(Kind::Bpftrace), r.ops, r.failed_ops)?;

    // Give bpftrace the time a patient user would: stop it only once its output has not grown
    // for a while, so what it still had buffered is not counted as lost.
    let settle = Instant::now();
    let mut last = (0, Instant::now());
    while last.1.elapsed() < BPFTRACE_SETTLE && settle.elapsed() < BPFTRACE_EXIT_TIMEOUT {
        let len = fs::metadata(&out_path).map_or(0, |m| m.len());
        if len != last.0 {
            last = (len, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // SAFETY: kill(2) on our own child, which has not been reaped (it is still running).
    if unsafe { libc::kill(bt.0.id() as libc::pid_t, libc::SIGINT) } != 0 {
        bail!("stopping bpftrace: {}", std::io::Error::last_os_error());
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = bt.0.try_wait()? {
            break s;
        }
        if t0.elapsed() > BPFTRACE_EXIT_TIMEOUT {
            return Err(bt_failed("did not exit after SIGINT"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        return Err(bt_failed(&format!("failed ({status})")));
    }
    let parsed = parse_bpftrace(&out_path)?;
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    let run = Run {
        round,
        threads: ctx.threads,
        setup: Setup::of(Kind::Bpftrace),
        workload_seconds: r.elapsed_seconds,
        ratio: None,
        median_op_ns: r.median_op_ns,
        ops: r.ops,
        failed_ops: r.failed_ops,
        hits: parsed.hits,
        delivered: parsed.lines,
        tool_reported_lost: parsed.reported_lost,
        consumer_cpu_seconds: None,
        consumer_wakeups: None,
        programs: BTreeMap::new(),
    };
    Ok((run, parsed.sample))
}
