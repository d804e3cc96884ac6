//! The device emulators as one bench: a Shtrih-M register at `DIR/register`
//! and an ESC/POS printer (with its drawer) at `DIR/printer`, each on its own
//! pseudo-terminal, plus an HTTP control interface for fault injection and
//! for reading what was registered and printed:
//!
//! - `GET  /sim/devices` — both emulators' state (register documents, printer output)
//! - `POST /sim/register/faults`, `POST /sim/printer/faults` — set faults (JSON, any subset;
//!   the register's include `ofd_offline` and `clock_skew_s`)
//! - `POST /sim/register/deadlines` — move the drive's expiry, the OFD queue's
//!   age and the shift's age ([`DeadlineKnobs`])
//! - `POST /sim/{register|printer}/unplug`, `.../replug`
//! - `POST /sim/drawer/close` — the cashier pushes the drawer shut

use super::printer::{PrinterEmulator, PrinterEmulatorOptions, PrinterFaults};
use super::register::{DeadlineKnobs, RegisterEmulator, RegisterEmulatorOptions, RegisterFaults};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the bench is set up.
#[derive(Clone, Debug, Default)]
pub struct SimDevicesOptions {
    /// Pace the printer's intake like a UART at this baud (None: as fast as the pty).
    pub printer_pace_baud: Option<u32>,
    /// Seed for the register's fiscal signs.
    pub seed: u64,
    /// The register clock's time zone (the till's); `None` = the machine's.
    pub timezone: Option<chrono_tz::Tz>,
}

/// Register faults as the control interface takes them; absent keys keep
/// their current value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFaultsPatch {
    pub paper_out: Option<bool>,
    pub nak_next: Option<u32>,
    pub garbage_next: Option<u32>,
    pub byte_delay_ms: Option<u64>,
    pub silent: Option<bool>,
    pub ofd_offline: Option<bool>,
    pub clock_skew_s: Option<i64>,
}

/// Printer faults as the control interface takes them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterFaultsPatch {
    pub paper_out: Option<bool>,
    pub paper_near_end: Option<bool>,
    pub cover_open: Option<bool>,
    pub offline: Option<bool>,
    pub garbage_next: Option<u32>,
    pub byte_delay_ms: Option<u64>,
}

pub struct SimDevices {
    pub dir: PathBuf,
    pub register: RegisterEmulator,
    pub printer: PrinterEmulator,
    register_faults: Mutex<RegisterFaults>,
    printer_faults: Mutex<PrinterFaults>,
}

impl SimDevices {
    /// Start both emulators with their stable paths in `dir`.
    pub fn start(dir: &Path, options: SimDevicesOptions) -> std::io::Result<SimDevices> {
        std::fs::create_dir_all(dir)?;
        let register = RegisterEmulator::start(
            &dir.join("register"),
            RegisterEmulatorOptions {
                seed: options.seed,
                timezone: options.timezone,
                ..RegisterEmulatorOptions::default()
            },
        )?;
        let printer = PrinterEmulator::start(
            &dir.join("printer"),
            PrinterEmulatorOptions {
                pace_baud: options.printer_pace_baud,
                ..PrinterEmulatorOptions::default()
            },
        )?;
        Ok(SimDevices {
            dir: dir.to_path_buf(),
            register,
            printer,
            register_faults: Mutex::new(RegisterFaults::default()),
            printer_faults: Mutex::new(PrinterFaults::default()),
        })
    }

    pub fn register_path(&self) -> PathBuf {
        self.dir.join("register")
    }

    pub fn printer_path(&self) -> PathBuf {
        self.dir.join("printer")
    }

    pub fn patch_register(&self, p: &RegisterFaultsPatch) {
        let mut f = self.register_faults.lock().expect("faults");
        if let Some(v) = p.paper_out {
            f.paper_out = v;
        }
        if let Some(v) = p.nak_next {
            f.nak_next = v;
        }
        if let Some(v) = p.garbage_next {
            f.garbage_next = v;
        }
        if let Some(v) = p.byte_delay_ms {
            f.byte_delay = (v > 0).then(|| Duration::from_millis(v));
        }
        if let Some(v) = p.silent {
            f.silent = v;
        }
        if let Some(v) = p.ofd_offline {
            f.ofd_offline = v;
        }
        if let Some(v) = p.clock_skew_s {
            f.clock_skew_s = v;
        }
        self.register.set_faults(f.clone());
    }

    pub fn patch_printer(&self, p: &PrinterFaultsPatch) {
        let mut f = self.printer_faults.lock().expect("faults");
        if let Some(v) = p.paper_out {
            f.paper_out = v;
        }
        if let Some(v) = p.paper_near_end {
            f.paper_near_end = v;
        }
        if let Some(v) = p.cover_open {
            f.cover_open = v;
        }
        if let Some(v) = p.offline {
            f.offline = v;
        }
        if let Some(v) = p.garbage_next {
            f.garbage_next = v;
        }
        if let Some(v) = p.byte_delay_ms {
            f.slow = (v > 0).then(|| Duration::from_millis(v));
        }
        self.printer.set_faults(f.clone());
    }

    /// Both emulators' state as JSON.
    pub fn view(&self) -> serde_json::Value {
        let r = self.register.snapshot();
        let p = self.printer.output();
        let receipts: Vec<_> = r
            .receipts
            .iter()
            .map(|x| {
                json!({
                    "fd": x.fd,
                    "fiscal_sign": x.fiscal_sign,
                    "date_time": x.date_time.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "operation": x.operation,
                    "total": x.total,
                    "payments": x.payments,
                    "change": x.change,
                    "lines": x.lines.len(),
                    "shift": x.shift,
                    "number_in_shift": x.number_in_shift,
                })
            })
            .collect();
        let documents: Vec<_> = p
            .documents
            .iter()
            .map(|d| json!({"text": d.text(), "qr": d.qr, "cut": d.cut.map(|partial| if partial { "partial" } else { "full" })}))
            .collect();
        json!({
            "register": {
                "path": self.register_path(),
                "plugged": self.register.plugged(),
                "state": {
                    "mode": r.mode,
                    "shift_open": r.shift_open,
                    "shift_number": r.shift_number,
                    "last_fd": r.last_fd,
                    "fn_number": r.fn_number,
                    "serial": r.serial,
                    "receipts": receipts,
                    "cancelled": r.cancelled,
                    "z_reports": r.z_reports,
                    "x_reports": r.x_reports,
                    "cash_in_drawer": r.cash_in_drawer,
                    "ofd_unsent": r.ofd_unsent,
                },
            },
            "printer": {
                "path": self.printer_path(),
                "drawer_open": self.printer.drawer_open(),
                "documents": documents,
                "current": p.current.text(),
                "events": p.events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
                "dropped_bytes": p.dropped_bytes,
                "status_requests": p.status_requests,
            },
        })
    }

    pub fn stop(self) {
        self.register.stop();
        self.printer.stop();
    }
}

/// The control interface's routes.
pub fn router(sim: Arc<SimDevices>) -> Router {
    Router::new()
        .route("/sim/devices", get(view))
        .route("/sim/register/faults", post(register_faults))
        .route("/sim/register/deadlines", post(register_deadlines))
        .route("/sim/printer/faults", post(printer_faults))
        .route("/sim/{device}/{action}", post(plug))
        .route("/sim/drawer/close", post(close_drawer))
        .with_state(sim)
}

type Sim = State<Arc<SimDevices>>;

async fn view(State(sim): Sim) -> Response {
    Json(sim.view()).into_response()
}

async fn register_faults(State(sim): Sim, Json(patch): Json<RegisterFaultsPatch>) -> Response {
    sim.patch_register(&patch);
    Json(sim.view()).into_response()
}

async fn register_deadlines(State(sim): Sim, Json(k): Json<DeadlineKnobs>) -> Response {
    sim.register.set_deadlines(&k);
    Json(sim.view()).into_response()
}

async fn printer_faults(State(sim): Sim, Json(patch): Json<PrinterFaultsPatch>) -> Response {
    sim.patch_printer(&patch);
    Json(sim.view()).into_response()
}

async fn close_drawer(State(sim): Sim) -> Response {
    sim.printer.close_drawer();
    Json(sim.view()).into_response()
}

async fn plug(State(sim): Sim, UrlPath((device, action)): UrlPath<(String, String)>) -> Response {
    let result = match (device.as_str(), action.as_str()) {
        ("register", "unplug") => {
            sim.register.unplug();
            Ok(())
        }
        ("register", "replug") => sim.register.replug(),
        ("printer", "unplug") => {
            sim.printer.unplug();
            Ok(())
        }
        ("printer", "replug") => sim.printer.replug(),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": {"code": "not_found", "message": "use /sim/{register|printer}/{unplug|replug}"}})),
            )
                .into_response();
        }
    };
    match result {
        Ok(()) => Json(sim.view()).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"code": "replug_failed", "message": e.to_string()}})),
        )
            .into_response(),
    }
}

/// Serve the control interface on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Arc<SimDevices>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::api::server::serve(
        listener,
        router(sim),
        crate::api::server::HEADER_READ_TIMEOUT,
        shutdown,
    )
    .await;
    Ok(())
}
