//! Marking codes end to end: the permissive-mode check against the marking
//! simulator (online check and local module) before a sale is journaled, then
//! the code on the register (FF61 → FF69 → item → FF4D 1260 → FF67) or at the
//! cloud processing, with tag 1260 from the service's answer.

mod common;

use common::{
    TestDaemon, assert_1260_on_register, cloud_1260, emulators, marking_settings, marking_sim,
    until, wire_emulators,
};
use fiscald::config::{self, OnUnreachable};
use fiscald::sim::cloud::{SimCloud, SimConfig};
use fiscald::sim::marking::MarkingKnobs;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const GOOD: &str = common::MARKED_CODE;
const SOLD: &str =
    "0104601234567893215Zzz99\u{1d}91EE06\u{1d}92c2lnbmF0dXJlLW9mLXRoZS1jb2RlLTQ0LWNoYXJzLi5=";
/// The FN finds this one's signature wrong (the emulator's rule: AI 92 starts with BAD).
const FORGED: &str =
    "0104601234567893215Qqq11\u{1d}91EE06\u{1d}92BADnbmF0dXJlLW9mLXRoZS1jb2RlLTQ0LWNoYXJzLi4=";

fn sale(code: &str) -> Value {
    json!({
        "type": "sale",
        "items": [
            {"name": "Кеды", "quantity": 1, "price": "3500.00", "vat": "22", "marking": [code]},
            {"name": "Пакет", "quantity": 1, "price": "5.00", "vat": "22"}
        ],
        "payments": [{"kind": "cash", "amount": "3505.00"}]
    })
}

async fn fiscalized(d: &TestDaemon, id: &str) -> Value {
    until("fiscalized", Duration::from_secs(30), async || {
        let (_, v) = d.get(&format!("/v1/receipts/{id}")).await;
        (v["state"] == "fiscalized").then_some(v)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_register_a_refused_code_blocks_the_sale_and_an_accepted_one_is_registered_with_1260()
 {
    let dir = tempfile::tempdir().unwrap();
    let devices = emulators(dir.path());
    let marking = marking_sim().await;
    marking
        .set_knobs(MarkingKnobs {
            refuse: Some(BTreeMap::from([(SOLD.to_string(), "sold".to_string())])),
            ..Default::default()
        })
        .unwrap();
    let url = marking.base_url();
    let d = TestDaemon::start_with(|s| {
        wire_emulators(s, &devices);
        s.marking = Some(marking_settings(&url, OnUnreachable::SellUnchecked));
    })
    .await;

    // Refused: 422 naming the code, nothing journaled, nothing on the register.
    let (s, v) = d.post(&sale(SOLD), Some("sale-1")).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "marking_refused");
    assert_eq!(v["error"]["details"][0]["path"], "/items/0/marking/0");
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already sold"),
        "{v}"
    );
    assert_eq!(d.receipt_count().await, 0);

    // Accepted: registered with its 1260 and the code bound after FF61/FF69.
    let (s, r) = d.post(&sale(GOOD), Some("sale-2")).await;
    assert_eq!(s, 201, "{r}");
    let check = &r["marking_checks"][0];
    assert_eq!(check["checked_by"], "online");
    let value = check["requisite"]["value"].as_str().unwrap().to_string();
    assert!(
        value.starts_with("UUID=") && value.contains("&Time="),
        "{value}"
    );
    // A repeat of the same key is answered from the journal: no second check.
    let asked = marking.stats().online_checks;
    let (s, again) = d.post(&sale(GOOD), Some("sale-2")).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(marking.stats().online_checks, asked);

    fiscalized(&d, r["id"].as_str().unwrap()).await;
    let reg = devices.register.snapshot();
    assert_eq!(reg.receipts.len(), 1, "only the accepted sale: {reg:?}");
    let line = &reg.receipts[0].lines[0];
    assert_eq!(line.marking.len(), 1);
    assert_eq!(line.marking[0].code, GOOD.as_bytes());
    assert!(line.marking[0].accepted, "FF69 accepted it before FF67");
    assert_eq!(
        line.marking[0].result_2106, 0b11,
        "checked by the FN, positive"
    );
    assert_1260_on_register(&line.tags, &value);
    assert!(reg.receipts[0].lines[1].marking.is_empty());
    assert!(reg.receipts[0].lines[1].tag(1260).is_none());

    d.daemon.stop().await.unwrap();
    marking.stop().await;
    devices.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_the_fiscal_drive_finds_forged_is_refused_on_the_register_and_nothing_registered() {
    let dir = tempfile::tempdir().unwrap();
    let devices = emulators(dir.path());
    let marking = marking_sim().await;
    let url = marking.base_url();
    let d = TestDaemon::start_with(|s| {
        wire_emulators(s, &devices);
        s.marking = Some(marking_settings(&url, OnUnreachable::SellUnchecked));
    })
    .await;
    let (s, r) = d.post(&sale(FORGED), None).await;
    assert_eq!(s, 201, "the service accepted it: {r}");
    let id = r["id"].as_str().unwrap();
    let parked = until("parked", Duration::from_secs(30), async || {
        let (_, v) = d.get(&format!("/v1/receipts/{id}")).await;
        (v["state"] == "rejected").then_some(v)
    })
    .await;
    assert!(
        parked["sync"]["last_error"]
            .as_str()
            .unwrap()
            .contains("marking code"),
        "{parked}"
    );
    let reg = devices.register.snapshot();
    assert!(reg.receipts.is_empty(), "{reg:?}");
    assert_eq!(reg.cancelled, 1);
    d.daemon.stop().await.unwrap();
    marking.stop().await;
    devices.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cloud_an_accepted_code_carries_its_1260() {
    let cloud_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud = SimCloud::start(cloud_listener, SimConfig::default()).await;
    let marking = marking_sim().await;
    // The online check is down: the local module answers.
    marking
        .set_knobs(MarkingKnobs {
            online_down: Some(true),
            ..Default::default()
        })
        .unwrap();
    let (cloud_url, url) = (cloud.base_url(), marking.base_url());
    let d = TestDaemon::start_with(|s| {
        s.cloud.enabled = true;
        s.cloud.base_url = cloud_url;
        s.cloud.poll_interval = Duration::from_millis(50);
        s.marking = Some(marking_settings(&url, OnUnreachable::SellUnchecked));
    })
    .await;
    let (s, r) = d.post(&sale(GOOD), None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["marking_checks"][0]["checked_by"], "local_module");
    let value = r["marking_checks"][0]["requisite"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    fiscalized(&d, r["id"].as_str().unwrap()).await;
    let key = r["idempotency_key"].as_str().unwrap().to_string();
    let doc = cloud
        .with_model(|m| m.by_key(&key, chrono::Utc::now()))
        .expect("the processing has the receipt");
    let item = &doc.receipt.unwrap()["items"][0];
    assert_eq!(item["markingCodes"][0], GOOD);
    assert_eq!(item["sectoralItemProps"][0], cloud_1260(&value));
    assert!(
        doc_has_no_props(&cloud, &key),
        "the unmarked line has no 1260"
    );
    let stats = marking.stats();
    assert_eq!((stats.online_checks, stats.local_checks), (0, 1));
    d.daemon.stop().await.unwrap();
    marking.stop().await;
    cloud.stop().await;
}

fn doc_has_no_props(cloud: &SimCloud, key: &str) -> bool {
    let doc = cloud
        .with_model(|m| m.by_key(key, chrono::Utc::now()))
        .unwrap();
    doc.receipt.unwrap()["items"][1]
        .get("sectoralItemProps")
        .is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_service_answering_the_sale_goes_unchecked_or_is_refused_as_configured() {
    let marking = marking_sim().await;
    marking
        .set_knobs(MarkingKnobs {
            unreachable: Some(true),
            ..Default::default()
        })
        .unwrap();
    let url = marking.base_url();
    // Default: sold without the check and without 1260, and the receipt says so.
    let d = TestDaemon::start_with(|s| {
        s.marking = Some(marking_settings(&url, OnUnreachable::SellUnchecked));
    })
    .await;
    let (s, r) = d.post(&sale(GOOD), None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["marking_checks"][0]["checked_by"], "unreachable");
    assert!(r["marking_checks"][0].get("requisite").is_none(), "{r}");
    d.daemon.stop().await.unwrap();

    // Configured to refuse: 503 marking_unavailable, nothing journaled.
    let d = TestDaemon::start_with(|s| {
        s.marking = Some(marking_settings(&url, OnUnreachable::Refuse));
    })
    .await;
    let (s, v) = d.post(&sale(GOOD), None).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "marking_unavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("local module"),
        "{v}"
    );
    assert_eq!(d.receipt_count().await, 0);
    // A sale without marked items never asks.
    let (s, _) = d.post(&common::receipt("Хлеб", "50.00"), None).await;
    assert_eq!(s, 201);
    d.daemon.stop().await.unwrap();
    marking.stop().await;
}

#[test]
fn the_marking_config_needs_a_service_and_http_urls() {
    let text = format!(
        "{}\n[marking]\nenabled = true\nlocal_url = \"ftp://lm\"\n",
        config::DEMO_CONFIG
    );
    let e = config::load_str(&text).unwrap_err();
    assert!(
        e.iter()
            .any(|p| p.key == "marking.local_url" && p.line.is_some()),
        "{e:?}"
    );
    let text = format!("{}\n[marking]\nenabled = true\n", config::DEMO_CONFIG);
    let e = config::load_str(&text).unwrap_err();
    assert!(e.iter().any(|p| p.key == "marking.enabled"), "{e:?}");
    let text = format!(
        "{}\n[marking]\nenabled = true\nlocal_url = \"http://192.168.1.20:5995\"\non_unreachable = \"refuse\"\n",
        config::DEMO_CONFIG
    );
    let s = config::load_str(&text).unwrap();
    let m = s.marking.unwrap();
    assert_eq!(m.on_unreachable, OnUnreachable::Refuse);
    assert!(m.online.is_none());
}
