//! The native dialect's parser: a JSON request body into a domain [`Draft`].
//! It only translates: the rules live in `domain::validate`.
//!
//! Field names match the domain model, so the JSON pointers in a validation
//! error point straight into the request. Money and quantities are accepted as
//! JSON numbers or decimal strings (parsed from their text, never via floats)
//! and returned as decimal strings: `"150.00"`, `"1.500"`.

use crate::domain::{
    Agent, AgentKind, Buyer, CalculationMethod, Cashier, Draft, DraftItem, Line, Money, Payment,
    PaymentKind, PaymentSubject, Quantity, ReceiptKind, TaxSystem, Unit, Vat, Violation,
    money::DecimalError,
};
use serde_json::{Map, Value};

/// Parse a native receipt request. Reports every shape problem at once
/// (unknown field, missing field, wrong type, unknown code).
pub fn parse_receipt(body: &Value) -> Result<Draft, Vec<Violation>> {
    let mut p = Parser { errors: Vec::new() };
    let draft = p.receipt(body);
    match draft {
        Some(d) if p.errors.is_empty() => Ok(d),
        _ => Err(p.errors),
    }
}

struct Parser {
    errors: Vec<Violation>,
}

const RECEIPT_FIELDS: &[&str] = &[
    "type",
    "tax_system",
    "currency",
    "items",
    "payments",
    "total",
    "cashier",
    "buyer",
    "discount",
    "original_date",
];
const ITEM_FIELDS: &[&str] = &[
    "name",
    "quantity",
    "price",
    "total",
    "vat",
    "payment_subject",
    "calculation_method",
    "barcode",
    "class_code",
    "package_code",
    "marking",
    "unit",
    "discount",
    "agent",
];
const AGENT_FIELDS: &[&str] = &["kind", "supplier_name", "supplier_inn", "supplier_phone"];

impl Parser {
    fn err(&mut self, path: &str, rule: &'static str, message: impl Into<String>) {
        self.errors.push(Violation::new(path, rule, message));
    }

    fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        fields: &[&str],
    ) -> Option<&'a Map<String, Value>> {
        let Some(map) = v.as_object() else {
            self.err(path_or_root(path), "type", "must be a JSON object");
            return None;
        };
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                self.err(
                    &format!("{path}/{}", escape(key)),
                    "unknown_field",
                    format!("unknown field; expected one of: {}", fields.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn required<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Value> {
        match map.get(key) {
            Some(Value::Null) | None => {
                self.err(
                    &format!("{path}/{key}"),
                    "required",
                    format!("{key} is required"),
                );
                None
            }
            Some(v) => Some(v),
        }
    }

    fn optional<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
        map.get(key).filter(|v| !v.is_null())
    }

    fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.err(path, "type", "must be a string");
                None
            }
        }
    }

    fn decimal<T>(
        &mut self,
        v: &Value,
        path: &str,
        parse: fn(&str) -> Result<T, DecimalError>,
    ) -> Option<T> {
        let text = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                self.err(path, "type", "must be a decimal number or a decimal string");
                return None;
            }
        };
        match parse(&text) {
            Ok(value) => Some(value),
            Err(e) => {
                let rule = match e {
                    DecimalError::Syntax => "decimal",
                    DecimalError::TooManyDecimals(_) => "decimals",
                    DecimalError::TooLarge => "max",
                };
                self.err(path, rule, format!("{text:?} {e}"));
                None
            }
        }
    }

    fn code<T>(
        &mut self,
        v: &Value,
        path: &str,
        from_code: fn(&str) -> Option<T>,
        codes: fn() -> String,
    ) -> Option<T> {
        let text = match v {
            Value::String(s) => s.clone(),
            // `"vat": 20` reads as naturally as `"vat": "20"`.
            Value::Number(n) => n.to_string(),
            _ => {
                self.err(path, "type", format!("must be one of: {}", codes()));
                return None;
            }
        };
        let found = from_code(&text);
        if found.is_none() {
            self.err(
                path,
                "one_of",
                format!("{text:?} is not one of: {}", codes()),
            );
        }
        found
    }

    fn receipt(&mut self, v: &Value) -> Option<Draft> {
        let map = self.object(v, "", RECEIPT_FIELDS)?;
        let kind = self
            .required(map, "", "type")
            .and_then(|v| self.code(v, "/type", ReceiptKind::from_code, ReceiptKind::codes));
        let tax_system = Self::optional(map, "tax_system")
            .map(|v| self.code(v, "/tax_system", TaxSystem::from_code, TaxSystem::codes));
        let currency = Self::optional(map, "currency").map(|v| self.string(v, "/currency"));
        let total = Self::optional(map, "total").map(|v| self.decimal(v, "/total", Money::parse));
        let items = self.required(map, "", "items").and_then(|v| self.items(v));
        let payments = self
            .required(map, "", "payments")
            .and_then(|v| self.payments(v));
        let cashier = Self::optional(map, "cashier").map(|v| self.cashier(v));
        let buyer = Self::optional(map, "buyer").map(|v| self.buyer(v));
        let discount =
            Self::optional(map, "discount").map(|v| self.decimal(v, "/discount", Money::parse));
        let original_date = Self::optional(map, "original_date").map(|v| self.date(v));
        Some(Draft {
            kind: kind?,
            tax_system: tax_system.map(|t| t.ok_or(())).transpose().ok()?,
            currency: currency.map(|t| t.ok_or(())).transpose().ok()?,
            items: items?,
            payments: payments?,
            total: total.map(|t| t.ok_or(())).transpose().ok()?,
            cashier: cashier.map(|t| t.ok_or(())).transpose().ok()?,
            buyer: buyer.map(|t| t.ok_or(())).transpose().ok()?,
            uz: None,
            correction: None,
            discount: discount.map(|t| t.ok_or(())).transpose().ok()?,
            original_date: original_date.map(|t| t.ok_or(())).transpose().ok()?,
        })
    }

    fn date(&mut self, v: &Value) -> Option<chrono::NaiveDate> {
        let text = self.string(v, "/original_date")?;
        let date = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok();
        if date.is_none() {
            self.err(
                "/original_date",
                "date",
                format!("{text:?} is not a date such as 2025-12-20"),
            );
        }
        date
    }

    fn agent(&mut self, v: &Value, path: &str) -> Option<Agent> {
        let map = self.object(v, path, AGENT_FIELDS)?;
        let kind = self.required(map, path, "kind").and_then(|v| {
            self.code(
                v,
                &format!("{path}/kind"),
                AgentKind::from_code,
                AgentKind::codes,
            )
        });
        let name = self
            .required(map, path, "supplier_name")
            .and_then(|v| self.string(v, &format!("{path}/supplier_name")));
        let inn = self
            .required(map, path, "supplier_inn")
            .and_then(|v| self.string(v, &format!("{path}/supplier_inn")));
        let phone = Self::optional(map, "supplier_phone")
            .map(|v| self.string(v, &format!("{path}/supplier_phone")));
        Some(Agent {
            kind: kind?,
            supplier_name: name?,
            supplier_inn: inn?,
            supplier_phone: phone.map(|t| t.ok_or(())).transpose().ok()?,
        })
    }

    fn items(&mut self, v: &Value) -> Option<Vec<DraftItem>> {
        let Some(list) = v.as_array() else {
            self.err("/items", "type", "must be an array of items");
            return None;
        };
        let parsed: Vec<_> = list
            .iter()
            .enumerate()
            .map(|(i, v)| self.item(v, i))
            .collect();
        parsed.into_iter().collect()
    }

    fn item(&mut self, v: &Value, i: usize) -> Option<DraftItem> {
        let path = format!("/items/{i}");
        let map = self.object(v, &path, ITEM_FIELDS)?;
        let at = |f: &str| format!("{path}/{f}");
        let name = self
            .required(map, &path, "name")
            .and_then(|v| self.string(v, &at("name")));
        let quantity = self
            .required(map, &path, "quantity")
            .and_then(|v| self.decimal(v, &at("quantity"), Quantity::parse));
        let price = self
            .required(map, &path, "price")
            .and_then(|v| self.decimal(v, &at("price"), Money::parse));
        let total =
            Self::optional(map, "total").map(|v| self.decimal(v, &at("total"), Money::parse));
        let vat = self
            .required(map, &path, "vat")
            .and_then(|v| self.code(v, &at("vat"), Vat::from_code, Vat::codes));
        let payment_subject = match Self::optional(map, "payment_subject") {
            Some(v) => self.code(
                v,
                &at("payment_subject"),
                PaymentSubject::from_code,
                PaymentSubject::codes,
            ),
            None => Some(PaymentSubject::Commodity),
        };
        let calculation_method = match Self::optional(map, "calculation_method") {
            Some(v) => self.code(
                v,
                &at("calculation_method"),
                CalculationMethod::from_code,
                CalculationMethod::codes,
            ),
            None => Some(CalculationMethod::FullPay),
        };
        let unit = match Self::optional(map, "unit") {
            Some(v) => self.code(v, &at("unit"), Unit::from_code, Unit::codes),
            None => Some(Unit::Piece),
        };
        let discount = match Self::optional(map, "discount") {
            Some(v) => self.decimal(v, &at("discount"), Money::parse),
            None => Some(Money::ZERO),
        };
        let agent = Self::optional(map, "agent").map(|v| self.agent(v, &at("agent")));
        let mut text = |key: &str| Self::optional(map, key).map(|v| self.string(v, &at(key)));
        let barcode = text("barcode");
        let class_code = text("class_code");
        let package_code = text("package_code");
        let marking = match Self::optional(map, "marking") {
            None => Some(Vec::new()),
            Some(Value::Array(codes)) => codes
                .iter()
                .enumerate()
                .map(|(m, c)| self.string(c, &format!("{path}/marking/{m}")))
                .collect::<Vec<_>>()
                .into_iter()
                .collect(),
            Some(_) => {
                self.err(
                    &at("marking"),
                    "type",
                    "must be an array of marking code strings",
                );
                None
            }
        };
        Some(DraftItem {
            line: Line {
                name: name?,
                quantity: quantity?,
                price: price?,
                vat: vat?,
                payment_subject: payment_subject?,
                calculation_method: calculation_method?,
                barcode: barcode.map(|t| t.ok_or(())).transpose().ok()?,
                class_code: class_code.map(|t| t.ok_or(())).transpose().ok()?,
                package_code: package_code.map(|t| t.ok_or(())).transpose().ok()?,
                marking: marking?,
                unit: unit?,
                discount: discount?,
                agent: agent.map(|t| t.ok_or(())).transpose().ok()?,
            },
            total: total.map(|t| t.ok_or(())).transpose().ok()?,
        })
    }

    fn payments(&mut self, v: &Value) -> Option<Vec<Payment>> {
        let Some(list) = v.as_array() else {
            self.err(
                "/payments",
                "type",
                "must be an array of {\"kind\", \"amount\"} objects",
            );
            return None;
        };
        let parsed: Vec<_> = list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("/payments/{i}");
                let map = self.object(v, &path, &["kind", "amount"])?;
                let kind = self.required(map, &path, "kind").and_then(|v| {
                    self.code(
                        v,
                        &format!("{path}/kind"),
                        PaymentKind::from_code,
                        PaymentKind::codes,
                    )
                });
                let amount = self
                    .required(map, &path, "amount")
                    .and_then(|v| self.decimal(v, &format!("{path}/amount"), Money::parse));
                Some(Payment {
                    kind: kind?,
                    amount: amount?,
                })
            })
            .collect();
        parsed.into_iter().collect()
    }

    fn cashier(&mut self, v: &Value) -> Option<Cashier> {
        let map = self.object(v, "/cashier", &["name", "inn"])?;
        let name = self
            .required(map, "/cashier", "name")
            .and_then(|v| self.string(v, "/cashier/name"));
        let inn = Self::optional(map, "inn").map(|v| self.string(v, "/cashier/inn"));
        Some(Cashier {
            name: name?,
            inn: inn.map(|t| t.ok_or(())).transpose().ok()?,
        })
    }

    fn buyer(&mut self, v: &Value) -> Option<Buyer> {
        let map = self.object(v, "/buyer", &["email", "phone", "name", "inn"])?;
        let mut text =
            |key: &str| Self::optional(map, key).map(|v| self.string(v, &format!("/buyer/{key}")));
        let email = text("email");
        let phone = text("phone");
        let name = text("name");
        let inn = text("inn");
        Some(Buyer {
            email: email.map(|t| t.ok_or(())).transpose().ok()?,
            phone: phone.map(|t| t.ok_or(())).transpose().ok()?,
            name: name.map(|t| t.ok_or(())).transpose().ok()?,
            inn: inn.map(|t| t.ok_or(())).transpose().ok()?,
        })
    }
}

fn path_or_root(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// JSON pointer escaping of one reference token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> Vec<(String, &'static str)> {
        parse_receipt(&v)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.path, v.rule))
            .collect()
    }

    #[test]
    fn parses_numbers_and_strings_exactly() {
        let d = parse_receipt(
            &serde_json::from_str::<Value>(
                r#"{"type":"sale","items":[{"name":"x","quantity":1.5,"price":"0.10","vat":20}],
                "payments":[{"kind":"cash","amount":0.15}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(d.items[0].line.quantity, Quantity(1500));
        assert_eq!(d.items[0].line.price, Money(10));
        assert_eq!(d.items[0].line.vat, Vat::Vat20);
        assert_eq!(d.payments[0].amount, Money(15));
        assert_eq!(d.items[0].line.payment_subject, PaymentSubject::Commodity);
    }

    #[test]
    fn reports_every_shape_problem() {
        let v: Value = serde_json::from_str(
            r#"{"type":"gift","itemz":[],"items":[{"name":5,"quantity":"1,5","price":1e3,"vat":"18"}],
                "payments":[{"kind":"cash"}]}"#,
        )
        .unwrap();
        assert_eq!(
            rules(v),
            vec![
                ("/itemz".into(), "unknown_field"),
                ("/type".into(), "one_of"),
                ("/items/0/name".into(), "type"),
                ("/items/0/quantity".into(), "decimal"),
                ("/items/0/price".into(), "decimal"),
                ("/items/0/vat".into(), "one_of"),
                ("/payments/0/amount".into(), "required"),
            ]
        );
        assert_eq!(rules(json!([1])), vec![("/".into(), "type")]);
    }
}
