//! What every HTTP gateway shares: the client, timeouts, the retry loop and
//! reading a bounded reply.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::Retryable;
use isp_core::{Error, Result};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url};

use crate::error::{Attempt, Failure};

/// The most of a reply body that is read (larger replies are cut, not buffered).
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Timeouts and the retry budget of an HTTP gateway.
///
/// Only failures where the message certainly was not sent are retried (the
/// connection could not be made; HTTP 429, 503 and 408; a gateway refusal it
/// marks as passing), at most `max_retries` times, with exponential backoff
/// between `initial_backoff` and `max_backoff`, each delay drawn at random in
/// its upper half so that several daemons do not retry in lockstep (a
/// `Retry-After` from the gateway is honoured up to `max_backoff`). A timeout
/// or a broken connection after the request was written, and other 5xx, are
/// never retried: they end as [`Error::OutcomeUnknown`]. The worst case for
/// one message is therefore about `(max_retries + 1) * timeout` plus
/// `max_retries * max_backoff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time allowed to open the TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, connection and reply included.
    pub timeout: Duration,
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: usize,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any delay between two attempts.
    pub max_backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Largest accepted `max_retries`: the budget must stay small.
pub(crate) const MAX_RETRIES_LIMIT: usize = 10;
/// Largest accepted timeout.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(300);

impl HttpOptions {
    /// Checks the options; `field` prefixes the names in errors (`sms.http`).
    pub(crate) fn validate(&self, field: &str) -> Result<()> {
        for (name, value) in [
            ("connect_timeout_secs", self.connect_timeout),
            ("timeout_secs", self.timeout),
        ] {
            if value.is_zero() || value > MAX_TIMEOUT {
                return Err(Error::invalid(
                    format!("{field}.{name}"),
                    value.as_secs_f64(),
                    format!(
                        "must be more than 0 and at most {} seconds",
                        MAX_TIMEOUT.as_secs()
                    ),
                ));
            }
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(Error::invalid(
                format!("{field}.max_retries"),
                self.max_retries,
                format!("at most {MAX_RETRIES_LIMIT}: retries are a short, bounded budget"),
            ));
        }
        if self.initial_backoff > self.max_backoff || self.max_backoff > Duration::from_secs(60) {
            return Err(Error::invalid(
                format!("{field}.retry_initial_delay_ms"),
                self.initial_backoff.as_millis(),
                "must be at most the maximum delay, itself at most 60 s",
            ));
        }
        Ok(())
    }

    /// A client with these timeouts, rustls, and no redirects (a redirect
    /// would carry credentials somewhere unexpected).
    pub(crate) fn client(&self, service: &str) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("isp-sms/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::Internal(format!(
                    "cannot build the HTTP client for {service}: {}",
                    e.without_url()
                ))
            })
    }
}

/// A gateway's reply: status, the headers we use, and at most [`MAX_REPLY_BYTES`] of body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: String,
}

/// Sends `request` and reads its reply.
pub(crate) async fn exchange(request: RequestBuilder) -> std::result::Result<Reply, Failure> {
    let mut response = request.send().await.map_err(Failure::Transport)?;
    let status = response.status();
    let retry_after = parse_retry_after(response.headers());
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::Transport)? {
        let room = MAX_REPLY_BYTES.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_REPLY_BYTES {
            break;
        }
    }
    Ok(Reply {
        status,
        retry_after,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Runs `attempt` until it succeeds, fails for good, or the retry budget of
/// `options` is spent. A final transient error says how many attempts were made.
pub(crate) async fn with_retries<T, F, Fut>(
    service: &'static str,
    options: &HttpOptions,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Attempt>>,
{
    let backoff = Jittered::new(
        options.initial_backoff,
        options.max_backoff,
        options.max_retries,
        random_seed(),
    );
    let max_backoff = options.max_backoff;
    let attempts = AtomicUsize::new(0);
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt()
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(|a: &Attempt| a.error.is_transient())
    .adjust(move |a: &Attempt, delay| {
        // A Retry-After may ask for more than the budget allows: capped.
        delay.map(|d| {
            let d = d.min(max_backoff);
            match a.retry_after {
                Some(asked) => asked.clamp(d, max_backoff),
                None => d,
            }
        })
    })
    .notify(|a: &Attempt, delay| {
        tracing::warn!(
            gateway = service,
            error = %a.error,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "sms gateway attempt failed, retrying"
        );
    })
    .await;
    result.map_err(|a| {
        let n = attempts.load(Ordering::Relaxed);
        match a.error {
            Error::Unavailable {
                service,
                detail,
                source,
            } if n > 1 => Error::Unavailable {
                service,
                detail: format!("{detail} (gave up after {n} attempts)"),
                source,
            },
            other => other,
        }
    })
}

/// Exponential delays with "equal jitter": the `n`-th delay is drawn in
/// `[d / 2, d]` where `d = min(initial * 2^n, max)`, so it never exceeds `max`
/// and daemons that failed together spread out, even at the cap.
#[derive(Debug, Clone)]
pub(crate) struct Jittered {
    next: Duration,
    max: Duration,
    left: usize,
    state: u64,
}

impl Jittered {
    /// At most `times` delays starting near `initial`; `seed` picks the jitter.
    pub(crate) fn new(initial: Duration, max: Duration, times: usize, seed: u64) -> Self {
        Jittered {
            next: initial.min(max),
            max,
            left: times,
            state: seed,
        }
    }

    /// splitmix64: small, fast, and good enough to spread retries.
    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Iterator for Jittered {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let ceiling = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        // A fraction in [0.5, 1] with 53 random bits.
        let fraction = 0.5 + 0.5 * (self.random() >> 11) as f64 / (1u64 << 53) as f64;
        Some(ceiling.mul_f64(fraction).min(ceiling))
    }
}

/// A seed that differs per call and per process.
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    std::collections::hash_map::RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
}

/// Checks a configured base URL: http or https, a host, no credentials, no query.
pub(crate) fn parse_base_url(field: &str, raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::invalid(field, redact_url(raw), format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::invalid(
            field,
            redact_url(raw),
            "must be an http:// or https:// URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(Error::invalid(
            field,
            redact_url(raw),
            "must not carry credentials or a query: keys go in their own (secret) fields",
        ));
    }
    Ok(url)
}

/// Appends `segments` to `base`'s path (keeping any path prefix of `base`).
pub(crate) fn join_path(field: &str, base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| Error::invalid(field, base.as_str(), "cannot be a base URL"))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

/// A URL safe to show: scheme, host, port and path; credentials and query
/// (where keys tend to hide) replaced.
pub(crate) fn redact_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(url) => {
            let mut shown = format!("{}://", url.scheme());
            if !url.username().is_empty() || url.password().is_some() {
                shown.push_str("[redacted]@");
            }
            shown.push_str(url.host_str().unwrap_or(""));
            if let Some(port) = url.port() {
                shown.push_str(&format!(":{port}"));
            }
            shown.push_str(url.path());
            if url.query().is_some() {
                shown.push_str("?[redacted]");
            }
            shown
        }
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_hide_credentials_and_query() {
        assert_eq!(
            redact_url("https://u:p@gw.example:8443/send?key=s3cret&to=1"),
            "https://[redacted]@gw.example:8443/send?[redacted]"
        );
        assert_eq!(redact_url("http://127.0.0.1:80/x"), "http://127.0.0.1/x");
        assert_eq!(redact_url("not a url s3cret"), "[unparsable URL]");
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("f", "https://api.twilio.com").is_ok());
        for bad in ["ftp://x", "nonsense", "https://k:s@x", "https://x/?key=1"] {
            let e = parse_base_url("sms.base_url", bad).unwrap_err();
            assert!(e.to_string().contains("sms.base_url"), "{e}");
        }
        let e = parse_base_url("f", "https://x/?key=s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn join_keeps_prefixes() {
        let base = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        let url = join_path("f", &base, &["version1", "messaging"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/prefix/version1/messaging");
        let base = Url::parse("https://api.africastalking.com").unwrap();
        let url = join_path("f", &base, &["version1", "messaging"]).unwrap();
        assert_eq!(url.as_str(), "https://api.africastalking.com/version1/messaging");
    }

    fn quick(max_retries: usize, max_backoff_ms: u64) -> HttpOptions {
        HttpOptions {
            max_retries,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(max_backoff_ms),
            ..HttpOptions::default()
        }
    }

    #[tokio::test]
    async fn only_transient_errors_are_retried_within_the_budget() {
        let calls = AtomicUsize::new(0);
        let err = with_retries("gw", &quick(3, 5), || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(Attempt::from(Error::unavailable("gw", "down")))
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert!(err.to_string().contains("gave up after 4 attempts"), "{err}");

        let calls = AtomicUsize::new(0);
        let err = with_retries("gw", &quick(3, 5), || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>(Attempt::from(Error::Rejected {
                service: "gw".into(),
                detail: "no".into(),
            }))
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(err.kind(), "rejected");

        let calls = AtomicUsize::new(0);
        let ok = with_retries("gw", &quick(3, 5), || async {
            if calls.fetch_add(1, Ordering::Relaxed) < 2 {
                Err(Attempt::from(Error::unavailable("gw", "down")))
            } else {
                Ok(7)
            }
        })
        .await
        .unwrap();
        assert_eq!((ok, calls.load(Ordering::Relaxed)), (7, 3));
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_the_maximum_delay() {
        let asked = |secs| {
            let calls = AtomicUsize::new(0);
            move || {
                let first = calls.fetch_add(1, Ordering::Relaxed) == 0;
                async move {
                    if first {
                        Err(Attempt {
                            error: Error::unavailable("gw", "429"),
                            retry_after: Some(Duration::from_secs(secs)),
                        })
                    } else {
                        Ok(())
                    }
                }
            }
        };
        // Asked for 1 s, allowed up to 200 ms: waits the 200 ms, not the 1 ms backoff.
        let started = std::time::Instant::now();
        with_retries("gw", &quick(1, 200), asked(1)).await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(190), "{waited:?}");
        assert!(waited < Duration::from_millis(900), "{waited:?}");
        // Asked for 60 s, allowed up to 20 ms: the budget wins.
        let started = std::time::Instant::now();
        with_retries("gw", &quick(1, 20), asked(60)).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn backoff_is_jittered_within_bounds() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let a: Vec<_> = Jittered::new(initial, max, 8, 1).collect();
        let b: Vec<_> = Jittered::new(initial, max, 8, 2).collect();
        assert_eq!(a.len(), 8);
        assert_ne!(
            a, b,
            "two seeds gave the same delays: daemons would retry in lockstep"
        );
        for seq in [&a, &b] {
            let mut ceiling = initial;
            for d in seq {
                assert!(
                    *d >= ceiling / 2 && *d <= ceiling,
                    "{d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
                ceiling = (ceiling * 2).min(max);
            }
        }
        // At the cap the delays still differ.
        let capped: Vec<_> = Jittered::new(max, max, 4, 3).collect();
        assert!(capped.iter().all(|d| *d <= max && *d >= max / 2), "{capped:?}");
        assert!(capped.windows(2).any(|w| w[0] != w[1]), "{capped:?}");
        assert_ne!(random_seed(), random_seed());
    }

    #[test]
    fn options_are_validated() {
        assert!(HttpOptions::default().validate("sms.http").is_ok());
        let e = HttpOptions {
            timeout: Duration::ZERO,
            ..HttpOptions::default()
        }
        .validate("sms.http")
        .unwrap_err();
        assert!(e.to_string().contains("sms.http.timeout_secs"), "{e}");
        let e = HttpOptions {
            max_retries: 50,
            ..HttpOptions::default()
        }
        .validate("sms.http")
        .unwrap_err();
        assert!(e.to_string().contains("max_retries"), "{e}");
        assert!(e.to_string().contains("50"), "{e}");
    }
}
