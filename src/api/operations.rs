//! Operator endpoints for fiscal operations that are not sales: correction
//! receipts (`POST /v1/corrections`) and cash in / cash out
//! (`POST /v1/cash/in`, `POST /v1/cash/out`, `GET /v1/cash/{id}`).
//!
//! Each is journaled before the reply and carried out exactly once by the
//! device worker, like a receipt. A backend without such an operation
//! answers `409 not_supported_by_backend` and journals nothing: the cloud
//! processing has no cash-in/out document and no documented correction
//! receipt (see /work/shared/spec/bifit-processing.md), so both are
//! register-only until that is verified.

use super::accept::{Outcome, accept};
use super::dialect::Dialect;
use super::error::ApiError;
use super::native::caller_key;
use super::policy::require_operator;
use super::{AppState, body, native};
use crate::config::Backend;
use crate::domain::cash::{CashDirection, CashOperation};
use crate::domain::{Cashier, Correction, CorrectionKind, Money, Violation};
use crate::journal::{CashAccepted, StoredCash};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

/// Longest tag 1179 (the order's number) accepted.
pub const MAX_BASIS_NUMBER_CHARS: usize = 32;

type Shared = State<Arc<AppState>>;

/// The routes, relative to the native dialect's `/v1`: operator only.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/corrections", post(create_correction))
        .route("/cash/in", post(cash_in))
        .route("/cash/out", post(cash_out))
        .route("/cash/{id}", get(get_cash))
        .route_layer(axum::middleware::from_fn(require_operator))
}

/// The permissive-mode check of a sale's marking codes, before it is
/// journaled: fills the receipt's `marking_checks` (tag 1260), or refuses
/// (422 `marking_refused`, each code's pointer and reason; 503
/// `marking_unavailable` when no service answered and the config refuses).
/// A repeat of a caller key already journaled is not checked again (the
/// journal answers it with the original).
pub(super) async fn check_marking(
    app: &AppState,
    dialect: &Dialect,
    caller_key: Option<&str>,
    receipt: &mut crate::domain::Receipt,
) -> Result<(), ApiError> {
    let source = dialect.source;
    let Some(marking) = &app.marking else {
        return Ok(());
    };
    if !crate::marking::needs_check(receipt) {
        return Ok(());
    }
    if let Some(key) = caller_key
        && app
            .journal
            .caller_key_known(source, key.to_string())
            .await?
    {
        return Ok(());
    }
    use crate::marking::client::CheckError;
    marking.check_receipt(receipt).await.map_err(|e| match e {
        CheckError::Refused(v) => {
            let n = v.len();
            v.into_iter()
                .map(|mut v| {
                    v.path = (dialect.field_path)(&v.path);
                    v
                })
                .fold(
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "marking_refused",
                    format!(
                        "the permissive-mode check refused {n} marking code(s): the sale may not go ahead; nothing was journaled"
                    ),
                ),
                ApiError::with_detail,
            )
        }
        e @ CheckError::Unavailable(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "marking_unavailable", e.to_string())
        }
    })
}

fn register_only(app: &AppState, what: &str) -> Result<(), ApiError> {
    if app.backend == Backend::Register {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "not_supported_by_backend",
        format!(
            "{what} is not supported by the {} backend: it has no such document; use a till with [fiscal] backend = \"register\"",
            match app.backend {
                Backend::Cloud => "cloud",
                Backend::Register => "register",
                Backend::Fiscalbox => "fiscalbox",
            }
        ),
    ))
}

/// Parse the `correction` object: `{"type": "self"|"by_order",
/// "basis_date": "YYYY-MM-DD", "basis_number": "…"}`.
pub fn parse_correction(v: Option<&Value>) -> Result<Correction, Vec<Violation>> {
    let mut errors = Vec::new();
    let Some(Value::Object(map)) = v else {
        return Err(vec![Violation::new(
            "/correction",
            "required",
            "a correction needs a correction object: {\"type\": \"self\" or \"by_order\", \"basis_date\": \"YYYY-MM-DD\", \"basis_number\": \"…\"}",
        )]);
    };
    for key in map.keys() {
        if !["type", "basis_date", "basis_number"].contains(&key.as_str()) {
            errors.push(Violation::new(
                format!("/correction/{key}"),
                "unknown_field",
                "unknown field; expected one of: type, basis_date, basis_number",
            ));
        }
    }
    let kind = match map.get("type").and_then(Value::as_str) {
        Some(t) => CorrectionKind::from_code(t),
        None => None,
    };
    if kind.is_none() {
        errors.push(Violation::new(
            "/correction/type",
            "one_of",
            format!(
                "type (tag 1173) must be one of: {}",
                CorrectionKind::codes()
            ),
        ));
    }
    let date = map
        .get("basis_date")
        .and_then(Value::as_str)
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    if date.is_none() {
        errors.push(Violation::new(
            "/correction/basis_date",
            "date",
            "basis_date (tag 1178) must be a date YYYY-MM-DD: the day of the settlement being corrected",
        ));
    }
    let number = match map.get("basis_number") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            errors.push(Violation::new(
                "/correction/basis_number",
                "type",
                "must be a string",
            ));
            String::new()
        }
    };
    if number.chars().count() > MAX_BASIS_NUMBER_CHARS {
        errors.push(Violation::new(
            "/correction/basis_number",
            "max_length",
            format!("basis_number (tag 1179) may be at most {MAX_BASIS_NUMBER_CHARS} characters"),
        ));
    }
    if kind == Some(CorrectionKind::ByOrder) && number.is_empty() {
        errors.push(Violation::new(
            "/correction/basis_number",
            "required",
            "a correction by order needs the order's number (tag 1179)",
        ));
    }
    match (kind, date) {
        (Some(kind), Some(basis_date)) if errors.is_empty() => Ok(Correction {
            kind,
            basis_date,
            basis_number: number,
        }),
        _ => Err(errors),
    }
}

/// `POST /v1/corrections`: a native receipt body plus `correction`.
async fn create_correction(
    State(app): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller_key = caller_key(&headers)?;
    let mut json = body::read_json(&headers, body, app.max_body_bytes).await?;
    register_only(&app, "a correction receipt")?;
    let correction = json.as_object_mut().and_then(|m| m.remove("correction"));
    let draft = match (
        native::parse_receipt(&json),
        parse_correction(correction.as_ref()),
    ) {
        (Ok(mut d), Ok(c)) => {
            d.correction = Some(c);
            d
        }
        (Ok(_), Err(e)) => return Err(ApiError::invalid_receipt(e)),
        (Err(mut e), other) => {
            if let Err(more) = other {
                e.extend(more);
            }
            return Err(ApiError::invalid_receipt(e));
        }
    };
    match accept(&app, &native::DIALECT, caller_key, draft).await? {
        Outcome::Created(stored) => {
            tracing::info!(id = %stored.id, number = stored.number, "correction receipt accepted");
            let location = format!("/v1/receipts/{}", stored.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(native::render(&stored)),
            )
                .into_response())
        }
        Outcome::Replayed(stored) => {
            Ok((StatusCode::OK, Json(native::render(&stored))).into_response())
        }
    }
}

async fn cash_in(State(app): Shared, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    cash(app, headers, body, CashDirection::In).await
}

async fn cash_out(
    State(app): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    cash(app, headers, body, CashDirection::Out).await
}

/// Parse `{"amount": "100.00", "cashier": {"name": "…"}}`.
pub fn parse_cash(v: &Value, direction: CashDirection) -> Result<CashOperation, Vec<Violation>> {
    let mut errors = Vec::new();
    let Some(map) = v.as_object() else {
        return Err(vec![Violation::new("", "type", "must be a JSON object")]);
    };
    for key in map.keys() {
        if !["amount", "cashier"].contains(&key.as_str()) {
            errors.push(Violation::new(
                format!("/{key}"),
                "unknown_field",
                "unknown field; expected one of: amount, cashier",
            ));
        }
    }
    let amount = match map.get("amount") {
        Some(Value::Number(n)) => Money::parse(&n.to_string()).ok(),
        Some(Value::String(s)) => Money::parse(s).ok(),
        _ => None,
    };
    if amount.is_none() {
        errors.push(Violation::new(
            "/amount",
            "decimal",
            "amount is required: a decimal number or string with at most 2 decimals, e.g. \"1000.00\"",
        ));
    }
    let cashier = match map.get("cashier") {
        None | Some(Value::Null) => None,
        Some(c) => match serde_json::from_value::<Cashier>(c.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(Violation::new("/cashier", "type", format!("{e}")));
                None
            }
        },
    };
    let Some(amount) = amount else {
        return Err(errors);
    };
    let op = CashOperation {
        direction,
        amount,
        cashier,
    };
    errors.extend(op.check());
    if errors.is_empty() {
        Ok(op)
    } else {
        Err(errors)
    }
}

fn render_cash(c: &StoredCash) -> Value {
    json!({
        "id": c.id,
        "direction": c.operation.direction.code(),
        "amount": c.operation.amount.to_decimal(),
        "cashier": c.operation.cashier,
        "caller_key": c.caller_key,
        "state": c.state,
        "attempts": c.attempts,
        "last_error": c.last_error,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

async fn cash(
    app: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    direction: CashDirection,
) -> Result<Response, ApiError> {
    let caller_key = caller_key(&headers)?;
    let json = body::read_json(&headers, body, app.max_body_bytes).await?;
    register_only(
        &app,
        match direction {
            CashDirection::In => "cash in",
            CashDirection::Out => "cash out",
        },
    )?;
    let op = parse_cash(&json, direction).map_err(|e| {
        e.into_iter().fold(
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "the cash operation is invalid",
            ),
            ApiError::with_detail,
        )
    })?;
    match app
        .journal
        .accept_cash(op, caller_key, app.write_timeout)
        .await?
    {
        CashAccepted::Created(c) => {
            tracing::info!(id = c.id, direction = direction.code(), amount = %c.operation.amount, "cash operation accepted");
            Ok((
                StatusCode::ACCEPTED,
                [(header::LOCATION, format!("/v1/cash/{}", c.id))],
                Json(render_cash(&c)),
            )
                .into_response())
        }
        CashAccepted::Replayed(c) => Ok((StatusCode::OK, Json(render_cash(&c))).into_response()),
    }
}

async fn get_cash(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(&format!("cash operation {id:?}"));
    let n: i64 = id.parse().map_err(|_| not_found())?;
    match app.journal.get_cash(n).await? {
        Some(c) => Ok(Json(render_cash(&c)).into_response()),
        None => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_need_a_type_a_date_and_by_order_a_number() {
        let ok =
            parse_correction(Some(&json!({"type": "self", "basis_date": "2025-12-20"}))).unwrap();
        assert_eq!(ok.kind, CorrectionKind::SelfInitiated);
        assert_eq!(ok.basis_number, "");
        let e = parse_correction(Some(
            &json!({"type": "by_order", "basis_date": "20.12.2025"}),
        ))
        .unwrap_err();
        let rules: Vec<_> = e.iter().map(|v| (v.path.as_str(), v.rule)).collect();
        assert_eq!(
            rules,
            [
                ("/correction/basis_date", "date"),
                ("/correction/basis_number", "required")
            ]
        );
        assert_eq!(parse_correction(None).unwrap_err()[0].rule, "required");
    }

    #[test]
    fn cash_amounts_are_decimals_and_positive() {
        let op = parse_cash(&json!({"amount": "1000.50"}), CashDirection::Out).unwrap();
        assert_eq!(op.amount, Money(100_050));
        let e = parse_cash(&json!({"amount": "0", "x": 1}), CashDirection::In).unwrap_err();
        let rules: Vec<_> = e.iter().map(|v| v.rule).collect();
        assert_eq!(rules, ["unknown_field", "positive"]);
        let e = parse_cash(&json!({"amount": 1.005}), CashDirection::In).unwrap_err();
        assert_eq!(e[0].path, "/amount");
    }
}
