//! The two facts the harness needs from ELF files (64-bit little endian only: x86_64): is a
//! binary statically linked, and what a kernel module's `.modinfo` says.

/// Reads a little-endian integer of `N` bytes at `off`.
fn le<const N: usize>(b: &[u8], off: usize) -> Option<u64> {
    let s: [u8; N] = b.get(off..off.checked_add(N)?)?.try_into().ok()?;
    let mut v = 0u64;
    for (i, byte) in s.iter().enumerate() {
        v |= u64::from(*byte) << (8 * i);
    }
    Some(v)
}

fn check_ident(b: &[u8]) -> Result<(), &'static str> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file");
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little endian.
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file");
    }
    Ok(())
}

const PT_LOAD: u64 = 1;
const PT_INTERP: u64 = 3;
const PT_NOTE: u64 = 4;

/// (p_type, p_offset, p_filesz) of each program header.
fn segments(b: &[u8]) -> Result<Vec<(u64, usize, usize)>, &'static str> {
    check_ident(b)?;
    let bad = "truncated program headers";
    let phoff = le::<8>(b, 0x20).ok_or(bad)? as usize;
    let phentsize = le::<2>(b, 0x36).ok_or(bad)? as usize;
    let phnum = le::<2>(b, 0x38).ok_or(bad)? as usize;
    (0..phnum)
        .map(|i| {
            let h = phoff + i * phentsize;
            Ok((
                le::<4>(b, h).ok_or(bad)?,
                le::<8>(b, h + 8).ok_or(bad)? as usize,
                le::<8>(b, h + 32).ok_or(bad)? as usize,
            ))
        })
        .collect()
}

/// Does the binary name a program interpreter (PT_INTERP), i.e. need the dynamic loader?
pub fn is_dynamic(b: &[u8]) -> Result<bool, &'static str> {
    Ok(segments(b)?.iter().any(|s| s.0 == PT_INTERP))
}

/// Is this a complete kernel ELF that QEMU can start at its PVH entry point
/// (`XEN_ELFNOTE_PHYS32_ENTRY`, CONFIG_PVH), skipping the bzImage's decompressor?
pub fn is_pvh_kernel(b: &[u8]) -> bool {
    const XEN_ELFNOTE_PHYS32_ENTRY: u64 = 18;
    let Ok(segs) = segments(b) else {
        return false;
    };
    let complete = segs
        .iter()
        .filter(|s| s.0 == PT_LOAD)
        .all(|&(_, off, size)| off.checked_add(size).is_some_and(|end| end <= b.len()));
    let align4 = |n: usize| n.div_ceil(4) * 4;
    let has_entry = segs
        .iter()
        .filter(|s| s.0 == PT_NOTE)
        .any(|&(_, off, size)| {
            let Some(notes) = off.checked_add(size).and_then(|end| b.get(off..end)) else {
                return false;
            };
            let mut at = 0;
            while let (Some(namesz), Some(descsz), Some(kind)) = (
                le::<4>(notes, at),
                le::<4>(notes, at + 4),
                le::<4>(notes, at + 8),
            ) {
                let name = notes.get(at + 12..at + 12 + namesz as usize);
                if name == Some(b"Xen\0") && kind == XEN_ELFNOTE_PHYS32_ENTRY {
                    return true;
                }
                at += 12 + align4(namesz as usize) + align4(descsz as usize);
            }
            false
        });
    complete && has_entry
}

/// The `key=value` strings of a kernel module's `.modinfo` section, in file order.
pub fn modinfo(b: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    check_ident(b)?;
    let bad = "truncated section headers";
    let shoff = le::<8>(b, 0x28).ok_or(bad)? as usize;
    let shentsize = le::<2>(b, 0x3a).ok_or(bad)? as usize;
    let shnum = le::<2>(b, 0x3c).ok_or(bad)? as usize;
    let shstrndx = le::<2>(b, 0x3e).ok_or(bad)? as usize;
    let section = |i: usize| -> Option<(usize, &[u8])> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = le::<4>(b, h)? as usize;
        let off = le::<8>(b, h + 24)? as usize;
        let size = le::<8>(b, h + 32)? as usize;
        Some((name, b.get(off..off.checked_add(size)?)?))
    };
    let (_, names) = section(shstrndx).ok_or(bad)?;
    for i in 0..shnum {
        let (name, data) = section(i).ok_or(bad)?;
        let name = names.get(name..).unwrap_or_default();
        if name.starts_with(b".modinfo\0") {
            return Ok(data
                .split(|&c| c == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.to_owned()))
                })
                .collect());
        }
    }
    Err("no .modinfo section (not a kernel module)")
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A relocatable ELF64 with a `.modinfo` section holding `info` (NUL-separated strings).
    pub fn fake_module(info: &[&str]) -> Vec<u8> {
        let mut modinfo = Vec::new();
        for s in info {
            modinfo.extend_from_slice(s.as_bytes());
            modinfo.push(0);
        }
        let shstrtab = b"\0.shstrtab\0.modinfo\0".to_vec();
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        let modinfo_off = b.len();
        b.extend_from_slice(&modinfo);
        let strtab_off = b.len();
        b.extend_from_slice(&shstrtab);
        let shoff = b.len();
        // Section 0 is the null section.
        let sections = [
            (0usize, 0usize, 0usize),
            (1, strtab_off, shstrtab.len()),
            (11, modinfo_off, modinfo.len()),
        ];
        for (name, off, size) in sections {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&(name as u32).to_le_bytes());
            h[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            b.extend_from_slice(&h);
        }
        b[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        b[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        b
    }

    #[test]
    fn reads_modinfo() {
        let m = fake_module(&["license=GPL", "depends=jbd2,mbcache", "vermagic=6.1.0 SMP"]);
        let info = modinfo(&m).expect("modinfo");
        assert_eq!(
            info,
            vec![
                ("license".into(), "GPL".into()),
                ("depends".into(), "jbd2,mbcache".into()),
                ("vermagic".into(), "6.1.0 SMP".into()),
            ]
        );
        assert!(modinfo(b"not elf").is_err());
        assert!(modinfo(&m[..0x30]).is_err());
    }

    /// An executable with the given (p_type, data) segments, laid out after the headers.
    fn fake_exec(segs: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + segs.len() * 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        for (i, (kind, data)) in segs.iter().enumerate() {
            let h = 64 + i * 56;
            let off = b.len() as u64;
            b[h..h + 4].copy_from_slice(&kind.to_le_bytes());
            b[h + 8..h + 16].copy_from_slice(&off.to_le_bytes());
            b[h + 32..h + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            b.extend_from_slice(data);
        }
        b
    }

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n.extend_from_slice(desc);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n
    }

    #[test]
    fn tells_static_from_dynamic() {
        let load = (PT_LOAD as u32, vec![0x90; 16]);
        assert_eq!(
            is_dynamic(&fake_exec(std::slice::from_ref(&load))),
            Ok(false)
        );
        let interp = (PT_INTERP as u32, b"/lib64/ld-linux-x86-64.so.2\0".to_vec());
        assert_eq!(is_dynamic(&fake_exec(&[load, interp])), Ok(true));
        assert!(is_dynamic(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn finds_the_pvh_entry_note() {
        let load = (PT_LOAD as u32, vec![0x90; 64]);
        let mut notes = note(b"Xen\0", 6, b"linux\0");
        notes.extend(note(b"Xen\0", 18, &0x100_0000u32.to_le_bytes()));
        let k = fake_exec(&[load.clone(), (PT_NOTE as u32, notes)]);
        assert!(is_pvh_kernel(&k));
        // Cut short: the PT_LOAD data is incomplete.
        assert!(!is_pvh_kernel(&k[..100]));
        let other = fake_exec(&[load, (PT_NOTE as u32, note(b"GNU\0", 18, &[0; 4]))]);
        assert!(!is_pvh_kernel(&other));
    }
}
