//! The printed table.
use super::*;

pub(super) fn table(r: &Report) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "tracer bench: kernel {}, {} CPUs; {} rounds; workload: per thread {} iterations of \
         create, stat, stat of a missing name, unlink",
        r.kernel_release, r.cpus, r.rounds, r.iterations_per_thread
    );
    for w in &r.workloads {
        let _ = writeln!(
            s,
            "\n{} workload threads ({} ops a run):",
            w.threads, w.ops_per_run
        );
        rows(&mut s, r.summary.iter().filter(|x| x.threads == w.threads));
    }
    let _ = writeln!(
        s,
        "\nmedian s: the workload's own elapsed time (its threads' start to the last one's end), \
         median over all runs. ratio: median over rounds of a run's time over the mean of the \
         untraced runs just before and after it (range: lowest and highest). over floor: a \
         recording's ratio over its family's floor's (the same targets with programs that \
         return at once), what the programs and the consumer add to attaching alone. op p50: \
         the median operation's duration over untraced's, the probes' inline cost. lost: over \
         all rounds. consumer: the recorder's draining thread while the workload ran, its CPU \
         time per event and its wakeups a run (medians)."
    );
    // Per configuration over every thread count: how loss is counted, what the tool reported.
    let mut loss: BTreeMap<String, (&str, u64)> = BTreeMap::new();
    for x in r.summary.iter().filter(|x| !x.lost_counted_by.is_empty()) {
        loss.entry(x.setup.name())
            .or_insert((x.lost_counted_by, 0))
            .1 += x.tool_reported_lost_total;
    }
    for (name, (how, reported)) in loss {
        let _ = writeln!(
            s,
            "lost, {name}: {how} (it reported {reported} lost itself)."
        );
    }
    let _ = writeln!(s, "\n{}", r.note);
    s
}

fn rows<'a>(s: &mut String, summary: impl Iterator<Item = &'a Summary>) {
    let _ = writeln!(
        s,
        "{:<12} {:>9} {:>7} {:>13} {:>10} {:>8} {:>10} {:>10} {:>9} {:>8} {:>13}",
        "setup",
        "median s",
        "ratio",
        "ratio range",
        "over floor",
        "op p50",
        "hits/run",
        "events/run",
        "delivered",
        "lost",
        "consumer"
    );
    for x in summary {
        let dash = || "-".to_string();
        let tracing = x.setup.kind != Kind::Untraced;
        let _ = writeln!(
            s,
            "{:<12} {:>9.3} {:>7} {:>13} {:>10} {:>8} {:>10} {:>10} {:>9} {:>8} {:>13}",
            x.setup.name(),
            x.median_seconds,
            format!("{:.2}x", x.ratio),
            if tracing {
                format!("{:.2}-{:.2}", x.ratio_min, x.ratio_max)
            } else {
                dash()
            },
            x.over_floor.map_or_else(dash, |v| format!("{v:.2}x")),
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
            match (x.consumer_cpu_us_per_event, x.consumer_wakeups_per_run) {
                (Some(us), Some(w)) => format!("{us:.1}us/ev {w}w"),
                _ => dash(),
            },
        );
    }
}
