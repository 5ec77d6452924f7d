//! PostgreSQL binary wire values → Arrow arrays. The mapping is documented in
//! docs/types.md; every decoder reads the raw binary format directly.
use arrow::array::NullBufferBuilder;
use arrow::array::*;
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use postgres_types::{Kind, Type};
use std::sync::Arc;

mod numeric;
pub use numeric::{numeric_to_i128, numeric_to_string, numeric_type};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_DAYS: i32 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Decodes one column of raw binary values into an Arrow array.
pub enum Decoder {
    /// bool
    Bool(BooleanBuilder),
    /// int2
    I16(Int16Builder),
    /// int4
    I32(Int32Builder),
    /// int8, oid
    I64(Int64Builder, bool),
    /// float4
    F32(Float32Builder),
    /// float8
    F64(Float64Builder),
    /// numeric(p, s)
    Decimal(Decimal128Builder, u8, i8),
    /// text-like; the flag strips jsonb's version byte
    Utf8(StringBuilder, bool),
    /// uuid as canonical text
    Uuid(StringBuilder),
    /// numeric wider than Decimal128, as exact text
    NumericText(StringBuilder),
    /// bytea and types without a dedicated decoder
    Binary(BinaryBuilder),
    /// date
    Date(Date32Builder),
    /// time, timetz (normalised to UTC)
    Time(Time64MicrosecondBuilder, bool),
    /// timestamp, timestamptz
    Timestamp(TimestampMicrosecondBuilder),
    /// interval
    Interval(DurationMicrosecondBuilder),
    /// one-dimensional arrays (several dimensions are flattened)
    List(Box<ListDecoder>),
}

/// Offsets, validity and the element decoder of an array column.
pub struct ListDecoder {
    field: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    child: Decoder,
}

/// A decoded value, or why the bytes are not one.
pub type DecodeResult<T = ()> = std::result::Result<T, String>;

/// The Arrow type a PostgreSQL column becomes.
pub fn arrow_type(ty: &Type, typmod: i32) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 | Type::OID => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => numeric_type(typmod),
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::CHAR
        | Type::UNKNOWN
        | Type::JSON
        | Type::JSONB
        | Type::UUID
        | Type::XML => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIME | Type::TIMETZ => DataType::Time64(TimeUnit::Microsecond),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::INTERVAL => DataType::Duration(TimeUnit::Microsecond),
        _ => match ty.kind() {
            Kind::Enum(_) => DataType::Utf8,
            Kind::Domain(base) => arrow_type(base, typmod),
            Kind::Array(elem) => {
                DataType::List(Arc::new(Field::new("item", arrow_type(elem, typmod), true)))
            }
            _ => DataType::Binary,
        },
    }
}

impl Decoder {
    /// A decoder for a column of this type, with room for `capacity` rows.
    pub fn new(ty: &Type, typmod: i32, capacity: usize) -> DecodeResult<Self> {
        let dt = arrow_type(ty, typmod);
        Self::for_type(ty, &dt, capacity)
    }

    fn for_type(ty: &Type, dt: &DataType, cap: usize) -> DecodeResult<Self> {
        Ok(match (dt, ty) {
            (DataType::Boolean, _) => Decoder::Bool(BooleanBuilder::with_capacity(cap)),
            (DataType::Int16, _) => Decoder::I16(Int16Builder::with_capacity(cap)),
            (DataType::Int32, _) => Decoder::I32(Int32Builder::with_capacity(cap)),
            (DataType::Int64, t) => Decoder::I64(Int64Builder::with_capacity(cap), *t == Type::OID),
            (DataType::Float32, _) => Decoder::F32(Float32Builder::with_capacity(cap)),
            (DataType::Float64, _) => Decoder::F64(Float64Builder::with_capacity(cap)),
            (DataType::Decimal128(p, s), _) => Decoder::Decimal(
                Decimal128Builder::with_capacity(cap)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| e.to_string())?,
                *p,
                *s,
            ),
            (DataType::Utf8, t) if *t == Type::UUID => {
                Decoder::Uuid(StringBuilder::with_capacity(cap, cap * 36))
            }
            (DataType::Utf8, t) if *t == Type::NUMERIC => {
                // numeric wider than Decimal128: exact text instead.
                Decoder::NumericText(StringBuilder::with_capacity(cap, cap * 16))
            }
            (DataType::Utf8, t) => Decoder::Utf8(
                StringBuilder::with_capacity(cap, cap * 16),
                *t == Type::JSONB,
            ),
            (DataType::Date32, _) => Decoder::Date(Date32Builder::with_capacity(cap)),
            (DataType::Time64(_), t) => Decoder::Time(
                Time64MicrosecondBuilder::with_capacity(cap),
                *t == Type::TIMETZ,
            ),
            (DataType::Timestamp(_, tz), _) => Decoder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(cap).with_timezone_opt(tz.clone()),
            ),
            (DataType::Duration(_), _) => {
                Decoder::Interval(DurationMicrosecondBuilder::with_capacity(cap))
            }
            (DataType::List(field), _) => {
                let elem = match ty.kind() {
                    Kind::Array(e) => e.clone(),
                    Kind::Domain(base) => return Self::for_type(base, dt, cap),
                    _ => Type::BYTEA,
                };
                Decoder::List(Box::new(ListDecoder {
                    field: field.clone(),
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(cap),
                    child: Self::for_type(&elem, field.data_type(), cap)?,
                }))
            }
            (_, t) => match t.kind() {
                Kind::Domain(base) => return Self::for_type(base, dt, cap),
                _ => Decoder::Binary(BinaryBuilder::with_capacity(cap, cap * 16)),
            },
        })
    }

    /// Appends one value (None for NULL) in PostgreSQL's binary format.
    pub fn append(&mut self, raw: Option<&[u8]>) -> DecodeResult {
        let Some(b) = raw else {
            self.append_null();
            return Ok(());
        };
        match self {
            Decoder::Bool(x) => x.append_value(fixed::<1>(b)?[0] != 0),
            Decoder::I16(x) => x.append_value(i16::from_be_bytes(fixed(b)?)),
            Decoder::I32(x) => x.append_value(i32::from_be_bytes(fixed(b)?)),
            Decoder::I64(x, oid) => x.append_value(if *oid {
                i64::from(u32::from_be_bytes(fixed(b)?))
            } else {
                i64::from_be_bytes(fixed(b)?)
            }),
            Decoder::F32(x) => x.append_value(f32::from_be_bytes(fixed(b)?)),
            Decoder::F64(x) => x.append_value(f64::from_be_bytes(fixed(b)?)),
            Decoder::Decimal(x, p, s) => x.append_value(numeric_to_i128(b, *p, *s)?),
            Decoder::Utf8(x, jsonb) => {
                let body = if *jsonb {
                    b.get(1..).unwrap_or_default()
                } else {
                    b
                };
                x.append_value(std::str::from_utf8(body).map_err(|e| e.to_string())?);
            }
            Decoder::NumericText(x) => x.append_value(numeric_to_string(b)?),
            Decoder::Uuid(x) => x.append_value(uuid_text(fixed::<16>(b)?)),
            Decoder::Binary(x) => x.append_value(b),
            Decoder::Date(x) => x.append_value(
                i32::from_be_bytes(fixed(b)?)
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or("date out of range (infinity?)")?,
            ),
            Decoder::Time(x, tz) => {
                let mut r = Reader(b);
                let us = r.i64()?;
                let us = if *tz {
                    // timetz: offset in seconds west of UTC follows the time; PostgreSQL
                    // bounds both, the checked arithmetic guards against a corrupt value.
                    let off = i64::from(r.i32()?) * 1_000_000;
                    us.checked_add(off)
                        .ok_or("time with time zone out of range")?
                        .rem_euclid(MICROS_PER_DAY)
                } else {
                    us
                };
                x.append_value(us)
            }
            Decoder::Timestamp(x) => {
                let us = i64::from_be_bytes(fixed(b)?);
                if us == i64::MAX || us == i64::MIN {
                    return Err("timestamp 'infinity' has no Arrow value".into());
                }
                // PostgreSQL reaches 294276 AD, past what microseconds since 1970 hold.
                x.append_value(
                    us.checked_add(PG_EPOCH_MICROS)
                        .ok_or("timestamp beyond Arrow's range (after 294246 AD)")?,
                )
            }
            Decoder::Interval(x) => x.append_value(interval_micros(b)?),
            Decoder::List(l) => l.append(b)?,
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Decoder::Bool(x) => x.append_null(),
            Decoder::I16(x) => x.append_null(),
            Decoder::I32(x) => x.append_null(),
            Decoder::I64(x, _) => x.append_null(),
            Decoder::F32(x) => x.append_null(),
            Decoder::F64(x) => x.append_null(),
            Decoder::Decimal(x, ..) => x.append_null(),
            Decoder::Utf8(x, _) | Decoder::Uuid(x) | Decoder::NumericText(x) => x.append_null(),
            Decoder::Binary(x) => x.append_null(),
            Decoder::Date(x) => x.append_null(),
            Decoder::Time(x, _) => x.append_null(),
            Decoder::Timestamp(x) => x.append_null(),
            Decoder::Interval(x) => x.append_null(),
            Decoder::List(l) => {
                let last = l.offsets.last().copied().unwrap_or(0);
                l.offsets.push(last);
                l.nulls.append_null();
            }
        }
    }

    /// The array of everything appended so far; the decoder starts empty again.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Decoder::Bool(x) => Arc::new(x.finish()),
            Decoder::I16(x) => Arc::new(x.finish()),
            Decoder::I32(x) => Arc::new(x.finish()),
            Decoder::I64(x, _) => Arc::new(x.finish()),
            Decoder::F32(x) => Arc::new(x.finish()),
            Decoder::F64(x) => Arc::new(x.finish()),
            Decoder::Decimal(x, ..) => Arc::new(x.finish()),
            Decoder::Utf8(x, _) | Decoder::Uuid(x) | Decoder::NumericText(x) => {
                Arc::new(x.finish())
            }
            Decoder::Binary(x) => Arc::new(x.finish()),
            Decoder::Date(x) => Arc::new(x.finish()),
            Decoder::Time(x, _) => Arc::new(x.finish()),
            Decoder::Timestamp(x) => Arc::new(x.finish()),
            Decoder::Interval(x) => Arc::new(x.finish()),
            Decoder::List(l) => l.finish(),
        }
    }
}

impl ListDecoder {
    fn append(&mut self, b: &[u8]) -> DecodeResult {
        let mut r = Reader(b);
        let ndim = r.i32()?;
        let _has_nulls = r.i32()?;
        let _elem_oid = r.i32()?;
        // Several dimensions are flattened: the element count is their product. Every
        // element takes at least 4 bytes, so a count the value cannot hold is refused
        // before the loop rather than trusted.
        let mut count: usize = if ndim == 0 { 0 } else { 1 };
        for _ in 0..ndim {
            let dim = usize::try_from(r.i32()?).map_err(|_| "negative array dimension")?;
            count = count.checked_mul(dim).ok_or("array too large")?;
            let _lower_bound = r.i32()?;
        }
        if count > r.0.len() / 4 {
            return Err("array shorter than its dimensions".into());
        }
        let last = self.offsets.last().copied().unwrap_or(0);
        let end = i32::try_from(count)
            .ok()
            .and_then(|n| last.checked_add(n))
            .ok_or("array elements exceed a batch's 2^31 offsets")?;
        for _ in 0..count {
            match usize::try_from(r.i32()?) {
                Ok(len) => self.child.append(Some(r.take(len)?))?,
                Err(_) => self.child.append(None)?, // length -1: NULL
            }
        }
        self.offsets.push(end);
        self.nulls.append_non_null();
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let values = self.child.finish();
        Arc::new(ListArray::new(
            self.field.clone(),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            values,
            self.nulls.finish(),
        ))
    }
}

/// A cursor over a binary value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.0.len() < n {
            return Err("truncated value".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn i32(&mut self) -> DecodeResult<i32> {
        Ok(i32::from_be_bytes(fixed(self.take(4)?)?))
    }
    fn i16(&mut self) -> DecodeResult<i16> {
        Ok(i16::from_be_bytes(fixed(self.take(2)?)?))
    }
    fn i64(&mut self) -> DecodeResult<i64> {
        Ok(i64::from_be_bytes(fixed(self.take(8)?)?))
    }
}

fn fixed<const N: usize>(b: &[u8]) -> DecodeResult<[u8; N]> {
    b.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("expected {N} bytes, got {}", b.len()))
}

fn uuid_text(b: [u8; 16]) -> String {
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

/// An interval as microseconds; a month counts 30 days, as in `EXTRACT(EPOCH FROM …)`.
pub fn interval_micros(b: &[u8]) -> DecodeResult<i64> {
    let mut r = Reader(b);
    let us = r.i64()?;
    let days = i64::from(r.i32()?);
    let months = i64::from(r.i32()?);
    (months * 30 + days)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(us))
        .ok_or_else(|| "interval out of range".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_counts_months_as_30_days() {
        let mut b = Vec::new();
        b.extend(1_000_000i64.to_be_bytes());
        b.extend(2i32.to_be_bytes());
        b.extend(1i32.to_be_bytes());
        assert_eq!(
            interval_micros(&b).unwrap(),
            32 * MICROS_PER_DAY + 1_000_000
        );
    }
}
