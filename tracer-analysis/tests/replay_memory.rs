//! A plan replay's memory is set by the model's live state, not by the plan's length: before,
//! the whole plan (and an outcome per op) was materialised first, and a large iteration count
//! aborted on allocation. Alone in its binary: peak RSS is per process.
use tracer_analysis::{
    replay::{replay_to_trace, Source, Style},
    workload::Workload,
};
use userspace_dcache::Profile;

fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage writes one rusage it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    ru.ru_maxrss
}

#[test]
fn a_long_plan_replays_in_memory_that_does_not_grow_with_it() {
    // Two threads, 300k operations on ten names: the materialised plan grew the peak by
    // 21 MiB; streamed, by less than one.
    let w = Workload::from_toml(
        r#"
name = "long"
seed = 3
[[setup]]
op = "create"
path = "f{i}"
range = [0, 10]
[[thread]]
name = "s"
count = 2
iterations = 150000
range = [0, 10]
ops = [{ op = "stat", path = "f{i}" }]
"#,
        "long.toml",
    )
    .expect("workload");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("model.trace");
    let before = peak_rss_kib();
    let s = replay_to_trace(
        &w,
        Profile::named("linux-6.1").expect("profile"),
        Source::Plan,
        Style::default(),
        &out,
        "",
    )
    .expect("replay");
    assert_eq!(s.ops, 300_000);
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        grown_mib < 8,
        "peak RSS grew by {grown_mib} MiB replaying 300k operations"
    );
}
