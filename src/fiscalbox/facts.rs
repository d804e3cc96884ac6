//! Every outside fact about FiscalBox, in one place: endpoints, the envelope,
//! error codes, units and the wire shapes of requests and replies.
//!
//! Sources (cited per item below):
//! - \[spec\] `shared/spec/fiscalbox.md` (restates seeds 000/002 and dev.fbox.uz);
//! - \[seed002\] `shared/seeds/002_*.txt` (`/payment/anor_confirm`);
//! - \[Order.md\], \[ZReport.md\], \[Errors.md\]: `abdullo211/fiscal_document`.
//!
//! Where the sources disagree or are silent, the choice is marked **ASSUMED**
//! here and nowhere else. The server dialect (`api/fiscalbox`), the box
//! client, the box simulator (`sim/fiscalbox`) and the billing client use
//! these types and functions; none restates a code, a unit or a shape.
//!
//! Pure: no I/O, no clock.

use crate::domain::money::{DecimalError, Money, Quantity};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

// ───────────────────────────── units ─────────────────────────────

/// Money fields (`price`, `product_price`, `vat`, `discount`, `other`,
/// `received_cash`, `change`, `received_card`, payment `amount`) are integers
/// in tiyin, 1 sum = 100 tiyin \[spec "Units"\]. fiscald's `Money` for UZS is
/// tiyin too, so the conversion is the identity — but it goes through here.
pub fn money_from_tiyin(tiyin: i64) -> Money {
    Money(tiyin)
}

pub fn tiyin(money: Money) -> i64 {
    money.0
}

/// Quantity `amount` is an integer in thousandths: 1 piece = 1000, 0.25 kg =
/// 250 \[spec "Units", Order.md\].
pub fn quantity_from_thousandths(amount: i64) -> Quantity {
    Quantity(amount)
}

pub fn thousandths(quantity: Quantity) -> i64 {
    quantity.0
}

/// UzQR `/payment/one_qr/create` takes `amount` as a decimal string in sum,
/// e.g. `"100.00"` \[spec "Units"\].
pub fn uzqr_amount(text: &str) -> Result<Money, DecimalError> {
    Money::parse(text)
}

pub fn uzqr_amount_text(money: Money) -> String {
    money.to_decimal()
}

/// Request `time`: `yyyy-MM-dd HH:mm:ss` \[Order.md\].
pub const REQUEST_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Reply `date_time` and the QR's `c=`: `YYYYMMDDHHMMSS` \[Order.md\].
pub const RECEIPT_TIME_FORMAT: &str = "%Y%m%d%H%M%S";

/// The journal's fiscal time of a FiscalBox receipt whose reply `date_time`
/// could not be read (logged when stored): 1970-01-01T00:00:00 stands for
/// "unknown" — no FiscalBox receipt is that old. The billing check counts
/// such a receipt by its acceptance time and says so.
pub const UNKNOWN_RECEIPT_TIME: &str = "1970-01-01T00:00:00";

/// A scaled integer field as clients send it. Order.md types these fields as
/// "String" and its refund example sends `1000.0`: **ASSUMED** accepted are
/// a JSON integer, a number whose fraction is zero, and a string of digits
/// (optionally `-`); anything else is a validation error naming the field.
pub fn scaled_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    scaled_from_value(&v).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "must be an integer in the field's unit (tiyin ×100, quantity ×1000), got {v}"
        ))
    })
}

/// Like [`scaled_int`] for an optional field (absent or `null`).
pub fn scaled_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scaled_from_value(&v).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be an integer in the field's unit (tiyin ×100, quantity ×1000), got {v}"
            ))
        }),
    }
}

fn scaled_from_value(v: &Value) -> Option<i64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text.as_str(), ""),
    };
    if !frac.chars().all(|c| c == '0') {
        return None;
    }
    let digits = int.strip_prefix('-').unwrap_or(int);
    if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    int.parse().ok()
}

// ───────────────────────────── endpoints ─────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
}

/// The QR payment providers \[spec "Payments"\] with their
/// `extra_info.qr_payment_provider` codes \[spec "Orders"\]: 141 Payme,
/// 64 Click, 161 Uzum, 187 Anor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Click,
    Payme,
    Uzum,
    Anor,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Click,
        Provider::Payme,
        Provider::Uzum,
        Provider::Anor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Click => "click",
            Provider::Payme => "payme",
            Provider::Uzum => "uzum",
            Provider::Anor => "anor",
        }
    }

    pub fn qr_payment_provider(self) -> u32 {
        match self {
            Provider::Payme => 141,
            Provider::Click => 64,
            Provider::Uzum => 161,
            Provider::Anor => 187,
        }
    }

    pub fn from_qr_payment_provider(code: u32) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.qr_payment_provider() == code)
    }

    /// The confirm call names the payment by `payment_id` (Click, Payme, Uzum)
    /// or by `transaction_id` (Anor) \[spec "Payments", seed002\].
    pub fn confirm_key(self) -> &'static str {
        match self {
            Provider::Anor => "transaction_id",
            _ => "payment_id",
        }
    }
}

/// Card terminals behind the box: Ingenico (HUMO, "xumo") and PAX (Uzcard)
/// \[spec "Payments"\].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardTerminal {
    Xumo,
    Uzcard,
}

impl CardTerminal {
    pub const ALL: [CardTerminal; 2] = [CardTerminal::Xumo, CardTerminal::Uzcard];
    pub fn name(self) -> &'static str {
        match self {
            CardTerminal::Xumo => "xumo",
            CardTerminal::Uzcard => "uzcard",
        }
    }
}

/// Every endpoint of the box's API that fiscald serves and calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    OrderCreate,
    OrderRefuse,
    OrderPrint,
    OrderLast,
    ZReportOpen,
    /// `GET /zreport/close/`: close the shift.
    ZReportClose,
    /// `POST /zreport/close/`: print a Z report (`close_zreport: true`) or an
    /// X report (`false`).
    ZReportPrint,
    ZReportInfo,
    Payment(Provider),
    PaymentConfirm(Provider),
    Card(CardTerminal),
    CardClose(CardTerminal),
    CardShortReport(CardTerminal),
    QrPay,
    QrPayStatus,
    OneQrCreate,
    OneQrStatus,
    Info,
    OpenCashDrawer,
    Banner,
}

impl Endpoint {
    pub fn all() -> Vec<Endpoint> {
        let mut all = vec![
            Endpoint::OrderCreate,
            Endpoint::OrderRefuse,
            Endpoint::OrderPrint,
            Endpoint::OrderLast,
            Endpoint::ZReportOpen,
            Endpoint::ZReportClose,
            Endpoint::ZReportPrint,
            Endpoint::ZReportInfo,
            Endpoint::QrPay,
            Endpoint::QrPayStatus,
            Endpoint::OneQrCreate,
            Endpoint::OneQrStatus,
            Endpoint::Info,
            Endpoint::OpenCashDrawer,
            Endpoint::Banner,
        ];
        for p in Provider::ALL {
            all.push(Endpoint::Payment(p));
            all.push(Endpoint::PaymentConfirm(p));
        }
        for t in CardTerminal::ALL {
            all.push(Endpoint::Card(t));
            all.push(Endpoint::CardClose(t));
            all.push(Endpoint::CardShortReport(t));
        }
        all
    }

    /// The path without a trailing slash; clients call both forms \[spec
    /// "Transport"\], so matching strips one.
    pub fn path(self) -> String {
        match self {
            Endpoint::OrderCreate => "/order/create".into(),
            Endpoint::OrderRefuse => "/order/refuse".into(),
            Endpoint::OrderPrint => "/order/print".into(),
            Endpoint::OrderLast => "/order/last".into(),
            Endpoint::ZReportOpen => "/zreport/open".into(),
            Endpoint::ZReportClose | Endpoint::ZReportPrint => "/zreport/close".into(),
            Endpoint::ZReportInfo => "/zreport/info".into(),
            Endpoint::Payment(p) => format!("/payment/{}", p.name()),
            Endpoint::PaymentConfirm(p) => format!("/payment/{}_confirm", p.name()),
            Endpoint::Card(t) => format!("/payment/{}", t.name()),
            Endpoint::CardClose(t) => format!("/payment/{}_close", t.name()),
            Endpoint::CardShortReport(t) => format!("/payment/{}_shortreport", t.name()),
            Endpoint::QrPay => "/payment/qr_pay".into(),
            Endpoint::QrPayStatus => "/payment/qr_pay/status".into(),
            Endpoint::OneQrCreate => "/payment/one_qr/create".into(),
            Endpoint::OneQrStatus => "/payment/one_qr/status".into(),
            Endpoint::Info => "/info".into(),
            Endpoint::OpenCashDrawer => "/print/open_cash_drawer".into(),
            Endpoint::Banner => "/print/banner".into(),
        }
    }

    pub fn method(self) -> Method {
        match self {
            Endpoint::OrderPrint
            | Endpoint::OrderLast
            | Endpoint::ZReportOpen
            | Endpoint::ZReportClose
            | Endpoint::ZReportInfo
            | Endpoint::CardClose(_)
            | Endpoint::CardShortReport(_)
            | Endpoint::OneQrStatus
            | Endpoint::Info
            | Endpoint::OpenCashDrawer => Method::Get,
            _ => Method::Post,
        }
    }

    /// `/zreport/close/`, `/zreport/info/` and `/order/last/` wrap their
    /// envelope once more, `{"result": {…}}` \[spec "Transport", ZReport.md\].
    /// ZReport.md shows the *error* replies of those endpoints unwrapped;
    /// **ASSUMED**: only a success is wrapped (clients parse both).
    pub fn wrapped(self) -> bool {
        matches!(
            self,
            Endpoint::ZReportClose
                | Endpoint::ZReportPrint
                | Endpoint::ZReportInfo
                | Endpoint::OrderLast
        )
    }

    /// The endpoint a request is for: `path` relative to the API root, with
    /// or without one trailing slash.
    pub fn resolve(method: Method, path: &str) -> Option<Endpoint> {
        let path = path.strip_suffix('/').unwrap_or(path);
        Endpoint::all()
            .into_iter()
            .find(|e| e.method() == method && e.path() == path)
    }

    /// Is there an endpoint at this path for another method?
    pub fn path_exists(path: &str) -> bool {
        let path = path.strip_suffix('/').unwrap_or(path);
        Endpoint::all().into_iter().any(|e| e.path() == path)
    }

    /// Operations that change the fiscal module's state; fiscald journals
    /// them and never sends them twice.
    pub fn is_fiscal(self) -> bool {
        matches!(
            self,
            Endpoint::OrderCreate
                | Endpoint::OrderRefuse
                | Endpoint::ZReportOpen
                | Endpoint::ZReportClose
                | Endpoint::ZReportPrint
        )
    }
}

// ───────────────────────────── error codes ─────────────────────────────

/// The error codes a box (and fiscald's dialect) answers with, sent as
/// decimal integers in `error.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// 7: validation; `message` is a JSON *string* listing the fields
    /// \[spec "Error codes"\].
    Validation,
    /// 101 PRINTER_NOT_WORKING \[Order.md, Errors.md\].
    PrinterNotWorking,
    /// 102 FISCAL_MODULE_NOT_INITIALIZED \[Order.md\].
    FiscalModuleNotInitialized,
    /// 103 INTERNAL_ERROR \[Errors.md\].
    InternalError,
    /// 104 BILLING_ERROR per the spec notes (dev.fbox.uz); Errors.md lists
    /// 104 INVALID_ARGUMENT and 105 BILLING_ERROR. **ASSUMED**: the spec
    /// notes (newer pages) win.
    BillingError,
    /// 105 scan2pay \[spec\].
    Scan2pay,
    /// 106 PAYMENT_ERROR \[Errors.md\].
    PaymentError,
    /// 108 XUMO_ERROR \[Errors.md\].
    XumoError,
    /// 109 UZKARD_ERROR \[Errors.md\].
    UzcardError,
    /// 9326 ZREPORT_ALREADY_CLOSE \[ZReport.md\].
    ZReportAlreadyClose,
    /// 9327 ZREPORT_ALREADY_OPEN \[ZReport.md\].
    ZReportAlreadyOpen,
    /// A fiscal-module code (0x9000–0x9035) sent as its decimal value
    /// \[spec "Error codes"\].
    FiscalModule(FiscalModuleCode),
    /// 65275 "not valid refund info" \[Order.md\]. fiscald also answers it for
    /// a refund of more than was sold or of an unknown original.
    NotValidRefundInfo,
    /// 65531 "cannot encode receipt" \[spec\].
    CannotEncodeReceipt,
    /// fiscald's own: no endpoint at this path. The box documents none;
    /// **ASSUMED** 404 in the envelope (HTTP 200 like every error).
    UnknownEndpoint,
}

/// Fiscal-module codes. 0x902D and 0x9031 are documented \[spec\]; the other
/// refund shortfalls follow 0x9031 in Errors.md's table order and are
/// **ASSUMED** to be 0x9032 and 0x9033.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FiscalModuleCode {
    ZReportIsNotOpen,
    NotEnoughCashForRefund,
    NotEnoughCardForRefund,
    NotEnoughVatForRefund,
    Other(u16),
}

impl FiscalModuleCode {
    pub fn value(self) -> u16 {
        match self {
            FiscalModuleCode::ZReportIsNotOpen => 0x902D,
            FiscalModuleCode::NotEnoughCashForRefund => 0x9031,
            FiscalModuleCode::NotEnoughCardForRefund => 0x9032,
            FiscalModuleCode::NotEnoughVatForRefund => 0x9033,
            FiscalModuleCode::Other(v) => v,
        }
    }

    pub fn from_value(v: u16) -> Option<FiscalModuleCode> {
        if !(0x9000..=0x9035).contains(&v) {
            return None;
        }
        Some(match v {
            0x902D => FiscalModuleCode::ZReportIsNotOpen,
            0x9031 => FiscalModuleCode::NotEnoughCashForRefund,
            0x9032 => FiscalModuleCode::NotEnoughCardForRefund,
            0x9033 => FiscalModuleCode::NotEnoughVatForRefund,
            other => FiscalModuleCode::Other(other),
        })
    }

    /// The names of Errors.md.
    pub fn name(self) -> &'static str {
        match self {
            FiscalModuleCode::ZReportIsNotOpen => "ERROR_ZREPORT_IS_NOT_OPEN",
            FiscalModuleCode::NotEnoughCashForRefund => "ERROR_NOT_ENOUGH_CASH_FOR_REFUND",
            FiscalModuleCode::NotEnoughCardForRefund => "ERROR_NOT_ENOUGH_CARD_FOR_REFUND",
            FiscalModuleCode::NotEnoughVatForRefund => "ERROR_NOT_ENOUGH_VAT_FOR_REFUND",
            FiscalModuleCode::Other(_) => "FISCAL_MODULE_ERROR",
        }
    }
}

impl Code {
    pub fn value(self) -> i64 {
        match self {
            Code::Validation => 7,
            Code::PrinterNotWorking => 101,
            Code::FiscalModuleNotInitialized => 102,
            Code::InternalError => 103,
            Code::BillingError => 104,
            Code::Scan2pay => 105,
            Code::PaymentError => 106,
            Code::XumoError => 108,
            Code::UzcardError => 109,
            Code::ZReportAlreadyClose => 9326,
            Code::ZReportAlreadyOpen => 9327,
            Code::FiscalModule(f) => i64::from(f.value()),
            Code::NotValidRefundInfo => 65275,
            Code::CannotEncodeReceipt => 65531,
            Code::UnknownEndpoint => 404,
        }
    }

    pub fn from_value(v: i64) -> Option<Code> {
        Some(match v {
            7 => Code::Validation,
            101 => Code::PrinterNotWorking,
            102 => Code::FiscalModuleNotInitialized,
            103 => Code::InternalError,
            104 => Code::BillingError,
            105 => Code::Scan2pay,
            106 => Code::PaymentError,
            108 => Code::XumoError,
            109 => Code::UzcardError,
            9326 => Code::ZReportAlreadyClose,
            9327 => Code::ZReportAlreadyOpen,
            65275 => Code::NotValidRefundInfo,
            65531 => Code::CannotEncodeReceipt,
            404 => Code::UnknownEndpoint,
            other => Code::FiscalModule(FiscalModuleCode::from_value(u16::try_from(other).ok()?)?),
        })
    }

    /// The `message` the box sends with the code (names as documented).
    pub fn message(self) -> &'static str {
        match self {
            Code::Validation => "VALIDATION_ERROR",
            Code::PrinterNotWorking => "Printer not working",
            Code::FiscalModuleNotInitialized => "FISCAL_MODULE_NOT_INITIALIZED",
            Code::InternalError => "INTERNAL_ERROR",
            Code::BillingError => "BILLING_ERROR",
            Code::Scan2pay => "SCAN2PAY_ERROR",
            Code::PaymentError => "PAYMENT_ERROR",
            Code::XumoError => "XUMO_ERROR",
            Code::UzcardError => "UZKARD_ERROR",
            Code::ZReportAlreadyClose => "ZREPORT_ALREADY_CLOSE",
            Code::ZReportAlreadyOpen => "ZREPORT_ALREADY_OPEN",
            Code::FiscalModule(f) => f.name(),
            Code::NotValidRefundInfo => "not valid refund info",
            Code::CannotEncodeReceipt => "cannot encode receipt",
            Code::UnknownEndpoint => "UNKNOWN_ENDPOINT",
        }
    }
}

// ───────────────────────────── envelope ─────────────────────────────

/// `error` of the envelope \[spec "Transport"\].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: i64,
    pub message: String,
    #[serde(default)]
    pub data: Value,
}

impl ErrorBody {
    pub fn new(code: Code, data: Value) -> ErrorBody {
        ErrorBody {
            code: code.value(),
            message: code.message().to_string(),
            data,
        }
    }

    /// Code 7: `message` is a JSON string of `{field: [problems]}`
    /// (**ASSUMED** layout: the spec only says "a JSON string listing
    /// fields"); fields are dotted paths into the request, e.g.
    /// `products.0.class_code`.
    pub fn validation(fields: &[(String, String)]) -> ErrorBody {
        let mut map = serde_json::Map::new();
        for (field, problem) in fields {
            let entry = map
                .entry(field.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(Value::String(problem.clone()));
            }
        }
        ErrorBody {
            code: Code::Validation.value(),
            message: Value::Object(map).to_string(),
            data: Value::Null,
        }
    }

    pub fn code(&self) -> Option<Code> {
        Code::from_value(self.code)
    }
}

/// `{"data", "error", "is_success"}`: every reply, HTTP 200 \[spec "Transport"\].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub data: Value,
    pub error: Option<ErrorBody>,
    pub is_success: bool,
}

impl Envelope {
    pub fn ok(data: Value) -> Envelope {
        Envelope {
            data,
            error: None,
            is_success: true,
        }
    }

    pub fn fail(error: ErrorBody) -> Envelope {
        Envelope {
            data: Value::Null,
            error: Some(error),
            is_success: false,
        }
    }

    /// The reply body as `endpoint` documents it (wrapped or not).
    pub fn render(&self, endpoint: Option<Endpoint>) -> Value {
        let plain = serde_json::to_value(self).expect("an envelope serializes");
        match endpoint {
            Some(e) if e.wrapped() && self.is_success => json!({ "result": plain }),
            _ => plain,
        }
    }

    /// Read a reply in either shape, as real clients do.
    pub fn parse(body: &[u8]) -> Result<Envelope, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let inner = match v {
            Value::Object(mut m) if m.len() == 1 && m.contains_key("result") => {
                m.remove("result").unwrap_or(Value::Null)
            }
            other => other,
        };
        serde_json::from_value(inner).map_err(|e| format!("not a FiscalBox envelope: {e}"))
    }

    /// `Ok(data)` on success, else the error.
    pub fn into_result(self) -> Result<Value, ErrorBody> {
        match (self.is_success, self.error) {
            (true, _) => Ok(self.data),
            (false, Some(e)) => Err(e),
            (false, None) => Err(ErrorBody::new(Code::InternalError, Value::Null)),
        }
    }
}

// ───────────────────────────── orders ─────────────────────────────

/// `receipt_type` \[Order.md\]: sale, advance, credit. No QR and no fiscal sign
/// are printed on `prepaid` and `credit` receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptType {
    Order,
    Prepaid,
    Credit,
}

/// `owner_type` \[spec "Orders"\]: 0 resold, 1 own production, 2 service provider.
pub const OWNER_TYPES: [u8; 3] = [0, 1, 2];
/// `card_type` \[spec "Orders"\]: 1 corporate, 2 personal, 3 social.
pub const CARD_TYPES: [u8; 3] = [1, 2, 3];

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinfl: Option<String>,
}

/// One product of `/order/create/` and `/order/refuse/` \[Order.md\].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductWire {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// ×1000.
    #[serde(default, deserialize_with = "scaled_opt")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    /// Unit id (Order.md "Units" table); kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<Value>,
    /// Line total, ×100 = product_price × amount / 1000.
    #[serde(default, deserialize_with = "scaled_opt")]
    pub price: Option<i64>,
    #[serde(default, deserialize_with = "scaled_opt")]
    pub product_price: Option<i64>,
    /// VAT included in `price`, ×100.
    #[serde(default, deserialize_with = "scaled_opt")]
    pub vat: Option<i64>,
    /// 0, 12, or null = no VAT.
    #[serde(default, deserialize_with = "scaled_opt")]
    pub vat_percent: Option<i64>,
    #[serde(
        default,
        deserialize_with = "scaled_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub discount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_percent: Option<Value>,
    #[serde(
        default,
        deserialize_with = "scaled_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub other: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default)]
    pub class_code: Option<String>,
    #[serde(default)]
    pub package_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comission_info: Option<CommissionInfo>,
}

/// `extra_info` \[spec "Orders"\].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_payment_id: Option<String>,
    /// 141 Payme, 64 Click, 161 Uzum, 187 Anor; Order.md writes them with
    /// leading zeros (`0141`), so text or number is accepted.
    #[serde(
        default,
        deserialize_with = "scaled_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub qr_payment_provider: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan2pay_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<String>,
}

/// A printed block: `/print/banner`, order and report `banners[]` \[spec "Tools"\].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banner {
    #[serde(rename = "type")]
    pub kind: BannerKind,
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<BannerStyle>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BannerKind {
    Text,
    Barcode,
    QrCode,
    QrCodeFrame,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BannerStyle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font_width: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font_height: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_bold: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_size: Option<u8>,
}

/// `/order/create/` and `/order/refuse/` request \[Order.md, spec "Orders"\].
/// Unknown fields are ignored, as the box does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<Value>,
    /// Absent on a refund; `order` assumed for a sale without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_type: Option<ReceiptType>,
    #[serde(default)]
    pub products: Vec<ProductWire>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<String>,
    /// POS-side unique id: the idempotency key \[spec "Orders"\].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "scaled_opt")]
    pub received_cash: Option<i64>,
    #[serde(default, deserialize_with = "scaled_opt")]
    pub change: Option<i64>,
    #[serde(default, deserialize_with = "scaled_opt")]
    pub received_card: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppt_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "scaled_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub scan2pay_paid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_info: Option<ExtraInfo>,
    /// Refund: the QR URL of the original receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_cashbox: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banners: Vec<Banner>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<Value>,
}

/// The fiscal data of a receipt: `/order/create/` and `/order/refuse/`
/// reply `data` \[Order.md\]. The older CamelCase spelling (`TerminalID`,
/// `ReceiptSeq`, `DateTime`, `FiscalSign`, `AppletVersion`, `QRCodeURL`, as in
/// `/order/last/`) is read too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalData {
    #[serde(alias = "TerminalID")]
    pub terminal_id: String,
    #[serde(alias = "ReceiptSeq", deserialize_with = "scaled_int")]
    pub receipt_count: i64,
    #[serde(alias = "DateTime")]
    pub date_time: String,
    #[serde(alias = "FiscalSign")]
    pub fiscal_sign: String,
    #[serde(alias = "AppletVersion")]
    pub applet_version: String,
    #[serde(alias = "QRCodeURL")]
    pub qr_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_box_number: Option<Value>,
}

impl FiscalData {
    /// The `/order/last/` spelling of the same facts \[spec "Orders"\].
    pub fn camel_case(&self) -> Value {
        json!({
            "TerminalID": self.terminal_id,
            "ReceiptSeq": self.receipt_count.to_string(),
            "DateTime": self.date_time,
            "FiscalSign": self.fiscal_sign,
            "AppletVersion": self.applet_version,
            "QRCodeURL": self.qr_url,
        })
    }
}

/// `/order/last/` `data` \[spec "Orders"\]: the order as sent, its fiscal
/// data, and whether it was a refund.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LastOrder {
    pub order: OrderRequest,
    pub result: FiscalData,
    #[serde(rename = "isRefund")]
    pub is_refund: bool,
}

/// The Soliq check link printed as the receipt's QR \[spec "Uzbek receipt QR"\].
pub const SOLIQ_CHECK_URL: &str = "https://ofd.soliq.uz/check";

pub fn soliq_qr_url(terminal_id: &str, receipt_seq: i64, date_time: &str, sign: &str) -> String {
    format!("{SOLIQ_CHECK_URL}?t={terminal_id}&r={receipt_seq}&c={date_time}&s={sign}")
}

/// The parts of a Soliq link, for finding a refund's original receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoliqQr {
    pub terminal_id: String,
    pub receipt_seq: i64,
    pub date_time: String,
    pub fiscal_sign: String,
}

pub fn parse_soliq_qr(url: &str) -> Option<SoliqQr> {
    let query = url.strip_prefix(SOLIQ_CHECK_URL)?.strip_prefix('?')?;
    let (mut t, mut r, mut c, mut s) = (None, None, None, None);
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=')?;
        match k {
            "t" => t = Some(v.to_string()),
            "r" => r = v.parse().ok(),
            "c" => c = Some(v.to_string()),
            "s" => s = Some(v.to_string()),
            _ => {}
        }
    }
    Some(SoliqQr {
        terminal_id: t?,
        receipt_seq: r?,
        date_time: c?,
        fiscal_sign: s?,
    })
}

// ───────────────────────────── shifts and tools ─────────────────────────────

/// `/zreport/close/` and `/zreport/info/` `data` \[ZReport.md, spec "Shift"\].
/// Money ×100.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZReport {
    pub applet_version: String,
    pub terminal_id: String,
    pub number: i64,
    pub count: i64,
    pub first_receipt_seq: i64,
    pub last_receipt_seq: i64,
    pub open_time: String,
    /// Empty while the shift is open.
    pub close_time: String,
    pub total_sale_cash: i64,
    pub total_sale_card: i64,
    pub total_sale_vat: i64,
    pub total_refund_cash: i64,
    pub total_refund_card: i64,
    pub total_refund_vat: i64,
    pub total_sale_count: i64,
    pub total_refund_count: i64,
    #[serde(default)]
    pub shift_opened: bool,
    #[serde(default)]
    pub cash_desc_serial: String,
}

/// `POST /zreport/close/` body \[ZReport.md\].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZReportPrintRequest {
    #[serde(default)]
    pub close_zreport: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banners: Vec<Banner>,
}

/// A Z report's `open_time`/`close_time` as a local time. **ASSUMED**:
/// written like the request's `time` (`yyyy-MM-dd HH:mm:ss`) — the spec
/// ("Z report") names the fields without a format or example; the
/// receipt's compact `YYYYMMDDHHMMSS` is read too. Empty (an open shift's
/// close time) or anything else is `None`.
pub fn zreport_time(text: &str) -> Option<chrono::NaiveDateTime> {
    let text = text.trim();
    chrono::NaiveDateTime::parse_from_str(text, REQUEST_TIME_FORMAT)
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, RECEIPT_TIME_FORMAT))
        .ok()
}

/// `{Sale, Refund}` accumulators of `/info/` (their spelling) \[spec "Tools"\].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Accumulator {
    pub sale: i64,
    pub refund: i64,
}

/// The fiscal module's receipt memory when `/info/` reports no
/// `receipt_max_count` (0). **ASSUMED**: the spec ("Tools") names
/// the field but gives no value; 100 000 is the simulator's figure, kept
/// low rather than high so a warning comes early rather than late.
pub const ASSUMED_RECEIPT_MAX_COUNT: i64 = 100_000;
/// The same for `zreport_max_count`. **ASSUMED** like the above: 1 000 Z
/// reports (about three years of daily shifts); a full Z-report space
/// refuses a new shift (`ERROR_ZREPORT_SPACE_IS_FULL`, 0x9028, the
/// simulator's code).
pub const ASSUMED_ZREPORT_MAX_COUNT: i64 = 1_000;

impl Info {
    /// The fiscal module's counters against their maxima, for the deadline
    /// model; a maximum the box does not report is the ASSUMED one above.
    pub fn capacity(&self) -> crate::deadlines::BoxCapacity {
        let or = |v: i64, assumed: i64| if v > 0 { v } else { assumed };
        crate::deadlines::BoxCapacity {
            receipts: self.receipt_count,
            receipts_max: or(self.receipt_max_count, ASSUMED_RECEIPT_MAX_COUNT),
            zreports: self.zreport_count,
            zreports_max: or(self.zreport_max_count, ASSUMED_ZREPORT_MAX_COUNT),
        }
    }
}

/// `/info/` `data` \[spec "Tools"\]; memory counters beyond these are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub terminal_id: String,
    pub applet_version: String,
    pub current_receipt_seq: i64,
    pub current_time: String,
    pub last_operation_time: String,
    pub receipt_count: i64,
    pub receipt_max_count: i64,
    pub zreport_count: i64,
    pub zreport_max_count: i64,
    pub cashbox_number: i64,
    pub version_code: i64,
    pub is_updated: bool,
    pub cash_accomulator: Accumulator,
    pub card_accomulator: Accumulator,
    pub vat_accomulator: Accumulator,
}

// ───────────────────────────── payments ─────────────────────────────

/// `POST /payment/{click|payme|uzum|anor}` \[spec "Payments"\].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPayment {
    #[serde(deserialize_with = "scaled_int")]
    pub amount: i64,
    /// The customer's QR as scanned.
    pub qr_code: String,
}

/// `POST /payment/{provider}_confirm`: `{payment_id | transaction_id, qr_code}`
/// \[spec "Payments", seed002\]. `id` is sent under [`Provider::confirm_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    pub provider: Provider,
    pub id: String,
    /// The fiscal receipt's Soliq URL.
    pub qr_code: String,
}

impl Confirm {
    pub fn body(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert(
            self.provider.confirm_key().into(),
            Value::String(self.id.clone()),
        );
        m.insert("qr_code".into(), Value::String(self.qr_code.clone()));
        Value::Object(m)
    }

    /// Read a confirm body: every missing or mistyped field named.
    pub fn parse(provider: Provider, body: &Value) -> Result<Confirm, Vec<(String, String)>> {
        let mut bad = Vec::new();
        let key = provider.confirm_key();
        let id = match body.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => {
                bad.push((key.to_string(), "This field is required.".to_string()));
                None
            }
        };
        let qr = match body.get("qr_code") {
            // The box wants the Soliq link; fiscald also takes the offline
            // link it answered while the box was away (and sends the Soliq
            // link once it exists).
            Some(Value::String(s)) if s.starts_with("https://") || s.starts_with("http://") => {
                Some(s.clone())
            }
            Some(Value::String(_)) => {
                bad.push((
                    "qr_code".into(),
                    format!("must be the receipt's link, {SOLIQ_CHECK_URL}?t=…&r=…&c=…&s=…"),
                ));
                None
            }
            _ => {
                bad.push(("qr_code".into(), "This field is required.".into()));
                None
            }
        };
        match (id, qr) {
            (Some(id), Some(qr_code)) if bad.is_empty() => Ok(Confirm {
                provider,
                id,
                qr_code,
            }),
            _ => Err(bad),
        }
    }
}

/// Card terminal payment `{amount}` or refund `{request_id, amount,
/// is_return: true}` → `{message, ppt_id}` \[spec "Payments"\].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPayment {
    #[serde(deserialize_with = "scaled_int")]
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub is_return: bool,
}

/// Scan2pay `{amount, order_id, print}` \[spec "Payments"\].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrPay {
    #[serde(deserialize_with = "scaled_int")]
    pub amount: i64,
    pub order_id: String,
    #[serde(default)]
    pub print: bool,
}

/// UzQR `{external_id (≤20 chars), amount: "100.00", print, banners}` \[spec].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneQrCreate {
    pub external_id: String,
    pub amount: String,
    #[serde(default)]
    pub print: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banners: Vec<Banner>,
}

/// The longest UzQR `external_id` \[spec "Payments"\].
pub const ONE_QR_EXTERNAL_ID_MAX: usize = 20;

/// UzQR invoice status \[spec "Payments"\]: 1 in progress, 2 paid, 3 declined.
pub const ONE_QR_IN_PROGRESS: u8 = 1;
pub const ONE_QR_PAID: u8 = 2;
pub const ONE_QR_DECLINED: u8 = 3;

/// Anor `payment_status` 2 = paid \[spec "Payments"\].
pub const ANOR_PAID: i64 = 2;

/// A banner as a printed block. Styles \[spec "Tools"\]: `font_width` /
/// `font_height` magnification, `align` left|center|right, `is_bold`,
/// `qr_size`; **ASSUMED**: barcodes print as CODE128 whatever
/// `barcode_type` says, `qr_code_frame` prints as a plain QR.
pub fn print_block(b: &Banner) -> crate::devices::escpos::layout::Block {
    use crate::devices::escpos::Align;
    use crate::devices::escpos::layout::{Block, BlockKind};
    let style = b.style.clone().unwrap_or_default();
    Block {
        kind: match b.kind {
            BannerKind::Text => BlockKind::Text,
            BannerKind::Barcode => BlockKind::Barcode,
            BannerKind::QrCode | BannerKind::QrCodeFrame => BlockKind::Qr,
        },
        data: b.data.clone(),
        bold: style.is_bold.unwrap_or(false),
        width: style.font_width.unwrap_or(1),
        height: style.font_height.unwrap_or(1),
        align: match style.align.as_deref() {
            Some("left") => Align::Left,
            Some("right") => Align::Right,
            _ => Align::Center,
        },
        qr_size: style.qr_size,
        cut: b.cut.unwrap_or(false),
    }
}

// ───────────────────────── domain ⇄ wire ─────────────────────────

use crate::domain::uz::{
    Commission, OwnerType, QrPayment, QrProvider, UzLine, UzReceipt, UzReceiptType,
};
use crate::domain::{
    Buyer, CalculationMethod, Cashier, Draft, DraftItem, Line, Payment, PaymentKind,
    PaymentSubject, Receipt, ReceiptKind, Vat,
};

fn provider_of(p: QrProvider) -> Provider {
    match p {
        QrProvider::Click => Provider::Click,
        QrProvider::Payme => Provider::Payme,
        QrProvider::Uzum => Provider::Uzum,
        QrProvider::Anor => Provider::Anor,
    }
}

fn qr_provider_of(p: Provider) -> QrProvider {
    match p {
        Provider::Click => QrProvider::Click,
        Provider::Payme => QrProvider::Payme,
        Provider::Uzum => QrProvider::Uzum,
        Provider::Anor => QrProvider::Anor,
    }
}

pub fn provider_from_domain(p: QrProvider) -> Provider {
    provider_of(p)
}

/// `/order/create/` (`refund = false`) or `/order/refuse/` as a domain
/// draft. Every shape problem is reported with its field (dotted path into
/// the request); the rules (line totals, VAT, IKPU…) are the domain's.
///
/// **ASSUMED** mappings: `price` is the line total and must equal
/// `product_price × amount / 1000` (Order.md); payments are `received_cash −
/// change` in cash and `received_card` (card terminals and QR providers
/// alike) electronic; `discount` and `other` above 0 are refused (fiscald has
/// no discount model yet); `receipt_type` absent on a sale means `order`.
pub fn draft_from_order(req: &OrderRequest, refund: bool) -> Result<Draft, Vec<(String, String)>> {
    let mut bad: Vec<(String, String)> = Vec::new();
    let required = "This field is required.".to_string();
    if req.products.is_empty() {
        bad.push(("products".into(), required.clone()));
    }
    let receipt_type = match (refund, req.receipt_type) {
        (_, None) | (_, Some(ReceiptType::Order)) => UzReceiptType::Order,
        (false, Some(ReceiptType::Prepaid)) => UzReceiptType::Prepaid,
        (false, Some(ReceiptType::Credit)) => UzReceiptType::Credit,
        (true, Some(_)) => {
            bad.push((
                "receipt_type".into(),
                "a refund returns a sale (order)".into(),
            ));
            UzReceiptType::Order
        }
    };
    let method = match receipt_type {
        UzReceiptType::Order => CalculationMethod::FullPay,
        UzReceiptType::Prepaid => CalculationMethod::FullPrepay,
        UzReceiptType::Credit => CalculationMethod::CreditTransfer,
    };
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for (i, p) in req.products.iter().enumerate() {
        let f = |name: &str| format!("products.{i}.{name}");
        let mut need = |name: &str, present: bool| {
            if !present {
                bad.push((f(name), required.clone()));
            }
        };
        need(
            "name",
            p.name.as_deref().is_some_and(|n| !n.trim().is_empty()),
        );
        need("amount", p.amount.is_some());
        need("price", p.price.is_some());
        need("product_price", p.product_price.is_some());
        need("class_code", p.class_code.is_some());
        need("package_code", p.package_code.is_some());
        need("vat", p.vat.is_some());
        let vat = match p.vat_percent {
            None => Vat::None,
            Some(0) => Vat::Vat0,
            Some(12) => Vat::Vat12,
            Some(other) => {
                bad.push((
                    f("vat_percent"),
                    format!("must be 12, 0 or null (no VAT), got {other}"),
                ));
                Vat::None
            }
        };
        for (name, v) in [("discount", p.discount), ("other", p.other)] {
            if v.unwrap_or(0) != 0 {
                bad.push((
                    f(name),
                    "discounts are not supported by fiscald yet: send the discounted product_price and price".into(),
                ));
            }
        }
        let owner_type = match p.owner_type {
            None => None,
            Some(n) => match OwnerType::from_number(n) {
                Some(o) => Some(o),
                None => {
                    bad.push((
                        f("owner_type"),
                        "0 resold, 1 own production or 2 service provider".into(),
                    ));
                    None
                }
            },
        };
        items.push(DraftItem {
            line: Line {
                name: p.name.clone().unwrap_or_default(),
                quantity: quantity_from_thousandths(p.amount.unwrap_or(0)),
                price: money_from_tiyin(p.product_price.unwrap_or(0)),
                vat,
                payment_subject: if owner_type == Some(OwnerType::ServiceProvider) {
                    PaymentSubject::Service
                } else {
                    PaymentSubject::Commodity
                },
                calculation_method: method,
                barcode: p.barcode.clone().filter(|b| !b.is_empty()),
                class_code: p.class_code.clone(),
                package_code: p.package_code.clone(),
                marking: p.labels.clone(),
                unit: Default::default(),
                discount: Money::ZERO,
                agent: None,
            },
            total: p.price.map(money_from_tiyin),
        });
        lines.push(UzLine {
            vat_amount: money_from_tiyin(p.vat.unwrap_or(0)),
            unit_name: p.unit_name.clone(),
            owner_type,
            commission: p.comission_info.as_ref().map(|c| Commission {
                inn: c.inn.clone().filter(|s| !s.is_empty()),
                pinfl: c.pinfl.clone().filter(|s| !s.is_empty()),
            }),
        });
    }
    let time = match req.time.as_deref() {
        Some(t) if chrono::NaiveDateTime::parse_from_str(t, REQUEST_TIME_FORMAT).is_ok() => {
            t.to_string()
        }
        Some(_) => {
            bad.push(("time".into(), "must be yyyy-MM-dd HH:mm:ss".into()));
            String::new()
        }
        None => {
            bad.push(("time".into(), required.clone()));
            String::new()
        }
    };
    if refund && req.qr_code.as_deref().is_none_or(|q| q.trim().is_empty()) {
        bad.push(("qr_code".into(), required.clone()));
    }
    let cash = req.received_cash.unwrap_or(0);
    let change = req.change.unwrap_or(0);
    let card = req.received_card.unwrap_or(0);
    for (name, v) in [
        ("received_cash", cash),
        ("change", change),
        ("received_card", card),
    ] {
        if v < 0 {
            bad.push((name.into(), "must not be negative".into()));
        }
    }
    let mut payments = Vec::new();
    if cash > 0 {
        payments.push(Payment {
            kind: PaymentKind::Cash,
            amount: money_from_tiyin(cash),
        });
    }
    if card > 0 {
        payments.push(Payment {
            kind: PaymentKind::Electronic,
            amount: money_from_tiyin(card),
        });
    }
    if let Some(ct) = req.card_type
        && !CARD_TYPES.contains(&ct)
    {
        bad.push((
            "card_type".into(),
            "1 corporate, 2 personal or 3 social".into(),
        ));
    }
    // Per-provider rule (spec "Orders"): a QR payment names its provider and
    // the provider's payment id.
    let qr_payment = match req.extra_info.as_ref() {
        Some(x) if x.qr_payment_provider.is_some() || x.qr_payment_id.is_some() => {
            let provider = x
                .qr_payment_provider
                .and_then(|c| u32::try_from(c).ok())
                .and_then(Provider::from_qr_payment_provider);
            if provider.is_none() {
                bad.push((
                    "extra_info.qr_payment_provider".into(),
                    "141 Payme, 64 Click, 161 Uzum or 187 Anor".into(),
                ));
            }
            if x.qr_payment_id
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
            {
                bad.push(("extra_info.qr_payment_id".into(), required.clone()));
            }
            if card == 0 {
                bad.push((
                    "received_card".into(),
                    "a QR payment is paid electronically: give its amount in received_card".into(),
                ));
            }
            provider.map(|p| QrPayment {
                provider: qr_provider_of(p),
                payment_id: x.qr_payment_id.clone().unwrap_or_default(),
                phone_number: x.phone_number.clone(),
            })
        }
        _ => None,
    };
    if !bad.is_empty() {
        return Err(bad);
    }
    let buyer = (req.email.is_some() || req.sms_phone_number.is_some()).then(|| Buyer {
        email: req.email.clone().filter(|e| !e.is_empty()),
        phone: req.sms_phone_number.clone().filter(|p| !p.is_empty()),
        name: None,
        inn: None,
    });
    Ok(Draft {
        kind: if refund {
            ReceiptKind::SaleReturn
        } else {
            ReceiptKind::Sale
        },
        tax_system: None,
        currency: None,
        items,
        payments,
        total: None,
        discount: None,
        original_date: None,
        correction: None,
        cashier: req
            .cashier
            .clone()
            .filter(|c| !c.trim().is_empty())
            .map(|name| Cashier { name, inn: None }),
        buyer: buyer.filter(|b| b.email.is_some() || b.phone.is_some()),
        uz: Some(UzReceipt {
            receipt_type,
            refund_of: req.qr_code.clone().filter(|_| refund),
            lines,
            pos_number: req.number.as_ref().map(|n| match n {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            pos_time: time,
            card_type: req.card_type,
            ppt_id: req.ppt_id.clone(),
            qr_payment,
            open_cashbox: req.open_cashbox.unwrap_or(false),
        }),
    })
}

/// A domain pointer (`/items/0/total`) as the dialect's field
/// (`products.0.price`), for rule violations.
pub fn field_of_pointer(pointer: &str) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["items", i, rest @ ..] => {
            let field = match rest {
                [] => String::new(),
                ["quantity"] => "amount".into(),
                ["price"] => "product_price".into(),
                ["total"] => "price".into(),
                ["vat"] => "vat_percent".into(),
                ["vat_amount"] => "vat".into(),
                ["marking", m] => format!("labels.{m}"),
                ["commission", rest @ ..] => {
                    let mut f = String::from("comission_info");
                    for r in rest {
                        f.push('.');
                        f.push_str(r);
                    }
                    f
                }
                other => other.join("."),
            };
            if field.is_empty() {
                format!("products.{i}")
            } else {
                format!("products.{i}.{field}")
            }
        }
        ["items"] | ["total"] => "products".into(),
        ["payments", ..] => "received_cash".into(),
        ["uz", "refund_of"] => "qr_code".into(),
        ["uz", "card_type"] => "card_type".into(),
        ["uz", "qr_payment", ..] => "extra_info.qr_payment_id".into(),
        ["uz", "receipt_type"] | ["kind"] => "receipt_type".into(),
        ["cashier", ..] => "cashier".into(),
        ["buyer", "email"] => "email".into(),
        ["buyer", ..] => "sms_phone_number".into(),
        other => other.join("."),
    }
}

/// The request fiscald sends the box for a journaled receipt: `uuid` is the
/// receipt's id (the box's idempotency key), `refund_qr` the original's
/// Soliq link for a refund. The box gets the POS's own `time` and `number`
/// when the receipt came through the FiscalBox dialect, else `time`.
pub fn order_from_receipt(
    receipt: &Receipt,
    uuid: &str,
    number: u64,
    time: &str,
    refund_qr: Option<String>,
) -> OrderRequest {
    let uz = receipt.uz.as_ref();
    let products = receipt
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let l = &item.line;
            let extra = uz.and_then(|u| u.lines.get(i));
            let vat_percent = match l.vat {
                Vat::Vat12 => Some(12),
                Vat::Vat0 => Some(0),
                _ => None,
            };
            let vat = extra.map(|e| e.vat_amount).unwrap_or(match l.vat {
                Vat::Vat12 => crate::domain::uz::included_vat(item.total, 12),
                _ => Money::ZERO,
            });
            ProductWire {
                name: Some(l.name.clone()),
                barcode: l.barcode.clone(),
                amount: Some(thousandths(l.quantity)),
                unit_name: extra.and_then(|e| e.unit_name.clone()),
                units: None,
                price: Some(tiyin(item.total)),
                product_price: Some(tiyin(l.price)),
                vat: Some(tiyin(vat)),
                vat_percent,
                discount: Some(0),
                discount_percent: None,
                other: Some(0),
                labels: l.marking.clone(),
                class_code: l.class_code.clone(),
                package_code: l.package_code.clone(),
                owner_type: extra.and_then(|e| e.owner_type).map(OwnerType::number),
                comission_info: extra
                    .and_then(|e| e.commission.as_ref())
                    .map(|c| CommissionInfo {
                        inn: c.inn.clone(),
                        pinfl: c.pinfl.clone(),
                    }),
            }
        })
        .collect();
    let paid = |k: PaymentKind| {
        receipt
            .payments
            .iter()
            .filter(|p| p.kind == k)
            .map(|p| tiyin(p.amount))
            .sum::<i64>()
    };
    let refund = receipt.kind == ReceiptKind::SaleReturn;
    OrderRequest {
        number: Some(
            uz.and_then(|u| u.pos_number.clone())
                .map(Value::String)
                .unwrap_or_else(|| json!(number)),
        ),
        receipt_type: (!refund).then(|| match uz.map(|u| u.receipt_type) {
            Some(UzReceiptType::Prepaid) => ReceiptType::Prepaid,
            Some(UzReceiptType::Credit) => ReceiptType::Credit,
            _ => ReceiptType::Order,
        }),
        products,
        time: Some(
            uz.map(|u| u.pos_time.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| time.to_string()),
        ),
        cashier: receipt.cashier.as_ref().map(|c| c.name.clone()),
        uuid: Some(uuid.to_string()),
        received_cash: Some(paid(PaymentKind::Cash)),
        change: Some(tiyin(receipt.change)),
        received_card: Some(paid(PaymentKind::Electronic)),
        card_type: uz.and_then(|u| u.card_type),
        ppt_id: uz.and_then(|u| u.ppt_id.clone()),
        scan2pay_paid: None,
        extra_info: uz.and_then(|u| u.qr_payment.as_ref()).map(|q| ExtraInfo {
            phone_number: q.phone_number.clone(),
            qr_payment_id: Some(q.payment_id.clone()),
            qr_payment_provider: Some(i64::from(provider_of(q.provider).qr_payment_provider())),
            scan2pay_id: None,
            card_number: None,
        }),
        qr_code: refund_qr,
        send_email: None,
        email: receipt.buyer.as_ref().and_then(|b| b.email.clone()),
        sms_phone_number: receipt.buyer.as_ref().and_then(|b| b.phone.clone()),
        open_cashbox: None,
        banners: Vec::new(),
        prices: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_z_reports_times_and_the_inn_rule() {
        let t = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(
            zreport_time("2026-11-29 08:00:00"),
            Some(t("2026-11-29T08:00:00"))
        );
        assert_eq!(
            zreport_time("20261129200000"),
            Some(t("2026-11-29T20:00:00"))
        );
        assert_eq!(zreport_time(""), None, "an open shift's close time");
        assert_eq!(zreport_time("29.11.2026"), None);
        assert!(is_inn("306429662"));
        for bad in ["30642966", "3064296620", "30642966a", "12345678901234"] {
            assert!(!is_inn(bad), "{bad}");
        }
        // The Debug of the login and the token shows neither secret.
        let login = BillingLogin {
            username: "shop".into(),
            password: "pw-planted".into(),
        };
        let token = BillingToken {
            token: "tok-planted".into(),
        };
        let shown = format!("{login:?} {token:?}");
        assert!(
            !shown.contains("pw-planted") && !shown.contains("tok-planted"),
            "{shown}"
        );
        assert!(shown.contains("shop"), "{shown}");
    }

    #[test]
    fn scaled_integers_accept_integers_integral_floats_and_digit_strings() {
        let p: ProductWire =
            serde_json::from_str(r#"{"amount": 1000.0, "price": "230000", "vat": 6522}"#).unwrap();
        assert_eq!(p.amount, Some(1000));
        assert_eq!(p.price, Some(230000));
        assert_eq!(p.vat, Some(6522));
        let err = serde_json::from_str::<ProductWire>(r#"{"amount": 1.5}"#).unwrap_err();
        assert!(err.to_string().contains("must be an integer"), "{err}");
        assert!(serde_json::from_str::<ProductWire>(r#"{"price": "12a"}"#).is_err());
        assert!(serde_json::from_str::<ProductWire>(r#"{"price": true}"#).is_err());
    }

    #[test]
    fn units_convert_through_one_place() {
        assert_eq!(money_from_tiyin(50000), Money(50000));
        assert_eq!(tiyin(Money::parse("500").unwrap()), 50000);
        assert_eq!(
            quantity_from_thousandths(250),
            Quantity::parse("0.25").unwrap()
        );
        assert_eq!(uzqr_amount("100.00").unwrap(), Money(10000));
        assert_eq!(uzqr_amount_text(Money(10050)), "100.50");
        assert!(uzqr_amount("100.001").is_err());
    }

    #[test]
    fn endpoints_resolve_with_and_without_trailing_slash() {
        assert_eq!(
            Endpoint::resolve(Method::Post, "/order/create/"),
            Some(Endpoint::OrderCreate)
        );
        assert_eq!(
            Endpoint::resolve(Method::Post, "/order/create"),
            Some(Endpoint::OrderCreate)
        );
        assert_eq!(
            Endpoint::resolve(Method::Get, "/zreport/close/"),
            Some(Endpoint::ZReportClose)
        );
        assert_eq!(
            Endpoint::resolve(Method::Post, "/zreport/close"),
            Some(Endpoint::ZReportPrint)
        );
        assert_eq!(
            Endpoint::resolve(Method::Post, "/payment/anor_confirm"),
            Some(Endpoint::PaymentConfirm(Provider::Anor))
        );
        assert_eq!(
            Endpoint::resolve(Method::Get, "/payment/xumo_shortreport/"),
            Some(Endpoint::CardShortReport(CardTerminal::Xumo))
        );
        assert_eq!(Endpoint::resolve(Method::Get, "/order/create"), None);
        assert!(Endpoint::path_exists("/order/create/"));
        assert_eq!(Endpoint::resolve(Method::Get, "/nope"), None);
        // Every endpoint has one (method, path).
        let all = Endpoint::all();
        for e in &all {
            assert_eq!(Endpoint::resolve(e.method(), &e.path()), Some(*e));
        }
    }

    #[test]
    fn wrapped_endpoints_wrap_success_only() {
        let ok = Envelope::ok(json!({"number": 1}));
        assert_eq!(
            ok.render(Some(Endpoint::ZReportInfo)),
            json!({"result": {"data": {"number": 1}, "error": null, "is_success": true}})
        );
        assert_eq!(
            ok.render(Some(Endpoint::Info)),
            json!({"data": {"number": 1}, "error": null, "is_success": true})
        );
        let err = Envelope::fail(ErrorBody::new(Code::ZReportAlreadyClose, Value::Null));
        assert_eq!(
            err.render(Some(Endpoint::ZReportClose)),
            json!({"data": null, "error": {"code": 9326, "message": "ZREPORT_ALREADY_CLOSE", "data": null}, "is_success": false})
        );
        // Both shapes parse.
        for body in [
            ok.render(Some(Endpoint::ZReportInfo)),
            ok.render(Some(Endpoint::Info)),
        ] {
            let parsed = Envelope::parse(body.to_string().as_bytes()).unwrap();
            assert_eq!(parsed, ok);
        }
    }

    #[test]
    fn codes_are_decimals_and_round_trip() {
        assert_eq!(
            Code::FiscalModule(FiscalModuleCode::ZReportIsNotOpen).value(),
            36909
        );
        assert_eq!(
            Code::FiscalModule(FiscalModuleCode::NotEnoughCashForRefund).value(),
            36913
        );
        for v in [
            7, 101, 102, 9326, 9327, 36909, 36913, 65275, 65531, 404, 0x9001,
        ] {
            assert_eq!(Code::from_value(v).unwrap().value(), v);
        }
        assert_eq!(Code::from_value(0x9036), None);
        let e = ErrorBody::validation(&[
            (
                "products.0.class_code".into(),
                "This field is required.".into(),
            ),
            ("products.0.class_code".into(), "must be 17 digits".into()),
            ("time".into(), "This field is required.".into()),
        ]);
        assert_eq!(e.code, 7);
        let listed: Value = serde_json::from_str(&e.message).unwrap();
        assert_eq!(
            listed,
            json!({"products.0.class_code": ["This field is required.", "must be 17 digits"], "time": ["This field is required."]})
        );
    }

    #[test]
    fn fiscal_data_reads_both_spellings_and_the_qr_round_trips() {
        let snake: FiscalData = serde_json::from_value(json!({
            "terminal_id": "UZ170703100189", "receipt_count": 643, "date_time": "20200518221403",
            "fiscal_sign": "248429044289", "applet_version": "0300",
            "qr_url": "https://ofd.soliq.uz/check?t=UZ170703100189&r=643&c=20200518221403&s=248429044289"
        }))
        .unwrap();
        let camel: FiscalData = serde_json::from_value(snake.camel_case()).unwrap();
        assert_eq!(camel, snake);
        let url = soliq_qr_url("UZ170703100189", 643, "20200518221403", "248429044289");
        assert_eq!(url, snake.qr_url);
        assert_eq!(
            parse_soliq_qr(&url),
            Some(SoliqQr {
                terminal_id: "UZ170703100189".into(),
                receipt_seq: 643,
                date_time: "20200518221403".into(),
                fiscal_sign: "248429044289".into()
            })
        );
        assert_eq!(parse_soliq_qr("https://example.com/?t=1"), None);
    }

    #[test]
    fn confirm_bodies_name_the_payment_per_provider() {
        let qr = soliq_qr_url("UZ1", 1, "20260101120000", "123456789012");
        let c = Confirm {
            provider: Provider::Anor,
            id: "a12f".into(),
            qr_code: qr.clone(),
        };
        assert_eq!(c.body(), json!({"transaction_id": "a12f", "qr_code": qr}));
        assert_eq!(Confirm::parse(Provider::Anor, &c.body()), Ok(c));
        let missing = Confirm::parse(Provider::Click, &json!({"qr_code": "x"})).unwrap_err();
        assert_eq!(missing[1].0, "qr_code");
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].0, "payment_id");
        assert_eq!(
            Provider::from_qr_payment_provider(187),
            Some(Provider::Anor)
        );
    }
}

// ───────────────────────────── billing ─────────────────────────────
//
// The FiscalBox billing (cloud): login and the orders count for a period
// and INN \[spec "Billing", Billing.md\].

/// `POST {username, password}` → `{token}` \[Billing.md "Authorization in billing"\].
pub const BILLING_LOGIN_PATH: &str = "/api/v1/login/";
/// `GET ?start_date&end_date&inn` → `{status, filters, data}` \[Billing.md "Orders count"\].
pub const BILLING_COUNT_PATH: &str = "/api/v1/orders/count/";
/// The `Authorization` value: `Token <token>` \[Billing.md header table; its
/// prose spells the header "Autherization", the table "Authorization" —
/// **ASSUMED** the table\].
pub fn billing_authorization(token: &str) -> String {
    format!("Token {token}")
}
/// `start_date`/`end_date`: `YYYY-MM-DDTHH:MM:SS` with the `T` \[Billing.md\].
/// **ASSUMED**: in the till's local time (Tashkent), like every other
/// FiscalBox time; the docs name no zone.
pub const BILLING_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// `POST /api/v1/login/` body. Its `Debug` never shows the password.
#[derive(Clone, Serialize, Deserialize)]
pub struct BillingLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BillingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The login's reply. Its `Debug` never shows the token.
#[derive(Clone, Deserialize, Serialize)]
pub struct BillingToken {
    pub token: String,
}

impl std::fmt::Debug for BillingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingToken")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// **ASSUMED**: the billing counts the orders of *every* till registered
/// under the INN; fiscald reconciles them with *this* till's journal, so
/// the check is meaningful for one till per INN. A shop with two tills (two
/// fiscald journals) under one INN sees `different` on each till — the
/// billing's count is the sum of both — with no receipt named (the
/// difference is negative: the billing saw more orders than the journal).
/// Billing.md's count endpoint takes only a period and an INN (no terminal
/// id), so there is nothing narrower to ask for.
pub const BILLING_ONE_TILL_PER_INN: bool = true;

/// **ASSUMED** statuses (Billing.md gives examples of the bodies, not the
/// codes): an expired or unknown token is HTTP 401 (`{"detail": "Invalid
/// token."}`, Django REST framework's `TokenAuthentication`, which the
/// `Token <key>` header and the `detail` bodies point to); a wrong login is
/// HTTP 400 (`"Unable to log in with provided credentials."`, DRF's
/// `ObtainAuthToken`). fiscald logs in again once on a 401 and treats a 400
/// or 422 as the billing refusing the request (not asked again).
pub const BILLING_EXPIRED_TOKEN_STATUS: u16 = 401;
pub const BILLING_BAD_LOGIN_STATUS: u16 = 400;

/// The shop's INN (STIR, taxpayer number) as the billing's `inn`: 9
/// digits. **ASSUMED**: Billing.md's only example (`inn=306429662`) has 9
/// digits and the docs state no rule; 9 digits is the common form of an
/// Uzbek legal entity's STIR, not verified against a legal text here. An
/// individual entrepreneur's 14-digit PINFL is therefore refused by the
/// config check (`fiscalbox.billing.inn`).
pub const INN_DIGITS: usize = 9;

/// Whether `inn` has the form [`INN_DIGITS`] asks for.
pub fn is_inn(inn: &str) -> bool {
    inn.len() == INN_DIGITS && inn.bytes().all(|d| d.is_ascii_digit())
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct BillingCountData {
    pub total_orders: i64,
    /// Billing.md's example: `700.0`. **ASSUMED** in sum (a float, 2
    /// decimals meaningful), unlike the box's tiyin; [`billing_amount_tiyin`].
    pub total_amount: f64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct BillingCountReply {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub filters: Value,
    pub data: BillingCountData,
}

/// **ASSUMED**: orders counted by the billing are sale receipts only (the
/// box's refunds are not "orders" in its API); refunds are left out of the
/// journal side too.
pub const BILLING_COUNTS_REFUNDS: bool = false;

/// The billing's `total_amount` (sum, float) in tiyin.
pub fn billing_amount_tiyin(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Tiyin as the billing writes amounts (sum, float).
pub fn billing_amount(tiyin: i64) -> f64 {
    tiyin as f64 / 100.0
}
