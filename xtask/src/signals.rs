//! The `signals` test step: xtask's QEMU dies with it, whatever signal xtask alone gets (not
//! its process group, as a CI timeout or a service manager sends it). `cargo xtask vm` is
//! signalled with SIGTERM, SIGINT and SIGKILL once its guest runs; `cargo xtask matrix` with
//! SIGINT, which it handles itself: it must stop its guests, write its summary with the pair
//! cancelled, and exit 2.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use std::os::unix::process::CommandExt;

use anyhow::{Context, Result};

use crate::{builder, cmd, test::Check};

/// How long xtask may take to start its guest (the tracers are built first, here; the kernel
/// and initramfs are cached by then: the vm step ran before).
const START: Duration = Duration::from_secs(300);

/// How long a dead parent's QEMU may linger.
const GONE: Duration = Duration::from_secs(10);

pub fn run() -> Result<Vec<Check>> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    // The children would build them otherwise, which on a slow machine outlasts START.
    builder::release_binaries()?;
    builder::static_tracer_binary()?;
    let base = cmd::root().join("target/signals");
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let mut checks = Vec::new();
    for (name, sig) in [
        ("SIGTERM", libc::SIGTERM),
        ("SIGINT", libc::SIGINT),
        ("SIGKILL", libc::SIGKILL),
    ] {
        let out = base.join(format!("vm-{name}"));
        let mut c = Command::new(&exe);
        c.args(["vm", "--timeout", "600", "--out"]).arg(&out).args([
            "--",
            "record",
            "--workload",
            "prune-stat",
            "--scale",
            "20",
        ]);
        checks.push(signal_check(
            &format!("cargo xtask vm, {name}"),
            c,
            sig,
            &base,
            |_| None,
        )?);
    }
    let out = base.join("matrix");
    let mut c = Command::new(&exe);
    c.args([
        "matrix",
        "--kernels",
        "debian:bookworm",
        "--workloads",
        "prune-stat",
        "--scale",
        "20",
        "--jobs",
        "1",
        "--out",
    ])
    .arg(&out);
    checks.push(signal_check(
        "cargo xtask matrix, SIGINT",
        c,
        libc::SIGINT,
        &base,
        |code| {
            let summary = fs::read_to_string(out.join("summary.json")).unwrap_or_default();
            if code != Some(2) {
                Some(format!("exit status {code:?}, want 2"))
            } else if !summary.contains("\"verdict\": \"cancelled\"") {
                Some("summary.json does not show the pair cancelled".into())
            } else {
                None
            }
        },
    )?);
    Ok(checks)
}

/// Starts `c`, waits for its QEMU, sends `sig` to xtask alone, and checks that the QEMU is gone
/// soon after; `more` judges xtask's exit code.
fn signal_check(
    what: &str,
    mut c: Command,
    sig: libc::c_int,
    logs: &Path,
    more: impl Fn(Option<i32>) -> Option<String>,
) -> Result<Check> {
    let log = logs.join(format!("{}.log", what.replace([' ', ','], "_")));
    let f = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    c.stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        // Its own process group: the signal below reaches xtask alone, never this test.
        .process_group(0);
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot start `{}`", cmd::show(&c)))?;
    let pid = child.id();
    let Some(qemu) = wait_for_qemu(pid, &mut child) else {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(Check::fail(
            format!("{what}: leaves no QEMU"),
            format!(
                "no QEMU started within {}s; see {}",
                START.as_secs(),
                log.display()
            ),
        ));
    };
    // SAFETY: kill(2) on the pid of a child this function spawned and has not reaped.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if t.elapsed() > GONE + Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let gone = loop {
        if !alive(qemu) {
            break true;
        }
        if t.elapsed() > GONE {
            // Leave nothing behind, whatever the verdict.
            // SAFETY: kill(2) of the QEMU this test made xtask start.
            unsafe { libc::kill(qemu as libc::pid_t, libc::SIGKILL) };
            break false;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let what = format!("{what}: leaves no QEMU");
    let Some(status) = status else {
        return Ok(Check::fail(
            what,
            format!("xtask did not exit; see {}", log.display()),
        ));
    };
    if !gone {
        return Ok(Check::fail(
            what,
            format!(
                "QEMU (pid {qemu}) still ran {}s after xtask ended ({status})",
                GONE.as_secs()
            ),
        ));
    }
    if let Some(why) = more(status.code()) {
        return Ok(Check::fail(what, format!("{why}; see {}", log.display())));
    }
    Ok(Check::note(
        what,
        format!(
            "QEMU pid {qemu} gone {:.1}s after the signal ({status})",
            t.elapsed().as_secs_f64()
        ),
    ))
}

/// The pid of the QEMU that `parent` starts, once it runs.
fn wait_for_qemu(parent: u32, child: &mut Child) -> Option<u32> {
    let t = Instant::now();
    while t.elapsed() < START {
        // The guest's QEMU, not a short `qemu-system-x86_64 --version` of setup's checks.
        if let Some(q) = children(parent).into_iter().find(|p| is_guest(*p)) {
            // Let it boot a little: the signal should come while the guest runs.
            thread::sleep(Duration::from_secs(2));
            if alive(q) {
                return Some(q);
            }
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Pids whose parent is `parent`, from /proc.
fn children(parent: u32) -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| stat(*p).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// (state, ppid) from /proc/PID/stat; the command name may hold spaces, so fields are counted
/// after its closing parenthesis.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(PathBuf::from(format!("/proc/{pid}/stat"))).ok()?;
    let mut f = text.rsplit_once(')')?.1.split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((state, f.next()?.parse().ok()?))
}

fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A QEMU booting a guest: its command line has an `-initrd`.
fn is_guest(pid: u32) -> bool {
    comm(pid).is_some_and(|c| c.starts_with("qemu-system"))
        && fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"-initrd"))
}

/// Running, not a zombie waiting for its new parent to reap it.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc() {
        let me = std::process::id();
        let (state, ppid) = stat(me).expect("own stat");
        assert_ne!(state, 'Z');
        assert!(ppid > 0);
        assert!(alive(me));
        let mut sleeper = Command::new("sleep").arg("5").spawn().expect("sleep");
        assert!(children(me).contains(&sleeper.id()));
        assert_eq!(comm(sleeper.id()).as_deref(), Some("sleep"));
        assert!(!is_guest(sleeper.id()));
        sleeper.kill().expect("kill");
        sleeper.wait().expect("wait");
        assert!(!alive(sleeper.id()));
    }
}
