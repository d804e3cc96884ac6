//! The writer's operations: every change to the journal is one of these, run
//! by the writer thread inside the batch's transaction. The outbox (`jobs`) is
//! a general durable queue: a job has a kind, an optional receipt, a state
//! (`pending` until `next_attempt_at`, then `done`, `parked` for an operator,
//! or `cancelled`), attempts, the last error, and kind-specific JSON data.

use super::writer::Ctx;
use super::{Accepted, Event, JournalError, NewReceipt, PrintView, StoredReceipt, SyncView, read};
use crate::domain::ReceiptState;
use crate::domain::fiscal::FiscalAttributes;
use crate::domain::idempotency::{idempotency_key, offline_url};
use chrono::SecondsFormat;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// What an outbox job does: a closed set, stored as its `as_str` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Fiscalize a receipt at the cloud processing.
    Fiscalize,
    /// Fiscalize (register and print) a receipt on the fiscal register.
    Register,
    /// Print a receipt on the ESC/POS printer.
    Print,
    /// Fiscalize a receipt on the FiscalBox (Uzbekistan).
    Fiscalbox,
    /// Deliver a QR payment provider's `_confirm` through the FiscalBox once
    /// the paid receipt is fiscalized; data `{provider, id, qr_code}`.
    FiscalboxConfirm,
    /// Cash in or out on the register (no receipt; see `journal::cash`).
    Cash,
}

/// Where an outbox job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Done,
    Parked,
    Cancelled,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Fiscalize,
        JobKind::Register,
        JobKind::Print,
        JobKind::Fiscalbox,
        JobKind::FiscalboxConfirm,
        JobKind::Cash,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Fiscalize => "fiscalize",
            JobKind::Register => "register",
            JobKind::Print => "print",
            JobKind::Fiscalbox => "fiscalbox",
            JobKind::FiscalboxConfirm => "fiscalbox_confirm",
            JobKind::Cash => "cash",
        }
    }
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Pending,
        JobState::Done,
        JobState::Parked,
        JobState::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Done => "done",
            JobState::Parked => "parked",
            JobState::Cancelled => "cancelled",
        }
    }
}

macro_rules! sql_text_enum {
    ($t:ty) => {
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $t {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = v.as_str()?;
                <$t>::ALL
                    .into_iter()
                    .find(|k| k.as_str() == text)
                    .ok_or_else(|| {
                        rusqlite::types::FromSqlError::Other(
                            format!("unknown {} {text:?}", stringify!($t)).into(),
                        )
                    })
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
sql_text_enum!(JobKind);
sql_text_enum!(JobState);

/// A job's durable progress marker (its `data`), typed per kind.
pub trait JobMarker: Serialize + serde::de::DeserializeOwned + Default {}

/// The job kinds that fiscalize a receipt; a receipt has exactly one.
pub(super) const FISCAL_JOBS: &str = "('fiscalize', 'register', 'fiscalbox')";

/// Run a statement through the connection's statement cache: the writer runs
/// the same few statements for every receipt.
fn exec(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<usize, JournalError> {
    Ok(c.prepare_cached(sql)?.execute(params)?)
}

fn stamp(ctx: &Ctx<'_>) -> String {
    ctx.now
        .with_timezone(&ctx.options.timezone)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn event(
    c: &Connection,
    receipt_id: &str,
    at: &str,
    actor: &str,
    state: ReceiptState,
    note: &str,
) -> Result<(), JournalError> {
    exec(
        c,
        "INSERT INTO receipt_events (receipt_id, at, actor, state, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![receipt_id, at, actor, state.code(), note],
    )?;
    Ok(())
}

fn set_state(
    c: &Connection,
    receipt_id: &str,
    at: &str,
    state: ReceiptState,
) -> Result<(), JournalError> {
    exec(
        c,
        "UPDATE receipts SET state = ?2, updated_at = ?3 WHERE id = ?1",
        params![receipt_id, state.code(), at],
    )?;
    Ok(())
}

/// Number and store one receipt, with its first event, its caller key and its
/// fiscalization job.
pub(super) fn accept(
    c: &Connection,
    ctx: &Ctx<'_>,
    new: NewReceipt,
    (body, fingerprint): (String, String),
) -> Result<Accepted, JournalError> {
    let options = ctx.options;
    if let Some(key) = &new.caller_key {
        let seen: Option<(String, String)> = c
            .query_row(
                "SELECT receipt_id, fingerprint FROM caller_keys WHERE source = ?1 AND caller_key = ?2",
                params![new.source.code(), key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((receipt_id, seen_fingerprint)) = seen {
            // Keys outlive their receipts: one archived by retention is
            // still that key's receipt, never a new one.
            let Some(existing) = read::load(c, &receipt_id)? else {
                return Err(JournalError::ArchivedKey {
                    source_name: new.source.code(),
                    caller_key: key.clone(),
                    receipt_id,
                });
            };
            return if seen_fingerprint == fingerprint {
                Ok(Accepted::Replayed(existing))
            } else {
                Err(JournalError::Conflict {
                    source_name: new.source.code(),
                    caller_key: key.clone(),
                    existing_id: existing.id,
                    existing_number: existing.number,
                })
            };
        }
    }

    if let Some(refund_of) = new.receipt.uz.as_ref().and_then(|u| u.refund_of.as_deref()) {
        check_refund_bound(c, refund_of, &new.receipt)?;
    }
    let number: u64 = c
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'receipt_number' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?;
    let local = ctx.now.with_timezone(&options.timezone);
    let created_at = stamp(ctx);
    let key = idempotency_key(number, &options.pin, new.receipt.total, local.naive_local());
    let url = offline_url(&options.offline_base_url, &key);
    let id = uuid::Uuid::now_v7().to_string();

    exec(
        c,
        "INSERT INTO receipts (number, id, source, state, idempotency_key, offline_url, total_minor,
                               fingerprint, body, caller_key, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            number,
            id,
            new.source.code(),
            ReceiptState::Accepted.code(),
            key,
            url,
            new.receipt.total.minor(),
            fingerprint,
            body,
            new.caller_key,
            created_at,
        ],
    )?;
    let actor = format!("api:{}", new.source.code());
    event(
        c,
        &id,
        &created_at,
        &actor,
        ReceiptState::Accepted,
        "journaled",
    )?;
    if let Some(caller_key) = &new.caller_key {
        exec(
            c,
            "INSERT INTO caller_keys (source, caller_key, receipt_id, fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![new.source.code(), caller_key, id, fingerprint, created_at],
        )?;
    }
    insert_job(c, options.fiscal_job, &id, &created_at)?;
    let print = if options.print_on_accept {
        insert_job(c, JobKind::Print, &id, &created_at)?;
        Some(PrintView {
            job_state: JobState::Pending,
            attempts: 0,
            last_error: None,
            copies: 0,
        })
    } else {
        None
    };
    Ok(Accepted::Created(StoredReceipt {
        id,
        number,
        source: new.source,
        state: ReceiptState::Accepted,
        idempotency_key: key,
        offline_url: url,
        caller_key: new.caller_key,
        created_at: created_at.clone(),
        updated_at: created_at.clone(),
        receipt: new.receipt,
        fiscal: None,
        fiscal_qr: None,
        print,
        sync: Some(SyncView {
            kind: options.fiscal_job,
            job_state: JobState::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: 0,
            document_id: None,
        }),
        history: vec![Event {
            at: created_at,
            actor,
            state: ReceiptState::Accepted,
            note: Some("journaled".into()),
        }],
    }))
}

/// A refund names its original by a link the POS was given for it (the
/// Soliq QR once the box fiscalized it, or the offline link before): find
/// the original and every earlier refund of it, and let the domain rule
/// (`domain::uz::check_refund`) judge. It runs here, inside the accept
/// transaction, because it depends on what is committed: two refunds of the
/// same sale racing each other are judged one after the other.
fn check_refund_bound(
    c: &Connection,
    refund_of: &str,
    refund: &crate::domain::Receipt,
) -> Result<(), JournalError> {
    let Some(original_id) = read::find_by_link(c, refund_of)? else {
        return Err(JournalError::Refused(vec![crate::domain::Violation::new(
            "/uz/refund_of",
            "original_known",
            format!("no receipt of this till has the link {refund_of:?}"),
        )]));
    };
    let original = loaded(c, &original_id)?;
    if original.receipt.kind != crate::domain::ReceiptKind::Sale {
        return Err(JournalError::Refused(vec![crate::domain::Violation::new(
            "/uz/refund_of",
            "refund_of_sale",
            "the receipt named is not a sale",
        )]));
    }
    let links: Vec<String> = std::iter::once(original.offline_url.clone())
        .chain(original.fiscal_qr.clone())
        .chain(
            original
                .fiscal
                .as_ref()
                .and_then(|f| f.ofd_receipt_url.clone()),
        )
        .collect();
    let mut earlier = Vec::new();
    let mut stmt = c.prepare_cached(
        "SELECT body FROM receipts WHERE json_extract(body, '$.uz.refund_of') = ?1 AND state != 'discarded'",
    )?;
    let mut seen = std::collections::HashSet::new();
    for link in &links {
        if !seen.insert(link.clone()) {
            continue;
        }
        let bodies = stmt.query_map([link], |r| r.get::<_, String>(0))?;
        for body in bodies {
            let r: crate::domain::Receipt = serde_json::from_str(&body?)
                .map_err(|e| JournalError::Unavailable(format!("stored receipt: {e}")))?;
            earlier.push(r.items);
        }
    }
    let v = crate::domain::uz::check_refund(&original.receipt.items, &earlier, &refund.items);
    if v.is_empty() {
        Ok(())
    } else {
        Err(JournalError::Refused(v))
    }
}

/// Queue (once per receipt) the delivery of a payment provider's confirm for
/// `receipt_id`; a repeat of the same confirm is the same job.
pub(super) fn queue_confirm(
    c: &Connection,
    ctx: &Ctx<'_>,
    receipt_id: &str,
    data: &serde_json::Value,
) -> Result<bool, JournalError> {
    let at = stamp(ctx);
    let n = exec(
        c,
        "INSERT OR IGNORE INTO jobs (kind, receipt_id, state, next_attempt_at, data, created_at, updated_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5)",
        params![JobKind::FiscalboxConfirm, receipt_id, JobState::Pending, data.to_string(), at],
    )?;
    if n == 1 {
        let state = receipt_state(c, receipt_id)?;
        event(
            c,
            receipt_id,
            &at,
            "fiscalbox",
            state,
            "payment confirm queued",
        )?;
    }
    Ok(n == 1)
}

/// The processing took the receipt as document `document_id`.
pub(super) fn record_submitted(
    c: &Connection,
    ctx: &Ctx<'_>,
    job_id: i64,
    document_id: u64,
) -> Result<(), JournalError> {
    let at = stamp(ctx);
    let receipt_id = job_receipt(c, job_id)?;
    exec(
        c,
        "UPDATE jobs SET data = json_set(data, '$.document_id', ?2), last_error = NULL, updated_at = ?3 WHERE id = ?1",
        params![job_id, document_id, at],
    )?;
    let state = receipt_state(c, &receipt_id)?;
    if state == ReceiptState::Accepted {
        set_state(c, &receipt_id, &at, ReceiptState::Submitted)?;
        event(
            c,
            &receipt_id,
            &at,
            "sync",
            ReceiptState::Submitted,
            &format!("registered as document {document_id}"),
        )?;
    }
    Ok(())
}

/// The processing fiscalized the receipt: store its attributes and QR string.
pub(super) fn record_fiscalized(
    c: &Connection,
    ctx: &Ctx<'_>,
    job_id: i64,
    attrs: &FiscalAttributes,
    qr: &str,
    actor: &str,
) -> Result<(), JournalError> {
    let at = stamp(ctx);
    let receipt_id = job_receipt(c, job_id)?;
    let fiscal =
        serde_json::to_string(attrs).map_err(|e| JournalError::Unavailable(e.to_string()))?;
    exec(
        c,
        "UPDATE receipts SET state = ?2, fiscal = ?3, fiscal_qr = ?4, updated_at = ?5 WHERE id = ?1",
        params![receipt_id, ReceiptState::Fiscalized.code(), fiscal, qr, at],
    )?;
    exec(
        c,
        "UPDATE jobs SET state = ?2, last_error = NULL, updated_at = ?3 WHERE id = ?1",
        params![job_id, JobState::Done, at],
    )?;
    let note = format!(
        "FD {} FP {} FN {}",
        attrs.fiscal_document_number, attrs.fiscal_sign, attrs.fiscal_drive_number
    );
    event(c, &receipt_id, &at, actor, ReceiptState::Fiscalized, &note)?;
    // Cloud backend: a print job waiting for this fiscalization runs now;
    // one that printed a slip prints the fiscal receipt (not as a copy:
    // `after_slip` tells the printer the last print was the slip).
    exec(
        c,
        "UPDATE jobs SET next_attempt_at = 0 WHERE receipt_id = ?1 AND kind = ?2 AND state = ?3",
        params![receipt_id, JobKind::Print, JobState::Pending],
    )?;
    if ctx.options.print_after_slip {
        let n = exec(
            c,
            "UPDATE jobs SET state = ?3, next_attempt_at = 0, last_error = NULL, updated_at = ?4,
                    data = json_set(data, '$.after_slip', json('true'))
             WHERE receipt_id = ?1 AND kind = ?2 AND state = ?5
               AND json_extract(data, '$.last_was_slip') = 1",
            params![
                receipt_id,
                JobKind::Print,
                JobState::Pending,
                at,
                JobState::Done
            ],
        )?;
        if n > 0 {
            event(
                c,
                &receipt_id,
                &at,
                "printer",
                ReceiptState::Fiscalized,
                "the fiscal receipt follows the slip",
            )?;
        }
    }
    if (actor == "register" || actor == "fiscalbox") && ctx.options.print_after_register {
        // An operator may have asked for a print already: one job per receipt.
        exec(
            c,
            "INSERT OR IGNORE INTO jobs (kind, receipt_id, state, next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?4)",
            params![JobKind::Print, receipt_id, JobState::Pending, at],
        )?;
    }
    Ok(())
}

/// Merge a JSON object into a job's data.
pub(super) fn mark_job(
    c: &Connection,
    ctx: &Ctx<'_>,
    job_id: i64,
    patch: &serde_json::Value,
) -> Result<(), JournalError> {
    let n = exec(
        c,
        "UPDATE jobs SET data = json_patch(data, ?2), updated_at = ?3 WHERE id = ?1",
        params![job_id, patch.to_string(), stamp(ctx)],
    )?;
    if n == 0 {
        return Err(JournalError::NotFound(format!("job {job_id}")));
    }
    Ok(())
}

/// A job is done without changing its receipt's state; the history says what happened.
pub(super) fn complete_job(
    c: &Connection,
    ctx: &Ctx<'_>,
    job_id: i64,
    actor: &str,
    note: &str,
) -> Result<(), JournalError> {
    let at = stamp(ctx);
    let receipt_id = job_receipt(c, job_id)?;
    exec(
        c,
        "UPDATE jobs SET state = ?2, last_error = NULL, updated_at = ?3 WHERE id = ?1",
        params![job_id, JobState::Done, at],
    )?;
    let state = receipt_state(c, &receipt_id)?;
    event(c, &receipt_id, &at, actor, state, note)?;
    Ok(())
}

fn insert_job(
    c: &Connection,
    kind: JobKind,
    receipt_id: &str,
    at: &str,
) -> Result<(), JournalError> {
    exec(
        c,
        "INSERT INTO jobs (kind, receipt_id, state, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?4)",
        params![kind, receipt_id, JobState::Pending, at],
    )?;
    Ok(())
}

/// Try the job again at `next_attempt_at` (unix ms). `error` counts as a
/// failed attempt; `None` is a plain wait (a document still processing).
pub(super) fn reschedule(
    c: &Connection,
    ctx: &Ctx<'_>,
    job_id: i64,
    next_attempt_at: i64,
    error: Option<&str>,
) -> Result<(), JournalError> {
    let at = stamp(ctx);
    match error {
        Some(error) => exec(
        c,
            "UPDATE jobs SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'pending'",
            params![job_id, error, next_attempt_at, at],
        )?,
        None => exec(
        c,
            "UPDATE jobs SET next_attempt_at = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'pending'",
            params![job_id, next_attempt_at, at],
        )?,
    };
    Ok(())
}

/// A permanent failure an operator must see: the receipt becomes `rejected`
/// and its job waits for `retry` or `discard`.
pub(super) fn park(
    c: &Connection,
    ctx: &Ctx<'_>,
    job_id: i64,
    message: &str,
) -> Result<(), JournalError> {
    let at = stamp(ctx);
    let receipt_id = job_receipt(c, job_id)?;
    exec(
        c,
        "UPDATE jobs SET state = ?2, attempts = attempts + 1, last_error = ?3, updated_at = ?4 WHERE id = ?1",
        params![job_id, JobState::Parked, message, at],
    )?;
    set_state(c, &receipt_id, &at, ReceiptState::Rejected)?;
    let kind: JobKind = c.query_row("SELECT kind FROM jobs WHERE id = ?1", [job_id], |r| {
        r.get(0)
    })?;
    let actor = match kind {
        JobKind::Register => "register",
        JobKind::Fiscalbox | JobKind::FiscalboxConfirm => "fiscalbox",
        _ => "sync",
    };
    event(c, &receipt_id, &at, actor, ReceiptState::Rejected, message)?;
    Ok(())
}

/// Operator: send a rejected receipt again. To the cloud from scratch (a new
/// registration with the same idempotency key); to the register with its
/// exactly-once marker kept, so the retry first checks whether the register
/// has the receipt after all.
pub(super) fn operator_retry(
    c: &Connection,
    ctx: &Ctx<'_>,
    receipt_id: &str,
) -> Result<StoredReceipt, JournalError> {
    let at = stamp(ctx);
    require_state(c, receipt_id, ReceiptState::Rejected, "retry")?;
    exec(
        c,
        &format!(
            "UPDATE jobs SET state = ?2, next_attempt_at = 0, updated_at = ?3,
                    data = CASE WHEN kind IN ('register', 'fiscalbox') THEN data ELSE '{{}}' END
             WHERE receipt_id = ?1 AND kind IN {FISCAL_JOBS}"
        ),
        params![receipt_id, JobState::Pending, at],
    )?;
    set_state(c, receipt_id, &at, ReceiptState::Accepted)?;
    event(
        c,
        receipt_id,
        &at,
        "operator",
        ReceiptState::Accepted,
        "retry requested",
    )?;
    loaded(c, receipt_id)
}

/// Operator: print a receipt (again). A receipt printed before is printed
/// marked as a copy (its print job's `copies` is above 0); one waiting to be
/// printed is left as it is.
pub(super) fn operator_print(
    c: &Connection,
    ctx: &Ctx<'_>,
    receipt_id: &str,
) -> Result<StoredReceipt, JournalError> {
    let at = stamp(ctx);
    let state = receipt_state(c, receipt_id)?;
    if super::retention::being_archived(c, receipt_id)? {
        // Its chunk is on its way to the archive file this very moment.
        return Err(JournalError::Busy);
    }
    // A receipt the register fiscalizes is printed with its fiscal QR, so
    // only once the register has it.
    let on_register: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE receipt_id = ?1 AND kind = ?2)",
        params![receipt_id, JobKind::Register],
        |r| r.get(0),
    )?;
    if on_register && state != ReceiptState::Fiscalized {
        return Err(JournalError::WrongState {
            action: "print",
            state,
            wanted: ReceiptState::Fiscalized,
        });
    }
    let job: Option<JobState> = c
        .query_row(
            "SELECT state FROM jobs WHERE receipt_id = ?1 AND kind = ?2",
            params![receipt_id, JobKind::Print],
            |r| r.get(0),
        )
        .optional()?;
    let note = match job {
        Some(JobState::Pending) => return loaded(c, receipt_id),
        Some(_) => {
            exec(
                c,
                "UPDATE jobs SET state = ?3, next_attempt_at = 0, last_error = NULL, updated_at = ?4
                 WHERE receipt_id = ?1 AND kind = ?2",
                params![receipt_id, JobKind::Print, JobState::Pending, at],
            )?;
            "reprint requested (printed as a copy)"
        }
        None => {
            insert_job(c, JobKind::Print, receipt_id, &at)?;
            "print requested"
        }
    };
    event(c, receipt_id, &at, "operator", state, note)?;
    loaded(c, receipt_id)
}

/// Operator: give up on a rejected receipt, with the reason kept in its history.
pub(super) fn operator_discard(
    c: &Connection,
    ctx: &Ctx<'_>,
    receipt_id: &str,
    reason: &str,
) -> Result<StoredReceipt, JournalError> {
    let at = stamp(ctx);
    require_state(c, receipt_id, ReceiptState::Rejected, "discard")?;
    exec(
        c,
        &format!(
            "UPDATE jobs SET state = ?2, updated_at = ?3 WHERE receipt_id = ?1 AND kind IN {FISCAL_JOBS}"
        ),
        params![receipt_id, JobState::Cancelled, at],
    )?;
    set_state(c, receipt_id, &at, ReceiptState::Discarded)?;
    event(
        c,
        receipt_id,
        &at,
        "operator",
        ReceiptState::Discarded,
        reason,
    )?;
    loaded(c, receipt_id)
}

pub(super) fn save_secret(
    c: &Connection,
    ctx: &Ctx<'_>,
    name: &str,
    value: Option<&str>,
    expires_at: Option<i64>,
) -> Result<(), JournalError> {
    match value {
        Some(value) => exec(
        c,
            "INSERT INTO secrets (name, value, expires_at, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
                                             updated_at = excluded.updated_at",
            params![name, value, expires_at, stamp(ctx)],
        )?,
        None => c.execute("DELETE FROM secrets WHERE name = ?1", [name])?,
    };
    Ok(())
}

fn job_receipt(c: &Connection, job_id: i64) -> Result<String, JournalError> {
    c.query_row("SELECT receipt_id FROM jobs WHERE id = ?1", [job_id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| JournalError::NotFound(format!("job {job_id}")))
}

fn receipt_state(c: &Connection, receipt_id: &str) -> Result<ReceiptState, JournalError> {
    let text: Option<String> = c
        .query_row(
            "SELECT state FROM receipts WHERE id = ?1",
            [receipt_id],
            |r| r.get(0),
        )
        .optional()?;
    let text = text.ok_or_else(|| JournalError::NotFound(format!("receipt {receipt_id:?}")))?;
    ReceiptState::from_code(&text)
        .ok_or_else(|| JournalError::Unavailable(format!("unknown state {text:?}")))
}

fn require_state(
    c: &Connection,
    receipt_id: &str,
    wanted: ReceiptState,
    action: &'static str,
) -> Result<(), JournalError> {
    let state = receipt_state(c, receipt_id)?;
    if state != wanted {
        return Err(JournalError::WrongState {
            action,
            state,
            wanted,
        });
    }
    Ok(())
}

fn loaded(c: &Connection, receipt_id: &str) -> Result<StoredReceipt, JournalError> {
    read::load(c, receipt_id)?
        .ok_or_else(|| JournalError::NotFound(format!("receipt {receipt_id:?}")))
}
