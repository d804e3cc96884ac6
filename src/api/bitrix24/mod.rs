//! The Bitrix24 REST cashbox dialect (seed 003): `POST /bitrix24/print` takes
//! a receipt (PHP-style form or JSON) and answers `{"UUID"}` or
//! `{"ERRORS": [...]}`; `POST /bitrix24/check` answers `WAIT`, `DONE` with the
//! fiscal attributes, or `ERROR`. `facts` holds the code tables and every
//! ASSUMED fact, `parse` turns a body into a domain draft; this file is the
//! HTTP shell.

pub mod facts;
pub mod parse;

use super::AppState;
use super::accept::accept;
use super::body::{self, Format};
use super::dialect::Dialect;
use super::error::ApiError;
use crate::domain::{ReceiptState, Source};
use crate::journal::StoredReceipt;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;

pub static DIALECT: Dialect = Dialect {
    source: Source::Bitrix24,
    prefix: "/bitrix24",
    routes,
    render_error,
    field_path,
};

fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/print", post(print))
        .route("/check", post(check))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the Bitrix24 cashbox has /bitrix24/print and /bitrix24/check",
            )
        })
}

/// A domain pointer in Bitrix24's field names.
fn field_path(pointer: &str) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["total"] => "total_sum".into(),
        ["buyer", "email"] => "client_email".into(),
        ["buyer", "phone"] => "client_phone".into(),
        ["payments", i, "amount"] => format!("payments/{i}/sum"),
        ["payments", i, "kind"] => format!("payments/{i}/type"),
        ["items", i, "total"] => format!("items/{i}/sum"),
        ["items", i, "marking", ..] => format!("items/{i}/nomenclature_code"),
        ["items", i, "payment_subject"] => format!("items/{i}/payment_object"),
        ["items", i, "calculation_method"] => format!("items/{i}/payment_method"),
        _ => pointer.trim_start_matches('/').to_string(),
    }
}

/// `{"ERRORS": [...]}`: with HTTP 200 for what is wrong with the request
/// (shape, credentials, rules, a reused uuid: the seed's handler answers so),
/// with the original status for the front door's refusals (403), limits
/// (408, 413, 415, 429, 431) and an unavailable journal (503).
pub fn render_error(e: &ApiError) -> Response {
    let mut list = Vec::new();
    if e.details.is_empty() {
        list.push(e.message.clone());
    }
    for d in &e.details {
        list.push(if d.path.is_empty() {
            d.message.clone()
        } else {
            format!("{}: {}", d.path.trim_start_matches('/'), d.message)
        });
    }
    let status = match e.status {
        StatusCode::BAD_REQUEST
        | StatusCode::UNAUTHORIZED
        | StatusCode::NOT_FOUND
        | StatusCode::CONFLICT
        | StatusCode::UNPROCESSABLE_ENTITY => StatusCode::OK,
        other => other,
    };
    (status, Json(json!({"ERRORS": list}))).into_response()
}

async fn authenticated(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Value, Arc<crate::config::Bitrix24Settings>), ApiError> {
    let cfg = app
        .bitrix24
        .clone()
        .ok_or_else(|| ApiError::not_found("the Bitrix24 cashbox ([bitrix24] enabled = false)"))?;
    let body = body::read(
        headers,
        body,
        app.max_body_bytes,
        &[Format::Form, Format::Json],
    )
    .await?;
    if let Err(message) = parse::authenticate(&body, &cfg) {
        tracing::warn!("bitrix24: request refused: {message}");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message,
        ));
    }
    Ok((body, cfg))
}

/// `POST /bitrix24/print`: `{"UUID"}` once journaled; a repeat of the uuid
/// answers the same and journals nothing.
async fn print(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, cfg) = authenticated(&app, &headers, body).await?;
    let p = parse::print(&body, &cfg).map_err(ApiError::invalid_receipt)?;
    let outcome = accept(&app, &DIALECT, Some(p.uuid.clone()), p.draft).await?;
    if let super::accept::Outcome::Replayed(stored) = &outcome {
        tracing::info!(id = %stored.id, uuid = %p.uuid, "bitrix24: PRINT repeated; nothing new");
    }
    Ok(Json(json!({"UUID": p.uuid})).into_response())
}

/// `POST /bitrix24/check`.
async fn check(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, _) = authenticated(&app, &headers, body).await?;
    let uuid = parse::uuid(&body).map_err(|v| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", v.message.clone()).with_detail(v)
    })?;
    let reply = match app
        .journal
        .by_caller_key(Source::Bitrix24, uuid.clone())
        .await?
    {
        Some(stored) => check_reply(&uuid, &stored, app.tz),
        None => json!({
            "STATUS": "ERROR",
            "ERROR": format!("no receipt with uuid {uuid:?} was printed by this cashbox"),
        }),
    };
    Ok(Json(reply).into_response())
}

/// The CHECK answer for a stored receipt (pure): `DONE` with the fiscal
/// attributes, `ERROR` with the reason, else `WAIT`.
pub fn check_reply(uuid: &str, stored: &StoredReceipt, tz: chrono_tz::Tz) -> Value {
    match (stored.state, &stored.fiscal) {
        (ReceiptState::Fiscalized, Some(f)) => {
            use chrono::TimeZone;
            let end = tz
                .from_local_datetime(&f.date_time)
                .earliest()
                .map(|t| t.timestamp())
                .unwrap_or_else(|| f.date_time.and_utc().timestamp());
            json!({
                "STATUS": "DONE",
                "UUID": uuid,
                "REG_NUMBER_KKT": f.kkt_reg_id,
                "FISCAL_DOC_ATTR": f.fiscal_sign,
                "FISCAL_DOC_NUMBER": f.fiscal_document_number,
                "FISCAL_RECEIPT_NUMBER": f.receipt_number_in_shift,
                "FN_NUMBER": f.fiscal_drive_number,
                "SHIFT_NUMBER": f.shift_number,
                "PRINT_END_TIME": end,
            })
        }
        (ReceiptState::Rejected | ReceiptState::Discarded, _) => {
            let reason = stored
                .sync
                .as_ref()
                .and_then(|s| s.last_error.clone())
                .or_else(|| stored.history.last().and_then(|e| e.note.clone()))
                .unwrap_or_else(|| format!("the receipt was {}", stored.state));
            json!({"STATUS": "ERROR", "ERROR": reason})
        }
        _ => json!({"STATUS": "WAIT"}),
    }
}
