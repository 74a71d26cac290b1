//! Reading a Hugging Face `config.json` field by field, every problem naming the file and the
//! field.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::config::Activation;
use crate::model_dir::{ModelDir, TOKENIZER_CONFIG};

/// An error naming `field` of the file at `path`.
pub fn field_err(path: &Path, field: &str, why: impl std::fmt::Display) -> Error {
    Error::Input(format!("{}: field `{field}`: {why}", path.display()))
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Result<Value> {
    crate::error::read_json(path)
}

/// Whether the directory's `tokenizer_config.json` names one of `classes` as its
/// `tokenizer_class` (a transduce directory imported from a family's model keeps reading its
/// tokenizer the family's way).
pub fn has_tokenizer_class(dir: &ModelDir, classes: &[&str]) -> Result<bool> {
    let path = dir.file(TOKENIZER_CONFIG);
    if !path.exists() {
        return Ok(false);
    }
    let class = read_json(&path)?.get("tokenizer_class").and_then(Value::as_str).map(str::to_string);
    Ok(class.is_some_and(|c| classes.contains(&c.as_str())))
}

/// A parsed `config.json` and where it came from.
pub struct HfConfig {
    pub path: PathBuf,
    pub value: Value,
}

impl HfConfig {
    /// Reads `path` and checks that its `model_type` is `model_type`.
    pub fn read(path: PathBuf, model_type: &str) -> Result<Self> {
        let value = read_json(&path)?;
        if value.get("model_type").and_then(Value::as_str) != Some(model_type) {
            return Err(field_err(&path, "model_type", format!("expected \"{model_type}\"")));
        }
        Ok(HfConfig { path, value })
    }

    pub fn err(&self, field: &str, why: impl std::fmt::Display) -> Error {
        field_err(&self.path, field, why)
    }

    /// A required non-negative integer.
    pub fn int(&self, field: &str) -> Result<usize> {
        self.value
            .get(field)
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .ok_or_else(|| self.err(field, "missing or not a non-negative integer"))
    }

    /// A non-negative integer, `default` when absent or null.
    pub fn int_or(&self, field: &str, default: usize) -> Result<usize> {
        match self.value.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(_) => self.int(field),
        }
    }

    /// A boolean, `default` when absent or null.
    pub fn flag(&self, field: &str, default: bool) -> Result<bool> {
        match self.value.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.err(field, format!("expected true or false, found {other}"))),
        }
    }

    /// A string, `default` when absent.
    pub fn str_or<'a>(&'a self, field: &str, default: &'a str) -> &'a str {
        self.value.get(field).and_then(Value::as_str).unwrap_or(default)
    }

    /// `activation_function` (`default` when absent).
    pub fn activation(&self, default: &str) -> Result<Activation> {
        self.activation_named("activation_function", self.str_or("activation_function", default))
    }

    /// The activation `name` (Hugging Face's `ACT2FN` key), read from `field`.
    pub fn activation_named(&self, field: &str, name: &str) -> Result<Activation> {
        match name {
            "relu" => Ok(Activation::Relu),
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "silu" => Ok(Activation::Silu),
            "swish" => Ok(Activation::Swish),
            other => Err(self.err(field, format!("{other:?} is not supported"))),
        }
    }

    /// Two integers transduce needs equal (an encoder's and a decoder's setting): the value.
    pub fn same(&self, a: &str, b: &str) -> Result<usize> {
        let (x, y) = (self.int(a)?, self.int(b)?);
        if x != y {
            return Err(self.err(b, format!("{b} = {y} differs from {a} = {x}; transduce needs them equal")));
        }
        Ok(x)
    }
}
