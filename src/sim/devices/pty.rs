//! A pseudo-terminal standing in for a serial cable: the emulator owns the
//! master side, the driver (or pyserial) opens the slave by path like any
//! `/dev/ttyUSB0`. "Unplugging" drops the master: the driver's reads and
//! writes fail the way they do when a USB adapter is pulled.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

pub struct Pty {
    master: File,
    /// Held open so the master never sees a hang-up between two opens by the
    /// driver (that would make `poll` return at once, again and again).
    _slave: OwnedFd,
    slave_path: PathBuf,
}

impl Pty {
    /// A new pair with the slave in raw mode (no echo, no CR/LF translation).
    pub fn open() -> io::Result<Pty> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        let mut t = tcgetattr(&pair.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        let slave_path = nix::unistd::ttyname(&pair.slave).map_err(io::Error::from)?;
        Ok(Pty {
            master: File::from(pair.master),
            _slave: pair.slave,
            slave_path,
        })
    }

    /// The device path a driver opens (`/dev/pts/N`).
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// The line speed the driver set on its end (a pty pair shares one
    /// termios on Linux), in baud; `None` for a rate not in the usual list.
    pub fn line_baud(&self) -> Option<u32> {
        use nix::libc;
        use std::os::fd::AsRawFd;
        // SAFETY: termios2 is a plain C struct; all-zero is a valid value.
        let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
        // SAFETY: TCGETS2 on a tty fd we own fills exactly one termios2.
        // (TCGETS2, not tcgetattr: serialport sets rates with BOTHER, whose
        // speed only termios2 carries.)
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TCGETS2, &mut t) } != 0 {
            return None;
        }
        let speed = t.c_cflag & libc::CBAUD;
        if speed == libc::BOTHER {
            return Some(t.c_ospeed);
        }
        [
            (libc::B1200, 1_200),
            (libc::B2400, 2_400),
            (libc::B4800, 4_800),
            (libc::B9600, 9_600),
            (libc::B19200, 19_200),
            (libc::B38400, 38_400),
            (libc::B57600, 57_600),
            (libc::B115200, 115_200),
            (libc::B230400, 230_400),
        ]
        .iter()
        .find(|(b, _)| *b == speed)
        .map(|(_, baud)| *baud)
    }

    /// Points the stable name `at` to this pty, replacing an older link
    /// atomically (as udev does on replug).
    pub fn link(&self, at: &Path) -> io::Result<()> {
        let tmp = at.with_extension("link-tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&self.slave_path, &tmp)?;
        std::fs::rename(&tmp, at)
    }

    /// Waits up to `timeout` for bytes from the driver. `Ok(0)` means nothing
    /// arrived in time.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if !self.wait(PollFlags::POLLIN, timeout)? {
            return Ok(0);
        }
        match self.master.read(buf) {
            Ok(n) => Ok(n),
            // EIO: no slave open at the moment (cannot happen while _slave is
            // held, kept for safety); report as "nothing".
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => {
                std::thread::sleep(timeout.min(Duration::from_millis(20)));
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Writes all of `data`, waiting at most `timeout` for buffer space.
    pub fn write_all(&mut self, data: &[u8], timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut sent = 0;
        while sent < data.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(PollFlags::POLLOUT, left)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "pty write timed out",
                ));
            }
            match self.master.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn wait(&self, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.master.as_fd(), flags)];
        loop {
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::port::{LineSettings, Port, PortError, SerialPort};

    #[test]
    fn bytes_cross_both_ways_and_unplug_is_a_hangup() {
        let dir = tempfile::tempdir().unwrap();
        let mut pty = Pty::open().unwrap();
        let link = dir.path().join("dev");
        pty.link(&link).unwrap();
        let mut port = SerialPort::open(&link, &LineSettings::n81(115200)).unwrap();

        // A second opener is refused: the port is exclusive.
        assert!(SerialPort::open(&link, &LineSettings::n81(115200)).is_err());

        port.write_all(b"\x05\x0a\x0d", Duration::from_secs(1))
            .unwrap();
        let mut buf = [0u8; 16];
        let n = pty.read(&mut buf, Duration::from_secs(1)).unwrap();
        assert_eq!(&buf[..n], b"\x05\x0a\x0d", "raw mode: no translation");

        pty.write_all(b"\x06\x15", Duration::from_secs(1)).unwrap();
        let mut got = [0u8; 2];
        port.read_exact(&mut got, Duration::from_secs(1)).unwrap();
        assert_eq!(&got, b"\x06\x15");

        // Nothing to read: a timeout, not a zero-length read.
        assert!(matches!(
            port.read(&mut buf, Duration::from_millis(20)),
            Err(PortError::Timeout(_))
        ));

        drop(pty);
        let err = port.read(&mut buf, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, PortError::Hangup(_)), "{err:?}");
    }
}
