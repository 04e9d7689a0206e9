//! The HTTP client for the fieldsync server: JSON for management, CBOR for sync, and one error
//! type that tells "the server could not be reached" apart from "the server said no".

use std::time::Duration;

use fieldsync_protocol::cbor::Limits;
use fieldsync_protocol::media::{MediaChunk, MediaOffer, MediaStatus};
use fieldsync_protocol::wire::{
    CONTENT_TYPE, DocFault, ErrorBody, ErrorCode, Message, ProtocolRange, PullRequest,
    PullResponse, PushRequest, PushResponse,
};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Largest response body the client accepts from a server on a sync route.
const MAX_SYNC_RESPONSE: usize = 256 * 1024 * 1024;

/// Failures talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the server at {server} ({reason}); your data is kept on this device, sync again when the connection is back"
    )]
    Offline { server: String, reason: String },
    #[error(
        "the server refused this client's token: it was revoked or has expired; run `fieldsync login` (members) or `fieldsync enroll` (devices) again (server said: {message})"
    )]
    Unauthenticated { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}{}", details_suffix(.details))]
    Rejected {
        status: u16,
        code: ErrorCode,
        message: String,
        doc_id: Option<Uuid>,
        details: Vec<String>,
        /// Every document at fault (servers before protocol 2 name only `doc_id`).
        docs: Vec<DocFault>,
        /// The versions the server speaks, when it refused ours.
        protocols: Option<ProtocolRange>,
    },
    #[error(
        "the server at {server} did not prove who it is ({reason}); nothing was sent. If it uses a private certificate authority, pass --ca-cert FILE (or set FIELDSYNC_CA_CERT, or ca_cert in config.toml); otherwise you may not be talking to your server"
    )]
    Untrusted { server: String, reason: String },
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
}

fn details_suffix(details: &[String]) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(":\n  - {}", details.join("\n  - "))
    }
}

/// Certificate authorities trusted besides the system's (`--ca-cert`), for every client of
/// this process.
static EXTRA_ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();
/// Whether the plain-HTTP warning was given (once per process).
static WARNED_PLAIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Trust the certificate authorities in `pem` (a PEM file of one or more certificates) for
/// the servers this process talks to, besides the system's. Call it once, before any client
/// is made.
pub fn trust_ca_file(pem: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(pem).map_err(|e| format!("cannot read {}: {e}", pem.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&bytes)
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", pem.display()))?;
    if roots.is_empty() {
        return Err(format!(
            "{} holds no certificate; give the PEM file of your certificate authority",
            pem.display()
        ));
    }
    EXTRA_ROOTS
        .set(roots)
        .map_err(|_| "the certificate authorities were already set".to_owned())
}

/// Whether `base` is plain HTTP to something other than this machine: a token sent there
/// crosses the network unencrypted.
pub fn is_plain_remote(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.is_loopback(),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost")
        }
    }
}

/// A connection to one server, optionally with a bearer token (left out of `Debug`).
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: Client,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8470`).
    pub fn new(base: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Protocol(format!(
                "server address {base:?} must start with http:// or https://"
            )));
        }
        if is_plain_remote(&base) && !WARNED_PLAIN.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            eprintln!(
                "warning: {base} is plain HTTP: tokens and answers cross the network unencrypted, readable and changeable on the way; use the server's https:// address"
            );
        }
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("fieldsync/", env!("CARGO_PKG_VERSION")));
        for root in EXTRA_ROOTS.get().into_iter().flatten() {
            builder = builder.add_root_certificate(root.clone());
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(ApiClient { base, token, http })
    }

    /// The server address.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub(crate) fn send(&self, rb: RequestBuilder) -> Result<Response, ClientError> {
        let resp = rb.send().map_err(|e| self.offline(e))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_from(resp))
        }
    }

    fn offline(&self, e: reqwest::Error) -> ClientError {
        let mut chain = Vec::new();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            chain.push(inner.to_string());
            src = inner.source();
        }
        // A certificate that does not verify is not a network outage: say what failed.
        if let Some(why) = chain.iter().find(|m| m.contains("certificate")) {
            return ClientError::Untrusted {
                server: self.base.clone(),
                reason: why.clone(),
            };
        }
        let reason = if e.is_timeout() {
            "the connection timed out".to_owned()
        } else if e.is_connect() {
            "connection refused or no route".to_owned()
        } else {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        };
        ClientError::Offline {
            server: self.base.clone(),
            reason,
        }
    }

    /// `GET` a JSON resource.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.send(self.request(reqwest::Method::GET, path))?;
        resp.json()
            .map_err(|e| ClientError::Protocol(format!("GET {path}: {e}")))
    }

    /// Send a JSON body and read a JSON answer.
    pub fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let resp = self.send(self.request(method, path).json(body))?;
        resp.json()
            .map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    /// Send a JSON body and expect no content back.
    pub fn send_json_no_content<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<(), ClientError> {
        self.send(self.request(method, path).json(body))?;
        Ok(())
    }

    /// `POST` raw text (a survey definition) and read a JSON answer.
    pub fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        text: String,
    ) -> Result<T, ClientError> {
        let rb = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(text);
        let resp = self.send(rb)?;
        resp.json()
            .map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    /// `GET` a streamed body (an export).
    pub fn get_stream(&self, path: &str) -> Result<Response, ClientError> {
        let rb = self
            .request(reqwest::Method::GET, path)
            // An export streams for as long as it takes.
            .timeout(Duration::from_secs(24 * 3600));
        self.send(rb)
    }

    /// Send a sync message; when the server does not speak its protocol version but names a
    /// range this build shares, send it once more in the newest shared version.
    fn cbor<Req: Message + Clone, Resp: Message>(
        &self,
        path: &str,
        msg: &Req,
    ) -> Result<Resp, ClientError> {
        match self.cbor_once(path, msg) {
            Err(ClientError::Rejected {
                code: ErrorCode::UnsupportedProtocol,
                protocols: Some(theirs),
                ..
            }) if ProtocolRange::OURS
                .common(theirs)
                .is_some_and(|v| v != msg.protocol()) =>
            {
                let mut older = msg.clone();
                if let Some(v) = ProtocolRange::OURS.common(theirs) {
                    older.set_protocol(v);
                }
                self.cbor_once(path, &older)
            }
            other => other,
        }
    }

    fn cbor_once<Req: Message, Resp: Message>(
        &self,
        path: &str,
        msg: &Req,
    ) -> Result<Resp, ClientError> {
        let body = msg
            .to_cbor()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let rb = self
            .request(reqwest::Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body);
        let resp = self.send(rb)?;
        let bytes = resp.bytes().map_err(|e| self.offline(e))?;
        let limits = Limits {
            max_bytes: MAX_SYNC_RESPONSE,
            ..Limits::SYNC
        };
        Resp::from_cbor(&bytes, &limits).map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    /// Push a batch of changes.
    pub fn push(&self, req: &PushRequest) -> Result<PushResponse, ClientError> {
        self.cbor("/v1/sync/push", req)
    }

    /// Pull a page of changes.
    pub fn pull(&self, req: &PullRequest) -> Result<PullResponse, ClientError> {
        self.cbor("/v1/sync/pull", req)
    }

    /// Offer an attachment: what the server already holds of it.
    pub fn offer_media(&self, req: &MediaOffer) -> Result<MediaStatus, ClientError> {
        self.cbor("/v1/sync/media/offer", req)
    }

    /// Send one chunk of an offered attachment.
    pub fn send_chunk(&self, req: &MediaChunk) -> Result<MediaStatus, ClientError> {
        self.cbor("/v1/sync/media/chunk", req)
    }
}

/// Turn an error response (CBOR or JSON error body) into a [`ClientError`].
fn error_from(resp: Response) -> ClientError {
    let status = resp.status();
    let is_cbor = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(CONTENT_TYPE));
    let bytes = resp.bytes().unwrap_or_default();
    let body: Option<ErrorBody> = if is_cbor {
        ErrorBody::from_cbor(&bytes, &Limits::SYNC).ok()
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    let Some(body) = body else {
        return ClientError::Protocol(format!(
            "HTTP {status} without an error body: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ));
    };
    let mut body = body;
    // What an operator needs to find the request in the server's log, where a person may
    // report it: a server error, or a token refused.
    if let Some(id) = &body.request_id
        && (status.is_server_error() || status == StatusCode::UNAUTHORIZED)
    {
        body.message = format!("{} [request {id}]", body.message.trim_end_matches('.'));
    }
    match status {
        StatusCode::UNAUTHORIZED => ClientError::Unauthenticated {
            message: body.message,
        },
        StatusCode::FORBIDDEN => ClientError::Forbidden {
            message: body.message,
        },
        StatusCode::NOT_FOUND => ClientError::NotFound {
            message: body.message,
        },
        _ => ClientError::Rejected {
            status: status.as_u16(),
            code: body.code,
            message: body.message,
            doc_id: body.doc_id,
            details: body.details,
            docs: body.docs,
            protocols: body.protocols,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::is_plain_remote;

    #[test]
    fn plain_http_is_flagged_unless_it_stays_on_this_machine() {
        for remote in [
            "http://fieldsync.example.org",
            "http://10.0.0.5:8470",
            "http://[2001:db8::1]:8470",
        ] {
            assert!(is_plain_remote(remote), "{remote}");
        }
        for local in [
            "https://fieldsync.example.org",
            "http://127.0.0.1:8470",
            "http://127.8.0.1",
            "http://[::1]:8470",
            "http://localhost:8470",
            "http://api.localhost",
        ] {
            assert!(!is_plain_remote(local), "{local}");
        }
    }
}
