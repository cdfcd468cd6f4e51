//! Running other programs with their command line shown and failures explained.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Human-readable form of a command for logs and errors.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command with inherited stdio; fails with the command line when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout; stderr is kept for the error.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Does `cmd` run and succeed? (For probing what is installed.)
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Is a program on PATH?
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

/// Ties a child to xtask: killed when its handle is dropped (a cancelled task), and killed by
/// the kernel when xtask dies, whatever the signal (PR_SET_PDEATHSIG, so a SIGKILL of xtask
/// alone leaves no QEMU behind). The death signal follows the thread that spawned the child:
/// spawn from a thread that lives as long as the child is wanted (a tokio worker or the main
/// thread, not a blocking-pool thread).
pub fn tie_to_parent(c: &mut tokio::process::Command) {
    c.kill_on_drop(true);
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2),
    // getppid(2) and kill(2), which are async-signal-safe; it touches no memory of the parent.
    unsafe {
        c.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // xtask died between the fork and the prctl: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
}

/// A dynamically linked host program, every shared library `ldd` resolves for it and the
/// program interpreter, each at its own path in the guest (the dynamic loader's default
/// directories find them there).
pub fn program_with_libraries(bin: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let listing = output(Command::new("ldd").arg(bin))
        .with_context(|| format!("listing the shared libraries of {}", bin.display()))?;
    let mut files = vec![(bin.to_path_buf(), bin.to_path_buf())];
    for lib in parse_ldd(&listing).with_context(|| format!("{} cannot run", bin.display()))? {
        files.push((lib.clone(), lib));
    }
    Ok(files)
}

/// The absolute paths in `ldd` output (`libx.so => /path (0x..)`, `/lib64/ld-linux.. (0x..)`);
/// the vDSO has none. A library `ldd` cannot find is an error.
fn parse_ldd(listing: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for line in listing.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.split_once(" => ") {
            Some((name, rest)) => {
                let p = rest.split(" (").next().unwrap_or("").trim();
                if p == "not found" || p.is_empty() {
                    bail!("it needs {name}, which ldd cannot find");
                }
                p
            }
            None => line.split(" (").next().unwrap_or("").trim(),
        };
        if path.starts_with('/') {
            out.push(PathBuf::from(path));
        }
    }
    Ok(out)
}

/// The host's 1, 5 and 15 minute load averages, kept beside figures measured on a shared
/// machine; None where /proc/loadavg cannot be read.
pub fn host_load() -> Option<[f64; 3]> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let listing = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                       \tlibbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x00007fb0)\n\
                       \t/lib64/ld-linux-x86-64.so.2 (0x00007fb1)\n";
        assert_eq!(
            parse_ldd(listing).expect("parsed"),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libbpf.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(parse_ldd("\tlibz3.so.4 => not found\n").is_err());
    }
}
