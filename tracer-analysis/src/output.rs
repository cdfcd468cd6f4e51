//! Output files that appear whole or not at all: written to a temporary file in the target's
//! directory, synced, then renamed over the target. A run that fails or is killed leaves the
//! previous file (or none), never a partial one that reads as current; an output that is one of
//! the run's inputs is refused before anything is opened for writing. An output that exists and
//! is not a regular file (`/dev/null`, a FIFO, a terminal) is written in place: renaming over
//! it or removing it would replace a device node of the system with a file. An output that is a
//! symbolic link to a regular file replaces the file it names and the link stays (`/dev/stdout`
//! redirected to a file is such a link). An output made again from the run's inputs (a replay's
//! model trace) may skip the sync ([`Durability::Recreatable`]): still renamed into place whole,
//! but left to the kernel to write back.
use std::{
    fs::{File, OpenOptions, Permissions},
    io::{self, BufWriter, Write},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tempfile::TempPath;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: cannot create a temporary file beside it; check the directory exists and is writable", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: writing", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot replace it with the new output", path.display())]
    Rename {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot remove the stale output", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("output {} is the input {}: writing it would destroy the input; choose another output path", output.display(), input.display())]
    SameFile { output: PathBuf, input: PathBuf },
}

/// Whether a committed file reaches the disk before its name does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Synced, renamed, the directory synced: after a crash of the system the name holds the
    /// new file whole or the previous one. For what cannot be made again (a kernel recording,
    /// a report).
    Synced,
    /// Renamed without a sync: other processes, and a run that fails or is killed, still see
    /// the new file whole or the previous one, but after a crash of the system the name may
    /// hold a file whose data never reached the disk (empty, cut, or with zeroed blocks). For
    /// an output the run makes again, the same, from its inputs (a replay of a kernel trace in
    /// its timestamp order: the kernel trace stays); a trace's checksums and end mark make
    /// such a file read as corrupt or truncated, never as a whole trace. The writer then does
    /// not wait for the disk, and the writeback is left to the kernel's flusher threads; an
    /// error in that writeback (EIO, or a network file system's ENOSPC, reported only to a
    /// sync) is therefore not reported either: the file then reads as corrupt or truncated.
    Recreatable,
}

/// A file being written; [`AtomicFile::commit`] puts it in place, dropping it discards it
/// (what went to an output written in place is gone, as on any device or pipe).
pub struct AtomicFile {
    path: PathBuf,
    /// What the commit renames the temporary file over: `path`, or the file its link names.
    dest: PathBuf,
    /// The temporary file beside the output, or the output itself when it exists and is not
    /// a regular file.
    out: BufWriter<File>,
    /// The temporary file's path (removed when dropped); `None` when written in place.
    tmp: Option<TempPath>,
    durability: Durability,
}

/// How an output path is written.
enum Destination {
    /// In place: it exists and is not a regular file or a directory (symbolic links followed),
    /// or it is a link to a regular file whose path cannot be read back (then truncated).
    InPlace { truncate: bool },
    /// Beside this path, then renamed over it: the output's own path, or the regular file its
    /// symbolic link names.
    Replace(PathBuf),
}

fn destination(path: &Path) -> Destination {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => Destination::InPlace { truncate: false },
        Ok(m) if m.is_file() && path.is_symlink() => match std::fs::canonicalize(path) {
            Ok(real) => Destination::Replace(real),
            Err(_) => Destination::InPlace { truncate: true },
        },
        _ => Destination::Replace(path.to_path_buf()),
    }
}

impl AtomicFile {
    /// Starts writing `path` with permission bits `mode` (trace files are 0600: they hold
    /// file names and timings of the traced system), [`Durability::Synced`].
    pub fn create(path: &Path, mode: u32) -> Result<AtomicFile, OutputError> {
        AtomicFile::create_with(path, mode, Durability::Synced)
    }

    /// [`AtomicFile::create`] with the durability asked.
    pub fn create_with(
        path: &Path,
        mode: u32,
        durability: Durability,
    ) -> Result<AtomicFile, OutputError> {
        let dest = match destination(path) {
            Destination::InPlace { truncate } => {
                let f = OpenOptions::new()
                    .write(true)
                    .truncate(truncate)
                    .open(path)
                    .map_err(|source| OutputError::Write {
                        path: path.to_path_buf(),
                        source,
                    })?;
                return Ok(AtomicFile {
                    path: path.to_path_buf(),
                    dest: path.to_path_buf(),
                    out: BufWriter::with_capacity(1 << 20, f),
                    tmp: None,
                    durability,
                });
            }
            Destination::Replace(dest) => dest,
        };
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let stem = dest
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_string_lossy());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{stem}."))
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(|source| OutputError::Create {
                path: path.to_path_buf(),
                source,
            })?;
        let (file, tmp) = tmp.into_parts();
        Ok(AtomicFile {
            path: path.to_path_buf(),
            dest,
            out: BufWriter::with_capacity(1 << 20, file),
            tmp: Some(tmp),
            durability,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes all of `bytes`, naming the file in the error.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.out
            .write_all(bytes)
            .map_err(|source| OutputError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes all of `bytes` after what is buffered, without copying them into the buffer:
    /// for blocks as large as the buffer (a trace's chunks), the copy costs more than it saves.
    pub fn write_unbuffered(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_mut().write_all(bytes)
    }

    /// Flushes, syncs and renames the file into place, then syncs the directory so the rename
    /// survives a crash; [`Durability::Recreatable`]: flushes and renames. An output written in
    /// place is only flushed: a device or a pipe has nothing to sync or rename.
    pub fn commit(self) -> Result<(), OutputError> {
        let path = self.path.clone();
        let write_error = |source| OutputError::Write {
            path: path.clone(),
            source,
        };
        let file = self
            .out
            .into_inner()
            .map_err(|e| write_error(e.into_error()))?;
        let Some(tmp) = self.tmp else {
            return Ok(());
        };
        let synced = self.durability == Durability::Synced;
        if synced {
            file.sync_all().map_err(write_error)?;
            #[cfg(test)]
            tests::SYNCS.with(|n| n.set(n.get() + 1));
        }
        tmp.persist(&self.dest).map_err(|e| OutputError::Rename {
            path: path.clone(),
            source: e.error,
        })?;
        if let Some(dir) = synced
            .then_some(&self.dest)
            .and_then(|d| d.parent())
            .filter(|d| !d.as_os_str().is_empty())
        {
            // Best effort: some file systems refuse fsync on a directory; the data is synced.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
    let mut f = AtomicFile::create(path, mode)?;
    f.put(bytes)?;
    f.commit()
}

/// Refuses `output` when it names the same file as one of `inputs` (hard links and different
/// spellings included). Paths that do not exist yet are never the same.
pub fn refuse_same_file<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), OutputError> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(inp) = std::fs::metadata(input) {
            if inp.dev() == out.dev() && inp.ino() == out.ino() {
                return Err(OutputError::SameFile {
                    output: output.to_path_buf(),
                    input: input.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// Removes a previous run's output, so a failed run leaves no report that reads as current. An
/// output that is not a regular file (`/dev/null`, a FIFO) holds no previous report and stays;
/// through a symbolic link, the file it names is removed and the link stays.
pub fn remove_stale(path: &Path) -> Result<(), OutputError> {
    let Destination::Replace(stale) = destination(path) else {
        return Ok(());
    };
    match std::fs::remove_file(stale) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(OutputError::Remove {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Files synced by [`AtomicFile::commit`] on this test's thread.
        pub(crate) static SYNCS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// A recreatable output is renamed into place whole, with its mode, without a sync; the
    /// default one is synced (what a kernel recording and a report need).
    #[test]
    fn only_a_synced_output_is_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("model.trace");
        std::fs::write(&p, b"old").expect("write");
        let mut f = AtomicFile::create_with(&p, 0o600, Durability::Recreatable).expect("create");
        f.put(b"new").expect("write");
        f.commit().expect("commit");
        assert_eq!(
            SYNCS.with(|n| n.get()),
            0,
            "a recreatable output was synced"
        );
        assert_eq!(std::fs::read(&p).expect("read"), b"new");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.trace")]);
        write_atomic(&p, b"newer", 0o600).expect("write");
        assert_eq!(SYNCS.with(|n| n.get()), 1, "a synced output was not synced");
        assert_eq!(std::fs::read(&p).expect("read"), b"newer");
    }

    #[test]
    fn a_dropped_file_leaves_the_previous_one_and_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("report.json");
        std::fs::write(&p, b"old").expect("write");
        let mut f = AtomicFile::create(&p, 0o644).expect("create");
        f.put(b"partial").expect("write");
        drop(f);
        assert_eq!(std::fs::read(&p).expect("read"), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }

    /// `tracer diff --json /dev/null` (root) once deleted `/dev/null` and renamed a regular file
    /// over it. A FIFO stands in for the device: the output must stay what it was and get the
    /// bytes. The file type is checked before the reader is joined, so a replaced FIFO fails
    /// the test instead of leaving the reader waiting.
    #[test]
    fn an_output_that_is_not_a_regular_file_is_written_in_place() {
        use std::os::unix::{ffi::OsStrExt, fs::FileTypeExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("out.fifo");
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("a path without NUL");
        // SAFETY: mkfifo reads the NUL-terminated path it is given.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let is_fifo = || std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_fifo());
        let reader = {
            let p = p.clone();
            std::thread::spawn(move || std::fs::read(p).expect("read the fifo"))
        };
        remove_stale(&p).expect("remove_stale");
        assert!(is_fifo(), "remove_stale removed the FIFO");
        let mut f = AtomicFile::create(&p, 0o600).expect("create");
        f.put(b"report").expect("write");
        f.commit().expect("commit");
        assert!(is_fifo(), "the commit replaced the FIFO");
        assert_eq!(reader.join().expect("the reader"), b"report");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.fifo")]);
    }

    /// `tracer diff --json /dev/stdout > report.json`: /dev/stdout is a symbolic link to a
    /// regular file. The report goes to that file and the link stays (renaming over it would
    /// replace the system's /dev/stdout, and the report would never reach report.json); a
    /// stale report behind a link is removed, the link kept.
    #[test]
    fn an_output_that_is_a_link_to_a_regular_file_replaces_that_file_and_keeps_the_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target.json");
        std::fs::write(&target, b"old").expect("write the target");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let is_link = || std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
        remove_stale(&link).expect("remove_stale");
        assert!(is_link(), "remove_stale removed the link");
        assert!(!target.exists(), "the stale report behind the link is left");
        std::fs::write(&target, b"old").expect("write the target again");
        let mut f = AtomicFile::create(&link, 0o600).expect("create");
        f.put(b"new").expect("write");
        f.commit().expect("commit");
        assert!(is_link(), "the commit replaced the link with a file");
        assert_eq!(std::fs::read(&target).expect("the target"), b"new");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["link.json", "target.json"]);
    }

    #[test]
    fn commit_replaces_the_file_with_the_mode_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.trace");
        std::fs::write(&p, b"old").expect("write");
        write_atomic(&p, b"new", 0o600).expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"new");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_same_file_under_another_name_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("kernel.trace");
        std::fs::write(&input, b"x").expect("write");
        let link = dir.path().join("link.trace");
        std::fs::hard_link(&input, &link).expect("link");
        let spelled = dir.path().join(".").join("kernel.trace");
        for out in [&input, &link, &spelled] {
            let err = refuse_same_file(out, [input.as_path()]).expect_err("same file");
            assert!(matches!(err, OutputError::SameFile { .. }), "{err}");
        }
        let other = dir.path().join("model.trace");
        refuse_same_file(&other, [input.as_path()]).expect("a new file is not the input");
    }
}
