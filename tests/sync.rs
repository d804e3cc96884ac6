//! Cloud sync end to end: fiscald over real HTTP, the journal in a temp dir,
//! and the processing simulator on loopback with faults injected.

mod common;

use common::{TestDaemon, receipt};
use fiscald::sim::cloud::{Knobs, SimCloud, SimConfig};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A loopback address nobody listens on (yet).
fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn start_sim(addr: std::net::SocketAddr, config: SimConfig) -> SimCloud {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    SimCloud::start(listener, config).await
}

/// fiscald with sync on, pointed at `addr`, with quick retries for tests.
async fn daemon_for(
    addr: std::net::SocketAddr,
    concurrency: usize,
    request_timeout_ms: u64,
) -> TestDaemon {
    TestDaemon::start_with(|s| {
        s.cloud.enabled = true;
        s.cloud.base_url = format!("http://{addr}/processing-api");
        s.cloud.concurrency = concurrency;
        s.cloud.request_timeout = Duration::from_millis(request_timeout_ms);
        s.cloud.connect_timeout = Duration::from_millis(500);
        s.cloud.retry.base = Duration::from_millis(50);
        s.cloud.retry.cap = Duration::from_millis(400);
        s.cloud.retry.max_retry_after = Duration::from_millis(1500);
        s.cloud.poll_interval = Duration::from_millis(50);
        s.cloud.probe_interval = Duration::from_millis(100);
    })
    .await
}

async fn post_many(t: &TestDaemon, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let bodies: Vec<Value> = (0..n)
        .map(|i| {
            receipt(
                &format!("Товар {i}"),
                &format!("{}.{:02}", 1 + i % 500, i % 100),
            )
        })
        .collect();
    for chunk in bodies.chunks(50) {
        let posts = chunk.iter().map(|b| t.post(b, None));
        for (status, r) in futures_join(posts).await {
            assert_eq!(status, 201, "{r}");
            ids.push(r["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    // Sequential awaits of already-created futures would not overlap; drive
    // them together with a JoinSet-free select over a Vec.
    let futures: Vec<_> = futures.map(Box::pin).collect();
    let results = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut set = Vec::new();
    for (i, f) in futures.into_iter().enumerate() {
        let results = results.clone();
        set.push(async move {
            let r = f.await;
            results.lock().unwrap().push((i, r));
        });
    }
    join_all(set).await;
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    results.sort_by_key(|(i, _)| *i);
    out.extend(results.into_iter().map(|(_, r)| r));
    out
}

async fn join_all<F: std::future::Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        futures.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if futures.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

async fn health(t: &TestDaemon) -> Value {
    t.get("/v1/health").await.1
}

/// Wait until `n` receipts are fiscalized (or fail with the health document).
async fn wait_fiscalized(t: &TestDaemon, n: u64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let h = health(t).await;
        if h["journal"]["by_state"]["fiscalized"].as_u64() == Some(n) {
            return h;
        }
        assert!(Instant::now() < deadline, "not all fiscalized in time: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_state(t: &TestDaemon, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, r) = t.get(&format!("/v1/receipts/{id}")).await;
        if r["state"] == state {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "receipt never became {state}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_accepted_while_the_processing_is_down_are_all_fiscalized_once_it_is_up() {
    let addr = free_addr();
    let t = daemon_for(addr, 8, 5_000).await;
    let ids = post_many(&t, 500).await;

    // Down: everything is kept, visible, and offline is reported.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = health(&t).await;
    assert_eq!(h["sync"]["pending"], 500, "{h}");
    assert_eq!(h["sync"]["state"]["connectivity"]["online"], false, "{h}");
    let error = h["sync"]["state"]["connectivity"]["last_error"]
        .as_str()
        .unwrap();
    assert!(error.contains("unreachable"), "{error}");
    let (_, first) = t.get("/v1/receipts?limit=1").await;
    let first = &first["receipts"][0];
    assert_eq!(first["state"], "accepted");
    assert!(
        first["sync"]["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{first}"
    );

    let sim = start_sim(addr, SimConfig::default()).await;
    let h = wait_fiscalized(&t, 500, Duration::from_secs(60)).await;
    assert_eq!(h["sync"]["pending"], 0);
    let stats = sim.stats();
    assert_eq!(
        stats.cloud.documents, 500,
        "exactly one document per receipt: {stats:?}"
    );

    // Every receipt carries its fiscal attributes and the fiscal QR string.
    let mut fds = std::collections::BTreeSet::new();
    for id in ids.iter().step_by(25) {
        let (_, r) = t.get(&format!("/v1/receipts/{id}")).await;
        assert_eq!(r["state"], "fiscalized");
        let qr = r["fiscal"]["qr"].as_str().unwrap();
        assert!(
            qr.starts_with("t=") && qr.contains(&format!("&s={}&", r["total"].as_str().unwrap())),
            "{qr}"
        );
        assert!(qr.contains("&fn=9999078900004312&"));
        assert!(fds.insert(r["fiscal"]["fiscal_document_number"].as_u64().unwrap()));
        let states: Vec<&str> = r["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["accepted", "submitted", "fiscalized"]);
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_once_still_fiscalizes_each_receipt_exactly_once() {
    let addr = free_addr();
    let config = SimConfig {
        knobs: Knobs {
            failure_rate: Some(0.10),
            timeout_rate: Some(0.05),
            hang_ms: Some(1_500),
            reset_after_commit_rate: Some(0.15),
            rate_limit_per_s: Some(60),
            token_lifetime_s: Some(1),
            seed: Some(7),
            ..Knobs::default()
        },
        ..SimConfig::default()
    };
    let sim = start_sim(addr, config).await;
    let t = daemon_for(addr, 8, 500).await;
    let ids = post_many(&t, 200).await;
    wait_fiscalized(&t, 200, Duration::from_secs(90)).await;

    let stats = sim.stats();
    assert_eq!(stats.cloud.documents, 200, "{stats:?}");
    let f = &stats.faults;
    assert!(
        f.failed_500 + f.failed_503 > 0 && f.timeouts > 0 && f.resets_after_commit > 0,
        "every fault was injected: {f:?}"
    );
    assert!(
        stats.cloud.duplicates > 0,
        "lost replies were retried with the same key: {stats:?}"
    );
    assert!(
        stats.cloud.refreshes + stats.cloud.logins > 1,
        "tokens expired mid-run: {stats:?}"
    );
    assert_eq!(stats.cloud.conflicts, 0);

    // No receipt was registered twice: its fiscal document numbers are distinct.
    let mut fds = std::collections::BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/receipts?limit=100&after={a}"),
            None => "/v1/receipts?limit=100".into(),
        };
        let (_, page) = t.get(&q).await;
        for r in page["receipts"].as_array().unwrap() {
            assert!(
                fds.insert(r["fiscal"]["fiscal_document_number"].as_u64().unwrap()),
                "{r}"
            );
        }
        match page["next_after"].as_str() {
            Some(a) => after = Some(a.into()),
            None => break,
        }
    }
    assert_eq!(fds.len(), ids.len());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_receipt_stays_visible_and_can_be_retried_or_discarded() {
    let addr = free_addr();
    let sim = start_sim(
        addr,
        SimConfig {
            reject_marker: Some("[reject]".into()),
            ..SimConfig::default()
        },
    )
    .await;
    let t = daemon_for(addr, 2, 5_000).await;

    let (_, bad) = t
        .post(&receipt("Подарочная карта [reject]", "500.00"), None)
        .await;
    let id = bad["id"].as_str().unwrap().to_string();
    let r = wait_state(&t, &id, "rejected").await;
    let error = r["sync"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("rejected by the processing") && error.contains("[reject]"),
        "{error}"
    );
    let h = health(&t).await;
    assert_eq!(h["sync"]["rejected"], 1);

    // Retried while the processing still refuses it: rejected again.
    let resp = t
        .client
        .post(format!("{}/v1/receipts/{id}/retry", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = wait_state(&t, &id, "rejected").await;
    assert!(r["sync"]["attempts"].as_u64().unwrap() >= 2, "{r}");

    // The processing is fixed; a retry goes through.
    sim.set_knobs(Knobs {
        reject_marker: Some(String::new()),
        ..Knobs::default()
    })
    .unwrap();
    let resp = t
        .client
        .post(format!("{}/v1/receipts/{id}/retry", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let r = wait_state(&t, &id, "fiscalized").await;
    assert!(r["fiscal"]["qr"].is_string());
    // A fiscalized receipt cannot be retried or discarded.
    let resp = t
        .client
        .post(format!("{}/v1/receipts/{id}/retry", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);

    // Another rejected receipt is discarded with a reason kept in its history.
    sim.set_knobs(Knobs {
        reject_marker: Some("[reject]".into()),
        ..Knobs::default()
    })
    .unwrap();
    let (_, bad) = t.post(&receipt("Ещё одна [reject]", "10.00"), None).await;
    let id2 = bad["id"].as_str().unwrap().to_string();
    wait_state(&t, &id2, "rejected").await;
    let discard = |body: Value| {
        t.client
            .post(format!("{}/v1/receipts/{id2}/discard", t.base))
            .json(&body)
            .send()
    };
    let resp = discard(json!({})).await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let resp = discard(json!({"reason": "sale cancelled; refunded by hand"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["state"], "discarded");
    let last = r["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["actor"].as_str(), last["note"].as_str()),
        (Some("operator"), Some("sale cancelled; refunded by hand"))
    );
    let h = health(&t).await;
    assert_eq!(h["sync"]["rejected"], 0);
    assert_eq!(sim.stats().cloud.documents, 1);
    sim.stop().await;
}

/// The whole run's log (at debug level), and every API reply, carry none of
/// the secrets: the connector token, access tokens or refresh tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_or_a_reply() {
    use std::os::unix::fs::PermissionsExt;
    let connector = "conn-7f3a9c1e-secret-connector";
    let sim = start_sim(
        free_addr(),
        SimConfig {
            connector_token: connector.into(),
            knobs: Knobs {
                token_lifetime_s: Some(1),
                failure_rate: Some(0.05),
                reset_after_commit_rate: Some(0.05),
                seed: Some(3),
                ..Knobs::default()
            },
            ..SimConfig::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("connector.token");
    std::fs::write(&token_file, format!("{connector}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("fiscald.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"{}\"\n[till]\npin = \"1234\"\n\
             [cloud]\nenabled = true\nbase_url = \"{}\"\ntoken_file = \"{}\"\nretry_base_ms = 50\nretry_cap_ms = 400\n\
             poll_interval_ms = 50\nprobe_interval_ms = 100\nrequest_timeout_ms = 2000\n",
            dir.path().join("journal.sqlite").display(),
            sim.base_url(),
            token_file.display()
        ),
    )
    .unwrap();
    let log_path = dir.path().join("fiscald.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fiscald"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("FISCALD_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("fiscald listening on ")
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();
    let mut replies = String::new();
    // Two waves, further apart than the token lives: the second needs a refresh.
    for wave in 1..=2u64 {
        for i in 0..20 {
            let resp = client
                .post(format!("{base}/v1/receipts"))
                .json(&receipt(&format!("w{wave} r{i}"), "12.34"))
                .send()
                .await
                .unwrap();
            replies.push_str(&resp.text().await.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let h: Value = client
                .get(format!("{base}/v1/health"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if h["journal"]["by_state"]["fiscalized"] == 20 * wave {
                replies.push_str(&h.to_string());
                break;
            }
            assert!(Instant::now() < deadline, "{h}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    replies.push_str(
        &client
            .get(format!("{base}/v1/receipts?limit=500"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        sim.stats().cloud.refreshes + sim.stats().cloud.logins >= 2,
        "{:?}",
        sim.stats()
    );

    // The tokens the daemon held at the end, from its journal.
    let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    let mut secrets: Vec<String> = conn
        .prepare("SELECT value FROM secrets")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(secrets.len(), 2, "access and refresh token stored");
    secrets.push(connector.to_string());
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.lines().count() > 50, "a real debug log was written");
    assert!(text.contains("logged in to the processing"));
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret is in the log");
        assert!(
            !replies.contains(secret.as_str()),
            "a secret is in an API reply"
        );
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_restart() {
    let addr = free_addr();
    let sim = start_sim(addr, SimConfig::default()).await;
    let t = daemon_for(addr, 2, 5_000).await;
    let (_, r) = t.post(&receipt("до перезапуска", "1.00"), None).await;
    wait_state(&t, r["id"].as_str().unwrap(), "fiscalized").await;
    assert_eq!(sim.stats().cloud.logins, 1);

    let path = t.dir.path().to_path_buf();
    let TestDaemon { daemon, dir, .. } = t;
    daemon.stop().await.unwrap();
    let mut settings = common::settings(&path);
    settings.cloud.enabled = true;
    settings.cloud.base_url = sim.base_url();
    settings.cloud.poll_interval = Duration::from_millis(50);
    let daemon =
        fiscald::daemon::Daemon::start(&settings, std::sync::Arc::new(fiscald::clock::SystemClock))
            .await
            .unwrap();
    let t = TestDaemon {
        base: format!("http://{}", daemon.addr),
        daemon,
        dir,
        client: reqwest::Client::new(),
    };
    let (_, r) = t.post(&receipt("после перезапуска", "2.00"), None).await;
    wait_state(&t, r["id"].as_str().unwrap(), "fiscalized").await;
    let stats = sim.stats();
    assert_eq!(
        stats.cloud.logins, 1,
        "the stored token was used, no second login: {stats:?}"
    );
    assert_eq!(stats.cloud.documents, 2);
    sim.stop().await;
}
