//! Typed columns of pattern reads: `FIELDS name:int64` and friends, and the decoding of
//! Redis string values into Arrow arrays (a value that does not parse names its key).
use arrow::array::{ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::DataType;
use dbpool_core::{Error, Result};
use std::sync::Arc;

/// The type a column of a pattern read is decoded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Utf8,
    Binary,
    Int64,
    Float64,
    Bool,
}

impl ColType {
    pub fn parse(s: &str) -> Option<ColType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "utf8" | "str" | "string" => ColType::Utf8,
            "binary" | "bytes" => ColType::Binary,
            "int64" | "int" => ColType::Int64,
            "float64" | "float" => ColType::Float64,
            "bool" | "boolean" => ColType::Bool,
            _ => return None,
        })
    }

    pub fn arrow(self) -> DataType {
        match self {
            ColType::Utf8 => DataType::Utf8,
            ColType::Binary => DataType::Binary,
            ColType::Int64 => DataType::Int64,
            ColType::Float64 => DataType::Float64,
            ColType::Bool => DataType::Boolean,
        }
    }
}

/// `f` over the present cells, with each cell's key for its error; absent cells stay
/// absent.
fn each<'a, A, B>(
    cells: &'a [Option<A>],
    keys: &[String],
    f: impl Fn(&'a A, &str) -> Result<B>,
) -> Result<Vec<Option<B>>> {
    cells
        .iter()
        .zip(keys)
        .map(|(c, key)| c.as_ref().map(|v| f(v, key)).transpose())
        .collect()
}

/// Decodes one column's cells to its type; a cell that does not parse names its key.
pub fn decode(
    name: &str,
    t: ColType,
    keys: &[String],
    col: Vec<Option<Vec<u8>>>,
) -> Result<ArrayRef> {
    if t == ColType::Binary {
        return Ok(Arc::new(
            col.iter().map(|c| c.as_deref()).collect::<BinaryArray>(),
        ));
    }
    let texts = each(&col, keys, |b, key| {
        std::str::from_utf8(b).map_err(|_| {
            Error::invalid(
                "sql",
                format!("`{key}` field `{name}` is not UTF-8; read it as `{name}:binary`"),
            )
        })
    })?;
    let not = |key: &str, s: &str, what: &str| {
        Error::invalid(
            "sql",
            format!("`{key}` field `{name}`: {s:?} is not {what}"),
        )
    };
    Ok(match t {
        ColType::Utf8 | ColType::Binary => Arc::new(StringArray::from(texts)),
        ColType::Int64 => Arc::new(Int64Array::from(each(&texts, keys, |&s, key| {
            s.trim().parse().map_err(|_| not(key, s, "an int64"))
        })?)),
        ColType::Float64 => Arc::new(Float64Array::from(each(&texts, keys, |&s, key| {
            s.trim().parse().map_err(|_| not(key, s, "a float64"))
        })?)),
        ColType::Bool => Arc::new(BooleanArray::from(each(&texts, keys, |&s, key| {
            match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(not(key, s, "a bool")),
            }
        })?)),
    })
}
