//! `/metrics` in the Prometheus text format: requests by route and status, latency, and per
//! model the queue depth, sentences decoding, batch occupancy and tokens written.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use super::App;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Connections open now.
    pub connections: IntGauge,
    /// Connections closed because their request headers did not arrive in time.
    pub header_timeouts: IntCounter,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("transduce_http_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("transduce_http_request_duration_seconds", "HTTP request latency by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["route"],
        )?;
        let connections = IntGauge::new("transduce_http_connections", "HTTP connections open")?;
        let header_timeouts = IntCounter::new(
            "transduce_http_header_timeouts_total",
            "Connections closed because a request's headers did not arrive within --header-timeout",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(header_timeouts.clone()))?;
        Ok(Metrics { registry, requests, latency, connections, header_timeouts })
    }
}

/// Counts and times every request (by its route pattern, so paths cannot grow the label set).
pub async fn record(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    app.metrics.requests.with_label_values(&[route.as_str(), status.as_str()]).inc();
    app.metrics.latency.with_label_values(&[route.as_str()]).observe(start.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`
pub async fn render(State(app): State<Arc<App>>) -> Response {
    let mut out = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&app.metrics.registry.gather(), &mut out) {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    // the schedulers' own counters, read now
    let families: [(&str, &str, &str); 6] = [
        ("transduce_queue_sentences", "gauge", "Sentences waiting to join a batch"),
        ("transduce_decoding_sentences", "gauge", "Sentences in a decoding batch"),
        ("transduce_batch_occupancy", "gauge", "Mean sentences per decoding step since the start"),
        ("transduce_decoding_steps_total", "counter", "Decoding steps taken"),
        ("transduce_sentences_total", "counter", "Sentences translated"),
        ("transduce_output_tokens_total", "counter", "Output tokens written (tokens/s: its rate)"),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for m in app.models.all() {
            let s = m.scheduler.stats();
            let value = match i {
                0 => s.waiting as f64,
                1 => s.decoding as f64,
                2 => s.step_sentences as f64 / s.steps.max(1) as f64,
                3 => s.steps as f64,
                4 => s.sentences as f64,
                _ => s.tokens as f64,
            };
            let (source, target) = m.labels();
            text.push_str(&format!("{name}{{source=\"{source}\",target=\"{target}\"}} {value}\n"));
        }
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_string())], text).into_response()
}
