//! Online orders end to end: the Bitrix24 cashbox and the gateway cheque over
//! real HTTP on port 0 (and the remote listener over TLS), the journal in a
//! temp dir, fiscalized by the cloud simulator and by the register emulator.

mod common;

use common::{TestDaemon, bitrix_print, gateway_seed_request, online};
use fiscald::config::{Backend, RemoteSettings, TlsFiles};
use fiscald::domain::Source;
use fiscald::sim::cloud::{SimCloud, SimConfig};
use fiscald::sim::devices::control::{SimDevices, SimDevicesOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

const FORM: &str = "application/x-www-form-urlencoded";

async fn post_form(d: &TestDaemon, base: &str, path: &str, body: String) -> (u16, Value) {
    let resp = d
        .client
        .post(format!("{base}{path}"))
        .header("content-type", FORM)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// fiscald with both dialects, cloud sync on against `addr` (maybe not up yet).
async fn cloud_daemon(addr: std::net::SocketAddr) -> TestDaemon {
    TestDaemon::start_with(|s| {
        online(s);
        s.cloud.enabled = true;
        s.cloud.base_url = format!("http://{addr}/processing-api");
        s.cloud.connect_timeout = Duration::from_millis(300);
        s.cloud.request_timeout = Duration::from_millis(2000);
        s.cloud.retry.base = Duration::from_millis(50);
        s.cloud.retry.cap = Duration::from_millis(200);
        s.cloud.poll_interval = Duration::from_millis(50);
        s.cloud.probe_interval = Duration::from_millis(100);
    })
    .await
}

async fn start_sim(addr: std::net::SocketAddr) -> SimCloud {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    SimCloud::start(listener, SimConfig::default()).await
}

fn check_body(uuid: &str) -> String {
    common::form_encode(&[
        ("uuid".into(), uuid.into()),
        ("cashbox_params[AUTH][LOGIN]".into(), "shop".into()),
        ("cashbox_params[AUTH][PASSWORD]".into(), "s3cret".into()),
    ])
}

fn assert_done(check: &Value, uuid: &str) {
    assert_eq!(check["STATUS"], "DONE", "{check}");
    assert_eq!(check["UUID"], uuid);
    for field in ["REG_NUMBER_KKT", "FISCAL_DOC_ATTR", "FN_NUMBER"] {
        assert!(
            check[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {check}"
        );
    }
    for field in [
        "FISCAL_DOC_NUMBER",
        "FISCAL_RECEIPT_NUMBER",
        "SHIFT_NUMBER",
        "PRINT_END_TIME",
    ] {
        assert!(
            check[field].as_u64().is_some_and(|n| n > 0),
            "{field}: {check}"
        );
    }
    let end = check["PRINT_END_TIME"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - end).abs() < 3 * 3600,
        "a unix time near now: {end} vs {now}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_seed_request_is_accepted_its_first_cheque_refused_and_a_wrong_control_stores_nothing()
 {
    let d = TestDaemon::start_with(online).await;
    let base = d.base.clone();

    // The seed's first cheque: 2 × 322.94 + 500 = 1145.88 against amount 700.00.
    let first = include_str!("common/seeds/004_cheque_example.json");
    let (status, r) = post_form(
        &d,
        &base,
        "/gateway/sale",
        gateway_seed_request("RUB", Some(first)),
    )
    .await;
    assert_eq!(status, 422, "{r}");
    let message = r["error"]["details"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("1145.88") && message.contains("700.00"),
        "{message}"
    );
    assert_eq!(d.receipt_count().await, 0);

    // A wrong control: 403, nothing stored.
    let tampered = gateway_seed_request("RUB", None).replace("amount=700.00", "amount=7.00");
    let (status, r) = post_form(&d, &base, "/gateway/sale", tampered).await;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["error"]["code"], "control_mismatch");
    let unsigned: String = gateway_seed_request("RUB", None)
        .split('&')
        .filter(|f| !f.starts_with("control="))
        .collect::<Vec<_>>()
        .join("&");
    let (status, _) = post_form(&d, &base, "/gateway/sale", unsigned).await;
    assert_eq!(status, 403);
    assert_eq!(d.receipt_count().await, 0);

    // The seed's currency (USD) is not a Russian till's: refused, named.
    let (status, r) = post_form(
        &d,
        &base,
        "/gateway/sale",
        gateway_seed_request("USD", None),
    )
    .await;
    assert_eq!(status, 422, "{r}");
    assert!(r.to_string().contains("USD"), "{r}");
    assert_eq!(d.receipt_count().await, 0);

    // The seed's request with its own cheque (700.00): accepted.
    let (status, r) = post_form(
        &d,
        &base,
        "/gateway/sale",
        gateway_seed_request("RUB", None),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["client_orderid"], "902B4FF5");
    assert_eq!(r["total"], "700.00");
    assert_eq!(r["status"], "accepted");
    let id = r["receipt_id"].as_str().unwrap().to_string();
    // Idempotent on client_orderid.
    let (status, again) = post_form(
        &d,
        &base,
        "/gateway/sale",
        gateway_seed_request("RUB", None),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["receipt_id"], id.as_str());
    assert_eq!(d.receipt_count().await, 1);

    // The status call, signed; unsigned it is refused.
    let control =
        fiscald::api::gateway::parse::status_control("1111", "902B4FF5", common::GATEWAY_KEY);
    let (status, s) = post_form(
        &d,
        &base,
        "/gateway/status",
        format!("client_orderid=902B4FF5&control={control}"),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["receipt_id"], id.as_str());
    let (status, _) = post_form(
        &d,
        &base,
        "/gateway/status",
        "client_orderid=902B4FF5&control=00".into(),
    )
    .await;
    assert_eq!(status, 403);
    d.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix24_print_in_form_encoding_waits_then_is_done_by_the_cloud_simulator() {
    let sim_addr = free_addr();
    let d = cloud_daemon(sim_addr).await;
    let base = d.base.clone();
    let uuid = "check|shop.bitrix24.ru|17";

    // Missing and wrong credentials: ERRORS, nothing stored.
    for (login, password) in [
        ("", ""),
        ("shop", ""),
        ("shop", "wrong"),
        ("other", "s3cret"),
    ] {
        let (status, r) = post_form(
            &d,
            &base,
            "/bitrix24/print",
            bitrix_print(uuid, "150.00", login, password),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        let errors = r["ERRORS"].as_array().unwrap_or_else(|| panic!("{r}"));
        let expected = if login.is_empty() || password.is_empty() {
            "Authorization data is missing"
        } else {
            "wrong login or password"
        };
        assert!(errors[0].as_str().unwrap().contains(expected), "{r}");
    }
    let (_, r) = post_form(
        &d,
        &base,
        "/bitrix24/check",
        common::form_encode(&[("uuid".into(), uuid.into())]),
    )
    .await;
    assert!(r["ERRORS"].is_array(), "CHECK needs credentials too: {r}");
    assert_eq!(d.receipt_count().await, 0);

    let (status, r) = post_form(
        &d,
        &base,
        "/bitrix24/print",
        bitrix_print(uuid, "150.00", "shop", "s3cret"),
    )
    .await;
    assert_eq!((status, &r), (200, &serde_json::json!({"UUID": uuid})));
    // A repeated PRINT answers the same UUID and creates nothing.
    let (_, again) = post_form(
        &d,
        &base,
        "/bitrix24/print",
        bitrix_print(uuid, "150.00", "shop", "s3cret"),
    )
    .await;
    assert_eq!(again, r);
    assert_eq!(d.receipt_count().await, 1);

    // The processing is down: WAIT.
    let (_, check) = post_form(&d, &base, "/bitrix24/check", check_body(uuid)).await;
    assert_eq!(check, serde_json::json!({"STATUS": "WAIT"}));
    let (_, unknown) = post_form(&d, &base, "/bitrix24/check", check_body("check|other|1")).await;
    assert_eq!(unknown["STATUS"], "ERROR", "{unknown}");

    let _sim = start_sim(sim_addr).await;
    let check = until("DONE", async || {
        let (_, c) = post_form(&d, &base, "/bitrix24/check", check_body(uuid)).await;
        (c["STATUS"] == "DONE").then_some(c)
    })
    .await;
    assert_done(&check, uuid);
    let stored = d
        .daemon
        .journal
        .by_caller_key(Source::Bitrix24, uuid.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        check["FISCAL_DOC_NUMBER"].as_u64(),
        stored.fiscal.as_ref().map(|f| f.fiscal_document_number)
    );
    d.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix24_print_waits_while_the_register_is_unplugged_then_is_done_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimDevices::start(
        &dir.path().join("devices"),
        SimDevicesOptions {
            printer_pace_baud: None,
            seed: 7,
            timezone: Some(chrono_tz::Europe::Moscow),
        },
    )
    .unwrap();
    sim.register.unplug();
    let d = TestDaemon::start_with(|s| {
        online(s);
        let demo = fiscald::config::load_str(fiscald::config::DEMO_CONFIG).unwrap();
        let mut register = demo.devices.register.clone().unwrap();
        register.path = sim.register_path();
        register.reply_timeout = Duration::from_millis(1500);
        s.devices.register = Some(register);
        s.devices.backend = Backend::Register;
        s.devices.status_interval = Duration::from_millis(200);
        s.devices.reconnect_base = Duration::from_millis(50);
        s.devices.reconnect_cap = Duration::from_millis(200);
    })
    .await;
    let base = d.base.clone();
    let uuid = "check|shop.bitrix24.ru|18";
    let (_, r) = post_form(
        &d,
        &base,
        "/bitrix24/print",
        bitrix_print(uuid, "99.90", "shop", "s3cret"),
    )
    .await;
    assert_eq!(r["UUID"], uuid, "{r}");
    let (_, check) = post_form(&d, &base, "/bitrix24/check", check_body(uuid)).await;
    assert_eq!(check["STATUS"], "WAIT", "{check}");

    sim.register.replug().unwrap();
    let check = until("DONE", async || {
        let (_, c) = post_form(&d, &base, "/bitrix24/check", check_body(uuid)).await;
        (c["STATUS"] == "DONE").then_some(c)
    })
    .await;
    assert_done(&check, uuid);
    let reg = sim.register.snapshot();
    assert_eq!(reg.receipts.len(), 1);
    assert_eq!(reg.receipts[0].total, 9990);
    assert_eq!(
        check["FISCAL_DOC_NUMBER"].as_u64(),
        Some(reg.receipts[0].fd as u64)
    );
    d.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_from_each_dialect_is_the_same_receipt_in_the_journal() {
    let sim_addr = free_addr();
    let _sim = start_sim(sim_addr).await;
    let d = cloud_daemon(sim_addr).await;
    let base = d.base.clone();

    // The same sale: one line "Green tea" 150.00 at 22 %, paid by card,
    // receipt to buyer@example.com, under the till's tax system (common).
    let uuid = "check|shop.bitrix24.ru|19";
    let (_, r) = post_form(
        &d,
        &base,
        "/bitrix24/print",
        bitrix_print(uuid, "150.00", "shop", "s3cret"),
    )
    .await;
    assert_eq!(r["UUID"], uuid, "{r}");
    let cheque = r#"{"cheque_type": 0, "tax_system": 0, "positions": [{"quantity": 1, "price": 150.00, "tax": 1, "description": "Green tea"}]}"#;
    let control = fiscald::api::gateway::parse::sale_control(
        "1111",
        "A-19",
        fiscald::domain::Money(15000),
        "buyer@example.com",
        common::GATEWAY_KEY,
    );
    let body = common::form_encode(&[
        ("client_orderid".into(), "A-19".into()),
        ("amount".into(), "150.00".into()),
        ("email".into(), "buyer@example.com".into()),
        ("currency".into(), "RUB".into()),
        ("credit_card_number".into(), "4538977399606732".into()),
        ("cheque".into(), cheque.into()),
        ("control".into(), control),
    ]);
    let (status, g) = post_form(&d, &base, "/gateway/sale", body).await;
    assert_eq!(status, 201, "{g}");

    let j = &d.daemon.journal;
    let fiscalized = async |source, key: &str| {
        until("fiscalized", async || {
            let s = j
                .by_caller_key(source, key.to_string())
                .await
                .unwrap()
                .unwrap();
            (s.fiscal.is_some()).then_some(s)
        })
        .await
    };
    let b = fiscalized(Source::Bitrix24, uuid).await;
    let g = fiscalized(Source::Gateway, "A-19").await;
    assert_eq!(
        b.receipt, g.receipt,
        "the same receipt whatever the dialect"
    );
    assert_eq!(b.receipt.fingerprint(), g.receipt.fingerprint());
    assert_eq!((b.source, g.source), (Source::Bitrix24, Source::Gateway));
    assert_eq!(
        (b.caller_key.as_deref(), g.caller_key.as_deref()),
        (Some(uuid), Some("A-19"))
    );
    assert_ne!(
        b.fiscal.unwrap().fiscal_document_number,
        g.fiscal.unwrap().fiscal_document_number
    );
    assert!(
        !format!("{:?}", g.receipt).contains("4538977399606732"),
        "card data is not kept"
    );
    d.daemon.stop().await.unwrap();
}

fn self_signed(dir: &std::path::Path) -> TlsFiles {
    let cnf = dir.join("openssl.cnf");
    std::fs::write(&cnf, "[req]\ndistinguished_name=dn\n[dn]\n").unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-config"])
        .arg(&cnf)
        .args([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .output()
        .expect("openssl runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    TlsFiles { cert, key }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_listener_over_tls_serves_only_the_online_dialects_with_credentials() {
    let certs = tempfile::tempdir().unwrap();
    let tls = self_signed(certs.path());
    let cert_pem = std::fs::read(&tls.cert).unwrap();
    let d = TestDaemon::start_with(|s| {
        online(s);
        s.remote = Some(RemoteSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: Some(tls),
            rate_per_minute: 600,
            burst: 30,
        });
    })
    .await;
    let (addr, is_tls) = d.daemon.remote_addr().unwrap();
    assert!(is_tls);
    let remote = format!("https://localhost:{}", addr.port());
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert_pem).unwrap()])
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let call = async |method: reqwest::Method, path: &str, body: String| {
        let resp = client
            .request(method, format!("{remote}{path}"))
            .header("content-type", FORM)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    };

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/bitrix24/print"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // Never the native API, the operator endpoints or the status page.
    use reqwest::Method;
    for (m, path) in [
        (Method::GET, "/v1/health"),
        (Method::POST, "/v1/receipts"),
        (Method::GET, "/v1/receipts"),
        (Method::POST, "/v1/drawer/open"),
        (Method::POST, "/v1/shifts/close"),
        (Method::GET, "/v1/devices"),
        (Method::GET, "/v1/status"),
        (Method::GET, "/metrics"),
        (Method::POST, "/fiscalbox/order/create"),
        (Method::GET, "/"),
    ] {
        let (status, r) = call(m.clone(), path, common::receipt("x", "1.00").to_string()).await;
        assert_eq!(status, 404, "{m} {path}: {r}");
    }
    // Without credentials: refused, nothing stored.
    let (status, r) = call(
        Method::POST,
        "/bitrix24/print",
        bitrix_print("check|x|1", "10.00", "", ""),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        r,
        serde_json::json!({"ERRORS": ["Authorization data is missing"]})
    );
    let unsigned = gateway_seed_request("RUB", None).replace("control=", "x=");
    let (status, _) = call(Method::POST, "/gateway/sale", unsigned).await;
    assert_eq!(status, 403);
    assert_eq!(d.receipt_count().await, 0);

    // With them, over TLS: accepted.
    let (_, r) = call(
        Method::POST,
        "/bitrix24/print",
        bitrix_print("check|x|1", "10.00", "shop", "s3cret"),
    )
    .await;
    assert_eq!(r["UUID"], "check|x|1", "{r}");
    let (status, r) = call(
        Method::POST,
        "/gateway/sale",
        gateway_seed_request("RUB", None),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(d.receipt_count().await, 2);
    d.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_listener_limits_each_client() {
    let d = TestDaemon::start_with(|s| {
        online(s);
        s.remote = Some(RemoteSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            rate_per_minute: 1,
            burst: 2,
        });
    })
    .await;
    let (addr, is_tls) = d.daemon.remote_addr().unwrap();
    assert!(!is_tls);
    let remote = format!("http://{addr}");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (s, _) = post_form(&d, &remote, "/bitrix24/check", check_body("check|x|1")).await;
        statuses.push(s);
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Another client (as a loopback reverse proxy reports it) has its own bucket.
    let resp = d
        .client
        .post(format!("{remote}/bitrix24/check"))
        .header("content-type", FORM)
        .header("x-forwarded-for", "203.0.113.5")
        .body(check_body("check|x|1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // The local listener has no such limit.
    let (s, _) = post_form(&d, &d.base, "/bitrix24/check", check_body("check|x|1")).await;
    assert_eq!(s, 200);
    d.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_local_listener_a_cross_site_post_is_refused_even_with_credentials() {
    let d = TestDaemon::start_with(online).await;
    let signed_sale = gateway_seed_request("RUB", None);
    let print = bitrix_print("check|x|9", "10.00", "shop", "s3cret");
    for (path, body) in [("/gateway/sale", &signed_sale), ("/bitrix24/print", &print)] {
        for extra in [
            [
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            [("origin", "null"), ("sec-fetch-mode", "navigate")],
        ] {
            let mut req = d
                .client
                .post(format!("{}{path}", d.base))
                .header("content-type", FORM)
                .body(body.clone());
            for (k, v) in extra {
                req = req.header(k, v);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 403, "{path} {extra:?}");
        }
    }
    assert_eq!(d.receipt_count().await, 0);
    // The same from a program (no Origin): accepted.
    let (status, _) = post_form(&d, &d.base, "/gateway/sale", signed_sale).await;
    assert_eq!(status, 201);
    // The body limit holds on these dialects too, in their envelope.
    let huge = format!("uuid=x&pad={}", "a".repeat(2 * 1024 * 1024));
    let (status, r) = post_form(&d, &d.base, "/bitrix24/print", huge).await;
    assert_eq!(status, 413, "{r}");
    assert!(
        r["ERRORS"][0].as_str().unwrap().contains("larger than"),
        "{r}"
    );
    d.daemon.stop().await.unwrap();
}

#[test]
fn handler_json_prints_the_registration_for_sale_cashbox_handler_add() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fiscald"))
        .args([
            "bitrix24",
            "handler-json",
            "--url",
            "https://till.example.com:8443",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["SETTINGS"]["PRINT_URL"],
        "https://till.example.com:8443/bitrix24/print"
    );
    assert_eq!(
        j["SETTINGS"]["CHECK_URL"],
        "https://till.example.com:8443/bitrix24/check"
    );
    assert!(j["SETTINGS"]["CONFIG"]["AUTH"]["ITEMS"]["PASSWORD"].is_object());
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_fiscald"))
        .args(["bitrix24", "handler-json", "--url", "till.example.com"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
