//! Bytes on the wire: framing checks before anything is trusted, the
//! Message-Authenticator (HMAC-MD5, RFC 3579 section 3.2 and RFC 5176 section
//! 3.2), request and response authenticators, CHAP.
//!
//! The `radius` crate decodes attributes and encodes packets; these functions
//! work on the encoded bytes because the authenticators cover exactly them.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::dict::attr;

/// RADIUS header length: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest packet RFC 2865 allows.
pub const MAX_PACKET_LEN: usize = 4096;

/// Why a datagram was dropped before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the 20-byte header.
    TooShort,
    /// The length field is below 20, above 4096, or past the datagram's end.
    BadLength,
    /// An attribute's length is below 2 or runs past the packet.
    BadAttribute,
}

impl Malformed {
    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Malformed::TooShort => "too_short",
            Malformed::BadLength => "bad_length",
            Malformed::BadAttribute => "bad_attribute",
        }
    }
}

/// The packet inside `datagram` (bytes past its length field are padding and
/// ignored, RFC 2865 section 3), or why it is malformed.
pub fn frame(datagram: &[u8]) -> Result<&[u8], Malformed> {
    if datagram.len() < HEADER_LEN {
        return Err(Malformed::TooShort);
    }
    let len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) || len > datagram.len() {
        return Err(Malformed::BadLength);
    }
    let packet = &datagram[..len];
    let mut i = HEADER_LEN;
    while i < len {
        if len - i < 2 {
            return Err(Malformed::BadAttribute);
        }
        let alen = usize::from(packet[i + 1]);
        if alen < 2 || i + alen > len {
            return Err(Malformed::BadAttribute);
        }
        i += alen;
    }
    Ok(packet)
}

/// Each attribute of a framed packet: its offset, type and value.
pub fn attributes(packet: &[u8]) -> impl Iterator<Item = (usize, u8, &[u8])> {
    let mut i = HEADER_LEN;
    std::iter::from_fn(move || {
        if i + 2 > packet.len() {
            return None;
        }
        let alen = usize::from(packet[i + 1]);
        if alen < 2 || i + alen > packet.len() {
            return None;
        }
        let item = (i, packet[i], &packet[i + 2..i + alen]);
        i += alen;
        Some(item)
    })
}

/// The 16-byte authenticator field.
pub fn authenticator(packet: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    if packet.len() >= HEADER_LEN {
        a.copy_from_slice(&packet[4..HEADER_LEN]);
    }
    a
}

/// HMAC-MD5 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(&Md5::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Md5::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// What the Message-Authenticator of a packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuth {
    /// No Message-Authenticator attribute.
    Absent,
    /// Present and correct.
    Valid,
    /// Present and wrong (or not 16 bytes, or more than one).
    Invalid,
}

/// Checks the Message-Authenticator, computed over the packet with
/// `auth_field` in the authenticator field and the attribute's value zeroed:
/// the packet's own authenticator for an Access-Request, zeros for
/// Accounting, Disconnect and CoA requests, the request's authenticator for
/// a response.
pub fn check_message_authenticator(packet: &[u8], auth_field: &[u8; 16], secret: &[u8]) -> MessageAuth {
    let found: Vec<(usize, &[u8])> = attributes(packet)
        .filter(|(_, t, _)| *t == attr::MESSAGE_AUTHENTICATOR)
        .map(|(off, _, v)| (off, v))
        .collect();
    let (off, value) = match found.as_slice() {
        [] => return MessageAuth::Absent,
        [one] if one.1.len() == 16 => *one,
        _ => return MessageAuth::Invalid,
    };
    let mut copy = packet.to_vec();
    copy[4..HEADER_LEN].copy_from_slice(auth_field);
    copy[off + 2..off + 18].fill(0);
    let want = hmac_md5(secret, &[&copy]);
    if bool::from(want.ct_eq(value)) {
        MessageAuth::Valid
    } else {
        MessageAuth::Invalid
    }
}

/// Fills a zeroed Message-Authenticator attribute (if the packet has one)
/// with the HMAC over the packet as it is now.
fn fill_message_authenticator(packet: &mut [u8], secret: &[u8]) {
    let Some(off) = attributes(packet)
        .find(|(_, t, v)| *t == attr::MESSAGE_AUTHENTICATOR && v.len() == 16)
        .map(|(off, _, _)| off)
    else {
        return;
    };
    packet[off + 2..off + 18].fill(0);
    let mac = hmac_md5(secret, &[packet]);
    packet[off + 2..off + 18].copy_from_slice(&mac);
}

/// Signs a response (Access-Accept/Reject, Accounting-Response,
/// Disconnect/CoA ACK/NAK) to a request whose authenticator was
/// `request_auth`: Message-Authenticator first (if present), then the
/// Response Authenticator.
pub fn sign_response(packet: &mut [u8], request_auth: &[u8; 16], secret: &[u8]) {
    if packet.len() < HEADER_LEN {
        return;
    }
    packet[4..HEADER_LEN].copy_from_slice(request_auth);
    fill_message_authenticator(packet, secret);
    let mut h = Md5::new();
    h.update(&*packet);
    h.update(secret);
    let auth: [u8; 16] = h.finalize().into();
    packet[4..HEADER_LEN].copy_from_slice(&auth);
}

/// Signs an Accounting, Disconnect or CoA request: Message-Authenticator
/// (if present) over the packet with a zero authenticator, then the Request
/// Authenticator (RFC 2866 section 3, RFC 5176 section 2.3).
pub fn sign_request(packet: &mut [u8], secret: &[u8]) {
    if packet.len() < HEADER_LEN {
        return;
    }
    packet[4..HEADER_LEN].fill(0);
    fill_message_authenticator(packet, secret);
    let mut h = Md5::new();
    h.update(&*packet);
    h.update(secret);
    let auth: [u8; 16] = h.finalize().into();
    packet[4..HEADER_LEN].copy_from_slice(&auth);
}

/// Signs an Access-Request whose authenticator is already random: only the
/// Message-Authenticator.
pub fn sign_access_request(packet: &mut [u8], secret: &[u8]) {
    fill_message_authenticator(packet, secret);
}

/// True when an Accounting, Disconnect or CoA request's authenticator is
/// right for `secret`.
pub fn request_authentic(packet: &[u8], secret: &[u8]) -> bool {
    if packet.len() < HEADER_LEN {
        return false;
    }
    let mut h = Md5::new();
    h.update(&packet[..4]);
    h.update([0u8; 16]);
    h.update(&packet[HEADER_LEN..]);
    h.update(secret);
    let want: [u8; 16] = h.finalize().into();
    bool::from(want.ct_eq(&packet[4..HEADER_LEN]))
}

/// True when `response` is a correctly signed answer to a request whose
/// authenticator was `request_auth`.
pub fn response_authentic(response: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> bool {
    if response.len() < HEADER_LEN {
        return false;
    }
    let mut h = Md5::new();
    h.update(&response[..4]);
    h.update(request_auth);
    h.update(&response[HEADER_LEN..]);
    h.update(secret);
    let want: [u8; 16] = h.finalize().into();
    bool::from(want.ct_eq(&response[4..HEADER_LEN]))
}

/// True when a CHAP-Password (`ident` + 16-byte response) answers
/// `challenge` for `password` (RFC 1994: MD5 of ident, secret, challenge).
pub fn chap_matches(chap_password: &[u8], challenge: &[u8], password: &[u8]) -> bool {
    if chap_password.len() != 17 {
        return false;
    }
    let mut h = Md5::new();
    h.update([chap_password[0]]);
    h.update(password);
    h.update(challenge);
    let want: [u8; 16] = h.finalize().into();
    bool::from(want.ct_eq(&chap_password[1..]))
}

/// The User-Password attribute's value for `password` (RFC 2865 section
/// 5.2): padded to 16-byte blocks (at most 128 bytes), each XORed with an MD5
/// chain over `secret` and the request authenticator.
pub fn hide_user_password(password: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let mut pw = password[..password.len().min(128)].to_vec();
    pw.resize(pw.len().div_ceil(16).max(1) * 16, 0);
    let mut out = Vec::with_capacity(pw.len());
    let mut prev = request_auth.to_vec();
    for block in pw.chunks(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(&prev);
        let b: [u8; 16] = h.finalize().into();
        let c: Vec<u8> = block.iter().zip(b).map(|(x, y)| x ^ y).collect();
        out.extend(&c);
        prev = c;
    }
    out
}

/// A Vendor-Specific attribute's value for `vendor`'s `typ` carrying `value`.
pub fn vendor_attribute(vendor: u32, typ: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(6 + value.len());
    v.extend_from_slice(&vendor.to_be_bytes());
    v.push(typ);
    v.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
    v.extend_from_slice(value);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_md5_matches_rfc_2202() {
        // RFC 2202 test case 2.
        let mac = hmac_md5(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "750c783e6ab0b503eaa86e310a5db738");
    }

    #[test]
    fn framing_refuses_lies_about_lengths() {
        assert_eq!(frame(&[1u8; 10]), Err(Malformed::TooShort));
        let mut p = vec![1u8, 7, 0, 19];
        p.extend([0u8; 16]);
        assert_eq!(frame(&p), Err(Malformed::BadLength));
        p[3] = 30;
        assert_eq!(frame(&p), Err(Malformed::BadLength));
        p[3] = 22;
        p.extend([1u8, 9]);
        assert_eq!(frame(&p), Err(Malformed::BadAttribute));
        p[21] = 2;
        assert_eq!(frame(&p).map(<[u8]>::len), Ok(22));
        p.extend([0u8; 8]);
        assert_eq!(frame(&p).map(<[u8]>::len), Ok(22), "padding is ignored");
    }

    #[test]
    fn a_signed_request_checks_out_and_a_flipped_bit_does_not() {
        let mut p = vec![40u8, 1, 0, 38];
        p.extend([0u8; 16]);
        p.extend([attr::MESSAGE_AUTHENTICATOR, 18]);
        p.extend([0u8; 16]);
        sign_request(&mut p, b"s3cret");
        assert!(request_authentic(&p, b"s3cret"));
        assert_eq!(
            check_message_authenticator(&p, &[0; 16], b"s3cret"),
            MessageAuth::Valid
        );
        assert!(!request_authentic(&p, b"other"));
        p[30] ^= 1;
        assert_eq!(
            check_message_authenticator(&p, &[0; 16], b"s3cret"),
            MessageAuth::Invalid
        );
    }
}
