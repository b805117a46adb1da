//! Run and trigger ids as their own types, so one can never be passed for the other and
//! their rules (what characters, how long) are checked once, where they are parsed.

use std::{fmt, str::FromStr};

/// Longest id accepted.
const MAX_ID_LEN: usize = 64;

/// A string that is not a valid id of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {rule}")]
pub struct IdError {
    /// "run id" or "trigger id".
    pub what: &'static str,
    /// The text given.
    pub value: String,
    /// What an id of this kind must be.
    pub rule: &'static str,
}

/// Defines an id type: a new one is a ULID; a parsed one must be 1-64 bytes that each
/// satisfy `$byte_ok`.
macro_rules! id_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $rule:literal, $byte_ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// A new id (a ULID: sorts by creation time).
            pub fn new() -> Self {
                $ty(ulid::Ulid::new().to_string())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $ty {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                let byte_ok: fn(u8) -> bool = $byte_ok;
                if !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(byte_ok) {
                    Ok($ty(s.into()))
                } else {
                    Err(IdError {
                        what: $what,
                        value: s.into(),
                        rule: $rule,
                    })
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The id of a pipeline run: a subject token and a KV key, so ASCII letters and digits.
    RunId,
    "run id",
    "1-64 ASCII letters and digits",
    |b| b.is_ascii_alphanumeric()
);

id_type!(
    /// The id of a trigger: a trigger delivered twice (same id) starts one run.
    TriggerId,
    "trigger id",
    "1-64 ASCII letters, digits, '-' or '_'",
    |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
);
