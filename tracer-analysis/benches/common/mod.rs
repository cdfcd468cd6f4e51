//! What the diff and replay benches share: the process's CPU time and peak memory, the
//! host's load, the commit measured, the previous JSON's figures and named pipes.
use std::{collections::BTreeMap, fs, path::Path, process::Command};

use serde_json::Value;

/// User and system CPU seconds of this process (every thread): steadier than wall time on a
/// shared machine.
pub fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// Peak resident memory of this process.
pub fn vm_hwm_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The host's one-minute load average.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The source tree's commit (`git describe --dirty`) when the bench runs.
pub fn commit() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The previous run's events per CPU-second, per size (the run's field `size_key`).
pub fn previous(path: &Path, size_key: &str) -> BTreeMap<u64, f64> {
    let Some(v) = fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return BTreeMap::new();
    };
    v["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r[size_key].as_u64()?, r["events_per_cpu_s"].as_f64()?)))
        .collect()
}

pub fn make_fifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: mkfifo reads the NUL-terminated path it is given.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}
