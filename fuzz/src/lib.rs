//! What the fuzz targets share: a scratch directory for the files the library reads, the trace
//! targets' body and checksum repair, and the diff target's input format.
//!
//! The diff target's input: two bytes, little endian, the number of events that go to the
//! kernel trace; then whole events (`tracer_common::EVENT_SIZE` bytes each), the kernel's
//! first and the model's after them. Both traces are written with valid checksums, so the
//! fuzzer exercises the diff rather than the reader's checks.
use std::path::PathBuf;

use tracer_analysis::trace::{End, Footer, Header, Origin, Reader, TraceError, Writer};
use tracer_common::{Event, EVENT_SIZE, NAME_CAP};

/// A directory of this process for scratch files (`cargo xtask fuzz` points TMPDIR at a
/// directory it removes afterwards).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracer-fuzz-{}", std::process::id()));
    // An existing directory is fine; a failure shows when the file is written.
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// Splits a diff input into the kernel's and the model's events.
pub fn split_events(data: &[u8]) -> (Vec<Event>, Vec<Event>) {
    let (head, body) = data.split_at(data.len().min(2));
    let kernel = match head {
        [a, b] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    let events: Vec<Event> = body
        .chunks_exact(EVENT_SIZE)
        .filter_map(|c| <&[u8; EVENT_SIZE]>::try_from(c).ok())
        .map(Event::from_bytes)
        .collect();
    let kernel = kernel.min(events.len());
    let model = events[kernel..].to_vec();
    let mut kernel_events = events;
    kernel_events.truncate(kernel);
    (kernel_events, model)
}

/// The inverse of [`split_events`], for seeds.
pub fn join_events(kernel: &[Event], model: &[Event]) -> Vec<u8> {
    let n = u16::try_from(kernel.len()).unwrap_or(u16::MAX);
    let mut out = n.to_le_bytes().to_vec();
    for e in kernel.iter().take(usize::from(n)).chain(model) {
        out.extend_from_slice(e.as_bytes());
    }
    out
}

/// Writes `events` as a complete trace of `origin` (release 6.1, the diff's default profile).
pub fn write_trace(path: &std::path::Path, origin: Origin, events: &[Event]) {
    let mut h = Header::new(origin);
    h.kernel_release = "6.1.0-fuzz".into();
    let mut w = Writer::create(path, &h).expect("the scratch directory is writable");
    for e in events {
        w.push(e).expect("writing a scratch trace");
    }
    w.finish(Footer {
        end: End::Finished,
        ..Footer::default()
    })
    .expect("finishing a scratch trace");
}

/// Whether a trace target's input went through [`with_checksums`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksums {
    AsGiven,
    Recomputed,
}

/// The trace targets' body: `data` read as a trace file gives events or a typed error of the
/// file's own (not of reading it), never a checksum mismatch once recomputed; a file read
/// whole writes back to the same events.
pub fn read_trace(data: &[u8], checksums: Checksums) {
    let path = scratch("input.trace");
    std::fs::write(&path, data).expect("writing the scratch file");
    let (header, events, footer) = match Reader::open(&path).and_then(Reader::read_all) {
        Ok(read) => read,
        Err(e @ (TraceError::Io { .. } | TraceError::Output(_))) => {
            panic!("reading a scratch file: {e}")
        }
        Err(TraceError::Corrupt { what, .. }) if checksums == Checksums::Recomputed => {
            assert!(!what.contains("checksum"), "recomputed, yet: {what}");
            return;
        }
        Err(_) => return,
    };
    let again = scratch("again.trace");
    let mut w = Writer::create(&again, &header).expect("rewriting a trace that was read");
    w.push_all(&events).expect("pushing events that were read");
    w.finish(footer.clone()).expect("finishing the rewrite");
    let (h2, e2, f2) = Reader::open(&again)
        .and_then(Reader::read_all)
        .expect("a rewritten trace reads back");
    assert_eq!(h2, header);
    assert_eq!(e2, events);
    assert_eq!(f2.events, footer.events);
}

const MAGIC: &[u8] = b"DCTRACE\0";
const CHUNK_MAGIC: &[u8] = b"EVTS";
const FOOTER_MAGIC: &[u8] = b"FOOT";

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Writes at `crc_at` the CRC-32 of the `len` bytes at `body`; None if either runs past the
/// end.
fn fix_crc(b: &mut [u8], body: usize, len: usize, crc_at: usize) -> Option<()> {
    let crc = crc32fast::hash(b.get(body..body.checked_add(len)?)?);
    b.get_mut(crc_at..crc_at.checked_add(4)?)?
        .copy_from_slice(&crc.to_le_bytes());
    Some(())
}

/// `data` with every checksum the trace framing reaches recomputed (header, each chunk, footer;
/// `tracer_analysis::trace`'s module doc), and the footer's event count set to the chunks'
/// when its JSON reads as a footer. The walk stops where the framing does (a length past the
/// end, another magic); the bytes from there on stay as they were.
pub fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let _ = fix_framing(&mut out);
    out
}

fn fix_framing(out: &mut Vec<u8>) -> Option<()> {
    if !out.starts_with(MAGIC) {
        return None;
    }
    let format = u32_at(out, 8)?;
    let len = u32_at(out, 12)? as usize;
    fix_crc(out, 16, len, 16 + len)?;
    let mut at = 20 + len;
    let mut events = 0u64;
    while out.get(at..at + 4)? == CHUNK_MAGIC {
        let count = u32_at(out, at + 4)?;
        let (len, crc_at) = match format {
            1 => ((count as usize).checked_mul(EVENT_SIZE)?, at + 8),
            _ => (u32_at(out, at + 8)? as usize, at + 12),
        };
        fix_crc(out, crc_at + 4, len, crc_at)?;
        events += u64::from(count);
        at = crc_at + 4 + len;
    }
    if out.get(at..at + 4)? != FOOTER_MAGIC {
        return None;
    }
    let len = u32_at(out, at + 4)? as usize;
    let json = out.get(at + 8..(at + 8).checked_add(len)?)?;
    if let Ok(mut footer) = serde_json::from_slice::<Footer>(json) {
        footer.events = events;
        let json = serde_json::to_vec(&footer).expect("a footer serializes");
        out.splice(at + 8..at + 8 + len, json.iter().copied());
        out[at + 4..at + 8].copy_from_slice(&(json.len() as u32).to_le_bytes());
        let end = at + 8 + json.len();
        return fix_crc(out, at + 8, json.len(), end);
    }
    fix_crc(out, at + 8, len, at + 8 + len)
}

/// A format-2 trace of `events` in chunks of `sizes` events (the rest in the last), for seeds:
/// the writer fills each chunk to 4096 events, more than a fuzz input holds. Its header and
/// footer are `whole`'s, a file the writer wrote of the same events.
pub fn chunked(whole: &[u8], events: &[Event], sizes: &[usize]) -> Vec<u8> {
    let head = 20 + u32_at(whole, 12).map_or(0, |n| n as usize);
    let foot = whole
        .windows(4)
        .rposition(|w| w == FOOTER_MAGIC)
        .unwrap_or(whole.len());
    let mut out = whole[..head.min(foot)].to_vec();
    let mut rest = events;
    for &n in sizes.iter().chain(std::iter::once(&usize::MAX)) {
        let (now, later) = rest.split_at(n.min(rest.len()));
        if now.is_empty() {
            break;
        }
        let records: Vec<u8> = now
            .iter()
            .flat_map(|e| {
                let stored =
                    std::mem::offset_of!(Event, name) + (e.name_len as usize).min(NAME_CAP);
                e.as_bytes()[..stored].to_vec()
            })
            .collect();
        out.extend_from_slice(CHUNK_MAGIC);
        out.extend_from_slice(&(now.len() as u32).to_le_bytes());
        out.extend_from_slice(&(records.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&records);
        rest = later;
    }
    out.extend_from_slice(&whole[foot..]);
    with_checksums(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> Vec<(PathBuf, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/trace_reader");
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .expect("the trace seeds")
            .map(|e| {
                let p = e.expect("a seed").path();
                let bytes = std::fs::read(&p).expect("reading a seed");
                (p, bytes)
            })
            .collect();
        seeds.sort();
        seeds
    }

    /// The seeds are whole traces (format 1, format 2 in one chunk and in several): their
    /// checksums and counts hold already, and both targets read them.
    #[test]
    fn seeds_keep_their_checksums_and_read_in_both_modes() {
        let seeds = seeds();
        assert!(seeds.iter().any(|(p, _)| p.ends_with("format2-chunks-0")));
        for (p, bytes) in seeds {
            assert_eq!(with_checksums(&bytes), bytes, "{}", p.display());
            let path = scratch("seed.trace");
            std::fs::write(&path, &bytes).expect("write");
            Reader::open(&path)
                .and_then(Reader::read_all)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            read_trace(&bytes, Checksums::AsGiven);
            read_trace(&bytes, Checksums::Recomputed);
        }
    }

    /// Changes the CRC alone would catch reach the record walk and the footer's count once
    /// the checksums are recomputed.
    #[test]
    fn recomputed_checksums_let_changed_records_reach_the_record_checks() {
        let (_, seed) = seeds()
            .into_iter()
            .find(|(p, _)| p.ends_with("format2-chunks-0"))
            .expect("a multi-chunk seed");
        let first = 20 + u32_at(&seed, 12).expect("header") as usize;
        let name_len = first + 16 + std::mem::offset_of!(Event, name_len);
        let path = scratch("changed.trace");
        let read = |bytes: &[u8]| {
            std::fs::write(&path, bytes).expect("write");
            Reader::open(&path).and_then(Reader::read_all)
        };
        let what = |r: Result<_, TraceError>| match r {
            Err(TraceError::Corrupt { what, .. }) => what,
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("read whole"),
        };

        // The first chunk's one record claims a longer name.
        let mut longer = seed.clone();
        longer[name_len] += 1;
        assert_eq!(what(read(&longer)), "event chunk checksum mismatch");
        let fixed = with_checksums(&longer);
        assert_eq!(what(read(&fixed)), "event 0 of 1 runs past its chunk");

        // The first chunk's head loses its event and its bytes: the other chunks read, and
        // the footer counts what is left.
        let mut fewer = seed.clone();
        let bytes = u32_at(&seed, first + 8).expect("chunk bytes") as usize;
        fewer[first + 4..first + 12].copy_from_slice(&[0; 8]);
        fewer.drain(first + 16..first + 16 + bytes);
        let fixed = with_checksums(&fewer);
        let (_, events, footer) = read(&fixed).expect("the other chunks read");
        let (_, all, _) = read(&seed).expect("the seed reads");
        assert_eq!(events, all[1..]);
        assert_eq!(footer.events, events.len() as u64);
    }
}
