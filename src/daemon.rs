//! Wiring: opens the journal, binds the API, serves until told to stop, and
//! shuts down in order (stop accepting, finish in-flight requests, flush the
//! journal writer). Also the systemd protocol: readiness and watchdog.

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::Settings;
use crate::devices::jobs::DeviceWorker;
use crate::devices::manager::Devices;
use crate::journal::{self, Journal, JournalError};
use crate::sync::client::CloudClient;
use crate::sync::worker::{Worker, WorkerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long shutdown waits for in-flight requests before it stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot listen on {addr}: {source} (is another fiscald running? change [api] listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cloud sync: {0}")]
    Cloud(String),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Tls(#[from] api::remote::TlsError),
    #[error("cannot listen on {addr} ([remote] listen): {source}")]
    BindRemote {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The remote listener, when `[remote] listen` is set.
struct Remote {
    addr: SocketAddr,
    tls: bool,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// A running daemon: the API is bound and the journal open.
pub struct Daemon {
    pub addr: SocketAddr,
    pub journal: Journal,
    shutdown: Option<oneshot::Sender<()>>,
    remote: Option<Remote>,
    server: JoinHandle<()>,
    worker: Option<Worker>,
    devices: Option<Arc<Devices>>,
    device_worker: Option<DeviceWorker>,
    retention: JoinHandle<()>,
    retention_stop: Arc<tokio::sync::Notify>,
    box_worker: Option<crate::fiscalbox::worker::BoxWorker>,
    /// The FiscalBox billing: its background checks stop with the daemon
    /// (a delayed one is taken up by the next start).
    billing: Option<Arc<crate::fiscalbox::billing::BillingClient>>,
    auto_z: Option<JoinHandle<()>>,
    marking_poller: Option<JoinHandle<()>>,
}

impl Daemon {
    pub async fn start(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Daemon, DaemonError> {
        let options = journal::Options::from_settings(settings, settings.journal_path.clone());
        let journal_clock = clock.clone();
        let journal = tokio::task::spawn_blocking(move || Journal::open(options, journal_clock))
            .await
            .map_err(|e| JournalError::Unavailable(e.to_string()))??;
        let retention_stop = Arc::new(tokio::sync::Notify::new());
        let retention = spawn_retention(journal.clone(), clock.clone(), retention_stop.clone());
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(DaemonError::Serve)?;
        let sync_wake = journal.outbox().sync.clone();
        let worker = if settings.cloud.enabled {
            let client = CloudClient::new(&settings.cloud, journal.clone(), clock.clone())
                .map_err(DaemonError::Cloud)?;
            Some(Worker::spawn(
                journal.clone(),
                Arc::new(client),
                clock.clone(),
                WorkerConfig {
                    concurrency: settings.cloud.concurrency,
                    retry: settings.cloud.retry,
                    poll_interval: settings.cloud.poll_interval,
                    probe_interval: settings.cloud.probe_interval,
                },
                sync_wake.clone(),
            ))
        } else {
            tracing::warn!(
                "cloud sync is off ([cloud] enabled = false): receipts wait in the outbox"
            );
            None
        };
        let fiscalbox = match &settings.fiscalbox {
            Some(fb) => {
                let client = crate::fiscalbox::client::BoxClient::new(
                    &fb.url,
                    fb.connect_timeout,
                    fb.request_timeout,
                )
                .map_err(DaemonError::Cloud)?;
                let worker = crate::fiscalbox::worker::BoxWorker::spawn(
                    journal.clone(),
                    client.clone(),
                    clock.clone(),
                    crate::fiscalbox::worker::BoxWorkerConfig {
                        retry_base: fb.retry_base,
                        retry_cap: fb.retry_cap,
                        timezone: settings.timezone,
                    },
                    journal.outbox().fiscalbox.clone(),
                );
                let billing = match &fb.billing {
                    Some(b) => Some(Arc::new(
                        crate::fiscalbox::billing::BillingClient::new(
                            b.clone(),
                            journal.clone(),
                            clock.clone(),
                        )
                        .map_err(DaemonError::Cloud)?,
                    )),
                    None => None,
                };
                if let Some(b) = &billing {
                    // Checks a stopped daemon left delayed go on.
                    crate::fiscalbox::billing::resume(b).await;
                }
                Some((client, worker, fb.reply_wait, billing))
            }
            None => None,
        };
        let device_wake = journal.outbox().devices.clone();
        let devices = (settings.devices.register.is_some() || settings.devices.printer.is_some())
            .then(|| Arc::new(Devices::start(&settings.devices)));
        let device_worker = devices.as_ref().map(|d| {
            DeviceWorker::spawn(
                journal.clone(),
                d.clone(),
                clock.clone(),
                device_wake.clone(),
            )
        });
        let marking = settings
            .marking
            .clone()
            .map(|m| Arc::new(crate::marking::client::MarkingClient::new(m)));
        let marking_last_sync = marking
            .as_ref()
            .map(|_| Arc::new(std::sync::Mutex::new(None)));
        let marking_poller = match (&marking, &marking_last_sync) {
            (Some(m), Some(slot)) => Some(spawn_marking_status(
                m.clone(),
                slot.clone(),
                settings
                    .devices
                    .register
                    .as_ref()
                    .map_or(Duration::from_secs(60), |r| r.reading_interval),
            )),
            _ => None,
        };
        let state = AppState {
            journal: journal.clone(),
            profile: settings.profile.clone(),
            timezone: settings.timezone.name().to_string(),
            tz: settings.timezone,
            clock: clock.clone(),
            max_body_bytes: settings.max_body_bytes,
            write_timeout: settings.write_timeout,
            started: Instant::now(),
            api: settings.api.clone(),
            sync_status: worker.as_ref().map(|w| w.status.clone()),
            devices: devices.clone(),
            backend: settings.devices.backend,
            bitrix24: settings.bitrix24.clone().map(Arc::new),
            gateway: settings.gateway.clone().map(Arc::new),
            ops: Arc::new(api::page::OpsState::new(api::status::ConfigSummary::of(
                settings,
            ))),
            deadlines: crate::deadlines::Source {
                register: settings.devices.register.as_ref().map(|r| r.path.clone()),
                thresholds: settings.deadlines,
                marking_last_sync: marking_last_sync.clone(),
                fiscalbox: fiscalbox.as_ref().map(|(_, w, _, _)| w.capacity.clone()),
            },
            fiscalbox: fiscalbox
                .as_ref()
                .map(|(client, worker, reply_wait, billing)| {
                    Arc::new(api::FiscalboxState {
                        client: client.clone(),
                        status: worker.status.clone(),
                        reply_wait: *reply_wait,
                        sverka: std::sync::Mutex::new(None),
                        billing: billing.clone(),
                    })
                }),
            marking: marking.clone(),
        };
        let auto_z = match (&settings.auto_z, &devices, &settings.devices.register) {
            (Some(z), Some(d), Some(r)) => Some(spawn_auto_z(
                *z,
                d.clone(),
                journal.clone(),
                clock.clone(),
                settings.timezone,
                r.path.clone(),
                settings.devices.status_interval,
            )),
            _ => None,
        };
        let remote = match &settings.remote {
            Some(r) => Some(start_remote(r, state.clone()).await?),
            None => None,
        };
        let app = api::router(state);
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(api::server::serve_with(
            listener,
            app,
            api::server::ServeOptions::from_limits(
                api::server::HEADER_READ_TIMEOUT,
                &settings.api.limits,
            ),
            async {
                let _ = rx.await;
            },
        ));
        tracing::info!(%addr, journal = %settings.journal_path.display(), "fiscald is serving");
        Ok(Daemon {
            addr,
            journal,
            shutdown: Some(tx),
            remote,
            server,
            worker,
            devices,
            device_worker,
            retention,
            retention_stop,
            billing: fiscalbox.as_ref().and_then(|(_, _, _, b)| b.clone()),
            box_worker: fiscalbox.map(|(_, worker, _, _)| worker),
            auto_z,
            marking_poller,
        })
    }

    /// The remote listener's address and whether it speaks TLS.
    pub fn remote_addr(&self) -> Option<(SocketAddr, bool)> {
        self.remote.as_ref().map(|r| (r.addr, r.tls))
    }

    /// Stop accepting, let in-flight requests finish, flush the journal.
    pub async fn stop(mut self) -> Result<(), DaemonError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(remote) = self.remote.take() {
            let _ = remote.shutdown.send(());
            let mut server = remote.server;
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
        let served = match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(join)) => Err(DaemonError::Serve(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish within {SHUTDOWN_GRACE:?}; stopping anyway"
                );
                self.server.abort();
                Ok(())
            }
        };
        if let Some(z) = self.auto_z.take() {
            z.abort();
        }
        if let Some(p) = self.marking_poller.take() {
            p.abort();
        }
        if let Some(worker) = self.worker.take() {
            worker.stop(SHUTDOWN_GRACE).await;
        }
        if let Some(worker) = self.box_worker.take() {
            worker.stop(SHUTDOWN_GRACE).await;
        }
        if let Some(billing) = self.billing.take() {
            billing.stop();
        }
        if let Some(worker) = self.device_worker.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, worker.stop())
                .await
                .is_err()
            {
                tracing::warn!("the device job in hand did not finish within {SHUTDOWN_GRACE:?}");
            }
        }
        if let Some(devices) = self.devices.take() {
            let _ = tokio::task::spawn_blocking(move || devices.stop()).await;
        }
        self.journal.stop_retention();
        self.retention_stop.notify_one();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.retention)
            .await
            .is_err()
        {
            // Safe at any point: the next start finishes the chunk.
            self.retention.abort();
        }
        let journal = self.journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
        tracing::info!("fiscald stopped; journal flushed");
        served
    }
}

/// How long after start the first retention run begins, and how often it
/// runs after that.
pub const RETENTION_FIRST_RUN: Duration = Duration::from_secs(1);
pub const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

/// Archive receipts due for it, shortly after start (which also finishes a
/// run a crash interrupted) and then every few hours.
fn spawn_retention(
    journal: Journal,
    clock: Arc<dyn Clock>,
    stop: Arc<tokio::sync::Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = RETENTION_FIRST_RUN;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.notified() => return,
            }
            journal.run_retention(clock.now()).await;
            wait = RETENTION_EVERY;
        }
    })
}

/// Reads the marking local module's `lastSync` every `every` for the 72 h
/// lockout deadline (the client's own timeout bounds each call).
fn spawn_marking_status(
    client: Arc<crate::marking::client::MarkingClient>,
    slot: Arc<std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match client.local_status().await {
                None => return,
                Some(Ok(s)) => {
                    *slot.lock().expect("marking reading") =
                        chrono::DateTime::from_timestamp_millis(s.last_sync);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "marking local module status unreadable");
                }
            }
            tokio::time::sleep(every.max(Duration::from_millis(100))).await;
        }
    })
}

/// Bind and serve the remote listener: the online-order dialects only.
async fn start_remote(
    r: &crate::config::RemoteSettings,
    state: AppState,
) -> Result<Remote, DaemonError> {
    let tls = match &r.tls {
        Some(files) => Some(api::remote::tls_acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let listener = TcpListener::bind(r.listen)
        .await
        .map_err(|source| DaemonError::BindRemote {
            addr: r.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(DaemonError::Serve)?;
    let limiter = Arc::new(api::remote::RateLimiter::new(r.rate_per_minute, r.burst));
    let state_limits = state.api.limits;
    let app = api::remote_router(state, limiter);
    let (tx, rx) = oneshot::channel::<()>();
    let has_tls = tls.is_some();
    let options =
        api::server::ServeOptions::from_limits(api::server::HEADER_READ_TIMEOUT, &state_limits);
    let server = tokio::spawn(api::server::serve_remote(
        listener,
        app,
        options,
        tls,
        async {
            let _ = rx.await;
        },
    ));
    tracing::info!(%addr, tls = has_tls, "remote listener serving the Bitrix24 and gateway dialects");
    Ok(Remote {
        addr,
        tls: has_tls,
        shutdown: tx,
        server,
    })
}

/// The automatic Z report's shell: every `tick`, what the register, the
/// deadline readings and the journal say → [`auto_z::decide`]; runs the Z
/// report through the register's own queue when it says so.
///
/// [`auto_z::decide`]: crate::deadlines::auto_z::decide
fn spawn_auto_z(
    z: crate::config::AutoZSettings,
    devices: Arc<Devices>,
    journal: Journal,
    clock: Arc<dyn Clock>,
    tz: chrono_tz::Tz,
    register_path: std::path::PathBuf,
    tick: Duration,
) -> JoinHandle<()> {
    use crate::deadlines::auto_z::{Decision, Input, decide};
    tokio::spawn(async move {
        let mut last_run: Option<chrono::NaiveDate> = None;
        let mut postponed = false;
        loop {
            tokio::time::sleep(tick.max(Duration::from_millis(100))).await;
            let now = clock.now().with_timezone(&tz);
            let register = devices
                .statuses()
                .into_iter()
                .find(|d| d.name == "register");
            let Some(register) = register else { continue };
            let shift = register.details.get("shift").and_then(|v| v.as_str());
            let shift_number = register
                .details
                .get("shift_number")
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as u32;
            let readings = crate::deadlines::board().get(&register_path);
            let Ok(view) = journal.ops_view(now.format("%Y-%m-%d").to_string()).await else {
                continue;
            };
            let pending = view
                .jobs
                .iter()
                .filter(|(k, s, _)| k == "register" && s == "pending")
                .map(|(_, _, n)| n)
                .sum();
            let input = Input {
                now: now.naive_local(),
                at: z.at,
                window: chrono::Duration::from_std(z.window).unwrap_or(chrono::Duration::hours(1)),
                shift_open: matches!(shift, Some("open" | "expired")),
                shift_number,
                shift_opened: readings
                    .and_then(|r| r.shift_opened_at)
                    .map(|t| t.with_timezone(&tz).naive_local()),
                pending_register_jobs: pending,
                last_run,
            };
            match decide(&input) {
                Decision::Idle => postponed = false,
                Decision::Postpone(why) => {
                    if !postponed {
                        tracing::info!(device = "register", "automatic Z report postponed: {why}");
                        postponed = true;
                    }
                }
                Decision::Run => match devices.close_shift().await {
                    Ok(_) => {
                        last_run = Some(now.date_naive());
                        tracing::info!(
                            device = "register",
                            shift = shift_number,
                            "automatic Z report: shift {shift_number} closed before it passed 24 h"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(device = "register", error = %e, "automatic Z report failed; tried again at the next tick");
                    }
                },
            }
        }
    })
}

/// Run as a service until SIGTERM or SIGINT: readiness and watchdog for systemd.
pub async fn run_until_signal(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<(), DaemonError> {
    let daemon = Daemon::start(settings, clock).await?;
    // One plain line on stdout: how scripts and tests learn a port-0 address.
    println!("fiscald listening on http://{}", daemon.addr);
    if let Some((addr, tls)) = daemon.remote_addr() {
        let scheme = if tls { "https" } else { "http" };
        println!("fiscald remote listening on {scheme}://{addr}");
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog(daemon.journal.clone());

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if let Some(w) = watchdog {
        w.abort();
    }
    daemon.stop().await
}

/// Ping systemd at half the watchdog interval, but only after a round trip
/// through the journal writer: a stuck writer means no ping, and a restart.
fn spawn_watchdog(journal: Journal) -> Option<JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|d| !d.is_zero())?;
    let period = interval / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            match journal.ping(period).await {
                Ok(()) => {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                Err(e) => {
                    tracing::error!(error = %e, "journal writer did not answer; withholding the watchdog ping")
                }
            }
        }
    }))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
