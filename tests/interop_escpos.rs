//! The ESC/POS printer emulator against an independent implementation
//! (python-escpos over a pty), and fiscald's driver against the emulator.
//!
//! python-escpos is required: CI installs it with
//! `pip install -r tests/interop/requirements.txt`. Without it the interop
//! test fails; it never passes silently.

mod common;

use chrono::NaiveDate;
use fiscald::devices::escpos::{
    DrawerPin, EscPosError, LayoutOptions, Paper, Printer, PrinterOptions, ReceiptPrint, receipt,
};
use fiscald::devices::port::{LineSettings, SerialPort};
use fiscald::domain::fiscal::FiscalAttributes;
use fiscald::domain::money::line_total;
use fiscald::domain::{
    CalculationMethod, Item, Line, Money, Payment, PaymentKind, PaymentSubject, Quantity, Receipt,
    ReceiptKind, TaxSystem, Vat,
};
use fiscald::sim::devices::printer::model::GARBAGE;
use fiscald::sim::devices::printer::{
    Event, PrinterEmulator, PrinterEmulatorOptions, PrinterFaults, PrinterOutput,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/escpos_client.py"
);

/// Runs the client script; kills it after `limit`.
fn run_client(dev: &Path, mode: &str, limit: Duration) -> serde_json::Value {
    let (status, out, err) = common::run_python(
        Path::new(SCRIPT),
        &[dev.as_os_str(), std::ffi::OsStr::new(mode)],
        limit,
    );
    assert!(
        status.success(),
        "escpos_client.py {mode}: {status}\n{out}\n{err}"
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}\n{err}"))
}

/// Waits until the emulator's output satisfies `done`.
fn wait_for(
    emu: &PrinterEmulator,
    what: &str,
    done: impl Fn(&PrinterOutput) -> bool,
) -> PrinterOutput {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = emu.output();
        if done(&out) {
            return out;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {out:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn python_escpos_talks_to_the_emulator() {
    common::require_python("escpos, serial");

    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("printer");
    let emu = PrinterEmulator::start(
        &dev,
        PrinterEmulatorOptions {
            pace_baud: Some(115_200),
            ..Default::default()
        },
    )
    .unwrap();

    let got = run_client(&dev, "full", Duration::from_secs(20));
    assert_eq!(got["online"], true, "{got}");
    assert_eq!(got["paper"], 2, "{got}");

    let out = wait_for(&emu, "the drawer kick", |o| {
        o.events
            .iter()
            .any(|e| matches!(e, Event::DrawerKick { .. }))
    });
    assert_eq!(out.documents.len(), 1, "one cut: {out:#?}");
    let doc = &out.documents[0];
    let text = got["text"].as_str().unwrap();
    assert_eq!(doc.lines[0], text, "CP866 under ESC t 17 decodes back");
    assert_eq!(doc.lines[1], "ИТОГ 150.00");
    assert_eq!(doc.qr, [got["qr"].as_str().unwrap()]);
    assert_eq!(doc.cut, Some(false));
    assert!(
        out.events.contains(&Event::CodeTable(17)),
        "{:?}",
        out.events
    );
    assert!(out.events.contains(&Event::DrawerKick {
        pin: DrawerPin::Pin2,
        on_ms: 100,
        off_ms: 100
    }));
    assert!(emu.drawer_open());
    assert_eq!(out.unknown_commands, 0);
    assert_eq!(out.status_requests, 2);

    emu.set_faults(PrinterFaults {
        paper_out: true,
        ..Default::default()
    });
    let got = run_client(&dev, "status", Duration::from_secs(20));
    assert_eq!(got["online"], false, "{got}");
    assert_eq!(got["paper"], 0, "{got}");
    emu.stop();
}

// ---- fiscald's driver against the emulator ----

fn item(name: &str, qty: i64, price: i64, vat: Vat) -> Item {
    Item {
        receipt_discount: Default::default(),
        line: Line {
            name: name.into(),
            quantity: Quantity(qty),
            price: Money(price),
            vat,
            payment_subject: PaymentSubject::Commodity,
            calculation_method: CalculationMethod::FullPay,
            barcode: None,
            class_code: None,
            package_code: None,
            marking: vec![],
            unit: Default::default(),
            discount: Default::default(),
            agent: None,
        },
        total: line_total(Money(price), Quantity(qty)).unwrap(),
    }
}

fn sample_receipt() -> Receipt {
    let items = vec![
        item("Хлеб ржаной", 2000, 4550, Vat::Vat10),
        item("Сыр, весовой", 350, 89900, Vat::Vat22),
        item("Молоко 3,2% 1 л", 1000, 8990, Vat::Vat10),
        item("Пакет-майка", 1000, 999, Vat::Vat22),
    ];
    let total = Money(items.iter().map(|i| i.total.0).sum());
    Receipt {
        correction: None,
        marking_checks: vec![],
        discount: Default::default(),
        original_date: None,
        kind: ReceiptKind::Sale,
        tax_system: TaxSystem::Common,
        currency: "RUB".into(),
        items,
        payments: vec![
            Payment {
                kind: PaymentKind::Electronic,
                amount: Money(30000),
            },
            Payment {
                kind: PaymentKind::Cash,
                amount: Money(30000),
            },
        ],
        total,
        change: Money(60000 - total.0),
        cashier: None,
        buyer: None,
        uz: None,
    }
}

fn fiscal() -> FiscalAttributes {
    FiscalAttributes {
        fiscal_document_number: 123,
        fiscal_sign: "3344550012".into(),
        fiscal_drive_number: "9999078900004312".into(),
        kkt_reg_id: "0000000001012345".into(),
        shift_number: 12,
        receipt_number_in_shift: 10,
        date_time: NaiveDate::from_ymd_opt(2026, 1, 23)
            .unwrap()
            .and_hms_opt(14, 5, 0)
            .unwrap(),
        ofd_receipt_url: None,
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    dev: PathBuf,
    emu: PrinterEmulator,
}

fn rig(pace_baud: Option<u32>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("printer");
    let emu = PrinterEmulator::start(
        &dev,
        PrinterEmulatorOptions {
            pace_baud,
            ..Default::default()
        },
    )
    .unwrap();
    Rig {
        _dir: dir,
        dev,
        emu,
    }
}

fn open(dev: &Path, opts: PrinterOptions) -> Printer {
    let port = SerialPort::open(dev, &LineSettings::n81(opts.line_baud)).unwrap();
    Printer::new(Box::new(port), opts)
}

#[test]
fn driver_prints_a_fiscal_receipt_the_emulator_decodes() {
    let rig = rig(Some(115_200));
    let mut printer = open(&rig.dev, PrinterOptions::default());
    let r = sample_receipt();
    let attrs = fiscal();
    let qr = attrs.qr(r.total, r.kind);
    let header = vec![
        "ООО \"Ромашка\"".to_owned(),
        "г. Москва, ул. Ленина, 1".to_owned(),
    ];
    let footer = vec!["Спасибо за покупку!".to_owned()];
    let doc = receipt(
        &ReceiptPrint {
            header: &header,
            number: 42,
            receipt: &r,
            local_time: "23.01.2026 14:05".into(),
            fiscal: Some(&attrs),
            qr: &qr,
            qr_caption: "Проверьте чек",
            copy: false,
            slip: false,
            footer: &footer,
        },
        &LayoutOptions::default(),
    );
    let status = printer.print(&doc).unwrap();
    assert_eq!(status.problem(), None);
    assert_eq!(printer.bytes_written(), doc.len() as u64 + 2 * 4 * 3);

    // The status after the print queued behind the document: all of it is in.
    let out = rig.emu.output();
    assert_eq!(out.documents.len(), 1, "{out:#?}");
    let d = &out.documents[0];
    assert_eq!(d.raw, doc, "every byte printed, none dropped");
    assert_eq!(d.qr, [qr.as_str()]);
    assert_eq!(
        d.cut,
        Some(true),
        "the default cut is a partial feed-and-cut"
    );
    let text = d.text();
    for want in [
        "ООО \"Ромашка\"",
        "КАССОВЫЙ ЧЕК",
        "ПРИХОД",
        "ЧЕК № 42",
        "Хлеб ржаной",
        "Сыр, весовой",
        "Молоко 3,2% 1 л",
        "2.000 шт x 45.50 = 91.00",
        "0.350 шт x 899.00 = 314.65",
        "ИТОГ",
        "=505.54",
        "БЕЗНАЛИЧНЫМИ",
        "СДАЧА",
        "94.46",
        "9999078900004312",
        "3344550012",
        "Проверьте чек",
        "Спасибо за покупку!",
    ] {
        assert!(text.contains(want), "{want:?} not printed:\n{text}");
    }
    for line in &d.lines {
        assert!(line.chars().count() <= 48, "too wide: {line:?}");
    }
    assert!(!text.contains("КОПИЯ"));

    // The drawer: the kick opens it, the sensor shows it until closed by hand.
    printer
        .kick_drawer(DrawerPin::Pin2, Duration::from_millis(100))
        .unwrap();
    let st = printer.status().unwrap();
    assert!(st.drawer_pin_high && rig.emu.drawer_open());
    assert!(rig.emu.output().events.contains(&Event::DrawerKick {
        pin: DrawerPin::Pin2,
        on_ms: 100,
        off_ms: 100
    }));
    rig.emu.close_drawer();
    assert!(!printer.status().unwrap().drawer_pin_high);
}

#[test]
fn paper_out_or_cover_open_refuses_and_sends_nothing() {
    let rig = rig(None);
    let mut printer = open(&rig.dev, PrinterOptions::default());
    rig.emu.set_faults(PrinterFaults {
        paper_out: true,
        ..Default::default()
    });
    match printer.print(b"\x1b@hello\n\x1dV\x00") {
        Err(EscPosError::NotReady(s)) => {
            assert_eq!(s.paper, Paper::Out);
            assert!(!s.online);
            assert_eq!(s.problem(), Some("paper out"));
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    rig.emu.set_faults(PrinterFaults {
        cover_open: true,
        ..Default::default()
    });
    let err = printer.print(b"hello\n").unwrap_err();
    assert!(
        matches!(&err, EscPosError::NotReady(s) if s.cover_open),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "printer not ready: cover open");

    let out = rig.emu.output();
    assert_eq!(out.dropped_bytes, 0, "nothing was sent to drop");
    assert!(out.documents.is_empty() && out.current.lines.is_empty());

    // Near end still prints.
    rig.emu.set_faults(PrinterFaults {
        paper_near_end: true,
        ..Default::default()
    });
    let st = printer.print(b"hello\n").unwrap();
    assert_eq!(st.paper, Paper::NearEnd);
    assert_eq!(rig.emu.output().current.lines, ["hello"]);
}

#[test]
fn paper_running_out_mid_print_is_not_ready_after() {
    // 9600 baud: a 3 kB document takes about 3 s on the wire.
    let rig = rig(Some(9_600));
    let mut printer = open(
        &rig.dev,
        PrinterOptions {
            line_baud: 9_600,
            ..Default::default()
        },
    );
    let mut doc = b"\x1b@".to_vec();
    for i in 0..100 {
        doc.extend_from_slice(format!("line {i:03} ..........................\n").as_bytes());
    }
    doc.extend_from_slice(b"\x1dV\x00");
    let emu = &rig.emu;
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(800));
            emu.set_faults(PrinterFaults {
                paper_out: true,
                ..Default::default()
            });
        });
        printer.print(&doc).unwrap_err()
    });
    assert!(
        matches!(&err, EscPosError::NotReady(s) if s.paper == Paper::Out),
        "{err:?}"
    );
    let out = emu.output();
    assert!(out.dropped_bytes > 0, "the rest was dropped");
    assert!(out.documents.is_empty(), "the cut never happened");
    assert!(!out.current.lines.is_empty(), "the start printed");
}

#[test]
fn garbage_before_status_replies_is_skipped() {
    let rig = rig(None);
    let mut printer = open(&rig.dev, PrinterOptions::default());
    rig.emu.set_faults(PrinterFaults {
        garbage_next: 3,
        paper_near_end: true,
        ..Default::default()
    });
    let st = printer.status().unwrap();
    assert_eq!(st.paper, Paper::NearEnd);
    assert!(st.online);
    let sent = rig.emu.output().sent;
    assert_eq!(sent.len(), 3 * GARBAGE.len() + 4, "{sent:02x?}");
    assert!(sent.starts_with(&GARBAGE));
}

#[test]
fn unplug_is_a_hangup_and_replug_recovers() {
    let rig = rig(None);
    let mut printer = open(&rig.dev, PrinterOptions::default());
    assert!(printer.status().is_ok());
    rig.emu.unplug();
    let err = printer.status().unwrap_err();
    assert!(err.is_hangup(), "{err:?}");
    let err = printer.print(b"x\n").unwrap_err();
    assert!(err.is_hangup(), "{err:?}");
    drop(printer);

    rig.emu.replug().unwrap();
    let mut printer = open(&rig.dev, PrinterOptions::default());
    printer.print(b"after replug\n").unwrap();
    assert_eq!(rig.emu.output().current.lines, ["after replug"]);
}

#[test]
fn a_printer_that_stops_answering_times_out() {
    let rig = rig(None);
    let mut printer = open(
        &rig.dev,
        PrinterOptions {
            status_timeout: Duration::from_millis(100),
            ..Default::default()
        },
    );
    // ESC p m=1 pulses pin 5; the drawer hangs on pin 2 and stays shut.
    printer
        .kick_drawer(DrawerPin::Pin5, Duration::from_millis(2))
        .unwrap();
    wait_for(&rig.emu, "the pin 5 kick", |o| {
        o.events.contains(&Event::DrawerKick {
            pin: DrawerPin::Pin5,
            on_ms: 2,
            off_ms: 2,
        })
    });
    assert!(!rig.emu.drawer_open());

    // Half a QR store command (16 data bytes announced, 1 sent): the printer
    // waits for the rest, so the status request after it is taken as data
    // and never answered.
    let started = Instant::now();
    let err = printer
        .print(&[0x1D, 0x28, 0x6B, 0x13, 0x00, 0x31, 0x50, 0x30, b'x'])
        .unwrap_err();
    assert!(matches!(err, EscPosError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
