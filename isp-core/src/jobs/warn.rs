//! Warn hotspot subscribers an hour before their access ends.

use std::collections::HashSet;

use crate::domain::Subscriber;
use crate::error::Result;
use crate::jobs::common::ceil_div;
use crate::jobs::common::{local_text, render, RunCtx};
use crate::jobs::Engine;
use crate::policy::reminders::{hotspot_reminder, HOTSPOT_LEAD};

impl Engine {
    pub(crate) async fn warn_before_expiry(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let now = ctx.now();
        let to = now.checked_add_signed(HOTSPOT_LEAD).unwrap_or(now);
        let limit = self.config.batch_size.max(1);
        let mut from = now;
        let mut seen = HashSet::new();
        loop {
            // A read-only window query; paging by `paid_until` (the notice key
            // makes revisiting a subscriber harmless).
            let page = self
                .deps
                .repos
                .subscribers
                .expiring_between(from, to, limit)
                .await?;
            let full = page.len() >= limit;
            let Some(last) = page.last().map(|s| s.paid_until) else {
                break;
            };
            let first = page.first().map(|s| s.paid_until).unwrap_or(last);
            let mut progressed = false;
            for s in page {
                if seen.insert(s.id) {
                    progressed = true;
                    self.warn_one(ctx, &s, now).await;
                }
            }
            if !full || !progressed {
                break;
            }
            // Re-read the last instant unless the whole page shares it.
            from = if first < last {
                last.checked_sub_signed(chrono::Duration::nanoseconds(1))
                    .unwrap_or(last)
            } else {
                last
            };
        }
        ctx.flush_audit().await;
        Ok(())
    }

    async fn warn_one(&self, ctx: &mut RunCtx<'_>, s: &Subscriber, now: chrono::DateTime<chrono::Utc>) {
        let Some(due) = hotspot_reminder(s, now) else {
            return;
        };
        let tz = ctx.tz_of(s.tenant_id).await;
        let minutes = ceil_div((s.paid_until - now).num_seconds(), 60);
        let body = render(
            &self.config.templates.hotspot_expires_soon,
            &[
                ("minutes", minutes.to_string()),
                ("expires_at", local_text(s.paid_until, tz)),
                ("phone", s.phone.to_string()),
            ],
        );
        self.reserve_notice(ctx, &due, body, now).await;
    }
}
