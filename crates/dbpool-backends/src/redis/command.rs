//! Redis command lines as redis-cli reads them (double quotes with escapes, single
//! quotes), with parameters bound to `$N` placeholders or appended as arguments.
use dbpool_core::{Error, Param, Result};

/// A parsed command: its arguments as bytes, the command name first.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Every argument including the name.
    pub args: Vec<Vec<u8>>,
}

impl Command {
    /// Parses `line` and binds `params`: to the unquoted `$1`, `$2`, … tokens when there
    /// are any (each parameter must be used), else appended after the last argument.
    pub fn parse(line: &str, params: Vec<Param>) -> Result<Command> {
        let tokens = split(line)?;
        if tokens.is_empty() {
            return Err(Error::invalid("sql", "is empty"));
        }
        let values = params
            .into_iter()
            .enumerate()
            .map(|(i, p)| param_bytes(i, p))
            .collect::<Result<Vec<_>>>()?;
        let has_placeholder = tokens.iter().any(|t| placeholder(t).is_some());
        if !has_placeholder {
            let mut args: Vec<Vec<u8>> = tokens.into_iter().map(|t| t.bytes).collect();
            args.extend(values);
            return Ok(Command { args });
        }
        let mut used = vec![false; values.len()];
        let mut args = Vec::with_capacity(tokens.len());
        for t in tokens {
            match placeholder(&t) {
                Some(n) if n <= values.len() => {
                    used[n - 1] = true;
                    args.push(values[n - 1].clone());
                }
                Some(n) => {
                    return Err(Error::invalid(
                        "params",
                        format!("${n} is used but {} parameters were given", values.len()),
                    ))
                }
                None => args.push(t.bytes),
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(Error::invalid(
                format!("params[{i}]"),
                format!("no ${} placeholder uses it", i + 1),
            ));
        }
        Ok(Command { args })
    }

    /// The command name, upper case.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).to_ascii_uppercase()
    }

    /// The second argument upper case (the subcommand of `CONFIG GET`, `CLIENT KILL`).
    pub fn sub(&self) -> Option<String> {
        self.args
            .get(1)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
    }

    /// Whether some argument after the name is `word`, ignoring case (`WITHSCORES`).
    pub fn has_flag(&self, word: &str) -> bool {
        self.args[1..]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// The command for the driver.
    pub fn to_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::Cmd::new();
        for a in &self.args {
            cmd.arg(&a[..]);
        }
        cmd
    }
}

/// One argument of a command line, and whether any part of it was quoted.
struct Token {
    bytes: Vec<u8>,
    quoted: bool,
}

/// `$N` (N ≥ 1) written without quotes.
fn placeholder(t: &Token) -> Option<usize> {
    let digits = t.bytes.strip_prefix(b"$").filter(|_| !t.quoted)?;
    let s = std::str::from_utf8(digits).ok()?;
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits like redis-cli (`sdssplitargs`): `"…"` knows `\n \r \t \b \a \\ \" \xHH`,
/// `'…'` knows only `\'`, and a closing quote must end the argument.
fn split(line: &str) -> Result<Vec<Token>> {
    let b = line.as_bytes();
    let bad = |m: &str| Error::invalid("sql", m.to_string());
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        let mut tok = Token {
            bytes: Vec::new(),
            quoted: false,
        };
        while i < b.len() && !b[i].is_ascii_whitespace() {
            let quote = b[i];
            if quote != b'"' && quote != b'\'' {
                tok.bytes.push(quote);
                i += 1;
                continue;
            }
            tok.quoted = true;
            i += 1;
            loop {
                let Some(&c) = b.get(i) else {
                    return Err(bad("unbalanced quotes"));
                };
                i += 1;
                if c == quote {
                    break;
                }
                if c != b'\\' || i == b.len() {
                    tok.bytes.push(c);
                    continue;
                }
                let e = b[i];
                i += 1;
                if quote == b'\'' {
                    if e != b'\'' {
                        tok.bytes.push(b'\\');
                    }
                    tok.bytes.push(e);
                    continue;
                }
                let hex = |c: u8| (c as char).to_digit(16);
                match e {
                    b'x' if i + 1 < b.len() => match (hex(b[i]), hex(b[i + 1])) {
                        (Some(h), Some(l)) => {
                            tok.bytes.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => tok.bytes.push(b'x'),
                    },
                    b'n' => tok.bytes.push(b'\n'),
                    b'r' => tok.bytes.push(b'\r'),
                    b't' => tok.bytes.push(b'\t'),
                    b'b' => tok.bytes.push(8),
                    b'a' => tok.bytes.push(7),
                    other => tok.bytes.push(other),
                }
            }
            if i < b.len() && !b[i].is_ascii_whitespace() {
                return Err(bad("a closing quote must be followed by a space"));
            }
        }
        out.push(tok);
    }
}

/// A parameter as a Redis argument. Redis has no NULL and no types: numbers become
/// their decimal text, booleans `1`/`0`, timestamps integer microseconds.
fn param_bytes(i: usize, p: Param) -> Result<Vec<u8>> {
    Ok(match p {
        Param::Null => {
            return Err(Error::invalid(
                format!("params[{i}]"),
                "Redis has no NULL argument",
            ))
        }
        Param::Bool(b) => if b { b"1" } else { b"0" }.to_vec(),
        Param::Int64(v) | Param::TimestampMicros(v) => v.to_string().into_bytes(),
        Param::Double(v) => v.to_string().into_bytes(),
        Param::String(s) | Param::Decimal(s) => s.into_bytes(),
        Param::Bytes(b) => b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str, params: Vec<Param>) -> Vec<Vec<u8>> {
        Command::parse(line, params).unwrap().args
    }

    #[test]
    fn quoting_like_redis_cli() {
        assert_eq!(
            args(r#"HSET "user:1" 'na\'me' "a b\x41\n" x"#, vec![]),
            vec![
                b"HSET".to_vec(),
                b"user:1".to_vec(),
                b"na'me".to_vec(),
                b"a bA\n".to_vec(),
                b"x".to_vec()
            ]
        );
        assert_eq!(args(r#"SET k "\xff\x00""#, vec![])[2], vec![0xff, 0]);
        assert_eq!(args(r#"SET k ''"#, vec![])[2], Vec::<u8>::new());
        for bad in [r#"GET "k"#, r#"GET "k"x"#, "   "] {
            assert!(Command::parse(bad, vec![]).is_err(), "{bad}");
        }
    }

    #[test]
    fn params_bind_or_append() {
        let p = || vec![Param::String("k".into()), Param::Int64(-3)];
        assert_eq!(
            args("LRANGE", p()),
            vec![b"LRANGE".to_vec(), b"k".to_vec(), b"-3".to_vec()]
        );
        assert_eq!(
            args("SET $1 $2 \"$1\"", p()),
            vec![
                b"SET".to_vec(),
                b"k".to_vec(),
                b"-3".to_vec(),
                b"$1".to_vec()
            ]
        );
        assert!(Command::parse("GET $1", p()).is_err()); // $2 unused
        assert!(Command::parse("GET $3", p()).is_err());
        assert!(Command::parse("GET", vec![Param::Null]).is_err());
        let c = Command::parse("zrange k 0 -1 withscores", vec![]).unwrap();
        assert!(c.has_flag("WITHSCORES"));
        assert_eq!(c.name(), "ZRANGE");
    }
}
