//! Domain types shared by the batch side and the service: ids, money, stars, the
//! enums of the data contract (spec §2), return requests and decisions.
//!
//! Everything here is parsed at the edge ("parse, don't validate"): raw strings and
//! numbers become these types through `FromStr`/`TryFrom`, and nothing raw reaches
//! [`crate::policy`] or [`crate::scoring`]. This module does no I/O and knows nothing of
//! polars, linfa or axum.

mod history;
mod money;
mod request;

pub use history::HistoryReturn;
pub use money::{Money, MoneyError};
pub use request::{Decision, ReasonCode, ReturnRequest};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An error turning raw input into a domain value; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A string is not one of the values an enum of the data contract allows.
    #[error("unknown {kind} {value:?}: expected one of {expected}")]
    UnknownValue {
        kind: &'static str,
        value: String,
        expected: String,
    },
    /// A star outside 1..=5.
    #[error("star {0} is outside 1..=5")]
    StarOutOfRange(i64),
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse::<u64>().map(Self)
            }
        }
    };
}

id_type!(
    /// A buyer of the marketplace (unsigned 64-bit, spec §2).
    BuyerId
);
id_type!(
    /// An order.
    OrderId
);
id_type!(
    /// A return request, as the refund service numbers it; the idempotency key.
    ReturnId
);
id_type!(
    /// A merchant.
    MerchantId
);

/// A buyer's level, 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Star(u8);

impl Star {
    /// The lowest star.
    pub const MIN: Star = Star(1);
    /// The highest star.
    pub const MAX: Star = Star(5);

    /// The star as a number 1..=5.
    pub fn get(self) -> u8 {
        self.0
    }

    /// All five stars, lowest first.
    pub fn all() -> impl Iterator<Item = Star> {
        (1..=5).map(Star)
    }

    /// Index 0..=4, for tables kept per star.
    pub fn index(self) -> usize {
        usize::from(self.0 - 1)
    }
}

impl TryFrom<u8> for Star {
    type Error = DomainError;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        if (1..=5).contains(&v) {
            Ok(Star(v))
        } else {
            Err(DomainError::StarOutOfRange(i64::from(v)))
        }
    }
}

impl TryFrom<i64> for Star {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        u8::try_from(v)
            .ok()
            .and_then(|s| Star::try_from(s).ok())
            .ok_or(DomainError::StarOutOfRange(v))
    }
}

impl From<Star> for u8 {
    fn from(s: Star) -> u8 {
        s.0
    }
}

impl fmt::Display for Star {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}★", self.0)
    }
}

/// Declares a string enum of the data contract with its wire names, `FromStr`,
/// `Display`, serde and the list of allowed values for error messages.
macro_rules! contract_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal, { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The wire name of this value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(DomainError::UnknownValue {
                        kind: $kind,
                        value: s.to_string(),
                        expected: Self::NAMES.join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

contract_enum!(
    /// `orders.status`.
    OrderStatus, "order status", {
        Paid => "paid",
        Shipped => "shipped",
        Delivered => "delivered",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

contract_enum!(
    /// `returns.reason`: why the buyer sends the goods back.
    ReturnReason, "return reason", {
        /// 7-day no-reason return.
        NoReason => "no_reason",
        Quality => "quality",
        NotAsDescribed => "not_as_described",
        WrongItem => "wrong_item",
        /// The buyer claims the goods never arrived.
        NotReceived => "not_received",
        Other => "other",
    }
);

contract_enum!(
    /// `returns.outcome`: what happened to a return.
    Outcome, "outcome", {
        /// The merchant received the goods intact.
        ReceivedOk => "received_ok",
        /// The parcel arrived empty or held something else: a loss if advanced.
        ReceivedMismatch => "received_mismatch",
        /// The buyer never shipped: a loss if advanced.
        NotShipped => "not_shipped",
        /// Not known yet.
        Pending => "pending",
        /// The merchant was at fault; never counts against the buyer.
        MerchantFault => "merchant_fault",
        /// Refunded without return (仅退款): the platform chose to let the buyer keep
        /// low-value goods. Settled, never a loss, never shipped; its own kind in the
        /// buyer's history.
        RefundedWithoutReturn => "refunded_without_return",
    }
);

impl Outcome {
    /// Whether this outcome, on an advanced refund, is a loss caused by the buyer.
    pub fn is_buyer_loss(self) -> bool {
        matches!(self, Outcome::ReceivedMismatch | Outcome::NotShipped)
    }
}

contract_enum!(
    /// `disputes.decision`.
    DisputeDecision, "dispute decision", {
        BuyerWon => "buyer_won",
        MerchantWon => "merchant_won",
        Split => "split",
        Open => "open",
    }
);

/// A product category code (`orders.category`), e.g. `womens_wear`. Categories are an
/// open set: a data team may bring its own; the policy names the ones in the programme.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Category(String);

impl Category {
    /// A category code: 1 to 64 characters of lowercase ASCII letters, digits and `_`.
    pub fn parse(s: &str) -> Result<Category, DomainError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Category(s.to_string()))
        } else {
            Err(DomainError::UnknownValue {
                kind: "category",
                value: s.to_string(),
                expected: "1 to 64 characters of a-z, 0-9 and _".to_string(),
            })
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_outside_one_to_five_are_refused() {
        assert!(Star::try_from(0u8).is_err());
        assert!(Star::try_from(6u8).is_err());
        assert_eq!(Star::try_from(3u8).map(Star::get), Ok(3));
        assert!(Star::try_from(-1i64).is_err());
    }

    #[test]
    fn unknown_enum_value_names_the_value_and_the_choices() {
        let e = "lost".parse::<Outcome>().unwrap_err().to_string();
        assert!(e.contains("\"lost\""), "{e}");
        assert!(e.contains("received_ok"), "{e}");
        assert_eq!("not_shipped".parse::<Outcome>(), Ok(Outcome::NotShipped));
    }

    #[test]
    fn category_codes_are_checked() {
        assert!(Category::parse("womens_wear").is_ok());
        assert!(Category::parse("Womens Wear").is_err());
        assert!(Category::parse("").is_err());
    }
}
