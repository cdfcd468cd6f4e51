//! `tracer diff` runs itself again once with glibc's huge-page tunable (`memory.rs`). Under
//! AT_SECURE (a setuid or file-capability binary run by another user) glibc drops
//! `GLIBC_TUNABLES`, so a rule that looked at the tunable alone ran itself again forever.

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The child of `a_setuid_copy_runs_itself_again_at_most_once`: it runs only when
/// `RERUN_TEST_CHILD` is set, and says it got past the re-run and whether it ran with
/// AT_SECURE (a file system mounted `nosuid` would run it without, testing nothing).
#[test]
fn rerun_child() {
    if std::env::var_os("RERUN_TEST_CHILD").is_none() {
        return;
    }
    tracer_analysis::memory::rerun_in_huge_pages();
    // SAFETY: getauxval reads the auxiliary vector; AT_SECURE is a valid type.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) };
    println!("CHILD-GOT-PAST-THE-RERUN AT_SECURE={secure}");
}

/// This test binary, copied, made setuid root and run as `nobody` (AT_SECURE): it must get
/// past `rerun_in_huge_pages` within seconds. Setting the copy up needs root, which the
/// project's test command runs as.
#[test]
fn a_setuid_copy_runs_itself_again_at_most_once() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test makes a setuid copy of itself: run it as root"
    );
    let dir = tempfile::tempdir_in("/tmp").expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let copy = dir.path().join("rerun-child");
    std::fs::copy(std::env::current_exe().expect("exe"), &copy).expect("copy");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).expect("setuid");
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&copy)
        .args(["--exact", "rerun_child", "--nocapture", "--test-threads=1"])
        .env("RERUN_TEST_CHILD", "1")
        .env_remove("GLIBC_TUNABLES")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("setpriv");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().expect("kill");
            child.wait().expect("reap");
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::io::read_to_string(child.stdout.take().expect("stdout")).expect("read");
    assert!(
        status.is_none() || out.contains("AT_SECURE=1"),
        "the setuid copy ran without AT_SECURE (is /tmp mounted nosuid?): the test proves \
         nothing there; output: {out}"
    );
    assert!(
        status.is_some_and(|s| s.success()) && out.contains("CHILD-GOT-PAST-THE-RERUN"),
        "the setuid copy did not get past rerun_in_huge_pages in 20 s (status {status:?}): it \
         ran itself again in a loop"
    );
}

/// The child of `a_tunables_value_that_is_not_utf_8_is_kept`: it runs only when
/// `RERUN_TUNABLES_CHILD` is set, and prints the `GLIBC_TUNABLES` it ran on with, in hex.
#[test]
fn tunables_child() {
    if std::env::var_os("RERUN_TUNABLES_CHILD").is_none() {
        return;
    }
    tracer_analysis::memory::rerun_in_huge_pages();
    let value = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    println!("TUNABLES={}", hex(value.as_bytes()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `GLIBC_TUNABLES` that is not UTF-8 read as absent, and the run again replaced it: the
/// user's other tunables were gone from the diff's run. They are kept, byte for byte, and the
/// huge-page tunable added.
#[test]
fn a_tunables_value_that_is_not_utf_8_is_kept() {
    let theirs = b"glibc.malloc.arena_max=2:x.\xff=1";
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "tunables_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RERUN_TUNABLES_CHILD", "1")
        .env("GLIBC_TUNABLES", OsStr::from_bytes(theirs))
        .env_remove("DCACHE_TRACER_HUGE_PAGES_RERUN")
        .stderr(Stdio::null())
        .output()
        .expect("run the child");
    let out = String::from_utf8_lossy(&out.stdout);
    let want = [&theirs[..], b":glibc.malloc.hugetlb=1"].concat();
    assert!(
        out.contains(&format!("TUNABLES={}\n", hex(&want))),
        "the run again did not keep the user's tunables: {out}"
    );
}
