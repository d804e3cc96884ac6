//! The Bitrix24 REST cashbox (seed 003, `shared/spec/bitrix24-and-gateway.md`):
//! its code tables and every fact about Bitrix24 fiscald relies on.
//! **Everything ASSUMED about Bitrix24 lives here** and nowhere else.
//!
//! Verified against seed 003 (Bitrix24's "Example of standard REST API cash
//! register") and the spec notes:
//! - PRINT replies `{"UUID": …}` or `{"ERRORS": [...]}`; CHECK replies
//!   `{"STATUS": "WAIT"}`, `{"STATUS": "ERROR", "ERROR": …}` or `DONE` with
//!   `UUID`, `REG_NUMBER_KKT`, `FISCAL_DOC_ATTR`, `FISCAL_DOC_NUMBER`,
//!   `FISCAL_RECEIPT_NUMBER`, `FN_NUMBER`, `SHIFT_NUMBER`, `PRINT_END_TIME`
//!   (a unix timestamp) — the seed's example handler;
//! - a request without `cashbox_params[AUTH][LOGIN]` / `[PASSWORD]` is refused
//!   with "Authorization data is missing" (the seed's example handler);
//! - the value sets of `type`, `calculated_sign`, `payment_object`,
//!   `payment_method` and payment `type` (spec notes).
//!
//! ASSUMED (the seed gives names, not their fiscal meaning):
//! - [`receipt_kind`]: `*return*` types are returns; `calculated_sign =
//!   consumption` (or `operation`) turns a sale into a purchase;
//! - [`calculation_method`]: `prepayment` is partial prepayment (1214 = 2),
//!   `credit` is "transfer on credit" (1214 = 6); a line without
//!   `payment_method` takes the method its receipt `type` names;
//! - `base_price` is the price before the line's discount and `sum` the line's
//!   total after it, so the line's discount is base_price × quantity − sum;
//! - `nomenclature_code` is the unit's marking code;
//! - CHECK carries `cashbox_params` like PRINT, so it is authenticated the
//!   same way; a CHECK for an unknown uuid answers `ERROR`.

use crate::domain::{CalculationMethod, PaymentKind, PaymentSubject, ReceiptKind};

/// The seed handler's message for a request without credentials.
pub const AUTH_MISSING: &str = "Authorization data is missing";

/// Receipt `type` values (spec: sell, sellreturn, sellreturncash,
/// advancepayment, prepayment, prepaymentreturn, fullprepayment, credit,
/// creditpayment), each with: is it a return, and the calculation method its
/// lines take when they do not say.
pub const TYPES: &[(&str, bool, CalculationMethod)] = &[
    ("sell", false, CalculationMethod::FullPay),
    ("sellreturn", true, CalculationMethod::FullPay),
    ("sellreturncash", true, CalculationMethod::FullPay),
    ("advancepayment", false, CalculationMethod::Advance),
    ("prepayment", false, CalculationMethod::PartialPrepay),
    ("prepaymentreturn", true, CalculationMethod::PartialPrepay),
    ("fullprepayment", false, CalculationMethod::FullPrepay),
    ("credit", false, CalculationMethod::CreditTransfer),
    ("creditpayment", false, CalculationMethod::CreditPayment),
];

/// `calculated_sign` values.
pub const SIGNS: &[&str] = &["income", "consumption"];

pub fn receipt_kind(is_return: bool, consumption: bool) -> ReceiptKind {
    match (is_return, consumption) {
        (false, false) => ReceiptKind::Sale,
        (true, false) => ReceiptKind::SaleReturn,
        (false, true) => ReceiptKind::Purchase,
        (true, true) => ReceiptKind::PurchaseReturn,
    }
}

/// Item `payment_method` → tag 1214.
pub const PAYMENT_METHODS: &[(&str, CalculationMethod)] = &[
    ("full_payment", CalculationMethod::FullPay),
    ("advance", CalculationMethod::Advance),
    ("prepayment", CalculationMethod::PartialPrepay),
    ("full_prepayment", CalculationMethod::FullPrepay),
    ("credit", CalculationMethod::CreditTransfer),
    ("credit_payment", CalculationMethod::CreditPayment),
];

/// Item `payment_object` → tag 1212.
pub const PAYMENT_OBJECTS: &[(&str, PaymentSubject)] = &[
    ("commodity", PaymentSubject::Commodity),
    ("excise", PaymentSubject::Excise),
    ("job", PaymentSubject::Job),
    ("service", PaymentSubject::Service),
    ("payment", PaymentSubject::Payment),
];

/// Payment `type` → how the buyer paid, and whether Bitrix calls it cash
/// (`is_cash` must agree when sent).
pub const PAYMENT_TYPES: &[(&str, PaymentKind, bool)] = &[
    ("cash", PaymentKind::Cash, true),
    ("cashless", PaymentKind::Electronic, false),
    ("advance", PaymentKind::Prepaid, false),
    ("credit", PaymentKind::Credit, false),
];

/// The accepted spellings of a table, for messages.
pub fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The `CONFIG` sections fiscald reads from `cashbox_params` (seed 003's
/// example `sale.cashbox.handler.add`).
pub fn handler_config() -> serde_json::Value {
    serde_json::json!({
        "AUTH": {
            "LABEL": "Authorization (fiscald [bitrix24] login and password)",
            "ITEMS": {
                "LOGIN": {"TYPE": "STRING", "REQUIRED": "Y", "LABEL": "Login"},
                "PASSWORD": {"TYPE": "STRING", "REQUIRED": "Y", "LABEL": "Password"}
            }
        }
    })
}

/// The body of `sale.cashbox.handler.add` for a fiscald reachable at `base`.
pub fn handler_json(base: &str) -> serde_json::Value {
    let base = base.trim_end_matches('/');
    serde_json::json!({
        "CODE": "fiscald",
        "NAME": "fiscald",
        "SORT": 100,
        "SUPPORTS_FFD105": "Y",
        "SETTINGS": {
            "PRINT_URL": format!("{base}/bitrix24/print"),
            "CHECK_URL": format!("{base}/bitrix24/check"),
            "HTTP_VERSION": "1.1",
            "CONFIG": handler_config()
        }
    })
}
