//! The printer as a pure state machine: bytes in, status replies out, and a
//! record of what was printed. No I/O and no clock: the runner feeds it.
//!
//! Commands may arrive split across reads; an incomplete one waits in
//! `pending` for the rest. DLE EOT is answered at command boundaries only
//! (spec §9: python-escpos never interleaves it with parameter data).

use crate::devices::escpos::command::{DLE, DrawerPin, ESC, GS, LF, code_tables};

const FS: u8 = 0x1C;

/// An unsolicited ASB-like frame (bit 1 clear in every byte, spec §7): what
/// [`PrinterFaults::garbage_next`] puts in front of a status reply.
pub const GARBAGE: [u8; 4] = [0x14, 0x00, 0x00, 0x0F];

/// What went past the printer besides text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `ESC @`.
    Init,
    /// `ESC t n`.
    CodeTable(u8),
    /// `GS V`, any form.
    Cut { partial: bool },
    /// `GS ( k` print (fn 81) of the stored data (fn 80), as UTF-8.
    Qr(String),
    /// `GS k`, function A or B.
    Barcode { symbology: u8, data: String },
    /// `ESC p m t1 t2` or the real-time `DLE DC4 1 m t`.
    DrawerKick {
        pin: DrawerPin,
        on_ms: u32,
        off_ms: u32,
    },
}

/// Conditions a test can put the printer in. Replaced whole by `set_faults`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrinterFaults {
    pub paper_out: bool,
    pub paper_near_end: bool,
    pub cover_open: bool,
    pub offline: bool,
    pub cutter_error: bool,
    /// Put [`GARBAGE`] before each of the next this-many status replies.
    pub garbage_next: u32,
    /// Extra time per byte received (a printer busy with a slow mechanism);
    /// applied by the runner, not the model.
    pub slow: Option<std::time::Duration>,
}

/// The paper between two cuts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// Printed lines, decoded with the code table active for each byte run.
    pub lines: Vec<String>,
    /// The bytes that printed this document (commands and text, no real-time
    /// requests, nothing dropped).
    pub raw: Vec<u8>,
    pub qr: Vec<String>,
    /// `Some(partial)` once cut.
    pub cut: Option<bool>,
}

impl Document {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Everything the printer did, for tests and benches to inspect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrinterOutput {
    /// Cut documents, oldest first.
    pub documents: Vec<Document>,
    /// What was printed since the last cut (a partial line included).
    pub current: Document,
    /// Every byte received, real-time requests and dropped data included.
    pub raw: Vec<u8>,
    /// Every byte sent back (status replies and any garbage before them).
    pub sent: Vec<u8>,
    pub events: Vec<Event>,
    /// Print data received while the printer could not print.
    pub dropped_bytes: u64,
    pub status_requests: u64,
    pub unknown_commands: u64,
}

impl PrinterOutput {
    /// All printed text, documents separated by a blank line.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.documents.iter().map(Document::text).collect();
        parts.push(self.current.text());
        parts.join("\n\n")
    }
}

/// One parsed unit of the byte stream.
enum Cmd<'a> {
    Text(&'a [u8]),
    Lf,
    Init,
    CodeTable(u8),
    Feed(u8),
    Cut(u8),
    Kick {
        m: u8,
        t1: u8,
        t2: u8,
    },
    Qr {
        f: u8,
        data: &'a [u8],
    },
    Barcode {
        m: u8,
        data: &'a [u8],
    },
    /// Real-time: DLE EOT n.
    Status(u8),
    /// Real-time: DLE DC4 1 m t.
    RealtimePulse {
        m: u8,
        t: u8,
    },
    /// Real-time commands with no effect here (DLE ENQ, other DLE DC4).
    RealtimeOther,
    /// Known commands with no effect on the text (style, spacing, images).
    Style,
    Unknown,
}

pub struct PrinterModel {
    pending: Vec<u8>,
    code_table: u8,
    line: String,
    qr_store: Option<String>,
    out: PrinterOutput,
    faults: PrinterFaults,
    drawer_open: bool,
    drawer_pin: DrawerPin,
}

impl Default for PrinterModel {
    fn default() -> PrinterModel {
        PrinterModel::new(DrawerPin::Pin2)
    }
}

impl PrinterModel {
    /// A printer with paper, cover closed, and one drawer on `drawer_pin`.
    pub fn new(drawer_pin: DrawerPin) -> PrinterModel {
        PrinterModel {
            pending: Vec::new(),
            code_table: code_tables::PC437,
            line: String::new(),
            qr_store: None,
            out: PrinterOutput::default(),
            faults: PrinterFaults::default(),
            drawer_open: false,
            drawer_pin,
        }
    }

    pub fn set_faults(&mut self, faults: PrinterFaults) {
        self.faults = faults;
    }

    pub fn faults(&self) -> &PrinterFaults {
        &self.faults
    }

    /// The drawer sensor: opened by a kick on its pin, closed by hand.
    pub fn drawer_open(&self) -> bool {
        self.drawer_open
    }

    pub fn close_drawer(&mut self) {
        self.drawer_open = false;
    }

    /// What was printed so far; the partial line counts as printed.
    pub fn output(&self) -> PrinterOutput {
        let mut out = self.out.clone();
        if !self.line.is_empty() {
            out.current.lines.push(self.line.clone());
        }
        out
    }

    /// Whether print data is acted on. A printer offline for any reason keeps
    /// answering real-time requests but prints nothing.
    pub fn can_print(&self) -> bool {
        let f = &self.faults;
        !(f.paper_out || f.cover_open || f.offline || f.cutter_error)
    }

    /// The reply to DLE EOT `n` (1–4); `None` for other `n` (not answered).
    pub fn status_byte(&self, n: u8) -> Option<u8> {
        let f = &self.faults;
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        Some(
            0x12 | match n {
                // Drawer open drives pin 3 HIGH here: an assumption, the
                // level depends on the drawer (spec §6).
                1 => bit(self.drawer_open, 0x04) | bit(!self.can_print(), 0x08),
                2 => bit(f.cover_open, 0x04) | bit(f.paper_out, 0x20) | bit(f.cutter_error, 0x40),
                3 => bit(f.cutter_error, 0x08),
                4 => bit(f.paper_near_end, 0x0C) | bit(f.paper_out, 0x60),
                _ => return None,
            },
        )
    }

    /// Takes bytes from the wire; returns what the printer sends back.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.out.raw.extend_from_slice(bytes);
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(bytes);
        let mut replies = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let Some((len, cmd)) = parse(&buf[pos..]) else {
                break;
            };
            let bytes = &buf[pos..pos + len];
            self.apply(cmd, bytes, &mut replies);
            pos += len;
        }
        buf.drain(..pos);
        self.pending = buf;
        self.out.sent.extend_from_slice(&replies);
        replies
    }

    fn apply(&mut self, cmd: Cmd, bytes: &[u8], replies: &mut Vec<u8>) {
        match cmd {
            Cmd::Status(n) => {
                self.out.status_requests += 1;
                if let Some(b) = self.status_byte(n) {
                    if self.faults.garbage_next > 0 {
                        self.faults.garbage_next -= 1;
                        replies.extend_from_slice(&GARBAGE);
                    }
                    replies.push(b);
                }
                return;
            }
            Cmd::RealtimePulse { m, t } => {
                let ms = u32::from(t) * 100;
                self.kick(m, ms, ms);
                return;
            }
            Cmd::RealtimeOther => return,
            _ => {}
        }
        if !self.can_print() {
            self.out.dropped_bytes += bytes.len() as u64;
            return;
        }
        self.out.current.raw.extend_from_slice(bytes);
        match cmd {
            Cmd::Text(t) => self.line.push_str(&decode(self.code_table, t)),
            Cmd::Lf => self.end_line(),
            Cmd::Init => {
                self.code_table = code_tables::PC437;
                self.line.clear();
                self.out.events.push(Event::Init);
            }
            Cmd::CodeTable(n) => {
                self.code_table = n;
                self.out.events.push(Event::CodeTable(n));
            }
            Cmd::Feed(n) => {
                let blanks = if self.line.is_empty() {
                    n
                } else {
                    n.saturating_sub(1)
                };
                self.end_line();
                for _ in 0..blanks {
                    self.out.current.lines.push(String::new());
                }
            }
            Cmd::Cut(m) => {
                if !self.line.is_empty() {
                    self.end_line();
                }
                let partial = matches!(m, 1 | 49 | 66 | 98 | 104);
                self.out.events.push(Event::Cut { partial });
                let mut doc = std::mem::take(&mut self.out.current);
                doc.cut = Some(partial);
                self.out.documents.push(doc);
            }
            Cmd::Kick { m, t1, t2 } => self.kick(m, u32::from(t1) * 2, u32::from(t2) * 2),
            Cmd::Qr { f, data } => match f {
                0x50 => self.qr_store = Some(String::from_utf8_lossy(data).into_owned()),
                0x51 => {
                    if let Some(q) = self.qr_store.clone() {
                        self.out.current.qr.push(q.clone());
                        self.out.events.push(Event::Qr(q));
                    }
                }
                _ => {}
            },
            Cmd::Barcode { m, data } => self.out.events.push(Event::Barcode {
                symbology: m,
                data: String::from_utf8_lossy(data).into_owned(),
            }),
            Cmd::Unknown => self.out.unknown_commands += 1,
            Cmd::Style | Cmd::Status(_) | Cmd::RealtimePulse { .. } | Cmd::RealtimeOther => {}
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.out.current.lines.push(line);
    }

    fn kick(&mut self, m: u8, on_ms: u32, off_ms: u32) {
        let Some(pin) = DrawerPin::from_m(m) else {
            self.out.unknown_commands += 1;
            return;
        };
        self.out
            .events
            .push(Event::DrawerKick { pin, on_ms, off_ms });
        if pin == self.drawer_pin {
            self.drawer_open = true;
        }
    }
}

/// Text in `ESC t n` table `n`. The tables known here are the Epson numbers
/// of [`code_tables`]; any other table shows its upper half as U+FFFD.
pub fn decode(table: u8, bytes: &[u8]) -> String {
    use crate::devices::escpos::TextEncoding;
    match table {
        code_tables::CP866 => TextEncoding::Cp866.decode(bytes),
        code_tables::CP1251 => TextEncoding::Cp1251.decode(bytes),
        code_tables::PC437 => bytes
            .iter()
            .map(|&b| match b {
                0..0x80 => char::from(b),
                _ => CP437_HIGH
                    .chars()
                    .nth(usize::from(b - 0x80))
                    .unwrap_or('\u{FFFD}'),
            })
            .collect(),
        _ => bytes
            .iter()
            .map(|&b| if b < 0x80 { char::from(b) } else { '\u{FFFD}' })
            .collect(),
    }
}

/// CP437 bytes 0x80–0xFF.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Splits one command (or text run) off the front of `b`; `None` when `b`
/// holds only the start of a command.
fn parse(b: &[u8]) -> Option<(usize, Cmd<'_>)> {
    let at = |i: usize| b.get(i).copied();
    let need = |n: usize| (b.len() >= n).then_some(());
    match b[0] {
        LF => Some((1, Cmd::Lf)),
        ESC => {
            let x = at(1)?;
            match x {
                b'@' => Some((2, Cmd::Init)),
                b't' => Some((3, Cmd::CodeTable(at(2)?))),
                b'd' => Some((3, Cmd::Feed(at(2)?))),
                b'p' => {
                    need(5)?;
                    Some((
                        5,
                        Cmd::Kick {
                            m: b[2],
                            t1: b[3],
                            t2: b[4],
                        },
                    ))
                }
                b'2' | b'<' | b'S' | b'L' | b'i' | b'm' => Some((2, Cmd::Style)),
                b'!' | b'E' | b'-' | b'M' | b'a' | b'3' | b'J' | b'U' | b'V' | b'G' | b' '
                | b'R' | b'{' | b'r' | b'e' | b'=' | b'K' => {
                    need(3)?;
                    Some((3, Cmd::Style))
                }
                b'c' | b'B' | b'$' | b'\\' => {
                    need(4)?;
                    Some((4, Cmd::Style))
                }
                b'D' => {
                    // Tab stops, up to 32, ended by NUL.
                    let end = b[2..].iter().position(|&c| c == 0)?;
                    Some((3 + end, Cmd::Style))
                }
                b'*' => {
                    need(5)?;
                    let cols = usize::from(b[3]) + 256 * usize::from(b[4]);
                    let per = if b[2] >= 32 { 3 } else { 1 };
                    let len = 5 + cols * per;
                    need(len)?;
                    Some((len, Cmd::Style))
                }
                _ => Some((2, Cmd::Unknown)),
            }
        }
        GS => {
            let x = at(1)?;
            match x {
                b'V' => {
                    let m = at(2)?;
                    let len = if matches!(m, 0 | 1 | 48 | 49) { 3 } else { 4 };
                    need(len)?;
                    Some((len, Cmd::Cut(m)))
                }
                b'!' | b'B' | b'b' | b'h' | b'w' | b'H' | b'f' | b'a' | b'r' | b'I' | b'E' => {
                    need(3)?;
                    Some((3, Cmd::Style))
                }
                b'L' | b'W' | b'$' | b'\\' | b'P' => {
                    need(4)?;
                    Some((4, Cmd::Style))
                }
                b'k' => {
                    let m = at(2)?;
                    if m <= 6 {
                        let end = b[3..].iter().position(|&c| c == 0)?;
                        Some((
                            4 + end,
                            Cmd::Barcode {
                                m,
                                data: &b[3..3 + end],
                            },
                        ))
                    } else {
                        let n = usize::from(at(3)?);
                        need(4 + n)?;
                        Some((
                            4 + n,
                            Cmd::Barcode {
                                m,
                                data: &b[4..4 + n],
                            },
                        ))
                    }
                }
                b'(' => {
                    need(5)?;
                    let len = 5 + usize::from(b[3]) + 256 * usize::from(b[4]);
                    need(len)?;
                    // GS ( k pL pH cn fn m data: QR (cn 0x31) store and print.
                    if b[2] == b'k' && len >= 7 && b[5] == 0x31 {
                        let data = if len > 8 { &b[8..len] } else { &[][..] };
                        Some((len, Cmd::Qr { f: b[6], data }))
                    } else {
                        Some((len, Cmd::Style))
                    }
                }
                b'v' => {
                    // GS v 0 m xL xH yL yH: raster image, xL+256xH bytes per row.
                    need(8)?;
                    let x = usize::from(b[4]) + 256 * usize::from(b[5]);
                    let y = usize::from(b[6]) + 256 * usize::from(b[7]);
                    let len = 8 + x * y;
                    need(len)?;
                    Some((len, Cmd::Style))
                }
                _ => Some((2, Cmd::Unknown)),
            }
        }
        DLE => match at(1)? {
            0x04 => Some((3, Cmd::Status(at(2)?))),
            0x05 => {
                need(3)?;
                Some((3, Cmd::RealtimeOther))
            }
            0x14 => {
                let f = at(2)?;
                // fn 8 (clear buffers) carries seven bytes; the others two.
                let len = if f == 8 { 10 } else { 5 };
                need(len)?;
                if f == 1 {
                    Some((len, Cmd::RealtimePulse { m: b[3], t: b[4] }))
                } else {
                    Some((len, Cmd::RealtimeOther))
                }
            }
            _ => Some((1, Cmd::Unknown)),
        },
        FS => {
            let x = at(1)?;
            let len = match x {
                b'C' => 3,
                b'p' => 4,
                _ => 2,
            };
            need(len)?;
            Some((len, Cmd::Style))
        }
        // Other control bytes (CR, HT, FF, CAN…) print nothing here.
        0x00..0x20 => Some((1, Cmd::Style)),
        _ => {
            let end = b.iter().position(|&c| c < 0x20).unwrap_or(b.len());
            Some((end, Cmd::Text(&b[..end])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// python-escpos `Dummy` output for textln("Привет, мир!"), textln("abc"),
    /// qr("t=1&s=2", native=True), cut(), cashdraw(2).
    const PYTHON: &[u8] = &[
        0x1b, 0x74, 0x11, 0x8f, 0xe0, 0xa8, 0xa2, 0xa5, 0xe2, 0x2c, 0x20, 0xac, 0xa8, 0xe0, 0x21,
        0x0a, 0x61, 0x62, 0x63, 0x0a, 0x1d, 0x28, 0x6b, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00, 0x1d,
        0x28, 0x6b, 0x03, 0x00, 0x31, 0x43, 0x03, 0x1d, 0x28, 0x6b, 0x03, 0x00, 0x31, 0x45, 0x30,
        0x1d, 0x28, 0x6b, 0x0a, 0x00, 0x31, 0x50, 0x30, 0x74, 0x3d, 0x31, 0x26, 0x73, 0x3d, 0x32,
        0x1d, 0x28, 0x6b, 0x03, 0x00, 0x31, 0x51, 0x30, 0x1b, 0x64, 0x06, 0x1d, 0x56, 0x00, 0x1b,
        0x70, 0x00, 0x32, 0x32,
    ];

    fn check_python_stream(out: &PrinterOutput) {
        assert_eq!(out.documents.len(), 1);
        let doc = &out.documents[0];
        assert_eq!(&doc.lines[..2], ["Привет, мир!", "abc"]);
        assert_eq!(doc.qr, ["t=1&s=2"]);
        assert_eq!(doc.cut, Some(false));
        assert_eq!(
            out.events,
            [
                Event::CodeTable(17),
                Event::Qr("t=1&s=2".into()),
                Event::Cut { partial: false },
                Event::DrawerKick {
                    pin: DrawerPin::Pin2,
                    on_ms: 100,
                    off_ms: 100
                },
            ]
        );
        assert_eq!(out.unknown_commands, 0);
    }

    #[test]
    fn decodes_python_escpos_output() {
        let mut m = PrinterModel::default();
        assert!(m.feed(PYTHON).is_empty());
        check_python_stream(&m.output());
        assert!(m.drawer_open());
        m.close_drawer();
        assert!(!m.drawer_open());
    }

    #[test]
    fn the_same_stream_split_at_every_byte_gives_the_same_result() {
        for split in 1..PYTHON.len() {
            let mut m = PrinterModel::default();
            m.feed(&PYTHON[..split]);
            m.feed(&PYTHON[split..]);
            check_python_stream(&m.output());
        }
        let mut m = PrinterModel::default();
        for b in PYTHON {
            m.feed(&[*b]);
        }
        check_python_stream(&m.output());
    }

    #[test]
    fn code_table_applies_per_byte_run() {
        let mut m = PrinterModel::default();
        let mut s = vec![
            0x1B, 0x74, 46, 0xCF, 0xF0, 0x0A, 0x1B, 0x74, 17, 0x8F, 0xE0, 0x0A,
        ];
        s.extend_from_slice(&[0x1B, 0x40, 0x82, 0x0A]); // ESC @ → PC437: 0x82 = é
        m.feed(&s);
        assert_eq!(m.output().current.lines, ["Пр", "Пр", "é"]);
    }

    #[test]
    fn status_bytes_have_the_fixed_bits_and_the_spec_values() {
        let mut m = PrinterModel::default();
        assert_eq!(
            m.feed(&[0x10, 0x04, 1, 0x10, 0x04, 2, 0x10, 0x04, 3, 0x10, 0x04, 4]),
            [0x12; 4]
        );
        m.set_faults(PrinterFaults {
            paper_out: true,
            ..Default::default()
        });
        assert_eq!(
            m.feed(&[0x10, 0x04, 1, 0x10, 0x04, 2, 0x10, 0x04, 4]),
            [0x1A, 0x32, 0x72]
        );
        m.set_faults(PrinterFaults {
            paper_out: true,
            paper_near_end: true,
            ..Default::default()
        });
        assert_eq!(m.feed(&[0x10, 0x04, 4]), [0x7E]);
        m.set_faults(PrinterFaults {
            paper_near_end: true,
            ..Default::default()
        });
        assert_eq!(m.feed(&[0x10, 0x04, 4, 0x10, 0x04, 1]), [0x1E, 0x12]);
        m.set_faults(PrinterFaults {
            cover_open: true,
            ..Default::default()
        });
        assert_eq!(m.feed(&[0x10, 0x04, 1, 0x10, 0x04, 2]), [0x1A, 0x16]);
        m.set_faults(PrinterFaults {
            garbage_next: 1,
            ..Default::default()
        });
        assert_eq!(
            m.feed(&[0x10, 0x04, 1, 0x10, 0x04, 1]),
            [0x14, 0x00, 0x00, 0x0F, 0x12, 0x12]
        );
        m.feed(&[0x1B, 0x70, 0x00, 0x19, 0x19]);
        assert_eq!(m.feed(&[0x10, 0x04, 1]), [0x16], "drawer open: pin 3 high");
        assert_eq!(m.feed(&[0x10, 0x04, 7]), [] as [u8; 0]);
        assert_eq!(m.output().status_requests, 16);
    }

    #[test]
    fn data_is_dropped_while_paper_is_out_but_status_is_answered() {
        let mut m = PrinterModel::default();
        m.set_faults(PrinterFaults {
            paper_out: true,
            ..Default::default()
        });
        let replies = m.feed(b"lost\n\x1d\x56\x00\x10\x04\x04");
        assert_eq!(replies, [0x72]);
        let out = m.output();
        assert_eq!(out.dropped_bytes, 8);
        assert!(out.documents.is_empty() && out.current.lines.is_empty());
        m.set_faults(PrinterFaults::default());
        m.feed(b"kept\n");
        assert_eq!(m.output().current.lines, ["kept"]);
    }

    #[test]
    fn status_inside_parameter_data_is_not_a_request() {
        // A QR store whose data contains 10 04 01: part of the data, no reply.
        let mut m = PrinterModel::default();
        let r = m.feed(&[
            0x1D, 0x28, 0x6B, 0x06, 0x00, 0x31, 0x50, 0x30, 0x10, 0x04, 0x01,
        ]);
        assert!(r.is_empty());
        assert_eq!(m.feed(&[0x10, 0x04, 0x01]), [0x12]);
    }

    #[test]
    fn barcodes_and_partial_cuts() {
        let mut m = PrinterModel::default();
        m.feed(b"\x1dk\x024006381333931\x00\x1dkI\x05{B123\x1dV\x42\x00");
        let out = m.output();
        assert_eq!(
            &out.events[..2],
            [
                Event::Barcode {
                    symbology: 2,
                    data: "4006381333931".into()
                },
                Event::Barcode {
                    symbology: 73,
                    data: "{B123".into()
                },
            ]
        );
        assert_eq!(out.documents[0].cut, Some(true));
        assert_eq!(CP437_HIGH.chars().count(), 128);
    }
}
