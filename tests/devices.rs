//! The devices end to end, in process: the daemon over real HTTP on port 0,
//! its journal in a temp dir, and the register and printer emulators on
//! pseudo-terminals — with faults: unplug mid-receipt, paper out, NAK storms,
//! garbage on the line.

mod common;

use common::TestDaemon;
use fiscald::config::{self, Backend, DrawerVia, Settings};
use fiscald::sim::devices::control::{
    PrinterFaultsPatch, RegisterFaultsPatch, SimDevices, SimDevicesOptions,
};
use fiscald::sim::devices::register::UnplugAt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use fiscald::sim::devices::printer::{Event, PrinterOutput};

fn texts(out: &PrinterOutput) -> Vec<String> {
    out.documents.iter().map(|d| d.text()).collect()
}

fn qr_codes(out: &PrinterOutput) -> Vec<String> {
    out.documents.iter().flat_map(|d| d.qr.clone()).collect()
}

fn drawer_kicks(out: &PrinterOutput) -> usize {
    out.events
        .iter()
        .filter(|e| matches!(e, Event::DrawerKick { .. }))
        .count()
}

fn bench(dir: &std::path::Path) -> SimDevices {
    SimDevices::start(
        &dir.join("devices"),
        SimDevicesOptions {
            printer_pace_baud: None,
            seed: 7,
            timezone: None,
        },
    )
    .expect("emulators start")
}

/// Point the daemon at the emulators.
fn wire(s: &mut Settings, sim: &SimDevices, backend: Backend) {
    let demo = config::load_str(config::DEMO_CONFIG).expect("demo config");
    let mut register = demo.devices.register.clone().expect("demo register");
    register.path = sim.register_path();
    register.reply_timeout = Duration::from_millis(1500);
    let mut printer = demo.devices.printer.clone().expect("demo printer");
    printer.path = sim.printer_path();
    s.devices.register = (backend == Backend::Register).then_some(register);
    s.devices.printer = Some(printer);
    s.devices.drawer.via = DrawerVia::Printer;
    s.devices.backend = backend;
    s.devices.status_interval = Duration::from_millis(200);
    s.devices.reconnect_base = Duration::from_millis(50);
    s.devices.reconnect_cap = Duration::from_millis(400);
}

async fn until<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn receipt_when(d: &TestDaemon, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    until(what, Duration::from_secs(30), async || {
        let (_, r) = d.get(&format!("/v1/receipts/{id}")).await;
        ok(&r).then_some(r)
    })
    .await
}

/// One line at the general VAT rate (22 %, tax group 1 on the register), paid in cash.
fn receipt(name: &str, price: &str) -> Value {
    let mut r = common::receipt(name, price);
    r["items"][0]["vat"] = "22".into();
    r
}

fn two_items() -> Value {
    json!({
        "type": "sale",
        "items": [
            {"name": "Молоко 3,2%", "quantity": 2, "price": "89.90", "vat": "10"},
            {"name": "Хлеб бородинский", "quantity": "0.5", "price": "64.00", "vat": "10"}
        ],
        "payments": [{"kind": "cash", "amount": "250.00"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_is_registered_on_the_register_and_printed_with_its_fiscal_qr() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;

    let (status, r) = d.post(&two_items(), None).await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let done = receipt_when(&d, &id, "fiscalized and printed", |r| {
        r["state"] == "fiscalized" && r["print"]["state"] == "done"
    })
    .await;

    // The register holds exactly this receipt, with the right total.
    let reg = sim.register.snapshot();
    assert_eq!(reg.receipts.len(), 1, "{reg:?}");
    assert_eq!(reg.receipts[0].total, 21_180, "179.80 + 32.00");
    assert_eq!(
        done["fiscal"]["fiscal_document_number"].as_u64().unwrap(),
        reg.receipts[0].fd as u64
    );
    assert_eq!(done["sync"]["by"], "register");

    // The printer printed it: items, total, change, and the fiscal QR.
    let out = sim.printer.output();
    let text = texts(&out).join("\n");
    assert!(text.contains("Молоко 3,2%"), "{text}");
    assert!(text.contains("211.80"), "{text}");
    assert!(text.contains("38.20"), "change: {text}");
    let qr = done["fiscal"]["qr"].as_str().unwrap();
    assert!(
        qr_codes(&out).iter().any(|q| q == qr),
        "{:?}",
        qr_codes(&out)
    );
    assert!(qr.contains("s=211.80"), "{qr}");
    // Cash: the drawer on the printer's kick connector opened.
    assert_eq!(drawer_kicks(&out), 1);

    let (_, devices) = d.get("/v1/devices").await;
    assert_eq!(devices["backend"], "register");
    let states: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ready", "ready"], "{devices}");
    // A reprint on request is marked as a copy, and opens no drawer.
    let resp = d
        .client
        .post(format!("{}/v1/receipts/{id}/print", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    receipt_when(&d, &id, "reprinted", |r| {
        r["print"]["state"] == "done" && r["print"]["copies"] == 2
    })
    .await;
    let out = sim.printer.output();
    let texts = texts(&out);
    assert_eq!(texts.len(), 2);
    assert!(!texts[0].contains("КОПИЯ"));
    assert!(texts[1].contains("КОПИЯ"), "{}", texts[1]);
    assert_eq!(drawer_kicks(&out), 1);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cloud_backend_the_printer_prints_the_offline_link_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Cloud)).await;
    let (_, r) = d.post(&receipt("Кофе", "150.00"), None).await;
    let id = r["id"].as_str().unwrap().to_string();
    receipt_when(&d, &id, "printed", |r| r["print"]["state"] == "done").await;
    let out = sim.printer.output();
    assert_eq!(
        qr_codes(&out),
        vec![r["offline_url"].as_str().unwrap().to_string()]
    );
    // Not fiscalized yet (the cloud is off here): it waits for the sync.
    let (_, now) = d.get(&format!("/v1/receipts/{id}")).await;
    assert_eq!(now["state"], "accepted");
    d.daemon.stop().await.unwrap();
    sim.stop();
}

/// Unplug the register at a given command (before or after it executes),
/// plug it back shortly after: the receipt ends on the register exactly once.
async fn unplug_case(command: u16, after_execute: bool) -> (usize, u32) {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;
    // Warm up (shift opened, devices ready) with one receipt.
    let (_, first) = d.post(&receipt("Чай", "50.00"), None).await;
    receipt_when(&d, first["id"].as_str().unwrap(), "first fiscalized", |r| {
        r["state"] == "fiscalized"
    })
    .await;

    sim.register
        .set_faults(fiscald::sim::devices::register::RegisterFaults {
            unplug_at: Some(UnplugAt {
                command,
                after_execute,
                replug_after: Some(Duration::from_millis(700)),
            }),
            ..Default::default()
        });
    let (_, r) = d.post(&two_items(), None).await;
    let id = r["id"].as_str().unwrap().to_string();
    let done = receipt_when(&d, &id, "fiscalized after the unplug", |r| {
        r["state"] == "fiscalized"
    })
    .await;
    let reg = sim.register.snapshot();
    let ours: Vec<_> = reg.receipts.iter().filter(|x| x.total == 21_180).collect();
    assert_eq!(ours.len(), 1, "registered exactly once: {reg:?}");
    assert_eq!(
        done["fiscal"]["fiscal_document_number"].as_u64().unwrap(),
        ours[0].fd as u64
    );
    let (_, devices) = d.get("/v1/devices").await;
    let register = &devices["devices"][0];
    assert!(register["hangups"].as_u64().unwrap() >= 1, "{devices}");
    d.daemon.stop().await.unwrap();
    let n = reg.receipts.len();
    let cancelled = reg.cancelled;
    sim.stop();
    (n, cancelled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_after_the_register_closed_the_check_the_receipt_is_not_registered_twice() {
    // Close check (0xFF45) executed, its reply lost with the cable.
    let (receipts, _) = unplug_case(0xFF45, true).await;
    assert_eq!(receipts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_mid_receipt_the_open_check_is_cancelled_and_the_receipt_registered_once() {
    // Pulled while the sale line (0xFF46) was on the wire: the check is open
    // on the register when it comes back.
    let (receipts, cancelled) = unplug_case(0xFF46, false).await;
    assert_eq!(receipts, 2);
    assert_eq!(cancelled, 1, "the interrupted check was cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_receipt_is_not_overtaken_by_an_identical_one() {
    // Two identical sales; the first is cut off with its check open. The
    // second must not run first (it would cancel the first's check and its
    // document would then pass for the first's).
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;
    let (_, warm) = d.post(&receipt("Чай", "50.00"), None).await;
    receipt_when(&d, warm["id"].as_str().unwrap(), "warm-up", |r| {
        r["state"] == "fiscalized"
    })
    .await;
    sim.register
        .set_faults(fiscald::sim::devices::register::RegisterFaults {
            unplug_at: Some(UnplugAt {
                command: 0xFF45,
                after_execute: false,
                replug_after: Some(Duration::from_millis(150)),
            }),
            ..Default::default()
        });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, r) = d.post(&receipt("Кофе", "150.00"), None).await;
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    let mut fds = Vec::new();
    for id in &ids {
        let r = receipt_when(&d, id, "fiscalized", |r| r["state"] == "fiscalized").await;
        fds.push(r["fiscal"]["fiscal_document_number"].as_u64().unwrap());
    }
    assert_ne!(fds[0], fds[1], "two receipts, two fiscal documents");
    let reg = sim.register.snapshot();
    let coffees: Vec<u64> = reg
        .receipts
        .iter()
        .filter(|x| x.total == 15_000)
        .map(|x| x.fd as u64)
        .collect();
    assert_eq!(coffees.len(), 2, "{reg:?}");
    assert_eq!(reg.cancelled, 1);
    fds.sort();
    assert_eq!(fds, coffees);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_out_holds_the_print_job_until_paper_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Cloud)).await;
    until("printer ready", Duration::from_secs(10), async || {
        let (_, v) = d.get("/v1/devices").await;
        (v["devices"][0]["state"] == "ready").then_some(())
    })
    .await;
    sim.patch_printer(&PrinterFaultsPatch {
        paper_out: Some(true),
        ..Default::default()
    });
    until(
        "printer says paper out",
        Duration::from_secs(10),
        async || {
            let (_, v) = d.get("/v1/devices").await;
            (v["devices"][0]["state"] == "faulted" && v["devices"][0]["reason"] == "paper out")
                .then_some(())
        },
    )
    .await;
    let (_, r) = d.post(&receipt("Сок", "99.00"), None).await;
    let id = r["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, waiting) = d.get(&format!("/v1/receipts/{id}")).await;
    assert_eq!(waiting["print"]["state"], "pending", "{waiting}");
    assert!(sim.printer.output().documents.is_empty());
    let (_, v) = d.get("/v1/devices").await;
    assert_eq!(v["jobs"]["print"]["pending"], 1, "{v}");

    sim.patch_printer(&PrinterFaultsPatch {
        paper_out: Some(false),
        ..Default::default()
    });
    let done = receipt_when(&d, &id, "printed after paper is back", |r| {
        r["print"]["state"] == "done"
    })
    .await;
    assert_eq!(
        done["print"]["copies"], 1,
        "nothing went to a printer without paper"
    );
    let out = sim.printer.output();
    assert_eq!(out.documents.len(), 1);
    assert!(!texts(&out)[0].contains("КОПИЯ"));
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nak_storms_and_garbage_bytes_are_survived() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;
    sim.patch_register(&RegisterFaultsPatch {
        nak_next: Some(6),
        garbage_next: Some(4),
        ..Default::default()
    });
    sim.patch_printer(&PrinterFaultsPatch {
        garbage_next: Some(3),
        ..Default::default()
    });
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, r) = d.post(&receipt(&format!("Товар {i}"), "10.00"), None).await;
        assert_eq!(status, 201);
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        receipt_when(&d, id, "fiscalized and printed", |r| {
            r["state"] == "fiscalized" && r["print"]["state"] == "done"
        })
        .await;
    }
    let reg = sim.register.snapshot();
    assert_eq!(reg.receipts.len(), 3, "{reg:?}");
    assert_eq!(sim.printer.output().documents.len(), 3);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_shift_reports_drawer_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;
    until("register ready", Duration::from_secs(10), async || {
        let (_, v) = d.get("/v1/devices").await;
        (v["devices"][0]["state"] == "ready").then_some(())
    })
    .await;
    let post = async |path: &str| {
        let resp = d
            .client
            .post(format!("{}{path}", d.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let (s, v) = post("/v1/shifts/open").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["register"]["shift"], "open");
    let (s, v) = post("/v1/shifts/open").await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "device_refused");
    let (s, v) = post("/v1/reports/x").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post("/v1/drawer/open").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(drawer_kicks(&sim.printer.output()), 1);
    let (s, v) = post("/v1/shifts/close").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["register"]["shift"], "closed");
    assert_eq!(sim.register.snapshot().z_reports, 1);

    // The register unplugged: a clear 503 naming it.
    sim.register.unplug();
    until("register absent", Duration::from_secs(10), async || {
        let (_, v) = d.get("/v1/devices").await;
        (v["devices"][0]["state"] == "absent").then_some(())
    })
    .await;
    let (s, v) = post("/v1/reports/x").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "device_unavailable");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("register"),
        "{v}"
    );
    // A receipt waiting for the register cannot be printed yet: its print
    // carries the fiscal QR.
    let (_, r) = d.post(&receipt("Сок", "99.00"), None).await;
    let (s, v) = post(&format!("/v1/receipts/{}/print", r["id"].as_str().unwrap())).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "wrong_state");
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_devices_the_device_endpoints_say_so() {
    let d = TestDaemon::start().await;
    let resp = d
        .client
        .post(format!("{}/v1/shifts/open", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "device_not_configured");
    let (s, v) = d.get("/v1/devices").await;
    assert_eq!(s, 200);
    assert_eq!(v["devices"], json!([]));
    d.daemon.stop().await.unwrap();
}
