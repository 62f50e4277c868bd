//! Vouchers for sale: generate codes, store them, push them to the router as
//! hotspot users with our owner tag and the plan's uptime limit.
//!
//! # Codes
//! [`VOUCHER_CODE_LEN`] characters from [`VOUCHER_ALPHABET`] (31 characters:
//! upper-case letters and digits without `0 O 1 I L`, which people misread on
//! a printed card), drawn from the operating system's random source. That is
//! 31^10 ≈ 8.2 × 10^14 codes (49.5 bits): with 100,000 unused vouchers of a
//! tenant on sale and 100,000 guesses at the login page (days of trying, as
//! the hotspot answers a login in about a second), the chance that any guess
//! hits is about 1 in 80,000. A collision with an existing code or username
//! of the tenant is refused by the storage (one hotspot user namespace per
//! tenant, also across daemons) and the code is drawn again.

use chrono::Utc;
use rand::rngs::OsRng;
use rand::Rng;

use crate::domain::*;
use crate::error::{Error, Result};
use crate::jobs::{Engine, RouterAccess, RouterResult};
use crate::ports::HotspotUserSpec;

/// The characters of a generated code: no `0 O 1 I L`.
pub const VOUCHER_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Characters drawn per code (after the prefix).
pub const VOUCHER_CODE_LEN: usize = 10;

/// Most vouchers per call.
pub const MAX_VOUCHERS_PER_BATCH: u32 = 1_000;

/// Longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 8;

/// Draws for one code before giving up (a collision is ~10^-9 likely).
const CODE_ATTEMPTS: usize = 5;

/// What [`Engine::generate_vouchers`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct VoucherBatch {
    /// The vouchers, in creation order.
    pub vouchers: Vec<Voucher>,
    /// Their router: `Enabled` when every code was pushed, else `Pending`
    /// with the first error.
    pub routers: Vec<RouterResult>,
}

/// One random code, `prefix` + [`VOUCHER_CODE_LEN`] characters of
/// [`VOUCHER_ALPHABET`].
pub fn voucher_code(rng: &mut impl Rng, prefix: &str) -> String {
    let mut code = String::with_capacity(prefix.len() + VOUCHER_CODE_LEN);
    code.push_str(prefix);
    for _ in 0..VOUCHER_CODE_LEN {
        let i = rng.gen_range(0..VOUCHER_ALPHABET.len());
        code.push(char::from(VOUCHER_ALPHABET[i]));
    }
    code
}

fn check_prefix(prefix: &str) -> Result<()> {
    let ok = prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "prefix",
            prefix,
            format!("at most {MAX_PREFIX_LEN} characters of A-Z, 0-9 and -"),
        ))
    }
}

impl Engine {
    /// Generates `count` unused vouchers of a plan and pushes them to the
    /// tenant's voucher router (its first enabled router) as hotspot users
    /// tagged for each voucher, with the plan's duration as `limit-uptime`.
    ///
    /// Each voucher expires unused after the engine's
    /// `voucher_activation_window` (7 days), and once activated by its first
    /// login, after the plan's duration. The codes are stored before any
    /// router is touched; a router that fails is reported `Pending` (its
    /// vouchers are in storage; generating again does not duplicate them).
    ///
    /// ```
    /// # use isp_core::domain::*;
    /// # async fn demo(engine: isp_core::jobs::Engine, plan: PlanId) -> isp_core::Result<()> {
    /// let batch = engine.generate_vouchers(TenantId(1), plan, 20, Some("HOT")).await?;
    /// for v in &batch.vouchers {
    ///     println!("{}", v.code);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn generate_vouchers(
        &self,
        tenant: TenantId,
        plan: PlanId,
        count: u32,
        prefix: Option<&str>,
    ) -> Result<VoucherBatch> {
        if count == 0 || count > MAX_VOUCHERS_PER_BATCH {
            return Err(Error::invalid(
                "count",
                count,
                format!("must be between 1 and {MAX_VOUCHERS_PER_BATCH}"),
            ));
        }
        let prefix = prefix.unwrap_or("");
        check_prefix(prefix)?;
        let repos = &self.deps.repos;
        repos.tenants.get(tenant).await?;
        let plan = repos.plans.get(plan).await?;
        if plan.tenant_id != tenant {
            return Err(Error::not_found("plan", plan.id));
        }
        let duration = plan
            .duration
            .ok_or_else(|| Error::invalid("plan", &plan.name, "has no duration (a monthly plan?)"))?;
        let routers = self.deps.directory.routers_of(tenant).await?;
        let router =
            routers.iter().find(|r| r.enabled).cloned().ok_or_else(|| {
                Error::invalid("tenant", tenant, "has no enabled router to put vouchers on")
            })?;
        let now = self.deps.clock.now();
        let window = chrono::Duration::from_std(self.config.voucher_activation_window)
            .map_err(|_| Error::invalid("voucher_activation_window", "", "out of range"))?;
        let mut vouchers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            vouchers.push(
                self.insert_voucher(tenant, &router, &plan, duration, prefix, now + window)
                    .await?,
            );
        }
        let mut first_error = None;
        let mut pushed = 0_u64;
        for v in &vouchers {
            let spec = HotspotUserSpec {
                name: v.code.clone(),
                password: None,
                profile: None,
                limit_uptime: Some(duration),
                mac: None,
                owner: OwnerTag::Voucher(v.id),
            };
            let added = self
                .limits
                .run(router.id, self.deps.driver.add_hotspot_user(&router, &spec))
                .await;
            match added {
                Ok(_) => pushed += 1,
                Err(e) => {
                    tracing::warn!(voucher = %v.code, router = %router.name, error = %e, "voucher not pushed");
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        let events: Vec<AuditEvent> = vouchers
            .iter()
            .map(|v| AuditEvent {
                at: now,
                tenant_id: Some(tenant),
                action: "voucher_generate".into(),
                subject: format!("voucher:{}", v.code),
                router_id: Some(router.id),
                outcome: if first_error.is_none() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Retry
                },
                reason: Some(format!("plan {}", plan.name)),
            })
            .collect();
        if let Err(e) = repos.audit.append(&events).await {
            tracing::warn!(error = %e, "voucher audit write failed");
        }
        tracing::info!(tenant = %tenant, plan = %plan.name, count, pushed, router = %router.name, "vouchers generated");
        Ok(VoucherBatch {
            vouchers,
            routers: vec![RouterResult {
                router_id: router.id,
                router: router.name.clone(),
                state: if first_error.is_none() {
                    RouterAccess::Enabled
                } else {
                    RouterAccess::Pending
                },
                error: first_error,
            }],
        })
    }

    /// Stores one voucher with a fresh code, drawing again on a collision.
    async fn insert_voucher(
        &self,
        tenant: TenantId,
        router: &Router,
        plan: &Plan,
        duration: RosDuration,
        prefix: &str,
        activation_deadline: chrono::DateTime<Utc>,
    ) -> Result<Voucher> {
        let mut last = None;
        for _ in 0..CODE_ATTEMPTS {
            let code = RosName::parse("code", &voucher_code(&mut OsRng, prefix))?;
            let new = NewVoucher {
                tenant_id: tenant,
                router_id: router.id,
                code,
                plan_id: plan.id,
                activation_deadline: Some(activation_deadline),
                purchase_deadline: None,
                duration,
            };
            match self.deps.repos.vouchers.insert(&new).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_conflict() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::conflict("voucher", "no free code")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_do_not_repeat_over_100_000() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let code = voucher_code(&mut rng, "HOT-");
            assert_eq!(code.len(), 4 + VOUCHER_CODE_LEN);
            let body = &code[4..];
            assert!(body.bytes().all(|b| VOUCHER_ALPHABET.contains(&b)), "{code}");
            assert!(!body.contains(['0', 'O', '1', 'I', 'L']), "{code}");
            assert!(seen.insert(code), "a repeated code");
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("HOT-1").is_ok());
        let e = check_prefix("hot").expect_err("lower case");
        assert!(e.to_string().contains("prefix"), "{e}");
        assert!(check_prefix("TOOLONGPREFIX").is_err());
    }
}
