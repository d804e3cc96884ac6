//! The processing simulator's pure core: connector logins and bearer tokens,
//! receipt validation as the processing judges it, idempotent registration
//! (one document per `Idempotency-Key`, forever), and the fiscal documents
//! with their attributes.
//!
//! No I/O and no clock: every call that depends on time takes `now`. Bodies,
//! replies and code tables are the ones in [`crate::sync::wire`]; every decimal
//! goes through [`crate::domain::money`]. Nothing here knows HTTP: the shell
//! maps a [`CloudError`] to a status.

use super::SimConfig;
use crate::domain::money::{MAX_MONEY_MINOR, MAX_QUANTITY_MILLI, line_total};
use crate::domain::{
    AgentKind, CalculationMethod, Country, Money, PaymentKind, PaymentSubject, Quantity,
    ReceiptKind, TaxSystem, Unit,
};
use crate::sync::wire::{self, DocumentReply, ErrorBody, FiscalAttributesBody, ReceiptBody};
use chrono::{DateTime, TimeDelta, Utc};
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Number;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Longest item name the processing takes (tag 1030).
pub const MAX_ITEM_NAME_CHARS: usize = 128;
/// Length of generated access and refresh tokens.
const TOKEN_LEN: usize = 40;

/// Why the processing refused a call. [`CloudError::code`] and the message
/// make the `{"error", "message"}` body; the shell picks the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// 401: a connector token, refresh token or bearer token it does not accept.
    #[error("{message}")]
    Unauthorized {
        error: &'static str,
        message: String,
    },
    /// 400: a request it cannot read (missing parameter, wrong client, grant type).
    #[error("{message}")]
    BadRequest {
        error: &'static str,
        message: String,
    },
    /// 422: the receipt breaks a rule; every broken rule, joined by `; `.
    #[error("{0}")]
    Invalid(String),
    /// 422: a well-formed receipt the processing refuses (the reject marker).
    #[error("{0}")]
    Rejected(String),
    /// 409: the `Idempotency-Key` already names a document with another body.
    #[error("{0}")]
    Conflict(String),
    /// 404: no such document.
    #[error("{0}")]
    NotFound(String),
}

impl CloudError {
    /// The `error` field of the reply body.
    pub fn code(&self) -> &'static str {
        match self {
            CloudError::Unauthorized { error, .. } | CloudError::BadRequest { error, .. } => error,
            CloudError::Invalid(_) => "validation",
            CloudError::Rejected(_) => "rejected",
            CloudError::Conflict(_) => "conflict",
            CloudError::NotFound(_) => "not_found",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: Some(self.code().to_string()),
            message: Some(self.to_string()),
        }
    }
}

/// What a registration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The processing-side document id (the reply body).
    pub id: u64,
    /// The key was seen before with the same body: no new document.
    pub repeat: bool,
}

/// What the processing has done since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudCounters {
    /// Documents registered (one per new key).
    pub documents: u64,
    /// Registrations that repeated a key with the same body.
    pub duplicates: u64,
    /// Registrations that reused a key with another body (409).
    pub conflicts: u64,
    /// Receipts refused as invalid or by the reject marker (422).
    pub rejected: u64,
    pub logins: u64,
    pub refreshes: u64,
    /// 401 replies: bad connector token, bad or expired refresh or access token.
    pub unauthorized: u64,
    /// `GET /protected/documents/{id}` calls.
    pub document_reads: u64,
}

struct Document {
    id: u64,
    body: ReceiptBody,
    /// The canonical serialization of `body`: how a repeat is told from a conflict.
    canonical: String,
    fiscalized_at: DateTime<Utc>,
    attributes: FiscalAttributesBody,
}

/// The simulated processing's whole state.
pub struct CloudModel {
    config: SimConfig,
    rng: StdRng,
    /// Access token → expiry.
    access: HashMap<String, DateTime<Utc>>,
    /// Refresh token → expiry. Removed when used.
    refresh: HashMap<String, DateTime<Utc>>,
    documents: Vec<Document>,
    by_key: HashMap<String, usize>,
    next_fiscal_document_number: u64,
    next_receipt_in_shift: u64,
    counters: CloudCounters,
}

impl CloudModel {
    pub fn new(config: &SimConfig) -> CloudModel {
        let mut config = config.clone();
        config.reject_marker = config.reject_marker.filter(|m| !m.is_empty());
        CloudModel {
            rng: StdRng::seed_from_u64(config.seed),
            access: HashMap::new(),
            refresh: HashMap::new(),
            documents: Vec::new(),
            by_key: HashMap::new(),
            next_fiscal_document_number: config.first_fiscal_document_number,
            next_receipt_in_shift: 1,
            counters: CloudCounters::default(),
            config,
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn counters(&self) -> &CloudCounters {
        &self.counters
    }

    /// Applies to tokens issued from now on.
    pub fn set_token_lifetime_s(&mut self, seconds: u64) {
        self.config.token_lifetime_s = seconds;
    }

    /// Applies to documents registered from now on.
    pub fn set_processing_delay_ms(&mut self, ms: u64) {
        self.config.processing_delay_ms = ms;
    }

    /// `None` or an empty marker: nothing is rejected for its name.
    pub fn set_reject_marker(&mut self, marker: Option<String>) {
        self.config.reject_marker = marker.filter(|m| !m.is_empty());
    }

    /// The `client_id` and `client_secret` of a token request: both the
    /// connector client's ([`wire::CLIENT_ID`]).
    pub fn client(&mut self, id: Option<&str>, secret: Option<&str>) -> Result<(), CloudError> {
        if id == Some(wire::CLIENT_ID) && secret == Some(wire::CLIENT_ID) {
            return Ok(());
        }
        self.counters.unauthorized += 1;
        Err(CloudError::Unauthorized {
            error: "invalid_client",
            message: format!(
                "client_id and client_secret must both be {}",
                wire::CLIENT_ID
            ),
        })
    }

    /// `grant_type=token`: the connector token buys an access/refresh pair.
    pub fn login(
        &mut self,
        connector_token: &str,
        now: DateTime<Utc>,
    ) -> Result<wire::TokenReply, CloudError> {
        if connector_token != self.config.connector_token {
            self.counters.unauthorized += 1;
            return Err(CloudError::Unauthorized {
                error: "invalid_grant",
                message: "the connector token is not known to the processing; \
                          check the token issued for this till"
                    .into(),
            });
        }
        self.counters.logins += 1;
        Ok(self.issue(now))
    }

    /// `grant_type=refresh_token`: a refresh token buys a new pair once.
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<wire::TokenReply, CloudError> {
        let message = match self.refresh.remove(refresh_token) {
            Some(expires) if now < expires => {
                self.counters.refreshes += 1;
                return Ok(self.issue(now));
            }
            Some(_) => "the refresh token has expired; log in again with the connector token",
            None => {
                "the refresh token is not valid (unknown or already used); \
                 log in again with the connector token"
            }
        };
        self.counters.unauthorized += 1;
        Err(CloudError::Unauthorized {
            error: "invalid_grant",
            message: message.into(),
        })
    }

    /// Checks the bearer token of a protected call (`None`: no `Authorization`).
    pub fn authorize(
        &mut self,
        bearer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), CloudError> {
        let (error, message) = match bearer.map(|b| self.access.get(b)) {
            Some(Some(expires)) if now < *expires => return Ok(()),
            Some(Some(_)) => ("invalid_token", "the access token has expired; refresh it"),
            Some(None) => (
                "invalid_token",
                "the access token is not valid; log in again",
            ),
            None => (
                "unauthorized",
                "full authentication is required: send Authorization: Bearer <access_token>",
            ),
        };
        self.counters.unauthorized += 1;
        Err(CloudError::Unauthorized {
            error,
            message: message.into(),
        })
    }

    fn issue(&mut self, now: DateTime<Utc>) -> wire::TokenReply {
        self.access.retain(|_, expires| now < *expires);
        self.refresh.retain(|_, expires| now < *expires);
        let access_token = Alphanumeric.sample_string(&mut self.rng, TOKEN_LEN);
        let refresh_token = Alphanumeric.sample_string(&mut self.rng, TOKEN_LEN);
        let jti = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        self.access.insert(
            access_token.clone(),
            later(
                now,
                TimeDelta::seconds(saturating_i64(self.config.token_lifetime_s)),
            ),
        );
        self.refresh.insert(
            refresh_token.clone(),
            later(
                now,
                TimeDelta::seconds(saturating_i64(self.config.refresh_lifetime_s)),
            ),
        );
        wire::TokenReply {
            access_token,
            token_type: "bearer".into(),
            refresh_token,
            expires_in: self.config.token_lifetime_s,
            scope: Some("read write".into()),
            connector_id: Some(self.config.connector_id.into()),
            jti: Some(jti.to_string()),
        }
    }

    /// Register a receipt under `key`. A new key makes a new document; the same
    /// key with the same body (compared by canonical serialization) is the same
    /// document again; with another body it is a conflict. A refused receipt
    /// leaves no trace but the counter, so a corrected retry may reuse its key.
    pub fn register(
        &mut self,
        key: &str,
        body: &ReceiptBody,
        now: DateTime<Utc>,
    ) -> Result<Registration, CloudError> {
        let canonical = serde_json::to_string(body).expect("a receipt body always serializes");
        if let Some(&index) = self.by_key.get(key) {
            let document = &self.documents[index];
            if document.canonical == canonical {
                self.counters.duplicates += 1;
                return Ok(Registration {
                    id: document.id,
                    repeat: true,
                });
            }
            self.counters.conflicts += 1;
            return Err(CloudError::Conflict(format!(
                "Idempotency-Key {key} already registered document {} with a different receipt; \
                 a different receipt needs a new key",
                document.id
            )));
        }
        let total = match validate_receipt(body) {
            Ok(total) => total,
            Err(problems) => {
                self.counters.rejected += 1;
                return Err(CloudError::Invalid(problems.join("; ")));
            }
        };
        if let Some(marker) = &self.config.reject_marker {
            if let Some((i, item)) = body
                .items
                .iter()
                .enumerate()
                .find(|(_, item)| item.name.contains(marker.as_str()))
            {
                self.counters.rejected += 1;
                return Err(CloudError::Rejected(format!(
                    "items[{i}].name {:?}: the processing refuses this receipt \
                     (simulated rejection: the name contains {marker:?})",
                    item.name
                )));
            }
        }

        let id = self.config.first_document_id + self.documents.len() as u64;
        let fiscal_document_number = self.next_fiscal_document_number;
        let receipt_number_in_shift = self.next_receipt_in_shift;
        self.next_fiscal_document_number += 1;
        self.next_receipt_in_shift += 1;
        // The fiscal drive signs when the processing gets to the receipt, so
        // the document's time is the end of the processing delay.
        let fiscalized_at = later(
            now,
            TimeDelta::milliseconds(saturating_i64(self.config.processing_delay_ms)),
        );
        let date_time = fiscalized_at
            .with_timezone(&self.config.timezone)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        let fiscal_sign = fiscal_sign(
            &self.config.fiscal_drive_number,
            fiscal_document_number,
            total,
            &date_time,
        );
        let ofd_receipt_url = self.config.ofd_receipt_url.as_ref().map(|base| {
            format!(
                "{base}?fn={}&i={fiscal_document_number}&fp={fiscal_sign}",
                self.config.fiscal_drive_number
            )
        });
        let attributes = FiscalAttributesBody {
            fiscal_document_number,
            fiscal_sign,
            fiscal_drive_number: self.config.fiscal_drive_number.clone(),
            kkt_reg_id: self.config.kkt_reg_id.clone(),
            shift_number: self.config.shift_number,
            receipt_number_in_shift,
            date_time,
            ofd_receipt_url,
        };
        self.by_key.insert(key.to_string(), self.documents.len());
        self.documents.push(Document {
            id,
            body: body.clone(),
            canonical,
            fiscalized_at,
            attributes,
        });
        self.counters.documents += 1;
        Ok(Registration { id, repeat: false })
    }

    /// `GET /protected/documents/{id}`.
    pub fn document(&mut self, id: u64, now: DateTime<Utc>) -> Option<DocumentReply> {
        self.counters.document_reads += 1;
        let index = usize::try_from(id.checked_sub(self.config.first_document_id)?).ok()?;
        self.documents.get(index).map(|d| reply(d, now))
    }

    /// The document registered under `key`, for the buyer's offline page.
    pub fn by_key(&self, key: &str, now: DateTime<Utc>) -> Option<DocumentReply> {
        self.by_key
            .get(key)
            .map(|&i| reply(&self.documents[i], now))
    }

    /// How many documents are stored.
    /// Every registered receipt body as kept, oldest first: tests assert
    /// each tag the processing received.
    pub fn bodies(&self) -> Vec<ReceiptBody> {
        self.documents.iter().map(|d| d.body.clone()).collect()
    }

    pub fn document_count(&self) -> usize {
        self.documents.len()
    }
}

fn reply(document: &Document, now: DateTime<Utc>) -> DocumentReply {
    let done = now >= document.fiscalized_at;
    DocumentReply {
        id: document.id,
        status: if done {
            wire::STATUS_FISCALIZED
        } else {
            wire::STATUS_PROCESSING
        }
        .to_string(),
        error_message: None,
        receipt: Some(
            serde_json::to_value(&document.body).expect("a receipt body always serializes"),
        ),
        fiscal_attributes: done.then(|| document.attributes.clone()),
    }
}

fn saturating_i64(v: u64) -> i64 {
    // TimeDelta's own bounds are far below i64::MAX milliseconds.
    i64::try_from(v)
        .unwrap_or(i64::MAX)
        .min(i64::MAX / 1_000_000)
}

fn later(now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Tag 1077: ten digits, deterministic in the drive, the document number, the
/// total and the time, as a real fiscal drive's signature is.
pub fn fiscal_sign(
    fiscal_drive_number: &str,
    fiscal_document_number: u64,
    total: Money,
    date_time: &str,
) -> String {
    let digest = Sha256::digest(format!(
        "{fiscal_drive_number}|{fiscal_document_number}|{}|{date_time}",
        total.to_decimal()
    ));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("{:010}", u64::from_be_bytes(first) % 10_000_000_000)
}

/// Judge a receipt as the processing does. Returns its total, or every broken
/// rule as `path value problem`, e.g.
/// `items[1].total 5.00 is not price × quantity = 4.99`.
pub fn validate_receipt(body: &ReceiptBody) -> Result<Money, Vec<String>> {
    let mut problems = Vec::new();
    code(
        "type",
        &body.kind,
        ReceiptKind::ALL,
        wire::kind_code,
        &mut problems,
    );
    code(
        "taxSystem",
        &body.tax_system,
        TaxSystem::ALL,
        wire::tax_system_code,
        &mut problems,
    );
    if body.items.is_empty() {
        problems.push("items must hold at least one item".to_string());
    }
    // The Russian processing knows the Russian rates only.
    let vats = Country::Ru.allowed_vat();
    let mut item_totals = Some(Money::ZERO);
    for (i, item) in body.items.iter().enumerate() {
        let at = |field: &str| format!("items[{i}].{field}");
        code(
            &at("calculationMethod"),
            &item.calculation_method,
            CalculationMethod::ALL,
            wire::calculation_method_code,
            &mut problems,
        );
        code(
            &at("paymentSubject"),
            &item.payment_subject,
            PaymentSubject::ALL,
            wire::payment_subject_code,
            &mut problems,
        );
        code(&at("vat"), &item.vat, vats, wire::vat_code, &mut problems);
        let name_chars = item.name.chars().count();
        if item.name.trim().is_empty() {
            problems.push(format!("{} must not be empty", at("name")));
        } else if name_chars > MAX_ITEM_NAME_CHARS {
            problems.push(format!(
                "{} is {name_chars} characters long; at most {MAX_ITEM_NAME_CHARS} are allowed",
                at("name")
            ));
        }
        let price = money(&at("price"), &item.price, &mut problems);
        let quantity = quantity(&at("quantity"), &item.quantity, &mut problems);
        let total = money(&at("total"), &item.total, &mut problems);
        let discount = match &item.discount {
            Some(d) => money(&at("discount"), d, &mut problems),
            None => Some(Money::ZERO),
        };
        if let (Some(price), Some(quantity), Some(total), Some(discount)) =
            (price, quantity, total, discount)
        {
            match line_total(price, quantity) {
                None => problems.push(format!("{}: price × quantity is too large", at("total"))),
                Some(gross) if discount > gross => problems.push(format!(
                    "{} {discount} is more than price × quantity = {gross}",
                    at("discount")
                )),
                Some(gross) if Money(gross.0 - discount.0) != total => problems.push(format!(
                    "{} {total} is not price × quantity{} = {}",
                    at("total"),
                    if discount.is_zero() {
                        ""
                    } else {
                        " − discount"
                    },
                    Money(gross.0 - discount.0)
                )),
                Some(_) => {}
            }
        }
        if let Some(agent) = &item.agent {
            code(
                &at("agent.type"),
                &agent.kind,
                AgentKind::ALL,
                wire::agent_kind_code,
                &mut problems,
            );
            if agent.supplier_name.trim().is_empty() {
                problems.push(format!("{} must not be empty", at("agent.supplierName")));
            }
            if !(matches!(agent.supplier_inn.len(), 10 | 12)
                && agent.supplier_inn.bytes().all(|b| b.is_ascii_digit()))
            {
                problems.push(format!(
                    "{} {:?} must be 10 or 12 digits",
                    at("agent.supplierInn"),
                    agent.supplier_inn
                ));
            }
        }
        if let Some(m) = item.measure
            && !Unit::ALL.iter().any(|u| u.tag_value() == m)
        {
            problems.push(format!(
                "{} {m} is not an FFD unit (tag 2108)",
                at("measure")
            ));
        }
        item_totals = match (item_totals, total) {
            (Some(sum), Some(t)) => sum.checked_add(t),
            _ => None,
        };
    }
    let total = money("total", &body.total, &mut problems);
    if let (Some(total), Some(sum)) = (total, item_totals) {
        if total != sum {
            problems.push(format!(
                "total {total} is not the sum of the item totals = {sum}"
            ));
        }
    }
    let mut paid = Some(Money::ZERO);
    let mut non_cash = Some(Money::ZERO);
    for (kind, amount) in &body.payments {
        let at = format!("payments.{kind}");
        let known = code(
            &at,
            kind,
            PaymentKind::ALL,
            wire::payment_code,
            &mut problems,
        );
        let amount = money(&at, amount, &mut problems);
        paid = paid.zip(amount).and_then(|(p, a)| p.checked_add(a));
        non_cash = match known {
            Some(PaymentKind::Cash) => non_cash,
            _ => non_cash.zip(amount).and_then(|(p, a)| p.checked_add(a)),
        };
    }
    if let (Some(total), Some(paid), Some(non_cash)) = (total, paid, non_cash) {
        if paid < total {
            problems.push(format!("payments {paid} are less than the total {total}"));
        }
        if non_cash > total {
            problems.push(format!(
                "non-cash payments {non_cash} exceed the total {total}; only cash may exceed it (change)"
            ));
        }
    }
    match total {
        Some(total) if problems.is_empty() => Ok(total),
        _ => Err(problems),
    }
}

/// Looks `value` up in a wire code table; records the problem when unknown.
fn code<T: Copy>(
    path: &str,
    value: &str,
    all: &[T],
    code_of: fn(T) -> &'static str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let found = all.iter().copied().find(|v| code_of(*v) == value);
    if found.is_none() {
        let known: Vec<&str> = all.iter().map(|v| code_of(*v)).collect();
        problems.push(format!(
            "{path} {value:?} is not one of {}",
            known.join(", ")
        ));
    }
    found
}

fn money(path: &str, n: &Number, problems: &mut Vec<String>) -> Option<Money> {
    match Money::parse(&n.to_string()) {
        Err(e) => problems.push(format!("{path} {n} {e}")),
        Ok(m) if m.0 < 0 => problems.push(format!("{path} {n} must not be negative")),
        Ok(m) if m.0 > MAX_MONEY_MINOR => problems.push(format!(
            "{path} {n} is larger than {}",
            Money(MAX_MONEY_MINOR)
        )),
        Ok(m) => return Some(m),
    }
    None
}

fn quantity(path: &str, n: &Number, problems: &mut Vec<String>) -> Option<Quantity> {
    match Quantity::parse(&n.to_string()) {
        Err(e) => problems.push(format!("{path} {n} {e}")),
        Ok(q) if q.0 <= 0 => problems.push(format!("{path} {n} must be greater than zero")),
        Ok(q) if q.0 > MAX_QUANTITY_MILLI => problems.push(format!(
            "{path} {n} is larger than {}",
            Quantity(MAX_QUANTITY_MILLI)
        )),
        Ok(q) => return Some(q),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 11, 5, 0).unwrap()
    }

    fn model() -> CloudModel {
        CloudModel::new(&SimConfig::default())
    }

    fn body(json: &str) -> ReceiptBody {
        serde_json::from_str(json).unwrap()
    }

    const SEED_RECEIPT: &str = r#"{"type":"SALE","taxSystem":"COMMON","cashier":{"name":"Иванов И.И."},
        "client":{"address":"7ХХХХХХХХХХ"},"items":[{"calculationMethod":"FULL_PAY",
        "paymentSubject":"SERVICE","name":"Услуга","price":100,"quantity":1,"vat":"VAT_20",
        "total":100}],"total":100,"payments":{"CASH":100}}"#;

    fn sale(
        items: &[(&str, &str, &str, &str)],
        total: &str,
        payments: &[(&str, &str)],
    ) -> ReceiptBody {
        let items: Vec<String> = items
            .iter()
            .map(|(name, price, qty, total)| {
                format!(
                    r#"{{"calculationMethod":"FULL_PAY","paymentSubject":"COMMODITY","name":{name:?},
                       "price":{price},"quantity":{qty},"vat":"VAT_22","total":{total}}}"#
                )
            })
            .collect();
        let payments: Vec<String> = payments.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        body(&format!(
            r#"{{"type":"SALE","taxSystem":"COMMON","items":[{}],"total":{total},"payments":{{{}}}}}"#,
            items.join(","),
            payments.join(",")
        ))
    }

    fn problems(b: &ReceiptBody) -> Vec<String> {
        validate_receipt(b).expect_err("invalid")
    }

    #[test]
    fn the_seed_receipt_is_valid() {
        assert_eq!(validate_receipt(&body(SEED_RECEIPT)), Ok(Money(10000)));
        let b = sale(
            &[
                ("Хлеб", "0.33", "1.5", "0.50"),
                ("Молоко", "89.90", "2", "179.80"),
            ],
            "180.30",
            &[("CASH", "200"), ("ELECTRONIC", "0")],
        );
        assert_eq!(validate_receipt(&b), Ok(Money(18030)));
    }

    #[test]
    fn line_and_receipt_totals_are_checked_with_the_money_module() {
        let b = sale(
            &[("a", "1.00", "1", "1.00"), ("b", "4.99", "1", "5.00")],
            "6.00",
            &[("CASH", "6.00")],
        );
        assert_eq!(
            problems(&b),
            vec!["items[1].total 5.00 is not price × quantity = 4.99".to_string()]
        );
        let b = sale(&[("a", "1.00", "1", "1.00")], "2.00", &[("CASH", "2.00")]);
        assert_eq!(
            problems(&b),
            vec!["total 2.00 is not the sum of the item totals = 1.00".to_string()]
        );
    }

    #[test]
    fn payments_must_cover_the_total_and_only_cash_may_exceed_it() {
        let b = sale(&[("a", "10", "1", "10")], "10", &[("CASH", "5")]);
        assert_eq!(
            problems(&b),
            vec!["payments 5.00 are less than the total 10.00".to_string()]
        );
        let b = sale(&[("a", "10", "1", "10")], "10", &[("ELECTRONIC", "11")]);
        assert!(
            problems(&b)[0].starts_with("non-cash payments 11.00 exceed the total 10.00"),
            "{:?}",
            problems(&b)
        );
        let b = sale(&[("a", "10", "1", "10")], "10", &[]);
        assert_eq!(
            problems(&b),
            vec!["payments 0.00 are less than the total 10.00".to_string()]
        );
        assert!(
            validate_receipt(&sale(&[("a", "10", "1", "10")], "10", &[("CASH", "5000")])).is_ok()
        );
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let b = body(
            r#"{"type":"SELL","taxSystem":"OSN","items":[{"calculationMethod":"FULL","paymentSubject":"THING",
               "name":"","price":-1,"quantity":0,"vat":"VAT_12","total":1.001}],"total":1,"payments":{"CARD":1e2}}"#,
        );
        let p = problems(&b);
        let expected = [
            r#"type "SELL" is not one of SALE, SALE_RETURN, PURCHASE, PURCHASE_RETURN"#,
            r#"taxSystem "OSN" is not one of COMMON,"#,
            r#"items[0].calculationMethod "FULL" is not one of FULL_PREPAY,"#,
            r#"items[0].paymentSubject "THING" is not one of COMMODITY,"#,
            r#"items[0].vat "VAT_12" is not one of NO_VAT,"#,
            "items[0].name must not be empty",
            "items[0].price -1 must not be negative",
            "items[0].quantity 0 must be greater than zero",
            "items[0].total 1.001 has more than 2 digits after the decimal point",
            r#"payments.CARD "CARD" is not one of CASH, ELECTRONIC, PREPAID, POSTPAID, OTHER"#,
            "payments.CARD 1e+2 must be a plain decimal number such as 150.00",
        ];
        for e in expected {
            assert!(
                p.iter().any(|m| m.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
    }

    #[test]
    fn names_quantities_and_sizes_have_limits() {
        let long = "я".repeat(129);
        let b = sale(&[(&long, "1", "1", "1")], "1", &[("CASH", "1")]);
        assert_eq!(
            problems(&b),
            vec!["items[0].name is 129 characters long; at most 128 are allowed".to_string()]
        );
        assert!(
            validate_receipt(&sale(
                &[(&"я".repeat(128), "1", "1", "1")],
                "1",
                &[("CASH", "1")]
            ))
            .is_ok()
        );
        let b = sale(&[("a", "1", "0.0001", "0")], "0", &[]);
        assert_eq!(
            problems(&b),
            vec![
                "items[0].quantity 0.0001 has more than 3 digits after the decimal point"
                    .to_string()
            ]
        );
        let b = sale(
            &[("a", "1000000000", "1", "1000000000")],
            "1000000000",
            &[("CASH", "1000000000")],
        );
        assert!(
            problems(&b)[0].starts_with("items[0].price 1000000000 is larger than 999999999.99")
        );
        let b = body(r#"{"type":"SALE","taxSystem":"COMMON","items":[],"total":0,"payments":{}}"#);
        assert_eq!(
            problems(&b),
            vec!["items must hold at least one item".to_string()]
        );
    }

    #[test]
    fn login_refresh_and_bearer_follow_their_lifetimes() {
        let mut m = model();
        assert!(matches!(
            m.login("wrong", t0()),
            Err(CloudError::Unauthorized {
                error: "invalid_grant",
                ..
            })
        ));
        let pair = m.login("demo-connector-token", t0()).unwrap();
        assert_eq!(pair.token_type, "bearer");
        assert_eq!(pair.expires_in, 3599);
        assert_eq!(pair.scope.as_deref(), Some("read write"));
        assert_eq!(pair.connector_id, Some(serde_json::json!(1)));
        assert!(pair.jti.is_some());
        assert_eq!(pair.access_token.len(), TOKEN_LEN);
        assert_ne!(pair.access_token, pair.refresh_token);

        assert_eq!(m.authorize(Some(&pair.access_token), t0()), Ok(()));
        assert_eq!(
            m.authorize(Some(&pair.access_token), t0() + TimeDelta::seconds(3598)),
            Ok(())
        );
        let expired = m.authorize(Some(&pair.access_token), t0() + TimeDelta::seconds(3599));
        assert!(expired.unwrap_err().to_string().contains("expired"));
        assert!(m.authorize(Some("nonsense"), t0()).is_err());
        assert_eq!(m.authorize(None, t0()).unwrap_err().code(), "unauthorized");

        let later = t0() + TimeDelta::hours(2);
        let renewed = m.refresh(&pair.refresh_token, later).unwrap();
        assert_eq!(m.authorize(Some(&renewed.access_token), later), Ok(()));
        // A refresh token is good for one use only.
        assert!(m.refresh(&pair.refresh_token, later).is_err());
        // And for 30 days.
        assert!(
            m.refresh(&renewed.refresh_token, later + TimeDelta::days(30))
                .is_err()
        );

        m.set_token_lifetime_s(10);
        let short = m.login("demo-connector-token", later).unwrap();
        assert_eq!(short.expires_in, 10);
        assert!(
            m.authorize(Some(&short.access_token), later + TimeDelta::seconds(10))
                .is_err()
        );

        let c = m.counters();
        assert_eq!((c.logins, c.refreshes, c.unauthorized), (2, 1, 7));
    }

    #[test]
    fn a_key_names_one_document_forever() {
        let mut m = model();
        let b = body(SEED_RECEIPT);
        let first = m.register("k1", &b, t0()).unwrap();
        assert_eq!(
            first,
            Registration {
                id: 254_934,
                repeat: false
            }
        );
        let again = m.register("k1", &b, t0() + TimeDelta::hours(1)).unwrap();
        assert_eq!(
            again,
            Registration {
                id: 254_934,
                repeat: true
            }
        );

        let mut other = b.clone();
        other.cashier = None;
        let conflict = m.register("k1", &other, t0()).unwrap_err();
        assert_eq!(conflict.code(), "conflict");
        assert!(conflict.to_string().contains("254934"), "{conflict}");
        // Same values, other spelling (100 vs 100.00): not the same body.
        let respelled = body(&SEED_RECEIPT.replace(
            r#""total":100}],"total":100"#,
            r#""total":100.00}],"total":100"#,
        ));
        assert_eq!(
            m.register("k1", &respelled, t0()).unwrap_err().code(),
            "conflict"
        );

        let second = m.register("k2", &other, t0()).unwrap();
        assert_eq!(second.id, 254_935);
        let c = m.counters();
        assert_eq!((c.documents, c.duplicates, c.conflicts), (2, 1, 2));
        assert_eq!(m.document_count(), 2);
    }

    #[test]
    fn refused_receipts_leave_no_document_and_free_their_key() {
        let mut m = model();
        let bad = sale(&[("a", "1", "1", "2")], "2", &[("CASH", "2")]);
        let e = m.register("k", &bad, t0()).unwrap_err();
        assert_eq!(e.code(), "validation");
        assert_eq!(
            e.to_string(),
            "items[0].total 2.00 is not price × quantity = 1.00"
        );
        let good = sale(&[("a", "1", "1", "1")], "1", &[("CASH", "1")]);
        assert!(!m.register("k", &good, t0()).unwrap().repeat);
        assert_eq!(m.counters().rejected, 1);
        assert_eq!(m.counters().documents, 1);
    }

    #[test]
    fn the_reject_marker_refuses_a_valid_receipt() {
        let mut m = CloudModel::new(&SimConfig {
            reject_marker: Some("[REJECT]".into()),
            ..SimConfig::default()
        });
        let b = sale(
            &[("ok", "1", "1", "1"), ("Товар [REJECT]", "1", "1", "1")],
            "2",
            &[("CASH", "2")],
        );
        let e = m.register("k", &b, t0()).unwrap_err();
        assert_eq!(e.code(), "rejected");
        assert!(
            e.to_string()
                .starts_with("items[1].name \"Товар [REJECT]\""),
            "{e}"
        );
        m.set_reject_marker(Some(String::new()));
        assert!(m.register("k", &b, t0()).is_ok());
    }

    #[test]
    fn documents_carry_sequential_fiscal_attributes_in_local_time() {
        let mut m = model();
        let a = m.register("a", &body(SEED_RECEIPT), t0()).unwrap();
        let b = m
            .register(
                "b",
                &sale(&[("x", "1", "1", "1")], "1", &[("CASH", "1")]),
                t0(),
            )
            .unwrap();
        let da = m.document(a.id, t0()).unwrap();
        let db = m.document(b.id, t0()).unwrap();
        assert_eq!(da.status, wire::STATUS_FISCALIZED);
        let fa = da.fiscal_attributes.unwrap();
        let fb = db.fiscal_attributes.unwrap();
        assert_eq!(
            (fa.fiscal_document_number, fb.fiscal_document_number),
            (1, 2)
        );
        assert_eq!(
            (fa.receipt_number_in_shift, fb.receipt_number_in_shift),
            (1, 2)
        );
        assert_eq!(fa.fiscal_drive_number, "9999078900004312");
        assert_eq!(fa.kkt_reg_id, "0000000001012345");
        assert_eq!(fa.shift_number, 1);
        // 11:05 UTC is 14:05 in Moscow.
        assert_eq!(fa.date_time, "2026-11-23T14:05:00");
        assert_eq!(fa.fiscal_sign.len(), 10);
        assert!(fa.fiscal_sign.bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(
            fa.fiscal_sign,
            fiscal_sign("9999078900004312", 1, Money(10000), "2026-11-23T14:05:00")
        );
        assert_ne!(fa.fiscal_sign, fb.fiscal_sign);
        assert_eq!(
            fa.ofd_receipt_url.as_deref(),
            Some(
                format!(
                    "https://check.ofd.example/rec?fn=9999078900004312&i=1&fp={}",
                    fa.fiscal_sign
                )
                .as_str()
            )
        );
        // The attributes read back through the client's own mapping.
        assert!(wire::fiscal_attributes(&fa).is_ok());
        // The receipt is echoed exactly as sent (decimals keep their text).
        let echoed = serde_json::to_string(&da.receipt.unwrap()).unwrap();
        assert!(echoed.contains(r#""price":100,"quantity":1"#), "{echoed}");
        assert!(m.document(1, t0()).is_none());
        assert!(m.document(b.id + 1, t0()).is_none());
        assert_eq!(m.counters().document_reads, 4);
    }

    #[test]
    fn a_document_is_processing_until_the_delay_has_passed() {
        let mut m = model();
        m.set_processing_delay_ms(1500);
        let r = m.register("k", &body(SEED_RECEIPT), t0()).unwrap();
        let early = m
            .document(r.id, t0() + TimeDelta::milliseconds(1499))
            .unwrap();
        assert_eq!(early.status, wire::STATUS_PROCESSING);
        assert!(early.fiscal_attributes.is_none());
        assert!(early.receipt.is_some());
        let done = m.by_key("k", t0() + TimeDelta::milliseconds(1500)).unwrap();
        assert_eq!(done.status, wire::STATUS_FISCALIZED);
        assert_eq!(
            done.fiscal_attributes.unwrap().date_time,
            "2026-11-23T14:05:01"
        );
        assert!(m.by_key("unknown", t0()).is_none());
    }

    #[test]
    fn errors_render_as_the_wire_error_body() {
        let e = CloudError::Invalid("total 1.00 is wrong".into());
        let json = serde_json::to_string(&e.body()).unwrap();
        assert_eq!(
            json,
            r#"{"error":"validation","message":"total 1.00 is wrong"}"#
        );
        assert_eq!(wire::ErrorBody::describe(&json), "total 1.00 is wrong");
    }
}
