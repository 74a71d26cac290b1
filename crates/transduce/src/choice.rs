//! Enums chosen by name (command-line values, configuration files, request fields).
//!
//! Each such enum implements [`Choice`], `FromStr` and `Display` through [`choices!`](crate::choices), with the
//! names its users type (`hugging-face`, `per-side`); a front end lists [`Choice::NAMES`] and
//! parses with `str::parse`, so the library needs no command-line crate.

/// An enum of named values.
pub trait Choice: Copy + std::str::FromStr<Err = UnknownChoice> + std::fmt::Display + 'static {
    /// What a value of this enum is, for messages ("beam rule").
    const WHAT: &'static str;
    /// Every value's name, in declaration order.
    const NAMES: &'static [&'static str];
    /// This value's name.
    fn name(self) -> &'static str;
}

/// A name that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`: expected one of {}", expected.join(", "))]
pub struct UnknownChoice {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static [&'static str],
}

/// Implements [`Choice`], `FromStr` and `Display` for an enum of unit variants:
/// `choices!(BeamRule, "beam rule", { Exact => "exact", HuggingFace => "hugging-face" });`
#[macro_export]
macro_rules! choices {
    ($ty:ty, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $crate::choice::Choice for $ty {
            const WHAT: &'static str = $what;
            const NAMES: &'static [&'static str] = &[$($name),+];
            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::choice::UnknownChoice;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err($crate::choice::UnknownChoice {
                        what: $what,
                        given: s.to_string(),
                        expected: <Self as $crate::choice::Choice>::NAMES,
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::choice::Choice::name(*self))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Choice;
    use crate::search::BeamRule;

    #[test]
    fn names_parse_back_and_unknown_names_list_the_choices() {
        for name in BeamRule::NAMES {
            assert_eq!(name.parse::<BeamRule>().unwrap().to_string(), *name);
        }
        let err = "huggingface".parse::<BeamRule>().unwrap_err().to_string();
        assert_eq!(err, "unknown beam rule `huggingface`: expected one of heuristic, exact, hugging-face, ctranslate2");
    }
}
