//! Unit tests of statement fingerprints: every literal form goes, placeholders and
//! identifiers stay, and odd bytes neither panic nor leak a literal.
use super::*;

fn fp(sql: &str) -> String {
    fingerprint(sql)
}

#[test]
fn string_literals_become_placeholders() {
    assert_eq!(
        fp("SELECT * FROM users WHERE name = 'O''Brien' AND note = 'a;b'"),
        "SELECT * FROM users WHERE name = ? AND note = ?"
    );
    assert_eq!(fp(r"select E'it\'s \\ here', e'x'"), "select ?, ?");
    assert_eq!(
        fp("select N'unicode', X'ff00', B'0101', U&'d\\0061t'"),
        "select ?, ?, ?, ?"
    );
    assert_eq!(
        fp("select $$a 'quoted' $ value$$ || $fn$ x $$ y $fn$"),
        "select ? || ?"
    );
    assert_eq!(fp("select $é$ body $é$"), "select ?");
}

#[test]
fn numbers_become_placeholders() {
    assert_eq!(
        fp("select 42, 3.14, .5, 1e10, 2.5E-3, 0x1F, 1_000, 0b101, 7."),
        "select ?, ?, ?, ?, ?, ?, ?, ?, ?"
    );
    assert_eq!(
        fp("update t set n = -1 where m = - 2"),
        "update t set n = ? where m = - ?"
    );
    assert_eq!(fp("select a-1, a -1, (-1.5)"), "select a-?, a -?, (?)");
    assert_eq!(
        fp("select t1.c2 from t1 limit 10 offset 20"),
        "select t1.c2 from t1 limit ? offset ?"
    );
}

#[test]
fn placeholders_and_identifiers_stay() {
    assert_eq!(
        fp("select * from t where a = $1 and b = ? and c = @p1 and d = :name and e = ?2"),
        "select * from t where a = $1 and b = ? and c = @p1 and d = :name and e = ?2"
    );
    assert_eq!(
        fp(r#"SELECT "Col 'x'", `tick 1`, [br 2]]x] FROM "a""b" WHERE x::int = 1"#),
        r#"SELECT "Col 'x'", `tick 1`, [br 2]]x] FROM "a""b" WHERE x::int = ?"#
    );
    assert_eq!(
        fp("select [dbo].[t].[c] from [s 1]"),
        "select [dbo].[t].[c] from [s 1]"
    );
    assert_eq!(
        fp("select $name, #tmp, größe from t"),
        "select $name, #tmp, größe from t"
    );
}

#[test]
fn subscripts_and_arrays_are_not_quoted_identifiers() {
    assert_eq!(
        fp("select a[1], (f(x))[2], a[1:3]"),
        "select a[?], (f(x))[?], a[?:?]"
    );
    assert_eq!(
        fp("select * from t where id = any(ARRAY[1, 2, 3]) or id = ANY (array [4,5])"),
        "select * from t where id = any(ARRAY[?]) or id = ANY (array [?])"
    );
}

#[test]
fn comments_go_and_white_space_collapses() {
    assert_eq!(
        fp("  SELECT  1 -- one\n\t,/* two /* nested */ still */2\r\n FROM\x0bt  "),
        "SELECT ? , ? FROM t"
    );
    assert_eq!(fp("select a/**/from t"), "select a from t");
    assert_eq!(
        fp("select '--not a comment', '/*nor this*/' x"),
        "select ?, ? x"
    );
}

#[test]
fn literal_lists_collapse() {
    assert_eq!(
        fp("select * from t where id in (1, 2, 3)"),
        "select * from t where id in (?)"
    );
    assert_eq!(fp("where id IN ( 'a' , 'b' )"), "where id IN (?)");
    assert_eq!(fp("where id in (?, ?, ?, ?)"), "where id in (?)");
    assert_eq!(
        fp("where (a, b) in ((1, 2), (3, 4))"),
        "where (a, b) in ((?), (?))"
    );
    assert_eq!(fp("values (1, 'x', -2)"), "values (?)");
    assert_eq!(fp("where f(1, 2) and g(a, 1)"), "where f(?) and g(a, ?)");
    // Placeholders other than `?` keep the list as written.
    assert_eq!(fp("where id in ($1, $2)"), "where id in ($1, $2)");
    assert_eq!(fp("where id in (1, 2"), "where id in (?, ?");
    assert_eq!(fp("where id in (1 2)"), "where id in (? ?)");
    assert_eq!(fp("where id in (1, )"), "where id in (?, )");
}

#[test]
fn fingerprinting_is_idempotent() {
    for sql in [
        "select * from t where a in (1, 2) and b = -3 and c = 'x' and d = $1",
        "insert into t values ('a', 1), ('b', 2) returning id",
        "select a[1] from [t] where x = N'y' -- c",
        "select 1e5, 0x1F, $$x$$",
    ] {
        let once = fp(sql);
        assert_eq!(fp(&once), once, "{sql}");
    }
}

#[test]
fn a_long_statement_is_cut_on_a_char_boundary() {
    let sql = format!("select {} from t", "größe, ".repeat(400));
    let out = fp(&sql);
    assert!(out.len() <= MAX_FINGERPRINT_BYTES, "{}", out.len());
    assert!(out.ends_with('…'));
    assert!(out.starts_with("select größe, größe"));
    // Exactly at the limit: not cut.
    let exact = "a".repeat(MAX_FINGERPRINT_BYTES);
    assert_eq!(fp(&exact), exact);
    let over = "a".repeat(MAX_FINGERPRINT_BYTES + 1);
    let cut = fp(&over);
    assert_eq!(cut.len(), MAX_FINGERPRINT_BYTES);
    assert!(cut.ends_with("a…"));
}

#[test]
fn a_long_literal_list_still_collapses() {
    let list = vec!["12345"; 5000].join(", ");
    assert_eq!(
        fp(&format!("select * from t where id in ({list}) and x = 'y'")),
        "select * from t where id in (?) and x = ?"
    );
    let strings = vec!["'some text'"; 2000].join(",");
    assert_eq!(
        fp(&format!("insert into t values ({strings})")),
        "insert into t values (?)"
    );
}

#[test]
fn a_literal_at_the_cut_never_leaks() {
    let secret = "s3cr3t-s3cr3t";
    for pad in 1000..1030 {
        let sql = format!("select {} '{secret}', E'{secret}'", "x".repeat(pad));
        let out = fp(&sql);
        assert!(!out.contains("s3c"), "{pad}: {out}");
        assert!(out.len() <= MAX_FINGERPRINT_BYTES);
    }
    assert!(!fp(&format!("select '{secret}', E'{secret}', $q${secret}$q$")).contains("s3c"));
}

#[test]
fn odd_input_neither_panics_nor_leaks() {
    assert_eq!(fp(""), "");
    assert_eq!(fp("   \n\t "), "");
    assert_eq!(fp("-- only a comment"), "");
    assert_eq!(fp("/* unterminated /* nested */"), "");
    assert_eq!(fp("select 'unterminated secret"), "select ?");
    assert_eq!(fp(r"select E'ends in backslash\"), "select ?");
    assert_eq!(fp("select $tag$ no end secret"), "select ?");
    assert_eq!(
        fp("select \"unterminated ident"),
        "select \"unterminated ident"
    );
    assert_eq!(fp("select [unterminated"), "select [unterminated");
    assert_eq!(fp("$"), "$");
    assert_eq!(fp("$ $ $"), "$ $ $");
    assert_eq!(fp("a$"), "a$");
    assert_eq!(fp("?"), "?");
    assert_eq!(fp("-"), "-");
    assert_eq!(fp("-."), "-.");
    assert_eq!(fp("0x"), "?");
    assert_eq!(fp("1e"), "?e");
    assert_eq!(fp("E'"), "?");
    assert_eq!(fp("U&"), "U&");
    assert_eq!(fp(")]),"), ")]),");
    assert_eq!(fp("日本語 'テスト' 🦀"), "日本語 ? 🦀");
    assert_eq!(fp("\u{feff}select\u{a0}1"), "\u{feff}select\u{a0}1");
    // Every prefix of a tricky statement, cut anywhere (also inside a character).
    let tricky =
        "SELECT E'a\\'b', $x$ü$x$, \"q\"\"\", [b]]], -1.5e-3, 0x1F /* c /* d */ */ -- é\n 'ö''";
    for end in 0..=tricky.len() {
        if let Some(prefix) = tricky.get(..end) {
            let out = fp(prefix);
            assert!(out.len() <= MAX_FINGERPRINT_BYTES);
        }
    }
    // Every short sequence of the characters that matter.
    let alphabet = [
        "'", "\"", "$", "`", "[", "]", "(", ")", ",", "-", "/", "*", "\\", "e", "1", ".", "?", "é",
        " ",
    ];
    for a in alphabet {
        for b in alphabet {
            for c in alphabet {
                for d in alphabet {
                    let _ = fp(&[a, b, c, d].concat());
                }
            }
        }
    }
}

#[test]
fn huge_adversarial_inputs_finish() {
    // Shapes that make a naive lexer quadratic (tag search, nesting, list folding).
    let n = 2_000_000;
    let dollars = format!("$a{}$", "a".repeat(n / 2)) + &"$a".repeat(n / 4);
    assert_eq!(fp(&dollars), "?");
    let comments = "/*".repeat(n / 2);
    assert_eq!(fp(&comments), "");
    let parens = "(".repeat(n) + &")".repeat(n);
    assert!(fp(&parens).ends_with('…'));
    let list = format!("({})", vec!["1"; n / 3].join(","));
    assert_eq!(fp(&list), "(?)");
}
