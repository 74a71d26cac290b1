//! `tools/fetch_multi30k.sh` (the README's command for a newcomer without ../shared) on a local
//! copy: every file fetched, checked and counted; a broken file or mismatched split named.

mod common;

use std::process::Command;

use common::TempDir;

const SPLITS: [(&str, usize); 3] = [("train", 5), ("val", 3), ("test_2016_flickr", 2)];
const LANGS: [&str; 4] = ["en", "de", "fr", "cs"];

fn mirror(tmp: &TempDir) -> std::path::PathBuf {
    for (split, n) in SPLITS {
        for lang in LANGS {
            let text: String = (0..n).map(|i| format!("{split} {lang} sentence {i}\n")).collect();
            tmp.write_gz(&format!("mirror/{split}.{lang}.gz"), text.as_bytes());
        }
    }
    tmp.0.join("mirror")
}

fn fetch(out: &std::path::Path, base: &std::path::Path) -> (bool, String, String) {
    let out = Command::new("bash")
        .arg(common::root().join("tools/fetch_multi30k.sh"))
        .arg(out)
        .arg(format!("file://{}", base.display()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fetches_checks_and_counts_every_file_of_a_local_copy() {
    let tmp = TempDir::new("fetch-multi30k");
    std::fs::create_dir_all(tmp.0.join("mirror")).unwrap();
    let base = mirror(&tmp);
    let out = tmp.0.join("data");
    let (ok, stdout, stderr) = fetch(&out, &base);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("train: en=5 de=5 fr=5 cs=5"), "{stdout}");
    assert!(stdout.contains("test_2016_flickr: en=2 de=2 fr=2 cs=2"), "{stdout}");
    for (split, n) in SPLITS {
        for lang in LANGS {
            let path = out.join(format!("{split}.{lang}.gz"));
            let lines = transduce::data::lines::LineReader::open(&path).unwrap();
            let mut lines = lines;
            let mut count = 0;
            while let Some(line) = lines.next_line().unwrap() {
                assert_eq!(line, format!("{split} {lang} sentence {count}"));
                count += 1;
            }
            assert_eq!(count, n, "{}", path.display());
        }
    }
    // the corpus reader takes the fetched files as they are
    let pairs = transduce::data::corpus::PairReader::open(&transduce::data::corpus::CorpusSource::Aligned {
        source: out.join("val.fr.gz"),
        target: out.join("val.en.gz"),
    })
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap();
    assert_eq!(pairs.len(), 3);
}

#[test]
fn a_broken_file_or_a_mismatched_split_is_named() {
    let tmp = TempDir::new("fetch-multi30k-bad");
    std::fs::create_dir_all(tmp.0.join("mirror")).unwrap();
    let base = mirror(&tmp);
    std::fs::write(base.join("val.de.gz"), b"not gzip").unwrap();
    let (ok, _, stderr) = fetch(&tmp.0.join("a"), &base);
    assert!(!ok && stderr.contains("val.de.gz is not a gzip file"), "{stderr}");
    assert!(!tmp.0.join("a/val.de.gz").exists() && !tmp.0.join("a/.val.de.gz.partial").exists());

    let base = mirror(&tmp);
    tmp.write_gz("mirror/val.fr.gz", b"only one line\n");
    let (ok, _, stderr) = fetch(&tmp.0.join("b"), &base);
    assert!(!ok && stderr.contains("val: val.fr.gz has 1 lines"), "{stderr}");

    std::fs::remove_file(base.join("test_2016_flickr.cs.gz")).unwrap();
    tmp.write_gz("mirror/val.fr.gz", b"a\nb\nc\n");
    let (ok, _, stderr) = fetch(&tmp.0.join("c"), &base);
    assert!(!ok && stderr.contains("could not fetch"), "{stderr}");
}
