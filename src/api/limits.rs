//! How much the admin API takes on: each request runs at most `api.request_timeout_secs` (then `408`), and
//! at most `api.max_concurrent_requests` run at once; one more is refused at once with `503` and
//! `Retry-After`, rather than queued, so a flood cannot pile up memory or hold the database pool.
//!
//! Built from tower's `timeout`, `load_shed` and global `limit` layers; the only code here maps their
//! errors to the API's one JSON error shape.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::response::{IntoResponse, Response};
use axum::BoxError;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::ServiceBuilder;

use super::error::ApiError;
use crate::config::ApiConfig;

/// The admin API's request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Requests served at once.
    pub max_concurrent_requests: usize,
}

impl From<&ApiConfig> for ApiLimits {
    fn from(config: &ApiConfig) -> Self {
        Self {
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            max_concurrent_requests: config.max_concurrent_requests,
        }
    }
}

/// Applies the limits to every route of `router`. The concurrency limit is one semaphore shared by all
/// routes (axum applies a layer to each route separately).
pub fn apply<S: Clone + Send + Sync + 'static>(router: axum::Router<S>, limits: ApiLimits) -> axum::Router<S> {
    let timeout_secs = limits.request_timeout.as_secs();
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |error: BoxError| async move { refusal(&error, timeout_secs) }))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
            .timeout(limits.request_timeout),
    )
}

fn refusal(error: &BoxError, timeout_secs: u64) -> Response {
    if error.is::<Overloaded>() {
        ApiError::Overloaded.into_response()
    } else if error.is::<Elapsed>() {
        ApiError::TimedOut(timeout_secs).into_response()
    } else {
        ApiError::Internal(anyhow::anyhow!("request layer failed: {error}")).into_response()
    }
}
