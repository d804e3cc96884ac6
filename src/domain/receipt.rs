//! The one internal receipt model every dialect parses into.
//!
//! A [`Draft`] is what a POS said (line and receipt totals optional); the
//! validator turns it into a [`Receipt`] whose every total is present and checked.
//! The serde form of these types is the journal's storage form (integers in minor
//! units and thousandths); API replies render it through `domain::money`.

use super::money::{Money, Quantity};
use chrono::NaiveDate;
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
    /// Fiscal tag 1212: what is being sold. The full list of FFD 1.2
    /// (values 1–27 and 30–33, see [`PaymentSubject::tag_value`]).
    PaymentSubject {
        Commodity = "commodity",
        Excise = "excise",
        Job = "job",
        Service = "service",
        GamblingBet = "gambling_bet",
        GamblingPrize = "gambling_prize",
        Lottery = "lottery",
        LotteryPrize = "lottery_prize",
        IntellectualActivity = "intellectual_activity",
        Payment = "payment",
        AgentCommission = "agent_commission",
        PayOut = "pay_out",
        Another = "another",
        PropertyRight = "property_right",
        NonOperatingGain = "non_operating_gain",
        OtherContributions = "other_contributions",
        TradeFee = "trade_fee",
        ResortFee = "resort_fee",
        Pledge = "pledge",
        Expense = "expense",
        PensionInsuranceIp = "pension_insurance_ip",
        PensionInsurance = "pension_insurance",
        MedicalInsuranceIp = "medical_insurance_ip",
        MedicalInsurance = "medical_insurance",
        SocialInsurance = "social_insurance",
        CasinoPayment = "casino_payment",
        CashIssue = "cash_issue",
        ExciseUnmarked = "excise_unmarked",
        ExciseMarked = "excise_marked",
        CommodityUnmarked = "commodity_unmarked",
        CommodityMarked = "commodity_marked",
    }
);

impl PaymentSubject {
    /// The value of tag 1212: FFD 1.2 table "Значения реквизита «признак
    /// предмета расчета» (тег 1212)" — 1 товар … 27 выдача денежных средств,
    /// 30 АТНМ, 31 АТМ, 32 ТНМ, 33 ТМ (30–33 for goods subject to marking;
    /// see also shared/spec/shtrih-m-ffd12.md §1.2). The variants above are in
    /// table order, so the value follows from the position.
    pub fn tag_value(self) -> u8 {
        let i = Self::ALL
            .iter()
            .position(|&s| s == self)
            .expect("a variant is in ALL") as u8;
        if i < 27 { i + 1 } else { i + 3 }
    }
}

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

impl CalculationMethod {
    /// The value of tag 1214 (FFD table: 1 предоплата 100 % … 7 оплата
    /// кредита; `shared/spec/shtrih-m-ffd12.md` §1.2, J `TLVTags.addList1214`).
    pub fn tag_value(self) -> u8 {
        match self {
            CalculationMethod::FullPrepay => 1,
            CalculationMethod::PartialPrepay => 2,
            CalculationMethod::Advance => 3,
            CalculationMethod::FullPay => 4,
            CalculationMethod::PartialPayAndCredit => 5,
            CalculationMethod::CreditTransfer => 6,
            CalculationMethod::CreditPayment => 7,
        }
    }

    /// A prepayment or an advance: the goods are not handed over yet, so the
    /// line takes a calculated VAT rate (NK RF art. 164 p. 4).
    pub fn is_prepayment(self) -> bool {
        matches!(
            self,
            CalculationMethod::FullPrepay
                | CalculationMethod::PartialPrepay
                | CalculationMethod::Advance
        )
    }
}

impl Vat {
    /// A calculated rate (`22/122` and friends), used for prepayments.
    pub fn is_calculated(self) -> bool {
        matches!(
            self,
            Vat::Vat105 | Vat::Vat107 | Vat::Vat110 | Vat::Vat120 | Vat::Vat122
        )
    }
}

code_enum!(
    /// Fiscal tag 2108: the unit the quantity is measured in.
    Unit {
        Piece = "piece",
        Gram = "g",
        Kilogram = "kg",
        Ton = "t",
        Centimeter = "cm",
        Decimeter = "dm",
        Meter = "m",
        SquareCentimeter = "cm2",
        SquareDecimeter = "dm2",
        SquareMeter = "m2",
        Milliliter = "ml",
        Liter = "l",
        CubicMeter = "m3",
        KilowattHour = "kwh",
        Gigacalorie = "gcal",
        Day = "day",
        Hour = "hour",
        Minute = "min",
        Second = "s",
        Kilobyte = "kb",
        Megabyte = "mb",
        Gigabyte = "gb",
        Terabyte = "tb",
        Other = "other",
    }
);

// `code_enum!` takes no variant attributes, so `#[default]` cannot be derived.
#[allow(clippy::derivable_impls)]
impl Default for Unit {
    fn default() -> Unit {
        Unit::Piece
    }
}

impl Unit {
    /// The value of tag 2108 (FFD 1.2 table "мера количества"; J
    /// `TLVTags.addList2108`, `shared/spec/shtrih-m-ffd12.md` §3.4).
    pub fn tag_value(self) -> u8 {
        match self {
            Unit::Piece => 0,
            Unit::Gram => 10,
            Unit::Kilogram => 11,
            Unit::Ton => 12,
            Unit::Centimeter => 20,
            Unit::Decimeter => 21,
            Unit::Meter => 22,
            Unit::SquareCentimeter => 30,
            Unit::SquareDecimeter => 31,
            Unit::SquareMeter => 32,
            Unit::Milliliter => 40,
            Unit::Liter => 41,
            Unit::CubicMeter => 42,
            Unit::KilowattHour => 50,
            Unit::Gigacalorie => 51,
            Unit::Day => 70,
            Unit::Hour => 71,
            Unit::Minute => 72,
            Unit::Second => 73,
            Unit::Kilobyte => 80,
            Unit::Megabyte => 81,
            Unit::Gigabyte => 82,
            Unit::Terabyte => 83,
            Unit::Other => 255,
        }
    }

    /// As printed after the quantity (FFD short names).
    pub fn short_name(self) -> &'static str {
        match self {
            Unit::Piece => "шт",
            Unit::Gram => "г",
            Unit::Kilogram => "кг",
            Unit::Ton => "т",
            Unit::Centimeter => "см",
            Unit::Decimeter => "дм",
            Unit::Meter => "м",
            Unit::SquareCentimeter => "кв.см",
            Unit::SquareDecimeter => "кв.дм",
            Unit::SquareMeter => "кв.м",
            Unit::Milliliter => "мл",
            Unit::Liter => "л",
            Unit::CubicMeter => "куб.м",
            Unit::KilowattHour => "кВт*ч",
            Unit::Gigacalorie => "Гкал",
            Unit::Day => "сутки",
            Unit::Hour => "час",
            Unit::Minute => "мин",
            Unit::Second => "с",
            Unit::Kilobyte => "Кбайт",
            Unit::Megabyte => "Мбайт",
            Unit::Gigabyte => "Гбайт",
            Unit::Terabyte => "Тбайт",
            Unit::Other => "",
        }
    }
}

code_enum!(
    /// Fiscal tags 1057 (receipt) and 1222 (line): the kind of agent the
    /// seller acts as. One kind per line; the receipt's 1057 is the union.
    AgentKind {
        BankPayingAgent = "bank_paying_agent",
        BankPayingSubagent = "bank_paying_subagent",
        PayingAgent = "paying_agent",
        PayingSubagent = "paying_subagent",
        Attorney = "attorney",
        CommissionAgent = "commission_agent",
        Agent = "agent",
    }
);

impl AgentKind {
    /// The bit of tags 1057/1222: bit 0 банковский платёжный агент … bit 6
    /// агент (FFD table; J, `shared/spec/shtrih-m-ffd12.md` §3.4).
    pub fn bit(self) -> u8 {
        1 << Self::ALL
            .iter()
            .position(|&k| k == self)
            .expect("a variant is in ALL")
    }
}

/// The agent and the supplier of a line sold on someone else's behalf
/// (tags 1222, 1224 {1225, 1171}, 1226).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Tag 1222.
    pub kind: AgentKind,
    /// Tag 1225: the supplier's name.
    pub supplier_name: String,
    /// Tag 1226: the supplier's INN (10 or 12 digits).
    pub supplier_inn: String,
    /// Tag 1171: the supplier's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier_phone: Option<String>,
}

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
    /// Tag 2108 (journal rows from before it was kept read as pieces).
    #[serde(default, skip_serializing_if = "is_piece")]
    pub unit: Unit,
    /// The line's own discount, off price × quantity.
    #[serde(default, skip_serializing_if = "Money::is_zero")]
    pub discount: Money,
    /// Sold as an agent for a supplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
}

fn is_piece(u: &Unit) -> bool {
    *u == Unit::Piece
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
    /// What the buyer pays for the line: price × quantity minus the line's
    /// discount and its share of the receipt's discount (tag 1043).
    pub total: Money,
    /// This line's share of the receipt-level discount.
    #[serde(default, skip_serializing_if = "Money::is_zero")]
    pub receipt_discount: Money,
}

impl Item {
    /// Price × quantity before any discount.
    pub fn gross(&self) -> Money {
        Money(self.total.0 + self.line.discount.0 + self.receipt_discount.0)
    }

    /// Every discount on the line.
    pub fn discount(&self) -> Money {
        Money(self.line.discount.0 + self.receipt_discount.0)
    }
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

/// The buyer: where the electronic copy goes (fiscal tag 1008: email or
/// phone) and who they are (1227 name, 1228 INN).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
}

impl Buyer {
    /// Tag 1008: the email when given, else the phone.
    pub fn contact(&self) -> Option<&str> {
        self.email.as_deref().or(self.phone.as_deref())
    }
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
    /// The Uzbek extension (FiscalBox dialect); `None` elsewhere.
    pub uz: Option<super::uz::UzReceipt>,
    /// Present on a correction receipt (`POST /v1/corrections`).
    pub correction: Option<Correction>,
    /// A discount on the whole receipt, spread over the lines.
    pub discount: Option<Money>,
    /// On a return or a settlement: the date of the operation it refers to.
    pub original_date: Option<NaiveDate>,
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
    /// The Uzbek extension: absent (and left out of the fingerprint) on
    /// every other receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uz: Option<super::uz::UzReceipt>,
    /// The receipt-level discount (already in the lines' totals).
    #[serde(default, skip_serializing_if = "Money::is_zero")]
    pub discount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_date: Option<NaiveDate>,
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
    /// Tag 1057: every agent kind the lines are sold under; `None` when no
    /// line is an agent's.
    pub fn agent_kinds(&self) -> Option<u8> {
        let bits = self
            .items
            .iter()
            .filter_map(|i| i.line.agent.as_ref())
            .fold(0u8, |acc, a| acc | a.kind.bit());
        (bits != 0).then_some(bits)
    }

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
