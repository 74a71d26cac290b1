//! Vocabulary shortlists: a step scores only the target tokens a sentence's source lists.
//! A list of every token changes nothing (to the bit); a short list keeps every output within
//! its sentence's candidates, and an output does not depend on its batch, in one batch or
//! through the continuous-batching scheduler; the command measures a map that translate reads.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::server::{default_search, model_copy, Server};
use common::{tiny_corpus as corpus, tiny_hf, transduce, TempDir};
use serde_json::json;
use transduce::search::{BeamOptions, DecodeOptions, Strategy};
use transduce::translate::scheduler::{Scheduler, SchedulerOptions};
use transduce::translate::shortlist::Shortlist;
use transduce::Translator;

fn greedy() -> DecodeOptions {
    DecodeOptions { strategy: Strategy::Greedy, max_len: 30, ..DecodeOptions::default() }
}

fn beam() -> DecodeOptions {
    DecodeOptions {
        strategy: Strategy::Beam(BeamOptions { beam: 4, n_best: 2, ..BeamOptions::default() }),
        max_len: 30,
        ..DecodeOptions::default()
    }
}

/// A map in the model's pieces: `always` on the empty n-gram's line.
fn parse(translator: &Translator, text: &str) -> Shortlist {
    let (source, target) = translator.piece_ids();
    Shortlist::parse(text, "test map", &source, &target).unwrap()
}

/// A short list measured on the model's own translations of the corpus: 4 frequent tokens
/// and 3 per source token.
fn measured(translator: &Translator, lines: &[String]) -> Shortlist {
    translator.build_shortlist(lines, &own(translator, lines), 4, 3).unwrap()
}

/// The model's own greedy translations of `lines` (the target side of a measured list).
fn own(translator: &Translator, lines: &[String]) -> Vec<String> {
    translator.translate(&refs(lines), &greedy()).unwrap().into_iter().map(|t| t.outputs[0].text.clone()).collect()
}

fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

#[test]
fn a_list_of_every_token_changes_nothing_to_the_bit() {
    let mut translator = Translator::load(&tiny_hf()).unwrap();
    let lines = corpus(40);
    let full: Vec<_> = [greedy(), beam()].iter().map(|o| translator.translate(&refs(&lines), o).unwrap()).collect();
    let vocab = translator.model.config.vocab.target();
    let every: Vec<String> =
        (0..vocab as u32).map(|i| translator.tokenizers.target.id_pieces(&[i]).remove(0)).collect();
    // pieces repeat (<unk> stands for ids without a piece): the list names each piece once
    let distinct: HashSet<&String> = every.iter().collect();
    assert!(distinct.len() > vocab / 2, "{} distinct pieces of {vocab}", distinct.len());
    let text = format!("\t{}\n", distinct.into_iter().cloned().collect::<Vec<_>>().join(" "));
    let list = parse(&translator, &text);
    translator.set_shortlist(Some(list));
    for (opts, want) in [greedy(), beam()].iter().zip(&full) {
        let got = translator.translate(&refs(&lines), opts).unwrap();
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            // same tokens and the same scores: every candidate's logit is the full product's
            assert_eq!(g, w, "line {i}: {:?}", lines[i]);
        }
    }
}

#[test]
fn a_short_list_keeps_outputs_within_their_candidates_whatever_the_batch() {
    let mut translator = Translator::load(&tiny_hf()).unwrap();
    let lines = corpus(60);
    let list = measured(&translator, &lines);
    assert!(list.rules() > 10, "{} rules", list.rules());
    let special = translator.model.config.special;
    let candidates: Vec<HashSet<u32>> = lines
        .iter()
        .map(|l| {
            let ids = translator.tokenizers.source.encode(l).unwrap();
            list.candidates(&ids, &[special.eos, special.unk]).iter().copied().collect()
        })
        .collect();
    let vocab = translator.model.config.vocab.target();
    assert!(candidates.iter().all(|c| c.len() < vocab / 2), "the list is not short");
    let full = translator.translate(&refs(&lines), &beam()).unwrap();
    translator.set_shortlist(Some(list.clone()));
    let short = translator.translate(&refs(&lines), &beam()).unwrap();
    let changed = full.iter().zip(&short).filter(|(f, s)| f != s).count();
    assert!(changed > 0, "the list changed no output: it restricts nothing");
    let mut serving = Translator::load(&tiny_hf()).unwrap();
    serving.set_shortlist(Some(list));
    let scheduler =
        Scheduler::start(Arc::new(serving), SchedulerOptions { max_tokens: 300, ..SchedulerOptions::default() })
            .unwrap();
    for opts in [greedy(), beam()] {
        let together = translator.translate(&refs(&lines), &opts).unwrap();
        for (i, t) in together.iter().enumerate() {
            for out in &t.outputs {
                let outside: Vec<u32> = out.tokens.iter().copied().filter(|id| !candidates[i].contains(id)).collect();
                assert!(outside.is_empty(), "line {i}: tokens {outside:?} are not its candidates");
            }
            let alone = translator.translate(&[lines[i].as_str()], &opts).unwrap();
            assert_eq!(&alone[0], t, "line {i}: alone and in a batch");
        }
        // and as continuous batching serves them: a small budget makes most join a running batch
        let served = scheduler.translate(lines.clone(), opts).unwrap();
        assert_eq!(served, together);
    }
}

#[test]
fn the_command_measures_a_map_that_translate_reads_and_a_bad_map_names_its_line() {
    let dir = TempDir::new("shortlist");
    let lines = corpus(50);
    let translator = Translator::load(&tiny_hf()).unwrap();
    let own = own(&translator, &lines);
    let src = dir.write("src.txt", (lines.join("\n") + "\n").as_bytes());
    let tgt = dir.write("tgt.txt", (own.join("\n") + "\n").as_bytes());
    let map = dir.0.join("vmap.txt");
    let model = tiny_hf();
    let (model, src, tgt, map) =
        (model.to_str().unwrap(), src.to_str().unwrap(), tgt.to_str().unwrap(), map.to_str().unwrap());
    let (ok, _, err) = transduce(
        &["shortlist", "-m", model, "--src", src, "--tgt", tgt, "--out", map, "--frequent", "4", "--per-token", "3"],
        b"",
    );
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(map).unwrap();
    assert!(text.starts_with('\t') && text.lines().count() > 10, "{text}");
    // the file is the library's list
    assert_eq!(parse(&translator, &text), translator.build_shortlist(&lines, &own, 4, 3).unwrap());
    let (ok, out, err) = transduce(&["translate", "-m", model, "--input", src, "--shortlist", map], b"");
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), lines.len());

    let targets = text.lines().nth(1).unwrap().split('\t').nth(1).unwrap();
    std::fs::write(map, format!("{text}▁no-such-piece-here\t{targets}\n")).unwrap();
    let (ok, _, err) = transduce(&["translate", "-m", model, "--input", src, "--shortlist", map], b"");
    let line = text.lines().count() + 1;
    assert!(!ok, "a bad map was read");
    assert!(err.contains(&format!("vmap.txt: line {line}: source token \"▁no-such-piece-here\"")), "{err}");
}

#[test]
fn the_server_decodes_a_model_over_the_shortlist_in_its_directory() {
    let dir = TempDir::new("shortlist-serve");
    model_copy(&dir.0, "fr-en", Some(("fr", "en")));
    model_copy(&dir.0, "en-de", Some(("en", "de")));
    let lines = corpus(12);
    let mut translator = Translator::load(&tiny_hf()).unwrap();
    let list = measured(&translator, &corpus(60));
    let (source, target) = translator.piece_ids();
    // fr-en has a list, en-de none
    std::fs::write(dir.0.join("fr-en/vmap.txt"), list.to_text(&source, &target)).unwrap();
    let full = translator.translate(&refs(&lines), &default_search()).unwrap();
    translator.set_shortlist(Some(list));
    let short = translator.translate(&refs(&lines), &default_search()).unwrap();
    assert!(full.iter().zip(&short).any(|(f, s)| f != s), "the list changes no output of these lines");
    let server = Server::start(&dir.0, &["--shortlist", "vmap.txt"]);
    for (i, line) in lines.iter().enumerate() {
        for (pair, want) in [(("fr", "en"), &short[i]), (("en", "de"), &full[i])] {
            let (status, body, _) =
                server.post_json("/translate", &json!({"q": line, "source": pair.0, "target": pair.1}));
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["translatedText"], want.text(), "line {i} {pair:?}");
        }
    }
}
