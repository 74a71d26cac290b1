//! What the browser sees: the translation page served from the binary (`GET /`), and the
//! explain route (`GET|POST /explain`) behind its "see inside" panel, which shows for one
//! sentence what `transduce explain` shows: the cross-attention alignment, the encoder's
//! context map, masked self-attention and the decoder's top-k at each step.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use transduce::explain::{explain_input as record, html};
use transduce::text::languages::Direction;
use transduce::text::sentences::{self, Newlines};
use transduce::translate::Input;

use super::request::{ApiError, LibreRequest};
use super::App;

/// The page: language pickers, translation as you type, alternatives, copy, see inside.
const PAGE: &str = include_str!("page.html");

/// Candidates shown per decoder step.
const TOP_K: usize = 5;

/// `GET /`
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}

/// `GET|POST /explain?q=…&source=…&target=…[&format=json]`: the explainer page of the first
/// sentence of `q` through the direct model (the JSON of the explanation with `format=json`).
pub async fn explain(State(app): State<Arc<App>>, LibreRequest(p): LibreRequest) -> Result<Response, ApiError> {
    let (texts, _) = p
        .strings("q")?
        .filter(|(t, _)| t.iter().any(|t| !t.trim().is_empty()))
        .ok_or_else(|| ApiError::missing("q"))?;
    app.check_sizes(&texts)?;
    let target = p.string("target")?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("target"))?;
    let source = match p.string("source")?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("source"))? {
        s if s == "auto" => app.detect(&texts[0]).language,
        s => s,
    };
    let json = match p.string("format")?.as_deref() {
        None | Some("html") => false,
        Some("json") => true,
        Some(other) => return Err(ApiError::bad_request(format!("{other} format is not supported"))),
    };
    let hop = app.models.route(&source, &target).filter(|r| r.len() == 1).map(|r| r[0]);
    let Some(index) = hop.and_then(|h| app.models.all().iter().position(|m| std::ptr::eq(m, h.model))) else {
        return Err(ApiError::bad_request(format!(
            "explain needs a model that translates {source} into {target} directly"
        )));
    };
    let text = &texts[0];
    let sentence = sentences::split(text, Some(&source), Newlines::Split)
        .first()
        .map_or_else(|| text.trim().to_string(), |r| text[r.clone()].to_string());
    let _permit = app.explaining.try_acquire().map_err(|_| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Server busy: another explanation is being made").retry_after(1)
    })?;
    let decode = app.decode;
    let worker = app.clone();
    let languages = app.models.all()[index].direction(&source, &target);
    let explanation = tokio::task::spawn_blocking(move || {
        let model = &worker.models.all()[index];
        let direction = languages.as_ref().map(|l| Direction { source: &l.source, target: &l.target });
        record(model.scheduler.translator(), &Input { direction, ..Input::new(&sentence, 0) }, &decode, TOP_K)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("Cannot explain: {e}")))?
    .map_err(|e| ApiError::bad_request(format!("Cannot explain: {e}")))?;
    let model = &app.models.all()[index];
    Ok(match json {
        true => axum::Json(explanation).into_response(),
        false => {
            let name = format!("{source} → {target} ({})", model.dir.display());
            Html(html::page(std::slice::from_ref(&explanation), &name)).into_response()
        }
    })
}
