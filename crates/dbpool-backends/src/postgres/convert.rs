//! PostgreSQL binary wire values → Arrow arrays. The mapping is documented in
//! docs/types.md; every decoder reads the raw binary format directly.
use arrow::array::NullBufferBuilder;
use arrow::array::*;
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use postgres_types::{Kind, Type};
use std::sync::Arc;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Scale used for numeric columns declared without precision and scale.
pub const UNCONSTRAINED_NUMERIC_SCALE: i8 = 10;
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

type DecodeResult<T = ()> = std::result::Result<T, String>;

/// Precision and scale of a numeric column from its type modifier.
fn numeric_precision_scale(typmod: i32) -> Option<(u8, i8)> {
    if typmod < 4 {
        return None;
    }
    let m = typmod - 4;
    let (p, s) = ((m >> 16) & 0xffff, m & 0xffff);
    // Negative scales (PostgreSQL 15+) are stored in 11 bits, sign-extended.
    let s = if s > 1023 { s - 2048 } else { s };
    Some((p as u8, s as i8))
}

/// Whether numeric(p, s) with this modifier fits Decimal128.
fn fits_decimal128(typmod: i32) -> bool {
    numeric_precision_scale(typmod).is_none_or(|(p, s)| p <= 38 && s >= 0)
}

/// The Arrow type a PostgreSQL column becomes.
pub fn arrow_type(ty: &Type, typmod: i32) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 | Type::OID => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC if fits_decimal128(typmod) => {
            let (p, s) =
                numeric_precision_scale(typmod).unwrap_or((38, UNCONSTRAINED_NUMERIC_SCALE));
            DataType::Decimal128(p, s)
        }
        Type::NUMERIC => DataType::Utf8,
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
    pub fn new(ty: &Type, typmod: i32, capacity: usize) -> Self {
        let dt = arrow_type(ty, typmod);
        Self::for_type(ty, &dt, capacity)
    }

    fn for_type(ty: &Type, dt: &DataType, cap: usize) -> Self {
        match (dt, ty) {
            (DataType::Boolean, _) => Decoder::Bool(BooleanBuilder::with_capacity(cap)),
            (DataType::Int16, _) => Decoder::I16(Int16Builder::with_capacity(cap)),
            (DataType::Int32, _) => Decoder::I32(Int32Builder::with_capacity(cap)),
            (DataType::Int64, t) => Decoder::I64(Int64Builder::with_capacity(cap), *t == Type::OID),
            (DataType::Float32, _) => Decoder::F32(Float32Builder::with_capacity(cap)),
            (DataType::Float64, _) => Decoder::F64(Float64Builder::with_capacity(cap)),
            (DataType::Decimal128(p, s), _) => Decoder::Decimal(
                Decimal128Builder::with_capacity(cap)
                    .with_precision_and_scale(*p, *s)
                    .expect("valid decimal"),
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
                    child: Self::for_type(&elem, field.data_type(), cap),
                }))
            }
            (_, t) => match t.kind() {
                Kind::Domain(base) => Self::for_type(base, dt, cap),
                _ => Decoder::Binary(BinaryBuilder::with_capacity(cap, cap * 16)),
            },
        }
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
                u32::from_be_bytes(fixed(b)?) as i64
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
                let us = i64::from_be_bytes(fixed::<8>(&b[..8.min(b.len())])?);
                let us = if *tz {
                    // timetz: offset in seconds west of UTC follows the time.
                    let off = i32::from_be_bytes(fixed(&b[8..])?) as i64 * 1_000_000;
                    (us + off).rem_euclid(MICROS_PER_DAY)
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
                x.append_value(us + PG_EPOCH_MICROS)
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
                l.offsets
                    .push(*l.offsets.last().expect("offsets start at 0"));
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
        let mut count: i64 = if ndim == 0 { 0 } else { 1 };
        for _ in 0..ndim {
            count *= r.i32()? as i64;
            let _lower_bound = r.i32()?;
        }
        for _ in 0..count {
            let len = r.i32()?;
            if len < 0 {
                self.child.append(None)?;
            } else {
                self.child.append(Some(r.take(len as usize)?))?;
            }
        }
        let last = *self.offsets.last().expect("offsets start at 0");
        self.offsets.push(last + count as i32);
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
}

fn fixed<const N: usize>(b: &[u8]) -> DecodeResult<[u8; N]> {
    b.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("expected {N} bytes, got {}", b.len()))
}

/// A binary numeric in exact decimal text, for numerics wider than Decimal128.
pub fn numeric_to_string(b: &[u8]) -> DecodeResult<String> {
    let mut r = Reader(b);
    let ndigits = r.i16()? as i32;
    let weight = r.i16()? as i32;
    let sign = r.i16()? as u16;
    let dscale = r.i16()? as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|_| r.i16())
        .collect::<DecodeResult<Vec<i16>>>()?;
    let group = |i: i32| {
        if i >= 0 && i < ndigits {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut int = String::new();
    for i in 0..=weight.max(0) {
        if weight < 0 {
            break;
        }
        let g = group(i);
        if int.is_empty() {
            if g != 0 {
                int = g.to_string();
            }
        } else {
            int.push_str(&format!("{g:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut i = weight + 1;
    while frac.len() < dscale {
        frac.push_str(&format!("{:04}", group(i)));
        i += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
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
    let us = i64::from_be_bytes(fixed(b)?);
    let days = i32::from_be_bytes(fixed(&b[8..])?) as i64;
    let months = i32::from_be_bytes(fixed(&b[12..])?) as i64;
    (months * 30 + days)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(us))
        .ok_or_else(|| "interval out of range".into())
}

/// A binary numeric as an integer scaled by 10^scale, rounding half away from zero.
pub fn numeric_to_i128(b: &[u8], precision: u8, scale: i8) -> DecodeResult<i128> {
    let mut r = Reader(b);
    let ndigits = r.i16()? as i32;
    let weight = r.i16()? as i32;
    let sign = r.i16()? as u16;
    let _dscale = r.i16()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("numeric NaN has no Decimal128 value".into()),
        _ => return Err("numeric infinity has no Decimal128 value".into()),
    }
    let overflow = || format!("numeric value does not fit Decimal128({precision}, {scale})");
    let mut n: i128 = 0;
    for _ in 0..ndigits {
        let d = r.i16()? as i128;
        n = n
            .checked_mul(10_000)
            .and_then(|v| v.checked_add(d))
            .ok_or_else(overflow)?;
    }
    // n has 4 * (ndigits - 1 - weight) decimal places.
    let have = 4 * (ndigits - 1 - weight);
    let want = scale as i32;
    if want >= have {
        n = pow10(want - have)
            .and_then(|p| n.checked_mul(p))
            .ok_or_else(overflow)?;
    } else {
        let p = pow10(have - want).ok_or_else(overflow)?;
        let (q, rem) = (n / p, n % p);
        n = if rem * 2 >= p { q + 1 } else { q };
    }
    if n >= pow10(precision as i32).unwrap_or(i128::MAX) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -n } else { n })
}

fn pow10(e: i32) -> Option<i128> {
    (0..=38).contains(&e).then(|| 10i128.pow(e as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as i16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(0i16.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_scales_and_rounds() {
        // 12345.6789 = [1, 2345, 6789], weight 1
        let b = numeric(1, 0, &[1, 2345, 6789]);
        assert_eq!(numeric_to_i128(&b, 10, 4).unwrap(), 123_456_789);
        assert_eq!(numeric_to_i128(&b, 10, 2).unwrap(), 1_234_568);
        assert_eq!(numeric_to_i128(&b, 12, 6).unwrap(), 12_345_678_900);
        // -20000 = [2], weight 1 (trailing zero groups omitted)
        let b = numeric(1, 0x4000, &[2]);
        assert_eq!(numeric_to_i128(&b, 10, 2).unwrap(), -2_000_000);
        assert!(numeric_to_i128(&b, 3, 0).is_err());
        assert!(numeric_to_i128(&numeric(0, 0xC000, &[]), 10, 2).is_err());
        let mut b = numeric(1, 0x4000, &[1, 2345, 6789]);
        b[6..8].copy_from_slice(&6i16.to_be_bytes());
        assert_eq!(numeric_to_string(&b).unwrap(), "-12345.678900");
        let mut b = numeric(-1, 0, &[500]);
        b[6..8].copy_from_slice(&3i16.to_be_bytes());
        assert_eq!(numeric_to_string(&b).unwrap(), "0.050");
    }

    #[test]
    fn typmod_decoding() {
        assert_eq!(numeric_precision_scale(((10 << 16) | 2) + 4), Some((10, 2)));
        assert_eq!(numeric_precision_scale(-1), None);
        assert_eq!(arrow_type(&Type::NUMERIC, -1), DataType::Decimal128(38, 10));
    }

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
