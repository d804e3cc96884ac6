//! Cash put into or taken out of the till's drawer (внесение / выплата):
//! not a receipt and not a fiscal document, but the register counts it in
//! its shift totals (X/Z reports). Pure.

use super::money::{MAX_MONEY_MINOR, Money};
use super::receipt::Cashier;
use super::validate::Violation;
use serde::{Deserialize, Serialize};

/// Which way the cash goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashDirection {
    /// Into the drawer (register command 0x50).
    In,
    /// Out of the drawer (register command 0x51).
    Out,
}

impl CashDirection {
    pub fn code(self) -> &'static str {
        match self {
            CashDirection::In => "in",
            CashDirection::Out => "out",
        }
    }
}

/// One cash operation as an operator asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashOperation {
    pub direction: CashDirection,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
}

impl CashOperation {
    /// The rules: a positive amount the register can hold.
    pub fn check(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        if self.amount.minor() <= 0 {
            v.push(Violation::new(
                "/amount",
                "positive",
                "amount must be greater than 0",
            ));
        } else if self.amount.minor() > MAX_MONEY_MINOR {
            v.push(Violation::new(
                "/amount",
                "max",
                format!("amount may be at most {}", Money(MAX_MONEY_MINOR)),
            ));
        }
        if let Some(c) = &self.cashier
            && (c.name.trim().is_empty()
                || c.name.chars().count() > super::validate::MAX_CASHIER_CHARS)
        {
            v.push(Violation::new(
                "/cashier/name",
                "length",
                format!(
                    "cashier name must be 1 to {} characters",
                    super::validate::MAX_CASHIER_CHARS
                ),
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_must_be_positive_and_in_range() {
        let op = |m| CashOperation {
            direction: CashDirection::In,
            amount: Money(m),
            cashier: None,
        };
        assert!(op(100).check().is_empty());
        assert_eq!(op(0).check()[0].rule, "positive");
        assert_eq!(op(-5).check()[0].rule, "positive");
        assert_eq!(op(MAX_MONEY_MINOR + 1).check()[0].rule, "max");
    }
}
