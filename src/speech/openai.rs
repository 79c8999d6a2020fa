//! The HTTP exchange the OpenAI-compatible speech engines share ([`super::stt::openai`],
//! [`super::tts::openai`]): one connection pool per engine, the bearer key when one is configured, one
//! timeout around the whole request (connect, send, status, body), and failures described without the key.
//!
//! A failure is a sentence for [`super::SpeechError::Engine`]: the status and a short excerpt of the body
//! (`HTTP 401: {"error": ...}`), a timeout, or a transport error (without the URL, which may carry
//! credentials). The key is replaced by `[redacted]` wherever a server echoes it back.

use std::time::Duration;

use crate::config::{OpenAiSpeechConfig, Secret};

/// Characters of an error body kept in a message.
const EXCERPT_CHARS: usize = 200;

/// One OpenAI-compatible base URL with its key and timeout.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    timeout: Duration,
}

impl Endpoint {
    /// The endpoint of `config`.
    pub(crate) fn new(config: &OpenAiSpeechConfig) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("slotline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            client,
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
        }
    }

    /// A `POST {base_url}/{path}` with the bearer key when one is configured.
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.post(format!("{}/{path}", self.base_url));
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// Sends `request` and returns the body of a 2xx answer; any other outcome is a sentence without
    /// the key.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
        let exchange = async {
            let response = request.send().await.map_err(|e| e.without_url().to_string())?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| e.without_url().to_string())?;
            Ok::<_, String>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(transport)) => return Err(self.redact(format!("request failed: {transport}"))),
            Err(_) => return Err(format!("no answer within the timeout of {} ms", self.timeout.as_millis())),
        };
        if !status.is_success() {
            return Err(self.redact(format!("HTTP {}: {}", status.as_u16(), excerpt(&body))));
        }
        Ok(Vec::from(body))
    }

    /// `text` without the key.
    pub(crate) fn redact(&self, text: String) -> String {
        match &self.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "[redacted]"),
            _ => text,
        }
    }
}

/// The start of a body as one line of text: white space collapsed, at most [`EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "(empty body)".to_string()
    } else if line.chars().count() > EXCERPT_CHARS {
        line.chars().take(EXCERPT_CHARS).chain(std::iter::once('…')).collect()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"{\"error\":\n  {\"message\": \"bad key\"}}"), "{\"error\": {\"message\": \"bad key\"}}");
        assert_eq!(excerpt(b""), "(empty body)");
        let long = excerpt("x".repeat(5000).as_bytes());
        assert_eq!(long.chars().count(), 201);
        assert!(long.ends_with('…'));
    }
}
