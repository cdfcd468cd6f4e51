//! Adversarial cases for the diff's verdict (session 7's review, docs/notes/session-7/advrev-findings.md):
//! trace pairs built to get `clean` where the traces show an anomaly or cannot show there is
//! none, or to make the report say what did not happen, each asserting what the rules promise
//! (mod.rs's module documentation, ARCHITECTURE.md's diff section). The `held_` ones record
//! attacks the rules withstood.
use std::path::{Path, PathBuf};

use tracer_analysis::{
    diff::{diff_files, DiffOptions, ReasonKind, Report, Verdict},
    trace::{Footer, Header, Reader, Writer},
};
use tracer_common::{Event, OpKind, Probe};

mod support;
use support::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// One trace, taken apart.
#[derive(Clone)]
struct Parts {
    header: Header,
    events: Vec<Event>,
    footer: Footer,
}

fn load(name: &str) -> Parts {
    let path = Path::new(FIXTURES).join(name);
    let (header, events, footer) = Reader::open(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .read_all()
        .unwrap_or_else(|e| panic!("{e}"));
    Parts {
        header,
        events,
        footer,
    }
}

fn save(p: &Parts, path: &Path) {
    let mut w = Writer::create(path, &p.header).expect("create");
    for e in &p.events {
        w.push(e).expect("push");
    }
    w.finish(p.footer.clone()).expect("finish");
}

fn diff_parts(k: &Parts, m: &Parts) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp): (PathBuf, PathBuf) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    save(k, &kp);
    save(m, &mp);
    diff_files(&kp, &mp, &DiffOptions::default()).expect("diff")
}

fn run(kernel: &Trace, model: &Trace) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let (k, m) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    kernel.write(&k, Origin::Kernel, finished());
    model.write(&m, Origin::Model, finished());
    diff_files(&k, &m, &DiffOptions::default()).expect("diff")
}

/// The verdict, the anomalies by kind and the reasons, for a failure message.
fn outcome(r: &Report) -> String {
    let kinds: Vec<(&str, &str)> = r
        .anomalies
        .iter()
        .map(|a| (a.side.name(), a.kind.name()))
        .collect();
    let reasons: Vec<String> = r.reasons.iter().map(|x| x.to_string()).collect();
    format!(
        "{} (exit {}), anomalies {kinds:?}, reasons {reasons:?}, null-inode classes kernel {:?}, \
         enoent classes kernel {:?}",
        r.verdict.name(),
        r.exit_status,
        r.null_inode_returns.kernel.by_class,
        r.enoent_results.kernel.by_class
    )
}

fn is(e: &Event, p: Probe) -> bool {
    e.probe == p as u8
}

/// Stamps at the ends of the range (0, `u64::MAX`, an event ending before it begins, a
/// writer and a lookup at the same instant) must not panic the diff (tests build with
/// overflow checks).
#[test]
fn extreme_stamps_do_not_panic() {
    let mut k = Trace::default();
    k.op(OpKind::Create, "f1", 0, 0, 10, 0);
    k.op(OpKind::Stat, "f1", 0, u64::MAX, 11, -2);
    k.lookup(ROOT, 2, "f1", (u64::MAX, u64::MAX), 11, 0, (2, 2), H | V);
    k.lookup(
        ROOT,
        2,
        "f1",
        (u64::MAX - 1, 1),
        11,
        0,
        (u32::MAX, u32::MAX),
        H | V,
    );
    k.writer(
        Probe::DDropInner,
        2,
        "f1",
        (u64::MAX, u64::MAX),
        12,
        (7, 7),
        (u32::MAX, u32::MAX),
        H,
    );
    k.writer(
        Probe::DentryUnlinkInode,
        2,
        "f1",
        (u64::MAX, 0),
        12,
        (7, 0),
        (u32::MAX, 1),
        H,
    );
    k.op(OpKind::Unlink, "f1", u64::MAX, 0, 12, 0);
    let opts = DiffOptions {
        window_ns: u64::MAX,
        ..DiffOptions::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (kp, mp) = (dir.path().join("k.trace"), dir.path().join("m.trace"));
    k.write(&kp, Origin::Kernel, finished());
    k.write(&mp, Origin::Model, finished());
    for o in [opts, DiffOptions::default()] {
        let r = diff_files(&kp, &mp, &o).expect("diff");
        assert_eq!(r.kernel.events_read, k.events.len() as u64);
    }
}

/// The first numbered event of a CPU cut out, the footer's hits lowered to match: the
/// numbering starts at 2, a hole.
#[test]
fn held_the_first_event_of_a_cpu_cut_is_a_hole() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    let i = (0..k.events.len())
        .find(|i| !is(&k.events[*i], Probe::Op) && k.events[*i].cpu_seq == 1)
        .expect("a first event");
    let e = k.events.remove(i);
    if let Some(h) = e.probe().and_then(|p| k.footer.hits.get_mut(p.symbol())) {
        *h -= 1;
    }
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(r.reasons.iter().any(|x| x.kind == ReasonKind::SequenceHole));
}

/// A footer claiming fewer calls of a probe than the file holds events of it.
#[test]
fn held_a_footer_counting_fewer_hits_than_events() {
    let mut k = load("prune-stat.kernel.trace");
    let m = load("prune-stat.model.trace");
    if let Some(h) = k.footer.hits.get_mut(Probe::DDropInner.symbol()) {
        *h -= 3;
    }
    let r = diff_parts(&k, &m);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", outcome(&r));
    assert!(r.reasons.iter().any(|x| x.kind == ReasonKind::HitsMismatch));
}

/// Writers touching the lookup's interval at one nanosecond, at either end, overlap it.
#[test]
fn held_a_writer_touching_the_lookup_at_one_ns_overlaps_it() {
    for (b, e) in [(900, 1_010), (1_020, 1_100)] {
        let mut k = Trace::default();
        created(&mut k, "f1");
        k.op(OpKind::Unlink, "f1", b, e, 10, 0);
        k.op(OpKind::Stat, "f1", 1_005, 1_030, 12, -2);
        k.lookup(ROOT, 2, "f1", (1_010, 1_020), 12, 0, (2, 2), H | V);
        let r = run(&k, &k.clone());
        assert!(r.anomalies.is_empty(), "{}", outcome(&r));
        assert_eq!(r.null_inode_returns.kernel.by_class["overlaps-writer"], 1);
    }
}
