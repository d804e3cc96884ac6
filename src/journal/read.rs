//! Read queries, on read-only connections that run beside the writer (WAL).

use super::{Event, JournalError, StoredReceipt};
use crate::domain::{ReceiptState, Source};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Most idle read connections kept open.
const POOL_MAX: usize = 8;

pub(super) struct Reader {
    path: PathBuf,
    busy_timeout: Duration,
    pool: Mutex<Vec<Connection>>,
}

/// One page of a listing.
#[derive(Debug, Serialize)]
pub struct Page {
    pub receipts: Vec<StoredReceipt>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// What the journal holds, for health and status.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub receipts: u64,
    pub last_number: u64,
    pub by_state: Vec<(String, u64)>,
    pub schema_version: u32,
    pub size_bytes: u64,
}

const COLUMNS: &str = "id, number, source, state, idempotency_key, offline_url, caller_key, created_at, updated_at, body";

impl Reader {
    pub(super) fn new(path: PathBuf, busy_timeout: Duration) -> Self {
        Reader {
            path,
            busy_timeout,
            pool: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let pooled = self.pool.lock().expect("reader pool lock").pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(self.busy_timeout)?;
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.pool.lock().expect("reader pool lock");
        if pool.len() < POOL_MAX {
            pool.push(conn);
        }
        result
    }

    pub(super) fn get(&self, id: &str) -> Result<Option<StoredReceipt>, JournalError> {
        self.with(|c| load(c, id))
    }

    pub(super) fn list(
        &self,
        state: Option<ReceiptState>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, JournalError> {
        self.with(|c| {
            let after_number: i64 = match after {
                None => 0,
                Some(id) => c
                    .query_row("SELECT number FROM receipts WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .ok_or_else(|| JournalError::BadCursor(id.to_string()))?,
            };
            let sql = format!(
                "SELECT {COLUMNS} FROM receipts WHERE number > ?1 AND (?2 IS NULL OR state = ?2)
                 ORDER BY number LIMIT ?3"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let fetch = limit as i64 + 1;
            let mut receipts = stmt
                .query_map(
                    params![after_number, state.map(|s| s.code()), fetch],
                    row_to_receipt,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let next_after = if receipts.len() > limit {
                receipts.truncate(limit);
                receipts.last().map(|r| r.id.clone())
            } else {
                None
            };
            Ok(Page {
                receipts,
                next_after,
            })
        })
    }

    pub(super) fn stats(&self) -> Result<Stats, JournalError> {
        self.with(|c| {
            let receipts: u64 = c.query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))?;
            let last_number: u64 = c.query_row(
                "SELECT value FROM counters WHERE name = 'receipt_number'",
                [],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT state, count(*) FROM receipts GROUP BY state ORDER BY state",
            )?;
            let by_state = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let schema_version: u32 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let pages: u64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok(Stats {
                receipts,
                last_number,
                by_state,
                schema_version,
                size_bytes: pages * page_size,
            })
        })
    }
}

/// One receipt with its state history; shared by the reader and the writer.
pub(super) fn load(c: &Connection, id: &str) -> Result<Option<StoredReceipt>, JournalError> {
    let sql = format!("SELECT {COLUMNS} FROM receipts WHERE id = ?1");
    let Some(mut receipt) = c
        .prepare_cached(&sql)?
        .query_row([id], row_to_receipt)
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT at, actor, state, note FROM receipt_events WHERE receipt_id = ?1 ORDER BY seq",
    )?;
    receipt.history = stmt
        .query_map([id], |r| {
            Ok(Event {
                at: r.get(0)?,
                actor: r.get(1)?,
                state: state_from(r, 2)?,
                note: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(receipt))
}

fn row_to_receipt(r: &Row<'_>) -> rusqlite::Result<StoredReceipt> {
    let source: String = r.get(2)?;
    let body: String = r.get(9)?;
    let bad = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
    };
    Ok(StoredReceipt {
        id: r.get(0)?,
        number: r.get(1)?,
        source: Source::from_code(&source)
            .ok_or_else(|| bad(format!("unknown source {source:?}")))?,
        state: state_from(r, 3)?,
        idempotency_key: r.get(4)?,
        offline_url: r.get(5)?,
        caller_key: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        receipt: serde_json::from_str(&body)
            .map_err(|e| bad(format!("stored receipt body: {e}")))?,
        history: Vec::new(),
    })
}

fn state_from(r: &Row<'_>, column: usize) -> rusqlite::Result<ReceiptState> {
    let text: String = r.get(column)?;
    ReceiptState::from_code(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown receipt state {text:?}").into(),
        )
    })
}
