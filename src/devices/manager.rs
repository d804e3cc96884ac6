//! The till's devices as the daemon uses them: the register and printer
//! drivers adapted to the [`runtime`](super::runtime), the drawer routed to
//! whichever device it hangs on, and the operator's actions (shift, reports,
//! drawer) with their errors in the device's words.

use super::escpos::{self, DrawerPin, EscPosError, Printer, PrinterOptions};
use super::port::SerialPort;
use super::runtime::{Device, DeviceError, DeviceStatus, Driver, Health, Timing};
use super::shtrih::{Register, RegisterOptions, RegisterStatus, ShiftState, ShtrihError};
use crate::config::{DeviceSettings, DrawerVia, PrinterSettings, RegisterSettings};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for one device request (the drivers' own I/O timeouts are
/// shorter; this only guards against a request stuck behind others).
pub const CALL_LIMIT: Duration = Duration::from_secs(120);

impl From<ShtrihError> for DeviceError {
    fn from(e: ShtrihError) -> Self {
        let text = e.to_string();
        match e {
            ShtrihError::Hangup(_) => DeviceError::Hangup(text),
            // Refused before a byte was sent: parked for an operator, never
            // retried in a loop that would hold up every later receipt.
            ShtrihError::Plan(_) => DeviceError::Rejected(text),
            // No answer, or one this driver cannot read: the command may have
            // run; never a reason to give up on a receipt.
            ShtrihError::Link(_) | ShtrihError::Protocol(_) => DeviceError::Link(text),
            ShtrihError::MarkingRefused(_) => DeviceError::Rejected(text),
            ShtrihError::Device { code, .. } => match code {
                0x6B => DeviceError::NotReady("paper out".into()),
                // Still printing; shift over 24 hours (register and FN codes);
                // shift not open: conditions that pass, not refusals.
                0x50 => DeviceError::NotReady(format!("busy printing: {text}")),
                0x4E | 0x16 => DeviceError::NotReady(
                    "the shift is over 24 hours old: close it (Z report) with POST /v1/shifts/close"
                        .into(),
                ),
                // The drive refuses new documents: the OFD queue's oldest
                // is over 30 days old (assumed::FN_OFD_WAIT_EXHAUSTED).
                super::shtrih::assumed::FN_OFD_WAIT_EXHAUSTED
                | super::shtrih::assumed::FN_OFD_WAIT_EXHAUSTED_ALT => DeviceError::NotReady(
                    format!(
                        "the fiscal drive blocks receipts: a document not confirmed by the OFD is over 30 days old; {} ({text})",
                        crate::deadlines::Kind::OfdBlock.action()
                    ),
                ),
                super::shtrih::assumed::FN_CLOCK_DIFFERENCE => DeviceError::NotReady(format!(
                    "the register's clock is too far from the fiscal drive's: {} ({text})",
                    crate::deadlines::Kind::ClockSkew.action()
                )),
                0x3D => DeviceError::NotReady(
                    "the shift is closed: open it with POST /v1/shifts/open".into(),
                ),
                _ => DeviceError::Rejected(text),
            },
        }
    }
}

impl From<EscPosError> for DeviceError {
    fn from(e: EscPosError) -> Self {
        match e {
            EscPosError::NotReady(status) => DeviceError::NotReady(
                status
                    .problem()
                    .unwrap_or("the printer is not ready")
                    .to_string(),
            ),
            e if e.is_hangup() => DeviceError::Hangup(e.to_string()),
            e => DeviceError::Link(e.to_string()),
        }
    }
}

/// The fiscal register under the runtime.
pub struct RegisterDriver {
    pub register: Register,
    pub settings: RegisterSettings,
    /// When the deadline readings are next due (now after a Z report).
    pub next_reading: std::time::Instant,
    /// The open shift's number and opening time, found once per shift.
    shift_opened: Option<(u32, Option<chrono::DateTime<chrono::Utc>>)>,
    crossings: crate::deadlines::Crossings,
    /// Why the drive refuses receipts now (the OFD block, expiry), from the
    /// last readings: the register is shown faulted with it, and read
    /// every poll until it clears so held receipts go at once.
    blocked: Option<String>,
}

impl Driver for RegisterDriver {
    type Settings = RegisterSettings;

    /// Opens the register at the line speed it answers at: the one that
    /// answered last time on this path, then `[register] baud`, then the
    /// usual rates ([`PROBE_BAUDS`]) with a short probe. The speed found is
    /// remembered for the next reconnect (in memory: a restart probes again,
    /// starting with the configured rate).
    fn connect(settings: &RegisterSettings) -> Result<Self, DeviceError> {
        let remembered = remembered_baud(&settings.path);
        let candidates = baud_candidates(settings.line.baud, remembered);
        let probe = settings.reply_timeout.min(PROBE_TIMEOUT);
        let mut last = String::new();
        for (i, &baud) in candidates.iter().enumerate() {
            let timeout = if i == 0 {
                settings.reply_timeout
            } else {
                probe
            };
            match open_register(settings, baud, timeout, Some(0)) {
                Ok(probe) => {
                    if i > 0 {
                        tracing::warn!(
                            device = "register",
                            baud,
                            configured = settings.line.baud,
                            "the register answers at {baud} baud, not the configured {}: set [register] baud = {baud}",
                            settings.line.baud
                        );
                    }
                    // Probed with one exchange; reopen with the full retries.
                    drop(probe);
                    let register = open_register(settings, baud, settings.reply_timeout, None)
                        .map_err(|e| DeviceError::Unavailable(e.to_string()))?;
                    remember_baud(&settings.path, baud);
                    return Ok(RegisterDriver {
                        register,
                        settings: settings.clone(),
                        next_reading: std::time::Instant::now(),
                        shift_opened: None,
                        crossings: Default::default(),
                        blocked: None,
                    });
                }
                // Nothing at the path (unplugged, no permission): no rate helps.
                Err(ProbeError::Open(e)) => return Err(DeviceError::Unavailable(e)),
                Err(ProbeError::NoAnswer(e)) => last = e,
            }
        }
        Err(DeviceError::Unavailable(format!(
            "no register answers at any of {candidates:?} baud: {last}"
        )))
    }

    fn check(&mut self) -> Result<Health, DeviceError> {
        let status = self.register.status()?;
        if std::time::Instant::now() >= self.next_reading {
            self.next_reading = std::time::Instant::now() + self.settings.reading_interval;
            self.take_readings(&status)?;
            if self.blocked.is_some() {
                self.next_reading = std::time::Instant::now();
            }
        }
        let mut health = register_health(&status);
        if health.problem.is_none() {
            health.problem = self.blocked.clone();
        }
        if health.problem.is_none()
            && status.shift == ShiftState::Closed
            && !self.settings.auto_open_shift
        {
            health.problem = Some("the shift is closed: open it with POST /v1/shifts/open".into());
        }
        Ok(health)
    }
}

impl RegisterDriver {
    /// FF03, FF39, FF01, FF63, FF70 and the shift's opening document, converted
    /// to the till's time, onto the [`board`](crate::deadlines::board); logs
    /// a warning for each threshold crossed since the last reading.
    fn take_readings(&mut self, status: &RegisterStatus) -> Result<(), DeviceError> {
        use crate::deadlines::{Readings, Severity, board, evaluate};
        let tz = self.settings.timezone;
        let utc = |t: chrono::NaiveDateTime| {
            t.and_local_timezone(tz)
                .earliest()
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let now = chrono::Utc::now();
        // A register that lacks one of these commands still gives the rest.
        let expiry = soft(self.register.fn_expiry())?;
        let ofd = soft(self.register.ofd_status())?;
        let warnings = soft(self.register.fn_warnings())?;
        let memory = soft(self.register.fn_memory())?;
        let mc = soft(self.register.mc_status())?;
        let shift_open = matches!(status.shift, ShiftState::Open | ShiftState::Expired);
        let opened = if !shift_open {
            self.shift_opened = None;
            None
        } else {
            match self.shift_opened {
                Some((n, at)) if n == status.shift_number => at,
                _ => {
                    let within = status.receipts_in_shift + 64;
                    let at = soft(self.register.shift_opened_at(status.last_fd, within))?
                        .flatten()
                        .and_then(utc);
                    self.shift_opened = Some((status.shift_number, at));
                    at
                }
            }
        };
        let readings = Readings {
            taken_at: Some(now),
            // ASSUMED (assumed::FN_EXPIRY_DATE_IS_LAST_VALID_DAY): the drive
            // stops at the midnight after its FF03 date.
            fn_expires_at: expiry.as_ref().and_then(|e| {
                e.expires
                    .succ_opt()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .and_then(utc)
            }),
            reregistrations_left: expiry.as_ref().map(|e| e.reregistrations_left),
            fn_warnings: warnings,
            fn_documents_left: memory.map(|m| m.documents_left),
            ofd_unsent: ofd.as_ref().map(|o| u32::from(o.unsent)),
            ofd_first_unsent: ofd.as_ref().map(|o| o.first_unsent),
            ofd_oldest_unsent_at: ofd.as_ref().and_then(|o| o.first_unsent_at).and_then(utc),
            shift_opened_at: opened,
            register_clock_offset_s: utc(status.date_time).map(|t| (t - now).num_seconds()),
            time_synced: crate::deadlines::time_synced(),
            marking_last_sync: None,
            fiscalbox: None,
            marking_notifications: mc.map(|m| crate::deadlines::MarkingNotifications {
                blocked: m.check_state == crate::devices::shtrih::command::McStatus::BLOCKED,
                area_fill: m.area_fill,
                queued: m.queued_notifications,
            }),
        };
        let conditions = evaluate(&readings, &self.settings.thresholds, now);
        self.blocked = conditions
            .iter()
            .find(|c| {
                c.severity == Severity::Blocking
                    && matches!(
                        c.kind,
                        crate::deadlines::Kind::OfdBlock | crate::deadlines::Kind::FnExpiry
                    )
            })
            .map(|c| format!("{}: {}", c.message, c.action));
        for c in self.crossings.update(&conditions) {
            if c.severity >= Severity::Warn {
                tracing::warn!(
                    device = "register",
                    deadline = c.kind.as_str(),
                    severity = c.severity.as_str(),
                    seconds_left = c.seconds_left,
                    "{}",
                    c.line()
                );
            } else {
                tracing::info!(
                    device = "register",
                    deadline = c.kind.as_str(),
                    "{}: back to ok",
                    c.message
                );
            }
        }
        board().put(&self.settings.path, readings);
        Ok(())
    }
}

/// A register that refuses one reading (an older firmware) still gives the
/// rest; a link failure stops the poll as usual.
fn soft<T>(r: Result<T, ShtrihError>) -> Result<Option<T>, DeviceError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ShtrihError::Device { .. } | ShtrihError::Protocol(_)) => Ok(None),
        Err(e) => Err(DeviceError::from(e)),
    }
}

fn register_health(s: &RegisterStatus) -> Health {
    let problem = if s.paper_out {
        Some("paper out".to_string())
    } else if s.cover_open {
        Some("cover open".to_string())
    } else if s.shift == ShiftState::Expired {
        Some(
            "the shift is over 24 hours old: close it (Z report) with POST /v1/shifts/close".into(),
        )
    } else {
        None
    };
    Health {
        problem,
        details: register_details(s),
    }
}

pub fn register_details(s: &RegisterStatus) -> Value {
    json!({
        "mode": s.mode,
        "submode": s.submode,
        "shift": match s.shift {
            ShiftState::Closed => "closed",
            ShiftState::Open => "open",
            ShiftState::Expired => "expired",
        },
        "shift_number": s.shift_number,
        "document_open": s.document_open,
        "paper_out": s.paper_out,
        "cover_open": s.cover_open,
        "drawer_open": s.drawer_open,
        "last_fiscal_document": s.last_fd,
        "fiscal_drive_number": s.fn_number,
        "serial": s.serial,
    })
}

/// Line speeds a register is probed at, fastest first, after the remembered
/// and the configured one (the rates Shtrih-M registers can be set to).
pub const PROBE_BAUDS: [u32; 7] = [115_200, 57_600, 38_400, 19_200, 9_600, 4_800, 2_400];
/// How long a probe at a guessed rate waits for an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// The order rates are tried in: remembered, configured, then the rest of
/// [`PROBE_BAUDS`], each once. Pure.
pub fn baud_candidates(configured: u32, remembered: Option<u32>) -> Vec<u32> {
    let mut out = Vec::with_capacity(PROBE_BAUDS.len() + 2);
    for b in remembered
        .into_iter()
        .chain([configured])
        .chain(PROBE_BAUDS)
    {
        if !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

static BAUDS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, u32>>,
> = std::sync::LazyLock::new(Default::default);

/// The rate the register on `path` answered at last (this process).
pub fn remembered_baud(path: &std::path::Path) -> Option<u32> {
    BAUDS.lock().expect("bauds lock").get(path).copied()
}

fn remember_baud(path: &std::path::Path, baud: u32) {
    BAUDS
        .lock()
        .expect("bauds lock")
        .insert(path.to_path_buf(), baud);
}

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("{0}")]
    Open(String),
    #[error("{0}")]
    NoAnswer(String),
}

/// `retries`: `Some(0)` for a probe at a guessed rate (one exchange).
fn open_register(
    settings: &RegisterSettings,
    baud: u32,
    reply_timeout: Duration,
    retries: Option<u32>,
) -> Result<Register, ProbeError> {
    let line = super::port::LineSettings {
        baud,
        ..settings.line.clone()
    };
    let port =
        SerialPort::open(&settings.path, &line).map_err(|e| ProbeError::Open(e.to_string()))?;
    let mut register = Register::new(
        Box::new(port),
        RegisterOptions {
            password: settings.password,
            admin_password: settings.admin_password,
            reply_timeout,
            retries: retries.unwrap_or(RegisterOptions::default().retries),
            ..RegisterOptions::default()
        },
    );
    // A device that does not identify itself is not (yet) our register.
    match register.device_type() {
        Ok(_) => Ok(register),
        Err(e) if e.is_hangup() => Err(ProbeError::Open(format!("no register answers: {e}"))),
        Err(e) => Err(ProbeError::NoAnswer(format!("at {baud} baud: {e}"))),
    }
}

/// The ESC/POS printer under the runtime.
pub struct PrinterDriver {
    pub printer: Printer,
    pub settings: PrinterSettings,
}

impl Driver for PrinterDriver {
    type Settings = PrinterSettings;

    fn connect(settings: &PrinterSettings) -> Result<Self, DeviceError> {
        // A tty (serial, USB-serial, CDC-ACM) or a USB printer-class node.
        let port = super::port::open_printer_port(&settings.path, &settings.line)
            .map_err(|e| DeviceError::Unavailable(e.to_string()))?;
        let mut printer = Printer::new(
            port,
            PrinterOptions {
                status_timeout: settings.status_timeout,
                write_timeout: settings.write_timeout,
                line_baud: settings.line.baud,
                ..PrinterOptions::default()
            },
        );
        printer
            .status()
            .map_err(|e| DeviceError::Unavailable(format!("no printer answers: {e}")))?;
        Ok(PrinterDriver {
            printer,
            settings: settings.clone(),
        })
    }

    fn check(&mut self) -> Result<Health, DeviceError> {
        let s = self.printer.status()?;
        Ok(Health {
            problem: s.problem().map(str::to_string),
            details: printer_details(&s),
        })
    }
}

pub fn printer_details(s: &escpos::PrinterStatus) -> Value {
    json!({
        "online": s.online,
        "paper": match s.paper {
            escpos::Paper::Ok => "ok",
            escpos::Paper::NearEnd => "near_end",
            escpos::Paper::Out => "out",
        },
        "cover_open": s.cover_open,
        "drawer_pin_high": s.drawer_pin_high,
        "error": s.error,
        // False for a unidirectional USB printer: nothing above is known.
        "status_reported": s.reported(),
    })
}

/// `[printer] encoding` as the encoder takes it.
pub fn text_encoding(e: crate::config::TextEncoding) -> escpos::TextEncoding {
    match e {
        crate::config::TextEncoding::Cp866 => escpos::TextEncoding::Cp866,
        crate::config::TextEncoding::Cp1251 => escpos::TextEncoding::Cp1251,
    }
}

/// `[printer] cut` as the encoder takes it.
pub fn cut_mode(c: crate::config::CutMode) -> escpos::CutMode {
    match c {
        crate::config::CutMode::None => escpos::CutMode::None,
        crate::config::CutMode::Partial => escpos::CutMode::Partial,
        crate::config::CutMode::Full => escpos::CutMode::Full,
    }
}

/// The printer's kick connector pin from `[drawer] pin` (validated: 2 or 5).
pub fn drawer_pin(pin: u8) -> DrawerPin {
    if pin == 5 {
        DrawerPin::Pin5
    } else {
        DrawerPin::Pin2
    }
}

/// The till's devices.
pub struct Devices {
    pub settings: DeviceSettings,
    pub register: Option<Device<RegisterDriver>>,
    pub printer: Option<Device<PrinterDriver>>,
    /// Notified (one permit, for the device worker) whenever a device's state changes.
    pub changed: Arc<tokio::sync::Notify>,
}

/// An operator's device action went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no {0} is configured on this till")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl Devices {
    /// Start a thread for each configured device.
    pub fn start(settings: &DeviceSettings) -> Devices {
        let changed = Arc::new(tokio::sync::Notify::new());
        let timing = Timing {
            status_interval: settings.status_interval,
            reconnect_base: settings.reconnect_base,
            reconnect_cap: settings.reconnect_cap,
        };
        let notify = {
            let changed = changed.clone();
            Arc::new(move || changed.notify_one()) as Arc<dyn Fn() + Send + Sync>
        };
        let register = settings.register.as_ref().map(|r| {
            Device::spawn(
                "register",
                r.path.display().to_string(),
                r.clone(),
                timing,
                notify.clone(),
            )
        });
        let printer = settings.printer.as_ref().map(|p| {
            Device::spawn(
                "printer",
                p.path.display().to_string(),
                p.clone(),
                timing,
                notify.clone(),
            )
        });
        Devices {
            settings: settings.clone(),
            register,
            printer,
            changed,
        }
    }

    pub fn stop(&self) {
        if let Some(r) = &self.register {
            r.stop();
        }
        if let Some(p) = &self.printer {
            p.stop();
        }
    }

    pub fn statuses(&self) -> Vec<DeviceStatus> {
        self.register
            .iter()
            .map(|d| d.status())
            .chain(self.printer.iter().map(|d| d.status()))
            .collect()
    }

    /// Where the drawer hangs and whether it reports open (where the hardware says).
    pub fn drawer_view(&self) -> Value {
        let d = &self.settings.drawer;
        let open = match d.via {
            DrawerVia::Printer => self.printer.as_ref().and_then(|p| {
                p.status()
                    .details
                    .get("drawer_pin_high")
                    .and_then(Value::as_bool)
            }),
            DrawerVia::Register => self.register.as_ref().and_then(|r| {
                r.status()
                    .details
                    .get("drawer_open")
                    .and_then(Value::as_bool)
            }),
            DrawerVia::None => None,
        };
        json!({
            "via": d.via,
            "pin": (d.via == DrawerVia::Printer).then_some(d.pin),
            "pulse_ms": d.pulse.as_millis() as u64,
            "open_on_cash": d.open_on_cash,
            // The kick connector's sensor level; whether high means open
            // depends on the drawer (docs/DEVICES.md).
            "sensor": open,
        })
    }

    pub fn register(&self) -> Result<&Device<RegisterDriver>, ActionError> {
        self.register
            .as_ref()
            .ok_or(ActionError::NotConfigured("fiscal register"))
    }

    pub fn printer(&self) -> Result<&Device<PrinterDriver>, ActionError> {
        self.printer
            .as_ref()
            .ok_or(ActionError::NotConfigured("receipt printer"))
    }

    /// Print blocks (a POS's banners) on the receipt printer at once.
    pub async fn print_blocks(
        &self,
        list: Vec<super::escpos::layout::Block>,
    ) -> Result<(), ActionError> {
        let printer = self.printer()?;
        let settings = self
            .settings
            .printer
            .as_ref()
            .ok_or(ActionError::NotConfigured("receipt printer"))?;
        let doc = super::escpos::layout::blocks(&list, &layout_options(settings));
        printer
            .call(CALL_LIMIT, move |p| {
                p.printer.print(&doc)?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Open the cash drawer wherever it hangs.
    pub async fn open_drawer(&self) -> Result<(), ActionError> {
        let d = self.settings.drawer.clone();
        match d.via {
            DrawerVia::None => Err(ActionError::NotConfigured("cash drawer")),
            DrawerVia::Printer => {
                let pin = drawer_pin(d.pin);
                self.printer()?
                    .call(CALL_LIMIT, move |p| {
                        Ok(p.printer.kick_drawer(pin, d.pulse)?)
                    })
                    .await?;
                Ok(())
            }
            DrawerVia::Register => {
                self.register()?
                    .call(CALL_LIMIT, |r| Ok(r.register.open_drawer(0)?))
                    .await?;
                Ok(())
            }
        }
    }

    /// A technician's test print: `lines`, a feed and a cut, in the
    /// printer's code page; returns the printer's status after.
    pub async fn test_print(&self, lines: Vec<String>) -> Result<Value, ActionError> {
        Ok(self
            .printer()?
            .call(CALL_LIMIT, move |p| {
                let mut doc = escpos::Commands::new(text_encoding(p.settings.encoding));
                doc.init().code_table(p.settings.code_table);
                for line in &lines {
                    doc.line(line);
                }
                doc.feed(3).cut(cut_mode(p.settings.cut));
                let status = p.printer.print(doc.bytes()).map_err(DeviceError::from)?;
                Ok(printer_details(&status))
            })
            .await?)
    }

    /// Open the register's shift; returns the register's status after.
    pub async fn open_shift(&self) -> Result<Value, ActionError> {
        let details = self
            .register()?
            .call(CALL_LIMIT, |r| {
                let s = r.register.status()?;
                if s.shift != ShiftState::Closed {
                    return Err(DeviceError::Rejected(format!(
                        "the shift {} is already open",
                        s.shift_number
                    )));
                }
                r.register.open_shift()?;
                Ok(register_details(&r.register.status()?))
            })
            .await?;
        // Receipts held for a shift may go now: the device worker looks again.
        self.changed.notify_one();
        Ok(details)
    }

    /// Close the shift with a Z report.
    pub async fn close_shift(&self) -> Result<Value, ActionError> {
        let details = self
            .register()?
            .call(CALL_LIMIT, |r| {
                let s = r.register.status()?;
                if s.shift == ShiftState::Closed {
                    return Err(DeviceError::Rejected("the shift is already closed".into()));
                }
                if s.document_open {
                    return Err(DeviceError::Rejected(
                        "a receipt is open on the register; it is completed or cancelled first"
                            .into(),
                    ));
                }
                r.register.z_report()?;
                // The shift's deadline is gone: read again at the next poll.
                r.next_reading = std::time::Instant::now();
                Ok(register_details(&r.register.status()?))
            })
            .await?;
        // A shift over 24 h held receipts until this Z report.
        self.changed.notify_one();
        Ok(details)
    }

    /// Print an X report (shift totals, shift stays open).
    pub async fn x_report(&self) -> Result<Value, ActionError> {
        Ok(self
            .register()?
            .call(CALL_LIMIT, |r| {
                r.register.x_report()?;
                Ok(register_details(&r.register.status()?))
            })
            .await?)
    }
}

/// The receipt layout as `[printer]` sets it.
pub fn layout_options(settings: &PrinterSettings) -> super::escpos::layout::LayoutOptions {
    super::escpos::layout::LayoutOptions {
        width: settings.width,
        code_table: settings.code_table,
        encoding: text_encoding(settings.encoding),
        cut: cut_mode(settings.cut),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::shtrih::PlanError;

    #[test]
    fn rates_are_tried_remembered_first_then_configured_then_the_usual_ones_once() {
        assert_eq!(
            baud_candidates(115_200, None),
            vec![115_200, 57_600, 38_400, 19_200, 9_600, 4_800, 2_400]
        );
        assert_eq!(
            baud_candidates(9_600, Some(19_200)),
            vec![19_200, 9_600, 115_200, 57_600, 38_400, 4_800, 2_400]
        );
        assert_eq!(baud_candidates(4_800, Some(4_800))[..2], [4_800, 115_200]);
    }

    #[test]
    fn a_receipt_the_register_cannot_express_parks_and_a_garbled_reply_retries() {
        assert!(matches!(
            DeviceError::from(ShtrihError::Plan(PlanError::Empty)),
            DeviceError::Rejected(_)
        ));
        assert!(matches!(
            DeviceError::from(ShtrihError::Protocol("short".into())),
            DeviceError::Link(_)
        ));
    }
}
