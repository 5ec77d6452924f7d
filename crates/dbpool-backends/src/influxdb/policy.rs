//! Which InfluxQL statements a pool may run: the operator's `denied_statements` and
//! `allowed_statements` (docs/influxdb.md), matched against the leading keywords of
//! every statement of a request.
//!
//! Statements are found without modelling InfluxQL's quotes and regex literals: every
//! `;` of the text is taken as a possible statement start, also one inside a string.
//! A tokenizer that disagreed with InfluxDB's about where a string or a `/regex/` ends
//! could be tricked into missing a `; DROP DATABASE x`; looking after every `;` cannot,
//! at the price of refusing a string that itself holds `; DROP DATABASE …`.
use dbpool_core::{Error, Result};
use std::collections::BTreeMap;

/// Statements denied when `settings.denied_statements` is not given: server and user
/// administration, retention changes, subscriptions (InfluxDB would copy every write to
/// any host) and continuous queries (run forever as the pool's user), and killing other
/// clients' queries. Deleting the pool's own points (DELETE, DROP SERIES,
/// DROP MEASUREMENT) is allowed, as DEL is on Redis.
pub const DEFAULT_DENIED_STATEMENTS: &[&str] = &[
    "CREATE DATABASE",
    "DROP DATABASE",
    "CREATE RETENTION POLICY",
    "ALTER",
    "DROP RETENTION POLICY",
    "DROP SHARD",
    "CREATE USER",
    "DROP USER",
    "SET PASSWORD",
    "GRANT",
    "REVOKE",
    "CREATE SUBSCRIPTION",
    "DROP SUBSCRIPTION",
    "CREATE CONTINUOUS QUERY",
    "DROP CONTINUOUS QUERY",
    "KILL",
];

/// Leading keywords read per statement: the longest entry, `CREATE CONTINUOUS QUERY`,
/// has three.
const HEAD_WORDS: usize = 4;

/// A keyword is never longer; a longer word ends the head.
const MAX_WORD: usize = 32;

/// A pool's statement policy. Entries are keyword sequences; the longest entry that
/// starts a statement decides, an allow beats a deny of the same length, and a
/// statement no entry starts is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementPolicy {
    denied: Vec<Vec<String>>,
    allowed: Vec<Vec<String>>,
}

impl Default for StatementPolicy {
    fn default() -> Self {
        StatementPolicy {
            denied: DEFAULT_DENIED_STATEMENTS.iter().map(|s| words(s)).collect(),
            allowed: Vec::new(),
        }
    }
}

/// `drop  database` → `["DROP", "DATABASE"]`.
fn words(entry: &str) -> Vec<String> {
    entry
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

/// A comma-separated list of entries; each must be keywords only.
fn list(key: &str, value: &str) -> Result<Vec<Vec<String>>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let w = words(entry);
            let ok = w.len() <= HEAD_WORDS
                && w.iter().all(|w| {
                    w.len() <= MAX_WORD && w.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
                });
            if ok {
                Ok(w)
            } else {
                Err(Error::invalid(
                    format!("settings.{key}"),
                    format!(
                        "`{entry}` is not a statement's leading keywords (e.g. `DROP DATABASE`)"
                    ),
                ))
            }
        })
        .collect()
}

impl StatementPolicy {
    /// Reads `denied_statements` (replaces the default list) and `allowed_statements`.
    pub fn parse(settings: &BTreeMap<String, String>) -> Result<Self> {
        let mut p = StatementPolicy::default();
        if let Some(v) = settings.get("denied_statements") {
            p.denied = list("denied_statements", v)?;
        }
        if let Some(v) = settings.get("allowed_statements") {
            p.allowed = list("allowed_statements", v)?;
        }
        Ok(p)
    }

    /// PERMISSION_DENIED naming the first denied statement of `sql`, if any.
    pub fn check(&self, sql: &str) -> Result<()> {
        for head in heads(sql) {
            self.check_head(&head)?;
        }
        Ok(())
    }

    /// Checks one statement given by its leading keywords (upper case).
    pub fn check_head(&self, head: &[String]) -> Result<()> {
        let longest = |entries: &[Vec<String>]| {
            entries
                .iter()
                .filter(|e| !e.is_empty() && head.starts_with(e))
                .map(Vec::len)
                .max()
        };
        match (longest(&self.denied), longest(&self.allowed)) {
            (Some(d), a) if a.is_none_or(|a| a < d) => Err(Error::PermissionDenied(format!(
                "InfluxQL `{}` is denied on this pool (see settings.denied_statements and \
                 settings.allowed_statements)",
                head[..d].join(" ")
            ))),
            _ => Ok(()),
        }
    }
}

/// The leading keywords (upper case) of every possible statement of `sql`: at the start
/// and after every `;`. Linear in the length of `sql` up to a log factor.
pub fn heads(sql: &str) -> Vec<Vec<String>> {
    let text = Text::new(sql);
    std::iter::once(0)
        .chain(sql.match_indices(';').map(|(i, _)| i + 1))
        .map(|start| text.head_at(start))
        .filter(|h| !h.is_empty())
        .collect()
}

/// The text with where its comments end, found once so that skipping a comment from
/// each of many `;` does not scan the rest of the text each time.
struct Text<'a> {
    s: &'a str,
    /// Positions of every `\n`.
    newlines: Vec<usize>,
    /// Positions just after every `*/`.
    block_ends: Vec<usize>,
}

impl<'a> Text<'a> {
    fn new(s: &'a str) -> Self {
        Text {
            s,
            newlines: s.match_indices('\n').map(|(i, _)| i).collect(),
            block_ends: s.match_indices("*/").map(|(i, _)| i + 2).collect(),
        }
    }

    /// Skips whitespace (any Unicode whitespace: wider than InfluxQL's, so a keyword is
    /// never missed) and `--` and `/* */` comments from `i`.
    fn skip(&self, mut i: usize) -> usize {
        let b = self.s.as_bytes();
        loop {
            let rest = &self.s[i..];
            let trimmed = rest.trim_start();
            i += rest.len() - trimmed.len();
            if b[i..].starts_with(b"--") {
                let k = self.newlines.partition_point(|&n| n < i);
                i = self.newlines.get(k).copied().unwrap_or(b.len());
            } else if b[i..].starts_with(b"/*") {
                let k = self.block_ends.partition_point(|&e| e < i + 4);
                i = self.block_ends.get(k).copied().unwrap_or(b.len());
            } else {
                return i;
            }
        }
    }

    /// Up to `HEAD_WORDS` keywords from `start`; stops at anything not a word.
    fn head_at(&self, start: usize) -> Vec<String> {
        let b = self.s.as_bytes();
        let mut out = Vec::new();
        let mut i = start;
        while out.len() < HEAD_WORDS {
            i = self.skip(i);
            let len = b[i..]
                .iter()
                .take(MAX_WORD + 1)
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if len == 0 || len > MAX_WORD {
                break;
            }
            out.push(self.s[i..i + len].to_ascii_uppercase());
            i += len;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(sql: &str) -> Vec<String> {
        heads(sql).into_iter().map(|w| w.join(" ")).collect()
    }

    #[test]
    fn heads_of_every_statement() {
        assert_eq!(
            h("select * from m; DROP/* x */database\tx;\n-- c\n  create user u"),
            ["SELECT", "DROP DATABASE X", "CREATE USER U"]
        );
        // A `;` inside a string or regex is a statement start too (fail closed).
        assert_eq!(
            h("SELECT * FROM m WHERE a =~ /'/; DROP DATABASE d; SELECT '/"),
            ["SELECT", "DROP DATABASE D", "SELECT"]
        );
        assert_eq!(h(";;  ;/* open"), Vec::<String>::new());
        assert_eq!(h("--x\nSHOW DATABASES"), ["SHOW DATABASES"]);
        assert_eq!(h("/**/kill/*/ */ query 1"), ["KILL QUERY 1"]);
        assert_eq!(h("DROP\u{a0}\u{2003}DATABASE x"), ["DROP DATABASE X"]);
        assert_eq!(h(&"a".repeat(40)), Vec::<String>::new());
        assert_eq!(h("é; ü"), Vec::<String>::new());
    }

    #[test]
    fn pathological_text_is_linear() {
        let sql = ";/*;--".repeat(200_000);
        let t = std::time::Instant::now();
        assert!(heads(&sql).is_empty());
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    fn denied(p: &StatementPolicy, sql: &str) -> bool {
        match p.check(sql) {
            Ok(()) => false,
            Err(Error::PermissionDenied(m)) => {
                assert!(m.contains("settings.denied_statements"), "{m}");
                true
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn default_policy() {
        let p = StatementPolicy::default();
        for sql in [
            "DROP DATABASE x",
            "drop retention policy \"a\" on db",
            "CREATE USER u WITH PASSWORD 'p' WITH ALL PRIVILEGES",
            "GRANT ALL TO u",
            "revoke all from u",
            "SET PASSWORD FOR u = 'x'",
            "KILL QUERY 12",
            "ALTER RETENTION POLICY a ON d DEFAULT",
            "CREATE SUBSCRIPTION s ON d.a DESTINATIONS ALL 'http://x'",
            "SELECT 1; CREATE DATABASE y",
            "CREATE CONTINUOUS QUERY q ON d BEGIN SELECT 1 END",
        ] {
            assert!(denied(&p, sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM m",
            "SHOW DATABASES",
            "SHOW USERS",
            "DELETE FROM m WHERE time < now()",
            "DROP MEASUREMENT m",
            "DROP SERIES FROM m",
            "EXPLAIN SELECT * FROM m",
            "SELECT * FROM m WHERE t = 'drop database x'",
        ] {
            assert!(!denied(&p, sql), "{sql}");
        }
    }

    #[test]
    fn operator_lists() {
        let s = |pairs: &[(&str, &str)]| {
            StatementPolicy::parse(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let p = s(&[("allowed_statements", "create database, drop database")]).unwrap();
        assert!(!denied(&p, "CREATE DATABASE x"));
        assert!(denied(&p, "CREATE USER x WITH PASSWORD 'y'"));
        let p = s(&[("denied_statements", "DROP, delete")]).unwrap();
        assert!(denied(&p, "DROP MEASUREMENT m"));
        assert!(denied(&p, "delete from m"));
        assert!(!denied(&p, "CREATE USER x WITH PASSWORD 'y'"));
        let p = s(&[
            ("denied_statements", "DROP"),
            ("allowed_statements", "DROP SERIES"),
        ])
        .unwrap();
        assert!(!denied(&p, "DROP SERIES FROM m"));
        assert!(denied(&p, "DROP MEASUREMENT m"));
        let p = s(&[("denied_statements", "")]).unwrap();
        assert!(!denied(&p, "DROP DATABASE x"));
        let e = s(&[("denied_statements", "DROP 'x'")]).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { field, .. } if field == "settings.denied_statements")
        );
    }
}
