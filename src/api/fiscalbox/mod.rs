//! The FiscalBox dialect under `/fiscalbox/`: a POS written for a FiscalBox
//! talks to fiscald by changing only its base URL. Every endpoint of
//! [`facts::Endpoint`], with and without the trailing slash; every reply is
//! HTTP 200 in the box's envelope (wrapped `{"result": …}` where the box
//! wraps), errors with the box's codes. Shapes, codes and units come from
//! [`crate::fiscalbox::facts`]; nothing here restates them.
//!
//! - Orders are journaled through the one accept path (`uuid` is the caller
//!   key), then fiscalized by the FiscalBox worker; `order/create` waits up to
//!   `[fiscalbox] reply_wait_ms` for the box's fiscal data. With the box down
//!   (or slower than that) it answers at once with the receipt journaled:
//!   `qr_url` is the offline link, `fiscal_sign` empty and `receipt_count` 0;
//!   a repeat with the same `uuid` answers the fiscal data once they came.
//! - The shift is fiscald's own, kept in the journal; open/close/X/info are
//!   computed from the journal and compared with the box's Z report ("sverka"):
//!   differences come back in the reply (`differences`) and in `/v1/health`.
//! - Payment calls go to the box at once after validation (money is never
//!   taken blind: an unreachable box is a clear error); `_confirm` calls are
//!   queued durably and delivered once the paid receipt is fiscalized.

use super::AppState;
use super::accept::{Outcome, accept};
use super::body;
use super::dialect::Dialect;
use super::error::ApiError;
use super::policy::Caller;
use crate::config::Role;
use crate::domain::uz::shift_totals;
use crate::domain::{ReceiptKind, ReceiptState, Source};
use crate::fiscalbox::client::CallError;
use crate::fiscalbox::facts::{
    self, CardPayment, Code, Confirm, Endpoint, Envelope, ErrorBody, FiscalModuleCode, Method,
    OneQrCreate, OrderRequest, ProviderPayment, QrPay, ZReport, ZReportPrintRequest,
};
use crate::fiscalbox::sverka;
use crate::journal::StoredReceipt;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub static DIALECT: Dialect = Dialect {
    source: Source::Fiscalbox,
    prefix: "/fiscalbox",
    routes,
    render_error,
    field_path: facts::field_of_pointer,
};

/// The shift state in the journal's `counters` (no schema of its own).
const SHIFT_OPEN: &str = "fiscalbox_shift_open";
const SHIFT_NUMBER: &str = "fiscalbox_shift_number";
/// Receipts numbered above this belong to the open shift.
const SHIFT_FROM: &str = "fiscalbox_shift_from";
/// Unix seconds the shift was opened.
const SHIFT_OPENED_AT: &str = "fiscalbox_shift_opened_at";
/// How often a waiting `order/create` looks at its receipt.
const POLL: Duration = Duration::from_millis(20);

type Shared = State<Arc<AppState>>;

fn routes() -> Router<Arc<AppState>> {
    Router::new().fallback(handle)
}

fn envelope(endpoint: Option<Endpoint>, result: Result<Value, ErrorBody>) -> Response {
    let env = match result {
        Ok(data) => Envelope::ok(data),
        Err(e) => Envelope::fail(e),
    };
    (StatusCode::OK, Json(env.render(endpoint))).into_response()
}

/// The rules found by the journal on committed receipts (refund bounds).
const REFUND_RULES: &[&str] = &[
    "refund_exceeds_sale",
    "refund_of_sold_product",
    "original_known",
    "refund_of_sale",
];

/// Any error on a `/fiscalbox/` path in the box's envelope, HTTP 200.
pub fn render_error(e: &ApiError) -> Response {
    envelope(None, Err(error_body(e)))
}

fn error_body(e: &ApiError) -> ErrorBody {
    if e.details.iter().any(|d| REFUND_RULES.contains(&d.rule)) {
        return ErrorBody::new(
            Code::NotValidRefundInfo,
            json!(
                e.details
                    .iter()
                    .map(|d| d.message.clone())
                    .collect::<Vec<_>>()
            ),
        );
    }
    match e.status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            ErrorBody::new(Code::UnknownEndpoint, json!(e.message))
        }
        s if s.is_client_error() => {
            let fields: Vec<(String, String)> = if e.details.is_empty() {
                vec![("body".into(), e.message.clone())]
            } else {
                e.details
                    .iter()
                    .map(|d| {
                        (
                            d.path.trim_start_matches('/').replace('/', "."),
                            d.message.clone(),
                        )
                    })
                    .collect()
            };
            let mut body = ErrorBody::validation(&fields);
            if matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                body = ErrorBody::new(Code::InternalError, json!(e.message));
            }
            body
        }
        _ => ErrorBody::new(Code::InternalError, json!(e.message)),
    }
}

fn invalid(fields: Vec<(String, String)>) -> ErrorBody {
    ErrorBody::validation(&fields)
}

fn unreachable(what: &str, e: &CallError) -> ErrorBody {
    match e {
        CallError::Box(b) => b.clone(),
        other => ErrorBody::new(
            Code::InternalError,
            json!(format!(
                "FiscalBox unreachable: {what} was not done ({other})"
            )),
        ),
    }
}

/// Read a JSON body into `T`, naming the field of the first shape problem.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ErrorBody> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| invalid(vec![("body".into(), format!("not valid JSON: {e}"))]))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            "body".to_string()
        } else {
            path
        };
        invalid(vec![(field, e.inner().to_string())])
    })
}

fn query(uri: &axum::http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let bytes = v.as_bytes();
            let hex = |i: usize| {
                bytes
                    .get(i)
                    .and_then(|b| (*b as char).to_digit(16))
                    .map(|d| d as u8)
            };
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                match (bytes[i], hex(i + 1), hex(i + 2)) {
                    (b'%', Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                    }
                    (b'+', _, _) => {
                        out.push(b' ');
                        i += 1;
                    }
                    (b, _, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

async fn handle(State(app): Shared, request: Request) -> Response {
    let method = match *request.method() {
        axum::http::Method::GET => Some(Method::Get),
        axum::http::Method::POST => Some(Method::Post),
        _ => None,
    };
    let uri = request.uri().clone();
    let path = uri.path().to_string();
    let Some(endpoint) = method.and_then(|m| Endpoint::resolve(m, &path)) else {
        let why = if Endpoint::path_exists(&path) {
            format!("{} is not a method of /fiscalbox{path}", request.method())
        } else {
            format!("no endpoint /fiscalbox{path}")
        };
        return envelope(None, Err(ErrorBody::new(Code::UnknownEndpoint, json!(why))));
    };
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Open);
    let headers = request.headers().clone();
    let bytes = if endpoint.method() == Method::Post {
        match body::read_bytes(&headers, request.into_body(), app.max_body_bytes).await {
            Ok(b) => b,
            Err(e) => return envelope(Some(endpoint), Err(error_body(&e))),
        }
    } else {
        axum::body::Bytes::new()
    };
    let operator_only = matches!(
        endpoint,
        Endpoint::ZReportOpen
            | Endpoint::ZReportClose
            | Endpoint::ZReportPrint
            | Endpoint::OpenCashDrawer
            | Endpoint::CardClose(_)
    );
    if operator_only && !caller.may(Role::Operator) {
        return envelope(
            Some(endpoint),
            Err(ErrorBody::new(
                Code::InternalError,
                json!("this endpoint needs an operator token; a pos token may only sell and pay"),
            )),
        );
    }
    let result = dispatch(&app, endpoint, &bytes, &uri, &headers).await;
    envelope(Some(endpoint), result)
}

async fn dispatch(
    app: &AppState,
    endpoint: Endpoint,
    bytes: &[u8],
    uri: &axum::http::Uri,
    _headers: &HeaderMap,
) -> Result<Value, ErrorBody> {
    let Some(fb) = app.fiscalbox.as_ref() else {
        return Err(ErrorBody::new(
            Code::FiscalModuleNotInitialized,
            json!("this till has no FiscalBox: set [fiscal] backend = \"fiscalbox\""),
        ));
    };
    let client = &fb.client;
    match endpoint {
        Endpoint::OrderCreate | Endpoint::OrderRefuse => {
            order(app, endpoint == Endpoint::OrderRefuse, bytes).await
        }
        Endpoint::OrderLast => order_last(app).await,
        Endpoint::OrderPrint => {
            let last = last_receipt(app).await?;
            match (&app.devices, last) {
                (Some(d), Some(r)) if d.printer().is_ok() => {
                    app.journal
                        .operator_print(r.id)
                        .await
                        .map_err(|e| error_body(&ApiError::from(e)))?;
                    Ok(Value::Null)
                }
                _ => client
                    .call(Endpoint::OrderPrint, None, &[])
                    .await
                    .map_err(|e| unreachable("the reprint", &e)),
            }
        }
        Endpoint::ZReportOpen => open_shift(app, uri).await,
        Endpoint::ZReportClose => close_shift(app, uri, true).await,
        Endpoint::ZReportPrint => {
            let req: ZReportPrintRequest = parse(bytes)?;
            close_shift(app, uri, req.close_zreport).await
        }
        Endpoint::ZReportInfo => shift_report(app).await.map(|(v, _)| v),
        Endpoint::Payment(p) => {
            let req: ProviderPayment = parse(bytes)?;
            let mut bad = Vec::new();
            if req.amount <= 0 {
                bad.push(("amount".into(), "must be a positive amount in tiyin".into()));
            }
            if req.qr_code.trim().is_empty() {
                bad.push(("qr_code".into(), "the customer's QR as scanned".into()));
            }
            if !bad.is_empty() {
                return Err(invalid(bad));
            }
            pay(client, endpoint, &req, p.name()).await
        }
        Endpoint::PaymentConfirm(p) => {
            let v: Value = parse(bytes)?;
            let c = Confirm::parse(p, &v).map_err(invalid)?;
            confirm(app, c).await
        }
        Endpoint::Card(t) => {
            let req: CardPayment = parse(bytes)?;
            if req.amount <= 0 || (req.is_return && req.request_id.is_none()) {
                return Err(invalid(vec![(
                    if req.amount <= 0 {
                        "amount"
                    } else {
                        "request_id"
                    }
                    .into(),
                    "a positive amount in tiyin; a return names the payment's request_id (RRN)"
                        .into(),
                )]));
            }
            pay(client, endpoint, &req, t.name()).await
        }
        Endpoint::CardClose(_) | Endpoint::CardShortReport(_) | Endpoint::Info => client
            .call(endpoint, None, &[])
            .await
            .map_err(|e| unreachable("the request", &e)),
        Endpoint::QrPay => {
            let req: QrPay = parse(bytes)?;
            pay(client, endpoint, &req, "scan2pay").await
        }
        Endpoint::QrPayStatus => {
            let v: Value = parse(bytes)?;
            if v.get("order_id").and_then(Value::as_str).is_none() {
                return Err(invalid(vec![(
                    "order_id".into(),
                    "This field is required.".into(),
                )]));
            }
            client
                .call(endpoint, Some(&v), &[])
                .await
                .map_err(|e| unreachable("the status request", &e))
        }
        Endpoint::OneQrCreate => {
            let req: OneQrCreate = parse(bytes)?;
            let mut bad = Vec::new();
            if req.external_id.is_empty()
                || req.external_id.chars().count() > facts::ONE_QR_EXTERNAL_ID_MAX
            {
                bad.push((
                    "external_id".into(),
                    format!("1 to {} characters", facts::ONE_QR_EXTERNAL_ID_MAX),
                ));
            }
            if facts::uzqr_amount(&req.amount).map_or(true, |m| m.0 <= 0) {
                bad.push((
                    "amount".into(),
                    "a positive decimal in sum such as \"100.00\"".into(),
                ));
            }
            if !bad.is_empty() {
                return Err(invalid(bad));
            }
            pay(client, endpoint, &req, "UzQR").await
        }
        Endpoint::OneQrStatus => {
            let Some(id) = query(uri, "invoice_id") else {
                return Err(invalid(vec![(
                    "invoice_id".into(),
                    "This field is required.".into(),
                )]));
            };
            client
                .call(endpoint, None, &[("invoice_id", &id)])
                .await
                .map_err(|e| unreachable("the status request", &e))
        }
        // The till's own drawer when fiscald drives one, else the box's.
        Endpoint::OpenCashDrawer => match &app.devices {
            Some(d) if d.drawer_view()["via"] != json!("none") => {
                d.open_drawer().await.map(|()| Value::Null).map_err(|e| {
                    ErrorBody::new(
                        Code::PrinterNotWorking,
                        json!(format!("the cash drawer did not open: {e}")),
                    )
                })
            }
            _ => client
                .call(endpoint, None, &[])
                .await
                .map_err(|e| unreachable("the drawer", &e)),
        },
        Endpoint::Banner => {
            let v: Value = parse(bytes)?;
            let banners: Vec<facts::Banner> = v
                .get("banners")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| invalid(vec![("banners".into(), e.to_string())]))?
                .unwrap_or_default();
            if banners.is_empty() {
                return Err(invalid(vec![(
                    "banners".into(),
                    "This field is required.".into(),
                )]));
            }
            // On the till's ESC/POS printer when fiscald drives one, else the box's.
            match &app.devices {
                Some(d) if d.printer().is_ok() => d
                    .print_blocks(banners.iter().map(facts::print_block).collect())
                    .await
                    .map(|()| Value::Null)
                    .map_err(|e| ErrorBody::new(Code::PrinterNotWorking, json!(e.to_string()))),
                _ => client
                    .call(endpoint, Some(&v), &[])
                    .await
                    .map_err(|e| unreachable("the banner", &e)),
            }
        }
    }
}

/// Send a validated payment request to the box; a failure is answered as
/// that provider's payment error.
async fn pay(
    client: &crate::fiscalbox::client::BoxClient,
    endpoint: Endpoint,
    req: &impl serde::Serialize,
    provider: &str,
) -> Result<Value, ErrorBody> {
    client
        .call(
            endpoint,
            Some(&serde_json::to_value(req).expect("serializes")),
            &[],
        )
        .await
        .map_err(|e| payment_error(provider, &e))
}

/// A payment call that did not reach the box: nothing was charged by us.
fn payment_error(what: &str, e: &CallError) -> ErrorBody {
    match e {
        CallError::Box(b) => b.clone(),
        CallError::Unreachable(m) => ErrorBody::new(
            Code::PaymentError,
            json!(format!(
                "FiscalBox unreachable: the {what} payment was not sent, no money was taken ({m})"
            )),
        ),
        CallError::Malformed(m) => ErrorBody::new(
            Code::PaymentError,
            json!(format!(
                "the FiscalBox answered the {what} payment with something unreadable ({m}); check the payment on the terminal before charging again"
            )),
        ),
    }
}

async fn shift_open(app: &AppState) -> Result<bool, ErrorBody> {
    app.journal
        .counter(SHIFT_OPEN)
        .await
        .map(|v| v == 1)
        .map_err(|e| error_body(&ApiError::from(e)))
}

async fn order(app: &AppState, refund: bool, bytes: &[u8]) -> Result<Value, ErrorBody> {
    let req: OrderRequest = parse(bytes)?;
    let draft = facts::draft_from_order(&req, refund).map_err(invalid)?;
    if let Some(uuid) = &req.uuid
        && (uuid.trim().is_empty() || uuid.len() > super::MAX_CALLER_KEY_CHARS)
    {
        return Err(invalid(vec![(
            "uuid".into(),
            format!("1 to {} characters", super::MAX_CALLER_KEY_CHARS),
        )]));
    }
    if !shift_open(app).await? {
        // As the box answers a sale without an open shift (spec "Shift").
        return Err(ErrorBody::new(
            Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen),
            json!("open the shift first: GET /fiscalbox/zreport/open/"),
        ));
    }
    let stored = match accept(app, &DIALECT, req.uuid.clone(), draft).await {
        Ok(Outcome::Created(r)) | Ok(Outcome::Replayed(r)) => r,
        Err(e) => return Err(error_body(&e)),
    };
    let fb = app.fiscalbox.as_ref().expect("checked by dispatch");
    let online = fb.status.lock().expect("box status lock").online;
    let deadline = Instant::now()
        + if online {
            fb.reply_wait
        } else {
            Duration::ZERO
        };
    let mut r = stored;
    loop {
        if let Some(f) = &r.fiscal {
            let applet = fb
                .status
                .lock()
                .expect("box status lock")
                .applet_version
                .clone();
            let data = crate::fiscalbox::worker::fiscal_data(f, &applet);
            return Ok(serde_json::to_value(data).expect("fiscal data serialize"));
        }
        if r.state == ReceiptState::Rejected {
            let why = r
                .sync
                .as_ref()
                .and_then(|s| s.last_error.clone())
                .unwrap_or_default();
            return Err(box_refusal(&why));
        }
        // Stop waiting as soon as the worker finds the box unreachable.
        if Instant::now() >= deadline || !fb.status.lock().expect("box status lock").online {
            break;
        }
        tokio::time::sleep(POLL).await;
        r = match app.journal.get(r.id.clone()).await {
            Ok(Some(r)) => r,
            _ => break,
        };
    }
    Ok(offline_reply(app, &r))
}

/// The box's refusal of a parked receipt (`FiscalBox error <code>: …`).
fn box_refusal(last_error: &str) -> ErrorBody {
    let code = last_error
        .strip_prefix("FiscalBox error ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|c| c.trim().parse::<i64>().ok());
    ErrorBody {
        code: code.unwrap_or(Code::InternalError.value()),
        message: last_error.to_string(),
        data: Value::Null,
    }
}

/// Journaled, not (yet) fiscalized: the offline link, no fiscal sign.
fn offline_reply(app: &AppState, r: &StoredReceipt) -> Value {
    let tz: chrono_tz::Tz = app.timezone.parse().unwrap_or(chrono_tz::Asia::Tashkent);
    let date_time = chrono::DateTime::parse_from_rfc3339(&r.created_at)
        .map(|d| {
            d.with_timezone(&tz)
                .format(facts::RECEIPT_TIME_FORMAT)
                .to_string()
        })
        .unwrap_or_default();
    json!({
        "terminal_id": "",
        "receipt_count": 0,
        "date_time": date_time,
        "fiscal_sign": "",
        "applet_version": "",
        "qr_url": r.offline_url,
        "cash_box_number": null,
        "is_fiscalized": false,
    })
}

async fn last_receipt(app: &AppState) -> Result<Option<StoredReceipt>, ErrorBody> {
    let stats = app
        .journal
        .stats()
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let last = stats.last_number;
    if last == 0 {
        return Ok(None);
    }
    app.journal
        .numbered(last - 1, last)
        .await
        .map(|mut v| v.pop())
        .map_err(|e| error_body(&ApiError::from(e)))
}

async fn order_last(app: &AppState) -> Result<Value, ErrorBody> {
    let Some(r) = last_receipt(app).await? else {
        return Ok(Value::Null);
    };
    let refund = r.receipt.kind == ReceiptKind::SaleReturn;
    let order = facts::order_from_receipt(
        &r.receipt,
        r.caller_key.as_deref().unwrap_or(&r.id),
        r.number,
        "",
        r.receipt.uz.as_ref().and_then(|u| u.refund_of.clone()),
    );
    let result = match &r.fiscal {
        Some(f) => crate::fiscalbox::worker::fiscal_data(f, "").camel_case(),
        None => {
            let v = offline_reply(app, &r);
            json!({"TerminalID": "", "ReceiptSeq": "0", "DateTime": v["date_time"],
                   "FiscalSign": "", "AppletVersion": "", "QRCodeURL": r.offline_url})
        }
    };
    Ok(json!({"order": order, "result": result, "isRefund": refund}))
}

fn now_text(app: &AppState) -> String {
    let tz: chrono_tz::Tz = app.timezone.parse().unwrap_or(chrono_tz::Asia::Tashkent);
    app.clock
        .now()
        .with_timezone(&tz)
        .format(facts::REQUEST_TIME_FORMAT)
        .to_string()
}

async fn open_shift(app: &AppState, uri: &axum::http::Uri) -> Result<Value, ErrorBody> {
    let time = query(uri, "time").unwrap_or_else(|| now_text(app));
    if chrono::NaiveDateTime::parse_from_str(&time, facts::REQUEST_TIME_FORMAT).is_err() {
        return Err(invalid(vec![(
            "time".into(),
            "must be yyyy-MM-dd HH:mm:ss".into(),
        )]));
    }
    let stats = app
        .journal
        .stats()
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let number = app
        .journal
        .counter(SHIFT_NUMBER)
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let opened = app
        .journal
        .set_counters(
            Some((SHIFT_OPEN, 0)),
            vec![
                (SHIFT_OPEN, 1),
                (SHIFT_NUMBER, number + 1),
                (SHIFT_FROM, stats.last_number as i64),
                (SHIFT_OPENED_AT, app.clock.now().timestamp()),
            ],
        )
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    if !opened {
        return Err(ErrorBody::new(Code::ZReportAlreadyOpen, Value::Null));
    }
    // The box's own shift: opened now when it is reachable, else by the
    // worker when the first sale meets 0x902D.
    let fb = app.fiscalbox.as_ref().expect("checked by dispatch");
    let applet = match fb.client.open_shift(&time).await {
        Ok(v) => v["applet_version"].as_str().unwrap_or("").to_string(),
        Err(e) => {
            tracing::info!(error = %e, "FiscalBox shift not opened now; it opens with the first sale");
            String::new()
        }
    };
    Ok(json!({"time": time, "applet_version": applet}))
}

/// The open shift's receipts from the journal, and its report.
async fn shift_receipts(app: &AppState) -> Result<(Vec<StoredReceipt>, i64), ErrorBody> {
    let from = app
        .journal
        .counter(SHIFT_FROM)
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let stats = app
        .journal
        .stats()
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let receipts = app
        .journal
        .numbered(from.max(0) as u64, stats.last_number)
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    Ok((receipts, from))
}

/// The billing period of a shift closed by `z` at the POS's `time`: the
/// box's own Z `open_time`/`close_time` when readable, else the journal's
/// shift opening and the POS's `time`, else the till's clock — a check is
/// always stored; what was guessed is logged.
async fn z_period(
    app: &AppState,
    z: &ZReport,
    time: &str,
) -> (chrono::NaiveDateTime, chrono::NaiveDateTime) {
    let now = app.clock.now().with_timezone(&app.tz).naive_local();
    let (start, end, guessed) = crate::fiscalbox::billing::shift_period(
        &z.open_time,
        &z.close_time,
        time,
        shift_start(app).await,
        now,
    );
    for what in guessed {
        tracing::warn!(time, "billing check of the Z report: {what}");
    }
    (start, end)
}

/// When the shift opened, in the till's local time (`None` when unknown).
async fn shift_start(app: &AppState) -> Option<chrono::NaiveDateTime> {
    let opened = app.journal.counter(SHIFT_OPENED_AT).await.ok()?;
    if opened <= 0 {
        return None;
    }
    chrono::DateTime::from_timestamp(opened, 0).map(|d| d.with_timezone(&app.tz).naive_local())
}

/// The shift report computed from the journal, compared with the box.
async fn shift_report(app: &AppState) -> Result<(Value, Vec<sverka::Difference>), ErrorBody> {
    let open = shift_open(app).await?;
    let (receipts, from) = shift_receipts(app).await?;
    let live: Vec<&StoredReceipt> = receipts
        .iter()
        .filter(|r| r.state != ReceiptState::Discarded)
        .collect();
    let totals = shift_totals(live.iter().map(|r| &r.receipt));
    let pending = live
        .iter()
        .filter(|r| r.state != ReceiptState::Fiscalized)
        .count();
    let fb = app.fiscalbox.as_ref().expect("checked by dispatch");
    let boxed = fb.client.zreport_info().await;
    let (differences, box_error) = match &boxed {
        Ok(z) => (sverka::compare(&totals, z), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let seqs: Vec<u64> = live
        .iter()
        .filter_map(|r| r.fiscal.as_ref().map(|f| f.fiscal_document_number))
        .collect();
    // The billing's reconciliation of this shift (stored by its Z report),
    // `null` before the shift is closed.
    let billing = match (&fb.billing, shift_start(app).await) {
        (Some(_), Some(start)) => crate::fiscalbox::billing::of_shift(&app.journal, start).await,
        _ => None,
    };
    let mut report = json!({
        "applet_version": boxed.as_ref().map(|z| z.applet_version.clone()).unwrap_or_default(),
        "terminal_id": boxed.as_ref().map(|z| z.terminal_id.clone()).unwrap_or_default(),
        "number": app.journal.counter(SHIFT_NUMBER).await.unwrap_or(0),
        "count": app.journal.counter(SHIFT_NUMBER).await.unwrap_or(0),
        "first_receipt_seq": seqs.iter().min().copied().unwrap_or(0),
        "last_receipt_seq": seqs.iter().max().copied().unwrap_or(0),
        "open_time": app.journal.counter(SHIFT_OPENED_AT).await.ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|d| d.with_timezone(&app.timezone.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::Asia::Tashkent))
                .format(facts::REQUEST_TIME_FORMAT).to_string())
            .unwrap_or_default(),
        "close_time": "",
        "shift_opened": open,
        "cash_desc_serial": boxed.as_ref().map(|z| z.cash_desc_serial.clone()).unwrap_or_default(),
        "first_receipt_number": from + 1,
        "pending_receipts": pending,
        "differences": differences,
        "fiscalbox_error": box_error,
        "billing": billing,
    });
    for (field, value) in sverka::as_fields(&totals) {
        report[field] = json!(value);
    }
    *fb.sverka.lock().expect("sverka lock") = Some(sverka::Check::new(
        app.clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        differences.clone(),
        pending,
        box_error.clone(),
    ));
    Ok((report, differences))
}

/// Close (Z) or X: the journal's report, compared with the box's; a Z
/// closes the box's shift once every receipt of the shift is on the box.
async fn close_shift(
    app: &AppState,
    uri: &axum::http::Uri,
    close: bool,
) -> Result<Value, ErrorBody> {
    let time = query(uri, "time").unwrap_or_else(|| now_text(app));
    if !shift_open(app).await? {
        return Err(if close {
            ErrorBody::new(Code::ZReportAlreadyClose, Value::Null)
        } else {
            ErrorBody::new(
                Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen),
                Value::Null,
            )
        });
    }
    let fb = app.fiscalbox.as_ref().expect("checked by dispatch");
    // Let the shift's receipts reach the box first (bounded).
    let deadline = Instant::now() + fb.reply_wait;
    let (mut report, _) = loop {
        let (report, diffs) = shift_report(app).await?;
        if report["pending_receipts"] == 0 || Instant::now() >= deadline {
            break (report, diffs);
        }
        tokio::time::sleep(POLL * 5).await;
    };
    if !close {
        return Ok(report);
    }
    if report["pending_receipts"] != 0 {
        return Err(ErrorBody::new(
            Code::InternalError,
            json!(format!(
                "{} receipts of this shift are not on the FiscalBox yet; the shift stays open — retry the close when the box is back",
                report["pending_receipts"]
            )),
        ));
    }
    let z: ZReport = match fb.client.close_shift(&time).await {
        Ok(z) => z,
        // The box's shift was already closed (never opened): fiscald's closes.
        Err(CallError::Box(e)) if e.code() == Some(Code::ZReportAlreadyClose) => ZReport::default(),
        Err(e) => return Err(unreachable("the Z report", &e)),
    };
    // The billing's count for the shift, stored as pending in the same
    // journal transaction as the shift's close (a stop between cannot lose
    // it) and asked in the background: a billing outage (or a stop before
    // it answers) never holds the Z report, any sale, or loses the check.
    let pending = match &fb.billing {
        Some(billing) => {
            let (start, end) = z_period(app, &z, &time).await;
            Some(billing.pending_check(start, end, crate::fiscalbox::billing::Trigger::ZReport))
        }
        None => None,
    };
    let id = app
        .journal
        .close_shift_with_billing_check(vec![(SHIFT_OPEN, 0)], pending.as_ref().map(|r| r.to_row()))
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    report["close_time"] = json!(time);
    report["shift_opened"] = json!(false);
    if let (Some(billing), Some(mut r)) = (&fb.billing, pending) {
        r.id = id;
        report["billing"] =
            json!({"result": "pending", "id": r.id, "start": r.start, "end": r.end});
        billing.ask(r);
    }
    if !z.terminal_id.is_empty() {
        report["terminal_id"] = json!(z.terminal_id);
        report["number"] = json!(z.number);
        report["count"] = json!(z.count);
    }
    Ok(report)
}

async fn confirm(app: &AppState, c: Confirm) -> Result<Value, ErrorBody> {
    let receipt = app
        .journal
        .find_by_link(c.qr_code.clone())
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let Some(receipt) = receipt else {
        return Err(ErrorBody::new(
            Code::PaymentError,
            json!(format!(
                "no receipt of this till has the link {:?}: confirm with the qr_url order/create answered",
                c.qr_code
            )),
        ));
    };
    let queued = app
        .journal
        .queue_confirm(
            receipt.id.clone(),
            json!({"provider": c.provider, "id": c.id, "qr_code": c.qr_code}),
        )
        .await
        .map_err(|e| error_body(&ApiError::from(e)))?;
    let mut data = json!({
        "message": if queued { "Fiscalization queued: delivered once the receipt is on the FiscalBox" } else { "Fiscalization already queued" },
        "error_code": 0,
        "queued": true,
    });
    data[c.provider.confirm_key()] = json!(c.id);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Violation;

    #[test]
    fn errors_render_in_the_box_envelope() {
        let e = ApiError::invalid_receipt(vec![Violation::new(
            "products.0.class_code",
            "required",
            "needs its IKPU",
        )]);
        let b = error_body(&e);
        assert_eq!(b.code, 7);
        let fields: Value = serde_json::from_str(&b.message).unwrap();
        assert_eq!(fields, json!({"products.0.class_code": ["needs its IKPU"]}));
        let refund = ApiError::invalid_receipt(vec![Violation::new(
            "products.0.amount",
            "refund_exceeds_sale",
            "more than sold",
        )]);
        assert_eq!(error_body(&refund).code, 65275);
        let missing = ApiError::not_found("x");
        assert_eq!(error_body(&missing).code, 404);
        assert_eq!(
            box_refusal("FiscalBox error 36913: ERROR_NOT_ENOUGH_CASH_FOR_REFUND null").code,
            36913
        );
    }
}
