//! Medians and the per-configuration summary over all rounds.
use super::*;

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(super) fn median_u64(v: Vec<u64>) -> u64 {
    median(v.into_iter().map(|x| x as f64).collect()).round() as u64
}

/// Per configuration, over the runs at `threads` workload threads.
pub(super) fn summarize(
    threads: u32,
    setups: &[Setup],
    runs: &[Run],
    attach: &BTreeMap<Setup, BTreeMap<String, Attachment>>,
) -> Vec<Summary> {
    let of = |s: &Setup| {
        let s = s.clone();
        runs.iter()
            .filter(move |r| r.setup == s && r.threads == threads)
    };
    let base_op = median_u64(of(&Setup::UNTRACED).map(|r| r.median_op_ns).collect());
    let ratio_of = |s: &Setup| median(of(s).map(|r| r.ratio.unwrap_or(1.0)).collect());
    setups
        .iter()
        .map(|s| {
            let over_floor = s
                .kind
                .floor()
                .map(Setup::of)
                .filter(|f| setups.contains(f))
                .map(|f| ratio_of(s) / ratio_of(&f));
            let ratios: Vec<f64> = of(s).map(|r| r.ratio.unwrap_or(1.0)).collect();
            let hits_total: u64 = of(s).map(Run::hits_total).sum();
            let delivered_total: u64 = of(s).map(Run::delivered_total).sum();
            let median_op_ns = median_u64(of(s).map(|r| r.median_op_ns).collect());
            let per_event: Vec<f64> = of(s)
                .filter_map(|r| {
                    let cpu = r.consumer_cpu_seconds?;
                    let n = r.delivered_total();
                    (n > 0).then(|| cpu * 1e6 / n as f64)
                })
                .collect();
            let wakeups: Vec<u64> = of(s).filter_map(|r| r.consumer_wakeups).collect();
            Summary {
                threads,
                setup: s.clone(),
                median_seconds: median(of(s).map(|r| r.workload_seconds).collect()),
                ratio: median(ratios.clone()),
                over_floor,
                ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
                ratio_max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                median_op_ns,
                op_ratio: median_op_ns as f64 / base_op.max(1) as f64,
                median_hits_per_run: median_u64(of(s).map(Run::hits_total).collect()),
                median_delivered_per_run: median_u64(of(s).map(Run::delivered_total).collect()),
                hits_total,
                delivered_total,
                lost_total: of(s).map(Run::lost).sum(),
                tool_reported_lost_total: of(s).map(|r| r.tool_reported_lost).sum(),
                consumer_cpu_us_per_event: (!per_event.is_empty()).then(|| median(per_event)),
                consumer_wakeups_per_run: (!wakeups.is_empty()).then(|| median_u64(wakeups)),
                delivered_share: (hits_total > 0)
                    .then(|| delivered_total as f64 / hits_total as f64),
                lost_counted_by: s.kind.loss_method(),
                attach: attach.get(s).cloned().unwrap_or_default(),
            }
        })
        .collect()
}
