//! Prometheus series of the scoring path: requests by model, variant and outcome, and
//! the latency of answered requests.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Serving metrics.
#[derive(Debug, Clone)]
pub struct ServeMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl ServeMetrics {
    /// Register the series in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "freshet_serve_requests_total",
                "Scoring requests by model, variant and outcome (ok, client_error, server_error)",
            ),
            &["model", "variant", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "freshet_serve_latency_seconds",
                "Time to score an answered request, from parsed body to rendered answer",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 1.0,
            ]),
            &["model", "variant"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self { requests, latency })
    }

    pub fn answered(&self, model: &str, variant: &str, seconds: f64) {
        self.requests
            .with_label_values(&[model, variant, "ok"])
            .inc();
        self.latency
            .with_label_values(&[model, variant])
            .observe(seconds);
    }

    pub fn failed(&self, model: &str, client_error: bool) {
        let outcome = if client_error {
            "client_error"
        } else {
            "server_error"
        };
        self.requests.with_label_values(&[model, "", outcome]).inc();
    }
}
