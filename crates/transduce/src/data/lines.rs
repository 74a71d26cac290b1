//! Reading text files (plain or gzip) line by line, with errors that name the file and line.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One line of a text file, plain or gzip (detected by its magic bytes).
pub struct LineReader {
    name: String,
    reader: Box<dyn BufRead + Send>,
    line: usize,
    buf: Vec<u8>,
}

impl LineReader {
    /// Reads lines from `reader`, called `name` in errors.
    pub fn new(reader: impl Read + Send + 'static, name: &str) -> Self {
        LineReader { name: name.to_string(), reader: Box::new(BufReader::new(reader)), line: 0, buf: Vec::new() }
    }

    /// Opens a plain or gzip-compressed file.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let name = path.display().to_string();
        Ok(if n == 2 && magic == GZIP_MAGIC {
            Self::new(MultiGzDecoder::new(file), &name)
        } else {
            Self::new(file, &name)
        })
    }

    /// Reads lines from a whole file's `bytes` (plain or gzip, detected as by [`LineReader::open`]),
    /// called `name` in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Self {
        if bytes.starts_with(&GZIP_MAGIC) {
            Self::new(MultiGzDecoder::new(Cursor::new(bytes)), name)
        } else {
            Self::new(Cursor::new(bytes), name)
        }
    }

    /// The file's name as errors show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }

    /// The next line without its terminator, or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<String>> {
        self.buf.clear();
        let n =
            self.reader.read_until(b'\n', &mut self.buf).map_err(|e| Error::Input(format!("{}: {e}", self.name)))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        String::from_utf8(std::mem::take(&mut self.buf)).map(Some).map_err(|e| {
            Error::Input(format!(
                "{}: line {}: invalid UTF-8 at byte {}",
                self.name,
                self.line,
                e.utf8_error().valid_up_to()
            ))
        })
    }
}

/// Reads every remaining line.
pub fn read_all(mut reader: LineReader) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    while let Some(line) = reader.next_line()? {
        lines.push(line);
    }
    Ok(lines)
}

/// Reads every line of the (plain or gzip) file at `path`.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    read_all(LineReader::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_terminators_and_names_the_bad_line() {
        let lines = read_all(LineReader::new(&b"a\r\nb\n\nc"[..], "x.txt")).unwrap();
        assert_eq!(lines, vec!["a", "b", "", "c"]);
        let err = read_all(LineReader::new(&b"ok\nbad \xff here\n"[..], "x.txt")).unwrap_err().to_string();
        assert_eq!(err, "x.txt: line 2: invalid UTF-8 at byte 4");
    }

    #[test]
    fn bytes_read_as_a_file_plain_or_gzip() {
        use std::io::Write;
        let text = b"a\r\nb\x0cc\n\nd".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        for bytes in [text.clone(), gz.finish().unwrap()] {
            let lines = read_all(LineReader::from_bytes(bytes, "x")).unwrap();
            assert_eq!(lines, vec!["a", "b\x0cc", "", "d"], "only \\n ends a line");
        }
    }
}
