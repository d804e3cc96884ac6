//! The device worker: runs the journal's device jobs — `register` (fiscalize
//! a receipt on the fiscal register) and `print` (print it on the ESC/POS
//! printer) — one at a time, oldest first, whenever their device is ready.
//!
//! Exactly once on the register: before a receipt is sent, the job's marker
//! records the register's last fiscal document number (`fd_before`) and is
//! committed. Whatever happens next — a crash, a power cut, a pulled cable,
//! a lost reply — the next attempt first reads the register: a check still
//! open is cancelled (it was never registered); a receipt document after
//! `fd_before` with this receipt's sum and operation *is* this receipt (its
//! fiscal attributes are read back, nothing is sent again); otherwise it is
//! sent afresh. The register is the only source of truth for "registered".
//! Register jobs run strictly in acceptance order (the oldest pending job
//! waits out its retry delay rather than let a newer one overtake it), so no
//! other receipt of ours can land between an interrupted receipt's marker and
//! its reconciliation. A refusal parks a receipt only when the register
//! provably registered nothing since the marker. The decisions are the pure
//! [`super::reconcile`] (property-tested over crash interleavings); this
//! module only performs them.
//!
//! At most once on paper, but never silently lost: a print job's marker
//! counts the copies sent to the printer; a job interrupted after sending
//! (the printer vanished, paper ran out mid-receipt) prints again marked as a
//! copy.

use super::escpos::layout::{ReceiptPrint, receipt as layout_receipt};
use super::manager::{CALL_LIMIT, Devices};
pub use super::reconcile::RegisterMarker;
use super::reconcile::{Action, DocSummary, Observed, reconcile, refusal_parks};
use super::runtime::{DeviceError, DeviceState};
use super::shtrih::ClosedReceipt;
use crate::clock::Clock;
use crate::config::DrawerVia;
use crate::domain::PaymentKind;
use crate::domain::fiscal::operation_type;
use crate::journal::{Job, JobKind, JobMarker, Journal, StoredReceipt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Delay after a transient device failure (a timeout, a hang-up): the
/// device's own state change usually wakes the worker sooner.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// Longest sleep with nothing due (the worker also wakes on every accept and
/// every device state change).
const IDLE_WAIT: Duration = Duration::from_secs(300);

/// The print job's durable progress marker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintMarker {
    /// Times the receipt was sent (wholly or partly) to the printer.
    #[serde(default)]
    pub copies: u32,
    /// The last print was a slip (cloud backend, printed before
    /// fiscalization); written with `copies` before the bytes go out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last_was_slip: bool,
    /// Set by the journal when it reopens the job after the receipt that got
    /// a slip was fiscalized: the fiscal receipt that follows is no copy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_slip: bool,
}

/// Cloud backend: what the print job does with a receipt not fiscalized yet.
/// Pure: `waited_ms` is the time since acceptance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeforeFiscal {
    /// Wait this much longer for the fiscalization.
    Wait(u64),
    /// The wait ran out: print a slip that is no cash receipt.
    Slip,
}

pub fn before_fiscal(waited_ms: i64, wait: Duration) -> BeforeFiscal {
    let wait_ms = wait.as_millis() as i64;
    if waited_ms < wait_ms {
        BeforeFiscal::Wait((wait_ms - waited_ms) as u64)
    } else {
        BeforeFiscal::Slip
    }
}

/// What the register holds for a receipt whose marker says it may have been sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Reconciled {
    /// The register has it: these are its attributes.
    Registered(Box<ClosedReceipt>),
    /// It is not on the register; send it (again).
    NotRegistered {
        /// The register's last fiscal document number now.
        last_fd: u32,
        /// An interrupted check was cancelled first.
        cancelled_open_check: bool,
    },
}

impl JobMarker for RegisterMarker {}
impl JobMarker for PrintMarker {}

/// What a receipt looks like as a register document: its operation and total.
pub fn expected_doc(receipt: &StoredReceipt) -> DocSummary {
    DocSummary {
        operation: operation_type(receipt.receipt.kind),
        total: receipt.receipt.total,
        correction: receipt.receipt.correction.is_some(),
    }
}

fn summary(doc: &ClosedReceipt) -> DocSummary {
    DocSummary {
        operation: doc.operation,
        total: doc.total,
        correction: doc.correction,
    }
}

pub struct DeviceWorker {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl DeviceWorker {
    pub fn spawn(
        journal: Journal,
        devices: Arc<Devices>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> DeviceWorker {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(run(journal, devices, clock, wake, stop.clone()));
        DeviceWorker { stop, task }
    }

    /// Stop after the job in hand (its device call is bounded).
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

fn ready(state: DeviceState) -> bool {
    matches!(state, DeviceState::Ready | DeviceState::Busy)
}

async fn run(
    journal: Journal,
    devices: Arc<Devices>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    stop: Arc<Notify>,
) {
    loop {
        let mut worked = false;
        // When the earliest job of a kind whose device is ready falls due.
        let mut wait = IDLE_WAIT;
        for (kind, device_ready) in [
            (
                JobKind::Register,
                devices.register.as_ref().map(|d| ready(d.status().state)),
            ),
            (
                JobKind::Print,
                devices.printer.as_ref().map(|d| ready(d.status().state)),
            ),
            (
                JobKind::Cash,
                devices.register.as_ref().map(|d| ready(d.status().state)),
            ),
        ] {
            if device_ready != Some(true) {
                continue; // waits for the device's state change
            }
            // The oldest pending job of the kind, due or not: register jobs
            // run strictly in order, so no receipt ever overtakes one that
            // was interrupted (its reconciliation must find the register as
            // it left it).
            let jobs = match journal.due_jobs(kind, i64::MAX, 1, Vec::new()).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!(error = %e, "device worker: cannot read the journal");
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
            };
            let Some(job) = jobs.into_iter().next() else {
                continue;
            };
            let now = clock.now().timestamp_millis();
            if job.next_attempt_at > now {
                wait = wait.min(Duration::from_millis(
                    (job.next_attempt_at - now) as u64 + 1,
                ));
                continue;
            }
            worked = true;
            let result = match kind {
                JobKind::Register => register_job(&journal, &devices, &clock, job).await,
                JobKind::Cash => super::cash::cash_job(&journal, &devices, &clock, job).await,
                _ => print_job(&journal, &devices, &clock, job).await,
            };
            if let Err(e) = result {
                // The outcome could not be recorded: the journal is in
                // trouble. The marker makes the retry safe; pause first.
                tracing::error!(error = %e, "device worker: cannot record a job's outcome");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
        if worked {
            // Between jobs, a stop request (a stored permit) wins over the backlog.
            tokio::select! {
                biased;
                _ = stop.notified() => return,
                _ = std::future::ready(()) => continue,
            }
        }
        tokio::select! {
            _ = stop.notified() => return,
            _ = wake.notified() => {}
            _ = devices.changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn reschedule(
    journal: &Journal,
    clock: &Arc<dyn Clock>,
    job: &Job,
    delay: Duration,
    error: &DeviceError,
) -> Result<(), crate::journal::JournalError> {
    let at = clock.now().timestamp_millis() + delay.as_millis() as i64;
    journal
        .reschedule(job.id, at, Some(error.to_string()))
        .await
}

async fn load(journal: &Journal, job: &Job) -> Result<StoredReceipt, crate::journal::JournalError> {
    journal
        .get(job.receipt_id.clone())
        .await?
        .ok_or_else(|| crate::journal::JournalError::NotFound(job.receipt_id.clone()))
}

/// Fiscalize one receipt on the register, exactly once.
async fn register_job(
    journal: &Journal,
    devices: &Devices,
    clock: &Arc<dyn Clock>,
    job: Job,
) -> Result<(), crate::journal::JournalError> {
    let stored = load(journal, &job).await?;
    let marker: RegisterMarker = job.marker();
    let register = devices.register.as_ref().expect("checked by the caller");
    let auto_open_shift = devices
        .settings
        .register
        .as_ref()
        .is_some_and(|r| r.auto_open_shift);

    // 1. Read the register and reconcile with the marker: the pure
    //    `reconcile` decides, this loop performs its actions.
    let check = {
        let expected = expected_doc(&stored);
        let marker = marker.clone();
        register
            .call(CALL_LIMIT, move |d| {
                let reg = &mut d.register;
                let mut cancelled = false;
                let mut docs: Vec<(u32, Option<DocSummary>)> = Vec::new();
                let mut closed: Vec<Option<ClosedReceipt>> = Vec::new();
                // Each action changes what the register shows; a register
                // that does not settle within a few rounds is a link problem.
                for _ in 0..6 {
                    let status = reg.status()?;
                    let seen = Observed {
                        document_open: status.document_open,
                        last_fd: status.last_fd,
                        shift: status.shift,
                        documents: &docs,
                    };
                    match reconcile(&marker, &seen, expected, auto_open_shift) {
                        Action::CancelOpenCheck => {
                            reg.cancel_check()?;
                            cancelled = true;
                        }
                        Action::ReadBack { from, to } => {
                            for fd in from..=to {
                                let doc = find_receipt(reg, fd)?;
                                docs.push((fd, doc.as_ref().map(summary)));
                                closed.push(doc);
                            }
                        }
                        Action::Registered { fd } => {
                            let doc = docs
                                .iter()
                                .position(|(f, _)| *f == fd)
                                .and_then(|i| closed[i].clone())
                                .expect("reconcile names a document it was shown");
                            return Ok((Reconciled::Registered(Box::new(doc)), status));
                        }
                        Action::OpenShift => reg.open_shift()?,
                        Action::Wait(why) => return Err(DeviceError::NotReady(why.into())),
                        Action::Send { fd_before } => {
                            return Ok((
                                Reconciled::NotRegistered {
                                    last_fd: fd_before,
                                    cancelled_open_check: cancelled,
                                },
                                status,
                            ));
                        }
                    }
                }
                Err(DeviceError::Link(
                    "the register's state kept changing while reconciling".into(),
                ))
            })
            .await
    };
    let (reconciled, status) = match check {
        Ok(x) => x,
        // Reading and reconciling are not the receipt's fault: a refusal here
        // (a cancel or a shift open refused) is retried, never parked.
        Err(DeviceError::Rejected(m)) => {
            let e = DeviceError::Link(format!("while reading the register: {m}"));
            return device_failed(journal, clock, &job, e, "register").await;
        }
        Err(e) => return device_failed(journal, clock, &job, e, "register").await,
    };

    let (closed, status) = match reconciled {
        Reconciled::Registered(doc) => {
            tracing::warn!(receipt = %stored.id, fd = doc.fd, "register: receipt found already registered after an interruption; not sent again");
            (*doc, status)
        }
        Reconciled::NotRegistered {
            last_fd,
            cancelled_open_check,
        } => {
            if cancelled_open_check {
                tracing::warn!(receipt = %stored.id, "register: cancelled an interrupted open check");
            }
            // 2. The marker, committed before a byte of the receipt is sent.
            journal
                .mark_job(
                    job.id,
                    &RegisterMarker {
                        fd_before: Some(last_fd),
                    },
                )
                .await?;
            // 3. Send it. The register must still be where the marker says.
            let receipt = stored.receipt.clone();
            let sent = register
                .call(CALL_LIMIT, move |d| {
                    let reg = &mut d.register;
                    let now = reg.status()?;
                    if now.last_fd != last_fd || now.document_open {
                        return Err(DeviceError::Link(
                            "the register's state changed since it was read; reconciling".into(),
                        ));
                    }
                    match reg.register_receipt(&receipt) {
                        Ok(closed) => Ok((closed, reg.status()?)),
                        Err(e) => {
                            let e = DeviceError::from(e);
                            if !matches!(e, DeviceError::Rejected(_)) {
                                return Err(e);
                            }
                            // A refusal parks the receipt only if the register
                            // provably registered nothing: no new fiscal
                            // document since the marker. Otherwise the next
                            // attempt reconciles.
                            if reg.status()?.document_open {
                                // Leave the register clean for the next receipt.
                                reg.cancel_check()?;
                            }
                            let after = reg.status()?;
                            let seen = Observed {
                                document_open: after.document_open,
                                last_fd: after.last_fd,
                                shift: after.shift,
                                documents: &[],
                            };
                            if !refusal_parks(last_fd, &seen) {
                                return Err(DeviceError::Link(format!(
                                    "{e}; the register's documents changed, reconciling"
                                )));
                            }
                            Err(e)
                        }
                    }
                })
                .await;
            match sent {
                Ok(x) => x,
                Err(e) => return device_failed(journal, clock, &job, e, "register").await,
            }
        }
    };

    let attrs = closed.fiscal_attributes(&status);
    let qr = attrs.qr(stored.receipt.total, stored.receipt.kind);
    journal
        .record_fiscalized(job.id, attrs, qr, "register")
        .await?;
    tracing::info!(receipt = %stored.id, number = stored.number, fd = closed.fd, "register: receipt fiscalized");

    // The drawer, when it hangs on the register and no printer job follows
    // (with a printer, the drawer opens after the customer copy).
    if devices.settings.drawer.via == DrawerVia::Register
        && devices.settings.drawer.open_on_cash
        && has_cash(&stored)
        && let Err(e) = register
            .call(CALL_LIMIT, |d| Ok(d.register.open_drawer(0)?))
            .await
    {
        tracing::warn!(error = %e, "register: could not open the cash drawer");
    }
    Ok(())
}

async fn device_failed(
    journal: &Journal,
    clock: &Arc<dyn Clock>,
    job: &Job,
    e: DeviceError,
    device: &'static str,
) -> Result<(), crate::journal::JournalError> {
    match &e {
        DeviceError::Rejected(message) if device == "register" => {
            tracing::error!(job = job.id, error = %message, "register refused the receipt; an operator must retry or discard it");
            journal
                .park(
                    job.id,
                    format!("the register refused the receipt: {message}"),
                )
                .await
        }
        DeviceError::NotReady(_) | DeviceError::Unavailable(_) => {
            // Waits for the device's state to change; no timer needed.
            tracing::info!(job = job.id, device, reason = %e, "device job waits for the device");
            reschedule(journal, clock, job, Duration::ZERO, &e).await
        }
        _ => {
            tracing::warn!(job = job.id, device, error = %e, "device job failed; retrying");
            reschedule(journal, clock, job, RETRY_DELAY, &e).await
        }
    }
}

/// The receipt document with fiscal document number `fd`, if that document
/// is a receipt.
fn find_receipt(
    reg: &mut super::shtrih::Register,
    fd: u32,
) -> Result<Option<ClosedReceipt>, DeviceError> {
    match reg.find_document(fd)? {
        Some(doc) => Ok(ClosedReceipt::from_document(&doc)?),
        None => Ok(None),
    }
}

fn has_cash(stored: &StoredReceipt) -> bool {
    stored
        .receipt
        .payments
        .iter()
        .any(|p| p.kind == PaymentKind::Cash && p.amount.minor() > 0)
}

/// Local date and time of a receipt as printed: `DD.MM.YYYY HH:MM`.
fn local_time(stored: &StoredReceipt) -> String {
    chrono::DateTime::parse_from_rfc3339(&stored.created_at)
        .map(|t| t.format("%d.%m.%Y %H:%M").to_string())
        .unwrap_or_else(|_| stored.created_at.clone())
}

/// Print one receipt: the fiscal QR when fiscalized, the offline link otherwise.
async fn print_job(
    journal: &Journal,
    devices: &Devices,
    clock: &Arc<dyn Clock>,
    job: Job,
) -> Result<(), crate::journal::JournalError> {
    let stored = load(journal, &job).await?;
    let marker: PrintMarker = job.marker();
    let printer = devices.printer.as_ref().expect("checked by the caller");
    let settings = devices
        .settings
        .printer
        .clone()
        .expect("a printer device has settings");
    let copy = marker.copies > 0 && !marker.after_slip;
    // Cloud backend: a receipt not fiscalized yet waits up to the configured
    // time (the fiscalization wakes the job), then gets a slip.
    let slip = stored.fiscal.is_none();
    if slip && marker.copies == 0 {
        let accepted = chrono::DateTime::parse_from_rfc3339(&stored.created_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        let now = clock.now().timestamp_millis();
        if let BeforeFiscal::Wait(ms) = before_fiscal(now - accepted, settings.fiscal_wait) {
            return journal.reschedule(job.id, now + ms as i64, None).await;
        }
    }

    // 1. Is it ready? Nothing is sent to a printer without paper.
    if let Err(e) = printer
        .call(CALL_LIMIT, |p| {
            let s = p.printer.status()?;
            match s.problem() {
                Some(problem) => Err(DeviceError::NotReady(problem.to_string())),
                None => Ok(()),
            }
        })
        .await
    {
        return device_failed(journal, clock, &job, e, "printer").await;
    }

    // 2. The marker: from here on a retry prints a copy.
    journal
        .mark_job(
            job.id,
            &PrintMarker {
                copies: marker.copies + 1,
                last_was_slip: slip,
                after_slip: false,
            },
        )
        .await?;

    let (qr, caption) = match &stored.fiscal_qr {
        Some(qr) => (qr.clone(), "Fiscal receipt / Фискальный чек"),
        None => (
            stored.offline_url.clone(),
            "Your fiscal receipt will be at this link / Кассовый чек будет доступен по ссылке",
        ),
    };
    let doc = layout_receipt(
        &ReceiptPrint {
            header: &settings.header,
            number: stored.number,
            receipt: &stored.receipt,
            local_time: local_time(&stored),
            fiscal: stored.fiscal.as_ref(),
            qr: &qr,
            qr_caption: caption,
            copy,
            slip,
            footer: &settings.footer,
        },
        &super::manager::layout_options(&settings),
    );
    let drawer = devices.settings.drawer.clone();
    // The drawer opens with the first paper the buyer gets, not again for
    // the fiscal receipt that follows a slip.
    let kick = !copy
        && !marker.after_slip
        && drawer.via == DrawerVia::Printer
        && drawer.open_on_cash
        && has_cash(&stored);
    let printed = printer
        .call(CALL_LIMIT, move |p| {
            p.printer.print(&doc)?;
            if kick {
                let pin = super::manager::drawer_pin(drawer.pin);
                // The receipt is on paper: a drawer that does not open is
                // reported, not a reason to print the receipt again.
                if let Err(e) = p.printer.kick_drawer(pin, drawer.pulse) {
                    tracing::warn!(error = %e, "printer: could not open the cash drawer");
                }
            }
            Ok(())
        })
        .await;
    match printed {
        Ok(()) => {
            let note = if copy {
                format!(
                    "printed again, marked as a copy (copy {})",
                    marker.copies + 1
                )
            } else if slip {
                "slip printed (not a cash receipt; offline link)".to_string()
            } else {
                "printed".to_string()
            };
            journal.complete_job(job.id, "printer", note).await?;
            tracing::info!(receipt = %stored.id, number = stored.number, copy, "printer: receipt printed");
            Ok(())
        }
        Err(e) => device_failed(journal, clock, &job, e, "printer").await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_not_fiscalized_waits_out_the_wait_then_gets_a_slip() {
        let wait = Duration::from_millis(3000);
        assert_eq!(before_fiscal(0, wait), BeforeFiscal::Wait(3000));
        assert_eq!(before_fiscal(2999, wait), BeforeFiscal::Wait(1));
        assert_eq!(before_fiscal(3000, wait), BeforeFiscal::Slip);
        assert_eq!(before_fiscal(10, Duration::ZERO), BeforeFiscal::Slip);
        let m: PrintMarker = serde_json::from_str(r#"{"copies": 1, "after_slip": true}"#).unwrap();
        assert!(m.after_slip && !m.last_was_slip);
    }

    #[test]
    fn markers_round_trip_through_job_data() {
        let m: RegisterMarker = serde_json::from_str("{}").unwrap();
        assert_eq!(m.fd_before, None);
        let m: RegisterMarker = serde_json::from_str(r#"{"fd_before": 41}"#).unwrap();
        assert_eq!(m.fd_before, Some(41));
        let p: PrintMarker = serde_json::from_str(r#"{"copies": 2, "document_id": 1}"#).unwrap();
        assert_eq!(p.copies, 2);
    }
}
