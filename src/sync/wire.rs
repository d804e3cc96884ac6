//! The fiscal processing's wire format (BIFIT-style), in one place.
//!
//! Seed 001 shows the token exchange, the receipt body (with `SALE`, `COMMON`,
//! `FULL_PAY`, `SERVICE`, `VAT_20`, `CASH`), the `Idempotency-Key` header and
//! the offline link. Everything else here is **ASSUMED** (see
//! `shared/spec/bifit-processing.md`): the other code values, the document
//! reply and the error body. The client and the local simulator both use this
//! module, so correcting an assumption against the real service is a change
//! here only.

use crate::domain::fiscal::FiscalAttributes;
use crate::domain::{
    AgentKind, CalculationMethod, Money, PaymentKind, PaymentSubject, Quantity, Receipt,
    ReceiptKind, TaxSystem, Unit, Vat,
};
use serde::{Deserialize, Serialize};
use serde_json::Number;
use std::collections::BTreeMap;

/// `client_id` and `client_secret` of the connector login (seed 001).
pub const CLIENT_ID: &str = "processing-connector-token";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const REGISTER_PATH: &str = "/protected/documents/registration/receipts";

pub fn document_path(id: &str) -> String {
    format!("/protected/documents/{id}")
}

/// The token endpoint's reply (seed 001).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenReply {
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    pub refresh_token: String,
    /// Seconds.
    pub expires_in: u64,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub connector_id: Option<serde_json::Value>,
    #[serde(default)]
    pub jti: Option<String>,
}

/// The receipt as the processing takes it. Money and quantities are JSON
/// decimals written from their exact text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub tax_system: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<CashierBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientBody>,
    pub items: Vec<ItemBody>,
    pub total: Number,
    pub payments: BTreeMap<String, Number>,
    /// ASSUMED: tag 1057, the bit mask of the agent kinds of the lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_sign: Option<u8>,
    /// ASSUMED: the receipt-level discount (already spread into the items'
    /// totals; for the record and the printed form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Number>,
    /// ASSUMED: on a return or settlement, the original operation's date
    /// (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_date: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CashierBody {
    pub name: String,
    /// ASSUMED field name for the cashier's INN (tag 1203).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
}

/// The buyer: where the electronic receipt goes (tag 1008: email or phone,
/// seed 001) and, ASSUMED names, who they are (1227 `name`, 1228 `inn`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
}

/// ASSUMED: an agent line's agent kind (1222) and supplier (1224: 1225 name,
/// 1171 phones; 1226 INN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub supplier_name: String,
    pub supplier_inn: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplier_phones: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    pub calculation_method: String,
    pub payment_subject: String,
    pub name: String,
    pub price: Number,
    pub quantity: Number,
    pub vat: String,
    pub total: Number,
    /// ASSUMED: marking codes (tag 1162/2000) as a list of strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marking_codes: Vec<String>,
    /// ASSUMED: tag 2108, the FFD number of the unit (0 pieces, 11 kg, …);
    /// left out for pieces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<u8>,
    /// ASSUMED: every discount on the line (its own and its share of the
    /// receipt's); `total = price × quantity − discount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentBody>,
    /// ASSUMED: tag 1260 (the permissive-mode check's answer) as
    /// `sectoralItemProps`, in the FFD JSON names of its parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectoral_item_props: Vec<SectoralPropBody>,
}

/// ASSUMED: one tag 1260: 1262 `federalId`, 1263 `date`, 1264 `number`, 1265 `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectoralPropBody {
    pub federal_id: String,
    pub date: String,
    pub number: String,
    pub value: String,
}

/// ASSUMED document reply of `GET /protected/documents/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReply {
    pub id: u64,
    /// `PROCESSING`, `FISCALIZED` or `ERROR`.
    pub status: String,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub receipt: Option<serde_json::Value>,
    #[serde(default)]
    pub fiscal_attributes: Option<FiscalAttributesBody>,
}

pub const STATUS_PROCESSING: &str = "PROCESSING";
pub const STATUS_FISCALIZED: &str = "FISCALIZED";
pub const STATUS_ERROR: &str = "ERROR";

/// ASSUMED, with FFD JSON names (see `qr-and-fiscal-tags.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiscalAttributesBody {
    pub fiscal_document_number: u64,
    pub fiscal_sign: String,
    pub fiscal_drive_number: String,
    pub kkt_reg_id: String,
    pub shift_number: u64,
    pub receipt_number_in_shift: u64,
    /// `2026-11-23T14:05:00` (local time of the till).
    pub date_time: String,
    #[serde(default)]
    pub ofd_receipt_url: Option<String>,
}

/// ASSUMED error body of 400/401/409/422: `{"error": str, "message": str}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorBody {
    /// The most useful words in an error reply, whatever its shape.
    pub fn describe(body: &str) -> String {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(ErrorBody {
                message: Some(m), ..
            }) if !m.is_empty() => m,
            Ok(ErrorBody { error: Some(e), .. }) if !e.is_empty() => e,
            _ => body.chars().take(300).collect(),
        }
    }
}

pub fn kind_code(kind: ReceiptKind) -> &'static str {
    match kind {
        ReceiptKind::Sale => "SALE",
        ReceiptKind::SaleReturn => "SALE_RETURN",
        ReceiptKind::Purchase => "PURCHASE",
        ReceiptKind::PurchaseReturn => "PURCHASE_RETURN",
    }
}

pub fn tax_system_code(t: TaxSystem) -> &'static str {
    match t {
        TaxSystem::Common => "COMMON",
        TaxSystem::Simplified => "SIMPLIFIED",
        TaxSystem::SimplifiedWithExpense => "SIMPLIFIED_WITH_EXPENSE",
        TaxSystem::Envd => "ENVD",
        TaxSystem::CommonAgricultural => "COMMON_AGRICULTURAL",
        TaxSystem::Patent => "PATENT",
    }
}

pub fn calculation_method_code(m: CalculationMethod) -> &'static str {
    match m {
        CalculationMethod::FullPrepay => "FULL_PREPAY",
        CalculationMethod::PartialPrepay => "PARTIAL_PREPAY",
        CalculationMethod::Advance => "ADVANCE",
        CalculationMethod::FullPay => "FULL_PAY",
        CalculationMethod::PartialPayAndCredit => "PARTIAL_PAY_AND_CREDIT",
        CalculationMethod::CreditTransfer => "CREDIT_TRANSFER",
        CalculationMethod::CreditPayment => "CREDIT_PAYMENT",
    }
}

/// ASSUMED: tag 1212 values spelled as the seed's `SERVICE`: our code in
/// capitals (`COMMODITY_MARKED`, `AGENT_COMMISSION`, …).
pub fn payment_subject_code(s: PaymentSubject) -> &'static str {
    use PaymentSubject as P;
    match s {
        P::Commodity => "COMMODITY",
        P::Excise => "EXCISE",
        P::Job => "JOB",
        P::Service => "SERVICE",
        P::GamblingBet => "GAMBLING_BET",
        P::GamblingPrize => "GAMBLING_PRIZE",
        P::Lottery => "LOTTERY",
        P::LotteryPrize => "LOTTERY_PRIZE",
        P::IntellectualActivity => "INTELLECTUAL_ACTIVITY",
        P::Payment => "PAYMENT",
        P::AgentCommission => "AGENT_COMMISSION",
        P::PayOut => "PAY_OUT",
        P::Another => "ANOTHER",
        P::PropertyRight => "PROPERTY_RIGHT",
        P::NonOperatingGain => "NON_OPERATING_GAIN",
        P::OtherContributions => "OTHER_CONTRIBUTIONS",
        P::TradeFee => "TRADE_FEE",
        P::ResortFee => "RESORT_FEE",
        P::Pledge => "PLEDGE",
        P::Expense => "EXPENSE",
        P::PensionInsuranceIp => "PENSION_INSURANCE_IP",
        P::PensionInsurance => "PENSION_INSURANCE",
        P::MedicalInsuranceIp => "MEDICAL_INSURANCE_IP",
        P::MedicalInsurance => "MEDICAL_INSURANCE",
        P::SocialInsurance => "SOCIAL_INSURANCE",
        P::CasinoPayment => "CASINO_PAYMENT",
        P::CashIssue => "CASH_ISSUE",
        P::ExciseUnmarked => "EXCISE_UNMARKED",
        P::ExciseMarked => "EXCISE_MARKED",
        P::CommodityUnmarked => "COMMODITY_UNMARKED",
        P::CommodityMarked => "COMMODITY_MARKED",
    }
}

/// ASSUMED: tag 1222 (agent kind) in capitals, like the other codes.
pub fn agent_kind_code(k: AgentKind) -> &'static str {
    match k {
        AgentKind::BankPayingAgent => "BANK_PAYING_AGENT",
        AgentKind::BankPayingSubagent => "BANK_PAYING_SUBAGENT",
        AgentKind::PayingAgent => "PAYING_AGENT",
        AgentKind::PayingSubagent => "PAYING_SUBAGENT",
        AgentKind::Attorney => "ATTORNEY",
        AgentKind::CommissionAgent => "COMMISSION_AGENT",
        AgentKind::Agent => "AGENT",
    }
}

pub fn vat_code(v: Vat) -> &'static str {
    match v {
        Vat::None => "NO_VAT",
        Vat::Vat0 => "VAT_0",
        Vat::Vat5 => "VAT_5",
        Vat::Vat7 => "VAT_7",
        Vat::Vat10 => "VAT_10",
        Vat::Vat12 => "VAT_12",
        Vat::Vat20 => "VAT_20",
        Vat::Vat22 => "VAT_22",
        Vat::Vat105 => "VAT_105",
        Vat::Vat107 => "VAT_107",
        Vat::Vat110 => "VAT_110",
        Vat::Vat120 => "VAT_120",
        Vat::Vat122 => "VAT_122",
    }
}

pub fn payment_code(k: PaymentKind) -> &'static str {
    match k {
        PaymentKind::Cash => "CASH",
        PaymentKind::Electronic => "ELECTRONIC",
        PaymentKind::Prepaid => "PREPAID",
        PaymentKind::Credit => "POSTPAID",
        PaymentKind::Other => "OTHER",
    }
}

fn money(m: Money) -> Number {
    m.to_decimal()
        .parse()
        .expect("a formatted amount is a JSON number")
}

fn quantity(q: Quantity) -> Number {
    q.to_decimal()
        .parse()
        .expect("a formatted quantity is a JSON number")
}

/// Map a journaled receipt to the processing's body. Deterministic: the same
/// receipt always gives byte-identical JSON, so a retry is recognised as a repeat.
pub fn receipt_body(r: &Receipt) -> ReceiptBody {
    let mut payments = BTreeMap::new();
    for p in &r.payments {
        payments.insert(payment_code(p.kind).to_string(), money(p.amount));
    }
    ReceiptBody {
        kind: kind_code(r.kind).into(),
        tax_system: tax_system_code(r.tax_system).into(),
        cashier: r.cashier.as_ref().map(|c| CashierBody {
            name: c.name.clone(),
            inn: c.inn.clone(),
        }),
        client: r.buyer.as_ref().map(|b| ClientBody {
            address: b.contact().map(str::to_string),
            name: b.name.clone(),
            inn: b.inn.clone(),
        }),
        items: r
            .items
            .iter()
            .enumerate()
            .map(|(n, i)| ItemBody {
                calculation_method: calculation_method_code(i.line.calculation_method).into(),
                payment_subject: payment_subject_code(i.line.payment_subject).into(),
                name: i.line.name.clone(),
                price: money(i.line.price),
                quantity: quantity(i.line.quantity),
                vat: vat_code(i.line.vat).into(),
                total: money(i.total),
                marking_codes: i.line.marking.clone(),
                // One request checked all codes: one 1260 per item.
                sectoral_item_props: r
                    .marking_checks
                    .iter()
                    .filter(|c| c.item == n)
                    .find_map(|c| c.requisite.as_ref())
                    .map(|q| SectoralPropBody {
                        federal_id: q.foiv_id.clone(),
                        date: q.doc_date.clone(),
                        number: q.doc_number.clone(),
                        value: q.value.clone(),
                    })
                    .into_iter()
                    .collect(),
                measure: (i.line.unit != Unit::Piece).then(|| i.line.unit.tag_value()),
                discount: (!i.discount().is_zero()).then(|| money(i.discount())),
                agent: i.line.agent.as_ref().map(|a| AgentBody {
                    kind: agent_kind_code(a.kind).into(),
                    supplier_name: a.supplier_name.clone(),
                    supplier_inn: a.supplier_inn.clone(),
                    supplier_phones: a.supplier_phone.iter().cloned().collect(),
                }),
            })
            .collect(),
        total: money(r.total),
        payments,
        agent_sign: r.agent_kinds(),
        discount: (!r.discount.is_zero()).then(|| money(r.discount)),
        original_date: r.original_date.map(|d| d.to_string()),
    }
}

/// Read a JSON decimal as money (the simulator's side of [`receipt_body`]).
pub fn parse_money(n: &Number) -> Option<Money> {
    Money::parse(&n.to_string()).ok()
}

pub fn parse_quantity(n: &Number) -> Option<Quantity> {
    Quantity::parse(&n.to_string()).ok()
}

/// The fiscal attributes of a document reply, in domain form.
pub fn fiscal_attributes(body: &FiscalAttributesBody) -> Result<FiscalAttributes, String> {
    let date_time = chrono::NaiveDateTime::parse_from_str(&body.date_time, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&body.date_time, "%Y-%m-%dT%H:%M"))
        .map_err(|e| format!("dateTime {:?}: {e}", body.date_time))?;
    Ok(FiscalAttributes {
        fiscal_document_number: body.fiscal_document_number,
        fiscal_sign: body.fiscal_sign.clone(),
        fiscal_drive_number: body.fiscal_drive_number.clone(),
        kkt_reg_id: body.kkt_reg_id.clone(),
        shift_number: body.shift_number,
        receipt_number_in_shift: body.receipt_number_in_shift,
        date_time,
        ofd_receipt_url: body.ofd_receipt_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;

    #[test]
    fn seed_example_maps_exactly() {
        let line = Line {
            name: "Услуга".into(),
            quantity: Quantity(1000),
            price: Money(10000),
            vat: Vat::Vat20,
            payment_subject: PaymentSubject::Service,
            calculation_method: CalculationMethod::FullPay,
            barcode: None,
            class_code: None,
            package_code: None,
            marking: vec![],
            unit: Default::default(),
            discount: Default::default(),
            agent: None,
        };
        let r = Receipt {
            correction: None,
            marking_checks: vec![],
            discount: Default::default(),
            original_date: None,
            kind: ReceiptKind::Sale,
            tax_system: TaxSystem::Common,
            currency: "RUB".into(),
            items: vec![Item {
                receipt_discount: Default::default(),
                line,
                total: Money(10000),
            }],
            payments: vec![Payment {
                kind: PaymentKind::Cash,
                amount: Money(10000),
            }],
            total: Money(10000),
            change: Money::ZERO,
            cashier: Some(Cashier {
                name: "Иванов И.И.".into(),
                inn: None,
            }),
            buyer: Some(Buyer {
                inn: None,
                name: None,
                email: None,
                phone: Some("+79001234567".into()),
            }),
            uz: None,
        };
        let json = serde_json::to_string(&receipt_body(&r)).unwrap();
        assert_eq!(
            json,
            r#"{"type":"SALE","taxSystem":"COMMON","cashier":{"name":"Иванов И.И."},"client":{"address":"+79001234567"},"items":[{"calculationMethod":"FULL_PAY","paymentSubject":"SERVICE","name":"Услуга","price":100.00,"quantity":1.000,"vat":"VAT_20","total":100.00}],"total":100.00,"payments":{"CASH":100.00}}"#
        );
        let back: ReceiptBody = serde_json::from_str(&json).unwrap();
        assert_eq!(parse_money(&back.total), Some(Money(10000)));
        assert_eq!(
            parse_quantity(&back.items[0].quantity),
            Some(Quantity(1000))
        );
    }

    #[test]
    fn error_bodies_are_described_whatever_their_shape() {
        assert_eq!(
            ErrorBody::describe(r#"{"error":"bad","message":"total mismatch"}"#),
            "total mismatch"
        );
        assert_eq!(
            ErrorBody::describe(r#"{"error":"invalid_grant"}"#),
            "invalid_grant"
        );
        assert_eq!(ErrorBody::describe("Bad Gateway"), "Bad Gateway");
    }
}
