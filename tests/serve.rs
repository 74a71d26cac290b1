//! `transduce serve` through HTTP on loopback: the LibreTranslate and DeepL APIs, outputs equal
//! to the library's under concurrent clients (continuous batching), pivoting, HTML, limits,
//! keys, errors with the originals' shapes, metrics and a draining SIGTERM.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::server::{answer, default_search, model_copy, models_dir, tiny_hf, Server};
use common::TempDir;
use serde_json::{json, Value};
use transduce::search::{DecodeOptions, Strategy};
use transduce::text::sentences::{self, Newlines};
use transduce::Translator;

/// Corpus lines the splitter keeps whole (one sentence each).
fn one_sentence_lines(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(tiny_hf().join("../corpus.txt")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| {
            let spans = sentences::split(l, Some("fr"), Newlines::Split);
            // whole, and ending a sentence wherever it is put
            spans.len() == 1 && &l[spans[0].clone()] == l.trim() && l.trim() == *l && l.ends_with(['.', '!', '?'])
        })
        .take(n)
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), n, "the fixture corpus has too few one-sentence lines");
    lines
}

/// 8 clients at once, one sentence per request: each answer is what the library gives the
/// sentence alone.
fn concurrent_clients_get_the_alone_outputs(extra: &[&str], opts: DecodeOptions) {
    let dir = models_dir(&format!("serve-concurrent-{}", extra.len()));
    let server = Server::start(&dir.0, extra);
    let lines = one_sentence_lines(48);
    let translator = Translator::load(&dir.0.join("fr-en")).unwrap();
    let expected: Vec<String> =
        lines.iter().map(|l| translator.translate(&[l.as_str()], &opts).unwrap()[0].text().to_string()).collect();
    let got: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|c| {
                let (server, lines) = (&server, &lines);
                s.spawn(move || {
                    (c..lines.len())
                        .step_by(8)
                        .map(|i| {
                            let (status, body, _) =
                                server.post_json("/translate", &json!({"q": lines[i], "source": "fr", "target": "en"}));
                            assert_eq!(status, 200, "{body}");
                            (i, body["translatedText"].as_str().unwrap().to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(got.len(), lines.len());
    for (i, text) in got {
        assert_eq!(text, expected[i], "line {i}: {:?}", lines[i]);
    }
    // the requests shared decoding steps
    let (_, metrics, _) = server.get("/metrics");
    let metrics = metrics.as_str().unwrap().to_string();
    let occupancy: f64 = metrics
        .lines()
        .find(|l| l.starts_with("transduce_batch_occupancy{source=\"fr\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the occupancy gauge");
    assert!(occupancy > 1.0, "mean batch occupancy {occupancy}");
}

#[test]
fn concurrent_beam_clients_get_the_outputs_each_sentence_gets_alone() {
    concurrent_clients_get_the_alone_outputs(&[], default_search());
}

#[test]
fn concurrent_greedy_clients_get_the_outputs_each_sentence_gets_alone() {
    let opts = DecodeOptions { strategy: Strategy::Greedy, ..default_search() };
    concurrent_clients_get_the_alone_outputs(&["--search", "greedy"], opts);
}

#[test]
fn libretranslate_shapes_paragraphs_batches_and_alternatives() {
    let dir = models_dir("serve-libre");
    let server = Server::start(&dir.0, &[]);
    let translator = Translator::load(&dir.0.join("fr-en")).unwrap();
    let lines = one_sentence_lines(3);
    let one = |s: &str| translator.translate(&[s], &default_search()).unwrap()[0].text().to_string();

    // a paragraph: each sentence translated, whitespace and newlines kept
    let text = format!("  {}  {}\n\n{}\n", lines[0], lines[1], lines[2]);
    let (status, body, _) = server.post_json("/translate", &json!({"q": text, "source": "fr", "target": "en"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["translatedText"],
        json!(format!("  {}  {}\n\n{}\n", one(&lines[0]), one(&lines[1]), one(&lines[2])))
    );
    assert!(body.get("detectedLanguage").is_none() && body.get("alternatives").is_none(), "{body}");

    // an array: arrays back, detectedLanguage per text for auto, alternatives per text
    let (status, body, _) = server.post_json(
        "/translate",
        &json!({"q": [lines[0], lines[1]], "source": "auto", "target": "en", "alternatives": 2}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translatedText"], json!([one(&lines[0]), one(&lines[1])]));
    assert_eq!(
        body["detectedLanguage"],
        json!([{"confidence": 100.0, "language": "fr"}, {"confidence": 100.0, "language": "fr"}])
    );
    let alternatives = body["alternatives"].as_array().unwrap();
    assert_eq!(alternatives.len(), 2);
    for (a, best) in alternatives.iter().zip([one(&lines[0]), one(&lines[1])]) {
        let a = a.as_array().unwrap();
        assert!(!a.is_empty() && a.len() <= 2, "{a:?}");
        assert!(a.iter().all(|x| x.as_str() != Some(best.as_str())), "alternatives repeat the translation");
    }

    // a form, as libretranslatepy sends it
    let (status, body, _) = server.post_form("/translate", &[("q", &lines[0]), ("source", "fr"), ("target", "en")]);
    assert_eq!((status, body["translatedText"].as_str().unwrap()), (200, one(&lines[0]).as_str()));

    // text without letters comes back as it is
    let (_, body, _) = server.post_json("/translate", &json!({"q": "12 345 !", "source": "fr", "target": "en"}));
    assert_eq!(body["translatedText"], "12 345 !");

    let (status, body, _) = server.get("/languages");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {"code": "de", "name": "German", "targets": []},
            {"code": "en", "name": "English", "targets": ["de"]},
            {"code": "fr", "name": "French", "targets": ["de", "en"]},
        ])
    );
    let (status, body, _) = server.post_json("/detect", &json!({"q": lines[0]}));
    assert_eq!((status, body.as_array().unwrap().len()), (200, 1), "{body}");
    assert!(body[0]["confidence"].as_f64().unwrap() > 0.0 && body[0]["language"].is_string(), "{body}");
    let (_, body, _) = server.get("/frontend/settings");
    assert_eq!(body["charLimit"], 5000);
    assert_eq!(body["language"]["source"]["code"], "auto");
    assert_eq!(server.get("/health").1, json!({"status": "ok"}));

    // the explain route: the first sentence of q, as JSON here
    let q = urlencode(&format!("{} {}", lines[0], lines[1]));
    let (status, body, _) = server.get(&format!("/explain?q={q}&source=fr&target=en&format=json"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], json!(lines[0]));
    assert_eq!(body["translation"], json!(one(&lines[0])));
    assert_eq!(body["target_tokens"].as_array().unwrap().last().unwrap(), "</s>");
    assert!(!body["cross_attention"].as_array().unwrap().is_empty() && !body["steps"].as_array().unwrap().is_empty());
    let (status, body, _) = server.get("/explain?q=x&source=fr&target=en&format=pdf");
    assert_eq!((status, body["error"].as_str()), (400, Some("pdf format is not supported")));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn missing_direct_pairs_pivot_through_english() {
    let dir = models_dir("serve-pivot");
    let server = Server::start(&dir.0, &[]);
    let opts = default_search();
    let line = &one_sentence_lines(1)[0];
    let fr_en = Translator::load(&dir.0.join("fr-en")).unwrap();
    let en_de = Translator::load(&dir.0.join("en-de")).unwrap();
    let english = fr_en.translate(&[line.as_str()], &opts).unwrap()[0].text().to_string();
    // the middle text is split again, as the server does
    let spans = sentences::split(&english, Some("en"), Newlines::Split);
    let german: Vec<String> =
        spans.iter().map(|r| en_de.translate(&[&english[r.clone()]], &opts).unwrap()[0].text().to_string()).collect();
    let (status, body, _) = server.post_json("/translate", &json!({"q": line, "source": "fr", "target": "de"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translatedText"].as_str().unwrap(), german.join(" "));
    let (status, body, _) = server.post_json("/translate", &json!({"q": "Hello", "source": "de", "target": "fr"}));
    assert_eq!(status, 400);
    assert_eq!(body["error"], "French (fr) is not available as a target language from German (de)");
    // the panel explains one model: a pivot pair has none
    let (status, body, _) = server.get("/explain?q=Un%20chat.&source=fr&target=de");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("explain needs a model that translates fr into de directly"))
    );
}

#[test]
fn bad_requests_get_400s_with_libretranslates_messages() {
    let dir = models_dir("serve-errors");
    let server = Server::start(&dir.0, &["--char-limit", "50", "--batch-limit", "3", "--body-limit", "4096"]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"source": "fr", "target": "en"}), "Invalid request: missing q parameter"),
        (json!({"q": "", "source": "fr", "target": "en"}), "Invalid request: missing q parameter"),
        (json!({"q": [], "source": "fr", "target": "en"}), "Invalid request: missing q parameter"),
        (json!({"q": "Un chat.", "target": "en"}), "Invalid request: missing source parameter"),
        (json!({"q": "Un chat.", "source": "fr"}), "Invalid request: missing target parameter"),
        (json!({"q": "Un chat.", "source": "xx", "target": "en"}), "xx is not supported"),
        (json!({"q": "Un chat.", "source": "fr", "target": "xx"}), "xx is not supported"),
        (
            json!({"q": "Un chat.", "source": "fr", "target": "en", "alternatives": "many"}),
            "Invalid request: alternatives parameter is not a number",
        ),
        (
            json!({"q": "Un chat.", "source": "fr", "target": "en", "alternatives": 99}),
            "Invalid request: alternatives parameter must be <= 5",
        ),
        (json!({"q": "Un chat.", "source": "fr", "target": "en", "format": "pdf"}), "pdf format is not supported"),
        (
            json!({"q": "a".repeat(51), "source": "fr", "target": "en"}),
            "Invalid request: request (51) exceeds text limit (50)",
        ),
        (
            json!({"q": ["a", "b", "c", "d"], "source": "fr", "target": "en"}),
            "Invalid request: request (4) exceeds text limit (3)",
        ),
        (
            json!({"q": [1, 2], "source": "fr", "target": "en"}),
            "Invalid request: q parameter must be a string or a list of strings",
        ),
        (
            json!({"q": {"a": 1}, "source": "fr", "target": "en"}),
            "Invalid request: q parameter must be a string or a list of strings",
        ),
        (
            json!({"q": "Un chat.", "source": ["fr"], "target": "en"}),
            "Invalid request: source parameter must be a string",
        ),
    ];
    for (body, message) in cases {
        let (status, answer, _) = server.post_json("/translate", &body);
        assert_eq!((status, answer["error"].as_str()), (400, Some(message)), "{body}");
    }
    // malformed JSON, deeply nested JSON, invalid UTF-8, unknown content types, huge bodies
    let raw = |body: &[u8], content_type: &str| {
        answer(ureq::post(&server.url("/translate")).set("Content-Type", content_type).send_bytes(body))
    };
    for (body, content_type) in [
        (&b"{\"q\": "[..], "application/json"),
        (&b"[\"q\"]"[..], "application/json"),
        (&b"q=\xff\xfe&source=fr&target=en"[..], "application/x-www-form-urlencoded"),
    ] {
        let (status, answer, _) = raw(body, content_type);
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().starts_with("Invalid"), "{answer}");
    }
    let nested = format!("{{\"q\": {}}}", "[".repeat(3000));
    assert_eq!(raw(nested.as_bytes(), "application/json").0, 400);
    assert_eq!(raw(b"<q/>", "application/xml").0, 415);
    // the 413 comes as soon as the headers are read, with the body unread: the server shuts its
    // side and reads and drops what the client still sends before closing (a lingering close),
    // so a client writing the body never meets a reset before it reads the answer
    for _ in 0..20 {
        let sent = ureq::post(&server.url("/translate"))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_bytes(&vec![b'a'; 200_000]);
        assert_eq!(answer(sent).0, 413);
    }
    // the server is still there
    assert_eq!(server.get("/health").0, 200);
}

#[test]
fn html_keeps_markup_and_places_inline_tags() {
    let dir = models_dir("serve-html");
    let server = Server::start(&dir.0, &[]);
    let html = "<p class=\"x\">Une <b>femme</b> &amp; un <a href=\"/chien?a=1&amp;b=2\">chien</a>.</p>\
                <script>if (a < b) { x = \"<i>\"; }</script><code>Un chat</code><!-- Un chien -->\
                <div><i>Deux <b>grands</b> chiens</i> <br> jouent <span translate=\"no\">Le Chat</span></div><b>non fermé";
    let (status, body, _) =
        server.post_json("/translate", &json!({"q": html, "source": "fr", "target": "en", "format": "html"}));
    assert_eq!(status, 200, "{body}");
    let out = body["translatedText"].as_str().unwrap();
    for kept in [
        "<p class=\"x\">",
        "</p>",
        "<script>if (a < b) { x = \"<i>\"; }</script>",
        "<code>Un chat</code>",
        "<!-- Un chien -->",
        "<a href=\"/chien?a=1&amp;b=2\">",
        "<span translate=\"no\">Le Chat</span>",
        "<br>",
    ] {
        assert!(out.contains(kept), "{kept:?} lost in {out}");
    }
    // every tag of the source is in the output, as many times
    for tag in ["<b>", "</b>", "<i>", "</i>", "</a>", "<div>", "</div>"] {
        assert_eq!(out.matches(tag).count(), html.matches(tag).count(), "{tag} in {out}");
    }
    // DeepL's tag_handling takes the same path
    let (status, body, _) = server.post_form(
        "/v2/translate",
        &[("text", "<p>Une <b>femme</b>.</p>"), ("target_lang", "EN"), ("tag_handling", "html")],
    );
    assert_eq!(status, 200, "{body}");
    let text = body["translations"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("<p>") && text.ends_with("</p>") && text.contains("<b>") && text.contains("</b>"),
        "{text}"
    );
}

#[test]
fn deepl_shapes_keys_and_rates() {
    let dir = models_dir("serve-deepl");
    let keys = dir.write("keys.txt", b"# test keys\nsecret-a\nslow-b 2\n");
    let server = Server::start(&dir.0, &["--api-keys", keys.to_str().unwrap()]);
    let lines = one_sentence_lines(2);
    let translator = Translator::load(&dir.0.join("fr-en")).unwrap();
    let one = |s: &str| translator.translate(&[s], &default_search()).unwrap()[0].text().to_string();
    let deepl = |key: Option<&str>, pairs: &[(&str, &str)]| {
        let mut r = ureq::post(&server.url("/v2/translate"));
        if let Some(k) = key {
            r = r.set("Authorization", &format!("DeepL-Auth-Key {k}"));
        }
        answer(r.send_form(pairs))
    };
    let (status, body, _) = deepl(
        Some("secret-a"),
        &[("text", &lines[0]), ("text", &lines[1]), ("target_lang", "EN-US"), ("source_lang", "FR")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"translations": [
            {"detected_source_language": "FR", "text": one(&lines[0])},
            {"detected_source_language": "FR", "text": one(&lines[1])},
        ]})
    );
    // JSON body, source detected
    let (status, body, _) = answer(
        ureq::post(&server.url("/v2/translate"))
            .set("Authorization", "DeepL-Auth-Key secret-a")
            .send_json(json!({"text": [lines[0]], "target_lang": "EN-GB", "split_sentences": "nonewlines", "show_billed_characters": true})),
    );
    assert_eq!((status, body["translations"][0]["detected_source_language"].as_str()), (200, Some("FR")), "{body}");
    assert_eq!(body["translations"][0]["billed_characters"], json!(lines[0].chars().count()));
    // keys: missing or unknown 403, in both APIs
    assert_eq!(deepl(None, &[("text", "x"), ("target_lang", "EN")]).0, 403);
    assert_eq!(deepl(Some("nope"), &[("text", "x"), ("target_lang", "EN")]).0, 403);
    let (status, body, _) = server.post_json("/translate", &json!({"q": "Un chat.", "source": "fr", "target": "en"}));
    assert_eq!((status, body["error"].as_str()), (403, Some("Invalid API key")));
    let with_key = json!({"q": "Un chat.", "source": "fr", "target": "en", "api_key": "slow-b"});
    assert_eq!(server.post_json("/translate", &with_key).0, 200);
    assert_eq!(server.post_json("/translate", &with_key).0, 200);
    let (status, body, retry) = server.post_json("/translate", &with_key);
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("Slowdown:"), "{body}");
    assert!(retry.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))));
    // errors in DeepL's shape
    let (status, body, _) = deepl(Some("secret-a"), &[("text", "x"), ("target_lang", "XX")]);
    assert_eq!((status, body["message"].as_str()), (400, Some("Value for 'target_lang' not supported.")));
    let (status, body, _) = deepl(Some("secret-a"), &[("target_lang", "EN")]);
    assert_eq!((status, body["message"].as_str()), (400, Some("Parameter 'text' not specified.")));
    // languages and usage
    let get = |path: &str| answer(ureq::get(&server.url(path)).set("Authorization", "DeepL-Auth-Key secret-a").call());
    assert_eq!(
        get("/v2/languages?type=source").1,
        json!([{"language": "EN", "name": "English"}, {"language": "FR", "name": "French"}])
    );
    let targets = get("/v2/languages?type=target").1;
    let codes: Vec<&str> = targets.as_array().unwrap().iter().map(|l| l["language"].as_str().unwrap()).collect();
    assert_eq!(codes, ["DE", "EN", "EN-GB", "EN-US"]);
    let usage = get("/v2/usage").1;
    assert!(
        usage["character_count"].as_u64().unwrap() > 0 && usage["character_limit"].as_u64().unwrap() > 0,
        "{usage}"
    );
}

#[test]
fn a_model_without_languages_is_refused_with_a_message() {
    let dir = TempDir::new("serve-no-languages");
    model_copy(&dir.0, "mystery", None);
    let out = Command::new(env!("CARGO_BIN_EXE_transduce"))
        .args(["serve", "--models", dir.0.to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mystery") && stderr.contains("source_lang"), "{stderr}");
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_the_rest_succeed() {
    let dir = models_dir("serve-queue");
    let server = Server::start(&dir.0, &["--queue", "4", "--max-tokens", "64"]);
    let paragraph = one_sentence_lines(6).join(" ");
    let results: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| {
                    let (status, _, retry) =
                        server.post_json("/translate", &json!({"q": paragraph, "source": "fr", "target": "en"}));
                    (status, retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().any(|(s, _)| *s == 200), "{results:?}");
    let busy: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "12 requests of 6 sentences fit a queue of 4: {results:?}");
    assert!(busy.iter().all(|(_, r)| r.as_deref() == Some("1")));
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 503), "{results:?}");
    assert_eq!(server.get("/health").0, 200);
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let dir = models_dir("serve-sigterm");
    // a wide beam in a small batch: the request takes a while
    let mut server = Server::start(&dir.0, &["--beam", "16", "--max-tokens", "64"]);
    let paragraph = one_sentence_lines(20).join(" ");
    let url = server.url("/translate");
    let request = std::thread::spawn(move || {
        answer(ureq::post(&url).send_json(json!({"q": paragraph, "source": "fr", "target": "en"})))
    });
    // the request is in flight once the server has counted it into the queue
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m, _) = server.get("/metrics");
        let busy = m.as_str().unwrap().lines().any(|l| {
            (l.starts_with("transduce_decoding_sentences") || l.starts_with("transduce_queue_sentences"))
                && !l.ends_with(" 0")
        });
        if busy || request.is_finished() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let (status, body, _) = request.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let (code, log) = server.wait_for_exit();
    assert!(code.success(), "exit {code:?}: {log}");
    assert!(log.contains("draining"), "{log}");
    // nothing listens any more
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

/// A multilingual model (the NLLB-200 fixture) serves every pair of its languages under the
/// APIs' codes (`fr` for `fra_Latn`), with the library's outputs; `/languages` lists them.
#[test]
fn a_multilingual_model_serves_every_pair_in_iso_codes() {
    let nllb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_m2m100/nllb");
    let server = Server::start(&nllb, &[]);
    let translator = Translator::load(&nllb).unwrap();
    let one = |text: &str, source, target| {
        let input = transduce::translate::Input {
            direction: Some(transduce::text::languages::Direction { source, target }),
            ..transduce::translate::Input::new(text, 0)
        };
        translator.translate_inputs(&[input], &default_search()).unwrap()[0].text().to_string()
    };
    let text = "Un homme regarde le chat noir.";
    for (source, target, nllb_source, nllb_target) in [
        ("fr", "en", "fra_Latn", "eng_Latn"),
        ("fr", "de", "fra_Latn", "deu_Latn"),
        ("en", "zh", "eng_Latn", "zho_Hans"),
    ] {
        let (status, body, _) = server.post_json("/translate", &json!({"q": text, "source": source, "target": target}));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["translatedText"], one(text, nllb_source, nllb_target), "{source} -> {target}");
    }
    let (status, body, _) = answer(ureq::post(&server.url("/v2/translate")).send_form(&[
        ("text", text),
        ("source_lang", "FR"),
        ("target_lang", "DE"),
    ]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translations"][0]["text"], one(text, "fra_Latn", "deu_Latn"));
    let (status, body, _) = server.get("/languages");
    assert_eq!(status, 200);
    let list = body.as_array().unwrap();
    assert!(list.len() > 150, "{} languages listed", list.len());
    let fr = list.iter().find(|l| l["code"] == "fr").expect("fr is listed");
    assert_eq!(fr["name"], "French");
    assert!(fr["targets"].as_array().unwrap().iter().any(|t| t == "de"));
    // languages without an ISO 639-1 code keep the model's
    assert!(list.iter().any(|l| l["code"] == "ace_Arab"));
    let (status, body, _) = server.post_json("/translate", &json!({"q": text, "source": "fr", "target": "xx"}));
    assert_eq!(status, 400, "{body}");
    // the explainer, with the language tokens shown
    let (status, body, _) = server.get(&format!("/explain?q={}&source=fr&target=de&format=json", urlencode(text)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translation"], one(text, "fra_Latn", "deu_Latn"));
    assert_eq!(body["target_tokens"][0], "deu_Latn");
}

/// A MADLAD-400-style model (the T5 fixture with `<2xx>` tokens) serves its languages: the
/// target picks the `<2xx>` token, the source is not needed; `/languages` lists its codes.
#[test]
fn a_madlad_model_serves_its_target_languages() {
    let madlad = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_t5/madlad");
    let server = Server::start(&madlad, &[]);
    let translator = Translator::load(&madlad).unwrap();
    let text = "Un homme regarde le chat noir.";
    let input = transduce::translate::Input {
        direction: Some(transduce::text::languages::Direction { source: "", target: "de" }),
        ..transduce::translate::Input::new(text, 0)
    };
    let want = translator.translate_inputs(&[input], &default_search()).unwrap()[0].text().to_string();
    let (status, body, _) = server.post_json("/translate", &json!({"q": text, "source": "fr", "target": "de"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["translatedText"], want);
    let (status, body, _) = server.get("/languages");
    assert_eq!(status, 200);
    let mut codes: Vec<&str> = body.as_array().unwrap().iter().map(|l| l["code"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["de", "en", "fr"]);
}
