//! Commands and replies: the byte layouts of every command fiscald uses, as
//! encoders and decoders in both directions (the driver encodes requests and
//! decodes replies; the emulator decodes requests and encodes replies). Pure.

use super::assumed::TEXT_FIELD_BYTES;
use super::frame::Frame;
use chrono::{NaiveDate, NaiveDateTime};

pub const SHORT_STATUS: u16 = 0x10;
pub const FULL_STATUS: u16 = 0x11;
pub const BEEP: u16 = 0x13;
pub const PRINT_LINE: u16 = 0x17;
pub const CUT: u16 = 0x25;
pub const OPEN_DRAWER: u16 = 0x28;
pub const X_REPORT: u16 = 0x40;
pub const Z_REPORT: u16 = 0x41;
pub const CASH_IN: u16 = 0x50;
pub const CASH_OUT: u16 = 0x51;
pub const SALE: u16 = 0x80;
pub const PURCHASE: u16 = 0x81;
pub const RETURN_SALE: u16 = 0x82;
pub const RETURN_PURCHASE: u16 = 0x83;
pub const CLOSE_CHECK: u16 = 0x85;
pub const CANCEL_CHECK: u16 = 0x88;
pub const OPEN_CHECK: u16 = 0x8D;
pub const CONTINUE_PRINT: u16 = 0xB0;
pub const OPEN_SHIFT: u16 = 0xE0;
pub const DEVICE_TYPE: u16 = 0xFC;
pub const FN_STATUS: u16 = 0xFF01;
pub const FIND_DOCUMENT: u16 = 0xFF0A;
pub const SHIFT_PARAMS: u16 = 0xFF40;
/// «Запрос срока действия ФН» (J `command/FSReadExpDate.java`).
pub const FN_EXPIRY: u16 = 0xFF03;
/// «Получить статус информационного обмена» (J `command/FSReadCommStatus.java`).
pub const OFD_STATUS: u16 = 0xFF39;
/// «Запрос ресурса свободной памяти в ФН» (J `command/FSReadMemorySize.java`).
pub const FN_MEMORY: u16 = 0xFF63;
/// «Запрос статуса по работе с кодами маркировки» (J `command/FSReadMCStatus.java`).
pub const MC_STATUS: u16 = 0xFF70;
/// 0x1A «Запрос денежного регистра» (javapos_shtrih `cmd/ReadCashRegister.java`):
/// request password (4) + register number (1); reply operator (1) + value (6).
pub const MONEY_REGISTER: u16 = 0x1A;
/// 0x1B «Запрос операционного регистра» (`cmd/ReadOperationRegister.java`):
/// request password (4) + register number (1); reply operator (1) + value u16.
pub const OPERATION_REGISTER: u16 = 0x1B;
/// FF61 «Проверка маркированного товара» (`cmd/FSCheckMC.java`).
pub const CHECK_MARKING: u16 = 0xFF61;
/// FF67 «Привязка маркированного товара к позиции» (`cmd/FSBindMC.java`).
pub const BIND_MARKING: u16 = 0xFF67;
/// FF69 «Принять или отвергнуть КМ» (`cmd/FSAcceptMC.java`).
pub const ACCEPT_MARKING: u16 = 0xFF69;

/// Money registers (0x1A), numbered as in javapos_shtrih `cmd/CashRegister.java`.
pub mod money_register {
    /// 0xF1 «Накопление наличности в кассе».
    pub const CASH_IN_DRAWER: u8 = 241;
    /// 0xF2 «Накопление внесений за смену».
    pub const CASH_IN_SHIFT: u8 = 242;
    /// 0xF3 «Накопление выплат за смену».
    pub const CASH_OUT_SHIFT: u8 = 243;
}

/// Operation registers (0x1B), numbered as in javapos_shtrih
/// `cmd/OperationRegister.java` (index into its name table).
pub mod operation_register {
    /// 153 «Количество внесений денежных сумм за смену».
    pub const CASH_INS_IN_SHIFT: u8 = 153;
    /// 154 «Количество выплат денежных сумм за смену».
    pub const CASH_OUTS_IN_SHIFT: u8 = 154;
}
pub const READ_TABLE: u16 = 0x1F;
pub const WRITE_TLV: u16 = 0xFF0C;
pub const CLOSE_CHECK_V2: u16 = 0xFF45;
pub const OPERATION_V2: u16 = 0xFF46;
pub const WRITE_OPERATION_TLV: u16 = 0xFF4D;

/// `FF×5` in a 5-byte amount field of FF46: "not given, the device computes it".
pub const AMOUNT_NOT_GIVEN: u64 = 0xFF_FFFF_FFFF;
/// FF46's name field: at most 128 bytes, not padded.
pub const ITEM_V2_NAME_BYTES: usize = 128;

/// Largest 5-byte amount the register takes (kopecks or thousandths).
pub const MAX_U40: u64 = 9_999_999_999;

/// The check type of 0x8D (and the high nibble of mode 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckType {
    Sale = 0,
    Purchase = 1,
    ReturnSale = 2,
    ReturnPurchase = 3,
}

impl CheckType {
    pub fn from_u8(b: u8) -> Option<CheckType> {
        Some(match b {
            0 => CheckType::Sale,
            1 => CheckType::Purchase,
            2 => CheckType::ReturnSale,
            3 => CheckType::ReturnPurchase,
            _ => return None,
        })
    }

    /// The item command registering a line in a check of this type.
    pub fn item_command(self) -> u16 {
        SALE + self as u16
    }

    /// FF0A operation type: 1 income, 2 return of income, 3 expense, 4 return of expense.
    pub fn operation(self) -> u8 {
        match self {
            CheckType::Sale => 1,
            CheckType::ReturnSale => 2,
            CheckType::Purchase => 3,
            CheckType::ReturnPurchase => 4,
        }
    }
}

/// One line: 0x80–0x83.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemOp {
    /// Thousandths.
    pub quantity: u64,
    /// Kopecks per unit.
    pub price: u64,
    pub department: u8,
    /// Tax groups (0 none, 1–4).
    pub taxes: [u8; 4],
    pub text: String,
}

impl ItemOp {
    /// The sum the register books for the line: qty·price/1000, rounded half up.
    pub fn sum(&self) -> u64 {
        let exact = u128::from(self.quantity) * u128::from(self.price);
        u64::try_from((exact + 500) / 1000).unwrap_or(u64::MAX)
    }
}

/// 0x85: four payment slots (slot 1 is cash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseCheck {
    pub payments: [u64; 4],
    /// 0.01 % units; negative is a surcharge.
    pub discount: i16,
    pub taxes: [u8; 4],
    pub text: String,
}

/// 0xFF46 «Операция V2»: one line with its FFD 1.2 attributes. Layout from
/// the vendor driver (shtrih-m/javapos_shtrih `command/FSPrintRecItem.java`,
/// `SMFiscalPrinterImpl.fsPrintRecItem2`; `shared/spec/shtrih-m-ffd12.md`
/// §1): password (4), operation (1), quantity ×10⁶ (6), price (5), amount
/// (5, `FF×5` = computed), tax amount (5), tax code (1, a bit code: see
/// `assumed::tax_code`), department (1), tag 1214 (1), tag 1212 (1), name
/// (CP1251, 0–128 bytes, no padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemV2 {
    /// 1 приход, 2 возврат прихода, 3 расход, 4 возврат расхода.
    pub operation: u8,
    /// Millionths of a unit.
    pub quantity: u64,
    /// Kopecks per unit.
    pub price: u64,
    /// Kopecks, or [`AMOUNT_NOT_GIVEN`].
    pub amount: u64,
    /// Kopecks; J sends 0 when the POS gives none (the device computes it in
    /// tax mode 0).
    pub tax_amount: u64,
    pub tax_code: u8,
    pub department: u8,
    /// Tag 1214.
    pub calculation_method: u8,
    /// Tag 1212.
    pub payment_subject: u8,
    pub name: String,
}

impl ItemV2 {
    /// What the line books: the given amount, else price × quantity rounded
    /// half up.
    pub fn sum(&self) -> u64 {
        if self.amount == AMOUNT_NOT_GIVEN {
            self.computed()
        } else {
            self.amount
        }
    }

    /// Price × quantity, rounded half up to the kopeck.
    pub fn computed(&self) -> u64 {
        let exact = u128::from(self.quantity) * u128::from(self.price);
        u64::try_from((exact + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// 0xFF45 «Закрытие чека расширенное вариант №2» (J
/// `command/FSCloseReceipt.java`; `shared/spec/shtrih-m-ffd12.md` §2):
/// password (4), 16 payment sums (5 each: 1 cash, 2–13 electronic, 14
/// prepayment offset, 15 credit, 16 counter-provision), rounding (1), six tax
/// sums (5 each), tax system (1, tag 1055 bit), text (CP1251, unpadded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseV2 {
    pub payments: [u64; 16],
    /// Kopecks, 0–99.
    pub rounding: u8,
    pub taxes: [u64; 6],
    pub tax_system: u8,
    pub text: String,
}

/// The reply to 0xFF45: change (5), FD (4), fiscal sign (4), optionally the
/// document's date-time (5) (J `FSCloseReceipt.decode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseV2Reply {
    pub change: u64,
    pub fd: u32,
    pub fiscal_sign: u32,
    pub date_time: Option<NaiveDateTime>,
}

impl CloseV2Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(18);
        put_u40(&mut p, self.change);
        p.extend_from_slice(&self.fd.to_le_bytes());
        p.extend_from_slice(&self.fiscal_sign.to_le_bytes());
        if let Some(t) = self.date_time {
            put_dt5(&mut p, t);
        }
        p
    }

    pub fn decode(p: &[u8]) -> Result<CloseV2Reply, ReplyError> {
        if p.len() < 13 {
            return Err(short(CLOSE_CHECK_V2, 13, p.len()));
        }
        Ok(CloseV2Reply {
            change: get_u40(&p[0..5]),
            fd: u32::from_le_bytes([p[5], p[6], p[7], p[8]]),
            fiscal_sign: u32::from_le_bytes([p[9], p[10], p[11], p[12]]),
            date_time: p.get(13..18).and_then(get_dt5),
        })
    }
}

/// Every command fiscald sends, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    ShortStatus,
    FullStatus,
    Beep,
    PrintLine {
        journal: bool,
        receipt: bool,
        text: String,
    },
    Cut {
        partial: bool,
    },
    OpenDrawer {
        drawer: u8,
    },
    XReport,
    ZReport,
    CashIn(u64),
    CashOut(u64),
    /// 0x80–0x83, by check type.
    Item(CheckType, ItemOp),
    CloseCheck(CloseCheck),
    CancelCheck,
    OpenCheck(CheckType),
    ContinuePrint,
    OpenShift,
    DeviceType,
    FnStatus,
    FindDocument(u32),
    ShiftParams,
    /// 0xFF03: the drive's expiry date and re-registrations ([`FnExpiry`]).
    FnExpiry,
    /// 0xFF39: the OFD exchange status ([`OfdStatus`]).
    OfdStatus,
    /// 0xFF63: the drive's memory resource ([`FnMemory`]).
    FnMemory,
    /// 0xFF70: the drive's marking-code state and its queue of sale
    /// notifications for ОИСМ ([`McStatus`]).
    McStatus,
    /// 0x1F «Чтение таблицы»: table (1), row (u16), field (1) (J
    /// `command/ReadTable.java`). The reply is the raw field, no operator byte.
    ReadTable {
        table: u8,
        row: u16,
        field: u8,
    },
    ItemV2(ItemV2),
    CloseV2(CloseV2),
    /// 0xFF0C: one receipt-level TLV (J `command/FSWriteTLV.java`).
    WriteTlv(Vec<u8>),
    /// 0xFF4D: one TLV bound to the last item (J
    /// `command/FSWriteOperationTLV.java`).
    WriteOperationTlv(Vec<u8>),
    /// 0x8D with `0x80 | type`: a correction check under FFD 1.2
    /// (javapos_shtrih `SMFP_RECTYPE_CORRECTION_*`; shtrih-m-ffd12.md §5).
    OpenCorrection(CheckType),
    MoneyRegister(u8),
    OperationRegister(u8),
    CheckMarking(CheckMarking),
    /// FF69: 0 reject, 1 accept, 2 clear the buffer.
    AcceptMarking(u8),
    /// FF67: the code as scanned.
    BindMarking(Vec<u8>),
}

/// FF61 request after the password ([J] `FSCheckMC.encode`): planned status
/// (tag 2003), processing mode (tag 2102), code length, TLV length, code, TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckMarking {
    /// Tag 2003: 1 piece sold, 2 measured sold, 3 piece returned, 4 measured returned.
    pub planned_status: u8,
    pub mode: u8,
    pub code: Vec<u8>,
    pub tlv: Vec<u8>,
}

/// FF61 reply after the error byte ([J] `FSCheckMC.decode`, [D] p.58).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkingCheckReply {
    /// Tag 2004 bits: b0 checked by the FN, b1 the FN's result positive.
    pub local_status: u8,
    /// Why not checked locally: 0 checked, 1 type not checkable, 2 no key,
    /// 3 GS1 AI 91/92 missing or bad, 4 other.
    pub local_reason: u8,
    /// Tag 2100.
    pub code_type: u8,
    /// Byte 4 when present: the FN's answer to the online step (0xFF none).
    pub server: Option<(u8, u8)>,
}

impl MarkingCheckReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![self.local_status, self.local_reason, self.code_type];
        match self.server {
            None => p.push(0),
            Some((a, b)) => p.extend_from_slice(&[2, a, b]),
        }
        p
    }

    pub fn decode(p: &[u8]) -> Result<MarkingCheckReply, ReplyError> {
        if p.len() < 4 {
            return Err(short(CHECK_MARKING, 6, p.len() + 2));
        }
        let server = (p[3] >= 2 && p.len() >= 6).then(|| (p[4], p[5]));
        Ok(MarkingCheckReply {
            local_status: p[0],
            local_reason: p[1],
            code_type: p[2],
            server,
        })
    }

    /// J's refusal rules (`SMFiscalPrinterImpl.checkItemCode`): the FN
    /// checked the code and found it bad, or could not check it for a reason
    /// other than "this type is not checked".
    pub fn refusal(&self) -> Option<String> {
        if self.local_status & 0b01 != 0 && self.local_status & 0b10 == 0 {
            return Some("the fiscal drive found the marking code's signature wrong".into());
        }
        if self.local_status == 0 && (2..=4).contains(&self.local_reason) {
            return Some(format!(
                "the fiscal drive could not check the marking code (reason {}: {})",
                self.local_reason,
                match self.local_reason {
                    2 => "no key for this code",
                    3 => "GS1 AI 91/92 missing or malformed",
                    _ => "other",
                }
            ));
        }
        None
    }
}

/// Why a request could not be decoded (emulator side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("command 0x{0:02X} is not supported")]
    Unsupported(u16),
    #[error("command 0x{0:02X}: data too short")]
    Short(u16),
    #[error("command 0x{0:02X}: bad parameter")]
    BadParameter(u16),
}

impl DecodeError {
    /// The device error code a register answers with.
    pub fn code(&self) -> u8 {
        match self {
            DecodeError::Unsupported(_) => 0x37,
            DecodeError::Short(_) | DecodeError::BadParameter(_) => 0x33,
        }
    }
}

impl Command {
    pub fn code(&self) -> u16 {
        match self {
            Command::ShortStatus => SHORT_STATUS,
            Command::FullStatus => FULL_STATUS,
            Command::Beep => BEEP,
            Command::PrintLine { .. } => PRINT_LINE,
            Command::Cut { .. } => CUT,
            Command::OpenDrawer { .. } => OPEN_DRAWER,
            Command::XReport => X_REPORT,
            Command::ZReport => Z_REPORT,
            Command::CashIn(_) => CASH_IN,
            Command::CashOut(_) => CASH_OUT,
            Command::Item(t, _) => t.item_command(),
            Command::CloseCheck(_) => CLOSE_CHECK,
            Command::CancelCheck => CANCEL_CHECK,
            Command::OpenCheck(_) => OPEN_CHECK,
            Command::ContinuePrint => CONTINUE_PRINT,
            Command::OpenShift => OPEN_SHIFT,
            Command::DeviceType => DEVICE_TYPE,
            Command::FnStatus => FN_STATUS,
            Command::FindDocument(_) => FIND_DOCUMENT,
            Command::ShiftParams => SHIFT_PARAMS,
            Command::FnExpiry => FN_EXPIRY,
            Command::OfdStatus => OFD_STATUS,
            Command::FnMemory => FN_MEMORY,
            Command::McStatus => MC_STATUS,
            Command::ReadTable { .. } => READ_TABLE,
            Command::ItemV2(_) => OPERATION_V2,
            Command::CloseV2(_) => CLOSE_CHECK_V2,
            Command::WriteTlv(_) => WRITE_TLV,
            Command::WriteOperationTlv(_) => WRITE_OPERATION_TLV,
            Command::OpenCorrection(_) => OPEN_CHECK,
            Command::MoneyRegister(_) => MONEY_REGISTER,
            Command::OperationRegister(_) => OPERATION_REGISTER,
            Command::CheckMarking(_) => CHECK_MARKING,
            Command::AcceptMarking(_) => ACCEPT_MARKING,
            Command::BindMarking(_) => BIND_MARKING,
        }
    }

    /// pyshtrih's choice: the administrator password for reports, B0 and
    /// every FFxx command; the cashier's elsewhere. Exceptions from the vendor
    /// driver (`shared/spec/shtrih-m-ffd12.md` §0): FF46 and FF45 go with the
    /// cashier's password (the operator they are booked to), 0x1F with the
    /// administrator's.
    pub fn needs_admin(&self) -> bool {
        match self {
            Command::ItemV2(_) | Command::CloseV2(_) => false,
            Command::XReport
            | Command::ZReport
            | Command::ContinuePrint
            | Command::ReadTable { .. } => true,
            _ => self.code() > 0xFF,
        }
    }

    /// Whether the register prints for this command (pyshtrih waits for
    /// submode 0 before these).
    pub fn prints(&self) -> bool {
        matches!(
            self.code(),
            PRINT_LINE | CUT | X_REPORT | Z_REPORT | CASH_IN | CASH_OUT | CANCEL_CHECK | OPEN_CHECK
        )
    }

    /// The request frame. `password` is the cashier's, `admin` the administrator's.
    pub fn encode(&self, password: u32, admin: u32) -> Frame {
        let mut d = Vec::with_capacity(64);
        if self.code() != DEVICE_TYPE {
            let pw = if self.needs_admin() { admin } else { password };
            d.extend_from_slice(&pw.to_le_bytes());
        }
        match self {
            Command::ShortStatus
            | Command::FullStatus
            | Command::Beep
            | Command::XReport
            | Command::ZReport
            | Command::CancelCheck
            | Command::ContinuePrint
            | Command::OpenShift
            | Command::DeviceType
            | Command::FnStatus
            | Command::ShiftParams
            | Command::FnExpiry
            | Command::OfdStatus
            | Command::FnMemory
            | Command::McStatus => {}
            Command::PrintLine {
                journal,
                receipt,
                text,
            } => {
                d.push(u8::from(*journal) | (u8::from(*receipt) << 1));
                put_text(&mut d, text, TEXT_FIELD_BYTES);
            }
            Command::Cut { partial } => d.push(u8::from(*partial)),
            Command::OpenDrawer { drawer } => d.push(*drawer),
            Command::CashIn(sum) | Command::CashOut(sum) => put_u40(&mut d, *sum),
            Command::Item(_, op) => {
                put_u40(&mut d, op.quantity);
                put_u40(&mut d, op.price);
                d.push(op.department);
                d.extend_from_slice(&op.taxes);
                put_text(&mut d, &op.text, TEXT_FIELD_BYTES);
            }
            Command::CloseCheck(c) => {
                for p in c.payments {
                    put_u40(&mut d, p);
                }
                d.extend_from_slice(&c.discount.to_le_bytes());
                d.extend_from_slice(&c.taxes);
                put_text(&mut d, &c.text, TEXT_FIELD_BYTES);
            }
            Command::OpenCheck(t) => d.push(*t as u8),
            Command::FindDocument(fd) => d.extend_from_slice(&fd.to_le_bytes()),
            Command::ReadTable { table, row, field } => {
                d.push(*table);
                d.extend_from_slice(&row.to_le_bytes());
                d.push(*field);
            }
            Command::ItemV2(op) => {
                d.push(op.operation);
                d.extend_from_slice(&op.quantity.to_le_bytes()[..6]);
                put_u40(&mut d, op.price);
                put_u40(&mut d, op.amount);
                put_u40(&mut d, op.tax_amount);
                d.push(op.tax_code);
                d.push(op.department);
                d.push(op.calculation_method);
                d.push(op.payment_subject);
                let mut name = encode_cp1251(&op.name);
                name.truncate(ITEM_V2_NAME_BYTES);
                d.extend_from_slice(&name);
            }
            Command::CloseV2(c) => {
                for p in c.payments {
                    put_u40(&mut d, p);
                }
                d.push(c.rounding);
                for t in c.taxes {
                    put_u40(&mut d, t);
                }
                d.push(c.tax_system);
                d.extend_from_slice(&encode_cp1251(&c.text));
            }
            Command::WriteTlv(tlv) | Command::WriteOperationTlv(tlv) => d.extend_from_slice(tlv),
            Command::OpenCorrection(t) => d.push(0x80 | *t as u8),
            Command::MoneyRegister(n) | Command::OperationRegister(n) => d.push(*n),
            Command::CheckMarking(c) => {
                d.push(c.planned_status);
                d.push(c.mode);
                d.push(c.code.len() as u8);
                d.push(c.tlv.len() as u8);
                d.extend_from_slice(&c.code);
                d.extend_from_slice(&c.tlv);
            }
            Command::AcceptMarking(action) => d.push(*action),
            Command::BindMarking(code) => {
                d.push(code.len() as u8);
                d.extend_from_slice(code);
            }
        }
        Frame::new(self.code(), d)
    }

    /// Decodes a request frame into the password (0 for FC) and the command.
    /// Text fields may have any length (pyshtrih pads to the print width).
    pub fn decode(frame: &Frame) -> Result<(u32, Command), DecodeError> {
        let code = frame.command;
        if code == DEVICE_TYPE {
            return Ok((0, Command::DeviceType));
        }
        let mut r = Reader::new(&frame.data, code);
        let password = r.u32()?;
        let cmd = match code {
            SHORT_STATUS => Command::ShortStatus,
            FULL_STATUS => Command::FullStatus,
            BEEP => Command::Beep,
            PRINT_LINE => {
                let flags = r.u8()?;
                Command::PrintLine {
                    journal: flags & 1 != 0,
                    receipt: flags & 2 != 0,
                    text: r.text(),
                }
            }
            CUT => Command::Cut {
                partial: r.u8()? != 0,
            },
            OPEN_DRAWER => Command::OpenDrawer { drawer: r.u8()? },
            X_REPORT => Command::XReport,
            Z_REPORT => Command::ZReport,
            CASH_IN => Command::CashIn(r.u40()?),
            CASH_OUT => Command::CashOut(r.u40()?),
            SALE..=RETURN_PURCHASE => {
                let t = CheckType::from_u8((code - SALE) as u8).expect("0..=3");
                let quantity = r.u40()?;
                let price = r.u40()?;
                let department = r.u8()?;
                let taxes = r.array4()?;
                Command::Item(
                    t,
                    ItemOp {
                        quantity,
                        price,
                        department,
                        taxes,
                        text: r.text(),
                    },
                )
            }
            CLOSE_CHECK => {
                let payments = [r.u40()?, r.u40()?, r.u40()?, r.u40()?];
                let discount = r.u16()? as i16;
                let taxes = r.array4()?;
                Command::CloseCheck(CloseCheck {
                    payments,
                    discount,
                    taxes,
                    text: r.text(),
                })
            }
            CANCEL_CHECK => Command::CancelCheck,
            OPEN_CHECK => {
                let t = r.u8()?;
                let ct = CheckType::from_u8(t & 0x7F).ok_or(DecodeError::BadParameter(code))?;
                if t & 0x80 != 0 {
                    Command::OpenCorrection(ct)
                } else {
                    Command::OpenCheck(ct)
                }
            }
            MONEY_REGISTER => Command::MoneyRegister(r.u8()?),
            OPERATION_REGISTER => Command::OperationRegister(r.u8()?),
            CHECK_MARKING => {
                let planned_status = r.u8()?;
                let mode = r.u8()?;
                let code_len = r.u8()? as usize;
                let tlv_len = r.u8()? as usize;
                Command::CheckMarking(CheckMarking {
                    planned_status,
                    mode,
                    code: r.take(code_len)?.to_vec(),
                    tlv: r.take(tlv_len)?.to_vec(),
                })
            }
            ACCEPT_MARKING => Command::AcceptMarking(r.u8()?),
            BIND_MARKING => {
                let n = r.u8()? as usize;
                Command::BindMarking(r.take(n)?.to_vec())
            }
            CONTINUE_PRINT => Command::ContinuePrint,
            OPEN_SHIFT => Command::OpenShift,
            FN_STATUS => Command::FnStatus,
            FIND_DOCUMENT => Command::FindDocument(r.u32()?),
            SHIFT_PARAMS => Command::ShiftParams,
            FN_EXPIRY => Command::FnExpiry,
            OFD_STATUS => Command::OfdStatus,
            FN_MEMORY => Command::FnMemory,
            MC_STATUS => Command::McStatus,
            READ_TABLE => Command::ReadTable {
                table: r.u8()?,
                row: r.u16()?,
                field: r.u8()?,
            },
            OPERATION_V2 => {
                let operation = r.u8()?;
                let q = r.take(6)?;
                let mut qb = [0u8; 8];
                qb[..6].copy_from_slice(q);
                Command::ItemV2(ItemV2 {
                    operation,
                    quantity: u64::from_le_bytes(qb),
                    price: r.u40()?,
                    amount: r.u40()?,
                    tax_amount: r.u40()?,
                    tax_code: r.u8()?,
                    department: r.u8()?,
                    calculation_method: r.u8()?,
                    payment_subject: r.u8()?,
                    name: r.text(),
                })
            }
            CLOSE_CHECK_V2 => {
                let mut payments = [0u64; 16];
                for p in &mut payments {
                    *p = r.u40()?;
                }
                let rounding = r.u8()?;
                let mut taxes = [0u64; 6];
                for t in &mut taxes {
                    *t = r.u40()?;
                }
                Command::CloseV2(CloseV2 {
                    payments,
                    rounding,
                    taxes,
                    tax_system: r.u8()?,
                    text: r.text(),
                })
            }
            WRITE_TLV => Command::WriteTlv(r.rest()),
            WRITE_OPERATION_TLV => Command::WriteOperationTlv(r.rest()),
            other => return Err(DecodeError::Unsupported(other)),
        };
        Ok((password, cmd))
    }
}

// ---------------------------------------------------------------- replies

/// A reply split into its parts: `CMD ERR payload`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub command: u16,
    pub error: u8,
    /// Everything after ERR (OP first, for commands that carry it).
    pub payload: Vec<u8>,
}

impl Reply {
    pub fn from_frame(frame: &Frame) -> Option<Reply> {
        let (&error, payload) = frame.data.split_first()?;
        Some(Reply {
            command: frame.command,
            error,
            payload: payload.to_vec(),
        })
    }

    pub fn ok(command: u16, payload: Vec<u8>) -> Reply {
        Reply {
            command,
            error: 0,
            payload,
        }
    }

    /// An error reply carries only `CMD ERR`.
    pub fn error(command: u16, code: u8) -> Reply {
        Reply {
            command,
            error: code,
            payload: Vec::new(),
        }
    }

    pub fn to_frame(&self) -> Frame {
        let mut data = Vec::with_capacity(self.payload.len() + 1);
        data.push(self.error);
        data.extend_from_slice(&self.payload);
        Frame::new(self.command, data)
    }
}

/// Why a reply payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reply to 0x{command:02X}: {what}")]
pub struct ReplyError {
    pub command: u16,
    pub what: String,
}

fn short(command: u16, need: usize, got: usize) -> ReplyError {
    ReplyError {
        command,
        what: format!("{got} bytes after ERR, expected at least {need}"),
    }
}

/// Flag bits of 0x10/0x11.
pub mod flags {
    pub const JOURNAL_ROLL: u16 = 1 << 0;
    pub const RECEIPT_ROLL: u16 = 1 << 1;
    pub const COVER_OPEN: u16 = 1 << 10;
    pub const DRAWER_OPEN: u16 = 1 << 11;
}

/// 0x10.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortStatus {
    pub operator: u8,
    pub flags: u16,
    pub mode: u8,
    pub submode: u8,
    pub operations_in_check: u16,
}

impl ShortStatus {
    pub const LEN: usize = 14;

    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![self.operator];
        p.extend_from_slice(&self.flags.to_le_bytes());
        p.push(self.mode);
        p.push(self.submode);
        p.push(self.operations_in_check as u8);
        p.extend_from_slice(&[0xC8, 0xBE, 0, 0]); // battery, power (≈ 3 V, 12 V), FP, EKLZ errors
        p.push((self.operations_in_check >> 8) as u8);
        p.extend_from_slice(&[0, 0, 0]);
        p
    }

    pub fn decode(p: &[u8]) -> Result<ShortStatus, ReplyError> {
        if p.len() < 5 {
            return Err(short(SHORT_STATUS, 5, p.len()));
        }
        let hi = p.get(10).copied().unwrap_or(0);
        Ok(ShortStatus {
            operator: p[0],
            flags: u16::from_le_bytes([p[1], p[2]]),
            mode: p[3],
            submode: p[4],
            operations_in_check: u16::from_le_bytes([p.get(5).copied().unwrap_or(0), hi]),
        })
    }
}

/// 0x11 (the fields fiscald reads; the rest are encoded as plausible constants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullStatus {
    pub operator: u8,
    pub firmware: [u8; 2],
    pub firmware_build: u16,
    pub firmware_date: NaiveDate,
    pub document_number: u16,
    pub flags: u16,
    pub mode: u8,
    pub submode: u8,
    pub date_time: NaiveDateTime,
    pub serial: u32,
    pub last_closed_shift: u16,
    pub inn: [u8; 6],
}

impl FullStatus {
    pub const LEN: usize = 46;

    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![self.operator];
        p.extend_from_slice(&self.firmware);
        p.extend_from_slice(&self.firmware_build.to_le_bytes());
        put_date(&mut p, self.firmware_date);
        p.push(1); // number in hall
        p.extend_from_slice(&self.document_number.to_le_bytes());
        p.extend_from_slice(&self.flags.to_le_bytes());
        p.push(self.mode);
        p.push(self.submode);
        p.push(0); // port
        p.extend_from_slice(&self.firmware); // FP version
        p.extend_from_slice(&self.firmware_build.to_le_bytes());
        put_date(&mut p, self.firmware_date);
        put_date(&mut p, self.date_time.date());
        put_time(&mut p, self.date_time);
        p.push(0); // FP flags
        p.extend_from_slice(&self.serial.to_le_bytes());
        p.extend_from_slice(&self.last_closed_shift.to_le_bytes());
        p.extend_from_slice(&2000u16.to_le_bytes()); // free FP records
        p.push(1); // fiscalizations
        p.push(15); // remaining
        p.extend_from_slice(&self.inn);
        p
    }

    pub fn decode(p: &[u8]) -> Result<FullStatus, ReplyError> {
        if p.len() < 41 {
            return Err(short(FULL_STATUS, 41, p.len()));
        }
        let bad = |what: &str| ReplyError {
            command: FULL_STATUS,
            what: what.into(),
        };
        let firmware_date = get_date(&p[5..8]).ok_or_else(|| bad("bad firmware date"))?;
        let date = get_date(&p[23..26]).ok_or_else(|| bad("bad date"))?;
        let date_time = date
            .and_hms_opt(u32::from(p[26]), u32::from(p[27]), u32::from(p[28]))
            .ok_or_else(|| bad("bad time"))?;
        let mut inn = [0u8; 6];
        if p.len() >= 46 {
            inn.copy_from_slice(&p[40..46]);
        }
        Ok(FullStatus {
            operator: p[0],
            firmware: [p[1], p[2]],
            firmware_build: u16::from_le_bytes([p[3], p[4]]),
            firmware_date,
            document_number: u16::from_le_bytes([p[9], p[10]]),
            flags: u16::from_le_bytes([p[11], p[12]]),
            mode: p[13],
            submode: p[14],
            date_time,
            serial: u32::from_le_bytes([p[30], p[31], p[32], p[33]]),
            last_closed_shift: u16::from_le_bytes([p[34], p[35]]),
            inn,
        })
    }
}

/// 0xFC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceType {
    pub device_type: u8,
    pub subtype: u8,
    pub protocol: u8,
    pub subprotocol: u8,
    pub model: u8,
    pub language: u8,
    pub name: String,
}

impl DeviceType {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![
            self.device_type,
            self.subtype,
            self.protocol,
            self.subprotocol,
            self.model,
            self.language,
        ];
        p.extend(encode_cp1251(&self.name));
        p
    }

    pub fn decode(p: &[u8]) -> Result<DeviceType, ReplyError> {
        if p.len() < 6 {
            return Err(short(DEVICE_TYPE, 6, p.len()));
        }
        Ok(DeviceType {
            device_type: p[0],
            subtype: p[1],
            protocol: p[2],
            subprotocol: p[3],
            model: p[4],
            language: p[5],
            name: decode_text(&p[6..]),
        })
    }
}

/// 0xFF01.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnStatus {
    pub phase: u8,
    /// 0 none, 1 registration, 2 shift open report, 4 receipt, 8 shift close…
    pub open_document: u8,
    pub document_data: bool,
    pub shift_open: bool,
    pub warnings: u8,
    pub date_time: NaiveDateTime,
    pub fn_number: String,
    pub last_fd: u32,
}

impl FnStatus {
    pub const LEN: usize = 30;

    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![
            self.phase,
            self.open_document,
            u8::from(self.document_data),
            u8::from(self.shift_open),
            self.warnings,
        ];
        put_dt5(&mut p, self.date_time);
        let mut fn_no = self.fn_number.as_bytes().to_vec();
        fn_no.resize(16, b' ');
        p.extend_from_slice(&fn_no);
        p.extend_from_slice(&self.last_fd.to_le_bytes());
        p
    }

    pub fn decode(p: &[u8]) -> Result<FnStatus, ReplyError> {
        if p.len() < Self::LEN {
            return Err(short(FN_STATUS, Self::LEN, p.len()));
        }
        Ok(FnStatus {
            phase: p[0],
            open_document: p[1],
            document_data: p[2] != 0,
            shift_open: p[3] != 0,
            warnings: p[4],
            date_time: get_dt5(&p[5..10]).ok_or_else(|| ReplyError {
                command: FN_STATUS,
                what: "bad date-time".into(),
            })?,
            fn_number: String::from_utf8_lossy(&p[10..26])
                .trim_matches(|c: char| c == ' ' || c == '\0')
                .to_string(),
            last_fd: u32::from_le_bytes([p[26], p[27], p[28], p[29]]),
        })
    }
}

/// FF0A document types (FFD).
pub mod fd_type {
    pub const REGISTRATION: u8 = 1;
    pub const SHIFT_OPEN: u8 = 2;
    pub const RECEIPT: u8 = 3;
    pub const SHIFT_CLOSE: u8 = 5;
    /// FFD document type 31 «кассовый чек коррекции»; FF0A gives it the
    /// receipt's layout (ASSUMED: shtrih-m-ffd12.md names no separate layout).
    pub const CORRECTION: u8 = 31;
}

/// 0xFF0A: one document in the fiscal drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnDocument {
    pub doc_type: u8,
    pub ofd_acknowledged: bool,
    pub data: Vec<u8>,
}

/// The data of a receipt (type 3) document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnReceiptData {
    pub date_time: NaiveDateTime,
    pub fd: u32,
    pub fiscal_sign: u32,
    /// 1 income, 2 return of income, 3 expense, 4 return of expense.
    pub operation: u8,
    pub sum: u64,
}

impl FnReceiptData {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(19);
        put_dt5(&mut p, self.date_time);
        p.extend_from_slice(&self.fd.to_le_bytes());
        p.extend_from_slice(&self.fiscal_sign.to_le_bytes());
        p.push(self.operation);
        put_u40(&mut p, self.sum);
        p
    }

    pub fn decode(p: &[u8]) -> Result<FnReceiptData, ReplyError> {
        if p.len() < 19 {
            return Err(short(FIND_DOCUMENT, 21, p.len() + 2));
        }
        Ok(FnReceiptData {
            date_time: get_dt5(&p[0..5]).ok_or_else(|| ReplyError {
                command: FIND_DOCUMENT,
                what: "bad date-time".into(),
            })?,
            fd: u32::from_le_bytes([p[5], p[6], p[7], p[8]]),
            fiscal_sign: u32::from_le_bytes([p[9], p[10], p[11], p[12]]),
            operation: p[13],
            sum: get_u40(&p[14..19]),
        })
    }
}

impl FnDocument {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![self.doc_type, u8::from(self.ofd_acknowledged)];
        p.extend_from_slice(&self.data);
        p
    }

    pub fn decode(p: &[u8]) -> Result<FnDocument, ReplyError> {
        if p.len() < 2 {
            return Err(short(FIND_DOCUMENT, 2, p.len()));
        }
        Ok(FnDocument {
            doc_type: p[0],
            ofd_acknowledged: p[1] != 0,
            data: p[2..].to_vec(),
        })
    }

    /// The receipt fields, when this is a receipt.
    pub fn receipt(&self) -> Option<Result<FnReceiptData, ReplyError>> {
        matches!(self.doc_type, fd_type::RECEIPT | fd_type::CORRECTION)
            .then(|| FnReceiptData::decode(&self.data))
    }
}

/// 0xFF40.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShiftParams {
    pub open: bool,
    pub shift_number: u16,
    pub receipt_number: u16,
}

impl ShiftParams {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![u8::from(self.open)];
        p.extend_from_slice(&self.shift_number.to_le_bytes());
        p.extend_from_slice(&self.receipt_number.to_le_bytes());
        p
    }

    pub fn decode(p: &[u8]) -> Result<ShiftParams, ReplyError> {
        if p.len() < 5 {
            return Err(short(SHIFT_PARAMS, 5, p.len()));
        }
        Ok(ShiftParams {
            open: p[0] != 0,
            shift_number: u16::from_le_bytes([p[1], p[2]]),
            receipt_number: u16::from_le_bytes([p[3], p[4]]),
        })
    }
}

/// 0xFF03 reply (J `command/FSReadExpDate.java`): expiry date YY MM DD
/// (binary, though J's comment says BCD), re-registrations left (1), done
/// (1). [D] lists only the date; J and pyshtrih read both counters, so the
/// emulator sends all five bytes (spec note §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnExpiry {
    pub expires: NaiveDate,
    pub reregistrations_left: u8,
    pub reregistrations_done: u8,
}

impl FnExpiry {
    pub fn encode(&self) -> Vec<u8> {
        use chrono::Datelike;
        vec![
            (self.expires.year() - 2000) as u8,
            self.expires.month() as u8,
            self.expires.day() as u8,
            self.reregistrations_left,
            self.reregistrations_done,
        ]
    }

    pub fn decode(p: &[u8]) -> Result<FnExpiry, ReplyError> {
        if p.len() < 3 {
            return Err(short(FN_EXPIRY, 3, p.len()));
        }
        let expires =
            NaiveDate::from_ymd_opt(2000 + i32::from(p[0]), u32::from(p[1]), u32::from(p[2]))
                .ok_or_else(|| ReplyError {
                    command: FN_EXPIRY,
                    what: format!("bad date {:02X} {:02X} {:02X}", p[0], p[1], p[2]),
                })?;
        Ok(FnExpiry {
            expires,
            reregistrations_left: p.get(3).copied().unwrap_or(0),
            reregistrations_done: p.get(4).copied().unwrap_or(0),
        })
    }
}

/// 0xFF39 reply (J `command/FSReadCommStatus.java`, whose comment quotes the
/// vendor protocol): exchange bits (b0 link up, b1 message for the OFD, b2
/// awaiting a receipt, b3 OFD command, b4 settings changed, b5 awaiting an
/// answer), read state (1), unsent count u16, first unsent FD u32, its
/// DATE_TIME (5: YY MM DD hh mm).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfdStatus {
    pub exchange: u8,
    pub reading: bool,
    pub unsent: u16,
    pub first_unsent: u32,
    /// `None` when nothing is queued (the register sends zeros then).
    pub first_unsent_at: Option<NaiveDateTime>,
}

impl OfdStatus {
    pub const LEN: usize = 13;

    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![self.exchange, u8::from(self.reading)];
        p.extend_from_slice(&self.unsent.to_le_bytes());
        p.extend_from_slice(&self.first_unsent.to_le_bytes());
        match self.first_unsent_at {
            Some(t) => put_dt5(&mut p, t),
            None => p.extend_from_slice(&[0; 5]),
        }
        p
    }

    pub fn decode(p: &[u8]) -> Result<OfdStatus, ReplyError> {
        if p.len() < Self::LEN {
            return Err(short(OFD_STATUS, Self::LEN, p.len()));
        }
        let unsent = u16::from_le_bytes([p[2], p[3]]);
        Ok(OfdStatus {
            exchange: p[0],
            reading: p[1] != 0,
            unsent,
            first_unsent: u32::from_le_bytes([p[4], p[5], p[6], p[7]]),
            first_unsent_at: if unsent == 0 {
                None
            } else {
                get_dt5(&p[8..13])
            },
        })
    }
}

/// 0xFF63 reply (J `command/FSReadMemorySize.java`): documents the 5-year
/// archive can still take (u32, approximate), free KB of the 30-day area
/// (u32). [D] adds one byte (notification area %) with marking on; ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnMemory {
    pub documents_left: u32,
    pub free_kb_30_days: u32,
}

impl FnMemory {
    pub fn encode(&self) -> Vec<u8> {
        let mut p = self.documents_left.to_le_bytes().to_vec();
        p.extend_from_slice(&self.free_kb_30_days.to_le_bytes());
        p
    }

    pub fn decode(p: &[u8]) -> Result<FnMemory, ReplyError> {
        if p.len() < 8 {
            return Err(short(FN_MEMORY, 8, p.len()));
        }
        Ok(FnMemory {
            documents_left: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
            free_kb_30_days: u32::from_le_bytes([p[4], p[5], p[6], p[7]]),
        })
    }
}

/// 0xFF70 reply, 8 bytes (J `command/FSReadMCStatus.java`, whose comment
/// quotes the protocol; shared/spec/shtrih-m-ffd12.md §4.4): the marking
/// check state, the notification state, the command-permission flags, the
/// saved check results, the codes in the notification being formed, the
/// notification area's fill (0 under 50 %, 1 50–80 %, 2 80–90 %, 3 over
/// 90 %), and the notifications not yet uploaded or confirmed (u16 LE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McStatus {
    /// 0 marking work is temporarily blocked, 1 no code being checked,
    /// 2 code passed (B1h), 3 status request formed (B5h), 4 answer received (B6h).
    pub check_state: u8,
    /// 0 no sale notification being formed, 1 one being formed.
    pub notification_state: u8,
    pub command_flags: u8,
    pub saved_results: u8,
    pub codes_in_notification: u8,
    pub area_fill: u8,
    pub queued_notifications: u16,
}

impl McStatus {
    /// Check state 0: «работа с КМ временно заблокирована».
    pub const BLOCKED: u8 = 0;

    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![
            self.check_state,
            self.notification_state,
            self.command_flags,
            self.saved_results,
            self.codes_in_notification,
            self.area_fill,
        ];
        p.extend_from_slice(&self.queued_notifications.to_le_bytes());
        p
    }

    pub fn decode(p: &[u8]) -> Result<McStatus, ReplyError> {
        if p.len() < 8 {
            return Err(short(MC_STATUS, 8, p.len()));
        }
        Ok(McStatus {
            check_state: p[0],
            notification_state: p[1],
            command_flags: p[2],
            saved_results: p[3],
            codes_in_notification: p[4],
            area_fill: p[5],
            queued_notifications: u16::from_le_bytes([p[6], p[7]]),
        })
    }
}

/// 0x85 reply: OP, change.
pub fn decode_change(p: &[u8]) -> Result<u64, ReplyError> {
    if p.len() < 6 {
        return Err(short(CLOSE_CHECK, 6, p.len()));
    }
    Ok(get_u40(&p[1..6]))
}

// ---------------------------------------------------------------- fields

pub fn put_u40(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes()[..5]);
}

pub fn get_u40(b: &[u8]) -> u64 {
    b.iter()
        .take(5)
        .enumerate()
        .fold(0, |acc, (i, &x)| acc | (u64::from(x) << (8 * i)))
}

fn put_date(out: &mut Vec<u8>, d: NaiveDate) {
    use chrono::Datelike;
    out.extend_from_slice(&[d.day() as u8, d.month() as u8, (d.year() - 2000) as u8]);
}

fn put_time(out: &mut Vec<u8>, t: NaiveDateTime) {
    use chrono::Timelike;
    out.extend_from_slice(&[t.hour() as u8, t.minute() as u8, t.second() as u8]);
}

fn get_date(b: &[u8]) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2000 + i32::from(b[2]), u32::from(b[1]), u32::from(b[0]))
}

/// FN date-time `YY MM DD HH MM`.
pub fn put_dt5(out: &mut Vec<u8>, t: NaiveDateTime) {
    use chrono::{Datelike, Timelike};
    out.extend_from_slice(&[
        (t.year() - 2000) as u8,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
    ]);
}

pub fn get_dt5(b: &[u8]) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(2000 + i32::from(b[0]), u32::from(b[1]), u32::from(b[2]))?.and_hms_opt(
        u32::from(b[3]),
        u32::from(b[4]),
        0,
    )
}

/// cp1251; a character cp1251 lacks becomes `?` (never an HTML escape).
pub fn encode_cp1251(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let (bytes, _, bad) = encoding_rs::WINDOWS_1251.encode(c.encode_utf8(&mut buf));
        if bad || bytes.len() != 1 {
            out.push(b'?');
        } else {
            out.push(bytes[0]);
        }
    }
    out
}

/// A text field: cp1251, cut to `width` bytes, NUL-padded to `width`.
pub fn put_text(out: &mut Vec<u8>, text: &str, width: usize) {
    let mut b = encode_cp1251(text);
    b.resize(width, 0);
    out.extend_from_slice(&b);
}

/// A text field of any length: up to the first NUL, cp1251.
pub fn decode_text(b: &[u8]) -> String {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    encoding_rs::WINDOWS_1251
        .decode_without_bom_handling(&b[..end])
        .0
        .trim_end()
        .to_string()
}

struct Reader<'a> {
    b: &'a [u8],
    code: u16,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], code: u16) -> Reader<'a> {
        Reader { b, code }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::Short(self.code));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u40(&mut self) -> Result<u64, DecodeError> {
        Ok(get_u40(self.take(5)?))
    }

    fn array4(&mut self) -> Result<[u8; 4], DecodeError> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    fn text(&mut self) -> String {
        let t = decode_text(self.b);
        self.b = &[];
        t
    }

    fn rest(&mut self) -> Vec<u8> {
        let t = self.b.to_vec();
        self.b = &[];
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn sale_layout_matches_pyshtrih() {
        let op = ItemOp {
            quantity: 2000,
            price: 15000,
            department: 1,
            taxes: [1, 0, 0, 0],
            text: "Хлеб".into(),
        };
        let f = Command::Item(CheckType::Sale, op.clone()).encode(1, 30);
        assert_eq!(f.command, 0x80);
        assert_eq!(&f.data[..4], &[1, 0, 0, 0]);
        assert_eq!(&f.data[4..9], &[0xD0, 0x07, 0, 0, 0]);
        assert_eq!(&f.data[9..14], &[0x98, 0x3A, 0, 0, 0]);
        assert_eq!(f.data[14], 1);
        assert_eq!(&f.data[15..19], &[1, 0, 0, 0]);
        assert_eq!(&f.data[19..23], &[0xD5, 0xEB, 0xE5, 0xE1]); // "Хлеб" in cp1251
        assert_eq!(f.data.len(), 19 + TEXT_FIELD_BYTES);
        assert_eq!(op.sum(), 30000);
        // Decoding accepts a 48-byte text field, as pyshtrih sends.
        let mut long = f.data[..19].to_vec();
        put_text(&mut long, "Хлеб", 48);
        let (pw, back) = Command::decode(&Frame::new(0x80, long)).unwrap();
        assert_eq!((pw, back), (1, Command::Item(CheckType::Sale, op)));
    }

    #[test]
    fn every_command_round_trips_and_uses_the_right_password() {
        let cmds = vec![
            Command::ShortStatus,
            Command::FullStatus,
            Command::Beep,
            Command::PrintLine {
                journal: false,
                receipt: true,
                text: "Спасибо!".into(),
            },
            Command::Cut { partial: true },
            Command::OpenDrawer { drawer: 1 },
            Command::XReport,
            Command::ZReport,
            Command::CashIn(123_456),
            Command::CashOut(MAX_U40),
            Command::CloseCheck(CloseCheck {
                payments: [50000, 1, 2, 3],
                discount: -5,
                taxes: [0; 4],
                text: String::new(),
            }),
            Command::CancelCheck,
            Command::OpenCheck(CheckType::ReturnPurchase),
            Command::ContinuePrint,
            Command::OpenShift,
            Command::DeviceType,
            Command::FnStatus,
            Command::FindDocument(0x01020304),
            Command::ShiftParams,
        ];
        for c in cmds {
            let f = c.encode(1, 30);
            let (pw, back) = Command::decode(&f).unwrap();
            assert_eq!(back, c);
            let expected = if c == Command::DeviceType {
                0
            } else if c.needs_admin() {
                30
            } else {
                1
            };
            assert_eq!(pw, expected, "{c:?}");
        }
        assert_eq!(
            Command::DeviceType.encode(1, 30).encode(),
            [2, 1, 0xFC, 0xFD]
        );
        assert_eq!(
            Command::FnStatus.encode(1, 30).encode(),
            [2, 6, 0xFF, 1, 0x1E, 0, 0, 0, 0xE6]
        );
    }

    #[test]
    fn short_data_and_unknown_commands_are_refused() {
        assert_eq!(
            Command::decode(&Frame::new(0x80, vec![1, 0, 0, 0, 5])),
            Err(DecodeError::Short(0x80))
        );
        assert_eq!(
            Command::decode(&Frame::new(0x99, vec![1, 0, 0, 0]))
                .unwrap_err()
                .code(),
            0x37
        );
        assert_eq!(
            Command::decode(&Frame::new(0x8D, vec![1, 0, 0, 0, 9]))
                .unwrap_err()
                .code(),
            0x33
        );
    }

    #[test]
    fn replies_round_trip() {
        let s = ShortStatus {
            operator: 30,
            flags: flags::RECEIPT_ROLL | flags::DRAWER_OPEN,
            mode: 0x28,
            submode: 1,
            operations_in_check: 300,
        };
        let e = s.encode();
        assert_eq!(e.len(), ShortStatus::LEN);
        assert_eq!(ShortStatus::decode(&e).unwrap(), s);

        let full = FullStatus {
            operator: 1,
            firmware: *b"C2",
            firmware_build: 32000,
            firmware_date: NaiveDate::from_ymd_opt(2021, 3, 4).unwrap(),
            document_number: 77,
            flags: flags::RECEIPT_ROLL,
            mode: 2,
            submode: 0,
            date_time: dt(2026, 11, 23, 14, 5),
            serial: 12345678,
            last_closed_shift: 11,
            inn: [0x07, 0x70, 0x12, 0x34, 0x56, 0x78],
        };
        let e = full.encode();
        assert_eq!(e.len() + 1, 47, "47 bytes including ERR");
        assert_eq!(FullStatus::decode(&e).unwrap(), full);

        let fns = FnStatus {
            phase: 3,
            open_document: 4,
            document_data: false,
            shift_open: true,
            warnings: 0,
            date_time: dt(2026, 1, 2, 3, 4),
            fn_number: "9999078900004312".into(),
            last_fd: 0x0A0B0C0D,
        };
        let e = fns.encode();
        // The note: last FD at offsets 27–30 counting ERR as offset 0.
        assert_eq!(&e[26..30], &0x0A0B0C0Du32.to_le_bytes());
        assert_eq!(FnStatus::decode(&e).unwrap(), fns);

        let r = FnReceiptData {
            date_time: dt(2026, 11, 23, 14, 5),
            fd: 42,
            fiscal_sign: 3344550012,
            operation: 1,
            sum: 30000,
        };
        let doc = FnDocument {
            doc_type: fd_type::RECEIPT,
            ofd_acknowledged: false,
            data: r.encode(),
        };
        let back = FnDocument::decode(&doc.encode()).unwrap();
        assert_eq!(back.receipt().unwrap().unwrap(), r);

        let d = DeviceType {
            device_type: 0,
            subtype: 0,
            protocol: 1,
            subprotocol: 0,
            model: 19,
            language: 0,
            name: "ШТРИХ-М-01Ф".into(),
        };
        assert_eq!(DeviceType::decode(&d.encode()).unwrap(), d);

        let reply = Reply::error(0x88, 0x55);
        assert_eq!(reply.to_frame().encode(), [0x02, 0x02, 0x88, 0x55, 0xDF]);
        assert_eq!(Reply::from_frame(&reply.to_frame()).unwrap(), reply);
    }

    #[test]
    fn text_is_cut_padded_and_unencodable_chars_become_question_marks() {
        let mut out = Vec::new();
        put_text(&mut out, &"Я".repeat(50), 40);
        assert_eq!(out, vec![0xDF; 40]);
        let mut out = Vec::new();
        put_text(&mut out, "a€😀", 5);
        assert_eq!(out, vec![b'a', 0x88, b'?', 0, 0]);
        assert_eq!(decode_text(&out), "a€?");
    }
    /// FF70's 8 bytes in J's order (`FSReadMCStatus.decode`): five state
    /// bytes, the fill step, the queue as u16 LE.
    #[test]
    fn mc_status_round_trips_in_the_vendor_layout() {
        let bytes = [1u8, 0, 0xFF, 2, 0, 3, 0x2C, 0x01];
        let s = McStatus::decode(&bytes).unwrap();
        assert_eq!(
            s,
            McStatus {
                check_state: 1,
                notification_state: 0,
                command_flags: 0xFF,
                saved_results: 2,
                codes_in_notification: 0,
                area_fill: 3,
                queued_notifications: 300,
            }
        );
        assert_eq!(s.encode(), bytes);
        assert!(McStatus::decode(&bytes[..7]).is_err());
        assert_eq!(Command::McStatus.code(), 0xFF70);
    }
}
