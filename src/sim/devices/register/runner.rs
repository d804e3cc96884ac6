//! The emulator's shell: a thread that owns a [`Pty`], feeds bytes to the
//! pure [`DeviceLink`] and [`RegisterModel`], and injects faults. The model
//! outlives unplug/replug (it is the device's memory); the link state does
//! not (a power cycle forgets an unsent reply).

use super::link::{Accept, DeviceEvent, DeviceLink};
use super::model::{ModelConfig, RegisterModel, RegisteredReceipt};
use crate::devices::shtrih::frame::{Frame, NAK, STX};
use crate::sim::devices::pty::Pty;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the thread blocks in one read when idle (also the inter-byte
/// silence after which a partial frame is dropped).
const POLL: Duration = Duration::from_millis(50);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct RegisterEmulatorOptions {
    /// Seeds the serial, FN number and fiscal signs.
    pub seed: u64,
    /// Pace replies as a serial line at this baud would (10 bits a byte).
    pub baud: Option<u32>,
    /// The 0xFC name; `None` = [`crate::devices::shtrih::assumed::EMULATED_MODEL_NAME`].
    pub model_name: Option<String>,
    /// The register's own line speed. Bytes the driver sends while its end
    /// of the line is set to another speed are noise to a real register:
    /// the emulator drops them (it reads the speed the driver set on the
    /// pty). `None`: any speed works, as on a bare pty.
    pub line_baud: Option<u32>,
    /// The time zone of the register's clock (a register keeps the shop's
    /// local time); `None` = the machine's.
    pub timezone: Option<chrono_tz::Tz>,
}

impl Default for RegisterEmulatorOptions {
    fn default() -> RegisterEmulatorOptions {
        RegisterEmulatorOptions {
            seed: 1,
            baud: None,
            model_name: None,
            line_baud: None,
            timezone: None,
        }
    }
}

/// Unplug when a command arrives (one-shot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnplugAt {
    pub command: u16,
    /// After executing it: the lost-reply case (executed, never answered).
    pub after_execute: bool,
    /// Plug back in by itself after this long.
    pub replug_after: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterFaults {
    pub paper_out: bool,
    /// NAK the next N good frames (as if their checksum were bad).
    pub nak_next: u32,
    /// Prefix the next N replies with junk bytes (never STX).
    pub garbage_next: u32,
    /// Send every byte with this delay before it (a slow device).
    pub byte_delay: Option<Duration>,
    /// Answer nothing at all.
    pub silent: bool,
    pub unplug_at: Option<UnplugAt>,
    /// The OFD link is down: documents stay in the drive's queue (it drains
    /// after every command while this is off).
    pub ofd_offline: bool,
    /// The register's clock runs this many seconds ahead of the machine's
    /// (negative: behind).
    pub clock_skew_s: i64,
}

/// Emulator knobs that move the drive's and the shift's clocks, each
/// relative to the register's time now; absent keys change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineKnobs {
    /// FF03: the drive's last valid day is this many days from today.
    pub fn_expires_in_days: Option<i64>,
    /// FF39: the oldest document not confirmed by the OFD is this old
    /// (hours). Set `ofd_offline` too, or the next command drains it.
    pub ofd_backlog_hours: Option<i64>,
    /// The open shift was opened this many hours ago (opened then if closed).
    pub shift_age_hours: Option<i64>,
    /// FF70: this many sale notifications for marked goods wait to be
    /// uploaded besides the queued receipts' own. Set `ofd_offline` too, or
    /// the next command drains them.
    pub mc_notifications: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct RegisterSnapshot {
    pub serial: u32,
    pub fn_number: String,
    /// The registration number in table 18.
    pub rnm: String,
    pub mode: u8,
    pub shift_open: bool,
    pub shift_number: u16,
    pub last_fd: u32,
    pub receipts: Vec<RegisteredReceipt>,
    pub cancelled: u32,
    pub z_reports: u32,
    pub x_reports: u32,
    pub cash_in_drawer: u64,
    /// Documents the OFD has not confirmed.
    pub ofd_unsent: u32,
    /// The current (or last) shift's counters, as X/Z reports total them.
    pub totals: super::model::ShiftTotals,
    /// Every X and Z report printed, with the counters it showed.
    pub reports: Vec<super::model::ShiftReport>,
    /// Commands executed without error.
    pub executed: u64,
    /// Good frames received (including NAKed and repeated ones).
    pub frames: u64,
    /// Retransmitted frames answered without executing.
    pub repeats: u64,
    pub faults: RegisterFaults,
    pub plugged: bool,
}

struct Shared {
    model: RegisterModel,
    faults: RegisterFaults,
    plugged: bool,
    frames: u64,
    repeats: u64,
    rng: u64,
    timezone: Option<chrono_tz::Tz>,
}

enum Ctl {
    Unplug(Sender<()>),
    Replug(Sender<io::Result<()>>),
    Stop,
}

pub struct RegisterEmulator {
    shared: Arc<Mutex<Shared>>,
    ctl: Sender<Ctl>,
    thread: Option<JoinHandle<()>>,
    link: PathBuf,
}

impl Shared {
    /// The register clock: the machine's, in the register's zone, skewed.
    fn now(&self) -> chrono::NaiveDateTime {
        local_now(self.timezone) + chrono::TimeDelta::seconds(self.faults.clock_skew_s)
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RegisterEmulator {
    /// Opens a pty, links it at `link`, and serves it on a thread.
    pub fn start(link: &Path, opts: RegisterEmulatorOptions) -> io::Result<RegisterEmulator> {
        let pty = Pty::open()?;
        pty.link(link)?;
        let mut config = ModelConfig::from_seed(opts.seed);
        if let Some(name) = opts.model_name.clone() {
            config.model_name = name;
        }
        let shared = Arc::new(Mutex::new(Shared {
            model: RegisterModel::new(config),
            faults: RegisterFaults::default(),
            plugged: true,
            frames: 0,
            repeats: 0,
            rng: opts.seed | 1,
            timezone: opts.timezone,
        }));
        let (tx, rx) = unbounded();
        let worker = Worker {
            shared: shared.clone(),
            ctl: rx,
            pty: Some(pty),
            link: DeviceLink::new(),
            path: link.to_path_buf(),
            baud: opts.baud,
            line_baud: opts.line_baud,
            replug_at: None,
        };
        let thread = std::thread::Builder::new()
            .name("register-emulator".into())
            .spawn(move || worker.run())?;
        Ok(RegisterEmulator {
            shared,
            ctl: tx,
            thread: Some(thread),
            link: link.to_path_buf(),
        })
    }

    /// The stable path the driver opens.
    pub fn path(&self) -> &Path {
        &self.link
    }

    pub fn snapshot(&self) -> RegisterSnapshot {
        let s = lock(&self.shared);
        let now = s.now();
        RegisterSnapshot {
            serial: s.model.config().serial,
            fn_number: s.model.config().fn_number.clone(),
            rnm: s.model.config().rnm.clone(),
            mode: s.model.mode(now),
            shift_open: s.model.shift_open(),
            shift_number: s.model.shift_number(),
            last_fd: s.model.last_fd(),
            receipts: s.model.receipts().to_vec(),
            cancelled: s.model.cancelled(),
            z_reports: s.model.z_reports(),
            x_reports: s.model.x_reports(),
            cash_in_drawer: s.model.cash_in_drawer(),
            ofd_unsent: s.model.ofd_unsent(),
            totals: s.model.totals().clone(),
            reports: s.model.reports().to_vec(),
            executed: s.model.executed(),
            frames: s.frames,
            repeats: s.repeats,
            faults: s.faults.clone(),
            plugged: s.plugged,
        }
    }

    /// Moves the drive's expiry, the OFD queue's age and the shift's age.
    pub fn set_deadlines(&self, k: &DeadlineKnobs) {
        let mut s = lock(&self.shared);
        let now = s.now();
        if let Some(d) = k.fn_expires_in_days {
            s.model
                .set_fn_expires(now.date() + chrono::TimeDelta::days(d));
        }
        if let Some(h) = k.ofd_backlog_hours {
            s.model
                .set_ofd_backlog_age(now, chrono::TimeDelta::hours(h));
        }
        if let Some(h) = k.shift_age_hours {
            s.model.set_shift_age(now, chrono::TimeDelta::hours(h));
        }
        if let Some(n) = k.mc_notifications {
            s.model.set_mc_backlog(n);
        }
    }

    pub fn set_faults(&self, f: RegisterFaults) {
        let mut s = lock(&self.shared);
        s.model.set_paper_out(f.paper_out);
        s.faults = f;
    }

    /// Pulls the cable: the pty goes away, the driver sees a hang-up.
    pub fn unplug(&self) {
        let (tx, rx) = bounded(1);
        if self.ctl.send(Ctl::Unplug(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Plugs back in: a new pty at the same path.
    pub fn replug(&self) -> io::Result<()> {
        let (tx, rx) = bounded(1);
        self.ctl
            .send(Ctl::Replug(tx))
            .map_err(|_| io::Error::other("emulator stopped"))?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| io::Error::other("emulator did not answer"))?
    }

    pub fn plugged(&self) -> bool {
        lock(&self.shared).plugged
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.ctl.send(Ctl::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RegisterEmulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    shared: Arc<Mutex<Shared>>,
    ctl: Receiver<Ctl>,
    pty: Option<Pty>,
    link: DeviceLink,
    path: PathBuf,
    baud: Option<u32>,
    line_baud: Option<u32>,
    replug_at: Option<Instant>,
}

impl Worker {
    fn run(mut self) {
        let mut buf = [0u8; 512];
        loop {
            // Control first; when unplugged, block on the control channel.
            let msg = if self.pty.is_some() {
                self.ctl.try_recv().ok()
            } else {
                let wait = self.replug_at.map_or(POLL, |t| {
                    t.saturating_duration_since(Instant::now()).min(POLL)
                });
                self.ctl.recv_timeout(wait).ok()
            };
            match msg {
                Some(Ctl::Stop) => return,
                Some(Ctl::Unplug(done)) => {
                    self.unplug();
                    let _ = done.send(());
                    continue;
                }
                Some(Ctl::Replug(done)) => {
                    let _ = done.send(self.replug());
                    continue;
                }
                None => {}
            }
            if self.pty.is_none() {
                if self.replug_at.is_some_and(|t| Instant::now() >= t) {
                    let _ = self.replug();
                }
                continue;
            }
            let n = match self.pty.as_mut().map(|p| p.read(&mut buf, POLL)) {
                Some(Ok(n)) => n,
                Some(Err(_)) | None => {
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            if n == 0 {
                self.link.on_silence();
                continue;
            }
            if let Some(want) = self.line_baud
                && self.pty.as_ref().and_then(|p| p.line_baud()) != Some(want)
            {
                // Sent at the wrong speed: garbage on a real line, dropped.
                continue;
            }
            for &b in &buf[..n] {
                if self.pty.is_none() {
                    break; // unplugged mid-buffer: the rest is lost
                }
                self.on_byte(b);
            }
        }
    }

    fn unplug(&mut self) {
        // Flag first: whoever sees the hang-up must already see "unplugged".
        lock(&self.shared).plugged = false;
        // The stable name goes before the pty does (as udev removes a pulled
        // adapter's link): a stale link would name a /dev/pts number the
        // kernel may hand to another emulator in the same process.
        let _ = std::fs::remove_file(&self.path);
        self.pty = None;
        self.link = DeviceLink::new();
    }

    fn replug(&mut self) -> io::Result<()> {
        self.replug_at = None;
        if self.pty.is_none() {
            let pty = Pty::open()?;
            pty.link(&self.path)?;
            self.pty = Some(pty);
            self.link = DeviceLink::new();
        }
        lock(&self.shared).plugged = true;
        Ok(())
    }

    fn on_byte(&mut self, b: u8) {
        if lock(&self.shared).faults.silent {
            self.link.on_silence();
            return;
        }
        match self.link.on_byte(b) {
            None => {}
            Some(DeviceEvent::Write(bytes)) => self.send(&bytes),
            Some(DeviceEvent::Frame(frame)) => self.on_frame(frame),
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        enum Plan {
            Nak,
            UnplugBefore(Option<Duration>),
            Run(Option<Option<Duration>>),
        }
        let plan = {
            let mut s = lock(&self.shared);
            s.frames += 1;
            if s.faults.nak_next > 0 {
                s.faults.nak_next -= 1;
                Plan::Nak
            } else {
                match s.faults.unplug_at.clone() {
                    Some(u) if u.command == frame.command => {
                        s.faults.unplug_at = None;
                        if u.after_execute {
                            Plan::Run(Some(u.replug_after))
                        } else {
                            Plan::UnplugBefore(u.replug_after)
                        }
                    }
                    _ => Plan::Run(None),
                }
            }
        };
        match plan {
            Plan::Nak => self.send(&[NAK]),
            Plan::UnplugBefore(replug) => self.unplug_for(replug),
            Plan::Run(unplug_after) => match self.link.accept(&frame) {
                Accept::Repeat(bytes) => {
                    lock(&self.shared).repeats += 1;
                    self.send(&bytes);
                }
                Accept::Execute => {
                    let (reply, junk) = {
                        let mut s = lock(&self.shared);
                        let now = s.now();
                        let reply = s.model.execute(&frame, now).encode();
                        if !s.faults.ofd_offline {
                            s.model.drain_ofd();
                        }
                        let junk = if s.faults.garbage_next > 0 {
                            s.faults.garbage_next -= 1;
                            junk(&mut s.rng)
                        } else {
                            Vec::new()
                        };
                        (reply, junk)
                    };
                    if let Some(replug) = unplug_after {
                        self.unplug_for(replug);
                        return;
                    }
                    let mut out = vec![crate::devices::shtrih::frame::ACK];
                    out.extend(junk);
                    out.extend(&reply);
                    self.link.replied(frame, reply);
                    self.send(&out);
                }
            },
        }
    }

    fn unplug_for(&mut self, replug_after: Option<Duration>) {
        self.unplug();
        self.replug_at = replug_after.map(|d| Instant::now() + d);
    }

    fn send(&mut self, bytes: &[u8]) {
        let delay = lock(&self.shared).faults.byte_delay;
        let Some(pty) = self.pty.as_mut() else {
            return;
        };
        let pace = self
            .baud
            .map(|b| Duration::from_secs_f64(10.0 / f64::from(b.max(1))));
        let per_byte = match (delay, pace) {
            (Some(d), Some(p)) => Some(d + p),
            (d, p) => d.or(p),
        };
        let result = match per_byte {
            None => pty.write_all(bytes, WRITE_TIMEOUT),
            Some(d) => bytes.iter().try_for_each(|b| {
                std::thread::sleep(d);
                pty.write_all(std::slice::from_ref(b), WRITE_TIMEOUT)
            }),
        };
        // A write that cannot complete means nobody reads: the host will ask again.
        let _ = result;
    }
}

/// 1–8 junk bytes, never STX (so the host's resync is line noise, not a
/// false frame start).
fn junk(rng: &mut u64) -> Vec<u8> {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let n = 1 + (next() % 8) as usize;
    (0..n)
        .map(|_| match next() as u8 {
            STX => 0xFE,
            b => b,
        })
        .collect()
}

/// The register clock's local time.
fn local_now(tz: Option<chrono_tz::Tz>) -> chrono::NaiveDateTime {
    match tz {
        Some(tz) => chrono::Utc::now().with_timezone(&tz).naive_local(),
        None => chrono::Local::now().naive_local(),
    }
}
