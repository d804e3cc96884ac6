//! ESC/POS command encoding: bytes in, nothing out. Every byte string here is
//! the one in `shared/spec/escpos.md` (python-escpos `Dummy` output).

pub const ESC: u8 = 0x1B;
pub const GS: u8 = 0x1D;
pub const DLE: u8 = 0x10;
pub const EOT: u8 = 0x04;
pub const LF: u8 = 0x0A;

/// How text is turned into bytes. The matching `ESC t n` table number is
/// vendor-dependent and configured separately (see [`code_tables`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    /// IBM866, "DOS Cyrillic".
    Cp866,
    /// windows-1251.
    Cp1251,
}

impl TextEncoding {
    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Cp866 => encoding_rs::IBM866,
            TextEncoding::Cp1251 => encoding_rs::WINDOWS_1251,
        }
    }

    /// Encodes `text`; a character the code page lacks becomes `?` (a printer
    /// cannot show it either way, and `&#NNNN;` would be worse on paper).
    pub fn encode(self, text: &str, out: &mut Vec<u8>) {
        let mut encoder = self.encoding().new_encoder();
        let mut rest = text;
        let mut buf = [0u8; 256];
        loop {
            let (result, read, written) =
                encoder.encode_from_utf8_without_replacement(rest, &mut buf, true);
            out.extend_from_slice(&buf[..written]);
            rest = &rest[read..];
            match result {
                encoding_rs::EncoderResult::InputEmpty => return,
                encoding_rs::EncoderResult::OutputFull => {}
                encoding_rs::EncoderResult::Unmappable(_) => out.push(b'?'),
            }
        }
    }

    /// Decodes bytes written in this code page.
    pub fn decode(self, bytes: &[u8]) -> String {
        self.encoding()
            .decode_without_bom_handling(bytes)
            .0
            .into_owned()
    }
}

/// `ESC t n` table numbers. **Vendor-dependent (spec §2)**: these are the
/// Epson-standard numbers python-escpos's `default` profile uses; Citizen,
/// Rongta and Wincor use 7 for CP866, Star 10, clones 59. Configure
/// [`crate::devices::escpos::LayoutOptions::code_table`] for other printers.
pub mod code_tables {
    /// PC437 (USA, standard Europe): the table after `ESC @`.
    pub const PC437: u8 = 0;
    /// PC866 Cyrillic #2.
    pub const CP866: u8 = 17;
    /// WPC1251 Cyrillic.
    pub const CP1251: u8 = 46;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    Left,
    Center,
    Right,
}

/// How a receipt is cut (`GS V`). Support varies by model (spec §3): a printer
/// without a partial cutter may ignore form A m=1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CutMode {
    /// Form A: cut where the paper is now (`GS V 0` / `GS V 1`).
    Full,
    Partial,
    /// Form B: feed to the cutter plus `n` motion units, then cut
    /// (`GS V 65 n` / `GS V 66 n`). Needs no guess of the head-to-cutter
    /// distance, so it is the default.
    FeedFull(u8),
    FeedPartial(u8),
    /// No cutter: only feed the paper out to tear it off.
    None,
}

/// The drawer kick connector pin (`ESC p m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum DrawerPin {
    /// Pin 2: drawer 1 (m = 0).
    Pin2,
    /// Pin 5: drawer 2 (m = 1).
    Pin5,
}

impl DrawerPin {
    pub fn m(self) -> u8 {
        match self {
            DrawerPin::Pin2 => 0,
            DrawerPin::Pin5 => 1,
        }
    }

    /// `m` of `ESC p` (0/48 → pin 2, 1/49 → pin 5); `None` for anything else.
    pub fn from_m(m: u8) -> Option<DrawerPin> {
        match m {
            0 | 48 => Some(DrawerPin::Pin2),
            1 | 49 => Some(DrawerPin::Pin5),
            _ => None,
        }
    }
}

/// QR error-correction level (GS ( k fn 69).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum QrEc {
    L,
    M,
    Q,
    H,
}

/// The DLE EOT `n`: which status byte to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    Printer = 1,
    Offline = 2,
    Error = 3,
    Paper = 4,
}

/// `DLE EOT n`: a real-time status request, answered with one byte.
pub fn status_request(kind: StatusKind) -> [u8; 3] {
    [DLE, EOT, kind as u8]
}

/// An ESC/POS byte string under construction. Text goes through the
/// encoding given at construction; [`Commands::code_table`] must announce the
/// matching table first (the receipt layout does).
#[derive(Clone, Debug)]
pub struct Commands {
    buf: Vec<u8>,
    encoding: TextEncoding,
}

impl Commands {
    pub fn new(encoding: TextEncoding) -> Commands {
        Commands {
            buf: Vec::with_capacity(2048),
            encoding,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `ESC @`: clears the print buffer and every mode, the code table too.
    pub fn init(&mut self) -> &mut Self {
        self.raw(&[ESC, b'@'])
    }

    /// `ESC t n`.
    pub fn code_table(&mut self, n: u8) -> &mut Self {
        self.raw(&[ESC, b't', n])
    }

    /// Text in the configured code page (no line feed).
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.encoding.encode(text, &mut self.buf);
        self
    }

    /// Text and a line feed.
    pub fn line(&mut self, text: &str) -> &mut Self {
        self.text(text).raw(&[LF])
    }

    /// `ESC E n`.
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.raw(&[ESC, b'E', u8::from(on)])
    }

    /// `GS ! n`: character size, each 1–8 times (clamped).
    pub fn size(&mut self, width: u8, height: u8) -> &mut Self {
        let w = width.clamp(1, 8) - 1;
        let h = height.clamp(1, 8) - 1;
        self.raw(&[GS, b'!', (w << 4) | h])
    }

    /// `ESC a n`; takes effect at the start of a line.
    pub fn align(&mut self, align: Align) -> &mut Self {
        let n = match align {
            Align::Left => 0,
            Align::Center => 1,
            Align::Right => 2,
        };
        self.raw(&[ESC, b'a', n])
    }

    /// `ESC d n`: print the buffer and feed `n` lines.
    pub fn feed(&mut self, lines: u8) -> &mut Self {
        self.raw(&[ESC, b'd', lines])
    }

    /// `GS V` in the chosen form; [`CutMode::None`] feeds 4 lines to tear off.
    pub fn cut(&mut self, mode: CutMode) -> &mut Self {
        match mode {
            CutMode::Full => self.raw(&[GS, b'V', 0]),
            CutMode::Partial => self.raw(&[GS, b'V', 1]),
            CutMode::FeedFull(n) => self.raw(&[GS, b'V', 65, n]),
            CutMode::FeedPartial(n) => self.raw(&[GS, b'V', 66, n]),
            CutMode::None => self.feed(4),
        }
    }

    /// A QR code (model 2) printed natively with `GS ( k`: model, module
    /// size (1–16), error level, store (UTF-8 data), print.
    pub fn qr(&mut self, data: &str, module_size: u8, ec: QrEc) -> &mut Self {
        let ec = match ec {
            QrEc::L => 0x30,
            QrEc::M => 0x31,
            QrEc::Q => 0x32,
            QrEc::H => 0x33,
        };
        self.raw(&[GS, b'(', b'k', 4, 0, 0x31, 0x41, 0x32, 0])
            .raw(&[GS, b'(', b'k', 3, 0, 0x31, 0x43, module_size.clamp(1, 16)])
            .raw(&[GS, b'(', b'k', 3, 0, 0x31, 0x45, ec]);
        // The store command carries at most 65535 − 3 bytes; a receipt QR is
        // under 200, so longer data is cut rather than made into a bad frame.
        let data = &data.as_bytes()[..data.len().min(0xFFFF - 3)];
        let len = data.len() + 3;
        self.raw(&[
            GS,
            b'(',
            b'k',
            (len & 0xFF) as u8,
            (len >> 8) as u8,
            0x31,
            0x50,
            0x30,
        ])
        .raw(data)
        .raw(&[GS, b'(', b'k', 3, 0, 0x31, 0x51, 0x30])
    }

    /// A CODE128 barcode (code set B) with its text below: `GS h` height,
    /// `GS H 2` HRI below, `GS k 73 n {B data` (Epson ESC/POS, function B).
    /// Data outside printable ASCII is dropped; at most 253 characters.
    pub fn barcode_code128(&mut self, data: &str) -> &mut Self {
        let data: Vec<u8> = data
            .bytes()
            .filter(|b| (0x20..0x7F).contains(b))
            .take(253)
            .collect();
        self.raw(&[GS, b'h', 80]).raw(&[GS, b'H', 2]);
        self.raw(&[GS, b'k', 73, (data.len() + 2) as u8, b'{', b'B'])
            .raw(&data)
    }

    /// `ESC p m t1 t2`: a pulse of `on_ms` then `off_ms` (2 ms units, 2–510 ms).
    pub fn drawer_kick(&mut self, pin: DrawerPin, on_ms: u32, off_ms: u32) -> &mut Self {
        let units = |ms: u32| (ms / 2).clamp(1, 255) as u8;
        self.raw(&[ESC, b'p', pin.m(), units(on_ms), units(off_ms)])
    }

    /// `DLE EOT n`.
    pub fn status_request(&mut self, kind: StatusKind) -> &mut Self {
        self.raw(&status_request(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(f: impl FnOnce(&mut Commands)) -> Vec<u8> {
        let mut c = Commands::new(TextEncoding::Cp866);
        f(&mut c);
        c.into_bytes()
    }

    #[test]
    fn cyrillic_text_matches_python_escpos() {
        // spec §2: text("Привет\n") → 1B 74 11 8F E0 A8 A2 A5 E2 0A
        let b = built(|c| {
            c.code_table(code_tables::CP866).line("Привет");
        });
        assert_eq!(
            b,
            [0x1B, 0x74, 0x11, 0x8F, 0xE0, 0xA8, 0xA2, 0xA5, 0xE2, 0x0A]
        );
        let mut w = Vec::new();
        TextEncoding::Cp1251.encode("Привет", &mut w);
        assert_eq!(w, [0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2]);
        assert_eq!(TextEncoding::Cp1251.decode(&w), "Привет");
    }

    #[test]
    fn unmappable_characters_become_question_marks() {
        let mut out = Vec::new();
        TextEncoding::Cp866.encode("a×b€", &mut out);
        assert_eq!(out, b"a?b?");
    }

    #[test]
    fn qr_matches_the_spec_example() {
        let b = built(|c| {
            c.qr("AB", 4, QrEc::M);
        });
        let want: &[u8] = &[
            0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00, //
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 0x04, //
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x31, //
            0x1D, 0x28, 0x6B, 0x05, 0x00, 0x31, 0x50, 0x30, 0x41, 0x42, //
            0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30,
        ];
        assert_eq!(b, want);
    }

    #[test]
    fn cut_drawer_and_status_forms() {
        assert_eq!(
            built(|c| {
                c.cut(CutMode::Full);
            }),
            [0x1D, 0x56, 0x00]
        );
        assert_eq!(
            built(|c| {
                c.cut(CutMode::Partial);
            }),
            [0x1D, 0x56, 0x01]
        );
        assert_eq!(
            built(|c| {
                c.cut(CutMode::FeedFull(3));
            }),
            [0x1D, 0x56, 65, 3]
        );
        assert_eq!(
            built(|c| {
                c.cut(CutMode::FeedPartial(0));
            }),
            [0x1D, 0x56, 66, 0]
        );
        // python-escpos cashdraw(2) / cashdraw(5)
        assert_eq!(
            built(|c| {
                c.drawer_kick(DrawerPin::Pin2, 100, 100);
            }),
            [0x1B, 0x70, 0x00, 0x32, 0x32]
        );
        assert_eq!(
            built(|c| {
                c.drawer_kick(DrawerPin::Pin5, 100, 100);
            }),
            [0x1B, 0x70, 0x01, 0x32, 0x32]
        );
        assert_eq!(status_request(StatusKind::Paper), [0x10, 0x04, 0x04]);
        assert_eq!(
            built(|c| {
                c.size(2, 2);
            }),
            [0x1D, 0x21, 0x11]
        );
        assert_eq!(
            built(|c| {
                c.size(3, 2);
            }),
            [0x1D, 0x21, 0x21]
        );
        assert_eq!(
            built(|c| {
                c.align(Align::Center).bold(true);
            }),
            [0x1B, 0x61, 1, 0x1B, 0x45, 1]
        );
    }
}
