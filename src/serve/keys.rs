//! API keys: a file of keys, each with an optional requests-per-minute limit, checked for the
//! translation routes of both APIs (LibreTranslate's `api_key`, DeepL's
//! `Authorization: DeepL-Auth-Key KEY`).
//!
//! ```text
//! # key            requests per minute (optional)
//! 3f2a-team-a      120
//! b81c-batch-job
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::http::StatusCode;

use super::request::ApiError;

pub struct ApiKeys {
    /// Key → requests allowed per minute (`None`: no limit).
    limits: HashMap<String, Option<u32>>,
    /// Key → (start of the current minute, requests in it).
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl ApiKeys {
    pub fn read(path: &Path) -> anyhow::Result<ApiKeys> {
        let text = std::fs::read_to_string(path).with_context(|| format!("--api-keys {}", path.display()))?;
        let mut limits = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let key = fields.next().unwrap_or_default().to_string();
            let limit = match fields.next() {
                None => None,
                Some(n) => match n.parse::<u32>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => bail!("{}:{}: requests per minute {n:?}: expected a positive integer", path.display(), i + 1),
                },
            };
            if fields.next().is_some() {
                bail!("{}:{}: expected `KEY [REQUESTS_PER_MINUTE]`", path.display(), i + 1);
            }
            if limits.insert(key.clone(), limit).is_some() {
                bail!("{}:{}: key listed twice", path.display(), i + 1);
            }
        }
        if limits.is_empty() {
            bail!("{}: no keys in it", path.display());
        }
        Ok(ApiKeys { limits, windows: Mutex::new(HashMap::new()) })
    }

    /// Lets a request with `key` through, or says why not: 403 for a missing or unknown key,
    /// 429 with Retry-After past the key's rate.
    pub fn admit(&self, key: Option<&str>) -> Result<(), ApiError> {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid API key"));
        };
        let Some(limit) = self.limits.get(key) else {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid API key"));
        };
        let Some(limit) = *limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            (*start, *count) = (now, 0);
        }
        if *count >= limit {
            let wait = 60 - now.duration_since(*start).as_secs().min(59);
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("Slowdown: {limit} per 1 minute"))
                .retry_after(wait));
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> anyhow::Result<ApiKeys> {
        let dir = std::env::temp_dir().join(format!("transduce-keys-{}-{}", std::process::id(), text.len()));
        std::fs::write(&dir, text).unwrap();
        let k = ApiKeys::read(&dir);
        std::fs::remove_file(&dir).unwrap();
        k
    }

    #[test]
    fn keys_limits_and_errors() {
        let k = keys("# comment\nalpha 2\nbeta\n").unwrap();
        assert!(k.admit(Some("beta")).is_ok());
        assert_eq!(k.admit(None).unwrap_err().status, StatusCode::FORBIDDEN);
        assert_eq!(k.admit(Some("gamma")).unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(k.admit(Some("alpha")).is_ok());
        assert!(k.admit(Some("alpha")).is_ok());
        let err = k.admit(Some("alpha")).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.retry_after.is_some());
        let bad = keys("alpha 0\n").err().unwrap().to_string();
        assert!(bad.contains(":1:"), "{bad}");
        assert!(keys("\n# nothing\n").is_err());
    }
}
