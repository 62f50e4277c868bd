//! Device clean-up and log retention.

use crate::error::Result;
use crate::jobs::common::RunCtx;
use crate::jobs::Engine;

fn cutoff(now: chrono::DateTime<chrono::Utc>, keep: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    now.checked_sub_signed(keep)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

impl Engine {
    /// Deletes devices unseen for `device_retention`. The ports have no
    /// read-only count for this, so a dry run deletes nothing and counts nothing.
    pub(crate) async fn device_cleanup(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        if ctx.dry_run {
            return Ok(());
        }
        let before = cutoff(ctx.now(), self.config.device_retention);
        let n = self.deps.repos.devices.delete_unseen_since(before).await?;
        ctx.tally.add("devices_deleted", n);
        Ok(())
    }

    /// Deletes audit events older than `log_retention` (same dry-run caveat).
    pub(crate) async fn log_retention(&self, ctx: &mut RunCtx<'_>) -> Result<()> {
        if ctx.dry_run {
            return Ok(());
        }
        let before = cutoff(ctx.now(), self.config.log_retention);
        let n = self.deps.repos.audit.delete_before(before).await?;
        ctx.tally.add("events_deleted", n);
        Ok(())
    }
}
