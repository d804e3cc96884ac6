//! Uzbek receipt rules: the country-specific extension of a receipt
//! ([`UzReceipt`]) and the rules every receipt of an Uzbek till obeys.
//!
//! Legal facts and their sources:
//! - VAT is 12 % and included in the price: the VAT of a line is
//!   `total × 12 / 112` (Tax Code of the Republic of Uzbekistan, art. 258, 12 %
//!   since 2023; FiscalBox Order.md: "vat — Nds price", spec "Orders":
//!   `vat = price × 12 / 112`). **ASSUMED**: rounded half away from zero to
//!   the tiyin and accepted within [`VAT_TOLERANCE_TIYIN`] of it, because POS
//!   apps compute it in floating point.
//! - Every product carries its IKPU (MXIK) class code, 17 digits, and its
//!   package code (tasnif.soliq.uz; FiscalBox Order.md, spec "Orders":
//!   both mandatory).
//! - `owner_type` 0 resold, 1 own production, 2 service provider; a commission
//!   receipt names the principal by INN (9 digits) or PINFL (14 digits)
//!   (spec "Orders"; Order.md allows a PINFL in the `inn` field too).
//! - A refund names its original by the original's QR link and may not
//!   return more of a product than was sold, summed over every refund.
//!
//! Pure: no I/O, no clock. FiscalBox's wire spellings live in
//! `fiscalbox::facts`; this module only knows the rules.

use super::money::Money;
use super::receipt::{Item, ReceiptKind, Vat};
use super::validate::Violation;
use serde::{Deserialize, Serialize};

/// How far (in tiyin) a POS's VAT may be from the exact `total × 12 / 112`.
pub const VAT_TOLERANCE_TIYIN: i64 = 1;
/// Length of an IKPU (MXIK) class code.
pub const CLASS_CODE_DIGITS: usize = 17;
pub const MAX_PACKAGE_CODE_CHARS: usize = 64;

/// Sale, advance or credit. No QR and no fiscal sign are printed on advance
/// and credit receipts (FiscalBox Order.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UzReceiptType {
    Order,
    Prepaid,
    Credit,
}

/// Who the seller is for the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerType {
    Resold,
    OwnProduction,
    ServiceProvider,
}

impl OwnerType {
    pub fn from_number(n: u8) -> Option<OwnerType> {
        match n {
            0 => Some(OwnerType::Resold),
            1 => Some(OwnerType::OwnProduction),
            2 => Some(OwnerType::ServiceProvider),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            OwnerType::Resold => 0,
            OwnerType::OwnProduction => 1,
            OwnerType::ServiceProvider => 2,
        }
    }
}

/// The principal of a commission sale.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commission {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinfl: Option<String>,
}

/// The QR payment providers of Uzbek tills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QrProvider {
    Click,
    Payme,
    Uzum,
    Anor,
}

/// A receipt paid through a QR provider: the provider's payment id, which
/// its confirm call names later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrPayment {
    pub provider: QrProvider,
    pub payment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// The Uzbek part of one line, beside the domain [`Item`] at the same index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UzLine {
    /// VAT included in the line total.
    pub vat_amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<OwnerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission: Option<Commission>,
}

/// The Uzbek extension of a receipt: what a FiscalBox needs beyond the
/// common model. Stored with the receipt; absent on other tills' receipts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UzReceipt {
    pub receipt_type: UzReceiptType,
    /// A refund: the QR link of the original receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<String>,
    /// One per item, same order.
    pub lines: Vec<UzLine>,
    /// The POS's own order number, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_number: Option<String>,
    /// The POS's `time` of the order, `yyyy-MM-dd HH:mm:ss` (till-local).
    pub pos_time: String,
    /// 1 corporate, 2 personal, 3 social.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<u8>,
    /// RRN from the card terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppt_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_payment: Option<QrPayment>,
    /// Open the drawer when the receipt is printed.
    #[serde(default)]
    pub open_cashbox: bool,
}

/// The VAT included in `total` at `percent`, rounded half away from zero.
pub fn included_vat(total: Money, percent: i64) -> Money {
    let num = i128::from(total.0) * i128::from(percent);
    let den = i128::from(100 + percent);
    let half = den / 2;
    let v = if num >= 0 {
        (num + half) / den
    } else {
        (num - half) / den
    };
    Money(v as i64)
}

/// The rules of an Uzbek till for validated items (and, when the receipt
/// came with one, its extension). Paths point into the common model
/// (`/items/N/...`) and, for extension fields, `/uz/...`.
pub fn check(kind: ReceiptKind, items: &[Item], uz: Option<&UzReceipt>) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = |f: &str| format!("/items/{i}/{f}");
        match &item.line.class_code {
            None => v.push(Violation::new(
                p("class_code"),
                "required",
                "an Uzbek receipt needs the product's IKPU (MXIK) class code, 17 digits",
            )),
            Some(c) if c.len() != CLASS_CODE_DIGITS || !c.bytes().all(|b| b.is_ascii_digit()) => v
                .push(Violation::new(
                    p("class_code"),
                    "ikpu_17_digits",
                    format!("IKPU class code must be 17 digits, got {c:?}"),
                )),
            Some(_) => {}
        }
        match &item.line.package_code {
            None => v.push(Violation::new(
                p("package_code"),
                "required",
                "an Uzbek receipt needs the product's package code (tasnif.soliq.uz)",
            )),
            Some(c) if c.trim().is_empty() || c.chars().count() > MAX_PACKAGE_CODE_CHARS => v
                .push(Violation::new(
                    p("package_code"),
                    "package_code",
                    format!(
                        "package code must be 1 to {MAX_PACKAGE_CODE_CHARS} characters without surrounding spaces"
                    ),
                )),
            Some(_) => {}
        }
        for (m, label) in item.line.marking.iter().enumerate() {
            if label.trim().is_empty() {
                v.push(Violation::new(
                    format!("/items/{i}/marking/{m}"),
                    "not_empty",
                    "a marking label must not be empty",
                ));
            }
        }
    }
    let Some(uz) = uz else {
        return v;
    };
    if uz.lines.len() != items.len() {
        v.push(Violation::new(
            "/uz/lines",
            "one_per_item",
            format!(
                "{} Uzbek line details for {} items",
                uz.lines.len(),
                items.len()
            ),
        ));
        return v;
    }
    for (i, (item, line)) in items.iter().zip(&uz.lines).enumerate() {
        let expected = match item.line.vat {
            Vat::Vat12 => included_vat(item.total, 12),
            _ => Money::ZERO,
        };
        if (line.vat_amount.0 - expected.0).abs() > VAT_TOLERANCE_TIYIN {
            v.push(Violation::new(
                format!("/items/{i}/vat_amount"),
                "vat_included",
                format!(
                    "VAT {} is not the {} included in the line total {} (total × {}/{})",
                    line.vat_amount,
                    expected,
                    item.total,
                    if item.line.vat == Vat::Vat12 { 12 } else { 0 },
                    if item.line.vat == Vat::Vat12 {
                        112
                    } else {
                        100
                    },
                ),
            ));
        }
        if let Some(c) = &line.commission {
            let digits = |s: &str, n: &[usize]| {
                n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
            };
            let inn_ok = c.inn.as_deref().is_none_or(|s| digits(s, &[9, 14]));
            let pinfl_ok = c.pinfl.as_deref().is_none_or(|s| digits(s, &[14]));
            if c.inn.is_none() && c.pinfl.is_none() {
                v.push(Violation::new(
                    format!("/items/{i}/commission"),
                    "inn_or_pinfl",
                    "a commission sale names the principal by INN (9 digits) or PINFL (14 digits)",
                ));
            }
            if !inn_ok {
                v.push(Violation::new(
                    format!("/items/{i}/commission/inn"),
                    "inn",
                    "INN must be 9 digits (or a 14-digit PINFL)",
                ));
            }
            if !pinfl_ok {
                v.push(Violation::new(
                    format!("/items/{i}/commission/pinfl"),
                    "pinfl",
                    "PINFL must be 14 digits",
                ));
            }
        }
    }
    match kind {
        ReceiptKind::SaleReturn => {
            if uz.refund_of.as_deref().is_none_or(|s| s.trim().is_empty()) {
                v.push(Violation::new(
                    "/uz/refund_of",
                    "required",
                    "a refund names its original receipt by its QR link",
                ));
            }
            if uz.receipt_type != UzReceiptType::Order {
                v.push(Violation::new(
                    "/uz/receipt_type",
                    "refund_of_sale",
                    "only a sale (receipt type order) is refunded",
                ));
            }
        }
        ReceiptKind::Sale => {
            if uz.refund_of.is_some() {
                v.push(Violation::new(
                    "/uz/refund_of",
                    "sale_only_refund",
                    "a sale does not name an original receipt",
                ));
            }
        }
        ReceiptKind::Purchase | ReceiptKind::PurchaseReturn => v.push(Violation::new(
            "/kind",
            "uz_kinds",
            "an Uzbek till issues sales and refunds only",
        )),
    }
    if let Some(q) = &uz.qr_payment
        && q.payment_id.trim().is_empty()
    {
        v.push(Violation::new(
            "/uz/qr_payment/payment_id",
            "required",
            "a QR payment needs the provider's payment id",
        ));
    }
    if let Some(t) = uz.card_type
        && !(1..=3).contains(&t)
    {
        v.push(Violation::new(
            "/uz/card_type",
            "card_type",
            "card type is 1 corporate, 2 personal or 3 social",
        ));
    }
    v
}

/// The identity of a product across a sale and its refunds: its class code,
/// name and unit price.
fn product_key(item: &Item) -> (Option<&str>, &str, Money) {
    (
        item.line.class_code.as_deref(),
        item.line.name.as_str(),
        item.line.price,
    )
}

/// A refund may return only products of the original, and of each no more
/// than was sold minus what earlier refunds returned. Paths point into the
/// refund's items.
pub fn check_refund(original: &[Item], earlier: &[Vec<Item>], refund: &[Item]) -> Vec<Violation> {
    let mut v = Vec::new();
    let sold = |key| -> i64 {
        original
            .iter()
            .filter(|i| product_key(i) == key)
            .map(|i| i.line.quantity.0)
            .sum()
    };
    let returned = |key| -> i64 {
        earlier
            .iter()
            .flatten()
            .filter(|i| product_key(i) == key)
            .map(|i| i.line.quantity.0)
            .sum()
    };
    for (i, item) in refund.iter().enumerate() {
        let key = product_key(item);
        let asked: i64 = refund[..=i]
            .iter()
            .filter(|x| product_key(x) == key)
            .map(|x| x.line.quantity.0)
            .sum();
        let s = sold(key);
        if s == 0 {
            v.push(Violation::new(
                format!("/items/{i}"),
                "refund_of_sold_product",
                format!(
                    "{:?} at {} was not sold on the original receipt",
                    item.line.name, item.line.price
                ),
            ));
            continue;
        }
        let r = returned(key);
        if r + asked > s {
            v.push(Violation::new(
                format!("/items/{i}/quantity"),
                "refund_exceeds_sale",
                format!(
                    "refunding {} of {:?} would return more than was sold: sold {}, already refunded {}",
                    super::money::Quantity(asked),
                    item.line.name,
                    super::money::Quantity(s),
                    super::money::Quantity(r)
                ),
            ));
        }
    }
    v
}

/// A shift's totals as the journal sees them, in the units of the fiscal
/// module's Z report: cash is what stayed in the drawer (cash paid minus
/// change), card is every electronic payment, VAT the included VAT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftTotals {
    pub sale_cash: Money,
    pub sale_card: Money,
    pub sale_vat: Money,
    pub sale_count: i64,
    pub refund_cash: Money,
    pub refund_card: Money,
    pub refund_vat: Money,
    pub refund_count: i64,
}

/// The VAT a receipt carries: the Uzbek lines' stated VAT, else the VAT
/// included at 12 % in each 12 % line.
pub fn receipt_vat(r: &super::receipt::Receipt) -> Money {
    match &r.uz {
        Some(uz) => Money(uz.lines.iter().map(|l| l.vat_amount.0).sum()),
        None => Money(
            r.items
                .iter()
                .filter(|i| i.line.vat == Vat::Vat12)
                .map(|i| included_vat(i.total, 12).0)
                .sum(),
        ),
    }
}

/// Sum a shift's receipts (sales and refunds; other kinds are not Uzbek).
pub fn shift_totals<'a>(
    receipts: impl IntoIterator<Item = &'a super::receipt::Receipt>,
) -> ShiftTotals {
    use super::receipt::PaymentKind;
    let mut t = ShiftTotals::default();
    for r in receipts {
        let paid = |k: PaymentKind| -> i64 {
            r.payments
                .iter()
                .filter(|p| p.kind == k)
                .map(|p| p.amount.0)
                .sum()
        };
        let cash = paid(PaymentKind::Cash) - r.change.0;
        let card = r.total.0 - cash;
        let vat = receipt_vat(r).0;
        match r.kind {
            ReceiptKind::Sale => {
                t.sale_cash.0 += cash;
                t.sale_card.0 += card;
                t.sale_vat.0 += vat;
                t.sale_count += 1;
            }
            ReceiptKind::SaleReturn => {
                t.refund_cash.0 += cash;
                t.refund_card.0 += card;
                t.refund_vat.0 += vat;
                t.refund_count += 1;
            }
            _ => {}
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Quantity;
    use crate::domain::receipt::{CalculationMethod, Line, PaymentSubject};

    fn item(name: &str, price: i64, qty: i64) -> Item {
        Item {
            line: Line {
                name: name.into(),
                quantity: Quantity(qty),
                price: Money(price),
                vat: Vat::Vat12,
                payment_subject: PaymentSubject::Commodity,
                calculation_method: CalculationMethod::FullPay,
                barcode: None,
                class_code: Some("10999001001000000".into()),
                package_code: Some("1520627".into()),
                marking: vec![],
                unit: Default::default(),
                discount: Money::ZERO,
                agent: None,
            },
            total: crate::domain::money::line_total(Money(price), Quantity(qty)).unwrap(),
            receipt_discount: Money::ZERO,
        }
    }

    fn uz(lines: Vec<UzLine>) -> UzReceipt {
        UzReceipt {
            receipt_type: UzReceiptType::Order,
            refund_of: None,
            lines,
            pos_number: None,
            pos_time: "2026-11-29 10:00:00".into(),
            card_type: None,
            ppt_id: None,
            qr_payment: None,
            open_cashbox: false,
        }
    }

    fn line(vat: i64) -> UzLine {
        UzLine {
            vat_amount: Money(vat),
            unit_name: None,
            owner_type: Some(OwnerType::Resold),
            commission: None,
        }
    }

    fn rules(v: Vec<Violation>) -> Vec<(String, &'static str)> {
        v.into_iter().map(|v| (v.path, v.rule)).collect()
    }

    #[test]
    fn shift_totals_split_cash_card_and_vat() {
        use crate::domain::receipt::{Payment, PaymentKind, Receipt, TaxSystem};
        let receipt = |kind, cash: i64, card: i64, change: i64| {
            let items = vec![item("Non", cash + card - change, 1000)];
            Receipt {
                kind,
                tax_system: TaxSystem::Common,
                currency: "UZS".into(),
                total: items[0].total,
                items,
                payments: [(PaymentKind::Cash, cash), (PaymentKind::Electronic, card)]
                    .into_iter()
                    .filter(|p| p.1 > 0)
                    .map(|(kind, a)| Payment {
                        kind,
                        amount: Money(a),
                    })
                    .collect(),
                change: Money(change),
                cashier: None,
                buyer: None,
                uz: None,
                correction: None,
                marking_checks: vec![],
                discount: Money::ZERO,
                original_date: None,
            }
        };
        let day = [
            receipt(ReceiptKind::Sale, 20000, 0, 8800), // 11200 in cash
            receipt(ReceiptKind::Sale, 0, 22400, 0),
            receipt(ReceiptKind::SaleReturn, 11200, 0, 0),
        ];
        let t = shift_totals(day.iter());
        assert_eq!(
            (t.sale_cash, t.sale_card, t.sale_vat),
            (Money(11200), Money(22400), Money(3600))
        );
        assert_eq!(
            (t.refund_cash, t.refund_vat, t.refund_count),
            (Money(11200), Money(1200), 1)
        );
    }

    #[test]
    fn included_vat_is_12_of_112() {
        assert_eq!(included_vat(Money(50000), 12), Money(5357)); // 5357.14
        assert_eq!(included_vat(Money(11200), 12), Money(1200));
        assert_eq!(included_vat(Money(50000), 15), Money(6522)); // Order.md's example
        assert_eq!(included_vat(Money(0), 12), Money(0));
    }

    #[test]
    fn vat_is_checked_within_one_tiyin() {
        let items = vec![item("Non", 50000, 1000)];
        assert!(check(ReceiptKind::Sale, &items, Some(&uz(vec![line(5357)]))).is_empty());
        assert!(check(ReceiptKind::Sale, &items, Some(&uz(vec![line(5358)]))).is_empty());
        assert_eq!(
            rules(check(
                ReceiptKind::Sale,
                &items,
                Some(&uz(vec![line(6000)]))
            )),
            vec![("/items/0/vat_amount".into(), "vat_included")]
        );
    }

    #[test]
    fn class_and_package_codes_are_mandatory() {
        let mut a = item("a", 100, 1000);
        a.line.class_code = None;
        a.line.package_code = None;
        let mut b = item("b", 100, 1000);
        b.line.class_code = Some("1099900100100000".into()); // 16 digits
        b.line.package_code = Some(" ".into());
        assert_eq!(
            rules(check(ReceiptKind::Sale, &[a, b], None)),
            vec![
                ("/items/0/class_code".into(), "required"),
                ("/items/0/package_code".into(), "required"),
                ("/items/1/class_code".into(), "ikpu_17_digits"),
                ("/items/1/package_code".into(), "package_code"),
            ]
        );
    }

    #[test]
    fn commission_names_inn_or_pinfl() {
        let items = vec![item("a", 11200, 1000)];
        let mut l = line(1200);
        l.commission = Some(Commission {
            inn: Some("123456789".into()),
            pinfl: Some("12345678912345".into()),
        });
        assert!(check(ReceiptKind::Sale, &items, Some(&uz(vec![l.clone()]))).is_empty());
        l.commission = Some(Commission {
            inn: Some("12".into()),
            pinfl: None,
        });
        assert_eq!(
            rules(check(ReceiptKind::Sale, &items, Some(&uz(vec![l.clone()])))),
            vec![("/items/0/commission/inn".into(), "inn")]
        );
        l.commission = Some(Commission::default());
        assert_eq!(
            rules(check(ReceiptKind::Sale, &items, Some(&uz(vec![l])))),
            vec![("/items/0/commission".into(), "inn_or_pinfl")]
        );
    }

    #[test]
    fn a_refund_names_its_original() {
        let items = vec![item("a", 11200, 1000)];
        assert_eq!(
            rules(check(
                ReceiptKind::SaleReturn,
                &items,
                Some(&uz(vec![line(1200)]))
            )),
            vec![("/uz/refund_of".into(), "required")]
        );
    }

    #[test]
    fn refunds_never_return_more_than_was_sold_across_refunds() {
        let sold = vec![item("Non", 5000, 3000), item("Sut", 9000, 1000)];
        // First partial refund: 1 of 3 loaves.
        let first = vec![item("Non", 5000, 1000)];
        assert!(check_refund(&sold, &[], &first).is_empty());
        // Second: 2 more loaves — exactly the rest.
        let second = vec![item("Non", 5000, 2000)];
        assert!(check_refund(&sold, std::slice::from_ref(&first), &second).is_empty());
        // Third: one more is too many.
        let third = vec![item("Non", 5000, 1000)];
        assert_eq!(
            rules(check_refund(&sold, &[first.clone(), second], &third)),
            vec![("/items/0/quantity".into(), "refund_exceeds_sale")]
        );
        // Two lines of one product in one refund add up.
        let split = vec![item("Non", 5000, 1500), item("Non", 5000, 1500)];
        assert_eq!(
            rules(check_refund(&sold, &[first], &split)),
            vec![("/items/1/quantity".into(), "refund_exceeds_sale")]
        );
        // A product that was not sold (or at another price).
        let other = vec![item("Non", 4000, 1000)];
        assert_eq!(
            rules(check_refund(&sold, &[], &other)),
            vec![("/items/0".into(), "refund_of_sold_product")]
        );
    }
}
