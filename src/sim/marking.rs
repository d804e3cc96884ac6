//! A simulator of the permissive-mode services (`fiscald sim marking`): the
//! national system's online check and the local module ЛМ ЧЗ, in the shapes
//! of `marking::wire`, with fault knobs.
//!
//! - [`MarkingModel`] (pure): answers a check for a list of codes at a given
//!   time: every code sellable unless a knob refuses it; the local module
//!   turns `sync_error` once its last sync is older than 72 h.
//! - [`SimMarking`]: the HTTP shell. Knobs (`GET`/`POST /sim/knobs`):
//!   `refuse` (code → reason: `sold`, `blocked`, `not_found`, `invalid`),
//!   `unreachable` (new connections are dropped, requests on old ones hang),
//!   `slow_ms` (added before every answer), `last_sync_age_ms` (the local
//!   module's age of its last sync, for the deadline indicators), and
//!   `online_down` (only the online check fails: the local module answers).
//!   `GET /sim/stats` counts the checks each service answered.

use crate::marking::wire::{
    self, CheckReply, CodeInfo, LocalError, LocalRequest, LocalStatus, OnlineRequest,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// The knobs; in a patch, absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkingKnobs {
    pub refuse: Option<BTreeMap<String, String>>,
    pub unreachable: Option<bool>,
    pub online_down: Option<bool>,
    pub slow_ms: Option<u64>,
    pub last_sync_age_ms: Option<i64>,
}

/// Checks answered so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarkingStats {
    pub online_checks: u64,
    pub local_checks: u64,
    /// Every code asked about, in order.
    pub codes: Vec<String>,
}

/// The simulated services' state. Pure: time is passed in.
#[derive(Clone, Debug)]
pub struct MarkingModel {
    knobs: MarkingKnobs,
    stats: MarkingStats,
    requests: u64,
}

/// Which service a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Online,
    Local,
}

impl Default for MarkingModel {
    fn default() -> Self {
        MarkingModel {
            knobs: MarkingKnobs {
                refuse: Some(BTreeMap::new()),
                unreachable: Some(false),
                online_down: Some(false),
                slow_ms: Some(0),
                last_sync_age_ms: Some(60_000),
            },
            stats: MarkingStats::default(),
            requests: 0,
        }
    }
}

impl MarkingModel {
    pub fn knobs(&self) -> &MarkingKnobs {
        &self.knobs
    }

    pub fn stats(&self) -> &MarkingStats {
        &self.stats
    }

    /// Apply a patch; a reason outside the known set is refused.
    pub fn set_knobs(&mut self, patch: MarkingKnobs) -> Result<(), String> {
        if let Some(refuse) = &patch.refuse
            && let Some((code, why)) = refuse.iter().find(|(_, why)| {
                !["sold", "blocked", "not_found", "invalid"].contains(&why.as_str())
            })
        {
            return Err(format!(
                "refuse[{code:?}] = {why:?}: the reason must be sold, blocked, not_found or invalid"
            ));
        }
        let k = &mut self.knobs;
        macro_rules! take {
            ($($f:ident),*) => { $( if patch.$f.is_some() { k.$f = patch.$f; } )* };
        }
        take!(refuse, unreachable, online_down, slow_ms, last_sync_age_ms);
        Ok(())
    }

    fn unreachable(&self) -> bool {
        self.knobs.unreachable == Some(true)
    }

    fn local_status(&self, now_ms: i64) -> LocalStatus {
        let age = self.knobs.last_sync_age_ms.unwrap_or(0);
        LocalStatus {
            status: if age > wire::LOCAL_SYNC_LIMIT_MS {
                "sync_error".into()
            } else {
                "ready".into()
            },
            last_sync: now_ms - age,
            version: "sim-1".into(),
        }
    }

    /// Answer a check. `Err` is an HTTP status with the local module's error body.
    pub fn check(
        &mut self,
        which: Which,
        codes: &[String],
        now_ms: i64,
    ) -> Result<CheckReply, (StatusCode, LocalError)> {
        if which == Which::Online && self.knobs.online_down == Some(true) {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                LocalError {
                    error_code: 503,
                    description: "online check unavailable (sim knob online_down)".into(),
                },
            ));
        }
        if which == Which::Local && self.local_status(now_ms).status == "sync_error" {
            return Err((
                StatusCode::BAD_REQUEST,
                LocalError {
                    error_code: wire::LOCAL_SYNC_ERROR,
                    description: "sync_error: no sync for over 72 hours".into(),
                },
            ));
        }
        self.requests += 1;
        match which {
            Which::Online => self.stats.online_checks += 1,
            Which::Local => self.stats.local_checks += 1,
        }
        self.stats.codes.extend(codes.iter().cloned());
        let refuse = self.knobs.refuse.clone().unwrap_or_default();
        let infos = codes
            .iter()
            .map(|cis| {
                // Offline the local module knows only its block list (§A1).
                let mut info = match which {
                    Which::Online => CodeInfo {
                        cis: cis.clone(),
                        valid: true,
                        found: true,
                        utilised: true,
                        verified: true,
                        realizable: true,
                        error_code: Some(0),
                        ..CodeInfo::default()
                    },
                    Which::Local => CodeInfo {
                        cis: cis.clone(),
                        error_code: Some(0),
                        ..CodeInfo::default()
                    },
                };
                match refuse.get(cis).map(String::as_str) {
                    Some("sold") => info.sold = true,
                    Some("blocked") => info.is_blocked = true,
                    Some("not_found") => info.found = false,
                    Some("invalid") => info.valid = false,
                    _ => {}
                }
                // The local module can judge only a block: anything else it
                // reports as blocked too, so the knob refuses on both services.
                if which == Which::Local && refuse.contains_key(cis) {
                    info.is_blocked = true;
                }
                info
            })
            .collect();
        Ok(CheckReply {
            code: 0,
            description: Some("ok".into()),
            codes: infos,
            req_id: format!("00000000-0000-4000-8000-{:012x}", self.requests),
            req_timestamp: now_ms,
            is_checked_offline: (which == Which::Local).then_some(true),
            inst: (which == Which::Local).then(|| "sim-lm".into()),
            version: (which == Which::Local).then(|| "sim-1".into()),
        })
    }
}

type Shared = Arc<Mutex<MarkingModel>>;

fn lock(m: &Shared) -> std::sync::MutexGuard<'_, MarkingModel> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Before answering: the slow knob, and hang while "unreachable".
async fn delay(m: &Shared) {
    let (slow, unreachable) = {
        let m = lock(m);
        (m.knobs.slow_ms.unwrap_or(0), m.unreachable())
    };
    if unreachable {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
}

fn answer(r: Result<CheckReply, (StatusCode, LocalError)>) -> Response {
    match r {
        Ok(reply) => Json(reply).into_response(),
        Err((status, e)) => (status, Json(e)).into_response(),
    }
}

async fn online(
    State(m): State<Shared>,
    headers: HeaderMap,
    body: Json<OnlineRequest>,
) -> Response {
    delay(&m).await;
    if !headers.contains_key(wire::ONLINE_TOKEN_HEADER) {
        return (StatusCode::UNAUTHORIZED, "X-API-KEY required").into_response();
    }
    answer(lock(&m).check(Which::Online, &body.codes, now_ms()))
}

async fn local(State(m): State<Shared>, headers: HeaderMap, body: Json<LocalRequest>) -> Response {
    delay(&m).await;
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return (StatusCode::UNAUTHORIZED, "Basic auth required").into_response();
    }
    answer(lock(&m).check(Which::Local, &body.cis_list, now_ms()))
}

async fn status(State(m): State<Shared>) -> Response {
    delay(&m).await;
    Json(lock(&m).local_status(now_ms())).into_response()
}

async fn get_knobs(State(m): State<Shared>) -> Response {
    Json(lock(&m).knobs().clone()).into_response()
}

async fn set_knobs(State(m): State<Shared>, body: Json<MarkingKnobs>) -> Response {
    let mut model = lock(&m);
    match model.set_knobs(body.0) {
        Ok(()) => Json(model.knobs().clone()).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": e})),
        )
            .into_response(),
    }
}

async fn stats(State(m): State<Shared>) -> Response {
    Json(lock(&m).stats().clone()).into_response()
}

/// The simulator, serving on its own task.
pub struct SimMarking {
    addr: SocketAddr,
    model: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimMarking {
    pub async fn start(listener: TcpListener) -> SimMarking {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let model: Shared = Arc::new(Mutex::new(MarkingModel::default()));
        let app = Router::new()
            .route(wire::ONLINE_CHECK_PATH, post(online))
            .route(wire::LOCAL_CHECK_PATH, post(local))
            .route(wire::LOCAL_STATUS_PATH, get(status))
            .route("/sim/knobs", get(get_knobs).post(set_knobs))
            .route("/sim/stats", get(stats))
            .with_state(model.clone());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = model.clone();
        let task = tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        if lock(&shared).unreachable() {
                            drop(stream); // as if nobody were there
                            continue;
                        }
                        let conn = builder.serve_connection(
                            TokioIo::new(stream),
                            TowerToHyperService::new(app.clone()),
                        );
                        tokio::spawn(async move { let _ = conn.await; });
                    }
                    _ = &mut stopped => break,
                }
            }
        });
        SimMarking {
            addr,
            model,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:port`: both services' base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_knobs(&self, patch: MarkingKnobs) -> Result<(), String> {
        lock(&self.model).set_knobs(patch)
    }

    pub fn stats(&self) -> MarkingStats {
        lock(&self.model).stats().clone()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

/// `fiscald sim marking`: serve until SIGINT/SIGTERM.
pub async fn run_cli(listen: SocketAddr, knobs: MarkingKnobs) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let sim = SimMarking::start(listener).await;
    sim.set_knobs(knobs)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    println!(
        "fiscald sim marking: online check {0}{1}, local module {0}{2}; knobs {0}/sim/knobs",
        sim.base_url(),
        wire::ONLINE_CHECK_PATH,
        wire::LOCAL_CHECK_PATH
    );
    crate::daemon::wait_for_signal().await;
    sim.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_refuse_codes_and_an_old_sync_stops_the_local_module() {
        let mut m = MarkingModel::default();
        let codes = vec!["a".to_string(), "b".to_string()];
        let r = m.check(Which::Online, &codes, 1000).unwrap();
        assert!(r.codes.iter().all(|c| c.realizable && !c.sold));
        m.set_knobs(MarkingKnobs {
            refuse: Some(BTreeMap::from([("b".into(), "sold".into())])),
            ..Default::default()
        })
        .unwrap();
        let r = m.check(Which::Online, &codes, 1000).unwrap();
        assert!(r.codes[1].sold && !r.codes[0].sold);
        let r = m.check(Which::Local, &codes, 1000).unwrap();
        assert!(r.codes[1].is_blocked && !r.codes[0].is_blocked);
        assert_ne!(r.req_id, "");
        m.set_knobs(MarkingKnobs {
            last_sync_age_ms: Some(wire::LOCAL_SYNC_LIMIT_MS + 1),
            ..Default::default()
        })
        .unwrap();
        let e = m.check(Which::Local, &codes, 1000).unwrap_err();
        assert_eq!(e.1.error_code, wire::LOCAL_SYNC_ERROR);
        assert!(
            m.set_knobs(MarkingKnobs {
                refuse: Some(BTreeMap::from([("x".into(), "maybe".into())])),
                ..Default::default()
            })
            .is_err()
        );
        assert_eq!(m.stats().online_checks, 2);
    }
}
