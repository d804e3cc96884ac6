//! One audit line per request: method, path (never the query string, which
//! may carry anything), status, duration, receipt id and dialect — and no
//! header, body or token. Under systemd the fields arrive in journald as
//! structured fields (`METHOD`, `PATH`, `STATUS`, `RECEIPT_ID`,
//! `IDEMPOTENCY_KEY`, `DIALECT`…), so `journalctl -u fiscald RECEIPT_ID=…`
//! finds every request about one receipt. Also feeds the request metrics.

use crate::telemetry::{self, HttpLabels, OutcomeLabels};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Set on a response by a handler that knows which receipt it was about
/// (e.g. a repeated POST, whose reply carries no `Location`).
#[derive(Clone, Debug)]
pub struct AuditReceipt(pub String);

/// The dialect a path belongs to.
pub fn dialect_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "v1" => "native",
        "fiscalbox" => "fiscalbox",
        "bitrix24" => "bitrix24",
        "gateway" => "gateway",
        "metrics" => "metrics",
        _ => "ops",
    }
}

/// The path as a route template for metric labels: a receipt id becomes
/// `{id}`, so label values stay a small closed set.
pub fn route_of(path: &str) -> String {
    let mut out = Vec::new();
    let mut after_receipts = false;
    for seg in path.split('/') {
        if after_receipts {
            out.push("{id}");
            after_receipts = false;
        } else {
            after_receipts = seg == "receipts";
            out.push(seg);
        }
    }
    out.join("/")
}

/// The receipt id in `/v1/receipts/{id}…`, `/ops/receipts/{id}/…`, or a `Location`.
fn receipt_in_path(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/v1/receipts/")
        .or_else(|| path.strip_prefix("/ops/receipts/"))?;
    rest.split('/').next().filter(|id| !id.is_empty())
}

pub async fn audit(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let caller_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| {
            k.chars()
                .take(crate::api::MAX_CALLER_KEY_CHARS)
                .collect::<String>()
        });
    let response = next.run(req).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let dialect = dialect_of(&path);
    let route = if status == 404 {
        "unmatched".to_string()
    } else {
        route_of(&path)
    };
    let receipt_id = response
        .extensions()
        .get::<AuditReceipt>()
        .map(|r| r.0.clone())
        .or_else(|| {
            response
                .headers()
                .get(axum::http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(receipt_in_path)
                .map(str::to_string)
        })
        .or_else(|| receipt_in_path(&path).map(str::to_string));
    let t = telemetry::global();
    t.http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.clone(),
            status,
            dialect: dialect.to_string(),
        })
        .inc();
    t.http_seconds
        .get_or_create(&OutcomeLabels {
            outcome: format!("{}xx", status / 100),
        })
        .observe(took.as_secs_f64());
    if method == axum::http::Method::POST && route == "/v1/receipts" && status == 201 {
        t.record_accept(chrono::Utc::now().timestamp(), took);
    }
    tracing::info!(
        target: "fiscald::audit",
        method = %method,
        path = %path,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        receipt_id = receipt_id.as_deref().unwrap_or(""),
        idempotency_key = caller_key.as_deref().unwrap_or(""),
        dialect,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_and_receipt_ids_come_from_the_path() {
        assert_eq!(dialect_of("/v1/receipts"), "native");
        assert_eq!(dialect_of("/fiscalbox/api/v1/receipt"), "fiscalbox");
        assert_eq!(dialect_of("/"), "ops");
        assert_eq!(dialect_of("/metrics"), "metrics");
        assert_eq!(receipt_in_path("/v1/receipts/abc/retry"), Some("abc"));
        assert_eq!(receipt_in_path("/ops/receipts/r1/discard"), Some("r1"));
        assert_eq!(receipt_in_path("/v1/receipts"), None);
        assert_eq!(
            route_of("/v1/receipts/abc/retry"),
            "/v1/receipts/{id}/retry"
        );
        assert_eq!(route_of("/v1/receipts"), "/v1/receipts");
        assert_eq!(
            route_of("/ops/receipts/r1/discard"),
            "/ops/receipts/{id}/discard"
        );
        assert_eq!(route_of("/"), "/");
        assert_eq!(receipt_in_path("/v1/receipts/"), None);
    }
}
