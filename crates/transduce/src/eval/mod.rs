//! Evaluation metrics, identical to sacrebleu 2.x: corpus BLEU (13a tokenization, exp smoothing)
//! and chrF2 (character order 6).

pub mod bleu;
pub mod chrf;
pub mod tokenize_13a;

pub use bleu::{Bleu, BleuScore};
pub use chrf::{Chrf, ChrfScore};

/// Python's `str.isspace()`: Unicode whitespace plus the ASCII information separators.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no arguments.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_isspace).filter(|w| !w.is_empty())
}

/// Python's `str.rstrip()` with no arguments.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

/// Python's `str.lower()`.
pub fn py_lower(s: &str) -> String {
    s.to_lowercase()
}

/// Which case the metrics see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Case {
    #[default]
    Sensitive,
    /// Lowercase hypotheses and references first (`sacrebleu -lc`).
    Lower,
}
