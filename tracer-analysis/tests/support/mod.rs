//! A builder for small hand-made traces, shared by the diff tests here and the `tracer diff`
//! command-line tests of the tracer crate.
#![allow(dead_code)]
use std::{collections::BTreeMap, path::Path};

use tracer_analysis::diff::{ReasonKind, Report};
use tracer_analysis::trace::{Attachment, Footer, Header, Reader, Writer};
pub use tracer_analysis::trace::{End, Origin};
use tracer_common::{flags, Event, OpKind, Probe, Source};

/// The recorded fixtures (tests/fixtures/README.md), from either crate's tests.
pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tracer-analysis/tests/fixtures"
);

/// One trace, taken apart.
#[derive(Clone)]
pub struct Parts {
    pub header: Header,
    pub events: Vec<Event>,
    pub footer: Footer,
}

/// A fixture by file name, taken apart.
pub fn load(name: &str) -> Parts {
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

/// Indexes of validated `__d_lookup_rcu` returns of a positive file dentry (`d0/f*`, not the
/// directory), in file order.
pub fn positive_lookups(p: &Parts) -> Vec<usize> {
    (0..p.events.len())
        .filter(|i| {
            let e = &p.events[*i];
            e.probe == Probe::DLookupRcu as u8
                && e.dentry != 0
                && e.inode_begin != 0
                && e.has(flags::VALIDATED)
                && e.name_bytes().starts_with(b"f")
        })
        .collect()
}

/// Writes a trace taken apart back whole.
pub fn save(p: &Parts, path: &Path) {
    let mut w = Writer::create(path, &p.header).expect("create");
    for e in &p.events {
        w.push(e).expect("push");
    }
    w.finish(p.footer.clone()).expect("finish");
}

pub const ROOT: u64 = 1;
pub const H: u16 = flags::HASHED_BEGIN | flags::HASHED_END;
pub const V: u16 = flags::VALIDATED;

/// Builds the events of one trace.
#[derive(Default, Clone)]
pub struct Trace {
    pub events: Vec<Event>,
}

impl Trace {
    pub fn op(
        &mut self,
        kind: OpKind,
        path: &str,
        b: u64,
        e: u64,
        tid: u32,
        result: i32,
    ) -> &mut Self {
        let mut ev = Event::zeroed();
        ev.probe = Probe::Op as u8;
        ev.source = Source::Workload as u8;
        ev.aux = kind as u32;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev.tid = tid;
        ev.result = result;
        ev.set_name(path.as_bytes());
        self.events.push(ev);
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn lookup(
        &mut self,
        parent: u64,
        dentry: u64,
        name: &str,
        (b, e): (u64, u64),
        tid: u32,
        inode: u64,
        (seq_begin, seq_end): (u32, u32),
        fl: u16,
    ) -> &mut Self {
        let mut ev = Event::zeroed();
        ev.probe = Probe::DLookupRcu as u8;
        ev.source = Source::FEntry as u8;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev.tid = tid;
        ev.parent = parent;
        ev.dentry = dentry;
        ev.inode_begin = inode;
        ev.inode_end = inode;
        ev.seq_begin = seq_begin;
        ev.seq_end = seq_end;
        ev.flags = fl;
        ev.set_name(name.as_bytes());
        self.events.push(ev);
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn writer(
        &mut self,
        probe: Probe,
        dentry: u64,
        name: &str,
        (b, e): (u64, u64),
        tid: u32,
        (inode_begin, inode_end): (u64, u64),
        (seq_begin, seq_end): (u32, u32),
        fl: u16,
    ) -> &mut Self {
        let mut ev = Event::zeroed();
        ev.probe = probe as u8;
        ev.source = Source::FEntry as u8;
        ev.ts_begin = b;
        ev.ts_end = e;
        ev.tid = tid;
        ev.parent = ROOT;
        ev.dentry = dentry;
        ev.inode_begin = inode_begin;
        ev.inode_end = inode_end;
        ev.seq_begin = seq_begin;
        ev.seq_end = seq_end;
        ev.flags = fl;
        ev.set_name(name.as_bytes());
        self.events.push(ev);
        self
    }

    /// Puts the last event under directory `parent` (the helpers default to the root).
    pub fn under(&mut self, parent: u64) -> &mut Self {
        if let Some(e) = self.events.last_mut() {
            e.parent = parent;
        }
        self
    }

    /// Puts the last event on `cpu` (the helpers default to CPU 0, where the stamps order
    /// every event).
    pub fn on_cpu(&mut self, cpu: u32) -> &mut Self {
        if let Some(e) = self.events.last_mut() {
            e.cpu = cpu;
        }
        self
    }

    /// Makes the last lookup a ref-walk `__d_lookup`.
    pub fn ref_walk(&mut self) -> &mut Self {
        if let Some(e) = self.events.last_mut() {
            e.probe = Probe::DLookup as u8;
        }
        self
    }

    /// Writes the events in completion order, as the recorder does.
    pub fn write(&self, path: &Path, origin: Origin, footer: Footer) {
        self.write_with(path, origin, footer, |_| {});
    }

    /// [`Self::write`], the header changed by `edit` first. A kernel trace's footer gets the
    /// counters a recording writes, unless the test set them: per probe as many calls as the
    /// file has events, per CPU its highest number.
    pub fn write_with(
        &self,
        path: &Path,
        origin: Origin,
        mut footer: Footer,
        edit: impl FnOnce(&mut Header),
    ) {
        let mut h = Header::new(origin);
        if origin == Origin::Kernel {
            h.kernel_release = "6.1.0-27-amd64".into();
            h.attach = BTreeMap::from([
                ("__d_lookup_rcu".into(), Attachment::Fentry),
                ("___d_drop".into(), Attachment::Fentry),
                ("dentry_unlink_inode".into(), Attachment::Fentry),
                (
                    "__d_drop".into(),
                    Attachment::Absent("not called out of line (inlined)".into()),
                ),
            ]);
        } else {
            h.kernel_release = "6.1".into();
            h.profile = Some("linux-6.1".into());
        }
        edit(&mut h);
        let mut events = self.events.clone();
        if origin == Origin::Kernel {
            // Number the probe events as the probes do (per CPU, in entry order), unless a
            // test set the numbers itself.
            let mut order: Vec<usize> = (0..events.len()).collect();
            order.sort_by_key(|i| events[*i].ts_begin);
            let mut next = BTreeMap::<u32, u32>::new();
            for i in order {
                let e = &mut events[i];
                if e.probe != Probe::Op as u8 && e.cpu_seq == 0 {
                    let n = next.entry(e.cpu).or_default();
                    *n += 1;
                    e.cpu_seq = *n;
                }
            }
            let probes = events.iter().filter(|e| e.probe != Probe::Op as u8);
            if footer.hits.is_empty() {
                for e in probes.clone() {
                    let symbol = Probe::from_u8(e.probe).map_or("unknown", Probe::symbol);
                    *footer.hits.entry(symbol.into()).or_insert(0) += 1;
                }
            }
            if footer.last_cpu_seq.is_empty() {
                for e in probes.filter(|e| e.cpu_seq > 0) {
                    let last = footer.last_cpu_seq.entry(e.cpu).or_insert(0);
                    *last = (*last).max(u64::from(e.cpu_seq));
                }
            }
        }
        events.sort_by_key(|e| e.ts_end);
        let mut w = Writer::create(path, &h).expect("create trace");
        for e in &events {
            w.push(e).expect("push");
        }
        w.finish(footer).expect("finish");
    }
}

/// A workload text of `writers` threads that create and unlink `f1` and `readers` that stat
/// it, for a header: the diff reads from it how many threads ran, and how many may make or
/// remove a name.
pub fn threads_workload(writers: u64, readers: u64) -> String {
    let mut t = "name = \"hand-made\"\ndescription = \"threads for a header\"\n\
                 filesystem = \"tmpfs\"\nseed = 1\n"
        .to_string();
    for (name, n, ops) in [
        (
            "writer",
            writers,
            "[{ op = \"create\", path = \"f1\" }, { op = \"unlink\", path = \"f1\" }]",
        ),
        ("reader", readers, "[{ op = \"stat\", path = \"f1\" }]"),
    ] {
        if n > 0 {
            t.push_str(&format!(
                "\n[[thread]]\nname = \"{name}\"\ncount = {n}\niterations = 1\nops = {ops}\n"
            ));
        }
    }
    t
}

/// Cuts the footer off a trace file: it ends after its last chunk of events, as a recording
/// whose recorder died while writing it.
pub fn cut_footer(path: &Path) {
    let bytes = std::fs::read(path).expect("read");
    let footer = bytes
        .windows(4)
        .rposition(|w| w == b"FOOT")
        .expect("a footer");
    std::fs::write(path, &bytes[..footer]).expect("cut");
}

pub fn finished() -> Footer {
    Footer {
        end: End::Finished,
        ..Footer::default()
    }
}

/// A file created long before, stat'ed successfully once: positive from then on.
pub fn created(t: &mut Trace, name: &str) {
    t.op(OpKind::Create, name, 100, 200, 10, 0);
    t.op(OpKind::Stat, name, 300, 400, 11, 0);
}

/// The messages of a report's reasons of one kind, in its order.
pub fn messages(r: &Report, kind: ReasonKind) -> Vec<&str> {
    r.reasons
        .iter()
        .filter(|x| x.kind == kind)
        .map(|x| x.message.as_str())
        .collect()
}
