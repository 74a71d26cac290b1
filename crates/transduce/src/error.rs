//! Library errors: each names the file, field, option or tensor at fault.
//!
//! Messages carry their cause in the text (`path: No such file or directory`) and do not chain
//! it again as a `source()`, so printing the whole chain (`anyhow`'s `{:#}`) says it once.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: invalid JSON: {error}")]
    Json { path: PathBuf, error: serde_json::Error },
    #[error("model config: field `{field}`: {why}")]
    Config { field: String, why: String },
    #[error("{path}: {why}")]
    Weights { path: PathBuf, why: String },
    /// An option out of its range or at odds with another (`beam`, `n_best`, `max_tokens`, ...).
    #[error("option `{option}`: {why}")]
    Option { option: &'static str, why: String },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), error }
    }

    /// An [`Error::Option`].
    pub fn option(option: &'static str, why: impl Into<String>) -> Self {
        Error::Option { option, why: why.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

thread_local! {
    /// Whether this thread runs inside [`without_panics`] (its panics are reported as errors,
    /// not printed).
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a dependency's parser that may panic on malformed input (the `tokenizers` crate does on
/// some `tokenizer.json` files) and turns a panic into an [`Error::Input`] that starts with
/// `what`, so bad files give an error naming them instead of a crash. The panic is not printed.
pub fn without_panics<T>(what: &str, parse: impl FnOnce() -> Result<T>) -> Result<T> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(|g| g.get()) {
                previous(info)
            }
        }));
    });
    let outer = GUARDED.with(|g| g.replace(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse));
    GUARDED.with(|g| g.set(outer));
    outcome.unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("the parser failed");
        Err(Error::Input(format!("{what}: {why}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_parser_gives_an_error_naming_the_file() {
        let failed = without_panics("model/tokenizer.json", || -> Result<()> { panic!("index 7 out of range") });
        let message = failed.unwrap_err().to_string();
        assert!(message.contains("model/tokenizer.json") && message.contains("index 7 out of range"), "{message}");
        assert_eq!(without_panics("x", || Ok(3)).unwrap(), 3);
        // guards nest, and the thread is unguarded again afterwards
        let inner = without_panics("outer", || without_panics("inner", || -> Result<()> { panic!("deep") }));
        assert!(inner.unwrap_err().to_string().starts_with("inner"));
        assert!(!GUARDED.with(|g| g.get()));
    }
}
