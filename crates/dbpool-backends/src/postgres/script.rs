//! Tells a multi-statement script from one statement without asking the server: a failed
//! prepare would abort an open transaction.

/// Whether `sql` holds more than one statement (a `;` outside quotes, dollar quotes and
/// comments, followed by more than whitespace, `;` or comments).
pub fn is_script(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut seen_end = false;
    while i < b.len() {
        let c = b[i];
        if seen_end && !c.is_ascii_whitespace() && c != b';' && !starts_comment(b, i) {
            return true;
        }
        match c {
            b'\'' | b'"' => i = skip_quoted(b, i, c),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |p| i + p)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |p| p + 2);
                continue;
            }
            b'$' => {
                if let Some(tag_end) = dollar_tag(b, i) {
                    let tag = &b[i..=tag_end];
                    i = find(b, tag_end + 1, tag).map_or(b.len(), |p| p + tag.len());
                    continue;
                }
            }
            b';' => seen_end = true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn starts_comment(b: &[u8], i: usize) -> bool {
    (b[i] == b'-' && b.get(i + 1) == Some(&b'-')) || (b[i] == b'/' && b.get(i + 1) == Some(&b'*'))
}

/// Index of the closing quote (doubled quotes escape).
fn skip_quoted(b: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    b.len()
}

/// `$tag$` starting at `i`: the index of its closing `$`.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    // `$1` is a placeholder, not a tag.
    (j < b.len() && b[j] == b'$' && !b.get(i + 1).is_some_and(u8::is_ascii_digit)).then_some(j)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::is_script;

    #[test]
    fn scripts_and_single_statements() {
        assert!(!is_script("SELECT 1"));
        assert!(!is_script("SELECT 1;  -- done\n"));
        assert!(!is_script("SELECT ';' AS a, \"x;y\" FROM t WHERE b = $1;"));
        assert!(!is_script(
            "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql"
        ));
        assert!(!is_script("SELECT 1 /* ; */"));
        assert!(is_script("DROP TABLE IF EXISTS t; CREATE TABLE t (a int)"));
        assert!(is_script("SELECT 'it''s'; SELECT 2"));
    }
}
