//! The backing file system: what exists "on disk", independent of the dcache. A lookup that
//! misses the dcache asks it (`i_op->lookup`), and namespace operations change it before they
//! update the dcache, as a real file system's inode operations do.

use crate::dentry::InlineName;
use crate::error::Errno;
use crate::sync::Mutex;

/// Which kind of file system the model stands for. The dcache behaves differently for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// tmpfs/shmem: `simple_lookup` installs `simple_dentry_operations`, whose `d_delete` is
    /// `always_delete_dentry`, so a dentry is killed on its last `dput` and negative dentries are
    /// never kept; `shmem_mknod` pins every positive dentry with an extra `dget`, so the shrinker
    /// never frees a tmpfs file's dentry (the dcache is tmpfs's only directory structure).
    Tmpfs,
    /// A disk file system (ext4, minix): unused dentries, positive and negative, stay cached on
    /// the LRU until the shrinker prunes them; a later lookup reads the name back from disk.
    Disk,
}

impl FsKind {
    /// `DCACHE_OP_DELETE` with `always_delete_dentry`: `retain_dentry()` says no.
    pub fn deletes_on_last_dput(self) -> bool {
        self == FsKind::Tmpfs
    }

    /// Positive dentries hold an extra reference for as long as the name exists.
    pub fn pins_positive(self) -> bool {
        self == FsKind::Tmpfs
    }
}

/// What an inode is; the dcache mirrors it in `d_flags`' type bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InodeKind {
    File,
    Dir,
}

struct Inode {
    kind: InodeKind,
    /// Looked up on every dcache miss: hashed (only readdir wants them in order, and sorts),
    /// short names kept without an allocation.
    entries: foldhash::HashMap<InlineName, u64>,
}

struct Table {
    /// Looked up several times per syscall: foldhash, not SipHash (nothing iterates it).
    inodes: foldhash::HashMap<u64, Inode>,
    next_ino: u64,
}

/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;

pub(crate) struct ModelFs {
    pub(crate) kind: FsKind,
    table: Mutex<Table>,
}

impl ModelFs {
    pub(crate) fn new(kind: FsKind) -> ModelFs {
        let mut inodes = foldhash::HashMap::default();
        inodes.insert(
            ROOT_INO,
            Inode {
                kind: InodeKind::Dir,
                entries: foldhash::HashMap::default(),
            },
        );
        ModelFs {
            kind,
            table: Mutex::new(Table {
                inodes,
                next_ino: ROOT_INO + 1,
            }),
        }
    }

    /// `i_op->lookup` reading the directory: the inode `name` refers to, if any.
    pub(crate) fn lookup(&self, dir: u64, name: &[u8]) -> Option<(u64, InodeKind)> {
        let t = self.table.lock();
        let ino = *t.inodes.get(&dir)?.entries.get(name)?;
        t.inodes.get(&ino).map(|i| (ino, i.kind))
    }

    pub(crate) fn kind_of(&self, ino: u64) -> Option<InodeKind> {
        self.table.lock().inodes.get(&ino).map(|i| i.kind)
    }

    /// `i_op->create` / `i_op->mkdir`: a new inode linked at `dir/name`.
    pub(crate) fn create(&self, dir: u64, name: &[u8], kind: InodeKind) -> Result<u64, Errno> {
        let mut t = self.table.lock();
        let ino = t.next_ino;
        let d = t.inodes.get_mut(&dir).ok_or(Errno::ENOENT)?;
        if d.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        d.entries.insert(InlineName::from_slice(name), ino);
        t.next_ino += 1;
        t.inodes.insert(
            ino,
            Inode {
                kind,
                entries: foldhash::HashMap::default(),
            },
        );
        Ok(ino)
    }

    /// `i_op->unlink` / `i_op->rmdir`: removes `dir/name`; a directory must be empty.
    pub(crate) fn remove(&self, dir: u64, name: &[u8]) -> Result<(), Errno> {
        let mut t = self.table.lock();
        let ino = *t
            .inodes
            .get(&dir)
            .and_then(|d| d.entries.get(name))
            .ok_or(Errno::ENOENT)?;
        if t.inodes.get(&ino).is_some_and(|i| !i.entries.is_empty()) {
            return Err(Errno::ENOTEMPTY);
        }
        t.inodes.remove(&ino);
        if let Some(d) = t.inodes.get_mut(&dir) {
            d.entries.remove(name);
        }
        Ok(())
    }

    /// `i_op->rename`: moves `odir/oname` to `ndir/nname`, replacing (and dropping) a target.
    /// The caller has checked types; a directory target must be empty.
    pub(crate) fn rename(
        &self,
        odir: u64,
        oname: &[u8],
        ndir: u64,
        nname: &[u8],
    ) -> Result<(), Errno> {
        let mut t = self.table.lock();
        let ino = *t
            .inodes
            .get(&odir)
            .and_then(|d| d.entries.get(oname))
            .ok_or(Errno::ENOENT)?;
        let victim = t
            .inodes
            .get(&ndir)
            .and_then(|d| d.entries.get(nname))
            .copied();
        if let Some(v) = victim {
            if t.inodes.get(&v).is_some_and(|i| !i.entries.is_empty()) {
                return Err(Errno::ENOTEMPTY);
            }
            t.inodes.remove(&v);
        }
        if let Some(d) = t.inodes.get_mut(&odir) {
            d.entries.remove(oname);
        }
        let nd = t.inodes.get_mut(&ndir).ok_or(Errno::ENOENT)?;
        nd.entries.insert(InlineName::from_slice(nname), ino);
        Ok(())
    }

    /// `i_op->rename` with `RENAME_EXCHANGE`: `adir/aname` and `bdir/bname`, both existing,
    /// swap the inodes they name.
    pub(crate) fn exchange(
        &self,
        adir: u64,
        aname: &[u8],
        bdir: u64,
        bname: &[u8],
    ) -> Result<(), Errno> {
        let mut t = self.table.lock();
        let entry = |t: &Table, dir: u64, name: &[u8]| {
            t.inodes
                .get(&dir)
                .and_then(|d| d.entries.get(name))
                .copied()
                .ok_or(Errno::ENOENT)
        };
        let a = entry(&t, adir, aname)?;
        let b = entry(&t, bdir, bname)?;
        t.inodes
            .get_mut(&adir)
            .ok_or(Errno::ENOENT)?
            .entries
            .insert(InlineName::from_slice(aname), b);
        t.inodes
            .get_mut(&bdir)
            .ok_or(Errno::ENOENT)?
            .entries
            .insert(InlineName::from_slice(bname), a);
        Ok(())
    }

    /// `iterate_shared`: the names in a directory, sorted.
    pub(crate) fn readdir(&self, dir: u64) -> Result<Vec<String>, Errno> {
        let t = self.table.lock();
        let d = t.inodes.get(&dir).ok_or(Errno::ENOENT)?;
        if d.kind != InodeKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let mut names: Vec<&[u8]> = d.entries.keys().map(|k| &k[..]).collect();
        names.sort_unstable();
        Ok(names
            .into_iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_changes() {
        let fs = ModelFs::new(FsKind::Disk);
        let d = fs.create(ROOT_INO, b"d", InodeKind::Dir).unwrap();
        let f = fs.create(d, b"f", InodeKind::File).unwrap();
        assert_eq!(fs.create(d, b"f", InodeKind::File), Err(Errno::EEXIST));
        assert_eq!(fs.lookup(d, b"f"), Some((f, InodeKind::File)));
        assert_eq!(fs.remove(ROOT_INO, b"d"), Err(Errno::ENOTEMPTY));
        fs.rename(d, b"f", ROOT_INO, b"g").unwrap();
        assert_eq!(fs.lookup(d, b"f"), None);
        assert_eq!(fs.readdir(ROOT_INO).unwrap(), vec!["d", "g"]);
        fs.remove(ROOT_INO, b"d").unwrap();
        assert_eq!(fs.kind_of(d), None);
        assert_eq!(fs.readdir(f), Err(Errno::ENOTDIR));
    }

    /// The entries are hashed; readdir still lists them in byte order, long names included.
    #[test]
    fn readdir_lists_names_sorted() {
        let fs = ModelFs::new(FsKind::Disk);
        let long = "m".repeat(40);
        let mut names: Vec<String> = (0..50).rev().map(|i| format!("f{i}")).collect();
        names.push(long.clone());
        names.push("a".into());
        for n in &names {
            fs.create(ROOT_INO, n.as_bytes(), InodeKind::File).unwrap();
        }
        assert!(fs.lookup(ROOT_INO, long.as_bytes()).is_some());
        names.sort();
        assert_eq!(fs.readdir(ROOT_INO).unwrap(), names);
    }
}
