// Throwaway mutation program of session 15 (helper arena), kept as evidence: not built by the workspace. Run as an example of tracer-analysis: arena-mutate PAIR_DIR OUT_DIR SEED RATE SLOW.
use std::path::Path;
use tracer_analysis::trace::{Reader, Writer};
use tracer_common::flags;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(src: &Path, dst: &Path, seed: u64, rate: u64, slow_tid_keep: u64) {
    let (h, evs, f) = Reader::open(src).and_then(Reader::read_all).expect("read");
    let mut r = Rng(seed | 1);
    let mut out = Vec::with_capacity(evs.len());
    let mut recent: Vec<u64> = Vec::new();
    // A slow thread: the lowest tid with ops keeps 1 event in `slow_tid_keep`.
    let slow = evs
        .iter()
        .filter(|e| e.probe == 7)
        .map(|e| e.tid)
        .min()
        .unwrap_or(0);
    for e in &evs {
        let mut e = *e;
        if e.dentry != 0 {
            recent.push(e.dentry);
            if recent.len() > 64 {
                recent.remove(0);
            }
        }
        if slow_tid_keep > 1 && e.tid == slow && e.probe != 7 && r.next() % slow_tid_keep != 0 {
            continue;
        }
        if r.next() % rate == 0 {
            match r.next() % 11 {
                0 => e.seq_end = e.seq_end.wrapping_add(2),
                1 => e.seq_end = e.seq_end.wrapping_sub(2),
                2 => e.flags ^= flags::VALIDATED,
                3 => e.flags ^= flags::HASHED_BEGIN,
                4 => e.inode_begin = 0,
                5 => {
                    if e.probe == 7 {
                        e.result = -2;
                    }
                }
                6 => {
                    let back = (r.next() % 1_500) * 1_000_000;
                    e.ts_begin = e.ts_begin.saturating_sub(back);
                    e.ts_end = e.ts_end.saturating_sub(back);
                }
                7 => {
                    if !recent.is_empty() {
                        e.dentry = recent[(r.next() % recent.len() as u64) as usize];
                    }
                }
                8 => continue,
                9 => out.push(e),
                _ => {
                    // A long ENOENT stat or open: its lookups read late.
                    if e.probe == 7 && (e.aux == 1 || e.aux == 2) {
                        e.result = -2;
                        e.ts_end += (r.next() % 3_000) * 1_000_000;
                    }
                }
            }
        }
        out.push(e);
    }
    let mut w = Writer::create(dst, &h).expect("create");
    for e in &out {
        w.push(e).expect("push");
    }
    w.finish(f).expect("finish");
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (dir, out) = (Path::new(&a[1]), Path::new(&a[2]));
    let seed: u64 = a[3].parse().unwrap();
    let rate: u64 = a[4].parse().unwrap();
    let slow: u64 = a[5].parse().unwrap();
    std::fs::create_dir_all(out).unwrap();
    mutate(
        &dir.join("kernel.trace"),
        &out.join("kernel.trace"),
        seed,
        rate,
        slow,
    );
    mutate(
        &dir.join("model.trace"),
        &out.join("model.trace"),
        seed.wrapping_mul(7) + 3,
        rate,
        slow,
    );
}
