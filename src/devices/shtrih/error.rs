//! The register's error codes and what they mean, in English, and the
//! driver's error type.

/// The English meaning of a device error code. On FN models (every register
/// fiscald drives) codes 0x01–0x20 are fiscal-drive (FN) errors.
pub fn error_message(code: u8) -> &'static str {
    ERRORS.iter().find(|(c, _)| *c == code).map_or(
        "unknown error code (see the Shtrih-M protocol manual)",
        |(_, m)| m,
    )
}

/// `(code, meaning)`: the protocol note §7 and pyshtrih's FN table.
pub const ERRORS: &[(u8, &str)] = &[
    (0x00, "no error"),
    (
        0x01,
        "FN: unknown command, bad format or unknown parameters",
    ),
    (0x02, "FN: wrong fiscal drive state for this command"),
    (0x03, "FN: fiscal drive failure"),
    (0x04, "FN: crypto coprocessor failure"),
    (0x05, "FN: fiscal drive has expired"),
    (0x06, "FN: fiscal drive archive is full"),
    (0x07, "FN: wrong date or time"),
    (0x08, "FN: no such data"),
    (0x09, "FN: bad parameter value"),
    (0x10, "FN: TLV data too large"),
    (0x11, "FN: no transport connection to the OFD"),
    (0x12, "FN: crypto coprocessor resource exhausted"),
    (0x14, "FN: storage resource exhausted"),
    (0x15, "FN: message-waiting resource exhausted"),
    (
        0x16,
        "FN: shift has lasted more than 24 hours; close it (Z report)",
    ),
    (0x17, "FN: wrong time difference between two operations"),
    (0x20, "FN: the OFD message cannot be accepted"),
    (0x33, "bad command parameters"),
    (0x34, "no data"),
    (0x35, "bad parameter for the current settings"),
    (0x36, "bad command parameters for this model"),
    (0x37, "command not supported by this device"),
    (0x3D, "shift is not open; open a shift first"),
    (0x45, "payments are less than the receipt total"),
    (0x46, "not enough cash in the register"),
    (0x48, "receipt total overflow"),
    (0x49, "operation not allowed in this check type"),
    (0x4A, "a check is open; close or cancel it first"),
    (0x4B, "check buffer is full"),
    (0x4D, "non-cash payments exceed the receipt total"),
    (
        0x4E,
        "shift has lasted more than 24 hours; close it (Z report)",
    ),
    (0x4F, "wrong password"),
    (0x50, "still printing the previous command"),
    (0x55, "no check is open"),
    (0x58, "waiting for the continue-print command"),
    (0x5E, "invalid operation"),
    (0x5F, "negative receipt total"),
    (0x61, "price out of range"),
    (0x62, "quantity out of range"),
    (0x63, "department out of range"),
    (0x6B, "no receipt paper; load paper"),
    (0x71, "cutter error"),
    (0x72, "command not allowed in this submode"),
    (0x73, "command not allowed in this mode"),
    (0x7E, "bad length field"),
    (0x8E, "zero receipt total"),
    (0x8F, "register is not fiscalized"),
    (0xC0, "date and time must be confirmed"),
];

/// Why a command to the register failed.
#[derive(Debug, thiserror::Error)]
pub enum ShtrihError {
    /// The link failed: no answer, timeouts, too many NAKs or bad frames. The
    /// command may or may not have executed; ask the register (`status`,
    /// `last_receipt`) before repeating anything fiscal.
    #[error("no link to the register: {0}")]
    Link(String),
    /// The port went away (cable or USB adapter pulled, device powered off):
    /// reopen the port. The command may or may not have executed.
    #[error("register hung up: {0}")]
    Hangup(String),
    /// The register executed nothing and answered with an error code.
    #[error("register refused command 0x{command:02X}: {message} (error 0x{code:02X})")]
    Device {
        command: u16,
        code: u8,
        message: &'static str,
    },
    /// The fiscal drive refused a marking code (FF61): nothing was registered.
    #[error("the register refused the marking code: {0}")]
    MarkingRefused(String),
    /// The register answered something this driver cannot read.
    #[error("unexpected reply from the register: {0}")]
    Protocol(String),
    /// The receipt cannot be expressed in the register's commands; found
    /// before a byte was sent, so nothing was registered. Retrying cannot
    /// help: an operator must see it.
    #[error("the receipt cannot be registered: {0}")]
    Plan(#[from] super::plan::PlanError),
}

impl ShtrihError {
    pub fn is_hangup(&self) -> bool {
        matches!(self, ShtrihError::Hangup(_))
    }

    pub fn is_link(&self) -> bool {
        matches!(self, ShtrihError::Link(_))
    }

    /// A device error with the standard message for `code`.
    pub fn device(command: u16, code: u8) -> ShtrihError {
        ShtrihError::Device {
            command,
            code,
            message: error_message(code),
        }
    }

    /// The device error code, if the register answered with one.
    pub fn device_code(&self) -> Option<u8> {
        match self {
            ShtrihError::Device { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_known_ones_have_meanings() {
        let mut codes: Vec<u8> = ERRORS.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ERRORS.len());
        assert_eq!(error_message(0x6B), "no receipt paper; load paper");
        assert!(error_message(0xEE).starts_with("unknown"));
        let e = ShtrihError::device(0x80, 0x3D);
        assert_eq!(
            e.to_string(),
            "register refused command 0x80: shift is not open; open a shift first (error 0x3D)"
        );
    }
}
