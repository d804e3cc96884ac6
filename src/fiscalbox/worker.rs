//! The FiscalBox worker: sends each journaled receipt (`fiscalbox` jobs,
//! oldest first, one at a time, so a refund always follows its sale) to the
//! box with the receipt's id as `uuid`, and delivers the payment providers'
//! confirms (`fiscalbox_confirm` jobs) once their receipt is fiscalized.
//!
//! Exactly once, through timeouts and reboots ([`reconcile`], pure): before a
//! receipt's first send, the box's receipt counter is committed to the job as
//! its marker. Every later attempt first reads `/order/last/`: the receipt
//! found there under its `uuid` is recorded, never sent again; if the box's
//! counter has not moved past the marker, nothing was written and it is sent
//! again. Every outcome is committed before the job is let go.

use super::client::{BoxClient, CallError};
use super::facts::{self, Code, Confirm, FiscalData, FiscalModuleCode, LastOrder, Provider};
use crate::clock::Clock;
use crate::domain::fiscal::FiscalAttributes;
use crate::journal::{Job, JobKind, JobMarker, Journal, StoredReceipt};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The longest the worker sleeps with nothing due (a new receipt wakes it).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// How often the worker reads the box's memory counters (`/info/`) for the
/// deadline model when no receipt send has read them meanwhile.
pub const CAPACITY_INTERVAL: Duration = Duration::from_secs(60);

/// A `fiscalbox` job's marker: the box's receipt counter, committed before
/// the receipt's first send.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BoxMarker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_seq: Option<i64>,
}

impl JobMarker for BoxMarker {}

/// What the status shows of the box link.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BoxStatus {
    /// The last call reached the box.
    pub online: bool,
    pub fiscalized: u64,
    pub confirms_delivered: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// The box's applet version, as its last fiscal reply said.
    pub applet_version: String,
}

#[derive(Clone, Debug)]
pub struct BoxWorkerConfig {
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub timezone: chrono_tz::Tz,
}

/// What to do with a receipt whose earlier attempt may have reached the box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconciled {
    /// The box has it: record these fiscal data, send nothing.
    Found(FiscalData),
    /// The box does not have it: send it (again).
    Send,
    /// The box wrote other receipts since the marker and its last order is
    /// not this one: send again with the same `uuid`.
    SendAfterOthers,
}

/// Decide from the job's marker (the box's receipt counter committed before
/// the first send, `None` before any send), the box's counter now and its
/// last order. Pure.
///
/// When the counter moved past the marker but the last order is another
/// (someone else used the box meanwhile), fiscald cannot see further back:
/// it sends again with the same `uuid`, relying on the box's idempotency by
/// `uuid` (**ASSUMED**, see `facts`), and logs it.
pub fn reconcile(
    marker: Option<i64>,
    box_seq: i64,
    last: Option<&LastOrder>,
    uuid: &str,
) -> Reconciled {
    if let Some(last) = last
        && last.order.uuid.as_deref() == Some(uuid)
    {
        return Reconciled::Found(last.result.clone());
    }
    match marker {
        Some(m) if m != box_seq => Reconciled::SendAfterOthers,
        _ => Reconciled::Send,
    }
}

/// Retry delay after `attempts` failures: base × 2^attempts, capped.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << attempts.min(20)).min(cap)
}

/// Fiscal data as the journal's fiscal attributes: `fiscal_drive_number` and
/// `kkt_reg_id` hold the terminal id, `fiscal_document_number` the receipt
/// count, `ofd_receipt_url` the Soliq link; the box reports no shift number
/// with a receipt (0).
pub fn attributes(f: &FiscalData) -> FiscalAttributes {
    FiscalAttributes {
        fiscal_document_number: f.receipt_count.max(0) as u64,
        fiscal_sign: f.fiscal_sign.clone(),
        fiscal_drive_number: f.terminal_id.clone(),
        kkt_reg_id: f.terminal_id.clone(),
        shift_number: 0,
        receipt_number_in_shift: 0,
        date_time: chrono::NaiveDateTime::parse_from_str(&f.date_time, facts::RECEIPT_TIME_FORMAT)
            .unwrap_or_else(|_| {
                tracing::warn!(
                    date_time = f.date_time,
                    receipt_count = f.receipt_count,
                    "FiscalBox receipt time unreadable; stored as unknown ({})",
                    facts::UNKNOWN_RECEIPT_TIME
                );
                chrono::NaiveDateTime::default()
            }),
        ofd_receipt_url: Some(f.qr_url.clone()),
    }
}

/// The box's fiscal data back from stored attributes (for replies).
pub fn fiscal_data(a: &FiscalAttributes, applet_version: &str) -> FiscalData {
    let date_time = a.date_time.format(facts::RECEIPT_TIME_FORMAT).to_string();
    FiscalData {
        terminal_id: a.fiscal_drive_number.clone(),
        receipt_count: a.fiscal_document_number as i64,
        qr_url: a.ofd_receipt_url.clone().unwrap_or_else(|| {
            facts::soliq_qr_url(
                &a.fiscal_drive_number,
                a.fiscal_document_number as i64,
                &date_time,
                &a.fiscal_sign,
            )
        }),
        date_time,
        fiscal_sign: a.fiscal_sign.clone(),
        applet_version: applet_version.to_string(),
        cash_box_number: None,
    }
}

struct Shared {
    journal: Journal,
    client: BoxClient,
    clock: Arc<dyn Clock>,
    config: BoxWorkerConfig,
    status: Arc<Mutex<BoxStatus>>,
    wake: Arc<Notify>,
    /// The box's memory counters as last read, for the deadline model.
    capacity: Arc<Mutex<Option<crate::deadlines::BoxCapacity>>>,
    /// When they were last read (clock milliseconds).
    capacity_read_at: Mutex<Option<i64>>,
}

/// A running worker.
pub struct BoxWorker {
    pub status: Arc<Mutex<BoxStatus>>,
    /// The box's memory counters as last read ([`CAPACITY_INTERVAL`]).
    pub capacity: Arc<Mutex<Option<crate::deadlines::BoxCapacity>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl BoxWorker {
    pub fn spawn(
        journal: Journal,
        client: BoxClient,
        clock: Arc<dyn Clock>,
        config: BoxWorkerConfig,
        wake: Arc<Notify>,
    ) -> BoxWorker {
        // Reachable until a call fails: `order/create` waits for the box.
        let status = Arc::new(Mutex::new(BoxStatus {
            online: true,
            ..BoxStatus::default()
        }));
        let capacity = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            journal,
            client,
            clock,
            config,
            status: status.clone(),
            wake,
            capacity: capacity.clone(),
            capacity_read_at: Mutex::new(None),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(shared, stopped));
        BoxWorker {
            status,
            capacity,
            stop,
            task,
        }
    }

    /// Stop; a job in hand finishes (bounded) and is recorded.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("FiscalBox worker did not stop within {grace:?}");
        }
    }
}

/// What one pass did.
enum Pass {
    /// Did something (or tried): look again at once.
    Worked,
    /// Nothing to do before this long (or a wake-up).
    Wait(Duration),
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let wait = match one_pass(&shared).await {
            Pass::Worked => continue,
            Pass::Wait(wait) => wait,
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

fn until(now: i64, at: i64) -> Duration {
    Duration::from_millis(u64::try_from(at - now).unwrap_or(0).max(1))
}

async fn one_pass(shared: &Shared) -> Pass {
    let now = shared.clock.now().timestamp_millis();
    let mut worked = false;
    let mut wait = IDLE_WAIT;
    // The oldest pending receipt, due or not: receipts go to the box strictly
    // in acceptance order, so none overtakes one whose reply was lost (its
    // reconciliation must find it as the box's last order) and a refund
    // never precedes its sale.
    match shared
        .journal
        .due_jobs(JobKind::Fiscalbox, i64::MAX, 1, vec![])
        .await
    {
        Ok(jobs) => {
            for job in jobs {
                if job.next_attempt_at <= now {
                    worked = true;
                    fiscalize(shared, &job).await;
                } else {
                    wait = wait.min(until(now, job.next_attempt_at));
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read FiscalBox jobs"),
    }
    match shared
        .journal
        .due_jobs(JobKind::FiscalboxConfirm, now, 8, vec![])
        .await
    {
        Ok(jobs) => {
            for job in jobs {
                worked = true;
                confirm(shared, &job).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read FiscalBox confirm jobs"),
    }
    if let Ok(Some(at)) = shared.journal.next_due_at(JobKind::FiscalboxConfirm).await {
        wait = wait.min(until(now, at));
    }
    // The memory counters for the deadline model, at a modest interval.
    let read_at = *shared.capacity_read_at.lock().expect("capacity lock");
    let interval = CAPACITY_INTERVAL.as_millis() as i64;
    match read_at {
        Some(at) if now - at < interval => wait = wait.min(until(now, at + interval)),
        _ => {
            // A failed read retries after the interval too (the link's own
            // state shows the outage).
            *shared.capacity_read_at.lock().expect("capacity lock") = Some(now);
            if let Ok(info) = shared.client.info().await {
                note_capacity(shared, &info, now);
            }
            wait = wait.min(CAPACITY_INTERVAL);
        }
    }
    if worked {
        Pass::Worked
    } else {
        Pass::Wait(wait)
    }
}

fn note_capacity(shared: &Shared, info: &facts::Info, now: i64) {
    *shared.capacity.lock().expect("capacity lock") = Some(info.capacity());
    *shared.capacity_read_at.lock().expect("capacity lock") = Some(now);
}

fn note_result(shared: &Shared, result: &Result<(), CallError>) {
    let mut s = shared.status.lock().expect("box status lock");
    match result {
        Ok(()) => {
            s.online = true;
        }
        Err(CallError::Unreachable(e)) => {
            s.online = false;
            s.failures += 1;
            s.last_error = Some(e.clone());
        }
        Err(e) => {
            s.online = true;
            s.failures += 1;
            s.last_error = Some(e.to_string());
        }
    }
}

async fn retry_later(shared: &Shared, job: &Job, error: String) {
    let delay = backoff(
        job.attempts,
        shared.config.retry_base,
        shared.config.retry_cap,
    );
    let at = shared.clock.now().timestamp_millis() + delay.as_millis() as i64;
    if let Err(e) = shared.journal.reschedule(job.id, at, Some(error)).await {
        tracing::warn!(job = job.id, error = %e, "cannot reschedule a FiscalBox job");
    }
}

fn local_time(shared: &Shared) -> String {
    shared
        .clock
        .now()
        .with_timezone(&shared.config.timezone)
        .format(facts::REQUEST_TIME_FORMAT)
        .to_string()
}

/// The Soliq link of a refund's original: the link the refund names when
/// it is one, else (an offline link) the original's once fiscalized.
async fn refund_link(shared: &Shared, r: &StoredReceipt) -> Result<Option<String>, String> {
    let Some(link) = r.receipt.uz.as_ref().and_then(|u| u.refund_of.clone()) else {
        return Ok(None);
    };
    if facts::parse_soliq_qr(&link).is_some() {
        return Ok(Some(link));
    }
    match shared.journal.find_by_link(link.clone()).await {
        Ok(Some(original)) => match original.fiscal_qr {
            Some(qr) => Ok(Some(qr)),
            None => Err(format!(
                "waiting for the original receipt {} to be fiscalized",
                original.number
            )),
        },
        Ok(None) => Err(format!("the original {link:?} is not in the journal")),
        Err(e) => Err(e.to_string()),
    }
}

async fn fiscalize(shared: &Shared, job: &Job) {
    let receipt = match shared.journal.get(job.receipt_id.clone()).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let _ = shared
                .journal
                .park(job.id, "the receipt is missing from the journal".into())
                .await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a receipt for the FiscalBox");
            return;
        }
    };
    let result = fiscalize_receipt(shared, job, &receipt).await;
    note_result(shared, &result.as_ref().map(|_| ()).map_err(Clone::clone));
    match result {
        Ok(f) => {
            let qr = f.qr_url.clone();
            match shared
                .journal
                .record_fiscalized(job.id, attributes(&f), qr, "fiscalbox")
                .await
            {
                Ok(()) => {
                    let mut st = shared.status.lock().expect("box status lock");
                    st.fiscalized += 1;
                    st.applet_version = f.applet_version.clone();
                    drop(st);
                    tracing::info!(receipt = receipt.number, seq = f.receipt_count, sign = %f.fiscal_sign, "fiscalized on the FiscalBox");
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record FiscalBox fiscal data; will reconcile")
                }
            }
        }
        Err(CallError::Unreachable(e)) => retry_later(shared, job, e).await,
        Err(CallError::Malformed(e)) => retry_later(shared, job, e).await,
        Err(CallError::Box(e)) => {
            let message = format!("FiscalBox error {}: {} {}", e.code, e.message, e.data);
            // The box refused this receipt: an operator must see it.
            let permanent = matches!(
                e.code(),
                Some(
                    Code::Validation
                        | Code::NotValidRefundInfo
                        | Code::CannotEncodeReceipt
                        | Code::FiscalModule(
                            FiscalModuleCode::NotEnoughCashForRefund
                                | FiscalModuleCode::NotEnoughCardForRefund
                                | FiscalModuleCode::NotEnoughVatForRefund
                        )
                )
            );
            if permanent {
                tracing::warn!(receipt = receipt.number, %message, "FiscalBox refused a receipt");
                let _ = shared.journal.park(job.id, message).await;
            } else {
                retry_later(shared, job, message).await;
            }
        }
    }
}

async fn fiscalize_receipt(
    shared: &Shared,
    job: &Job,
    receipt: &StoredReceipt,
) -> Result<FiscalData, CallError> {
    let uuid = receipt.id.clone();
    let marker = job.marker::<BoxMarker>().box_seq;
    let info = shared.client.info().await?;
    note_capacity(shared, &info, shared.clock.now().timestamp_millis());
    if marker.is_some() {
        let last = shared.client.last_order().await?;
        match reconcile(marker, info.current_receipt_seq, last.as_ref(), &uuid) {
            Reconciled::Found(f) => {
                tracing::info!(
                    receipt = receipt.number,
                    "found on the FiscalBox after a lost reply: not sent again"
                );
                return Ok(f);
            }
            Reconciled::SendAfterOthers => tracing::warn!(
                receipt = receipt.number,
                "the FiscalBox wrote other receipts since this one was sent; resending with the same uuid"
            ),
            Reconciled::Send => {}
        }
    } else {
        shared
            .journal
            .mark_job(
                job.id,
                &BoxMarker {
                    box_seq: Some(info.current_receipt_seq),
                },
            )
            .await
            .map_err(|e| CallError::Unreachable(format!("journal: {e}")))?;
    }
    let refund = receipt.receipt.kind == crate::domain::ReceiptKind::SaleReturn;
    let refund_qr = refund_link(shared, receipt)
        .await
        .map_err(CallError::Unreachable)?;
    let order = facts::order_from_receipt(
        &receipt.receipt,
        &uuid,
        receipt.number,
        &local_time(shared),
        refund_qr,
    );
    match shared.client.order(&order, refund).await {
        Err(CallError::Box(e))
            if e.code() == Some(Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen)) =>
        {
            // The box lost its shift (0x902D): open one and send again, as
            // the known clients do. Opening is harmless if someone else did.
            tracing::info!("FiscalBox shift not open: opening it");
            match shared.client.open_shift(&local_time(shared)).await {
                Ok(_) => {}
                Err(CallError::Box(e)) if e.code() == Some(Code::ZReportAlreadyOpen) => {}
                Err(other) => return Err(other),
            }
            shared.client.order(&order, refund).await
        }
        other => other,
    }
}

async fn confirm(shared: &Shared, job: &Job) {
    let data: serde_json::Value = serde_json::from_str(&job.data).unwrap_or_default();
    let provider = data
        .get("provider")
        .cloned()
        .and_then(|p| serde_json::from_value::<Provider>(p).ok());
    let id = data.get("id").and_then(|v| v.as_str()).map(str::to_string);
    let (Some(provider), Some(id)) = (provider, id) else {
        let _ = shared
            .journal
            .complete_job(
                job.id,
                "fiscalbox",
                "confirm dropped: its data is unreadable".into(),
            )
            .await;
        return;
    };
    let receipt = match shared.journal.get(job.receipt_id.clone()).await {
        Ok(Some(r)) => r,
        _ => return,
    };
    let Some(qr_code) = receipt.fiscal_qr.clone() else {
        // Not fiscalized yet: wait for it (not a failure).
        let at =
            shared.clock.now().timestamp_millis() + shared.config.retry_base.as_millis() as i64;
        let _ = shared.journal.reschedule(job.id, at, None).await;
        return;
    };
    let c = Confirm {
        provider,
        id: id.clone(),
        qr_code,
    };
    let result = shared
        .client
        .call(
            facts::Endpoint::PaymentConfirm(provider),
            Some(&c.body()),
            &[],
        )
        .await;
    note_result(shared, &result.as_ref().map(|_| ()).map_err(Clone::clone));
    match result {
        Ok(_) => {
            shared
                .status
                .lock()
                .expect("box status lock")
                .confirms_delivered += 1;
            let _ = shared
                .journal
                .complete_job(
                    job.id,
                    "fiscalbox",
                    format!("{} payment {id} confirmed", provider.name()),
                )
                .await;
        }
        Err(e) => retry_later(shared, job, e.to_string()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fiscalbox::facts::OrderRequest;

    fn fiscal(seq: i64) -> FiscalData {
        FiscalData {
            terminal_id: "UZ1".into(),
            receipt_count: seq,
            date_time: "20261129100000".into(),
            fiscal_sign: "000000000042".into(),
            applet_version: "0300".into(),
            qr_url: facts::soliq_qr_url("UZ1", seq, "20261129100000", "000000000042"),
            cash_box_number: None,
        }
    }

    fn last(uuid: &str, seq: i64) -> LastOrder {
        LastOrder {
            order: OrderRequest {
                uuid: Some(uuid.into()),
                ..OrderRequest::default()
            },
            result: fiscal(seq),
            is_refund: false,
        }
    }

    #[test]
    fn a_receipt_found_on_the_box_is_never_sent_again() {
        let l = last("r1", 8);
        assert_eq!(
            reconcile(Some(7), 8, Some(&l), "r1"),
            Reconciled::Found(fiscal(8))
        );
        // Not there, counter unchanged: nothing was written, send.
        assert_eq!(reconcile(Some(7), 7, None, "r1"), Reconciled::Send);
        assert_eq!(
            reconcile(Some(7), 7, Some(&last("r0", 7)), "r1"),
            Reconciled::Send
        );
        // Counter moved but the last is another's: send with the same uuid.
        assert_eq!(
            reconcile(Some(7), 9, Some(&last("r0", 9)), "r1"),
            Reconciled::SendAfterOthers
        );
        assert_eq!(reconcile(None, 7, None, "r1"), Reconciled::Send);
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Duration::from_millis(100);
        let c = Duration::from_secs(1);
        assert_eq!(backoff(0, b, c), b);
        assert_eq!(backoff(3, b, c), Duration::from_millis(800));
        assert_eq!(backoff(30, b, c), c);
    }

    #[test]
    fn an_unreadable_box_time_is_stored_as_the_unknown_time() {
        let mut f = fiscal(7);
        f.date_time = "29.11.2026 10:00".into();
        let a = attributes(&f);
        assert_eq!(
            a.date_time.format("%Y-%m-%dT%H:%M:%S").to_string(),
            facts::UNKNOWN_RECEIPT_TIME
        );
        f.date_time = "20261129100000".into();
        assert_eq!(
            attributes(&f)
                .date_time
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
            "2026-11-29T10:00:00"
        );
    }

    #[test]
    fn fiscal_data_survive_the_journal_attributes() {
        let f = fiscal(643);
        let back = fiscal_data(&attributes(&f), "0300");
        assert_eq!(back, f);
    }
}
