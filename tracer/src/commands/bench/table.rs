//! The printed table.
use super::*;

pub(super) fn table(r: &Report) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "tracer bench: kernel {}, {} CPUs; {} rounds; workload: {} threads x {} iterations of \
         create, stat, stat of a missing name, unlink ({} ops a run)\n",
        r.kernel_release, r.cpus, r.rounds, r.threads, r.iterations_per_thread, r.ops_per_run
    );
    let _ = writeln!(
        s,
        "{:<9} {:>9} {:>7} {:>13} {:>8} {:>10} {:>10} {:>9} {:>8}",
        "setup",
        "median s",
        "ratio",
        "ratio range",
        "op p50",
        "hits/run",
        "events/run",
        "delivered",
        "lost"
    );
    for x in &r.summary {
        let dash = || "-".to_string();
        let tracing = x.setup.kind != Kind::Untraced;
        let _ = writeln!(
            s,
            "{:<9} {:>9.3} {:>7} {:>13} {:>8} {:>10} {:>10} {:>9} {:>8}",
            x.setup.name(),
            x.median_seconds,
            format!("{:.2}x", x.ratio),
            if tracing {
                format!("{:.2}-{:.2}", x.ratio_min, x.ratio_max)
            } else {
                dash()
            },
            format!("{:.2}x", x.op_ratio),
            if tracing {
                x.median_hits_per_run.to_string()
            } else {
                dash()
            },
            if tracing {
                x.median_delivered_per_run.to_string()
            } else {
                dash()
            },
            x.delivered_share
                .map_or_else(dash, |v| format!("{:.2}%", v * 100.0)),
            if tracing {
                x.lost_total.to_string()
            } else {
                dash()
            },
        );
    }
    let _ = writeln!(
        s,
        "\nmedian s: the workload's own elapsed time (its threads' start to the last one's end), \
         median over all runs. ratio: median over rounds of a run's time over the mean of the \
         untraced runs just before and after it (range: lowest and highest). op p50: the median \
         operation's duration over untraced's, the probes' inline cost. lost: over all rounds."
    );
    for x in r.summary.iter().filter(|x| x.setup.kind != Kind::Untraced) {
        let _ = writeln!(
            s,
            "lost, {}: {} (it reported {} lost itself).",
            x.setup.name(),
            x.lost_counted_by,
            x.tool_reported_lost_total
        );
    }
    let _ = writeln!(s, "\n{}", r.note);
    s
}
