//! The translation server: the LibreTranslate and DeepL APIs over every model of a directory,
//! each model's requests batched together by its scheduler (continuous batching), on tokio and
//! axum with tower limits; SIGTERM stops accepting, drains in-flight requests and exits.

pub mod connections;
pub mod deepl;
pub mod html;
pub mod inside;
pub mod keys;
pub mod languages;
pub mod libre;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod request;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use transduce::DecodeOptions;

use crate::cli::serve::{LogFormat, ServeConfig};
use keys::ApiKeys;
use languages::{Detection, Detector};
use metrics::Metrics;
use models::Models;
use request::ApiError;

/// Everything a request handler reads.
pub struct App {
    pub models: Models,
    pub detector: Detector,
    pub keys: Option<ApiKeys>,
    pub limits: Limits,
    pub decode: DecodeOptions,
    pub metrics: Metrics,
    /// Characters of text translated since the start (DeepL's usage).
    characters: AtomicU64,
    /// Explanations run outside the schedulers, one at a time (others get 503).
    pub explaining: tokio::sync::Semaphore,
}

/// Per-request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Characters per text.
    pub chars: usize,
    /// Texts per request.
    pub batch: usize,
    pub alternatives: usize,
}

impl App {
    pub fn new(models: Models, keys: Option<ApiKeys>, limits: Limits, decode: DecodeOptions) -> anyhow::Result<App> {
        let detector = Detector::new(&models.sources());
        Ok(App {
            models,
            detector,
            keys,
            limits,
            decode,
            metrics: Metrics::new()?,
            characters: AtomicU64::new(0),
            explaining: tokio::sync::Semaphore::new(1),
        })
    }

    /// Checks the API key when keys are configured.
    pub fn admit_key(&self, key: Option<&str>) -> Result<(), ApiError> {
        match &self.keys {
            Some(keys) => keys.admit(key),
            None => Ok(()),
        }
    }

    /// The batch and character limits, with LibreTranslate's messages.
    pub fn check_sizes(&self, texts: &[String]) -> Result<(), ApiError> {
        if texts.len() > self.limits.batch {
            return Err(ApiError::bad_request(format!(
                "Invalid request: request ({}) exceeds text limit ({})",
                texts.len(),
                self.limits.batch
            )));
        }
        for text in texts {
            let n = text.chars().count();
            if n > self.limits.chars {
                return Err(ApiError::bad_request(format!(
                    "Invalid request: request ({n}) exceeds text limit ({})",
                    self.limits.chars
                )));
            }
        }
        Ok(())
    }

    /// The most likely source language of `text` among the models' (LibreTranslate's answer
    /// when nothing can be told: the fallback language with confidence 0).
    pub fn detect(&self, text: &str) -> Detection {
        self.detector
            .detect(text)
            .into_iter()
            .next()
            .unwrap_or_else(|| Detection { confidence: 0.0, language: self.fallback_language() })
    }

    /// English if a model reads it, else the first language a model reads.
    pub fn fallback_language(&self) -> String {
        let sources = self.models.sources();
        if sources.iter().any(|s| s == models::PIVOT) {
            models::PIVOT.to_string()
        } else {
            sources.into_iter().next().unwrap_or_default()
        }
    }

    pub fn count_characters(&self, texts: &[String]) {
        let n: usize = texts.iter().map(|t| t.chars().count()).sum();
        self.characters.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn characters(&self) -> u64 {
        self.characters.load(Ordering::Relaxed)
    }
}

/// The routes, their limits and metrics.
pub fn router(app: Arc<App>, body_limit: usize, timeout: std::time::Duration) -> Router {
    Router::new()
        .route("/", get(inside::page))
        .route("/explain", get(inside::explain).post(inside::explain))
        .route("/translate", post(libre::translate))
        .route("/detect", post(libre::detect))
        .route("/languages", get(libre::languages))
        .route("/frontend/settings", get(libre::frontend_settings))
        .route("/health", get(libre::health))
        .route("/v2/translate", post(deepl::translate))
        .route("/v2/languages", get(deepl::languages).post(deepl::languages))
        .route("/v2/usage", get(deepl::usage).post(deepl::usage))
        .route("/metrics", get(metrics::render))
        .layer(axum::middleware::from_fn_with_state(app.clone(), metrics::record))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(body_limit, request::refuse_announced_oversize))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .with_state(app)
}

pub fn run(config: ServeConfig<'_>) -> anyhow::Result<()> {
    let args = config.args;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()));
    match args.log_format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().init(),
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("--threads")?;
    }
    crate::process::share_heaps();
    let keys = args.api_keys.as_deref().map(ApiKeys::read).transpose()?;
    let models = Models::load(&args.models, &config.load, config.scheduling, args.shortlist.as_deref())?;
    let limits = Limits { chars: args.char_limit, batch: args.batch_limit, alternatives: args.alternatives_limit };
    let app = Arc::new(App::new(models, keys, limits, config.decode)?);
    let addr = SocketAddr::new(args.host, args.port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("transduce-http")
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!(address = %local, models = app.models.all().len(), max_connections = config.connections.max, "listening");
        // tests read the bound port from this line
        eprintln!("transduce serve: listening on http://{local}");
        let routes = router(app.clone(), args.body_limit, config.timeout);
        connections::serve(listener, routes, config.connections, &app.metrics, stop_signal()).await;
        tracing::info!("stopped accepting; in-flight requests answered");
        anyhow::Ok(())
    })?;
    // the schedulers finish what they hold when the models drop
    drop(app);
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("stop signal: draining");
}
