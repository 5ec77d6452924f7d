//! SQL Server values → Arrow. A column's Arrow type comes from its TDS type; decimals
//! take their scale from the first batch, since tiberius does not expose the declared
//! precision and scale (docs/types.md, "SQL Server → Arrow").
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, NullArray, StringBuilder,
    Time64NanosecondBuilder, TimestampMicrosecondBuilder, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;
use tiberius::{Column, ColumnData, ColumnType, Row};

/// Days from 0001-01-01 (TDS `date`) to 1970-01-01.
pub(crate) const DAYS_0001_TO_1970: i64 = 719_162;
/// Days from 1900-01-01 (TDS `datetime`) to 1970-01-01.
pub(crate) const DAYS_1900_TO_1970: i64 = 25_567;
pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How a column is read: one variant per Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only NULLs can arrive (an untyped NULL column).
    Null,
    /// bit
    Bool,
    /// tinyint (unsigned in SQL Server).
    UInt8,
    /// smallint
    Int16,
    /// int
    Int32,
    /// bigint, or an integer of unknown width.
    Int64,
    /// real
    Float32,
    /// float
    Float64,
    /// decimal/numeric with this scale; money (19, 4) and smallmoney (10, 4).
    Decimal(u8, i8),
    /// Every text type, xml and uniqueidentifier.
    Utf8,
    /// binary, varbinary, image, CLR types.
    Binary,
    /// date
    Date,
    /// time (100 ns ticks fit nanoseconds exactly).
    Time,
    /// datetime, smalldatetime, datetime2.
    Timestamp,
    /// datetimeoffset, as the UTC instant.
    TimestampUtc,
}

impl Kind {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Null => DataType::Null,
            Kind::Bool => DataType::Boolean,
            Kind::UInt8 => DataType::UInt8,
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Decimal(p, s) => DataType::Decimal128(p, s),
            Kind::Utf8 => DataType::Utf8,
            Kind::Binary => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Nanosecond),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampUtc => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The kind of a column; `first` yields the column's non-NULL values of the first
    /// batch, which settle the scale of decimals (0 when there are none).
    pub fn of<'a>(
        ty: ColumnType,
        mut first: impl Iterator<Item = &'a ColumnData<'static>>,
    ) -> Kind {
        use ColumnType as T;
        match ty {
            T::Null => Kind::Null,
            T::Bit | T::Bitn => Kind::Bool,
            T::Int1 => Kind::UInt8,
            T::Int2 => Kind::Int16,
            T::Int4 => Kind::Int32,
            T::Int8 | T::Intn => Kind::Int64,
            T::Float4 => Kind::Float32,
            T::Float8 | T::Floatn => Kind::Float64,
            T::Money => Kind::Decimal(19, 4),
            T::Money4 => Kind::Decimal(10, 4),
            T::Decimaln | T::Numericn => {
                let scale = first
                    .find_map(|v| match v {
                        ColumnData::Numeric(Some(n)) => Some(n.scale()),
                        _ => None,
                    })
                    .unwrap_or(0);
                Kind::Decimal(38, scale as i8)
            }
            T::Guid
            | T::BigVarChar
            | T::BigChar
            | T::NVarchar
            | T::NChar
            | T::Xml
            | T::Text
            | T::NText
            | T::SSVariant => Kind::Utf8,
            T::BigVarBin | T::BigBinary | T::Image | T::Udt => Kind::Binary,
            T::Daten => Kind::Date,
            T::Timen => Kind::Time,
            T::Datetime4 | T::Datetime | T::Datetimen | T::Datetime2 => Kind::Timestamp,
            T::DatetimeOffsetn => Kind::TimestampUtc,
        }
    }
}

/// The kinds and Arrow schema of a result set from its columns and first rows.
pub fn plan(columns: &[Column], first: &[Row]) -> (Vec<Kind>, SchemaRef) {
    let kinds: Vec<Kind> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let values = first
                .iter()
                .filter_map(move |r| r.cells().nth(i).map(|c| c.1));
            Kind::of(c.column_type(), values)
        })
        .collect();
    let fields: Vec<Field> = columns
        .iter()
        .zip(&kinds)
        .map(|(c, k)| Field::new(c.name(), k.data_type(), true))
        .collect();
    (kinds, Arc::new(Schema::new(fields)))
}

/// Appends the values of one column to an Arrow builder of its kind.
pub enum Decoder {
    /// Counts NULLs.
    Null(usize),
    /// Boolean.
    Bool(BooleanBuilder),
    /// UInt8.
    UInt8(UInt8Builder),
    /// Int16.
    Int16(Int16Builder),
    /// Int32.
    Int32(Int32Builder),
    /// Int64.
    Int64(Int64Builder),
    /// Float32.
    Float32(Float32Builder),
    /// Float64.
    Float64(Float64Builder),
    /// Decimal128 of this precision and scale.
    Decimal(Decimal128Builder, u8, i8),
    /// Utf8.
    Utf8(StringBuilder),
    /// Binary.
    Binary(BinaryBuilder),
    /// Date32.
    Date(Date32Builder),
    /// Time64(ns).
    Time(Time64NanosecondBuilder),
    /// Timestamp(µs), with or without the UTC zone.
    Timestamp(TimestampMicrosecondBuilder, bool),
}

impl Decoder {
    /// A decoder for `kind` with room for `capacity` rows.
    pub fn new(kind: Kind, capacity: usize) -> Decoder {
        match kind {
            Kind::Null => Decoder::Null(0),
            Kind::Bool => Decoder::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::UInt8 => Decoder::UInt8(UInt8Builder::with_capacity(capacity)),
            Kind::Int16 => Decoder::Int16(Int16Builder::with_capacity(capacity)),
            Kind::Int32 => Decoder::Int32(Int32Builder::with_capacity(capacity)),
            Kind::Int64 => Decoder::Int64(Int64Builder::with_capacity(capacity)),
            Kind::Float32 => Decoder::Float32(Float32Builder::with_capacity(capacity)),
            Kind::Float64 => Decoder::Float64(Float64Builder::with_capacity(capacity)),
            Kind::Decimal(p, s) => {
                Decoder::Decimal(Decimal128Builder::with_capacity(capacity), p, s)
            }
            Kind::Utf8 => Decoder::Utf8(StringBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Binary => Decoder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Date => Decoder::Date(Date32Builder::with_capacity(capacity)),
            Kind::Time => Decoder::Time(Time64NanosecondBuilder::with_capacity(capacity)),
            Kind::Timestamp => {
                Decoder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), false)
            }
            Kind::TimestampUtc => {
                Decoder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), true)
            }
        }
    }

    /// Appends one value; a value of a type the column does not hold is an error.
    pub fn append(&mut self, v: ColumnData<'static>) -> Result<(), String> {
        use ColumnData as D;
        let mismatch = |v: &D<'_>| format!("unexpected value {v:?}");
        match self {
            Decoder::Null(n) => match v {
                _ if is_null(&v) => *n += 1,
                other => return Err(mismatch(&other)),
            },
            Decoder::Bool(b) => match v {
                D::Bit(x) => b.append_option(x),
                other => return Err(mismatch(&other)),
            },
            Decoder::UInt8(b) => match v {
                D::U8(x) => b.append_option(x),
                other => return Err(mismatch(&other)),
            },
            Decoder::Int16(b) => match v {
                D::I16(x) => b.append_option(x),
                D::U8(x) => b.append_option(x.map(i16::from)),
                other => return Err(mismatch(&other)),
            },
            Decoder::Int32(b) => match v {
                D::I32(x) => b.append_option(x),
                D::I16(x) => b.append_option(x.map(i32::from)),
                D::U8(x) => b.append_option(x.map(i32::from)),
                other => return Err(mismatch(&other)),
            },
            Decoder::Int64(b) => match v {
                D::I64(x) => b.append_option(x),
                D::I32(x) => b.append_option(x.map(i64::from)),
                D::I16(x) => b.append_option(x.map(i64::from)),
                D::U8(x) => b.append_option(x.map(i64::from)),
                other => return Err(mismatch(&other)),
            },
            Decoder::Float32(b) => match v {
                D::F32(x) => b.append_option(x),
                other => return Err(mismatch(&other)),
            },
            Decoder::Float64(b) => match v {
                D::F64(x) => b.append_option(x),
                D::F32(x) => b.append_option(x.map(f64::from)),
                other => return Err(mismatch(&other)),
            },
            Decoder::Decimal(b, _, scale) => match v {
                D::Numeric(None) | D::F64(None) => b.append_null(),
                D::Numeric(Some(n)) => b.append_value(rescale(n.value(), n.scale(), *scale)?),
                // money: tiberius hands it over as f64 of the exact 4-decimal value.
                D::F64(Some(f)) => b.append_value(money(f)?),
                other => return Err(mismatch(&other)),
            },
            Decoder::Utf8(b) => match text(v) {
                Ok(s) => b.append_option(s),
                Err(other) => return Err(mismatch(&other)),
            },
            Decoder::Binary(b) => match v {
                D::Binary(x) => b.append_option(x),
                other if is_null(&other) => b.append_null(),
                other => return Err(mismatch(&other)),
            },
            Decoder::Date(b) => match v {
                D::Date(x) => {
                    b.append_option(x.map(|d| (d.days() as i64 - DAYS_0001_TO_1970) as i32))
                }
                other => return Err(mismatch(&other)),
            },
            Decoder::Time(b) => match v {
                D::Time(x) => b.append_option(x.map(|t| time_nanos(t.increments(), t.scale()))),
                other => return Err(mismatch(&other)),
            },
            Decoder::Timestamp(b, _) => match timestamp_micros(&v) {
                Some(x) => b.append_option(x),
                None => return Err(mismatch(&v)),
            },
        }
        Ok(())
    }

    /// The column built so far; the decoder starts over empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Decoder::Null(n) => Arc::new(NullArray::new(std::mem::take(n))),
            Decoder::Bool(b) => Arc::new(b.finish()),
            Decoder::UInt8(b) => Arc::new(b.finish()),
            Decoder::Int16(b) => Arc::new(b.finish()),
            Decoder::Int32(b) => Arc::new(b.finish()),
            Decoder::Int64(b) => Arc::new(b.finish()),
            Decoder::Float32(b) => Arc::new(b.finish()),
            Decoder::Float64(b) => Arc::new(b.finish()),
            Decoder::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale checked in Kind::of"),
            ),
            Decoder::Utf8(b) => Arc::new(b.finish()),
            Decoder::Binary(b) => Arc::new(b.finish()),
            Decoder::Date(b) => Arc::new(b.finish()),
            Decoder::Time(b) => Arc::new(b.finish()),
            Decoder::Timestamp(b, utc) => {
                let a = b.finish();
                Arc::new(if *utc { a.with_timezone("UTC") } else { a })
            }
        }
    }
}

fn is_null(v: &ColumnData<'_>) -> bool {
    use ColumnData as D;
    match v {
        D::U8(x) => x.is_none(),
        D::I16(x) => x.is_none(),
        D::I32(x) => x.is_none(),
        D::I64(x) => x.is_none(),
        D::F32(x) => x.is_none(),
        D::F64(x) => x.is_none(),
        D::Bit(x) => x.is_none(),
        D::String(x) => x.is_none(),
        D::Guid(x) => x.is_none(),
        D::Binary(x) => x.is_none(),
        D::Numeric(x) => x.is_none(),
        D::Xml(x) => x.is_none(),
        D::DateTime(x) => x.is_none(),
        D::SmallDateTime(x) => x.is_none(),
        D::Time(x) => x.is_none(),
        D::Date(x) => x.is_none(),
        D::DateTime2(x) => x.is_none(),
        D::DateTimeOffset(x) => x.is_none(),
    }
}

/// Text columns: strings, XML documents and GUIDs (upper case, as SQL Server prints them).
fn text(v: ColumnData<'static>) -> Result<Option<String>, ColumnData<'static>> {
    Ok(match v {
        ColumnData::String(s) => s.map(|s| s.into_owned()),
        ColumnData::Xml(x) => x.map(|x| x.to_string()),
        ColumnData::Guid(g) => g.map(|g| g.to_string().to_ascii_uppercase()),
        other if is_null(&other) => None,
        other => return Err(other),
    })
}

/// `value` × 10^-`from` as an integer of scale `to`, when that is exact.
fn rescale(value: i128, from: u8, to: i8) -> Result<i128, String> {
    let to = to.max(0) as u8;
    if from == to {
        return Ok(value);
    }
    if from < to {
        return value
            .checked_mul(10i128.pow((to - from) as u32))
            .ok_or_else(|| "decimal value out of range".to_string());
    }
    let div = 10i128.pow((from - to) as u32);
    if value % div != 0 {
        return Err(format!(
            "a decimal of scale {from} in a column read with scale {to} (the first batch \
             had no value of this column); cast it in SQL"
        ));
    }
    Ok(value / div)
}

/// A money value (exact in 4 decimals, carried as f64 by the driver) as scaled integer.
fn money(f: f64) -> Result<i128, String> {
    let scaled = (f * 10_000.0).round();
    // Beyond 2^53 / 10^4 the f64 the driver made may have lost the last digit.
    if !scaled.is_finite() || scaled.abs() >= 9_007_199_254_740_992.0 {
        return Err(format!(
            "money value {f} is beyond the exact range of the driver; cast it to decimal(19, 4)"
        ));
    }
    Ok(scaled as i128)
}

fn time_nanos(increments: u64, scale: u8) -> i64 {
    increments as i64 * 10i64.pow(9u32.saturating_sub(scale as u32))
}

/// Microseconds since the Unix epoch of any TDS date-time value; `Some(None)` for NULL,
/// `None` for a value that is no date-time. datetimeoffset is stored in UTC already.
pub(crate) fn timestamp_micros(v: &ColumnData<'_>) -> Option<Option<i64>> {
    use ColumnData as D;
    Some(match v {
        D::DateTime(x) => x.map(|d| {
            // 1/300 s ticks, rounded to the nearest microsecond.
            let frac = (d.seconds_fragments() as i64 * 10_000 + 1) / 3;
            (d.days() as i64 - DAYS_1900_TO_1970) * MICROS_PER_DAY + frac
        }),
        D::SmallDateTime(x) => x.map(|d| {
            (d.days() as i64 - DAYS_1900_TO_1970) * MICROS_PER_DAY
                + d.seconds_fragments() as i64 * 60_000_000
        }),
        D::DateTime2(x) => x.map(|d| {
            (d.date().days() as i64 - DAYS_0001_TO_1970) * MICROS_PER_DAY
                + time_nanos(d.time().increments(), d.time().scale()) / 1000
        }),
        D::DateTimeOffset(x) => x.map(|d| {
            let d = d.datetime2();
            (d.date().days() as i64 - DAYS_0001_TO_1970) * MICROS_PER_DAY
                + time_nanos(d.time().increments(), d.time().scale()) / 1000
        }),
        other if is_null(other) => None,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Decimal128Array, TimestampMicrosecondArray};
    use tiberius::numeric::Numeric;
    use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, Time};

    #[test]
    fn decimals_keep_their_scale() {
        let mut d = Decoder::new(Kind::Decimal(38, 2), 4);
        d.append(ColumnData::Numeric(Some(Numeric::new_with_scale(-1234, 2))))
            .unwrap();
        d.append(ColumnData::Numeric(None)).unwrap();
        let a = d.finish();
        let a = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(a.value_as_string(0), "-12.34");
        assert!(a.is_null(1));
        assert_eq!(rescale(1200, 2, 0), Ok(12));
        assert!(rescale(1234, 2, 0).is_err());
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(money(922_337_203.685_4), Ok(9_223_372_036_854));
        assert_eq!(money(-0.0001), Ok(-1));
        assert!(money(922_337_203_685_477.6).is_err());
    }

    #[test]
    fn date_times() {
        // 1970-01-02 00:00:00.003 (one 1/300 s tick is 3.33 ms).
        let dt = ColumnData::DateTime(Some(DateTime::new(25_568, 1)));
        assert_eq!(timestamp_micros(&dt), Some(Some(MICROS_PER_DAY + 3333)));
        // datetime2(7) 1970-01-01 00:00:00.1234567 → truncated to µs.
        let d2 = DateTime2::new(Date::new(719_162), Time::new(1_234_567, 7));
        assert_eq!(
            timestamp_micros(&ColumnData::DateTime2(Some(d2))),
            Some(Some(123_456))
        );
        // The datetimeoffset's date and time are UTC already; the offset is display only.
        let dto = DateTimeOffset::new(d2, -300);
        assert_eq!(
            timestamp_micros(&ColumnData::DateTimeOffset(Some(dto))),
            Some(Some(123_456))
        );
        let mut t = Decoder::new(Kind::TimestampUtc, 1);
        t.append(ColumnData::DateTimeOffset(Some(dto))).unwrap();
        let a = t.finish();
        let a = a
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(a.timezone(), Some("UTC"));
        assert_eq!(time_nanos(1_234_567, 7), 123_456_700);
    }
}
