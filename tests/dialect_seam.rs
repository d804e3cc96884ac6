//! The dialect seam with a toy dialect plugged in beside the native one, as
//! ARCHITECTURE.md "Adding a dialect" describes: its form body, its field
//! paths in rule violations, its error envelope for every error on its paths
//! (its own fallback, the front door's refusals), the one accept path, and
//! the journal waking the workers — over real HTTP on port 0.

mod common;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use fiscald::api::accept::{Outcome, accept};
use fiscald::api::body::{self, Format};
use fiscald::api::dialect::{Dialect, Dialects};
use fiscald::api::error::ApiError;
use fiscald::api::{AppState, native, policy};
use fiscald::clock::SystemClock;
use fiscald::domain::{
    CalculationMethod, Draft, DraftItem, Line, Money, Payment, PaymentKind, PaymentSubject,
    Quantity, ReceiptKind, Source, Vat, Violation,
};
use fiscald::journal::{Journal, Options};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

static TOY: Dialect = Dialect {
    source: Source::Fiscalbox,
    prefix: "/toy",
    routes: toy_routes,
    render_error: toy_error,
    field_path: toy_path,
};

static BOTH: &[&Dialect] = &[&native::DIALECT, &TOY];

fn toy_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/sell", post(toy_sell))
        .route(
            "/close",
            get(|| async { Json(json!({"ok": true, "closed": true})) })
                .route_layer(axum::middleware::from_fn(policy::require_operator)),
        )
        .fallback(|| async { ApiError::not_found("toy command") })
}

fn toy_error(e: &ApiError) -> Response {
    let fields: Vec<&str> = e.details.iter().map(|d| d.path.as_str()).collect();
    (
        e.status,
        Json(json!({"ok": false, "reason": e.code, "fields": fields})),
    )
        .into_response()
}

/// `/items/0/name` → `goods[0][title]`, `/payments/…` → `cash`.
fn toy_path(pointer: &str) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["items", i, field, ..] => {
            let f = match *field {
                "name" => "title",
                "price" => "cost",
                "vat" => "tax",
                other => other,
            };
            format!("goods[{i}][{f}]")
        }
        ["payments", ..] => "cash".into(),
        _ => pointer.into(),
    }
}

/// `goods[0][title]=…&goods[0][cost]=…&goods[0][tax]=22&cash=…`
async fn toy_sell(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let form = body::read(&headers, body, app.max_body_bytes, &[Format::Form]).await?;
    let mut bad = Vec::new();
    let mut items = Vec::new();
    for (i, g) in form["goods"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let text = |k: &str| g[k].as_str().unwrap_or("").to_string();
        let cost = Money::parse(&text("cost"))
            .map_err(|_| Violation::new(format!("goods[{i}][cost]"), "decimal", "not a decimal"));
        match cost {
            Ok(price) => items.push(DraftItem {
                line: Line {
                    name: text("title"),
                    quantity: Quantity(1000),
                    price,
                    vat: Vat::from_code(&text("tax")).unwrap_or(Vat::None),
                    payment_subject: PaymentSubject::Commodity,
                    calculation_method: CalculationMethod::FullPay,
                    barcode: None,
                    class_code: None,
                    package_code: None,
                    marking: Vec::new(),
                    unit: Default::default(),
                    discount: Money(0),
                    agent: None,
                },
                total: None,
            }),
            Err(v) => bad.push(v),
        }
    }
    let cash = Money::parse(form["cash"].as_str().unwrap_or("")).unwrap_or(Money(0));
    if !bad.is_empty() {
        return Err(ApiError::invalid_receipt(bad));
    }
    let draft = Draft {
        kind: ReceiptKind::Sale,
        tax_system: None,
        currency: None,
        items,
        payments: vec![Payment {
            kind: PaymentKind::Cash,
            amount: cash,
        }],
        total: None,
        cashier: None,
        buyer: None,
        discount: None,
        original_date: None,
        uz: None,
        correction: None,
    };
    match accept(&app, &TOY, None, draft).await? {
        Outcome::Created(r) => Ok((
            StatusCode::CREATED,
            Json(json!({"ok": true, "number": r.number})),
        )
            .into_response()),
        Outcome::Replayed(r) => Ok(Json(json!({"ok": true, "number": r.number})).into_response()),
    }
}

struct Toy {
    addr: std::net::SocketAddr,
    journal: Journal,
    _dir: tempfile::TempDir,
}

async fn serve(tweak: impl FnOnce(&mut fiscald::config::Settings)) -> Toy {
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::settings(dir.path());
    tweak(&mut s);
    let options = Options::from_settings(&s, s.journal_path.clone());
    let journal = Journal::open(options, Arc::new(SystemClock)).unwrap();
    let state = AppState {
        journal: journal.clone(),
        profile: s.profile.clone(),
        timezone: s.timezone.name().to_string(),
        tz: s.timezone,
        clock: Arc::new(SystemClock),
        max_body_bytes: s.max_body_bytes,
        write_timeout: s.write_timeout,
        started: Instant::now(),
        api: s.api.clone(),
        sync_status: None,
        devices: None,
        backend: s.devices.backend,
        ops: Arc::new(fiscald::api::page::OpsState::new(
            fiscald::api::status::ConfigSummary::of(&s),
        )),
        deadlines: Default::default(),
        fiscalbox: None,
        marking: None,
        bitrix24: None,
        gateway: None,
    };
    let app = fiscald::api::dialect::router_with(Arc::new(state), Dialects(BOTH));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Toy {
        addr,
        journal,
        _dir: dir,
    }
}

async fn call(t: &Toy, head: &str, body: &str) -> (u16, Value) {
    let (status, _, body) = common::raw_http(
        t.addr,
        &format!("{head}\r\nHost: 127.0.0.1:{}", t.addr.port()),
        body,
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_dialect_plugs_into_the_seam() {
    let t = serve(|_| {}).await;
    let form = "Content-Type: application/x-www-form-urlencoded";

    // Its form body goes through the one accept path into the journal, and
    // the journal wakes the workers (no handler does).
    let sync_woken = t.journal.outbox().sync.clone();
    let woken = tokio::spawn(async move { sync_woken.notified().await });
    let (status, r) = call(
        &t,
        &format!("POST /toy/sell HTTP/1.1\r\n{form}"),
        "goods%5B0%5D%5Btitle%5D=Tea&goods%5B0%5D%5Bcost%5D=100.00&goods%5B0%5D%5Btax%5D=22&cash=100.00",
    )
    .await;
    assert_eq!((status, &r["ok"]), (201, &json!(true)), "{r}");
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("the journal woke the sync worker")
        .unwrap();
    let stored = t
        .journal
        .list(None, None, 10)
        .await
        .unwrap()
        .receipts
        .remove(0);
    assert_eq!(stored.source, Source::Fiscalbox);
    assert_eq!(stored.receipt.total, Money(10_000));

    // A broken rule comes back in its field names and its envelope.
    let (status, r) = call(
        &t,
        &format!("POST /toy/sell HTTP/1.1\r\n{form}"),
        "goods[0][title]=&goods[0][cost]=1.00&goods[0][tax]=22&cash=1.00",
    )
    .await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(
        r,
        json!({"ok": false, "reason": "invalid_receipt", "fields": ["goods[0][title]"]})
    );
    // So does a body it does not take, and a path it does not have.
    let (status, r) = call(
        &t,
        "POST /toy/sell HTTP/1.1\r\nContent-Type: application/json",
        "{}",
    )
    .await;
    assert_eq!(
        (status, &r["reason"]),
        (415, &json!("unsupported_media_type"))
    );
    let (status, r) = call(&t, "GET /toy/nothing HTTP/1.1", "").await;
    assert_eq!((status, &r["reason"]), (404, &json!("not_found")), "{r}");
    // The front door's refusals too, for its state-changing GET.
    let (status, r) = call(
        &t,
        "GET /toy/close HTTP/1.1\r\nSec-Fetch-Site: cross-site",
        "",
    )
    .await;
    assert_eq!(
        (status, &r["reason"]),
        (403, &json!("cross_site_request")),
        "{r}"
    );
    let (status, _, body) =
        common::raw_http(t.addr, "GET /toy/close HTTP/1.1\r\nHost: evil.example", "").await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &r["reason"]), (403, &json!("host_not_allowed")));

    // The native dialect beside it keeps its own envelope.
    let (status, r) = call(&t, "GET /v1/nothing HTTP/1.1", "").await;
    assert_eq!(
        (status, &r["error"]["code"]),
        (404, &json!("not_found")),
        "{r}"
    );
    let (status, _) = call(&t, "GET /toy/close HTTP/1.1", "").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_per_dialect() {
    use fiscald::config::{ApiToken, AuthMode, Role, TokenHash};
    let t = serve(|s| {
        s.api.tokens = vec![ApiToken {
            name: "kassa".into(),
            role: Role::Pos,
            hash: TokenHash::of("pos-secret"),
        }];
        s.api.auth.fiscalbox = AuthMode::None;
    })
    .await;
    // The native dialect asks for a token...
    let (status, r) = call(&t, "GET /v1/health HTTP/1.1", "").await;
    assert_eq!(
        (status, &r["error"]["code"]),
        (401, &json!("token_required"))
    );
    // ...the toy one (auth = "none", like FiscalBox apps that cannot send
    // one) does not, even for its operator route.
    let (status, _) = call(&t, "GET /toy/close HTTP/1.1", "").await;
    assert_eq!(status, 200);
    // With auth = "token" it asks too, in its own envelope.
    let t = serve(|s| {
        s.api.tokens = vec![ApiToken {
            name: "kassa".into(),
            role: Role::Pos,
            hash: TokenHash::of("pos-secret"),
        }];
        s.api.auth.fiscalbox = AuthMode::Token;
    })
    .await;
    let (status, r) = call(&t, "GET /toy/close HTTP/1.1", "").await;
    assert_eq!((status, &r["reason"]), (401, &json!("token_required")));
    let (status, r) = call(
        &t,
        "GET /toy/close HTTP/1.1\r\nAuthorization: Bearer pos-secret",
        "",
    )
    .await;
    assert_eq!((status, &r["reason"]), (403, &json!("operator_only")));
}

/// Architecture guard: no code under `src/api/` wakes a worker; the journal's
/// outbox does that when it commits jobs.
#[test]
fn no_handler_wakes_a_worker() {
    fn scan(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line.contains("notify_one") || line.contains(".outbox()") {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    scan(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api"),
        &mut found,
    );
    assert!(found.is_empty(), "wake-ups in src/api: {found:#?}");
}
