//! `GET /v1/status`: everything a technician needs, as JSON — the same data
//! the status page (`page.rs`) renders and `fiscald status` prints. Built from
//! an allow-list: the config summary names which secrets are set, never
//! their values.

use super::{AppState, Shared};
use crate::config::Settings;
use crate::devices::runtime::{DeviceState, DeviceStatus};
use crate::journal::OpsView;
use crate::telemetry::{self, LogEntry, Minute};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// A receipt waiting longer than this to be fiscalized needs attention.
pub const BACKLOG_AGE_ATTENTION: Duration = Duration::from_secs(15 * 60);
/// The cloud offline longer than this needs attention.
pub const OFFLINE_ATTENTION: Duration = Duration::from_secs(10 * 60);

/// The configuration as the page shows it: what is set, never a secret.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigSummary {
    pub listen: String,
    pub journal: String,
    pub country: String,
    pub currency: String,
    pub timezone: String,
    pub backend: crate::config::Backend,
    pub cloud_enabled: bool,
    /// Scheme, host and path only: user info and query are cut off.
    pub cloud_url: String,
    /// Secrets: `"set"` or `"not set"`, never the value.
    pub cloud_token: &'static str,
    pub till_pin: &'static str,
    pub register: Option<DevicePort>,
    pub printer: Option<DevicePort>,
    pub drawer: crate::config::DrawerVia,
}

#[derive(Clone, Debug, Serialize)]
pub struct DevicePort {
    pub path: String,
    pub baud: u32,
}

impl ConfigSummary {
    pub fn of(s: &Settings) -> ConfigSummary {
        let set = |b: bool| if b { "set" } else { "not set" };
        ConfigSummary {
            listen: s.listen.to_string(),
            journal: s.journal_path.display().to_string(),
            country: s.profile.country.code().to_string(),
            currency: s.profile.currency.clone(),
            timezone: s.timezone.name().to_string(),
            backend: s.devices.backend,
            cloud_enabled: s.cloud.enabled,
            cloud_url: redact_url(&s.cloud.base_url),
            cloud_token: set(s
                .cloud
                .token
                .as_ref()
                .is_some_and(|t| !t.expose().is_empty())),
            till_pin: set(!s.pin.is_empty()),
            register: s.devices.register.as_ref().map(|r| DevicePort {
                path: r.path.display().to_string(),
                baud: r.line.baud,
            }),
            printer: s.devices.printer.as_ref().map(|p| DevicePort {
                path: p.path.display().to_string(),
                baud: p.line.baud,
            }),
            drawer: s.devices.drawer.via,
        }
    }
}

/// `https://user:pw@host/path?key=v` → `https://host/path`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or("");
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// Everything on the page.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub version: &'static str,
    pub now: String,
    pub uptime_s: u64,
    /// What needs a technician, in words; empty when all is well.
    pub attention: Vec<String>,
    /// Deadlines (fiscal drive expiry, OFD block, marking lockout, shift
    /// limit, clock), most urgent first.
    pub deadlines: Vec<crate::deadlines::Condition>,
    pub config: ConfigSummary,
    pub devices: Vec<DeviceStatus>,
    pub journal: JournalStatus,
    pub cloud: CloudStatus,
    pub shift: ShiftStatus,
    /// The FiscalBox billing reconciliation, when a billing is configured.
    pub billing: Option<BillingStatus>,
    /// The last shift reconciliation ("sverka") with the FiscalBox (X or Z
    /// report), when the backend is `fiscalbox` and one has run.
    pub sverka: Option<crate::fiscalbox::sverka::Check>,
    pub recent_errors: Vec<LogEntry>,
    pub chart: Vec<Minute>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JournalStatus {
    pub writable: bool,
    pub error: Option<String>,
    pub size_bytes: u64,
    pub receipts_total: u64,
    pub receipts_today: u64,
    pub by_state: Vec<Count>,
    /// Receipts by source (the dialect they came in, as `key`) and state.
    pub by_source: Vec<Count>,
    /// Jobs waiting or parked, by kind and state.
    pub queue: Vec<Count>,
    /// Receipts accepted but not yet fiscalized (cloud, register or FiscalBox).
    pub backlog: u64,
    pub oldest_unfiscalized: Option<String>,
    pub oldest_unfiscalized_age_s: Option<i64>,
    /// Commits so far (group commit): the last checkpoint runs after them.
    pub commits: u64,
    pub rejected: Vec<crate::journal::RejectedReceipt>,
    pub events: Vec<crate::journal::RecentEvent>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Count {
    pub key: String,
    pub state: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CloudStatus {
    pub enabled: bool,
    pub online: Option<bool>,
    pub since: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    /// When the access token the daemon holds expires (it is refreshed before).
    pub token_expires_at: Option<String>,
    pub fiscalized: u64,
    pub failures: u64,
    pub in_flight: usize,
}

/// The billing's side: logins so far and the last check (never the token).
#[derive(Clone, Debug, Serialize)]
pub struct BillingStatus {
    pub logins: u64,
    pub checks: u64,
    /// The stored check of the newest period.
    pub last: Option<crate::fiscalbox::billing::Reconciliation>,
    /// Checks not settled `equal` (different, delayed, refused), newest
    /// first, at most [`crate::fiscalbox::billing::UNRESOLVED_SHOWN`].
    pub unresolved: Vec<crate::fiscalbox::billing::Reconciliation>,
    pub unresolved_count: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShiftStatus {
    /// From the fiscal register, when there is one.
    pub register_shift: Option<String>,
    pub number: Option<u64>,
    /// Today's receipts (till-local date) summed by receipt and payment kind.
    pub date: String,
    pub totals: Vec<Total>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Total {
    pub receipt_kind: String,
    pub payment_kind: String,
    /// Minor units.
    pub amount: i64,
    /// `amount` as text in major units (`123.45`).
    pub text: String,
}

pub async fn collect(app: &AppState) -> StatusReport {
    // Deadlines are read against the wall clock (as the register readings
    // are); "today" is the journal's day, whose receipts the injected clock
    // stamped.
    let now = Utc::now();
    let local_today = app
        .clock
        .now()
        .with_timezone(&app.tz)
        .format("%Y-%m-%d")
        .to_string();
    let writer = app.journal.ping(Duration::from_secs(2)).await;
    let stats = app.journal.stats().await;
    let view = app.journal.ops_view(local_today.clone()).await;
    let devices = app
        .devices
        .as_ref()
        .map(|d| d.statuses())
        .unwrap_or_default();
    let view_error = view.as_ref().err().map(|e| e.to_string());
    let view = view.unwrap_or_else(|_| OpsView::default());
    let backlog: u64 = view
        .jobs
        .iter()
        .filter(|(k, s, _)| {
            matches!(k.as_str(), "fiscalize" | "register" | "fiscalbox") && s == "pending"
        })
        .map(|(_, _, n)| n)
        .sum();
    telemetry::global().record_backlog(now.timestamp(), backlog);
    let oldest_age = view
        .oldest_unfiscalized
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0));
    let (size_bytes, receipts_total, by_state) = match &stats {
        Ok(s) => (
            s.size_bytes,
            s.receipts,
            s.by_state
                .iter()
                .map(|(state, n)| Count {
                    key: "receipts".into(),
                    state: state.code().to_string(),
                    count: *n,
                })
                .collect(),
        ),
        Err(_) => (0, 0, Vec::new()),
    };
    let journal = JournalStatus {
        writable: writer.is_ok(),
        error: writer
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .or(stats.as_ref().err().map(|e| e.to_string()))
            .or(view_error),
        size_bytes,
        receipts_total,
        receipts_today: view.receipts_today,
        by_state,
        by_source: view
            .receipts
            .iter()
            .map(|(state, source, n)| Count {
                key: source.clone(),
                state: state.clone(),
                count: *n,
            })
            .collect(),
        queue: view
            .jobs
            .iter()
            .map(|(k, s, n)| Count {
                key: k.clone(),
                state: s.clone(),
                count: *n,
            })
            .collect(),
        backlog,
        oldest_unfiscalized: view.oldest_unfiscalized.clone(),
        oldest_unfiscalized_age_s: oldest_age,
        commits: app.journal.commit_stats().commits,
        rejected: view.rejected.clone(),
        events: view.events.clone(),
    };
    let sync = app
        .sync_status
        .as_ref()
        .map(|s| s.lock().expect("status lock").clone());
    let token_expires_at = match &sync {
        Some(_) => app
            .journal
            .secret(crate::sync::client::ACCESS_TOKEN)
            .await
            .ok()
            .flatten()
            .and_then(|(_, expires)| expires)
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => None,
    };
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let cloud = CloudStatus {
        enabled: sync.is_some(),
        online: sync.as_ref().map(|s| s.connectivity.online),
        since: sync.as_ref().map(|s| rfc(s.connectivity.since)),
        last_success: sync.as_ref().and_then(|s| s.last_success).map(rfc),
        last_error: sync
            .as_ref()
            .and_then(|s| s.connectivity.last_error.clone()),
        token_expires_at,
        fiscalized: sync.as_ref().map_or(0, |s| s.fiscalized),
        failures: sync.as_ref().map_or(0, |s| s.failures),
        in_flight: sync.as_ref().map_or(0, |s| s.in_flight),
    };
    let register = devices.iter().find(|d| d.name == "register");
    let shift = ShiftStatus {
        register_shift: register
            .and_then(|r| r.details.get("shift"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        number: register
            .and_then(|r| r.details.get("shift_number"))
            .and_then(|v| v.as_u64()),
        date: local_today,
        totals: view
            .payments_today
            .iter()
            .map(|(k, p, a)| Total {
                receipt_kind: k.clone(),
                payment_kind: p.clone(),
                amount: *a,
                text: crate::domain::Money(*a).to_string(),
            })
            .collect(),
    };
    let deadlines = deadlines(app, now);
    // The stored check of the newest period (it survives a restart; one
    // indexed row) and the unresolved ones (among at most the 1000 kept).
    let (billing_last, (unresolved, unresolved_count)) =
        match app.fiscalbox.as_ref().and_then(|fb| fb.billing.as_ref()) {
            Some(_) => (
                crate::fiscalbox::billing::latest(&app.journal).await,
                crate::fiscalbox::billing::unresolved(&app.journal).await,
            ),
            None => (None, (Vec::new(), 0)),
        };
    let mut report = StatusReport {
        version: env!("CARGO_PKG_VERSION"),
        now: rfc(now),
        uptime_s: app.started.elapsed().as_secs(),
        attention: Vec::new(),
        deadlines,
        config: app.ops.summary.clone(),
        devices,
        journal,
        cloud,
        shift,
        billing: app.fiscalbox.as_ref().and_then(|fb| {
            use std::sync::atomic::Ordering::Relaxed;
            fb.billing.as_ref().map(|b| BillingStatus {
                logins: b.counters.logins.load(Relaxed),
                checks: b.counters.checks.load(Relaxed),
                last: billing_last.clone(),
                unresolved: unresolved.clone(),
                unresolved_count,
            })
        }),
        sverka: app
            .fiscalbox
            .as_ref()
            .and_then(|fb| fb.sverka.lock().expect("sverka lock").clone()),
        recent_errors: telemetry::global().recent_errors(),
        chart: telemetry::global().series(),
    };
    report.attention = attention(&report, now);
    report
}

/// The deadline conditions from the latest readings (empty before the first).
pub fn deadlines(app: &AppState, now: DateTime<Utc>) -> Vec<crate::deadlines::Condition> {
    app.deadlines.conditions(now)
}

/// What needs a technician; pure, so the rules are tested without a daemon.
pub fn attention(r: &StatusReport, now: DateTime<Utc>) -> Vec<String> {
    let mut out: Vec<String> = r
        .deadlines
        .iter()
        .filter(|c| c.severity >= crate::deadlines::Severity::Critical)
        .map(|c| c.line())
        .collect();
    if !r.journal.writable {
        out.push(format!(
            "the journal cannot be written: {}",
            r.journal.error.as_deref().unwrap_or("unknown error")
        ));
    }
    for d in &r.devices {
        if matches!(d.state, DeviceState::Absent | DeviceState::Faulted) {
            out.push(format!(
                "{} is {}{}",
                d.name,
                serde_json::to_value(d.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                d.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
    }
    if !r.journal.rejected.is_empty() {
        out.push(format!(
            "{} rejected receipt(s) wait for retry or discard",
            r.journal.rejected.len()
        ));
    }
    if let Some(age) = r.journal.oldest_unfiscalized_age_s
        && age as u64 > BACKLOG_AGE_ATTENTION.as_secs()
    {
        out.push(format!(
            "the oldest unfiscalized receipt has waited {} min",
            age / 60
        ));
    }
    if r.cloud.online == Some(false)
        && let Some(since) = r.cloud.since.as_deref()
        && let Ok(since) = DateTime::parse_from_rfc3339(since)
        && (now - since.with_timezone(&Utc)).num_seconds() as u64 > OFFLINE_ATTENTION.as_secs()
    {
        out.push(format!(
            "the cloud processing has been unreachable since {since}"
        ));
    }
    if let Some(check) = &r.sverka {
        out.extend(check.attention());
    }
    if let Some(b) = r.billing.as_ref() {
        out.extend(b.unresolved.iter().map(billing_attention));
        let more = b.unresolved_count - b.unresolved.len() as i64;
        if more > 0 {
            out.push(format!(
                "{more} older FiscalBox billing check(s) are not settled equal either"
            ));
        }
    }
    out
}

/// The attention line of a billing check that is not `equal`.
fn billing_attention(check: &crate::fiscalbox::billing::Reconciliation) -> String {
    use crate::fiscalbox::billing::Outcome;
    match &check.outcome {
        Outcome::Equal => String::new(),
        Outcome::Different {
            orders_difference,
            amount_difference_tiyin,
            explained_by,
            explained_more,
        } => format!(
            "the FiscalBox billing's count for {} – {} differs: journal minus billing = {} order(s), {} tiyin{}",
            check.start,
            check.end,
            orders_difference,
            amount_difference_tiyin,
            if explained_by.is_empty() {
                String::new()
            } else {
                format!(
                    "; explained by receipt(s) {}{}",
                    explained_by
                        .iter()
                        .map(|o| format!("{} (#{})", o.receipt_id, o.receipt_seq))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if *explained_more > 0 {
                        format!(" and {explained_more} more")
                    } else {
                        String::new()
                    }
                )
            }
        ),
        Outcome::Delayed { reason } => format!(
            "the FiscalBox billing check for {} – {} is delayed: {reason}",
            check.start, check.end
        ),
        Outcome::Refused { reason } => format!(
            "the FiscalBox billing check for {} – {} was refused: {reason}",
            check.start, check.end
        ),
    }
}

pub(super) async fn get_status(State(app): Shared) -> Response {
    Json(collect(&app).await).into_response()
}
