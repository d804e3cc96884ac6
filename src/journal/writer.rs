//! The single writer: owns the read-write connection and commits in batches.
//!
//! Work arrives as operations: closures over the connection, built by the
//! typed methods of `Journal` (all SQL stays in `journal/`). The writer takes
//! every operation waiting, runs each inside its own savepoint within one
//! transaction, commits once, and only then hands each caller its result.

use super::wal::{CheckpointKind, IDLE_TRUNCATE_AFTER, RESTART_WAIT, WalState};
use super::{JournalError, Options, migrations};
use crate::clock::Clock;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// What an operation sees besides the connection.
pub(super) struct Ctx<'a> {
    /// One instant for the whole batch.
    pub now: DateTime<Utc>,
    pub options: &'a Options,
}

/// An operation's result, held until the batch's commit decides its fate.
pub(super) trait Pending: Send {
    fn succeeded(&self) -> bool;
    fn error(&self) -> Option<&JournalError>;
    /// `commit` is the batch's outcome: on error the caller hears that instead.
    fn deliver(self: Box<Self>, commit: Result<(), &JournalError>);
}

struct PendingReply<T> {
    result: Result<T, JournalError>,
    reply: oneshot::Sender<Result<T, JournalError>>,
}

impl<T: Send> Pending for PendingReply<T> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn error(&self) -> Option<&JournalError> {
        self.result.as_ref().err()
    }

    fn deliver(self: Box<Self>, commit: Result<(), &JournalError>) {
        let outcome = match commit {
            Ok(()) => self.result,
            Err(e) => Err(clone_err(e)),
        };
        let _ = self.reply.send(outcome);
    }
}

/// One unit of work for the writer.
pub(super) trait Operation: Send {
    fn run(self: Box<Self>, conn: &Connection, ctx: &Ctx<'_>) -> Box<dyn Pending>;
    /// Not run at all (the transaction could not be had): tell the caller.
    fn fail(self: Box<Self>, err: &JournalError);
}

pub(super) type Op = Box<dyn Operation>;

struct Typed<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T, JournalError>>,
}

impl<F, T> Operation for Typed<F, T>
where
    F: FnOnce(&Connection, &Ctx<'_>) -> Result<T, JournalError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, ctx: &Ctx<'_>) -> Box<dyn Pending> {
        let result = (self.f)(conn, ctx);
        Box::new(PendingReply {
            result,
            reply: self.reply,
        })
    }

    fn fail(self: Box<Self>, err: &JournalError) {
        let _ = self.reply.send(Err(clone_err(err)));
    }
}

/// Package a typed operation for the writer; the receiver gets its result
/// after the commit.
pub(super) fn op<T: Send + 'static>(
    f: impl FnOnce(&Connection, &Ctx<'_>) -> Result<T, JournalError> + Send + 'static,
) -> (Op, oneshot::Receiver<Result<T, JournalError>>) {
    let (reply, rx) = oneshot::channel();
    (Box::new(Typed { f, reply }), rx)
}

pub(super) enum Command {
    Op(Op),
    Shutdown,
}

pub(super) fn open_writer(
    options: &Options,
    wal: Arc<WalState>,
) -> Result<Connection, JournalError> {
    owner_only(&options.path)?;
    let mut conn = Connection::open(&options.path).map_err(|e| {
        JournalError::Unavailable(format!("cannot open {}: {e}", options.path.display()))
    })?;
    conn.busy_timeout(options.busy_timeout)?;
    // Only takes effect on a new, empty file: pages freed by retention are
    // then given back to the file system by `incremental_vacuum` (a journal
    // created before keeps its free pages for reuse; see docs/RETENTION.md).
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    // Spelled exactly: SQLite ignores an unknown pragma silently, so check it took.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Unavailable(format!(
            "{} cannot use WAL mode (got {mode}); put the journal on a local file system",
            options.path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Accepting touches the right-hand edges of a dozen B-trees (a few
    // hundred KiB at a million receipts); 1 MiB holds them with room to
    // spare, half SQLite's default, and keeps the daemon's memory flat.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    // Checkpoints run on their own thread (see `checkpointer`), not inside a
    // receipt's commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    if let Some(restart_at) = options.wal.restart_at() {
        // When the WAL is started over, its file is cut back to this size.
        conn.pragma_update(None, "journal_size_limit", restart_at as i64)?;
    }
    // Frames in the WAL after each commit: the writer's cue to restart it.
    conn.wal_hook(Some(
        move |_: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
            wal.frames.store(frames.max(0) as u64, Ordering::Relaxed);
            Ok(())
        },
    ))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if let Some(max) = options.max_bytes {
        let page: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", (max / page).max(1))?;
    }
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

/// The writer's page cache, KiB (SQLite's negative `cache_size`).
const WRITER_CACHE_KIB: i64 = -1024;

/// The journal holds every receipt (buyers' e-mails and phones among them)
/// and the cloud tokens: only its owner may read it, also when fiscald runs
/// outside systemd (no `UMask=0077`). The file is created 0600 before SQLite
/// opens it, and SQLite gives its `-wal` and `-shm` files the database's
/// mode; files left too open by an earlier run are narrowed.
fn owner_only(path: &std::path::Path) -> Result<(), JournalError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        JournalError::Unavailable(format!("cannot create {}: {e}", path.display()))
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(fail)?;
        }
    }
    Ok(())
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
    wal: Arc<WalState>,
) {
    let checkpoints = checkpointer(options.path.clone(), options.busy_timeout);
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(4096);
    let restart_frames = options.wal.restart_at().map(|b| b / page_size.max(1));
    let wal_file = super::wal::wal_path(&options.path);
    let mut stopping = false;
    while !stopping {
        let first = match rx.recv_timeout(IDLE_TRUNCATE_AFTER) {
            Ok(cmd) => cmd,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                // Idle: fold the WAL into the database and cut it to zero.
                if restart_frames.is_some()
                    && (wal.frames.load(Ordering::Relaxed) > 0
                        || std::fs::metadata(&wal_file).is_ok_and(|m| m.len() > 0))
                {
                    wal.checkpoint(
                        &conn,
                        CheckpointKind::Truncate,
                        RESTART_WAIT,
                        options.busy_timeout,
                    );
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = Vec::new();
        let mut take = |cmd: Command, batch: &mut Vec<Op>| match cmd {
            Command::Op(op) => batch.push(op),
            Command::Shutdown => stopping = true,
        };
        take(first, &mut batch);
        while batch.len() < options.batch_max {
            match rx.try_recv() {
                Ok(cmd) => take(cmd, &mut batch),
                Err(_) => break,
            }
        }
        // A shutdown still serves everything queued before it.
        if stopping {
            while let Ok(cmd) = rx.try_recv() {
                if let Command::Op(op) = cmd {
                    batch.push(op);
                }
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, batch, &options, clock.as_ref(), &metrics);
            let _ = checkpoints.try_send(());
            if let Some(limit) = restart_frames
                && wal.frames.load(Ordering::Relaxed) > limit
            {
                wal.checkpoint(
                    &conn,
                    CheckpointKind::Restart,
                    RESTART_WAIT,
                    options.busy_timeout,
                );
            }
        }
    }
    drop(checkpoints);
    // Fold the WAL back into the main file so a stopped daemon leaves one file.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    tracing::debug!("journal writer stopped");
}

/// Copy committed WAL frames back into the database file from a thread of
/// its own, so that no receipt's commit waits for a checkpoint. PASSIVE never
/// blocks the writer; once every frame is copied, the writer starts the WAL
/// over. Woken after commits, at most every 50 ms.
fn checkpointer(
    path: std::path::PathBuf,
    busy_timeout: std::time::Duration,
) -> crossbeam_channel::Sender<()> {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let spawned = std::thread::Builder::new().name("journal-checkpoint".into()).spawn(move || {
        let conn = match Connection::open(&path)
            .and_then(|c| c.busy_timeout(busy_timeout).map(|()| c))
            // It only copies pages: a small cache is enough.
            .and_then(|c| c.pragma_update(None, "cache_size", -256).map(|()| c))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "journal: cannot open the checkpoint connection; the WAL will grow until restart");
                return;
            }
        };
        while rx.recv().is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(50));
            while rx.try_recv().is_ok() {}
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "journal: checkpoint failed; will try again");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "journal: cannot start the checkpoint thread");
    }
    tx
}

fn commit_batch(
    conn: &mut Connection,
    batch: Vec<Op>,
    options: &Options,
    clock: &dyn Clock,
    metrics: &WriterMetrics,
) {
    let size = batch.len();
    let ctx = Ctx {
        now: clock.now(),
        options,
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let err = JournalError::from(e);
            tracing::error!(error = %err, "journal: cannot begin a transaction");
            for op in batch {
                op.fail(&err);
            }
            return;
        }
    };
    let mut done: Vec<Box<dyn Pending>> = Vec::with_capacity(size);
    let mut lost: Option<JournalError> = None;
    for op in batch {
        if let Some(err) = &lost {
            // The transaction is gone: the rest of the batch is not run.
            op.fail(err);
            continue;
        }
        let sp = match tx.savepoint() {
            Ok(sp) => sp,
            Err(e) => {
                let err = JournalError::from(e);
                op.fail(&err);
                lost = Some(err);
                continue;
            }
        };
        let pending = op.run(&sp, &ctx);
        // A failed operation's savepoint is rolled back when dropped.
        let kept = if pending.succeeded() {
            sp.commit()
        } else {
            drop(sp);
            Ok(())
        };
        if let Err(e) = kept {
            lost = Some(JournalError::from(e));
        }
        // SQLite rolls the whole transaction back on some errors (a full
        // disk, an I/O error): then nothing of the batch stands, and every
        // caller in it must hear so.
        if lost.is_none() && tx.is_autocommit() {
            lost = Some(match pending.error() {
                Some(JournalError::Full) => JournalError::Full,
                _ => JournalError::Unavailable("SQLite rolled the transaction back".into()),
            });
        }
        done.push(pending);
    }
    let outcome = match lost {
        Some(err) => {
            drop(tx);
            Err(err)
        }
        None => tx.commit().map_err(JournalError::from),
    };
    match &outcome {
        Ok(()) => {
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            metrics.commands.fetch_add(size as u64, Ordering::Relaxed);
            metrics
                .largest_batch
                .fetch_max(size as u64, Ordering::Relaxed);
        }
        Err(err) => {
            tracing::error!(error = %err, batch = size, "journal: batch not committed; nothing of it was written");
        }
    }
    for pending in done {
        pending.deliver(outcome.as_ref().map(|_| ()));
    }
}

pub(super) fn clone_err(err: &JournalError) -> JournalError {
    match err {
        JournalError::Full => JournalError::Full,
        JournalError::Busy => JournalError::Busy,
        JournalError::Closed => JournalError::Closed,
        JournalError::Unavailable(message) => JournalError::Unavailable(message.clone()),
        other => JournalError::Unavailable(other.to_string()),
    }
}
