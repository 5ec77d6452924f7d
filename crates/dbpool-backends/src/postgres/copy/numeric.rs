//! Decimal values → PostgreSQL's binary `numeric`: base-10000 digit groups, a weight, a
//! sign and the display scale, from digits (Decimal128, integers) or decimal text.
use bytes::{BufMut, BytesMut};

type EncResult<T = ()> = std::result::Result<T, String>;

/// A numeric from its digits: `int` and `frac` are ASCII decimal digits, the scale is
/// `frac.len()`. PostgreSQL rounds to the column's scale and checks its precision.
pub fn put_numeric(out: &mut BytesMut, negative: bool, int: &str, frac: &str) -> EncResult {
    let int = int.trim_start_matches('0');
    let dscale = i16::try_from(frac.len()).map_err(|_| "numeric scale too large".to_string())?;
    // Base-10000 digit groups, aligned at the decimal point.
    let ipad = (4 - int.len() % 4) % 4;
    let fpad = (4 - frac.len() % 4) % 4;
    let digits: Vec<u8> = std::iter::repeat_n(b'0', ipad)
        .chain(int.bytes())
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', fpad))
        .collect();
    let mut groups: Vec<i16> = digits
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + (d - b'0') as i16))
        .collect();
    let mut weight = ((ipad + int.len()) / 4) as i64 - 1;
    let lead = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..lead);
    weight -= lead as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let ndigits = i16::try_from(groups.len()).map_err(|_| "numeric too long".to_string())?;
    let weight = i16::try_from(weight).map_err(|_| "numeric out of range".to_string())?;
    out.put_i16(ndigits);
    out.put_i16(weight);
    out.put_u16(if negative && ndigits > 0 { 0x4000 } else { 0 });
    out.put_i16(dscale);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// A numeric from decimal text: `-12.5`, `1e3`, `NaN`, `Infinity`.
pub fn put_numeric_text(out: &mut BytesMut, text: &str) -> EncResult {
    let t = text.trim();
    let special = match t.to_ascii_lowercase().as_str() {
        "nan" => Some(0xC000u16),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(0xD000),
        "-infinity" | "-inf" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_i16(0);
        return Ok(());
    }
    let bad = || format!("`{text}` is not a decimal number");
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    if exp.unsigned_abs() > 100_000 {
        return Err(format!("`{text}`: exponent out of range"));
    }
    let (mut int, mut frac) = (int.to_string(), frac.to_string());
    if exp > 0 {
        let k = exp as usize;
        if frac.len() < k {
            frac.push_str(&"0".repeat(k - frac.len()));
        }
        int.push_str(&frac[..k]);
        frac.drain(..k);
    } else if exp < 0 {
        let k = exp.unsigned_abs() as usize;
        if int.len() < k {
            int.insert_str(0, &"0".repeat(k - int.len()));
        }
        frac.insert_str(0, &int[int.len() - k..]);
        int.truncate(int.len() - k);
    }
    put_numeric(out, negative, &int, &frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::convert::numeric_to_string;

    fn text(s: &str) -> String {
        let mut b = BytesMut::new();
        put_numeric_text(&mut b, s).unwrap();
        numeric_to_string(&b).unwrap()
    }

    #[test]
    fn numeric_text_round_trips() {
        assert_eq!(text("12345.6789"), "12345.6789");
        assert_eq!(text("-0.050"), "-0.050");
        assert_eq!(text("0"), "0");
        assert_eq!(text("-0.00"), "0.00");
        assert_eq!(text("100000000"), "100000000");
        assert_eq!(text("1.5e3"), "1500");
        assert_eq!(text("15e-3"), "0.015");
        assert_eq!(text(".5"), "0.5");
        assert_eq!(text("NaN"), "NaN");
        assert_eq!(text("-Infinity"), "-Infinity");
        assert!(put_numeric_text(&mut BytesMut::new(), "1.2.3").is_err());
        assert!(put_numeric_text(&mut BytesMut::new(), "").is_err());
        assert!(put_numeric_text(&mut BytesMut::new(), "-").is_err());
    }
}
