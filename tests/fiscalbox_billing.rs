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
const IKPU: &str = "10999001001000000";

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
    let vat = fiscald::domain::uz::included_vat(fiscald::domain::Money(price), 12).0;
    let o = json!({"number": 1, "receipt_type": "order", "products": [{
            "name": "Non", "barcode": "4780000000007", "amount": 1000, "unit_name": "dona",
            "price": price, "product_price": price, "vat": vat, "vat_percent": 12,
            "discount": 0, "other": 0, "labels": [], "class_code": IKPU,
            "package_code": "1520627", "owner_type": 0}],
        "time": chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tashkent)
            .format("%Y-%m-%d %H:%M:%S").to_string(),
        "cashier": "Admin", "uuid": uuid,
        "received_cash": price, "change": 0, "received_card": 0});
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
