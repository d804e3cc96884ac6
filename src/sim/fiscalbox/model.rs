//! The pure FiscalBox model: a fiscal module with its receipt counter and
//! accumulators, shifts and Z reports, the order memory `/order/last/`
//! reads, and the payment providers and card terminals behind the box.
//!
//! No I/O, no clock: every call that needs the time is given it. Shapes,
//! codes and units come from [`crate::fiscalbox::facts`].

use crate::fiscalbox::facts::{
    self, Accumulator, CardPayment, CardTerminal, Code, Confirm, ErrorBody, FiscalData,
    FiscalModuleCode, Info, OneQrCreate, OrderRequest, Provider, ProviderPayment, QrPay,
    ReceiptType, ZReport,
};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// What the simulated box is.
#[derive(Clone, Debug)]
pub struct BoxConfig {
    pub terminal_id: String,
    pub applet_version: String,
    pub cashbox_number: i64,
    pub cash_desc_serial: String,
    pub receipt_max_count: i64,
    pub zreport_max_count: i64,
    /// Seeds fiscal signs and payment ids.
    pub seed: u64,
}

impl Default for BoxConfig {
    fn default() -> Self {
        BoxConfig {
            terminal_id: "UZ170703100189".into(),
            applet_version: "0300".into(),
            cashbox_number: 1,
            cash_desc_serial: "FB-SIM-0001".into(),
            receipt_max_count: 100_000,
            zreport_max_count: 1_000,
            seed: 1,
        }
    }
}

/// Everything the box did, for tests to prove "exactly once".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxCounters {
    /// Sale receipts (order, prepaid, credit) written to the fiscal module.
    pub sales_created: u64,
    /// Refund receipts written to the fiscal module.
    pub refunds_created: u64,
    /// `order/create|refuse` with a `uuid` the box already fiscalized:
    /// answered with the stored receipt, nothing written.
    pub uuid_repeats: u64,
    /// Receipts per `uuid` (a value above 1 would be a double).
    pub receipts_per_uuid_max: u64,
    pub shifts_opened: u64,
    pub shifts_closed: u64,
    pub x_reports: u64,
    pub payments: u64,
    /// First confirm of a payment.
    pub confirms_delivered: u64,
    /// A confirm of a payment already confirmed.
    pub confirm_repeats: u64,
    pub card_payments: u64,
    pub drawer_opens: u64,
    pub banners_printed: u64,
    pub reprints: u64,
    /// Error replies by code.
    pub errors: BTreeMap<i64, u64>,
}

#[derive(Clone, Debug)]
struct StoredOrder {
    order: OrderRequest,
    fiscal: FiscalData,
    is_refund: bool,
    cash: i64,
    card: i64,
    vat: i64,
}

#[derive(Clone, Debug, Default)]
struct Totals {
    sale_cash: i64,
    sale_card: i64,
    sale_vat: i64,
    refund_cash: i64,
    refund_card: i64,
    refund_vat: i64,
    sale_count: i64,
    refund_count: i64,
}

#[derive(Clone, Debug)]
struct Shift {
    number: i64,
    open_time: String,
    first_seq: i64,
    last_seq: i64,
    totals: Totals,
}

#[derive(Clone, Debug)]
struct PaymentRecord {
    provider: Provider,
    amount: i64,
    confirmed: u64,
}

/// The simulated box.
#[derive(Debug)]
pub struct BoxModel {
    config: BoxConfig,
    rng: u64,
    receipt_seq: i64,
    shift: Option<Shift>,
    zreports: Vec<ZReport>,
    orders: Vec<StoredOrder>,
    by_uuid: HashMap<String, usize>,
    lifetime: Totals,
    payments: HashMap<String, PaymentRecord>,
    card_slips: Vec<(CardTerminal, i64, String)>,
    qr_pay: HashMap<String, i64>,
    one_qr: HashMap<String, (String, i64)>,
    last_operation_time: String,
    refuse_refunds: bool,
    counters: BoxCounters,
}

impl BoxModel {
    pub fn new(config: BoxConfig) -> BoxModel {
        BoxModel {
            rng: config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            config,
            receipt_seq: 0,
            shift: None,
            zreports: Vec::new(),
            orders: Vec::new(),
            by_uuid: HashMap::new(),
            lifetime: Totals::default(),
            payments: HashMap::new(),
            card_slips: Vec::new(),
            qr_pay: HashMap::new(),
            one_qr: HashMap::new(),
            last_operation_time: String::new(),
            refuse_refunds: false,
            counters: BoxCounters::default(),
        }
    }

    pub fn config(&self) -> &BoxConfig {
        &self.config
    }

    pub fn counters(&self) -> &BoxCounters {
        &self.counters
    }

    /// The sales the billing sees for `[start, end]` (the box's local
    /// time): each sale's time and amount (cash + card, tiyin), in order.
    pub fn billing_orders(
        &self,
        start: chrono::NaiveDateTime,
        end: chrono::NaiveDateTime,
    ) -> Vec<(chrono::NaiveDateTime, i64)> {
        self.orders
            .iter()
            .filter(|o| !o.is_refund || facts::BILLING_COUNTS_REFUNDS)
            .filter_map(|o| {
                let t = chrono::NaiveDateTime::parse_from_str(
                    &o.fiscal.date_time,
                    facts::RECEIPT_TIME_FORMAT,
                )
                .ok()?;
                (t >= start && t <= end).then_some((t, o.cash + o.card))
            })
            .collect()
    }

    /// Fault: refunds are refused (65275) while set.
    pub fn set_refuse_refunds(&mut self, on: bool) {
        self.refuse_refunds = on;
    }

    /// Fault: the shift is gone (as after the box was off past its 24 h), so
    /// the next sale answers 0x902D. Its receipts stay counted in no Z report.
    pub fn drop_shift(&mut self) {
        self.shift = None;
    }

    pub fn shift_open(&self) -> bool {
        self.shift.is_some()
    }

    /// How many receipts the box wrote for each `uuid` it saw.
    pub fn receipts_for_uuid(&self, uuid: &str) -> usize {
        self.orders
            .iter()
            .filter(|o| o.order.uuid.as_deref() == Some(uuid))
            .count()
    }

    pub fn closed_zreports(&self) -> &[ZReport] {
        &self.zreports
    }

    /// A fresh billing token's bits.
    pub fn next_billing_token(&mut self) -> u128 {
        (u128::from(self.next_rand()) << 64) | u128::from(self.next_rand())
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: reproducible, good enough for ids and signs.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fail(&mut self, code: Code, data: Value) -> ErrorBody {
        *self.counters.errors.entry(code.value()).or_default() += 1;
        ErrorBody::new(code, data)
    }

    fn invalid(&mut self, fields: Vec<(String, String)>) -> ErrorBody {
        *self
            .counters
            .errors
            .entry(Code::Validation.value())
            .or_default() += 1;
        ErrorBody::validation(&fields)
    }

    /// `/order/create/` (`refund = false`) and `/order/refuse/` (`true`).
    pub fn order(
        &mut self,
        req: &OrderRequest,
        refund: bool,
        now: NaiveDateTime,
    ) -> Result<FiscalData, ErrorBody> {
        if let Some(uuid) = &req.uuid
            && let Some(&i) = self.by_uuid.get(uuid)
        {
            self.counters.uuid_repeats += 1;
            return Ok(self.orders[i].fiscal.clone());
        }
        let mut bad = Vec::new();
        if req.products.is_empty() {
            bad.push(("products".into(), "This field is required.".into()));
        }
        for (i, p) in req.products.iter().enumerate() {
            match &p.class_code {
                Some(c) if c.len() == 17 && c.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => bad.push((
                    format!("products.{i}.class_code"),
                    "Dobavьte IKPU(MXIK): 17 digits".into(),
                )),
            }
            if p.amount.is_none_or(|a| a <= 0) {
                bad.push((format!("products.{i}.amount"), "must be positive".into()));
            }
            if p.price.is_none() {
                bad.push((
                    format!("products.{i}.price"),
                    "This field is required.".into(),
                ));
            }
        }
        let time = req.time.as_deref().and_then(|t| {
            NaiveDateTime::parse_from_str(t, facts::REQUEST_TIME_FORMAT)
                .ok()
                .map(|d| (t, d))
        });
        if time.is_none() {
            bad.push(("time".into(), "yyyy-MM-dd HH:mm:ss".into()));
        }
        if refund && req.qr_code.is_none() {
            bad.push(("qr_code".into(), "This field is required.".into()));
        }
        if !bad.is_empty() {
            return Err(self.invalid(bad));
        }
        let (_, when) = time.expect("checked above");
        if self.shift.is_none() {
            return Err(self.fail(
                Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen),
                Value::Null,
            ));
        }
        let cash = req.received_cash.unwrap_or(0) - req.change.unwrap_or(0);
        let card = req.received_card.unwrap_or(0);
        let vat: i64 = req.products.iter().map(|p| p.vat.unwrap_or(0)).sum();
        if refund {
            let known = req.qr_code.as_deref().is_some_and(|qr| {
                self.orders
                    .iter()
                    .any(|o| !o.is_refund && o.fiscal.qr_url == qr)
            });
            if self.refuse_refunds || !known {
                return Err(self.fail(
                    Code::NotValidRefundInfo,
                    Value::String("refund info is not valid".into()),
                ));
            }
            let l = &self.lifetime;
            if cash > l.sale_cash - l.refund_cash {
                return Err(self.fail(
                    Code::FiscalModule(FiscalModuleCode::NotEnoughCashForRefund),
                    Value::Null,
                ));
            }
            if card > l.sale_card - l.refund_card {
                return Err(self.fail(
                    Code::FiscalModule(FiscalModuleCode::NotEnoughCardForRefund),
                    Value::Null,
                ));
            }
            if vat > l.sale_vat - l.refund_vat {
                return Err(self.fail(
                    Code::FiscalModule(FiscalModuleCode::NotEnoughVatForRefund),
                    Value::Null,
                ));
            }
        }
        // The fiscal module writes the receipt.
        self.receipt_seq += 1;
        let seq = self.receipt_seq;
        let date_time = when.format(facts::RECEIPT_TIME_FORMAT).to_string();
        let sign = format!("{:012}", self.next_rand() % 1_000_000_000_000);
        let qr_url = facts::soliq_qr_url(&self.config.terminal_id, seq, &date_time, &sign);
        let fiscal = FiscalData {
            terminal_id: self.config.terminal_id.clone(),
            receipt_count: seq,
            date_time,
            fiscal_sign: sign,
            applet_version: self.config.applet_version.clone(),
            qr_url,
            cash_box_number: Some(json!(self.config.cashbox_number)),
        };
        let shift = self.shift.as_mut().expect("checked above");
        if shift.first_seq == 0 {
            shift.first_seq = seq;
        }
        shift.last_seq = seq;
        for t in [&mut shift.totals, &mut self.lifetime] {
            if refund {
                t.refund_cash += cash;
                t.refund_card += card;
                t.refund_vat += vat;
                t.refund_count += 1;
            } else {
                t.sale_cash += cash;
                t.sale_card += card;
                t.sale_vat += vat;
                t.sale_count += 1;
            }
        }
        if refund {
            self.counters.refunds_created += 1;
        } else {
            self.counters.sales_created += 1;
        }
        self.last_operation_time = now.format(facts::REQUEST_TIME_FORMAT).to_string();
        self.orders.push(StoredOrder {
            order: req.clone(),
            fiscal: fiscal.clone(),
            is_refund: refund,
            cash,
            card,
            vat,
        });
        if let Some(uuid) = &req.uuid {
            self.by_uuid.insert(uuid.clone(), self.orders.len() - 1);
            let n = self.receipts_for_uuid(uuid) as u64;
            self.counters.receipts_per_uuid_max = self.counters.receipts_per_uuid_max.max(n);
        }
        Ok(fiscal)
    }

    /// `/order/last/` `data`: the last order as sent, its fiscal data
    /// (CamelCase), and whether it was a refund; `null` before the first.
    pub fn last_order(&self) -> Value {
        match self.orders.last() {
            None => Value::Null,
            Some(o) => json!({
                "order": o.order,
                "result": o.fiscal.camel_case(),
                "isRefund": o.is_refund,
            }),
        }
    }

    /// `/order/print/`: reprint the last receipt.
    pub fn reprint(&mut self) -> Result<(), ErrorBody> {
        if self.orders.is_empty() {
            return Err(self.fail(Code::InternalError, json!("no receipt to print")));
        }
        self.counters.reprints += 1;
        Ok(())
    }

    pub fn open_shift(&mut self, time: &str) -> Result<Value, ErrorBody> {
        if self.shift.is_some() {
            return Err(self.fail(Code::ZReportAlreadyOpen, Value::Null));
        }
        if self.zreports.len() as i64 >= self.config.zreport_max_count {
            return Err(self.fail(
                Code::FiscalModule(FiscalModuleCode::Other(0x9028)),
                json!("ERROR_ZREPORT_SPACE_IS_FULL"),
            ));
        }
        self.shift = Some(Shift {
            number: self.zreports.len() as i64 + 1,
            open_time: time.to_string(),
            first_seq: 0,
            last_seq: 0,
            totals: Totals::default(),
        });
        self.counters.shifts_opened += 1;
        self.last_operation_time = time.to_string();
        Ok(json!({"time": time, "applet_version": self.config.applet_version}))
    }

    fn report(&self, shift: &Shift, close_time: &str) -> ZReport {
        let t = &shift.totals;
        ZReport {
            applet_version: self.config.applet_version.clone(),
            terminal_id: self.config.terminal_id.clone(),
            number: shift.number,
            count: self.zreports.len() as i64 + i64::from(close_time.is_empty()),
            first_receipt_seq: shift.first_seq,
            last_receipt_seq: shift.last_seq,
            open_time: shift.open_time.clone(),
            close_time: close_time.to_string(),
            total_sale_cash: t.sale_cash,
            total_sale_card: t.sale_card,
            total_sale_vat: t.sale_vat,
            total_refund_cash: t.refund_cash,
            total_refund_card: t.refund_card,
            total_refund_vat: t.refund_vat,
            total_sale_count: t.sale_count,
            total_refund_count: t.refund_count,
            shift_opened: close_time.is_empty(),
            cash_desc_serial: self.config.cash_desc_serial.clone(),
        }
    }

    /// `GET /zreport/close/` and `POST` with `close_zreport: true`.
    pub fn close_shift(&mut self, time: &str) -> Result<ZReport, ErrorBody> {
        let Some(shift) = self.shift.clone() else {
            return Err(self.fail(Code::ZReportAlreadyClose, Value::Null));
        };
        let mut z = self.report(&shift, time);
        z.count = self.zreports.len() as i64 + 1;
        self.zreports.push(z.clone());
        self.shift = None;
        self.counters.shifts_closed += 1;
        self.last_operation_time = time.to_string();
        Ok(z)
    }

    /// `POST /zreport/close/` with `close_zreport: false`: the X report.
    pub fn x_report(&mut self) -> Result<ZReport, ErrorBody> {
        let Some(shift) = self.shift.clone() else {
            return Err(self.fail(
                Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen),
                Value::Null,
            ));
        };
        self.counters.x_reports += 1;
        Ok(self.report(&shift, ""))
    }

    /// `GET /zreport/info/`: the open shift, else the last closed one.
    pub fn zreport_info(&mut self) -> Result<ZReport, ErrorBody> {
        if let Some(shift) = &self.shift {
            return Ok(self.report(shift, ""));
        }
        match self.zreports.last() {
            Some(z) => Ok(z.clone()),
            None => Err(self.fail(
                Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen),
                Value::Null,
            )),
        }
    }

    pub fn info(&self, now: NaiveDateTime) -> Info {
        let l = &self.lifetime;
        Info {
            terminal_id: self.config.terminal_id.clone(),
            applet_version: self.config.applet_version.clone(),
            current_receipt_seq: self.receipt_seq,
            current_time: now.format(facts::REQUEST_TIME_FORMAT).to_string(),
            last_operation_time: self.last_operation_time.clone(),
            receipt_count: self.orders.len() as i64,
            receipt_max_count: self.config.receipt_max_count,
            zreport_count: self.zreports.len() as i64,
            zreport_max_count: self.config.zreport_max_count,
            cashbox_number: self.config.cashbox_number,
            version_code: 1,
            is_updated: true,
            cash_accomulator: Accumulator {
                sale: l.sale_cash,
                refund: l.refund_cash,
            },
            card_accomulator: Accumulator {
                sale: l.sale_card,
                refund: l.refund_card,
            },
            vat_accomulator: Accumulator {
                sale: l.sale_vat,
                refund: l.refund_vat,
            },
        }
    }

    /// `POST /payment/{provider}`: the provider charges the customer's QR.
    pub fn pay(&mut self, provider: Provider, req: &ProviderPayment) -> Result<Value, ErrorBody> {
        if req.amount <= 0 || req.qr_code.trim().is_empty() {
            return Err(self.invalid(vec![
                ("amount".into(), "must be positive tiyin".into()),
                ("qr_code".into(), "the customer's QR is required".into()),
            ]));
        }
        let n = self.next_rand();
        let id = match provider {
            Provider::Anor => format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                n >> 32,
                (n >> 16) & 0xffff,
                n & 0xffff,
                (n >> 48) & 0xffff,
                n & 0xffff_ffff_ffff
            ),
            _ => format!("{}", n % 10_000_000_000),
        };
        self.payments.insert(
            id.clone(),
            PaymentRecord {
                provider,
                amount: req.amount,
                confirmed: 0,
            },
        );
        self.counters.payments += 1;
        let phone = "+998901234567";
        Ok(match provider {
            Provider::Click | Provider::Payme => json!({
                "amount": req.amount, "transaction_id": id, "payment_id": id,
                "inn": "123456789", "qr_code": req.qr_code, "kkm_id": self.config.terminal_id,
                "device_id": self.config.cash_desc_serial, "status": "successfully",
                "message": "", "client_phone_number": phone,
            }),
            Provider::Uzum => json!({
                "payment_id": id, "payment_status": "SUCCESS", "error_code": "0",
                "error_message": "", "client_phone_number": phone,
            }),
            Provider::Anor => json!({
                "transaction_id": id, "status": "success", "message": "", "error_code": 0,
                "payment_id": (n % 1_000_000) as i64, "error_note": "",
                "payment_status": facts::ANOR_PAID, "phone_number": phone,
                "card_number": "860049******1234",
            }),
        })
    }

    /// `POST /payment/{provider}_confirm`.
    pub fn confirm(&mut self, c: &Confirm) -> Result<Value, ErrorBody> {
        let known = self
            .payments
            .get(&c.id)
            .is_some_and(|p| p.provider == c.provider);
        if !known || facts::parse_soliq_qr(&c.qr_code).is_none() {
            return Err(self.fail(
                Code::PaymentError,
                json!(format!("unknown {} payment {}", c.provider.name(), c.id)),
            ));
        }
        let rec = self.payments.get_mut(&c.id).expect("checked above");
        rec.confirmed += 1;
        let first = rec.confirmed == 1;
        let amount = rec.amount;
        if first {
            self.counters.confirms_delivered += 1;
        } else {
            self.counters.confirm_repeats += 1;
        }
        Ok(match c.provider {
            Provider::Anor => json!({
                "message": "Fiscalization completed successfully", "error_code": 0,
                "payment_id": 123456, "transaction_id": c.id,
            }),
            _ => {
                json!({"payment_id": c.id, "amount": amount, "status": "successfully", "qr_code": c.qr_code})
            }
        })
    }

    /// How many times a payment was confirmed.
    pub fn confirms_of(&self, id: &str) -> u64 {
        self.payments.get(id).map_or(0, |p| p.confirmed)
    }

    pub fn card(&mut self, t: CardTerminal, req: &CardPayment) -> Result<Value, ErrorBody> {
        if req.amount <= 0 || (req.is_return && req.request_id.is_none()) {
            return Err(self.fail(
                match t {
                    CardTerminal::Xumo => Code::XumoError,
                    CardTerminal::Uzcard => Code::UzcardError,
                },
                json!("amount must be positive; a return names request_id"),
            ));
        }
        let rrn = format!("{:012}", self.next_rand() % 1_000_000_000_000);
        let signed = if req.is_return {
            -req.amount
        } else {
            req.amount
        };
        self.card_slips.push((t, signed, rrn.clone()));
        self.counters.card_payments += 1;
        Ok(json!({"message": "APPROVED", "ppt_id": rrn}))
    }

    /// `_close` (reconciliation, clears the batch) and `_shortreport`.
    pub fn card_report(&mut self, t: CardTerminal, close: bool) -> Value {
        let (count, sum) = self
            .card_slips
            .iter()
            .filter(|s| s.0 == t)
            .fold((0, 0), |(c, s), x| (c + 1, s + x.1));
        if close {
            self.card_slips.retain(|s| s.0 != t);
        }
        let rrn = format!("{:012}", self.next_rand() % 1_000_000_000_000);
        json!({
            "message": format!("{} {}\nOPERATIONS: {count}\nTOTAL: {}", t.name().to_uppercase(),
                if close { "SVERKA" } else { "SHORT REPORT" }, crate::domain::Money(sum)),
            "ppt_id": rrn,
        })
    }

    pub fn qr_pay(&mut self, req: &QrPay) -> Value {
        self.qr_pay.insert(req.order_id.clone(), req.amount);
        json!({"order_id": req.order_id, "status": 1})
    }

    pub fn qr_pay_status(&mut self, order_id: &str) -> Result<Value, ErrorBody> {
        match self.qr_pay.get(order_id) {
            Some(amount) => {
                Ok(json!({"order_id": order_id, "amount": amount, "status": 2, "paid": true}))
            }
            None => Err(self.fail(Code::Scan2pay, json!("SCAN2PAY_TRANSACTION_NOT_FOUND"))),
        }
    }

    pub fn one_qr_create(&mut self, req: &OneQrCreate) -> Result<Value, ErrorBody> {
        let amount = facts::uzqr_amount(&req.amount);
        let mut bad = Vec::new();
        if req.external_id.is_empty()
            || req.external_id.chars().count() > facts::ONE_QR_EXTERNAL_ID_MAX
        {
            bad.push((
                "external_id".into(),
                format!("1 to {} characters", facts::ONE_QR_EXTERNAL_ID_MAX),
            ));
        }
        if amount.as_ref().map_or(true, |m| m.0 <= 0) {
            bad.push((
                "amount".into(),
                "a decimal in sum such as \"100.00\"".into(),
            ));
        }
        if !bad.is_empty() {
            return Err(self.invalid(bad));
        }
        let invoice = format!("{}", self.next_rand() % 1_000_000_000);
        self.one_qr.insert(
            invoice.clone(),
            (req.external_id.clone(), amount.expect("checked").0),
        );
        Ok(json!({"invoice_id": invoice, "qr_text": format!("https://uzqr.example/pay/{invoice}")}))
    }

    pub fn one_qr_status(&mut self, invoice_id: &str) -> Result<Value, ErrorBody> {
        if !self.one_qr.contains_key(invoice_id) {
            return Err(self.fail(Code::Validation, json!("unknown invoice_id")));
        }
        Ok(
            json!({"status": facts::ONE_QR_PAID, "pay_id": invoice_id, "payer_phone": "+998901234567",
            "card_type": "UZCARD", "card_no": "8600****1234", "fiscal_module": self.config.terminal_id}),
        )
    }

    pub fn open_drawer(&mut self) {
        self.counters.drawer_opens += 1;
    }

    pub fn banner(&mut self) {
        self.counters.banners_printed += 1;
    }

    /// The stored sale a refund's `qr_code` names, for tests.
    pub fn receipt_type_of(&self, qr_url: &str) -> Option<ReceiptType> {
        self.orders
            .iter()
            .find(|o| o.fiscal.qr_url == qr_url)
            .map(|o| o.order.receipt_type.unwrap_or(ReceiptType::Order))
    }

    /// Sum of cash, card and VAT over the receipts the box holds.
    pub fn totals(&self) -> (i64, i64, i64) {
        self.orders.iter().fold((0, 0, 0), |(c, k, v), o| {
            let s = if o.is_refund { -1 } else { 1 };
            (c + s * o.cash, k + s * o.card, v + s * o.vat)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fiscalbox::facts::ProductWire;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, facts::REQUEST_TIME_FORMAT).unwrap()
    }

    fn sale(uuid: &str, price: i64, cash: i64, card: i64) -> OrderRequest {
        OrderRequest {
            receipt_type: Some(ReceiptType::Order),
            products: vec![ProductWire {
                name: Some("Non".into()),
                amount: Some(1000),
                price: Some(price),
                product_price: Some(price),
                vat: Some(crate::domain::uz::included_vat(crate::domain::Money(price), 12).0),
                vat_percent: Some(12),
                class_code: Some("10999001001000000".into()),
                package_code: Some("1520627".into()),
                ..ProductWire::default()
            }],
            time: Some("2026-11-29 10:00:00".into()),
            uuid: Some(uuid.into()),
            received_cash: Some(cash),
            change: Some(0),
            received_card: Some(card),
            ..OrderRequest::default()
        }
    }

    #[test]
    fn a_sale_needs_an_open_shift_and_a_uuid_is_fiscalized_once() {
        let mut m = BoxModel::new(BoxConfig::default());
        let now = at("2026-11-29 10:00:00");
        let e = m
            .order(&sale("u1", 11200, 11200, 0), false, now)
            .unwrap_err();
        assert_eq!(e.code, 0x902D);
        m.open_shift("2026-11-29 09:00:00").unwrap();
        assert_eq!(m.open_shift("2026-11-29 09:00:01").unwrap_err().code, 9327);
        let a = m.order(&sale("u1", 11200, 11200, 0), false, now).unwrap();
        let b = m.order(&sale("u1", 11200, 11200, 0), false, now).unwrap();
        assert_eq!(a, b);
        assert_eq!(m.counters().sales_created, 1);
        assert_eq!(m.counters().uuid_repeats, 1);
        assert_eq!(a.receipt_count, 1);
        assert_eq!(a.fiscal_sign.len(), 12);
        assert_eq!(
            a.qr_url,
            facts::soliq_qr_url("UZ170703100189", 1, "20261129100000", &a.fiscal_sign)
        );
        let last = m.last_order();
        assert_eq!(last["result"]["ReceiptSeq"], "1");
        assert_eq!(last["order"]["uuid"], "u1");
    }

    #[test]
    fn z_report_counts_sales_and_refunds_by_kind() {
        let mut m = BoxModel::new(BoxConfig::default());
        let now = at("2026-11-29 10:00:00");
        m.open_shift("2026-11-29 09:00:00").unwrap();
        let s1 = m.order(&sale("a", 11200, 11200, 0), false, now).unwrap();
        m.order(&sale("b", 22400, 0, 22400), false, now).unwrap();
        let mut r = sale("r", 11200, 11200, 0);
        r.qr_code = Some(s1.qr_url.clone());
        m.order(&r, true, now).unwrap();
        let x = m.x_report().unwrap();
        assert_eq!(
            (x.total_sale_cash, x.total_sale_card, x.total_sale_vat),
            (11200, 22400, 3600)
        );
        assert_eq!((x.total_refund_cash, x.total_refund_vat), (11200, 1200));
        assert_eq!((x.total_sale_count, x.total_refund_count), (2, 1));
        assert_eq!(x.close_time, "");
        let z = m.close_shift("2026-11-29 20:00:00").unwrap();
        assert_eq!((z.first_receipt_seq, z.last_receipt_seq), (1, 3));
        assert_eq!(m.close_shift("2026-11-29 20:00:01").unwrap_err().code, 9326);
        let info = m.info(now);
        assert_eq!(info.cash_accomulator.sale, 11200);
        assert_eq!(info.current_receipt_seq, 3);
    }

    #[test]
    fn refunds_need_a_known_original_and_enough_cash() {
        let mut m = BoxModel::new(BoxConfig::default());
        let now = at("2026-11-29 10:00:00");
        m.open_shift("2026-11-29 09:00:00").unwrap();
        let s = m.order(&sale("a", 11200, 11200, 0), false, now).unwrap();
        let mut r = sale("r", 11200, 11200, 0);
        r.qr_code = Some("https://ofd.soliq.uz/check?t=X&r=9&c=1&s=2".into());
        assert_eq!(m.order(&r, true, now).unwrap_err().code, 65275);
        r.qr_code = Some(s.qr_url);
        r.received_cash = Some(50000);
        assert_eq!(m.order(&r, true, now).unwrap_err().code, 36913);
        m.set_refuse_refunds(true);
        r.received_cash = Some(11200);
        assert_eq!(m.order(&r, true, now).unwrap_err().code, 65275);
        m.set_refuse_refunds(false);
        assert!(m.order(&r, true, now).is_ok());
    }

    #[test]
    fn confirms_are_counted_once_per_payment() {
        let mut m = BoxModel::new(BoxConfig::default());
        for p in Provider::ALL {
            let reply = m
                .pay(
                    p,
                    &ProviderPayment {
                        amount: 1000,
                        qr_code: "customer-qr".into(),
                    },
                )
                .unwrap();
            let id = reply[p.confirm_key()].as_str().unwrap().to_string();
            let c = Confirm {
                provider: p,
                id: id.clone(),
                qr_code: facts::soliq_qr_url("UZ1", 1, "20261129100000", "000000000001"),
            };
            m.confirm(&c).unwrap();
            m.confirm(&c).unwrap();
            assert_eq!(m.confirms_of(&id), 2);
        }
        assert_eq!(m.counters().confirms_delivered, 4);
        assert_eq!(m.counters().confirm_repeats, 4);
        let bad = Confirm {
            provider: Provider::Click,
            id: "nope".into(),
            qr_code: "x".into(),
        };
        assert_eq!(m.confirm(&bad).unwrap_err().code, 106);
    }
}
