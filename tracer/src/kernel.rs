//! Facts about the running kernel that are not in its BTF.
use std::fs;

/// `uname -r` of the running kernel, "unknown" when /proc does not say.
pub fn release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// `/proc/self/ns/pid` of a process in the initial PID namespace (`PROC_PID_INIT_INO`,
/// include/linux/proc_ns.h, fixed since 3.8).
const INITIAL_PID_NS: &str = "pid:[4026531836]";

/// The recorder's tids or clock would not be the probes'.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error(
        "tracer record runs in a PID namespace other than the initial one ({link}): the probes \
         stamp events with the kernel's thread ids, the workload's operations would carry this \
         namespace's, and no probe event would be matched to its operation; run it in the \
         initial PID namespace (outside the container, or with the host's: `docker run \
         --pid=host`)"
    )]
    Pid { link: String },
    #[error(
        "CLOCK_MONOTONIC is offset by {secs} s {nanos} ns in this time namespace, while the \
         probes stamp the kernel's own clock: operations and events would not be on one clock; \
         run tracer record in the initial time namespace"
    )]
    Time { secs: i64, nanos: i64 },
    #[error("cannot tell the PID namespace: reading /proc/self/ns/pid: {0} (mount /proc)")]
    Unreadable(std::io::Error),
}

/// Refuses a PID namespace or a monotonic clock offset that would set the workload's thread
/// ids or stamps apart from the probes'. The probes read `bpf_get_current_pid_tgid` and
/// `bpf_ktime_get_ns`, both the kernel's global view; recording the namespace's own (NSpid's
/// first field) would not help where /proc is the container's, which shows only its own.
pub fn initial_namespaces() -> Result<(), NamespaceError> {
    pid_ns(
        fs::read_link("/proc/self/ns/pid"),
        std::path::Path::new("/proc/self").exists(),
    )?;
    // Absent before 5.6: no time namespaces.
    match fs::read_to_string("/proc/self/timens_offsets") {
        Ok(offsets) => check_time_offsets(&offsets),
        Err(_) => Ok(()),
    }
}

/// The PID namespace check from what reading `/proc/self/ns/pid` gave. A kernel built without
/// `CONFIG_PID_NS` (the project's own live-bugs kernels) has one PID namespace and no link for
/// it; only a /proc that is not mounted at all leaves the question open.
fn pid_ns(
    link: std::io::Result<std::path::PathBuf>,
    proc_mounted: bool,
) -> Result<(), NamespaceError> {
    match link {
        Ok(link) => check_pid_ns(&link.to_string_lossy()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && proc_mounted => Ok(()),
        Err(e) => Err(NamespaceError::Unreadable(e)),
    }
}

fn check_pid_ns(link: &str) -> Result<(), NamespaceError> {
    if link == INITIAL_PID_NS {
        Ok(())
    } else {
        Err(NamespaceError::Pid { link: link.into() })
    }
}

/// `monotonic <secs> <nanos>` in /proc/self/timens_offsets.
fn check_time_offsets(offsets: &str) -> Result<(), NamespaceError> {
    for line in offsets.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let ["monotonic", secs, nanos] = w[..] {
            let (secs, nanos) = (secs.parse().unwrap_or(0), nanos.parse().unwrap_or(0));
            if (secs, nanos) != (0, 0) {
                return Err(NamespaceError::Time { secs, nanos });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_pid_namespace_is_refused_by_name() {
        assert!(check_pid_ns(INITIAL_PID_NS).is_ok());
        let e = check_pid_ns("pid:[4026532456]").expect_err("a container's");
        assert!(e.to_string().contains("pid:[4026532456]"), "{e}");
        assert!(e.to_string().contains("--pid=host"), "{e}");
    }

    /// The live-bugs step's kernels have no `CONFIG_PID_NS`: no /proc/self/ns/pid, and the
    /// recording must go on; without /proc mounted the namespace cannot be told.
    #[test]
    fn a_kernel_without_pid_namespaces_passes_an_unmounted_proc_does_not() {
        let missing = || Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(pid_ns(missing(), true).is_ok());
        let e = pid_ns(missing(), false).expect_err("no /proc");
        assert!(e.to_string().contains("mount /proc"), "{e}");
        assert!(pid_ns(Ok("pid:[4026531836]".into()), true).is_ok());
        assert!(pid_ns(Ok("pid:[4026532456]".into()), true).is_err());
    }

    #[test]
    fn a_monotonic_offset_is_refused_a_boottime_one_is_not() {
        let ok = "monotonic           0         0\nboottime        86400         0\n";
        assert!(check_time_offsets(ok).is_ok());
        let off = "monotonic        -3600       500\nboottime            0         0\n";
        let e = check_time_offsets(off).expect_err("offset");
        assert!(e.to_string().contains("-3600 s 500 ns"), "{e}");
    }
}
