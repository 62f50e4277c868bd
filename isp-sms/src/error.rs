//! The one place where gateway failures become [`isp_core::Error`]s.

use std::error::Error as StdError;
use std::time::Duration;

use isp_core::Error;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

/// Longest piece of a gateway's reply quoted in an error.
const MAX_DETAIL_CHARS: usize = 300;

/// Replaces every secret a sender holds with `[redacted]` before text leaves the crate.
///
/// Gateways should never echo a key back, but an error text is the last place
/// to find out that one does.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    secrets: Vec<SecretString>,
}

impl Scrubber {
    /// A scrubber for these secrets (very short values are ignored: they would
    /// redact ordinary words and protect nothing).
    pub(crate) fn new(secrets: impl IntoIterator<Item = SecretString>) -> Self {
        Scrubber {
            secrets: secrets
                .into_iter()
                .filter(|s| s.expose_secret().len() >= 4)
                .collect(),
        }
    }

    /// `text` with every secret replaced.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            let value = secret.expose_secret();
            if out.contains(value) {
                out = out.replace(value, "[redacted]");
            }
        }
        out
    }
}

/// What went wrong in one exchange with a gateway, before it is classified.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request could not be sent or the reply not read (connect, timeout, reset, ...).
    Transport(reqwest::Error),
    /// The gateway answered with a non-success HTTP status.
    Status {
        /// The status.
        status: StatusCode,
        /// The gateway's own words (already extracted from its reply format).
        detail: String,
    },
    /// The gateway answered 2xx with something we cannot read.
    BadReply(String),
    /// The gateway read the request and refused this recipient or message.
    Refused {
        /// Whether the gateway says the failure is on its side and may pass.
        transient: bool,
        /// What the gateway said.
        detail: String,
    },
}

/// Classifies a failure: the only function in this crate that decides an error
/// variant, and so whether it is retried ([`Error::is_transient`]).
///
/// A message is retried only when it certainly was not sent:
///
/// - the connection could not be made (refused, DNS, connect timeout, TLS
///   handshake: nothing was written), HTTP 429, 503 and 408 (the gateway says
///   it did not take the request), a refusal the gateway marks as passing:
///   [`Error::Unavailable`] (transient);
/// - a timeout or a broken connection after the request was written, and any
///   other HTTP 5xx: [`Error::OutcomeUnknown`] (not transient: the gateway
///   may have sent the message, and a retry could send it twice);
/// - HTTP 401 and 403: [`Error::Authentication`];
/// - any other 4xx, and a per-recipient refusal: [`Error::Rejected`];
/// - redirects, undecodable or unexpected replies: [`Error::Protocol`].
///
/// Every text is scrubbed of the sender's secrets, and reqwest errors lose
/// their URL before they are kept as a source.
pub(crate) fn map_error(service: &str, failure: Failure, scrubber: &Scrubber) -> Error {
    match failure {
        Failure::Transport(err) => {
            let err = err.without_url();
            if err.is_connect() {
                // Connecting (TCP, DNS, TLS) failed: no byte of the request left.
                let detail = format!("cannot connect: {}", scrubber.scrub(&chain(&err)));
                return Error::unavailable_from(service, detail, err);
            }
            if err.is_builder() {
                return Error::Internal(format!(
                    "cannot build the request to {service}: {}",
                    scrubber.scrub(&chain(&err))
                ));
            } else if err.is_redirect() {
                return Error::Protocol {
                    service: service.to_owned(),
                    detail: format!("redirect refused: {}", scrubber.scrub(&chain(&err))),
                };
            } else if err.is_decode() {
                return Error::Protocol {
                    service: service.to_owned(),
                    detail: format!("cannot decode the reply: {}", scrubber.scrub(&chain(&err))),
                };
            }
            let what = if err.is_timeout() {
                "timed out after the request was sent"
            } else {
                "the connection failed after the request was sent"
            };
            Error::outcome_unknown(service, format!("{what}: {}", scrubber.scrub(&chain(&err))))
        }
        Failure::Status { status, detail } => {
            let detail = format!("HTTP {}: {}", status.as_u16(), clip(&scrubber.scrub(&detail)));
            match status.as_u16() {
                401 | 403 => Error::Authentication {
                    service: service.to_owned(),
                    detail,
                },
                // The gateway says it did not take the request: safe to send again.
                408 | 429 | 503 => Error::unavailable(service, detail),
                // It read the request and failed somewhere: it may have sent it.
                500..=599 => Error::outcome_unknown(service, detail),
                400..=499 => Error::Rejected {
                    service: service.to_owned(),
                    detail,
                },
                _ => Error::Protocol {
                    service: service.to_owned(),
                    detail: format!("unexpected status: {detail}"),
                },
            }
        }
        Failure::BadReply(detail) => Error::Protocol {
            service: service.to_owned(),
            detail: clip(&scrubber.scrub(&detail)),
        },
        Failure::Refused { transient, detail } => {
            let detail = clip(&scrubber.scrub(&detail));
            if transient {
                Error::unavailable(service, detail)
            } else {
                Error::Rejected {
                    service: service.to_owned(),
                    detail,
                }
            }
        }
    }
}

/// An error and its sources, joined with `: ` (reqwest's own text says little).
fn chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let s = inner.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = inner.source();
    }
    text
}

/// One line of at most [`MAX_DETAIL_CHARS`] characters.
pub(crate) fn clip(text: &str) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= MAX_DETAIL_CHARS {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(MAX_DETAIL_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// A failed attempt, as the retry loop sees it.
#[derive(Debug)]
pub(crate) struct Attempt {
    /// The classified error.
    pub(crate) error: Error,
    /// How long the gateway asked us to wait (`Retry-After`), if it did.
    pub(crate) retry_after: Option<Duration>,
}

impl From<Error> for Attempt {
    fn from(error: Error) -> Self {
        Attempt {
            error,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let s = Scrubber::default();
        let e = |code: u16| {
            map_error(
                "gw",
                Failure::Status {
                    status: StatusCode::from_u16(code).unwrap(),
                    detail: "x".into(),
                },
                &s,
            )
        };
        assert_eq!(e(401).kind(), "authentication");
        assert_eq!(e(403).kind(), "authentication");
        assert_eq!(e(400).kind(), "rejected");
        assert_eq!(e(404).kind(), "rejected");
        assert_eq!(e(422).kind(), "rejected");
        assert!(e(429).is_transient());
        assert!(e(408).is_transient());
        assert!(e(503).is_transient());
        for code in [500, 501, 502, 504, 599] {
            assert!(e(code).is_outcome_unknown(), "{code}");
            assert!(!e(code).is_transient(), "{code}");
        }
        assert_eq!(e(302).kind(), "protocol");
        assert!(!e(400).is_transient());
    }

    #[test]
    fn refusals_follow_the_gateway() {
        let s = Scrubber::default();
        let transient = map_error(
            "gw",
            Failure::Refused {
                transient: true,
                detail: "GatewayError".into(),
            },
            &s,
        );
        assert!(transient.is_transient());
        let permanent = map_error(
            "gw",
            Failure::Refused {
                transient: false,
                detail: "InvalidPhoneNumber".into(),
            },
            &s,
        );
        assert_eq!(permanent.kind(), "rejected");
    }

    #[test]
    fn secrets_are_scrubbed_and_details_clipped() {
        let s = Scrubber::new([SecretString::from("hunter2-key")]);
        let e = map_error(
            "gw",
            Failure::Status {
                status: StatusCode::BAD_REQUEST,
                detail: format!("bad key hunter2-key\n{}", "y".repeat(1000)),
            },
            &s,
        );
        let text = e.to_string();
        assert!(!text.contains("hunter2-key"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains('\n'));
        assert!(text.chars().count() < 400, "{}", text.len());
    }

    #[test]
    fn short_secrets_are_not_scrubbed_everywhere() {
        let s = Scrubber::new([SecretString::from("a")]);
        assert_eq!(s.scrub("banana"), "banana");
    }
}
