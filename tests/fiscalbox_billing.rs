//! The FiscalBox billing against `fiscald sim fiscalbox` over real HTTP on
//! port 0: a day sold through `/fiscalbox/`, the Z report, and the
//! reconciliation of the journal with the billing's orders count; token
//! expiry; no password or token in any log, reply, page or bundle.

mod common;

use common::TestDaemon;
use fiscald::config::{BillingSettings, Secret};
use fiscald::sim::fiscalbox::{BillingLogin, BoxConfig, BoxKnobs, SimFiscalBox};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "planted-billing-password-8c1e55";
const INN: &str = "306429662";

async fn sim_box() -> SimFiscalBox {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fb = SimFiscalBox::start(listener, BoxConfig::default()).await;
    fb.set_billing_login(BillingLogin {
        username: "shop".into(),
        password: PASSWORD.into(),
    });
    fb
}

fn billing(url: &str) -> BillingSettings {
    BillingSettings {
        url: url.to_string(),
        username: "shop".into(),
        password: Secret::new(PASSWORD),
        inn: INN.into(),
        token_rotation: Duration::from_secs(3600),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(1500),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(100),
        attempts: 3,
    }
}

async fn start(fb: &SimFiscalBox) -> TestDaemon {
    let url = fb.base_url();
    TestDaemon::start_uz(&fb.base_url(), move |s| {
        s.fiscalbox.as_mut().unwrap().billing = Some(billing(&url));
    })
    .await
}

async fn fb_call(t: &TestDaemon, path: &str, body: Option<&Value>) -> Value {
    let url = format!("{}/fiscalbox{path}", t.base);
    let req = match body {
        Some(b) => t.client.post(url).json(b),
        None => t.client.get(url),
    };
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let mut v: Value = resp.json().await.unwrap();
    // Some endpoints wrap the envelope in `result` (facts::Endpoint).
    if v.get("result").is_some() {
        v = v["result"].clone();
    }
    assert_eq!(v["is_success"], true, "{path}: {v}");
    v["data"].clone()
}

/// A cash sale of one line at `price` tiyin through `/fiscalbox/order/create/`.
async fn sell(t: &TestDaemon, uuid: &str, price: i64) -> String {
    let o = common::fiscalbox_order(
        uuid,
        &[("Non", price, 1000)],
        (price, 0, 0),
        &tashkent_now(),
    );
    fb_call(t, "/order/create/", Some(&o)).await;
    // The journal's id of the receipt (the newest; listings are oldest first).
    let (_, page) = t.get("/v1/receipts?limit=100").await;
    let all = page["receipts"].as_array().unwrap();
    all.last().unwrap()["id"].as_str().unwrap().to_string()
}

/// The last reconciliation in `/v1/status` once it is no longer pending.
async fn last_check(t: &TestDaemon, checks_before: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = t.get("/v1/status").await;
        if s["billing"]["checks"].as_u64().unwrap_or(0) > checks_before
            && s["billing"]["last"]["result"] != "delayed"
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no billing check: {}",
            s["billing"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_fiscalized(t: &TestDaemon, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = t.get("/v1/status").await;
        let done = s["journal"]["by_state"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["state"] == "fiscalized")
            .map_or(0, |c| c["count"].as_u64().unwrap());
        if done >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {done} of {n} fiscalized");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_then_z_report_reconciles_with_the_billing_and_names_a_lost_order() {
    let fb = sim_box().await;
    let t = start(&fb).await;
    // Day 1: three sales, the Z report, and the billing agrees.
    fb_call(&t, "/zreport/open/", None).await;
    for (i, price) in [11_200, 22_400, 33_600].into_iter().enumerate() {
        sell(&t, &format!("d1-{i}"), price).await;
    }
    wait_fiscalized(&t, 3).await;
    let z = fb_call(&t, "/zreport/close/", None).await;
    assert_eq!(z["billing"]["result"], "pending", "{z}");
    let s = last_check(&t, 0).await;
    let last = &s["billing"]["last"];
    assert_eq!(last["result"], "equal", "{last}");
    assert_eq!(last["trigger"], "z_report");
    assert_eq!(
        last["journal"],
        json!({"orders": 3, "amount_tiyin": 67_200})
    );
    assert_eq!(last["billing"], last["journal"]);
    assert!(s["attention"].as_array().unwrap().is_empty(), "{s}");
    // The shift's reconciliation report carries it too.
    let info = fb_call(&t, "/zreport/info/", None).await;
    assert_eq!(info["billing"]["result"], "equal", "{info}");

    // Day 2: the billing loses one order; the check names it.
    fb_call(&t, "/zreport/open/", None).await;
    sell(&t, "d2-0", 5_000).await;
    let lost = sell(&t, "d2-1", 7_700).await;
    wait_fiscalized(&t, 5).await;
    fb.set_knobs(BoxKnobs {
        billing_lose_orders: Some(1),
        ..BoxKnobs::default()
    });
    let checks = s["billing"]["checks"].as_u64().unwrap();
    fb_call(&t, "/zreport/close/", None).await;
    let s = last_check(&t, checks).await;
    let last = &s["billing"]["last"];
    assert_eq!(last["result"], "different", "{last}");
    assert_eq!(last["orders_difference"], 1);
    assert_eq!(last["amount_difference_tiyin"], 7_700);
    let named = last["explained_by"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{last}");
    assert_eq!(named[0]["receipt_id"], lost.as_str());
    let attention = s["attention"].to_string();
    assert!(attention.contains(&lost), "{attention}");

    // On demand for a whole period: both days, still one order missing.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tashkent)
        .format("%Y-%m-%d")
        .to_string();
    let r: Value = t
        .client
        .post(format!(
            "{}/v1/billing/check?from={today}&to={today}",
            t.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["trigger"], "on_demand", "{r}");
    assert_eq!(r["journal"]["orders"], 5, "{r}");
    assert_eq!(r["billing"]["orders"], 4, "{r}");
    assert_eq!(r["explained_by"][0]["receipt_id"], lost.as_str(), "{r}");
    // A bad period is refused naming the field.
    let bad = t
        .client
        .post(format!(
            "{}/v1/billing/check?from=29.11.2026&to={today}",
            t.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert!(bad.to_string().contains("from"), "{bad}");
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_outage_delays_the_check_and_never_blocks_sales() {
    let fb = sim_box().await;
    let t = start(&fb).await;
    fb.set_knobs(BoxKnobs {
        billing_down: Some(true),
        ..BoxKnobs::default()
    });
    fb_call(&t, "/zreport/open/", None).await;
    sell(&t, "o-0", 11_200).await;
    wait_fiscalized(&t, 1).await;
    fb_call(&t, "/zreport/close/", None).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let (_, s) = t.get("/v1/status").await;
        if s["billing"]["last"]["result"] == "delayed" {
            break s;
        }
        assert!(Instant::now() < deadline, "{}", s["billing"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        s["billing"]["last"]["reason"]
            .as_str()
            .unwrap()
            .contains("billing unreachable"),
        "{s}"
    );
    assert!(s["attention"].to_string().contains("delayed"), "{s}");
    // Sales go on meanwhile.
    fb_call(&t, "/zreport/open/", None).await;
    sell(&t, "o-1", 5_000).await;
    wait_fiscalized(&t, 2).await;
    // The billing back: the next check goes through.
    fb.set_knobs(BoxKnobs {
        billing_down: Some(false),
        ..BoxKnobs::default()
    });
    fb_call(&t, "/zreport/close/", None).await;
    let s = last_check(&t, 0).await;
    assert_eq!(s["billing"]["last"]["result"], "equal", "{s}");
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The billing token the journal keeps now.
fn stored_token(journal: &std::path::Path) -> Option<String> {
    let c =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    c.query_row(
        "SELECT value FROM secrets WHERE name = 'fiscalbox.billing_token'",
        [],
        |r| r.get(0),
    )
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_logs_in_again_and_no_password_or_token_leaks() {
    use std::os::unix::fs::PermissionsExt;
    const OPERATOR: &str = "planted-operator-token-4e9d12";
    let fb = sim_box().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let password_file = dir.path().join("billing.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("fiscald.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"{}\"\n[till]\npin = \"9753\"\ntimezone = \"Asia/Tashkent\"\n\
             [fiscal]\ncountry = \"uz\"\ntax_system = \"common\"\nbackend = \"fiscalbox\"\n\
             [fiscalbox]\nurl = \"{}\"\nretry_base_ms = 20\nretry_cap_ms = 100\n\
             [fiscalbox.billing]\nurl = \"{}\"\nusername = \"shop\"\npassword_file = \"{}\"\ninn = \"{INN}\"\nattempts = 2\n\
             [[api.tokens]]\nname = \"technician\"\nrole = \"operator\"\nsha256 = \"{}\"\n",
            journal.display(),
            fb.base_url(),
            fb.base_url(),
            password_file.display(),
            sha256_hex(OPERATOR),
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let (mut daemon, base) = common::spawn_fiscald_with(
        &["run", "--config", config.to_str().unwrap()],
        "fiscald listening on ",
        &[("FISCALD_LOG", "debug")],
        std::fs::File::create(&log_path).unwrap().into(),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bearer = format!("Bearer {OPERATOR}");
    let mut outputs: Vec<(String, String)> = Vec::new();
    let sell = async |uuid: &str, price: i64| {
        let o = common::fiscalbox_order(
            uuid,
            &[("Non", price, 1000)],
            (price, 0, 0),
            &tashkent_now(),
        );
        let r = client
            .post(format!("{base}/fiscalbox/order/create/"))
            .json(&o)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(r.contains("\"is_success\":true"), "{r}");
    };
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tashkent)
        .format("%Y-%m-%d")
        .to_string();
    // The technician's command: through the local API.
    let check = |what: &'static str| {
        let args: Vec<String> = [
            "billing", "check", "--url", &base, "--token", OPERATOR, "--from", &today, "--to",
            &today,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        async move {
            let out = tokio::task::spawn_blocking(move || common::fiscald_cli(args))
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            (out.status.code(), format!("{what}: {text}"))
        }
    };
    let opened = client
        .get(format!("{base}/fiscalbox/zreport/open/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(opened.contains("\"is_success\":true"), "{opened}");
    sell("t-0", 11_200).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first = check("first check").await;
    while !first.1.contains("result   equal") {
        assert!(Instant::now() < deadline, "{}", first.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        first = check("first check").await;
    }
    assert_eq!(first.0, Some(0), "{}", first.1);
    let token_1 = stored_token(&journal).expect("the token is kept in the journal");
    assert_eq!(fb.stats().billing_logins, 1);
    outputs.push(("billing check (1)".into(), first.1));

    // Mid-day the billing expires every token: the next check logs in again.
    fb.set_knobs(BoxKnobs {
        billing_expire_tokens: Some(true),
        ..BoxKnobs::default()
    });
    sell("t-1", 22_400).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let r = client
            .post(format!("{base}/v1/billing/check?from={today}&to={today}"))
            .header("Authorization", &bearer)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if r.contains("\"orders\":2,") && r.contains("\"result\":\"equal\"") {
            break r;
        }
        assert!(Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stats = fb.stats();
    assert_eq!(stats.billing_unauthorized, 1, "{stats:?}");
    assert_eq!(stats.billing_logins, 2, "{stats:?}");
    let token_2 = stored_token(&journal).unwrap();
    assert_ne!(token_1, token_2);
    outputs.push(("POST /v1/billing/check".into(), second));

    // The page, signed in; the status; the diagnostics bundle.
    let signed_in = client
        .post(format!("{base}/ops/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", &base)
        .body(format!("token={OPERATOR}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = client
        .get(format!("{base}/"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Billing reconciliation"), "{page}");
    assert!(page.contains("data-billing=\"equal\""), "{page}");
    outputs.push(("page (signed in)".into(), page));
    let status = client
        .get(format!("{base}/v1/status"))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("\"logins\":2"), "{status}");
    outputs.push(("/v1/status".into(), status));
    let bundle = common::diagnostics_bundle(dir.path(), &base, OPERATOR, &config).await;
    for entry in std::fs::read_dir(&bundle).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
        outputs.push((format!("diagnostics {}", path.display()), text));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("billing: logged in"), "{logs}");
    assert!(
        logs.contains("billing: token refused; logging in again"),
        "{logs}"
    );
    outputs.push(("daemon logs (debug)".into(), logs));
    for (what, text) in &outputs {
        for secret in [PASSWORD, token_1.as_str(), token_2.as_str(), OPERATOR] {
            assert!(
                !text.contains(secret),
                "a secret ({}…) appears in {what}",
                &secret[..6]
            );
        }
    }
    fb.stop().await;
}

/// The POS time of an order now, as an Uzbek till writes it.
fn tashkent_now() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tashkent)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}
