//! Payment-due and PPP/VPN service-expiry reminders, per tenant time zone.

use std::collections::HashMap;

use chrono::{DateTime, Days, Utc};
use chrono_tz::Tz;

use crate::domain::{CustomerId, NoticeKind, PhoneNumber, Service, Tenant};
use crate::error::Result;
use crate::jobs::common::ceil_div;
use crate::jobs::common::{local_text, render, RunCtx};
use crate::jobs::Engine;
use crate::policy::reminders::{service_reminders, PAYMENT_DUE_DAYS_BEFORE};
use crate::policy::time::local_date;
use crate::policy::NoticeDue;

impl Engine {
    pub(crate) async fn payment_reminders(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        let tenants = self.deps.repos.tenants.list().await?;
        let mut phones: HashMap<CustomerId, Option<PhoneNumber>> = HashMap::new();
        for tenant in tenants {
            if let Err(e) = self.remind_tenant(ctx, &tenant, &mut phones).await {
                ctx.tally.fail(format!("tenant:{}", tenant.slug), None, &e);
            }
        }
        ctx.flush_audit().await;
        Ok(())
    }

    async fn remind_tenant(
        &self,
        ctx: &mut RunCtx<'_>,
        tenant: &Tenant,
        phones: &mut HashMap<CustomerId, Option<PhoneNumber>>,
    ) -> Result<()> {
        let now = ctx.now();
        let tz = tenant.time_zone;
        let today = local_date(now, tz);
        // Every reminder owed today concerns a due date in [today, today + 3].
        let to = today
            .checked_add_days(Days::new(PAYMENT_DUE_DAYS_BEFORE))
            .unwrap_or(today);
        let services = self.deps.repos.services.due_between(tenant.id, today, to).await?;
        for s in services {
            let phone = match phones.get(&s.customer_id) {
                Some(p) => p.clone(),
                None => {
                    let p = match self.deps.repos.customers.get(s.customer_id).await {
                        Ok(c) => c.phone,
                        Err(e) => {
                            ctx.tally.fail(format!("customer:{}", s.customer_id), None, &e);
                            continue;
                        }
                    };
                    phones.insert(s.customer_id, p.clone());
                    p
                }
            };
            let Some(phone) = phone else {
                ctx.tally.add("skipped_no_phone", 1);
                continue;
            };
            for due in service_reminders(&s, &phone, tz, now) {
                if self.legacy_reminder_exists(ctx, &due).await {
                    continue;
                }
                let body = self.reminder_body(ctx, &s, &due, tz, now).await;
                self.reserve_notice(ctx, &due, body, now).await;
            }
        }
        Ok(())
    }

    /// Whether a reminder of the same recipient, kind and deadline was
    /// reserved before notices had a subject (stored with subject ""): it
    /// stood for all of the customer's services due then, so none is sent
    /// again. Counted as a duplicate.
    async fn legacy_reminder_exists(&self, ctx: &mut RunCtx<'_>, due: &NoticeDue) -> bool {
        match self
            .deps
            .repos
            .notices
            .find(&due.recipient, due.kind, due.deadline, "")
            .await
        {
            Ok(Some(_)) => {
                ctx.tally.add("notices_duplicate", 1);
                true
            }
            Ok(None) => false,
            Err(e) => {
                ctx.tally.fail(format!("notice:{}", due.kind.as_str()), None, &e);
                true
            }
        }
    }

    async fn reminder_body(
        &self,
        ctx: &mut RunCtx<'_>,
        s: &Service,
        due: &NoticeDue,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> String {
        let templates = &self.config.templates;
        match due.kind {
            NoticeKind::PaymentDue => {
                let amount = match ctx.plan(s.plan_id).await {
                    Ok(p) => p.price.to_string(),
                    Err(_) => String::from("your plan price"),
                };
                render(
                    &templates.payment_due,
                    &[("due_date", s.next_billing_date.to_string()), ("amount", amount)],
                )
            }
            _ => {
                let hours = ceil_div((due.deadline - now).num_minutes(), 60);
                render(
                    &templates.service_expires,
                    &[
                        ("hours", hours.to_string()),
                        ("expires_at", local_text(due.deadline, tz)),
                    ],
                )
            }
        }
    }
}
