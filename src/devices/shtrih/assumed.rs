//! **Every assumption** the Shtrih-M code makes where the protocol note is
//! silent or marked [?], in one place. The driver, the receipt planner and
//! the emulator all read these; change a register's programming here.

use crate::domain::receipt::{PaymentKind, Vat};

/// ASSUMED: the register's tax table (table 6) is programmed as service
/// engineers set it for 2026, when the general VAT rate became 22 %:
/// 1 = VAT 22 %, 2 = VAT 10 %, 3 = VAT 0 %, 4 = no VAT (the factory table had
/// 20 % in group 1). Command 0x80 can name only groups 1–4, so any other rate
/// (20 % of receipts before 2026, 5 %, 7 %, the calculated rates) is refused
/// until the table is reprogrammed and this map follows.
pub fn tax_group(vat: Vat) -> Option<u8> {
    match vat {
        Vat::Vat22 => Some(1),
        Vat::Vat10 => Some(2),
        Vat::Vat0 => Some(3),
        Vat::None => Some(4),
        _ => None,
    }
}

/// ASSUMED: the four payment slots of command 0x85 carry, in order, cash
/// (slot 1, fixed by the protocol), electronic (slot 2, "card" in the
/// factory table), prepaid/advance (slot 3) and credit (slot 4). "Other" has
/// no slot: such a receipt is refused rather than booked as something else.
pub fn payment_slot(kind: PaymentKind) -> Option<usize> {
    match kind {
        PaymentKind::Cash => Some(0),
        PaymentKind::Electronic => Some(1),
        PaymentKind::Prepaid => Some(2),
        PaymentKind::Credit => Some(3),
        PaymentKind::Other => None,
    }
}

/// ASSUMED: the text field of item and close commands. The vendor manual
/// says 40 bytes; pyshtrih pads to the model's print width (48 on М-01Ф),
/// so the emulator accepts any length and the driver sends 40.
pub const TEXT_FIELD_BYTES: usize = 40;

/// ASSUMED: the KKT registration number (tag 1037) is not read from the
/// register (it lives in table 18, which the driver does not read yet); it
/// is derived from the factory serial, zero-padded to 16 digits.
pub fn kkt_reg_id(serial: &str) -> String {
    format!("{serial:0>16}")
}

/// ASSUMED: 0xFF40 "receipt number" is the number, within the current shift,
/// of the last receipt closed (0 before the first one). The driver reads it
/// straight after closing a receipt to fill tag 1042.
pub const SHIFT_PARAMS_RECEIPT_IS_LAST_CLOSED: bool = true;

/// ASSUMED (emulator): the name the emulated register reports in 0xFC. It
/// must contain "М-01Ф" (Cyrillic М) for pyshtrih's `discovery()` to pick
/// `ShtrihM01F`.
pub const EMULATED_MODEL_NAME: &str = "ШТРИХ-М-01Ф";
/// ASSUMED (emulator): the model number in 0xFC. pyshtrih special-cases the
/// flag layout of models 4, 9 and 12 only; any other number gets all flags.
pub const EMULATED_MODEL_NUMBER: u8 = 19;

/// ASSUMED (emulator): opening a shift that is already open answers FN error
/// 0x02 (wrong FN state); a sale with the shift closed answers 0x3D rather
/// than opening the shift automatically ([?] in the note).
pub const SHIFT_ALREADY_OPEN: u8 = 0x02;
pub const SHIFT_NOT_OPEN: u8 = 0x3D;

/// ASSUMED ([?] in the note): the reply to 0xE0 (open shift) carries the
/// operator number after ERR, like other commands; pyshtrih reads ERR only.
pub const OPEN_SHIFT_REPLY_HAS_OPERATOR: bool = true;

/// ASSUMED: every line is booked to department (section) 1.
pub const DEPARTMENT: u8 = 1;

/// ASSUMED ([?] in shtrih-m-ffd12.md §3.4): an item's tag 1260 goes to the
/// register as one STLV 1260 {1262, 1263, 1264, 1265} via FF4D after the
/// item, as FFD 1.2 structures it; the vendor's own test sends 1262–1265 as
/// separate FF4D tags with no wrapper.
pub const INDUSTRY_REQUISITE_AS_STLV: bool = true;

/// ASSUMED ([?] in shtrih-m-ffd12.md §5): under FFD 1.2 a correction is
/// `0x8D 0x80|type`, then tag 1173 and STLV 1174 {1178, 1179} via FF0C (the
/// vendor driver never builds them: the application must), the items, and
/// the usual close.
pub const CORRECTION_TAGS_VIA_FF0C: bool = true;
