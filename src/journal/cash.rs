//! Cash operations (cash in / cash out) in the journal: each is one outbox
//! job of kind [`JOB_CASH`] with no receipt, its operation, caller key and
//! progress marker in the job's data. Journaled before the reply, run once on
//! the register by the device worker, visible (`GET /v1/cash/{id}`) until
//! done or parked for an operator.

use super::writer::Ctx;
use super::{Journal, JournalError, WRITE_TIMEOUT};
use crate::domain::cash::CashOperation;
use chrono::SecondsFormat;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Put cash into or take it out of the drawer on the register.
pub const JOB_CASH: super::JobKind = super::JobKind::Cash;

/// A cash operation as the journal holds it.
#[derive(Clone, Debug, Serialize)]
pub struct StoredCash {
    pub id: i64,
    pub operation: CashOperation,
    pub caller_key: Option<String>,
    /// `pending`, `done` or `parked`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What [`Journal::accept_cash`] did.
#[derive(Clone, Debug)]
pub enum CashAccepted {
    Created(StoredCash),
    /// The caller's key was seen before with the same operation.
    Replayed(StoredCash),
}

fn stamp(ctx: &Ctx<'_>) -> String {
    ctx.now
        .with_timezone(&ctx.options.timezone)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn load(c: &Connection, id: i64) -> Result<Option<StoredCash>, JournalError> {
    let row: Option<(String, String, u32, Option<String>, String, String)> = c
        .query_row(
            "SELECT data, state, attempts, last_error, created_at, updated_at FROM jobs WHERE id = ?1 AND kind = ?2",
            params![id, JOB_CASH],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((data, state, attempts, last_error, created_at, updated_at)) = row else {
        return Ok(None);
    };
    let data: serde_json::Value =
        serde_json::from_str(&data).map_err(|e| JournalError::Unavailable(e.to_string()))?;
    let operation = serde_json::from_value(data["operation"].clone())
        .map_err(|e| JournalError::Unavailable(format!("cash job {id}: {e}")))?;
    Ok(Some(StoredCash {
        id,
        operation,
        caller_key: data["caller_key"].as_str().map(str::to_string),
        state,
        attempts,
        last_error,
        created_at,
        updated_at,
    }))
}

fn accept(
    c: &Connection,
    ctx: &Ctx<'_>,
    op: CashOperation,
    caller_key: Option<String>,
) -> Result<CashAccepted, JournalError> {
    let body = serde_json::to_value(&op).map_err(|e| JournalError::Unavailable(e.to_string()))?;
    if let Some(key) = &caller_key {
        let seen: Option<i64> = c
            .query_row(
                "SELECT id FROM jobs WHERE kind = ?1 AND json_extract(data, '$.caller_key') = ?2",
                params![JOB_CASH, key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = seen {
            let existing =
                load(c, id)?.ok_or_else(|| JournalError::NotFound(format!("cash {id}")))?;
            return if existing.operation == op {
                Ok(CashAccepted::Replayed(existing))
            } else {
                Err(JournalError::Conflict {
                    source_name: "cash",
                    caller_key: key.clone(),
                    existing_id: id.to_string(),
                    existing_number: id as u64,
                })
            };
        }
    }
    let at = stamp(ctx);
    let data = serde_json::json!({"operation": body, "caller_key": caller_key});
    c.prepare_cached(
        "INSERT INTO jobs (kind, receipt_id, state, next_attempt_at, data, created_at, updated_at)
         VALUES (?1, NULL, 'pending', 0, ?2, ?3, ?3)",
    )?
    .execute(params![JOB_CASH, data.to_string(), at])?;
    let id = c.last_insert_rowid();
    let stored = load(c, id)?.ok_or_else(|| JournalError::NotFound(format!("cash {id}")))?;
    Ok(CashAccepted::Created(stored))
}

fn finish(
    c: &Connection,
    ctx: &Ctx<'_>,
    id: i64,
    state: &str,
    note: &str,
) -> Result<(), JournalError> {
    let at = stamp(ctx);
    let (attempts, error) = if state == super::JobState::Parked.as_str() {
        (1, Some(note))
    } else {
        (0, None)
    };
    let n = c.execute(
        "UPDATE jobs SET state = ?2, attempts = attempts + ?3, last_error = ?4,
                data = json_set(data, '$.result', ?5), updated_at = ?6
         WHERE id = ?1 AND kind = ?7",
        params![id, state, attempts, error, note, at, JOB_CASH],
    )?;
    if n == 0 {
        return Err(JournalError::NotFound(format!("cash {id}")));
    }
    Ok(())
}

impl Journal {
    /// Journal a cash operation. Returns only after the commit is durable.
    pub async fn accept_cash(
        &self,
        op: CashOperation,
        caller_key: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<CashAccepted, JournalError> {
        let accepted = self
            .apply(timeout, move |c, ctx| accept(c, ctx, op, caller_key))
            .await?;
        if matches!(accepted, CashAccepted::Created(_)) {
            self.outbox.committed();
        }
        Ok(accepted)
    }

    /// The register did it: the job is done, `note` says how.
    pub async fn cash_done(&self, id: i64, note: String) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            finish(c, ctx, id, super::JobState::Done.as_str(), &note)
        })
        .await
    }

    /// A refusal or an undecidable state: an operator must look.
    pub async fn cash_parked(&self, id: i64, message: String) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            finish(c, ctx, id, super::JobState::Parked.as_str(), &message)
        })
        .await
    }

    pub async fn get_cash(&self, id: i64) -> Result<Option<StoredCash>, JournalError> {
        self.read(move |r| r.with_conn(|c| load(c, id))).await
    }
}
