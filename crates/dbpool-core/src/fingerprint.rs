//! Statement fingerprints: SQL with its literals replaced by `?`, for audit lines and
//! statement statistics, so the same statement with other values reads the same.
//!
//! One pass over the bytes, no dialect needed: string literals (`'…'`, `E'…'`, `N'…'`,
//! `X'…'`, `B'…'`, `U&'…'`, `$tag$…$tag$`) and numbers (`42`, `-1.5e3`, `0x1F`) become
//! `?`; bind placeholders (`$1`, `?`, `?1`, `@p1`, `:name`), identifiers (`"…"`, `` `…` ``,
//! `[…]` quoted ones too) and keywords stay as written; comments go; white space runs
//! become one space; a bracket group of literals only (`IN (?, ?, ?)`) becomes `(?)`.
//! Linear time, and never a panic, whatever the bytes.
use crate::sql_lex::{is_word_byte, is_word_start, quoted_end};

/// The longest fingerprint in bytes, the closing `…` included.
pub const MAX_FINGERPRINT_BYTES: usize = 1024;

/// `sql` with its literals replaced by `?`, comments removed, white space collapsed and
/// literal lists folded (`IN (1, 2, 3)` → `IN (?)`); at most
/// [`MAX_FINGERPRINT_BYTES`] bytes, ending in `…` when cut.
pub fn fingerprint(sql: &str) -> String {
    let mut f = Fingerprinter {
        b: sql.as_bytes(),
        i: 0,
        out: Vec::with_capacity(sql.len().min(MAX_FINGERPRINT_BYTES + 8)),
        space: false,
        prev: Prev::Start,
        prev_array: false,
        group: None,
    };
    f.run();
    let mut out = f.out;
    if out.len() > MAX_FINGERPRINT_BYTES {
        let mut end = MAX_FINGERPRINT_BYTES - '…'.len_utf8();
        // Back to a char boundary: never split a multibyte character.
        while end > 0 && out[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        out.truncate(end);
        while out.last() == Some(&b' ') {
            out.pop();
        }
        out.extend_from_slice("…".as_bytes());
    }
    // Every cut above is on a char boundary, so this is UTF-8; lossy as a safety net.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The kind of the token emitted last: it decides whether `-1` is a negative literal
/// and whether `[` opens a subscript or a quoted identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Nothing yet.
    Start,
    /// A word, placeholder or quoted identifier: an operand.
    Operand,
    /// A literal (`?`).
    Literal,
    /// `)` or `]`.
    Close,
    /// An operator or other punctuation: `=`, `(`, `,`, …
    Punct,
}

/// An open bracket group whose contents have been literals only so far.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Where the opening bracket is in the output.
    pos: usize,
    /// The bracket that closes it: `)` or `]`.
    close: u8,
    /// Whether the last token in it was a literal (else a `,` or the opening bracket).
    after_literal: bool,
}

struct Fingerprinter<'a> {
    b: &'a [u8],
    i: usize,
    out: Vec<u8>,
    /// White space or a comment was skipped since the last token.
    space: bool,
    prev: Prev,
    /// The last token was the word ARRAY (`ARRAY [1, 2]` is no quoted identifier).
    prev_array: bool,
    group: Option<Group>,
}

impl Fingerprinter<'_> {
    fn byte(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn run(&mut self) {
        while self.i < self.b.len() {
            self.step();
            // Past the limit, and no open literal group could shrink the output back:
            // the rest would be cut anyway.
            let shrinkable = self.group.is_some_and(|g| g.pos < MAX_FINGERPRINT_BYTES);
            if self.out.len() > MAX_FINGERPRINT_BYTES && !shrinkable {
                return;
            }
        }
    }

    /// Consumes one token (or a run of white space or a comment) at `self.i`.
    fn step(&mut self) {
        let b = self.b;
        let start = self.i;
        let c = b[start];
        let next = self.byte(start + 1);
        match c {
            c if c.is_ascii_whitespace() || c == 0x0B => {
                self.i += 1;
                self.space = true;
            }
            b'-' if next == Some(b'-') => {
                self.i = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |p| start + p + 1);
                self.space = true;
            }
            b'/' if next == Some(b'*') => {
                self.skip_block_comment();
                self.space = true;
            }
            b'\'' => {
                self.i = quoted_end(b, start, b'\'', false);
                self.literal();
            }
            b'e' | b'E' if next == Some(b'\'') => {
                self.i = quoted_end(b, start + 1, b'\'', true);
                self.literal();
            }
            b'n' | b'N' | b'b' | b'B' | b'x' | b'X' if next == Some(b'\'') => {
                self.i = quoted_end(b, start + 1, b'\'', false);
                self.literal();
            }
            b'u' | b'U' if next == Some(b'&') && self.byte(start + 2) == Some(b'\'') => {
                self.i = quoted_end(b, start + 2, b'\'', false);
                self.literal();
            }
            b'"' | b'`' => {
                self.i = quoted_end(b, start, c, false);
                self.operand(start);
            }
            b'[' if !self.opens_subscript() => {
                self.i = quoted_end(b, start, b']', false);
                self.operand(start);
            }
            b'$' if next.is_some_and(|d| d.is_ascii_digit()) => {
                self.i = skip_digits(b, start + 1);
                self.operand(start);
            }
            b'$' if self.skip_dollar_quote() => self.literal(),
            b'?' if next.is_some_and(|d| d.is_ascii_digit()) => {
                self.i = skip_digits(b, start + 1);
                self.operand(start);
            }
            b'?' => {
                self.i += 1;
                self.literal();
            }
            c if c.is_ascii_digit() => {
                self.i = skip_number(b, start);
                self.literal();
            }
            b'.' if next.is_some_and(|d| d.is_ascii_digit()) && !self.adjacent_operand() => {
                self.i = skip_number(b, start);
                self.literal();
            }
            b'-' if self.starts_negative_number() => {
                self.i = skip_number(b, start + 1);
                self.literal();
            }
            c if is_word_start(c) => {
                let mut j = start;
                while j < b.len() && is_word_byte(b[j]) {
                    j += 1;
                }
                self.i = j;
                self.operand(start);
                self.prev_array = b[start..j].eq_ignore_ascii_case(b"ARRAY");
            }
            _ => {
                self.i += 1;
                self.punct(c);
            }
        }
    }

    /// Writes the pending space, if any, before a token.
    fn space(&mut self) {
        if self.space && !self.out.is_empty() {
            self.out.push(b' ');
        }
        self.space = false;
    }

    /// A literal ends at `self.i`: writes `?`.
    fn literal(&mut self) {
        self.space();
        self.out.push(b'?');
        self.group = match self.group {
            Some(g) if !g.after_literal => Some(Group {
                after_literal: true,
                ..g
            }),
            _ => None,
        };
        self.prev = Prev::Literal;
        self.prev_array = false;
    }

    /// A word, placeholder or quoted identifier from `start` to `self.i`, as written.
    fn operand(&mut self, start: usize) {
        self.space();
        self.out.extend_from_slice(&self.b[start..self.i]);
        self.group = None;
        self.prev = Prev::Operand;
        self.prev_array = false;
    }

    /// One byte of punctuation or an operator.
    fn punct(&mut self, c: u8) {
        match (c, self.group) {
            (b')' | b']', Some(g)) if g.after_literal && g.close == c => {
                // A group of literals only: `(?, ?, ?)` → `(?)`, `( ? )` → `(?)`.
                self.space = false;
                self.out.truncate(g.pos + 1);
                self.out.push(b'?');
                self.out.push(c);
                self.group = None;
            }
            (b',', Some(g)) if g.after_literal => {
                self.space();
                self.out.push(c);
                self.group = Some(Group {
                    after_literal: false,
                    ..g
                });
            }
            (b'(' | b'[', _) => {
                self.space();
                self.out.push(c);
                let close = if c == b'(' { b')' } else { b']' };
                self.group = Some(Group {
                    pos: self.out.len() - 1,
                    close,
                    after_literal: false,
                });
            }
            _ => {
                self.space();
                self.out.push(c);
                self.group = None;
            }
        }
        self.prev = if c == b')' || c == b']' {
            Prev::Close
        } else {
            Prev::Punct
        };
        self.prev_array = false;
    }

    /// Whether the previous token is an operand or `)`/`]` right before this one.
    fn adjacent_operand(&self) -> bool {
        !self.space && matches!(self.prev, Prev::Operand | Prev::Close)
    }

    /// `[` after an operand (`a[1]`, `(f(x))[2]`) or after ARRAY is a subscript or an
    /// array; elsewhere it opens a T-SQL quoted identifier (`[order]`).
    fn opens_subscript(&self) -> bool {
        self.adjacent_operand() || self.prev_array
    }

    /// `-` then a number, where a value is expected (after an operator, `(`, `,` or at
    /// the start): a negative literal, `= -1` → `= ?`.
    fn starts_negative_number(&self) -> bool {
        let digit_at = |i: usize| self.byte(i).is_some_and(|d| d.is_ascii_digit());
        let number =
            digit_at(self.i + 1) || (self.byte(self.i + 1) == Some(b'.') && digit_at(self.i + 2));
        number && matches!(self.prev, Prev::Start | Prev::Punct)
    }

    /// `/* … */` at `self.i`, nested ones included; an unterminated one runs to the end.
    fn skip_block_comment(&mut self) {
        let b = self.b;
        let mut depth = 0usize;
        let mut i = self.i;
        while i + 1 < b.len() {
            match (b[i], b[i + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        self.i = i;
                        return;
                    }
                }
                _ => i += 1,
            }
        }
        self.i = b.len();
    }

    /// `$tag$…$tag$` at `self.i`; false (nothing consumed) if this `$` opens none.
    fn skip_dollar_quote(&mut self) -> bool {
        let b = self.b;
        let mut j = self.i + 1;
        while j < b.len() && is_word_byte(b[j]) && b[j] != b'$' {
            j += 1;
        }
        if b.get(j) != Some(&b'$') {
            return false;
        }
        let tag = &b[self.i..=j];
        // memmem is linear in the haystack, whatever the tag.
        self.i = memchr::memmem::find(&b[j + 1..], tag).map_or(b.len(), |p| j + 1 + p + tag.len());
        true
    }
}

fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// The end of a number at `i`: `42`, `1_000`, `3.14`, `.5`, `1e-9`, `0x1F`, `0b101`,
/// `0o17`.
fn skip_number(b: &[u8], i: usize) -> usize {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    if at(i) == b'0' && matches!(at(i + 1), b'x' | b'X' | b'b' | b'B' | b'o' | b'O') {
        let mut j = i + 2;
        while at(j).is_ascii_hexdigit() || at(j) == b'_' {
            j += 1;
        }
        return j;
    }
    let mut j = skip_digits(b, i);
    if at(j) == b'.' {
        j = skip_digits(b, j + 1);
    }
    if matches!(at(j), b'e' | b'E') {
        let sign = usize::from(matches!(at(j + 1), b'+' | b'-'));
        if at(j + 1 + sign).is_ascii_digit() {
            j = skip_digits(b, j + 1 + sign);
        }
    }
    j
}

#[cfg(test)]
#[path = "fingerprint_tests.rs"]
mod tests;
