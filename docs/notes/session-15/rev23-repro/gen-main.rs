//! rev23's hostile trace mutator: reads a trace, applies seeded mutations, writes a valid trace.
use std::path::Path;
use tracer_analysis::trace::{Reader, Writer};
use tracer_common::{Event, Probe, OpKind, flags};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; self.0 }
    fn below(&mut self, n: u64) -> u64 { if n == 0 { 0 } else { self.next() % n } }
    fn chance(&mut self, per_mille: u64) -> bool { self.below(1000) < per_mille }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (input, output, seed, modes) = (&a[1], &a[2], a[3].parse::<u64>().unwrap(), a[4].clone());
    let (mut header, mut evs, footer) = Reader::open(Path::new(input)).unwrap().read_all().unwrap();
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let rate = |m: &str| -> u64 { modes.split(',').find_map(|p| p.strip_prefix(m).and_then(|x| x.strip_prefix('=')).map(|x| x.parse().unwrap())).unwrap_or(0) };
    let tids: Vec<u32> = { let mut t: Vec<u32> = evs.iter().map(|e| e.tid).collect(); t.sort(); t.dedup(); t };
    let names: Vec<Vec<u8>> = { let mut n: Vec<Vec<u8>> = evs.iter().filter(|e| e.probe != Probe::Op as u8).map(|e| e.name_bytes().to_vec()).collect(); n.sort(); n.dedup(); n.truncate(64); n };
    let mut out: Vec<Event> = Vec::with_capacity(evs.len() * 2);
    let mut tid_churn = 100_000u32;
    for e in evs.iter_mut() {
        let mut e = *e;
        let is_op = e.probe == Probe::Op as u8;
        if r.chance(rate("damage")) {
            match r.below(6) {
                0 => e.ts_end = e.ts_begin.saturating_sub(1 + r.below(5_000_000)),
                1 => e.ts_end = u64::MAX,
                2 => e.ts_end = e.ts_begin + 3_000_000_000 + r.below(1 << 40),
                3 => e.ts_begin = e.ts_begin.saturating_sub(r.below(2_000_000_000)),
                4 => { e.ts_begin = 0; }
                _ => e.ts_end = e.ts_begin,
            }
        }
        if r.chance(rate("unknown")) { e.probe = 200 + r.below(50) as u8; }
        if !is_op && r.chance(rate("retid")) { e.tid = tids[r.below(tids.len() as u64) as usize]; }
        if is_op && r.chance(rate("opretid")) { e.tid = tids[r.below(tids.len() as u64) as usize]; }
        if r.chance(rate("churn")) { tid_churn += 1; e.tid = tid_churn; }
        if r.chance(rate("rename")) && !names.is_empty() && !is_op {
            let n = &names[r.below(names.len() as u64) as usize];
            e.set_name(n);
        }
        if is_op && r.chance(rate("opkind")) {
            // Rename/exchange with two paths from this op's path.
            let p = e.name_bytes().to_vec();
            let mut two = p.clone(); two.push(0); two.extend_from_slice(&p); two.extend_from_slice(b"x");
            e.aux = if r.below(2) == 0 { OpKind::Rename as u32 } else { OpKind::Exchange as u32 };
            e.flags |= flags::TWO_PATHS;
            e.set_name(&two);
        }
        if r.chance(rate("dup")) { let mut d = e; d.ts_begin += r.below(1000); d.ts_end = d.ts_end.saturating_add(r.below(1000)); out.push(d); }
        if r.chance(rate("drop")) { continue; }
        if r.chance(rate("orphan")) && !is_op {
            let mut d = e; d.tid = 900_000 + r.below(50) as u32; out.push(d);
        }
        out.push(e);
    }
    let burst = rate("burst");
    if burst > 1 {
        let mut i = 0;
        while i < out.len() {
            let n = (burst as usize).min(out.len() - i);
            for k in (1..n).rev() { let j = r.below(k as u64 + 1) as usize; out.swap(i + k, i + j); }
            i += n;
        }
    }
    let cut = rate("cut");
    if cut > 0 { let keep = out.len() * (1000 - cut as usize) / 1000; out.truncate(keep); }
    if rate("sort") > 0 { out.sort_by_key(|e| e.ts_begin); }
    header.notes.insert("rev23".into(), modes.clone());
    if rate("raw") > 0 {
        // Format 1: whole 152-byte events, garbage after some names, some name_len past the cap.
        for e in out.iter_mut() {
            let n = (e.name_len as usize).min(tracer_common::NAME_CAP);
            if r.chance(300) { for b in e.name[n..].iter_mut() { *b = r.next() as u8; } }
            if r.chance(50) && n == tracer_common::NAME_CAP { e.name_len += 10; }
        }
        let mut f: Vec<u8> = Vec::new();
        f.extend_from_slice(b"DCTRACE\0");
        f.extend_from_slice(&1u32.to_le_bytes());
        let block = |f: &mut Vec<u8>, j: Vec<u8>| { f.extend_from_slice(&(j.len() as u32).to_le_bytes()); f.extend_from_slice(&j); f.extend_from_slice(&crc32fast::hash(&j).to_le_bytes()); };
        block(&mut f, serde_json::to_vec(&header).unwrap());
        for c in out.chunks(4096) {
            let bytes: Vec<u8> = c.iter().flat_map(|e| *e.as_bytes()).collect();
            f.extend_from_slice(b"EVTS");
            f.extend_from_slice(&(c.len() as u32).to_le_bytes());
            f.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            f.extend_from_slice(&bytes);
        }
        let mut footer = footer;
        footer.events = out.len() as u64;
        f.extend_from_slice(b"FOOT");
        block(&mut f, serde_json::to_vec(&footer).unwrap());
        f.extend_from_slice(b"DCEND\0\0\0");
        std::fs::write(output, f).unwrap();
        return;
    }
    let mut w = Writer::create(Path::new(output), &header).unwrap();
    w.push_all(&out).unwrap();
    w.finish(footer).unwrap();
}
