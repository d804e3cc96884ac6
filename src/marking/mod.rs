//! The permissive-mode check of marking codes (разрешительный режим,
//! Честный ЗНАК) before a sale is journaled.
//!
//! - [`wire`]: the services' formats, every ASSUMED shape in one place.
//! - this module: the pure rules — which answer lets a code be sold, what the
//!   receipt carries afterwards (tag 1260) — and the order of the services;
//! - [`client`]: the HTTP calls, each within the configured budget.
//!
//! The flow (marking-and-fn-health.md §A1, "Timeouts and sell anyway"): the
//! online check first, within 1.5 s; without an answer, the local module
//! ЛМ ЧЗ; a code either refuses blocks the sale (422, nothing journaled).
//! With no answer from either, the published rule is that the sale is not
//! blocked — ЧЗ records it as the deviation «Продажа без проверки КМ»
//! (pcs.ru/blog/1175, markirovka.ru community page on offline checks) — so by
//! default the receipt is sold without tag 1260 and says so
//! (`checked_by: "unreachable"`); `on_unreachable = "refuse"` refuses instead.
//! Only sales are checked: a return brings a sold code back, and a
//! correction re-states past settlements.

pub mod client;
pub mod wire;

use crate::domain::{IndustryRequisite, MarkingCheck, Receipt, ReceiptKind, Violation};
use wire::{CheckReply, CodeInfo};

/// Which service answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The national system's online check (True API).
    Online,
    /// The local module ЛМ ЧЗ.
    Local,
}

impl Service {
    pub fn code(self) -> &'static str {
        match self {
            Service::Online => "online",
            Service::Local => "local_module",
        }
    }
}

/// What the check decided for a receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every code may be sold: these checks go into the receipt.
    Accepted(Vec<MarkingCheck>),
    /// At least one code may not: the sale is refused.
    Refused(Vec<Violation>),
}

/// The receipt's codes, with their JSON pointers, in order.
pub fn codes(r: &Receipt) -> Vec<(usize, usize, String)> {
    r.items
        .iter()
        .enumerate()
        .flat_map(|(i, item)| {
            item.line
                .marking
                .iter()
                .enumerate()
                .map(move |(j, c)| (i, j, c.clone()))
        })
        .collect()
}

/// Does this receipt need a permissive-mode check?
pub fn needs_check(r: &Receipt) -> bool {
    r.kind == ReceiptKind::Sale && r.correction.is_none() && !codes(r).is_empty()
}

/// Pure: may this code be sold, by this service's answer? `Err` is the reason.
///
/// Online (spoleto-software/Spoleto.Marking.TsPiot
/// `Extensions/ModelExtensions.cs`): found, applied, authentic, not sold,
/// not blocked, in circulation, no error. Local module (same file): only the
/// block list can be judged offline (its database lacks the rest): not
/// blocked, no error. The order of reasons follows the one public sample
/// quoting CRPT's recommendations (invalid → not found → not applied → not
/// authentic → blocked → sold → not in circulation), UNCONFIRMED.
pub fn may_sell(service: Service, info: &CodeInfo) -> Result<(), String> {
    let error = info.error_code.filter(|&c| c != 0);
    if service == Service::Online {
        for (fails, why) in [
            (!info.valid, "the code's format is invalid"),
            (!info.found, "the code is not known to the national system"),
            (!info.utilised, "the code was never applied to a product"),
            (!info.verified, "the code's crypto tail is not authentic"),
            (
                info.is_blocked,
                "the sale of this item is blocked by a state body",
            ),
            (
                info.sold,
                "the item was already sold (withdrawn from circulation)",
            ),
            (!info.realizable, "the item is not in circulation"),
        ] {
            if fails {
                return Err(why.into());
            }
        }
    } else if info.is_blocked {
        return Err("the sale of this item is blocked by a state body".into());
    }
    if let Some(code) = error {
        return Err(format!(
            "the service reported error {code}{}",
            info.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

/// Tag 1260 after a successful check.
pub fn requisite(reply: &CheckReply) -> IndustryRequisite {
    IndustryRequisite {
        foiv_id: wire::FOIV_ID.into(),
        doc_date: wire::FOUNDING_DOC_DATE.into(),
        doc_number: wire::FOUNDING_DOC_NUMBER.into(),
        value: wire::tag_1265(&reply.req_id, reply.req_timestamp),
    }
}

/// Pure: judge a service's reply for every code of the receipt.
pub fn judge(r: &Receipt, service: Service, reply: &CheckReply) -> Outcome {
    let mut refused = Vec::new();
    let mut checks = Vec::new();
    let req = requisite(reply);
    for (i, j, code) in codes(r) {
        let path = format!("/items/{i}/marking/{j}");
        let verdict = if reply.code != 0 {
            Err(format!(
                "the {} check failed with code {}{}",
                service.code(),
                reply.code,
                reply
                    .description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ))
        } else {
            match reply.codes.iter().find(|c| c.cis == code) {
                Some(info) => may_sell(service, info),
                None => Err(format!(
                    "the {} check gave no answer for this code",
                    service.code()
                )),
            }
        };
        match verdict {
            Ok(()) => checks.push(MarkingCheck {
                item: i,
                code,
                requisite: Some(req.clone()),
                checked_by: service.code().into(),
            }),
            Err(why) => refused.push(Violation::new(
                path,
                "marking_refused",
                format!(
                    "this marked item may not be sold: {why} (permissive-mode check, {})",
                    service.code()
                ),
            )),
        }
    }
    if refused.is_empty() {
        Outcome::Accepted(checks)
    } else {
        Outcome::Refused(refused)
    }
}

/// The checks of a receipt sold without an answer from any service.
pub fn unchecked(r: &Receipt) -> Vec<MarkingCheck> {
    codes(r)
        .into_iter()
        .map(|(i, _, code)| MarkingCheck {
            item: i,
            code,
            requisite: None,
            checked_by: "unreachable".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;

    pub(crate) fn sellable(cis: &str) -> CodeInfo {
        CodeInfo {
            cis: cis.into(),
            valid: true,
            found: true,
            utilised: true,
            verified: true,
            realizable: true,
            ..Default::default()
        }
    }

    fn receipt(codes: &[&str]) -> Receipt {
        let line = Line {
            name: "Кеды".into(),
            quantity: Quantity(1000),
            price: Money(10000),
            vat: Vat::Vat22,
            payment_subject: PaymentSubject::Commodity,
            calculation_method: CalculationMethod::FullPay,
            barcode: None,
            class_code: None,
            package_code: None,
            marking: codes.iter().map(|c| c.to_string()).collect(),
            unit: Default::default(),
            discount: Default::default(),
            agent: None,
        };
        Receipt {
            kind: ReceiptKind::Sale,
            tax_system: TaxSystem::Common,
            currency: "RUB".into(),
            items: vec![Item {
                line,
                total: Money(10000),
                receipt_discount: Default::default(),
            }],
            payments: vec![],
            total: Money(10000),
            change: Money::ZERO,
            cashier: None,
            buyer: None,
            correction: None,
            marking_checks: vec![],
            uz: None,
            discount: Default::default(),
            original_date: None,
        }
    }

    #[test]
    fn online_needs_every_flag_local_only_the_block_list() {
        assert_eq!(may_sell(Service::Online, &sellable("a")), Ok(()));
        let sold = CodeInfo {
            sold: true,
            ..sellable("a")
        };
        assert!(
            may_sell(Service::Online, &sold)
                .unwrap_err()
                .contains("already sold")
        );
        // The local module does not know "sold" or "found": it cannot refuse on them.
        let offline = CodeInfo {
            cis: "a".into(),
            ..Default::default()
        };
        assert_eq!(may_sell(Service::Local, &offline), Ok(()));
        let blocked = CodeInfo {
            is_blocked: true,
            ..offline.clone()
        };
        assert!(
            may_sell(Service::Local, &blocked)
                .unwrap_err()
                .contains("blocked")
        );
        let error = CodeInfo {
            error_code: Some(7),
            ..sellable("a")
        };
        assert!(
            may_sell(Service::Online, &error)
                .unwrap_err()
                .contains("error 7")
        );
    }

    #[test]
    fn a_refused_code_refuses_the_sale_with_its_pointer_an_accepted_one_gets_1260() {
        let r = receipt(&["good", "bad"]);
        let reply = CheckReply {
            code: 0,
            codes: vec![
                sellable("good"),
                CodeInfo {
                    is_blocked: true,
                    ..sellable("bad")
                },
            ],
            req_id: "u-1".into(),
            req_timestamp: 1_767_000_000_000,
            ..Default::default()
        };
        match judge(&r, Service::Online, &reply) {
            Outcome::Refused(v) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].path, "/items/0/marking/1");
                assert_eq!(v[0].rule, "marking_refused");
            }
            other => panic!("{other:?}"),
        }
        let ok = CheckReply {
            codes: vec![sellable("good"), sellable("bad")],
            ..reply
        };
        let Outcome::Accepted(checks) = judge(&r, Service::Local, &ok) else {
            panic!("accepted")
        };
        let req = checks[0].requisite.as_ref().unwrap();
        assert_eq!(
            (
                req.foiv_id.as_str(),
                req.doc_date.as_str(),
                req.doc_number.as_str()
            ),
            ("030", "21.11.2023", "1944")
        );
        assert_eq!(req.value, "UUID=u-1&Time=1767000000000");
        assert_eq!(checks[1].checked_by, "local_module");
        // A code missing from the reply is not sellable.
        let partial = CheckReply {
            codes: vec![sellable("good")],
            ..ok.clone()
        };
        assert!(matches!(
            judge(&r, Service::Online, &partial),
            Outcome::Refused(_)
        ));
        assert!(needs_check(&r));
        let mut ret = r.clone();
        ret.kind = ReceiptKind::SaleReturn;
        assert!(!needs_check(&ret));
    }
}
