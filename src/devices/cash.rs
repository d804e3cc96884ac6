//! Cash in / cash out on the register, exactly once.
//!
//! A cash operation is no fiscal document, so the FD-number reconciliation of
//! receipts does not apply. Instead the marker records, committed before the
//! command is sent, the shift number and the register's own shift counters
//! for that direction: the count of cash-ins (or outs) in the shift
//! (operation register 153/154) and their sum (money register 242/243;
//! javapos_shtrih `cmd/OperationRegister.java`, `cmd/CashRegister.java`).
//! Cash jobs run one at a time in acceptance order and nothing else of ours
//! moves those counters, so a later attempt that finds them one operation and
//! exactly this amount further knows the register did it; finding them
//! unchanged, it sends again. Anything else (the shift was closed in between,
//! the counters moved otherwise) cannot be decided safely: the job is parked
//! for an operator, never repeated blindly.

use super::manager::{CALL_LIMIT, Devices};
use super::runtime::DeviceError;
use super::shtrih::command::{money_register, operation_register};
use crate::clock::Clock;
use crate::domain::cash::{CashDirection, CashOperation};
use crate::journal::{Job, Journal, JournalError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The register's counters for one direction, in one shift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashCounters {
    pub shift: u32,
    pub count: u16,
    pub sum: u64,
}

impl crate::journal::JobMarker for CashMarker {}

/// The cash job's durable marker (in the job's data).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashMarker {
    /// The counters just before the command was (maybe) sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<CashCounters>,
}

/// What the register's counters say about an operation that may have been sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CashReconciled {
    /// The register did it.
    Done,
    /// It did not: send it.
    NotDone,
    /// Cannot tell: an operator must look.
    Unknown(String),
}

/// Pure: compare the counters now with the marker's.
pub fn reconcile_cash(
    before: Option<CashCounters>,
    now: CashCounters,
    amount: u64,
) -> CashReconciled {
    let Some(before) = before else {
        return CashReconciled::NotDone;
    };
    if before.shift != now.shift {
        return CashReconciled::Unknown(format!(
            "the shift changed from {} to {} since the operation may have been sent; check the register's shift {} report and retry or discard by hand",
            before.shift, now.shift, before.shift
        ));
    }
    if now.count == before.count && now.sum == before.sum {
        CashReconciled::NotDone
    } else if now.count == before.count.wrapping_add(1) && now.sum == before.sum + amount {
        CashReconciled::Done
    } else {
        CashReconciled::Unknown(format!(
            "the register's counters moved unexpectedly (count {} -> {}, sum {} -> {}); check the register's report",
            before.count, now.count, before.sum, now.sum
        ))
    }
}

fn registers(direction: CashDirection) -> (u8, u8) {
    match direction {
        CashDirection::In => (
            operation_register::CASH_INS_IN_SHIFT,
            money_register::CASH_IN_SHIFT,
        ),
        CashDirection::Out => (
            operation_register::CASH_OUTS_IN_SHIFT,
            money_register::CASH_OUT_SHIFT,
        ),
    }
}

/// Run one cash job on the register, exactly once.
pub(super) async fn cash_job(
    journal: &Journal,
    devices: &Devices,
    clock: &Arc<dyn Clock>,
    job: Job,
) -> Result<(), JournalError> {
    let Some(stored) = journal.get_cash(job.id).await? else {
        return Err(JournalError::NotFound(format!("cash {}", job.id)));
    };
    let op: CashOperation = stored.operation;
    let marker: CashMarker = serde_json::from_str(&job.data).unwrap_or_default();
    let register = devices.register.as_ref().expect("checked by the caller");
    let auto_open_shift = devices
        .settings
        .register
        .as_ref()
        .is_some_and(|r| r.auto_open_shift);
    let amount = op.amount.minor() as u64;
    let (count_reg, sum_reg) = registers(op.direction);

    // 1. Read the register's counters and reconcile with the marker.
    let before = marker.before;
    let read = register
        .call(CALL_LIMIT, move |d| {
            let reg = &mut d.register;
            let mut status = reg.status()?;
            if status.document_open {
                // A check left open by an interrupted receipt (its own job
                // re-sends it) or a stray one: it registered nothing.
                reg.cancel_check()?;
                status = reg.status()?;
            }
            let counters = |reg: &mut super::shtrih::Register, shift: u32| {
                Ok::<_, DeviceError>(CashCounters {
                    shift,
                    count: reg.operation_register(count_reg)?,
                    sum: reg.money_register(sum_reg)?,
                })
            };
            let now = counters(reg, status.shift_number)?;
            let verdict = reconcile_cash(before, now, amount);
            if verdict != CashReconciled::NotDone {
                return Ok((verdict, now));
            }
            match status.shift {
                super::shtrih::ShiftState::Open => {}
                super::shtrih::ShiftState::Closed if auto_open_shift => {
                    reg.open_shift()?;
                    status = reg.status()?;
                }
                super::shtrih::ShiftState::Closed => {
                    return Err(DeviceError::NotReady(
                        "the shift is closed: open it with POST /v1/shifts/open".into(),
                    ));
                }
                super::shtrih::ShiftState::Expired => {
                    return Err(DeviceError::NotReady(
                        "the shift is over 24 hours old: close it (Z report) with POST /v1/shifts/close"
                            .into(),
                    ));
                }
            }
            Ok((CashReconciled::NotDone, counters(reg, status.shift_number)?))
        })
        .await;
    let (verdict, now) = match read {
        Ok(x) => x,
        Err(e) => return failed(journal, clock, &job, e, false).await,
    };
    match verdict {
        CashReconciled::Done => {
            tracing::warn!(
                job = job.id,
                "register: cash operation found done after an interruption; not sent again"
            );
            return journal
                .cash_done(
                    job.id,
                    "done (found on the register after an interruption)".into(),
                )
                .await;
        }
        CashReconciled::Unknown(why) => {
            tracing::error!(
                job = job.id,
                why,
                "register: cannot tell whether a cash operation went through"
            );
            return journal.cash_parked(job.id, why).await;
        }
        CashReconciled::NotDone => {}
    }

    // 2. The marker, committed before the command goes out.
    journal
        .mark_job(job.id, &CashMarker { before: Some(now) })
        .await?;

    // 3. Send it; the counters must still be where the marker says.
    let direction = op.direction;
    let money = op.amount;
    let sent = register
        .call(CALL_LIMIT, move |d| {
            let reg = &mut d.register;
            let check = CashCounters {
                shift: reg.status()?.shift_number,
                count: reg.operation_register(count_reg)?,
                sum: reg.money_register(sum_reg)?,
            };
            if check != now {
                return Err(DeviceError::Link(
                    "the register's counters changed since they were read; reconciling".into(),
                ));
            }
            match direction {
                CashDirection::In => reg.cash_in(money)?,
                CashDirection::Out => reg.cash_out(money)?,
            }
            Ok(())
        })
        .await;
    match sent {
        Ok(()) => {
            tracing::info!(job = job.id, direction = direction.code(), amount = %money, "register: cash operation done");
            journal.cash_done(job.id, "done".into()).await
        }
        Err(e) => failed(journal, clock, &job, e, true).await,
    }
}

async fn failed(
    journal: &Journal,
    clock: &Arc<dyn Clock>,
    job: &Job,
    e: DeviceError,
    sending: bool,
) -> Result<(), JournalError> {
    match &e {
        // A refusal of the command itself (e.g. more cash out than the
        // drawer holds): the register did nothing.
        DeviceError::Rejected(m) if sending => {
            journal
                .cash_parked(
                    job.id,
                    format!("the register refused the cash operation: {m}"),
                )
                .await
        }
        DeviceError::NotReady(_) | DeviceError::Unavailable(_) => {
            journal
                .reschedule(job.id, clock.now().timestamp_millis(), Some(e.to_string()))
                .await
        }
        _ => {
            let at = clock.now().timestamp_millis() + Duration::from_secs(2).as_millis() as i64;
            journal.reschedule(job.id, at, Some(e.to_string())).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(shift: u32, count: u16, sum: u64) -> CashCounters {
        CashCounters { shift, count, sum }
    }

    #[test]
    fn counters_decide_done_not_done_or_ask_an_operator() {
        assert_eq!(
            reconcile_cash(None, c(1, 5, 900), 100),
            CashReconciled::NotDone
        );
        let before = Some(c(3, 2, 500));
        assert_eq!(
            reconcile_cash(before, c(3, 2, 500), 100),
            CashReconciled::NotDone
        );
        assert_eq!(
            reconcile_cash(before, c(3, 3, 600), 100),
            CashReconciled::Done
        );
        assert!(matches!(
            reconcile_cash(before, c(4, 0, 0), 100),
            CashReconciled::Unknown(_)
        ));
        assert!(matches!(
            reconcile_cash(before, c(3, 3, 650), 100),
            CashReconciled::Unknown(_)
        ));
    }

    #[test]
    fn the_marker_round_trips_through_job_data() {
        let m = CashMarker {
            before: Some(c(2, 1, 100)),
        };
        let text = serde_json::to_string(&m).unwrap();
        let back: CashMarker = serde_json::from_str(&format!(
            r#"{{"operation": {{"direction": "in", "amount": 5}}, {}"#,
            &text[1..]
        ))
        .unwrap();
        assert_eq!(back, m);
        let empty: CashMarker = serde_json::from_str(r#"{"operation": {}}"#).unwrap();
        assert_eq!(empty.before, None);
    }
}
