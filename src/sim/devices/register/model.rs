//! The emulated register's memory and rules: modes, the shift, the fiscal
//! drive's documents, the open check, counters. Pure: a request body in, a
//! reply body out, with the time passed in. It reuses the driver's command
//! and reply layouts, so the two cannot drift apart silently.

use crate::devices::shtrih::assumed;
use crate::devices::shtrih::command::{
    AMOUNT_NOT_GIVEN, CheckType, CloseV2Reply, Command, DeviceType, FnDocument, FnExpiry, FnMemory,
    FnReceiptData, FnStatus, FullStatus, ItemOp, ItemV2, MAX_U40, McStatus, OfdStatus, Reply,
    ShiftParams, ShortStatus, fd_type, flags, put_dt5,
};
use crate::devices::shtrih::command::{
    CheckMarking, MarkingCheckReply, money_register, operation_register,
};
use crate::devices::shtrih::frame::Frame;
use crate::devices::shtrih::tlv::{self, Tlv};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub seed: u64,
    pub model_name: String,
    pub serial: u32,
    pub fn_number: String,
    /// The registration number in table 18 (row 1, field 3).
    pub rnm: String,
}

impl ModelConfig {
    /// A register whose serial and FN number follow from `seed`.
    pub fn from_seed(seed: u64) -> ModelConfig {
        let h = mix(seed);
        ModelConfig {
            seed,
            model_name: assumed::EMULATED_MODEL_NAME.to_string(),
            serial: 10_000_000 + (h % 89_999_999) as u32,
            fn_number: format!("99990789{:08}", (h >> 32) % 100_000_000),
            rnm: format!("00074{:011}", (h >> 8) % 100_000_000_000),
        }
    }
}

/// A line of a registered receipt.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelLine {
    pub name: String,
    /// Thousandths.
    pub quantity: u64,
    pub price: u64,
    pub sum: u64,
    /// Legacy 0x80: the tax group (1–4); 0 for an FF46 line.
    pub tax_group: u8,
    /// FF46: the tax code byte; 0 for a legacy line.
    pub tax_code: u8,
    /// FF46: tag 1214 (0 for a legacy line).
    pub calculation_method: u8,
    /// FF46: tag 1212 (0 for a legacy line).
    pub payment_subject: u8,
    /// Every TLV bound to the line (FF4D), in the order received.
    pub tags: Vec<Tlv>,
    /// Marking codes bound to the line (FF67).
    pub marking: Vec<BoundCode>,
}

/// A marking code bound to a line, with the FN's check result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BoundCode {
    pub code: Vec<u8>,
    /// Tag 2106 as FF69 answered it.
    pub result_2106: u8,
    /// Checked (FF61) and accepted (FF69) before it was bound.
    pub accepted: bool,
}

/// A code checked with FF61, waiting for FF69 and then FF67.
#[derive(Clone, Debug)]
struct PendingCode {
    code: Vec<u8>,
    reply: MarkingCheckReply,
    decision: Option<u8>,
}

/// What the X and Z reports total for a shift (the register's counters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShiftTotals {
    pub shift: u16,
    /// Receipt sums by FF0A operation (index = operation − 1).
    pub receipts: [u64; 4],
    pub receipt_count: u32,
    /// Correction receipt sums by operation (index = operation − 1).
    pub corrections: [u64; 4],
    pub correction_count: u32,
    pub cash_in: u64,
    pub cash_in_count: u16,
    pub cash_out: u64,
    pub cash_out_count: u16,
}

/// One printed X or Z report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShiftReport {
    pub z: bool,
    pub totals: ShiftTotals,
    pub cash_in_drawer: u64,
}

impl ModelLine {
    /// The line's TLV `tag` (looking inside STLVs too).
    pub fn tag(&self, tag: u16) -> Option<Tlv> {
        tlv::find(&self.tags, tag)
    }
}

/// A receipt the fiscal drive holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredReceipt {
    pub fd: u32,
    pub fiscal_sign: u32,
    pub date_time: NaiveDateTime,
    pub check_type: CheckType,
    /// FF0A operation (1 income, 2 return of income, 3 expense, 4 return of expense).
    pub operation: u8,
    pub total: u64,
    /// The 16 payment types of FF45 (0x85 fills the first four): 1 cash,
    /// 2–13 electronic, 14 prepayment offset, 15 credit, 16 other.
    pub payments: [u64; 16],
    pub change: u64,
    pub lines: Vec<ModelLine>,
    pub shift: u16,
    pub number_in_shift: u16,
    /// FF45: the tag 1055 bit; 0 after a legacy 0x85.
    pub tax_system: u8,
    /// Every receipt-level TLV (FF0C), in the order received.
    pub tags: Vec<Tlv>,
    /// A correction receipt (FFD document type 31).
    pub correction: bool,
}

impl RegisteredReceipt {
    /// The receipt's TLV `tag` (looking inside STLVs too).
    pub fn tag(&self, tag: u16) -> Option<Tlv> {
        tlv::find(&self.tags, tag)
    }
}

#[derive(Clone, Debug)]
struct FnDoc {
    fd: u32,
    doc_type: u8,
    date_time: NaiveDateTime,
    fiscal_sign: u32,
    operation: u8,
    sum: u64,
    shift: u16,
}

#[derive(Clone, Debug)]
struct OpenCheck {
    check_type: CheckType,
    lines: Vec<ModelLine>,
    total: u64,
    tags: Vec<Tlv>,
    correction: bool,
}

/// The emulated register.
#[derive(Clone, Debug)]
pub struct RegisterModel {
    config: ModelConfig,
    /// Current shift if open, else the last closed one.
    shift_number: u16,
    shift_opened_at: Option<NaiveDateTime>,
    receipts_in_shift: u16,
    document_number: u16,
    documents: Vec<FnDoc>,
    check: Option<OpenCheck>,
    receipts: Vec<RegisteredReceipt>,
    /// Per payment type, since the last Z report.
    pub shift_payments: [u64; 16],
    /// FF0C tags sent outside a check: they belong to the next receipt.
    pending_tags: Vec<Tlv>,
    marking: Option<PendingCode>,
    totals: ShiftTotals,
    reports: Vec<ShiftReport>,
    cash_in_drawer: u64,
    cancelled: u32,
    z_reports: u32,
    x_reports: u32,
    paper_out: bool,
    drawer_open: bool,
    executed: u64,
    /// The drive's last valid day; set on the first FF03 to
    /// [`assumed::EMULATED_FN_LIFE_DAYS`] after that day.
    fn_expires: Option<NaiveDate>,
    /// The last FD the OFD confirmed: later documents are in the queue.
    ofd_confirmed: u32,
    /// Knob: the queue's oldest document dates from then (until it drains).
    ofd_oldest_at: Option<NaiveDateTime>,
    /// Knob: sale notifications for marked goods waiting beside those of
    /// the receipts in the OFD queue (until it drains).
    mc_backlog: u32,
}

impl RegisterModel {
    pub fn new(config: ModelConfig) -> RegisterModel {
        RegisterModel {
            config,
            shift_number: 0,
            shift_opened_at: None,
            receipts_in_shift: 0,
            document_number: 0,
            documents: Vec::new(),
            check: None,
            receipts: Vec::new(),
            shift_payments: [0; 16],
            pending_tags: Vec::new(),
            marking: None,
            totals: ShiftTotals::default(),
            reports: Vec::new(),
            cash_in_drawer: 0,
            cancelled: 0,
            z_reports: 0,
            x_reports: 0,
            paper_out: false,
            drawer_open: false,
            executed: 0,
            fn_expires: None,
            ofd_confirmed: 0,
            ofd_oldest_at: None,
            mc_backlog: 0,
        }
    }

    /// The OFD confirms every document made so far (the link is up).
    pub fn drain_ofd(&mut self) {
        self.ofd_confirmed = self.last_fd();
        self.ofd_oldest_at = None;
        self.mc_backlog = 0;
    }

    /// Sale notifications for marked goods not yet uploaded: one per
    /// receipt in the OFD queue that sold a marked good, plus the knob's.
    pub fn mc_notifications(&self) -> u32 {
        let receipts = self
            .receipts
            .iter()
            .filter(|r| r.fd > self.ofd_confirmed)
            .filter(|r| r.lines.iter().any(|l| !l.marking.is_empty()))
            .count() as u32;
        receipts + self.mc_backlog
    }

    /// Knob: `n` sale notifications are waiting besides the receipts'.
    pub fn set_mc_backlog(&mut self, n: u32) {
        self.mc_backlog = n;
    }

    /// FF70: the fill is reported in steps; a full area blocks marking work.
    fn mc_status(&self) -> McStatus {
        let queued = self.mc_notifications();
        let percent = u64::from(queued) * 100 / u64::from(assumed::EMULATED_MC_NOTIFICATION_AREA);
        McStatus {
            check_state: if percent >= 100 {
                McStatus::BLOCKED
            } else if self.marking.is_some() {
                2
            } else {
                1
            },
            notification_state: 0,
            // Every marking command allowed (bits B1h … B7h/3).
            command_flags: 0xFF,
            saved_results: 0,
            codes_in_notification: 0,
            area_fill: match percent {
                0..50 => 0,
                50..80 => 1,
                80..=90 => 2,
                _ => 3,
            },
            queued_notifications: queued.min(u32::from(u16::MAX)) as u16,
        }
    }

    /// Documents the OFD has not confirmed.
    pub fn ofd_unsent(&self) -> u32 {
        self.last_fd() - self.ofd_confirmed.min(self.last_fd())
    }

    /// The oldest unconfirmed document's number and date.
    fn oldest_unsent(&self) -> Option<(u32, NaiveDateTime)> {
        self.documents
            .iter()
            .find(|d| d.fd > self.ofd_confirmed)
            .map(|d| (d.fd, self.ofd_oldest_at.unwrap_or(d.date_time)))
    }

    /// Knob: the oldest unconfirmed document was made `age` before `now`
    /// (the last document is put back in the queue if it is empty). Its
    /// date in the FN archive stays; the queue reports the knob's.
    pub fn set_ofd_backlog_age(&mut self, now: NaiveDateTime, age: TimeDelta) {
        if self.ofd_unsent() == 0 {
            self.ofd_confirmed = self.last_fd().saturating_sub(1);
        }
        self.ofd_oldest_at = Some(now - age);
    }

    /// FF01 warning flags: b0 three days or less to expiry, b1 thirty
    /// (spec note part B).
    fn fn_warnings(&self, now: NaiveDateTime) -> u8 {
        let Some(day) = self.fn_expires else {
            return 0;
        };
        let left = (day - now.date()).num_days();
        match left {
            ..=3 => 0x03,
            4..=30 => 0x02,
            _ => 0,
        }
    }

    /// Knob: the drive's last valid day.
    pub fn set_fn_expires(&mut self, day: NaiveDate) {
        self.fn_expires = Some(day);
    }

    /// Knob: the open shift was opened `age` before `now` (opened then if closed).
    pub fn set_shift_age(&mut self, now: NaiveDateTime, age: TimeDelta) {
        if !self.shift_open() {
            self.shift_number += 1;
            self.receipts_in_shift = 0;
            self.shift_payments = [0; 16];
            self.add_document(fd_type::SHIFT_OPEN, now - age, 0, 0);
        }
        let shift = self.shift_number;
        if let Some(d) = self
            .documents
            .iter_mut()
            .rev()
            .find(|d| d.doc_type == fd_type::SHIFT_OPEN && d.shift == shift)
        {
            d.date_time = now - age;
        }
        self.shift_opened_at = Some(now - age);
    }

    /// The drive refuses new documents once its oldest unconfirmed one is
    /// more than 30 days old (spec note part B).
    fn ofd_blocked(&self, now: NaiveDateTime) -> bool {
        self.oldest_unsent()
            .is_some_and(|(_, at)| now - at > TimeDelta::days(30))
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn set_paper_out(&mut self, out: bool) {
        self.paper_out = out;
    }

    pub fn shift_open(&self) -> bool {
        self.shift_opened_at.is_some()
    }

    pub fn shift_number(&self) -> u16 {
        self.shift_number
    }

    /// The last FN document number (0 before the first).
    pub fn last_fd(&self) -> u32 {
        self.documents.last().map_or(0, |d| d.fd)
    }

    pub fn receipts(&self) -> &[RegisteredReceipt] {
        &self.receipts
    }

    pub fn cancelled(&self) -> u32 {
        self.cancelled
    }

    pub fn z_reports(&self) -> u32 {
        self.z_reports
    }

    pub fn x_reports(&self) -> u32 {
        self.x_reports
    }

    pub fn cash_in_drawer(&self) -> u64 {
        self.cash_in_drawer
    }

    /// The current (or last) shift's counters.
    pub fn totals(&self) -> &ShiftTotals {
        &self.totals
    }

    /// Every X and Z report printed, oldest first.
    pub fn reports(&self) -> &[ShiftReport] {
        &self.reports
    }

    /// Commands executed successfully (every ERR = 0 reply).
    pub fn executed(&self) -> u64 {
        self.executed
    }

    /// Mode byte: 8 (+ check type in the high nibble) with a check open, 2/3
    /// with a shift open (3 after 24 h), 4 with it closed.
    pub fn mode(&self, now: NaiveDateTime) -> u8 {
        if let Some(c) = &self.check {
            return 0x08 | ((c.check_type as u8) << 4);
        }
        match self.shift_opened_at {
            Some(at) if now - at > TimeDelta::hours(24) => 3,
            Some(_) => 2,
            None => 4,
        }
    }

    pub fn submode(&self) -> u8 {
        u8::from(self.paper_out)
    }

    fn flags(&self) -> u16 {
        let mut f = flags::JOURNAL_ROLL;
        if !self.paper_out {
            f |= flags::RECEIPT_ROLL;
        }
        if self.drawer_open {
            f |= flags::DRAWER_OPEN;
        }
        f
    }

    fn fiscal_sign(&self, fd: u32) -> u32 {
        (mix(self.config.seed ^ (u64::from(fd) << 20) ^ 0x5eed) >> 16) as u32
    }

    fn add_document(
        &mut self,
        doc_type: u8,
        now: NaiveDateTime,
        operation: u8,
        sum: u64,
    ) -> (u32, u32) {
        let fd = self.last_fd() + 1;
        let fiscal_sign = self.fiscal_sign(fd);
        self.documents.push(FnDoc {
            fd,
            doc_type,
            date_time: now,
            fiscal_sign,
            operation,
            sum,
            shift: self.shift_number,
        });
        self.document_number = self.document_number.wrapping_add(1);
        (fd, fiscal_sign)
    }

    /// Executes one request body and returns the reply body.
    pub fn execute(&mut self, request: &Frame, now: NaiveDateTime) -> Frame {
        let code = request.command;
        let reply = match Command::decode(request) {
            Err(e) => Reply::error(code, e.code()),
            Ok((password, cmd)) => {
                if cmd != Command::DeviceType && !(1..=30).contains(&password) {
                    Reply::error(code, 0x4F)
                } else {
                    match self.run(&cmd, password as u8, now) {
                        Ok(payload) => {
                            self.executed += 1;
                            Reply::ok(code, payload)
                        }
                        Err(err) => Reply::error(code, err),
                    }
                }
            }
        };
        reply.to_frame()
    }

    fn needs_paper(&self, cmd: &Command) -> Result<(), u8> {
        let prints = cmd.prints()
            || matches!(
                cmd,
                Command::Item(..)
                    | Command::CloseCheck(_)
                    | Command::ItemV2(_)
                    | Command::CloseV2(_)
                    | Command::OpenShift
            );
        if prints && self.paper_out {
            Err(0x6B)
        } else {
            Ok(())
        }
    }

    fn shift_ok_for_sale(&self, now: NaiveDateTime) -> Result<(), u8> {
        match self.mode(now) & 0x0F {
            2 | 8 => Ok(()),
            3 => Err(0x4E),
            _ => Err(assumed::SHIFT_NOT_OPEN),
        }
    }

    /// Closes the open check with `payments` (the 16 FF45 types): the
    /// receipt becomes an FN document. Returns change, FD and fiscal sign.
    fn close(
        &mut self,
        payments: [u64; 16],
        tax_system: u8,
        now: NaiveDateTime,
    ) -> Result<(u64, u32, u32), u8> {
        let Some(check) = &self.check else {
            return Err(0x55);
        };
        let total = check.total;
        if total == 0 {
            return Err(0x8E);
        }
        let non_cash: u64 = payments[1..].iter().sum();
        let paid: u64 = payments.iter().sum();
        if non_cash > total {
            return Err(0x4D);
        }
        if paid < total {
            return Err(0x45);
        }
        let change = paid - total;
        let check = self.check.take().expect("checked above");
        let outgoing = matches!(
            check.check_type,
            CheckType::ReturnSale | CheckType::Purchase
        );
        let cash_net = payments[0] - change;
        if outgoing {
            if cash_net > self.cash_in_drawer {
                self.check = Some(check);
                return Err(0x46);
            }
            self.cash_in_drawer -= cash_net;
        } else {
            self.cash_in_drawer += cash_net;
        }
        for (acc, p) in self.shift_payments.iter_mut().zip(payments) {
            *acc += p;
        }
        self.shift_payments[0] -= change;
        let operation = check.check_type.operation();
        let doc_type = if check.correction {
            self.totals.corrections[operation as usize - 1] += total;
            self.totals.correction_count += 1;
            fd_type::CORRECTION
        } else {
            self.totals.receipts[operation as usize - 1] += total;
            self.totals.receipt_count += 1;
            fd_type::RECEIPT
        };
        let (fd, fiscal_sign) = self.add_document(doc_type, now, operation, total);
        self.receipts_in_shift += 1;
        self.receipts.push(RegisteredReceipt {
            fd,
            fiscal_sign,
            date_time: now,
            check_type: check.check_type,
            operation,
            total,
            payments,
            change,
            lines: check.lines,
            shift: self.shift_number,
            number_in_shift: self.receipts_in_shift,
            tax_system,
            tags: check.tags,
            correction: check.correction,
        });
        Ok((change, fd, fiscal_sign))
    }

    fn run(&mut self, cmd: &Command, op: u8, now: NaiveDateTime) -> Result<Vec<u8>, u8> {
        self.needs_paper(cmd)?;
        if self.ofd_blocked(now)
            && matches!(
                cmd,
                Command::OpenShift
                    | Command::OpenCheck(_)
                    | Command::Item(..)
                    | Command::ItemV2(_)
                    | Command::CloseCheck(_)
                    | Command::CloseV2(_)
            )
        {
            return Err(assumed::FN_OFD_WAIT_EXHAUSTED);
        }
        let mode = self.mode(now);
        match cmd {
            Command::ShortStatus => Ok(ShortStatus {
                operator: op,
                flags: self.flags(),
                mode,
                submode: self.submode(),
                operations_in_check: self.check.as_ref().map_or(0, |c| c.lines.len() as u16),
            }
            .encode()),
            Command::FullStatus => Ok(FullStatus {
                operator: op,
                firmware: *b"C2",
                firmware_build: 32_104,
                firmware_date: NaiveDate::from_ymd_opt(2021, 3, 4).expect("valid date"),
                document_number: self.document_number,
                flags: self.flags(),
                mode,
                submode: self.submode(),
                date_time: now,
                serial: self.config.serial,
                last_closed_shift: if self.shift_open() {
                    self.shift_number.saturating_sub(1)
                } else {
                    self.shift_number
                },
                inn: [0x07, 0x70, 0x12, 0x34, 0x56, 0x78],
            }
            .encode()),
            Command::Beep | Command::Cut { .. } | Command::PrintLine { .. } => Ok(vec![op]),
            Command::ContinuePrint => Ok(vec![op]),
            Command::OpenDrawer { drawer } => {
                if *drawer > 1 {
                    return Err(0x33);
                }
                Ok(vec![op])
            }
            Command::DeviceType => Ok(DeviceType {
                device_type: 0,
                subtype: 0,
                protocol: 1,
                subprotocol: 0,
                model: assumed::EMULATED_MODEL_NUMBER,
                language: 0,
                name: self.config.model_name.clone(),
            }
            .encode()),
            Command::OpenShift => {
                if self.check.is_some() {
                    return Err(0x4A);
                }
                if self.shift_open() {
                    return Err(assumed::SHIFT_ALREADY_OPEN);
                }
                self.shift_number += 1;
                self.shift_opened_at = Some(now);
                self.receipts_in_shift = 0;
                self.shift_payments = [0; 16];
                self.totals = ShiftTotals {
                    shift: self.shift_number,
                    ..ShiftTotals::default()
                };
                self.add_document(fd_type::SHIFT_OPEN, now, 0, 0);
                Ok(if assumed::OPEN_SHIFT_REPLY_HAS_OPERATOR {
                    vec![op]
                } else {
                    vec![]
                })
            }
            Command::XReport | Command::ZReport => {
                if self.check.is_some() {
                    return Err(0x4A);
                }
                if !self.shift_open() {
                    return Err(assumed::SHIFT_NOT_OPEN);
                }
                self.reports.push(ShiftReport {
                    z: *cmd == Command::ZReport,
                    totals: self.totals.clone(),
                    cash_in_drawer: self.cash_in_drawer,
                });
                if *cmd == Command::XReport {
                    self.x_reports += 1;
                } else {
                    self.add_document(fd_type::SHIFT_CLOSE, now, 0, 0);
                    self.shift_opened_at = None;
                    self.z_reports += 1;
                }
                Ok(vec![op])
            }
            Command::CashIn(sum) | Command::CashOut(sum) => {
                if self.check.is_some() {
                    return Err(0x4A);
                }
                self.shift_ok_for_sale(now)?;
                if *sum == 0 || *sum > MAX_U40 {
                    return Err(0x33);
                }
                if matches!(cmd, Command::CashOut(_)) {
                    if *sum > self.cash_in_drawer {
                        return Err(0x46);
                    }
                    self.cash_in_drawer -= sum;
                    self.totals.cash_out += sum;
                    self.totals.cash_out_count += 1;
                } else {
                    self.cash_in_drawer += sum;
                    self.totals.cash_in += sum;
                    self.totals.cash_in_count += 1;
                }
                self.document_number = self.document_number.wrapping_add(1);
                let mut p = vec![op];
                p.extend_from_slice(&self.document_number.to_le_bytes());
                Ok(p)
            }
            Command::OpenCheck(t) => {
                if self.check.is_some() {
                    return Err(0x4A);
                }
                self.shift_ok_for_sale(now)?;
                self.check = Some(OpenCheck {
                    check_type: *t,
                    lines: Vec::new(),
                    total: 0,
                    tags: std::mem::take(&mut self.pending_tags),
                    correction: false,
                });
                Ok(vec![op])
            }
            Command::OpenCorrection(t) => {
                if self.check.is_some() {
                    return Err(0x4A);
                }
                self.shift_ok_for_sale(now)?;
                self.check = Some(OpenCheck {
                    check_type: *t,
                    lines: Vec::new(),
                    total: 0,
                    tags: std::mem::take(&mut self.pending_tags),
                    correction: true,
                });
                Ok(vec![op])
            }
            Command::MoneyRegister(n) => {
                let v = match *n {
                    money_register::CASH_IN_DRAWER => self.cash_in_drawer,
                    money_register::CASH_IN_SHIFT => self.totals.cash_in,
                    money_register::CASH_OUT_SHIFT => self.totals.cash_out,
                    _ => 0,
                };
                let mut p = vec![op];
                p.extend_from_slice(&v.to_le_bytes()[..6]);
                Ok(p)
            }
            Command::OperationRegister(n) => {
                let v = match *n {
                    operation_register::CASH_INS_IN_SHIFT => self.totals.cash_in_count,
                    operation_register::CASH_OUTS_IN_SHIFT => self.totals.cash_out_count,
                    152 => self.document_number,
                    _ => 0,
                };
                let mut p = vec![op];
                p.extend_from_slice(&v.to_le_bytes());
                Ok(p)
            }
            Command::CheckMarking(c) => {
                let reply = local_marking_check(c);
                self.marking = Some(PendingCode {
                    code: c.code.clone(),
                    reply: reply.clone(),
                    decision: None,
                });
                Ok(reply.encode())
            }
            Command::AcceptMarking(action) => {
                if *action == 2 {
                    self.marking = None;
                    return Ok(vec![0]);
                }
                let pending = self.marking.as_mut().ok_or(0x33u8)?;
                if *action > 1 {
                    return Err(0x33);
                }
                pending.decision = Some(*action);
                // Tag 2106 in autonomous mode: the FN's own bits (b0, b1);
                // no ОИСМ answer (b2, b3 clear).
                Ok(vec![pending.reply.local_status & 0b11])
            }
            Command::BindMarking(code) => {
                let line = self
                    .check
                    .as_mut()
                    .and_then(|c| c.lines.last_mut())
                    .ok_or(0x55u8)?;
                let (accepted, result) = match &self.marking {
                    Some(p) if &p.code == code => {
                        if p.decision == Some(0) {
                            return Err(0x33);
                        }
                        (p.decision == Some(1), p.reply.local_status & 0b11)
                    }
                    _ => (false, 0),
                };
                line.marking.push(BoundCode {
                    code: code.clone(),
                    result_2106: result,
                    accepted,
                });
                self.marking = None;
                // ASSUMED reply: the «код товара» type 0x444D ("DM"), Data Matrix type 0 (КМ88).
                Ok(vec![0x4D, 0x44, 0])
            }
            Command::Item(t, item) => {
                self.shift_ok_for_sale(now)?;
                validate_item(item)?;
                let pending = &mut self.pending_tags;
                let check = self.check.get_or_insert_with(|| OpenCheck {
                    check_type: *t,
                    lines: Vec::new(),
                    total: 0,
                    tags: std::mem::take(pending),
                    correction: false,
                });
                if check.check_type != *t {
                    return Err(0x49);
                }
                let sum = item.sum();
                let total = check.total + sum;
                if total > MAX_U40 {
                    return Err(0x48);
                }
                if check.lines.len() >= 200 {
                    return Err(0x4B);
                }
                check.total = total;
                check.lines.push(ModelLine {
                    name: item.text.clone(),
                    quantity: item.quantity,
                    price: item.price,
                    sum,
                    tax_group: item.taxes[0],
                    tax_code: 0,
                    calculation_method: 0,
                    payment_subject: 0,
                    tags: Vec::new(),
                    marking: Vec::new(),
                });
                Ok(vec![op])
            }
            Command::ItemV2(item) => {
                self.shift_ok_for_sale(now)?;
                validate_item_v2(item)?;
                let t = match item.operation {
                    1 => CheckType::Sale,
                    2 => CheckType::ReturnSale,
                    3 => CheckType::Purchase,
                    _ => CheckType::ReturnPurchase,
                };
                let pending = &mut self.pending_tags;
                let check = self.check.get_or_insert_with(|| OpenCheck {
                    check_type: t,
                    lines: Vec::new(),
                    total: 0,
                    tags: std::mem::take(pending),
                    correction: false,
                });
                if check.check_type != t {
                    return Err(0x49);
                }
                let sum = item.sum();
                let total = check.total + sum;
                if total > MAX_U40 {
                    return Err(0x48);
                }
                if check.lines.len() >= 200 {
                    return Err(0x4B);
                }
                check.total = total;
                check.lines.push(ModelLine {
                    name: item.name.clone(),
                    quantity: item.quantity / 1000,
                    price: item.price,
                    sum,
                    tax_group: 0,
                    tax_code: item.tax_code,
                    calculation_method: item.calculation_method,
                    payment_subject: item.payment_subject,
                    tags: Vec::new(),
                    marking: Vec::new(),
                });
                Ok(vec![])
            }
            Command::WriteTlv(bytes) => {
                let t = one_tlv(bytes)?;
                match &mut self.check {
                    Some(check) => check.tags.push(t),
                    None => self.pending_tags.push(t),
                }
                Ok(vec![])
            }
            Command::WriteOperationTlv(bytes) => {
                let t = one_tlv(bytes)?;
                let line = self
                    .check
                    .as_mut()
                    .and_then(|c| c.lines.last_mut())
                    .ok_or(0x55u8)?;
                line.tags.push(t);
                Ok(vec![])
            }
            Command::ReadTable { table, row, field } => {
                if *table != assumed::RNM_TABLE || *row != 1 {
                    return Err(0x33);
                }
                let (text, width) = match *field {
                    1 => (self.config.serial.to_string(), 21),
                    2 => ("7701234567".to_string(), 17),
                    3 => (self.config.rnm.clone(), 21),
                    4 => (self.config.fn_number.clone(), 17),
                    _ => return Err(0x33),
                };
                let mut p = crate::devices::shtrih::command::encode_cp1251(&text);
                p.resize(width, 0);
                Ok(p)
            }
            Command::CloseV2(c) => {
                if c.payments.iter().any(|&p| p > MAX_U40) || c.rounding > 99 {
                    return Err(0x33);
                }
                if c.tax_system.count_ones() != 1 || c.tax_system > 0x20 {
                    return Err(0x33);
                }
                let (change, fd, fiscal_sign) = self.close(c.payments, c.tax_system, now)?;
                Ok(CloseV2Reply {
                    change,
                    fd,
                    fiscal_sign,
                    date_time: Some(now),
                }
                .encode())
            }
            Command::CloseCheck(c) => {
                let mut payments = [0u64; 16];
                payments[..4].copy_from_slice(&c.payments);
                let (change, _, _) = self.close(payments, 0, now)?;
                let mut p = vec![op];
                crate::devices::shtrih::command::put_u40(&mut p, change);
                Ok(p)
            }
            Command::CancelCheck => {
                if self.check.take().is_none() {
                    return Err(0x55);
                }
                self.cancelled += 1;
                Ok(vec![op])
            }
            Command::FnStatus => Ok(FnStatus {
                phase: 0x03,
                open_document: if self.check.is_some() { 0x04 } else { 0 },
                document_data: false,
                shift_open: self.shift_open(),
                warnings: self.fn_warnings(now),
                date_time: now,
                fn_number: self.config.fn_number.clone(),
                last_fd: self.last_fd(),
            }
            .encode()),
            Command::FnExpiry => Ok(FnExpiry {
                expires: *self
                    .fn_expires
                    .get_or_insert(now.date() + TimeDelta::days(assumed::EMULATED_FN_LIFE_DAYS)),
                reregistrations_left: 11,
                reregistrations_done: 1,
            }
            .encode()),
            Command::OfdStatus => {
                let oldest = self.oldest_unsent();
                Ok(OfdStatus {
                    // Link up; a message waiting when the queue is not empty.
                    exchange: 0x01 | if oldest.is_some() { 0x02 } else { 0 },
                    reading: false,
                    unsent: self.ofd_unsent().min(u32::from(u16::MAX)) as u16,
                    first_unsent: oldest.map_or(0, |(fd, _)| fd),
                    first_unsent_at: oldest.map(|(_, at)| at),
                }
                .encode())
            }
            Command::McStatus => Ok(self.mc_status().encode()),
            Command::FnMemory => Ok(FnMemory {
                documents_left: 250_000u32.saturating_sub(self.last_fd()),
                free_kb_30_days: 1_024,
            }
            .encode()),
            Command::FindDocument(fd) => {
                let doc = self.documents.iter().find(|d| d.fd == *fd).ok_or(0x08u8)?;
                let data = if matches!(doc.doc_type, fd_type::RECEIPT | fd_type::CORRECTION) {
                    FnReceiptData {
                        date_time: doc.date_time,
                        fd: doc.fd,
                        fiscal_sign: doc.fiscal_sign,
                        operation: doc.operation,
                        sum: doc.sum,
                    }
                    .encode()
                } else {
                    let mut d = Vec::new();
                    put_dt5(&mut d, doc.date_time);
                    d.extend_from_slice(&doc.fd.to_le_bytes());
                    d.extend_from_slice(&doc.fiscal_sign.to_le_bytes());
                    d.extend_from_slice(&doc.shift.to_le_bytes());
                    d
                };
                Ok(FnDocument {
                    doc_type: doc.doc_type,
                    ofd_acknowledged: doc.fd <= self.ofd_confirmed,
                    data,
                }
                .encode())
            }
            Command::ShiftParams => Ok(ShiftParams {
                open: self.shift_open(),
                shift_number: self.shift_number,
                receipt_number: self.receipts_in_shift,
            }
            .encode()),
        }
    }
}

/// The FN's own check of a code (FF61) in autonomous mode, as the emulator
/// plays it: a GS1 code carrying the crypto tail (AI 91 and 92 after a GS)
/// checks out (2004 = b0|b1); one whose AI 92 value starts with `BAD` fails
/// the signature (2004 = b0); one without the tail cannot be checked
/// (reason 3); anything else is a type the FN does not check (reason 1).
fn local_marking_check(c: &CheckMarking) -> MarkingCheckReply {
    let code = &c.code;
    let has = |ai: &[u8]| code.windows(3).position(|w| w[0] == 0x1D && &w[1..] == ai);
    let (status, reason) = match (has(b"91"), has(b"92")) {
        (Some(_), Some(p92)) if code[p92 + 3..].starts_with(b"BAD") => (0b01, 0),
        (Some(_), Some(_)) => (0b11, 0),
        _ if code.starts_with(b"01") => (0, 3),
        _ => (0, 1),
    };
    MarkingCheckReply {
        local_status: status,
        local_reason: reason,
        code_type: 0,
        server: None,
    }
}

fn validate_item(item: &ItemOp) -> Result<(), u8> {
    if item.quantity == 0 || item.quantity > MAX_U40 {
        return Err(0x62);
    }
    if item.price > MAX_U40 {
        return Err(0x61);
    }
    if item.department > 16 {
        return Err(0x63);
    }
    if item.taxes.iter().any(|&t| t > 4) {
        return Err(0x33);
    }
    Ok(())
}

/// FF46 checks (the vendor protocol, `shared/spec/shtrih-m-ffd12.md` §1): an
/// amount must be within ±1 kopeck of price × quantity; codes in range.
fn validate_item_v2(item: &ItemV2) -> Result<(), u8> {
    if !(1..=4).contains(&item.operation) {
        return Err(0x33);
    }
    if item.quantity == 0 || item.quantity > MAX_U40 * 1000 {
        return Err(0x62);
    }
    if item.price > MAX_U40 {
        return Err(0x61);
    }
    if item.department > 16 && item.department != 255 {
        return Err(0x63);
    }
    if item.amount != AMOUNT_NOT_GIVEN && item.amount.abs_diff(item.computed()) > 1 {
        return Err(0x33);
    }
    if assumed::vat_of_tax_code(item.tax_code).is_none()
        || !(1..=7).contains(&item.calculation_method)
        || !matches!(item.payment_subject, 1..=27 | 30..=33)
    {
        return Err(0x33);
    }
    Ok(())
}

/// Exactly one TLV, or a bad-parameter error.
fn one_tlv(bytes: &[u8]) -> Result<Tlv, u8> {
    match Tlv::parse_all(bytes) {
        Some(mut v) if v.len() == 1 => Ok(v.remove(0)),
        _ => Err(0x33),
    }
}

/// splitmix64: a fixed, seedable mix for serials and fiscal signs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::shtrih::command::{CloseCheck, decode_change};

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(14, 5, 0)
            .unwrap()
    }

    fn run(m: &mut RegisterModel, c: Command) -> Reply {
        run_at(m, c, now())
    }

    fn run_at(m: &mut RegisterModel, c: Command, t: NaiveDateTime) -> Reply {
        Reply::from_frame(&m.execute(&c.encode(1, 30), t)).unwrap()
    }

    fn sale(qty: u64, price: u64) -> Command {
        Command::Item(
            CheckType::Sale,
            ItemOp {
                quantity: qty,
                price,
                department: 1,
                taxes: [1, 0, 0, 0],
                text: "Хлеб".into(),
            },
        )
    }

    fn close(cash: u64, card: u64) -> Command {
        Command::CloseCheck(CloseCheck {
            payments: [cash, card, 0, 0],
            discount: 0,
            taxes: [0; 4],
            text: String::new(),
        })
    }

    #[test]
    fn ofd_queue_expiry_and_the_30_day_block() {
        let mut m = RegisterModel::new(ModelConfig::from_seed(7));
        assert_eq!(run(&mut m, Command::OpenShift).error, 0);
        // A fresh drive: 470 days, no warning flags, one document queued.
        let exp = FnExpiry::decode(&run(&mut m, Command::FnExpiry).payload).unwrap();
        assert_eq!(exp.expires, now().date() + TimeDelta::days(470));
        let q = OfdStatus::decode(&run(&mut m, Command::OfdStatus).payload).unwrap();
        assert_eq!(
            (q.unsent, q.first_unsent, q.first_unsent_at),
            (1, 1, Some(now()))
        );
        // The link drains it.
        m.drain_ofd();
        let q = OfdStatus::decode(&run(&mut m, Command::OfdStatus).payload).unwrap();
        assert_eq!((q.unsent, q.first_unsent_at), (0, None));
        // 30 days exactly still sells; a minute more and the drive refuses.
        m.set_ofd_backlog_age(now(), TimeDelta::days(30));
        assert_eq!(run(&mut m, Command::OpenCheck(CheckType::Sale)).error, 0);
        assert_eq!(run(&mut m, Command::CancelCheck).error, 0);
        let later = now() + TimeDelta::minutes(1);
        assert_eq!(
            run_at(&mut m, Command::OpenCheck(CheckType::Sale), later).error,
            assumed::FN_OFD_WAIT_EXHAUSTED
        );
        // Reports still run; once drained, sales go again.
        assert_eq!(run_at(&mut m, Command::XReport, later).error, 0);
        m.drain_ofd();
        assert_eq!(
            run_at(&mut m, Command::OpenCheck(CheckType::Sale), later).error,
            0
        );
        // Expiry flags: b1 within 30 days, b0 within 3.
        m.set_fn_expires(now().date() + TimeDelta::days(20));
        let w = |m: &mut RegisterModel| {
            FnStatus::decode(&run(m, Command::FnStatus).payload)
                .unwrap()
                .warnings
        };
        assert_eq!(w(&mut m), 0x02);
        m.set_fn_expires(now().date() + TimeDelta::days(2));
        assert_eq!(w(&mut m), 0x03);
        // The shift knob moves the opening document too.
        m.set_shift_age(now(), TimeDelta::hours(23));
        let doc = FnDocument::decode(&run(&mut m, Command::FindDocument(1)).payload).unwrap();
        assert_eq!(doc.doc_type, fd_type::SHIFT_OPEN);
        assert_eq!(
            crate::devices::shtrih::command::get_dt5(&doc.data[..5]),
            Some(now() - TimeDelta::hours(23))
        );
    }

    #[test]
    fn modes_follow_the_note_and_fds_run_in_sequence() {
        let mut m = RegisterModel::new(ModelConfig::from_seed(7));
        assert_eq!(m.mode(now()), 4);
        assert_eq!(run(&mut m, sale(1000, 100)).error, 0x3D);
        assert_eq!(run(&mut m, Command::OpenShift).error, 0);
        assert_eq!((m.mode(now()), m.last_fd(), m.shift_number()), (2, 1, 1));
        assert_eq!(
            run(&mut m, Command::OpenShift).error,
            assumed::SHIFT_ALREADY_OPEN
        );
        // 80 opens a sale check by itself.
        assert_eq!(run(&mut m, sale(2000, 15000)).error, 0);
        assert_eq!(m.mode(now()), 0x08);
        assert_eq!(run(&mut m, Command::OpenCheck(CheckType::Sale)).error, 0x4A);
        assert_eq!(run(&mut m, Command::ZReport).error, 0x4A);
        assert_eq!(run(&mut m, close(20000, 0)).error, 0x45);
        assert_eq!(run(&mut m, close(0, 40000)).error, 0x4D);
        let r = run(&mut m, close(50000, 0));
        assert_eq!(r.error, 0);
        assert_eq!(decode_change(&r.payload).unwrap(), 20000);
        assert_eq!((m.mode(now()), m.last_fd()), (2, 2));
        assert_eq!(m.cash_in_drawer(), 30000);
        let rc = m.receipts()[0].clone();
        assert_eq!(
            (rc.fd, rc.total, rc.change, rc.operation),
            (2, 30000, 20000, 1)
        );
        assert_eq!(
            rc.fiscal_sign,
            RegisterModel::new(ModelConfig::from_seed(7)).fiscal_sign(2)
        );
        assert_ne!(
            rc.fiscal_sign,
            RegisterModel::new(ModelConfig::from_seed(8)).fiscal_sign(2)
        );

        // A return check, then a cancelled one.
        assert_eq!(
            run(&mut m, Command::OpenCheck(CheckType::ReturnSale)).error,
            0
        );
        assert_eq!(m.mode(now()), 0x28);
        assert_eq!(run(&mut m, sale(1000, 100)).error, 0x49);
        assert_eq!(run(&mut m, Command::CancelCheck).error, 0);
        assert_eq!(run(&mut m, Command::CancelCheck).error, 0x55);
        assert_eq!((m.cancelled(), m.last_fd()), (1, 2));

        // The FN answers for the receipt.
        let fns = FnStatus::decode(&run(&mut m, Command::FnStatus).payload).unwrap();
        assert_eq!(fns.last_fd, 2);
        let doc = FnDocument::decode(&run(&mut m, Command::FindDocument(2)).payload).unwrap();
        let data = doc.receipt().unwrap().unwrap();
        assert_eq!(
            (data.fd, data.sum, data.fiscal_sign),
            (2, 30000, rc.fiscal_sign)
        );
        assert_eq!(run(&mut m, Command::FindDocument(99)).error, 0x08);

        assert_eq!(run(&mut m, Command::ZReport).error, 0);
        assert_eq!((m.mode(now()), m.last_fd(), m.z_reports()), (4, 3, 1));
        assert_eq!(run(&mut m, Command::ZReport).error, 0x3D);
    }

    #[test]
    fn paper_out_refuses_printing_and_a_long_shift_expires() {
        let mut m = RegisterModel::new(ModelConfig::from_seed(1));
        run(&mut m, Command::OpenShift);
        m.set_paper_out(true);
        let s = ShortStatus::decode(&run(&mut m, Command::ShortStatus).payload).unwrap();
        assert_eq!(s.submode, 1);
        assert_eq!(s.flags & flags::RECEIPT_ROLL, 0);
        assert_eq!(run(&mut m, Command::OpenCheck(CheckType::Sale)).error, 0x6B);
        m.set_paper_out(false);
        let later = now() + TimeDelta::hours(25);
        assert_eq!(m.mode(later), 3);
        assert_eq!(run_at(&mut m, sale(1000, 1), later).error, 0x4E);
        assert_eq!(run_at(&mut m, Command::ZReport, later).error, 0);
    }

    #[test]
    fn bad_requests_get_error_codes() {
        let mut m = RegisterModel::new(ModelConfig::from_seed(1));
        let r = Reply::from_frame(&m.execute(&Command::ShortStatus.encode(77, 77), now())).unwrap();
        assert_eq!(r.error, 0x4F);
        let r = Reply::from_frame(&m.execute(&Frame::new(0x99, vec![1, 0, 0, 0]), now())).unwrap();
        assert_eq!(r.error, 0x37);
        let r =
            Reply::from_frame(&m.execute(&Frame::new(0x80, vec![1, 0, 0, 0, 1]), now())).unwrap();
        assert_eq!(r.error, 0x33);
        let dt = DeviceType::decode(&run(&mut m, Command::DeviceType).payload).unwrap();
        assert!(dt.name.contains("М-01Ф"));
    }
}
