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
use axum::extract::{Request, State};
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
/// The first is the one paths outside every prefix answer in.
pub static DIALECTS: &[&Dialect] = &[&native::DIALECT, &super::fiscalbox::DIALECT];

/// A set of dialects, looked up by path.
#[derive(Clone, Copy)]
pub struct Dialects(pub &'static [&'static Dialect]);

impl Dialects {
    /// The dialect a path belongs to; paths of none answer in the first's shape.
    pub fn for_path(&self, path: &str) -> &'static Dialect {
        self.0
            .iter()
            .copied()
            .find(|d| {
                path.strip_prefix(d.prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .unwrap_or(self.0[0])
    }
}

/// The outermost layer: an error anywhere inside (policy, routing, body,
/// handler) is rendered in the envelope of the request's dialect.
pub async fn render_errors(
    State(dialects): State<Dialects>,
    request: Request,
    next: Next,
) -> Response {
    let dialect = dialects.for_path(request.uri().path());
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

/// The daemon's router: every registered dialect behind the front door.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, Dialects(DIALECTS))
}

/// The router for a given set of dialects (tests plug in their own).
pub fn router_with(state: Arc<AppState>, dialects: Dialects) -> Router {
    let mut app = Router::new();
    for d in dialects.0 {
        app = app.nest(d.prefix, (d.routes)());
    }
    app.merge(super::page::routes())
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see docs/API.md",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            super::policy::Front {
                app: state.clone(),
                dialects,
            },
            super::policy::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            dialects,
            render_errors,
        ))
        .layer(axum::middleware::from_fn(super::audit::audit))
        .with_state(state)
}
