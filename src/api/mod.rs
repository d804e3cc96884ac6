//! HTTP: the router, request limits, the error shape, and one module per
//! dialect that only parses requests into domain commands. Nothing here talks
//! to a device or writes SQL: handlers hand validated receipts to the journal.

pub mod bitrix24;
pub mod body;
pub mod devices;
pub mod error;
pub mod form;
pub mod gateway;
pub mod native;
pub mod remote;
pub mod server;

use crate::domain::{Profile, ReceiptState, Source, Violation, validate};
use crate::journal::{Accepted, Journal, NewReceipt};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use error::ApiError;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest caller idempotency key accepted.
pub const MAX_CALLER_KEY_CHARS: usize = 128;
/// Largest page of a receipt listing.
pub const MAX_PAGE: usize = 500;

/// What every handler shares.
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
    /// Wakes the cloud sync when a receipt is queued or re-queued.
    pub sync_wake: Arc<tokio::sync::Notify>,
    /// The cloud sync's state, when it runs.
    pub sync_status: Option<Arc<std::sync::Mutex<crate::sync::worker::SyncStatus>>>,
    /// Wakes the device worker when a receipt is queued or re-queued.
    pub device_wake: Arc<tokio::sync::Notify>,
    /// The till's devices (none configured: all `None` inside).
    pub devices: Option<Arc<crate::devices::manager::Devices>>,
    /// `cloud` or `register`.
    pub backend: crate::config::Backend,
    /// `[bitrix24]`, when enabled: its routes exist only then.
    pub bitrix24: Option<Arc<crate::config::Bitrix24Settings>>,
    /// `[gateway]`, when enabled.
    pub gateway: Option<Arc<crate::config::GatewaySettings>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/receipts", post(create_receipt).get(list_receipts))
        .route("/v1/receipts/{id}", get(get_receipt))
        .route("/v1/receipts/{id}/retry", post(retry_receipt))
        .route("/v1/receipts/{id}/discard", post(discard_receipt))
        .route("/v1/receipts/{id}/print", post(devices::print_receipt))
        .route("/v1/devices", get(devices::list))
        .route("/v1/drawer/open", post(devices::open_drawer))
        .route("/v1/shifts/open", post(devices::open_shift))
        .route("/v1/shifts/close", post(devices::close_shift))
        .route("/v1/reports/x", post(devices::x_report))
        .merge(online_routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::new(state))
}

/// The online-order dialects (Bitrix24, gateway), each only when configured.
/// Served on the local listener and, alone, on the remote one.
fn online_routes(state: &AppState) -> Router<Arc<AppState>> {
    let mut r = Router::new();
    if state.bitrix24.is_some() {
        r = r
            .route("/bitrix24/print", post(bitrix24::print))
            .route("/bitrix24/check", post(bitrix24::check));
    }
    if state.gateway.is_some() {
        r = r
            .route("/gateway/sale", post(gateway::sale))
            .route("/gateway/status", post(gateway::status));
    }
    r
}

/// The remote listener's router: the online-order dialects and nothing else
/// (no native API, no operator endpoint, no status page), every client held
/// to a rate limit. Each dialect checks its own credentials.
pub fn remote_router(state: AppState, limiter: Arc<remote::RateLimiter>) -> Router {
    online_routes(&state)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            remote::rate_limit,
        ))
        .with_state(Arc::new(state))
}

type Shared = State<Arc<AppState>>;

async fn create_receipt(
    State(app): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller_key = caller_key(&headers)?;
    let json = body::read_json(&headers, body, app.max_body_bytes).await?;
    let draft = native::parse_receipt(&json).map_err(ApiError::invalid_receipt)?;
    match accept_draft(&app, Source::Native, caller_key, draft).await? {
        Accepted::Created(stored) => {
            let location = format!("/v1/receipts/{}", stored.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(native::render(&stored)),
            )
                .into_response())
        }
        Accepted::Replayed(stored) => {
            Ok((StatusCode::OK, Json(native::render(&stored))).into_response())
        }
    }
}

/// The accept path every dialect shares once it has a draft: validate (as of
/// the till's local date), commit, wake the workers. Nothing after this knows
/// the dialect except the recorded `source`.
pub(crate) async fn accept_draft(
    app: &AppState,
    source: Source,
    caller_key: Option<String>,
    draft: crate::domain::Draft,
) -> Result<Accepted, ApiError> {
    let today = app.clock.now().with_timezone(&app.tz).date_naive();
    let receipt = validate(draft, &app.profile, today).map_err(ApiError::invalid_receipt)?;
    let new = NewReceipt {
        source,
        caller_key,
        receipt,
    };
    let accepted = app.journal.accept(new, app.write_timeout).await?;
    match &accepted {
        Accepted::Created(stored) => {
            app.sync_wake.notify_one();
            app.device_wake.notify_one();
            tracing::info!(
                id = %stored.id,
                number = stored.number,
                total = %stored.receipt.total,
                source = source.code(),
                "receipt accepted"
            );
        }
        Accepted::Replayed(stored) => {
            tracing::info!(id = %stored.id, number = stored.number, source = source.code(), "receipt repeated with the same caller key");
        }
    }
    Ok(accepted)
}

fn caller_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = |rule, message: &str| Err(ApiError::bad_request("Idempotency-Key", rule, message));
    let Ok(text) = value.to_str() else {
        return bad("printable_ascii", "Idempotency-Key must be printable ASCII");
    };
    let text = text.trim();
    if text.is_empty() {
        return bad(
            "not_empty",
            "Idempotency-Key must not be empty; leave the header out instead",
        );
    }
    if text.len() > MAX_CALLER_KEY_CHARS {
        return bad(
            "max_length",
            "Idempotency-Key may be at most 128 characters",
        );
    }
    Ok(Some(text.to_string()))
}

async fn get_receipt(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    match app.journal.get(id.clone()).await? {
        Some(r) => Ok(Json(native::render(&r)).into_response()),
        None => Err(ApiError::not_found(&format!("receipt {id:?}"))),
    }
}

/// Operator: send a rejected receipt to the processing again.
async fn retry_receipt(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let stored = app.journal.operator_retry(id).await?;
    app.sync_wake.notify_one();
    app.device_wake.notify_one();
    tracing::info!(id = %stored.id, number = stored.number, "operator: retry of a rejected receipt");
    Ok(Json(native::render(&stored)).into_response())
}

/// Longest discard reason kept.
pub const MAX_REASON_CHARS: usize = 500;

/// Operator: give up on a rejected receipt, saying why.
async fn discard_receipt(
    State(app): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let json = body::read_json(&headers, body, app.max_body_bytes).await?;
    let reason = match json.get("reason") {
        Some(serde_json::Value::String(r))
            if !r.trim().is_empty() && r.chars().count() <= MAX_REASON_CHARS =>
        {
            r.trim().to_string()
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "a discard needs a reason",
            )
            .with_detail(Violation::new(
                "/reason",
                "required",
                format!(
                    "give the reason as a non-empty string of at most {MAX_REASON_CHARS} characters"
                ),
            )));
        }
    };
    let stored = app.journal.operator_discard(id, reason).await?;
    tracing::warn!(id = %stored.id, number = stored.number, "operator: rejected receipt discarded");
    Ok(Json(native::render(&stored)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

async fn list_receipts(
    State(app): Shared,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "limit",
                    "range",
                    format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(ReceiptState::from_code(text).ok_or_else(|| {
            ApiError::bad_request(
                "state",
                "one_of",
                format!("state {text:?} is not one of: {}", ReceiptState::codes()),
            )
        })?),
    };
    let page = app.journal.list(state, q.after, limit).await?;
    let receipts: Vec<_> = page.receipts.iter().map(native::render).collect();
    Ok(Json(json!({"receipts": receipts, "next_after": page.next_after})).into_response())
}

async fn health(State(app): Shared) -> Response {
    let writer = app.journal.ping(Duration::from_secs(2)).await;
    let stats = app.journal.stats().await;
    let ok = writer.is_ok() && stats.is_ok();
    let journal = match &stats {
        Ok(s) => json!({
            "writable": writer.is_ok(),
            "error": writer.as_ref().err().map(|e| e.to_string()),
            "path": app.journal.path().display().to_string(),
            "receipts": s.receipts,
            "last_number": s.last_number,
            "by_state": s.by_state.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "schema_version": s.schema_version,
            "size_bytes": s.size_bytes,
            "writer": app.journal.commit_stats(),
        }),
        Err(e) => json!({"writable": writer.is_ok(), "error": e.to_string()}),
    };
    let sync = match (&app.sync_status, app.journal.sync_counts().await) {
        (status, Ok(counts)) => json!({
            "enabled": status.is_some(),
            "state": status.as_ref().map(|s| s.lock().expect("status lock").clone()),
            "pending": counts.pending,
            "rejected": counts.parked,
            "oldest_pending": counts.oldest_pending,
        }),
        (_, Err(e)) => json!({"error": e.to_string()}),
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": app.started.elapsed().as_secs(),
        "till": {
            "country": app.profile.country.code(),
            "currency": app.profile.currency,
            "timezone": app.timezone,
        },
        "journal": journal,
        "sync": sync,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/API.md",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
    .with_detail(Violation::new(
        "method",
        "allowed_method",
        "see docs/API.md for the methods of each endpoint",
    ))
}
