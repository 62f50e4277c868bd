//! One error family for the whole engine, with meaning and a retry verdict.

use std::fmt;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest rejected value [`Error::invalid`] keeps, in characters.
pub const MAX_SHOWN_VALUE: usize = 100;

/// Boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every failure the engine and its adapters report.
///
/// Adapters map their driver's errors onto these variants in one function each
/// (`map_sqlx_error`, `map_mongo_error`, `map_trap`, ...), so that retry
/// decisions are made in one place: [`Error::is_transient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value from outside failed validation.
    #[error("invalid {field}: {value:?} ({reason})")]
    InvalidInput {
        /// The field or parameter that was rejected.
        field: String,
        /// The rejected value, as given (never a secret).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The item does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of item (`subscriber`, `router`, ...).
        entity: &'static str,
        /// Its id or key.
        id: String,
    },
    /// A uniqueness rule or a compare-and-set guard refused the write.
    #[error("{entity} conflict: {detail}")]
    Conflict {
        /// Kind of item.
        entity: &'static str,
        /// What collided.
        detail: String,
    },
    /// A dependency (database, router, gateway) cannot be reached right now; retry later.
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        /// What is unavailable (`database`, `router main-office`, `sms gateway`).
        service: String,
        /// What happened.
        detail: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Credentials were refused. Never carries the secret.
    #[error("authentication failed for {service}: {detail}")]
    Authentication {
        /// Who refused.
        service: String,
        /// The remote's message.
        detail: String,
    },
    /// A remote refused the command (a RouterOS trap, a 4xx from a gateway).
    #[error("{service} rejected the request: {detail}")]
    Rejected {
        /// Who refused.
        service: String,
        /// The remote's message.
        detail: String,
    },
    /// A remote broke the protocol (bad bytes, unexpected reply).
    #[error("protocol error from {service}: {detail}")]
    Protocol {
        /// Who broke it.
        service: String,
        /// What was wrong.
        detail: String,
    },
    /// A request reached the remote (or may have), but no answer says whether
    /// it took effect: a gateway that timed out or failed (HTTP 500) after
    /// reading the whole request may or may not have sent the SMS.
    ///
    /// Not transient: repeating the request could do the thing twice (a
    /// customer gets the text twice, the operator pays twice). Whoever holds
    /// the request decides; the gateway's own logs or delivery reports tell.
    #[error("{service}: outcome unknown, the request may or may not have taken effect: {reason}")]
    OutcomeUnknown {
        /// Who got the request (`twilio`, `sms webhook`).
        service: String,
        /// What happened after the request was sent.
        reason: String,
    },
    /// A bug or a broken invariant inside the engine or an adapter.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Builds [`Error::InvalidInput`]. A value longer than
    /// [`MAX_SHOWN_VALUE`] characters is cut there and its length noted, so
    /// that a hostile megabyte never lands in an error, a log line or a reply.
    pub fn invalid(field: impl Into<String>, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        let mut value = value.to_string();
        let chars = value.chars().count();
        if chars > MAX_SHOWN_VALUE {
            let bytes = value.len();
            value = value.chars().take(MAX_SHOWN_VALUE).collect();
            value.push_str(&format!("... ({bytes} bytes)"));
        }
        Error::InvalidInput {
            field: field.into(),
            value,
            reason: reason.into(),
        }
    }

    /// Builds [`Error::NotFound`].
    pub fn not_found(entity: &'static str, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// Builds [`Error::Conflict`].
    pub fn conflict(entity: &'static str, detail: impl Into<String>) -> Self {
        Error::Conflict {
            entity,
            detail: detail.into(),
        }
    }

    /// Builds [`Error::Unavailable`] without a source.
    pub fn unavailable(service: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Unavailable {
            service: service.into(),
            detail: detail.into(),
            source: None,
        }
    }

    /// Builds [`Error::Unavailable`] with a source error.
    pub fn unavailable_from(
        service: impl Into<String>,
        detail: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Unavailable {
            service: service.into(),
            detail: detail.into(),
            source: Some(source.into()),
        }
    }

    /// True when retrying the same request later may succeed.
    ///
    /// Only [`Error::Unavailable`] is transient: everything else will fail the
    /// same way again until someone changes the input or the remote.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// True for [`Error::OutcomeUnknown`]: the request may have taken effect,
    /// so it must not be repeated blindly.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// Builds [`Error::OutcomeUnknown`].
    pub fn outcome_unknown(service: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::OutcomeUnknown {
            service: service.into(),
            reason: reason.into(),
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True for [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// A short machine-readable kind, for metrics and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Unavailable { .. } => "unavailable",
            Error::Authentication { .. } => "authentication",
            Error::Rejected { .. } => "rejected",
            Error::Protocol { .. } => "protocol",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
            Error::Internal(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_transient() {
        assert!(Error::unavailable("router r1", "connection refused").is_transient());
        assert!(!Error::not_found("subscriber", 1).is_transient());
        assert!(!Error::conflict("charge", "dup").is_transient());
        assert!(!Error::invalid("phone", "abc", "not E.164").is_transient());
    }

    #[test]
    fn an_unknown_outcome_is_not_transient_and_says_so() {
        let e = Error::outcome_unknown("twilio", "timed out after the request was sent");
        assert!(e.is_outcome_unknown());
        assert!(!e.is_transient(), "a retry could send the message twice");
        assert_eq!(e.kind(), "outcome_unknown");
        let text = e.to_string();
        assert!(
            text.contains("twilio") && text.contains("may or may not"),
            "{text}"
        );
        assert!(!Error::unavailable("twilio", "refused").is_outcome_unknown());
    }

    #[test]
    fn invalid_input_names_field_and_value() {
        let e = Error::invalid("mac_address", "zz:zz", "not a MAC address");
        let text = e.to_string();
        assert!(text.contains("mac_address"));
        assert!(text.contains("zz:zz"));
    }
}
