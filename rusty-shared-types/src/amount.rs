//! Amounts in base units: 1 RSC = 10^8 units, always checked.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::encoding::{Decode, DecodeError, DecodeResult, Encode, Reader};

/// Base units per coin.
pub const COIN: u64 = 100_000_000;

/// The money range: no output and no sum of outputs may exceed this
/// (21 billion RSC, far above any supply the subsidy schedule can reach).
pub const MAX_MONEY: u64 = 21_000_000_000 * COIN;

/// A non-negative amount of base units within the money range.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

/// An amount outside the money range, or arithmetic that left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct AmountError;

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(MAX_MONEY);

    /// `units` base units, if within the money range.
    pub const fn from_units(units: u64) -> Result<Amount, AmountError> {
        if units > MAX_MONEY {
            Err(AmountError)
        } else {
            Ok(Amount(units))
        }
    }

    /// Whole coins, if within the money range.
    pub fn from_coins(coins: u64) -> Result<Amount, AmountError> {
        coins
            .checked_mul(COIN)
            .ok_or(AmountError)
            .and_then(Amount::from_units)
    }

    pub const fn units(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(other.0)
            .ok_or(AmountError)
            .and_then(Amount::from_units)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(other.0).map(Amount).ok_or(AmountError)
    }

    /// Sum of amounts, failing if any partial sum leaves the money range.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(iter: I) -> Result<Amount, AmountError> {
        iter.into_iter()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
    }

    /// Parses a decimal coin amount such as `"1.5"` or `"0.00000001"`.
    pub fn parse_coins(s: &str) -> Result<Amount, AmountError> {
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty()
            || frac.len() > 8
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(AmountError);
        }
        let whole: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| AmountError)?
        };
        let mut frac_units: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            let digit = u64::from(b - b'0');
            frac_units = frac_units
                .checked_add(
                    digit
                        .checked_mul(10u64.pow(7 - i as u32))
                        .ok_or(AmountError)?,
                )
                .ok_or(AmountError)?;
        }
        whole
            .checked_mul(COIN)
            .and_then(|w| w.checked_add(frac_units))
            .ok_or(AmountError)
            .and_then(Amount::from_units)
    }

    /// The amount in coins as a float, for JSON display only.
    pub fn as_coins_f64(self) -> f64 {
        self.0 as f64 / COIN as f64
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:08}", self.0 / COIN, self.0 % COIN)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse_coins(s)
    }
}

impl Encode for Amount {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
    }
    fn encoded_size_hint(&self) -> usize {
        8
    }
}

impl Decode for Amount {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Amount::from_units(r.u64()?).map_err(|_| DecodeError::InvalidValue("amount"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn range_enforced() {
        assert!(Amount::from_units(MAX_MONEY).is_ok());
        assert!(Amount::from_units(MAX_MONEY + 1).is_err());
        assert!(Amount::MAX
            .checked_add(Amount::from_units(1).unwrap())
            .is_err());
        assert!(Amount::ZERO
            .checked_sub(Amount::from_units(1).unwrap())
            .is_err());
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(Amount::parse_coins("1.5").unwrap().units(), 150_000_000);
        assert_eq!(Amount::parse_coins("0.00000001").unwrap().units(), 1);
        assert_eq!(Amount::parse_coins(".5").unwrap().units(), 50_000_000);
        assert!(Amount::parse_coins("0.000000001").is_err());
        assert!(Amount::parse_coins("-1").is_err());
        assert!(Amount::parse_coins("").is_err());
        assert!(Amount::parse_coins("1e3").is_err());
        assert_eq!(
            Amount::from_units(150_000_001).unwrap().to_string(),
            "1.50000001"
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(u in 0..=MAX_MONEY) {
            let a = Amount::from_units(u).unwrap();
            prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
        }
    }
}
