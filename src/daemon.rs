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
    box_worker: Option<crate::fiscalbox::worker::BoxWorker>,
}

impl Daemon {
    pub async fn start(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Daemon, DaemonError> {
        let options = journal::Options::from_settings(settings, settings.journal_path.clone());
        let journal_clock = clock.clone();
        let journal = tokio::task::spawn_blocking(move || Journal::open(options, journal_clock))
            .await
            .map_err(|e| JournalError::Unavailable(e.to_string()))??;
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
                Some((client, worker, fb.reply_wait))
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
            fiscalbox: fiscalbox.as_ref().map(|(client, worker, reply_wait)| {
                Arc::new(api::FiscalboxState {
                    client: client.clone(),
                    status: worker.status.clone(),
                    reply_wait: *reply_wait,
                    sverka: std::sync::Mutex::new(serde_json::Value::Null),
                })
            }),
            marking: settings
                .marking
                .clone()
                .map(|m| Arc::new(crate::marking::client::MarkingClient::new(m))),
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
            box_worker: fiscalbox.map(|(_, worker, _)| worker),
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
        if let Some(worker) = self.worker.take() {
            worker.stop(SHUTDOWN_GRACE).await;
        }
        if let Some(worker) = self.box_worker.take() {
            worker.stop(SHUTDOWN_GRACE).await;
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
        let journal = self.journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.close()).await;
        tracing::info!("fiscald stopped; journal flushed");
        served
    }
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
