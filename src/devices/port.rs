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
    /// The device takes data but cannot be read: a unidirectional USB
    /// printer (usblp answers `read` with EINVAL). Writes still work.
    #[error("{0} cannot be read (a unidirectional printer: no status)")]
    NoReadBack(String),
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

/// A device node that is not a tty: a USB printer-class printer
/// (`/dev/usb/lp*`, the kernel's usblp driver). No line settings; reads and
/// writes are bounded with `poll`. Bidirectional printers answer status
/// requests through `read`; on a unidirectional one `read` fails with
/// EINVAL, reported as [`PortError::NoReadBack`]. Unplugging gives ENODEV
/// (a hang-up). usblp lets one process open the device at a time.
pub struct CharDevicePort {
    path: PathBuf,
    file: std::fs::File,
}

impl CharDevicePort {
    pub fn open(path: &Path) -> Result<CharDevicePort, PortError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)
            .map_err(|e| PortError::Open {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(CharDevicePort {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Waits up to `timeout` for `flags`; false on timeout.
    fn wait(&self, flags: nix::poll::PollFlags, timeout: Duration) -> Result<bool, PortError> {
        use nix::poll::{PollFd, PollTimeout, poll};
        use std::os::fd::AsFd;
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.file.as_fd(), flags)];
        loop {
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return Ok(false),
                Ok(_) => {
                    let got = fds[0].revents().unwrap_or(nix::poll::PollFlags::empty());
                    if got
                        .intersects(nix::poll::PollFlags::POLLERR | nix::poll::PollFlags::POLLNVAL)
                        && !got.intersects(flags)
                    {
                        return Err(PortError::Hangup(format!(
                            "{}: device error",
                            self.path.display()
                        )));
                    }
                    return Ok(true);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(PortError::Hangup(format!(
                        "{}: poll: {e}",
                        self.path.display()
                    )));
                }
            }
        }
    }
}

/// What a failed read or write on a printer-class device means. Pure.
pub fn classify_char_device_error(path: &Path, e: &io::Error, timeout: Duration) -> PortError {
    match e.raw_os_error() {
        Some(nix::libc::EINVAL) => PortError::NoReadBack(path.display().to_string()),
        Some(nix::libc::EAGAIN) => PortError::Timeout(timeout),
        _ if e.kind() == io::ErrorKind::TimedOut => PortError::Timeout(timeout),
        _ => PortError::Hangup(format!("{}: {e}", path.display())),
    }
}

impl Port for CharDevicePort {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, PortError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(nix::poll::PollFlags::POLLIN, left)? {
                return Err(PortError::Timeout(timeout));
            }
            match self.file.read(buf) {
                Ok(0) => {
                    return Err(PortError::Hangup(format!(
                        "{}: end of file",
                        self.path.display()
                    )));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(classify_char_device_error(&self.path, &e, timeout)),
            }
        }
    }

    fn write_all(&mut self, data: &[u8], timeout: Duration) -> Result<(), PortError> {
        let deadline = Instant::now() + timeout;
        let mut sent = 0;
        while sent < data.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(nix::poll::PollFlags::POLLOUT, left)? {
                return Err(PortError::Timeout(timeout));
            }
            match self.file.write(&data[sent..]) {
                Ok(0) => {
                    return Err(PortError::Hangup(format!(
                        "{}: write returned 0",
                        self.path.display()
                    )));
                }
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(classify_char_device_error(&self.path, &e, timeout)),
            }
        }
        Ok(())
    }

    fn discard_input(&mut self) -> Result<(), PortError> {
        // Read whatever is waiting, without blocking.
        let mut buf = [0u8; 256];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => {
                    return Err(PortError::Hangup(format!(
                        "{}: end of file",
                        self.path.display()
                    )));
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A unidirectional printer: nothing to drop.
                Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => return Ok(()),
                Err(e) => return Err(classify_char_device_error(&self.path, &e, Duration::ZERO)),
            }
        }
    }
}

/// Opens a printer by path, whatever it is: a tty (serial, USB-serial,
/// CDC-ACM, a pty) with `line`, or another character device (a USB
/// printer-class `/dev/usb/lp*`) as is. Symlinks (`/dev/fiscald/printer`)
/// are followed.
pub fn open_printer_port(path: &Path, line: &LineSettings) -> Result<Box<dyn Port>, PortError> {
    let probe = CharDevicePort::open(path)?;
    if nix::unistd::isatty(&probe.file).unwrap_or(false) {
        drop(probe);
        Ok(Box::new(SerialPort::open(path, line)?))
    } else {
        Ok(Box::new(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usblp_errors_are_sorted_by_what_to_do() {
        let p = Path::new("/dev/usb/lp0");
        let t = Duration::from_millis(5);
        let e = |n| io::Error::from_raw_os_error(n);
        assert!(matches!(
            classify_char_device_error(p, &e(nix::libc::EINVAL), t),
            PortError::NoReadBack(_)
        ));
        assert!(matches!(
            classify_char_device_error(p, &e(nix::libc::ENODEV), t),
            PortError::Hangup(_)
        ));
        assert!(matches!(
            classify_char_device_error(p, &e(nix::libc::EIO), t),
            PortError::Hangup(_)
        ));
        assert!(matches!(
            classify_char_device_error(p, &e(nix::libc::EAGAIN), t),
            PortError::Timeout(_)
        ));
    }

    #[test]
    fn a_bidirectional_printer_answers_status_through_the_non_tty_port() {
        use crate::devices::escpos::{DrawerPin, Paper, Printer, PrinterOptions};
        use crate::sim::devices::printer::{
            PrinterEmulator, PrinterEmulatorOptions, PrinterFaults,
        };
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("lp0");
        let emu = PrinterEmulator::start(
            &link,
            PrinterEmulatorOptions {
                pace_baud: None,
                drawer_pin: DrawerPin::Pin2,
            },
        )
        .unwrap();
        // Opened the way a /dev/usb/lp* node is: plain reads and writes, no
        // line settings (the pty only stands in for the device node).
        let port = CharDevicePort::open(&link).unwrap();
        let mut printer = Printer::new(Box::new(port), PrinterOptions::default());
        let s = printer.status().unwrap();
        assert!(s.reported() && s.problem().is_none(), "{s:?}");
        printer.print(b"\x1b@usb receipt\n").unwrap();
        emu.set_faults(PrinterFaults {
            paper_out: true,
            ..PrinterFaults::default()
        });
        assert_eq!(printer.status().unwrap().paper, Paper::Out);
        emu.stop();
    }

    #[test]
    fn a_fifo_stands_in_for_a_printer_class_device() {
        // A FIFO is a non-tty node like /dev/usb/lp0: bytes written through
        // the port come out of the other end; nothing to read is a timeout.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("lp0");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut port = open_printer_port(&fifo, &LineSettings::n81(115_200)).unwrap();
        let mut reader = std::fs::OpenOptions::new().read(true).open(&fifo).unwrap();
        port.write_all(b"\x1b@hello\n", Duration::from_secs(1))
            .unwrap();
        let mut got = [0u8; 8];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x1b@hello\n");
        // The FIFO holds what was written until read: read it via the port
        // too, then nothing is left and a read times out within its bound.
        port.write_all(b"Z", Duration::from_secs(1)).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(port.read(&mut b, Duration::from_millis(200)).unwrap(), 1);
        let started = Instant::now();
        assert!(matches!(
            port.read(&mut b, Duration::from_millis(50)),
            Err(PortError::Timeout(_))
        ));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
