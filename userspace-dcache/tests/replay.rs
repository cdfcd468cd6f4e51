//! Replay of workload operations, sequential in trace order and on threads.

use std::sync::Arc;
use tracer_common::Probe;
use userspace_dcache::*;

fn ops() -> Vec<ReplayOp> {
    vec![
        ReplayOp::new(1, OpKind::Mkdir, "d").with_span(100, 200),
        // Out of input order: the trace says this ran last.
        ReplayOp::new(2, OpKind::Stat, "d/g").with_span(5000, 6000),
        ReplayOp::new(2, OpKind::Create, "d/f").with_span(300, 400),
        ReplayOp::new(1, OpKind::Rename, "d/f")
            .with_path2("d/g")
            .with_span(1000, 2000),
        ReplayOp::new(1, OpKind::Stat, "d/f").with_span(3000, 4000),
        ReplayOp::new(2, OpKind::DropCaches, "").with_span(4500, 4600),
    ]
}

#[test]
fn sequential_replay_follows_the_trace_order_and_its_timestamps() {
    let sink = Arc::new(CollectSink::new());
    let dc = Dcache::new(
        DcacheConfig::new(Profile::LINUX_6_1, FsKind::Disk)
            .with_sink(sink.clone())
            .with_logical_clock(),
    );
    let out = replay(&dc, &ops(), ReplayMode::Sequential).unwrap();
    let results: Vec<i32> = out.iter().map(|o| o.result).collect();
    // Input order; the stat of d/g ran after the rename, so it found the file.
    assert_eq!(results, [0, 0, 0, 0, -2, 0]);
    assert_eq!(out[1].tid, 2);
    let ev = sink.take();
    let op_events: Vec<_> = ev.iter().filter(|e| e.probe == Probe::Op as u8).collect();
    assert_eq!(op_events.len(), 6);
    for op in &op_events {
        assert!(op.ts_begin < op.ts_end);
    }
    // Every model event lies inside the interval of an op of its thread.
    let probes: Vec<_> = ev.iter().filter(|e| e.probe != Probe::Op as u8).collect();
    assert!(probes.len() > 6);
    for e in probes {
        assert!(
            op_events
                .iter()
                .any(|op| op.tid == e.tid && op.ts_begin <= e.ts_begin && e.ts_end <= op.ts_end),
            "{e:?}"
        );
    }
}

/// An rmdir that began first but unhashed its directory at the end of its span, and stats
/// inside that span: placed at their effects, the stats that looked up before the unhash find
/// the directory, as in the kernel; placed at their begins, every stat would fail.
#[test]
fn sequential_replay_places_an_op_at_its_effect() {
    let sink = Arc::new(CollectSink::new());
    let dc = Dcache::new(
        DcacheConfig::new(Profile::LINUX_6_1, FsKind::Tmpfs)
            .with_sink(sink.clone())
            .with_logical_clock(),
    );
    dc.populate([("d", InodeKind::Dir)]).unwrap();
    let ops = [
        ReplayOp::new(1, OpKind::Rmdir, "d")
            .with_span(100, 5000)
            .with_effect(4700),
        ReplayOp::new(2, OpKind::Stat, "d")
            .with_span(200, 300)
            .with_effect(250),
        ReplayOp::new(3, OpKind::Stat, "d")
            .with_span(4000, 4900)
            .with_effect(4800),
        // No effect known: placed at its begin, before the rmdir's unhash.
        ReplayOp::new(2, OpKind::Stat, "d").with_span(4500, 4600),
        ReplayOp::new(2, OpKind::Stat, "d").with_span(6000, 6100),
    ];
    let out = replay(&dc, &ops, ReplayMode::Sequential).unwrap();
    let results: Vec<i32> = out.iter().map(|o| o.result).collect();
    assert_eq!(results, [0, 0, -2, 0, -2]);
    let ev = sink.take();
    let op_events: Vec<_> = ev.iter().filter(|e| e.probe == Probe::Op as u8).collect();
    for e in ev.iter().filter(|e| e.probe != Probe::Op as u8) {
        assert!(
            op_events
                .iter()
                .any(|op| op.tid == e.tid && op.ts_begin <= e.ts_begin && e.ts_end <= op.ts_end),
            "{e:?}"
        );
    }
    let rmdir_events = ev
        .iter()
        .filter(|e| e.tid == 1 && e.probe != Probe::Op as u8)
        .map(|e| e.ts_begin);
    assert!(
        rmdir_events.clone().count() > 0 && rmdir_events.clone().all(|t| t >= 4700),
        "the rmdir's events are stamped from its effect on"
    );
}

#[test]
fn threaded_replay_runs_each_tid_in_order() {
    let dc = Dcache::new(DcacheConfig::new(Profile::LINUX_4_8, FsKind::Tmpfs));
    dc.populate([("d", InodeKind::Dir)]).unwrap();
    let mut ops = Vec::new();
    for tid in 1..=2u32 {
        for i in 0..20 {
            let p = format!("d/t{tid}-{i}");
            ops.push(ReplayOp::new(tid, OpKind::Create, &p));
            ops.push(ReplayOp::new(tid, OpKind::Stat, &p));
            ops.push(ReplayOp::new(tid, OpKind::Unlink, &p));
            ops.push(ReplayOp::new(tid, OpKind::Stat, &p));
        }
    }
    let out = replay(&dc, &ops, ReplayMode::Threads).unwrap();
    assert_eq!(out.len(), ops.len());
    for (o, op) in out.iter().zip(&ops) {
        assert_eq!(o.tid, op.tid);
        let want = if op.kind == OpKind::Stat && o.index % 4 == 3 {
            -2
        } else {
            0
        };
        assert_eq!(o.result, want, "{op:?}");
    }
    assert_eq!(dc.nr_dentry(), 2, "root and d: tmpfs kept nothing else");
}

#[test]
fn a_rename_without_a_target_is_refused() {
    let dc = Dcache::new(DcacheConfig::new(Profile::LINUX_6_1, FsKind::Disk));
    let ops = [
        ReplayOp::new(1, OpKind::Stat, "a"),
        ReplayOp::new(1, OpKind::Rename, "a"),
    ];
    assert_eq!(
        replay(&dc, &ops, ReplayMode::Sequential),
        Err(ModelError::MissingSecondPath {
            index: 1,
            kind: "rename"
        })
    );
}
