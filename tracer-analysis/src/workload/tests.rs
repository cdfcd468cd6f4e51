//! Parser, validation and expansion tests. The runner's tests need root and live in
//! `tests/workload_runner.rs`.
use super::*;

const MINIMAL: &str = r#"
name = "t"
[[thread]]
name = "a"
iterations = 3
ops = [{ op = "stat", path = "x" }]
"#;

/// Parses `text` expecting an error; returns (line, message as displayed).
fn bad(text: &str) -> (usize, String) {
    match Workload::from_toml(text, "test.toml") {
        Ok(w) => panic!("expected an error, parsed {w:?}"),
        Err(e) => {
            let line = e.location().map_or(0, |l| l.line);
            (line, e.to_string())
        }
    }
}

fn assert_bad(text: &str, line: usize, needle: &str) {
    let (l, msg) = bad(text);
    assert!(
        msg.contains(needle),
        "error should mention {needle:?}, got:\n{msg}"
    );
    assert_eq!(l, line, "wrong line in:\n{msg}");
    assert!(
        msg.starts_with(&format!("test.toml:{line}:")),
        "error should start with the location:\n{msg}"
    );
}

/// A workload with one thread whose op table is `op` and thread-level extras `extra`.
fn with_op(op: &str, extra: &str) -> String {
    format!("name = \"t\"\n[[thread]]\nname = \"a\"\niterations = 1\n{extra}\nops = [{op}]\n")
}

#[test]
fn minimal_workload_has_defaults() {
    let w = Workload::from_toml(MINIMAL, "m").expect("parses");
    assert_eq!(w.filesystem, FsKind::Tmpfs);
    assert_eq!(w.seed, 0);
    assert_eq!(w.image_mib, limits::DEFAULT_IMAGE_MIB);
    assert_eq!(w.threads.len(), 1);
    assert_eq!(w.threads[0].pick, Pick::Random);
    assert_eq!(w.planned_ops(), Some(3));
    assert_eq!(w.source(), MINIMAL);
}

#[test]
fn every_builtin_parses_and_is_sized_for_tcg() {
    let all = builtins().expect("builtins parse");
    assert_eq!(all.len(), BUILTIN_NAMES.len());
    for (w, name) in all.iter().zip(BUILTIN_NAMES) {
        assert_eq!(w.name, name);
        assert!(!w.description.is_empty());
        let bounded: u64 = w
            .threads
            .iter()
            .filter_map(|t| t.iterations.map(|n| n * t.ops.len() as u64))
            .sum();
        assert!(
            (10_000..=50_000).contains(&bounded),
            "{name}: {bounded} ops"
        );
        assert!(builtin(name).is_some_and(|r| r.is_ok()));
    }
    assert!(builtin("nope").is_none());
    // Negative dentries and pruning need a disk file system (tmpfs has neither).
    for name in ["negative", "prune-stat"] {
        let w = builtin(name).and_then(Result::ok).expect("builtin");
        assert!(w.filesystem.is_disk(), "{name}");
    }
    // Hugh's case has no unlinks or renames at all.
    let prune = builtin("prune-stat").and_then(Result::ok).expect("builtin");
    let kinds: Vec<OpKind> = prune
        .threads
        .iter()
        .flat_map(|t| t.ops.iter().map(|o| o.kind))
        .collect();
    assert!(kinds.contains(&OpKind::DropCaches));
    assert!(!kinds
        .iter()
        .any(|k| matches!(k, OpKind::Unlink | OpKind::Rename | OpKind::Rmdir)));
}

#[test]
fn listing_has_a_line_per_builtin() {
    let text = listing().expect("listing");
    assert_eq!(text.lines().count(), BUILTIN_NAMES.len());
    for name in BUILTIN_NAMES {
        assert!(text.lines().any(|l| l.starts_with(name)), "{text}");
    }
}

#[test]
fn load_finds_builtins_and_files_and_names_the_unknown() {
    assert_eq!(
        Workload::load("negative").expect("builtin").name,
        "negative"
    );
    let dir = std::env::temp_dir().join(format!("tracer-wl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("w.toml");
    std::fs::write(&file, MINIMAL).expect("write");
    let w = Workload::load(file.to_str().expect("utf-8 path")).expect("file");
    assert_eq!(w.name, "t");
    std::fs::write(&file, "name = 3\n").expect("write");
    let e = Workload::load(file.to_str().expect("utf-8 path")).expect_err("bad file");
    assert!(
        e.to_string().starts_with(&format!("{}:1:", file.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
    let e = Workload::load("no-such-workload").expect_err("unknown");
    assert!(e.to_string().contains("unlink-stat"), "{e}");
}

#[test]
fn toml_syntax_error_names_the_line() {
    assert_bad("name = \"t\"\n\n[[thread]\n", 3, "");
}

#[test]
fn error_display_shows_the_line_and_a_marker() {
    let (_, msg) = bad(&with_op(r#"{ op = "sta", path = "x" }"#, ""));
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 3, "{msg}");
    assert!(lines[1].starts_with("6 | ops = [{ op = \"sta\""), "{msg}");
    let caret = lines[2].find('^').expect("marker");
    assert_eq!(&lines[1][caret..caret + 5], "\"sta\"", "{msg}");
}

#[test]
fn unknown_op() {
    assert_bad(
        &with_op(r#"{ op = "sta", path = "x" }"#, ""),
        6,
        "unknown op `sta`; expected one of stat, open, create",
    );
}

#[test]
fn unknown_filesystem() {
    assert_bad(
        &format!("filesystem = \"btrfs\"\n{MINIMAL}"),
        1,
        "unknown filesystem `btrfs`; expected tmpfs, ext4 or minix",
    );
}

#[test]
fn unknown_pick() {
    assert_bad(
        &with_op(r#"{ op = "stat", path = "x" }"#, "pick = \"shuffle\""),
        5,
        "unknown pick `shuffle`",
    );
}

#[test]
fn unknown_field() {
    assert_bad(
        &with_op(r#"{ op = "stat", path = "x", mode = 1 }"#, ""),
        6,
        "unknown field `mode`",
    );
    assert_bad(
        &format!("colour = 1\n{MINIMAL}"),
        1,
        "unknown field `colour`",
    );
}

#[test]
fn missing_fields() {
    assert_bad("description = \"x\"\n", 1, "missing field `name`");
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\niterations = 1\n",
        2,
        "missing field `ops`",
    );
    assert_bad(
        "name = \"t\"\n[[thread]]\niterations = 1\nops = []\n",
        2,
        "missing field `name`",
    );
    assert_bad(&with_op(r#"{ path = "x" }"#, ""), 6, "missing field `op`");
    assert_bad(
        &with_op(r#"{ op = "stat" }"#, ""),
        6,
        "op `stat` needs a `path`",
    );
}

#[test]
fn wrong_types() {
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\niterations = \"ten\"\nops = []\n",
        4,
        "invalid type",
    );
    assert_bad(&format!("seed = -1\n{MINIMAL}"), 1, "invalid value");
    assert_bad(
        &with_op(r#"{ op = "stat", path = 7 }"#, ""),
        6,
        "invalid type",
    );
    assert_bad(
        &format!("{MINIMAL}background = \"yes\"\n"),
        7,
        "invalid type",
    );
}

#[test]
fn no_threads() {
    assert_bad("name = \"t\"\n", 1, "no threads");
}

#[test]
fn no_ops() {
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\niterations = 1\nops = []\n",
        5,
        "thread `a` has no ops",
    );
}

#[test]
fn zero_iterations_duration_and_count() {
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\niterations = 0\nops = [{ op = \"drop_caches\" }]\n",
        4,
        "iterations = 0 is out of range; allowed: 1 to",
    );
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\nduration_ms = 0\nops = [{ op = \"drop_caches\" }]\n",
        4,
        "duration_ms = 0 is out of range; allowed: 1 to",
    );
    assert_bad(
        &with_op(r#"{ op = "drop_caches" }"#, "count = 0"),
        5,
        "count = 0 is out of range; allowed: 1 to 64",
    );
    assert_bad(
        &with_op(r#"{ op = "drop_caches" }"#, "count = 65"),
        5,
        "count = 65 is out of range; allowed: 1 to 64",
    );
}

#[test]
fn endless_thread() {
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\nops = [{ op = \"drop_caches\" }]\n",
        3,
        "never ends",
    );
}

#[test]
fn only_background_threads() {
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\nbackground = true\nops = [{ op = \"drop_caches\" }]\n",
        1,
        "every thread is background",
    );
}

#[test]
fn bad_paths() {
    for (path, needle) in [
        ("", "empty path"),
        ("/etc/passwd", "absolute path"),
        ("d0/../x", "`..` component"),
        ("./x", "`.` component"),
        ("d0//x", "empty component"),
        ("d0/", "empty component"),
        ("d0/\\u0000", "NUL"),
        ("f{j}", "only allowed in the placeholder `{i}`"),
        ("f{i", "only allowed in the placeholder `{i}`"),
        ("f}", "only allowed in the placeholder `{i}`"),
    ] {
        assert_bad(
            &with_op(
                &format!(r#"{{ op = "stat", path = "{path}" }}"#),
                "range = [0, 2]",
            ),
            6,
            needle,
        );
    }
}

#[test]
fn index_without_range() {
    assert_bad(
        &with_op(r#"{ op = "stat", path = "f{i}" }"#, ""),
        6,
        "uses {i} but thread `a` has no `range",
    );
}

#[test]
fn bad_ranges() {
    assert_bad(
        &with_op(r#"{ op = "stat", path = "f{i}" }"#, "range = [5, 5]"),
        5,
        "empty range [5, 5]",
    );
    assert_bad(
        &with_op(r#"{ op = "stat", path = "f{i}" }"#, "range = [1, 2, 3]"),
        5,
        "range takes two integers",
    );
    assert_bad(
        &with_op(r#"{ op = "stat", path = "f{i}" }"#, "range = 4"),
        5,
        "invalid type",
    );
}

#[test]
fn names_too_long_for_an_event() {
    let long = "x".repeat(62);
    assert_bad(
        &with_op(
            &format!(r#"{{ op = "stat", path = "{long}{{i}}" }}"#),
            "range = [0, 1000]",
        ),
        6,
        "renders up to 65 bytes",
    );
    assert!(Workload::from_toml(
        &with_op(
            &format!(r#"{{ op = "stat", path = "{long}{{i}}" }}"#),
            "range = [0, 1000]"
        )
        .replace("1000", "100"),
        "t"
    )
    .is_ok());
    let half = "y".repeat(32);
    assert_bad(
        &with_op(
            &format!(r#"{{ op = "rename", path = "{half}", to = "{half}" }}"#),
            "",
        ),
        6,
        "rename paths take up to 65 bytes",
    );
}

#[test]
fn rename_needs_to_and_only_rename_takes_it() {
    assert_bad(
        &with_op(r#"{ op = "rename", path = "a" }"#, ""),
        6,
        "needs `to`",
    );
    assert_bad(
        &with_op(r#"{ op = "stat", path = "a", to = "b" }"#, ""),
        6,
        "only rename and exchange take `to`",
    );
    assert_bad(
        &with_op(r#"{ op = "exchange", path = "a" }"#, ""),
        6,
        "op `exchange` needs `to`",
    );
}

#[test]
fn drop_caches_takes_no_path() {
    assert_bad(
        &with_op(r#"{ op = "drop_caches", path = "a" }"#, ""),
        6,
        "drop_caches takes no path",
    );
}

#[test]
fn bad_names() {
    assert_bad("name = \"\"\n", 1, "workload name");
    assert_bad("name = \"a b\"\n", 1, "workload name");
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"x y\"\niterations = 1\nops = [{ op = \"drop_caches\" }]\n",
        3,
        "thread name `x y`",
    );
}

#[test]
fn duplicate_thread_names() {
    let t = "[[thread]]\nname = \"a\"\niterations = 1\nops = [{ op = \"drop_caches\" }]\n";
    assert_bad(
        &format!("name = \"t\"\n{t}{t}"),
        7,
        "thread name `a` is used twice",
    );
    // A replica name clashing with a plain thread.
    let r =
        "[[thread]]\nname = \"a\"\ncount = 2\niterations = 1\nops = [{ op = \"drop_caches\" }]\n";
    let p = "[[thread]]\nname = \"a.1\"\niterations = 1\nops = [{ op = \"drop_caches\" }]\n";
    assert_bad(&format!("name = \"t\"\n{r}{p}"), 8, "`a.1` is used twice");
}

#[test]
fn too_many_threads() {
    let t = |n: &str| {
        format!("[[thread]]\nname = \"{n}\"\ncount = 40\niterations = 1\nops = [{{ op = \"drop_caches\" }}]\n")
    };
    assert_bad(
        &format!("name = \"t\"\n{}{}", t("a"), t("b")),
        7,
        "more than 64 threads",
    );
}

#[test]
fn setup_errors() {
    let base = format!("{MINIMAL}[[setup]]\n");
    assert_bad(
        &format!("{base}op = \"unlink\"\npath = \"x\"\n"),
        8,
        "setup op `unlink` is not supported; setup takes mkdir and create",
    );
    assert_bad(
        &format!("{base}op = \"create\"\npath = \"f{{i}}\"\n"),
        9,
        "uses {i} but this setup step has no `range",
    );
    assert_bad(
        &format!("{base}op = \"create\"\npath = \"f\"\nrange = [0, 2]\n"),
        10,
        "has no {i}",
    );
    assert_bad(
        &format!("{base}op = \"mkdir\"\npath = \"/abs\"\n"),
        9,
        "absolute path",
    );
    assert_bad(
        &format!("{base}op = \"create\"\npath = \"f{{i}}\"\nrange = [0, 200000]\n"),
        7,
        "more than 100000 steps",
    );
}

#[test]
fn image_size_rules() {
    assert_bad(
        &format!("image_mib = 64\n{MINIMAL}"),
        1,
        "image_mib applies to ext4 and minix only",
    );
    assert_bad(
        &format!("filesystem = \"ext4\"\nimage_mib = 1\n{MINIMAL}"),
        2,
        "image_mib must be 4 to 4096",
    );
    let w = Workload::from_toml(
        &format!("filesystem = \"minix\"\nimage_mib = 16\n{MINIMAL}"),
        "t",
    )
    .expect("parses");
    assert_eq!((w.filesystem, w.image_mib), (FsKind::Minix, 16));
}

#[test]
fn patterns_render() {
    let p = PathPattern::parse("d{i}/f{i}.x").expect("valid");
    assert!(p.uses_index());
    assert_eq!(p.render(42), "d42/f42.x");
    let q = PathPattern::parse("plain").expect("valid");
    assert!(!q.uses_index());
    assert_eq!(q.render(7), "plain");
}

const TWO_THREADS: &str = r#"
name = "t"
seed = 7
[[setup]]
op = "mkdir"
path = "d"
[[setup]]
op = "create"
path = "d/f{i}"
range = [2, 5]
[[thread]]
name = "r"
count = 2
iterations = 50
range = [0, 1000]
ops = [{ op = "stat", path = "d/f{i}" }, { op = "open", path = "d/f{i}" }]
[[thread]]
name = "s"
iterations = 7
range = [10, 13]
pick = "sequential"
ops = [{ op = "rename", path = "a{i}", to = "b{i}" }]
[[thread]]
name = "bg"
background = true
ops = [{ op = "drop_caches" }]
"#;

#[test]
fn replicas_are_expanded_and_named() {
    let w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    let names: Vec<&str> = w.threads.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["r.0", "r.1", "s", "bg"]);
    assert_eq!(w.planned_ops(), None, "a background thread is unbounded");
}

#[test]
fn setup_expands_every_index_in_order() {
    let w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    let setup = w.setup_ops();
    let paths: Vec<&str> = setup.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths, ["d", "d/f2", "d/f3", "d/f4"]);
    assert!(setup.iter().all(|o| o.thread == SETUP_THREAD));
    assert_eq!(setup[0].kind, OpKind::Mkdir);
    assert_eq!(setup[1].kind, OpKind::Create);
}

#[test]
fn expansion_is_deterministic_per_seed() {
    let w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    let a = w.expand(3);
    let b = w.expand(3);
    assert_eq!(a, b);
    assert_eq!(a.len(), 4);
    assert_eq!(a[0].len(), 100);
    assert_eq!(
        a[3].len(),
        3,
        "unbounded threads are cut at the given iterations"
    );
    // Replicas draw from different streams.
    assert_ne!(a[0], a[1]);
    // Both ops of one iteration share the index.
    for pair in a[0].chunks(2) {
        assert_eq!(pair[0].path, pair[1].path);
        assert_eq!((pair[0].kind, pair[1].kind), (OpKind::Stat, OpKind::Open));
        assert_eq!(pair[0].thread, 0);
    }
    let mut other = w.clone();
    other.seed = 8;
    assert_ne!(other.expand(3)[0], a[0], "another seed, other draws");
    // Pinned values: a change here changes what recorded traces meant.
    let first: Vec<&str> = a[0]
        .iter()
        .step_by(2)
        .take(4)
        .map(|o| o.path.as_str())
        .collect();
    assert_eq!(first, pinned_first_draws());
}

/// The first four `{i}` draws of thread r.0 of TWO_THREADS (ChaCha8, seed 7, stream 0).
fn pinned_first_draws() -> [&'static str; 4] {
    ["d/f157", "d/f167", "d/f704", "d/f726"]
}

#[test]
fn random_draws_stay_in_range_and_cover_it() {
    let w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    let mut seen = std::collections::BTreeSet::new();
    for op in w.thread_ops(0).expect("thread 0") {
        let i: u64 = op.path["d/f".len()..].parse().expect("index");
        assert!(i < 1000);
        seen.insert(i);
    }
    assert!(seen.len() > 40, "50 draws from 1000 should rarely collide");
}

#[test]
fn sequential_pick_and_rename_paths() {
    let w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    let ops: Vec<PlannedOp> = w.thread_ops(2).expect("thread s").collect();
    let froms: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(froms, ["a10", "a11", "a12", "a10", "a11", "a12", "a10"]);
    assert_eq!(ops[0].path2.as_deref(), Some("b10"));
    assert_eq!(ops[0].event_name(), b"a10\0b10");
    assert_eq!(ops[0].kind, OpKind::Rename);
}

#[test]
fn thread_ops_reports_iteration_boundaries() {
    let w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    let mut it = w.thread_ops(0).expect("thread 0");
    assert!(it.at_iteration_start());
    assert_eq!(it.iteration(), 0);
    it.next();
    assert!(!it.at_iteration_start());
    it.next();
    assert!(it.at_iteration_start());
    assert_eq!(it.iteration(), 1);
    assert_eq!(it.spec().name, "r.0");
    assert!(w.thread_ops(4).is_none());
    let bg = w.thread_ops(3).expect("bg");
    assert_eq!(
        bg.take(10_000).count(),
        10_000,
        "background threads are endless"
    );
    let dc = w.thread_ops(3).and_then(|mut t| t.next()).expect("an op");
    assert_eq!(
        (dc.kind, dc.path.as_str(), dc.event_name()),
        (OpKind::DropCaches, "", vec![])
    );
}

#[test]
fn scaling_multiplies_and_keeps_at_least_one() {
    let mut w = Workload::from_toml(TWO_THREADS, "t").expect("parses");
    w.scale(0.001).expect("scale");
    assert_eq!(w.threads[0].iterations, Some(1));
    w.scale(10.0).expect("scale");
    assert_eq!(w.threads[0].iterations, Some(10));
    assert_eq!(w.threads[3].iterations, None);
    let mut d = Workload::from_toml(
        "name = \"t\"\n[[thread]]\nname = \"a\"\nduration_ms = 1000\nops = [{ op = \"drop_caches\" }]\n",
        "t",
    )
    .expect("parses");
    d.scale(0.5).expect("scale");
    assert_eq!(d.threads[0].duration, Some(Duration::from_millis(500)));
    for f in [
        0.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        1e300,
        limits::MAX_SCALE * 2.0,
    ] {
        assert!(matches!(d.scale(f), Err(WorkloadError::BadScale(_))));
    }
}

#[test]
fn scaling_past_the_limits_is_an_error_that_changes_nothing() {
    // Before: a scaled duration overflowed `Duration` (a panic), iterations saturated.
    let text = "name = \"t\"\n[[thread]]\nname = \"a\"\nduration_ms = 86400000\nops = [{ op = \"drop_caches\" }]\n[[thread]]\nname = \"b\"\niterations = 1000000000\nops = [{ op = \"drop_caches\" }]\n";
    let mut w = Workload::from_toml(text, "t").expect("parses at the limits");
    let before = w.clone();
    let err = w.scale(1e6).expect_err("past the limit");
    let msg = err.to_string();
    assert!(
        msg.contains("thread `a` duration_ms") && msg.contains("up to 86400000"),
        "{msg}"
    );
    assert_eq!(w, before, "a refused scale leaves the workload as it was");
    w.threads.remove(0);
    let msg = w.scale(2.0).expect_err("past the limit").to_string();
    assert!(msg.contains("thread `b` iterations"), "{msg}");
    w.scale(0.5).expect("within the limits");
    assert_eq!(w.threads[0].iterations, Some(500_000_000));
}

#[test]
fn numbers_out_of_range_name_the_field_and_the_range() {
    assert_bad(
        &with_op("{ op = \"drop_caches\" }", "")
            .replace("iterations = 1", "iterations = 1000000001"),
        4,
        "iterations = 1000000001 is out of range; allowed: 1 to 1000000000",
    );
    assert_bad(
        "name = \"t\"\n[[thread]]\nname = \"a\"\nduration_ms = 18446744073709551615\nops = [{ op = \"drop_caches\" }]\n",
        4,
        "duration_ms = 18446744073709551615 is out of range; allowed: 1 to 86400000",
    );
    assert_bad(
        &with_op("{ op = \"drop_caches\" }", "pause_us = 10000001"),
        5,
        "pause_us = 10000001 is out of range; allowed: 0 to 10000000",
    );
}

#[test]
fn dot_names_long_names_and_control_bytes_are_refused() {
    let thread = |name: &str| {
        format!("name = \"t\"\n[[thread]]\nname = \"{name}\"\niterations = 1\nops = [{{ op = \"drop_caches\" }}]\n")
    };
    assert_bad(&thread(".."), 3, "thread name `..` must not start with `.`");
    assert_bad(&thread("."), 3, "must not start with `.`");
    assert_bad("name = \"..\"\n", 1, "workload name `..` must not start");
    let long = "x".repeat(300);
    assert_bad(&thread(&long), 3, "is 300 bytes long; allowed: up to 64");
    assert_bad(
        &format!("name = \"{long}\"\n"),
        1,
        "is 300 bytes long; allowed: up to 64",
    );
    // An escape sequence in a name, and raw control bytes in a line: shown escaped.
    let (_, msg) = bad(&thread("\\u001b[2Jx"));
    assert!(msg.contains("\\u{1b}[2Jx"), "{msg}");
    let (_, msg) = bad("name = \"t\"\nbogus\u{1b}[31m = 1\n");
    assert!(
        !msg.chars().any(|c| c.is_control() && c != '\n'),
        "raw control bytes in {msg:?}"
    );
    let msg = Workload::load("no-such\u{1b}[2J")
        .expect_err("unknown")
        .to_string();
    assert!(!msg.contains('\u{1b}'), "{msg:?}");
}
