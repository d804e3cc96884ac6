//! The emulator's shell: a thread that owns a [`Pty`], feeds what the driver
//! writes into a [`PrinterModel`] and writes the model's replies back.
//!
//! With `pace_baud` it reads no faster than a UART at that speed would
//! deliver (10 bits a byte): the pty's buffer fills and back-pressures the
//! writer, as a real line does.

use super::model::{PrinterFaults, PrinterModel, PrinterOutput};
use crate::devices::escpos::DrawerPin;
use crate::sim::devices::pty::Pty;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the thread blocks in one read when nothing arrives; also how soon
/// it notices an unplug or a stop.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Bytes taken per read when paced: small, so pacing is smooth.
const PACED_CHUNK: usize = 64;
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct PrinterEmulatorOptions {
    /// Consume bytes no faster than this line speed; `None`: as fast as they come.
    pub pace_baud: Option<u32>,
    /// Where the one drawer hangs on the kick connector.
    pub drawer_pin: DrawerPin,
}

impl Default for PrinterEmulatorOptions {
    fn default() -> PrinterEmulatorOptions {
        PrinterEmulatorOptions {
            pace_baud: None,
            drawer_pin: DrawerPin::Pin2,
        }
    }
}

enum Control {
    Unplug(Sender<()>),
    Replug(Pty, Sender<()>),
    Stop,
}

pub struct PrinterEmulator {
    model: Arc<Mutex<PrinterModel>>,
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
    link: PathBuf,
}

impl PrinterEmulator {
    /// Opens a pty, points `link` at it, and starts serving.
    pub fn start(link: &Path, opts: PrinterEmulatorOptions) -> io::Result<PrinterEmulator> {
        let pty = Pty::open()?;
        pty.link(link)?;
        let model = Arc::new(Mutex::new(PrinterModel::new(opts.drawer_pin)));
        let (control, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("sim-printer".into())
            .spawn({
                let model = Arc::clone(&model);
                move || serve(pty, model, rx, opts.pace_baud)
            })?;
        Ok(PrinterEmulator {
            model,
            control,
            thread: Some(thread),
            link: link.to_path_buf(),
        })
    }

    pub fn output(&self) -> PrinterOutput {
        self.lock().output()
    }

    pub fn set_faults(&self, faults: PrinterFaults) {
        self.lock().set_faults(faults);
    }

    pub fn drawer_open(&self) -> bool {
        self.lock().drawer_open()
    }

    pub fn close_drawer(&self) {
        self.lock().close_drawer();
    }

    /// Pulls the cable: the pty is closed (the driver's reads and writes fail)
    /// and the link removed, as udev removes a vanished device's name.
    pub fn unplug(&self) {
        let (ack, done) = crossbeam_channel::bounded(1);
        if self.control.send(Control::Unplug(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
        let _ = std::fs::remove_file(&self.link);
    }

    /// Plugs in again: a new pty behind the same link.
    pub fn replug(&self) -> io::Result<()> {
        let pty = Pty::open()?;
        pty.link(&self.link)?;
        let (ack, done) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::Replug(pty, ack))
            .map_err(|_| io::Error::other("the emulator thread has stopped"))?;
        done.recv_timeout(Duration::from_secs(2))
            .map_err(|_| io::Error::other("the emulator thread did not take the new pty"))
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, PrinterModel> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PrinterEmulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(pty: Pty, model: Arc<Mutex<PrinterModel>>, control: Receiver<Control>, pace: Option<u32>) {
    let mut pty = Some(pty);
    // When the (virtual) wire has carried everything read so far.
    let mut wire_free = Instant::now();
    let mut buf = vec![0u8; if pace.is_some() { PACED_CHUNK } else { 4096 }];
    loop {
        let msg = if pty.is_some() {
            match control.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            // Unplugged: nothing to read; wait for a replug or a stop.
            match control.recv_timeout(IDLE_WAIT * 4) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match msg {
            Some(Control::Stop) => return,
            Some(Control::Unplug(ack)) => {
                pty = None;
                let _ = ack.send(());
                continue;
            }
            Some(Control::Replug(p, ack)) => {
                pty = Some(p);
                let _ = ack.send(());
                continue;
            }
            None => {}
        }
        let Some(p) = pty.as_mut() else { continue };
        let n = match p.read(&mut buf, IDLE_WAIT) {
            Ok(0) => continue,
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("printer emulator: read failed: {e}");
                std::thread::sleep(IDLE_WAIT);
                continue;
            }
        };
        // The bytes are in only once the wire has carried them.
        let mut ready_at = Instant::now();
        if let Some(baud) = pace {
            wire_free = wire_free.max(Instant::now()) + crate::devices::escpos::wire_time(n, baud);
            ready_at = wire_free;
        }
        let slow = model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .faults()
            .slow;
        if let Some(per_byte) = slow {
            ready_at += per_byte * n as u32;
            wire_free = wire_free.max(ready_at);
        }
        let wait = ready_at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let replies = model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .feed(&buf[..n]);
        if !replies.is_empty()
            && let Err(e) = p.write_all(&replies, REPLY_TIMEOUT)
        {
            tracing::warn!("printer emulator: reply not sent: {e}");
        }
    }
}
