//! Keeping the write-ahead log small on a till's SD card.
//!
//! A PASSIVE checkpoint (on the `journal-checkpoint` thread) copies committed
//! frames into the database file without ever blocking the writer, but under
//! sustained writes it never catches up: the WAL is only started over when a
//! checkpoint has copied *every* frame, and by then the writer has appended
//! more. So the writer itself, between two batches (holding no transaction),
//! runs a RESTART checkpoint once the WAL holds more than half the limit: most frames are already copied by the PASSIVE pass, so it only copies
//! the tail and waits for readers to move on, and the next commit starts the
//! WAL from its beginning. `journal_size_limit` then cuts the file back to that
//! half. When no command has come for [`IDLE_TRUNCATE_AFTER`], the writer
//! runs a TRUNCATE checkpoint: an idle till keeps a zero-length WAL.
//!
//! The number of frames in the WAL comes from SQLite's WAL hook after every
//! commit, so deciding costs nothing per receipt.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The WAL's default cap: at most a few seconds of a full-speed burst, and
/// small next to an 8 GB SD card.
pub const DEFAULT_WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How long the writer must have had nothing to do before it truncates the WAL.
pub const IDLE_TRUNCATE_AFTER: Duration = Duration::from_secs(1);

/// The longest the writer waits for readers (or the PASSIVE checkpoint) when
/// it restarts the WAL under load; past it, it goes back to receipts and tries
/// again after the next commit.
pub const RESTART_WAIT: Duration = Duration::from_millis(250);

/// How the writer bounds the WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalPolicy {
    /// The size the WAL file must stay under; `None` leaves the WAL to the
    /// PASSIVE checkpoints alone (unbounded under sustained writes; only the
    /// benchmark's "before" measurement uses it).
    pub limit_bytes: Option<u64>,
}

impl Default for WalPolicy {
    fn default() -> Self {
        WalPolicy {
            limit_bytes: Some(DEFAULT_WAL_LIMIT_BYTES),
        }
    }
}

impl WalPolicy {
    /// WAL content (bytes) past which the writer restarts the log: half
    /// the limit, so a restart that has to wait for readers still has room.
    pub fn restart_at(&self) -> Option<u64> {
        self.limit_bytes.map(|l| (l / 2).max(64 * 1024))
    }
}

/// Which kind of checkpoint ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// The WAL passed its threshold under load.
    Restart,
    /// The writer was idle (or stopping): the WAL file is cut to zero.
    Truncate,
}

/// The last checkpoint the writer ran, for `/v1/health`.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointInfo {
    pub kind: CheckpointKind,
    pub at: DateTime<Utc>,
    /// Frames in the WAL before it ran.
    pub frames_before: u64,
    pub took_ms: u64,
    /// Readers (or another checkpoint) kept it from finishing; it is tried again.
    pub incomplete: bool,
}

/// The WAL as the writer sees it.
#[derive(Debug, Default)]
pub struct WalState {
    /// Frames in the WAL after the last commit (SQLite's WAL hook).
    pub frames: AtomicU64,
    pub restarts: AtomicU64,
    pub truncates: AtomicU64,
    pub last: Mutex<Option<CheckpointInfo>>,
}

/// The WAL at a glance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WalStats {
    /// The WAL file's size on disk.
    pub size_bytes: u64,
    pub limit_bytes: Option<u64>,
    pub restarts: u64,
    pub truncates: u64,
    pub last_checkpoint: Option<CheckpointInfo>,
}

pub fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

impl WalState {
    pub fn stats(&self, db: &Path, policy: &WalPolicy) -> WalStats {
        WalStats {
            size_bytes: std::fs::metadata(wal_path(db)).map_or(0, |m| m.len()),
            limit_bytes: policy.limit_bytes,
            restarts: self.restarts.load(Ordering::Relaxed),
            truncates: self.truncates.load(Ordering::Relaxed),
            last_checkpoint: self.last.lock().expect("wal state lock").clone(),
        }
    }

    /// Run a checkpoint of `kind` on the writer's connection (between
    /// batches), waiting at most `wait` for readers. Restores `busy_timeout`.
    pub fn checkpoint(
        &self,
        conn: &Connection,
        kind: CheckpointKind,
        wait: Duration,
        busy_timeout: Duration,
    ) {
        let frames_before = self.frames.load(Ordering::Relaxed);
        let started = Instant::now();
        let mode = match kind {
            CheckpointKind::Restart => CheckpointMode::RESTART,
            CheckpointKind::Truncate => CheckpointMode::TRUNCATE,
        };
        let _ = conn.busy_timeout(wait);
        let result = conn.wal_checkpoint_v2(None::<&str>, mode);
        let _ = conn.busy_timeout(busy_timeout);
        let incomplete = match result {
            Ok((log, done)) => log < 0 || done < log,
            // SQLITE_BUSY: readers or the PASSIVE pass held on past `wait`.
            Err(_) => true,
        };
        if !incomplete {
            self.frames.store(0, Ordering::Relaxed);
        }
        match kind {
            CheckpointKind::Restart => self.restarts.fetch_add(1, Ordering::Relaxed),
            CheckpointKind::Truncate => self.truncates.fetch_add(1, Ordering::Relaxed),
        };
        let info = CheckpointInfo {
            kind,
            at: Utc::now(),
            frames_before,
            took_ms: started.elapsed().as_millis() as u64,
            incomplete,
        };
        if incomplete {
            tracing::debug!(
                ?info,
                "journal: checkpoint could not finish; will try again"
            );
        }
        *self.last.lock().expect("wal state lock") = Some(info);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{options, receipt};
    use super::*;
    use crate::domain::Source;
    use crate::journal::{Journal, NewReceipt};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// Accept `n` receipts from `clients` concurrent callers while a thread
    /// samples the WAL file's size; returns the largest size seen.
    async fn burst(journal: &Journal, n: usize, clients: usize) -> u64 {
        let wal = wal_path(journal.path());
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                    std::thread::sleep(Duration::from_millis(2));
                }
                peak
            }
        });
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let journal = journal.clone();
            tasks.spawn(async move {
                for i in 0..n / clients {
                    let new = NewReceipt {
                        source: Source::Native,
                        caller_key: None,
                        receipt: receipt(100 + (c * 10_000 + i) as i64),
                    };
                    journal.accept(new, Duration::from_secs(30)).await.unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_under_its_limit_in_a_burst_and_is_truncated_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 2 * 1024 * 1024;
        let mut opts = options(dir.path());
        opts.wal = WalPolicy {
            limit_bytes: Some(limit),
        };
        let journal = Journal::open(opts, Arc::new(crate::clock::SystemClock)).unwrap();
        let peak = burst(&journal, 4_000, 32).await;
        let stats = journal.wal_stats();
        assert!(
            peak <= limit,
            "WAL peaked at {peak} bytes, limit {limit}: {stats:?}"
        );
        assert!(
            stats.restarts > 0,
            "the burst passed the threshold: {stats:?}"
        );
        assert_eq!(journal.stats().await.unwrap().receipts, 4_000);
        // Idle: cut to zero within seconds.
        let mut waited = 0;
        while journal.wal_stats().size_bytes > 0 {
            assert!(waited < 100, "WAL not truncated: {:?}", journal.wal_stats());
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
        let last = journal.wal_stats().last_checkpoint.unwrap();
        assert_eq!(
            (last.kind, last.incomplete),
            (CheckpointKind::Truncate, false)
        );
    }
}
