//! The floor configurations: every target the recorder would trace, attached in one family
//! with programs that return at once, while the untraced workload runs. What is left of the
//! slowdown is the attachment's own (trampoline or kprobe, entering an empty program); a
//! recording's ratio over its floor's is what the real programs and the consumer add.
use aya::Ebpf;
use tracer_common::Config;

use crate::{
    attach::{self, AttachMode, Attached, ProbeableSymbols},
    btf::{KernelBtf, SYS_BTF},
    programs::{self, Body},
};

use super::{process::run_untraced_as, *};

/// The ring buffer of the object the floor loads: the empty programs never write to it.
const FLOOR_RING_BYTES: u32 = 1 << 16;

/// The floor programs of one family on every target (detached when the links are dropped), and
/// how each target was attached.
fn attach_floor(mode: AttachMode) -> Result<(Ebpf, attach::Links, BTreeMap<String, Attachment>)> {
    let path = Path::new(SYS_BTF);
    let (kbtf, btf) = KernelBtf::parse_both(path)
        .context("the floor programs attach by the kernel's BTF, as the recorder's do")?;
    let mut ebpf = programs::open_with(&Config::ZERO, FLOOR_RING_BYTES, &btf, path)
        .context("parsing the embedded eBPF object")?;
    let (attached, links) = attach::attach_all(
        &mut ebpf,
        Body::Floor,
        mode,
        attach::Preemption::of_running_kernel()
            .auto_order(attach::KprobeSkips::of_release(&crate::kernel::release())),
        &kbtf,
        &btf,
        &ProbeableSymbols::read(),
    );
    if let Some(why) = attached
        .get(&tracer_common::Probe::DLookupRcu)
        .and_then(Attached::why_not)
    {
        bail!("the floor programs cannot attach to __d_lookup_rcu: {why}");
    }
    let described = attached
        .iter()
        .map(|(p, a)| (p.symbol().to_string(), a.describe()))
        .collect();
    Ok((ebpf, links, described))
}

/// One run of the untraced workload with the floor of `setup`'s family attached.
pub(super) fn run_floor(
    ctx: &Ctx<'_>,
    round: u32,
    setup: &Setup,
) -> Result<(Run, BTreeMap<String, Attachment>)> {
    let mode = match setup.kind {
        Kind::FentryFloor => AttachMode::Fentry,
        Kind::KprobeFloor => AttachMode::Kprobe,
        other => bail!("{} is not a floor configuration", other.name()),
    };
    let (ebpf, links, attached) = attach_floor(mode)?;
    let run = run_untraced_as(ctx, round, setup);
    drop(links);
    drop(ebpf);
    Ok((run?, attached))
}
