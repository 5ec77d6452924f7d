//! Bind parameters for PostgreSQL: binary where the inferred type matches, text
//! otherwise (PostgreSQL parses text for any type, so `"2024-01-01"` binds to a date).
use bytes::{BufMut, BytesMut};
use dbpool_core::Param;
use postgres_types::{to_sql_checked, Format, IsNull, Kind, ToSql, Type};
use std::error::Error as StdError;
use std::sync::LazyLock;

use super::convert::PG_EPOCH_MICROS;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A `Param` bound to whatever type PostgreSQL inferred for its placeholder.
#[derive(Debug)]
pub struct PgParam<'a>(pub &'a Param);

/// Type OID 0 in a Parse message: PostgreSQL infers the type, as it does when preparing.
static UNSPECIFIED: LazyLock<Type> =
    LazyLock::new(|| Type::new("unspecified".into(), 0, Kind::Pseudo, "pg_catalog".into()));

impl PgParam<'_> {
    /// The type declared for this value in an unnamed statement, whose parameter types
    /// are not known before it is sent: unspecified, so the value goes as text and the
    /// server parses it for the type it infers — bytes excepted, which have no text form
    /// here and are declared `bytea` (the only type they bind to when prepared).
    pub fn unnamed_type(&self) -> Type {
        match self.0 {
            Param::Bytes(_) => Type::BYTEA,
            _ => UNSPECIFIED.clone(),
        }
    }

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

/// A value our `ToSql` refused (out of range, no form for the type): the request's
/// fault, told apart from the connection's by its type.
#[derive(Debug)]
pub struct ParamError(String);

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ParamError {}

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.encode(ty, out)
            .map_err(|e| Box::new(ParamError(e.to_string())) as BoxError)
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
    fn encode(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
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
                    // Rounds to the nearest float beyond 2^24 / 2^53, as PostgreSQL's
                    // own int8 → float casts do; no i64 overflows an f32.
                    Type::FLOAT4 => out.put_f32(v as f32),
                    Type::FLOAT8 => out.put_f64(v as f64),
                    _ => out.put_i64(v),
                }
            }
            Param::Double(v) => match *ty {
                Type::FLOAT4 => {
                    // A finite double beyond f32's range would silently become ±Infinity.
                    let narrowed = *v as f32;
                    if v.is_finite() && narrowed.is_infinite() {
                        return Err(format!("{v} is out of range for float4").into());
                    }
                    out.put_f32(narrowed)
                }
                _ => out.put_f64(*v),
            },
            Param::String(s) => out.put_slice(s.as_bytes()),
            Param::Bytes(b) => {
                if *ty != Type::BYTEA {
                    return Err(format!("a bytes parameter cannot bind to type {ty}").into());
                }
                out.put_slice(b)
            }
            Param::TimestampMicros(us) => out.put_i64(
                us.checked_sub(PG_EPOCH_MICROS)
                    .ok_or("timestamp out of range")?,
            ),
            // `binary` sends decimals as text; an error rather than a panic if that changes.
            Param::Decimal(_) => return Err("a decimal is sent as text".into()),
        }
        Ok(IsNull::No)
    }

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
            Param::Bytes(_) => return Err("bytes have no text form".into()),
            Param::TimestampMicros(us) => chrono::DateTime::from_timestamp_micros(*us)
                .ok_or("timestamp out of range")?
                .format("%Y-%m-%d %H:%M:%S%.6f+00")
                .to_string(),
        })
    }
}
