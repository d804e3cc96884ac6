//! The one internal receipt model every dialect parses into.
//!
//! A [`Draft`] is what a POS said (line and receipt totals optional); the
//! validator turns it into a [`Receipt`] whose every total is present and checked.
//! The serde form of these types is the journal's storage form (integers in minor
//! units and thousandths); API replies render it through `domain::money`.

use super::money::{Money, Quantity};
use serde::{Deserialize, Serialize};

/// Declares a closed set of codes, each with its wire spelling in the native
/// API and the journal. Parsing and printing go through the same table.
macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<$name> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, for error messages.
            pub fn codes() -> String {
                Self::ALL.iter().map(|v| v.code()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum!(
    /// Fiscal tag 1054: the kind of settlement.
    ReceiptKind {
        Sale = "sale",
        SaleReturn = "sale_return",
        Purchase = "purchase",
        PurchaseReturn = "purchase_return",
    }
);

code_enum!(
    /// Fiscal tag 1055: the taxation system the receipt is issued under.
    TaxSystem {
        Common = "common",
        Simplified = "simplified",
        SimplifiedWithExpense = "simplified_with_expense",
        Envd = "envd",
        CommonAgricultural = "common_agricultural",
        Patent = "patent",
    }
);

code_enum!(
    /// VAT of one line. `5/105` and friends are the calculated rates used for
    /// prepayments.
    Vat {
        None = "none",
        Vat0 = "0",
        Vat5 = "5",
        Vat7 = "7",
        Vat10 = "10",
        Vat12 = "12",
        Vat20 = "20",
        Vat22 = "22",
        Vat105 = "5/105",
        Vat107 = "7/107",
        Vat110 = "10/110",
        Vat120 = "20/120",
        Vat122 = "22/122",
    }
);

code_enum!(
    /// Fiscal tag 1212: what is being sold.
    PaymentSubject {
        Commodity = "commodity",
        Excise = "excise",
        Job = "job",
        Service = "service",
        Payment = "payment",
        AgentCommission = "agent_commission",
        Another = "another",
    }
);

code_enum!(
    /// Fiscal tag 1214: how the line is settled.
    CalculationMethod {
        FullPrepay = "full_prepay",
        PartialPrepay = "partial_prepay",
        Advance = "advance",
        FullPay = "full_pay",
        PartialPayAndCredit = "partial_pay_and_credit",
        CreditTransfer = "credit_transfer",
        CreditPayment = "credit_payment",
    }
);

code_enum!(
    /// How the buyer paid.
    PaymentKind {
        Cash = "cash",
        Electronic = "electronic",
        Prepaid = "prepaid",
        Credit = "credit",
        Other = "other",
    }
);

code_enum!(
    /// Where a receipt is on its way to being fiscalized. A receipt enters as
    /// `accepted` (journaled); the cloud sync moves it to `submitted`, then
    /// `fiscalized` or `rejected`; an operator may `discard` a rejected one.
    ReceiptState {
        Accepted = "accepted",
        Submitted = "submitted",
        Fiscalized = "fiscalized",
        Rejected = "rejected",
        Discarded = "discarded",
    }
);

code_enum!(
    /// The fiscal profile of a till: one per till.
    Country {
        Ru = "ru",
        Uz = "uz",
    }
);

impl Country {
    /// The VAT codes a receipt may carry in this country.
    pub fn allowed_vat(self) -> &'static [Vat] {
        match self {
            Country::Ru => &[
                Vat::None,
                Vat::Vat0,
                Vat::Vat5,
                Vat::Vat7,
                Vat::Vat10,
                Vat::Vat20,
                Vat::Vat22,
                Vat::Vat105,
                Vat::Vat107,
                Vat::Vat110,
                Vat::Vat120,
                Vat::Vat122,
            ],
            Country::Uz => &[Vat::None, Vat::Vat0, Vat::Vat12],
        }
    }

    /// ISO 4217 code of the money a till in this country takes.
    pub fn currency(self) -> &'static str {
        match self {
            Country::Ru => "RUB",
            Country::Uz => "UZS",
        }
    }
}

/// Which API a receipt came in through. Stored with the receipt; nothing after
/// parsing behaves differently because of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Native,
    Fiscalbox,
    Bitrix24,
    Gateway,
}

impl Source {
    pub fn code(self) -> &'static str {
        match self {
            Source::Native => "native",
            Source::Fiscalbox => "fiscalbox",
            Source::Bitrix24 => "bitrix24",
            Source::Gateway => "gateway",
        }
    }

    pub fn from_code(code: &str) -> Option<Source> {
        [
            Source::Native,
            Source::Fiscalbox,
            Source::Bitrix24,
            Source::Gateway,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// Everything about a line except its total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub name: String,
    pub quantity: Quantity,
    pub price: Money,
    pub vat: Vat,
    pub payment_subject: PaymentSubject,
    pub calculation_method: CalculationMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// Uzbek IKPU / MXIK class code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_code: Option<String>,
    /// Marking codes (Chestny ZNAK and the like), one per marked unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marking: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftItem {
    pub line: Line,
    pub total: Option<Money>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    #[serde(flatten)]
    pub line: Line,
    pub total: Money,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub kind: PaymentKind,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cashier {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
}

/// Where the electronic copy of the receipt goes (fiscal tag 1008).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A receipt as a dialect parsed it, before arithmetic and rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub kind: ReceiptKind,
    pub tax_system: Option<TaxSystem>,
    pub currency: Option<String>,
    pub items: Vec<DraftItem>,
    pub payments: Vec<Payment>,
    pub total: Option<Money>,
    pub cashier: Option<Cashier>,
    pub buyer: Option<Buyer>,
    /// Present on a correction receipt (`POST /v1/corrections`).
    pub correction: Option<Correction>,
}

/// A validated receipt: every total present and consistent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub kind: ReceiptKind,
    pub tax_system: TaxSystem,
    pub currency: String,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
    pub total: Money,
    /// Paid minus total; only ever given back in cash.
    pub change: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Buyer>,
    /// Present on a correction receipt: tags 1173/1174.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
    /// The permissive-mode answers for the marked items (tag 1260), filled in
    /// at acceptance from the marking service; not part of the fingerprint
    /// (a repeat asks the service again and gets another request id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marking_checks: Vec<MarkingCheck>,
}

code_enum!(
    /// Fiscal tag 1173: why a correction receipt is issued (0 on the
    /// business's own initiative, 1 by an order of the tax authority).
    /// Source: FFD 1.2 via shtrih-m/javapos_shtrih `PrinterConst` /
    /// FSPrintCorrectionReceipt2 (see /work/shared/spec/shtrih-m-ffd12.md §5).
    CorrectionKind {
        SelfInitiated = "self",
        ByOrder = "by_order",
    }
);

impl CorrectionKind {
    /// The value of tag 1173.
    pub fn tag_1173(self) -> u8 {
        match self {
            CorrectionKind::SelfInitiated => 0,
            CorrectionKind::ByOrder => 1,
        }
    }
}

/// What a correction receipt corrects: tag 1173 and the basis document of
/// tag 1174 (its date, tag 1178, and number, tag 1179).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub kind: CorrectionKind,
    /// Tag 1178: the date of the basis document (or of the uncorrected
    /// settlement on a self-initiated correction).
    pub basis_date: chrono::NaiveDate,
    /// Tag 1179: the number of the tax authority's order; may be empty on a
    /// self-initiated correction.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis_number: String,
}

/// Tag 1260 (отраслевой реквизит предмета расчёта) of one marked item: the
/// permissive-mode check's answer. Built by `marking::requisite`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndustryRequisite {
    /// Tag 1262: the federal body's id.
    pub foiv_id: String,
    /// Tag 1263: the date of the founding document, `DD.MM.YYYY`.
    pub doc_date: String,
    /// Tag 1264: the number of the founding document.
    pub doc_number: String,
    /// Tag 1265: the value (`UUID=<reqId>&Time=<reqTimestamp>`).
    pub value: String,
}

/// One marking code's check at acceptance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkingCheck {
    /// Index into `items`.
    pub item: usize,
    /// The code as scanned.
    pub code: String,
    /// The requisite to send with the item; `None` when no service answered
    /// (sold unchecked, as the published rules allow; see `marking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requisite: Option<IndustryRequisite>,
    /// Which service answered, or `unreachable`.
    pub checked_by: String,
}

impl Receipt {
    /// A stable fingerprint of the receipt's content: two requests that mean the
    /// same receipt (whatever their whitespace or key order) share it. Used to
    /// tell a caller's harmless repeat from a conflicting reuse of its key.
    pub fn fingerprint(&self) -> String {
        self.encoded().1
    }

    /// The canonical JSON of the receipt and its fingerprint (the SHA-256 of
    /// that JSON), computed together so the text is serialized once.
    pub fn encoded(&self) -> (String, String) {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_string(self).expect("a receipt always serializes");
        let fingerprint = if self.marking_checks.is_empty() {
            format!("{:x}", Sha256::digest(canonical.as_bytes()))
        } else {
            let mut bare = self.clone();
            bare.marking_checks.clear();
            let text = serde_json::to_string(&bare).expect("a receipt always serializes");
            format!("{:x}", Sha256::digest(text.as_bytes()))
        };
        (canonical, fingerprint)
    }
}
