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
