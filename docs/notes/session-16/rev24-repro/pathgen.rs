//! rev24's path mutator for the replay: ops' paths made hostile (empty components, "//",
//! trailing "/", many components, non-UTF-8 bytes, "..", over-long), renames and exchanges
//! across directories. Args: IN OUT SEED PER_MILLE [cut_bytes].
use std::path::Path;
use tracer_analysis::trace::{Reader, Writer};
use tracer_common::{flags, Event, OpKind, Probe};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; self.0 }
    fn below(&mut self, n: u64) -> u64 { if n == 0 { 0 } else { self.next() % n } }
}

fn hostile(r: &mut Rng, p: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = p.to_vec();
    match r.below(14) {
        0 => { v.insert(0, b'/'); v.insert(0, b'/'); }
        1 => v.push(b'/'),
        2 => { if let Some(i) = v.iter().position(|&b| b == b'/') { v.insert(i, b'/'); } }
        3 => { let mut w = Vec::new(); for _ in 0..40 { w.extend_from_slice(b"./"); } w.extend_from_slice(&v); v = w; }
        4 => { v.push(0xff); v.push(0xfe); }
        5 => { v = b"\xc3\x28/x".to_vec(); }
        6 => { v.extend_from_slice(b"/../x"); }
        7 => { v.clear(); }
        8 => { v = b"/".to_vec(); }
        9 => { let mut w = Vec::new(); for i in 0..60 { w.extend_from_slice(format!("d{i}/").as_bytes()); } w.extend_from_slice(&v); v = w; }
        10 => { v = vec![b'n'; 300]; }
        11 => { v.extend_from_slice(b"/."); }
        12 => { v = others[r.below(others.len() as u64) as usize].clone(); }
        _ => { v.insert(0, b'.'); v.insert(1, b'/'); }
    }
    v
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (input, output, seed, pm) = (&a[1], &a[2], a[3].parse::<u64>().unwrap(), a[4].parse::<u64>().unwrap());
    let (mut header, evs, footer) = Reader::open(Path::new(input)).unwrap().read_all().unwrap();
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let others: Vec<Vec<u8>> = { let mut n: Vec<Vec<u8>> = evs.iter().filter(|e| e.probe == Probe::Op as u8 && e.flags & flags::TWO_PATHS == 0).map(|e| e.name_bytes().to_vec()).collect(); n.sort(); n.dedup(); if n.is_empty() { n.push(b"a".to_vec()); } n };
    let mut out: Vec<Event> = Vec::with_capacity(evs.len());
    for e in evs.iter() {
        let mut e = *e;
        if e.probe == Probe::Op as u8 && r.below(1000) < pm {
            let name = e.name_bytes().to_vec();
            if e.flags & flags::TWO_PATHS != 0 {
                let (p1, p2) = match name.iter().position(|&b| b == 0) { Some(i) => (name[..i].to_vec(), name[i + 1..].to_vec()), None => (name.clone(), Vec::new()) };
                let (q1, q2) = match r.below(3) {
                    0 => (hostile(&mut r, &p1, &others), p2),
                    1 => (p1, hostile(&mut r, &p2, &others)),
                    _ => (p1, others[r.below(others.len() as u64) as usize].clone()),
                };
                let mut n = q1; n.push(0); n.extend_from_slice(&q2); e.set_name(&n);
            } else if r.below(4) == 0 {
                // A rename or an exchange across directories, from this op's path.
                let p2 = others[r.below(others.len() as u64) as usize].clone();
                let mut n = name.clone(); n.push(0); n.extend_from_slice(&p2);
                e.aux = if r.below(2) == 0 { OpKind::Rename as u32 } else { OpKind::Exchange as u32 };
                e.flags |= flags::TWO_PATHS;
                e.set_name(&n);
            } else {
                let n = hostile(&mut r, &name, &others);
                e.set_name(&n);
            }
        }
        out.push(e);
    }
    header.notes.insert("rev24path".into(), pm.to_string());
    let mut w = Writer::create(Path::new(output), &header).unwrap();
    w.push_all(&out).unwrap();
    w.finish(footer).unwrap();
    if let Some(cut) = a.get(5) {
        // A truncated copy: the file cut at `cut` bytes from its end.
        let cut: u64 = cut.parse().unwrap();
        let b = std::fs::read(output).unwrap();
        let keep = (b.len() as u64).saturating_sub(cut) as usize;
        std::fs::write(format!("{output}.cut"), &b[..keep]).unwrap();
    }
}
