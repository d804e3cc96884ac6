//! Retention: receipts final (fiscalized or discarded) for longer than
//! `retain_days` move from the journal into the monthly archive files, in
//! small chunks that never hold the writer long.
//!
//! One chunk, crash-safe at every step:
//! 1. read up to [`RetentionPolicy::chunk`] eligible receipts of one month
//!    (a read connection: the writer is not involved);
//! 2. writer: claim them — check each is still there and still eligible, and
//!    record the chunk (month, the archive file's length, the ids) in
//!    `archive_chunk`;
//! 3. append them to the month's file as one gzip member and fsync;
//! 4. writer: delete the chunk's receipts (their history and jobs with them),
//!    count them in `archives`, and clear `archive_chunk` — one transaction.
//!
//! A run first finishes what a crash left: if `archive_chunk` holds a chunk,
//! either the member at its offset is whole and holds exactly its ids (step 3
//! completed: do step 4), or the file is cut back to the offset and the
//! claim dropped (the receipts are still in the journal and go out again).
//! So a receipt is never in both places after a run, and never in neither.
//!
//! Pending, submitted and rejected receipts are never archived, nor a final
//! receipt with a job still waiting (a reprint). Caller keys stay in the
//! journal: a repeat of an archived receipt's key answers 409 naming it.

use super::archive::{Archive, ArchiveError};
use super::writer::Ctx;
use super::{Journal, JournalError, StoredReceipt, read};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long final receipts stay in the journal by default: five years and a
/// month. ASSUMED (no legal text read for this): Russian accounting documents
/// are kept for at least five years (402-FZ art. 29) and a tax audit looks
/// back three years (Tax Code art. 89), so a receipt's journal entry outlives
/// any dispute; the archive keeps it after that.
pub const DEFAULT_RETAIN_DAYS: u32 = 1_857;

/// When receipts leave the journal and where they go.
#[derive(Clone, Debug)]
pub struct RetentionPolicy {
    /// Final receipts older than this many days are archived; 0 never archives.
    pub retain_days: u32,
    pub archive_dir: PathBuf,
    /// Receipts per chunk (one writer transaction to delete them).
    pub chunk: usize,
    /// Pause between chunks, so receipts being accepted get the writer.
    pub pause: Duration,
    /// Pages given back per `incremental_vacuum` step.
    pub vacuum_pages: u32,
}

impl RetentionPolicy {
    /// The defaults, with the archive in `archive/` beside the journal file.
    pub fn beside(journal_path: &std::path::Path) -> RetentionPolicy {
        let dir = journal_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        RetentionPolicy {
            retain_days: DEFAULT_RETAIN_DAYS,
            archive_dir: dir.join("archive"),
            chunk: 200,
            pause: Duration::from_millis(20),
            vacuum_pages: 1_000,
        }
    }
}

/// What one retention run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RetentionReport {
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Receipts final before this instant were due.
    pub cutoff: Option<DateTime<Utc>>,
    pub archived: u64,
    pub months: Vec<String>,
    /// An interrupted chunk found at the start: `completed` or `undone`.
    pub recovered: Option<String>,
    pub freed_bytes: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
struct Claim {
    month: String,
    offset: u64,
    ids: Vec<String>,
}

/// The receipt kinds of job, for look-ups by receipt (the unique index is
/// on `(kind, receipt_id)`).
const JOB_KINDS: &str = "('fiscalize', 'register', 'print')";

fn eligible_sql(extra: &str) -> String {
    format!(
        "SELECT r.id, substr(r.created_at, 1, 7) FROM receipts r
         WHERE r.state IN ('fiscalized', 'discarded') AND unixepoch(r.updated_at) < ?1 {extra}
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind IN {JOB_KINDS} AND j.receipt_id = r.id
                           AND j.state IN ('pending', 'parked'))"
    )
}

/// Up to `limit` eligible receipts, all of one month, loaded whole.
pub(super) fn eligible(
    c: &Connection,
    cutoff: i64,
    limit: usize,
) -> Result<Option<(String, Vec<StoredReceipt>)>, JournalError> {
    let first: Option<(String, String)> = c
        .prepare_cached(&format!(
            "{} ORDER BY unixepoch(r.updated_at) LIMIT 1",
            eligible_sql("")
        ))?
        .query_row([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((_, month)) = first else {
        return Ok(None);
    };
    let ids: Vec<String> = c
        .prepare_cached(&format!(
            "{} ORDER BY unixepoch(r.updated_at) LIMIT ?3",
            eligible_sql("AND substr(r.created_at, 1, 7) = ?2")
        ))?
        .query_map(params![cutoff, month, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut receipts = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = read::load(c, &id)? {
            receipts.push(r);
        }
    }
    Ok(Some((month, receipts)))
}

/// Writer: record the chunk about to be appended at `offset`, keeping only
/// receipts still eligible. Returns the ids kept.
fn claim(
    c: &Connection,
    month: &str,
    offset: u64,
    ids: &[String],
    cutoff: i64,
) -> Result<Vec<String>, JournalError> {
    let mut check = c.prepare_cached(&format!("{} AND r.id = ?2", eligible_sql("")))?;
    let mut kept = Vec::with_capacity(ids.len());
    for id in ids {
        if check.exists(params![cutoff, id])? {
            kept.push(id.clone());
        }
    }
    if !kept.is_empty() {
        let json =
            serde_json::to_string(&kept).map_err(|e| JournalError::Unavailable(e.to_string()))?;
        c.execute(
            "INSERT INTO archive_chunk (one, month, offset, ids) VALUES (1, ?1, ?2, ?3)",
            params![month, offset as i64, json],
        )?;
    }
    Ok(kept)
}

/// Writer: the chunk is safe in its file: delete its receipts from the journal.
fn finish(
    c: &Connection,
    ctx: &Ctx<'_>,
    claim: &Claim,
    file_len: u64,
) -> Result<u64, JournalError> {
    let mut deleted = 0u64;
    for id in &claim.ids {
        c.prepare_cached("DELETE FROM receipt_events WHERE receipt_id = ?1")?
            .execute([id])?;
        c.prepare_cached(&format!(
            "DELETE FROM jobs WHERE kind IN {JOB_KINDS} AND receipt_id = ?1"
        ))?
        .execute([id])?;
        deleted += c
            .prepare_cached("DELETE FROM receipts WHERE id = ?1")?
            .execute([id])? as u64;
    }
    c.execute(
        "INSERT INTO archives (month, receipts, bytes, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (month) DO UPDATE SET receipts = receipts + excluded.receipts,
                                          bytes = excluded.bytes, updated_at = excluded.updated_at",
        params![
            claim.month,
            deleted as i64,
            file_len as i64,
            ctx.now.to_rfc3339()
        ],
    )?;
    c.execute("DELETE FROM archive_chunk", [])?;
    Ok(deleted)
}

fn pending_claim(c: &Connection) -> Result<Option<Claim>, JournalError> {
    let row: Option<(String, i64, String)> = c
        .query_row(
            "SELECT month, offset, ids FROM archive_chunk WHERE one = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(month, offset, ids)| {
        Ok(Claim {
            month,
            offset: offset.max(0) as u64,
            ids: serde_json::from_str(&ids)
                .map_err(|e| JournalError::Unavailable(format!("archive_chunk ids: {e}")))?,
        })
    })
    .transpose()
}

/// Is `receipt_id` in a chunk being archived right now?
pub(super) fn being_archived(c: &Connection, receipt_id: &str) -> Result<bool, JournalError> {
    Ok(c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM archive_chunk, json_each(archive_chunk.ids) WHERE json_each.value = ?1)",
        )?
        .query_row([receipt_id], |r| r.get(0))?)
}

fn archive_err(e: ArchiveError) -> JournalError {
    JournalError::Unavailable(e.to_string())
}

impl Journal {
    /// One retention run at `now`: finish an interrupted chunk, archive every
    /// receipt due, give the space back. Safe to run at any time, beside
    /// receipts being accepted; safe to kill at any point.
    pub async fn run_retention(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
    ) -> RetentionReport {
        let mut report = RetentionReport {
            started_at: Some(Utc::now()),
            ..RetentionReport::default()
        };
        if let Err(e) = self.retention_inner(policy, now, &mut report).await {
            tracing::error!(error = %e, "journal: retention run failed; it is tried again at the next run");
            report.error = Some(e.to_string());
        }
        report.finished_at = Some(Utc::now());
        if report.archived > 0 || report.recovered.is_some() {
            tracing::info!(archived = report.archived, months = ?report.months, freed_bytes = report.freed_bytes, "journal: retention run");
        }
        *self.retention.lock().expect("retention lock") = Some(report.clone());
        report
    }

    async fn retention_inner(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        report: &mut RetentionReport,
    ) -> Result<(), JournalError> {
        let archive = Archive::new(policy.archive_dir.clone());
        const TIMEOUT: Duration = Duration::from_secs(30);

        // 1. An interrupted chunk.
        if let Some(claim) = self.read(|r| r.with_conn(pending_claim)).await? {
            let a = archive.clone();
            let c2 = claim.clone();
            let member = blocking(move || a.member_ids(&c2.month, c2.offset)).await?;
            let whole = member.as_ref().is_some_and(|(ids, _)| *ids == claim.ids);
            if let (true, Some((_, end))) = (whole, member) {
                let a = archive.clone();
                let month = claim.month.clone();
                // Anything after the member is not ours.
                blocking(move || {
                    if a.len(&month)? > end {
                        a.truncate(&month, end)?;
                    }
                    Ok(())
                })
                .await?;
                let c2 = claim.clone();
                let n = self
                    .apply(TIMEOUT, move |c, ctx| finish(c, ctx, &c2, end))
                    .await?;
                report.archived += n;
                report.recovered = Some("completed".into());
            } else {
                let a = archive.clone();
                let c2 = claim.clone();
                blocking(move || a.truncate(&c2.month, c2.offset)).await?;
                self.apply(TIMEOUT, |c, _| {
                    c.execute("DELETE FROM archive_chunk", [])?;
                    Ok(())
                })
                .await?;
                report.recovered = Some("undone".into());
            }
            tracing::warn!(month = %claim.month, how = ?report.recovered, "journal: finished an archive chunk a crash interrupted");
            report.months.push(claim.month);
        }

        // 2. Archive what is due.
        if policy.retain_days > 0 {
            let cutoff = now - chrono::Duration::days(i64::from(policy.retain_days));
            report.cutoff = Some(cutoff);
            let cutoff_s = cutoff.timestamp();
            loop {
                let limit = policy.chunk.max(1);
                let Some((month, receipts)) = self
                    .read(move |r| r.with_conn(|c| eligible(c, cutoff_s, limit)))
                    .await?
                else {
                    break;
                };
                if receipts.is_empty() {
                    break;
                }
                let a = archive.clone();
                let m = month.clone();
                let offset = blocking(move || a.len(&m)).await?;
                let ids: Vec<String> = receipts.iter().map(|r| r.id.clone()).collect();
                let m = month.clone();
                let kept = self
                    .apply(TIMEOUT, move |c, _| claim(c, &m, offset, &ids, cutoff_s))
                    .await?;
                if kept.is_empty() {
                    continue;
                }
                let lines = receipts
                    .iter()
                    .filter(|r| kept.contains(&r.id))
                    .map(serde_json::to_string)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| JournalError::Unavailable(e.to_string()))?;
                let a = archive.clone();
                let m = month.clone();
                let end = blocking(move || a.append(&m, &lines)).await?;
                let claim = Claim {
                    month: month.clone(),
                    offset,
                    ids: kept,
                };
                let n = self
                    .apply(TIMEOUT, move |c, ctx| finish(c, ctx, &claim, end))
                    .await?;
                report.archived += n;
                if !report.months.contains(&month) {
                    report.months.push(month);
                }
                tokio::time::sleep(policy.pause).await;
            }
        }

        // 3. Checksums for every file touched (and any a crash left stale).
        let a = archive.clone();
        let touched = report.months.clone();
        blocking(move || {
            for f in a.list()? {
                if touched.contains(&f.month) || !a.sealed(&f.month)? {
                    a.seal(&f.month)?;
                }
            }
            Ok(())
        })
        .await?;

        // 4. Give the space back, a few pages per writer transaction.
        if report.archived > 0 {
            let pages = policy.vacuum_pages.max(1);
            loop {
                let (freed, left) = self
                    .apply(TIMEOUT, move |c, _| {
                        let before: u64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                        let mut stmt = c.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
                        let mut rows = stmt.query([])?;
                        while rows.next()?.is_some() {}
                        let after: u64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                        let page: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
                        Ok(((before - after.min(before)) * page, after))
                    })
                    .await?;
                report.freed_bytes += freed;
                if freed == 0 || left == 0 {
                    break;
                }
                tokio::time::sleep(policy.pause).await;
            }
        }
        Ok(())
    }

    /// Find a receipt that was moved to the archive, by id.
    pub async fn find_archived(
        &self,
        archive_dir: PathBuf,
        id: String,
    ) -> Result<Option<StoredReceipt>, JournalError> {
        blocking(move || Archive::new(archive_dir).find(&id, &months_near(&id))).await
    }

    /// The last retention run, if one ran since start.
    pub fn last_retention(&self) -> Option<RetentionReport> {
        self.retention.lock().expect("retention lock").clone()
    }
}

/// The longest one archive file operation may take (a whole month's file is
/// read and hashed in well under this).
const DISK_TIMEOUT: Duration = Duration::from_secs(120);

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, JournalError> {
    tokio::time::timeout(DISK_TIMEOUT, tokio::task::spawn_blocking(f))
        .await
        .map_err(|_| {
            JournalError::Unavailable(format!(
                "archive disk operation took longer than {DISK_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| JournalError::Unavailable(format!("archive task failed: {e}")))?
        .map_err(archive_err)
}

/// The months (UTC) around a UUIDv7 id's timestamp: where its receipt was
/// most likely archived (receipt ids are UUIDv7 from the till's clock).
fn months_near(id: &str) -> Vec<String> {
    let Some((secs, _)) = uuid::Uuid::parse_str(id)
        .ok()
        .and_then(|u| u.get_timestamp())
        .map(|t| t.to_unix())
    else {
        return Vec::new();
    };
    let mut months = Vec::new();
    for shift in [0i64, -86_400, 86_400] {
        if let Some(t) = DateTime::<Utc>::from_timestamp(secs as i64 + shift, 0) {
            let m = t.format("%Y-%m").to_string();
            if !months.contains(&m) {
                months.push(m);
            }
        }
    }
    months
}
