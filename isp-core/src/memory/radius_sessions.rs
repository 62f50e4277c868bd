//! RADIUS sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::ports::RadiusSessionRepo;

/// [`RadiusSessionRepo`] over a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryRadiusSessionRepo {
    pub(super) store: MemoryStore,
}

/// Refuses counters a signed 64-bit column cannot hold (as every adapter does).
fn check_counters(s: &RadiusSession) -> Result<()> {
    for (field, v) in [
        ("input_octets", s.input_octets),
        ("output_octets", s.output_octets),
    ] {
        if i64::try_from(v).is_err() {
            return Err(Error::invalid(field, v, "at most 9223372036854775807"));
        }
    }
    Ok(())
}

fn by_start(mut v: Vec<RadiusSession>) -> Vec<RadiusSession> {
    v.sort_by(|a, b| (a.started, &a.session_id).cmp(&(b.started, &b.session_id)));
    v
}

#[async_trait]
impl RadiusSessionRepo for MemoryRadiusSessionRepo {
    async fn upsert(&self, session: &RadiusSession, start: bool) -> Result<bool> {
        check_counters(session)?;
        let mut s = self.store.lock();
        let key = (session.router, session.session_id.clone());
        let mut new = session.clone();
        new.stopped = None;
        match s.radius_sessions.get(&key) {
            Some(old) if old.is_live() => new.started = old.started,
            Some(_) if !start => return Ok(false),
            _ => {}
        }
        s.radius_sessions.insert(key, new);
        Ok(true)
    }

    async fn stop(&self, session: &RadiusSession) -> Result<bool> {
        check_counters(session)?;
        let mut s = self.store.lock();
        let key = (session.router, session.session_id.clone());
        let mut new = session.clone();
        let stopped = session.stopped.unwrap_or(session.updated);
        let was_live = match s.radius_sessions.get(&key) {
            Some(old) if old.is_live() => {
                new.started = old.started;
                new.stopped = Some(stopped);
                true
            }
            Some(old) => {
                new.started = old.started;
                new.stopped = old.stopped;
                false
            }
            None => {
                new.stopped = Some(stopped);
                false
            }
        };
        s.radius_sessions.insert(key, new);
        Ok(was_live)
    }

    async fn close(&self, router: RouterId, session_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut s = self.store.lock();
        match s.radius_sessions.get_mut(&(router, session_id.to_owned())) {
            Some(x) if x.is_live() => {
                x.stopped = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn close_router(&self, router: RouterId, at: DateTime<Utc>) -> Result<u64> {
        let mut s = self.store.lock();
        let mut n = 0;
        for x in s.radius_sessions.values_mut() {
            if x.router == router && x.is_live() {
                x.stopped = Some(at);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn close_stale(&self, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        let mut s = self.store.lock();
        let mut n = 0;
        for x in s.radius_sessions.values_mut() {
            if x.is_live() && x.updated < cutoff {
                x.stopped = Some(at);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn get(&self, router: RouterId, session_id: &str) -> Result<Option<RadiusSession>> {
        let s = self.store.lock();
        Ok(s.radius_sessions.get(&(router, session_id.to_owned())).cloned())
    }

    async fn live_on_router(&self, router: RouterId) -> Result<Vec<RadiusSession>> {
        let s = self.store.lock();
        Ok(by_start(
            s.radius_sessions
                .values()
                .filter(|x| x.router == router && x.is_live())
                .cloned()
                .collect(),
        ))
    }

    async fn live_of_user(&self, tenant: TenantId, user: &str) -> Result<Vec<RadiusSession>> {
        let s = self.store.lock();
        Ok(by_start(
            s.radius_sessions
                .values()
                .filter(|x| x.tenant == tenant && x.user == user && x.is_live())
                .cloned()
                .collect(),
        ))
    }

    async fn delete_closed_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut s = self.store.lock();
        let before = s.radius_sessions.len();
        s.radius_sessions
            .retain(|_, x| x.stopped.is_none_or(|at| at >= cutoff));
        Ok((before - s.radius_sessions.len()) as u64)
    }
}
