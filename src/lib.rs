//! The `transduce` app: the command line (one module per subcommand), progress bars, signals,
//! process-wide settings, the benchmarks and the built-in demo with its phrase grammar. Every
//! model, search, training and evaluation step comes from the library crate [`transduce`].

pub mod bench;
pub mod cli;
pub mod demo;
pub mod process;
pub mod serve;
