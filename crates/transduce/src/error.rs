//! Library errors: each names the file, field, option or tensor at fault.
//!
//! Messages carry their cause in the text (`path: No such file or directory`) and do not chain
//! it again as a `source()`, so printing the whole chain (`anyhow`'s `{:#}`) says it once.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// `field` is the path to the value at fault (`model.vocab[3]`), empty when the text itself
    /// is not JSON or the whole document is at fault.
    #[error("{path}: invalid JSON{}: {error}", at_field(.field))]
    Json { path: PathBuf, field: String, error: serde_json::Error },
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

    /// An [`Error::Json`] about the whole of `path`.
    pub fn json(path: &Path, error: serde_json::Error) -> Self {
        Error::Json { path: path.to_path_buf(), field: String::new(), error }
    }

    /// An [`Error::Option`].
    pub fn option(option: &'static str, why: impl Into<String>) -> Self {
        Error::Option { option, why: why.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// ` at `field`` for an [`Error::Json`] about one value, nothing for the whole document.
fn at_field(field: &str) -> String {
    match field {
        "" => String::new(),
        field => format!(" at `{field}`"),
    }
}

/// Reads the JSON file `path` as a `T`. A value of the wrong shape is an [`Error::Json`] that
/// names the file, the field's path (`model.vocab[3]`) and serde_json's line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_json(path, &text)
}

/// Parses `text`, read from `path`, as a `T`; errors as [`read_json`]'s.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let mut json = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        // an unknown last segment (a syntax error inside a key) shows as `?`
        field: e.path().to_string().trim_end_matches(['?', '.']).to_string(),
        error: e.into_inner(),
    })?;
    // trailing characters after the document
    json.end().map_err(|e| Error::json(path, e))?;
    Ok(value)
}

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

    #[test]
    fn json_errors_name_the_file_the_field_and_the_line() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            d_model: usize,
            layers: Vec<u32>,
        }
        let path = Path::new("model/config.json");
        let parsed: Config = parse_json(path, "{\"d_model\": 8, \"layers\": [1, 2]}").unwrap();
        assert_eq!((parsed.d_model, parsed.layers), (8, vec![1, 2]));
        let message = |text: &str| parse_json::<Config>(path, text).unwrap_err().to_string();
        let wrong = message("{\"d_model\": 8,\n \"layers\": [1, \"two\"]}");
        assert!(wrong.starts_with("model/config.json: invalid JSON at `layers[1]`: invalid type"), "{wrong}");
        assert!(wrong.contains("line 2"), "{wrong}");
        let missing = message("{\"layers\": []}");
        assert!(missing.starts_with("model/config.json: invalid JSON: missing field `d_model`"), "{missing}");
        let syntax = message("{ not json");
        assert!(syntax.starts_with("model/config.json: invalid JSON: key must be a string"), "{syntax}");
        let trailing = message("{\"d_model\": 8, \"layers\": []} x");
        assert!(trailing.starts_with("model/config.json: invalid JSON: trailing characters"), "{trailing}");
        let absent = read_json::<Config>(Path::new("/nonexistent/config.json")).unwrap_err().to_string();
        assert!(absent.starts_with("/nonexistent/config.json: "), "{absent}");
    }
}
