//! The one place where driver errors become engine errors.

use std::error::Error as StdError;

use isp_core::Error;
use mongodb::error::{ErrorKind, WriteFailure};

/// The service name used in [`Error::Unavailable`] and friends.
pub(crate) const SERVICE: &str = "mongodb";

/// Duplicate key.
const DUPLICATE_KEY: i32 = 11000;
/// Duplicate key, legacy code of old servers.
const DUPLICATE_KEY_LEGACY: i32 = 11001;
/// Authentication failed.
const AUTHENTICATION_FAILED: i32 = 18;

/// Server codes after which the same request may succeed later: a node that is
/// stepping down, recovering or shutting down, network and time-limit errors
/// reported by the server, write conflicts and overload.
const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    50,    // MaxTimeMSExpired
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    112,   // WriteConflict
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10058, // LegacyNotPrimary
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// Error labels with which the server or the driver marks retryable failures.
const TRANSIENT_LABELS: &[&str] = &[
    "RetryableWriteError",
    "TransientTransactionError",
    "SystemOverloadedError",
    "RetryableError",
];

/// Maps a driver error onto the engine's error family.
///
/// - a duplicate key (code 11000, alone or inside the write errors of a write,
///   an `insert_many` or a bulk write) becomes [`Error::Conflict`] on `entity`;
/// - server selection, I/O, DNS, pool-cleared and shut-down errors, and server
///   codes or labels that mean "try again" become the transient
///   [`Error::Unavailable`];
/// - refused credentials become [`Error::Authentication`];
/// - a stored document that does not decode becomes [`Error::Internal`].
///
/// Texts are scrubbed of any `user:password@` part of a connection string.
pub fn map_mongo_error(err: mongodb::error::Error, entity: &'static str) -> Error {
    let detail = redact_urls(&err.to_string());
    if is_duplicate_key(&err) {
        return Error::conflict(entity, detail);
    }
    if is_transient(&err) {
        return Error::Unavailable {
            service: SERVICE.to_owned(),
            detail,
            source: None,
        };
    }
    match err.kind.as_ref() {
        ErrorKind::Authentication { .. } => Error::Authentication {
            service: SERVICE.to_owned(),
            detail,
        },
        ErrorKind::Command(c) if c.code == AUTHENTICATION_FAILED => Error::Authentication {
            service: SERVICE.to_owned(),
            detail,
        },
        ErrorKind::BsonDeserialization(_) | ErrorKind::BsonSerialization(_) => {
            Error::Internal(format!("{entity} document does not match its schema: {detail}"))
        }
        ErrorKind::InvalidResponse { .. } => Error::Protocol {
            service: SERVICE.to_owned(),
            detail,
        },
        ErrorKind::Command(_) | ErrorKind::Write(_) | ErrorKind::InsertMany(_) | ErrorKind::BulkWrite(_) => {
            Error::Rejected {
                service: SERVICE.to_owned(),
                detail,
            }
        }
        _ => Error::Internal(format!("{SERVICE}: {detail}")),
    }
}

/// The driver errors in `err`'s source chain, `err` first.
fn chain(err: &mongodb::error::Error) -> impl Iterator<Item = &mongodb::error::Error> {
    let mut next: Option<&mongodb::error::Error> = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = current
            .source()
            .and_then(|s| s.downcast_ref::<mongodb::error::Error>());
        Some(current)
    })
}

fn is_dup(code: i32) -> bool {
    code == DUPLICATE_KEY || code == DUPLICATE_KEY_LEGACY
}

/// True for a duplicate key anywhere in the error.
pub(crate) fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    chain(err).any(|e| match e.kind.as_ref() {
        ErrorKind::Command(c) => is_dup(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => is_dup(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|ws| ws.iter().any(|w| is_dup(w.code))),
        ErrorKind::BulkWrite(b) => b.write_errors.values().any(|w| is_dup(w.code)),
        _ => false,
    })
}

fn is_transient(err: &mongodb::error::Error) -> bool {
    chain(err).any(|e| {
        if TRANSIENT_LABELS.iter().any(|l| e.contains_label(l)) {
            return true;
        }
        match e.kind.as_ref() {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Shutdown => true,
            ErrorKind::Command(c) => TRANSIENT_CODES.contains(&c.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(w)) => TRANSIENT_CODES.contains(&w.code),
            ErrorKind::Write(WriteFailure::WriteError(w)) => TRANSIENT_CODES.contains(&w.code),
            _ => false,
        }
    })
}

/// Replaces the `user:password@` part of every URL in `text` with `[REDACTED]@`.
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("[REDACTED]");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Removes every occurrence of the given secrets from `text`.
pub(crate) fn redact_secrets(text: &str, secrets: &[String]) -> String {
    let mut out = redact_urls(text);
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "[REDACTED]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_urls("bad mongodb://alice:s3cret@db:27017/x?tls=true here"),
            "bad mongodb://[REDACTED]@db:27017/x?tls=true here"
        );
        assert_eq!(redact_urls("mongodb://db:27017"), "mongodb://db:27017");
        assert_eq!(
            redact_urls("a mongodb+srv://u:p%40ss@h b mongodb://x:y@z"),
            "a mongodb+srv://[REDACTED]@h b mongodb://[REDACTED]@z"
        );
        assert_eq!(
            redact_secrets("pw is hunter2", &["hunter2".into()]),
            "pw is [REDACTED]"
        );
    }
}
