//! Reconciliation ("sverka"): a shift's totals as the journal computed them
//! against the fiscal module's Z report. Pure. Every difference is listed;
//! none is hidden or "fixed".

use super::facts::{self, ZReport};
use crate::domain::uz::ShiftTotals;
use serde::Serialize;

/// One figure on which the journal and the box disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The Z report field, e.g. `total_sale_cash`.
    pub field: &'static str,
    pub journal: i64,
    pub fiscalbox: i64,
}

/// The journal's totals in the Z report's fields (money ×100).
pub fn as_fields(t: &ShiftTotals) -> [(&'static str, i64); 8] {
    [
        ("total_sale_cash", facts::tiyin(t.sale_cash)),
        ("total_sale_card", facts::tiyin(t.sale_card)),
        ("total_sale_vat", facts::tiyin(t.sale_vat)),
        ("total_sale_count", t.sale_count),
        ("total_refund_cash", facts::tiyin(t.refund_cash)),
        ("total_refund_card", facts::tiyin(t.refund_card)),
        ("total_refund_vat", facts::tiyin(t.refund_vat)),
        ("total_refund_count", t.refund_count),
    ]
}

pub fn compare(journal: &ShiftTotals, z: &ZReport) -> Vec<Difference> {
    let boxed = [
        z.total_sale_cash,
        z.total_sale_card,
        z.total_sale_vat,
        z.total_sale_count,
        z.total_refund_cash,
        z.total_refund_card,
        z.total_refund_vat,
        z.total_refund_count,
    ];
    as_fields(journal)
        .into_iter()
        .zip(boxed)
        .filter(|((_, j), b)| j != b)
        .map(|((field, journal), fiscalbox)| Difference {
            field,
            journal,
            fiscalbox,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;

    #[test]
    fn every_difference_is_listed() {
        let j = ShiftTotals {
            sale_cash: Money(11200),
            sale_vat: Money(1200),
            sale_count: 1,
            ..ShiftTotals::default()
        };
        let mut z = ZReport {
            total_sale_cash: 11200,
            total_sale_vat: 1200,
            total_sale_count: 1,
            ..ZReport::default()
        };
        assert!(compare(&j, &z).is_empty());
        z.total_sale_cash = 0;
        z.total_refund_count = 2;
        assert_eq!(
            compare(&j, &z),
            vec![
                Difference {
                    field: "total_sale_cash",
                    journal: 11200,
                    fiscalbox: 0
                },
                Difference {
                    field: "total_refund_count",
                    journal: 0,
                    fiscalbox: 2
                },
            ]
        );
    }
}
