//! Reading parallel corpora: plain, gzip and TSV input; every kind of bad input named; filter
//! counts; the real Multi30k files when present.

mod common;

use common::{multi30k, TempDir};

use transduce::data::corpus::{CorpusSource, FilterCounts, PairFilter, PairReader, RawPair};

fn read(source: &CorpusSource) -> Result<Vec<RawPair>, String> {
    PairReader::open(source).map_err(|e| e.to_string())?.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

#[test]
fn reads_plain_gzip_and_tsv_alike() {
    let t = TempDir::new("corpus-ok");
    let src = t.write("a.en", b"one\ntwo\r\nthree\n");
    let tgt = t.write_gz("a.de.gz", b"eins\nzwei\ndrei\n");
    let pairs = read(&CorpusSource::Aligned { source: src, target: tgt }).unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[1], RawPair { line: 2, source: "two".into(), target: "zwei".into() });
    let tsv = t.write("a.tsv", b"one\teins\ntwo\tzwei\n");
    let pairs = read(&CorpusSource::Tsv(tsv)).unwrap();
    assert_eq!(pairs[0], RawPair { line: 1, source: "one".into(), target: "eins".into() });
}

#[test]
fn bad_input_is_named_with_file_and_line() {
    let t = TempDir::new("corpus-bad");
    let three = t.write("three.en", b"a\nb\nc\n");
    let two = t.write("two.de", b"x\ny\n");
    let err = read(&CorpusSource::Aligned { source: three.clone(), target: two.clone() }).unwrap_err();
    assert!(err.contains("three.en has 3 lines but") && err.contains("two.de has 2"), "{err}");
    let err = read(&CorpusSource::Aligned { source: two.clone(), target: three.clone() }).unwrap_err();
    assert!(err.contains("two.de has 2 lines but") && err.contains("three.en has 3"), "{err}");

    let bad = t.write("bad.de", b"x\ny\n\xff\n");
    let err = read(&CorpusSource::Aligned { source: three.clone(), target: bad }).unwrap_err();
    assert!(err.contains("bad.de: line 3: invalid UTF-8"), "{err}");

    let missing = t.0.join("missing.en");
    let err = read(&CorpusSource::Aligned { source: missing, target: two }).unwrap_err();
    assert!(err.contains("missing.en") && err.contains("No such file"), "{err}");

    let tsv = t.write("bad.tsv", b"a\tb\nno tab here\n");
    let err = read(&CorpusSource::Tsv(tsv)).unwrap_err();
    assert!(err.contains("bad.tsv: line 2: expected 2 tab-separated columns"), "{err}");
}

#[test]
fn filters_count_each_reason() {
    let filter = PairFilter { max_len: 10, max_ratio: 2.0 };
    let mut counts = FilterCounts::default();
    let lengths = [(3, 4), (0, 2), (2, 0), (11, 5), (5, 11), (2, 5), (6, 3), (10, 10)];
    let kept: Vec<bool> = lengths.iter().map(|&(s, t)| filter.count(s, t, &mut counts)).collect();
    assert_eq!(kept, vec![true, false, false, false, false, false, true, true]);
    assert_eq!(counts, FilterCounts { read: 8, kept: 3, empty: 2, too_long: 2, length_ratio: 1 });
    assert!(counts.to_string().contains("dropped 2 with an empty side, 2 too long, 1 with an extreme length ratio"));
}

#[test]
fn reads_multi30k_when_present() {
    let Some(dir) = multi30k() else { return };
    let source = CorpusSource::Aligned { source: dir.join("val.en.gz"), target: dir.join("val.de.gz") };
    let pairs = read(&source).unwrap();
    assert_eq!(pairs.len(), 1014);
    assert!(pairs.iter().all(|p| !p.source.is_empty() && !p.target.is_empty()));
}
