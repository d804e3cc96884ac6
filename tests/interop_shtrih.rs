//! Proof that the register emulator speaks the real protocol: pyshtrih 2.0.6,
//! an independent implementation, discovers it, opens a shift, sells, closes
//! a check with change, reads the FN and runs a Z report against it.

mod common;

use fiscald::sim::devices::register::{RegisterEmulator, RegisterEmulatorOptions};
use serde_json::Value;
use std::time::Duration;

const CLIENT: &str = "tests/interop/shtrih_client.py";
const LIMIT: Duration = Duration::from_secs(60);

fn require_pyshtrih() {
    common::require_python("pyshtrih");
}

/// Runs the client with a hard time limit; returns (status, stdout, stderr).
fn run_client(path: &std::path::Path) -> (std::process::ExitStatus, String, String) {
    common::run_python(std::path::Path::new(CLIENT), &[path.as_os_str()], LIMIT)
}

#[test]
fn pyshtrih_registers_a_receipt_on_the_emulator() {
    require_pyshtrih();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyShtrih");
    let emu = RegisterEmulator::start(
        &link,
        RegisterEmulatorOptions {
            seed: 42,
            ..Default::default()
        },
    )
    .unwrap();
    let before = emu.snapshot();
    assert_eq!((before.last_fd, before.shift_open), (0, false));

    let (status, out, err) = run_client(&link);
    assert!(status.success(), "client failed ({status}):\n{err}\n{out}");
    let got: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("client printed no JSON ({e}):\n{out}\n{err}"));

    // What pyshtrih saw.
    assert_eq!(got["class"], "ShtrihM01F", "{got}");
    assert!(got["name"].as_str().unwrap().contains("М-01Ф"));
    assert_eq!(
        got["short_before"]["mode"], 4,
        "shift closed at first: {got}"
    );
    assert_eq!(got["full_before"]["mode"], 4);
    assert_eq!(got["fd_before"], 0);
    assert_eq!(got["after_open_shift"]["mode"], 2);
    assert_eq!(got["in_check"]["mode"], 8);
    assert_eq!(got["in_check"]["status"], 0, "a sale check");
    assert_eq!(got["change"], 20000, "500.00 paid for 300.00");
    assert_eq!(got["after_close"]["mode"], 2);
    assert_eq!(got["last_fd"], 2, "shift open = FD 1, receipt = FD 2");
    assert_eq!(got["doc_type"], 3);
    assert_eq!(got["doc_operation"], 1);
    assert_eq!(got["doc_sum"], 30000);
    assert_eq!(got["after_z"]["mode"], 4);
    assert_eq!(got["fd_after_z"], 3);

    // What the emulator recorded.
    let snap = emu.snapshot();
    assert_eq!(snap.receipts.len(), 1, "exactly one receipt: {snap:?}");
    let r = &snap.receipts[0];
    assert_eq!(
        (r.total, r.change, &r.payments[..4]),
        (30000, 20000, &[50000, 0, 0, 0][..])
    );
    assert_eq!(r.fd, 2);
    assert_eq!(
        u64::from(r.fiscal_sign),
        got["doc_fiscal_sign"].as_u64().unwrap()
    );
    assert_eq!(r.lines.len(), 1);
    assert_eq!(r.lines[0].name, "Хлеб ржаной «Бородинский»");
    assert_eq!((r.lines[0].quantity, r.lines[0].price), (2000, 15000));
    assert!(!snap.shift_open);
    assert_eq!(snap.mode, 4);
    assert_eq!(snap.last_fd, 3);
    assert_eq!(snap.z_reports, 1);
    assert_eq!(snap.cancelled, 0);
    assert_eq!(snap.cash_in_drawer, 30000);
    assert_eq!(got["full_before"]["serial"], u64::from(snap.serial));
    assert_eq!(got["fn_number"], snap.fn_number);
    emu.stop();
}
