//! Money and quantities, and every conversion between them and the outside world.
//!
//! Inside fiscald, money is an `i64` count of minor units (kopecks, tiyin) and a
//! quantity is an `i64` count of thousandths. Nothing else in the crate parses or
//! formats a decimal: every dialect, the journal, the QR strings and the cloud
//! mapping go through the functions here, so a rounding rule lives in one place.
//! Decimals are parsed from their text, never through `f64`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Digits after the point in a money amount (both RUB and UZS have 1/100 units).
pub const MONEY_SCALE: u32 = 2;
/// Digits after the point in a quantity.
pub const QUANTITY_SCALE: u32 = 3;
/// The largest amount any single figure on a receipt may carry: 999 999 999.99.
/// Anything larger is a mistake in the POS, and is rejected rather than wrapped.
pub const MAX_MONEY_MINOR: i64 = 99_999_999_999;
/// The largest quantity of one line: 99 999.999 units.
pub const MAX_QUANTITY_MILLI: i64 = 99_999_999;

/// An amount in minor units (kopecks). Signed so that a negative input can be
/// reported as a rule violation instead of a parse failure.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

/// A quantity in thousandths of a unit.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Quantity(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn minor(self) -> i64 {
        self.0
    }

    /// For `skip_serializing_if`: zero amounts are left out of stored JSON.
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// Parse a decimal such as `150`, `150.5`, `-3.00` (at most two decimals).
    pub fn parse(text: &str) -> Result<Money, DecimalError> {
        parse_scaled(text, MONEY_SCALE).map(Money)
    }

    /// `150.00`: the `xxx.xx` form of the idempotency key, the QR `s=` field and
    /// every JSON reply.
    pub fn to_decimal(self) -> String {
        format_scaled(self.0, MONEY_SCALE)
    }

    /// Checked sum; `None` means the result would pass [`MAX_MONEY_MINOR`].
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0
            .checked_add(other.0)
            .filter(|v| v.abs() <= MAX_MONEY_MINOR)
            .map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

impl Quantity {
    pub fn milli(self) -> i64 {
        self.0
    }

    /// Parse a decimal such as `1`, `1.5`, `0.125` (at most three decimals).
    pub fn parse(text: &str) -> Result<Quantity, DecimalError> {
        parse_scaled(text, QUANTITY_SCALE).map(Quantity)
    }

    /// `1.500`
    pub fn to_decimal(self) -> String {
        format_scaled(self.0, QUANTITY_SCALE)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

/// `price × quantity`, rounded half away from zero to the minor unit — the rule
/// fiscal registers apply to a line. `None` when the result passes
/// [`MAX_MONEY_MINOR`].
pub fn line_total(price: Money, quantity: Quantity) -> Option<Money> {
    let exact = i128::from(price.0) * i128::from(quantity.0);
    let den = 10i128.pow(QUANTITY_SCALE);
    let half = den / 2;
    let rounded = if exact >= 0 {
        (exact + half) / den
    } else {
        (exact - half) / den
    };
    i64::try_from(rounded)
        .ok()
        .filter(|v| v.abs() <= MAX_MONEY_MINOR)
        .map(Money)
}

/// Why a decimal text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("must be a plain decimal number such as 150.00")]
    Syntax,
    #[error("has more than {0} digits after the decimal point")]
    TooManyDecimals(u32),
    #[error("is too large")]
    TooLarge,
}

fn parse_scaled(text: &str, scale: u32) -> Result<i64, DecimalError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int_part) || frac_part.is_some_and(|f| !digits_only(f)) {
        return Err(DecimalError::Syntax);
    }
    let frac = frac_part.unwrap_or("");
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > scale as usize {
        return Err(DecimalError::TooManyDecimals(scale));
    }
    let int_trimmed = int_part.trim_start_matches('0');
    // 15 integer digits is far beyond any limit and keeps the arithmetic in i64.
    if int_trimmed.len() > 15 {
        return Err(DecimalError::TooLarge);
    }
    let int_value: i64 = if int_trimmed.is_empty() {
        0
    } else {
        int_trimmed.parse().map_err(|_| DecimalError::TooLarge)?
    };
    let mut frac_value: i64 = 0;
    for i in 0..scale as usize {
        let d = frac_trimmed
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        frac_value = frac_value * 10 + d;
    }
    let value = int_value * 10i64.pow(scale) + frac_value;
    Ok(if negative { -value } else { value })
}

fn format_scaled(value: i64, scale: u32) -> String {
    let den = 10u64.pow(scale);
    let abs = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        abs / den,
        abs % den,
        width = scale as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(Money::parse("150"), Ok(Money(15000)));
        assert_eq!(Money::parse("150.5"), Ok(Money(15050)));
        assert_eq!(Money::parse("150.50"), Ok(Money(15050)));
        assert_eq!(Money::parse("150.500"), Ok(Money(15050)));
        assert_eq!(Money::parse("0.01"), Ok(Money(1)));
        assert_eq!(Money::parse("-3.10"), Ok(Money(-310)));
        assert_eq!(Quantity::parse("1.5"), Ok(Quantity(1500)));
        assert_eq!(Quantity::parse("0.125"), Ok(Quantity(125)));
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "", ".", "1.", ".5", "1e2", "1,5", "+1", " 1", "1.2.3", "--1", "NaN",
        ] {
            assert_eq!(Money::parse(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
        assert_eq!(Money::parse("1.001"), Err(DecimalError::TooManyDecimals(2)));
        assert_eq!(
            Quantity::parse("1.0001"),
            Err(DecimalError::TooManyDecimals(3))
        );
        assert_eq!(
            Money::parse("1234567890123456"),
            Err(DecimalError::TooLarge)
        );
    }

    #[test]
    fn formats_with_fixed_decimals() {
        assert_eq!(Money(15000).to_decimal(), "150.00");
        assert_eq!(Money(5).to_decimal(), "0.05");
        assert_eq!(Money(-5).to_decimal(), "-0.05");
        assert_eq!(Quantity(1500).to_decimal(), "1.500");
    }

    #[test]
    fn line_total_rounds_half_away_from_zero() {
        // 0.33 × 1.5 = 0.495 → 0.50
        assert_eq!(line_total(Money(33), Quantity(1500)), Some(Money(50)));
        // 0.33 × 1.49 = 0.4917 → 0.49
        assert_eq!(line_total(Money(33), Quantity(1490)), Some(Money(49)));
        assert_eq!(line_total(Money(10000), Quantity(1000)), Some(Money(10000)));
        assert_eq!(
            line_total(Money(MAX_MONEY_MINOR), Quantity(MAX_QUANTITY_MILLI)),
            None
        );
    }

    proptest! {
        #[test]
        fn money_text_round_trips(v in -MAX_MONEY_MINOR..=MAX_MONEY_MINOR) {
            prop_assert_eq!(Money::parse(&Money(v).to_decimal()), Ok(Money(v)));
        }

        #[test]
        fn quantity_text_round_trips(v in 0..=MAX_QUANTITY_MILLI) {
            prop_assert_eq!(Quantity::parse(&Quantity(v).to_decimal()), Ok(Quantity(v)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Money::parse(&s);
            let _ = Quantity::parse(&s);
        }

        #[test]
        fn line_total_is_within_half_a_kopeck(p in 0..=MAX_MONEY_MINOR, q in 0..=MAX_QUANTITY_MILLI) {
            if let Some(t) = line_total(Money(p), Quantity(q)) {
                let exact = i128::from(p) * i128::from(q);
                let diff = (i128::from(t.0) * 1000 - exact).abs();
                prop_assert!(diff <= 500);
            }
        }
    }
}
