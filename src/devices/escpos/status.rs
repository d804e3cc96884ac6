//! Real-time status (DLE EOT n) decoding. Pure: bytes in, [`PrinterStatus`] out.
//!
//! Every reply byte has fixed bits (bit0 = 0, bit1 = 1, bit4 = 1, bit7 = 0);
//! they tell a status reply from noise or an unsolicited ASB frame.

/// Whether `b` can be a DLE EOT reply: `(b & 0x93) == 0x12`.
pub fn is_status_byte(b: u8) -> bool {
    b & 0x93 == 0x12
}

/// The roll paper sensor (DLE EOT 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Paper {
    Ok,
    NearEnd,
    Out,
}

/// What the printer said about itself, decoded from DLE EOT 1, 2, 3 (optional) and 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PrinterStatus {
    /// DLE EOT 1 bit 3 clear.
    pub online: bool,
    /// DLE EOT 2 bit 2.
    pub cover_open: bool,
    pub paper: Paper,
    /// DLE EOT 1 bit 2: the drawer-kick connector pin 3 level. Whether HIGH
    /// means "drawer open" depends on the drawer.
    pub drawer_pin_high: bool,
    /// DLE EOT 2 bit 6: an error occurred.
    pub error: bool,
    /// DLE EOT 3 bit 6: an auto-recoverable error (e.g. head overheat).
    pub recoverable_error: bool,
    /// DLE EOT 3 bit 5.
    pub unrecoverable_error: bool,
    /// DLE EOT 3 bit 3.
    pub cutter_error: bool,
    /// DLE EOT 2 bit 5: printing stopped by paper end.
    pub stopped_by_paper_end: bool,
    /// DLE EOT 1 bit 6 / DLE EOT 2 bit 3.
    pub feed_button: bool,
    /// The raw bytes for n = 1, 2, 3, 4 (n = 3 absent when not asked).
    pub raw: [Option<u8>; 4],
}

impl PrinterStatus {
    /// What is assumed of a printer that cannot report (a unidirectional
    /// USB printer): online, paper present; `raw` is all `None`.
    pub fn not_reported() -> PrinterStatus {
        PrinterStatus {
            online: true,
            cover_open: false,
            paper: Paper::Ok,
            drawer_pin_high: false,
            error: false,
            recoverable_error: false,
            unrecoverable_error: false,
            cutter_error: false,
            stopped_by_paper_end: false,
            feed_button: false,
            raw: [None; 4],
        }
    }

    /// False for [`PrinterStatus::not_reported`].
    pub fn reported(&self) -> bool {
        self.raw.iter().any(Option::is_some)
    }
}

/// A reply byte whose fixed bits are wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DLE EOT {n} reply {byte:#04x} lacks the fixed bits (byte & 0x93 must be 0x12)")]
pub struct BadStatusByte {
    pub n: u8,
    pub byte: u8,
}

impl PrinterStatus {
    /// Decodes the replies to DLE EOT 1, 2, 3 (if asked) and 4.
    pub fn decode(
        printer: u8,
        offline: u8,
        error: Option<u8>,
        paper: u8,
    ) -> Result<PrinterStatus, BadStatusByte> {
        for (n, byte) in [
            (1, Some(printer)),
            (2, Some(offline)),
            (3, error),
            (4, Some(paper)),
        ] {
            if let Some(byte) = byte
                && !is_status_byte(byte)
            {
                return Err(BadStatusByte { n, byte });
            }
        }
        let bit = |b: u8, i: u8| b & (1 << i) != 0;
        let e = error.unwrap_or(0x12);
        // Paper end wins over near end: 0x7E has both (spec §7).
        let paper_state = if paper & 0x60 != 0 {
            Paper::Out
        } else if paper & 0x0C != 0 {
            Paper::NearEnd
        } else {
            Paper::Ok
        };
        Ok(PrinterStatus {
            online: !bit(printer, 3),
            cover_open: bit(offline, 2),
            paper: paper_state,
            drawer_pin_high: bit(printer, 2),
            error: bit(offline, 6),
            recoverable_error: bit(e, 6),
            unrecoverable_error: bit(e, 5),
            cutter_error: bit(e, 3),
            stopped_by_paper_end: bit(offline, 5),
            feed_button: bit(printer, 6) || bit(offline, 3),
            raw: [Some(printer), Some(offline), error, Some(paper)],
        })
    }

    /// Why nothing should be printed now, most specific cause first; `None`
    /// when the printer is ready. Paper near end is not a problem.
    pub fn problem(&self) -> Option<&'static str> {
        if self.cover_open {
            Some("cover open")
        } else if self.paper == Paper::Out || self.stopped_by_paper_end {
            Some("paper out")
        } else if self.cutter_error {
            Some("cutter error")
        } else if self.unrecoverable_error {
            Some("unrecoverable error")
        } else if self.recoverable_error {
            Some("recoverable error (e.g. head overheat)")
        } else if self.error {
            Some("error")
        } else if !self.online {
            Some("offline")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_all_0x12() {
        let s = PrinterStatus::decode(0x12, 0x12, Some(0x12), 0x12).unwrap();
        assert!(s.online && !s.cover_open && !s.drawer_pin_high && !s.error);
        assert_eq!(s.paper, Paper::Ok);
        assert_eq!(s.problem(), None);
    }

    #[test]
    fn paper_out_as_the_spec_shows_it() {
        let s = PrinterStatus::decode(0x1A, 0x32, None, 0x72).unwrap();
        assert!(!s.online);
        assert_eq!(s.paper, Paper::Out);
        assert_eq!(s.problem(), Some("paper out"));
        let s = PrinterStatus::decode(0x1A, 0x32, None, 0x7E).unwrap();
        assert_eq!(s.paper, Paper::Out);
    }

    #[test]
    fn near_end_cover_drawer_and_cutter() {
        let s = PrinterStatus::decode(0x16, 0x12, None, 0x1E).unwrap();
        assert_eq!(s.paper, Paper::NearEnd);
        assert!(s.drawer_pin_high && s.online);
        assert_eq!(s.problem(), None, "near end still prints");

        let s = PrinterStatus::decode(0x1A, 0x16, None, 0x12).unwrap();
        assert!(s.cover_open && !s.online);
        assert_eq!(s.problem(), Some("cover open"));

        let s = PrinterStatus::decode(0x1A, 0x52, Some(0x1A), 0x12).unwrap();
        assert!(s.cutter_error && s.error);
        assert_eq!(s.problem(), Some("cutter error"));

        let s = PrinterStatus::decode(0x1A, 0x12, None, 0x12).unwrap();
        assert_eq!(s.problem(), Some("offline"));
    }

    #[test]
    fn wrong_fixed_bits_are_refused() {
        assert!(is_status_byte(0x12) && is_status_byte(0x7E) && is_status_byte(0x1A));
        // 0x00, an ASB-like 0x14, 0xFF, and a byte with bit 7 set.
        for b in [0x00, 0x14, 0xFF, 0x92] {
            assert!(!is_status_byte(b), "{b:#x}");
        }
        assert_eq!(
            PrinterStatus::decode(0x12, 0x12, Some(0x00), 0x12),
            Err(BadStatusByte { n: 3, byte: 0 })
        );
    }
}
