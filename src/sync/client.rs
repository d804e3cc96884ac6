//! The HTTP client of the fiscal processing: connector login, token refresh,
//! receipt registration and document reads, each bounded by time limits.
//!
//! Tokens are kept in memory and in the journal (so a restart does not log in
//! again), refreshed a minute before they expire, and replaced by a fresh login
//! when the refresh is refused. No token ever reaches a log line or an error
//! message: errors carry statuses and the processing's own words only.

use super::policy::{Failure, parse_retry_after};
use super::wire::{self, DocumentReply, ErrorBody, ReceiptBody, TokenReply};
use crate::clock::Clock;
use crate::config::{CloudSettings, Secret};
use crate::journal::Journal;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

pub const ACCESS_TOKEN: &str = "cloud.access_token";
const REFRESH_TOKEN: &str = "cloud.refresh_token";
/// Refresh this long before the access token expires (or a fifth of its
/// lifetime, for short-lived tokens).
const REFRESH_MARGIN: ChronoDuration = ChronoDuration::seconds(60);

fn refresh_margin(lifetime: ChronoDuration) -> ChronoDuration {
    REFRESH_MARGIN.min(lifetime / 5)
}

struct Tokens {
    access: Secret,
    refresh: Option<Secret>,
    /// When to refresh: a margin before the token expires.
    refresh_at: DateTime<Utc>,
}

/// Counters for status pages.
#[derive(Debug, Default)]
pub struct ClientCounters {
    pub logins: AtomicU64,
    pub refreshes: AtomicU64,
    pub requests: AtomicU64,
}

pub struct CloudClient {
    http: reqwest::Client,
    base: String,
    connector: Secret,
    journal: Journal,
    clock: Arc<dyn Clock>,
    tokens: Mutex<Option<Tokens>>,
    pub counters: ClientCounters,
}

impl CloudClient {
    pub fn new(
        settings: &CloudSettings,
        journal: Journal,
        clock: Arc<dyn Clock>,
    ) -> Result<CloudClient, String> {
        let connector = settings
            .token
            .clone()
            .ok_or_else(|| "no connector token configured (cloud.token_file)".to_string())?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("fiscald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(CloudClient {
            http,
            base: settings.base_url.trim_end_matches('/').to_string(),
            connector,
            journal,
            clock,
            tokens: Mutex::new(None),
            counters: ClientCounters::default(),
        })
    }

    /// Pick up the tokens a previous run stored.
    pub async fn restore_tokens(&self) {
        let access = self.journal.secret(ACCESS_TOKEN).await.ok().flatten();
        let refresh = self.journal.secret(REFRESH_TOKEN).await.ok().flatten();
        if let Some((access, Some(expires_ms))) = access
            && let Some(expires_at) = DateTime::from_timestamp_millis(expires_ms)
        {
            *self.tokens.lock().await = Some(Tokens {
                access: Secret::new(access),
                refresh: refresh.map(|(r, _)| Secret::new(r)),
                refresh_at: expires_at - REFRESH_MARGIN,
            });
            tracing::info!("cloud: restored the stored access token");
        }
    }

    /// Register a receipt; returns the processing's document id.
    pub async fn register(
        &self,
        idempotency_key: &str,
        body: &ReceiptBody,
    ) -> Result<u64, Failure> {
        let reply = self
            .authorized(|token| {
                self.http
                    .post(format!("{}{}", self.base, wire::REGISTER_PATH))
                    .bearer_auth(token)
                    .header("Idempotency-Key", idempotency_key)
                    .json(body)
            })
            .await?;
        let text = reply.trim();
        // The reply is the bare document id; tolerate `{"id": …}` too.
        text.parse::<u64>()
            .ok()
            .or_else(|| {
                serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| {
                        v.get("id")
                            .and_then(|id| id.as_u64().or_else(|| id.as_str()?.parse().ok()))
                    })
            })
            .ok_or_else(|| {
                Failure::Protocol(format!(
                    "registration reply is not a document id: {:.100}",
                    text
                ))
            })
    }

    /// Read a document with its status and fiscal attributes.
    pub async fn document(&self, id: u64) -> Result<DocumentReply, Failure> {
        let reply = self
            .authorized(|token| {
                self.http
                    .get(format!(
                        "{}{}",
                        self.base,
                        wire::document_path(&id.to_string())
                    ))
                    .bearer_auth(token)
            })
            .await?;
        serde_json::from_str(&reply).map_err(|e| Failure::Protocol(format!("document {id}: {e}")))
    }

    /// A cheap reachability check: any HTTP reply at all means the link is up.
    pub async fn probe(&self) -> Result<(), Failure> {
        self.http
            .get(format!("{}/", self.base))
            .send()
            .await
            .map(|_| ())
            .map_err(transport_failure)
    }

    /// Send a request with a valid token; on 401 get a fresh token and send
    /// it once more. Returns the body of a 2xx reply.
    async fn authorized(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<String, Failure> {
        let mut reauthenticated = false;
        loop {
            let token = self.access_token().await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let response = build(token.expose())
                .send()
                .await
                .map_err(transport_failure)?;
            match read(response, self.clock.now()).await {
                Err(Failure::Status { code: 401, .. }) if !reauthenticated => {
                    tracing::info!("cloud: access token refused; getting a new one");
                    self.forget(&token).await;
                    reauthenticated = true;
                }
                other => return other,
            }
        }
    }

    async fn access_token(&self) -> Result<Secret, Failure> {
        let mut tokens = self.tokens.lock().await;
        let now = self.clock.now();
        if let Some(t) = tokens.as_ref()
            && t.refresh_at > now
        {
            return Ok(t.access.clone());
        }
        let refreshed = match tokens.as_ref().and_then(|t| t.refresh.clone()) {
            Some(refresh) => match self
                .exchange(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.expose()),
                ])
                .await
            {
                Ok(reply) => {
                    self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
                    Some(reply)
                }
                Err(Failure::Status {
                    code: 400 | 401, ..
                }) => {
                    tracing::info!("cloud: refresh token refused; logging in again");
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let reply = match refreshed {
            Some(reply) => reply,
            None => {
                let reply = self
                    .exchange(&[("grant_type", "token"), ("token", self.connector.expose())])
                    .await?;
                self.counters.logins.fetch_add(1, Ordering::Relaxed);
                tracing::info!("cloud: logged in to the processing");
                reply
            }
        };
        let lifetime = ChronoDuration::seconds(reply.expires_in.min(86_400 * 365) as i64);
        let expires_at = now + lifetime;
        let fresh = Tokens {
            access: Secret::new(reply.access_token),
            refresh: Some(Secret::new(reply.refresh_token)),
            refresh_at: expires_at - refresh_margin(lifetime),
        };
        // Kept across restarts; a failure to store them only costs a login.
        let _ = self
            .journal
            .save_secret(
                ACCESS_TOKEN,
                Some(fresh.access.expose().to_string()),
                Some(expires_at.timestamp_millis()),
            )
            .await;
        let _ = self
            .journal
            .save_secret(
                REFRESH_TOKEN,
                fresh.refresh.as_ref().map(|r| r.expose().to_string()),
                None,
            )
            .await;
        let access = fresh.access.clone();
        *tokens = Some(fresh);
        Ok(access)
    }

    /// Drop an access token the processing refused (unless another task has
    /// replaced it meanwhile).
    async fn forget(&self, refused: &Secret) {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.as_mut()
            && &t.access == refused
        {
            t.refresh_at = DateTime::<Utc>::MIN_UTC;
        }
    }

    async fn exchange(&self, grant: &[(&str, &str)]) -> Result<TokenReply, Failure> {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", wire::CLIENT_ID),
            ("client_secret", wire::CLIENT_ID),
        ];
        form.extend_from_slice(grant);
        let response = self
            .http
            .post(format!("{}{}", self.base, wire::TOKEN_PATH))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form_urlencode(&form))
            .send()
            .await
            .map_err(transport_failure)?;
        let body = read(response, self.clock.now()).await?;
        serde_json::from_str(&body).map_err(|e| Failure::Protocol(format!("token reply: {e}")))
    }
}

/// The body of a 2xx reply, or the failure the reply means.
async fn read(response: reqwest::Response, now: DateTime<Utc>) -> Result<String, Failure> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let body = response.text().await.map_err(transport_failure)?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure::Status {
            code: status.as_u16(),
            retry_after,
            message: ErrorBody::describe(&body),
        })
    }
}

pub(crate) fn transport_failure(e: reqwest::Error) -> Failure {
    // reqwest's message names the URL, never headers or bodies: no token leaks.
    let (timeout, connect) = (e.is_timeout(), e.is_connect());
    let chain = std::error::Error::source(&e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let message = e.without_url().to_string();
    let text = if chain.is_empty() {
        message
    } else {
        format!("{message}: {chain}")
    };
    if timeout {
        Failure::Timeout(text)
    } else if connect {
        Failure::Connect(text)
    } else {
        Failure::Transport(text)
    }
}

fn form_urlencode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding_escapes_reserved_bytes() {
        assert_eq!(
            super::form_urlencode(&[("token", "a b&c=d/é"), ("grant_type", "token")]),
            "token=a+b%26c%3Dd%2F%C3%A9&grant_type=token"
        );
    }
}
