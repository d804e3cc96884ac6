//! The receipt journal: SQLite in WAL mode with `synchronous=FULL`.
//!
//! One writer thread owns the only read-write connection. Callers send it
//! commands over a channel; it takes every command waiting, applies them in one
//! transaction (each inside its own savepoint, so one bad request cannot spoil
//! the others), commits once, and only then answers each caller: one fsync
//! serves a whole batch ("group commit"). Reads go through a small pool of
//! read-only connections, which WAL lets run beside the writer.
//!
//! The journal never decides what a receipt means: it stores validated domain
//! receipts, numbers them, and records their state history.

pub mod archive;
pub mod billing;
pub mod bulk;
mod cash;
mod migrations;
mod ops;
mod read;
pub mod retention;
pub mod wal;
mod writer;

pub use billing::{BillingCheckRow, FiscalboxSale, SavedCheck};
pub use cash::{CashAccepted, JOB_CASH, StoredCash};
pub use migrations::{MIGRATIONS, MigrationError, latest_version};
pub use ops::{JobKind, JobMarker, JobState};
pub use read::{
    Job, JobCounts, JobTally, OldestPending, OpsView, Page, RecentEvent, RejectedReceipt, Stats,
    SyncCounts,
};
pub use retention::{ArchiveListing, DEFAULT_RETAIN_DAYS, RetentionPolicy, RetentionReport};
pub use wal::{WalPolicy, WalStats};

use crate::clock::Clock;
use crate::domain::fiscal::FiscalAttributes;
use crate::domain::{Receipt, ReceiptState, Source};
use chrono_tz::Tz;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long background writers (sync, operator actions) wait for a commit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the writer opens the journal and how it computes receipt identities.
#[derive(Clone, Debug)]
pub struct Options {
    pub path: PathBuf,
    pub batch_max: usize,
    /// Cap on the database size (SQLite `max_page_count`); `None` for no cap.
    pub max_bytes: Option<u64>,
    pub busy_timeout: Duration,
    /// How many commands may wait for the writer before callers get `Busy`.
    pub queue_capacity: usize,
    pub pin: String,
    pub timezone: Tz,
    pub offline_base_url: String,
    /// The job that fiscalizes a new receipt: [`JobKind::Fiscalize`] (the cloud)
    /// or [`JobKind::Register`] (the fiscal register).
    pub fiscal_job: JobKind,
    /// Queue a [`JobKind::Print`] job for every new receipt (a printer is
    /// configured and the cloud fiscalizes: it prints with the offline link).
    pub print_on_accept: bool,
    /// Cloud backend: once a receipt that got a slip is fiscalized, print
    /// the fiscal receipt (`[printer] after_slip = "fiscal_receipt"`).
    pub print_after_slip: bool,
    /// Queue a [`JobKind::Print`] job when the register (or the FiscalBox)
    /// has fiscalized a receipt (the customer copy with the fiscal QR; for a
    /// FiscalBox receipt, the Soliq link).
    pub print_after_register: bool,
    /// How large the WAL may grow.
    pub wal: WalPolicy,
    /// When final receipts move to the archive, and where it is.
    pub retention: RetentionPolicy,
}

impl Options {
    /// The journal as the daemon opens it under `settings`, at `path`: the
    /// fiscal backend and the printer decide which jobs a new receipt gets.
    pub fn from_settings(settings: &crate::config::Settings, path: PathBuf) -> Options {
        use crate::config::Backend;
        let backend = settings.devices.backend;
        let printer = settings.devices.printer.is_some();
        Options {
            retention: RetentionPolicy {
                retain_days: settings.retain_days,
                archive_dir: settings.archive_dir.clone(),
                ..RetentionPolicy::beside(&path)
            },
            path,
            batch_max: settings.batch_max,
            max_bytes: settings.journal_max_bytes,
            busy_timeout: settings.busy_timeout,
            queue_capacity: 4096,
            pin: settings.pin.clone(),
            timezone: settings.timezone,
            offline_base_url: settings.cloud.base_url.clone(),
            fiscal_job: match backend {
                Backend::Cloud => JobKind::Fiscalize,
                Backend::Register => JobKind::Register,
                Backend::Fiscalbox => JobKind::Fiscalbox,
            },
            print_on_accept: printer && backend == Backend::Cloud,
            print_after_slip: printer
                && backend == Backend::Cloud
                && settings
                    .devices
                    .printer
                    .as_ref()
                    .is_some_and(|p| p.after_slip == crate::config::AfterSlip::FiscalReceipt),
            print_after_register: printer && backend != Backend::Cloud,
            wal: WalPolicy {
                limit_bytes: Some(settings.wal_limit_bytes),
            },
        }
    }
}

/// Writer counters since start.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CommitStats {
    pub commits: u64,
    pub commands: u64,
    pub largest_batch: u64,
}

/// A validated receipt on its way into the journal.
#[derive(Clone, Debug)]
pub struct NewReceipt {
    pub source: Source,
    /// The caller's own key for this receipt (the native `Idempotency-Key`
    /// header, a dialect's `uuid`, …): a repeat maps to the same receipt forever.
    pub caller_key: Option<String>,
    pub receipt: Receipt,
}

/// What [`Journal::accept`] did.
#[derive(Clone, Debug)]
pub enum Accepted {
    /// A new receipt was numbered and committed.
    Created(StoredReceipt),
    /// The caller's key was seen before with the same receipt: nothing written.
    Replayed(StoredReceipt),
}

/// A receipt as the journal holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredReceipt {
    pub id: String,
    pub number: u64,
    pub source: Source,
    pub state: ReceiptState,
    pub idempotency_key: String,
    pub offline_url: String,
    pub caller_key: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub receipt: Receipt,
    /// What the fiscal processing assigned, once fiscalized.
    pub fiscal: Option<FiscalAttributes>,
    /// The fiscal QR string (`t=…&s=…&fn=…&i=…&fp=…&n=…`), once fiscalized.
    pub fiscal_qr: Option<String>,
    /// The receipt's fiscalization job, where it has one.
    pub sync: Option<SyncView>,
    /// The receipt's print job, where it has one.
    pub print: Option<PrintView>,
    /// Filled by single-receipt reads; empty in listings.
    pub history: Vec<Event>,
}

/// Where a receipt's fiscalization job stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    /// `fiscalize` (the cloud) or `register` (the fiscal register).
    pub kind: JobKind,
    pub job_state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Unix milliseconds; 0 means "as soon as possible".
    pub next_attempt_at: i64,
    pub document_id: Option<u64>,
}

/// Where a receipt's print job stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintView {
    pub job_state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Times the receipt went (wholly or partly) to the printer; more than one
    /// means copies marked as such.
    pub copies: u32,
}

/// One entry of a receipt's state history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    /// Who moved it: `api:native`, `sync`, `operator`, …
    pub actor: String,
    pub state: ReceiptState,
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The disk (or the configured cap) is full. Nothing of the request was written.
    #[error(
        "the journal is full (disk or journal.max_size_mb); nothing was written — free space, then retry"
    )]
    Full,
    /// The writer is overloaded or the commit took longer than allowed.
    #[error("the journal is busy; retry with the same idempotency key")]
    Busy,
    /// The writer thread has stopped (shutdown or a fatal error).
    #[error("the journal is closed")]
    Closed,
    /// A rule that depends on committed receipts refused the request (a
    /// refund beyond what was sold); nothing was written.
    #[error("refused: {}", .0.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; "))]
    Refused(Vec<crate::domain::Violation>),
    /// The caller's key already names a different receipt.
    #[error(
        "{source_name} key {caller_key:?} was already used for receipt {existing_id} (number {existing_number}) with different content"
    )]
    Conflict {
        source_name: &'static str,
        caller_key: String,
        existing_id: String,
        existing_number: u64,
    },
    /// The caller's key names a receipt retention has moved to the archive.
    #[error(
        "{source_name} key {caller_key:?} was used for receipt {receipt_id}, which is now in the archive (final and older than [journal] retain_days); nothing was written — look it up at /v1/archive/receipts/{receipt_id}"
    )]
    ArchivedKey {
        source_name: &'static str,
        caller_key: String,
        receipt_id: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("cannot {action} a receipt that is {state}; only a {wanted} receipt can be")]
    WrongState {
        action: &'static str,
        state: ReceiptState,
        wanted: ReceiptState,
    },
    #[error("unknown cursor {0:?}: pass the `next_after` value of the previous page")]
    BadCursor(String),
    #[error("the journal cannot be written: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DiskFull) => JournalError::Full,
            Some(C::DatabaseBusy | C::DatabaseLocked) => JournalError::Busy,
            _ => JournalError::Unavailable(e.to_string()),
        }
    }
}

/// The journal's outbox notifier: woken by the journal after it commits a
/// job (a new receipt's jobs, an operator's retry or reprint), never by an
/// API handler. The sync worker waits on `sync`, the device worker on
/// `devices`. A write that adds jobs calls [`Outbox::committed`] after its
/// commit.
#[derive(Debug, Default)]
pub struct Outbox {
    pub sync: Arc<tokio::sync::Notify>,
    pub devices: Arc<tokio::sync::Notify>,
    /// The FiscalBox worker.
    pub fiscalbox: Arc<tokio::sync::Notify>,
}

impl Outbox {
    /// Jobs were committed: every worker looks again.
    pub fn committed(&self) {
        self.sync.notify_one();
        self.devices.notify_one();
        self.fiscalbox.notify_one();
    }
}

/// A handle to the journal; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Journal {
    tx: crossbeam_channel::Sender<writer::Command>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    reader: Arc<read::Reader>,
    metrics: Arc<writer::WriterMetrics>,
    wal: Arc<wal::WalState>,
    wal_policy: WalPolicy,
    retention_policy: RetentionPolicy,
    retention: Arc<Mutex<Option<RetentionReport>>>,
    /// Asks a retention run to stop after its current chunk.
    retention_stop: Arc<std::sync::atomic::AtomicBool>,
    outbox: Arc<Outbox>,
}

impl Journal {
    /// Open (creating and migrating as needed) and start the writer thread.
    pub fn open(options: Options, clock: Arc<dyn Clock>) -> Result<Journal, JournalError> {
        if let Some(dir) = options.path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    JournalError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
        }
        let wal = Arc::new(wal::WalState::default());
        let wal_policy = options.wal;
        let retention_policy = options.retention.clone();
        let conn = writer::open_writer(&options, wal.clone())?;
        let (tx, rx) = crossbeam_channel::bounded(options.queue_capacity);
        let metrics = Arc::new(writer::WriterMetrics::default());
        let reader = Arc::new(read::Reader::new(
            options.path.clone(),
            options.busy_timeout,
        ));
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn({
                let metrics = metrics.clone();
                let wal = wal.clone();
                move || writer::run(conn, rx, options, clock, metrics, wal)
            })
            .map_err(|e| {
                JournalError::Unavailable(format!("cannot start the writer thread: {e}"))
            })?;
        Ok(Journal {
            tx,
            writer: Arc::new(Mutex::new(Some(thread))),
            reader,
            metrics,
            wal,
            wal_policy,
            retention_policy,
            retention: Arc::new(Mutex::new(None)),
            retention_stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            outbox: Arc::new(Outbox::default()),
        })
    }

    /// The notifier the workers wait on.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Journal a receipt. Returns only after the commit is durable on disk.
    pub async fn accept(
        &self,
        new: NewReceipt,
        timeout: Duration,
    ) -> Result<Accepted, JournalError> {
        // Serialize and hash on the caller's thread: the writer's time is the
        // one resource every receipt shares.
        let encoded = new.receipt.encoded();
        let accepted = self
            .apply(timeout, move |c, ctx| ops::accept(c, ctx, new, encoded))
            .await?;
        if let Accepted::Created(_) = accepted {
            self.outbox.committed();
        }
        Ok(accepted)
    }

    /// Round trip through the writer: proves it is alive and committing.
    pub async fn ping(&self, timeout: Duration) -> Result<(), JournalError> {
        self.apply(timeout, |_, _| Ok(())).await
    }

    /// The processing registered the job's receipt as `document_id`.
    pub async fn record_submitted(
        &self,
        job_id: i64,
        document_id: u64,
    ) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::record_submitted(c, ctx, job_id, document_id)
        })
        .await
    }

    /// The job's receipt was fiscalized (by the processing, or by the register
    /// when `actor` is `register`): store its attributes and QR string.
    pub async fn record_fiscalized(
        &self,
        job_id: i64,
        attrs: FiscalAttributes,
        qr: String,
        actor: &'static str,
    ) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::record_fiscalized(c, ctx, job_id, &attrs, &qr, actor)
        })
        .await?;
        // A print job may have come with it; the box's confirms may wait on it.
        self.outbox.committed();
        Ok(())
    }

    /// Merge `patch` (a JSON object) into the job's data: a device job's
    /// progress marker, written *before* the device is told to act.
    pub async fn mark_job<M: JobMarker>(
        &self,
        job_id: i64,
        marker: &M,
    ) -> Result<(), JournalError> {
        let patch = serde_json::to_value(marker).expect("a marker serializes");
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::mark_job(c, ctx, job_id, &patch)
        })
        .await
    }

    /// A job without a receipt state change is done (a receipt printed);
    /// `note` goes into the receipt's history under `actor`.
    pub async fn complete_job(
        &self,
        job_id: i64,
        actor: &'static str,
        note: String,
    ) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::complete_job(c, ctx, job_id, actor, &note)
        })
        .await
    }

    /// Run the job again at `next_attempt_at` (unix ms); `error` counts an attempt.
    pub async fn reschedule(
        &self,
        job_id: i64,
        next_attempt_at: i64,
        error: Option<String>,
    ) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::reschedule(c, ctx, job_id, next_attempt_at, error.as_deref())
        })
        .await
    }

    /// A permanent failure: the receipt becomes `rejected` until an operator acts.
    pub async fn park(&self, job_id: i64, message: String) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::park(c, ctx, job_id, &message)
        })
        .await
    }

    pub async fn operator_retry(&self, receipt_id: String) -> Result<StoredReceipt, JournalError> {
        let stored = self
            .apply(WRITE_TIMEOUT, move |c, ctx| {
                ops::operator_retry(c, ctx, &receipt_id)
            })
            .await?;
        self.outbox.committed();
        Ok(stored)
    }

    /// Print the receipt (again, as a copy, if it was printed before).
    pub async fn operator_print(&self, receipt_id: String) -> Result<StoredReceipt, JournalError> {
        let stored = self
            .apply(WRITE_TIMEOUT, move |c, ctx| {
                ops::operator_print(c, ctx, &receipt_id)
            })
            .await?;
        self.outbox.committed();
        Ok(stored)
    }

    pub async fn operator_discard(
        &self,
        receipt_id: String,
        reason: String,
    ) -> Result<StoredReceipt, JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::operator_discard(c, ctx, &receipt_id, &reason)
        })
        .await
    }

    /// Queue the delivery of a payment confirm for `receipt_id` (once per
    /// receipt): `true` when queued now, `false` when it already was.
    pub async fn queue_confirm(
        &self,
        receipt_id: String,
        data: serde_json::Value,
    ) -> Result<bool, JournalError> {
        let queued = self
            .apply(WRITE_TIMEOUT, move |c, ctx| {
                ops::queue_confirm(c, ctx, &receipt_id, &data)
            })
            .await?;
        self.outbox.committed();
        Ok(queued)
    }

    /// Set named counters together, in one commit (the FiscalBox dialect's
    /// shift state lives in the `counters` table: no schema change).
    /// `expect` guards a transition: the first counter must hold that value.
    pub async fn set_counters(
        &self,
        expect: Option<(&'static str, i64)>,
        values: Vec<(&'static str, i64)>,
    ) -> Result<bool, JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, _| {
            if let Some((name, want)) = expect {
                let now: i64 = c
                    .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .unwrap_or(0);
                if now != want {
                    return Ok(false);
                }
            }
            for (name, value) in &values {
                c.prepare_cached(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(rusqlite::params![name, value])?;
            }
            Ok(true)
        })
        .await
    }

    pub async fn counter(&self, name: &'static str) -> Result<i64, JournalError> {
        self.read(move |r| r.counter(name)).await
    }

    /// Receipts numbered in `(after, upto]`, in order.
    pub async fn numbered(
        &self,
        after: u64,
        upto: u64,
    ) -> Result<Vec<StoredReceipt>, JournalError> {
        self.read(move |r| r.numbered(after, upto)).await
    }

    /// The receipt a link names (offline link or fiscal QR).
    pub async fn find_by_link(&self, link: String) -> Result<Option<StoredReceipt>, JournalError> {
        self.read(move |r| r.find_by_link(&link)).await
    }

    /// Store (or with `None`, forget) a named secret such as a cloud token.
    pub async fn save_secret(
        &self,
        name: &'static str,
        value: Option<String>,
        expires_at: Option<i64>,
    ) -> Result<(), JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            ops::save_secret(c, ctx, name, value.as_deref(), expires_at)
        })
        .await
    }

    async fn apply<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&rusqlite::Connection, &writer::Ctx<'_>) -> Result<T, JournalError>
        + Send
        + 'static,
    ) -> Result<T, JournalError> {
        let (op, rx) = writer::op(f);
        self.send(writer::Command::Op(op))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(JournalError::Closed),
            Err(_) => Err(JournalError::Busy),
        }
    }

    fn send(&self, command: writer::Command) -> Result<(), JournalError> {
        self.tx.try_send(command).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => JournalError::Busy,
            crossbeam_channel::TrySendError::Disconnected(_) => JournalError::Closed,
        })
    }

    /// Let the writer finish every command already queued, then stop it.
    /// Blocks; call from a blocking context.
    pub fn close(&self) {
        let _ = self.tx.send(writer::Command::Shutdown);
        let handle = self.writer.lock().expect("writer handle lock").take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    pub async fn get(&self, id: String) -> Result<Option<StoredReceipt>, JournalError> {
        self.read(move |r| r.get(&id)).await
    }

    /// The receipt `(source, caller key)` names, if any.
    pub async fn by_caller_key(
        &self,
        source: Source,
        key: String,
    ) -> Result<Option<StoredReceipt>, JournalError> {
        self.read(move |r| r.by_caller_key(source.code(), &key))
            .await
    }

    pub async fn list(
        &self,
        state: Option<ReceiptState>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page, JournalError> {
        self.read(move |r| r.list(state, after.as_deref(), limit))
            .await
    }

    /// Whether `(source, key)` already names a receipt.
    pub async fn caller_key_known(
        &self,
        source: Source,
        key: String,
    ) -> Result<bool, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                Ok(c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM caller_keys WHERE source = ?1 AND caller_key = ?2)",
                    rusqlite::params![source.code(), key],
                    |row| row.get(0),
                )?)
            })
        })
        .await
    }

    /// What the journal holds, from tallies: the same cost at any size.
    pub async fn stats(&self) -> Result<Stats, JournalError> {
        let wal = self.wal_stats();
        self.read(move |r| r.stats(wal)).await
    }

    /// The WAL's size, limit and last checkpoint.
    pub fn wal_stats(&self) -> WalStats {
        self.wal.stats(self.reader.path(), &self.wal_policy)
    }

    /// Pending jobs of `kind` due at `now_ms`, oldest first, skipping `busy` ones.
    pub async fn due_jobs(
        &self,
        kind: JobKind,
        now_ms: i64,
        limit: usize,
        busy: Vec<i64>,
    ) -> Result<Vec<Job>, JournalError> {
        self.read(move |r| r.due_jobs(kind, now_ms, limit, &busy))
            .await
    }

    /// When the earliest pending job of `kind` falls due (unix ms).
    pub async fn next_due_at(&self, kind: JobKind) -> Result<Option<i64>, JournalError> {
        self.read(move |r| r.next_due_at(kind)).await
    }

    /// Pending and parked jobs of each kind (for `GET /v1/devices`).
    pub async fn job_counts(
        &self,
        kinds: &'static [JobKind],
    ) -> Result<std::collections::BTreeMap<JobKind, JobCounts>, JournalError> {
        self.read(move |r| r.job_counts(kinds)).await
    }

    /// The journal as the status page and `/metrics` show it; `today` is
    /// the till-local date (`YYYY-MM-DD`).
    pub async fn ops_view(&self, today: String) -> Result<OpsView, JournalError> {
        self.read(move |r| r.ops_view(&today)).await
    }

    pub async fn sync_counts(&self) -> Result<SyncCounts, JournalError> {
        self.read(|r| r.sync_counts()).await
    }

    pub async fn secret(
        &self,
        name: &'static str,
    ) -> Result<Option<(String, Option<i64>)>, JournalError> {
        self.read(move |r| r.secret(name)).await
    }

    /// Commits and batch sizes so far (group commit at work).
    pub fn commit_stats(&self) -> CommitStats {
        use std::sync::atomic::Ordering::Relaxed;
        CommitStats {
            commits: self.metrics.commits.load(Relaxed),
            commands: self.metrics.commands.load(Relaxed),
            largest_batch: self.metrics.largest_batch.load(Relaxed),
        }
    }

    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&read::Reader) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader))
            .await
            .map_err(|e| JournalError::Unavailable(format!("read task failed: {e}")))?
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::*;
    use chrono::TimeZone;

    pub(crate) fn options(dir: &Path) -> Options {
        Options {
            retention: RetentionPolicy::beside(&dir.join("j.sqlite")),
            path: dir.join("j.sqlite"),
            batch_max: 64,
            max_bytes: None,
            busy_timeout: Duration::from_secs(5),
            queue_capacity: 1024,
            pin: "1234".into(),
            timezone: chrono_tz::Europe::Moscow,
            offline_base_url: "https://fp.example/processing-api/".into(),
            fiscal_job: JobKind::Fiscalize,
            print_on_accept: false,
            print_after_slip: false,
            print_after_register: false,
            wal: WalPolicy::default(),
        }
    }

    pub(crate) fn receipt(price: i64) -> Receipt {
        let line = Line {
            name: "Услуга".into(),
            quantity: Quantity(1000),
            price: Money(price),
            vat: Vat::Vat20,
            payment_subject: PaymentSubject::Service,
            calculation_method: CalculationMethod::FullPay,
            barcode: None,
            class_code: None,
            package_code: None,
            marking: vec![],
            unit: Default::default(),
            discount: Default::default(),
            agent: None,
        };
        Receipt {
            correction: None,
            marking_checks: vec![],
            discount: Default::default(),
            original_date: None,
            kind: ReceiptKind::Sale,
            tax_system: TaxSystem::Common,
            currency: "RUB".into(),
            items: vec![Item {
                receipt_discount: Default::default(),
                line,
                total: Money(price),
            }],
            payments: vec![Payment {
                kind: PaymentKind::Cash,
                amount: Money(price),
            }],
            total: Money(price),
            change: Money::ZERO,
            cashier: None,
            buyer: None,
            uz: None,
        }
    }

    #[tokio::test]
    async fn numbers_keys_and_links_from_the_till_clock() {
        let dir = tempfile::tempdir().unwrap();
        // 11:05:59 UTC is 14:05 in Moscow: the key uses the till's local minute.
        let clock = Arc::new(ManualClock::new(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 23, 11, 5, 59)
                .unwrap(),
        ));
        let journal = Journal::open(options(dir.path()), clock.clone()).unwrap();
        let mut stored = Vec::new();
        for price in [15000, 2500] {
            let new = NewReceipt {
                source: Source::Native,
                caller_key: None,
                receipt: receipt(price),
            };
            match journal.accept(new, Duration::from_secs(5)).await.unwrap() {
                Accepted::Created(r) => stored.push(r),
                Accepted::Replayed(_) => panic!("no caller key, no replay"),
            }
            clock.advance(chrono::Duration::minutes(1));
        }
        // printf '1/1234/150.00/23.11.2026 14:05' | sha256sum
        assert_eq!(stored[0].number, 1);
        assert_eq!(
            stored[0].idempotency_key,
            crate::domain::idempotency::idempotency_key(
                1,
                "1234",
                Money(15000),
                chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
                    .unwrap()
                    .and_hms_opt(14, 5, 0)
                    .unwrap()
            )
        );
        assert_eq!(stored[0].created_at, "2026-11-23T14:05:59.000+03:00");
        assert_eq!(
            stored[0].offline_url,
            format!(
                "https://fp.example/processing-api/receipts/{}",
                stored[0].idempotency_key
            )
        );
        assert_eq!(stored[1].number, 2);
        let loaded = journal.get(stored[1].id.clone()).await.unwrap().unwrap();
        assert_eq!(loaded.receipt, receipt(2500));
        assert_eq!(loaded.history.len(), 1);
        let journal2 = journal.clone();
        tokio::task::spawn_blocking(move || journal2.close())
            .await
            .unwrap();
        assert!(matches!(
            journal.ping(Duration::from_secs(1)).await,
            Err(JournalError::Closed)
        ));
    }

    #[tokio::test]
    async fn an_operator_retry_keeps_the_register_marker_and_a_reprint_is_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(
            Options {
                fiscal_job: JobKind::Register,
                print_after_register: true,
                ..options(dir.path())
            },
            Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        let new = NewReceipt {
            source: Source::Native,
            caller_key: None,
            receipt: receipt(100),
        };
        let Accepted::Created(r) = journal.accept(new, Duration::from_secs(5)).await.unwrap()
        else {
            panic!("created")
        };
        assert_eq!(r.sync.as_ref().unwrap().kind, JobKind::Register);
        let job = journal
            .due_jobs(JobKind::Register, i64::MAX, 1, vec![])
            .await
            .unwrap()[0]
            .clone();
        journal
            .mark_job(
                job.id,
                &crate::devices::reconcile::RegisterMarker {
                    fd_before: Some(41),
                },
            )
            .await
            .unwrap();
        journal.park(job.id, "refused".into()).await.unwrap();
        journal.operator_retry(r.id.clone()).await.unwrap();
        // The retry must first ask the register whether it has the receipt after all.
        let again = journal
            .due_jobs(JobKind::Register, i64::MAX, 1, vec![])
            .await
            .unwrap();
        let marker: crate::devices::reconcile::RegisterMarker = again[0].marker();
        assert_eq!(marker.fd_before, Some(41));

        // Fiscalized by the register: the customer copy's print job follows.
        let attrs = crate::domain::fiscal::FiscalAttributes {
            fiscal_document_number: 42,
            fiscal_sign: "1".into(),
            fiscal_drive_number: "2".into(),
            kkt_reg_id: "3".into(),
            shift_number: 1,
            receipt_number_in_shift: 1,
            date_time: chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
                .unwrap()
                .and_hms_opt(14, 5, 0)
                .unwrap(),
            ofd_receipt_url: None,
        };
        journal
            .record_fiscalized(job.id, attrs, "t=…".into(), "register")
            .await
            .unwrap();
        let print = journal
            .due_jobs(JobKind::Print, i64::MAX, 1, vec![])
            .await
            .unwrap()[0]
            .clone();
        journal
            .mark_job(
                print.id,
                &crate::devices::jobs::PrintMarker {
                    copies: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        journal
            .complete_job(print.id, "printer", "printed".into())
            .await
            .unwrap();
        let done = journal.get(r.id.clone()).await.unwrap().unwrap();
        assert_eq!(done.state, ReceiptState::Fiscalized);
        assert_eq!(done.print.as_ref().unwrap().job_state, JobState::Done);
        // A reprint reopens the same job, its copy count intact.
        let again = journal.operator_print(r.id.clone()).await.unwrap();
        assert_eq!(again.print.as_ref().unwrap().job_state, JobState::Pending);
        assert_eq!(again.print.as_ref().unwrap().copies, 1);
        let events: Vec<_> = journal
            .get(r.id.clone())
            .await
            .unwrap()
            .unwrap()
            .history
            .iter()
            .map(|e| e.actor.clone())
            .collect();
        assert_eq!(
            events,
            [
                "api:native",
                "register",
                "operator",
                "register",
                "printer",
                "operator"
            ]
        );
    }

    #[tokio::test]
    async fn caller_keys_are_per_source() {
        let dir = tempfile::tempdir().unwrap();
        let journal =
            Journal::open(options(dir.path()), Arc::new(crate::clock::SystemClock)).unwrap();
        let accept = |source, price| {
            let journal = journal.clone();
            async move {
                journal
                    .accept(
                        NewReceipt {
                            source,
                            caller_key: Some("order-1".into()),
                            receipt: receipt(price),
                        },
                        Duration::from_secs(5),
                    )
                    .await
            }
        };
        assert!(matches!(
            accept(Source::Native, 100).await,
            Ok(Accepted::Created(_))
        ));
        assert!(matches!(
            accept(Source::Native, 100).await,
            Ok(Accepted::Replayed(_))
        ));
        // The same key from another dialect is another caller's key.
        assert!(matches!(
            accept(Source::Fiscalbox, 100).await,
            Ok(Accepted::Created(_))
        ));
        assert!(matches!(
            accept(Source::Native, 200).await,
            Err(JournalError::Conflict {
                existing_number: 1,
                ..
            })
        ));
        assert_eq!(journal.stats().await.unwrap().receipts, 2);
    }
}
