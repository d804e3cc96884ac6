//! The native dialect (API v1, JSON): its routes under `/v1`, its handlers,
//! its error envelope `{"error": {"code", "message", "details": [{"path",
//! "rule", "message"}]}}`. Field names match the domain model, so the domain's
//! JSON pointers are its own field paths. See `api::dialect` for the seam.

pub mod archive;
pub mod devices;
pub mod parse;
pub mod render;

pub use parse::parse_receipt;
pub use render::render;

use super::accept::{Outcome, accept};
use super::body;
use super::dialect::Dialect;
use super::error::ApiError;
use super::policy::require_operator;
use super::{AppState, MAX_CALLER_KEY_CHARS, MAX_PAGE};
use crate::domain::{ReceiptState, Source, Violation};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub static DIALECT: Dialect = Dialect {
    source: Source::Native,
    prefix: "/v1",
    routes,
    render_error,
    field_path: |pointer| pointer.to_string(),
};

type Shared = State<Arc<AppState>>;

fn routes() -> Router<Arc<AppState>> {
    let operator = Router::new()
        .route("/receipts/{id}/retry", post(retry_receipt))
        .route("/receipts/{id}/discard", post(discard_receipt))
        .route("/receipts/{id}/print", post(devices::print_receipt))
        .route("/drawer/open", post(devices::open_drawer))
        .route("/shifts/open", post(devices::open_shift))
        .route("/shifts/close", post(devices::close_shift))
        .route("/reports/x", post(devices::x_report))
        .route("/billing/check", post(billing_check))
        .route_layer(axum::middleware::from_fn(require_operator));
    Router::new()
        .route("/health", get(health))
        .route("/status", get(super::status::get_status))
        .route("/receipts", post(create_receipt).get(list_receipts))
        .route("/receipts/{id}", get(get_receipt))
        .route("/devices", get(devices::list))
        .merge(archive::routes())
        .merge(operator)
        .merge(super::operations::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The native error envelope.
pub fn render_error(e: &ApiError) -> Response {
    let body = json!({
        "error": {
            "code": e.code,
            "message": e.message,
            "details": e.details,
        }
    });
    (e.status, Json(body)).into_response()
}

async fn create_receipt(
    State(app): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller_key = caller_key(&headers)?;
    let json = body::read_json(&headers, body, app.max_body_bytes).await?;
    let draft = parse_receipt(&json).map_err(ApiError::invalid_receipt)?;
    match accept(&app, &DIALECT, caller_key, draft).await? {
        Outcome::Created(stored) => {
            let location = format!("/v1/receipts/{}", stored.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(with_warnings(&app, render(&stored))),
            )
                .into_response())
        }
        Outcome::Replayed(stored) => {
            let mut response =
                (StatusCode::OK, Json(with_warnings(&app, render(&stored)))).into_response();
            // No Location on a repeat: tell the audit line which receipt.
            response
                .extensions_mut()
                .insert(super::audit::AuditReceipt(stored.id.clone()));
            Ok(response)
        }
    }
}

/// A receipt reply with the till's deadlines at warn or worse, so the POS
/// can show the cashier "in 2 days this till stops selling".
fn with_warnings(app: &super::AppState, mut reply: serde_json::Value) -> serde_json::Value {
    // The wall clock, as the readings and /v1/status use.
    let all = app.deadlines.conditions(chrono::Utc::now());
    reply["warnings"] = json!(crate::deadlines::warnings(&all));
    reply
}

pub(crate) fn caller_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
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
        Some(r) => Ok(Json(render(&r)).into_response()),
        None => Err(ApiError::not_found(&format!("receipt {id:?}"))),
    }
}

/// Operator: send a rejected receipt to the processing again.
async fn retry_receipt(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let stored = app.journal.operator_retry(id).await?;
    tracing::info!(id = %stored.id, number = stored.number, "operator: retry of a rejected receipt");
    Ok(Json(render(&stored)).into_response())
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
    Ok(Json(render(&stored)).into_response())
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
    let receipts: Vec<_> = page.receipts.iter().map(render).collect();
    Ok(Json(json!({"receipts": receipts, "next_after": page.next_after})).into_response())
}

async fn health(State(app): Shared) -> Response {
    // Receipts and payment confirms waiting for the FiscalBox.
    let fiscalbox_jobs = app
        .journal
        .job_counts(&[
            crate::journal::JobKind::Fiscalbox,
            crate::journal::JobKind::FiscalboxConfirm,
        ])
        .await;
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
            "by_state": s.by_state.iter().map(|(k, v)| (k.code().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "schema_version": s.schema_version,
            "size_bytes": s.size_bytes,
            "free_bytes": s.free_bytes,
            "jobs": s.jobs,
            "oldest_pending": s.oldest_pending,
            "archived": s.archived,
            "wal": s.wal,
            "retention": app.journal.last_retention(),
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
        "fiscalbox": app.fiscalbox.as_ref().map(|f| json!({
            "url": f.client.base_url(),
            "state": f.status.lock().expect("box status lock").clone(),
            "sverka": f.sverka.lock().expect("sverka lock").clone(),
            "jobs": fiscalbox_jobs.as_ref().ok(),
        })),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct BillingPeriod {
    from: Option<String>,
    to: Option<String>,
}

/// `from`/`to`: a till-local date (`2026-11-29`: the whole day) or
/// `YYYY-MM-DDTHH:MM:SS`.
fn billing_bound(
    field: &'static str,
    text: Option<&str>,
    end: bool,
) -> Result<chrono::NaiveDateTime, ApiError> {
    let text = text.ok_or_else(|| {
        ApiError::bad_request(
            field,
            "required",
            format!("{field} is required: a date such as 2026-11-29 or 2026-11-29T08:00:00"),
        )
    })?;
    if let Ok(t) =
        chrono::NaiveDateTime::parse_from_str(text, crate::fiscalbox::facts::BILLING_DATE_FORMAT)
    {
        return Ok(t);
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            field,
            "date",
            format!("{field} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, got {text:?}"),
        )
    })?;
    Ok(if end {
        day.and_hms_opt(23, 59, 59).expect("a valid time")
    } else {
        day.and_hms_opt(0, 0, 0).expect("a valid time")
    })
}

/// `POST /v1/billing/check?from=…&to=…` (operator): reconcile the period
/// with the FiscalBox billing now; the result is stored in the journal
/// (the status shows the newest), a delayed one retried in the background.
async fn billing_check(
    State(app): Shared,
    axum::extract::Query(q): axum::extract::Query<BillingPeriod>,
) -> Result<Response, ApiError> {
    let start = billing_bound("from", q.from.as_deref(), false)?;
    let end = billing_bound("to", q.to.as_deref(), true)?;
    let to_is_day = q.to.as_deref().is_some_and(|t| !t.contains('T'));
    let now = app.clock.now().with_timezone(&app.tz).naive_local();
    let (start, end) = crate::fiscalbox::billing::on_demand_period(start, end, to_is_day, now)
        .map_err(|e| ApiError::bad_request(e.field, e.rule, e.message))?;
    let Some(billing) = app.fiscalbox.as_ref().and_then(|fb| fb.billing.as_ref()) else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "billing_not_configured",
            "no FiscalBox billing is configured: set [fiscalbox.billing] url, username, password_file and inn",
        ));
    };
    // One bound around storing and asking: the answer always comes before
    // `fiscald billing check` gives up.
    let r = tokio::time::timeout(
        crate::fiscalbox::billing::HANDLER_WITHIN,
        billing.check_and_store(start, end, crate::fiscalbox::billing::Trigger::OnDemand),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "journal_busy",
            format!(
                "no answer within {} s (the journal is busy); a check stored meanwhile is asked in the background and shown by the status — try again",
                crate::fiscalbox::billing::HANDLER_WITHIN.as_secs()
            ),
        )
    })?;
    Ok(Json(r).into_response())
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
