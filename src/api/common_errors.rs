//! The error answers every operation can give whatever its handler does, added to the OpenAPI document
//! so it lists every status a client can see: `408` and `503` from the request limits
//! ([`super::limits`]), `400`, `415` and `422` from the JSON body extractor on operations with a body,
//! `422` from the query extractor on operations with query parameters, and `401` on operations that need
//! a token. Each handler's own `responses(...)` stay as written; only missing statuses are added.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::Modify;

/// Adds the shared error answers to every operation.
pub struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_errors(operation);
            }
        }
    }
}

fn add_common_errors(operation: &mut Operation) {
    let mut statuses = vec![
        ("408", "the request ran longer than `api.request_timeout_secs` (`request_timeout`)"),
        ("503", "too many requests at once (`overloaded`, with `Retry-After`) or the database is unavailable"),
    ];
    if operation.request_body.is_some() {
        statuses.push(("400", "the body is not JSON (`bad_request`)"));
        statuses.push(("415", "the body is not `application/json` (`unsupported_media_type`)"));
        statuses.push(("422", "a field is invalid (`validation_failed`, `field` names it)"));
    }
    let has_query = operation.parameters.iter().flatten().any(|p| p.parameter_in == ParameterIn::Query);
    if has_query {
        statuses.push(("422", "a query parameter is invalid (`validation_failed`, `field` names it)"));
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.push(("401", "no valid bearer token (`unauthorized`)"));
    }
    for (status, description) in statuses {
        operation.responses.responses.entry(status.to_string()).or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
                .into()
        });
    }
}
