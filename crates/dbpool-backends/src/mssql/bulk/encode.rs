//! Arrow values → the TDS values a bulk load sends, one variant per target column type.
//!
//! tiberius sends every writable column of the table and encodes a value only when its
//! variant (and a decimal's scale) matches the column exactly, yet keeps the column
//! types private. The column list it will send is read from the request's `Debug` form,
//! which is stable for the exact tiberius version the workspace pins.
use crate::mssql::convert::{DAYS_0001_TO_1970, DAYS_1900_TO_1970, MICROS_PER_DAY};
use arrow::array::{
    Array, AsArray, BinaryArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Result};
use std::borrow::Cow;
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
use tiberius::{ColumnData, TokenRow, Uuid};

/// The value form a column takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    Bit,
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// decimal/numeric of this scale.
    Numeric(u8),
    Str,
    Bin,
    Guid,
    Xml,
    Date,
    /// time of this scale.
    Time(u8),
    DateTime,
    SmallDateTime,
    /// datetime2 of this scale.
    DateTime2(u8),
    /// datetimeoffset of this scale.
    Offset(u8),
    /// A type the driver cannot bulk-load (money).
    Unsupported(&'static str),
}

/// One writable column, in the order the bulk load sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Col {
    pub name: String,
    pub enc: Enc,
}

/// The columns of a started bulk load.
pub fn columns_of(req: &impl std::fmt::Debug) -> Result<Vec<Col>> {
    let text = format!("{req:?}");
    let cols: Vec<Col> = text
        .split("MetaDataColumn { base:")
        .skip(1)
        .map(parse_col)
        .collect::<Option<_>>()
        .ok_or_else(|| Error::Internal("cannot read the bulk load's columns".into()))?;
    Ok(cols)
}

fn after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.find(key).map(|i| &s[i + key.len()..])
}

fn word(s: &str) -> &str {
    let end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    &s[..end]
}

fn num(s: &str, key: &str) -> Option<usize> {
    word(after(s, key)?).parse().ok()
}

fn parse_col(chunk: &str) -> Option<Col> {
    let name_at = after(chunk, "col_name: \"")?;
    let mut name = String::new();
    let mut chars = name_at.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?),
            '"' => break,
            c => name.push(c),
        }
    }
    let ty = after(chunk, "ty: ")?;
    let enc = if let Some(t) = after(ty, "FixedLen(") {
        match word(t) {
            "Int1" => Enc::U8,
            "Bit" => Enc::Bit,
            "Int2" => Enc::I16,
            "Int4" => Enc::I32,
            "Int8" => Enc::I64,
            "Float4" => Enc::F32,
            "Float8" => Enc::F64,
            "Datetime4" => Enc::SmallDateTime,
            "Datetime" => Enc::DateTime,
            _ => Enc::Unsupported("money"),
        }
    } else if ty.starts_with("VarLenSizedPrecision") {
        Enc::Numeric(num(ty, "scale: ")? as u8)
    } else if ty.starts_with("VarLenSized") {
        let t = word(after(ty, "type: ")?);
        let len = num(ty, "len: ")?;
        match (t, len) {
            ("Intn", 1) => Enc::U8,
            ("Intn", 2) => Enc::I16,
            ("Intn", 4) => Enc::I32,
            ("Intn", _) => Enc::I64,
            ("Bitn", _) => Enc::Bit,
            ("Floatn", 4) => Enc::F32,
            ("Floatn", _) => Enc::F64,
            ("Guid", _) => Enc::Guid,
            ("Datetimen", 4) => Enc::SmallDateTime,
            ("Datetimen", _) => Enc::DateTime,
            ("Daten", _) => Enc::Date,
            ("Timen", s) => Enc::Time(s as u8),
            ("Datetime2", s) => Enc::DateTime2(s as u8),
            ("DatetimeOffsetn", s) => Enc::Offset(s as u8),
            ("BigVarChar" | "BigChar" | "NVarchar" | "NChar" | "Text" | "NText", _) => Enc::Str,
            ("BigVarBin" | "BigBinary" | "Image", _) => Enc::Bin,
            ("Money", _) => Enc::Unsupported("money"),
            _ => Enc::Unsupported("this column type"),
        }
    } else if ty.starts_with("Xml") {
        Enc::Xml
    } else {
        Enc::Unsupported("this column type")
    };
    Some(Col { name, enc })
}

/// Which field (if any) feeds each column; checks every field against its column.
pub fn plan_fields(table: &str, schema: &Schema, cols: &[Col]) -> Result<Vec<Option<usize>>> {
    let mut slots = vec![None; cols.len()];
    for (fi, f) in schema.fields().iter().enumerate() {
        let ci = cols
            .iter()
            .position(|c| &c.name == f.name())
            .or_else(|| {
                cols.iter()
                    .position(|c| c.name.eq_ignore_ascii_case(f.name()))
            })
            .ok_or_else(|| {
                Error::invalid(
                    f.name(),
                    format!(
                        "table `{table}` has no writable column `{}` (identity and computed \
                         columns are generated by the server)",
                        f.name()
                    ),
                )
            })?;
        let enc = cols[ci].enc;
        if !accepts(f.data_type(), enc) {
            let why = match enc {
                Enc::Unsupported(what) => format!("the driver cannot bulk-load {what}"),
                _ => format!("Arrow type {} cannot be written into it", f.data_type()),
            };
            return Err(Error::invalid(
                f.name(),
                format!("column `{}`: {why}", cols[ci].name),
            ));
        }
        slots[ci] = Some(fi);
    }
    Ok(slots)
}

fn accepts(dt: &DataType, enc: Enc) -> bool {
    use DataType as A;
    use Enc as E;
    match (dt, enc) {
        (_, E::Unsupported(_)) => false,
        (A::Null, _) => true,
        (A::Boolean, E::Bit) => true,
        (A::Int16 | A::Int32 | A::Int64, E::U8 | E::I16 | E::I32 | E::I64 | E::F32 | E::F64) => {
            true
        }
        (A::Int16 | A::Int32 | A::Int64, E::Numeric(_)) => true,
        (A::Float32 | A::Float64, E::F32 | E::F64) => true,
        (A::Decimal128(..), E::Numeric(_)) => true,
        (A::Utf8, E::Str | E::Xml | E::Guid) => true,
        (A::Binary, E::Bin) => true,
        (A::Date32, E::Date) => true,
        (A::Time64(_), E::Time(_)) => true,
        (A::Timestamp(_, None), E::DateTime | E::SmallDateTime | E::DateTime2(_)) => true,
        (A::Timestamp(_, Some(_)), E::Offset(_) | E::DateTime2(_)) => true,
        _ => false,
    }
}

/// The TDS row for row `i` of `b`; `base` counts earlier rows (for error messages).
pub fn row(
    slots: &[Option<usize>],
    cols: &[Col],
    b: &RecordBatch,
    i: usize,
    base: usize,
) -> Result<TokenRow<'static>> {
    let mut r = TokenRow::with_capacity(cols.len());
    for (c, slot) in cols.iter().zip(slots) {
        let v = match slot {
            Some(fi) => value(b.column(*fi).as_ref(), i, c.enc)
                .map_err(|m| Error::invalid(&c.name, format!("row {}: {m}", base + i)))?,
            None => null(c.enc),
        };
        r.push(v);
    }
    Ok(r)
}

fn null(enc: Enc) -> ColumnData<'static> {
    use ColumnData as D;
    match enc {
        Enc::Bit => D::Bit(None),
        Enc::U8 => D::U8(None),
        Enc::I16 => D::I16(None),
        Enc::I32 => D::I32(None),
        Enc::I64 => D::I64(None),
        Enc::F32 => D::F32(None),
        Enc::F64 => D::F64(None),
        Enc::Numeric(_) => D::Numeric(None),
        Enc::Str | Enc::Unsupported(_) => D::String(None),
        Enc::Bin => D::Binary(None),
        Enc::Guid => D::Guid(None),
        Enc::Xml => D::Xml(None),
        Enc::Date => D::Date(None),
        Enc::Time(_) => D::Time(None),
        Enc::DateTime => D::DateTime(None),
        Enc::SmallDateTime => D::SmallDateTime(None),
        Enc::DateTime2(_) => D::DateTime2(None),
        Enc::Offset(_) => D::DateTimeOffset(None),
    }
}

fn value(a: &dyn Array, i: usize, enc: Enc) -> Result<ColumnData<'static>, String> {
    use ColumnData as D;
    if a.is_null(i) {
        return Ok(null(enc));
    }
    let range = |v: &dyn std::fmt::Display| format!("{v} is out of range for the column");
    Ok(match a.data_type() {
        DataType::Boolean => D::Bit(Some(a.as_boolean().value(i))),
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let v = int(a, i);
            match enc {
                Enc::U8 => D::U8(Some(u8::try_from(v).map_err(|_| range(&v))?)),
                Enc::I16 => D::I16(Some(i16::try_from(v).map_err(|_| range(&v))?)),
                Enc::I32 => D::I32(Some(i32::try_from(v).map_err(|_| range(&v))?)),
                Enc::I64 => D::I64(Some(v)),
                Enc::F32 => D::F32(Some(v as f32)),
                Enc::F64 => D::F64(Some(v as f64)),
                Enc::Numeric(s) => D::Numeric(Some(scaled(v as i128, 0, s)?)),
                _ => unreachable!("checked by accepts"),
            }
        }
        DataType::Float32 | DataType::Float64 => {
            let v = match a.as_any().downcast_ref::<Float32Array>() {
                Some(f) => f.value(i) as f64,
                None => a
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .expect("f64")
                    .value(i),
            };
            if enc == Enc::F32 {
                D::F32(Some(v as f32))
            } else {
                D::F64(Some(v))
            }
        }
        DataType::Decimal128(_, s) => {
            let v = a
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .expect("dec")
                .value(i);
            let Enc::Numeric(to) = enc else {
                unreachable!("checked by accepts")
            };
            D::Numeric(Some(scaled(v, *s, to)?))
        }
        DataType::Utf8 => {
            let s = a
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .value(i);
            match enc {
                Enc::Guid => D::Guid(Some(Uuid::parse_str(s).map_err(|e| format!("`{s}`: {e}"))?)),
                Enc::Xml => D::Xml(Some(Cow::Owned(tiberius::xml::XmlData::new(s)))),
                _ => D::String(Some(Cow::Owned(s.to_string()))),
            }
        }
        DataType::Binary => {
            let v = a
                .as_any()
                .downcast_ref::<BinaryArray>()
                .expect("bin")
                .value(i);
            D::Binary(Some(Cow::Owned(v.to_vec())))
        }
        DataType::Date32 => {
            let d = a
                .as_any()
                .downcast_ref::<Date32Array>()
                .expect("date")
                .value(i) as i64;
            D::Date(Some(date(d + DAYS_0001_TO_1970)?))
        }
        DataType::Time64(_) => {
            let us = a
                .as_any()
                .downcast_ref::<Time64MicrosecondArray>()
                .expect("time")
                .value(i);
            let Enc::Time(s) = enc else {
                unreachable!("checked by accepts")
            };
            D::Time(Some(time(us * 1000, s)))
        }
        DataType::Timestamp(..) => {
            let us = a
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .expect("ts")
                .value(i);
            timestamp(us, enc)?
        }
        other => return Err(format!("Arrow type {other} cannot be bulk-loaded")),
    })
}

fn int(a: &dyn Array, i: usize) -> i64 {
    let any = a.as_any();
    if let Some(x) = any.downcast_ref::<Int16Array>() {
        return x.value(i) as i64;
    }
    if let Some(x) = any.downcast_ref::<Int32Array>() {
        return x.value(i) as i64;
    }
    any.downcast_ref::<Int64Array>().expect("int").value(i)
}

/// `v` × 10^-`from` as a numeric of scale `to`, when exact.
fn scaled(v: i128, from: i8, to: u8) -> Result<Numeric, String> {
    let (from, to32) = (from as i32, to as i32);
    let v = if to32 >= from {
        v.checked_mul(10i128.pow((to32 - from) as u32))
            .ok_or("decimal value out of range")?
    } else {
        let d = 10i128.pow((from - to32) as u32);
        if v % d != 0 {
            return Err(format!("has more than the column's {to} decimal places"));
        }
        v / d
    };
    if v.unsigned_abs() >= 10u128.pow(38) {
        return Err("decimal value out of range".into());
    }
    Ok(Numeric::new_with_scale(v, to))
}

fn date(days: i64) -> Result<Date, String> {
    u32::try_from(days)
        .ok()
        .filter(|d| *d <= 3_652_058)
        .map(Date::new)
        .ok_or_else(|| "date outside years 1..9999".to_string())
}

fn time(nanos: i64, scale: u8) -> Time {
    Time::new((nanos / 10i64.pow(9 - scale as u32)) as u64, scale)
}

fn timestamp(us: i64, enc: Enc) -> Result<ColumnData<'static>, String> {
    let days = us.div_euclid(MICROS_PER_DAY);
    let tod = us.rem_euclid(MICROS_PER_DAY);
    Ok(match enc {
        Enc::DateTime2(s) | Enc::Offset(s) => {
            let d2 = DateTime2::new(date(days + DAYS_0001_TO_1970)?, time(tod * 1000, s));
            if let Enc::Offset(_) = enc {
                ColumnData::DateTimeOffset(Some(DateTimeOffset::new(d2, 0)))
            } else {
                ColumnData::DateTime2(Some(d2))
            }
        }
        Enc::DateTime => {
            let d = i32::try_from(days + DAYS_1900_TO_1970)
                .map_err(|_| "timestamp outside datetime's range".to_string())?;
            // 1/300 s ticks, rounded; a round-up to midnight moves to the next day.
            let ticks = (tod * 3 + 5_000) / 10_000;
            let (d, ticks) = if ticks >= 25_920_000 {
                (d + 1, 0)
            } else {
                (d, ticks)
            };
            ColumnData::DateTime(Some(DateTime::new(d, ticks as u32)))
        }
        Enc::SmallDateTime => {
            let d = u16::try_from(days + DAYS_1900_TO_1970)
                .map_err(|_| "timestamp outside smalldatetime's range".to_string())?;
            let minutes = (tod + 30_000_000) / 60_000_000;
            let (d, minutes) = if minutes >= 1440 {
                (d + 1, 0)
            } else {
                (d, minutes)
            };
            ColumnData::SmallDateTime(Some(SmallDateTime::new(d, minutes as u16)))
        }
        _ => unreachable!("checked by accepts"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_from_debug_text() {
        let text = r#"BulkLoadRequest { connection: Connection, packet_id: 3, buf: [], columns: [MetaDataColumn { base: BaseMetaDataColumn { flags: BitFlags<ColumnFlag>(0b1001, Nullable | Updateable), ty: VarLenSized(VarLenContext { type: Intn, len: 4, collation: None }) }, col_name: "id" }, MetaDataColumn { base: BaseMetaDataColumn { flags: BitFlags<ColumnFlag>(0b1001), ty: VarLenSizedPrecision { ty: Decimaln, size: 9, precision: 10, scale: 2 } }, col_name: "a\"b" }, MetaDataColumn { base: BaseMetaDataColumn { flags: BitFlags<ColumnFlag>(0b1000), ty: FixedLen(Money) }, col_name: "m" }] }"#;
        let cols = columns_of(&Raw(text)).unwrap();
        assert_eq!(
            cols[0],
            Col {
                name: "id".into(),
                enc: Enc::I32
            }
        );
        assert_eq!(
            cols[1],
            Col {
                name: "a\"b".into(),
                enc: Enc::Numeric(2)
            }
        );
        assert!(matches!(cols[2].enc, Enc::Unsupported(_)));
    }

    struct Raw(&'static str);
    impl std::fmt::Debug for Raw {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    #[test]
    fn values_are_rescaled_exactly() {
        assert_eq!(scaled(1234, 2, 4).unwrap().value(), 123_400);
        assert!(scaled(1234, 2, 1).is_err());
        // 1970-01-01 00:00:00.003333 → one datetime tick (1/300 s).
        let v = timestamp(3_333, Enc::DateTime).unwrap();
        assert_eq!(v, ColumnData::DateTime(Some(DateTime::new(25_567, 1))));
    }
}
