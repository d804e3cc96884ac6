//! The payment gateway's fiscalization dialect (seed 004): `POST /gateway/sale`
//! takes the merchant's form-encoded sale request with its `cheque`, and
//! `POST /gateway/status` tells where the receipt of an order stands.
//! `facts` holds the gateway's code tables and every ASSUMED fact, `parse`
//! turns a request into a domain draft; this file is the HTTP shell.

pub mod facts;
pub mod parse;

use super::AppState;
use super::accept::{Outcome, accept};
use super::body::{self, Format};
use super::dialect::Dialect;
use super::error::ApiError;
use crate::domain::{Source, Violation};
use crate::journal::StoredReceipt;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;

/// The gateway answers in fiscald's own error envelope (docs/API.md).
pub static DIALECT: Dialect = Dialect {
    source: Source::Gateway,
    prefix: "/gateway",
    routes,
    render_error: super::native::render_error,
    field_path,
};

fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/sale", post(sale))
        .route("/status", post(status))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the gateway dialect has /gateway/sale and /gateway/status",
            )
        })
}

/// A domain pointer in the sale request's terms.
fn field_path(pointer: &str) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["total"] | ["payments", ..] => "/amount".into(),
        ["buyer", "email"] => "/email".into(),
        ["buyer", "phone"] => "/phone".into(),
        ["items"] => "/cheque/positions".into(),
        ["items", i, "name"] => format!("/cheque/positions/{i}/description"),
        ["items", i, "vat"] => format!("/cheque/positions/{i}/tax"),
        ["items", i, "total"] => format!("/cheque/positions/{i}/price"),
        ["items", i, rest @ ..] => format!("/cheque/positions/{i}/{}", rest.join("/")),
        ["tax_system"] => "/cheque/tax_system".into(),
        ["kind"] => "/cheque/cheque_type".into(),
        _ => pointer.to_string(),
    }
}

/// A flat form (no nesting) as field → value; a field given twice or nested
/// is an error naming it.
pub fn flat(v: &Value) -> Result<parse::Form, String> {
    let Some(map) = v.as_object() else {
        return Err("the body must be a form of fields".into());
    };
    let mut out = parse::Form::new();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            Value::Array(_) => return Err(format!("field {k} is given more than once")),
            Value::Object(_) => return Err(format!("field {k} must be a plain value")),
        };
        out.insert(k.clone(), text);
    }
    Ok(out)
}

async fn read(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(parse::Form, Arc<crate::config::GatewaySettings>), ApiError> {
    let cfg = app
        .gateway
        .clone()
        .ok_or_else(|| ApiError::not_found("the gateway dialect ([gateway] enabled = false)"))?;
    let body = body::read(headers, body, app.max_body_bytes, &[Format::Form]).await?;
    let form = flat(&body).map_err(|m| ApiError::bad_request("", "flat_form", m))?;
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
async fn sale(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (form, cfg) = read(&app, &headers, body).await?;
    let sale = parse::sale(&form, &cfg).map_err(sale_error)?;
    let id = sale.client_orderid.clone();
    let (status, stored) = match accept(&app, &DIALECT, Some(id), sale.draft).await? {
        Outcome::Created(s) => (StatusCode::CREATED, s),
        Outcome::Replayed(s) => (StatusCode::OK, s),
    };
    Ok((status, Json(reply(&stored))).into_response())
}

/// `POST /gateway/status`: where an order's receipt stands.
async fn status(
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
