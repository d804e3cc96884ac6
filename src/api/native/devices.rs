//! Device endpoints: `GET /v1/devices`, `POST /v1/drawer/open`,
//! `POST /v1/shifts/open`, `POST /v1/shifts/close` (Z report),
//! `POST /v1/reports/x`. Each action runs on the device at once and answers
//! with the device's state after it, or with an error naming the device and
//! what is wrong with it.

use super::Shared;
use crate::api::error::ApiError;
use crate::devices::manager::{ActionError, Devices};
use crate::devices::runtime::DeviceError;
use crate::journal::JobKind;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let message = e.to_string();
        match e {
            ActionError::NotConfigured(_) => {
                ApiError::new(StatusCode::CONFLICT, "device_not_configured", message)
            }
            ActionError::Device(d) => match d {
                DeviceError::Unavailable(_) | DeviceError::Hangup(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "device_unavailable",
                    message,
                ),
                DeviceError::NotReady(_) => {
                    ApiError::new(StatusCode::CONFLICT, "device_not_ready", message)
                }
                DeviceError::Rejected(_) => {
                    ApiError::new(StatusCode::CONFLICT, "device_refused", message)
                }
                DeviceError::Link(_) => {
                    ApiError::new(StatusCode::BAD_GATEWAY, "device_error", message)
                }
            },
        }
    }
}

fn devices(app: &crate::api::AppState) -> Result<&Arc<Devices>, ApiError> {
    app.devices
        .as_ref()
        .ok_or_else(|| ActionError::NotConfigured("device").into())
}

pub(super) async fn list(State(app): Shared) -> Result<Response, ApiError> {
    let counts = app
        .journal
        .job_counts(&[JobKind::Register, JobKind::Print])
        .await?;
    let (statuses, drawer) = match &app.devices {
        Some(d) => (d.statuses(), d.drawer_view()),
        None => (Vec::new(), json!({"via": "none"})),
    };
    Ok(Json(json!({
        "backend": app.backend,
        "devices": statuses,
        "drawer": drawer,
        "jobs": counts,
    }))
    .into_response())
}

/// Operator: print a receipt again (marked as a copy) — or for the first
/// time, on a till that had no printer when it was sold.
pub(super) async fn print_receipt(
    State(app): Shared,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    if app.devices.as_ref().is_none_or(|d| d.printer.is_none()) {
        return Err(ActionError::NotConfigured("receipt printer").into());
    }
    let stored = app.journal.operator_print(id).await?;
    tracing::info!(id = %stored.id, number = stored.number, "operator: print requested");
    Ok((StatusCode::ACCEPTED, Json(super::render(&stored))).into_response())
}

pub(super) async fn open_drawer(State(app): Shared) -> Result<Response, ApiError> {
    devices(&app)?.open_drawer().await?;
    tracing::info!("operator: cash drawer opened");
    Ok(Json(json!({"opened": true})).into_response())
}

pub(super) async fn open_shift(State(app): Shared) -> Result<Response, ApiError> {
    let register = devices(&app)?.open_shift().await?;
    tracing::info!("operator: shift opened");
    Ok(Json(json!({"register": register})).into_response())
}

pub(super) async fn close_shift(State(app): Shared) -> Result<Response, ApiError> {
    let register = devices(&app)?.close_shift().await?;
    tracing::info!("operator: shift closed (Z report)");
    Ok(Json(json!({"register": register})).into_response())
}

pub(super) async fn x_report(State(app): Shared) -> Result<Response, ApiError> {
    let register = devices(&app)?.x_report().await?;
    tracing::info!("operator: X report");
    Ok(Json(json!({"register": register})).into_response())
}
