//! Reports as people read them: per-router statistics and a closing line in
//! the seeds' style, with the headline counts of each job always shown
//! (`3 users disconnected, 3 devices deactivated, 3 SMS sent, 0 failures`).

use std::fmt::Write as _;

use isp_core::jobs::{JobKind, JobReport};

/// The counts each job always shows, zero or not, in order
/// ([`JobKind::headline_counts`]).
pub fn headline_keys(job: JobKind) -> &'static [&'static str] {
    job.headline_counts()
}

fn words(key: &str) -> String {
    key.split('_')
        .map(|w| {
            if w == "sms" {
                "SMS".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `disconnect-expired complete: 3 users disconnected, 3 devices deactivated, 3 SMS sent, 0 failures`
/// (then any other non-zero counts in parentheses).
pub fn closing_line(report: &JobReport) -> String {
    let mut s = format!(
        "{} complete{}: ",
        report.job,
        if report.dry_run { " (dry run)" } else { "" }
    );
    let heads = headline_keys(report.job);
    for k in heads {
        let _ = write!(s, "{} {}, ", report.count(k), words(k));
    }
    let _ = write!(s, "{} failures", report.failures.len());
    let others: Vec<String> = report
        .counts
        .iter()
        .filter(|(k, v)| **v > 0 && !heads.contains(&k.as_str()))
        .map(|(k, v)| format!("{v} {}", words(k)))
        .collect();
    if !others.is_empty() {
        let _ = write!(s, " ({})", others.join(", "));
    }
    s
}

/// The whole report as text: per-router statistics, failures, closing line.
pub fn render_text(report: &JobReport) -> String {
    let mut s = String::new();
    if !report.per_router.is_empty() {
        s.push_str("Router statistics:\n");
        for (router, counts) in &report.per_router {
            let text = counts
                .iter()
                .map(|(k, v)| format!("{v} {}", words(k)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(s, "  - {router}: {text}");
        }
    }
    if !report.failures.is_empty() {
        s.push_str("Failures:\n");
        for f in &report.failures {
            let _ = writeln!(
                s,
                "  - {}{}: {}{}",
                f.subject,
                f.router
                    .as_deref()
                    .map(|r| format!(" on {r}"))
                    .unwrap_or_default(),
                f.error,
                if f.transient { " (will retry)" } else { "" }
            );
        }
    }
    s.push_str(&closing_line(report));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn seed_like_line() {
        let mut r = JobReport::new(JobKind::DisconnectExpired, Utc::now(), false);
        r.add("users_disconnected", 3);
        r.add("devices_deactivated", 3);
        r.add("sms_sent", 3);
        r.add("sessions_removed", 2);
        r.add_router("hotel-abc:HotelRouter1", "users_disconnected", 3);
        assert_eq!(
            closing_line(&r),
            "disconnect-expired complete: 3 users disconnected, 3 devices deactivated, 3 SMS sent, 0 failures (2 sessions removed)"
        );
        let text = render_text(&r);
        assert!(
            text.contains("  - hotel-abc:HotelRouter1: 3 users disconnected\n"),
            "{text}"
        );
        let empty = JobReport::new(JobKind::DisconnectExpired, Utc::now(), true);
        assert_eq!(
            closing_line(&empty),
            "disconnect-expired complete (dry run): 0 users disconnected, 0 devices deactivated, 0 SMS sent, 0 failures"
        );
    }
}
