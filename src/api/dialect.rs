//! The seam every API dialect plugs into. A dialect is a module with:
//!
//! - a `parse` function from its request into a domain [`crate::domain::Draft`]
//!   (reporting shape problems in its own field paths),
//! - a `render` function from a stored receipt into its reply,
//! - an error renderer ([`Dialect::render_error`]) — every error on a path
//!   under its prefix is answered in its envelope, including 404s and the
//!   policy's 401/403s,
//! - a map from the domain's JSON pointers to its own field paths
//!   ([`Dialect::field_path`]), used for the rule violations found after parsing,
//! - a router nested under its prefix, with its own fallback,
//!
//! and one line in [`DIALECTS`]. Its handlers hand a `Draft` to
//! [`super::accept::accept`], the one accept path (validate → journal →
//! reply); nothing after that knows which dialect a receipt came in through.

use super::error::{ApiError, Unrendered};
use super::{AppState, native};
use crate::domain::Source;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// One API dialect, as the seam sees it.
pub struct Dialect {
    /// Names the dialect in logs and in `[api.auth]`; stored with its receipts.
    pub source: Source,
    /// Every path of the dialect starts with it (`/v1`, `/fiscalbox`…).
    pub prefix: &'static str,
    /// Its routes, relative to `prefix`, with its own fallback.
    pub routes: fn() -> Router<Arc<AppState>>,
    /// Its error envelope.
    pub render_error: fn(&ApiError) -> Response,
    /// A domain JSON pointer (`/items/0/price`) in the dialect's own terms.
    pub field_path: fn(&str) -> String,
}

/// Every dialect the daemon serves: the one place a new dialect is registered.
pub static DIALECTS: &[&Dialect] = &[
    &native::DIALECT,
    &super::bitrix24::DIALECT,
    &super::gateway::DIALECT,
];

/// The dialect a path belongs to; paths of none answer in the native shape.
pub fn for_path(path: &str) -> &'static Dialect {
    DIALECTS
        .iter()
        .copied()
        .find(|d| {
            path.strip_prefix(d.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .unwrap_or(&native::DIALECT)
}

/// The outermost layer: an error anywhere inside (policy, routing, body,
/// handler) is rendered in the envelope of the request's dialect.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let dialect = for_path(request.uri().path());
    let response = next.run(request).await;
    match response.extensions().get::<Unrendered>().cloned() {
        None => response,
        Some(Unrendered(error)) => {
            let mut rendered = (dialect.render_error)(&error);
            // Headers set on the way out (CORS, WWW-Authenticate) stay.
            for (name, value) in response.headers() {
                if name != axum::http::header::CONTENT_TYPE
                    && name != axum::http::header::CONTENT_LENGTH
                {
                    rendered.headers_mut().append(name.clone(), value.clone());
                }
            }
            if error.status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
                rendered.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
            }
            rendered
        }
    }
}

/// Build the whole router: every dialect nested under its prefix.
pub fn router(state: Arc<AppState>) -> Router {
    let mut app = Router::new();
    for d in DIALECTS {
        app = app.nest(d.prefix, (d.routes)());
    }
    app.fallback(|| async {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; see docs/API.md",
        )
    })
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        super::policy::enforce,
    ))
    .layer(axum::middleware::from_fn(render_errors))
    .with_state(state)
}
