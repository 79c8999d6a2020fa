//! Request extractors whose failures name the field at fault, in the API's one error shape.
//!
//! axum's own `Json`/`Query` rejections are plain text; [`ApiJson`] and [`ApiQuery`] track the path of the
//! failing field with `serde_path_to_error` and answer 400 (not JSON), 415 (wrong type) or 422 (a field).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body; errors name the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut de) {
            Ok(value) => Ok(ApiJson(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    Err(ApiError::BadRequest(format!("body is not valid JSON: {inner}")))
                } else {
                    let message = strip_position(&inner.to_string());
                    Err(ApiError::validation(field_of(&path, &message), message))
                }
            }
        }
    }
}

/// A query string; errors name the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|error| {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            ApiError::validation(field_of(&path, &message), message)
        })
    }
}

/// The dotted path of the failing field; for missing/unknown fields serde names the field in the message.
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.find(prefix).map(|i| &message[i + prefix.len()..]))
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." { "" } else { path };
    match named {
        // serde_path_to_error already pushed an unknown field onto the path.
        Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_string(),
        Some(name) if parent.is_empty() => name.to_string(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "body".to_string(),
        None => parent.to_string(),
    }
}

/// serde_json appends " at line 1 column 42"; clients need the field, not the offset.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn names_the_field() {
        assert_eq!(field_of(".", "missing field `name`"), "name");
        assert_eq!(field_of("calendar", "missing field `kind`"), "calendar.kind");
        assert_eq!(field_of("calendar.kind", "unknown variant `x`"), "calendar.kind");
        assert_eq!(field_of(".", "unknown field `nmae`, expected one of"), "nmae");
        assert_eq!(field_of("nmae", "unknown field `nmae`, expected one of"), "nmae");
        assert_eq!(field_of("calendar.kid", "unknown field `kid`, expected one of"), "calendar.kid");
    }
}
