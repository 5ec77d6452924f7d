//! Unit tests of the SQL lexer, adversarial ones included: keywords hidden in strings,
//! comments and bodies must not count, and real ones behind them must.
use super::*;

const PG: Dialect = Dialect::Postgres;
const LITE: Dialect = Dialect::Sqlite;
const MS: Dialect = Dialect::Mssql;

/// The refused statement's name outside a transaction, or `None`.
fn refused(sql: &str, d: Dialect) -> Option<&'static str> {
    find_tx_control(sql, d, false).map(|c| c.statement)
}

/// The refused statement's name inside a transaction, or `None`.
fn refused_in_tx(sql: &str, d: Dialect) -> Option<&'static str> {
    find_tx_control(sql, d, true).map(|c| c.statement)
}

fn leads(sql: &str, d: Dialect) -> Vec<Vec<String>> {
    statements(sql, d)
        .map(|l| {
            (0..4)
                .filter_map(|i| l.word(i))
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn splits_statements_and_reads_leading_words() {
    assert_eq!(
        leads("select 1; ;insert into t values (';'); begin", PG),
        vec![
            vec!["select"],
            vec!["insert", "into", "t", "values"],
            vec!["begin"]
        ]
    );
    assert!(leads("  -- only a comment\n /* and another */ ;", PG).is_empty());
    assert_eq!(leads("BEGIN", PG), vec![vec!["BEGIN"]]);
}

#[test]
fn transaction_statements_are_found_in_every_spelling() {
    for sql in [
        "BEGIN",
        "begin;",
        "BEGIN; SELECT 1",
        "begin /* c */ ;",
        "  BeGiN WORK",
        "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "START TRANSACTION READ ONLY",
        "COMMIT",
        "commit and chain",
        "END",
        "END TRANSACTION",
        "ABORT",
        "ROLLBACK",
        "ROLLBACK WORK",
        "PREPARE TRANSACTION 'x'",
        "COMMIT PREPARED 'x'",
        "ROLLBACK PREPARED 'x'",
        "SELECT 1; COMMIT",
        "-- note\nCOMMIT",
        "/* a /* nested */ comment */ BEGIN",
        "INSERT INTO t VALUES (1);BEGIN",
    ] {
        assert!(refused(sql, PG).is_some(), "{sql}");
        assert!(refused_in_tx(sql, PG).is_some(), "in a transaction: {sql}");
    }
    assert_eq!(refused("begin /* c */ ;", PG), Some("BEGIN"));
    assert_eq!(refused("START TRANSACTION", PG), Some("START TRANSACTION"));
    assert_eq!(refused("commit prepared 'x'", PG), Some("COMMIT PREPARED"));
    assert_eq!(refused("SELECT 1; rollback", PG), Some("ROLLBACK"));
}

#[test]
fn sqlite_spellings() {
    for sql in [
        "BEGIN DEFERRED",
        "BEGIN IMMEDIATE TRANSACTION",
        "begin exclusive;",
        "END TRANSACTION",
        "COMMIT TRANSACTION",
        "ROLLBACK TRANSACTION",
        "CREATE TABLE t (a); BEGIN",
    ] {
        assert!(refused_in_tx(sql, LITE).is_some(), "{sql}");
    }
    // SAVEPOINT outside a transaction starts one in SQLite.
    assert_eq!(refused("SAVEPOINT a", LITE), Some("SAVEPOINT"));
    assert_eq!(refused_in_tx("SAVEPOINT a; RELEASE a", LITE), None);
    assert_eq!(
        refused_in_tx("ROLLBACK TRANSACTION TO SAVEPOINT a", LITE),
        None
    );
    // ABORT is a conflict clause in SQLite, not a statement: no PostgreSQL-only words.
    assert_eq!(refused("PREPARE TRANSACTION", LITE), None);
}

#[test]
fn savepoints_are_allowed_only_inside_a_transaction() {
    for sql in [
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "release a",
        "ROLLBACK TO SAVEPOINT a",
        "ROLLBACK TO a",
        "rollback work to savepoint a",
        "ROLLBACK TRANSACTION TO a",
    ] {
        assert_eq!(refused_in_tx(sql, PG), None, "{sql}");
        assert!(refused(sql, PG).is_some(), "outside: {sql}");
    }
    // A savepoint statement does not hide a later COMMIT.
    assert_eq!(refused_in_tx("SAVEPOINT a; COMMIT", PG), Some("COMMIT"));
}

#[test]
fn keywords_in_strings_comments_and_quotes_do_not_count() {
    for sql in [
        "SELECT 'BEGIN'",
        "SELECT 'it''s; BEGIN'",
        "SELECT E'\\'; COMMIT; --'",
        "SELECT \"begin\" FROM t",
        "SELECT \"a\"\"; COMMIT\" FROM t",
        "SELECT 1 -- ; COMMIT",
        "SELECT 1 /* ; COMMIT */",
        "SELECT 1 /* /* nested */ ; COMMIT */",
        "SELECT $$; COMMIT; $$",
        "SELECT $tag$ ; ROLLBACK ; $tag$",
        "SELECT $1::int; ",
        "SELECT begin, end FROM t",
        "UPDATE t SET commit = 1",
        "DELETE FROM rollback",
        "SELECT 1e5; SELECT x.begin FROM x",
    ] {
        assert_eq!(refused(sql, PG), None, "{sql}");
    }
    // A `$1` is a placeholder, not a dollar quote that could hide what follows.
    assert_eq!(refused("SELECT $1; COMMIT; SELECT $2", PG), Some("COMMIT"));
    // A dollar quote ends at its own tag only.
    assert_eq!(refused("SELECT $a$ $b$ $a$; BEGIN", PG), Some("BEGIN"));
    // An unterminated string or comment hides nothing the database would run.
    assert_eq!(refused("SELECT 'abc; BEGIN", PG), None);
}

#[test]
fn dialects_lex_differently() {
    // SQLite: comments do not nest, so the BEGIN after the first `*/` is real.
    assert_eq!(refused("/* /* */ BEGIN; /* */", LITE), Some("BEGIN"));
    assert_eq!(refused("/* /* */ BEGIN; /* */", PG), None);
    // SQLite: a backslash is an ordinary character, `E` is no string prefix.
    assert_eq!(refused("SELECT '\\'; BEGIN; --'", LITE), Some("BEGIN"));
    // PostgreSQL: E'…' takes backslash escapes.
    assert_eq!(refused("SELECT E'\\'; BEGIN; --'", PG), None);
    assert_eq!(refused("SELECT e'\\\\'; BEGIN", PG), Some("BEGIN"));
    // `[…]` is an identifier in SQLite and T-SQL, an array subscript in PostgreSQL.
    assert_eq!(refused("SELECT [a;BEGIN] FROM t", LITE), None);
    assert_eq!(refused("SELECT `x; COMMIT` FROM t", LITE), None);
}

#[test]
fn bodies_with_begin_are_not_transactions() {
    let ok = [
        "DO $$ BEGIN PERFORM 1; END $$",
        "DO $body$ BEGIN RAISE NOTICE 'x'; COMMIT; END $body$ LANGUAGE plpgsql",
        "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql",
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); SELECT CASE WHEN true THEN 1 END; END; SELECT 1",
        "CREATE FUNCTION begin(x int) RETURNS int AS 'select 1' LANGUAGE sql",
        "CREATE TABLE t (begin int, \"end\" int)",
    ];
    for sql in ok {
        assert_eq!(refused(sql, PG), None, "{sql}");
    }
    // A body ends at its END: what follows is judged again.
    assert_eq!(
        refused(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; BEGIN",
            PG
        ),
        Some("BEGIN")
    );
    // A function named `begin` opens no body that could hide the next statement.
    assert_eq!(
        refused(
            "CREATE FUNCTION begin() RETURNS int AS 'select 1' LANGUAGE sql; BEGIN",
            PG
        ),
        Some("BEGIN")
    );
    assert_eq!(
        refused("CREATE TABLE t (begin int); BEGIN", PG),
        Some("BEGIN")
    );
}

#[test]
fn sqlite_triggers() {
    let trigger = "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW BEGIN \
                   UPDATE t SET n = CASE WHEN n > 0 THEN n END; INSERT INTO log VALUES (1); END";
    assert_eq!(refused(trigger, LITE), None);
    assert_eq!(refused(&format!("{trigger}; BEGIN"), LITE), Some("BEGIN"));
    // Names called `begin` are not the body.
    assert_eq!(
        refused(
            "CREATE TRIGGER begin AFTER INSERT ON t BEGIN SELECT 1; END; COMMIT",
            LITE
        ),
        Some("COMMIT")
    );
    assert_eq!(
        refused("CREATE TEMP TRIGGER x AFTER UPDATE OF a, begin ON t WHEN new.begin > 0 BEGIN SELECT 1; END; ROLLBACK", LITE),
        Some("ROLLBACK")
    );
}

#[test]
fn tsql_transactions_and_blocks() {
    for sql in [
        "BEGIN TRAN",
        "begin transaction t1",
        "BEGIN DISTRIBUTED TRANSACTION",
        "INSERT INTO t VALUES (1) COMMIT",
        "COMMIT TRAN",
        "COMMIT WORK",
        "IF 1 = 1 BEGIN ROLLBACK END",
        "ROLLBACK TRAN",
        "ROLLBACK WORK",
        "SET IMPLICIT_TRANSACTIONS ON",
        "set ansi_defaults on",
    ] {
        assert!(refused_in_tx(sql, MS).is_some(), "{sql}");
        assert!(refused(sql, MS).is_some(), "outside: {sql}");
    }
    for sql in [
        "BEGIN SELECT 1 END",
        "BEGIN TRY SELECT 1/0 END TRY BEGIN CATCH SELECT ERROR_NUMBER() END CATCH",
        "SELECT [commit], [begin tran] FROM [rollback]",
        "SELECT 'COMMIT' -- ROLLBACK",
        "SELECT 1 /* BEGIN TRAN /* nested */ COMMIT */",
        "SET IMPLICIT_TRANSACTIONS OFF",
        "SELECT @@TRANCOUNT",
        "CREATE PROCEDURE p AS BEGIN TRAN; INSERT INTO t VALUES (1); COMMIT",
        "CREATE OR ALTER PROC p AS BEGIN ROLLBACK END",
    ] {
        assert_eq!(refused(sql, MS), None, "{sql}");
    }
    // Savepoints: only inside a transaction, and a named rollback there is one.
    assert_eq!(refused_in_tx("SAVE TRAN s; ROLLBACK TRAN s", MS), None);
    assert_eq!(refused("SAVE TRANSACTION s", MS), Some("SAVE TRANSACTION"));
    assert_eq!(
        refused_in_tx("SAVE TRAN s ROLLBACK TRAN SELECT 1", MS),
        Some("ROLLBACK TRANSACTION")
    );
    assert_eq!(
        refused_in_tx("SAVE TRAN s; COMMIT", MS),
        Some("COMMIT TRANSACTION")
    );
}

#[test]
fn ordinary_statements_pass() {
    for d in [PG, LITE, MS] {
        for sql in [
            "SELECT 1",
            "INSERT INTO t (a) VALUES ($1)",
            "UPDATE t SET a = 1 WHERE b = 2",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "(SELECT 1)",
            "",
            ";;",
            "é; ü",
        ] {
            assert_eq!(refused(sql, d), None, "{d:?}: {sql}");
        }
    }
}
