//! rev24's mutator aimed at the diff window's packing escapes. Args: IN OUT SEED MODES
//! (MODES: name=per-mille,...). Writes a valid trace with the project's Writer.
use std::path::Path;
use tracer_analysis::trace::{Reader, Writer};
use tracer_common::{Event, Probe};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; self.0 }
    fn below(&mut self, n: u64) -> u64 { if n == 0 { 0 } else { self.next() % n } }
    fn chance(&mut self, pm: u64) -> bool { self.below(1000) < pm }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (input, output, seed, modes) = (&a[1], &a[2], a[3].parse::<u64>().unwrap(), a[4].clone());
    let (mut header, evs, footer) = Reader::open(Path::new(input)).unwrap().read_all().unwrap();
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let rate = |m: &str| -> u64 { modes.split(',').find_map(|p| p.strip_prefix(m).and_then(|x| x.strip_prefix('=')).map(|x| x.parse().unwrap())).unwrap_or(0) };
    let mut src: Vec<Event> = evs;
    // tile=K: the trace K times over, each copy later by its span plus a gap.
    let tile = rate("tile");
    if tile > 1 {
        let lo = src.iter().map(|e| e.ts_begin).min().unwrap_or(0);
        let hi = src.iter().map(|e| e.ts_end.max(e.ts_begin)).max().unwrap_or(0);
        let span = hi - lo + 1000;
        let one = src.clone();
        for k in 1..tile {
            for e in &one { let mut d = *e; d.ts_begin += span * k; d.ts_end = d.ts_end.wrapping_add(span * k); src.push(d); }
        }
    }
    let mut out: Vec<Event> = Vec::with_capacity(src.len() + 1000);
    let mut shift = 0u64;
    let edges = [1u64 << 32, (1 << 32) - 1, (1 << 32) + 1, 1 << 33, 1 << 40];
    for e in src.iter() {
        let mut e = *e;
        if r.chance(rate("leap")) { shift = shift.wrapping_add(edges[r.below(5) as usize] + r.below(3)); }
        e.ts_begin = e.ts_begin.wrapping_add(shift);
        e.ts_end = e.ts_end.wrapping_add(shift);
        if r.chance(rate("dur")) {
            match r.below(8) {
                0 => e.ts_end = e.ts_begin.wrapping_sub(1 + r.below(3)),
                1 => e.ts_end = e.ts_begin + (1 << 32),
                2 => e.ts_end = e.ts_begin + (1 << 32) - 1,
                3 => e.ts_end = u64::MAX,
                4 => e.ts_end = e.ts_begin.wrapping_sub(1 << 32),
                5 => e.ts_end = e.ts_begin.wrapping_add(1 << 33),
                6 => e.ts_end = 0,
                _ => e.ts_end = e.ts_begin,
            }
        }
        if r.chance(rate("maxts")) { if r.below(2) == 0 { e.ts_begin = u64::MAX - r.below(3); } else { e.ts_begin = 0; } }
        if r.chance(rate("ino")) {
            match r.below(6) {
                0 => e.inode_begin = 1 << 32,
                1 => e.inode_end = u64::MAX,
                2 => e.inode_begin = (1 << 32) - 1,
                3 => { e.inode_begin |= 1 << 40; e.inode_end |= 1 << 40 }
                4 => e.inode_end = u32::MAX as u64,
                _ => e.inode_begin = u64::MAX,
            }
        }
        if r.chance(rate("cpu")) {
            e.cpu = [1 << 16, (1 << 16) - 1, u32::MAX, 1 << 20, 70000][r.below(5) as usize];
        }
        if r.chance(rate("late")) {
            let back = [1u64 << 20, 1 << 30, 1 << 32, (1 << 32) + 5, 1 << 36][r.below(5) as usize];
            e.ts_begin = e.ts_begin.saturating_sub(back);
            if r.below(2) == 0 { e.ts_end = e.ts_end.saturating_sub(back); }
        }
        if r.chance(rate("future")) {
            let fwd = [1u64 << 20, 1 << 29, 1 << 32, 900_000_000][r.below(4) as usize];
            e.ts_begin = e.ts_begin.saturating_add(fwd);
            e.ts_end = e.ts_end.saturating_add(fwd);
        }
        if r.chance(rate("misc")) {
            match r.below(5) {
                0 => e.seq_begin = u32::MAX,
                1 => e.aux = u32::MAX,
                2 => e.result = i32::MIN,
                3 => e.tid = u32::MAX,
                _ => e.flags = u16::MAX,
            }
        }
        if r.chance(rate("twin")) { let mut d = e; d.result ^= 1; d.inode_end = d.inode_end.wrapping_add(1); out.push(d); }
        out.push(e);
        // hold: an operation placed far ahead, then (later) the next event near it.
        if r.chance(rate("hold")) && e.probe == Probe::Op as u8 {
            let mut d = e; d.ts_begin = e.ts_begin + 800_000_000; d.ts_end = d.ts_begin + 100; out.push(d);
        }
    }
    // arr=1: 70,000 lookups between two held operations (a step of 2^16 arrivals in a run).
    if rate("arr") > 0 {
        if let (Some(op), Some(lk)) = (out.iter().find(|e| e.probe == Probe::Op as u8).copied(), out.iter().find(|e| e.probe == Probe::DLookupRcu as u8 || e.probe == Probe::DLookup as u8).copied()) {
            let t = out.iter().map(|e| e.ts_begin).filter(|&t| t < u64::MAX / 2).max().unwrap_or(0) + 1000;
            let mut h = op; h.ts_begin = t + 500_000_000; h.ts_end = h.ts_begin + 100; out.push(h);
            for i in 0..70_000u64 { let mut l = lk; l.ts_begin = t + i * 5; l.ts_end = l.ts_begin + 3; out.push(l); }
            let mut h2 = op; h2.ts_begin = t + 500_000_200; h2.ts_end = h2.ts_begin + 100; out.push(h2);
            let mut h3 = op; h3.ts_begin = t + 500_000_200 + (1 << 32); h3.ts_end = h3.ts_begin + 100; out.push(h3);
        }
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
    header.notes.insert("rev24".into(), modes.clone());
    let mut w = Writer::create(Path::new(output), &header).unwrap();
    w.push_all(&out).unwrap();
    let mut footer = footer;
    footer.events = out.len() as u64;
    w.finish(footer).unwrap();
}
