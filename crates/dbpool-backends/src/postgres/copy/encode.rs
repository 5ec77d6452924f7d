//! Arrow values → PostgreSQL binary, one cell at a time: the inverse of `convert.rs`.
//! `plan` decides up front whether an Arrow type can be written into a column type, so
//! a mismatch is refused before any row is sent.
use super::numeric::{put_numeric, put_numeric_text};
use crate::postgres::convert::{arrow_type, PG_EPOCH_DAYS, PG_EPOCH_MICROS};
use arrow::array::{Array, AsArray};
use arrow::datatypes::*;
use bytes::{BufMut, BytesMut};
use postgres_types::{to_sql_checked, IsNull, Kind, ToSql, Type};
use std::fmt;

type BoxError = Box<dyn std::error::Error + Sync + Send>;
type EncResult<T = IsNull> = std::result::Result<T, String>;

/// How values of one Arrow column are written into one PostgreSQL column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enc {
    /// Arrow Null: every value is NULL, whatever the column type.
    Null,
    /// Boolean → bool.
    Bool,
    /// Int16/32/64 → an integer, float or numeric column (range-checked).
    Int(IntTo),
    /// Float32/64 → float4 (`true`) or float8.
    Float(bool),
    /// Decimal128(p, s) → numeric.
    Decimal,
    /// Utf8 → text, varchar, bpchar, name, json, xml, enums: the UTF-8 bytes.
    Text,
    /// Utf8 → jsonb: version byte 1, then the text.
    Jsonb,
    /// Utf8 → uuid: the text parsed into 16 bytes.
    Uuid,
    /// Utf8 → numeric: decimal text (what wide numerics are read as).
    NumericText,
    /// Binary → bytea, or any type read as its binary wire form.
    Bytes,
    /// Date32 → date.
    Date,
    /// Time64(µs) → time, or timetz (`true`, at UTC).
    Time(bool),
    /// Timestamp(µs) → timestamp or timestamptz.
    Timestamp,
    /// Duration(µs) → interval of microseconds only (no days, no months).
    Interval,
    /// List → a one-dimensional array of this element type (oid).
    Array(Box<Enc>, u32),
}

/// The integer, float or numeric column an Arrow integer goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntTo {
    /// int2
    I2,
    /// int4
    I4,
    /// int8
    I8,
    /// oid
    Oid,
    /// float4
    F4,
    /// float8
    F8,
    /// numeric
    Numeric,
}

/// How a (canonical) Arrow type is written into `ty`; None when it cannot be.
pub fn plan(dt: &DataType, ty: &Type) -> Option<Enc> {
    if let Kind::Domain(base) = ty.kind() {
        // A domain receives its base type's binary form; the server checks constraints.
        return plan(dt, base);
    }
    use DataType as D;
    Some(match dt {
        D::Null => Enc::Null,
        D::Boolean if *ty == Type::BOOL => Enc::Bool,
        D::Int16 | D::Int32 | D::Int64 => Enc::Int(match *ty {
            Type::INT2 => IntTo::I2,
            Type::INT4 => IntTo::I4,
            Type::INT8 => IntTo::I8,
            Type::OID => IntTo::Oid,
            Type::FLOAT4 => IntTo::F4,
            Type::FLOAT8 => IntTo::F8,
            Type::NUMERIC => IntTo::Numeric,
            _ => return None,
        }),
        D::Float32 | D::Float64 => match *ty {
            Type::FLOAT4 => Enc::Float(true),
            Type::FLOAT8 => Enc::Float(false),
            _ => return None,
        },
        D::Decimal128(..) if *ty == Type::NUMERIC => Enc::Decimal,
        D::Utf8 => match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::XML => {
                Enc::Text
            }
            Type::JSONB => Enc::Jsonb,
            Type::UUID => Enc::Uuid,
            Type::NUMERIC => Enc::NumericText,
            _ if matches!(ty.kind(), Kind::Enum(_)) => Enc::Text,
            // Binary COPY has no text fallback: every other type needs its binary form.
            _ => return None,
        },
        D::Binary if arrow_type(ty, -1) == D::Binary => Enc::Bytes,
        D::Date32 if *ty == Type::DATE => Enc::Date,
        D::Time64(_) if *ty == Type::TIME => Enc::Time(false),
        D::Time64(_) if *ty == Type::TIMETZ => Enc::Time(true),
        D::Timestamp(..) if matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ) => Enc::Timestamp,
        D::Duration(_) if *ty == Type::INTERVAL => Enc::Interval,
        D::List(item) => match ty.kind() {
            Kind::Array(elem) => Enc::Array(Box::new(plan(item.data_type(), elem)?), elem.oid()),
            _ => return None,
        },
        _ => return None,
    })
}

/// One Arrow column of a batch, ready to be written.
pub struct Column<'a> {
    /// The column's name, for errors.
    pub name: &'a str,
    /// Its values.
    pub array: &'a dyn Array,
    /// How they are encoded.
    pub enc: &'a Enc,
    /// Rows written before this batch, to number rows in errors.
    pub base: usize,
}

/// The value of `col` at `row`, as a COPY field.
pub struct Cell<'a> {
    /// The column.
    pub col: &'a Column<'a>,
    /// The row within the batch.
    pub row: usize,
}

/// The cells of one row. A named iterator rather than `map(|col| …)`: a closure here
/// trips the compiler's higher-ranked lifetime check on the `Send` future.
pub struct Row<'a> {
    /// Columns still to yield.
    pub cols: std::slice::Iter<'a, Column<'a>>,
    /// The row within the batch.
    pub row: usize,
}

impl<'a> Iterator for Row<'a> {
    type Item = Cell<'a>;

    fn next(&mut self) -> Option<Cell<'a>> {
        let col = self.cols.next()?;
        Some(Cell { col, row: self.row })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.cols.size_hint()
    }
}

impl ExactSizeIterator for Row<'_> {}

impl fmt::Debug for Cell<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cell({}, {})", self.col.name, self.row)
    }
}

/// A value that cannot be encoded; `copy.rs` turns it into INVALID_ARGUMENT.
#[derive(Debug)]
pub struct CellError {
    /// The column.
    pub column: String,
    /// What is wrong, with the row.
    pub message: String,
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column `{}`: {}", self.column, self.message)
    }
}

impl std::error::Error for CellError {}

impl ToSql for Cell<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        encode(self.col.enc, self.col.array, self.row, out).map_err(|m| {
            Box::new(CellError {
                column: self.col.name.to_string(),
                message: format!("row {}: {m}", self.col.base + self.row),
            }) as BoxError
        })
    }

    fn accepts(_: &Type) -> bool {
        // `plan` checked the pairing.
        true
    }

    to_sql_checked!();
}

fn range<T: fmt::Display>(v: T, ty: &str) -> String {
    format!("{v} is out of range for {ty}")
}

/// Writes the value at `row` in PostgreSQL's binary format.
fn encode(enc: &Enc, a: &dyn Array, row: usize, out: &mut BytesMut) -> EncResult {
    if *enc == Enc::Null || a.is_null(row) {
        return Ok(IsNull::Yes);
    }
    match enc {
        Enc::Null => return Ok(IsNull::Yes),
        Enc::Bool => out.put_u8(a.as_boolean().value(row) as u8),
        Enc::Int(to) => {
            let v = int_at(a, row)?;
            match to {
                IntTo::I2 => out.put_i16(i16::try_from(v).map_err(|_| range(v, "int2"))?),
                IntTo::I4 => out.put_i32(i32::try_from(v).map_err(|_| range(v, "int4"))?),
                IntTo::I8 => out.put_i64(v),
                IntTo::Oid => out.put_u32(u32::try_from(v).map_err(|_| range(v, "oid"))?),
                IntTo::F4 => out.put_f32(v as f32),
                IntTo::F8 => out.put_f64(v as f64),
                IntTo::Numeric => put_numeric(out, v < 0, &v.unsigned_abs().to_string(), "")?,
            }
        }
        Enc::Float(to_f4) => {
            let v = match a.data_type() {
                DataType::Float32 => a.as_primitive::<Float32Type>().value(row) as f64,
                _ => a.as_primitive::<Float64Type>().value(row),
            };
            if *to_f4 {
                // A finite double beyond f32's range would silently become ±Infinity.
                let narrowed = v as f32;
                if v.is_finite() && narrowed.is_infinite() {
                    return Err(format!("{v} is out of range for float4"));
                }
                out.put_f32(narrowed)
            } else {
                out.put_f64(v)
            }
        }
        Enc::Decimal => {
            let DataType::Decimal128(_, scale) = a.data_type() else {
                return Err(format!("expected Decimal128, got {}", a.data_type()));
            };
            let v = a.as_primitive::<Decimal128Type>().value(row);
            let digits = v.unsigned_abs().to_string();
            if *scale <= 0 {
                let int = digits + &"0".repeat(scale.unsigned_abs() as usize);
                put_numeric(out, v < 0, &int, "")?;
            } else {
                let s = *scale as usize;
                let padded = format!("{digits:0>width$}", width = s + 1);
                let (int, frac) = padded.split_at(padded.len() - s);
                put_numeric(out, v < 0, int, frac)?;
            }
        }
        Enc::Text => out.put_slice(a.as_string::<i32>().value(row).as_bytes()),
        Enc::Jsonb => {
            out.put_u8(1);
            out.put_slice(a.as_string::<i32>().value(row).as_bytes());
        }
        Enc::Uuid => out.put_slice(&parse_uuid(a.as_string::<i32>().value(row))?),
        Enc::NumericText => put_numeric_text(out, a.as_string::<i32>().value(row))?,
        Enc::Bytes => out.put_slice(a.as_binary::<i32>().value(row)),
        Enc::Date => {
            let d = a.as_primitive::<Date32Type>().value(row);
            out.put_i32(
                d.checked_sub(PG_EPOCH_DAYS)
                    .ok_or_else(|| range(d, "date"))?,
            );
        }
        Enc::Time(tz) => {
            out.put_i64(a.as_primitive::<Time64MicrosecondType>().value(row));
            if *tz {
                out.put_i32(0); // UTC: zero seconds west
            }
        }
        Enc::Timestamp => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
            match us.checked_sub(PG_EPOCH_MICROS) {
                // i64::MIN/MAX mean ±infinity to PostgreSQL.
                Some(v) if v != i64::MIN && v != i64::MAX => out.put_i64(v),
                _ => return Err(range(us, "timestamp")),
            }
        }
        Enc::Interval => {
            out.put_i64(a.as_primitive::<DurationMicrosecondType>().value(row));
            out.put_i32(0); // days
            out.put_i32(0); // months
        }
        Enc::Array(elem, oid) => put_array(out, elem, *oid, a, row)?,
    }
    Ok(IsNull::No)
}

/// A one-dimensional array (zero dimensions when empty), as `array_recv` reads it.
fn put_array(out: &mut BytesMut, elem: &Enc, oid: u32, a: &dyn Array, row: usize) -> EncResult<()> {
    let list = a.as_list::<i32>();
    let offsets = list.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    let values = list.values().as_ref();
    let n = i32::try_from(end - start).map_err(|_| "array too long".to_string())?;
    out.put_i32((n > 0) as i32);
    let flag_at = out.len();
    out.put_i32(0); // has NULLs, patched below
    out.put_u32(oid);
    if n == 0 {
        return Ok(());
    }
    out.put_i32(n);
    out.put_i32(1); // lower bound
    let mut has_null = false;
    for i in start..end {
        let at = out.len();
        out.put_i32(0);
        let len = match encode(elem, values, i, out)? {
            IsNull::Yes => {
                has_null = true;
                -1
            }
            IsNull::No => i32::try_from(out.len() - at - 4)
                .map_err(|_| "array element too long".to_string())?,
        };
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    out[flag_at..flag_at + 4].copy_from_slice(&(has_null as i32).to_be_bytes());
    Ok(())
}

fn int_at(a: &dyn Array, row: usize) -> EncResult<i64> {
    Ok(match a.data_type() {
        DataType::Int16 => a.as_primitive::<Int16Type>().value(row) as i64,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(row) as i64,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(row),
        other => return Err(format!("expected an integer, got {other}")),
    })
}

/// A UUID's 16 bytes from text with or without hyphens and braces.
fn parse_uuid(text: &str) -> EncResult<[u8; 16]> {
    let bad = || format!("`{text}` is not a UUID");
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let mut nibbles = [0u8; 32];
    let mut n = 0;
    for b in t.bytes().filter(|b| *b != b'-') {
        let v = (b as char).to_digit(16).ok_or_else(bad)? as u8;
        *nibbles.get_mut(n).ok_or_else(bad)? = v;
        n += 1;
    }
    if n != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibbles[2 * i] << 4) | nibbles[2 * i + 1];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::convert::numeric_to_i128;

    #[test]
    fn decimal128_round_trips_through_the_decoder() {
        let arr = arrow::array::Decimal128Array::from(vec![123_456_789, -5, 0, i128::MAX / 10])
            .with_precision_and_scale(38, 4)
            .unwrap();
        for row in 0..arr.len() {
            let mut b = BytesMut::new();
            encode(&Enc::Decimal, &arr, row, &mut b).unwrap();
            assert_eq!(
                numeric_to_i128(&b, 38, 4).unwrap(),
                arr.value(row),
                "row {row}"
            );
        }
    }

    #[test]
    fn uuid_and_ranges() {
        let u = parse_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(u[0], 0xa0);
        assert_eq!(u[15], 0x11);
        assert!(parse_uuid("a0eebc99").is_err());
        assert!(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11ff").is_err());
        let a = arrow::array::Int32Array::from(vec![40_000]);
        let Err(e) = encode(&Enc::Int(IntTo::I2), &a, 0, &mut BytesMut::new()) else {
            panic!("40000 into int2 must fail")
        };
        assert!(e.contains("out of range for int2"), "{e}");
        let f = arrow::array::Float64Array::from(vec![1e300, 0.5]);
        let Err(e) = encode(&Enc::Float(true), &f, 0, &mut BytesMut::new()) else {
            panic!("1e300 into float4 must fail, not become Infinity")
        };
        assert!(e.contains("out of range for float4"), "{e}");
        let mut b = BytesMut::new();
        encode(&Enc::Float(true), &f, 1, &mut b).unwrap();
        assert_eq!(&b[..], &0.5f32.to_be_bytes());
        assert_eq!(plan(&DataType::Utf8, &Type::INT4), None);
        assert_eq!(plan(&DataType::Utf8, &Type::UUID), Some(Enc::Uuid));
    }
}
