//! The Uzbek till against `fiscald sim fiscalbox` over real HTTP on port 0:
//! the FiscalBox backend fiscalizes every journaled receipt exactly once
//! through outages and lost replies.

mod common;

use common::{TestDaemon, uz_receipt};
use fiscald::sim::fiscalbox::{BoxConfig, BoxKnobs, SimFiscalBox};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn sim_box() -> SimFiscalBox {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    SimFiscalBox::start(listener, BoxConfig::default()).await
}

/// Wait until every receipt in `ids` is fiscalized (bounded).
async fn wait_fiscalized(t: &TestDaemon, ids: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = Vec::new();
        for id in ids {
            let (_, r) = t.get(&format!("/v1/receipts/{id}")).await;
            if r["state"] == "fiscalized" {
                done.push(r);
            }
        }
        if done.len() == ids.len() {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} receipts fiscalized",
            done.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_the_box_once_through_outages_and_lost_replies() {
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    // The box starts with its shift closed: the first sale gets 0x902D and
    // the worker opens the shift itself.
    let mut ids = Vec::new();
    for i in 0..16 {
        // Unplugged for receipts 4..8 and 12..16; two replies lost on the way.
        fb.set_knobs(BoxKnobs {
            down: Some((4..8).contains(&i) || (12..16).contains(&i)),
            lose_replies: (i == 2 || i == 9).then_some(1),
            ..BoxKnobs::default()
        });
        let (status, r) = t
            .post(&uz_receipt(&format!("Non {i}"), "5000.00"), None)
            .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    fb.set_knobs(BoxKnobs {
        down: Some(false),
        ..BoxKnobs::default()
    });
    let receipts = wait_fiscalized(&t, &ids).await;
    let stats = fb.stats();
    assert_eq!(stats.counters.sales_created, 16, "{stats:?}");
    assert_eq!(stats.counters.receipts_per_uuid_max, 1);
    // The lost replies were found with order/last, not sent again.
    assert_eq!(stats.lost_replies, 2, "{stats:?}");
    assert_eq!(stats.counters.uuid_repeats, 0, "{stats:?}");
    assert!(stats.dropped_down > 0, "{stats:?}");
    assert_eq!(stats.counters.shifts_opened, 1);
    // Each receipt carries the box's fiscal data: its Soliq link is unique
    // and the sequence numbers are 1..=16.
    let mut seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["fiscal"]["fiscal_document_number"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
    for r in &receipts {
        let qr = r["fiscal"]["qr"].as_str().unwrap();
        assert!(
            qr.starts_with("https://ofd.soliq.uz/check?t=UZ170703100189&r="),
            "{qr}"
        );
    }
    // The box's accumulators hold exactly the 16 sales.
    let cash = fb.with_model(|m| m.totals().0);
    assert_eq!(cash, 16 * 500_000);
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

// ───────────── through the /fiscalbox/ dialect only ─────────────

use serde_json::json;

async fn fb_post(t: &TestDaemon, path: &str, body: &Value) -> Value {
    let resp = t
        .client
        .post(format!("{}/fiscalbox{path}", t.base))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

async fn fb_get(t: &TestDaemon, path: &str) -> Value {
    let resp = t
        .client
        .get(format!("{}/fiscalbox{path}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

fn vat12(total: i64) -> i64 {
    fiscald::domain::uz::included_vat(fiscald::domain::Money(total), 12).0
}

/// An order: lines of (name, unit price in tiyin, quantity ×1000).
fn order(uuid: &str, lines: &[(&str, i64, i64)], cash: i64, change: i64, card: i64) -> Value {
    common::fiscalbox_order(uuid, lines, (cash, change, card), "2026-11-29 10:00:00")
}

fn ok(reply: &Value) -> &Value {
    assert_eq!(reply["is_success"], true, "{reply}");
    assert_eq!(reply["error"], Value::Null);
    &reply["data"]
}

fn wrapped(reply: &Value) -> &Value {
    ok(&reply["result"])
}

fn failed(reply: &Value, code: i64) -> &Value {
    assert_eq!(reply["is_success"], false, "{reply}");
    assert_eq!(reply["data"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], code, "{reply}");
    assert!(reply["error"]["message"].is_string(), "{reply}");
    reply["error"]
        .as_object()
        .unwrap()
        .get("data")
        .expect("error.data is present")
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const PROVIDERS: [(&str, i64, &str); 4] = [
    ("click", 64, "payment_id"),
    ("payme", 141, "payment_id"),
    ("uzum", 161, "payment_id"),
    ("anor", 187, "transaction_id"),
];

/// Sales paid by cash, card and each QR provider (with their confirms),
/// and one sale of three that the day refunds twice. Returns the expected
/// (cash, card, vat) of sales and the qr_url of the sale to refund.
async fn sell_the_day(t: &TestDaemon, tag: &str) -> ((i64, i64, i64), String) {
    let (mut cash, mut card, mut vat) = (0, 0, 0);
    // Cash with change.
    let r = fb_post(
        t,
        "/order/create/",
        &order(
            &format!("{tag}-cash"),
            &[("Non", 11200, 1000)],
            20000,
            8800,
            0,
        ),
    )
    .await;
    assert!(ok(&r)["qr_url"].as_str().unwrap().starts_with("http"));
    cash += 11200;
    vat += vat12(11200);
    // Card through the HUMO terminal.
    let slip = fb_post(t, "/payment/xumo", &json!({"amount": 22400})).await;
    let mut o = order(
        &format!("{tag}-card"),
        &[("Choy", 22400, 1000)],
        0,
        0,
        22400,
    );
    o["ppt_id"] = ok(&slip)["ppt_id"].clone();
    o["card_type"] = json!(2);
    ok(&fb_post(t, "/order/create", &o).await);
    card += 22400;
    vat += vat12(22400);
    // Each QR provider: pay, sell, confirm.
    for (i, (p, code, key)) in PROVIDERS.iter().enumerate() {
        let amount = 5600 * (i as i64 + 1);
        let paid = fb_post(
            t,
            &format!("/payment/{p}"),
            &json!({"amount": amount, "qr_code": "customer-qr"}),
        )
        .await;
        let id = ok(&paid)[*key].as_str().unwrap().to_string();
        let mut o = order(
            &format!("{tag}-{p}"),
            &[("Shakar", amount, 1000)],
            0,
            0,
            amount,
        );
        o["extra_info"] = json!({"qr_payment_id": id, "qr_payment_provider": code, "phone_number": "+998901234567"});
        let sold = fb_post(t, "/order/create/", &o).await;
        let qr = ok(&sold)["qr_url"].as_str().unwrap().to_string();
        let confirmed = fb_post(
            t,
            &format!("/payment/{p}_confirm"),
            &json!({*key: id, "qr_code": qr}),
        )
        .await;
        assert_eq!(ok(&confirmed)["error_code"], 0);
        card += amount;
        vat += vat12(amount);
    }
    // Three bottles of milk, to be refunded in parts.
    let milk = fb_post(
        t,
        "/order/create/",
        &order(&format!("{tag}-milk"), &[("Sut", 9000, 3000)], 27000, 0, 0),
    )
    .await;
    cash += 27000;
    vat += vat12(27000);
    (
        (cash, card, vat),
        ok(&milk)["qr_url"].as_str().unwrap().to_string(),
    )
}

fn refund(uuid: &str, qr: &str, bottles: i64) -> Value {
    let mut r = order(uuid, &[("Sut", 9000, bottles * 1000)], 9000 * bottles, 0, 0);
    r.as_object_mut().unwrap().remove("receipt_type");
    r["qr_code"] = json!(qr);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_day_through_the_fiscalbox_dialect_only() {
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    ok(&fb_get(&t, "/zreport/open/?time=2026-11-29%2009:00:00").await);
    let ((cash, card, vat), milk) = sell_the_day(&t, "day").await;
    // Two partial refunds of the milk sale.
    for (i, n) in [1, 2].iter().enumerate() {
        let r = fb_post(
            &t,
            "/order/refuse/",
            &refund(&format!("day-refund-{i}"), &milk, *n),
        )
        .await;
        assert!(ok(&r)["fiscal_sign"].as_str().unwrap().len() == 12, "{r}");
    }
    let refunded = 27000;
    let refunded_vat = vat12(9000) + vat12(18000);
    // X report: the journal's totals, no difference with the box.
    let x = fb_post(&t, "/zreport/close/", &json!({"close_zreport": false})).await;
    let x = wrapped(&x);
    assert_eq!(x["total_sale_cash"], cash, "{x}");
    assert_eq!(x["differences"], json!([]), "{x}");
    assert_eq!(x["shift_opened"], true);
    // The reconciliation shows in GET /v1/status, nothing needing attention.
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["sverka"]["result"], "equal", "{status}");
    assert_eq!(status["sverka"]["differences"], json!([]), "{status}");
    assert!(
        !status["attention"].to_string().contains("reconciliation"),
        "{status}"
    );
    // Z report.
    let z = fb_get(&t, "/zreport/close/?time=2026-11-29%2021:00:00").await;
    let z = wrapped(&z).clone();
    assert_eq!(z["total_sale_cash"], cash, "{z}");
    assert_eq!(z["total_sale_card"], card, "{z}");
    assert_eq!(z["total_sale_vat"], vat, "{z}");
    assert_eq!(z["total_sale_count"], 7);
    assert_eq!(z["total_refund_cash"], refunded);
    assert_eq!(z["total_refund_vat"], refunded_vat);
    assert_eq!(z["total_refund_count"], 2);
    assert_eq!(z["differences"], json!([]), "{z}");
    assert_eq!(z["close_time"], "2026-11-29 21:00:00");
    // ... and equal to the box's own Z report.
    let boxed = fb
        .with_model(|m| m.closed_zreports().last().cloned())
        .unwrap();
    assert_eq!(
        (
            boxed.total_sale_cash,
            boxed.total_sale_card,
            boxed.total_sale_vat
        ),
        (cash, card, vat)
    );
    assert_eq!(
        (boxed.total_refund_cash, boxed.total_refund_vat),
        (refunded, refunded_vat)
    );
    assert_eq!((boxed.total_sale_count, boxed.total_refund_count), (7, 2));
    // The four confirms reach the box once each.
    wait_for("confirms", || fb.stats().counters.confirms_delivered == 4).await;
    let stats = fb.stats();
    assert_eq!(stats.counters.confirm_repeats, 0);
    assert_eq!(stats.counters.sales_created, 7);
    assert_eq!(stats.counters.refunds_created, 2);
    // The box's memory counters (read with each send and every minute) are
    // a deadline condition in GET /v1/status, against the box's maxima.
    let (_, status) = t.get("/v1/status").await;
    let memory = status["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "fiscalbox_memory")
        .unwrap_or_else(|| panic!("no fiscalbox_memory condition: {status}"))
        .clone();
    assert_eq!(memory["severity"], "ok", "{memory}");
    let text = memory["message"].as_str().unwrap();
    assert!(
        text.contains("of 100000 receipts") && text.contains("of 1000 Z reports"),
        "{memory}"
    );
    // Closed: a second close is refused in the documented shape.
    failed(&fb_get(&t, "/zreport/close/").await, 9326);
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_day_with_the_box_unplugged_half_the_time() {
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    ok(&fb_get(&t, "/zreport/open/").await);
    // Payments need the box (money is never taken blind): while it is
    // unplugged a payment fails clearly.
    fb.set_knobs(BoxKnobs {
        down: Some(true),
        ..BoxKnobs::default()
    });
    let refused = fb_post(
        &t,
        "/payment/click",
        &json!({"amount": 5600, "qr_code": "q"}),
    )
    .await;
    let why = failed(&refused, 106);
    assert!(
        why.as_str().unwrap().contains("no money was taken"),
        "{why}"
    );
    fb.set_knobs(BoxKnobs {
        down: Some(false),
        ..BoxKnobs::default()
    });
    // Pay with every provider while the box is up…
    let mut paid = Vec::new();
    for (p, code, key) in PROVIDERS {
        let r = fb_post(
            &t,
            &format!("/payment/{p}"),
            &json!({"amount": 5600, "qr_code": "q"}),
        )
        .await;
        paid.push((p, code, key, ok(&r)[key].as_str().unwrap().to_string()));
    }
    // …then sell with the box unplugged every other receipt: each sale is
    // accepted and journaled at once (offline link), each confirm queued.
    let mut offline_answers = 0;
    for i in 0..12 {
        fb.set_knobs(BoxKnobs {
            down: Some(i % 2 == 0),
            ..BoxKnobs::default()
        });
        let mut o = order(&format!("half-{i}"), &[("Non", 11200, 1000)], 11200, 0, 0);
        if let Some((p, code, key, id)) = paid.get(i / 3).filter(|_| i % 3 == 0) {
            o = order(&format!("half-{i}"), &[("Non", 5600, 1000)], 0, 0, 5600);
            o["extra_info"] = json!({"qr_payment_id": id, "qr_payment_provider": code});
            let sold = fb_post(&t, "/order/create/", &o).await;
            let qr = ok(&sold)["qr_url"].as_str().unwrap().to_string();
            if ok(&sold)["fiscal_sign"] == "" {
                offline_answers += 1;
            }
            let c = fb_post(
                &t,
                &format!("/payment/{p}_confirm"),
                &json!({*key: id, "qr_code": qr}),
            )
            .await;
            ok(&c);
        } else {
            let sold = fb_post(&t, "/order/create/", &o).await;
            if ok(&sold)["fiscal_sign"] == "" {
                offline_answers += 1;
            }
        }
        if i == 10 {
            // The box is unplugged: what waits for it is visible, receipts
            // and confirms, with the error.
            let (_, health) = t.get("/v1/health").await;
            let jobs = &health["fiscalbox"]["jobs"];
            assert!(
                jobs["fiscalbox"]["pending"].as_u64().unwrap() > 0,
                "{health}"
            );
            assert_eq!(health["fiscalbox"]["state"]["online"], false, "{health}");
        }
    }
    assert!(
        offline_answers > 0,
        "some sales were answered while the box was unplugged"
    );
    fb.set_knobs(BoxKnobs {
        down: Some(false),
        ..BoxKnobs::default()
    });
    wait_for("all receipts and confirms on the box", || {
        let s = fb.stats();
        s.counters.sales_created == 12 && s.counters.confirms_delivered == 4
    })
    .await;
    let s = fb.stats();
    assert!(s.dropped_down > 0, "{s:?}");
    assert_eq!(s.counters.receipts_per_uuid_max, 1, "{s:?}");
    assert_eq!(s.counters.uuid_repeats, 0, "{s:?}");
    assert_eq!(s.counters.confirm_repeats, 0, "{s:?}");
    for (_, _, _, id) in &paid {
        assert_eq!(fb.with_model(|m| m.confirms_of(id)), 1);
    }
    // Every receipt is journaled and fiscalized; the Z report agrees with the box.
    let z = fb_get(&t, "/zreport/close/").await;
    let z = wrapped(&z);
    assert_eq!(z["total_sale_count"], 12, "{z}");
    assert_eq!(z["differences"], json!([]), "{z}");
    assert_eq!(t.receipt_count().await, 12);
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_path_answers_the_documented_code_and_shape() {
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    // A sale with the shift closed: 0x902D.
    let r = fb_post(
        &t,
        "/order/create/",
        &order("e-1", &[("Non", 11200, 1000)], 11200, 0, 0),
    )
    .await;
    failed(&r, 0x902D);
    // Closing a closed shift: 9326; opening an open one: 9327.
    failed(&fb_get(&t, "/zreport/close/").await, 9326);
    ok(&fb_get(&t, "/zreport/open/").await);
    failed(&fb_get(&t, "/zreport/open").await, 9327);
    // A missing class_code: 7, the field listed in the message (a JSON string).
    let mut o = order("e-2", &[("Non", 11200, 1000)], 11200, 0, 0);
    o["products"][0]
        .as_object_mut()
        .unwrap()
        .remove("class_code");
    let r = fb_post(&t, "/order/create/", &o).await;
    failed(&r, 7);
    let fields: Value = serde_json::from_str(r["error"]["message"].as_str().unwrap()).unwrap();
    assert!(fields.get("products.0.class_code").is_some(), "{fields}");
    // A wrong VAT (not 12/112 of the price) and a 16-digit IKPU: 7, both listed.
    let mut o = order("e-3", &[("Non", 11200, 1000)], 11200, 0, 0);
    o["products"][0]["vat"] = json!(2000);
    o["products"][0]["class_code"] = json!("1099900100100000");
    let r = fb_post(&t, "/order/create/", &o).await;
    failed(&r, 7);
    let fields: Value = serde_json::from_str(r["error"]["message"].as_str().unwrap()).unwrap();
    assert!(fields.get("products.0.vat").is_some(), "{fields}");
    assert!(fields.get("products.0.class_code").is_some(), "{fields}");
    // A malformed body: 7 naming the body.
    let resp = t
        .client
        .post(format!("{}/fiscalbox/order/create/", t.base))
        .header("content-type", "application/json")
        .body("{\"products\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    failed(&r, 7);
    assert!(
        r["error"]["message"].as_str().unwrap().contains("body"),
        "{r}"
    );
    // An unknown path under /fiscalbox/: 404 in the envelope, HTTP 200.
    failed(&fb_get(&t, "/order/nothing/").await, 404);
    failed(&fb_post(&t, "/zreport/open/", &json!({})).await, 404);
    // A refund beyond the sale, across two refunds: 65275, nothing written.
    let sold = fb_post(
        &t,
        "/order/create/",
        &order("e-4", &[("Sut", 9000, 2000)], 18000, 0, 0),
    )
    .await;
    let qr = ok(&sold)["qr_url"].as_str().unwrap().to_string();
    ok(&fb_post(&t, "/order/refuse/", &refund("e-5", &qr, 1)).await);
    let before = t.receipt_count().await;
    let r = fb_post(&t, "/order/refuse/", &refund("e-6", &qr, 2)).await;
    let why = failed(&r, 65275);
    assert!(why.to_string().contains("more than was sold"), "{why}");
    assert_eq!(t.receipt_count().await, before);
    // A refund of a receipt this till never issued: 65275.
    let r = fb_post(
        &t,
        "/order/refuse/",
        &refund("e-7", "https://ofd.soliq.uz/check?t=X&r=1&c=2&s=3", 1),
    )
    .await;
    failed(&r, 65275);
    // The box refusing a refund (fault knob) parks the receipt and says so.
    fb.set_knobs(BoxKnobs {
        refuse_refunds: Some(true),
        ..BoxKnobs::default()
    });
    let r = fb_post(&t, "/order/refuse/", &refund("e-8", &qr, 1)).await;
    failed(&r, 65275);
    // The parked refund is in the journal, not on the box: an X report
    // lists the difference, and so do GET /v1/status and its attention list.
    let x = fb_post(&t, "/zreport/close/", &json!({"close_zreport": false})).await;
    let diffs = wrapped(&x)["differences"].clone();
    assert!(
        diffs
            .as_array()
            .unwrap()
            .contains(&json!({"field": "total_refund_count", "journal": 2, "fiscalbox": 1})),
        "{x}"
    );
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["sverka"]["result"], "different", "{status}");
    assert_eq!(status["sverka"]["differences"], diffs, "{status}");
    let attention = status["attention"].to_string();
    assert!(
        attention.contains("differs on total_refund_count: journal 2, FiscalBox 1"),
        "{status}"
    );
    // ... and the status page, with the differing figure, and /metrics
    // carries the FiscalBox memory deadline like every other condition.
    let page = t.client.get(format!("{}/", t.base)).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"data-sverka="different""#), "{page}");
    assert!(page.contains("total_refund_count"), "{page}");
    assert!(page.contains(r#"data-kind="fiscalbox_memory""#), "{page}");
    let metrics = t
        .client
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains(r#"fiscald_deadline_severity{kind="fiscalbox_memory"} 0"#),
        "{metrics}"
    );
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_order_with_the_same_uuid_creates_nothing() {
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    ok(&fb_get(&t, "/zreport/open/").await);
    let o = order("same-uuid", &[("Non", 11200, 1000)], 11200, 0, 0);
    let first = fb_post(&t, "/order/create/", &o).await;
    let first = ok(&first).clone();
    assert_eq!(first["fiscal_sign"].as_str().unwrap().len(), 12, "{first}");
    let receipts = t.receipt_count().await;
    let created = fb.stats().counters.sales_created;
    for _ in 0..3 {
        let again = fb_post(&t, "/order/create/", &o).await;
        let again = ok(&again);
        assert_eq!(again["receipt_count"], first["receipt_count"]);
        assert_eq!(again["fiscal_sign"], first["fiscal_sign"]);
        assert_eq!(again["qr_url"], first["qr_url"]);
    }
    assert_eq!(t.receipt_count().await, receipts);
    let s = fb.stats();
    assert_eq!(s.counters.sales_created, created);
    assert_eq!(
        s.counters.uuid_repeats, 0,
        "the repeat never reached the box"
    );
    // order/last (wrapped) shows the same fiscal data in the box's CamelCase.
    let last = fb_get(&t, "/order/last/").await;
    let last = wrapped(&last);
    assert_eq!(last["result"]["FiscalSign"], first["fiscal_sign"]);
    assert_eq!(last["order"]["uuid"], "same-uuid");
    assert_eq!(last["isRefund"], false);
    // The same uuid with other content is refused, nothing written.
    let other = order("same-uuid", &[("Non", 22400, 1000)], 22400, 0, 0);
    failed(&fb_post(&t, "/order/create/", &other).await, 7);
    assert_eq!(t.receipt_count().await, receipts);
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soliq_qr_and_banners_are_printed_on_the_escpos_printer() {
    let fb = sim_box().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = common::emulators(dir.path());
    let t = TestDaemon::start_uz(&fb.base_url(), |s| {
        common::wire_emulators(s, &sim);
        // The FiscalBox fiscalizes; the register is not part of this till.
        s.devices.register = None;
        s.devices.backend = fiscald::config::Backend::Fiscalbox;
    })
    .await;
    ok(&fb_get(&t, "/zreport/open/").await);
    let sold = fb_post(
        &t,
        "/order/create/",
        &order("print-1", &[("Non", 11200, 1000)], 11200, 0, 0),
    )
    .await;
    let qr = ok(&sold)["qr_url"].as_str().unwrap().to_string();
    assert!(qr.starts_with("https://ofd.soliq.uz/check?t="), "{qr}");
    wait_for("the printed receipt", || {
        !sim.printer.output().documents.is_empty()
    })
    .await;
    let doc = sim.printer.output().documents[0].clone();
    assert_eq!(doc.qr, [qr]);
    assert!(
        doc.text()
            .contains(ok(&sold)["fiscal_sign"].as_str().unwrap()),
        "{}",
        doc.text()
    );
    // A banner: styled text, a barcode and a QR, on the same printer.
    let r = fb_post(&t, "/print/banner", &json!({"banners": [
        {"type": "text", "data": "Keyingi xarid uchun 5%", "style": {"font_width": 2, "font_height": 2, "is_bold": true, "align": "center"}},
        {"type": "barcode", "data": "23423423"},
        {"type": "qr_code", "data": "https://example.uz/promo", "style": {"qr_size": 6}}
    ]})).await;
    ok(&r);
    let out = sim.printer.output();
    let banner = out.documents.last().unwrap();
    assert!(banner.text().contains("Keyingi xarid"), "{}", banner.text());
    assert_eq!(banner.qr, ["https://example.uz/promo"]);
    assert_eq!(
        fb.stats().counters.banners_printed,
        0,
        "printed by fiscald, not the box"
    );
    t.daemon.stop().await.unwrap();
    fb.stop().await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_page_cannot_sell_open_shifts_or_pay() {
    // FiscalBox clients send no credentials (auth "none"): the Host/Origin
    // policy is what keeps a web page from using the till.
    let fb = sim_box().await;
    let t = TestDaemon::start_uz(&fb.base_url(), |_| {}).await;
    let host = format!("Host: {}", t.daemon.addr);
    let sale = order("xsite", &[("Non", 11200, 1000)], 11200, 0, 0).to_string();
    for (line, body) in [
        ("POST /fiscalbox/order/create/ HTTP/1.1", sale.as_str()),
        (
            "POST /fiscalbox/payment/click HTTP/1.1",
            "{\"amount\":100,\"qr_code\":\"q\"}",
        ),
        ("GET /fiscalbox/zreport/open/ HTTP/1.1", ""),
        ("GET /fiscalbox/print/open_cash_drawer/ HTTP/1.1", ""),
    ] {
        for extra in [
            "Origin: http://evil.example\r\nContent-Type: text/plain",
            "Sec-Fetch-Site: cross-site\r\nContent-Type: application/json",
        ] {
            let (status, _, reply) =
                common::raw_http(t.daemon.addr, &format!("{line}\r\n{host}\r\n{extra}"), body)
                    .await;
            assert_eq!(status, 200, "{line}: {reply}");
            let reply: Value = serde_json::from_str(&reply).unwrap();
            assert_eq!(reply["is_success"], false, "{line}: {reply}");
        }
        // A rebinding page reaching us under its own name.
        let (_, _, reply) = common::raw_http(
            t.daemon.addr,
            &format!("{line}\r\nHost: evil.example\r\nContent-Type: application/json"),
            body,
        )
        .await;
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["is_success"], false, "{line}: {reply}");
    }
    assert_eq!(t.receipt_count().await, 0);
    let s = fb.stats();
    assert_eq!(
        s.counters.shifts_opened + s.counters.payments + s.counters.drawer_opens,
        0,
        "{s:?}"
    );
    t.daemon.stop().await.unwrap();
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_whose_reply_was_lost_is_found_after_fiscald_restarts() {
    use fiscald::clock::SystemClock;
    use fiscald::daemon::Daemon;
    use std::sync::Arc;
    let fb = sim_box().await;
    fb.with_model(|m| m.open_shift("2026-11-29 09:00:00").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let settings = common::uz_settings(dir.path(), &fb.base_url());
    // The box writes the receipt, its reply is lost, then fiscald stops.
    fb.set_knobs(BoxKnobs {
        lose_replies: Some(1),
        ..BoxKnobs::default()
    });
    let first = Daemon::start(&settings, Arc::new(SystemClock))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let r: Value = client
        .post(format!("http://{}/v1/receipts", first.addr))
        .json(&uz_receipt("Non", "5000.00"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    wait_for("the lost reply", || fb.stats().lost_replies == 1).await;
    // Unplug the box so the stopping daemon cannot reconcile yet.
    fb.set_knobs(BoxKnobs {
        down: Some(true),
        ..BoxKnobs::default()
    });
    first.stop().await.unwrap();
    assert_eq!(fb.stats().counters.sales_created, 1);
    // A new fiscald on the same journal, the box back: found, not resent.
    fb.set_knobs(BoxKnobs {
        down: Some(false),
        ..BoxKnobs::default()
    });
    let second = Daemon::start(&settings, Arc::new(SystemClock))
        .await
        .unwrap();
    let url = format!("http://{}/v1/receipts/{id}", second.addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        if r["state"] == "fiscalized" {
            assert_eq!(r["fiscal"]["fiscal_document_number"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = fb.stats();
    assert_eq!(s.counters.sales_created, 1, "{s:?}");
    assert_eq!(s.counters.uuid_repeats, 0, "{s:?}");
    assert!(s.requests.contains_key("Get /order/last"), "{s:?}");
    second.stop().await.unwrap();
    fb.stop().await;
}
