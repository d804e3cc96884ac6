//! The technician's status page: `GET /`, server-rendered HTML (maud) that
//! works without JavaScript, refreshes itself and reads on a phone; and its
//! actions (test print, open drawer, X report, retry or discard a rejected
//! receipt).
//!
//! The front door runs first (Host in `api.allowed_hosts`, no other site's
//! page), but asks no bearer token here: a browser cannot send one. Instead
//! an action needs, all at once: a session made by signing in with an
//! operator token from `[[api.tokens]]` (`POST /ops/login`; the cookie is
//! `HttpOnly`, `SameSite=Strict`), the session's CSRF token in the form, and
//! a request from the page's own origin (`Origin`/`Sec-Fetch-Site`). Without
//! an operator token configured the page is read-only.

use super::status::{self, StatusReport};
use super::{AppState, Shared, policy};
use crate::config::{ApiSettings, AuthMode, Role};
use crate::devices::runtime::DeviceState;
use crate::telemetry::Minute;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How often the page reloads itself.
pub const REFRESH_S: u32 = 10;
/// A technician's session lasts this long after signing in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once (the oldest is dropped beyond).
const SESSIONS_MAX: usize = 32;
const COOKIE: &str = "fiscald_session";

struct Session {
    csrf: String,
    expires: Instant,
}

/// The page's state: config summary and sign-in sessions.
pub struct OpsState {
    pub summary: status::ConfigSummary,
    sessions: Mutex<HashMap<String, Session>>,
}

/// Is an operator token configured (`[[api.tokens]]` with `role = "operator"`)?
pub fn operator_enabled(api: &ApiSettings) -> bool {
    api.tokens.iter().any(|t| t.role.covers(Role::Operator))
}

/// Is `presented` an operator token? The front door's own check: hashed,
/// compared in constant time against every configured token.
pub fn is_operator(api: &ApiSettings, presented: &str) -> bool {
    matches!(
        policy::authenticate(api, AuthMode::Token, Some(&format!("Bearer {presented}"))),
        Ok(policy::Caller::Token { role, .. }) if role.covers(Role::Operator)
    )
}

impl OpsState {
    pub fn new(summary: status::ConfigSummary) -> OpsState {
        OpsState {
            summary,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn open_session(&self) -> (String, String) {
        let id = random_hex();
        let csrf = random_hex();
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= SESSIONS_MAX
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        (id, csrf)
    }

    /// The CSRF token of the request's live session, if any.
    fn session_csrf(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers, COOKIE)?;
        let sessions = self.sessions.lock().expect("sessions lock");
        let s = sessions.get(&id)?;
        (s.expires > Instant::now()).then(|| s.csrf.clone())
    }

    fn close_session(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.sessions.lock().expect("sessions lock").remove(&id);
        }
    }
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Why an action was refused (403, shown as a page).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    OtherOrigin(String),
    NoSession,
    BadCsrf,
    Disabled,
}

impl Refusal {
    fn message(&self) -> String {
        match self {
            Refusal::OtherOrigin(why) => {
                format!("refused: the request did not come from this page ({why})")
            }
            Refusal::NoSession => "refused: sign in with the operator token first".into(),
            Refusal::BadCsrf => {
                "refused: the form is stale or forged (CSRF token mismatch); reload the page".into()
            }
            Refusal::Disabled => {
                "refused: no operator token is configured, so the page is read-only".into()
            }
        }
    }
}

/// On top of the front door (which has checked `Host` against
/// `api.allowed_hosts` and refused other sites' pages): a page action must
/// come from this page itself — `Origin` absent or our own, and
/// `Sec-Fetch-Site` absent, `same-origin` or `none`. A POS page in
/// `api.allowed_origins` may call the API, but not drive the status page.
pub fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(Refusal::OtherOrigin(format!("Sec-Fetch-Site: {site}")));
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin)
            if origin != format!("http://{host}") && origin != format!("https://{host}") =>
        {
            Err(Refusal::OtherOrigin(format!(
                "Origin {origin} is not this page"
            )))
        }
        _ => Ok(()),
    }
}

fn check_action(app: &AppState, headers: &HeaderMap, csrf: &str) -> Result<(), Refusal> {
    same_origin(headers)?;
    if !operator_enabled(&app.api) {
        return Err(Refusal::Disabled);
    }
    let expected = app.ops.session_csrf(headers).ok_or(Refusal::NoSession)?;
    if bool::from(expected.as_bytes().ct_eq(csrf.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal::BadCsrf)
    }
}

fn refused(r: Refusal) -> Response {
    tracing::warn!(reason = %r.message(), "status page: action refused");
    (
        StatusCode::FORBIDDEN,
        Html(
            html! {
                (DOCTYPE)
                html { head { meta charset="utf-8"; title { "fiscald: refused" } }
                body { h1 { "403" } p { (r.message()) } p { a href="/" { "back to the status page" } } } }
            }
            .into_string(),
        ),
    )
        .into_response()
}

/// Is `path` the status page or one of its actions? The front door asks no
/// bearer token there (the page signs in an operator itself).
pub fn is_page_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ops/")
}

/// The page, its actions and `GET /metrics` (outside every dialect's prefix).
pub fn routes() -> axum::Router<std::sync::Arc<AppState>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(page))
        .route("/ops/login", post(login))
        .route("/ops/logout", post(logout))
        .route("/ops/receipts/{id}/{action}", post(receipt_action))
        .route("/ops/{action}", post(device_action))
        .route("/metrics", get(super::metrics::get_metrics))
}

/// Back to the page with a message (`?msg=`), as a 303 after a POST.
fn done(msg: &str) -> Response {
    let q: String = url_escape(msg);
    Redirect::to(&format!("/?msg={q}")).into_response()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    msg: Option<String>,
}

async fn page(
    State(app): Shared,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    let report = status::collect(&app).await;
    let csrf = app.ops.session_csrf(&headers);
    let view = PageView {
        report: &report,
        operator_enabled: operator_enabled(&app.api),
        csrf: csrf.as_deref(),
        message: q.msg.as_deref(),
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(render(&view).into_string()),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

async fn login(State(app): Shared, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    if let Err(r) = same_origin(&headers) {
        return refused(r);
    }
    if !operator_enabled(&app.api) {
        return refused(Refusal::Disabled);
    }
    if !is_operator(&app.api, form.token.trim()) {
        tracing::warn!("status page: sign-in with a wrong operator token");
        return refused(Refusal::NoSession);
    }
    let (id, _) = app.ops.open_session();
    tracing::info!("status page: operator signed in");
    (
        [(
            header::SET_COOKIE,
            format!(
                "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                SESSION_TTL.as_secs()
            ),
        )],
        done("signed in"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn logout(State(app): Shared, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(r) = check_action(&app, &headers, &form.csrf) {
        return refused(r);
    }
    app.ops.close_session(&headers);
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
        done("signed out"),
    )
        .into_response()
}

/// `POST /ops/{action}`: test-print, drawer, x-report.
async fn device_action(
    State(app): Shared,
    Path(action): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_action(&app, &headers, &form.csrf) {
        return refused(r);
    }
    let Some(devices) = app.devices.clone() else {
        return done("no devices are configured on this till");
    };
    let result = match action.as_str() {
        "test-print" => devices
            .test_print(vec![
                "fiscald test print".into(),
                format!("version {}", env!("CARGO_PKG_VERSION")),
                chrono::Utc::now()
                    .with_timezone(&app.tz)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
            ])
            .await
            .map(|_| "test print sent".to_string()),
        "drawer" => devices
            .open_drawer()
            .await
            .map(|()| "cash drawer opened".to_string()),
        "x-report" => devices
            .x_report()
            .await
            .map(|_| "X report printed".to_string()),
        other => return done(&format!("no such action: {other}")),
    };
    match result {
        Ok(m) => {
            tracing::info!(action, "status page: operator action done");
            done(&m)
        }
        Err(e) => {
            tracing::warn!(action, error = %e, "status page: operator action failed");
            done(&format!("{action} failed: {e}"))
        }
    }
}

/// `POST /ops/receipts/{id}/{retry|discard}`.
async fn receipt_action(
    State(app): Shared,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_action(&app, &headers, &form.csrf) {
        return refused(r);
    }
    let result = match action.as_str() {
        // The journal wakes the workers when it commits the job.
        "retry" => app
            .journal
            .operator_retry(id.clone())
            .await
            .map(|r| format!("receipt {} queued again", r.number)),
        "discard" => {
            let reason = form.reason.trim();
            if reason.is_empty() || reason.chars().count() > super::native::MAX_REASON_CHARS {
                return done("a discard needs a reason (1 to 500 characters)");
            }
            app.journal
                .operator_discard(id.clone(), format!("status page: {reason}"))
                .await
                .map(|r| format!("receipt {} discarded", r.number))
        }
        other => return done(&format!("no such action: {other}")),
    };
    match result {
        Ok(m) => {
            tracing::info!(receipt_id = %id, action, "status page: operator action done");
            done(&m)
        }
        Err(e) => done(&format!("{action} of {id} failed: {e}")),
    }
}

/// What `render` needs.
pub struct PageView<'a> {
    pub report: &'a StatusReport,
    pub operator_enabled: bool,
    /// The session's CSRF token when signed in.
    pub csrf: Option<&'a str>,
    pub message: Option<&'a str>,
}

const CSS: &str = "
body{font-family:system-ui,sans-serif;margin:0;padding:.5rem;background:#f4f5f7;color:#222;max-width:60rem;margin:auto}
h1{font-size:1.3rem;margin:.3rem 0}h2{font-size:1.05rem;margin:0 0 .4rem}
section{background:#fff;border-radius:.4rem;padding:.6rem .8rem;margin:.5rem 0;box-shadow:0 1px 2px #0002}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.15rem .3rem;border-bottom:1px solid #eee;vertical-align:top}td{overflow-wrap:anywhere}th{white-space:nowrap}
.ok{color:#176b2c}.bad{color:#b00020;font-weight:600}.warn{color:#9a5b00}.muted{color:#666;font-size:.85rem}
.attention{background:#fde8ea;border-left:.3rem solid #b00020}.allgood{background:#e6f4ea;border-left:.3rem solid #176b2c}
.msg{background:#e8f0fe}form{display:inline}button{margin:.15rem;padding:.35rem .7rem;font-size:.95rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:.5rem}.grid section{margin:0}
svg{width:100%;height:auto;background:#fafafa}code{word-break:break-all}
";

fn severity_class(s: crate::deadlines::Severity) -> &'static str {
    use crate::deadlines::Severity;
    match s {
        Severity::Ok => "ok",
        Severity::Warn => "warn",
        Severity::Critical | Severity::Blocking => "bad",
    }
}

fn deadline_class(most_urgent: crate::deadlines::Severity) -> &'static str {
    use crate::deadlines::Severity;
    match most_urgent {
        Severity::Critical | Severity::Blocking => "attention",
        _ => "",
    }
}

fn state_class(s: DeviceState) -> &'static str {
    match s {
        DeviceState::Ready | DeviceState::Busy => "ok",
        DeviceState::Connecting => "warn",
        DeviceState::Absent | DeviceState::Faulted => "bad",
    }
}

fn state_word(s: DeviceState) -> &'static str {
    match s {
        DeviceState::Absent => "absent",
        DeviceState::Connecting => "connecting",
        DeviceState::Ready => "ready",
        DeviceState::Busy => "busy",
        DeviceState::Faulted => "faulted",
    }
}

fn uptime(s: u64) -> String {
    format!("{}d {}h {}m", s / 86400, s / 3600 % 24, s / 60 % 60)
}

/// The page, pure: the report in, HTML out (tested without a server).
pub fn render(v: &PageView<'_>) -> Markup {
    let r = v.report;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(REFRESH_S);
                title { "fiscald — till status" }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "fiscald " (r.version) }
                p.muted { "As of " (r.now) " · up " (uptime(r.uptime_s)) " · refreshes every " (REFRESH_S) " s · "
                    a href="/v1/status" { "JSON" } " · " a href="/metrics" { "metrics" } }
                @if let Some(m) = v.message { section.msg #message { (m) } }
                @if !r.deadlines.is_empty() {
                    section #deadlines class=(deadline_class(r.deadlines[0].severity)) {
                        h2 { "Deadlines" }
                        table {
                            @for c in &r.deadlines {
                                tr.deadline data-kind=(c.kind.as_str()) data-severity=(c.severity.as_str())
                                    data-seconds-left=[c.seconds_left] {
                                    th { span class=(severity_class(c.severity)) .severity { (c.severity.as_str()) } }
                                    td {
                                        span.message { (c.message) }
                                        @if let Some(at) = c.bites_at {
                                            br; span.muted { "bites at " (at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) }
                                        }
                                        @if c.severity >= crate::deadlines::Severity::Warn {
                                            br; "→ " span.action { (c.action) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if r.attention.is_empty() {
                    section.allgood #attention { "All is well." }
                } @else {
                    section.attention #attention {
                        h2 { "Needs attention" }
                        ul { @for a in &r.attention { li { (a) } } }
                    }
                }
                div.grid {
                    section #devices {
                        h2 { "Devices" }
                        @if r.devices.is_empty() { p.muted { "No devices configured." } }
                        table {
                            @for d in &r.devices {
                                tr {
                                    th { (d.name) }
                                    td {
                                        span class=(state_class(d.state)) data-state=(state_word(d.state)) { (state_word(d.state)) }
                                        @if let Some(reason) = &d.reason { " — " span.reason { (reason) } }
                                        br; span.muted { "port " code { (d.path) } " · since " (d.since) }
                                        @if let Some(e) = &d.last_error { br; span.muted { "last error: " (e) } }
                                        @if let Some(paper) = d.details.get("paper").and_then(|p| p.as_str()) {
                                            br; "paper: " span class=(if paper == "ok" { "ok" } else { "bad" }) .paper { (paper) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section #queue {
                        h2 { "Journal & queue" }
                        table {
                            tr { th { "receipts today" } td #receipts-today { (r.journal.receipts_today) } }
                            tr { th { "receipts in journal" } td { (r.journal.receipts_total) } }
                            @for c in &r.journal.by_state { tr { th { "· " (c.state) } td data-state=(c.state) { (c.count) } } }
                            tr { th { "waiting to fiscalize" } td #backlog { (r.journal.backlog) } }
                            @for c in &r.journal.queue { tr { th { "job " (c.key) " " (c.state) } td data-job=(format!("{}/{}", c.key, c.state)) { (c.count) } } }
                            tr { th { "oldest unfiscalized" } td { (r.journal.oldest_unfiscalized.as_deref().unwrap_or("—")) } }
                            tr { th { "journal size" } td { (r.journal.size_bytes / 1024) " KiB" } }
                            tr { th { "commits" } td { (r.journal.commits) } }
                            tr { th { "writable" } td class=(if r.journal.writable { "ok" } else { "bad" }) { (if r.journal.writable { "yes" } else { "NO" }) } }
                        }
                    }
                    section #cloud {
                        h2 { "Cloud" }
                        table {
                            tr { th { "state" } td #cloud-state {
                                @match r.cloud.online {
                                    None => span.muted { "sync off" },
                                    Some(true) => span.ok { "online" },
                                    Some(false) => span.bad { "offline" },
                                }
                                @if let Some(s) = &r.cloud.since { span.muted { " since " (s) } }
                            } }
                            tr { th { "last success" } td #cloud-last-success { (r.cloud.last_success.as_deref().unwrap_or("—")) } }
                            tr { th { "last error" } td { (r.cloud.last_error.as_deref().unwrap_or("—")) } }
                            tr { th { "token expires" } td { (r.cloud.token_expires_at.as_deref().unwrap_or("—")) } }
                            tr { th { "fiscalized / failures" } td #cloud-fiscalized { (r.cloud.fiscalized) " / " (r.cloud.failures) } }
                            tr { th { "processing" } td { code { (r.config.cloud_url) } } }
                        }
                    }
                    section #shift {
                        h2 { "Shift" }
                        table {
                            tr { th { "register shift" } td { (r.shift.register_shift.as_deref().unwrap_or("no register")) } }
                            @if let Some(n) = r.shift.number { tr { th { "number" } td { (n) } } }
                            tr { th colspan="2" { "today (" (r.shift.date) ") by payment" } }
                            @if r.shift.totals.is_empty() { tr { td colspan="2" .muted { "no receipts today" } } }
                            @for t in &r.shift.totals {
                                tr { th { (t.receipt_kind) " · " (t.payment_kind) } td data-total=(format!("{}/{}", t.receipt_kind, t.payment_kind)) { (t.text) " " (r.config.currency) } }
                            }
                        }
                        @if let Some(c) = &r.sverka {
                            h2 { "FiscalBox reconciliation" }
                            table #sverka {
                                tr { th { "checked" } td { (c.at) } }
                                tr { th { "result" } td data-sverka=(c.result) { (c.result) } }
                                tr { th { "receipts not yet on the box" } td { (c.pending_receipts) } }
                                @if let Some(e) = &c.fiscalbox_error { tr { th { "FiscalBox error" } td { (e) } } }
                                @for d in &c.differences {
                                    tr { th { (d.field) } td { "journal " (d.journal) ", FiscalBox " (d.fiscalbox) } }
                                }
                            }
                        }
                        @if let Some(b) = &r.billing {
                            h2 { "Billing reconciliation" }
                            table #billing {
                                @match &b.last {
                                    None => tr { td colspan="2" .muted { "no check yet (runs after each Z report)" } },
                                    Some(l) => {
                                        tr { th { "period" } td { (l.start) " – " (l.end) " (" (l.trigger.as_str()) ")" } }
                                        tr { th { "checked" } td { (l.checked_at) " · " (l.attempts) " attempt(s)" } }
                                        tr { th { "journal" } td { (l.journal.orders) " orders, " (crate::domain::Money(l.journal.amount_tiyin).to_string()) } }
                                        @if let Some(c) = &l.billing { tr { th { "billing" } td { (c.orders) " orders, " (crate::domain::Money(c.amount_tiyin).to_string()) } } }
                                        tr { th { "result" } td data-billing=(serde_json::to_value(&l.outcome).ok().and_then(|v| v["result"].as_str().map(str::to_string)).unwrap_or_default()) {
                                            @match &l.outcome {
                                                crate::fiscalbox::billing::Outcome::Equal => "equal",
                                                crate::fiscalbox::billing::Outcome::Delayed { reason } => { "delayed: " (reason) },
                                                crate::fiscalbox::billing::Outcome::Refused { reason } => { "refused: " (reason) },
                                                crate::fiscalbox::billing::Outcome::Different { orders_difference, amount_difference_tiyin, explained_by, explained_more } => {
                                                    "different: " (orders_difference) " order(s), " (crate::domain::Money(*amount_difference_tiyin).to_string())
                                                    @for o in explained_by { " · receipt " (o.receipt_id) " #" (o.receipt_seq) }
                                                    @if *explained_more > 0 { " · and " (explained_more) " more" }
                                                },
                                            }
                                        } }
                                    },
                                }
                                @if b.unresolved_count > 0 {
                                    tr { th { "unresolved" } td data-billing-unresolved=(b.unresolved_count) { (b.unresolved_count) " check(s) not equal — see Attention" } }
                                }
                            }
                        }
                    }
                }
                section #chart {
                    h2 { "Backlog and acceptance latency, last hours" }
                    (chart(&r.chart))
                }
                section #rejected {
                    h2 { "Rejected receipts" }
                    @if r.journal.rejected.is_empty() { p.muted { "None." } }
                    table {
                        @for x in &r.journal.rejected {
                            tr {
                                td { "#" (x.number) br; span.muted { (x.accepted_at) } }
                                td { (x.error.as_deref().unwrap_or("")) }
                                td {
                                    @if let Some(csrf) = v.csrf {
                                        form method="post" action=(format!("/ops/receipts/{}/retry", x.id)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" { "Retry" }
                                        }
                                        form method="post" action=(format!("/ops/receipts/{}/discard", x.id)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="text" name="reason" placeholder="reason" required size="10";
                                            button type="submit" { "Discard" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                section #actions {
                    h2 { "Technician" }
                    @if !v.operator_enabled {
                        p.muted { "Read-only: no operator token is configured." }
                    } @else if let Some(csrf) = v.csrf {
                        @for (action, label) in [("test-print", "Test print"), ("drawer", "Open drawer"), ("x-report", "X report")] {
                            form method="post" action=(format!("/ops/{action}")) {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { (label) }
                            }
                        }
                        form method="post" action="/ops/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    } @else {
                        form method="post" action="/ops/login" {
                            label { "Operator token " input type="password" name="token" autocomplete="current-password" required; }
                            button type="submit" { "Sign in" }
                        }
                    }
                }
                section #errors {
                    h2 { "Latest errors and events" }
                    table {
                        @for e in r.recent_errors.iter().take(10) {
                            tr { td.muted { (e.at) } td class=(if e.level == "error" { "bad" } else { "warn" }) { (e.kind) } td { (e.message) } }
                        }
                        @for e in r.journal.events.iter().take(10) {
                            tr { td.muted { (e.at) } td { "#" (e.number) " " (e.state) } td { (e.actor) @if let Some(n) = &e.note { ": " (n) } } }
                        }
                    }
                }
                section #config {
                    h2 { "Configuration" }
                    table {
                        tr { th { "API" } td { (r.config.listen) } }
                        tr { th { "journal" } td { code { (r.config.journal) } } }
                        tr { th { "fiscal" } td { (r.config.country) " · " (r.config.currency) " · " (r.config.timezone) " · backend " (format!("{:?}", r.config.backend).to_lowercase()) } }
                        tr { th { "cloud" } td { (if r.config.cloud_enabled { "on" } else { "off" }) " · token " (r.config.cloud_token) } }
                        tr { th { "till PIN" } td { (r.config.till_pin) } }
                        @if let Some(p) = &r.config.register { tr { th { "register" } td { code { (p.path) } " @ " (p.baud) } } }
                        @if let Some(p) = &r.config.printer { tr { th { "printer" } td { code { (p.path) } " @ " (p.baud) } } }
                        tr { th { "drawer" } td { (format!("{:?}", r.config.drawer).to_lowercase()) } }
                    }
                }
            }
        }
    }
}

/// Two polylines over the kept minutes: backlog (left scale) and the
/// slowest acceptance per minute (right scale), as inline SVG.
fn chart(series: &[Minute]) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    if series.is_empty() {
        return html! { p.muted { "No samples yet." } };
    }
    let first = series[0].minute;
    let span = (series[series.len() - 1].minute - first).max(1) as f64;
    let max_backlog = series
        .iter()
        .filter_map(|m| m.backlog)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_ms = series
        .iter()
        .map(|m| m.accept_max_ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |m: i64| (m - first) as f64 / span * (W - 10.0) + 5.0;
    let backlog: String = series
        .iter()
        .filter_map(|m| {
            m.backlog.map(|b| {
                format!(
                    "{:.1},{:.1} ",
                    x(m.minute),
                    H - 5.0 - b as f64 / max_backlog * (H - 10.0)
                )
            })
        })
        .collect();
    let latency: String = series
        .iter()
        .filter(|m| m.accepted > 0)
        .map(|m| {
            format!(
                "{:.1},{:.1} ",
                x(m.minute),
                H - 5.0 - m.accept_max_ms as f64 / max_ms * (H - 10.0)
            )
        })
        .collect();
    html! {
        svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="backlog and acceptance latency" {
            polyline points=(backlog) fill="none" stroke="#1a73e8" stroke-width="2" {}
            polyline points=(latency) fill="none" stroke="#e37400" stroke-width="1.5" {}
        }
        p.muted {
            span style="color:#1a73e8" { "■ backlog (max " (max_backlog as u64) ")" } " · "
            span style="color:#e37400" { "■ slowest acceptance per minute (max " (max_ms as u64) " ms)" }
            " · " (series.len()) " min"
        }
    }
}
