//! Parallel corpora: two aligned text files (plain or gzip) or one TSV file, streamed pair by
//! pair, with errors that name the file and line and counts of what the filters drop.

use std::path::PathBuf;

use super::lines::LineReader;
use crate::error::{Error, Result};

/// Where the sentence pairs come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorpusSource {
    /// Two files, one sentence per line, aligned by line number.
    Aligned { source: PathBuf, target: PathBuf },
    /// One file with `source<TAB>target` per line.
    Tsv(PathBuf),
}

/// A sentence pair and the line it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPair {
    pub line: usize,
    pub source: String,
    pub target: String,
}

/// Streams the pairs of a corpus; a length mismatch between the two files is an error at the
/// end that gives both counts and both names.
pub struct PairReader {
    inner: Inner,
    done: bool,
}

enum Inner {
    Aligned(LineReader, LineReader),
    Tsv(LineReader),
}

impl PairReader {
    pub fn open(source: &CorpusSource) -> Result<Self> {
        let inner = match source {
            CorpusSource::Aligned { source, target } => {
                Inner::Aligned(LineReader::open(source)?, LineReader::open(target)?)
            }
            CorpusSource::Tsv(path) => Inner::Tsv(LineReader::open(path)?),
        };
        Ok(PairReader { inner, done: false })
    }

    fn next_pair(&mut self) -> Result<Option<RawPair>> {
        match &mut self.inner {
            Inner::Aligned(src, tgt) => match (src.next_line()?, tgt.next_line()?) {
                (Some(source), Some(target)) => Ok(Some(RawPair { line: src.lines_read(), source, target })),
                (None, None) => Ok(None),
                (s, _) => {
                    // count the rest of the longer file so the message gives both totals
                    let longer = if s.is_some() { &mut *src } else { &mut *tgt };
                    while longer.next_line()?.is_some() {}
                    Err(Error::Input(format!(
                        "{} has {} lines but {} has {}: the files must be aligned line by line",
                        src.name(),
                        src.lines_read(),
                        tgt.name(),
                        tgt.lines_read()
                    )))
                }
            },
            Inner::Tsv(reader) => {
                let Some(line) = reader.next_line()? else { return Ok(None) };
                let columns: Vec<&str> = line.split('\t').collect();
                if columns.len() != 2 {
                    return Err(Error::Input(format!(
                        "{}: line {}: expected 2 tab-separated columns (source, target), found {}",
                        reader.name(),
                        reader.lines_read(),
                        columns.len()
                    )));
                }
                Ok(Some(RawPair { line: reader.lines_read(), source: columns[0].into(), target: columns[1].into() }))
            }
        }
    }
}

impl Iterator for PairReader {
    type Item = Result<RawPair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_pair().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Limits on training pairs, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairFilter {
    /// Longest side allowed, in tokens.
    pub max_len: usize,
    /// Largest allowed ratio of the longer side's length to the shorter's.
    pub max_ratio: f64,
}

/// Why a pair was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Empty,
    TooLong,
    LengthRatio,
}

/// How many pairs were read, kept and dropped for each reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FilterCounts {
    pub read: usize,
    pub kept: usize,
    pub empty: usize,
    pub too_long: usize,
    pub length_ratio: usize,
}

impl PairFilter {
    /// Whether a pair with these side lengths (in tokens) is kept.
    pub fn check(&self, src_len: usize, tgt_len: usize) -> Result<(), Dropped> {
        if src_len == 0 || tgt_len == 0 {
            Err(Dropped::Empty)
        } else if src_len > self.max_len || tgt_len > self.max_len {
            Err(Dropped::TooLong)
        } else if src_len.max(tgt_len) as f64 > self.max_ratio * src_len.min(tgt_len) as f64 {
            Err(Dropped::LengthRatio)
        } else {
            Ok(())
        }
    }

    /// `check`, counting the outcome; true when the pair is kept.
    pub fn count(&self, src_len: usize, tgt_len: usize, counts: &mut FilterCounts) -> bool {
        counts.read += 1;
        let verdict = self.check(src_len, tgt_len);
        match verdict {
            Ok(()) => counts.kept += 1,
            Err(Dropped::Empty) => counts.empty += 1,
            Err(Dropped::TooLong) => counts.too_long += 1,
            Err(Dropped::LengthRatio) => counts.length_ratio += 1,
        }
        verdict.is_ok()
    }
}

impl std::fmt::Display for FilterCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pairs read, {} kept; dropped {} with an empty side, {} too long, {} with an extreme length ratio",
            self.read, self.kept, self.empty, self.too_long, self.length_ratio
        )
    }
}
