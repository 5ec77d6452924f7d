//! SQLite values → Arrow. SQLite types values, not columns: a column's Arrow type comes
//! from its declared type, widened by what its first batch holds (docs/types.md).
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow::datatypes::DataType;
use rusqlite::types::Value;
use std::sync::Arc;

/// The Arrow type a column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// INTEGER storage / INT affinity → Int64.
    Int,
    /// REAL storage / REAL, FLOAT, DOUBLE, NUMERIC, DECIMAL → Float64.
    Real,
    /// TEXT storage / CHAR, CLOB, TEXT, DATE, TIME → Utf8.
    Text,
    /// BLOB storage → Binary.
    Blob,
    /// Declared BOOL/BOOLEAN holding 0/1 → Boolean.
    Bool,
}

impl ColType {
    /// The Arrow type.
    pub fn data_type(self) -> DataType {
        match self {
            ColType::Int => DataType::Int64,
            ColType::Real => DataType::Float64,
            ColType::Text => DataType::Utf8,
            ColType::Blob => DataType::Binary,
            ColType::Bool => DataType::Boolean,
        }
    }

    /// From a declared column type, following SQLite's affinity rules; None when the
    /// column is an expression or declared without a type.
    pub fn declared(decl: Option<&str>) -> Option<ColType> {
        let d = decl?.to_ascii_uppercase();
        Some(if d.contains("BOOL") {
            ColType::Bool
        } else if d.contains("INT") {
            ColType::Int
        } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
            ColType::Text
        } else if d.contains("BLOB") || d.is_empty() {
            return None;
        } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
            ColType::Real
        } else if d.contains("DATE") || d.contains("TIME") {
            ColType::Text
        } else {
            ColType::Real // NUMERIC affinity
        })
    }

    /// The type of one value's storage class.
    fn of(v: &Value) -> Option<ColType> {
        match v {
            Value::Null => None,
            Value::Integer(_) => Some(ColType::Int),
            Value::Real(_) => Some(ColType::Real),
            Value::Text(_) => Some(ColType::Text),
            Value::Blob(_) => Some(ColType::Blob),
        }
    }

    /// The narrowest type holding both.
    fn widen(self, other: ColType) -> ColType {
        use ColType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Bool, Int) | (Int, Bool) => self,
            (Int | Bool, Real) | (Real, Int | Bool) => Real,
            (Blob, _) | (_, Blob) => Blob,
            _ => Text,
        }
    }
}

/// Chooses each column's type from its declaration and the values of the first batch.
pub fn infer(decl: &[Option<ColType>], rows: &[Vec<Value>]) -> Vec<ColType> {
    decl.iter()
        .enumerate()
        .map(|(i, d)| {
            let seen = rows.iter().filter_map(|r| ColType::of(&r[i]));
            match d {
                Some(d) => seen.fold(*d, ColType::widen),
                None => seen.reduce(ColType::widen).unwrap_or(ColType::Text),
            }
        })
        .collect()
}

/// Builds one column of `rows` as `ty`; `first_row` numbers rows in error messages.
pub fn column(
    ty: ColType,
    name: &str,
    rows: &[Vec<Value>],
    i: usize,
    first_row: usize,
) -> Result<ArrayRef, String> {
    let bad = |r: usize, v: &Value| {
        format!(
            "column `{name}` row {}: a {} value in a column read as {:?}; CAST it in SQL",
            first_row + r,
            v.data_type(),
            ty.data_type()
        )
    };
    macro_rules! build {
        ($builder:expr, $conv:expr) => {{
            let mut b = $builder;
            for (r, row) in rows.iter().enumerate() {
                match &row[i] {
                    Value::Null => b.append_null(),
                    v => b.append_value($conv(v).ok_or_else(|| bad(r, v))?),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty {
        ColType::Int => build!(
            Int64Builder::with_capacity(rows.len()),
            |v: &Value| match v {
                Value::Integer(x) => Some(*x),
                _ => None,
            }
        ),
        ColType::Real => build!(
            Float64Builder::with_capacity(rows.len()),
            |v: &Value| match v {
                Value::Integer(x) => Some(*x as f64),
                Value::Real(x) => Some(*x),
                _ => None,
            }
        ),
        ColType::Bool => build!(
            BooleanBuilder::with_capacity(rows.len()),
            |v: &Value| match v {
                Value::Integer(x) => Some(*x != 0),
                _ => None,
            }
        ),
        ColType::Text => build!(StringBuilder::new(), |v: &Value| match v {
            Value::Integer(x) => Some(x.to_string()),
            Value::Real(x) => Some(x.to_string()),
            Value::Text(s) => Some(s.clone()),
            Value::Blob(b) => String::from_utf8(b.clone()).ok(),
            Value::Null => None,
        }),
        ColType::Blob => build!(BinaryBuilder::new(), |v: &Value| match v {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.clone().into_bytes()),
            _ => None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_and_widening() {
        assert_eq!(ColType::declared(Some("BIGINT")), Some(ColType::Int));
        assert_eq!(ColType::declared(Some("varchar(20)")), Some(ColType::Text));
        assert_eq!(
            ColType::declared(Some("DECIMAL(10,2)")),
            Some(ColType::Real)
        );
        assert_eq!(ColType::declared(None), None);
        let rows = vec![
            vec![Value::Integer(1), Value::Null, Value::Integer(1)],
            vec![Value::Real(1.5), Value::Null, Value::Text("x".into())],
        ];
        let t = infer(&[None, None, Some(ColType::Int)], &rows);
        assert_eq!(t, vec![ColType::Real, ColType::Text, ColType::Text]);
    }

    #[test]
    fn later_mismatch_is_an_error_naming_the_column() {
        let rows = vec![vec![Value::Text("x".into())]];
        let e = column(ColType::Int, "n", &rows, 0, 10).unwrap_err();
        assert!(e.contains("column `n` row 10"), "{e}");
    }
}
