//! Subword tokenizers: trained with Hugging Face `tokenizers`, fixed special ids, lossless
//! round trips, saved and reloaded as tokenizer.json.

mod common;

use std::path::Path;

use common::multi30k;

use transduce::text::{SubwordModel, SubwordTokenizer, SubwordTraining, SPECIAL_TOKENS};

fn corpus() -> Vec<String> {
    let subjects = ["le chat", "un chien", "la femme", "les enfants", "mon ami", "ton frère"];
    let verbs = ["mange", "regarde", "aime", "cherche", "trouve"];
    let objects = ["une pomme", "le ballon", "la maison", "des fleurs", "un livre rouge"];
    let mut out = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for (j, v) in verbs.iter().enumerate() {
            for (k, o) in objects.iter().enumerate() {
                out.push(format!("{s} {v} {o} {}.", (i * 25 + j * 5 + k) % 7));
            }
        }
    }
    out
}

#[test]
fn trained_tokenizers_round_trip_and_keep_special_ids() {
    let dir = std::env::temp_dir().join(format!("transduce-subword-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for model in [SubwordModel::Unigram, SubwordModel::Bpe] {
        let tok = SubwordTokenizer::train(corpus().into_iter(), SubwordTraining { model, vocab_size: 120 }).unwrap();
        assert!(tok.vocab_size() <= 120 && tok.vocab_size() > 40, "{model:?}: vocab {}", tok.vocab_size());
        for line in ["le chat aime la maison 3.", "mon ami cherche un livre rouge 0."] {
            let ids = tok.encode(line).unwrap();
            assert!(ids.iter().all(|&i| i >= SPECIAL_TOKENS.len() as u32), "{model:?}: {ids:?}");
            assert_eq!(tok.decode(&ids).unwrap(), line, "{model:?}");
            // regression: `pieces` came back as empty strings (encode_fast keeps no token text)
            let pieces = tok.pieces(line).unwrap();
            assert_eq!(pieces.len(), ids.len());
            assert_eq!(pieces.concat().replace('\u{2581}', " ").trim(), line, "{model:?}: {pieces:?}");
        }
        // unseen characters map to <unk> (id 3) rather than failing
        let ids = tok.encode("ζ").unwrap();
        assert!(ids.contains(&3), "{model:?}: {ids:?} for an unseen character");
        let path = dir.join(format!("{model:?}.json"));
        tok.save(&path).unwrap();
        let back = SubwordTokenizer::load(&path).unwrap();
        let line = "les enfants trouvent des fleurs";
        assert_eq!(back.encode(line).unwrap(), tok.encode(line).unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_names_the_bad_file() {
    let err = SubwordTokenizer::load(Path::new("/nonexistent/tokenizer.json")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/tokenizer.json"), "{err}");
    let bad = std::env::temp_dir().join(format!("transduce-bad-tok-{}.json", std::process::id()));
    std::fs::write(&bad, "{ not json").unwrap();
    let err = SubwordTokenizer::load(&bad).unwrap_err().to_string();
    assert!(err.contains(&format!("{}: invalid JSON: key must be a string", bad.display())), "{err}");
    // a value of the wrong type: the error names the field's path and the line
    let tok =
        SubwordTokenizer::train(corpus().into_iter(), SubwordTraining { model: SubwordModel::Bpe, vocab_size: 120 })
            .unwrap();
    tok.save(&bad).unwrap();
    let text = std::fs::read_to_string(&bad).unwrap();
    let (before, after) = text.split_once("\"dropout\":null").expect("a BPE tokenizer.json has `dropout`");
    std::fs::write(&bad, format!("{before}\"dropout\":\"high\"{after}")).unwrap();
    let err = SubwordTokenizer::load(&bad).unwrap_err().to_string();
    assert!(err.contains(&bad.display().to_string()) && err.contains("at `model"), "{err}");
    assert!(err.contains("line "), "{err}");
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn joint_vocabulary_on_multi30k_when_present() {
    use transduce::data::lines::read_lines;
    let Some(dir) = multi30k() else { return };
    let mut lines = read_lines(&dir.join("val.en.gz")).unwrap();
    lines.extend(read_lines(&dir.join("val.de.gz")).unwrap());
    let tok = SubwordTokenizer::train(
        lines.clone().into_iter(),
        SubwordTraining { model: SubwordModel::Unigram, vocab_size: 1000 },
    )
    .unwrap();
    let unk = lines.iter().map(|l| tok.encode(l).unwrap().iter().filter(|&&i| i == 3).count()).sum::<usize>();
    assert_eq!(unk, 0, "training text should have no unknown pieces");
    for line in lines.iter().take(50) {
        assert_eq!(
            tok.decode(&tok.encode(line).unwrap()).unwrap(),
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
