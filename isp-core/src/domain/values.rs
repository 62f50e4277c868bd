//! Validated values: every value that comes from outside gets a type whose
//! constructor rejects bad input with an error naming the field and the value.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

macro_rules! string_serde {
    ($ty:ty, $field:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                <$ty>::parse($field, &raw).map_err(serde::de::Error::custom)
            }
        }
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                <$ty>::parse($field, s)
            }
        }
    };
}

/// A phone number in E.164 form (`+` and 8 to 15 digits, no leading zero).
///
/// Input may omit the `+` (`255712345678`, as the seeds store them) and may
/// contain spaces or dashes; it is stored and shown as `+255712345678`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Validates `raw` as the value of `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let digits: String = body.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid(
                field,
                raw,
                "a phone number has only digits after an optional '+'",
            ));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(Error::invalid(field, raw, "an E.164 number has 8 to 15 digits"));
        }
        if digits.starts_with('0') {
            return Err(Error::invalid(
                field,
                raw,
                "an E.164 number starts with a country code, not 0",
            ));
        }
        Ok(PhoneNumber(format!("+{digits}")))
    }

    /// `+255712345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+` (`255712345678`), as some gateways want them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}
string_serde!(PhoneNumber, "phone");

/// A 48-bit MAC address, shown as RouterOS shows it: `AA:BB:CC:DD:EE:FF`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// Validates `raw` (`aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` or `aabb.ccdd.eeff`).
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let hex: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        let separators_ok = {
            let t = raw.trim();
            let groups: Vec<&str> = t.split([':', '-']).collect();
            (groups.len() == 6 && groups.iter().all(|g| g.len() == 2))
                || (t.split('.').count() == 3 && t.split('.').all(|g| g.len() == 4))
                || (t.len() == 12 && !t.contains([':', '-', '.']))
        };
        if hex.len() != 12 || !separators_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                field,
                raw,
                "not a MAC address (expected AA:BB:CC:DD:EE:FF)",
            ));
        }
        let mut bytes = [0u8; 6];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
                .map_err(|_| Error::invalid(field, raw, "not a MAC address"))?;
        }
        Ok(MacAddress(bytes))
    }

    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Builds a MAC from its bytes.
    pub fn from_octets(octets: [u8; 6]) -> Self {
        MacAddress(octets)
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddress({self})")
    }
}
string_serde!(MacAddress, "mac_address");

/// Parses an IPv4 address, naming the field on error.
pub fn parse_ipv4(field: &str, raw: &str) -> Result<Ipv4Addr> {
    raw.trim()
        .parse::<Ipv4Addr>()
        .map_err(|_| Error::invalid(field, raw, "not an IPv4 address"))
}

/// An IPv4 network `address/prefix` (a bare address means `/32`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// Validates `raw` (`10.0.0.0/24`, `10.0.0.2`). Host bits must be zero unless the prefix is 32.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let t = raw.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => {
                let p: u8 = p
                    .parse()
                    .map_err(|_| Error::invalid(field, raw, "prefix length is not a number"))?;
                (a, p)
            }
            None => (t, 32),
        };
        if prefix > 32 {
            return Err(Error::invalid(field, raw, "prefix length is above 32"));
        }
        let address = parse_ipv4(field, addr)?;
        let cidr = Ipv4Cidr { address, prefix };
        if cidr.network() != address {
            return Err(Error::invalid(
                field,
                raw,
                "host bits are set; use the network address",
            ));
        }
        Ok(cidr)
    }

    /// A single host (`/32`).
    pub fn host(address: Ipv4Addr) -> Self {
        Ipv4Cidr { address, prefix: 32 }
    }

    /// The network address.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask())
    }

    /// True when `ip` is inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.address)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}
impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ipv4Cidr({self})")
    }
}
string_serde!(Ipv4Cidr, "cidr");

/// A name that RouterOS accepts for users, secrets, profiles, queues, lists
/// and comments: 1 to [`RosName::MAX_LEN`] bytes, no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RosName(String);

impl RosName {
    /// Longest accepted name, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates `raw` as the value of `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        if raw.is_empty() {
            return Err(Error::invalid(field, raw, "must not be empty"));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                field,
                raw.chars().take(40).collect::<String>() + "...",
                format!("longer than {} bytes", Self::MAX_LEN),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                raw.escape_default(),
                "contains control characters",
            ));
        }
        if raw.trim() != raw {
            return Err(Error::invalid(field, raw, "has leading or trailing spaces"));
        }
        Ok(RosName(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
string_serde!(RosName, "name");

/// A duration in RouterOS notation: `1h30m`, `1d2h3m4s`, `3w`, `00:05:00`,
/// `1d 02:00:00`, `500ms`. Whole seconds (milliseconds are kept).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RosDuration(Duration);

impl RosDuration {
    /// Longest accepted duration: 100 years (guards against overflow).
    pub const MAX: Duration = Duration::from_secs(100 * 366 * 86_400);

    /// Validates `raw` as the value of `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid(field, raw, why.to_string());
        let t = raw.trim();
        if t.is_empty() {
            return Err(bad("empty duration"));
        }
        let mut total_ms: u128 = 0;
        // Optional unit prefix (`1w2d`), then optional `hh:mm:ss`.
        let mut rest = t;
        let (units, clock) = match rest.find(':') {
            Some(_) => {
                // The clock part is the last whitespace-separated token, or all of it.
                match rest.rsplit_once(' ') {
                    Some((u, c)) => (u.trim(), Some(c)),
                    None => {
                        // `1d02:00:00` form: units end at the last letter before the clock.
                        let split = rest
                            .char_indices()
                            .filter(|(_, c)| c.is_ascii_alphabetic())
                            .map(|(i, _)| i + 1)
                            .next_back()
                            .unwrap_or(0);
                        (&rest[..split], Some(&rest[split..]))
                    }
                }
            }
            None => (rest, None),
        };
        rest = units;
        while !rest.is_empty() {
            let n_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if n_end == 0 {
                return Err(bad("expected a number before each unit"));
            }
            let n: u128 = rest[..n_end].parse().map_err(|_| bad("number too large"))?;
            rest = &rest[n_end..];
            let u_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = &rest[..u_end];
            rest = &rest[u_end..];
            let ms_per = match unit {
                "w" => 604_800_000,
                "d" => 86_400_000,
                "h" => 3_600_000,
                "m" => 60_000,
                "s" | "" => 1_000,
                "ms" => 1,
                _ => return Err(bad("unknown unit (use w, d, h, m, s, ms)")),
            };
            if unit.is_empty() && !rest.is_empty() {
                return Err(bad("a bare number must be the last part"));
            }
            total_ms = total_ms
                .checked_add(n.checked_mul(ms_per).ok_or_else(|| bad("too long"))?)
                .ok_or_else(|| bad("too long"))?;
        }
        if let Some(clock) = clock {
            let parts: Vec<&str> = clock.split(':').collect();
            if parts.len() != 3 {
                return Err(bad("a clock duration is hh:mm:ss"));
            }
            let mut vals = [0u128; 3];
            for (i, p) in parts.iter().enumerate() {
                if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 9 {
                    return Err(bad("a clock duration is hh:mm:ss"));
                }
                vals[i] = p.parse().map_err(|_| bad("a clock duration is hh:mm:ss"))?;
            }
            if vals[1] >= 60 || vals[2] >= 60 {
                return Err(bad("minutes and seconds must be below 60"));
            }
            total_ms += (vals[0] * 3600 + vals[1] * 60 + vals[2]) * 1000;
        }
        if total_ms > Self::MAX.as_millis() {
            return Err(bad("longer than 100 years"));
        }
        let ms = u64::try_from(total_ms).map_err(|_| bad("too long"))?;
        Ok(RosDuration(Duration::from_millis(ms)))
    }

    /// Wraps a std duration (truncated to milliseconds).
    pub fn from_std(d: Duration) -> Self {
        RosDuration(Duration::from_millis(
            d.as_millis().min(Self::MAX.as_millis()) as u64
        ))
    }

    /// From whole seconds.
    pub fn from_secs(secs: u64) -> Self {
        Self::from_std(Duration::from_secs(secs))
    }

    /// The std duration.
    pub fn as_std(&self) -> Duration {
        self.0
    }

    /// As a chrono duration.
    pub fn as_chrono(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.0.as_millis() as i64)
    }

    /// Whole seconds.
    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }
}

impl fmt::Display for RosDuration {
    /// RouterOS form: `1w2d3h4m5s`, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, per) in [
            ("w", 604_800_000u128),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= per {
                write!(f, "{}{}", ms / per, unit)?;
                ms %= per;
            }
        }
        Ok(())
    }
}
impl fmt::Debug for RosDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RosDuration({self})")
    }
}
string_serde!(RosDuration, "duration");

/// An ISO-4217-like currency code: three uppercase ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Validates `raw` (`TZS`, `kes` -> `KES`).
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let t = raw.trim();
        if t.len() != 3 || !t.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(Error::invalid(
                field,
                raw,
                "a currency is three letters (TZS, KES, USD)",
            ));
        }
        let b = t.to_ascii_uppercase().into_bytes();
        Ok(Currency([b[0], b[1], b[2]]))
    }

    /// `TZS`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
string_serde!(Currency, "currency");

/// An exact amount of money: a decimal with at most 4 fraction digits, never negative
/// for prices. Stored by adapters as integer minor units or NUMERIC, never floats.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Money {
    /// The amount.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Most fraction digits accepted.
    pub const MAX_SCALE: u32 = 4;

    /// Validates an amount given as text (`1500`, `12.50`) in `currency`.
    pub fn parse(field: &str, amount: &str, currency: Currency) -> Result<Self> {
        let d = Decimal::from_str(amount.trim())
            .map_err(|_| Error::invalid(field, amount, "not a decimal amount"))?;
        Self::new(field, d, currency)
    }

    /// Validates a decimal amount: not negative, at most [`Money::MAX_SCALE`] fraction digits.
    pub fn new(field: &str, amount: Decimal, currency: Currency) -> Result<Self> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(Error::invalid(field, amount, "must not be negative"));
        }
        let amount = amount.normalize();
        if amount.scale() > Self::MAX_SCALE {
            return Err(Error::invalid(field, amount, "more than 4 fraction digits"));
        }
        Ok(Money { amount, currency })
    }

    /// The amount in 1/10_000 units (exact, for integer storage).
    pub fn to_micro_units(&self) -> Result<i64> {
        let scaled = self.amount * Decimal::from(10_000);
        i64::try_from(scaled.trunc()).map_err(|_| Error::invalid("amount", self.amount, "too large"))
    }

    /// Inverse of [`Money::to_micro_units`].
    pub fn from_micro_units(units: i64, currency: Currency) -> Self {
        Money {
            amount: (Decimal::from(units) / Decimal::from(10_000)).normalize(),
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}
impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

/// A plan's rate limit in bits per second, written as RouterOS writes
/// `max-limit`: `upload/download` (`10M/20M`, `512k/1M`, `1000000/2000000`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Upload (from the customer) in bit/s.
    pub upload_bps: u64,
    /// Download (to the customer) in bit/s.
    pub download_bps: u64,
}

impl RateLimit {
    /// Validates `raw` as `UP/DOWN` with optional `k`, `M`, `G` suffixes.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let (up, down) = raw
            .trim()
            .split_once('/')
            .ok_or_else(|| Error::invalid(field, raw, "expected upload/download, e.g. 10M/20M"))?;
        let one = |s: &str| -> Result<u64> {
            let s = s.trim();
            let (num, mult) = match s.chars().last() {
                Some('k') | Some('K') => (&s[..s.len() - 1], 1_000u64),
                Some('M') => (&s[..s.len() - 1], 1_000_000),
                Some('G') => (&s[..s.len() - 1], 1_000_000_000),
                _ => (s, 1),
            };
            let n: u64 = num
                .parse()
                .map_err(|_| Error::invalid(field, raw, "rates are numbers with an optional k, M or G"))?;
            n.checked_mul(mult)
                .filter(|v| *v > 0)
                .ok_or_else(|| Error::invalid(field, raw, "rates must be above zero and below 2^64"))
        };
        Ok(RateLimit {
            upload_bps: one(up)?,
            download_bps: one(down)?,
        })
    }
}

fn fmt_rate(bps: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if bps % 1_000_000_000 == 0 {
        write!(f, "{}G", bps / 1_000_000_000)
    } else if bps % 1_000_000 == 0 {
        write!(f, "{}M", bps / 1_000_000)
    } else if bps % 1_000 == 0 {
        write!(f, "{}k", bps / 1_000)
    } else {
        write!(f, "{bps}")
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_rate(self.upload_bps, f)?;
        f.write_str("/")?;
        fmt_rate(self.download_bps, f)
    }
}
impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimit({self})")
    }
}
string_serde!(RateLimit, "rate_limit");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_normalises_and_rejects() {
        assert_eq!(
            PhoneNumber::parse("phone", "255712345678").unwrap().as_str(),
            "+255712345678"
        );
        assert_eq!(
            PhoneNumber::parse("phone", "+255 712-345-678").unwrap().as_str(),
            "+255712345678"
        );
        for bad in [
            "",
            "+",
            "0712345678",
            "abc",
            "+1234567",
            "+1234567890123456",
            "25571234567x",
        ] {
            let e = PhoneNumber::parse("phone", bad).unwrap_err();
            assert!(e.to_string().contains("phone"), "{e}");
        }
    }

    #[test]
    fn mac_forms() {
        let m = MacAddress::parse("mac", "aa-bb-cc-dd-ee-0f").unwrap();
        assert_eq!(m.to_string(), "AA:BB:CC:DD:EE:0F");
        assert_eq!(MacAddress::parse("mac", "aabb.ccdd.ee0f").unwrap(), m);
        assert_eq!(MacAddress::parse("mac", "AABBCCDDEE0F").unwrap(), m);
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:gg",
            "aabb:ccdd:ee0f",
            "aa:bb:cc:dd:ee:ff:00",
        ] {
            assert!(MacAddress::parse("mac", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr() {
        assert_eq!(
            Ipv4Cidr::parse("net", "10.0.0.0/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(
            Ipv4Cidr::parse("net", "10.0.0.2").unwrap().to_string(),
            "10.0.0.2/32"
        );
        assert!(Ipv4Cidr::parse("net", "10.0.0.1/24").is_err());
        assert!(Ipv4Cidr::parse("net", "10.0.0.0/33").is_err());
        assert!(Ipv4Cidr::parse("net", "10.0.0/24").is_err());
        assert!(Ipv4Cidr::parse("net", "10.0.0.0/24")
            .unwrap()
            .contains(Ipv4Addr::new(10, 0, 0, 9)));
    }

    #[test]
    fn ros_names() {
        assert!(RosName::parse("name", "alice").is_ok());
        assert!(RosName::parse("name", "").is_err());
        assert!(RosName::parse("name", "a\nb").is_err());
        assert!(RosName::parse("name", &"x".repeat(200)).is_err());
    }

    #[test]
    fn durations() {
        let d = |s: &str| RosDuration::parse("d", s).unwrap().as_secs();
        assert_eq!(d("1h30m"), 5400);
        assert_eq!(d("1d2h"), 93_600);
        assert_eq!(d("00:05:00"), 300);
        assert_eq!(d("3w"), 3 * 604_800);
        assert_eq!(d("1d 02:00:00"), 93_600);
        assert_eq!(d("1d02:00:00"), 93_600);
        assert_eq!(d("90"), 90);
        assert_eq!(RosDuration::parse("d", "1h30m").unwrap().to_string(), "1h30m");
        for bad in ["", "h", "1x", "00:61:00", "1:2", "99999999999999999999999w"] {
            let e = RosDuration::parse("limit_uptime", bad).unwrap_err();
            assert!(e.to_string().contains("limit_uptime"), "{bad}: {e}");
        }
    }

    #[test]
    fn money_exact() {
        let tzs = Currency::parse("currency", "tzs").unwrap();
        let m = Money::parse("price", "1500.50", tzs).unwrap();
        assert_eq!(m.to_micro_units().unwrap(), 15_005_000);
        assert_eq!(Money::from_micro_units(15_005_000, tzs), m);
        assert!(Money::parse("price", "-1", tzs).is_err());
        assert!(Money::parse("price", "1.00001", tzs).is_err());
        assert!(Money::parse("price", "abc", tzs).is_err());
    }

    #[test]
    fn rate_limits() {
        let r = RateLimit::parse("rate", "10M/20M").unwrap();
        assert_eq!((r.upload_bps, r.download_bps), (10_000_000, 20_000_000));
        assert_eq!(r.to_string(), "10M/20M");
        assert!(RateLimit::parse("rate", "10M").is_err());
        assert!(RateLimit::parse("rate", "0/1M").is_err());
    }
}
