//! The receipt archive over HTTP: `GET /v1/archive` lists the monthly files
//! (with their checksums and the last retention run) and
//! `GET /v1/archive/receipts/{id}` finds a receipt moved there, rendered as
//! `GET /v1/receipts/{id}` renders a live one, with `"archived": true`.

use super::render;
use crate::api::AppState;
use crate::api::error::ApiError;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// Paths relative to the native prefix `/v1`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/archive", get(list))
        .route("/archive/receipts/{id}", get(find))
}

async fn list(State(app): Shared) -> Result<Response, ApiError> {
    let files = app.journal.archives().await?;
    let policy = app.journal.retention_policy();
    Ok(Json(json!({
        "dir": policy.archive_dir.display().to_string(),
        "retain_days": policy.retain_days,
        "files": files,
        "last_run": app.journal.last_retention(),
    }))
    .into_response())
}

async fn find(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::bad_request(
            "id",
            "uuid",
            format!("{id:?} is not a receipt id (a UUID)"),
        ));
    }
    match app.journal.find_archived(id.clone()).await? {
        Some(r) => {
            let mut body = render(&r);
            body["archived"] = json!(true);
            Ok(Json(body).into_response())
        }
        None => Err(ApiError::not_found(&format!("archived receipt {id:?}"))),
    }
}
