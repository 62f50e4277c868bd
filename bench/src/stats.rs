//! Percentiles and durations as text.

/// Nearest-rank percentile (`p` in 0..=1) of unsorted samples; zero when empty.
pub(crate) fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// p50, p99 and max of samples (seconds or milliseconds, as given).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    pub(crate) min: f64,
}

impl Summary {
    pub(crate) fn of(samples: &[f64]) -> Summary {
        Summary {
            n: samples.len(),
            p50: percentile(samples, 0.5),
            p99: percentile(samples, 0.99),
            max: samples.iter().copied().fold(f64::NAN, f64::max),
            min: samples.iter().copied().fold(f64::NAN, f64::min),
        }
    }
}

/// A duration in seconds as `12 ms`, `1.23 s` or `2 min 5 s`.
pub(crate) fn secs(s: f64) -> String {
    if !s.is_finite() {
        return "n/a".to_owned();
    }
    if s.abs() < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s.abs() < 100.0 {
        format!("{s:.2} s")
    } else {
        let whole = s.round() as i64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// Milliseconds with three decimals.
pub(crate) fn ms3(ms: f64) -> String {
    format!("{ms:.3} ms")
}

/// `12,345`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        let s = Summary::of(&[5.0, 1.0, 9.0]);
        assert_eq!((s.n, s.p50, s.max, s.min), (3, 5.0, 9.0, 1.0));
    }

    #[test]
    fn formats() {
        assert_eq!(secs(0.0123), "12 ms");
        assert_eq!(secs(1.234), "1.23 s");
        assert_eq!(secs(125.0), "2 min 5 s");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(ms3(0.5), "0.500 ms");
    }
}
