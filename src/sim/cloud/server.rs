//! The processing simulator's HTTP shell: routes under `/processing-api` that
//! parse a request, call the pure [`CloudModel`] and render its answer with
//! the [`crate::sync::wire`] types; the fault layer that performs what
//! [`Faults`] decides; control endpoints (`/sim/stats`, `/sim/knobs`) and the
//! reachability probe (`GET /`); and [`run_cli`] for `fiscald sim cloud`.
//!
//! Must never log a token: requests are logged by method, path and status,
//! and no path carries a token.

use super::faults::{Admission, FaultCounters, Faults, Knobs, KnobsError};
use super::model::{CloudCounters, CloudError, CloudModel};
use super::{API_PREFIX, SimConfig};
use crate::api::server::{HEADER_READ_TIMEOUT, serve};
use crate::clock::{Clock, SystemClock};
use crate::domain::Money;
use crate::sync::wire::{self, DocumentReply, ErrorBody, ReceiptBody};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long [`SimCloud::stop`] waits for requests in flight.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Everything the simulator has counted, as served by `GET /sim/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests to the processing API and the probe (not to `/sim/*`).
    pub requests: u64,
    /// Replies by status code; a severed reply is counted under `faults`.
    pub replies: BTreeMap<u16, u64>,
    /// What the processing did: documents, duplicates, logins, 401s …
    pub cloud: CloudCounters,
    /// Injected faults by kind.
    pub faults: FaultCounters,
    /// The knobs in force, every field set.
    pub knobs: Knobs,
}

/// Why the simulator could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid simulator knobs: {0}")]
    Knobs(#[from] KnobsError),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
}

struct Shared {
    model: Mutex<CloudModel>,
    faults: Mutex<Faults>,
    clock: Arc<dyn Clock>,
    requests: AtomicU64,
    replies: Mutex<BTreeMap<u16, u64>>,
    /// Turns `true` when the simulator stops: held requests let go at once.
    stopping: watch::Receiver<bool>,
}

impl Shared {
    fn model(&self) -> std::sync::MutexGuard<'_, CloudModel> {
        self.model.lock().expect("simulator model lock")
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().expect("simulator faults lock")
    }

    fn set_knobs(&self, patch: &Knobs) -> Result<Knobs, KnobsError> {
        self.faults().merge(patch)?;
        let mut model = self.model();
        if let Some(s) = patch.token_lifetime_s {
            model.set_token_lifetime_s(s);
        }
        if let Some(ms) = patch.processing_delay_ms {
            model.set_processing_delay_ms(ms);
        }
        if let Some(marker) = &patch.reject_marker {
            model.set_reject_marker(Some(marker.clone()));
        }
        drop(model);
        Ok(self.knobs())
    }

    fn knobs(&self) -> Knobs {
        let mut knobs = self.faults().knobs().clone();
        let model = self.model();
        let config = model.config();
        knobs.token_lifetime_s = Some(config.token_lifetime_s);
        knobs.processing_delay_ms = Some(config.processing_delay_ms);
        knobs.reject_marker = Some(config.reject_marker.clone().unwrap_or_default());
        knobs
    }

    fn stats(&self) -> SimStats {
        let faults = self.faults().counters().clone();
        let cloud = self.model().counters().clone();
        SimStats {
            requests: self.requests.load(Ordering::Relaxed),
            replies: self.replies.lock().expect("simulator replies lock").clone(),
            cloud,
            faults,
            knobs: self.knobs(),
        }
    }

    /// Sleep, but not past the simulator's stop.
    async fn pause(&self, duration: Duration) {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
    }
}

/// A running simulator. Dropping it stops it too, without waiting.
pub struct SimCloud {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimCloud {
    /// Serve the simulated processing on `listener` with the system clock.
    ///
    /// # Panics
    /// When `config.knobs` is invalid (a rate outside 0..1); [`run_cli`]
    /// reports that as an error instead.
    pub async fn start(listener: TcpListener, config: SimConfig) -> SimCloud {
        Self::start_with_clock(listener, config, Arc::new(SystemClock)).await
    }

    /// Like [`SimCloud::start`], with the clock that token expiry, the
    /// processing delay and document times follow (a `ManualClock` in tests).
    /// Latency, hangs and the rate limit always run on real time.
    pub async fn start_with_clock(
        listener: TcpListener,
        config: SimConfig,
        clock: Arc<dyn Clock>,
    ) -> SimCloud {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let faults = Faults::new(&Knobs::default()).expect("no knobs are valid knobs");
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared {
            model: Mutex::new(CloudModel::new(&config)),
            faults: Mutex::new(faults),
            clock,
            requests: AtomicU64::new(0),
            replies: Mutex::new(BTreeMap::new()),
            stopping,
        });
        shared
            .set_knobs(&config.knobs)
            .expect("valid simulator knobs");
        let app = router(shared.clone());
        let mut stopped = stop.subscribe();
        let task = tokio::spawn(serve(listener, app, HEADER_READ_TIMEOUT, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        SimCloud {
            addr,
            shared,
            stop,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/processing-api`: what the client is configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// The buyer's offline page of the receipt sent under `key`.
    pub fn offline_url(&self, key: &str) -> String {
        format!("{}/receipts/{key}", self.base_url())
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Merge `patch` over the knobs in force; returns the knobs now in force.
    /// Nothing changes when a value is out of range.
    pub fn set_knobs(&self, patch: Knobs) -> Result<Knobs, KnobsError> {
        self.shared.set_knobs(&patch)
    }

    /// The knobs in force, every field set.
    pub fn knobs(&self) -> Knobs {
        self.shared.knobs()
    }

    /// Look at (or change) the processing's state directly, e.g. to find the
    /// document of a key without going through HTTP.
    pub fn with_model<R>(&self, f: impl FnOnce(&mut CloudModel) -> R) -> R {
        f(&mut self.shared.model())
    }

    /// Stop accepting, let held requests go (503), and wait for requests in
    /// flight (at most a few seconds).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                tracing::warn!("processing simulator did not stop in time");
            }
        }
    }
}

impl Drop for SimCloud {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `fiscald sim cloud`: serve on `listen` until SIGINT or SIGTERM.
pub async fn run_cli(listen: SocketAddr, config: SimConfig) -> Result<(), SimError> {
    use tokio::signal::unix::{SignalKind, signal};
    config.knobs.validate()?;
    let mut term = signal(SignalKind::terminate()).map_err(SimError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(SimError::Signal)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })?;
    let sim = SimCloud::start(listener, config).await;
    // One plain line on stdout: how scripts learn a port-0 address.
    println!("fiscald sim cloud listening on {}", sim.base_url());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!(stats = ?sim.stats(), "processing simulator stopping");
    sim.stop().await;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(wire::TOKEN_PATH, post(token))
        .route(wire::REGISTER_PATH, post(register))
        .route(&wire::document_path("{id}"), get(document))
        .route("/receipts/{key}", get(offline_page));
    let faulted = Router::new()
        .route("/", get(probe))
        .nest(API_PREFIX, api)
        .layer(middleware::from_fn_with_state(shared.clone(), fault_layer));
    let control = Router::new()
        .route("/sim/stats", get(stats))
        .route("/sim/knobs", get(knobs).post(set_knobs));
    faulted.merge(control).with_state(shared)
}

/// Marks a response whose connection is to be severed (no status was sent).
#[derive(Clone, Copy)]
struct Severed;

/// Every request outside `/sim/*` passes here: latency, then the fate
/// [`Faults::admit`] decided, then the handler.
async fn fault_layer(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (latency, admission) = {
        let mut faults = shared.faults();
        (faults.latency(), faults.admit(started))
    };
    if !latency.is_zero() {
        shared.pause(latency).await;
    }
    let response = match admission {
        Admission::Serve => next.run(request).await,
        Admission::RateLimited => {
            let mut r = error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "request rate limit exceeded; retry after 1 second",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Admission::Fail(500) => error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "simulated internal error",
        ),
        Admission::Fail(_) => unavailable("simulated outage"),
        Admission::Hang(hold) => {
            shared.pause(hold).await;
            unavailable("simulated timeout: the request was held and dropped")
        }
    };
    let severed = response.extensions().get::<Severed>().is_some();
    if !severed {
        *shared
            .replies
            .lock()
            .expect("simulator replies lock")
            .entry(response.status().as_u16())
            .or_default() += 1;
    }
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        ?admission,
        severed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "processing simulator request"
    );
    response
}

fn error_reply(status: StatusCode, error: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: Some(error.into()),
        message: Some(message.into()),
    };
    (status, Json(body)).into_response()
}

fn unavailable(message: &str) -> Response {
    error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
        message,
    )
}

fn cloud_error(e: CloudError) -> Response {
    let status = match e {
        CloudError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        CloudError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        CloudError::Invalid(_) | CloudError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
        CloudError::Conflict(_) => StatusCode::CONFLICT,
        CloudError::NotFound(_) => StatusCode::NOT_FOUND,
    };
    (status, Json(e.body())).into_response()
}

fn bad_request(error: &'static str, message: impl Into<String>) -> Response {
    cloud_error(CloudError::BadRequest {
        error,
        message: message.into(),
    })
}

/// Whether the `Content-Type` is `mime` (parameters such as charset allowed).
fn content_type_is(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime))
}

fn unsupported_media_type(mime: &str) -> Response {
    error_reply(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        &format!("Content-Type must be {mime}"),
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn probe() -> &'static str {
    "fiscald processing simulator"
}

/// `POST /oauth/token`: login (`grant_type=token`) or refresh.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    const FORM: &str = "application/x-www-form-urlencoded";
    if !content_type_is(&headers, FORM) {
        return unsupported_media_type(FORM);
    }
    let form = match parse_form(&body) {
        Ok(form) => form,
        Err(e) => return bad_request("invalid_request", e),
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let now = shared.clock.now();
    let mut model = shared.model();
    if let Err(e) = model.client(field("client_id"), field("client_secret")) {
        return cloud_error(e);
    }
    let reply = match field("grant_type") {
        Some("token") => match field("token") {
            Some(token) => model.login(token, now),
            None => {
                return bad_request("invalid_request", "token is required for grant_type=token");
            }
        },
        Some("refresh_token") => match field("refresh_token") {
            Some(token) => model.refresh(token, now),
            None => {
                return bad_request(
                    "invalid_request",
                    "refresh_token is required for grant_type=refresh_token",
                );
            }
        },
        Some(other) => {
            return bad_request(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported; use token or refresh_token"),
            );
        }
        None => return bad_request("invalid_request", "grant_type is required"),
    };
    drop(model);
    match reply {
        Ok(tokens) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(tokens),
        )
            .into_response(),
        Err(e) => cloud_error(e),
    }
}

/// `POST /protected/documents/registration/receipts` → the bare document id.
async fn register(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = shared.clock.now();
    if let Err(e) = shared.model().authorize(bearer(&headers), now) {
        return cloud_error(e);
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(key)) if !key.trim().is_empty() => key.trim().to_owned(),
        Some(_) => {
            return bad_request(
                "bad_request",
                "the Idempotency-Key header must be visible ASCII text",
            );
        }
        None => return bad_request("bad_request", "the Idempotency-Key header is required"),
    };
    if !content_type_is(&headers, "application/json") {
        return unsupported_media_type("application/json");
    }
    let receipt: ReceiptBody = match serde_json::from_slice(&body) {
        Ok(receipt) => receipt,
        Err(e) => {
            return bad_request(
                "bad_request",
                format!("the receipt is not readable JSON: {e}"),
            );
        }
    };
    let registered = shared.model().register(&key, &receipt, now);
    match registered {
        Ok(registration) => {
            if shared.faults().reset_after_commit() {
                return severed_reply();
            }
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                registration.id.to_string(),
            )
                .into_response()
        }
        Err(e) => cloud_error(e),
    }
}

/// `GET /protected/documents/{id}`.
async fn document(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = shared.clock.now();
    let mut model = shared.model();
    if let Err(e) = model.authorize(bearer(&headers), now) {
        return cloud_error(e);
    }
    match id.parse().ok().and_then(|id| model.document(id, now)) {
        Some(reply) => Json(reply).into_response(),
        None => cloud_error(CloudError::NotFound(format!("document {id} not found"))),
    }
}

/// `GET /receipts/{key}`: the buyer's page; 200 whether or not the receipt
/// has arrived, as a printed QR code may be scanned before it does.
async fn offline_page(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    let now = shared.clock.now();
    let document = shared.model().by_key(&key, now);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        offline_html(&key, document.as_ref()),
    )
        .into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<SimStats> {
    Json(shared.stats())
}

async fn knobs(State(shared): State<Arc<Shared>>) -> Json<Knobs> {
    Json(shared.knobs())
}

async fn set_knobs(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: Knobs = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => return bad_request("bad_request", format!("knobs: {e}")),
    };
    match shared.set_knobs(&patch) {
        Ok(knobs) => Json(knobs).into_response(),
        Err(e) => bad_request("bad_request", e.to_string()),
    }
}

/// A 200 whose body fails before its first byte: hyper drops the connection
/// without flushing the head, so the client sees a broken connection and no
/// response — a reply lost after the commit.
pub(crate) fn severed_reply() -> Response {
    let mut response = Response::new(Body::new(SeveredBody));
    response.extensions_mut().insert(Severed);
    response
}

struct SeveredBody;

impl hyper::body::Body for SeveredBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset after commit",
        ))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        // A Content-Length promising more than will ever be sent.
        hyper::body::SizeHint::with_exact(64)
    }
}

/// Decode an `application/x-www-form-urlencoded` body.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the form is not UTF-8".to_string())?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape in form field {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("form field {s:?} is not UTF-8 once decoded"))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The buyer's page. `data-status` (`FISCALIZED`, `PROCESSING`, `NOT_RECEIVED`)
/// is there for scripts; people read the words.
fn offline_html(key: &str, document: Option<&DocumentReply>) -> String {
    let (status, heading, detail) = match document {
        Some(d) if d.fiscal_attributes.is_some() => (
            wire::STATUS_FISCALIZED,
            "Чек фискализирован",
            "The receipt is fiscalized.",
        ),
        Some(_) => (
            wire::STATUS_PROCESSING,
            "Чек получен и обрабатывается",
            "The processing has the receipt and is fiscalizing it.",
        ),
        None => (
            "NOT_RECEIVED",
            "Чек ещё не поступил в процессинг",
            "The receipt has not reached the processing yet; the till sends it when it is online.",
        ),
    };
    let mut rows = String::new();
    if let Some(d) = document {
        let total = d
            .receipt
            .as_ref()
            .and_then(|r| r.get("total"))
            .and_then(|t| Money::parse(&t.to_string()).ok());
        if let Some(total) = total {
            rows.push_str(&format!("<dt>Сумма</dt><dd>{total}</dd>\n"));
        }
        if let Some(a) = &d.fiscal_attributes {
            for (name, value) in [
                ("Дата и время", a.date_time.clone()),
                ("ФН", a.fiscal_drive_number.clone()),
                ("ФД", a.fiscal_document_number.to_string()),
                ("ФП", a.fiscal_sign.clone()),
                ("РН ККТ", a.kkt_reg_id.clone()),
                ("Смена", a.shift_number.to_string()),
                ("Чек в смене", a.receipt_number_in_shift.to_string()),
            ] {
                rows.push_str(&format!(
                    "<dt>{name}</dt><dd>{}</dd>\n",
                    html_escape(&value)
                ));
            }
            if let Some(url) = &a.ofd_receipt_url {
                let url = html_escape(url);
                rows.push_str(&format!(
                    "<dt>ОФД</dt><dd><a href=\"{url}\">{url}</a></dd>\n"
                ));
            }
        }
    }
    let refresh = if status == wire::STATUS_FISCALIZED {
        ""
    } else {
        "<meta http-equiv=\"refresh\" content=\"30\">\n"
    };
    format!(
        "<!doctype html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\">\n{refresh}\
         <title>{heading}</title></head>\n<body data-status=\"{status}\">\n<h1>{heading}</h1>\n\
         <p>{detail}</p>\n<dl>\n{rows}</dl>\n<p><small>Idempotency-Key: {}</small></p>\n</body></html>\n",
        html_escape(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent_escapes() {
        let form = parse_form(
            b"grant_type=token&token=a%2Bb+c%3D&client_id=processing-connector-token&empty=&flag",
        )
        .unwrap();
        assert_eq!(
            form,
            vec![
                ("grant_type".into(), "token".into()),
                ("token".into(), "a+b c=".into()),
                ("client_id".into(), "processing-connector-token".into()),
                ("empty".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(percent_decode("%D0%98").unwrap(), "И");
        assert!(parse_form(b"token=%zz").is_err());
        assert!(parse_form(b"token=%4").is_err());
        assert!(parse_form(b"token=%FF").is_err());
        assert!(parse_form(b"").unwrap().is_empty());
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn content_types_allow_parameters() {
        let mut h = HeaderMap::new();
        assert!(!content_type_is(&h, "application/json"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(content_type_is(&h, "application/json"));
        assert!(!content_type_is(&h, "application/x-www-form-urlencoded"));
    }

    #[test]
    fn the_offline_page_escapes_the_key() {
        let html = offline_html("<script>", None);
        assert!(html.contains("data-status=\"NOT_RECEIVED\""));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
