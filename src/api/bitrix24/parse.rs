//! Bitrix24 PRINT and CHECK bodies → a domain [`Draft`] and the document's
//! `uuid`. Pure: takes the decoded body (a PHP-style form or JSON, read into
//! one tree by `api::body`) and the configured rules. Fields Bitrix24 sends
//! that fiscald has no use for (`unique_id`, `date_create`, `number_kkm`,
//! `service_email`, `additional_params`, other `cashbox_params` sections) are
//! ignored: their set changes between Bitrix versions.

use super::facts;
use crate::config::{Bitrix24Settings, TokenHash};
use crate::domain::{
    Buyer, CalculationMethod, Draft, DraftItem, Line, Money, Payment, Quantity, Unit, Violation,
    money,
};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Longest `uuid` kept as the idempotency key.
pub const MAX_UUID_CHARS: usize = 128;

/// A PRINT that parsed: the document id and the receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Print {
    pub uuid: String,
    pub draft: Draft,
}

/// Check `cashbox_params[AUTH][LOGIN]` and `[PASSWORD]` against the
/// configured login and password hash, in constant time. The error is the
/// message for Bitrix24's `ERRORS`.
pub fn authenticate(body: &Value, cfg: &Bitrix24Settings) -> Result<(), String> {
    let auth = body.pointer("/cashbox_params/AUTH");
    let field = |k: &str| {
        auth.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(login), Some(password)) = (field("LOGIN"), field("PASSWORD")) else {
        return Err(facts::AUTH_MISSING.into());
    };
    let login_ok =
        login.len() == cfg.login.len() && bool::from(login.as_bytes().ct_eq(cfg.login.as_bytes()));
    let password_ok = bool::from(TokenHash::of(password).0.ct_eq(&cfg.password.0));
    if login_ok & password_ok {
        Ok(())
    } else {
        Err("Authorization failed: wrong login or password in the cashbox settings".into())
    }
}

/// The document id of a PRINT or CHECK.
pub fn uuid(body: &Value) -> Result<String, Violation> {
    match body.get("uuid") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_UUID_CHARS => {
            Ok(s.trim().to_string())
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Err(Violation::new(
            "/uuid",
            "max_length",
            format!("uuid may be at most {MAX_UUID_CHARS} characters"),
        )),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(Violation::new(
            "/uuid",
            "required",
            "uuid is required: the document id in Bitrix24",
        )),
    }
}

struct P<'a> {
    errors: Vec<Violation>,
    cfg: &'a Bitrix24Settings,
}

/// Parse a PRINT body (credentials are checked apart, before).
pub fn print(body: &Value, cfg: &Bitrix24Settings) -> Result<Print, Vec<Violation>> {
    let mut p = P {
        errors: Vec::new(),
        cfg,
    };
    let uuid = uuid(body).map_err(|e| p.errors.push(e)).ok();
    let draft = match body.as_object() {
        Some(map) => p.receipt(map),
        None => {
            p.errors.push(Violation::new(
                "",
                "type",
                "the body must be a form or a JSON object",
            ));
            None
        }
    };
    match (uuid, draft) {
        (Some(uuid), Some(draft)) if p.errors.is_empty() => Ok(Print { uuid, draft }),
        _ => Err(p.errors),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A PHP form gives a list as `items[0]…`; a JSON body may also give an
/// object keyed "0", "1"…
fn list(v: &Value) -> Option<Vec<&Value>> {
    match v {
        Value::Array(a) => Some(a.iter().collect()),
        Value::Object(m) => {
            let mut keyed: Vec<(usize, &Value)> = Vec::new();
            for (k, v) in m {
                keyed.push((k.parse().ok()?, v));
            }
            keyed.sort_by_key(|(i, _)| *i);
            Some(keyed.into_iter().map(|(_, v)| v).collect())
        }
        _ => None,
    }
}

impl P<'_> {
    fn err(&mut self, path: impl Into<String>, rule: &'static str, message: impl Into<String>) {
        self.errors.push(Violation::new(path, rule, message));
    }

    fn string(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match map.get(key).and_then(text) {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                self.err(
                    format!("{path}/{key}"),
                    "required",
                    format!("{key} is required"),
                );
                None
            }
        }
    }

    fn optional(map: &Map<String, Value>, key: &str) -> Option<String> {
        map.get(key).and_then(text).filter(|s| !s.is_empty())
    }

    fn decimal<T>(
        &mut self,
        text: Option<String>,
        path: String,
        parse: fn(&str) -> Result<T, money::DecimalError>,
    ) -> Option<T> {
        let text = text?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(path, "decimal", format!("{text:?} {e}"));
                None
            }
        }
    }

    fn lookup<T: Copy>(
        &mut self,
        table: &[(&str, T)],
        value: &str,
        path: String,
        what: &str,
    ) -> Option<T> {
        let found = table.iter().find(|(n, _)| *n == value).map(|(_, v)| *v);
        if found.is_none() {
            self.err(
                path,
                "one_of",
                format!("{what} {value:?} is not one of: {}", facts::names(table)),
            );
        }
        found
    }

    fn receipt(&mut self, map: &Map<String, Value>) -> Option<Draft> {
        let ty = self.string(map, "", "type");
        let ty = ty.and_then(|t| {
            let found = facts::TYPES.iter().find(|(n, ..)| *n == t);
            if found.is_none() {
                let all: Vec<_> = facts::TYPES.iter().map(|(n, ..)| *n).collect();
                self.err(
                    "/type",
                    "one_of",
                    format!("type {t:?} is not one of: {}", all.join(", ")),
                );
            }
            found.map(|(_, ret, method)| (*ret, *method))
        });
        let sign =
            Self::optional(map, "calculated_sign").or_else(|| Self::optional(map, "operation"));
        let consumption = match sign.as_deref() {
            None | Some("income") => false,
            Some("consumption") => true,
            Some(other) => {
                self.err(
                    "/calculated_sign",
                    "one_of",
                    format!(
                        "calculated_sign {other:?} is not one of: {}",
                        facts::SIGNS.join(", ")
                    ),
                );
                false
            }
        };
        let default_method = ty.map(|(_, m)| m).unwrap_or(CalculationMethod::FullPay);
        let total = self.decimal(
            Self::optional(map, "total_sum"),
            "/total_sum".into(),
            Money::parse,
        );
        let items = match map.get("items").and_then(list) {
            Some(items) if !items.is_empty() => items,
            _ => {
                self.err("/items", "required", "items is required: at least one item");
                Vec::new()
            }
        };
        let items: Vec<Option<DraftItem>> = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| self.item(i, v, default_method))
            .collect();
        let payments = match map.get("payments").and_then(list) {
            Some(p) if !p.is_empty() => p,
            _ => {
                self.err(
                    "/payments",
                    "required",
                    "payments is required: at least one payment",
                );
                Vec::new()
            }
        };
        let payments: Vec<Option<Payment>> = payments
            .into_iter()
            .enumerate()
            .map(|(i, v)| self.payment(i, v))
            .collect();
        let email = Self::optional(map, "client_email");
        let phone = Self::optional(map, "client_phone");
        let buyer = (email.is_some() || phone.is_some()).then(|| Buyer {
            email,
            phone,
            ..Buyer::default()
        });
        let (is_return, _) = ty?;
        Some(Draft {
            kind: facts::receipt_kind(is_return, consumption),
            tax_system: None,
            currency: None,
            items: items.into_iter().collect::<Option<_>>()?,
            payments: payments.into_iter().collect::<Option<_>>()?,
            total,
            cashier: None,
            buyer,
            discount: None,
            original_date: None,
            uz: None,
            correction: None,
        })
    }

    fn item(
        &mut self,
        i: usize,
        v: &Value,
        default_method: CalculationMethod,
    ) -> Option<DraftItem> {
        let path = format!("/items/{i}");
        let Some(map) = v.as_object() else {
            self.err(path, "type", "an item must be an object");
            return None;
        };
        let name = self.string(map, &path, "name");
        let price_text = self.string(map, &path, "price");
        let price = self.decimal(price_text, format!("{path}/price"), Money::parse);
        let quantity_text = self.string(map, &path, "quantity");
        let quantity = self.decimal(quantity_text, format!("{path}/quantity"), Quantity::parse);
        let base_price = self.decimal(
            Self::optional(map, "base_price"),
            format!("{path}/base_price"),
            Money::parse,
        );
        let sum = self.decimal(
            Self::optional(map, "sum"),
            format!("{path}/sum"),
            Money::parse,
        );
        let vat_id = self.string(map, &path, "vat");
        let vat = vat_id.and_then(|id| {
            // "1", "1.0" and 1 name the same catalog entry.
            let id = id.strip_suffix(".0").unwrap_or(&id).to_string();
            let found = self.cfg.vat.get(&id).copied();
            if found.is_none() {
                self.err(
                    format!("{path}/vat"),
                    "configured_vat_id",
                    format!("Bitrix24 VAT id {id} is not mapped to a rate in [bitrix24.vat] of this till's configuration; add it"),
                );
            }
            found
        });
        let object = self.string(map, &path, "payment_object");
        let subject = object.and_then(|o| {
            self.lookup(
                facts::PAYMENT_OBJECTS,
                &o,
                format!("{path}/payment_object"),
                "payment_object",
            )
        });
        let method = match Self::optional(map, "payment_method") {
            None => Some(default_method),
            Some(m) => self.lookup(
                facts::PAYMENT_METHODS,
                &m,
                format!("{path}/payment_method"),
                "payment_method",
            ),
        };
        if let Some(d) = map.get("discount") {
            // Kept through base_price and sum; the object itself is checked
            // for shape only (see facts).
            if !(d.is_object() || d.is_null() || text(d).is_some_and(|t| t.is_empty())) {
                self.err(
                    format!("{path}/discount"),
                    "type",
                    "discount must be {discount, discount_type}",
                );
            }
        }
        let marking = Self::optional(map, "nomenclature_code")
            .into_iter()
            .collect();
        let (quantity, price, name, vat, subject, method) =
            (quantity?, price?, name?, vat?, subject?, method?);
        // The line's discount: base_price × quantity − sum (see facts).
        let (line_price, discount, total) = match base_price {
            Some(base) if base > price => {
                let gross = money::line_total(base, quantity);
                let net = match sum {
                    Some(s) => Some(s),
                    None => money::line_total(price, quantity),
                };
                match (gross, net) {
                    (Some(g), Some(n)) if g >= n => (base, Money(g.0 - n.0), Some(n)),
                    _ => {
                        self.err(
                            format!("{path}/sum"),
                            "discount_within_line",
                            "sum is more than base_price × quantity",
                        );
                        return None;
                    }
                }
            }
            _ => (price, Money::ZERO, sum),
        };
        Some(DraftItem {
            line: Line {
                name,
                quantity,
                price: line_price,
                vat,
                payment_subject: subject,
                calculation_method: method,
                barcode: None,
                class_code: None,
                package_code: None,
                marking,
                unit: Unit::Piece,
                discount,
                agent: None,
            },
            total,
        })
    }

    fn payment(&mut self, i: usize, v: &Value) -> Option<Payment> {
        let path = format!("/payments/{i}");
        let Some(map) = v.as_object() else {
            self.err(path, "type", "a payment must be an object");
            return None;
        };
        let ty = self.string(map, &path, "type");
        let found = ty.as_deref().and_then(|t| {
            let f = facts::PAYMENT_TYPES.iter().find(|(n, ..)| *n == t);
            if f.is_none() {
                let all: Vec<_> = facts::PAYMENT_TYPES.iter().map(|(n, ..)| *n).collect();
                self.err(
                    format!("{path}/type"),
                    "one_of",
                    format!("payment type {t:?} is not one of: {}", all.join(", ")),
                );
            }
            f.map(|(_, kind, cash)| (*kind, *cash))
        });
        if let (Some((_, cash)), Some(flag)) = (found, Self::optional(map, "is_cash")) {
            let said = match flag.as_str() {
                "Y" => Some(true),
                "N" => Some(false),
                _ => {
                    self.err(
                        format!("{path}/is_cash"),
                        "one_of",
                        format!("is_cash {flag:?} is not Y or N"),
                    );
                    None
                }
            };
            if said.is_some_and(|s| s != cash) {
                self.err(
                    format!("{path}/is_cash"),
                    "agrees_with_type",
                    format!(
                        "is_cash {flag} contradicts payment type {:?}",
                        ty.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        let sum_text = self.string(map, &path, "sum");
        let amount = self.decimal(sum_text, format!("{path}/sum"), Money::parse);
        Some(Payment {
            kind: found?.0,
            amount: amount?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::body::parse_form as decode;
    use crate::domain::{PaymentKind, PaymentSubject, ReceiptKind, Vat};

    fn cfg() -> Bitrix24Settings {
        Bitrix24Settings {
            login: "shop".into(),
            password: TokenHash::of("s3cret"),
            vat: [("0".to_string(), Vat::None), ("2".to_string(), Vat::Vat22)].into(),
        }
    }

    /// A PRINT as Bitrix24 posts it (brackets percent-encoded, `+` spaces).
    pub const PRINT_FORM: &str = "type=sell&calculated_sign=income&unique_id=17&date_create=1767261600\
        &uuid=check%7Cshop.bitrix24.ru%7C17&number_kkm=1&service_email=&client_email=buyer%40example.com\
        &client_phone=%2B79001234567&total_sum=1150.00\
        &items%5B0%5D%5Bname%5D=Green+tea&items%5B0%5D%5Bbase_price%5D=500.00&items%5B0%5D%5Bprice%5D=450.00\
        &items%5B0%5D%5Bsum%5D=900.00&items%5B0%5D%5Bquantity%5D=2&items%5B0%5D%5Bvat%5D=2\
        &items%5B0%5D%5Bpayment_object%5D=commodity&items%5B0%5D%5Bpayment_method%5D=full_payment\
        &items%5B0%5D%5Bdiscount%5D%5Bdiscount%5D=100.00&items%5B0%5D%5Bdiscount%5D%5Bdiscount_type%5D=C\
        &items%5B1%5D%5Bname%5D=Delivery&items%5B1%5D%5Bprice%5D=250&items%5B1%5D%5Bsum%5D=250\
        &items%5B1%5D%5Bquantity%5D=1&items%5B1%5D%5Bvat%5D=0&items%5B1%5D%5Bpayment_object%5D=service\
        &payments%5B0%5D%5Btype%5D=cashless&payments%5B0%5D%5Bis_cash%5D=N&payments%5B0%5D%5Bsum%5D=1150.00\
        &cashbox_params%5BAUTH%5D%5BLOGIN%5D=shop&cashbox_params%5BAUTH%5D%5BPASSWORD%5D=s3cret";

    #[test]
    fn a_form_print_becomes_a_draft_with_its_line_discount() {
        let body = decode(PRINT_FORM.as_bytes()).unwrap();
        assert_eq!(authenticate(&body, &cfg()), Ok(()));
        let p = print(&body, &cfg()).unwrap();
        assert_eq!(p.uuid, "check|shop.bitrix24.ru|17");
        let d = p.draft;
        assert_eq!(d.kind, ReceiptKind::Sale);
        assert_eq!(d.total, Some(Money(115000)));
        let tea = &d.items[0];
        assert_eq!(tea.line.name, "Green tea");
        assert_eq!(
            (tea.line.price, tea.line.discount, tea.total),
            (Money(50000), Money(10000), Some(Money(90000)))
        );
        assert_eq!(tea.line.vat, Vat::Vat22);
        assert_eq!(tea.line.calculation_method, CalculationMethod::FullPay);
        let delivery = &d.items[1].line;
        assert_eq!(
            (delivery.vat, delivery.payment_subject),
            (Vat::None, PaymentSubject::Service)
        );
        assert_eq!(
            d.payments,
            vec![Payment {
                kind: PaymentKind::Electronic,
                amount: Money(115000)
            }]
        );
        assert_eq!(d.buyer.unwrap().email.as_deref(), Some("buyer@example.com"));
    }

    #[test]
    fn json_bodies_read_the_same() {
        let form = decode(PRINT_FORM.as_bytes()).unwrap();
        let json: Value = serde_json::from_str(&serde_json::to_string(&form).unwrap()).unwrap();
        assert_eq!(print(&json, &cfg()), print(&form, &cfg()));
    }

    #[test]
    fn credentials_are_required_and_checked() {
        let mut body = decode(PRINT_FORM.as_bytes()).unwrap();
        body["cashbox_params"]["AUTH"]["PASSWORD"] = "wrong".into();
        assert!(
            authenticate(&body, &cfg())
                .unwrap_err()
                .contains("wrong login or password")
        );
        body["cashbox_params"]["AUTH"]["LOGIN"] = "".into();
        assert_eq!(
            authenticate(&body, &cfg()).unwrap_err(),
            facts::AUTH_MISSING
        );
        body.as_object_mut().unwrap().remove("cashbox_params");
        assert_eq!(
            authenticate(&body, &cfg()).unwrap_err(),
            facts::AUTH_MISSING
        );
    }

    #[test]
    fn every_type_method_object_and_payment_type_maps() {
        let mut body = decode(PRINT_FORM.as_bytes()).unwrap();
        for (ty, is_return, method) in facts::TYPES {
            for sign in facts::SIGNS {
                body["type"] = (*ty).into();
                body["calculated_sign"] = (*sign).into();
                body["items"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("payment_method");
                let d = print(&body, &cfg()).unwrap().draft;
                assert_eq!(
                    d.kind,
                    facts::receipt_kind(*is_return, *sign == "consumption")
                );
                assert_eq!(d.items[1].line.calculation_method, *method, "{ty}");
            }
        }
        for (name, m) in facts::PAYMENT_METHODS {
            body["items"][0]["payment_method"] = (*name).into();
            assert_eq!(
                print(&body, &cfg()).unwrap().draft.items[0]
                    .line
                    .calculation_method,
                *m
            );
        }
        for (name, s) in facts::PAYMENT_OBJECTS {
            body["items"][0]["payment_object"] = (*name).into();
            assert_eq!(
                print(&body, &cfg()).unwrap().draft.items[0]
                    .line
                    .payment_subject,
                *s
            );
        }
        for (name, k, cash) in facts::PAYMENT_TYPES {
            body["payments"][0]["type"] = (*name).into();
            body["payments"][0]["is_cash"] = (if *cash { "Y" } else { "N" }).into();
            assert_eq!(print(&body, &cfg()).unwrap().draft.payments[0].kind, *k);
        }
        assert_eq!(facts::receipt_kind(true, true), ReceiptKind::PurchaseReturn);
    }

    #[test]
    fn unknown_codes_and_vat_ids_are_named() {
        let mut body = decode(PRINT_FORM.as_bytes()).unwrap();
        body["type"] = "gift".into();
        body["items"][0]["vat"] = "7".into();
        body["items"][1]["payment_object"] = "lottery".into();
        body["payments"][0]["is_cash"] = "Y".into();
        body.as_object_mut().unwrap().remove("uuid");
        let errors = print(&body, &cfg()).unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.rule)).collect();
        assert_eq!(
            got,
            [
                ("/uuid", "required"),
                ("/type", "one_of"),
                ("/items/0/vat", "configured_vat_id"),
                ("/items/1/payment_object", "one_of"),
                ("/payments/0/is_cash", "agrees_with_type"),
            ]
        );
        assert!(
            errors[2].message.contains("VAT id 7"),
            "{}",
            errors[2].message
        );
    }
}

#[cfg(test)]
mod handler_tests {
    #[test]
    fn the_handler_json_names_both_urls_and_the_auth_section() {
        let j = super::facts::handler_json("https://till.example.com:8443/");
        assert_eq!(
            j["SETTINGS"]["PRINT_URL"],
            "https://till.example.com:8443/bitrix24/print"
        );
        assert_eq!(
            j["SETTINGS"]["CHECK_URL"],
            "https://till.example.com:8443/bitrix24/check"
        );
        let auth = &j["SETTINGS"]["CONFIG"]["AUTH"]["ITEMS"];
        assert_eq!(auth["LOGIN"]["REQUIRED"], "Y");
        assert_eq!(auth["PASSWORD"]["TYPE"], "STRING");
    }
}
