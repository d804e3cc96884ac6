//! The gateway's sale request → a domain [`Draft`]. Pure: takes the decoded
//! form and the configured rules, returns the order id (the idempotency key)
//! and the draft, or why not. The `control` signature is checked before the
//! cheque is even read, so nothing of an unsigned request goes further.

use super::facts;
use crate::config::GatewaySettings;
use crate::domain::{
    Buyer, Draft, DraftItem, Line, Money, Payment, Quantity, Unit, Violation, money,
};
use serde_json::Value;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// A decoded `application/x-www-form-urlencoded` body: field → value.
pub type Form = BTreeMap<String, String>;

/// A signed, well-formed sale: what goes to validation and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sale {
    pub client_orderid: String,
    pub draft: Draft,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    /// `control` missing or not the signature of this request: nothing is read
    /// further and nothing stored.
    #[error("{0}")]
    Unauthorized(String),
    /// The request or its cheque is malformed or breaks a rule of the gateway.
    #[error("the sale request breaks {} rule(s)", .0.len())]
    Invalid(Vec<Violation>),
}

/// `control` = hex SHA-1 of endpoint id + `client_orderid` + amount in minor
/// units + email + merchant key (seed 004; see `facts`).
pub fn sale_control(
    endpoint_id: &str,
    client_orderid: &str,
    amount: Money,
    email: &str,
    merchant_key: &str,
) -> String {
    sha1_hex(&[
        endpoint_id,
        client_orderid,
        &amount.minor().to_string(),
        email,
        merchant_key,
    ])
}

/// The status call's `control`: SHA-1 of endpoint id + `client_orderid` +
/// merchant key (ASSUMED, see `facts`).
pub fn status_control(endpoint_id: &str, client_orderid: &str, merchant_key: &str) -> String {
    sha1_hex(&[endpoint_id, client_orderid, merchant_key])
}

fn sha1_hex(parts: &[&str]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Compare a presented signature with the expected one in constant time
/// (hex digits in either case).
pub fn control_matches(presented: &str, expected: &str) -> bool {
    let presented = presented.trim().to_ascii_lowercase();
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Read the order id of a request (status call and sale alike).
pub fn order_id(form: &Form) -> Result<String, Vec<Violation>> {
    match form.get("client_orderid").map(|s| s.trim()) {
        None | Some("") => Err(vec![Violation::new(
            "/client_orderid",
            "required",
            "client_orderid is required: the shop's order id, the request's idempotency key",
        )]),
        Some(id) if id.chars().count() > facts::MAX_ORDER_ID_CHARS => Err(vec![Violation::new(
            "/client_orderid",
            "max_length",
            format!(
                "client_orderid may be at most {} characters",
                facts::MAX_ORDER_ID_CHARS
            ),
        )]),
        Some(id) => Ok(id.to_string()),
    }
}

/// Check the status call's signature.
pub fn check_status(form: &Form, cfg: &GatewaySettings) -> Result<String, SaleError> {
    let id = order_id(form).map_err(SaleError::Invalid)?;
    let expected = status_control(&cfg.endpoint_id, &id, cfg.merchant_key.expose());
    verify(form, &expected)?;
    Ok(id)
}

fn verify(form: &Form, expected: &str) -> Result<(), SaleError> {
    match form.get("control") {
        None => Err(SaleError::Unauthorized(
            "control is missing: sign the request (see docs/REMOTE.md)".into(),
        )),
        Some(c) if control_matches(c, expected) => Ok(()),
        Some(_) => Err(SaleError::Unauthorized(
            "control does not match this request: check the endpoint id, the merchant key and the signed fields".into(),
        )),
    }
}

/// Parse a sale request: signature first, then the cheque.
pub fn sale(form: &Form, cfg: &GatewaySettings) -> Result<Sale, SaleError> {
    let mut errors = Vec::new();
    let id = match order_id(form) {
        Ok(id) => Some(id),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let amount = match form.get("amount").map(|s| s.trim()) {
        None | Some("") => {
            errors.push(Violation::new(
                "/amount",
                "required",
                "amount is required, e.g. 700.00",
            ));
            None
        }
        Some(text) => match Money::parse(text) {
            Ok(m) if m.minor() > 0 => Some(m),
            Ok(_) => {
                errors.push(Violation::new(
                    "/amount",
                    "positive",
                    "amount must be more than zero",
                ));
                None
            }
            Err(e) => {
                errors.push(Violation::new(
                    "/amount",
                    "decimal",
                    format!("{text:?} {e}"),
                ));
                None
            }
        },
    };
    let (Some(id), Some(amount)) = (id, amount) else {
        // Without them the signature cannot even be computed.
        return Err(SaleError::Invalid(errors));
    };
    let email = form.get("email").map(|s| s.trim()).unwrap_or("");
    let expected = sale_control(
        &cfg.endpoint_id,
        &id,
        amount,
        email,
        cfg.merchant_key.expose(),
    );
    verify(form, &expected)?;

    let cheque = match form.get("cheque") {
        None => {
            errors.push(Violation::new(
                "/cheque",
                "required",
                "cheque is required: the JSON cheque to fiscalize",
            ));
            None
        }
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(Violation::new(
                    "/cheque",
                    "json",
                    format!("cheque is not valid JSON: {e}"),
                ));
                None
            }
        },
    };
    // Passed on to the draft: the till's currency rule judges it.
    let currency = form
        .get("currency")
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty());
    finish(form, cheque, amount, id, currency, errors, cfg)
}

fn finish(
    form: &Form,
    cheque: Option<Value>,
    amount: Money,
    client_orderid: String,
    currency: Option<String>,
    mut errors: Vec<Violation>,
    cfg: &GatewaySettings,
) -> Result<Sale, SaleError> {
    let parsed = cheque.and_then(|c| parse_cheque(&c, amount, cfg, &mut errors));
    match parsed {
        Some(mut draft) if errors.is_empty() => {
            draft.currency = currency;
            let email = form
                .get("email")
                .map(|s| s.trim())
                .filter(|s| !s.is_empty());
            let phone = form
                .get("phone")
                .map(|s| s.trim())
                .filter(|s| !s.is_empty());
            if email.is_some() || phone.is_some() {
                draft.buyer = Some(Buyer {
                    email: email.map(str::to_string),
                    phone: phone.map(str::to_string),
                    ..Buyer::default()
                });
            }
            Ok(Sale {
                client_orderid,
                draft,
            })
        }
        _ => Err(SaleError::Invalid(errors)),
    }
}

const CHEQUE_FIELDS: &[&str] = &["cheque_type", "tax_system", "positions"];
const POSITION_FIELDS: &[&str] = &["quantity", "price", "tax", "description"];

/// The cheque JSON → a draft whose total is `amount` and whose one payment is
/// the card payment of `amount`. Reports every problem.
pub fn parse_cheque(
    cheque: &Value,
    amount: Money,
    cfg: &GatewaySettings,
    errors: &mut Vec<Violation>,
) -> Option<Draft> {
    let before = errors.len();
    let Some(map) = cheque.as_object() else {
        errors.push(Violation::new(
            "/cheque",
            "type",
            "cheque must be a JSON object",
        ));
        return None;
    };
    for key in map.keys() {
        if !CHEQUE_FIELDS.contains(&key.as_str()) {
            errors.push(Violation::new(
                format!("/cheque/{key}"),
                "unknown_field",
                format!(
                    "unknown field; expected one of: {}",
                    CHEQUE_FIELDS.join(", ")
                ),
            ));
        }
    }
    let kind = int(map.get("cheque_type"), "/cheque/cheque_type", errors).and_then(|c| {
        let k = facts::receipt_kind(c);
        if k.is_none() {
            errors.push(Violation::new(
                "/cheque/cheque_type",
                "one_of",
                format!("cheque_type {c} is not one of 0 (income), 1 (expense), 2 (return of income), 3 (return of expense)"),
            ));
        }
        k
    });
    let tax_system = int(map.get("tax_system"), "/cheque/tax_system", errors).and_then(|c| {
        let t = facts::tax_system(c);
        if t.is_none() {
            errors.push(Violation::new(
                "/cheque/tax_system",
                "one_of",
                format!("tax_system {c} is not one of 0 to 5 (0 general … 5 patent)"),
            ));
        }
        t
    });
    let positions = match map.get("positions") {
        Some(Value::Array(list)) if !list.is_empty() => list.as_slice(),
        Some(Value::Array(_)) => {
            errors.push(Violation::new(
                "/cheque/positions",
                "min_items",
                "positions must hold at least one position",
            ));
            &[]
        }
        Some(_) => {
            errors.push(Violation::new(
                "/cheque/positions",
                "type",
                "positions must be an array",
            ));
            &[]
        }
        None => {
            errors.push(Violation::new(
                "/cheque/positions",
                "required",
                "positions is required",
            ));
            &[]
        }
    };
    let mut items = Vec::with_capacity(positions.len());
    let mut sum = Some(Money::ZERO);
    for (i, p) in positions.iter().enumerate() {
        let path = |f: &str| format!("/cheque/positions/{i}/{f}");
        let Some(pm) = p.as_object() else {
            errors.push(Violation::new(
                format!("/cheque/positions/{i}"),
                "type",
                "a position must be a JSON object",
            ));
            sum = None;
            continue;
        };
        for key in pm.keys() {
            if !POSITION_FIELDS.contains(&key.as_str()) {
                errors.push(Violation::new(
                    path(key),
                    "unknown_field",
                    format!(
                        "unknown field; expected one of: {}",
                        POSITION_FIELDS.join(", ")
                    ),
                ));
            }
        }
        let quantity = decimal(
            pm.get("quantity"),
            &path("quantity"),
            Quantity::parse,
            errors,
        );
        let price = decimal(pm.get("price"), &path("price"), Money::parse, errors);
        let vat = int(pm.get("tax"), &path("tax"), errors).and_then(|code| {
            let known = u8::try_from(code)
                .ok()
                .filter(|c| facts::TAX_CODES.iter().any(|(k, _)| k == c));
            let Some(code) = known else {
                errors.push(Violation::new(
                    path("tax"),
                    "one_of",
                    format!("tax {code} is not one of 1 (20 %), 2 (10 %), 3 (0 %), 4 (no VAT), 5 (20/120), 6 (10/110)"),
                ));
                return None;
            };
            let vat = cfg.tax.get(&code).copied();
            if vat.is_none() {
                errors.push(Violation::new(
                    path("tax"),
                    "configured_tax_code",
                    format!("tax code {code} has no rate in [gateway.tax] of this till's configuration; add it"),
                ));
            }
            vat
        });
        let name = match pm.get("description") {
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.push(Violation::new(
                    path("description"),
                    "not_empty",
                    "description must not be empty",
                ));
                None
            }
            Some(Value::String(s)) if s.chars().count() > facts::MAX_DESCRIPTION_CHARS => {
                errors.push(Violation::new(
                    path("description"),
                    "max_length",
                    format!(
                        "description may be at most {} characters, got {}",
                        facts::MAX_DESCRIPTION_CHARS,
                        s.chars().count()
                    ),
                ));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                errors.push(Violation::new(
                    path("description"),
                    "type",
                    "description must be a string",
                ));
                None
            }
            None => {
                errors.push(Violation::new(
                    path("description"),
                    "required",
                    "description is required",
                ));
                None
            }
        };
        sum = match (sum, price, quantity) {
            (Some(s), Some(p), Some(q)) => money::line_total(p, q).and_then(|t| s.checked_add(t)),
            _ => None,
        };
        if let (Some(quantity), Some(price), Some(vat), Some(name)) = (quantity, price, vat, name) {
            items.push(DraftItem {
                line: Line {
                    name,
                    quantity,
                    price,
                    vat,
                    payment_subject: cfg.payment_subject,
                    calculation_method: facts::CALCULATION_METHOD,
                    barcode: None,
                    class_code: None,
                    package_code: None,
                    marking: Vec::new(),
                    unit: Unit::Piece,
                    discount: Money::ZERO,
                    agent: None,
                },
                total: None,
            });
        }
    }
    if let Some(sum) = sum
        && !positions.is_empty()
        && sum != amount
    {
        errors.push(Violation::new(
            "/cheque/positions",
            "sum_equals_amount",
            format!(
                "the positions add up to {sum} (Σ price × quantity) but amount is {amount}; they must be equal"
            ),
        ));
    }
    if errors.len() > before {
        return None;
    }
    Some(Draft {
        kind: kind?,
        tax_system: Some(tax_system?),
        currency: None,
        items,
        payments: vec![Payment {
            kind: facts::PAYMENT_KIND,
            amount,
        }],
        total: Some(amount),
        cashier: None,
        buyer: None,
        discount: None,
        original_date: None,
        uz: None,
        correction: None,
    })
}

fn int(v: Option<&Value>, path: &str, errors: &mut Vec<Violation>) -> Option<i64> {
    let text = match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            errors.push(Violation::new(path, "type", "must be a whole number"));
            return None;
        }
        None => {
            errors.push(Violation::new(path, "required", "is required"));
            return None;
        }
    };
    match text.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(Violation::new(
                path,
                "integer",
                format!("{text:?} is not a whole number"),
            ));
            None
        }
    }
}

fn decimal<T>(
    v: Option<&Value>,
    path: &str,
    parse: fn(&str) -> Result<T, money::DecimalError>,
    errors: &mut Vec<Violation>,
) -> Option<T> {
    let text = match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            errors.push(Violation::new(path, "type", "must be a decimal number"));
            return None;
        }
        None => {
            errors.push(Violation::new(path, "required", "is required"));
            return None;
        }
    };
    match parse(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(Violation::new(path, "decimal", format!("{text:?} {e}")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::domain::{PaymentKind, PaymentSubject, ReceiptKind, TaxSystem, Vat};

    pub const SEED_REQUEST: &str = include_str!("../../../tests/common/seeds/004_sale_request.txt");
    pub const SEED_CHEQUE: &str =
        include_str!("../../../tests/common/seeds/004_cheque_example.json");
    const KEY: &str = "B17F59B4-A7DC-41B4-8FF9-37D986B43D20";

    fn cfg() -> GatewaySettings {
        GatewaySettings {
            endpoint_id: "1111".into(),
            merchant_key: Secret::new(KEY),
            payment_subject: PaymentSubject::Service,
            tax: facts::TAX_CODES
                .iter()
                .map(|(c, v)| (*c, Vat::from_code(v).unwrap()))
                .collect(),
        }
    }

    /// The seed's request as a form (its `¤cy=USD` line restored to
    /// `&currency=` the till's RUB, see tests/common/seeds/README.md),
    /// re-signed with the test's key.
    fn seed_form(cheque: Option<&str>) -> Form {
        let body: String = SEED_REQUEST
            .lines()
            .map(|l| l.replace("\u{a4}cy=USD", "&currency=RUB"))
            .collect();
        let mut form =
            crate::api::gateway::flat(&crate::api::body::parse_form(body.as_bytes()).unwrap())
                .unwrap();
        if let Some(c) = cheque {
            form.insert("cheque".into(), c.into());
        }
        let control = sale_control(
            "1111",
            "902B4FF5",
            Money(70000),
            "john.smith@gmail.com",
            KEY,
        );
        form.insert("control".into(), control);
        form
    }

    #[test]
    fn the_spec_example_control_is_the_sha1_of_the_concatenation() {
        let ours = sale_control("1111", "902B4FF5", Money(1042), "john.smith@gmail.com", KEY);
        let out = std::process::Command::new("sha1sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(
                    b"1111902B4FF51042john.smith@gmail.comB17F59B4-A7DC-41B4-8FF9-37D986B43D20",
                )?;
                child.wait_with_output()
            })
            .expect("sha1sum runs");
        let theirs = String::from_utf8(out.stdout).unwrap();
        assert_eq!(ours, theirs.split_whitespace().next().unwrap());
        assert!(control_matches(&ours.to_ascii_uppercase(), &ours));
        assert!(!control_matches(&ours[..39], &ours));
    }

    #[test]
    fn the_seed_request_with_its_700_cheque_parses() {
        let form = seed_form(None);
        assert_eq!(form["email"], "john.smith@gmail.com");
        let sale = sale(&form, &cfg()).unwrap();
        assert_eq!(sale.client_orderid, "902B4FF5");
        let d = sale.draft;
        assert_eq!(d.kind, ReceiptKind::Purchase, "cheque_type 1 = expense");
        assert_eq!(d.tax_system, Some(TaxSystem::Simplified));
        assert_eq!(d.total, Some(Money(70000)));
        assert_eq!(d.currency.as_deref(), Some("RUB"));
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.items[0].line.name, "Product/Service 1");
        assert_eq!(d.items[0].line.quantity, Quantity(2000));
        assert_eq!(d.items[0].line.price, Money(10000));
        assert_eq!(d.items[0].line.vat, Vat::None);
        assert_eq!(d.items[1].line.price, Money(50000));
        assert_eq!(d.items[1].line.payment_subject, PaymentSubject::Service);
        assert_eq!(d.payments[0].kind, PaymentKind::Electronic);
        assert_eq!(d.payments[0].amount, Money(70000));
        let buyer = d.buyer.unwrap();
        assert_eq!(buyer.email.as_deref(), Some("john.smith@gmail.com"));
        assert_eq!(buyer.phone.as_deref(), Some("+12063582043"));
    }

    #[test]
    fn the_seed_first_cheque_is_refused_naming_both_sums() {
        let Err(SaleError::Invalid(errors)) = sale(&seed_form(Some(SEED_CHEQUE)), &cfg()) else {
            panic!("refused")
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].rule, "sum_equals_amount");
        assert!(
            errors[0].message.contains("1145.88"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[0].message.contains("700.00"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_wrong_or_missing_control_is_refused_before_the_cheque_is_read() {
        let mut form = seed_form(Some("not even json"));
        form.insert(
            "control".into(),
            "768eb8162fc361a3e14150ec46e9a6dd8fbfa483".into(),
        );
        assert!(matches!(
            sale(&form, &cfg()),
            Err(SaleError::Unauthorized(_))
        ));
        form.remove("control");
        assert!(
            matches!(sale(&form, &cfg()), Err(SaleError::Unauthorized(m)) if m.contains("missing"))
        );
        // The signature covers the amount: another amount, same control.
        let mut form = seed_form(None);
        form.insert("amount".into(), "7.00".into());
        assert!(matches!(
            sale(&form, &cfg()),
            Err(SaleError::Unauthorized(_))
        ));
    }

    #[test]
    fn every_cheque_rule_is_reported() {
        let cheque = serde_json::json!({
            "cheque_type": 4, "tax_system": 6, "extra": 1,
            "positions": [
                {"quantity": 1, "price": "700.00", "tax": 7, "description": "x".repeat(129)},
                {"quantity": "a", "price": 1, "tax": 4}
            ]
        });
        let mut errors = Vec::new();
        assert!(parse_cheque(&cheque, Money(70000), &cfg(), &mut errors).is_none());
        let rules: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.rule)).collect();
        assert_eq!(
            rules,
            [
                ("/cheque/extra", "unknown_field"),
                ("/cheque/cheque_type", "one_of"),
                ("/cheque/tax_system", "one_of"),
                ("/cheque/positions/0/tax", "one_of"),
                ("/cheque/positions/0/description", "max_length"),
                ("/cheque/positions/1/quantity", "decimal"),
                ("/cheque/positions/1/description", "required"),
            ]
        );
        for (code, name) in [(0, "income"), (1, "expense"), (2, "return"), (3, "return")] {
            assert!(facts::receipt_kind(code).is_some(), "{name}");
        }
        assert!((0..=5).all(|t| facts::tax_system(t).is_some()));
    }

    #[test]
    fn tax_codes_go_through_the_configured_table() {
        let cheque = serde_json::json!({"cheque_type": 0, "tax_system": 0,
            "positions": [{"quantity": 1, "price": 10, "tax": 1, "description": "a"},
                          {"quantity": 1, "price": 10, "tax": 5, "description": "b"}]});
        let mut errors = Vec::new();
        let d = parse_cheque(&cheque, Money(2000), &cfg(), &mut errors).unwrap();
        assert_eq!(
            (d.items[0].line.vat, d.items[1].line.vat),
            (Vat::Vat20, Vat::Vat120)
        );
        let mut mapped = cfg();
        mapped.tax.insert(1, Vat::Vat22);
        mapped.tax.remove(&5);
        let d = parse_cheque(&cheque, Money(2000), &mapped, &mut errors);
        assert!(d.is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].rule, "configured_tax_code");
        assert!(
            errors[0].message.contains("tax code 5"),
            "{}",
            errors[0].message
        );
    }
}
