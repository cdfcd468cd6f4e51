//! The workload runner against the running kernel: real mounts, loop devices and threads. Needs
//! root (every test says so and passes without doing anything otherwise). The tests run in
//! parallel threads of one process on purpose: the runner must work in a process that already
//! has threads, and concurrent preparations must not collide.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tracer::runner::{kernel_dev, prepare_in, Prepared, Preparing, RunError, RunReport};
use tracer_analysis::workload::{builtin, FsKind, Workload};
use tracer_common::{flags, Event, OpKind, Probe, Source};

const ENOENT: i32 = -libc::ENOENT;
const EEXIST: i32 = -libc::EEXIST;

/// Set by `cargo xtask test`: a test that cannot run for want of root fails instead of
/// skipping, so a run that tested nothing never reads as passed.
const REQUIRE_ROOT: &str = "TRACER_REQUIRE_ROOT";

/// Whether a test may run (root), may skip (not root, not required), or must fail.
fn root_verdict(root: bool, required: bool) -> Result<bool, String> {
    match (root, required) {
        (true, _) => Ok(true),
        (false, false) => Ok(false),
        (false, true) => Err(format!(
            "the workload runner needs root and {REQUIRE_ROOT} is set (cargo xtask test): run as root"
        )),
    }
}

fn is_root() -> bool {
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    let required = std::env::var_os(REQUIRE_ROOT).is_some_and(|v| !v.is_empty() && v != "0");
    match root_verdict(root, required) {
        Ok(true) => true,
        Ok(false) => {
            eprintln!(
                "skipped: the workload runner needs root ({REQUIRE_ROOT}=1 makes this a failure)"
            );
            false
        }
        Err(why) => panic!("{why}"),
    }
}

#[test]
fn a_required_privileged_test_fails_rather_than_skips() {
    assert_eq!(root_verdict(true, true), Ok(true));
    assert_eq!(root_verdict(false, false), Ok(false));
    let err = root_verdict(false, true).expect_err("required");
    assert!(err.contains(REQUIRE_ROOT), "{err}");
}

/// A fresh directory for one test's temp files; checked empty and removed by [`Base::close`].
struct Base(PathBuf);

impl Base {
    fn new(test: &str) -> Base {
        let p =
            std::env::temp_dir().join(format!("tracer-runner-test.{}.{test}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("test temp dir");
        Base(p)
    }

    /// Asserts the runner left nothing: no directory in the base, no loop device backed by a
    /// file under it.
    fn close(self) {
        let left: Vec<_> = fs::read_dir(&self.0)
            .expect("read base")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            left.is_empty(),
            "left behind in {}: {left:?}",
            self.0.display()
        );
        // Loop unbinding may complete just after the unmount returns: allow it a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let bound = loops_backed_under(&self.0);
            if bound.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "loop devices still bound: {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        fs::remove_dir(&self.0).expect("remove base");
    }
}

fn loops_backed_under(base: &Path) -> Vec<String> {
    let Ok(dir) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(|f| f.starts_with(&*base.to_string_lossy()))
        .collect()
}

/// The mountinfo line for `mount_point` as the thread `tid` of this process sees it.
fn mountinfo_line(tid: u32, mount_point: &Path) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/self/task/{tid}/mountinfo")).ok()?;
    let mp = mount_point.to_string_lossy();
    text.lines()
        .find(|l| l.split(' ').nth(4) == Some(&*mp))
        .map(str::to_owned)
}

fn own_mountinfo_has(mount_point: &Path) -> bool {
    let text = fs::read_to_string("/proc/thread-self/mountinfo").expect("own mountinfo");
    let mp = mount_point.to_string_lossy();
    text.lines().any(|l| l.split(' ').nth(4) == Some(&*mp))
}

fn scaled_builtin(name: &str, scale: f64) -> Workload {
    let mut w = builtin(name).expect("exists").expect("parses");
    w.scale(scale).expect("scale");
    w
}

/// Whether this kernel can mount `fs` and the tools to make it exist; says why not.
fn skip_unsupported(e: &RunError, fs: FsKind) -> bool {
    let msg = e.to_string();
    let unsupported = matches!(e, RunError::MissingTool { .. })
        || msg.contains("has no") && msg.contains("driver");
    if unsupported {
        eprintln!("skipped: {fs} is not available here: {msg}");
    }
    unsupported
}

fn run_to_end(p: &mut Prepared) -> RunReport {
    let stop = AtomicBool::new(false);
    p.run(&stop).expect("run")
}

/// Every event is a well-formed op event of a known thread; per thread, the events are exactly
/// the thread's planned operations, in order (bounded threads: all of them).
fn check_against_plan(w: &Workload, report: &RunReport) {
    assert_eq!(report.threads.len(), w.threads.len());
    let mut by_tid = std::collections::HashMap::<u32, Vec<&Event>>::new();
    let mut prev = 0;
    for e in &report.events {
        assert_eq!(e.probe(), Some(Probe::Op));
        assert_eq!(e.source, Source::Workload as u8);
        assert!(e.ts_begin <= e.ts_end && e.ts_begin > 0);
        assert!(e.ts_begin >= prev, "events sorted by ts_begin");
        prev = e.ts_begin;
        assert!(e.result <= 0);
        assert!(OpKind::from_u32(e.aux).is_some());
        by_tid.entry(e.tid).or_default().push(e);
    }
    let tids: BTreeSet<u32> = report.threads.iter().map(|t| t.tid).collect();
    assert_eq!(tids.len(), w.threads.len(), "distinct tids");
    for (t, run) in report.threads.iter().enumerate() {
        let spec = &w.threads[t];
        assert_eq!(run.name, spec.name);
        let events = by_tid.get(&run.tid).map_or(&[][..], Vec::as_slice);
        assert_eq!(run.ops, events.len() as u64, "{}", run.name);
        if let Some(n) = spec.iterations {
            if !spec.background {
                assert_eq!(run.ops, n * spec.ops.len() as u64, "{}", run.name);
            }
        }
        let plan = w.thread_ops(t).expect("thread");
        for (e, op) in events.iter().zip(plan) {
            assert_eq!(e.aux, op.kind as u32, "{}", run.name);
            assert_eq!(e.name_bytes(), &op.event_name()[..], "{}", run.name);
            assert_eq!(e.has(flags::TWO_PATHS), op.path2.is_some());
        }
    }
}

fn results_of(report: &RunReport, kind: OpKind, name_prefix: &[u8]) -> BTreeSet<i32> {
    report
        .events
        .iter()
        .filter(|e| e.aux == kind as u32 && e.name_bytes().starts_with(name_prefix))
        .map(|e| e.result)
        .collect()
}

#[test]
fn unlink_stat_sees_both_outcomes_on_tmpfs() {
    if !is_root() {
        return;
    }
    let base = Base::new("unlink-stat");
    let w = scaled_builtin("unlink-stat", 0.05);
    let mut p = prepare_in(&w, &base.0).expect("prepare");
    assert!(p.loop_device().is_none());
    let report = run_to_end(&mut p);
    check_against_plan(&w, &report);
    assert!(!report.interrupted);
    // Controls: f16..f23 always exist, f24..f31 never do; f0..f15 flip.
    for e in &report.events {
        if e.aux == OpKind::Stat as u32 || e.aux == OpKind::Open as u32 {
            let name = e.name_bytes();
            let i: u32 = std::str::from_utf8(&name[4..])
                .expect("utf-8")
                .parse()
                .expect("index");
            let expected: &[i32] = match i {
                16..=23 => &[0],
                24.. => &[ENOENT],
                _ => &[0, ENOENT],
            };
            assert!(
                expected.contains(&e.result),
                "{}: {}",
                String::from_utf8_lossy(name),
                e.result
            );
        }
    }
    assert_eq!(
        results_of(&report, OpKind::Stat, b""),
        BTreeSet::from([ENOENT, 0])
    );
    assert!(results_of(&report, OpKind::Create, b"").is_subset(&BTreeSet::from([0, EEXIST])));
    assert!(results_of(&report, OpKind::Unlink, b"").is_subset(&BTreeSet::from([0, ENOENT])));
    assert!(results_of(&report, OpKind::Open, b"").is_subset(&BTreeSet::from([0, ENOENT])));
    p.finish().expect("cleanup");
    base.close();
}

#[test]
fn rename_stat_renames_always_succeed() {
    if !is_root() {
        return;
    }
    let base = Base::new("rename-stat");
    let w = scaled_builtin("rename-stat", 0.05);
    let mut p = prepare_in(&w, &base.0).expect("prepare");
    let report = run_to_end(&mut p);
    check_against_plan(&w, &report);
    assert_eq!(
        results_of(&report, OpKind::Rename, b""),
        BTreeSet::from([0])
    );
    assert!(results_of(&report, OpKind::Stat, b"").is_subset(&BTreeSet::from([0, ENOENT])));
    let first = report
        .events
        .iter()
        .find(|e| e.aux == OpKind::Rename as u32)
        .expect("a rename");
    assert_eq!(first.name_bytes(), b"d0/f0\0d1/f0");
    assert_eq!(first.name_len, 11);
    drop(p);
    base.close();
}

#[test]
fn prune_stat_never_loses_an_existing_file() {
    if !is_root() {
        return;
    }
    let base = Base::new("prune-stat");
    let w = scaled_builtin("prune-stat", 0.05);
    let mut p = match prepare_in(&w, &base.0) {
        Ok(p) => p,
        Err(e) if skip_unsupported(&e, w.filesystem) => return base.close(),
        Err(e) => panic!("prepare: {e}"),
    };
    assert!(p.loop_device().is_some_and(|d| d.starts_with("/dev/loop")));
    let report = run_to_end(&mut p);
    check_against_plan(&w, &report);
    // Hugh's symptom would be an ENOENT here: these files exist for the whole run.
    assert_eq!(results_of(&report, OpKind::Stat, b""), BTreeSet::from([0]));
    let drops = results_of(&report, OpKind::DropCaches, b"");
    assert!(drops.is_subset(&BTreeSet::from([0])), "{drops:?}");
    p.finish().expect("cleanup");
    base.close();
}

#[test]
fn negative_lookups_of_missing_names_on_ext4() {
    if !is_root() {
        return;
    }
    let base = Base::new("negative");
    let w = scaled_builtin("negative", 0.05);
    let mut p = match prepare_in(&w, &base.0) {
        Ok(p) => p,
        Err(e) if skip_unsupported(&e, w.filesystem) => return base.close(),
        Err(e) => panic!("prepare: {e}"),
    };
    let report = run_to_end(&mut p);
    check_against_plan(&w, &report);
    // m8..m63 never exist; m0..m7 flip.
    for e in &report.events {
        let name = e.name_bytes();
        if e.aux == OpKind::Stat as u32 {
            let i: u32 = std::str::from_utf8(&name[4..])
                .expect("utf-8")
                .parse()
                .expect("index");
            if i >= 8 {
                assert_eq!(e.result, ENOENT, "{}", String::from_utf8_lossy(name));
            } else {
                assert!(e.result == 0 || e.result == ENOENT);
            }
        }
    }
    // The flipper is the only writer: its creates and unlinks always succeed.
    assert_eq!(
        results_of(&report, OpKind::Create, b""),
        BTreeSet::from([0])
    );
    assert_eq!(
        results_of(&report, OpKind::Unlink, b""),
        BTreeSet::from([0])
    );
    drop(p);
    base.close();
}

const EVERY_OP: &str = r#"
name = "every-op"
filesystem = "FS"
[[thread]]
name = "solo"
iterations = 1
ops = [
    { op = "mkdir", path = "d1" },
    { op = "create", path = "d1/f" },
    { op = "create", path = "d1/f" },
    { op = "stat", path = "d1/f" },
    { op = "open", path = "d1/f" },
    { op = "readdir", path = "d1" },
    { op = "rename", path = "d1/f", to = "d1/g" },
    { op = "stat", path = "d1/f" },
    { op = "unlink", path = "d1/g" },
    { op = "unlink", path = "d1/g" },
    { op = "rmdir", path = "d1" },
    { op = "readdir", path = "d1" },
    { op = "drop_caches" },
]
"#;

fn every_op_on(fs: FsKind) {
    if !is_root() {
        return;
    }
    let base = Base::new(&format!("every-op-{fs}"));
    let w = Workload::from_toml(&EVERY_OP.replace("FS", fs.name()), "every-op").expect("parses");
    let mut p = match prepare_in(&w, &base.0) {
        Ok(p) => p,
        Err(e) if skip_unsupported(&e, fs) => return base.close(),
        Err(e) => panic!("prepare: {e}"),
    };
    let report = run_to_end(&mut p);
    check_against_plan(&w, &report);
    let results: Vec<i32> = report.events.iter().map(|e| e.result).collect();
    assert_eq!(
        results,
        [0, 0, EEXIST, 0, 0, 0, 0, ENOENT, 0, ENOENT, 0, ENOENT, 0],
        "{fs}"
    );
    p.finish().expect("cleanup");
    base.close();
}

#[test]
fn every_op_kind_on_tmpfs() {
    every_op_on(FsKind::Tmpfs);
}

#[test]
fn every_op_kind_on_ext4() {
    every_op_on(FsKind::Ext4);
}

/// Runs where the kernel has minix (the VM); elsewhere checks that the refusal says why.
#[test]
fn every_op_kind_on_minix() {
    every_op_on(FsKind::Minix);
}

#[test]
fn mount_is_private_and_dev_matches_the_kernel() {
    if !is_root() {
        return;
    }
    for fs in [FsKind::Tmpfs, FsKind::Ext4] {
        let base = Base::new(&format!("private-{fs}"));
        let w = Workload::from_toml(&EVERY_OP.replace("FS", fs.name()), "t").expect("parses");
        let own_ns = fs::read_link("/proc/thread-self/ns/mnt").expect("own ns");
        let p = match prepare_in(&w, &base.0) {
            Ok(p) => p,
            Err(e) if skip_unsupported(&e, fs) => {
                base.close();
                continue;
            }
            Err(e) => panic!("prepare: {e}"),
        };
        let runner_ns =
            fs::read_link(format!("/proc/self/task/{}/ns/mnt", p.runner_tid())).expect("runner ns");
        assert_ne!(runner_ns, own_ns, "the runner has its own mount namespace");
        assert_eq!(
            fs::read_link("/proc/thread-self/ns/mnt").expect("own ns"),
            own_ns,
            "the caller's namespace is unchanged"
        );
        assert!(
            !own_mountinfo_has(p.mount_point()),
            "mount leaked to the caller"
        );
        let line = mountinfo_line(p.runner_tid(), p.mount_point()).expect("mounted for the runner");
        let fields: Vec<&str> = line.split(' ').collect();
        let (major, minor) = fields[2].split_once(':').expect("major:minor");
        let (major, minor): (u32, u32) =
            (major.parse().expect("major"), minor.parse().expect("minor"));
        assert_eq!(p.dev(), major << 20 | minor, "{line}");
        assert_eq!(kernel_dev(p.st_dev()), p.dev());
        let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
        assert_eq!(fstype, Some(fs.name()), "{line}");
        if fs.is_disk() {
            assert_eq!(major, 7, "a loop device");
            assert!(
                line.contains(p.loop_device().expect("loop device")),
                "{line}"
            );
        }
        let mount_point = p.mount_point().to_owned();
        drop(p);
        assert!(!mount_point.exists(), "mount point removed");
        base.close();
    }
}

/// `tracer record` parses BTF while the runner prepares; if that fails, the preparation is
/// dropped without being waited for, and must still leave no mount, loop device or directory.
#[test]
fn a_preparation_dropped_unwaited_leaves_nothing() {
    if !is_root() {
        return;
    }
    for fs in [FsKind::Tmpfs, FsKind::Ext4] {
        let base = Base::new(&format!("unwaited-{fs}"));
        let w = Workload::from_toml(&EVERY_OP.replace("FS", fs.name()), "t").expect("parses");
        drop(Preparing::start_in(&w, &base.0).expect("start"));
        base.close();
        // Started and waited for, the same workload is mounted: the drop above had a real
        // preparation to undo, not one that failed.
        let base = Base::new(&format!("waited-{fs}"));
        match Preparing::start_in(&w, &base.0).and_then(Preparing::wait) {
            Ok(p) => {
                assert!(mountinfo_line(p.runner_tid(), p.mount_point()).is_some());
                drop(p);
            }
            Err(e) if skip_unsupported(&e, fs) => {}
            Err(e) => panic!("prepare: {e}"),
        }
        base.close();
    }
}

#[test]
fn setup_failure_leaves_nothing() {
    if !is_root() {
        return;
    }
    for fs in [FsKind::Tmpfs, FsKind::Ext4] {
        let base = Base::new(&format!("setup-fail-{fs}"));
        let text = format!(
            "name = \"s\"\nfilesystem = \"{fs}\"\n[[setup]]\nop = \"create\"\npath = \"nodir/f\"\n\
             [[thread]]\nname = \"a\"\niterations = 1\nops = [{{ op = \"stat\", path = \"x\" }}]\n"
        );
        let w = Workload::from_toml(&text, "t").expect("parses");
        match prepare_in(&w, &base.0) {
            Err(RunError::Setup {
                step, path, source, ..
            }) => {
                assert_eq!((step, path.as_str()), (0, "nodir/f"));
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            Err(e) if skip_unsupported(&e, fs) => {}
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("setup should fail"),
        }
        base.close();
    }
}

const ENDLESS: &str = r#"
name = "endless"
[[setup]]
op = "create"
path = "f"
[[thread]]
name = "reader"
duration_ms = 60000
ops = [{ op = "stat", path = "f" }]
[[thread]]
name = "helper"
background = true
ops = [{ op = "open", path = "f" }]
"#;

#[test]
fn stop_flag_ends_a_long_run_promptly() {
    if !is_root() {
        return;
    }
    let base = Base::new("stop");
    let w = Workload::from_toml(ENDLESS, "t").expect("parses");
    let mut p = prepare_in(&w, &base.0).expect("prepare");
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        });
        p.run(&stop).expect("run")
    });
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(report.interrupted);
    assert!(
        report.threads.iter().all(|t| t.interrupted && t.ops > 0),
        "{:?}",
        report.threads
    );
    assert!(results_of(&report, OpKind::Stat, b"")
        .iter()
        .all(|&r| r == 0));
    assert!(matches!(p.run(&stop), Err(RunError::AlreadyRan)));
    p.finish().expect("cleanup");
    base.close();
}

#[test]
fn dropping_a_running_run_stops_it() {
    if !is_root() {
        return;
    }
    let base = Base::new("drop-running");
    let w = Workload::from_toml(ENDLESS, "t").expect("parses");
    let mut p = prepare_in(&w, &base.0).expect("prepare");
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    {
        let mut running = p.start(Arc::clone(&stop)).expect("start");
        std::thread::sleep(Duration::from_millis(100));
        assert!(!running.is_finished());
    }
    assert!(stop.load(Ordering::Relaxed));
    assert!(t0.elapsed() < Duration::from_secs(20));
    drop(p);
    base.close();
}

#[test]
fn duration_and_background_threads_end_by_themselves() {
    if !is_root() {
        return;
    }
    let base = Base::new("duration");
    let mut w = Workload::from_toml(ENDLESS, "t").expect("parses");
    // 60 s scaled to 300 ms.
    w.scale(0.005).expect("scale");
    let mut p = prepare_in(&w, &base.0).expect("prepare");
    let stop = Arc::new(AtomicBool::new(false));
    let running = p.start(stop).expect("start");
    let report = running.wait().expect("run");
    assert!(!report.interrupted);
    assert!(
        report.elapsed >= Duration::from_millis(300),
        "{:?}",
        report.elapsed
    );
    assert!(
        report.elapsed < Duration::from_secs(20),
        "{:?}",
        report.elapsed
    );
    assert!(report.threads.iter().all(|t| !t.interrupted && t.ops > 0));
    check_against_plan(&w, &report);
    drop(p);
    base.close();
}

/// Runs this test binary again as `nobody`, for this test only; the child calls `prepare`.
#[test]
fn refuses_clearly_when_not_root() {
    const CHILD: &str = "TRACER_TEST_RUNNER_AS_NOBODY";
    if std::env::var_os(CHILD).is_some() {
        let w = builtin("unlink-stat").expect("exists").expect("parses");
        match prepare_in(&w, &std::env::temp_dir()) {
            Err(e @ RunError::NotRoot) => println!("REFUSED: {e}"),
            Err(e) => println!("UNEXPECTED error: {e}"),
            Ok(_) => println!("UNEXPECTED success"),
        }
        return;
    }
    if !is_root() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "refuses_clearly_when_not_root", "--nocapture"])
        .env(CHILD, "1")
        .uid(65534)
        .gid(65534)
        .output();
    let out = match out {
        // A checkout under a directory closed to others (0700) cannot run as nobody.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: nobody cannot run the test binary here: {e}");
            return;
        }
        r => r.expect("run the test binary as nobody"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("REFUSED: the workload runner needs root"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A process killed with SIGKILL while prepared: the kernel frees its namespace, so the mount
/// goes, and autoclear unbinds the loop device. Only the empty mount point directory remains.
#[test]
fn sigkill_leaves_no_mount_and_no_loop_device() {
    const CHILD: &str = "TRACER_TEST_RUNNER_KILLED";
    if let Some(base) = std::env::var_os(CHILD) {
        let w = Workload::from_toml(&EVERY_OP.replace("FS", "ext4"), "t").expect("parses");
        match prepare_in(&w, Path::new(&base)) {
            Ok(p) => {
                println!("PREPARED {}", p.mount_point().display());
                std::thread::sleep(Duration::from_secs(60));
            }
            Err(e) => println!("FAILED {e}"),
        }
        return;
    }
    if !is_root() {
        return;
    }
    use std::io::{BufRead, BufReader};
    let base = Base::new("sigkill");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "sigkill_leaves_no_mount_and_no_loop_device",
            "--nocapture",
        ])
        .env(CHILD, &base.0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("PREPARED") || l.starts_with("FAILED"))
        .unwrap_or_default();
    if let Some(why) = line.strip_prefix("FAILED ") {
        let _ = child.kill();
        let _ = child.wait();
        assert!(why.contains("driver") || why.contains("needs `"), "{why}");
        eprintln!("skipped: ext4 unavailable: {why}");
        return base.close();
    }
    let mount_point = PathBuf::from(line.strip_prefix("PREPARED ").expect("child prepared"));
    assert_eq!(
        loops_backed_under(&base.0).len(),
        1,
        "the child's loop device"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // The kernel, not the runner, cleaned up; the directory is all that is left.
    fs::remove_dir(&mount_point).expect("an empty mount point directory remains");
    base.close();
}

/// The recorder runs the workload on a thread of its own while it drains the ring buffer.
#[test]
fn prepared_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Prepared>();
    assert_send::<RunReport>();
    assert_send::<RunError>();
}
