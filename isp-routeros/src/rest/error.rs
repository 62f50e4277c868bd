//! The REST client's error type, the one function that reads a RouterOS
//! error response, and the one mapping onto the engine's error family.

use std::time::Duration;

use crate::client::{ClientError, TrapKind};

/// Everything the RouterOS REST client can fail with.
///
/// `Clone` (no I/O error objects inside, only their text) so that one failure
/// can be reported for several targets. It never carries a password: refused
/// logins keep only the user name and the router's message.
///
/// [`map_rest_error`] is the one place where these become [`isp_core::Error`]s;
/// [`RestError::from_response`] is the one place where an HTTP error response
/// becomes a `RestError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// A setting or argument was rejected before anything was sent.
    #[error("invalid {field}: {value:?} ({reason})")]
    Config {
        /// The setting or argument.
        field: &'static str,
        /// The rejected value (never a secret).
        value: String,
        /// Why.
        reason: String,
    },
    /// The TCP connection could not be made (refused, unreachable, DNS).
    #[error("cannot connect to {addr}: {detail}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What failed.
        detail: String,
    },
    /// Connecting, waiting for a free connection or the whole request took
    /// longer than allowed.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out (`GET /rest/ip/hotspot/active`).
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The router's TLS certificate was not trusted (unknown CA, wrong name,
    /// expired, or not the pinned fingerprint). Retrying will not help.
    #[error("TLS certificate of {addr} refused: {detail}")]
    Certificate {
        /// `host:port`.
        addr: String,
        /// Why it was refused.
        detail: String,
    },
    /// The TLS handshake failed for another reason (reset, no common cipher).
    #[error("TLS handshake with {addr} failed: {detail}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// What failed.
        detail: String,
    },
    /// HTTP 401: the router refused the user name or password (Basic auth).
    /// The password is never included.
    #[error("{command}: login refused for user {user:?} (401 {message})")]
    Unauthorized {
        /// The request (`GET /rest/system/identity`).
        command: String,
        /// The REST user name.
        user: String,
        /// The router's `message` (and `detail`, if any).
        message: String,
    },
    /// HTTP 403: the user may not do this (its group lacks the policy).
    #[error("{command}: forbidden for user {user:?} (403 {message})")]
    Forbidden {
        /// The request.
        command: String,
        /// The REST user name.
        user: String,
        /// The router's `message` (and `detail`, if any).
        message: String,
    },
    /// HTTP 404: no such item (a `DELETE`, `PATCH` or `GET` of an id that is
    /// gone). A second `DELETE` of the same id gets this.
    #[error("{command}: no such item (404 {message})")]
    NotFound {
        /// The request (`DELETE /rest/ip/hotspot/active/*1A`).
        command: String,
        /// The router's `message`.
        message: String,
    },
    /// Another 4xx with a RouterOS `detail` (the trap text: duplicates, bad
    /// values, unknown paths or commands).
    #[error("{command}: {detail} ({status} {message})")]
    Router {
        /// The request.
        command: String,
        /// HTTP status (400, 406, ...).
        status: u16,
        /// The HTTP reason in the body (`Bad Request`).
        message: String,
        /// The RouterOS message (`failure: already have such entry`).
        detail: String,
    },
    /// HTTP 5xx: the router (or something in front of it) failed; retry later.
    #[error("{command}: router answered {status} {message}")]
    Server {
        /// The request.
        command: String,
        /// HTTP status.
        status: u16,
        /// The body's message (and detail), or the HTTP reason.
        message: String,
    },
    /// The connection broke after the request was sent (reset, closed before
    /// the response was complete).
    #[error("{command}: connection lost: {detail}")]
    ConnectionLost {
        /// The request.
        command: String,
        /// What happened.
        detail: String,
    },
    /// The router answered something this client cannot read (not JSON, a
    /// redirect, an object without `.id` after `PUT`).
    #[error("protocol error: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The response body grew past
    /// [`ClientConfig::max_response_bytes`](crate::client::ClientConfig::max_response_bytes)
    /// (counted as it is read; `Content-Length` and chunking are not trusted).
    /// Reading stopped there and the connection was dropped.
    #[error("{command}: response body exceeds the limit of {limit} bytes (max_response_bytes)")]
    TooLarge {
        /// The request.
        command: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Connecting failed recently; the client waits before trying again.
    #[error("not reconnecting for another {retry_in:?} after: {last}")]
    Backoff {
        /// Time left before the next attempt.
        retry_in: Duration,
        /// The error of the last attempt.
        last: Box<RestError>,
    },
}

/// The parts of `{"error":..,"message":..,"detail":..}`.
#[derive(Debug, Default)]
struct ErrorBody {
    message: Option<String>,
    detail: Option<String>,
}

fn read_error_body(body: &[u8]) -> ErrorBody {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ErrorBody::default();
    };
    let text = |key: &str| match map.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(snippet(s.as_bytes())),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    ErrorBody {
        message: text("message"),
        detail: text("detail"),
    }
}

/// The standard reason phrase of a status (`Bad Request`).
fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_owned()
}

/// Up to 200 characters of a body that is not a RouterOS error object.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    let mut out: String = trimmed.chars().take(200).collect();
    if trimmed.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

impl RestError {
    /// Reads an HTTP error response (status >= 400, body
    /// `{"error":<code>,"message":"<reason>","detail":"<RouterOS message>"}`).
    /// The only such reading in this crate.
    ///
    /// | status | error |
    /// |---|---|
    /// | 401 | [`RestError::Unauthorized`] |
    /// | 403 | [`RestError::Forbidden`] |
    /// | 404 | [`RestError::NotFound`] (already gone, for a delete) |
    /// | 5xx | [`RestError::Server`] (transient) |
    /// | other 4xx | [`RestError::Router`] with the `detail` |
    /// | anything else (1xx, 3xx) | [`RestError::Protocol`] |
    ///
    /// `command` names the request (`DELETE /rest/ppp/secret/*1`), `user` the
    /// REST user (never the password).
    pub fn from_response(command: &str, user: &str, status: u16, body: &[u8]) -> RestError {
        let parsed = read_error_body(body);
        let message = parsed.message.clone().unwrap_or_else(|| reason(status));
        let with_detail = match &parsed.detail {
            Some(d) => format!("{message}: {d}"),
            None => message.clone(),
        };
        match status {
            401 => RestError::Unauthorized {
                command: command.to_owned(),
                user: user.to_owned(),
                message: with_detail,
            },
            403 => RestError::Forbidden {
                command: command.to_owned(),
                user: user.to_owned(),
                message: with_detail,
            },
            404 => RestError::NotFound {
                command: command.to_owned(),
                message: with_detail,
            },
            500..=599 => RestError::Server {
                command: command.to_owned(),
                status,
                message: with_detail,
            },
            400..=499 => RestError::Router {
                command: command.to_owned(),
                status,
                message,
                detail: parsed.detail.unwrap_or_else(|| snippet(body)),
            },
            _ => RestError::Protocol {
                detail: format!("{command}: unexpected HTTP status {status} ({})", snippet(body)),
            },
        }
    }

    /// True when the same request may succeed later (connection trouble,
    /// timeouts, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            RestError::Connect { .. }
            | RestError::Timeout { .. }
            | RestError::Tls { .. }
            | RestError::Server { .. }
            | RestError::ConnectionLost { .. } => true,
            RestError::Backoff { last, .. } => last.is_transient(),
            RestError::Config { .. }
            | RestError::Certificate { .. }
            | RestError::Unauthorized { .. }
            | RestError::Forbidden { .. }
            | RestError::NotFound { .. }
            | RestError::Router { .. }
            | RestError::TooLarge { .. }
            | RestError::Protocol { .. } => false,
        }
    }

    /// What a router refusal means (as for an API `!trap`): `None` when the
    /// router did not answer with a RouterOS error.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self {
            RestError::NotFound { .. } => Some(TrapKind::NoSuchItem),
            RestError::Router { detail, .. } => Some(TrapKind::of(detail, None)),
            _ => None,
        }
    }

    /// True for a 404, or a `no such item` detail: the object is gone.
    pub fn is_no_such_item(&self) -> bool {
        self.trap_kind() == Some(TrapKind::NoSuchItem)
    }

    /// True for an `already have ...` / `... already exists` detail: a duplicate.
    pub fn is_already_exists(&self) -> bool {
        self.trap_kind() == Some(TrapKind::AlreadyExists)
    }

    /// True when the router itself refused the request (404 or a 4xx with a
    /// RouterOS detail), as an API `!trap`.
    pub fn is_refusal(&self) -> bool {
        self.trap_kind().is_some()
    }

    /// The API-style command of the request that failed, when known.
    fn command(&self) -> Option<&str> {
        match self {
            RestError::Unauthorized { command, .. }
            | RestError::Forbidden { command, .. }
            | RestError::NotFound { command, .. }
            | RestError::Router { command, .. }
            | RestError::Server { command, .. }
            | RestError::TooLarge { command, .. }
            | RestError::ConnectionLost { command, .. } => Some(command),
            _ => None,
        }
    }

    pub(crate) fn from_client(err: ClientError) -> RestError {
        match err {
            ClientError::Config { field, value, reason } => RestError::Config { field, value, reason },
            ClientError::Certificate { addr, detail } => RestError::Certificate { addr, detail },
            ClientError::Tls { addr, detail } => RestError::Tls { addr, detail },
            ClientError::Connect { addr, detail } => RestError::Connect { addr, detail },
            other => RestError::Protocol {
                detail: other.to_string(),
            },
        }
    }
}

/// The menu path inside a request name (`DELETE /rest/ppp/secret/*1` ->
/// `/ppp/secret/*1`), for the entity of an error.
fn menu_of(command: &str) -> String {
    let path = command.split_once(' ').map_or(command, |(_, p)| p);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let path = path.strip_prefix("/rest").unwrap_or(path);
    format!("{}/", path.trim_end_matches('/'))
}

/// Maps a REST error onto the engine's error family. The only such mapping
/// for REST, the counterpart of [`crate::client::map_ros_error`].
///
/// `service` names the router in messages (`router main-office`).
///
/// | REST error | engine error |
/// |---|---|
/// | connect failure, timeout, lost connection, TLS handshake failure, 5xx | [`isp_core::Error::Unavailable`] (transient) |
/// | 401, 403, refused TLS certificate | [`isp_core::Error::Authentication`] (never the password) |
/// | 404, or a `no such item` detail | [`isp_core::Error::NotFound`] |
/// | detail `already have ...` / `... same name already exists` | [`isp_core::Error::Conflict`] |
/// | any other 4xx | [`isp_core::Error::Rejected`] with the detail |
/// | unreadable answer, a body over the byte budget | [`isp_core::Error::Protocol`] |
/// | bad setting or argument | [`isp_core::Error::InvalidInput`] |
/// | waiting before a reconnect | as the error that started the wait |
pub fn map_rest_error(service: &str, err: RestError) -> isp_core::Error {
    use isp_core::Error;
    let entity = crate::client::entity_of(&menu_of(err.command().unwrap_or("")));
    match err {
        RestError::Config { field, value, reason } => Error::invalid(field, value, reason),
        RestError::Backoff { last, .. } if !last.is_transient() => map_rest_error(service, *last),
        RestError::Connect { .. }
        | RestError::Timeout { .. }
        | RestError::Tls { .. }
        | RestError::Server { .. }
        | RestError::ConnectionLost { .. }
        | RestError::Backoff { .. } => Error::Unavailable {
            service: service.to_owned(),
            detail: err.to_string(),
            source: Some(Box::new(err)),
        },
        RestError::Certificate { .. } | RestError::Unauthorized { .. } | RestError::Forbidden { .. } => {
            Error::Authentication {
                service: service.to_owned(),
                detail: err.to_string(),
            }
        }
        RestError::NotFound { .. } => Error::NotFound {
            entity,
            id: format!("({err})"),
        },
        RestError::Router { .. } => match err.trap_kind() {
            Some(TrapKind::NoSuchItem) => Error::NotFound {
                entity,
                id: format!("({err})"),
            },
            Some(TrapKind::AlreadyExists) => Error::Conflict {
                entity,
                detail: err.to_string(),
            },
            _ => Error::Rejected {
                service: service.to_owned(),
                detail: err.to_string(),
            },
        },
        RestError::Protocol { detail } => Error::Protocol {
            service: service.to_owned(),
            detail,
        },
        RestError::TooLarge { .. } => Error::Protocol {
            service: service.to_owned(),
            detail: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isp_core::Error;

    fn body(status: u16, message: &str, detail: Option<&str>) -> Vec<u8> {
        let mut v = serde_json::json!({"error": status, "message": message});
        if let Some(d) = detail {
            v["detail"] = serde_json::Value::String(d.to_owned());
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn map(command: &str, status: u16, raw: &[u8]) -> Error {
        map_rest_error("router r1", RestError::from_response(command, "api", status, raw))
    }

    #[test]
    fn delete_twice_is_not_found() {
        let raw = br#"{"error":404,"message":"Not Found"}"#;
        let e = RestError::from_response("DELETE /rest/ppp/secret/*1", "api", 404, raw);
        assert!(e.is_no_such_item(), "{e:?}");
        assert!(e.is_refusal());
        assert!(!e.is_transient());
        let mapped = map_rest_error("router r1", e);
        assert!(
            matches!(
                mapped,
                Error::NotFound {
                    entity: "ppp secret",
                    ..
                }
            ),
            "{mapped:?}"
        );
    }

    #[test]
    fn duplicates_are_conflicts() {
        for (cmd, detail) in [
            (
                "PUT /rest/ip/hotspot/user",
                "failure: already have user with this name for this server",
            ),
            (
                "PUT /rest/ppp/secret",
                "failure: secret with the same name already exists",
            ),
            (
                "PUT /rest/ip/firewall/address-list",
                "failure: already have such entry",
            ),
        ] {
            let e = map(cmd, 400, &body(400, "Bad Request", Some(detail)));
            assert!(e.is_conflict(), "{detail}: {e:?}");
            assert!(e.to_string().contains(detail), "{e}");
        }
        let e = map(
            "PUT /rest/ppp/secret",
            400,
            &body(
                400,
                "Bad Request",
                Some("failure: secret with the same name already exists"),
            ),
        );
        assert!(
            matches!(
                e,
                Error::Conflict {
                    entity: "ppp secret",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn unauthorized_is_authentication_without_password() {
        let e = map(
            "GET /rest/system/identity",
            401,
            br#"{"error":401,"message":"Unauthorized"}"#,
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("\"api\""), "{e}");
        assert!(e.to_string().contains("401"), "{e}");
        let e = map(
            "GET /rest/system/identity",
            403,
            br#"{"error":403,"message":"Forbidden"}"#,
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        let e = map_rest_error(
            "router r1",
            RestError::Certificate {
                addr: "10.0.0.1:443".into(),
                detail: "certificate does not match the pinned SHA-256 fingerprint".into(),
            },
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    }

    #[test]
    fn server_errors_and_connection_trouble_are_transient() {
        for status in [500, 502, 503, 504] {
            let e = map("GET /rest/ip/hotspot/active", status, b"<html>gateway</html>");
            assert!(e.is_transient(), "{status}: {e:?}");
            assert!(e.to_string().contains("router r1"), "{e}");
            assert!(std::error::Error::source(&e).is_some());
        }
        let cases = [
            RestError::Connect {
                addr: "10.0.0.1:443".into(),
                detail: "connection refused".into(),
            },
            RestError::Timeout {
                what: "GET /rest/ip/hotspot/active".into(),
                after: Duration::from_secs(3),
            },
            RestError::ConnectionLost {
                command: "GET /rest/x".into(),
                detail: "reset".into(),
            },
            RestError::Tls {
                addr: "10.0.0.1:443".into(),
                detail: "reset".into(),
            },
            RestError::Backoff {
                retry_in: Duration::from_secs(1),
                last: Box::new(RestError::Connect {
                    addr: "a:1".into(),
                    detail: "refused".into(),
                }),
            },
        ];
        for c in cases {
            assert!(c.is_transient(), "{c:?}");
            let e = map_rest_error("router r1", c.clone());
            assert!(e.is_transient(), "{c:?} -> {e:?}");
        }
        let e = map_rest_error(
            "router r1",
            RestError::Backoff {
                retry_in: Duration::from_secs(1),
                last: Box::new(RestError::Unauthorized {
                    command: "GET /rest/x".into(),
                    user: "api".into(),
                    message: "Unauthorized".into(),
                }),
            },
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    }

    #[test]
    fn other_client_errors_are_rejections_with_the_detail() {
        let e = map(
            "PUT /rest/ip/hotspot/user",
            400,
            &body(
                400,
                "Bad Request",
                Some("input does not match any value of profile"),
            ),
        );
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("input does not match any value of profile"),
            "{e}"
        );
        let e = map(
            "POST /rest/ip/hotspot/user/frobnicate",
            406,
            &body(
                406,
                "Not Acceptable",
                Some("no such command or directory (frobnicate)"),
            ),
        );
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        assert!(e.to_string().contains("406"), "{e}");
        // `no such item` in a detail is an already-gone item, as over the API.
        let raw = body(400, "Bad Request", Some("no such item"));
        assert!(
            RestError::from_response("POST /rest/ip/hotspot/active/remove", "api", 400, &raw)
                .is_no_such_item()
        );
        // A body that is not RouterOS JSON still gives a readable error.
        let e = RestError::from_response("GET /rest/x", "api", 400, b"plain text");
        assert!(e.to_string().contains("plain text"), "{e}");
        let e = RestError::from_response("GET /rest/x", "api", 302, b"");
        assert!(matches!(e, RestError::Protocol { .. }), "{e:?}");
    }
}
