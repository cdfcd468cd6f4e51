//! The two facts the harness needs from ELF files (64-bit little endian only: x86_64), read with
//! the `object` crate: is a binary statically linked, and what a kernel module's `.modinfo` says.
use object::{
    elf::{PT_INTERP, PT_LOAD, PT_NOTE},
    read::elf::{ElfFile64, ProgramHeader},
    LittleEndian, Object, ObjectSection,
};

type Elf<'a> = ElfFile64<'a, LittleEndian>;

fn parse(b: &[u8]) -> Result<Elf<'_>, &'static str> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file");
    }
    Elf::parse(b).map_err(|_| "not a well-formed 64-bit little-endian ELF file")
}

/// Does the binary name a program interpreter (PT_INTERP), i.e. need the dynamic loader?
pub fn is_dynamic(b: &[u8]) -> Result<bool, &'static str> {
    let f = parse(b)?;
    let e = f.endian();
    Ok(f.elf_program_headers()
        .iter()
        .any(|p| p.p_type(e) == PT_INTERP))
}

/// Is this a complete kernel ELF that QEMU can start at its PVH entry point
/// (`XEN_ELFNOTE_PHYS32_ENTRY`, CONFIG_PVH), skipping the bzImage's decompressor?
pub fn is_pvh_kernel(b: &[u8]) -> bool {
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let Ok(f) = parse(b) else {
        return false;
    };
    let e = f.endian();
    let segs = f.elf_program_headers();
    let complete = segs
        .iter()
        .filter(|p| p.p_type(e) == PT_LOAD)
        .all(|p| p.data(e, b).is_ok());
    let has_entry = segs
        .iter()
        .filter(|p| p.p_type(e) == PT_NOTE)
        .filter_map(|p| p.notes(e, b).ok().flatten())
        .any(|mut notes| {
            while let Ok(Some(n)) = notes.next() {
                if n.name() == b"Xen" && n.n_type(e) == XEN_ELFNOTE_PHYS32_ENTRY {
                    return true;
                }
            }
            false
        });
    complete && has_entry
}

/// The `key=value` strings of a kernel module's `.modinfo` section, in file order.
pub fn modinfo(b: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    let f = parse(b)?;
    let data = f
        .section_by_name(".modinfo")
        .ok_or("no .modinfo section (not a kernel module)")?
        .data()
        .map_err(|_| "truncated .modinfo section")?;
    Ok(data
        .split(|&c| c == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect())
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
        b[6] = 1;
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
        for (i, (name, off, size)) in sections.into_iter().enumerate() {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&(name as u32).to_le_bytes());
            // SHT_STRTAB for the names, SHT_PROGBITS for .modinfo.
            let kind: u32 = [0, 3, 1][i];
            h[4..8].copy_from_slice(&kind.to_le_bytes());
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
        b[6] = 1;
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
        let load = (PT_LOAD, vec![0x90; 16]);
        assert_eq!(
            is_dynamic(&fake_exec(std::slice::from_ref(&load))),
            Ok(false)
        );
        let interp = (PT_INTERP, b"/lib64/ld-linux-x86-64.so.2\0".to_vec());
        assert_eq!(is_dynamic(&fake_exec(&[load, interp])), Ok(true));
        assert!(is_dynamic(b"#!/bin/sh\n").is_err());
    }

    /// A kernel ELF with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY).
    pub fn fake_pvh_kernel() -> Vec<u8> {
        let mut notes = note(b"Xen\0", 6, b"linux\0");
        notes.extend(note(b"Xen\0", 18, &0x100_0000u32.to_le_bytes()));
        fake_exec(&[(PT_LOAD, vec![0x90; 64]), (PT_NOTE, notes)])
    }

    #[test]
    fn finds_the_pvh_entry_note() {
        let load = (PT_LOAD, vec![0x90; 64]);
        let k = fake_pvh_kernel();
        assert!(is_pvh_kernel(&k));
        // Cut short: the PT_LOAD data is incomplete.
        assert!(!is_pvh_kernel(&k[..100]));
        let other = fake_exec(&[load, (PT_NOTE, note(b"GNU\0", 18, &[0; 4]))]);
        assert!(!is_pvh_kernel(&other));
    }
}
