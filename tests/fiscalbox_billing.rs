//! The FiscalBox billing against `fiscald sim fiscalbox` over real HTTP on
//! port 0: a day sold through `/fiscalbox/`, the Z report, and the
//! reconciliation of the journal with the billing's orders count; token
//! expiry; no password or token in any log, reply, page or bundle.

mod common;

use common::TestDaemon;
use fiscald::clock::SystemClock;
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
        inn: INN.into(),
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
        // Asked again every 0.1 s at most in the tests.
        retry_cap: Duration::from_millis(100),
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

/// The last reconciliation in `/v1/status` once a check newer than the
/// stored row `after_id` is stored and no longer delayed.
async fn last_check(t: &TestDaemon, after_id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = t.get("/v1/status").await;
        let last = &s["billing"]["last"];
        if last["id"].as_i64().unwrap_or(0) > after_id && last["result"] != "delayed" {
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
    let day_1 = s["billing"]["last"]["id"].as_i64().unwrap();
    fb_call(&t, "/zreport/close/", None).await;
    let s = last_check(&t, day_1).await;
    let last = &s["billing"]["last"];
    assert_eq!(last["result"], "different", "{last}");
    let day_2 = last["id"].clone();
    assert_eq!(last["orders_difference"], 1);
    assert_eq!(last["amount_difference_tiyin"], 7_700);
    let named = last["explained_by"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{last}");
    assert_eq!(named[0]["receipt_id"], lost.as_str());
    let attention = s["attention"].to_string();
    assert!(attention.contains(&lost), "{attention}");

    // On demand for a whole period: both days, still one order missing.
    let (yesterday, today) = around_today();
    let r: Value = t
        .client
        .post(format!(
            "{}/v1/billing/check?from={yesterday}&to={today}",
            t.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["trigger"], "on_demand", "{r}");
    let first_id = r["id"].as_i64();
    assert_eq!(r["journal"]["orders"], 5, "{r}");
    assert_eq!(r["billing"]["orders"], 4, "{r}");
    assert_eq!(r["explained_by"][0]["receipt_id"], lost.as_str(), "{r}");
    // The simulated billing counts per INN: another INN has no orders, so
    // a wrong INN can never reconcile equal.
    for (inn, orders) in [(INN, 4), ("999999999", 0)] {
        assert_eq!(
            billing_orders(&fb, inn, &yesterday, &today).await,
            orders,
            "{inn}"
        );
    }
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
    // A period ending in the future is refused naming `to`.
    let after_today = (chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tashkent)
        + chrono::Duration::days(1))
    .format("%Y-%m-%dT%H:%M:%S")
    .to_string();
    let future = t
        .client
        .post(format!(
            "{}/v1/billing/check?from={yesterday}&to={after_today}",
            t.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(future.status(), 400);
    let future: Value = future.json().await.unwrap();
    assert!(future.to_string().contains("\"to\""), "{future}");
    assert!(future.to_string().contains("not_in_future"), "{future}");
    // The status keeps showing the day's Z report check: the wider
    // on-demand period (ending later) does not hide it.
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(
        status["billing"]["last"]["id"], day_2,
        "the status shows the day's Z check"
    );
    // The technician's command says the same, exit code 1; a bad date is
    // refused naming the option, exit code 2.
    let cli = |from: &str| {
        let args: Vec<String> = [
            "billing", "check", "--url", &t.base, "--from", from, "--to", &today,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        tokio::task::spawn_blocking(move || common::fiscald_cli(args))
    };
    let out = cli(&yesterday).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("result   DIFFERENT: journal minus billing = 1 order(s), 7700 tiyin"),
        "{text}"
    );
    assert!(text.contains(&format!("receipt {lost} ")), "{text}");
    assert!(text.contains("stored   check #"), "{text}");
    let out = cli("29.11.2026").await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("from must be YYYY-MM-DD"), "{err}");
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["billing"]["last"]["id"], day_2);
    let last = status["billing"]["last"].clone();
    let stored: i64 = text
        .split("stored   check #")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the command names its stored check");
    assert!(Some(stored) > first_id, "the command's own check: {text}");
    // docs/openapi.yaml describes these replies.
    openapi_replies(
        &t,
        &[
            ("POST", "/v1/billing/check", 200, r.clone()),
            ("POST", "/v1/billing/check", 400, bad),
            ("GET", "/v1/status", 200, status),
        ],
    );

    // After a restart on the same journal the stored results are still
    // shown: the newest in the status, the shift's in its report.
    let t = restart(t, &fb).await;
    let (_, s) = t.get("/v1/status").await;
    assert_eq!(s["billing"]["last"], last, "{}", s["billing"]);
    assert_eq!(s["billing"]["logins"], 0, "nothing asked the billing yet");
    assert!(s["attention"].to_string().contains(&lost), "{s}");
    // The status page in headless Chromium, after the restart: the stored
    // check, its difference and the receipt (screenshot kept in docs/).
    let page = format!("{}/", t.base);
    let dom = {
        let page = page.clone();
        tokio::task::spawn_blocking(move || common::chromium(&["--dump-dom", &page]))
            .await
            .unwrap()
    };
    let start = dom.find("id=\"billing\"").expect("the billing table");
    let table = &dom[start..start + dom[start..].find("</table>").unwrap()];
    assert!(table.contains("data-billing=\"different\""), "{table}");
    assert!(table.contains(&format!("receipt {lost} #")), "{table}");
    let amount = fiscald::domain::Money(7_700).to_string();
    assert!(
        table.contains(&format!("1 order(s), {amount}")),
        "the amount difference too: {table}"
    );
    assert!(
        table.contains("(z_report)"),
        "the Z check, not the on-demand one: {table}"
    );
    assert!(table.contains("1 attempt(s)"), "{table}");
    let png = common::screenshot(&page, "screenshots/billing-reconciliation.png", "430,2600").await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} bytes", png.len());
    let info = fb_call(&t, "/zreport/info/", None).await;
    assert_eq!(info["billing"]["result"], "different", "{info}");
    assert_eq!(info["billing"]["trigger"], "z_report", "{info}");
    assert_eq!(
        info["billing"]["explained_by"][0]["receipt_id"],
        lost.as_str(),
        "{info}"
    );
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

/// Stop `t` and start a daemon on the same journal (and billing).
async fn restart(t: TestDaemon, fb: &SimFiscalBox) -> TestDaemon {
    let TestDaemon {
        daemon,
        dir,
        client,
        ..
    } = t;
    daemon.stop().await.unwrap();
    let mut s = common::uz_settings(dir.path(), &fb.base_url());
    s.fiscalbox.as_mut().unwrap().billing = Some(billing(&fb.base_url()));
    let daemon = fiscald::daemon::Daemon::start(&s, std::sync::Arc::new(SystemClock))
        .await
        .expect("the daemon starts again");
    TestDaemon {
        base: format!("http://{}", daemon.addr),
        daemon,
        dir,
        client,
    }
}

/// Validate live replies against docs/openapi.yaml (tests/openapi/check.py).
fn openapi_replies(t: &TestDaemon, replies: &[(&str, &str, u16, Value)]) {
    common::require_python("yaml, jsonschema");
    let root = env!("CARGO_MANIFEST_DIR");
    let replies: Vec<Value> = replies
        .iter()
        .map(|(method, path, status, body)| {
            json!({"method": method, "path": path, "status": status, "body": body})
        })
        .collect();
    let file = t.dir.path().join("billing-replies.json");
    std::fs::write(&file, serde_json::to_vec(&replies).unwrap()).unwrap();
    let script = std::path::PathBuf::from(format!("{root}/tests/openapi/check.py"));
    let spec = format!("{root}/docs/openapi.yaml");
    let (status, out, err) = common::run_python(
        &script,
        &["replies".as_ref(), spec.as_ref(), file.as_os_str()],
        Duration::from_secs(60),
    );
    assert!(
        status.success() && out.contains(" 0 problems"),
        "docs/openapi.yaml disagrees with the billing replies:\n{err}\n{out}"
    );
}

/// The status's last check once `pred` holds for it.
async fn wait_last(t: &TestDaemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = t.get("/v1/status").await;
        if pred(&s["billing"]["last"]) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {}", s["billing"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_outage_delays_the_check_stores_it_and_the_retry_after_a_restart_settles_it() {
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
    // Stored as delayed, retried: the attempts grow in the same row.
    let s = wait_last(&t, "a delayed check retried", |l| {
        l["result"] == "delayed" && l["attempts"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let delayed = s["billing"]["last"].clone();
    assert!(
        delayed["reason"]
            .as_str()
            .unwrap()
            .contains("billing unreachable"),
        "{delayed}"
    );
    assert_eq!(delayed["trigger"], "z_report");
    assert!(delayed["billing"].is_null(), "{delayed}");
    let id = delayed["id"]
        .as_i64()
        .expect("stored: the journal's row id");
    assert!(s["attention"].to_string().contains("delayed"), "{s}");
    // Sales go on meanwhile (a second later: periods have the billing's
    // one-second resolution, both ends included).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fb_call(&t, "/zreport/open/", None).await;
    sell(&t, "o-1", 5_000).await;
    wait_fiscalized(&t, 2).await;
    // fiscald restarts while the billing is still down: the stored delayed
    // check is shown and taken up again; once the billing is back its row
    // becomes equal (the first shift: one sale).
    let t = restart(t, &fb).await;
    let (_, s) = t.get("/v1/status").await;
    assert_eq!(s["billing"]["last"]["id"], id, "{}", s["billing"]);
    assert_eq!(s["billing"]["last"]["result"], "delayed");
    fb.set_knobs(BoxKnobs {
        billing_down: Some(false),
        ..BoxKnobs::default()
    });
    let s = wait_last(&t, "the retried check settles", |l| l["result"] == "equal").await;
    let last = &s["billing"]["last"];
    assert_eq!(last["id"], id, "the same check, updated: {last}");
    assert_eq!(last["trigger"], "z_report");
    assert_eq!(last["start"], delayed["start"]);
    assert_eq!(
        last["journal"],
        json!({"orders": 1, "amount_tiyin": 11_200})
    );
    assert_eq!(last["billing"], last["journal"]);
    assert!(
        last["attempts"].as_u64().unwrap() > delayed["attempts"].as_u64().unwrap(),
        "{last}"
    );
    assert!(s["attention"].as_array().unwrap().is_empty(), "{s}");
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_z_report_check_is_stored_before_the_billing_answers_and_survives_a_stop() {
    let fb = sim_box().await;
    let t = start(&fb).await;
    fb_call(&t, "/zreport/open/", None).await;
    sell(&t, "h-0", 11_200).await;
    sell(&t, "h-1", 5_000).await;
    wait_fiscalized(&t, 2).await;
    // The billing takes requests and does not answer; fiscald is stopped
    // right after the Z report, before any answer could come.
    fb.set_knobs(BoxKnobs {
        billing_hang: Some(true),
        ..BoxKnobs::default()
    });
    let z = fb_call(&t, "/zreport/close/", None).await;
    assert_eq!(z["billing"]["result"], "pending", "{z}");
    let id = z["billing"]["id"].as_i64().expect("stored before asking");
    let t = restart(t, &fb).await;
    // The check is there, delayed, and taken up again.
    let (_, s) = t.get("/v1/status").await;
    let last = &s["billing"]["last"];
    assert_eq!(last["id"], id, "{}", s["billing"]);
    assert_eq!(last["result"], "delayed", "{last}");
    assert_eq!(last["trigger"], "z_report", "{last}");
    assert_eq!(last["start"], z["billing"]["start"], "{last}");
    fb.set_knobs(BoxKnobs {
        billing_hang: Some(false),
        ..BoxKnobs::default()
    });
    let s = wait_last(&t, "the stored check settles", |l| l["result"] == "equal").await;
    let last = &s["billing"]["last"];
    assert_eq!(last["id"], id, "the same row: {last}");
    assert_eq!(
        last["journal"],
        json!({"orders": 2, "amount_tiyin": 16_200})
    );
    assert_eq!(last["billing"], last["journal"]);
    assert!(s["attention"].as_array().unwrap().is_empty(), "{s}");
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_renewed_at_its_rotation_age_and_once_after_a_401() {
    use fiscald::clock::ManualClock;
    use fiscald::fiscalbox::billing::BillingClient;
    use fiscald::journal::{Journal, Options};
    use std::sync::Arc;
    let fb = sim_box().await;
    let dir = tempfile::tempdir().unwrap();
    let s = common::uz_settings(dir.path(), &fb.base_url());
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let journal = Journal::open(
        Options::from_settings(&s, s.journal_path.clone()),
        clock.clone(),
    )
    .unwrap();
    let mut settings = billing(&fb.base_url());
    settings.token_rotation = Duration::from_secs(600);
    let client = BillingClient::new(settings.clone(), journal.clone(), clock.clone()).unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let (from, to) = (
        day.and_hms_opt(0, 0, 0).unwrap(),
        day.and_hms_opt(23, 59, 59).unwrap(),
    );
    let token = async || {
        journal
            .secret(fiscald::fiscalbox::billing::BILLING_TOKEN)
            .await
            .unwrap()
            .expect("the token is kept in the journal")
    };
    client.count(from, to).await.unwrap();
    assert_eq!(fb.stats().billing_logins, 1);
    let (token_1, rotate_1) = token().await;
    // One second short of the age: the token is used as it is.
    clock.advance(chrono::Duration::seconds(599));
    client.count(from, to).await.unwrap();
    assert_eq!(fb.stats().billing_logins, 1);
    // At the age: a new login although the billing still takes the token
    // (no 401 was needed), and the journal keeps the new one.
    clock.advance(chrono::Duration::seconds(1));
    client.count(from, to).await.unwrap();
    let stats = fb.stats();
    assert_eq!(stats.billing_logins, 2, "{stats:?}");
    assert_eq!(stats.billing_unauthorized, 0, "{stats:?}");
    let (token_2, rotate_2) = token().await;
    assert_ne!(token_1, token_2);
    assert_eq!(
        rotate_2.unwrap() - rotate_1.unwrap(),
        600_000,
        "rotated at its age"
    );
    // A client started again (a restart) goes on with the kept token.
    let again = BillingClient::new(settings, journal.clone(), clock.clone()).unwrap();
    again.count(from, to).await.unwrap();
    assert_eq!(fb.stats().billing_logins, 2);
    // The billing expires every token: exactly one new login, then success.
    fb.set_knobs(BoxKnobs {
        billing_expire_tokens: Some(true),
        ..BoxKnobs::default()
    });
    again.count(from, to).await.unwrap();
    let stats = fb.stats();
    assert_eq!(stats.billing_unauthorized, 1, "{stats:?}");
    assert_eq!(stats.billing_logins, 3, "{stats:?}");
    again.count(from, to).await.unwrap();
    assert_eq!(fb.stats().billing_logins, 3);
    assert_ne!(token().await.0, token_2);
    // A wrong password is a failure, not a loop of logins.
    fb.set_billing_login(BillingLogin {
        username: "shop".into(),
        password: "another".into(),
        inn: INN.into(),
    });
    fb.set_knobs(BoxKnobs {
        billing_expire_tokens: Some(true),
        ..BoxKnobs::default()
    });
    let e = again.count(from, to).await.unwrap_err();
    assert!(!e.describe().contains(PASSWORD), "{}", e.describe());
    assert_eq!(fb.stats().billing_unauthorized, 2);
    tokio::task::spawn_blocking(move || journal.close())
        .await
        .unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delayed_check_is_taken_up_a_few_at_a_time_until_all_settle() {
    use fiscald::clock::SystemClock;
    use fiscald::fiscalbox::billing::{BillingClient, TAKE_UP_AT_ONCE, resume};
    use fiscald::journal::{BillingCheckRow, Journal, Options};
    use std::sync::Arc;
    let fb = sim_box().await;
    let dir = tempfile::tempdir().unwrap();
    let s = common::uz_settings(dir.path(), &fb.base_url());
    let journal = Journal::open(
        Options::from_settings(&s, s.journal_path.clone()),
        Arc::new(SystemClock),
    )
    .unwrap();
    // A long outage left more delayed checks than are asked at once, some
    // asked very often already, and one the billing refused.
    let n = TAKE_UP_AT_ONCE + 4;
    for i in 0..n {
        journal
            .save_billing_check(BillingCheckRow {
                id: None,
                period_from: format!("2026-10-{:02}T08:00:00", i + 1),
                period_to: format!("2026-10-{:02}T20:00:00", i + 1),
                trigger: "z_report".into(),
                result: "delayed".into(),
                journal_orders: 0,
                journal_amount: 0,
                billing_orders: None,
                billing_amount: None,
                outcome: r#"{"result":"delayed","reason":"billing unreachable"}"#.into(),
                attempts: if i % 2 == 0 { 10_000 } else { 3 },
                checked_at: "2026-10-01T20:00:00Z".into(),
            })
            .await
            .unwrap();
    }
    let refused = journal
        .save_billing_check(BillingCheckRow {
            id: None,
            period_from: "2026-09-01T08:00:00".into(),
            period_to: "2026-09-01T20:00:00".into(),
            trigger: "z_report".into(),
            result: "refused".into(),
            journal_orders: 0,
            journal_amount: 0,
            billing_orders: None,
            billing_amount: None,
            outcome: r#"{"result":"refused","reason":"HTTP 400"}"#.into(),
            attempts: 1,
            checked_at: "2026-09-01T20:00:00Z".into(),
        })
        .await
        .unwrap();
    let client = Arc::new(
        BillingClient::new(
            billing(&fb.base_url()),
            journal.clone(),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    assert_eq!(resume(&client).await, TAKE_UP_AT_ONCE);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = journal.delayed_billing_checks(100).await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{} still delayed", left.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (unresolved, count) = journal.unresolved_billing_checks(10).await.unwrap();
    assert_eq!(count, 1, "only the refused one: {unresolved:?}");
    assert_eq!(unresolved[0].id, Some(refused));
    assert_eq!(unresolved[0].result, "refused", "not asked again");
    client.stop();
    tokio::task::spawn_blocking(move || journal.close())
        .await
        .unwrap();
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
             [fiscalbox.billing]\nurl = \"{}\"\nusername = \"shop\"\npassword_file = \"{}\"\ninn = \"{INN}\"\nretry_cap_ms = 100\n\
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
    let (yesterday, today) = around_today();
    // The technician's command: through the local API.
    let check = |what: &'static str| {
        let args: Vec<String> = [
            "billing", "check", "--url", &base, "--token", OPERATOR, "--from", &yesterday, "--to",
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
            .post(format!(
                "{base}/v1/billing/check?from={yesterday}&to={today}"
            ))
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
        // The bundle scrubs the planted password (and any secret of the
        // config) — but it must never have been there to scrub: outside
        // the redacted config copy, no scrub marker either.
        if !path.ends_with("config.redacted.toml") {
            assert!(
                !text.contains("<redacted>"),
                "a secret reached {} (scrubbed there)",
                path.display()
            );
        }
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
    // The stored reconciliations hold no secret either.
    let c =
        rusqlite::Connection::open_with_flags(&journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows: Vec<String> = c
        .prepare("SELECT json_array(period_from, period_to, trigger, result, outcome, checked_at) FROM billing_checks")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "every check is stored: {rows:?}");
    outputs.push(("journal billing_checks".into(), rows.join("\n")));
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

/// A period around today in Tashkent (yesterday to today, the latest a
/// check takes): every sale
/// of a test is in it, even when the test runs across midnight.
fn around_today() -> (String, String) {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tashkent)
        .date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    (day(today.pred_opt().unwrap()), day(today))
}

/// The simulated billing's orders count for `inn` over whole days, asked
/// the way the client asks (facts' header and paths).
async fn billing_orders(fb: &SimFiscalBox, inn: &str, from: &str, to: &str) -> i64 {
    use fiscald::fiscalbox::facts;
    let http = reqwest::Client::new();
    let login: facts::BillingToken = http
        .post(format!("{}{}", fb.base_url(), facts::BILLING_LOGIN_PATH))
        .json(&json!({"username": "shop", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reply: facts::BillingCountReply = http
        .get(format!(
            "{}{}?start_date={from}T00:00:00&end_date={to}T23:59:59&inn={inn}",
            fb.base_url(),
            facts::BILLING_COUNT_PATH
        ))
        .header("Authorization", facts::billing_authorization(&login.token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply.data.total_orders
}

/// The POS time of an order now, as an Uzbek till writes it.
fn tashkent_now() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tashkent)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}
