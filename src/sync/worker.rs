//! The outbox worker: takes due `fiscalize` jobs from the journal, oldest
//! first, and drives each through registration and document polling, with at
//! most `concurrency` in flight. Every outcome is written back to the journal
//! before the job is let go, so a crash at any point only repeats a call the
//! processing deduplicates by the receipt's idempotency key.

use super::client::CloudClient;
use super::policy::{Connectivity, Decision, Failure, RetryPolicy};
use super::wire;
use crate::clock::Clock;
use crate::journal::{Job, JobKind, Journal};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

/// The longest the worker sleeps with nothing due (a new receipt wakes it).
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// What a status page shows of the sync.
#[derive(Clone, Debug, Serialize)]
pub struct SyncStatus {
    pub connectivity: Connectivity,
    pub in_flight: usize,
    pub fiscalized: u64,
    pub failures: u64,
    pub rejected: u64,
    /// When a receipt was last fiscalized.
    pub last_success: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub poll_interval: Duration,
    pub probe_interval: Duration,
}

struct Shared {
    journal: Journal,
    client: Arc<CloudClient>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    status: Arc<Mutex<SyncStatus>>,
    wake: Arc<Notify>,
    busy: Mutex<HashSet<i64>>,
}

/// A running worker.
pub struct Worker {
    pub status: Arc<Mutex<SyncStatus>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    /// Start the worker. `wake` is notified by whoever adds or re-queues a job.
    pub fn spawn(
        journal: Journal,
        client: Arc<CloudClient>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
        wake: Arc<Notify>,
    ) -> Worker {
        let status = Arc::new(Mutex::new(SyncStatus {
            connectivity: Connectivity::new(clock.now()),
            in_flight: 0,
            fiscalized: 0,
            failures: 0,
            rejected: 0,
            last_success: None,
        }));
        let shared = Arc::new(Shared {
            journal,
            client,
            clock,
            config,
            status: status.clone(),
            wake,
            busy: Mutex::new(HashSet::new()),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(shared, stopped));
        Worker { status, stop, task }
    }

    /// Stop taking jobs and wait (bounded) for the ones in flight to record
    /// their outcome. A job cut short is simply done again after a restart.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!("cloud sync did not stop within {grace:?}");
        }
    }
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    shared.client.restore_tokens().await;
    let permits = Arc::new(Semaphore::new(shared.config.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if *stopped.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let online = shared
            .status
            .lock()
            .expect("status lock")
            .connectivity
            .online;
        if !online {
            tokio::select! {
                _ = tokio::time::sleep(shared.config.probe_interval) => {}
                _ = stopped.changed() => continue,
            }
            let now = shared.clock.now();
            let probe = shared.client.probe().await;
            let mut status = shared.status.lock().expect("status lock");
            match probe {
                Ok(()) => {
                    if status.connectivity.reached(now) {
                        tracing::info!("cloud: the processing is reachable again; resuming");
                    }
                }
                Err(f) => {
                    status.connectivity.failed(&f, now);
                }
            }
            continue;
        }
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let now_ms = shared.clock.now().timestamp_millis();
        let busy: Vec<i64> = shared
            .busy
            .lock()
            .expect("busy lock")
            .iter()
            .copied()
            .collect();
        let jobs = match shared
            .journal
            .due_jobs(JobKind::Fiscalize, now_ms, free, busy)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cloud sync cannot read the outbox");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopped.changed() => {}
                }
                continue;
            }
        };
        if jobs.is_empty() {
            let wait = match shared.journal.next_due_at(JobKind::Fiscalize).await {
                Ok(Some(at)) if at > now_ms => {
                    Duration::from_millis((at - now_ms) as u64).min(IDLE_WAIT)
                }
                // Due but in flight: their completion wakes us.
                Ok(Some(_)) => IDLE_WAIT,
                Ok(None) => IDLE_WAIT,
                Err(_) => Duration::from_secs(1),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.wake.notified() => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        for job in jobs {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            shared.busy.lock().expect("busy lock").insert(job.id);
            shared.status.lock().expect("status lock").in_flight += 1;
            let shared = shared.clone();
            tasks.spawn(async move {
                let id = job.id;
                let before = outcome_counts(&shared);
                let started = std::time::Instant::now();
                process(&shared, job).await;
                let after = outcome_counts(&shared);
                let outcome = if after.0 > before.0 {
                    "fiscalized"
                } else if after.1 > before.1 {
                    "rejected"
                } else {
                    "retry"
                };
                crate::telemetry::global()
                    .sync_seconds
                    .get_or_create(&crate::telemetry::OutcomeLabels {
                        outcome: outcome.into(),
                    })
                    .observe(started.elapsed().as_secs_f64());
                shared.busy.lock().expect("busy lock").remove(&id);
                shared.status.lock().expect("status lock").in_flight -= 1;
                drop(permit);
                shared.wake.notify_one();
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// (fiscalized, rejected) so far: how a job's outcome is told for the
/// latency histogram (concurrent jobs may blur it; the counts stay exact).
fn outcome_counts(shared: &Shared) -> (u64, u64) {
    let s = shared.status.lock().expect("status lock");
    (s.fiscalized, s.rejected)
}

async fn process(shared: &Shared, job: Job) {
    let receipt = match shared.journal.get(job.receipt_id.clone()).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            if let Err(e) = shared
                .journal
                .park(job.id, format!("receipt {} is missing", job.receipt_id))
                .await
            {
                journal_trouble(&e, "cannot record the outcome").await;
            }
            return;
        }
        Err(e) => return journal_trouble(&e, "cannot read the receipt").await,
    };
    let document_id = match job.document_id {
        Some(id) => id,
        None => {
            let body = wire::receipt_body(&receipt.receipt);
            match shared
                .client
                .register(&receipt.idempotency_key, &body)
                .await
            {
                Ok(id) => {
                    reached(shared);
                    if let Err(e) = shared.journal.record_submitted(job.id, id).await {
                        // Registering again later is a repeat the processing recognises.
                        return journal_trouble(&e, "cannot record the document id").await;
                    }
                    id
                }
                Err(f) => return failed(shared, &job, receipt.number, f).await,
            }
        }
    };
    match shared.client.document(document_id).await {
        Ok(doc) => {
            reached(shared);
            match doc.status.as_str() {
                wire::STATUS_FISCALIZED => {
                    let attrs = doc
                        .fiscal_attributes
                        .as_ref()
                        .ok_or_else(|| {
                            "a fiscalized document without fiscal attributes".to_string()
                        })
                        .and_then(wire::fiscal_attributes);
                    match attrs {
                        Ok(attrs) => {
                            let qr = attrs.qr(receipt.receipt.total, receipt.receipt.kind);
                            match shared
                                .journal
                                .record_fiscalized(job.id, attrs, qr, "sync")
                                .await
                            {
                                Ok(()) => {
                                    let mut status = shared.status.lock().expect("status lock");
                                    status.fiscalized += 1;
                                    status.last_success = Some(shared.clock.now());
                                    drop(status);
                                    tracing::debug!(
                                        number = receipt.number,
                                        document_id,
                                        "receipt fiscalized"
                                    );
                                }
                                Err(e) => {
                                    journal_trouble(&e, "cannot record the fiscalization").await
                                }
                            }
                        }
                        Err(message) => {
                            failed(shared, &job, receipt.number, Failure::Protocol(message)).await
                        }
                    }
                }
                wire::STATUS_PROCESSING => {
                    let next = shared.clock.now().timestamp_millis()
                        + shared.config.poll_interval.as_millis() as i64;
                    if let Err(e) = shared.journal.reschedule(job.id, next, None).await {
                        journal_trouble(&e, "cannot record the outcome").await;
                    }
                }
                wire::STATUS_ERROR => {
                    let message = format!(
                        "the processing refused document {document_id}: {}",
                        doc.error_message
                            .unwrap_or_else(|| "no reason given".into())
                    );
                    reject(shared, &job, receipt.number, message).await;
                }
                other => {
                    failed(
                        shared,
                        &job,
                        receipt.number,
                        Failure::Protocol(format!("unknown document status {other:?}")),
                    )
                    .await;
                }
            }
        }
        Err(f) => failed(shared, &job, receipt.number, f).await,
    }
}

fn reached(shared: &Shared) {
    let now = shared.clock.now();
    if shared
        .status
        .lock()
        .expect("status lock")
        .connectivity
        .reached(now)
    {
        tracing::info!("cloud: the processing is reachable");
    }
}

async fn failed(shared: &Shared, job: &Job, number: u64, failure: Failure) {
    let now = shared.clock.now();
    {
        let mut status = shared.status.lock().expect("status lock");
        status.failures += 1;
        if status.connectivity.failed(&failure, now) && failure.is_offline() {
            tracing::warn!(error = %failure.describe(), "cloud: the processing is unreachable; receipts wait in the journal");
        }
    }
    let attempts = job.attempts + 1;
    match shared.config.retry.decide(&failure, attempts, rand::random::<f64>()) {
        Decision::Retry { after } => {
            tracing::warn!(number, attempts, retry_in_ms = after.as_millis() as u64, error = %failure.describe(), "receipt not fiscalized yet; will retry");
            let next = now.timestamp_millis() + after.as_millis() as i64;
            if let Err(e) = shared.journal.reschedule(job.id, next, Some(failure.describe())).await {
        journal_trouble(&e, "cannot record the outcome").await;
    }
        }
        // The client already got a fresh token once; refused again.
        Decision::Reauthenticate => {
            let after = shared.config.retry.backoff(attempts, rand::random::<f64>());
            tracing::warn!(number, "the processing refuses our credentials; check the connector token");
            let next = now.timestamp_millis() + after.as_millis() as i64;
            if let Err(e) = shared.journal.reschedule(job.id, next, Some(failure.describe())).await {
        journal_trouble(&e, "cannot record the outcome").await;
    }
        }
        Decision::Reject(message) => reject(shared, job, number, format!("rejected by the processing: {message}")).await,
        Decision::Conflict(message) => {
            reject(
                shared,
                job,
                number,
                format!("conflict: the processing holds a different receipt under this idempotency key: {message}"),
            )
            .await
        }
    }
}

async fn reject(shared: &Shared, job: &Job, number: u64, message: String) {
    tracing::error!(number, error = %message, "receipt rejected; an operator must retry or discard it");
    shared.status.lock().expect("status lock").rejected += 1;
    if let Err(e) = shared.journal.park(job.id, message).await {
        journal_trouble(&e, "cannot record the outcome").await;
    }
}

/// How long a job that could not record its outcome holds its slot before
/// the worker tries it again: a failing journal (a full disk) must not turn
/// the worker into a busy loop against the processing.
const JOURNAL_TROUBLE_PAUSE: Duration = Duration::from_secs(1);

async fn journal_trouble(e: &crate::journal::JournalError, what: &str) {
    tracing::error!(error = %e, "cloud sync: {what}; the job stays queued");
    tokio::time::sleep(JOURNAL_TROUBLE_PAUSE).await;
}
