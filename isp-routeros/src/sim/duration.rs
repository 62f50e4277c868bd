//! RouterOS time values: parsing what a router accepts, printing what it shows.

use std::time::Duration;

/// Parses a RouterOS time value: `1h30m`, `1d2h3m4s`, `3w`, `500ms`, `00:05:00`,
/// `1d 00:05:00`, or a bare number of seconds. Empty input and anything else is `None`.
pub(crate) fn parse(raw: &str) -> Option<Duration> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    // `[Nd ]HH:MM:SS` forms.
    if let Some(colon_part) = rest.rsplit(' ').next().filter(|p| p.contains(':')) {
        let head = rest[..rest.len() - colon_part.len()].trim();
        if !head.is_empty() {
            total_ms += parse_units(head)?;
        }
        let parts: Vec<&str> = colon_part.split(':').collect();
        if parts.len() != 3 {
            return None;
        }
        let h: u128 = digits(parts[0])?;
        let m: u128 = digits(parts[1])?;
        let (sec, frac) = match parts[2].split_once('.') {
            Some((a, b)) => (digits(a)?, b),
            None => (digits(parts[2])?, ""),
        };
        if m >= 60 || sec >= 60 {
            return None;
        }
        let ms = if frac.is_empty() {
            0
        } else {
            let f: String = frac.chars().chain("000".chars()).take(3).collect();
            digits(&f)?
        };
        total_ms += ((h * 60 + m) * 60 + sec) * 1000 + ms;
        rest = "";
    }
    if !rest.is_empty() {
        total_ms += parse_units(rest)?;
    }
    // Bound: 100 years.
    if total_ms > 100 * 366 * 86_400_000 {
        return None;
    }
    Some(Duration::from_millis(u64::try_from(total_ms).ok()?))
}

fn digits(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `1w2d3h4m5s6ms` or a bare number of seconds.
fn parse_units(s: &str) -> Option<u128> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return digits(s).map(|v| v * 1000);
    }
    let mut total = 0u128;
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut last_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let n = digits(&s[start..i])?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let (mult, rank) = match &s[unit_start..i] {
            "w" => (7 * 86_400_000, 5),
            "d" => (86_400_000, 4),
            "h" => (3_600_000, 3),
            "m" => (60_000, 2),
            "s" => (1000, 1),
            "ms" => (1, 0),
            _ => return None,
        };
        if rank >= last_rank {
            return None; // units must decrease: `1m1h` is not a time value
        }
        last_rank = rank;
        total += n * mult;
    }
    Some(total)
}

/// Formats like a router prints: `0s`, `1h30m`, `3w1d`, `1d2h3m4s`, `250ms`.
pub(crate) fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 7 * 86_400_000u128),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        let n = ms / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms -= n * size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_router_forms() {
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1d2h3m4s"), Some(Duration::from_secs(86_400 + 7200 + 184)));
        assert_eq!(parse("3w"), Some(Duration::from_secs(3 * 7 * 86_400)));
        assert_eq!(parse("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(parse("1d 00:05:00"), Some(Duration::from_secs(86_400 + 300)));
        assert_eq!(parse("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        for bad in ["", " ", "abc", "1x", "1m1h", "-5s", "00:61:00", "1:2", "h"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_like_a_router() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(8 * 86_400)), "1w1d");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
        for s in ["1h30m", "3w", "1d2h3m4s", "0s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
