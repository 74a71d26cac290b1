//! A subset of the DeepL API v2: `POST /v2/translate`, `GET|POST /v2/languages`,
//! `GET|POST /v2/usage`, authorised by `Authorization: DeepL-Auth-Key KEY` against the same
//! keys file as LibreTranslate's `api_key`. Errors are `{"message": "..."}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use transduce::text::sentences::Newlines;

use super::languages;
use super::pipeline::{translate_texts, Split};
use super::request::{Api, ApiError, DeeplRequest};
use super::App;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).for_api(Api::Deepl)
}

/// `POST /v2/translate`
pub async fn translate(State(app): State<Arc<App>>, DeeplRequest(p): DeeplRequest) -> Result<Json<Value>, ApiError> {
    let deepl = |e: ApiError| e.for_api(Api::Deepl);
    let (texts, _) = p.strings("text").map_err(deepl)?.ok_or_else(|| bad("Parameter 'text' not specified."))?;
    if texts.is_empty() {
        return Err(bad("Parameter 'text' not specified."));
    }
    let target =
        p.string("target_lang").map_err(deepl)?.ok_or_else(|| bad("Parameter 'target_lang' not specified."))?;
    let target_code = languages::from_deepl(&target);
    if !app.models.languages().contains(&target_code) {
        return Err(bad("Value for 'target_lang' not supported."));
    }
    let tags = match p.string("tag_handling").map_err(deepl)?.as_deref() {
        None | Some("") => None,
        Some(t @ ("html" | "xml")) => Some(t.to_string()),
        Some(_) => return Err(bad("Value for 'tag_handling' not supported.")),
    };
    let split = match p.string("split_sentences").map_err(deepl)?.as_deref() {
        None if tags.is_some() => Split::Sentences(Newlines::Join),
        None | Some("1") => Split::Sentences(Newlines::Split),
        Some("0") => Split::No,
        Some("nonewlines") => Split::Sentences(Newlines::Join),
        Some(_) => return Err(bad("Value for 'split_sentences' not supported.")),
    };
    match p.string("preserve_formatting").map_err(deepl)?.as_deref() {
        // whitespace and casing are always kept as they are
        None | Some("0" | "1" | "true" | "false") => {}
        Some(_) => return Err(bad("Value for 'preserve_formatting' not supported.")),
    }
    if texts.len() > app.limits.batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Too many texts: at most {}", app.limits.batch),
        )
        .for_api(Api::Deepl));
    }
    if let Some(long) = texts.iter().map(|t| t.chars().count()).find(|&n| n > app.limits.chars) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request Entity Too Large: a text of {long} characters (at most {})", app.limits.chars),
        )
        .for_api(Api::Deepl));
    }
    let source = match p.string("source_lang").map_err(deepl)? {
        Some(s) if !s.is_empty() => {
            let code = languages::from_deepl(&s);
            if !app.models.sources().contains(&code) {
                return Err(bad("Value for 'source_lang' not supported."));
            }
            code
        }
        _ => app.detect(&texts.join("\n")).language,
    };
    let translated: Vec<String> = if source == target_code {
        texts.clone()
    } else {
        let route = app
            .models
            .route(&source, &target_code)
            .ok_or_else(|| bad(format!("No model translates {source} into {target_code}.")))?;
        match tags {
            Some(_) => super::html::translate_all(&route, &texts, &app.decode).await.map_err(deepl)?,
            None => translate_texts(&route, &texts, split, &app.decode, 0)
                .await
                .map_err(deepl)?
                .into_iter()
                .map(|(t, _)| t)
                .collect(),
        }
    };
    app.count_characters(&texts);
    let billed = matches!(p.string("show_billed_characters").map_err(deepl)?.as_deref(), Some("true" | "1"));
    let translations: Vec<Value> = translated
        .into_iter()
        .zip(&texts)
        .map(|(text, source_text)| {
            let mut t = json!({ "detected_source_language": languages::to_deepl(&source), "text": text });
            if billed {
                t["billed_characters"] = json!(source_text.chars().count());
            }
            t
        })
        .collect();
    Ok(Json(json!({ "translations": translations })))
}

/// `GET /v2/languages?type=source|target`
pub async fn languages(State(app): State<Arc<App>>, DeeplRequest(p): DeeplRequest) -> Result<Json<Value>, ApiError> {
    let list: Vec<Value> = match p.string("type").map_err(|e| e.for_api(Api::Deepl))?.as_deref() {
        None | Some("source") => app
            .models
            .sources()
            .iter()
            .map(|c| json!({ "language": languages::to_deepl(c), "name": languages::name(c) }))
            .collect(),
        Some("target") => app
            .models
            .languages()
            .iter()
            .filter(|c| app.models.sources().iter().any(|s| app.models.route(s, c).is_some()))
            .flat_map(|c| languages::deepl_targets(c))
            .map(|(code, name)| json!({ "language": code, "name": name, "supports_formality": false }))
            .collect(),
        Some(_) => return Err(bad("Value for 'type' not supported.")),
    };
    Ok(Json(Value::Array(list)))
}

/// `GET /v2/usage`: characters translated since the server started.
pub async fn usage(State(app): State<Arc<App>>, DeeplRequest(_): DeeplRequest) -> Json<Value> {
    Json(json!({ "character_count": app.characters(), "character_limit": 1_000_000_000_000u64 }))
}
