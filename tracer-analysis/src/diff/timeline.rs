//! The Chrome/Perfetto trace-event JSON timeline, written while the diff streams: one process
//! per side (pid 1 kernel, pid 2 model), one track per thread, probe events and operations as
//! complete ("X") slices, anomalies and coverage gaps as instant ("i") events. Times are
//! microseconds since each side's first event, so the two sides line up at zero.
//!
//! An anomaly judged now may be set aside once a late event or the trace's cut is known, so
//! its mark waits, per side in a temporary file beside the timeline (the marks grow with the
//! anomalies), until [`Timeline::settle_mark`] writes it: `ANOMALY <kind>` (category
//! `anomaly`) exactly for the anomalies the report counts, `set aside: <kind>` (category
//! `set-aside`, the reason's kind in its args) for the others.
//!
//! The timeline is made again, the same, from the two traces by `tracer diff`, so it is not
//! synced to the disk ([`Durability::Recreatable`]: a cut or zeroed file fails to parse as
//! JSON). Each event is formatted into one reused line and written at once: a run's timeline
//! holds about 200,000 events (60 MB), and serde's writer made some twenty small writes an
//! event through the output's buffer.
use std::{
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    align::Paths,
    evidence::{Doubt, Obs},
    report::AnomalyKind,
};
use crate::output::{AtomicFile, Durability, OutputError};

/// An anomaly's mark while it waits for its doubt, one JSON line.
#[derive(Serialize, Deserialize)]
struct Mark {
    tid: u32,
    /// ns since the side's origin.
    rel: u64,
    kind: AnomalyKind,
    args: Value,
}

/// One side's waiting marks: written in judgment order, then read back in that order.
#[derive(Default)]
enum Marks {
    #[default]
    None,
    Writing(BufWriter<File>),
    Reading(BufReader<File>),
}

/// Written to a temporary file, put in place by [`Timeline::finish`]: a diff that fails leaves
/// no timeline that reads as its own.
pub struct Timeline {
    out: AtomicFile,
    /// Where the marks wait: the timeline's directory, which its user chose writable.
    dir: PathBuf,
    /// Per side (pid 1, 2).
    marks: [Marks; 2],
    first: bool,
    /// The event being formatted, kept for the next one's.
    line: Vec<u8>,
    /// The first write error; later writes are skipped and the error is reported once.
    error: Option<io::Error>,
}

/// One trace event, written as serde_json wrote it with these fields in this order (`dur` and
/// `s` left out when None).
struct TraceEvent<'a> {
    name: &'a str,
    cat: &'a str,
    ph: &'a str,
    ts: f64,
    dur: Option<f64>,
    pid: u32,
    tid: u32,
    s: Option<&'a str>,
    args: Args<'a>,
}

/// A trace event's `args`.
#[derive(Clone, Copy)]
enum Args<'a> {
    Value(&'a Value),
    /// An observation's: the object [`obs_args`](super::evidence::obs_args) builds, written
    /// without building it (for every kept event of a `--timeline` diff, that value's
    /// allocations and frees were most of the diff's work).
    Obs(&'a Obs, &'a Paths),
}

impl TraceEvent<'_> {
    /// Appends the event's JSON object to `out`, byte for byte what `serde_json::to_writer`
    /// writes for it.
    fn put(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"name\":");
        json::string(out, self.name)?;
        out.extend_from_slice(b",\"cat\":");
        json::string(out, self.cat)?;
        out.extend_from_slice(b",\"ph\":");
        json::string(out, self.ph)?;
        out.extend_from_slice(b",\"ts\":");
        serde_json::to_writer(&mut *out, &self.ts)?;
        if let Some(dur) = self.dur {
            out.extend_from_slice(b",\"dur\":");
            serde_json::to_writer(&mut *out, &dur)?;
        }
        out.extend_from_slice(b",\"pid\":");
        json::unsigned(out, u64::from(self.pid));
        out.extend_from_slice(b",\"tid\":");
        json::unsigned(out, u64::from(self.tid));
        if let Some(s) = self.s {
            out.extend_from_slice(b",\"s\":");
            json::string(out, s)?;
        }
        out.extend_from_slice(b",\"args\":");
        match self.args {
            Args::Value(v) => json::value(out, v)?,
            Args::Obs(o, paths) => json::obs(out, o, paths)?,
        }
        out.push(b'}');
        Ok(())
    }
}

/// Compact JSON into a byte vector, as serde_json writes it: its own writer for what needs
/// escaping or float formatting, plain copies for the rest.
mod json {
    use serde_json::Value;

    use super::{Obs, Paths};
    use crate::diff::evidence::flag_text;

    /// A string that needs no escape (no `"`, `\\` or control byte) is copied as it is.
    pub(super) fn string(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            return serde_json::to_writer(&mut *out, s);
        }
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    }

    pub(super) fn unsigned(out: &mut Vec<u8>, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
    }

    fn signed(out: &mut Vec<u8>, n: i64) {
        if n < 0 {
            out.push(b'-');
        }
        unsigned(out, n.unsigned_abs());
    }

    /// `obs_args(o, paths)` as serde_json writes it: its map keeps the keys sorted.
    pub(super) fn obs(out: &mut Vec<u8>, o: &Obs, paths: &Paths) -> serde_json::Result<()> {
        let field = |out: &mut Vec<u8>, key: &[u8], n: u64| {
            out.extend_from_slice(key);
            unsigned(out, n);
        };
        match o.op {
            Some(k) => {
                out.extend_from_slice(b"{\"name\":");
                string(out, &paths.render(o.path))?;
                out.extend_from_slice(b",\"new_name\":");
                match o.path2 {
                    Some(p) => string(out, &paths.render(p))?,
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"operation\":");
                string(out, k.name())?;
                out.extend_from_slice(b",\"result\":");
                signed(out, i64::from(o.result));
            }
            None => {
                field(out, b"{\"dentry\":", o.dentry);
                out.extend_from_slice(b",\"flags\":");
                string(out, &flag_text(o.flags))?;
                field(out, b",\"generation\":", u64::from(o.generation));
                field(out, b",\"inode_begin\":", o.inode_begin);
                field(out, b",\"inode_end\":", o.inode_end);
                out.extend_from_slice(b",\"name\":");
                string(out, &paths.render(o.path))?;
                out.extend_from_slice(b",\"probe\":");
                string(out, o.probe.symbol())?;
                field(out, b",\"seq_begin\":", u64::from(o.seq_begin));
                field(out, b",\"seq_end\":", u64::from(o.seq_end));
            }
        }
        field(out, b",\"tid\":", u64::from(o.tid));
        field(out, b",\"ts_begin\":", o.ts_begin);
        field(out, b",\"ts_end\":", o.ts_end);
        out.push(b'}');
        Ok(())
    }

    pub(super) fn value(out: &mut Vec<u8>, v: &Value) -> serde_json::Result<()> {
        match v {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Number(n) => match n.as_u64() {
                Some(u) => unsigned(out, u),
                None => serde_json::to_writer(&mut *out, n)?,
            },
            Value::String(s) => string(out, s)?,
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    value(out, item)?;
                }
                out.push(b']');
            }
            Value::Object(fields) => {
                out.push(b'{');
                for (i, (k, item)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    string(out, k)?;
                    out.push(b':');
                    value(out, item)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }
}

/// The marks' index of side `pid`.
fn side(pid: u32) -> usize {
    usize::from(pid != 1)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Timeline {
    pub fn create(path: &Path) -> Result<Timeline, OutputError> {
        let mut out = AtomicFile::create_with(path, 0o644, Durability::Recreatable)?;
        out.put(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Timeline {
            out,
            dir,
            marks: Default::default(),
            first: true,
            line: Vec::new(),
            error: None,
        })
    }

    fn write(&mut self, ev: &TraceEvent<'_>) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        if !self.first {
            self.line.extend_from_slice(b",\n");
        }
        self.first = false;
        let res = ev
            .put(&mut self.line)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(&self.line));
        if let Err(e) = res {
            self.error = Some(e);
        }
    }

    /// Names a side's process track.
    pub fn process_name(&mut self, pid: u32, name: &str) {
        let args = serde_json::json!({ "name": name });
        self.write(&TraceEvent {
            name: "process_name",
            cat: "__metadata",
            ph: "M",
            ts: 0.0,
            dur: None,
            pid,
            tid: 0,
            s: None,
            args: Args::Value(&args),
        });
    }

    /// A complete slice of observation `o` on its thread's track, its args those of
    /// [`obs_args`](super::evidence::obs_args); `rel_begin`/`rel_end` are ns since the side's
    /// origin.
    #[allow(clippy::too_many_arguments)]
    pub fn slice(
        &mut self,
        pid: u32,
        name: &str,
        cat: &str,
        rel_begin: u64,
        rel_end: u64,
        o: &Obs,
        paths: &Paths,
    ) {
        self.write(&TraceEvent {
            name,
            cat,
            ph: "X",
            ts: us(rel_begin),
            dur: Some(us(rel_end.saturating_sub(rel_begin))),
            pid,
            tid: o.tid,
            s: None,
            args: Args::Obs(o, paths),
        });
    }

    /// An instant on a thread's track.
    pub fn instant(&mut self, pid: u32, tid: u32, name: &str, cat: &str, rel: u64, args: &Value) {
        self.write(&TraceEvent {
            name,
            cat,
            ph: "i",
            ts: us(rel),
            dur: None,
            pid,
            tid,
            s: Some("t"),
            args: Args::Value(args),
        });
    }

    /// An anomaly of side `pid` at `rel` ns: its mark waits for [`Timeline::settle_mark`].
    pub fn anomaly(&mut self, pid: u32, tid: u32, kind: AnomalyKind, rel: u64, args: Value) {
        if self.error.is_some() {
            return;
        }
        let (dir, marks) = (&self.dir, &mut self.marks[side(pid)]);
        let res = (|| {
            if let Marks::None = marks {
                *marks = Marks::Writing(BufWriter::new(tempfile::tempfile_in(dir)?));
            }
            let Marks::Writing(out) = marks else {
                return Err(io::Error::other(
                    "an anomaly came after the marks were settled",
                ));
            };
            serde_json::to_writer(
                &mut *out,
                &Mark {
                    tid,
                    rel,
                    kind,
                    args,
                },
            )?;
            out.write_all(b"\n")
        })();
        if let Err(e) = res {
            self.error = Some(e);
        }
    }

    /// Writes side `pid`'s next waiting mark (in the order the anomalies were judged): an
    /// anomaly when `doubt` is None, else set aside.
    pub fn settle_mark(&mut self, pid: u32, doubt: Option<Doubt>) {
        if self.error.is_some() {
            return;
        }
        let marks = &mut self.marks[side(pid)];
        let res = (|| {
            *marks = match std::mem::take(marks) {
                Marks::Writing(out) => {
                    let mut file = out.into_inner().map_err(|e| e.into_error())?;
                    file.seek(SeekFrom::Start(0))?;
                    Marks::Reading(BufReader::new(file))
                }
                other => other,
            };
            let mut line = String::new();
            if let Marks::Reading(input) = marks {
                input.read_line(&mut line)?;
            }
            if line.is_empty() {
                return Err(io::Error::other("more anomalies than marks"));
            }
            Ok(serde_json::from_str::<Mark>(&line)?)
        })();
        let mut m = match res {
            Ok(m) => m,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let (name, cat) = match doubt {
            None => (format!("ANOMALY {}", m.kind.name()), "anomaly"),
            Some(d) => {
                if let Value::Object(args) = &mut m.args {
                    args.insert("set_aside".into(), serde_json::json!(d.reason()));
                }
                (format!("set aside: {}", m.kind.name()), "set-aside")
            }
        };
        self.instant(pid, m.tid, &name, cat, m.rel, &m.args);
    }

    /// Closes the JSON document and puts it in place; the first error of any write.
    pub fn finish(mut self) -> Result<(), OutputError> {
        if let Some(source) = self.error.take() {
            return Err(OutputError::Write {
                path: self.out.path().to_path_buf(),
                source,
            });
        }
        self.out.put(b"\n]}\n")?;
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        diff::{align::PathId, evidence::obs_args},
        test_rng::xorshift,
    };
    use tracer_common::{OpKind, Probe};

    /// The event as serde_json wrote it before [`TraceEvent::put`]: the oracle.
    #[derive(Serialize)]
    struct Oracle<'a> {
        name: &'a str,
        cat: &'a str,
        ph: &'a str,
        ts: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        dur: Option<f64>,
        pid: u32,
        tid: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        s: Option<&'a str>,
        args: &'a Value,
    }

    impl<'a> Oracle<'a> {
        /// `ev` with its value args `args`, for serde_json to write.
        fn of(ev: &TraceEvent<'a>, args: &'a Value) -> Oracle<'a> {
            Oracle {
                name: ev.name,
                cat: ev.cat,
                ph: ev.ph,
                ts: ev.ts,
                dur: ev.dur,
                pid: ev.pid,
                tid: ev.tid,
                s: ev.s,
                args,
            }
        }
    }

    /// Strings with what JSON escapes (quotes, backslashes, every control byte, DEL) and
    /// multi-byte characters among plain ones.
    fn text(rng: &mut impl FnMut(u64) -> u64) -> String {
        const PIECES: [&str; 10] = ["d0", "/", "f12", "\"", "\\", "é", "→", "\u{7f}", " ", "x"];
        (0..rng(8))
            .map(|_| match rng(4) {
                0 => char::from(rng(0x20) as u8).to_string(),
                _ => PIECES[rng(PIECES.len() as u64) as usize].to_string(),
            })
            .collect()
    }

    fn value(rng: &mut impl FnMut(u64) -> u64, depth: u32) -> Value {
        match rng(if depth > 2 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng(2) == 1),
            2 => serde_json::json!(rng(u64::MAX)),
            3 => serde_json::json!(-(rng(1 << 62) as i64) - 1),
            4 => serde_json::json!(rng(1 << 50) as f64 / 1000.0),
            5 => Value::String(text(rng)),
            6 => Value::Array((0..rng(4)).map(|_| value(rng, depth + 1)).collect()),
            _ => Value::Object(
                (0..rng(6))
                    .map(|_| (text(rng), value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    /// The hand-written event is byte for byte serde_json's, on random events: times as the
    /// timeline makes them (ns / 1000, zero and huge ones too), every kind of argument.
    #[test]
    fn events_are_written_as_serde_json_wrote_them() {
        let mut rng = xorshift(0x7131_e11e);
        for _ in 0..20_000 {
            let (name, cat, s) = (text(&mut rng), text(&mut rng), text(&mut rng));
            let ns = |rng: &mut dyn FnMut(u64) -> u64| match rng(4) {
                0 => 0,
                1 => rng(u64::MAX),
                _ => rng(1 << 40),
            };
            let ts = us(ns(&mut rng));
            let dur = (rng(2) == 1).then(|| us(ns(&mut rng)));
            let (pid, tid) = (rng(3) as u32, rng(u64::from(u32::MAX) + 1) as u32);
            let s = (rng(2) == 1).then_some(s.as_str());
            let args = value(&mut rng, 0);
            let ev = TraceEvent {
                name: &name,
                cat: &cat,
                ph: "X",
                ts,
                dur,
                pid,
                tid,
                s,
                args: Args::Value(&args),
            };
            let oracle = Oracle::of(&ev, &args);
            let mut got = Vec::new();
            ev.put(&mut got).expect("put");
            let want = serde_json::to_vec(&oracle).expect("oracle");
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }

    /// An observation's args written directly are byte for byte `obs_args`' value as
    /// serde_json writes it, on random observations of both kinds: names that need escaping,
    /// extreme numbers, every flag.
    #[test]
    fn observations_are_written_as_obs_args_wrote_them() {
        let mut rng = xorshift(0x0b5_a265);
        let mut paths = Paths::default();
        let ids: Vec<PathId> = (0..40)
            .map(|_| {
                let name = text(&mut rng).replace('/', "");
                paths.parse(format!("d{}/{name}", rng(3)).as_bytes())
            })
            .collect();
        let pick = |rng: &mut dyn FnMut(u64) -> u64| ids[rng(ids.len() as u64) as usize];
        let wide = |rng: &mut dyn FnMut(u64) -> u64| match rng(3) {
            0 => 0,
            1 => u64::MAX - rng(3),
            _ => rng(1 << 40),
        };
        for i in 0..20_000 {
            let o = Obs {
                n: rng(u64::MAX),
                ts_begin: wide(&mut rng),
                ts_end: wide(&mut rng),
                tid: wide(&mut rng) as u32,
                probe: Probe::ALL[rng(Probe::ALL.len() as u64) as usize],
                op: (i % 2 == 0).then(|| OpKind::ALL[rng(OpKind::ALL.len() as u64) as usize]),
                path: pick(&mut rng),
                path2: (rng(2) == 0).then(|| pick(&mut rng)),
                dentry: wide(&mut rng),
                slot: rng(100) as u32,
                generation: wide(&mut rng) as u32,
                seq_begin: wide(&mut rng) as u32,
                seq_end: wide(&mut rng) as u32,
                inode_begin: wide(&mut rng),
                inode_end: wide(&mut rng),
                flags: rng(1 << 16) as u16,
                result: match rng(3) {
                    0 => i32::MIN,
                    1 => -(rng(200) as i32),
                    _ => rng(1 << 31) as i32,
                },
            };
            let mut got = Vec::new();
            json::obs(&mut got, &o, &paths).expect("obs");
            let want = serde_json::to_vec(&obs_args(&o, &paths)).expect("oracle");
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }

    #[test]
    fn writes_a_valid_document() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.json");
        let mut t = Timeline::create(&p).expect("create");
        t.process_name(1, "kernel");
        let mut paths = Paths::default();
        let o = Obs {
            tid: 7,
            op: Some(OpKind::Stat),
            path: paths.parse(b"d0/f1"),
            ..Obs::BLANK
        };
        t.slice(1, "stat d0/f1", "op", 1_000, 3_500, &o, &paths);
        t.instant(1, 7, "anomaly", "anomaly", 2_000, &Value::Null);
        t.finish().expect("finish");
        assert_eq!(
            crate::output::tests::SYNCS.with(|n| n.get()),
            0,
            "the timeline, made again from the traces, was synced"
        );
        let v: Value = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
        let evs = v["traceEvents"].as_array().expect("array");
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1]["ph"], "X");
        assert_eq!(evs[1]["ts"], 1.0);
        assert_eq!(evs[1]["dur"], 2.5);
        assert_eq!(evs[1]["tid"], 7);
        assert_eq!(evs[1]["args"]["name"], "d0/f1");
        assert_eq!(evs[2]["s"], "t");
    }
}
