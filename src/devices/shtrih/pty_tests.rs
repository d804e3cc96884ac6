//! The driver against the emulator over a real pty: a receipt end to end,
//! and every link fault the emulator can inject.

use super::command::{CheckType, Command, Reply};
use super::frame::{ACK, ENQ, FrameParser, NAK, Parsed};
use super::{Register, RegisterOptions, ShiftState, ShtrihError};
use crate::devices::port::{LineSettings, Port, SerialPort};
use crate::domain::money::{Money, Quantity, line_total};
use crate::domain::receipt::{
    CalculationMethod, Item, Line, Payment, PaymentKind, PaymentSubject, Receipt, ReceiptKind,
    TaxSystem, Vat,
};
use crate::sim::devices::register::{
    RegisterEmulator, RegisterEmulatorOptions, RegisterFaults, UnplugAt,
};
use std::path::Path;
use std::time::{Duration, Instant};

struct Bench {
    _dir: tempfile::TempDir,
    emu: RegisterEmulator,
    reg: Register,
}

fn opts() -> RegisterOptions {
    RegisterOptions {
        reply_timeout: Duration::from_millis(500),
        byte_timeout: Duration::from_millis(100),
        ..RegisterOptions::default()
    }
}

fn open(path: &Path) -> Box<dyn Port> {
    Box::new(SerialPort::open(path, &LineSettings::n81(115200)).unwrap())
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyShtrih");
    let emu = RegisterEmulator::start(&link, RegisterEmulatorOptions::default()).unwrap();
    let reg = Register::new(open(&link), opts());
    Bench {
        _dir: dir,
        emu,
        reg,
    }
}

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

/// 2 × 150.00 + 0.5 × 99.99 (= 50.00, rounded) = 350.00, paid 100 card + 300 cash.
fn receipt() -> Receipt {
    let items = vec![
        item("Хлеб ржаной", 2000, 15000, Vat::Vat22),
        item("Сыр весовой", 500, 9999, Vat::Vat10),
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
                amount: Money(10000),
            },
            Payment {
                kind: PaymentKind::Cash,
                amount: Money(30000),
            },
        ],
        total,
        change: Money(40000 - total.0),
        cashier: None,
        buyer: None,
        uz: None,
    }
}

#[test]
fn a_receipt_is_registered_and_its_fd_and_fiscal_sign_read_back() {
    let mut b = bench();
    let dt = b.reg.device_type().unwrap();
    assert!(dt.name.contains("М-01Ф"), "{}", dt.name);
    let st = b.reg.status().unwrap();
    assert_eq!(
        (st.shift, st.last_fd, st.document_open),
        (ShiftState::Closed, 0, false)
    );
    assert_eq!(st.fn_number.len(), 16);

    b.reg.open_shift().unwrap();
    let r = receipt();
    assert_eq!(r.total, Money(35000));
    let closed = b.reg.register_receipt(&r).unwrap();
    let snap = b.emu.snapshot();
    assert_eq!(snap.receipts.len(), 1);
    let on_device = &snap.receipts[0];
    assert_eq!(closed.fd, 2);
    assert_eq!(closed.fd, on_device.fd);
    assert_eq!(closed.fiscal_sign, on_device.fiscal_sign);
    assert_eq!(closed.total, Money(35000));
    assert_eq!(closed.operation, 1);
    assert_eq!(on_device.payments[..4], [30000, 10000, 0, 0]);
    assert_eq!(on_device.change, 5000);
    assert_eq!(
        on_device.lines[1].tax_code, 0x02,
        "10 %: FF46 tax code 0x02"
    );

    let st = b.reg.status().unwrap();
    assert_eq!(
        (st.shift, st.last_fd, st.shift_number),
        (ShiftState::Open, 2, 1)
    );
    let attrs = closed.fiscal_attributes(&st);
    assert_eq!(attrs.fiscal_document_number, 2);
    assert_eq!(attrs.fiscal_sign, on_device.fiscal_sign.to_string());
    assert_eq!(attrs.fiscal_drive_number, snap.fn_number);
    assert_eq!(attrs.receipt_number_in_shift, 1);
    assert_eq!(attrs.shift_number, 1);
    assert_eq!(b.reg.last_receipt().unwrap(), Some(closed.clone()));
    assert_eq!(b.reg.find_document(1).unwrap().unwrap().doc_type, 2);
    assert!(b.reg.find_document(99).unwrap().is_none());

    // The rest of the API does what it says on the device.
    b.reg.cash_in(Money(1000)).unwrap();
    b.reg.cash_out(Money(500)).unwrap();
    b.reg.print_line("Спасибо за покупку!").unwrap();
    b.reg.cut(true).unwrap();
    b.reg.open_drawer(0).unwrap();
    b.reg.x_report().unwrap();
    let e = b.reg.cash_out(Money(1_000_000)).unwrap_err();
    assert_eq!(e.device_code(), Some(0x46), "{e}");
    b.reg.z_report().unwrap();
    let snap = b.emu.snapshot();
    assert_eq!(
        (snap.cash_in_drawer, snap.x_reports, snap.z_reports),
        (25500, 1, 1),
        "250.00 net cash from the receipt, +10.00, -5.00"
    );
    assert_eq!(b.reg.status().unwrap().shift, ShiftState::Closed);
    assert!(
        b.reg.last_receipt().unwrap().is_none(),
        "last FD is the shift close"
    );
    assert!(b.reg.round_trips() > 10);
}

#[test]
fn a_nak_storm_is_survived_and_nothing_runs_twice() {
    let mut b = bench();
    b.reg.open_shift().unwrap();
    b.emu.set_faults(RegisterFaults {
        nak_next: 5,
        ..Default::default()
    });
    let closed = b.reg.register_receipt(&receipt()).unwrap();
    let snap = b.emu.snapshot();
    assert_eq!(snap.faults.nak_next, 0, "all five NAKs were sent");
    assert_eq!(snap.receipts.len(), 1);
    assert_eq!(snap.receipts[0].fd, closed.fd);
    assert_eq!(snap.frames - snap.executed, 5 + snap.repeats);
}

#[test]
fn garbage_before_replies_and_a_slow_device_are_survived() {
    let mut b = bench();
    b.reg.open_shift().unwrap();
    b.emu.set_faults(RegisterFaults {
        garbage_next: 6,
        ..Default::default()
    });
    let closed = b.reg.register_receipt(&receipt()).unwrap();
    assert_eq!(b.emu.snapshot().faults.garbage_next, 0);
    b.emu.set_faults(RegisterFaults {
        byte_delay: Some(Duration::from_millis(3)),
        ..Default::default()
    });
    assert_eq!(b.reg.last_receipt().unwrap(), Some(closed));
    assert_eq!(b.emu.snapshot().receipts.len(), 1);
}

#[test]
fn a_reply_lost_to_an_unplug_is_reconciled_by_asking_the_register() {
    let mut b = bench();
    b.reg.open_shift().unwrap();
    b.emu.set_faults(RegisterFaults {
        unplug_at: Some(UnplugAt {
            command: 0xFF45,
            after_execute: true,
            replug_after: None,
        }),
        ..Default::default()
    });
    let err = b.reg.register_receipt(&receipt()).unwrap_err();
    assert!(err.is_hangup(), "{err:?}");
    assert!(!b.emu.plugged());
    b.emu.replug().unwrap();
    b.reg.replace_port(open(b.emu.path()));

    let st = b.reg.status().unwrap();
    assert!(!st.document_open, "the check was closed on the device");
    let last = b
        .reg
        .last_receipt()
        .unwrap()
        .expect("the receipt is in the FN");
    assert_eq!(last.total, Money(35000));
    let snap = b.emu.snapshot();
    assert_eq!(snap.receipts.len(), 1, "registered exactly once");
    assert_eq!(snap.receipts[0].fd, last.fd);
    assert_eq!(st.last_fd, last.fd);
}

#[test]
fn an_unplug_before_closing_leaves_an_open_check_to_cancel() {
    let mut b = bench();
    b.reg.open_shift().unwrap();
    b.emu.set_faults(RegisterFaults {
        unplug_at: Some(UnplugAt {
            command: 0xFF45,
            after_execute: false,
            replug_after: Some(Duration::from_millis(100)),
        }),
        ..Default::default()
    });
    assert!(b.reg.register_receipt(&receipt()).unwrap_err().is_hangup());
    let deadline = Instant::now() + Duration::from_secs(3);
    while !b.emu.plugged() {
        assert!(Instant::now() < deadline, "never replugged by itself");
        std::thread::sleep(Duration::from_millis(10));
    }
    b.reg.replace_port(open(b.emu.path()));
    let st = b.reg.status().unwrap();
    assert!(st.document_open);
    assert_eq!(st.check_type, Some(CheckType::Sale));
    assert_eq!(
        b.reg.last_receipt().unwrap(),
        None,
        "last FD is the shift open"
    );
    b.reg.cancel_check().unwrap();
    let snap = b.emu.snapshot();
    assert_eq!((snap.receipts.len(), snap.cancelled), (0, 1));
}

#[test]
fn paper_out_is_a_clear_error_not_a_wait() {
    let mut b = bench();
    b.reg.open_shift().unwrap();
    b.emu.set_faults(RegisterFaults {
        paper_out: true,
        ..Default::default()
    });
    let started = Instant::now();
    let err = b.reg.register_receipt(&receipt()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.device_code(), Some(0x6B), "{err}");
    assert!(err.to_string().contains("paper"), "{err}");
    assert!(b.reg.status().unwrap().paper_out);
    b.emu.set_faults(RegisterFaults::default());
    b.reg.register_receipt(&receipt()).unwrap();
    assert_eq!(b.emu.snapshot().receipts.len(), 1);
}

#[test]
fn a_silent_device_is_a_link_error_in_bounded_time() {
    let mut b = bench();
    b.emu.set_faults(RegisterFaults {
        silent: true,
        ..Default::default()
    });
    let started = Instant::now();
    let err = b.reg.status().unwrap_err();
    assert!(err.is_link(), "{err:?}");
    // 3 ENQs × 0.5 s, three times (retries = 2).
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn device_errors_come_back_with_their_meaning() {
    let mut b = bench();
    let err = b.reg.register_receipt(&receipt()).unwrap_err();
    match err {
        ShtrihError::Device {
            command,
            code,
            message,
        } => {
            assert_eq!((command, code), (0x8D, 0x3D));
            assert!(message.contains("shift is not open"));
        }
        other => panic!("{other:?}"),
    }
}

/// A host that resends a frame whose reply it never acknowledged (pyshtrih
/// does, when it misses the ACK) gets the same reply; the register does not
/// execute twice.
#[test]
fn a_retransmitted_frame_executes_once() {
    let b = bench();
    drop(b.reg);
    let mut port = open(b.emu.path());
    let t = Duration::from_millis(500);
    let frame = Command::OpenShift.encode(1, 30).encode();
    let read_reply = |port: &mut Box<dyn Port>| {
        let mut p = FrameParser::new();
        let mut first = [0u8; 1];
        port.read_exact(&mut first, t).unwrap();
        assert_eq!(first[0], ACK);
        loop {
            let b = port.read_byte(t).unwrap();
            if let Parsed::Frame(f) = p.push(b) {
                return Reply::from_frame(&f).unwrap();
            }
        }
    };
    port.write_all(&[ENQ], t).unwrap();
    assert_eq!(port.read_byte(t).unwrap(), NAK);
    port.write_all(&frame, t).unwrap();
    let first = read_reply(&mut port);
    assert_eq!(first.error, 0);
    // No ACK from us: send the very same frame again.
    port.write_all(&frame, t).unwrap();
    assert_eq!(read_reply(&mut port), first);
    port.write_all(&[ACK], t).unwrap();
    // Once acknowledged, the same frame is a new command: the shift is open.
    port.write_all(&frame, t).unwrap();
    assert_eq!(
        read_reply(&mut port).error,
        super::assumed::SHIFT_ALREADY_OPEN
    );
    let snap = b.emu.snapshot();
    assert_eq!((snap.shift_number, snap.last_fd, snap.repeats), (1, 1, 1));
}

#[test]
fn baud_pacing_slows_replies_and_the_model_name_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyShtrih");
    let emu = RegisterEmulator::start(
        &link,
        RegisterEmulatorOptions {
            seed: 5,
            baud: Some(2400),
            model_name: Some("ШТРИХ-ЛАЙТ-01Ф".into()),
            line_baud: None,
            timezone: None,
        },
    )
    .unwrap();
    let mut reg = Register::new(open(&link), opts());
    assert_eq!(reg.device_type().unwrap().name, "ШТРИХ-ЛАЙТ-01Ф");
    let started = Instant::now();
    reg.short_status().unwrap();
    // NAK, then ACK + a 19-byte frame: 21 bytes at 240 bytes/s ≈ 87 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(80),
        "{:?}",
        started.elapsed()
    );
    emu.stop();
}

fn register_settings(path: &Path, baud: u32) -> crate::config::RegisterSettings {
    let demo = crate::config::load_str(crate::config::DEMO_CONFIG).unwrap();
    let mut r = demo.devices.register.unwrap();
    r.path = path.to_path_buf();
    r.line.baud = baud;
    r.reply_timeout = Duration::from_millis(300);
    r
}

#[test]
fn the_register_is_found_at_the_rate_it_answers_and_the_rate_is_remembered() {
    use crate::devices::manager::{RegisterDriver, remembered_baud};
    use crate::devices::runtime::Driver;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyShtrih");
    let emu = RegisterEmulator::start(
        &link,
        RegisterEmulatorOptions {
            line_baud: Some(19_200),
            ..RegisterEmulatorOptions::default()
        },
    )
    .unwrap();
    // The driver probes the usual rates and finds 19200.
    let settings = register_settings(&link, 115_200);
    let mut driver = RegisterDriver::connect(&settings).expect("found by probing");
    assert_eq!(remembered_baud(&link), Some(19_200));
    assert!(
        driver.check().is_ok(),
        "the register works at the found rate"
    );
    drop(driver);
    // A reconnect tries the remembered rate first: no probing, at once.
    let started = Instant::now();
    RegisterDriver::connect(&settings).expect("reconnect");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    emu.stop();
}

#[test]
fn a_register_answering_at_no_rate_is_reported_with_the_rates_tried() {
    use crate::devices::manager::RegisterDriver;
    use crate::devices::runtime::{DeviceError, Driver};
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyShtrih");
    // 1200 baud is not among the rates tried.
    let emu = RegisterEmulator::start(
        &link,
        RegisterEmulatorOptions {
            line_baud: Some(1_200),
            ..RegisterEmulatorOptions::default()
        },
    )
    .unwrap();
    let mut settings = register_settings(&link, 9_600);
    settings.reply_timeout = Duration::from_millis(100);
    match RegisterDriver::connect(&settings) {
        Err(DeviceError::Unavailable(m)) => {
            assert!(
                m.contains("no register answers at any of [9600, 115200"),
                "{m}"
            )
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("connected at a rate the register does not speak"),
    }
    // No such path: no probing at all.
    let missing = register_settings(&dir.path().join("nothing"), 9_600);
    let started = Instant::now();
    assert!(matches!(
        RegisterDriver::connect(&missing),
        Err(DeviceError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_millis(200));
    emu.stop();
}
