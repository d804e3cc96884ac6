//! A receipt as the register's command sequence: open check, one item
//! command per line, close with the payments in the four slots. Pure; every
//! way a receipt may not fit the register is a [`PlanError`] before a byte
//! is sent.

use super::assumed::{self, TEXT_FIELD_BYTES};
use super::command::{CheckMarking, CheckType, CloseCheck, Command, ItemOp, MAX_U40};
use super::tlv::{self, Tlv};
use crate::domain::receipt::{
    Correction, IndustryRequisite, PaymentKind, Receipt, ReceiptKind, Vat,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "item {item} ({name:?}): VAT {vat} has no tax group on the register (rule: assumed::tax_group)"
    )]
    NoTaxGroup { item: usize, name: String, vat: Vat },
    #[error(
        "payment {payment}: kind {kind} has no payment slot on the register (rule: assumed::payment_slot)"
    )]
    NoPaymentSlot { payment: usize, kind: PaymentKind },
    #[error(
        "item {item} ({name:?}): {what} is out of the register's range (rule: 0 < value <= 9999999999)"
    )]
    OutOfRange {
        item: usize,
        name: String,
        what: &'static str,
    },
    #[error(
        "item {item} ({name:?}): the register books {register} (qty x price / 1000) but the receipt says {receipt} (rule: line sum)"
    )]
    LineSum {
        item: usize,
        name: String,
        register: i64,
        receipt: i64,
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
    #[error("a receipt needs at least one item (rule: items)")]
    Empty,
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

/// Tags 1173 and 1174 {1178, 1179} of a correction (FF0C, one per top-level tag).
pub fn correction_tags(c: &Correction) -> Vec<Tlv> {
    vec![
        Tlv::byte(1173, c.kind.tag_1173()),
        Tlv::stlv(
            1174,
            &[
                Tlv::date(1178, c.basis_date),
                Tlv::string(1179, &c.basis_number),
            ],
        ),
    ]
}

/// Tag 1260 of an item (FF4D after the item).
pub fn industry_tags(r: &IndustryRequisite) -> Vec<Tlv> {
    let parts = vec![
        Tlv::string(1262, &r.foiv_id),
        Tlv::string(1263, &r.doc_date),
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

/// The commands registering `r`: `8D` (`0x80|type` for a correction, then
/// its tags via FF0C), per item: FF61 + FF69 per marking code, `80..83`,
/// FF4D with its 1260, FF67 per code; then `85`.
pub fn plan_receipt(r: &Receipt) -> Result<Vec<Command>, PlanError> {
    if r.items.is_empty() {
        return Err(PlanError::Empty);
    }
    let ct = check_type(r.kind);
    let mut commands = match &r.correction {
        None => vec![Command::OpenCheck(ct)],
        Some(c) => {
            let mut v = vec![Command::OpenCorrection(ct)];
            v.extend(
                correction_tags(c)
                    .into_iter()
                    .map(|t| Command::WriteTlv(tlv::encode(&[t]))),
            );
            v
        }
    };
    let mut total: i64 = 0;
    for (i, item) in r.items.iter().enumerate() {
        let name = &item.line.name;
        let in_range = |v: i64, what| {
            u64::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v <= MAX_U40)
                .ok_or_else(|| PlanError::OutOfRange {
                    item: i,
                    name: name.clone(),
                    what,
                })
        };
        let quantity = in_range(item.line.quantity.milli(), "quantity")?;
        let price = in_range(item.line.price.minor(), "price")?;
        let group = assumed::tax_group(item.line.vat).ok_or_else(|| PlanError::NoTaxGroup {
            item: i,
            name: name.clone(),
            vat: item.line.vat,
        })?;
        let booked = register_line_sum(quantity, price);
        if booked != item.total.minor() {
            return Err(PlanError::LineSum {
                item: i,
                name: name.clone(),
                register: booked,
                receipt: item.total.minor(),
            });
        }
        total = total.saturating_add(booked);
        for code in &item.line.marking {
            commands.push(Command::CheckMarking(CheckMarking {
                planned_status: planned_status(r.kind, item.line.quantity.milli()),
                mode: 0,
                code: code.as_bytes().to_vec(),
                tlv: Vec::new(),
            }));
            commands.push(Command::AcceptMarking(1));
        }
        commands.push(Command::Item(
            ct,
            ItemOp {
                quantity,
                price,
                department: assumed::DEPARTMENT,
                taxes: [group, 0, 0, 0],
                text: name.chars().take(TEXT_FIELD_BYTES).collect(),
            },
        ));
        // One request checked all of a receipt's codes: one 1260 per item.
        if let Some(req) = r
            .marking_checks
            .iter()
            .filter(|c| c.item == i)
            .find_map(|c| c.requisite.as_ref())
        {
            commands.extend(
                industry_tags(req)
                    .into_iter()
                    .map(|t| Command::WriteOperationTlv(tlv::encode(&[t]))),
            );
        }
        for code in &item.line.marking {
            commands.push(Command::BindMarking(code.as_bytes().to_vec()));
        }
    }
    if total != r.total.minor() {
        return Err(PlanError::Total {
            register: total,
            receipt: r.total.minor(),
        });
    }
    let mut slots = [0i64; 4];
    for (i, p) in r.payments.iter().enumerate() {
        let slot = assumed::payment_slot(p.kind).ok_or(PlanError::NoPaymentSlot {
            payment: i,
            kind: p.kind,
        })?;
        slots[slot] = slots[slot].saturating_add(p.amount.minor());
    }
    let paid: i64 = slots.iter().sum();
    let non_cash: i64 = slots[1..].iter().sum();
    if slots.iter().any(|&s| s < 0 || s as u64 > MAX_U40) || paid < total || non_cash > total {
        return Err(PlanError::Payments {
            paid,
            total,
            non_cash,
        });
    }
    commands.push(Command::CloseCheck(CloseCheck {
        payments: slots.map(|s| s as u64),
        discount: 0,
        taxes: [0; 4],
        text: String::new(),
    }));
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::{Money, Quantity, line_total};
    use crate::domain::receipt::{
        CalculationMethod, Item, Line, Payment, PaymentSubject, TaxSystem,
    };
    use proptest::prelude::*;

    fn item(name: &str, qty: i64, price: i64, vat: Vat) -> Item {
        Item {
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
            },
            total: line_total(Money(price), Quantity(qty)).unwrap(),
        }
    }

    fn receipt(kind: ReceiptKind, items: Vec<Item>, payments: Vec<Payment>) -> Receipt {
        let total = Money(items.iter().map(|i| i.total.0).sum());
        let paid: i64 = payments.iter().map(|p| p.amount.0).sum();
        Receipt {
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
        let r = receipt(
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
        let plan = plan_receipt(&r).unwrap();
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0], Command::OpenCheck(CheckType::ReturnSale));
        let Command::Item(CheckType::ReturnSale, op) = &plan[1] else {
            panic!("{:?}", plan[1])
        };
        assert_eq!(
            (op.quantity, op.price, op.taxes),
            (2000, 15000, [1, 0, 0, 0])
        );
        assert_eq!(op.text.chars().count(), TEXT_FIELD_BYTES);
        assert!(long.starts_with(&op.text));
        assert_eq!(plan[1].code(), 0x82);
        let Command::Item(_, op2) = &plan[2] else {
            panic!()
        };
        assert_eq!(op2.taxes, [4, 0, 0, 0]);
        let Command::CloseCheck(c) = &plan[3] else {
            panic!()
        };
        assert_eq!(c.payments, [40000, 10000, 0, 0]);
    }

    #[test]
    fn receipts_the_register_cannot_represent_are_refused_by_name() {
        let r = receipt(
            ReceiptKind::Sale,
            vec![
                item("Хлеб", 1000, 100, Vat::Vat22),
                item("Вино", 1000, 100, Vat::Vat122),
            ],
            vec![pay(PaymentKind::Cash, 200)],
        );
        let e = plan_receipt(&r).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoTaxGroup {
                item: 1,
                name: "Вино".into(),
                vat: Vat::Vat122
            }
        );
        assert!(e.to_string().contains("22/122"), "{e}");

        let r = receipt(
            ReceiptKind::Sale,
            vec![item("Хлеб", 1000, 100, Vat::Vat22)],
            vec![pay(PaymentKind::Other, 100)],
        );
        assert!(matches!(
            plan_receipt(&r),
            Err(PlanError::NoPaymentSlot { payment: 0, .. })
        ));

        let mut r = receipt(
            ReceiptKind::Sale,
            vec![item("Хлеб", 1000, 100, Vat::Vat22)],
            vec![pay(PaymentKind::Electronic, 150)],
        );
        assert!(matches!(plan_receipt(&r), Err(PlanError::Payments { .. })));
        r.items[0].total = Money(99);
        r.total = Money(99);
        assert!(matches!(
            plan_receipt(&r),
            Err(PlanError::LineSum { register: 100, .. })
        ));
        r.items.clear();
        assert_eq!(plan_receipt(&r), Err(PlanError::Empty));
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
                    Command::Item(_, op) => {
                        booked += i64::try_from(op.sum()).unwrap();
                    }
                    Command::CloseCheck(c) => paid = c.payments.iter().sum(),
                    _ => {}
                }
            }
            prop_assert_eq!(booked, r.total.0);
            prop_assert_eq!(paid as i64 - booked, r.change.0);
        }
    }
}
