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

mod migrations;
mod read;
mod writer;

pub use migrations::{MIGRATIONS, MigrationError, latest_version};
pub use read::{Page, Stats};

use crate::clock::Clock;
use crate::domain::{Receipt, Source};
use chrono_tz::Tz;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

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
#[derive(Clone, Debug, Serialize)]
pub struct StoredReceipt {
    pub id: String,
    pub number: u64,
    pub source: Source,
    pub state: String,
    pub idempotency_key: String,
    pub offline_url: String,
    pub caller_key: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub receipt: Receipt,
    /// Filled by single-receipt reads; empty in listings.
    pub history: Vec<Event>,
}

/// One entry of a receipt's state history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at: String,
    /// Who moved it: `api:native`, `sync`, `operator`, …
    pub actor: String,
    pub state: String,
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

/// A handle to the journal; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Journal {
    tx: crossbeam_channel::Sender<writer::Command>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    reader: Arc<read::Reader>,
}

impl Journal {
    /// Open (creating and migrating as needed) and start the writer thread.
    pub fn open(options: Options, clock: Arc<dyn Clock>) -> Result<Journal, JournalError> {
        if let Some(dir) = options.path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                JournalError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = writer::open_writer(&options)?;
        let (tx, rx) = crossbeam_channel::bounded(options.queue_capacity);
        let reader = Arc::new(read::Reader::new(
            options.path.clone(),
            options.busy_timeout,
        ));
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::run(conn, rx, options, clock))
            .map_err(|e| {
                JournalError::Unavailable(format!("cannot start the writer thread: {e}"))
            })?;
        Ok(Journal {
            tx,
            writer: Arc::new(Mutex::new(Some(thread))),
            reader,
        })
    }

    /// Journal a receipt. Returns only after the commit is durable on disk.
    pub async fn accept(
        &self,
        new: NewReceipt,
        timeout: Duration,
    ) -> Result<Accepted, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.send(writer::Command::Accept(Box::new(new), reply))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(JournalError::Closed),
            Err(_) => Err(JournalError::Busy),
        }
    }

    /// Round trip through the writer: proves it is alive and committing.
    pub async fn ping(&self, timeout: Duration) -> Result<(), JournalError> {
        let (reply, rx) = oneshot::channel();
        self.send(writer::Command::Ping(reply))?;
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

    pub async fn list(
        &self,
        state: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page, JournalError> {
        self.read(move |r| r.list(state.as_deref(), after.as_deref(), limit))
            .await
    }

    pub async fn stats(&self) -> Result<Stats, JournalError> {
        self.read(|r| r.stats()).await
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
