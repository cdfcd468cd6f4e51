//! bpftrace's output: one line per call, its `count()` maps and its own loss reports.
use super::*;

#[derive(Default)]
pub(super) struct BpftraceOutput {
    pub(super) lines: BTreeMap<String, u64>,
    pub(super) hits: BTreeMap<String, u64>,
    pub(super) reported_lost: u64,
    pub(super) sample: Vec<String>,
}

/// Event lines per probe symbol (their first word), the `@hits_<symbol>: N` counters printed at
/// exit, and bpftrace's "Lost N events" reports.
pub(super) fn parse_bpftrace(path: &Path) -> Result<BpftraceOutput> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = BpftraceOutput::default();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let text = String::from_utf8_lossy(&line);
        let first = text.split(' ').next().unwrap_or("");
        if Probe::KERNEL.iter().any(|p| p.symbol() == first) {
            *out.lines.entry(first.to_string()).or_insert(0) += 1;
            if out.sample.len() < 5 {
                out.sample.push(text.into_owned());
            }
        } else if let Some((sym, n)) = text.strip_prefix("@hits_").and_then(|r| r.split_once(": "))
        {
            let n = n
                .trim()
                .parse()
                .with_context(|| format!("bpftrace printed {text:?}"))?;
            out.hits.insert(sym.to_string(), n);
        } else if let Some(n) = text
            .strip_prefix("Lost ")
            .and_then(|r| r.strip_suffix(" events"))
        {
            out.reported_lost += n.trim().parse::<u64>().unwrap_or(0);
        }
    }
    if out.hits.is_empty() {
        bail!(
            "bpftrace printed no @hits_* counters at exit; the loss cannot be counted (output \
             in {})",
            path.display()
        );
    }
    Ok(out)
}
