//! Command-line interface: one module per subcommand; no model logic here.

pub mod average;
pub mod bench;
pub mod demo;
pub mod score;
pub mod train;
pub mod translate;
