//! Line-protocol escaping, as InfluxDB 1.x parses it (and 2.x/3.x accept it too).
//!
//! Measurements escape `,` and space; tag keys, tag values and field keys also `=`;
//! string field values escape `"` and `\`. Elsewhere a backslash is literal unless it
//! stands before a character that needs escaping, so `a\,b` is written `a\\,b`. Two
//! things have no escape at all and are refused: a line break in a name or tag, and a
//! name or tag ending in a backslash (it would escape the separator after it). InfluxDB
//! 1.x unescapes measurement names twice, so there a backslash before `,` or a space is
//! refused as well (the name `a\,b`, written `a\\,b`, would come back as `a,b`).

/// Why a name or tag value cannot be written; the caller adds which column or row.
pub type Refusal = String;

fn check(what: &str, s: &str) -> Result<(), Refusal> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.contains(['\n', '\r']) {
        return Err(format!("{what} {s:?} contains a line break"));
    }
    if s.ends_with('\\') {
        return Err(format!(
            "{what} {s:?} ends with a backslash, which line protocol cannot express"
        ));
    }
    Ok(())
}

fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Appends a measurement name.
pub fn measurement(out: &mut String, s: &str) -> Result<(), Refusal> {
    check("measurement name", s)?;
    if s.starts_with('#') {
        // A line starting with `#` is a comment, and `#` has no escape.
        return Err(format!("measurement name {s:?} starts with `#`"));
    }
    if s.contains("\\,") || s.contains("\\ ") {
        return Err(format!(
            "measurement name {s:?} has a backslash before `,` or a space, which InfluxDB 1.x \
             does not keep"
        ));
    }
    escape_into(out, s, &[',', ' ']);
    Ok(())
}

/// Appends a tag key, tag value or field key.
pub fn key(out: &mut String, what: &str, s: &str) -> Result<(), Refusal> {
    check(what, s)?;
    escape_into(out, s, &[',', ' ', '=']);
    Ok(())
}

/// Appends a string field value, quotes included.
pub fn string_value(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s, &['"', '\\']);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Result<String, Refusal> {
        let mut o = String::new();
        measurement(&mut o, s).map(|_| o)
    }

    fn k(s: &str) -> Result<String, Refusal> {
        let mut o = String::new();
        key(&mut o, "tag value", s).map(|_| o)
    }

    fn sv(s: &str) -> String {
        let mut o = String::new();
        string_value(&mut o, s);
        o
    }

    #[test]
    fn measurement_escapes_comma_and_space_only() {
        assert_eq!(m("cpu load,x=1").unwrap(), r"cpu\ load\,x=1");
        assert_eq!(m(r"a\b").unwrap(), r"a\b");
        assert!(m(r"a\,b").is_err());
        assert!(m(r"a\ b").is_err());
        assert_eq!(m("température °C").unwrap(), r"température\ °C");
        assert!(m("").is_err());
        assert!(m("#x").is_err());
        assert!(m(r"x\").is_err());
        assert!(m("a\nb").is_err());
    }

    #[test]
    fn keys_escape_equals_too() {
        assert_eq!(k("a b,c=d").unwrap(), r"a\ b\,c\=d");
        assert_eq!(k(r#"q"uote"#).unwrap(), r#"q"uote"#);
        assert_eq!(k(r"a\ b").unwrap(), r"a\\ b");
        assert_eq!(k("日本").unwrap(), "日本");
        assert!(k(r"C:\").is_err());
        assert!(k("a\rb").is_err());
    }

    #[test]
    fn string_values_escape_quotes_and_backslashes() {
        assert_eq!(sv(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(sv(r"ends\"), r#""ends\\""#);
        assert_eq!(sv("two\nlines, a=b"), "\"two\nlines, a=b\"");
    }
}
