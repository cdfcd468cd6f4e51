//! The x86 boot protocol header of a bzImage (Documentation/arch/x86/boot.rst): enough to tell a
//! bootable 64-bit kernel from any other file and to read its release string.
use std::{fs::File, io::Read, path::Path};

use anyhow::{bail, Context, Result};

/// The setup header and the version string it points to live in the first setup sectors.
const HEAD_BYTES: u64 = 64 * 1024;

/// Checks that `path` is an x86_64 bzImage; returns its release (`uname -r`) when the header
/// carries one.
pub fn check(path: &Path) -> Result<Option<String>> {
    let mut head = Vec::new();
    File::open(path)
        .with_context(|| format!("cannot open kernel image {}", path.display()))?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .with_context(|| format!("reading kernel image {}", path.display()))?;
    match parse(&head) {
        Ok(release) => Ok(release),
        Err(why) => bail!(
            "{} is not a bootable x86_64 kernel: {why}; give --kernel the bzImage \
             (arch/x86/boot/bzImage of a build, or /boot/vmlinuz-* of a distribution)",
            path.display()
        ),
    }
}

/// Where the compressed kernel (the decompressor's payload) sits in the image (protocol 2.08+).
pub fn payload(b: &[u8]) -> Option<std::ops::Range<usize>> {
    if parse(b).is_err() || u16_at(b, 0x206)? < 0x0208 {
        return None;
    }
    // setup_sects 0 means 4, for old boot loaders.
    let setup_sects = match *b.get(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let offset = u32::from_le_bytes(b.get(0x248..0x24c)?.try_into().ok()?) as usize;
    let length = u32::from_le_bytes(b.get(0x24c..0x250)?.try_into().ok()?) as usize;
    let start = (setup_sects + 1) * 512 + offset;
    let end = start.checked_add(length)?;
    (end <= b.len()).then_some(start..end)
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

/// Parses the boot header; the error says which check failed.
pub fn parse(head: &[u8]) -> Result<Option<String>, &'static str> {
    if head.len() < 0x240 {
        return Err("too short for a boot header");
    }
    if head[0x1fe..0x200] != [0x55, 0xaa] {
        return Err("no boot sector signature (0x55aa at 0x1fe)");
    }
    if &head[0x202..0x206] != b"HdrS" {
        return Err("no \"HdrS\" boot header magic (a vmlinux ELF or a compressed blob?)");
    }
    let version = u16_at(head, 0x206).ok_or("truncated header")?;
    const LOADED_HIGH: u8 = 1;
    if version < 0x0200 || head[0x211] & LOADED_HIGH == 0 {
        return Err("a zImage, not a bzImage");
    }
    // xloadflags exists from protocol 2.12 on; every kernel with BTF is newer than that.
    const XLF_KERNEL_64: u16 = 1;
    if version >= 0x020c && u16_at(head, 0x236).ok_or("truncated header")? & XLF_KERNEL_64 == 0 {
        return Err("a 32-bit kernel");
    }
    let ptr = u16_at(head, 0x20e).ok_or("truncated header")? as usize;
    if ptr == 0 {
        return Ok(None);
    }
    let text = head.get(ptr + 0x200..).unwrap_or_default();
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    let release = String::from_utf8_lossy(&text[..end])
        .split_whitespace()
        .next()
        .map(str::to_owned);
    Ok(release)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal header of a 64-bit bzImage whose version string is `version`.
    pub fn fake_bzimage(version: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000];
        b[0x1fe] = 0x55;
        b[0x1ff] = 0xaa;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        b[0x211] = 1;
        b[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
        let at = 0x800usize;
        b[0x20e..0x210].copy_from_slice(&((at - 0x200) as u16).to_le_bytes());
        b[at..at + version.len()].copy_from_slice(version.as_bytes());
        b
    }

    #[test]
    fn reads_release_of_a_bzimage() {
        let b = fake_bzimage("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        assert_eq!(parse(&b), Ok(Some("6.1.0-56-amd64".to_owned())));
    }

    #[test]
    fn rejects_other_files() {
        assert!(parse(b"\x7fELF").is_err());
        let mut elf = vec![0u8; 0x1000];
        elf[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(
            parse(&elf),
            Err("no boot sector signature (0x55aa at 0x1fe)")
        );
        let mut no_magic = fake_bzimage("x");
        no_magic[0x202] = b'X';
        assert!(parse(&no_magic).unwrap_err().contains("HdrS"));
        let mut zimage = fake_bzimage("x");
        zimage[0x211] = 0;
        assert_eq!(parse(&zimage), Err("a zImage, not a bzImage"));
        let mut i386 = fake_bzimage("x");
        i386[0x236] = 0;
        assert_eq!(parse(&i386), Err("a 32-bit kernel"));
    }

    #[test]
    fn finds_the_payload() {
        let mut b = fake_bzimage("x");
        b[0x1f1] = 1;
        b[0x248..0x24c].copy_from_slice(&0x10u32.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&0x20u32.to_le_bytes());
        assert_eq!(payload(&b), Some(0x410..0x430));
        b[0x24c..0x250].copy_from_slice(&0x10000u32.to_le_bytes());
        assert_eq!(payload(&b), None);
    }

    #[test]
    fn release_is_optional() {
        let mut b = fake_bzimage("x");
        b[0x20e] = 0;
        b[0x20f] = 0;
        assert_eq!(parse(&b), Ok(None));
    }
}
