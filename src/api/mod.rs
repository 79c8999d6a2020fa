//! The admin HTTP API (axum): agents, numbers, bookings, calls, LiveKit tokens and webhooks, health, and
//! its OpenAPI document.
//!
//! - [`router`] assembles every route; each handler carries its `#[utoipa::path]`, and the routes are
//!   registered through `utoipa_axum` so the OpenAPI document covers exactly the routes served;
//! - [`auth`]: bearer tokens and scopes; [`error`]: the one JSON error shape; [`extract`]: body/query
//!   extractors whose errors name the field;
//! - `routes/`: one module per resource;
//! - the console's static files ([`crate::console`]) are merged in under `/console`.

pub mod auth;
mod common_errors;
pub mod error;
pub mod extract;
pub mod limits;
mod routes;

pub use routes::agents::{default_greeting, DEFAULT_PROMPT};

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::agent::chat::ChatSessions;
use crate::calendar::CalendarRegistry;
use crate::config::DialogConfig;
use crate::livekit::LivekitSettings;
use crate::metrics::{HTTP_REQUESTS_TOTAL, HTTP_REQUEST_DURATION_SECONDS};
use crate::speech::tts::voices::VoiceCatalog;
use crate::storage::crypto::MasterKey;
use crate::storage::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Seals secrets (Cal.com keys) before they are stored.
    pub master_key: Arc<MasterKey>,
    /// The calendars of agents.
    pub calendars: Arc<CalendarRegistry>,
    /// LiveKit, when configured.
    pub livekit: Option<Arc<LivekitSettings>>,
    /// Told when numbers or agents change (the LiveKit sync waits on it).
    pub routing_changed: Arc<tokio::sync::Notify>,
    /// The dialog engine settings chats run with (the same as calls').
    pub dialog: Arc<DialogConfig>,
    /// Open chat sessions.
    pub chats: Arc<ChatSessions>,
    /// The voices agents may have (checked when an agent is created or changed).
    pub voices: Arc<VoiceCatalog>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "slotline admin API",
        description = "Agents, phone numbers, bookings and calls of a slotline voice gateway. \
                       Every /v1 route except the OpenAPI document and webhooks needs `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "agents", description = "Voice agents and their calendars"),
        (name = "numbers", description = "Phone numbers routed to agents"),
        (name = "bookings", description = "Bookings made by agents"),
        (name = "calls", description = "Calls handled by the gateway"),
        (name = "chat", description = "Text chat with an agent through the same dialog engine, tools and calendar as a call"),
        (name = "scheduling", description = "Free slots, booking, cancelling and rescheduling on an agent's calendar"),
        (name = "webhooks", description = "Deliveries from calendar providers and LiveKit (signed, no bearer token)"),
        (name = "livekit", description = "Rooms where agents answer, through LiveKit"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route of the API with its state, limits, metrics middleware and OpenAPI document.
pub fn router(state: AppState, limits: limits::ApiLimits) -> Router {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::openapi_json))
        .routes(routes!(routes::me::me))
        .routes(routes!(routes::agents::list_agents, routes::agents::create_agent))
        .routes(routes!(routes::agents::get_agent, routes::agents::update_agent, routes::agents::delete_agent))
        .routes(routes!(routes::numbers::list_numbers))
        .routes(routes!(routes::numbers::get_number, routes::numbers::put_number, routes::numbers::delete_number))
        .routes(routes!(routes::bookings::list_bookings))
        .routes(routes!(routes::calls::list_calls))
        .routes(routes!(routes::calls::get_transcript))
        .routes(routes!(routes::stats::daily))
        .routes(routes!(routes::chats::start_chat))
        .routes(routes!(routes::chats::chat_turn))
        .routes(routes!(routes::chats::end_chat))
        .routes(routes!(routes::scheduling::list_slots))
        .routes(routes!(routes::scheduling::create_booking))
        .routes(routes!(routes::scheduling::cancel_booking))
        .routes(routes!(routes::scheduling::reschedule_booking))
        .routes(routes!(routes::webhooks::calcom_webhook))
        .routes(routes!(routes::livekit::create_token))
        .routes(routes!(routes::livekit::livekit_webhook))
        .with_state(state)
        .split_for_parts();
    // The routes' paths exist only now, so the shared error answers are added here, not as a modifier.
    common_errors::CommonErrors.modify(&mut doc);
    let router =
        router.merge(crate::console::router()).fallback(routes::health::not_found).layer(Extension(Arc::new(doc)));
    // The limits sit inside the metrics middleware, so their 408 and 503 answers are counted too.
    limits::apply(router, limits).layer(middleware::from_fn(record_http_metrics))
}

/// Counts requests and measures latency by method, matched route template and status.
async fn record_http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = crate::metrics::http_method_label(request.method());
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS_TOTAL, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
