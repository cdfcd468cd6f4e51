//! The diff's memory in transparent huge pages. Its reorder windows (about two million parked
//! events at 10 M events a side) and its history, tables and maps are hundreds of MiB, read
//! back a second or more of trace time after they were written: in 4 KiB pages the first
//! touch of each page faulted (about 210 k faults a diff at 10 M a side) and the reads missed
//! the TLB. glibc's malloc advises its heaps, its threads' arenas and its large blocks into
//! huge pages when the tunable `glibc.malloc.hugetlb=1` is set; the diff then took about 10 %
//! fewer CPU-seconds for 4 % more peak memory (docs/notes/session-9/diffperf2.md). An
//! allocator of our own advising only the large blocks gained nothing: most of the gain is in
//! the threads' arenas, which only glibc itself can advise. Tunables are read when a program
//! starts, so a program that diffs runs itself again with it set.
//!
//! Advice only: where transparent huge pages are off (`never`), absent, or the C library is
//! not glibc, the tunable changes nothing, and the diff's results never depend on it.
use std::{
    ffi::{OsStr, OsString},
    os::unix::ffi::{OsStrExt, OsStringExt},
};

/// The tunable, as `GLIBC_TUNABLES` lists it.
const HUGETLB: &str = "glibc.malloc.hugetlb";

/// The `GLIBC_TUNABLES` value to run with, given the one the program has: `None` when it
/// already says how malloc should use huge pages (ours, or the user's choice, kept). Bytes,
/// not text: a value that is not UTF-8 still holds the user's other tunables, kept as they are.
fn tunables(current: Option<&OsStr>) -> Option<OsString> {
    let c = current.map_or(&[][..], OsStr::as_bytes);
    if c.split(|&b| b == b':')
        .any(|t| t.split(|&b| b == b'=').next() == Some(HUGETLB.as_bytes()))
    {
        return None;
    }
    let mut value = c.to_vec();
    if !value.is_empty() {
        value.push(b':');
    }
    value.extend_from_slice(HUGETLB.as_bytes());
    value.extend_from_slice(b"=1");
    Some(OsString::from_vec(value))
}

/// Set in the environment of the run started by [`rerun_in_huge_pages`], so that run never
/// starts another: a setuid or file-capability binary runs with AT_SECURE, where glibc drops
/// `GLIBC_TUNABLES` from the environment, and the tunable alone would read as never set.
const RERUN_MARK: &str = "DCACHE_TRACER_HUGE_PAGES_RERUN";

/// Runs this program again, with the same arguments, with glibc's malloc advising its memory
/// into huge pages, unless it already runs so. Call it first in `main`, before any thread
/// starts. Returns when the program goes on as it is: already set, already run again once, or
/// the new program could not be started (then it runs in small pages, only slower).
pub fn rerun_in_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(RERUN_MARK).is_some() {
            return;
        }
        let current = std::env::var_os("GLIBC_TUNABLES");
        let Some(value) = tunables(current.as_deref()) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        // Returns only on failure: the program then goes on as it is.
        let _ = cmd
            .args(args)
            .env("GLIBC_TUNABLES", value)
            .env(RERUN_MARK, "1")
            .exec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tunable is added to what the user set, and a choice of theirs about huge pages
    /// (on or off) is kept, so a program run again with it does not run itself a third time.
    #[test]
    fn the_tunable_is_added_once_and_a_user_s_choice_kept() {
        let run = |c: Option<&str>| {
            tunables(c.map(OsStr::new)).map(|v| v.to_str().expect("utf-8").to_owned())
        };
        assert_eq!(run(None).as_deref(), Some("glibc.malloc.hugetlb=1"));
        assert_eq!(run(Some("")).as_deref(), Some("glibc.malloc.hugetlb=1"));
        assert_eq!(
            run(Some("glibc.malloc.arena_max=2")).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        let ours = run(None).expect("added");
        assert_eq!(run(Some(&ours)), None);
        assert_eq!(
            run(Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0")),
            None
        );
        // A longer name that begins like it is another tunable.
        assert_eq!(
            run(Some("glibc.malloc.hugetlbx=1")).as_deref(),
            Some("glibc.malloc.hugetlbx=1:glibc.malloc.hugetlb=1")
        );
    }

    /// A value that is not UTF-8 is the user's all the same: their tunables are kept byte for
    /// byte and ours added (it was read as absent and replaced, dropping them), and a choice
    /// of theirs about huge pages in it is kept.
    #[test]
    fn a_value_that_is_not_utf_8_keeps_the_user_s_tunables() {
        let theirs = b"glibc.malloc.arena_max=2:x.\xff=1";
        let v = tunables(Some(OsStr::from_bytes(theirs))).expect("added");
        assert_eq!(
            v.as_bytes(),
            &b"glibc.malloc.arena_max=2:x.\xff=1:glibc.malloc.hugetlb=1"[..]
        );
        let chosen = b"x.\xff=1:glibc.malloc.hugetlb=0";
        assert_eq!(tunables(Some(OsStr::from_bytes(chosen))), None);
    }
}
