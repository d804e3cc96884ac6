//! HTTP: the front door (Host/Origin policy, tokens, CORS), the dialect seam
//! (one nested router per dialect, one accept path), body readers, the error
//! value, and the server loop. Nothing here talks to a device except through
//! `Devices`, or writes but through the journal. See `dialect.rs` and
//! ARCHITECTURE.md "Adding a dialect".

pub mod accept;
pub mod audit;
pub mod bitrix24;
pub mod body;
pub mod dialect;
pub mod error;
pub mod fiscalbox;
pub mod gateway;
pub mod metrics;
pub mod native;
pub mod operations;
pub mod page;
pub mod policy;
pub mod remote;
pub mod server;
pub mod status;

use crate::config::ApiSettings;
use crate::domain::Profile;
use crate::journal::Journal;
use axum::Router;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest caller idempotency key accepted.
pub const MAX_CALLER_KEY_CHARS: usize = 128;
/// Largest page of a receipt listing.
pub const MAX_PAGE: usize = 500;

/// What every handler shares. Holds no worker wake-up: the journal wakes the
/// workers when it commits a job.
#[derive(Clone)]
pub struct AppState {
    pub journal: Journal,
    pub profile: Profile,
    pub timezone: String,
    /// The till's time zone: a receipt's date (for the date-dependent VAT
    /// rules) is the till's local date.
    pub tz: chrono_tz::Tz,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub max_body_bytes: usize,
    pub write_timeout: Duration,
    pub started: Instant,
    /// The front door's policy and the request limits.
    pub api: ApiSettings,
    /// The cloud sync's state, when it runs.
    pub sync_status: Option<Arc<std::sync::Mutex<crate::sync::worker::SyncStatus>>>,
    /// The till's devices (none configured: all `None` inside).
    pub devices: Option<Arc<crate::devices::manager::Devices>>,
    /// `cloud`, `register` or `fiscalbox`.
    pub backend: crate::config::Backend,
    /// `[bitrix24]`, when enabled (its endpoints answer 404 otherwise).
    pub bitrix24: Option<Arc<crate::config::Bitrix24Settings>>,
    /// `[gateway]`, when enabled.
    pub gateway: Option<Arc<crate::config::GatewaySettings>>,
    /// The status page: config summary and its sign-in sessions.
    pub ops: Arc<page::OpsState>,
    /// The register's deadline readings and the thresholds.
    pub deadlines: crate::deadlines::Source,
    /// The FiscalBox link, with backend `fiscalbox`.
    pub fiscalbox: Option<Arc<FiscalboxState>>,
    /// The permissive-mode check of marking codes, when configured.
    pub marking: Option<Arc<crate::marking::client::MarkingClient>>,
}

/// What the API knows of the till's FiscalBox.
pub struct FiscalboxState {
    /// For payment and tool calls that go to the box at once.
    pub client: crate::fiscalbox::client::BoxClient,
    pub status: Arc<std::sync::Mutex<crate::fiscalbox::worker::BoxStatus>>,
    /// How long `order/create` waits for the box's fiscal data.
    pub reply_wait: Duration,
    /// The last reconciliation of the shift with the box (differences,
    /// receipts not yet on the box), for `/v1/health`, `/v1/status` and the
    /// status page; `None` before the first X/Z report.
    pub sverka: std::sync::Mutex<Option<crate::fiscalbox::sverka::Check>>,
    /// The FiscalBox billing, when `[fiscalbox.billing]` is set.
    /// Its reconciliations are stored in the journal (`billing_checks`):
    /// `/v1/status`, the status page and the shift report read them there.
    pub billing: Option<Arc<crate::fiscalbox::billing::BillingClient>>,
}

type Shared = axum::extract::State<Arc<AppState>>;

/// The whole API: the front door, then every dialect under its prefix.
pub fn router(state: AppState) -> Router {
    dialect::router(Arc::new(state))
}

/// The dialects the remote listener serves: the online-order ones, which
/// carry their own credentials. Never native (its operator endpoints and
/// status page included).
pub static REMOTE_DIALECTS: &[&dialect::Dialect] = &[&bitrix24::DIALECT, &gateway::DIALECT];

/// Whose envelope an error on the remote listener is rendered in: the
/// online-order dialects on their paths, fiscald's own shape elsewhere.
static REMOTE_ENVELOPES: &[&dialect::Dialect] =
    &[&native::DIALECT, &bitrix24::DIALECT, &gateway::DIALECT];

/// The remote listener's router: [`REMOTE_DIALECTS`] and nothing else, every
/// client held to a rate limit, errors in each dialect's envelope. The
/// front door's Host/Origin/token policy is not applied: callers are servers
/// on the internet reaching the shop's public name, and each request proves
/// itself with its dialect's credentials (docs/REMOTE.md).
pub fn remote_router(state: AppState, limiter: Arc<remote::RateLimiter>) -> Router {
    let mut app = Router::new();
    for d in REMOTE_DIALECTS {
        app = app.nest(d.prefix, (d.routes)());
    }
    app.fallback(|| async {
        error::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            "the remote listener serves only /bitrix24/print, /bitrix24/check, /gateway/sale and /gateway/status",
        )
    })
    .layer(axum::middleware::from_fn_with_state(limiter, remote::rate_limit))
    .layer(axum::middleware::from_fn_with_state(
        dialect::Dialects(REMOTE_ENVELOPES),
        dialect::render_errors,
    ))
    .with_state(Arc::new(state))
}
