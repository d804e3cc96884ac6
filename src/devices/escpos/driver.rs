//! The printer driver: the thin shell that sends encoded documents and asks
//! for real-time status over a [`Port`]. Every read and write is bounded.

use super::command::{Commands, DrawerPin, StatusKind, TextEncoding, status_request};
use super::status::{PrinterStatus, is_status_byte};
use crate::devices::port::{Port, PortError};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct PrinterOptions {
    /// How long one DLE EOT request may go unanswered. Printers answer at once
    /// (even offline), so this only has to cover the wire and the OS.
    pub status_timeout: Duration,
    /// How long one chunk of a document may take to be accepted. A printer
    /// that takes nothing for this long is stuck.
    pub write_timeout: Duration,
    /// Bytes handed to the port at a time.
    pub chunk_size: usize,
    /// The line speed. A status request sent after a document queues behind
    /// it on the wire, so the status after a print may take the document's
    /// wire time (bytes × 10 / baud) on top of `status_timeout`.
    pub line_baud: u32,
    /// Ask DLE EOT 3 (error causes) too. Some clones do not answer it.
    pub query_error_status: bool,
}

impl Default for PrinterOptions {
    fn default() -> PrinterOptions {
        PrinterOptions {
            status_timeout: Duration::from_millis(500),
            write_timeout: Duration::from_secs(2),
            chunk_size: 256,
            line_baud: 115_200,
            query_error_status: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EscPosError {
    /// The printer cannot print now; the document was not (or not wholly)
    /// printed: fix the cause, then print it again.
    #[error("printer not ready: {}", .0.problem().unwrap_or("unknown problem"))]
    NotReady(PrinterStatus),
    /// The port went away (cable or USB adapter pulled): reopen it.
    #[error("printer hung up: {0}; reopen the port")]
    Hangup(String),
    /// The printer did not answer or accept data in time: is it powered and
    /// on the configured port and speed?
    #[error("printer did not {what} within {after:?}: check power, cable and baud rate")]
    Timeout { what: &'static str, after: Duration },
    /// The printer answered something that is not ESC/POS status.
    #[error("printer protocol error: {0}")]
    Protocol(String),
    /// The printer takes data but cannot be read (a unidirectional USB
    /// printer): its status is unknown.
    #[error("{0}")]
    NoStatus(String),
}

impl EscPosError {
    pub fn is_hangup(&self) -> bool {
        matches!(self, EscPosError::Hangup(_))
    }
}

pub struct Printer {
    port: Box<dyn Port>,
    opts: PrinterOptions,
    written: u64,
}

impl Printer {
    pub fn new(port: Box<dyn Port>, opts: PrinterOptions) -> Printer {
        Printer {
            port,
            opts,
            written: 0,
        }
    }

    /// Every byte sent to the printer so far: documents, status requests, pulses.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Asks DLE EOT 1, 2, (3,) 4: stale input is dropped first, then one
    /// request at a time, each answered before the next is sent.
    pub fn status(&mut self) -> Result<PrinterStatus, EscPosError> {
        self.status_within(self.opts.status_timeout)
    }

    /// Prints `doc` if the printer is ready; returns the status after it.
    /// `NotReady` before the write means nothing was sent; after it (paper ran
    /// out while printing) the document must be printed again.
    pub fn print(&mut self, doc: &[u8]) -> Result<PrinterStatus, EscPosError> {
        let before = self.status()?;
        if before.problem().is_some() {
            return Err(EscPosError::NotReady(before));
        }
        for chunk in doc.chunks(self.opts.chunk_size.max(1)) {
            self.write(chunk, "accept print data")?;
        }
        let backlog = wire_time(doc.len(), self.opts.line_baud);
        let after = self.status_within(self.opts.status_timeout + backlog)?;
        if after.problem().is_some() {
            return Err(EscPosError::NotReady(after));
        }
        Ok(after)
    }

    /// Pulses the drawer kick connector: `pulse` on, `pulse` off (2–510 ms).
    pub fn kick_drawer(&mut self, pin: DrawerPin, pulse: Duration) -> Result<(), EscPosError> {
        let ms = pulse.as_millis().min(u128::from(u32::MAX)) as u32;
        let mut c = Commands::new(TextEncoding::Cp866);
        c.drawer_kick(pin, ms, ms);
        self.write(c.bytes(), "accept the drawer kick")
    }

    /// The first request gets `first_timeout` (it may queue behind a
    /// document); the rest get `status_timeout`.
    /// A printer that cannot be read (unidirectional USB) gets
    /// [`PrinterStatus::not_reported`]: it is printed to blind, as such
    /// printers always are; paper out cannot be seen.
    fn status_within(&mut self, first_timeout: Duration) -> Result<PrinterStatus, EscPosError> {
        match self.ask_status(first_timeout) {
            Err(EscPosError::NoStatus(_)) => Ok(PrinterStatus::not_reported()),
            other => other,
        }
    }

    fn ask_status(&mut self, first_timeout: Duration) -> Result<PrinterStatus, EscPosError> {
        self.port
            .discard_input()
            .map_err(port_error("drop stale input"))?;
        let printer = self.query(StatusKind::Printer, first_timeout)?;
        let t = self.opts.status_timeout;
        let offline = self.query(StatusKind::Offline, t)?;
        let error = if self.opts.query_error_status {
            Some(self.query(StatusKind::Error, t)?)
        } else {
            None
        };
        let paper = self.query(StatusKind::Paper, t)?;
        PrinterStatus::decode(printer, offline, error, paper)
            .map_err(|e| EscPosError::Protocol(e.to_string()))
    }

    /// One DLE EOT request and its reply byte, skipping anything without the
    /// fixed bits (noise, ASB frames).
    fn query(&mut self, kind: StatusKind, timeout: Duration) -> Result<u8, EscPosError> {
        self.write(&status_request(kind), "accept a status request")?;
        let deadline = Instant::now() + timeout;
        let mut junk = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(if junk.is_empty() {
                    EscPosError::Timeout {
                        what: "answer a status request",
                        after: timeout,
                    }
                } else {
                    EscPosError::Protocol(format!(
                        "no status byte in reply to DLE EOT {} within {timeout:?}, only {junk:02x?}",
                        kind as u8
                    ))
                });
            }
            match self.port.read_byte(left) {
                Ok(b) if is_status_byte(b) => return Ok(b),
                Ok(b) => {
                    if junk.len() < 32 {
                        junk.push(b);
                    }
                }
                Err(PortError::Timeout(_)) => {}
                Err(e) => return Err(port_error("answer a status request")(e)),
            }
        }
    }

    fn write(&mut self, data: &[u8], what: &'static str) -> Result<(), EscPosError> {
        self.port
            .write_all(data, self.opts.write_timeout)
            .map_err(port_error(what))?;
        self.written += data.len() as u64;
        Ok(())
    }
}

/// How long `bytes` take on an 8N1 line (10 bits a byte).
pub fn wire_time(bytes: usize, baud: u32) -> Duration {
    Duration::from_micros(bytes as u64 * 10 * 1_000_000 / u64::from(baud.max(1)))
}

fn port_error(what: &'static str) -> impl Fn(PortError) -> EscPosError {
    move |e| match e {
        PortError::Timeout(after) => EscPosError::Timeout { what, after },
        PortError::Hangup(m) => EscPosError::Hangup(m),
        e @ PortError::Open { .. } => EscPosError::Hangup(e.to_string()),
        e @ PortError::NoReadBack(_) => EscPosError::NoStatus(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A port that answers from a script: no pty needed for the decision logic.
    struct Scripted {
        replies: VecDeque<Vec<u8>>,
        pending: VecDeque<u8>,
        sent: Vec<u8>,
    }

    impl Port for Scripted {
        fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, PortError> {
            match self.pending.pop_front() {
                Some(b) => {
                    buf[0] = b;
                    Ok(1)
                }
                None => Err(PortError::Timeout(timeout)),
            }
        }
        fn write_all(&mut self, data: &[u8], _: Duration) -> Result<(), PortError> {
            self.sent.extend_from_slice(data);
            if data.first() == Some(&0x10)
                && let Some(r) = self.replies.pop_front()
            {
                self.pending.extend(r);
            }
            Ok(())
        }
        fn discard_input(&mut self) -> Result<(), PortError> {
            self.pending.clear();
            Ok(())
        }
    }

    /// A unidirectional USB printer: takes everything, reads fail.
    struct WriteOnly(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Port for WriteOnly {
        fn read(&mut self, _: &mut [u8], _: Duration) -> Result<usize, PortError> {
            Err(PortError::NoReadBack("/dev/usb/lp0".into()))
        }
        fn write_all(&mut self, data: &[u8], _: Duration) -> Result<(), PortError> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(())
        }
        fn discard_input(&mut self) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[test]
    fn a_unidirectional_printer_is_printed_to_blind() {
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut p = Printer::new(Box::new(WriteOnly(sent.clone())), PrinterOptions::default());
        let status = p.status().unwrap();
        assert!(!status.reported());
        assert_eq!(status.problem(), None);
        let after = p.print(b"\x1b@receipt\n").unwrap();
        assert!(!after.reported());
        assert!(sent.lock().unwrap().windows(8).any(|w| w == b"receipt\n"));
    }

    fn printer(replies: &[&[u8]]) -> Printer {
        let port = Scripted {
            replies: replies.iter().map(|r| r.to_vec()).collect(),
            pending: VecDeque::new(),
            sent: Vec::new(),
        };
        Printer::new(
            Box::new(port),
            PrinterOptions {
                status_timeout: Duration::from_millis(10),
                ..PrinterOptions::default()
            },
        )
    }

    #[test]
    fn refuses_to_print_on_paper_out_and_sends_nothing_but_requests() {
        let mut p = printer(&[&[0x1A], &[0x32], &[0x12], &[0x72]]);
        let err = p.print(b"hello\n").unwrap_err();
        assert!(matches!(err, EscPosError::NotReady(s) if s.problem() == Some("paper out")));
        assert_eq!(p.bytes_written(), 12, "four requests, no document");
    }

    #[test]
    fn skips_junk_and_reports_a_silent_printer() {
        let mut p = printer(&[&[0x00, 0xFF, 0x12], &[0x14, 0x12], &[0x12], &[0x1E]]);
        let s = p.status().unwrap();
        assert_eq!(s.paper, super::super::Paper::NearEnd);
        let err = p.status().unwrap_err();
        assert!(matches!(err, EscPosError::Timeout { .. }), "{err:?}");
        let mut p = printer(&[&[0x00, 0x01]]);
        assert!(matches!(p.status().unwrap_err(), EscPosError::Protocol(_)));
    }

    #[test]
    fn wire_time_is_ten_bits_a_byte() {
        assert_eq!(wire_time(11_520, 115_200), Duration::from_secs(1));
    }
}
