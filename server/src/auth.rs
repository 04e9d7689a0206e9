//! Who is calling: the bearer-token extractor, role checks, and the limiter on login and
//! enrollment attempts.
//!
//! Tokens are opaque random strings; the database holds only their SHA-256, so a copied
//! database lets nobody in. Support staff belong to no organisation: they name the one they
//! act on in the `X-Fieldsync-Org` header, are refused while that organisation's support switch
//! is off, and every request they make is written to that organisation's audit log.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use fieldsync_protocol::api::Role;

use crate::error::ApiError;
use crate::storage::{Db, now_ms};
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
        .get::<crate::http::ClientAddr>()
        .map(|a| a.0)
        .or_else(|| {
            parts_ext
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
        })
}

/// Limits failed login and enrollment attempts. Failures are counted twice: per client
/// address and credential tried, and per address alone. The first limit is small
/// (`--login-attempts`): one person retrying a wrong code is stopped quickly, and stopped
/// alone. The second is larger (`--login-attempts-per-address`): a team signing in behind one
/// NAT is not locked out by one member's typos, while a guesser on one address, who tries a
/// new credential every time, still gets no more than it per window. The counts are kept in
/// the database, so every instance on one database shares them (an attacker cannot spread
/// guesses over instances).
#[derive(Debug)]
pub struct AttemptLimiter {
    per_credential: u32,
    per_address: u32,
    window: Duration,
}

/// The two counters a sign-in attempt counts against: the address, and the address with the
/// credential tried (a prefix of its hash: the table never holds a credential, even a wrong
/// one).
fn limiter_keys(ip: Option<IpAddr>, secret: &str) -> (String, String) {
    // An IPv6 client usually holds a whole /64: counted as one address, it cannot spread its
    // guesses over the addresses in it.
    let ip = match ip {
        None => "unknown".to_owned(),
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
        Some(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(String::new, |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let tag: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (format!("addr {ip}"), format!("cred {ip} {tag}"))
}

impl AttemptLimiter {
    pub fn new(per_credential: u32, per_address: u32, window: Duration) -> Self {
        AttemptLimiter {
            per_credential,
            per_address: per_address.max(per_credential),
            window,
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Seconds left of a full window, if `key` has failed `limit` times in it.
    async fn blocked(&self, db: &Db, key: &str, limit: u32) -> Result<Option<i64>, ApiError> {
        let Some((since, count)) = db.sign_in_failures(key).await? else {
            return Ok(None);
        };
        let elapsed = now_ms() - since;
        Ok((elapsed < self.window_ms() && count >= limit)
            .then(|| ((self.window_ms() - elapsed) / 1000).max(1)))
    }

    /// Refuse if this credential, or this address, has failed too often recently.
    pub async fn check(&self, db: &Db, ip: Option<IpAddr>, secret: &str) -> Result<(), ApiError> {
        let (address, credential) = limiter_keys(ip, secret);
        let refusal = if let Some(wait) = self.blocked(db, &credential, self.per_credential).await?
        {
            format!(
                "this token or code was refused {} times in a row; wait {wait} seconds, check it character by character, or ask an admin for a new one",
                self.per_credential
            )
        } else if let Some(wait) = self.blocked(db, &address, self.per_address).await? {
            format!("too many failed attempts from this address; wait {wait} seconds and try again")
        } else {
            return Ok(());
        };
        metrics::counter!(crate::metrics::SIGN_IN_REFUSALS, "reason" => "rate_limited")
            .increment(1);
        Err(ApiError::RateLimited(refusal))
    }

    /// Count one failed attempt. A count that cannot be written is logged: the attempt was
    /// refused anyway.
    pub async fn failed(&self, db: &Db, ip: Option<IpAddr>, secret: &str) {
        metrics::counter!(crate::metrics::SIGN_IN_REFUSALS, "reason" => "bad_credential")
            .increment(1);
        for key in <[String; 2]>::from(limiter_keys(ip, secret)) {
            if let Err(e) = db.record_sign_in_failure(&key, self.window_ms()).await {
                tracing::warn!(error = %e, "a failed sign-in could not be counted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keys::KeyRing;
    use crate::storage::Database;

    #[tokio::test]
    async fn limiter_refuses_after_failures_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = Arc::new(KeyRing::load_or_create(&dir.path().join("key")).expect("key"));
        let db = crate::storage::open(
            &Database::Sqlite(dir.path().join("db.sqlite")),
            keys,
            "eu-central",
        )
        .await
        .expect("open");
        let limiter = AttemptLimiter::new(3, 5, Duration::from_millis(400));
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        let other = Some(IpAddr::from([127, 0, 0, 2]));
        // One person retrying the same wrong code is stopped after three tries...
        for _ in 0..3 {
            assert!(limiter.check(&db, ip, "WRONG-CODE").await.is_ok());
            limiter.failed(&db, ip, "WRONG-CODE").await;
        }
        assert!(matches!(
            limiter.check(&db, ip, "WRONG-CODE").await,
            Err(ApiError::RateLimited(m)) if m.contains("this token or code")
        ));
        // ...while a teammate behind the same address still signs in with their own code.
        assert!(limiter.check(&db, ip, "TEAMMATE-CODE").await.is_ok());
        // A guesser trying a new code each time is stopped by the address limit.
        limiter.failed(&db, ip, "GUESS-1").await;
        limiter.failed(&db, ip, "GUESS-2").await;
        assert!(matches!(
            limiter.check(&db, ip, "GUESS-3").await,
            Err(ApiError::RateLimited(m)) if m.contains("from this address")
        ));
        // Another address is not affected.
        assert!(limiter.check(&db, other, "WRONG-CODE").await.is_ok());
        // Two addresses of one IPv6 /64 are one client.
        let (a, b) = (
            Some("2001:db8:1:2::a".parse::<IpAddr>().expect("v6")),
            Some("2001:db8:1:2:ffff::b".parse::<IpAddr>().expect("v6")),
        );
        for _ in 0..3 {
            limiter.failed(&db, a, "V6-GUESS").await;
        }
        assert!(limiter.check(&db, b, "V6-GUESS").await.is_err());
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(limiter.check(&db, ip, "WRONG-CODE").await.is_ok());
        // A new window counts from one again.
        limiter.failed(&db, ip, "WRONG-CODE").await;
        assert!(limiter.check(&db, ip, "WRONG-CODE").await.is_ok());
    }
}
