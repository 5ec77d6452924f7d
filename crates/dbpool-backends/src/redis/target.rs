//! The target of a Redis bulk insert: `[hash:|string:|list:|stream:]KEY [TTL seconds]`,
//! where a hash or string key is a template over columns (`user:{id}`).
use arrow::datatypes::Schema;
use dbpool_core::{Error, Result};

/// What kind of keys a bulk insert writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One hash per row, every column a field.
    Hash,
    /// One string per row, the value column not in the key.
    Str,
    /// One list; each row's single value pushed to its tail.
    List,
    /// One stream; each row an entry with the columns as fields.
    Stream,
}

/// Part of a key template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal bytes.
    Lit(Vec<u8>),
    /// The value of this column.
    Col(usize),
}

/// A parsed bulk insert target.
#[derive(Debug)]
pub struct Target {
    /// What the keys hold.
    pub kind: Kind,
    /// The key, or its template.
    pub key: Vec<Part>,
    /// Seconds until the written keys expire.
    pub ttl: Option<u64>,
    /// The columns written as values (all but the key columns of a string).
    pub values: Vec<usize>,
}

/// `[hash:|string:|list:|stream:]KEY [TTL seconds]`; a key template names columns in
/// braces (`user:{id}`), `{{` and `}}` are literal braces.
pub fn parse_target(table: &str, schema: &Schema, default_ttl: Option<u64>) -> Result<Target> {
    let bad = |m: String| Error::invalid("table", m);
    let mut table = table.trim();
    let mut ttl = default_ttl;
    if let Some(i) = table.to_ascii_uppercase().rfind(" TTL ") {
        let n = table[i + 5..].trim();
        ttl = Some(
            n.parse()
                .map_err(|_| bad(format!("TTL {n:?} is not a number of seconds")))?,
        )
        .filter(|t| *t > 0);
        table = table[..i].trim_end();
    }
    let (kind, template) = [
        ("hash:", Kind::Hash),
        ("string:", Kind::Str),
        ("list:", Kind::List),
        ("stream:", Kind::Stream),
    ]
    .iter()
    .find_map(|(p, k)| table.strip_prefix(p).map(|rest| (*k, rest)))
    .unwrap_or((Kind::Hash, table));
    let key = template_parts(template, schema)?;
    let in_key: Vec<usize> = key
        .iter()
        .filter_map(|p| match p {
            Part::Col(i) => Some(*i),
            Part::Lit(_) => None,
        })
        .collect();
    let all: Vec<usize> = (0..schema.fields().len()).collect();
    let one_column = |cols: Vec<usize>, what: &str| {
        if cols.len() == 1 {
            Ok(cols)
        } else {
            Err(bad(format!(
                "{what} takes exactly one value column, the stream has {}",
                cols.len()
            )))
        }
    };
    let values = match kind {
        Kind::Hash | Kind::Str if in_key.is_empty() => {
            return Err(bad(format!(
                "`{template}` names no column: write a key template such as `user:{{id}}`, \
                 or list:KEY / stream:KEY"
            )))
        }
        Kind::List | Kind::Stream if !in_key.is_empty() => {
            return Err(bad("a list or stream key is one key, not a template".into()))
        }
        Kind::Hash | Kind::Stream => all,
        Kind::Str => one_column(
            all.into_iter().filter(|i| !in_key.contains(i)).collect(),
            "string:",
        )?,
        Kind::List => one_column(all, "list:")?,
    };
    Ok(Target {
        kind,
        key,
        ttl,
        values,
    })
}

fn template_parts(t: &str, schema: &Schema) -> Result<Vec<Part>> {
    let bad = |m: String| Error::invalid("table", m);
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut rest = t;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            lit.push(c as u8);
            rest = &rest[2..];
        } else if c == '{' {
            let end = rest
                .find('}')
                .ok_or_else(|| bad(format!("unclosed `{{` in `{t}`")))?;
            let name = &rest[1..end];
            let i = schema.index_of(name).map_err(|_| {
                bad(format!(
                    "the key template names `{name}`, which is no column"
                ))
            })?;
            parts.push(Part::Lit(std::mem::take(&mut lit)));
            parts.push(Part::Col(i));
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err(bad(format!("unmatched `}}` in `{t}` (write `}}}}`)")));
        } else {
            let mut buf = [0u8; 4];
            lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    if t.is_empty() {
        return Err(bad("the key is empty".into()));
    }
    parts.push(Part::Lit(lit));
    parts.retain(|p| !matches!(p, Part::Lit(l) if l.is_empty()));
    Ok(parts)
}

impl Target {
    /// The key of a list or stream target, which names no column.
    pub fn key_literal(&self) -> Vec<u8> {
        self.key
            .iter()
            .flat_map(|p| match p {
                Part::Lit(l) => l.clone(),
                Part::Col(_) => Vec::new(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ])
    }

    #[test]
    fn targets() {
        let s = schema();
        let t = parse_target("user:{id} TTL 60", &s, None).unwrap();
        assert_eq!(
            (t.kind, t.ttl, t.values.clone()),
            (Kind::Hash, Some(60), vec![0, 1])
        );
        assert_eq!(t.key, vec![Part::Lit(b"user:".to_vec()), Part::Col(0)]);
        let t = parse_target("hash:{{tag}}:{id}", &s, Some(5)).unwrap();
        assert_eq!(t.key[0], Part::Lit(b"{tag}:".to_vec()));
        assert_eq!(t.ttl, Some(5));
        let t = parse_target("string:name:{id}", &s, None).unwrap();
        assert_eq!((t.kind, t.values), (Kind::Str, vec![1]));
        assert!(parse_target("list:l", &s, None).is_err()); // two columns
        assert!(parse_target("stream:s:{id}", &s, None).is_err());
        assert!(parse_target("users", &s, None).is_err());
        assert!(parse_target("user:{nope}", &s, None).is_err());
        assert!(parse_target("user:{id", &s, None).is_err());
        assert_eq!(
            parse_target("stream:ev TTL 0", &s, Some(9)).unwrap().ttl,
            None
        );
    }
}
