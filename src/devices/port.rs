//! The serial shell: a byte pipe to a device, opened by path, with a timeout on
//! every read and write. Drivers speak to a [`Port`]; tests and benches can
//! hand them anything that implements it.
//!
//! Hang-ups (the other end vanished: a USB adapter unplugged, an emulator's
//! pty closed) surface as [`PortError::Hangup`], never as a zero-length read,
//! so no caller can spin on `Ok(0)`.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Framing of a serial line. Fiscal registers and receipt printers use 8N1
/// without flow control; the other settings exist for odd hardware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineSettings {
    pub baud: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
    pub flow_control: FlowControl,
}

impl LineSettings {
    pub fn n81(baud: u32) -> LineSettings {
        LineSettings {
            baud,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: FlowControl::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Odd,
    Even,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    None,
    Software,
    Hardware,
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Nothing (or not everything) arrived or could be sent in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The device went away: the port must be closed and opened again.
    #[error("device hung up: {0}")]
    Hangup(String),
    /// The port could not be opened (missing path, busy, no permission).
    #[error("cannot open {path}: {message}")]
    Open { path: PathBuf, message: String },
}

/// A byte pipe to a device.
pub trait Port: Send {
    /// Reads at least one byte into `buf`, waiting at most `timeout`.
    /// Never returns `Ok(0)`.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, PortError>;
    /// Writes all of `data` within `timeout`.
    fn write_all(&mut self, data: &[u8], timeout: Duration) -> Result<(), PortError>;
    /// Drops whatever the device sent that nobody read (stale replies, noise).
    fn discard_input(&mut self) -> Result<(), PortError>;

    /// Reads exactly one byte within `timeout`.
    fn read_byte(&mut self, timeout: Duration) -> Result<u8, PortError> {
        let mut b = [0u8; 1];
        self.read(&mut b, timeout)?;
        Ok(b[0])
    }

    /// Fills `buf` completely; `timeout` bounds the whole read.
    fn read_exact(&mut self, buf: &mut [u8], timeout: Duration) -> Result<(), PortError> {
        let deadline = Instant::now() + timeout;
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PortError::Timeout(timeout));
            }
            got += self.read(&mut buf[got..], left)?;
        }
        Ok(())
    }
}

/// A real serial port (or a pty standing in for one).
pub struct SerialPort {
    path: PathBuf,
    port: serialport::TTYPort,
}

impl SerialPort {
    /// Opens `path` exclusively: a second opener (another program, a second
    /// fiscald) is refused instead of interleaving bytes with ours.
    pub fn open(path: &Path, line: &LineSettings) -> Result<SerialPort, PortError> {
        let builder = serialport::new(path.to_string_lossy(), line.baud)
            .data_bits(match line.data_bits {
                5 => serialport::DataBits::Five,
                6 => serialport::DataBits::Six,
                7 => serialport::DataBits::Seven,
                _ => serialport::DataBits::Eight,
            })
            .parity(match line.parity {
                Parity::None => serialport::Parity::None,
                Parity::Odd => serialport::Parity::Odd,
                Parity::Even => serialport::Parity::Even,
            })
            .stop_bits(if line.stop_bits == 2 {
                serialport::StopBits::Two
            } else {
                serialport::StopBits::One
            })
            .flow_control(match line.flow_control {
                FlowControl::None => serialport::FlowControl::None,
                FlowControl::Software => serialport::FlowControl::Software,
                FlowControl::Hardware => serialport::FlowControl::Hardware,
            })
            .timeout(Duration::from_millis(100));
        let port = serialport::TTYPort::open(&builder).map_err(|e| PortError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(SerialPort {
            path: path.to_path_buf(),
            port,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn classify(&self, e: io::Error, timeout: Duration) -> PortError {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => PortError::Timeout(timeout),
            _ => PortError::Hangup(format!("{}: {e}", self.path.display())),
        }
    }
}

impl Port for SerialPort {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, PortError> {
        use serialport::SerialPort as _;
        self.port
            .set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(|e| PortError::Hangup(e.to_string()))?;
        loop {
            match self.port.read(buf) {
                // poll said readable, read said end of file: the other end is gone.
                Ok(0) => {
                    return Err(PortError::Hangup(format!(
                        "{}: end of file",
                        self.path.display()
                    )));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify(e, timeout)),
            }
        }
    }

    fn write_all(&mut self, data: &[u8], timeout: Duration) -> Result<(), PortError> {
        use serialport::SerialPort as _;
        let deadline = Instant::now() + timeout;
        let mut sent = 0;
        while sent < data.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PortError::Timeout(timeout));
            }
            self.port
                .set_timeout(left)
                .map_err(|e| PortError::Hangup(e.to_string()))?;
            match self.port.write(&data[sent..]) {
                Ok(0) => {
                    return Err(PortError::Hangup(format!(
                        "{}: write returned 0",
                        self.path.display()
                    )));
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify(e, timeout)),
            }
        }
        Ok(())
    }

    fn discard_input(&mut self) -> Result<(), PortError> {
        use serialport::SerialPort as _;
        self.port
            .clear(serialport::ClearBuffer::Input)
            .map_err(|e| PortError::Hangup(e.to_string()))
    }
}
