//! Receipt printing: how close does the driver get to the wire's own limit?
//!
//! `cargo bench --bench print`; `FISCALD_BENCH_QUICK=1` for a smoke run.
//!
//! A 20-line fiscal receipt (layout, QR, cut) goes through `Printer::print`
//! (status before, chunked write, status after) to the printer emulator on a
//! pty that consumes bytes no faster than a 115200-baud UART. The floor is the
//! receipt's wire time (bytes × 10 / 115200); the ratio measured/floor says
//! what the status round trips and the plumbing add (target ≤ 1.5).

use chrono::NaiveDate;
use fiscald::devices::escpos::{
    LayoutOptions, Printer, PrinterOptions, ReceiptPrint, receipt, wire_time,
};
use fiscald::devices::port::{LineSettings, SerialPort};
use fiscald::devices::shtrih::{Register, RegisterOptions};
use fiscald::domain::fiscal::FiscalAttributes;
use fiscald::domain::money::line_total;
use fiscald::domain::{
    CalculationMethod, Item, Line, Money, Payment, PaymentKind, PaymentSubject, Quantity, Receipt,
    ReceiptKind, TaxSystem, Vat,
};
use fiscald::sim::devices::printer::{PrinterEmulator, PrinterEmulatorOptions};
use fiscald::sim::devices::register::{RegisterEmulator, RegisterEmulatorOptions};
use std::time::{Duration, Instant};

const BAUD: u32 = 115_200;
const LINES: usize = 20;

fn sample() -> Receipt {
    let names = [
        "Хлеб ржаной",
        "Молоко 3,2% 1 л",
        "Сыр, весовой",
        "Пакет-майка",
    ];
    let items: Vec<Item> = (0..LINES)
        .map(|i| {
            let price = Money(4_550 + 1_000 * i as i64);
            let qty = Quantity(1_000 + 250 * (i as i64 % 3));
            Item {
                receipt_discount: Default::default(),
                line: Line {
                    name: format!("{} №{}", names[i % names.len()], i + 1),
                    quantity: qty,
                    price,
                    // Rates the register's factory tax table has (see shtrih::assumed).
                    vat: if i % 2 == 0 { Vat::Vat10 } else { Vat::Vat22 },
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
                total: line_total(price, qty).expect("small numbers"),
            }
        })
        .collect();
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
        payments: vec![Payment {
            kind: PaymentKind::Cash,
            amount: Money(total.0 + 1_000),
        }],
        total,
        change: Money(1_000),
        cashier: None,
        buyer: None,
        uz: None,
    }
}

fn main() {
    let quick = std::env::var("FISCALD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let n = if quick { 3 } else { 20 };

    let r = sample();
    let attrs = FiscalAttributes {
        fiscal_document_number: 123,
        fiscal_sign: "3344550012".into(),
        fiscal_drive_number: "9999078900004312".into(),
        kkt_reg_id: "0000000001012345".into(),
        shift_number: 12,
        receipt_number_in_shift: 10,
        date_time: NaiveDate::from_ymd_opt(2026, 1, 23)
            .and_then(|d| d.and_hms_opt(14, 5, 0))
            .expect("a valid date"),
        ofd_receipt_url: None,
    };
    let qr = attrs.qr(r.total, r.kind);
    let header = vec!["ООО \"Ромашка\"".to_owned(), "ИНН 7700000000".to_owned()];
    let footer = vec!["Спасибо за покупку!".to_owned()];
    let doc = receipt(
        &ReceiptPrint {
            header: &header,
            number: 1,
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

    let dir = tempfile::tempdir().expect("temp dir");
    let dev = dir.path().join("printer");
    let emu = PrinterEmulator::start(
        &dev,
        PrinterEmulatorOptions {
            pace_baud: Some(BAUD),
            ..Default::default()
        },
    )
    .expect("start the emulator");
    let port = SerialPort::open(&dev, &LineSettings::n81(BAUD)).expect("open the pty");
    let mut printer = Printer::new(Box::new(port), PrinterOptions::default());

    // One status round trip alone: the fixed cost a print pays twice.
    let mut status_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        printer.status().expect("status");
        status_times.push(t.elapsed());
    }
    // Warm-up print, not timed.
    printer.print(&doc).expect("warm-up print");

    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        printer.print(&doc).expect("print");
        times.push(t.elapsed());
    }

    let out = emu.output();
    assert_eq!(out.documents.len(), n + 1, "one cut document per print");
    assert!(
        out.documents
            .iter()
            .all(|d| d.raw == doc && d.qr == [qr.as_str()]),
        "every receipt arrived whole"
    );
    assert_eq!(out.dropped_bytes, 0);
    emu.stop();

    let floor = wire_time(doc.len(), BAUD);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().sum::<Duration>() / n as u32;
    let min = times.iter().min().copied().unwrap_or_default();
    let max = times.iter().max().copied().unwrap_or_default();
    let status_mean = status_times.iter().sum::<Duration>() / status_times.len() as u32;

    println!(
        "print benchmark ({} run): {LINES}-line fiscal receipt with QR, emulator paced at {BAUD} baud",
        if quick { "QUICK" } else { "full" }
    );
    println!("  receipts printed        {n:>10}");
    println!("  bytes per receipt       {:>10}", doc.len());
    println!("  wire-time floor         {:>10.1} ms", ms(floor));
    println!(
        "  status (DLE EOT 1-4)    {:>10.2} ms  (one round of 4 requests, idle)",
        ms(status_mean)
    );
    println!(
        "  measured per receipt    {:>10.1} ms  (min {:.1}, max {:.1}; status before + write + status after)",
        ms(mean),
        ms(min),
        ms(max)
    );
    println!(
        "  ratio measured/floor    {:>10.3}    (target <= 1.5)",
        mean.as_secs_f64() / floor.as_secs_f64()
    );

    register_round_trips(&r, n, dir.path());
}

/// The same receipt registered on the register emulator (paced at the same
/// baud): round trips per receipt for the driver alone, and with the reads
/// the daemon's exactly-once job adds (status before, status to confirm the
/// marker still holds, status after).
fn register_round_trips(r: &Receipt, n: usize, dir: &std::path::Path) {
    let dev = dir.join("register");
    let emu = RegisterEmulator::start(
        &dev,
        RegisterEmulatorOptions {
            baud: Some(BAUD),
            ..Default::default()
        },
    )
    .expect("start the register emulator");
    let port = SerialPort::open(&dev, &LineSettings::n81(BAUD)).expect("open the pty");
    let mut reg = Register::new(Box::new(port), RegisterOptions::default());
    reg.open_shift().expect("open shift");

    let before = reg.round_trips();
    let t = Instant::now();
    for _ in 0..n {
        reg.register_receipt(r).expect("register");
    }
    let driver_time = t.elapsed() / n as u32;
    let driver = (reg.round_trips() - before) as f64 / n as f64;

    let before = reg.round_trips();
    let t = Instant::now();
    for _ in 0..n {
        reg.status().expect("status");
        reg.status().expect("status");
        reg.register_receipt(r).expect("register");
        reg.status().expect("status");
    }
    let job_time = t.elapsed() / n as u32;
    let job = (reg.round_trips() - before) as f64 / n as f64;
    let snapshot = emu.snapshot();
    assert_eq!(
        snapshot.receipts.len(),
        2 * n,
        "every receipt registered once"
    );
    emu.stop();

    println!("register ({LINES} sale lines, emulator paced at {BAUD} baud):");
    println!(
        "  round trips per receipt {driver:>10.1}    ({:.1} ms; open check, {LINES} sales, close, FD + fiscal sign read back)",
        driver_time.as_secs_f64() * 1e3
    );
    println!(
        "  with the job's reads    {job:>10.1}    ({:.1} ms; + status before, recheck, after)",
        job_time.as_secs_f64() * 1e3
    );
}
