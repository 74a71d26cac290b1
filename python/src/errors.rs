//! The library's errors as Python exceptions: a bad option or input is a `ValueError`, a file
//! that cannot be read or written an `OSError`, each with the library's message.

use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    transduce,
    OptionError,
    PyValueError,
    "An option out of its range or at odds with another; `option` names it (`beam`, `n_best`, ...)."
);
create_exception!(
    transduce,
    InputError,
    PyValueError,
    "Input the library cannot take: a line, a corpus, a configuration key; the message names it."
);
create_exception!(
    transduce,
    ModelError,
    PyValueError,
    "A model directory whose configuration or weights are wrong; the message names the file and field."
);
create_exception!(
    transduce,
    FileError,
    PyOSError,
    "A file that cannot be read or written; `filename` and `errno` as for any OSError."
);
create_exception!(transduce, TensorError, PyRuntimeError, "A tensor operation failed inside the model.");

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("OptionError", py.get_type::<OptionError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("TensorError", py.get_type::<TensorError>())?;
    Ok(())
}

/// The Python exception of a library error, with its message.
pub fn to_py(py: Python<'_>, error: transduce::Error) -> PyErr {
    let message = error.to_string();
    match error {
        transduce::Error::Option { option, .. } => {
            let err = OptionError::new_err(message);
            let _ = err.value(py).setattr("option", option);
            err
        }
        transduce::Error::Io { path, error } => {
            // the OS's own code, or the POSIX one of the kind the library gave
            let kind_code = match error.kind() {
                std::io::ErrorKind::NotFound => Some(2),
                std::io::ErrorKind::PermissionDenied => Some(13),
                _ => None,
            };
            let filename = path.display().to_string();
            match error.raw_os_error().or(kind_code) {
                // as OSError(errno, strerror, filename): `[Errno 2] No such file or directory: 'path'`
                Some(code) => FileError::new_err((code, error.to_string(), filename)),
                None => {
                    let err = FileError::new_err(message);
                    let _ = err.value(py).setattr("filename", filename);
                    err
                }
            }
        }
        transduce::Error::Json { .. } | transduce::Error::Config { .. } | transduce::Error::Weights { .. } => {
            ModelError::new_err(message)
        }
        transduce::Error::Input(_) => InputError::new_err(message),
        transduce::Error::Tensor(_) => TensorError::new_err(message),
    }
}

/// An [`OptionError`] for a keyword argument the library never sees (its type or name).
pub fn option_error(py: Python<'_>, option: &str, why: impl std::fmt::Display) -> PyErr {
    let err = OptionError::new_err(format!("option `{option}`: {why}"));
    let _ = err.value(py).setattr("option", option);
    err
}
