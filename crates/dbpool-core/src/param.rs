//! Typed bind parameters: values travel to the database as parameters, never as SQL text.

/// One bind parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer (narrowed with a range check when the column is smaller).
    Int64(i64),
    /// A 64-bit float.
    Double(f64),
    /// Text; the database parses it when the target type is not text.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An instant, in microseconds since the Unix epoch, UTC.
    TimestampMicros(i64),
    /// An exact decimal in textual form, e.g. `"-12.3400"`.
    Decimal(String),
}

impl Param {
    /// Checks a decimal's text: optional sign, digits, optional fraction.
    pub fn validate_decimal(s: &str) -> bool {
        let body = s.strip_prefix(['-', '+']).unwrap_or(s);
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        !(int.is_empty() && frac.is_empty())
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.chars().all(|c| c.is_ascii_digit())
    }
}

#[cfg(test)]
mod tests {
    use super::Param;

    #[test]
    fn decimal_text() {
        assert!(Param::validate_decimal("-12.50"));
        assert!(Param::validate_decimal("7"));
        assert!(Param::validate_decimal(".5"));
        assert!(!Param::validate_decimal("1e5"));
        assert!(!Param::validate_decimal("1.2.3"));
        assert!(!Param::validate_decimal("-"));
    }
}
