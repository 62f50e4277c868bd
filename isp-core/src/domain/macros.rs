//! The two macros that stamp out domain boilerplate: numeric ids and string enums.

/// A numeric id: `Display` shows the number, `Debug` the kind too (`router#3`).
macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "#{}"), self.0)
            }
        }
    };
}

/// An enum stored and sent as one word per variant.
///
/// Stamps out the enum (`Debug, Clone, Copy, PartialEq, Eq, Hash` plus any
/// derives given), `ALL`, `as_str`, `parse(field, raw)` (the error names the
/// field and the value), `Display`, `FromStr` and serde through the same words
/// (`$field` names the value in errors that have no field of their own).
///
/// ```text
/// string_enum! {
///     /// Delivery state.
///     pub enum NoticeStatus, field "notice_status" {
///         /// Waiting.
///         Pending = "pending",
///         /// Done.
///         Sent = "sent",
///     }
/// }
/// ```
macro_rules! string_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident, field $field:literal {
            $( $(#[$vm:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (and serialised) word.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// Inverse of `as_str`; an unknown word is an error naming `field` and the value.
            pub fn parse(field: &str, raw: &str) -> $crate::error::Result<Self> {
                match raw {
                    $($word => Ok(Self::$variant),)+
                    _ => {
                        let words: Vec<&str> = Self::ALL.iter().map(Self::as_str).collect();
                        Err($crate::error::Error::invalid(
                            field,
                            raw,
                            format!("expected one of {}", words.join(", ")),
                        ))
                    }
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> $crate::error::Result<Self> {
                Self::parse($field, s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse($field, &raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
