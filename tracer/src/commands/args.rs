//! Parsers for command-line numbers whose type alone admits values that cannot work: each
//! error names the allowed range, and clap prefixes it with the flag and the value given.
use std::time::Duration;

use tracer_analysis::workload::limits;

/// A `--scale` factor: above 0, at most [`limits::MAX_SCALE`].
pub fn scale(text: &str) -> Result<f64, String> {
    let f: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if f.is_finite() && f > 0.0 && f <= limits::MAX_SCALE {
        Ok(f)
    } else {
        Err(format!("allowed: above 0 up to {}", limits::MAX_SCALE))
    }
}

/// The longest `--seconds`: one day, as a workload's `duration_ms`.
const MAX_SECONDS: f64 = limits::MAX_DURATION_MS as f64 / 1e3;

/// A `--seconds` duration: at least a millisecond (less rounds to nothing run), at most a day.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let s: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.001..=MAX_SECONDS).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("allowed: 0.001 to {MAX_SECONDS} seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_outside_the_range_are_refused() {
        assert_eq!(scale("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "1e300", "x"] {
            assert!(scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_that_round_to_nothing_or_overflow_are_refused() {
        assert_eq!(seconds("0.25"), Ok(Duration::from_millis(250)));
        // 1e-10 s was accepted and ran for 0 ns; 1e30 s overflowed `Duration` (a panic).
        for bad in ["1e-10", "0", "-2", "1e30", "inf", "nan"] {
            let err = seconds(bad).expect_err(bad);
            assert!(err.contains("allowed"), "{err}");
        }
    }
}
