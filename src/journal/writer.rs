//! The single writer: owns the read-write connection and commits in batches.

use super::{Accepted, JournalError, NewReceipt, Options, StoredReceipt, migrations, read};
use crate::clock::Clock;
use crate::domain::ReceiptState;
use crate::domain::idempotency::{idempotency_key, offline_url};
use chrono::SecondsFormat;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

pub(super) type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

pub(super) enum Command {
    Accept(Box<NewReceipt>, Reply<Accepted>),
    Ping(Reply<()>),
    Shutdown,
}

pub(super) fn open_writer(options: &Options) -> Result<Connection, JournalError> {
    let mut conn = Connection::open(&options.path).map_err(|e| {
        JournalError::Unavailable(format!("cannot open {}: {e}", options.path.display()))
    })?;
    conn.busy_timeout(options.busy_timeout)?;
    // Spelled exactly: SQLite ignores an unknown pragma silently, so check it took.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Unavailable(format!(
            "{} cannot use WAL mode (got {mode}); put the journal on a local file system",
            options.path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if let Some(max) = options.max_bytes {
        let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", (max / page).max(1))?;
    }
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

/// Counters the writer keeps for health and status pages.
#[derive(Debug, Default)]
pub struct WriterMetrics {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Commands served by those commits (receipts, replays, pings).
    pub commands: AtomicU64,
    /// The largest batch committed at once.
    pub largest_batch: AtomicU64,
}

pub(super) fn run(
    mut conn: Connection,
    rx: crossbeam_channel::Receiver<Command>,
    options: Options,
    clock: Arc<dyn Clock>,
    metrics: Arc<WriterMetrics>,
) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else { break };
        let mut batch = vec![first];
        while batch.len() < options.batch_max {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        // A shutdown still serves everything queued before it.
        if let Some(pos) = batch.iter().position(|c| matches!(c, Command::Shutdown)) {
            stopping = true;
            batch.truncate(pos);
            while let Ok(cmd) = rx.try_recv() {
                if !matches!(cmd, Command::Shutdown) {
                    batch.push(cmd);
                }
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, batch, &options, clock.as_ref(), &metrics);
        }
    }
    // Fold the WAL back into the main file so a stopped daemon leaves one file.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    tracing::debug!("journal writer stopped");
}

enum Done {
    Accept(Reply<Accepted>, Box<Result<Accepted, JournalError>>),
    Ping(Reply<()>),
}

impl Done {
    /// Tell the caller its command did not stand: the transaction was lost.
    fn fail(self, err: &JournalError) {
        match self {
            Done::Accept(reply, _) => {
                let _ = reply.send(Err(clone_err(err)));
            }
            Done::Ping(reply) => {
                let _ = reply.send(Err(clone_err(err)));
            }
        }
    }
}

fn commit_batch(
    conn: &mut Connection,
    batch: Vec<Command>,
    options: &Options,
    clock: &dyn Clock,
    metrics: &WriterMetrics,
) {
    let size = batch.len();
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let err = JournalError::from(e);
            tracing::error!(error = %err, "journal: cannot begin a transaction");
            fail_all(batch, &err);
            return;
        }
    };
    let now = clock.now();
    let mut done = Vec::with_capacity(size);
    let mut pending = batch.into_iter();
    while let Some(cmd) = pending.next() {
        match cmd {
            Command::Accept(new, reply) => {
                let result = accept_one(&mut tx, *new, now, options);
                // SQLite rolls the whole transaction back on some errors (a
                // full disk, an I/O error): then nothing of the batch stands,
                // and every caller in it must hear so.
                if let Err(e) = &result
                    && tx.is_autocommit()
                {
                    tracing::error!(error = %e, batch = size, "journal: transaction rolled back; nothing of the batch was written");
                    let err = clone_err(e);
                    done.push(Done::Accept(reply, Box::new(result)));
                    done.into_iter().for_each(|d| d.fail(&err));
                    fail_all(pending.collect(), &err);
                    return;
                }
                done.push(Done::Accept(reply, Box::new(result)));
            }
            Command::Ping(reply) => done.push(Done::Ping(reply)),
            Command::Shutdown => {}
        }
    }
    match tx.commit() {
        Ok(()) => {
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            metrics.commands.fetch_add(size as u64, Ordering::Relaxed);
            metrics
                .largest_batch
                .fetch_max(size as u64, Ordering::Relaxed);
            for d in done {
                match d {
                    Done::Accept(reply, result) => {
                        let _ = reply.send(*result);
                    }
                    Done::Ping(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
        }
        Err(e) => {
            let err = JournalError::from(e);
            tracing::error!(error = %err, batch = size, "journal: commit failed; nothing of the batch was written");
            done.into_iter().for_each(|d| d.fail(&err));
        }
    }
}

fn fail_all(batch: Vec<Command>, err: &JournalError) {
    for cmd in batch {
        match cmd {
            Command::Accept(_, reply) => {
                let _ = reply.send(Err(clone_err(err)));
            }
            Command::Ping(reply) => {
                let _ = reply.send(Err(clone_err(err)));
            }
            Command::Shutdown => {}
        }
    }
}

fn clone_err(err: &JournalError) -> JournalError {
    match err {
        JournalError::Full => JournalError::Full,
        JournalError::Busy => JournalError::Busy,
        JournalError::Closed => JournalError::Closed,
        JournalError::Unavailable(message) => JournalError::Unavailable(message.clone()),
        other => JournalError::Unavailable(other.to_string()),
    }
}

/// Number and store one receipt inside the batch's transaction, within a
/// savepoint: on any error this request leaves no trace and the batch goes on.
fn accept_one(
    tx: &mut rusqlite::Transaction<'_>,
    new: NewReceipt,
    now: chrono::DateTime<chrono::Utc>,
    options: &Options,
) -> Result<Accepted, JournalError> {
    let sp = tx.savepoint()?;
    let fingerprint = new.receipt.fingerprint();
    if let Some(key) = &new.caller_key {
        let seen: Option<(String, String)> = sp
            .query_row(
                "SELECT receipt_id, fingerprint FROM caller_keys WHERE source = ?1 AND caller_key = ?2",
                params![new.source.code(), key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((receipt_id, seen_fingerprint)) = seen {
            let existing = read::load(&sp, &receipt_id)?.ok_or_else(|| {
                JournalError::Unavailable(format!("caller key names missing receipt {receipt_id}"))
            })?;
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

    let number: u64 = sp.query_row(
        "UPDATE counters SET value = value + 1 WHERE name = 'receipt_number' RETURNING value",
        [],
        |r| r.get(0),
    )?;
    let local = now.with_timezone(&options.timezone);
    let created_at = local.to_rfc3339_opts(SecondsFormat::Millis, false);
    let key = idempotency_key(number, &options.pin, new.receipt.total, local.naive_local());
    let url = offline_url(&options.offline_base_url, &key);
    let id = uuid::Uuid::now_v7().to_string();
    let body = serde_json::to_string(&new.receipt)
        .map_err(|e| JournalError::Unavailable(format!("cannot encode receipt: {e}")))?;

    sp.execute(
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
    sp.execute(
        "INSERT INTO receipt_events (receipt_id, at, actor, state, note) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, created_at, actor, ReceiptState::Accepted.code(), "journaled"],
    )?;
    if let Some(caller_key) = &new.caller_key {
        sp.execute(
            "INSERT INTO caller_keys (source, caller_key, receipt_id, fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![new.source.code(), caller_key, id, fingerprint, created_at],
        )?;
    }
    sp.commit()?;
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
        history: vec![super::Event {
            at: created_at,
            actor,
            state: ReceiptState::Accepted,
            note: Some("journaled".into()),
        }],
    }))
}
