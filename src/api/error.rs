//! What went wrong with a request, independent of any dialect: a status, a
//! stable code, a message and the problems in detail. A handler (or the
//! policy, or a body reader) returns an [`ApiError`]; its response carries the
//! error in its extensions, and the error layer in [`super::dialect`] renders
//! it in the shape of the dialect the request's path belongs to. The native
//! shape is `{"error": {"code", "message", "details": [{"path", "rule",
//! "message"}]}}` (`native::render_error`).

use crate::domain::Violation;
use crate::journal::JournalError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Each with a path in the dialect's own terms.
    pub details: Vec<Violation>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: Violation) -> Self {
        self.details.push(detail);
        self
    }

    pub fn invalid_receipt(details: Vec<Violation>) -> Self {
        let n = details.len();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_receipt",
            message: format!(
                "the receipt breaks {n} rule{}; nothing was written",
                if n == 1 { "" } else { "s" }
            ),
            details,
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(path: &str, rule: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message.clone())
            .with_detail(Violation::new(path, rule, message))
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
}

impl From<JournalError> for ApiError {
    fn from(e: JournalError) -> Self {
        let message = e.to_string();
        match e {
            JournalError::Conflict { caller_key, .. } => ApiError::new(StatusCode::CONFLICT, "idempotency_conflict", message.clone())
                .with_detail(Violation::new(
                    "Idempotency-Key",
                    "same_key_same_body",
                    format!("key {caller_key:?} was first used with a different receipt; send a new key for a new receipt"),
                )),
            JournalError::ArchivedKey { caller_key, receipt_id, .. } => ApiError::new(StatusCode::CONFLICT, "caller_key_archived", message.clone())
                .with_detail(Violation::new(
                    "Idempotency-Key",
                    "key_names_archived_receipt",
                    format!("key {caller_key:?} names receipt {receipt_id}, moved to the archive; a new receipt needs a new key"),
                )),
            JournalError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            JournalError::Refused(details) => ApiError::invalid_receipt(details),
            JournalError::WrongState { state, .. } => ApiError::new(StatusCode::CONFLICT, "wrong_state", message.clone())
                .with_detail(Violation::new("state", "state_allows_action", format!("the receipt is {state}"))),
            JournalError::BadCursor(_) => ApiError::bad_request("after", "known_cursor", message),
            JournalError::Full => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "journal_full", message),
            JournalError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "journal_busy", message),
            JournalError::Closed | JournalError::Unavailable(_) | JournalError::Migration(_) => {
                tracing::error!(error = %message, "journal unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "journal_unavailable", message)
            }
        }
    }
}

/// The error waiting in a response's extensions for its dialect's renderer.
#[derive(Clone)]
pub struct Unrendered(pub Arc<ApiError>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(Unrendered(Arc::new(self)));
        response
    }
}
