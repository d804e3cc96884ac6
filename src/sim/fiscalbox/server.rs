//! The FiscalBox simulator's HTTP shell: every box endpoint at the root (with
//! and without the trailing slash), parsed with [`crate::fiscalbox::facts`],
//! answered by the pure [`BoxModel`], rendered in the documented envelope;
//! fault knobs (down, slow, lost replies, shift gone, refunds refused) and
//! `/sim/stats` + `/sim/knobs`; [`run_cli`] for `fiscald sim fiscalbox`.

use super::model::{BoxConfig, BoxCounters, BoxModel};
use crate::api::server::{HEADER_READ_TIMEOUT, serve};
use crate::clock::{Clock, SystemClock};
use crate::fiscalbox::facts::{
    self, CardPayment, Code, Confirm, Endpoint, Envelope, ErrorBody, Method, OneQrCreate,
    OrderRequest, ProviderPayment, QrPay, ZReportPrintRequest,
};
use crate::sim::cloud::server::severed_reply;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::Method as HttpMethod;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const STOP_GRACE: Duration = Duration::from_secs(5);
/// The largest body the simulator reads.
const MAX_BODY: usize = 1 << 20;

/// Fault knobs; a patch sets only the fields it names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxKnobs {
    /// Unplugged: every box request's connection is dropped unanswered and
    /// nothing is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<bool>,
    /// Added before every box request is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u64>,
    /// The next N fiscal operations and confirms are done, then their
    /// replies are lost (connection dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lose_replies: Option<u32>,
    /// One-shot: the box loses its open shift (next sale: 0x902D).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_shift: Option<bool>,
    /// Refunds answer 65275 while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_refunds: Option<bool>,
    /// Billing: the orders count leaves out the last N sales of the period
    /// (a billing that lost orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_lose_orders: Option<u32>,
    /// Billing, one-shot: every token issued so far expires (401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_expire_tokens: Option<bool>,
    /// Billing: unreachable (connections dropped) while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_down: Option<bool>,
    /// Billing: requests are taken and not answered (for up to a minute)
    /// while set — a billing that hangs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_hang: Option<bool>,
}

/// The simulated billing's account (`fiscald sim fiscalbox
/// --billing-username/--billing-password/--billing-inn`): the login it
/// accepts and the INN its orders are counted under (a count for any other
/// INN is zero orders, as the billing would answer).
#[derive(Clone)]
pub struct BillingLogin {
    pub username: String,
    pub password: String,
    pub inn: String,
}

impl std::fmt::Debug for BillingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("inn", &self.inn)
            .finish()
    }
}

impl Default for BillingLogin {
    fn default() -> Self {
        BillingLogin {
            username: "shop".into(),
            password: "sim-billing-password".into(),
            inn: "306429662".into(),
        }
    }
}

/// What `/sim/stats` serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxStats {
    /// Box requests (not `/sim/*`), by endpoint path (method + path).
    pub requests: BTreeMap<String, u64>,
    /// Requests dropped while down.
    pub dropped_down: u64,
    /// Replies lost after the operation was done.
    pub lost_replies: u64,
    pub counters: BoxCounters,
    pub knobs: BoxKnobs,
    /// Billing logins accepted, and count requests refused with 401.
    pub billing_logins: u64,
    pub billing_unauthorized: u64,
}

struct Shared {
    model: Mutex<BoxModel>,
    knobs: Mutex<BoxKnobs>,
    stats: Mutex<BoxStats>,
    clock: Arc<dyn Clock>,
    tz: Tz,
    billing_login: Mutex<BillingLogin>,
    /// Tokens the billing accepts now.
    billing_tokens: Mutex<Vec<String>>,
}

impl Shared {
    fn model(&self) -> std::sync::MutexGuard<'_, BoxModel> {
        self.model.lock().expect("box model lock")
    }

    fn knobs(&self) -> BoxKnobs {
        self.knobs.lock().expect("box knobs lock").clone()
    }

    fn set_knobs(&self, patch: &BoxKnobs) -> BoxKnobs {
        let mut k = self.knobs.lock().expect("box knobs lock");
        if let Some(v) = patch.down {
            k.down = Some(v);
        }
        if let Some(v) = patch.slow_ms {
            k.slow_ms = Some(v);
        }
        if let Some(v) = patch.lose_replies {
            k.lose_replies = Some(v);
        }
        if let Some(v) = patch.refuse_refunds {
            k.refuse_refunds = Some(v);
            self.model().set_refuse_refunds(v);
        }
        if patch.drop_shift == Some(true) {
            self.model().drop_shift();
        }
        if let Some(v) = patch.billing_lose_orders {
            k.billing_lose_orders = Some(v);
        }
        if let Some(v) = patch.billing_hang {
            k.billing_hang = Some(v);
        }
        if let Some(v) = patch.billing_down {
            k.billing_down = Some(v);
        }
        if patch.billing_expire_tokens == Some(true) {
            self.billing_tokens
                .lock()
                .expect("billing tokens lock")
                .clear();
        }
        k.clone()
    }

    fn stats(&self) -> BoxStats {
        let mut s = self.stats.lock().expect("box stats lock").clone();
        s.counters = self.model().counters().clone();
        s.knobs = self.knobs();
        s
    }

    fn now(&self) -> chrono::NaiveDateTime {
        self.clock.now().with_timezone(&self.tz).naive_local()
    }
}

/// A running simulated box.
pub struct SimFiscalBox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimFiscalBox {
    pub async fn start(listener: TcpListener, config: BoxConfig) -> SimFiscalBox {
        Self::start_with_clock(
            listener,
            config,
            Arc::new(SystemClock),
            chrono_tz::Asia::Tashkent,
        )
        .await
    }

    pub async fn start_with_clock(
        listener: TcpListener,
        config: BoxConfig,
        clock: Arc<dyn Clock>,
        tz: Tz,
    ) -> SimFiscalBox {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            model: Mutex::new(BoxModel::new(config)),
            knobs: Mutex::new(BoxKnobs::default()),
            stats: Mutex::new(BoxStats::default()),
            clock,
            tz,
            billing_login: Mutex::new(BillingLogin::default()),
            billing_tokens: Mutex::new(Vec::new()),
        });
        let (stop, _) = watch::channel(false);
        let mut stopped = stop.subscribe();
        let app = router(shared.clone());
        let task = tokio::spawn(serve(listener, app, HEADER_READ_TIMEOUT, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        SimFiscalBox {
            addr,
            shared,
            stop,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the box's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> BoxStats {
        self.shared.stats()
    }

    pub fn set_knobs(&self, patch: BoxKnobs) -> BoxKnobs {
        self.shared.set_knobs(&patch)
    }

    /// The login the simulated billing accepts.
    pub fn set_billing_login(&self, login: BillingLogin) {
        *self
            .shared
            .billing_login
            .lock()
            .expect("billing login lock") = login;
    }

    /// Look at (or change) the box's state directly.
    pub fn with_model<R>(&self, f: impl FnOnce(&mut BoxModel) -> R) -> R {
        f(&mut self.shared.model())
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && tokio::time::timeout(STOP_GRACE, task).await.is_err()
        {
            tracing::warn!("FiscalBox simulator did not stop in time");
        }
    }
}

impl Drop for SimFiscalBox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `fiscald sim fiscalbox`: serve on `listen` until SIGINT or SIGTERM.
pub async fn run_cli(
    listen: SocketAddr,
    config: BoxConfig,
    knobs: BoxKnobs,
    billing: BillingLogin,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind(listen).await?;
    let sim = SimFiscalBox::start(listener, config).await;
    sim.set_knobs(knobs);
    sim.set_billing_login(billing);
    println!("fiscald sim fiscalbox listening on {}", sim.base_url());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!(stats = ?sim.stats(), "FiscalBox simulator stopping");
    sim.stop().await;
    Ok(())
}

/// The billing endpoints \[Billing.md\]: `POST /api/v1/login/` and
/// `GET /api/v1/orders/count/`, counted from the box's own sales.
async fn billing_request(shared: &Shared, request: Request) -> Response {
    use axum::http::StatusCode;
    let knobs = shared.knobs();
    if knobs.billing_down == Some(true) {
        return severed_reply();
    }
    if knobs.billing_hang == Some(true) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while shared.knobs().billing_hang == Some(true) && std::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let auth = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let method = request.method().clone();
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .unwrap_or_default();
    let detail = |status: StatusCode, text: &str| {
        (status, Json(serde_json::json!({"detail": text}))).into_response()
    };
    let path = path.trim_end_matches('/').to_string() + "/";
    if method == HttpMethod::POST && path == facts::BILLING_LOGIN_PATH {
        let Ok(login) = serde_json::from_slice::<facts::BillingLogin>(&body) else {
            return detail(
                billing_status(facts::BILLING_BAD_LOGIN_STATUS),
                "username and password are required",
            );
        };
        let accepted = shared
            .billing_login
            .lock()
            .expect("billing login lock")
            .clone();
        if login.username != accepted.username || login.password != accepted.password {
            return detail(
                billing_status(facts::BILLING_BAD_LOGIN_STATUS),
                "Unable to log in with provided credentials.",
            );
        }
        let token = {
            let mut m = shared.model();
            format!("{:040x}", m.next_billing_token())
        };
        shared
            .billing_tokens
            .lock()
            .expect("billing tokens lock")
            .push(token.clone());
        shared.stats.lock().expect("box stats lock").billing_logins += 1;
        return Json(facts::BillingToken { token }).into_response();
    }
    if method == HttpMethod::GET && path == facts::BILLING_COUNT_PATH {
        // The header as the client must write it (one format: facts).
        let valid = auth.as_deref().is_some_and(|a| {
            shared
                .billing_tokens
                .lock()
                .expect("billing tokens lock")
                .iter()
                .any(|k| facts::billing_authorization(k) == a)
        });
        if !valid {
            shared
                .stats
                .lock()
                .expect("box stats lock")
                .billing_unauthorized += 1;
            return detail(
                billing_status(facts::BILLING_EXPIRED_TOKEN_STATUS),
                "Invalid token.",
            );
        }
        let q = query.as_deref();
        let date = |name: &str| {
            query_param(q, name).and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(&t, facts::BILLING_DATE_FORMAT).ok()
            })
        };
        let (Some(start), Some(end), Some(inn)) =
            (date("start_date"), date("end_date"), query_param(q, "inn"))
        else {
            return detail(
                StatusCode::BAD_REQUEST,
                "start_date and end_date (YYYY-MM-DDTHH:MM:SS) and inn are required",
            );
        };
        // The account's orders only: another INN has none here.
        let account_inn = shared
            .billing_login
            .lock()
            .expect("billing login lock")
            .inn
            .clone();
        let mut orders = if inn == account_inn {
            shared.model().billing_orders(start, end)
        } else {
            Vec::new()
        };
        let lose = knobs.billing_lose_orders.unwrap_or(0) as usize;
        orders.truncate(orders.len().saturating_sub(lose));
        let total: i64 = orders.iter().map(|(_, a)| a).sum();
        return Json(facts::BillingCountReply {
            status: "successfully".into(),
            filters: serde_json::json!({
                "start_date": start.format(facts::BILLING_DATE_FORMAT).to_string(),
                "end_date": end.format(facts::BILLING_DATE_FORMAT).to_string(),
                "inn": inn,
            }),
            data: facts::BillingCountData {
                total_orders: orders.len() as i64,
                total_amount: facts::billing_amount(total),
            },
        })
        .into_response();
    }
    detail(StatusCode::NOT_FOUND, "Not found.")
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sim/stats", get(stats))
        .route("/sim/knobs", get(knobs).post(set_knobs))
        .fallback(box_request)
        .with_state(shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<BoxStats> {
    Json(shared.stats())
}

async fn knobs(State(shared): State<Arc<Shared>>) -> Json<BoxKnobs> {
    Json(shared.knobs())
}

async fn set_knobs(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<BoxKnobs>(&body) {
        Ok(patch) => Json(shared.set_knobs(&patch)).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, format!("knobs: {e}")).into_response(),
    }
}

fn envelope(endpoint: Option<Endpoint>, result: Result<Value, ErrorBody>) -> Response {
    let env = match result {
        Ok(data) => Envelope::ok(data),
        Err(e) => Envelope::fail(e),
    };
    Json(env.render(endpoint)).into_response()
}

fn body_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ErrorBody> {
    let text = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." || field == "?" {
            "body".into()
        } else {
            field
        };
        ErrorBody::validation(&[(field, e.inner().to_string())])
    })
}

fn query_param(req_query: Option<&str>, name: &str) -> Option<String> {
    req_query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v))
    })
}

/// Percent-decode a query component (`+` is a space); bad escapes stay as sent.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |i: usize| {
        bytes
            .get(i)
            .and_then(|b| (*b as char).to_digit(16))
            .map(|d| d as u8)
    };
    let mut out = Vec::with_capacity(bytes.len());
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
}

async fn box_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.uri().path().starts_with("/api/v1/") {
        return billing_request(&shared, request).await;
    }
    let method = match *request.method() {
        HttpMethod::GET => Some(Method::Get),
        HttpMethod::POST => Some(Method::Post),
        _ => None,
    };
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let endpoint = method.and_then(|m| Endpoint::resolve(m, &path));
    {
        let mut s = shared.stats.lock().expect("box stats lock");
        let key = match endpoint {
            Some(e) => format!("{:?} {}", e.method(), e.path()),
            None => format!("{} {path}", request.method()),
        };
        *s.requests.entry(key).or_default() += 1;
    }
    let knobs = shared.knobs();
    if knobs.down == Some(true) {
        shared.stats.lock().expect("box stats lock").dropped_down += 1;
        return severed_reply();
    }
    if let Some(ms) = knobs.slow_ms.filter(|ms| *ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return envelope(
                endpoint,
                Err(ErrorBody::validation(&[(
                    "body".into(),
                    format!("at most {MAX_BODY} bytes"),
                )])),
            );
        }
    };
    let Some(endpoint) = endpoint else {
        return envelope(
            None,
            Err(ErrorBody::new(
                Code::UnknownEndpoint,
                Value::String(format!("no endpoint {path}")),
            )),
        );
    };
    let lose = (endpoint.is_fiscal() || matches!(endpoint, Endpoint::PaymentConfirm(_)))
        && knobs.lose_replies.unwrap_or(0) > 0;
    let result = handle(&shared, endpoint, &body, query.as_deref());
    if lose {
        let mut k = shared.knobs.lock().expect("box knobs lock");
        if let Some(n) = k.lose_replies.as_mut().filter(|n| **n > 0) {
            *n -= 1;
            drop(k);
            shared.stats.lock().expect("box stats lock").lost_replies += 1;
            return severed_reply();
        }
    }
    envelope(Some(endpoint), result)
}

fn handle(
    shared: &Shared,
    endpoint: Endpoint,
    body: &[u8],
    query: Option<&str>,
) -> Result<Value, ErrorBody> {
    let now = shared.now();
    let time = query_param(query, "time")
        .unwrap_or_else(|| now.format(facts::REQUEST_TIME_FORMAT).to_string());
    let mut m = shared.model();
    match endpoint {
        Endpoint::OrderCreate | Endpoint::OrderRefuse => {
            let req: OrderRequest = body_json(body)?;
            let fiscal = m.order(&req, endpoint == Endpoint::OrderRefuse, now)?;
            Ok(serde_json::to_value(fiscal).expect("fiscal data serializes"))
        }
        Endpoint::OrderPrint => m.reprint().map(|()| Value::Null),
        Endpoint::OrderLast => Ok(m.last_order()),
        Endpoint::ZReportOpen => m.open_shift(&time),
        Endpoint::ZReportClose => m.close_shift(&time).map(to_json),
        Endpoint::ZReportPrint => {
            let req: ZReportPrintRequest = body_json(body)?;
            if req.close_zreport {
                m.close_shift(&time).map(to_json)
            } else {
                m.x_report().map(to_json)
            }
        }
        Endpoint::ZReportInfo => m.zreport_info().map(to_json),
        Endpoint::Payment(p) => {
            let req: ProviderPayment = body_json(body)?;
            m.pay(p, &req)
        }
        Endpoint::PaymentConfirm(p) => {
            let v: Value = body_json(body)?;
            let c = Confirm::parse(p, &v).map_err(|bad| ErrorBody::validation(&bad))?;
            m.confirm(&c)
        }
        Endpoint::Card(t) => {
            let req: CardPayment = body_json(body)?;
            m.card(t, &req)
        }
        Endpoint::CardClose(t) => Ok(m.card_report(t, true)),
        Endpoint::CardShortReport(t) => Ok(m.card_report(t, false)),
        Endpoint::QrPay => {
            let req: QrPay = body_json(body)?;
            Ok(m.qr_pay(&req))
        }
        Endpoint::QrPayStatus => {
            let v: Value = body_json(body)?;
            let id = v.get("order_id").and_then(Value::as_str).ok_or_else(|| {
                ErrorBody::validation(&[("order_id".into(), "This field is required.".into())])
            })?;
            m.qr_pay_status(id)
        }
        Endpoint::OneQrCreate => {
            let req: OneQrCreate = body_json(body)?;
            m.one_qr_create(&req)
        }
        Endpoint::OneQrStatus => {
            let id = query_param(query, "invoice_id").ok_or_else(|| {
                ErrorBody::validation(&[("invoice_id".into(), "This field is required.".into())])
            })?;
            m.one_qr_status(&id)
        }
        Endpoint::Info => Ok(serde_json::to_value(m.info(now)).expect("info serializes")),
        Endpoint::OpenCashDrawer => {
            m.open_drawer();
            Ok(Value::Null)
        }
        Endpoint::Banner => {
            let v: Value = body_json(body)?;
            let banners: Vec<facts::Banner> = v
                .get("banners")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| ErrorBody::validation(&[("banners".into(), e.to_string())]))?
                .unwrap_or_default();
            if banners.is_empty() {
                return Err(ErrorBody::validation(&[(
                    "banners".into(),
                    "This field is required.".into(),
                )]));
            }
            m.banner();
            Ok(Value::Null)
        }
    }
}

fn to_json(z: facts::ZReport) -> Value {
    serde_json::to_value(z).expect("a Z report serializes")
}

/// A billing status of the facts as the simulator answers it.
fn billing_status(code: u16) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(code).expect("the facts' billing statuses are HTTP statuses")
}
