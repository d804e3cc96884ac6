//! **Every assumption** the Shtrih-M code makes where the protocol note is
//! silent or marked [?], in one place. The driver, the receipt planner and
//! the emulator all read these; change a register's programming here.

use crate::domain::receipt::{PaymentKind, TaxSystem, Vat};

/// The FF46 tax code of a VAT rate: a bit code, not a group number.
/// Source: the vendor driver shtrih-m/javapos_shtrih, HEAD af0a237b (Feb
/// 2026), `jpos/FiscalPrinterImpl.java` `getVatCodeShtrih` and
/// `Doc/VatTable.txt` (`shared/spec/shtrih-m-ffd12.md` §1.1): 20 % 0x01,
/// 10 % 0x02, 0 % 0x04, no VAT 0x08, 20/120 0x10, 10/110 0x20, 5 % 0x81,
/// 7 % 0x82, 5/105 0x84, 7/107 0x88, 22 % 0xCB, 22/122 0xCC.
///
/// ASSUMED where the sources disagree or are silent ([?] in the note):
/// - 7/107 is 0x88 (the newest J code) and not 0x90 (`VatTable.txt`);
/// - 22 % and 22/122 are 0xCB/0xCC (J's "0xC0 + id" for the Shtrih family;
///   a ШТРИХ-НАНО-Ф would need 0x90/0xA0);
/// - 0x01 still means 20 % in 2026 firmware (it is how a 2026 return of a
///   2025 sale at 20 % is registered).
///
/// 12 % (Uzbekistan) has no code: such a receipt is refused before sending.
pub fn tax_code(vat: Vat) -> Option<u8> {
    Some(match vat {
        Vat::Vat20 => 0x01,
        Vat::Vat10 => 0x02,
        Vat::Vat0 => 0x04,
        Vat::None => 0x08,
        Vat::Vat120 => 0x10,
        Vat::Vat110 => 0x20,
        Vat::Vat5 => 0x81,
        Vat::Vat7 => 0x82,
        Vat::Vat105 => 0x84,
        Vat::Vat107 => 0x88,
        Vat::Vat22 => 0xCB,
        Vat::Vat122 => 0xCC,
        Vat::Vat12 => return None,
    })
}

/// The VAT rate an FF46 tax code stands for (the emulator's side of
/// [`tax_code`]).
pub fn vat_of_tax_code(code: u8) -> Option<Vat> {
    crate::domain::receipt::Vat::ALL
        .iter()
        .copied()
        .find(|&v| tax_code(v) == Some(code))
}

/// The FF45 payment field (0-based) of a payment kind. Source: J
/// `command/FSCloseReceipt.java` class comment and the vendor protocol
/// («Протокол ККТ» v1.17 p. 52; `shared/spec/shtrih-m-ffd12.md` §2): field 1
/// cash (tag 1031), fields 2–13 summed as electronic (1081), 14 prepayment
/// offset (1215), 15 credit / postpayment (1216), 16 counter-provision (1217).
pub fn payment_field(kind: PaymentKind) -> usize {
    match kind {
        PaymentKind::Cash => 0,
        PaymentKind::Electronic => 1,
        PaymentKind::Prepaid => 13,
        PaymentKind::Credit => 14,
        PaymentKind::Other => 15,
    }
}

/// The FF45 tax-system byte: the tag 1055 bit (J, [D]; note §2): bit 0 ОСН,
/// 1 УСН доход, 2 УСН доход − расход, 3 ЕНВД, 4 ЕСХН, 5 ПСН.
pub fn tax_system_bit(t: TaxSystem) -> u8 {
    match t {
        TaxSystem::Common => 0x01,
        TaxSystem::Simplified => 0x02,
        TaxSystem::SimplifiedWithExpense => 0x04,
        TaxSystem::Envd => 0x08,
        TaxSystem::CommonAgricultural => 0x10,
        TaxSystem::Patent => 0x20,
    }
}

/// ASSUMED: the cashier's name goes as tag 1021 in an FF0C before the items,
/// as other FFD 1.2 drivers send it. The vendor driver instead writes it into
/// table 2 field 2 of the current operator and the firmware is inferred to
/// build 1021 from it ([?] in the note §3.4).
pub const CASHIER_AS_TLV: bool = true;

/// The legacy text field of 0x17, 0x80–0x85. The vendor manual says 40
/// bytes; pyshtrih pads to the model's print width (48 on М-01Ф), so the
/// emulator accepts any length and the driver sends 40.
pub const TEXT_FIELD_BYTES: usize = 40;

/// The KKT registration number (tag 1037): the fiscal-storage table, row 1,
/// field 3, as the vendor driver reads it (J `SMFiscalPrinterImpl.readRnm`,
/// `getFsTableNumber`: table 18; 14 on ШТРИХ-MOBILE-Ф; note §6). A CHAR field:
/// CP1251, trailing NULs and spaces trimmed.
pub const RNM_TABLE: u8 = 18;
pub const RNM_ROW: u16 = 1;
pub const RNM_FIELD: u8 = 3;

/// ASSUMED: when table 18 cannot be read (an older firmware answers an
/// error), the registration number falls back to the factory serial,
/// zero-padded to 16 digits, and a warning is logged.
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

/// ASSUMED: the error code a register answers when the fiscal drive refuses
/// new documents because the oldest one not confirmed by the OFD is more than
/// 30 days old. Sources disagree: shtrih-m/fr_drv_ng#44 reports error 20
/// (0x14, «Исчерпан ресурс хранения», "30 дней"); the FN protocol also names
/// 0x15 («Исчерпан ресурс ожидания передачи сообщения»). The emulator answers
/// 0x14; the driver reads both as the OFD block (`devices::manager`).
pub const FN_OFD_WAIT_EXHAUSTED: u8 = 0x14;
pub const FN_OFD_WAIT_EXHAUSTED_ALT: u8 = 0x15;
/// FN error 0x17: the register clock and the drive's timer differ too much
/// (more than 5 min per the sigmarnd page in the spec note, part B).
pub const FN_CLOCK_DIFFERENCE: u8 = 0x17;

/// ASSUMED (emulator): a fresh emulated drive lasts 470 days (the nominal
/// 15-month drive, spec note part B, portkkm.ru).
pub const EMULATED_FN_LIFE_DAYS: i64 = 470;

/// ASSUMED (the emulator only): how many sale notifications for marked
/// goods the emulated drive's notification area holds. FF70 reports only
/// the fill in steps (under 50 %, 50–80 %, 80–90 %, over 90 %) and the
/// queue; the real capacity is the drive's and was not found in the public
/// documents. At a full area the emulated drive reports marking work as
/// blocked (FF70 check state 0).
pub const EMULATED_MC_NOTIFICATION_AREA: u32 = 1_000;

/// ASSUMED: the drive stops on the first day after the FF03 date (the date is
/// its last valid day). The deadline model counts to that midnight, in the
/// register's local time.
pub const FN_EXPIRY_DATE_IS_LAST_VALID_DAY: bool = true;
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
