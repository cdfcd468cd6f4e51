//! The Chrome/Perfetto trace-event JSON timeline, written while the diff streams: one process
//! per side (pid 1 kernel, pid 2 model), one track per thread, probe events and operations as
//! complete ("X") slices, anomalies and coverage gaps as instant ("i") events. Times are
//! microseconds since each side's first event, so the two sides line up at zero.
use std::{
    io::{self, Write},
    path::Path,
};

use serde::Serialize;
use serde_json::Value;

use crate::output::{AtomicFile, OutputError};

/// Written to a temporary file, put in place by [`Timeline::finish`]: a diff that fails leaves
/// no timeline that reads as its own.
pub struct Timeline {
    out: AtomicFile,
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

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Timeline {
    pub fn create(path: &Path) -> Result<Timeline, OutputError> {
        let mut out = AtomicFile::create(path, 0o644)?;
        out.put(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        Ok(Timeline {
            out,
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
