//! The words the enums are written with. One table per enum (the `named!` call in the
//! crate root) gives its `name`, `Display`, `FromStr` and serde form, so a spec, a
//! subject and a table spell a stage the same way, and an unknown word is refused with
//! the list of the known ones.

/// A word that names no value of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {word:?}; use one of {allowed}")]
pub struct UnknownWord {
    /// What was being named, e.g. "stage".
    pub what: &'static str,
    /// The word given.
    pub word: String,
    /// The known words, comma-separated.
    pub allowed: String,
}

/// Gives an enum its words (the proto's here, the spec's in `tollgate-spec`): `named!(Stage, "stage", [Validate = "validate", ...])`.
/// Values not listed (the `UNSPECIFIED` zero) are named `unspecified` and never parse.
#[macro_export]
macro_rules! named_words {
    ($ty:ident, $what:literal, [$($variant:ident = $word:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value that has a word, in declaration order.
            pub const NAMED: &'static [$ty] = &[$($ty::$variant),+];

            /// The word the spec, subjects and tables use.
            pub fn name(self) -> &'static str {
                #[allow(unreachable_patterns)]
                match self {
                    $($ty::$variant => $word,)+
                    _ => "unspecified",
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::UnknownWord;

            fn from_str(word: &str) -> Result<Self, Self::Err> {
                Self::NAMED
                    .iter()
                    .copied()
                    .find(|v| v.name() == word)
                    .ok_or_else(|| $crate::UnknownWord {
                        what: $what,
                        word: word.to_string(),
                        allowed: Self::NAMED
                            .iter()
                            .map(|v| v.name())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
