//! The remote listener's shell: TLS (rustls) from the configured certificate
//! and key, the client's address, and a per-client rate limit whose core
//! ([`RateLimiter`]) is pure (time passed in). Which routes it serves is
//! [`super::remote_router`]; what a request must prove is each dialect's own
//! credentials.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_rustls::rustls;

/// The peer of a connection, as the server loop saw it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// Clients remembered at most; above it, the ones with a full bucket (idle
/// long enough to have nothing to remember) are forgotten.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

const MICRO: u128 = 1_000_000;

/// A token bucket per client: `burst` requests at once, refilled at
/// `per_minute`. Pure: the caller passes the time in milliseconds.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    burst: u32,
    buckets: Mutex<HashMap<IpAddr, (u128, u64)>>,
    epoch: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1),
            burst: burst.max(1),
            buckets: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Take one request from `client`'s bucket at `now_ms`; when it is empty,
    /// the seconds until one is available.
    pub fn take(&self, client: IpAddr, now_ms: u64) -> Result<(), u64> {
        let capacity = u128::from(self.burst) * MICRO;
        let per_ms = u128::from(self.per_minute) * MICRO / 60_000;
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            buckets.retain(|_, (tokens, at)| {
                *tokens + u128::from(now_ms.saturating_sub(*at)) * per_ms < capacity
            });
        }
        let (tokens, at) = buckets.entry(client).or_insert((capacity, now_ms));
        *tokens = (*tokens + u128::from(now_ms.saturating_sub(*at)) * per_ms).min(capacity);
        *at = now_ms;
        if *tokens >= MICRO {
            *tokens -= MICRO;
            Ok(())
        } else {
            let missing_ms = (MICRO - *tokens).div_ceil(per_ms.max(1));
            Err(u64::try_from(missing_ms.div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1))
        }
    }
}

/// Who the client is: the peer's address, or — when the peer is a reverse
/// proxy on loopback — the last address it appended to `X-Forwarded-For`.
pub fn client_ip(peer: Option<SocketAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
    let peer = peer?.ip();
    if peer.is_loopback()
        && let Some(last) = forwarded_for.and_then(|f| f.rsplit(',').next())
        && let Ok(ip) = last.trim().parse::<IpAddr>()
    {
        return Some(ip);
    }
    Some(peer)
}

/// Middleware: 429 with `Retry-After` once a client has used its bucket.
pub async fn rate_limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let Some(ip) = client_ip(peer, forwarded) else {
        return next.run(request).await;
    };
    let now_ms = limiter.epoch.elapsed().as_millis() as u64;
    match limiter.take(ip, now_ms) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            tracing::warn!(client = %ip, "remote: rate limit reached");
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from {ip}; retry in {retry_after} s ([remote] rate_per_minute)"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("remote.tls_cert {path}: {message}")]
    Cert { path: String, message: String },
    #[error("remote.tls_key {path}: {message}")]
    Key { path: String, message: String },
    #[error("remote TLS: {0}")]
    Config(String),
}

/// A TLS acceptor from PEM files (certificate chain and private key).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            message: "holds no PEM certificate".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_the_steady_rate() {
        let l = RateLimiter::new(60, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.take(a, 0), Ok(()));
        }
        assert_eq!(l.take(a, 0), Err(1), "one a second");
        assert_eq!(l.take(b, 0), Ok(()), "another client has its own bucket");
        assert_eq!(l.take(a, 999), Err(1));
        assert_eq!(l.take(a, 1000), Ok(()));
        assert_eq!(l.take(a, 1000), Err(1));
        // Idle long enough: the bucket is full again, never more.
        for _ in 0..3 {
            assert_eq!(l.take(a, 3_600_000), Ok(()));
        }
        assert!(l.take(a, 3_600_000).is_err());
    }

    #[test]
    fn behind_a_local_proxy_the_forwarded_client_counts() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let far: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        assert_eq!(
            client_ip(Some(local), Some("203.0.113.9, 198.51.100.1")),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(client_ip(Some(local), None), Some(local.ip()));
        // A far peer cannot choose its own identity.
        assert_eq!(client_ip(Some(far), Some("203.0.113.9")), Some(far.ip()));
    }
}
