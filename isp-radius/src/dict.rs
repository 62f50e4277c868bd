//! The attributes this crate reads and writes: RFC 2865 (authentication),
//! RFC 2866 (accounting), RFC 2869 (Message-Authenticator, Acct-Interim-Interval),
//! RFC 5176 (Disconnect/CoA, Error-Cause) and MikroTik's vendor dictionary
//! (vendor 14988). The codec and the standard attributes come from the `radius`
//! crate; this module names the numbers in one place.

/// Packet codes (RFC 2865 section 3, RFC 2866, RFC 5176).
pub mod code {
    /// Access-Request.
    pub const ACCESS_REQUEST: u8 = 1;
    /// Access-Accept.
    pub const ACCESS_ACCEPT: u8 = 2;
    /// Access-Reject.
    pub const ACCESS_REJECT: u8 = 3;
    /// Accounting-Request.
    pub const ACCOUNTING_REQUEST: u8 = 4;
    /// Accounting-Response.
    pub const ACCOUNTING_RESPONSE: u8 = 5;
    /// Disconnect-Request.
    pub const DISCONNECT_REQUEST: u8 = 40;
    /// Disconnect-ACK.
    pub const DISCONNECT_ACK: u8 = 41;
    /// Disconnect-NAK.
    pub const DISCONNECT_NAK: u8 = 42;
    /// CoA-Request.
    pub const COA_REQUEST: u8 = 43;
    /// CoA-ACK.
    pub const COA_ACK: u8 = 44;
    /// CoA-NAK.
    pub const COA_NAK: u8 = 45;
}

/// Standard attribute types.
pub mod attr {
    /// User-Name.
    pub const USER_NAME: u8 = 1;
    /// User-Password.
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP-Password.
    pub const CHAP_PASSWORD: u8 = 3;
    /// NAS-IP-Address.
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// Framed-Protocol (1 = PPP).
    pub const FRAMED_PROTOCOL: u8 = 7;
    /// Framed-IP-Address.
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    /// Reply-Message.
    pub const REPLY_MESSAGE: u8 = 18;
    /// Vendor-Specific.
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Session-Timeout.
    pub const SESSION_TIMEOUT: u8 = 27;
    /// Calling-Station-Id (the device's MAC on MikroTik).
    pub const CALLING_STATION_ID: u8 = 31;
    /// NAS-Identifier (the router's identity on MikroTik).
    pub const NAS_IDENTIFIER: u8 = 32;
    /// Acct-Status-Type.
    pub const ACCT_STATUS_TYPE: u8 = 40;
    /// Acct-Input-Octets.
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    /// Acct-Output-Octets.
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    /// Acct-Session-Id.
    pub const ACCT_SESSION_ID: u8 = 44;
    /// Acct-Terminate-Cause.
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    /// CHAP-Challenge.
    pub const CHAP_CHALLENGE: u8 = 60;
    /// Message-Authenticator (RFC 2869/3579).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    /// Acct-Interim-Interval.
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    /// Error-Cause (RFC 5176).
    pub const ERROR_CAUSE: u8 = 101;
}

/// Acct-Status-Type values.
pub mod acct_status {
    /// Start.
    pub const START: u32 = 1;
    /// Stop.
    pub const STOP: u32 = 2;
    /// Interim-Update.
    pub const INTERIM_UPDATE: u32 = 3;
    /// Accounting-On (the NAS rebooted: none of its sessions survive).
    pub const ACCOUNTING_ON: u32 = 7;
    /// Accounting-Off.
    pub const ACCOUNTING_OFF: u32 = 8;
}

/// Error-Cause values (RFC 5176 section 3.5).
pub mod error_cause {
    /// Residual Session Context Removed.
    pub const RESIDUAL_SESSION_CONTEXT_REMOVED: u32 = 201;
    /// Missing Attribute.
    pub const MISSING_ATTRIBUTE: u32 = 402;
    /// Session Context Not Found: nothing to disconnect.
    pub const SESSION_CONTEXT_NOT_FOUND: u32 = 503;
    /// Session Context Not Removable.
    pub const SESSION_CONTEXT_NOT_REMOVABLE: u32 = 504;

    /// The RFC's name of an Error-Cause value, for logs and reports.
    pub fn name(value: u32) -> &'static str {
        match value {
            201 => "Residual-Session-Context-Removed",
            202 => "Invalid-EAP-Packet",
            401 => "Unsupported-Attribute",
            402 => "Missing-Attribute",
            403 => "NAS-Identification-Mismatch",
            404 => "Invalid-Request",
            405 => "Unsupported-Service",
            406 => "Unsupported-Extension",
            407 => "Invalid-Attribute-Value",
            501 => "Administratively-Prohibited",
            502 => "Request-Not-Routable",
            503 => "Session-Context-Not-Found",
            504 => "Session-Context-Not-Removable",
            505 => "Other-Proxy-Processing-Error",
            506 => "Resources-Unavailable",
            507 => "Request-Initiated",
            508 => "Multiple-Session-Selection-Unsupported",
            _ => "unknown",
        }
    }
}

/// MikroTik's vendor attributes (vendor 14988), as in FreeRADIUS's
/// `dictionary.mikrotik`.
pub mod mikrotik {
    /// MikroTik's IANA enterprise number.
    pub const VENDOR_ID: u32 = 14988;
    /// Mikrotik-Recv-Limit (bytes the client may send).
    pub const RECV_LIMIT: u8 = 1;
    /// Mikrotik-Xmit-Limit (bytes the client may receive).
    pub const XMIT_LIMIT: u8 = 2;
    /// Mikrotik-Group (user profile).
    pub const GROUP: u8 = 3;
    /// Mikrotik-Rate-Limit (`rx/tx` as seen by the router: upload/download).
    pub const RATE_LIMIT: u8 = 8;
    /// Mikrotik-Realm.
    pub const REALM: u8 = 9;
    /// Mikrotik-Host-IP.
    pub const HOST_IP: u8 = 10;
    /// Mikrotik-Address-List.
    pub const ADDRESS_LIST: u8 = 19;
}
