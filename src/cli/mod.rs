//! Command-line interface: one module per subcommand; no model logic here.

pub mod bench;
pub mod demo;
pub mod score;
