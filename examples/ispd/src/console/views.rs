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

/// One bar of a [`chart`]: its height, an optional narrower inner bar drawn
/// over it (a median inside a 99th percentile), and the tooltip.
pub(super) struct Bar {
    pub(super) value: f64,
    pub(super) inner: Option<f64>,
    pub(super) title: String,
}

/// A bar chart as inline SVG, one bar per minute (no script, no library).
/// `summary` is its text alternative: the caption, which names the SVG.
/// `top` says what the full height stands for, given the tallest bar.
pub(super) fn chart(id: &str, summary: &str, bars: &[Bar], top: impl Fn(f64) -> String) -> Markup {
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { max } else { 1.0 };
    let w = 6.0;
    let h = 60.0;
    let width = bars.len() as f64 * w;
    let height = |v: f64| (v / scale * (h - 2.0)).max(if v > 0.0 { 1.0 } else { 0.0 });
    html! {
        figure.chart id=(id) {
            svg role="img" aria-labelledby=(format!("{id}-caption")) viewBox=(format!("0 0 {width} {h}")) preserveAspectRatio="none" {
                title { (summary) }
                @for (i, b) in bars.iter().enumerate() {
                    @let x = i as f64 * w + 0.5;
                    @let bh = height(b.value);
                    rect x=(x) y=(h - bh) width=(w - 1.0) height=(bh) {
                        title { (b.title) }
                    }
                    @if let Some(v) = b.inner {
                        @let ih = height(v);
                        rect.inner x=(x + 1.25) y=(h - ih) width=(w - 3.5) height=(ih) {
                            title { (b.title) }
                        }
                    }
                }
            }
            p.axis aria-hidden="true" { span { "60 min ago" } span { "top: " (top(max)) } span { "now" } }
            figcaption id=(format!("{id}-caption")) { (summary) }
        }
    }
}

/// A number as a chart labels it: whole numbers without decimals, others with two.
pub(super) fn format_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
