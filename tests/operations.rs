//! Corrections and cash in/out end to end: the daemon over real HTTP on port
//! 0, its journal in a temp dir, the register emulator on a pseudo-terminal.
//! Each goes through the API, lands on the register exactly once (also when
//! the cable is pulled mid-operation) and shows in the X/Z report totals.

mod common;

use common::{TestDaemon, emulators, until, wire_emulators};
use fiscald::devices::shtrih::tlv::Tlv;
use fiscald::sim::devices::register::{RegisterFaults, UnplugAt};
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

async fn ready(d: &TestDaemon) {
    until("register ready", Duration::from_secs(10), async || {
        let (_, v) = d.get("/v1/devices").await;
        (v["devices"][0]["state"] == "ready").then_some(())
    })
    .await;
}

async fn cash_done(d: &TestDaemon, id: &Value) -> Value {
    until("cash operation done", LIMIT, async || {
        let (_, v) = d.get(&format!("/v1/cash/{id}")).await;
        (v["state"] != "pending").then_some(v)
    })
    .await
}

async fn fiscalized(d: &TestDaemon, id: &Value) -> Value {
    let id = id.as_str().unwrap();
    until("fiscalized", LIMIT, async || {
        let (_, v) = d.get(&format!("/v1/receipts/{id}")).await;
        (v["state"] == "fiscalized").then_some(v)
    })
    .await
}

fn correction(price: &str) -> Value {
    json!({
        "type": "sale",
        "items": [{"name": "Неучтённая выручка", "quantity": 1, "price": price, "vat": "22"}],
        "payments": [{"kind": "cash", "amount": price}],
        "correction": {"type": "by_order", "basis_date": "2026-03-02", "basis_number": "ИФНС-17"}
    })
}

fn tag(tags: &[Tlv], n: u16) -> &Tlv {
    tags.iter()
        .find(|t| t.tag == n)
        .unwrap_or_else(|| panic!("tag {n} missing in {tags:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_and_cash_in_out_reach_the_register_and_its_x_and_z_totals() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let d = TestDaemon::start_with(|s| wire_emulators(s, &sim)).await;
    ready(&d).await;

    let (s, cin) = d
        .post_to(
            "/v1/cash/in",
            &json!({"amount": "1000.00"}),
            Some("float-1"),
        )
        .await;
    assert_eq!(s, 202, "{cin}");
    assert_eq!(cash_done(&d, &cin["id"]).await["state"], "done");
    // A repeat with the same key is the same operation, not a second one.
    let (s, again) = d
        .post_to(
            "/v1/cash/in",
            &json!({"amount": "1000.00"}),
            Some("float-1"),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["id"], cin["id"]);
    let (s, clash) = d
        .post_to("/v1/cash/in", &json!({"amount": "5.00"}), Some("float-1"))
        .await;
    assert_eq!(s, 409, "{clash}");

    let (s, corr) = d
        .post_to("/v1/corrections", &correction("500.00"), None)
        .await;
    assert_eq!(s, 201, "{corr}");
    assert_eq!(corr["correction"]["type"], "by_order");
    let done = fiscalized(&d, &corr["id"]).await;

    let (s, cout) = d
        .post_to("/v1/cash/out", &json!({"amount": "300.00"}), None)
        .await;
    assert_eq!(s, 202, "{cout}");
    assert_eq!(cash_done(&d, &cout["id"]).await["state"], "done");
    // More out than the drawer holds: the register refuses, the operation is
    // parked for an operator with the register's reason.
    let (_, big) = d
        .post_to("/v1/cash/out", &json!({"amount": "99999.00"}), None)
        .await;
    let parked = cash_done(&d, &big["id"]).await;
    assert_eq!(parked["state"], "parked", "{parked}");
    assert!(
        parked["last_error"].as_str().unwrap().contains("refused"),
        "{parked}"
    );

    // The register's document: a correction receipt (FFD type 31) with 1173/1174.
    let reg = sim.register.snapshot();
    let doc = reg
        .receipts
        .iter()
        .find(|r| r.correction)
        .expect("a correction");
    assert_eq!(
        done["fiscal"]["fiscal_document_number"].as_u64().unwrap(),
        doc.fd as u64
    );
    assert_eq!(doc.total, 50_000);
    assert_eq!(tag(&doc.tags, 1173).value, [1], "by order");
    let basis = tag(&doc.tags, 1174).children();
    assert_eq!(tag(&basis, 1179).text(), "ИФНС-17");
    let date = u32::from_le_bytes(tag(&basis, 1178).value.clone().try_into().unwrap());
    assert_eq!(
        chrono::DateTime::from_timestamp(i64::from(date), 0)
            .unwrap()
            .date_naive()
            .to_string(),
        "2026-03-02"
    );

    // X report, then Z: both total the cash and the correction.
    let (s, v) = d.post_to("/v1/reports/x", &json!({}), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = d.post_to("/v1/shifts/close", &json!({}), None).await;
    assert_eq!(s, 200, "{v}");
    let reg = sim.register.snapshot();
    assert_eq!(reg.reports.len(), 2);
    for (report, z) in reg.reports.iter().zip([false, true]) {
        assert_eq!(report.z, z);
        let t = &report.totals;
        assert_eq!((t.cash_in, t.cash_in_count), (100_000, 1), "{t:?}");
        assert_eq!((t.cash_out, t.cash_out_count), (30_000, 1), "{t:?}");
        assert_eq!(t.corrections[0], 50_000, "{t:?}");
        assert_eq!(t.correction_count, 1);
        assert_eq!(t.receipt_count, 0, "a correction is not a sale");
        assert_eq!(report.cash_in_drawer, 100_000 + 50_000 - 30_000);
    }
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cloud_backend_corrections_and_cash_are_409_and_nothing_is_journaled() {
    let d = TestDaemon::start().await;
    for (path, body) in [
        ("/v1/cash/in", json!({"amount": "10.00"})),
        ("/v1/cash/out", json!({"amount": "10.00"})),
        ("/v1/corrections", correction("10.00")),
    ] {
        let (s, v) = d.post_to(path, &body, None).await;
        assert_eq!(s, 409, "{path}: {v}");
        assert_eq!(v["error"]["code"], "not_supported_by_backend", "{v}");
    }
    assert_eq!(d.receipt_count().await, 0);
    let (s, _) = d.get("/v1/cash/1").await;
    assert_eq!(s, 404);
    d.daemon.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_corrections_and_cash_get_422_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let d = TestDaemon::start_with(|s| wire_emulators(s, &sim)).await;
    let mut bad = correction("10.00");
    bad["correction"] = json!({"type": "sometimes", "basis_date": "yesterday"});
    let (s, v) = d.post_to("/v1/corrections", &bad, None).await;
    assert_eq!(s, 422, "{v}");
    let paths: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/correction/type", "/correction/basis_date"], "{v}");
    let (s, v) = d
        .post_to("/v1/cash/out", &json!({"amount": "-1"}), None)
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["details"][0]["path"], "/amount");
    assert_eq!(d.receipt_count().await, 0);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

/// Pull the cable at `command` (before or after it executes): the cash
/// operation and the correction still land on the register exactly once.
async fn unplugged(command: u16, after_execute: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let d = TestDaemon::start_with(|s| wire_emulators(s, &sim)).await;
    ready(&d).await;
    // Warm up: the shift is opened by the first operation.
    let (_, warm) = d
        .post_to("/v1/cash/in", &json!({"amount": "1.00"}), None)
        .await;
    assert_eq!(cash_done(&d, &warm["id"]).await["state"], "done");

    sim.register.set_faults(RegisterFaults {
        unplug_at: Some(UnplugAt {
            command,
            after_execute,
            replug_after: Some(Duration::from_millis(700)),
        }),
        ..Default::default()
    });
    let (_, cin) = d
        .post_to("/v1/cash/in", &json!({"amount": "250.00"}), None)
        .await;
    let (_, corr) = d
        .post_to("/v1/corrections", &correction("70.00"), None)
        .await;
    assert_eq!(cash_done(&d, &cin["id"]).await["state"], "done");
    let done = fiscalized(&d, &corr["id"]).await;
    let reg = sim.register.snapshot();
    let docs: Vec<_> = reg
        .receipts
        .iter()
        .map(|r| (r.fd, r.correction, r.total))
        .collect();
    eprintln!(
        "register documents {docs:?}; the correction {}",
        done["fiscal"]
    );
    assert_eq!(reg.totals.cash_in_count, 2, "{:?}", reg.totals);
    assert_eq!(reg.totals.cash_in, 100 + 25_000);
    assert_eq!(reg.totals.correction_count, 1, "{:?}", reg.totals);
    let (_, devices) = d.get("/v1/devices").await;
    assert!(
        devices["devices"][0]["hangups"].as_u64().unwrap() >= 1,
        "{devices}"
    );
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cash_in_unplugged_after_the_register_did_it_is_not_done_twice() {
    unplugged(0x50, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cash_in_unplugged_before_the_register_did_it_is_done_once() {
    unplugged(0x50, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_unplugged_after_its_close_is_not_registered_twice() {
    // FF45: the FFD 1.2 close.
    unplugged(0xFF45, true).await;
}
