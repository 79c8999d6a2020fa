//! The admin console: a few static files (HTML, CSS, one JavaScript module) compiled into the binary and
//! served under `/console` on the API listener. The page signs in with an API token kept in
//! `sessionStorage` and sends it as a bearer header to the same `/v1` API curl uses, so no cookie exists
//! to forge requests with; analysts' pages lack edit controls and the API refuses their writes anyway.
//!
//! Every response carries a strict Content-Security-Policy (same-origin scripts, styles and requests; no
//! inline script, no framing), and no third-party code is loaded.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The console's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// `/console`, `/console/` and the assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/console/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/console/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The assets are part of the binary: a new binary may change them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
