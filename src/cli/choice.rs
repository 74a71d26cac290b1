//! Command-line values for the library's named enums ([`transduce::choice::Choice`]): clap lists
//! the names in `--help` and refuses others; the library's `FromStr` does the parsing.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use transduce::choice::Choice;

/// The value parser of a library enum: `#[arg(long, value_parser = choice::<BeamRule>())]`.
pub fn choice<T: Choice + Clone + Send + Sync>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::NAMES).map(|name| name.parse::<T>().expect("clap admits only the listed names"))
}
