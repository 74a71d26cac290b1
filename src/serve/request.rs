//! What a client sent: parameters from the query string and a JSON or form body, read with
//! clear 4xx errors (never a panic), and the error answers in each API's shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::App;

/// Which API's error shape an error takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `{"error": "..."}`
    Libre,
    /// `{"message": "..."}`
    Deepl,
}

/// An answer other than success.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    pub api: Api,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None, api: Api::Libre }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn missing(name: &str) -> Self {
        Self::bad_request(format!("Invalid request: missing {name} parameter"))
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn for_api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.api {
            Api::Libre => json!({ "error": self.message }),
            Api::Deepl => json!({ "message": self.message }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// A LibreTranslate request's parameters, its `api_key` admitted.
pub struct LibreRequest(pub Params);

/// A DeepL request's parameters, its key (`Authorization: DeepL-Auth-Key KEY`, or the older
/// `auth_key` parameter) admitted; its errors are in DeepL's shape.
pub struct DeeplRequest(pub Params);

/// The body of a request (within the body limit) and its parameters.
async fn params(req: Request, app: &Arc<App>) -> Result<(Params, HeaderMap), ApiError> {
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let headers = parts.headers.clone();
    let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
        .await
        .map_err(|e| ApiError::new(e.status(), format!("Invalid request: {}", e.body_text())))?;
    Ok((Params::read(query.as_deref(), &headers, &bytes)?, headers))
}

impl FromRequest<Arc<App>> for LibreRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let (params, _) = params(req, app).await?;
        app.admit_key(params.string("api_key")?.as_deref())?;
        Ok(LibreRequest(params))
    }
}

impl FromRequest<Arc<App>> for DeeplRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let deepl = |e: ApiError| e.for_api(Api::Deepl);
        let (params, headers) = params(req, app).await.map_err(deepl)?;
        let key = match headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let value =
                    value.to_str().map_err(|_| deepl(ApiError::bad_request("Authorization header is not text")))?;
                match value.strip_prefix("DeepL-Auth-Key ") {
                    Some(k) => Some(k.trim().to_string()),
                    None => {
                        return Err(deepl(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "Authorization must be `DeepL-Auth-Key KEY`",
                        )))
                    }
                }
            }
            None => params.string("auth_key").map_err(deepl)?,
        };
        app.admit_key(key.as_deref()).map_err(deepl)?;
        Ok(DeeplRequest(params))
    }
}

/// A request's parameters by name, in order (a name may repeat: DeepL's `text=a&text=b`).
#[derive(Debug, Default)]
pub struct Params {
    values: Vec<(String, Value)>,
    /// Whether the body was JSON (LibreTranslate keeps a JSON `q`'s newlines as they are).
    pub json: bool,
}

impl Params {
    /// The query string's parameters, then the body's: JSON (an object) when the content type
    /// says so, else a URL-encoded form.
    pub fn read(query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
        let mut params = Params::default();
        if let Some(q) = query {
            params.add_form(q.as_bytes());
        }
        if body.is_empty() {
            return Ok(params);
        }
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if content_type.starts_with("application/json") {
            let value: Value =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid JSON format: {e}")))?;
            let Value::Object(fields) = value else {
                return Err(ApiError::bad_request("Invalid JSON format: expected an object"));
            };
            params.values.extend(fields);
            params.json = true;
        } else if content_type.is_empty() || content_type.starts_with("application/x-www-form-urlencoded") {
            std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("Invalid request: the body is not UTF-8 ({e})")))?;
            params.add_form(body);
        } else {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Invalid request: content type {content_type:?}: send application/json or a form"),
            ));
        }
        Ok(params)
    }

    fn add_form(&mut self, bytes: &[u8]) {
        self.values.extend(form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))));
    }

    /// The values named `name` (a form repeats a name; JSON gives one value, maybe an array).
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.values.iter().filter(move |(k, _)| k == name).map(|(_, v)| v)
    }

    /// One string parameter; numbers and booleans are taken as their text.
    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.all(name).last() {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(_) => Err(ApiError::bad_request(format!("Invalid request: {name} parameter must be a string"))),
        }
    }

    /// A parameter that is one string or a list of strings: the strings, and whether it was a
    /// list (a JSON array, or a name repeated in a form).
    pub fn strings(&self, name: &str) -> Result<Option<(Vec<String>, bool)>, ApiError> {
        let wrong = || {
            ApiError::bad_request(format!("Invalid request: {name} parameter must be a string or a list of strings"))
        };
        let values: Vec<&Value> = self.all(name).collect();
        match values.as_slice() {
            [] | [Value::Null] => Ok(None),
            [Value::String(s)] => Ok(Some((vec![s.clone()], false))),
            [Value::Array(items)] => {
                let texts =
                    items.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(wrong)).collect::<Result<_, _>>()?;
                Ok(Some((texts, true)))
            }
            many => {
                let texts =
                    many.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(wrong)).collect::<Result<_, _>>()?;
                Ok(Some((texts, true)))
            }
        }
    }
}

/// Answers 413 at once to a request whose `Content-Length` is over the body limit, before any
/// of its body is read (a body without a length is cut off where it passes the limit).
pub async fn refuse_announced_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit as u64 => {
            let api = if request.uri().path().starts_with("/v2/") { Api::Deepl } else { Api::Libre };
            let message = format!("Request body of {length} bytes is over the limit of {limit} bytes");
            let mut response = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message).for_api(api).into_response();
            // the unread body is not waited for
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Params {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        Params::read(None, &h, &Bytes::from(body.to_string())).unwrap()
    }

    fn json(body: &str) -> Result<Params, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Params::read(None, &h, &Bytes::from(body.to_string()))
    }

    #[test]
    fn forms_repeat_names_and_json_gives_arrays() {
        let p = form("text=a%20b&text=c&target_lang=DE");
        assert_eq!(p.strings("text").unwrap(), Some((vec!["a b".into(), "c".into()], true)));
        assert_eq!(p.string("target_lang").unwrap().as_deref(), Some("DE"));
        let p = json(r#"{"q": ["x", "y"], "alternatives": 3}"#).unwrap();
        assert_eq!(p.strings("q").unwrap(), Some((vec!["x".into(), "y".into()], true)));
        assert_eq!(p.string("alternatives").unwrap().as_deref(), Some("3"));
        assert_eq!(json(r#"{"q": "x"}"#).unwrap().strings("q").unwrap(), Some((vec!["x".into()], false)));
    }

    #[test]
    fn wrong_shapes_are_400s() {
        assert_eq!(json("{").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(json("[1]").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert!(json(r#"{"q": [1]}"#).unwrap().strings("q").is_err());
        assert!(json(r#"{"q": {"a": 1}}"#).unwrap().string("q").is_err());
        let deep = "[".repeat(100_000);
        assert_eq!(json(&format!(r#"{{"q": {deep}}}"#)).unwrap_err().status, StatusCode::BAD_REQUEST);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert!(Params::read(None, &h, &Bytes::from_static(b"q=\xff\xfe")).is_err());
    }
}
