//! The processing simulator over real HTTP (port 0, reqwest): tokens,
//! idempotent registration, validation, the offline page, and every fault knob.

use chrono::{TimeDelta, TimeZone, Utc};
use fiscald::clock::ManualClock;
use fiscald::sim::cloud::{Knobs, SimCloud, SimConfig, SimStats};
use fiscald::sync::wire::{self, DocumentReply, ErrorBody, TokenReply};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECEIPT: &str = r#"{"type":"SALE","taxSystem":"COMMON","cashier":{"name":"Иванов И.И."},
"client":{"address":"buyer@example.com"},"items":[{"calculationMethod":"FULL_PAY",
"paymentSubject":"SERVICE","name":"Услуга","price":100.00,"quantity":1.500,"vat":"VAT_20",
"total":150.00}],"total":150.00,"payments":{"CASH":150.00}}"#;

const KEY: &str = "5f2b8f3c0a1d4e6b9c7a8d5e3f1b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b";

struct Harness {
    sim: SimCloud,
    base: String,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
}

impl Harness {
    async fn start(config: SimConfig) -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 11, 5, 0).unwrap(),
        ));
        let sim = SimCloud::start_with_clock(listener, config, clock.clone()).await;
        Harness {
            base: sim.base_url(),
            sim,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            clock,
        }
    }

    async fn token_request(&self, form: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, wire::TOKEN_PATH))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn login(&self) -> TokenReply {
        let reply = self
            .token_request(
                "grant_type=token&token=demo-connector-token\
                 &client_id=processing-connector-token&client_secret=processing-connector-token",
            )
            .await;
        assert_eq!(reply.status(), StatusCode::OK);
        reply.json().await.unwrap()
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token_request(&format!(
            "grant_type=refresh_token&refresh_token={refresh_token}\
             &client_id=processing-connector-token&client_secret=processing-connector-token"
        ))
        .await
    }

    async fn try_register(
        &self,
        token: &str,
        key: &str,
        body: &str,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}{}", self.base, wire::REGISTER_PATH))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
    }

    async fn register(&self, token: &str, key: &str, body: &str) -> reqwest::Response {
        self.try_register(token, key, body).await.unwrap()
    }

    async fn document(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.base, wire::document_path(id)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn offline_page(&self, key: &str) -> String {
        let reply = self
            .http
            .get(self.sim.offline_url(key))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(reply.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        reply.text().await.unwrap()
    }

    async fn set_knobs(&self, json: &str) -> reqwest::Response {
        self.http
            .post(format!("http://{}/sim/knobs", self.sim.addr()))
            .header(CONTENT_TYPE, "application/json")
            .body(json.to_string())
            .send()
            .await
            .unwrap()
    }
}

async fn error_of(reply: reqwest::Response) -> ErrorBody {
    reply.json().await.unwrap()
}

#[tokio::test]
async fn a_repeated_key_returns_the_same_document_and_another_body_conflicts() {
    let h = Harness::start(SimConfig::default()).await;
    let tokens = h.login().await;
    assert_eq!(tokens.token_type, "bearer");
    assert_eq!(tokens.expires_in, 3599);

    let first = h.register(&tokens.access_token, KEY, RECEIPT).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.text().await.unwrap(), "254934");
    let again = h.register(&tokens.access_token, KEY, RECEIPT).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.text().await.unwrap(), "254934");
    let stats = h.sim.stats();
    assert_eq!((stats.cloud.documents, stats.cloud.duplicates), (1, 1));

    let other = RECEIPT.replace("buyer@example.com", "other@example.com");
    let conflict = h.register(&tokens.access_token, KEY, &other).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert_eq!(error_of(conflict).await.error.as_deref(), Some("conflict"));

    let document = h.document(&tokens.access_token, "254934").await;
    assert_eq!(document.status(), StatusCode::OK);
    let document: DocumentReply = document.json().await.unwrap();
    assert_eq!(document.id, 254_934);
    assert_eq!(document.status, wire::STATUS_FISCALIZED);
    let attributes = document.fiscal_attributes.unwrap();
    assert_eq!(attributes.fiscal_document_number, 1);
    assert_eq!(attributes.date_time, "2026-11-23T14:05:00");
    assert_eq!(
        document.receipt.unwrap()["items"][0]["quantity"].to_string(),
        "1.500"
    );
    assert_eq!(
        h.document(&tokens.access_token, "254935").await.status(),
        StatusCode::NOT_FOUND
    );

    // The control endpoint serves the same numbers, and they read back.
    let served: SimStats = h
        .http
        .get(format!("http://{}/sim/stats", h.sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served.cloud, h.sim.stats().cloud);
    assert_eq!(served.cloud.conflicts, 1);
    assert_eq!(served.replies.get(&200), Some(&4));
    h.sim.stop().await;
}

#[tokio::test]
async fn requests_the_processing_cannot_read_or_accept_are_refused() {
    let h = Harness::start(SimConfig::default()).await;
    let bad_token = h
        .token_request("grant_type=token&token=nope&client_id=processing-connector-token&client_secret=processing-connector-token")
        .await;
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_of(bad_token).await.error.as_deref(),
        Some("invalid_grant")
    );
    let bad_client = h
        .token_request("grant_type=token&token=demo-connector-token&client_id=x&client_secret=y")
        .await;
    assert_eq!(bad_client.status(), StatusCode::UNAUTHORIZED);
    let bad_grant = h
        .token_request("grant_type=password&client_id=processing-connector-token&client_secret=processing-connector-token")
        .await;
    assert_eq!(bad_grant.status(), StatusCode::BAD_REQUEST);

    let no_auth = h
        .http
        .post(format!("{}{}", h.base, wire::REGISTER_PATH))
        .header("Idempotency-Key", KEY)
        .header(CONTENT_TYPE, "application/json")
        .body(RECEIPT)
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);

    let tokens = h.login().await;
    let no_key = h
        .http
        .post(format!("{}{}", h.base, wire::REGISTER_PATH))
        .bearer_auth(&tokens.access_token)
        .header(CONTENT_TYPE, "application/json")
        .body(RECEIPT)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), StatusCode::BAD_REQUEST);
    assert!(
        error_of(no_key)
            .await
            .message
            .unwrap()
            .contains("Idempotency-Key")
    );
    let malformed = h.register(&tokens.access_token, KEY, "{\"type\":").await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    let totals = RECEIPT.replace(r#""total":150.00}]"#, r#""total":149.99}]"#);
    let invalid = h.register(&tokens.access_token, KEY, &totals).await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e = error_of(invalid).await;
    assert_eq!(e.error.as_deref(), Some("validation"));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "items[0].total 149.99 is not price × quantity = 150.00; total 150.00 is not the sum of the item totals = 149.99"
        )
    );

    h.sim
        .set_knobs(Knobs {
            reject_marker: Some("[REJECT]".into()),
            ..Knobs::default()
        })
        .unwrap();
    let marked = RECEIPT.replace("Услуга", "Услуга [REJECT]");
    let rejected = h.register(&tokens.access_token, KEY, &marked).await;
    assert_eq!(rejected.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error_of(rejected)
            .await
            .message
            .unwrap()
            .contains("[REJECT]")
    );
    // Nothing refused became a document, so the key is still free.
    assert_eq!(
        h.register(&tokens.access_token, KEY, RECEIPT)
            .await
            .status(),
        StatusCode::OK
    );

    let stats = h.sim.stats();
    assert_eq!(stats.cloud.documents, 1);
    assert_eq!(stats.cloud.rejected, 2);
    assert_eq!(stats.cloud.unauthorized, 3);
    assert_eq!(stats.replies.get(&400), Some(&3));
    h.sim.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_until_refreshed_and_a_refresh_token_works_once() {
    let h = Harness::start(SimConfig::default()).await;
    let tokens = h.login().await;
    h.clock.advance(TimeDelta::seconds(3600));
    let expired = h.register(&tokens.access_token, KEY, RECEIPT).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(error_of(expired).await.message.unwrap().contains("expired"));

    let renewed = h.refresh(&tokens.refresh_token).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let renewed: TokenReply = renewed.json().await.unwrap();
    assert_eq!(
        h.register(&renewed.access_token, KEY, RECEIPT)
            .await
            .status(),
        StatusCode::OK
    );

    let reused = h.refresh(&tokens.refresh_token).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_of(reused).await.error.as_deref(),
        Some("invalid_grant")
    );
    let stats = h.sim.stats();
    assert_eq!(
        (
            stats.cloud.logins,
            stats.cloud.refreshes,
            stats.cloud.unauthorized
        ),
        (1, 1, 2)
    );
    h.sim.stop().await;
}

#[tokio::test]
async fn a_reply_lost_after_the_commit_is_a_client_error_and_the_retry_finds_the_document() {
    let h = Harness::start(SimConfig::default()).await;
    let tokens = h.login().await;
    assert_eq!(
        h.set_knobs(r#"{"reset_after_commit_rate": 1.0}"#)
            .await
            .status(),
        StatusCode::OK
    );
    let lost = h.try_register(&tokens.access_token, KEY, RECEIPT).await;
    let err = lost.expect_err("no HTTP response at all");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let stats = h.sim.stats();
    assert_eq!(
        stats.cloud.documents, 1,
        "committed before the reply was lost"
    );
    assert_eq!(
        stats.cloud.duplicates, 0,
        "the client did not resend on its own"
    );
    assert_eq!(stats.faults.resets_after_commit, 1);

    h.sim
        .set_knobs(Knobs {
            reset_after_commit_rate: Some(0.0),
            ..Knobs::default()
        })
        .unwrap();
    let retry = h.register(&tokens.access_token, KEY, RECEIPT).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.text().await.unwrap(), "254934");
    let stats = h.sim.stats();
    assert_eq!((stats.cloud.documents, stats.cloud.duplicates), (1, 1));
    h.sim.stop().await;
}

#[tokio::test]
async fn above_the_rate_limit_the_reply_is_429_with_retry_after() {
    let h = Harness::start(SimConfig {
        knobs: Knobs {
            rate_limit_per_s: Some(2),
            ..Knobs::default()
        },
        ..SimConfig::default()
    })
    .await;
    let probe = format!("http://{}/", h.sim.addr());
    for _ in 0..2 {
        let ok = h.http.get(&probe).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.text().await.unwrap(), "fiscald processing simulator");
    }
    let limited = h
        .http
        .get(format!("{}{}", h.base, wire::document_path("1")))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()[RETRY_AFTER], "1");
    assert_eq!(
        error_of(limited).await.error.as_deref(),
        Some("too_many_requests")
    );
    // Control endpoints are never limited or faulted.
    let stats = h
        .http
        .get(format!("http://{}/sim/stats", h.sim.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), StatusCode::OK);
    assert_eq!(h.sim.stats().faults.rate_limited, 1);
    assert_eq!(h.sim.stats().requests, 3);
    h.sim.stop().await;
}

#[tokio::test]
async fn failures_latency_and_hangs_are_injected_and_stop_lets_held_requests_go() {
    let h = Harness::start(SimConfig::default()).await;
    assert_eq!(
        h.set_knobs(r#"{"failure_rate": 2}"#).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.set_knobs(r#"{"no_such_knob": 1}"#).await.status(),
        StatusCode::BAD_REQUEST
    );

    h.set_knobs(r#"{"failure_rate": 1.0, "seed": 7}"#).await;
    for _ in 0..4 {
        let failed = h
            .http
            .get(format!("http://{}/", h.sim.addr()))
            .send()
            .await
            .unwrap();
        assert!(
            [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(&failed.status()),
            "{}",
            failed.status()
        );
        assert!(error_of(failed).await.error.is_some());
    }
    let f = h.sim.stats().faults;
    assert_eq!(f.failed_500 + f.failed_503, 4);

    h.set_knobs(r#"{"failure_rate": 0, "latency_ms": 60}"#)
        .await;
    let started = Instant::now();
    h.login().await;
    assert!(started.elapsed() >= Duration::from_millis(60));

    // A client with a shorter timeout gives up on a held request.
    h.set_knobs(r#"{"latency_ms": 0, "timeout_rate": 1.0, "hang_ms": 20000}"#)
        .await;
    let impatient = h
        .http
        .get(format!("http://{}/", h.sim.addr()))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(impatient.expect_err("gave up").is_timeout());

    // A patient one is let go with a 503 as soon as the simulator stops.
    let held = tokio::spawn({
        let http = h.http.clone();
        let url = format!("http://{}/", h.sim.addr());
        async move { http.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.sim.stats().faults.timeouts, 2);
    let started = Instant::now();
    h.sim.stop().await;
    assert_eq!(
        held.await.unwrap().unwrap(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_offline_page_follows_the_receipt() {
    let h = Harness::start(SimConfig {
        processing_delay_ms: 5_000,
        ..SimConfig::default()
    })
    .await;
    let before = h.offline_page(KEY).await;
    assert!(before.contains(r#"data-status="NOT_RECEIVED""#), "{before}");
    assert!(before.contains("ещё не поступил"));

    let tokens = h.login().await;
    assert_eq!(
        h.register(&tokens.access_token, KEY, RECEIPT)
            .await
            .status(),
        StatusCode::OK
    );
    let processing = h.offline_page(KEY).await;
    assert!(
        processing.contains(r#"data-status="PROCESSING""#),
        "{processing}"
    );
    let document: DocumentReply = h
        .document(&tokens.access_token, "254934")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(document.status, wire::STATUS_PROCESSING);
    assert!(document.fiscal_attributes.is_none());

    h.clock.advance(TimeDelta::seconds(5));
    let after = h.offline_page(KEY).await;
    assert!(after.contains(r#"data-status="FISCALIZED""#), "{after}");
    assert!(after.contains("9999078900004312"));
    assert!(after.contains("150.00"));
    assert!(after.contains("2026-11-23T14:05:05"));
    let document: DocumentReply = h
        .document(&tokens.access_token, "254934")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(document.status, wire::STATUS_FISCALIZED);
    h.sim.stop().await;
}
