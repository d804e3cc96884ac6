//! One thread per device: it owns the port, opens it by path, reopens it with
//! back-off after a hang-up, polls the device's status at the configured
//! interval (and never faster), and runs the daemon's requests one at a time.
//! Async code talks to it through [`Device::call`]; everything it knows is in
//! [`DeviceStatus`], which the API and the status page read without waiting.
//!
//! State machine: `absent → connecting → ready ⇄ busy`, `ready → faulted
//! (reason) → ready`, and any state `→ connecting` on a hang-up.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What went wrong talking to a device, sorted by what the caller should do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not connected (missing, unplugged, not answering): wait for it.
    #[error("{0}")]
    Unavailable(String),
    /// The device went away during the operation; the port is being reopened.
    #[error("device hung up: {0}")]
    Hangup(String),
    /// Connected, but cannot work now (paper out, cover open, offline, a
    /// shift to close first): a person must act; retried when it clears.
    #[error("{0}")]
    NotReady(String),
    /// The device refused the command for good (an error code): retrying the
    /// same request will not help.
    #[error("{0}")]
    Rejected(String),
    /// No reply, a garbled reply: transient, retried.
    #[error("{0}")]
    Link(String),
}

/// A device's state as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Absent,
    Connecting,
    Ready,
    Busy,
    Faulted,
}

/// Everything known about one device, cheap to copy out.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceStatus {
    pub name: &'static str,
    pub path: String,
    pub state: DeviceState,
    /// Why it is absent or faulted.
    pub reason: Option<String>,
    /// When the state last changed (RFC 3339, UTC).
    pub since: String,
    /// Device-specific facts from the last status poll (model, paper, shift…).
    pub details: serde_json::Value,
    pub last_error: Option<String>,
    /// Times the port was (re)opened.
    pub connects: u64,
    pub hangups: u64,
    /// Requests run and status polls made since start.
    pub requests: u64,
    pub polls: u64,
}

/// What a driver reports on a status poll.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    /// `None` when the device can work; otherwise why not ("paper out").
    pub problem: Option<String>,
    pub details: serde_json::Value,
}

/// A device driver as the runtime drives it.
pub trait Driver: Send + 'static {
    type Settings: Send + 'static;
    /// Open the port and make sure a device of the right kind answers.
    fn connect(settings: &Self::Settings) -> Result<Self, DeviceError>
    where
        Self: Sized;
    /// Ask the device how it is.
    fn check(&mut self) -> Result<Health, DeviceError>;
}

/// Poll and reconnect timing.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub status_interval: Duration,
    pub reconnect_base: Duration,
    pub reconnect_cap: Duration,
}

type Job<D> = Box<dyn FnOnce(&mut D) -> Option<DeviceError> + Send>;

enum Msg<D> {
    Run(Job<D>),
    Stop,
}

/// Handle to a device thread.
pub struct Device<D: Driver> {
    tx: Sender<Msg<D>>,
    status: Arc<Mutex<DeviceStatus>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<D: Driver> Device<D> {
    /// Start the device's thread. `on_change` is called (from that thread)
    /// whenever the state changes, so waiting work can go on at once.
    pub fn spawn(
        name: &'static str,
        path: String,
        settings: D::Settings,
        timing: Timing,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) -> Device<D> {
        let status = Arc::new(Mutex::new(DeviceStatus {
            name,
            path,
            state: DeviceState::Connecting,
            reason: None,
            since: now(),
            details: serde_json::Value::Null,
            last_error: None,
            connects: 0,
            hangups: 0,
            requests: 0,
            polls: 0,
        }));
        let (tx, rx) = bounded(64);
        let shared = status.clone();
        let thread = std::thread::Builder::new()
            .name(format!("device-{name}"))
            .spawn(move || {
                Runner::<D> {
                    settings,
                    timing,
                    status: shared,
                    on_change,
                    rx,
                    driver: None,
                    stopped: false,
                    backoff: timing.reconnect_base,
                }
                .run()
            })
            .expect("spawn device thread");
        Device {
            tx,
            status,
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn status(&self) -> DeviceStatus {
        self.status.lock().expect("device status").clone()
    }

    /// Run `f` on the device thread with the connected driver. Fails at once
    /// with [`DeviceError::Unavailable`] when the device is not connected.
    /// `limit` bounds the wait; the driver's own I/O timeouts bound the work.
    pub async fn call<R, F>(&self, limit: Duration, f: F) -> Result<R, DeviceError>
    where
        R: Send + 'static,
        F: FnOnce(&mut D) -> Result<R, DeviceError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let job: Job<D> = Box::new(move |driver| {
            if reply_tx.is_closed() {
                // Its caller gave up (time limit): an operator's request must
                // not happen minutes after they were told it failed.
                return None;
            }
            let result = f(driver);
            let error = result.as_ref().err().cloned();
            let _ = reply_tx.send(result);
            error
        });
        let name = self.status.lock().expect("device status").name;
        self.tx.try_send(Msg::Run(job)).map_err(|_| {
            DeviceError::Unavailable(format!("the {name} has too many requests waiting"))
        })?;
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(limit, reply_rx).await;
        crate::telemetry::global()
            .device_seconds
            .get_or_create(&crate::telemetry::DeviceLabels {
                device: name.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.unavailable()),
            Err(_) => Err(DeviceError::Link(format!(
                "the {name} did not finish within {limit:?}"
            ))),
        }
    }

    fn unavailable(&self) -> DeviceError {
        let s = self.status();
        DeviceError::Unavailable(format!(
            "the {} is {}{}",
            s.name,
            match s.state {
                DeviceState::Absent => "absent",
                DeviceState::Connecting => "connecting",
                DeviceState::Ready => "ready",
                DeviceState::Busy => "busy",
                DeviceState::Faulted => "faulted",
            },
            s.reason.map(|r| format!(": {r}")).unwrap_or_default()
        ))
    }

    /// Stop the thread (closing the port) and wait for it.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.lock().expect("device thread").take() {
            let _ = t.join();
        }
    }
}

impl<D: Driver> Drop for Device<D> {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Runner<D: Driver> {
    settings: D::Settings,
    timing: Timing,
    status: Arc<Mutex<DeviceStatus>>,
    on_change: Arc<dyn Fn() + Send + Sync>,
    rx: Receiver<Msg<D>>,
    driver: Option<D>,
    stopped: bool,
    /// The next reconnect delay; back to the base only after a good poll, so
    /// a device that connects and hangs up at once is not reopened in a loop.
    backoff: Duration,
}

impl<D: Driver> Runner<D> {
    fn run(mut self) {
        loop {
            if self.driver.is_none() {
                self.set(DeviceState::Connecting, None, |_| {});
                match D::connect(&self.settings) {
                    Ok(driver) => {
                        self.driver = Some(driver);
                        self.set(DeviceState::Connecting, None, |s| s.connects += 1);
                        self.poll();
                        if self.driver.is_none() {
                            // Lost again at once: wait before the next try.
                            self.wait_out_backoff();
                            if self.stopped {
                                return;
                            }
                        }
                        continue;
                    }
                    Err(e) => {
                        self.set(DeviceState::Absent, Some(e.to_string()), |_| {});
                        self.wait_out_backoff();
                        if self.stopped {
                            return;
                        }
                        continue;
                    }
                }
            }
            match self.rx.recv_timeout(self.timing.status_interval) {
                Ok(Msg::Run(job)) => {
                    let before = self.status.lock().expect("device status").clone();
                    self.set(DeviceState::Busy, before.reason.clone(), |s| {
                        s.requests += 1
                    });
                    let driver = self.driver.as_mut().expect("connected");
                    match job(driver) {
                        None => {
                            // Success: the device works; a fault seen before
                            // is re-checked by the next poll, not assumed gone.
                            if before.state == DeviceState::Faulted {
                                self.poll();
                            } else {
                                self.set(DeviceState::Ready, None, |_| {});
                            }
                        }
                        Some(e) => self.after_error(e),
                    }
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => self.poll(),
            }
        }
    }

    /// Wait out the back-off (doubling it), turning requests away meanwhile.
    fn wait_out_backoff(&mut self) {
        let until = std::time::Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.timing.reconnect_cap);
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.rx.recv_timeout(left) {
                Ok(Msg::Run(job)) => drop(job), // its caller sees Unavailable
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.stopped = true;
                    return;
                }
                Err(RecvTimeoutError::Timeout) => return,
            }
        }
    }

    fn poll(&mut self) {
        let Some(driver) = self.driver.as_mut() else {
            return;
        };
        let result = driver.check();
        self.status.lock().expect("device status").polls += 1;
        match result {
            // A status query the device refuses: it cannot be trusted to work.
            Err(DeviceError::Rejected(reason)) => {
                self.set(DeviceState::Faulted, Some(reason.clone()), |s| {
                    s.last_error = Some(reason)
                });
            }
            Ok(health) => {
                self.backoff = self.timing.reconnect_base;
                let state = if health.problem.is_some() {
                    DeviceState::Faulted
                } else {
                    DeviceState::Ready
                };
                self.set(state, health.problem, |s| s.details = health.details);
            }
            Err(e) => self.after_error(e),
        }
    }

    fn after_error(&mut self, e: DeviceError) {
        let text = e.to_string();
        match e {
            DeviceError::Hangup(_) | DeviceError::Unavailable(_) => {
                self.driver = None;
                self.set(DeviceState::Connecting, Some(text.clone()), |s| {
                    s.hangups += 1;
                    s.last_error = Some(text);
                });
            }
            DeviceError::NotReady(reason) => {
                self.set(DeviceState::Faulted, Some(reason), |s| {
                    s.last_error = Some(text)
                });
            }
            DeviceError::Link(_) => {
                self.set(
                    DeviceState::Faulted,
                    Some(format!("protocol error: {text}")),
                    |s| s.last_error = Some(text),
                );
            }
            // The device works; it refused one request.
            DeviceError::Rejected(_) => {
                self.set(DeviceState::Ready, None, |s| s.last_error = Some(text));
            }
        }
    }

    fn set(
        &self,
        state: DeviceState,
        reason: Option<String>,
        also: impl FnOnce(&mut DeviceStatus),
    ) {
        let changed = {
            let mut s = self.status.lock().expect("device status");
            also(&mut s);
            let changed = s.state != state || s.reason != reason;
            if changed {
                if s.state != state {
                    s.since = now();
                }
                tracing::info!(device = s.name, from = ?s.state, to = ?state, reason = reason.as_deref().unwrap_or(""), "device state");
                s.state = state;
                s.reason = reason;
            }
            changed
        };
        if changed {
            (self.on_change)();
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A device whose presence and paper the test controls.
    #[derive(Default)]
    struct World {
        present: std::sync::atomic::AtomicBool,
        paper_out: std::sync::atomic::AtomicBool,
        hang_next: std::sync::atomic::AtomicBool,
        connects: AtomicU32,
        checks: AtomicU32,
    }

    struct Fake(Arc<World>);

    impl Driver for Fake {
        type Settings = Arc<World>;
        fn connect(w: &Arc<World>) -> Result<Self, DeviceError> {
            w.connects.fetch_add(1, Ordering::SeqCst);
            if w.present.load(Ordering::SeqCst) {
                Ok(Fake(w.clone()))
            } else {
                Err(DeviceError::Unavailable("no such file".into()))
            }
        }
        fn check(&mut self) -> Result<Health, DeviceError> {
            self.0.checks.fetch_add(1, Ordering::SeqCst);
            if !self.0.present.load(Ordering::SeqCst)
                || self.0.hang_next.swap(false, Ordering::SeqCst)
            {
                return Err(DeviceError::Hangup("gone".into()));
            }
            Ok(Health {
                problem: self
                    .0
                    .paper_out
                    .load(Ordering::SeqCst)
                    .then(|| "paper out".to_string()),
                details: serde_json::json!({}),
            })
        }
    }

    fn timing() -> Timing {
        Timing {
            status_interval: Duration::from_millis(30),
            reconnect_base: Duration::from_millis(10),
            reconnect_cap: Duration::from_millis(40),
        }
    }

    async fn wait_for(d: &Device<Fake>, state: DeviceState) {
        for _ in 0..200 {
            if d.status().state == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never reached {state:?}: {:?}", d.status());
    }

    #[tokio::test]
    async fn absent_then_ready_then_faulted_then_ready_again() {
        let w = Arc::new(World::default());
        let changes = Arc::new(AtomicU32::new(0));
        let c = changes.clone();
        let d = Device::<Fake>::spawn(
            "printer",
            "/dev/x".into(),
            w.clone(),
            timing(),
            Arc::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        );
        wait_for(&d, DeviceState::Absent).await;
        // Requests while absent fail at once, naming the device and why.
        let err = d
            .call(Duration::from_secs(1), |_| Ok(()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeviceError::Unavailable(ref m) if m.contains("printer is absent")),
            "{err:?}"
        );
        // Back-off is capped: a few attempts, not a spin.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let attempts = w.connects.load(Ordering::SeqCst);
        assert!(
            (3..=12).contains(&attempts),
            "{attempts} connect attempts in 200 ms"
        );

        w.present.store(true, Ordering::SeqCst);
        wait_for(&d, DeviceState::Ready).await;
        assert_eq!(d.call(Duration::from_secs(1), |_| Ok(7)).await.unwrap(), 7);

        w.paper_out.store(true, Ordering::SeqCst);
        wait_for(&d, DeviceState::Faulted).await;
        assert_eq!(d.status().reason.as_deref(), Some("paper out"));
        w.paper_out.store(false, Ordering::SeqCst);
        wait_for(&d, DeviceState::Ready).await;

        // A hang-up during a request: reconnect.
        w.hang_next.store(true, Ordering::SeqCst);
        let before = d.status().connects;
        wait_for(&d, DeviceState::Ready).await;
        for _ in 0..100 {
            if d.status().connects > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(d.status().connects > before);
        assert!(d.status().hangups >= 1);
        assert!(changes.load(Ordering::SeqCst) >= 5);
        d.stop();
    }

    #[tokio::test]
    async fn idle_polls_at_the_status_interval_only() {
        let w = Arc::new(World::default());
        w.present.store(true, Ordering::SeqCst);
        let d = Device::<Fake>::spawn(
            "register",
            "/dev/x".into(),
            w.clone(),
            Timing {
                status_interval: Duration::from_millis(100),
                ..timing()
            },
            Arc::new(|| {}),
        );
        wait_for(&d, DeviceState::Ready).await;
        let start = w.checks.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(550)).await;
        let polls = w.checks.load(Ordering::SeqCst) - start;
        assert!(
            (4..=6).contains(&polls),
            "{polls} polls in 550 ms at 100 ms"
        );
    }
}
