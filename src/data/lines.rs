//! Reading text files line by line, with errors that name the file and line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// Reads every line of `reader` (named `name` in errors), without line terminators (`\n` or
/// `\r\n`). Invalid UTF-8 is an error naming the line.
pub fn read_lines_from(reader: impl Read, name: &str) -> Result<Vec<String>> {
    let mut reader = BufReader::new(reader);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::Input(format!("{name}: {e}")))?;
        if n == 0 {
            return Ok(lines);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = String::from_utf8(std::mem::take(&mut buf)).map_err(|e| {
            Error::Input(format!(
                "{name}: line {}: invalid UTF-8 at byte {}",
                lines.len() + 1,
                e.utf8_error().valid_up_to()
            ))
        })?;
        lines.push(line);
    }
}

/// Reads every line of the file at `path`.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_lines_from(file, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_terminators_and_names_the_bad_line() {
        let lines = read_lines_from(&b"a\r\nb\n\nc"[..], "x.txt").unwrap();
        assert_eq!(lines, vec!["a", "b", "", "c"]);
        let err = read_lines_from(&b"ok\nbad \xff here\n"[..], "x.txt").unwrap_err().to_string();
        assert_eq!(err, "x.txt: line 2: invalid UTF-8 at byte 4");
    }
}
