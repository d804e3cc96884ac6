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
use std::sync::atomic::Ordering;
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

/// A monthly archive file and what the journal recorded moving into it.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveListing {
    #[serde(flatten)]
    pub file: super::archive::ArchiveFile,
    /// Receipts this journal moved into the file (`None`: the file came from elsewhere).
    pub receipts: Option<u64>,
}

#[derive(Debug, Clone)]
struct Claim {
    month: String,
    offset: u64,
    ids: Vec<String>,
}

/// Every kind of job, as an SQL list, for look-ups by receipt (the unique
/// index is on `(kind, receipt_id)`): a receipt's jobs of every kind go with it.
fn job_kinds() -> String {
    let kinds: Vec<String> = super::JobKind::ALL
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    format!("({})", kinds.join(", "))
}

/// `indexed`: walk `receipts_final_by_time` (which the planner would not
/// pick on its own, preferring the state index and a sort: O(n) per chunk).
fn eligible_sql(indexed: bool, extra: &str) -> String {
    let kinds = job_kinds();
    let index = if indexed {
        "INDEXED BY receipts_final_by_time"
    } else {
        ""
    };
    format!(
        "SELECT r.id, substr(r.created_at, 1, 7) FROM receipts r {index}
         WHERE r.state IN ('fiscalized', 'discarded') AND unixepoch(r.updated_at) < ?1 {extra}
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind IN {kinds} AND j.receipt_id = r.id
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
            eligible_sql(true, "")
        ))?
        .query_row([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((_, month)) = first else {
        return Ok(None);
    };
    let ids: Vec<String> = c
        .prepare_cached(&format!(
            "{} ORDER BY unixepoch(r.updated_at) LIMIT ?3",
            eligible_sql(true, "AND substr(r.created_at, 1, 7) = ?2")
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
    let mut check = c.prepare_cached(&format!("{} AND r.id = ?2", eligible_sql(false, "")))?;
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
            "DELETE FROM jobs WHERE kind IN {} AND receipt_id = ?1",
            job_kinds()
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
    pub async fn run_retention(&self, now: DateTime<Utc>) -> RetentionReport {
        let policy = &self.retention_policy.clone();
        self.retention_stop.store(false, Ordering::Relaxed);
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
                if self.retention_stop.load(Ordering::Relaxed) {
                    tracing::info!(
                        "journal: retention run stopped between chunks; the next run goes on"
                    );
                    break;
                }
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

    /// Ask a running retention run to stop after its current chunk.
    pub fn stop_retention(&self) {
        self.retention_stop.store(true, Ordering::Relaxed);
    }

    pub fn retention_policy(&self) -> &RetentionPolicy {
        &self.retention_policy
    }

    /// Find a receipt that was moved to the archive, by id.
    pub async fn find_archived(&self, id: String) -> Result<Option<StoredReceipt>, JournalError> {
        let dir = self.retention_policy.archive_dir.clone();
        blocking(move || Archive::new(dir).find(&id, &months_near(&id))).await
    }

    /// The monthly archive files, oldest first, with the receipts the
    /// journal moved into each.
    pub async fn archives(&self) -> Result<Vec<ArchiveListing>, JournalError> {
        let dir = self.retention_policy.archive_dir.clone();
        let files = blocking(move || Archive::new(dir).list()).await?;
        let counts: Vec<(String, u64)> = self
            .read(|r| {
                r.with_conn(|c| {
                    Ok(c.prepare("SELECT month, receipts FROM archives")?
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?)
                })
            })
            .await?;
        Ok(files
            .into_iter()
            .map(|file| ArchiveListing {
                receipts: counts
                    .iter()
                    .find(|(m, _)| *m == file.month)
                    .map(|(_, n)| *n),
                file,
            })
            .collect())
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

#[cfg(test)]
mod tests {
    use super::super::bulk::{self, BulkReceipt, Outcome};
    use super::super::tests::{options, receipt};
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::{ReceiptState, Source};
    use crate::journal::{Journal, NewReceipt};
    use chrono::TimeZone;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// A year at a till: three receipts a day; most fiscalized, some
    /// rejected, some discarded, some never sent.
    fn a_year(start: DateTime<Utc>) -> Vec<BulkReceipt> {
        let mut out = Vec::new();
        for day in 0..365i64 {
            for i in 0..3i64 {
                let outcome = match (i, day % 10, day % 7) {
                    (1, 0, _) => Outcome::Rejected,
                    (1, 5, _) => Outcome::Discarded,
                    (2, _, 0) => Outcome::Pending,
                    _ => Outcome::Fiscalized,
                };
                out.push(BulkReceipt {
                    at: start + chrono::Duration::days(day) + chrono::Duration::minutes(i),
                    new: NewReceipt {
                        source: Source::Native,
                        caller_key: (i == 0).then(|| format!("order-{day}")),
                        receipt: receipt(1000 + day * 3 + i),
                    },
                    outcome,
                });
            }
        }
        out
    }

    async fn wait_for_idle_truncate(journal: &Journal) {
        for _ in 0..100 {
            if journal.wal_stats().size_bytes == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the WAL was not truncated within 10 s of the writer going idle: {:?}",
            journal.wal_stats()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_year_of_receipts_archives_only_old_final_ones_and_finds_each_again() {
        let dir = tempfile::tempdir().unwrap();
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap();
        let now = start + chrono::Duration::days(365);
        let mut opts = options(dir.path());
        opts.retention.retain_days = 180;
        opts.retention.chunk = 50;
        opts.retention.pause = Duration::ZERO;
        assert_eq!(bulk::load(&opts, a_year(start), 500).unwrap(), 1095);
        let clock = Arc::new(ManualClock::new(now));
        let journal = Journal::open(opts.clone(), clock).unwrap();

        // Everything, as the journal holds it before the run.
        let mut before = BTreeMap::new();
        let mut after = None;
        loop {
            let page = journal.list(None, after.clone(), 500).await.unwrap();
            for r in page.receipts {
                let full = journal.get(r.id.clone()).await.unwrap().unwrap();
                before.insert(r.id.clone(), full);
            }
            match page.next_after {
                Some(a) => after = Some(a),
                None => break,
            }
        }
        assert_eq!(before.len(), 1095);
        let cutoff = now - chrono::Duration::days(180);
        let due = |r: &StoredReceipt| {
            matches!(r.state, ReceiptState::Fiscalized | ReceiptState::Discarded)
                && chrono::DateTime::parse_from_rfc3339(&r.updated_at).unwrap() < cutoff
        };
        let expected: Vec<&String> = before
            .iter()
            .filter(|(_, r)| due(r))
            .map(|(id, _)| id)
            .collect();
        // Days 0..=184 are older than the cutoff (day 185 is exactly on it).
        let per_day_final = |d: i64| 3 - u64::from(d % 10 == 0) - u64::from(d % 7 == 0);
        assert_eq!(
            expected.len() as u64,
            (0..185).map(per_day_final).sum::<u64>()
        );

        wait_for_idle_truncate(&journal).await;
        let file_before = std::fs::metadata(&opts.path).unwrap().len();
        let report = journal.run_retention(now).await;
        assert_eq!(report.error, None);
        assert_eq!(report.archived as usize, expected.len());
        assert!(report.freed_bytes > 0, "{report:?}");

        let stats = journal.stats().await.unwrap();
        assert_eq!(stats.receipts as usize, 1095 - expected.len());
        assert_eq!(stats.archived as usize, expected.len());
        for (id, r) in &before {
            let live = journal.get(id.clone()).await.unwrap();
            if due(r) {
                assert!(live.is_none(), "{id} should have been archived");
                let archived = journal.find_archived(id.clone()).await.unwrap();
                assert_eq!(
                    serde_json::to_value(archived.as_ref()).unwrap(),
                    serde_json::to_value(Some(r)).unwrap(),
                    "{id} comes back from the archive as it was"
                );
            } else {
                assert_eq!(live.as_ref().map(|l| l.state), Some(r.state), "{id} stays");
            }
        }
        // The tallies went through inserts, updates and deletes: they match the rows.
        let counted: Vec<(String, i64)> = journal
            .read(|r| {
                r.with_conn(|c| {
                    Ok(
                        c.prepare("SELECT state, count(*) FROM receipts GROUP BY state")?
                            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<Result<_, _>>()?,
                    )
                })
            })
            .await
            .unwrap();
        for (state, n) in &stats.by_state {
            let rows = counted
                .iter()
                .find(|(s, _)| s == state.code())
                .map_or(0, |c| c.1);
            assert_eq!(*n as i64, rows, "tally of {state}");
        }
        let job_rows: i64 = journal
            .read(|r| {
                r.with_conn(|c| Ok(c.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))?))
            })
            .await
            .unwrap();
        assert_eq!(
            stats.jobs.iter().map(|t| t.count as i64).sum::<i64>(),
            job_rows
        );
        // Never pruned: pending and rejected receipts, however old.
        assert_eq!(stats.count(ReceiptState::Rejected), 37);
        assert_eq!(stats.count(ReceiptState::Accepted), 53);

        // One file per month, each sealed with its checksum, nothing twice.
        let archive = Archive::new(opts.retention.archive_dir.clone());
        let files = journal.archives().await.unwrap();
        assert_eq!(
            files
                .iter()
                .map(|f| f.file.month.as_str())
                .collect::<Vec<_>>(),
            [
                "2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06", "2025-07"
            ]
        );
        let mut all = Vec::new();
        for f in &files {
            assert!(archive.sealed(&f.file.month).unwrap());
            let ids = archive.ids(&f.file.month).unwrap();
            assert_eq!(f.receipts, Some(ids.len() as u64));
            all.extend(ids);
        }
        all.sort();
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(all, want);

        // The space is given back to the file system.
        wait_for_idle_truncate(&journal).await;
        let file_after = std::fs::metadata(&opts.path).unwrap().len();
        assert!(
            file_after < file_before * 3 / 4,
            "the journal file shrank: {file_before} -> {file_after}"
        );

        // An archived receipt's caller key still names it: no second receipt.
        let day0 = before
            .values()
            .find(|r| r.caller_key.as_deref() == Some("order-0"))
            .unwrap();
        let err = journal
            .accept(
                NewReceipt {
                    source: Source::Native,
                    caller_key: Some("order-0".into()),
                    receipt: receipt(1000),
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JournalError::ArchivedKey { receipt_id, .. } if *receipt_id == day0.id),
            "{err:?}"
        );

        // A second run finds nothing more to do.
        let again = journal.run_retention(now).await;
        assert_eq!((again.archived, again.error), (0, None));
    }

    /// Claim and write a chunk the way a run does, then stop as a crash
    /// would: after the append (`torn` false) or halfway through it.
    async fn crash_mid_chunk(journal: &Journal, now: DateTime<Utc>, torn: bool) -> Claim {
        let policy = journal.retention_policy().clone();
        let cutoff = (now - chrono::Duration::days(i64::from(policy.retain_days))).timestamp();
        let (month, receipts) = journal
            .read(move |r| r.with_conn(|c| eligible(c, cutoff, 40)))
            .await
            .unwrap()
            .unwrap();
        let archive = Archive::new(policy.archive_dir.clone());
        let offset = archive.len(&month).unwrap();
        let ids: Vec<String> = receipts.iter().map(|r| r.id.clone()).collect();
        let m = month.clone();
        let kept = journal
            .apply(Duration::from_secs(5), move |c, _| {
                claim(c, &m, offset, &ids, cutoff)
            })
            .await
            .unwrap();
        let lines: Vec<String> = receipts
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let end = archive.append(&month, &lines).unwrap();
        if torn {
            archive
                .truncate(&month, offset + (end - offset) / 2)
                .unwrap();
        }
        Claim {
            month,
            offset,
            ids: kept,
        }
    }

    async fn agreement(journal: &Journal, all: &[String]) {
        let archive = Archive::new(journal.retention_policy().archive_dir.clone());
        let mut archived = Vec::new();
        for f in archive.list().unwrap() {
            assert!(archive.sealed(&f.month).unwrap(), "{} sealed", f.month);
            archived.extend(archive.ids(&f.month).unwrap());
        }
        let n = archived.len();
        archived.sort();
        archived.dedup();
        assert_eq!(n, archived.len(), "no receipt archived twice");
        for id in all {
            let live = journal.get(id.clone()).await.unwrap().is_some();
            let gone = archived.binary_search(id).is_ok();
            assert!(
                live != gone,
                "{id}: in the journal {live}, in the archive {gone}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunk_interrupted_after_or_during_its_append_is_finished_or_undone() {
        for torn in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let start = Utc.with_ymd_and_hms(2020, 3, 1, 9, 0, 0).unwrap();
            let now = start + chrono::Duration::days(400);
            let mut opts = options(dir.path());
            opts.retention.retain_days = 100;
            opts.retention.pause = Duration::ZERO;
            let receipts = (0..120).map(|i| BulkReceipt {
                at: start + chrono::Duration::hours(i),
                new: NewReceipt {
                    source: Source::Native,
                    caller_key: None,
                    receipt: receipt(100 + i),
                },
                outcome: Outcome::Fiscalized,
            });
            bulk::load(&opts, receipts, 1000).unwrap();
            let journal = Journal::open(opts, Arc::new(ManualClock::new(now))).unwrap();
            let all: Vec<String> = journal
                .list(None, None, 500)
                .await
                .unwrap()
                .receipts
                .into_iter()
                .map(|r| r.id)
                .collect();
            let claim = crash_mid_chunk(&journal, now, torn).await;
            // A reprint of a receipt on its way out waits for the chunk.
            assert!(matches!(
                journal.operator_print(claim.ids[0].clone()).await,
                Err(JournalError::Busy)
            ));
            let report = journal.run_retention(now).await;
            assert_eq!(report.error, None);
            let want = if torn { "undone" } else { "completed" };
            assert_eq!(report.recovered.as_deref(), Some(want));
            assert_eq!(report.archived, 120, "{report:?}");
            agreement(&journal, &all).await;
        }
    }
}
