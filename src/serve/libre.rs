//! The LibreTranslate API: `POST /translate`, `POST /detect`, `GET /languages`,
//! `GET /frontend/settings`, `GET /health`, with its field names, shapes, status codes and
//! error messages.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::languages::{self, Detection};
use super::pipeline::{translate_texts, Split};
use super::request::{ApiError, LibreRequest};
use super::App;
use transduce::text::sentences::Newlines;

/// `POST /translate`
pub async fn translate(State(app): State<Arc<App>>, LibreRequest(p): LibreRequest) -> Result<Json<Value>, ApiError> {
    // an empty string or an empty list counts as missing, as in LibreTranslate
    let (mut texts, batch) = p
        .strings("q")?
        .filter(|(t, batch)| !t.is_empty() && (*batch || !t[0].is_empty()))
        .ok_or_else(|| ApiError::missing("q"))?;
    let source = p.string("source")?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("source"))?;
    let target = p.string("target")?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("target"))?;
    let alternatives = match p.string("alternatives")? {
        None => 0,
        Some(n) => n
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("Invalid request: alternatives parameter is not a number"))?
            .max(0) as usize,
    };
    if alternatives > app.limits.alternatives {
        return Err(ApiError::bad_request(format!(
            "Invalid request: alternatives parameter must be <= {}",
            app.limits.alternatives
        )));
    }
    if !p.json {
        // as LibreTranslate: a form's line breaks become plain newlines
        texts = texts.into_iter().map(|t| t.lines().collect::<Vec<_>>().join("\n")).collect();
    }
    app.check_sizes(&texts)?;
    let format = p.string("format")?.unwrap_or_else(|| "text".into());
    if format != "text" && format != "html" {
        return Err(ApiError::bad_request(format!("{format} format is not supported")));
    }
    let translatable = texts.iter().any(|t| t.chars().any(char::is_alphabetic));
    let detected = match (source.as_str(), translatable) {
        (_, false) => Detection { confidence: 0.0, language: app.fallback_language() },
        ("auto", true) => app.detect(&texts.join("\n")),
        (code, true) => Detection { confidence: 100.0, language: code.to_string() },
    };
    let src = detected.language.clone();
    if !app.models.languages().contains(&src) {
        return Err(ApiError::bad_request(format!("{src} is not supported")));
    }
    if !app.models.languages().contains(&target) {
        return Err(ApiError::bad_request(format!("{target} is not supported")));
    }
    let results: Vec<(String, Vec<String>)> = if !translatable || src == target {
        texts.iter().map(|t| (t.clone(), Vec::new())).collect()
    } else {
        let route = app.models.route(&src, &target).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{} ({target}) is not available as a target language from {} ({src})",
                languages::name(&target),
                languages::name(&src)
            ))
        })?;
        let split = Split::Sentences(Newlines::Split);
        match format.as_str() {
            "html" => super::html::translate_all(&route, &texts, &app.decode)
                .await?
                .into_iter()
                .map(|t| (t, Vec::new()))
                .collect(),
            _ => translate_texts(&route, &texts, split, &app.decode, alternatives).await?,
        }
    };
    app.count_characters(&texts);
    let detected = json!({ "confidence": detected.confidence, "language": detected.language });
    let mut out = serde_json::Map::new();
    if batch {
        out.insert("translatedText".into(), json!(results.iter().map(|r| &r.0).collect::<Vec<_>>()));
        if source == "auto" {
            out.insert("detectedLanguage".into(), json!(vec![detected; texts.len()]));
        }
        if alternatives > 0 {
            out.insert("alternatives".into(), json!(results.iter().map(|r| &r.1).collect::<Vec<_>>()));
        }
    } else {
        out.insert("translatedText".into(), json!(results[0].0));
        if source == "auto" {
            out.insert("detectedLanguage".into(), detected);
        }
        if alternatives > 0 {
            out.insert("alternatives".into(), json!(results[0].1));
        }
    }
    Ok(Json(Value::Object(out)))
}

/// `POST /detect`
pub async fn detect(
    State(app): State<Arc<App>>,
    LibreRequest(p): LibreRequest,
) -> Result<Json<Vec<Detection>>, ApiError> {
    let (texts, _) =
        p.strings("q")?.filter(|(t, _)| t.iter().any(|t| !t.is_empty())).ok_or_else(|| ApiError::missing("q"))?;
    app.check_sizes(&texts)?;
    Ok(Json(vec![app.detect(&texts.join("\n"))]))
}

/// `GET /languages`
pub async fn languages(State(app): State<Arc<App>>) -> Json<Value> {
    let list: Vec<Value> = app
        .models
        .languages()
        .into_iter()
        .map(|code| json!({ "code": code, "name": languages::name(&code), "targets": app.models.targets(&code) }))
        .collect();
    Json(Value::Array(list))
}

/// `GET /frontend/settings`
pub async fn frontend_settings(State(app): State<Arc<App>>) -> Json<Value> {
    let target = app.models.all().first().map(|m| m.default_target()).unwrap_or_default();
    Json(json!({
        "charLimit": app.limits.chars,
        "frontendTimeout": 500,
        "apiKeys": app.keys.is_some(),
        "keyRequired": app.keys.is_some(),
        "suggestions": false,
        "filesTranslation": false,
        "supportedFilesFormat": [],
        "language": {
            "source": { "code": "auto", "name": "Auto Detect" },
            "target": { "code": target, "name": languages::name(&target) },
        },
    }))
}

/// `GET /health`
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
