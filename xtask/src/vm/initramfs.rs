//! The guest's initramfs: a list of entries, a content key over them, and an uncompressed
//! `newc` cpio archive written only when no archive with that key is cached. Uncompressed because
//! unpacking is the kernel's work, and under TCG that costs more than reading a bigger file.
use std::{
    collections::BTreeMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{
    digest::{hex, Digests},
    modules::{self, Codec},
};

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
    /// A kernel module, decompressed on the way in.
    Module(PathBuf, Codec),
}

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File { source: Source, mode: u32 },
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

/// Entries by path (relative, no leading `/`); parents are added as directories.
#[derive(Default)]
pub struct Initramfs {
    entries: BTreeMap<String, Kind>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Initramfs {
    pub fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entries.entry(path.to_owned()).or_insert(Kind::Dir);
    }

    fn parent_of(&mut self, path: &str) -> String {
        let path = path.trim_matches('/').to_owned();
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        path
    }

    pub fn file(&mut self, path: &str, source: Source, mode: u32) {
        let path = self.parent_of(path);
        self.entries.insert(path, Kind::File { source, mode });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        let path = self.parent_of(path);
        self.entries.insert(path, Kind::Symlink(target.to_owned()));
    }

    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32) {
        let path = self.parent_of(path);
        self.entries.insert(path, Kind::CharDev { major, minor });
    }

    /// Is there an entry at `path`?
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path.trim_matches('/'))
    }

    /// Hash of everything that ends up in the archive: paths, kinds, modes and the bytes of every
    /// source (a module's compressed bytes: the decompressed ones follow from them).
    pub fn key(&self, digests: &mut Digests) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"xtask-vm initramfs v1\n");
        for (path, kind) in &self.entries {
            h.update(path.as_bytes());
            h.update([0]);
            match kind {
                Kind::Dir => h.update(b"d"),
                Kind::Symlink(t) => {
                    h.update(b"l");
                    h.update(t.as_bytes());
                }
                Kind::CharDev { major, minor } => h.update(format!("c{major}:{minor}")),
                Kind::File { source, mode } => {
                    h.update(format!("f{mode:o}"));
                    match source {
                        Source::Bytes(b) => h.update(b),
                        Source::File(p) | Source::Module(p, _) => {
                            if let Source::Module(_, codec) = source {
                                h.update(format!("{codec:?}"));
                            }
                            h.update(digests.of(p)?);
                        }
                    }
                }
            }
            h.update([0]);
        }
        Ok(hex(&h.finalize()))
    }

    /// Writes the archive.
    pub fn write(&self, w: &mut impl Write) -> Result<()> {
        let mut cpio = Cpio {
            w,
            ino: 1,
            written: 0,
        };
        for (path, kind) in &self.entries {
            match kind {
                Kind::Dir => cpio.entry(path, S_IFDIR | 0o755, (0, 0), &[])?,
                Kind::Symlink(t) => cpio.entry(path, S_IFLNK | 0o777, (0, 0), t.as_bytes())?,
                Kind::CharDev { major, minor } => {
                    cpio.entry(path, S_IFCHR | 0o600, (*major, *minor), &[])?
                }
                Kind::File { source, mode } => {
                    let bytes = match source {
                        Source::Bytes(b) => b.clone(),
                        Source::File(p) => {
                            fs::read(p).with_context(|| format!("reading {}", p.display()))?
                        }
                        Source::Module(p, codec) => modules::read_module(p, *codec)?,
                    };
                    cpio.entry(path, S_IFREG | (mode & 0o7777), (0, 0), &bytes)?
                }
            }
        }
        cpio.entry("TRAILER!!!", 0, (0, 0), &[])?;
        Ok(())
    }

    /// The archive for these entries from `cache_dir`, written there first when missing. Returns
    /// its path and whether it was built now. Keeps the few most recently used archives.
    pub fn cached(&self, cache_dir: &Path, digests: &mut Digests) -> Result<(PathBuf, bool)> {
        const KEEP: usize = 4;
        let key = self.key(digests)?;
        fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        let path = cache_dir.join(format!("{key}.cpio"));
        if path.is_file() {
            // Mark it used so pruning keeps it.
            if let Ok(f) = fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
            return Ok((path, false));
        }
        let tmp = cache_dir.join(format!("{key}.cpio.tmp"));
        let mut f = io::BufWriter::new(
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
        );
        self.write(&mut f)?;
        f.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
        prune(cache_dir, KEEP);
        Ok((path, true))
    }
}

/// Removes all but the `keep` newest archives; a failure only leaves more files behind.
fn prune(dir: &Path, keep: usize) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut found: Vec<(SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "cpio"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    found.sort();
    let excess = found.len().saturating_sub(keep);
    for (_, p) in found.into_iter().take(excess) {
        let _ = fs::remove_file(p);
    }
}

/// The SVR4 "newc" format the kernel unpacks (Documentation/driver-api/early-userspace).
struct Cpio<'a, W: Write> {
    w: &'a mut W,
    ino: u32,
    written: u64,
}

impl<W: Write> Cpio<'_, W> {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result<()> {
        let nlink = if mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        let size = u32::try_from(data.len()).context("a file over 4 GiB in the initramfs")?;
        let namesize = name.len() + 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, so equal inputs give equal archives
            size,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            namesize,
            0, // check
        );
        self.ino += 1;
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Initramfs {
        let mut i = Initramfs::default();
        i.file("bin/busybox", Source::Bytes(b"BB".to_vec()), 0o755);
        i.symlink("bin/sh", "busybox");
        i.char_dev("dev/console", 5, 1);
        i.file(
            "etc/xtask-vm/args",
            Source::Bytes(b"set --\n".to_vec()),
            0o644,
        );
        i
    }

    #[test]
    fn parents_come_first() {
        let i = sample();
        let paths: Vec<&str> = i.entries.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "etc",
                "etc/xtask-vm",
                "etc/xtask-vm/args"
            ]
        );
    }

    #[test]
    fn key_follows_content() {
        let memo = std::env::temp_dir().join(format!("xtask-vm-keys-{}", std::process::id()));
        let mut d = Digests::load(&memo);
        let a = sample().key(&mut d).expect("key");
        assert_eq!(a, sample().key(&mut d).expect("key"));
        let mut b = sample();
        b.file(
            "etc/xtask-vm/args",
            Source::Bytes(b"set -- verify\n".to_vec()),
            0o644,
        );
        assert_ne!(a, b.key(&mut d).expect("key"));
        let mut c = sample();
        c.file("bin/busybox", Source::Bytes(b"BB".to_vec()), 0o700);
        assert_ne!(a, c.key(&mut d).expect("key"));
        // A file source: its bytes count, not its name or timestamps.
        let f = memo.with_extension("bin");
        fs::write(&f, "BB").expect("write");
        let mut e = sample();
        e.file("bin/busybox", Source::File(f.clone()), 0o755);
        let with_file = e.key(&mut d).expect("key");
        fs::write(&f, "BC").expect("write");
        assert_ne!(with_file, e.key(&mut d).expect("key"));
        let _ = fs::remove_file(&f);
    }

    #[test]
    fn writes_newc() {
        let mut out = Vec::new();
        sample().write(&mut out).expect("write");
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        // The header of bin/busybox: mode 100755, size 2, name "bin/busybox\0" (12 bytes).
        let at = out
            .windows(11)
            .position(|w| w == b"bin/busybox")
            .expect("name")
            - 110;
        let h = std::str::from_utf8(&out[at..at + 110]).expect("ascii");
        assert_eq!(&h[14..22], "000081ed");
        assert_eq!(&h[54..62], "00000002");
        assert_eq!(&h[94..102], "0000000c");
        assert_eq!(&out[at + 110..at + 122], b"bin/busybox\0");
        // Data starts 4-aligned after the 110-byte header and the name.
        assert_eq!(&out[at + 124..at + 126], b"BB");
        // /dev/console is 5:1.
        let at = out
            .windows(11)
            .position(|w| w == b"dev/console")
            .expect("name")
            - 110;
        let h = std::str::from_utf8(&out[at..at + 110]).expect("ascii");
        assert_eq!(&h[78..94], "0000000500000001");
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
