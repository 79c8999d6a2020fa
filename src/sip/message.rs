//! SIP messages as the rest of the stack uses them, and the one parser of the wire format (RFC 3261
//! §7, §25): a method, a request-URI or status, headers as `(canonical name, value)` pairs in order
//! (folded lines joined, compact forms such as `v`, `i`, `f`, `t`, `l` expanded, comma-separated `Via`
//! values split), and the body cut to `Content-Length` (§18.3).
//!
//! The parser is slotline's own, not `rsip`'s: rsip panicked on some inputs (caught, but its panic
//! message still reached stderr for each such datagram) and its result was re-read by hand anyway. This
//! one has no panic path: no indexing that is not checked, no `unwrap`; `fuzz/` runs it on every kind of
//! input. When a request is broken (bad header, bad Content-Length) [`parse`] still salvages the headers
//! a response needs, so the server can answer 400 or 501 instead of staying silent.

use std::fmt::Write as _;

/// A request method; unknown methods are kept by name (answered 501).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, INFO, UPDATE, PRACK, PUBLISH, REFER: known, not served here.
    Known(String),
    /// Anything else.
    Other(String),
}

impl Method {
    fn from_name(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "OPTIONS" => Self::Options,
            n @ ("REGISTER" | "SUBSCRIBE" | "NOTIFY" | "MESSAGE" | "INFO" | "UPDATE" | "PRACK" | "PUBLISH"
            | "REFER") => Self::Known(n.to_string()),
            other => Self::Other(other.to_string()),
        }
    }

    /// The method's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Known(name) | Self::Other(name) => name,
        }
    }
}

/// Ordered header list with canonical names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_string(), value.into()));
    }

    /// Replaces every `name` with one value (or appends it).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.push(name, value);
    }

    /// Replaces the first `name` header's value.
    pub fn replace_first(&mut self, name: &str, value: String) {
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            slot.1 = value;
        }
    }

    /// Iterates `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI as written.
    pub uri: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// Either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Why bytes are not a usable SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SIP message: {reason}")]
pub struct ParseError {
    /// What is wrong.
    pub reason: String,
    /// What could be read of a broken request (enough to answer it), if anything.
    pub salvaged: Option<Box<Request>>,
}

const MAX_MESSAGE: usize = 64 * 1024;

/// Parses one message (a whole datagram, or one framed message from a stream).
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError { reason: "message too large".into(), salvaged: None });
    }
    let head_end = find(bytes, b"\r\n\r\n").map(|i| i + 4).or_else(|| find(bytes, b"\n\n").map(|i| i + 2));
    let Some(head_end) = head_end else {
        return Err(ParseError { reason: "no end of headers".into(), salvaged: salvage(bytes).map(Box::new) });
    };
    let broken = |reason: String| ParseError { reason, salvaged: salvage(bytes).map(Box::new) };
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| broken("headers are not UTF-8".into()))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = start_line(lines.next().unwrap_or_default()).map_err(|e| broken(e.into()))?;
    let mut headers = Headers::default();
    let mut current: Option<(&str, String)> = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        // RFC 3261 §7.3.1: a line starting with white space continues the previous header's value.
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.as_mut() else {
                return Err(broken("header continuation without a header".into()));
            };
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(broken(format!("header line without a colon `{}`", sanitized(line))));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(broken(format!("bad header name `{}`", sanitized(name))));
        }
        if let Some((name, value)) = current.replace((canonical(name), value.trim().to_string())) {
            push_header(&mut headers, name, &value);
        }
    }
    if let Some((name, value)) = current {
        push_header(&mut headers, name, &value);
    }
    let body = &bytes[head_end..];
    let declared = match headers.get("Content-Length") {
        Some(value) => Some(value.trim().parse::<usize>().map_err(|_| ParseError {
            reason: format!("bad Content-Length `{value}`"),
            salvaged: salvage(bytes).map(Box::new),
        })?),
        None => None,
    };
    let body = match declared {
        Some(n) if n > body.len() => {
            return Err(ParseError {
                reason: format!("Content-Length {n} exceeds the {} body bytes received", body.len()),
                salvaged: salvage(bytes).map(Box::new),
            })
        }
        Some(n) => body[..n].to_vec(),
        None => body.to_vec(),
    };
    let message = match start {
        Start::Request(method, uri) => Message::Request(Request { method, uri, headers, body }),
        Start::Response(status, reason) => {
            let reason = reason.split_once(' ').map_or(reason.clone(), |(_, r)| r.to_string());
            Message::Response(Response { status, reason, headers, body })
        }
    };
    if let Message::Request(request) = &message {
        for required in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if request.headers.get(required).is_none() {
                return Err(ParseError {
                    reason: format!("missing {required}"),
                    salvaged: Some(Box::new(request.clone())),
                });
            }
        }
    }
    Ok(message)
}

enum Start {
    Request(Method, String),
    Response(u16, String),
}

/// RFC 3261 §25.1 `token` characters (methods, header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The start line: `Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP Status-Code SP Reason-Phrase`.
fn start_line(line: &str) -> Result<Start, &'static str> {
    let mut parts = line.splitn(3, ' ');
    let (first, second, rest) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
    if first.eq_ignore_ascii_case("SIP/2.0") {
        let code = second.filter(|c| c.len() == 3).and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code.filter(|c| (100..700).contains(c)) else {
            return Err("bad status code");
        };
        let reason = rest.unwrap_or_default();
        if reason.chars().any(char::is_control) {
            return Err("bad reason phrase");
        }
        return Ok(Start::Response(code, format!("{code} {reason}")));
    }
    if first.is_empty() || !first.bytes().all(is_token) {
        return Err("bad method");
    }
    let uri = second.unwrap_or_default();
    if uri.is_empty() || !uri.contains(':') || uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("bad Request-URI");
    }
    if !rest.is_some_and(|v| v.eq_ignore_ascii_case("SIP/2.0")) {
        return Err("not SIP/2.0");
    }
    Ok(Start::Request(Method::from_name(first), uri.to_string()))
}

/// Adds a header as the rest of the stack reads it: `Via` split at its commas.
fn push_header(headers: &mut Headers, name: &str, value: &str) {
    if name == "Via" {
        for via in split_commas(value) {
            headers.push(name, via);
        }
    } else {
        headers.push(name, value);
    }
}

/// Wire text safe in an error message (and so in a log line or a reason phrase).
fn sanitized(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(40).collect()
}

/// Reads a broken request line by line: the start line and the headers a response needs.
fn salvage(bytes: &[u8]) -> Option<Request> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_MESSAGE)]);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let start = lines.next()?;
    let mut parts = start.split(' ');
    let (method, uri, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.eq_ignore_ascii_case("SIP/2.0") || method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return None;
    }
    let mut headers = Headers::default();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = canonical(name.trim());
        if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
            if name == "Via" {
                for via in split_commas(value) {
                    headers.push(name, via);
                }
            } else {
                headers.push(name, value.trim());
            }
        }
    }
    Some(Request { method: Method::from_name(method), uri: uri.to_string(), headers, body: Vec::new() })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Canonical header names, compact forms expanded (RFC 3261 §7.3.3).
fn canonical(name: &str) -> &str {
    const NAMES: [(&str, &str); 14] = [
        ("v", "Via"),
        ("f", "From"),
        ("t", "To"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("cseq", "CSeq"),
        ("call-id", "Call-ID"),
        ("www-authenticate", "WWW-Authenticate"),
        ("record-route", "Record-Route"),
        ("max-forwards", "Max-Forwards"),
    ];
    for (alias, full) in NAMES {
        if name.eq_ignore_ascii_case(alias) || name.eq_ignore_ascii_case(full) {
            return full;
        }
    }
    for full in ["Via", "From", "To", "Contact", "Content-Length", "Content-Type", "Authorization", "Route"] {
        if name.eq_ignore_ascii_case(full) {
            return full;
        }
    }
    name
}

/// Splits a header value at commas outside quotes and angle brackets.
pub fn split_commas(value: &str) -> Vec<String> {
    let (mut out, mut current, mut quoted, mut angle) = (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The value of `;name=value` in a header value (`tag`, `branch`, `rport`, ...); `Some("")` when the
/// parameter has no value.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    // Parameters come after the URI's closing `>` when there is one.
    let params = value.rfind('>').map_or(value, |i| &value[i..]);
    params.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl Request {
    /// Call-ID.
    pub fn call_id(&self) -> &str {
        self.headers.get("Call-ID").unwrap_or_default()
    }

    /// `(sequence number, method)` of CSeq.
    pub fn cseq(&self) -> (u32, String) {
        let value = self.headers.get("CSeq").unwrap_or_default();
        let mut parts = value.split_whitespace();
        let number = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (number, parts.next().unwrap_or_default().to_ascii_uppercase())
    }

    /// The top Via's branch.
    pub fn branch(&self) -> &str {
        self.headers.get("Via").and_then(|v| param(v, "branch")).unwrap_or_default()
    }

    /// From tag.
    pub fn from_tag(&self) -> &str {
        self.headers.get("From").and_then(|v| param(v, "tag")).unwrap_or_default()
    }

    /// To tag (empty outside a dialog).
    pub fn to_tag(&self) -> &str {
        self.headers.get("To").and_then(|v| param(v, "tag")).unwrap_or_default()
    }

    /// The user part of a `sip:`/`tel:` URI (the dialed number for the Request-URI or To).
    pub fn uri_user(uri: &str) -> Option<&str> {
        let uri = uri.trim();
        let uri = uri.find('<').map_or(uri, |i| &uri[i + 1..]);
        let rest =
            uri.strip_prefix("sips:").or_else(|| uri.strip_prefix("sip:")).or_else(|| uri.strip_prefix("tel:"))?;
        let user = match rest.find('@') {
            Some(at) => &rest[..at],
            None if uri.starts_with("tel:") => rest.split([';', '>']).next().unwrap_or_default(),
            None => return None,
        };
        let user = user.split(';').next().unwrap_or_default();
        (!user.is_empty()).then_some(user)
    }

    /// A response to this request (RFC 3261 §8.2.6.2): Via, From, To (with `to_tag` added when it has
    /// none), Call-ID and CSeq copied.
    pub fn response(&self, status: u16, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for via in self.headers.all("Via") {
            headers.push("Via", via);
        }
        if let Some(from) = self.headers.get("From") {
            headers.push("From", from);
        }
        if let Some(to) = self.headers.get("To") {
            let to = match to_tag {
                Some(tag) if param(to, "tag").is_none() && status != 100 => format!("{to};tag={tag}"),
                _ => to.to_string(),
            };
            headers.push("To", to);
        }
        headers.push("Call-ID", self.call_id());
        if let Some(cseq) = self.headers.get("CSeq") {
            headers.push("CSeq", cseq);
        }
        Response { status, reason: reason_phrase(status).to_string(), headers, body: Vec::new() }
    }
}

impl Response {
    /// The CSeq method this response answers.
    pub fn cseq_method(&self) -> String {
        self.headers.get("CSeq").and_then(|v| v.split_whitespace().nth(1)).unwrap_or_default().to_ascii_uppercase()
    }

    /// The top Via's branch.
    pub fn branch(&self) -> &str {
        self.headers.get("Via").and_then(|v| param(v, "branch")).unwrap_or_default()
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers.set("Content-Type", content_type);
        self.body = body;
        self
    }

    /// Wire bytes (Content-Length computed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_headers(&mut head, &self.headers, self.body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

impl Request {
    /// Wire bytes (Content-Length computed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} SIP/2.0\r\n", self.method.as_str(), self.uri);
        write_headers(&mut head, &self.headers, self.body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn write_headers(out: &mut String, headers: &Headers, body_len: usize) {
    for (name, value) in headers.iter() {
        if !name.eq_ignore_ascii_case("Content-Length") {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    let _ = write!(out, "Content-Length: {body_len}\r\n\r\n");
}

/// Standard reason phrases.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+15550100000@127.0.0.1:5060 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-0\r\n\
f: \"Caller\" <sip:+15551234567@127.0.0.1>;tag=abc\r\n\
t: <sip:+15550100000@127.0.0.1>\r\n\
i: call-1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5070>\r\n\
Content-Type: application/sdp\r\n\
l: 4\r\n\r\nv=0\r\ntrailing";

    #[test]
    fn parses_compact_headers_and_cuts_the_body() {
        let Ok(Message::Request(r)) = parse(INVITE.as_bytes()) else { panic!("request") };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.call_id(), "call-1@127.0.0.1");
        assert_eq!(r.cseq(), (1, "INVITE".into()));
        assert_eq!(r.branch(), "z9hG4bK-1");
        assert_eq!(r.from_tag(), "abc");
        assert_eq!(r.to_tag(), "");
        assert_eq!(r.headers.all("Via").count(), 2);
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(Request::uri_user(&r.uri), Some("+15550100000"));
        assert_eq!(Request::uri_user("<tel:+15550100000;phone-context=x>"), Some("+15550100000"));
        let response = r.response(200, Some("srv1")).to_bytes();
        let text = String::from_utf8(response).expect("utf8");
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.contains("To: <sip:+15550100000@127.0.0.1>;tag=srv1\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-0\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn unknown_methods_and_broken_messages_are_salvaged() {
        let foo = INVITE.replacen("INVITE sip", "FOO sip", 1);
        match parse(foo.as_bytes()) {
            Ok(Message::Request(r)) => assert_eq!(r.method, Method::Other("FOO".into())),
            Err(e) => assert_eq!(e.salvaged.map(|r| r.method), Some(Method::Other("FOO".into()))),
            other => panic!("{other:?}"),
        }
        let short = INVITE.replace("l: 4", "l: 400");
        let err = parse(short.as_bytes()).expect_err("body shorter than Content-Length");
        assert!(err.salvaged.is_some_and(|r| r.call_id() == "call-1@127.0.0.1"));
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"\x00\xff\r\n\r\n").is_err());
        let no_call_id = INVITE.replace("i: call-1@127.0.0.1\r\n", "");
        assert!(parse(no_call_id.as_bytes()).is_err());
    }

    #[test]
    fn params_and_commas() {
        assert_eq!(param("<sip:a@b;lr>;tag=x;foo", "tag"), Some("x"));
        assert_eq!(param("<sip:a@b;tag=no>", "tag"), None);
        assert_eq!(param("SIP/2.0/UDP h;rport;branch=z", "rport"), Some(""));
        assert_eq!(split_commas("\"a, b\" <sip:x>, <sip:y,z>"), vec!["\"a, b\" <sip:x>", "<sip:y,z>"]);
    }

    #[test]
    fn folded_headers_and_strict_start_lines() {
        let folded = INVITE.replace("CSeq: 1 INVITE\r\n", "CSeq: 1\r\n  INVITE\r\n");
        let Ok(Message::Request(r)) = parse(folded.as_bytes()) else { panic!("request") };
        assert_eq!(r.cseq(), (1, "INVITE".into()));
        for start in [
            "INVITE sip:x SIP/3.0",
            "INVITE  SIP/2.0",
            "INV@TE sip:x SIP/2.0",
            "SIP/2.0 99 Odd",
            "INVITE nouri SIP/2.0",
        ] {
            let broken = INVITE.replacen("INVITE sip:+15550100000@127.0.0.1:5060 SIP/2.0", start, 1);
            assert!(parse(broken.as_bytes()).is_err(), "{start}");
        }
        let bad_name = INVITE.replace("Contact:", "Con tact:");
        let error = parse(bad_name.as_bytes()).expect_err("bad header name");
        assert!(error.salvaged.is_some(), "still answerable");
        let Ok(Message::Response(ok)) = parse(b"SIP/2.0 200 OK\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n") else {
            panic!("response")
        };
        assert_eq!((ok.status, ok.reason.as_str(), ok.cseq_method().as_str()), (200, "OK", "BYE"));
    }
}
