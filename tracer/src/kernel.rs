//! Facts about the running kernel that are not in its BTF.
use std::fs;

/// `uname -r` of the running kernel, "unknown" when /proc does not say.
pub fn release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
