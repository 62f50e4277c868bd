//! Console sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie,
//! a CSRF token per session for every POST, and a per-client limit on wrong
//! admin tokens.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ispd_session";

/// How long a session lasts after login.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Wrong tokens a client may send within [`FAILURE_WINDOW`] before it is refused outright.
pub(crate) const MAX_FAILURES: usize = 5;

/// The window [`MAX_FAILURES`] counts in.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Sessions held at most; the oldest goes first when full.
const MAX_SESSIONS: usize = 1_000;

/// One logged-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// The token every form of this session carries.
    pub(crate) csrf: String,
    expires: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("csrf", &"[redacted]")
            .field("expires", &self.expires)
            .finish()
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub(crate) fn csrf_ok(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The sessions and the failed logins of this process.
#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sessions { .. }")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 32 random bytes, hex.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// A new session; returns its id (the cookie value).
    pub(crate) fn create(&self) -> (String, Session) {
        let id = random_token();
        let session = Session {
            csrf: random_token(),
            expires: Instant::now() + SESSION_TTL,
        };
        let mut live = lock(&self.live);
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                live.remove(&oldest);
            }
        }
        live.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session the request's cookie names.
    pub(crate) fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let mut live = lock(&self.live);
        match live.get(&id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Ends the session the request's cookie names.
    pub(crate) fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            lock(&self.live).remove(&id);
        }
    }

    /// Whether `client` may try a token now (fewer than [`MAX_FAILURES`] wrong ones
    /// within [`FAILURE_WINDOW`]).
    pub(crate) fn may_try(&self, client: &str) -> bool {
        let mut failures = lock(&self.failures);
        let now = Instant::now();
        let Some(q) = failures.get_mut(client) else {
            return true;
        };
        while q.front().is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW) {
            q.pop_front();
        }
        if q.is_empty() {
            failures.remove(client);
            return true;
        }
        q.len() < MAX_FAILURES
    }

    /// Records a wrong token from `client`.
    pub(crate) fn failed(&self, client: &str) {
        let mut failures = lock(&self.failures);
        if failures.len() > 10_000 {
            let now = Instant::now();
            failures.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= FAILURE_WINDOW));
        }
        failures
            .entry(client.to_owned())
            .or_default()
            .push_back(Instant::now());
    }
}

/// The session id in the request's `Cookie` header.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether the request came over TLS (through a proxy that says so).
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session (`Secure` when `secure`).
pub(crate) fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let mut v = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    if secure {
        v.push_str("; Secure");
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("ispd_session=; Max-Age=0"))
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("ispd_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends() {
        let s = Sessions::default();
        let (id, session) = s.create();
        let h = with_cookie(&format!("a=b; {COOKIE}={id}; c=d"));
        let found = s.of(&h).expect("session");
        assert!(found.csrf_ok(&session.csrf));
        assert!(!found.csrf_ok("nope"));
        assert!(s.of(&with_cookie(&format!("{COOKIE}=x{id}"))).is_none());
        s.end(&h);
        assert!(s.of(&h).is_none());
    }

    #[test]
    fn tokens_are_random_and_long() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token());
    }

    #[test]
    fn a_client_is_refused_after_max_failures_others_are_not() {
        let s = Sessions::default();
        for _ in 0..MAX_FAILURES {
            assert!(s.may_try("10.0.0.1"));
            s.failed("10.0.0.1");
        }
        assert!(!s.may_try("10.0.0.1"));
        assert!(s.may_try("10.0.0.2"));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let plain = set_cookie("abc", false);
        let plain = plain.to_str().unwrap();
        assert!(
            plain.contains("HttpOnly") && plain.contains("SameSite=Strict") && plain.contains("Max-Age=")
        );
        assert!(!plain.contains("Secure"));
        assert!(set_cookie("abc", true).to_str().unwrap().ends_with("; Secure"));
    }
}
