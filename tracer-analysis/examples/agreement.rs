//! Event agreement of a kernel trace and the model's replay against it, per operation kind:
//! `cargo run -p tracer-analysis --example agreement -- kernel.trace model.trace` (`tracer diff`
//! reports the same figures; this prints the first differing operations too).
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tracer_analysis::{agreement::agreement, trace::Reader};

fn main() -> Result<()> {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [kernel, model] = paths.as_slice() else {
        bail!("usage: agreement KERNEL.trace MODEL.trace (the model replayed --against the kernel trace)");
    };
    let read = |p: &PathBuf| {
        Reader::open(p)
            .and_then(Reader::read_all)
            .with_context(|| format!("reading {}", p.display()))
    };
    let (kh, kernel, _) = read(kernel)?;
    let (mh, model, _) = read(model)?;
    let a = agreement(&kernel, &model, 5);
    println!(
        "{} on {} against {}",
        kh.workload.as_deref().unwrap_or("?"),
        kh.kernel_release,
        mh.profile.as_deref().unwrap_or("?"),
    );
    print!("{a}");
    for (kind, s) in &a.per_op {
        println!(
            "  {:<12} {}/{} ({:.1} %)",
            kind.name(),
            s.agree,
            s.ops,
            100.0 * s.ratio()
        );
    }
    let probes: Vec<&str> = a.probes.iter().map(|p| p.symbol()).collect();
    println!("  probes compared: {}", probes.join(", "));
    Ok(())
}
