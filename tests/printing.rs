//! Printing with the cloud backend (issue 9, printing before fiscalization):
//! the printer waits up to `[printer] fiscal_wait_ms` for the fiscalization;
//! fiscalized in time, it prints the fiscal receipt; otherwise a slip with
//! the offline QR that says it is no cash receipt, then (by `after_slip`) the
//! fiscal receipt once fiscalized, or nothing more. Over real HTTP, with the
//! processing simulator and the printer emulator on a pseudo-terminal.

mod common;

use common::{TestDaemon, emulators, until};
use fiscald::config::{self, AfterSlip, Backend};
use fiscald::sim::cloud::{SimCloud, SimConfig};
use fiscald::sim::devices::control::SimDevices;
use fiscald::sim::devices::printer::Event;
use serde_json::Value;
use std::time::Duration;

async fn till(
    sim: &SimDevices,
    processing_delay_ms: u64,
    wait_ms: u64,
    after: AfterSlip,
) -> (TestDaemon, SimCloud) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud = SimCloud::start(
        listener,
        SimConfig {
            processing_delay_ms,
            ..SimConfig::default()
        },
    )
    .await;
    let url = cloud.base_url();
    let d = TestDaemon::start_with(|s| {
        let demo = config::load_str(config::DEMO_CONFIG).expect("demo config");
        let mut printer = demo.devices.printer.clone().expect("demo printer");
        printer.path = sim.printer_path();
        printer.fiscal_wait = Duration::from_millis(wait_ms);
        printer.after_slip = after;
        s.devices.printer = Some(printer);
        s.devices.register = None;
        s.devices.backend = Backend::Cloud;
        s.devices.drawer.via = config::DrawerVia::Printer;
        s.devices.status_interval = Duration::from_millis(200);
        s.cloud.enabled = true;
        s.cloud.base_url = url;
        s.cloud.poll_interval = Duration::from_millis(50);
    })
    .await;
    (d, cloud)
}

async fn settled(d: &TestDaemon, id: &str) -> Value {
    until(
        "fiscalized and printed",
        Duration::from_secs(30),
        async || {
            let (_, v) = d.get(&format!("/v1/receipts/{id}")).await;
            (v["state"] == "fiscalized" && v["print"]["state"] == "done").then_some(v)
        },
    )
    .await
}

fn printed(sim: &SimDevices) -> (Vec<String>, Vec<String>, usize) {
    let out = sim.printer.output();
    let texts = out.documents.iter().map(|d| d.text()).collect();
    let qrs = out.documents.iter().flat_map(|d| d.qr.clone()).collect();
    let kicks = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::DrawerKick { .. }))
        .count();
    (texts, qrs, kicks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fiscalized_within_the_wait_only_the_fiscal_receipt_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let (d, cloud) = till(&sim, 0, 5_000, AfterSlip::FiscalReceipt).await;
    let (s, r) = d.post(&common::receipt("Кофе", "150.00"), None).await;
    assert_eq!(s, 201, "{r}");
    let done = settled(&d, r["id"].as_str().unwrap()).await;
    let (texts, qrs, kicks) = printed(&sim);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("КАССОВЫЙ ЧЕК"), "{}", texts[0]);
    assert!(!texts[0].contains("НЕ ЯВЛЯЕТСЯ"), "{}", texts[0]);
    assert_eq!(
        qrs,
        vec![done["fiscal"]["qr"].as_str().unwrap().to_string()]
    );
    assert_eq!(kicks, 1);
    d.daemon.stop().await.unwrap();
    cloud.stop().await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fiscalized_late_a_slip_comes_first_then_the_fiscal_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let (d, cloud) = till(&sim, 1_500, 200, AfterSlip::FiscalReceipt).await;
    let (_, r) = d.post(&common::receipt("Кофе", "150.00"), None).await;
    let id = r["id"].as_str().unwrap().to_string();
    let slip = until("the slip", Duration::from_secs(30), async || {
        let (texts, _, _) = printed(&sim);
        texts.first().cloned()
    })
    .await;
    assert!(slip.contains("НЕ ЯВЛЯЕТСЯ КАССОВЫМ ЧЕКОМ"), "{slip}");
    assert!(!slip.contains("КАССОВЫЙ ЧЕК"), "{slip}");
    let done = until(
        "the fiscal receipt after the slip",
        Duration::from_secs(30),
        async || {
            let (_, v) = d.get(&format!("/v1/receipts/{id}")).await;
            let (texts, _, _) = printed(&sim);
            (texts.len() == 2 && v["print"]["state"] == "done").then_some(v)
        },
    )
    .await;
    let (texts, qrs, kicks) = printed(&sim);
    assert_eq!(
        qrs,
        vec![
            r["offline_url"].as_str().unwrap().to_string(),
            done["fiscal"]["qr"].as_str().unwrap().to_string()
        ]
    );
    assert!(texts[1].contains("КАССОВЫЙ ЧЕК"), "{}", texts[1]);
    assert!(!texts[1].contains("КОПИЯ"), "the fiscal receipt is no copy");
    assert_eq!(kicks, 1, "the drawer opened once, with the slip");
    d.daemon.stop().await.unwrap();
    cloud.stop().await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_after_slip_nothing_the_slip_is_all() {
    let dir = tempfile::tempdir().unwrap();
    let sim = emulators(dir.path());
    let (d, cloud) = till(&sim, 800, 100, AfterSlip::Nothing).await;
    let (_, r) = d.post(&common::receipt("Кофе", "150.00"), None).await;
    settled(&d, r["id"].as_str().unwrap()).await;
    // Give a wrongly reopened job the time to print.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (texts, _, _) = printed(&sim);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("НЕ ЯВЛЯЕТСЯ КАССОВЫМ ЧЕКОМ"));
    d.daemon.stop().await.unwrap();
    cloud.stop().await;
    sim.stop();
}
