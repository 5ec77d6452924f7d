//! Bind parameters for SQL Server: each `Param` becomes a typed RPC parameter of
//! `sp_executesql` (`@P1`, `@P2`, …), never SQL text.
use super::convert::{DAYS_0001_TO_1970, MICROS_PER_DAY};
use dbpool_core::{Error, Param, Result};
use std::borrow::Cow;
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime2, Time};
use tiberius::{ColumnData, ToSql};

/// A parameter converted once, up front, so a bad value fails before anything runs.
#[derive(Debug)]
pub struct Bound(ColumnData<'static>);

impl ToSql for Bound {
    fn to_sql(&self) -> ColumnData<'_> {
        match &self.0 {
            ColumnData::String(Some(s)) => ColumnData::String(Some(Cow::Borrowed(s))),
            ColumnData::Binary(Some(b)) => ColumnData::Binary(Some(Cow::Borrowed(b))),
            other => other.clone(),
        }
    }
}

/// Converts the parameters; a bad one is INVALID_ARGUMENT naming `params[i]`.
pub fn bind(params: &[Param]) -> Result<Vec<Bound>> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            value(p)
                .map(Bound)
                .map_err(|m| Error::invalid(format!("params[{i}]"), m))
        })
        .collect()
}

/// References for tiberius's `query`/`execute`.
pub fn refs(bound: &[Bound]) -> Vec<&dyn ToSql> {
    bound.iter().map(|b| b as &dyn ToSql).collect()
}

fn value(p: &Param) -> Result<ColumnData<'static>, String> {
    Ok(match p {
        // nvarchar converts implicitly to every type but binary ones.
        Param::Null => ColumnData::String(None),
        Param::Bool(b) => ColumnData::Bit(Some(*b)),
        Param::Int64(v) => ColumnData::I64(Some(*v)),
        Param::Double(v) => ColumnData::F64(Some(*v)),
        Param::String(s) => ColumnData::String(Some(Cow::Owned(s.clone()))),
        Param::Bytes(b) => ColumnData::Binary(Some(Cow::Owned(b.clone()))),
        Param::TimestampMicros(us) => ColumnData::DateTime2(Some(datetime2(*us)?)),
        Param::Decimal(s) => ColumnData::Numeric(Some(numeric(s)?)),
    })
}

/// A UTC instant as datetime2(7).
pub fn datetime2(micros: i64) -> Result<DateTime2, String> {
    let days = micros.div_euclid(MICROS_PER_DAY) + DAYS_0001_TO_1970;
    if !(0..=3_652_058).contains(&days) {
        return Err(format!(
            "timestamp {micros} µs is outside datetime2's years 1..9999"
        ));
    }
    let ticks = micros.rem_euclid(MICROS_PER_DAY) as u64 * 10;
    Ok(DateTime2::new(Date::new(days as u32), Time::new(ticks, 7)))
}

/// Decimal text as a numeric of its own scale (at most 38 digits, scale < 38).
pub fn numeric(s: &str) -> Result<Numeric, String> {
    if !Param::validate_decimal(s) {
        return Err(format!("`{s}` is not a decimal number"));
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 || frac.len() >= 38 {
        return Err(format!("`{s}` has more than 38 digits"));
    }
    let v: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|e| format!("{e}"))?
    };
    Ok(Numeric::new_with_scale(
        if neg { -v } else { v },
        frac.len() as u8,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_timestamps() {
        let n = numeric("-12.340").unwrap();
        assert_eq!((n.value(), n.scale()), (-12340, 3));
        assert!(numeric("1e5").is_err());
        let d = datetime2(-1).unwrap();
        assert_eq!(d.date().days() as i64, DAYS_0001_TO_1970 - 1);
        assert_eq!(d.time().increments(), (MICROS_PER_DAY as u64 - 1) * 10);
        assert!(datetime2(i64::MIN / 2).is_err());
        let e = bind(&[Param::Int64(1), Param::Decimal("x".into())]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { field, .. } if field == "params[1]"));
    }
}
