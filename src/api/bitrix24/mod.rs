//! The Bitrix24 REST cashbox dialect (seed 003): `POST /bitrix24/print` takes
//! a receipt (PHP-style form or JSON) and answers `{"UUID"}` or
//! `{"ERRORS": [...]}`; `POST /bitrix24/check` answers `WAIT`, `DONE` with the
//! fiscal attributes, or `ERROR`. `facts` holds the code tables and every
//! ASSUMED fact, `parse` turns a body into a domain draft; this file is the
//! HTTP shell.

pub mod facts;
pub mod parse;

use super::error::ApiError;
use super::{AppState, accept_draft, form};
use crate::domain::{ReceiptState, Source};
use crate::journal::{Accepted, StoredReceipt};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// `{"ERRORS": [...]}`: with HTTP 200 for everything about the request (the
/// seed's handler answers so), with the original status for limits and an
/// unavailable journal (Bitrix24 may then try again).
fn errors(e: ApiError) -> Response {
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
    let status = if e.status.is_server_error()
        || matches!(
            e.status,
            StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::TOO_MANY_REQUESTS
        ) {
        e.status
    } else {
        StatusCode::OK
    };
    (status, Json(json!({"ERRORS": list}))).into_response()
}

fn refused(message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
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
    let body = form::read(headers, body, app.max_body_bytes).await?;
    if let Err(message) = parse::authenticate(&body, &cfg) {
        tracing::warn!("bitrix24: request refused: {message}");
        return Err(refused(message));
    }
    Ok((body, cfg))
}

/// `POST /bitrix24/print`.
pub async fn print(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let (body, cfg) = authenticated(&app, &headers, body).await?;
        let p = parse::print(&body, &cfg).map_err(ApiError::invalid_receipt)?;
        let accepted = accept_draft(&app, Source::Bitrix24, Some(p.uuid.clone()), p.draft).await?;
        if let Accepted::Replayed(stored) = &accepted {
            tracing::info!(id = %stored.id, uuid = %p.uuid, "bitrix24: PRINT repeated; nothing new");
        }
        Ok::<_, ApiError>(p.uuid)
    }
    .await;
    match result {
        Ok(uuid) => Json(json!({"UUID": uuid})).into_response(),
        Err(e) => errors(e),
    }
}

/// `POST /bitrix24/check`.
pub async fn check(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let (body, _) = authenticated(&app, &headers, body).await?;
        let uuid = parse::uuid(&body).map_err(|v| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", v.message.clone()).with_detail(v)
        })?;
        let stored = app
            .journal
            .by_caller_key(Source::Bitrix24, uuid.clone())
            .await?;
        Ok::<_, ApiError>((uuid, stored))
    }
    .await;
    match result {
        Ok((uuid, Some(stored))) => Json(check_reply(&uuid, &stored, app.tz)).into_response(),
        Ok((uuid, None)) => Json(json!({
            "STATUS": "ERROR",
            "ERROR": format!("no receipt with uuid {uuid:?} was printed by this cashbox"),
        }))
        .into_response(),
        Err(e) => errors(e),
    }
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
