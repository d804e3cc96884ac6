//! The host-side driver: a thin loop that runs [`HostLink`] exchanges over a
//! [`Port`] and turns replies into typed results. The only code here that
//! touches I/O; everything it decides comes from the pure modules.

use super::assumed;
use super::command::{
    self, CheckType, Command, DeviceType, FnDocument, FnStatus, FullStatus, Reply, ShiftParams,
    ShortStatus, decode_change, flags,
};
use super::error::ShtrihError;
use super::frame::Frame;
use super::link::{HostLink, LinkLimits, Then};
use super::plan::plan_receipt;
use crate::devices::port::{Port, PortError};
use crate::domain::fiscal::FiscalAttributes;
use crate::domain::money::Money;
use crate::domain::receipt::Receipt;
use chrono::NaiveDateTime;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct RegisterOptions {
    /// Cashier (operator 1 by default).
    pub password: u32,
    /// System administrator (operator 30 by default).
    pub admin_password: u32,
    /// Wait for the first byte of an answer.
    pub reply_timeout: Duration,
    /// Wait between two bytes of one frame.
    pub byte_timeout: Duration,
    /// Whole exchanges retried after a link failure (not after a hang-up or
    /// a device error). Only for commands that are safe to repeat.
    pub retries: u32,
    /// How long to wait for the register to finish printing (submode 4/5)
    /// before a printing command.
    pub print_wait: Duration,
}

impl Default for RegisterOptions {
    fn default() -> RegisterOptions {
        RegisterOptions {
            password: 1,
            admin_password: 30,
            reply_timeout: Duration::from_secs(3),
            byte_timeout: Duration::from_millis(100),
            retries: 2,
            print_wait: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftState {
    Closed,
    Open,
    /// Open for more than 24 hours: only a Z report is allowed.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterStatus {
    /// Full mode byte (high nibble = check type in mode 8).
    pub mode: u8,
    pub submode: u8,
    pub shift: ShiftState,
    pub document_open: bool,
    /// The check type when a document is open.
    pub check_type: Option<CheckType>,
    pub paper_out: bool,
    pub cover_open: bool,
    pub drawer_open: bool,
    pub last_fd: u32,
    pub fn_number: String,
    pub serial: String,
    /// The current shift if open, else the last closed one.
    pub shift_number: u32,
    /// Receipts closed in the current shift (ASSUMED meaning of FF40).
    pub receipts_in_shift: u32,
    /// Through document number (u16 on the wire).
    pub document_number: u32,
    pub date_time: NaiveDateTime,
    pub fn_shift_open: bool,
    /// The registration number from table 18 (`None` when the register
    /// could not answer it).
    pub rnm: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedReceipt {
    pub fd: u32,
    pub fiscal_sign: u32,
    pub date_time: NaiveDateTime,
    /// 1 income, 2 return of income, 3 expense, 4 return of expense.
    pub operation: u8,
    pub total: Money,
    /// A correction receipt (FFD document type 31).
    pub correction: bool,
}

impl ClosedReceipt {
    /// Fiscal attributes from this receipt and a status read right after it.
    /// The KKT registration number is the RNM read from table 18; only when
    /// that failed, [`assumed::kkt_reg_id`].
    pub fn fiscal_attributes(&self, status: &RegisterStatus) -> FiscalAttributes {
        FiscalAttributes {
            fiscal_document_number: u64::from(self.fd),
            fiscal_sign: self.fiscal_sign.to_string(),
            fiscal_drive_number: status.fn_number.clone(),
            kkt_reg_id: status
                .rnm
                .clone()
                .unwrap_or_else(|| assumed::kkt_reg_id(&status.serial)),
            shift_number: u64::from(status.shift_number),
            receipt_number_in_shift: u64::from(status.receipts_in_shift),
            date_time: self.date_time,
            ofd_receipt_url: None,
        }
    }

    /// The receipt a fiscal document stands for; `None` if it is not a receipt.
    pub fn from_document(doc: &FnDocument) -> Result<Option<ClosedReceipt>, ShtrihError> {
        let Some(data) = doc.receipt() else {
            return Ok(None);
        };
        let data = data.map_err(|e| ShtrihError::Protocol(e.to_string()))?;
        Ok(Some(ClosedReceipt {
            fd: data.fd,
            fiscal_sign: data.fiscal_sign,
            date_time: data.date_time,
            operation: data.operation,
            total: Money(data.sum as i64),
            correction: doc.doc_type == command::fd_type::CORRECTION,
        }))
    }
}

fn port_error(e: PortError) -> ShtrihError {
    match e {
        PortError::Hangup(m) => ShtrihError::Hangup(m),
        PortError::Open { path, message } => {
            ShtrihError::Hangup(format!("{}: {message}", path.display()))
        }
        PortError::Timeout(t) => ShtrihError::Link(format!("write timed out after {t:?}")),
        e @ PortError::NoReadBack(_) => ShtrihError::Link(e.to_string()),
    }
}

/// A Shtrih-M register on a port.
pub struct Register {
    port: Box<dyn Port>,
    opts: RegisterOptions,
    round_trips: u64,
    /// The RNM once read (`Some(None)`: the register cannot tell it).
    rnm: Option<Option<String>>,
}

impl Register {
    pub fn new(port: Box<dyn Port>, opts: RegisterOptions) -> Register {
        Register {
            port,
            opts,
            round_trips: 0,
            rnm: None,
        }
    }

    /// Swaps in a freshly opened port (after a hang-up); counters are kept.
    pub fn replace_port(&mut self, port: Box<dyn Port>) {
        self.port = port;
        // Another register may be on the cable now.
        self.rnm = None;
    }

    /// Commands exchanged so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    fn limits(&self) -> LinkLimits {
        LinkLimits {
            reply_timeout: self.opts.reply_timeout,
            byte_timeout: self.opts.byte_timeout,
            ..LinkLimits::default()
        }
    }

    /// One exchange: the frame out, the reply frame back.
    fn exchange(&mut self, frame: &Frame) -> Result<Frame, ShtrihError> {
        let (mut link, mut step) = HostLink::start(frame, self.limits());
        let write_timeout = self.opts.reply_timeout;
        let mut buf = [0u8; 256];
        loop {
            if step.discard {
                self.port.discard_input().map_err(port_error)?;
            }
            if !step.write.is_empty() {
                self.port
                    .write_all(&step.write, write_timeout)
                    .map_err(port_error)?;
            }
            match step.then {
                Then::Done(reply) => {
                    self.round_trips += 1;
                    return Ok(reply);
                }
                Then::Failed(f) => return Err(ShtrihError::Link(f.to_string())),
                Then::Wait(t) => {
                    step = match self.port.read(&mut buf, t) {
                        Ok(n) => link.on_bytes(&buf[..n]),
                        Err(PortError::Timeout(_)) => link.on_timeout(),
                        Err(e) => return Err(port_error(e)),
                    };
                }
            }
        }
    }

    /// Sends `cmd` once and returns the reply payload (after ERR), or the
    /// device's error.
    fn send_once(&mut self, cmd: &Command) -> Result<Vec<u8>, ShtrihError> {
        let code = cmd.code();
        let frame = self.exchange(&cmd.encode(self.opts.password, self.opts.admin_password))?;
        let reply = Reply::from_frame(&frame)
            .ok_or_else(|| ShtrihError::Protocol(format!("empty reply to 0x{code:02X}")))?;
        if reply.command != code {
            return Err(ShtrihError::Protocol(format!(
                "reply to 0x{:02X} arrived for command 0x{code:02X}",
                reply.command
            )));
        }
        if reply.error != 0 {
            return Err(ShtrihError::device(code, reply.error));
        }
        Ok(reply.payload)
    }

    /// Sends a command that is safe to repeat (a query), retrying link failures.
    fn query(&mut self, cmd: &Command) -> Result<Vec<u8>, ShtrihError> {
        let mut tries = 0;
        loop {
            match self.send_once(cmd) {
                Err(e) if e.is_link() && tries < self.opts.retries => tries += 1,
                r => return r,
            }
        }
    }

    /// Sends a command with an effect: never repeated here, because after a
    /// link failure it may have executed. Printing commands first wait, as
    /// pyshtrih does, for the printer to be idle — but paper out is an error,
    /// not a wait.
    fn act(&mut self, cmd: &Command) -> Result<Vec<u8>, ShtrihError> {
        if cmd.prints() {
            self.wait_printer(cmd.code())?;
        }
        self.send_once(cmd)
    }

    fn wait_printer(&mut self, code: u16) -> Result<(), ShtrihError> {
        let deadline = Instant::now() + self.opts.print_wait;
        loop {
            let s = ShortStatus::decode(&self.query(&Command::ShortStatus)?)
                .map_err(|e| ShtrihError::Protocol(e.to_string()))?;
            match s.submode {
                0 => return Ok(()),
                1 | 2 => return Err(ShtrihError::device(code, 0x6B)),
                3 => {
                    self.send_once(&Command::ContinuePrint)?;
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(ShtrihError::device(code, 0x50));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn decode<T>(r: Result<T, command::ReplyError>) -> Result<T, ShtrihError> {
        r.map_err(|e| ShtrihError::Protocol(e.to_string()))
    }

    /// 0xFC.
    pub fn device_type(&mut self) -> Result<DeviceType, ShtrihError> {
        let p = self.query(&Command::DeviceType)?;
        Self::decode(DeviceType::decode(&p))
    }

    /// 0x10: mode and submode, cheaply.
    pub fn short_status(&mut self) -> Result<ShortStatus, ShtrihError> {
        let p = self.query(&Command::ShortStatus)?;
        Self::decode(ShortStatus::decode(&p))
    }

    /// 0x11 + 0xFF01 + 0xFF40.
    pub fn status(&mut self) -> Result<RegisterStatus, ShtrihError> {
        let full = Self::decode(FullStatus::decode(&self.query(&Command::FullStatus)?))?;
        let fns = Self::decode(FnStatus::decode(&self.query(&Command::FnStatus)?))?;
        let shift = Self::decode(ShiftParams::decode(&self.query(&Command::ShiftParams)?))?;
        let mode = full.mode & 0x0F;
        Ok(RegisterStatus {
            mode: full.mode,
            submode: full.submode,
            shift: match mode {
                3 => ShiftState::Expired,
                4 => ShiftState::Closed,
                _ if shift.open || fns.shift_open => ShiftState::Open,
                2 | 8 => ShiftState::Open,
                _ => ShiftState::Closed,
            },
            document_open: mode == 8,
            check_type: (mode == 8)
                .then(|| CheckType::from_u8(full.mode >> 4))
                .flatten(),
            paper_out: matches!(full.submode, 1 | 2) || full.flags & flags::RECEIPT_ROLL == 0,
            cover_open: full.flags & flags::COVER_OPEN != 0,
            drawer_open: full.flags & flags::DRAWER_OPEN != 0,
            last_fd: fns.last_fd,
            fn_number: fns.fn_number,
            serial: full.serial.to_string(),
            shift_number: u32::from(shift.shift_number),
            receipts_in_shift: u32::from(shift.receipt_number),
            document_number: u32::from(full.document_number),
            date_time: full.date_time,
            fn_shift_open: fns.shift_open,
            rnm: self.rnm()?,
        })
    }

    /// 0x1F: one table field, raw.
    pub fn read_table(&mut self, table: u8, row: u16, field: u8) -> Result<Vec<u8>, ShtrihError> {
        self.query(&Command::ReadTable { table, row, field })
    }

    /// The registration number (tag 1037) from table 18, read once per
    /// connection. A register that refuses the read answers `None` (and
    /// the fallback of [`assumed::kkt_reg_id`] is used); a link failure is
    /// an error and the read is tried again next time.
    pub fn rnm(&mut self) -> Result<Option<String>, ShtrihError> {
        if let Some(rnm) = &self.rnm {
            return Ok(rnm.clone());
        }
        let rnm = match self.read_table(assumed::RNM_TABLE, assumed::RNM_ROW, assumed::RNM_FIELD) {
            Ok(raw) => {
                let text = command::decode_text(&raw);
                let text = text.trim();
                (!text.is_empty()).then(|| text.to_string())
            }
            Err(ShtrihError::Device { code, .. }) => {
                tracing::warn!(
                    code,
                    "register: table 18 (RNM) cannot be read; using the serial"
                );
                None
            }
            Err(e) => return Err(e),
        };
        self.rnm = Some(rnm.clone());
        Ok(rnm)
    }

    /// 0xE0.
    pub fn open_shift(&mut self) -> Result<(), ShtrihError> {
        self.act(&Command::OpenShift).map(drop)
    }

    /// Registers `r`: the planned commands, then the FD and fiscal sign read
    /// back (FF01, FF0A). If the check fails part-way it is cancelled (0x88)
    /// and the first error returned. After a hang-up or link failure nothing
    /// is cancelled or repeated: reconcile with [`Register::last_receipt`].
    pub fn register_receipt(&mut self, r: &Receipt) -> Result<ClosedReceipt, ShtrihError> {
        let plan = plan_receipt(r)?;
        let (open, rest) = plan.split_first().expect("a plan opens a check");
        let status = self.short_status()?;
        if status.mode & 0x0F == 8 {
            return Err(ShtrihError::device(open.code(), 0x4A));
        }
        self.act(open)?;
        for cmd in rest {
            let result = self.act(cmd);
            if let (Ok(p), Command::CheckMarking(_)) = (&result, cmd) {
                let reply = Self::decode(command::MarkingCheckReply::decode(p))?;
                if let Some(why) = reply.refusal() {
                    // Reject the code, then undo the check: nothing registered.
                    let _ = self.act(&Command::AcceptMarking(0));
                    let _ = self.cancel_check();
                    return Err(ShtrihError::MarkingRefused(why));
                }
            }
            if let Err(e) = result {
                if matches!(e, ShtrihError::Device { .. }) {
                    // The check is open and nothing fiscal happened: undo it.
                    let _ = self.cancel_check();
                }
                return Err(e);
            }
        }
        let closed = self.last_receipt()?.ok_or_else(|| {
            ShtrihError::Protocol(
                "the check closed but the last FN document is not a receipt".into(),
            )
        })?;
        if closed.total != r.total {
            return Err(ShtrihError::Protocol(format!(
                "the register booked {} for a receipt of {}",
                closed.total, r.total
            )));
        }
        Ok(closed)
    }

    /// 0x85 alone, for callers driving a check by hand: returns the change.
    pub fn close_check(&mut self, c: command::CloseCheck) -> Result<Money, ShtrihError> {
        let p = self.act(&Command::CloseCheck(c))?;
        Ok(Money(Self::decode(decode_change(&p))? as i64))
    }

    /// 0x88.
    pub fn cancel_check(&mut self) -> Result<(), ShtrihError> {
        self.act(&Command::CancelCheck).map(drop)
    }

    /// The last FN document, if it is a receipt (FF01, then FF0A).
    pub fn last_receipt(&mut self) -> Result<Option<ClosedReceipt>, ShtrihError> {
        let fns = Self::decode(FnStatus::decode(&self.query(&Command::FnStatus)?))?;
        if fns.last_fd == 0 {
            return Ok(None);
        }
        match self.find_document(fns.last_fd)? {
            Some(doc) => ClosedReceipt::from_document(&doc),
            None => Ok(None),
        }
    }

    /// 0xFF0A; `None` when the FN has no such document.
    pub fn find_document(&mut self, fd: u32) -> Result<Option<FnDocument>, ShtrihError> {
        match self.query(&Command::FindDocument(fd)) {
            Ok(p) => Self::decode(FnDocument::decode(&p)).map(Some),
            Err(ShtrihError::Device { code: 0x08, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// 0xFF03: the drive's expiry date and re-registrations.
    pub fn fn_expiry(&mut self) -> Result<command::FnExpiry, ShtrihError> {
        Self::decode(command::FnExpiry::decode(&self.query(&Command::FnExpiry)?))
    }

    /// 0xFF39: the OFD exchange queue.
    pub fn ofd_status(&mut self) -> Result<command::OfdStatus, ShtrihError> {
        Self::decode(command::OfdStatus::decode(
            &self.query(&Command::OfdStatus)?,
        ))
    }

    /// 0xFF70: the marking-code state and the ОИСМ notification queue.
    pub fn mc_status(&mut self) -> Result<command::McStatus, ShtrihError> {
        Self::decode(command::McStatus::decode(&self.query(&Command::McStatus)?))
    }

    /// 0xFF63: the drive's memory resource.
    pub fn fn_memory(&mut self) -> Result<command::FnMemory, ShtrihError> {
        Self::decode(command::FnMemory::decode(&self.query(&Command::FnMemory)?))
    }

    /// 0xFF01 warning flags.
    pub fn fn_warnings(&mut self) -> Result<u8, ShtrihError> {
        Ok(Self::decode(FnStatus::decode(&self.query(&Command::FnStatus)?))?.warnings)
    }

    /// When the open shift was opened: its «открытие смены» document (FF0A
    /// type 2, DATE_TIME first), looked for backwards from `last_fd` over at
    /// most `within` documents. `None` when not found that far back.
    pub fn shift_opened_at(
        &mut self,
        last_fd: u32,
        within: u32,
    ) -> Result<Option<NaiveDateTime>, ShtrihError> {
        let stop = last_fd.saturating_sub(within);
        let mut fd = last_fd;
        while fd > stop {
            if let Some(doc) = self.find_document(fd)?
                && doc.doc_type == command::fd_type::SHIFT_OPEN
                && doc.data.len() >= 5
            {
                return Ok(command::get_dt5(&doc.data[..5]));
            }
            fd -= 1;
        }
        Ok(None)
    }

    pub fn x_report(&mut self) -> Result<(), ShtrihError> {
        self.act(&Command::XReport).map(drop)
    }

    pub fn z_report(&mut self) -> Result<(), ShtrihError> {
        self.act(&Command::ZReport).map(drop)
    }

    pub fn cash_in(&mut self, m: Money) -> Result<(), ShtrihError> {
        self.act(&Command::CashIn(money_u40(m)?)).map(drop)
    }

    pub fn cash_out(&mut self, m: Money) -> Result<(), ShtrihError> {
        self.act(&Command::CashOut(money_u40(m)?)).map(drop)
    }

    /// 0x1A: a money register (6 bytes after the operator byte).
    pub fn money_register(&mut self, n: u8) -> Result<u64, ShtrihError> {
        let p = self.query(&Command::MoneyRegister(n))?;
        if p.len() < 7 {
            return Err(ShtrihError::Protocol(format!(
                "money register {n}: {} bytes",
                p.len()
            )));
        }
        let mut v = [0u8; 8];
        v[..6].copy_from_slice(&p[1..7]);
        Ok(u64::from_le_bytes(v))
    }

    /// 0x1B: an operation register (u16 after the operator byte).
    pub fn operation_register(&mut self, n: u8) -> Result<u16, ShtrihError> {
        let p = self.query(&Command::OperationRegister(n))?;
        if p.len() < 3 {
            return Err(ShtrihError::Protocol(format!(
                "operation register {n}: {} bytes",
                p.len()
            )));
        }
        Ok(u16::from_le_bytes([p[1], p[2]]))
    }

    /// 0x17 on the receipt tape; text beyond the field is cut.
    pub fn print_line(&mut self, text: &str) -> Result<(), ShtrihError> {
        self.act(&Command::PrintLine {
            journal: false,
            receipt: true,
            text: text.to_string(),
        })
        .map(drop)
    }

    pub fn cut(&mut self, partial: bool) -> Result<(), ShtrihError> {
        self.act(&Command::Cut { partial }).map(drop)
    }

    pub fn open_drawer(&mut self, drawer: u8) -> Result<(), ShtrihError> {
        self.act(&Command::OpenDrawer { drawer }).map(drop)
    }

    pub fn beep(&mut self) -> Result<(), ShtrihError> {
        self.query(&Command::Beep).map(drop)
    }
}

fn money_u40(m: Money) -> Result<u64, ShtrihError> {
    u64::try_from(m.minor())
        .ok()
        .filter(|&v| v > 0 && v <= command::MAX_U40)
        .ok_or_else(|| ShtrihError::Protocol(format!("amount {m} is out of the register's range")))
}
