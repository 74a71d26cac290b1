//! The published Python clients of the two APIs (libretranslatepy, and deepl with
//! `server_url`) against `transduce serve`: their answers are the library's translations.
//! Needs `.venv-clients` (tests/clients/requirements.txt); `.ci/run` makes it and sets
//! TRANSDUCE_REQUIRE_CLIENTS, so there it fails instead of skipping.

mod common;

use serde_json::Value;
use transduce::Translator;

use common::server::{default_search, models_dir, Server};
use common::{optional, root, Requirement};

const CLIENTS: Requirement = Requirement {
    what: "a Python with the libretranslatepy and deepl clients",
    switch: "TRANSDUCE_REQUIRE_CLIENTS",
    hint: "python3 -m venv .venv-clients && .venv-clients/bin/pip install -r tests/clients/requirements.txt",
};

#[test]
fn libretranslatepy_and_deepl_clients_get_the_librarys_translations() {
    let python = root().join(".venv-clients/bin/python");
    let Some(python) = optional(&CLIENTS, python.exists().then_some(python)) else {
        return;
    };
    let dir = models_dir("serve-clients");
    let keys = dir.write("keys.txt", b"client-key\n");
    let server = Server::start(&dir.0, &["--api-keys", keys.to_str().unwrap()]);
    let lines = ["Une femme aime le chien près de l'hôtel !", "Mon père regarde une pomme dans le parc."];
    let lines_file = dir.write("lines.json", serde_json::to_string(&lines).unwrap().as_bytes());
    let out = std::process::Command::new(python)
        .arg(root().join("tests/clients/clients.py"))
        .args(["--url", &server.url(""), "--key", "client-key", "--lines", lines_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    let opts = default_search();
    let translator = Translator::load(&dir.0.join("fr-en")).unwrap();
    let expected: Vec<String> =
        lines.iter().map(|l| translator.translate(&[l], &opts).unwrap()[0].text().to_string()).collect();

    assert_eq!(got["libre_translate"], serde_json::json!(expected));
    assert_eq!(got["libre_detect"][0]["language"], "fr", "{}", got["libre_detect"]);
    let codes: Vec<&str> =
        got["libre_languages"].as_array().unwrap().iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["de", "en", "fr"]);
    assert_eq!(got["libre_bad_key"], 403);

    assert_eq!(got["deepl_translate"], serde_json::json!(expected));
    assert_eq!(got["deepl_detected"], serde_json::json!(["FR", "FR"]));
    assert_eq!(got["deepl_auto"], serde_json::json!([expected[0], "FR"]));
    let html = got["deepl_html"].as_str().unwrap();
    assert!(html.starts_with("<p>") && html.ends_with("</p>"), "{html}");
    assert_eq!(got["deepl_source_languages"], serde_json::json!([["EN", "English"], ["FR", "French"]]));
    assert_eq!(got["deepl_target_languages"], serde_json::json!(["DE", "EN", "EN-GB", "EN-US"]));
    assert!(got["deepl_usage"][0].as_u64().unwrap() > 0, "{}", got["deepl_usage"]);
    assert_eq!(got["deepl_bad_key"], "AuthorizationException");
    assert!(got["deepl_bad_target"].as_str().unwrap().contains("target_lang"), "{}", got["deepl_bad_target"]);
}
