//! Receipt arithmetic and rules: turns a [`Draft`] into a [`Receipt`] or lists
//! every rule it breaks, each with a JSON pointer into the internal model (the
//! native API uses the same names, so the pointers point into the request).
//!
//! Pure: no clock, no I/O. One run reports every broken rule.

use super::money::{self, MAX_MONEY_MINOR, MAX_QUANTITY_MILLI, Money};
use super::receipt::{Buyer, Cashier, Country, Draft, Item, PaymentKind, Receipt, TaxSystem};
use serde::Serialize;

/// The longest item name a fiscal register prints (fiscal tag 1030).
pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_ITEMS: usize = 1000;
pub const MAX_CASHIER_CHARS: usize = 64;
pub const MAX_CODE_CHARS: usize = 150;
pub const MAX_MARKING_CHARS: usize = 256;
pub const MAX_CONTACT_CHARS: usize = 64;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer to the field, e.g. `/items/2/price`.
    pub path: String,
    /// A stable machine-readable rule name, e.g. `line_total`.
    pub rule: &'static str,
    /// What is wrong and what is expected, for a person.
    pub message: String,
}

impl Violation {
    pub fn new(path: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            rule,
            message: message.into(),
        }
    }
}

/// What the till is configured for; the rules depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub country: Country,
    pub currency: String,
    pub default_tax_system: TaxSystem,
}

pub fn validate(draft: Draft, profile: &Profile) -> Result<Receipt, Vec<Violation>> {
    let mut v = Vec::new();

    if let Some(currency) = &draft.currency
        && currency != &profile.currency
    {
        v.push(Violation::new(
            "/currency",
            "till_currency",
            format!(
                "currency {currency} is not this till's currency {}",
                profile.currency
            ),
        ));
    }

    if draft.items.is_empty() {
        v.push(Violation::new(
            "/items",
            "min_items",
            "a receipt needs at least one item",
        ));
    }
    if draft.items.len() > MAX_ITEMS {
        v.push(Violation::new(
            "/items",
            "max_items",
            format!(
                "a receipt may have at most {MAX_ITEMS} items, got {}",
                draft.items.len()
            ),
        ));
    }

    let mut items = Vec::with_capacity(draft.items.len());
    let mut sum = Some(Money::ZERO);
    for (i, d) in draft.items.into_iter().enumerate() {
        let p = |field: &str| format!("/items/{i}/{field}");
        let line = d.line;
        let chars = line.name.chars().count();
        if line.name.trim().is_empty() {
            v.push(Violation::new(
                p("name"),
                "not_empty",
                "item name must not be empty",
            ));
        } else if chars > MAX_NAME_CHARS {
            v.push(Violation::new(
                p("name"),
                "max_length",
                format!("item name may be at most {MAX_NAME_CHARS} characters, got {chars}"),
            ));
        }
        if line.quantity.0 <= 0 {
            v.push(Violation::new(
                p("quantity"),
                "positive",
                "quantity must be greater than 0",
            ));
        } else if line.quantity.0 > MAX_QUANTITY_MILLI {
            v.push(Violation::new(
                p("quantity"),
                "max",
                format!(
                    "quantity may be at most {}",
                    money::Quantity(MAX_QUANTITY_MILLI)
                ),
            ));
        }
        check_amount(&mut v, &p("price"), line.price);
        if !profile.country.allowed_vat().contains(&line.vat) {
            let allowed: Vec<_> = profile
                .country
                .allowed_vat()
                .iter()
                .map(|v| v.code())
                .collect();
            v.push(Violation::new(
                p("vat"),
                "allowed_for_country",
                format!(
                    "VAT {} is not used in country {}; allowed: {}",
                    line.vat,
                    profile.country,
                    allowed.join(", ")
                ),
            ));
        }
        for (field, value) in [
            ("barcode", &line.barcode),
            ("class_code", &line.class_code),
            ("package_code", &line.package_code),
        ] {
            if let Some(value) = value {
                check_text(&mut v, &p(field), value, MAX_CODE_CHARS);
            }
        }
        for (m, code) in line.marking.iter().enumerate() {
            check_marking_code(&mut v, &format!("/items/{i}/marking/{m}"), code);
        }

        let computed = if line.quantity.0 > 0 && (0..=MAX_MONEY_MINOR).contains(&line.price.0) {
            money::line_total(line.price, line.quantity)
        } else {
            None
        };
        let total = match (d.total, computed) {
            (Some(given), _) if given.0 < 0 => {
                v.push(Violation::new(
                    p("total"),
                    "non_negative",
                    "line total must not be negative",
                ));
                given
            }
            (Some(given), Some(expected)) if given != expected => {
                v.push(Violation::new(
                    p("total"),
                    "line_total",
                    format!(
                        "line total {given} is not price × quantity = {} × {} = {expected} (rounded to the minor unit)",
                        line.price, line.quantity
                    ),
                ));
                given
            }
            (Some(given), _) => given,
            (None, Some(expected)) => expected,
            (None, None) => {
                if line.quantity.0 > 0 && (0..=MAX_MONEY_MINOR).contains(&line.price.0) {
                    v.push(Violation::new(
                        p("total"),
                        "overflow",
                        format!("price × quantity is larger than {}", Money(MAX_MONEY_MINOR)),
                    ));
                }
                Money::ZERO
            }
        };
        sum = sum.and_then(|s| s.checked_add(total));
        items.push(Item { line, total });
    }

    let total = match (sum, draft.total) {
        (None, _) => {
            v.push(Violation::new(
                "/total",
                "overflow",
                format!(
                    "the sum of the lines is larger than {}",
                    Money(MAX_MONEY_MINOR)
                ),
            ));
            Money::ZERO
        }
        (Some(sum), Some(given)) if given != sum => {
            v.push(Violation::new(
                "/total",
                "receipt_total",
                format!("receipt total {given} is not the sum of the line totals {sum}"),
            ));
            sum
        }
        (Some(sum), _) => sum,
    };

    let mut paid = Some(Money::ZERO);
    let mut non_cash = Money::ZERO;
    let mut cash = Money::ZERO;
    if draft.payments.is_empty() && total.0 > 0 {
        v.push(Violation::new(
            "/payments",
            "min_payments",
            "a receipt needs at least one payment",
        ));
    }
    for (i, pay) in draft.payments.iter().enumerate() {
        let path = format!("/payments/{i}/amount");
        check_amount(&mut v, &path, pay.amount);
        if draft.payments[..i].iter().any(|q| q.kind == pay.kind) {
            v.push(Violation::new(
                format!("/payments/{i}/kind"),
                "unique_kind",
                format!(
                    "payment kind {} is listed twice; give one amount per kind",
                    pay.kind
                ),
            ));
        }
        let amount = Money(pay.amount.0.clamp(0, MAX_MONEY_MINOR));
        paid = paid.and_then(|s| s.checked_add(amount));
        if pay.kind == PaymentKind::Cash {
            cash = cash.checked_add(amount).unwrap_or(cash);
        } else {
            non_cash = non_cash.checked_add(amount).unwrap_or(non_cash);
        }
    }
    let change = match paid {
        None => {
            v.push(Violation::new(
                "/payments",
                "overflow",
                format!(
                    "the sum of the payments is larger than {}",
                    Money(MAX_MONEY_MINOR)
                ),
            ));
            Money::ZERO
        }
        Some(paid) if paid < total => {
            v.push(Violation::new(
                "/payments",
                "payments_cover_total",
                format!("payments add up to {paid}, less than the receipt total {total}"),
            ));
            Money::ZERO
        }
        Some(paid) => {
            let change = Money(paid.0 - total.0);
            if non_cash > total {
                v.push(Violation::new(
                    "/payments",
                    "change_from_cash",
                    format!(
                        "non-cash payments {non_cash} exceed the total {total}; change can only be given from cash ({cash})"
                    ),
                ));
            }
            change
        }
    };

    if let Some(cashier) = &draft.cashier {
        check_cashier(&mut v, cashier);
    }
    if let Some(buyer) = &draft.buyer {
        check_buyer(&mut v, buyer);
    }

    if !v.is_empty() {
        return Err(v);
    }
    Ok(Receipt {
        kind: draft.kind,
        tax_system: draft.tax_system.unwrap_or(profile.default_tax_system),
        currency: profile.currency.clone(),
        items,
        payments: draft.payments,
        correction: draft.correction,
        marking_checks: Vec::new(),
        total,
        change,
        cashier: draft.cashier,
        buyer: draft.buyer,
    })
}

fn check_amount(v: &mut Vec<Violation>, path: &str, amount: Money) {
    if amount.0 < 0 {
        v.push(Violation::new(
            path,
            "non_negative",
            "amount must not be negative",
        ));
    } else if amount.0 > MAX_MONEY_MINOR {
        v.push(Violation::new(
            path,
            "max",
            format!("amount may be at most {}", Money(MAX_MONEY_MINOR)),
        ));
    }
}

/// A marking code as scanned: a GS1 DataMatrix is printable ASCII with GS
/// (0x1D) separating its parts, which must be kept (the FN checks the crypto
/// tail after them; shtrih-m-ffd12.md §4.1 "code as scanned (GS 0x1D
/// kept)"); FF61 carries its length in one byte.
fn check_marking_code(v: &mut Vec<Violation>, path: &str, code: &str) {
    let max = MAX_MARKING_CHARS.min(255);
    if code.trim().is_empty() {
        v.push(Violation::new(path, "not_empty", "must not be empty"));
    } else if !code.bytes().all(|b| b == 0x1D || (0x20..0x7F).contains(&b)) {
        v.push(Violation::new(
            path,
            "marking_code",
            "a marking code is printable ASCII with GS (\\u001d) separators, as scanned",
        ));
    } else if code.len() > max {
        v.push(Violation::new(
            path,
            "max_length",
            format!("may be at most {max} characters, got {}", code.len()),
        ));
    }
}

fn check_text(v: &mut Vec<Violation>, path: &str, value: &str, max: usize) {
    let chars = value.chars().count();
    if value.trim().is_empty() {
        v.push(Violation::new(
            path,
            "not_empty",
            "must not be empty; leave the field out instead",
        ));
    } else if chars > max {
        v.push(Violation::new(
            path,
            "max_length",
            format!("may be at most {max} characters, got {chars}"),
        ));
    } else if value.chars().any(char::is_control) {
        v.push(Violation::new(
            path,
            "printable",
            "must not contain control characters",
        ));
    }
}

fn check_cashier(v: &mut Vec<Violation>, cashier: &Cashier) {
    check_text(v, "/cashier/name", &cashier.name, MAX_CASHIER_CHARS);
    if let Some(inn) = &cashier.inn
        && !(matches!(inn.len(), 10 | 12) && inn.bytes().all(|b| b.is_ascii_digit()))
    {
        v.push(Violation::new(
            "/cashier/inn",
            "inn",
            "INN must be 10 or 12 digits",
        ));
    }
}

fn check_buyer(v: &mut Vec<Violation>, buyer: &Buyer) {
    if buyer.email.is_none() && buyer.phone.is_none() {
        v.push(Violation::new(
            "/buyer",
            "email_or_phone",
            "give the buyer's email or phone, or leave buyer out",
        ));
    }
    if let Some(email) = &buyer.email {
        let ok = email.len() <= MAX_CONTACT_CHARS
            && email.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            v.push(Violation::new(
                "/buyer/email",
                "email",
                "must be an email address such as buyer@example.com",
            ));
        }
    }
    if let Some(phone) = &buyer.phone {
        let digits = phone.strip_prefix('+').unwrap_or("");
        let ok = (10..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            v.push(Violation::new(
                "/buyer/phone",
                "phone",
                "must be an international number: + and 10 to 15 digits, e.g. +79001234567",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Quantity;
    use crate::domain::receipt::*;

    fn ru() -> Profile {
        Profile {
            country: Country::Ru,
            currency: "RUB".into(),
            default_tax_system: TaxSystem::Common,
        }
    }

    fn line(name: &str, price: i64, qty: i64, vat: Vat) -> Line {
        Line {
            name: name.into(),
            quantity: Quantity(qty),
            price: Money(price),
            vat,
            payment_subject: PaymentSubject::Commodity,
            calculation_method: CalculationMethod::FullPay,
            barcode: None,
            class_code: None,
            package_code: None,
            marking: vec![],
        }
    }

    fn draft(items: Vec<DraftItem>, payments: Vec<Payment>) -> Draft {
        Draft {
            correction: None,
            kind: ReceiptKind::Sale,
            tax_system: None,
            currency: None,
            items,
            payments,
            total: None,
            cashier: None,
            buyer: None,
        }
    }

    fn item(l: Line, total: Option<i64>) -> DraftItem {
        DraftItem {
            line: l,
            total: total.map(Money),
        }
    }

    fn pay(kind: PaymentKind, amount: i64) -> Payment {
        Payment {
            kind,
            amount: Money(amount),
        }
    }

    fn rules(r: Result<Receipt, Vec<Violation>>) -> Vec<(String, &'static str)> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.path, v.rule))
            .collect()
    }

    #[test]
    fn computes_missing_totals_and_change() {
        let d = draft(
            vec![
                item(line("Хлеб", 4550, 2000, Vat::Vat10), None),
                item(line("Молоко", 8990, 1000, Vat::Vat10), Some(8990)),
            ],
            vec![pay(PaymentKind::Cash, 20000)],
        );
        let r = validate(d, &ru()).unwrap();
        assert_eq!(r.items[0].total, Money(9100));
        assert_eq!(r.total, Money(18090));
        assert_eq!(r.change, Money(1910));
        assert_eq!(r.tax_system, TaxSystem::Common);
        assert_eq!(r.currency, "RUB");
    }

    #[test]
    fn reports_every_broken_rule_at_once() {
        let mut d = draft(
            vec![
                item(line("", 100, 1000, Vat::Vat12), Some(100)),
                item(line("ok", -5, 1000, Vat::Vat20), None),
                item(line("ok", 100, 1500, Vat::Vat20), Some(100)),
            ],
            vec![pay(PaymentKind::Electronic, 10_000)],
        );
        d.total = Some(Money(1));
        let got = rules(validate(d, &ru()));
        assert_eq!(
            got,
            vec![
                ("/items/0/name".into(), "not_empty"),
                ("/items/0/vat".into(), "allowed_for_country"),
                ("/items/1/price".into(), "non_negative"),
                ("/items/2/total".into(), "line_total"),
                ("/total".into(), "receipt_total"),
                ("/payments".into(), "change_from_cash"),
            ]
        );
    }

    #[test]
    fn uzbek_till_allows_only_its_vat() {
        let uz = Profile {
            country: Country::Uz,
            currency: "UZS".into(),
            default_tax_system: TaxSystem::Common,
        };
        let ok = draft(
            vec![item(line("Non", 500000, 1000, Vat::Vat12), None)],
            vec![pay(PaymentKind::Cash, 500000)],
        );
        assert!(validate(ok, &uz).is_ok());
        let bad = draft(
            vec![item(line("Non", 500000, 1000, Vat::Vat20), None)],
            vec![pay(PaymentKind::Cash, 500000)],
        );
        assert_eq!(
            rules(validate(bad, &uz)),
            vec![("/items/0/vat".into(), "allowed_for_country")]
        );
    }

    #[test]
    fn underpayment_and_duplicates_and_overflow() {
        let d = draft(
            vec![item(line("a", 10000, 1000, Vat::Vat20), None)],
            vec![pay(PaymentKind::Cash, 3000), pay(PaymentKind::Cash, 3000)],
        );
        assert_eq!(
            rules(validate(d, &ru())),
            vec![
                ("/payments/1/kind".into(), "unique_kind"),
                ("/payments".into(), "payments_cover_total")
            ]
        );
        let big = draft(
            vec![
                item(line("a", MAX_MONEY_MINOR, 1000, Vat::Vat20), None),
                item(line("b", MAX_MONEY_MINOR, 1000, Vat::Vat20), None),
            ],
            vec![pay(PaymentKind::Cash, 1)],
        );
        assert_eq!(
            rules(validate(big, &ru()))[0],
            ("/total".into(), "overflow")
        );
        let huge_line = draft(
            vec![item(line("a", MAX_MONEY_MINOR, 2000, Vat::Vat20), None)],
            vec![],
        );
        assert_eq!(
            rules(validate(huge_line, &ru()))[0],
            ("/items/0/total".into(), "overflow")
        );
    }

    #[test]
    fn contacts_and_currency() {
        let mut d = draft(
            vec![item(line("a", 100, 1000, Vat::None), None)],
            vec![pay(PaymentKind::Cash, 100)],
        );
        d.currency = Some("USD".into());
        d.buyer = Some(Buyer {
            email: Some("nobody".into()),
            phone: Some("89001234567".into()),
        });
        d.cashier = Some(Cashier {
            name: "Иванов И.И.".into(),
            inn: Some("123".into()),
        });
        assert_eq!(
            rules(validate(d, &ru())),
            vec![
                ("/currency".into(), "till_currency"),
                ("/cashier/inn".into(), "inn"),
                ("/buyer/email".into(), "email"),
                ("/buyer/phone".into(), "phone"),
            ]
        );
    }
}
