//! Bulk insert, shared by every API version: a DataFrame's columns planned as the time,
//! the tags and the fields of a measurement, each row encoded as one line of line
//! protocol (NULL fields and tags omitted, timestamps in nanoseconds).
use super::config::{split_list, InfluxConfig};
use super::line;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int64Type, Schema, TimeUnit, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Result};
use std::fmt::Write;

/// Where a bulk insert goes: `measurement?tags=a,b&time=ts` (the query part optional,
/// each key overriding the pool's `tag_columns` / `time_column` settings; `tag=a,b`
/// names one column whose name holds a comma).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Measurement name, as stored.
    pub measurement: String,
    /// Columns written as tags.
    pub tags: Vec<String>,
    /// Column holding the timestamp.
    pub time: String,
}

impl Target {
    /// Parses the bulk-insert table string with the pool's defaults.
    pub fn parse(table: &str, cfg: &InfluxConfig) -> Result<Target> {
        let (measurement, query) = table.split_once('?').unwrap_or((table, ""));
        let mut t = Target {
            measurement: measurement.to_string(),
            tags: cfg.tag_columns.clone(),
            time: cfg.time_column.clone(),
        };
        // The first `tags`/`tag` replaces the pool's tag columns, later ones add to it.
        let mut explicit = false;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "tags" if !explicit => {
                    explicit = true;
                    t.tags = split_list(&v);
                }
                "tags" => t.tags.extend(split_list(&v)),
                // One column whose name may hold a comma.
                "tag" if !v.is_empty() => {
                    if !explicit {
                        explicit = true;
                        t.tags.clear();
                    }
                    t.tags.push(v.into_owned());
                }
                "time" if !v.trim().is_empty() => t.time = v.trim().to_string(),
                _ => {
                    return Err(Error::invalid(
                        "table",
                        format!("unknown or empty option `{k}` (known: tags, tag, time)"),
                    ))
                }
            }
        }
        let mut m = String::new();
        line::measurement(&mut m, &t.measurement).map_err(|e| Error::invalid("table", e))?;
        Ok(t)
    }
}

/// How a field column is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Bool,
    Int,
    UInt,
    Float32,
    Float64,
    Str,
}

/// The type a field column is cast to before encoding, and how it is written.
fn field_kind(dt: &DataType) -> Option<(DataType, FieldKind)> {
    use DataType::*;
    Some(match dt {
        Boolean => (Boolean, FieldKind::Bool),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => (Int64, FieldKind::Int),
        UInt64 => (UInt64, FieldKind::UInt),
        Float32 => (Float32, FieldKind::Float32),
        Float16 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => {
            (Float64, FieldKind::Float64)
        }
        Utf8 | LargeUtf8 | Utf8View => (Utf8, FieldKind::Str),
        Dictionary(_, v) if matches!(**v, Utf8 | LargeUtf8 | Utf8View) => (Utf8, FieldKind::Str),
        _ => return None,
    })
}

/// Nanoseconds per unit of a time column, after casting it to Int64.
fn time_scale(dt: &DataType) -> Option<i64> {
    Some(match dt {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) | DataType::Int64 => 1,
        DataType::Date32 => 86_400_000_000_000,
        _ => return None,
    })
}

/// The checked plan of a bulk insert: which column is what, names already escaped.
#[derive(Debug)]
pub struct Plan {
    schema: Schema,
    measurement: String,
    time: (usize, i64),
    /// Sorted by key, as InfluxDB stores them.
    tags: Vec<(usize, String)>,
    /// Column, escaped key, type to cast to, how to write.
    fields: Vec<(usize, String, DataType, FieldKind)>,
}

impl Plan {
    /// Checks the schema against the target before any row is written.
    pub fn new(target: &Target, schema: &Schema) -> Result<Plan> {
        let mut measurement = String::new();
        line::measurement(&mut measurement, &target.measurement)
            .map_err(|e| Error::invalid("table", e))?;
        let index = |name: &str, role: &str| {
            schema.index_of(name).map_err(|_| {
                Error::invalid(
                    name,
                    format!(
                        "the {role} column `{name}` is not in the stream (columns: {}); name it \
                         with `?time=`/`?tags=` in the table or the pool's time_column/tag_columns",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        };
        let time_idx = index(&target.time, "time")?;
        let time_type = schema.field(time_idx).data_type();
        let scale = time_scale(time_type).ok_or_else(|| {
            Error::invalid(
                &target.time,
                format!("a time column must be Timestamp, Date32, Date64 or Int64 (ns), not {time_type}"),
            )
        })?;
        let mut tags = Vec::new();
        for t in &target.tags {
            let i = index(t, "tag")?;
            if i == time_idx || tags.iter().any(|(j, _)| *j == i) {
                return Err(Error::invalid(
                    t,
                    "named twice among the time and tag columns",
                ));
            }
            let dt = schema.field(i).data_type();
            if !arrow::compute::can_cast_types(dt, &DataType::Utf8) || dt.is_nested() {
                return Err(Error::invalid(t, format!("a {dt} column cannot be a tag")));
            }
            let mut key = String::new();
            line::key(&mut key, "tag key", t).map_err(|e| Error::invalid(t, e))?;
            tags.push((i, key));
        }
        tags.sort_by(|a, b| a.1.cmp(&b.1));
        let mut fields = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if i == time_idx || tags.iter().any(|(j, _)| *j == i) {
                continue;
            }
            let (dt, kind) = field_kind(f.data_type()).ok_or_else(|| {
                Error::invalid(
                    f.name(),
                    format!("Arrow type {} cannot be an InfluxDB field", f.data_type()),
                )
            })?;
            let mut key = String::new();
            line::key(&mut key, "field key", f.name()).map_err(|e| Error::invalid(f.name(), e))?;
            fields.push((i, key, dt, kind));
        }
        if fields.is_empty() {
            return Err(Error::invalid(
                "schema",
                "no field column: every column is the time or a tag",
            ));
        }
        Ok(Plan {
            schema: schema.clone(),
            measurement,
            time: (time_idx, scale),
            tags,
            fields,
        })
    }

    /// Casts one batch's columns for encoding; `base` is the number of earlier rows.
    pub fn prepare(&self, batch: &RecordBatch, base: u64) -> Result<Rows<'_>> {
        let same = batch.schema().fields().len() == self.schema.fields().len()
            && batch
                .schema()
                .fields()
                .iter()
                .zip(self.schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same {
            return Err(Error::invalid(
                "stream",
                "a record batch's schema differs from the stream's",
            ));
        }
        let col = |i: usize, dt: &DataType| -> Result<ArrayRef> {
            cast(batch.column(i), dt).map_err(|e| {
                Error::invalid(self.schema.field(i).name(), format!("cannot convert: {e}"))
            })
        };
        let time = col(self.time.0, &DataType::Int64)?;
        let tags = self
            .tags
            .iter()
            .map(|(i, _)| col(*i, &DataType::Utf8))
            .collect::<Result<_>>()?;
        let fields = self
            .fields
            .iter()
            .map(|(i, _, dt, _)| col(*i, dt))
            .collect::<Result<_>>()?;
        Ok(Rows {
            plan: self,
            time,
            tags,
            fields,
            base,
        })
    }
}

/// One batch ready to encode row by row.
pub struct Rows<'a> {
    plan: &'a Plan,
    time: ArrayRef,
    tags: Vec<ArrayRef>,
    fields: Vec<ArrayRef>,
    base: u64,
}

impl Rows<'_> {
    fn refuse(&self, col: usize, row: usize, m: impl std::fmt::Display) -> Error {
        let name = self.plan.schema.field(col).name();
        Error::invalid(name, format!("row {}: {m}", self.base + row as u64))
    }

    /// Appends row `row` as a line; `false` (nothing appended) when all fields are NULL.
    pub fn write_row(&self, row: usize, out: &mut String) -> Result<bool> {
        let start = out.len();
        out.push_str(&self.plan.measurement);
        for ((col, key), arr) in self.plan.tags.iter().zip(&self.tags) {
            let v = arr.as_string::<i32>();
            if v.is_null(row) || v.value(row).is_empty() {
                continue; // a missing tag, as InfluxDB has no empty ones
            }
            out.push(',');
            out.push_str(key);
            out.push('=');
            line::key(out, "tag value", v.value(row)).map_err(|m| self.refuse(*col, row, m))?;
        }
        let mut sep = ' ';
        for ((col, key, _, kind), arr) in self.plan.fields.iter().zip(&self.fields) {
            if arr.is_null(row) {
                continue;
            }
            let mark = out.len();
            out.push(sep);
            out.push_str(key);
            out.push('=');
            match kind {
                FieldKind::Bool => out.push_str(if arr.as_boolean().value(row) {
                    "true"
                } else {
                    "false"
                }),
                FieldKind::Int => {
                    let _ = write!(out, "{}i", arr.as_primitive::<Int64Type>().value(row));
                }
                FieldKind::UInt => {
                    let v = arr.as_primitive::<UInt64Type>().value(row);
                    if v > i64::MAX as u64 {
                        return Err(self.refuse(
                            *col,
                            row,
                            format!("{v} does not fit InfluxDB's 64-bit signed integer"),
                        ));
                    }
                    let _ = write!(out, "{v}i");
                }
                FieldKind::Float32 | FieldKind::Float64 => {
                    let v = match kind {
                        FieldKind::Float32 => {
                            f64::from(arr.as_primitive::<Float32Type>().value(row))
                        }
                        _ => arr.as_primitive::<Float64Type>().value(row),
                    };
                    if v.is_nan() {
                        out.truncate(mark);
                        continue; // NaN is written as missing: InfluxDB cannot store it
                    }
                    if v.is_infinite() {
                        return Err(self.refuse(
                            *col,
                            row,
                            "InfluxDB cannot store an infinite float",
                        ));
                    }
                    // `{:?}` is the shortest text that reads back as the same value
                    // (`1.0`, `1e-7`); an f32 printed as f32 stays `0.1`, not 0.100000001….
                    let _ = match kind {
                        FieldKind::Float32 => {
                            write!(out, "{:?}", arr.as_primitive::<Float32Type>().value(row))
                        }
                        _ => write!(out, "{v:?}"),
                    };
                }
                FieldKind::Str => line::string_value(out, arr.as_string::<i32>().value(row)),
            }
            sep = ',';
        }
        if sep == ' ' {
            out.truncate(start);
            return Ok(false);
        }
        let (col, scale) = self.plan.time;
        if self.time.is_null(row) {
            return Err(self.refuse(col, row, "the time is NULL"));
        }
        let ns = self
            .time
            .as_primitive::<Int64Type>()
            .value(row)
            .checked_mul(scale)
            .ok_or_else(|| self.refuse(col, row, "the time does not fit 64-bit nanoseconds"))?;
        let _ = writeln!(out, " {ns}");
        Ok(true)
    }
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;
