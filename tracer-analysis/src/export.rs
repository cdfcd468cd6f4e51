//! `tracer export`: a trace as one JSON object per event (JSON Lines), for other tools.
use std::io::Write;

use serde::Serialize;
use tracer_common::{flags, Event, OpKind, Probe, Source};

use crate::trace::{Reader, TraceError};

/// One event, with every field decoded.
#[derive(Serialize)]
pub struct JsonEvent {
    pub ts_begin: u64,
    pub ts_end: u64,
    pub probe: &'static str,
    pub source: &'static str,
    pub tid: u32,
    pub cpu: u32,
    /// Kernel events: the entry CPU's sequence number (a missing number is a lost event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seq: Option<u32>,
    pub dentry: u64,
    pub parent: u64,
    pub inode_begin: u64,
    pub inode_end: u64,
    pub seq_begin: u32,
    pub seq_end: u32,
    /// Lookups: the returned dentry's `d_flags`, read at return beside its `d_seq`; writers:
    /// `d_flags` at entry. Raw, in the numbering of the kernel that recorded it; a model
    /// trace's in its profile's (userspace-dcache's `DFlagsNumbering`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d_flags: Option<u32>,
    /// Operation events: the operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<&'static str>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name2: Option<String>,
    pub name_len: u32,
    pub name_hash: u32,
    pub result: i32,
    pub validated: bool,
    pub hashed_begin: bool,
    pub hashed_end: bool,
    pub flags: Vec<&'static str>,
}

const FLAG_NAMES: &[(u16, &str)] = &[
    (flags::HASHED_BEGIN, "hashed_begin"),
    (flags::HASHED_END, "hashed_end"),
    (flags::VALIDATED, "validated"),
    (flags::NAME_TRUNCATED, "name_truncated"),
    (flags::READ_FAULT, "read_fault"),
    (flags::NO_ENTRY, "no_entry"),
    (flags::TWO_PATHS, "two_paths"),
];

impl From<&Event> for JsonEvent {
    fn from(e: &Event) -> Self {
        let probe = e.probe();
        let is_op = probe == Some(Probe::Op);
        let bytes = e.name_bytes();
        let (name, name2) = if e.has(flags::TWO_PATHS) {
            let mut parts = bytes.splitn(2, |b| *b == 0);
            let a = parts.next().unwrap_or_default();
            let b = parts.next().unwrap_or_default();
            (
                String::from_utf8_lossy(a).into_owned(),
                Some(String::from_utf8_lossy(b).into_owned()),
            )
        } else {
            (String::from_utf8_lossy(bytes).into_owned(), None)
        };
        JsonEvent {
            ts_begin: e.ts_begin,
            ts_end: e.ts_end,
            probe: probe.map(Probe::symbol).unwrap_or("unknown"),
            source: match Source::from_u8(e.source) {
                Some(Source::FEntry) => "fentry",
                Some(Source::KProbe) => "kprobe",
                Some(Source::Workload) => "workload",
                Some(Source::Model) => "model",
                None => "unknown",
            },
            tid: e.tid,
            cpu: e.cpu,
            cpu_seq: (e.cpu_seq != 0).then_some(e.cpu_seq),
            dentry: e.dentry,
            parent: e.parent,
            inode_begin: e.inode_begin,
            inode_end: e.inode_end,
            seq_begin: e.seq_begin,
            seq_end: e.seq_end,
            d_flags: (!is_op).then_some(e.aux),
            op: if is_op {
                Some(
                    OpKind::from_u32(e.aux)
                        .map(OpKind::name)
                        .unwrap_or("unknown"),
                )
            } else {
                None
            },
            name,
            name2,
            name_len: e.name_len,
            name_hash: e.name_hash,
            result: e.result,
            validated: e.has(flags::VALIDATED),
            hashed_begin: e.has(flags::HASHED_BEGIN),
            hashed_end: e.has(flags::HASHED_END),
            flags: FLAG_NAMES
                .iter()
                .filter(|(f, _)| e.has(*f))
                .map(|(_, n)| *n)
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("writing the export")]
    Write(#[from] std::io::Error),
}

/// Writes every event of `reader` as a JSON line. Returns the number written; a truncated or
/// corrupt trace still has its intact prefix written before the error.
pub fn jsonl(reader: &mut Reader, out: &mut dyn Write) -> Result<u64, ExportError> {
    let mut n = 0;
    while let Some(e) = reader.next_event()? {
        serde_json::to_writer(&mut *out, &JsonEvent::from(&e)).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Footer, Header, Origin, Writer};

    #[test]
    fn every_event_becomes_one_json_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        let mut w = Writer::create(&p, &Header::new(Origin::Kernel)).expect("create");
        let mut lookup = Event::zeroed();
        lookup.probe = Probe::DLookupRcu as u8;
        lookup.source = Source::FEntry as u8;
        lookup.flags = flags::VALIDATED | flags::HASHED_BEGIN;
        lookup.dentry = 7;
        lookup.cpu_seq = 42;
        lookup.set_name(b"f1");
        let mut rename = Event::zeroed();
        rename.probe = Probe::Op as u8;
        rename.source = Source::Workload as u8;
        rename.aux = OpKind::Rename as u32;
        rename.result = -2;
        rename.set_name(b"a/x\0a/y");
        rename.flags = flags::TWO_PATHS;
        w.push(&lookup).expect("push");
        w.push(&rename).expect("push");
        w.finish(Footer::default()).expect("finish");

        let mut out = Vec::new();
        let n = jsonl(&mut Reader::open(&p).expect("open"), &mut out).expect("export");
        assert_eq!(n, 2);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines[0]["probe"], "__d_lookup_rcu");
        assert_eq!(lines[0]["validated"], true);
        assert_eq!(lines[0]["name"], "f1");
        assert_eq!(lines[0]["dentry"], 7);
        assert_eq!(lines[0]["cpu_seq"], 42);
        assert!(lines[1].get("cpu_seq").is_none(), "operations carry none");
        assert_eq!(lines[1]["op"], "rename");
        assert_eq!(lines[1]["name"], "a/x");
        assert_eq!(lines[1]["name2"], "a/y");
        assert_eq!(lines[1]["result"], -2);
    }
}
