//! SHA-256 of files, remembered by (size, mtime, ctime, inode) like git's index, so a warm run
//! does not re-read the tracer, busybox and the kernel to find that nothing changed. xtask runs
//! unoptimized, where hashing 30 MB costs about a second.
use std::{
    collections::BTreeMap,
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// What identifies a file's version without reading it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
        }
    }
}

/// The memo, stored as text lines: `sha256 size mtime_ns ctime_ns ino path`.
pub struct Digests {
    file: PathBuf,
    known: BTreeMap<PathBuf, (Stamp, String)>,
    changed: bool,
}

impl Digests {
    pub fn load(file: &Path) -> Digests {
        let text = fs::read_to_string(file).unwrap_or_default();
        let known = text
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(6, ' ');
                let sum = f.next()?.to_owned();
                let stamp = Stamp {
                    size: f.next()?.parse().ok()?,
                    mtime_ns: f.next()?.parse().ok()?,
                    ctime_ns: f.next()?.parse().ok()?,
                    ino: f.next()?.parse().ok()?,
                };
                Some((PathBuf::from(f.next()?), (stamp, sum)))
            })
            .collect();
        Digests {
            file: file.to_owned(),
            known,
            changed: false,
        }
    }

    /// The file's SHA-256 (hex), read only when the file changed since it was last hashed.
    pub fn of(&mut self, path: &Path) -> Result<String> {
        let path = fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
        let meta = fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let stamp = Stamp::of(&meta);
        if let Some((s, sum)) = self.known.get(&path) {
            if *s == stamp {
                return Ok(sum.clone());
            }
        }
        let mut h = Sha256::new();
        let mut f = fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
        let sum = hex(&h.finalize());
        self.known.insert(path, (stamp, sum.clone()));
        self.changed = true;
        Ok(sum)
    }

    /// Writes the memo back; losing it only costs the next run some hashing.
    pub fn save(&self) {
        if !self.changed {
            return;
        }
        let mut text = String::new();
        for (p, (s, sum)) in &self.known {
            if p.exists() {
                text.push_str(&format!(
                    "{sum} {} {} {} {} {}\n",
                    s.size,
                    s.mtime_ns,
                    s.ctime_ns,
                    s.ino,
                    p.display()
                ));
            }
        }
        let tmp = self.file.with_extension("tmp");
        if fs::write(&tmp, text).is_ok() {
            let _ = fs::rename(&tmp, &self.file);
        }
    }
}

/// Lower-case hex of a digest, as sha256sum and apt's indexes print it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_notices_changes() {
        let d = std::env::temp_dir().join(format!("xtask-vm-digest-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        let f = d.join("a file");
        fs::write(&f, "one").expect("write");
        let memo = d.join("digests");
        let mut ds = Digests::load(&memo);
        let one = ds.of(&f).expect("digest");
        assert_eq!(
            one,
            "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"
        );
        ds.save();
        let mut again = Digests::load(&memo);
        assert_eq!(again.known.len(), 1);
        assert_eq!(again.of(&f).expect("digest"), one);
        assert!(!again.changed);
        fs::write(&f, "two!").expect("write");
        assert_ne!(again.of(&f).expect("digest"), one);
        let _ = fs::remove_dir_all(&d);
    }
}
