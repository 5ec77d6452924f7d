//! Bind parameters for PostgreSQL: binary where the inferred type matches, text
//! otherwise (PostgreSQL parses text for any type, so `"2024-01-01"` binds to a date).
use bytes::{BufMut, BytesMut};
use dbpool_core::Param;
use postgres_types::{to_sql_checked, Format, IsNull, ToSql, Type};
use std::error::Error as StdError;

use super::convert::PG_EPOCH_MICROS;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A `Param` bound to whatever type PostgreSQL inferred for its placeholder.
#[derive(Debug)]
pub struct PgParam<'a>(pub &'a Param);

impl PgParam<'_> {
    /// Whether this value is sent in binary for `ty` (else as text).
    fn binary(&self, ty: &Type) -> bool {
        match self.0 {
            Param::Null => true,
            Param::Bool(_) => *ty == Type::BOOL,
            Param::Int64(_) => matches!(
                *ty,
                Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8 | Type::OID
            ),
            Param::Double(_) => matches!(*ty, Type::FLOAT4 | Type::FLOAT8),
            Param::String(_) => *ty == Type::BYTEA,
            Param::Bytes(_) => true,
            Param::TimestampMicros(_) => matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ),
            Param::Decimal(_) => false,
        }
    }
}

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !self.binary(ty) {
            out.put_slice(self.text()?.as_bytes());
            return Ok(IsNull::No);
        }
        match self.0 {
            Param::Null => return Ok(IsNull::Yes),
            Param::Bool(b) => out.put_u8(*b as u8),
            Param::Int64(v) => {
                let v = *v;
                let range = |t: &str| format!("{v} is out of range for {t}");
                match *ty {
                    Type::INT2 => out.put_i16(i16::try_from(v).map_err(|_| range("int2"))?),
                    Type::INT4 => out.put_i32(i32::try_from(v).map_err(|_| range("int4"))?),
                    Type::OID => out.put_u32(u32::try_from(v).map_err(|_| range("oid"))?),
                    Type::FLOAT4 => out.put_f32(v as f32),
                    Type::FLOAT8 => out.put_f64(v as f64),
                    _ => out.put_i64(v),
                }
            }
            Param::Double(v) => match *ty {
                Type::FLOAT4 => out.put_f32(*v as f32),
                _ => out.put_f64(*v),
            },
            Param::String(s) => out.put_slice(s.as_bytes()),
            Param::Bytes(b) => {
                if *ty != Type::BYTEA {
                    return Err(format!("a bytes parameter cannot bind to type {ty}").into());
                }
                out.put_slice(b)
            }
            Param::TimestampMicros(us) => out.put_i64(us - PG_EPOCH_MICROS),
            Param::Decimal(_) => unreachable!("decimals are sent as text"),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        if self.binary(ty) {
            Format::Binary
        } else {
            Format::Text
        }
    }

    to_sql_checked!();
}

impl PgParam<'_> {
    fn text(&self) -> Result<String, BoxError> {
        Ok(match self.0 {
            Param::Null => String::new(),
            Param::Bool(b) => b.to_string(),
            Param::Int64(v) => v.to_string(),
            Param::Double(v) if v.is_nan() => "NaN".into(),
            Param::Double(v) if v.is_infinite() => {
                if *v > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                }
            }
            Param::Double(v) => v.to_string(),
            Param::String(s) | Param::Decimal(s) => s.clone(),
            Param::Bytes(_) => unreachable!("bytes are always binary"),
            Param::TimestampMicros(us) => chrono::DateTime::from_timestamp_micros(*us)
                .ok_or("timestamp out of range")?
                .format("%Y-%m-%d %H:%M:%S%.6f+00")
                .to_string(),
        })
    }
}
