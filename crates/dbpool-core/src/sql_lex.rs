//! A small SQL lexer: finds transaction-control statements (BEGIN, COMMIT, ROLLBACK, …)
//! in request SQL without asking the database, so a pooled connection never goes back
//! to the pool, or on to the next caller, inside a transaction the daemon did not open.
//!
//! One pass over the bytes, no allocation: strings, quoted identifiers, dollar quotes
//! and comments are skipped, so a keyword inside them never counts. PostgreSQL and
//! SQLite statements are split on top-level `;` and judged by their leading words;
//! T-SQL needs no `;` between statements, so every top-level word is judged there.
use crate::{Error, Result};
use dbpool_config::BackendKind;

/// Whose SQL this is: the lexing and the keywords differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: nested comments, `E'…'` escapes, `$tag$…$tag$` quotes.
    Postgres,
    /// SQLite: comments do not nest, a backslash is an ordinary character.
    Sqlite,
    /// SQL Server (T-SQL): `[…]` identifiers, statements without `;`.
    Mssql,
}

impl Dialect {
    /// The dialect of a SQL backend; `None` for Redis and InfluxDB, which have no
    /// transaction statements to refuse.
    pub fn of(kind: BackendKind) -> Option<Dialect> {
        match kind {
            BackendKind::Postgres => Some(Dialect::Postgres),
            BackendKind::Sqlite => Some(Dialect::Sqlite),
            BackendKind::Mssql => Some(Dialect::Mssql),
            BackendKind::Redis | BackendKind::Influxdb => None,
        }
    }
}

/// Refuses SQL for a `kind` pool that holds a statement [`find_tx_control`] finds;
/// `field` names the request field in the error (`sql`, `statements[2].sql`).
pub fn refuse_tx_control(
    sql: &str,
    kind: BackendKind,
    in_transaction: bool,
    field: impl std::fmt::Display,
) -> Result<()> {
    let Some(dialect) = Dialect::of(kind) else {
        return Ok(());
    };
    match find_tx_control(sql, dialect, in_transaction) {
        None => Ok(()),
        Some(c) => Err(Error::transaction_control(
            c,
            in_transaction,
            &field.to_string(),
        )),
    }
}

/// What a transaction-control statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxControlKind {
    /// Opens, ends or hands over a transaction: never outside the transaction RPCs.
    Transaction,
    /// A savepoint (SAVEPOINT, RELEASE, ROLLBACK TO, SAVE TRAN): harmless inside a
    /// transaction, but SQLite's SAVEPOINT outside one opens a transaction.
    Savepoint,
}

/// A transaction-control statement found in SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxControl {
    /// The statement's name, e.g. `BEGIN`, `ROLLBACK TO SAVEPOINT`.
    pub statement: &'static str,
    /// What it does.
    pub kind: TxControlKind,
}

/// The first statement of `sql` that must not run here: any transaction statement,
/// and savepoint statements unless `in_transaction` (an interactive transaction or a
/// transactional batch holds the connection).
pub fn find_tx_control(sql: &str, dialect: Dialect, in_transaction: bool) -> Option<TxControl> {
    let refused = |c: &TxControl| c.kind == TxControlKind::Transaction || !in_transaction;
    match dialect {
        // Fast path, the common case: without a `;` there is one statement, judged by
        // its leading words; the rest of the text need not be lexed.
        Dialect::Postgres | Dialect::Sqlite if !sql.as_bytes().contains(&b';') => {
            statements(sql, dialect)
                .read_lead()
                .and_then(|(lead, _)| classify_leading(&lead, dialect))
                .filter(refused)
        }
        Dialect::Postgres | Dialect::Sqlite => statements(sql, dialect)
            .filter_map(|lead| classify_leading(&lead, dialect))
            .find(refused),
        Dialect::Mssql => find_tsql(sql, in_transaction, refused),
    }
}

/// A lexical token; only what the classification needs to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted word: keyword or identifier.
    Word(&'a str),
    /// `;`
    Semi,
    /// `(`
    Open,
    /// `)`
    Close,
    /// `.` (a qualified name follows)
    Dot,
    /// `,`
    Comma,
    /// Anything else: a string, quoted identifier, number, operator.
    Other,
}

/// Splits SQL into tokens, skipping whitespace and comments.
#[derive(Clone)]
struct Lexer<'a> {
    s: &'a str,
    i: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str, dialect: Dialect) -> Self {
        Lexer { s, i: 0, dialect }
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.s.as_bytes().get(i).copied()
    }

    /// Skips whitespace and comments; false at the end of the text.
    fn skip_blank(&mut self) -> bool {
        let b = self.s.as_bytes();
        while self.i < b.len() {
            match b[self.i] {
                // PostgreSQL 16 counts a vertical tab as white space too.
                c if c.is_ascii_whitespace() || c == 0x0B => self.i += 1,
                b'-' if self.byte(self.i + 1) == Some(b'-') => {
                    self.i = memchr(b, self.i, b'\n').map_or(b.len(), |p| p + 1);
                }
                b'/' if self.byte(self.i + 1) == Some(b'*') => self.skip_block_comment(),
                _ => return true,
            }
        }
        false
    }

    /// `/* … */`; PostgreSQL and T-SQL nest them, SQLite ends at the first `*/`.
    fn skip_block_comment(&mut self) {
        let b = self.s.as_bytes();
        let nests = self.dialect != Dialect::Sqlite;
        let mut depth = 0usize;
        while self.i + 1 < b.len() {
            match (b[self.i], b[self.i + 1]) {
                (b'/', b'*') if depth == 0 || nests => {
                    depth += 1;
                    self.i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    self.i += 2;
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.i += 1,
            }
        }
        // An unterminated comment runs to the end (the database refuses it anyway).
        self.i = b.len();
    }

    /// `$tag$…$tag$` at `self.i` (PostgreSQL); false if this `$` opens no dollar quote.
    fn skip_dollar_quote(&mut self) -> bool {
        let b = self.s.as_bytes();
        let mut j = self.i + 1;
        // A tag is an identifier without `$` that does not start with a digit (`$1`).
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        while j < b.len() && is_word_byte(b[j]) && b[j] != b'$' {
            j += 1;
        }
        if b.get(j) != Some(&b'$') {
            return false;
        }
        let tag = &b[self.i..=j];
        self.i = find(b, j + 1, tag).map_or(b.len(), |p| p + tag.len());
        true
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if !self.skip_blank() {
            return None;
        }
        let b = self.s.as_bytes();
        let c = b[self.i];
        let pg = self.dialect == Dialect::Postgres;
        let token = match c {
            b';' => Token::Semi,
            b'(' => Token::Open,
            b')' => Token::Close,
            b'.' => Token::Dot,
            b',' => Token::Comma,
            b'\'' => {
                self.i = quoted_end(b, self.i, b'\'', false);
                return Some(Token::Other);
            }
            b'"' => {
                self.i = quoted_end(b, self.i, b'"', false);
                return Some(Token::Other);
            }
            b'`' if self.dialect == Dialect::Sqlite => {
                self.i = quoted_end(b, self.i, b'`', false);
                return Some(Token::Other);
            }
            b'[' if self.dialect != Dialect::Postgres => {
                self.i = quoted_end(b, self.i, b']', false);
                return Some(Token::Other);
            }
            b'$' if pg && self.skip_dollar_quote() => return Some(Token::Other),
            b'e' | b'E' if pg && self.byte(self.i + 1) == Some(b'\'') => {
                self.i += 1;
                self.i = quoted_end(b, self.i, b'\'', true);
                return Some(Token::Other);
            }
            c if is_word_start(c) => {
                let start = self.i;
                while self.i < b.len() && is_word_byte(b[self.i]) {
                    self.i += 1;
                }
                return Some(Token::Word(&self.s[start..self.i]));
            }
            c if c.is_ascii_digit() => {
                // A number (`1e5`, `0x1F`): its letters are no keyword.
                while self.i < b.len() && (is_word_byte(b[self.i]) || b[self.i] == b'.') {
                    self.i += 1;
                }
                return Some(Token::Other);
            }
            _ => Token::Other,
        };
        self.i += 1;
        Some(token)
    }
}

/// Whether `c` starts an unquoted word: keyword, identifier, `@var`, `#temp`.
pub(crate) fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'#' || c >= 0x80
}

/// Whether `c` continues an unquoted word (digits and `$` too).
pub(crate) fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'@' || c == b'#' || c >= 0x80
}

fn memchr(b: &[u8], from: usize, x: u8) -> Option<usize> {
    b[from..].iter().position(|&c| c == x).map(|p| p + from)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn is(word: Option<&str>, kw: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(kw))
}

/// Up to four leading words of a statement (fewer if a non-word token comes first):
/// enough for `CREATE OR REPLACE FUNCTION` and `ROLLBACK WORK TO SAVEPOINT`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lead<'a> {
    words: [Option<&'a str>; 4],
}

impl<'a> Lead<'a> {
    /// The `n`th leading word (0-based), if there is one.
    pub fn word(&self, n: usize) -> Option<&'a str> {
        self.words.get(n).copied().flatten()
    }
}

/// Top-level statements of PostgreSQL or SQLite text, as their leading words.
pub fn statements(sql: &str, dialect: Dialect) -> Statements<'_> {
    Statements {
        lex: Lexer::new(sql, dialect),
    }
}

/// Iterator over the leading words of each top-level statement.
pub struct Statements<'a> {
    lex: Lexer<'a>,
}

impl<'a> Iterator for Statements<'a> {
    type Item = Lead<'a>;

    fn next(&mut self) -> Option<Lead<'a>> {
        let (lead, pending) = self.read_lead()?;
        self.skip_rest(&lead, pending);
        Some(lead)
    }
}

impl<'a> Statements<'a> {
    /// The next statement's leading words, and the token after them (`None` at the
    /// end); empty statements (`;;`) are skipped.
    fn read_lead(&mut self) -> Option<(Lead<'a>, Option<Token<'a>>)> {
        let mut lead = Lead::default();
        let mut n = 0;
        loop {
            match self.lex.next() {
                None if n == 0 => return None,
                Some(Token::Semi) if n == 0 => continue,
                Some(Token::Word(w)) if n < 4 => {
                    lead.words[n] = Some(w);
                    n += 1;
                }
                other => return Some((lead, other)),
            }
        }
    }

    /// Consumes the rest of the statement up to its top-level `;`. In a CREATE
    /// FUNCTION/PROCEDURE (`BEGIN ATOMIC … END`) or an SQLite CREATE TRIGGER
    /// (`BEGIN … END`) the body's `;` do not end the statement.
    fn skip_rest(&mut self, lead: &Lead<'a>, pending: Option<Token<'a>>) {
        let body = body_kind(lead, self.lex.dialect);
        let (mut parens, mut depth) = (0usize, 0usize);
        // A body's BEGIN comes long after the leading words; they only set `prev`.
        let mut prev = lead.words.iter().flatten().last().map(|w| Token::Word(w));
        let mut next = pending;
        while let Some(t) = next.take().or_else(|| self.lex.next()) {
            match t {
                Token::Semi if parens == 0 && depth == 0 => return,
                Token::Open => parens += 1,
                Token::Close => parens = parens.saturating_sub(1),
                Token::Word(w) if parens == 0 && body != Body::None => {
                    let opens = w.eq_ignore_ascii_case("BEGIN") && self.opens_body(body, prev);
                    if opens || (depth > 0 && w.eq_ignore_ascii_case("CASE")) {
                        depth += 1;
                    } else if depth > 0 && w.eq_ignore_ascii_case("END") {
                        depth -= 1;
                    }
                }
                _ => {}
            }
            prev = Some(t);
        }
    }

    /// Whether this `BEGIN` opens the body rather than being a name: in PostgreSQL it
    /// must be followed by ATOMIC; in an SQLite trigger it must not stand where a name
    /// does (after TRIGGER, EXISTS, ON, OF, `.` or `,`).
    fn opens_body(&self, body: Body, prev: Option<Token<'a>>) -> bool {
        match body {
            Body::Atomic => matches!(
                self.lex.clone().next(),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("ATOMIC")
            ),
            Body::Trigger => match prev {
                Some(Token::Dot | Token::Comma) | None => false,
                Some(Token::Word(w)) => !["TRIGGER", "EXISTS", "ON", "OF"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)),
                Some(_) => true,
            },
            Body::None => false,
        }
    }
}

/// Whether a statement can hold a `BEGIN … END` body with `;` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    /// PostgreSQL CREATE FUNCTION/PROCEDURE: `BEGIN ATOMIC … END`.
    Atomic,
    /// SQLite CREATE TRIGGER: `BEGIN … END`.
    Trigger,
}

fn body_kind(lead: &Lead<'_>, dialect: Dialect) -> Body {
    if !is(lead.word(0), "CREATE") {
        return Body::None;
    }
    // CREATE [OR REPLACE] FUNCTION, CREATE [TEMP|TEMPORARY] TRIGGER.
    let either = |kw: &str| (1..4).any(|n| is(lead.word(n), kw));
    match dialect {
        Dialect::Postgres if either("FUNCTION") || either("PROCEDURE") => Body::Atomic,
        Dialect::Sqlite if either("TRIGGER") => Body::Trigger,
        _ => Body::None,
    }
}

const fn tx(statement: &'static str) -> Option<TxControl> {
    Some(TxControl {
        statement,
        kind: TxControlKind::Transaction,
    })
}

const fn savepoint(statement: &'static str) -> Option<TxControl> {
    Some(TxControl {
        statement,
        kind: TxControlKind::Savepoint,
    })
}

/// A PostgreSQL or SQLite statement judged by its leading words.
fn classify_leading(lead: &Lead<'_>, dialect: Dialect) -> Option<TxControl> {
    let (w0, w1, w2) = (lead.word(0)?, lead.word(1), lead.word(2));
    let first = |kw: &str| w0.eq_ignore_ascii_case(kw);
    // `ROLLBACK [WORK|TRANSACTION] TO …` is a savepoint statement.
    let skip_noise = if is(w1, "WORK") || is(w1, "TRANSACTION") {
        w2
    } else {
        w1
    };
    let pg = dialect == Dialect::Postgres;
    if first("BEGIN") {
        tx("BEGIN")
    } else if first("START") && is(w1, "TRANSACTION") {
        tx("START TRANSACTION")
    } else if first("COMMIT") {
        if pg && is(w1, "PREPARED") {
            tx("COMMIT PREPARED")
        } else {
            tx("COMMIT")
        }
    } else if first("END") {
        tx("END")
    } else if first("ABORT") && pg {
        tx("ABORT")
    } else if first("ROLLBACK") {
        if pg && is(w1, "PREPARED") {
            tx("ROLLBACK PREPARED")
        } else if is(skip_noise, "TO") {
            savepoint("ROLLBACK TO SAVEPOINT")
        } else {
            tx("ROLLBACK")
        }
    } else if first("PREPARE") && pg && is(w1, "TRANSACTION") {
        tx("PREPARE TRANSACTION")
    } else if first("SAVEPOINT") {
        savepoint("SAVEPOINT")
    } else if first("RELEASE") {
        savepoint("RELEASE SAVEPOINT")
    } else {
        None
    }
}

#[path = "sql_lex_session.rs"]
mod session;
pub use session::changes_session;

#[path = "sql_lex_tsql.rs"]
mod tsql;
use tsql::find_tsql;

#[cfg(test)]
#[path = "sql_lex_tests.rs"]
mod tests;

/// The end of a quoted run opened at `open` and closed by `close` (doubled: escaped; `\x`
/// too when `backslash`, PostgreSQL `E'…'`); an unterminated one ends with the text.
pub(crate) fn quoted_end(b: &[u8], open: usize, close: u8, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
        } else if c == close {
            if b.get(i + 1) == Some(&close) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}
