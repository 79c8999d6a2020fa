//! `GET /v1/me`: what the presented token may do (the console hides edit controls from analysts).

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::auth::ReadAccess;
use crate::api::error::ErrorBody;
use crate::storage::TokenScope;

/// The caller's token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The token's id (not the token).
    pub token_id: Uuid,
    /// `admin` (read and write) or `analyst` (read only).
    pub scope: TokenScope,
}

/// The presented token's id and scope.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "health",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody))
)]
pub async fn me(ReadAccess(caller): ReadAccess) -> Json<Me> {
    Json(Me { token_id: caller.token_id, scope: caller.scope })
}
