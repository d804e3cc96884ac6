//! The payment gateway's fiscalization `cheque` (seed 004,
//! `shared/spec/bitrix24-and-gateway.md`): its code tables and every fact
//! about the gateway that fiscald relies on. **Everything ASSUMED about the
//! gateway lives here** and nowhere else.
//!
//! Verified against seed 004 (the gateway's own documentation, section 5.6):
//! - `cheque_type` 0 income, 1 expense, 2 return of income, 3 return of expense;
//! - `tax_system` 0 general … 5 patent;
//! - position `tax` 1 = 20 %, 2 = 10 %, 3 = 0 %, 4 = no VAT, 5 = 20/120,
//!   6 = 10/110 (the *meaning* of the codes; which rate a till applies is the
//!   configured `[gateway.tax]` table, see `config/fiscald.toml`);
//! - `description` is String(128); Σ price × quantity must equal `amount`;
//! - `control` = hex SHA-1 of endpoint id + `client_orderid` + amount in minor
//!   units + email + merchant control key (the spec's worked example input
//!   `1111902B4FF51042john.smith@gmail.comB17F59B4-…`).
//!
//! ASSUMED (the seed is silent):
//! - the gateway took the money by card, so the receipt has one electronic
//!   payment of `amount` ([`PAYMENT_KIND`]);
//! - every position is settled in full (tag 1214 = 4, [`CALCULATION_METHOD`]);
//!   the payment subject (tag 1212) is configured (`[gateway] payment_subject`);
//! - the status call's `control` is SHA-1 of endpoint id + `client_orderid` +
//!   merchant key — fiscald's own definition, modelled on the sale's;
//! - a request may carry fields fiscald has no use for (card data, addresses,
//!   URLs): they are ignored and never stored or logged.

use crate::domain::{CalculationMethod, PaymentKind, ReceiptKind, TaxSystem};

/// Longest `description` of a position (seed 004: String(128)).
pub const MAX_DESCRIPTION_CHARS: usize = 128;
/// Longest `client_orderid` kept as the idempotency key.
pub const MAX_ORDER_ID_CHARS: usize = 128;
/// ASSUMED: how the buyer paid a gateway sale.
pub const PAYMENT_KIND: PaymentKind = PaymentKind::Electronic;
/// ASSUMED: how every position is settled.
pub const CALCULATION_METHOD: CalculationMethod = CalculationMethod::FullPay;

/// `cheque_type` → the receipt kind (seed 004: "0 - income, 1 - expense,
/// 2 - return of income, 3 - return of expense"; tag 1054 1–4 in that order).
pub fn receipt_kind(code: i64) -> Option<ReceiptKind> {
    Some(match code {
        0 => ReceiptKind::Sale,
        1 => ReceiptKind::Purchase,
        2 => ReceiptKind::SaleReturn,
        3 => ReceiptKind::PurchaseReturn,
        _ => return None,
    })
}

/// `tax_system` → tag 1055 (seed 004: "0 - General … 5 - Patent").
pub fn tax_system(code: i64) -> Option<TaxSystem> {
    Some(match code {
        0 => TaxSystem::Common,
        1 => TaxSystem::Simplified,
        2 => TaxSystem::SimplifiedWithExpense,
        3 => TaxSystem::Envd,
        4 => TaxSystem::CommonAgricultural,
        5 => TaxSystem::Patent,
        _ => return None,
    })
}

/// The position tax codes the gateway defines (seed 004), with their meaning,
/// for messages and the default `[gateway.tax]` table.
pub const TAX_CODES: &[(u8, &str)] = &[
    (1, "20"),
    (2, "10"),
    (3, "0"),
    (4, "none"),
    (5, "20/120"),
    (6, "10/110"),
];
