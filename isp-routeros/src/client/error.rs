//! The client's error type and the one function that maps it onto the
//! engine's error family.

use std::time::Duration;

/// Everything the RouterOS client can fail with.
///
/// The type is `Clone` (no I/O error objects inside, only their text) so that
/// one failure can be reported for several targets. It never carries a
/// password: login failures keep only the router's message.
///
/// [`map_ros_error`] is the one place where these become [`isp_core::Error`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
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
        /// What the operating system said.
        detail: String,
    },
    /// A connect, login or command took longer than allowed.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out (`connect to 10.0.0.1:8728`, `/ip/hotspot/active/print`).
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
    /// The router refused the user name or password. The password is never included.
    #[error("login refused for user {user:?}: {message}")]
    LoginRefused {
        /// The API user name.
        user: String,
        /// The router's trap message (`invalid user name or password (6)`).
        message: String,
    },
    /// The connection broke (reset, closed, write failed) while in use.
    #[error("connection lost: {detail}")]
    ConnectionLost {
        /// What happened.
        detail: String,
    },
    /// The router sent `!fatal` and closed the connection.
    #[error("router closed the connection: {reason}")]
    Fatal {
        /// The reason word(s) of `!fatal`.
        reason: String,
    },
    /// The router answered a command with `!trap`.
    #[error("{command}: {message}")]
    Trap {
        /// The command that trapped (`/ip/hotspot/user/add`).
        command: String,
        /// `=message=`.
        message: String,
        /// `=category=` when given (0 missing item or command, 1 bad argument, 2 interrupted, ...).
        category: Option<u8>,
    },
    /// The router broke the protocol (bad bytes, a reply we cannot place).
    #[error("protocol error: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The router sent more than a configured byte budget allows (a word, a
    /// sentence, or the whole reply to one command). The connection is
    /// dropped: the rest of the reply would still be on the wire.
    #[error("{what} exceeds the limit of {limit} bytes ({setting})")]
    TooLarge {
        /// What was too large (`the reply to /ip/hotspot/active/print`).
        what: String,
        /// The limit, in bytes.
        limit: usize,
        /// The [`ClientConfig`](super::ClientConfig) field that sets it.
        setting: &'static str,
    },
    /// Reconnecting failed recently; the client waits before trying again.
    #[error("not reconnecting for another {retry_in:?} after: {last}")]
    Backoff {
        /// Time left before the next attempt.
        retry_in: Duration,
        /// The error of the last attempt.
        last: Box<ClientError>,
    },
}

/// What a `!trap` message means for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// `no such item`: the object is gone.
    NoSuchItem,
    /// `already have ...` / `... already exists`: a duplicate.
    AlreadyExists,
    /// `interrupted` (category 2): the command was cancelled.
    Interrupted,
    /// Anything else: the router refused the command.
    Other,
}

impl TrapKind {
    /// Classifies a trap by its message (and category).
    pub fn of(message: &str, category: Option<u8>) -> TrapKind {
        let m = message.to_ascii_lowercase();
        if m.contains("no such item") {
            TrapKind::NoSuchItem
        } else if m.contains("already have") || m.contains("already exists") {
            TrapKind::AlreadyExists
        } else if category == Some(2) || m == "interrupted" {
            TrapKind::Interrupted
        } else {
            TrapKind::Other
        }
    }
}

impl ClientError {
    /// True when the same request may succeed later (connection trouble, timeouts, `!fatal`).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Tls { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::Fatal { .. } => true,
            ClientError::Backoff { last, .. } => last.is_transient(),
            ClientError::Config { .. }
            | ClientError::Certificate { .. }
            | ClientError::LoginRefused { .. }
            | ClientError::Trap { .. }
            | ClientError::TooLarge { .. }
            | ClientError::Protocol { .. } => false,
        }
    }

    /// The trap's meaning, `None` when this is not a trap.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self {
            ClientError::Trap {
                message, category, ..
            } => Some(TrapKind::of(message, *category)),
            _ => None,
        }
    }

    /// True for a `no such item` trap (an already-gone object).
    pub fn is_no_such_item(&self) -> bool {
        self.trap_kind() == Some(TrapKind::NoSuchItem)
    }

    /// True for an `already have ...` trap (a duplicate).
    pub fn is_already_exists(&self) -> bool {
        self.trap_kind() == Some(TrapKind::AlreadyExists)
    }

    /// True when the connection this error came from cannot be used again.
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(
            self,
            ClientError::ConnectionLost { .. }
                | ClientError::Fatal { .. }
                | ClientError::Protocol { .. }
                | ClientError::TooLarge { .. }
                | ClientError::Timeout { .. }
        )
    }
}

/// The kind of router object a command works on, for error messages.
pub(crate) fn entity_of(command: &str) -> &'static str {
    const ENTITIES: [(&str, &str); 10] = [
        ("/ip/hotspot/active/", "hotspot session"),
        ("/ip/hotspot/user/", "hotspot user"),
        ("/ip/hotspot/host/", "hotspot host"),
        ("/ip/hotspot/cookie/", "hotspot cookie"),
        ("/ip/hotspot/ip-binding/", "ip-binding"),
        ("/ppp/secret/", "ppp secret"),
        ("/ppp/active/", "ppp session"),
        ("/ip/firewall/address-list/", "address-list entry"),
        ("/queue/simple/", "simple queue"),
        ("/system/", "system item"),
    ];
    ENTITIES
        .iter()
        .find(|(prefix, _)| command.starts_with(prefix))
        .map_or("router item", |(_, entity)| entity)
}

/// Maps a client error onto the engine's error family. The only such mapping
/// in this crate.
///
/// `service` names the router in messages (`router main-office`).
///
/// | client error | engine error |
/// |---|---|
/// | connect failure, timeout, lost connection, TLS handshake failure, `!fatal` | [`isp_core::Error::Unavailable`] (transient) |
/// | refused login, refused TLS certificate | [`isp_core::Error::Authentication`] (never the password) |
/// | `!trap` `no such item` | [`isp_core::Error::NotFound`] |
/// | `!trap` `already have ...` / `... already exists` | [`isp_core::Error::Conflict`] |
/// | any other `!trap` | [`isp_core::Error::Rejected`] |
/// | protocol violation, a reply over a byte budget | [`isp_core::Error::Protocol`] |
/// | bad setting or argument | [`isp_core::Error::InvalidInput`] |
/// | waiting before a reconnect | as the error that started the wait |
pub fn map_ros_error(service: &str, err: ClientError) -> isp_core::Error {
    use isp_core::Error;
    match err {
        ClientError::Config { field, value, reason } => Error::invalid(field, value, reason),
        ClientError::Connect { .. }
        | ClientError::Timeout { .. }
        | ClientError::Tls { .. }
        | ClientError::ConnectionLost { .. }
        | ClientError::Fatal { .. } => Error::Unavailable {
            service: service.to_owned(),
            detail: err.to_string(),
            source: Some(Box::new(err)),
        },
        ClientError::Backoff { .. } if err.is_transient() => Error::Unavailable {
            service: service.to_owned(),
            detail: err.to_string(),
            source: Some(Box::new(err)),
        },
        ClientError::Backoff { last, .. } => map_ros_error(service, *last),
        ClientError::Certificate { .. } => Error::Authentication {
            service: service.to_owned(),
            detail: err.to_string(),
        },
        ClientError::LoginRefused { .. } => Error::Authentication {
            service: service.to_owned(),
            detail: err.to_string(),
        },
        ClientError::Trap {
            command,
            message,
            category,
        } => match TrapKind::of(&message, category) {
            TrapKind::NoSuchItem => Error::NotFound {
                entity: entity_of(&command),
                id: format!("({command}: {message})"),
            },
            TrapKind::AlreadyExists => Error::Conflict {
                entity: entity_of(&command),
                detail: format!("{command}: {message}"),
            },
            TrapKind::Interrupted | TrapKind::Other => Error::Rejected {
                service: service.to_owned(),
                detail: format!("{command}: {message}"),
            },
        },
        ClientError::Protocol { detail } => Error::Protocol {
            service: service.to_owned(),
            detail,
        },
        ClientError::TooLarge { .. } => Error::Protocol {
            service: service.to_owned(),
            detail: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isp_core::Error;

    fn trap(command: &str, message: &str, category: Option<u8>) -> ClientError {
        ClientError::Trap {
            command: command.into(),
            message: message.into(),
            category,
        }
    }

    #[test]
    fn no_such_item_is_not_found() {
        let e = map_ros_error(
            "router r1",
            trap("/ip/hotspot/user/remove", "no such item", Some(0)),
        );
        assert!(e.is_not_found(), "{e:?}");
        assert!(matches!(
            e,
            Error::NotFound {
                entity: "hotspot user",
                ..
            }
        ));
        assert!(!e.is_transient());
    }

    #[test]
    fn duplicates_are_conflicts() {
        for (cmd, msg) in [
            (
                "/ip/hotspot/user/add",
                "failure: already have user with this name for this server",
            ),
            (
                "/ppp/secret/add",
                "failure: secret with the same name already exists",
            ),
            (
                "/ip/firewall/address-list/add",
                "failure: already have such entry",
            ),
        ] {
            let e = map_ros_error("router r1", trap(cmd, msg, None));
            assert!(e.is_conflict(), "{msg}: {e:?}");
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

    #[test]
    fn other_traps_are_rejections_naming_command_and_message() {
        let e = map_ros_error(
            "router r1",
            trap(
                "/ip/hotspot/user/add",
                "input does not match any value of profile",
                Some(1),
            ),
        );
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("router r1"), "{text}");
        assert!(text.contains("/ip/hotspot/user/add"), "{text}");
        assert!(
            text.contains("input does not match any value of profile"),
            "{text}"
        );
        let e = map_ros_error("router r1", trap("/x/print", "interrupted", Some(2)));
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
    }

    #[test]
    fn connection_trouble_is_transient() {
        let cases = [
            ClientError::Connect {
                addr: "10.0.0.1:8728".into(),
                detail: "connection refused".into(),
            },
            ClientError::Timeout {
                what: "/ip/hotspot/active/print".into(),
                after: Duration::from_secs(5),
            },
            ClientError::ConnectionLost {
                detail: "reset by peer".into(),
            },
            ClientError::Fatal {
                reason: "session terminated on request".into(),
            },
            ClientError::Tls {
                addr: "10.0.0.1:8729".into(),
                detail: "reset".into(),
            },
            ClientError::Backoff {
                retry_in: Duration::from_secs(1),
                last: Box::new(ClientError::ConnectionLost { detail: "eof".into() }),
            },
        ];
        for c in cases {
            assert!(c.is_transient(), "{c:?}");
            let e = map_ros_error("router r1", c.clone());
            assert!(e.is_transient(), "{c:?} -> {e:?}");
            assert!(e.to_string().contains("router r1"), "{e}");
            assert!(std::error::Error::source(&e).is_some(), "source kept for {c:?}");
        }
    }

    #[test]
    fn refused_login_and_certificate_are_authentication() {
        let e = map_ros_error(
            "router r1",
            ClientError::LoginRefused {
                user: "api".into(),
                message: "invalid user name or password (6)".into(),
            },
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("invalid user name or password"), "{e}");
        let e = map_ros_error(
            "router r1",
            ClientError::Backoff {
                retry_in: Duration::from_secs(3),
                last: Box::new(ClientError::LoginRefused {
                    user: "api".into(),
                    message: "invalid user name or password (6)".into(),
                }),
            },
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        let e = map_ros_error(
            "router r1",
            ClientError::Certificate {
                addr: "10.0.0.1:8729".into(),
                detail: "fingerprint mismatch".into(),
            },
        );
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        assert!(!e.is_transient());
    }

    #[test]
    fn protocol_and_config_errors() {
        let e = map_ros_error(
            "router r1",
            ClientError::Protocol {
                detail: "reserved control byte 0xF8".into(),
            },
        );
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        let e = map_ros_error(
            "router r1",
            ClientError::Config {
                field: "address",
                value: "host:99999".into(),
                reason: "port is not a number from 1 to 65535".into(),
            },
        );
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
        assert!(e.to_string().contains("host:99999"));
    }

    #[test]
    fn trap_kinds() {
        assert_eq!(TrapKind::of("no such item", Some(0)), TrapKind::NoSuchItem);
        assert_eq!(TrapKind::of("interrupted", Some(2)), TrapKind::Interrupted);
        assert_eq!(
            TrapKind::of("invalid value for argument remote-address", Some(1)),
            TrapKind::Other
        );
        assert!(trap("/x/remove", "no such item", None).is_no_such_item());
        assert!(trap("/x/add", "failure: already have such entry", None).is_already_exists());
        assert!(!ClientError::Protocol { detail: "x".into() }.is_no_such_item());
    }
}
