//! [`Money`]: a non-negative amount in the platform currency with at most two decimal
//! places, kept as a `rust_decimal::Decimal` (never a float).

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, Sub};
use std::str::FromStr;

/// Why a string is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number at all.
    #[error("{0:?} is not a decimal amount such as \"129.90\"")]
    NotANumber(String),
    /// Below zero.
    #[error("amount {0} is negative")]
    Negative(String),
    /// More than two decimal places.
    #[error("amount {0} has more than 2 decimal places")]
    TooPrecise(String),
    /// Beyond what any order could cost (1e12).
    #[error("amount {0} is too large")]
    TooLarge(String),
    /// A refund amount written with a sign (`+5`, `-0`).
    #[error("amount {0:?} has a sign; write the amount alone, such as \"129.90\"")]
    Signed(String),
    /// A refund of nothing (below one cent).
    #[error("amount {0} is below the smallest refund, 0.01")]
    BelowMinimum(String),
}

/// A non-negative amount with at most two decimal places. Serialised as a string
/// (`"129.90"`) so that JSON clients never see a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Checks a decimal: non-negative, at most 2 places, below 1e12.
    pub fn new(d: Decimal) -> Result<Money, MoneyError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::Negative(d.to_string()));
        }
        if d.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(d.to_string()));
        }
        if d >= Decimal::from(1_000_000_000_000u64) {
            return Err(MoneyError::TooLarge(d.to_string()));
        }
        let mut d = d.abs();
        d.rescale(2);
        Ok(Money(d))
    }

    /// A refund amount as a refund service sends it: plain digits with at most two
    /// decimal places, no sign, no spaces, at least 0.01 and below 1e12. (`"0"` or
    /// `"-0"` would record a refund of nothing that still marks its order refunded.)
    pub fn parse_refund(s: &str) -> Result<Money, MoneyError> {
        if s.starts_with(['+', '-']) {
            return Err(MoneyError::Signed(s.to_string()));
        }
        let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let (whole, fraction) = s.split_once('.').unwrap_or((s, "1"));
        // One way to write each amount: no leading zeros ("012"), digits on both sides
        // of a point.
        if !plain
            || whole.is_empty()
            || fraction.is_empty()
            || (whole.len() > 1 && whole.starts_with('0'))
        {
            return Err(MoneyError::NotANumber(s.to_string()));
        }
        let m: Money = s.parse()?;
        if m < Money::from_cents(1) {
            return Err(MoneyError::BelowMinimum(s.to_string()));
        }
        Ok(m)
    }

    /// An amount from a whole number of cents (fen).
    pub fn from_cents(cents: u64) -> Money {
        Money(Decimal::new(i64::try_from(cents).unwrap_or(i64::MAX), 2))
    }

    /// The decimal value.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// The amount as a float, for model inputs only (never for accounting).
    pub fn to_f64_lossy(self) -> f64 {
        use rust_decimal::prelude::ToPrimitive;
        self.0.to_f64().unwrap_or(f64::NAN)
    }

    /// `self - other`, or `None` if that would be negative.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        let d = self.0 - other.0;
        (!d.is_sign_negative() || d.is_zero()).then_some(Money(d))
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // Only plain decimal notation: digits, one optional point, an optional sign.
        let plain = !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
        if !plain {
            return Err(MoneyError::NotANumber(s.to_string()));
        }
        let d = Decimal::from_str_exact(t).map_err(|_| MoneyError::NotANumber(s.to_string()))?;
        Money::new(d)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }
}

impl Sub for Money {
    type Output = Decimal;
    /// The signed difference (may be negative, hence a plain `Decimal`).
    fn sub(self, o: Money) -> Decimal {
        self.0 - o.0
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_from_plain_decimal_strings() {
        assert_eq!(
            "129.90".parse::<Money>().map(|m| m.to_string()),
            Ok("129.90".into())
        );
        assert_eq!(
            "5".parse::<Money>().map(|m| m.to_string()),
            Ok("5.00".into())
        );
        assert_eq!(
            "0.1".parse::<Money>().map(|m| m.to_string()),
            Ok("0.10".into())
        );
    }

    #[test]
    fn bad_amounts_are_refused_with_the_reason() {
        assert!(matches!(
            "-5.00".parse::<Money>(),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            "1.234".parse::<Money>(),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            "abc".parse::<Money>(),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            "1e5".parse::<Money>(),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            "NaN".parse::<Money>(),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            "".parse::<Money>(),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            "1000000000000.00".parse::<Money>(),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn trailing_zeros_beyond_two_places_are_fine() {
        assert_eq!(
            "1.2300".parse::<Money>().map(|m| m.to_string()),
            Ok("1.23".into())
        );
    }

    #[test]
    fn money_round_trips_through_json_as_a_string() {
        let m: Money = serde_json::from_str("\"10.50\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"10.50\"");
        assert!(serde_json::from_str::<Money>("\"-1\"").is_err());
    }

    #[test]
    fn a_refund_amount_is_at_least_a_cent_with_no_sign() {
        for ok in [
            "0.01",
            "0.5",
            "0.50",
            "59.90",
            "1",
            "10.0",
            "999999999999.99",
        ] {
            assert!(Money::parse_refund(ok).is_ok(), "{ok}");
        }
        for (bad, want) in [
            ("0", "below the smallest"),
            ("0.00", "below the smallest"),
            ("0.001", "more than 2 decimal"),
            ("-0", "sign"),
            ("+5", "sign"),
            ("-5.00", "sign"),
            (" 5", "not a decimal"),
            ("5e2", "not a decimal"),
            ("012.00", "not a decimal"),
            ("00.50", "not a decimal"),
            (".50", "not a decimal"),
            ("5.", "not a decimal"),
            ("", "not a decimal"),
            ("1000000000000", "too large"),
        ] {
            let e = Money::parse_refund(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }
}
