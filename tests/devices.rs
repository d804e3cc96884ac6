//! The devices end to end, in process: the daemon over real HTTP on port 0,
//! its journal in a temp dir, and the register and printer emulators on
//! pseudo-terminals — with faults: unplug mid-receipt, paper out, NAK storms,
//! garbage on the line.

mod common;

use common::TestDaemon;
use fiscald::config::{self, Backend, DrawerVia, OnUnreachable, Settings};
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
async fn with_the_cloud_backend_unfiscalized_after_the_wait_the_printer_prints_a_slip_with_the_offline_link()
 {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| {
        wire(s, &sim, Backend::Cloud);
        s.devices.printer.as_mut().unwrap().fiscal_wait = Duration::from_millis(300);
    })
    .await;
    let (_, r) = d.post(&receipt("Кофе", "150.00"), None).await;
    let id = r["id"].as_str().unwrap().to_string();
    receipt_when(&d, &id, "printed", |r| r["print"]["state"] == "done").await;
    let out = sim.printer.output();
    assert_eq!(
        qr_codes(&out),
        vec![r["offline_url"].as_str().unwrap().to_string()]
    );
    let texts = texts(&out);
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("НЕ ЯВЛЯЕТСЯ КАССОВЫМ ЧЕКОМ"),
        "a slip, not a fiscal receipt: {}",
        texts[0]
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
    // The pulse is on the wire when the call returns; the emulator reads it
    // from the pty on its own thread.
    until("the drawer pulse", Duration::from_secs(5), async || {
        (drawer_kicks(&sim.printer.output()) == 1).then_some(())
    })
    .await;
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

// ------------------------------------------------- FFD 1.2 data, 2026

fn minor(v: &Value) -> u64 {
    fiscald::domain::Money::parse(v.as_str().unwrap())
        .unwrap()
        .0 as u64
}

/// The printed text shows every piece of the 2026 fixture, its marked line
/// included.
fn assert_printed_fiscal_2026(text: &str, fixture: &common::Fiscal2026) {
    use common::Fiscal2026 as F;
    assert!(
        fixture.marked.is_some(),
        "the full fixture has a marked line"
    );
    let marked_line = format!("1.000 шт x {0} = {0}", F::MARKED_PRICE);
    // Its codes were checked and confirmed before the sale: "[М+]".
    let signed = format!("[М+] {}", F::MARKED_NAME);
    for want in [
        signed.as_str(),
        &marked_line,
        "Молоко 3,2% 1 л",
        "2.000 шт x 89.90 = 179.80",
        "0.350 кг x 899.00 = 314.65",
        "СКИДКА",
        "СКИДКА НА ЧЕК",
        "-10.00",
        "ПРИЗНАК АГЕНТА: КОМИССИОНЕР",
        F::SUPPLIER,
        F::SUPPLIER_INN,
        F::SUPPLIER_PHONE,
        "СУММА НДС 22%",
        "СУММА НДС 10%",
        fixture.total(),
        "ПРЕДОПЛАТА (АВАНС)",
        F::PREPAID,
        "НАЛИЧНЫМИ",
        fixture.change(),
        F::CASHIER,
        F::CASHIER_INN,
        F::BUYER_EMAIL,
        F::BUYER_NAME,
        F::BUYER_INN,
        "СНО",
        "ОСН",
    ] {
        assert!(text.contains(want), "{want:?} missing in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_receipt_reaches_the_register_with_every_ffd_tag_and_is_printed() {
    use common::Fiscal2026 as F;
    use fiscald::devices::shtrih::tlv::tag;
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let marking = common::marking_sim().await;
    let url = marking.base_url();
    let d = TestDaemon::start_with(|s| {
        wire(s, &sim, Backend::Register);
        s.marking = Some(common::marking_settings(&url, OnUnreachable::SellUnchecked));
    })
    .await;

    let fixture = F::with_marked();
    let (requisite, done) = post_2026_pair(&d, &fixture).await;
    let reg = sim.register.snapshot();
    assert_eq!(reg.receipts.len(), 2, "{reg:?}");

    // The sale: receipt-level tags (FF0C) with their values.
    let sale = &reg.receipts[0];
    let text = |t: Option<fiscald::devices::shtrih::tlv::Tlv>| t.expect("tag present").text();
    assert_eq!(text(sale.tag(tag::BUYER_CONTACT)), F::BUYER_EMAIL);
    assert_eq!(text(sale.tag(tag::CASHIER)), F::CASHIER);
    assert_eq!(text(sale.tag(tag::CASHIER_INN)), F::CASHIER_INN);
    assert_eq!(text(sale.tag(tag::BUYER_NAME)), F::BUYER_NAME);
    assert_eq!(text(sale.tag(tag::BUYER_INN)), F::BUYER_INN);
    assert_eq!(
        sale.tag(tag::AGENT_SIGN).unwrap().value,
        [1 << 5],
        "commission agent"
    );
    assert_eq!(sale.tax_system, 0x01, "ОСН");
    // FF45: cash in type 1, the prepayment offset in type 14.
    let mut payments = [0u64; 16];
    payments[0] = minor(&json!(F::CASH));
    payments[13] = minor(&json!(F::PREPAID));
    assert_eq!(sale.payments, payments);
    assert_eq!(sale.change, minor(&json!(fixture.change())));
    assert_eq!(sale.total, minor(&json!(fixture.total())));

    // Lines (FF46 + FF4D): tax code per rate, 1212, 1214, 2108, agent data,
    // and the amounts after both discounts.
    let api_items = done[0]["items"].as_array().unwrap();
    assert_eq!(sale.lines.len(), 4);
    for (line, item) in sale.lines.iter().zip(api_items) {
        assert_eq!(line.sum, minor(&item["total"]), "{line:?} vs {item}");
        assert_eq!(line.calculation_method, 4, "1214 full payment");
    }
    let codes: Vec<u8> = sale.lines.iter().map(|l| l.tax_code).collect();
    assert_eq!(codes, [0xCB, 0x02, 0xCB, 0xCB], "22 %, 10 %, 22 %, 22 %");
    let subjects: Vec<u8> = sale.lines.iter().map(|l| l.payment_subject).collect();
    assert_eq!(
        subjects,
        [1, 1, 4, 33],
        "1212: commodity, commodity, service, a marked good with its code"
    );
    let units: Vec<Option<Vec<u8>>> = sale
        .lines
        .iter()
        .map(|l| l.tag(tag::UNIT).map(|t| t.value))
        .collect();
    assert_eq!(
        units,
        [None, Some(vec![11]), None, None],
        "2108: kg sent; pieces are the register's default"
    );
    let agent = &sale.lines[2];
    assert_eq!(agent.tag(tag::ITEM_AGENT_SIGN).unwrap().value, [1 << 5]);
    assert_eq!(text(agent.tag(tag::SUPPLIER_NAME)), F::SUPPLIER);
    assert_eq!(text(agent.tag(tag::SUPPLIER_PHONE)), F::SUPPLIER_PHONE);
    assert_eq!(text(agent.tag(tag::SUPPLIER_INN)), F::SUPPLIER_INN);
    assert!(sale.lines[0].tag(tag::ITEM_AGENT_SIGN).is_none());

    // The marked line: its code checked (FF61), accepted (FF69) and bound
    // (FF67), with the service's answer in 1260 (FF4D); no other line has any.
    let marked = &sale.lines[3];
    assert_eq!(marked.marking.len(), 1, "{marked:?}");
    assert_eq!(marked.marking[0].code, common::MARKED_CODE.as_bytes());
    assert!(marked.marking[0].accepted, "FF69 accepted it before FF67");
    assert_eq!(
        marked.marking[0].result_2106, 0b11,
        "checked by the FN, positive"
    );
    common::assert_1260_on_register(&marked.tags, &requisite);
    for line in &sale.lines[..3] {
        assert!(
            line.marking.is_empty() && line.tag(1260).is_none(),
            "{line:?}"
        );
    }

    // The advance at 22/122: tax code 0xCC, 1214 = 3 (аванс), 1212 = 10 (платёж).
    let adv = &reg.receipts[1];
    assert_eq!(
        (
            adv.lines[0].tax_code,
            adv.lines[0].calculation_method,
            adv.lines[0].payment_subject
        ),
        (0xCC, 3, 10)
    );
    assert_eq!(adv.payments[1], 100_000, "electronic");

    // The registration number is the register's RNM (table 18), not the serial.
    assert_eq!(done[0]["fiscal"]["kkt_reg_id"], reg.rnm.as_str());

    // On paper.
    let out = sim.printer.output();
    let texts = texts(&out);
    assert_eq!(texts.len(), 2);
    assert_printed_fiscal_2026(&texts[0], &fixture);
    assert!(texts[0].contains(&reg.rnm), "РН ККТ printed: {}", texts[0]);
    assert!(texts[1].contains("АВАНС"), "{}", texts[1]);
    assert!(texts[1].contains("НДС 22/122"), "{}", texts[1]);
    d.daemon.stop().await.unwrap();
    marking.stop().await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_return_of_a_2025_sale_is_registered_with_the_20_percent_code() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;
    let (status, r) = d.post(&common::return_of_2025_sale_at_20(), None).await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    receipt_when(&d, &id, "fiscalized and printed", |r| {
        r["state"] == "fiscalized" && r["print"]["state"] == "done"
    })
    .await;
    let reg = sim.register.snapshot();
    assert_eq!(reg.receipts.len(), 1);
    let ret = &reg.receipts[0];
    assert_eq!(ret.operation, 2, "возврат прихода");
    assert_eq!(ret.lines[0].tax_code, 0x01, "the 20 % code");
    let text = texts(&sim.printer.output()).join("\n");
    assert!(text.contains("ВОЗВРАТ ПО ОПЕРАЦИИ ОТ"), "{text}");
    assert!(text.contains("20.12.2025"), "{text}");
    assert!(text.contains("НДС 20%"), "{text}");
    d.daemon.stop().await.unwrap();
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_receipt_reaches_the_cloud_with_every_field_and_is_printed() {
    use common::Fiscal2026 as F;
    use fiscald::sim::cloud::{SimCloud, SimConfig};
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cloud = SimCloud::start(listener, SimConfig::default()).await;
    let marking = common::marking_sim().await;
    let url = marking.base_url();
    let d = TestDaemon::start_with(|s| {
        wire(s, &sim, Backend::Cloud);
        s.cloud.enabled = true;
        s.cloud.base_url = cloud.base_url();
        s.cloud.poll_interval = Duration::from_millis(50);
        s.cloud.probe_interval = Duration::from_millis(100);
        s.marking = Some(common::marking_settings(&url, OnUnreachable::SellUnchecked));
    })
    .await;
    let fixture = F::with_marked();
    let (requisite, done) = post_2026_pair(&d, &fixture).await;
    let bodies = cloud.with_model(|m| m.bodies());
    assert_eq!(bodies.len(), 2);
    // The sync may send both at once: tell them apart by content.
    let (sale, adv): (Vec<_>, Vec<_>) = bodies
        .iter()
        .map(|b| serde_json::to_value(b).unwrap())
        .partition(|b| b["items"].as_array().unwrap().len() == 4);
    let (sale, adv) = (&sale[0], &adv[0]);
    let client = &sale["client"];
    assert_eq!(
        (&client["address"], &client["name"], &client["inn"]),
        (
            &json!(F::BUYER_EMAIL),
            &json!(F::BUYER_NAME),
            &json!(F::BUYER_INN)
        )
    );
    assert_eq!(
        sale["cashier"],
        json!({"name": F::CASHIER, "inn": F::CASHIER_INN})
    );
    assert_eq!(sale["agentSign"], 1 << 5);
    assert_eq!(sale["taxSystem"], "COMMON");
    assert_eq!(sale["discount"].to_string(), "10.00");
    assert_eq!(sale["total"].to_string(), fixture.total());
    assert_eq!(sale["payments"]["PREPAID"].to_string(), F::PREPAID);
    assert_eq!(sale["payments"]["CASH"].to_string(), F::CASH);
    let items = sale["items"].as_array().unwrap();
    let vats: Vec<&str> = items.iter().map(|i| i["vat"].as_str().unwrap()).collect();
    assert_eq!(vats, ["VAT_22", "VAT_10", "VAT_22", "VAT_22"]);
    assert_eq!(items[1]["measure"], 11, "2108 kg");
    assert!(items[0].get("measure").is_none(), "pieces are the default");
    assert_eq!(items[2]["paymentSubject"], "SERVICE");
    assert_eq!(
        items[2]["agent"],
        json!({"type": "COMMISSION_AGENT", "supplierName": F::SUPPLIER,
               "supplierInn": F::SUPPLIER_INN, "supplierPhones": [F::SUPPLIER_PHONE]})
    );
    // The marked line carries its code and the service's 1260; no other does.
    assert_eq!(items[3]["name"], F::MARKED_NAME);
    assert_eq!(items[3]["markingCodes"], json!([common::MARKED_CODE]));
    assert_eq!(items[3]["paymentSubject"], "COMMODITY_MARKED", "1212 = 33");
    assert_eq!(
        items[3]["sectoralItemProps"],
        json!([common::cloud_1260(&requisite)])
    );
    for item in &items[..3] {
        assert!(item.get("markingCodes").is_none(), "{item}");
        assert!(item.get("sectoralItemProps").is_none(), "{item}");
    }
    let api_items = done[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), api_items.len());
    for (wire_item, item) in items.iter().zip(api_items) {
        assert_eq!(
            wire_item["total"].to_string(),
            item["total"].as_str().unwrap()
        );
    }
    // Line 0: its own 9.80 plus its share of the receipt's 10.00.
    let share = minor(&api_items[0]["receipt_discount"]);
    assert_eq!(minor(&json!(items[0]["discount"].to_string())), 980 + share);
    assert_eq!(
        (
            &adv["items"][0]["vat"],
            &adv["items"][0]["calculationMethod"],
            &adv["items"][0]["paymentSubject"]
        ),
        (&json!("VAT_122"), &json!("ADVANCE"), &json!("PAYMENT"))
    );

    // Printed once fiscalized (within the printer's fiscal wait), showing the same data.
    let out = sim.printer.output();
    let texts = texts(&out);
    assert_eq!(texts.len(), 2);
    assert_printed_fiscal_2026(&texts[0], &fixture);
    d.daemon.stop().await.unwrap();
    marking.stop().await;
    cloud.stop().await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_the_register_cannot_express_is_refused_before_it_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bench(dir.path());
    let d = TestDaemon::start_with(|s| wire(s, &sim, Backend::Register)).await;
    // 5 × 2.01 − 0.02 = 10.03: no whole-kopeck unit price gives it within
    // the 1 kopeck FF46 allows (5 × 2.01 = 10.05, 5 × 2.00 = 10.00).
    let odd = json!({
        "type": "sale",
        "items": [{"name": "Карандаш", "quantity": 5, "price": "2.01", "discount": "0.02", "vat": "22"}],
        "payments": [{"kind": "cash", "amount": "10.03"}]
    });
    let (status, r) = d.post(&odd, None).await;
    assert_eq!(status, 422, "{r}");
    let detail = &r["error"]["details"][0];
    assert_eq!(detail["path"], "/items/0/discount", "{r}");
    assert_eq!(detail["rule"], "register_unit_price", "{r}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("split the line"),
        "{r}"
    );
    assert_eq!(d.receipt_count().await, 0, "nothing written");
    let (status, r) = d.post(&receipt("Чай", "50.00"), None).await;
    assert_eq!(status, 201, "{r}");
    let next_id = r["id"].as_str().unwrap().to_string();
    receipt_when(&d, &next_id, "the next one fiscalized", |r| {
        r["state"] == "fiscalized"
    })
    .await;
    assert_eq!(sim.register.snapshot().receipts.len(), 1);
    d.daemon.stop().await.unwrap();
    sim.stop();
}

/// Post the 2026 receipt (with its marked line) and the advance at 22/122;
/// the marked line must have been checked online before it was journaled.
/// The 1260 requisite the service gave, and both receipts once fiscalized
/// and printed.
async fn post_2026_pair(d: &TestDaemon, fixture: &common::Fiscal2026) -> (String, Vec<Value>) {
    let mut ids = Vec::new();
    let mut accepted = Vec::new();
    for body in [fixture.json(), common::advance_22_122()] {
        let (status, r) = d.post(&body, None).await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_str().unwrap().to_string());
        accepted.push(r);
    }
    let check = &accepted[0]["marking_checks"][0];
    assert_eq!(check["checked_by"], "online", "{check}");
    let requisite = check["requisite"]["value"].as_str().unwrap().to_string();
    let mut done = Vec::new();
    for id in &ids {
        done.push(
            receipt_when(d, id, "fiscalized and printed", |r| {
                r["state"] == "fiscalized" && r["print"]["state"] == "done"
            })
            .await,
        );
    }
    (requisite, done)
}
