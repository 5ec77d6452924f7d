//! Size bounds on request fields, from `server.limits`: checked where a request enters,
//! before anything is allocated or sent to a database. Errors name the field and the
//! allowed range and never echo the oversized value.
use dbpool_config::Limits;
use dbpool_core::{Error, Result};

/// Longest connection field of a CreatePool (URL, host, database, user, password, each
/// setting): far above any real one, small enough to be logged redacted.
pub const MAX_CONNECTION_FIELD_BYTES: usize = 4096;
/// Most backend settings and backup URLs one CreatePool may carry.
pub const MAX_POOL_LIST_ITEMS: usize = 64;

/// An id (pool, transaction, statement handle, table name): at most `max_id_bytes`.
pub fn id(l: &Limits, field: &str, v: &str) -> Result<()> {
    bytes(field, v.len(), l.max_id_bytes)
}

/// A statement's text: at most `max_sql_bytes`.
pub fn sql(l: &Limits, field: &str, v: &str) -> Result<()> {
    bytes(field, v.len(), l.max_sql_bytes)
}

/// A statement's parameter count: at most `max_params`.
pub fn params(l: &Limits, field: &str, n: usize) -> Result<()> {
    count(field, n, l.max_params, "parameters")
}

/// An ExecuteBatch's statement count: at most `max_batch_statements`.
pub fn statements(l: &Limits, field: &str, n: usize) -> Result<()> {
    count(field, n, l.max_batch_statements, "statements")
}

/// A requested `batch_size`: 0 (the pool's default) or 1..=`max_batch_rows`.
pub fn batch_size(l: &Limits, field: &str, v: u32) -> Result<()> {
    if v > l.max_batch_rows {
        return Err(Error::invalid(
            field,
            format!(
                "{v} is out of range: 0 (the pool's default) or 1..={} rows (server.limits.max_batch_rows)",
                l.max_batch_rows
            ),
        ));
    }
    Ok(())
}

/// A string of a CreatePool's connection fields.
pub fn connection_field(field: &str, v: &str) -> Result<()> {
    bytes(field, v.len(), MAX_CONNECTION_FIELD_BYTES)
}

/// A list of a CreatePool (settings, backup URLs).
pub fn pool_list(field: &str, n: usize) -> Result<()> {
    count(field, n, MAX_POOL_LIST_ITEMS, "entries")
}

fn bytes(field: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::invalid(
            field,
            format!("is {len} bytes long, at most {max} are allowed"),
        ));
    }
    Ok(())
}

fn count(field: &str, n: usize, max: usize, what: &str) -> Result<()> {
    if n > max {
        return Err(Error::invalid(
            field,
            format!("has {n} {what}, at most {max} are allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_field_and_range_without_echoing() {
        let l = Limits::default();
        let long = "x".repeat(10_000);
        let e = id(&l, "pool_id", &long).unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { field, .. } if field == "pool_id"));
        let m = e.to_string();
        assert!(m.contains("10000 bytes") && m.contains("128"), "{m}");
        assert!(!m.contains("xxxx"), "{m}");
        id(&l, "pool_id", &"x".repeat(128)).unwrap();
        batch_size(&l, "batch_size", 0).unwrap();
        batch_size(&l, "batch_size", l.max_batch_rows).unwrap();
        let m = batch_size(&l, "batch_size", u32::MAX)
            .unwrap_err()
            .to_string();
        assert!(m.contains("batch_size") && m.contains("1..=65536"), "{m}");
        params(&l, "params", l.max_params).unwrap();
        assert!(params(&l, "params", l.max_params + 1).is_err());
        assert!(statements(&l, "statements", l.max_batch_statements + 1).is_err());
        assert!(sql(&l, "sql", &"s".repeat(l.max_sql_bytes + 1)).is_err());
    }
}
