//! The page frame and the pieces every page uses.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::session::Session;

/// A page: head, skip link, navigation (with logout) when logged in, `body`.
pub(super) fn layout(s: Option<&Session>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ispd" }
                link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/console/assets/app.css";
                script src="/console/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                @if let Some(s) = s {
                    header.top {
                        nav aria-label="Console" {
                            a href="/" { "Now" }
                            a href="/console/subscribers" { "Subscribers" }
                            a href="/console/vouchers" { "Vouchers" }
                            a href="/console/jobs" { "Jobs & routers" }
                            a href="/console/audit" { "Audit" }
                        }
                        form.logout method="post" action="/console/logout" {
                            (csrf(s))
                            button type="submit" id="logout" { "Log out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login form: one field, `token`.
pub(super) fn login(refused: Option<&str>) -> Markup {
    layout(
        None,
        "ispd console",
        html! {
            @if let Some(r) = refused {
                p.error role="alert" { (r) }
            }
            form.login method="post" action="/console/login" {
                label for="token" { "Admin token" }
                input type="password" id="token" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// A page with one message.
pub(super) fn message(s: &Session, title: &str, text: &str) -> Markup {
    layout(Some(s), title, html! { p role="alert" { (text) } })
}

/// The session's CSRF token as a hidden field.
pub(super) fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// An instant as operators read it.
pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional instant, or a dash.
pub(super) fn when_opt(t: Option<DateTime<Utc>>) -> String {
    t.map(when).unwrap_or_else(|| "—".into())
}

/// A vertical bar chart as inline SVG: one bar per value, `label` read by screen readers.
pub(super) fn bars(label: &str, values: &[f64], unit: &str) -> Markup {
    let max = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let w = 6.0;
    let h = 60.0;
    let width = values.len() as f64 * w;
    html! {
        figure.chart {
            svg role="img" aria-label=(label) viewBox=(format!("0 0 {width} {h}")) preserveAspectRatio="none" {
                title { (label) }
                @for (i, v) in values.iter().enumerate() {
                    @let bh = (v / max * (h - 2.0)).max(if *v > 0.0 { 1.0 } else { 0.0 });
                    rect x=(i as f64 * w + 0.5) y=(h - bh) width=(w - 1.0) height=(bh) {
                        title { (format!("{v:.0} {unit}")) }
                    }
                }
            }
            figcaption { (label) " (max " (format!("{max:.0}")) " " (unit) ")" }
        }
    }
}
