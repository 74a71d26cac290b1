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
pub mod search;
pub mod serve;
pub mod shortlist;
pub mod tokenize;
pub mod train;
pub mod translate;

/// The library's error, with an option's name spelled as its command-line flag
/// (`option \`n_best\`: ...` becomes `--n-best: ...`); other errors as they are.
pub fn as_flags(error: transduce::Error) -> anyhow::Error {
    match error {
        transduce::Error::Option { option, why } => {
            // the optimiser's keys (`adam.weight_decay`) are flags without their table's name;
            // the dropout ramp's are flags of their own
            let flag = match option {
                "dropout_ramp" | "dropout_ramp.start" => "dropout-start".to_string(),
                "dropout_ramp.until" => "dropout-rise-until".to_string(),
                _ => option.strip_prefix("adam.").unwrap_or(option).replace(['_', '.'], "-"),
            };
            anyhow::anyhow!("--{flag}: {why}")
        }
        other => other.into(),
    }
}
