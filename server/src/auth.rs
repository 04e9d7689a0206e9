//! Who is calling: the bearer-token extractor, role checks, the support-access switch, and the
//! limiter on login and enrollment attempts.
//!
//! Tokens are opaque random strings; the database holds only their SHA-256, so a copied
//! database lets nobody in. Support staff belong to no organisation: they name the one they
//! act on in the `X-Fieldsync-Org` header, are refused while that organisation's support switch
//! is off, and every request they make is written to that organisation's audit log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use fieldsync_protocol::api::Role;

use crate::error::ApiError;
use crate::{AppState, service};

/// The header a support agent uses to name the organisation it acts on.
pub const ORG_HEADER: &str = "x-fieldsync-org";

/// An authenticated caller, scoped to one organisation.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal_id: String,
    /// Identifies the credential in use (not secret: a prefix of its hash), so that a pull
    /// skips exactly the changes this same client pushed.
    pub session: String,
    pub name: String,
    pub role: Role,
    pub org_id: String,
}

impl Caller {
    /// Refuse unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} cannot {what}; ask an organisation admin",
                self.role
            )))
        }
    }

    /// Whether the caller sees the whole organisation (everyone but enumerator devices).
    pub fn sees_whole_org(&self) -> bool {
        self.role != Role::Enumerator
    }
}

/// Roles that manage an organisation's surveys and members.
pub const MANAGERS: &[Role] = &[Role::Admin, Role::Coordinator];
/// Roles that read an organisation's data.
pub const READERS: &[Role] = &[Role::Admin, Role::Coordinator, Role::Ops, Role::Support];

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The router's admission layer authenticated the request already.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(parts)?;
        let org_header = parts
            .headers
            .get(ORG_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let action = format!("{} {}", parts.method, parts.uri.path());
        service::sessions::authenticate(
            &state.db,
            &token,
            org_header,
            &state.settings.region,
            action,
        )
        .await
    }
}

fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "no credentials; send `Authorization: Bearer <token>` (run `fieldsync login` or `fieldsync enroll`)"
                    .into(),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the Authorization header is not text".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| {
            ApiError::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
        })?
        .trim();
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::Unauthenticated(
            "the bearer token is empty or too long".into(),
        ));
    }
    Ok(token.to_owned())
}

/// The client address of a request, when the server recorded it.
pub fn client_ip(parts_ext: &axum::http::Extensions) -> Option<IpAddr> {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Limits failed login and enrollment attempts per client address: after `max_failures`
/// failures within `window`, further attempts from that address are refused until the window
/// has passed. One limiter is shared by the whole server (it lives in [`AppState`]).
#[derive(Debug)]
pub struct AttemptLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl AttemptLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        AttemptLimiter {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuse if this address has failed too often recently.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((since, count)) = map.get(&ip).copied() {
            let elapsed = since.elapsed();
            if elapsed >= self.window {
                map.remove(&ip);
            } else if count >= self.max_failures {
                let wait = (self.window - elapsed).as_secs().max(1);
                return Err(ApiError::RateLimited(format!(
                    "too many failed attempts from this address; wait {wait} seconds and try again"
                )));
            }
        }
        Ok(())
    }

    /// Count one failed attempt.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget stale entries now and then so the map cannot grow without bound.
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, (since, _)| since.elapsed() < window);
        }
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_refuses_after_failures_and_recovers() {
        let limiter = AttemptLimiter::new(3, Duration::from_millis(200));
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        let other = Some(IpAddr::from([127, 0, 0, 2]));
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
            limiter.failed(ip);
        }
        assert!(matches!(limiter.check(ip), Err(ApiError::RateLimited(_))));
        // Another address is not affected.
        assert!(limiter.check(other).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.check(ip).is_ok());
    }
}
