//! What every backend's bulk insert shares: the canonical Arrow types it encodes (what
//! Polars and pyarrow send is cast to them first) and the parts of a target table name.
use crate::{Error, InsertMode, QueryStream, Result};
use arrow::array::ArrayRef;
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use std::sync::Arc;

/// The canonical type of `dt`, or why a column `name` of that type cannot be written.
///
/// Canonical types are Null, Boolean, Int16/32/64, Float32/64, Decimal128, Utf8, Binary,
/// Date32, Time64(µs), Timestamp(µs, tz), Duration(µs) and List of those.
pub fn normalize_type(name: &str, dt: &DataType) -> Result<DataType> {
    use DataType::*;
    let us = TimeUnit::Microsecond;
    Ok(match dt {
        Null | Boolean | Int16 | Int32 | Int64 | Float32 | Float64 | Utf8 | Binary | Date32 => {
            dt.clone()
        }
        Decimal128(..) => dt.clone(),
        Int8 | UInt8 => Int16,
        UInt16 => Int32,
        UInt32 | UInt64 => Int64,
        Float16 => Float32,
        Utf8View | LargeUtf8 => Utf8,
        BinaryView | LargeBinary | FixedSizeBinary(_) => Binary,
        Date64 => Date32,
        Time32(_) | Time64(_) => Time64(us),
        Timestamp(_, tz) => Timestamp(us, tz.clone()),
        Duration(_) => Duration(us),
        Decimal32(p, s) | Decimal64(p, s) => Decimal128(*p, *s),
        Decimal256(p, s) if *p <= 38 => Decimal128(*p, *s),
        Decimal256(p, _) => {
            return Err(Error::invalid(
                name,
                format!("Decimal256 with precision {p} does not fit Decimal128 (at most 38)"),
            ))
        }
        Dictionary(_, values) => normalize_type(name, values)?,
        List(item) | LargeList(item) | ListView(item) | LargeListView(item) => {
            List(normalize_item(name, item)?)
        }
        other => {
            return Err(Error::invalid(
                name,
                format!("Arrow type {other} cannot be bulk-inserted"),
            ))
        }
    })
}

fn normalize_item(name: &str, item: &FieldRef) -> Result<FieldRef> {
    let dt = normalize_type(name, item.data_type())?;
    Ok(if &dt == item.data_type() {
        item.clone()
    } else {
        Arc::new(item.as_ref().clone().with_data_type(dt))
    })
}

/// The schema with every field cast to its canonical type (names, nullability and
/// metadata kept); an unsupported type is `InvalidArgument` naming the column.
pub fn normalize_schema(schema: &Schema) -> Result<SchemaRef> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = normalize_type(f.name(), f.data_type())?;
            Ok(Arc::new(f.as_ref().clone().with_data_type(dt)))
        })
        .collect::<Result<Vec<FieldRef>>>()?;
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The batch with every column cast to its canonical type; a value that does not fit
/// (a UInt64 above i64::MAX, say) is `InvalidArgument` naming the column.
pub fn normalize(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = normalize_schema(batch.schema_ref())?;
    if schema.fields() == batch.schema_ref().fields() {
        return Ok(batch.clone());
    }
    // `safe: false`: a value that does not fit is an error, never a silent NULL.
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(col, field)| {
            if col.data_type() == field.data_type() {
                return Ok(col.clone());
            }
            cast_with_options(col, field.data_type(), &options).map_err(|e| {
                Error::invalid(
                    field.name(),
                    format!(
                        "cannot cast {} to {}: {e}",
                        col.data_type(),
                        field.data_type()
                    ),
                )
            })
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Checks that a normalized batch has the types the insert was planned for.
pub fn check_batch(expected: &Schema, batch: &RecordBatch) -> Result<()> {
    let got = batch.schema_ref();
    let same = got.fields().len() == expected.fields().len()
        && got
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && same_type(a.data_type(), b.data_type()));
    if same {
        return Ok(());
    }
    Err(Error::invalid(
        "stream",
        format!("a record batch has schema {got} but the stream declared {expected}"),
    ))
}

/// At least one column, and no name twice (each names one column of the table).
pub fn check_names(schema: &Schema) -> Result<()> {
    if schema.fields().is_empty() {
        return Err(Error::invalid("schema", "the stream has no columns"));
    }
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(Error::invalid(
                f.name(),
                "the stream has two columns of this name",
            ));
        }
    }
    Ok(())
}

/// Equal types, ignoring the names and nullability of list items.
fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => same_type(x.data_type(), y.data_type()),
        _ => a == b,
    }
}

/// The optional schema and the table of a bulk-insert target: `orders` or
/// `sales.orders`. Each part is later quoted as an identifier, so case is kept.
pub fn table_parts(table: &str) -> Result<(Option<&str>, &str)> {
    let bad = |m: &str| Error::invalid("table", format!("`{table}` {m}"));
    let parts: Vec<&str> = table.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("has an empty name part"));
    }
    if table.contains('\0') {
        return Err(bad("contains a NUL character"));
    }
    match parts[..] {
        [t] => Ok((None, t)),
        [s, t] => Ok((Some(s), t)),
        _ => Err(bad(
            "has more than one dot; expected `table` or `schema.table`",
        )),
    }
}

/// `name` as a double-quoted SQL identifier (quotes doubled), for PostgreSQL and SQLite.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `CREATE TABLE table (…)` for a (normalized) schema: each column's type from
/// `column_type`, non-nullable fields NOT NULL. `table` is already quoted.
pub fn create_table_sql<T: std::fmt::Display>(
    table: &str,
    schema: &Schema,
    column_type: impl Fn(&str, &DataType) -> Result<T>,
) -> Result<String> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = column_type(f.name(), f.data_type())?;
            let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
            Ok(format!("{} {ty}{not_null}", quote_ident(f.name())))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("CREATE TABLE {table} ({})", cols.join(", ")))
}

/// The rows of a bulk insert as a backend writes them: the schema normalized and its
/// names checked now, each batch normalized and checked against it as it arrives.
pub fn normalize_rows(rows: QueryStream) -> Result<QueryStream> {
    let schema = normalize_schema(&rows.schema)?;
    check_names(&schema)?;
    let expected = schema.clone();
    let batches = rows
        .batches
        .map(move |b| {
            let b = normalize(&b?)?;
            check_batch(&expected, &b)?;
            Ok(b)
        })
        .boxed();
    Ok(QueryStream { schema, batches })
}

/// Why a column `name` of type `dt` has no column type to create on `database`; an
/// all-NULL column (Arrow type Null) has none anywhere.
pub fn no_column_type(name: &str, dt: &DataType, database: &str) -> Error {
    match dt {
        DataType::Null => Error::invalid(
            name,
            "an all-NULL column (Arrow type Null) has no column type to create; cast it",
        ),
        other => Error::invalid(
            name,
            format!("Arrow type {other} has no {database} column type"),
        ),
    }
}

/// The DDL a bulk insert runs before its rows: none to append, `create()` to create,
/// `DROP TABLE IF EXISTS table` and then `create()` to replace. `table` is quoted.
pub fn insert_ddl(
    mode: InsertMode,
    table: &str,
    create: impl FnOnce() -> Result<String>,
) -> Result<Option<String>> {
    Ok(match mode {
        InsertMode::Append => None,
        InsertMode::Create => Some(create()?),
        InsertMode::Replace => Some(format!("DROP TABLE IF EXISTS {table}; {}", create()?)),
    })
}

/// The target as a quoted, optionally schema-qualified SQL name.
pub fn quote_table(table: &str) -> Result<String> {
    Ok(match table_parts(table)? {
        (Some(s), t) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        (None, t) => quote_ident(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::*;
    use arrow::datatypes::{Field, Int32Type};

    #[test]
    fn polars_types_become_canonical() {
        let tz: Option<Arc<str>> = Some("Europe/Paris".into());
        let ns = TimestampNanosecondArray::from(vec![Some(1_500), None]).with_timezone_opt(tz);
        let list = LargeListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
        ]);
        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let batch = RecordBatch::try_from_iter(vec![
            (
                "s",
                Arc::new(StringViewArray::from(vec!["x", "y"])) as ArrayRef,
            ),
            ("l", Arc::new(LargeStringArray::from(vec![Some("z"), None]))),
            ("t", Arc::new(ns)),
            ("u8", Arc::new(UInt8Array::from(vec![255, 0]))),
            ("u64", Arc::new(UInt64Array::from(vec![1, 2]))),
            ("li", Arc::new(list)),
            ("d", Arc::new(dict.slice(0, 2))),
        ])
        .unwrap();
        let out = normalize(&batch).unwrap();
        let s = out.schema();
        assert_eq!(s.field(0).data_type(), &DataType::Utf8);
        assert_eq!(s.field(1).data_type(), &DataType::Utf8);
        assert_eq!(
            s.field(2).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("Europe/Paris".into()))
        );
        let t = out
            .column(2)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(t.value(0), 1);
        assert!(t.is_null(1));
        assert_eq!(s.field(3).data_type(), &DataType::Int16);
        assert_eq!(
            out.column(3)
                .as_primitive::<arrow::datatypes::Int16Type>()
                .value(0),
            255
        );
        assert_eq!(s.field(4).data_type(), &DataType::Int64);
        assert!(matches!(s.field(5).data_type(), DataType::List(_)));
        assert_eq!(s.field(6).data_type(), &DataType::Utf8);
        assert_eq!(out.column(6).as_string::<i32>().value(1), "b");
        check_batch(&normalize_schema(&batch.schema()).unwrap(), &out).unwrap();
    }

    #[test]
    fn overflow_and_unsupported_name_the_column() {
        let batch = RecordBatch::try_from_iter(vec![(
            "big",
            Arc::new(UInt64Array::from(vec![u64::MAX])) as ArrayRef,
        )])
        .unwrap();
        let e = normalize(&batch).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { field, .. } if field == "big"),
            "{e}"
        );
        let schema = Schema::new(vec![Field::new(
            "st",
            DataType::Struct(vec![Field::new("a", DataType::Int32, true)].into()),
            true,
        )]);
        let e = normalize_schema(&schema).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { field, .. } if field == "st"),
            "{e}"
        );
    }

    #[test]
    fn table_names() {
        assert_eq!(table_parts("t").unwrap(), (None, "t"));
        assert_eq!(table_parts("s.T").unwrap(), (Some("s"), "T"));
        assert!(table_parts("a.b.c").is_err());
        assert!(table_parts("a.").is_err());
        let dup = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("a", DataType::Utf8, true),
        ]);
        assert!(check_names(&dup).is_err());
        assert!(check_names(&Schema::empty()).is_err());
        assert_eq!(quote_table("s.we\"ird").unwrap(), "\"s\".\"we\"\"ird\"");
    }
}
