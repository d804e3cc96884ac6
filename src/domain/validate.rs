//! Receipt arithmetic and rules: turns a [`Draft`] into a [`Receipt`] or lists
//! every rule it breaks, each with a JSON pointer into the internal model (the
//! native API uses the same names, so the pointers point into the request).
//!
//! Pure: no clock, no I/O. One run reports every broken rule.

use super::money::{self, MAX_MONEY_MINOR, MAX_QUANTITY_MILLI, Money};
use super::receipt::{
    Agent, Buyer, CalculationMethod, Cashier, Country, Draft, Item, Line, Payment, PaymentKind,
    PaymentSubject, Receipt, ReceiptKind, TaxSystem, Vat,
};
use chrono::NaiveDate;
use serde::Serialize;

/// The longest item name a fiscal register prints (fiscal tag 1030).
pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_ITEMS: usize = 1000;
pub const MAX_CASHIER_CHARS: usize = 64;
pub const MAX_CODE_CHARS: usize = 150;
pub const MAX_MARKING_CHARS: usize = 256;
pub const MAX_CONTACT_CHARS: usize = 64;
/// Tags 1225 and 1227 (supplier and buyer names).
pub const MAX_PARTY_NAME_CHARS: usize = 256;

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

/// Validates `draft` as accepted on `today` (the till's local date: the 2026
/// VAT rule depends on it).
pub fn validate(
    draft: Draft,
    profile: &Profile,
    today: NaiveDate,
) -> Result<Receipt, Vec<Violation>> {
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

    // Lines: price × quantity − the line's discount, every step checked.
    let mut nets: Vec<(Line, Money)> = Vec::with_capacity(draft.items.len());
    let mut sum = Some(Money::ZERO);
    for (i, d) in draft.items.into_iter().enumerate() {
        let p = |field: &str| format!("/items/{i}/{field}");
        let mut line = d.line;
        if profile.country == Country::Ru {
            mark_subject(&mut line);
        }
        check_line(&mut v, i, &line, profile);
        let inputs_ok = line.quantity.0 > 0
            && (0..=MAX_MONEY_MINOR).contains(&line.price.0)
            && (0..=MAX_MONEY_MINOR).contains(&line.discount.0);
        let gross = if inputs_ok {
            money::line_total(line.price, line.quantity)
        } else {
            None
        };
        if inputs_ok && gross.is_none() {
            // Also when the POS gave a total: a line whose price × quantity
            // does not fit is refused, never trusted.
            v.push(Violation::new(
                p("total"),
                "overflow",
                format!("price × quantity is larger than {}", Money(MAX_MONEY_MINOR)),
            ));
        }
        let expected = match gross {
            Some(g) if line.discount > g => {
                v.push(Violation::new(
                    p("discount"),
                    "discount_within_line",
                    format!(
                        "the line's discount {} is more than price × quantity = {g}",
                        line.discount
                    ),
                ));
                None
            }
            Some(g) => Some(Money(g.0 - line.discount.0)),
            None => None,
        };
        let net = match (d.total, expected) {
            (Some(given), _) if given.0 < 0 => {
                v.push(Violation::new(
                    p("total"),
                    "non_negative",
                    "line total must not be negative",
                ));
                given
            }
            (Some(given), Some(expected)) if given != expected => {
                let less = if line.discount.is_zero() {
                    String::new()
                } else {
                    format!(" − discount {}", line.discount)
                };
                v.push(Violation::new(
                    p("total"),
                    "line_total",
                    format!(
                        "line total {given} is not price × quantity{less} = {} × {}{less} = {expected} (rounded to the minor unit)",
                        line.price, line.quantity
                    ),
                ));
                given
            }
            (Some(given), _) => given,
            (None, Some(expected)) => expected,
            (None, None) => Money::ZERO,
        };
        sum = sum.and_then(|s| s.checked_add(net));
        nets.push((line, net));
    }

    // The receipt's discount, spread over the lines in proportion to what
    // each costs (largest remainder, so the shares add up exactly).
    let discount = draft.discount.unwrap_or(Money::ZERO);
    if draft.discount.is_some() {
        check_amount(&mut v, "/discount", discount);
    }
    let (total, shares) = match sum {
        None => {
            v.push(Violation::new(
                "/total",
                "overflow",
                format!(
                    "the sum of the lines is larger than {}",
                    Money(MAX_MONEY_MINOR)
                ),
            ));
            (Money::ZERO, vec![Money::ZERO; nets.len()])
        }
        Some(sum) if discount > sum => {
            v.push(Violation::new(
                "/discount",
                "discount_within_total",
                format!(
                    "the receipt's discount {discount} is more than the sum of the lines {sum}"
                ),
            ));
            (sum, vec![Money::ZERO; nets.len()])
        }
        Some(sum) => {
            let lines: Vec<Money> = nets.iter().map(|(_, n)| *n).collect();
            (Money(sum.0 - discount.0), spread(discount, &lines))
        }
    };
    if let Some(given) = draft.total
        && given != total
        && sum.is_some()
    {
        let less = if discount.is_zero() {
            String::new()
        } else {
            format!(" minus the receipt's discount {discount}")
        };
        v.push(Violation::new(
            "/total",
            "receipt_total",
            format!("receipt total {given} is not the sum of the line totals{less}: {total}"),
        ));
    }
    if total.is_zero() && !nets.is_empty() && sum.is_some() {
        v.push(Violation::new(
            "/total",
            "positive_total",
            "a receipt's total must be greater than 0; a zero-total receipt cannot be registered",
        ));
    }
    let items: Vec<Item> = nets
        .into_iter()
        .zip(shares)
        .map(|((line, net), share)| Item {
            line,
            total: Money(net.0 - share.0),
            receipt_discount: share,
        })
        .collect();

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

    check_settlement(&mut v, &items, &draft.payments);
    if let Some(date) = draft.original_date
        && date > today
    {
        v.push(Violation::new(
            "/original_date",
            "not_future",
            format!("the original operation's date {date} is after today {today}"),
        ));
    }
    if profile.country == Country::Ru {
        check_vat_2026(
            &mut v,
            &items,
            draft.kind,
            &draft.payments,
            draft.original_date,
            today,
        );
    }

    if let Some(cashier) = &draft.cashier {
        check_cashier(&mut v, cashier);
    }
    if let Some(buyer) = &draft.buyer {
        check_buyer(&mut v, buyer);
    }
    if profile.country == Country::Uz {
        v.extend(super::uz::check(draft.kind, &items, draft.uz.as_ref()));
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
        uz: draft.uz,
        discount,
        original_date: draft.original_date,
    })
}

/// The shape rules of one line (name, quantity, price, VAT for the country,
/// codes, unit, discount, agent).
/// FFD 1.2 tag 1212 for goods subject to marking: 31 excisable with its
/// code, 33 a good with its code (30 and 32: the same without a code); see
/// shared/spec/marking-and-fn-health.md "Payment subject (1212) for marked
/// goods" (kkmserver-types Register.ts, atolexamplesjson). A POS that sends a
/// plain (or "unmarked") commodity or excisable good *with* a scanned code
/// means the marked one: the line is sent as 33 / 31. Anything else with a
/// code, or 31 / 33 without one, is refused by `check_marked`.
fn mark_subject(line: &mut Line) {
    if line.marking.is_empty() {
        return;
    }
    line.payment_subject = match line.payment_subject {
        PaymentSubject::Commodity | PaymentSubject::CommodityUnmarked => {
            PaymentSubject::CommodityMarked
        }
        PaymentSubject::Excise | PaymentSubject::ExciseUnmarked => PaymentSubject::ExciseMarked,
        other => other,
    };
}

/// A marking code belongs to a marked good (1212 = 31 or 33), and 31 / 33
/// need the code (see [`mark_subject`]). Russian receipts only: tag 1212 is
/// the Russian FFD's.
fn check_marked(v: &mut Vec<Violation>, i: usize, line: &Line) {
    let marked = matches!(
        line.payment_subject,
        PaymentSubject::CommodityMarked | PaymentSubject::ExciseMarked
    );
    if !line.marking.is_empty() && !marked {
        v.push(Violation::new(
            format!("/items/{i}/payment_subject"),
            "marked_subject",
            format!(
                "a line with marking codes is a marked good: payment_subject commodity_marked \
                 (tag 1212 = 33) or excise_marked (31), not {}",
                line.payment_subject.code()
            ),
        ));
    }
    if line.marking.is_empty() && marked {
        v.push(Violation::new(
            format!("/items/{i}/marking"),
            "marking_required",
            format!(
                "payment_subject {} (tag 1212 = {}) is a marked good sold with its code: \
                 marking must hold the scanned code",
                line.payment_subject.code(),
                line.payment_subject.tag_value()
            ),
        ));
    }
}

fn check_line(v: &mut Vec<Violation>, i: usize, line: &Line, profile: &Profile) {
    let p = |field: &str| format!("/items/{i}/{field}");
    if profile.country == Country::Ru {
        check_marked(v, i, line);
    }
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
    check_amount(v, &p("price"), line.price);
    if !line.discount.is_zero() {
        check_amount(v, &p("discount"), line.discount);
    }
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
    } else if line.calculation_method.is_prepayment()
        && !line.vat.is_calculated()
        && !matches!(line.vat, Vat::None | Vat::Vat0)
    {
        // NK RF art. 164 p. 4: VAT on a prepayment is computed at the
        // calculated rate; FFD 1.2 tag 1199 values 3/4/9/10/12.
        v.push(Violation::new(
            p("vat"),
            "prepayment_calculated_rate",
            format!(
                "a {} line is a prepayment: it takes a calculated VAT rate (such as 22/122 or 10/110), not {}",
                line.calculation_method, line.vat
            ),
        ));
    }
    for (field, value) in [
        ("barcode", &line.barcode),
        ("class_code", &line.class_code),
        ("package_code", &line.package_code),
    ] {
        if let Some(value) = value {
            check_text(v, &p(field), value, MAX_CODE_CHARS);
        }
    }
    for (m, code) in line.marking.iter().enumerate() {
        check_marking_code(v, &format!("/items/{i}/marking/{m}"), code);
    }
    if let Some(agent) = &line.agent {
        check_agent(v, &p("agent"), agent);
    }
}

fn check_agent(v: &mut Vec<Violation>, path: &str, agent: &Agent) {
    check_text(
        v,
        &format!("{path}/supplier_name"),
        &agent.supplier_name,
        MAX_PARTY_NAME_CHARS,
    );
    check_inn(v, &format!("{path}/supplier_inn"), &agent.supplier_inn);
    if let Some(phone) = &agent.supplier_phone {
        check_phone(v, &format!("{path}/supplier_phone"), phone, 19);
    }
}

/// `share_i = discount × line_i / Σ lines`, floored, the kopecks left over
/// going one each to the largest remainders (ties to the earlier line). The
/// shares add up to `discount` exactly and no share exceeds its line.
/// `discount` must not exceed the sum of `lines`.
pub fn spread(discount: Money, lines: &[Money]) -> Vec<Money> {
    let sum: i128 = lines.iter().map(|m| i128::from(m.0)).sum();
    if discount.is_zero() || sum == 0 {
        return vec![Money::ZERO; lines.len()];
    }
    let d = i128::from(discount.0);
    let mut shares: Vec<(i64, i128)> = lines
        .iter()
        .map(|m| {
            let x = d * i128::from(m.0);
            ((x / sum) as i64, x % sum)
        })
        .collect();
    let given: i64 = shares.iter().map(|s| s.0).sum();
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    for &i in order.iter().take((discount.0 - given) as usize) {
        shares[i].0 += 1;
    }
    shares.into_iter().map(|(s, _)| Money(s)).collect()
}

/// Payment kinds must match how the lines are settled: an offset of a
/// prepayment (tag 1215) pays for goods handed over now (1214 = 4 or 5), a
/// credit (1216) goes with a line handed over on credit (1214 = 5 or 6).
fn check_settlement(v: &mut Vec<Violation>, items: &[Item], payments: &[Payment]) {
    let covered = |methods: &[CalculationMethod]| -> i64 {
        items
            .iter()
            .filter(|i| methods.contains(&i.line.calculation_method))
            .map(|i| i.total.0)
            .sum()
    };
    for (i, pay) in payments.iter().enumerate() {
        if pay.amount.0 <= 0 {
            continue;
        }
        let (methods, rule, what): (&[CalculationMethod], &'static str, &str) = match pay.kind {
            PaymentKind::Prepaid => (
                &[
                    CalculationMethod::FullPay,
                    CalculationMethod::PartialPayAndCredit,
                ],
                "prepaid_offsets_settlement",
                "an earlier prepayment can only pay for lines settled now (full_pay or partial_pay_and_credit)",
            ),
            PaymentKind::Credit => (
                &[
                    CalculationMethod::PartialPayAndCredit,
                    CalculationMethod::CreditTransfer,
                ],
                "credit_needs_credit_line",
                "a credit can only pay for lines handed over on credit (partial_pay_and_credit or credit_transfer)",
            ),
            _ => continue,
        };
        let limit = covered(methods);
        if pay.amount.0 > limit {
            v.push(Violation::new(
                format!("/payments/{i}/amount"),
                rule,
                format!(
                    "{what}; such lines total {}, got {}",
                    Money(limit),
                    pay.amount
                ),
            ));
        }
    }
}

/// The first day of the 22 % general rate (Federal law 425-FZ of 28.11.2025,
/// NK RF art. 164 p. 3 as amended).
pub fn vat22_from() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("a valid date")
}

/// From 2026 the general rate is 22 %; 20 % and 20/120 stay only for
/// returns, corrections and settlements (credit payments, offsets of a
/// prepayment) of operations made before 2026-01-01.
///
/// Source: FNS letter АБ-4-20/11248@ of 15.12.2025. ASSUMED: the letter's
/// text could not be read from here (see docs/API.md "VAT in 2026"); this
/// rule follows its summary in the issue and the transition provision of
/// 425-FZ (art. 164 applies to goods shipped from 2026-01-01). This is the
/// one place that encodes it.
fn check_vat_2026(
    v: &mut Vec<Violation>,
    items: &[Item],
    kind: ReceiptKind,
    payments: &[Payment],
    original_date: Option<NaiveDate>,
    today: NaiveDate,
) {
    if today < vat22_from() {
        return;
    }
    let before = original_date.is_some_and(|d| d < vat22_from());
    let is_return = matches!(kind, ReceiptKind::SaleReturn | ReceiptKind::PurchaseReturn);
    let offsets_prepayment = payments
        .iter()
        .any(|p| p.kind == PaymentKind::Prepaid && p.amount.0 > 0);
    for (i, item) in items.iter().enumerate() {
        if !matches!(item.line.vat, Vat::Vat20 | Vat::Vat120) {
            continue;
        }
        let settlement = item.line.calculation_method == CalculationMethod::CreditPayment
            || (offsets_prepayment && !item.line.calculation_method.is_prepayment());
        if !(before && (is_return || settlement)) {
            v.push(Violation::new(
                format!("/items/{i}/vat"),
                "vat_20_before_2026_only",
                format!(
                    "VAT {} is accepted from 2026-01-01 only on a return or settlement of an operation made before 2026 \
                     (give original_date before 2026-01-01); use 22 or 22/122 (FNS letter АБ-4-20/11248@ of 15.12.2025)",
                    item.line.vat
                ),
            ));
        }
    }
}

fn check_inn(v: &mut Vec<Violation>, path: &str, inn: &str) {
    if !(matches!(inn.len(), 10 | 12) && inn.bytes().all(|b| b.is_ascii_digit())) {
        v.push(Violation::new(path, "inn", "INN must be 10 or 12 digits"));
    }
}

fn check_phone(v: &mut Vec<Violation>, path: &str, phone: &str, max: usize) {
    let digits = phone.strip_prefix('+').unwrap_or("");
    let ok = (10..=15).contains(&digits.len())
        && phone.len() <= max
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        v.push(Violation::new(
            path,
            "phone",
            "must be an international number: + and 10 to 15 digits, e.g. +79001234567",
        ));
    }
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
    if let Some(inn) = &cashier.inn {
        check_inn(v, "/cashier/inn", inn);
    }
}

fn check_buyer(v: &mut Vec<Violation>, buyer: &Buyer) {
    if buyer == &Buyer::default() {
        v.push(Violation::new(
            "/buyer",
            "email_or_phone",
            "give the buyer's email, phone, name or INN, or leave buyer out",
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
        check_phone(v, "/buyer/phone", phone, MAX_CONTACT_CHARS);
    }
    if let Some(name) = &buyer.name {
        check_text(v, "/buyer/name", name, MAX_PARTY_NAME_CHARS);
    }
    if let Some(inn) = &buyer.inn {
        check_inn(v, "/buyer/inn", inn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Quantity;
    use crate::domain::receipt::*;

    /// Before the 2026 VAT change, for the rules that do not depend on it.
    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

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
            unit: Default::default(),
            discount: Default::default(),
            agent: None,
        }
    }

    fn draft(items: Vec<DraftItem>, payments: Vec<Payment>) -> Draft {
        Draft {
            correction: None,
            discount: Default::default(),
            original_date: None,
            kind: ReceiptKind::Sale,
            tax_system: None,
            currency: None,
            items,
            payments,
            total: None,
            cashier: None,
            buyer: None,
            uz: None,
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
        let r = validate(d, &ru(), day()).unwrap();
        assert_eq!(r.items[0].total, Money(9100));
        assert_eq!(r.total, Money(18090));
        assert_eq!(r.change, Money(1910));
        assert_eq!(r.tax_system, TaxSystem::Common);
        assert_eq!(r.currency, "RUB");
    }

    /// Tag 1212 follows the marking code: a commodity or excisable good with
    /// a code is sent as 33 / 31; a code on anything else, or 31 / 33
    /// without a code, is refused naming the field.
    #[test]
    fn a_line_with_a_marking_code_is_a_marked_good() {
        const CODE: &str = "0104600439931256215Zk4Y8d\u{1d}93dGVz";
        let code = CODE.to_string();
        let with_code = |subject: PaymentSubject, marking: Vec<String>| {
            let mut l = line("Кеды", 350000, 1000, Vat::Vat20);
            l.payment_subject = subject;
            l.marking = marking;
            draft(
                vec![item(l, None)],
                vec![pay(PaymentKind::Electronic, 350000)],
            )
        };
        for (given, sent) in [
            (PaymentSubject::Commodity, PaymentSubject::CommodityMarked),
            (
                PaymentSubject::CommodityUnmarked,
                PaymentSubject::CommodityMarked,
            ),
            (
                PaymentSubject::CommodityMarked,
                PaymentSubject::CommodityMarked,
            ),
            (PaymentSubject::Excise, PaymentSubject::ExciseMarked),
        ] {
            let r = validate(with_code(given, vec![code.clone()]), &ru(), day()).unwrap();
            assert_eq!(r.items[0].line.payment_subject, sent, "{given:?}");
        }
        assert_eq!(PaymentSubject::CommodityMarked.tag_value(), 33);
        assert_eq!(PaymentSubject::ExciseMarked.tag_value(), 31);
        assert_eq!(
            rules(validate(
                with_code(PaymentSubject::Service, vec![code.clone()]),
                &ru(),
                day()
            )),
            [("/items/0/payment_subject".to_string(), "marked_subject")]
        );
        assert_eq!(
            rules(validate(
                with_code(PaymentSubject::CommodityMarked, vec![]),
                &ru(),
                day()
            )),
            [("/items/0/marking".to_string(), "marking_required")]
        );
        // Without a code nothing changes.
        let r = validate(with_code(PaymentSubject::Commodity, vec![]), &ru(), day()).unwrap();
        assert_eq!(r.items[0].line.payment_subject, PaymentSubject::Commodity);
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
        let got = rules(validate(d, &ru(), day()));
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
        let coded = |vat| {
            let mut l = line("Non", 500000, 1000, vat);
            l.class_code = Some("10999001001000000".into());
            l.package_code = Some("1520627".into());
            l
        };
        let ok = draft(
            vec![item(coded(Vat::Vat12), None)],
            vec![pay(PaymentKind::Cash, 500000)],
        );
        assert!(validate(ok, &uz, day()).is_ok());
        // The IKPU class code and package code are mandatory (domain::uz).
        let uncoded = draft(
            vec![item(line("Non", 500000, 1000, Vat::Vat12), None)],
            vec![pay(PaymentKind::Cash, 500000)],
        );
        assert_eq!(
            rules(validate(uncoded, &uz, day())),
            vec![
                ("/items/0/class_code".into(), "required"),
                ("/items/0/package_code".into(), "required")
            ]
        );
        let bad = draft(
            vec![item(coded(Vat::Vat20), None)],
            vec![pay(PaymentKind::Cash, 500000)],
        );
        assert_eq!(
            rules(validate(bad, &uz, day())),
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
            rules(validate(d, &ru(), day())),
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
            rules(validate(big, &ru(), day()))[0],
            ("/total".into(), "overflow")
        );
        let huge_line = draft(
            vec![item(line("a", MAX_MONEY_MINOR, 2000, Vat::Vat20), None)],
            vec![],
        );
        assert_eq!(
            rules(validate(huge_line, &ru(), day()))[0],
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
            inn: None,
            name: None,
            email: Some("nobody".into()),
            phone: Some("89001234567".into()),
        });
        d.cashier = Some(Cashier {
            name: "Иванов И.И.".into(),
            inn: Some("123".into()),
        });
        assert_eq!(
            rules(validate(d, &ru(), day())),
            vec![
                ("/currency".into(), "till_currency"),
                ("/cashier/inn".into(), "inn"),
                ("/buyer/email".into(), "email"),
                ("/buyer/phone".into(), "phone"),
            ]
        );
    }

    fn in_2026() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    #[test]
    fn discounts_are_spread_exactly_and_totals_follow() {
        let mut a = line("a", 10000, 1000, Vat::Vat22);
        a.discount = Money(500);
        let mut d = draft(
            vec![
                item(a, Some(9500)),
                item(line("b", 3333, 3000, Vat::Vat10), None),
            ],
            vec![pay(PaymentKind::Cash, 20000)],
        );
        d.discount = Some(Money(1001));
        d.total = Some(Money(9500 + 9999 - 1001));
        let r = validate(d, &ru(), in_2026()).unwrap();
        assert_eq!(r.discount, Money(1001));
        let shares: Vec<i64> = r.items.iter().map(|i| i.receipt_discount.0).collect();
        assert_eq!(shares.iter().sum::<i64>(), 1001);
        assert_eq!(r.total, Money(18498));
        assert_eq!(r.items[0].gross(), Money(10000));
        assert_eq!(
            r.items.iter().map(|i| i.total.0).sum::<i64>(),
            r.total.0,
            "line totals add up to the receipt total"
        );
    }

    #[test]
    fn vat_20_in_2026_and_zero_totals_and_overflow_with_a_given_total() {
        let sale = draft(
            vec![item(line("Чайник", 240000, 1000, Vat::Vat20), None)],
            vec![pay(PaymentKind::Cash, 240000)],
        );
        assert_eq!(
            rules(validate(sale.clone(), &ru(), in_2026())),
            vec![("/items/0/vat".into(), "vat_20_before_2026_only")]
        );
        assert!(validate(sale.clone(), &ru(), day()).is_ok(), "fine in 2025");
        let mut ret = sale.clone();
        ret.kind = ReceiptKind::SaleReturn;
        ret.original_date = NaiveDate::from_ymd_opt(2025, 12, 31);
        assert!(validate(ret.clone(), &ru(), in_2026()).is_ok());
        ret.original_date = NaiveDate::from_ymd_opt(2026, 1, 1);
        assert_eq!(
            rules(validate(ret, &ru(), in_2026())),
            vec![("/items/0/vat".into(), "vat_20_before_2026_only")]
        );

        let zero = draft(vec![item(line("Пакет", 0, 1000, Vat::Vat22), None)], vec![]);
        assert_eq!(
            rules(validate(zero, &ru(), in_2026())),
            vec![("/total".into(), "positive_total")]
        );
        let given = draft(
            vec![item(
                line("x", MAX_MONEY_MINOR, 2000, Vat::Vat22),
                Some(100),
            )],
            vec![pay(PaymentKind::Cash, 100)],
        );
        assert_eq!(
            rules(validate(given, &ru(), in_2026()))[0],
            ("/items/0/total".into(), "overflow")
        );
    }

    #[test]
    fn methods_payments_and_vat_must_agree() {
        let mut adv = line("Аванс", 100000, 1000, Vat::Vat22);
        adv.calculation_method = CalculationMethod::Advance;
        let d = draft(
            vec![item(adv.clone(), None)],
            vec![pay(PaymentKind::Prepaid, 100000)],
        );
        assert_eq!(
            rules(validate(d, &ru(), in_2026())),
            vec![
                ("/items/0/vat".into(), "prepayment_calculated_rate"),
                ("/payments/0/amount".into(), "prepaid_offsets_settlement"),
            ]
        );
        adv.vat = Vat::Vat122;
        let ok = draft(
            vec![item(adv, None)],
            vec![pay(PaymentKind::Electronic, 100000)],
        );
        assert!(validate(ok, &ru(), in_2026()).is_ok());
        let credit = draft(
            vec![item(line("Шкаф", 100000, 1000, Vat::Vat22), None)],
            vec![pay(PaymentKind::Credit, 100000)],
        );
        assert_eq!(
            rules(validate(credit, &ru(), in_2026())),
            vec![("/payments/0/amount".into(), "credit_needs_credit_line")]
        );
    }

    proptest::proptest! {
        #[test]
        fn spread_adds_up_and_never_exceeds_a_line(
            lines in proptest::collection::vec(0i64..=MAX_MONEY_MINOR / 1000, 1..20),
            frac in 0u32..=1000,
        ) {
            let sum: i64 = lines.iter().sum();
            let discount = Money(sum * i64::from(frac) / 1000);
            let lines: Vec<Money> = lines.into_iter().map(Money).collect();
            let shares = spread(discount, &lines);
            proptest::prop_assert_eq!(shares.iter().map(|m| m.0).sum::<i64>(), discount.0);
            for (s, l) in shares.iter().zip(&lines) {
                proptest::prop_assert!(s.0 >= 0 && s.0 <= l.0);
            }
        }
    }
}
