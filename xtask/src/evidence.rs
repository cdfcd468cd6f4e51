//! Failed test runs' folders kept outside the clone: CI removes the clone and shows only the
//! tail of the output, so without a copy a failure that does not recur cannot be read.
use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};

/// Where the copies go (the machine's cache, shared by every clone), a folder per xtask run.
const DIR: &str = "/var/cache/dcache-tracer/evidence";
/// The newest runs' folders kept; older ones are removed when a run keeps its first copy.
const KEPT_RUNS: usize = 8;
/// Files larger than this are left out (long recordings' traces; the reports, logs and
/// summaries are what explains a failure).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Copies `dir` (without the guest's run folder, which holds its initramfs, nor files above
/// MAX_FILE_BYTES) to a folder named after `label` in this run's; returns the copy, or None
/// with a note on stderr when it could not be made.
pub fn keep(dir: &Path, label: &str) -> Option<PathBuf> {
    let name: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let to = run_dir().join(name);
    if let Err(e) = copy_tree(dir, &to) {
        eprintln!(
            "could not keep {} in {}: {e:#}",
            dir.display(),
            to.display()
        );
        return None;
    }
    Some(to)
}

/// This run's folder, `<unix time>-<pid>`; older runs' are pruned when it is first asked for,
/// so a run never removes its own copies.
fn run_dir() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        prune();
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Path::new(DIR).join(format!("{stamp}-{}", std::process::id()))
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if src.ends_with("vm/run") {
                continue;
            }
            copy_tree(&src, &dst)?;
        } else if kind.is_file() && entry.metadata()?.len() <= MAX_FILE_BYTES {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

fn prune() {
    let Ok(entries) = fs::read_dir(DIR) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Names start with the Unix time: name order is age order.
    dirs.sort();
    // Room for this run's.
    let extra = dirs.len().saturating_sub(KEPT_RUNS - 1);
    for d in &dirs[..extra] {
        let _ = fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_leaves_out_the_initramfs_folder_and_big_files() {
        let base = std::env::temp_dir().join(format!("xtask-evidence-{}", std::process::id()));
        let (from, to) = (base.join("pair"), base.join("copy"));
        fs::create_dir_all(from.join("vm/run")).expect("dirs");
        fs::write(from.join("report.txt"), "anomalies").expect("report");
        fs::write(from.join("vm/console.log"), "boot").expect("console");
        fs::write(from.join("vm/run/initrd.img"), "x").expect("initrd");
        let big = fs::File::create(from.join("kernel.trace")).expect("trace");
        big.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        copy_tree(&from, &to).expect("copy");
        assert_eq!(
            fs::read_to_string(to.join("report.txt")).expect("copied"),
            "anomalies"
        );
        assert!(to.join("vm/console.log").exists());
        assert!(!to.join("vm/run").exists());
        assert!(!to.join("kernel.trace").exists());
        fs::remove_dir_all(&base).expect("clean up");
    }
}
