//! Events as the analysis holds them: decoded once by the trace's front (`feed`), 72 bytes
//! where a trace's are 152. The reorder window holds a second of trace time (close to two
//! million events on a busy machine), so its size is the diff's memory and its copies much of
//! the time. Dentry pointers and names are numbered per trace as they first appear: the
//! analysis then indexes dense tables by them instead of hashing pointers and name bytes again
//! at every question, and the window holds a 4-byte number where the trace holds 64 bytes of
//! name.
use foldhash::{HashMap, HashMapExt};
use tracer_common::{Probe, NAME_CAP};

use crate::{cache_line::hash_line, trace::Record};

/// A dentry pointer as numbered in its trace; 0 is the NULL pointer.
pub type Slot = u32;
/// A name (the bytes an event recorded) as numbered in its trace.
pub type NameNo = u32;

/// One event, compact. Field meanings are [`Event`]'s.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ev {
    pub ts_begin: u64,
    pub ts_end: u64,
    pub inode_begin: u64,
    pub inode_end: u64,
    pub dentry: Slot,
    pub parent: Slot,
    pub tid: u32,
    pub cpu: u32,
    pub seq_begin: u32,
    pub seq_end: u32,
    pub aux: u32,
    pub result: i32,
    pub name: NameNo,
    pub flags: u16,
    pub probe: u8,
}

const _: () = assert!(std::mem::size_of::<Ev>() == 72);

impl Ev {
    #[cfg(test)]
    pub const fn zeroed() -> Ev {
        Ev {
            ts_begin: 0,
            ts_end: 0,
            inode_begin: 0,
            inode_end: 0,
            dentry: 0,
            parent: 0,
            tid: 0,
            cpu: 0,
            seq_begin: 0,
            seq_end: 0,
            aux: 0,
            result: 0,
            name: 0,
            flags: 0,
            probe: 0,
        }
    }

    pub fn probe(&self) -> Option<Probe> {
        crate::codes::probe_of(self.probe)
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// The front's numbering of one trace's pointers and names. What it numbered since it was
/// last asked travels to the analysis with the events that use it.
pub struct Numbering {
    ptrs: HashMap<u64, Slot>,
    /// The pointers seen last, direct-mapped by a hash of the pointer: most events name a
    /// dentry and a parent seen moments ago, found here without probing `ptrs`.
    recent: Box<[(u64, Slot)]>,
    /// Names of up to 16 bytes (nearly all) by their bytes packed in two integers: no
    /// byte-string hashing or comparison call per event. A 24-byte entry: with the length
    /// beside a `u128` key it was 48, and the map's load missed the cache in the profile
    /// (the reorder window streams through it).
    short: HashMap<(u64, u64), NameNo>,
    /// The short names seen last, direct-mapped by a hash of their key: the key, and the
    /// number plus one (0: an empty line; every 16 bytes are some name's key, so no key can
    /// mark one). A hit costs about a tenth of the map's probe (callgrind).
    recent_names: Box<[(u64, u64, NameNo)]>,
    long: HashMap<Box<[u8]>, NameNo>,
    next_name: NameNo,
    /// The events seen last with a dentry and a short name, direct-mapped by a hash of the
    /// dentry pointer: a dentry's events mostly name the same parent and name, all three
    /// numbered by one line (its three look-ups were about half the numbering's
    /// instructions, callgrind). Numbers never change, so a line is right for as long as
    /// its pointers and name match.
    recent_events: Box<[Seen]>,
    /// Numbered since the last [`Numbering::take`], in number order.
    new: Tables,
}

/// A line of [`Numbering::recent_events`]: an event's dentry and parent pointers and short
/// name key, and their numbers. A dentry of 0 marks an empty line (a NULL dentry does not
/// take this way).
#[derive(Clone, Copy, Default)]
struct Seen {
    dentry: u64,
    parent: u64,
    name_key: (u64, u64),
    numbers: (Slot, Slot, NameNo),
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering {
            ptrs: HashMap::from_iter([(0, 0)]),
            // Pointer 0 is slot 0, so the empty entries say nothing wrong.
            recent: vec![(0, 0); RECENT].into_boxed_slice(),
            short: HashMap::new(),
            recent_names: vec![(0, 0, 0); RECENT_NAMES].into_boxed_slice(),
            long: HashMap::new(),
            next_name: 0,
            recent_events: vec![Seen::default(); RECENT_EVENTS].into_boxed_slice(),
            new: Tables {
                ptrs: vec![0],
                names: Vec::new(),
            },
        }
    }
}

impl Numbering {
    /// `rec` in compact form.
    #[cfg(test)]
    pub fn compact(&mut self, rec: &Record) -> Ev {
        let mut ev = Ev::default();
        self.compact_into(rec, &mut ev);
        ev
    }

    /// Writes `rec` in compact form into `out`, its pointers and name numbered: read from the
    /// chunk's bytes, with no whole [`tracer_common::Event`] in between, into the place the
    /// event is kept.
    #[inline(always)]
    pub fn compact_into(&mut self, rec: &Record, out: &mut Ev) {
        let (d, p) = (rec.dentry(), rec.parent());
        let bytes = rec.name_bytes();
        let (dentry, parent, name) = match short_key(rec.name_window(), bytes.len()) {
            Some(k) if d != 0 => {
                let line = hash_line(d, RECENT_EVENTS_BITS);
                match self.recent_events.get(line) {
                    Some(e) if e.dentry == d && e.parent == p && e.name_key == k => e.numbers,
                    _ => self.seen_anew(line, (d, p, k), bytes),
                }
            }
            Some(k) => (0, self.ptr(p), self.short_number(k, bytes)),
            None => (self.ptr(d), self.ptr(p), self.long_name(bytes)),
        };
        *out = Ev {
            ts_begin: rec.ts_begin(),
            ts_end: rec.ts_end(),
            inode_begin: rec.inode_begin(),
            inode_end: rec.inode_end(),
            dentry,
            parent,
            tid: rec.tid(),
            cpu: rec.cpu(),
            seq_begin: rec.seq_begin(),
            seq_end: rec.seq_end(),
            aux: rec.aux(),
            result: rec.result(),
            name,
            flags: rec.flags(),
            probe: rec.probe(),
        };
    }

    /// The numbers of an event's dentry `d`, parent `p` and short name (key `k`, bytes
    /// `bytes`) that line `line` of the recent events does not hold, numbered in that order
    /// (as for any other event), and kept on that line.
    #[inline(never)]
    fn seen_anew(
        &mut self,
        line: usize,
        (d, p, k): (u64, u64, (u64, u64)),
        bytes: &[u8],
    ) -> (Slot, Slot, NameNo) {
        let numbers = (self.ptr(d), self.ptr(p), self.short_number(k, bytes));
        if let Some(e) = self.recent_events.get_mut(line) {
            *e = Seen {
                dentry: d,
                parent: p,
                name_key: k,
                numbers,
            };
        }
        numbers
    }

    /// The number of the short name `bytes` (key `k`).
    #[inline(always)]
    fn short_number(&mut self, k: (u64, u64), bytes: &[u8]) -> NameNo {
        let line = name_line(k);
        match self.recent_names.get(line) {
            Some(&(a, b, n1)) if (a, b) == k && n1 != 0 => n1 - 1,
            _ => self.short_name(k, line, bytes),
        }
    }

    /// The number of the short name `bytes` (key `k`, cache line `line`) when the cache of
    /// recent names does not hold it, given now if it has none.
    #[inline(never)]
    fn short_name(&mut self, k: (u64, u64), line: usize, bytes: &[u8]) -> NameNo {
        let n = match self.short.get(&k) {
            Some(&n) => n,
            None => {
                let n = self.new_name(bytes);
                self.short.insert(k, n);
                n
            }
        };
        if let Some(e) = self.recent_names.get_mut(line) {
            *e = (k.0, k.1, n + 1);
        }
        n
    }

    #[inline(never)]
    fn long_name(&mut self, bytes: &[u8]) -> NameNo {
        if let Some(&n) = self.long.get(bytes) {
            return n;
        }
        let n = self.new_name(bytes);
        self.long.insert(Box::from(bytes), n);
        n
    }

    fn new_name(&mut self, bytes: &[u8]) -> NameNo {
        let n = self.next_name;
        self.next_name += 1;
        self.new.names.push(Box::from(bytes));
        n
    }

    /// The number of pointer `p`, given now if it has none. Inlined: as a closure called
    /// twice it was a call with its own prologue and epilogue, about 20 instructions of the 60
    /// it cost (callgrind).
    #[inline(always)]
    fn ptr(&mut self, p: u64) -> Slot {
        // NULL is slot 0 in every trace: no cache line to read for an operation's pointers.
        if p == 0 {
            return 0;
        }
        let line = hash_line(p, RECENT_BITS);
        if let Some(&(_, s)) = self.recent.get(line).filter(|(q, _)| *q == p) {
            return s;
        }
        let next = self.ptrs.len() as Slot;
        let s = *self.ptrs.entry(p).or_insert_with(|| {
            self.new.ptrs.push(p);
            next
        });
        if let Some(e) = self.recent.get_mut(line) {
            *e = (p, s);
        }
        s
    }

    /// What was numbered since the last call.
    pub fn take(&mut self) -> Tables {
        std::mem::take(&mut self.new)
    }
}

/// Lines of [`Numbering`]'s cache of recent pointers.
const RECENT_BITS: u32 = 12;

const RECENT: usize = 1 << RECENT_BITS;

/// Lines of [`Numbering`]'s cache of recent events (4,096 of 48 bytes: 192 KB).
const RECENT_EVENTS_BITS: u32 = 12;
const RECENT_EVENTS: usize = 1 << RECENT_EVENTS_BITS;

/// Lines of [`Numbering`]'s cache of recent short names (96 KB). With 1,024 lines (24 KB), the
/// bench's 1,032 names missed on 18 % of events, each miss a probe of the map (about 70
/// instructions and its cache misses); with 4,096, 6 %, for 11 % more first-level misses in
/// the numbering (cachegrind, 1 M a side).
const RECENT_NAMES: usize = 1 << 12;

/// The line of [`Numbering`]'s name cache for short name key `k`.
#[inline(always)]
fn name_line(k: (u64, u64)) -> usize {
    let h = (k.0 ^ k.1.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - RECENT_NAMES.trailing_zeros())) as usize
}

/// A name of up to 16 bytes as two integers: the first `len` bytes of the name's window (the
/// rest masked off: what follows the name is not part of it). The length is not kept:
/// a name whose last byte is not NUL has a non-zero byte where any shorter one has zeros,
/// so only names ending in NUL (none from a kernel) could collide, and they are left out.
fn short_key(name: &[u8; NAME_CAP], len: usize) -> Option<(u64, u64)> {
    if len > 16 || (len > 0 && name.get(len - 1) == Some(&0)) {
        return None;
    }
    let mut first = [0u8; 16];
    first.copy_from_slice(&name[..16]);
    let key = u128::from_le_bytes(first) & SHORT_MASKS.get(len).copied().unwrap_or(0);
    Some((key as u64, (key >> 64) as u64))
}

/// Per length up to 16, the mask of a name's bytes in its key: a load, where the shift that
/// made it was a dozen instructions an event (callgrind).
const SHORT_MASKS: [u128; 17] = {
    let mut masks = [0u128; 17];
    let mut len = 1;
    while len <= 16 {
        masks[len] = u128::MAX >> (8 * (16 - len));
        len += 1;
    }
    masks
};

/// Numbers to what they stand for: by [`Slot`] the pointer, by [`NameNo`] the name bytes.
#[derive(Default)]
pub struct Tables {
    pub ptrs: Vec<u64>,
    pub names: Vec<Box<[u8]>>,
}

impl Tables {
    pub fn extend(&mut self, more: Tables) {
        self.ptrs.extend(more.ptrs);
        self.names.extend(more.names);
    }

    pub fn ptr(&self, s: Slot) -> u64 {
        self.ptrs.get(s as usize).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::Event;

    #[test]
    fn pointers_and_names_are_numbered_once_and_travel_in_order() {
        let mut n = Numbering::default();
        let mut ev = Event::zeroed();
        ev.dentry = 0xa0;
        ev.parent = 0xb0;
        ev.seq_end = 7;
        ev.set_name(b"f1");
        let a = n.compact(&Record::of_event(&ev));
        ev.dentry = 0xb0;
        ev.parent = 0;
        ev.set_name(b"d0");
        let b = n.compact(&Record::of_event(&ev));
        let c = n.compact(&Record::of_event(&ev));
        assert_eq!((a.dentry, a.parent, a.name, a.seq_end), (1, 2, 0, 7));
        assert_eq!((b.dentry, b.parent, b.name), (2, 0, 1));
        assert_eq!((c.dentry, c.name), (b.dentry, b.name));
        let mut t = Tables::default();
        t.extend(n.take());
        assert_eq!(t.ptrs, vec![0, 0xa0, 0xb0]);
        assert_eq!(t.names, vec![Box::from(&b"f1"[..]), Box::from(&b"d0"[..])]);
        ev.dentry = 0xc0;
        ev.set_name(b"f1");
        let d = n.compact(&Record::of_event(&ev));
        t.extend(n.take());
        assert_eq!((d.dentry, d.name), (3, 0));
        // Names past 16 bytes, and short names that differ only by length (trailing NULs),
        // are numbered apart.
        let long = b"a-name-longer-than-sixteen-bytes";
        for (bytes, want) in [
            (&long[..], 2),
            (&b"f1\0"[..], 3),
            (&long[..], 2),
            (&b"f1"[..], 0),
            (&long[..20], 4),
            // The empty name, NULs at the end and at 16 bytes: each its own number.
            (&b""[..], 5),
            (&b"f1\0\0"[..], 6),
            (&b"0123456789abcdef"[..], 7),
            (&b"0123456789abcde\0"[..], 8),
            (&b"0123456789abcde"[..], 9),
            (&b"\0"[..], 10),
            (&b""[..], 5),
            (&b"0123456789abcdef"[..], 7),
            (&b"f1\0"[..], 3),
        ] {
            ev.set_name(bytes);
            assert_eq!(n.compact(&Record::of_event(&ev)).name, want, "{bytes:?}");
        }
        // Bytes after the name in the event's field are not part of it.
        ev.set_name(b"f1");
        ev.name[5] = 0x7f;
        assert_eq!(n.compact(&Record::of_event(&ev)).name, 0);
        t.extend(n.take());
        assert_eq!(&*t.names[2], &long[..]);
        // More pointers than the cache has lines, seen twice: each keeps its number.
        let first: Vec<Slot> = (0..3 * RECENT as u64)
            .map(|i| {
                ev.dentry = 0x1000 + i * 64;
                n.compact(&Record::of_event(&ev)).dentry
            })
            .collect();
        for (i, s) in first.iter().enumerate() {
            ev.dentry = 0x1000 + i as u64 * 64;
            assert_eq!(n.compact(&Record::of_event(&ev)).dentry, *s);
        }
        // More short names than the name cache has lines, seen twice: each keeps its number.
        let names: Vec<NameNo> = (0..3 * RECENT_NAMES)
            .map(|i| {
                ev.set_name(format!("m{i}").as_bytes());
                n.compact(&Record::of_event(&ev)).name
            })
            .collect();
        for (i, want) in names.iter().enumerate() {
            ev.set_name(format!("m{i}").as_bytes());
            assert_eq!(n.compact(&Record::of_event(&ev)).name, *want);
        }
        assert_eq!(names.windows(2).filter(|p| p[1] != p[0] + 1).count(), 0);
        t.extend(n.take());
        assert_eq!(t.ptr(first[5]), 0x1000 + 5 * 64);
        assert_eq!(&*t.names[3], b"f1\0");
        assert_eq!(t.ptr(d.dentry), 0xc0);
        assert_eq!(t.ptr(0), 0);
    }

    /// A dentry's numbers come from its line of recent events only while the line names the
    /// same parent and name: events moved to other parents and renamed (the line stale), on
    /// dentries sharing lines, NULL dentries and long names between them, number every
    /// pointer and name as first seen, in order (dentry, parent, name), as a plain map does.
    #[test]
    fn recent_events_give_the_numbers_a_map_gives() {
        let mut rnd = crate::test_rng::xorshift(41u64);
        let mut n = Numbering::default();
        let (mut ptrs, mut names) = (vec![0u64], Vec::<Vec<u8>>::new());
        let number = |v: &mut Vec<u64>, p: u64| match v.iter().position(|&q| q == p) {
            Some(i) => i as Slot,
            None => {
                v.push(p);
                (v.len() - 1) as Slot
            }
        };
        // Few dentries and lines: 64 dentries on 4,096 lines, some on one line.
        let line_of = |d: u64| hash_line(d, RECENT_EVENTS_BITS);
        let mut dentries: Vec<u64> = (1..40u64).map(|i| i * 64).collect();
        let first = line_of(dentries[0]);
        dentries.extend(
            (1u64..)
                .map(|i| i * 4096 + 8)
                .filter(|d| line_of(*d) == first)
                .take(3),
        );
        let mut ev = Event::zeroed();
        for _ in 0..20_000 {
            ev.dentry = match rnd(8) {
                0 => 0,
                _ => dentries[rnd(dentries.len() as u64) as usize],
            };
            ev.parent = [0, 0x10, 0x20, 0x30][rnd(4) as usize];
            let name = match rnd(20) {
                0 => b"a-name-longer-than-sixteen-bytes".to_vec(),
                i => format!("n{}", i % 7 + rnd(2)).into_bytes(),
            };
            ev.set_name(&name);
            let got = n.compact(&Record::of_event(&ev));
            let want_d = number(&mut ptrs, ev.dentry);
            let want_p = number(&mut ptrs, ev.parent);
            let want_n = match names.iter().position(|m| *m == name) {
                Some(i) => i as NameNo,
                None => {
                    names.push(name.clone());
                    (names.len() - 1) as NameNo
                }
            };
            assert_eq!((got.dentry, got.parent, got.name), (want_d, want_p, want_n));
        }
        let mut t = Tables::default();
        t.extend(n.take());
        assert_eq!(t.ptrs, ptrs);
        assert_eq!(t.names.len(), names.len());
    }

    /// A NULL pointer is slot 0 without the cache of recent pointers: the line it would take
    /// keeps the pointer there, which is found again from it.
    #[test]
    fn null_pointers_leave_the_recent_pointers_as_they_were() {
        let mut n = Numbering::default();
        let line0 = |p: u64| hash_line(p, RECENT_BITS) == 0;
        let p = (1u64..)
            .map(|i| i * 64)
            .find(|p| line0(*p))
            .expect("a pointer on line 0");
        let mut ev = Event::zeroed();
        ev.dentry = p;
        let slot = n.compact(&Record::of_event(&ev)).dentry;
        assert_eq!(n.recent[0], (p, slot));
        ev.dentry = 0;
        ev.parent = 0;
        let null = n.compact(&Record::of_event(&ev));
        assert_eq!((null.dentry, null.parent), (0, 0));
        assert_eq!(n.recent[0], (p, slot));
        ev.parent = p;
        assert_eq!(n.compact(&Record::of_event(&ev)).parent, slot);
        let mut t = Tables::default();
        t.extend(n.take());
        assert_eq!(t.ptrs, vec![0, p]);
    }

    /// Short names on one line of the name cache whose keys differ only past their first 8
    /// bytes keep their own numbers (a cache hit compares the whole key).
    #[test]
    fn names_of_one_cache_line_differing_past_eight_bytes_keep_their_numbers() {
        let key = |b: &[u8]| {
            let mut w = [0; NAME_CAP];
            w[..b.len()].copy_from_slice(b);
            short_key(&w, b.len()).expect("a short name")
        };
        let line = name_line(key(b"abcdefgh0"));
        let names: Vec<Vec<u8>> = (0u64..)
            .map(|i| format!("abcdefgh{i:x}").into_bytes())
            .filter(|b| name_line(key(b)) == line)
            .take(4)
            .collect();
        let mut n = Numbering::default();
        let mut ev = Event::zeroed();
        for _ in 0..3 {
            for (want, b) in names.iter().enumerate() {
                ev.set_name(b);
                assert_eq!(n.compact(&Record::of_event(&ev)).name, want as NameNo);
            }
        }
    }
}
