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

/// The last reconciliation of the shift with the box, as `/v1/health`,
/// `GET /v1/status` and the status page show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `equal`, `different`, or `unchecked` when the box could not be read.
    pub result: &'static str,
    /// When it ran (RFC 3339, UTC).
    pub at: String,
    pub differences: Vec<Difference>,
    /// The shift's receipts not yet fiscalized on the box.
    pub pending_receipts: usize,
    /// Why the box's Z report could not be read, if it could not.
    pub fiscalbox_error: Option<String>,
}

impl Check {
    pub fn new(
        at: String,
        differences: Vec<Difference>,
        pending_receipts: usize,
        fiscalbox_error: Option<String>,
    ) -> Check {
        let result = if fiscalbox_error.is_some() {
            "unchecked"
        } else if differences.is_empty() {
            "equal"
        } else {
            "different"
        };
        Check {
            result,
            at,
            differences,
            pending_receipts,
            fiscalbox_error,
        }
    }

    /// One line per difference, for the status page's "attention" list.
    pub fn attention(&self) -> Vec<String> {
        self.differences
            .iter()
            .map(|d| {
                format!(
                    "the shift reconciliation with the FiscalBox ({}) differs on {}: journal {}, FiscalBox {}",
                    self.at, d.field, d.journal, d.fiscalbox
                )
            })
            .collect()
    }
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
        let check = Check::new("t".into(), compare(&j, &z), 0, None);
        assert_eq!(check.result, "different");
        assert_eq!(check.attention().len(), 2);
        assert!(check.attention()[0].contains("total_sale_cash: journal 11200, FiscalBox 0"));
        assert_eq!(Check::new("t".into(), vec![], 1, None).result, "equal");
        assert_eq!(
            Check::new("t".into(), vec![], 0, Some("down".into())).result,
            "unchecked"
        );
    }
}
