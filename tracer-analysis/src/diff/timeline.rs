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
use std::{
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{evidence::Doubt, report::AnomalyKind};
use crate::output::{AtomicFile, OutputError};

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
    /// The first write error; later writes are skipped and the error is reported once.
    error: Option<io::Error>,
}

#[derive(Serialize)]
struct TraceEvent<'a> {
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

/// The marks' index of side `pid`.
fn side(pid: u32) -> usize {
    usize::from(pid != 1)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Timeline {
    pub fn create(path: &Path) -> Result<Timeline, OutputError> {
        let mut out = AtomicFile::create(path, 0o644)?;
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
            error: None,
        })
    }

    fn write(&mut self, ev: &TraceEvent<'_>) {
        if self.error.is_some() {
            return;
        }
        let res = (|| {
            if !self.first {
                self.out.write_all(b",\n")?;
            }
            self.first = false;
            serde_json::to_writer(&mut self.out, ev).map_err(io::Error::from)
        })();
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
            args: &args,
        });
    }

    /// A complete slice; `rel_begin`/`rel_end` are ns since the side's origin.
    #[allow(clippy::too_many_arguments)]
    pub fn slice(
        &mut self,
        pid: u32,
        tid: u32,
        name: &str,
        cat: &str,
        rel_begin: u64,
        rel_end: u64,
        args: &Value,
    ) {
        self.write(&TraceEvent {
            name,
            cat,
            ph: "X",
            ts: us(rel_begin),
            dur: Some(us(rel_end.saturating_sub(rel_begin))),
            pid,
            tid,
            s: None,
            args,
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
            args,
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

    #[test]
    fn writes_a_valid_document() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.json");
        let mut t = Timeline::create(&p).expect("create");
        t.process_name(1, "kernel");
        t.slice(
            1,
            7,
            "stat d0/f1",
            "op",
            1_000,
            3_500,
            &serde_json::json!({"result": 0}),
        );
        t.instant(1, 7, "anomaly", "anomaly", 2_000, &Value::Null);
        t.finish().expect("finish");
        let v: Value = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
        let evs = v["traceEvents"].as_array().expect("array");
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1]["ph"], "X");
        assert_eq!(evs[1]["ts"], 1.0);
        assert_eq!(evs[1]["dur"], 2.5);
        assert_eq!(evs[2]["s"], "t");
    }
}
