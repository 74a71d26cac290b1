//! Command-line interface: one module per subcommand; no model logic here.

pub mod align;
pub mod average;
pub mod bench;
pub mod choice;
pub mod convert;
pub mod demo;
pub mod explain;
pub mod quantize;
pub mod score;
pub mod train;
pub mod translate;
