//! The payment gateway's fiscalization dialect (seed 004): `POST /gateway/sale`
//! takes the merchant's form-encoded sale request with its `cheque`, and
//! `POST /gateway/status` tells where the receipt of an order stands.
//! `facts` holds the gateway's code tables and every ASSUMED fact, `parse`
//! turns a request into a domain draft; this file is the HTTP shell.

pub mod facts;
pub mod parse;

use super::error::ApiError;
use super::{AppState, accept_draft, form};
use crate::domain::{Source, Violation};
use crate::journal::{Accepted, StoredReceipt};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use std::sync::Arc;

async fn read(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(parse::Form, Arc<crate::config::GatewaySettings>), ApiError> {
    let cfg = app
        .gateway
        .clone()
        .ok_or_else(|| ApiError::not_found("the gateway dialect ([gateway] enabled = false)"))?;
    let body = form::read(headers, body, app.max_body_bytes).await?;
    let form = form::flat(&body).map_err(|m| ApiError::bad_request("", "flat_form", m))?;
    Ok((form, cfg))
}

fn sale_error(e: parse::SaleError) -> ApiError {
    match e {
        parse::SaleError::Unauthorized(m) => {
            tracing::warn!("gateway: request refused: {m}");
            ApiError::new(StatusCode::FORBIDDEN, "control_mismatch", m.clone())
                .with_detail(Violation::new("/control", "signature", m))
        }
        parse::SaleError::Invalid(details) => ApiError::invalid_receipt(details),
    }
}

/// `POST /gateway/sale`: 201 with the receipt (200 when the order was seen
/// before with the same cheque), or the error shape of docs/API.md.
pub async fn sale(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (form, cfg) = read(&app, &headers, body).await?;
    let sale = parse::sale(&form, &cfg).map_err(sale_error)?;
    let id = sale.client_orderid.clone();
    let (status, stored) = match accept_draft(&app, Source::Gateway, Some(id), sale.draft).await? {
        Accepted::Created(s) => (StatusCode::CREATED, s),
        Accepted::Replayed(s) => (StatusCode::OK, s),
    };
    Ok((status, Json(reply(&stored))).into_response())
}

/// `POST /gateway/status`: where an order's receipt stands.
pub async fn status(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (form, cfg) = read(&app, &headers, body).await?;
    let id = parse::check_status(&form, &cfg).map_err(sale_error)?;
    match app
        .journal
        .by_caller_key(Source::Gateway, id.clone())
        .await?
    {
        Some(stored) => Ok(Json(reply(&stored)).into_response()),
        None => Err(ApiError::not_found(&format!("order {id:?}"))),
    }
}

/// The reply to a sale or status call (pure), documented in docs/REMOTE.md.
pub fn reply(stored: &StoredReceipt) -> Value {
    let fiscal = stored.fiscal.as_ref().map(|f| {
        json!({
            "fiscal_document_number": f.fiscal_document_number,
            "fiscal_sign": f.fiscal_sign,
            "fiscal_drive_number": f.fiscal_drive_number,
            "kkt_reg_id": f.kkt_reg_id,
            "shift_number": f.shift_number,
            "receipt_number_in_shift": f.receipt_number_in_shift,
            "date_time": f.date_time.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "qr": stored.fiscal_qr,
        })
    });
    let error = stored.sync.as_ref().and_then(|s| s.last_error.clone());
    json!({
        "type": "fiscal-receipt",
        "status": stored.state.code(),
        "client_orderid": stored.caller_key,
        "receipt_id": stored.id,
        "receipt_number": stored.number,
        "total": stored.receipt.total.to_decimal(),
        "fiscal": fiscal,
        "error": error,
    })
}
