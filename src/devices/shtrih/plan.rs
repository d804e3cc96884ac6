//! A receipt as the register's command sequence (FFD 1.2, extended
//! commands): open check (`8D`), the receipt's TLVs (`FF0C`), per line the
//! item (`FF46`) and its TLVs (`FF4D`), close with every payment type and the
//! tax system (`FF45`). The order is the vendor driver's
//! (`shared/spec/shtrih-m-ffd12.md` §3.3, §4.5). Pure; every way a receipt
//! may not fit the register is a [`PlanError`] before a byte is sent.

use super::assumed;
use super::command::{CheckMarking, CheckType, CloseV2, Command, ItemV2, MAX_U40};
use super::tlv::{self, MAX_TLV_BYTES, Tlv, tag};
use crate::domain::receipt::{
    Correction, IndustryRequisite, Item, Receipt, ReceiptKind, Unit, Vat,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "item {item} ({name:?}): VAT {vat} has no tax code on the register (rule: assumed::tax_code)"
    )]
    NoTaxCode { item: usize, name: String, vat: Vat },
    #[error(
        "item {item} ({name:?}): {what} is out of the register's range (rule: 0 < value <= 9999999999)"
    )]
    OutOfRange {
        item: usize,
        name: String,
        what: &'static str,
    },
    #[error(
        "item {item} ({name:?}): the discounted total {total} is not price × quantity within 1 kopeck for any whole-kopeck price (rule: FF46 amount ±1 kopeck); split the line"
    )]
    Discount {
        item: usize,
        name: String,
        total: i64,
    },
    #[error(
        "the register's total {register} differs from the receipt total {receipt} (rule: receipt total)"
    )]
    Total { register: i64, receipt: i64 },
    #[error(
        "payments {paid} are less than the total {total}, or non-cash payments {non_cash} exceed it (rule: payments)"
    )]
    Payments {
        paid: i64,
        total: i64,
        non_cash: i64,
    },
    #[error(
        "tag {tag} is {bytes} bytes; the register takes at most {MAX_TLV_BYTES} (rule: FF0C/FF4D size)"
    )]
    TlvTooLong { tag: u16, bytes: usize },
    #[error("a receipt needs at least one item (rule: items)")]
    Empty,
}

impl PlanError {
    /// The field of the receipt at fault, as a JSON pointer into the domain
    /// model, and a rule name: how the API refuses a receipt the register
    /// could not take, before journaling it.
    pub fn violation(&self) -> crate::domain::Violation {
        let (path, rule) = match self {
            PlanError::NoTaxCode { item, .. } => {
                (format!("/items/{item}/vat"), "register_tax_code")
            }
            PlanError::OutOfRange { item, what, .. } => {
                (format!("/items/{item}/{what}"), "register_range")
            }
            PlanError::Discount { item, .. } => {
                (format!("/items/{item}/discount"), "register_unit_price")
            }
            PlanError::Total { .. } => ("/total".to_string(), "register_total"),
            PlanError::Payments { .. } => ("/payments".to_string(), "register_payments"),
            PlanError::TlvTooLong { .. } => ("".to_string(), "register_tag_size"),
            PlanError::Empty => ("/items".to_string(), "min_items"),
        };
        crate::domain::Violation::new(path, rule, self.to_string())
    }
}

pub fn check_type(kind: ReceiptKind) -> CheckType {
    match kind {
        ReceiptKind::Sale => CheckType::Sale,
        ReceiptKind::SaleReturn => CheckType::ReturnSale,
        ReceiptKind::Purchase => CheckType::Purchase,
        ReceiptKind::PurchaseReturn => CheckType::ReturnPurchase,
    }
}

/// The sum the register books for a line: qty·price/1000, rounded half up.
pub fn register_line_sum(quantity_milli: u64, price: u64) -> i64 {
    i64::try_from((u128::from(quantity_milli) * u128::from(price) + 500) / 1000).unwrap_or(i64::MAX)
}

/// The receipt-level TLVs (`FF0C`), in the order they are sent: buyer
/// contact 1008, cashier 1021 and INN 1203, buyer name 1227 and INN 1228,
/// agent kinds 1057.
pub fn receipt_tags(r: &Receipt) -> Vec<Tlv> {
    let mut tags = Vec::new();
    if let Some(b) = &r.buyer {
        if let Some(contact) = b.contact() {
            tags.push(Tlv::string(tag::BUYER_CONTACT, contact));
        }
    }
    if let Some(c) = &r.cashier {
        if assumed::CASHIER_AS_TLV {
            tags.push(Tlv::string(tag::CASHIER, &c.name));
        }
        if let Some(inn) = &c.inn {
            tags.push(Tlv::fixed(tag::CASHIER_INN, inn, 12));
        }
    }
    if let Some(b) = &r.buyer {
        if let Some(name) = &b.name {
            tags.push(Tlv::string(tag::BUYER_NAME, name));
        }
        if let Some(inn) = &b.inn {
            tags.push(Tlv::fixed(tag::BUYER_INN, inn, 12));
        }
    }
    if let Some(bits) = r.agent_kinds() {
        tags.push(Tlv::byte(tag::AGENT_SIGN, bits));
    }
    tags
}

/// A line's TLVs (`FF4D`, after its `FF46`): unit 2108 unless pieces (the
/// register's default is 0 = pieces: vendor doc «Доработка драйвера под ФФД
/// 1_2», `shared/spec/shtrih-m-ffd12.md` §3.4 — one round trip saved per
/// line), agent kind 1222, supplier data 1224 {1225, 1171}, supplier INN
/// 1226. The marking-code flow (FF61/FF69/FF67) is added after these by
/// [`marking_commands`].
pub fn line_tags(item: &Item) -> Vec<Tlv> {
    let mut tags = Vec::new();
    if item.line.unit != Unit::Piece {
        tags.push(Tlv::byte(tag::UNIT, item.line.unit.tag_value()));
    }
    if let Some(a) = &item.line.agent {
        tags.push(Tlv::byte(tag::ITEM_AGENT_SIGN, a.kind.bit()));
        let mut supplier = vec![Tlv::string(tag::SUPPLIER_NAME, &a.supplier_name)];
        if let Some(phone) = &a.supplier_phone {
            supplier.push(Tlv::string(tag::SUPPLIER_PHONE, phone));
        }
        tags.push(Tlv::stlv(tag::SUPPLIER_DATA, &supplier));
        tags.push(Tlv::fixed(tag::SUPPLIER_INN, &a.supplier_inn, 12));
    }
    tags
}

/// Tags 1173 and 1174 {1178, 1179} of a correction (FF0C, one per top-level
/// tag; shtrih-m-ffd12.md §5: the application must send them).
pub fn correction_tags(c: &Correction) -> Vec<Tlv> {
    vec![
        Tlv::byte(1173, c.kind.tag_1173()),
        Tlv::stlv(
            1174,
            &[
                tlv::date(1178, c.basis_date),
                Tlv::string(1179, &c.basis_number),
            ],
        ),
    ]
}

/// Tag 1260 of an item (FF4D after the item).
pub fn industry_tags(r: &IndustryRequisite) -> Vec<Tlv> {
    let parts = vec![
        Tlv::string(1262, &r.foiv_id),
        Tlv::fixed(1263, &r.doc_date, 10),
        Tlv::string(1264, &r.doc_number),
        Tlv::string(1265, &r.value),
    ];
    if assumed::INDUSTRY_REQUISITE_AS_STLV {
        vec![Tlv::stlv(1260, &parts)]
    } else {
        parts
    }
}

/// Tag 2003 for FF61: a whole quantity is a piece, else a measured good;
/// returns bring the item back ([J] `checkItemCode`).
pub fn planned_status(kind: ReceiptKind, quantity_milli: i64) -> u8 {
    let piece = quantity_milli % 1000 == 0;
    let returned = matches!(kind, ReceiptKind::SaleReturn | ReceiptKind::PurchaseReturn);
    match (returned, piece) {
        (false, true) => 1,
        (false, false) => 2,
        (true, true) => 3,
        (true, false) => 4,
    }
}

/// Before a marked line's `FF46`: per code, the FN's check (`FF61`) and the
/// decision (`FF69` accept; the driver rejects and cancels instead when the
/// FN refuses the code). The vendor driver checks each code when the item is
/// entered, before the items go out (shtrih-m-ffd12.md §4.5).
pub fn check_commands(kind: ReceiptKind, item: &Item) -> Vec<Command> {
    item.line
        .marking
        .iter()
        .flat_map(|code| {
            [
                Command::CheckMarking(CheckMarking {
                    planned_status: planned_status(kind, item.line.quantity.milli()),
                    mode: 0,
                    code: code.as_bytes().to_vec(),
                    tlv: Vec::new(),
                }),
                Command::AcceptMarking(1),
            ]
        })
        .collect()
}

/// After a marked line's `FF4D`s: its tag 1260 (the permissive-mode answer,
/// one per line: one request checked all codes), then `FF67` per code — [D]:
/// "call FF67 after all tags are bound to the item".
pub fn marking_commands(r: &Receipt, i: usize, item: &Item) -> Result<Vec<Command>, PlanError> {
    let mut out = Vec::new();
    if let Some(req) = r
        .marking_checks
        .iter()
        .filter(|c| c.item == i)
        .find_map(|c| c.requisite.as_ref())
    {
        for t in industry_tags(req) {
            out.push(Command::WriteOperationTlv(checked_tlv(t)?));
        }
    }
    for code in &item.line.marking {
        out.push(Command::BindMarking(code.as_bytes().to_vec()));
    }
    Ok(out)
}

/// Price and amount for FF46. Without a discount: the price and the line
/// total. With one: FFD 1.2 wants the price after discounts (tag 1079), and
/// the register takes an amount only within ±1 kopeck of price × quantity,
/// so the price is the discounted total per unit, rounded half up.
fn price_and_amount(i: usize, item: &Item) -> Result<(u64, u64), PlanError> {
    let name = || item.line.name.clone();
    let range = |v: i64, what| {
        u64::try_from(v)
            .ok()
            .filter(|&v| v <= MAX_U40)
            .ok_or_else(|| PlanError::OutOfRange {
                item: i,
                name: name(),
                what,
            })
    };
    let total = range(item.total.minor(), "total")?;
    let qty = u64::try_from(item.line.quantity.milli()).unwrap_or(0);
    if item.discount().is_zero() {
        return Ok((range(item.line.price.minor(), "price")?, total));
    }
    let price = ((u128::from(total) * 1000 + u128::from(qty) / 2) / u128::from(qty.max(1))) as u64;
    let booked = register_line_sum(qty, price);
    if (booked - item.total.minor()).abs() > 1 {
        return Err(PlanError::Discount {
            item: i,
            name: name(),
            total: item.total.minor(),
        });
    }
    Ok((range(price as i64, "price")?, total))
}

fn checked_tlv(t: Tlv) -> Result<Vec<u8>, PlanError> {
    let bytes = t.encode();
    if bytes.len() > MAX_TLV_BYTES {
        return Err(PlanError::TlvTooLong {
            tag: t.tag,
            bytes: bytes.len(),
        });
    }
    Ok(bytes)
}

/// The commands registering `r`: `8D`, `FF0C`…, per line `FF46` `FF4D`…,
/// `FF45`.
pub fn plan_receipt(r: &Receipt) -> Result<Vec<Command>, PlanError> {
    if r.items.is_empty() {
        return Err(PlanError::Empty);
    }
    let ct = check_type(r.kind);
    let mut commands = match &r.correction {
        None => vec![Command::OpenCheck(ct)],
        Some(c) => {
            let mut v = vec![Command::OpenCorrection(ct)];
            for t in correction_tags(c) {
                v.push(Command::WriteTlv(checked_tlv(t)?));
            }
            v
        }
    };
    for t in receipt_tags(r) {
        commands.push(Command::WriteTlv(checked_tlv(t)?));
    }
    let mut total: i64 = 0;
    for (i, item) in r.items.iter().enumerate() {
        let name = &item.line.name;
        let quantity = u64::try_from(item.line.quantity.milli())
            .ok()
            .filter(|&q| q > 0 && q <= MAX_U40)
            .ok_or_else(|| PlanError::OutOfRange {
                item: i,
                name: name.clone(),
                what: "quantity",
            })?;
        let tax_code = assumed::tax_code(item.line.vat).ok_or_else(|| PlanError::NoTaxCode {
            item: i,
            name: name.clone(),
            vat: item.line.vat,
        })?;
        let (price, amount) = price_and_amount(i, item)?;
        total = total.saturating_add(amount as i64);
        commands.extend(check_commands(r.kind, item));
        commands.push(Command::ItemV2(ItemV2 {
            operation: ct.operation(),
            quantity: quantity * 1000,
            price,
            amount,
            tax_amount: 0,
            tax_code,
            department: assumed::DEPARTMENT,
            calculation_method: item.line.calculation_method.tag_value(),
            payment_subject: item.line.payment_subject.tag_value(),
            name: name.clone(),
        }));
        for t in line_tags(item) {
            commands.push(Command::WriteOperationTlv(checked_tlv(t)?));
        }
        commands.extend(marking_commands(r, i, item)?);
    }
    if total != r.total.minor() {
        return Err(PlanError::Total {
            register: total,
            receipt: r.total.minor(),
        });
    }
    let mut fields = [0i64; 16];
    for p in &r.payments {
        let f = assumed::payment_field(p.kind);
        fields[f] = fields[f].saturating_add(p.amount.minor());
    }
    let paid: i64 = fields.iter().sum();
    let non_cash: i64 = fields[1..].iter().sum();
    if fields.iter().any(|&s| s < 0 || s as u64 > MAX_U40) || paid < total || non_cash > total {
        return Err(PlanError::Payments {
            paid,
            total,
            non_cash,
        });
    }
    commands.push(Command::CloseV2(CloseV2 {
        payments: fields.map(|s| s as u64),
        rounding: 0,
        // Tax mode 0: the register computes the tax sums itself (J's default).
        taxes: [0; 6],
        tax_system: assumed::tax_system_bit(r.tax_system),
        text: String::new(),
    }));
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::{Money, Quantity, line_total};
    use crate::domain::receipt::{
        CalculationMethod, Country, Item, Line, Payment, PaymentKind, PaymentSubject, TaxSystem,
    };
    use proptest::prelude::*;

    fn item(name: &str, qty: i64, price: i64, vat: Vat) -> Item {
        Item {
            receipt_discount: Default::default(),
            line: Line {
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
            },
            total: line_total(Money(price), Quantity(qty)).unwrap(),
        }
    }

    fn receipt(kind: ReceiptKind, items: Vec<Item>, payments: Vec<Payment>) -> Receipt {
        let total = Money(items.iter().map(|i| i.total.0).sum());
        let paid: i64 = payments.iter().map(|p| p.amount.0).sum();
        Receipt {
            discount: Default::default(),
            original_date: None,
            correction: None,
            marking_checks: vec![],
            kind,
            tax_system: TaxSystem::Common,
            currency: "RUB".into(),
            items,
            payments,
            total,
            change: Money(paid - total.0),
            cashier: None,
            buyer: None,
            uz: None,
        }
    }

    fn pay(kind: PaymentKind, amount: i64) -> Payment {
        Payment {
            kind,
            amount: Money(amount),
        }
    }

    #[test]
    fn a_return_with_mixed_payments_plans_exactly() {
        let long = "Молоко ультрапастеризованное 3,2% 1 литр, пакет";
        let mut r = receipt(
            ReceiptKind::SaleReturn,
            vec![
                item(long, 2000, 15000, Vat::Vat22),
                item("Хлеб", 1500, 4999, Vat::None),
            ],
            vec![
                pay(PaymentKind::Electronic, 10000),
                pay(PaymentKind::Cash, 40000),
            ],
        );
        r.items[1].line.unit = crate::domain::receipt::Unit::Kilogram;
        let plan = plan_receipt(&r).unwrap();
        let codes: Vec<u16> = plan.iter().map(Command::code).collect();
        assert_eq!(codes, [0x8D, 0xFF46, 0xFF46, 0xFF4D, 0xFF45]);
        assert_eq!(plan[0], Command::OpenCheck(CheckType::ReturnSale));
        let Command::ItemV2(op) = &plan[1] else {
            panic!("{:?}", plan[1])
        };
        assert_eq!(
            (op.operation, op.quantity, op.price, op.amount, op.tax_code),
            (2, 2_000_000, 15000, 30000, 0xCB)
        );
        assert_eq!((op.calculation_method, op.payment_subject), (4, 1));
        assert_eq!(op.name, long, "FF46 takes up to 128 bytes of name");
        let Command::ItemV2(op2) = &plan[2] else {
            panic!()
        };
        assert_eq!(op2.tax_code, 0x08);
        assert_eq!(
            plan[3],
            Command::WriteOperationTlv(vec![0x3C, 0x08, 1, 0, 11]),
            "2108 = 11 (kg); pieces are the register's default and not sent"
        );
        let Command::CloseV2(c) = &plan[4] else {
            panic!()
        };
        assert_eq!(&c.payments[..2], &[40000, 10000]);
        assert_eq!(c.tax_system, 0x01);
    }

    #[test]
    fn every_payment_kind_has_its_ff45_field() {
        let mut r = receipt(
            ReceiptKind::Sale,
            vec![item("Хлеб", 1000, 500, Vat::Vat22)],
            vec![
                pay(PaymentKind::Cash, 100),
                pay(PaymentKind::Electronic, 100),
                pay(PaymentKind::Prepaid, 100),
                pay(PaymentKind::Credit, 100),
                pay(PaymentKind::Other, 100),
            ],
        );
        r.items[0].line.calculation_method = CalculationMethod::PartialPayAndCredit;
        let plan = plan_receipt(&r).unwrap();
        let Some(Command::CloseV2(c)) = plan.last() else {
            panic!()
        };
        let mut want = [0u64; 16];
        for i in [0, 1, 13, 14, 15] {
            want[i] = 100;
        }
        assert_eq!(c.payments, want);
    }

    #[test]
    fn a_discounted_line_goes_at_its_discounted_unit_price() {
        let mut r = receipt(
            ReceiptKind::Sale,
            vec![item("Сыр", 3000, 10000, Vat::Vat10)],
            vec![pay(PaymentKind::Cash, 29000)],
        );
        r.items[0].line.discount = Money(1000);
        r.items[0].total = Money(29000);
        r.total = Money(29000);
        r.change = Money::ZERO;
        let plan = plan_receipt(&r).unwrap();
        let Command::ItemV2(op) = &plan[1] else {
            panic!()
        };
        assert_eq!((op.price, op.amount), (9667, 29000));
        assert!(op.amount.abs_diff(op.computed()) <= 1);
    }

    #[test]
    fn receipts_the_register_cannot_represent_are_refused_by_name() {
        let r = receipt(
            ReceiptKind::Sale,
            vec![
                item("Хлеб", 1000, 100, Vat::Vat22),
                item("Non", 1000, 100, Vat::Vat12),
            ],
            vec![pay(PaymentKind::Cash, 200)],
        );
        let e = plan_receipt(&r).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoTaxCode {
                item: 1,
                name: "Non".into(),
                vat: Vat::Vat12
            }
        );
        assert!(e.to_string().contains("12"), "{e}");

        let mut r = receipt(
            ReceiptKind::Sale,
            vec![item("Хлеб", 1000, 100, Vat::Vat22)],
            vec![pay(PaymentKind::Electronic, 150)],
        );
        assert!(matches!(plan_receipt(&r), Err(PlanError::Payments { .. })));
        r.items.clear();
        assert_eq!(plan_receipt(&r), Err(PlanError::Empty));
    }

    #[test]
    fn every_vat_rate_of_russia_has_a_distinct_tax_code() {
        let rates = Country::Ru.allowed_vat();
        let codes: std::collections::BTreeSet<u8> = rates
            .iter()
            .map(|&v| assumed::tax_code(v).unwrap())
            .collect();
        assert_eq!(codes.len(), rates.len());
        for &v in rates {
            assert_eq!(
                assumed::vat_of_tax_code(assumed::tax_code(v).unwrap()),
                Some(v)
            );
        }
    }

    proptest! {
        #[test]
        fn the_register_computes_the_receipt_total(
            lines in proptest::collection::vec((1i64..=9_999_999, 1i64..=100_000), 1..8),
            card_share in 0u8..=100,
        ) {
            let items: Vec<Item> = lines
                .iter()
                .map(|&(q, p)| item("x", q, p, Vat::Vat10))
                .collect();
            let total: i64 = items.iter().map(|i| i.total.0).sum();
            let card = total * i64::from(card_share) / 100;
            let r = receipt(
                ReceiptKind::Sale,
                items,
                vec![pay(PaymentKind::Electronic, card), pay(PaymentKind::Cash, total - card + 1000)],
            );
            let plan = plan_receipt(&r).unwrap();
            let mut booked = 0i64;
            let mut paid = 0u64;
            for c in &plan {
                match c {
                    Command::ItemV2(op) => {
                        booked += i64::try_from(op.sum()).unwrap();
                        prop_assert!(op.amount.abs_diff(op.computed()) <= 1);
                    }
                    Command::CloseV2(c) => paid = c.payments.iter().sum(),
                    _ => {}
                }
            }
            prop_assert_eq!(booked, r.total.0);
            prop_assert_eq!(paid as i64 - booked, r.change.0);
        }
    }
}
