//! Vouchers for sale: generate codes, store them, push them to every enabled
//! router of the tenant as hotspot users with our owner tag and the plan's
//! uptime limit.
//!
//! # Every router of the tenant
//! A customer may log in at any of the tenant's routers, so each voucher's
//! user is on all of them. Generation sends the batch to the routers
//! concurrently, one call per router (under its concurrency limit).
//! [`Voucher::router_id`] is the voucher's home router: the first enabled
//! router of the tenant when it was generated (the column of seed 003, kept
//! so that no storage changes; the engine does not treat it as the only
//! router).
//!
//! A router that is down or fails gets the vouchers later from the
//! `sync-routers` job: its reconcile creates our missing user of every unused
//! voucher of the tenant, and of an active one whose user another router
//! shows ([`crate::policy::reconcile`]). That needs no new record and
//! survives a crash, since the vouchers are stored before any router is
//! touched and the sync compares them with what each router holds; a queue of
//! pending pushes would have to be written, leased and cleaned up besides.
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
use crate::jobs::common::duplicate;
use crate::jobs::{Engine, RouterAccess, RouterResult};
use crate::policy::voucher::voucher_user_spec;
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
    /// Per router of the tenant: `Enabled` when every code was pushed there,
    /// `Pending` with the first error otherwise (the sync pushes them later),
    /// `Skipped` for a disabled router.
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
    /// Generates `count` unused vouchers of a plan and pushes them to every
    /// enabled router of the tenant as hotspot users tagged for each voucher,
    /// with the plan's duration as `limit-uptime`.
    ///
    /// Each voucher expires unused after the engine's
    /// `voucher_activation_window` (7 days), and once activated by its first
    /// login on any router, after the plan's duration. The codes are stored
    /// before any router is touched; a router that fails is reported
    /// `Pending` and gets the vouchers at the next `sync-routers` run.
    ///
    /// ```
    /// # use isp_core::domain::*;
    /// # use isp_core::jobs::RouterAccess;
    /// # async fn demo(engine: isp_core::jobs::Engine, plan: PlanId) -> isp_core::Result<()> {
    /// let batch = engine.generate_vouchers(TenantId(1), plan, 20, Some("HOT")).await?;
    /// for v in &batch.vouchers {
    ///     println!("{}", v.code);
    /// }
    /// for r in &batch.routers {
    ///     if r.state == RouterAccess::Pending {
    ///         println!("{} gets them at the next sync: {:?}", r.router, r.error);
    ///     }
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
        let home =
            routers.iter().find(|r| r.enabled).cloned().ok_or_else(|| {
                Error::invalid("tenant", tenant, "has no enabled router to put vouchers on")
            })?;
        let now = self.deps.clock.now();
        let window = chrono::Duration::from_std(self.config.voucher_activation_window)
            .map_err(|_| Error::invalid("voucher_activation_window", "", "out of range"))?;
        let mut vouchers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            vouchers.push(
                self.insert_voucher(tenant, &home, &plan, duration, prefix, now + window)
                    .await?,
            );
        }
        let specs: Vec<HotspotUserSpec> = vouchers.iter().map(voucher_user_spec).collect();
        let pushes = futures::future::join_all(routers.iter().filter(|r| r.enabled).map(|router| {
            let specs = &specs;
            async move { (router, self.add_voucher_users(router, specs).await) }
        }))
        .await;
        let mut results = Vec::with_capacity(routers.len());
        for (router, answers) in pushes {
            let pushed = answers.iter().filter(|a| a.is_ok()).count();
            let first_error = answers.into_iter().find_map(|a| a.err()).map(|e| e.to_string());
            match &first_error {
                None => {
                    tracing::info!(router = %router.name, pushed, "vouchers pushed");
                }
                Some(e) => {
                    tracing::warn!(router = %router.name, pushed, of = count, error = %e, "vouchers not all pushed; the sync pushes the rest");
                }
            }
            results.push(RouterResult {
                router_id: router.id,
                router: router.name.clone(),
                state: if first_error.is_none() {
                    RouterAccess::Enabled
                } else {
                    RouterAccess::Pending
                },
                error: first_error,
            });
        }
        for router in routers.iter().filter(|r| !r.enabled) {
            results.push(RouterResult {
                router_id: router.id,
                router: router.name.clone(),
                state: RouterAccess::Skipped,
                error: None,
            });
        }
        let pending: Vec<&str> = results
            .iter()
            .filter(|r| r.state == RouterAccess::Pending)
            .map(|r| r.router.as_str())
            .collect();
        let events: Vec<AuditEvent> = vouchers
            .iter()
            .map(|v| AuditEvent {
                at: now,
                tenant_id: Some(tenant),
                action: "voucher_generate".into(),
                subject: format!("voucher:{}", v.code),
                router_id: Some(home.id),
                outcome: if pending.is_empty() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Retry
                },
                reason: Some(if pending.is_empty() {
                    format!("plan {}", plan.name)
                } else {
                    format!("plan {}; not yet on {}", plan.name, pending.join(", "))
                }),
            })
            .collect();
        if let Err(e) = repos.audit.append(&events).await {
            tracing::warn!(error = %e, "voucher audit write failed");
        }
        tracing::info!(tenant = %tenant, plan = %plan.name, count, routers = results.len(), pending = pending.len(), "vouchers generated");
        Ok(VoucherBatch {
            vouchers,
            routers: results,
        })
    }

    /// Adds our hotspot users of `specs` to one router, holding one of its
    /// permits for the whole list: one answer per spec, in order. Once the
    /// router is unreachable, the rest get that error without being sent.
    pub(crate) async fn add_voucher_users(
        &self,
        router: &Router,
        specs: &[HotspotUserSpec],
    ) -> Vec<Result<()>> {
        let driver = &self.deps.driver;
        let sent = self
            .limits
            .run(router.id, async {
                let mut out = Vec::with_capacity(specs.len());
                let mut down: Option<Error> = None;
                for spec in specs {
                    if let Some(e) = &down {
                        out.push(Err(duplicate(e)));
                        continue;
                    }
                    match driver.add_hotspot_user(router, spec).await {
                        Ok(_) => out.push(Ok(())),
                        Err(e) => {
                            if e.is_transient() {
                                down = Some(duplicate(&e));
                            }
                            out.push(Err(e));
                        }
                    }
                }
                Ok(out)
            })
            .await;
        match sent {
            Ok(out) => out,
            Err(e) => specs.iter().map(|_| Err(duplicate(&e))).collect(),
        }
    }

    /// Stores one voucher with a fresh code, drawing again on a collision.
    async fn insert_voucher(
        &self,
        tenant: TenantId,
        home: &Router,
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
                router_id: home.id,
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
