//! The HTTP calls to the permissive-mode services: the online check first,
//! then the local module, each within the configured budget (connect and
//! whole request). A service that does not answer in time, refuses the
//! connection, answers an HTTP error or something unreadable has given *no
//! answer*; the next one is asked. Never logs a token or password.

use super::wire::{self, CheckReply, LocalError, LocalRequest, OnlineRequest};
use super::{Outcome, Service, judge, needs_check, unchecked};
use crate::config::{MarkingService, MarkingSettings, OnUnreachable};
use crate::domain::{Receipt, Violation};

/// Why a receipt with marked items may not be journaled.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A service refused one or more codes.
    #[error("a marking code may not be sold")]
    Refused(Vec<Violation>),
    /// No service answered and the config says to refuse.
    #[error(
        "no permissive-mode service answered ({0}); the sale is refused by marking.on_unreachable = \"refuse\""
    )]
    Unavailable(String),
}

pub struct MarkingClient {
    http: reqwest::Client,
    settings: MarkingSettings,
}

impl MarkingClient {
    pub fn new(settings: MarkingSettings) -> MarkingClient {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()
            .expect("an HTTP client with rustls builds");
        MarkingClient { http, settings }
    }

    /// Ask the services in order; the first that answers decides.
    pub async fn ask(&self, codes: &[String]) -> Result<(Service, CheckReply), String> {
        let mut why = Vec::new();
        if let Some(s) = &self.settings.online {
            match self.online(s, codes).await {
                Ok(r) => return Ok((Service::Online, r)),
                Err(e) => why.push(format!("online: {e}")),
            }
        }
        if let Some(s) = &self.settings.local {
            match self.local(s, codes).await {
                Ok(r) => return Ok((Service::Local, r)),
                Err(e) => why.push(format!("local module: {e}")),
            }
        }
        Err(why.join("; "))
    }

    async fn online(&self, s: &MarkingService, codes: &[String]) -> Result<CheckReply, String> {
        let resp = self
            .http
            .post(format!("{}{}", s.url, wire::ONLINE_CHECK_PATH))
            .header(wire::ONLINE_TOKEN_HEADER, s.secret.expose())
            .json(&OnlineRequest {
                codes: codes.to_vec(),
            })
            .send()
            .await
            .map_err(describe)?;
        read_reply(resp).await
    }

    async fn local(&self, s: &MarkingService, codes: &[String]) -> Result<CheckReply, String> {
        let resp = self
            .http
            .post(format!("{}{}", s.url, wire::LOCAL_CHECK_PATH))
            .basic_auth(&s.login, Some(s.secret.expose()))
            .header(wire::LOCAL_CLIENT_HEADER, &s.client_id)
            .json(&LocalRequest {
                cis_list: codes.to_vec(),
            })
            .send()
            .await
            .map_err(describe)?;
        if resp.status() == reqwest::StatusCode::BAD_REQUEST {
            let e: LocalError = resp.json().await.unwrap_or_default();
            return Err(match e.error_code {
                wire::LOCAL_NOT_READY => "not ready (not initialised, error 4045)".into(),
                wire::LOCAL_SYNC_ERROR => {
                    "out of sync for over 72 h (sync_error, error 4050)".into()
                }
                other => format!("HTTP 400, error {other}: {}", e.description),
            });
        }
        read_reply(resp).await
    }

    /// The local module's `GET /api/v1/status` (status, `lastSync`), within
    /// the configured budget; `None` when no local module is configured.
    pub async fn local_status(&self) -> Option<Result<wire::LocalStatus, String>> {
        let s = self.settings.local.as_ref()?;
        let result = async {
            let resp = self
                .http
                .get(format!("{}{}", s.url, wire::LOCAL_STATUS_PATH))
                .basic_auth(&s.login, Some(s.secret.expose()))
                .header(wire::LOCAL_CLIENT_HEADER, &s.client_id)
                .send()
                .await
                .map_err(describe)?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status().as_u16()));
            }
            resp.json::<wire::LocalStatus>()
                .await
                .map_err(|e| format!("unreadable status: {e}"))
        }
        .await;
        Some(result)
    }

    /// The whole step for a receipt: fills `marking_checks`, or says why the
    /// sale may not go ahead. Receipts without marked sales pass untouched.
    pub async fn check_receipt(&self, r: &mut Receipt) -> Result<(), CheckError> {
        if !needs_check(r) {
            return Ok(());
        }
        let codes: Vec<String> = super::codes(r).into_iter().map(|(_, _, c)| c).collect();
        match self.ask(&codes).await {
            Ok((service, reply)) => match judge(r, service, &reply) {
                Outcome::Accepted(checks) => {
                    r.marking_checks = checks;
                    Ok(())
                }
                Outcome::Refused(v) => Err(CheckError::Refused(v)),
            },
            Err(why) => match self.settings.on_unreachable {
                OnUnreachable::SellUnchecked => {
                    tracing::warn!(
                        why,
                        "marking: no service answered; sold without the check (Продажа без проверки КМ)"
                    );
                    r.marking_checks = unchecked(r);
                    Ok(())
                }
                OnUnreachable::Refuse => Err(CheckError::Unavailable(why)),
            },
        }
    }
}

async fn read_reply(resp: reqwest::Response) -> Result<CheckReply, String> {
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let reply: CheckReply = resp
        .json()
        .await
        .map_err(|e| format!("unreadable reply: {}", describe(e)))?;
    if reply.code != 0 {
        return Err(format!(
            "the request failed with code {}{}",
            reply.code,
            reply
                .description
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ));
    }
    Ok(reply)
}

/// A transport error without the URL's credentials.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within the time budget".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.without_url().to_string()
    }
}
