//! Read queries, on read-only connections that run beside the writer (WAL).

use super::ops::{JobKind, JobState};
use super::{Event, JournalError, PrintView, StoredReceipt, SyncView};
use crate::domain::{ReceiptState, Source};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Most idle read connections kept open.
const POOL_MAX: usize = 4;
/// Page cache per read connection, KiB (SQLite's negative `cache_size`).
const READER_CACHE_KIB: i64 = -512;

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

/// What the journal holds, for health, status and metrics. Every figure
/// comes from tallies the writer keeps in the same transactions as the rows
/// (or from an O(log n) index lookup): it costs the same at a thousand
/// receipts as at a million.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Receipts in the journal now (archived ones not counted).
    pub receipts: u64,
    pub last_number: u64,
    /// Every receipt state, zero included.
    pub by_state: Vec<(ReceiptState, u64)>,
    /// Jobs by kind and state (kinds that never had a job are left out).
    pub jobs: Vec<JobTally>,
    /// The oldest receipt not yet fiscalized (accepted or submitted).
    pub oldest_pending: Option<OldestPending>,
    /// Receipts moved to the monthly archive files, over all time.
    pub archived: u64,
    pub schema_version: u32,
    pub size_bytes: u64,
    /// Free pages inside the file (reused by new rows, or given back by retention).
    pub free_bytes: u64,
    pub wal: super::wal::WalStats,
}

impl Stats {
    pub fn count(&self, state: ReceiptState) -> u64 {
        self.by_state
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }

    /// Jobs of `kind` in `state`.
    pub fn jobs(&self, kind: super::JobKind, state: super::JobState) -> u64 {
        self.jobs
            .iter()
            .find(|t| t.kind == kind && t.state == state)
            .map_or(0, |t| t.count)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobTally {
    pub kind: super::JobKind,
    pub state: super::JobState,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OldestPending {
    pub id: String,
    pub number: u64,
    pub created_at: String,
}

/// A receipt with its fiscalization job, if any.
const SELECT: &str = "SELECT r.id, r.number, r.source, r.state, r.idempotency_key, r.offline_url, r.caller_key,
            r.created_at, r.updated_at, r.body, r.fiscal, r.fiscal_qr,
            j.state, j.attempts, j.last_error, j.next_attempt_at, json_extract(j.data, '$.document_id'), j.kind,
            p.state, p.attempts, p.last_error, coalesce(json_extract(p.data, '$.copies'), 0)
     FROM receipts r
     LEFT JOIN jobs j ON j.receipt_id = r.id AND j.kind IN ('fiscalize', 'register', 'fiscalbox')
     LEFT JOIN jobs p ON p.receipt_id = r.id AND p.kind = 'print'";

/// A job as the worker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub receipt_id: String,
    pub attempts: u32,
    pub document_id: Option<u64>,
    pub next_attempt_at: i64,
    /// Kind-specific JSON (a device job's progress marker).
    pub data: String,
}

impl Job {
    /// The job's progress marker; a missing or unreadable one reads as the
    /// marker's default (nothing done yet).
    pub fn marker<M: super::JobMarker>(&self) -> M {
        serde_json::from_str(&self.data).unwrap_or_default()
    }
}

/// One job kind's backlog, for `GET /v1/devices`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub pending: u64,
    pub parked: u64,
    /// The last error of the pending job due next (what holds the queue up).
    pub oldest_pending_error: Option<String>,
}

/// The outbox at a glance, for health and status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncCounts {
    pub pending: u64,
    pub parked: u64,
    /// Acceptance time of the oldest receipt still waiting.
    pub oldest_pending: Option<String>,
}

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

    /// Run `f` on a pooled read-only connection (for sibling modules).
    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        self.with(f)
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
                // Reads are index look-ups and short pages: a small page
                // cache each keeps the daemon's memory flat as the file grows.
                c.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
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

    /// The receipt a caller's key names, for the dialects whose status calls
    /// ask by their own id (Bitrix24 `uuid`, gateway `client_orderid`).
    pub(super) fn by_caller_key(
        &self,
        source: &str,
        key: &str,
    ) -> Result<Option<StoredReceipt>, JournalError> {
        self.with(|c| {
            let id: Option<String> = c
                .prepare_cached(
                    "SELECT receipt_id FROM caller_keys WHERE source = ?1 AND caller_key = ?2",
                )?
                .query_row([source, key], |r| r.get(0))
                .optional()?;
            match id {
                Some(id) => load(c, &id),
                None => Ok(None),
            }
        })
    }

    pub(super) fn find_by_link(&self, link: &str) -> Result<Option<StoredReceipt>, JournalError> {
        self.with(|c| match find_by_link(c, link)? {
            Some(id) => load(c, &id),
            None => Ok(None),
        })
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
            // Two statements, so that a filtered page walks `receipts_by_state`
            // (state, number) instead of every receipt: O(log n + page) either way.
            let sql = match state {
                Some(_) => format!(
                    "{SELECT} WHERE r.state = ?2 AND r.number > ?1 ORDER BY r.number LIMIT ?3"
                ),
                None => format!(
                    "{SELECT} WHERE r.number > ?1 AND ?2 IS NULL ORDER BY r.number LIMIT ?3"
                ),
            };
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

    /// Receipts numbered in `(after, upto]`, in order (a shift's receipts).
    pub(super) fn numbered(
        &self,
        after: u64,
        upto: u64,
    ) -> Result<Vec<StoredReceipt>, JournalError> {
        self.with(|c| {
            let sql = format!("{SELECT} WHERE r.number > ?1 AND r.number <= ?2 ORDER BY r.number");
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(params![after, upto], row_to_receipt)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// A named counter (0 when never set).
    pub(super) fn counter(&self, name: &str) -> Result<i64, JournalError> {
        self.with(|c| {
            Ok(
                c.query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .unwrap_or(0),
            )
        })
    }

    pub(super) fn due_jobs(
        &self,
        kind: JobKind,
        now_ms: i64,
        limit: usize,
        busy: &[i64],
    ) -> Result<Vec<Job>, JournalError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, receipt_id, attempts, json_extract(data, '$.document_id'), next_attempt_at, data FROM jobs
                 WHERE kind = ?1 AND state = 'pending' AND next_attempt_at <= ?2 ORDER BY id LIMIT ?3",
            )?;
            let fetch = (limit + busy.len()) as i64;
            let jobs = stmt
                .query_map(params![kind, now_ms, fetch], |r| {
                    Ok(Job {
                        id: r.get(0)?,
                        // Jobs without a receipt (cash operations) read as "".
                        receipt_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        attempts: r.get(2)?,
                        document_id: r.get(3)?,
                        next_attempt_at: r.get(4)?,
                        data: r.get(5)?,
                    })
                })?
                .filter(|j| j.as_ref().map_or(true, |j| !busy.contains(&j.id)))
                .take(limit)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(jobs)
        })
    }

    pub(super) fn next_due_at(&self, kind: JobKind) -> Result<Option<i64>, JournalError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT min(next_attempt_at) FROM jobs WHERE kind = ?1 AND state = 'pending'",
                [kind],
                |r| r.get(0),
            )?)
        })
    }

    /// Per kind: pending and parked jobs (from the tallies), and the last
    /// error of the pending job due next (one step down `jobs_due`): cheap at
    /// any backlog and journal size.
    pub(super) fn job_counts(
        &self,
        kinds: &[JobKind],
    ) -> Result<BTreeMap<JobKind, JobCounts>, JournalError> {
        self.with(|c| {
            let mut out = BTreeMap::new();
            let mut stmt = c.prepare_cached(
                "SELECT coalesce((SELECT n FROM job_tally WHERE kind = ?1 AND state = 'pending'), 0),
                        coalesce((SELECT n FROM job_tally WHERE kind = ?1 AND state = 'parked'), 0),
                        (SELECT last_error FROM jobs WHERE kind = ?1 AND state = 'pending'
                          ORDER BY next_attempt_at, id LIMIT 1)",
            )?;
            for &kind in kinds {
                let counts = stmt.query_row([kind], |r| {
                    Ok(JobCounts {
                        pending: r.get::<_, i64>(0)?.max(0) as u64,
                        parked: r.get::<_, i64>(1)?.max(0) as u64,
                        oldest_pending_error: r.get(2)?,
                    })
                })?;
                out.insert(kind, counts);
            }
            Ok(out)
        })
    }

    /// From the tallies and one O(log n) look-up: cheap at any journal size.
    pub(super) fn sync_counts(&self) -> Result<SyncCounts, JournalError> {
        self.with(|c| {
            let (pending, parked): (i64, i64) = c.prepare_cached(
                "SELECT coalesce(sum(n) FILTER (WHERE state = 'pending'), 0), coalesce(sum(n) FILTER (WHERE state = 'parked'), 0)
                 FROM job_tally WHERE kind IN ('fiscalize', 'register', 'fiscalbox')",
            )?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(SyncCounts {
                pending: pending.max(0) as u64,
                parked: parked.max(0) as u64,
                oldest_pending: oldest_pending(c)?.map(|o| o.created_at),
            })
        })
    }

    pub(super) fn secret(&self, name: &str) -> Result<Option<(String, Option<i64>)>, JournalError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT value, expires_at FROM secrets WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    pub(super) fn stats(&self, wal: super::wal::WalStats) -> Result<Stats, JournalError> {
        self.with(|c| {
            let mut by_state: Vec<(ReceiptState, u64)> =
                ReceiptState::ALL.iter().map(|s| (*s, 0)).collect();
            let mut stmt =
                c.prepare_cached("SELECT state, sum(n) FROM receipt_tally GROUP BY state")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let state = state_from(row, 0)?;
                let n: i64 = row.get(1)?;
                if let Some(slot) = by_state.iter_mut().find(|(s, _)| *s == state) {
                    slot.1 = n.max(0) as u64;
                }
            }
            let receipts = by_state.iter().map(|(_, n)| n).sum();
            let jobs = c
                .prepare_cached(
                    "SELECT kind, state, n FROM job_tally WHERE n > 0 ORDER BY kind, state",
                )?
                .query_map([], |r| {
                    Ok(JobTally {
                        kind: r.get(0)?,
                        state: r.get(1)?,
                        count: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let last_number: u64 = c.query_row(
                "SELECT value FROM counters WHERE name = 'receipt_number'",
                [],
                |r| r.get(0),
            )?;
            let archived: u64 =
                c.query_row("SELECT coalesce(sum(receipts), 0) FROM archives", [], |r| {
                    r.get(0)
                })?;
            let schema_version: u32 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let pages: u64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: u64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let page_size: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok(Stats {
                receipts,
                last_number,
                by_state,
                jobs,
                oldest_pending: oldest_pending(c)?,
                archived,
                schema_version,
                size_bytes: pages * page_size,
                free_bytes: free * page_size,
                wal,
            })
        })
    }
}

/// The oldest receipt still waiting to be fiscalized: the smallest number in
/// each waiting state, each an O(log n) look-up in `receipts_by_state`.
fn oldest_pending(c: &Connection) -> Result<Option<OldestPending>, JournalError> {
    let mut first: Option<u64> = None;
    for state in [ReceiptState::Accepted, ReceiptState::Submitted] {
        let n: Option<u64> = c
            .prepare_cached("SELECT min(number) FROM receipts WHERE state = ?1")?
            .query_row([state.code()], |r| r.get(0))?;
        first = match (first, n) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let Some(number) = first else { return Ok(None) };
    Ok(
        c.prepare_cached("SELECT id, created_at FROM receipts WHERE number = ?1")?
            .query_row([number], |r| {
                Ok(OldestPending {
                    id: r.get(0)?,
                    number,
                    created_at: r.get(1)?,
                })
            })
            .optional()?,
    )
}

/// One receipt with its state history; shared by the reader and the writer.
/// The receipt a POS-facing link names: its offline link, or its fiscal QR
/// (for a FiscalBox receipt, the Soliq link).
pub(super) fn find_by_link(c: &Connection, link: &str) -> Result<Option<String>, JournalError> {
    Ok(c.prepare_cached(
        "SELECT id FROM receipts WHERE offline_url = ?1 OR fiscal_qr = ?1 ORDER BY number LIMIT 1",
    )?
    .query_row([link], |r| r.get(0))
    .optional()?)
}

pub(super) fn load(c: &Connection, id: &str) -> Result<Option<StoredReceipt>, JournalError> {
    let sql = format!("{SELECT} WHERE r.id = ?1");
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
        fiscal: match r.get::<_, Option<String>>(10)? {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| bad(format!("stored fiscal attributes: {e}")))?,
            ),
            None => None,
        },
        fiscal_qr: r.get(11)?,
        sync: match r.get::<_, Option<JobState>>(12)? {
            Some(job_state) => Some(SyncView {
                kind: r.get(17)?,
                job_state,
                attempts: r.get(13)?,
                last_error: r.get(14)?,
                next_attempt_at: r.get(15)?,
                document_id: r.get(16)?,
            }),
            None => None,
        },
        print: match r.get::<_, Option<JobState>>(18)? {
            Some(job_state) => Some(PrintView {
                job_state,
                attempts: r.get(19)?,
                last_error: r.get(20)?,
                copies: r.get(21)?,
            }),
            None => None,
        },
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

/// What the status page and `/metrics` show of the journal, read in one go.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpsView {
    /// Receipts by (state, source). The source is the dialect it came in.
    pub receipts: Vec<(String, String, u64)>,
    /// Receipts accepted on the till-local date asked for.
    pub receipts_today: u64,
    /// Jobs waiting or parked, by (kind, state).
    pub jobs: Vec<(String, String, u64)>,
    /// Acceptance time of the oldest receipt still waiting to be fiscalized.
    pub oldest_unfiscalized: Option<String>,
    /// Today's receipts summed by (receipt kind, payment kind), minor units;
    /// change given back is its own negative row, `change`.
    pub payments_today: Vec<(String, String, i64)>,
    /// Receipts an operator must decide on: (id, number, kind of job, error, accepted at).
    pub rejected: Vec<RejectedReceipt>,
    /// The latest state changes, newest first.
    pub events: Vec<RecentEvent>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RejectedReceipt {
    pub id: String,
    pub number: u64,
    pub job: String,
    pub error: Option<String>,
    pub accepted_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecentEvent {
    pub at: String,
    pub number: u64,
    pub receipt_id: String,
    pub actor: String,
    pub state: String,
    pub note: Option<String>,
}

/// Most rejected receipts and events an `OpsView` carries.
const OPS_LIST_MAX: i64 = 20;

/// Rows of (text, text, number) from `sql`.
fn triples<T: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(String, String, T)>, JournalError> {
    Ok(c.prepare_cached(sql)?
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?)
}

impl Reader {
    /// `today` is the till-local date, `YYYY-MM-DD` (receipts' `created_at`
    /// is till-local time, so its first ten characters are that date).
    pub(super) fn ops_view(&self, today: &str) -> Result<OpsView, JournalError> {
        self.with(|c| {
            // Every figure from a tally or a bounded walk down an index (see
            // migration 4): the same cost at a thousand and a million receipts.
            let receipts = triples(
                c,
                "SELECT state, source, n FROM receipt_tally WHERE n > 0 ORDER BY state, source",
                [],
            )?;
            let jobs = triples(
                c,
                "SELECT kind, state, n FROM job_tally WHERE state IN ('pending', 'parked') AND n > 0 ORDER BY kind, state",
                [],
            )?;
            let receipts_today: u64 = c
                .prepare_cached("SELECT n FROM day_receipts WHERE day = ?1")?
                .query_row([today], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let oldest_unfiscalized = oldest_pending(c)?.map(|o| o.created_at);
            let payments_today = triples(
                c,
                "SELECT kind, payment, amount FROM day_payments WHERE day = ?1 AND amount != 0 ORDER BY 1, 2",
                [today],
            )?;
            // `jobs_parked` holds only parked jobs.
            let mut stmt = c.prepare_cached(
                "SELECT r.id, r.number, j.kind, j.last_error, r.created_at FROM jobs j INDEXED BY jobs_parked
                 JOIN receipts r ON r.id = j.receipt_id
                 WHERE j.state = 'parked' ORDER BY j.id DESC LIMIT ?1",
            )?;
            let rejected = stmt
                .query_map([OPS_LIST_MAX], |r| {
                    Ok(RejectedReceipt {
                        id: r.get(0)?,
                        number: r.get(1)?,
                        job: r.get(2)?,
                        error: r.get(3)?,
                        accepted_at: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT e.at, r.number, r.id, e.actor, e.state, e.note FROM receipt_events e JOIN receipts r ON r.id = e.receipt_id
                 ORDER BY e.seq DESC LIMIT ?1",
            )?;
            let events = stmt
                .query_map([OPS_LIST_MAX], |r| {
                    Ok(RecentEvent {
                        at: r.get(0)?,
                        number: r.get(1)?,
                        receipt_id: r.get(2)?,
                        actor: r.get(3)?,
                        state: r.get(4)?,
                        note: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(OpsView {
                receipts,
                receipts_today,
                jobs,
                oldest_unfiscalized,
                payments_today,
                rejected,
                events,
            })
        })
    }
}

#[cfg(test)]
mod cost_tests {
    //! What health, status and metrics read must not grow with the journal.
    //! Each statement's SQLite VM steps are counted (not timed) on a journal
    //! of a few hundred receipts and again after thousands more were added:
    //! a statement that scans a table takes ~10× the steps the second time.
    use super::super::bulk::{self, BulkReceipt, Outcome};
    use super::super::tests::{options, receipt};
    use super::*;
    use crate::journal::NewReceipt;
    use chrono::{DateTime, TimeZone, Utc};
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use std::sync::Arc;

    fn receipts(start: DateTime<Utc>, n: i64, pending_and_parked: bool) -> Vec<BulkReceipt> {
        (0..n)
            .map(|i| BulkReceipt {
                at: start + chrono::Duration::minutes(i * 7),
                new: NewReceipt {
                    source: if i % 3 == 0 {
                        Source::Bitrix24
                    } else {
                        Source::Native
                    },
                    caller_key: (i % 2 == 0).then(|| format!("k-{}-{i}", start.timestamp())),
                    receipt: receipt(100 + i),
                },
                outcome: match i % 50 {
                    1 if pending_and_parked => Outcome::Rejected,
                    2 if pending_and_parked => Outcome::Pending,
                    3 => Outcome::Discarded,
                    _ => Outcome::Fiscalized,
                },
            })
            .collect()
    }

    /// VM steps per statement while the status reads run once each.
    fn steps(path: &Path, today: &str) -> BTreeMap<String, i32> {
        let mut conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let sink = seen.clone();
        conn.trace_v2(
            TraceEventCodes::SQLITE_TRACE_PROFILE,
            Some(move |e: TraceEvent<'_>| {
                if let TraceEvent::Profile(stmt, _) = e {
                    let n = stmt.get_status(rusqlite::StatementStatus::VmStep);
                    let mut seen = sink.lock().unwrap();
                    let slot = seen.entry(stmt.sql().to_string()).or_insert(0);
                    *slot = n.max(*slot);
                }
            }),
        )
        .unwrap();
        let reader = Reader::new(path.to_path_buf(), Duration::from_secs(5));
        reader.pool.lock().unwrap().push(conn);
        reader.stats(Default::default()).unwrap();
        reader.job_counts(&JobKind::ALL).unwrap();
        reader.sync_counts().unwrap();
        let view = reader.ops_view(today).unwrap();
        assert!(view.receipts_today > 0 && !view.payments_today.is_empty());
        assert!(!view.rejected.is_empty());
        reader.list(None, None, 50).unwrap();
        reader
            .list(Some(ReceiptState::Fiscalized), None, 50)
            .unwrap();
        reader.list(Some(ReceiptState::Rejected), None, 50).unwrap();
        // The billing part of the status (and /metrics).
        assert!(reader.latest_billing_check().unwrap().is_some());
        assert_eq!(reader.unresolved_billing_checks(5).unwrap().1, 5);
        drop(reader);
        Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
    }

    /// `n` billing checks, one a day from `first_day`: equal ones, and
    /// every tenth different but settled by a later equal check — plus,
    /// when `unresolved`, five different ones nobody settled.
    fn billing_checks(path: &Path, first_day: chrono::NaiveDate, n: i64, unresolved: bool) {
        let conn = Connection::open(path).unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO billing_checks (period_from, period_to, trigger, result,
                    journal_orders, journal_amount, outcome, attempts, checked_at, at_ms, settled_by)
                 VALUES (?1, ?2, ?3, ?4, 1, 100, '{}', 1, 't', 0, ?5)",
            )
            .unwrap();
        for i in 0..n {
            let day = first_day + chrono::Duration::days(i);
            let (result, settled_by) = if i % 10 == 0 {
                ("different", Some(1))
            } else {
                ("equal", None)
            };
            insert
                .execute(rusqlite::params![
                    format!("{day}T08:00:00"),
                    format!("{day}T20:00:00"),
                    if i % 3 == 0 { "on_demand" } else { "z_report" },
                    result,
                    settled_by
                ])
                .unwrap();
        }
        if unresolved {
            for _ in 0..5 {
                insert
                    .execute(rusqlite::params![
                        "2026-11-30T08:00:00",
                        "2026-11-30T20:00:00",
                        "z_report",
                        "different",
                        None::<i64>
                    ])
                    .unwrap();
            }
        }
    }

    #[test]
    fn status_reads_cost_the_same_at_ten_times_the_receipts() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path());
        let today = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        // The backlog (pending, parked) is today's and the same size in both
        // measurements; only the history grows.
        bulk::load(
            &opts,
            receipts(today - chrono::Duration::days(400), 300, false),
            500,
        )
        .unwrap();
        bulk::load(&opts, receipts(today, 100, true), 500).unwrap();
        let day = today
            .with_timezone(&opts.timezone)
            .format("%Y-%m-%d")
            .to_string();
        let first_check = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        billing_checks(&opts.path, first_check, 50, true);
        let small = steps(&opts.path, &day);
        billing_checks(&opts.path, first_check, 500, false);
        bulk::load(
            &opts,
            receipts(today - chrono::Duration::days(365), 4_000, false),
            500,
        )
        .unwrap();
        let large = steps(&opts.path, &day);
        assert!(large.len() >= 8, "the status reads ran: {large:#?}");
        let mut grew = Vec::new();
        for (sql, &n) in &large {
            let before = small.get(sql).copied().unwrap_or(0);
            // A B-tree one level deeper costs no extra VM step (a seek is
            // one opcode); a scan costs one per row.
            if n > before + before / 10 + 20 {
                grew.push(format!("{before} -> {n} steps: {sql}"));
            }
        }
        assert!(
            grew.is_empty(),
            "status reads that grow with the journal:\n{}",
            grew.join("\n")
        );
    }
}

#[cfg(test)]
mod tally_tests {
    //! The tallies the status reads (kept by migration 4's triggers) equal a
    //! recount after any mix of the journal's own operations.
    use super::super::bulk::{self, BulkReceipt, Outcome};
    use super::super::tests::{options, receipt};
    use crate::domain::{Money, Payment, PaymentKind, ReceiptKind, Source};
    use crate::journal::NewReceipt;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;
    use rusqlite::Connection;

    type Rows = Vec<(String, String, String, i64)>;

    fn rows(c: &Connection, sql: &str) -> Rows {
        let mut stmt = c.prepare(sql).unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn source(i: u8) -> Source {
        [
            Source::Native,
            Source::Fiscalbox,
            Source::Bitrix24,
            Source::Gateway,
        ][i as usize % 4]
    }

    fn outcome(i: u8) -> Outcome {
        [
            Outcome::Pending,
            Outcome::Fiscalized,
            Outcome::Rejected,
            Outcome::Discarded,
        ][i as usize % 4]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn tallies_equal_a_recount(
            ops in proptest::collection::vec((0u8..4, 0u8..4, 0i64..5, 1i64..50_000, 0i64..3_000, any::<bool>()), 1..40)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let opts = options(dir.path());
            let start = Utc.with_ymd_and_hms(2026, 11, 27, 20, 30, 0).unwrap();
            let items: Vec<BulkReceipt> = ops.iter().enumerate().map(|(n, &(s, o, day, price, change, card))| {
                let mut r = receipt(price);
                if card {
                    r.payments = vec![
                        Payment { kind: PaymentKind::Electronic, amount: Money(price / 2) },
                        Payment { kind: PaymentKind::Cash, amount: Money(price - price / 2 + change) },
                    ];
                } else {
                    r.payments = vec![Payment { kind: PaymentKind::Cash, amount: Money(price + change) }];
                }
                r.change = Money(change);
                if n % 3 == 1 {
                    r.kind = ReceiptKind::SaleReturn;
                }
                BulkReceipt {
                    // Days on both sides of Moscow midnight.
                    at: start + chrono::Duration::hours(day * 7) + chrono::Duration::minutes(n as i64),
                    new: NewReceipt { source: source(s), caller_key: None, receipt: r },
                    outcome: outcome(o),
                }
            }).collect();
            bulk::load(&opts, items, 7).unwrap();
            let c = Connection::open(&opts.path).unwrap();
            prop_assert_eq!(
                rows(&c, "SELECT state, source, NULL, n FROM receipt_tally WHERE n != 0 ORDER BY 1, 2"),
                rows(&c, "SELECT state, source, NULL, count(*) FROM receipts GROUP BY 1, 2 ORDER BY 1, 2")
            );
            prop_assert_eq!(
                rows(&c, "SELECT kind, state, NULL, n FROM job_tally WHERE n != 0 ORDER BY 1, 2"),
                rows(&c, "SELECT kind, state, NULL, count(*) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2")
            );
            prop_assert_eq!(
                rows(&c, "SELECT day, '', NULL, n FROM day_receipts ORDER BY 1"),
                rows(&c, "SELECT substr(created_at, 1, 10), '', NULL, count(*) FROM receipts GROUP BY 1 ORDER BY 1")
            );
            prop_assert_eq!(
                rows(&c, "SELECT day, kind, payment, amount FROM day_payments WHERE amount != 0 ORDER BY 1, 2, 3"),
                rows(&c, "SELECT day, kind, payment, sum(amount) FROM (
                    SELECT substr(r.created_at, 1, 10) AS day, json_extract(r.body, '$.kind') AS kind,
                           json_extract(p.value, '$.kind') AS payment, json_extract(p.value, '$.amount') AS amount
                    FROM receipts r, json_each(r.body, '$.payments') p WHERE r.state != 'discarded'
                    UNION ALL
                    SELECT substr(created_at, 1, 10), json_extract(body, '$.kind'), 'change', -json_extract(body, '$.change')
                    FROM receipts WHERE state != 'discarded'
                  ) GROUP BY 1, 2, 3 HAVING sum(amount) != 0 ORDER BY 1, 2, 3")
            );
        }
    }
}
