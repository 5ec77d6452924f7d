//! PostgreSQL `numeric` → Arrow: which Arrow type a type modifier becomes, and the binary
//! wire value (base-10000 digit groups) as a scaled Decimal128 integer or exact text.
//!
//! Every legal modifier maps to a valid Arrow type: `numeric(p, s)` with `s > p`
//! (PostgreSQL 15+: values below 10^(p-s)) becomes Decimal128(s, s); a negative scale
//! (PostgreSQL 15+: values rounded to 10^-s) becomes Decimal128(p - s, 0); whatever needs
//! more than 38 digits becomes exact text. Values are never trusted to match their
//! column: every count, weight and digit read from the wire is checked.
use arrow::datatypes::{DataType, DECIMAL128_MAX_PRECISION};

use super::{DecodeResult, Reader};

/// Scale used for numeric columns declared without precision and scale.
pub const UNCONSTRAINED_NUMERIC_SCALE: i8 = 10;

/// PostgreSQL's `VARHDRSZ`, added to every numeric type modifier.
const VARHDRSZ: i32 = 4;

/// Precision and scale of a numeric column from its type modifier (`None`:
/// unconstrained). Precision is 1..=1000 and scale -1000..=1000 on PostgreSQL 15+.
pub fn numeric_precision_scale(typmod: i32) -> Option<(i32, i32)> {
    if typmod < VARHDRSZ {
        return None;
    }
    let m = typmod - VARHDRSZ;
    let p = (m >> 16) & 0xffff;
    // The scale is stored in the low 11 bits, sign-extended (negative since PG 15).
    let s = m & 0x7ff;
    let s = if s > 1023 { s - 2048 } else { s };
    Some((p, s))
}

/// The Arrow type of a numeric column: Decimal128 wide enough to hold every value the
/// modifier admits exactly, or exact decimal text when 38 digits are not enough.
pub fn numeric_type(typmod: i32) -> DataType {
    let Some((p, s)) = numeric_precision_scale(typmod) else {
        return DataType::Decimal128(DECIMAL128_MAX_PRECISION, UNCONSTRAINED_NUMERIC_SCALE);
    };
    // Digits needed: integer digits (p - s, at least 0) plus fraction digits (s, at
    // least 0). numeric(3, 5) holds 0.00999 at most: 5 digits, all fractional.
    // numeric(3, -2) holds 99900 at most: 5 digits, no fraction.
    let scale = s.max(0);
    let precision = (p - s).max(0) + scale;
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(p), Ok(s)) if (1..=DECIMAL128_MAX_PRECISION).contains(&p) => DataType::Decimal128(p, s),
        _ => DataType::Utf8,
    }
}

/// Sign word values of a binary numeric.
const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;

/// A binary numeric's header and base-10000 digit groups, checked.
struct Numeric {
    weight: i32,
    sign: u16,
    dscale: usize,
    digits: Vec<u16>,
}

impl Numeric {
    fn read(b: &[u8]) -> DecodeResult<Numeric> {
        let mut r = Reader(b);
        let ndigits = usize::try_from(r.i16()?).map_err(|_| "numeric digit count < 0")?;
        let weight = i32::from(r.i16()?);
        let sign = u16::from_be_bytes(r.i16()?.to_be_bytes());
        // PostgreSQL's display scale is 0..=0x3FFF; anything else is a corrupt value,
        // refused before it sizes a string.
        let dscale = usize::try_from(r.i16()?)
            .ok()
            .filter(|d| *d <= 0x3FFF)
            .ok_or("numeric display scale out of range")?;
        let digits = (0..ndigits)
            .map(|_| {
                u16::try_from(r.i16()?)
                    .ok()
                    .filter(|d| *d < 10_000)
                    .ok_or_else(|| "numeric digit group out of range".to_string())
            })
            .collect::<DecodeResult<Vec<u16>>>()?;
        Ok(Numeric {
            weight,
            sign,
            dscale,
            digits,
        })
    }

    /// The decimal digit at position 10^`exp`.
    fn digit(&self, exp: i32) -> u8 {
        // Group i covers 10^(4*(weight-i)) .. 10^(4*(weight-i)+3).
        let g = (self.weight * 4 + 3 - exp).div_euclid(4);
        let within = exp.rem_euclid(4);
        let group = usize::try_from(g)
            .ok()
            .and_then(|g| self.digits.get(g))
            .copied()
            .unwrap_or(0);
        // `within` is 0..=3, so the result is a single decimal digit.
        ((group / 10u16.pow(within.unsigned_abs())) % 10) as u8
    }

    /// The highest power of ten with a non-zero digit, if any.
    fn top_exp(&self) -> Option<i32> {
        let (i, g) = self.digits.iter().enumerate().find(|(_, g)| **g != 0)?;
        let i = i32::try_from(i).ok()?;
        let log = g.ilog10() as i32; // 0..=3
        Some(4 * (self.weight - i) + log)
    }
}

/// A binary numeric as an integer scaled by 10^scale, rounding half away from zero;
/// a value with `precision` or more digits after scaling is an error.
pub fn numeric_to_i128(b: &[u8], precision: u8, scale: i8) -> DecodeResult<i128> {
    let n = Numeric::read(b)?;
    match n.sign {
        POSITIVE | NEGATIVE => {}
        NAN => return Err("numeric NaN has no Decimal128 value".into()),
        _ => return Err("numeric infinity has no Decimal128 value".into()),
    }
    let overflow = || format!("numeric value does not fit Decimal128({precision}, {scale})");
    let scale = i32::from(scale);
    let mut v: i128 = 0;
    if let Some(top) = n.top_exp() {
        // More integer digits than the precision leaves room for: refuse before
        // walking them (a weight can claim 131072 digits).
        if top + scale >= i32::from(precision) {
            return Err(overflow());
        }
        for exp in (-scale..=top).rev() {
            v = v
                .checked_mul(10)
                .and_then(|x| x.checked_add(i128::from(n.digit(exp))))
                .ok_or_else(overflow)?;
        }
        if n.digit(-scale - 1) >= 5 {
            v = v.checked_add(1).ok_or_else(overflow)?;
        }
    }
    let limit = 10i128
        .checked_pow(u32::from(precision))
        .unwrap_or(i128::MAX);
    if v >= limit {
        return Err(overflow()); // rounding carried into a new digit
    }
    Ok(if n.sign == NEGATIVE { -v } else { v })
}

/// A binary numeric in exact decimal text (`NaN`, `Infinity`, `-Infinity` as such).
pub fn numeric_to_string(b: &[u8]) -> DecodeResult<String> {
    let n = Numeric::read(b)?;
    let sign = match n.sign {
        POSITIVE => "",
        NEGATIVE => "-",
        NAN => return Ok("NaN".into()),
        PINF => return Ok("Infinity".into()),
        NINF => return Ok("-Infinity".into()),
        _ => return Err("numeric sign word not recognised".into()),
    };
    let mut out = String::from(sign);
    match n.top_exp() {
        Some(top) if top >= 0 => {
            for exp in (0..=top).rev() {
                out.push(char::from(b'0' + n.digit(exp)));
            }
        }
        _ => out.push('0'),
    }
    if n.dscale > 0 {
        out.push('.');
        // dscale ≤ 0x3FFF, checked on read.
        for k in 1..=n.dscale as i32 {
            out.push(char::from(b'0' + n.digit(-k)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    fn typmod(p: i32, s: i32) -> i32 {
        ((p << 16) | (s & 0x7ff)) + VARHDRSZ
    }

    #[test]
    fn numeric_scales_and_rounds() {
        // 12345.6789 = [1, 2345, 6789], weight 1
        let b = numeric(1, 0, 4, &[1, 2345, 6789]);
        assert_eq!(numeric_to_i128(&b, 10, 4).unwrap(), 123_456_789);
        assert_eq!(numeric_to_i128(&b, 10, 2).unwrap(), 1_234_568);
        assert_eq!(numeric_to_i128(&b, 12, 6).unwrap(), 12_345_678_900);
        // -20000 = [2], weight 1 (trailing zero groups omitted)
        let b = numeric(1, 0x4000, 0, &[2]);
        assert_eq!(numeric_to_i128(&b, 10, 2).unwrap(), -2_000_000);
        assert!(numeric_to_i128(&b, 3, 0).is_err());
        assert!(numeric_to_i128(&numeric(0, 0xC000, 0, &[]), 10, 2).is_err());
        let b = numeric(1, 0x4000, 6, &[1, 2345, 6789]);
        assert_eq!(numeric_to_string(&b).unwrap(), "-12345.678900");
        let b = numeric(-1, 0, 3, &[500]);
        assert_eq!(numeric_to_string(&b).unwrap(), "0.050");
        assert_eq!(numeric_to_string(&numeric(0, 0, 0, &[])).unwrap(), "0");
    }

    #[test]
    fn far_digits_round_instead_of_overflowing() {
        // 1e-50 at scale 10 is 0, not an overflow; 0.5e-10 rounds up to 1e-10.
        assert_eq!(numeric_to_i128(&numeric(-13, 0, 52, &[1]), 38, 10), Ok(0));
        assert_eq!(numeric_to_i128(&numeric(-3, 0, 11, &[50]), 38, 10), Ok(1));
        // 1.000…(38 zeros)…1 rounds to 1 at scale 10 instead of overflowing i128.
        let mut groups = vec![1i16];
        groups.extend([0; 9]);
        groups.push(1);
        assert_eq!(
            numeric_to_i128(&numeric(0, 0, 40, &groups), 38, 10),
            Ok(10_000_000_000)
        );
        // 99.995 at scale 2 rounds to 100.00: five digits do not fit precision 4.
        let b = numeric(0, 0, 3, &[99, 9950]);
        assert!(numeric_to_i128(&b, 4, 2).is_err());
        assert_eq!(numeric_to_i128(&b, 5, 2), Ok(10_000));
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        assert!(numeric_to_string(&numeric(0, 0, -1, &[1])).is_err());
        assert!(numeric_to_string(&numeric(0, 0, 0, &[10_000])).is_err());
        assert!(numeric_to_string(&numeric(0, 0x1234, 0, &[1])).is_err());
        assert!(numeric_to_i128(&numeric(i16::MAX, 0, 0, &[1]), 38, 10).is_err());
        assert!(numeric_to_i128(&[0, 1], 38, 10).is_err());
        let mut short = numeric(0, 0, 0, &[1, 2]);
        short.truncate(10);
        assert!(numeric_to_string(&short).is_err());
    }

    #[test]
    fn every_typmod_maps_to_a_valid_arrow_type() {
        assert_eq!(numeric_precision_scale(typmod(10, 2)), Some((10, 2)));
        assert_eq!(numeric_precision_scale(typmod(3, -2)), Some((3, -2)));
        assert_eq!(
            numeric_precision_scale(typmod(1000, -1000)),
            Some((1000, -1000))
        );
        assert_eq!(numeric_precision_scale(-1), None);
        assert_eq!(numeric_type(-1), DataType::Decimal128(38, 10));
        assert_eq!(numeric_type(typmod(3, 5)), DataType::Decimal128(5, 5));
        assert_eq!(numeric_type(typmod(3, -2)), DataType::Decimal128(5, 0));
        assert_eq!(numeric_type(typmod(38, 38)), DataType::Decimal128(38, 38));
        assert_eq!(numeric_type(typmod(1, 38)), DataType::Decimal128(38, 38));
        assert_eq!(numeric_type(typmod(1, 39)), DataType::Utf8);
        assert_eq!(numeric_type(typmod(37, -2)), DataType::Utf8);
        // A precision above 255 must not wrap into a small u8.
        assert_eq!(numeric_type(typmod(257, 2)), DataType::Utf8);
        for p in 1..=1000 {
            for s in [-1000, -p, -1, 0, 1, p, p + 1, 1000] {
                if let DataType::Decimal128(p, s) = numeric_type(typmod(p, s)) {
                    arrow::datatypes::validate_decimal_precision_and_scale::<
                        arrow::datatypes::Decimal128Type,
                    >(p, s)
                    .unwrap();
                }
            }
        }
    }
}
